"""Basic layers: ``Linear``, ``Flatten``, ``Identity``, ``Dropout``.

Each layer's forward and backward sit next to each other; shapes use B = batch.
"""
from __future__ import annotations

import numpy as np

from .._checks import (check_bool, check_grad_output, check_input, check_int, check_param_dtype, check_real,
                       shape_error)
from .._rng import get_rng
from .init import default_weight_and_bias
from .module import Module, Parameter

__all__ = ["Linear", "Flatten", "Identity", "Dropout"]


class Linear(Module):
    r"""Affine map :math:`y = x W^\top + b`.

    Shapes: x ``(B, in)`` (or ``(*, in)``), W ``(out, in)``, b ``(out,)``, y ``(*, out)``.

    Backward, with g = dL/dy:  dL/dx = g W,  dL/dW = gᵀ x,  dL/db = Σ_b g.

    Forward keeps a copy of x for dL/dW, so editing x in place before ``backward`` does not change
    the gradients (see :class:`~nnlocal.nn.Module`, "In-place edits").

    ``input_grad=False`` (argument and attribute): ``backward`` skips dL/dx (a third of the layer's
    FLOPs) and returns ``None``, as torch computes no gradient for an input that needs none; for a
    network's first layer only (see :class:`~nnlocal.nn.Conv2d`, "Skipping dL/dx").
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, rng=None, dtype=np.float32,
                 input_grad: bool = True):
        super().__init__()
        name = type(self).__name__
        self.input_grad = check_bool(name, "input_grad", input_grad)
        self.in_features = check_int(name, "in_features", in_features, 1)
        self.out_features = check_int(name, "out_features", out_features, 1)
        w, b = default_weight_and_bias((self.out_features, self.in_features),
                                       self.out_features if bias else None, rng, check_param_dtype(name, dtype))
        self.weight = Parameter(w)
        self.bias = Parameter(b) if bias else None

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        check_input(self, x)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise shape_error(self, f"(B, {self.in_features})", x.shape)
        w = self.weight.data.astype(x.dtype, copy=False)
        y = x @ w.T
        if self.bias is not None:
            y += self.bias.data.astype(x.dtype, copy=False)
        self._save_for_backward(x.copy())
        return y

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        (x,) = self._saved()
        check_grad_output(self, grad_output, x.shape[:-1] + (self.out_features,), x.dtype)
        g2 = grad_output.reshape(-1, self.out_features)
        x2 = x.reshape(-1, self.in_features)
        self.weight.accumulate_grad(g2.T @ x2)
        if self.bias is not None:
            self.bias.accumulate_grad(g2.sum(axis=0))
        if not self.input_grad:
            return None
        return grad_output @ self.weight.data.astype(grad_output.dtype, copy=False)


class Flatten(Module):
    """Merge dimensions ``start_dim..end_dim`` into one (torch's defaults ``start_dim=1, end_dim=-1``:
    ``(B, d1, d2, ...)`` -> ``(B, d1·d2·...)``). Backward reshapes the gradient back."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = check_int(type(self).__name__, "start_dim", start_dim)
        self.end_dim = check_int(type(self).__name__, "end_dim", end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"

    def forward(self, x):
        check_input(self, x)
        nd = x.ndim
        s = self.start_dim + nd if self.start_dim < 0 else self.start_dim
        e = self.end_dim + nd if self.end_dim < 0 else self.end_dim
        if not (0 <= s <= e < nd):
            need = max(d + 1 if d >= 0 else -d for d in (self.start_dim, self.end_dim))
            raise shape_error(self, f"(B, ...) with at least {need} dimensions and start_dim <= end_dim",
                              x.shape)
        out_shape = x.shape[:s] + (int(np.prod(x.shape[s:e + 1])),) + x.shape[e + 1:]
        self._save_for_backward(x.shape, out_shape, x.dtype)
        return x.reshape(out_shape)

    def backward(self, grad_output):
        in_shape, out_shape, dtype = self._saved()
        check_grad_output(self, grad_output, out_shape, dtype)
        return grad_output.reshape(in_shape)


class Identity(Module):
    """y = x (checks that x is a float array, like every layer)."""

    def forward(self, x):
        check_input(self, x)
        self._save_for_backward(x.shape, x.dtype)
        return x

    def backward(self, grad_output):
        shape, dtype = self._saved()
        check_grad_output(self, grad_output, shape, dtype)
        return grad_output


class Dropout(Module):
    """Inverted dropout: in training y = x ⊙ m / (1-p) with m ~ Bernoulli(1-p); identity in eval.

    Backward multiplies by the same ``m / (1-p)`` drawn in the last forward. ``p = 1`` zeroes
    everything (as torch). The mask is drawn from ``rng`` (``None``: the library's default generator).
    """

    def __init__(self, p: float = 0.5, rng=None):
        super().__init__()
        self.p = check_real(type(self).__name__, "p", p, 0.0, 1.0)
        self.rng = get_rng(rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def forward(self, x):
        check_input(self, x)
        if not self.training or self.p == 0.0:
            scale = None
            y = x
        elif self.p == 1.0:
            scale = np.zeros_like(x)
            y = np.zeros_like(x)
        else:
            keep = self.rng.random(x.shape) >= self.p
            scale = keep.astype(x.dtype) / x.dtype.type(1.0 - self.p)
            y = x * scale
        self._save_for_backward(scale, x.shape, x.dtype)
        return y

    def backward(self, grad_output):
        scale, shape, dtype = self._saved()
        check_grad_output(self, grad_output, shape, dtype)
        return grad_output if scale is None else grad_output * scale
