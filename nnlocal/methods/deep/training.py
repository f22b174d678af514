r"""The training engine of DEEP and asymmetric EP: :class:`FitConfig` and :func:`fit_many`.

:func:`fit_many` trains S nets of one architecture (e.g. the seeds of a success-rate study) at
once: their relaxations run in one kernel call per epoch, the nets spread over the cores. Each
net draws from its own generator in the same order as a lone ``fit``, and each net's arithmetic
is independent of the others, so the results are bit-identical to training the nets one by one.

The maths of one epoch is :func:`_epoch` (about fifteen lines); the rest of this module is the
bookkeeping around it (argument checks, history, divergence).

Divergence. After every epoch each net is checked: its state (a non-finite value, or a relaxation
stopped by a non-finite residual) and every parameter, W and b (a non-finite value, or a magnitude
beyond :data:`WEIGHT_BOUND`). A diverged net is frozen with its last good parameters and reported
in its history (``diverged``, ``diverged_epoch``, ``diverged_what``); with ``on_diverge="raise"``
:class:`~nnlocal.DivergenceError` is raised instead.
"""
from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass

import numpy as np

from ..._checks import DivergenceError
from ... import kernels
from . import reference as R
from .tasks import labels

__all__ = ["FitConfig", "fit_many", "WEIGHT_BOUND"]

#: a weight (or bias) beyond this magnitude counts as divergence. The notebooks' nets stay below
#: |W| ≈ 4; an exploding learning rate (dt_W = 1e300) overshoots it in one epoch, long before inf.
WEIGHT_BOUND = 1e6


# ------------------------------------------------------------------------------------------------
# Argument checks (ValueError naming the class)
# ------------------------------------------------------------------------------------------------

def check_int(who: str, name: str, value, lo: int) -> int:
    """``value`` must be an integer (not a bool, not a float) ``>= lo``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < lo:
        raise ValueError(f"{who}: {name} must be an integer >= {lo}, got {value!r}")
    return int(value)


def check_real(who: str, name: str, value, lo: float | None = None, positive: bool = False,
               nonzero: bool = False) -> float:
    """``value`` must be a finite real number (``>= lo``, ``> 0`` or ``!= 0`` as asked)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and np.isfinite(value)
    want = "a finite number" + (f" >= {lo}" if lo is not None else "") + (" > 0" if positive else "") \
        + (" other than 0" if nonzero else "")
    if not ok or (lo is not None and value < lo) or (positive and value <= 0) or (nonzero and value == 0):
        raise ValueError(f"{who}: {name} must be {want}, got {value!r}")
    return float(value)


