r"""``numba.cuda`` twins of :mod:`nnlocal.methods.kwta.reference` (``device="cuda"``).

``kwta_threshold`` / ``kwta_boundary``: one block per row (B), threads over D (rank counting);
``kwta_winners``: then one thread per entry (conventions: :mod:`nnlocal.kernels.cuda_launch`).
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from ...kernels.cuda_launch import FLAT_THREADS, ROW_THREADS, blocks, pow2, to_device
from .reference import kwta_k

__all__ = ["kwta_k", "kwta_threshold", "kwta_boundary", "kwta_winners", "kwta_select_device"]


@cuda.jit
def _kwta_kernel(x, k, half, nan, theta, v_k, v_k1, i_k, i_k1):
    b = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    D = x.shape[1]
    has_nan = cuda.shared.array(1, dtype=np.int32)
    if tid == 0:
        i_k[b] = D
        i_k1[b] = D
        has_nan[0] = 0
    cuda.syncthreads()
    for j in range(tid, D, nt):
        v = x[b, j]
        if v != v:                   # NaN: the row has no boundary (as the CPU's partition + min)
            has_nan[0] = 1
        greater = 0
        at_least = 0
        for i in range(D):           # all threads read the same x[b, i]: a broadcast
            u = x[b, i]
            if u > v:
                greater += 1
                at_least += 1
            elif u == v:
                at_least += 1
        # in descending order v occupies ranks greater+1 … at_least (1-based), ties included
        if greater < k and k <= at_least:
            cuda.atomic.min(i_k, b, j)
        if greater < k + 1 and k + 1 <= at_least:
            cuda.atomic.min(i_k1, b, j)
    cuda.syncthreads()
    if tid == 0:
        if has_nan[0] == 0 and i_k[b] < D and i_k1[b] < D:
            a = x[b, i_k[b]]
            c = x[b, i_k1[b]]
            v_k[b] = a
            v_k1[b] = c
            theta[b] = (a + c) * half
        else:  # a row holding NaN: no boundary value, no winner, index D (the CPU's convention)
            v_k[b] = nan
            v_k1[b] = nan
            theta[b] = nan
            i_k[b] = D
            i_k1[b] = D


@cuda.jit
def _winners_kernel(x, v_k1, out):
    p = cuda.grid(1)
    B, D = x.shape
    if p < B * D:
        b = p // D
        j = p - b * D
        out[b, j] = x[b, j] > v_k1[b]


def kwta_select_device(x, k):
    """Device variant of the kWTA selection: device arrays ``(theta, v_k, v_k1, i_k, i_k1)``, each (B,).

    ``v_k``, ``v_k1`` the k-th and (k+1)-th largest value of each row, ``i_k``, ``i_k1`` (int64) the first
    column holding each, ``theta = ½ (v_k + v_k1)``.
    """
    d_x = to_device(x)
    B, D = d_x.shape
    if not 1 <= k < D:
        raise ValueError(f"kwta_threshold: need 1 <= k < D, got k={k}, D={D}")
    dtype = np.dtype(d_x.dtype)
    theta, v_k, v_k1 = (cuda.device_array(B, dtype=dtype) for _ in range(3))
    i_k = cuda.device_array(B, dtype=np.int64)
    i_k1 = cuda.device_array(B, dtype=np.int64)
    if B:
        _kwta_kernel[B, pow2(D, ROW_THREADS)](d_x, int(k), dtype.type(0.5), dtype.type(np.nan), theta, v_k, v_k1,
                                                i_k, i_k1)
    return theta, v_k, v_k1, i_k, i_k1


def kwta_threshold(x, k: int, return_boundary: bool = False):
    r"""GPU twin of :func:`kwta_threshold`: ``θ_b = ½ (x_(k) + x_(k+1))`` per row.

    ``x`` (B, D); returns θ (B,) in x's dtype, and with ``return_boundary`` the column indices
    ``(i_k, i_k1)`` (B,) int64 of the k-th and (k+1)-th largest value (the first matching column
    under ties, like the CPU). Exact selection by rank counting: one block per row, each thread
    counts for its elements j how many entries are greater (g) and at least as large (ge); the
    k-th largest is the value with g < k ≤ ge, ties handled exactly, and ``atomic.min`` keeps the
    first column holding it. O(D²) comparisons per row (D = 512: 2.6·10⁵, negligible on a GPU; a
    radix select would pay off from D ≈ 10⁴). A row holding NaN gets θ = NaN, both boundary values NaN
    and the index D, as on the CPU.
    """
    theta, _, _, i_k, i_k1 = kwta_select_device(x, k)
    if not return_boundary:
        return theta.copy_to_host()
    return theta.copy_to_host(), i_k.copy_to_host(), i_k1.copy_to_host()


def kwta_boundary(x, k: int):
    """GPU twin of :func:`kwta_boundary`: the k-th and (k+1)-th largest value of each
    row of ``x`` (B, D), two (B,) arrays (the selection of :func:`kwta_threshold`)."""
    _, v_k, v_k1, _, _ = kwta_select_device(x, k)
    return v_k.copy_to_host(), v_k1.copy_to_host()


def kwta_winners(x, k: int):
    """GPU twin of :func:`kwta_winners`: bool (B, D) ``x > x_(k+1)`` per row (exactly k
    winners unless the row ties at the boundary). Selection as :func:`kwta_threshold`, then one thread
    per entry."""
    d_x = to_device(x)
    B, D = d_x.shape
    _, _, v_k1, _, _ = kwta_select_device(d_x, k)
    out = cuda.device_array((B, D), dtype=np.bool_)
    threads = pow2(B * D, FLAT_THREADS)
    _winners_kernel[blocks(B * D, threads), threads](d_x, v_k1, out)
    return out.copy_to_host()
