"""``--seeds`` of the demos: one folder per seed in the layout docs/results/aggregate.py reads, a finished
seed is skipped on a rerun with the same arguments and run again with other ones, and the aggregate
script turns the folders into the mean ± std table."""
import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnlocal.cli import UsageError, run_seeds
from nnlocal.report import mean_std

REPO = Path(__file__).resolve().parents[1]


def test_mean_std_is_the_sample_std_and_one_value_prints_alone():
    v = [1.0, 2.0, 4.0]
    assert mean_std(v) == f"{np.mean(v):.2f} ± {np.std(v, ddof=1):.2f}"
    assert mean_std([0.5, 0.75], digits=1, scale=100) == f"{62.5:.1f} ± {np.std([50, 75], ddof=1):.1f}"
    assert mean_std([3.14159]) == "3.14"
    with pytest.raises(ValueError, match="mean_std"):
        mean_std([])


def _fake_run(calls):
    def run_one(args):
        calls.append(args.seed)
        record = {"args": vars(args), "value": args.seed * 10}
        path = Path(args.out) / "demo" / "results.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(record))
        return record
    return run_one


def test_run_seeds_layout_skip_and_rerun(tmp_path):
    calls = []
    args = argparse.Namespace(seed=3, seeds=3, out=str(tmp_path), lr=0.1)
    records = run_seeds(_fake_run(calls), args, "demo/results.json")
    assert calls == [3, 4, 5] and [r["value"] for r in records] == [30, 40, 50]
    assert sorted(p.parent.parent.name for p in tmp_path.rglob("results.json")) == ["seed3", "seed4", "seed5"]
    assert args.seed == 3 and args.seeds == 3 and args.out == str(tmp_path)       # the caller's args untouched

    calls.clear()                       # same arguments, one more seed: only the new one runs
    records = run_seeds(_fake_run(calls), argparse.Namespace(seed=3, seeds=4, out=str(tmp_path), lr=0.1),
                        "demo/results.json")
    assert calls == [6] and [r["value"] for r in records] == [30, 40, 50, 60]

    stored = tmp_path / "seed4" / "demo" / "results.json"      # seed 4 was run with another lr
    stored.write_text(stored.read_text().replace('"lr": 0.1', '"lr": 0.2'))
    seen = []

    def run_again(args):
        seen.append(args.seed)
        return {"args": vars(args)}
    run_seeds(run_again, argparse.Namespace(seed=3, seeds=3, out=str(tmp_path), lr=0.1), "demo/results.json")
    assert seen == [4]


def test_run_seeds_with_one_seed_keeps_the_plain_layout_and_refuses_zero(tmp_path):
    calls = []
    run_seeds(lambda a: calls.append(a.out) or {}, argparse.Namespace(seed=0, seeds=1, out=str(tmp_path)), "x.json")
    assert calls == [str(tmp_path)]
    with pytest.raises(UsageError, match="--seeds"):
        run_seeds(lambda a: {}, argparse.Namespace(seed=0, seeds=0, out=str(tmp_path)), "x.json")


def _demo(*argv, cwd):
    res = subprocess.run([sys.executable, *map(str, argv)], capture_output=True, text=True, timeout=300, cwd=cwd)
    assert res.returncode == 0, f"{argv[0]}:\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
    return res.stdout


@pytest.mark.parametrize("demo, results, what", [
    ("pan_lenet5", "pan_lenet5/results.json", "pan"),
    ("eqprop_mnist", "eqprop_mnist/results.json", "eqprop"),
    ("kwta_sdr", "kwta_sdr/history.json", "kwta"),
])
def test_demo_seeds_resume_and_aggregate(demo, results, what, tmp_path):
    script = REPO / "demos" / f"{demo}.py"
    argv = [script, "--dataset", "digits", "--epochs", "2", "--seed", "1", "--seeds", "2", "--out", tmp_path / "runs"]
    first = _demo(*argv, cwd=tmp_path)
    files = [tmp_path / "runs" / f"seed{s}" / results for s in (1, 2)]
    assert all(f.exists() for f in files)
    recs = [json.loads(f.read_text()) for f in files]
    assert [r["args"]["seed"] for r in recs] == [1, 2]
    assert "over seeds" in first
    mtimes = [f.stat().st_mtime_ns for f in files]
    again = _demo(*argv, cwd=tmp_path)
    assert again.count("skipped") == 2 and [f.stat().st_mtime_ns for f in files] == mtimes

    out = tmp_path / "tables"
    _demo(REPO / "docs" / "results" / "aggregate.py", what, "--runs", tmp_path / "runs", "--out", out, cwd=tmp_path)
    name = "pan50" if what == "pan" else what
    table = (out / f"{name}.md").read_text()
    assert "1, 2" in table and "±" in table and "Wall time per" in table
    if what == "eqprop":                # the per-epoch rows are stored (no log needed for the best epoch)
        assert all(isinstance(r["per_epoch"], list) and len(r["per_epoch"]) == 2 for r in recs)
        best = [int(np.argmin([row["test_error_%"] for row in r["per_epoch"]])) + 1 for r in recs]
        assert f"| {', '.join(map(str, best))} |" in table
        errors = [r["summary"]["final_test_error_%"] for r in recs]
        assert mean_std(errors) in table
    elif what == "kwta":
        finals = [next(f for f in r["final"] if f["model"] == "softmax")["test acc %"] for r in recs]
        assert mean_std(finals) in table
    else:
        finals = [r["history"]["Tron (PAN)"]["test"][-1] for r in recs]
        assert mean_std(finals) in table


def test_butd_multitask_summary_over_seeds_reports_the_plateau_gain():
    import importlib.util

    spec = importlib.util.spec_from_file_location("butd_multitask_demo", REPO / "demos" / "butd_multitask.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    rng = np.random.default_rng(0)
    epochs = 12
    records = []
    for seed in range(3):
        curve = {t: list(60 + np.arange(epochs) + rng.normal(0, 1, epochs)) for t in demo.TASKS}
        hist = {"val": curve, "test": {t: [c + 1 for c in v] for t, v in curve.items()}, "train_s": [2.0] * epochs,
                "eval_s": [1.0] * epochs}
        records.append({"seed": seed, "models": ["hard-sharing"], "params": {"hard-sharing": {"trainable": 7, "frozen": 0}},
                        "history": {"hard-sharing": hist}})
    rows, csv_rows = demo.summarize(records, epochs)
    test = np.array([[(r["history"]["hard-sharing"]["test"]["left"][e] + r["history"]["hard-sharing"]["test"]["right"][e]) / 2
                      for e in range(epochs)] for r in records])
    assert rows[0]["mean %"] == mean_std(test[:, -1])
    gain = test[:, -1].mean() - test[:, -11].mean()
    assert rows[0]["gain, last 10 epochs"] == f"{gain:+.2f}"
    assert csv_rows[0]["test_gain_last_10_epochs"] == pytest.approx(gain, rel=1e-12)
    assert demo.summarize(records, 10)[0][0]["gain, last 10 epochs"] == "-"        # too short to say
