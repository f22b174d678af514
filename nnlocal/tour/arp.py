"""Tour part: Auto-Rotating Perceptrons vs classic perceptrons on the 8×8 digits, briefly.

The arpkeras example recipe in miniature: MLP 64-50-50-40-40-30-10, sigmoid hidden layers, a plain
output layer, Glorot-uniform weights and zero biases, RMSprop(1e-3, 0.9, 1e-7), batch 128; classic
Dense vs AutoRotDense (L = 4, xmin 0, xmax 1, so xQ = 2), same initial weights and batches per
seed. Also an AutoRotGRU vs GRU pair reading the digits row by row (8 steps of 8 pixels). The
original's only numbers are one grey-CIFAR-10 run (20 epochs): classic 21.66 %, ARP 33.78 %,
ARP-off 23.59 %.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import Row, part_bar

ORIGINAL = "grey CIFAR-10, 20 ep: ARP 33.78, classic 21.66 (ARP-off 23.59)"
HIDDEN = (50, 50, 40, 40, 30)
CAPTIONS = {"arp_digits": "Test accuracy per epoch, mean over seeds with the min-max band: on the left the deep "
                          "sigmoid MLP, where the classic perceptrons stay far below the auto-rotating ones "
                          "(saturated sigmoids learn slowly); on the right the row-by-row GRU, where the two cells "
                          "stay close."}


def _mlp(kind: str, n_in: int, rng):
    from .. import nn
    from ..methods import arp

    layers, prev = [], n_in
    for width in HIDDEN:
        if kind == "classic":
            layers += [nn.Linear(prev, width, rng=rng), nn.Sigmoid()]
        else:
            layers.append(arp.AutoRotDense(prev, width, L=4.0, xmin_lim=0.0, xmax_lim=1.0, activation="sigmoid",
                                           rng=rng))
        prev = width
    layers.append(nn.Linear(prev, 10, rng=rng))
    return arp.keras_init_(nn.Sequential(*layers), rng=rng)


class _RowGRU:
    """rows (B, 8, 8) -> (AutoRot)GRU -> h_T -> Linear -> logits; forward/backward by hand."""

    def __init__(self, cell, rng):
        from .. import nn

        self.rnn, self.head = cell, nn.Linear(cell.hidden_size, 10, rng=rng)

    def parameters(self):
        return list(self.rnn.parameters()) + list(self.head.parameters())

    def __call__(self, x):
        _, h_n = self.rnn(x)
        return self.head(h_n[0])

    def zero_grad(self):
        self.rnn.zero_grad()
        self.head.zero_grad()

    def backward(self, g):
        return self.rnn.backward(None, self.head.backward(g)[None])


def _train(model, data, epochs, rng, opt, bar):
    from .. import nn

    x_train, y_train, x_test, y_test = data
    loss_fn, curve = nn.CrossEntropyLoss(), []
    for _ in range(epochs):
        order = rng.permutation(len(x_train))
        for i in range(0, len(order), 128):
            idx = order[i:i + 128]
            loss_fn(model(x_train[idx]), y_train[idx])
            model.zero_grad()
            model.backward(loss_fn.backward())
            opt.step()
        curve.append(100.0 * np.mean(model(x_test).argmax(1) == y_test))
        bar.update()
    return curve


def run(quick: bool, out_dir: Path, seed: int = 0, progress=None):
    from .. import nn, optim
    from ..data import load_digits
    from ..methods import arp
    from ..report import new_figure, save_figure
    from matplotlib.ticker import MaxNLocator

    x_train, y_train = load_digits("train")
    x_test, y_test = load_digits("test")
    seeds = [seed] if quick else [seed, seed + 1, seed + 2]
    mlp_epochs, gru_epochs = (10, 4) if quick else (30, 10)
    bar = part_bar(progress, 2 * len(seeds) * mlp_epochs + 2 * gru_epochs)

    flat = (x_train.reshape(len(x_train), -1), y_train, x_test.reshape(len(x_test), -1), y_test)
    mlp = {"classic": [], "ARP": []}
    for s in seeds:
        for kind in mlp:
            model = _mlp(kind, 64, np.random.default_rng(s))
            opt = optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
            mlp[kind].append(_train(model, flat, mlp_epochs, np.random.default_rng(s), opt, bar))

    rows_data = (x_train[:, 0], y_train, x_test[:, 0], y_test)
    gru = {"GRU": [], "AutoRotGRU": []}
    for kind, cls in (("GRU", nn.GRU), ("AutoRotGRU", arp.AutoRotGRU)):
        rng = np.random.default_rng(seed)
        model = _RowGRU(cls(8, 32, rng=rng), rng)
        opt = optim.Adam(model.parameters(), lr=3e-3)
        gru[kind].append(_train(model, rows_data, gru_epochs, np.random.default_rng(seed), opt, bar))

    band = f"mean and min-max of {len(seeds)} seeds" if len(seeds) > 1 else "1 seed"
    fig, axes = new_figure(1, 2, figsize=(10, 3.6))
    for ax, curves, title in ((axes[0], mlp, f"MLP 64-50-50-40-40-30-10 sigmoid, RMSprop ({band})"),
                              (axes[1], gru, "row-by-row GRU (hidden 32), Adam (1 seed)")):
        for (name, runs), color in zip(curves.items(), ("C0", "C3")):
            c = np.array(runs)
            ep = np.arange(1, c.shape[1] + 1)
            ax.plot(ep, c.mean(0), "-o", ms=3, color=color, label=name)
            if len(c) > 1:
                ax.fill_between(ep, c.min(0), c.max(0), color=color, alpha=0.2)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("test accuracy % (297 digits)")
        ax.set_title(title, fontsize=9)
        ax.legend(loc="best")
        ax.grid(alpha=0.3)
    figures = [save_figure(fig, out_dir, "arp_digits")]

    def final(runs):
        return round(float(np.mean([r[-1] for r in runs])), 2)

    rows = [Row("ARP", f"digits MLP, {mlp_epochs} ep, {len(seeds)} seed{'s' * (len(seeds) > 1)}",
                "test acc %", final(mlp["ARP"]), final(mlp["classic"]), "classic Dense", ORIGINAL,
                f"MLP 64-50-50-40-40-30-10, sigmoid hidden layers, RMSprop(1e-3, 0.9, 1e-7), batch 128, "
                f"AutoRotDense L = 4, xQ = 2; mean of {len(seeds)} seed(s)"),
            Row("ARP", f"digits GRU by rows, {gru_epochs} ep (ext.)", "test acc %",
                final(gru["AutoRotGRU"]), final(gru["GRU"]), "GRU", "- (not in arpkeras)",
                "extension: 8 steps of 8 pixels, hidden 32, linear head on h_T, Adam 3e-3, batch 128, 1 seed")]
    return rows, figures
