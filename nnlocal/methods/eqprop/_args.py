"""Argument checks of :class:`~nnlocal.methods.eqprop.EPNet`: each raises a ValueError naming the
method (``who``) and saying what was expected."""
from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["check_count", "check_real", "check_step_size", "learning_rates", "check_labels"]


def check_count(who: str, name: str, value, minimum: int = 0) -> int:
    """An integer >= ``minimum`` (a bool or a float such as 3.7 is refused, not truncated)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{who}: {name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{who}: {name} must be >= {minimum}, got {value}")
    return int(value)


def check_real(who: str, name: str, value, nonzero: bool = False) -> float:
    """A finite real number; ``nonzero``: also ≠ 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{who}: {name} must be a finite real number, got {value!r}")
    if nonzero and value == 0:
        raise ValueError(f"{who}: {name} must be non-zero (the EP update divides by beta), got {value!r}")
    return float(value)


def check_step_size(who: str, eps) -> float:
    """The relaxation's step size ε: a finite number > 0."""
    eps = check_real(who, "eps", eps)
    if eps <= 0:
        raise ValueError(f"{who}: eps (the step size) must be > 0, got {eps!r}")
    return eps


def learning_rates(who: str, lrs, L: int) -> list:
    """One finite learning rate per weight matrix (a single number applies to all L)."""
    lrs = [lrs] * L if isinstance(lrs, numbers.Real) else list(lrs)
    if len(lrs) != L:
        raise ValueError(f"{who}: need {L} learning rates (one per weight matrix), got {len(lrs)}")
    return [check_real(who, "each learning rate", a) for a in lrs]


def check_labels(who: str, y, n_classes: int, n: int | None = None, name: str = "labels") -> np.ndarray:
    """Integer class labels of shape (n,) in [0, n_classes), as ``nnlocal.nn.CrossEntropyLoss`` takes
    them (no silent wrap-around of -1, truncation of 1.7 or IndexError)."""
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(f"{who}: expected integer class {name} of shape (B,), got {y.dtype} of shape {y.shape}")
    if n is not None and y.shape[0] != n:
        raise ValueError(f"{who}: {n} examples but {y.shape[0]} {name}")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"{who}: class {name} must lie in [0, {n_classes}), got values in [{y.min()}, {y.max()}]")
    return y.astype(np.int64, copy=False)
