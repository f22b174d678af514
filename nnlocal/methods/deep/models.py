r"""DEEP: equilibrium propagation for complete directed networks, and the asymmetric-EP baseline.

Source: M. Tristany Farinha, S. Pequito, P. A. Santos, M. Figueiredo, "Equilibrium Propagation for
Complete Directed Neural Networks", ESANN 2020 (arXiv:2006.08798); the three NumPy notebooks of
``MatildeTristany/DEEP-model-ESANN-2020`` (no licence: everything here is re-derived from the
equations restated in ``shared/spec/methods.md`` §3, not from that code). The baseline is the
vector-field ("asymmetric") EP of Scellier, Mehri, Ororbia & Bengio (2018).

Network and state
-----------------
N = N_X + ΣN_H + N_Y neurons, one state row per sample, ``s`` of shape (B, N) with values in [0, 1].
The first N_X = ``n_in + 1`` units are clamped to the data; **the last input is the constant-1 bias
neuron** (DEEP has no separate bias vector). ``W`` is (N, N) with **W[i, j] = synapse from i to j**
(row = from, column = to). Init W ~ N(0, 0.05²), then constrained; free units start every
relaxation at U(0, 0.1).

Constraints (:func:`complete_mask`, :func:`layered_mask`), applied after init and every update:

* complete graph (default): no self-loops, no edges into the inputs; every other directed edge,
  including hidden↔hidden, output→hidden and output→output (48 free edges for 3-5-1);
* ``layered=True``: data inputs → first hidden layer only, the bias neuron → every non-input layer,
  adjacent forward and adjacent feedback edges between non-input layers, nothing else.

Dynamics (Euler step dt, free units only, then the projection onto [0, 1])
---------------------------------------------------------------------------
DEEP (directed, "consensus" dynamics)::

    ds_j/dt = Σ_i W_ij s_i - s_j Σ_k W_jk  (+ β (y_j - s_j) on outputs in the nudged phase)

i.e. ds = -s L with L = D_out - W (leak = the unit's total *outgoing* weight; ``leak_abs=True`` uses
Σ_k |W_jk|, which keeps every Jacobian diagonal ≤ 0 - an option the notebook left commented out).
Asymmetric EP: ds_j/dt = Σ_i W_ij s_i + b_j - s_j (+ nudge), b initialised to zero.
Without the clip the free fixed point is linear in the inputs: all nonlinearity (XOR) comes from
the clip. Free phase: T1 steps from the random init (its output is the prediction). Nudged phase:
T2 more steps from the free state with the nudge. Early stop (``stop > 0``): a phase ends once
``Σ_{b,j} (Δs_j/dt)² ≤ stop``.

Learning rules (one full-batch update per epoch)
------------------------------------------------
DEEP (STDP): over the nudged trajectory s(0) = free state … s(T2),

    ΔW = dt_W / (B T2) · Σ_t Σ_b A1(t)ᵀ A2(t),   A1(t) = s(t),  A2(t) = β0 s(t) + β1 (s(t) - s(t-1))

(presynaptic activity × postsynaptic rate of change; with β0 = 0, β1 = 1 the sum telescopes to
about s̄_i (s_j^β - s_j^free), EP's contrast without the 1/β). ``sign=True``: ΔW = dt_W sign(Σ…).
Asymmetric EP: ΔW = dt_W/(β B) · s_freeᵀ (s^β - s_free), Δb = dt_W/(β B) · Σ_b (s^β - s_free).
Then, in both: L1 (``regularized``) W ← W - reg_W sign(W) (not scaled by dt_W, as in the notebook);
constrain; stochastic "Boltzmann" sparsification (``sparse``, :func:`boltzmann_sparsify`).

Diagnostics: :meth:`DEEPNet.gershgorin` checks the notebooks' sufficient conditions for the
linearised free dynamics (Gershgorin discs of the Jacobian on the free units); they are reported,
never asserted - trained DEEP nets usually violate them and still converge (the clip bounds the state).
In fact they cannot hold for DEEP: no edge enters an input, so every outgoing edge of a free unit
ends at a free unit and each column of J sums to zero (1ᵀJ = 0). 0 is always an eigenvalue, the
column discs always touch it, and trained nets often have eigenvalues with positive real part
(``spectral_abscissa`` > 0): without the clip the free dynamics would not settle.

Where nnlocal departs from the notebooks
----------------------------------------
* Prediction (``test_predcitions`` in the notebook) integrated with 2·dt; nnlocal uses ``dt``
  everywhere (the notebook's decision map also used dt).
* Early stop: the notebook logged zeros after an early stop (so the "last MSE" read 0); nnlocal
  records what was measured. The stop test uses the projected velocity (Δs/dt after the clip), which
  vanishes on a saturated unit, where the raw field need not. The STDP sum then runs over the steps
  taken and is still divided by the nominal T2 (the skipped steps would add ≈ 0).
* Only summaries are recorded (per-epoch MSE, error, ‖ΔW‖₁, residuals, edge counts, and the residual
  traces of the last epoch), not the full trajectories (the notebook kept ~115 MB per net).
* Seeds everywhere (``rng``); a NaN/inf guard stops a diverging net and reports it in the history.
* Extensions (labelled): ``persistent_mask=True`` keeps sparsified edges pruned (the notebook lets
  the next update regrow them); ``clip=False`` gives the unprojected linear dynamics; :func:`fit_many`
  trains several nets (seeds) in one batched kernel call.
"""
from __future__ import annotations

