r"""Auto-Rotating Perceptrons (ARP): Saromo, Villota & Villanueva, "Auto-Rotating Perceptrons",
LatinX in AI workshop at NeurIPS 2019 (arXiv:1910.02483); reference code ``arpkeras`` 1.0.0
(DanielSaromo/ARP, Apache-2.0). The maths below is restated from ``shared/spec/methods.md`` §2.

The rule (one rule for every layer in this file)
-------------------------------------------------
An ARP layer is an ordinary affine layer A (Dense, a convolution, a transposed convolution, a
separable or depthwise convolution, the gate pre-activations of a recurrent cell) followed by a
per-unit rescaling of its pre-activation before the nonlinearity φ::

    u  = A(x)                               the layer's own pre-activation          (B, *out)
    q  = A(xQ · 1)                          the same map on a constant "Q-point" input of x's shape
                                            (same padding/stride/dilation; no batch dependence)
    ρ  = L / (|q| + eps)                    per unit (and, with 'same' padding, per position)
    z  = ρ ⊙ u,     y = φ(z)

with ``xQ = 2·xmax_lim − xmin_lim`` (``xQ="auto"``), the limits ``[xmin_lim, xmax_lim]`` being the
range of anything a unit can receive (see :func:`limits_for`). Because ρ > 0, the sign of u and the
decision boundary {u = 0} are unchanged ("auto-rotation" of the affine function about its zero set);
in 1-D, |u(x)| ≤ |q| on the whole input range, so |z| ≤ L: the unit works inside the dynamic
region [−L, L] of φ, away from saturation. ``autorot=False`` gives the plain layer, y = φ(u).

Backward (g = dL/dz = φ'(z) ⊙ dL/dy; sums run over the batch)::

    dL/du  = g ⊙ ρ                                   -> through A's own backward: dL/dx, dL/dW, dL/db
    dL/dρ  = Σ_b g ⊙ u
    dρ/dq  = −L·sign(q) / (|q| + eps)² = −ρ·sign(q)/(|q| + eps)       (sign(0) = 0, as TF's |·|)
    c      = dL/dρ ⊙ dρ/dq                           -> through A's backward *on the constant input*:
                                                        the xQ-terms of dL/dW and c for dL/db
    dL/dL  = Σ dL/dρ / (|q| + eps)                   (only with ``trainable_L=True``)

Gradients flow through ρ as in the original (Keras autodiff, no stop-gradient);
``detach_rho=True`` drops the c-term (extension, for teaching). With eps = 0, z is invariant to
scaling a unit's weights and bias by α > 0, so Σ W ∂L/∂W + b ∂L/∂b = 0 per unit (tested).

How each layer evaluates A(xQ·1)
--------------------------------
* Dense: q = xQ·ΣᵢWᵢ + b in closed form (one matrix-vector product, batch independent).
* Convolutions, transposed, separable, depthwise: the layer's own forward on a single constant
  image ``xQ·ones((1, *x.shape[1:]))`` (1/B of the main cost), and its own backward with c as the
  output gradient for the xQ-terms. With ``padding='valid'`` q is the same at every position;
  with ``'same'`` (or any zero padding) border positions sum fewer taps, so q and ρ vary spatially,
  exactly like the original.
* Recurrent (extension, not in arpkeras — its README lists AutoRotSimpleRNN/LSTM/GRU, the package
  never shipped them): each gate pre-activation ``a = W x_t + U h_{t-1} + b_ih + b_hh`` is an affine
  map of (x_t, h_{t-1}); both inputs are fed the Q-point, so per gate row q = xQ·(ΣW + ΣU) + b_ih +
  b_hh and ρ scales the whole pre-activation, applied per gate before that gate's own nonlinearity.
  The GRU candidate ``x W_n + b_in + r ⊙ (h U_n + b_hn)`` takes r = 1 (its largest value: r ∈ [0, 1]
  only shrinks the recurrent part), giving the same formula. L is set per gate type: by default 4
  for the sigmoid gates and 2 for the tanh candidate/cell (README's table), and ``xmin_lim=-1,
  xmax_lim=1`` (the hidden state of a tanh cell lies in (−1, 1); data scaled to [0, 1] or [−1, 1]).

Layout: torch's, not Keras'
---------------------------
nnlocal is PyTorch-layout: ``AutoRotDense.weight`` is ``(out, in)`` (Keras kernel ``(in, out)`` =
``weight.T``); images are NCHW (Keras' channels_last NHWC = ``x.transpose(0, 3, 1, 2)``); a Keras
``Conv2D`` kernel ``(kh, kw, in, out)`` is ``weight.transpose(2, 3, 1, 0)``; ``Conv2DTranspose``
kernel ``(kh, kw, out, in)`` maps to torch's ``(in, out, kh, kw)`` by ``.transpose(3, 2, 0, 1)``;
a ``DepthwiseConv2D`` kernel ``(kh, kw, in, mult)`` is the grouped weight ``(in·mult, 1, kh, kw)``
(output channel c·mult + m in both); recurrent Keras kernels ``(in, G)`` are ``weight_ih_l0.T``, with
Keras' gate order i,f,c,o (LSTM, same as torch) and z,r,h (GRU; torch: r,z,n), a single Keras bias
being ``bias_ih_l0`` with ``bias_hh_l0 = 0``. Arguments keep torch's names (``in_features``,
``in_channels``, ``kernel_size``, ``stride``, ``padding``); the Keras class names are aliases.

Departures from arpkeras (each labelled)
----------------------------------------
* **eps placement (Conv1D bug).** arpkeras' ``AutoRotConv1D`` computes ρ = L/|q| + eps (eps outside
  the division; infinite at q = 0), unlike its Dense/Conv2D/Conv3D. nnlocal uses L/(|q| + eps)
  everywhere; ``AutoRotConv1d(..., eps_outside=True)`` reproduces the original Conv1D form.
* **n-D saturation failure** (documented, tested, diagnosed): the guarantee |z| ≤ L holds in 1-D
  only. In n-D the diagonal Q-point xQ·1 can sit on (or near) a unit's zero set: if
  xQ·ΣᵢWᵢⱼ ≈ −bⱼ then qⱼ → 0, ρⱼ → L/eps (4·10⁵ for L = 4) and the unit saturates for almost
  every input. :meth:`saturation` reports the fraction of units with ρ above a bound.
* Extensions: ``trainable_L`` (one trainable L per layer, per gate type for recurrent layers; the
  README's "L can be trainable" is not in the published code), ``detach_rho``, the recurrent,
  transposed, separable and depthwise variants (README promises only), :func:`limits_for`,
  :meth:`saturation`.
"""
from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from ...nn.activations import get_activation
from ...nn.init import xavier_uniform
from ...nn.layers import Linear
from ...nn.module import Module, Parameter
from ...nn.recurrent import GRU, LSTM, RNN

