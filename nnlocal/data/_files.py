"""Small file-system helpers: atomic writes (temporary file in the same folder, then rename)."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write", "FILE_MODE"]


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: permissions of files we create (what ``open(..., "w")`` would give under the process umask)
FILE_MODE = 0o666 & ~_current_umask()


@contextlib.contextmanager
def atomic_write(path):
    """Yield a binary file object for a temporary file next to ``path``; on a clean exit it is
    renamed onto ``path`` (atomic on POSIX), on any exception (incl. ``KeyboardInterrupt``) it is
    deleted, so ``path`` is either absent, the old file, or the complete new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
