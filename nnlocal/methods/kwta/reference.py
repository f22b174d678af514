r"""k-winners-take-all, in plain NumPy: the equations of every kWTA layer and of the triplet loss. Read this file first.

Shapes: a batch of B samples with D units each, ``x (B, D)`` (a conv map ``(B, C, H, W)`` is
flattened per sample by the layers, D = C·H·W); ``k`` winners per sample.

**Winners and threshold.** With ``k = ⌈s·D⌉`` for sparsity s (:func:`kwta_k`), the threshold of
sample b is the midpoint between its k-th and (k+1)-th largest values,

.. math::  \theta_b = \tfrac12\,\bigl(x_{b,(k)} + x_{b,(k+1)}\bigr)            \qquad (B,)

and the winners are the entries above it: exactly k of them when the row has no tie at the
boundary (:func:`kwta_threshold`, :func:`kwta_winners`). The hard layer outputs ``y = [x > θ]``
and passes the gradient straight through (dL/dx = dL/dy; θ gets nothing).

**Soft kWTA** (training mode of the soft layer, :func:`soft_kwta`): with hardness h (the inverse
temperature),

.. math::  z = h\,(x - \theta),\qquad y = \sigma(z)\ \text{ or }\ \mathrm{hardsigmoid}(z) = \mathrm{clip}(z/6 + \tfrac12, 0, 1)

and its backward (:func:`soft_kwta_backward`) includes the path through θ, which depends on the two
boundary entries ``i_k``, ``i_k1`` of each row with weight ½ each: with e = g ⊙ dy/dz,

.. math::  \frac{\partial L}{\partial x_{bi}} = h\,e_{bi} - \tfrac12\,h \sum_j e_{bj}\;[i \in \{i_k(b), i_{k+1}(b)\}]

**Synaptic scaling** (:func:`synaptic_scale`, :func:`cumulative_rate`): x̃ = x ⊙ e^{b (s* − f)} with
f the per-unit firing rate averaged over *every* training sample seen so far.

**Triplet cosine loss** on index triples (a, p, n) of length T (:func:`triplet_cosine_loss`,
:func:`triplet_cosine_grad`): L = mean_t relu(cos(o_a, o_n) − cos(o_a, o_p) + margin), with the
hand-derived gradient ∂cos(u, v)/∂u = v/(‖u‖‖v‖) − cos(u, v)·u/‖u‖².

Selection: :func:`kwta_boundary` finds the two boundary values by *partial selection*, one
``np.partition`` per batch (the (k+1)-th largest lands at index ``D−k−1`` with the k largest
after it). Measured on one thread (Xeon, AVX-512, NumPy 2.4, float32, B = 256), a Numba kernel
does not pay: a per-row ``np.partition`` in Numba is 7× slower at D = 256 and 512 and 18× at
2048, and a one-pass top-(k+1) insertion buffer 2-3× slower at D ≤ 512 and 11-50× slower for
larger k. So :mod:`nnlocal.methods.kwta.cpu` re-exports these functions; only the selection has a
``numba.cuda`` twin (:mod:`nnlocal.methods.kwta.cuda`), and the rest of this file runs on the host
for every device. :func:`kwta_threshold_sorted` is the full-sort form (the original's older code)
the tests compare the selection with.

Non-finite input: the layers reject it (``ValueError``). Called directly, a row holding NaN has no
boundary: both boundary values and θ are NaN, it has no winner (``x > NaN`` is false) and both
boundary indices are D (outside the row). The CUDA twin returns the same. ±inf are ordered like
any other value.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.sparse

from ...nn.activations import sigmoid

__all__ = ["kwta_k", "kwta_boundary", "kwta_threshold", "kwta_winners", "kwta_threshold_sorted",
           "soft_kwta", "soft_kwta_backward", "synaptic_scale", "cumulative_rate",
           "triplet_cosine_loss", "triplet_cosine_grad"]


# ------------------------------------------------------------------------------------ selection
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
    A row holding NaN gives NaN for both (``np.partition`` sorts NaN last, so the k largest include it).
    """
    d = x.shape[1]
    if not 1 <= k < d:
        raise ValueError(f"kwta_boundary: need 1 <= k < D, got k={k}, D={d}")
    part = np.partition(x, d - k - 1, axis=1)
    v_k = part[:, d - k:].min(axis=1)          # smallest of the k largest (NaN if the row holds NaN)
    v_k1 = part[:, d - k - 1].copy()           # the (k+1)-th largest
    v_k1[np.isnan(v_k)] = np.nan
    return v_k, v_k1


def kwta_threshold(x: np.ndarray, k: int, return_boundary: bool = False):
    """Per-sample kWTA threshold of ``x`` ``(B, D)``: ``θ = ½ (x_(k) + x_(k+1))`` of shape ``(B,)``, x's dtype.

    With ``return_boundary=True`` also returns the column indices ``(i_k, i_k1)`` ``(B,)`` of the
    k-th and (k+1)-th largest value of each row (the two entries θ depends on; their gradient
    is ½ each). Under ties the first matching column is returned; a row holding NaN gets D for both.
    """
    v_k, v_k1 = kwta_boundary(x, k)
    theta = (v_k + v_k1) * x.dtype.type(0.5)
    if not return_boundary:
        return theta
    i_k = np.argmax(x == v_k[:, None], axis=1)
    i_k1 = np.argmax(x == v_k1[:, None], axis=1)
    no_boundary = np.isnan(v_k)
    i_k[no_boundary] = i_k1[no_boundary] = x.shape[1]
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


# ------------------------------------------------------------------------------------ soft kWTA
def _hardsigmoid(z):
    return np.clip(z / 6 + z.dtype.type(0.5), 0, 1)


