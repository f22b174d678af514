"""Counter-Hebb vs backprop: the BU-TD FC-500 net learning with its own top-down network.

The original's MNIST / Fashion-MNIST configs (royabel/Top-Down-Networks): Flatten ->
BUTDLinear(784 -> 500) + ReLU -> head 500 -> 10, cross-entropy, Adam(1e-4), batch 20, lr × 0.95
per epoch. Counter-Hebb (CH) learning sends the output error down the top-down (TD) network and
updates each synapse from its two neurons' activity (``butd.counter_hebb_``); the baseline is
backprop through the same bottom-up network (its hand-written ``backward``). Runs (``--runs``):

* ``bp``           backprop (the baseline);
* ``ch-shared``    CH with shared TD weights (W̄ = Wᵀ): the same gradients as backprop, exactly
                   (the table reports the largest CH − BP gradient difference on the first batch);
* ``ch-separate``  CH with separate TD weights learnt with the same increment (the original's
                   "asymmetric" runs; W − W̄ᵀ stays at its initial value, see docs/butd.md);
* ``ch-symmetric`` separate W̄ initialised to Wᵀ;  ``ch-fa`` frozen random W̄ (feedback alignment).

Every run starts from the same W and b (seed ``--seed``) and sees the same batches.

    python demos/butd_counter_hebb.py --dataset fashion-mnist --epochs 5
    nnlocal datasets --download mnist                                               # once: MNIST into the cache
    python demos/butd_counter_hebb.py --dataset mnist
    python demos/butd_counter_hebb.py --dataset digits --epochs 1                   # seconds, no download
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from nnlocal import kernels, metrics, optim
from nnlocal.cli import HelpFormatter, run
from nnlocal.data import MNIST_MEAN, MNIST_STD, DataLoader, load_train_test, normalize
from nnlocal.methods import butd
from nnlocal.report import new_figure, print_table, save_figure, write_index, write_text

RUNS = {"bp": ("shared", "backprop"), "ch-shared": ("shared", "ch"), "ch-separate": ("separate", "ch"),
        "ch-symmetric": ("symmetric", "ch"), "ch-fa": ("fa", "ch")}
CAPTIONS = {"butd_counter_hebb_curves": "Test accuracy and running training loss per epoch of the same FC net "
                                        "trained from the same weights on the same batches: Counter-Hebb with "
                                        "shared top-down weights (dashed) lies exactly on backprop; the other "
                                        "top-down variants show what asymmetric feedback costs."}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "mnist", "digits"])
    p.add_argument("--epochs", type=int, default=5, help="the original trained 50")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="nnlocal-out/", help="output folder (results go to OUT/butd_counter_hebb/)")
    p.add_argument("--runs", default="bp,ch-shared,ch-separate", help=f"comma-separated, from {list(RUNS)}")
    p.add_argument("--hidden", type=int, default=500)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--gamma", type=float, default=0.95, help="lr factor per epoch")
    p.add_argument("--batch-size", type=int, default=20)
    p.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    kernels.add_argument(p)
    return p.parse_args(argv)


def learn_step(net, opt, x, y, learning: str) -> tuple[float, int]:
    """One mini-batch: forward, output gradient, CH or backprop, Adam step. Returns (loss, #correct)."""
    opt.zero_grad()
    logits = net(x)
    loss, grad_logits = butd.loss_and_grad("cross_entropy", logits, y)
    if learning == "ch":
        butd.counter_hebb_(net, grad_logits)      # error TD pass + local Counter-Hebb updates
    else:
        net.backward(grad_logits)                 # backprop through the BU network
    opt.step()
    return loss, int(np.sum(logits.argmax(axis=1) == y))


def gradient_gap(base, x, y) -> float:
    """max |CH − BP| over every parameter gradient on one batch (shared TD weights, float32)."""
    net = butd.fc_net(x.shape[1:], 10, hidden=base.head.in_features, rng=0)
    net.load_state_dict(base.state_dict())
    _, g = butd.loss_and_grad("cross_entropy", net(x), y)
    butd.counter_hebb_(net, g)
    ch = {k: p.grad.copy() for k, p in net.named_parameters()}
    net.zero_grad()
    net(x)
    net.backward(g)
    return max(float(np.abs(ch[k] - p.grad).max() / np.abs(p.grad).max()) for k, p in net.named_parameters())


def main(argv=None):
    args = parse_args(argv)
    kernels.use(args.kernels)
    out = Path(args.out) / "butd_counter_hebb"
    out.mkdir(parents=True, exist_ok=True)
    names = [r.strip() for r in args.runs.split(",") if r.strip()]
    unknown = [r for r in names if r not in RUNS]
    if unknown:
        raise SystemExit(f"unknown run(s) {unknown}; choose from {list(RUNS)}")

    # ------------------------------------------------------------------ data
    x_train, y_train, x_test, y_test, notes = load_train_test(args.dataset)
    for note in notes:
        print("note:", note)
    if args.limit:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
    x_train, x_test = normalize(x_train, MNIST_MEAN, MNIST_STD), normalize(x_test, MNIST_MEAN, MNIST_STD)
    in_shape = x_train.shape[1:]
    print(f"{args.dataset}: {len(x_train)} train / {len(x_test)} test images of {'x'.join(map(str, in_shape))}; "
          f"FC-{args.hidden}, Adam {args.lr} (x{args.gamma}/epoch), batch {args.batch_size}, {args.epochs} epoch(s)")

    # ------------------------------------------------------------------ models: same W, b for every run
    base = butd.fc_net(in_shape, 10, hidden=args.hidden, rng=args.seed)
    nets, opts, scheds, loaders = {}, {}, {}, {}
    for name in names:
        top_down, _ = RUNS[name]
        net = butd.fc_net(in_shape, 10, hidden=args.hidden, top_down=top_down, rng=args.seed)
        net.load_state_dict(base.state_dict(), strict=False)     # W, b from the shared net; W̄ its own
        if top_down == "symmetric":
            for m in net.modules():
                if getattr(m, "back_weight", None) is not None:
                    m.back_weight.data[...] = m.weight.data.T
        nets[name] = net
        opts[name] = optim.Adam(net.parameters(), lr=args.lr)
        scheds[name] = optim.ExponentialLR(opts[name], args.gamma)
        loaders[name] = DataLoader(x_train, y_train, args.batch_size, shuffle=True, rng=args.seed)
    gap = gradient_gap(base, x_train[:args.batch_size], y_train[:args.batch_size])
    print(f"CH vs BP gradients on the first batch (shared weights, float32): max relative difference {gap:.2e}")

    # ------------------------------------------------------------------ training: all runs, epoch by epoch
    history = {name: {"test": [], "train": [], "loss": [], "seconds": []} for name in names}
    rows = []
    for epoch in range(args.epochs):
        for name in names:
            net, learning = nets[name], RUNS[name][1]
            t0 = time.perf_counter()
            loss_sum, correct = 0.0, 0
            for xb, yb in tqdm(loaders[name], desc=f"epoch {epoch + 1} {name}", unit="batch", leave=False,
                               mininterval=1.0):
                loss, c = learn_step(net, opts[name], xb, yb, learning)
                loss_sum += loss * len(yb)
                correct += c
            scheds[name].step()
            h = history[name]
            h["seconds"].append(time.perf_counter() - t0)
            h["loss"].append(loss_sum / len(x_train))
            h["train"].append(100.0 * correct / len(x_train))
            h["test"].append(metrics.evaluate(net, x_test, y_test, batch_size=1000).percent)
        rows.append({"epoch": epoch + 1, **{f"{n} test %": history[n]["test"][-1] for n in names}})
        print(" | ".join([f"epoch {epoch + 1:2d}"] + [f"{n}: test {history[n]['test'][-1]:.2f} % "
                                                      f"({history[n]['seconds'][-1]:.1f} s)" for n in names]),
              flush=True)

    per_epoch = print_table(rows, title=f"Test accuracy per epoch ({args.dataset})")
    summary = []
    ref = history["bp"]["test"][-1] if "bp" in history else None
    for n in names:
        h = history[n]
        summary.append({"run": n, "top-down weights": RUNS[n][0], "learning": RUNS[n][1],
                        "final test %": h["test"][-1], "best test %": max(h["test"]),
                        "vs bp (points)": None if ref is None else h["test"][-1] - ref,
                        "final train loss": h["loss"][-1], "s/epoch": float(np.mean(h["seconds"]))})
    table = print_table(summary, title=f"Counter-Hebb vs backprop, FC-{args.hidden}, {args.dataset}, "
                                       f"{args.epochs} epoch(s), seed {args.seed}")
    print(f"CH (shared) vs BP first-batch gradient gap: {gap:.2e} (relative, float32)")

    # ------------------------------------------------------------------ figures and results
    fig, (ax1, ax2) = new_figure(1, 2, figsize=(11.5, 4))
    epochs = np.arange(1, args.epochs + 1)
    for i, n in enumerate(names):
        style = dict(color=f"C{i}", ls="--" if n == "ch-shared" else "-", marker="o", ms=3, label=n)
        ax1.plot(epochs, history[n]["test"], **style)
        ax2.plot(epochs, history[n]["loss"], **style)
    ax1.set(xlabel="epoch", ylabel="test accuracy %", title=f"FC-{args.hidden} on {args.dataset}")
    ax2.set(xlabel="epoch", ylabel="train loss (running mean)", title="CH vs backprop")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    ax2.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))   # one legend, beside the curves
    figures = [save_figure(fig, out, "butd_counter_hebb_curves")]
    results = {"args": vars(args), "history": history, "summary": summary, "ch_bp_gradient_gap": gap}
    write_text(out / "results.json", json.dumps(results, indent=1))
    write_index(out, figures, {"Summary": table, "Test accuracy per epoch": per_epoch},
                title=f"BU-TD: Counter-Hebb vs backprop ({args.dataset})", captions=CAPTIONS)
    print(f"\nresults: {out / 'results.json'}; figures: {', '.join(str(f) for f in figures)}")
    return results


if __name__ == "__main__":
    run(main)
