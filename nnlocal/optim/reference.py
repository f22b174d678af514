r"""The optimizers' update rules in plain NumPy, one parameter at a time (the readable twins of
:mod:`nnlocal.optim.cpu`). Read this for the maths; :mod:`nnlocal.optim` holds the bookkeeping.

Every function updates ``p`` and its state arrays **in place**; ``g`` is the gradient (not
modified). With g' = g + λ·p (weight decay λ):

* :func:`sgd_update`:     b ← μ b + (1-τ) g'  (b ← g' at the first step);
                          d = g' + μ b (Nesterov) or b (μ > 0) or g' (μ = 0);   p ← p - lr·d
* :func:`adam_update`:    m ← β1 m + (1-β1) g';   v ← β2 v + (1-β2) g'²   (v_max ← max(v_max, v), AMSGrad)
                          p ← p - lr/(1-β1ᵗ) · m / (√v/√(1-β2ᵗ) + ε)
* :func:`rmsprop_update`: v ← α v + (1-α) g'²;  ḡ ← α ḡ + (1-α) g' (centered);
                          a = √(v - ḡ²) + ε (centered) or √v + ε;
                          b ← μ b + g'/a, p ← p - lr·b (μ > 0), else p ← p - lr·g'/a

These are torch's formulas (``torch.optim`` with ``foreach=False``); the tests run 20 steps of both
on the same gradients. Unused state arrays are ``None``. This module writes each rule as NumPy
expressions (each one a pass over the parameter and a temporary); the Numba twins fuse all of
a rule into one pass with no temporaries.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["sgd_update", "adam_update", "rmsprop_update"]


def _decayed(p, g, weight_decay):
    return g + weight_decay * p if weight_decay else g


def sgd_update(p, g, buf, lr, momentum, dampening, weight_decay, nesterov, first):
    """SGD with optional momentum buffer ``buf`` (same shape as p; ignored when ``momentum`` is 0).
    ``first``: the first step with this buffer (it is set to g')."""
    g = _decayed(p, g, weight_decay)
    if momentum:
        if first:
            buf[...] = g
        else:
            buf *= momentum
            buf += (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf
    p -= lr * g


def adam_update(p, g, m, v, v_max, lr, beta1, beta2, eps, weight_decay, step):
    """Adam (``v_max`` not None: AMSGrad) at step ``step`` (1, 2, ...)."""
    g = _decayed(p, g, weight_decay)
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    if v_max is not None:
        np.maximum(v_max, v, out=v_max)
        v = v_max
    denom = np.sqrt(v) / math.sqrt(1 - beta2 ** step) + eps
    p -= (lr / (1 - beta1 ** step)) * (m / denom)


def rmsprop_update(p, g, v, buf, g_avg, lr, alpha, eps, weight_decay, momentum):
    """RMSprop; ``buf`` (momentum > 0) and ``g_avg`` (centered) are None when unused."""
    g = _decayed(p, g, weight_decay)
    v *= alpha
    v += (1 - alpha) * g * g
    if g_avg is not None:
        g_avg *= alpha
        g_avg += (1 - alpha) * g
        avg = np.sqrt(v - g_avg * g_avg) + eps
    else:
        avg = np.sqrt(v) + eps
    if buf is not None:
        buf *= momentum
        buf += g / avg
        p -= lr * buf
    else:
        p -= lr * (g / avg)