import numpy as np

from ..._checks import DivergenceError
from ..._rng import get_rng
from ...data.synthetic import logic_gate as _data_logic_gate
from ... import kernels
from ...kernels import check_device
from .reference import asym_ep_linear_operator, deep_linear_operator

__all__ = ["DEEPNet", "AsymEPNet", "fit_many", "logic_gate", "complete_mask", "layered_mask",
           "boltzmann_sparsify", "gershgorin", "NOTEBOOK_HPARAMS", "SPARSITY_HPARAMS", "mse", "classification_error"]

# ------------------------------------------------------------------------------------------------
# Tasks
# ------------------------------------------------------------------------------------------------

def logic_gate(name: str, one_hot: bool = False, dtype=np.float64, bias: bool = False):
    """The notebooks' logic gates (XOR, AND, OR, NOT, ID) from :func:`nnlocal.data.logic_gate`.

    Returns ``X`` (n, k) without the constant-1 bias column (``DEEPNet`` appends it as the last
    input itself; ``bias=True`` keeps it, as ``nnlocal.data.logic_gate`` returns it) and ``Y``
    (n, 1) 0/1 targets or (n, 2) one-hot (column c = class c).
    """
    X, Y = _data_logic_gate(name, one_hot=one_hot, dtype=dtype)
    return (X if bias else np.ascontiguousarray(X[:, :-1])), Y


#: the hyperparameters saved in the three notebooks (spec §3.5)
NOTEBOOK_HPARAMS = {
    "DEEP": dict(model="DEEP", hidden=[5], one_hot=False,
                 fit=dict(epochs=200, T1=1000, T2=1000, dt=0.05, beta=10.0, dt_W=100.0, beta0=0.0, beta1=1.0)),
    "DEEP_oh": dict(model="DEEP", hidden=[2], one_hot=True,
                    fit=dict(epochs=200, T1=1000, T2=1000, dt=0.05, beta=1.0, dt_W=200.0, beta0=0.0, beta1=1.0)),
    "EP_asym": dict(model="AsymEP", hidden=[5], one_hot=False,
                    fit=dict(epochs=200, T1=1000, T2=1000, dt=0.05, beta=10.0, dt_W=1.0)),
}
#: shared by all three: L1 / sparsification settings (off by default)
SPARSITY_HPARAMS = dict(reg_W=1.5e-4, tol_W=0.01, temp=5.0)


def mse(out: np.ndarray, Y: np.ndarray) -> float:
    """The notebooks' MSE: ½ · mean over samples of Σ_k (y_k - s_k)² (0.125 for outputs stuck at 0.5)."""
    return 0.5 * float(np.mean(np.sum((Y - out) ** 2, axis=-1)))


def _labels(values: np.ndarray, one_hot: bool) -> np.ndarray:
    if one_hot:
        return np.argmax(values, axis=-1)
    lab = (values >= 0.5).astype(np.int64)  # heaviside(y - 0.5, 1)
    return lab[..., 0] if lab.shape[-1] == 1 else lab