try:  # the convolution layers live in nnlocal.nn.conv
    from ...nn.conv import Conv1d, Conv2d, Conv3d, ConvTranspose2d, ConvTranspose3d
except ImportError:  # pragma: no cover - only while the conv module is missing
    Conv1d = Conv2d = Conv3d = ConvTranspose2d = ConvTranspose3d = None

__all__ = [
    "AutoRotDense", "AutoRotConv1d", "AutoRotConv2d", "AutoRotConv3d", "AutoRotConvTranspose2d",
    "AutoRotConvTranspose3d", "AutoRotSeparableConv1d", "AutoRotSeparableConv2d", "AutoRotDepthwiseConv2d",
    "AutoRotRNN", "AutoRotLSTM", "AutoRotGRU",
    # arpkeras / Keras names
    "AutoRotConv1D", "AutoRotConv2D", "AutoRotConv3D", "AutoRotConv2DTranspose", "AutoRotConv3DTranspose",
    "AutoRotSeparableConv1D", "AutoRotSeparableConv2D", "AutoRotSeparableConv", "AutoRotDepthwiseConv2D",
    "AutoRotSimpleRNN",
    "limits_for", "ARPLimits", "rho_from_q", "keras_init_", "LAYERS",
]

ARPLimits = namedtuple("ARPLimits", ["xmin_lim", "xmax_lim", "L"])

def limits_for(activation: str, data_min: float = 0.0, data_max: float = 1.0,
               negative_slope: float = 0.3) -> ARPLimits:
    """``(xmin_lim, xmax_lim, L)`` for a layer whose inputs are data in ``[data_min, data_max]`` or the
    outputs of ``activation`` units (the table of the arpkeras example notebook and README).

    ===========  ===========================================  ========================  ====
    activation   xmin_lim                                     xmax_lim                  L
    ===========  ===========================================  ========================  ====
    sigmoid      min(data_min, 0)                             max(data_max, 1)          4
    tanh         min(data_min, −1)                            max(data_max, 1)          2
    atan         min(data_min, −π)                            max(data_max, π)          7
    relu         min(data_min, 0)                             data_max                  None
    leaky_relu   min(data_min, α·data_min if < 0 else same)   max(data_max, α·data_max  None
                                                              if < 0 else same)
    ===========  ===========================================  ========================  ====

    Quirks kept from the original: the atan range is taken as ±π although arctan's outputs lie in
    (−π/2, π/2) (conservative), and relu uses the data maximum although ReLU outputs are unbounded.
    The README suggests no L for relu/leaky_relu (``L`` is ``None``: choose one yourself).
    """
    key = str(activation).lower()
    lo, hi = float(data_min), float(data_max)
    if key == "sigmoid":
        return ARPLimits(min(lo, 0.0), max(hi, 1.0), 4.0)
    if key == "tanh":
        return ARPLimits(min(lo, -1.0), max(hi, 1.0), 2.0)
    if key in ("atan", "arctan"):
        return ARPLimits(min(lo, -math.pi), max(hi, math.pi), 7.0)
    if key == "relu":
        return ARPLimits(min(lo, 0.0), hi, None)
    if key in ("leaky_relu", "leakyrelu"):
        a = float(negative_slope)
        return ARPLimits(min(lo, a * lo if lo < 0 else lo), max(hi, a * hi if hi < 0 else hi), None)
    raise ValueError(f"limits_for: unknown activation {activation!r}; expected one of "
                     "sigmoid, tanh, atan, relu, leaky_relu")


