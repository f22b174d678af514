r"""Numba twins of :mod:`nnlocal.kernels.conv.reference` (selected by ``nnlocal.kernels.use("numba")``).

Numba loops over a 3-d view (1-d and 2-d inputs get unit axes); inputs with more than 3 spatial
axes fall back to the reference. Measured faster than the references on LeNet- and ResNet-sized
layers (one thread, float32):

* ``im2col``: about 2x faster than NumPy's strided copy (the rows are short: ow = 10..30);
* ``col2im``: 3-5x faster than the NumPy ``+=`` loop over kernel offsets;
* ``conv_taps`` / ``conv_taps_weight_grad``: a direct stride-1 convolution for layers that read
  one input channel per output (single-channel images, depthwise layers), no im2col.

The kernels work on a *padded* array (np.pad for im2col, a zero buffer cropped afterwards for
col2im), so every index is in range and the loops need no tests. Indices are cast to unsigned
(``U``): for a signed index Numba adds a negative-index wraparound test to every access, which
blocks vectorisation; unsigned indices made both kernels 2-5x faster here.
"""
from __future__ import annotations

import functools
import math

import numpy as np
from numba import njit, prange
from numba import uint64 as U

from . import reference
from .reference import crop, pad

__all__ = ["im2col", "col2im", "conv_taps", "conv_taps_weight_grad"]   # and taps_pay: the rule, not a computation


@njit(cache=True)
def _im2col3(xp, cols, kd, kh, kw, sd, sh, sw, dd, dh, dw):  # pragma: no cover - jitted
    """``cols[b, (c, a, i, j), zo, yo, xo] = xp[b, c, zo·sd + a·dd, yo·sh + i·dh, xo·sw + j·dw]``. One
    thread: it runs between BLAS calls, where a second pool of spinning threads would compete with
    BLAS's own."""
    B, C = xp.shape[0], xp.shape[1]
    od, oh, ow = cols.shape[2], cols.shape[3], cols.shape[4]
    for bc in range(B * C):
        b = bc // C
        c = bc - b * C
        for a in range(kd):
            for i in range(kh):
                for j in range(kw):
                    r = ((c * kd + a) * kh + i) * kw + j
                    jo = U(j * dw)
                    for zo in range(od):
                        z = U(zo * sd + a * dd)
                        for yo in range(oh):
                            yy = U(yo * sh + i * dh)
                            if sw == 1:
                                for xo in range(ow):
                                    cols[b, r, zo, yo, xo] = xp[b, c, z, yy, U(xo) + jo]
                            else:
                                for xo in range(ow):
                                    cols[b, r, zo, yo, xo] = xp[b, c, z, yy, U(xo * sw) + jo]
    return cols


@njit(cache=True)
def _col2im3(cols, xp, kd, kh, kw, sd, sh, sw, dd, dh, dw):  # pragma: no cover - jitted
    """The adjoint of :func:`_im2col3`, the same index map read the other way:
    ``xp[b, c, ...] += cols[b, (c, a, i, j), ...]`` (overlapping windows add up). One thread."""
    B, C = xp.shape[0], xp.shape[1]
    od, oh, ow = cols.shape[2], cols.shape[3], cols.shape[4]
    for bc in range(B * C):
        b = bc // C
        c = bc - b * C
        for a in range(kd):
            for i in range(kh):
                for j in range(kw):
                    r = ((c * kd + a) * kh + i) * kw + j
                    jo = U(j * dw)
                    for zo in range(od):
                        z = U(zo * sd + a * dd)
                        for yo in range(oh):
                            yy = U(yo * sh + i * dh)
                            if sw == 1:
                                for xo in range(ow):
                                    xp[b, c, z, yy, U(xo) + jo] += cols[b, r, zo, yo, xo]
                            else:
                                for xo in range(ow):
                                    xp[b, c, z, yy, U(xo * sw) + jo] += cols[b, r, zo, yo, xo]
    return xp


def _as3(t, fill):
    """Left-pad a per-axis tuple to length 3 (1-d and 2-d problems become 3-d with unit axes)."""
    t = tuple(t)
    return (fill,) * (3 - len(t)) + t


def _params3(kernel, stride, dilation):
    return (*_as3(kernel, 1), *_as3(stride, 1), *_as3(dilation, 1))


