"""Instruction-guided multi-task learning: one BU-TD net answers "left item?" and "right item?".

The original's Multi-MNIST experiment (royabel/Top-Down-Networks, ``multi_mnist_config``): every
image holds two overlapping items; the task "left" or "right" enters the top-down network, which
switches on a task-specific sub-network of the bottom-up "simple net" through GaLU gates, and one
prediction head answers. Data: ``multi-fashion-mnist`` (default) or ``multi-mnist`` from
``nnlocal.data.load_dataset`` (train 50,000 / val 10,000 / test 10,000, built with ``--data-seed``
and cached), or ``digits`` / ``mnist`` built on the fly over those base sets (quick checks).

Models (``--models``; every model of a seed starts from the same core weights):

* ``guided``: the faithful TaskBUTDNet, its task head frozen at its random initialisation;
* ``guided-trained``: the same with the straight-through trained task head (nnlocal extension);
* ``hard-sharing``: the multi-task baseline, shared simple core + one head per task, losses summed;
* ``single``: two single-task simple nets, one per task (twice the parameters).

Recipe (the original's): Adam 5e-4, batch 64, lr x 0.95 per epoch, one random task per training
image for the guided nets (the hard-sharing net and the single-task nets see their labels for
every image), every task on every validation and test image, MNIST normalisation. Per seed,
``OUT/butd_multitask/seedS/`` gets the per-epoch history (``results.json``, rewritten every
epoch) and a checkpoint, so an interrupted run resumes where it stopped; finished seeds are
skipped. The summary over seeds (mean ± std per task, parameters, time per epoch) goes to
``summary.md`` / ``summary.csv`` / ``summary.json``, the curves to ``curves.csv`` and figures.

    python demos/butd_multitask.py --dataset multi-fashion-mnist --epochs 30 --seeds 3
    python demos/butd_multitask.py --dataset multi-fashion-mnist --seeds 3 --aggregate-only
    python demos/butd_multitask.py --dataset digits --epochs 1              # Multi-digits, seconds
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import time
from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator
from tqdm.auto import tqdm

from nnlocal import kernels, optim, utils
from nnlocal.cli import HelpFormatter, run
from nnlocal.data import (MNIST_MEAN, MNIST_STD, DataLoader, build_multi_split, load_dataset, load_train_test,
                          normalize)
from nnlocal.methods import butd
from nnlocal.metrics import evaluate
from nnlocal.report import format_table, mean_std, new_figure, print_table, save_figure, write_index, write_text

TASKS = ("left", "right")
MODELS = ("guided", "guided-trained", "hard-sharing", "single-left", "single-right")
LABELS = {"guided": "guided BU-TD (faithful: frozen task head)",
          "guided-trained": "guided BU-TD + trained task head (extension)",
          "hard-sharing": "hard-sharing multi-task baseline",
          "single-left": "single-task net (left)", "single-right": "single-task net (right)",
          "singles": "two single-task nets"}
CAPTIONS = {
    "butd_multitask_curves": "Accuracy per epoch, averaged over the two tasks (left and right item), on the "
                             "validation split (left panel) and the test split (right panel), one line per model; "
                             "with several seeds the band is one standard deviation. The guided net solves both "
                             "tasks with one set of weights: compare it with the hard-sharing baseline and with "
                             "the two single-task nets together.",
    "butd_masks_init": "The task masks of the guided net before training, one panel per gated layer: a pixel is a "
                       "unit, red when only the 'left' instruction leaves it on, blue when only 'right' does, "
                       "white when both do, black when neither does.",
    "butd_masks_trained": "The same task masks after training (colours as in the figure before). In the faithful "
                          "model the task head is frozen, so the masks change only through the trained "
                          "top-down weights that carry the instruction down.",
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--dataset", default="multi-fashion-mnist",
                   choices=["multi-fashion-mnist", "multi-mnist", "mnist", "digits"],
                   help="the named two-item datasets, or one built on the fly over a base set")
    p.add_argument("--epochs", type=int, default=5, help="the original trained 100")
    p.add_argument("--seed", type=int, default=0, help="first model seed")
    p.add_argument("--seeds", type=int, default=1, help="number of seeds: SEED, SEED+1, ...")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the two-item images (same for every model seed)")
    p.add_argument("--models", nargs="+", default=["guided", "guided-trained", "hard-sharing", "single"],
                   choices=["guided", "guided-trained", "hard-sharing", "single"])
    p.add_argument("--out", default="nnlocal-out/", help="output folder (results go to OUT/butd_multitask/)")
    p.add_argument("--learning", default="bp", choices=["bp", "ch"],
                   help="backprop (the original's) or Counter-Hebb for the BU-TD nets")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--gamma", type=float, default=0.95, help="lr factor per epoch")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--task-embedding", type=int, default=50)
    p.add_argument("--limit", type=int, default=None, help="use only the first N training images")
    kernels.add_argument(p)
    p.add_argument("--aggregate-only", action="store_true", help="only rebuild the summary from saved seeds")
    args = p.parse_args(argv)
    for name in ("epochs", "seeds", "batch_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


# ================================================================================ data
def load_data(args):
    """``{"train"|"val"|"test": (x normalised, y (N, 2))}`` and notes."""
    notes = []
    if args.dataset.startswith("multi-"):
        splits = {s: load_dataset(args.dataset, s, seed=args.data_seed) for s in ("train", "val", "test")}
    else:   # built on the fly: validation = the last sixth of the base training set (10k of 60k)
        x_tr, y_tr, x_te, y_te, notes = load_train_test(args.dataset)
        splits = {s: build_multi_split((x_tr, y_tr), (x_te, y_te), s, args.data_seed, len(x_tr) // 6)[:2]
                  for s in ("train", "val", "test")}
    if args.limit:
        splits["train"] = tuple(a[:args.limit] for a in splits["train"])
    return {s: (normalize(x, MNIST_MEAN, MNIST_STD), y) for s, (x, y) in splits.items()}, notes


# ================================================================================ models
def make_core(in_shape, rng):
    """The simple net; on small images (the 8x8 digits) 16 channels, 3x3 convolutions with padding, 2x2 pools."""
    if in_shape[-1] >= 16:
        return butd.simple_core(in_shape, rng=rng)
    return butd.simple_core(in_shape, channels=16, kernel_size=3, padding=1, pools=((2, 2), (2, 2)), rng=rng)


def build_models(args, in_shape, seed):
    """Every model's core starts from the same weights (generator [seed, 0]); heads from [seed, 1]."""
    names = [m for m in MODELS if m in args.models or (m.startswith("single") and "single" in args.models)]
    nets = {}
    for name in names:
        core, head_rng = make_core(in_shape, np.random.default_rng([seed, 0])), np.random.default_rng([seed, 1])
        if name.startswith("guided"):
            nets[name] = butd.TaskBUTDNet(core, 10, n_tasks=2, task_embedding=args.task_embedding,
                                          train_task_head=(name == "guided-trained"), rng=head_rng)
        elif name == "hard-sharing":
            nets[name] = butd.HardSharingNet(core, 10, n_tasks=2, rng=head_rng)
        else:
            nets[name] = butd.BUTDNet(core, 10, rng=head_rng)
    return nets


