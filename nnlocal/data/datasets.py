"""Dataset loaders. Every loader returns ``(images, labels)``: images ``float32`` in ``[0, 1]``,
``NCHW``; labels ``int64``.

=================  ====================  ===========================================================
name               images                source
=================  ====================  ===========================================================
``digits``         (N, 1, 8, 8)          scikit-learn's bundled 8x8 digits (no download); pixel/16
``mnist``          (N, 1, 28, 28)        IDX files, searched then downloaded (see :mod:`.fetch`)
``fashion-mnist``  (N, 1, 28, 28)        IDX files; also the Debian package ``dataset-fashion-mnist``
``cifar10``        (N, 3, 32, 32)        the official binary release (folder or ``.tar.gz``)
``cifar10-gray``   (N, 1, 32, 32)        the same, BT.709 luma ``0.2125 R + 0.7154 G + 0.0721 B``
=================  ====================  ===========================================================

``multi-mnist`` and ``multi-fashion-mnist``: two items per 28x28 image, labels ``(N, 2)``, splits
train / val / test, built and cached by :mod:`.multi`.

Fixed splits:

* ``load_digits``: the 1,797 images in scikit-learn's order; **train = the first 1,500, test = the
  last 297** (``X[:1500]`` / ``X[1500:]``), ``"all"`` = all 1,797. Both parts hold every class
  (train 146-153 per class, test 27-33).
* ``load_dataset("mnist", ...)`` when the MNIST training files are not on disk but the test files are
  (the CI and development machines): **train = test images 0..7,999, test = test images
  8,000..9,999**, with a warning. ``fallback=False`` turns this off (then the training set is
  downloaded, or :class:`DatasetNotFoundError` explains where to put it).
"""
from __future__ import annotations

import contextlib
import functools
import warnings
from pathlib import Path

import numpy as np

from . import cifar
from . import fetch
from .fetch import (CIFAR10, DEFAULT_TIMEOUT, FASHION_MNIST, MNIST, ChecksumError, CorruptDataError, DatasetSpec,
                    ensure_files, find_local, search_dirs, verify_file)
from .idx import read_idx, read_idx_header

__all__ = [
    "load_mnist", "load_fashion_mnist", "load_cifar10", "load_digits", "load_idx_dataset", "load_dataset",
    "describe_datasets", "download_dataset", "normalize", "DATASET_NAMES", "DIGITS_TRAIN_SIZE", "MNIST_FALLBACK_TRAIN_SIZE",
    "MNIST_MEAN", "MNIST_STD",
]

DIGITS_TRAIN_SIZE = 1500
MNIST_FALLBACK_TRAIN_SIZE = 8000
#: the usual MNIST normalisation constants (BU-TD uses them)
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081

_SPLITS = ("train", "test")


def _check_split(split: str, valid=_SPLITS) -> str:
    if split not in valid:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(map(repr, valid))}")
    return split


@contextlib.contextmanager
def _damaged_files(spec: DatasetSpec):
    """A file on disk that cannot be read becomes a :class:`CorruptDataError` saying what to do."""
    try:
        yield
    except (CorruptDataError, ChecksumError):
        raise
    except ValueError as exc:
        raise CorruptDataError(f"{exc}. The file is corrupt: delete it so that the next load downloads a verified "
                               f"copy (`nnlocal datasets --download {spec.name}` does it now), or replace it with a "
                               "good one (`python -m nnlocal.data --verify` checks the files found)") from exc


