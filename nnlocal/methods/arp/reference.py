r"""Auto-Rotating Perceptrons (Saromo, Villota & Villanueva 2019): the ARP rule in plain NumPy. Read this first.

An ARP layer is an ordinary affine layer A (Dense, a convolution, the gate pre-activations of a
recurrent cell, ...) followed by a per-unit rescaling of its pre-activation before the
nonlinearity φ. With x of shape (B, *in) and A's output of shape (B, *out)::

    u  = A(x)                      the layer's own pre-activation                       (B, *out)
    q  = A(xQ · 1)                 the same map on a constant "Q-point" input of one
                                   sample's shape (same padding/stride; no batch axis)  (*out)
    ρ  = L / (|q| + eps)           per unit (per position too for convolutions)          (*out)
    z  = ρ ⊙ u,   y = φ(z)

``xQ = 2·xmax_lim − xmin_lim`` (:func:`auto_q_point`), where [xmin_lim, xmax_lim] is the range of
anything a unit can receive (:func:`limits_for`). Because ρ > 0 the sign of u and the decision
boundary {u = 0} are unchanged (the affine function is "rotated" about its zero set); in 1-D,
|u(x)| ≤ |q| on the input range, so |z| ≤ L: the unit works inside φ's dynamic region [−L, L].
In n-D the diagonal Q-point gives no such guarantee: where xQ·Σᵢ Wᵢⱼ ≈ −bⱼ, qⱼ → 0, ρⱼ → L/eps
and the unit saturates.

Backward, with g = dL/dz = φ'(z) ⊙ dL/dy (B, *out) and sums over the batch::

    dL/du = g ⊙ ρ                                -> through A's own backward: dL/dx, dL/dW, dL/db
    dL/dρ = Σ_b g ⊙ u                            (*out)
    dρ/dq = −L·sign(q) / (|q| + eps)²            (sign(0) = 0, as TensorFlow's |·|)
    c     = dL/dρ ⊙ dρ/dq                        -> through A's backward on the constant input:
                                                   the xQ-terms of dL/dW, and c for dL/db
    dL/dL = Σ dL/dρ ⊙ dρ/dL,  dρ/dL = 1/(|q| + eps)     (a trainable L, an extension)

For Dense, A(xQ·1) has a closed form: q = xQ·Σᵢ W[:, i] + b, and A's backward on the constant
input adds xQ·c to every entry of row j of W and c to b (:func:`dense_q`, :func:`dense_q_backward`).
A recurrent gate pre-activation a = W x_t + U h_{t-1} + b_ih + b_hh is affine in (x_t, h_{t-1});
both are fed the Q-point (:func:`recurrent_q`).
"""
from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

__all__ = ["ARPLimits", "limits_for", "auto_q_point", "rho_from_q", "through_rho", "dense_q", "dense_q_backward",
           "recurrent_q"]

ARPLimits = namedtuple("ARPLimits", ["xmin_lim", "xmax_lim", "L"])


def limits_for(activation: str, data_min: float = 0.0, data_max: float = 1.0,
               negative_slope: float = 0.3) -> ARPLimits:
    """``(xmin_lim, xmax_lim, L)`` for a layer whose inputs are data in ``[data_min, data_max]`` or the
    outputs of ``activation`` units (the table of the arpkeras example notebook and README).

    ===========  ===========================================  ========================  ====
    activation   xmin_lim                                     xmax_lim                  L
    ===========  ===========================================  ========================  ====
    sigmoid      min(data_min, 0)                             max(data_max, 1)          4
    tanh         min(data_min, −1)                            max(data_max, 1)          2
    atan         min(data_min, −π)                            max(data_max, π)          7
    relu         min(data_min, 0)                             data_max                  None
    leaky_relu   min(data_min, α·data_min if < 0 else same)   max(data_max, α·data_max  None
                                                              if < 0 else same)
    ===========  ===========================================  ========================  ====

    Quirks kept from the original: the atan range is taken as ±π although arctan's outputs lie in
    (−π/2, π/2) (conservative), and relu uses the data maximum although ReLU outputs are unbounded.
    The README suggests no L for relu/leaky_relu (``L`` is ``None``: choose one yourself).
    """
    key = str(activation).lower()
    lo, hi = float(data_min), float(data_max)
    if key == "sigmoid":
        return ARPLimits(min(lo, 0.0), max(hi, 1.0), 4.0)
    if key == "tanh":
        return ARPLimits(min(lo, -1.0), max(hi, 1.0), 2.0)
    if key in ("atan", "arctan"):
        return ARPLimits(min(lo, -math.pi), max(hi, math.pi), 7.0)
    if key == "relu":
        return ARPLimits(min(lo, 0.0), hi, None)
    if key in ("leaky_relu", "leakyrelu"):
        a = float(negative_slope)
        return ARPLimits(min(lo, a * lo if lo < 0 else lo), max(hi, a * hi if hi < 0 else hi), None)
    raise ValueError(f"limits_for: unknown activation {activation!r}; expected one of "
                     "sigmoid, tanh, atan, relu, leaky_relu")


