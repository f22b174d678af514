r"""DEEP and asymmetric EP: the equations, in plain NumPy. Read this file first.

N neurons, one state row per sample: ``s`` is ``(B, N)`` with values in [0, 1]. The first ``n_x``
units are clamped to the data (the last of them is the constant-1 bias neuron); the other
H = N - n_x units are free, and the last ``n_out`` of those are the outputs. ``W`` is ``(N, N)``
with **W[i, j] = the synapse from i to j** (row = from, column = to).

Dynamics: one explicit Euler step of size dt on the free units, then the projection onto [lo, hi]
(= [0, 1] unless ``clip=False``)::

    DEEP      ds_j = Σ_i s_i W_ij - s_j Σ_k W_jk      (+ β (y_j - s_j) on the outputs)
    asym. EP  ds_j = Σ_i s_i W_ij + b_j - s_j         (+ β (y_j - s_j) on the outputs)
    s_j <- clip(s_j + dt ds_j, lo, hi)

Both are the *linear* drive ``ds_H = c + s_H M`` with two loop invariants hoisted out of the time
loop (the inputs are clamped, so neither changes during a relaxation):

* ``c = x W[:n_x, n_x:] (+ b_H)``, the drive from the inputs, ``(S, B, H)``;
* ``M = W[n_x:, n_x:] - diag(leak)``, the couplings among the free units with the leak on the
  diagonal, ``(S, H, H)`` (DEEP: ``leak_j = Σ_k W_jk``, or ``Σ_k |W_jk|`` with ``leak_abs``;
  asymmetric EP: ``leak_j = 1``).

:func:`linear_relax` runs that loop for S independent nets at once (the seeds of a success-rate
study); :func:`deep_relax` and :func:`asym_ep_relax` are the same dynamics in the notebooks'
literal form, recomputed from ``W`` every step.

Learning (DEEP's STDP rule) sums, over the nudged trajectory s(0) = free state … s(T)::

    A1(t) = s(t),   A2(t) = β0 s(t) + β1 (s(t) - s(t-1)),   Σ_{t=1..T} Σ_b A1(t)ᵀ A2(t)   (N, N)

(:func:`stdp_accumulate`: one GEMM of the stacked states per net).

``cpu.py`` holds the Numba twins, ``cuda.py`` the ``numba.cuda`` ones, with the same signatures.
"""
from __future__ import annotations

import numpy as np

__all__ = ["deep_linear_operator", "asym_ep_linear_operator", "linear_relax", "deep_relax", "asym_ep_relax",
           "operator_relax", "stdp_accumulate"]


def deep_linear_operator(W, x, leak_abs=False):
    r"""Hoisted invariants of DEEP's dynamics for :func:`linear_relax`.

    ``W`` (S, N, N) or (N, N); ``x`` (B, n_in) clamped inputs. Returns ``M = W_HH - diag(Σ_k W_jk)``
    (or ``Σ_k |W_jk|`` with ``leak_abs``) of shape (S, H, H) and ``c = x W_XH`` of shape (S, B, H).
    """
    W = W if W.ndim == 3 else W[None]
    n_in = x.shape[1]
    leak = np.abs(W).sum(axis=2) if leak_abs else W.sum(axis=2)  # (S, N): total outgoing weight
    M = W[:, n_in:, n_in:].copy()
    idx = np.arange(M.shape[1])
    M[:, idx, idx] -= leak[:, n_in:]
    c = np.matmul(x[None].astype(W.dtype), W[:, :n_in, n_in:])
    return M, c


def asym_ep_linear_operator(W, b, x):
    r"""Hoisted invariants of the asymmetric-EP dynamics: ``M = W_HH - I``, ``c = x W_XH + b_H``.

    ``W`` (S, N, N) or (N, N), ``b`` (S, N) or (N,), ``x`` (B, n_in).
    """
    W = W if W.ndim == 3 else W[None]
    b = b if b.ndim == 2 else b[None]
    n_in = x.shape[1]
    M = W[:, n_in:, n_in:].copy()
    idx = np.arange(M.shape[1])
    M[:, idx, idx] -= 1
    c = np.matmul(x[None].astype(W.dtype), W[:, :n_in, n_in:]) + b[:, None, n_in:]
    return M, c


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
    S, B, N = s.shape
    residuals = np.full((S, steps), np.nan, dtype=s.dtype)
    n_run = np.zeros(S, dtype=np.int64)
    for net in range(S):
        x = s[net]
        if traj is not None:
            traj[net, 0] = x
        for t in range(steps):
            ds = c[net] + x[:, n_in:] @ M[net]
            if beta != 0:
                ds[:, ds.shape[1] - n_out:] += beta * (target - x[:, N - n_out:])
            new = np.clip(x[:, n_in:] + dt * ds, lo, hi)
            res = np.sum(((new - x[:, n_in:]) / dt) ** 2)
            x[:, n_in:] = new
            if traj is not None:
                traj[net, t + 1] = x
            residuals[net, t] = res
            n_run[net] = t + 1
            if not np.isfinite(res) or (stop > 0 and res <= stop):
                break
    return residuals, n_run


