"""Hot loops as pure functions: ``kernels.cpu`` (Numba ``@njit``) and ``kernels.cuda`` (``numba.cuda``, opt-in).

A method class picks its kernels once with :func:`backend`::

    from nnlocal.kernels import backend, check_device
    self.device = check_device(device, "EPNet")
    ...
    backend(self.device).ep_relax(c, vt, bias, s, sizes, steps, eps, beta, target)

Both modules offer the same functions with the same signatures (numpy arrays in, numpy arrays out;
see :mod:`nnlocal.kernels.cuda` for the list). Nothing CUDA is imported until ``backend("cuda")``
is called: importing nnlocal never imports ``numba.cuda``.
"""
from __future__ import annotations

import functools
import os

__all__ = ["DEVICES", "backend", "check_device", "cuda_available"]

#: the accepted ``device`` strings
DEVICES = ("cpu", "cuda")

_NO_CUDA_HELP = (
    "To run on an NVIDIA GPU, install the CUDA driver and the optional extra: `pip install nnlocal[cuda]` "
    "(NVIDIA's numba-cuda package). To run the CUDA kernels without a GPU (slow; for testing), set "
    "NUMBA_ENABLE_CUDASIM=1 in the environment before numba is first imported. Or use device='cpu'."
)


def check_device(device, who: str = "nnlocal") -> str:
    """Validate a ``device`` argument: returns it when it is ``"cpu"`` or ``"cuda"``, else ValueError
    naming ``who``. Does not check that a GPU is present (that is :func:`backend`'s job)."""
    if not isinstance(device, str) or device not in DEVICES:
        raise ValueError(f"{who}: device must be 'cpu' or 'cuda', got {device!r}")
    return device


def _cuda_status() -> tuple[bool, str]:
    """(usable, reason): imports numba.cuda (only called when CUDA is asked for)."""
    try:
        from numba import cuda
    except Exception as exc:  # pragma: no cover - a numba build without its CUDA target
        return False, f"numba.cuda cannot be imported ({type(exc).__name__}: {exc})"
    try:
        if cuda.is_available():
            return True, "simulator" if _simulator_active() else "gpu"
    except Exception as exc:  # pragma: no cover - a broken driver install
        return False, f"the CUDA driver failed to initialise ({type(exc).__name__}: {exc})"
    err = cuda.cuda_error() if hasattr(cuda, "cuda_error") else None
    reason = " ".join(str(err).split()).rstrip(".:") if err else "no CUDA-capable GPU was found"
    return False, reason


def _simulator_active() -> bool:
    import numba

    return bool(numba.config.ENABLE_CUDASIM)


def cuda_available() -> bool:
    """True when :func:`backend` ``("cuda")`` would succeed (a usable GPU, or the simulator)."""
    return _cuda_status()[0]


def backend(device: str):
    """The kernel module for ``device``: :mod:`nnlocal.kernels.cpu` or :mod:`nnlocal.kernels.cuda`.

    Raises ValueError for an unknown device string and RuntimeError, saying what to install or set,
    when ``"cuda"`` is asked for and neither a usable GPU nor Numba's CUDA simulator is present.
    """
    check_device(device, "nnlocal.kernels.backend")
    if device == "cpu":
        from . import cpu
        return cpu
    return _cuda_backend()


@functools.lru_cache(maxsize=None)   # a success is remembered (classes call backend() per step); a failure is not
def _cuda_backend():
    ok, reason = _cuda_status()
    if not ok:
        hint = ""
        if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" and not _simulator_active():
            hint = (" NUMBA_ENABLE_CUDASIM=1 is set, but only after numba was imported, so the simulator is "
                    "not active; set it before starting Python.")
        raise RuntimeError(f"device='cuda' was requested but CUDA is not usable here: {reason}.{hint} "
                           + _NO_CUDA_HELP)
    from . import cuda
    return cuda
