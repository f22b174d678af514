"""Tour part: DEEP, DEEP one-hot and asymmetric EP on logic gates - success rates over seeds.

The notebooks' hyperparameters (T1 = T2 = 1000 Euler steps of dt 0.05, β 10 / 1 / 10, dt_W 100 / 200 / 1),
all seeds of a configuration relaxed in one batched kernel call (:func:`nnlocal.methods.deep.fit_many`).
A net is "solved" when its free-phase classification error is 0 at the last epoch. Whether one seed
solves XOR can flip with the CPU's rounding, so the full tour counts 50 seeds per XOR model (20 for
AND, which every seed solves) and prints each count with its Wilson 95 % interval. ``demos/deep_logic.py`` runs the full study (five
gates, figures).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..methods import deep
from ..report import new_figure, save_figure
from . import Row, part_bar, success_cell

#: (notebook, gate, what the originals report); EP_asym XOR is the baseline of the XOR rows
CONFIGS = [
    ("DEEP", "XOR", "notebook: 1 run learned; independent re-run 2/10"),
    ("DEEP_oh", "XOR", "notebook: 1 run learned; independent re-run 4/10"),
    ("EP_asym", "XOR", ""),
    ("DEEP", "AND", "independent re-run 5/5"),
]
#: the log scale's floor: MSEs below it (AND reaches exactly 0) are drawn on it
MSE_FLOOR = 1e-4
CAPTIONS = {"deep_logic_mse": "Free-phase MSE per epoch, one panel per model and gate, the seeds split into those "
                              "that end with every pattern classified right (solved, green, dashed) and the rest (grey): "
                              "median and 25-75 % band of each group, the counts in the legend. The log scale stops "
                              f"at {MSE_FLOOR:g}: smaller values (AND reaches exactly 0) are drawn on the floor. "
                              "Look at the solved XOR seeds: DEEP's fall to a small MSE, asymmetric EP's stay near "
                              "0.12 (outputs on the right side of 0.5, far from the targets)."}


def _train(name: str, gate: str, seeds, epochs: int, bar=None):
    hp = deep.NOTEBOOK_HPARAMS[name]
    X, Y = deep.logic_gate(gate, one_hot=hp["one_hot"])
    cls = deep.DEEPNet if hp["model"] == "DEEP" else deep.AsymEPNet
    nets = [cls(X.shape[1], hp["hidden"], Y.shape[1], one_hot=hp["one_hot"], rng=s) for s in seeds]
    callback = None if bar is None else (lambda *_: bar.update())
    hists = deep.fit_many(nets, X, Y, **{**hp["fit"], "epochs": epochs}, callback=callback)
    solved = [h["final_error"] == 0 and not h["diverged"] for h in hists]
    return nets, hists, solved


def _describe(name: str) -> str:
    hp = deep.NOTEBOOK_HPARAMS[name]
    fit = hp["fit"]
    return (f"{name} notebook settings: hidden {hp['hidden']}, T1 = T2 = {fit['T1']} Euler steps of dt {fit['dt']}, "
            f"beta {fit['beta']}, dt_W {fit['dt_W']}; solved = free-phase classification error 0 at the last epoch")


def run(quick: bool, out_dir: Path, seed: int = 0, progress=None) -> tuple[list[Row], list[Path]]:
    epochs = 100 if quick else 200
    n_seeds = {"XOR": 4, "AND": 4} if quick else {"XOR": 50, "AND": 20}   # AND: 20/20 in every run so far
    bar = part_bar(progress, epochs * len(CONFIGS))
    results = {}
    for name, gate, _ in CONFIGS:
        seeds = list(range(seed, seed + n_seeds[gate]))
        _, hists, solved = _train(name, gate, seeds, epochs, bar)
        results[name, gate] = (hists, solved)

    asym_hists, asym_solved = results["EP_asym", "XOR"]
    asym_mse = float(np.median([h["mse"][h["epochs_run"] - 1] for h in asym_hists]))
    rows = []
    for name, gate, original in CONFIGS:
        if name == "EP_asym":
            continue
        hists, solved = results[name, gate]
        n = len(solved)
        task = f"{gate}, {name}, {epochs} ep, {n} seeds"
        cell = success_cell(sum(solved), n)
        if gate == "XOR":
            # asymmetric EP's "solved" seeds sit on the right side of 0.5 with outputs near 0.5: show the MSE too
            rows.append(Row("DEEP", task, "solved seeds (95 % CI)", cell, f"{sum(asym_solved)}/{n}, MSE {asym_mse:.2f}",
                            f"asymmetric EP, same seeds: outputs on the right side of 0.5 but near it (median final "
                            f"MSE {asym_mse:.3f}; {success_cell(sum(asym_solved), n)})", original, _describe(name)))
        else:
            rows.append(Row("DEEP", task, "solved seeds (95 % CI)", cell, original=original, details=_describe(name)))
    fig = mse_figure(results, [list(results)], "DEEP, DEEP one-hot and asymmetric EP on logic gates: median and "
                                               "25-75 % of the solved and the unsolved seeds")
    return rows, [save_figure(fig, out_dir, "deep_logic_mse")]


def mse_figure(results: dict, grid: list[list], title: str):
    """The free-phase MSE per epoch, one panel per ``(model, gate)`` key of ``results`` (values:
    ``(histories, solved flags)``), laid out as ``grid`` (rows of keys). In each panel the seeds are
    split into solved (green, dashed, drawn last) and not solved (grey): median and 25-75 % band of
    each group, the counts in a legend below the axes. Returns the figure.
    """
    n_rows, n_cols = len(grid), max(len(row) for row in grid)
    fig, axes = new_figure(n_rows, n_cols, figsize=(3.0 * n_cols, 3.5 * n_rows), sharey=True, squeeze=False)
    for ax, key in zip(axes.ravel(), [key for row in grid for key in row]):
        hists, solved = results[key]
        mse = np.maximum(np.asarray([h["mse"] for h in hists], dtype=float), MSE_FLOOR)  # NaN stays NaN
        solved = np.asarray(solved, dtype=bool)
        ep = np.arange(1, mse.shape[1] + 1)
        # the solved group last and dashed: where both groups have the same MSE (asymmetric EP), both show
        for mask, color, style, what in ((~solved, "0.45", "-", "not solved"), (solved, "tab:green", "--", "solved")):
            label = f"{what}: {int(mask.sum())}/{len(solved)}"
            if not mask.any():
                ax.plot([], [], style, color=color, label=label)
                continue
            with np.errstate(all="ignore"):
                med = np.nanmedian(mse[mask], axis=0)
                lo, hi = np.nanquantile(mse[mask], 0.25, axis=0), np.nanquantile(mse[mask], 0.75, axis=0)
            ax.plot(ep, med, style, color=color, lw=1.6, label=label)
            ax.fill_between(ep, lo, hi, color=color, alpha=0.2, linewidth=0)
        ax.set_yscale("log")
        ax.set_ylim(MSE_FLOOR / 2, 1.0)
        ax.set_xlim(1, max(2, len(ep)))
        ax.set_title(f"{key[0]}, {key[1]}", fontsize=9)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles[::-1], labels[::-1], loc="upper center", bbox_to_anchor=(0.5, -0.22), fontsize=8,
                  frameon=False)   # below the axes, solved first
    for ax in axes.ravel()[sum(len(row) for row in grid):]:
        ax.set_visible(False)
    for row in axes:
        row[0].set_ylabel(f"free-phase MSE (floor {MSE_FLOOR:g})")
    fig.suptitle(title, fontsize=9)
    return fig
