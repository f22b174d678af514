"""Trials by name: the registry, and :func:`execute`, which runs one trial on a worker.

A *trial function* trains one model for one parameter set and one seed and returns a flat dict of
metrics (numbers, bools, strings). It is registered under a dotted name::

    @register("deep.logic_gate", primary="solved", choices={"model": ("deep", "deep_oh", "asym_ep")})
    def logic_gate(seed: int, *, gate: str = "XOR", model: str = "deep", epochs: int | None = None):
        ...
        return {"solved": True, "final_mse": 0.01}

The signature is the contract: ``seed`` first, then keyword-only parameters, each with a default.
The registry reads the parameter names, defaults and types from it (the default's type, or the
annotation's for a default of None: ``epochs: int | None = None`` takes integers), so a spec that
names an unknown parameter or gives a value of the wrong type is refused before anything runs.

The built-in trials live in :mod:`nnlocal.sweep.trials`. A spec can name more modules in
``[sweep] imports``; every worker imports them before it looks the trial up, so they must be
importable there (installed, or on ``PYTHONPATH``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import difflib
import importlib
import inspect
import math
import numbers
import os
import socket
import time
import traceback
import typing
from datetime import datetime, timezone
from typing import Any, Callable

__all__ = ["SweepError", "Trial", "register", "get_trial", "list_trials", "load_trial_modules", "execute",
           "BUILTIN_MODULE"]

#: the module that registers the built-in trials (imported on demand)
BUILTIN_MODULE = "nnlocal.sweep.trials"


class SweepError(ValueError):
    """A spec, a store or a sweep command cannot be used as given; the message says why."""


@dataclasses.dataclass(frozen=True)
class Trial:
    """A registered trial function and what its signature declares."""

    name: str
    func: Callable[..., dict]
    params: dict[str, Any]                 # parameter name -> default, in signature order
    choices: dict[str, tuple] = dataclasses.field(default_factory=dict)
    primary: str | None = None             # the metric a report draws by default
    types: dict[str, tuple] = dataclasses.field(default_factory=dict)   # accepted types per parameter

    def accepts(self, name: str, value) -> str | None:
        """Why ``value`` cannot be given to parameter ``name`` (None if it can)."""
        if name in self.choices and value not in self.choices[name]:
            return f"{value!r} is not one of {', '.join(map(repr, self.choices[name]))}"
        types = self.types.get(name, ())
        if not types or any(_is_a(value, t) for t in types):
            return None
        default = self.params[name]
        return f"must be {' or '.join(_TYPE_NAMES.get(t, t.__name__) for t in types)} (default {default!r}), " \
               f"got {value!r}"

    @property
    def summary(self) -> str:
        """The first line of the function's docstring."""
        return (inspect.getdoc(self.func) or "").strip().split("\n", 1)[0]


_REGISTRY: dict[str, Trial] = {}
_TYPE_NAMES = {bool: "a bool (true/false)", int: "an integer", float: "a number", str: "a string", list: "a list"}


def _is_a(value, t) -> bool:
    """TOML values against a parameter type: bools are not numbers, integers are numbers."""
    if t is bool or isinstance(value, bool):
        return t is bool and isinstance(value, bool)
    if t is float:
        return isinstance(value, (int, float))
    return isinstance(value, list if t in (list, tuple) else t)


def _types(default, annotation) -> tuple:
    """The types a parameter accepts: its default's, else its annotation's (``int | None`` -> int)."""
    if default is not None:
        return (list,) if isinstance(default, (list, tuple)) else (type(default),)
    args = typing.get_args(annotation) or (annotation,)
    return tuple(list if t in (list, tuple) else t for t in args if t in (bool, int, float, str, list, tuple))


