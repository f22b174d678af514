"""Weight initialisers with torch's formulas.

Each takes a shape, ``rng`` and ``dtype`` and returns a new array (no in-place tensor ops here).
Fan-in/fan-out follow ``torch.nn.init._calculate_fan_in_and_fan_out``: for a weight of shape
``(d0, d1, *kernel)``, ``fan_in = d1 * prod(kernel)`` and ``fan_out = d0 * prod(kernel)``.
"""
from __future__ import annotations

import math

import numpy as np

from .._rng import get_rng

__all__ = ["fans", "kaiming_uniform", "xavier_uniform", "normal", "uniform", "default_weight_and_bias"]


def fans(shape) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of ``shape`` (torch's convention)."""
    if len(shape) < 2:
        raise ValueError(f"fan in/out needs a weight with at least 2 dimensions, got shape {tuple(shape)}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return int(shape[1]) * receptive, int(shape[0]) * receptive


def uniform(shape, bound: float, rng=None, dtype=np.float32) -> np.ndarray:
    """U(-bound, bound)."""
    return get_rng(rng).uniform(-bound, bound, size=shape).astype(dtype)


def kaiming_uniform(shape, a: float = 0.0, rng=None, dtype=np.float32, fan_in: int | None = None) -> np.ndarray:
    """He-uniform for a leaky-ReLU slope ``a``: U(±gain·√(3/fan_in)), gain = √(2/(1+a²))."""
    fan_in = fans(shape)[0] if fan_in is None else fan_in
    gain = math.sqrt(2.0 / (1.0 + a * a))
    bound = gain * math.sqrt(3.0 / fan_in) if fan_in > 0 else 0.0  # a zero-element weight: nothing to draw
    return uniform(shape, bound, rng, dtype)


def xavier_uniform(shape, gain: float = 1.0, rng=None, dtype=np.float32) -> np.ndarray:
    """Glorot-uniform: U(±gain·√(6/(fan_in+fan_out))) (Keras' default kernel initialiser)."""
    fan_in, fan_out = fans(shape)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out)) if fan_in + fan_out > 0 else 0.0
    return uniform(shape, bound, rng, dtype)


def normal(shape, mean: float = 0.0, std: float = 1.0, rng=None, dtype=np.float32) -> np.ndarray:
    """N(mean, std²)."""
    return get_rng(rng).normal(mean, std, size=shape).astype(dtype)


def default_weight_and_bias(weight_shape, bias_size: int | None, rng=None, dtype=np.float32,
                            fan_in: int | None = None):
    """torch's default for Linear/Conv: Kaiming-uniform with a=√5 (= U(±1/√fan_in)), bias U(±1/√fan_in).

    The weight is drawn before the bias, from the same generator.
    """
    rng = get_rng(rng)
    fan_in = fans(weight_shape)[0] if fan_in is None else fan_in
    w = kaiming_uniform(weight_shape, a=math.sqrt(5.0), rng=rng, dtype=dtype, fan_in=fan_in)
    if bias_size is None:
        return w, None
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return w, uniform((bias_size,), bound, rng, dtype)
