r"""Numba twins of :mod:`nnlocal.methods.deep.reference` (selected by ``nnlocal.kernels.use("numba")``).

:func:`linear_relax` is the one kernel: the relaxation loop of S nets with the free units held
transposed, ``(H, B)``, so that the innermost loops run over the samples (contiguous and
vectorised). Each ds_j sums over i in the reference's order, so the results are identical.
Everything else (the operators, the STDP GEMM) is the reference's own NumPy.

dtype: the kernel computes in the dtype of its state array; scalars (dt, β, bounds) are cast to it
by the wrapper (a Python float inside ``@njit`` would silently promote float32 to float64).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .reference import asym_ep_linear_operator, deep_linear_operator, operator_relax, stdp_accumulate

__all__ = ["linear_relax", "deep_relax", "asym_ep_relax", "deep_linear_operator", "asym_ep_linear_operator",
           "stdp_accumulate"]

_EMPTY = {}


def _empty_traj(dtype):
    key = ("traj", np.dtype(dtype).str)
    if key not in _EMPTY:
        _EMPTY[key] = np.zeros((0, 0, 0, 0), dtype=dtype)
    return _EMPTY[key]


@njit(cache=True)
def _linear_relax_kernel(M, c, s, n_in, n_out, steps, dt, beta, target, lo, hi, stop, residuals, traj, n_run):
    # Layout: the free units of one net are held transposed, (H, B), so that the innermost loops run
    # over the samples - contiguous, and vectorised (4 samples = one AVX2 register in float64).
    # Each ds_j still sums over i in the same order as the reference, so the results are identical.
    S, B, N = s.shape
    H = N - n_in
    out0 = H - n_out
    record = traj.shape[0] > 0
    zero = dt - dt  # 0 in the state dtype (a literal 0.0 would promote float32 to float64)
    x = np.empty((H, B), dtype=s.dtype)      # state of the free units, two buffers swapped every step
    new = np.empty((H, B), dtype=s.dtype)
    v = np.empty((H, B), dtype=s.dtype)      # ds
    cT = np.empty((H, B), dtype=s.dtype)
    tT = np.empty((max(n_out, 1), B), dtype=s.dtype)
    for k in range(n_out):
        for b in range(B):
            tT[k, b] = target[b, k]
    for net in range(S):
        Mn = M[net]
        for b in range(B):
            for j in range(H):
                x[j, b] = s[net, b, n_in + j]
                cT[j, b] = c[net, b, j]
        if record:
            for b in range(B):
                for i in range(N):
                    traj[net, 0, b, i] = s[net, b, i]
        done = 0
        for t in range(steps):
            for j in range(H):
                vj = v[j]
                cj = cT[j]
                for b in range(B):
                    vj[b] = cj[b]
            for i in range(H):
                xi = x[i]
                Mi = Mn[i]
                for j in range(H):
                    m = Mi[j]
                    vj = v[j]
                    for b in range(B):
                        vj[b] += xi[b] * m
            if beta != 0:
                for k in range(n_out):
                    vj = v[out0 + k]
                    xj = x[out0 + k]
                    tk = tT[k]
                    for b in range(B):
                        vj[b] += beta * (tk[b] - xj[b])
            res = zero
            for j in range(H):
                xj = x[j]
                vj = v[j]
                nj = new[j]
                for b in range(B):
                    old = xj[b]
                    y = min(max(old + dt * vj[b], lo), hi)
                    nj[b] = y
                    res += (y - old) * (y - old)
            x, new = new, x
            if record:
                for b in range(B):
                    for i in range(n_in):
                        traj[net, t + 1, b, i] = s[net, b, i]
                    for j in range(H):
                        traj[net, t + 1, b, n_in + j] = x[j, b]
            res = res / (dt * dt)
            residuals[net, t] = res
            done = t + 1
            if not np.isfinite(res):
                break
            if stop > 0 and res <= stop:
                break
        for b in range(B):
            for j in range(H):
                s[net, b, n_in + j] = x[j, b]
        n_run[net] = done


def linear_relax(M, c, s, n_in, n_out, steps, dt, beta=0.0, target=None, lo=0.0, hi=1.0, stop=0.0,
                 traj=None):
    r"""Euler relaxation of S independent directed nets with a linear drive, clipped to [lo, hi].

    Per step, for every net and sample, on the H free units (columns ``n_in:`` of ``s``)::

        ds = c + s_H M  (+ beta (target - s_out) on the last n_out units)
        s_H <- clip(s_H + dt ds, lo, hi)        (synchronous: ds uses the old state)

    Parameters
    ----------
    M : (S, H, H) effective couplings among the free units, row = from, column = to, leak on the diagonal.
    c : (S, B, H) constant drive (from the clamped inputs, plus any bias).
    s : (S, B, N) state, updated **in place** on columns ``n_in:``; columns ``:n_in`` are read only.
    n_in, n_out : number of clamped units (first columns) and output units (last columns).
    steps : number of Euler steps.
    dt, beta : step size and nudging strength (``beta = 0``: free phase).
    target : (B, n_out) nudging target (ignored when ``beta == 0``).
    lo, hi : clip bounds (``-inf, inf`` for the unclipped linear dynamics).
    stop : early stop: a net stops once its residual is ``<= stop`` (``0`` disables).
    traj : optional (S, steps + 1, B, N) output: ``traj[:, 0]`` the initial state, ``traj[:, t]`` the
        state after step t (left untouched after an early stop or a divergence).

    Returns
    -------
    residuals : (S, steps), ``Σ_{b, j} ((s_new - s_old) / dt)²`` per step (the projected velocity;
        NaN after a net stopped early or diverged).
    n_run : (S,) int64 steps each net ran. A net whose residual became NaN/inf stops there.
    """
    dtype = s.dtype
    S, B, N = s.shape
    H = N - n_in
    if M.shape != (S, H, H) or c.shape != (S, B, H):
        raise ValueError(f"linear_relax: M {M.shape} / c {c.shape} do not match s {s.shape} with n_in={n_in}")
    if target is None or beta == 0:
        target = np.zeros((B, max(n_out, 1)), dtype=dtype)
    target = np.ascontiguousarray(target, dtype=dtype)
    if traj is None:
        traj = _empty_traj(dtype)
    elif traj.shape != (S, steps + 1, B, N) or traj.dtype != dtype:
        raise ValueError(f"linear_relax: traj must be {(S, steps + 1, B, N)} {dtype}, got {traj.shape} {traj.dtype}")
    residuals = np.full((S, steps), np.nan, dtype=dtype)
    n_run = np.zeros(S, dtype=np.int64)
    t = dtype.type
    _linear_relax_kernel(np.ascontiguousarray(M, dtype=dtype), np.ascontiguousarray(c, dtype=dtype), s,
                         int(n_in), int(n_out), int(steps), t(dt), t(beta), target, t(lo), t(hi), t(stop),
                         residuals, traj, n_run)
    return residuals, n_run


def deep_relax(W, s, n_in, n_out, steps, dt, beta=0.0, target=None, leak_abs=False, clip=True, stop=0.0,
               traj=None):
    r"""DEEP's directed dynamics ``ds = s W - s ⊙ (W 1)`` (+ nudge), Euler + clip, for S nets at once.

    ``W`` (S, N, N) [or (N, N)], ``s`` (S, B, N) [or (B, N)] updated in place; the clamped inputs are
    ``s[..., :n_in]`` (identical across nets). Other arguments and returns as :func:`linear_relax`
    (a single net gets ``residuals`` of shape (steps,) and an int ``n_run``).
    """
    return operator_relax(linear_relax, lambda x: deep_linear_operator(W, x, leak_abs), s, n_in, n_out, steps, dt,
                          beta, target, clip, stop, traj)


def asym_ep_relax(W, b, s, n_in, n_out, steps, dt, beta=0.0, target=None, clip=True, stop=0.0, traj=None):
    r"""Asymmetric EP's dynamics ``ds = s W + b - s`` (+ nudge), Euler + clip, for S nets at once.

    ``W`` (S, N, N) [or (N, N)], ``b`` (S, N) [or (N,)], ``s`` (S, B, N) [or (B, N)] in place.
    Returns as :func:`deep_relax`.
    """
    return operator_relax(linear_relax, lambda x: asym_ep_linear_operator(W, b, x), s, n_in, n_out, steps, dt,
                          beta, target, clip, stop, traj)
