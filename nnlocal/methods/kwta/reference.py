r"""k-winners-take-all: the threshold, in plain NumPy. Read this file first.

This is the one place where the kWTA threshold is computed.

For a batch of flattened samples ``x`` of shape ``(B, D)`` and ``k`` winners per sample, the
threshold of sample b is the midpoint between its k-th and (k+1)-th largest values:

.. math::  \theta_b = \tfrac12\,\bigl(x_{b,(k)} + x_{b,(k+1)}\bigr)

so that ``x > θ`` keeps exactly k entries when the row has no tie at the boundary.

:func:`kwta_boundary` finds the two boundary values by *partial selection*: one
``np.partition`` per batch puts the (k+1)-th largest value at index ``D-k-1`` with the k largest
after it, and the k-th largest is the minimum of those k. Measured on one core (NumPy 2.4,
AVX2), this single-pivot partition beats both a two-pivot ``np.partition`` (3-4x) and a full
``np.sort`` (about 2x) at D = 512 … 2048; a Numba per-row selection was slower still
(measured 5x slower), so no Numba kernel replaces it: :mod:`nnlocal.methods.kwta.cpu` re-exports
these functions.
:func:`kwta_threshold_sorted` is the full-sort version (the original's older code) that the
tests compare it with.

The binary output uses :func:`kwta_winners` (``x`` above the (k+1)-th value), which equals
``x > θ`` except where θ, the midpoint of two adjacent floats, rounds onto the k-th value.

``cuda.py`` provides the same functions with the same signatures on the GPU.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

__all__ = ["kwta_k", "kwta_boundary", "kwta_threshold", "kwta_winners", "kwta_threshold_sorted"]


def kwta_k(sparsity: float, n: int) -> int:
    """Number of winners ``k = ceil(sparsity * n)`` for ``n`` units per sample.

    Computed exactly like the original (``math.ceil(sparsity * n)`` in floating point, so e.g.
    ``0.07 * 100 = 7.000000000000001`` gives k = 8). ``k = n`` would leave no (k+1)-th value to
    place the threshold against, so it becomes ``n - 1`` with a warning, as in the original.
    """
    if not 0.0 < sparsity < 1.0:
        raise ValueError(f"kWTA: sparsity must lie in the open interval (0, 1), got {sparsity!r}")
    if n < 2:
        raise ValueError(f"kWTA: need at least 2 units per sample to pick winners, got {n}")
    k = math.ceil(sparsity * n)
    if k >= n:
        warnings.warn(f"kWTA: sparsity {sparsity} of {n} units gives k = {k} = all units; using k = {n - 1}",
                      RuntimeWarning, stacklevel=3)
        k = n - 1
    return k


def kwta_boundary(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k-th and (k+1)-th largest value of each row of ``x`` ``(B, D)``: two ``(B,)`` arrays.

    The one partial selection every other function here builds on (the part a CUDA path replaces).
    """
    d = x.shape[1]
    if not 1 <= k < d:
        raise ValueError(f"kwta_boundary: need 1 <= k < D, got k={k}, D={d}")
    part = np.partition(x, d - k - 1, axis=1)
    return part[:, d - k:].min(axis=1), part[:, d - k - 1]   # smallest of the k largest, (k+1)-th largest


def kwta_threshold(x: np.ndarray, k: int, return_boundary: bool = False):
    """Per-sample kWTA threshold of ``x`` ``(B, D)``: ``θ`` of shape ``(B,)`` in ``x``'s dtype.

    With ``return_boundary=True`` also returns the column indices ``(i_k, i_k1)`` ``(B,)`` of the
    k-th and (k+1)-th largest value of each row (the two entries θ depends on; their gradient
    is ½ each). Under ties the first matching column is returned.
    """
    v_k, v_k1 = kwta_boundary(x, k)
    theta = (v_k + v_k1) * x.dtype.type(0.5)
    if not return_boundary:
        return theta
    i_k = np.argmax(x == v_k[:, None], axis=1)
    i_k1 = np.argmax(x == v_k1[:, None], axis=1)
    return theta, i_k, i_k1


def kwta_winners(x: np.ndarray, k: int) -> np.ndarray:
    """Boolean winners of each row of ``x`` ``(B, D)``: ``x > θ``, evaluated as ``x > x_(k+1)``.

    The two are the same set whenever θ lies strictly between the k-th and (k+1)-th value, and
    both drop every entry tied at the boundary. They differ only where those two values are
    adjacent floats and their midpoint θ rounds onto the k-th value: the original's ``x > θ``
    then loses a winner, this keeps exactly k.
    """
    return x > kwta_boundary(x, k)[1][:, None]


def kwta_threshold_sorted(x: np.ndarray, k: int) -> np.ndarray:
    """Plain full-sort reference of :func:`kwta_threshold` (descending sort, mean of entries k-1, k)."""
    s = -np.sort(-x, axis=1)
    return (s[:, k - 1] + s[:, k]) * x.dtype.type(0.5)
