r"""Numba twins of :mod:`nnlocal.methods.pan.reference` (selected by ``nnlocal.kernels.use("numba")``).

Same functions, same signatures, same results. A kernel is kept only where it beats its NumPy
reference at every size PAN uses (400→120 and 120→84 for MNIST, 64→120 for the 8×8 digits,
576→120 for CIFAR-10; batches 8 and 64; one thread; ``python -m nnlocal.bench.bench_pan --kernels`` and the
table in ``docs/pan.md``):

* :func:`pan_batch_gate` is **the reference**: BLAS ``sgemv`` plus the threshold was faster than a
  fused Numba loop at every size (the gate is a memory-bound read of TW, and OpenBLAS reads it
  faster than the loop Numba generates), so the Numba gate was removed.
* :func:`pan_sample_gate` is the reference's chunked BLAS GEMM followed by the Numba
  :func:`pan_bias_threshold` (one pass, no ``(B, K)`` float temporary).
* :func:`pan_sample_forward`, :func:`pan_sample_backward`, :func:`pan_sample_gate_grad` and
  :func:`pan_add_outer` never form the ``(B, m, n)`` effective weights or a ``(K, n)`` temporary.

Non-finite values propagate as in the references: the masked sums multiply by the mask
(0·NaN = NaN, 0·inf = NaN) instead of skipping closed gates with a branch. ``fastmath`` is limited
to ``reassoc`` (vectorised sums); no ``nnan``/``ninf`` flag lets the compiler drop a NaN.
"""
from __future__ import annotations

from numba import njit

from .reference import pan_batch_gate, sample_chunks

__all__ = ["pan_batch_gate", "pan_sample_gate", "pan_bias_threshold", "pan_sample_forward", "pan_sample_backward",
           "pan_sample_gate_grad", "pan_add_outer"]

_SUMS = {"reassoc"}   # lets LLVM vectorise a floating-point sum (reordered); keeps NaN and inf semantics


def pan_sample_gate(tw, x, tb, threshold, mask):
    """mask[b] = [TW x_b + Tb > θ]: BLAS GEMM per row chunk, then the fused Numba bias-threshold."""
    for rows in sample_chunks(x.shape[0], tw.shape[0]):
        pan_bias_threshold(x[rows] @ tw.T, tb, threshold, mask[rows])
    return mask


@njit(cache=True)
def pan_bias_threshold(tz, tb, threshold, mask):
    """mask[b, k] = [tz[b, k] + Tb[k] > θ]; tz ``(B, K)`` = x TWᵀ from BLAS, mask ``(B, K)`` (written)."""
    B, K = tz.shape
    for b in range(B):
        for k in range(K):
            mask[b, k] = tz[b, k] + tb[k] > threshold
    return mask


@njit(cache=True, fastmath=_SUMS)
def pan_sample_forward(mask, sw, x, sb, y):
    """y[b, j] = Sb[j] + Σ_i o[b, j, i]·SW[j, i]·x[b, i].

    mask ``(B, m, n)`` bool, sw ``(m, n)``, x ``(B, n)``, sb ``(m,)``, y ``(B, m)`` (written).
    """
    B, m, n = mask.shape
    for b in range(B):
        for j in range(m):
            acc = sw[j, 0] - sw[j, 0]      # a zero of the input dtype (a literal 0.0 would be float64)
            for i in range(n):
                acc += mask[b, j, i] * sw[j, i] * x[b, i]
            y[b, j] = sb[j] + acc
    return y


@njit(cache=True)
def pan_sample_backward(mask, sw, x, g, gsw, gx):
    """Per-sample masked-product backward, given g = dL/dy ``(B, m)``:

    gsw[j, i] = Σ_b g[b, j]·o[b, j, i]·x[b, i]   (``(m, n)``, written, not accumulated)
    gx[b, i]  = Σ_j g[b, j]·o[b, j, i]·SW[j, i]  (``(B, n)``, written)
    """
    B, m, n = mask.shape
    gsw[:, :] = 0
    gx[:, :] = 0
    for b in range(B):
        for j in range(m):
            gj = g[b, j]
            for i in range(n):
                og = mask[b, j, i] * gj
                gsw[j, i] += og * x[b, i]
                gx[b, i] += og * sw[j, i]
    return gsw, gx


@njit(cache=True)
def pan_sample_gate_grad(sw, x, g, out):
    """out[b, j, i] = g[b, j]·SW[j, i]·x[b, i] = dL/do_b for per-sample gates; out ``(B, m, n)``."""
    B, m, n = out.shape
    for b in range(B):
        for j in range(m):
            gj = g[b, j]
            for i in range(n):
                out[b, j, i] = gj * sw[j, i] * x[b, i]
    return out


@njit(cache=True)
def pan_add_outer(G, u, v):
    """G += u ⊗ v in place (G ``(K, n)``, u ``(K,)``, v ``(n,)``): no ``(K, n)`` temporary."""
    K, n = G.shape
    for k in range(K):
        uk = u[k]
        for i in range(n):
            G[k, i] += uk * v[i]
    return G
