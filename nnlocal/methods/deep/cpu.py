r"""Numba twins of :mod:`nnlocal.methods.deep.reference` (selected by ``nnlocal.kernels.use("numba")``).

One kernel: the relaxation loop of :func:`linear_relax` / :func:`relax_phases`, all the Euler
steps of a net in one compiled call, the nets spread over the cores (``prange``; each net is
computed by one thread in a fixed order, so the results do not depend on the thread count, and a
net trained alone gets the same bits as in a batch). Per step and net, in one pass: the drive
``s_H M`` (row by row, ``v[b] = Σ_i s_H[b, i] M[i]``, vectorised along the free units), the nudge,
the Euler step, the clip (written as comparisons, so NaN propagates as in ``np.clip``), the
residual and, on request, DEEP's STDP sums of the step. :func:`relax_phases` runs an epoch's free
and nudged phase in the same call.

**The kernel pays only for small nets, so the functions choose by size.** The NumPy reference
spends some 30-40 µs of interpreter time per Euler step whatever the size (shared by the S nets of
a batch), and then one BLAS GEMM; the kernel has no per-step overhead, but its loop is slower than
a GEMM. Measured (``python -m nnlocal.bench.bench_deep --kernels``: one thread each, CPU time of the
calling thread, 3 clamped units, H = N - 3 free units, a nudged phase; Intel Xeon with AVX-512,
2 cores, shared, load average 11-12), reference time / kernel time:

=========  ========  ========  =========  =========
N (H)      B=4 S=1   B=4 S=8   B=64 S=1   B=64 S=8
=========  ========  ========  =========  =========
9 (6)      242       34        16         4.6
80 (77)    8.4       1.8       1.14       0.75
275 (272)  1.12      1.10      0.51       0.47
875 (872)  0.62      0.82      0.15       0.18
=========  ========  ========  =========  =========

So the kernel runs while one step of one net costs at most :data:`KERNEL_MAX_WORK` = 2¹⁸
multiply-adds (B·H², :func:`uses_kernel`), and the reference above: the kernel for XOR (B·H² =
144) and N = 80 with B = 4 (23,716); the reference for N = 80 with B = 64 (379,456) and for N =
275 and 875. A finer sweep (B = 4, 16, 64; H = 64 … 384; one net) puts the crossover at B·H² ≈
3·10⁵. The rule does not look at the number of nets (a net must get the same bits alone as in a
batch): at the threshold the kernel is up to 1.5× slower for 8 nets on one thread, and runs them
on both cores by default.

dtype: the kernel computes in the dtype of its state array; scalars (dt, β, bounds) are cast to it
by the wrappers (a Python float inside ``@njit`` would silently promote float32 to float64).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import reference
from .reference import asym_ep_linear_operator, deep_linear_operator, operator_relax, stdp_accumulate

__all__ = ["linear_relax", "relax_phases", "deep_relax", "asym_ep_relax", "deep_linear_operator",
           "asym_ep_linear_operator", "stdp_accumulate"]

#: the kernel runs while one Euler step of one net costs at most this many multiply-adds (B·H²);
#: above, the NumPy reference (one BLAS GEMM per step) is faster - see the module docstring
KERNEL_MAX_WORK = 2 ** 18


def uses_kernel(B: int, H: int) -> bool:
    """Whether :func:`linear_relax` / :func:`relax_phases` run the Numba kernel for B samples and H
    free units (else the reference). Independent of the number of nets, so a net gets the same bits
    alone as in a batch."""
    return B * H * H <= KERNEL_MAX_WORK


@njit(cache=True)
def _relax_net(M, c, s, n_x, n_out, steps, dt, beta, target, lo, hi, stop, residuals, traj, record, stdp,
               accumulate, beta0, beta1):
    """One net: M (H, H), c (B, H), s (B, N) in place, residuals (steps,), traj (steps + 1, B, N) if
    ``record``, stdp (N, N) if ``accumulate``. Returns the number of steps run."""
    B, N = s.shape
    H = N - n_x
    out0 = H - n_out
    zero = dt - dt                          # 0 in the state dtype
    buf = np.empty((2, B, H), dtype=s.dtype)    # the free units, old and new, swapped every step
    v = np.empty((B, H), dtype=s.dtype)         # s_H M
    a2 = np.empty((B, H), dtype=s.dtype)        # postsynaptic STDP factor of this step
    sums = np.zeros((N, H), dtype=s.dtype)      # STDP sums into the free units
    for b in range(B):
        for j in range(H):
            buf[0, b, j] = s[b, n_x + j]
    if record:
        for b in range(B):
            for i in range(N):
                traj[0, b, i] = s[b, i]
    done = 0
    for t in range(steps):
        x = buf[t % 2]
        new = buf[(t + 1) % 2]
        for b in range(B):                      # v = s_H M, row by row: v[b] = Σ_i x[b, i] M[i]
            vb = v[b]
            for j in range(H):
                vb[j] = zero
            for i in range(H):
                xi = x[b, i]
                Mi = M[i]
                for j in range(H):
                    vb[j] += xi * Mi[j]
        res = zero
        for b in range(B):
            for j in range(H):
                old = x[b, j]
                d = c[b, j] + v[b, j]
                if beta != 0 and j >= out0:
                    d += beta * (target[b, j - out0] - old)
                y = old + dt * d
                if y < lo:                      # not min/max: NaN must stay NaN, as in np.clip
                    y = lo
                elif y > hi:
                    y = hi
                new[b, j] = y
                r = y - old
                res += r * r
                if accumulate:
                    a2[b, j] = beta0 * y + beta1 * r
        if accumulate:                          # Σ_b s_i(t) a2[b, j], added in (t, b) order
            for b in range(B):
                for i in range(N):
                    a1 = s[b, i] if i < n_x else new[b, i - n_x]
                    for j in range(H):
                        sums[i, j] += a1 * a2[b, j]
        if record:
            for b in range(B):
                for i in range(n_x):
                    traj[t + 1, b, i] = s[b, i]
                for j in range(H):
                    traj[t + 1, b, n_x + j] = new[b, j]
        res = res / (dt * dt)
        residuals[t] = res
        done = t + 1
        if not np.isfinite(res):
            break
        if stop > 0 and res <= stop:
            break
    for t in range(done, steps):                # not run: NaN, as in the reference
        residuals[t] = zero * np.nan
    x = buf[done % 2]
    for b in range(B):
        for j in range(H):
            s[b, n_x + j] = x[b, j]
    if accumulate:                              # written, not added to; no edge enters an input
        for i in range(N):
            for j in range(n_x):
                stdp[i, j] = zero
            for j in range(H):
                stdp[i, n_x + j] = sums[i, j]
    return done


@njit(cache=True, parallel=True)
def _linear_relax_kernel(M, c, s, n_x, n_out, steps, dt, beta, target, lo, hi, stop, residuals, n_run, traj,
                         record, stdp, accumulate, beta0, beta1):
    for net in prange(s.shape[0]):
        tr = traj[net] if record else traj[0]
        sd = stdp[net] if accumulate else stdp[0]
        n_run[net] = _relax_net(M[net], c[net], s[net], n_x, n_out, steps, dt, beta, target, lo, hi, stop,
                                residuals[net], tr, record, sd, accumulate, beta0, beta1)


@njit(cache=True, parallel=True)
def _relax_phases_kernel(M, c, s, free, n_x, n_out, T1, T2, dt, beta, target, lo, hi, stop, res_f, n_f, res_n,
                         n_n, no_traj, stdp, accumulate, beta0, beta1):
    zero = dt - dt
    for net in prange(s.shape[0]):
        sd = stdp[net] if accumulate else stdp[0]
        n_f[net] = _relax_net(M[net], c[net], s[net], n_x, n_out, T1, dt, zero, target, lo, hi, stop, res_f[net],
                              no_traj, False, sd, False, beta0, beta1)
        free[net] = s[net]
        n_n[net] = _relax_net(M[net], c[net], s[net], n_x, n_out, T2, dt, beta, target, lo, hi, stop, res_n[net],
                              no_traj, False, sd, accumulate, beta0, beta1)


def _prepare(M, c, s, n_x, n_out, beta, target, stdp):
    """Shape checks; contiguous operands of the state dtype, the state to work on (``s`` itself when
    it is C-contiguous), a dummy target and STDP buffer."""
    dtype = s.dtype
    S, B, N = s.shape
    H = N - n_x
    if M.shape != (S, H, H) or c.shape != (S, B, H):
        raise ValueError(f"linear_relax: M {M.shape} / c {c.shape} do not match s {s.shape} with n_x={n_x}")
    if target is None or beta == 0:
        target = np.zeros((B, max(n_out, 1)), dtype=dtype)
    if stdp is not None and (stdp.shape != (S, N, N) or stdp.dtype != dtype or not stdp.flags.c_contiguous):
        raise ValueError(f"linear_relax: stdp must be a C-contiguous {(S, N, N)} {dtype} array, got {stdp.shape}")
    return (np.ascontiguousarray(M, dtype=dtype), np.ascontiguousarray(c, dtype=dtype),
            np.ascontiguousarray(target, dtype=dtype), np.ascontiguousarray(s),
            np.zeros((1, 1, 1), dtype=dtype) if stdp is None else stdp)


def linear_relax(M, c, s, n_x, n_out, steps, dt, beta=0.0, target=None, lo=0.0, hi=1.0, stop=0.0,
                 traj=None, stdp=None, beta0=0.0, beta1=1.0):
    r"""Euler relaxation of S independent directed nets with a linear drive, clipped to [lo, hi].

    The twin of :func:`nnlocal.methods.deep.reference.linear_relax` (same arguments, in-place
    update, returns): per step, on the H free units, ``ds = c + s_H M (+ beta (target - s_out))``,
    ``s_H <- clip(s_H + dt ds, lo, hi)``. ``M`` (S, H, H), ``c`` (S, B, H), ``s`` (S, B, N)
    C-contiguous; optional ``traj`` (S, steps + 1, B, N) and ``stdp`` (S, N, N) outputs. Returns
    ``residuals`` (S, steps) and ``n_run`` (S,) int64.

    Chooses by size: the Numba kernel (the nets in parallel, one per thread) while
    ``B·H² <= KERNEL_MAX_WORK``, the reference above (:func:`uses_kernel`).
    """
    if not uses_kernel(s.shape[1], s.shape[2] - n_x):
        return reference.linear_relax(M, c, s, n_x, n_out, steps, dt, beta, target, lo, hi, stop, traj, stdp,
                                      beta0, beta1)
    return _kernel_linear_relax(M, c, s, n_x, n_out, steps, dt, beta, target, lo, hi, stop, traj, stdp, beta0, beta1)


def _kernel_linear_relax(M, c, s, n_x, n_out, steps, dt, beta, target, lo, hi, stop, traj, stdp, beta0, beta1):
    dtype = s.dtype
    S, B, N = s.shape
    M, c, target, work, stdp_buf = _prepare(M, c, s, n_x, n_out, beta, target, stdp)
    if traj is None:
        traj_buf, record = np.zeros((1, 1, 1, 1), dtype=dtype), False
    elif traj.shape != (S, steps + 1, B, N) or traj.dtype != dtype:
        raise ValueError(f"linear_relax: traj must be {(S, steps + 1, B, N)} {dtype}, got {traj.shape} {traj.dtype}")
    else:
        traj_buf, record = traj, True
    residuals = np.empty((S, steps), dtype=dtype)
    n_run = np.zeros(S, dtype=np.int64)
    t = dtype.type
    _linear_relax_kernel(M, c, work, int(n_x), int(n_out), int(steps), t(dt), t(beta), target, t(lo), t(hi),
                         t(stop), residuals, n_run, traj_buf, record, stdp_buf, stdp is not None, t(beta0), t(beta1))
    if work is not s:                       # a non-contiguous s: the kernel worked on a copy
        s[...] = work
    return residuals, n_run


def relax_phases(M, c, s, n_x, n_out, T1, T2, dt, beta, target, lo=0.0, hi=1.0, stop=0.0, stdp=None,
                 beta0=0.0, beta1=1.0):
    r"""The twin of :func:`nnlocal.methods.deep.reference.relax_phases`: the free phase (T1 steps),
    then the nudged phase (T2 steps, optional STDP sums into ``stdp``), both in one parallel kernel
    call (each net's two phases on one thread). Returns ``(free, res_free, n_free, res_nudged,
    n_nudged)``; ``s`` ends at the nudged state. Above ``KERNEL_MAX_WORK``, the reference."""
    if not uses_kernel(s.shape[1], s.shape[2] - n_x):
        return reference.relax_phases(M, c, s, n_x, n_out, T1, T2, dt, beta, target, lo, hi, stop, stdp, beta0, beta1)
    dtype = s.dtype
    S, B, N = s.shape
    M, c, target, work, stdp_buf = _prepare(M, c, s, n_x, n_out, beta, target, stdp)
    free = np.empty_like(work)
    res_f, res_n = np.empty((S, T1), dtype=dtype), np.empty((S, T2), dtype=dtype)
    n_f, n_n = np.zeros(S, dtype=np.int64), np.zeros(S, dtype=np.int64)
    t = dtype.type
    _relax_phases_kernel(M, c, work, free, int(n_x), int(n_out), int(T1), int(T2), t(dt), t(beta), target, t(lo),
                         t(hi), t(stop), res_f, n_f, res_n, n_n, np.zeros((1, 1, 1), dtype=dtype), stdp_buf,
                         stdp is not None, t(beta0), t(beta1))
    if work is not s:
        s[...] = work
    return free, res_f, n_f, res_n, n_n


def deep_relax(W, s, n_x, n_out, steps, dt, beta=0.0, target=None, leak_abs=False, clip=True, stop=0.0,
               traj=None):
    r"""DEEP's dynamics ``ds = s W - s ⊙ (W 1)`` (+ nudge), Euler + clip, for one net or S nets.

    ``W`` (S, N, N) [or (N, N)], ``s`` (S, B, N) [or (B, N)] updated in place; the clamped inputs are
    ``s[..., :n_x]`` (identical across nets). Built on the hoisted operator and :func:`linear_relax`.
    """
    return operator_relax(linear_relax, lambda x: deep_linear_operator(W, x, leak_abs), s, n_x, n_out, steps, dt,
                          beta, target, clip, stop, traj)


def asym_ep_relax(W, b, s, n_x, n_out, steps, dt, beta=0.0, target=None, clip=True, stop=0.0, traj=None):
    r"""Asymmetric EP's dynamics ``ds = s W + b - s`` (+ nudge), Euler + clip, for one net or S nets."""
    return operator_relax(linear_relax, lambda x: asym_ep_linear_operator(W, b, x), s, n_x, n_out, steps, dt,
                          beta, target, clip, stop, traj)