def rho_from_q(q: np.ndarray, L, eps: float, eps_outside: bool = False):
    """ρ and the two derivatives the backward pass needs.

    Returns ``(rho, drho_dq, drho_dL)``: with a = |q|,
    ``rho = L/(a + eps)``, ``drho_dq = −L·sign(q)/(a + eps)²``, ``drho_dL = 1/(a + eps)``; with
    ``eps_outside=True`` (arpkeras' Conv1D): ``rho = L/a + eps``, ``drho_dq = −L·sign(q)/a²``,
    ``drho_dL = 1/a``.
    """
    a = np.abs(q)
    if eps > 0 and not eps_outside:         # the usual case: everything finite
        inv = 1.0 / (a + q.dtype.type(eps))
        return L * inv, -(L * np.sign(q)) * (inv * inv), inv
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / a if eps_outside else 1.0 / (a + q.dtype.type(eps))
        rho = L * inv + q.dtype.type(eps) if eps_outside else L * inv
        drho_dq = -(L * np.sign(q)) * (inv * inv)
    if not np.all(q):                       # sign(0) = 0 (TF's |.| gradient), also where 1/|q| = inf
        drho_dq = np.where(q == 0, q.dtype.type(0), drho_dq)
    return rho, drho_dq, inv


def keras_init_(module: Module, rng=None) -> Module:
    """Keras' defaults for Dense/Conv layers, in place: Glorot-uniform weights, zero biases.

    Every parameter named ``*weight`` with at least 2 dimensions gets U(±√(6/(fan_in + fan_out)))
    (fans as in torch/Keras: fan_in = in·Πk, fan_out = out·Πk), every ``*bias`` zeros. Recurrent
    ``weight_ih/hh`` are drawn the same way (Keras would use an orthogonal recurrent kernel).
    """
    from ..._rng import get_rng

    rng = get_rng(rng)
    for name, p in module.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if leaf.startswith("weight") and p.data.ndim >= 2:
            p.data[...] = xavier_uniform(p.data.shape, rng=rng, dtype=p.data.dtype)
        elif leaf.startswith("bias"):
            p.data[...] = 0
    return module


