r"""Convolution layers ``Conv1d/2d/3d`` and ``ConvTranspose1d/2d/3d``: one N-d implementation each.

The maths lives in :mod:`nnlocal.nn.functional` (im2col + BLAS; see its docstring). With
``cols = im2col(x)`` ``(g, C_in/g · ΠK, B · ΠL)``, ``W_g`` ``(g, C_out/g, C_in/g · ΠK)`` and
arrays in the "wide" layout ``(g, C/g, B · ΠL)`` (``to_wide``/``from_wide``: one transpose-copy):

==============  ===================================  =====================================
layer           forward                              backward (gy = dL/dy)
==============  ===================================  =====================================
Conv            y = W_g @ cols + b                   dW = gy @ colsᵀ, dx = col2im(W_gᵀ gy)
ConvTranspose   y = col2im(W_gᵀ @ x) + b             c = im2col(gy): dW = x @ cᵀ, dx = W_g @ c
==============  ===================================  =====================================

The transposed convolution is the adjoint of the convolution with the same weight, so the two
rows use the same three primitives with the roles of x and y swapped. ``Conv`` caches ``cols``
in forward so backward does not rebuild them; ``ConvTranspose`` keeps a copy of x and builds
``im2col(gy)`` once in backward for both gradients. Either way an in-place edit of x between
forward and backward does not change the gradients.

Layouts are torch's: conv weight ``(out, in/groups, *k)``, transposed ``(in, out/groups, *k)``,
bias ``(out,)``; initialisation is torch's default (Kaiming-uniform with a = √5, i.e.
U(±1/√fan_in) with ``fan_in = weight.shape[1] · Πk`` for both kinds).
"""
from __future__ import annotations

import numpy as np

from .._checks import check_grad_output, check_input, check_int, check_param_dtype, shape_error
from . import functional as F
from .init import default_weight_and_bias
from .module import Module, Parameter

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]

_SPATIAL = {1: "L", 2: "H, W", 3: "D, H, W"}


