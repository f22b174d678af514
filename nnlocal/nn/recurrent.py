r"""Recurrent layers ``RNN`` (tanh), ``LSTM`` and ``GRU`` with a hand-written BPTT backward.

Single layer, batch-first, PyTorch's equations, gate layout and parameter names, so the weights copy
straight into ``torch.nn.RNN/LSTM/GRU(..., batch_first=True)``.

Shapes (B = batch, T = time, I = ``input_size``, H = ``hidden_size``, G = gates·H):

* input ``x`` ``(B, T, I)``; initial state ``h0`` ``(1, B, H)`` (torch's layout; ``(B, H)`` is accepted
  too), and ``c0`` likewise for the LSTM;
* ``weight_ih_l0`` ``(G, I)``, ``weight_hh_l0`` ``(G, H)``, ``bias_ih_l0`` and ``bias_hh_l0`` ``(G,)``
  with the gate blocks stacked in torch's order: RNN G = H; LSTM G = 4H ``[i | f | g | o]``;
  GRU G = 3H ``[r | z | n]``;
* ``forward`` returns ``(output, h_n)`` with output ``(B, T, H)`` (the hidden state at every step)
  and ``h_n`` ``(1, B, H)``; the LSTM returns ``(output, (h_n, c_n))``.

Equations per step (σ = logistic sigmoid, ⊙ = elementwise, x_t ``(B, I)``, h ``(B, H)``)::

    RNN   h' = tanh(x_t W_ihᵀ + b_ih + h W_hhᵀ + b_hh)
    LSTM  [i f g o] = x_t W_ihᵀ + b_ih + h W_hhᵀ + b_hh          (pre-activations, split in 4)
          i, f, o = σ(·),  g = tanh(·),  c' = f ⊙ c + i ⊙ g,  h' = o ⊙ tanh(c')
    GRU   r = σ(x_t W_irᵀ + b_ir + h W_hrᵀ + b_hr),  z = σ(x_t W_izᵀ + b_iz + h W_hzᵀ + b_hz)
          n = tanh(x_t W_inᵀ + b_in + r ⊙ (h W_hnᵀ + b_hn)),  h' = (1 - z) ⊙ n + z ⊙ h

Backward (backpropagation through time)::

    gx = layer.backward(grad_output, grad_h_n=None)            # RNN, GRU
    gx = layer.backward(grad_output, grad_h_n=None, grad_c_n=None)   # LSTM

``grad_output`` is dL/d(output) ``(B, T, H)`` (``None`` when the loss only reads the final state);
``grad_h_n`` (and ``grad_c_n``) are dL/d(final state) in the shape ``forward`` returned, ``None`` for
zero. The return value mirrors the inputs of ``forward``: dL/dx alone if no initial state was given,
``(dL/dx, dL/dh0)`` if ``h0`` was given, and ``(dL/dx, (dL/dh0, dL/dc0))`` for an LSTM given
``(h0, c0)``; dL/dh0 has the shape h0 was given in. Every weight and bias gradient is *added* into
its ``.grad``. The cost: the input projections ``x W_ihᵀ`` of all steps are one GEMM in ``forward``,
and their gradients (dL/dx, dL/dW_ih, dL/dW_hh, the biases) are single GEMMs over all steps in
``backward``; only the ``(B, H) × (H, G)`` recurrence runs step by step.

Forward keeps a copy of x (and returns a fresh ``output``, not a view of its cache), so editing x
or the output in place before ``backward`` does not change the gradients.

Gate scale hook (used by :mod:`nnlocal.methods.arp`): a subclass may return a positive vector ρ
``(G,)`` from ``_gate_scale()``; every gate pre-activation s is then replaced by ρ ⊙ s before its
nonlinearity (for the GRU candidate: ρ_n ⊙ (x W_inᵀ + b_in + r ⊙ (h W_hnᵀ + b_hn))), and backward hands
dL/dρ ``(G,)`` to ``_gate_scale_backward``. The plain layers return ``None`` (no scaling, no cost).
"""
from __future__ import annotations

import math

import numpy as np

from .._checks import check_grad_output, check_input, check_int, check_param_dtype, shape_error
from .activations import sigmoid
from .._rng import get_rng
from .init import uniform
from .module import Module, Parameter

__all__ = ["RNN", "LSTM", "GRU"]