# ==================================================================================== the rule
class _ARPParams:
    """Hyper-parameters, L (a float or a trainable Parameter) and the diagnostics shared by every ARP layer."""

    def _init_arp(self, L, xmin_lim, xmax_lim, xQ, autorot, eps, trainable_L, detach_rho, eps_outside=False,
                  n_L: int | None = None):
        if xQ is None or (isinstance(xQ, str) and xQ == "auto"):
            xq = 2 * np.asarray(xmax_lim, dtype=np.float64) - np.asarray(xmin_lim, dtype=np.float64)
        elif isinstance(xQ, str):
            raise ValueError(f"{type(self).__name__}: xQ must be 'auto' or a number/array, got {xQ!r}")
        else:
            xq = np.asarray(xQ, dtype=np.float64)
        self.xmin_lim, self.xmax_lim = xmin_lim, xmax_lim
        self.xQ = float(xq) if xq.ndim == 0 else xq
        self.autorot, self.eps = bool(autorot), float(eps)
        self.detach_rho, self.eps_outside = bool(detach_rho), bool(eps_outside)
        if self.eps < 0:
            raise ValueError(f"{type(self).__name__}: eps must be >= 0, got {eps}")
        L_arr = np.asarray(L, dtype=np.float64)
        if n_L is not None:
            if L_arr.ndim == 0:
                L_arr = np.full(n_L, float(L_arr))
            if L_arr.shape != (n_L,):
                raise ValueError(f"{type(self).__name__}: L must be a number or {n_L} values (one per gate type)")
        elif L_arr.ndim != 0:
            raise ValueError(f"{type(self).__name__}: L must be a number, got shape {L_arr.shape}")
        if np.any(L_arr <= 0):
            raise ValueError(f"{type(self).__name__}: L must be > 0, got {L}")
        self.trainable_L = bool(trainable_L)
        dtype = self._param_dtype()
        if self.trainable_L:
            self.L = Parameter(L_arr.astype(dtype))
        else:
            object.__setattr__(self, "L", float(L_arr) if L_arr.ndim == 0 else L_arr)
        object.__setattr__(self, "_arp_cache", None)
        object.__setattr__(self, "_last_shape", None)

    def to(self, dtype):
        super().to(dtype)
        object.__setattr__(self, "_arp_cache", None)       # like every module's cache: forward again first
        return self

    def _param_dtype(self):
        return next(iter(self.parameters())).data.dtype

    def _L_value(self, dtype):
        L = self.L.data if isinstance(self.L, Parameter) else self.L
        return np.asarray(L, dtype=dtype) if not isinstance(L, float) else dtype.type(L)

    def _arp_repr(self) -> str:
        L = self.L.data if isinstance(self.L, Parameter) else self.L
        L = np.array2string(np.asarray(L), precision=4) if np.ndim(L) else f"{float(L):g}"
        xq = self.xQ if np.ndim(self.xQ) else f"{self.xQ:g}"
        s = f"L={L}, xmin_lim={self.xmin_lim}, xmax_lim={self.xmax_lim}, xQ={xq}, autorot={self.autorot}"
        if self.eps != 1e-5:
            s += f", eps={self.eps:g}"
        if self.trainable_L:
            s += ", trainable_L=True"
        if self.detach_rho:
            s += ", detach_rho=True"
        if self.eps_outside:
            s += ", eps_outside=True"
        return s

    def _rho_terms(self, q):
        return rho_from_q(q, self._L_value(q.dtype), self.eps, self.eps_outside)

    def _push_rho_grad(self, grad_rho, drho_dq, drho_dL):
        """dL/dρ -> the trainable L's grad and c = dL/dρ · dρ/dq (what the constant-input backward gets)."""
        if self.trainable_L:
            self._accumulate_L_grad(grad_rho * drho_dL)
        return grad_rho * drho_dq

    def _accumulate_L_grad(self, gL_per_unit):
        self.L.accumulate_grad(np.asarray(gL_per_unit.sum(), dtype=self.L.data.dtype))

    # ------------------------------------------------------------------ diagnostics
    def rho(self, input_shape=None) -> np.ndarray:
        """ρ = L/(|q| + eps) from the current weights (per unit; per position for convolutions, for
        ``input_shape`` or the last input's shape)."""
        q = self.q(input_shape)
        return self._rho_terms(q)[0]

    def saturation(self, bound: float = 100.0, input_shape=None) -> float:
        """Fraction of units (and positions) whose ρ exceeds ``bound``: their |q| is so small
        (|q| < L/bound − eps) that any input away from the unit's zero set drives z = ρ·u deep into
        φ's flat tails — the n-D failure mode of the diagonal Q-point (module docstring). With
        ``autorot=False`` nothing is rotated and the answer is 0."""
        if not self.autorot:
            return 0.0
        return float(np.mean(self.rho(input_shape) > bound))


