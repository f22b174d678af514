r"""``numba.cuda`` twins of :mod:`nnlocal.methods.eqprop.reference` (``device="cuda"``).

Same functions, same signatures, same in-place updates (conventions:
:mod:`nnlocal.kernels.cuda_launch`). :func:`ep_relax` runs one block per sample (B), threads over
the H packed units, all steps in one launch; :func:`ep_update_elementwise` one thread per
(sample, unit). The couplings and biases may be passed as device arrays (:func:`ep_resident`):
``EPNet(device="cuda")`` uploads them once after each change of its parameters and reuses them for
the free and the nudged phase. The learning rule :func:`ep_update` is the CPU's (``cpu.ep_update``,
one BLAS gemm per batch), after which the parameters are uploaded again. The clip is written as ``if v < lo ... elif v > hi`` without
fast-math, so a NaN propagates as in the reference's ``np.clip``.
"""
from __future__ import annotations

import functools

import numpy as np
from numba import cuda

from ...kernels.cuda_launch import (FLAT_THREADS, MAX_THREADS, blocks, host_out, is_device, pow2, reduction_type,
                                    to_device)

from .cpu import ep_update   # the learning rule stays on the CPU: one BLAS gemm per batch (see ep_resident)
from .reference import ep_pack_couplings

__all__ = ["ep_relax", "ep_relax_device", "ep_resident", "ep_update_elementwise", "ep_update", "ep_pack_couplings"]

_EP_THREADS = 512         # cap for symmetric EP (784-500-10: H = 510 -> 512 threads, one unit each)


@functools.lru_cache(maxsize=None)
def _ep_relax_kernel(dtype_str):
    red_t = reduction_type(dtype_str)

    @cuda.jit
    def kernel(c, vt, bias, s, nxt, sizes, off, woff, steps, eps, beta, target, lo, hi, res_bs):
        b = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        nt = cuda.blockDim.x
        red = cuda.shared.array(MAX_THREADS, red_t)
        H = s.shape[1]
        L = sizes.shape[0]
        zero = eps - eps
        for t in range(steps):
            part = zero
            for h in range(tid, H, nt):
                lay = 0
                while h >= off[lay + 1]:
                    lay += 1
                q = h - off[lay]
                # the CPU's order: bias, input drive, the whole upward sum, then downward term by term
                d = bias[h]
                if lay == 0:
                    d += c[b, q]
                if lay > 0:  # from layer lay-1: row q of V_{lay-1}ᵀ (contiguous)
                    n_prev = sizes[lay - 1]
                    base = woff[lay - 1] + q * n_prev
                    o = off[lay - 1]
                    acc = zero
                    for i in range(n_prev):
                        acc += vt[base + i] * s[b, o + i]
                    d += acc
                if lay < L - 1:  # from layer lay+1: column q of V_layᵀ (coalesced across the threads)
                    n_here = sizes[lay]
                    base = woff[lay] + q
                    o = off[lay + 1]
                    for j in range(sizes[lay + 1]):
                        d += s[b, o + j] * vt[base + j * n_here]
                old = s[b, h]
                if beta != 0 and lay == L - 1:
                    d += beta * (target[b, q] - old)
                v = old + eps * (d - old)
                if v < lo:
                    v = lo
                elif v > hi:
                    v = hi
                nxt[b, h] = v
                r = v - old
                part += r * r
            cuda.syncthreads()  # all drives read the old state
            for h in range(tid, H, nt):
                s[b, h] = nxt[b, h]
            red[tid] = part
            cuda.syncthreads()
            stride = nt // 2
            while stride > 0:
                if tid < stride:
                    red[tid] += red[tid + stride]
                cuda.syncthreads()
                stride //= 2
            if tid == 0:
                res_bs[b, t] = red[0]

    return kernel


@cuda.jit
def _sum_over_batch(res_bs, zero, out):
    """out[t] = Σ_b res_bs[b, t], serially in b (the CPU adds the samples' residuals in that order)."""
    t = cuda.grid(1)
    if t < out.shape[0]:
        acc = zero
        for b in range(res_bs.shape[0]):
            acc += res_bs[b, t]
        out[t] = acc


def _ep_layout(sizes):
    sizes = np.asarray(sizes, dtype=np.int64).reshape(-1)
    off = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    woff = np.zeros(len(sizes), dtype=np.int64)
    for lay in range(len(sizes) - 1):
        woff[lay + 1] = woff[lay] + sizes[lay] * sizes[lay + 1]
    return sizes, off, woff


