r"""GaLU gating of the BU-TD networks, in plain NumPy. Read this file first.

GaLU (gated linear unit) passes a value where its *gate* is strictly positive and blocks it
elsewhere; with ``relu=True`` the value is rectified first (the BU pass's ReLU followed by GaLU):

.. math::  \mathrm{galu}(x, c) = x \odot [c > 0], \qquad
           \mathrm{relu\_galu}(x, c) = \max(x, 0) \odot [c > 0]

The gate is a boolean mask, so no gradient ever reaches ``c``. Every gating in BU-TD is this one
function:

* BU pass, lateral: a layer's output is gated by the top-down activity at its output side;
* TD pass, lateral: the TD output is gated by the layer's cached BU input ([a > 0] = ReLU'(z));
* backprop through ReLU and GaLU: dL/dz = dL/dh ⊙ [h > 0] with h the layer's (gated) output.

``cpu.py`` (Numba) and ``cuda.py`` hold twins with the same signature.
"""
from __future__ import annotations

import numpy as np

__all__ = ["galu"]


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
