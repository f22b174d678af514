r"""The AutoRot convolutions: plain (1-d, 2-d, 3-d), transposed, depthwise and separable.

Each is ``class AutoRotX(<ARP mixin>, A)`` with A one of nnlocal's convolutions: the ARP rule
(:mod:`nnlocal.methods.arp.reference`, attached by :class:`~nnlocal.methods.arp.layers._AutoRot`)
evaluates q = A(xQ·1) by running A's own forward on a single constant image
``xQ·ones((1, *x.shape[1:]))`` (1/B of the main cost) and A's own backward with c as the output
gradient for the xQ-terms. With ``padding='valid'`` q is the same at every position; with
``'same'`` (or any zero padding) border positions sum fewer taps, so q and ρ vary spatially,
exactly like the original. The transposed, separable and depthwise layers are extensions (the
arpkeras README lists them; the package never shipped them).
"""
from __future__ import annotations

import numpy as np

from ..._rng import get_rng
from ...nn.conv import Conv1d, Conv2d, Conv3d, ConvTranspose2d, ConvTranspose3d
from ...nn.module import Module
from .layers import _AutoRot

__all__ = ["AutoRotConv1d", "AutoRotConv2d", "AutoRotConv3d", "AutoRotConvTranspose2d", "AutoRotConvTranspose3d",
           "AutoRotDepthwiseConv2d", "AutoRotSeparableConv1d", "AutoRotSeparableConv2d"]

_ARP_DOC = """
    ARP arguments (keyword-only): ``L=4``, ``xmin_lim=0``, ``xmax_lim=1``, ``xQ="auto"``,
    ``autorot=True``, ``activation=None``, ``eps=1e-5``, ``trainable_L=False``, ``detach_rho=False``;
    see :class:`~nnlocal.methods.arp.AutoRotDense`. q and ρ have the output's shape without the
    batch axis, ``(1, C_out, *L_out)``: constant over positions with ``padding=0``/``'valid'``,
    varying at the borders with ``'same'``.
"""


class _ConvQ(_AutoRot):
    """q's backward is the convolution's backward on the constant image *without* dL/dx (nothing flows
    into a constant; the convolution's ``input_grad=False`` path): only its xQ-terms of dL/dW and dL/db."""

    def _q_backward(self, c, state):
        self._restore(state)
        self._backward(c, False)


class _AutoRotConv(_ConvQ):
    """The constructor of the plain AutoRot convolutions: the convolution's arguments, then ARP's."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, *, L=4.0, xmin_lim=0.0, xmax_lim=1.0, xQ="auto", autorot=True, activation=None,
                 eps=1e-5, trainable_L=False, detach_rho=False, rng=None, dtype=np.float32):
        # the next __init__ in the MRO is the convolution's (the ARP mixins define none)
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation,
                         groups=groups, bias=bias, rng=rng, dtype=dtype)
        self._setup_arp(activation, L=L, xmin_lim=xmin_lim, xmax_lim=xmax_lim, xQ=xQ, autorot=autorot, eps=eps,
                        trainable_L=trainable_L, detach_rho=detach_rho)


class AutoRotConv1d(_AutoRotConv, Conv1d):
    __doc__ = """ARP 1-d convolution (arpkeras ``AutoRotConv1D``): ``(B, C_in, L) -> (B, C_out, L_out)``,
    weight ``(C_out, C_in/groups, k)`` (Keras kernel ``(k, in, out)`` = ``weight.transpose(2, 1, 0)``).

    ``eps_outside=True`` reproduces arpkeras' Conv1D form ρ = L/|q| + eps (a bug of the original:
    eps is added outside the division, so ρ is infinite at q = 0 and differs from its other
    layers); the default is the unified ρ = L/(|q| + eps).
""" + _ARP_DOC

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 bias=True, *, eps_outside: bool = False, **arp):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, **arp)
        self.eps_outside = bool(eps_outside)


class AutoRotConv2d(_AutoRotConv, Conv2d):
    __doc__ = """ARP 2-d convolution (arpkeras ``AutoRotConv2D``): ``(B, C_in, H, W) -> (B, C_out, H', W')``,
    weight ``(C_out, C_in/groups, kh, kw)`` (Keras kernel ``(kh, kw, in, out)`` = ``weight.transpose(2, 3, 1, 0)``).
""" + _ARP_DOC


class AutoRotConv3d(_AutoRotConv, Conv3d):
    __doc__ = """ARP 3-d convolution (arpkeras ``AutoRotConv3D``): ``(B, C_in, D, H, W) -> (B, C_out, D', H', W')``,
    weight ``(C_out, C_in/groups, kd, kh, kw)``.
""" + _ARP_DOC


class _AutoRotConvTranspose(_ConvQ):
    """The constructor of the AutoRot transposed convolutions (torch's argument order)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, *, L=4.0, xmin_lim=0.0, xmax_lim=1.0, xQ="auto", autorot=True,
                 activation=None, eps=1e-5, trainable_L=False, detach_rho=False, rng=None, dtype=np.float32):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         output_padding=output_padding, groups=groups, bias=bias, dilation=dilation, rng=rng,
                         dtype=dtype)
        self._setup_arp(activation, L=L, xmin_lim=xmin_lim, xmax_lim=xmax_lim, xQ=xQ, autorot=autorot, eps=eps,
                        trainable_L=trainable_L, detach_rho=detach_rho)


