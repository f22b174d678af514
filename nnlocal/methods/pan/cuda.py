r"""``numba.cuda`` twins of :mod:`nnlocal.methods.pan.reference` (``device="cuda"``).

Same functions, same signatures, same in-place updates (conventions:
:mod:`nnlocal.kernels.cuda_launch`). TW and Tb may be passed as device arrays: the layer keeps
them resident with :func:`to_device` (re-exported here) and uploads them again only when they
change (``layer.py``, "device='cuda'"). Thread mapping: ``pan_batch_gate`` one block per gate row (K),
threads over n; ``pan_sample_gate`` (k, b) tiles with shared tiles of TW and x;
``pan_bias_threshold`` one thread per (b, k); ``pan_sample_forward`` one per (b, j);
``pan_sample_backward`` one per (j, i), then per (b, i); ``pan_sample_gate_grad`` one per
(b, j, i); ``pan_add_outer`` one per (k, i).
"""
from __future__ import annotations

import functools

import numpy as np
from numba import cuda

from ...kernels.cuda_launch import (FLAT_THREADS, MAX_THREADS, ROW_THREADS, blocks, host_out, is_device, pow2,
                                    reduction_type, to_device)

__all__ = ["pan_batch_gate", "pan_batch_gate_device", "pan_sample_gate", "pan_bias_threshold", "pan_sample_forward",
           "pan_sample_backward", "pan_sample_gate_grad", "pan_add_outer", "to_device"]

_TILE_I = 16              # depth of the shared-memory tiles of the fused per-sample PAN gate


@functools.lru_cache(maxsize=None)
def _batch_gate_kernel(dtype_str):
    red_t = reduction_type(dtype_str)

    @cuda.jit
    def kernel(tw, s, tb, tb_scale, threshold, zero, mask):
        k = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        nt = cuda.blockDim.x
        red = cuda.shared.array(MAX_THREADS, red_t)
        acc = zero
        for i in range(tid, tw.shape[1], nt):  # consecutive threads read consecutive TW[k, i]: coalesced
            acc += tw[k, i] * s[i]
        red[tid] = acc
        cuda.syncthreads()
        stride = nt // 2
        while stride > 0:
            if tid < stride:
                red[tid] += red[tid + stride]
            cuda.syncthreads()
            stride //= 2
        if tid == 0:
            mask[k] = red[0] + tb_scale * tb[k] > threshold

    return kernel


def pan_batch_gate_device(tw, s, tb, tb_scale, threshold):
    """Device variant of :func:`pan_batch_gate`: returns the (K,) bool mask as a device array."""
    d_tw = to_device(tw)
    dtype = np.dtype(d_tw.dtype)
    K, n = d_tw.shape
    mask = cuda.device_array(K, dtype=np.bool_)
    if K:
        threads = pow2(n, ROW_THREADS)
        _batch_gate_kernel(dtype.str)[K, threads](d_tw, to_device(s, dtype), to_device(tb, dtype),
                                                  dtype.type(tb_scale), dtype.type(threshold), dtype.type(0), mask)
    return mask


def pan_batch_gate(tw, s, tb, tb_scale, threshold, mask):
    r"""GPU twin of :func:`pan_batch_gate`: ``mask[k] = TW[k]·s + tb_scale·Tb[k] > θ``.

    ``tw`` (K, n) (host, or a cached device array: it is the large operand, 76.8 MB at 400→120),
    ``s`` (n,), ``tb`` (K,), ``mask`` (K,) bool written and returned. One block per row k, its
    threads striding over n (coalesced reads of TW) and reducing the dot product in shared memory;
    the gate can differ from the CPU's only where ``|Th - θ|`` is at rounding level.
    """
    return host_out(mask, pan_batch_gate_device(tw, s, tb, tb_scale, threshold))


