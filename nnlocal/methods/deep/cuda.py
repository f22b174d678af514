r"""``numba.cuda`` twins of :mod:`nnlocal.methods.deep.reference` (``device="cuda"``).

Same functions, same signatures, same in-place updates as the reference (conventions:
:mod:`nnlocal.kernels.cuda_launch`). Thread mapping: :func:`linear_relax` runs one block per net
(S), threads over the B·H (sample, free unit) pairs, all the steps in one launch with barriers
between, and DEEP's STDP sums accumulated in the same launch; :func:`stdp_accumulate` one thread
per (net, i, j). The host-side operators (:func:`deep_linear_operator`,
:func:`asym_ep_linear_operator`) are the reference's.

Residency: in a fit, :func:`relax_phases` uploads an epoch's operators and state once and keeps
them on the device across the free and the nudged phase; only the free state, the residuals and
the (S, N, N) STDP sums come back (never a trajectory). ``*_device`` variants take and return
device arrays.
"""
from __future__ import annotations

import functools
import math

import numpy as np
from numba import cuda

from ...kernels.cuda_launch import (FLAT_THREADS, MAX_THREADS, blocks, host_out, is_device, pow2, reduction_type,
                                    to_device)

from .reference import asym_ep_linear_operator, deep_linear_operator, operator_relax

__all__ = ["linear_relax", "linear_relax_device", "relax_phases", "deep_relax", "asym_ep_relax", "deep_linear_operator",
           "asym_ep_linear_operator", "stdp_accumulate", "stdp_accumulate_device"]

_RELAX_THREADS = 256      # cap for the directed relaxation (B·H is small: XOR has 4·6)


