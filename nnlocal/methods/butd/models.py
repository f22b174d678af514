r"""BU-TD: top-down networks, Counter-Hebb learning and instruction-guided multi-task learning.

Source: R. Abel and S. Ullman, "Biologically Inspired Learning Model for Instructed Vision"
(NeurIPS 2024; arXiv 2306.02415, earlier "Top-Down Network Combines Back-Propagation with
Attention"); code ``royabel/Top-Down-Networks`` (PyTorch, no licence: nnlocal re-derives it from the
maths restated in ``shared/spec/methods.md`` §5, it copies no code).

Every layer has a bottom-up (BU) pass, ``forward``, and a top-down (TD) pass, ``back_forward``,
through the *same* connections in the opposite direction. Each layer caches the input of its last
BU pass (``bu_neurons``) and of its last TD pass (``td_neurons``, the TD activity at the layer's
*output* side). For a Linear layer, W ``(m, n)``, a BU input a ``(B, n)`` and a TD input t ``(B, m)``:

.. math::

    \text{BU:}\quad h &= W a + b \;\to\; \mathrm{ReLU}\ (\texttt{non\_linear})
                         \;\to\; h \odot [t_{\text{cached}} > 0]\ (\texttt{lateral})                    \\
    \text{TD:}\quad \bar a &= \bar W t + \bar b \;\to\; \mathrm{ReLU}\ (\texttt{non\_linear})
                         \;\to\; \bar a \odot [a_{\text{cached}} > 0]\ (\texttt{lateral})

with :math:`\bar W = W^\top` (shared weights) or its own :math:`\bar W` ``(n, m)``; :math:`\bar b`
(``back_bias``) exists only with ``back_bias=True`` and ``bias_blocking=True`` drops it.
:func:`galu` ``(x, c) = x ⊙ [c > 0]`` is the gated linear unit; its gate is a boolean mask, so no
gradient reaches ``c``. A convolution's TD pass is the transposed convolution with the same
weight, stride, padding, dilation and groups, with the ``output_padding`` that gives back the cached
BU input size.

**Counter-Hebb learning** (:func:`counter_hebb_`). Feed the output gradient
:math:`\delta = \partial L/\partial o` ``(B, C)`` into the prediction head's TD pass with
``non_linear=False, lateral=True, bias_blocking=True`` and continue through the core in reverse.
Each layer's TD output :math:`W^\top t` is gated by :math:`[a > 0]`, the ReLU derivative of the
layer below, so every layer's ``td_neurons`` becomes :math:`\partial L/\partial z` of its
pre-activation *exactly*. The update of every synapse is the product of its two neurons' activity,
the BU one below and the TD "counter neuron" above:

.. math::

    \Delta W = \textstyle\sum_b t_b \otimes a_b = t^\top a, \qquad \Delta b = \textstyle\sum_b t_b,
    \qquad \Delta \bar W = \Delta W^\top\ (\text{separate TD weights, "the same increment"})

(a convolution uses the exact conv weight gradient). With shared weights and ReLU networks without
normalisation this **is** backprop, for Linear, Conv, ResNet BasicBlocks and the GaLU-gated
multi-task net: ``tests/test_butd.py`` checks it against torch autograd to rtol 1e-10 (float64).

**Instruction-guided multi-task learning** (:class:`TaskBUTDNet`). (1) TD pass of the task vector
through the task head and the core (ReLU, no gating): each core layer caches a non-negative TD
activity; (2) BU pass of the image with ReLU and GaLU, so only the units the task switched on
compute (a task-selected sub-network); (3) a plain linear prediction head; learning by BP
(``backward``) or CH (:func:`counter_hebb_`).

Top-down weights (``top_down=``): ``"shared"`` (W̄ = Wᵀ, the exact-backprop setting),
``"separate"`` (own W̄, Kaiming-uniform a = 0, learnt with the same transposed increment as W:
the original's "asymmetric" runs), ``"symmetric"`` (own W̄ initialised to Wᵀ, the original's
``SymWeights``) and ``"fa"`` (own W̄, frozen: feedback alignment, the original's ``FA``).

Where nnlocal departs from the original
---------------------------------------
* Output gradients carry the batch mean: ``grad_logits`` is dL/d(logits) of the *mean* loss (what
  nnlocal's losses' ``backward()`` return, see :func:`loss_and_grad`), and CH sums over the batch.
  The original feeds per-sample gradients and averages in the update; the products are identical.
* ``multi_decoders`` works for any number of tasks (the original's CH path hard-codes two).
* The bottom layer's TD output (an image-sized array nothing reads) is not computed during learning
  (``need_output=False``), like autograd skipping dL/dx of the input.
* BatchNorm is not ported: CH is exact only without normalisation, and the original's two BN
  modules are never updated by CH (spec §5.8).
* **Extension** ``TaskBUTDNet(train_task_head=True)``: the original never trains its task head
  (its TD pass runs under no_grad and GaLU passes no gradient to its gate). nnlocal can train it
  with a straight-through estimator through the gates; see :class:`TaskBUTDNet`.
* ``device="cuda"`` runs the GaLU gating of the BU and TD passes on the GPU (:mod:`nnlocal.methods.butd.cuda`);
  the convolutions, matrix products and the task-head STE stay on the CPU, so it only proves the kernel.
"""
from __future__ import annotations

import numpy as np

from ... import nn
from ..._checks import check_float_array, shape_error
from ..._rng import get_rng
from ... import kernels
from ...kernels import check_device
from ...nn import functional as F
from ...nn.init import kaiming_uniform, uniform

__all__ = [
    "galu", "BUTDLinear", "BUTDConv2d", "BUTDFlatten", "BUTDSequential", "BUTDBasicBlock", "depthwise_pool",
    "BUTDNet", "TaskBUTDNet", "counter_hebb_", "loss_and_grad", "TOP_DOWN_MODES",
    "fc_core", "simple_core", "resnet18_core", "fc_net",
    "task_masks", "mask_stats",
]

#: The top-down weight settings: see the module docstring.
TOP_DOWN_MODES = ("shared", "separate", "symmetric", "fa")


def _check_float(module, x, name: str = "input") -> None:
    """``check_float_array`` that builds the module's repr only when the check fails (hot path)."""
    if not isinstance(x, np.ndarray) or x.dtype not in (np.float32, np.float64):
        check_float_array(repr(module), x, name)


