r"""The BU-TD layers: ``BUTDLinear``, ``BUTDConv2d`` (and ``depthwise_pool``), ``BUTDFlatten``.

Each layer runs the two passes of ``reference.py`` through the same connections: ``forward`` (BU)
and ``back_forward`` (TD), caching the input of each (``bu_neurons``, ``td_neurons``);
``backward`` is backprop of the BU pass (the gates are constants) and ``counter_hebb_update`` adds
the Counter-Hebb update into ``.grad``. GaLU runs on ``device`` through
:func:`nnlocal.kernels.implementation` (the Numba kernel, its NumPy reference or the CUDA twin).

Public entry points (``forward``, ``back_forward`` and the nets' ``forward``) check their input
(a finite float array with a non-empty batch; ``ValueError`` naming the class otherwise) and keep
a private *copy* of it, so editing the array in place after the call changes no gradient. The
containers call their children's unchecked ``_bu`` / ``_td``, which see only arrays nnlocal made.
"""
from __future__ import annotations

import numbers

import numpy as np

from ... import kernels, nn
from ..._checks import check_finite_input, check_float_array, check_grad_output, shape_error
from ..._rng import get_rng
from ...kernels import check_device
from ...nn import functional as F
from ...nn.init import kaiming_uniform, uniform
from . import reference as R

__all__ = ["galu", "BUTDLinear", "BUTDConv2d", "BUTDFlatten", "depthwise_pool", "TOP_DOWN_MODES"]

#: The top-down weight settings: ``"shared"`` (W̄ = Wᵀ, exact backprop), ``"separate"`` (own W̄, learnt
#: with the same transposed increment), ``"symmetric"`` (own W̄ initialised to Wᵀ), ``"fa"`` (own W̄, frozen).
TOP_DOWN_MODES = ("shared", "separate", "symmetric", "fa")


def galu(x: np.ndarray, gate: np.ndarray, relu: bool = False) -> np.ndarray:
    """Gated linear unit ``x ⊙ [gate > 0]`` (``max(x, 0) ⊙ [gate > 0]`` with ``relu=True``).

    ``x`` and ``gate`` have the same shape. The gate is a mask: no gradient flows to it. Runs the
    implementation chosen by :func:`nnlocal.kernels.use` (see :func:`.reference.galu`).
    """
    return kernels.implementation(__package__).galu(x, gate, relu)


