r"""Symmetric equilibrium propagation for layered networks (Scellier & Bengio 2017).

Source: B. Scellier and Y. Bengio, "Equilibrium Propagation: Bridging the Gap between Energy-Based
Models and Backpropagation", Frontiers in Computational Neuroscience 11:24 (2017), and the authors'
Theano code (``bscellier/Towards-a-Biologically-Plausible-Backprop``, ``model.py``/``train_model.py``).
This is nnlocal's own implementation of the equations below.

Model (what is implemented, exactly)
------------------------------------
Layers x = h_0 (clamped input, size n_0), h_1, …, h_L (h_L = the output, size n_L); states are row
vectors in [0, 1]. ρ(s) = clip(s, 0, 1) (hard sigmoid); ``weights[k]`` is W_k of shape (n_k, n_{k+1})
coupling layer k and k+1 symmetrically; ``biases[k]`` (n_{k+1},) belongs to layer k+1.

    E(s)  = ½ Σ_{k≥1} ‖h_k‖² - Σ_{k=0}^{L-1} ρ(h_k) W_k ρ(h_{k+1})ᵀ - Σ_{k≥1} b_{k-1}·ρ(h_k)
    C(s)  = ½ ‖y - h_L‖²                      (y one-hot)
    F     = E + β C

Dynamics (the code's discrete step, synchronous over all layers, ε = step size)::

    h_k <- clip(h_k - ε ∂F/∂h_k, 0, 1)
        = clip(h_k + ε (ρ'(h_k) ⊙ (ρ(h_{k-1}) W_{k-1} + ρ(h_{k+1}) W_kᵀ + b_{k-1}) - h_k), 0, 1)
          (+ ε β (y - h_L) on the output)

ρ' is taken as 1 on the closed interval [0, 1] (Theano's clip gradient), so on the state space, where
ρ(h) = h, this is ``h_k <- clip(h_k + ε (d_k - h_k))`` with the drive ``d_k`` above - what the kernels
(:mod:`nnlocal.methods.eqprop.reference`) compute. The input drive ``x W_0`` is hoisted out of the loop.

Learning: after a free phase (β = 0, ``n_free`` steps) reaching s⁰ and a nudged phase (``n_nudged``
steps from s⁰) reaching s^β, with per-layer learning rates α_k and the batch mean,

    ΔW_k = (α_k / β) · mean_b [ ρ(h_k^β)ᵀ ρ(h_{k+1}^β) - ρ(h_k⁰)ᵀ ρ(h_{k+1}⁰) ]
    Δb_k = (α_k / β) · mean_b [ ρ(h_{k+1}^β) - ρ(h_{k+1}⁰) ]

= -(α_k/β) ∂/∂θ [E(s^β) - E(s⁰)], which tends to -α_k ∂C(s⁰)/∂θ as β → 0 (the EP theorem; the
tests check it against BPTT through the relaxation). For k = 0 the two input terms share x, so
ΔW_0 = (α_0/β) xᵀ(ρ(h_1^β) - ρ(h_1⁰))/B: one GEMM accumulated straight into W_0 (BLAS ``gemm`` with
β = 1, no temporary).

Training recipe of the code (``fit`` defaults, "net1": 784-500-10, batch 20, 20 free / 4 nudged steps,
ε 0.5, β 0.5, α = (0.1, 0.05)): Glorot-uniform weights U(±√(6/(n_k+n_{k+1}))), zero biases;
persistent particles (each training example keeps its hidden/output state between epochs, zeros at
first; ``persistent=True``); the sign of β drawn at random for every batch (``random_sign=True``);
the training error is measured at the end of each free phase, before the update.

Where nnlocal differs (documented choices)
------------------------------------------
* The cost: the paper (and this brief) write C = ½‖y - h_L‖²; the released code uses ‖y - h_L‖²
  (no ½), which doubles the nudging force for the same β (the update still divides by β, so it
  also doubles the effective learning rates). ``cost="code"`` reproduces the code exactly.
* Test error: the code validated with persistent particles that also carried over between epochs;
  nnlocal's :meth:`EPNet.predict` relaxes from zero for ``steps`` (default 100) free steps.
* Weight layout (n_k, n_{k+1}) = (from lower, to upper), as in the code (not torch's (out, in));
  internally each W_k is stored transposed and C-contiguous, and ``weights[k]`` is a view.
* Extensions: ``shuffle=True`` (the code walks the data in order); float64; ``kernel="fused"|"blas"``.
"""
from __future__ import annotations

