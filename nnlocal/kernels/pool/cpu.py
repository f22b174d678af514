r"""Numba twins of :mod:`nnlocal.kernels.pool.reference` (selected by ``nnlocal.kernels.use("numba")``).

Numba loops over a 3-d view (1-d and 2-d inputs get unit axes); inputs with more than 3 spatial
axes fall back to the reference. Measured faster than the references on LeNet- and ResNet-sized
layers (one thread, float32; ``nnlocal bench kernels``):

* ``max_pool`` / ``max_pool_backward``: one pass for the max and its index, no window copy; the
  backward is a scatter-add by index; windows inside x (no padding, the LeNet case) take a
  window-inner kernel over planes in parallel;
* ``sum_pool`` / ``sum_pool_backward`` (average pooling): window sums and their adjoint in one pass
  when no window reaches into the padding, the reference otherwise.

Indices are cast to unsigned (``U``): for a signed index Numba adds a negative-index wraparound
test to every access, which blocks vectorisation.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange
from numba import uint64 as U

from ..conv.cpu import _as3
from . import reference

__all__ = ["max_pool", "max_pool_backward", "sum_pool", "sum_pool_backward"]


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
