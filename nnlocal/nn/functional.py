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

Pooling: ``max_pool`` pads with -inf and takes the *first* maximum of each window in row-major
window order (torch's CPU rule for ties); its indices are torch's ``return_indices`` (flat offsets
in the input plane), so ``max_pool_backward`` is a scatter-add. ``avg_pool`` pads with zeros and
by default divides by the full window size (``count_include_pad=True``).
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
    "max_pool", "max_pool_with_indices", "max_pool_backward", "avg_pool", "avg_pool_backward",
    "pool_output_shape", "pool_geometry", "max_pool_geom", "avg_pool_geom", "avg_pool_backward_geom", "avg_divisor",
]


def _conv_kernels():
    """im2col / col2im / max pooling of the implementation in force (``nnlocal.kernels.use``)."""
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


# ==================================================================================== pooling
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
    return _conv_kernels().max_pool(x, geom.kernel, geom.stride, geom.pads, geom.dilation, geom.out_spatial)


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
    return _conv_kernels().max_pool_backward(gy, indices, input_shape)


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
    y = _conv_kernels().sum_pool(x, geom.kernel, geom.stride, geom.pads, geom.out_spatial)
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
    return _conv_kernels().sum_pool_backward(grad_output / divisor, geom.in_shape, geom.kernel, geom.stride,
                                             geom.pads, geom.out_spatial)
