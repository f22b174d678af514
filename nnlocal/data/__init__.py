"""``nnlocal.data``: datasets as plain arrays, and mini-batch iteration.

Every loader returns ``(images float32 in [0, 1], labels int64)``, images ``NCHW``:

* :func:`load_digits` -- scikit-learn's bundled 8x8 digits, the default that needs no download;
* :func:`load_mnist`, :func:`load_fashion_mnist` -- IDX files (gzip or raw), searched in ``root=``,
  ``$NNLOCAL_DATA/<name>/``, the cache (``$NNLOCAL_CACHE`` or ``~/.cache/nnlocal``) and, for
  Fashion-MNIST, ``/usr/share/datasets/fashion-mnist/``; downloaded (verified, atomically) otherwise;
* :func:`load_cifar10` -- the official binary CIFAR-10 release, RGB or BT.709 grayscale;
* :func:`load_dataset` -- all of the above by name, with the documented MNIST fallback;
* :func:`multi_mnist` -- the BU-TD two-digit construction over any MNIST-like set;
* :func:`load_multi_mnist` -- Multi-MNIST / Multi-Fashion-MNIST with the original's train/val/test
  splits, seeded and cached (also ``load_dataset("multi-fashion-mnist", split)``);
* :func:`logic_gate` -- XOR/AND/OR/NOT/ID in DEEP's convention;
* :class:`DataLoader` -- seeded, reshuffling mini-batches;
* :func:`read_idx` / :func:`write_idx` -- the IDX format;
* :func:`describe_datasets` -- what is found where (``python -m nnlocal.data``, ``nnlocal datasets``);
* :func:`download_dataset` -- fetch one into the cache, verified (``nnlocal datasets --download NAME``).
"""
from .cifar import parse_cifar_batch, read_cifar_batches
from .datasets import (DATASET_NAMES, DIGITS_TRAIN_SIZE, MNIST_FALLBACK_TRAIN_SIZE, MNIST_MEAN, MNIST_STD,
                       canonical_name, describe_datasets, download_dataset, load_cifar10, load_dataset, load_digits,
                       load_train_test, load_fashion_mnist, load_idx_dataset, load_mnist, normalize)
from .fetch import (SPECS, ChecksumError, CorruptDataError, DatasetNotFoundError, DatasetSpec, DownloadError,
                    RemoteFile, download_file, get_cache_dir)
from .idx import read_idx, read_idx_header, write_idx
from .loader import DataLoader
from .multi import MULTI_DATASETS, MULTI_SPLITS, build_multi_split, load_multi_mnist, multi_cache_path
from .synthetic import logic_gate, multi_mnist, multi_mnist_geometry, resize_nearest

__all__ = [
    "load_digits", "load_mnist", "load_fashion_mnist", "load_cifar10", "load_dataset", "load_train_test", "load_idx_dataset",
    "canonical_name", "DATASET_NAMES", "describe_datasets", "download_dataset", "normalize", "MNIST_MEAN", "MNIST_STD",
    "DIGITS_TRAIN_SIZE", "MNIST_FALLBACK_TRAIN_SIZE",
    "multi_mnist", "multi_mnist_geometry", "load_multi_mnist", "build_multi_split", "multi_cache_path",
    "MULTI_DATASETS", "MULTI_SPLITS", "resize_nearest", "logic_gate", "DataLoader",
    "read_idx", "read_idx_header", "write_idx", "parse_cifar_batch", "read_cifar_batches",
    "DatasetNotFoundError", "DownloadError", "ChecksumError", "CorruptDataError", "RemoteFile", "DatasetSpec",
    "SPECS",
    "download_file", "get_cache_dir", "main",
]


def main(argv=None) -> int:
    """``python -m nnlocal.data [--verify]``: print :func:`describe_datasets` as a table."""
    import argparse
    import os

    from ..report import print_table

    parser = argparse.ArgumentParser(
        prog="python -m nnlocal.data",
        description="Show which datasets nnlocal finds where (never downloads anything).")
    parser.add_argument("--verify", action="store_true",
                        help="also check the files found against their known MD5 checksums (reads them fully)")
    parser.add_argument("--root", default=None, help="an extra folder to search first (like root= in the loaders)")
    args = parser.parse_args(argv)
    rows = describe_datasets(root=args.root, verify=args.verify)
    print_table(rows, title="nnlocal datasets")
    print(f"\nNNLOCAL_DATA={os.environ.get('NNLOCAL_DATA', '(unset)')}   cache: {get_cache_dir()}"
          "   (set NNLOCAL_DATA / NNLOCAL_CACHE to change; NNLOCAL_OFFLINE=1 disables downloads)")
    return 0
