r"""DEEP and asymmetric EP: the equations, in plain NumPy. Read this file first.

Network. N neurons, one state row per sample: ``s`` is ``(B, N)`` with values in [0, 1]. The first
``n_x`` units are clamped to the data (the last of them is the constant-1 bias neuron); the other
H = N - n_x units are free, and the last ``n_out`` of those are the outputs. ``W`` is ``(N, N)``
with **W[i, j] = the synapse from i to j** (row = from, column = to). Functions that train many
nets at once (the seeds of a success-rate study) take a leading net axis S: ``W`` (S, N, N),
``s`` (S, B, N).

Dynamics: one explicit Euler step of size dt on the free units, then the projection onto [lo, hi]
(= [0, 1] unless ``clip=False``)::

    DEEP      ds_j = Σ_i s_i W_ij - s_j Σ_k W_jk      (+ β (y_j - s_j) on the outputs)
    asym. EP  ds_j = Σ_i s_i W_ij + b_j - s_j         (+ β (y_j - s_j) on the outputs)
    s_j <- clip(s_j + dt ds_j, lo, hi)

(:func:`deep_field`, :func:`asym_ep_field`, :func:`euler_step`). Both are the *linear* drive
``ds_H = c + s_H M`` with two loop invariants hoisted out of the time loop (the inputs are
clamped, so neither changes during a relaxation):

* ``c = x W[:n_x, n_x:] (+ b_H)``, the drive from the inputs, ``(S, B, H)``;
* ``M = W[n_x:, n_x:] - diag(leak)``, the couplings among the free units with the leak on the
  diagonal, ``(S, H, H)`` (DEEP: ``leak_j = Σ_k W_jk``, or ``Σ_k |W_jk|`` with ``leak_abs``;
  asymmetric EP: ``leak_j = 1``).

:func:`linear_relax` runs that loop for S nets at once; :func:`relax_phases` runs one epoch's two
phases (free, then nudged from the free state); :func:`deep_relax` and :func:`asym_ep_relax` are
the same dynamics in the notebooks' literal form, recomputed from ``W`` every step.

Learning, once per epoch, full batch (B samples, nudged phase s(0) = free state … s(T2)):

* DEEP's STDP rule (:func:`stdp_accumulate`, :func:`stdp_update`)::

      A1(t) = s(t),   A2(t) = β0 s(t) + β1 (s(t) - s(t-1))
      ΔW = dt_W / (B T2) · Σ_{t=1..T2} Σ_b A1(t)ᵀ A2(t)       (sign=True: ΔW = dt_W sign(Σ…))

* asymmetric EP (:func:`asym_ep_update`): ΔW = dt_W/(β B) · s_freeᵀ (s^β - s_free),
  Δb = dt_W/(β B) · Σ_b (s^β - s_free);
* then L1 (:func:`l1_step`, W ← W - reg_W sign(W), not scaled by dt_W), the graph constraint
  (W ← W ⊙ mask, :func:`complete_mask`, :func:`layered_mask`) and the stochastic "Boltzmann"
  pruning (:func:`boltzmann_sparsify`).

``cpu.py`` (Numba) and ``cuda.py`` (``numba.cuda``) hold twins of these functions with the same
signatures; :mod:`nnlocal.kernels` chooses one.
"""
from __future__ import annotations

import numpy as np

from ..._rng import get_rng

__all__ = ["complete_mask", "layered_mask", "deep_field", "asym_ep_field", "euler_step", "deep_relax",
           "asym_ep_relax", "deep_linear_operator", "asym_ep_linear_operator", "linear_relax", "relax_phases",
           "operator_relax", "stdp_accumulate", "stdp_update", "asym_ep_update", "l1_step", "boltzmann_sparsify"]


# ------------------------------------------------------------------------------------------------
# The graph: which edges exist
# ------------------------------------------------------------------------------------------------

def complete_mask(n_x: int, N: int) -> np.ndarray:
    """Allowed edges of the complete graph: (N, N) bool, no self-loops, nothing into the n_x inputs.

    Every other directed edge exists, hidden↔hidden, output→hidden and output→output included
    (48 edges for 3-5-1)."""
    m = np.ones((N, N), dtype=bool)
    m[:, :n_x] = False
    np.fill_diagonal(m, False)
    return m


