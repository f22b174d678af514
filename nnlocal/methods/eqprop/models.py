r""":class:`EPNet`: a layered symmetric equilibrium-propagation network and its training loop.

The equations (energy, cost, relaxation, learning rule, with shapes) are in
:mod:`nnlocal.methods.eqprop.reference`; :class:`EPNet` holds the parameters and calls them through
the implementation :mod:`nnlocal.kernels` selects (the reference, the Numba twins in ``cpu.py``, or
the CUDA twins in ``cuda.py`` for ``device="cuda"``).

Source: B. Scellier and Y. Bengio, "Equilibrium Propagation: Bridging the Gap between Energy-Based
Models and Backpropagation", Frontiers in Computational Neuroscience 11:24 (2017), and the authors'
Theano code (``bscellier/Towards-a-Biologically-Plausible-Backprop``, ``model.py``/``train_model.py``).
This is nnlocal's own implementation of those equations.

Training recipe of the code (``fit`` defaults, "net1": 784-500-10, batch 20, 20 free / 4 nudged steps,
ε 0.5, β 0.5, α = (0.1, 0.05)): Glorot-uniform weights U(±√(6/(n_k+n_{k+1}))), zero biases;
persistent particles (each training example keeps its hidden/output state between epochs, zeros at
first; ``persistent=True``); the sign of β drawn at random for every batch (``random_sign=True``);
the training error is measured at the end of each free phase, before the update.

Where nnlocal differs (documented choices)
------------------------------------------
* The cost: the paper writes C = ½‖y - h_L‖²; the released code uses ‖y - h_L‖² (no ½), which
  doubles the nudging force for the same β (the update still divides by β, so it also doubles the
  effective learning rates). ``cost="code"`` reproduces the code exactly.
* Test error: the code validated with persistent particles that also carried over between epochs;
  nnlocal's :meth:`EPNet.predict` relaxes from zero for ``steps`` (default 100) free steps.
* Particles live for one :meth:`EPNet.fit` call (zeros at its start), so two calls of one epoch
  start the second epoch's free phases from zero where one call of two epochs would not.
* Weight layout (n_k, n_{k+1}) = (from lower, to upper), as in the code (not torch's (out, in));
  internally each W_k is stored transposed and C-contiguous, and ``weights[k]`` is a view.
* Extensions: ``shuffle=True`` (the code walks the data in order); float64; ``kernel="fused"|"blas"``;
  divergence detection (``on_diverge``); ``device="cuda"``.
"""
from __future__ import annotations

import math
import time

import numpy as np

from ... import kernels
from ..._checks import DivergenceError, check_finite_input
from ..._rng import get_rng
from ...kernels import check_device
from . import reference
from ._args import check_count, check_labels, check_real, check_step_size, learning_rates
from .reference import rho

__all__ = ["EPNet", "rho", "SCELLIER_NET1"]

#: the code's "net1" hyperparameters (train_model.py)
SCELLIER_NET1 = dict(hidden_sizes=[500], epochs=25, batch_size=20, n_free=20, n_nudged=4, eps=0.5, beta=0.5,
                     lrs=(0.1, 0.05))


