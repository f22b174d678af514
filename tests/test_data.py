"""nnlocal.data: IDX format, real MNIST / Fashion-MNIST files, CIFAR-10 binary reader, digits,
Multi-MNIST, logic gates, DataLoader, load_dataset and describe_datasets. (Downloads: see
test_data_download.py.)"""
from __future__ import annotations

import gzip
import io
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest

from nnlocal.data import (DATASET_NAMES, DataLoader, DatasetNotFoundError, describe_datasets, load_cifar10,
                          load_dataset, load_digits, load_fashion_mnist, load_mnist, logic_gate, main,
                          multi_mnist, multi_mnist_geometry, normalize, read_idx, read_idx_header,
                          resize_nearest, write_idx)
from nnlocal.data.fetch import FASHION_MNIST, verify_file

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No test reads the user's data folders or cache unless it sets them itself."""
    monkeypatch.delenv("NNLOCAL_DATA", raising=False)
    monkeypatch.delenv("NNLOCAL_OFFLINE", raising=False)
    monkeypatch.setenv("NNLOCAL_CACHE", str(tmp_path / "cache"))


# ----------------------------------------------------------------------------------------------
# IDX
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["a-idx3-ubyte.gz", "a-idx3-ubyte"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path, name, dtype):
    rng = np.random.default_rng(0)
    arr = (rng.standard_normal((5, 3, 4)) * 50).astype(dtype)
    path = write_idx(tmp_path / name, arr)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative and back.flags.writeable
    np.testing.assert_array_equal(back, arr)
    assert read_idx_header(path) == (np.dtype(dtype), (5, 3, 4))


def test_idx_uint8_images_and_labels_layout(tmp_path):
    images = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    path = write_idx(tmp_path / "img", images)
    raw = path.read_bytes()
    assert raw[:4] == bytes([0, 0, 0x08, 3]) and raw[4:16] == bytes([0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 3])
    assert raw[16:] == images.tobytes()
    labels = np.array([3, 1, 4], dtype=np.uint8)
    write_idx(tmp_path / "lbl.gz", labels, compress=False)  # raw content under a .gz name still reads
    np.testing.assert_array_equal(read_idx(tmp_path / "lbl.gz"), labels)


def test_write_idx_rejects_unsupported_dtype(tmp_path):
    with pytest.raises(ValueError, match="cannot store dtype"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.int64))
    assert list(tmp_path.iterdir()) == []


def _good_idx_bytes():
    return bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(6))


@pytest.mark.parametrize("content, message", [
    (b"\x00\x00", "too short for the 4-byte magic"),
    (b"\x50\x4b\x03\x04" + bytes(20), "bad magic number 0x504b0304"),
    (bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 0]), "unknown IDX type code 0x42"),
    (bytes([0, 0, 8, 0]), "0 dimensions"),
    (bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0]), "header truncated"),
    (_good_idx_bytes()[:-1], "payload truncated"),
    (_good_idx_bytes() + b"\x00\x00", "2 unexpected trailing bytes"),
])
@pytest.mark.parametrize("compressed", [False, True])
def test_idx_corrupt_files_raise_naming_the_file(tmp_path, content, message, compressed):
    path = tmp_path / ("bad-file.gz" if compressed else "bad-file")
    path.write_bytes(gzip.compress(content) if compressed else content)
    with pytest.raises(ValueError, match=message) as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_idx_truncated_gzip_stream(tmp_path):
    path = tmp_path / "cut.gz"
    path.write_bytes(gzip.compress(_good_idx_bytes() * 50)[:-12])
    with pytest.raises(ValueError, match="corrupt gzip stream") as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_loader_rejects_mismatched_images_and_labels(tmp_path):
    folder = tmp_path / "data" / "mnist"
    write_idx(folder / "t10k-images-idx3-ubyte.gz", np.zeros((4, 28, 28), np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte", np.zeros(3, np.uint8))  # raw name accepted too
    with pytest.raises(ValueError, match="4 images but .* 3 labels"):
        load_mnist("test", root=tmp_path / "data", download=False)


@pytest.mark.parametrize("loader", [load_mnist, load_fashion_mnist])
def test_loader_rejects_a_label_outside_the_classes_and_says_what_to_do(tmp_path, loader):
    """A 10-class label file holding 200 is corrupt: refused, naming the file and the remedy."""
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((4, 28, 28), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([3, 9, 200, 1], np.uint8))
    with pytest.raises(ValueError, match=r"label 200 at index 2 is outside 0..9 \(.*MNIST has 10 classes\)") as err:
        loader("test", root=tmp_path, download=False)
    msg = str(err.value)
    assert str(tmp_path / "t10k-labels-idx1-ubyte.gz") in msg
    assert "corrupt: delete" in msg and "downloads a verified copy" in msg


def test_loader_says_what_to_do_about_a_corrupt_idx_file(tmp_path):
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((4, 28, 28), np.uint8))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 4, 1])))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.gz: IDX payload truncated.*The file is corrupt: "
                                         r"delete .* so that the next load downloads a verified copy"):
        load_mnist("test", root=tmp_path, download=False)


