"""Symmetric equilibrium propagation (Scellier & Bengio 2017) on MNIST-like data: test error per epoch.

Scellier's "net1": a 784-500-10 layered Hopfield-like network with hard-sigmoid units, trained with
EP - 20 free steps and 4 nudged steps of size ε = 0.5 per mini-batch of 20, β = 0.5 with a random
sign per batch, learning rates 0.1 (input → hidden) and 0.05 (hidden → output), persistent
particles (each training example keeps its state between epochs), 25 epochs on MNIST in the paper
(its exact test-error figure could not be checked here, so none is quoted). Here:

* ``--dataset fashion-mnist`` (default; 60,000 / 10,000, from the Debian package or a download);
* ``--dataset mnist``: MNIST (``nnlocal datasets --download mnist`` fetches it); where only its test
  files are present, nnlocal's documented fallback splits them into 8,000 training / 2,000 test images;
* ``--dataset digits``: scikit-learn's 8×8 digits (64-500-10), no download, seconds.

The test error is measured after every epoch by a fresh free phase from zero (``--eval-steps``).
Figures: the error curves, the relaxation residual of a test batch, and the first 100 hidden units'
input weights.

    python demos/eqprop_mnist.py --dataset fashion-mnist --epochs 5
    python demos/eqprop_mnist.py --dataset fashion-mnist --epochs 25 --seeds 3 --out runs/eqprop  # resumable
    nnlocal datasets --download mnist          # once: MNIST into the cache
    python demos/eqprop_mnist.py --dataset mnist --epochs 10
    python demos/eqprop_mnist.py --dataset digits --epochs 1
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from nnlocal import kernels
from nnlocal.cli import HelpFormatter, run, run_seeds
from nnlocal.methods.eqprop import SCELLIER_NET1, EPNet
from nnlocal.report import format_seconds, mean_std, new_figure, print_table, save_figure, write_index, write_text

CAPTIONS = {
    "error_curves": "Training error (end of the free phase, persistent particles) and test error (free phase "
                    "from zero) after each epoch: the gap between the two curves is how much the test-time "
                    "relaxation from zero loses against the persistent one.",
    "relaxation": "How the trained network settles on 200 test images: the summed squared state change per free "
                  "step from zero, on a log scale (values below 1e-30 drawn at 1e-30); a straight falling line "
                  "means geometric convergence, a plateau means the step budget is too short.",
    "input_weights": "The input weights of the first hidden units as images, each scaled to its own largest |w| "
                     "(red positive, blue negative): smooth stroke-like patterns are learned features, speckle is "
                     "still close to the random start.",
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "mnist", "digits"])
    p.add_argument("--epochs", type=int, default=SCELLIER_NET1["epochs"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=int, default=1,
                   help="number of seeds SEED, SEED+1, ...; with several, seed s goes to OUT/seed<s>/eqprop_mnist/ "
                        "and a seed finished before with the same arguments is skipped")
    p.add_argument("--out", default="nnlocal-out/", help="output folder (figures go to OUT/eqprop_mnist/)")
    p.add_argument("--hidden", type=int, nargs="+", default=SCELLIER_NET1["hidden_sizes"])
    p.add_argument("--batch-size", type=int, default=SCELLIER_NET1["batch_size"])
    p.add_argument("--n-free", type=int, default=SCELLIER_NET1["n_free"])
    p.add_argument("--n-nudged", type=int, default=SCELLIER_NET1["n_nudged"])
    p.add_argument("--eps", type=float, default=SCELLIER_NET1["eps"])
    p.add_argument("--beta", type=float, default=SCELLIER_NET1["beta"])
    p.add_argument("--lrs", type=float, nargs="+", default=list(SCELLIER_NET1["lrs"]),
                   help="one learning rate per weight matrix")
    p.add_argument("--cost", default="paper", choices=["paper", "code"],
                   help="C = ½‖y - s‖² (paper) or ‖y - s‖² (the released code: twice the nudging force)")
    p.add_argument("--no-persistent", action="store_true", help="start every free phase from zero")
    p.add_argument("--no-random-sign", action="store_true", help="always nudge with +β")
    p.add_argument("--eval-steps", type=int, default=100, help="free steps from zero when testing")
    p.add_argument("--max-train", type=int, default=None, help="use only the first N training examples")
    p.add_argument("--threads", type=int, default=1, help="BLAS threads")
    kernels.add_argument(p)
    return p.parse_args(argv)


def load(name: str):
    """(x_train, y_train, x_test, y_test, notes) flattened to (n, d) float32 in [0, 1]."""
    from nnlocal.data import load_train_test

    x_tr, y_tr, x_te, y_te, notes = load_train_test(name)
    if name == "digits":
        notes.append("digits: scikit-learn's first 1,500 images train, the last 297 test")
    flat = lambda a: np.ascontiguousarray(a.reshape(len(a), -1), dtype=np.float32)  # noqa: E731
    return flat(x_tr), y_tr.astype(np.int64), flat(x_te), y_te.astype(np.int64), notes


def main(argv=None):
    args = parse_args(argv)
    kernels.use(args.kernels)
    threadpool_limits(limits=args.threads)
    records = run_seeds(run_one, args, "eqprop_mnist/results.json")
    if len(records) > 1:
        s = [r["summary"] for r in records]
        print_table([{"seeds": f"{args.seed}..{args.seed + args.seeds - 1}",
                      "final test error %": mean_std([x["final_test_error_%"] for x in s]),
                      "best test error %": mean_std([x["best_test_error_%"] for x in s]),
                      "final train error %": mean_std([x["final_train_error_%"] for x in s]),
                      "training + tests per seed": format_seconds(np.mean([x["seconds_total"] for x in s]))}],
                    title=f"EP over seeds (mean ± std; {args.dataset}, {args.epochs} epoch(s))")
    return records


def run_one(args):
    """One seed: train, write OUT/eqprop_mnist/ (results.json last) and return the results."""
    out = Path(args.out) / "eqprop_mnist"
    out.mkdir(parents=True, exist_ok=True)
    x_tr, y_tr, x_te, y_te, notes = load(args.dataset)
    for n in notes:
        print("note:", n)
    if args.max_train:
        x_tr, y_tr = x_tr[: args.max_train], y_tr[: args.max_train]
    sizes = [x_tr.shape[1], *args.hidden, 10]
    if len(args.lrs) != len(sizes) - 1:
        raise SystemExit(f"--lrs needs {len(sizes) - 1} values for sizes {sizes}, got {args.lrs}")
    net = EPNet(sizes, rng=args.seed)
    print(f"{args.dataset}: {len(x_tr)} train / {len(x_te)} test; {net}; batch {args.batch_size}, "
          f"{args.n_free} free + {args.n_nudged} nudged steps, eps {args.eps}, beta {args.beta}, lrs {args.lrs}")

    n_batches = len(x_tr) // args.batch_size
    bar = tqdm(total=args.epochs, desc="EP epochs", unit="epoch")
    rows = []

    def on_epoch(epoch, net_, hist):
        rows.append({"epoch": epoch + 1, "train_error_%": hist["train_error"][-1],
                     "test_error_%": hist["test_error"][-1], "train_cost": hist["train_cost"][-1],
                     "epoch_s": hist["epoch_time"][-1]})
        bar.update(1)
        bar.set_postfix(test_err=f"{hist['test_error'][-1]:.2f}%")

    t0 = time.perf_counter()
    hist = net.fit(x_tr, y_tr, epochs=args.epochs, batch_size=args.batch_size, n_free=args.n_free,
                   n_nudged=args.n_nudged, eps=args.eps, beta=args.beta, lrs=args.lrs,
                   persistent=not args.no_persistent, random_sign=not args.no_random_sign, cost=args.cost,
                   X_test=x_te, y_test=y_te, eval_steps=args.eval_steps, callback=on_epoch)
    bar.close()
    total = time.perf_counter() - t0
    table = print_table(rows, title=f"EP {'-'.join(map(str, sizes))} on {args.dataset}")
    best = min(r["test_error_%"] for r in rows)
    summary = {"dataset": args.dataset, "sizes": sizes, "epochs": args.epochs,
               "final_test_error_%": rows[-1]["test_error_%"],
               "best_test_error_%": best, "final_train_error_%": rows[-1]["train_error_%"],
               "seconds_total": round(total, 1), "seconds_per_epoch_training": float(np.mean(hist["epoch_time"])),
               "batches_per_epoch": n_batches, "notes": notes, "args": vars(args)}
    print(f"final test error {rows[-1]['test_error_%']:.2f} % (best {best:.2f} %), "
          f"{format_seconds(summary['seconds_per_epoch_training'])} per training epoch, {format_seconds(total)} in all")

    from matplotlib.ticker import MaxNLocator

    figures = []
    fig, ax = new_figure(figsize=(6, 3.6))
    ep = np.arange(1, len(rows) + 1)
    ax.plot(ep, hist["train_error"], "o-", label="train (end of free phase, persistent)")
    ax.plot(ep, hist["test_error"], "s-", label=f"test ({args.eval_steps} free steps from 0)")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("error %")
    ax.set_title(f"EP {'-'.join(map(str, sizes))} on {args.dataset}", fontsize=9)
    ax.legend(fontsize=8)
    figures.append(save_figure(fig, out, "error_curves"))

    _, res = net.relax(x_te[:200], max(args.eval_steps, 100), args.eps, info=True)
    fig, ax = new_figure(figsize=(6, 3.4))
    ax.semilogy(np.arange(1, res.size + 1), np.maximum(res, 1e-30))
    ax.set_xlabel("free step (from zero)")
    ax.set_ylabel("Σ (Δs)² over 200 test images")
    ax.set_title("relaxation of the trained network", fontsize=9)
    figures.append(save_figure(fig, out, "relaxation"))

    side = int(round(np.sqrt(sizes[0])))
    if side * side == sizes[0]:   # the first 100 hidden units' input weights, tiled into one image
        W0 = net.weights[0]
        k, cols = min(100, sizes[1]), 10
        n_rows = int(np.ceil(k / cols))
        tile = np.full((n_rows * (side + 1), cols * (side + 1)), np.nan)
        for i in range(k):
            w = W0[:, i].reshape(side, side)
            r, c = divmod(i, cols)
            tile[r * (side + 1):r * (side + 1) + side, c * (side + 1):c * (side + 1) + side] = w / (np.abs(w).max() or 1)
        fig, ax = new_figure(figsize=(7, 0.7 * n_rows + 0.6))
        ax.imshow(tile, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
        ax.axis("off")
        ax.set_title(f"input weights of the first {k} hidden units (each scaled to its max |w|)", fontsize=9)
        figures.append(save_figure(fig, out, "input_weights"))

    write_index(out, figures, {"Per epoch": table}, title=f"Equilibrium propagation on {args.dataset}",
                captions=CAPTIONS)
    record = {"args": vars(args), "summary": summary, "per_epoch": rows}
    text = json.dumps(record, indent=1, default=float)
    write_text(out / "results.json", text)   # last: a finished run
    return json.loads(text)                # what a rerun reads back when it skips this seed


if __name__ == "__main__":
    run(main)
