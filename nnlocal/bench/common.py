"""Shared benchmark machinery: thread limits, timing, goals, peak memory.

A benchmark module ``bench_<name>.py`` (in this package, or in a folder given to ``nnlocal bench
--dir``) defines ``cases(quick: bool = False) -> list[Case | MemoryCase]``.

* A :class:`Case` times one unit of work in nnlocal and the same work in a baseline (torch, or a
  plain-NumPy reference), in the same process, and reports ``ratio = nnlocal time / baseline time``
  (< 1 means nnlocal is faster) and, where ``flops`` or ``bytes`` is given, the fraction of the
  one-core roofline reached.
* A :class:`MemoryCase` runs a Python snippet for each side in a fresh process and reports its peak
  resident memory (the child's own high-water mark, VmHWM) and wall time.

``goal`` is free text; its clauses ``ratio <op> x`` and ``roofline <op> x`` (op one of ``<=``, ``<``,
``>=``, ``>``) are checked and the result says "met" or "missed".

The roofline constants (one core of the development machine: AVX2 FMA, 78 GFLOP/s float32, 39
float64, 27 GB/s) can be overridden with NNLOCAL_PEAK_GFLOPS_F32 / _F64 and NNLOCAL_BANDWIDTH_GBS.
"""
from __future__ import annotations

import contextlib
import operator
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Callable

PEAK_GFLOPS = {"float32": float(os.environ.get("NNLOCAL_PEAK_GFLOPS_F32", 78.0)),
               "float64": float(os.environ.get("NNLOCAL_PEAK_GFLOPS_F64", 39.0))}
BANDWIDTH_GBS = float(os.environ.get("NNLOCAL_BANDWIDTH_GBS", 27.0))


