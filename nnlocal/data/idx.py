"""Reading and writing IDX files (the format of MNIST and Fashion-MNIST), gzip-compressed or raw.

An IDX file is a 4-byte magic number ``00 00 TT NN`` (``TT`` the element type, ``NN`` the number of
dimensions), ``NN`` big-endian ``uint32`` dimension sizes, then the elements in C order, big-endian.

:func:`read_idx` checks all of it: the magic number, the type code, that the header is complete and
that the payload holds exactly ``prod(dims)`` elements. Anything wrong raises a ``ValueError`` that
names the file and says what is wrong. Compression is detected from the content (the gzip magic
``1f 8b``), not from the file name, so ``x.gz`` holding raw bytes (or the reverse) still reads.
"""
from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from .._files import atomic_write

__all__ = ["read_idx", "read_idx_header", "write_idx", "parse_idx", "IDX_TYPES"]

#: IDX type code -> big-endian NumPy dtype
IDX_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in IDX_TYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == _GZIP_MAGIC


def _read_all(path: Path) -> bytes:
    """The file's bytes, decompressed if it is gzip; a broken gzip stream is a ``ValueError``."""
    if not _is_gzip(path):
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (EOFError, OSError, zlib.error) as exc:  # truncated stream, bad CRC, garbage
        raise ValueError(f"{path}: corrupt gzip stream ({exc})") from exc


def _parse_header(head: bytes, name) -> tuple[np.dtype, tuple[int, ...], int]:
    if len(head) < 4:
        raise ValueError(f"{name}: not an IDX file: {len(head)} bytes is too short for the 4-byte magic number")
    if head[0] != 0 or head[1] != 0:
        magic = int.from_bytes(head[:4], "big")
        raise ValueError(f"{name}: not an IDX file: bad magic number 0x{magic:08x} "
                         "(expected 0x0000TTNN: two zero bytes, a type code, the number of dimensions)")
    code, ndim = head[2], head[3]
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02x}" for c in IDX_TYPES)
        raise ValueError(f"{name}: unknown IDX type code 0x{code:02x} in the magic number (known: {known})")
    if ndim == 0:
        raise ValueError(f"{name}: IDX magic number declares 0 dimensions")
    header_len = 4 + 4 * ndim
    if len(head) < header_len:
        raise ValueError(f"{name}: IDX header truncated: {ndim} dimensions need a {header_len}-byte header, "
                         f"the file has {len(head)} bytes")
    dims = struct.unpack(f">{ndim}I", head[4:header_len])
    return IDX_TYPES[code], tuple(int(d) for d in dims), header_len


def parse_idx(buf: bytes, name="<bytes>") -> np.ndarray:
    """Parse an in-memory (uncompressed) IDX file; ``name`` is used in error messages."""
    dtype, dims, header_len = _parse_header(buf[: 4 + 4 * 255], name)
    count = int(np.prod(dims, dtype=np.int64))
    need = count * dtype.itemsize
    have = len(buf) - header_len
    if have < need:
        raise ValueError(f"{name}: IDX payload truncated: dimensions {dims} of {dtype.newbyteorder('=')} need "
                         f"{need} bytes after the header, the file has {have}")
    if have > need:
        raise ValueError(f"{name}: IDX file has {have - need} unexpected trailing bytes after the data "
                         f"(dimensions {dims} of {dtype.newbyteorder('=')} need {need} bytes)")
    arr = np.frombuffer(buf, dtype=dtype, count=count, offset=header_len).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)  # native byte order, writable


def read_idx(path) -> np.ndarray:
    """Read an IDX file (gzip or raw) into a native-byte-order array of its declared shape.

    Raises ``ValueError`` naming the file for a bad magic number, an unknown type code, a truncated
    header, a payload shorter or longer than the dimensions say, or a corrupt gzip stream.
    """
    path = Path(path)
    return parse_idx(_read_all(path), path)


def read_idx_header(path) -> tuple[np.dtype, tuple[int, ...]]:
    """``(dtype, dims)`` from an IDX file's header only (cheap, even for a large gzip file)."""
    path = Path(path)
    try:
        opener = gzip.open if _is_gzip(path) else open
        with opener(path, "rb") as f:
            head = f.read(4)
            if len(head) == 4 and head[0] == 0 and head[1] == 0:
                head += f.read(4 * head[3])
    except (EOFError, OSError, zlib.error) as exc:
        raise ValueError(f"{path}: corrupt gzip stream ({exc})") from exc
    dtype, dims, _ = _parse_header(head, path)
    return dtype.newbyteorder("="), dims


def write_idx(path, array, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file (gzip-compressed if ``compress``, by default when the name ends
    in ``.gz``). The file is written to a temporary name and renamed, so it is never left partial."""
    path = Path(path)
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _CODES:
        raise ValueError(f"write_idx: IDX cannot store dtype {array.dtype} "
                         f"(supported: {', '.join(str(d.newbyteorder('=')) for d in IDX_TYPES.values())})")
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"write_idx: IDX needs 1 to 255 dimensions, got an array of shape {array.shape}")
    if any(d >= 2**32 for d in array.shape):
        raise ValueError(f"write_idx: dimension sizes must fit in uint32, got {array.shape}")
    code = _CODES[native]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()
    data = header + payload
    if compress is None:
        compress = path.name.endswith(".gz")
    if compress:
        data = gzip.compress(data, mtime=0)
    with atomic_write(path) as f:
        f.write(data)
    return path
