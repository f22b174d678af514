"""Run the tour parts in order, collect one table, write figures and an index."""
from __future__ import annotations

import importlib
import time
import traceback
from pathlib import Path

from tqdm.auto import tqdm

from .. import kernels as _kernels
from ..report import format_table, write_index
from . import PARTS, Row

COLUMNS = ["method", "task", "metric", "nnlocal", "baseline", "baseline_name", "original", "seconds"]


def run_tour(quick: bool = False, out_dir="nnlocal-out/tour", seed: int = 0, only=None,
             kernels: str | None = None) -> tuple[list[dict], bool]:
    """Run every tour part; returns (table rows, all parts succeeded).

    ``kernels`` (``"numpy"`` or ``"numba"``) runs the tour under ``nnlocal.kernels.use(kernels)`` and
    restores the previous choice afterwards; ``None`` keeps the current one. A part that raises is
    reported in the table (and makes the tour fail) instead of hiding the other parts' results.
    """
    with _kernels.use(kernels or _kernels.current()):
        return _run_parts(quick, Path(out_dir), seed, only)


def _run_parts(quick: bool, out_dir: Path, seed: int, only) -> tuple[list[dict], bool]:
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = [(label, mod) for label, mod in PARTS if not only or mod in only or label in only]
    rows, figures, ok = [], [], True
    bar = tqdm(parts, desc="nnlocal tour", unit="part")
    for label, mod_name in bar:
        bar.set_postfix_str(label)
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(f"nnlocal.tour.{mod_name}")
            part_rows, part_figs = module.run(quick=quick, out_dir=out_dir, seed=seed)
        except Exception as exc:  # report, keep going, fail at the end
            ok = False
            tb = traceback.format_exc(limit=3)
            (out_dir / f"{mod_name}-error.txt").write_text(tb)
            part_rows = [Row(label, "-", "error", f"{type(exc).__name__}: {exc}"[:80])]
            part_figs = []
        seconds = time.perf_counter() - t0
        for r in part_rows:
            d = r.as_dict()
            d["seconds"] = round(seconds, 1)
            rows.append(d)
        figures.extend(part_figs)
    table = format_table(rows, COLUMNS)
    (out_dir / "results.md").write_text(table + "\n")
    title = f"nnlocal tour ({'quick, ' if quick else ''}{_kernels.current()} kernels)"
    write_index(out_dir, figures, {"Results": table}, title=title)
    return rows, ok
