"""``nnlocal sweep report``: per-cell tables (Markdown and CSV) and figures for every sweep in a store.

For each sweep ``NAME`` the output folder gets

* ``NAME.md`` - the spec (trial, seeds, fixed params, grid) and one row per grid cell: done,
  failed and pending counts, then every metric: booleans as ``k/n = rate % [low, high]`` (Wilson
  95 %), numbers as ``mean ± std``, median and ``[q1, q3]`` (see :mod:`nnlocal.sweep.stats`);
* ``NAME.csv`` - the same numbers, one column each;
* ``NAME-heatmap-METRIC.png`` (grids with two or more axes) - the metric over the first two grid
  axes, one panel per value of any further axes, each cell annotated;
* ``NAME-bars-METRIC.png`` - one bar per cell with its 95 % interval;

and ``index.md`` links every table and figure, with a one-sentence caption per figure. METRIC is
the trial's primary metric unless ``metrics`` names others.
"""
from __future__ import annotations

import csv
import io
import itertools
import os
from pathlib import Path

import numpy as np

from .._files import write_text
from .registry import SweepError, get_trial
from .spec import canonical_json
from .stats import metric_kinds, summarize_cell
from .store import Store

__all__ = ["write_report", "cell_table"]

MAX_PANELS = 12


def _fmt(x, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "-"
    return f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def _axis_value(v) -> str:
    return canonical_json(v) if isinstance(v, (list, dict)) else _fmt(v)


def cell_table(store: Store, name: str):
    """``(spec, kinds, cells)`` of sweep ``name``: ``cells`` lists, per grid cell in spec order,
    ``{"cell": {axis: value}, "done", "failed", "pending", "stats": {metric: summary}}``."""
    info = store.sweep(name)
    spec, axes = info["spec"], info["axes"]
    fixed = spec["params"]
    rows = store.rows(name)
    kinds = metric_kinds(r["metrics"] for r in rows if r["status"] == "done")
    by_params: dict[str, list] = {}
    for r in rows:
        by_params.setdefault(canonical_json(r["params"]), []).append(r)
    cells = []
    for combo in itertools.product(*(spec["grid"][a] for a in axes)):
        cell = dict(zip(axes, combo))
        mine = by_params.get(canonical_json({**fixed, **cell}), [])
        done = [r["metrics"] for r in mine if r["status"] == "done"]
        failed = sum(r["status"] == "failed" for r in mine)
        cells.append({"cell": cell, "done": len(done), "failed": failed,
                      "pending": len(spec["seeds"]) - len(done) - failed, "stats": summarize_cell(done, kinds)})
    return spec, axes, kinds, cells


def _markdown_cell(kind: str, s: dict) -> list[str]:
    if kind == "bool":
        if not s["n"]:
            return ["-"]
        return [f"{s['successes']}/{s['n']} = {100 * s['rate']:.1f} % [{100 * s['low']:.1f}, {100 * s['high']:.1f}]"]
    if kind == "numeric":
        if not s["n"]:
            return ["-", "-", "-"]
        return [f"{_fmt(s['mean'])} ± {_fmt(s['std'])}", _fmt(s["median"]), f"[{_fmt(s['q1'])}, {_fmt(s['q3'])}]"]
    return [", ".join(f"{v} ({c})" for v, c in s.get("values", {}).items()) or "-"]


def _headers(kind: str, key: str) -> list[str]:
    if kind == "bool":
        return [f"{key}: rate [Wilson 95 %]"]
    if kind == "numeric":
        return [f"{key}: mean ± std", f"{key}: median", f"{key}: IQR"]
    return [key]


def _markdown(spec, axes, kinds, cells, info) -> str:
    from ..report import format_table

    header = axes + ["done", "failed", "pending"] + [h for k, kind in kinds.items() for h in _headers(kind, k)]
    rows = []
    for c in cells:
        values = [_axis_value(c["cell"][a]) for a in axes] + [str(c["done"]), str(c["failed"]), str(c["pending"])]
        for key, kind in kinds.items():
            values += _markdown_cell(kind, c["stats"].get(key, {"n": 0}))
        rows.append(dict(zip(header, values)))
    seeds = spec["seeds"]
    seed_text = f"{seeds[0]}..{seeds[-1]}" if seeds == list(range(seeds[0], seeds[0] + len(seeds))) else str(seeds)
    lines = [f"# Sweep `{spec['name']}`", ""]
    if info.get("description"):
        lines += [info["description"], ""]
    lines += [f"* trial: `{spec['trial']}`; {len(seeds)} seeds ({seed_text}) per cell; spec hash "
              f"`{info['spec_hash'][:12]}`",
              "* fixed params: " + (", ".join(f"`{k} = {_axis_value(v)}`" for k, v in spec["params"].items())
                                    or "none (the trial's defaults)"),
              "* grid: " + (" × ".join(f"`{a}` ∈ {{{', '.join(_axis_value(v) for v in spec['grid'][a])}}}"
                                       for a in axes)
                            or "none (one cell)"),
              "* booleans: successes/done = rate with the Wilson 95 % score interval; numbers: mean ± sample "
              "std, median and interquartile range [q1, q3] over the done trials", "",
              format_table(rows, header), ""]
    return "\n".join(lines)


def _csv(axes, kinds, cells) -> str:
    buf = io.StringIO()
    header = list(axes) + ["done", "failed", "pending"]
    for key, kind in kinds.items():
        if kind == "bool":
            header += [f"{key}_successes", f"{key}_n", f"{key}_rate", f"{key}_wilson_low", f"{key}_wilson_high"]
        elif kind == "numeric":
            header += [f"{key}_{s}" for s in ("n", "mean", "std", "median", "q1", "q3")]
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for c in cells:
        row = [_axis_value(c["cell"][a]) for a in axes] + [c["done"], c["failed"], c["pending"]]
        for key, kind in kinds.items():
            s = c["stats"].get(key, {"n": 0})
            fields = {"bool": ("successes", "n", "rate", "low", "high"),
                      "numeric": ("n", "mean", "std", "median", "q1", "q3")}.get(kind, ())
            row += [s.get(f, "") if not isinstance(s.get(f), float) or not np.isnan(s[f]) else "" for f in fields]
        writer.writerow(row)
    return buf.getvalue()


def _primary(spec, kinds: dict) -> str | None:
    """The trial's declared primary metric, else the first boolean, else the first numeric one."""
    try:
        primary = get_trial(spec["trial"], spec.get("imports", [])).primary
    except SweepError:   # the trial's module is not importable here: fall back on the data
        primary = None
    if primary in kinds and kinds[primary] != "text":
        return primary
    for wanted in ("bool", "numeric"):
        for key, kind in kinds.items():
            if kind == wanted:
                return key
    return None


def write_report(store_path, out_dir, sweep: str | None = None, metrics=None) -> Path:
    """Write the tables and figures of ``sweep`` (default: every sweep) and ``index.md``; returns
    the index path."""
    from .figures import bars_figure, heatmap_figure

    out_dir = Path(out_dir)
    with Store(store_path, create=False) as store:
        names = [sweep] if sweep else [s["name"] for s in store.sweeps()]
        if not names:
            raise SweepError(f"{store_path} holds no sweep yet")
        out_dir.mkdir(parents=True, exist_ok=True)
        index = ["# Sweep reports", "", f"From `{Path(store_path).name}`.", ""]
        for name in names:
            info = store.sweep(name)
            spec, axes, kinds, cells = cell_table(store, name)
            primary = _primary(spec, kinds)
            rank = {"bool": 1, "numeric": 2, "text": 3}    # the primary metric, then booleans, numbers, text
            kinds = dict(sorted(kinds.items(), key=lambda kv: (kv[0] != primary, rank[kv[1]], kv[0])))
            write_text(out_dir / f"{name}.md", _markdown(spec, axes, kinds, cells, info))
            write_text(out_dir / f"{name}.csv", _csv(axes, kinds, cells))
            done = sum(c["done"] for c in cells)
            index += [f"## {name}", "", f"`{spec['trial']}`, {len(cells)} cell(s) × {len(spec['seeds'])} seeds: "
                      f"{done} done, {sum(c['failed'] for c in cells)} failed, "
                      f"{sum(c['pending'] for c in cells)} pending. Tables: [{name}.md]({name}.md), "
                      f"[{name}.csv]({name}.csv).", ""]
            chosen = list(metrics) if metrics else [m for m in [primary] if m]
            for metric in chosen:
                if metric not in kinds or kinds[metric] == "text":
                    raise SweepError(f"sweep {name!r} has no boolean or numeric metric {metric!r}; "
                                     f"its metrics: {', '.join(k for k, v in kinds.items() if v != 'text')}")
                figures = []
                if len(axes) >= 2:
                    figures.append(heatmap_figure(out_dir, name, axes, cells, metric, kinds[metric], MAX_PANELS))
                figures.append(bars_figure(out_dir, name, axes, cells, metric, kinds[metric]))
                for path, caption in filter(None, figures):
                    rel = os.path.relpath(path, out_dir)
                    index += [f"![{path.stem}]({rel})", "", caption, ""]
        path = out_dir / "index.md"
        write_text(path, "\n".join(index))
    return path