class _RecurrentBase(Module):
    """Parameters, initialisation, input checks and the state/gradient plumbing shared by the three."""

    n_gates = 1
    mode = "RNN_TANH"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, rng=None, dtype=np.float32):
        super().__init__()
        name = type(self).__name__
        self.input_size = check_int(name, "input_size", input_size, 1)
        self.hidden_size = check_int(name, "hidden_size", hidden_size, 1)
        self.use_bias = bool(bias)
        dtype = check_param_dtype(name, dtype)
        rng = get_rng(rng)
        G, H, k = self.n_gates * self.hidden_size, self.hidden_size, 1.0 / math.sqrt(self.hidden_size)
        # torch draws every parameter from U(-1/sqrt(H), 1/sqrt(H)), in registration order
        self.weight_ih_l0 = Parameter(uniform((G, self.input_size), k, rng, dtype))
        self.weight_hh_l0 = Parameter(uniform((G, H), k, rng, dtype))
        if self.use_bias:
            self.bias_ih_l0 = Parameter(uniform((G,), k, rng, dtype))
            self.bias_hh_l0 = Parameter(uniform((G,), k, rng, dtype))
        else:
            self.bias_ih_l0 = None
            self.bias_hh_l0 = None

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}, batch_first=True"
        return s if self.use_bias else s + ", bias=False"

    # ------------------------------------------------------------------ hooks (see module docstring)
    def _gate_scale(self, dtype):
        """ρ ``(G,)`` multiplying every gate pre-activation, or ``None`` (plain layer)."""
        return None

    def _gate_scale_backward(self, grad_rho: np.ndarray) -> None:
        """Receives dL/dρ ``(G,)`` when ``_gate_scale`` returned an array."""

    # ------------------------------------------------------------------ helpers
    def _params(self, dtype):
        w_ih = self.weight_ih_l0.data.astype(dtype, copy=False)
        w_hh = self.weight_hh_l0.data.astype(dtype, copy=False)
        if self.use_bias:
            return w_ih, w_hh, self.bias_ih_l0.data.astype(dtype, copy=False), \
                self.bias_hh_l0.data.astype(dtype, copy=False)
        return w_ih, w_hh, None, None

    def _check_input(self, x):
        check_input(self, x)
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise shape_error(repr(self), f"(B, T, {self.input_size}) (batch-first)", x.shape)
        if x.shape[1] < 1:
            raise shape_error(repr(self), f"(B, T, {self.input_size}) with T >= 1", x.shape)

    def _state(self, s, x, name):
        """Initial state as ``(B, H)`` in x's dtype (zeros if ``None``) and the shape it was given in."""
        B, H = x.shape[0], self.hidden_size
        if s is None:
            return np.zeros((B, H), dtype=x.dtype), None
        check_input(self, s, name)
        if s.shape not in ((1, B, H), (B, H)):
            raise shape_error(repr(self), f"(1, {B}, {H}) or ({B}, {H})", s.shape, name)
        return s.reshape(B, H).astype(x.dtype, copy=False), s.shape

    def _final_grad(self, g, B, dtype, name):
        """dL/d(final state) as ``(B, H)`` (``None`` for zero); given as ``(1, B, H)`` or ``(B, H)``."""
        if g is None:
            return None
        H = self.hidden_size
        check_grad_output(self, g, (B, H) if np.ndim(g) == 2 else (1, B, H), dtype, name)
        return g.reshape(B, H)

    def _param_grads(self, x, h_prev, dsx, dsh):
        """Accumulate the weight grads from the per-step gradients of the pre-activations.

        ``dsx`` ``(B, T, G)`` is dL/d(x_t W_ihᵀ + b_ih), ``dsh`` dL/d(h_{t-1} W_hhᵀ + b_hh) (the same array
        except in the GRU); ``h_prev`` ``(B, T, H)`` holds h_{t-1}. Returns dL/dx ``(B, T, I)``.
        """
        G = dsx.shape[-1]
        dsx2, dsh2 = dsx.reshape(-1, G), dsh.reshape(-1, G)
        self.weight_ih_l0.accumulate_grad(dsx2.T @ x.reshape(-1, self.input_size))
        self.weight_hh_l0.accumulate_grad(dsh2.T @ h_prev.reshape(-1, self.hidden_size))
        if self.use_bias:
            self.bias_ih_l0.accumulate_grad(dsx2.sum(axis=0))
            self.bias_hh_l0.accumulate_grad(dsh2.sum(axis=0))
        return dsx @ self.weight_ih_l0.data.astype(dsx.dtype, copy=False)

    def _check_grad_output(self, grad_output, B, T, dtype):
        if grad_output is None:
            return np.zeros((B, T, self.hidden_size), dtype=dtype)
        check_grad_output(self, grad_output, (B, T, self.hidden_size), dtype)
        return grad_output


