"""The official *binary* CIFAR-10 release (``cifar-10-binary.tar.gz``), never the pickled one.

Each batch file (``data_batch_1.bin`` .. ``data_batch_5.bin``, ``test_batch.bin``; 10,000 records
each) is a sequence of 3,073-byte records: one label byte (0-9), then 3,072 pixel bytes, the 32x32
red plane, then green, then blue, each row-major. The batches are read either from an extracted
``cifar-10-batches-bin/`` folder or directly from the ``.tar.gz`` (members are read with
:mod:`tarfile` in one sequential pass; nothing is extracted to disk).
"""
from __future__ import annotations

import tarfile
import zlib
from pathlib import Path

import numpy as np

from .fetch import (CIFAR10, CIFAR10_ARCHIVE, DEFAULT_TIMEOUT, DownloadError, downloads_enabled, fetch_file,
                    get_cache_dir, not_found_error, search_dirs)

__all__ = ["RECORD_BYTES", "parse_cifar_batch", "read_cifar_batches", "count_cifar_records", "find_cifar10",
           "ensure_cifar10", "BT709_LUMA"]

RECORD_BYTES = 1 + 3 * 32 * 32
_FOLDER = "cifar-10-batches-bin"
#: ITU-R BT.709 luma weights, as ``skimage.color.rgb2gray`` uses them
BT709_LUMA = (0.2125, 0.7154, 0.0721)


def parse_cifar_batch(buf: bytes, name) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 (N, 3, 32, 32), labels uint8 (N,))`` from one binary batch's bytes.
    Raises ``ValueError`` naming ``name`` if the size is not a whole number of records or a label
    is not in 0..9."""
    if len(buf) == 0 or len(buf) % RECORD_BYTES:
        raise ValueError(f"{name}: {len(buf)} bytes is not a whole number of {RECORD_BYTES}-byte CIFAR-10 records "
                         f"(1 label byte + 3072 pixel bytes): the file is truncated or not a binary CIFAR-10 batch "
                         f"({len(buf) // RECORD_BYTES} whole records, {len(buf) % RECORD_BYTES} bytes left over)")
    rec = np.frombuffer(buf, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    labels = rec[:, 0].copy()
    if labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise ValueError(f"{name}: record {bad} has label {labels[bad]}, CIFAR-10 labels are 0..9 "
                         "(is this the CIFAR-100 binary release?)")
    images = rec[:, 1:].reshape(-1, 3, 32, 32).copy()
    return images, labels


def read_cifar_batches(source, names) -> tuple[np.ndarray, np.ndarray]:
    """Read and concatenate the batches ``names`` (in that order) from ``source``: a folder holding
    them, or a ``cifar-10-binary.tar.gz`` archive (members matched by file name)."""
    source = Path(source)
    chunks: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if source.is_dir():
        for n in names:
            chunks[n] = parse_cifar_batch((source / n).read_bytes(), source / n)
    else:
        wanted = set(names)
        try:
            with tarfile.open(source, "r:*") as tar:
                for member in tar:  # one sequential pass: no re-decompression per member
                    base = member.name.rsplit("/", 1)[-1]
                    if member.isfile() and base in wanted and base not in chunks:
                        data = tar.extractfile(member).read()
                        chunks[base] = parse_cifar_batch(data, f"{source}:{member.name}")
                        if len(chunks) == len(wanted):
                            break
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise ValueError(f"{source}: corrupt or truncated archive ({type(exc).__name__}: {exc})") from exc
        missing = [n for n in names if n not in chunks]
        if missing:
            raise ValueError(f"{source}: archive has no member {', '.join(missing)} "
                             f"(expected {_FOLDER}/<name> as in the official binary release)")
    images = np.concatenate([chunks[n][0] for n in names])
    labels = np.concatenate([chunks[n][1] for n in names])
    return images, labels


def count_cifar_records(source, names) -> int:
    """Number of records in the batches ``names`` of ``source`` (folder or archive), from the file
    sizes alone; ``ValueError`` naming the file if one is missing or not a whole number of records."""
    source = Path(source)
    sizes: dict[str, int] = {}
    if source.is_dir():
        sizes = {n: (source / n).stat().st_size for n in names if (source / n).is_file()}
    else:
        try:
            with tarfile.open(source, "r:*") as tar:
                for member in tar:
                    base = member.name.rsplit("/", 1)[-1]
                    if member.isfile() and base in names:
                        sizes.setdefault(base, member.size)
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise ValueError(f"{source}: corrupt or truncated archive ({type(exc).__name__}: {exc})") from exc
    total = 0
    for n in names:
        if n not in sizes:
            raise ValueError(f"{source}: no {n}")
        if sizes[n] == 0 or sizes[n] % RECORD_BYTES:
            raise ValueError(f"{source}: {n} has {sizes[n]} bytes, not a whole number of {RECORD_BYTES}-byte records")
        total += sizes[n] // RECORD_BYTES
    return total


def find_cifar10(split: str, root=None, cache_dir=None) -> Path | None:
    """The first local source of ``split``: a folder with the batch files (``<dir>/cifar-10-batches-bin/``
    or ``<dir>/`` itself) or a ``<dir>/cifar-10-binary.tar.gz``. Never touches the network."""
    names = [f.filename for f in CIFAR10.files(split)]
    for folder, _ in search_dirs(CIFAR10, root, cache_dir):
        for d in (folder / _FOLDER, folder):
            if all((d / n).is_file() for n in names):
                return d
        archive = folder / CIFAR10_ARCHIVE.filename
        if archive.is_file():
            return archive
    return None


def ensure_cifar10(split: str, *, root=None, cache_dir=None, mirrors=None, download: bool | None = None,
                   timeout: float = DEFAULT_TIMEOUT, progress: bool | None = None) -> Path:
    """A local source for ``split`` (see :func:`find_cifar10`), downloading the verified archive
    into the cache if needed."""
    src = find_cifar10(split, root, cache_dir)
    if src is not None:
        return src
    searched = search_dirs(CIFAR10, root, cache_dir)
    names = [f.filename for f in CIFAR10.files(split)]
    wanted = f"{_FOLDER}/{{{', '.join(names)}}} or {CIFAR10_ARCHIVE.filename}"
    if not downloads_enabled(download):
        why = "download=False" if download is False else "NNLOCAL_OFFLINE is set"
        raise not_found_error(CIFAR10, split, searched, wanted, f"Downloading is disabled ({why}).")
    mirrors = tuple(CIFAR10.mirrors if mirrors is None else ([mirrors] if isinstance(mirrors, str) else mirrors))
    target = get_cache_dir(cache_dir) / CIFAR10.name
    try:
        return fetch_file(CIFAR10_ARCHIVE, mirrors, target, timeout=timeout, progress=progress)
    except DownloadError as exc:
        raise not_found_error(CIFAR10, split, searched, wanted, f"Downloading into {target} failed:\n{exc}") from exc
