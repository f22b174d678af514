"""PAN vs LeNet-5: the Perceptron Activation Network notebook, from scratch.

The experiment of bdschrisk/Perceptron-Activation-Network: LeNet-5 against "Tron", the same
network with its two hidden fully connected layers replaced by Perceptron Activation layers (a
linear student whose weights are switched on and off by a frozen random teacher, one gate per
weight per mini-batch; no ReLU between the two PAN layers). The notebook's recipe, as it ran:

* SGD, lr 0.003, no momentum, batch 64, **no shuffling**, NLL loss on log-softmax outputs;
* inputs normalised as (x - 0.5) / 0.5;
* the step schedule lr_e = 0.003 · 0.5^floor(e / 10) (written out, since StepLR's epoch
  convention changed after PyTorch 1.0);
* PAN layers initialised as in the MNIST notebook: every weight and bias ~ N(0, 1) (``--init readme``
  gives the README's biases of ones).

The original's MNIST notebook reports 88.08 % (Tron) vs 20.73 % (LeNet-5) test accuracy after
epoch 1. ``--ablations`` adds the controls that explain the gap (see ``docs/pan.md``):
LeNet-5 whose fc1/fc2 get the same N(0, 1) initialisation, Tron with every gate open (a
purely linear head), and the batch dependence of the faithful evaluation (test accuracy of the
trained Tron with evaluation batches of 1, 16, 64 and 1000, and with a shuffled test order).

Every model is built from the same seed, so all of them start from identical convolutions.

    python demos/pan_lenet5.py --dataset fashion-mnist --epochs 5
    python demos/pan_lenet5.py --dataset fashion-mnist --epochs 50 --seeds 3 --out runs/pan50   # hours; resumable
    python demos/pan_lenet5.py --dataset fashion-mnist --epochs 1 --ablations
    nnlocal datasets --download mnist                                        # once: MNIST into the cache
    python demos/pan_lenet5.py --dataset mnist
    python demos/pan_lenet5.py --dataset digits --epochs 1                   # seconds, no download
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from nnlocal import kernels, metrics, nn, optim
from nnlocal.cli import HelpFormatter, run, run_seeds
from nnlocal.data import DataLoader, load_train_test, normalize
from nnlocal.methods import pan
from nnlocal.report import format_seconds, mean_std, new_figure, print_table, save_figure, write_index, write_text

#: the original's saved MNIST outputs (Perceptron-Activation-Network-MNIST.ipynb), test accuracy %
ORIGINAL_MNIST_EPOCH1 = {"LeNet-5": 20.73, "Tron (PAN)": 88.08}
CAPTIONS = {
    "pan_lenet5_curves": "Test accuracy (solid) and running training accuracy (dashed) per epoch for every model: "
                         "at the notebook's small learning rate LeNet-5 starts slowly while Tron (PAN) learns from "
                         "the first epoch; the ablations say which of PAN's differences (initialisation, gates) "
                         "make the gap. On MNIST the stars mark the original's epoch-1 numbers.",
    "pan_batch_dependence": "The trained Tron's test accuracy when the same test set is evaluated in batches of "
                            "different sizes or order: PAN's gate depends on the whole batch, so a prediction "
                            "depends on the other images in its batch (the faithful quirk).",
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "mnist", "digits"],
                   help="digits needs no download; mnist falls back to a split of its test set when offline")
    p.add_argument("--epochs", type=int, default=5, help="the MNIST notebook ran 50")
    p.add_argument("--seed", type=int, default=7, help="seed of every model's initialisation (the notebook used 7)")
    p.add_argument("--seeds", type=int, default=1,
                   help="number of seeds SEED, SEED+1, ...; with several, seed s goes to OUT/seed<s>/pan_lenet5/ "
                        "and a seed finished before with the same arguments is skipped")
    p.add_argument("--out", default="nnlocal-out/", help="output folder (results go to OUT/pan_lenet5/)")
    p.add_argument("--lr", type=float, default=0.003, help="SGD learning rate (halved every 10 epochs)")
    p.add_argument("--batch-size", type=int, default=64, help="training and evaluation batch")
    p.add_argument("--init", default="notebook", choices=list(pan.INITS), help="PAN initialisation")
    p.add_argument("--ablations", action="store_true",
                   help="also train LeNet-5 with N(0,1) fc init and Tron with all gates open, "
                        "and measure how Tron's test accuracy depends on the evaluation batch")
    p.add_argument("--eval-batches", default="1,16,64,1000", help="evaluation batch sizes for --ablations")
    p.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS threads (these small GEMMs run fastest on one; 0 keeps the library default)")
    kernels.add_argument(p)
    return p.parse_args(argv)


def learning_rate(base_lr: float, epoch: int) -> float:
    """The notebook's StepLR(step_size=10, gamma=0.5), epochs counted from 0."""
    return base_lr * 0.5 ** (epoch // 10)


def train_epoch(model, opt, loader, loss_fn, desc: str):
    """One epoch of plain SGD; returns (train accuracy % seen during the epoch, summed batch losses)."""
    model.train()
    correct, total_loss, seen = 0, 0.0, 0
    for xb, yb in tqdm(loader, desc=desc, unit="batch", leave=False, mininterval=1.0):
        opt.zero_grad()
        log_probs = model(xb)
        total_loss += loss_fn(log_probs, yb)        # the notebook's "Average loss" is this sum
        model.backward(loss_fn.backward())
        opt.step()
        correct += int(np.sum(log_probs.argmax(axis=1) == yb))
        seen += len(yb)
    return 100.0 * correct / seen, total_loss


def main(argv=None):
    args = parse_args(argv)
    kernels.use(args.kernels)
    if args.threads:
        threadpool_limits(limits=args.threads)
    records = run_seeds(run_one, args, "pan_lenet5/results.json")
    if len(records) > 1:
        rows = [{"model": name, "seeds": f"{args.seed}..{args.seed + args.seeds - 1}",
                 "epoch 1 %": mean_std([r["history"][name]["test"][0] for r in records]),
                 f"epoch {args.epochs} %": mean_std([r["history"][name]["test"][-1] for r in records]),
                 "best %": mean_std([max(r["history"][name]["test"]) for r in records]),
                 "wall per seed": format_seconds(np.mean([r["wall_s"] for r in records]))}
                for name in records[0]["history"]]
        print_table(rows, title=f"Test accuracy over seeds (mean ± std; {args.dataset}, {args.epochs} epoch(s))")
    return records


def run_one(args):
    """One seed: train every model, write OUT/pan_lenet5/ (results.json last) and return the results."""
    t_start = time.perf_counter()
    out = Path(args.out) / "pan_lenet5"
    out.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ data
    x_train, y_train, x_test, y_test, notes = load_train_test(args.dataset)
    for note in notes:
        print("note:", note)
    if args.limit:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
    x_train, x_test = normalize(x_train, 0.5, 0.5), normalize(x_test, 0.5, 0.5)   # to [-1, 1]
    channels, size = x_train.shape[1], x_train.shape[2]
    print(f"{args.dataset}: {len(x_train)} train / {len(x_test)} test images of {channels}x{size}x{size}; "
          f"SGD lr {args.lr}, batch {args.batch_size}, no shuffling, {args.epochs} epoch(s)")

    # ------------------------------------------------------------------ models
    runs = {
        "LeNet-5": pan.lenet5(channels, size, 10, rng=args.seed),
        "Tron (PAN)": pan.tron(channels, size, 10, init=args.init, rng=args.seed),
    }
    if args.ablations:
        runs["LeNet-5, N(0,1) fc init"] = pan.lenet5(channels, size, 10, fc_init="normal", rng=args.seed)
        runs["Tron, all gates open"] = pan.tron(channels, size, 10, gate="open", init=args.init, rng=args.seed)
    opts = {name: optim.SGD(model.parameters(), lr=args.lr) for name, model in runs.items()}
    loss_fn = nn.NLLLoss()
    loader = DataLoader(x_train, y_train, args.batch_size, shuffle=False)
    history = {name: {"train": [], "test": [], "loss": [], "seconds": [], "open_gates": []} for name in runs}

    # ------------------------------------------------------------------ training, all models epoch by epoch
    rows = []
    for epoch in range(args.epochs):
        lr = learning_rate(args.lr, epoch)
        for name, model in runs.items():
            for group in opts[name].param_groups:
                group["lr"] = lr
            t0 = time.perf_counter()
            train_acc, loss_sum = train_epoch(model, opts[name], loader, loss_fn, f"epoch {epoch + 1} {name}")
            seconds = time.perf_counter() - t0
            h = history[name]
            h["train"].append(train_acc)
            h["loss"].append(loss_sum)
            h["seconds"].append(seconds)
            # in batches of the training batch, in order: with the faithful batch gate the result
            # depends on the batch size and on which samples share a batch
            h["test"].append(metrics.evaluate(model, x_test, y_test, args.batch_size).percent)
            stats = model.gate_stats() if isinstance(model, pan.ConvNet) and pan.pan_layers(model) else {}
            h["open_gates"].append({k: v["open_fraction"] for k, v in stats.items()})
        row = {"epoch": epoch + 1, "lr": lr}
        row.update({f"{name} test %": history[name]["test"][-1] for name in runs})
        rows.append(row)
        print(" | ".join([f"epoch {epoch + 1:2d}  lr {lr:.4g}"] +
                         [f"{name}: test {history[name]['test'][-1]:.2f} % (train {history[name]['train'][-1]:.2f} %, "
                          f"{history[name]['seconds'][-1]:.0f} s)" for name in runs]), flush=True)

    table = print_table(rows, title=f"Test accuracy per epoch ({args.dataset}, eval batch {args.batch_size})")
    print(f"original (MNIST notebook, epoch 1): LeNet-5 {ORIGINAL_MNIST_EPOCH1['LeNet-5']} %, "
          f"Tron {ORIGINAL_MNIST_EPOCH1['Tron (PAN)']} %")
    tables = {"Test accuracy per epoch": table}

    # ------------------------------------------------------------------ ablation: batch-dependent evaluation
    batch_rows = []
    if args.ablations:
        model = runs["Tron (PAN)"]
        for b in [int(v) for v in args.eval_batches.split(",")]:
            if b == 1:
                # a batch gate with B = 1 is a per-sample gate: compute it 500 samples at a time
                with pan.using_gate(model, "sample"):
                    acc = metrics.evaluate(model, x_test, y_test, 500).percent
            else:
                acc = metrics.evaluate(model, x_test, y_test, b).percent
            batch_rows.append({"eval batch": b, "order": "as given", "Tron test %": acc})
        perm = np.random.default_rng(args.seed).permutation(len(x_test))
        batch_rows.append({"eval batch": args.batch_size, "order": "shuffled",
                           "Tron test %": metrics.evaluate(model, x_test[perm], y_test[perm], args.batch_size).percent})
        tables["Batch dependence of Tron's evaluation"] = print_table(
            batch_rows, title="Batch dependence of the trained Tron's test accuracy (faithful batch gate)")

    # ------------------------------------------------------------------ figures and results
    figures = []
    fig, ax = new_figure(figsize=(9.5, 4.2))
    epochs = np.arange(1, args.epochs + 1)
    for i, (name, h) in enumerate(history.items()):
        ax.plot(epochs, h["test"], "-o", ms=4, color=f"C{i}", label=f"{name} test")
        ax.plot(epochs, h["train"], "--x", ms=5, color=f"C{i}", alpha=0.6, label=f"{name} train (running)")
    if args.dataset == "mnist":
        ax.scatter([1, 1], list(ORIGINAL_MNIST_EPOCH1.values()), marker="*", s=120, color="k",
                   label="original, epoch 1 (MNIST)", zorder=5)
    ax.set_xlim(0.5, args.epochs + 0.5)
    ax.set_xticks(range(1, args.epochs + 1, max(1, args.epochs // 10)))
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy %")
    ax.set_title(f"PAN (Tron) vs LeNet-5 on {args.dataset}, notebook recipe")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))   # beside the curves
    ax.grid(alpha=0.3)
    figures.append(save_figure(fig, out, "pan_lenet5_curves"))
    if batch_rows:
        fig, ax = new_figure(figsize=(6, 3.5))
        labels = [f"{r['eval batch']}" + (" shuffled" if r["order"] == "shuffled" else "") for r in batch_rows]
        ax.bar(labels, [r["Tron test %"] for r in batch_rows], color="C1")
        ax.set_xlabel("evaluation batch size")
        ax.set_ylabel("test accuracy %")
        ax.set_title("Trained Tron: test accuracy vs evaluation batch", fontsize=10)
        for i, r in enumerate(batch_rows):
            ax.text(i, r["Tron test %"], f"{r['Tron test %']:.2f}", ha="center", va="bottom", fontsize=8)
        figures.append(save_figure(fig, out, "pan_batch_dependence"))

    write_index(out, figures, tables, title=f"PAN vs LeNet-5 ({args.dataset})", captions=CAPTIONS)
    results = {"args": vars(args), "history": history, "batch_dependence": batch_rows,
               "original_mnist_epoch1": ORIGINAL_MNIST_EPOCH1, "wall_s": round(time.perf_counter() - t_start, 1)}
    write_text(out / "results.json", json.dumps(results, indent=1))     # last: a finished run (--seeds skips it)
    print(f"\nresults: {out / 'results.json'}; figures: {', '.join(str(f) for f in figures)}")
    return results


if __name__ == "__main__":
    run(main)
