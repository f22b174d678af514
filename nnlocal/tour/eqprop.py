"""Tour part: symmetric equilibrium propagation (Scellier & Bengio 2017) on the 8x8 digits.

Scellier's net1 recipe scaled to the digits: 64-500-10, batch 20, 20 free + 4 nudged steps of ε 0.5,
β 0.5 with a random sign, learning rates 0.1 / 0.05, persistent particles; test error by 50 free steps
from zero. The baseline is a 64-500-10 MLP (ReLU hidden layer) trained by backprop with SGD (lr 0.1,
batch 20, cross-entropy) for the same number of epochs. The digits' fixed split (first 1,500 /
last 297 images) puts different writers in the test set, so errors are higher than on a shuffled
split. ``demos/eqprop_mnist.py`` runs the 784-500-10 net on (Fashion-)MNIST.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import nn, optim
from ..data import DataLoader, load_digits
from ..methods.eqprop import EPNet
from ..report import new_figure, save_figure
from . import Row, part_bar

CAPTIONS = {"eqprop_digits": "Error per epoch of the equilibrium-propagation net: training error (end of the free "
                             "phase) and test error (50 free steps from zero), against the dashed line of the same "
                             "64-500-10 architecture trained by backprop for as many epochs; look at how close the "
                             "test curve ends to the line."}


def _backprop(x, y, x_test, y_test, epochs: int, rng, bar) -> float:
    net = nn.Sequential(nn.Linear(x.shape[1], 500, rng=rng), nn.ReLU(), nn.Linear(500, 10, rng=rng))
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.SGD(net.parameters(), lr=0.1)
    for _ in range(epochs):
        for xb, yb in DataLoader(x, y, 20, shuffle=True, rng=rng):
            loss_fn(net(xb), yb)
            net.zero_grad()
            net.backward(loss_fn.backward())
            opt.step()
        bar.update()
    return 100.0 * float(np.mean(net(x_test).argmax(axis=1) != y_test))


def run(quick: bool, out_dir: Path, seed: int = 0, progress=None) -> tuple[list[Row], list[Path]]:
    epochs = 2 if quick else 20
    x_train, y_train = load_digits("train")
    x_test, y_test = load_digits("test")
    x_train = x_train.reshape(len(x_train), -1)
    x_test = x_test.reshape(len(x_test), -1)
    bar = part_bar(progress, 2 * epochs)
    net = EPNet([64, 500, 10], rng=seed)
    hist = net.fit(x_train, y_train, epochs=epochs, X_test=x_test, y_test=y_test, eval_steps=50,
                   callback=lambda *_: bar.update())
    bp_err = _backprop(x_train, y_train, x_test, y_test, epochs, np.random.default_rng(seed), bar)
    ep_err = float(hist["test_error"][-1])

    from matplotlib.ticker import MaxNLocator

    fig, ax = new_figure(figsize=(6, 3.4))
    e = np.arange(1, epochs + 1)
    ax.plot(e, hist["train_error"], "o-", label="EP train (end of free phase)")
    ax.plot(e, hist["test_error"], "s-", label="EP test (50 free steps from 0)")
    ax.axhline(bp_err, color="gray", ls="--", label=f"backprop, {epochs} epochs: {bp_err:.1f} %")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("error %")
    ax.set_title("Equilibrium propagation, 64-500-10 on the 8x8 digits", fontsize=9)
    ax.legend(fontsize=8)
    figure = save_figure(fig, out_dir, "eqprop_digits")
    rows = [Row("EP", f"digits, 64-500-10, {epochs} ep", "test error %", round(ep_err, 2),
                round(bp_err, 2), "backprop MLP (ReLU, SGD 0.1)", "net1 = 784-500-10 on MNIST, 25 epochs (paper)",
                "Scellier's net1 recipe on the digits: batch 20, 20 free + 4 nudged steps of eps 0.5, beta 0.5 "
                "with a random sign, lrs 0.1 / 0.05, persistent particles; test by 50 free steps from zero")]
    return rows, [figure]
