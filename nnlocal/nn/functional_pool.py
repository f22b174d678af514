r"""Pure N-dimensional pooling functions (no state, no caches): max and average pooling, torch's semantics.

``max_pool`` pads with -inf and takes the *first* maximum of each window in row-major window order
(torch's CPU rule for ties); its indices are torch's ``return_indices`` (flat offsets in the input
plane), so ``max_pool_backward`` is a scatter-add. ``avg_pool`` is the window sum (zero padding)
over torch's divisor (``count_include_pad=True`` by default: the full window size). The geometry is
the convolution's (:class:`nnlocal.nn.functional.ConvGeometry`); the data movement is
:mod:`nnlocal.kernels.pool` (``reference.py`` in NumPy, ``cpu.py`` in Numba), chosen by
``nnlocal.kernels.use``. ``nnlocal.nn.functional`` re-exports every function here.
"""
from __future__ import annotations

import functools

import numpy as np

from .. import kernels
from .functional import ConvGeometry, _as_shape, _check_gy, _float, ntuple

__all__ = ["max_pool", "max_pool_with_indices", "max_pool_backward", "avg_pool", "avg_pool_backward",
           "pool_output_shape", "pool_geometry", "max_pool_geom", "avg_pool_geom", "avg_pool_backward_geom",
           "avg_divisor"]


def _pool_kernels():
    """Max pooling and window sums of the implementation in force (``nnlocal.kernels.use``)."""
    return kernels.implementation("nnlocal.kernels.pool")


def _pool_args(shape, kernel_size, stride, padding, dilation, ceil_mode, who):
    """Pooling geometry ``(ConvGeometry, padding)`` of an input of ``shape`` (or of the array ``shape``), the
    arguments as the user gave them.
    With ``ceil_mode`` the last window may run past the padding: that extra is added to the high-side
    padding (torch drops a last window that would start in the padding)."""
    shape = tuple(int(v) for v in getattr(shape, "shape", shape))
    n = len(shape) - 2
    if n < 1:
        raise ValueError(f"{who}: expected input of shape (B, C, *spatial), got {shape}")
    k = ntuple(kernel_size, n, "kernel_size")
    no_stride = stride is None or (not isinstance(stride, (int, np.integer)) and len(stride) == 0)
    s = k if no_stride else ntuple(stride, n, "stride")   # torch: stride None or [] means the kernel
    return pool_geometry(shape, k, s, ntuple(padding, n, "padding"), ntuple(dilation, n, "dilation"),
                         bool(ceil_mode), who)


@functools.lru_cache(maxsize=256)
def pool_geometry(shape, k, s, p, d, ceil_mode, who="pool"):
    """:func:`_pool_args` for arguments already normalised to tuples (a pooling layer's own), cached:
    it is pure Python, as slow as pooling a small batch."""
    if any(v < 1 for v in k + s + d):
        raise ValueError(f"{who}: kernel_size, stride and dilation must be >= 1, got {k}, {s}, {d}")
    for pp, kk in zip(p, k):
        if pp < 0 or pp > kk // 2:  # torch checks the kernel, not the dilated kernel
            raise ValueError(f"{who}: pad should be at most half of kernel size, "
                             f"but got pad={p} and kernel_size={k}")
    out = pool_output_shape(shape[2:], k, s, p, d, ceil_mode)
    if any(v < 1 for v in out):
        raise ValueError(f"{who}: input of shape {shape} is too small: output size {out} "
                         f"(kernel_size={k}, stride={s}, padding={p}, dilation={d})")
    pads = tuple((pp, max(pp, (L - 1) * st + dd * (kk - 1) + 1 - S - pp))
                 for pp, L, st, dd, kk, S in zip(p, out, s, d, k, shape[2:]))
    return ConvGeometry(shape, k, s, pads, d, 1, out), p