def classification_error(out: np.ndarray, Y: np.ndarray, one_hot: bool) -> float:
    """Fraction of samples whose predicted label (argmax, or the 0.5 threshold) differs from the target."""
    wrong = _labels(out, one_hot) != _labels(Y, one_hot)
    if wrong.ndim > 1:
        wrong = wrong.any(axis=-1)
    return float(np.mean(wrong))


# ------------------------------------------------------------------------------------------------
# Graph constraints, sparsification, diagnostics
# ------------------------------------------------------------------------------------------------

def complete_mask(n_x: int, N: int) -> np.ndarray:
    """Allowed edges of the complete graph: (N, N) bool, no self-loops, nothing into the n_x inputs."""
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


def boltzmann_sparsify(W: np.ndarray, tol_W: float, temp: float, rng) -> tuple[np.ndarray, np.ndarray]:
    r"""The notebooks' stochastic "Boltzmann" pruning (faithful). Returns ``(W_pruned, pruned)``.

    ``p_ij = exp(-|W_ij|/temp) / Σ_{i'} exp(-|W_i'j|/temp)`` - normalised over **all N rows** of
    column j, structurally forbidden edges included - then ``p_ij = 0`` where ``|W_ij| > tol_W``, and
    each entry is zeroed where ``p_ij > U(0, 1)`` (one uniform draw per entry, N² draws).
    ``pruned`` marks the zeroed entries that were non-zero.
    """
    rng = get_rng(rng)
    a = np.exp(-np.abs(W) / temp)
    p = a / a.sum(axis=0, keepdims=True)
    p[np.abs(W) > tol_W] = 0.0
    cut = p > rng.uniform(0.0, 1.0, size=W.shape)
    pruned = cut & (W != 0)
    W = np.where(cut, 0.0, W).astype(W.dtype, copy=False)
    return W, pruned


def gershgorin(J: np.ndarray) -> dict:
    r"""Gershgorin-disc diagnostics of a Jacobian ``J`` (column-vector convention, dx/dt = J x).

    Returns a dict with ``diag_negative`` (every J_jj < 0), ``rows_fail`` / ``cols_fail`` (how many
    rows / columns are not strictly diagonally dominant, Σ_{k≠j}|J_jk| ≥ |J_jj|), ``sufficient``
    (``diag_negative`` and all rows or all columns dominant: every eigenvalue then has Re < 0),
    ``spectral_abscissa`` (max Re λ, the actual linear stability), and the discs ``centers``,
    ``row_radii``, ``col_radii``.
    """
    J = np.asarray(J, dtype=np.float64)
    d = np.diag(J).copy()
    A = np.abs(J)
    row_r = A.sum(axis=1) - np.abs(d)
    col_r = A.sum(axis=0) - np.abs(d)
    rows_fail = int(np.sum(row_r >= np.abs(d)))
    cols_fail = int(np.sum(col_r >= np.abs(d)))
    diag_neg = bool(np.all(d < 0))
    eig = np.linalg.eigvals(J) if J.size else np.zeros(0)
    return {
        "diag_negative": diag_neg,
        "rows_fail": rows_fail,
        "cols_fail": cols_fail,
        "sufficient": diag_neg and (rows_fail == 0 or cols_fail == 0),
        "spectral_abscissa": float(np.max(eig.real)) if eig.size else float("nan"),
        "centers": d,
        "row_radii": row_r,
        "col_radii": col_r,
    }


# ------------------------------------------------------------------------------------------------
# The two directed models
# ------------------------------------------------------------------------------------------------

