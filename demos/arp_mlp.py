"""Auto-Rotating Perceptrons vs classic perceptrons: the arpkeras example recipe, from scratch.

The arpkeras example notebook (grey CIFAR-10), with nnlocal layers:

* MLP in -> 50 -> 50 -> 40 -> 40 -> 30 -> 10, sigmoid hidden layers, a plain (non-ARP) softmax
  output layer, Glorot-uniform weights and zero biases (Keras' defaults);
* RMSprop(lr 1e-3, rho 0.9, eps 1e-7), categorical cross-entropy, batch 128, 20 epochs, the test
  set doubling as validation;
* three models: **classic** (Dense), **ARP** (AutoRotDense, L = 4, xmin 0, xmax 1 -> xQ = 2) and
  **ARP-off** (AutoRotDense with autorot=False). ARP-off computes exactly the classic network
  (tests/test_arp.py checks it bit for bit); as in the notebook it is a separate run, here on its own
  random stream (initial weights and batch order), so classic vs ARP-off shows the run-to-run noise.
  Classic and ARP share their stream for each seed (same initial weights, same batches): a paired
  comparison.

The original (one Colab run on grey CIFAR-10): classic 21.66 %, ARP 33.78 %, ARP-off 23.59 % test
accuracy after 20 epochs. This demo runs several seeds and reports mean ± std.

RMSprop formula. Keras >= 2.11 (and Keras 3) divide by sqrt(v) + eps, which is torch's formula
(``nnlocal.optim.RMSprop``); Keras <= 2.10 (optimizer_v2, the TF ``ApplyRMSProp`` kernel) divide by
sqrt(v + eps), so eps = 1e-7 acts like an eps of about 3e-4 outside the root, which damps the
updates of tiny (vanishing) gradients. The notebook's saved run printed the Keras-2.9+ log format
and does not say which; ``--rmsprop keras`` (default) is the modern one, ``--rmsprop keras-legacy``
the old one (implemented below in a few lines). Both start from v = 0.

    python demos/arp_mlp.py                                   # Fashion-MNIST, 20 epochs x 3 seeds
    python demos/arp_mlp.py --dataset cifar10-gray            # the original's data (needs the binary CIFAR-10)
    python demos/arp_mlp.py --dataset digits --epochs 1 --seeds 1   # seconds, no download
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
from nnlocal.report import format_seconds, mean_std, new_figure, print_table, save_figure, write_index, write_text

#: the notebook's saved outputs (grey CIFAR-10, one run): test acc %, test loss, epoch-1 val acc %
ORIGINAL = {"classic": (21.66, 2.0275, 10.00), "ARP": (33.78, 1.8502, 22.04), "ARP-off": (23.59, 2.0174, 11.61)}
HIDDEN = (50, 50, 40, 40, 30)
CAPTIONS = {"arp_mlp_curves": "Test (solid, mean ± std band over seeds) and training (dashed, mean) accuracy and "
                              "cross-entropy per epoch for each model: the gap between ARP and the classic or "
                              "ARP-off perceptrons is the effect of the auto-rotation."}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "cifar10-gray", "mnist", "digits"])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (runs per model)")
    p.add_argument("--seed", type=int, default=0, help="first seed; runs use seed, seed+1, ...")
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS threads (the matrices are tiny: one thread is usually fastest)")
    p.add_argument("--out", default="nnlocal-out/", help="output folder (results go to OUT/arp_mlp/)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--L", type=float, default=None, help="ARP L (default: the README's value for the activation)")
    p.add_argument("--activation", default="sigmoid", choices=["sigmoid", "tanh", "atan"])
    p.add_argument("--rmsprop", default="keras", choices=["keras", "keras-legacy"],
                   help="keras: g/(sqrt(v)+eps) (Keras>=2.11, torch); keras-legacy: g/sqrt(v+eps) (Keras<=2.10)")
    p.add_argument("--models", default="classic,ARP,ARP-off", help="comma-separated subset of classic,ARP,ARP-off")
    kernels.add_argument(p)
    return p.parse_args(argv)


class KerasLegacyRMSprop(optim.RMSprop):
    """Keras <= 2.10 RMSprop (TF's ApplyRMSProp): v <- rho v + (1-rho) g^2;  p <- p - lr g / sqrt(v + eps)."""

    def _update(self, p, state, group):
        if not state:
            state.update(step=0, square_avg=np.zeros_like(p.data))
        state["step"] += 1
        v = state["square_avg"]
        v *= group["alpha"]
        v += (1 - group["alpha"]) * p.grad * p.grad
        p.data -= group["lr"] * p.grad / np.sqrt(v + group["eps"])


def build(kind: str, n_in: int, act: str, L: float, xmin: float, xmax: float, rng) -> nn.Sequential:
    """The notebook's MLP; ``kind`` in classic / ARP / ARP-off. Keras init: Glorot-uniform, zero biases."""
    layers, prev = [], n_in
    for width in HIDDEN:
        if kind == "classic":
            layers += [nn.Linear(prev, width, rng=rng), nn.get_activation(act)]
        else:
            layers.append(arp.AutoRotDense(prev, width, L=L, xmin_lim=xmin, xmax_lim=xmax, activation=act,
                                           autorot=(kind == "ARP"), rng=rng))
        prev = width
    layers.append(nn.Linear(prev, 10, rng=rng))   # plain output layer: logits, softmax inside the loss
    return arp.keras_init_(nn.Sequential(*layers), rng=rng)


def train_one(kind, seed, data, args, lim, bar):
    x_train, y_train, x_test, y_test = data
    rng = np.random.default_rng([seed, 1 if kind == "ARP-off" else 0])   # classic and ARP: paired streams
    model = build(kind, x_train.shape[1], args.activation, lim.L, lim.xmin_lim, lim.xmax_lim, rng)
    opt_cls = KerasLegacyRMSprop if args.rmsprop == "keras-legacy" else optim.RMSprop
    opt = opt_cls(model.parameters(), lr=args.lr, alpha=0.9, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    loader = DataLoader(x_train, y_train, args.batch_size, shuffle=True, rng=rng)
    hist = {"test_acc": [], "test_loss": [], "train_loss": [], "train_acc": []}
    t0 = time.perf_counter()
    for _ in range(args.epochs):
        losses, correct = [], 0
        for xb, yb in loader:
            logits = model(xb)
            losses.append(loss_fn(logits, yb))
            correct += int((logits.argmax(1) == yb).sum())
            model.zero_grad()
            model.backward(loss_fn.backward())
            opt.step()
        test = metrics.evaluate(model, x_test, y_test, batch_size=4096, loss_fn=nn.CrossEntropyLoss())
        acc, loss = test.accuracy, test.loss
        hist["test_acc"].append(acc)
        hist["test_loss"].append(loss)
        hist["train_loss"].append(float(np.mean(losses)))
        hist["train_acc"].append(correct / len(x_train))
        bar.set_postfix_str(f"{kind} seed {seed}: test acc {100 * acc:.2f} %")
        bar.update(1)
    hist["seconds"] = time.perf_counter() - t0
    sat = [float(m.saturation()) for m in model if isinstance(m, arp.AutoRotDense)]
    hist["saturation"] = sat
    return hist


def main(argv=None):
    args = parse_args(argv)
    kernels.use(args.kernels)
    threadpool_limits(args.threads)
    out = Path(args.out) / "arp_mlp"
    out.mkdir(parents=True, exist_ok=True)
    kinds = [k.strip() for k in args.models.split(",") if k.strip()]
    for k in kinds:
        if k not in ORIGINAL:
            raise SystemExit(f"unknown model {k!r}; choose from {', '.join(ORIGINAL)}")

    # ------------------------------------------------------------------ data: flattened, in [0, 1]
    x_train, y_train, x_test, y_test, notes = load_train_test(args.dataset)
    for note in notes:
        print("note:", note)
    x_train, x_test = x_train.reshape(len(x_train), -1), x_test.reshape(len(x_test), -1)
    lim = arp.limits_for(args.activation, float(min(x_train.min(), x_test.min())),
                         float(max(x_train.max(), x_test.max())))
    if args.L is not None:
        lim = lim._replace(L=args.L)
    print(f"{args.dataset}: {len(x_train)} train / {len(x_test)} test, {x_train.shape[1]} inputs; "
          f"ARP limits xmin {lim.xmin_lim:g}, xmax {lim.xmax_lim:g} (xQ = {2 * lim.xmax_lim - lim.xmin_lim:g}), "
          f"L = {lim.L:g}; RMSprop formula: {args.rmsprop}")
    data = (x_train, y_train, x_test, y_test)

    # ------------------------------------------------------------------ training: models x seeds
    seeds = list(range(args.seed, args.seed + args.seeds))
    runs = {k: [] for k in kinds}
    with tqdm(total=len(kinds) * len(seeds) * args.epochs, desc="arp_mlp", unit="epoch") as bar:
        for seed in seeds:
            for kind in kinds:
                runs[kind].append(train_one(kind, seed, data, args, lim, bar))

    # ------------------------------------------------------------------ table
    rows = []
    for kind in kinds:
        h = runs[kind]
        o = ORIGINAL[kind]
        rows.append({"model": kind,
                     f"test acc % ({len(seeds)} seeds)": mean_std([r["test_acc"][-1] for r in h], scale=100.0),
                     "test loss": mean_std([r["test_loss"][-1] for r in h], scale=1.0),
                     "epoch-1 test acc %": mean_std([r["test_acc"][0] for r in h], scale=100.0),
                     "best test acc %": mean_std([max(r["test_acc"]) for r in h], scale=100.0),
                     "time per run": format_seconds(float(np.mean([r["seconds"] for r in h]))),
                     "original (grey CIFAR-10)": f"{o[0]:.2f} % / {o[1]:.4f} / {o[2]:.2f} %"})
    title = (f"{args.dataset}, MLP {'-'.join(map(str, (x_train.shape[1],) + HIDDEN + (10,)))}, {args.activation}, "
             f"{args.epochs} epoch(s), seeds {seeds}, RMSprop[{args.rmsprop}]")
    table = print_table(rows, title=title)
    sat = {k: np.mean([np.mean(r["saturation"]) for r in runs[k]]) for k in kinds if runs[k][0]["saturation"]}
    if sat:
        print("mean fraction of saturated ARP units (rho > 100) after training:",
              ", ".join(f"{k} {v:.3f}" for k, v in sat.items()))

    # ------------------------------------------------------------------ figures: learning curves
    epochs = np.arange(1, args.epochs + 1)
    fig, axes = new_figure(1, 2, figsize=(12.5, 4))
    for kind, color in zip(kinds, ["C0", "C3", "C2"]):
        for ax, key, scale in ((axes[0], "test_acc", 100.0), (axes[1], "test_loss", 1.0)):
            curves = scale * np.array([r[key] for r in runs[kind]])
            m, s = curves.mean(0), curves.std(0)
            ax.plot(epochs, m, "-o", ms=3, color=color, label=f"{kind} (test)")
            ax.fill_between(epochs, m - s, m + s, color=color, alpha=0.2)
            tr = "train_acc" if key == "test_acc" else "train_loss"
            ax.plot(epochs, scale * np.array([r[tr] for r in runs[kind]]).mean(0), "--", color=color, lw=1,
                    label=f"{kind} (train)")
    axes[0].set_ylabel("accuracy %")
    axes[1].set_ylabel("cross-entropy")
    for ax in axes:
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("epoch")
    axes[1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))   # one legend, beside the data
    fig.suptitle(f"ARP vs classic perceptrons: {title}\n(mean ± std over seeds)", fontsize=9)
    figures = [save_figure(fig, out, "arp_mlp_curves")]

    notes = ("Original (arpkeras notebook, grey CIFAR-10, one run): classic 21.66 %, ARP 33.78 %, "
             "ARP-off 23.59 % test accuracy.")
    write_text(out / "results.md", f"{title}\n\n{table}\n\n{notes}\n")
    write_text(out / "history.json", json.dumps({"args": vars(args), "limits": lim._asdict(), "runs": runs},
                                                 indent=1, default=float))
    write_index(out, figures, {"Results": table}, title=f"ARP MLP demo: {args.dataset}", captions=CAPTIONS)
    print(f"\n{notes}\nfigures: {out}/index.md")
    return rows, runs


if __name__ == "__main__":
    run(main)