def layered_mask(sizes) -> np.ndarray:
    """Allowed edges of the layered graph. ``sizes`` = [n_x (data inputs + bias), h_1, …, n_out].

    Data inputs → first hidden layer; the bias neuron (last input) → every non-input layer; between
    non-input layers only adjacent forward (l → l+1) and adjacent feedback (l+1 → l) edges.
    """
    sizes = [int(n) for n in sizes]
    off = np.concatenate([[0], np.cumsum(sizes)])
    N = int(off[-1])
    m = np.zeros((N, N), dtype=bool)
    blk = lambda a: slice(off[a], off[a + 1])  # noqa: E731
    m[blk(0), blk(1)] = True                   # inputs (incl. bias) -> first layer
    m[off[1] - 1, off[1]:] = True              # bias -> every non-input unit
    for a in range(1, len(sizes) - 1):
        m[blk(a), blk(a + 1)] = True           # forward, adjacent
        m[blk(a + 1), blk(a)] = True           # feedback, adjacent
    return m


# ------------------------------------------------------------------------------------------------
# The dynamics, literally: the field and one Euler step
# ------------------------------------------------------------------------------------------------

def deep_field(W, s, leak_abs=False):
    """DEEP's ds/dt for every unit: ``s W - s ⊙ (W 1)ᵀ``. ``W`` (N, N), ``s`` (B, N) -> (B, N).

    ``leak_abs=True``: the leak is Σ_k |W_jk| (the notebook's commented-out variant)."""
    leak = np.abs(W).sum(axis=1) if leak_abs else W.sum(axis=1)   # (N,) total outgoing weight
    return s @ W - s * leak


def asym_ep_field(W, b, s):
    """Asymmetric EP's ds/dt: ``s W + b - s``. ``W`` (N, N), ``b`` (N,), ``s`` (B, N) -> (B, N)."""
    return s @ W + b - s


def euler_step(s, ds, n_x, n_out, dt, beta=0.0, target=None, lo=0.0, hi=1.0):
    """One Euler step on the free units of ``s`` (B, N), **in place**; returns the residual.

    ``ds`` (B, N) the field; with ``beta != 0`` the outputs get ``+ beta (target - s_out)``
    (``target`` (B, n_out)). ``s_H <- clip(s_H + dt ds_H, lo, hi)``; the residual is
    ``Σ_{b, j} ((s_new - s_old) / dt)²`` (the projected velocity, 0 on a saturated unit)."""
    if beta != 0:
        ds = ds.copy()
        ds[:, -n_out:] += beta * (target - s[:, -n_out:])
    new = np.clip(s[:, n_x:] + dt * ds[:, n_x:], lo, hi)
    residual = np.sum(((new - s[:, n_x:]) / dt) ** 2)
    s[:, n_x:] = new
    return residual


def _literal_relax(field, s, n_x, n_out, steps, dt, beta, target, clip, stop, traj):
    """``steps`` Euler steps of ``field(s)`` on one net, early stop and NaN guard as linear_relax."""
    lo, hi = (0.0, 1.0) if clip else (-np.inf, np.inf)
    residuals = np.full(steps, np.nan, dtype=s.dtype)
    n_run = 0
    if traj is not None:
        traj[0] = s
    for t in range(steps):
        residuals[t] = euler_step(s, field(s), n_x, n_out, dt, beta, target, lo, hi)
        if traj is not None:
            traj[t + 1] = s
        n_run = t + 1
        if not np.isfinite(residuals[t]) or (stop > 0 and residuals[t] <= stop):
            break
    return residuals, n_run


def _each_net(relax_one, s, traj):
    """Run ``relax_one(net, s_net, traj_net)`` on one net (s (B, N)) or on each of S nets (s (S, B, N))."""
    if s.ndim == 2:
        return relax_one(None, s, traj)
    out = [relax_one(k, s[k], None if traj is None else traj[k]) for k in range(s.shape[0])]
    return np.stack([r for r, _ in out]), np.array([n for _, n in out], dtype=np.int64)


