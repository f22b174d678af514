"""Instruction-guided multi-task learning: one BU-TD net answers "left digit?" and "right digit?".

The original's Multi-MNIST experiment (royabel/Top-Down-Networks, ``multi_mnist_config``): every
image holds two overlapping digits (``nnlocal.data.multi_mnist`` over whichever MNIST-like base set
is available); the task "left" or "right" enters the top-down network, which switches on a
task-specific sub-network of the bottom-up "simple net" through GaLU gates; one prediction head
answers. Compared with two single-task simple nets (one per task, twice the parameters). Recipe:
Adam(5e-4), batch 64, lr × 0.95 per epoch, one random task per training image, every task for every
test image.

Runs: ``guided`` (the faithful TaskBUTDNet: frozen random task head), ``guided + trained task
head`` (``--extension``: the straight-through task head, an nnlocal extension), ``single left`` and
``single right``. ``--learning ch`` trains every net with Counter-Hebb instead of backprop (the
same gradients with shared weights). Figures: accuracy curves, the task masks (which units each
task switches on, at initialisation and after training) and their per-layer statistics.

    NNLOCAL_DATA=../shared/data python demos/butd_multitask.py --dataset mnist --epochs 5
    python demos/butd_multitask.py --dataset fashion-mnist --epochs 3       # Multi-Fashion-MNIST
    python demos/butd_multitask.py --dataset digits --epochs 1              # Multi-digits, seconds
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from nnlocal.cli import HelpFormatter, run
from nnlocal import optim
from nnlocal.data import MNIST_MEAN, MNIST_STD, DataLoader, load_train_test, multi_mnist, normalize
from nnlocal.methods import butd
from nnlocal.report import new_figure, print_table, save_figure, write_index

TASKS = ("left", "right")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist", "digits"],
                   help="base set of the two-digit images")
    p.add_argument("--epochs", type=int, default=5, help="the original trained 100")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="nnlocal-out/", help="output folder (results go to OUT/butd_multitask/)")
    p.add_argument("--learning", default="bp", choices=["bp", "ch"], help="backprop (the original's) or Counter-Hebb")
    p.add_argument("--extension", action=argparse.BooleanOptionalAction, default=True,
                   help="also train a guided net whose task head learns (straight-through estimator)")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--gamma", type=float, default=0.95, help="lr factor per epoch")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--task-embedding", type=int, default=50)
    p.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    return p.parse_args(argv)


def make_core(in_shape, seed):
    """The simple net; on small images (the 8x8 digits) 16 channels, 3x3 convolutions with padding
    and 2x2 pools."""
    if in_shape[-1] >= 16:
        return butd.simple_core(in_shape, rng=seed)
    return butd.simple_core(in_shape, channels=16, kernel_size=3, padding=1, pools=((2, 2), (2, 2)), rng=seed)


def learn(net, opt, logits, y, learning):
    loss, g = butd.loss_and_grad("cross_entropy", logits, y)
    if learning == "ch":
        butd.counter_hebb_(net, g)
    else:
        net.backward(g)
    opt.step()
    return loss


def evaluate(net, x, y, task=None, batch=500) -> float:
    """Accuracy % on ``y``; a guided net is told ``task`` for every image."""
    correct = 0
    for i in range(0, len(x), batch):
        xb = x[i:i + batch]
        logits = net(xb) if task is None else net(xb, np.full(len(xb), task))
        correct += int(np.sum(logits.argmax(axis=1) == y[i:i + batch]))
    return 100.0 * correct / len(x)


def tile(mask: np.ndarray) -> np.ndarray:
    """A unit's mask as a 2-d picture: conv maps (C, H, W) as a grid of channels, vectors as a square."""
    if mask.ndim == 3:
        c, h, w = mask.shape
        cols = int(np.ceil(np.sqrt(c)))
        rows = int(np.ceil(c / cols))
        pic = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan)
        for k in range(c):
            r, q = divmod(k, cols)
            pic[r * (h + 1):r * (h + 1) + h, q * (w + 1):q * (w + 1) + w] = mask[k]
        return pic
    flat = mask.reshape(-1).astype(float)
    cols = int(np.ceil(np.sqrt(flat.size)))
    pic = np.full(int(np.ceil(flat.size / cols)) * cols, np.nan)
    pic[:flat.size] = flat
    return pic.reshape(-1, cols)