class _DirectedNet:
    """Shared machinery of DEEP and asymmetric EP (graph, state, relaxation, the training engine)."""

    kind = ""
    uses_stdp = False

    def __init__(self, n_in: int, hidden, n_out: int, layered: bool = False, one_hot: bool = False,
                 clip: bool = True, init_std: float = 0.05, rng=None, dtype=np.float64, device: str = "cpu"):
        self.device = check_device(device, type(self).__name__)
        hidden = [int(hidden)] if np.isscalar(hidden) else [int(h) for h in hidden]
        if n_in < 1 or n_out < 1 or any(h < 1 for h in hidden):
            raise ValueError(f"{type(self).__name__}: sizes must be positive, got n_in={n_in}, "
                             f"hidden={hidden}, n_out={n_out}")
        self.n_in, self.hidden, self.n_out = int(n_in), hidden, int(n_out)
        self.n_x = self.n_in + 1                                   # data inputs + the bias neuron
        self.sizes = [self.n_x] + hidden + [self.n_out]
        self.N = int(sum(self.sizes))
        self.n_free = self.N - self.n_x
        self.layered, self.one_hot, self.clip = bool(layered), bool(one_hot), bool(clip)
        self.dtype = np.dtype(dtype)
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

    def constrain_(self) -> "_DirectedNet":
        """Zero every forbidden entry of W (and b on the inputs), in place."""
        self.W *= self.allowed
        self.b[: self.n_x] = 0
        return self

    # ---- data and state ---------------------------------------------------------------------
    def inputs(self, X) -> np.ndarray:
        """(B, n_in) data -> (B, n_x) clamped inputs with the constant-1 bias neuron appended last.

        Data that already carries the bias column last ((B, n_in + 1) with a last column of ones, as
        :func:`nnlocal.data.logic_gate` returns it) is taken as is."""
        X = np.asarray(X, dtype=self.dtype)
        if X.ndim == 1:
            X = X[:, None] if self.n_in == 1 else X[None]
        if X.ndim == 2 and X.shape[1] == self.n_x and np.all(X[:, -1] == 1):
            return X.copy()
        if X.ndim != 2 or X.shape[1] != self.n_in:
            raise ValueError(f"{type(self).__name__}: expected inputs of shape (B, {self.n_in}) "
                             f"(without the bias column, or with a last column of ones), got {X.shape}")
        return np.concatenate([X, np.ones((X.shape[0], 1), dtype=self.dtype)], axis=1)

    def init_state(self, X, rng=None) -> np.ndarray:
        """(B, N) state: inputs clamped to ``X`` (+ bias), free units ~ U(0, 0.1)."""
        x = self.inputs(X)
        s = np.empty((x.shape[0], self.N), dtype=self.dtype)
        s[:, : self.n_x] = x
        s[:, self.n_x:] = get_rng(self.rng if rng is None else rng).uniform(0.0, 0.1, (x.shape[0], self.n_free))
        return s

    def _targets(self, Y, B) -> np.ndarray:
        Y = np.asarray(Y, dtype=self.dtype)
        if Y.ndim == 1:
            Y = Y[:, None] if self.n_out == 1 else np.eye(self.n_out, dtype=self.dtype)[Y.astype(np.int64)]
        if Y.shape != (B, self.n_out):
            raise ValueError(f"{type(self).__name__}: expected targets of shape ({B}, {self.n_out}), got {Y.shape}")
        return Y

    # ---- the dynamics (one place that calls the kernel) --------------------------------------
    @classmethod
    def _operator(cls, W, b, x, leak_abs):
        raise NotImplementedError

    @property
    def _bounds(self):
        return (0.0, 1.0) if self.clip else (-np.inf, np.inf)

    def _relax_op(self, M, c, s, steps, dt, beta, target, stop, traj=None):
        """The one call of the relaxation kernel (hoisted operator ``M``, ``c``; S nets in ``s``)."""
        lo, hi = self._bounds
        return kernels.implementation(__package__, self.device).linear_relax(M, c, s, self.n_x, self.n_out, int(steps), dt, beta, target,
                                                 lo, hi, stop, traj)

    def _relax_stack(self, W, b, s, steps, dt, beta, target, stop, traj=None):
        with np.errstate(over="ignore", invalid="ignore"):
            M, c = self._operator(W, b, s[0, :, : self.n_x], getattr(self, "leak_abs", False))
            return self._relax_op(M, c, s, steps, dt, beta, target, stop, traj)

    def relax(self, x, steps: int = 1000, dt: float = 0.05, beta: float = 0.0, target=None, state=None,
              stop: float = 0.0, rng=None, info: bool = False, trajectory: bool = False):
        """Relax the network with inputs ``x`` (B, n_in) for ``steps`` Euler steps.

        ``beta > 0`` with ``target`` (B, n_out) is the nudged phase. ``state`` (B, N) continues from a
        given state (its input columns are re-clamped to ``x``); otherwise free units start at U(0, 0.1)
        drawn from ``rng`` (default: the net's generator). Returns the final state (B, N), or
        ``(state, info)`` with ``info = {"residuals": (steps,), "steps": int, "trajectory": (T+1, B, N) | None}``.
        """
        if state is None:
            s = self.init_state(x, rng)
        else:
            s = np.array(state, dtype=self.dtype, copy=True)
            s[:, : self.n_x] = self.inputs(x)
        B = s.shape[0]
        tgt = None if beta == 0 else self._targets(target, B)
        traj = np.empty((1, steps + 1, B, self.N), dtype=self.dtype) if trajectory else None
        res, n = self._relax_stack(self.W[None], self.b[None], s[None], steps, dt, beta, tgt, stop, traj)
        if not info:  # (s was updated in place through the view s[None])
            return s
        n = int(n[0])
        return s, {"residuals": res[0], "steps": n, "trajectory": None if traj is None else traj[0, : n + 1]}

    def output(self, X, T: int | None = None, dt: float | None = None, rng=None) -> np.ndarray:
        """Free-phase outputs (B, n_out) after ``T`` steps (default: the T1 and dt of the last fit, or 1000/0.05)."""
        T = int(self.hparams.get("T1", 1000) if T is None else T)
        dt = float(self.hparams.get("dt", 0.05) if dt is None else dt)
        return self.relax(X, T, dt, rng=rng)[:, -self.n_out:]

    def predict(self, X, T: int | None = None, dt: float | None = None, rng=None) -> np.ndarray:
        """Labels from a fresh free phase: argmax (one-hot) or ``output ≥ 0.5`` (shape (B,) for one output)."""
        return _labels(self.output(X, T, dt, rng), self.one_hot)

    # ---- diagnostics --------------------------------------------------------------------------
    def jacobian(self) -> np.ndarray:
        raise NotImplementedError

    def gershgorin(self) -> dict:
        """Gershgorin diagnostics (:func:`gershgorin`) of the linearised free dynamics on the free units."""
        return gershgorin(self.jacobian())

    # ---- learning -----------------------------------------------------------------------------
    def _learning_update(self, W, free, nudged, stdp_raw, hp):
        """(dW (S, N, N), db (S, N) or None) for the stacked nets, before masking; ``stdp_raw`` holds
        the raw STDP sums of the nudged phase (DEEP) or None."""
        raise NotImplementedError

    def fit(self, X, Y, epochs: int = 200, T1: int = 1000, T2: int = 1000, dt: float = 0.05, beta: float = 10.0,
            dt_W: float = 100.0, **kwargs) -> dict:
        """Train on the full batch (one update per epoch); returns the history (see :func:`fit_many`)."""
        return fit_many([self], X, Y, epochs=epochs, T1=T1, T2=T2, dt=dt, beta=beta, dt_W=dt_W, **kwargs)[0]


