r"""``numba.cuda`` twin of :mod:`nnlocal.methods.butd.reference` (``device="cuda"``): GaLU.

``galu`` is a grid-stride loop over the flat array (conventions: :mod:`nnlocal.kernels.cuda_launch`).
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from ...kernels.cuda_launch import FLAT_THREADS, blocks, host_out, pow2, to_device

__all__ = ["galu", "galu_device"]


@cuda.jit
def _galu_kernel(x, c, relu, zero, out):
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for i in range(start, x.shape[0], stride):
        v = x[i]
        if relu:                     # max(v, 0) as np.maximum: NaN stays NaN
            out[i] = (zero if v < zero else v) if c[i] > 0 else zero
        else:
            out[i] = v if c[i] > 0 else zero


def galu_device(x, gate, relu=False, out=None):
    """Device variant of :func:`galu` (any shape; ``out`` a device array or None). Returns ``out``."""
    d_x, d_c = to_device(x), to_device(gate)
    if tuple(d_x.shape) != tuple(d_c.shape):
        raise ValueError(f"galu: gate of shape {tuple(d_c.shape)} does not match input of shape {tuple(d_x.shape)}")
    if out is None:
        out = cuda.device_array(d_x.shape, dtype=d_x.dtype)
    size = int(np.prod(d_x.shape))
    if size:
        threads = pow2(size, FLAT_THREADS)
        grid = min(blocks(size, threads), 65535)   # grid-stride loop covers the rest
        _galu_kernel[grid, threads](d_x.reshape(size), d_c.reshape(size), bool(relu),
                                      np.dtype(d_x.dtype).type(0), out.reshape(size))
    return out


def galu(x, gate, relu=False, out=None):
    r"""GPU twin of :func:`galu`: ``x ⊙ [gate > 0]`` (``max(x, 0) ⊙ [gate > 0]``).

    Same shape and dtype as ``x``; ``out`` may be ``x`` (in place). One thread per element
    (grid-stride loop over the flattened arrays).
    """
    if x.shape != gate.shape:
        raise ValueError(f"galu: gate of shape {gate.shape} does not match input of shape {x.shape}")
    if out is None:
        out = np.empty(x.shape, dtype=x.dtype)
    elif out.shape != x.shape or out.dtype != x.dtype or not out.flags.c_contiguous:
        raise ValueError("galu: out must be a C-contiguous array of the input's shape and dtype")
    return host_out(out, galu_device(x, gate, relu))
