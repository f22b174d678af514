"""Summarise the seeded reproduction runs of the demos into the tables and figures of docs/results/.

Each demo writes its own results file per run; this script only reads them:

* ``pan``:    ``RUNS/seed*/pan_lenet5/results.json`` of ``demos/pan_lenet5.py`` (one run per seed)
* ``kwta``:   ``RUNS/seed*/kwta_sdr/history.json`` of ``demos/kwta_sdr.py``
* ``arp``:    ``RUNS/arp_mlp/history.json`` of ``demos/arp_mlp.py --seeds N`` (all seeds in one file)
* ``eqprop``: ``RUNS/seed*/eqprop_mnist/results.json`` of ``demos/eqprop_mnist.py`` (in runs made
  before the demo's fix of 2026-11-30 its ``per_epoch`` field holds a stray integer instead of the
  rows; ``--log-pattern`` then reads the per-epoch table the demo printed into its log)

``demos/<demo>.py --seeds N --out RUNS`` writes exactly this ``RUNS/seed*/`` layout.

and writes ``OUT/<name>.md`` (a Markdown table, mean ± sample std over the seeds found) and
``OUT/<name>.csv`` (one row per seed and model), plus ``OUT/pan50_curves.png`` for PAN. With
``--queue-log`` (the log of the job queue that ran the demos: lines ``... END rc=0 wall=123s CMD``)
the wall time of every run is added.

    python demos/pan_lenet5.py --dataset fashion-mnist --epochs 50 --seed 7 --seeds 3 --out RUNS/pan50
    python docs/results/aggregate.py pan --runs RUNS/pan50 --out docs/results
    python docs/results/aggregate.py kwta --runs RUNS/kwta --out docs/results --queue-log RUNS/queue.log
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path

import numpy as np

from nnlocal.report import mean_std as ms

# The original PAN notebook (MNIST, 50 epochs, saved outputs): test accuracy % at these epochs.
PAN_ORIGINAL_MNIST = {
    "LeNet-5": {1: 20.73, 2: 55.97, 5: 91.91, 10: 95.92, 20: 97.03, 30: 97.60, 40: 97.73, 50: 97.86, "best": 97.86},
    "Tron (PAN)": {1: 88.08, 2: 92.67, 5: 95.71, 10: 96.44, 20: 96.97, 30: 96.77, 40: 96.68, 50: 96.73,
                   "best": 97.03},
}


def md_table(rows: list[dict]) -> str:
    cols = list(rows[0])
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    out += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(out)


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def seed_of(path: Path) -> int:
    m = re.search(r"seed(\d+)", str(path))
    return int(m.group(1)) if m else -1


def queue_walls(log: Path | None) -> list[tuple[str, int]]:
    """``(command, wall seconds)`` of every finished job in the queue log."""
    if log is None or not log.exists():
        return []
    pat = re.compile(r"END rc=0 wall=(\d+)s (.*)$")
    return [(m.group(2), int(m.group(1))) for m in map(pat.search, log.read_text().splitlines()) if m]


def load_seeds(runs: Path, pattern: str, what: str) -> list[tuple[int, dict]]:
    """``(seed, parsed JSON)`` of every ``runs/<pattern>`` file, by seed."""
    files = sorted(runs.glob(pattern), key=seed_of)
    if not files:
        raise SystemExit(f"no {what} results under {runs} ({pattern})")
    return [(seed_of(f), json.loads(f.read_text())) for f in files]


def seed_walls(walls, recs, script: str, label: str, hours: bool = False) -> str:
    """``"<label>: seed 0: 12 min; seed 1: ..."`` from the queue log, else from the wall time the demo
    stored in its results (``wall_s``; EP: ``summary.seconds_total``), or "" when neither has it."""
    def wall(seed, rec):
        w = wall_for(walls, script, f"--seed {seed} ")
        return w if w is not None else rec.get("wall_s", rec.get("summary", {}).get("seconds_total"))

    parts = [f"seed {s}: " + (f"{w / 3600:.2f} h" if hours else f"{w / 60:.0f} min") for s, r in recs
             if (w := wall(s, r)) is not None]
    return f"{label}: " + "; ".join(parts) if parts else ""


def finish(out: Path, name: str, csv_rows: list[dict], heading: str, table: list[dict], note: str = "") -> str:
    """Write ``name.csv`` (per seed) and ``name.md`` (heading, table, note); return the Markdown."""
    write_csv(out / f"{name}.csv", csv_rows)
    text = f"{heading}\n\n{md_table(table)}\n" + (f"\n{note}\n" if note else "")
    (out / f"{name}.md").write_text(text)
    return text


def wall_for(walls, *needles) -> int | None:
    for cmd, s in walls:
        if all(n in cmd for n in needles):
            return s
    return None


# ----------------------------------------------------------------------------------------------- PAN
def pan(runs: Path, out: Path, walls) -> str:
    recs = load_seeds(runs, "seed*/pan_lenet5/results.json", "PAN")
    models = ("Tron (PAN)", "LeNet-5")
    csv_rows, table = [], []
    for name in models:
        test = np.array([r["history"][name]["test"] for _, r in recs])            # (seeds, epochs)
        secs = np.array([r["history"][name]["seconds"] for _, r in recs])
        for (seed, _), t, s in zip(recs, test, secs):
            csv_rows.append({"model": name, "seed": seed, "epochs": t.size, "epoch1_test_pct": t[0],
                             "final_test_pct": t[-1], "best_test_pct": t.max(), "best_epoch": int(t.argmax()) + 1,
                             "train_s_per_epoch": round(float(s.mean()), 1)})
        orig = PAN_ORIGINAL_MNIST[name]
        table.append({"model": name, "seeds": ", ".join(str(s) for s, _ in recs), "epochs": test.shape[1],
                      "epoch 1 %": ms(test[:, 0]), "final %": ms(test[:, -1]), "best %": ms(test.max(axis=1)),
                      "best epoch": ", ".join(str(int(e) + 1) for e in test.argmax(axis=1)),
                      "original (MNIST): epoch 1 / final / best %": f"{orig[1]} / {orig[50]} / {orig['best']}",
                      "train s/epoch": f"{secs.mean():.0f}"})
    _pan_figure(recs, models, out / "pan50_curves.png")
    heading = (f"PAN (Tron) vs LeNet-5 on Fashion-MNIST, notebook recipe, {table[0]['epochs']} epochs, "
               f"test accuracy, mean ± std over seeds {table[0]['seeds']}:")
    note = seed_walls(walls, recs, "pan_lenet5.py", "Wall time per run (both models)", hours=True)
    if not note:   # older runs outside the job queue: from the run folder's creation to its results file
        spans = [(f.stat().st_mtime - f.parent.parent.stat().st_mtime, seed_of(f))
                 for f in sorted(runs.glob("seed*/pan_lenet5/results.json"), key=seed_of)]
        note = "Wall time per run (both models; from the run folders' file times): " + "; ".join(
            f"seed {s}: {w / 3600:.2f} h" for w, s in spans)
    return finish(out, "pan50", csv_rows, heading, table, note)


def _pan_figure(recs, models, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    for i, name in enumerate(models):
        test = np.array([r["history"][name]["test"] for _, r in recs])
        x = np.arange(1, test.shape[1] + 1)
        m, s = test.mean(axis=0), test.std(axis=0)
        ax.plot(x, m, "-", color=f"C{i}", label=f"{name}, Fashion-MNIST (mean of {len(recs)} seeds)")
        ax.fill_between(x, m - s, m + s, color=f"C{i}", alpha=0.25, lw=0)
        orig = {e: v for e, v in PAN_ORIGINAL_MNIST[name].items() if e != "best"}
        ax.plot(list(orig), list(orig.values()), "o--", ms=4, color=f"C{i}", alpha=0.6, lw=0.8,
                label=f"{name}, original notebook on MNIST")
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy %")
    ax.set_ylim(bottom=max(0.0, ax.get_ylim()[0]))
    ax.set_title("PAN (Tron) vs LeNet-5, notebook recipe (SGD 0.003, batch 64, lr halved every 10 epochs)",
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------------------------- kWTA
def kwta(runs: Path, out: Path, walls) -> str:
    recs = load_seeds(runs, "seed*/kwta_sdr/history.json", "kWTA")
    csv_rows, table = [], []
    for name in [r["model"] for r in recs[0][1]["final"]]:
        finals = [next(r for r in rec["final"] if r["model"] == name) for _, rec in recs]
        for (seed, rec), f in zip(recs, finals):
            f.setdefault("seconds", rec["history"][name].get("seconds"))   # older runs kept it in the row
            csv_rows.append({"model": name, "seed": seed, "test_pct": f["test acc %"], "best_test_pct": f["best test %"],
                             "train_pct": f["train acc %"], "seconds": f["seconds"],
                             "exactly_k": f.get("exactly k bits", ""), "dead_units": f.get("dead units", "")})
        row = {"model": name, "seeds": ", ".join(str(s) for s, _ in recs),
               f"test % (epoch {recs[0][1]['args']['epochs']})": ms([f["test acc %"] for f in finals]),
               "best test %": ms([f["best test %"] for f in finals]),
               "train %": ms([f["train acc %"] for f in finals]),
               "s per model run": f"{np.mean([f['seconds'] for f in finals]):.0f}"}
        if "dead units" in finals[0]:
            row["dead units (of 512)"] = ms([f["dead units"] for f in finals], 0)
            row["exactly k bits"] = "yes" if all(f["exactly k bits"] for f in finals) else "no"
        else:
            row["dead units (of 512)"] = row["exactly k bits"] = "-"
        table.append(row)
    heading = (f"kWTA SDRs on Fashion-MNIST (`demos/kwta_sdr.py`, {recs[0][1]['args']['epochs']} epochs), "
               f"test accuracy, mean ± std over seeds {table[0]['seeds']}:")
    return finish(out, "kwta", csv_rows, heading, table,
                  seed_walls(walls, recs, "kwta_sdr.py", "Wall time per seed (all three models)"))


# ----------------------------------------------------------------------------------------------- ARP
def arp(runs: Path, out: Path, walls) -> str:
    path = runs / "arp_mlp" / "history.json"
    if not path.exists():
        raise SystemExit(f"no ARP results at {path}")
    rec = json.loads(path.read_text())
    args = rec["args"]
    seeds = list(range(args["seed"], args["seed"] + args["seeds"]))
    csv_rows, table = [], []
    for kind, hs in rec["runs"].items():
        acc = 100 * np.array([h["test_acc"] for h in hs])                          # (seeds, epochs)
        for seed, a, h in zip(seeds, acc, hs):
            csv_rows.append({"model": kind, "seed": seed, "epoch1_test_pct": a[0], "final_test_pct": a[-1],
                             "best_test_pct": a.max(), "seconds": round(h["seconds"], 1)})
        first80 = [int(np.argmax(a >= 80)) + 1 if (a >= 80).any() else None for a in acc]
        table.append({"model": kind, "seeds": ", ".join(map(str, seeds)), "epoch 1 %": ms(acc[:, 0]),
                      f"epoch {acc.shape[1]} %": ms(acc[:, -1]), "best %": ms(acc.max(axis=1)),
                      "first epoch ≥ 80 %": ", ".join("-" if e is None else str(e) for e in first80),
                      "s per run": f"{np.mean([h['seconds'] for h in hs]):.0f}"})
    wall = wall_for(walls, "arp_mlp.py")
    heading = (f"ARP vs classic perceptrons, the arpkeras example MLP on {args['dataset']} "
               f"(`demos/arp_mlp.py`, {args['epochs']} epochs, RMSprop {args['rmsprop']}), test accuracy, "
               f"mean ± std over seeds {', '.join(map(str, seeds))}:")
    note = "" if wall is None else \
        f"Wall time of the whole run ({len(seeds)} seeds × {len(rec['runs'])} models): {wall / 60:.0f} min"
    return finish(out, "arp", csv_rows, heading, table, note)


# ----------------------------------------------------------------------------------------------- EP
def per_epoch_errors(record: dict, log_pattern: str | None, seed: int) -> list[float]:
    """Test error % per epoch: the demo's ``per_epoch`` rows, or (when the results file lacks them)
    the per-epoch table the demo printed into its log ``log_pattern.format(seed=seed)``."""
    if isinstance(record.get("per_epoch"), list):
        return [row["test_error_%"] for row in record["per_epoch"]]
    if log_pattern is None or not Path(log_pattern.format(seed=seed)).exists():
        return []
    text = Path(log_pattern.format(seed=seed)).read_text(errors="replace").replace("\r", "\n")
    rows = re.findall(r"^\|\s*(\d+)\s*\|\s*[\d.]+\s*\|\s*([\d.]+)\s*\|", text, flags=re.M)
    return [float(e) for _, e in rows]


def eqprop(runs: Path, out: Path, walls, log_pattern: str | None = None) -> str:
    recs = load_seeds(runs, "seed*/eqprop_mnist/results.json", "EP")
    csv_rows = []
    for seed, r in recs:
        s = r["summary"]
        err = per_epoch_errors(r, log_pattern, seed)
        csv_rows.append({"seed": seed, "epochs": s["epochs"], "final_test_error_pct": s["final_test_error_%"],
                         "best_test_error_pct": s["best_test_error_%"],
                         "best_epoch": int(np.argmin(err)) + 1 if err else "-",
                         "final_train_error_pct": s["final_train_error_%"],
                         "train_s_per_epoch": round(s["seconds_per_epoch_training"], 1),
                         "seconds_total": s["seconds_total"]})
    s0 = recs[0][1]["summary"]
    table = [{"data": s0["dataset"], "net": "-".join(map(str, s0["sizes"])),
              "seeds": ", ".join(str(s) for s, _ in recs), "epochs": s0["epochs"],
              "final test error %": ms([c["final_test_error_pct"] for c in csv_rows]),
              "best test error %": ms([c["best_test_error_pct"] for c in csv_rows]),
              "best epoch": ", ".join(str(c["best_epoch"]) for c in csv_rows),
              "final train error %": ms([c["final_train_error_pct"] for c in csv_rows]),
              "train s/epoch": f"{np.mean([c['train_s_per_epoch'] for c in csv_rows]):.1f}"}]
    heading = (f"Symmetric EP (Scellier's net1 settings, `demos/eqprop_mnist.py`), mean ± std over seeds "
               f"{table[0]['seeds']}:")
    return finish(out, "eqprop", csv_rows, heading, table,
                  seed_walls(walls, recs, "eqprop_mnist.py", "Wall time per seed (training and per-epoch tests)"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=["pan", "kwta", "arp", "eqprop"])
    p.add_argument("--runs", required=True, type=Path, help="the folder the demo runs wrote into")
    p.add_argument("--out", default=Path(__file__).parent, type=Path, help="where the tables go")
    p.add_argument("--queue-log", type=Path, default=None, help="job-queue log with the wall time of each run")
    p.add_argument("--log-pattern", default=None,
                   help="eqprop: a run's log, e.g. 'RUNS/eqprop_seed{seed}.log', read for the per-epoch errors "
                        "when its results.json lacks them")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    walls = queue_walls(args.queue_log)
    if args.what == "eqprop":
        text = eqprop(args.runs, args.out, walls, args.log_pattern)
    else:
        text = {"pan": pan, "kwta": kwta, "arp": arp}[args.what](args.runs, args.out, walls)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
