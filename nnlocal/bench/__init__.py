"""``nnlocal bench``: nnlocal against PyTorch (or a NumPy reference) on the same work, with the machine named.

The benchmarks ship with the package: each module ``nnlocal/bench/bench_<name>.py`` is the benchmark
``<name>`` and defines ``cases(quick=False) -> list[Case | MemoryCase]`` (see :mod:`.common`).
``--dir FOLDER`` adds the files ``FOLDER/bench_<name>.py`` (``from nnlocal.bench import Case``); a
name there replaces the built-in one. Only the case modules import torch, inside their functions:
``import nnlocal`` and ``nnlocal bench --list`` work without it.

Every case runs at each requested thread count (BLAS, Numba and torch limited alike, one thread by
default). Each table is printed and written (``bench.md``, ``bench.csv``, ``memory.csv``) with the
machine that produced it: CPU model and cores, numpy and its BLAS (version, kernel architecture),
numba, torch, and the load average (a shared machine moves timings).
"""
from __future__ import annotations

import csv
import importlib
import importlib.util
import io
import os
import pkgutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .._files import write_text
from ..report import format_table, machine_info, machine_summary
from .common import Case, MemoryCase, goal_met, run_case, thread_limit

__all__ = ["Case", "MemoryCase", "BenchResults", "available", "load", "run_benchmarks", "print_results",
           "write_results", "goal_met", "COLUMNS", "MEMORY_COLUMNS"]

COLUMNS = ["benchmark", "threads", "nnlocal_ms", "baseline", "baseline_ms", "ratio", "roofline", "goal"]
SPEEDUP_COLUMNS = ["nnlocal_speedup", "baseline_speedup"]
MEMORY_COLUMNS = ["benchmark", "nnlocal_mb", "baseline", "baseline_mb", "ratio", "nnlocal_s", "baseline_s", "goal"]
MACHINE_COLUMNS = ["cpu", "cores", "numpy", "blas", "torch"]
PREFIX = "bench_"


def _sources(extra_dir=None) -> dict[str, str | Path]:
    """name -> module name (built in) or file path (from ``extra_dir``)."""
    from ..cli import UsageError

    found: dict[str, str | Path] = {m.name[len(PREFIX):]: f"{__name__}.{m.name}"
                                    for m in pkgutil.iter_modules(__path__) if m.name.startswith(PREFIX)}
    if extra_dir is not None:
        folder = Path(extra_dir)
        if not folder.is_dir():
            raise UsageError(f"--dir {folder}: no such folder")
        files = sorted(folder.glob(f"{PREFIX}*.py"))
        if not files:
            raise UsageError(f"--dir {folder}: no {PREFIX}<name>.py files in it")
        found.update({p.stem[len(PREFIX):]: p for p in files})
    return dict(sorted(found.items()))


def available(extra_dir=None) -> list[str]:
    """The benchmark names: the built-in ones and those in ``extra_dir``."""
    return list(_sources(extra_dir))


def load(name: str, extra_dir=None):
    """The module of benchmark ``name``."""
    source = _sources(extra_dir)[name]
    if isinstance(source, str):
        return importlib.import_module(source)
    module_name = f"nnlocal_bench_extra.{PREFIX}{name}"
    spec = importlib.util.spec_from_file_location(module_name, source)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module          # dataclasses and pickling look modules up here
    spec.loader.exec_module(module)
    return module


@dataclass
class BenchResults:
    """What one ``nnlocal bench`` run measured: timing rows, memory rows, and where."""
    rows: list[dict] = field(default_factory=list)
    memory: list[dict] = field(default_factory=list)
    threads: tuple[int, ...] = (1,)
    machine: str = ""

    @property
    def columns(self) -> list[str]:
        return COLUMNS[:-1] + (SPEEDUP_COLUMNS if len(self.threads) > 1 else []) + COLUMNS[-1:]

    def markdown(self) -> str:
        """The tables as Markdown, headed by the machine they ran on."""
        parts = [f"machine: {self.machine}"]
        if self.rows:
            note = ("ratio = nnlocal time / baseline time (< 1: nnlocal is faster); threads = BLAS, Numba and "
                    "torch threads on each side")
            if len(self.threads) > 1:
                note += "; speedup = time at the fewest threads / time at this count"
            parts += [format_table(self.rows, self.columns), note]
        if self.memory:
            parts += [f"Peak memory (resident set of a fresh process per cell at {self.threads[0]} thread(s), MB; "
                      "ratio = nnlocal / baseline):",
                      format_table(self.memory, MEMORY_COLUMNS)]
        return "\n\n".join(parts) + "\n"