class EPNet:
    r"""Layered symmetric EP network (equations: :mod:`nnlocal.methods.eqprop.reference`).

    Parameters
    ----------
    sizes : [n_0 (input), n_1, …, n_L (output)], e.g. ``[784, 500, 10]``.
    rng : None | int | Generator (Glorot init and, in :meth:`fit`, the β signs and shuffling).
    dtype : float32 (default) or float64.
    kernel : which Numba kernel relaxes under ``nnlocal.kernels.use("numba")``: ``"auto"`` (default:
        the fastest at the batch size, ``cpu.ep_kernel_for``), ``"fused"`` or ``"blas"``. Under
        ``use("numpy")`` the reference serves whatever this says; on ``device="cuda"``, the CUDA kernel.
    device : ``"cpu"`` or ``"cuda"`` (the relaxation runs the CUDA twin, all steps in one launch, with
        the couplings and biases resident on the GPU: uploaded once after each change of the
        parameters, not on every relaxation; the input drive and the learning rule stay on the CPU).

    Attributes: ``weights`` (list of (n_k, n_{k+1}) views), ``biases`` (list of (n_{k+1},) views),
    ``history`` of the last :meth:`fit`. A state is one packed (B, n_1 + … + n_L) array;
    :meth:`layers` splits it into per-layer views. On ``device="cuda"``, edit the parameters through
    ``weights``/``biases`` fetched after the last relaxation, or with :meth:`set_parameters`: a view
    kept from before is not seen by the GPU copy.
    """

    #: a parameter beyond this magnitude in :meth:`fit` is divergence (runaway learning rates)
    MAX_ABS_PARAMETER = 1e6

    def __init__(self, sizes, rng=None, dtype=np.float32, kernel: str = "auto", device: str = "cpu"):
        if kernel not in ("auto", "fused", "blas"):
            raise ValueError(f"EPNet: kernel must be 'auto', 'fused' or 'blas', got {kernel!r}")
        try:
            sizes = [check_count("EPNet", "sizes", n, minimum=1) for n in sizes]
        except TypeError:
            raise ValueError(f"EPNet: sizes must be a list of layer sizes, got {sizes!r}") from None
        if len(sizes) < 2:
            raise ValueError(f"EPNet: sizes must list at least an input and an output size, got {sizes}")
        try:
            ok = np.dtype(dtype) in (np.float32, np.float64)
        except TypeError:
            ok = False
        if not ok:
            raise ValueError(f"EPNet: dtype must be float32 or float64, got {dtype!r}")
        self.device = check_device(device, "EPNet")
        self.sizes = sizes
        self.dtype = np.dtype(dtype)
        self.rng = get_rng(rng)
        self.L = len(sizes) - 1                      # number of non-input layers
        self.H = int(sum(sizes[1:]))                 # packed state width
        self._off = np.concatenate([[0], np.cumsum(sizes[1:])]).astype(np.int64)
        # W_0 stored transposed (n_1, n_0) C-contiguous: weights[0] is an F-contiguous view
        self._W0T = np.empty((sizes[1], sizes[0]), dtype=self.dtype)
        # couplings between non-input layers, transposed and packed in one buffer (reference.ep_pack_couplings)
        self._vt = np.empty(sum(a * b for a, b in zip(sizes[1:-1], sizes[2:])), dtype=self.dtype)
        self._b = np.zeros(self.H, dtype=self.dtype)
        for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            lim = np.sqrt(6.0 / (a + b))
            self._weights()[k][...] = self.rng.uniform(-lim, lim, size=(a, b))
        self.kernel = kernel
        self._on_device = None                       # (vt, bias) on the GPU, None when stale
        self.history: dict | None = None

    # ---- parameters ---------------------------------------------------------------------------
    def _weights(self) -> list:
        return [self._W0T.T] + reference.unpack_couplings(self._vt, self.sizes[1:])

    def _biases(self) -> list:
        return [self._b[self._off[k]:self._off[k + 1]] for k in range(self.L)]

    @property
    def weights(self) -> list:
        """[W_0, …, W_{L-1}], W_k of shape (n_k, n_{k+1}) - views: in-place edits change the net."""
        self._on_device = None      # the caller may edit the views: upload again before the next GPU relaxation
        return self._weights()

    @property
    def biases(self) -> list:
        """[b_0, …, b_{L-1}], b_k of shape (n_{k+1},) (the bias of layer k+1) - views."""
        self._on_device = None
        return self._biases()

    def _named_parameters(self):
        return [(f"weights.{k}", W) for k, W in enumerate(self._weights())] + \
            [(f"biases.{k}", b) for k, b in enumerate(self._biases())]

    def set_parameters(self, weights, biases) -> "EPNet":
        """Copy ``weights`` (list of (n_k, n_{k+1})) and ``biases`` (list of (n_{k+1},)) into the net."""
        weights, biases = list(weights), list(biases)
        if len(weights) != self.L or len(biases) != self.L:
            raise ValueError(f"EPNet.set_parameters: expected {self.L} weights and {self.L} biases, "
                             f"got {len(weights)} and {len(biases)}")
        state = {f"weights.{k}": W for k, W in enumerate(weights)}
        state.update({f"biases.{k}": b for k, b in enumerate(biases)})
        return self.load_state_dict(state, who="EPNet.set_parameters")

    def state_dict(self) -> dict:
        """The net's state for :func:`nnlocal.save`: ``weights.k`` (n_k, n_{k+1}) and ``biases.k`` (n_{k+1},),
        copies. (Persistent particles live for one :meth:`fit` call and are not state.)"""
        return {name: np.array(p, copy=True) for name, p in self._named_parameters()}

    def load_state_dict(self, state: dict, strict: bool = True, who: str = "EPNet.load_state_dict") -> "EPNet":
        """Copy ``state`` (as :meth:`state_dict` returns it) into the net. A missing or unexpected key
        (with ``strict``) raises KeyError; a wrong shape, a non-numeric or a non-finite array raises
        ValueError. Everything is checked before anything is copied."""
        own = dict(self._named_parameters())
        if strict:
            missing = [k for k in own if k not in state]
            unexpected = [k for k in state if k not in own]
            if missing or unexpected:
                raise KeyError(f"{who}: missing keys {missing}, unexpected keys {unexpected}")
        updates = []
        for name, dst in own.items():
            if name not in state:
                continue
            src = np.asarray(state[name])
            if src.shape != dst.shape:
                raise ValueError(f"{who}: '{name}' has shape {src.shape}, expected {dst.shape}")
            if src.dtype.kind not in "biuf":
                raise ValueError(f"{who}: '{name}' has dtype {src.dtype}, expected a real number type")
            check_finite_input(who, src, f"'{name}'")
            updates.append((dst, src))
        for dst, src in updates:
            dst[...] = src
        self._on_device = None
        return self

    def __getstate__(self):   # copy.deepcopy: never copy the GPU copies
        return {**self.__dict__, "_on_device": None}

    def __repr__(self) -> str:
        return f"EPNet({'-'.join(map(str, self.sizes))}, dtype={self.dtype}, kernel={self.kernel!r})"

    # ---- inputs, states, targets ----------------------------------------------------------------
    def layers(self, state: np.ndarray) -> list:
        """Split a packed state (B, H) into the per-layer views [h_1, …, h_L]."""
        return [state[:, self._off[k]:self._off[k + 1]] for k in range(self.L)]

    def zero_state(self, B: int) -> np.ndarray:
        return np.zeros((B, self.H), dtype=self.dtype)

    def _array(self, who, a, shape, name) -> np.ndarray:
        """``a`` as a finite real array of the net's dtype and ``shape`` (None: any size there)."""
        try:
            arr = np.asarray(a)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{who}: {name} is not a numeric array ({exc})") from None
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"{who}: expected a real-valued {name}, got dtype {arr.dtype}")
        arr = arr.astype(self.dtype, copy=False)
        if arr.ndim != len(shape) or any(n is not None and n != m for n, m in zip(shape, arr.shape)):
            want = "(" + ", ".join("B" if n is None else str(n) for n in shape) + ")"
            raise ValueError(f"{who}: expected {name} of shape {want}, got {arr.shape}")
        check_finite_input(who, arr, name)
        return arr

    def _x(self, x, who: str = "EPNet", name: str = "input") -> np.ndarray:
        return self._array(who, x, (None, self.sizes[0]), name)

    def _state(self, state, B, who) -> np.ndarray:
        """A starting state (copied, clipped into [0, 1]); zeros for ``None``."""
        if state is None:
            return self.zero_state(B)
        return np.clip(self._array(who, state, (B, self.H), "state"), 0, 1)

    def one_hot(self, y, B: int | None = None, who: str = "EPNet.one_hot") -> np.ndarray:
        """Integer labels (B,) in [0, n_L) -> one-hot (B, n_L); a (B, n_L) array is taken as the targets
        themselves (cast). ``B``: the batch the labels must match."""
        y = np.asarray(y)
        if y.ndim == 2:
            return self._array(who, y, (B, self.sizes[-1]), "targets")
        return np.eye(self.sizes[-1], dtype=self.dtype)[check_labels(who, y, self.sizes[-1], B)]

    # ---- energy and cost ----------------------------------------------------------------------
    def energy(self, x, state) -> np.ndarray:
        """E per sample (B,) (:func:`reference.energy`)."""
        x = self._x(x, "EPNet.energy")
        s = self._array("EPNet.energy", state, (x.shape[0], self.H), "state")
        return reference.energy(x, self.layers(s), self._weights(), self._biases())

    def cost(self, state, y) -> np.ndarray:
        """C per sample (B,): ½‖y - h_L‖² (y labels or one-hot; :func:`reference.cost`)."""
        s = self._array("EPNet.cost", state, (None, self.H), "state")
        return reference.cost(s[:, self._off[-2]:], self.one_hot(y, s.shape[0], "EPNet.cost"))

    # ---- relaxation ---------------------------------------------------------------------------
    def input_drive(self, x) -> np.ndarray:
        """The loop invariant x W_0 (B, n_1) - computed once per batch (BLAS)."""
        return self._x(x, "EPNet.input_drive") @ self._W0T.T

    def kernel_for(self, batch: int) -> str:
        """What relaxes a batch of this size: ``"cuda"``, ``"reference"`` (under
        ``nnlocal.kernels.use("numpy")``), or the Numba kernel ``"fused"`` / ``"blas"``."""
        if self.device == "cuda":
            return "cuda"
        if kernels.current() == "numpy":
            return "reference"
        if self.kernel != "auto":
            return self.kernel
        return kernels.implementation(__package__).ep_kernel_for(self.sizes[1:], batch)

    def _relax_fn(self, batch: int):
        """``relax(c, s, steps, eps, beta, target)`` for batches of this size: the implementation's
        :func:`reference.ep_relax` twin with the net's couplings and biases (on ``device="cuda"`` their
        GPU copies, uploaded again only after the parameters changed)."""
        K = kernels.implementation(__package__, self.device)
        which = self.kernel_for(batch)
        relax = K.ep_relax_fused if which == "fused" else K.ep_relax_blas if which == "blas" else K.ep_relax
        sizes = self.sizes[1:]

        def run(c, s, steps, eps, beta, target):
            if self.device != "cuda":
                return relax(c, self._vt, self._b, s, sizes, steps, eps, beta, target)
            if self._on_device is None:
                self._on_device = K.ep_resident(self._vt, self._b)
            return relax(c, *self._on_device, s, sizes, steps, eps, beta, target)

        return run

    def relax(self, x, steps: int = 20, eps: float = 0.5, beta: float = 0.0, target=None, state=None,
              info: bool = False, drive=None):
        """Relax for ``steps`` steps of size ``eps`` with input ``x`` (B, n_0) clamped.

        ``beta != 0`` nudges the output towards ``target`` (labels or one-hot). ``state`` (B, H) is the
        starting state (copied; clipped into [0, 1]); default zeros. ``drive`` may pass a precomputed
        :meth:`input_drive`. Returns the new state, or ``(state, residuals)`` with ``info=True``
        (residuals (steps,): Σ (Δs)² per step).
        """
        who = "EPNet.relax"
        x = self._x(x, who)
        B = x.shape[0]
        steps, eps = check_count(who, "steps", steps), check_step_size(who, eps)
        beta = check_real(who, "beta", beta)
        s = self._state(state, B, who)
        c = self.input_drive(x) if drive is None else self._array(who, drive, (B, self.sizes[1]), "drive")
        if beta != 0 and target is None:
            raise ValueError(f"{who}: beta={beta} nudges the output towards a target; give target")
        tgt = None if beta == 0 else self.one_hot(target, B, who)
        res = self._relax_fn(B)(c, s, steps, eps, beta, tgt)
        return (s, res) if info else s

    # ---- learning -----------------------------------------------------------------------------
    def _update(self, x, free, nudged, beta, lrs) -> None:
        """:func:`reference.ep_update` (or its twin) on the net's parameters (on the CPU on either device:
        ``cuda.ep_update`` is ``cpu.ep_update``); the GPU copies of the parameters are stale after it."""
        K = kernels.implementation(__package__, self.device)
        K.ep_update(x, self.layers(free), self.layers(nudged), self._weights(), self._biases(), beta, lrs)
        self._on_device = None

    def ep_update(self, x, free, nudged, beta: float, lrs) -> None:
        """Apply the EP update (:func:`reference.ep_update`) in place, from the free and nudged states (B, H).

        ``lrs``: one learning rate per weight matrix (α_k also scales b_k), or one float for all."""
        who = "EPNet.ep_update"
        x = self._x(x, who)
        lrs = learning_rates(who, lrs, self.L)
        beta = check_real(who, "beta", beta, nonzero=True)
        free = self._array(who, free, (x.shape[0], self.H), "free state")
        nudged = self._array(who, nudged, (x.shape[0], self.H), "nudged state")
        self._update(x, free, nudged, beta, lrs)

    def train_batch(self, x, y, n_free: int = 20, n_nudged: int = 4, eps: float = 0.5, beta: float = 0.5,
                    lrs=(0.1, 0.05), state=None, cost: str = "paper"):
        """One EP step on a batch: free phase, nudged phase, update. Returns ``(free_state, nudged_state)``.

        ``state`` (B, H) starts the free phase (persistent particles); default zeros.
        """
        who = "EPNet.train_batch"
        x = self._x(x, who)
        B = x.shape[0]
        Y = self.one_hot(y, B, who)
        n_free, n_nudged = check_count(who, "n_free", n_free), check_count(who, "n_nudged", n_nudged)
        eps, beta = check_step_size(who, eps), check_real(who, "beta", beta, nonzero=True)
        lrs = learning_rates(who, lrs, self.L)
        if cost not in ("paper", "code"):
            raise ValueError(f"{who}: cost must be 'paper' or 'code', got {cost!r}")
        s = self._state(state, B, who)
        relax = self._relax_fn(B)
        c = x @ self._W0T.T
        relax(c, s, n_free, eps, 0.0, None)
        free = s.copy()
        relax(c, s, n_nudged, eps, beta * (2.0 if cost == "code" else 1.0), Y)
        self._update(x, free, s, beta, lrs)
        return free, s

    def output(self, X, steps: int = 100, eps: float = 0.5, batch_size: int = 1000) -> np.ndarray:
        """Free-phase outputs (B, n_L) after ``steps`` steps from zero, in chunks of ``batch_size``."""
        who = "EPNet.output"
        X = self._x(X, who)
        steps, eps = check_count(who, "steps", steps), check_step_size(who, eps)
        batch_size = check_count(who, "batch_size", batch_size, minimum=1)
        out = np.empty((X.shape[0], self.sizes[-1]), dtype=self.dtype)
        for i in range(0, X.shape[0], batch_size):
            xb = X[i:i + batch_size]
            s = self.zero_state(xb.shape[0])
            self._relax_fn(xb.shape[0])(xb @ self._W0T.T, s, steps, eps, 0.0, None)
            out[i:i + batch_size] = s[:, self._off[-2]:]
        return out

    def predict(self, X, steps: int = 100, eps: float = 0.5, batch_size: int = 1000) -> np.ndarray:
        """Class labels (argmax of the free-phase output)."""
        return np.argmax(self.output(X, steps, eps, batch_size), axis=1)

    def _parameters_diverged(self) -> str | None:
        """The first parameter that is non-finite or beyond ``MAX_ABS_PARAMETER``, or None."""
        for name, p in self._named_parameters():
            if p.size and not np.max(np.abs(p)) <= self.MAX_ABS_PARAMETER:   # NaN fails the comparison too
                return name
        return None

    def fit(self, X, y, epochs: int = 1, batch_size: int = 20, n_free: int = 20, n_nudged: int = 4,
            eps: float = 0.5, beta: float = 0.5, lrs=(0.1, 0.05), persistent: bool = True,
            random_sign: bool = True, shuffle: bool = False, cost: str = "paper", X_test=None, y_test=None,
            eval_steps: int = 100, max_batches: int | None = None, rng=None, progress: bool = False,
            callback=None, on_diverge: str = "stop") -> dict:
        """Train with EP (defaults: Scellier's net1 recipe). Returns the history.

        ``X`` (n, n_0) in [0, 1], ``y`` (n,) integer labels. ``persistent``: start each free phase
        from the example's last free state (zeros at first), as the code does; otherwise from zero.
        ``random_sign``: β's sign drawn per batch. ``cost``: ``"paper"`` (½‖y - h‖²) or ``"code"``.
        ``max_batches`` caps the batches per epoch (quick runs). ``X_test``/``y_test``: test error per
        epoch with :meth:`predict` (``eval_steps`` free steps from zero).

        Divergence (every parameter is checked after each epoch, the state after each batch): a NaN or
        infinite value, or a parameter beyond ``MAX_ABS_PARAMETER``, restores the parameters of the
        start of that epoch and, with ``on_diverge="stop"`` (default), ends training with
        ``history["diverged"]`` set; with ``"raise"`` it raises :class:`~nnlocal.DivergenceError`.

        History: ``train_error`` (%, at the end of each free phase, before the update, as the code),
        ``train_cost`` (mean C of the free state), ``test_error`` (%), ``epoch_time`` (s, training only),
        one entry per completed epoch; ``diverged`` (bool) and ``diverged_epoch`` (-1 if none).
        """
        who = "EPNet.fit"
        if cost not in ("paper", "code"):
            raise ValueError(f"{who}: cost must be 'paper' or 'code', got {cost!r}")
        if on_diverge not in ("stop", "raise"):
            raise ValueError(f"{who}: on_diverge must be 'stop' or 'raise', got {on_diverge!r}")
        rng = self.rng if rng is None else get_rng(rng)
        X = self._x(X, who, "X")
        n = X.shape[0]
        y = check_labels(who, y, self.sizes[-1], n, "y")
        if (X_test is None) != (y_test is None):
            raise ValueError(f"{who}: give both X_test and y_test, or neither")
        if X_test is not None:
            X_test = self._x(X_test, who, "X_test")
            y_test = check_labels(who, y_test, self.sizes[-1], X_test.shape[0], "y_test")
        epochs = check_count(who, "epochs", epochs)
        batch_size = check_count(who, "batch_size", batch_size, minimum=1)
        n_free, n_nudged = check_count(who, "n_free", n_free), check_count(who, "n_nudged", n_nudged)
        eval_steps = check_count(who, "eval_steps", eval_steps)
        eps, beta = check_step_size(who, eps), check_real(who, "beta", beta, nonzero=True)
        lrs = learning_rates(who, lrs, self.L)
        n_batches = n // batch_size
        if max_batches is not None:
            n_batches = min(n_batches, check_count(who, "max_batches", max_batches))
        if n_batches < 1:
            raise ValueError(f"{who}: {n} examples give no full batch of {batch_size}")
        Y = np.eye(self.sizes[-1], dtype=self.dtype)[y]
        particles = np.zeros((n, self.H), dtype=self.dtype) if persistent else None
        hist = dict(train_error=[], train_cost=[], test_error=[], epoch_time=[])
        diverged_epoch = -1
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=epochs * n_batches, desc="EP", unit="batch", leave=False)
        out0 = self._off[-2]
        force_scale = 2.0 if cost == "code" else 1.0
        relax = self._relax_fn(batch_size)
        for epoch in range(epochs):
            start = self.state_dict()                     # restored if this epoch diverges
            order = rng.permutation(n) if shuffle else None
            signs = rng.choice((-1.0, 1.0), size=n_batches) if random_sign else np.ones(n_batches)
            wrong = 0
            cost_sum = 0.0
            t0 = time.perf_counter()
            with np.errstate(over="ignore", invalid="ignore"):   # divergence is detected and reported below
                for bi in range(n_batches):
                    # slices (views, no copies) when walking the data in order, as the code does
                    idx = slice(bi * batch_size, (bi + 1) * batch_size) if order is None else \
                        order[bi * batch_size:(bi + 1) * batch_size]
                    xb, yb, Yb = X[idx], y[idx], Y[idx]
                    c = xb @ self._W0T.T                      # hoisted input drive, shared by both phases
                    if persistent:
                        s = particles[idx]                    # a view when idx is a slice: relaxed in place
                        s = s if isinstance(idx, slice) else s.copy()
                    else:
                        s = self.zero_state(xb.shape[0])
                    relax(c, s, n_free, eps, 0.0, None)
                    if persistent and not isinstance(idx, slice):
                        particles[idx] = s
                    out = s[:, out0:]
                    batch_cost = float(np.sum(reference.cost(out, Yb)))
                    if not math.isfinite(batch_cost):     # the state went non-finite: so did a parameter
                        diverged_epoch = epoch
                        break
                    wrong += int(np.count_nonzero(np.argmax(out, axis=1) != yb))
                    cost_sum += batch_cost
                    nudged = s.copy()
                    b = beta * signs[bi]
                    relax(c, nudged, n_nudged, eps, b * force_scale, Yb)
                    self._update(xb, s, nudged, b, lrs)
                    if bar is not None:
                        bar.update(1)
            bad = "the state" if diverged_epoch >= 0 else self._parameters_diverged()
            if bad is not None:
                diverged_epoch = epoch
                self.load_state_dict(start)
                if on_diverge == "raise":
                    self.history = self._history(hist, diverged_epoch)
                    raise DivergenceError(f"{who}: {bad} became non-finite or exceeded {self.MAX_ABS_PARAMETER:g} "
                                          f"in epoch {epoch}; the parameters of the start of that epoch were "
                                          f"restored (lower the learning rates)")
                break
            hist["epoch_time"].append(time.perf_counter() - t0)
            seen = n_batches * batch_size
            hist["train_error"].append(100.0 * wrong / seen)
            hist["train_cost"].append(cost_sum / seen)
            if X_test is not None:
                pred = self.predict(X_test, eval_steps, eps)
                hist["test_error"].append(100.0 * float(np.mean(pred != y_test)))
            if callback is not None:
                callback(epoch, self, hist)
        if bar is not None:
            bar.close()
        self.history = self._history(hist, diverged_epoch)
        return self.history

    @staticmethod
    def _history(hist, diverged_epoch) -> dict:
        out = {k: np.asarray(v, dtype=np.float64) for k, v in hist.items()}
        out["diverged"], out["diverged_epoch"] = diverged_epoch >= 0, diverged_epoch
        return out