def _im2col(x, kernel, stride, pads, dilation, out_spatial, out=None):
    """Numba im2col (n <= 3) of ``pad(x)``: same result as :func:`reference.im2col`.

    Output allocated by NumPy (or given, ``out``): large arrays allocated inside a jitted function
    were several times slower to fill here (fresh pages on every call).
    """
    B, C = x.shape[:2]
    xp = np.ascontiguousarray(pad(x, pads))
    xp5 = xp.reshape((B, C) + _as3(xp.shape[2:], 1))
    shape = (B, C * math.prod(kernel)) + _as3(out_spatial, 1)
    cols = np.empty(shape, dtype=x.dtype) if out is None else out.reshape(shape)
    _im2col3(xp5, cols, *_params3(kernel, stride, dilation))
    return cols.reshape(B, shape[1], math.prod(out_spatial))


def _col2im(cols, in_shape, kernel, stride, pads, dilation, out_spatial, out=None):
    """Numba col2im (n <= 3): same result as :func:`reference.col2im` (into a padded buffer, fresh or
    ``out``, then cropped)."""
    B, C = in_shape[:2]
    S = tuple(in_shape[2:])
    Sp = tuple(s + lo + hi for s, (lo, hi) in zip(S, pads))
    xp = np.zeros((B, C) + Sp, dtype=cols.dtype) if out is None else out
    c5 = np.ascontiguousarray(cols).reshape((B, cols.shape[1]) + _as3(out_spatial, 1))
    _col2im3(c5, xp.reshape((B, C) + _as3(Sp, 1)), *_params3(kernel, stride, dilation))
    if Sp == S:
        return xp
    cropped = crop(xp, pads, S)
    return cropped if out is not None else np.ascontiguousarray(cropped)


#: LLVM fast-math flags without ``nnan``/``ninf``: sums may be reassociated (vectorised), NaN/inf stay IEEE
_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


@njit(cache=True, parallel=True, fastmath=_FASTMATH)
def _taps3(xp, w, bias, y, offs, first, hp, wp, n_ext):  # pragma: no cover - jitted
    """``y[b, o]`` for each (sample, output channel) pair (over the threads): the padded planes of
    sample b flattened, every tap t adds ``w[o, t] · xp[first[o] + offs[t] + n]`` over one contiguous
    run of ``n_ext`` positions (rows at the padded pitch ``wp``: the ``wp - ow`` positions past each
    row's end are computed and dropped), then the valid positions are copied out."""
    B = xp.shape[0]
    O, T = w.shape
    od, oh, ow = y.shape[2], y.shape[3], y.shape[4]
    for bo in prange(B * O):
        b = bo // O
        o = bo - b * O
        xb = xp[b]
        acc = np.empty(n_ext, dtype=y.dtype)
        bv = bias[o]
        for n in range(n_ext):
            acc[n] = bv
        for t in range(T):
            wv = w[o, t]
            xs = xb[first[o] + offs[t]:first[o] + offs[t] + n_ext]
            for n in range(n_ext):
                acc[n] += wv * xs[n]
        for zo in range(od):
            for yo in range(oh):
                r = (zo * hp + yo) * wp
                for xo in range(ow):
                    y[b, o, zo, yo, xo] = acc[r + xo]
    return y


@njit(cache=True, parallel=True, fastmath=_FASTMATH)
def _taps_wgrad3(xp, gy, dw, offs, first, hp, wp, n_ext):  # pragma: no cover - jitted
    """``dw[o, t] = Σ_b Σ_l gy[b, o, l] · xp[b, first[o] + offs[t] + pos(l)]``, output channels over the
    threads: gy is laid out at the padded pitch (zeros past each row's end), so every tap is one dot
    product over a contiguous run of ``n_ext`` positions."""
    B = xp.shape[0]
    O, T = dw.shape
    od, oh, ow = gy.shape[2], gy.shape[3], gy.shape[4]
    for o in prange(O):
        ge = np.zeros(n_ext, dtype=dw.dtype)
        for b in range(B):
            for zo in range(od):
                for yo in range(oh):
                    r = (zo * hp + yo) * wp
                    for xo in range(ow):
                        ge[r + xo] = gy[b, o, zo, yo, xo]
            xb = xp[b]
            for t in range(T):
                xs = xb[first[o] + offs[t]:first[o] + offs[t] + n_ext]
                s = dw[o, t] - dw[o, t]
                for n in range(n_ext):
                    s += ge[n] * xs[n]
                dw[o, t] += s
    return dw