def deep_relax(W, s, n_x, n_out, steps, dt, beta=0.0, target=None, leak_abs=False, clip=True, stop=0.0,
               traj=None):
    """DEEP's dynamics in the notebook's literal form, ``ds = s W - s ⊙ (W 1)ᵀ`` recomputed every step.

    ``W`` (N, N) and ``s`` (B, N) updated in place (or a stack: (S, N, N), (S, B, N)); ``traj``
    optional (steps + 1, B, N) [(S, steps + 1, B, N)]. Returns ``(residuals (steps,), n_run)``
    [(S, steps), (S,)], as :func:`linear_relax`."""
    return _each_net(lambda k, s1, tr: _literal_relax(
        lambda x: deep_field(W if k is None else W[k], x, leak_abs), s1, n_x, n_out, steps, dt, beta, target,
        clip, stop, tr), s, traj)


def asym_ep_relax(W, b, s, n_x, n_out, steps, dt, beta=0.0, target=None, clip=True, stop=0.0, traj=None):
    """Asymmetric EP's dynamics, literal ``ds = s W + b - s`` every step (shapes as :func:`deep_relax`)."""
    return _each_net(lambda k, s1, tr: _literal_relax(
        lambda x: asym_ep_field(W if k is None else W[k], b if k is None else b[k], x), s1, n_x, n_out, steps, dt,
        beta, target, clip, stop, tr), s, traj)


# ------------------------------------------------------------------------------------------------
# The same dynamics with the loop invariants hoisted: ds_H = c + s_H M
# ------------------------------------------------------------------------------------------------

def deep_linear_operator(W, x, leak_abs=False):
    r"""Hoisted invariants of DEEP's dynamics for :func:`linear_relax`.

    ``W`` (S, N, N) or (N, N); ``x`` (B, n_x) clamped inputs (bias included). Returns
    ``M = W_HH - diag(Σ_k W_jk)`` (or ``Σ_k |W_jk|`` with ``leak_abs``) of shape (S, H, H) and
    ``c = x W_XH`` of shape (S, B, H).
    """
    W = W if W.ndim == 3 else W[None]
    n_x = x.shape[1]
    leak = np.abs(W).sum(axis=2) if leak_abs else W.sum(axis=2)  # (S, N): total outgoing weight
    M = W[:, n_x:, n_x:].copy()
    idx = np.arange(M.shape[1])
    M[:, idx, idx] -= leak[:, n_x:]
    c = np.matmul(x[None].astype(W.dtype), W[:, :n_x, n_x:])
    return M, c


def asym_ep_linear_operator(W, b, x):
    r"""Hoisted invariants of the asymmetric-EP dynamics: ``M = W_HH - I``, ``c = x W_XH + b_H``.

    ``W`` (S, N, N) or (N, N), ``b`` (S, N) or (N,), ``x`` (B, n_x).
    """
    W = W if W.ndim == 3 else W[None]
    b = b if b.ndim == 2 else b[None]
    n_x = x.shape[1]
    M = W[:, n_x:, n_x:].copy()
    idx = np.arange(M.shape[1])
    M[:, idx, idx] -= 1
    c = np.matmul(x[None].astype(W.dtype), W[:, :n_x, n_x:]) + b[:, None, n_x:]
    return M, c