@functools.lru_cache(maxsize=None)
def _sample_gate_kernel(dtype_str, TB, TK):
    tile_t = reduction_type(dtype_str)

    @cuda.jit
    def kernel(tw, x, tb, threshold, zero, mask):
        xs = cuda.shared.array((TB, _TILE_I), tile_t)
        ws = cuda.shared.array((TK, _TILE_I), tile_t)
        tx = cuda.threadIdx.x            # -> gate k (fastest: the mask row is written coalesced)
        ty = cuda.threadIdx.y            # -> sample b
        k0 = cuda.blockIdx.x * TK
        b0 = cuda.blockIdx.y * TB
        B, n = x.shape
        K = tw.shape[0]
        tid = ty * TK + tx
        acc = zero
        for i0 in range(0, n, _TILE_I):
            for p in range(tid, TB * _TILE_I, TK * TB):
                r = p // _TILE_I
                q = p - r * _TILE_I
                xs[r, q] = x[b0 + r, i0 + q] if (b0 + r < B and i0 + q < n) else zero
            for p in range(tid, TK * _TILE_I, TK * TB):
                r = p // _TILE_I
                q = p - r * _TILE_I
                ws[r, q] = tw[k0 + r, i0 + q] if (k0 + r < K and i0 + q < n) else zero
            cuda.syncthreads()
            for q in range(_TILE_I):
                acc += ws[tx, q] * xs[ty, q]
            cuda.syncthreads()
        if b0 + ty < B and k0 + tx < K:
            mask[b0 + ty, k0 + tx] = acc + tb[k0 + tx] > threshold

    return kernel


