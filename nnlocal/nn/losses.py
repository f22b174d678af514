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

Bad input raises ``ValueError`` naming the loss: a non-float or non-finite prediction, a target of
the wrong shape or kind, a non-finite target of a regression loss, or an empty batch (whose mean is
undefined; torch returns NaN). Each call first forgets the previous gradient, so ``backward()``
after a failed call raises ``RuntimeError`` instead of returning a stale gradient.
"""
from __future__ import annotations

import numpy as np

from .._checks import check_finite_input, check_input, shape_error
from .activations import log_softmax, sigmoid

__all__ = ["CrossEntropyLoss", "NLLLoss", "MSELoss", "BCELoss", "BCEWithLogitsLoss"]


_BCE_EPS = float(np.float32(1e-12))


class _Loss:
    """``loss(pred, target)`` validates, computes ``(value, dL/dpred)`` with ``_compute`` and keeps
    the gradient for ``backward``. Subclasses define ``_targets(pred, target)`` (validate and
    convert the target) and ``_compute(pred, target) -> (float, ndarray)``."""

    def __init__(self):
        self._grad = None

    def __call__(self, pred, target) -> float:
        return self.forward(pred, target)

    def forward(self, pred, target) -> float:
        self._grad = None                     # a failed call must not leave the previous gradient
        name = type(self).__name__
        check_input(name, pred)
        target = self._targets(pred, target)
        if pred.size == 0:
            raise ValueError(f"{name}: expected a non-empty batch, got input of shape {pred.shape} "
                             "(the mean over zero elements is undefined)")
        value, grad = self._compute(pred, target)
        self._grad = grad
        return value

    def backward(self) -> np.ndarray:
        """dL/dpred of the last call (a fresh array each time: callers may modify it in place)."""
        if self._grad is None:
            raise RuntimeError(f"{type(self).__name__}.backward() called before the loss was computed "
                               "(or after a call that failed): call the loss first")
        return self._grad.copy()

    def __repr__(self):
        return f"{type(self).__name__}()"


class _ClassLoss(_Loss):
    """Predictions ``(B, C)`` and integer class targets ``(B,)`` in ``[0, C)``."""

    def _targets(self, pred, target) -> np.ndarray:
        name = type(self).__name__
        if pred.ndim != 2:
            raise shape_error(name, "(B, C)", pred.shape)
        target = np.asarray(target)
        if target.shape != (pred.shape[0],) or target.dtype.kind not in "iu":
            raise ValueError(f"{name}: expected integer class targets of shape ({pred.shape[0]},), "
                             f"got {target.dtype} of shape {target.shape}")
        if target.size and (target.min() < 0 or target.max() >= pred.shape[1]):
            raise ValueError(f"{name}: class targets must lie in [0, {pred.shape[1]}), "
                             f"got [{target.min()}, {target.max()}]")
        return target


class _RegressionLoss(_Loss):
    """A finite real target of the prediction's shape (converted to its dtype)."""

    def _targets(self, pred, target) -> np.ndarray:
        name = type(self).__name__
        target = np.asarray(target)
        if target.dtype.kind not in "biuf":
            raise ValueError(f"{name}: expected a real-valued target, got dtype {target.dtype}")
        if target.shape != pred.shape:
            raise ValueError(f"{name}: target shape {target.shape} does not match prediction shape {pred.shape}")
        target = target.astype(pred.dtype, copy=False)
        check_finite_input(name, target, "target")
        return target


class CrossEntropyLoss(_ClassLoss):
    """Softmax cross-entropy on logits ``(B, C)`` with class indices ``(B,)``."""

    def _compute(self, logits, target):
        logp = log_softmax(logits, axis=1)
        rows = np.arange(len(target))
        grad = np.exp(logp)
        grad[rows, target] -= 1
        return float(-logp[rows, target].mean()), grad / logits.dtype.type(len(target))


class NLLLoss(_ClassLoss):
    """Negative log-likelihood on log-probabilities ``(B, C)`` with class indices ``(B,)``."""

    def _compute(self, logp, target):
        rows = np.arange(len(target))
        grad = np.zeros_like(logp)
        grad[rows, target] = -1.0 / len(target)
        return float(-logp[rows, target].mean()), grad


class MSELoss(_RegressionLoss):
    def _compute(self, pred, target):
        diff = pred - target
        return float(np.mean(diff * diff)), 2 * diff / pred.dtype.type(diff.size)


class BCELoss(_RegressionLoss):
    """Binary cross-entropy on probabilities in [0, 1]."""

    def _compute(self, prob, target):
        if prob.min() < 0 or prob.max() > 1:
            raise ValueError(f"BCELoss: predictions must lie in [0, 1], got [{prob.min()}, {prob.max()}]")
        with np.errstate(divide="ignore"):
            log_p = np.maximum(np.log(prob), -100)
            log_1mp = np.maximum(np.log1p(-prob), -100)
        n = prob.dtype.type(prob.size)
        # torch's backward: (p - t) / max((1 - p) p, eps), eps = 1e-12 rounded to float32 as torch does
        grad = (prob - target) / np.maximum((1 - prob) * prob, prob.dtype.type(_BCE_EPS)) / n
        return float(-np.mean(target * log_p + (1 - target) * log_1mp)), grad


class BCEWithLogitsLoss(_RegressionLoss):
    """BCE on logits, computed as max(z,0) - z t + log(1 + e^{-|z|})."""

    def _compute(self, logits, target):
        loss = np.maximum(logits, 0) - logits * target + np.log1p(np.exp(-np.abs(logits)))
        return float(loss.mean()), (sigmoid(logits) - target) / logits.dtype.type(logits.size)
