"""Input validation shared by every layer.

Errors name the layer, what it expected and what it got, e.g.::

    ValueError: Linear(in_features=784, out_features=10): expected input of shape (B, 784), got (32, 783)
"""
from __future__ import annotations

import numpy as np

__all__ = ["check_float_array", "check_finite_input", "check_ndim", "check_dim", "check_finite", "check_grad_output",
           "shape_error",
           "DivergenceError"]


class DivergenceError(FloatingPointError):
    """Raised when a dynamical system (relaxation, training) produced NaN or inf."""


def _label(layer) -> str:
    """Layers pass themselves (not ``repr(self)``) so the repr is only built when an error is raised."""
    return layer if isinstance(layer, str) else repr(layer)


def _shape_str(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def shape_error(layer, expected: str, got_shape, name: str = "input") -> ValueError:
    """The ``ValueError`` every layer raises for a wrongly shaped input (``raise shape_error(...)``)."""
    return ValueError(f"{_label(layer)}: expected {name} of shape {expected}, got {_shape_str(tuple(got_shape))}")


def check_float_array(layer, x, name: str = "input") -> np.ndarray:
    """``x`` must be a floating-point ndarray (float32 or float64)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{_label(layer)}: expected {name} to be a numpy.ndarray, got {type(x).__name__}")
    if x.dtype not in (np.float32, np.float64):
        raise ValueError(f"{_label(layer)}: expected {name} of a float dtype (float32 or float64), got {x.dtype}")
    return x


def check_finite_input(layer, x: np.ndarray, name: str = "input") -> None:
    """The library's non-finite policy: NaN or ±inf in an input is a ``ValueError`` naming the layer.

    One reduction, no boolean temporary: a sum of finite values is finite unless it overflows,
    and only then (or when the input really holds NaN/inf) is the exact elementwise test run.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(x.sum()):
            return
    finite = np.isfinite(x)
    if not finite.all():
        bad = int(finite.size - np.count_nonzero(finite))
        raise ValueError(f"{_label(layer)}: expected a finite {name}, got {bad} NaN or infinite value(s) "
                         f"(non-finite input is an error in nnlocal; see the README, 'Errors')")


def check_ndim(layer, x: np.ndarray, ndims, expected: str, name: str = "input") -> None:
    """``x.ndim`` must be one of ``ndims``; ``expected`` describes the layout, e.g. ``'(B, C, H, W)'``."""
    if isinstance(ndims, int):
        ndims = (ndims,)
    if x.ndim not in ndims:
        raise shape_error(layer, expected, x.shape, name)


def check_dim(layer, x: np.ndarray, axis: int, size: int, expected: str, name: str = "input") -> None:
    """``x.shape[axis]`` must equal ``size``."""
    if x.shape[axis] != size:
        raise shape_error(layer, expected, x.shape, name)


def check_grad_output(layer, grad_output, shape, dtype=None) -> None:
    """``backward``'s ``grad_output`` must have the shape of the forward output (no silent broadcast
    or reshape of a transposed gradient) and, when ``dtype`` is given, that dtype (the forward
    output's: an integer or other-precision gradient is an error, not a silent cast)."""
    if not isinstance(grad_output, np.ndarray):
        raise TypeError(f"{_label(layer)}.backward: expected grad_output to be a numpy.ndarray, got {type(grad_output).__name__}")
    if grad_output.shape != tuple(shape):
        raise shape_error(f"{_label(layer)}.backward", _shape_str(tuple(shape)), grad_output.shape, "grad_output")
    if dtype is not None and grad_output.dtype != dtype:
        raise ValueError(f"{_label(layer)}.backward: expected grad_output of dtype {np.dtype(dtype)} (the forward "
                         f"output's), got {grad_output.dtype}")


def check_finite(what: str, x: np.ndarray) -> None:
    """Raise :class:`DivergenceError` if ``x`` holds NaN or inf."""
    if not np.all(np.isfinite(x)):
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        raise DivergenceError(f"{what}: {bad} non-finite value(s) (NaN or inf); the dynamics diverged")