class _AutoRot(_ARPParams):
    """The ARP rule for an affine layer class ``A``: ``class AutoRotX(_AutoRot, A)``.

    ``A.forward`` / ``A.backward`` are the layer's own affine map and its backward; this mixin adds
    the constant-input evaluation q = A(xQ·1), ρ, z = ρ ⊙ u, φ and the extra backward terms.
    Subclasses with a closed form for q (Dense) override ``_q_forward`` / ``_q_backward``.
    """

    def _setup_arp(self, activation, **kw):
        self._init_arp(**kw)
        self.activation = get_activation(activation)

    def extra_repr(self) -> str:
        return super().extra_repr() + ", " + self._arp_repr()

    # ------------------------------------------------------------------ q = A(xQ·1) (generic)
    def _const_input(self, shape, dtype):
        key = (tuple(shape[1:]), np.dtype(dtype).str)      # one constant image per sample shape
        cache = self.__dict__.get("_const_cache")
        if cache is None or cache[0] != key:
            const = np.empty((1,) + tuple(shape[1:]), dtype=dtype)
            const[...] = np.asarray(self.xQ, dtype=dtype)   # xQ: a number, or an array broadcastable to one sample
            cache = (key, const)
            object.__setattr__(self, "_const_cache", cache)
        return cache[1]

    def _snapshot(self):
        """The caches of A's modules (not the activation's): A runs twice per forward, on the constant
        input and on x, and backward swaps between the two."""
        act = self.__dict__.get("activation")
        return [(m, m._cache) for m in self.modules() if m is not act]

    @staticmethod
    def _restore(snapshot):
        for m, c in snapshot:
            object.__setattr__(m, "_cache", c)

    def _q_forward(self, x, *args, **kwargs):
        """q ``(1, *out)`` and what ``_q_backward`` needs (the caches of A on the constant input)."""
        if x.ndim != len(self._batched_shape()):
            from ..._checks import shape_error
            raise shape_error(repr(self), self._batched_shape_str(), x.shape)
        q = super().forward(self._const_input(x.shape, x.dtype), *args, **kwargs)
        return q, self._snapshot()

    def _q_backward(self, c, state):
        """Adds the xQ-terms to dL/dW (and c to dL/db): A's backward on the constant input."""
        self._restore(state)
        super().backward(c)

    def _batch_sum(self, a):
        return a.sum(axis=0, keepdims=True)

    def _batched_shape(self):
        return (None, None) + (None,) * self.n

    def _batched_shape_str(self):
        return "(B, C, " + ", ".join("S" for _ in range(self.n)) + ")"

    # ------------------------------------------------------------------ forward / backward
    def forward(self, x, *args, **kwargs):
        if not self.autorot:
            u = super().forward(x, *args, **kwargs)
            object.__setattr__(self, "_arp_cache", (None,))
            return self.activation(u)
        q, q_state = self._q_forward(x, *args, **kwargs)
        u = super().forward(x, *args, **kwargs)
        x_state = None if q_state is None else self._snapshot()   # None: q in closed form, no cache juggling
        rho, drho_dq, drho_dL = self._rho_terms(q)
        object.__setattr__(self, "_arp_cache", (u, rho, drho_dq, drho_dL, q_state, x_state))
        object.__setattr__(self, "_last_shape", x.shape)
        return self.activation(rho * u)

    def backward(self, grad_output):
        if self._arp_cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward() called before forward(): run forward first")
        gz = self.activation.backward(grad_output)
        if self._arp_cache[0] is None:                     # autorot=False: the plain layer
            return super().backward(gz)
        u, rho, drho_dq, drho_dL, q_state, x_state = self._arp_cache
        if x_state is not None:
            self._restore(x_state)
        gx = super().backward(gz * rho)                    # dL/du = g ⊙ ρ through A
        if not self.detach_rho:
            grad_rho = self._batch_sum(gz * u)             # dL/dρ, summed over the batch
            c = self._push_rho_grad(grad_rho, drho_dq, drho_dL)
            self._q_backward(c, q_state)                   # the term through ρ(q(W, b))
            if x_state is not None:
                self._restore(x_state)
        return gx

    # ------------------------------------------------------------------ diagnostics
    def q(self, input_shape=None) -> np.ndarray:
        """The Q-point response q = A(xQ·1) from the current weights (no caches are disturbed)."""
        shape = input_shape if input_shape is not None else self._last_shape
        if shape is None:
            raise ValueError(f"{type(self).__name__}.q: give input_shape (no input seen yet)")
        saved = self._snapshot()
        try:
            q, _ = self._q_forward(np.empty((1,) + tuple(shape[1:]), dtype=self._param_dtype()))
        finally:
            self._restore(saved)
        return q


# ==================================================================================== Dense
class AutoRotDense(_AutoRot, Linear):
    r"""ARP dense layer (arpkeras ``AutoRotDense``): y = φ(ρ ⊙ (x Wᵀ + b)), ρ = L/(|xQ·ΣᵢWᵢ + b| + eps).

    Shapes: x ``(B, in)`` (or ``(*, in)``), weight ``(out, in)`` (Keras kernel = weight.T), bias
    ``(out,)``, q and ρ ``(out,)``, y ``(*, out)``. ``xQ`` may be an array ``(in,)`` (the original's
    "n-dimensional" Q-point): then q = W xQ + b.

    Parameters: ``in_features``, ``out_features``, ``bias``; ARP: ``L=4``, ``xmin_lim=0``, ``xmax_lim=1``
    (sigmoid units on [0, 1] data: the README's example), ``xQ="auto"`` (= 2·xmax_lim − xmin_lim),
    ``autorot=True``, ``activation=None`` (linear, as Keras' Dense; any name of
    ``nnlocal.nn.ACTIVATIONS`` or a module), ``eps=1e-5``, ``trainable_L=False`` and
    ``detach_rho=False`` (extensions); ``rng``, ``dtype``. Initialisation is torch's Linear default;
    :func:`keras_init_` gives Keras' Glorot-uniform/zeros.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, L=4.0, xmin_lim=0.0,
                 xmax_lim=1.0, xQ="auto", autorot: bool = True, activation=None, eps: float = 1e-5,
                 trainable_L: bool = False, detach_rho: bool = False, rng=None, dtype=np.float32):
        Linear.__init__(self, in_features, out_features, bias, rng, dtype)
        self._setup_arp(activation, L=L, xmin_lim=xmin_lim, xmax_lim=xmax_lim, xQ=xQ, autorot=autorot, eps=eps,
                        trainable_L=trainable_L, detach_rho=detach_rho)
        if np.ndim(self.xQ) and np.shape(self.xQ) != (self.in_features,):
            raise ValueError(f"AutoRotDense: an array xQ must have shape ({self.in_features},), "
                             f"got {np.shape(self.xQ)}")

    def _q_forward(self, x, *args, **kwargs):
        w = self.weight.data.astype(x.dtype, copy=False)
        q = w @ np.asarray(self.xQ, dtype=x.dtype) if np.ndim(self.xQ) else w.sum(axis=1) * x.dtype.type(self.xQ)
        if self.bias is not None:
            q = q + self.bias.data.astype(x.dtype, copy=False)
        return q, None

    def _q_backward(self, c, state):
        xq = np.broadcast_to(np.asarray(self.xQ, dtype=c.dtype), (self.in_features,))
        self.weight.accumulate_grad(np.outer(c, xq))
        if self.bias is not None:
            self.bias.accumulate_grad(c)

    def _batch_sum(self, a):
        return a.reshape(-1, self.out_features).sum(axis=0)

    def q(self, input_shape=None) -> np.ndarray:
        return self._q_forward(np.empty((0, self.in_features), dtype=self._param_dtype()))[0]


# ==================================================================================== convolutions
def _conv_kw(stride, padding, dilation, groups, bias, rng, dtype):
    return dict(stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias, rng=rng, dtype=dtype)


_ARP_DOC = """
    ARP arguments (keyword-only): ``L=4``, ``xmin_lim=0``, ``xmax_lim=1``, ``xQ="auto"``,
    ``autorot=True``, ``activation=None``, ``eps=1e-5``, ``trainable_L=False``, ``detach_rho=False``;
    see :class:`AutoRotDense` and the module docstring. q and ρ have the output's shape without the
    batch axis, ``(1, C_out, *L_out)``: constant over positions with ``padding=0``/``'valid'``,
    varying at the borders with ``'same'``.