def count_params(net) -> dict:
    ps = list(net.parameters())
    return {"trainable": int(sum(p.data.size for p in ps if p.requires_grad)),
            "frozen": int(sum(p.data.size for p in ps if not p.requires_grad))}


def train_step(name, net, opt, xb, yb, tasks, learning):
    opt.zero_grad()
    if name == "hard-sharing":
        loss, g = butd.multitask_loss_and_grad(net(xb), yb)
        net.backward(g)
    else:
        if name.startswith("guided"):
            logits, target = net(xb, tasks), yb[np.arange(len(xb)), tasks]
        else:
            logits, target = net(xb), yb[:, TASKS.index(name.split("-")[1])]
        loss, g = butd.loss_and_grad("cross_entropy", logits, target)
        if learning == "ch":
            butd.counter_hebb_(net, g)
        else:
            net.backward(g)
    opt.step()
    return float(loss)


#: evaluation batch (the results do not depend on it; the conv engine is fastest per image at small batches)
EVAL_BATCH = 128


def accuracy(name, net, x, y) -> dict:
    """Accuracy % per task this model answers (every task on every image)."""
    out = {}
    for k, task in enumerate(TASKS):
        if name.startswith("guided"):
            ev = evaluate(net, x, y[:, k], EVAL_BATCH, forward=lambda xb, k=k: net(xb, k))
        elif name == "hard-sharing":
            ev = evaluate(net, x, y[:, k], EVAL_BATCH, forward=lambda xb, k=k: net(xb)[:, k])
        elif name == f"single-{task}":
            ev = evaluate(net, x, y[:, k], EVAL_BATCH)
        else:
            continue
        out[task] = ev.percent
    return out


# ================================================================================ checkpoints
def _write_json(path: Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=1))          # atomic: a crash leaves the old file or the new one