def register(name: str, *, primary: str | None = None, choices: dict[str, tuple] | None = None):
    """Decorator: register ``func(seed, *, param=default, ...) -> dict`` as the trial ``name``.

    ``primary`` names the metric a report draws by default; ``choices`` restricts string
    parameters to the listed values (checked when a spec is read).
    """
    def decorate(func):
        try:
            sig = inspect.signature(func, eval_str=True)
        except (NameError, TypeError):   # annotations that do not evaluate: no types from them
            sig = inspect.signature(func)
        names = list(sig.parameters)
        if not names or names[0] != "seed":
            raise TypeError(f"register({name!r}): the first parameter of {func.__qualname__} must be 'seed'")
        params, types = {}, {}
        for p in list(sig.parameters.values())[1:]:
            if p.kind is not inspect.Parameter.KEYWORD_ONLY or p.default is inspect.Parameter.empty:
                raise TypeError(f"register({name!r}): parameter {p.name!r} of {func.__qualname__} must be "
                                "keyword-only with a default (write `def f(seed, *, name=default)`)")
            params[p.name] = p.default
            types[p.name] = _types(p.default, p.annotation)
        for key in choices or {}:
            if key not in params:
                raise TypeError(f"register({name!r}): choices given for unknown parameter {key!r}")
        old = _REGISTRY.get(name)
        if old is not None and old.func.__qualname__ != func.__qualname__:
            raise ValueError(f"register: the trial name {name!r} is already taken by "
                             f"{old.func.__module__}.{old.func.__qualname__}")
        _REGISTRY[name] = Trial(name, func, params, {k: tuple(v) for k, v in (choices or {}).items()}, primary, types)
        return func

    return decorate


def load_trial_modules(imports=()) -> None:
    """Import the built-in trials and the modules a spec lists in ``imports`` (which register theirs)."""
    for module in (BUILTIN_MODULE, *imports):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise SweepError(f"cannot import the trial module {module!r} ({exc}); it must be importable "
                             "here and on every worker (installed, or on PYTHONPATH)") from exc


def get_trial(name: str, imports=()) -> Trial:
    """The registered trial ``name`` (after importing ``imports``); a clear error if there is none."""
    load_trial_modules(imports)
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), _REGISTRY, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SweepError(f"unknown trial {name!r}{hint}; registered trials: {', '.join(sorted(_REGISTRY))} "
                         "(`nnlocal sweep run --list` shows their parameters)") from None


def list_trials(imports=()) -> list[Trial]:
    """Every registered trial, sorted by name."""
    load_trial_modules(imports)
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


# ------------------------------------------------------------------------------------------------
# Running one trial (on a worker)
# ------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def single_threaded():
    """Pin Numba and BLAS/OpenMP (threadpoolctl) to one thread for the duration: a sweep's
    parallelism is one trial per worker process, and nested thread pools would only fight over the
    cores. Numba's setting is per thread, so it is made here, in the thread that runs the trial
    (:func:`nnlocal.kernels.limit_threads`)."""
    from ..kernels import limit_threads

    with limit_threads(1):
        yield


def _clean_metrics(trial: str, metrics) -> dict:
    """A trial's result as a JSON-ready flat dict; non-finite floats become None (JSON null)."""
    if not isinstance(metrics, dict):
        raise TypeError(f"trial {trial} returned {type(metrics).__name__}, expected a dict of metrics")
    out = {}
    for key, value in metrics.items():
        if not isinstance(key, str):
            raise TypeError(f"trial {trial} returned a metric name {key!r} that is not a string")
        if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:   # numpy scalars
            value = value.item()
        if isinstance(value, bool) or value is None or isinstance(value, str):
            out[key] = value
        elif isinstance(value, numbers.Integral):
            out[key] = int(value)
        elif isinstance(value, numbers.Real):
            out[key] = float(value) if math.isfinite(value) else None
        else:
            raise TypeError(f"trial {trial} returned metric {key!r} = {value!r} ({type(value).__name__}); "
                            "metrics must be numbers, bools or strings")
    return out


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def execute(trial: str, params: dict, seed: int, imports=()) -> dict:
    """Run trial ``trial`` with ``params`` and ``seed``, one thread, and return its record.

    The record holds ``status`` ("done" or "failed"), ``metrics`` (dict or None), ``error`` (the
    exception's type, message and the innermost frames, or None), ``seconds``, ``host``, ``pid``,
    ``started`` and ``finished`` (UTC, ISO 8601). An exception in the trial -- including
    :class:`nnlocal.DivergenceError` -- becomes a failed record instead of an error of the task,
    so the sweep goes on.
    """
    started, t0 = _now(), time.perf_counter()
    try:
        func = get_trial(trial, imports).func
        with single_threaded():
            metrics = _clean_metrics(trial, func(seed, **params))
        status, error = "done", None
    except Exception as exc:   # noqa: BLE001 - every failure is recorded, the sweep goes on
        status, metrics = "failed", None
        frames = "".join(traceback.format_tb(exc.__traceback__, limit=-3))
        error = f"{type(exc).__name__}: {exc}\n{frames}".strip()
    return {"status": status, "metrics": metrics, "error": error, "seconds": time.perf_counter() - t0,
            "host": socket.gethostname(), "pid": os.getpid(), "started": started, "finished": _now()}