import time

import numpy as np

from ..._checks import check_finite
from ..._rng import get_rng
from ... import kernels
from ...kernels import check_device

__all__ = ["EPNet", "rho", "SCELLIER_NET1"]

#: the code's "net1" hyperparameters (train_model.py)
SCELLIER_NET1 = dict(hidden_sizes=[500], epochs=25, batch_size=20, n_free=20, n_nudged=4, eps=0.5, beta=0.5,
                     lrs=(0.1, 0.05))


def rho(s: np.ndarray) -> np.ndarray:
    """Hard sigmoid ρ(s) = clip(s, 0, 1)."""
    return np.clip(s, 0, 1)


try:  # imported eagerly, so that a later threadpoolctl limit (benchmarks, tests) also pins scipy's BLAS
    from scipy.linalg.blas import get_blas_funcs as _get_blas_funcs
except ImportError:  # pragma: no cover
    _get_blas_funcs = None
_GEMM = {}


def _gemm_acc(alpha, a, b, c_f):
    """``c_f += alpha · a @ b`` in place with BLAS gemm (β = 1): ``c_f`` F-contiguous (m, n),
    ``a`` (m, k) (ideally F-contiguous, e.g. the transpose of a C-contiguous batch), ``b`` (k, n).
    Twice as fast as ``c += alpha * (a @ b)`` for W_0's update (no temporary, one pass over W_0)."""
    key = c_f.dtype.char
    if key not in _GEMM:
        _GEMM[key] = None if _get_blas_funcs is None else _get_blas_funcs("gemm", (c_f,))
    gemm = _GEMM[key]
    if gemm is None or not c_f.flags.f_contiguous:  # pragma: no cover
        c_f += alpha * (a @ b)
        return
    if b.flags.c_contiguous and not b.flags.f_contiguous:   # pass bᵀ (F-contiguous) and let BLAS transpose
        out = gemm(alpha, a, b.T, beta=1.0, c=c_f, overwrite_c=True, trans_b=True)
    else:
        out = gemm(alpha, a, b, beta=1.0, c=c_f, overwrite_c=True)
    if out.ctypes.data != c_f.ctypes.data:  # pragma: no cover - BLAS made a copy
        c_f[...] = out