def save_checkpoint(folder: Path, nets, opts, scheds) -> None:
    """Every net with its Adam state and lr schedule (nnlocal.save: atomic, pickle-free .npz)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, net in nets.items():
        utils.save(net, folder / f"{name}.npz")
        utils.save(opts[name], folder / f"{name}.adam.npz")
        utils.save(scheds[name], folder / f"{name}.lr.npz")


def load_checkpoint(folder: Path, nets, opts, scheds) -> None:
    for name, net in nets.items():
        utils.load(net, folder / f"{name}.npz")
        utils.load(opts[name], folder / f"{name}.adam.npz")
        utils.load(scheds[name], folder / f"{name}.lr.npz")


# ================================================================================ one seed
def run_seed(args, data, seed, out: Path) -> dict:
    folder = out / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    x_train, y_train = data["train"]
    nets = build_models(args, x_train.shape[1:], seed)
    opts = {n: optim.Adam(net.parameters(), lr=args.lr) for n, net in nets.items()}
    scheds = {n: optim.ExponentialLR(o, args.gamma) for n, o in opts.items()}
    config = {k: getattr(args, k) for k in ("dataset", "data_seed", "learning", "lr", "gamma", "batch_size",
                                            "task_embedding", "limit")}
    record = {"seed": seed, "config": config, "models": list(nets), "epochs_done": 0,
              "params": {n: count_params(net) for n, net in nets.items()},
              "history": {n: {"val": {t: [] for t in TASKS}, "test": {t: [] for t in TASKS}, "train_loss": [],
                              "train_s": [], "eval_s": []} for n in nets}}
    masks_init = butd.task_masks(nets["guided"]) if "guided" in nets else None
    path = folder / "results.json"
    if path.exists():
        old = json.loads(path.read_text())
        if old["config"] == config and old["models"] == list(nets) and old["epochs_done"] > 0:
            if old["epochs_done"] >= args.epochs:
                print(f"seed {seed}: {old['epochs_done']} epoch(s) already done, skipped")
                return old
            record = old
            load_checkpoint(folder / "checkpoint", nets, opts, scheds)
            print(f"seed {seed}: resuming after epoch {old['epochs_done']}")
        else:
            print(f"seed {seed}: {path} was made with another configuration; starting again")
    for epoch in range(record["epochs_done"], args.epochs):
        # the batch order and the task draws of an epoch depend only on (seed, epoch): resumable
        loader = DataLoader(x_train, y_train, args.batch_size, shuffle=True, rng=np.random.default_rng([seed, epoch, 1]))
        task_rng = np.random.default_rng([seed, epoch, 2])
        seconds, losses = dict.fromkeys(nets, 0.0), {n: [] for n in nets}
        for xb, yb in tqdm(loader, desc=f"seed {seed} epoch {epoch + 1}", unit="batch", leave=False, mininterval=2.0):
            tasks = task_rng.integers(0, 2, len(xb))             # one random task per image
            for name, net in nets.items():
                t0 = time.perf_counter()
                losses[name].append(train_step(name, net, opts[name], xb, yb, tasks, args.learning))
                seconds[name] += time.perf_counter() - t0
        for name, net in nets.items():
            scheds[name].step()
            h = record["history"][name]
            t0 = time.perf_counter()
            for split in ("val", "test"):
                for task, acc in accuracy(name, net, *data[split]).items():
                    h[split][task].append(acc)
            h["eval_s"].append(time.perf_counter() - t0)
            h["train_s"].append(seconds[name])
            h["train_loss"].append(float(np.mean(losses[name])))
        record["epochs_done"] = epoch + 1
        save_checkpoint(folder / "checkpoint", nets, opts, scheds)
        _write_json(path, record)
        print(f"seed {seed} epoch {epoch + 1:3d} | test " + " | ".join(
            f"{n}: " + "/".join(f"{record['history'][n]['test'][t][-1]:.2f}" for t in TASKS
                                if record["history"][n]["test"][t]) for n in nets), flush=True)
    if masks_init is not None and seed == args.seed and record.get("mask_stats") is None:
        masks_final = butd.task_masks(nets["guided"])
        record["mask_stats"] = {when: butd.mask_stats(m) for when, m in (("init", masks_init), ("trained", masks_final))}
        if "guided-trained" in nets:
            record["mask_stats"]["trained task head"] = butd.mask_stats(butd.task_masks(nets["guided-trained"]))
        _write_json(path, record)
        fig = mask_figure(masks_init, "Task masks at initialisation")
        save_figure(fig, folder, "butd_masks_init")
        fig = mask_figure(masks_final, f"Task masks after {record['epochs_done']} epoch(s)")
        save_figure(fig, folder, "butd_masks_trained")
    return record


# ================================================================================ summary over seeds
def _model_series(records, name, split, task, epochs):
    return np.array([r["history"][name][split][task][:epochs] for r in records])      # (seeds, epochs)


def summarize(records, epochs: int):
    """Rows per model: final-epoch test accuracy per task (mean ± std over seeds), test accuracy at the
    epoch of best validation accuracy, how much the test accuracy rose over the last 10 epochs (in
    points, mean of the tasks and seeds: the plateau check), parameters and seconds per epoch."""
    rows, csv_rows = [], []
    names = [n for n in MODELS if n in records[0]["models"]]
    groups = [(n, [n]) for n in names if not n.startswith("single")]
    if "single-left" in names:
        groups.append(("singles", ["single-left", "single-right"]))
    for label, members in groups:
        per_task, best_task = {}, {}
        for task in TASKS:
            owner = next(m for m in members if records[0]["history"][m]["test"][task])
            test = _model_series(records, owner, "test", task, epochs)
            val = _model_series(records, owner, "val", task, epochs)
            per_task[task] = test[:, -1]
            best_task[task] = (test, val)
        mean = (per_task["left"] + per_task["right"]) / 2
        # model selection on validation: the epoch with the best mean validation accuracy, per seed
        val_mean = (best_task["left"][1] + best_task["right"][1]) / 2
        best_ep = val_mean.argmax(axis=1)
        test_mean = (best_task["left"][0] + best_task["right"][0]) / 2
        at_best = test_mean[np.arange(len(records)), best_ep]
        # plateau: how much the test accuracy (mean of the tasks and the seeds) still rose over the last 10 epochs
        gain = float(test_mean[:, -1].mean() - test_mean[:, -11].mean()) if epochs > 10 else float("nan")
        params = [sum(records[0]["params"][m][k] for m in members) for k in ("trainable", "frozen")]
        train_s = sum(np.mean([np.mean(r["history"][m]["train_s"][:epochs]) for r in records]) for m in members)
        eval_s = sum(np.mean([np.mean(r["history"][m]["eval_s"][:epochs]) for r in records]) for m in members)
        rows.append({"model": LABELS[label], "left %": mean_std(per_task["left"]), "right %": mean_std(per_task["right"]),
                     "mean %": mean_std(mean), "at best val %": mean_std(at_best),
                     "best val epoch": ", ".join(str(int(e) + 1) for e in best_ep),
                     "gain, last 10 epochs": "-" if np.isnan(gain) else f"{gain:+.2f}",
                     "parameters": f"{params[0]:,}" + (f" (+{params[1]:,} frozen)" if params[1] else ""),
                     "train s/epoch": round(train_s, 1), "eval s/epoch": round(eval_s, 1)})
        csv_rows.append({"model": label, "seeds": len(records), "epochs": epochs,
                         **{f"{t}_mean": per_task[t].mean() for t in TASKS},
                         **{f"{t}_std": per_task[t].std(ddof=1) if len(records) > 1 else 0.0 for t in TASKS},
                         "mean_mean": mean.mean(), "mean_std": mean.std(ddof=1) if len(records) > 1 else 0.0,
                         "at_best_val_mean": at_best.mean(),
                         "at_best_val_std": at_best.std(ddof=1) if len(records) > 1 else 0.0,
                         "test_gain_last_10_epochs": gain, "trainable_params": params[0], "frozen_params": params[1],
                         "train_s_per_epoch": train_s, "eval_s_per_epoch": eval_s})
    return rows, csv_rows


def curves_figure(records, epochs: int, title: str):
    """Mean over tasks, mean ± std over seeds, per epoch: validation (left) and test (right)."""
    fig, (*axes, legend_ax) = new_figure(1, 3, figsize=(13, 4.2), gridspec_kw={"width_ratios": [1, 1, 0.55]})
    axes[1].sharey(axes[0])
    x = np.arange(1, epochs + 1)
    names = [n for n in MODELS if n in records[0]["models"]]
    for ax, split in zip(axes, ("val", "test")):
        for i, name in enumerate(names):
            tasks = [t for t in TASKS if records[0]["history"][name][split][t]]
            acc = np.mean([_model_series(records, name, split, t, epochs) for t in tasks], axis=0)
            m, s = acc.mean(axis=0), acc.std(axis=0)
            ax.plot(x, m, "-", marker="o", ms=2.5, color=f"C{i}", label=LABELS[name])
            if len(records) > 1:
                ax.fill_between(x, m - s, m + s, color=f"C{i}", alpha=0.2, lw=0)
        ax.set(xlabel="epoch", ylabel=f"{'validation' if split == 'val' else 'test'} accuracy % (mean of its tasks)",
               title=f"{'Validation' if split == 'val' else 'Test'}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    legend_ax.axis("off")                      # the legend gets its own panel, off the data
    legend_ax.legend(handles, labels, loc="center left", fontsize=7, frameon=False)
    fig.suptitle(title + ("  (bands: ± 1 std over seeds)" if len(records) > 1 else ""), fontsize=10)
    return fig


def write_curves_csv(records, path: Path) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["model", "seed", "epoch", "split", "task", "accuracy_pct", "train_loss", "train_s", "eval_s"])
    for r in records:
        for name, h in r["history"].items():
            for split in ("val", "test"):
                for task in TASKS:
                    for e, acc in enumerate(h[split][task]):
                        w.writerow([name, r["seed"], e + 1, split, task, f"{acc:.2f}", f"{h['train_loss'][e]:.5f}",
                                    f"{h['train_s'][e]:.2f}", f"{h['eval_s'][e]:.2f}"])
    write_text(path, buf.getvalue())


def aggregate(args, out: Path, title: str):
    seeds = range(args.seed, args.seed + args.seeds)
    records = [json.loads((out / f"seed{s}" / "results.json").read_text()) for s in seeds
               if (out / f"seed{s}" / "results.json").exists()]
    records = [r for r in records if r["epochs_done"] > 0]
    if not records:
        print("no finished epochs to summarise")
        return None
    epochs = min(r["epochs_done"] for r in records)
    rows, csv_rows = summarize(records, epochs)
    used = [r["seed"] for r in records]
    over = "mean ± std over seeds" if len(used) > 1 else "seed"
    heading = f"{title}: test accuracy after {epochs} epoch(s), {over} {used} (every task on every test image)"
    table = print_table(rows, title=heading)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(csv_rows[0]))
    w.writeheader()
    w.writerows(csv_rows)
    write_text(out / "summary.csv", buf.getvalue())
    write_curves_csv(records, out / "curves.csv")
    _write_json(out / "summary.json", {"seeds": used, "epochs": epochs, "rows": csv_rows})
    write_text(out / "summary.md", f"{heading}\n\n{table}\n")
    fig = curves_figure(records, epochs, f"{title}, seeds {used}")
    figures = [save_figure(fig, out, "butd_multitask_curves")]
    tables = {"Accuracy": table}
    first = records[0]
    if first.get("mask_stats"):
        tables[f"Task masks of the guided net (seed {first['seed']})"] = "\n\n".join(
            f"{when}:\n\n" + format_table([{("neurons" if k == "units" else k): v for k, v in row.items()}
                                           for row in st])    # 'units': the name in older result files
            for when, st in first["mask_stats"].items())
        figures += [p for p in (out / f"seed{first['seed']}").glob("butd_masks_*.png")]
    write_index(out, figures, tables, title=f"BU-TD instruction-guided multi-task learning ({title})",
                captions=CAPTIONS)
    return rows


# ================================================================================ task-mask pictures
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
    kernels.use(args.kernels)
    out = Path(args.out) / "butd_multitask"
    out.mkdir(parents=True, exist_ok=True)
    title = {"multi-fashion-mnist": "Multi-Fashion-MNIST", "multi-mnist": "Multi-MNIST"}.get(
        args.dataset, f"Multi-{args.dataset} (built on the fly)")
    if not args.aggregate_only:
        data, notes = load_data(args)
        for note in notes:
            print("note:", note)
        x_train = data["train"][0]
        print(f"{title}: {len(x_train)} train / {len(data['val'][0])} val / {len(data['test'][0])} test images of "
              f"{'x'.join(map(str, x_train.shape[1:]))}; {args.learning.upper()}, Adam {args.lr} (x{args.gamma}/epoch), "
              f"batch {args.batch_size}, {args.epochs} epoch(s), seeds {args.seed}..{args.seed + args.seeds - 1}, "
              f"kernels {kernels.current()}")
        for seed in range(args.seed, args.seed + args.seeds):
            run_seed(args, data, seed, out)
    rows = aggregate(args, out, title)
    print(f"\nresults: {out}/summary.md, summary.csv, curves.csv, butd_multitask_curves.png")
    return rows


if __name__ == "__main__":
    run(main)
