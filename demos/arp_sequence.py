"""Auto-Rotating LSTM/GRU vs plain LSTM/GRU on row-by-row image classification.

Each image is read as a sequence, one pixel row per time step (Fashion-MNIST: 28 steps of 28
pixels; digits: 8 steps of 8), by a single recurrent layer (hidden size 64 by default); a linear
layer on the final hidden state h_T gives the class logits. Four models: LSTM, AutoRotLSTM, GRU,
AutoRotGRU, trained identically (Adam, cross-entropy, batch 128) from the same initial weights and
batches per seed.

The recurrent ARP layers are an nnlocal extension (arpkeras' README lists AutoRotLSTM/GRU/SimpleRNN
but never shipped them): every gate pre-activation a = W x_t + U h_{t-1} + b is scaled by
rho = L / (|xQ (sum W + sum U) + b| + eps) before its sigmoid/tanh, with L = 4 for sigmoid gates and
2 for the tanh candidate, and xmin = -1, xmax = 1 (pixels in [0, 1], hidden state in (-1, 1)), so
xQ = 3. See nnlocal/methods/arp/ (reference.py, recurrent.py).

    python demos/arp_sequence.py                               # Fashion-MNIST, 3 epochs
    python demos/arp_sequence.py --dataset digits --epochs 5   # seconds, no download
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
from nnlocal.cli import HelpFormatter, run
from nnlocal.data import DataLoader, load_train_test
from nnlocal.methods import arp
from nnlocal.report import mean_std, new_figure, print_table, save_figure, write_index, write_text

CELLS = {"LSTM": nn.LSTM, "AutoRotLSTM": arp.AutoRotLSTM, "GRU": nn.GRU, "AutoRotGRU": arp.AutoRotGRU}
CAPTIONS = {"arp_sequence_curves": "Test accuracy per epoch of each recurrent cell reading the images row by row "
                                   "(mean ± std band over seeds): solid AutoRot cells against their dashed classic "
                                   "twins."}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "mnist", "digits"])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seeds", type=int, default=1, help="number of seeds (runs per model)")
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS threads (the matrices are tiny: one thread is usually fastest)")
    p.add_argument("--out", default="nnlocal-out/", help="output folder (results go to OUT/arp_sequence/)")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--train-size", type=int, default=0, help="use only the first N training images (0: all)")
    p.add_argument("--models", default=",".join(CELLS), help="comma-separated subset of " + ",".join(CELLS))
    kernels.add_argument(p)
    return p.parse_args(argv)


class RowClassifier(nn.Module):
    """rows (B, T, I) -> recurrent layer -> final hidden state h_T (B, H) -> Linear -> logits (B, 10)."""

    def __init__(self, cell: nn.Module, n_classes: int = 10, rng=None):
        super().__init__()
        self.rnn = cell
        self.head = nn.Linear(cell.hidden_size, n_classes, rng=rng)

    def forward(self, x):
        _, state = self.rnn(x)
        h_n = state[0] if isinstance(state, tuple) else state     # LSTM: (h_n, c_n)
        return self.head(h_n[0])

    def backward(self, grad_logits):
        g_h = self.head.backward(grad_logits)
        # the loss reads only h_T: no gradient on the per-step outputs (grad_output=None)
        return self.rnn.backward(None, g_h[None])


def main(argv=None):
    args = parse_args(argv)
    kernels.use(args.kernels)
    threadpool_limits(args.threads)
    out = Path(args.out) / "arp_sequence"
    out.mkdir(parents=True, exist_ok=True)
    kinds = [k.strip() for k in args.models.split(",") if k.strip()]
    for k in kinds:
        if k not in CELLS:
            raise SystemExit(f"unknown model {k!r}; choose from {', '.join(CELLS)}")

    x_train, y_train, x_test, y_test, notes = load_train_test(args.dataset)
    for note in notes:
        print("note:", note)
    if args.train_size:
        x_train, y_train = x_train[:args.train_size], y_train[:args.train_size]
    x_train, x_test = x_train[:, 0], x_test[:, 0]          # (N, rows T, pixels I): one row per time step
    T, I = x_train.shape[1:]
    print(f"{args.dataset}: {len(x_train)} train / {len(x_test)} test sequences of {T} steps x {I} features; "
          f"hidden {args.hidden}")

    seeds = list(range(args.seed, args.seed + args.seeds))
    runs = {k: [] for k in kinds}
    with tqdm(total=len(kinds) * len(seeds) * args.epochs, desc="arp_sequence", unit="epoch") as bar:
        for seed in seeds:
            for kind in kinds:
                rng = np.random.default_rng(seed)            # same initial weights and batches for every model
                model = RowClassifier(CELLS[kind](I, args.hidden, rng=rng), rng=rng)
                opt = optim.Adam(model.parameters(), lr=args.lr)
                loss_fn = nn.CrossEntropyLoss()
                loader = DataLoader(x_train, y_train, args.batch_size, shuffle=True, rng=rng)
                hist = {"test_acc": [], "test_loss": [], "train_loss": []}
                t0 = time.perf_counter()
                for _ in range(args.epochs):
                    losses = []
                    for xb, yb in loader:
                        losses.append(loss_fn(model(xb), yb))
                        model.zero_grad()
                        model.backward(loss_fn.backward())
                        opt.step()
                    test = metrics.evaluate(model, x_test, y_test, batch_size=2048,
                                            loss_fn=nn.CrossEntropyLoss())
                    acc, loss = test.accuracy, test.loss
                    hist["test_acc"].append(acc)
                    hist["test_loss"].append(loss)
                    hist["train_loss"].append(float(np.mean(losses)))
                    bar.set_postfix_str(f"{kind} seed {seed}: test acc {100 * acc:.2f} %")
                    bar.update(1)
                hist["seconds"] = time.perf_counter() - t0
                if isinstance(model.rnn, arp._ARPParams):
                    rho = model.rnn.rho()
                    hist["rho_median"] = float(np.median(rho))
                    hist["saturation"] = model.rnn.saturation()
                runs[kind].append(hist)

    rows = [{"model": k,
             f"test acc % ({len(seeds)} seed(s))": mean_std([r["test_acc"][-1] for r in runs[k]], scale=100.0),
             "test loss": mean_std([r["test_loss"][-1] for r in runs[k]], scale=1.0),
             "epoch-1 test acc %": mean_std([r["test_acc"][0] for r in runs[k]], scale=100.0),
             "median rho": f"{np.mean([r['rho_median'] for r in runs[k]]):.3f}" if "rho_median" in runs[k][0] else "-",
             "s / run": f"{np.mean([r['seconds'] for r in runs[k]]):.1f}"} for k in kinds]
    title = (f"{args.dataset} row by row ({T} steps x {I}), hidden {args.hidden}, Adam lr {args.lr}, "
             f"{args.epochs} epoch(s), seeds {seeds}")
    table = print_table(rows, title=title)

    epochs = np.arange(1, args.epochs + 1)
    fig, ax = new_figure(figsize=(8.5, 4))
    for kind, color in zip(kinds, ["C0", "C3", "C2", "C1"]):
        curves = 100 * np.array([r["test_acc"] for r in runs[kind]])
        ls = "-" if kind.startswith("AutoRot") else "--"
        ax.plot(epochs, curves.mean(0), ls, marker="o", ms=3, color=color, label=kind)
        ax.fill_between(epochs, curves.mean(0) - curves.std(0), curves.mean(0) + curves.std(0), color=color, alpha=0.2)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy %")
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))   # beside the curves
    figures = [save_figure(fig, out, "arp_sequence_curves")]
    write_text(out / "results.md", f"{title}\n\n{table}\n")
    write_text(out / "history.json", json.dumps({"args": vars(args), "runs": runs}, indent=1, default=float))
    write_index(out, figures, {"Results": table}, title=f"ARP recurrent demo: {args.dataset}", captions=CAPTIONS)
    print(f"\nfigures: {out}/index.md")
    return rows, runs


if __name__ == "__main__":
    run(main)
