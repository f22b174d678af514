r"""Losses with mean reduction (like torch): ``loss = fn(pred, target)`` returns a Python float and
``fn.backward()`` returns dL/d(pred).

Shapes: logits/log-probabilities ``(B, C)`` with integer class targets ``(B,)``; ``MSELoss``,
``BCELoss`` and ``BCEWithLogitsLoss`` take ``pred`` and ``target`` of the same shape (N elements).

================================  ==========================================  ============================
loss                              value                                       dL/dpred
================================  ==========================================  ============================
``CrossEntropyLoss``              -mean_b log softmax(z)_b,y_b                (softmax(z) - onehot(y)) / B
``NLLLoss``                       -mean_b p_b,y_b                             -onehot(y) / B
``MSELoss``                       mean (p - t)²                               2 (p - t) / N
``BCELoss``                       -mean [t log p + (1-t) log(1-p)]            (p - t) / (p (1-p)) / N
``BCEWithLogitsLoss``             BCE(σ(z), t), computed stably               (σ(z) - t) / N
================================  ==========================================  ============================

``BCELoss`` clamps each log at -100, as torch does, so p = 0 or 1 gives a finite loss.
"""
from __future__ import annotations

import numpy as np

from .._checks import check_float_array, shape_error
from .activations import log_softmax, sigmoid

__all__ = ["CrossEntropyLoss", "NLLLoss", "MSELoss", "BCELoss", "BCEWithLogitsLoss"]


_BCE_EPS = float(np.float32(1e-12))


class _Loss:
    def __init__(self):
        self._grad = None

    def __call__(self, pred, target) -> float:
        return self.forward(pred, target)

    def backward(self) -> np.ndarray:
        """dL/dpred of the last call (a fresh array each time: callers may modify it in place)."""
        if self._grad is None:
            raise RuntimeError(f"{type(self).__name__}.backward() called before the loss was computed")
        return self._grad.copy()

    def __repr__(self):
        return f"{type(self).__name__}()"


def _class_targets(name: str, pred: np.ndarray, target) -> np.ndarray:
    check_float_array(name, pred)
    if pred.ndim != 2:
        raise shape_error(name, "(B, C)", pred.shape)
    target = np.asarray(target)
    if target.shape != (pred.shape[0],) or target.dtype.kind not in "iu":
        raise ValueError(f"{name}: expected integer class targets of shape ({pred.shape[0]},), "
                         f"got {target.dtype} of shape {target.shape}")
    if target.size and (target.min() < 0 or target.max() >= pred.shape[1]):
        raise ValueError(f"{name}: class targets must lie in [0, {pred.shape[1]}), got [{target.min()}, {target.max()}]")
    return target


def _same_shape(name: str, pred, target) -> np.ndarray:
    check_float_array(name, pred)
    target = np.asarray(target, dtype=pred.dtype)
    if target.shape != pred.shape:
        raise ValueError(f"{name}: target shape {target.shape} does not match prediction shape {pred.shape}")
    return target


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy on logits ``(B, C)`` with class indices ``(B,)``."""

    def forward(self, logits, target) -> float:
        target = _class_targets("CrossEntropyLoss", logits, target)
        logp = log_softmax(logits, axis=1)
        rows = np.arange(len(target))
        grad = np.exp(logp)
        grad[rows, target] -= 1
        self._grad = grad / logits.dtype.type(len(target))
        return float(-logp[rows, target].mean())


class NLLLoss(_Loss):
    """Negative log-likelihood on log-probabilities ``(B, C)`` with class indices ``(B,)``."""

    def forward(self, logp, target) -> float:
        target = _class_targets("NLLLoss", logp, target)
        rows = np.arange(len(target))
        grad = np.zeros_like(logp)
        grad[rows, target] = -1.0 / len(target)
        self._grad = grad
        return float(-logp[rows, target].mean())


class MSELoss(_Loss):
    def forward(self, pred, target) -> float:
        target = _same_shape("MSELoss", pred, target)
        diff = pred - target
        self._grad = 2 * diff / pred.dtype.type(diff.size)
        return float(np.mean(diff * diff))


class BCELoss(_Loss):
    """Binary cross-entropy on probabilities in [0, 1]."""

    def forward(self, prob, target) -> float:
        target = _same_shape("BCELoss", prob, target)
        if prob.size and (prob.min() < 0 or prob.max() > 1):
            raise ValueError(f"BCELoss: predictions must lie in [0, 1], got [{prob.min()}, {prob.max()}]")
        with np.errstate(divide="ignore"):
            log_p = np.maximum(np.log(prob), -100)
            log_1mp = np.maximum(np.log1p(-prob), -100)
        n = prob.dtype.type(prob.size)
        # torch's backward: (p - t) / max((1 - p) p, eps), eps = 1e-12 rounded to float32 as torch does
        self._grad = (prob - target) / np.maximum((1 - prob) * prob, prob.dtype.type(_BCE_EPS)) / n
        return float(-np.mean(target * log_p + (1 - target) * log_1mp))


class BCEWithLogitsLoss(_Loss):
    """BCE on logits, computed as max(z,0) - z t + log(1 + e^{-|z|})."""

    def forward(self, logits, target) -> float:
        target = _same_shape("BCEWithLogitsLoss", logits, target)
        loss = np.maximum(logits, 0) - logits * target + np.log1p(np.exp(-np.abs(logits)))
        self._grad = (sigmoid(logits) - target) / logits.dtype.type(logits.size)
        return float(loss.mean())
