"""Finding dataset files on disk, and downloading them (verified) when they are not there.

Search order for a dataset called ``<name>`` (``"mnist"``, ``"fashion-mnist"``, ``"cifar10"``):

1. ``<root>/<name>/`` and ``<root>/`` when a loader is given ``root=``;
2. ``$NNLOCAL_DATA/<name>/`` (``NNLOCAL_DATA`` may list several folders, separated by ``os.pathsep``);
3. the cache ``<cache>/<name>/``, where ``<cache>`` is the ``cache_dir=`` argument, else
   ``$NNLOCAL_CACHE``, else ``~/.cache/nnlocal``;
4. system folders of the dataset, e.g. ``/usr/share/datasets/fashion-mnist/`` of the Debian package
   ``dataset-fashion-mnist``.

When nothing is found, the files are downloaded from the dataset's mirrors (tried in order) into the
cache. Each download streams into a temporary file in the cache folder, is checked against its
known MD5 (and SHA-256 where given) and only then renamed to its final name: the cache never holds
a partial or unverified file. Downloads use only ``urllib``, time out (``timeout=`` seconds per
socket operation, 30 by default) and show a tqdm progress bar when stderr is a terminal. They are
disabled by ``download=False`` or the environment variable ``NNLOCAL_OFFLINE=1``.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from .._files import atomic_write

__all__ = [
    "RemoteFile", "DatasetSpec", "DatasetNotFoundError", "DownloadError", "ChecksumError", "CorruptDataError",
    "MNIST", "FASHION_MNIST", "CIFAR10", "SPECS",
    "get_cache_dir", "search_dirs", "find_local", "ensure_files", "download_file", "fetch_file",
    "file_md5", "verify_file", "downloads_enabled",
]

DEFAULT_TIMEOUT = 30.0
_CHUNK = 1 << 16


# ----------------------------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------------------------
class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not on disk and could not be downloaded. The message lists the folders
    searched, why the download failed, and how to provide the files; ``summary`` says it in one
    line, ``download_advice`` in one line for ``nnlocal datasets --download``."""

    summary = download_advice = ""


class DownloadError(OSError):
    """A download failed (network error, HTTP error, timeout, connection closed early)."""


class ChecksumError(ValueError):
    """A file's content does not match its published checksum."""


class CorruptDataError(ValueError):
    """A dataset file on disk cannot be read (truncated, not the expected format); the message names
    the file and says to delete it and fetch it again."""


