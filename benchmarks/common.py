"""Shared benchmark machinery: one-thread pinning, timing, ratio tables.

A benchmark file ``benchmarks/bench_<name>.py`` defines ``cases(quick: bool = False) -> list[Case]``.
Each :class:`Case` times one unit of work in nnlocal and the same work in a baseline (torch, or a
plain-NumPy reference), in the same process, and reports ``ratio = nnlocal time / baseline time``
(< 1 means nnlocal is faster) and, where ``flops`` or ``bytes`` is given, the fraction of the
one-core roofline reached.

Roofline constants (2-core AVX2 machine, one thread; see shared/spec/engineering.md) can be
overridden with NNLOCAL_PEAK_GFLOPS_F32 / _F64 and NNLOCAL_BANDWIDTH_GBS.
"""
from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

PEAK_GFLOPS = {"float32": float(os.environ.get("NNLOCAL_PEAK_GFLOPS_F32", 78.0)),
               "float64": float(os.environ.get("NNLOCAL_PEAK_GFLOPS_F64", 39.0))}
BANDWIDTH_GBS = float(os.environ.get("NNLOCAL_BANDWIDTH_GBS", 27.0))


def pin_one_thread() -> None:
    """Pin BLAS, Numba and torch to one thread so both sides are compared on equal terms."""
    import numba
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    # not NUMBA_NUM_THREADS: changing it after Numba's thread pool started (the engine's parallel
    # kernels start it) makes every later compilation fail
    numba.set_num_threads(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


@dataclass
class Case:
    name: str
    nnlocal: Callable[[], Any]                 # one unit of work in nnlocal
    baseline: Callable[[], Any] | None = None  # the same work in the baseline
    baseline_name: str = "torch"
    flops: float | None = None                 # floating-point operations of one nnlocal call
    bytes: float | None = None                 # bytes that must at least be read by one call
    dtype: str = "float32"
    goal: str = ""                             # e.g. "ratio <= 1.0", printed beside the result
    extra: dict = field(default_factory=dict)


def time_call(fn: Callable[[], Any], repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeat`` runs after ``warmup`` untimed runs (seconds)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run_case(case: Case, repeat: int = 5) -> dict:
    t_ours = time_call(case.nnlocal, repeat)
    row = {"benchmark": case.name, "nnlocal_ms": 1e3 * t_ours}
    if case.baseline is not None:
        t_base = time_call(case.baseline, repeat)
        row.update({"baseline": case.baseline_name, "baseline_ms": 1e3 * t_base, "ratio": t_ours / t_base})
    else:
        row.update({"baseline": "-", "baseline_ms": None, "ratio": None})
    roof = []
    if case.flops:
        roof.append(case.flops / t_ours / 1e9 / PEAK_GFLOPS[case.dtype])
    if case.bytes:
        roof.append(case.bytes / t_ours / 1e9 / BANDWIDTH_GBS)
    row["roofline"] = max(roof) if roof else None
    row["goal"] = case.goal
    row.update(case.extra)
    return row