class DEEPNet(_DirectedNet):
    r"""DEEP: directed dynamics ds = sW - s ⊙ (W1), STDP learning (see the module docstring).

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
    rng, dtype (float64), device ("cpu" or "cuda": the relaxation and STDP kernels of nnlocal.kernels.cuda).

    Attributes: ``W`` (N, N) row = from, column = to; ``mask`` (allowed edges); ``pruned`` (the
    persistent-pruning extension); ``history`` of the last :meth:`fit`.
    """

    kind = "DEEP"

    def __init__(self, n_in: int, hidden, n_out: int, layered: bool = False, one_hot: bool = False,
                 leak_abs: bool = False, clip: bool = True, init_std: float = 0.05, rng=None,
                 dtype=np.float64, device: str = "cpu"):
        self.leak_abs = bool(leak_abs)
        super().__init__(n_in, hidden, n_out, layered, one_hot, clip, init_std, rng, dtype, device)

    @classmethod
    def _operator(cls, W, b, x, leak_abs):
        return deep_linear_operator(W, x, leak_abs)

    def jacobian(self) -> np.ndarray:
        r"""J on the free units: J[j, i] = ∂(ds_j/dt)/∂s_i = W_ij (i ≠ j), J[j, j] = W_jj - Σ_k W_jk."""
        W = self.W.astype(np.float64)
        leak = np.abs(W).sum(axis=1) if self.leak_abs else W.sum(axis=1)
        J = W[self.n_x:, self.n_x:].T.copy()
        J[np.diag_indices_from(J)] -= leak[self.n_x:]
        return J

    uses_stdp = True

    def _learning_update(self, W, free, nudged, raw, hp):
        B = free.shape[1]
        dW = hp["dt_W"] * np.sign(raw) if hp["sign"] else (hp["dt_W"] / (B * hp["T2"])) * raw
        return dW.astype(W.dtype, copy=False), None

    def fit(self, X, Y, epochs: int = 200, T1: int = 1000, T2: int = 1000, dt: float = 0.05, beta: float = 10.0,
            dt_W: float = 100.0, beta0: float = 0.0, beta1: float = 1.0, sign: bool = False, **kwargs) -> dict:
        """Train with the STDP rule. Defaults: the DEEP notebook (200 epochs, T1 = T2 = 1000, dt 0.05,
        β 10, dt_W 100, β0 0, β1 1). Other keywords: see :func:`fit_many`."""
        return fit_many([self], X, Y, epochs=epochs, T1=T1, T2=T2, dt=dt, beta=beta, dt_W=dt_W, beta0=beta0,
                        beta1=beta1, sign=sign, **kwargs)[0]


