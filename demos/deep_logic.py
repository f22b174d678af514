"""DEEP, DEEP one-hot and asymmetric EP on logic gates: success rates over seeds.

The three notebooks of the ESANN 2020 DEEP paper ran single, unseeded networks on XOR. This demo
trains every model on XOR, AND, OR, NOT and ID over ``--seeds`` seeds with the notebooks' own
hyperparameters (docs/deep.md) and reports *rates*:

* **DEEP**: complete directed graph 3-5-1, β 10, dt_W 100, STDP with β0 = 0, β1 = 1;
* **DEEP_oh**: 3-2-2 with one-hot outputs, β 1, dt_W 200;
* **EP_asym**: the asymmetric-EP baseline 3-5-1, β 10, dt_W 1;

all with T1 = T2 = 1000 Euler steps of dt 0.05 per phase and 200 full-batch epochs. A net counts as
solved when its free-phase classification error at the last epoch is 0 (and it did not diverge).
Then DEEP on XOR again with L1 + Boltzmann sparsification (faithful, and with the persistent-mask
extension), counting the edges kept.

Figures: MSE across seeds (median and 10-90 % band), ‖ΔW‖₁ per epoch, relaxation convergence, the
weight heat-map, the network graph, the decision map over [0, 1]², and the edges kept.

    python demos/deep_logic.py                      # 20 seeds x 3 models x 5 gates (about a minute)
    python demos/deep_logic.py --seeds 2 --epochs 5 # seconds
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from nnlocal import kernels
from nnlocal.cli import HelpFormatter, run
from nnlocal.methods import deep
from nnlocal.report import new_figure, print_table, save_figure, write_index, write_text

MODELS = {
    "DEEP": deep.NOTEBOOK_HPARAMS["DEEP"],
    "DEEP_oh": deep.NOTEBOOK_HPARAMS["DEEP_oh"],
    "EP_asym": deep.NOTEBOOK_HPARAMS["EP_asym"],
}
GATES = ["XOR", "AND", "OR", "NOT", "ID"]
#: what the notebooks (single runs) and an independent NumPy re-run (seeds 0..N-1) found (docs/deep.md)
REFERENCE = {
    ("DEEP", "XOR"): "notebook: 1 run learned (2019), HEAD run diverged; independent re-run 2/10",
    ("DEEP_oh", "XOR"): "notebook: 1 run learned; independent re-run 4/10",
    ("EP_asym", "XOR"): "notebook: free phase fails (err 75 %, MSE 0.125); independent re-run MSE ~0.12 in 10/10",
    ("DEEP", "AND"): "independent re-run 5/5 (solved by epoch 1-10)",
}

#: where every legend of a one-panel figure goes: beside the axes, off the data
LEGEND_BESIDE = {"loc": "center left", "bbox_to_anchor": (1.02, 0.5)}
CAPTIONS = {
    "mse_across_seeds": "Free-phase MSE per epoch for every model (rows) and gate (columns), the seeds split into "
                        "solved (green, dashed) and not solved (grey): median and 25-75 % band, counts in the "
                        "legends, MSE below 1e-4 drawn at 1e-4. XOR is the hard case: few DEEP seeds solve it, "
                        "and asymmetric EP's never get its MSE below 0.12.",
    "dW_l1": "Size of each epoch's weight update on the focus gate (median and 10-90 % over seeds, log scale, "
             "values below 1e-8 drawn at 1e-8): DEEP keeps changing its weights, asymmetric EP's updates shrink "
             "steadily.",
    "relaxation_convergence": "How fast the state settles within one epoch (first seed, last epoch): the squared "
                              "state change per Euler step, free phase then nudged phase (dashed line), values "
                              "below 1e-30 drawn at 1e-30; a flat line high up means the dynamics never settle.",
    "weights_heatmap": "The trained weight matrix of one seed per model (a solved one where there is one): row = "
                       "from, column = to, red excitatory, blue inhibitory; DEEP's matrix is not symmetric.",
    "network_graph": "The same networks as graphs: inputs left, hidden units middle, outputs right, arrow width "
                     "proportional to |w|, red excitatory, blue inhibitory.",
    "decision_map": "The free-phase output over the unit square for the same seeds, with the four training "
                    "points on top in their target colours: a solved XOR net colours the corners like the points.",
    "sparsification_edges": "Edges left after L1 + Boltzmann sparsification, per epoch (median and 10-90 % over "
                            "seeds), the faithful rule against the persistent-mask extension.",
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--dataset", "--gates", dest="gates", default=",".join(GATES),
                   help="comma-separated gates (XOR, AND, OR, NOT, ID)")
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated: DEEP, DEEP_oh, EP_asym")
    p.add_argument("--seeds", type=int, default=20, help="seeds per (model, gate)")
    p.add_argument("--seed", type=int, default=0, help="first seed (seeds are seed .. seed + seeds - 1)")
    p.add_argument("--epochs", type=int, default=200, help="training epochs per run")
    p.add_argument("--T", type=int, default=1000, help="Euler steps per phase (T1 = T2)")
    p.add_argument("--no-sparse", action="store_true", help="skip the L1 + sparsification run")
    p.add_argument("--grid", type=int, default=51, help="decision-map resolution per axis (the notebooks used 101)")
    p.add_argument("--out", default="nnlocal-out/", help="output folder (figures go to OUT/deep_logic/)")
    kernels.add_argument(p)
    return p.parse_args(argv)


def make_nets(model: str, gate: str, seeds):
    hp = MODELS[model]
    X, Y = deep.logic_gate(gate, one_hot=hp["one_hot"])
    cls = deep.DEEPNet if hp["model"] == "DEEP" else deep.AsymEPNet
    n_out = 2 if hp["one_hot"] else 1
    nets = [cls(X.shape[1], hp["hidden"], n_out, one_hot=hp["one_hot"], rng=s) for s in seeds]
    return nets, X, Y


def band(ax, values, label, color, log=True, floor=1e-8):
    """Median and 10-90 % quantile band across seeds (rows) per epoch (columns); on a log axis values
    below ``floor`` (exact zeros of a solved net) are drawn at the floor."""
    v = np.asarray(values, dtype=float)
    if log:
        v = np.maximum(v, floor)
    ep = np.arange(1, v.shape[1] + 1)
    with np.errstate(all="ignore"):
        med = np.nanmedian(v, axis=0)
        lo, hi = np.nanquantile(v, 0.1, axis=0), np.nanquantile(v, 0.9, axis=0)
    ax.plot(ep, med, color=color, label=label)
    ax.fill_between(ep, lo, hi, color=color, alpha=0.2, linewidth=0)
    if log:
        ax.set_yscale("log")


def draw_graph(ax, net, title):
    """The directed network with matplotlib only: inputs left, hidden middle, outputs right;
    arrow width ~ |W|, red = excitatory, blue = inhibitory; curved so i->j and j->i stay apart."""
    from matplotlib.patches import FancyArrowPatch

    n_x, n_h, n_out = net.n_x, net.n_free - net.n_out, net.n_out
    pos = {}
    for i in range(n_x):
        pos[i] = (0.0, 1.0 - (i + 0.5) / n_x)
    for k in range(n_h):
        pos[n_x + k] = (1.0, 1.0 - (k + 0.5) / n_h)
    for k in range(n_out):
        pos[n_x + n_h + k] = (2.0, 1.0 - (k + 0.5) / n_out)
    names = [f"x{i + 1}" for i in range(n_x - 1)] + ["b"] + [f"h{k + 1}" for k in range(n_h)] + \
            [f"y{k + 1}" if n_out > 1 else "y" for k in range(n_out)]
    W = net.W
    wmax = np.abs(W).max() or 1.0
    for i, j in zip(*np.nonzero(np.abs(W) > 0.02 * wmax)):
        a = FancyArrowPatch(pos[i], pos[j], connectionstyle="arc3,rad=0.25", arrowstyle="-|>", mutation_scale=9,
                            lw=0.4 + 3.0 * abs(W[i, j]) / wmax, color="tab:red" if W[i, j] > 0 else "tab:blue",
                            alpha=0.65, shrinkA=9, shrinkB=9)
        ax.add_patch(a)
    for n, (x, y) in pos.items():
        ax.scatter([x], [y], s=380, color="white", edgecolors="black", zorder=3)
        ax.text(x, y, names[n], ha="center", va="center", fontsize=8, zorder=4)
    ax.set_xlim(-0.3, 2.3)
    ax.set_ylim(-0.05, 1.05)
    ax.set_xticks([0, 1, 2], ["inputs", "hidden", "outputs"])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)


def main(argv=None):
    args = parse_args(argv)
    kernels.use(args.kernels)
    out = Path(args.out) / "deep_logic"
    out.mkdir(parents=True, exist_ok=True)
    gates = [g.strip().upper() for g in args.gates.split(",") if g.strip()]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    for m in models:
        if m not in MODELS:
            raise SystemExit(f"unknown model {m!r}; choose from {', '.join(MODELS)}")
    seeds = list(range(args.seed, args.seed + args.seeds))
    colors = {"DEEP": "tab:red", "DEEP_oh": "tab:green", "EP_asym": "tab:blue"}

    results, runs = [], {}
    bar = tqdm([(m, g) for m in models for g in gates], desc="DEEP logic gates", unit="config")
    for model, gate in bar:
        bar.set_postfix_str(f"{model} {gate}")
        nets, X, Y = make_nets(model, gate, seeds)
        fit_hp = {**MODELS[model]["fit"], "epochs": args.epochs, "T1": args.T, "T2": args.T}
        t0 = time.perf_counter()
        hists = deep.fit_many(nets, X, Y, **fit_hp)
        seconds = time.perf_counter() - t0
        runs[(model, gate)] = (nets, hists, X, Y)
        solved = [h["final_error"] == 0 and not h["diverged"] for h in hists]
        nudged_ok = [h["error_nudged"][h["epochs_run"] - 1] == 0 if h["epochs_run"] else False for h in hists]
        first = [h["first_solved_epoch"] + 1 for h, s in zip(hists, solved) if s]
        final_mse = [h["mse"][h["epochs_run"] - 1] for h in hists if h["epochs_run"]]
        confident = [ok and h["mse"][h["epochs_run"] - 1] < 0.05 for h, ok in zip(hists, solved)]
        results.append({
            "model": model, "gate": gate, "seeds": len(seeds), "solved": int(sum(solved)),
            "rate_%": round(100.0 * sum(solved) / len(seeds), 1),
            "solved_mse<0.05": int(sum(confident)),
            "median_final_mse": float(np.median(final_mse)) if final_mse else float("nan"),
            "median_first_solved_epoch": float(np.median(first)) if first else None,
            "nudged_phase_solved": int(sum(nudged_ok)),
            "diverged": int(sum(h["diverged"] for h in hists)),
            "seconds": round(seconds, 2),
            "reference": REFERENCE.get((model, gate), "-"),
        })
    cols = ["model", "gate", "seeds", "solved", "rate_%", "solved_mse<0.05", "median_final_mse",
            "median_first_solved_epoch",
            "nudged_phase_solved", "diverged", "seconds", "reference"]
    table = print_table(results, cols, title=f"Success rates ({args.epochs} epochs, T1 = T2 = {args.T}, "
                                              f"seeds {seeds[0]}..{seeds[-1]})")
    tables = {"Success rates": table}
    figures = []

    # ---------------------------------------------------------------- MSE across seeds, per model and gate
    from nnlocal.tour.deep import mse_figure

    outcome = {key: (hists, [h["final_error"] == 0 and not h["diverged"] for h in hists])
               for key, (_, hists, _, _) in runs.items()}
    fig = mse_figure(outcome, [[(m, g) for g in gates] for m in models],
                     f"Free-phase MSE over {len(seeds)} seeds: median and 25-75 % of the solved and the unsolved seeds")
    figures.append(save_figure(fig, out, "mse_across_seeds"))

    focus = "XOR" if "XOR" in gates else gates[0]
    # ---------------------------------------------------------------- ||dW||_1 per epoch
    fig, ax = new_figure(figsize=(7.2, 3.6))
    for model in models:
        band(ax, [h["dW_l1"] for h in runs[(model, focus)][1]], model, colors[model])
    ax.set_xlabel("epoch")
    ax.set_ylabel("‖ΔW‖₁ of the update")
    ax.set_title(f"{focus}: size of the weight update (median, 10-90 % over seeds)", fontsize=9)
    ax.legend(fontsize=8, **LEGEND_BESIDE)
    figures.append(save_figure(fig, out, "dW_l1"))

    # ---------------------------------------------------------------- relaxation convergence
    fig, ax = new_figure(figsize=(7.2, 3.6))
    for model in models:
        h = runs[(model, focus)][1][0]
        trace = np.concatenate([h["trace_free"], h["trace_nudged"]])
        if trace.size:
            ax.semilogy(np.arange(1, trace.size + 1), np.maximum(trace, 1e-30), color=colors[model], label=model)
    ax.axvline(args.T, color="gray", ls="--", lw=0.8)
    ax.set_xlabel("Euler step (free phase, then nudged phase)")
    ax.set_ylabel("Σ (Δs/dt)²")
    ax.set_title(f"{focus}: relaxation in the last epoch (seed {seeds[0]})", fontsize=9)
    ax.legend(fontsize=8, **LEGEND_BESIDE)
    figures.append(save_figure(fig, out, "relaxation_convergence"))

    # ---------------------------------------------------------------- heat-map, graph, decision map
    def pick(model):
        nets, hists, _, _ = runs[(model, focus)]
        ok = [k for k, h in enumerate(hists) if h["final_error"] == 0 and not h["diverged"]]
        k = ok[0] if ok else 0
        return nets[k], seeds[k], bool(ok)

    fig, axes = new_figure(1, len(models), figsize=(4.2 * len(models), 3.8), squeeze=False)
    for ax, model in zip(axes[0], models):
        net, sd, ok = pick(model)
        lim = np.abs(net.W).max() or 1.0
        im = ax.imshow(net.W, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(f"{model} {focus}, seed {sd} ({'solved' if ok else 'not solved'})", fontsize=9)
        ax.set_xlabel("to")
        ax.set_ylabel("from")
        fig.colorbar(im, ax=ax, shrink=0.8)
    figures.append(save_figure(fig, out, "weights_heatmap"))

    fig, axes = new_figure(1, len(models), figsize=(4.4 * len(models), 3.8), squeeze=False)
    for ax, model in zip(axes[0], models):
        net, sd, ok = pick(model)
        draw_graph(ax, net, f"{model} {focus}, seed {sd}: {net.edges} edges")
    figures.append(save_figure(fig, out, "network_graph"))

    if runs[(models[0], focus)][2].shape[1] == 2:
        g = np.linspace(0, 1, args.grid)
        grid = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
        fig, axes = new_figure(1, len(models), figsize=(4.0 * len(models), 3.6), squeeze=False)
        for ax, model in zip(axes[0], models):
            net, sd, ok = pick(model)
            out_ = net.output(grid, rng=0)
            z = out_[:, 1] - out_[:, 0] if net.one_hot else out_[:, 0]
            im = ax.imshow(z.reshape(args.grid, args.grid), origin="lower", extent=(0, 1, 0, 1), cmap="coolwarm",
                           vmin=-1 if net.one_hot else 0, vmax=1)
            X, Y = runs[(model, focus)][2:]
            lab = Y.argmax(1) if net.one_hot else Y[:, 0]
            ax.scatter(X[:, 0], X[:, 1], c=lab, cmap="coolwarm", edgecolors="black", s=110, vmin=0, vmax=1,
                       linewidths=1.5, clip_on=False, zorder=3)
            ax.set_title(f"{model} {focus}, seed {sd}: " + ("y1 - y0" if net.one_hot else "free output y"),
                         fontsize=9)
            ax.set_xlabel("x1")
            ax.set_ylabel("x2")
            fig.colorbar(im, ax=ax, shrink=0.8)
        figures.append(save_figure(fig, out, "decision_map"))

    # ---------------------------------------------------------------- Gershgorin diagnostics of the solved nets
    diag_rows = []
    for model in models:
        nets, hists, _, _ = runs[(model, focus)]
        gs = [n.gershgorin() for n in nets]
        solved = [h["final_error"] == 0 and not h["diverged"] for h in hists]
        diag_rows.append({
            "model": model, "gate": focus,
            "sufficient_conditions_hold": f"{sum(g['sufficient'] for g in gs)}/{len(gs)}",
            "... among solved": f"{sum(g['sufficient'] for g, s in zip(gs, solved) if s)}/{sum(solved)}",
            "median_rows_fail": float(np.median([g["rows_fail"] for g in gs])),
            "linearly_stable (max Re λ < 0)": f"{sum(g['spectral_abscissa'] < -1e-9 for g in gs)}/{len(gs)}",
            "median max Re λ": float(np.median([g["spectral_abscissa"] for g in gs])),
        })
    tables["Gershgorin diagnostics"] = print_table(diag_rows, title="Gershgorin diagnostics (linearised free dynamics)")

    # ---------------------------------------------------------------- L1 + sparsification
    sparse_rows = []
    if not args.no_sparse and "DEEP" in models:
        fig, ax = new_figure(figsize=(7.2, 3.6))
        n_possible = None
        for variant, persistent, color in (("faithful", False, "tab:purple"), ("persistent mask", True, "tab:orange")):
            nets, X, Y = make_nets("DEEP", focus, seeds)
            n_possible = int(nets[0].mask.sum())
            hp = {**MODELS["DEEP"]["fit"], "epochs": args.epochs, "T1": args.T, "T2": args.T}
            hists = deep.fit_many(nets, X, Y, regularized=True, sparse=True, persistent_mask=persistent,
                                  **deep.SPARSITY_HPARAMS, **hp)
            solved = [h["final_error"] == 0 and not h["diverged"] for h in hists]
            edges = [n.edges for n in nets]
            sparse_rows.append({
                "run": f"DEEP {focus}, L1 + sparsification ({variant})", "seeds": len(seeds),
                "solved": int(sum(solved)), "rate_%": round(100.0 * sum(solved) / len(seeds), 1),
                "edges_kept_median": float(np.median(edges)), "edges_kept_range": f"{min(edges)}-{max(edges)}",
                "edges_kept_solved": ",".join(str(e) for e, s in zip(edges, solved) if s) or "-",
                "of_possible": n_possible,
                "reference": "independent re-run (faithful): 1/5 solved, 21-42 of 48 edges kept" if not persistent else
                             "extension",
            })
            band(ax, [h["edges"] for h in hists], variant, color, log=False)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"non-zero edges (of {n_possible})")
        ax.set_title(f"DEEP {focus} with L1 + Boltzmann sparsification (median, 10-90 % over seeds)", fontsize=9)
        ax.legend(fontsize=8, **LEGEND_BESIDE)
        figures.append(save_figure(fig, out, "sparsification_edges"))
        tables["L1 + sparsification"] = print_table(sparse_rows, title="L1 + sparsification")

    write_text(out / "results.json", json.dumps({"args": vars(args), "success": results, "gershgorin": diag_rows,
                                                  "sparsification": sparse_rows}, indent=1, default=float))
    index = write_index(out, figures, tables, title="DEEP / asymmetric EP on logic gates", captions=CAPTIONS)
    print(f"\nfigures and tables: {index}")
    return results


if __name__ == "__main__":
    run(main)
