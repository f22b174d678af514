"""Property-based bad-input test: every public layer, loss and model class of the registry
(``tests/bad_input_cases.py``) is driven with generated bad input, and must answer with one of:

* a ``ValueError`` or ``TypeError`` whose message names the class;
* for input that is bad only in form (another shape, an empty batch; lists and integers where the
  class documents converting them), a result with no NaN or inf in it;

and never another exception type (warnings are errors here: a ``ComplexWarning`` that drops an
imaginary part, or a ``RuntimeWarning`` from a mean over nothing, is a failure), never an output for
non-finite input (the library's policy: non-finite input is a ``ValueError``). Layers with a
``backward`` are also given bad gradients (another dtype, shape or type), which must raise.

The kinds of bad input: ``shape`` (an axis added or removed, one size changed, a 0-d array),
``dtype`` (int, uint8, bool, float16, complex), ``nonfinite`` (NaN, +inf, -inf at 1-3 places),
``empty`` (B = 0), ``list`` (a Python list), ``grad`` (bad gradients for ``backward``).
Hypothesis is deterministic here (``derandomize``, no database, no shrinking: the whole file runs
in a bounded time).
"""
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.bad_input_cases import CASES

KINDS = ("shape", "dtype", "nonfinite", "empty", "list", "grad")

BAD_INPUT = settings(max_examples=5, derandomize=True, database=None, deadline=None,
                     phases=(Phase.explicit, Phase.generate), suppress_health_check=[HealthCheck.too_slow])


def _params():
    for case in CASES:
        for kind in KINDS:
            if kind == "grad" and case.grad is None:
                continue
            yield pytest.param(case, kind, id=f"{case.id}-{kind}")


# ------------------------------------------------------------------------------ bad input
# Each function returns every variant of its kind, as (description, bad input); hypothesis draws
# the example's values and the random parts (an axis, the positions of NaN/inf).
def _bad_shapes(data, x):
    axis = data.draw(st.integers(0, x.ndim - 1), label="axis")
    other = (np.delete(x, 0, axis=axis) if x.shape[axis] > 1
             else np.concatenate([x, np.take(x, [0], axis=axis)], axis=axis))
    return [("an axis added in front", x[None]), ("an axis added at the end", x[..., None]),
            ("the first axis dropped", x[0]), ("flattened", x.reshape(-1)), ("0-d", np.asarray(x.flat[0])),
            (f"size {other.shape[axis]} along axis {axis}", other)]


def _bad_dtypes(data, x):
    out = [(f"dtype {d}", x.astype(d)) for d in ("int64", "int32", "uint8", "bool", "float16")]
    return out + [("dtype complex128", x + 0.5j)]   # a real imaginary part: truncating it would be garbage


def _non_finite(data, x):
    out = []
    for value in (np.nan, np.inf, -np.inf):
        bad = x.copy()
        where = data.draw(st.lists(st.integers(0, x.size - 1), min_size=1, max_size=3), label=f"where {value}")
        bad.reshape(-1)[where] = value
        out.append((f"{value} at {where}", bad))
    return out


def _bad_grads(y):
    g = np.ones_like(y)
    swapped = y.shape[::-1] if y.ndim > 1 and y.shape != y.shape[::-1] else y.shape + (2,)
    return [*[(f"dtype {d}", g.astype(d)) for d in ("int64", "float16", "float32", "bool", "complex128")],
            ("an axis added", g[..., None]), (f"shape {swapped}", np.ones(swapped)),
            ("flattened" if y.ndim > 1 else "empty", g.reshape(-1) if y.ndim > 1 else g[:0]),
            ("a list", g.tolist())]     # the example (and so the output) is float64


BAD = {"shape": _bad_shapes, "dtype": _bad_dtypes, "nonfinite": _non_finite,
       "empty": lambda data, x: [("B = 0", x[:0])], "list": lambda data, x: [("a list", x.tolist())]}


# ------------------------------------------------------------------------------ the oracle
def _run(fn):
    """``(result, None)`` or ``(None, ValueError/TypeError)``; any other exception propagates."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # incl. numpy's ComplexWarning
        try:
            return fn(), None
        except (ValueError, TypeError) as exc:
            return None, exc


def _arrays(out):
    if isinstance(out, np.ndarray):
        yield out
    elif isinstance(out, (float, np.floating)):
        yield np.asarray(out)
    elif isinstance(out, (tuple, list)):
        for o in out:
            yield from _arrays(o)
    elif isinstance(out, dict):
        for o in out.values():
            yield from _arrays(o)


def _finite(out) -> bool:
    return all(np.isfinite(a).all() for a in _arrays(out) if a.dtype.kind in "fc")


def _assert_names(case, obj, exc):
    assert any(n in str(exc) for n in case.names(obj)), f"{type(exc).__name__} does not name {case.name}: {exc}"


def _check(case, obj, kind, what, bad, out, exc):
    where = f"{case.id} given {what}"
    if exc is not None:
        assert kind != "nonfinite" or isinstance(exc, ValueError), f"{where} raised {exc!r}"
        _assert_names(case, obj, exc)
        return
    if kind == "nonfinite":
        pytest.fail(f"{where} returned an output (finite: {_finite(out)})")
    if (kind == "dtype" and (bad.dtype.kind == "c" or not case.casts)) or (kind == "list" and not case.casts):
        pytest.fail(f"{where} returned an output")
    assert _finite(out), f"{where} returned NaN or inf"


@pytest.mark.parametrize("case,kind", list(_params()))
@BAD_INPUT
@given(data=st.data())
def test_bad_input_raises_naming_the_class(case, kind, data):
    x = case.example(np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed")))
    if kind == "grad":
        obj = case.make()
        y = case.grad(case.call(obj, x))
        for what, g in _bad_grads(y):
            out, exc = _run(lambda: obj.backward(g))
            assert exc is not None, f"{case.id}.backward accepted {what} for an output {y.dtype} {y.shape}"
            _assert_names(case, obj, exc)
        return
    for what, bad in BAD[kind](data, x):
        obj = case.make()
        out, exc = _run(lambda: case.call(obj, bad))
        _check(case, obj, kind, what, bad, out, exc)