class AsymEPNet(_DirectedNet):
    r"""Asymmetric (vector-field) EP baseline: ds = sW + b - s, update s_freeᵀ(s^β - s_free)/β.

    Same constructor and interface as :class:`DEEPNet` (no ``leak_abs``); ``b`` (N,) starts at zero
    (the notebook's random init line is overwritten) and stays zero on the inputs.
    Defaults of :meth:`fit`: the EP_asym notebook (β 10, dt_W 1).
    """

    kind = "AsymEP"

    @classmethod
    def _operator(cls, W, b, x, leak_abs):
        return asym_ep_linear_operator(W, b, x)

    def jacobian(self) -> np.ndarray:
        """J on the free units: J = W_HHᵀ - I."""
        J = self.W[self.n_x:, self.n_x:].T.astype(np.float64)
        return J - np.eye(J.shape[0])

    def _learning_update(self, W, free, nudged, raw, hp):
        B = free.shape[1]
        scale = hp["dt_W"] / (hp["beta"] * B)
        diff = nudged - free
        dW = scale * np.matmul(free.transpose(0, 2, 1), diff)
        db = scale * diff.sum(axis=1)
        return dW, db

    def fit(self, X, Y, epochs: int = 200, T1: int = 1000, T2: int = 1000, dt: float = 0.05, beta: float = 10.0,
            dt_W: float = 1.0, **kwargs) -> dict:
        """Train with the asymmetric-EP rule (defaults: the EP_asym notebook). Keywords: :func:`fit_many`."""
        return fit_many([self], X, Y, epochs=epochs, T1=T1, T2=T2, dt=dt, beta=beta, dt_W=dt_W, **kwargs)[0]


# ------------------------------------------------------------------------------------------------
# The training engine: S nets (e.g. seeds) with the same architecture, relaxed in one kernel call
# ------------------------------------------------------------------------------------------------

