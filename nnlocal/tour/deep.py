"""Tour part: DEEP, DEEP one-hot and asymmetric EP on logic gates - success rates over seeds.

The notebooks' hyperparameters (T1 = T2 = 1000 Euler steps of dt 0.05, β 10 / 1 / 10, dt_W 100 / 200 / 1),
all seeds of a configuration relaxed in one batched kernel call (:func:`nnlocal.methods.deep.fit_many`).
A net is "solved" when its free-phase classification error is 0 at the last epoch.
``demos/deep_logic.py`` runs the full study (20 seeds, five gates, figures).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..methods import deep
from ..report import new_figure, save_figure
from . import Row

CONFIGS = [  # (label, notebook, gate, what the originals report)
    ("DEEP", "DEEP", "XOR", "notebook: 1 run learned; spec re-run 2/10"),
    ("DEEP", "DEEP_oh", "XOR", "notebook: 1 run learned; spec re-run 4/10"),
    ("DEEP", "DEEP", "AND", "spec re-run 5/5"),
]


def _train(name: str, gate: str, seeds, epochs: int):
    hp = deep.NOTEBOOK_HPARAMS[name]
    X, Y = deep.logic_gate(gate, one_hot=hp["one_hot"])
    cls = deep.DEEPNet if hp["model"] == "DEEP" else deep.AsymEPNet
    nets = [cls(X.shape[1], hp["hidden"], Y.shape[1], one_hot=hp["one_hot"], rng=s) for s in seeds]
    hists = deep.fit_many(nets, X, Y, **{**hp["fit"], "epochs": epochs})
    solved = sum(h["final_error"] == 0 and not h["diverged"] for h in hists)
    return nets, hists, solved


def run(quick: bool, out_dir: Path, seed: int = 0) -> tuple[list[Row], list[Path]]:
    n_seeds, epochs = (4, 100) if quick else (20, 200)
    seeds = list(range(seed, seed + n_seeds))
    rows, curves = [], {}
    _, asym_h, asym_solved = _train("EP_asym", "XOR", seeds, epochs)
    asym_mse = float(np.median([h["mse"][h["epochs_run"] - 1] for h in asym_h]))
    curves["EP_asym XOR"] = [h["mse"] for h in asym_h]
    for label, name, gate, original in CONFIGS:
        _, hists, solved = _train(name, gate, seeds, epochs)
        curves[f"{name} {gate}"] = [h["mse"] for h in hists]
        task = f"{gate}, {name} notebook settings, {epochs} epochs, {n_seeds} seeds"
        if gate == "XOR":
            rows.append(Row(label, task, "solved seeds (free phase)", f"{solved}/{n_seeds}",
                            f"{asym_solved}/{n_seeds} on the right side of 0.5, median MSE {asym_mse:.3f}",
                            "asymmetric EP", original))
        else:
            rows.append(Row(label, task, "solved seeds (free phase)", f"{solved}/{n_seeds}", original=original))

    fig, ax = new_figure(figsize=(6, 3.6))
    for (name, mses), color in zip(curves.items(), ["tab:blue", "tab:red", "tab:green", "tab:orange"]):
        v = np.asarray(mses)
        ep = np.arange(1, v.shape[1] + 1)
        ax.plot(ep, np.nanmedian(v, axis=0), color=color, label=name)
        ax.fill_between(ep, np.nanquantile(v, 0.1, axis=0), np.nanquantile(v, 0.9, axis=0), color=color, alpha=0.2,
                        linewidth=0)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("free-phase MSE")
    ax.set_title(f"DEEP vs asymmetric EP on logic gates ({n_seeds} seeds, median and 10-90 %)", fontsize=9)
    ax.legend(fontsize=8)
    return rows, [save_figure(fig, out_dir, "deep_logic_mse")]
