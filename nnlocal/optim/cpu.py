r"""Numba twins of :mod:`nnlocal.optim.reference` (selected by ``nnlocal.kernels.use("numba")``).

Each update rule is one fused pass over the parameter and its state, in place: no temporaries
(the NumPy expressions of the reference make one pass and one temporary array per operation; torch
``foreach=False`` likewise runs one kernel per operation). The elements are spread over the Numba
threads (``prange``). Same operations in the same order as the reference, with every scalar
coefficient computed in Python and cast to the parameter's dtype, so the results are the
reference's to the last bit (no fast-math, no contraction into FMAs), NaN and inf included
(``error_model="numpy"``: a division by zero gives inf/NaN as in NumPy, never an exception).

Arrays that are not contiguous in the same order as the parameter (a gradient stored transposed)
go to the reference.
"""
from __future__ import annotations

import math

from numba import njit, prange

from . import reference

__all__ = ["sgd_update", "adam_update", "rmsprop_update"]


@njit(cache=True, parallel=True, error_model="numpy")
def _sgd(p, g, buf, lr, mu, damp1, wd, nesterov, first):  # pragma: no cover - jitted
    for i in prange(p.size):
        gi = g[i] + wd * p[i] if wd != 0 else g[i]
        if mu != 0:
            b = gi if first else buf[i] * mu + damp1 * gi
            buf[i] = b
            gi = gi + mu * b if nesterov else b
        p[i] = p[i] - lr * gi


@njit(cache=True, parallel=True, error_model="numpy")
def _adam(p, g, m, v, vmax, amsgrad, lr_bc1, b1, c1, b2, c2, sqrt_bc2, eps, wd):  # pragma: no cover
    for i in prange(p.size):
        gi = g[i] + wd * p[i] if wd != 0 else g[i]
        mi = m[i] * b1 + c1 * gi
        vi = v[i] * b2 + c2 * gi * gi
        m[i] = mi
        v[i] = vi
        if amsgrad:
            vm = vmax[i]
            if vi == vi and not vm <= vi:      # max with NaN propagation, as np.maximum
                vi = vm
            vmax[i] = vi
        p[i] = p[i] - lr_bc1 * (mi / (math.sqrt(vi) / sqrt_bc2 + eps))


@njit(cache=True, parallel=True, error_model="numpy")
def _rmsprop(p, g, v, buf, gavg, centered, lr, a, c, eps, wd, mu):  # pragma: no cover - jitted
    for i in prange(p.size):
        gi = g[i] + wd * p[i] if wd != 0 else g[i]
        vi = v[i] * a + c * gi * gi
        v[i] = vi
        if centered:
            ga = gavg[i] * a + c * gi
            gavg[i] = ga
            avg = math.sqrt(vi - ga * ga) + eps
        else:
            avg = math.sqrt(vi) + eps
        if mu > 0:
            b = buf[i] * mu + gi / avg
            buf[i] = b
            p[i] = p[i] - lr * b
        else:
            p[i] = p[i] - lr * (gi / avg)


def _flat(p, *arrays):
    """1-d views of ``p`` and ``arrays`` (None -> an empty array) in memory order, or None when they do
    not share p's memory layout (then the reference serves)."""
    order = "C" if p.flags.c_contiguous else "F" if p.flags.f_contiguous else None
    if order is None:
        return None
    out = [p.reshape(-1, order=order)]
    for a in arrays:
        if a is None:
            out.append(p[:0].reshape(-1))
        elif a.dtype != p.dtype or a.shape != p.shape or not a.flags[order + "_CONTIGUOUS"]:
            return None
        else:
            out.append(a.reshape(-1, order=order))
    return out


def sgd_update(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, first):
    """:func:`reference.sgd_update` in one fused pass."""
    flat = _flat(p, g, buf if momentum else None)
    if flat is None:
        return reference.sgd_update(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, first)
    t = p.dtype.type
    _sgd(*flat, t(lr), t(momentum), t(1 - dampening), t(weight_decay), bool(nesterov), bool(first))


def adam_update(p, g, m, v, v_max, lr, beta1, beta2, eps, weight_decay, step):
    """:func:`reference.adam_update` in one fused pass."""
    flat = _flat(p, g, m, v, v_max)
    if flat is None:
        return reference.adam_update(p, g, m, v, v_max, lr, beta1, beta2, eps, weight_decay, step)
    t = p.dtype.type
    pf, gf, mf, vf, vmf = flat
    _adam(pf, gf, mf, vf, vmf, v_max is not None, t(lr / (1 - beta1 ** step)), t(beta1), t(1 - beta1), t(beta2),
          t(1 - beta2), t(math.sqrt(1 - beta2 ** step)), t(eps), t(weight_decay))


def rmsprop_update(p, g, v, buf, g_avg, lr, alpha, eps, weight_decay, momentum):
    """:func:`reference.rmsprop_update` in one fused pass."""
    flat = _flat(p, g, v, buf, g_avg)
    if flat is None:
        return reference.rmsprop_update(p, g, v, buf, g_avg, lr, alpha, eps, weight_decay, momentum)
    t = p.dtype.type
    pf, gf, vf, bf, gaf = flat
    _rmsprop(pf, gf, vf, bf, gaf, g_avg is not None, t(lr), t(alpha), t(1 - alpha), t(eps), t(weight_decay),
             t(momentum) if buf is not None else t(0))