def _load_average() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def run_benchmarks(names=None, repeat: int = 5, quick: bool = False, bench_dir=None, out_dir=None,
                   echo=print, threads=(1,)) -> BenchResults:
    """Run the benchmarks ``names`` (default: all) at each thread count of ``threads``; write
    ``bench.md``/``bench.csv`` (and ``memory.csv``) into ``out_dir`` when given."""
    import numba

    from ..cli import UsageError

    counts = tuple(sorted(set([threads] if isinstance(threads, int) else threads)))
    if not counts or counts[0] < 1 or counts[-1] > numba.config.NUMBA_NUM_THREADS:
        raise UsageError(f"--threads {','.join(map(str, counts))}: choose 1 to {numba.config.NUMBA_NUM_THREADS} "
                         "(the cores Numba's thread pool has; NUMBA_NUM_THREADS changes it)")
    known = available(bench_dir)
    names = list(names or known)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(known)}")
    cases = [c for name in names for c in load(name, bench_dir).cases(quick=quick)]
    # after the imports, so that torch's libraries are listed too
    results = BenchResults(threads=counts, machine=f"{machine_summary()}; load average {_load_average()} at the start")
    echo(f"machine: {results.machine}")
    from tqdm.auto import tqdm

    bar = tqdm(cases, desc="nnlocal bench", unit="case", leave=False, disable=None)   # only on a terminal
    say = tqdm.write if echo is print else echo        # the lines go above the bar, not through it
    for case in bar:
        per_count = []
        for n in counts[:1] if isinstance(case, MemoryCase) else counts:
            with thread_limit(n):
                row = run_case(case, repeat, n)
            row["threads"] = n
            per_count.append(row)
            say(_progress_line(row))
        if isinstance(case, MemoryCase):
            results.memory += per_count
            continue
        if len(counts) > 1:
            first = per_count[0]
            for row in per_count[1:]:
                row["nnlocal_speedup"] = first["nnlocal_ms"] / row["nnlocal_ms"]
                if row.get("baseline_ms"):
                    row["baseline_speedup"] = first["baseline_ms"] / row["baseline_ms"]
        results.rows += per_count
    results.machine += f", {_load_average()} at the end"
    if out_dir is not None:
        write_results(results, Path(out_dir))
    return results


def _progress_line(row: dict) -> str:
    if "nnlocal_mb" in row:
        text = f"  {row['benchmark']}: nnlocal {row['nnlocal_mb']:.0f} MB"
        unit, key = "MB", "baseline_mb"
    else:
        text = f"  {row['benchmark']} [{row['threads']} thread(s)]: nnlocal {row['nnlocal_ms']:.3g} ms"
        unit, key = "ms", "baseline_ms"
    if row.get("ratio") is not None:
        text += f", {row['baseline']} {row[key]:.3g} {unit}, ratio {row['ratio']:.3g}"
    return text


def print_results(results: BenchResults) -> None:
    print()
    print(results.markdown(), end="")


def write_results(results: BenchResults, out_dir: Path) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / "bench.md", "# nnlocal bench\n\n" + results.markdown())
    machine = {k: machine_info()[k] for k in MACHINE_COLUMNS}
    tables = [("bench.csv", results.rows, results.columns), ("memory.csv", results.memory, MEMORY_COLUMNS)]
    for name, rows, columns in tables:
        if rows or name == "bench.csv":
            fh = io.StringIO(newline="")
            fields = list(dict.fromkeys(columns + ["threads", "goal_met"] + MACHINE_COLUMNS))
            writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
            writer.writeheader()
            writer.writerows({**row, **machine} for row in rows)
            write_text(out_dir / name, fh.getvalue())