def test_dotted_file_names_and_root_argument(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    labels = np.arange(6, dtype=np.uint8)
    write_idx(tmp_path / "t10k-images.idx3-ubyte", images)  # the "dotted" distribution names
    write_idx(tmp_path / "t10k-labels.idx1-ubyte", labels)
    x, y = load_mnist("test", root=tmp_path, download=False)
    assert x.shape == (6, 1, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(x[:, 0], images / np.float32(255))
    np.testing.assert_array_equal(y, labels)
    with pytest.raises(ValueError, match="unknown split 'val'"):
        load_mnist("val", root=tmp_path)


# ----------------------------------------------------------------------------------------------
# real data (skipped only when absent; CI installs both)
# ----------------------------------------------------------------------------------------------
needs_fashion = pytest.mark.skipif(not (FASHION_DIR / "t10k-labels-idx1-ubyte.gz").exists(),
                                   reason="dataset-fashion-mnist is not installed")
needs_mnist_test = pytest.mark.skipif(not (SHARED_DATA / "mnist" / "t10k-images-idx3-ubyte.gz").exists(),
                                      reason=f"the MNIST test set is not in {SHARED_DATA}/mnist")


@needs_fashion
def test_fashion_mnist_from_debian_package():
    for split, n in (("train", 60000), ("test", 10000)):
        x, y = load_fashion_mnist(split, download=False)
        assert x.shape == (n, 1, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
        assert x.min() == 0.0 and x.max() == 1.0
        np.testing.assert_array_equal(np.bincount(y, minlength=10), [n // 10] * 10)
    # the Debian copies are recompressed: their decompressed content matches the published one
    for f in FASHION_MNIST.files("test"):
        assert verify_file(FASHION_DIR / f.filename, f) in ("md5", "raw_md5")


@needs_mnist_test
def test_mnist_test_set_from_shared_data(monkeypatch):
    monkeypatch.setenv("NNLOCAL_DATA", str(SHARED_DATA))
    x, y = load_mnist("test", download=False, verify=True)
    assert x.shape == (10000, 1, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
    assert 0.0 <= x.min() and x.max() == 1.0
    np.testing.assert_array_equal(np.bincount(y, minlength=10), MNIST_TEST_COUNTS)

    # load_dataset falls back to a documented split of the test set, with a warning
    with pytest.warns(UserWarning, match="MNIST training set not found"):
        xtr, ytr = load_dataset("MNIST", "train")
    with pytest.warns(UserWarning, match="fallback=False"):
        xte, yte = load_dataset("mnist", "test")
    assert len(xtr) == 8000 and len(xte) == 2000
    np.testing.assert_array_equal(np.concatenate([xtr, xte]), x)
    np.testing.assert_array_equal(np.concatenate([ytr, yte]), y)
    with pytest.raises(DatasetNotFoundError, match="train-images-idx3-ubyte.gz"):
        load_dataset("mnist", "train", fallback=False, download=False)


# ----------------------------------------------------------------------------------------------
# CIFAR-10 binary
# ----------------------------------------------------------------------------------------------
def _cifar_records(n, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    pixels = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    pixels[0, 0], pixels[0, 1], pixels[0, 2] = 255, 0, 0  # record 0 is pure red: R plane comes first
    raw = np.concatenate([labels[:, None], pixels.reshape(n, -1)], axis=1).tobytes()
    return raw, pixels, labels


def _cifar_files(n=3):
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    return {name: _cifar_records(n + k, seed=k) for k, name in enumerate(names)}


def test_cifar10_binary_folder_and_tar_gz(tmp_path):
    files = _cifar_files()
    folder = tmp_path / "a" / "cifar10" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    for name, (raw, _, _) in files.items():
        (folder / name).write_bytes(raw)
    archive_root = tmp_path / "b"
    archive_root.mkdir()
    with tarfile.open(archive_root / "cifar-10-binary.tar.gz", "w:gz") as tar:
        for name, (raw, _, _) in files.items():
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))

    train_px = np.concatenate([files[f"data_batch_{i}.bin"][1] for i in range(1, 6)])
    train_lb = np.concatenate([files[f"data_batch_{i}.bin"][2] for i in range(1, 6)])
    for root in (tmp_path / "a", archive_root):
        x, y = load_cifar10("train", root=root, download=False)
        assert x.shape == (len(train_px), 3, 32, 32) and x.dtype == np.float32 and y.dtype == np.int64
        np.testing.assert_array_equal(x, train_px / np.float32(255))
        np.testing.assert_array_equal(y, train_lb)
        assert (x[0, 0] == 1).all() and (x[0, 1:] == 0).all()
        xt, yt = load_cifar10("test", root=root, download=False)
        np.testing.assert_array_equal(yt, files["test_batch.bin"][2])

        g, yg = load_cifar10("test", grayscale=True, root=root, download=False)
        px = files["test_batch.bin"][1].astype(np.float64) / 255
        expected = 0.2125 * px[:, 0] + 0.7154 * px[:, 1] + 0.0721 * px[:, 2]
        assert g.shape == (len(px), 1, 32, 32) and g.dtype == np.float32
        np.testing.assert_allclose(g[:, 0], expected, rtol=0, atol=1e-6)
        assert g.min() >= 0 and g.max() <= 1
        np.testing.assert_array_equal(yg, yt)
        rows = {r["split"]: r for r in describe_datasets(root=root) if r["dataset"] == "cifar10"}
        assert (rows["train"]["status"], rows["train"]["n"]) == ("found", len(train_px))
        assert (rows["test"]["status"], rows["test"]["n"]) == ("found", len(yt))


def test_cifar10_grayscale_matches_skimage(tmp_path):
    skimage_color = pytest.importorskip("skimage.color")
    raw, px, _ = _cifar_records(5, seed=11)
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / "test_batch.bin").write_bytes(raw)
    g, _ = load_cifar10("test", grayscale=True, root=tmp_path, download=False)
    np.testing.assert_allclose(g[:, 0], skimage_color.rgb2gray(px.transpose(0, 2, 3, 1)), atol=1e-6)


def test_cifar10_truncated_batch_and_bad_archive(tmp_path):
    files = _cifar_files()
    folder = tmp_path / "cifar10"
    folder.mkdir()
    for name, (raw, _, _) in files.items():
        (folder / name).write_bytes(raw)
    bad = folder / "test_batch.bin"
    bad.write_bytes(files["test_batch.bin"][0][:-100])
    with pytest.raises(ValueError, match="not a whole number of 3073-byte") as err:
        load_cifar10("test", root=tmp_path, download=False)
    assert str(bad) in str(err.value)
    raw = bytearray(files["test_batch.bin"][0])
    raw[3073] = 42  # record 1 gets label 42
    bad.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="record 1 has label 42"):
        load_cifar10("test", root=tmp_path, download=False)

    arch_root = tmp_path / "arch"
    arch_root.mkdir()
    archive = arch_root / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:  # lacks test_batch.bin
        info = tarfile.TarInfo("cifar-10-batches-bin/data_batch_1.bin")
        info.size = 3073
        tar.addfile(info, io.BytesIO(files["data_batch_1.bin"][0][:3073]))
    with pytest.raises(ValueError, match="no member test_batch.bin"):
        load_cifar10("test", root=arch_root, download=False)
    archive.write_bytes(archive.read_bytes()[:40])
    with pytest.raises(ValueError, match="corrupt or truncated archive") as err:
        load_cifar10("test", root=arch_root, download=False)
    assert str(archive) in str(err.value)


# ----------------------------------------------------------------------------------------------
# digits, logic gates, normalize, load_dataset, describe_datasets
# ----------------------------------------------------------------------------------------------
def test_load_digits_split():
    xtr, ytr = load_digits("train")
    xte, yte = load_digits("test")
    xall, yall = load_digits("all")
    assert xtr.shape == (1500, 1, 8, 8) and xte.shape == (297, 1, 8, 8) and xall.shape == (1797, 1, 8, 8)
    assert xtr.dtype == np.float32 and ytr.dtype == np.int64
    assert xall.min() == 0.0 and xall.max() == 1.0
    np.testing.assert_array_equal(np.concatenate([xtr, xte]), xall)  # disjoint and complete
    np.testing.assert_array_equal(np.concatenate([ytr, yte]), yall)
    assert set(ytr) == set(yte) == set(range(10))
    xtr[0] = 5  # returned arrays are copies
    assert load_digits("train")[0].max() == 1.0
    with pytest.raises(ValueError, match="'train', 'test', 'all'"):
        load_digits("validation")


@pytest.mark.parametrize("name, table", [
    ("XOR", [0, 1, 1, 0]), ("and", [0, 0, 0, 1]), ("Or", [0, 1, 1, 1]),
    ("NOT", [1, 0]), ("ID", [0, 1]), ("identity", [0, 1]),
])
def test_logic_gate_tables(name, table):
    x, y = logic_gate(name)
    n = len(table)
    assert x.shape == (n, 3 if n == 4 else 2) and y.shape == (n, 1) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, -1], 1)  # bias column last
    if n == 4:
        np.testing.assert_array_equal(x[:, :2], [[0, 0], [0, 1], [1, 0], [1, 1]])
    else:
        np.testing.assert_array_equal(x[:, 0], [0, 1])
    np.testing.assert_array_equal(y[:, 0], table)
    xo, yo = logic_gate(name, one_hot=True, dtype=np.float64)
    assert yo.shape == (n, 2) and yo.dtype == np.float64
    np.testing.assert_array_equal(yo.argmax(1), table)
    np.testing.assert_array_equal(yo.sum(1), 1)


def test_logic_gate_bad_name():
    with pytest.raises(ValueError, match="XOR, AND, OR, NOT, ID, IDENTITY"):
        logic_gate("NAND")


def test_normalize():
    x = np.full((2, 3, 4, 4), 0.5, dtype=np.float32)
    out = normalize(x, [0.5, 0.25, 0.0], [1.0, 0.5, 2.0])
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out[0, :, 0, 0], [0.0, 0.5, 0.25])
    np.testing.assert_allclose(normalize(x, 0.1307, 0.3081), (0.5 - 0.1307) / 0.3081, rtol=1e-6)