class RNN(_RecurrentBase):
    r"""Elman RNN with tanh: h_t = tanh(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh) (torch's ``nn.RNN``).

    Backward, with a_t the pre-activation and dh the running dL/dh_t::

        da_t = (dL/dy_t + dh) ⊙ (1 - h_t²),   dh ← da_t W_hh,   dL/dh0 = dh after step 1
        dL/dW_ih = Σ_t da_tᵀ x_t,  dL/dW_hh = Σ_t da_tᵀ h_{t-1},  dL/db_ih = dL/db_hh = Σ_t Σ_b da_t
    """

    n_gates = 1

    def forward(self, x: np.ndarray, h0: np.ndarray | None = None):
        self._check_input(x)
        h, h0_shape = self._state(h0, x, "h0")
        w_ih, w_hh, b_ih, b_hh = self._params(x.dtype)
        rho = self._gate_scale(x.dtype)
        B, T, H = x.shape[0], x.shape[1], self.hidden_size
        xp = x @ w_ih.T                                     # (B, T, H): all input projections at once
        if b_ih is not None:
            xp += b_ih + b_hh
        hs = np.empty((B, T + 1, H), dtype=x.dtype)        # hs[:, t] = h_{t-1}; hs[:, 0] = h0
        hs[:, 0] = h
        w_hh_t = np.ascontiguousarray(w_hh.T)
        for t in range(T):
            s = xp[:, t]
            s += h @ w_hh_t                                 # xp now holds the (unscaled) pre-activation
            h = np.tanh(s * rho if rho is not None else s)
            hs[:, t + 1] = h
        self._save_for_backward(x.copy(), hs, xp, rho, h0_shape)
        return hs[:, 1:].copy(), h.reshape(1, B, H).copy()

    def backward(self, grad_output, grad_h_n=None):
        x, hs, S, rho, h0_shape = self._saved()
        B, T, H = x.shape[0], x.shape[1], self.hidden_size
        gy = self._check_grad_output(grad_output, B, T, x.dtype)
        dh = self._final_grad(grad_h_n, B, x.dtype, "grad_h_n")
        dh = np.zeros((B, H), dtype=x.dtype) if dh is None else dh.astype(x.dtype, copy=True)
        w_hh = self.weight_hh_l0.data.astype(x.dtype, copy=False)
        dA = np.empty((B, T, H), dtype=x.dtype)            # dL/d(pre-activation after scaling)
        for t in range(T - 1, -1, -1):
            dh += gy[:, t]
            h = hs[:, t + 1]
            da = dh * (1 - h * h)
            dA[:, t] = da
            ds = da * rho if rho is not None else da
            dh = ds @ w_hh
        if rho is not None:
            self._gate_scale_backward((dA * S).sum(axis=(0, 1)))
            dA *= rho                                        # now dL/d(unscaled pre-activation)
        gx = self._param_grads(x, hs[:, :-1], dA, dA)
        if h0_shape is None:
            return gx
        return gx, dh.reshape(h0_shape)


