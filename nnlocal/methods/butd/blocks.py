r"""BU-TD modules made of BU-TD modules: ``BUTDSequential`` and the ResNet ``BUTDBasicBlock``."""
from __future__ import annotations

import numpy as np

from ... import nn
from ..._rng import get_rng
from .layers import BUTDConv2d, _BUTD

__all__ = ["BUTDSequential", "BUTDBasicBlock"]


def sample_shape(in_shape) -> tuple:
    """One sample's shape as a tuple of ints (an int n means (n,))."""
    return (int(in_shape),) if np.ndim(in_shape) == 0 else tuple(int(v) for v in in_shape)


def _has_params(m) -> bool:
    return next(iter(m.parameters()), None) is not None


class BUTDSequential(_BUTD, nn.Sequential):
    """BU-TD modules in order: ``forward`` runs them bottom-up with the same flags, ``back_forward``
    top-down in reverse, ``backward`` is backprop, ``counter_hebb_update`` updates every child.

    ``in_shape`` (one sample's input shape) and ``out_features`` (the flattened output size, which
    the heads need) are set by :meth:`infer_shapes`; the builders call it.
    """

    def __init__(self, *modules, device: str = "cpu"):
        nn.Sequential.__init__(self, *modules)
        for i, m in enumerate(modules):
            if not isinstance(m, _BUTD):
                raise TypeError(f"BUTDSequential: argument {i} is a {type(m).__name__}, not a BU-TD module")
        self._butd_setup(device)
        self.in_shape = None
        self.out_features = None

    def _bu(self, x, non_linear: bool = False, lateral: bool = False):
        self.bu_neurons = x
        for m in self:
            x = m._bu(x, non_linear, lateral)
        return self._done(x)

    def backward(self, grad_output):
        self._check_grad(grad_output)
        return nn.Sequential.backward(self, grad_output)

    def _td(self, t, non_linear=False, lateral=False, bias_blocking=False, need_output=True):
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
            t = mods[i]._td(t, non_linear, lateral, bias_blocking, need)
            if self._record and need and i > 0 and lateral and not non_linear:  # CH error pass: dL/dh (STE)
                mods[i - 1]._set_grad_out(mods[i]._input_grad_ungated())
        self.td_output = t if need_output else None
        return self.td_output

    def infer_shapes(self, in_shape) -> "BUTDSequential":
        """Dry BU pass of one zero sample of shape ``in_shape`` (without batch): records ``in_shape``,
        every layer's input size (so a TD pass can run before any BU pass) and ``out_features``;
        clears the caches."""
        params = list(self.parameters())
        if not params:
            raise ValueError("BUTDSequential.infer_shapes: the sequence has no layer with weights")
        in_shape = sample_shape(in_shape)
        out = self(np.zeros((1,) + in_shape, dtype=params[0].data.dtype), non_linear=True)
        self.in_shape = in_shape
        self.out_features = int(np.prod(out.shape[1:]))
        for m in self.modules():
            if isinstance(m, _BUTD):
                m.bu_neurons = m.td_neurons = m.td_output = m._gate_src = m._out_meta = None
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

    def _bu(self, x, non_linear: bool = False, lateral: bool = False):
        h1 = self.conv1._bu(x, True, lateral)
        z = self.conv2._bu(h1)
        z += self.downsample._bu(x) if self.downsample is not None else x
        self.bu_neurons = x
        self._save_for_backward(True)
        return self._done(self._activate(z, non_linear, lateral))

    def backward(self, grad_output):
        self._check_grad(grad_output)
        gz = self._bp_gate(grad_output)
        gx = self.conv1.backward(self.conv2.backward(gz))
        gx += self.downsample.backward(gz) if self.downsample is not None else gz
        return gx

    def _td(self, t, non_linear=False, lateral=False, bias_blocking=False, need_output=True):
        self.td_neurons = t
        t1 = self.conv2._td(t, non_linear, lateral, bias_blocking)
        if self._record and lateral and not non_linear:
            self.conv1._set_grad_out(self.conv2._input_grad_ungated())
        a = self.conv1._td(t1, bias_blocking=bias_blocking, need_output=need_output)
        if self.downsample is not None:
            s = self.downsample._td(t, bias_blocking=bias_blocking, need_output=need_output)
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
        g0 = self._ste(a, self._task_out, d)
        a1 = None if g0 is None else self.conv1._td_adjoint(g0)
        g2 = self._ste(a1, self.conv1._task_in, self.conv1._gate_grad())
        a_in = self.conv2._td_adjoint(g2)
        if g0 is not None:
            a_in += self.downsample._td_adjoint(g0) if self.downsample is not None else g0
        return a_in, self._gate_grad()