def test_load_dataset_names(tmp_path):
    x, y = load_dataset("Digits", "test")
    assert x.shape == (297, 1, 8, 8)
    with pytest.raises(ValueError) as err:
        load_dataset("imagenet")
    for name in DATASET_NAMES:
        assert name in str(err.value)
    raw, px, labels = _cifar_records(4, seed=3)
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / "test_batch.bin").write_bytes(raw)
    g, _ = load_dataset("CIFAR10-gray", "test", root=tmp_path, download=False)
    c, yc = load_dataset("cifar10", "test", root=tmp_path, download=False)
    assert g.shape == (4, 1, 32, 32) and c.shape == (4, 3, 32, 32)
    np.testing.assert_array_equal(yc, labels)


def test_describe_datasets(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    write_idx(data / "mnist" / "t10k-images-idx3-ubyte.gz", np.zeros((7, 28, 28), np.uint8))
    write_idx(data / "mnist" / "t10k-labels-idx1-ubyte.gz", np.zeros(7, np.uint8))
    (data / "fashion-mnist").mkdir()
    (data / "fashion-mnist" / "t10k-images-idx3-ubyte").write_bytes(b"garbage!")
    (data / "fashion-mnist" / "t10k-labels-idx1-ubyte").write_bytes(b"garbage!")
    (data / "cifar10").mkdir()
    (data / "cifar10" / "test_batch.bin").write_bytes(_cifar_records(4, seed=0)[0])
    monkeypatch.setenv("NNLOCAL_DATA", str(data))
    rows = {(r["dataset"], r["split"]): r for r in describe_datasets()}
    assert set(rows) == {(d, s) for d in ("digits", "mnist", "fashion-mnist", "cifar10") for s in ("train", "test")} \
        | {(d, s) for d in ("multi-mnist", "multi-fashion-mnist") for s in ("train", "val", "test")}
    assert rows["digits", "train"]["status"] == "found" and rows["digits", "train"]["n"] == 1500
    assert rows["mnist", "test"] == {"dataset": "mnist", "split": "test", "status": "found", "n": 7,
                                     "where": str(data / "mnist")}
    assert rows["mnist", "train"]["status"] == "missing"
    assert "split of the test set" in rows["mnist", "train"]["where"]
    assert rows["fashion-mnist", "test"]["status"] == "corrupt"
    assert "bad magic number" in rows["fashion-mnist", "test"]["where"]
    assert rows["cifar10", "test"]["status"] == "found" and rows["cifar10", "test"]["n"] == 4
    assert rows["cifar10", "train"]["status"] == "missing"
    verified = {(r["dataset"], r["split"]): r for r in describe_datasets(verify=True)}
    assert verified["mnist", "test"]["checksum"] == "mismatch"  # zeros are not MNIST
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "| dataset" in out and "mnist" in out and "NNLOCAL_DATA" in out


# ----------------------------------------------------------------------------------------------
# Multi-MNIST
# ----------------------------------------------------------------------------------------------
def _constant_base(n, s, dtype=np.float32):
    """Image k is filled with the value (k + 1) / (n + 1): every pixel tells which image it came from."""
    values = (np.arange(n) + 1) / (n + 1)
    return (np.ones((n, 1, s, s)) * values[:, None, None, None]).astype(dtype), np.arange(n) % 10, values


@pytest.mark.parametrize("s", [28, 8])
def test_multi_mnist_geometry_and_labels(s):
    images, labels, values = _constant_base(40, s)
    x, y, right = multi_mnist(images, labels, rng=0, return_indices=True)
    assert x.shape == images.shape and x.dtype == np.float32 and y.shape == (40, 2) and y.dtype == np.int64
    np.testing.assert_array_equal(y[:, 0], labels)
    np.testing.assert_array_equal(y[:, 1], labels[right])
    left_v, right_v = values[:, None].astype(np.float32), values[right][:, None].astype(np.float32)
    flat = x.reshape(40, -1)
    canvas, off = multi_mnist_geometry(s)
    src = np.floor((np.arange(s) + 0.5) * canvas / s).astype(int)  # canvas row/col behind each output pixel
    only_left = np.flatnonzero(src < off)                            # covered by the left digit alone
    only_right = np.flatnonzero((src >= s) & (src < off + s))        # covered by the right digit alone
    empty = np.flatnonzero(src >= off + s)                           # beyond the right digit
    assert len(only_left) and len(only_right)
    # the left digit's pixels fill the top-left corner, the right digit's the bottom-right
    tl = x[:, 0][:, only_left][:, :, only_left].reshape(40, -1)
    br = x[:, 0][:, only_right][:, :, only_right].reshape(40, -1)
    np.testing.assert_array_equal(tl, np.broadcast_to(left_v, tl.shape))
    np.testing.assert_array_equal(br, np.broadcast_to(right_v, br.shape))
    np.testing.assert_array_equal(x[:, 0][:, empty], 0)
    # the two corners no digit covers are empty
    assert (x[:, 0, 0, -1] == 0).all() and (x[:, 0, -1, 0] == 0).all()
    # every pixel is the left value, the right value, their max (overlap) or 0 (empty corners)
    ok = (flat == left_v) | (flat == right_v) | (flat == np.maximum(left_v, right_v)) | (flat == 0)
    assert ok.all()
    assert multi_mnist_geometry(28) == (36, 6) and multi_mnist_geometry(8) == (10, 2)


def test_multi_mnist_matches_a_pil_reference():
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (6, 1, 28, 28), dtype=np.uint8)
    labels = np.arange(6)
    x, y, right = multi_mnist(images, labels, rng=3, return_indices=True)
    for i in range(6):  # the original construction, verbatim in numpy + PIL
        canvas = np.zeros((36, 36), np.uint8)
        canvas[0:28, 0:28] = images[i, 0]
        canvas[6:34, 6:34] = np.maximum(canvas[6:34, 6:34], images[right[i], 0])
        ref = np.asarray(Image.fromarray(canvas).resize((28, 28), Image.NEAREST))
        np.testing.assert_array_equal(x[i, 0], ref)