class LSTM(_RecurrentBase):
    r"""Long short-term memory (torch's ``nn.LSTM``): gates ``[i | f | g | o]``, no peepholes.

    Backward per step (dh, dc the running dL/dh_t, dL/dc_t; tc = tanh(c_t))::

        dh += dL/dy_t;  do = dh ⊙ tc;  dc += dh ⊙ o ⊙ (1 - tc²)
        di = dc ⊙ g;  df = dc ⊙ c_{t-1};  dg = dc ⊙ i;  dc ← dc ⊙ f
        da = [di ⊙ i(1-i) | df ⊙ f(1-f) | dg ⊙ (1-g²) | do ⊙ o(1-o)];   dh ← da W_hh
    """

    n_gates = 4
    mode = "LSTM"

    def forward(self, x: np.ndarray, hx=None):
        self._check_input(x)
        if hx is None:
            h0 = c0 = None
        else:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"{self!r}: the initial state must be a tuple (h0, c0), got {type(hx).__name__}")
            h0, c0 = hx
        h, h0_shape = self._state(h0, x, "h0")
        c, c0_shape = self._state(c0, x, "c0")
        if (h0 is None) != (c0 is None):
            raise ValueError(f"{self!r}: give both h0 and c0 or neither")
        w_ih, w_hh, b_ih, b_hh = self._params(x.dtype)
        rho = self._gate_scale(x.dtype)
        B, T, H = x.shape[0], x.shape[1], self.hidden_size
        xp = x @ w_ih.T                                     # (B, T, 4H)
        if b_ih is not None:
            xp += b_ih + b_hh
        gates = np.empty_like(xp)                           # activated i, f, g, o
        hs = np.empty((B, T + 1, H), dtype=x.dtype)
        cs = np.empty((B, T + 1, H), dtype=x.dtype)
        hs[:, 0], cs[:, 0] = h, c
        w_hh_t = np.ascontiguousarray(w_hh.T)
        for t in range(T):
            s = xp[:, t]
            s += h @ w_hh_t
            a = s * rho if rho is not None else s
            gt = gates[:, t]
            gt[:, :2 * H] = sigmoid(a[:, :2 * H])
            gt[:, 2 * H:3 * H] = np.tanh(a[:, 2 * H:3 * H])
            gt[:, 3 * H:] = sigmoid(a[:, 3 * H:])
            c = gt[:, H:2 * H] * c + gt[:, :H] * gt[:, 2 * H:3 * H]
            h = gt[:, 3 * H:] * np.tanh(c)
            hs[:, t + 1], cs[:, t + 1] = h, c
        self._save_for_backward(x.copy(), hs, cs, gates, xp, rho, h0_shape, c0_shape)
        return hs[:, 1:].copy(), (h.reshape(1, B, H).copy(), c.reshape(1, B, H).copy())

    def backward(self, grad_output, grad_h_n=None, grad_c_n=None):
        x, hs, cs, gates, S, rho, h0_shape, c0_shape = self._saved()
        B, T, H = x.shape[0], x.shape[1], self.hidden_size
        gy = self._check_grad_output(grad_output, B, T, x.dtype)
        dh = self._final_grad(grad_h_n, B, x.dtype, "grad_h_n")
        dc = self._final_grad(grad_c_n, B, x.dtype, "grad_c_n")
        dh = np.zeros((B, H), dtype=x.dtype) if dh is None else dh.astype(x.dtype, copy=True)
        dc = np.zeros((B, H), dtype=x.dtype) if dc is None else dc.astype(x.dtype, copy=True)
        w_hh = self.weight_hh_l0.data.astype(x.dtype, copy=False)
        dA = np.empty((B, T, 4 * H), dtype=x.dtype)
        for t in range(T - 1, -1, -1):
            dh += gy[:, t]
            gt = gates[:, t]
            i, f, g, o = gt[:, :H], gt[:, H:2 * H], gt[:, 2 * H:3 * H], gt[:, 3 * H:]
            tc = np.tanh(cs[:, t + 1])
            dc += dh * o * (1 - tc * tc)
            da = dA[:, t]
            da[:, :H] = dc * g * i * (1 - i)
            da[:, H:2 * H] = dc * cs[:, t] * f * (1 - f)
            da[:, 2 * H:3 * H] = dc * i * (1 - g * g)
            da[:, 3 * H:] = dh * tc * o * (1 - o)
            dc *= f
            dh = (da * rho if rho is not None else da) @ w_hh
        if rho is not None:
            self._gate_scale_backward((dA * S).sum(axis=(0, 1)))
            dA *= rho
        gx = self._param_grads(x, hs[:, :-1], dA, dA)
        if h0_shape is None:
            return gx
        return gx, (dh.reshape(h0_shape), dc.reshape(c0_shape))