def pool_output_shape(spatial, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False) -> tuple:
    """Pooled size per axis: ``floor`` (or ``ceil``) of ``(S + 2p - d(K-1) - 1)/s``, plus 1.

    ``stride`` defaults to the kernel. With ``ceil_mode`` a last window that would start inside the
    right padding is dropped (torch's rule).
    """
    n = len(spatial)
    k = ntuple(kernel_size, n, "kernel_size")
    s = k if stride is None else ntuple(stride, n, "stride")
    p, d = ntuple(padding, n, "padding"), ntuple(dilation, n, "dilation")
    out = []
    for S, kk, st, pp, dd in zip(spatial, k, s, p, d):
        num = S + 2 * pp - dd * (kk - 1) - 1
        L = (-(-num // st) if ceil_mode else num // st) + 1
        if ceil_mode and (L - 1) * st >= S + pp:
            L -= 1
        out.append(L)
    return tuple(out)


def max_pool_with_indices(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max pooling ``(B, C, *S) -> (B, C, *L)`` and the index of each max ``(B, C, *L)`` (int64).

    The index is torch's ``return_indices=True`` one: the flat offset of the chosen entry in its
    input plane (``h·W + w`` in 2-d). Ties go to the first maximum in row-major window order
    (torch's CPU rule); a NaN wins. Padding is -inf, so it is never chosen over a real entry.
    """
    x = _float(x)
    return max_pool_geom(x, _pool_args(x.shape, kernel_size, stride, padding, dilation, ceil_mode, "max_pool")[0])


def max_pool_geom(x, geom: ConvGeometry):
    """:func:`max_pool_with_indices` for a geometry from :func:`pool_geometry`."""
    return _pool_kernels().max_pool(x, geom.kernel, geom.stride, geom.pads, geom.dilation, geom.out_spatial)


def max_pool(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False) -> np.ndarray:
    """``torch.nn.functional.max_pool{n}d``; see :func:`max_pool_with_indices`."""
    return max_pool_with_indices(x, kernel_size, stride, padding, dilation, ceil_mode)[0]


def max_pool_backward(grad_output, indices, input_shape) -> np.ndarray:
    """dL/dx of max pooling: ``dx[b, c].flat[indices[b, c, l]] += gy[b, c, l]`` (torch's
    ``max_unpool`` with accumulation: an entry that is the max of several overlapping windows
    collects all their gradients)."""
    gy = _float(grad_output, "grad_output")
    input_shape = _as_shape(input_shape, "input_shape")
    indices = np.asarray(indices)
    if indices.shape != gy.shape or tuple(gy.shape[:2]) != tuple(input_shape[:2]):
        raise ValueError(f"max_pool_backward: grad_output {gy.shape} and indices {indices.shape} must have the "
                         f"same shape, with the batch and channels of the input {input_shape}")
    plane = int(np.prod(input_shape[2:]))
    if indices.size and (indices.dtype.kind not in "iu" or indices.min() < 0 or indices.max() >= plane):
        raise ValueError(f"max_pool_backward: indices must be integers in [0, {plane}) (flat offsets in the "
                         f"input plane), got dtype {indices.dtype} in [{indices.min()}, {indices.max()}]")
    return _pool_kernels().max_pool_backward(gy, indices, input_shape)


def avg_pool(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
             divisor_override=None) -> np.ndarray:
    """``torch.nn.functional.avg_pool{n}d`` (same argument order): window sums / divisor.

    The divisor is the window size clipped to the padded input (``count_include_pad=True``; that
    is ``ΠK`` unless ``ceil_mode`` lets a window run past the padding), the number of real entries
    in the window (``False``), or ``divisor_override``.
    """
    x = _float(x)
    geom, p = _pool_args(x.shape, kernel_size, stride, padding, 1, ceil_mode, "avg_pool")
    return avg_pool_geom(x, geom, avg_divisor(geom, p, count_include_pad, divisor_override, x.dtype))


def avg_pool_geom(x, geom: ConvGeometry, divisor):
    """:func:`avg_pool` for a geometry from :func:`pool_geometry` and its :func:`avg_divisor`."""
    y = _pool_kernels().sum_pool(x, geom.kernel, geom.stride, geom.pads, geom.out_spatial)
    y /= divisor
    return y


@functools.lru_cache(maxsize=256)
def avg_divisor(geom, p, count_include_pad, divisor_override, dtype):
    """Per-output divisor ``(*L)`` (or a scalar), torch's rule; separable over the axes. Cached (a
    read-only array)."""
    dtype = np.dtype(dtype)
    if divisor_override is not None:
        if divisor_override == 0:
            raise ValueError("avg_pool: divisor_override must be non-zero")
        return dtype.type(divisor_override)
    cnt = np.ones((), dtype=dtype)
    for pp, S, k, s, L in zip(p, geom.in_shape[2:], geom.kernel, geom.stride, geom.out_spatial):
        start = np.arange(L) * s - pp
        end = np.minimum(start + k, S + pp)
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, S)
        cnt = np.multiply.outer(cnt, (end - start).astype(dtype))
    cnt.flags.writeable = False
    return cnt


def avg_pool_backward(grad_output, input_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                      count_include_pad=True, divisor_override=None) -> np.ndarray:
    """dL/dx of average pooling: ``gy / divisor`` spread evenly over each window (scatter-add)."""
    gy = _float(grad_output, "grad_output")
    geom, p = _pool_args(_as_shape(input_shape, "input_shape"), kernel_size, stride, padding, 1, ceil_mode,
                         "avg_pool_backward")
    _check_gy(gy, geom.in_shape[:2] + geom.out_spatial, "avg_pool_backward")
    return avg_pool_backward_geom(gy, geom, avg_divisor(geom, p, count_include_pad, divisor_override, gy.dtype))


def avg_pool_backward_geom(grad_output, geom: ConvGeometry, divisor):
    """:func:`avg_pool_backward` for a geometry from :func:`pool_geometry` and its :func:`avg_divisor`."""
    return _pool_kernels().sum_pool_backward(grad_output / divisor, geom.in_shape, geom.kernel, geom.stride,
                                             geom.pads, geom.out_spatial)
