"""Named two-item datasets: Multi-MNIST and Multi-Fashion-MNIST with the original's splits, cached.

The BU-TD Multi-MNIST experiment builds its images with :func:`~nnlocal.data.multi_mnist` (two
28x28 items on a 36x36 canvas, overlap = max, nearest-neighbour resize back to 28x28; labels
``(left, right)``) and splits them like this, which nnlocal follows for both base sets:

=========  ==================================================  =======
split      left items (in order) and right items (random)      size
=========  ==================================================  =======
``train``  base training images 0 .. 49,999                    50,000
``val``    base training images 50,000 .. 59,999               10,000
``test``   base test images 0 .. 9,999                         10,000
=========  ==================================================  =======

Every left item is one image of the split's range, in order; its right item is drawn uniformly
(with replacement) from the *same* range, so the three splits share no base image. The original
drew the right items without a seed; nnlocal draws them from ``numpy.random.default_rng([seed,
k])`` with k = 0, 1, 2 for train, val, test, so each split is a function of ``seed`` alone (and
does not depend on which other splits were built).

The images are built once per ``(dataset, seed, split)`` and cached as ``.npz`` (uint8 images,
int64 labels, the base indices of both items, read back with ``allow_pickle=False``) under
``<cache>/<dataset>/`` (:func:`~nnlocal.data.get_cache_dir`), written atomically. A cache file
that cannot be read, or that belongs to another construction, is rebuilt with a warning.
"""
from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import numpy as np

from .._files import atomic_write
from .fetch import DEFAULT_TIMEOUT, FASHION_MNIST, MNIST, find_local, get_cache_dir
from .idx import read_idx_header
from .synthetic import multi_mnist

__all__ = ["MULTI_DATASETS", "MULTI_SPLITS", "MULTI_VAL_SIZE", "build_multi_split", "load_multi_mnist",
           "multi_cache_path", "describe_multi"]

#: the named two-item datasets and their base sets
MULTI_DATASETS = {"multi-mnist": MNIST, "multi-fashion-mnist": FASHION_MNIST}
MULTI_SPLITS = ("train", "val", "test")
#: images at the end of the base training set that form the validation split
MULTI_VAL_SIZE = 10_000
#: version of the construction stored in every cache file (bump it when the construction changes)
_VERSION = 1
_KEYS = ("images", "labels", "source", "meta")


def _check(name: str, split: str) -> None:
    if name not in MULTI_DATASETS:
        raise ValueError(f"unknown two-item dataset {name!r}; valid names: {', '.join(MULTI_DATASETS)}")
    if split not in MULTI_SPLITS:
        raise ValueError(f"{name}: unknown split {split!r}; valid splits: {', '.join(map(repr, MULTI_SPLITS))}")


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"multi-mnist datasets: seed must be a non-negative int, got {seed!r}")
    return int(seed)


def build_multi_split(base_train, base_test, split: str, seed: int = 0, val_size: int = MULTI_VAL_SIZE):
    """One split of the two-item dataset over a base set, without any file I/O.

    ``base_train`` / ``base_test`` are ``(images (N, 1, s, s) or (N, s, s), labels (N,))``. Returns
    ``(x, y, source)``: ``x`` the two-item images in the base images' dtype ``(n, 1, s, s)``,
    ``y`` int64 ``(n, 2)`` = (left, right) labels, ``source`` int64 ``(n, 2)`` = the indices of the
    left and right items in the base split they come from (the training set for train/val).
    """
    if split not in MULTI_SPLITS:
        raise ValueError(f"build_multi_split: unknown split {split!r}; valid splits: {', '.join(MULTI_SPLITS)}")
    seed = _check_seed(seed)
    images, labels = base_test if split == "test" else base_train
    n = len(images)
    if split != "test":
        if not 0 < val_size < n:
            raise ValueError(f"build_multi_split: val_size must be in [1, {n - 1}] for a base training set of "
                             f"{n} images, got {val_size}")
        lo, hi = (0, n - val_size) if split == "train" else (n - val_size, n)
        images, labels = images[lo:hi], labels[lo:hi]
    else:
        lo = 0
    rng = np.random.default_rng([seed, MULTI_SPLITS.index(split)])
    x, y, right = multi_mnist(images, labels, rng=rng, return_indices=True)
    if x.ndim == 3:
        x = x[:, None]
    source = np.stack([np.arange(len(x), dtype=np.int64), right.astype(np.int64)], axis=1) + lo
    return x, y, source


def multi_cache_path(name: str, split: str, seed: int = 0, cache_dir=None, val_size: int = MULTI_VAL_SIZE) -> Path:
    """Where :func:`load_multi_mnist` caches a split: ``<cache>/<name>/seed<seed>-<split>[-val<val_size>].npz``."""
    _check(name, split)
    seed = _check_seed(seed)
    suffix = "" if val_size == MULTI_VAL_SIZE else f"-val{int(val_size)}"
    return get_cache_dir(cache_dir) / name / f"seed{seed}-{split}{suffix}.npz"


