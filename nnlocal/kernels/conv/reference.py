r"""im2col / col2im and max pooling for N-d convolutions, in plain NumPy (the shared conv engine).

Shapes (n spatial axes, ``K`` kernel, ``L`` output positions, ``pads = ((lo, hi), ...)``)::

    im2col : x (B, C, *S)  ->  cols (C·ΠK, B·ΠL)
             cols[(c, k), (b, l)] = x[b, c, l·s + k·d - lo]      (0 outside x: zero padding)
    col2im : cols (C·ΠK, B·ΠL)  ->  x (B, C, *S), the adjoint (scatter-add; windows overlap)

The batch sits *inside* the columns, so a convolution over the whole batch is one wide GEMM per
group, ``(C_out/g, C/g·ΠK) @ (C/g·ΠK, B·ΠL)``, instead of B small ones (the row index (c, k)
matches a flattened torch weight ``(C_out, C/g, *K)``).

These are the readable versions: a strided window view (:func:`window_view`) and a loop over the
ΠK kernel offsets (:func:`offset_slices`). :mod:`nnlocal.kernels.conv.cpu` holds their Numba twins.

Max-pooling indices follow torch's ``return_indices``: the flat offset of the chosen entry inside
its (unpadded) input plane, ``(z·H + y)·W + x``, so the backward is a plain scatter-add per plane.
"""
from __future__ import annotations

import itertools

import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = ["im2col", "col2im", "max_pool", "max_pool_backward", "pad", "window_view", "offset_slices", "crop"]


def pad(x, pads, value=0.0):
    if all(lo == 0 and hi == 0 for lo, hi in pads):
        return x
    return np.pad(x, ((0, 0), (0, 0)) + tuple(pads), constant_values=value)


def window_view(xp, kernel, stride, dilation, out_spatial):
    """Read-only strided view ``(B, C, *L, *K)`` of a padded input (no copy)."""
    n = len(kernel)
    st = xp.strides
    return as_strided(xp, xp.shape[:2] + tuple(out_spatial) + tuple(kernel),
                      st[:2] + tuple(st[2 + i] * stride[i] for i in range(n))
                      + tuple(st[2 + i] * dilation[i] for i in range(n)), writeable=False)


def offset_slices(kidx, stride, dilation, out_spatial):
    """Slices of the padded input that kernel offset ``kidx`` reads across all output positions."""
    return tuple(slice(k * d, k * d + s * (L - 1) + 1, s) for k, d, s, L in zip(kidx, dilation, stride, out_spatial))


def crop(xp, pads, spatial):
    return xp[(slice(None), slice(None)) + tuple(slice(lo, lo + s) for (lo, _), s in zip(pads, spatial))]


def im2col(x, kernel, stride, pads, dilation, out_spatial):
    """pad, strided window view ``(B, C, *L, *K)``, reorder to (C, K, B, L) and copy."""
    n = len(kernel)
    B, C = x.shape[:2]
    win = window_view(pad(x, pads), kernel, stride, dilation, out_spatial)
    order = (1,) + tuple(range(2 + n, 2 + 2 * n)) + (0,) + tuple(range(2, 2 + n))
    return win.transpose(order).reshape(C * int(np.prod(kernel)), B * int(np.prod(out_spatial)))


def col2im(cols, in_shape, kernel, stride, pads, dilation, out_spatial):
    """one strided ``+=`` per kernel offset into a padded buffer, then crop."""
    n = len(kernel)
    B, C = in_shape[:2]
    S = tuple(in_shape[2:])
    Sp = tuple(s + lo + hi for s, (lo, hi) in zip(S, pads))
    xp = np.zeros((B, C) + Sp, dtype=cols.dtype)
    c6 = cols.reshape((C,) + tuple(kernel) + (B,) + tuple(out_spatial))
    for kidx in itertools.product(*(range(k) for k in kernel)):
        block = c6[(slice(None),) + kidx]                            # (C, B, *L)
        xp[(slice(None), slice(None)) + offset_slices(kidx, stride, dilation, out_spatial)] += \
            block.transpose((1, 0) + tuple(range(2, 2 + n)))
    return crop(xp, pads, S)


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
