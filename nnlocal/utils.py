"""Utilities: finite-difference gradient checks and atomic, pickle-free checkpoints."""
from __future__ import annotations

import os
import zipfile

import numpy as np

from ._files import atomic_write

__all__ = ["numerical_grad", "gradcheck", "GradcheckError", "save", "load"]

_FORMAT_KEY = "__nnlocal_format__"
_FORMAT_VERSION = 1


class GradcheckError(AssertionError):
    """An analytic gradient disagreed with central differences."""


def numerical_grad(fn, inputs, eps: float = 1e-6) -> list[np.ndarray]:
    """Central differences dfn/dx for a scalar ``fn(*inputs)``; the inputs are perturbed in place
    (and restored), so they must be float64 arrays."""
    grads = []
    for x in inputs:
        if not isinstance(x, np.ndarray) or x.dtype != np.float64:
            raise ValueError("numerical_grad: every input must be a float64 ndarray "
                             f"(central differences are meaningless in float32), got {getattr(x, 'dtype', type(x))}")
        g = np.zeros(x.shape)
        # index x itself (not a reshaped view, which is a copy for non-contiguous arrays)
        for idx in np.ndindex(x.shape):
            orig = x[idx]
            x[idx] = orig + eps
            f_plus = float(fn(*inputs))
            x[idx] = orig - eps
            f_minus = float(fn(*inputs))
            x[idx] = orig
            g[idx] = (f_plus - f_minus) / (2 * eps)
        grads.append(g)
    return grads


def gradcheck(fn, inputs, eps: float = 1e-6, analytic=None, rtol: float = 1e-5, atol: float = 1e-8):
    """Check ``analytic`` gradients of the scalar ``fn(*inputs)`` against central differences.

    Returns the numerical gradients. If ``analytic`` (a list like ``inputs``) is given, raises
    :class:`GradcheckError` naming the first input and entry that disagree.
    """
    numeric = numerical_grad(fn, inputs, eps)
    if analytic is not None:
        if len(analytic) != len(numeric):
            raise GradcheckError(f"gradcheck: {len(analytic)} analytic gradients for {len(numeric)} inputs")
        for k, (a, n) in enumerate(zip(analytic, numeric)):
            a = np.asarray(a, dtype=np.float64)
            if a.shape != n.shape:
                raise GradcheckError(f"gradcheck: analytic gradient {k} has shape {a.shape}, expected {n.shape}")
            bad = ~np.isclose(a, n, rtol=rtol, atol=atol)
            if bad.any():
                idx = tuple(int(i) for i in np.argwhere(bad)[0])
                raise GradcheckError(f"gradcheck: input {k} at {idx}: analytic {a[idx]!r} vs numerical {n[idx]!r} "
                                     f"({int(bad.sum())} of {a.size} entries differ)")
    return numeric


def save(module, path) -> None:
    """Write ``module.state_dict()`` to ``path`` as ``.npz``, atomically and durably (temporary file,
    fsync, rename, fsync of the folder: see :func:`nnlocal._files.atomic_write`)."""
    path = os.fspath(path)
    state = module.state_dict()
    for reserved in (_FORMAT_KEY, "file", "allow_pickle"):  # the last two are np.savez's own arguments
        if reserved in state:
            raise ValueError(f"save: a parameter or buffer named {reserved!r} cannot be saved (reserved name)")
    for name, value in state.items():
        if value.dtype.kind not in "biuf":
            raise ValueError(f"save: '{name}' has dtype {value.dtype}; only numeric arrays can be saved")
    with atomic_write(path, mkdir=False) as fh:
        np.savez(fh, allow_pickle=False, **{_FORMAT_KEY: np.array(_FORMAT_VERSION)}, **state)


def load(module, path, strict: bool = True):
    """Load a checkpoint written by :func:`save` into ``module`` (no pickle is ever executed).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for a file that is not an
    nnlocal checkpoint (not a zip archive, truncated, another program's ``.npz``, object arrays).
    """
    path = os.fspath(path)
    if os.path.exists(path) and not zipfile.is_zipfile(path):
        raise ValueError(f"load: {path} is truncated or not an .npz checkpoint (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if _FORMAT_KEY not in archive.files:
                raise ValueError(f"load: {path} is not an nnlocal checkpoint (no {_FORMAT_KEY} entry)")
            state = {k: archive[k] for k in archive.files if k != _FORMAT_KEY}
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"load: {path} is truncated or not an .npz checkpoint ({exc})") from exc
    except ValueError as exc:
        if "nnlocal checkpoint" in str(exc):
            raise
        raise ValueError(f"load: {path} could not be read without pickle ({exc})") from exc
    module.load_state_dict(state, strict=strict)
    return module
