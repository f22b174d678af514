"""Durable atomic file writes: a temporary file in the same folder, fsynced, renamed onto the target,
then the folder fsynced, so after a crash (or power loss) the target is the old file or the complete
new one, never a partial file, and a completed write is not lost with the folder entry."""
from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "write_text", "fsync_directory", "file_mode"]


def file_mode() -> int:
    """The permissions ``open(..., "w")`` would give a new file under the process umask."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def fsync_directory(path) -> None:
    """Flush the folder ``path`` (its entries: a rename into it) to disk.

    A no-op where folders cannot be opened (Windows) or the file system does not support fsync on
    a folder (``EINVAL``/``ENOTSUP``); any other error is raised."""
    if os.name == "nt":
        return
    fd = os.open(os.fspath(path), os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path, mkdir: bool = True):
    """Yield a binary file object for a temporary file next to ``path``. On a clean exit its data is
    fsynced, it is renamed onto ``path`` (atomic on POSIX) and the folder is fsynced; on any
    exception (incl. ``KeyboardInterrupt``) it is deleted, so ``path`` is either absent, the old
    file, or the complete new one. ``mkdir``: create missing parent folders first."""
    path = Path(path)
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, file_mode())  # mkstemp makes the file private (0600); give it a normal mode
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_directory(path.parent)


def write_text(path, text: str) -> Path:
    """``Path(path).write_text(text)`` (UTF-8), atomically and durably: see :func:`atomic_write`."""
    with atomic_write(path) as f:
        f.write(text.encode("utf-8"))
    return Path(path)