@functools.lru_cache(maxsize=None)
def _linear_relax_kernel(dtype_str):
    red_t = reduction_type(dtype_str)

    @cuda.jit
    def kernel(M, c, s, nxt, n_x, n_out, steps, dt, beta, target, lo, hi, stop, residuals, n_run,
               record, traj, accumulate, beta0, beta1, stdp):
        net = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        nt = cuda.blockDim.x
        red = cuda.shared.array(MAX_THREADS, red_t)
        B = s.shape[1]
        N = s.shape[2]
        H = N - n_x
        out0 = H - n_out
        zero = dt - dt
        if record:
            for p in range(tid, B * N, nt):
                traj[net, 0, p // N, p % N] = s[net, p // N, p % N]
        if accumulate:
            for p in range(tid, N * N, nt):
                stdp[net, p // N, p % N] = zero
        for t in range(steps):
            # 1. each (sample, free unit) pair: drive from the old state, Euler step, clip
            part = zero
            for p in range(tid, B * H, nt):
                b = p // H
                j = p - b * H
                v = c[net, b, j]
                for i in range(H):
                    v += s[net, b, n_x + i] * M[net, i, j]
                old = s[net, b, n_x + j]
                if beta != 0 and j >= out0:
                    v += beta * (target[b, j - out0] - old)
                x = old + dt * v
                if x < lo:
                    x = lo
                elif x > hi:
                    x = hi
                nxt[net, b, j] = x
                r = x - old
                part += r * r
            cuda.syncthreads()  # the old state has been read by everyone: it may now be replaced
            if accumulate:
                # online STDP into the free (postsynaptic) units j: out[i, j] += Σ_b s_i(t) (β0 s_j(t) +
                # β1 (s_j(t) - s_j(t-1))), the CPU's expression and (t, b) order; s holds s(t-1), nxt
                # (and the clamped inputs) s(t). The input columns keep the 0 written above.
                for p in range(tid, N * H, nt):
                    i = p // H
                    j = p - i * H
                    acc = stdp[net, i, n_x + j]
                    for b in range(B):
                        a1 = s[net, b, i] if i < n_x else nxt[net, b, i - n_x]
                        now = nxt[net, b, j]
                        acc += a1 * (beta0 * now + beta1 * (now - s[net, b, n_x + j]))
                    stdp[net, i, n_x + j] = acc
                cuda.syncthreads()  # STDP read s(t-1): only now may it be overwritten
            # 2. commit the new state and reduce the residual Σ (Δs)² over the block
            for p in range(tid, B * H, nt):
                b = p // H
                j = p - b * H
                s[net, b, n_x + j] = nxt[net, b, j]
            red[tid] = part
            cuda.syncthreads()
            stride = nt // 2
            while stride > 0:
                if tid < stride:
                    red[tid] += red[tid + stride]
                cuda.syncthreads()
                stride //= 2
            res = red[0] / (dt * dt)
            if record:
                for p in range(tid, B * N, nt):
                    traj[net, t + 1, p // N, p % N] = s[net, p // N, p % N]
            if tid == 0:
                residuals[net, t] = res
                n_run[net] = t + 1
            # every thread read the same red[0]: the block leaves the loop together (no divergent
            # syncthreads); red is written again only after the next step's first barrier
            if not math.isfinite(res):
                break
            if stop > 0 and res <= stop:
                break

    return kernel


def _check_relax_args(who, M, c, s, n_x, steps, traj_shape=None, traj_dtype=None):
    S, B, N = s.shape
    H = N - n_x
    if tuple(M.shape) != (S, H, H) or tuple(c.shape) != (S, B, H):
        raise ValueError(f"{who}: M {tuple(M.shape)} / c {tuple(c.shape)} do not match s {tuple(s.shape)} "
                         f"with n_x={n_x}")
    if traj_shape is not None and (tuple(traj_shape) != (S, steps + 1, B, N) or traj_dtype != s.dtype):
        raise ValueError(f"{who}: traj must be {(S, steps + 1, B, N)} {s.dtype}, got {tuple(traj_shape)} {traj_dtype}")


def linear_relax_device(M, c, s, n_x, n_out, steps, dt, beta=0.0, target=None, lo=0.0, hi=1.0, stop=0.0,
                        traj=None, stdp=None, beta0=0.0, beta1=1.0):
    r"""Device-resident :func:`linear_relax`: ``s`` (S, B, N) is a **device array** updated in place.

    ``M``, ``c``, ``target`` may be host or device arrays. ``traj`` an optional device array
    (S, steps + 1, B, N). ``stdp`` an optional device array (S, N, N) that receives the raw STDP sums
    of this relaxation into the free units (columns ``n_x:``; the input columns are set to 0),
    accumulated on the fly: nothing of size T is stored. Returns device arrays ``residuals``
    (S, steps) and ``n_run`` (S,) int64.

    Mapping: grid = S blocks (one per net: the early stop and the NaN guard are per net, and they
    need the residual of the whole net); block = the next power of two of B·H threads (≤ 256), each
    thread owning the (sample, unit) pairs ``p = tid, tid + nt, …`` of its net (and, with ``stdp``,
    the (presynaptic, free postsynaptic) pairs of the N·H sums). One step costs
    2 + log2(nt) syncthreads (3 + log2(nt) with ``stdp``); the state stays in global memory, where
    a net's B·N values sit in L1.
    """
    dtype = np.dtype(s.dtype)
    S, B, N = s.shape
    steps = int(steps)
    _check_relax_args("linear_relax", M, c, s, int(n_x), steps,
                      None if traj is None else traj.shape, None if traj is None else np.dtype(traj.dtype))
    H = N - int(n_x)
    tp = dtype.type
    d_M, d_c = to_device(M, dtype), to_device(c, dtype)
    if target is None:          # (read only when beta != 0)
        d_t = cuda.to_device(np.zeros((B, max(int(n_out), 1)), dtype=dtype))
    else:
        d_t = to_device(target, dtype)
    record = traj is not None
    d_traj = traj if record else cuda.device_array((1, 1, 1, 1), dtype=dtype)
    accumulate = stdp is not None
    if accumulate and (tuple(stdp.shape) != (S, N, N) or np.dtype(stdp.dtype) != dtype):
        raise ValueError(f"linear_relax: stdp must be a device array {(S, N, N)} {dtype}, got {tuple(stdp.shape)}")
    d_stdp = stdp if accumulate else cuda.device_array((1, 1, 1), dtype=dtype)
    # (S, 1) when steps == 0: the launch still records traj[:, 0] and zeroes stdp
    residuals = cuda.to_device(np.full((S, max(steps, 1)), np.nan, dtype=dtype))
    n_run = cuda.to_device(np.zeros(S, dtype=np.int64))
    nxt = cuda.device_array((S, B, max(H, 1)), dtype=dtype)
    threads = pow2(max(B * H, N * H if accumulate else 1), _RELAX_THREADS)
    _linear_relax_kernel(dtype.str)[S, threads](
        d_M, d_c, s, nxt, int(n_x), int(n_out), steps, tp(dt), tp(beta), d_t, tp(lo), tp(hi), tp(stop),
        residuals, n_run, record, d_traj, accumulate, tp(beta0), tp(beta1), d_stdp)
    return (residuals if steps > 0 else residuals[:, :0]), n_run


def linear_relax(M, c, s, n_x, n_out, steps, dt, beta=0.0, target=None, lo=0.0, hi=1.0, stop=0.0,
                 traj=None, stdp=None, beta0=0.0, beta1=1.0):
    r"""GPU twin of :func:`nnlocal.methods.deep.reference.linear_relax` (same arguments, in-place
    update, returns).

    Per step, for every net and sample, on the H free units (columns ``n_x:`` of ``s``)::

        ds = c + s_H M  (+ beta (target - s_out) on the last n_out units)
        s_H <- clip(s_H + dt ds, lo, hi)           (synchronous: ds uses the old state)

    ``M`` (S, H, H), ``c`` (S, B, H), ``s`` (S, B, N) host array updated in place, ``traj`` optional
    host (S, steps + 1, B, N), ``stdp`` optional host (S, N, N) C-contiguous, written with DEEP's
    raw STDP sums (accumulated in the same launch: the trajectory is neither stored nor copied).
    Returns ``residuals`` (S, steps) and ``n_run`` (S,) int64. Mapping: :func:`linear_relax_device`.
    """
    dtype = s.dtype
    S, B, N = s.shape
    if traj is not None:
        _check_relax_args("linear_relax", M, c, s, int(n_x), int(steps), traj.shape, traj.dtype)
    _check_stdp(stdp, S, N, dtype)
    d_s = cuda.to_device(np.ascontiguousarray(s))
    d_traj = None if traj is None else cuda.device_array(traj.shape, dtype=dtype)
    d_stdp = None if stdp is None else cuda.device_array((S, N, N), dtype=dtype)
    d_res, d_n = linear_relax_device(M, c, d_s, n_x, n_out, steps, dt, beta, target, lo, hi, stop, d_traj,
                                     d_stdp, beta0, beta1)
    host_out(s, d_s)
    residuals = np.ascontiguousarray(d_res.copy_to_host())
    n_run = d_n.copy_to_host()
    if traj is not None:  # like the CPU kernel: the entries after an early stop are left untouched
        h = d_traj.copy_to_host()
        for net in range(S):
            traj[net, : n_run[net] + 1] = h[net, : n_run[net] + 1]
    if stdp is not None:
        host_out(stdp, d_stdp)
    return residuals, n_run


def _check_stdp(stdp, S, N, dtype):
    if stdp is not None and (stdp.shape != (S, N, N) or stdp.dtype != dtype or not stdp.flags.c_contiguous):
        raise ValueError(f"linear_relax: stdp must be a C-contiguous {(S, N, N)} {dtype} array, got {stdp.shape}")


def relax_phases(M, c, s, n_x, n_out, T1, T2, dt, beta, target, lo=0.0, hi=1.0, stop=0.0, stdp=None,
                 beta0=0.0, beta1=1.0):
    r"""GPU twin of :func:`nnlocal.methods.deep.reference.relax_phases`: one epoch's free phase (T1
    steps) and nudged phase (T2 steps) with the arrays **resident on the device** between them.

    The operators ``M``, ``c``, the target and the state are uploaded once; the free phase runs,
    only the free state (S, B, N) is copied back (the learning rule and the summaries need it), and
    the nudged phase continues from the state already on the device, with DEEP's STDP sums
    accumulated in the same launch (``stdp`` (S, N, N): no trajectory is stored or copied). Returns
    ``(free, res_free, n_free, res_nudged, n_nudged)``; ``s`` ends at the nudged state.
    """
    dtype = np.dtype(s.dtype)
    S, B, N = s.shape
    _check_stdp(stdp, S, N, dtype)
    d_M, d_c = to_device(M, dtype), to_device(c, dtype)
    d_t = to_device(np.zeros((B, max(int(n_out), 1))) if target is None else target, dtype)
    d_s = cuda.to_device(np.ascontiguousarray(s))
    d_res_f, d_n_f = linear_relax_device(d_M, d_c, d_s, n_x, n_out, T1, dt, 0.0, d_t, lo, hi, stop)
    free = d_s.copy_to_host()
    d_stdp = None if stdp is None else cuda.device_array((S, N, N), dtype=dtype)
    d_res_n, d_n_n = linear_relax_device(d_M, d_c, d_s, n_x, n_out, T2, dt, beta, d_t, lo, hi, stop, None, d_stdp,
                                         beta0, beta1)
    host_out(s, d_s)
    if stdp is not None:
        host_out(stdp, d_stdp)
    return (free, np.ascontiguousarray(d_res_f.copy_to_host()), d_n_f.copy_to_host(),
            np.ascontiguousarray(d_res_n.copy_to_host()), d_n_n.copy_to_host())


def deep_relax(W, s, n_x, n_out, steps, dt, beta=0.0, target=None, leak_abs=False, clip=True, stop=0.0, traj=None):
    r"""GPU twin of :func:`deep_relax`: ``ds = s W - s ⊙ (W 1)`` (+ nudge), Euler + clip.

    ``W`` (S, N, N) or (N, N), ``s`` (S, B, N) or (B, N) updated in place. The loop invariants
    ``M = W_HH - diag(leak)`` and ``c = x W_XH`` are built on the host (NumPy, once per call), the T
    steps run in one launch (:func:`linear_relax_device`).
    """
    return operator_relax(linear_relax, lambda x: deep_linear_operator(W, x, leak_abs), s, n_x, n_out, steps, dt, beta, target, clip, stop,
                          traj)


def asym_ep_relax(W, b, s, n_x, n_out, steps, dt, beta=0.0, target=None, clip=True, stop=0.0, traj=None):
    r"""GPU twin of :func:`asym_ep_relax`: ``ds = s W + b - s`` (+ nudge), Euler + clip."""
    return operator_relax(linear_relax, lambda x: asym_ep_linear_operator(W, b, x), s, n_x, n_out, steps, dt, beta, target, clip, stop,
                          traj)


# ------------------------------------------------------------------------------------------------
# STDP accumulation over a recorded trajectory
# ------------------------------------------------------------------------------------------------

@cuda.jit
def _stdp_kernel(traj, n_steps, beta0, beta1, out):
    S, T1, B, N = traj.shape
    p = cuda.grid(1)
    if p >= S * N * N:
        return
    net = p // (N * N)
    q = p - net * N * N
    i = q // N
    j = q - i * N
    acc = beta0 - beta0
    for t in range(1, n_steps[net] + 1):      # the CPU's (t, b) order: the same rounding
        for b in range(B):
            now = traj[net, t, b, j]
            acc += traj[net, t, b, i] * (beta0 * now + beta1 * (now - traj[net, t - 1, b, j]))
    out[net, i, j] = acc


def stdp_accumulate_device(traj, n_steps, beta0=0.0, beta1=1.0):
    r"""Device variant of :func:`stdp_accumulate` (``traj`` host or device, result a device array)."""
    d_traj = to_device(traj)
    S, _, _, N = d_traj.shape
    d_n = to_device(np.asarray(n_steps, dtype=np.int64).reshape(-1)) if not is_device(n_steps) else n_steps
    out = cuda.device_array((S, N, N), dtype=d_traj.dtype)
    tp = np.dtype(d_traj.dtype).type
    threads = pow2(S * N * N, FLAT_THREADS)
    _stdp_kernel[blocks(S * N * N, threads), threads](d_traj, d_n, tp(beta0), tp(beta1), out)
    return out


def stdp_accumulate(traj, n_steps, beta0=0.0, beta1=1.0):
    r"""GPU twin of :func:`stdp_accumulate`: ``Σ_{t=1..n} Σ_b A1(t)ᵀ A2(t)`` per net.

    ``traj`` (S, T+1, B, N), ``n_steps`` (S,) int; returns (S, N, N) with entry [i, j] the sum of
    ``s_i(t) (β0 s_j(t) + β1 (s_j(t) - s_j(t-1)))``. One thread per (net, i, j), summing over (t, b)
    in the (t, b) order of the CPU kernel's on-the-fly sums.
    On the GPU, prefer ``linear_relax(..., stdp=...)``: it accumulates the same sums (on the free
    columns) during the relaxation, so the trajectory is never stored nor copied to the host.
    """
    return stdp_accumulate_device(traj, n_steps, beta0, beta1).copy_to_host()
