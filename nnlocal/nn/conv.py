r"""Convolution layers ``Conv1d/2d/3d`` and ``ConvTranspose1d/2d/3d``: one N-d implementation each.

The maths lives in :mod:`nnlocal.nn.functional` (im2col + BLAS; see its docstring). With
``cols[b] = im2col(x)[b]`` ``(g, C_in/g · ΠK, ΠL)`` per sample and ``W_g`` ``(g, C_out/g, C_in/g · ΠK)``:

==============  =====================================  =======================================
layer           forward                                backward (gy = dL/dy), per sample b
==============  =====================================  =======================================
Conv            y[b] = W_g @ cols[b] + b               dW = Σ_b gy[b] @ cols[b]ᵀ,
                                                       dx[b] = col2im(W_gᵀ @ gy[b])
ConvTranspose   y[b] = col2im(W_gᵀ @ x[b]) + b         c = im2col(gy): dW = Σ_b x[b] @ c[b]ᵀ,
                                                       dx[b] = W_g @ c[b]
==============  =====================================  =======================================

The transposed convolution is the adjoint of the convolution with the same weight, so the two
rows use the same primitives (:func:`~nnlocal.nn.functional.conv_apply`, ``conv_weight_grad``,
``conv_input_grad``) with the roles of x and y swapped. ``Conv`` keeps its own zero-padded copy of x
(the weight gradient rebuilds the columns from it, chunk by chunk, in cache); ``ConvTranspose``
keeps a copy of x. Either way an in-place edit of x between forward and backward does not change
the gradients.

**Skipping dL/dx** (``input_grad=False``, a constructor argument and an attribute): torch computes
no input gradient for an input that does not require one, e.g. the images fed to a network's first
layer. nnlocal's module protocol always returns dL/dx, so the first convolution of a network does
that work for nothing (col2im and a third of the layer's GEMM FLOPs). With ``input_grad=False``
the layer's ``backward`` fills the parameter gradients as usual (the same values) and returns
``None`` instead of dL/dx; :class:`~nnlocal.nn.Sequential` then stops there, and raises if a layer
before it has trainable parameters (they would get no gradient). Set it only on a first layer.

Layouts are torch's: conv weight ``(out, in/groups, *k)``, transposed ``(in, out/groups, *k)``,
bias ``(out,)``; initialisation is torch's default (Kaiming-uniform with a = √5, i.e.
U(±1/√fan_in) with ``fan_in = weight.shape[1] · Πk`` for both kinds).
"""
from __future__ import annotations

import numpy as np

from .._checks import check_bool, check_grad_output, check_input, check_int, check_param_dtype, shape_error
from ..kernels.conv.reference import pad
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
               padding_mode, output_padding, rng, dtype, input_grad=True):
        n = self.n
        name = type(self).__name__
        #: False: backward skips dL/dx and returns None (a network's first layer; see the module docstring)
        self.input_grad = check_bool(name, "input_grad", input_grad)
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
        if self.bias is not None:   # positions first (contiguous), then the batch
            self.bias.accumulate_grad(gy.reshape(gy.shape[:2] + (int(np.prod(gy.shape[2:])),)).sum(axis=2).sum(axis=0))

    def backward(self, grad_output: np.ndarray):
        """dL/dx (``None`` with ``input_grad=False``); adds dL/dW and dL/db into ``.grad``."""
        return self._backward(grad_output, self.input_grad)