def linear_relax(M, c, s, n_x, n_out, steps, dt, beta=0.0, target=None, lo=0.0, hi=1.0, stop=0.0,
                 traj=None, stdp=None, beta0=0.0, beta1=1.0):
    r"""Euler relaxation of S independent directed nets with a linear drive, clipped to [lo, hi].

    Per step, for every net and sample, on the H free units (columns ``n_x:`` of ``s``)::

        ds = c + s_H M  (+ beta (target - s_out) on the last n_out units)
        s_H <- clip(s_H + dt ds, lo, hi)        (synchronous: ds uses the old state)

    Parameters
    ----------
    M : (S, H, H) couplings among the free units, row = from, column = to, leak on the diagonal.
    c : (S, B, H) constant drive (from the clamped inputs, plus any bias).
    s : (S, B, N) state, updated **in place** on columns ``n_x:``; columns ``:n_x`` are read only.
    n_x, n_out : number of clamped units (first columns, bias included) and of output units (last).
    steps : number of Euler steps.
    dt, beta : step size and nudging strength (``beta = 0``: free phase).
    target : (B, n_out) nudging target (ignored when ``beta == 0``).
    lo, hi : clip bounds (``-inf, inf`` for the unclipped linear dynamics).
    stop : early stop: a net stops once its residual is ``<= stop`` (``0`` disables).
    traj : optional (S, steps + 1, B, N) output: ``traj[:, 0]`` the initial state, ``traj[:, t]`` the
        state after step t (left untouched after an early stop or a divergence).
    stdp, beta0, beta1 : optional (S, N, N) output, overwritten with DEEP's raw STDP sums of this
        relaxation, ``Σ_{t=1..n_run} Σ_b s_i(t) (β0 s_j(t) + β1 (s_j(t) - s_j(t-1)))`` into the free
        units j (columns ``n_x:``; the input columns are 0: no edge enters an input).

    Returns
    -------
    residuals : (S, steps), ``Σ_{b, j} ((s_new - s_old) / dt)²`` per step (the projected velocity;
        NaN after a net stopped early or diverged).
    n_run : (S,) int64 steps each net ran. A net whose residual became NaN/inf stops there.
    """
    S, B, N = s.shape
    residuals = np.full((S, steps), np.nan, dtype=s.dtype)
    n_run = np.zeros(S, dtype=np.int64)
    running = np.ones(S, dtype=bool)          # nets not yet stopped (early stop or divergence)
    if traj is not None:
        traj[:, 0] = s
    if stdp is not None:
        stdp[...] = 0
    with np.errstate(over="ignore", invalid="ignore"):   # a diverging net is reported by its residual
        for t in range(steps):
            h = s[:, :, n_x:]                                           # (S, B, H) free units
            ds = c + h @ M
            if beta != 0:
                ds[:, :, -n_out:] += beta * (target - h[:, :, -n_out:])
            new = np.clip(h + dt * ds, lo, hi)
            res = np.sum(((new - h) / dt) ** 2, axis=(1, 2))             # (S,)
            a2 = None if stdp is None else beta0 * new + beta1 * (new - h)   # postsynaptic A2(t)
            r = running
            s[r, :, n_x:] = new[r]
            residuals[r, t] = res[r]
            n_run[r] = t + 1
            if traj is not None:
                traj[r, t + 1] = s[r]
            if stdp is not None:                                        # A1(t)ᵀ A2(t), summed over b
                stdp[r, :, n_x:] += np.matmul(s[r].transpose(0, 2, 1), a2[r])
            running = r & np.isfinite(res) & ~((stop > 0) & (res <= stop))
            if not running.any():
                break
    return residuals, n_run


def relax_phases(M, c, s, n_x, n_out, T1, T2, dt, beta, target, lo=0.0, hi=1.0, stop=0.0, stdp=None,
                 beta0=0.0, beta1=1.0):
    r"""One epoch's two phases for S nets: the free phase (T1 steps from ``s``), then the nudged
    phase (T2 steps from the free state, force ``beta (target - s_out)``).

    Arguments as :func:`linear_relax`; ``s`` (S, B, N) ends at the nudged state; ``stdp`` (optional
    (S, N, N)) receives the raw STDP sums of the nudged phase. Returns ``(free, res_free, n_free,
    res_nudged, n_nudged)``: a copy of the free state (S, B, N) and each phase's residuals and
    step counts.
    """
    res_f, n_f = linear_relax(M, c, s, n_x, n_out, T1, dt, 0.0, None, lo, hi, stop)
    free = s.copy()
    res_n, n_n = linear_relax(M, c, s, n_x, n_out, T2, dt, beta, target, lo, hi, stop, None, stdp, beta0, beta1)
    return free, res_f, n_f, res_n, n_n


