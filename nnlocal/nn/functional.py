r"""Pure N-dimensional convolution and pooling functions (no state, no caches).

Every function works for any number n of spatial dimensions (1-d, 2-d, 3-d, ...); ``n`` is read
from the weight (``weight.ndim - 2``) or from ``x.ndim - 2`` for pooling. Layouts are torch's:

* input  ``x``  ``(B, C_in, *S)``                       (NCW, NCHW, NCDHW)
* conv weight    ``(C_out, C_in/g, *K)``,  transposed-conv weight ``(C_in, C_out/g, *K)``
* output ``y``  ``(B, C_out, *L)``, with per axis (p_lo + p_hi = total padding, d = dilation,
  s = stride)::

      L = floor((S + p_lo + p_hi - d (K - 1) - 1) / s) + 1

**im2col identity.** Let ``cols = im2col(x)`` be the ``(B, g, C_in/g · ΠK, ΠL)`` array whose
column ``l`` of sample b and group g holds the receptive field of output position ``l`` (zero where
it reads padding). With the weight reshaped to ``W_g`` ``(g, C_out/g, C_in/g · ΠK)``, a grouped
convolution is one matrix product per sample and group (BLAS)::

      y[b]_g = W_g @ cols[b]_g                            (C_out/g, ΠL): sample b of y, in NCHW order

and with ``gy = dL/dy`` ``(B, C_out, *L)`` read as ``(B, g, C_out/g, ΠL)`` (a view)::

      dL/dW_g = Σ_b gy[b]_g @ cols[b]_gᵀ                  (C_out/g, C_in/g · ΠK)
      dL/dx[b] = col2im( W_gᵀ @ gy[b]_g )                 col2im = adjoint of im2col (scatter-add)

**Speed.** Each sample's columns form one matrix, so the GEMMs read and write NCHW arrays as they
are: no transpose or copy around a BLAS call. :func:`conv_apply`, :func:`conv_weight_grad` and
:func:`conv_input_grad` run im2col, the GEMMs and col2im over chunks of samples whose columns take
about :data:`CHUNK_BYTES`, so the columns are still in the core's cache when the GEMM reads them;
the weight gradient rebuilds them from x (a layer keeps x, not the ΠK-times larger columns).
:mod:`nnlocal.kernels.conv` holds im2col/col2im (NumPy references and Numba twins).

**Adjoint relation.** A transposed convolution is the adjoint (transpose) of the convolution with
the same weight, stride, padding, dilation and groups: ``<conv(x, W), y> = <x, conv_transpose(y, W)>``.
So ``conv_transpose = conv_backward_input`` and ``conv_transpose``'s own input gradient is a plain
``conv``; only the weight gradient swaps the roles of the two arrays. Everything is written once.

The argument order of the backward helpers follows ``torch.nn.grad``::

    conv_backward_input(input_shape, weight, grad_output, ...)   # torch.nn.grad.conv2d_input
    conv_backward_weight(x, weight_shape, grad_output, ...)      # torch.nn.grad.conv2d_weight

Pooling lives in :mod:`nnlocal.nn.functional_pool` (re-exported here).
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass

import numpy as np
from .. import kernels
from ..kernels.conv.reference import crop

__all__ = [
    "conv", "conv_backward_input", "conv_backward_weight",
    "conv_transpose", "conv_transpose_backward_input", "conv_transpose_backward_weight",
    "conv_output_shape", "conv_transpose_output_shape", "resolve_padding", "ConvGeometry",
    "im2col", "col2im", "conv_apply", "conv_weight_grad", "conv_input_grad", "sample_chunks", "CHUNK_BYTES",
    # pooling, defined in functional_pool.py
    "max_pool", "max_pool_with_indices", "max_pool_backward", "avg_pool", "avg_pool_backward",
    "pool_output_shape", "pool_geometry", "max_pool_geom", "avg_pool_geom", "avg_pool_backward_geom", "avg_divisor",
]


def _conv_kernels():
    """im2col / col2im and the tap convolution of the implementation in force (``nnlocal.kernels.use``)."""
    return kernels.implementation("nnlocal.kernels.conv")


# ==================================================================================== geometry
def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def ntuple(value, n: int, name: str, who: str | None = None) -> tuple:
    """``3 -> (3, 3)``; a tuple/list must already have ``n`` entries (torch's ``_ntuple``). Anything
    but integers (``2.5``, ``"3"``, ``True``) is a ``ValueError`` (prefixed with ``who``), never truncated."""
    if _is_int(value):
        return (int(value),) * n
    try:
        t = None if isinstance(value, (str, bytes)) else tuple(value)
    except TypeError:  # not iterable
        t = None
    if t is None or len(t) not in (1, n) or not all(_is_int(v) for v in t):
        prefix = f"{who}: " if who else ""
        raise ValueError(f"{prefix}{name} must be an int or a tuple of {n} ints, got {value!r}")
    return tuple(int(v) for v in t) * (n if len(t) == 1 else 1)


def resolve_padding(padding, kernel, stride, dilation) -> tuple:
    """Padding as ``((lo, hi), ...)`` per spatial axis.

    ``padding`` is an int, a tuple of ints (symmetric), ``"valid"`` (no padding) or ``"same"``
    (output size = input size; stride must be 1). As torch does, "same" puts ``total // 2`` on the
    low side and the remainder (one more for an odd total ``d (K - 1)``) on the high side.
    """
    n = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"padding='same' is not supported for strided convolutions (stride={stride})")
            pairs = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                pairs.append((total // 2, total - total // 2))
            return tuple(pairs)
        raise ValueError(f"padding must be an int, a tuple, 'valid' or 'same', got {padding!r}")
    p = ntuple(padding, n, "padding")
    if any(v < 0 for v in p):
        raise ValueError(f"padding must be non-negative, got {padding!r}")
    return tuple((v, v) for v in p)


def conv_output_shape(spatial, kernel, stride=1, padding=0, dilation=1) -> tuple:
    """Spatial output size of a convolution: ``floor((S + p_lo + p_hi - d(K-1) - 1)/s) + 1`` per axis."""
    n = len(spatial)
    kernel, stride = ntuple(kernel, n, "kernel_size"), ntuple(stride, n, "stride")
    dilation = ntuple(dilation, n, "dilation")
    pads = resolve_padding(padding, kernel, stride, dilation)
    return tuple((s + lo + hi - d * (k - 1) - 1) // st + 1
                 for s, (lo, hi), k, st, d in zip(spatial, pads, kernel, stride, dilation))


def conv_transpose_output_shape(spatial, kernel, stride=1, padding=0, output_padding=0, dilation=1) -> tuple:
    """Spatial output size of a transposed convolution: ``(S-1)s - 2p + d(K-1) + output_padding + 1``."""
    n = len(spatial)
    kernel, stride = ntuple(kernel, n, "kernel_size"), ntuple(stride, n, "stride")
    dilation = ntuple(dilation, n, "dilation")
    pad, op = ntuple(padding, n, "padding"), ntuple(output_padding, n, "output_padding")
    return tuple((s - 1) * st - 2 * p + d * (k - 1) + o + 1
                 for s, k, st, p, o, d in zip(spatial, kernel, stride, pad, op, dilation))


@dataclass(frozen=True)
class ConvGeometry:
    """Everything im2col/col2im need: the shapes of x and y and the window parameters.

    ``in_shape`` is ``(B, C_in, *S)``; ``out_spatial`` is ``L``; ``pads`` is ``((lo, hi), ...)``.
    """

    in_shape: tuple
    kernel: tuple
    stride: tuple
    pads: tuple
    dilation: tuple
    groups: int
    out_spatial: tuple

    @property
    def n(self) -> int:
        return len(self.kernel)

    @functools.cached_property
    def padded(self) -> "ConvGeometry":
        """The geometry of the zero-padded input ``pad(x, self.pads)``: the same windows, no padding.
        A layer pads x once (its own copy, kept for the weight gradient) and runs the engine on that."""
        shape = self.in_shape[:2] + tuple(s + lo + hi for s, (lo, hi) in zip(self.in_shape[2:], self.pads))
        return dataclasses.replace(self, in_shape=shape, pads=((0, 0),) * self.n)

    @classmethod
    def make(cls, in_shape, kernel, stride=1, padding=0, dilation=1, groups=1, who: str = "conv"):
        in_shape = tuple(int(v) for v in in_shape)
        n = len(kernel)
        stride, dilation = ntuple(stride, n, "stride"), ntuple(dilation, n, "dilation")
        if any(v < 1 for v in stride) or any(v < 1 for v in dilation):
            raise ValueError(f"{who}: stride and dilation must be >= 1, got stride={stride}, dilation={dilation}")
        pads = resolve_padding(padding, kernel, stride, dilation)
        out = []
        for s, (lo, hi), k, st, d in zip(in_shape[2:], pads, kernel, stride, dilation):
            eff = s + lo + hi
            if eff < d * (k - 1) + 1:
                padded = tuple(a + lo + hi for a, (lo, hi) in zip(in_shape[2:], pads))
                dilated = tuple(d * (kk - 1) + 1 for kk, d in zip(kernel, dilation))
                raise ValueError(f"{who}: padded input size {padded} is smaller than the dilated kernel {dilated} "
                                 f"(input {in_shape})")
            out.append((eff - d * (k - 1) - 1) // st + 1)
        return cls(in_shape, tuple(kernel), stride, pads, dilation, int(groups), tuple(out))


def _check_conv_args(x_shape, w_shape, groups, who, transposed=False):
    n = len(w_shape) - 2
    if n < 1:
        raise ValueError(f"{who}: weight must have shape (C_out, C_in/groups, *kernel), got {tuple(w_shape)}")
    if len(x_shape) != n + 2:
        raise ValueError(f"{who}: expected input of rank {n + 2} (B, C, *spatial) for a weight of shape "
                         f"{tuple(w_shape)}, got shape {tuple(x_shape)}")
    if groups < 1:
        raise ValueError(f"{who}: groups must be >= 1, got {groups}")
    if transposed:
        if w_shape[0] != x_shape[1] or w_shape[0] % groups:
            raise ValueError(f"{who}: weight {tuple(w_shape)} with groups={groups} expects input of shape "
                             f"(B, {w_shape[0]}, ...), got {tuple(x_shape)}")
    elif w_shape[1] * groups != x_shape[1] or w_shape[0] % groups:
        raise ValueError(f"{who}: weight {tuple(w_shape)} with groups={groups} expects input of shape "
                         f"(B, {w_shape[1] * groups}, ...), got {tuple(x_shape)}")


def _as_shape(v, what: str) -> tuple:
    if isinstance(v, np.ndarray):
        raise TypeError(f"{what} must be a shape tuple, got an array of shape {v.shape} "
                        "(argument order follows torch.nn.grad: see the docstring)")
    return tuple(int(s) for s in v)


def _float(x, name="input"):
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        raise ValueError(f"expected {name} of a float dtype (float32 or float64), got {x.dtype}")
    return x


# ==================================================================================== im2col / col2im
#: Bytes of im2col columns per chunk of samples. The engine runs im2col, the GEMM and col2im one chunk
#: of samples at a time, so the columns stay in the core's L2 cache between the copy that writes them
#: and the GEMM that reads them (1 MiB: half of this machine's 2 MiB L2 per core; measured 1.3-1.5x
#: faster than one wide GEMM over the whole batch's columns, which live in memory).
CHUNK_BYTES = 1 << 20


def sample_chunks(batch: int, bytes_per_sample: int) -> list:
    """Slices of ``range(batch)`` whose columns take about :data:`CHUNK_BYTES` (at least one sample)."""
    n = max(1, min(batch, CHUNK_BYTES // max(1, bytes_per_sample)))
    return [slice(s, min(s + n, batch)) for s in range(0, batch, n)]


def im2col(x: np.ndarray, geom: ConvGeometry, out=None) -> np.ndarray:
    """``x (B, C, *S) -> cols (B, g, C/g · ΠK, ΠL)`` (written into ``out`` if given)::

        cols[b, g, (c, k), l] = x_pad[b, g·C/g + c, l·s + k·d]

    Positions in the padding read 0. Rows are ordered (channel, kernel offset) exactly like a
    flattened weight ``(C_out, C/g, *K) -> (C_out, C/g · ΠK)``, so ``W_g @ cols[b]`` is sample b's
    output ``(g, C_out/g, ΠL)``, already in NCHW order.
    """
    cols = _conv_kernels().im2col(x, geom.kernel, geom.stride, geom.pads, geom.dilation, geom.out_spatial, out)
    return cols.reshape(cols.shape[0], geom.groups, cols.shape[1] // geom.groups, cols.shape[2])


def col2im(cols: np.ndarray, geom: ConvGeometry, out=None) -> np.ndarray:
    """Adjoint of :func:`im2col`: scatter-add ``cols (B, g, C/g · ΠK, ΠL)`` back into ``(B, C, *S)``.

    ``<im2col(x), c> = <x, col2im(c)>`` for all x, c; overlapping windows add up. B may be any
    chunk of the batch ``geom`` was made for. ``out``: a zero-filled padded buffer
    ``(B, C, *(S + p_lo + p_hi))`` to add into (the result is then a view of it).
    """
    B = cols.shape[0]
    cols = cols.reshape(B, cols.shape[1] * cols.shape[2], cols.shape[3])
    return _conv_kernels().col2im(cols, (B,) + geom.in_shape[1:], geom.kernel, geom.stride, geom.pads,
                                  geom.dilation, geom.out_spatial, out)


def _wmat(weight: np.ndarray, groups: int) -> np.ndarray:
    """``(C_out, C_in/g, *K) -> (g, C_out/g, C_in/g · ΠK)`` (a view)."""
    return weight.reshape(groups, weight.shape[0] // groups, -1)


def _per_group(a: np.ndarray, groups: int) -> np.ndarray:
    """``(B, C, *L) -> (B, g, C/g, ΠL)`` (a view of a contiguous array)."""
    return a.reshape(a.shape[0], groups, a.shape[1] // groups, math.prod(a.shape[2:]))


def _cols_chunks(batch, geom, rows, dtype):
    """The chunks of samples and one reusable buffer ``(n, g, rows, ΠL)`` for their columns."""
    L = math.prod(geom.out_spatial)
    chunks = sample_chunks(batch, np.dtype(dtype).itemsize * geom.groups * rows * L)
    n = chunks[0].stop if chunks else 0
    return chunks, np.empty((n, geom.groups, rows, L), dtype=dtype)


def conv_apply(x, weight, bias, geom: ConvGeometry) -> np.ndarray:
    """``y[b] = W_g @ im2col(x)[b] (+ bias)`` over chunks of samples: ``(B, C_out, *L)``.

    Each chunk's GEMMs (one per sample and group, ``np.matmul`` broadcasting ``W_g``) write straight
    into the output array: no transpose before or after the BLAS call.
    """
    K = _conv_kernels()
    if K.taps_pay(geom.kernel, geom.stride, weight.shape[1]):
        return K.conv_taps(x, weight, bias, geom.pads, geom.dilation, geom.out_spatial, geom.groups)
    B = x.shape[0]
    w = _wmat(weight, geom.groups)                                     # (g, C_out/g, C_in/g·ΠK)
    y = np.empty((B, weight.shape[0], math.prod(geom.out_spatial)), dtype=x.dtype)
    y4 = _per_group(y, geom.groups)
    chunks, buf = _cols_chunks(B, geom, w.shape[2], x.dtype)
    for sl in chunks:
        np.matmul(w, im2col(x[sl], geom, buf[:sl.stop - sl.start]), out=y4[sl])
        if bias is not None:
            y[sl] += bias.reshape(-1, 1)
    return y.reshape((B, weight.shape[0]) + tuple(geom.out_spatial))


def conv_weight_grad(x, grad_output, geom: ConvGeometry, weight_shape) -> np.ndarray:
    """``dL/dW_g = Σ_b gy[b]_g @ im2col(x)[b]_gᵀ`` over chunks of samples; ``grad_output (B, C_out, *L)``.

    The im2col columns are rebuilt here, chunk by chunk, from ``x`` (cheaper than keeping the whole
    batch's columns from the forward pass: they are ΠK times the size of x and would be read back
    from memory).
    """
    K = _conv_kernels()
    if K.taps_pay(geom.kernel, geom.stride, weight_shape[1]):
        return K.conv_taps_weight_grad(x, grad_output, weight_shape, geom.pads, geom.dilation, geom.groups)
    gy = _per_group(np.ascontiguousarray(grad_output), geom.groups)  # (B, g, C_out/g, ΠL)
    ck = math.prod(weight_shape[1:])
    dw_t = np.zeros((geom.groups, ck, weight_shape[0] // geom.groups), dtype=gy.dtype)   # dL/dW_gᵀ
    chunks, buf = _cols_chunks(x.shape[0], geom, ck, gy.dtype)
    for sl in chunks:
        cols = im2col(x[sl], geom, buf[:sl.stop - sl.start])
        # cols[b] @ gy[b]ᵀ: (C_in/g·ΠK, ΠL) @ (ΠL, C_out/g) ran 1.3-1.7x faster in OpenBLAS here than the
        # transposed product gy[b] @ cols[b]ᵀ (a small output with a long inner dimension)
        prod = np.matmul(cols, gy[sl].swapaxes(-1, -2))                # (n, g, C_in/g·ΠK, C_out/g)
        dw_t += prod[0] if prod.shape[0] == 1 else prod.sum(axis=0)
    return np.ascontiguousarray(dw_t.swapaxes(-1, -2)).reshape(weight_shape)


def conv_input_grad(grad_output, weight, geom: ConvGeometry) -> np.ndarray:
    """``dL/dx = col2im(W_gᵀ @ gy[b]_g)`` over chunks of samples; ``grad_output (B, C_out, *L)``,
    result ``geom.in_shape``."""
    gy = _per_group(np.ascontiguousarray(grad_output), geom.groups)  # (B, g, C_out/g, ΠL)
    wt = _wmat(weight, geom.groups).swapaxes(-1, -2)                   # (g, C_in/g·ΠK, C_out/g)
    padded = geom.padded
    dxp = np.zeros(padded.in_shape, dtype=gy.dtype)
    chunks, buf = _cols_chunks(gy.shape[0], geom, wt.shape[1], gy.dtype)
    for sl in chunks:
        dcols = np.matmul(wt, gy[sl], out=buf[:sl.stop - sl.start])
        col2im(dcols, padded, dxp[sl])
    if padded.in_shape == geom.in_shape:
        return dxp
    return np.ascontiguousarray(crop(dxp, geom.pads, geom.in_shape[2:]))


# ==================================================================================== convolution
def conv(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    r"""N-d cross-correlation, ``torch.nn.functional.conv{1,2,3}d``.

    Parameters
    ----------
    x : ``(B, C_in, *S)`` float array.
    weight : ``(C_out, C_in/groups, *K)``.
    bias : ``(C_out,)`` or None.
    stride, dilation : int or n-tuple.  padding : int, n-tuple, ``"valid"`` or ``"same"``.

    Returns ``y (B, C_out, *L)`` with ``y[b, o, l] = bias[o] + Σ_{c,k} W[o, c, k] x_pad[b, c', l·s + k·d]``
    (c' = c + (o // (C_out/g))·C_in/g), computed as ``W_g @ im2col(x)``.
    """
    x = _float(x)
    weight = np.asarray(weight, dtype=x.dtype)
    _check_conv_args(x.shape, weight.shape, groups, "conv")
    geom = ConvGeometry.make(x.shape, weight.shape[2:], stride, padding, dilation, groups)
    b = None if bias is None else np.asarray(bias, dtype=x.dtype)
    return conv_apply(x, weight, b, geom)


def conv_backward_input(input_shape, weight, grad_output, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """dL/dx of :func:`conv` (``torch.nn.grad.conv{n}d_input``): ``col2im(W_gᵀ @ gy)``, shape ``input_shape``."""
    input_shape = _as_shape(input_shape, "input_shape")
    gy = _float(grad_output, "grad_output")
    weight = np.asarray(weight, dtype=gy.dtype)
    _check_conv_args(input_shape, weight.shape, groups, "conv_backward_input")
    geom = ConvGeometry.make(input_shape, weight.shape[2:], stride, padding, dilation, groups)
    _check_gy(gy, (input_shape[0], weight.shape[0]) + geom.out_spatial, "conv_backward_input")
    return conv_input_grad(gy, weight, geom)


def conv_backward_weight(x, weight_shape, grad_output, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """dL/dW of :func:`conv` (``torch.nn.grad.conv{n}d_weight``): ``Σ_b gy_g @ im2col(x)_gᵀ``."""
    x = _float(x)
    weight_shape = _as_shape(weight_shape, "weight_shape")
    gy = np.asarray(grad_output, dtype=x.dtype)
    _check_conv_args(x.shape, weight_shape, groups, "conv_backward_weight")
    geom = ConvGeometry.make(x.shape, weight_shape[2:], stride, padding, dilation, groups)
    _check_gy(gy, (x.shape[0], weight_shape[0]) + geom.out_spatial, "conv_backward_weight")
    return conv_weight_grad(x, gy, geom, weight_shape)


def _check_gy(gy, expected, who):
    if tuple(gy.shape) != tuple(expected):
        raise ValueError(f"{who}: expected grad_output of shape {tuple(expected)}, got {tuple(gy.shape)}")


# ==================================================================================== transposed convolution
def transpose_geometry(x_shape, w_shape, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                       output_size=None, who="conv_transpose") -> ConvGeometry:
    """The geometry of the *adjoint* convolution: its input is the transposed conv's output.

    The transposed conv maps ``(B, C_in, *S) -> (B, C_out, *S_out)``; the convolution it is the
    adjoint of maps ``(B, C_out, *S_out) -> (B, C_in, *S)`` with the same weight
    ``(C_in, C_out/g, *K)`` read as a conv weight ``(out=C_in, in/g=C_out/g, *K)``.
    ``output_size`` (torch's ``forward(x, output_size)``) picks ``output_padding`` for you.
    """
    n = len(w_shape) - 2
    kernel = tuple(w_shape[2:])
    stride, dilation = ntuple(stride, n, "stride"), ntuple(dilation, n, "dilation")
    if isinstance(padding, str):
        raise ValueError(f"{who}: string padding {padding!r} is not supported for transposed convolutions")
    pad = ntuple(padding, n, "padding")
    S = tuple(x_shape[2:])
    if output_size is not None:
        op = output_padding_for(S, output_size, kernel, stride, pad, dilation, who)
    else:
        op = ntuple(output_padding, n, "output_padding")
    for o, s, d in zip(op, stride, dilation):
        if o < 0 or (o >= s and o >= d):
            raise ValueError(f"{who}: output_padding must be smaller than either stride or dilation, "
                             f"got output_padding={op}, stride={stride}, dilation={dilation}")
    out_spatial = conv_transpose_output_shape(S, kernel, stride, pad, op, dilation)
    if any(v < 1 for v in out_spatial):
        raise ValueError(f"{who}: input of shape {tuple(x_shape)} gives a non-positive output size {out_spatial}")
    in_shape = (x_shape[0], w_shape[1] * groups) + out_spatial
    return _restrict(ConvGeometry.make(in_shape, kernel, stride, pad, dilation, groups, who), S)


def _restrict(geom: ConvGeometry, spatial) -> ConvGeometry:
    """Keep only the first ``spatial`` output positions of the adjoint convolution.

    With ``output_padding >= stride`` (allowed when it is below the dilation) the conv of the
    transposed conv's output has more positions than the transposed conv's input; the transposed
    conv is the adjoint of the conv *restricted* to the first ``S`` of them.
    """
    spatial = tuple(spatial)
    if geom.out_spatial == spatial:
        return geom
    if any(a < b for a, b in zip(geom.out_spatial, spatial)):
        raise ValueError(f"conv_transpose: an output of spatial size {geom.in_shape[2:]} cannot come from an "
                         f"input of spatial size {spatial}")
    return dataclasses.replace(geom, out_spatial=spatial)


def output_padding_for(spatial, output_size, kernel, stride, padding, dilation, who="conv_transpose") -> tuple:
    """torch's ``_output_padding``: the output_padding that makes the output ``output_size``."""
    n = len(spatial)
    output_size = tuple(int(v) for v in output_size)
    if len(output_size) == n + 2:
        output_size = output_size[2:]
    if len(output_size) != n:
        raise ValueError(f"{who}: output_size must have {n} or {n + 2} elements, got {output_size}")
    lo = conv_transpose_output_shape(spatial, kernel, stride, padding, 0, dilation)
    hi = tuple(v + s - 1 for v, s in zip(lo, stride))
    for want, a, b in zip(output_size, lo, hi):
        if not a <= want <= b:
            raise ValueError(f"{who}: requested an output size of {output_size}, but valid sizes range "
                             f"from {lo} to {hi} (for an input of {tuple(spatial)})")
    return tuple(w - a for w, a in zip(output_size, lo))


def conv_transpose(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1,
                   output_size=None) -> np.ndarray:
    r"""N-d transposed convolution, ``torch.nn.functional.conv_transpose{1,2,3}d`` (same argument order).

    ``x (B, C_in, *S)``, ``weight (C_in, C_out/groups, *K)``, output ``(B, C_out, *S_out)`` with
    ``S_out = (S-1)s - 2p + d(K-1) + output_padding + 1``. It is the adjoint of :func:`conv`:
    ``conv_transpose(x, W) = conv_backward_input(shape, W, x)`` (plus bias), i.e. ``col2im(W_gᵀ @ x_g)``.
    """
    x = _float(x)
    weight = np.asarray(weight, dtype=x.dtype)
    _check_conv_args(x.shape, weight.shape, groups, "conv_transpose", transposed=True)
    geom = transpose_geometry(x.shape, weight.shape, stride, padding, output_padding, groups, dilation, output_size)
    y = conv_input_grad(x, weight, geom)
    if bias is not None:
        y += np.asarray(bias, dtype=x.dtype).reshape((-1,) + (1,) * geom.n)
    return y


def conv_transpose_backward_input(input_shape, weight, grad_output, stride=1, padding=0, dilation=1,
                                  groups=1) -> np.ndarray:
    """dL/dx of :func:`conv_transpose` = ``conv(grad_output, weight)`` (the adjoint of an adjoint).

    ``input_shape (B, C_in, *S)`` (or None), ``weight (C_in, C_out/g, *K)``, ``grad_output
    (B, C_out, *S_out)``; output_padding is not needed. The conv may produce more than ``S``
    positions when ``output_padding >= stride``; the first ``S`` are the gradient.
    """
    y = conv(grad_output, weight, None, stride, padding, dilation, groups)
    if input_shape is None:
        return y
    input_shape = _as_shape(input_shape, "input_shape")
    if y.shape[:2] != input_shape[:2] or any(a < b for a, b in zip(y.shape[2:], input_shape[2:])):
        raise ValueError(f"conv_transpose_backward_input: grad_output of shape {grad_output.shape} does not "
                         f"match an input of shape {input_shape}")
    return y[(slice(None), slice(None)) + tuple(slice(0, v) for v in input_shape[2:])]


def conv_transpose_backward_weight(x, weight_shape, grad_output, stride=1, padding=0, dilation=1,
                                   groups=1) -> np.ndarray:
    """dL/dW of :func:`conv_transpose`: ``Σ_b x_g @ im2col(grad_output)_gᵀ`` (roles of x and gy swapped).

    ``x (B, C_in, *S)``, ``weight_shape (C_in, C_out/g, *K)``, ``grad_output (B, C_out, *S_out)``.
    """
    x = _float(x)
    weight_shape = _as_shape(weight_shape, "weight_shape")
    gy = np.asarray(grad_output, dtype=x.dtype)
    _check_conv_args(x.shape, weight_shape, groups, "conv_transpose_backward_weight", transposed=True)
    if gy.ndim != x.ndim or gy.shape[:2] != (x.shape[0], weight_shape[1] * groups):
        raise ValueError(f"conv_transpose_backward_weight: grad_output of shape {gy.shape} does not match "
                         f"input {x.shape} and weight {weight_shape}")
    if isinstance(padding, str):
        raise ValueError(f"conv_transpose_backward_weight: string padding {padding!r} is not supported")
    geom = ConvGeometry.make(gy.shape, weight_shape[2:], stride, padding, dilation, groups,
                             "conv_transpose_backward_weight")
    geom = _restrict(geom, x.shape[2:])
    return conv_weight_grad(gy, x, geom, weight_shape)


# the pooling functions live beside these (functional_pool.py); nnlocal.nn.functional offers both
from .functional_pool import (avg_divisor, avg_pool, avg_pool_backward, avg_pool_backward_geom,  # noqa: E402
                              avg_pool_geom, max_pool, max_pool_backward, max_pool_geom, max_pool_with_indices,
                              pool_geometry, pool_output_shape)