def auto_q_point(xmin_lim, xmax_lim):
    """The Q-point ``xQ = 2·xmax_lim − xmin_lim`` ("auto"): a number, or per input feature for array
    limits (then A(xQ·1) becomes A(xQ) with the vector xQ)."""
    return 2 * np.asarray(xmax_lim, dtype=np.float64) - np.asarray(xmin_lim, dtype=np.float64)


def rho_from_q(q: np.ndarray, L, eps: float, eps_outside: bool = False):
    """ρ and the two derivatives the backward pass needs, all of q's shape.

    Returns ``(rho, drho_dq, drho_dL)``: with a = |q|,
    ``rho = L/(a + eps)``, ``drho_dq = −L·sign(q)/(a + eps)²``, ``drho_dL = 1/(a + eps)``; with
    ``eps_outside=True`` (arpkeras' Conv1D): ``rho = L/a + eps``, ``drho_dq = −L·sign(q)/a²``,
    ``drho_dL = 1/a``. ``L`` is a number or broadcasts against q (one L per gate row).
    """
    a = np.abs(q)
    if eps > 0 and not eps_outside:         # the usual case: everything finite
        inv = 1.0 / (a + q.dtype.type(eps))
        return L * inv, -(L * np.sign(q)) * (inv * inv), inv
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / a if eps_outside else 1.0 / (a + q.dtype.type(eps))
        rho = L * inv + q.dtype.type(eps) if eps_outside else L * inv
        drho_dq = -(L * np.sign(q)) * (inv * inv)
    if not np.all(q):                       # sign(0) = 0 (TF's |.| gradient), also where 1/|q| = inf
        drho_dq = np.where(q == 0, q.dtype.type(0), drho_dq)
    return rho, drho_dq, inv


def through_rho(grad_rho, drho_dq, drho_dL):
    """dL/dρ ``(*out)`` -> ``(c, dL/dL per unit)``: ``c = dL/dρ ⊙ dρ/dq`` (the output gradient of A's
    backward on the constant input) and ``dL/dρ ⊙ dρ/dL`` (summed by the layer for a trainable L)."""
    return grad_rho * drho_dq, grad_rho * drho_dL


def dense_q(weight, bias, xQ):
    """q ``(out,)`` of a Dense layer in closed form: ``xQ·Σᵢ W[:, i] + b`` for a number xQ, ``W xQ + b`` for
    a vector ``xQ`` ``(in,)``. ``weight`` ``(out, in)``, ``bias`` ``(out,)`` or None."""
    q = weight @ xQ if np.ndim(xQ) else weight.sum(axis=1) * weight.dtype.type(xQ)
    return q if bias is None else q + bias


def dense_q_backward(c, xQ, in_features: int):
    """A Dense layer's backward on the constant input: ``(dL/dW, dL/db)`` = ``(c ⊗ xQ·1, c)``, shapes
    ``(out, in)`` and ``(out,)``, from ``c`` ``(out,)``."""
    return np.outer(c, np.broadcast_to(np.asarray(xQ, dtype=c.dtype), (in_features,))), c


def recurrent_q(w_ih, w_hh, b_ih, b_hh, xQ):
    """q ``(G,)`` per gate row of a recurrent cell, both inputs at the Q-point:
    ``xQ·(Σ W_ih[j] + Σ W_hh[j]) + b_ih + b_hh`` (``w_ih`` (G, I), ``w_hh`` (G, H), biases (G,) or None).
    A GRU candidate is taken at r = 1 (r ∈ [0, 1] only shrinks its recurrent part). Its backward adds
    xQ·c to every entry of row j of W_ih and W_hh and c to both biases."""
    q = (w_ih.sum(axis=1) + w_hh.sum(axis=1)) * w_ih.dtype.type(xQ)
    return q if b_ih is None else q + b_ih + b_hh
