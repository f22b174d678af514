r"""The two directed models, :class:`DEEPNet` and :class:`AsymEPNet`, one hop from the maths.

A net holds its graph (``mask``, ``pruned``), its parameters (``W``, and ``b`` for asymmetric EP)
and the settings of its last fit (``hparams``); it validates what it is given and calls the
equations of :mod:`~nnlocal.methods.deep.reference` through the implementation that
:mod:`nnlocal.kernels` selects (``reference``, ``cpu`` or ``cuda``). Training is
:func:`~nnlocal.methods.deep.training.fit_many`.

Checkpoints: ``state_dict()`` holds ``W``, ``b``, ``mask``, ``pruned``, the architecture and
dynamics flags (``sizes``, ``layered``, ``one_hot``, ``clip``, and ``leak_abs`` for DEEP, checked on
load) and ``hparams.<name>`` for the settings of the last fit; ``nnlocal.save`` / ``nnlocal.load``
write and read it atomically, without pickle. The random generator and the history of the last fit
are not part of it (pass ``rng`` to continue a run reproducibly).
"""
from __future__ import annotations

import warnings
from collections import OrderedDict

import numpy as np

from ..._checks import check_finite_input
from ..._rng import get_rng
from ... import kernels
from ...kernels import check_device
from .diagnostics import asym_ep_jacobian, deep_jacobian, gershgorin
from .reference import (asym_ep_linear_operator, asym_ep_update, complete_mask, deep_linear_operator, layered_mask,
                        stdp_update)
from .tasks import labels
from .training import HPARAM_TYPES, check_int, check_real, fit_many

__all__ = ["DEEPNet", "AsymEPNet"]