def ep_relax_device(c, vt, bias, s, sizes, steps, eps, beta=0.0, target=None):
    r"""Device-resident :func:`ep_relax`: ``s`` (B, H) is a **device array** updated in place.

    ``c``, ``vt``, ``bias``, ``target`` host or device. Returns a device array ``residuals`` (steps,).

    Mapping: grid = B blocks (one per sample: samples do not interact); block = the next power of two
    of H threads (≤ 512; 784-500-10 gives H = 510 → 512, one unit per thread). Thread h finds its layer
    l and computes its drive ``bias + [l=0] c + s_{l-1} V_{l-1} + s_{l+1} V_lᵀ (+ nudge)`` from the
    packed transposed couplings ``vt``; the T steps run in one launch with a barrier between the
    drive (reads the old state) and the commit (writes the new one). Per-sample residuals are
    reduced in the block and summed over the batch by a second tiny kernel.
    """
    dtype = np.dtype(s.dtype)
    B, H = s.shape
    steps = int(steps)
    sizes, off, woff = _ep_layout(sizes)
    if int(off[-1]) != H:
        raise ValueError(f"ep_relax: state width {H} does not match the layer sizes {sizes.tolist()}")
    tp = dtype.type
    d_c, d_bias = to_device(c, dtype), to_device(bias, dtype)
    d_vt = to_device(vt, dtype) if (is_device(vt) or np.size(vt)) else cuda.to_device(np.zeros(1, dtype))
    if target is None or beta == 0:
        d_t = cuda.to_device(np.zeros((B, 1), dtype=dtype))
    else:
        d_t = to_device(target, dtype)
    nxt = cuda.device_array((B, H), dtype=dtype)
    res_bs = cuda.device_array((B, max(steps, 1)), dtype=dtype)
    out = cuda.to_device(np.zeros(max(steps, 1), dtype=dtype))
    threads = pow2(H, _EP_THREADS)
    if steps > 0 and B > 0:
        _ep_relax_kernel(dtype.str)[B, threads](d_c, d_vt, d_bias, s, nxt, cuda.to_device(sizes),
                                                cuda.to_device(off), cuda.to_device(woff), steps, tp(eps),
                                                tp(beta), d_t, tp(0), tp(1), res_bs)
        tt = pow2(steps, FLAT_THREADS)
        _sum_over_batch[blocks(steps, tt), tt](res_bs, tp(0), out)
    return out if steps > 0 else out[:0]


def ep_relax(c, vt, bias, s, sizes, steps, eps, beta=0.0, target=None):
    r"""GPU twin of :func:`ep_relax` (same arguments, in-place update, returns).

    One synchronous step over the non-input layers l = 0 … L-1 (packed in ``s`` (B, H))::

        s_l <- clip(s_l + ε (d_l - s_l), 0, 1),
        d_l = b_l + [l = 0] c + [l > 0] s_{l-1} V_{l-1} + [l < L-1] s_{l+1} V_lᵀ  (+ β (y - s_{L-1}) on the output)

    ``c`` (B, sizes[0]) the hoisted input drive, ``vt`` the packed transposed couplings
    (:func:`ep_pack_couplings`), ``bias`` (H,), ``sizes`` (L,). Returns ``residuals`` (steps,)
    ``Σ_{b,h} (Δs)²``. All steps in one launch (:func:`ep_relax_device`).
    """
    d_s = cuda.to_device(np.ascontiguousarray(s))
    res = ep_relax_device(c, vt, bias, d_s, sizes, steps, eps, beta, target)
    host_out(s, d_s)
    return res.copy_to_host()


def ep_resident(vt, bias):
    """``(vt, bias)`` uploaded to the GPU, for a model to keep while its parameters do not change
    (:func:`ep_relax` then reads them in place instead of uploading them on every call). An empty
    ``vt`` (one non-input layer) becomes a one-element placeholder the kernel never reads."""
    vt = np.asarray(vt)
    return to_device(vt if vt.size else np.zeros(1, vt.dtype)), to_device(bias)


@cuda.jit
def _ep_elementwise_kernel(s, d, eps, beta, target, out0, lo, hi, r2):
    B, H = s.shape
    p = cuda.grid(1)
    if p >= B * H:
        return
    b = p // H
    h = p - b * H
    old = s[b, h]
    if beta != 0 and h >= out0:
        d[b, h] += beta * (target[b, h - out0] - old)
    v = old + eps * (d[b, h] - old)
    if v < lo:
        v = lo
    elif v > hi:
        v = hi
    s[b, h] = v
    r = v - old
    r2[b, h] = r * r


def ep_update_elementwise(s, d, eps, beta=0.0, target=None):
    """GPU twin of :func:`ep_update_elementwise`: ``s`` and ``d`` (B, H) updated in
    place (the nudge is added into ``d``); returns ``Σ (s_new - s_old)²`` (summed on the host).
    One thread per (sample, unit)."""
    dtype = s.dtype
    tp = dtype.type
    B, H = s.shape
    if target is None or beta == 0:
        d_t, n_out = cuda.to_device(np.zeros((B, 1), dtype=dtype)), 0
    else:
        d_t = to_device(target, dtype)
        n_out = d_t.shape[1]
    d_s, d_d = cuda.to_device(np.ascontiguousarray(s)), cuda.to_device(np.ascontiguousarray(d))
    r2 = cuda.device_array((B, H), dtype=dtype)
    threads = pow2(B * H, FLAT_THREADS)
    _ep_elementwise_kernel[blocks(B * H, threads), threads](d_s, d_d, tp(eps), tp(beta), d_t, H - n_out,
                                                             tp(0), tp(1), r2)
    host_out(s, d_s)
    host_out(d, d_d)
    return float(r2.copy_to_host().sum())