class EPNet:
    r"""Layered symmetric EP network (see the module docstring for the equations).

    Parameters
    ----------
    sizes : [n_0 (input), n_1, …, n_L (output)], e.g. ``[784, 500, 10]``.
    rng : None | int | Generator (Glorot init and, in :meth:`fit`, the β signs and shuffling).
    dtype : float32 (default) or float64.
    kernel : ``"auto"`` (default: the fused Numba loop, except for batches of at least 64 examples when
        a coupling between non-input layers has 65,536 entries or more - there BLAS products plus the
        fused elementwise update win; measured: 784-500-10 batch 20, fused 1.9x faster; 784-500-500-10
        batch 20, fused 1.4x faster; batch 100, BLAS 1.3x; batch 500, BLAS 1.6x), ``"fused"`` or ``"blas"``.
    device : ``"cpu"`` or ``"cuda"`` (the relaxation runs the :mod:`nnlocal.kernels.cuda` twin of the
        CPU kernel, all steps in one launch; the input drive and the update stay on the CPU).

    Attributes: ``weights`` (list of (n_k, n_{k+1}) views), ``biases`` (list of (n_{k+1},) views),
    ``history`` of the last :meth:`fit`. A state is one packed (B, n_1 + … + n_L) array;
    :meth:`layers` splits it into per-layer views.
    """

    BLAS_MIN_COUPLING = 65536
    BLAS_MIN_BATCH = 64

    def __init__(self, sizes, rng=None, dtype=np.float32, kernel: str = "auto", device: str = "cpu"):
        if kernel not in ("auto", "fused", "blas"):
            raise ValueError(f"EPNet: kernel must be 'auto', 'fused' or 'blas', got {kernel!r}")
        sizes = [int(n) for n in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(f"EPNet: sizes must list at least an input and an output size, got {sizes}")
        self.device = check_device(device, "EPNet")
        self.sizes = sizes
        self.dtype = np.dtype(dtype)
        self.rng = get_rng(rng)
        self.L = len(sizes) - 1                      # number of non-input layers
        self.H = int(sum(sizes[1:]))                 # packed state width
        self._off = np.concatenate([[0], np.cumsum(sizes[1:])]).astype(np.int64)
        # W_0 stored transposed (n_1, n_0) C-contiguous: weights[0] is an F-contiguous view
        self._W0T = np.empty((sizes[1], sizes[0]), dtype=self.dtype)
        # couplings between non-input layers, transposed and packed in one buffer (the fused kernel's layout)
        self._vt = np.empty(sum(a * b for a, b in zip(sizes[1:-1], sizes[2:])), dtype=self.dtype)
        self._VT = []
        o = 0
        for a, b in zip(sizes[1:-1], sizes[2:]):
            self._VT.append(self._vt[o:o + a * b].reshape(b, a))
            o += a * b
        self._b = np.zeros(self.H, dtype=self.dtype)
        for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            lim = np.sqrt(6.0 / (a + b))
            self.weights[k][...] = self.rng.uniform(-lim, lim, size=(a, b))
        self.kernel = kernel
        self._big_coupling = any(a * b >= self.BLAS_MIN_COUPLING for a, b in zip(sizes[1:-1], sizes[2:]))
        self.history: dict | None = None

    # ---- parameters ---------------------------------------------------------------------------
    @property
    def weights(self) -> list:
        """[W_0, …, W_{L-1}], W_k of shape (n_k, n_{k+1}) - views: in-place edits change the net."""
        return [self._W0T.T] + [VT.T for VT in self._VT]

    @property
    def biases(self) -> list:
        """[b_0, …, b_{L-1}], b_k of shape (n_{k+1},) (the bias of layer k+1) - views."""
        return [self._b[self._off[k]:self._off[k + 1]] for k in range(self.L)]

    def set_parameters(self, weights, biases) -> "EPNet":
        """Copy ``weights`` (list of (n_k, n_{k+1})) and ``biases`` (list of (n_{k+1},)) into the net."""
        for dst, src in zip(self.weights, weights):
            if dst.shape != np.shape(src):
                raise ValueError(f"EPNet.set_parameters: weight of shape {np.shape(src)}, expected {dst.shape}")
            dst[...] = src
        for dst, src in zip(self.biases, biases):
            if dst.shape != np.shape(src):
                raise ValueError(f"EPNet.set_parameters: bias of shape {np.shape(src)}, expected {dst.shape}")
            dst[...] = src
        return self

    def __repr__(self) -> str:
        return f"EPNet({'-'.join(map(str, self.sizes))}, dtype={self.dtype}, kernel={self.kernel!r})"

    # ---- state helpers ------------------------------------------------------------------------
    def layers(self, state: np.ndarray) -> list:
        """Split a packed state (B, H) into the per-layer views [h_1, …, h_L]."""
        return [state[:, self._off[k]:self._off[k + 1]] for k in range(self.L)]

    def zero_state(self, B: int) -> np.ndarray:
        return np.zeros((B, self.H), dtype=self.dtype)

    def _x(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim != 2 or x.shape[1] != self.sizes[0]:
            raise ValueError(f"EPNet: expected inputs of shape (B, {self.sizes[0]}), got {x.shape}")
        return x

    def one_hot(self, y) -> np.ndarray:
        """Integer labels (B,) -> one-hot (B, n_L); a (B, n_L) array is returned as is (cast)."""
        y = np.asarray(y)
        if y.ndim == 2:
            return y.astype(self.dtype, copy=False)
        return np.eye(self.sizes[-1], dtype=self.dtype)[y.astype(np.int64)]

    # ---- energy and cost ----------------------------------------------------------------------
    def energy(self, x, state) -> np.ndarray:
        """E per sample (B,): ½Σ‖h_k‖² - Σ ρ(h_k) W_k ρ(h_{k+1}) - Σ b·ρ(h_k)."""
        x = self._x(x)
        hs = self.layers(np.asarray(state, dtype=self.dtype))
        below = [x] + [rho(h) for h in hs[:-1]]
        e = 0.5 * sum(np.sum(h * h, axis=1) for h in hs)
        for W, b, lo, h in zip(self.weights, self.biases, below, hs):
            r = rho(h)
            e = e - np.sum((lo @ W) * r, axis=1) - r @ b
        return e

    def cost(self, state, y) -> np.ndarray:
        """C per sample (B,): ½‖y - h_L‖² (y labels or one-hot)."""
        out = np.asarray(state)[:, self._off[-2]:]
        return 0.5 * np.sum((self.one_hot(y) - out) ** 2, axis=1)

    # ---- relaxation (the one place that calls the kernels) -------------------------------------
    def input_drive(self, x) -> np.ndarray:
        """The loop invariant x W_0 (B, n_1) - computed once per batch (BLAS)."""
        return self._x(x) @ self._W0T.T

    def kernel_for(self, batch: int) -> str:
        """Which relaxation kernel a batch of this size uses (``"fused"`` or ``"blas"``)."""
        if self.kernel != "auto":
            return self.kernel
        return "blas" if (self._big_coupling and batch >= self.BLAS_MIN_BATCH) else "fused"

    def _relax_driven(self, c, s, steps, eps, beta, target):
        K = kernels.implementation(__package__, self.device)
        if self.kernel_for(s.shape[0]) == "fused":
            return K.ep_relax(c, self._vt, self._b, s, self.sizes[1:], steps, eps, beta, target)
        return K.ep_relax_blas(c, [VT.T for VT in self._VT], self._b, s, self.sizes[1:], steps, eps, beta, target)

    def relax(self, x, steps: int = 20, eps: float = 0.5, beta: float = 0.0, target=None, state=None,
              info: bool = False, drive=None):
        """Relax for ``steps`` steps of size ``eps`` with input ``x`` (B, n_0) clamped.

        ``beta != 0`` nudges the output towards ``target`` (labels or one-hot). ``state`` (B, H) is the
        starting state (copied; clipped into [0, 1]); default zeros. ``drive`` may pass a precomputed
        :meth:`input_drive`. Returns the new state, or ``(state, residuals)`` with ``info=True``
        (residuals (steps,): Σ (Δs)² per step).
        """
        x = self._x(x)
        B = x.shape[0]
        s = self.zero_state(B) if state is None else np.clip(np.array(state, dtype=self.dtype), 0, 1)
        if s.shape != (B, self.H):
            raise ValueError(f"EPNet.relax: state of shape {s.shape}, expected {(B, self.H)}")
        c = self.input_drive(x) if drive is None else drive
        tgt = None if beta == 0 else self.one_hot(target)
        res = self._relax_driven(c, s, int(steps), eps, beta, tgt)
        return (s, res) if info else s

    # ---- learning -----------------------------------------------------------------------------
    def ep_update(self, x, free, nudged, beta: float, lrs) -> None:
        """Apply the EP update (module docstring) in place, from the free and nudged states (B, H).

        ``lrs``: one learning rate per weight matrix (α_k also scales b_k), or one float for all."""
        x = self._x(x)
        lrs = [float(lrs)] * self.L if np.isscalar(lrs) else list(lrs)
        if len(lrs) != self.L:
            raise ValueError(f"EPNet.ep_update: need {self.L} learning rates, got {len(lrs)}")
        for name, st in (("free", free), ("nudged", nudged)):
            if np.shape(st) != (x.shape[0], self.H):
                raise ValueError(f"EPNet.ep_update: {name} state of shape {np.shape(st)}, "
                                 f"expected {(x.shape[0], self.H)}")
        self._ep_update(x, np.asarray(free, dtype=self.dtype), np.asarray(nudged, dtype=self.dtype), beta, lrs)

    def _ep_update(self, x, free, nudged, beta, lrs) -> None:
        # states are in [0, 1], so ρ(h) = h
        B = x.shape[0]
        t = self.dtype.type
        off = self._off
        diff = nudged - free
        # W_0 += α_0/(βB) · xᵀ (h1^β - h1⁰): one gemm accumulated in place (weights[0] is F-contiguous)
        _gemm_acc(t(lrs[0] / (beta * B)), x.T, diff[:, : off[1]], self._W0T.T)
        for k in range(1, self.L):
            lo, mid, hi = off[k - 1], off[k], off[k + 1]
            self._VT[k - 1] += t(lrs[k] / (beta * B)) * (nudged[:, mid:hi].T @ nudged[:, lo:mid]
                                                          - free[:, mid:hi].T @ free[:, lo:mid])
        dsum = diff.sum(axis=0)
        for k in range(self.L):
            self._b[off[k]:off[k + 1]] += t(lrs[k] / (beta * B)) * dsum[off[k]:off[k + 1]]

    def train_batch(self, x, y, n_free: int = 20, n_nudged: int = 4, eps: float = 0.5, beta: float = 0.5,
                    lrs=(0.1, 0.05), state=None, cost: str = "paper"):
        """One EP step on a batch: free phase, nudged phase, update. Returns ``(free_state, nudged_state)``.

        ``state`` (B, H) starts the free phase (persistent particles); default zeros.
        """
        x = self._x(x)
        c = self.input_drive(x)
        s = self.zero_state(x.shape[0]) if state is None else np.clip(np.array(state, dtype=self.dtype), 0, 1)
        self._relax_driven(c, s, int(n_free), eps, 0.0, None)
        free = s.copy()
        force = beta * (2.0 if cost == "code" else 1.0)
        self._relax_driven(c, s, int(n_nudged), eps, force, self.one_hot(y))
        self.ep_update(x, free, s, beta, lrs)
        return free, s

    def output(self, X, steps: int = 100, eps: float = 0.5, batch_size: int = 1000) -> np.ndarray:
        """Free-phase outputs (B, n_L) after ``steps`` steps from zero, in chunks of ``batch_size``."""
        X = self._x(X)
        out = np.empty((X.shape[0], self.sizes[-1]), dtype=self.dtype)
        for i in range(0, X.shape[0], batch_size):
            s = self.relax(X[i:i + batch_size], steps, eps)
            out[i:i + batch_size] = s[:, self._off[-2]:]
        return out

    def predict(self, X, steps: int = 100, eps: float = 0.5, batch_size: int = 1000) -> np.ndarray:
        """Class labels (argmax of the free-phase output)."""
        return np.argmax(self.output(X, steps, eps, batch_size), axis=1)

    def fit(self, X, y, epochs: int = 1, batch_size: int = 20, n_free: int = 20, n_nudged: int = 4,
            eps: float = 0.5, beta: float = 0.5, lrs=(0.1, 0.05), persistent: bool = True,
            random_sign: bool = True, shuffle: bool = False, cost: str = "paper", X_test=None, y_test=None,
            eval_steps: int = 100, max_batches: int | None = None, rng=None, progress: bool = False,
            callback=None) -> dict:
        """Train with EP (defaults: Scellier's net1 recipe). Returns the history.

        ``X`` (n, n_0) in [0, 1], ``y`` (n,) integer labels. ``persistent``: start each free phase
        from the example's last free state (zeros at first), as the code does; otherwise from zero.
        ``random_sign``: β's sign drawn per batch. ``cost``: ``"paper"`` (½‖y - h‖²) or ``"code"``.
        ``max_batches`` caps the batches per epoch (quick runs). ``X_test``/``y_test``: test error per
        epoch with :meth:`predict` (``eval_steps`` free steps from zero).

        History: ``train_error`` (%, at the end of each free phase, before the update, as the code),
        ``train_cost`` (mean C of the free state), ``test_error`` (%), ``epoch_time`` (s, training only).
        """
        if cost not in ("paper", "code"):
            raise ValueError(f"EPNet.fit: cost must be 'paper' or 'code', got {cost!r}")
        rng = self.rng if rng is None else get_rng(rng)
        X = self._x(X)
        lrs = [float(lrs)] * self.L if np.isscalar(lrs) else list(lrs)
        if len(lrs) != self.L:
            raise ValueError(f"EPNet.fit: need {self.L} learning rates for sizes {self.sizes}, got {len(lrs)}")
        y = np.asarray(y).astype(np.int64)
        n = X.shape[0]
        n_batches = n // batch_size
        if max_batches is not None:
            n_batches = min(n_batches, int(max_batches))
        if n_batches < 1:
            raise ValueError(f"EPNet.fit: {n} examples give no full batch of {batch_size}")
        Y = self.one_hot(y)
        particles = np.zeros((n, self.H), dtype=self.dtype) if persistent else None
        hist = dict(train_error=[], train_cost=[], test_error=[], epoch_time=[])
        bar = None
        if progress:
            try:
                from tqdm.auto import tqdm
                bar = tqdm(total=epochs * n_batches, desc="EP", unit="batch", leave=False)
            except ImportError:  # pragma: no cover
                bar = None
        out0 = self._off[-2]
        force_scale = 2.0 if cost == "code" else 1.0
        for epoch in range(epochs):
            order = rng.permutation(n) if shuffle else None
            signs = rng.choice((-1.0, 1.0), size=n_batches) if random_sign else np.ones(n_batches)
            wrong = 0
            cost_sum = 0.0
            t0 = time.perf_counter()
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
                self._relax_driven(c, s, n_free, eps, 0.0, None)
                if persistent and not isinstance(idx, slice):
                    particles[idx] = s
                out = s[:, out0:]
                wrong += int(np.count_nonzero(np.argmax(out, axis=1) != yb))
                cost_sum += 0.5 * float(np.sum((Yb - out) ** 2))
                nudged = s.copy()
                b = beta * signs[bi]
                self._relax_driven(c, nudged, n_nudged, eps, b * force_scale, Yb)
                self._ep_update(xb, s, nudged, b, lrs)
                if bar is not None:
                    bar.update(1)
            hist["epoch_time"].append(time.perf_counter() - t0)
            check_finite("EPNet.fit: weights", self._W0T)
            seen = n_batches * batch_size
            hist["train_error"].append(100.0 * wrong / seen)
            hist["train_cost"].append(cost_sum / seen)
            if X_test is not None:
                pred = self.predict(X_test, eval_steps, eps)
                hist["test_error"].append(100.0 * float(np.mean(pred != np.asarray(y_test))))
            if callback is not None:
                callback(epoch, self, hist)
        if bar is not None:
            bar.close()
        self.history = {k: np.asarray(v) for k, v in hist.items()}
        return self.history