class _ConvBase(Module):
    """Shared constructor, checks and repr of convolutions with ``n`` spatial axes."""

    n: int = 2
    transposed: bool = False

    def _setup(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
               padding_mode, output_padding, rng, dtype):
        n = self.n
        name = type(self).__name__
        self.in_channels = check_int(name, "in_channels", in_channels, 1)
        self.out_channels = check_int(name, "out_channels", out_channels, 1)
        self.groups = check_int(name, "groups", groups, 1)
        dtype = check_param_dtype(name, dtype)
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels ({out_channels}) must both "
                             f"be divisible by groups ({groups})")
        if padding_mode != "zeros":
            raise ValueError(f"{name}: only padding_mode='zeros' is supported, got {padding_mode!r}")
        self.kernel_size = F.ntuple(kernel_size, n, "kernel_size", name)
        self.stride = F.ntuple(stride, n, "stride", name)
        self.dilation = F.ntuple(dilation, n, "dilation", name)
        if any(v < 1 for v in self.kernel_size + self.stride + self.dilation):
            raise ValueError(f"{name}: kernel_size, stride and dilation must be >= 1, got "
                             f"{self.kernel_size}, {self.stride}, {self.dilation}")
        if isinstance(padding, str):
            if self.transposed:
                raise ValueError(f"{name}: string padding {padding!r} is not supported for transposed convolutions")
            F.resolve_padding(padding, self.kernel_size, self.stride, self.dilation)  # validates 'same'/'valid'
            self.padding = padding
        else:
            self.padding = F.ntuple(padding, n, "padding", name)
            if any(v < 0 for v in self.padding):
                raise ValueError(f"{name}: padding must be non-negative, got {padding!r}")
        self.output_padding = F.ntuple(output_padding, n, "output_padding", name)
        for o, s, d in zip(self.output_padding, self.stride, self.dilation):
            if o < 0 or (o >= s and o >= d):
                raise ValueError(f"{name}: output_padding must be smaller than either stride or dilation, got "
                                 f"output_padding={self.output_padding}, stride={self.stride}, "
                                 f"dilation={self.dilation}")
        self.padding_mode = padding_mode
        if self.transposed:
            wshape = (self.in_channels, self.out_channels // self.groups) + self.kernel_size
        else:
            wshape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        w, b = default_weight_and_bias(wshape, self.out_channels if bias else None, rng, dtype)
        self.weight = Parameter(w)
        self.bias = Parameter(b) if bias else None

    # ------------------------------------------------------------------ repr / checks
    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if isinstance(self.padding, str):
            s += f", padding={self.padding}"
        elif any(self.padding):
            s += f", padding={self.padding}"
        if any(d != 1 for d in self.dilation):
            s += f", dilation={self.dilation}"
        if any(self.output_padding):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s

    def _check_input(self, x) -> tuple[np.ndarray, bool]:
        """Validate ``x``; accept an unbatched ``(C, *S)`` input like torch. Returns (batched x, was_unbatched)."""
        check_input(self, x)
        expected = f"(B, {self.in_channels}, {_SPATIAL.get(self.n, '...')})"
        if x.ndim == self.n + 1:
            x = x[None]
            unbatched = True
        elif x.ndim == self.n + 2:
            unbatched = False
        else:
            raise shape_error(repr(self), expected, x.shape)
        if x.shape[1] != self.in_channels:
            raise shape_error(repr(self), expected, x.shape[1:] if unbatched else x.shape)
        return x, unbatched

    def _bias(self, dtype):
        return None if self.bias is None else self.bias.data.astype(dtype, copy=False)

    def _accumulate_bias(self, gy):
        if self.bias is not None:
            self.bias.accumulate_grad(gy.sum(axis=(0,) + tuple(range(2, gy.ndim))))


class _ConvNd(_ConvBase):
    """N-d convolution (cross-correlation) like ``torch.nn.Conv{n}d``; see the module docstring."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", rng=None, dtype=np.float32):
        super().__init__()
        self._setup(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                    padding_mode, 0, rng, dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x, unbatched = self._check_input(x)
        try:
            geom = F.ConvGeometry.make(x.shape, self.kernel_size, self.stride, self.padding, self.dilation,
                                       self.groups, self)   # `self` is formatted (repr) only on error
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        w = self.weight.data.astype(x.dtype, copy=False)
        cols = F.im2col(x, geom)
        y = F.conv_from_cols(cols, w, self._bias(x.dtype), geom)
        self._save_for_backward(cols, w, geom, unbatched)
        return y[0] if unbatched else y

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        cols, w, geom, unbatched = self._saved()
        out_shape = (geom.in_shape[0], self.out_channels) + geom.out_spatial
        check_grad_output(self, grad_output, out_shape[1:] if unbatched else out_shape, w.dtype)
        gy = grad_output[None] if unbatched else grad_output
        gy_wide = F.to_wide(gy, self.groups)           # (g, C_out/g, B·ΠL), shared by both gradients
        if self.weight.requires_grad:
            self.weight.accumulate_grad(F.weight_grad_from_wide(gy_wide, cols, w.shape))
        if self.bias is not None:
            self.bias.accumulate_grad(gy_wide.sum(axis=-1).reshape(-1))
        gx = F.input_grad_from_wide(gy_wide, w, geom)
        return gx[0] if unbatched else gx


class _ConvTransposeNd(_ConvBase):
    """N-d transposed convolution like ``torch.nn.ConvTranspose{n}d``; the adjoint of ``Conv{n}d``.

    ``forward(x, output_size=None)``: as in torch, ``output_size`` (spatial, or the full shape)
    picks the ``output_padding`` that gives that size instead of the constructor's value.
    """

    transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", rng=None, dtype=np.float32):
        super().__init__()
        self._setup(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                    padding_mode, output_padding, rng, dtype)

    def forward(self, x: np.ndarray, output_size=None) -> np.ndarray:
        x, unbatched = self._check_input(x)
        try:
            geom = F.transpose_geometry(x.shape, self.weight.shape, self.stride, self.padding, self.output_padding,
                                        self.groups, self.dilation, output_size, self)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        w = self.weight.data.astype(x.dtype, copy=False)
        y = F.input_grad_from_gy(x, w, geom)          # the adjoint of conv: col2im(W_gᵀ @ x)
        if self.bias is not None:
            y += self._bias(x.dtype).reshape((-1,) + (1,) * self.n)
        self._save_for_backward(x.copy(), w, geom, unbatched)
        return y[0] if unbatched else y

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        x, w, geom, unbatched = self._saved()
        check_grad_output(self, grad_output, geom.in_shape[1:] if unbatched else geom.in_shape, w.dtype)
        gy = grad_output[None] if unbatched else grad_output
        cols = F.im2col(gy, geom)                      # once, for both gradients
        if self.weight.requires_grad:
            self.weight.accumulate_grad(F.weight_grad_from_cols(x, cols, geom, w.shape))
        self._accumulate_bias(gy)
        gx = F.conv_from_cols(cols, w, None, geom)     # dx = conv(gy, W)
        return gx[0] if unbatched else gx


class Conv1d(_ConvNd):
    """1-d convolution: ``(B, C_in, L) -> (B, C_out, L_out)``, weight ``(C_out, C_in/groups, k)``."""

    n = 1


class Conv2d(_ConvNd):
    """2-d convolution: ``(B, C_in, H, W) -> (B, C_out, H_out, W_out)``, weight ``(C_out, C_in/groups, kh, kw)``."""

    n = 2


class Conv3d(_ConvNd):
    """3-d convolution: ``(B, C_in, D, H, W) -> (B, C_out, D', H', W')``,
    weight ``(C_out, C_in/groups, kd, kh, kw)``."""

    n = 3


class ConvTranspose1d(_ConvTransposeNd):
    """1-d transposed convolution, weight ``(C_in, C_out/groups, k)``."""

    n = 1


class ConvTranspose2d(_ConvTransposeNd):
    """2-d transposed convolution, weight ``(C_in, C_out/groups, kh, kw)``."""

    n = 2


class ConvTranspose3d(_ConvTransposeNd):
    """3-d transposed convolution, weight ``(C_in, C_out/groups, kd, kh, kw)``."""

    n = 3