@pytest.mark.parametrize("shape_in, size", [((36, 36), 28), ((10, 10), 8), ((5, 7), (13, 4)), ((28, 28), 36)])
def test_resize_nearest_matches_pil(shape_in, size):
    Image = pytest.importorskip("PIL.Image")
    img = np.random.default_rng(0).integers(0, 256, shape_in, dtype=np.uint8)
    h, w = (size, size) if isinstance(size, int) else size
    ref = np.asarray(Image.fromarray(img).resize((w, h), Image.NEAREST))
    np.testing.assert_array_equal(resize_nearest(img, size), ref)


def test_multi_mnist_seeding_call_forms_and_digits():
    x8, y8 = load_digits("train")
    a = multi_mnist(x8, y8, rng=7)
    b = multi_mnist((x8, y8), 7)  # the API.md form multi_mnist(base, rng)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    c = multi_mnist(x8, y8, rng=8)
    assert not np.array_equal(a[1][:, 1], c[1][:, 1])
    assert a[0].shape == (1500, 1, 8, 8) and a[0].min() >= 0 and a[0].max() <= 1
    x3, _ = multi_mnist(x8[:, 0], y8, rng=7)  # (N, s, s) input keeps its layout
    np.testing.assert_array_equal(x3, a[0][:, 0])
    with pytest.raises(ValueError, match="labels of shape"):
        multi_mnist(x8, y8[:-1], rng=0)


