r"""BU-TD in plain NumPy: GaLU, the two passes of a layer, Counter-Hebb, the task-head STE. Read this file first.

Shapes for a Linear BU-TD layer with n inputs and m outputs: weight W ``(m, n)``, bias b ``(m,)``,
a batch of B bottom-up (BU) inputs a ``(B, n)`` and top-down (TD) inputs t ``(B, m)`` (the TD
activity at the layer's *output* side). The layer caches both: ``bu_neurons = a``, ``td_neurons = t``.

**GaLU** (gated linear unit, :func:`galu`): GaLU(x, c) = x ⊙ [c > 0], a boolean gate, so no
gradient ever reaches c. Every gating of BU-TD is this one function (the only one with Numba and
CUDA twins, ``cpu.py`` and ``cuda.py``).

**BU pass** (``forward``), then :func:`activation` with the cached TD activity as gate:

.. math::  z = a W^\top + b \;(B, m),\qquad h = \mathrm{ReLU}(z)\ (\texttt{non\_linear}) \odot [t > 0]\ (\texttt{lateral})

**TD pass** (``back_forward``, :func:`linear_td`) through the same connections, then
:func:`activation` with the cached BU input as gate:

.. math::  \bar a = t\,W \;(+\,\bar b)\;(B, n),\qquad \bar a \leftarrow \mathrm{ReLU}(\bar a)\ (\texttt{non\_linear}) \odot [a > 0]\ (\texttt{lateral})

(per sample ā = Wᵀ t; with separate top-down weights W̄ ``(n, m)`` it is t W̄ᵀ; b̄ only with
``back_bias``). A convolution's TD pass is the transposed convolution with the same weight.

**Counter-Hebb** (:func:`counter_hebb`). After an *error* TD pass, started at the prediction head
with δ = ∂L/∂(logits) ``(B, C)``, ``non_linear=False, lateral=True`` and no biases, every synapse
changes by the product of its two neurons' activity, the BU one below and the TD one above:

.. math::  \Delta W = \textstyle\sum_b t_b \otimes a_b = t^\top a \;(m, n),\qquad \Delta b = \textstyle\sum_b t_b,
           \qquad \Delta\bar W = \Delta W^\top

**CH = backprop with shared weights** (W̄ = Wᵀ, ReLU nets without normalisation). If t = ∂L/∂z of
this layer, its TD output gated by the BU input, (t W) ⊙ [a > 0], is ∂L/∂z of the layer below,
because a = ReLU(z_below) and [a > 0] = ReLU'(z_below); by induction from t = δ at the head every
``td_neurons`` is ∂L/∂z exactly, and ΔW = tᵀ a = ∂L/∂W, Δb = ∂L/∂b. (A convolution's ΔW is the
exact conv weight gradient with t as ∂L/∂z.) The tests check this against torch autograd.

**Task-head STE** (extension, :func:`ste_pre_relu_grad`, :func:`ste_gate_grad`). In a guided net
the gates come from a task TD pass with ReLU: a unit's gate is [u > 0] with u its pre-ReLU TD value
and td = ReLU(u). The original passes no gradient to u. The identity straight-through estimator
sets d[u > 0]/du = 1, so a unit whose gated output h = r ⊙ [u > 0] receives ∂L/∂h gets

.. math::  \frac{\partial L}{\partial u} = [u > 0] \odot \underbrace{\frac{\partial L}{\partial\,td}}_{\text{TD chain}}
           + \frac{\partial L}{\partial h} \odot r

and the chain continues up through the adjoints of the TD maps (t ↦ t W has adjoint g ↦ g Wᵀ and
weight gradient tᵀ g, :func:`linear_td_weight_grad`) into the task head's weights.

Non-finite input: the layers reject it (``ValueError``). Called directly, :func:`galu` and its
twins propagate NaN where the gate is open (``relu=True`` included, like ``np.maximum``) and give 0
where it is closed.
"""
from __future__ import annotations

import numpy as np

__all__ = ["galu", "activation", "linear_td", "counter_hebb", "ste_pre_relu_grad", "ste_gate_grad",
           "linear_td_weight_grad"]


def galu(x: np.ndarray, gate: np.ndarray, relu: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """``x ⊙ [gate > 0]`` (``max(x, 0) ⊙ [gate > 0]`` with ``relu=True``), same shape and dtype as ``x``.

    ``x`` and ``gate`` have the same shape (any rank); ``out`` may be ``x`` itself (in-place gating).
    """
    if x.shape != gate.shape:
        raise ValueError(f"galu: gate of shape {gate.shape} does not match input of shape {x.shape}")
    zero = x.dtype.type(0)
    value = np.maximum(x, zero) if relu else x
    if out is None:
        return np.where(gate > 0, value, zero)
    np.copyto(out, np.where(gate > 0, value, zero))
    return out


def activation(v: np.ndarray, gate: np.ndarray | None, relu: bool, galu=galu) -> np.ndarray:
    """Both passes' activation: ReLU (``relu``), then GaLU by ``gate`` (``None``: no gating).

    BU pass: ``v = z``, ``gate`` = the cached TD activity; TD pass: ``v = ā``, ``gate`` = the cached
    BU input. Its backward (the gates are constants) is g ⊙ [output > 0] with ReLU, g ⊙ [gate > 0]
    without. ``galu`` is the gating function: this file's, or the Numba / CUDA twin the layer chose.
    """
    if gate is not None:
        return galu(v, gate, relu)
    return np.maximum(v, v.dtype.type(0)) if relu else v


def linear_td(t: np.ndarray, w: np.ndarray) -> np.ndarray:
    """TD map of a Linear layer: ``t W`` ``(B, m) @ (m, n) -> (B, n)`` (per sample Wᵀ t).

    ``w`` is the TD weight in W's layout: W itself (shared weights) or W̄ᵀ (separate weights).
    """
    return t @ w


def counter_hebb(td: np.ndarray, bu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counter-Hebb update of a Linear layer: ``(ΔW = tdᵀ bu (m, n), Δb = Σ_b td (m,))``.

    ``td`` ``(B, m)`` is the cached TD activity at the output side, ``bu`` ``(B, n)`` the cached BU
    input. After the error TD pass with shared weights these are ∂L/∂W and ∂L/∂b exactly.
    """
    return td.T @ bu, td.sum(axis=0)


def ste_pre_relu_grad(chain, td: np.ndarray, gate_grad, galu=galu):
    """∂L/∂u of a unit's pre-ReLU TD value u (td = ReLU(u), shape of ``td``) under the identity STE.

    ``chain`` is ∂L/∂td from the TD chain below (through the ReLU: ⊙ [u > 0] = [td > 0]), ``gate_grad``
    the unit's own gate gradient (:func:`ste_gate_grad`). ``None`` stands for zero (and is returned
    when both are).
    """
    g = None if chain is None else galu(chain, td)
    if gate_grad is not None:
        g = gate_grad if g is None else g + gate_grad
    return g


def ste_gate_grad(dh: np.ndarray, r: np.ndarray) -> np.ndarray:
    """∂L/∂gate of a gated output h = r ⊙ gate: ∂L/∂h ⊙ r (r: the output before the gate)."""
    return dh * r


def linear_td_weight_grad(s: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Gradient of the TD weight (W's layout, ``(m, n)``) of the TD map ``ā = s w`` given g = ∂L/∂ā:
    ``sᵀ g``, with ``s`` ``(B, m)`` the TD input and ``g`` ``(B, n)``."""
    return s.T @ g