def soft_kwta(x: np.ndarray, theta: np.ndarray, hardness: float, hard: bool):
    """Soft kWTA of ``x`` ``(B, D)`` around ``theta`` ``(B,)``: returns ``(z, y)``, both ``(B, D)``.

    z = h (x − θ); y = hardsigmoid(z) = clip(z/6 + ½, 0, 1) if ``hard``, else σ(z).
    """
    z = x.dtype.type(hardness) * (x - theta[:, None])
    return z, (_hardsigmoid(z) if hard else sigmoid(z))


def soft_kwta_backward(g: np.ndarray, z: np.ndarray, y: np.ndarray, i_k: np.ndarray, i_k1: np.ndarray,
                       hardness: float, hard: bool) -> np.ndarray:
    r"""dL/dx ``(B, D)`` of :func:`soft_kwta` given g = dL/dy ``(B, D)``, including the path through θ.

    e = g ⊙ dy/dz, with dy/dz = y (1 − y) (sigmoid) or [−3 < z < 3]/6 (hardsigmoid);
    dL/dx = h e, minus ½ h Σ_j e_j at the two boundary columns ``i_k``, ``i_k1`` ``(B,)`` of each row
    (θ = ½ (x[i_k] + x[i_k1]) and dz/dθ = −h).
    """
    dtype = z.dtype.type
    dy_dz = ((z > -3) & (z < 3)).astype(z.dtype) / dtype(6) if hard else y * (1 - y)
    e = g * dy_dz
    h = dtype(hardness)
    gx = h * e
    rows = np.arange(z.shape[0])
    through_theta = (h * dtype(0.5)) * e.sum(axis=1)
    gx[rows, i_k] -= through_theta
    gx[rows, i_k1] -= through_theta
    return gx


# ------------------------------------------------------------------------------ synaptic scaling
def synaptic_scale(firing_rate: np.ndarray, boost_factor: float, target_sparsity: float) -> np.ndarray:
    """The per-unit factor e^{b (s* − f)} (shape of ``firing_rate`` f); the layer multiplies x by it."""
    return np.exp(boost_factor * (target_sparsity - firing_rate))


def cumulative_rate(rate: np.ndarray | None, n_seen: int, y: np.ndarray) -> tuple[np.ndarray, int]:
    """Running mean of the outputs ``y`` ``(B, ...)`` over every sample seen so far (not an EMA).

    ``rate`` is the mean over the ``n_seen`` earlier samples (``None`` before the first batch);
    returns ``(new rate (float64, y.shape[1:]), n_seen + B)``.
    """
    batch_sum = y.sum(axis=0, dtype=np.float64)
    n_new = n_seen + y.shape[0]
    if rate is None:
        return batch_sum / y.shape[0], n_new
    return (rate * n_seen + batch_sum) / n_new, n_new


# ---------------------------------------------------------------------------------- triplet loss
def triplet_cosine_loss(o: np.ndarray, a: np.ndarray, p: np.ndarray, n: np.ndarray, margin: float,
                        eps: float = 1e-8):
    r"""L = (1/T) Σ_t relu(cos(o_a, o_n) − cos(o_a, o_p) + margin) for embeddings ``o`` ``(B, D)``.

    ``a``, ``p``, ``n`` ``(T,)`` are anchor, positive and negative row indices. cos(u, v) =
    u·v / (max(‖u‖, ε) max(‖v‖, ε)) as in torch. Returns ``(L, u, norm, active)``: the unit rows
    û = o / max(‖o‖, ε) ``(B, D)``, the clamped norms ``(B,)`` and the active triples ``(T,)`` bool
    (z_t > 0), which :func:`triplet_cosine_grad` needs.
    """
    norm = np.maximum(np.linalg.norm(o, axis=1), o.dtype.type(eps))
    u = o / norm[:, None]
    cos_ap = np.einsum("td,td->t", u[a], u[p])
    cos_an = np.einsum("td,td->t", u[a], u[n])
    z = cos_an - cos_ap + o.dtype.type(margin)
    return float(np.maximum(z, 0).mean()), u, norm, z > 0


def triplet_cosine_grad(u: np.ndarray, norm: np.ndarray, a: np.ndarray, p: np.ndarray, n: np.ndarray,
                        active: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    r"""dL/do ``(B, D)`` of :func:`triplet_cosine_loss` from its returned ``u``, ``norm``, ``active``.

    With w_t = [z_t > 0]/T, the gradient with respect to the unit rows is

        G_a += w_t (û_n − û_p),   G_n += w_t û_a,   G_p −= w_t û_a      (G = dL/dû, (B, D))

    i.e. G = (M + Mᵀ) û for the sparse B×B matrix M[a, n] += w, M[a, p] −= w (one CSR product,
    30× faster than a scatter-add). Through û = o/‖o‖ (∂cos/∂u = v/(‖u‖‖v‖) − cos·u/‖u‖²):
    dL/do_i = (G_i − û_i (û_i·G_i)) / ‖o_i‖, and G_i / ε where the norm was clamped to ε (torch then
    treats the clamped norm as a constant).
    """
    w = active.astype(u.dtype) / u.dtype.type(active.size)
    rows, cols = np.concatenate([a, n, a, p]), np.concatenate([n, a, p, a])
    vals = np.concatenate([w, w, -w, -w])
    m_sym = scipy.sparse.csr_matrix((vals, (rows, cols)), shape=(u.shape[0], u.shape[0]))
    g_u = np.asarray(m_sym @ u, dtype=u.dtype)
    radial = np.einsum("bd,bd->b", u, g_u)
    g = (g_u - u * radial[:, None]) / norm[:, None]
    clamped = norm <= eps
    if clamped.any():
        g[clamped] = g_u[clamped] / norm[clamped, None]
    return g