# ----------------------------------------------------------------------------------------------
# IDX datasets (MNIST, Fashion-MNIST)
# ----------------------------------------------------------------------------------------------
def load_idx_dataset(spec: DatasetSpec, split: str = "train", *, root=None, cache_dir=None, mirrors=None,
                     download: bool | None = None, timeout: float = DEFAULT_TIMEOUT, progress: bool | None = None,
                     verify: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Load an MNIST-like IDX dataset described by ``spec`` (whose split lists the images file, then
    the labels file). ``verify=True`` also checks local copies against the known checksums (of the
    published file, or of its decompressed content); downloads are always verified."""
    _check_split(split, tuple(spec.splits))
    paths = ensure_files(spec, split, root=root, cache_dir=cache_dir, mirrors=mirrors, download=download,
                         timeout=timeout, progress=progress)
    img_file, lbl_file = spec.files(split)
    img_path, lbl_path = paths[img_file.filename], paths[lbl_file.filename]
    if verify:
        verify_file(img_path, img_file)
        verify_file(lbl_path, lbl_file)
    with _damaged_files(spec):
        images = read_idx(img_path)
        labels = read_idx(lbl_path)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"{img_path}: expected uint8 images of shape (N, H, W), got {images.dtype} {images.shape}")
        if labels.ndim != 1 or labels.dtype != np.uint8:
            raise ValueError(f"{lbl_path}: expected uint8 labels of shape (N,), got {labels.dtype} {labels.shape}")
        if len(images) != len(labels):
            raise ValueError(f"{img_path} holds {len(images)} images but {lbl_path} holds {len(labels)} labels: "
                             "one of them is corrupt or from another split")
        if spec.num_classes is not None and labels.size and labels.max() >= spec.num_classes:
            bad = int(np.argmax(labels >= spec.num_classes))
            raise ValueError(f"{lbl_path}: label {labels[bad]} at index {bad} is outside 0..{spec.num_classes - 1} "
                             f"({spec.title} has {spec.num_classes} classes)")
    x = images.astype(np.float32)[:, None]
    x /= 255.0
    return x, labels.astype(np.int64)


def load_mnist(split: str = "train", *, root=None, cache_dir=None, mirrors=None, download: bool | None = None,
               timeout: float = DEFAULT_TIMEOUT, progress: bool | None = None,
               verify: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """MNIST ``split`` ("train": 60,000, "test": 10,000) as ``(float32 (N, 1, 28, 28) in [0, 1], int64 (N,))``.

    Looks in ``root``, ``$NNLOCAL_DATA/mnist/``, then the cache (``cache_dir``, ``$NNLOCAL_CACHE`` or
    ``~/.cache/nnlocal``) for ``train-images-idx3-ubyte.gz`` etc. (gzip or raw); otherwise downloads
    them (verified by MD5) from ``mirrors`` into the cache. ``download=False`` never downloads.
    Raises :class:`~nnlocal.data.DatasetNotFoundError` with the folders searched and how to provide
    the files.
    """
    return load_idx_dataset(MNIST, split, root=root, cache_dir=cache_dir, mirrors=mirrors, download=download,
                            timeout=timeout, progress=progress, verify=verify)


def load_fashion_mnist(split: str = "train", *, root=None, cache_dir=None, mirrors=None,
                       download: bool | None = None, timeout: float = DEFAULT_TIMEOUT,
                       progress: bool | None = None, verify: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST ``split`` (60,000 / 10,000), like :func:`load_mnist`; also found in
    ``/usr/share/datasets/fashion-mnist/`` (``apt-get install dataset-fashion-mnist``)."""
    return load_idx_dataset(FASHION_MNIST, split, root=root, cache_dir=cache_dir, mirrors=mirrors,
                            download=download, timeout=timeout, progress=progress, verify=verify)


# ----------------------------------------------------------------------------------------------
# CIFAR-10 (binary release)
# ----------------------------------------------------------------------------------------------
def load_cifar10(split: str = "train", grayscale: bool = False, *, root=None, cache_dir=None, mirrors=None,
                 download: bool | None = None, timeout: float = DEFAULT_TIMEOUT,
                 progress: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 ``split`` ("train": 50,000, "test": 10,000) from the official *binary* release, as
    ``float32 (N, 3, 32, 32)`` in ``[0, 1]`` (channels R, G, B), or with ``grayscale=True``
    ``(N, 1, 32, 32)`` = ``0.2125 R + 0.7154 G + 0.0721 B`` (ITU-R BT.709, as ``skimage.color.rgb2gray``).

    Sources, in each searched folder (``root``, ``$NNLOCAL_DATA/cifar10/``, the cache): the extracted
    ``cifar-10-batches-bin/``, the batch files themselves, or ``cifar-10-binary.tar.gz`` (read without
    extracting). Otherwise the archive is downloaded (MD5-verified) into the cache.
    """
    _check_split(split)
    src = cifar.ensure_cifar10(split, root=root, cache_dir=cache_dir, mirrors=mirrors, download=download,
                               timeout=timeout, progress=progress)
    names = [f.filename for f in CIFAR10.files(split)]
    with _damaged_files(CIFAR10):
        images, labels = cifar.read_cifar_batches(src, names)
    if grayscale:
        w = np.asarray(cifar.BT709_LUMA, dtype=np.float32) / np.float32(255.0)
        x = w[0] * images[:, 0].astype(np.float32)
        x += w[1] * images[:, 1].astype(np.float32)
        x += w[2] * images[:, 2].astype(np.float32)
        x = np.clip(x, 0.0, 1.0, out=x)[:, None]
    else:
        x = images.astype(np.float32)
        x /= 255.0
    return x, labels.astype(np.int64)


# ----------------------------------------------------------------------------------------------
# scikit-learn digits (embedded, no download)
# ----------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits as _sk_load_digits

    d = _sk_load_digits()
    x = (np.asarray(d.images, dtype=np.float32) / np.float32(16.0))[:, None]
    y = np.asarray(d.target, dtype=np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def load_digits(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits as ``(float32 (N, 1, 8, 8) in [0, 1], int64 (N,))`` (pixel
    values 0..16 divided by 16). Fixed split in scikit-learn's order: ``"train"`` = the first 1,500
    images, ``"test"`` = the last 297, ``"all"`` = all 1,797. Needs no download."""
    _check_split(split, ("train", "test", "all"))
    x, y = _digits_arrays()
    sl = {"train": slice(0, DIGITS_TRAIN_SIZE), "test": slice(DIGITS_TRAIN_SIZE, None), "all": slice(None)}[split]
    return x[sl].copy(), y[sl].copy()


# ----------------------------------------------------------------------------------------------
# one entry point for the demos
# ----------------------------------------------------------------------------------------------
DATASET_NAMES = ("digits", "mnist", "fashion-mnist", "cifar10", "cifar10-gray", "multi-mnist", "multi-fashion-mnist")
_ALIASES = {"fashionmnist": "fashion-mnist", "fashion": "fashion-mnist", "cifar-10": "cifar10",
            "cifar-10-gray": "cifar10-gray", "cifar10-grey": "cifar10-gray", "cifar10gray": "cifar10-gray",
            "sklearn-digits": "digits", "multi-fashion": "multi-fashion-mnist",
            "multi-fashionmnist": "multi-fashion-mnist"}


def canonical_name(name: str) -> str:
    """``"Fashion_MNIST"`` -> ``"fashion-mnist"``; raises ``ValueError`` listing the valid names."""
    key = str(name).strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in DATASET_NAMES:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASET_NAMES)}")
    return key


