r"""Numba twins of :mod:`nnlocal.kernels.conv.reference` (selected by ``nnlocal.kernels.use("numba")``).

Numba loops over a 3-d view (1-d and 2-d inputs get unit axes); inputs with more than 3 spatial
axes fall back to the reference. Measured faster than the references on LeNet- and ResNet-sized
layers (one thread, float32):

* ``im2col``: about 2x faster than NumPy's strided copy (the rows are short: ow = 10..30);
* ``col2im``: 3-5x faster than the NumPy ``+=`` loop over kernel offsets;
* ``max_pool`` / ``max_pool_backward``: one pass for max and argmax, no window copy; the
  backward is a scatter-add by index.

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

__all__ = ["im2col", "col2im", "taps_pay", "conv_taps", "conv_taps_weight_grad", "max_pool", "max_pool_backward", "sum_pool", "sum_pool_backward"]


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


def _out_range(off, s, size, out):
    """The outputs o in [lo, hi) whose tap at offset ``off`` lands inside x: 0 <= o·s + off < size."""
    lo = 0 if off >= 0 else -(off // s)
    hi = (size - 1 - off) // s + 1 if size - 1 - off >= 0 else 0
    lo = min(lo, out)
    return lo, max(min(hi, out), lo)


def _taps(out, stride, dilation, lo, k, size):
    """Per output index along one axis: the first and last+1 kernel tap that lands inside x."""
    start = np.arange(out) * stride - lo
    t0 = np.maximum(0, -(start // dilation))                            # ceil(-start / d) for start < 0
    t1 = np.minimum(k, (size - 1 - start) // dilation + 1)
    if np.any(t1 <= t0):
        raise ValueError(f"max_pool: a window covers only padding (kernel {k}, stride {stride}, "
                         f"dilation {dilation}, padding {lo}, input size {size})")
    return t0.astype(np.int64), t1.astype(np.int64)


@njit(cache=True)
def _max_pool3(x, y, idx, kw, sd, sh, sw, pd, ph, pw, dd, dh, dw,
               a0s, a1s, i0s, i1s, t0s, xlo, xhi):  # pragma: no cover - jitted
    """Tap-outer max pooling: for each output row, sweep every kernel tap across the whole row.

    ``a0s/a1s`` (per zo), ``i0s/i1s`` (per yo): the taps inside x; ``t0s`` (per xo): the first
    tap inside x; ``xlo/xhi`` (per tap t): the outputs whose tap t is inside x. Rows start at
    -inf with the index of the window's first real entry, then ``take = v > y or isnan(v)``
    (torch's rule: first maximum wins ties, NaN wins) as a select over a contiguous row.
    """
    B, C, D, H, W = x.shape
    od, oh, ow = y.shape[2], y.shape[3], y.shape[4]
    for b in range(B):
        for c in range(C):
            for zo in range(od):
                z = zo * sd - pd
                for yo in range(oh):
                    yy = yo * sh - ph
                    yrow = y[b, c, zo, yo]
                    irow = idx[b, c, zo, yo]
                    first = ((z + a0s[zo] * dd) * H + yy + i0s[yo] * dh) * W - pw
                    for xo in range(ow):
                        yrow[xo] = -np.inf
                        irow[xo] = first + xo * sw + t0s[xo] * dw
                    for a in range(a0s[zo], a1s[zo]):
                        zz = z + a * dd
                        for i in range(i0s[yo], i1s[yo]):
                            yi = yy + i * dh
                            xrow = x[b, c, zz, yi]
                            base = (zz * H + yi) * W
                            for t in range(kw):
                                off = t * dw - pw
                                for xo in range(xlo[t], xhi[t]):
                                    v = xrow[U(xo * sw + off)]
                                    cur = yrow[xo]
                                    take = (v > cur) | (v != v)
                                    yrow[xo] = v if take else cur
                                    irow[xo] = (base + xo * sw + off) if take else irow[xo]
    return y


@njit(cache=True, parallel=True)
def _max_pool_bwd(gy, idx, dx):  # pragma: no cover - jitted
    """``dx[p, idx[p, l]] += gy[p, l]`` for planes p = (b, c), over the threads; each plane of ``dx`` (left
    uninitialised by the caller) is zeroed just before its scatter, while it is in cache (no separate
    pass of np.zeros over the whole array)."""
    P, L = gy.shape
    for p in prange(P):
        dx[p, :] = 0
        for l in range(L):
            dx[p, idx[p, l]] += gy[p, l]
    return dx


@njit(cache=True, parallel=True)
def _max_pool_valid3(x, y, idx, kd, kh, kw, sd, sh, sw, dd, dh, dw):  # pragma: no cover - jitted
    """Max pooling of windows that lie inside x (no padding), window-inner, the (sample, channel)
    planes ``x (P, D, H, W)`` spread over the threads. Same rule as :func:`_max_pool3`: ``take = v >
    best or isnan(v)``. 2x2 windows with stride 2 (LeNet's and most CNNs') get their own unrolled
    loop, which LLVM vectorises: 7x faster here than the tap-outer loop, 3x faster than the general
    window loop below it."""
    P, D, H, W = x.shape
    od, oh, ow = y.shape[1], y.shape[2], y.shape[3]
    two = kd == 1 and kh == 2 and kw == 2 and sh == 2 and sw == 2 and dh == 1 and dw == 1
    for p in prange(P):
        for zo in range(od):
            z0 = U(zo * sd)
            for yo in range(oh):
                r0 = U(yo * sh)
                yr = y[p, zo, yo]
                ir = idx[p, zo, yo]
                if two:
                    row0 = x[p, z0, r0]
                    row1 = x[p, z0, r0 + 1]
                    b0 = (z0 * H + r0) * W
                    for xo in range(ow):
                        c = U(2 * xo)
                        best = row0[c]
                        bi = b0 + c
                        v = row0[c + 1]
                        t = (v > best) | (v != v)
                        best = v if t else best
                        bi = b0 + c + 1 if t else bi
                        v = row1[c]
                        t = (v > best) | (v != v)
                        best = v if t else best
                        bi = b0 + W + c if t else bi
                        v = row1[c + 1]
                        t = (v > best) | (v != v)
                        best = v if t else best
                        bi = b0 + W + c + 1 if t else bi
                        yr[xo] = best
                        ir[xo] = bi
                else:
                    for xo in range(ow):
                        c0 = U(xo * sw)
                        best = x[p, z0, r0, c0]
                        bi = (z0 * H + r0) * W + c0
                        for a in range(kd):
                            zz = z0 + U(a * dd)
                            for i in range(kh):
                                rr = r0 + U(i * dh)
                                for j in range(kw):
                                    cc = c0 + U(j * dw)
                                    v = x[p, zz, rr, cc]
                                    t = (v > best) | (v != v)
                                    best = v if t else best
                                    bi = (zz * H + rr) * W + cc if t else bi
                        yr[xo] = best
                        ir[xo] = bi
    return y


@njit(cache=True, parallel=True)
def _sum_pool_valid3(x, y, kd, kh, kw, sd, sh, sw, zero, adjoint):  # pragma: no cover - jitted
    """Window sums ``y[p, l] = Σ x[p, window l]`` of windows inside x (no padding), or with ``adjoint``
    the adjoint: every entry of window l gets ``y[p, l]`` (x is overwritten: each plane is zeroed
    first, in cache; overlapping windows add up). Planes over the threads; 2x2 stride 2 unrolled."""
    P = x.shape[0]
    od, oh, ow = y.shape[1], y.shape[2], y.shape[3]
    two = kd == 1 and kh == 2 and kw == 2 and sh == 2 and sw == 2
    for p in prange(P):
        if adjoint:
            x[p] = 0
        for zo in range(od):
            z0 = U(zo * sd)
            for yo in range(oh):
                r0 = U(yo * sh)
                yr = y[p, zo, yo]
                if two:
                    row0 = x[p, z0, r0]
                    row1 = x[p, z0, r0 + 1]
                    if adjoint:
                        for xo in range(ow):
                            c = U(2 * xo)
                            v = yr[xo]
                            row0[c] = v
                            row0[c + 1] = v
                            row1[c] = v
                            row1[c + 1] = v
                    else:
                        for xo in range(ow):
                            c = U(2 * xo)
                            yr[xo] = (row0[c] + row0[c + 1]) + (row1[c] + row1[c + 1])
                else:
                    for xo in range(ow):
                        c0 = U(xo * sw)
                        acc = yr[xo] if adjoint else zero   # zero: 0 in x's dtype (not a float64 literal)
                        for a in range(kd):
                            for i in range(kh):
                                for j in range(kw):
                                    if adjoint:
                                        x[p, z0 + U(a), r0 + U(i), c0 + U(j)] += acc
                                    else:
                                        acc += x[p, z0 + U(a), r0 + U(i), c0 + U(j)]
                        if not adjoint:
                            yr[xo] = acc
    return y


def _planes(a, spatial):
    """``(B, C, *S) -> (B·C, *S3)`` (a view when contiguous; 1-d and 2-d get unit axes)."""
    return np.ascontiguousarray(a).reshape((-1,) + _as3(spatial, 1))


def _writable(a):
    """``a``, or a copy of a read-only ``a``: the kernels that read an array in one direction write it in
    the other (the adjoint), so Numba needs a writeable array type either way."""
    return a if a.flags.writeable else a.copy()


def _valid(pads):
    return all(lo == 0 and hi == 0 for lo, hi in pads)


def _max_pool(x, kernel, stride, pads, dilation, out_spatial):
    """Numba max pooling (n <= 3): one pass for the max and its in-plane index, no window copy.

    The valid taps of every window are precomputed per axis, so padding is skipped (never read),
    which matches :func:`reference.max_pool` except in corner cases: an all -inf window points at its
    first *real* entry (as torch), and the last NaN in a window wins (torch's CPU loop; NumPy's
    argmax takes the first).
    """
    B, C = x.shape[:2]
    k3, s3, d3, o3 = _as3(kernel, 1), _as3(stride, 1), _as3(dilation, 1), _as3(out_spatial, 1)
    shape = (B, C) + tuple(out_spatial)
    if _valid(pads):    # every window inside x: the window-inner kernel
        y = np.empty((B * C,) + o3, dtype=x.dtype)
        idx = np.empty((B * C,) + o3, dtype=np.int64)
        _max_pool_valid3(_planes(x, x.shape[2:]), y, idx, *k3, *s3, *d3)
        return y.reshape(shape), idx.reshape(shape)
    x5 = np.ascontiguousarray(x).reshape((B, C) + _as3(x.shape[2:], 1))
    p3 = _as3([lo for lo, _ in pads], 0)
    a0s, a1s = _taps(o3[0], s3[0], d3[0], p3[0], k3[0], x5.shape[2])
    i0s, i1s = _taps(o3[1], s3[1], d3[1], p3[1], k3[1], x5.shape[3])
    t0s, _ = _taps(o3[2], s3[2], d3[2], p3[2], k3[2], x5.shape[4])
    ranges = np.array([_out_range(t * d3[2] - p3[2], s3[2], x5.shape[4], o3[2]) for t in range(k3[2])],
                      dtype=np.int64).reshape(k3[2], 2)
    y = np.empty((B, C) + o3, dtype=x.dtype)
    idx = np.empty((B, C) + o3, dtype=np.int64)
    _max_pool3(x5, y, idx, k3[2], *s3, *p3, *d3, a0s, a1s, i0s, i1s, t0s,
               np.ascontiguousarray(ranges[:, 0]), np.ascontiguousarray(ranges[:, 1]))
    return y.reshape(shape), idx.reshape(shape)


def max_pool_backward(gy, idx, in_shape):
    """Numba scatter-add of ``gy`` to the in-plane indices."""
    B, C = in_shape[:2]
    dx = np.empty((B * C, math.prod(in_shape[2:])), dtype=gy.dtype)
    L = math.prod(gy.shape[2:])
    _max_pool_bwd(np.ascontiguousarray(gy).reshape(B * C, L),
                  np.ascontiguousarray(idx, dtype=np.int64).reshape(B * C, L), dx)
    return dx.reshape(tuple(in_shape))


def im2col(x, kernel, stride, pads, dilation, out_spatial, out=None):
    """``(B, C, *S) -> (B, C·ΠK, ΠL)``; Numba for n <= 3, else the reference."""
    fn = _im2col if len(kernel) <= 3 else reference.im2col
    return fn(x, kernel, stride, pads, dilation, out_spatial, out)


def col2im(cols, in_shape, kernel, stride, pads, dilation, out_spatial, out=None):
    """Adjoint of :func:`im2col`: ``(B, C·ΠK, ΠL) -> (B, C, *S)``."""
    fn = _col2im if len(kernel) <= 3 else reference.col2im
    return fn(cols, in_shape, kernel, stride, pads, dilation, out_spatial, out)


def max_pool(x, kernel, stride, pads, dilation, out_spatial):
    """``(y, in-plane index of the max)`` of max pooling; Numba for n <= 3, else the reference."""
    if len(kernel) <= 3:
        return _max_pool(x, kernel, stride, pads, dilation, out_spatial)
    return reference.max_pool(x, kernel, stride, pads, dilation, out_spatial)


def sum_pool(x, kernel, stride, pads, out_spatial):
    """Window sums ``(B, C, *L)`` (:func:`reference.sum_pool`); Numba when no window reaches into padding."""
    if len(kernel) > 3 or not _valid(pads):
        return reference.sum_pool(x, kernel, stride, pads, out_spatial)
    o3 = _as3(out_spatial, 1)
    y = np.empty((x.shape[0] * x.shape[1],) + o3, dtype=x.dtype)
    _sum_pool_valid3(_writable(_planes(x, x.shape[2:])), y, *_as3(kernel, 1), *_as3(stride, 1), x.dtype.type(0),
                     False)
    return y.reshape(x.shape[:2] + tuple(out_spatial))


def sum_pool_backward(gy, in_shape, kernel, stride, pads, out_spatial):
    """Adjoint of :func:`sum_pool` (:func:`reference.sum_pool_backward`); Numba when no window reaches
    into padding."""
    if len(kernel) > 3 or not _valid(pads):
        return reference.sum_pool_backward(gy, in_shape, kernel, stride, pads, out_spatial)
    dx = np.empty((in_shape[0] * in_shape[1],) + _as3(in_shape[2:], 1), dtype=gy.dtype)
    _sum_pool_valid3(dx, _writable(_planes(gy, out_spatial)), *_as3(kernel, 1), *_as3(stride, 1), gy.dtype.type(0),
                     True)
    return dx.reshape(tuple(in_shape))