# ----------------------------------------------------------------------------------------------
# what each dataset consists of
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset as published on its mirrors.

    ``md5``/``sha256`` are checksums of the published file (what a download is verified against);
    ``raw_md5`` is the MD5 of the *decompressed* content, which also identifies a local copy that was
    recompressed (e.g. by a distribution package). ``local_names`` are the names accepted on disk,
    in order of preference (by default the published name and, for ``.gz``, the uncompressed name).
    """

    filename: str
    md5: str | None = None
    sha256: str | None = None
    raw_md5: str | None = None
    aliases: tuple[str, ...] = ()

    @property
    def local_names(self) -> tuple[str, ...]:
        names = [self.filename]
        if self.filename.endswith(".gz"):
            names.append(self.filename[:-3])
        for a in self.aliases:
            names += [a] + ([a[:-3]] if a.endswith(".gz") else [])
        return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class DatasetSpec:
    """A downloadable dataset: its folder name, files per split, mirrors and system folders."""

    name: str                                 # folder name under the search roots, e.g. "mnist"
    title: str                                # for messages, e.g. "MNIST"
    splits: dict = field(default_factory=dict)  # split -> tuple[RemoteFile, ...]
    mirrors: tuple[str, ...] = ()
    system_dirs: tuple[str, ...] = ()
    install_hint: str = ""                    # extra advice for the "not found" message
    num_classes: int | None = None            # labels must lie in 0..num_classes-1 (None: not checked)

    def files(self, split: str) -> tuple[RemoteFile, ...]:
        if split not in self.splits:
            valid = ", ".join(map(repr, self.splits))
            raise ValueError(f"{self.title}: unknown split {split!r}; valid splits: {valid}")
        return self.splits[split]


def _idx(stem: str, md5: str, raw_md5: str) -> RemoteFile:
    # "train-images-idx3-ubyte" is also distributed as "train-images.idx3-ubyte"
    dotted = stem.replace("-idx", ".idx")
    return RemoteFile(f"{stem}.gz", md5=md5, raw_md5=raw_md5, aliases=(f"{dotted}.gz",))


# Checksums of the published .gz files are torchvision's; the raw (decompressed) MD5s are the
# widely published ones of the extracted files (they identify recompressed copies such as Debian's).
_I, _L = "-images-idx3-ubyte", "-labels-idx1-ubyte"
MNIST = DatasetSpec(
    name="mnist",
    title="MNIST",
    num_classes=10,
    splits={
        "train": (_idx("train" + _I, "f68b3c2dcbeaaa9fbdd348bbdeb94873", "6bbc9ace898e44ae57da46a324031adb"),
                  _idx("train" + _L, "d53e105ee54ea40749a09fcbcd1e9432", "a25bea736e30d166cdddb491f175f624")),
        "test": (_idx("t10k" + _I, "9fb629c4189551a2d022fa330f9573f3", "2646ac647ad5339dbf082846283269ea"),
                 _idx("t10k" + _L, "ec29112dd5afa0611ce80d1b7f02629c", "27ae3e4e09519cfbb04c329615203637")),
    },
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
             "https://storage.googleapis.com/cvdf-datasets/mnist/"),
)

FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    title="Fashion-MNIST",
    num_classes=10,
    splits={
        "train": (_idx("train" + _I, "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
                  _idx("train" + _L, "25c81989df183df01b3e8a0aad5dffbe", "9018921c3c673c538a1fc5bad174d6f9")),
        "test": (_idx("t10k" + _I, "bef4ecab320f06d8554ea6380940ec79", "8181f5470baa50b63fa0f6fddb340f0a"),
                 _idx("t10k" + _L, "bb300cfdad3c16e7a12a480ee83cd310", "15d484375f8d13e6eb1aabb0c3f46965")),
    },
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    system_dirs=("/usr/share/datasets/fashion-mnist",),
    install_hint="On Debian/Ubuntu: `sudo apt-get install dataset-fashion-mnist` "
                 "(installs /usr/share/datasets/fashion-mnist/).",
)

#: the official *binary* release (one archive holds both splits)
CIFAR10_ARCHIVE = RemoteFile("cifar-10-binary.tar.gz", md5="c32a1d4ab5d03f1284b67883e8d87530")
CIFAR10 = DatasetSpec(
    name="cifar10",
    title="CIFAR-10 (binary version)",
    num_classes=10,
    splits={
        "train": tuple(RemoteFile(f"data_batch_{i}.bin") for i in range(1, 6)),
        "test": (RemoteFile("test_batch.bin"),),
    },
    mirrors=("https://www.cs.toronto.edu/~kriz/",),
)

SPECS = {s.name: s for s in (MNIST, FASHION_MNIST, CIFAR10)}


# ----------------------------------------------------------------------------------------------
# where to look
# ----------------------------------------------------------------------------------------------
def get_cache_dir(cache_dir=None) -> Path:
    """The download cache: ``cache_dir`` if given, else ``$NNLOCAL_CACHE``, else ``~/.cache/nnlocal``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("NNLOCAL_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "nnlocal"


def downloads_enabled(download: bool | None = None) -> bool:
    """``download`` if given, else True unless ``$NNLOCAL_OFFLINE`` is set to 1/true/yes."""
    if download is not None:
        return bool(download)
    return os.environ.get("NNLOCAL_OFFLINE", "").strip().lower() not in ("1", "true", "yes", "on")


def search_dirs(spec: DatasetSpec, root=None, cache_dir=None) -> list[tuple[Path, str]]:
    """The folders searched for ``spec``, in order, each with a short label saying where it comes from."""
    out: list[tuple[Path, str]] = []
    if root is not None:
        root = Path(root).expanduser()
        out += [(root / spec.name, "root="), (root, "root=")]
    for entry in os.environ.get("NNLOCAL_DATA", "").split(os.pathsep):
        if entry.strip():
            out.append((Path(entry.strip()).expanduser() / spec.name, "$NNLOCAL_DATA"))
    if cache_dir is not None:
        cache_label = "cache_dir="
    else:
        cache_label = "$NNLOCAL_CACHE" if os.environ.get("NNLOCAL_CACHE") else "cache"
    out.append((get_cache_dir(cache_dir) / spec.name, cache_label))
    out += [(Path(d), "system") for d in spec.system_dirs]
    seen, unique = set(), []
    for d, label in out:
        key = os.path.abspath(d)
        if key not in seen:
            seen.add(key)
            unique.append((d, label))
    return unique


def _find_in(folder: Path, f: RemoteFile) -> Path | None:
    for name in f.local_names:
        p = folder / name
        if p.is_file():
            return p
    return None


def find_local(spec: DatasetSpec, split: str, root=None, cache_dir=None) -> dict[str, Path] | None:
    """The first searched folder holding *every* file of ``split``: ``{published filename: path}``,
    or ``None`` when no folder has them all. Never touches the network."""
    files = spec.files(split)
    for folder, _ in search_dirs(spec, root, cache_dir):
        found = {f.filename: _find_in(folder, f) for f in files}
        if all(found.values()):
            return found
    return None


# ----------------------------------------------------------------------------------------------
# checksums
# ----------------------------------------------------------------------------------------------
def _hash_file(path, algo: str, decompress: bool = False) -> str:
    h = hashlib.new(algo, usedforsecurity=False) if algo == "md5" else hashlib.new(algo)
    opener = gzip.open if decompress else open
    with opener(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_md5(path, decompress: bool = False) -> str:
    """MD5 of a file (of its decompressed content with ``decompress=True``)."""
    return _hash_file(path, "md5", decompress)


def verify_file(path, f: RemoteFile) -> str:
    """Check a local copy of ``f``: the file itself must match ``f.md5``/``f.sha256``, or its
    decompressed content ``f.raw_md5`` (a recompressed or extracted copy). Returns which one matched
    (``"md5"``, ``"sha256"``, ``"raw_md5"``, or ``"unknown"`` when ``f`` lists no checksum); raises
    :class:`ChecksumError` naming the file on a mismatch."""
    path = Path(path)
    if not (f.md5 or f.sha256 or f.raw_md5):
        return "unknown"
    got = {}
    if f.md5:
        got["md5"] = file_md5(path)
        if got["md5"] == f.md5:
            return "md5"
    if f.sha256:
        got["sha256"] = _hash_file(path, "sha256")
        if got["sha256"] == f.sha256:
            return "sha256"
    if f.raw_md5:
        with open(path, "rb") as fh:
            is_gz = fh.read(2) == b"\x1f\x8b"
        try:
            got["raw_md5"] = file_md5(path, decompress=is_gz)
        except (EOFError, OSError, zlib.error) as exc:
            raise ChecksumError(f"{path}: corrupt gzip stream ({exc})") from exc
        if got["raw_md5"] == f.raw_md5:
            return "raw_md5"
    expected = ", ".join(f"{k} {getattr(f, k)}" for k in got)
    actual = ", ".join(f"{k} {v}" for k, v in got.items())
    raise ChecksumError(f"{path}: checksum mismatch for {f.filename}: expected {expected}; got {actual}")


# ----------------------------------------------------------------------------------------------
# downloading
# ----------------------------------------------------------------------------------------------
def _show_progress(progress: bool | None) -> bool:
    if progress is not None:
        return bool(progress)
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def download_file(url: str, dest, *, md5: str | None = None, sha256: str | None = None,
                  timeout: float = DEFAULT_TIMEOUT, progress: bool | None = None) -> Path:
    """Download ``url`` to ``dest`` through a temporary file, verify it, then rename it into place.

    At least one of ``md5``/``sha256`` is required: nothing unverified is ever written to ``dest``.
    Raises :class:`DownloadError` (network/HTTP error, timeout, connection closed before the announced
    ``Content-Length``) or :class:`ChecksumError`; in both cases no file is left behind.
    """
    from tqdm import tqdm

    if not (md5 or sha256):
        raise ValueError(f"download_file({url!r}): refusing to download without a checksum (md5= or sha256=)")
    dest = Path(dest)
    hashers = {}
    if md5:
        hashers["md5"] = hashlib.md5(usedforsecurity=False)
    if sha256:
        hashers["sha256"] = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": "nnlocal (python urllib)"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.strip().isdigit() else None
            received = 0
            # the temporary file exists only from here on; any exception below deletes it
            with atomic_write(dest) as out, tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                                                 desc=dest.name, disable=not _show_progress(progress),
                                                 leave=False, file=sys.stderr) as bar:
                while True:
                    chunk = resp.read(_CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    for h in hashers.values():
                        h.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
                if total is not None and received != total:
                    raise DownloadError(f"{url}: connection closed after {received} of {total} bytes")
                for algo, h in hashers.items():
                    expected = md5 if algo == "md5" else sha256
                    if h.hexdigest() != expected:
                        raise ChecksumError(f"{url}: {algo} mismatch: expected {expected}, got {h.hexdigest()} "
                                            f"({received} bytes); the file was discarded")
    except (DownloadError, ChecksumError):
        raise
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise DownloadError(f"{url}: {exc.reason}") from exc
    except (OSError, http.client.HTTPException) as exc:  # timeouts, resets, IncompleteRead, ...
        raise DownloadError(f"{url}: {type(exc).__name__}: {exc}") from exc
    return dest


def fetch_file(f: RemoteFile, mirrors, dest_dir, *, timeout: float = DEFAULT_TIMEOUT,
               progress: bool | None = None) -> Path:
    """Download ``f`` into ``dest_dir`` from the first mirror that delivers a verified copy.

    Raises :class:`ChecksumError` if some mirror served wrong content and none served the right one,
    else :class:`DownloadError` listing every mirror's failure."""
    dest = Path(dest_dir) / f.filename
    failures: list[Exception] = []
    for mirror in mirrors:
        url = mirror if mirror.endswith(f.filename) else mirror.rstrip("/") + "/" + f.filename
        try:
            return download_file(url, dest, md5=f.md5, sha256=f.sha256, timeout=timeout, progress=progress)
        except (DownloadError, ChecksumError) as exc:
            failures.append(exc)
    if not failures:
        raise DownloadError(f"{f.filename}: no mirror to download from")
    detail = "\n".join(f"  {e}" for e in failures)
    if any(isinstance(e, ChecksumError) for e in failures):
        raise ChecksumError(f"{f.filename}: no mirror delivered a file with the expected checksum:\n{detail}")
    raise DownloadError(f"{f.filename}: download failed from every mirror:\n{detail}")


def not_found_message(spec: DatasetSpec, split: str, searched, wanted: str, reason: str) -> str:
    """The message of :class:`DatasetNotFoundError`: what is missing, where we looked, why we could
    not download it, and how to provide the files."""
    lines = [f"{spec.title} ({split} split) not found. Looked for {wanted} in:"]
    lines += [f"  {d}   ({label})" for d, label in searched]
    lines += [reason.rstrip(), "", "To provide the files:"]
    lines.append(f"  * copy them (gzip or raw) into one of the folders above, e.g. set NNLOCAL_DATA=/path/to/data "
                 f"and put them in /path/to/data/{spec.name}/;")
    if spec.mirrors:
        lines.append(f"  * or download them on a machine with network access from {spec.mirrors[0]} "
                     "(or run this again with network access; they are cached and verified);")
    if spec.install_hint:
        lines.append(f"  * {spec.install_hint}")
    lines.append("Run `nnlocal datasets` (or `python -m nnlocal.data`) to see which datasets are found where.")
    return "\n".join(lines)


def not_found_error(spec: DatasetSpec, split: str, searched, wanted: str, reason: str) -> DatasetNotFoundError:
    """:class:`DatasetNotFoundError` with the full :func:`not_found_message` and its one-line forms."""
    exc = DatasetNotFoundError(not_found_message(spec, split, searched, wanted, reason))
    why = " ".join(reason.split()).rstrip(".")
    why = why if len(why) <= 240 else why[:237] + "..."
    cache = next((d for d, label in searched if label in ("cache", "cache_dir=", "$NNLOCAL_CACHE")), None)
    place = f"{cache}/ (or $NNLOCAL_DATA/{spec.name}/)"
    exc.summary = (f"{spec.title} ({split} split) not found ({why}); run `nnlocal datasets --download {spec.name}` "
                   f"or put {wanted} into {place}")
    exc.download_advice = (f"could not download {spec.title} ({why}); put {wanted} into {place} by hand"
                           + (f" (from {spec.mirrors[0]})" if spec.mirrors else "")
                           + ", then `nnlocal datasets --verify` checks them")
    return exc


def ensure_files(spec: DatasetSpec, split: str, *, root=None, cache_dir=None, mirrors=None,
                 download: bool | None = None, timeout: float = DEFAULT_TIMEOUT,
                 progress: bool | None = None) -> dict[str, Path]:
    """Local paths of every file of ``split`` (``{published filename: path}``): found on disk, or
    downloaded (verified) into the cache. Raises :class:`DatasetNotFoundError` when neither works."""
    found = find_local(spec, split, root, cache_dir)
    if found is not None:
        return found
    files = spec.files(split)
    searched = search_dirs(spec, root, cache_dir)
    wanted = ", ".join(f.filename + (" (or uncompressed)" if f.filename.endswith(".gz") else "") for f in files)
    mirrors = tuple(spec.mirrors if mirrors is None else ([mirrors] if isinstance(mirrors, str) else mirrors))
    if not downloads_enabled(download):
        why = "download=False" if download is False else "NNLOCAL_OFFLINE is set"
        raise not_found_error(spec, split, searched, wanted, f"Downloading is disabled ({why}).")
    target = get_cache_dir(cache_dir) / spec.name
    paths = {}
    try:
        for f in files:
            paths[f.filename] = _find_in(target, f) or fetch_file(f, mirrors, target, timeout=timeout,
                                                                  progress=progress)
    except DownloadError as exc:
        raise not_found_error(spec, split, searched, wanted, f"Downloading into {target} failed:\n{exc}") from exc
    return paths