def load_dataset(name: str, split: str = "train", *, fallback: bool = True, root=None, cache_dir=None,
                 mirrors=None, download: bool | None = None, timeout: float = DEFAULT_TIMEOUT,
                 progress: bool | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` of dataset ``name`` (case-insensitive: "digits", "mnist", "fashion-mnist",
    "cifar10", "cifar10-gray") and ``split`` ("train" or "test"; "all" for digits).

    MNIST fallback (``fallback=True``, the default): if the MNIST *training* files are not on disk
    but the test files are, a :func:`warnings.warn` says so and the 10,000 test images are split
    deterministically: train = images 0..7,999, test = images 8,000..9,999 (disjoint). No download is
    attempted in that case. With ``fallback=False`` (or when the training files are present) the
    real splits are loaded, downloading them if needed.

    "multi-mnist" / "multi-fashion-mnist" (splits "train", "val", "test"; labels ``(N, 2)``) are
    built and cached by :func:`~nnlocal.data.multi.load_multi_mnist` with ``seed``; the other
    datasets ignore ``seed``.
    """
    key = canonical_name(name)
    if key.startswith("multi-"):
        from .multi import load_multi_mnist

        return load_multi_mnist(key, split, seed, root=root, cache_dir=cache_dir, mirrors=mirrors,
                                download=download, timeout=timeout, progress=progress)
    if key == "digits":
        return load_digits(split)
    io = dict(root=root, cache_dir=cache_dir, mirrors=mirrors, download=download, timeout=timeout,
              progress=progress)
    if key == "mnist":
        _check_split(split)
        if fallback and find_local(MNIST, "train", root, cache_dir) is None \
                and find_local(MNIST, "test", root, cache_dir) is not None:
            warnings.warn(
                "MNIST training set not found on disk; using the MNIST test set split instead: "
                f"train = test images 0..{MNIST_FALLBACK_TRAIN_SIZE - 1}, test = test images "
                f"{MNIST_FALLBACK_TRAIN_SIZE}..9999. Pass fallback=False to download the real training set "
                "(or put train-*-ubyte.gz into $NNLOCAL_DATA/mnist/).", UserWarning, stacklevel=2)
            x, y = load_mnist("test", **io)
            sl = slice(0, MNIST_FALLBACK_TRAIN_SIZE) if split == "train" else slice(MNIST_FALLBACK_TRAIN_SIZE, None)
            return x[sl].copy(), y[sl].copy()
        return load_mnist(split, **io)
    if key == "fashion-mnist":
        return load_fashion_mnist(split, **io)
    return load_cifar10(split, grayscale=(key == "cifar10-gray"), **io)



def load_train_test(name: str, **kwargs):
    """Both splits of :func:`load_dataset`: ``(x_train, y_train, x_test, y_test, notes)``.

    ``notes`` lists, once each, the warnings the loads raised (e.g. that the MNIST fallback split of
    the test set is in use), so a demo can print them beside its results.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x_train, y_train = load_dataset(name, "train", **kwargs)
        x_test, y_test = load_dataset(name, "test", **kwargs)
    notes = list(dict.fromkeys(str(w.message) for w in caught))
    return x_train, y_train, x_test, y_test, notes


def normalize(x: np.ndarray, mean, std) -> np.ndarray:
    """``(x - mean) / std`` in ``x``'s float dtype; ``mean``/``std`` are scalars or one value per
    channel (broadcast over axis 1 of ``NCHW``/``NC`` arrays), e.g. ``normalize(x, MNIST_MEAN, MNIST_STD)``."""
    x = np.asarray(x)
    dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float32
    mean = np.asarray(mean, dtype=dtype)
    std = np.asarray(std, dtype=dtype)
    if np.any(std == 0):
        raise ValueError("normalize: std must be non-zero")
    if mean.ndim == 1 or std.ndim == 1:
        shape = (1, -1) + (1,) * max(x.ndim - 2, 0)
        mean, std = mean.reshape(shape), std.reshape(shape)
    return ((x - mean) / std).astype(dtype, copy=False)


# ----------------------------------------------------------------------------------------------
# `nnlocal datasets`
# ----------------------------------------------------------------------------------------------
_CHECK_NAMES = {"md5": "file md5", "sha256": "file sha256", "raw_md5": "content md5", "unknown": "no checksum"}


def _idx_row(spec: DatasetSpec, split: str, root, cache_dir, verify: bool) -> dict:
    row = {"dataset": spec.name, "split": split}
    paths = find_local(spec, split, root, cache_dir)
    if paths is None:
        dirs = ", ".join(str(d) for d, _ in search_dirs(spec, root, cache_dir))
        row.update(status="missing", n=None, where=f"not in {dirs}")
        if spec is MNIST and split == "train" and find_local(MNIST, "test", root, cache_dir) is not None:
            row["where"] += "; load_dataset('mnist') uses a split of the test set instead"
        elif spec.mirrors:
            row["where"] += f"; downloaded from {spec.mirrors[0]} on first use"
        return row
    img_file = spec.files(split)[0]
    img_path = paths[img_file.filename]
    try:
        _, dims = read_idx_header(img_path)
        row.update(status="found", n=dims[0], where=str(img_path.parent))
    except ValueError as exc:  # corrupt header
        row.update(status="corrupt", n=None, where=str(exc))
    if verify:
        try:
            kinds = {verify_file(paths[f.filename], f) for f in spec.files(split)}
            row["checksum"] = "ok (" + ", ".join(sorted(_CHECK_NAMES[k] for k in kinds)) + ")"
        except ChecksumError as exc:
            row.update(status="corrupt", checksum="mismatch", where=str(exc))
    return row


def _cifar_row(split: str, root, cache_dir, verify: bool) -> dict:
    row = {"dataset": "cifar10", "split": split}
    src = cifar.find_cifar10(split, root, cache_dir)
    if src is None:
        dirs = ", ".join(str(d) for d, _ in search_dirs(CIFAR10, root, cache_dir))
        row.update(status="missing", n=None,
                   where=f"not in {dirs}; downloaded from {CIFAR10.mirrors[0]} on first use")
        return row
    names = [f.filename for f in CIFAR10.files(split)]
    try:
        row.update(status="found", n=cifar.count_cifar_records(src, names), where=str(src))
    except ValueError as exc:
        row.update(status="corrupt", n=None, where=str(exc))
    if verify:
        row["checksum"] = "-"
        if not Path(src).is_dir():
            try:
                row["checksum"] = f"ok ({_CHECK_NAMES[verify_file(src, cifar.CIFAR10_ARCHIVE)]})"
            except ChecksumError as exc:
                row.update(status="corrupt", checksum="mismatch", where=str(exc))
    return row


def describe_datasets(root=None, cache_dir=None, verify: bool = False) -> list[dict]:
    """One row per dataset and split: ``dataset``, ``split``, ``status`` ("found", "missing" or
    "corrupt"), ``n`` (number of images, from the file headers), ``where`` (the folder or archive
    used, or why it is missing). ``verify=True`` adds a ``checksum`` column ("ok"/"mismatch"/"-").
    Never downloads anything."""
    rows = []
    for split in ("train", "test"):
        row = {"dataset": "digits", "split": split}
        try:
            x, _ = load_digits(split)
            row.update(status="found", n=len(x), where="scikit-learn (bundled, no download)")
        except ImportError as exc:
            row.update(status="missing", n=None, where=f"scikit-learn not importable ({exc})")
        if verify:
            row["checksum"] = "-"
        rows.append(row)
    for spec in (MNIST, FASHION_MNIST):
        rows += [_idx_row(spec, split, root, cache_dir, verify) for split in ("train", "test")]
    rows += [_cifar_row(split, root, cache_dir, verify) for split in ("train", "test")]
    from .multi import describe_multi

    rows += [dict(r, checksum="-") if verify else r for r in describe_multi(root, cache_dir)]
    return rows


def _checked(path: Path, f, name: str) -> str:
    try:
        return _CHECK_NAMES[verify_file(path, f)]
    except ChecksumError as exc:
        raise CorruptDataError(f"{exc}. Delete {path} (or replace it with a good copy) and run "
                               f"`nnlocal datasets --download {name}` again") from exc


def download_dataset(name: str, *, cache_dir=None, mirrors=None, timeout: float = DEFAULT_TIMEOUT,
                     progress: bool | None = True) -> list[str]:
    """Fetch dataset ``name`` ("mnist", "fashion-mnist", "cifar10") into the cache through the
    verified download, with a progress bar (``nnlocal datasets --download NAME``); files already found
    in a searched folder are checked against their checksums instead. Returns one line per file.

    Raises :class:`DatasetNotFoundError` when a download fails (its ``download_advice`` says where to
    put the files by hand) and :class:`CorruptDataError` when a local copy fails its checksum.
    """
    key = canonical_name(name)
    if key == "digits":
        return ["digits: bundled with scikit-learn, nothing to download"]
    key = "cifar10" if key == "cifar10-gray" else key
    spec = fetch.SPECS[key]
    io = dict(cache_dir=cache_dir, mirrors=mirrors, download=True, timeout=timeout, progress=progress)
    lines = []
    for split in spec.splits:
        if key == "cifar10":
            found = cifar.find_cifar10(split, cache_dir=cache_dir)
            src = found or cifar.ensure_cifar10(split, **io)
            check = "-" if Path(src).is_dir() else _checked(src, cifar.CIFAR10_ARCHIVE, key)
            paths = {split: (src, check)}
        else:
            found = find_local(spec, split, cache_dir=cache_dir)
            got = found or ensure_files(spec, split, **io)
            paths = {f.filename: (got[f.filename], _checked(got[f.filename], f, key)) for f in spec.files(split)}
        state = "found" if found else "downloaded"
        lines += [f"{spec.name} {split}: {path} ({state}; checksum: {check})" for path, check in paths.values()]
    return list(dict.fromkeys(lines))