def pin_one_thread() -> None:
    """Pin BLAS, Numba and torch to one thread for the rest of the process (scripts; the runner
    uses :func:`threads` around each case instead)."""
    import numba
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    numba.set_num_threads(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


@contextlib.contextmanager
def thread_limit(n: int):
    """Inside the block, BLAS/OpenMP and Numba (:func:`nnlocal.kernels.limit_threads`) and torch (when
    imported) use ``n`` threads; the previous settings are restored afterwards."""
    import numba

    from ..kernels import limit_threads

    pool = numba.config.NUMBA_NUM_THREADS
    if not 1 <= n <= pool:
        raise ValueError(f"{n} threads: Numba's thread pool has {pool} (the core count, or NUMBA_NUM_THREADS)")
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch else None
    with limit_threads(n):
        if torch:
            torch.set_num_threads(n)
        try:
            yield
        finally:
            if torch:
                torch.set_num_threads(before)


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


@dataclass
class MemoryCase:
    """Peak RSS of ``nnlocal`` and ``baseline``, each a Python snippet run with ``python -c`` in a
    fresh process (same interpreter and environment, the thread count of the run)."""
    name: str
    nnlocal: str
    baseline: str | None = None
    baseline_name: str = "torch"
    goal: str = ""


_OPS = {"<=": operator.le, "≤": operator.le, "<": operator.lt, ">=": operator.ge, "≥": operator.ge,
        ">": operator.gt}
_CLAUSE = re.compile(r"\b(ratio|roofline)\s*(<=|>=|≤|≥|<|>)\s*(\d+(?:\.\d*)?|\.\d+)")


def goal_met(goal: str, row: dict) -> bool | None:
    """Whether ``row`` meets every ``ratio``/``roofline`` clause of ``goal``; None when the goal has
    no such clause or a value it needs was not measured."""
    clauses = _CLAUSE.findall(goal or "")
    if not clauses or any(row.get(key) is None for key, _, _ in clauses):
        return None
    return all(_OPS[op](row[key], float(value)) for key, op, value in clauses)


def _with_goal(row: dict, goal: str) -> dict:
    met = goal_met(goal, row)
    row["goal"] = goal if met is None else f"{goal}: {'met' if met else 'missed'}"
    row["goal_met"] = met
    return row


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


def run_case(case: Case | MemoryCase, repeat: int = 5, n_threads: int = 1) -> dict:
    """One table row for ``case`` (a :class:`MemoryCase` runs once, whatever ``repeat``)."""
    if isinstance(case, MemoryCase):
        return run_memory_case(case, n_threads)
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
    _with_goal(row, case.goal)
    row.update(case.extra)
    return row


_MARK = "NNLOCAL_PEAK_RSS_KIB="
#: prepended to a memory cell's code: at exit, the process reports the high-water mark of its own
#: address space (VmHWM). ``ru_maxrss`` of a child is no use on Linux: it carries the parent's peak
#: over fork and exec, so a 400 MB ``nnlocal bench`` process would make every cell look >= 400 MB.
_REPORT_PEAK = ("import atexit as _atexit, sys as _sys\n"
                "def _nnlocal_report_peak():\n"
                "    try:\n"
                "        kb = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]\n"
                "    except (OSError, IndexError):\n"
                "        return\n"
                f"    print('{_MARK}' + kb, file=_sys.stderr, flush=True)\n"
                "_atexit.register(_nnlocal_report_peak)\n")


def peak_rss(code: str, n_threads: int = 1) -> tuple[float, float]:
    """``(peak resident memory in MB, wall seconds)`` of ``python -c code`` in a fresh process with
    ``n_threads`` for BLAS/OpenMP/Numba. The peak is the process's own VmHWM (Linux); elsewhere
    ``ru_maxrss`` from ``os.wait4``, which may include this process's size. Raises ``RuntimeError``
    with the child's last error line."""
    env = dict(os.environ, OMP_NUM_THREADS=str(n_threads), OPENBLAS_NUM_THREADS=str(n_threads),
               MKL_NUM_THREADS=str(n_threads), NUMBA_NUM_THREADS=str(n_threads))
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", _REPORT_PEAK + code],
                                stdout=subprocess.DEVNULL, stderr=err, env=env)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - t0
        err.seek(0)
        lines = err.read().decode(errors="replace").strip().splitlines()
    marks = [line[len(_MARK):] for line in lines if line.startswith(_MARK)]
    if proc.returncode != 0:
        lines = [line for line in lines if not line.startswith(_MARK)]
        raise RuntimeError(f"child process failed (status {proc.returncode}): {lines[-1] if lines else ''}")
    if marks:
        return int(marks[-1]) / 1024, seconds
    kib = usage.ru_maxrss / (1024 if sys.platform == "darwin" else 1)   # bytes on macOS, KiB on Linux
    return kib / 1024, seconds


def run_memory_case(case: MemoryCase, n_threads: int = 1) -> dict:
    mb, s = peak_rss(case.nnlocal, n_threads)
    row = {"benchmark": case.name, "nnlocal_mb": mb, "nnlocal_s": s, "baseline": "-", "baseline_mb": None,
           "baseline_s": None, "ratio": None}
    if case.baseline is not None:
        base_mb, base_s = peak_rss(case.baseline, n_threads)
        row.update(baseline=case.baseline_name, baseline_mb=base_mb, baseline_s=base_s, ratio=mb / base_mb)
    return _with_goal(row, case.goal)


def script_main(name: str, cases, kernel_cases, argv=None) -> None:
    """``python -m nnlocal.bench.bench_<name> [--quick] [--repeat N] [--kernels]``: every column of the
    module's cases (or, with ``--kernels``, its Numba kernels against their NumPy references), one
    thread, with the machine in the title."""
    import argparse

    from nnlocal.report import machine_summary, print_table

    parser = argparse.ArgumentParser(description=f"{name} benchmarks with every column, one thread each side")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--kernels", action="store_true", help="the Numba kernels vs their NumPy references only")
    args = parser.parse_args(argv)
    pin_one_thread()
    chosen = kernel_cases(args.quick) if args.kernels else cases(quick=args.quick)
    print_table([run_case(c, repeat=args.repeat) for c in chosen],
                title=f"{name} {'kernels vs references' if args.kernels else 'benchmarks'} - {machine_summary()}")
