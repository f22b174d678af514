r"""PAN's equations in plain NumPy. Read this file first.

Shapes: n inputs, m outputs, batch B, K = m·n teacher units; gate k = j·n + i opens student
weight SW[j, i] (row-major, so a ``(K,)`` gate reshapes to ``(m, n)``)::

    x   (B, n)   input                      SW (m, n)  student weight   Sb (m,)  student bias
    g   (B, m)   dL/dy, the upstream grad   TW (K, n)  teacher weight   Tb (K,)  teacher bias
    θ   scalar   the threshold (0.0)        o  (m, n)  the gate (bool; (B, m, n) per sample)

**1. The batch gate** (the original; :func:`pan_batch_gate`). One gate for the whole mini-batch,
from the teacher's pre-activations summed over the batch::

    Th = Σ_b (TW x_b + Tb) = TW s + B·Tb,   s = Σ_b x_b        (K,)
    o  = [Th > θ]                                              (K,) → (m, n)

The original computes ``Σ_b (TW x_b + Tb)`` as a ``(B, K)`` GEMM and a sum. The batch sum commutes
with the teacher's linear map, so the same number comes from one matrix-vector product (GEMV) that
reads TW once: 19.2 M floats at 400→120, the whole cost of the layer.

**2. The masked product** (:func:`masked_linear`). The layer has no activation; the gate is its
only nonlinearity::

    W_eff = o ⊙ SW                                             (m, n)
    y     = x W_effᵀ + Sb                                      (B, m)

**3. Its backward** (:func:`masked_linear_backward`). The gate is a step function of the
teacher, so in the original (``torch.gt``) no gradient reaches TW or Tb: the teacher stays
frozen at its random initialisation::

    dL/dSW = o ⊙ (gᵀ x)      (m, n)        dL/dSb = Σ_b g_b   (m,)
    dL/dx  = g W_eff         (B, n)        dL/dTW = dL/dTb = 0

**4. The per-sample gate** (extension; :func:`pan_sample_gate`). Each sample gets its own gate,
so a prediction no longer depends on the rest of the batch::

    o_b = [TW x_b + Tb > θ]                                    (B, K) → (B, m, n)
    y_b = (o_b ⊙ SW) x_b + Sb                                  (B, m)    pan_sample_forward
    dL/dSW = Σ_b o_b ⊙ (g_b ⊗ x_b),  dL/dx_b = (o_b ⊙ SW)ᵀ g_b           pan_sample_backward

The ``(B, K)`` teacher GEMM ``x TWᵀ`` is unavoidable here (:func:`pan_bias_threshold` adds Tb and
thresholds it); the masked products never form the ``(B, m, n)`` effective weights in a kernel.

**5. The straight-through teacher** (extension; :func:`ste_batch_teacher_grads`,
:func:`ste_sample_teacher_grads`). Train the teacher as if the step were the identity,
dL/dTh := dL/do, where dL/do = SW ⊙ dL/dW_eff::

    batch gate:   dL/do = SW ⊙ (gᵀ x)  (m, n) → dTh (K,)
                  dL/dTW = dTh ⊗ s (K, n),  dL/dTb = B·dTh,  every dL/dx_b gains TWᵀ dTh
    sample gate:  dL/do_b = SW ⊙ (g_b ⊗ x_b)  (B, m, n) → dTh (B, K)     pan_sample_gate_grad
                  dL/dTW = dThᵀ x (K, n),  dL/dTb = Σ_b dTh_b,  dL/dx_b gains TWᵀ dTh_b

Functions named ``pan_*`` have twins with the same signature in ``cpu.py`` (Numba) and ``cuda.py``
(``numba.cuda``); they write their result into their last argument and return it. Masks are
``numpy.bool_`` arrays.
"""
from __future__ import annotations

import numpy as np

__all__ = ["pan_batch_gate", "masked_linear", "masked_linear_backward", "pan_sample_gate", "pan_bias_threshold",
           "pan_sample_forward", "pan_sample_backward", "ste_batch_teacher_grads", "pan_sample_gate_grad",
           "ste_sample_teacher_grads", "pan_add_outer", "sample_chunks", "SAMPLE_CHUNK_ELEMENTS"]

#: the per-sample gate holds at most this many teacher pre-activations (rows of x TWᵀ) at once
SAMPLE_CHUNK_ELEMENTS = 1 << 22


# ----------------------------------------------------------------------------- 1. the batch gate
def pan_batch_gate(tw, s, tb, tb_scale, threshold, mask):
    """mask = [TW s + tb_scale·Tb > θ]: one GEMV over TW, then the threshold.

    tw ``(K, n)``, s = Σ_b x_b ``(n,)``, tb ``(K,)``, mask ``(K,)`` bool (written). ``tb_scale``
    is the batch size B of the original's batch sum. Pass ``s`` in TW's dtype (a float64 ``s``
    would make NumPy cast all of TW).
    """
    return np.greater(tw @ s + tb_scale * tb, threshold, out=mask)


