"""EmbedderSDR: binary sparse distributed representations with k-winners-take-all and a triplet loss.

The README experiment of dizcza/EmbedderSDR, from scratch:

* **kWTA**: MLP in-64-512, then a soft kWTA (sparsity 0.05, hardness 2, sigmoid while training,
  binary at test time), trained with a triplet cosine loss (margin 0.5) on random triples;
  classified by the nearest binarised class centroid (cosine distance);
* **kWTA + scaling**: the same with synaptic scaling around the kWTA (boost factor 1);
* **softmax**: the same MLP with the kWTA replaced by ReLU, cross-entropy on its 512 outputs,
  argmax accuracy (the original's baseline, quirk included).

All three: Adam(1e-3, weight decay 1e-5), batch 256, StepLR(10, 0.5); the kWTA runs also step the
original's (compounding) hardness scheduler: step 10, x2 up to 20. Figures: the per-class mean SDR,
the information plane over epochs, accuracy curves, firing-rate histograms with and without
synaptic scaling. The original reports about 97.3 % (kWTA) vs 98.0 % (softmax) test accuracy on
MNIST after about 20 epochs.

    python demos/kwta_sdr.py --dataset fashion-mnist --epochs 20
    python demos/kwta_sdr.py --dataset fashion-mnist --epochs 20 --seeds 3 --out runs/kwta   # half an hour; resumable
    nnlocal datasets --download mnist                                      # once: MNIST into the cache
    python demos/kwta_sdr.py --dataset mnist
    python demos/kwta_sdr.py --dataset digits --epochs 1                   # seconds, no download
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
from nnlocal.methods.kwta.reference import kwta_k
from nnlocal.methods import kwta
from nnlocal.report import format_seconds, mean_std, new_figure, print_table, save_figure, write_index, write_text

CAPTIONS = {
    "kwta_sdr_heatmap": "How often each kWTA unit fires for the test images of each class: every image switches on "
                        "exactly k units, so a bright cell is a unit a class uses almost always; different bright "
                        "columns in different rows mean distinct ensembles per class.",
    "kwta_sdr_mi_plane": "The information plane of the last layer, one point per epoch (colour = epoch): I(X;T) "
                         "how much of the input the code keeps, I(T;Y) how much it says about the label; both "
                         "are capped at log2 N of the sample (see the title).",
    "kwta_sdr_accuracy": "Train (dashed) and test (solid) accuracy per epoch: kWTA and kWTA + scaling by the "
                         "nearest binary class centroid, softmax by the argmax over all of its outputs.",
    "kwta_sdr_firing_rates": "How often each unit fires on the test set, without and with synaptic scaling: the "
                             "dashed line is k/D, the rate of a perfectly shared code; scaling should shrink the "
                             "dead (rate 0) and over-active units.",
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=HelpFormatter)
    p.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "mnist", "digits"])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=int, default=1,
                   help="number of seeds SEED, SEED+1, ...; with several, seed s goes to OUT/seed<s>/kwta_sdr/ "
                        "and a seed finished before with the same arguments is skipped")
    p.add_argument("--out", default="nnlocal-out/", help="output folder (figures go to OUT/kwta_sdr/)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--embedding", type=int, default=512, help="size D of the kWTA layer")
    p.add_argument("--sparsity", type=float, default=0.05)
    p.add_argument("--hardness", type=float, default=2.0)
    p.add_argument("--hard", action="store_true", help="hardsigmoid instead of sigmoid while training")
    p.add_argument("--boost-factor", type=float, default=1.0, help="synaptic scaling boost factor b")
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS threads (the matrices are small: one thread is fastest, and 8x faster on a busy machine)")
    p.add_argument("--mi-samples", type=int, default=1000,
                   help="test samples used for the information plane (plug-in estimates saturate at log2 N)")
    kernels.add_argument(p)
    return p.parse_args(argv)


def flat(x):
    return x.reshape(len(x), -1)


def embed(model, x, batch: int = 4096):
    """Eval-mode outputs of ``model`` for all of ``x``."""
    model.eval()
    return np.concatenate([model(x[i:i + batch]) for i in range(0, len(x), batch)])


def main(argv=None):
    args = parse_args(argv)
    kernels.use(args.kernels)
    threadpool_limits(limits=args.threads)
    records = run_seeds(run_one, args, "kwta_sdr/history.json")
    if len(records) > 1:
        rows = []
        for model in [r["model"] for r in records[0]["final"]]:
            finals = [next(f for f in r["final"] if f["model"] == model) for r in records]
            rows.append({"model": model, "seeds": f"{args.seed}..{args.seed + args.seeds - 1}",
                         "test %": mean_std([f["test acc %"] for f in finals]),
                         "best test %": mean_std([f["best test %"] for f in finals])})
        print_table(rows, title=f"Test accuracy over seeds (mean ± std; {args.dataset}, {args.epochs} epoch(s))")
    return records


def run_one(args):
    """One seed: train the three models, write OUT/kwta_sdr/ (history.json last) and return it."""
    t_start = time.perf_counter()
    out = Path(args.out) / "kwta_sdr"
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)

    # ------------------------------------------------------------------ data
    x_train, y_train, x_test, y_test, notes = load_train_test(args.dataset)
    for n in notes:
        print("note:", n)
    mean, std = float(x_train.mean()), float(x_train.std())
    x_train, x_test = flat(normalize(x_train, mean, std)), flat(normalize(x_test, mean, std))
    n_in = x_train.shape[1]
    k = kwta_k(args.sparsity, args.embedding)
    print(f"{args.dataset}: {len(x_train)} train / {len(x_test)} test, {n_in} inputs; "
          f"kWTA keeps k = {k} of {args.embedding} units")
    mi_idx = rng.choice(len(x_test), size=min(args.mi_samples, len(x_test)), replace=False)

    # ------------------------------------------------------------------ models
    def kwta_net(scaling: bool):
        net = kwta.mlp_kwta(n_in, 64, args.embedding, args.sparsity, args.hardness, args.hard, rng=rng)
        if scaling:
            setattr(net, "3", kwta.SynapticScaling(net[3], boost_factor=args.boost_factor))
        return net

    runs = {
        "kWTA": kwta_net(scaling=False),
        "kWTA + scaling": kwta_net(scaling=True),
        "softmax": kwta.mlp_softmax(n_in, 64, args.embedding, rng=rng),
    }
    history = {name: {"train": [], "test": [], "loss": [], "I(X;T)": [], "I(T;Y)": []} for name in runs}
    final = {}

    for name, model in runs.items():
        is_kwta = name != "softmax"
        opt = optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5)
        lr_sched = optim.StepLR(opt, step_size=10, gamma=0.5)
        if is_kwta:
            kwta_sched = kwta.KWTAScheduler(model, step_size=10, gamma_sparsity=0.7, min_sparsity=0.05,
                                            gamma_hardness=2.0, max_hardness=20)
            criterion = kwta.TripletLossSampler(kwta.TripletCosineLoss(margin=0.5), rng=rng)
        else:
            criterion = nn.CrossEntropyLoss()
        loader = DataLoader(x_train, y_train, args.batch_size, shuffle=True, rng=rng)
        t0 = time.perf_counter()
        for epoch in tqdm(range(args.epochs), desc=name, unit="epoch"):
            model.train()
            losses = []
            for xb, yb in loader:
                out_b = model(xb)
                loss = criterion(out_b, yb)
                if loss is None:          # no valid triple in this batch: skip the step
                    continue
                model.zero_grad()
                model.backward(criterion.backward())
                opt.step()
                losses.append(loss)
            lr_sched.step()
            if is_kwta:
                kwta_sched.step()

            # -------------------------------------------------- evaluation (eval mode)
            e_train, e_test = embed(model, x_train), embed(model, x_test)
            if is_kwta:
                classes, centroids = kwta.binary_centroids(e_train, y_train, args.sparsity)
                acc_train = np.mean(kwta.predict_nearest_centroid(e_train, classes, centroids) == y_train)
                acc_test = np.mean(kwta.predict_nearest_centroid(e_test, classes, centroids) == y_test)
            else:
                acc_train = np.mean(e_train.argmax(1) == y_train)
                acc_test = np.mean(e_test.argmax(1) == y_test)
            ixt, ity = metrics.information_plane(x_test[mi_idx], e_test[mi_idx], y_test[mi_idx])
            h = history[name]
            h["train"].append(float(acc_train))
            h["test"].append(float(acc_test))
            h["loss"].append(float(np.mean(losses)) if losses else float("nan"))
            h["I(X;T)"].append(ixt)
            h["I(T;Y)"].append(ity)
        h["seconds"] = round(time.perf_counter() - t0, 1)
        final[name] = {"model": name, "train acc %": 100 * h["train"][-1], "test acc %": 100 * h["test"][-1],
                       "best test %": 100 * max(h["test"]), "time": format_seconds(h["seconds"])}
        if not is_kwta:   # the original's baseline: argmax over all D outputs, though labels use only the first ones
            n_classes = int(max(y_train.max(), y_test.max())) + 1
            final[name]["argmax on a non-label output %"] = 100.0 * float(np.mean(e_test.argmax(1) >= n_classes))
        if is_kwta:
            active = e_test.sum(axis=1)
            stats = metrics.sdr_statistics(e_test)
            final[name].update({"exactly k bits": bool(np.all(active == k)),
                                "dead units": stats["dead"], "over-active": stats["overactive"],
                                "usage entropy": stats["usage_entropy"], "code entropy (bits)": stats["code_entropy"]})
            final[name]["_stats"] = stats
            final[name]["_codes"] = e_test

    # ------------------------------------------------------------------ check: exactly k bits
    for name in ("kWTA", "kWTA + scaling"):
        active = final[name]["_codes"].sum(axis=1)
        print(f"{name}: active bits per test embedding: min {int(active.min())}, max {int(active.max())} "
              f"(k = {k}); exactly k for every sample: {bool(np.all(active == k))}")

    stray = final["softmax"]["argmax on a non-label output %"]
    if stray > 0:
        notes.append(f"softmax: {stray:.1f} % of the test predictions are outputs {n_classes}..{args.embedding - 1}, "
                     f"which no label uses. The original's baseline takes the argmax over all {args.embedding} ReLU "
                     "outputs of the MLP (a faithful quirk; cross-entropy reads them as logits); training pushes the "
                     "extra outputs to 0, so the quirk fades after a few epochs, but early on it can put the "
                     "baseline below chance.")

    # ------------------------------------------------------------------ figures
    figures = []
    codes = final["kWTA"]["_codes"]
    classes = np.unique(y_test)
    fig, ax = new_figure(figsize=(10, 3.2))
    heat = np.stack([codes[y_test == c].mean(axis=0) for c in classes])
    im = ax.imshow(heat, aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_yticks(range(len(classes)), [str(c) for c in classes])
    ax.set_xlabel("kWTA unit")
    ax.set_ylabel("class")
    ax.set_title(f"Mean binary SDR per class ({args.dataset} test set, k = {k} of {args.embedding})")
    fig.colorbar(im, ax=ax, label="firing probability")
    figures.append(save_figure(fig, out, "kwta_sdr_heatmap"))

    fig, axes = new_figure(1, 3, figsize=(13, 3.8))
    for ax, name in zip(axes, runs):
        h = history[name]
        sc = ax.scatter(h["I(X;T)"], h["I(T;Y)"], c=np.arange(1, len(h["I(X;T)"]) + 1), cmap="plasma", s=30)
        ax.plot(h["I(X;T)"], h["I(T;Y)"], color="0.7", lw=0.8, zorder=0)
        ax.set_xlabel("I(X;T), bits")
        ax.set_ylabel("I(T;Y), bits")
        ax.set_title(name)
        fig.colorbar(sc, ax=ax, label="epoch")
    fig.suptitle(f"Information plane of the last layer (plug-in / binning estimates on {len(mi_idx)} test samples; "
                 f"ceiling log2 N = {np.log2(len(mi_idx)):.2f} bits)", fontsize=9)
    figures.append(save_figure(fig, out, "kwta_sdr_mi_plane"))

    from matplotlib.ticker import MaxNLocator

    fig, ax = new_figure(figsize=(8.5, 4))
    epochs = np.arange(1, args.epochs + 1)
    for (name, h), color in zip(history.items(), ["C0", "C2", "C1"]):
        ax.plot(epochs, 100 * np.array(h["train"]), "--", color=color, label=f"{name} train")
        ax.plot(epochs, 100 * np.array(h["test"]), "-o", ms=3, color=color, label=f"{name} test")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("accuracy %")
    ax.set_title(f"{args.dataset}: nearest binary centroid (kWTA) vs argmax (softmax)")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))   # beside the curves
    figures.append(save_figure(fig, out, "kwta_sdr_accuracy"))

    fig, axes = new_figure(1, 2, figsize=(11, 3.8), sharey=True)
    for ax, name in zip(axes, ("kWTA", "kWTA + scaling")):
        st = final[name]["_stats"]
        ax.hist(st["firing_rate"], bins=40, range=(0, max(0.5, st["firing_rate"].max())), color="C0")
        ax.axvline(k / args.embedding, color="k", ls="--", lw=1, label=f"k/D = {k / args.embedding:.3f}")
        ax.set_title(f"{name}: {st['dead']} dead, {st['overactive']} over-active (>0.5) units\n"
                     f"usage entropy {st['usage_entropy']:.3f}, code entropy {st['code_entropy']:.2f} bits",
                     fontsize=9)
        ax.set_xlabel("firing rate of a unit on the test set")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("units")
    figures.append(save_figure(fig, out, "kwta_sdr_firing_rates"))

    # ------------------------------------------------------------------ table
    rows = [{k_: v for k_, v in r.items() if not k_.startswith("_")} for r in final.values()]
    title = (f"{args.dataset}, {args.epochs} epoch(s), seed {args.seed}  "
             "(original, MNIST ~20 epochs: kWTA 97.3 %, softmax 98.0 % test)")
    table = print_table(rows, title=title)
    if stray > 0:
        print(f"\nnote: {notes[-1]}")
    write_text(out / "results.md", f"{title}\n\n{table}\n" + "".join(f"\nnote: {n}\n" for n in notes))
    write_index(out, figures, {"Results": table}, title=f"kWTA SDR demo: {args.dataset}", captions=CAPTIONS)
    record = {"args": vars(args), "history": history, "final": rows, "wall_s": round(time.perf_counter() - t_start, 1)}
    text = json.dumps(record, indent=1, default=float)
    write_text(out / "history.json", text)   # last: a finished run
    print(f"\nfigures: {out}/index.md")
    return json.loads(text)                # what a rerun reads back when it skips this seed


if __name__ == "__main__":
    run(main)