class GRU(_RecurrentBase):
    r"""Gated recurrent unit (torch's ``nn.GRU``): gates ``[r | z | n]``, the reset gate applied *after*
    the hidden projection (n = tanh(x W_inᵀ + b_in + r ⊙ (h W_hnᵀ + b_hn)), Keras' ``reset_after=True``).

    Backward per step (dh the running dL/dh_t, hn = h_{t-1} W_hnᵀ + b_hn)::

        dh += dL/dy_t;  dn = dh ⊙ (1-z);  dz = dh ⊙ (h_{t-1} - n);  dh_prev = dh ⊙ z
        da_n = dn ⊙ (1-n²);  dr = da_n ⊙ hn;  da_r = dr ⊙ r(1-r);  da_z = dz ⊙ z(1-z)
        dL/d(x-side pre-act) = [da_r | da_z | da_n];   dL/d(h-side) = [da_r | da_z | da_n ⊙ r]
        dh ← dh_prev + dL/d(h-side) W_hh
    """

    n_gates = 3
    mode = "GRU"

    def forward(self, x: np.ndarray, h0: np.ndarray | None = None):
        self._check_input(x)
        h, h0_shape = self._state(h0, x, "h0")
        w_ih, w_hh, b_ih, b_hh = self._params(x.dtype)
        rho = self._gate_scale(x.dtype)
        B, T, H = x.shape[0], x.shape[1], self.hidden_size
        xp = x @ w_ih.T                                     # (B, T, 3H) = x W_ihᵀ + b_ih
        if b_ih is not None:
            xp += b_ih
        hp_all = np.empty_like(xp)                          # h_{t-1} W_hhᵀ + b_hh per step
        S = np.empty_like(xp) if rho is not None else None  # unscaled pre-activations (for dL/dρ)
        gates = np.empty_like(xp)                           # activated r, z, n
        hs = np.empty((B, T + 1, H), dtype=x.dtype)
        hs[:, 0] = h
        w_hh_t = np.ascontiguousarray(w_hh.T)
        for t in range(T):
            hp = hp_all[:, t]
            np.matmul(h, w_hh_t, out=hp)
            if b_hh is not None:
                hp += b_hh
            s = xp[:, t].copy()
            s[:, :2 * H] += hp[:, :2 * H]
            gt = gates[:, t]
            a_rz = s[:, :2 * H] * rho[:2 * H] if rho is not None else s[:, :2 * H]
            gt[:, :2 * H] = sigmoid(a_rz)
            s[:, 2 * H:] += gt[:, :H] * hp[:, 2 * H:]
            gt[:, 2 * H:] = np.tanh(s[:, 2 * H:] * rho[2 * H:] if rho is not None else s[:, 2 * H:])
            if S is not None:
                S[:, t] = s
            z, n = gt[:, H:2 * H], gt[:, 2 * H:]
            h = n + z * (h - n)
            hs[:, t + 1] = h
        self._save_for_backward(x.copy(), hs, hp_all, gates, S, rho, h0_shape)
        return hs[:, 1:].copy(), h.reshape(1, B, H).copy()

    def backward(self, grad_output, grad_h_n=None):
        x, hs, hp_all, gates, S, rho, h0_shape = self._saved()
        B, T, H = x.shape[0], x.shape[1], self.hidden_size
        gy = self._check_grad_output(grad_output, B, T, x.dtype)
        dh = self._final_grad(grad_h_n, B, x.dtype, "grad_h_n")
        dh = np.zeros((B, H), dtype=x.dtype) if dh is None else dh.astype(x.dtype, copy=True)
        w_hh = self.weight_hh_l0.data.astype(x.dtype, copy=False)
        dA = np.empty((B, T, 3 * H), dtype=x.dtype)        # dL/d(scaled pre-activations)
        dSh = np.empty((B, T, 3 * H), dtype=x.dtype)       # dL/d(h W_hhᵀ + b_hh)
        for t in range(T - 1, -1, -1):
            dh += gy[:, t]
            gt = gates[:, t]
            r, z, n = gt[:, :H], gt[:, H:2 * H], gt[:, 2 * H:]
            hprev = hs[:, t]
            da = dA[:, t]
            da[:, 2 * H:] = dh * (1 - z) * (1 - n * n)
            dsn = da[:, 2 * H:] * rho[2 * H:] if rho is not None else da[:, 2 * H:]
            da[:, :H] = dsn * hp_all[:, t, 2 * H:] * r * (1 - r)
            da[:, H:2 * H] = dh * (hprev - n) * z * (1 - z)
            dsh = dSh[:, t]
            dsh[:, :2 * H] = da[:, :2 * H] * rho[:2 * H] if rho is not None else da[:, :2 * H]
            dsh[:, 2 * H:] = dsn * r
            dh = dh * z + dsh @ w_hh
        if rho is not None:
            self._gate_scale_backward((dA * S).sum(axis=(0, 1)))
            dA *= rho                                        # dL/d(x W_ihᵀ + b_ih)
        gx = self._param_grads(x, hs[:, :-1], dA, dSh)
        if h0_shape is None:
            return gx
        return gx, dh.reshape(h0_shape)
