r"""Numba twin of :mod:`nnlocal.methods.butd.reference`: GaLU gating in one pass.

GaLU (gated linear unit) passes a value where its *gate* is strictly positive and blocks it
elsewhere; with ``relu=True`` the value is rectified first (the BU pass's ReLU followed by GaLU):

.. math::  \mathrm{galu}(x, c) = x \odot [c > 0], \qquad
           \mathrm{relu\_galu}(x, c) = \max(x, 0) \odot [c > 0]

The gate is a boolean mask, so no gradient ever reaches ``c``. Every gating in BU-TD is this one
function:

* BU pass, lateral: a layer's output is gated by the top-down activity at its output side;
* TD pass, lateral: the TD output is gated by the layer's cached BU input ([a > 0] = ReLU'(z));
* backprop through ReLU and GaLU: dL/dz = dL/dh ⊙ [h > 0] with h the layer's (gated) output.

``x`` and ``c`` have the same shape (any rank). :func:`galu` is a Numba loop over the flattened
arrays that reads each input once and writes the output once (no boolean temporary);
:func:`nnlocal.methods.butd.reference.galu` is the plain-NumPy twin the tests compare it with.
"""
from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["galu"]


@njit(cache=True)
def _galu_flat(x, c, out):  # pragma: no cover - jitted
    zero = x.dtype.type(0)
    for i in range(x.size):
        out[i] = x[i] if c[i] > 0 else zero
    return out


@njit(cache=True)
def _relu_galu_flat(x, c, out):  # pragma: no cover - jitted
    zero = x.dtype.type(0)
    for i in range(x.size):
        v = x[i]
        # max(v, 0) as np.maximum: NaN stays NaN (a test ``v > 0`` would map it to 0)
        out[i] = (zero if v < zero else v) if c[i] > 0 else zero
    return out


def galu(x: np.ndarray, gate: np.ndarray, relu: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """``x ⊙ [gate > 0]`` (``max(x, 0) ⊙ [gate > 0]`` with ``relu=True``), same shape and dtype as ``x``.

    ``out`` may be ``x`` itself (in-place gating). ``gate`` may have any real dtype.
    """
    if x.shape != gate.shape:
        raise ValueError(f"galu: gate of shape {gate.shape} does not match input of shape {x.shape}")
    xf = np.ascontiguousarray(x).reshape(-1)
    cf = np.ascontiguousarray(gate).reshape(-1)
    if out is None:
        out = np.empty(x.shape, dtype=x.dtype)
    elif out.shape != x.shape or out.dtype != x.dtype or not out.flags.c_contiguous:
        raise ValueError("galu: out must be a C-contiguous array of the input's shape and dtype")
    (_relu_galu_flat if relu else _galu_flat)(xf, cf, out.reshape(-1))
    return out
