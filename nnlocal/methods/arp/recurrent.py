r"""The AutoRot recurrent cells (nnlocal extension, not in arpkeras: its README lists
AutoRotSimpleRNN/LSTM/GRU, the package never shipped them).

Each gate pre-activation ``a = W x_t + U h_{t-1} + b_ih + b_hh`` is an affine map of (x_t, h_{t-1});
both inputs are fed the Q-point, so per gate row q = xQ·(ΣW + ΣU) + b_ih + b_hh
(:func:`~nnlocal.methods.arp.reference.recurrent_q`) and ρ scales the whole pre-activation, applied
per gate before that gate's own nonlinearity (through the gate-scale hook of
:mod:`nnlocal.nn.recurrent`). The GRU candidate ``x W_n + b_in + r ⊙ (h U_n + b_hn)`` takes r = 1
(its largest value: r ∈ [0, 1] only shrinks the recurrent part), giving the same formula. L is set
per gate type: by default 4 for the sigmoid gates and 2 for the tanh candidate/cell (the README's
table), and ``xmin_lim=-1, xmax_lim=1`` (the hidden state of a tanh cell lies in (−1, 1); data
scaled to [0, 1] or [−1, 1]).
"""
from __future__ import annotations

import numpy as np

from ..._checks import check_finite_input
from ...nn.recurrent import GRU, LSTM, RNN
from .layers import _ARPParams, check_arp_input
from .reference import recurrent_q, rho_from_q

__all__ = ["AutoRotRNN", "AutoRotLSTM", "AutoRotGRU"]


class _AutoRotRecurrent(_ARPParams):
    """Per-gate ARP for the recurrent cells through the gate-scale hook of :mod:`nnlocal.nn.recurrent`.

    q = xQ·(W_ih.sum(1) + W_hh.sum(1)) + b_ih + b_hh ``(G,)``: the gate pre-activations' affine map
    on (x_t, h_{t-1}) = (xQ·1, xQ·1); ρ = L_gate/(|q| + eps); the backward of that affine map on the
    constant input adds xQ·c to every entry of row j of W_ih and W_hh and c to both biases.
    """

    gate_L_default = (4.0,)

    def __init__(self, input_size, hidden_size, bias=True, *, L=None, xmin_lim=-1.0, xmax_lim=1.0, xQ="auto",
                 autorot=True, eps=1e-5, trainable_L=False, detach_rho=False, rng=None, dtype=np.float32):
        # the next class in the MRO is the plain cell (RNN / LSTM / GRU): _ARPParams has no __init__
        super().__init__(input_size, hidden_size, bias, rng, dtype)
        self._setup_rec_arp(L, xmin_lim, xmax_lim, xQ, autorot, eps, trainable_L, detach_rho)

    def _setup_rec_arp(self, L, xmin_lim, xmax_lim, xQ, autorot, eps, trainable_L, detach_rho):
        if L is None:
            L = self.gate_L_default
        self._init_arp(L=L, xmin_lim=xmin_lim, xmax_lim=xmax_lim, xQ=xQ, autorot=autorot, eps=eps,
                       trainable_L=trainable_L, detach_rho=detach_rho, n_L=self.n_gates)
        if np.ndim(self.xQ):
            raise ValueError(f"{type(self).__name__}: xQ must be a number for recurrent layers (x and h share it)")

    def extra_repr(self) -> str:
        return super().extra_repr() + ", " + self._arp_repr()

    def forward(self, x, hx=None):
        check_arp_input(self, x)
        for i, state in enumerate(hx if isinstance(hx, (tuple, list)) else (hx,)):
            if isinstance(state, np.ndarray):
                check_finite_input(self, state, "initial state" if i == 0 else "initial cell state")
        return super().forward(x, hx)

    def _L_rows(self, dtype):
        return np.repeat(np.asarray(self._L_value(dtype), dtype=dtype), self.hidden_size)

    def _rho_terms(self, q):
        return rho_from_q(q, self._L_rows(q.dtype), self.eps, self.eps_outside)

    def _accumulate_L_grad(self, gL_per_row):
        self.L.accumulate_grad(gL_per_row.reshape(self.n_gates, self.hidden_size).sum(axis=1)
                               .astype(self.L.data.dtype))

    def q(self, input_shape=None) -> np.ndarray:
        """q ``(G,)`` per gate row (torch's gate order; :func:`reference.recurrent_q`)."""
        b_ih, b_hh = (self.bias_ih_l0.data, self.bias_hh_l0.data) if self.use_bias else (None, None)
        return recurrent_q(self.weight_ih_l0.data, self.weight_hh_l0.data, b_ih, b_hh, self.xQ)

    def _gate_scale(self, dtype):
        if not self.autorot:
            object.__setattr__(self, "_arp_cache", None)
            return None
        q = self.q().astype(dtype, copy=False)
        rho, drho_dq, drho_dL = self._rho_terms(q)
        object.__setattr__(self, "_arp_cache", (drho_dq, drho_dL))
        return rho

    def _gate_scale_backward(self, grad_rho):
        if self.detach_rho:
            return
        drho_dq, drho_dL = self._arp_cache
        c = self._push_rho_grad(grad_rho, drho_dq, drho_dL)
        xq_c = c[:, None] * c.dtype.type(self.xQ)
        self.weight_ih_l0.accumulate_grad(np.broadcast_to(xq_c, self.weight_ih_l0.shape))
        self.weight_hh_l0.accumulate_grad(np.broadcast_to(xq_c, self.weight_hh_l0.shape))
        if self.use_bias:
            self.bias_ih_l0.accumulate_grad(c)
            self.bias_hh_l0.accumulate_grad(c)