def check_bool(who: str, name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{who}: {name} must be True or False, got {value!r}")
    return bool(value)


# ------------------------------------------------------------------------------------------------
# The hyperparameters of a fit
# ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FitConfig:
    r"""The hyperparameters of one fit, with the notebooks' names (defaults: the DEEP notebook).

    epochs : full-batch epochs (one weight update each).
    T1, T2 : Euler steps of the free and of the nudged phase.
    dt, beta : Euler step and nudging strength β (AsymEP divides by β: it must not be 0).
    dt_W : learning rate (``None``: the class's notebook value, DEEP 100, AsymEP 1).
    beta0, beta1, sign : DEEP's STDP coefficients and the ``sign`` variant ΔW = dt_W sign(Σ…).
    stop : end a phase early once Σ (Δs/dt)² ≤ stop (0: never, as in every saved notebook run).
    regularized, reg_W : L1 step W -= reg_W sign(W) once per epoch.
    sparse, tol_W, temp : Boltzmann sparsification (:func:`~nnlocal.methods.deep.boltzmann_sparsify`).
    persistent_mask : keep sparsified edges at zero (extension; the notebook lets them regrow).
    on_diverge : ``"stop"`` (freeze the net, flag it in the history) or ``"raise"`` (DivergenceError).
    """

    epochs: int = 200
    T1: int = 1000
    T2: int = 1000
    dt: float = 0.05
    beta: float = 10.0
    dt_W: float | None = None
    beta0: float = 0.0
    beta1: float = 1.0
    sign: bool = False
    stop: float = 0.0
    regularized: bool = False
    reg_W: float = 1.5e-4
    sparse: bool = False
    tol_W: float = 0.01
    temp: float = 5.0
    persistent_mask: bool = False
    on_diverge: str = "stop"

    def checked(self, cls) -> "FitConfig":
        """A copy with every field validated and typed, and ``dt_W`` resolved for the net class ``cls``
        (ValueError naming ``cls`` for a bad value)."""
        who = f"{cls.__name__}.fit"
        if self.on_diverge not in ("stop", "raise"):
            raise ValueError(f"{who}: on_diverge must be 'stop' or 'raise', got {self.on_diverge!r}")
        ints = {k: check_int(who, k, getattr(self, k), 1) for k in ("epochs", "T1", "T2")}
        bools = {k: check_bool(who, k, getattr(self, k)) for k in ("sign", "regularized", "sparse", "persistent_mask")}
        reals = {"dt": check_real(who, "dt", self.dt, positive=True),
                 "beta": check_real(who, "beta", self.beta, nonzero=cls.divides_by_beta),
                 "dt_W": check_real(who, "dt_W", cls.default_dt_W if self.dt_W is None else self.dt_W, lo=0.0),
                 "beta0": check_real(who, "beta0", self.beta0), "beta1": check_real(who, "beta1", self.beta1),
                 "stop": check_real(who, "stop", self.stop, lo=0.0), "reg_W": check_real(who, "reg_W", self.reg_W, lo=0.0),
                 "tol_W": check_real(who, "tol_W", self.tol_W, lo=0.0),
                 "temp": check_real(who, "temp", self.temp, positive=True)}
        return dataclasses.replace(self, **ints, **bools, **reals)

    def hparams(self) -> dict:
        """The settings a net keeps after a fit (``net.hparams``; saved with it): all but ``on_diverge``."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "on_diverge"}


#: the field names of ``net.hparams`` and their types (for checkpoints)
HPARAM_TYPES = {f.name: {"int": int, "bool": bool}.get(f.type, float) for f in dataclasses.fields(FitConfig)
                if f.name != "on_diverge"}


# ------------------------------------------------------------------------------------------------
# One epoch: the maths
# ------------------------------------------------------------------------------------------------

def _epoch(K, net0, cfg: FitConfig, W, b, allowed, s, Yt):
    """One epoch of the learning rule for k nets at once: ``W`` (k, N, N), ``b`` (k, N), ``s``
    (k, B, N) initial states (inputs clamped). Returns the phases' results, the masked update ΔW
    and the new, constrained parameters (not yet checked for divergence, nor sparsified)."""
    n_x, n_out = net0.n_x, net0.n_out
    M, c = net0.operator(W, b, s[0, :, :n_x])                 # hoisted invariants of the dynamics
    raw = np.empty_like(W) if net0.uses_stdp else None        # DEEP: STDP sums of the nudged phase
    lo, hi = net0.bounds
    phases = K.relax_phases(M, c, s, n_x, n_out, cfg.T1, cfg.T2, cfg.dt, cfg.beta, Yt, lo, hi, cfg.stop, raw,
                            cfg.beta0, cfg.beta1)             # free phase, then nudged phase (s ends nudged)
    free = phases[0]
    dW, db = net0.learning_rule(W, free, s, raw, cfg)         # STDP, or asymmetric EP's contrast
    dW = dW * allowed
    W_new = W + dW
    if cfg.regularized:
        W_new = R.l1_step(W_new, cfg.reg_W)
    W_new *= allowed                                          # the graph constraint
    b_new = b.copy() if db is None else b + db
    b_new[:, :n_x] = 0                                        # no bias on the clamped inputs
    return phases, dW, W_new, b_new


# ------------------------------------------------------------------------------------------------
# The training loop: bookkeeping around _epoch
# ------------------------------------------------------------------------------------------------

_PER_EPOCH = ("mse", "error", "mse_nudged", "error_nudged", "dW_l1", "residual_free", "residual_nudged")
_PER_EPOCH_INT = ("steps_free", "steps_nudged", "edges")


def _check_nets(nets):
    net0 = nets[0]
    cls = type(net0)
    for n in nets[1:]:
        if type(n) is not cls or n.sizes != net0.sizes or n.layered != net0.layered or n.dtype != net0.dtype \
                or n.clip != net0.clip or getattr(n, "leak_abs", False) != getattr(net0, "leak_abs", False) \
                or n.device != net0.device:
            raise ValueError(f"{cls.__name__}.fit (fit_many): every net must have the same class, sizes, graph, "
                             "dtype, dynamics and device")
    return net0, cls


def _last(res, n):
    """(k,) residual at each net's last step (every net runs at least one step: T1, T2 >= 1)."""
    return res[np.arange(len(n)), n - 1]


def _divergence(state_ok, W_new, b_new):
    """Per net: None, or what diverged ("the state", "W" or "b", and why)."""
    w_max, b_max = np.abs(W_new).max(axis=(1, 2)), np.abs(b_new).max(axis=1)
    what = [None] * len(state_ok)
    for j in np.flatnonzero(~state_ok | ~(w_max <= WEIGHT_BOUND) | ~(b_max <= WEIGHT_BOUND)):
        name, m = ("W", w_max[j]) if not (w_max[j] <= WEIGHT_BOUND) else ("b", b_max[j])
        what[j] = ("the state (a non-finite value)" if not state_ok[j] else
                   f"{name} (a non-finite value)" if not np.isfinite(m) else
                   f"{name} (max |{name}| = {m:.3g} > WEIGHT_BOUND = {WEIGHT_BOUND:g})")
    return what


def fit_many(nets, X, Y, config: FitConfig | None = None, *, callback=None, **options) -> list[dict]:
    r"""Train ``nets`` (same class and architecture, each with its own generator) on the full batch.

    The hyperparameters are :class:`FitConfig`'s fields, given as keywords (``epochs=50, T1=500``)
    or as ``config`` (keywords override it). Every epoch, for all still-active nets at once: fresh
    U(0, 0.1) states; free phase (T1 steps); nudged phase (T2 steps, force β(y - s_out); DEEP
    accumulates its STDP sums during it); the learning update; L1; constrain; sparsify.
    ``callback(epoch, nets, histories)`` is called after every epoch.

    Returns one history dict per net: per-epoch arrays (NaN after a divergence) ``mse`` (free phase,
    ½·mean Σ (y - s)²), ``error`` (free-phase classification error), ``mse_nudged``, ``error_nudged``,
    ``dW_l1`` (‖ΔW‖₁ of the masked learning update), ``residual_free`` / ``residual_nudged`` (Σ(Δs/dt)²
    at the last step), ``steps_free`` / ``steps_nudged``, ``edges``; and ``trace_free`` /
    ``trace_nudged`` (residual per step of the last epoch), ``diverged``, ``diverged_epoch`` (-1 if
    none), ``diverged_what`` (what diverged, "" if none), ``epochs_run``, ``final_error``,
    ``first_solved_epoch`` (first epoch with error 0, or -1).
    """
    nets = list(nets)
    if not nets:
        return []
    net0, cls = _check_nets(nets)
    cfg = dataclasses.replace(config if config is not None else FitConfig(), **options).checked(cls)
    if callback is not None and not callable(callback):
        raise ValueError(f"{cls.__name__}.fit: callback must be callable, got {callback!r}")
    x = net0.inputs(X)
    B, N, n_x, n_out = x.shape[0], net0.N, net0.n_x, net0.n_out
    Yt = net0.targets(Y, B)
    S, E = len(nets), cfg.epochs
    K = kernels.implementation(__package__, net0.device)
    # the parameters of all nets, stacked; each net's W and b are views of its row
    W_all, b_all = np.stack([n.W for n in nets]), np.stack([n.b for n in nets])
    allowed_all = np.stack([n.allowed for n in nets])
    for i, n in enumerate(nets):
        n.W, n.b, n.hparams = W_all[i], b_all[i], cfg.hparams()
    # the history, one row per net (each net's dict holds views of its row)
    table = {k: np.full((S, E), np.nan) for k in _PER_EPOCH}
    table.update({k: np.zeros((S, E), np.int64) for k in _PER_EPOCH_INT})
    hists = [{**{k: v[i] for k, v in table.items()}, "trace_free": np.zeros(0), "trace_nudged": np.zeros(0),
              "diverged": False, "diverged_epoch": -1, "diverged_what": "", "epochs_run": 0,
              "final_error": float("nan"), "first_solved_epoch": -1} for i in range(S)]
    active = np.ones(S, dtype=bool)
    y_lab = labels(Yt, net0.one_hot)
    with np.errstate(over="ignore", invalid="ignore"):   # a diverging net is detected and reported below
        for epoch in range(E):
            idx = np.flatnonzero(active)
            if idx.size == 0:
                break
            everyone = idx.size == S
            s = np.empty((idx.size, B, N), dtype=net0.dtype)
            s[:, :, :n_x] = x
            for j, i in enumerate(idx):
                s[j, :, n_x:] = nets[i].rng.uniform(0.0, 0.1, (B, N - n_x))
            W, b, allowed = (W_all, b_all, allowed_all) if everyone else (W_all[idx], b_all[idx], allowed_all[idx])
            phases, dW, W_new, b_new = _epoch(K, net0, cfg, W, b, allowed, s, Yt)
            free, res_f, n_f, res_n, n_n = phases
            # checks and summaries, for all nets at once. The initial states are finite, so a state
            # is finite as long as every residual Σ(Δs/dt)² is: the last one of each phase says it.
            last_f, last_n = _last(res_f, n_f), _last(res_n, n_n)
            ok = np.isfinite(last_f) & np.isfinite(last_n)
            what = _divergence(ok, W_new, b_new)
            rec, e = idx[ok], epoch
            outs = np.stack([free[ok, :, -n_out:], s[ok, :, -n_out:]])          # (2, k_ok, B, n_out)
            wrong = labels(outs, net0.one_hot) != y_lab
            if wrong.ndim == 4:
                wrong = wrong.any(axis=3)
            mse = ((Yt - outs) ** 2).sum(axis=(2, 3)) * (0.5 / B)
            err = wrong.mean(axis=2)
            table["mse"][rec, e], table["mse_nudged"][rec, e] = mse
            table["error"][rec, e], table["error_nudged"][rec, e] = err
            table["residual_free"][rec, e], table["residual_nudged"][rec, e] = last_f[ok], last_n[ok]
            table["steps_free"][rec, e], table["steps_nudged"][rec, e] = n_f[ok], n_n[ok]
            good = np.array([w is None for w in what])
            upd = idx[good]                               # nets whose update is applied
            W_all[upd], b_all[upd] = W_new[good], b_new[good]
            table["dW_l1"][upd, e] = np.abs(dW[good]).sum(axis=(1, 2))
            for j, i in enumerate(idx):
                net, h = nets[i], hists[i]
                if ok[j]:
                    h["trace_free"], h["trace_nudged"] = res_f[j, : n_f[j]], res_n[j, : n_n[j]]
                if what[j] is not None:                   # frozen with its last good W and b
                    h["diverged"], h["diverged_epoch"], h["diverged_what"] = True, epoch, what[j]
                    active[i] = False
                    if cfg.on_diverge == "raise":
                        raise DivergenceError(f"{cls.__name__}.fit (net {i}): diverged at epoch {epoch}: {what[j]}")
                    continue
                if cfg.sparse:
                    W_all[i], pruned = R.boltzmann_sparsify(W_all[i], cfg.tol_W, cfg.temp, net.rng)
                    if cfg.persistent_mask:
                        net.pruned |= pruned & net.mask
                        allowed_all[i] = net.allowed
                h["epochs_run"] = epoch + 1
                if h["first_solved_epoch"] < 0 and h["error"][epoch] == 0:
                    h["first_solved_epoch"] = epoch
            table["edges"][upd, e] = np.count_nonzero(W_all[upd] * net0.mask, axis=(1, 2))
            if callback is not None:
                callback(epoch, nets, hists)
    for net, h in zip(nets, hists):
        done = h["epochs_run"]
        h["final_error"] = float(h["error"][done - 1]) if done else float("nan")
        net.history = h
    return hists