class _ConvNd(_ConvBase):
    """N-d convolution (cross-correlation) like ``torch.nn.Conv{n}d``; see the module docstring."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, padding_mode="zeros", rng=None, dtype=np.float32, input_grad=True):
        super().__init__()
        self._setup(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                    padding_mode, 0, rng, dtype, input_grad)

    def _geometry(self, shape):
        """The window geometry for an input of ``shape`` (kept while the shape and the layer's arguments
        stay the same: building it is pure Python, about as slow as a small layer's arithmetic)."""
        key = (shape, self.kernel_size, self.stride, self.padding, self.dilation, self.groups)
        cached = self.__dict__.get("_geom")
        if cached is None or cached[0] != key:
            try:
                geom = F.ConvGeometry.make(shape, self.kernel_size, self.stride, self.padding, self.dilation,
                                           self.groups, self)   # `self` is formatted (repr) only on error
            except ValueError as exc:
                raise ValueError(str(exc)) from None
            cached = (key, geom)
            object.__setattr__(self, "_geom", cached)
        return cached[1]

    def forward(self, x: np.ndarray) -> np.ndarray:
        x, unbatched = self._check_input(x)
        geom = self._geometry(x.shape)
        w = self.weight.data.astype(x.dtype, copy=False)
        xp = pad(x, geom.pads)                       # the layer's own copy, kept for the weight gradient
        if xp is x:
            xp = np.array(x, order="C")
        y = F.conv_apply(xp, w, self._bias(x.dtype), geom.padded)
        self._save_for_backward(xp, w, geom, unbatched)
        return y[0] if unbatched else y

    def weight_grad(self, grad_output: np.ndarray) -> np.ndarray:
        """dL/dW of the last forward for ``grad_output`` ``(B, C_out, *L)`` (returned, not accumulated)."""
        xp, w, geom, _ = self._saved()
        return F.conv_weight_grad(xp, grad_output.astype(w.dtype, copy=False), geom.padded, w.shape)

    def _backward(self, grad_output, input_grad):
        xp, w, geom, unbatched = self._saved()
        out_shape = (geom.in_shape[0], self.out_channels) + geom.out_spatial
        check_grad_output(self, grad_output, out_shape[1:] if unbatched else out_shape, w.dtype)
        gy = np.ascontiguousarray(grad_output[None] if unbatched else grad_output)
        if self.weight.requires_grad:
            self.weight.accumulate_grad(F.conv_weight_grad(xp, gy, geom.padded, w.shape))
        self._accumulate_bias(gy)
        if not input_grad:
            return None
        gx = F.conv_input_grad(gy, w, geom)
        return gx[0] if unbatched else gx


class _ConvTransposeNd(_ConvBase):
    """N-d transposed convolution like ``torch.nn.ConvTranspose{n}d``; the adjoint of ``Conv{n}d``.

    ``forward(x, output_size=None)``: as in torch, ``output_size`` (spatial, or the full shape)
    picks the ``output_padding`` that gives that size instead of the constructor's value.
    """

    transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", rng=None, dtype=np.float32, input_grad=True):
        super().__init__()
        self._setup(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                    padding_mode, output_padding, rng, dtype, input_grad)

    def forward(self, x: np.ndarray, output_size=None) -> np.ndarray:
        x, unbatched = self._check_input(x)
        try:
            geom = F.transpose_geometry(x.shape, self.weight.shape, self.stride, self.padding, self.output_padding,
                                        self.groups, self.dilation, output_size, self)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        w = self.weight.data.astype(x.dtype, copy=False)
        y = F.conv_input_grad(x, w, geom)             # the adjoint of conv: col2im(W_gᵀ @ x)
        if self.bias is not None:
            y += self._bias(x.dtype).reshape((-1,) + (1,) * self.n)
        self._save_for_backward(x.copy(), w, geom, unbatched)
        return y[0] if unbatched else y

    def _backward(self, grad_output, input_grad):
        x, w, geom, unbatched = self._saved()
        check_grad_output(self, grad_output, geom.in_shape[1:] if unbatched else geom.in_shape, w.dtype)
        gy = grad_output[None] if unbatched else grad_output
        gyp = np.ascontiguousarray(pad(gy, geom.pads))    # padded once, for both gradients
        if self.weight.requires_grad:
            self.weight.accumulate_grad(F.conv_weight_grad(gyp, x, geom.padded, w.shape))
        self._accumulate_bias(gy)
        if not input_grad:
            return None
        gx = F.conv_apply(gyp, w, None, geom.padded)  # dx = conv(gy, W)
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