_REC_DOC = """
    ARP arguments (keyword-only; nnlocal extension, not in arpkeras): ``L=None`` (per gate type:
    {L_doc}; a number applies to every gate, a sequence gives one per gate type in torch's order),
    ``xmin_lim=-1``, ``xmax_lim=1`` (so xQ = 3), ``xQ="auto"``, ``autorot=True``, ``eps=1e-5``,
    ``trainable_L=False`` (one trainable L per gate type, ``L.shape == ({n},)``), ``detach_rho=False``.
    ``autorot=False`` is exactly the plain layer. Forward/backward signatures are the plain layer's.
"""


class AutoRotRNN(_AutoRotRecurrent, RNN):
    __doc__ = ("ARP Elman RNN (README's ``AutoRotSimpleRNN``): h' = tanh(ρ ⊙ (x W_ihᵀ + b_ih + h W_hhᵀ + b_hh)),"
               " ρ = L/(|xQ(ΣW_ih + ΣW_hh) + b_ih + b_hh| + eps) per hidden unit.\n"
               + _REC_DOC.format(L_doc="2 for the tanh unit", n=1))
    gate_L_default = (2.0,)


class AutoRotLSTM(_AutoRotRecurrent, LSTM):
    __doc__ = ("ARP LSTM (README's ``AutoRotLSTM``): every gate pre-activation [i f g o] is scaled by its"
               " own ρ before σ/tanh; the cell update c' = f c + i g, h' = o tanh(c') is unchanged.\n"
               + _REC_DOC.format(L_doc="4 for the sigmoid gates i, f, o and 2 for the tanh candidate g", n=4))
    gate_L_default = (4.0, 4.0, 2.0, 4.0)


class AutoRotGRU(_AutoRotRecurrent, GRU):
    __doc__ = ("ARP GRU (README's ``AutoRotGRU``): r, z and the candidate n are scaled by their own ρ;"
               " n = tanh(ρ_n ⊙ (x W_inᵀ + b_in + r ⊙ (h W_hnᵀ + b_hn))), with q_n computed at r = 1.\n"
               + _REC_DOC.format(L_doc="4 for the sigmoid gates r, z and 2 for the tanh candidate n", n=3))
    gate_L_default = (4.0, 4.0, 2.0)
