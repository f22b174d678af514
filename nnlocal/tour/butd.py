"""Tour part: BU-TD (Abel & Ullman) on the embedded 8x8 digits.

Two kinds of rows:

* Counter-Hebb vs backprop: the FC net (one hidden layer) trained from the same initial weights
  on the same batches with CH (shared, then separate top-down weights) and with backprop;
* instruction-guided multi-task learning on Multi-digits (``multi_mnist`` over the 8x8 digits):
  one guided simple net told "left" or "right" vs two single-task simple nets, every task on every
  test image;

and one figure of the guided net's task masks (which units each task switches on, and their
overlap).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import optim
from ..data import DataLoader, load_digits, multi_mnist
from ..methods import butd
from ..metrics import evaluate
from ..report import new_figure, save_figure
from . import Row, part_bar

CAPTIONS = {"butd_task_masks": "Left: the share of each gated layer's units that the instruction 'left' or 'right' "
                               "switches on, after training; right: how much the two tasks' masks overlap (binary "
                               "cosine, 1 = the same units), at initialisation and after training. Look for layers "
                               "where training moves the tasks apart or together."}


def layer_names(core) -> dict[str, str]:
    """``{gated unit name: readable name}`` for a BU-TD core: ``"0"`` -> ``"0: conv1"``, the depthwise
    stride-2 convolutions that stand for pooling -> ``"1: pool1"``, the linear layers -> ``"5: fc1"``."""
    names, counts = {}, {}
    for name, unit in core._gated_units():
        if type(unit).__name__ == "BUTDLinear":
            kind = "fc"
        else:
            kind = "pool" if unit.groups > 1 and unit.groups == unit.in_channels else "conv"
        counts[kind] = counts.get(kind, 0) + 1
        names[name or "core"] = f"{name}: {kind}{counts[kind]}"
    return names


def _fit(net, x, y, epochs, lr, batch, seed, learning="bp", tasks_rng=None, bar=None):
    """Adam, lr x 0.95 per epoch. Guided nets (``tasks_rng`` given) draw one random task per image
    and learn that digit (``y`` holds both labels)."""
    opt = optim.Adam(net.parameters(), lr=lr)
    sched = optim.ExponentialLR(opt, 0.95)
    loader = DataLoader(x, y, batch, shuffle=True, rng=seed)
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            if tasks_rng is not None:
                tasks = tasks_rng.integers(0, 2, len(xb))
                logits, yb = net(xb, tasks), yb[np.arange(len(xb)), tasks]
            else:
                logits = net(xb)
            _, g = butd.loss_and_grad("cross_entropy", logits, yb)
            if learning == "ch":
                butd.counter_hebb_(net, g)
            else:
                net.backward(g)
            opt.step()
        sched.step()
        if bar is not None:
            bar.update()
    return net


def _acc(net, x, y, task=None) -> float:
    """Test accuracy % on the whole set in one batch; a guided net is told ``task`` for every image."""
    forward = None if task is None else (lambda xb: net(xb, np.full(len(xb), task)))
    return evaluate(net, x, y, batch_size=len(x), forward=forward).percent


def run(quick: bool, out_dir: Path, seed: int = 0, progress=None):
    rows, figures = [], []
    ch_epochs, mt_epochs = (2, 6) if quick else (6, 30)
    bar = part_bar(progress, 3 * ch_epochs + 3 * mt_epochs)
    x_train, y_train = load_digits("train")
    x_test, y_test = load_digits("test")
    x_train, x_test = (x_train - 0.5) / 0.5, (x_test - 0.5) / 0.5

    # ------------------------------------------------------------------ Counter-Hebb vs backprop
    acc = {}
    for name, top_down, learning in [("bp", "shared", "bp"), ("ch", "shared", "ch"), ("ch-sep", "separate", "ch")]:
        net = butd.fc_net((1, 8, 8), 10, hidden=128, top_down=top_down, rng=seed)
        acc[name] = _acc(_fit(net, x_train, y_train, ch_epochs, 1e-3, 20, seed, learning, bar=bar), x_test, y_test)
    details = (f"FC net 64-128-10 with BU and TD streams, Counter-Hebb updates vs backprop from the same weights on "
               f"the same batches; Adam 1e-3 (x 0.95 per epoch), batch 20, {ch_epochs} epochs")
    for key, what, original in (("ch", "shared", "CH = BP exactly (tests)"),
                                ("ch-sep", "separate", "'near BP' (paper, asymmetric)")):
        rows.append(Row("BU-TD", f"digits FC-128, CH, {what} TD, {ch_epochs} ep", "test acc %", round(acc[key], 2),
                        round(acc["bp"], 2), "backprop", original, f"{what} top-down weights; {details}"))

    # ------------------------------------------------------------------ guided multi-task (Multi-digits)
    rng = np.random.default_rng(seed)
    mx_train, my_train = multi_mnist(x_train, y_train, rng=rng)
    mx_test, my_test = multi_mnist(x_test, y_test, rng=rng)

    def core(s):
        return butd.simple_core((1, 8, 8), channels=16, kernel_size=3, padding=1, pools=((2, 2), (2, 2)), rng=s)

    guided = butd.TaskBUTDNet(core(seed), 10, n_tasks=2, task_embedding=20, rng=seed + 1)
    masks_init = butd.task_masks(guided)
    _fit(guided, mx_train, my_train, mt_epochs, 2e-3, 32, seed, tasks_rng=np.random.default_rng(seed + 2), bar=bar)
    singles = [_fit(butd.BUTDNet(core(seed + 3 + k), 10, rng=seed + 5 + k), mx_train, my_train[:, k], mt_epochs, 2e-3,
                    32, seed, bar=bar) for k in range(2)]
    g_acc = [_acc(guided, mx_test, my_test[:, k], task=k) for k in range(2)]
    s_acc = [_acc(singles[k], mx_test, my_test[:, k]) for k in range(2)]
    rows.append(Row("BU-TD", f"Multi-digits, {mt_epochs} ep, guided net", "test acc %, mean of tasks",
                    round(float(np.mean(g_acc)), 2), round(float(np.mean(s_acc)), 2), "two single-task nets",
                    "competitive with MTL baselines (paper)",
                    f"one instruction-guided net told 'left' or 'right' (one random task per image) vs two single-task "
                    f"nets; simple core: 2 x (conv 3x3, 16 channels + depthwise stride-2 'pool'), fc 50; Adam 2e-3 "
                    f"(x 0.95 per epoch), batch 32, {mt_epochs} epochs; every task on every test image"))

    # ------------------------------------------------------------------ mask figure
    masks = butd.task_masks(guided)
    stats = {"init": butd.mask_stats(masks_init), "trained": butd.mask_stats(masks)}
    labels = [layer_names(guided.core)[r["unit"]] for r in stats["trained"]]
    fig, (ax1, ax2) = new_figure(1, 2, figsize=(9, 3.6))
    xpos = np.arange(len(labels))
    for k, name in enumerate(("left", "right")):
        ax1.bar(xpos + (k - 0.5) * 0.4, [r[f"task {k} active %"] for r in stats["trained"]], 0.4, label=name)
    for when, st in stats.items():
        ax2.plot(xpos, [r["overlap (cosine)"] for r in st], "o-", label=when)
    xlabel = "gated layer of the core (index: kind)"
    ax1.set(xticks=xpos, xlabel=xlabel, ylabel="units switched on %", ylim=(0, 100),
            title="BU-TD: units each task switches on (trained)")
    ax2.set(xticks=xpos, xlabel=xlabel, ylabel="binary cosine of the two masks",
            ylim=(0, 1.15), title="overlap of the left / right masks")   # headroom: the legend sits above the curves
    for a in (ax1, ax2):
        a.set_xticklabels(labels, fontsize=8)
        a.legend(fontsize=8, loc="upper left", ncol=2)
        a.grid(alpha=0.3)
    figures.append(save_figure(fig, out_dir, "butd_task_masks"))
    return rows, figures
