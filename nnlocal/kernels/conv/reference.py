r"""im2col / col2im and the direct tap convolution for N-d convolutions, in plain NumPy (the shared conv engine).

Shapes (n spatial axes, ``K`` kernel, ``L`` output positions, ``pads = ((lo, hi), ...)``)::

    im2col : x (B, C, *S)  ->  cols (B, C·ΠK, ΠL)
             cols[b, (c, k), l] = x[b, c, l·s + k·d - lo]        (0 outside x: zero padding)
    col2im : cols (B, C·ΠK, ΠL)  ->  x (B, C, *S), the adjoint (scatter-add; windows overlap)

Each sample's columns are one matrix whose row index (c, k) matches a flattened torch weight
``(C_out, C/g, *K)``, so a convolution of sample b is ``W (C_out, C·ΠK) @ cols[b]``, and its
output ``(C_out, ΠL)`` is already sample b of an NCHW array: no transposes around the GEMM
(:mod:`nnlocal.nn.functional` runs it over chunks of samples whose columns stay in cache).

These are the readable versions: a strided window view (:func:`window_view`) and a loop over the
ΠK kernel offsets (:func:`offset_slices`). :mod:`nnlocal.kernels.conv.cpu` holds their Numba twins.

The window helpers (:func:`pad`, :func:`window_view`, :func:`offset_slices`, :func:`crop`) serve the
pooling engine (:mod:`nnlocal.kernels.pool`) too.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = ["im2col", "col2im", "conv_taps", "conv_taps_weight_grad", "pad", "window_view", "offset_slices", "crop"]
# taps_pay (below) is not in __all__: it is the rule that picks conv_taps, not a computation


def pad(x, pads, value=0.0):
    """``x (B, C, *S)`` with ``pads = ((lo, hi), ...)`` entries of ``value`` around each spatial axis
    (a new array), or ``x`` itself when there is no padding. (A filled buffer and one slice assignment:
    several times faster than ``np.pad``.)"""
    if all(lo == 0 and hi == 0 for lo, hi in pads):
        return x
    shape = x.shape[:2] + tuple(s + lo + hi for s, (lo, hi) in zip(x.shape[2:], pads))
    xp = np.empty(shape, dtype=x.dtype) if value == 0 else np.full(shape, value, dtype=x.dtype)
    if value == 0:
        _zero_border(xp, pads)
    xp[(slice(None), slice(None)) + tuple(slice(lo, lo + s) for (lo, _), s in zip(pads, x.shape[2:]))] = x
    return xp


def _zero_border(xp, pads):
    """Zero the padding frame of ``xp`` only (the inside is about to be overwritten)."""
    for ax, (lo, hi) in enumerate(pads):
        idx = [slice(None)] * xp.ndim
        if lo:
            idx[2 + ax] = slice(0, lo)
            xp[tuple(idx)] = 0
        if hi:
            idx[2 + ax] = slice(xp.shape[2 + ax] - hi, None)
            xp[tuple(idx)] = 0


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


def im2col(x, kernel, stride, pads, dilation, out_spatial, out=None):
    """pad, strided window view ``(B, C, *L, *K)``, reorder to (B, C, K, L) and copy (into ``out``,
    a ``(B, C·ΠK, ΠL)`` buffer, if given)."""
    n = len(kernel)
    B, C = x.shape[:2]
    win = window_view(pad(x, pads), kernel, stride, dilation, out_spatial)
    win = win.transpose((0, 1) + tuple(range(2 + n, 2 + 2 * n)) + tuple(range(2, 2 + n)))   # (B, C, *K, *L)
    shape = (B, C * math.prod(kernel), math.prod(out_spatial))
    if out is None:
        return win.reshape(shape)
    np.copyto(out.reshape(win.shape), win)
    return out.reshape(shape)


def col2im(cols, in_shape, kernel, stride, pads, dilation, out_spatial, out=None):
    """one strided ``+=`` per kernel offset into a padded buffer, then crop. ``out``: the padded
    buffer ``(B, C, *(S + lo + hi))`` to add into instead of a fresh zero one (the result is a view of it)."""
    B, C = in_shape[:2]
    S = tuple(in_shape[2:])
    Sp = tuple(s + lo + hi for s, (lo, hi) in zip(S, pads))
    xp = np.zeros((B, C) + Sp, dtype=cols.dtype) if out is None else out
    c6 = cols.reshape((B, C) + tuple(kernel) + tuple(out_spatial))
    for kidx in itertools.product(*(range(k) for k in kernel)):
        xp[(slice(None), slice(None)) + offset_slices(kidx, stride, dilation, out_spatial)] += \
            c6[(slice(None), slice(None)) + kidx]                   # (B, C, *L)
    return crop(xp, pads, S)


def taps_pay(kernel, stride, channels_per_group) -> bool:
    """Whether :func:`conv_taps` should replace im2col + GEMM: never in NumPy (a pass over the output per
    tap loses to one GEMM); the Numba twin says yes for its sizes."""
    return False


def conv_taps(x, weight, bias, pads, dilation, out_spatial, groups):
    """A stride-1 convolution by its definition, one pass over the output per kernel tap (c, k)::

        y[b, o, l] = bias[o] + Σ_c Σ_k W[o, c, k] · x_pad[b, (o // (C_out/g))·C/g + c, l + k·d]

    ``x (B, C, *S)``, ``weight (C_out, C/g, *K)``, ``bias (C_out,)`` or None; ``(B, C_out, *L)``."""
    xp = pad(x, pads)
    B, O, cg = x.shape[0], weight.shape[0], weight.shape[1]
    y = np.zeros((B, O) + tuple(out_spatial), dtype=x.dtype)
    if bias is not None:
        y += bias.reshape((O,) + (1,) * len(out_spatial))
    first = (np.arange(O) // (O // groups)) * cg                       # first input channel of each output
    for c in range(cg):
        for kidx in itertools.product(*(range(k) for k in weight.shape[2:])):
            sl = offset_slices(kidx, (1,) * len(kidx), dilation, out_spatial)
            w = weight[(slice(None), c) + kidx].reshape((1, O) + (1,) * len(out_spatial))
            y += w * xp[(slice(None), first + c) + sl]
    return y


def conv_taps_weight_grad(x, grad_output, weight_shape, pads, dilation, groups):
    """dL/dW of :func:`conv_taps`, one dot product per tap::

        dW[o, c, k] = Σ_b Σ_l gy[b, o, l] · x_pad[b, (o // (C_out/g))·C/g + c, l + k·d]"""
    xp = pad(x, pads)
    O, cg = weight_shape[:2]
    out_spatial = grad_output.shape[2:]
    dw = np.zeros(weight_shape, dtype=grad_output.dtype)
    first = (np.arange(O) // (O // groups)) * cg
    axes = (0,) + tuple(range(2, 2 + len(out_spatial)))
    for c in range(cg):
        for kidx in itertools.product(*(range(k) for k in weight_shape[2:])):
            sl = offset_slices(kidx, (1,) * len(kidx), dilation, out_spatial)
            dw[(slice(None), c) + kidx] = (grad_output * xp[(slice(None), first + c) + sl]).sum(axis=axes)
    return dw


