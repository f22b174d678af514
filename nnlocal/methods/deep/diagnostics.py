r"""Stability diagnostics of the linearised free dynamics: Jacobians and Gershgorin discs.

The notebooks checked sufficient conditions for the stability of the free dynamics (Gershgorin
discs of the Jacobian on the free units). nnlocal reports them and never asserts them: trained
DEEP nets usually violate them and still converge, because the [0, 1] clip bounds the state. In
fact they cannot hold for DEEP: no edge enters an input, so every outgoing edge of a free unit ends
at a free unit and each column of J sums to zero (1ᵀJ = 0). 0 is always an eigenvalue, the column
discs always touch it, and trained nets often have eigenvalues with positive real part
(``spectral_abscissa`` > 0): without the clip the free dynamics would not settle.
"""
from __future__ import annotations

import numpy as np

__all__ = ["deep_jacobian", "asym_ep_jacobian", "gershgorin"]


def deep_jacobian(W: np.ndarray, n_x: int, leak_abs: bool = False) -> np.ndarray:
    r"""DEEP's J on the free units (column-vector convention, dx/dt = J x), (H, H) float64:
    ``J[j, i] = ∂(ds_j/dt)/∂s_i = W_ij`` (i ≠ j), ``J[j, j] = W_jj - Σ_k W_jk`` (or ``Σ_k |W_jk|``)."""
    W = np.asarray(W, dtype=np.float64)
    leak = np.abs(W).sum(axis=1) if leak_abs else W.sum(axis=1)
    J = W[n_x:, n_x:].T.copy()
    J[np.diag_indices_from(J)] -= leak[n_x:]
    return J


def asym_ep_jacobian(W: np.ndarray, n_x: int) -> np.ndarray:
    """Asymmetric EP's J on the free units: ``W_HHᵀ - I`` (H, H) float64."""
    J = np.asarray(W, dtype=np.float64)[n_x:, n_x:].T
    return J - np.eye(J.shape[0])


def gershgorin(J: np.ndarray) -> dict:
    r"""Gershgorin-disc diagnostics of a Jacobian ``J`` (column-vector convention, dx/dt = J x).

    Returns a dict with ``diag_negative`` (every J_jj < 0), ``rows_fail`` / ``cols_fail`` (how many
    rows / columns are not strictly diagonally dominant, Σ_{k≠j}|J_jk| ≥ |J_jj|), ``sufficient``
    (``diag_negative`` and all rows or all columns dominant: every eigenvalue then has Re < 0),
    ``spectral_abscissa`` (max Re λ, the actual linear stability), and the discs ``centers``,
    ``row_radii``, ``col_radii``.
    """
    J = np.asarray(J, dtype=np.float64)
    d = np.diag(J).copy()
    A = np.abs(J)
    row_r = A.sum(axis=1) - np.abs(d)
    col_r = A.sum(axis=0) - np.abs(d)
    rows_fail = int(np.sum(row_r >= np.abs(d)))
    cols_fail = int(np.sum(col_r >= np.abs(d)))
    diag_neg = bool(np.all(d < 0))
    eig = np.linalg.eigvals(J) if J.size else np.zeros(0)
    return {
        "diag_negative": diag_neg,
        "rows_fail": rows_fail,
        "cols_fail": cols_fail,
        "sufficient": diag_neg and (rows_fail == 0 or cols_fail == 0),
        "spectral_abscissa": float(np.max(eig.real)) if eig.size else float("nan"),
        "centers": d,
        "row_radii": row_r,
        "col_radii": col_r,
    }
