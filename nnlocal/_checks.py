"""Input validation shared by every layer.

Errors name the layer, what it expected and what it got, e.g.::

    ValueError: Linear(in_features=784, out_features=10): expected input of shape (B, 784), got (32, 783)
"""
from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["check_float_array", "check_finite_input", "check_input", "check_ndim", "check_dim", "check_finite",
           "check_grad_output", "check_bool", "check_int", "check_real", "check_param_dtype", "shape_error",
           "DivergenceError"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


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

    One reduction, no boolean temporary: for a contiguous float array the BLAS dot product
    ``Σ x²`` (about 3x faster than ``x.sum()``; a NaN or inf makes it NaN or inf, and its terms never
    cancel); otherwise ``x.sum()``. Only when that is not finite (the input really holds NaN/inf,
    or the reduction overflowed) is the exact elementwise test run.
    """
    if x.dtype.kind not in "fc":  # integers and booleans are always finite
        return
    with np.errstate(over="ignore", invalid="ignore"):
        if x.dtype in _FLOATS and (x.flags.c_contiguous or x.flags.f_contiguous):
            flat = x.ravel(order="K")           # a view
            total = np.dot(flat, flat)
        else:
            total = x.sum()
        if np.isfinite(total):
            return
    finite = np.isfinite(x)
    if not finite.all():
        bad = int(finite.size - np.count_nonzero(finite))
        raise ValueError(f"{_label(layer)}: expected a finite {name}, got {bad} NaN or infinite value(s) "
                         f"(non-finite input is an error in nnlocal; see the README, 'Errors')")


def check_input(layer, x, name: str = "input") -> np.ndarray:
    """The check every ``nnlocal.nn`` forward runs on its input: a float32/float64 ndarray
    (:func:`check_float_array`) holding no NaN or ±inf (:func:`check_finite_input`). Returns ``x``."""
    check_float_array(layer, x, name)
    check_finite_input(layer, x, name)
    return x


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


def check_grad_output(layer, grad_output, shape, dtype=None, name: str = "grad_output") -> None:
    """``backward``'s ``grad_output`` must be a float ndarray of the forward output's shape (no silent
    broadcast or reshape of a transposed gradient) and, when ``dtype`` is given, of the output's
    dtype (as torch: no silent cast of an integer or lower-precision gradient into the weights)."""
    def where():      # the layer's repr is built only for an error (it costs more than a small backward)
        return f"{_label(layer)}.backward"

    if not isinstance(grad_output, np.ndarray):
        raise TypeError(f"{where()}: expected {name} to be a numpy.ndarray, got {type(grad_output).__name__}")
    if grad_output.dtype not in _FLOATS or (dtype is not None and grad_output.dtype != dtype):
        want = f"{np.dtype(dtype)} (the dtype of the forward output)" if dtype is not None else "float32 or float64"
        raise ValueError(f"{where()}: expected {name} of dtype {want}, got {grad_output.dtype}")
    if grad_output.shape != tuple(shape):
        raise shape_error(where(), _shape_str(tuple(shape)), grad_output.shape, name)


def check_bool(who: str, name: str, value) -> bool:
    """A constructor flag that must be ``True`` or ``False`` (not 0/1, not a string); ``ValueError`` naming ``who``."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{who}: {name} must be True or False, got {value!r}")
    return bool(value)


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(who: str, name: str, value, minimum: int | None = None) -> int:
    """A constructor argument that must be an integer (not a bool, not a float: ``3.7`` is never
    truncated) ``>= minimum``; returns it as an ``int``. ``ValueError`` naming ``who`` otherwise."""
    if not _is_int(value) or (minimum is not None and value < minimum):
        at_least = f" >= {minimum}" if minimum is not None else ""
        raise ValueError(f"{who}: {name} must be an integer{at_least}, got {value!r}")
    return int(value)


def check_real(who: str, name: str, value, low: float | None = None, high: float | None = None, *,
               low_open: bool = False, high_open: bool = False) -> float:
    """A finite real-number argument (never NaN or inf, never a bool or a string) between ``low`` and
    ``high`` (each closed unless ``low_open``/``high_open``; ``None``: unbounded); returns it as a
    ``float``. ``ValueError`` naming ``who`` otherwise."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and math.isfinite(value)
    if ok:
        v = float(value)
        ok = ((low is None or v > low or (v == low and not low_open))
              and (high is None or v < high or (v == high and not high_open)))
    if not ok:
        lo = "(-inf" if low is None else ("(" if low_open else "[") + f"{low:g}"
        hi = "inf)" if high is None else f"{high:g}" + (")" if high_open else "]")
        raise ValueError(f"{who}: invalid {name} {value!r} ({name} must be a finite number in {lo}, {hi})")
    return v


def check_param_dtype(who: str, dtype) -> np.dtype:
    """A layer's parameter dtype: float32 or float64 (what every layer's input may be)."""
    try:
        d = np.dtype(dtype)
    except TypeError:
        d = None
    if d not in _FLOATS:
        raise ValueError(f"{who}: dtype must be float32 or float64, got {dtype!r}")
    return d


def check_finite(what: str, x: np.ndarray) -> None:
    """Raise :class:`DivergenceError` if ``x`` holds NaN or inf."""
    if not np.all(np.isfinite(x)):
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        raise DivergenceError(f"{what}: {bad} non-finite value(s) (NaN or inf); the dynamics diverged")