def _adopt_grad(p, g: np.ndarray) -> None:
    """``p.accumulate_grad(g)`` for a freshly computed ``g`` that nothing else holds: taken over as
    ``.grad`` without a copy when there is no gradient yet (the usual case after ``zero_grad``)."""
    if p.requires_grad and p.grad is None and g.dtype == p.data.dtype and g.shape == p.data.shape \
            and g.flags.c_contiguous:
        p.grad = g
    else:
        p.accumulate_grad(g)


def galu(x: np.ndarray, gate: np.ndarray, relu: bool = False) -> np.ndarray:
    """Gated linear unit ``x ⊙ [gate > 0]`` (``max(x, 0) ⊙ [gate > 0]`` with ``relu=True``).

    ``x`` and ``gate`` have the same shape. The gate is a mask: no gradient flows to it.
    """
    return kernels.implementation(__package__).galu(x, gate, relu)


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, x.dtype.type(0))


def _combine(a, out, d):
    """a ⊙ [out > 0] + d, with None standing for zero (the STE backward of ReLU + GaLU, below)."""
    g = None if a is None else galu(a, out)
    if d is not None:
        g = d if g is None else g + d
    return g


# ================================================================================ common machinery
class _BUTD:
    """Mixin shared by every BU-TD module: the two caches, the gating, and the bookkeeping of the
    ``train_task_head`` extension (only active after ``_set_record(True)``)."""

    _record = False          # set by TaskBUTDNet(train_task_head=True): keep what the STE needs

    def _butd_setup(self, device: str) -> None:
        self.device = check_device(device, type(self).__name__)
        self.bu_neurons = None      # input of the last BU pass
        self.td_neurons = None      # input of the last TD pass (TD activity at the output side)
        self.td_output = None       # output of the last TD pass
        self._gate_src = None       # what the BP mask of the last BU pass reads ([src > 0])

    # --------------------------------------------------------------- gating
    def _galu(self, x: np.ndarray, gate: np.ndarray, relu: bool = False) -> np.ndarray:
        """:func:`galu` on ``self.device`` (the CUDA kernel round-trips the arrays: the convolutions
        and matrix products of BU-TD stay on the CPU)."""
        return kernels.implementation(__package__, self.device).galu(x, gate, relu)

    def _activate(self, z: np.ndarray, non_linear: bool, lateral: bool) -> np.ndarray:
        """BU output of pre-activation ``z``: optional ReLU, then optional GaLU by ``td_neurons``."""
        if lateral:
            td = self.td_neurons
            if td is None:
                raise RuntimeError(f"{self!r}: forward(lateral=True) gates by the top-down activity; "
                                   "run a TD pass (back_forward) first")
            if td.shape != z.shape:
                raise shape_error(repr(self), str(z.shape), td.shape, name="cached top-down activity (td_neurons)")
            if self._record:
                self._ungated = _relu(z) if non_linear else z
                h = self._galu(self._ungated, td)
            else:
                h = self._galu(z, td, relu=non_linear)
            self._gate_src = h if non_linear else td
        elif non_linear:
            h = np.maximum(z, z.dtype.type(0), out=z)
            self._gate_src = h
        else:
            h = z
            self._gate_src = None
        return h

    def _bp_gate(self, g: np.ndarray) -> np.ndarray:
        """dL/dz from dL/dh through ReLU and GaLU: g ⊙ [h > 0] (or g ⊙ [td > 0] without ReLU)."""
        if self._record:
            self._grad_out = g
        src = self._gate_src
        if src is None:
            return g
        if g.shape != src.shape:
            raise shape_error(repr(self), str(src.shape), g.shape, name="grad_output")
        return self._galu(g, src)

    def _td_activate(self, a: np.ndarray, non_linear: bool, lateral: bool) -> np.ndarray:
        """TD output from ``a``: optional ReLU, then optional GaLU by the cached BU input."""
        if self._record:
            self._td_ungated = a
        if lateral:
            bu = self.bu_neurons
            if bu is None:
                raise RuntimeError(f"{self!r}: back_forward(lateral=True) gates by the BU input; run forward first")
            if bu.shape != a.shape:
                raise shape_error(repr(self), str(bu.shape), a.shape,
                                  name="top-down output (it must match the cached BU input)")
            return self._galu(a, bu, relu=non_linear)
        return _relu(a) if non_linear else a

    # --------------------------------------------------------------- train_task_head bookkeeping
    def _set_record(self, flag: bool) -> None:
        for m in self.modules():
            if isinstance(m, _BUTD):
                object.__setattr__(m, "_record", bool(flag))

    def _set_grad_out(self, g) -> None:
        """Receive dL/d(BU output) from the module above (CH error pass; BP sets it in backward)."""
        self._grad_out = g

    def _input_grad_ungated(self):
        """dL/d(BU input) before this module's lateral TD gate (from the last TD pass)."""
        return self._td_ungated

    def _gate_grad(self):
        """dL/d(gate) of this module's GaLU: dL/dh ⊙ (output before the gate)."""
        return self._grad_out * self._ungated

    def _snapshot_task(self) -> None:
        for m in self.modules():
            if isinstance(m, _BUTD):
                m._task_in, m._task_out = m.td_neurons, m.td_output

    def _gated_units(self, prefix: str = ""):
        """(name, module) of every unit whose BU output is GaLU-gated in a guided pass."""
        yield prefix, self

    def counter_hebb_update(self) -> None:
        """Add the Counter-Hebb update of every parameter into ``.grad`` (after a TD error pass)."""
        for child in self.children():
            child.counter_hebb_update()