# ----------------------------------------------------------------------------------------------
# DataLoader
# ----------------------------------------------------------------------------------------------
def test_dataloader_covers_data_once_and_len():
    x = np.arange(10 * 2).reshape(10, 2).astype(np.float32)
    y = np.arange(10)
    for shuffle in (False, True):
        dl = DataLoader(x, y, batch_size=4, shuffle=shuffle, rng=0)
        batches = list(dl)
        assert len(dl) == len(batches) == 3
        assert [len(b[1]) for b in batches] == [4, 4, 2]
        seen = np.concatenate([b[1] for b in batches])
        np.testing.assert_array_equal(np.sort(seen), y)
        for xb, yb in batches:
            np.testing.assert_array_equal(xb[:, 0], 2 * yb)  # x and y stay paired
    ordered = np.concatenate([b[1] for b in DataLoader(x, y, 4)])
    np.testing.assert_array_equal(ordered, y)
    dl = DataLoader(x, y, batch_size=4, drop_last=True)
    assert len(dl) == 2 and [len(b[1]) for b in dl] == [4, 4]
    assert len(DataLoader(x, y, 5, drop_last=True)) == 2 and len(DataLoader(x, y, 11)) == 1
    assert [b.shape for b in DataLoader(x, None, 6)] == [(6, 2), (4, 2)]
    with pytest.raises(ValueError, match="same length"):
        DataLoader(x, y[:-1], 4)
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(x, y, 0)


def test_dataloader_determinism_and_reshuffling():
    x, y = np.zeros((50, 1)), np.arange(50)

    def epochs(loader, k=3):
        return [np.concatenate([b[1] for b in loader]) for _ in range(k)]

    e1 = epochs(DataLoader(x, y, 8, shuffle=True, rng=123))
    e2 = epochs(DataLoader(x, y, 8, shuffle=True, rng=np.random.default_rng(123)))
    for a, b in zip(e1, e2):
        np.testing.assert_array_equal(a, b)  # same seed -> same sequence of epochs
    assert not np.array_equal(e1[0], e1[1]) and not np.array_equal(e1[1], e1[2])  # reshuffled each epoch
    e3 = epochs(DataLoader(x, y, 8, shuffle=True, rng=124))
    assert not np.array_equal(e1[0], e3[0])

    import nnlocal

    nnlocal.seed(9)
    d1 = epochs(DataLoader(x, y, 8, shuffle=True), 2)
    nnlocal.seed(9)
    d2 = epochs(DataLoader(x, y, 8, shuffle=True), 2)
    for a, b in zip(d1, d2):
        np.testing.assert_array_equal(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        repr(DataLoader(x, y, 8))