"""


class _AutoRotConvMixin(_AutoRot):
    def _init_conv_arp(self, activation, L, xmin_lim, xmax_lim, xQ, autorot, eps, trainable_L, detach_rho,
                       eps_outside=False):
        self._setup_arp(activation, L=L, xmin_lim=xmin_lim, xmax_lim=xmax_lim, xQ=xQ, autorot=autorot, eps=eps,
                        trainable_L=trainable_L, detach_rho=detach_rho, eps_outside=eps_outside)


def _make_conv_class(name, base, doc):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, *, L=4.0, xmin_lim=0.0, xmax_lim=1.0, xQ="auto", autorot=True, activation=None,
                 eps=1e-5, trainable_L=False, detach_rho=False, rng=None, dtype=np.float32):
        base.__init__(self, in_channels, out_channels, kernel_size, **_conv_kw(stride, padding, dilation, groups,
                                                                                bias, rng, dtype))
        self._init_conv_arp(activation, L, xmin_lim, xmax_lim, xQ, autorot, eps, trainable_L, detach_rho)

    return type(name, (_AutoRotConvMixin, base), {"__init__": __init__, "__doc__": doc + _ARP_DOC,
                                                  "__module__": __name__})


if Conv2d is not None:
    class AutoRotConv1d(_AutoRotConvMixin, Conv1d):
        """ARP 1-d convolution (arpkeras ``AutoRotConv1D``): ``(B, C_in, L) -> (B, C_out, L_out)``,
        weight ``(C_out, C_in/groups, k)`` (Keras kernel ``(k, in, out)`` = ``weight.transpose(2, 1, 0)``).

        ``eps_outside=True`` reproduces arpkeras' Conv1D form ρ = L/|q| + eps (a bug of the original:
        eps is added outside the division, so ρ is infinite at q = 0 and differs from its other
        layers); the default is the unified ρ = L/(|q| + eps).
        """ + _ARP_DOC

        def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                     bias=True, *, L=4.0, xmin_lim=0.0, xmax_lim=1.0, xQ="auto", autorot=True, activation=None,
                     eps=1e-5, trainable_L=False, detach_rho=False, eps_outside=False, rng=None, dtype=np.float32):
            Conv1d.__init__(self, in_channels, out_channels, kernel_size,
                            **_conv_kw(stride, padding, dilation, groups, bias, rng, dtype))
            self._init_conv_arp(activation, L, xmin_lim, xmax_lim, xQ, autorot, eps, trainable_L, detach_rho,
                                eps_outside)

    AutoRotConv2d = _make_conv_class(
        "AutoRotConv2d", Conv2d,
        """ARP 2-d convolution (arpkeras ``AutoRotConv2D``): ``(B, C_in, H, W) -> (B, C_out, H', W')``, weight
    ``(C_out, C_in/groups, kh, kw)`` (Keras kernel ``(kh, kw, in, out)`` = ``weight.transpose(2, 3, 1, 0)``).