def operator_relax(relax_fn, build_operator, s, n_x, n_out, steps, dt, beta, target, clip, stop, traj):
    """What ``cpu.deep_relax`` / ``cuda.deep_relax`` (and the asym-EP twins) do: build the hoisted
    operator ``M, c = build_operator(clamped inputs)`` and run ``relax_fn`` (that module's
    :func:`linear_relax`) on one net (``s`` (B, N)) or a stack of nets (``s`` (S, B, N))."""
    single = s.ndim == 2
    s3 = s[None] if single else s
    traj4 = None if traj is None else (traj[None] if single else traj)
    M, c = build_operator(s3[0, :, :n_x])
    lo, hi = (0.0, 1.0) if clip else (-np.inf, np.inf)
    res, n_run = relax_fn(M, c, s3, n_x, n_out, steps, dt, beta, target, lo, hi, stop, traj4)
    return (res[0], int(n_run[0])) if single else (res, n_run)


# ------------------------------------------------------------------------------------------------
# Learning rules
# ------------------------------------------------------------------------------------------------

def stdp_accumulate(traj, n_steps, beta0=0.0, beta1=1.0):
    r"""DEEP's raw STDP sums from recorded trajectories: ``Σ_{t=1..n} Σ_b A1(t)ᵀ A2(t)`` per net.

    ``traj`` (S, T+1, B, N) (``traj[:, 0]`` the free state), ``n_steps`` (S,) int (the steps run,
    ≤ T). Returns (S, N, N): entry [i, j] pairs presynaptic ``s_i(t)`` with postsynaptic
    ``β0 s_j(t) + β1 (s_j(t) - s_j(t-1))``. One GEMM of the stacked trajectory per net (the
    (t, b) sum is its inner dimension). The fit accumulates the same sums during the nudged
    phase instead (``linear_relax(..., stdp=...)``), without storing the trajectory.
    """
    S, T1, B, N = traj.shape
    n_steps = np.asarray(n_steps, dtype=np.int64).reshape(-1)
    out = np.empty((S, N, N), dtype=traj.dtype)
    for net in range(S):
        n = int(n_steps[net])
        a1 = traj[net, 1:n + 1].reshape(-1, N)
        a2 = beta0 * a1 + beta1 * (traj[net, 1:n + 1] - traj[net, :n]).reshape(-1, N)
        np.matmul(a1.T, a2, out=out[net])
    return out


def stdp_update(raw, B, T2, dt_W, sign=False):
    """DEEP's weight change from the raw sums (S, N, N): ``dt_W / (B T2) · raw``, or
    ``dt_W · sign(raw)`` with ``sign=True``."""
    return dt_W * np.sign(raw) if sign else (dt_W / (B * T2)) * raw


def asym_ep_update(free, nudged, beta, dt_W):
    """Asymmetric EP's contrast: ``(ΔW (S, N, N), Δb (S, N))`` from the free and nudged states (S, B, N),
    ``ΔW = dt_W/(β B) · s_freeᵀ (s^β - s_free)``, ``Δb = dt_W/(β B) · Σ_b (s^β - s_free)``."""
    scale = dt_W / (beta * free.shape[1])
    diff = nudged - free
    return scale * np.matmul(free.transpose(0, 2, 1), diff), scale * diff.sum(axis=1)


def l1_step(W, reg_W):
    """L1 shrinkage, once per epoch, not scaled by dt_W (as in the notebook): ``W - reg_W sign(W)``."""
    return W - reg_W * np.sign(W)


def boltzmann_sparsify(W, tol_W, temp, rng):
    r"""The notebooks' stochastic "Boltzmann" pruning (faithful). Returns ``(W_pruned, pruned)``.

    ``p_ij = exp(-|W_ij|/temp) / Σ_{i'} exp(-|W_i'j|/temp)`` - normalised over **all N rows** of
    column j, structurally forbidden edges included - then ``p_ij = 0`` where ``|W_ij| > tol_W``, and
    each entry is zeroed where ``p_ij > U(0, 1)`` (one uniform draw per entry, N² draws from
    ``rng``). ``pruned`` (N, N) bool marks the zeroed entries that were non-zero.
    """
    rng = get_rng(rng)
    a = np.exp(-np.abs(W) / temp)
    p = a / a.sum(axis=0, keepdims=True)
    p[np.abs(W) > tol_W] = 0.0
    cut = p > rng.uniform(0.0, 1.0, size=W.shape)
    pruned = cut & (W != 0)
    W = np.where(cut, 0.0, W).astype(W.dtype, copy=False)
    return W, pruned
