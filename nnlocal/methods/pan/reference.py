r"""PAN's gate and gated products: the equations, in plain NumPy. Read this file first.

A PAN layer with n inputs and m outputs has a student (SW ``(m, n)``, Sb ``(m,)``) and a teacher
with one unit per student weight: TW ``(m·n, n)``, Tb ``(m·n,)``. Gate k = j·n + i opens student
weight SW[j, i].

* **Batch gate** (the original): one gate for the whole mini-batch,

      o_k = [TW_k · s + B·Tb_k > θ],   s = Σ_b x_b            (:func:`pan_batch_gate`)

  The original computes ``Σ_b (TW x_b + Tb)`` as a ``(B, m·n)`` GEMM and a sum; the batch sum
  commutes with the teacher's linear map, so this is the same number from one matrix-vector
  product that streams TW once. The layer then computes ``y = x (o ⊙ SW)ᵀ + Sb`` (small GEMMs).
* **Per-sample gate** (extension): o_{b,k} = [TW_k · x_b + Tb_k > θ]; with ``tz = x TWᵀ`` from a
  GEMM, :func:`pan_bias_threshold` adds the bias and thresholds, and the masked product
  y_{b,j} = Sb_j + Σ_i o_{b,j,i} SW_{j,i} x_{b,i} (:func:`pan_sample_forward`) and its gradients
  (:func:`pan_sample_backward`) never form the ``(B, m, n)`` effective weights in the kernels.
* **Straight-through teacher** (extension): dL/do per sample (:func:`pan_sample_gate_grad`) and
  the batch-gate teacher gradient dTW += dTh ⊗ s (:func:`pan_add_outer`).

Masks are ``numpy.bool_`` arrays. Every function writes its result into its last argument and
returns it, as its Numba (``cpu.py``) and CUDA (``cuda.py``) twins do.
"""
from __future__ import annotations

import numpy as np

__all__ = ["pan_batch_gate", "pan_bias_threshold", "pan_sample_forward", "pan_sample_backward",
           "pan_sample_gate_grad", "pan_add_outer"]


def pan_batch_gate(tw, s, tb, tb_scale, threshold, mask):
    """mask[k] = (TW[k] · s + tb_scale·Tb[k] > threshold): one GEMV over TW, then the threshold.

    tw ``(K, n)``, s ``(n,)``, tb ``(K,)``, mask ``(K,)`` bool (written). ``tb_scale`` is the batch
    size B of the original's batch sum.
    """
    return np.greater(tw @ s + tb_scale * tb, threshold, out=mask)


def pan_bias_threshold(tz, tb, threshold, mask):
    """mask[b, k] = (tz[b, k] + tb[k] > threshold); tz ``(B, K)`` = x TWᵀ, mask ``(B, K)`` (written)."""
    return np.greater(tz + tb, threshold, out=mask)


def pan_sample_forward(mask, sw, x, sb, y):
    """y[b, j] = sb[j] + Σ_i mask[b, j, i]·sw[j, i]·x[b, i]; mask ``(B, m, n)``, y ``(B, m)`` (written)."""
    y[...] = np.einsum("bji,ji,bi->bj", mask.astype(sw.dtype), sw, x) + sb
    return y


def pan_sample_backward(mask, sw, x, g, gsw, gx):
    """Per-sample masked-product backward, given g = dL/dy ``(B, m)`` (both outputs written):

    gsw[j, i] = Σ_b g[b, j]·mask[b, j, i]·x[b, i]   ``(m, n)``
    gx[b, i]  = Σ_j g[b, j]·mask[b, j, i]·sw[j, i]  ``(B, n)``
    """
    mf = mask.astype(sw.dtype)
    gsw[...] = np.einsum("bj,bji,bi->ji", g, mf, x)
    gx[...] = np.einsum("bj,bji,ji->bi", g, mf, sw)
    return gsw, gx


def pan_sample_gate_grad(sw, x, g, out):
    """out[b, j, i] = g[b, j]·sw[j, i]·x[b, i] = dL/do_{b,j,i} for per-sample gates; out ``(B, m, n)``."""
    np.multiply(g[:, :, None] * sw[None, :, :], x[:, None, :], out=out)
    return out


def pan_add_outer(G, u, v):
    """G += u ⊗ v in place (G ``(K, n)``, u ``(K,)``, v ``(n,)``)."""
    G += np.outer(u, v)
    return G