""")
    AutoRotConv3d = _make_conv_class(
        "AutoRotConv3d", Conv3d,
        """ARP 3-d convolution (arpkeras ``AutoRotConv3D``): ``(B, C_in, D, H, W) -> (B, C_out, D', H', W')``,
    weight ``(C_out, C_in/groups, kd, kh, kw)``.
""")

    class _AutoRotConvTransposeMixin(_AutoRotConvMixin):
        def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                     bias=True, dilation=1, *, L=4.0, xmin_lim=0.0, xmax_lim=1.0, xQ="auto", autorot=True,
                     activation=None, eps=1e-5, trainable_L=False, detach_rho=False, rng=None, dtype=np.float32):
            self._transpose_base.__init__(self, in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                                          output_padding=output_padding, groups=groups, bias=bias, dilation=dilation,
                                          rng=rng, dtype=dtype)
            self._init_conv_arp(activation, L, xmin_lim, xmax_lim, xQ, autorot, eps, trainable_L, detach_rho)

    class AutoRotConvTranspose2d(_AutoRotConvTransposeMixin, ConvTranspose2d):
        """ARP 2-d transposed convolution (README's ``AutoRotConv2DTranspose``; extension, not in arpkeras):
        weight ``(C_in, C_out/groups, kh, kw)`` (Keras kernel ``(kh, kw, out, in)`` =
        ``weight.transpose(2, 3, 1, 0)``). q = ConvT(xQ·1) + b varies spatially wherever the number of
        overlapping taps does (stride > 1, borders). ``forward(x, output_size=None)`` as torch.
        """ + _ARP_DOC
        _transpose_base = ConvTranspose2d

    class AutoRotConvTranspose3d(_AutoRotConvTransposeMixin, ConvTranspose3d):
        """ARP 3-d transposed convolution (README's ``AutoRotConv3DTranspose``; extension): weight
        ``(C_in, C_out/groups, kd, kh, kw)``; see :class:`AutoRotConvTranspose2d`.
        """ + _ARP_DOC
        _transpose_base = ConvTranspose3d

    class AutoRotDepthwiseConv2d(_AutoRotConvMixin, Conv2d):
        """ARP depthwise 2-d convolution (README's ``AutoRotDepthwiseConv2D``; extension): a grouped
        ``Conv2d(in_channels, in_channels·depth_multiplier, kernel_size, groups=in_channels)``; q has one
        value per (channel × multiplier) and position. Output channel c·depth_multiplier + m reads input
        channel c (Keras' order). Weight ``(C·mult, 1, kh, kw)``; Keras ``depthwise_kernel (kh, kw, C, mult)``
        = ``weight.reshape(C, mult, kh, kw).transpose(2, 3, 0, 1)``.
        """ + _ARP_DOC

        def __init__(self, in_channels, kernel_size, depth_multiplier=1, stride=1, padding=0, dilation=1, bias=True,
                     *, L=4.0, xmin_lim=0.0, xmax_lim=1.0, xQ="auto", autorot=True, activation=None, eps=1e-5,
                     trainable_L=False, detach_rho=False, rng=None, dtype=np.float32):
            Conv2d.__init__(self, in_channels, in_channels * int(depth_multiplier), kernel_size,
                            **_conv_kw(stride, padding, dilation, in_channels, bias, rng, dtype))
            self.depth_multiplier = int(depth_multiplier)
            self._init_conv_arp(activation, L, xmin_lim, xmax_lim, xQ, autorot, eps, trainable_L, detach_rho)

    class _SeparableConv(Module):
        """Depthwise then pointwise convolution, one affine map: ``pointwise(depthwise(x))``.

        Children ``depthwise`` = ``ConvNd(C_in, C_in·mult, k, groups=C_in, bias=False)`` and ``pointwise``
        = ``ConvNd(C_in·mult, C_out, 1, bias=bias)`` (Keras' SeparableConv: no depthwise bias).
        """

        _conv = None

        def __init__(self, in_channels, out_channels, kernel_size, depth_multiplier=1, stride=1, padding=0,
                     dilation=1, bias=True, rng=None, dtype=np.float32):
            super().__init__()
            from ..._rng import get_rng

            rng = get_rng(rng)
            self.in_channels, self.out_channels = int(in_channels), int(out_channels)
            self.depth_multiplier = int(depth_multiplier)
            mid = self.in_channels * self.depth_multiplier
            self.depthwise = self._conv(self.in_channels, mid, kernel_size, stride=stride, padding=padding,
                                        dilation=dilation, groups=self.in_channels, bias=False, rng=rng, dtype=dtype)
            self.pointwise = self._conv(mid, self.out_channels, 1, bias=bias, rng=rng, dtype=dtype)
            self.n = self.depthwise.n

        @property
        def bias(self):
            return self.pointwise.bias

        def extra_repr(self):
            return f"{self.in_channels}, {self.out_channels}, depth_multiplier={self.depth_multiplier}"

        def forward(self, x):
            return self.pointwise(self.depthwise(x))

        def backward(self, grad_output):
            return self.depthwise.backward(self.pointwise.backward(grad_output))

    class _SeparableConv1d(_SeparableConv):
        _conv = Conv1d

    class _SeparableConv2d(_SeparableConv):
        _conv = Conv2d

    class _AutoRotSeparableMixin(_AutoRotConvMixin):
        def __init__(self, in_channels, out_channels, kernel_size, depth_multiplier=1, stride=1, padding=0,
                     dilation=1, bias=True, *, L=4.0, xmin_lim=0.0, xmax_lim=1.0, xQ="auto", autorot=True,
                     activation=None, eps=1e-5, trainable_L=False, detach_rho=False, rng=None, dtype=np.float32):
            self._separable_base.__init__(self, in_channels, out_channels, kernel_size, depth_multiplier, stride,
                                          padding, dilation, bias, rng, dtype)
            self._init_conv_arp(activation, L, xmin_lim, xmax_lim, xQ, autorot, eps, trainable_L, detach_rho)

        def extra_repr(self):
            # the children (depthwise, pointwise, activation) print themselves
            return _SeparableConv.extra_repr(self) + ", " + self._arp_repr()

    class AutoRotSeparableConv1d(_AutoRotSeparableMixin, _SeparableConv1d):
        """ARP separable 1-d convolution (README's ``AutoRotSeparableConv1D``; extension): depthwise then
        pointwise is one affine map, so q = PW(DW(xQ·1)) + b and ρ scales the pointwise output.
        Parameters ``depthwise.weight`` ``(C_in·mult, 1, k)``, ``pointwise.weight`` ``(C_out, C_in·mult, 1)``,
        ``pointwise.bias`` ``(C_out,)``.
        """ + _ARP_DOC
        _separable_base = _SeparableConv1d

    class AutoRotSeparableConv2d(_AutoRotSeparableMixin, _SeparableConv2d):
        """ARP separable 2-d convolution (README's ``AutoRotSeparableConv2D``; extension); see
        :class:`AutoRotSeparableConv1d`. Parameters ``depthwise.weight`` ``(C_in·mult, 1, kh, kw)``,
        ``pointwise.weight`` ``(C_out, C_in·mult, 1, 1)``, ``pointwise.bias``.
        """ + _ARP_DOC
        _separable_base = _SeparableConv2d


# ==================================================================================== recurrent
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

    def _L_rows(self, dtype):
        return np.repeat(np.asarray(self._L_value(dtype), dtype=dtype), self.hidden_size)

    def _rho_terms(self, q):
        return rho_from_q(q, self._L_rows(q.dtype), self.eps, self.eps_outside)

    def _accumulate_L_grad(self, gL_per_row):
        self.L.accumulate_grad(gL_per_row.reshape(self.n_gates, self.hidden_size).sum(axis=1)
                               .astype(self.L.data.dtype))

    def q(self, input_shape=None) -> np.ndarray:
        """q ``(G,)`` per gate row (torch's gate order)."""
        dtype = self._param_dtype()
        q = (self.weight_ih_l0.data.sum(axis=1) + self.weight_hh_l0.data.sum(axis=1)) * dtype.type(self.xQ)
        if self.use_bias:
            q = q + self.bias_ih_l0.data + self.bias_hh_l0.data
        return q.astype(dtype, copy=False)

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


# ==================================================================================== arpkeras names
AutoRotSimpleRNN = AutoRotRNN
if Conv2d is not None:
    AutoRotConv1D = AutoRotConv1d
    AutoRotConv2D = AutoRotConv2d
    AutoRotConv3D = AutoRotConv3d
    AutoRotConv2DTranspose = AutoRotConvTranspose2d
    AutoRotConv3DTranspose = AutoRotConvTranspose3d
    AutoRotSeparableConv1D = AutoRotSeparableConv1d
    AutoRotSeparableConv2D = AutoRotSeparableConv2d
    AutoRotSeparableConv = AutoRotSeparableConv2d     # Keras' SeparableConv is SeparableConv2D
    AutoRotDepthwiseConv2D = AutoRotDepthwiseConv2d

#: the thirteen layers of the arpkeras README: (Keras layer, arpkeras name, nnlocal class name, in arpkeras?)
LAYERS = [
    ("Dense", "AutoRotDense", "AutoRotDense", True),
    ("SimpleRNN", "AutoRotSimpleRNN", "AutoRotRNN", False),
    ("LSTM", "AutoRotLSTM", "AutoRotLSTM", False),
    ("GRU", "AutoRotGRU", "AutoRotGRU", False),
    ("Conv1D", "AutoRotConv1D", "AutoRotConv1d", True),
    ("Conv2D", "AutoRotConv2D", "AutoRotConv2d", True),
    ("Conv3D", "AutoRotConv3D", "AutoRotConv3d", True),
    ("Conv2DTranspose", "AutoRotConv2DTranspose", "AutoRotConvTranspose2d", False),
    ("Conv3DTranspose", "AutoRotConv3DTranspose", "AutoRotConvTranspose3d", False),
    ("SeparableConv", "AutoRotSeparableConv", "AutoRotSeparableConv2d", False),
    ("SeparableConv1D", "AutoRotSeparableConv1D", "AutoRotSeparableConv1d", False),
    ("SeparableConv2D", "AutoRotSeparableConv2D", "AutoRotSeparableConv2d", False),
    ("DepthwiseConv2D", "AutoRotDepthwiseConv2D", "AutoRotDepthwiseConv2d", False),
]
