"""Download path of nnlocal.data against a local HTTP server on 127.0.0.1 started by the tests
(never the real mirrors): verified caching, no second download, checksum mismatch, a server that
dies mid-transfer, a stalled server (timeout), unreachable mirrors and the "not found" message, and
`nnlocal datasets --download`."""
from __future__ import annotations

import dataclasses
import hashlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pytest

from nnlocal.data import (ChecksumError, DatasetNotFoundError, DownloadError, RemoteFile, download_file,
                          load_cifar10, load_fashion_mnist, load_idx_dataset, load_mnist, write_idx)
from nnlocal import cli
from nnlocal.data import fetch
from nnlocal.data.fetch import FASHION_MNIST, MNIST


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No test reads the user's real data folders or writes the real cache."""
    monkeypatch.delenv("NNLOCAL_DATA", raising=False)
    monkeypatch.delenv("NNLOCAL_OFFLINE", raising=False)
    monkeypatch.setenv("NNLOCAL_CACHE", str(tmp_path / "default-cache"))


class _State:
    def __init__(self):
        self.files: dict[str, bytes] = {}   # URL path (no leading /) -> body
        self.truncate: set[str] = set()     # paths answered with a too-large Content-Length, then closed
        self.stall: set[str] = set()        # paths that never answer (until teardown)
        self.requests: list[str] = []
        self.release = threading.Event()
        self.url = ""