def mask_figure(masks: dict, title: str):
    """Per gated unit: red = only 'left' on, blue = only 'right' on, white = both, black = neither."""
    names = list(masks)
    fig, axes = new_figure(1, len(names), figsize=(2.6 * len(names), 3.2))
    for ax, name in zip(np.atleast_1d(axes), names):
        a, b = (tile(m) for m in masks[name][:2])
        rgb = np.zeros(a.shape + (3,))
        rgb[..., 0] = np.nan_to_num(a)
        rgb[..., 2] = np.nan_to_num(b)
        rgb[..., 1] = np.nan_to_num(a) * np.nan_to_num(b)
        rgb[np.isnan(a)] = 0.5
        ax.imshow(rgb, interpolation="nearest")
        ax.set_title(f"unit {name}\n{masks[name][0].shape}", fontsize=8)
        ax.axis("off")
    fig.suptitle(title + "  (red: left only, blue: right only, white: both)", fontsize=9)
    return fig


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out) / "butd_multitask"
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)

    # ------------------------------------------------------------------ data: two digits per image
    x_tr, y_tr, x_te, y_te, notes = load_train_test(args.dataset)
    base_train, base_test = (x_tr, y_tr), (x_te, y_te)
    for note in notes:
        print("note:", note)
    if args.limit:
        base_train = tuple(a[:args.limit] for a in base_train)
    x_train, y_train = multi_mnist(*base_train, rng=rng)       # y: (N, 2) = (left, right) labels
    x_test, y_test = multi_mnist(*base_test, rng=rng)
    x_train, x_test = normalize(x_train, MNIST_MEAN, MNIST_STD), normalize(x_test, MNIST_MEAN, MNIST_STD)
    in_shape = x_train.shape[1:]
    print(f"Multi-{args.dataset}: {len(x_train)} train / {len(x_test)} test images of "
          f"{'x'.join(map(str, in_shape))}; {args.learning.upper()}, Adam {args.lr} (x{args.gamma}/epoch), batch {args.batch_size}, {args.epochs} epoch(s)")

    # ------------------------------------------------------------------ models
    def guided(train_task_head):
        return butd.TaskBUTDNet(make_core(in_shape, args.seed), 10, n_tasks=2, task_embedding=args.task_embedding,
                                train_task_head=train_task_head, rng=args.seed + 1)

    nets = {"guided": guided(False)}
    if args.extension:
        nets["guided + trained task head"] = guided(True)
    for k, task in enumerate(TASKS):
        nets[f"single {task}"] = butd.BUTDNet(make_core(in_shape, args.seed + 2 + k), 10, rng=args.seed + 4 + k)
    opts = {n: optim.Adam(net.parameters(), lr=args.lr) for n, net in nets.items()}
    scheds = {n: optim.ExponentialLR(o, args.gamma) for n, o in opts.items()}
    params = {n: sum(p.data.size for p in net.parameters() if p.requires_grad) for n, net in nets.items()}
    masks_init = butd.task_masks(nets["guided"])

    # ------------------------------------------------------------------ training
    history = {n: {"left": [], "right": [], "mean": [], "seconds": []} for n in nets}
    task_rng = np.random.default_rng(args.seed + 100)
    for epoch in range(args.epochs):
        loader = DataLoader(x_train, y_train, args.batch_size, shuffle=True, rng=args.seed + epoch)
        times = dict.fromkeys(nets, 0.0)
        for xb, yb in tqdm(loader, desc=f"epoch {epoch + 1}", unit="batch", leave=False, mininterval=1.0):
            tasks = task_rng.integers(0, 2, len(xb))             # one random task per image
            for name, net in nets.items():
                t0 = time.perf_counter()
                opts[name].zero_grad()
                if name.startswith("guided"):
                    learn(net, opts[name], net(xb, tasks), yb[np.arange(len(xb)), tasks], args.learning)
                else:
                    k = TASKS.index(name.split()[-1])
                    learn(net, opts[name], net(xb), yb[:, k], args.learning)
                times[name] += time.perf_counter() - t0
        for name, net in nets.items():
            scheds[name].step()
            h = history[name]
            for k, task in enumerate(TASKS):
                if name.startswith("guided"):
                    h[task].append(evaluate(net, x_test, y_test[:, k], task=k))
                elif name == f"single {task}":
                    h[task].append(evaluate(net, x_test, y_test[:, k]))
            h["mean"].append(float(np.mean([h[t][-1] for t in TASKS if h[t]])))
            h["seconds"].append(times[name])
        print(f"epoch {epoch + 1:2d} | " + " | ".join(
            f"{n}: {history[n]['mean'][-1]:.2f} %" for n in nets), flush=True)

    # ------------------------------------------------------------------ results
    rows = []
    for name in nets:
        h = history[name]
        rows.append({"model": name, "left %": h["left"][-1] if h["left"] else None,
                     "right %": h["right"][-1] if h["right"] else None, "parameters": params[name],
                     "s/epoch": float(np.mean(h["seconds"]))})
    singles = [n for n in nets if n.startswith("single")]
    rows.append({"model": "two single-task nets", "left %": history["single left"]["left"][-1],
                 "right %": history["single right"]["right"][-1],
                 "parameters": sum(params[n] for n in singles),
                 "s/epoch": float(sum(np.mean(history[n]["seconds"]) for n in singles))})
    for r in rows:
        r["mean %"] = float(np.mean([r["left %"], r["right %"]])) if r["left %"] is not None \
            and r["right %"] is not None else None
    rows = [r for r in rows if r["mean %"] is not None]
    table = print_table(rows, ["model", "left %", "right %", "mean %", "parameters", "s/epoch"],
                        title=f"Multi-{args.dataset}, {args.epochs} epoch(s), {args.learning.upper()}, "
                              f"every task on every test image")

    masks_final = butd.task_masks(nets["guided"])
    stat_rows = []
    for when, masks in (("init", masks_init), ("trained", masks_final)):
        for r in butd.mask_stats(masks):
            stat_rows.append({"masks": when, **r})
    mask_table = print_table(stat_rows, title="Task masks of the guided net (active % per task, overlap)")
    if args.extension:
        ext_rows = [{"masks": "trained task head", **r}
                    for r in butd.mask_stats(butd.task_masks(nets["guided + trained task head"]))]
        mask_table += "\n\n" + print_table(ext_rows, title="Task masks with the trained task head (extension)")

    figures = []
    fig, ax = new_figure(figsize=(7, 4))
    epochs = np.arange(1, args.epochs + 1)
    for i, name in enumerate(nets):
        for task, ls in zip(TASKS, ("-", "--")):
            if history[name][task]:
                ax.plot(epochs, history[name][task], ls, marker="o", ms=3, color=f"C{i}", label=f"{name}: {task}")
    ax.set(xlabel="epoch", ylabel="test accuracy %", title=f"Multi-{args.dataset}: guided vs single-task")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    figures.append(save_figure(fig, out, "butd_multitask_curves"))
    figures.append(save_figure(mask_figure(masks_init, "Task masks at initialisation"), out, "butd_masks_init"))
    figures.append(save_figure(mask_figure(masks_final, f"Task masks after {args.epochs} epoch(s)"), out,
                               "butd_masks_trained"))
    fig, (ax1, ax2) = new_figure(1, 2, figsize=(10, 3.6))
    units = [r["unit"] for r in stat_rows if r["masks"] == "trained"]
    xpos = np.arange(len(units))
    for j, (when, hatch) in enumerate((("init", "//"), ("trained", ""))):
        sel = [r for r in stat_rows if r["masks"] == when]
        for k, task in enumerate(TASKS):
            ax1.bar(xpos + (2 * j + k - 1.5) * 0.2, [r[f"task {k} active %"] for r in sel], 0.2, color=f"C{k}",
                    hatch=hatch, alpha=0.6 if when == "init" else 1.0, label=f"{task} ({when})")
        ax2.plot(xpos, [r["overlap (cosine)"] for r in sel], "o-", label=when)
    ax1.set(xticks=xpos, xticklabels=units, xlabel="gated unit (core layer)", ylabel="active %",
            title="Units switched on per task")
    ax2.set(xticks=xpos, xticklabels=units, xlabel="gated unit (core layer)", ylabel="binary cosine",
            title="Overlap of the two tasks' masks", ylim=(0, 1.05))
    for a in (ax1, ax2):
        a.legend(fontsize=7)
        a.grid(alpha=0.3)
    figures.append(save_figure(fig, out, "butd_mask_stats"))

    results = {"args": vars(args), "history": history, "summary": rows, "mask_stats": stat_rows}
    (out / "results.json").write_text(json.dumps(results, indent=1))
    write_index(out, figures, {"Accuracy": table, "Task masks": mask_table},
                title=f"BU-TD instruction-guided multi-task learning (Multi-{args.dataset})")
    print(f"\nresults: {out / 'results.json'}; figures: {', '.join(str(f) for f in figures)}")
    return results


if __name__ == "__main__":
    run(main)