@functools.lru_cache(maxsize=64)
def _taps_geometry(sample_shape, weight_shape, pads, dilation, groups):
    """Padded plane sizes (3-d), the flat offset of every tap (c, k) inside one sample's padded
    channels, and the flat start of each output channel's first input channel (cached, read-only)."""
    sp = _as3([s + lo + hi for s, (lo, hi) in zip(sample_shape[1:], pads)], 1)
    plane = sp[0] * sp[1] * sp[2]
    k3, d3 = _as3(weight_shape[2:], 1), _as3(dilation, 1)
    cg, O = weight_shape[1], weight_shape[0]
    offs = np.array([c * plane + (a * d3[0] * sp[1] + i * d3[1]) * sp[2] + j * d3[2]
                     for c in range(cg) for a in range(k3[0]) for i in range(k3[1]) for j in range(k3[2])],
                    dtype=np.int64)
    first = (np.arange(O, dtype=np.int64) // (O // groups)) * cg * plane
    offs.flags.writeable = first.flags.writeable = False
    return sp, offs, first


def taps_pay(kernel, stride, channels_per_group) -> bool:
    """:func:`conv_taps` replaces im2col + GEMM for stride-1 convolutions that read one input channel
    per output (C_in/g = 1: single-channel images, depthwise layers; n <= 3): measured 1.2x (1->6 5x5
    on 28x28) to 3x (depthwise 3x3) faster here, forward and weight gradient."""
    return len(kernel) <= 3 and channels_per_group == 1 and all(s == 1 for s in stride)


def conv_taps(x, weight, bias, pads, dilation, out_spatial, groups):
    """:func:`reference.conv_taps` in Numba (n <= 3): each output plane accumulated in one contiguous
    buffer per tap (vectorised), no im2col."""
    B, O = x.shape[0], weight.shape[0]
    sp, offs, first = _taps_geometry(x.shape[1:], weight.shape, tuple(pads), tuple(dilation), groups)
    xp = np.ascontiguousarray(pad(x, pads)).reshape(B, x.shape[1] * math.prod(sp))
    o3 = _as3(out_spatial, 1)
    n_ext = (o3[0] - 1) * sp[1] * sp[2] + (o3[1] - 1) * sp[2] + o3[2]
    b = np.zeros(O, x.dtype) if bias is None else np.ascontiguousarray(bias, dtype=x.dtype)
    y = np.empty((B, O) + o3, dtype=x.dtype)
    _taps3(xp, np.ascontiguousarray(weight).reshape(O, -1), b, y, offs, first, sp[1], sp[2], n_ext)
    return y.reshape((B, O) + tuple(out_spatial))


def conv_taps_weight_grad(x, grad_output, weight_shape, pads, dilation, groups):
    """:func:`reference.conv_taps_weight_grad` in Numba (n <= 3)."""
    if not _finite(x):   # the runs also read entries past each row's end (times 0): 0·inf would be NaN
        return reference.conv_taps_weight_grad(x, grad_output, weight_shape, pads, dilation, groups)
    B, O = x.shape[0], weight_shape[0]
    sp, offs, first = _taps_geometry(x.shape[1:], tuple(weight_shape), tuple(pads), tuple(dilation), groups)
    xp = np.ascontiguousarray(pad(x, pads)).reshape(B, x.shape[1] * math.prod(sp))
    o3 = _as3(grad_output.shape[2:], 1)
    gy = np.ascontiguousarray(grad_output).reshape((B, O) + o3)
    dw = np.zeros((O, math.prod(weight_shape[1:])), dtype=grad_output.dtype)
    _taps_wgrad3(xp, gy, dw, offs, first, sp[1], sp[2], (o3[0] - 1) * sp[1] * sp[2] + (o3[1] - 1) * sp[2] + o3[2])
    return dw.reshape(weight_shape)


def _finite(x) -> bool:
    """No NaN/inf in x: one BLAS dot product (non-finite iff x·x is, barring overflow), exact test otherwise."""
    flat = np.ascontiguousarray(x).reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(np.dot(flat, flat))) or bool(np.isfinite(x).all())


def im2col(x, kernel, stride, pads, dilation, out_spatial, out=None):
    """``(B, C, *S) -> (B, C·ΠK, ΠL)``; Numba for n <= 3, else the reference."""
    fn = _im2col if len(kernel) <= 3 else reference.im2col
    return fn(x, kernel, stride, pads, dilation, out_spatial, out)


def col2im(cols, in_shape, kernel, stride, pads, dilation, out_spatial, out=None):
    """Adjoint of :func:`im2col`: ``(B, C·ΠK, ΠL) -> (B, C, *S)``."""
    fn = _col2im if len(kernel) <= 3 else reference.col2im
    return fn(cols, in_shape, kernel, stride, pads, dilation, out_spatial, out)


