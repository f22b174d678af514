r"""Max pooling and window sums for N-d pooling, in plain NumPy (the shared pooling engine).

Shapes (n spatial axes, ``K`` kernel, ``L`` output positions, ``pads = ((lo, hi), ...)``)::

    max_pool          : x (B, C, *S)  ->  y (B, C, *L) and the in-plane index of each max (B, C, *L)
    max_pool_backward : gy (B, C, *L), idx  ->  dx (B, C, *S)    dx.flat[idx] += gy
    sum_pool          : x (B, C, *S)  ->  Σ over each window of the zero-padded x (B, C, *L)
    sum_pool_backward : the adjoint of sum_pool (every entry of a window receives its output's gradient)

Max-pooling indices follow torch's ``return_indices``: the flat offset of the chosen entry inside
its (unpadded) input plane, ``(z·H + y)·W + x``, so the backward is a plain scatter-add per plane.
Average pooling is :func:`sum_pool` over torch's divisor (:mod:`nnlocal.nn.functional_pool`).
These are the readable versions (a strided window view); :mod:`nnlocal.kernels.pool.cpu` holds
their Numba twins.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..conv.reference import crop, offset_slices, pad, window_view

__all__ = ["max_pool", "max_pool_backward", "sum_pool", "sum_pool_backward"]


def max_pool(x, kernel, stride, pads, dilation, out_spatial):
    """-inf padding, window view, ``argmax`` over the flattened window.

    Returns ``y (B, C, *L)`` and the flat in-plane index of each max ``(B, C, *L)`` (int64);
    ties go to the first maximum in row-major window order.
    """
    n = len(kernel)
    win = window_view(pad(x, pads, -np.inf), kernel, stride, dilation, out_spatial)
    flat = win.reshape(win.shape[: 2 + n] + (-1,))
    k = np.unravel_index(flat.argmax(axis=-1), kernel)                  # window-local offsets per axis
    grid = np.meshgrid(*(np.arange(L) for L in out_spatial), indexing="ij")
    pos = [g * s + kk * d - lo for g, s, kk, d, (lo, _) in zip(grid, stride, k, dilation, pads)]
    idx = np.ravel_multi_index(pos, x.shape[2:], mode="clip")             # clip: only all -inf windows
    y = np.take_along_axis(flat, flat.argmax(axis=-1)[..., None], axis=-1)[..., 0]
    return y, idx.astype(np.int64)


def max_pool_backward(gy, idx, in_shape):
    """``dx[b, c].flat[idx[b, c, l]] += gy[b, c, l]`` (``np.add.at`` handles repeats)."""
    B, C = in_shape[:2]
    dx = np.zeros((B * C, int(np.prod(in_shape[2:]))), dtype=gy.dtype)
    rows = np.repeat(np.arange(B * C), int(np.prod(gy.shape[2:])))
    np.add.at(dx, (rows, idx.reshape(-1)), gy.reshape(-1))
    return dx.reshape(tuple(in_shape))


def sum_pool(x, kernel, stride, pads, out_spatial):
    """Σ over each window of the zero-padded x (average pooling before its divisor): ``(B, C, *L)``."""
    n = len(kernel)
    win = window_view(pad(x, pads), kernel, stride, (1,) * n, out_spatial)
    return win.sum(axis=tuple(range(2 + n, 2 + 2 * n)))


def sum_pool_backward(gy, in_shape, kernel, stride, pads, out_spatial):
    """Adjoint of :func:`sum_pool`: every entry of a window receives its output's gradient (one strided
    ``+=`` per kernel offset into a padded buffer, then crop): ``(B, C, *S)``."""
    Sp = tuple(s + lo + hi for s, (lo, hi) in zip(in_shape[2:], pads))
    dxp = np.zeros(tuple(in_shape[:2]) + Sp, dtype=gy.dtype)
    for kidx in itertools.product(*(range(k) for k in kernel)):
        dxp[(Ellipsis,) + offset_slices(kidx, stride, (1,) * len(kernel), out_spatial)] += gy
    return crop(dxp, pads, in_shape[2:])
