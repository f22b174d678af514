r"""Pooling layers ``MaxPool{1,2,3}d`` and ``AvgPool{1,2,3}d`` with torch's semantics.

``kernel_size``; ``stride=None`` means ``stride = kernel_size``; ``padding`` at most
``kernel_size // 2``; ``ceil_mode`` as torch. Output per axis:
``L = floor((S + 2p - d(K-1) - 1)/s) + 1`` (``ceil`` with ``ceil_mode``).

* **Max**: padding is -inf. Forward keeps the index of each max (torch's ``return_indices``: the
  flat offset in the input plane); backward routes each output's gradient to that entry
  (``dx[argmax] += gy``; overlapping windows add up).
  **Ties**: the first maximum in row-major window order wins, as in torch's CPU kernel, so on tied
  inputs the gradient goes to exactly one entry, the same one torch picks. A NaN wins over numbers.
* **Avg**: y = Σ_window x / divisor, padding is 0; the divisor is ``ΠK`` (``count_include_pad=True``,
  the default), the number of real entries in the window (``False``), or ``divisor_override``.
  Backward spreads ``gy / divisor`` evenly over each window.
"""
from __future__ import annotations

from .._checks import check_grad_output, check_input, check_int, shape_error
from . import functional as F
from .module import Module

__all__ = ["MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d"]

_SPATIAL = {1: "L", 2: "H, W", 3: "D, H, W"}


class _PoolNd(Module):
    n: int = 2

    def _setup(self, kernel_size, stride, padding, dilation, ceil_mode):
        n = self.n
        name = type(self).__name__
        # the arguments as given, for a repr identical to torch's (which does not normalise them)
        self._given = dict(kernel_size=kernel_size, stride=kernel_size if stride is None else stride,
                           padding=padding, dilation=dilation)
        self.kernel_size = F.ntuple(kernel_size, n, "kernel_size", name)
        self.stride = self.kernel_size if stride is None else F.ntuple(stride, n, "stride", name)
        self.padding = F.ntuple(padding, n, "padding", name)
        self.dilation = F.ntuple(dilation, n, "dilation", name)
        self.ceil_mode = bool(ceil_mode)
        if any(v < 1 for v in self.kernel_size + self.stride + self.dilation):
            raise ValueError(f"{type(self).__name__}: kernel_size, stride and dilation must be >= 1, got "
                             f"{self.kernel_size}, {self.stride}, {self.dilation}")
        for p, k in zip(self.padding, self.kernel_size):
            if p < 0 or p > k // 2:  # torch's check (on the kernel, not the dilated kernel)
                raise ValueError(f"{type(self).__name__}: pad should be at most half of kernel size, but "
                                 f"got padding={self.padding} and kernel_size={self.kernel_size}")

    def _check_input(self, x):
        check_input(self, x)
        if x.ndim == self.n + 1:
            return x[None], True
        if x.ndim != self.n + 2:
            raise shape_error(repr(self), f"(B, C, {_SPATIAL.get(self.n, '...')})", x.shape)
        return x, False

    def _geometry(self, shape, who):
        """The pooling geometry for an input of ``shape`` (``F.pool_geometry``, cached); a ValueError names
        the layer and keeps the reason."""
        try:
            return F.pool_geometry(tuple(shape), self.kernel_size, self.stride, self.padding, self.dilation,
                                   self.ceil_mode, who)
        except ValueError as exc:
            raise ValueError(f"{self!r}: {exc}") from None


class _MaxPoolNd(_PoolNd):
    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        super().__init__()
        self._setup(kernel_size, stride, padding, dilation, ceil_mode)

    def extra_repr(self) -> str:
        g = self._given
        return (f"kernel_size={g['kernel_size']}, stride={g['stride']}, padding={g['padding']}, "
                f"dilation={g['dilation']}, ceil_mode={self.ceil_mode}")

    def forward(self, x):
        x, unbatched = self._check_input(x)
        y, idx = F.max_pool_geom(x, self._geometry(x.shape, "max_pool")[0])
        self._save_for_backward(idx, x.shape, x.dtype, unbatched)
        return y[0] if unbatched else y

    def backward(self, grad_output):
        idx, shape, dtype, unbatched = self._saved()
        check_grad_output(self, grad_output, idx.shape[1:] if unbatched else idx.shape, dtype)
        gy = grad_output[None] if unbatched else grad_output
        gx = F.max_pool_backward(gy, idx, shape)
        return gx[0] if unbatched else gx


class _AvgPoolNd(_PoolNd):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__()
        self._setup(kernel_size, stride, padding, 1, ceil_mode)
        self.count_include_pad = bool(count_include_pad)
        if divisor_override is not None and check_int(type(self).__name__, "divisor_override", divisor_override) == 0:
            raise ValueError(f"{type(self).__name__}: divisor_override must be non-zero")
        self.divisor_override = None if divisor_override is None else int(divisor_override)

    def extra_repr(self) -> str:
        g = self._given
        return f"kernel_size={g['kernel_size']}, stride={g['stride']}, padding={g['padding']}"  # as torch

    def forward(self, x):
        x, unbatched = self._check_input(x)
        geom, p = self._geometry(x.shape, "avg_pool")
        divisor = F.avg_divisor(geom, p, self.count_include_pad, self.divisor_override, x.dtype)
        y = F.avg_pool_geom(x, geom, divisor)
        self._save_for_backward(geom, divisor, y.dtype, unbatched)
        return y[0] if unbatched else y

    def backward(self, grad_output):
        geom, divisor, dtype, unbatched = self._saved()
        yshape = geom.in_shape[:2] + geom.out_spatial
        check_grad_output(self, grad_output, yshape[1:] if unbatched else yshape, dtype)
        gy = grad_output[None] if unbatched else grad_output
        gx = F.avg_pool_backward_geom(gy, geom, divisor)
        return gx[0] if unbatched else gx


class MaxPool1d(_MaxPoolNd):
    """Max over windows of ``(B, C, L)``."""

    n = 1


class MaxPool2d(_MaxPoolNd):
    """Max over windows of ``(B, C, H, W)`` (torch's ``nn.MaxPool2d``)."""

    n = 2


class MaxPool3d(_MaxPoolNd):
    """Max over windows of ``(B, C, D, H, W)``."""

    n = 3


class AvgPool1d(_AvgPoolNd):
    """Mean over windows of ``(B, C, L)``."""

    n = 1


class AvgPool2d(_AvgPoolNd):
    """Mean over windows of ``(B, C, H, W)`` (torch's ``nn.AvgPool2d``)."""

    n = 2


class AvgPool3d(_AvgPoolNd):
    """Mean over windows of ``(B, C, D, H, W)``."""

    n = 3