def fit_many(nets, X, Y, epochs: int = 200, T1: int = 1000, T2: int = 1000, dt: float = 0.05, beta: float = 10.0,
             dt_W: float | None = None, beta0: float = 0.0, beta1: float = 1.0, sign: bool = False,
             stop: float = 0.0, regularized: bool = False, reg_W: float = 1.5e-4, sparse: bool = False,
             tol_W: float = 0.01, temp: float = 5.0, persistent_mask: bool = False, on_diverge: str = "stop",
             callback=None) -> list[dict]:
    r"""Train ``nets`` (same class and architecture, each with its own generator) on the full batch.

    Every epoch, for all still-active nets at once: fresh U(0, 0.1) states; free phase (T1 steps);
    nudged phase (T2 steps, force β(y - s_out); its trajectory is recorded for DEEP's STDP sums,
    one GEMM per net); the learning update; L1
    (``regularized``: W -= reg_W sign(W)); constrain; sparsify (``sparse``: :func:`boltzmann_sparsify`
    with ``tol_W``, ``temp``; ``persistent_mask=True`` keeps pruned edges at zero - extension).
    Each net draws from its own ``rng`` in the same order as a lone :meth:`fit`, so the results are
    identical to training the nets one by one.

    ``dt_W`` defaults to the class's notebook value (DEEP 100, AsymEP 1). ``stop > 0`` ends a phase
    early once Σ (Δs/dt)² ≤ stop. ``on_diverge``: ``"stop"`` (freeze that net, keep its last finite
    W, flag it in the history) or ``"raise"`` (:class:`~nnlocal.DivergenceError`).
    ``callback(epoch, nets, histories)`` is called after every epoch.

    Returns one history dict per net: per-epoch arrays (NaN after a divergence) ``mse`` (free phase,
    ½·mean Σ (y - s)²), ``error`` (free-phase classification error), ``mse_nudged``, ``error_nudged``,
    ``dW_l1`` (‖ΔW‖₁ of the masked learning update), ``residual_free`` / ``residual_nudged`` (Σ(Δs/dt)²
    at the last step), ``steps_free`` / ``steps_nudged``, ``edges``; and ``trace_free`` /
    ``trace_nudged`` (residual per step of the last epoch), ``diverged``, ``diverged_epoch`` (-1 if
    none), ``epochs_run``, ``final_error``, ``first_solved_epoch`` (first epoch with error 0, or -1).
    """
    nets = list(nets)
    if not nets:
        return []
    net0 = nets[0]
    cls = type(net0)
    for n in nets[1:]:
        if type(n) is not cls or n.sizes != net0.sizes or n.layered != net0.layered or n.dtype != net0.dtype \
                or n.clip != net0.clip or getattr(n, "leak_abs", False) != getattr(net0, "leak_abs", False) \
                or n.device != net0.device:
            raise ValueError("fit_many: every net must have the same class, sizes, graph, dtype, dynamics and device")
    if on_diverge not in ("stop", "raise"):
        raise ValueError(f"fit_many: on_diverge must be 'stop' or 'raise', got {on_diverge!r}")
    if dt_W is None:
        dt_W = 100.0 if cls is DEEPNet else 1.0
    if isinstance(net0, AsymEPNet) and beta == 0:
        raise ValueError("AsymEPNet.fit: beta must be non-zero (the update divides by beta)")
    hp = dict(epochs=int(epochs), T1=int(T1), T2=int(T2), dt=float(dt), beta=float(beta), dt_W=float(dt_W),
              beta0=float(beta0), beta1=float(beta1), sign=bool(sign), stop=float(stop),
              regularized=bool(regularized), reg_W=float(reg_W), sparse=bool(sparse), tol_W=float(tol_W),
              temp=float(temp), persistent_mask=bool(persistent_mask))
    x = net0.inputs(X)
    B, N, n_x, n_out = x.shape[0], net0.N, net0.n_x, net0.n_out
    Yt = net0._targets(Y, B)
    S = len(nets)
    dtype = net0.dtype
    nan = lambda: np.full(epochs, np.nan)  # noqa: E731
    hists = [dict(mse=nan(), error=nan(), mse_nudged=nan(), error_nudged=nan(), dW_l1=nan(), residual_free=nan(),
                  residual_nudged=nan(), steps_free=np.zeros(epochs, np.int64), steps_nudged=np.zeros(epochs, np.int64),
                  edges=np.zeros(epochs, np.int64), trace_free=np.zeros(0), trace_nudged=np.zeros(0), diverged=False,
                  diverged_epoch=-1, epochs_run=0, final_error=float("nan"), first_solved_epoch=-1) for _ in nets]
    active = np.ones(S, dtype=bool)
    for n in nets:
        n.hparams = dict(hp)

    def diverge(i, epoch, what):
        h = hists[i]
        h["diverged"], h["diverged_epoch"] = True, epoch
        active[i] = False
        if on_diverge == "raise":
            raise DivergenceError(f"{cls.__name__} (net {i}): {what} became non-finite at epoch {epoch}")

    leak_abs = getattr(net0, "leak_abs", False)
    y_lab = _labels(Yt, net0.one_hot)
    traj = np.empty((S, T2 + 1, B, N), dtype=dtype) if net0.uses_stdp else None
    with np.errstate(over="ignore", invalid="ignore"):   # a diverging net is detected and reported below
        for epoch in range(epochs):
            idx = np.flatnonzero(active)
            if idx.size == 0:
                break
            k = idx.size
            W = np.stack([nets[i].W for i in idx])
            b = np.stack([nets[i].b for i in idx])
            allowed = np.stack([nets[i].allowed for i in idx])
            s = np.empty((k, B, N), dtype=dtype)
            s[:, :, :n_x] = x
            for j, i in enumerate(idx):
                s[j, :, n_x:] = nets[i].rng.uniform(0.0, 0.1, (B, N - n_x))
            # free phase, then the nudged phase from the free state (trajectory recorded for the update)
            M, c = net0._operator(W, b, x, leak_abs)
            res_f, n_f = net0._relax_op(M, c, s, T1, dt, 0.0, None, stop)
            free = s.copy()
            tr = traj[:k] if net0.uses_stdp else None   # DEEP's STDP needs the nudged trajectory
            res_n, n_n = net0._relax_op(M, c, s, T2, dt, beta, Yt, stop, tr)
            raw = (kernels.implementation(__package__, net0.device).stdp_accumulate(tr, n_n, beta0, beta1)   # one GEMM per net on the CPU
                   if net0.uses_stdp else None)
            # the learning update, L1 and the constraints for all nets at once
            dW, db = net0._learning_update(W, free, s, raw, hp)
            dW *= allowed
            W_new = W + dW
            if regularized:
                W_new -= reg_W * np.sign(W_new)
            W_new *= allowed
            b_new = b if db is None else b + db
            b_new[:, :n_x] = 0
            # summaries (vectorised over nets): MSE = ½ mean_b Σ_k (y - s)², classification error
            out_f, out_n = free[:, :, -n_out:], s[:, :, -n_out:]
            mse_f = ((Yt - out_f) ** 2).sum(axis=(1, 2)) * (0.5 / B)
            mse_n = ((Yt - out_n) ** 2).sum(axis=(1, 2)) * (0.5 / B)
            wrong_f, wrong_n = _labels(out_f, net0.one_hot) != y_lab, _labels(out_n, net0.one_hot) != y_lab
            if wrong_f.ndim == 3:
                wrong_f, wrong_n = wrong_f.any(axis=2), wrong_n.any(axis=2)
            err_f, err_n = wrong_f.mean(axis=1), wrong_n.mean(axis=1)
            state_ok = np.isfinite(mse_f) & np.isfinite(mse_n)
            w_ok = np.isfinite(W_new).reshape(k, -1).all(axis=1) & np.isfinite(b_new).all(axis=1)
            dW_l1 = np.abs(dW).reshape(k, -1).sum(axis=1)
            for j, i in enumerate(idx):
                net, h = nets[i], hists[i]
                if not state_ok[j]:
                    diverge(i, epoch, "the state")
                    continue
                h["mse"][epoch], h["error"][epoch] = mse_f[j], err_f[j]
                h["mse_nudged"][epoch], h["error_nudged"][epoch] = mse_n[j], err_n[j]
                h["residual_free"][epoch] = res_f[j, n_f[j] - 1] if n_f[j] else np.nan
                h["residual_nudged"][epoch] = res_n[j, n_n[j] - 1] if n_n[j] else np.nan
                h["steps_free"][epoch], h["steps_nudged"][epoch] = n_f[j], n_n[j]
                h["trace_free"], h["trace_nudged"] = res_f[j, : n_f[j]], res_n[j, : n_n[j]]
                if not w_ok[j]:
                    diverge(i, epoch, "W")        # the last finite W is kept
                    continue
                net.W, net.b = W_new[j], b_new[j]
                if sparse:
                    net.W, pruned = boltzmann_sparsify(net.W, tol_W, temp, net.rng)
                    if persistent_mask:
                        net.pruned |= pruned & net.mask
                h["dW_l1"][epoch] = dW_l1[j]
                h["edges"][epoch] = net.edges
                h["epochs_run"] = epoch + 1
                if h["first_solved_epoch"] < 0 and err_f[j] == 0:
                    h["first_solved_epoch"] = epoch
            if callback is not None:
                callback(epoch, nets, hists)
    for net, h in zip(nets, hists):
        done = h["epochs_run"]
        h["final_error"] = float(h["error"][done - 1]) if done else float("nan")
        net.history = h
    return hists
