"""Run the tour parts in order under one thread limit, collect one table, write figures and an index.

What it writes to ``out_dir``: ``results.md`` (the full table: every column, the recipe of each
row; then the time of each part and the machine), ``index.md`` (the same, and every figure with
its caption) and the figures. What it prints: a line per part as it finishes (its time) and the
machine line; ``nnlocal tour`` then prints the compact table (:data:`COLUMNS`).
"""
from __future__ import annotations

import contextlib
import importlib
import time
import traceback
from pathlib import Path

from tqdm.auto import tqdm

from .._files import write_text
from .. import kernels as _kernels
from ..report import format_seconds, format_table, machine_summary, write_index
from . import PARTS, Row

#: the compact table the terminal shows (under 120 characters wide)
COLUMNS = ["method", "task", "metric", "nnlocal", "baseline"]
#: the full table of results.md and index.md
FULL_COLUMNS = ["method", "task", "metric", "nnlocal", "baseline", "baseline_name", "original", "details"]
#: the table of part times
TIME_COLUMNS = ["part", "seconds", "CPU seconds", "rows", "figures"]


def run_tour(quick: bool = False, out_dir="nnlocal-out/tour", seed: int = 0, only=None,
             kernels: str | None = None, threads: int = 1) -> tuple[list[dict], bool]:
    """Run every tour part; returns (table rows, all parts succeeded).

    ``kernels`` (``"numpy"`` or ``"numba"``) runs the tour under ``nnlocal.kernels.use(kernels)`` and
    restores the previous choice afterwards; ``None`` keeps the current one. Every part runs under
    one limit of ``threads`` BLAS and Numba threads (one by default: the tour's matrices are small,
    and on a busy machine more threads only fight over the cores). A part that raises is reported
    in the table (and makes the tour fail) instead of hiding the other parts' results. Each row
    dict holds :data:`FULL_COLUMNS` and ``seconds``, its part's wall time.
    """
    _load_thread_pools()
    with _kernels.use(kernels or _kernels.current()), _kernels.limit_threads(threads):
        return _run_parts(quick, Path(out_dir), seed, only, threads)


def _load_thread_pools() -> None:
    """Load the thread pools the parts use before the limit is set: threadpoolctl limits only the
    libraries loaded when it is called (scipy's BLAS, which EP's update calls, loads with scipy).
    The limit is also set again before each part, for what an earlier part loaded."""
    with contextlib.suppress(ImportError):
        importlib.import_module("scipy.linalg")


def _run_part(module_name: str, label: str, quick: bool, out_dir: Path, seed: int, bar, threads: int):
    """One part's (rows, figures, captions, ok) under the thread limit, set again for each part so that
    a library an earlier part loaded is limited too; an exception becomes an error row and a traceback file."""
    try:
        module = importlib.import_module(f"nnlocal.tour.{module_name}")
        with _kernels.limit_threads(threads):
            rows, figures = module.run(quick=quick, out_dir=out_dir, seed=seed, progress=bar)
        return rows, figures, getattr(module, "CAPTIONS", {}), True
    except Exception as exc:  # report, keep going, fail at the end
        write_text(out_dir / f"{module_name}-error.txt", traceback.format_exc(limit=3))
        return [Row(label, "-", "error", f"{type(exc).__name__}: {exc}"[:80])], [], {}, False


def _run_parts(quick: bool, out_dir: Path, seed: int, only, threads: int) -> tuple[list[dict], bool]:
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = [(label, mod) for label, mod in PARTS if not only or mod in only or label in only]
    rows, figures, captions, times, ok = [], [], {}, [], True
    outer = tqdm(parts, desc="nnlocal tour", unit="part")
    inner = tqdm(total=0, position=1, leave=False, unit="step", disable=None)   # the part's bar; off without a TTY
    for label, mod_name in outer:
        outer.set_postfix_str(label)
        inner.set_description_str(f"  {label}")
        t0, c0 = time.perf_counter(), time.process_time()
        part_rows, part_figs, part_captions, part_ok = _run_part(mod_name, label, quick, out_dir, seed, inner,
                                                                 threads)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        ok &= part_ok
        rows.extend({**r.as_dict(), "seconds": round(seconds, 1)} for r in part_rows)
        figures.extend(part_figs)
        captions.update(part_captions)
        times.append({"part": label, "seconds": round(seconds, 1), "CPU seconds": round(cpu, 1),
                      "rows": len(part_rows), "figures": len(part_figs)})
        outer.write(f"{label:<6} {format_seconds(seconds):>8}{'' if part_ok else '  (failed)'}")
    inner.close()
    outer.close()
    total = sum(t["seconds"] for t in times)
    times.append({"part": "total", "seconds": round(total, 1), "CPU seconds": round(sum(t["CPU seconds"] for t in times), 1),
                  "rows": len(rows), "figures": len(figures)})

    machine = machine_line(quick, threads)
    table, time_table = format_table(rows, FULL_COLUMNS), format_table(times, TIME_COLUMNS)
    write_text(out_dir / "results.md", f"{table}\n\nTime per part (BLAS and Numba limited to {threads} "
                                        f"thread{'s' * (threads > 1)}):\n\n{time_table}\n\n{machine}\n")
    write_index(out_dir, figures, {"Results": table, "Time per part": time_table},
                title=f"nnlocal tour ({_mode(quick, threads)})", captions=captions, footer=machine)
    return rows, ok


def _mode(quick: bool, threads: int) -> str:
    return f"{'quick, ' if quick else ''}{_kernels.current()} kernels, {threads} thread{'s' * (threads > 1)}"


def machine_line(quick: bool = False, threads: int = 1) -> str:
    """The footer of every tour table: the machine (CPU, cores, numpy and its BLAS, numba) and how
    the tour ran (quick or full, the kernels in force, the thread limit)."""
    return f"machine: {machine_summary(torch=False)}; {_mode(quick, threads)}"