# ================================================================================ weighted layers
class _TopDownWeights(_BUTD):
    """Top-down weights, the TD pass and the Counter-Hebb update of a Linear or Conv layer.

    Subclasses provide the input checks, ``_td_op(t, w)`` (Wᵀt for the BU-layout weight ``w``), its
    adjoint ``_td_adjoint(g)``, ``_ch_weight_delta(td)`` and the layout maps ``_to_back`` /
    ``_from_back`` between W's layout and W̄'s. ``BUTDLinear`` also has ``_accumulate_td_weight_grad``
    (the task head of the ``train_task_head`` extension is linear).
    """

    def _init_top_down(self, top_down, back_bias, rng, dtype, device):
        if top_down not in TOP_DOWN_MODES:
            raise ValueError(f"{type(self).__name__}: top_down must be one of {TOP_DOWN_MODES}, got {top_down!r}")
        self._butd_setup(device)
        self.top_down = top_down
        w = self.weight.data
        self.back_weight = None
        if top_down == "symmetric":
            self.back_weight = nn.Parameter(self._to_back(w).astype(dtype, copy=True))
        elif top_down in ("separate", "fa"):
            shape = self._to_back(w).shape
            self.back_weight = nn.Parameter(kaiming_uniform(shape, a=0.0, rng=rng, dtype=dtype),
                                            requires_grad=(top_down != "fa"))
        self.back_bias = None
        if back_bias:
            fan_out = nn.init.fans(w.shape)[1]
            self.back_bias = nn.Parameter(uniform((self._in_size(),), 1.0 / np.sqrt(fan_out), rng, dtype))

    def _td_weight(self, dtype) -> np.ndarray:
        """The TD weight in W's layout: W (shared) or W̄ mapped back."""
        if self.back_weight is None:
            return self.weight.data.astype(dtype, copy=False)
        return self._from_back(self.back_weight.data).astype(dtype, copy=False)

    def _td_extra_repr(self) -> str:
        s = f", top_down={self.top_down!r}" if self.top_down != "shared" else ""
        return s + (", back_bias=True" if self.back_bias is not None else "")

    # --------------------------------------------------------------- passes
    def forward(self, x: np.ndarray, non_linear: bool = False, lateral: bool = False) -> np.ndarray:
        """BU pass: pre-activation, optional ReLU, optional GaLU by ``td_neurons``; caches ``bu_neurons``."""
        self._check_bu_input(x)
        z = super().forward(x)
        self.bu_neurons = x
        return self._activate(z, non_linear, lateral)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Backprop of the BU pass (the gates are constants): fills W.grad, b.grad, returns dL/dx."""
        self._saved()
        return super().backward(self._bp_gate(grad_output))

    def back_forward(self, t: np.ndarray, non_linear: bool = False, lateral: bool = False,
                     bias_blocking: bool = False, need_output: bool = True):
        """TD pass: ``W̄ t (+ b̄)``, optional ReLU, optional GaLU by ``bu_neurons``; caches ``td_neurons``.

        With ``need_output=False`` only the cache is set (the bottom layer during learning).
        """
        _check_float(self, t, "top-down input")
        self._check_td_input(t)
        self.td_neurons = t
        if not need_output:
            self.td_output = None
            return None
        a = self._td_op(t, self._td_weight(t.dtype))
        if self.back_bias is not None and not bias_blocking:
            a += self.back_bias.data.astype(t.dtype, copy=False).reshape((-1,) + (1,) * (a.ndim - 2))
        self.td_output = self._td_activate(a, non_linear, lateral)
        return self.td_output

    def counter_hebb_update(self) -> None:
        """ΔW = Σ_b td_b ⊗ bu_b (the exact weight gradient when td = dL/dz), Δb = Σ td,
        ΔW̄ = the same increment (unless frozen), Δb̄ = mean_b bu_b (the original's rule)."""
        td, bu = self.td_neurons, self.bu_neurons
        if td is None or bu is None:
            raise RuntimeError(f"{self!r}: counter_hebb_update needs a BU pass and a TD pass first")
        if td.shape[0] != bu.shape[0]:
            raise ValueError(f"{self!r}: the cached TD activity (batch {td.shape[0]}) and BU input "
                             f"(batch {bu.shape[0]}) come from different batches")
        delta = self._ch_weight_delta(td)
        _adopt_grad(self.weight, delta)
        if self.bias is not None:
            self.bias.accumulate_grad(td.sum(axis=(0,) + tuple(range(2, td.ndim))))
        if self.back_weight is not None:
            self.back_weight.accumulate_grad(self._to_back(delta))
        if self.back_bias is not None:
            self.back_bias.accumulate_grad(bu.sum(axis=tuple(range(2, bu.ndim))).mean(axis=0))

    # --------------------------------------------------------------- straight-through task head
    def _ste_backward(self, a, d, gated: bool = True, train_td: bool = False):
        """Backward of the task TD pass (ReLU, no gating), given dL/d(TD output) split in a chain part
        ``a`` (through the ReLU) and a gate part ``d`` (identity STE of the gate of the unit below).
        Returns the same pair for the TD input: (chain part, this unit's own gate gradient)."""
        g = _combine(a, self._task_out, d)
        a_in = None
        if g is not None:
            if train_td:
                self._accumulate_td_weight_grad(self._task_in, g)
            a_in = self._td_adjoint(g)
        return a_in, (self._gate_grad() if gated else None)


class BUTDLinear(_TopDownWeights, nn.Linear):
    r"""Linear BU-TD layer: BU ``x Wᵀ + b`` ``(B, in) -> (B, out)``, TD ``t W̄ᵀ`` ``(B, out) -> (B, in)``
    (per sample W̄ t; ``t W`` for shared weights).

    Parameters: ``weight (out, in)``, ``bias (out,)``; with ``top_down != "shared"`` also
    ``back_weight (in, out)`` (so that the TD pass is ``back_weight @ t``); with ``back_bias=True``
    ``back_bias (in,)``. See :mod:`nnlocal.methods.butd` for the passes and the CH rule.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, top_down: str = "shared",
                 back_bias: bool = False, rng=None, dtype=np.float32, device: str = "cpu"):
        rng = get_rng(rng)
        nn.Linear.__init__(self, in_features, out_features, bias=bias, rng=rng, dtype=dtype)
        self._init_top_down(top_down, back_bias, rng, dtype, device)

    def extra_repr(self) -> str:
        return nn.Linear.extra_repr(self) + self._td_extra_repr()

    def _in_size(self):
        return self.in_features

    @staticmethod
    def _to_back(w):
        return w.T

    _from_back = _to_back

    def _check_bu_input(self, x):
        _check_float(self, x)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise shape_error(repr(self), f"(B, {self.in_features})", x.shape)

    def _check_td_input(self, t):
        if t.ndim != 2 or t.shape[1] != self.out_features:
            raise shape_error(repr(self), f"(B, {self.out_features})", t.shape, name="top-down input")

    def _td_op(self, t, w):
        return t @ w                        # (B, out) @ (out, in)

    def _td_adjoint(self, g):
        return g @ self._td_weight(g.dtype).T

    def _ch_weight_delta(self, td):
        return td.T @ self.bu_neurons.astype(td.dtype, copy=False)

    def _accumulate_td_weight_grad(self, s, g):
        """Add dL/d(TD weight) of the TD map ``a = s @ w`` (w in W's layout) given g = dL/da."""
        delta = s.T @ g                     # (out, in)
        if self.back_weight is None:
            self.weight.accumulate_grad(delta)
        else:
            self.back_weight.accumulate_grad(delta.T)
        if self.back_bias is not None:
            self.back_bias.accumulate_grad(g.sum(axis=0))


class BUTDConv2d(_TopDownWeights, nn.Conv2d):
    r"""2-d convolutional BU-TD layer: BU ``conv2d(x, W) + b``, TD ``conv_transpose2d(t, W̄)``.

    ``x (B, C_in, H, W) -> (B, C_out, H', W')``; the TD pass maps ``(B, C_out, H', W')`` back to
    ``(B, C_in, H, W)`` with ``output_padding = H - [(H'-1)s - 2p + d(k-1) + 1]`` per axis, computed
    from the BU input size (the last ``forward``'s, or ``input_size`` before any). ``back_weight``
    has W's shape ``(C_out, C_in/groups, kh, kw)``. String padding is not supported (as in the
    original). ``groups = channels`` with a stride is the depthwise "pooling" of :func:`depthwise_pool`.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, top_down: str = "shared", back_bias: bool = False,
                 input_size=None, rng=None, dtype=np.float32, device: str = "cpu"):
        if isinstance(padding, str):
            raise ValueError(f"BUTDConv2d: string padding {padding!r} is not supported (the TD pass needs an "
                             "explicit padding); give an int or a pair")
        rng = get_rng(rng)
        nn.Conv2d.__init__(self, in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                           dilation=dilation, groups=groups, bias=bias, rng=rng, dtype=dtype)
        self._init_top_down(top_down, back_bias, rng, dtype, device)
        self.input_size = None if input_size is None else F.ntuple(input_size, 2, "input_size")

    def extra_repr(self) -> str:
        return nn.Conv2d.extra_repr(self) + self._td_extra_repr()

    def _in_size(self):
        return self.in_channels

    @staticmethod
    def _to_back(w):
        return w

    _from_back = _to_back

    def _check_bu_input(self, x):
        _check_float(self, x)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise shape_error(repr(self), f"(B, {self.in_channels}, H, W)", x.shape)
        self.input_size = tuple(x.shape[2:])

    def _check_td_input(self, t):
        if t.ndim != 4 or t.shape[1] != self.out_channels:
            raise shape_error(repr(self), f"(B, {self.out_channels}, H', W')", t.shape, name="top-down input")

    def td_output_padding(self, td_spatial) -> tuple:
        """``output_padding`` that maps a TD input of spatial size ``td_spatial`` back to the BU input size."""
        if self.input_size is None:
            raise RuntimeError(f"{self!r}: the TD pass needs the BU input size: run forward once or give "
                               "input_size= to the constructor")
        base = F.conv_transpose_output_shape(td_spatial, self.kernel_size, self.stride, self.padding, 0,
                                             self.dilation)
        op = tuple(h - b for h, b in zip(self.input_size, base))
        if any(o < 0 or (o >= s and o >= d) for o, s, d in zip(op, self.stride, self.dilation)):
            raise ValueError(f"{self!r}: a top-down input of spatial size {tuple(td_spatial)} cannot map back to "
                             f"the BU input size {self.input_size}")
        return op

    def _td_op(self, t, w):
        op = self.td_output_padding(t.shape[2:])
        return F.conv_transpose(t, w, None, self.stride, self.padding, op, self.groups, self.dilation)

    def _td_adjoint(self, g):
        return F.conv(g, self._td_weight(g.dtype), None, self.stride, self.padding, self.dilation, self.groups)

    def _ch_weight_delta(self, td):
        cols, w, geom, _ = self._saved()    # im2col of bu_neurons, cached by the BU pass
        if td.shape != (geom.in_shape[0], self.out_channels) + geom.out_spatial:
            raise shape_error(repr(self), str((geom.in_shape[0], self.out_channels) + geom.out_spatial), td.shape,
                              name="cached top-down activity")
        return F.weight_grad_from_cols(td.astype(cols.dtype, copy=False), cols, geom, w.shape)


def depthwise_pool(channels: int, kernel_size, stride=None, padding=0, bias: bool = True, **kwargs) -> BUTDConv2d:
    """The original's learnt "pooling": a depthwise (``groups = channels``) strided convolution.

    ``stride`` defaults to ``kernel_size``; other keyword arguments go to :class:`BUTDConv2d`.
    """
    return BUTDConv2d(channels, channels, kernel_size, stride=kernel_size if stride is None else stride,
                      padding=padding, groups=channels, bias=bias, **kwargs)


class BUTDFlatten(_BUTD, nn.Flatten):
    """Flatten ``(B, C, H, W) -> (B, C·H·W)`` in the BU pass; reshape back in the TD pass.

    The TD pass reshapes to the BU input shape (the last ``forward``'s, remembered across batches).
    Flags are accepted and ignored (there is nothing to rectify or gate here).
    """

    def __init__(self, device: str = "cpu"):
        nn.Flatten.__init__(self)
        self._butd_setup(device)
        self.input_shape = None

    def forward(self, x, non_linear: bool = False, lateral: bool = False):
        y = nn.Flatten.forward(self, x)
        self.bu_neurons = x
        self.input_shape = tuple(x.shape[1:])
        return y

    def back_forward(self, t, non_linear: bool = False, lateral: bool = False, bias_blocking: bool = False,
                     need_output: bool = True):
        if self.input_shape is None:
            raise RuntimeError(f"{self!r}: the TD pass needs the BU input shape: run forward once first")
        if t.ndim != 2 or t.shape[1] != int(np.prod(self.input_shape)):
            raise shape_error(repr(self), f"(B, {int(np.prod(self.input_shape))})", t.shape, name="top-down input")
        self.td_neurons = t
        self.td_output = t.reshape((t.shape[0],) + self.input_shape) if need_output else None
        return self.td_output

    def counter_hebb_update(self) -> None:
        pass

    def _gated_units(self, prefix=""):
        return iter(())

    def _input_grad_ungated(self):
        return self._grad_out.reshape((self._grad_out.shape[0],) + self.input_shape)

    def _ste_backward(self, a, d, gated=True, train_td=False):
        return tuple(None if v is None else v.reshape(v.shape[0], -1) for v in (a, d))


# ================================================================================ containers
def _has_params(m) -> bool:
    return next(iter(m.parameters()), None) is not None


class BUTDSequential(_BUTD, nn.Sequential):
    """BU-TD modules in order: ``forward`` runs them bottom-up with the same flags, ``back_forward``
    top-down in reverse, ``backward`` is backprop, ``counter_hebb_update`` updates every child.

    ``out_features`` (the flattened output size, which the heads need) is set by :meth:`infer_shapes`;
    the builders call it.
    """

    def __init__(self, *modules, device: str = "cpu"):
        nn.Sequential.__init__(self, *modules)
        for i, m in enumerate(modules):
            if not isinstance(m, _BUTD):
                raise TypeError(f"BUTDSequential: argument {i} is a {type(m).__name__}, not a BU-TD module")
        self._butd_setup(device)
        self.out_features = None

    def forward(self, x, non_linear: bool = False, lateral: bool = False):
        self.bu_neurons = x
        for m in self:
            x = m(x, non_linear=non_linear, lateral=lateral)
        return x

    def back_forward(self, t, non_linear: bool = False, lateral: bool = False, bias_blocking: bool = False,
                     need_output: bool = True):
        self.td_neurons = t
        mods = list(self)
        # a child's TD output is needed only by a child below it that has weights (or by the caller)
        below = [False] * len(mods)
        for i in range(1, len(mods)):
            below[i] = below[i - 1] or _has_params(mods[i - 1])
        for i in reversed(range(len(mods))):
            if t is None:       # nothing below needs a TD signal (no weights, output not wanted)
                break
            need = need_output or below[i]
            t = mods[i].back_forward(t, non_linear=non_linear, lateral=lateral, bias_blocking=bias_blocking,
                                     need_output=need)
            if self._record and need and i > 0 and lateral and not non_linear:  # CH error pass: dL/dh (STE)
                mods[i - 1]._set_grad_out(mods[i]._input_grad_ungated())
        self.td_output = t if need_output else None
        return self.td_output

    def infer_shapes(self, in_shape) -> "BUTDSequential":
        """Dry BU pass of one zero sample of shape ``in_shape`` (without batch): records every layer's
        input size (so a TD pass can run before any BU pass) and ``out_features``; clears the caches."""
        dtype = next(iter(self.parameters())).data.dtype
        out = self(np.zeros((1,) + _shape(in_shape), dtype=dtype), non_linear=True)
        self.out_features = int(np.prod(out.shape[1:]))
        for m in self.modules():
            if isinstance(m, _BUTD):
                m.bu_neurons = m.td_neurons = m.td_output = m._gate_src = None
            object.__setattr__(m, "_cache", None)
        return self

    def _set_grad_out(self, g):
        list(self)[-1]._set_grad_out(g)

    def _input_grad_ungated(self):
        return list(self)[0]._input_grad_ungated()

    def _gated_units(self, prefix=""):
        for name, child in self.named_children():
            yield from child._gated_units(f"{prefix}.{name}" if prefix else name)

    def _ste_backward(self, a, d, gated=True, train_td=False):
        for m in self:
            a, d = m._ste_backward(a, d, gated, train_td)
        return a, d


class BUTDBasicBlock(_BUTD, nn.Module):
    r"""ResNet BasicBlock without normalisation, BU-TD version.

    BU: ``h1 = GaLU(ReLU(conv1(x)))``, ``z = conv2(h1) + shortcut(x)``, ``out = GaLU(ReLU(z))``
    (conv 3×3, the first with ``stride``; shortcut = identity, or a 1×1 conv with ``stride`` when
    the shape changes). The inner ReLU is always applied; ``non_linear`` / ``lateral`` act on the
    block output (and ``lateral`` also on the inner GaLU, gated by conv1's TD activity).

    TD: ``t1 = conv2ᵀ t`` with the block's flags (in the error pass this gates by [h1 > 0]),
    then ``conv1ᵀ t1 + shortcutᵀ t`` summed *before* the block's ReLU / gate by [x > 0]. With shared
    weights, CH through this block is exact backprop (the residual sum precedes the gate).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, bias: bool = False,
                 top_down: str = "shared", back_bias: bool = False, rng=None, dtype=np.float32,
                 device: str = "cpu"):
        nn.Module.__init__(self)
        self._butd_setup(device)
        rng = get_rng(rng)
        kw = dict(bias=bias, top_down=top_down, back_bias=back_bias, rng=rng, dtype=dtype, device=device)
        self.conv1 = BUTDConv2d(in_channels, out_channels, 3, stride=stride, padding=1, **kw)
        self.conv2 = BUTDConv2d(out_channels, out_channels, 3, stride=1, padding=1, **kw)
        self.downsample = (BUTDConv2d(in_channels, out_channels, 1, stride=stride, **kw)
                           if stride != 1 or in_channels != out_channels else None)

    def forward(self, x, non_linear: bool = False, lateral: bool = False):
        h1 = self.conv1(x, non_linear=True, lateral=lateral)
        z = self.conv2(h1)
        z += self.downsample(x) if self.downsample is not None else x
        self.bu_neurons = x
        self._save_for_backward(True)
        return self._activate(z, non_linear, lateral)

    def backward(self, grad_output):
        self._saved()
        gz = self._bp_gate(grad_output)
        gx = self.conv1.backward(self.conv2.backward(gz))
        gx += self.downsample.backward(gz) if self.downsample is not None else gz
        return gx

    def back_forward(self, t, non_linear: bool = False, lateral: bool = False, bias_blocking: bool = False,
                     need_output: bool = True):
        self.td_neurons = t
        kw = dict(bias_blocking=bias_blocking, need_output=need_output)
        t1 = self.conv2.back_forward(t, non_linear=non_linear, lateral=lateral, bias_blocking=bias_blocking)
        if self._record and lateral and not non_linear:
            self.conv1._set_grad_out(self.conv2._input_grad_ungated())
        a = self.conv1.back_forward(t1, **kw)
        if self.downsample is not None:
            s = self.downsample.back_forward(t, **kw)
        else:
            s = t if need_output else None
        if not need_output:
            self.td_output = None
            return None
        self.td_output = self._td_activate(a + s, non_linear, lateral)
        return self.td_output

    def _gated_units(self, prefix=""):
        yield (f"{prefix}.conv1" if prefix else "conv1"), self.conv1
        yield prefix, self

    def _ste_backward(self, a, d, gated=True, train_td=False):
        g0 = _combine(a, self._task_out, d)
        a1 = None if g0 is None else self.conv1._td_adjoint(g0)
        g2 = _combine(a1, self.conv1._task_in, self.conv1._gate_grad())
        a_in = self.conv2._td_adjoint(g2)
        if g0 is not None:
            a_in += self.downsample._td_adjoint(g0) if self.downsample is not None else g0
        return a_in, self._gate_grad()


# ================================================================================ networks
class BUTDNet(_BUTD, nn.Module):
    """Classification BU-TD net: a core (BU with ReLU) and a plain linear prediction head.

    ``net(x)`` -> logits; ``net.backward(g)`` is backprop; :func:`counter_hebb_` runs the error TD
    pass (head, then core) and the CH update.
    """

    def __init__(self, core: BUTDSequential, n_classes: int, top_down: str = "shared", rng=None,
                 dtype=np.float32, device: str = "cpu"):
        nn.Module.__init__(self)
        self._butd_setup(device)
        if getattr(core, "out_features", None) is None:
            raise ValueError("BUTDNet: core.out_features is unknown; call core.infer_shapes(in_shape) or use "
                             "fc_core / simple_core / resnet18_core")
        self.core = core
        self.head = BUTDLinear(core.out_features, n_classes, top_down=top_down, rng=rng, dtype=dtype, device=device)

    def forward(self, x):
        return self.head(self.core(x, non_linear=True))

    def backward(self, grad_output):
        return self.core.backward(self.head.backward(grad_output))

    def back_forward(self, t, non_linear: bool = False, lateral: bool = True, bias_blocking: bool = True,
                     need_output: bool = True):
        """The error TD pass: head, then core (the defaults are the CH flags)."""
        kw = dict(non_linear=non_linear, lateral=lateral, bias_blocking=bias_blocking)
        return self.core.back_forward(self.head.back_forward(t, **kw), need_output=need_output, **kw)


class TaskBUTDNet(_BUTD, nn.Module):
    r"""Instruction-guided multi-task BU-TD net (the original's ``TaskBUTDNet``), any number of tasks.

    ``net(x, task)``: ``task`` is an int, int indices ``(B,)`` (one-hot encoded to
    ``task_vector_size = n_tasks``) or float task vectors ``(B, task_vector_size)``.

    1. :meth:`instruct` (TD, ReLU, no gating): ``task -> task_head -> core``; every core unit caches
       its TD activity, whose positive part is the task's sub-network.
    2. BU pass of ``x`` through the core with ReLU and GaLU, then the plain linear ``head``.
    3. ``multi_decoders=True``: the head has ``n_tasks · n_classes`` outputs and returns the block
       of each sample's task (needs task indices).

    ``task_head`` is ``core_out -> task_embedding -> task_vector_size`` in BU layout (used only in
    the TD direction, without biases); ``task_embedding=None`` makes it a single layer.

    **Faithful** (``train_task_head=False``): the task head stays at its random initialisation
    (its parameters have ``requires_grad=False``); with shared weights the deeper masks still move
    as the core weights learn.

    **Extension** (``train_task_head=True``): a straight-through estimator (STE) gives the task head
    a gradient. A gate is g_l = [u_l > 0], where u_l is the pre-ReLU TD value at unit l and
    td_l = ReLU(u_l) also feeds the TD pass below. The STE replaces d g_l / d u_l by 1 (Bengio et
    al. 2013's identity STE), so with r_l the unit's output before its gate and dL/dh_l the error at
    its gated output:

    .. math::

        \frac{\partial L}{\partial u_l} = [u_l > 0] \odot
            \Big(\frac{\partial L}{\partial td_l}\Big)_{\text{TD chain}} + \frac{\partial L}{\partial h_l} \odot r_l

    and the chain runs from the bottom unit up through the core's TD maps (adjoints: W for Wᵀ,
    a convolution for a transposed one) into the task head, whose TD weights receive the gradient.
    The core's weights keep exactly their BP / CH gradient (the STE gradient is not applied to
    them: like a ``detach`` of the core in the TD pass). dL/dh_l comes from ``backward`` (BP) or from
    the error TD pass before its lateral gate (CH); both agree with shared weights.
    """

    def __init__(self, core: BUTDSequential, n_classes: int, n_tasks: int, task_embedding: int | None = 50,
                 task_vector_size: int | None = None, multi_decoders: bool = False, train_task_head: bool = False,
                 top_down: str = "shared", rng=None, dtype=np.float32, device: str = "cpu"):
        nn.Module.__init__(self)
        self._butd_setup(device)
        if getattr(core, "out_features", None) is None:
            raise ValueError("TaskBUTDNet: core.out_features is unknown; call core.infer_shapes(in_shape) first")
        rng = get_rng(rng)
        self.n_classes, self.n_tasks = int(n_classes), int(n_tasks)
        self.task_vector_size = int(task_vector_size or n_tasks)
        self.multi_decoders = bool(multi_decoders)
        self.train_task_head = bool(train_task_head)
        kw = dict(top_down=top_down, rng=rng, dtype=dtype, device=device)
        self.core = core
        sizes = [core.out_features] + ([task_embedding] if task_embedding else []) + [self.task_vector_size]
        self.task_head = BUTDSequential(*[BUTDLinear(a, b, bias=False, **kw) for a, b in zip(sizes[:-1], sizes[1:])])
        if not self.train_task_head:
            for p in self.task_head.parameters():
                p.requires_grad = False
        self.head = BUTDLinear(core.out_features, self.n_classes * (self.n_tasks if multi_decoders else 1), **kw)
        self._set_record(self.train_task_head)
        self._task_index = None

    def extra_repr(self) -> str:
        return (f"n_classes={self.n_classes}, n_tasks={self.n_tasks}, multi_decoders={self.multi_decoders}, "
                f"train_task_head={self.train_task_head}")

    # --------------------------------------------------------------- the three phases
    def task_vectors(self, task, batch: int | None = None, dtype=np.float32):
        """``(vectors (B, task_vector_size), indices (B,) or None)`` from ints, indices or vectors."""
        task = np.asarray(task)
        if task.dtype.kind in "iu":
            idx = np.broadcast_to(task, (batch,) if task.ndim == 0 and batch is not None else task.shape)
            idx = np.atleast_1d(idx).astype(np.int64)
            if idx.ndim != 1 or (idx.size and (idx.min() < 0 or idx.max() >= self.n_tasks)):
                raise ValueError(f"{type(self).__name__}: task indices must be ints in [0, {self.n_tasks}), "
                                 f"got shape {task.shape}")
            if self.task_vector_size != self.n_tasks:
                raise ValueError(f"{type(self).__name__}: task_vector_size={self.task_vector_size} != n_tasks: "
                                 "give task vectors, not indices")
            vec = np.zeros((len(idx), self.n_tasks), dtype=dtype)
            vec[np.arange(len(idx)), idx] = 1
            return vec, idx
        check_float_array(repr(self), task, "task vectors")
        if task.ndim != 2 or task.shape[1] != self.task_vector_size:
            raise shape_error(type(self).__name__, f"(B, {self.task_vector_size})", task.shape, name="task vectors")
        return task, None

    def instruct(self, task, batch: int | None = None, dtype=np.float32) -> None:
        """Phase 1: the TD pass of the task through the task head and the core (sets every mask)."""
        vec, idx = self.task_vectors(task, batch, dtype)
        # The pass is the same for every sample with the same task: run it once per distinct task
        # vector and gather the rows (exact; a batch usually holds only n_tasks distinct vectors).
        uniq, inverse = np.unique(vec, axis=0, return_inverse=True)
        t = self.task_head.back_forward(uniq, non_linear=True, lateral=False)
        self.core.back_forward(t, non_linear=True, lateral=False, need_output=False)
        if len(uniq) != len(vec):
            inverse = inverse.reshape(-1)
            for m in list(self.task_head.modules()) + list(self.core.modules()):
                if isinstance(m, _BUTD):
                    m.td_neurons = None if m.td_neurons is None else m.td_neurons[inverse]
                    m.td_output = None if m.td_output is None else m.td_output[inverse]
        self._task_index = idx
        if self.train_task_head:
            self._snapshot_task()

    def forward(self, x, task):
        """Phases 1-3: instruct with ``task``, gated BU pass of ``x``, prediction head -> logits (B, C)."""
        check_float_array(repr(self), x)
        self.instruct(task, batch=len(x), dtype=x.dtype)
        if self._task_index is not None and len(self._task_index) != len(x):
            raise ValueError(f"{type(self).__name__}: {len(self._task_index)} tasks for a batch of {len(x)}")
        out = self.head(self.core(x, non_linear=True, lateral=True))
        if self.multi_decoders:
            if self._task_index is None:
                raise ValueError(f"{type(self).__name__}: multi_decoders needs task indices, not task vectors")
            out = out.reshape(len(x), self.n_tasks, self.n_classes)[np.arange(len(x)), self._task_index]
        return out

    def _expand(self, g):
        """dL/d(selected logits) -> dL/d(all head outputs) (zeros for the other tasks' decoders)."""
        if not self.multi_decoders:
            return g
        full = np.zeros((len(g), self.n_tasks, self.n_classes), dtype=g.dtype)
        full[np.arange(len(g)), self._task_index] = g
        return full.reshape(len(g), -1)

    def backward(self, grad_output):
        """Backprop of the gated BU pass (gates are constants); with ``train_task_head`` also the STE."""
        gx = self.core.backward(self.head.backward(self._expand(grad_output)))
        if self.train_task_head:
            self._task_head_grad()
        return gx

    def back_forward(self, t, non_linear: bool = False, lateral: bool = True, bias_blocking: bool = True,
                     need_output: bool = True):
        """The error TD pass from the prediction head through the core (overwrites the task masks)."""
        kw = dict(non_linear=non_linear, lateral=lateral, bias_blocking=bias_blocking)
        th = self.head.back_forward(self._expand(t), **kw)
        if self._record and lateral and not non_linear:
            self.core._set_grad_out(self.head._input_grad_ungated())
        return self.core.back_forward(th, need_output=need_output, **kw)

    def counter_hebb_update(self) -> None:
        """CH for the core and the prediction head; the task head only with ``train_task_head`` (STE)."""
        self.core.counter_hebb_update()
        self.head.counter_hebb_update()
        if self.train_task_head:
            self._task_head_grad()

    def _task_head_grad(self) -> None:
        a, d = self.core._ste_backward(None, None)
        self.task_head._ste_backward(a, d, gated=False, train_td=True)


# ================================================================================ learning
def counter_hebb_(net, grad_logits: np.ndarray) -> None:
    """Counter-Hebb learning step: fill (accumulate into) every parameter's ``.grad``.

    Runs the error TD pass of ``net`` (a :class:`BUTDNet`, :class:`TaskBUTDNet` or any module with
    ``back_forward`` / ``counter_hebb_update``) from ``grad_logits`` = dL/d(logits) of the batch loss
    ``(B, C)`` with ``non_linear=False, lateral=True, bias_blocking=True``, then adds
    ΔW = Σ_b td_b ⊗ bu_b into each ``weight.grad`` (see the module docstring). With shared top-down
    weights this equals ``net.backward(grad_logits)``'s parameter gradients. Call it after the
    forward pass of the same batch; an optimizer then consumes ``.grad``.
    """
    check_float_array("counter_hebb_", grad_logits, "grad_logits")
    net.back_forward(grad_logits, non_linear=False, lateral=True, bias_blocking=True, need_output=False)
    net.counter_hebb_update()


_LOSSES = {"cross_entropy": nn.CrossEntropyLoss, "ce": nn.CrossEntropyLoss,
           "bce": nn.BCEWithLogitsLoss, "mse": nn.MSELoss}


def loss_and_grad(loss: str, logits: np.ndarray, target) -> tuple[float, np.ndarray]:
    r"""``(mean loss, dL/d(logits))`` for the original's three output losses.

    ``"cross_entropy"`` (class targets): (softmax(o) − onehot(y)) / B; ``"bce"`` (BCE on logits,
    float targets of the logits' shape): (σ(o) − y) / (B·C); ``"mse"``: 2 (o − y) / (B·C). These are
    the original's per-sample output gradients divided by B (see the module docstring), i.e. the
    gradients of torch's mean-reduced losses; they are nnlocal's losses' ``backward()``.
    """
    if loss not in _LOSSES:
        raise ValueError(f"loss_and_grad: unknown loss {loss!r}; expected one of {sorted(_LOSSES)}")
    fn = _LOSSES[loss]()
    value = fn(logits, target)
    return value, fn.backward()


# ================================================================================ architectures
def _shape(in_shape):
    return (int(in_shape),) if np.ndim(in_shape) == 0 else tuple(int(v) for v in in_shape)


def fc_core(in_shape=(1, 28, 28), hidden: int = 500, depth: int = 1, top_down: str = "shared", rng=None,
            dtype=np.float32, device: str = "cpu") -> BUTDSequential:
    """The original's ``fc net`` core: Flatten -> ``depth`` × BUTDLinear(-> hidden) (ReLU in the BU pass)."""
    rng = get_rng(rng)
    in_shape = _shape(in_shape)
    sizes = [int(np.prod(in_shape))] + [hidden] * depth
    kw = dict(top_down=top_down, rng=rng, dtype=dtype, device=device)
    layers = [BUTDFlatten(device=device)] + [BUTDLinear(a, b, **kw) for a, b in zip(sizes[:-1], sizes[1:])]
    return BUTDSequential(*layers, device=device).infer_shapes(in_shape)


def fc_net(in_shape=(1, 28, 28), n_classes: int = 10, hidden: int = 500, depth: int = 1,
           top_down: str = "shared", rng=None, dtype=np.float32, device: str = "cpu") -> BUTDNet:
    """``BUTDNet(fc_core(...), n_classes)``: the FC-500 net of the original's MNIST configs."""
    rng = get_rng(rng)
    core = fc_core(in_shape, hidden, depth, top_down, rng, dtype, device)
    return BUTDNet(core, n_classes, top_down=top_down, rng=rng, dtype=dtype, device=device)


def simple_core(in_shape=(1, 28, 28), channels: int = 32, out_features: int = 50, kernel_size: int = 5,
                padding: int = 0, pools=((2, 2), (3, 2)), top_down: str = "shared", rng=None,
                dtype=np.float32, device: str = "cpu") -> BUTDSequential:
    """The original's ``simple net`` core (Multi-MNIST): conv k×k (C_in -> 32) -> depthwise 2×2 stride 2
    -> conv k×k (32 -> 32) -> depthwise 3×3 stride 2 -> flatten -> Linear(-> 50).

    ``pools`` gives the two depthwise (kernel, stride) pairs; ``kernel_size`` / ``padding`` adapt it
    to small images (the 8×8 digits use ``kernel_size=3, padding=1``).
    """
    rng = get_rng(rng)
    in_shape = _shape(in_shape)
    kw = dict(top_down=top_down, rng=rng, dtype=dtype, device=device)
    (k1, s1), (k2, s2) = pools
    convs = [BUTDConv2d(in_shape[0], channels, kernel_size, padding=padding, **kw),
             depthwise_pool(channels, k1, s1, **kw),
             BUTDConv2d(channels, channels, kernel_size, padding=padding, **kw),
             depthwise_pool(channels, k2, s2, **kw),
             BUTDFlatten(device=device)]
    flat = BUTDSequential(*convs, device=device).infer_shapes(in_shape).out_features
    return BUTDSequential(*convs, BUTDLinear(flat, out_features, **kw), device=device).infer_shapes(in_shape)


def resnet18_core(in_shape=(3, 32, 32), widths=(64, 128, 256, 512), blocks=(2, 2, 2, 2), bias: bool = False,
                  top_down: str = "shared", rng=None, dtype=np.float32, device: str = "cpu") -> BUTDSequential:
    """ResNet-18 BU-TD without normalisation (the original's ``no_norm`` ResNet18): conv 3×3 stride 1 stem,
    four stages of BasicBlocks (the first of stages 2-4 with stride 2), no pooling, flatten.

    ``widths`` / ``blocks`` shrink it (the tests use a two-stage, one-block version).
    """
    rng = get_rng(rng)
    in_shape = _shape(in_shape)
    kw = dict(top_down=top_down, rng=rng, dtype=dtype, device=device)
    layers = [BUTDConv2d(in_shape[0], widths[0], 3, padding=1, bias=bias, **kw)]
    c = widths[0]
    for stage, (w, n) in enumerate(zip(widths, blocks)):
        for i in range(n):
            layers.append(BUTDBasicBlock(c, w, stride=2 if (stage > 0 and i == 0) else 1, bias=bias, **kw))
            c = w
    layers.append(BUTDFlatten(device=device))
    return BUTDSequential(*layers, device=device).infer_shapes(in_shape)


# ================================================================================ mask analysis
def task_masks(net: TaskBUTDNet, tasks=None) -> dict[str, np.ndarray]:
    """The sub-network each task selects: ``{unit name: bool mask (n_tasks, *unit shape)}``.

    The masks depend only on the task (the instruction TD pass never sees the image), so one TD
    pass per task gives them. ``tasks`` defaults to every task index.
    """
    tasks = np.arange(net.n_tasks) if tasks is None else tasks
    dtype = net.head.weight.data.dtype
    net.instruct(tasks, dtype=dtype)
    return {name or "core": unit.td_neurons > 0 for name, unit in net.core._gated_units()}


def mask_stats(masks: dict[str, np.ndarray]) -> list[dict]:
    """Per gated unit: size, active % per task, and the mean pairwise binary-cosine overlap
    |A ∧ B| / √(|A|·|B|) between tasks' masks (1 = the same sub-network, 0 = disjoint)."""
    rows = []
    for name, m in masks.items():
        flat = m.reshape(len(m), -1).astype(np.float64)
        counts = flat.sum(axis=1)
        row = {"unit": name, "units": flat.shape[1]}
        for k, c in enumerate(counts):
            row[f"task {k} active %"] = float(100.0 * c / flat.shape[1])
        inter = flat @ flat.T
        denom = np.sqrt(np.outer(counts, counts))
        cos = np.divide(inter, denom, out=np.zeros_like(inter), where=denom > 0)
        iu = np.triu_indices(len(m), 1)
        row["overlap (cosine)"] = float(cos[iu].mean()) if len(iu[0]) else 1.0
        rows.append(row)
    return rows