class _DirectedNet:
    """What DEEP and asymmetric EP share: graph, state, validation, relaxation, checkpoints."""

    kind = ""
    uses_stdp = False          # DEEP's learning rule needs the STDP sums of the nudged phase
    divides_by_beta = False    # asymmetric EP's update divides by beta
    default_dt_W = 1.0
    _flags = ("layered", "one_hot", "clip")

    def __init__(self, n_in: int, hidden, n_out: int, layered: bool = False, one_hot: bool = False,
                 clip: bool = True, init_std: float = 0.05, rng=None, dtype=np.float64, device: str = "cpu"):
        who = type(self).__name__
        self.device = check_device(device, who)
        self.n_in = check_int(who, "n_in", n_in, 1)
        hidden = [hidden] if np.ndim(hidden) == 0 else list(hidden)
        self.hidden = [check_int(who, "hidden", h, 1) for h in hidden]
        self.n_out = check_int(who, "n_out", n_out, 1)
        try:
            self.dtype = np.dtype(dtype)
        except TypeError:
            self.dtype = None
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"{who}: dtype must be float32 or float64, got {dtype!r}")
        init_std = check_real(who, "init_std", init_std, lo=0.0)
        self.n_x = self.n_in + 1                                   # data inputs + the bias neuron
        self.sizes = [self.n_x] + self.hidden + [self.n_out]
        self.N = int(sum(self.sizes))
        self.n_free = self.N - self.n_x
        self.layered, self.one_hot, self.clip = bool(layered), bool(one_hot), bool(clip)
        self.rng = get_rng(rng)
        self.mask = layered_mask(self.sizes) if layered else complete_mask(self.n_x, self.N)
        self.pruned = np.zeros((self.N, self.N), dtype=bool)       # persistent_mask extension
        self.W = (self.rng.standard_normal((self.N, self.N)) * init_std).astype(self.dtype)
        self.b = np.zeros(self.N, dtype=self.dtype)                 # asymmetric EP only (stays 0 for DEEP)
        self.constrain_()
        self.history: dict | None = None
        self.hparams: dict = {}

    # ---- graph ------------------------------------------------------------------------------
    def __repr__(self) -> str:
        arch = "-".join(str(n) for n in self.sizes)
        return (f"{type(self).__name__}({arch}, graph={'layered' if self.layered else 'complete'}, "
                f"one_hot={self.one_hot}, edges={self.edges}/{int(self.mask.sum())})")

    @property
    def allowed(self) -> np.ndarray:
        """(N, N) bool: edges the constraints (and a persistent pruning mask) allow."""
        return self.mask & ~self.pruned

    @property
    def edges(self) -> int:
        """Number of non-zero allowed edges."""
        return int(np.count_nonzero(self.W[self.mask]))

    @property
    def bounds(self) -> tuple[float, float]:
        """The clip bounds of the state: [0, 1], or unbounded with ``clip=False``."""
        return (0.0, 1.0) if self.clip else (-np.inf, np.inf)

    def constrain_(self) -> "_DirectedNet":
        """Zero every forbidden entry of W (and b on the inputs), in place."""
        self.W *= self.allowed
        self.b[: self.n_x] = 0
        return self

    # ---- data and state ---------------------------------------------------------------------
    def _real(self, a, name: str) -> np.ndarray:
        """``a`` as an array of the net's dtype: real (bool, int or float) and finite, else ValueError."""
        a = np.asarray(a)
        if a.dtype.kind not in "biuf":
            raise ValueError(f"{type(self).__name__}: expected a real-valued {name} (bool, int or float), "
                             f"got dtype {a.dtype}")
        a = a.astype(self.dtype, copy=False)
        check_finite_input(self, a, name)
        return a

    def inputs(self, X) -> np.ndarray:
        """(B, n_in) data -> (B, n_x) clamped inputs with the constant-1 bias neuron appended last.

        Data that already carries the bias column last ((B, n_in + 1) with a last column of ones, as
        :func:`nnlocal.data.logic_gate` returns it) is taken as is."""
        X = self._real(X, "input")
        if X.ndim == 1:
            X = X[:, None] if self.n_in == 1 else X[None]
        if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] not in (self.n_in, self.n_x) \
                or (X.shape[1] == self.n_x and not np.all(X[:, -1] == 1)):
            raise ValueError(f"{type(self).__name__}: expected inputs of shape (B, {self.n_in}) with B >= 1 "
                             f"(without the bias column, or with a last column of ones), got {X.shape}")
        if X.shape[1] == self.n_x:
            return X.copy()
        return np.concatenate([X, np.ones((X.shape[0], 1), dtype=self.dtype)], axis=1)

    def targets(self, Y, B: int) -> np.ndarray:
        """(B, n_out) targets: given as such, as (B,) values for one output, or as (B,) integer class
        labels in [0, n_out) for several outputs (one-hot encoded here)."""
        who = type(self).__name__
        Y = np.asarray(Y)
        if Y.dtype.kind not in "biuf":
            raise ValueError(f"{who}: expected real-valued targets (bool, int or float), got dtype {Y.dtype}")
        if Y.ndim == 1 and self.n_out > 1:
            bad = ~np.isfinite(Y) | (Y != np.round(Y)) | (Y < 0) | (Y >= self.n_out) if Y.dtype.kind == "f" \
                else (Y < 0) | (Y >= self.n_out)
            if bad.any():
                raise ValueError(f"{who}: expected integer class labels in [0, {self.n_out}) for {self.n_out} "
                                 f"outputs, got {Y[np.argmax(bad)]!r}")
            Y = np.eye(self.n_out, dtype=self.dtype)[Y.astype(np.int64)]
        elif Y.ndim == 1:
            Y = Y[:, None]
        Y = self._real(Y, "target")
        if Y.shape != (B, self.n_out):
            raise ValueError(f"{who}: expected targets of shape ({B}, {self.n_out}), got {Y.shape}")
        return Y

    def init_state(self, X, rng=None) -> np.ndarray:
        """(B, N) state: inputs clamped to ``X`` (+ bias), free units ~ U(0, 0.1)."""
        x = self.inputs(X)
        s = np.empty((x.shape[0], self.N), dtype=self.dtype)
        s[:, : self.n_x] = x
        s[:, self.n_x:] = get_rng(self.rng if rng is None else rng).uniform(0.0, 0.1, (x.shape[0], self.n_free))
        return s

    # ---- the dynamics -----------------------------------------------------------------------
    def operator(self, W, b, x):
        """The hoisted invariants ``(M, c)`` of the dynamics for stacked parameters ``W`` (S, N, N),
        ``b`` (S, N) and clamped inputs ``x`` (B, n_x) (:mod:`~nnlocal.methods.deep.reference`)."""
        raise NotImplementedError

    def learning_rule(self, W, free, nudged, raw, cfg):
        """``(ΔW (S, N, N), Δb (S, N) or None)`` for stacked nets, before masking; ``raw`` holds the
        STDP sums of the nudged phase (DEEP) or None."""
        raise NotImplementedError

    def relax(self, x, steps: int = 1000, dt: float = 0.05, beta: float = 0.0, target=None, state=None,
              stop: float = 0.0, rng=None, info: bool = False, trajectory: bool = False):
        """Relax the network with inputs ``x`` (B, n_in) for ``steps`` Euler steps.

        ``beta != 0`` with ``target`` (B, n_out) is the nudged phase. ``state`` (B, N) continues from a
        given state (its input columns are re-clamped to ``x``); otherwise free units start at U(0, 0.1)
        drawn from ``rng`` (default: the net's generator). Returns the final state (B, N), or
        ``(state, info)`` with ``info = {"residuals": (steps,), "steps": int, "diverged": bool,
        "trajectory": (T+1, B, N) | None}``.

        A relaxation whose residual becomes non-finite (the state overflowed: possible with
        ``clip=False`` or non-finite weights) stops there and warns (RuntimeWarning); ``info``
        flags it as ``diverged``.
        """
        who = f"{type(self).__name__}.relax"
        steps = check_int(who, "steps", steps, 0)
        dt = check_real(who, "dt", dt, positive=True)
        beta = check_real(who, "beta", beta)
        stop = check_real(who, "stop", stop, lo=0.0)
        if state is None:
            s = self.init_state(x, rng)
        else:
            xs = self.inputs(x)
            s = np.array(self._real(state, "state"), copy=True, order="C")
            if s.shape != (xs.shape[0], self.N):
                raise ValueError(f"{type(self).__name__}: expected a state of shape ({xs.shape[0]}, {self.N}), "
                                 f"got {s.shape}")
            s[:, : self.n_x] = xs
        B = s.shape[0]
        tgt = None if beta == 0 else self.targets(target, B)
        traj = np.empty((1, steps + 1, B, self.N), dtype=self.dtype) if trajectory else None
        K = kernels.implementation(__package__, self.device)
        with np.errstate(over="ignore", invalid="ignore"):
            M, c = self.operator(self.W[None], self.b[None], s[:, : self.n_x])
            lo, hi = self.bounds
            res, n = K.linear_relax(M, c, s[None], self.n_x, self.n_out, steps, dt, beta, tgt, lo, hi, stop, traj)
        n = int(n[0])                              # (s was updated in place through the view s[None])
        diverged = n > 0 and not np.isfinite(res[0, n - 1])
        if diverged:
            warnings.warn(f"{who}: the state diverged at step {n} of {steps} (its residual became non-finite; "
                          f"clip={self.clip}); the relaxation stopped there", RuntimeWarning, stacklevel=2)
        if not info:
            return s
        return s, {"residuals": res[0], "steps": n, "diverged": diverged,
                   "trajectory": None if traj is None else traj[0, : n + 1]}

    def output(self, X, T: int | None = None, dt: float | None = None, rng=None) -> np.ndarray:
        """Free-phase outputs (B, n_out) after ``T`` steps (default: the T1 and dt of the last fit, or 1000/0.05)."""
        T = self.hparams.get("T1", 1000) if T is None else T
        dt = self.hparams.get("dt", 0.05) if dt is None else dt
        return self.relax(X, T, dt, rng=rng)[:, -self.n_out:]

    def predict(self, X, T: int | None = None, dt: float | None = None, rng=None) -> np.ndarray:
        """Labels from a fresh free phase: argmax (one-hot) or ``output ≥ 0.5`` (shape (B,) for one output)."""
        return labels(self.output(X, T, dt, rng), self.one_hot)

    # ---- diagnostics --------------------------------------------------------------------------
    def jacobian(self) -> np.ndarray:
        raise NotImplementedError

    def gershgorin(self) -> dict:
        """Gershgorin diagnostics (:func:`~nnlocal.methods.deep.gershgorin`) of the linearised free
        dynamics on the free units."""
        return gershgorin(self.jacobian())

    # ---- learning -----------------------------------------------------------------------------
    def fit(self, X, Y, epochs: int = 200, T1: int = 1000, T2: int = 1000, dt: float = 0.05, beta: float = 10.0,
            dt_W: float | None = None, **kwargs) -> dict:
        """Train on the full batch (one update per epoch); returns the history (see :func:`fit_many`)."""
        return fit_many([self], X, Y, epochs=epochs, T1=T1, T2=T2, dt=dt, beta=beta, dt_W=dt_W, **kwargs)[0]

    # ---- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Name -> copy of every piece of state: ``W``, ``b``, ``mask``, ``pruned``, the architecture
        (``sizes``) and dynamics flags, and ``hparams.<name>`` for the settings of the last fit."""
        out = OrderedDict(W=self.W.copy(), b=self.b.copy(), mask=self.mask.copy(), pruned=self.pruned.copy(),
                          sizes=np.array(self.sizes, dtype=np.int64))
        out.update((f, np.array(getattr(self, f))) for f in self._flags)
        out.update((f"hparams.{k}", np.array(v)) for k, v in self.hparams.items())
        return out

    def load_state_dict(self, state: dict, strict: bool = True) -> "_DirectedNet":
        """Restore a :meth:`state_dict` (in place). Everything is checked before anything changes.

        With ``strict=True`` a missing or unexpected key raises ``KeyError``. A checkpoint of another
        architecture or dynamics (``sizes``, flags, ``mask``), a wrong shape or dtype, or non-finite
        parameters raise ``ValueError`` naming the class.
        """
        who = f"{type(self).__name__}.load_state_dict"
        own = self.state_dict()
        known = lambda k: k in own or (k.startswith("hparams.") and k[8:] in HPARAM_TYPES)  # noqa: E731
        if strict:
            missing = [k for k in own if not k.startswith("hparams.") and k not in state]
            if missing:
                raise KeyError(f"{who}: missing key '{missing[0]}' ({len(missing)} missing in all)")
        unexpected = [k for k in state if not known(k)]
        if strict and unexpected:
            raise KeyError(f"{who}: unexpected key '{unexpected[0]}' ({len(unexpected)} unexpected in all)")
        for k in ("sizes",) + self._flags:
            if k in state and not np.array_equal(np.asarray(state[k]), own[k]):
                raise ValueError(f"{who}: the checkpoint's {k} is {np.asarray(state[k]).tolist()}, this net's is "
                                 f"{own[k].tolist()} (build the net with the checkpoint's architecture and dynamics)")
        new = {}
        for k in ("W", "b", "mask", "pruned"):
            if k in state:
                v = np.asarray(state[k])
                if v.shape != own[k].shape or v.dtype.kind not in "biuf":
                    raise ValueError(f"{who}: '{k}' has shape {v.shape} and dtype {v.dtype} in the checkpoint, "
                                     f"expected {own[k].shape} and a numeric dtype")
                new[k] = v
        if "mask" in new and not np.array_equal(new["mask"], own["mask"]):
            raise ValueError(f"{who}: the checkpoint's mask (allowed edges) differs from this net's graph")
        for k in ("W", "b"):
            if k in new and not np.all(np.isfinite(new[k])):
                raise ValueError(f"{who}: '{k}' holds NaN or inf in the checkpoint")
        hp = {k[8:]: HPARAM_TYPES[k[8:]](np.asarray(v).item()) for k, v in state.items()
              if k.startswith("hparams.") and k[8:] in HPARAM_TYPES}
        for k in ("W", "b"):
            if k in new:
                setattr(self, k, new[k].astype(self.dtype, copy=True))
        if "pruned" in new:
            self.pruned = new["pruned"].astype(bool, copy=True)
        if hp or strict:
            self.hparams = hp
        return self


class DEEPNet(_DirectedNet):
    r"""DEEP: directed dynamics ds = sW - s ⊙ (W1), STDP learning (see the package docstring).

    Parameters
    ----------
    n_in : number of data inputs (the constant-1 bias neuron is appended as the last input).
    hidden : int or list of hidden-layer sizes (with ``layered=False`` only their sum matters).
    n_out : number of output units (2 with ``one_hot=True`` for the gates).
    layered : the layered constraint instead of the complete graph.
    one_hot : targets are one-hot and predictions an argmax (the ``_oh`` notebook).
    leak_abs : leak Σ_k |W_jk| instead of Σ_k W_jk (the notebook's commented-out variant).
    clip : project the state onto [0, 1] (``False``: the linear dynamics - extension, can diverge).
    init_std : W ~ N(0, init_std²) before the constraint (0.05).
    rng, dtype (float32 or float64), device ("cpu" or "cuda").

    Attributes: ``W`` (N, N) row = from, column = to; ``mask`` (allowed edges); ``pruned`` (the
    persistent-pruning extension); ``hparams`` and ``history`` of the last :meth:`fit`.
    """

    kind = "DEEP"
    uses_stdp = True
    default_dt_W = 100.0
    _flags = _DirectedNet._flags + ("leak_abs",)

    def __init__(self, n_in: int, hidden, n_out: int, layered: bool = False, one_hot: bool = False,
                 leak_abs: bool = False, clip: bool = True, init_std: float = 0.05, rng=None,
                 dtype=np.float64, device: str = "cpu"):
        self.leak_abs = bool(leak_abs)
        super().__init__(n_in, hidden, n_out, layered, one_hot, clip, init_std, rng, dtype, device)

    def operator(self, W, b, x):
        return deep_linear_operator(W, x, self.leak_abs)

    def learning_rule(self, W, free, nudged, raw, cfg):
        return stdp_update(raw, free.shape[1], cfg.T2, cfg.dt_W, cfg.sign).astype(W.dtype, copy=False), None

    def jacobian(self) -> np.ndarray:
        r"""J on the free units: J[j, i] = ∂(ds_j/dt)/∂s_i = W_ij (i ≠ j), J[j, j] = W_jj - Σ_k W_jk."""
        return deep_jacobian(self.W, self.n_x, self.leak_abs)

    def fit(self, X, Y, epochs: int = 200, T1: int = 1000, T2: int = 1000, dt: float = 0.05, beta: float = 10.0,
            dt_W: float = 100.0, beta0: float = 0.0, beta1: float = 1.0, sign: bool = False, **kwargs) -> dict:
        """Train with the STDP rule. Defaults: the DEEP notebook (200 epochs, T1 = T2 = 1000, dt 0.05,
        β 10, dt_W 100, β0 0, β1 1). Other keywords: :class:`~nnlocal.methods.deep.FitConfig`."""
        return fit_many([self], X, Y, epochs=epochs, T1=T1, T2=T2, dt=dt, beta=beta, dt_W=dt_W, beta0=beta0,
                        beta1=beta1, sign=sign, **kwargs)[0]


class AsymEPNet(_DirectedNet):
    r"""Asymmetric (vector-field) EP baseline: ds = sW + b - s, update s_freeᵀ(s^β - s_free)/β.

    Same constructor and interface as :class:`DEEPNet` (no ``leak_abs``); ``b`` (N,) starts at zero
    (the notebook's random init line is overwritten) and stays zero on the inputs.
    Defaults of :meth:`fit`: the EP_asym notebook (β 10, dt_W 1); β must not be 0.
    """

    kind = "AsymEP"
    divides_by_beta = True
    default_dt_W = 1.0

    def operator(self, W, b, x):
        return asym_ep_linear_operator(W, b, x)

    def learning_rule(self, W, free, nudged, raw, cfg):
        return asym_ep_update(free, nudged, cfg.beta, cfg.dt_W)

    def jacobian(self) -> np.ndarray:
        """J on the free units: J = W_HHᵀ - I."""
        return asym_ep_jacobian(self.W, self.n_x)

    def fit(self, X, Y, epochs: int = 200, T1: int = 1000, T2: int = 1000, dt: float = 0.05, beta: float = 10.0,
            dt_W: float = 1.0, **kwargs) -> dict:
        """Train with the asymmetric-EP rule (defaults: the EP_asym notebook). Keywords: :class:`FitConfig`."""
        return fit_many([self], X, Y, epochs=epochs, T1=T1, T2=T2, dt=dt, beta=beta, dt_W=dt_W, **kwargs)[0]
