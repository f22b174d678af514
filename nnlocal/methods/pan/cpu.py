r"""Numba twins of :mod:`nnlocal.methods.pan.reference` (selected by ``nnlocal.kernels.use("numba")``).

A PAN layer with n inputs and m outputs has one teacher unit per student weight: teacher weights
TW ``(m·n, n)``, teacher biases Tb ``(m·n,)``; gate k = j·n + i opens student weight SW[j, i].

* **Batch gate** (the original): one gate for the whole mini-batch,
  o_k = [TW_k · s + B·Tb_k > θ] with s = Σ_b x_b. The batch sum commutes with the teacher's linear
  map, so this is one matrix-vector product that streams TW once (never the ``(B, m·n)`` GEMM the
  original computes). :func:`pan_batch_gate` fuses the GEMV, the bias and the threshold.
* **Per-sample gate** (extension): o_{b,k} = [TW_k · x_b + Tb_k > θ]. The ``(B, m·n)`` teacher GEMM
  is unavoidable here and is left to BLAS; :func:`pan_bias_threshold` adds the bias and thresholds in
  one pass, and :func:`pan_sample_forward` / :func:`pan_sample_backward` compute the per-sample
  masked products y_{b,j} = Sb_j + Σ_i o_{b,j,i} SW_{j,i} x_{b,i} and their gradients without ever
  forming the ``(B, m, n)`` effective weights.
* **Straight-through teacher** (extension): :func:`pan_sample_gate_grad` gives dL/do per sample and
  :func:`pan_add_outer` accumulates the batch-gate teacher gradient dTW += dTh ⊗ s in place.

With a batch gate the masked product itself needs no kernel: W_eff = o ⊙ SW is m·n elements
(48,000 for 400→120, a few tens of microseconds in NumPy) and y = x W_effᵀ + Sb, gᵀx and g W_eff
are small BLAS GEMMs; the gate's pass over TW is what costs.

Masks are ``numpy.bool_`` arrays. ``tests/test_pan.py`` checks each against its reference. Speed (``benchmarks/bench_pan.py``, one
thread, 400→120 float32, TW = 76.8 MB): the fused gate runs within about 1.2–1.4× of a bare Numba
read of TW (the single-thread memory-stream limit of the 2-core machine, ≈ 13–14 GB/s) and
1.3–1.6× faster than BLAS ``sgemv`` followed by a NumPy threshold.
"""
from __future__ import annotations

from numba import njit

__all__ = ["pan_batch_gate", "pan_bias_threshold", "pan_sample_forward", "pan_sample_backward",
           "pan_sample_gate_grad", "pan_add_outer"]


@njit(cache=True, fastmath=True)
def pan_batch_gate(tw, s, tb, tb_scale, threshold, mask):
    """mask[k] = (TW[k] · s + tb_scale·Tb[k] > threshold), streaming TW once.

    tw ``(K, n)`` C-contiguous, s ``(n,)``, tb ``(K,)``, mask ``(K,)`` bool (written). ``tb_scale``
    is the batch size B of the original's batch sum. Pass ``tb_scale`` and ``threshold`` as scalars
    of TW's dtype (a Python float would promote the float32 sums to float64). ``fastmath`` lets the
    dot product vectorise (reassociated sums: a gate can differ from another summation order only
    where |Th - θ| is at rounding level).
    """
    K, n = tw.shape
    for k in range(K):
        acc = tw[k, 0] * 0
        for i in range(n):
            acc += tw[k, i] * s[i]
        mask[k] = acc + tb_scale * tb[k] > threshold
    return mask


@njit(cache=True)
def pan_bias_threshold(tz, tb, threshold, mask):
    """mask[b, k] = (tz[b, k] + tb[k] > threshold); tz ``(B, K)`` = x TWᵀ from BLAS, mask ``(B, K)``."""
    B, K = tz.shape
    for b in range(B):
        for k in range(K):
            mask[b, k] = tz[b, k] + tb[k] > threshold
    return mask


@njit(cache=True)
def pan_sample_forward(mask, sw, x, sb, y):
    """y[b, j] = sb[j] + Σ_i mask[b, j, i]·sw[j, i]·x[b, i].

    mask ``(B, m, n)`` bool, sw ``(m, n)``, x ``(B, n)``, sb ``(m,)``, y ``(B, m)`` (written).
    """
    B, m, n = mask.shape
    for b in range(B):
        for j in range(m):
            acc = sb[j]
            for i in range(n):
                if mask[b, j, i]:
                    acc += sw[j, i] * x[b, i]
            y[b, j] = acc
    return y


@njit(cache=True)
def pan_sample_backward(mask, sw, x, g, gsw, gx):
    """Per-sample masked-product backward, given g = dL/dy ``(B, m)``.

    gsw[j, i] = Σ_b g[b, j]·mask[b, j, i]·x[b, i]   (``(m, n)``, written, not accumulated)
    gx[b, i]  = Σ_j g[b, j]·mask[b, j, i]·sw[j, i]  (``(B, n)``, written)
    """
    B, m, n = mask.shape
    gsw[:, :] = 0
    gx[:, :] = 0
    for b in range(B):
        for j in range(m):
            gj = g[b, j]
            for i in range(n):
                if mask[b, j, i]:
                    gsw[j, i] += gj * x[b, i]
                    gx[b, i] += gj * sw[j, i]
    return gsw, gx


@njit(cache=True)
def pan_sample_gate_grad(sw, x, g, out):
    """out[b, j, i] = g[b, j]·sw[j, i]·x[b, i] = dL/do_{b,j,i} for per-sample gates; out ``(B, m, n)``."""
    B, m, n = out.shape
    for b in range(B):
        for j in range(m):
            gj = g[b, j]
            for i in range(n):
                out[b, j, i] = gj * sw[j, i] * x[b, i]
    return out


@njit(cache=True, fastmath=True)
def pan_add_outer(G, u, v):
    """G += u ⊗ v in place (G ``(K, n)``, u ``(K,)``, v ``(n,)``): no ``(K, n)`` temporary."""
    K, n = G.shape
    for k in range(K):
        uk = u[k]
        for i in range(n):
            G[k, i] += uk * v[i]
    return G