@pytest.fixture
def server():
    state = _State()

    class Handler(BaseHTTPRequestHandler):
        timeout = 5  # bound every connection

        def do_GET(self):  # noqa: N802 (http.server API)
            path = self.path.lstrip("/")
            state.requests.append(path)
            if path in state.stall:
                state.release.wait(5)
                return
            body = state.files.get(path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if path in state.truncate:  # die mid-transfer
                self.wfile.write(body[: len(body) // 2])
                self.close_connection = True
                return
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    try:
        yield state
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _closed_port_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/"


def _generated_idx(tmp_path, n=12, seed=0):
    """Small MNIST-like train files as gzip bytes, and their arrays."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    src = tmp_path / "src"
    bodies = {
        "train-images-idx3-ubyte.gz": write_idx(src / "train-images-idx3-ubyte.gz", images).read_bytes(),
        "train-labels-idx1-ubyte.gz": write_idx(src / "train-labels-idx1-ubyte.gz", labels).read_bytes(),
    }
    return images, labels, bodies


def _spec_for(bodies, base=MNIST, **changes):
    """A copy of ``base`` whose train files carry the generated files' MD5s."""
    files = tuple(RemoteFile(name, md5=hashlib.md5(body).hexdigest()) for name, body in bodies.items())
    return dataclasses.replace(base, splits={"train": files}, **changes)


def _files_under(path):
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()) if path.exists() else []


def test_download_caches_verified_files_and_second_call_is_offline(server, tmp_path):
    images, labels, bodies = _generated_idx(tmp_path)
    server.files.update({f"mnist/{k}": v for k, v in bodies.items()})
    spec = _spec_for(bodies)
    cache = tmp_path / "cache"
    # the first mirror answers 404, the second has the files
    mirrors = [server.url + "missing/", server.url + "mnist/"]
    x, y = load_idx_dataset(spec, "train", cache_dir=cache, mirrors=mirrors, progress=False)
    assert x.shape == (12, 1, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(x[:, 0], images.astype(np.float32) / 255)
    np.testing.assert_array_equal(y, labels)
    assert _files_under(cache) == ["mnist/train-images-idx3-ubyte.gz", "mnist/train-labels-idx1-ubyte.gz"]
    assert (cache / "mnist" / "train-images-idx3-ubyte.gz").read_bytes() == bodies["train-images-idx3-ubyte.gz"]
    n_requests = len(server.requests)
    assert n_requests == 4  # two files, each 404 on the first mirror then 200
    x2, y2 = load_idx_dataset(spec, "train", cache_dir=cache, mirrors=mirrors)
    assert len(server.requests) == n_requests  # served from the cache, no network
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(y2, y)


def test_cache_dir_from_environment(server, tmp_path, monkeypatch):
    _, _, bodies = _generated_idx(tmp_path)
    server.files.update(bodies)
    monkeypatch.setenv("NNLOCAL_CACHE", str(tmp_path / "envcache"))
    load_idx_dataset(_spec_for(bodies), "train", mirrors=server.url)
    assert _files_under(tmp_path / "envcache") == ["mnist/train-images-idx3-ubyte.gz",
                                                   "mnist/train-labels-idx1-ubyte.gz"]


def test_checksum_mismatch_raises_and_leaves_nothing(server, tmp_path):
    # generated files under the real MNIST names: their MD5 is not MNIST's
    _, _, bodies = _generated_idx(tmp_path)
    server.files.update(bodies)
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError, match="md5 mismatch") as err:
        load_mnist("train", cache_dir=cache, mirrors=[server.url], progress=False)
    assert "f68b3c2dcbeaaa9fbdd348bbdeb94873" in str(err.value)
    assert _files_under(cache) == []


def test_server_dying_mid_transfer_leaves_nothing(server, tmp_path):
    _, _, bodies = _generated_idx(tmp_path)
    server.files.update(bodies)
    server.truncate.add("train-images-idx3-ubyte.gz")
    cache = tmp_path / "cache"
    with pytest.raises(DatasetNotFoundError, match="connection closed after") as err:
        load_idx_dataset(_spec_for(bodies), "train", cache_dir=cache, mirrors=[server.url])
    assert "train-images-idx3-ubyte.gz" in str(err.value)
    assert _files_under(cache) == []


def test_stalled_server_times_out(server, tmp_path):
    server.files["slow.bin"] = b"x"
    server.stall.add("slow.bin")
    with pytest.raises(DownloadError, match="timed out"):
        download_file(server.url + "slow.bin", tmp_path / "c" / "slow.bin", md5="0" * 32, timeout=0.3)
    assert _files_under(tmp_path / "c") == []


def test_download_file_requires_checksum_and_shows_progress(server, tmp_path, capsys):
    server.files["blob.bin"] = b"nnlocal" * 1000
    with pytest.raises(ValueError, match="without a checksum"):
        download_file(server.url + "blob.bin", tmp_path / "blob.bin")
    assert server.requests == []
    sha = hashlib.sha256(server.files["blob.bin"]).hexdigest()
    path = download_file(server.url + "blob.bin", tmp_path / "d" / "blob.bin", sha256=sha, progress=True)
    assert path.read_bytes() == server.files["blob.bin"]
    assert "blob.bin" in capsys.readouterr().err  # the tqdm bar
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_file(server.url + "nope.bin", tmp_path / "d" / "nope.bin", md5="0" * 32)


def test_unreachable_mirror_lists_searched_paths(tmp_path, monkeypatch):
    data, cache = tmp_path / "data", tmp_path / "cache"
    monkeypatch.setenv("NNLOCAL_DATA", str(data))
    with pytest.raises(DatasetNotFoundError) as err:
        load_mnist("train", cache_dir=cache, mirrors=[_closed_port_url()], timeout=2)
    msg = str(err.value)
    for expected in (str(data / "mnist"), str(cache / "mnist"), "train-images-idx3-ubyte.gz",
                     "NNLOCAL_DATA", "nnlocal datasets", "Downloading into"):
        assert expected in msg, (expected, msg)
    assert _files_under(cache) == []
    assert isinstance(err.value, FileNotFoundError)


def test_fashion_message_mentions_debian_package(tmp_path):
    spec = dataclasses.replace(FASHION_MNIST, system_dirs=())  # pretend the package is not installed
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_idx_dataset(spec, "test", cache_dir=tmp_path, mirrors=[_closed_port_url()], timeout=2)
    # the real loader searches the package folder (a plain string check: no reading here)
    assert "/usr/share/datasets/fashion-mnist" in FASHION_MNIST.system_dirs
    assert callable(load_fashion_mnist)


def test_downloads_can_be_disabled(server, tmp_path, monkeypatch):
    _, _, bodies = _generated_idx(tmp_path)
    server.files.update(bodies)
    spec = _spec_for(bodies)
    with pytest.raises(DatasetNotFoundError, match="download=False"):
        load_idx_dataset(spec, "train", cache_dir=tmp_path / "c", mirrors=[server.url], download=False)
    monkeypatch.setenv("NNLOCAL_OFFLINE", "1")
    with pytest.raises(DatasetNotFoundError, match="NNLOCAL_OFFLINE"):
        load_idx_dataset(spec, "train", cache_dir=tmp_path / "c", mirrors=[server.url])
    assert server.requests == []
    # an explicit download=True wins over the environment
    load_idx_dataset(spec, "train", cache_dir=tmp_path / "c", mirrors=[server.url], download=True)
    assert len(server.requests) == 2


def test_cifar_archive_checksum_mismatch_leaves_nothing(server, tmp_path):
    server.files["cifar-10-binary.tar.gz"] = b"not the real archive"
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError, match="c32a1d4ab5d03f1284b67883e8d87530"):
        load_cifar10("test", cache_dir=cache, mirrors=[server.url])
    assert _files_under(cache) == []


def test_datasets_download_command_fetches_into_the_cache_with_a_progress_bar(server, tmp_path, monkeypatch,
                                                                              capsys):
    _, _, bodies = _generated_idx(tmp_path)
    server.files.update(bodies)
    monkeypatch.setitem(fetch.SPECS, "mnist", _spec_for(bodies, mirrors=(server.url,)))
    cache = tmp_path / "default-cache" / "mnist"        # $NNLOCAL_CACHE of the autouse fixture
    assert cli.main(["datasets", "--download", "MNIST"]) == 0
    out, err = capsys.readouterr()
    assert _files_under(cache) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    assert f"mnist train: {cache / 'train-images-idx3-ubyte.gz'} (downloaded; checksum: file md5)" in out
    assert "train-images-idx3-ubyte.gz" in err and "B/s" in err      # the tqdm bar
    n_requests = len(server.requests)
    assert cli.main(["datasets", "--download", "mnist"]) == 0        # present and verified: no download
    assert "(found; checksum: file md5)" in capsys.readouterr().out
    assert len(server.requests) == n_requests


def test_datasets_download_offline_fails_in_one_line_saying_where_to_put_the_files(tmp_path, monkeypatch,
                                                                                   capsys):
    monkeypatch.setitem(fetch.SPECS, "mnist", dataclasses.replace(MNIST, mirrors=(_closed_port_url(),)))
    monkeypatch.setenv("NNLOCAL_OFFLINE", "1")          # an explicit --download still tries
    assert cli.main(["datasets", "--download", "mnist"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1 and lines[0].startswith("nnlocal: error: could not download MNIST"), err
    assert f"into {tmp_path / 'default-cache' / 'mnist'}/ (or $NNLOCAL_DATA/mnist/) by hand" in lines[0]
    assert "train-images-idx3-ubyte.gz" in lines[0]


def test_datasets_download_refuses_a_damaged_local_copy(server, tmp_path, monkeypatch, capsys):
    _, _, bodies = _generated_idx(tmp_path)
    spec = _spec_for(bodies, mirrors=(server.url,))
    monkeypatch.setitem(fetch.SPECS, "mnist", spec)
    cache = tmp_path / "default-cache" / "mnist"
    cache.mkdir(parents=True)
    for name, body in bodies.items():
        (cache / name).write_bytes(body[:-1] + b"x" if "images" in name else body)
    assert cli.main(["datasets", "--download", "mnist"]) == 2
    err = capsys.readouterr().err
    assert "checksum mismatch" in err and f"Delete {cache / 'train-images-idx3-ubyte.gz'}" in err
    assert server.requests == []
