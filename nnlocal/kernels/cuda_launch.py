"""CUDA launch helpers shared by every method's ``cuda.py``: block sizes, uploads, host copies.

Imported only by the ``cuda.py`` modules, so importing nnlocal never imports ``numba.cuda``.

Conventions of every ``cuda.py`` (GPU twins of the ``reference.py`` / ``cpu.py`` functions):

* **Same signature, same result.** Numpy arrays in, numpy arrays out, the same arrays updated in
  place, so a model switches with ``kernels.implementation(package, device)``.
* **Read-only inputs may already live on the GPU.** Wherever an argument is only read (couplings,
  teacher weights, ...), a device array (``numba.cuda`` or anything with
  ``__cuda_array_interface__``) is used as is (:func:`to_device`): a class can keep its large
  weights resident on the device.
* **Device variants** (``*_device``) take and return device arrays and never copy to the host.
* **The same arithmetic** as the CPU, in the CPU's order where the algorithm allows; block
  reductions are trees, so sums differ from serial sums by rounding only. The tests
  (``tests/cudasim``) compare every kernel with its CPU twin at rtol 1e-10 in float64.
* dtype: every kernel computes in the dtype of its main array; scalars are cast to it before
  launch, and zero is ``dt - dt`` or a ``zero`` argument of that dtype (a float literal would
  promote float32 to float64 on the GPU just as in ``@njit``).

Block sizes are the next power of two of the work, capped (:func:`pow2`): large problems get full
blocks, while the simulator tests, whose cost grows with the number of simulated threads, get tiny
ones. :data:`MAX_THREADS` bounds every block (it sizes the shared reduction buffers).
"""
from __future__ import annotations

import numba
import numpy as np
from numba import cuda

__all__ = ["MAX_THREADS", "ROW_THREADS", "FLAT_THREADS", "is_available", "simulator_enabled", "pow2", "blocks",
           "is_device", "to_device", "host_out", "reduction_type"]

MAX_THREADS = 512        # largest block we launch; the static size of the shared reduction buffers
ROW_THREADS = 128        # cap for row reductions (PAN batch gate, kWTA)
FLAT_THREADS = 256       # cap for element-wise kernels


def is_available() -> bool:
    """True when numba.cuda can run kernels here (a usable GPU, or the simulator)."""
    return bool(cuda.is_available())


def simulator_enabled() -> bool:
    """True when numba runs CUDA kernels on its CPU simulator (``NUMBA_ENABLE_CUDASIM=1``)."""
    return bool(numba.config.ENABLE_CUDASIM)


def pow2(work: int, cap: int) -> int:
    """Threads per block: the next power of two >= work (>= 1), at most ``cap`` (a power of two).
    A power of two, because the block reductions halve the active threads at every level."""
    n = 1
    while n < work and n < cap:
        n *= 2
    return n


def blocks(work: int, threads: int) -> int:
    return max(1, (int(work) + threads - 1) // threads)


def _is_numba_device(a) -> bool:
    return bool(getattr(a, "__cuda_ndarray__", False))   # numba's DeviceNDArray (and the simulator's)


def is_device(a) -> bool:
    return _is_numba_device(a) or hasattr(a, "__cuda_array_interface__")   # + CuPy, torch.cuda, ...


def to_device(a, dtype=None):
    """``a`` as a device array of ``dtype``: a device array passes through (no copy; its dtype must
    match), a host array is uploaded C-contiguous (cast to ``dtype`` first)."""
    if is_device(a):
        if not _is_numba_device(a):
            a = cuda.as_cuda_array(a)
        if dtype is not None and a.dtype != np.dtype(dtype):
            raise ValueError(f"device array of dtype {a.dtype}, expected {np.dtype(dtype)}; "
                             "cast it before uploading")
        return a
    return cuda.to_device(np.ascontiguousarray(a, dtype=dtype))


def host_out(out, result_device):
    """Copy a device result into the host array ``out`` (which may be a non-contiguous view)."""
    out[...] = result_device.copy_to_host()
    return out


def reduction_type(dtype):
    return numba.from_dtype(np.dtype(dtype))