# ----------------------------------------------------------------------------- 2-3. the masked product
def masked_linear(x, sw, sb, mask):
    """y = x (o ⊙ SW)ᵀ + Sb. Returns ``(y (B, m), W_eff (m, n))``; ``mask`` None means every gate is open."""
    w_eff = sw if mask is None else sw * mask
    return x @ w_eff.T + sb, w_eff


def masked_linear_backward(g, x, mask, w_eff):
    """Backward of :func:`masked_linear` given g = dL/dy ``(B, m)``.

    Returns ``(dL/dx (B, n), dL/dSW (m, n), dL/dW_eff = gᵀx (m, n))``; the last one is what the
    straight-through teacher needs (dL/do = SW ⊙ dL/dW_eff). dL/dSb = Σ_b g_b needs no function.
    """
    g_weff = g.T @ x
    g_sw = g_weff if mask is None else g_weff * mask
    return g @ w_eff, g_sw, g_weff


# ----------------------------------------------------------------------------- 4. the per-sample gate
def sample_chunks(batch: int, k: int):
    """Row slices of a batch such that each ``(rows, k)`` block of teacher pre-activations has at most
    :data:`SAMPLE_CHUNK_ELEMENTS` entries (one row at least)."""
    step = max(1, SAMPLE_CHUNK_ELEMENTS // max(1, k))
    return [slice(b0, b0 + step) for b0 in range(0, batch, step)]


def pan_sample_gate(tw, x, tb, threshold, mask):
    """mask[b] = [TW x_b + Tb > θ]: the ``(B, K)`` teacher GEMM in row chunks, then the threshold.

    tw ``(K, n)``, x ``(B, n)`` in TW's dtype, tb ``(K,)``, mask ``(B, K)`` bool (written).
    """
    for rows in sample_chunks(x.shape[0], tw.shape[0]):
        pan_bias_threshold(x[rows] @ tw.T, tb, threshold, mask[rows])
    return mask


def pan_bias_threshold(tz, tb, threshold, mask):
    """mask[b, k] = [tz[b, k] + Tb[k] > θ]; tz = x TWᵀ ``(B, K)``, mask ``(B, K)`` (written)."""
    return np.greater(tz + tb, threshold, out=mask)


def pan_sample_forward(mask, sw, x, sb, y):
    """y[b, j] = Sb[j] + Σ_i o[b, j, i]·SW[j, i]·x[b, i]; mask ``(B, m, n)``, y ``(B, m)`` (written)."""
    y[...] = np.einsum("bji,ji,bi->bj", mask.astype(sw.dtype), sw, x) + sb
    return y


def pan_sample_backward(mask, sw, x, g, gsw, gx):
    """Backward of :func:`pan_sample_forward` given g = dL/dy ``(B, m)`` (both outputs written)::

        gsw[j, i] = Σ_b g[b, j]·o[b, j, i]·x[b, i]     (m, n)
        gx[b, i]  = Σ_j g[b, j]·o[b, j, i]·SW[j, i]    (B, n)
    """
    mf = mask.astype(sw.dtype)
    gsw[...] = np.einsum("bj,bji,bi->ji", g, mf, x)
    gx[...] = np.einsum("bj,bji,ji->bi", g, mf, sw)
    return gsw, gx


# ----------------------------------------------------------------------------- 5. the straight-through teacher
def ste_batch_teacher_grads(g_weff, sw, s, batch_size, tw):
    """Straight-through teacher of the batch gate (extension).

    g_weff = gᵀx ``(m, n)``, sw ``(m, n)``, s = Σ_b x_b ``(n,)``, tw ``(K, n)``. Returns
    ``(dTh (K,), dL/dTb (K,), extra dL/dx_b (n,))``: dTh = dL/do = SW ⊙ gᵀx, dL/dTb = B·dTh,
    and TWᵀ dTh, which every sample's dL/dx gains. dL/dTW = dTh ⊗ s ``(K, n)`` is left to the
    caller, which accumulates it in place (:func:`pan_add_outer`).
    """
    d_th = (sw * g_weff).reshape(-1)
    return d_th, batch_size * d_th, d_th @ tw


def pan_sample_gate_grad(sw, x, g, out):
    """out[b, j, i] = g[b, j]·SW[j, i]·x[b, i] = dL/do_b (per-sample gates); out ``(B, m, n)`` (written)."""
    np.multiply(g[:, :, None] * sw[None, :, :], x[:, None, :], out=out)
    return out


def ste_sample_teacher_grads(d_th, x, tw):
    """Straight-through teacher of the per-sample gate (extension), given dTh = dL/do ``(B, K)``.

    Returns ``(dL/dTW = dThᵀ x (K, n), dL/dTb = Σ_b dTh_b (K,), extra dL/dx = dTh TW (B, n))``.
    """
    return d_th.T @ x, d_th.sum(axis=0), d_th @ tw


def pan_add_outer(G, u, v):
    """G += u ⊗ v in place (G ``(K, n)``, u ``(K,)``, v ``(n,)``): accumulates dL/dTW = dTh ⊗ s."""
    G += np.outer(u, v)
    return G