class AutoRotConvTranspose2d(_AutoRotConvTranspose, ConvTranspose2d):
    __doc__ = """ARP 2-d transposed convolution (README's ``AutoRotConv2DTranspose``; extension, not in arpkeras):
    weight ``(C_in, C_out/groups, kh, kw)`` (Keras kernel ``(kh, kw, out, in)`` =
    ``weight.transpose(2, 3, 1, 0)``). q = ConvT(xQ·1) + b varies spatially wherever the number of
    overlapping taps does (stride > 1, borders). ``forward(x, output_size=None)`` as torch.
""" + _ARP_DOC


class AutoRotConvTranspose3d(_AutoRotConvTranspose, ConvTranspose3d):
    __doc__ = """ARP 3-d transposed convolution (README's ``AutoRotConv3DTranspose``; extension): weight
    ``(C_in, C_out/groups, kd, kh, kw)``; see :class:`AutoRotConvTranspose2d`.
""" + _ARP_DOC


class AutoRotDepthwiseConv2d(_ConvQ, Conv2d):
    __doc__ = """ARP depthwise 2-d convolution (README's ``AutoRotDepthwiseConv2D``; extension): a grouped
    ``Conv2d(in_channels, in_channels·depth_multiplier, kernel_size, groups=in_channels)``; q has one
    value per (channel × multiplier) and position. Output channel c·depth_multiplier + m reads input
    channel c (Keras' order). Weight ``(C·mult, 1, kh, kw)``; Keras ``depthwise_kernel (kh, kw, C, mult)``
    = ``weight.reshape(C, mult, kh, kw).transpose(2, 3, 0, 1)``.
""" + _ARP_DOC

    def __init__(self, in_channels, kernel_size, depth_multiplier=1, stride=1, padding=0, dilation=1, bias=True,
                 *, L=4.0, xmin_lim=0.0, xmax_lim=1.0, xQ="auto", autorot=True, activation=None, eps=1e-5,
                 trainable_L=False, detach_rho=False, rng=None, dtype=np.float32):
        Conv2d.__init__(self, in_channels, in_channels * int(depth_multiplier), kernel_size, stride=stride,
                        padding=padding, dilation=dilation, groups=in_channels, bias=bias, rng=rng, dtype=dtype)
        self.depth_multiplier = int(depth_multiplier)
        self._setup_arp(activation, L=L, xmin_lim=xmin_lim, xmax_lim=xmax_lim, xQ=xQ, autorot=autorot, eps=eps,
                        trainable_L=trainable_L, detach_rho=detach_rho)


class _SeparableConv(Module):
    """Depthwise then pointwise convolution, one affine map: ``pointwise(depthwise(x))``.

    Children ``depthwise`` = ``ConvNd(C_in, C_in·mult, k, groups=C_in, bias=False)`` and ``pointwise``
    = ``ConvNd(C_in·mult, C_out, 1, bias=bias)`` (Keras' SeparableConv: no depthwise bias).
    """

    _conv = None

    def __init__(self, in_channels, out_channels, kernel_size, depth_multiplier=1, stride=1, padding=0,
                 dilation=1, bias=True, rng=None, dtype=np.float32):
        super().__init__()
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
        return self._backward(grad_output, True)

    def _backward(self, grad_output, input_grad):
        return self.depthwise._backward(self.pointwise.backward(grad_output), input_grad)


class _AutoRotSeparable(_ConvQ):
    """The constructor of the AutoRot separable convolutions."""

    def __init__(self, in_channels, out_channels, kernel_size, depth_multiplier=1, stride=1, padding=0,
                 dilation=1, bias=True, *, L=4.0, xmin_lim=0.0, xmax_lim=1.0, xQ="auto", autorot=True,
                 activation=None, eps=1e-5, trainable_L=False, detach_rho=False, rng=None, dtype=np.float32):
        super().__init__(in_channels, out_channels, kernel_size, depth_multiplier, stride, padding, dilation, bias,
                         rng, dtype)
        self._setup_arp(activation, L=L, xmin_lim=xmin_lim, xmax_lim=xmax_lim, xQ=xQ, autorot=autorot, eps=eps,
                        trainable_L=trainable_L, detach_rho=detach_rho)

    def extra_repr(self):
        # the children (depthwise, pointwise, activation) print themselves
        return _SeparableConv.extra_repr(self) + ", " + self._arp_repr()


class AutoRotSeparableConv1d(_AutoRotSeparable, _SeparableConv):
    __doc__ = """ARP separable 1-d convolution (README's ``AutoRotSeparableConv1D``; extension): depthwise then
    pointwise is one affine map, so q = PW(DW(xQ·1)) + b and ρ scales the pointwise output.
    Parameters ``depthwise.weight`` ``(C_in·mult, 1, k)``, ``pointwise.weight`` ``(C_out, C_in·mult, 1)``,
    ``pointwise.bias`` ``(C_out,)``.
""" + _ARP_DOC
    _conv = Conv1d


class AutoRotSeparableConv2d(_AutoRotSeparable, _SeparableConv):
    __doc__ = """ARP separable 2-d convolution (README's ``AutoRotSeparableConv2D``; extension); see
    :class:`AutoRotSeparableConv1d`. Parameters ``depthwise.weight`` ``(C_in·mult, 1, kh, kw)``,
    ``pointwise.weight`` ``(C_out, C_in·mult, 1, 1)``, ``pointwise.bias``.
""" + _ARP_DOC
    _conv = Conv2d
