"""The two sweep figures: a heat-map over two grid axes, and one bar per cell with its interval.

Both take the per-cell summaries of :func:`nnlocal.sweep.report.cell_table` and return
``(path, caption)``: the PNG written (atomically, by :func:`nnlocal.report.save_figure`) and the
one-sentence caption that ``index.md`` prints under it.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..report import new_figure, save_figure

__all__ = ["heatmap_figure", "bars_figure"]


def _label(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _value(stats: dict, kind: str) -> float:
    """The number a cell is coloured or drawn by: the rate in % (bool) or the mean (numeric)."""
    if not stats or not stats.get("n"):
        return float("nan")
    return 100.0 * stats["rate"] if kind == "bool" else stats["mean"]


def _annotation(stats: dict, kind: str) -> str:
    if not stats or not stats.get("n"):
        return "no data"
    if kind == "bool":
        return (f"{100 * stats['rate']:.1f} %\n{stats['successes']}/{stats['n']}\n"
                f"[{100 * stats['low']:.1f}, {100 * stats['high']:.1f}]")
    return f"{stats['mean']:.3g}\n± {stats['std']:.2g}" if stats["n"] > 1 else f"{stats['mean']:.3g}"


def heatmap_figure(out_dir, name: str, axes, cells, metric: str, kind: str, max_panels: int = 12):
    """``metric`` over the first two grid axes (rows: axis 1, columns: axis 2), one panel per
    combination of the other axes (at most ``max_panels``, else None), one colour scale for all."""
    import matplotlib as mpl

    a_row, a_col, rest = axes[0], axes[1], list(axes[2:])
    rows = list(dict.fromkeys(_label(c["cell"][a_row]) for c in cells))
    cols = list(dict.fromkeys(_label(c["cell"][a_col]) for c in cells))
    panels = list(dict.fromkeys(tuple(_label(c["cell"][a]) for a in rest) for c in cells))
    if len(panels) > max_panels:
        return None
    grids = {p: np.full((len(rows), len(cols)), np.nan) for p in panels}
    notes = {p: [["no data"] * len(cols) for _ in rows] for p in panels}
    for c in cells:
        p = tuple(_label(c["cell"][a]) for a in rest)
        i, j = rows.index(_label(c["cell"][a_row])), cols.index(_label(c["cell"][a_col]))
        grids[p][i, j] = _value(c["stats"].get(metric), kind)
        notes[p][i][j] = _annotation(c["stats"].get(metric), kind)
    values = np.concatenate([g.ravel() for g in grids.values()])
    finite = values[np.isfinite(values)]
    vmin, vmax = (0.0, 100.0) if kind == "bool" else \
        ((float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0))
    if vmin == vmax:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    cmap, norm = mpl.colormaps["viridis"].with_extremes(bad="0.85"), mpl.colors.Normalize(vmin, vmax)

    width, height = 1.15 * len(cols) + 1.6, 0.75 * len(rows) + 1.4
    fig, axs = new_figure(1, len(panels) + 1, figsize=(width * len(panels) + 1.2, height), squeeze=False,
                          gridspec_kw={"width_ratios": [width] * len(panels) + [0.25]})
    for ax, p in zip(axs[0][:-1], panels):
        grid = np.ma.masked_invalid(grids[p])
        ax.imshow(grid, cmap=cmap, norm=norm, aspect="auto")
        for i, j in itertools.product(range(len(rows)), range(len(cols))):
            v = grids[p][i, j]
            r, g, b, _ = cmap(norm(v)) if np.isfinite(v) else (0.85, 0.85, 0.85, 1)
            colour = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"
            ax.text(j, i, notes[p][i][j], ha="center", va="center", fontsize=7, color=colour)
        ax.set_xticks(range(len(cols)), cols)
        ax.set_yticks(range(len(rows)), rows)
        ax.set_xlabel(a_col)
        ax.set_ylabel(a_row)
        if rest:
            ax.set_title(", ".join(f"{a} = {v}" for a, v in zip(rest, p)), fontsize=9)
    what = f"success rate of {metric} (%)" if kind == "bool" else f"mean {metric}"
    fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), cax=axs[0][-1], label=what)
    fig.suptitle(f"{name}: {what}", fontsize=10)
    path = save_figure(fig, out_dir, f"{name}-heatmap-{metric}")
    per = f", one panel per value of {' × '.join(rest)}" if rest else ""
    detail = ("the rate, successes/done trials and the Wilson 95 % interval" if kind == "bool"
              else "the mean ± sample std over its done trials")
    caption = (f"Heat-map of the {what} in sweep `{name}` over {a_row} (rows) × {a_col} (columns){per}; "
               f"each cell gives {detail}.")
    return path, caption


def bars_figure(out_dir, name: str, axes, cells, metric: str, kind: str):
    """One bar per grid cell: the success rate with its Wilson 95 % interval (bool), or the mean
    with its 95 % t-interval (numeric); the tick labels name the cell and its n."""
    heights, low, high, labels = [], [], [], []
    for c in cells:
        s = c["stats"].get(metric) or {"n": 0}
        v = _value(s, kind)
        if kind == "bool" and s["n"]:
            lo, hi = 100.0 * s["low"], 100.0 * s["high"]
        elif s.get("n", 0) > 1:
            lo, hi = s["ci_low"], s["ci_high"]
        else:
            lo = hi = v
        heights.append(v)
        low.append(v - lo if np.isfinite(v) else 0.0)
        high.append(hi - v if np.isfinite(v) else 0.0)
        labels.append([f"{a}={_label(c['cell'][a])}" for a in axes] + [f"(n={s['n']})"])
    upright = len(cells) <= 8      # stacked labels under few bars, one rotated line under many
    labels = ["\n".join(parts) if upright else ", ".join(parts[:-1]) + " " + parts[-1] for parts in labels]
    x = np.arange(len(cells))
    fig, ax = new_figure(figsize=(max(5.0, (0.9 if upright else 0.45) * len(cells) + 1.5),
                                  3.8 + (0.25 * len(axes) if upright else 0.6 + 0.35 * len(axes))))
    ax.bar(x, np.nan_to_num(heights), color="tab:blue", alpha=0.8)
    ax.errorbar(x, np.nan_to_num(heights), yerr=[low, high], fmt="none", ecolor="black", capsize=3, lw=1)
    ax.set_xticks(x, labels, fontsize=7, rotation=0 if upright else 90)
    ax.set_xlabel("grid cell" if axes else "")
    what = f"success rate of {metric} (%)" if kind == "bool" else f"mean {metric}"
    ax.set_ylabel(what)
    if kind == "bool":
        ax.set_ylim(0, 103)    # room for the caps at 100 %
    interval = "Wilson 95 % score intervals" if kind == "bool" else "95 % t-intervals of the mean"
    ax.set_title(f"{name}: {what}\n(bars: {interval})", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    path = save_figure(fig, out_dir, f"{name}-bars-{metric}")
    caption = (f"The {what} per grid cell of sweep `{name}`, with {interval} "
               "(n = done trials per cell, under each bar).")
    return path, caption