def positive_int(owner: str, name: str, value) -> int:
    """``value`` as an int >= 1; a ``ValueError`` naming ``owner`` otherwise (0, -1, 3.7, "3", True)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{owner}: {name} must be an int >= 1, got {value!r}")
    return int(value)


# ================================================================================ common machinery
class _BUTD:
    """Mixin shared by every BU-TD module: the checked public passes, the two caches, the gating, and
    the bookkeeping of the ``train_task_head`` extension (only active after ``_set_record(True)``).

    Subclasses implement ``_bu(x, non_linear, lateral)`` and ``_td(t, non_linear, lateral,
    bias_blocking, need_output)``; ``forward`` / ``back_forward`` check and copy, then call them.
    """

    _record = False          # set by TaskBUTDNet(train_task_head=True): keep what the STE needs

    def _butd_setup(self, device: str) -> None:
        self.device = check_device(device, type(self).__name__)
        self.bu_neurons = None      # input of the last BU pass
        self.td_neurons = None      # input of the last TD pass (TD activity at the output side)
        self.td_output = None       # output of the last TD pass
        self._gate_src = None       # what the BP mask of the last BU pass reads ([src > 0])
        self._out_meta = None       # (shape, dtype) of the last BU output, for backward's check

    # --------------------------------------------------------------- public, checked passes
    def _entry(self, x, name: str = "input") -> np.ndarray:
        """The checks of a public entry point; returns a private copy of ``x``."""
        check_float_array(self, x, name)
        if x.ndim < 1 or x.shape[0] == 0:
            raise shape_error(self, "(B, ...) with B >= 1", x.shape, name)
        check_finite_input(self, x, name)
        return x.copy()

    def forward(self, x: np.ndarray, non_linear: bool = False, lateral: bool = False) -> np.ndarray:
        """BU pass: optional ReLU (``non_linear``), optional GaLU by the cached TD activity (``lateral``)."""
        return self._bu(self._entry(x), non_linear, lateral)

    def back_forward(self, t: np.ndarray, non_linear: bool = False, lateral: bool = False,
                     bias_blocking: bool = False, need_output: bool = True):
        """TD pass: optional ReLU, optional GaLU by the cached BU input; ``bias_blocking`` drops b̄.

        With ``need_output=False`` only the caches are set (the bottom layer during learning).
        """
        return self._td(self._entry(t, "top-down input"), non_linear, lateral, bias_blocking, need_output)

    def _done(self, out: np.ndarray) -> np.ndarray:
        self._out_meta = (out.shape, out.dtype)
        return out

    def _check_grad(self, g) -> None:
        """``backward``'s gradient must have the BU output's shape and dtype."""
        if self._out_meta is None:
            raise RuntimeError(f"{type(self).__name__}.backward() called before forward(): run forward first")
        check_grad_output(self, g, *self._out_meta)

    # --------------------------------------------------------------- gating
    def _galu(self, x: np.ndarray, gate: np.ndarray, relu: bool = False) -> np.ndarray:
        """:func:`galu` on ``self.device`` (the CUDA kernel round-trips the arrays: the convolutions
        and matrix products of BU-TD stay on the CPU)."""
        return kernels.implementation(__package__, self.device).galu(x, gate, relu)

    def _activate(self, z: np.ndarray, non_linear: bool, lateral: bool) -> np.ndarray:
        """BU output of pre-activation ``z``: :func:`.reference.activation` gated by ``td_neurons``."""
        if lateral:
            td = self.td_neurons
            if td is None:
                raise RuntimeError(f"{self!r}: forward(lateral=True) gates by the top-down activity; "
                                   "run a TD pass (back_forward) first")
            if td.shape != z.shape:
                raise shape_error(self, str(z.shape), td.shape, name="cached top-down activity (td_neurons)")
            if self._record:                # the STE needs the output before the gate
                self._ungated = R.activation(z, None, non_linear)
                h = self._galu(self._ungated, td)
            else:
                h = R.activation(z, td, non_linear, galu=self._galu)
            self._gate_src = h if non_linear else td
        else:
            h = np.maximum(z, z.dtype.type(0), out=z) if non_linear else z   # ReLU in place: z is ours
            self._gate_src = h if non_linear else None
        return h

    def _bp_gate(self, g: np.ndarray) -> np.ndarray:
        """dL/dz from dL/dh through ReLU and GaLU: g ⊙ [h > 0] (or g ⊙ [td > 0] without ReLU)."""
        if self._record:
            self._grad_out = g
        src = self._gate_src
        return g if src is None else self._galu(g, src)

    def _td_activate(self, a: np.ndarray, non_linear: bool, lateral: bool) -> np.ndarray:
        """TD output from ``a``: :func:`.reference.activation` gated by the cached BU input."""
        if self._record:
            self._td_ungated = a
        gate = None
        if lateral:
            gate = self.bu_neurons
            if gate is None:
                raise RuntimeError(f"{self!r}: back_forward(lateral=True) gates by the BU input; run forward first")
            if gate.shape != a.shape:
                raise shape_error(self, str(gate.shape), a.shape,
                                  name="top-down output (it must match the cached BU input)")
        return R.activation(a, gate, non_linear, galu=self._galu)

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
        """dL/d(gate) of this module's GaLU (:func:`.reference.ste_gate_grad`)."""
        return R.ste_gate_grad(self._grad_out, self._ungated)

    def _ste(self, chain, td, gate_grad):
        return R.ste_pre_relu_grad(chain, td, gate_grad, galu=self._galu)

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
    """Top-down weights, the two passes and the Counter-Hebb update of a Linear or Conv layer.

    Subclasses provide ``_pre_activation(x)`` (their base class's forward, which caches what BP
    needs), the shape checks, ``_td_op(t, w)`` (the TD map for the BU-layout weight ``w``), its
    adjoint ``_td_adjoint(g)``, ``_ch_weight_delta(td)`` and the layout maps ``_to_back`` /
    ``_from_back`` between W's layout and W̄'s.
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
    def _bu(self, x: np.ndarray, non_linear: bool = False, lateral: bool = False) -> np.ndarray:
        self._check_bu_input(x)
        z = self._pre_activation(x)
        self.bu_neurons = x
        return self._done(self._activate(z, non_linear, lateral))

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        """Backprop of the BU pass (the gates are constants): fills W.grad, b.grad, returns dL/dx."""
        self._check_grad(grad_output)
        return super().backward(self._bp_gate(grad_output))

    def _td(self, t, non_linear=False, lateral=False, bias_blocking=False, need_output=True):
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
        g = self._ste(a, self._task_out, d)
        a_in = None
        if g is not None:
            if train_td:
                self._accumulate_td_weight_grad(self._task_in, g)
            a_in = self._td_adjoint(g)
        return a_in, (self._gate_grad() if gated else None)


def _adopt_grad(p, g: np.ndarray) -> None:
    """``p.accumulate_grad(g)`` for a freshly computed ``g`` that nothing else holds: taken over as
    ``.grad`` without a copy when there is no gradient yet (the usual case after ``zero_grad``)."""
    if p.requires_grad and p.grad is None and g.dtype == p.data.dtype and g.shape == p.data.shape \
            and g.flags.c_contiguous:
        p.grad = g
    else:
        p.accumulate_grad(g)


class BUTDLinear(_TopDownWeights, nn.Linear):
    r"""Linear BU-TD layer: BU ``x Wᵀ + b`` ``(B, in) -> (B, out)``, TD ``t W̄ᵀ`` ``(B, out) -> (B, in)``
    (per sample W̄ t; ``t W`` for shared weights).

    Parameters: ``weight (out, in)``, ``bias (out,)``; with ``top_down != "shared"`` also
    ``back_weight (in, out)`` (so that the TD pass is ``back_weight @ t``); with ``back_bias=True``
    ``back_bias (in,)``. See :mod:`nnlocal.methods.butd.reference` for the passes and the CH rule.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, top_down: str = "shared",
                 back_bias: bool = False, rng=None, dtype=np.float32, device: str = "cpu"):
        in_features = positive_int("BUTDLinear", "in_features", in_features)
        out_features = positive_int("BUTDLinear", "out_features", out_features)
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

    def _pre_activation(self, x):
        return nn.Linear.forward(self, x)

    def _check_bu_input(self, x):
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise shape_error(self, f"(B, {self.in_features})", x.shape)

    def _check_td_input(self, t):
        if t.ndim != 2 or t.shape[1] != self.out_features:
            raise shape_error(self, f"(B, {self.out_features})", t.shape, name="top-down input")

    def _td_op(self, t, w):
        return R.linear_td(t, w)            # (B, out) @ (out, in)

    def _td_adjoint(self, g):
        return g @ self._td_weight(g.dtype).T

    def _ch_weight_delta(self, td):
        return R.counter_hebb(td, self.bu_neurons.astype(td.dtype, copy=False))[0]

    def _accumulate_td_weight_grad(self, s, g):
        """Add dL/d(TD weight) of the TD map ``a = s @ w`` (w in W's layout) given g = dL/da."""
        delta = R.linear_td_weight_grad(s, g)       # (out, in)
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
    The Counter-Hebb ΔW is the exact conv weight gradient with td as dL/dz (of the BU pass's input).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, top_down: str = "shared", back_bias: bool = False,
                 input_size=None, rng=None, dtype=np.float32, device: str = "cpu"):
        in_channels = positive_int("BUTDConv2d", "in_channels", in_channels)
        out_channels = positive_int("BUTDConv2d", "out_channels", out_channels)
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

    def _pre_activation(self, x):
        return nn.Conv2d.forward(self, x)

    def _check_bu_input(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise shape_error(self, f"(B, {self.in_channels}, H, W)", x.shape)
        self.input_size = tuple(x.shape[2:])

    def _check_td_input(self, t):
        if t.ndim != 4 or t.shape[1] != self.out_channels:
            raise shape_error(self, f"(B, {self.out_channels}, H', W')", t.shape, name="top-down input")

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
        _, _, geom, _ = self._saved()       # the BU pass's input, cached by nn.Conv2d
        if td.shape != (geom.in_shape[0], self.out_channels) + geom.out_spatial:
            raise shape_error(self, str((geom.in_shape[0], self.out_channels) + geom.out_spatial), td.shape,
                              name="cached top-down activity")
        return self.weight_grad(td)


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

    def _bu(self, x, non_linear: bool = False, lateral: bool = False):
        y = nn.Flatten.forward(self, x)
        self.bu_neurons = x
        self.input_shape = tuple(x.shape[1:])
        return self._done(y)

    def backward(self, grad_output):
        self._check_grad(grad_output)
        return nn.Flatten.backward(self, grad_output)

    def _td(self, t, non_linear=False, lateral=False, bias_blocking=False, need_output=True):
        if self.input_shape is None:
            raise RuntimeError(f"{self!r}: the TD pass needs the BU input shape: run forward once first")
        if t.ndim != 2 or t.shape[1] != int(np.prod(self.input_shape)):
            raise shape_error(self, f"(B, {int(np.prod(self.input_shape))})", t.shape, name="top-down input")
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