def pan_sample_gate(tw, x, tb, threshold, mask):
    r"""GPU twin of :func:`pan_sample_gate` (extension): ``mask[b, k] = TW[k]·x_b + Tb[k] > θ``, fused.

    On the CPU this is a BLAS GEMM ``x TWᵀ`` followed by :func:`pan_bias_threshold`; here one tiled
    kernel computes the (B, K) teacher pre-activations in registers and writes only the bool mask.
    ``tw`` (K, n) host or device, ``x`` (B, n), ``tb`` (K,) host or device, ``mask`` (B, K) bool (written).
    Mapping: blocks of TK × TB threads (TB = min(16, B) rounded up to a power of two, TK·TB ≤ 256)
    over (k, b); shared tiles of TW (TK × 16) and x (TB × 16) stream over n.
    """
    d_tw = to_device(tw)
    dtype = np.dtype(d_tw.dtype)
    K, n = d_tw.shape
    d_x = to_device(x, dtype)
    B = d_x.shape[0]
    d_mask = cuda.device_array((B, K), dtype=np.bool_)
    if B and K:
        TB = pow2(B, 16)
        TK = pow2(K, 256 // TB)
        grid = (blocks(K, TK), blocks(B, TB))
        _sample_gate_kernel(dtype.str, TB, TK)[grid, (TK, TB)](d_tw, d_x, to_device(tb, dtype),
                                                              dtype.type(threshold), dtype.type(0), d_mask)
    return host_out(mask, d_mask)


@cuda.jit
def _bias_threshold_kernel(tz, tb, threshold, mask):
    p = cuda.grid(1)
    B, K = tz.shape
    if p < B * K:
        b = p // K
        k = p - b * K
        mask[b, k] = tz[b, k] + tb[k] > threshold


def pan_bias_threshold(tz, tb, threshold, mask):
    """GPU twin of :func:`pan_bias_threshold`: ``mask[b, k] = tz[b, k] + tb[k] > θ``.
    ``tz`` (B, K), ``mask`` (B, K) bool written and returned. One thread per (b, k)."""
    d_tz = to_device(tz)
    dtype = np.dtype(d_tz.dtype)
    B, K = d_tz.shape
    d_mask = cuda.device_array((B, K), dtype=np.bool_)
    threads = pow2(B * K, FLAT_THREADS)
    _bias_threshold_kernel[blocks(B * K, threads), threads](d_tz, to_device(tb, dtype), dtype.type(threshold),
                                                             d_mask)
    return host_out(mask, d_mask)


@cuda.jit
def _sample_forward_kernel(mask, sw, x, sb, y):
    B, m, n = mask.shape
    p = cuda.grid(1)
    if p < B * m:
        b = p // m
        j = p - b * m
        acc = sw[j, 0] - sw[j, 0]
        for i in range(n):           # the CPU's order; times the mask, so NaN and inf propagate as on the CPU
            acc += mask[b, j, i] * sw[j, i] * x[b, i]
        y[b, j] = sb[j] + acc


def pan_sample_forward(mask, sw, x, sb, y):
    """GPU twin of :func:`pan_sample_forward`: ``y[b,j] = sb[j] + Σ_i mask[b,j,i] sw[j,i] x[b,i]``.

    mask (B, m, n) bool, sw (m, n), x (B, n), sb (m,), y (B, m) written and returned.
    One thread per (b, j), summing over i in the CPU's order.
    """
    dtype = y.dtype
    B, m, n = mask.shape
    d_y = cuda.device_array((B, m), dtype=dtype)
    threads = pow2(B * m, FLAT_THREADS)
    _sample_forward_kernel[blocks(B * m, threads), threads](to_device(mask, np.bool_), to_device(sw, dtype),
                                                             to_device(x, dtype), to_device(sb, dtype), d_y)
    return host_out(y, d_y)


@cuda.jit
def _sample_backward_w_kernel(mask, x, g, zero, gsw):
    B, m, n = mask.shape
    p = cuda.grid(1)
    if p < m * n:
        j = p // n
        i = p - j * n
        acc = zero
        for b in range(B):           # the CPU's order (b outer)
            acc += mask[b, j, i] * g[b, j] * x[b, i]
        gsw[j, i] = acc


@cuda.jit
def _sample_backward_x_kernel(mask, sw, g, zero, gx):
    B, m, n = mask.shape
    p = cuda.grid(1)
    if p < B * n:
        b = p // n
        i = p - b * n
        acc = zero
        for j in range(m):           # the CPU's order (j before i)
            acc += mask[b, j, i] * g[b, j] * sw[j, i]
        gx[b, i] = acc


def pan_sample_backward(mask, sw, x, g, gsw, gx):
    """GPU twin of :func:`pan_sample_backward` (``g`` = dL/dy (B, m)).

    gsw[j, i] = Σ_b g[b,j] mask[b,j,i] x[b,i]  (m, n) and gx[b, i] = Σ_j g[b,j] mask[b,j,i] sw[j,i]
    (B, n), both written (not accumulated) and returned. Two launches with no atomics: one thread per
    (j, i) summing over b, then one per (b, i) summing over j (coalesced along i in both).
    """
    dtype = gsw.dtype
    B, m, n = mask.shape
    d_mask, d_g = to_device(mask, np.bool_), to_device(g, dtype)
    d_gsw = cuda.device_array((m, n), dtype=dtype)
    d_gx = cuda.device_array((B, n), dtype=dtype)
    zero = np.dtype(dtype).type(0)
    tw_ = pow2(m * n, FLAT_THREADS)
    _sample_backward_w_kernel[blocks(m * n, tw_), tw_](d_mask, to_device(x, dtype), d_g, zero, d_gsw)
    tx_ = pow2(B * n, FLAT_THREADS)
    _sample_backward_x_kernel[blocks(B * n, tx_), tx_](d_mask, to_device(sw, dtype), d_g, zero, d_gx)
    host_out(gsw, d_gsw)
    host_out(gx, d_gx)
    return gsw, gx


@cuda.jit
def _sample_gate_grad_kernel(sw, x, g, out):
    B, m, n = out.shape
    p = cuda.grid(1)
    if p < B * m * n:
        b = p // (m * n)
        q = p - b * m * n
        j = q // n
        i = q - j * n
        out[b, j, i] = g[b, j] * sw[j, i] * x[b, i]


def pan_sample_gate_grad(sw, x, g, out):
    """GPU twin of :func:`pan_sample_gate_grad`: ``out[b,j,i] = g[b,j] sw[j,i] x[b,i]``.
    out (B, m, n) written and returned. One thread per entry."""
    dtype = out.dtype
    B, m, n = out.shape
    d_out = cuda.device_array((B, m, n), dtype=dtype)
    threads = pow2(B * m * n, FLAT_THREADS)
    _sample_gate_grad_kernel[blocks(B * m * n, threads), threads](to_device(sw, dtype), to_device(x, dtype),
                                                                   to_device(g, dtype), d_out)
    return host_out(out, d_out)


@cuda.jit
def _add_outer_kernel(G, u, v):
    K, n = G.shape
    p = cuda.grid(1)
    if p < K * n:
        k = p // n
        i = p - k * n
        G[k, i] += u[k] * v[i]


def pan_add_outer(G, u, v):
    """GPU twin of :func:`pan_add_outer`: ``G += u ⊗ v`` in place (returned).
    ``G`` may be a device array (then it stays there). One thread per entry."""
    dtype = G.dtype
    K, n = G.shape
    d_G = G if is_device(G) else cuda.to_device(np.ascontiguousarray(G))
    threads = pow2(K * n, FLAT_THREADS)
    _add_outer_kernel[blocks(K * n, threads), threads](d_G, to_device(u, dtype), to_device(v, dtype))
    return G if is_device(G) else host_out(G, d_G)