def _meta(name: str, split: str, seed: int, val_size: int) -> np.ndarray:
    return np.array([_VERSION, seed, MULTI_SPLITS.index(split), val_size, list(MULTI_DATASETS).index(name)],
                    dtype=np.int64)


def _read_cache(path: Path, meta: np.ndarray):
    """``(images uint8, labels int64 (n, 2))`` from a cache file, or ``None`` (with a warning) when it
    cannot be read or was built differently."""
    try:
        with np.load(path, allow_pickle=False) as f:
            if sorted(f.files) != sorted(_KEYS):
                raise ValueError(f"holds {sorted(f.files)}, expected {sorted(_KEYS)}")
            x, y, src, got = (f[k] for k in _KEYS)
        if not np.array_equal(got, meta):
            raise ValueError(f"built with (version, seed, split, val_size, dataset) = {got.tolist()}, "
                             f"expected {meta.tolist()}")
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1] != 1 or y.shape != (len(x), 2) or y.dtype != np.int64 \
                or src.shape != (len(x), 2):
            raise ValueError(f"unexpected arrays: images {x.dtype} {x.shape}, labels {y.dtype} {y.shape}")
        return x, y
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        warnings.warn(f"{path}: unusable cache file ({exc}); rebuilding it", UserWarning, stacklevel=3)
        return None


def _base_uint8(spec, split, io) -> tuple[np.ndarray, np.ndarray]:
    from .datasets import load_idx_dataset  # the loaders import this module lazily

    x, y = load_idx_dataset(spec, split, **io)
    return np.rint(x * np.float32(255.0)).astype(np.uint8), y     # exact: the loader divided uint8 by 255


def load_multi_mnist(name: str = "multi-fashion-mnist", split: str = "train", seed: int = 0, *,
                     val_size: int = MULTI_VAL_SIZE, cache: bool = True, root=None, cache_dir=None, mirrors=None,
                     download: bool | None = None, timeout: float = DEFAULT_TIMEOUT,
                     progress: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(images float32 (n, 1, 28, 28) in [0, 1], labels int64 (n, 2) = (left, right))`` of the
    named two-item dataset (``"multi-fashion-mnist"`` or ``"multi-mnist"``) and ``split``
    ("train" 50,000 / "val" 10,000 / "test" 10,000; see the module docstring).

    Read from the cache when it holds this ``(name, seed, split)``; otherwise built from the base
    set (found or downloaded like :func:`~nnlocal.data.load_fashion_mnist`; Multi-MNIST needs the
    real MNIST training set, not the test-set fallback) and, with ``cache=True``, cached.
    """
    _check(name, split)
    seed = _check_seed(seed)
    path = multi_cache_path(name, split, seed, cache_dir, val_size)
    meta = _meta(name, split, seed, int(val_size))
    found = _read_cache(path, meta) if cache and path.exists() else None
    if found is None:
        io = dict(root=root, cache_dir=cache_dir, mirrors=mirrors, download=download, timeout=timeout,
                  progress=progress)
        spec = MULTI_DATASETS[name]
        base = _base_uint8(spec, "test" if split == "test" else "train", io)
        x8, y, src = build_multi_split(base, base, split, seed, val_size)
        if cache:
            with atomic_write(path) as f:
                np.savez_compressed(f, images=x8, labels=y, source=src, meta=meta)
        found = x8, y
    x8, y = found
    x = x8.astype(np.float32)
    x /= np.float32(255.0)
    return x, y


def describe_multi(root=None, cache_dir=None) -> list[dict]:
    """Rows for ``describe_datasets``: per two-item dataset and split, whether seed 0 is cached, can be
    built from its base set on first use, or cannot (base set missing). Never reads image data."""
    rows = []
    for name, spec in MULTI_DATASETS.items():
        for split in MULTI_SPLITS:
            row = {"dataset": name, "split": split}
            path = multi_cache_path(name, split, 0, cache_dir)
            base_split = "test" if split == "test" else "train"
            paths = find_local(spec, base_split, root, cache_dir)
            if path.exists():
                row.update(status="found", n=None, where=f"cache {path} (seed 0)")
            elif paths is None:
                row.update(status="missing", n=None,
                           where=f"built from the {spec.name} {base_split} set, which is missing "
                                 f"(see the {spec.name} rows)")
            else:
                row.update(status="found", n=None,
                           where=f"built from {spec.name} {base_split} on first use, cached in {path.parent}")
            if paths is not None:
                try:
                    _, dims = read_idx_header(paths[spec.files(base_split)[0].filename])
                    n = dims[0]
                except ValueError:
                    n = None
                if n is not None and split != "test" and n <= MULTI_VAL_SIZE:
                    row.update(status="missing", where=f"the {spec.name} training set holds only {n} images")
                elif n is not None:
                    row["n"] = n if split == "test" else (n - MULTI_VAL_SIZE if split == "train" else MULTI_VAL_SIZE)
            rows.append(row)
    return rows