def _euler(drift, s, n_in, n_out, steps, dt, beta, target, clip, stop, traj):
    """The references' literal Euler loop: ``ds = drift(s)`` (+ nudge), clip, residual, early stop."""
    lo, hi = (0.0, 1.0) if clip else (-np.inf, np.inf)
    residuals = np.full(steps, np.nan, dtype=s.dtype)
    n_run = 0
    if traj is not None:
        traj[0] = s
    for t in range(steps):
        ds = drift(s)
        if beta != 0:
            ds[:, -n_out:] += beta * (target - s[:, -n_out:])
        new = np.clip(s[:, n_in:] + dt * ds[:, n_in:], lo, hi)
        residuals[t] = np.sum(((new - s[:, n_in:]) / dt) ** 2)
        s[:, n_in:] = new
        if traj is not None:
            traj[t + 1] = s
        n_run = t + 1
        if not np.isfinite(residuals[t]) or (stop > 0 and residuals[t] <= stop):
            break
    return residuals, n_run


def deep_relax(W, s, n_in, n_out, steps, dt, beta=0.0, target=None, leak_abs=False, clip=True, stop=0.0,
                   traj=None):
    """DEEP's dynamics for one net (W (N, N), s (B, N)), in the notebook's literal form
    ``ds = s W - s ⊙ (W 1)ᵀ`` recomputed every step. Returns ``(residuals (steps,), n_run)``."""
    leak = np.abs(W).sum(axis=1) if leak_abs else W.sum(axis=1)
    return _euler(lambda s: s @ W - s * leak, s, n_in, n_out, steps, dt, beta, target, clip, stop, traj)


def asym_ep_relax(W, b, s, n_in, n_out, steps, dt, beta=0.0, target=None, clip=True, stop=0.0, traj=None):
    """Asymmetric EP's dynamics for one net, literal ``ds = s W + b - s`` every step."""
    return _euler(lambda s: s @ W + b - s, s, n_in, n_out, steps, dt, beta, target, clip, stop, traj)


def operator_relax(relax_fn, build_operator, s, n_in, n_out, steps, dt, beta, target, clip, stop, traj):
    """The body shared by ``deep_relax`` and ``asym_ep_relax`` on either backend: build the hoisted
    operator ``M, c = build_operator(clamped inputs)`` and run ``relax_fn`` (the CPU or CUDA
    :func:`linear_relax`) on one net (``s`` (B, N)) or a stack of nets (``s`` (S, B, N))."""
    single = s.ndim == 2
    s3 = s[None] if single else s
    traj4 = None if traj is None else (traj[None] if single else traj)
    M, c = build_operator(s3[0, :, :n_in])
    lo, hi = (0.0, 1.0) if clip else (-np.inf, np.inf)
    res, n_run = relax_fn(M, c, s3, n_in, n_out, steps, dt, beta, target, lo, hi, stop, traj4)
    return (res[0], int(n_run[0])) if single else (res, n_run)


def stdp_accumulate(traj, n_steps, beta0=0.0, beta1=1.0):
    r"""Raw STDP sums ``Σ_{t=1..n} Σ_b A1(t)ᵀ A2(t)`` per net (unscaled; DEEP multiplies by dt_W/(B·T2)).

    ``traj`` (S, T+1, B, N) recorded trajectories (``traj[:, 0]`` the free state), ``n_steps`` (S,) int
    (the steps actually run, ≤ T). Returns (S, N, N): entry [i, j] pairs presynaptic ``s_i(t)`` with
    postsynaptic ``β0 s_j(t) + β1 (s_j(t) - s_j(t-1))``.

    One BLAS GEMM of the stacked trajectory per net: the (t, b) sum is the inner dimension of the
    product. A Numba loop over (t, b, i, j) was 2-3x slower, and accumulating on the fly inside the
    relaxation loop about 1.5x slower, so no CPU kernel replaces it.
    """
    S, T1, B, N = traj.shape
    n_steps = np.asarray(n_steps, dtype=np.int64).reshape(-1)
    out = np.empty((S, N, N), dtype=traj.dtype)
    for net in range(S):
        n = int(n_steps[net])
        a1 = traj[net, 1:n + 1].reshape(-1, N)
        d = (traj[net, 1:n + 1] - traj[net, :n]).reshape(-1, N)
        a2 = d if (beta0 == 0 and beta1 == 1) else beta0 * a1 + beta1 * d
        np.matmul(a1.T, a2, out=out[net])
    return out
