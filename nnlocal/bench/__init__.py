"""``nnlocal bench``: discover ``benchmarks/bench_*.py``, run their cases on one thread, print ratios.

Benchmarks live outside the installed package (they import torch, a test/benchmark dependency),
in the repository's ``benchmarks/`` folder; ``--dir`` points elsewhere.
"""
from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

from .report import format_table

COLUMNS = ["benchmark", "nnlocal_ms", "baseline", "baseline_ms", "ratio", "roofline", "goal"]


def find_benchmarks_dir(explicit=None) -> Path:
    candidates = [Path(explicit)] if explicit else [Path.cwd() / "benchmarks",
                                                    Path(__file__).resolve().parents[1] / "benchmarks"]
    for c in candidates:
        if (c / "common.py").exists():
            return c
    raise FileNotFoundError("no benchmarks/ folder found (looked in: " + ", ".join(map(str, candidates)) +
                            "); run from the repository root or pass --dir")


def available(bench_dir: Path) -> list[str]:
    return sorted(p.stem[len("bench_"):] for p in bench_dir.glob("bench_*.py"))


def _load(bench_dir: Path, name: str):
    for p in (str(bench_dir.parent), str(bench_dir)):
        if p not in sys.path:
            sys.path.insert(0, p)
    spec = importlib.util.spec_from_file_location(f"benchmarks.bench_{name}", bench_dir / f"bench_{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_benchmarks(names=None, repeat: int = 5, quick: bool = False, bench_dir=None, out_dir=None,
                   echo=print) -> list[dict]:
    bench_dir = find_benchmarks_dir(bench_dir)
    sys.path.insert(0, str(bench_dir.parent))
    from benchmarks.common import pin_one_thread, run_case  # noqa: E402  (lives beside the benchmarks)

    pin_one_thread()
    known = available(bench_dir)
    names = names or known
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown benchmark(s) {unknown}; available: {known}")
    rows = []
    for name in names:
        module = _load(bench_dir, name)
        for case in module.cases(quick=quick):
            row = run_case(case, repeat=repeat)
            rows.append(row)
            echo(f"  {row['benchmark']}: nnlocal {row['nnlocal_ms']:.3g} ms"
                 + (f", {row['baseline']} {row['baseline_ms']:.3g} ms, ratio {row['ratio']:.3g}"
                    if row.get("ratio") is not None else ""))
    if out_dir is not None:
        write_results(rows, Path(out_dir))
    return rows


def write_results(rows: list[dict], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench.md").write_text(format_table(rows, COLUMNS) + "\n")
    with open(out_dir / "bench.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
