"""Sweeps without a cluster: spec validation, the registry, the store, the statistics, the report,
and every built-in trial once on tiny settings."""
import json
import math
import sqlite3

import numpy as np
import pytest

from nnlocal.sweep import Store, SweepError, execute, get_trial, list_trials, load_spec, parse_spec, register
from nnlocal.sweep.report import write_report
from nnlocal.sweep.spec import canonical_json
from nnlocal.sweep.stats import summarize_cell, wilson_interval

from . import sweep_trials  # noqa: F401  (registers test.square and test.fail)

SQUARE = """
[sweep]
name = "sq"
trial = "test.square"
seeds = 3
imports = ["tests.sweep_trials"]
[params]
scale = 2
[grid]
x = [1, 2.5]
"""


def write(tmp_path, text, name="spec.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------------------- stats
def test_wilson_interval_equals_the_hand_computation():
    z = 1.959963984540054
    for k, n in [(4, 20), (7, 20), (0, 20), (20, 20), (57, 200), (1, 3)]:
        # Wilson (1927): centre (p + z²/2n)/(1 + z²/n), half-width z/(1 + z²/n) sqrt(p(1-p)/n + z²/4n²)
        p = k / n
        centre = (p + z ** 2 / (2 * n)) / (1 + z ** 2 / n)
        half = z / (1 + z ** 2 / n) * math.sqrt(p * (1 - p) / n + z ** 2 / (4 * n ** 2))
        low, high = wilson_interval(k, n)
        assert low == pytest.approx(max(0.0, centre - half), abs=1e-12)
        assert high == pytest.approx(min(1.0, centre + half), abs=1e-12)
    # published values: 4 of 20 -> [8.07 %, 41.60 %]; 0 of 20 -> [0, 16.11 %]
    assert np.allclose(wilson_interval(4, 20), (0.0807, 0.4160), atol=5e-5)
    assert np.allclose(wilson_interval(0, 20), (0.0, 0.1611), atol=5e-5)
    # symmetric: the failures' interval mirrors the successes'
    lo, hi = wilson_interval(7, 20)
    assert np.allclose(wilson_interval(13, 20), (1 - hi, 1 - lo))
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(5, 4)


def test_cell_summary_numbers():
    metrics = [{"ok": True, "v": 1.0}, {"ok": False, "v": 2.0}, {"ok": True, "v": 4.0}, {"ok": True, "v": None}]
    s = summarize_cell(metrics, {"ok": "bool", "v": "numeric"})
    assert (s["ok"]["successes"], s["ok"]["n"]) == (3, 4)
    assert (s["ok"]["low"], s["ok"]["high"]) == wilson_interval(3, 4)
    v = s["v"]
    assert v["n"] == 3 and v["mean"] == pytest.approx(7 / 3) and v["median"] == 2.0
    assert v["std"] == pytest.approx(math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2))
    assert (v["q1"], v["q3"]) == (1.5, 3.0)


# ------------------------------------------------------------------------------------------- specs
def test_spec_lists_every_trial_seed_by_seed(tmp_path):
    spec = load_spec(write(tmp_path, SQUARE))
    assert (spec.name, spec.trial, spec.seeds, spec.imports) == ("sq", "test.square", (0, 1, 2),
                                                                 ("tests.sweep_trials",))
    assert spec.grid == {"x": [1.0, 2.5]} and isinstance(spec.grid["x"][0], float)   # float param: 1 -> 1.0
    assert len(spec) == 6
    assert spec.trials()[:3] == [({"scale": 2, "x": 1.0}, 0), ({"scale": 2, "x": 2.5}, 0), ({"scale": 2, "x": 1.0}, 1)]


def test_spec_hash_is_canonical(tmp_path):
    base = load_spec(write(tmp_path, SQUARE)).hash
    same = SQUARE.replace("seeds = 3", "seeds = [0, 1, 2]").replace("x = [1, 2.5]", "x = [1.0, 2.5]")
    assert load_spec(write(tmp_path, same)).hash == base
    assert load_spec(write(tmp_path, SQUARE.replace("scale = 2", "scale = 3"))).hash != base
    assert load_spec(write(tmp_path, SQUARE.replace("seeds = 3", "seeds = 4"))).hash != base


BAD_SPECS = [
    ('trial = "test.square"', 'trial = "test.sqare"', "unknown trial 'test.sqare' (did you mean 'test.square'?)"),
    ("scale = 2", "scael = 2", "[params] scael: unknown parameter of trial test.square (did you mean 'scale'?)"),
    ("x = [1, 2.5]", "x = []", "[grid] x is empty"),
    ("x = [1, 2.5]", "x = 1.5", "[grid] x must be a list of values"),
    ("x = [1, 2.5]", "x = [1, 1]", "[grid] x repeats a value"),
    ("seeds = 3", "seeds = 0", "seeds must be a positive count"),
    ("seeds = 3", "seeds = [1, -2]", "seeds must be non-negative"),
    ("seeds = 3", "seeds = [4, 4]", "seeds repeat [4]"),
    ("seeds = 3", 'seeds = "many"', "seeds must be a positive count or a non-empty list of integers"),
    ("seeds = 3", "seeds = true", "seeds must be a positive count"),
    ("scale = 2", 'scale = "two"', "[params] scale must be an integer (default 1), got 'two'"),
    ("scale = 2", "scale = 2.5", "[params] scale must be an integer"),
    ("scale = 2", "x = 3.0", "x is both in [params] and in [grid]"),
    ("scale = 2", "seed = 3", "seeds are set by [sweep] seeds"),
    ('name = "sq"', 'name = "my sweep"', "[sweep] name must be letters, digits"),
    ('name = "sq"', 'name = "sq"\nseed = 4', "[sweep] seed: unknown key"),
    ("[params]", "[parms]", "unknown table [parms]"),
    ('imports = ["tests.sweep_trials"]', 'imports = ["tests.no_such_module"]',
     "cannot import the trial module 'tests.no_such_module'"),
]


@pytest.mark.parametrize("old, new, message", BAD_SPECS, ids=[b[2][:40] for b in BAD_SPECS])
def test_bad_spec_is_refused_with_a_clear_message(tmp_path, old, new, message):
    assert old in SQUARE
    with pytest.raises(SweepError) as exc:
        load_spec(write(tmp_path, SQUARE.replace(old, new, 1)))
    assert isinstance(exc.value, ValueError)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_spec_reports_every_problem_at_once(tmp_path):
    text = SQUARE.replace("scale = 2", "scael = 2").replace("x = [1, 2.5]", "x = []")
    with pytest.raises(SweepError) as exc:
        load_spec(write(tmp_path, text))
    assert "[params] scael: unknown parameter" in str(exc.value) and "[grid] x is empty" in str(exc.value)


def test_spec_file_errors(tmp_path):
    with pytest.raises(SweepError, match="not found"):
        load_spec(tmp_path / "missing.toml")
    with pytest.raises(SweepError, match="not valid TOML"):
        load_spec(write(tmp_path, "[sweep\nname ="))
    with pytest.raises(SweepError, match=r"a \[sweep\] table"):
        parse_spec({"params": {}})
    with pytest.raises(SweepError, match="is missing"):
        parse_spec({"sweep": {"name": "a", "trial": "test.square"}})


def test_choices_are_checked():
    with pytest.raises(SweepError, match=r"\[grid\] model = 'dep' is not one of 'deep', 'deep_oh', 'asym_ep'"):
        parse_spec({"sweep": {"name": "d", "trial": "deep.logic_gate", "seeds": 1}, "grid": {"model": ["deep", "dep"]}})


# ------------------------------------------------------------------------------------------- registry
def test_registry_lists_builtin_trials_without_test_ones_leaking_into_their_names():
    names = [t.name for t in list_trials()]
    for name in ("deep.logic_gate", "eqprop.classify", "arp.mlp", "kwta.sdr", "pan.lenet5_vs_tron",
                 "butd.counter_hebb", "butd.multitask"):
        assert name in names
    deep = get_trial("deep.logic_gate")
    assert {"gate", "model", "epochs", "T1", "T2", "dt", "beta", "dt_W"} <= set(deep.params)
    assert deep.primary == "solved"
    for t in list_trials():
        if not t.name.startswith("test."):
            assert "dataset" in t.params or t.name == "deep.logic_gate", t.name


def test_register_checks_the_signature():
    with pytest.raises(TypeError, match="first parameter"):
        register("test.bad1")(lambda x, *, seed=0: {})
    with pytest.raises(TypeError, match="keyword-only with a default"):
        @register("test.bad2")
        def bad2(seed, n):
            return {}
    with pytest.raises(ValueError, match="already taken"):
        @register("test.square")
        def other(seed):
            return {}


def test_execute_records_a_raising_trial_as_failed():
    ok = execute("test.fail", {"fail_seeds": [1]}, 0, ["tests.sweep_trials"])
    bad = execute("test.fail", {"fail_seeds": [1]}, 1, ["tests.sweep_trials"])
    assert ok["status"] == "done" and ok["metrics"] == {"ok": True} and ok["error"] is None
    assert bad["status"] == "failed" and bad["metrics"] is None
    assert bad["error"].startswith("RuntimeError: seed 1 fails on purpose")
    for r in (ok, bad):
        assert r["seconds"] >= 0 and r["host"] and r["pid"] and r["started"] <= r["finished"]


def test_execute_pins_numba_to_one_thread_and_cleans_metrics():
    import numba

    before = numba.get_num_threads()
    r = execute("test.square", {"x": float("nan")}, 0, ["tests.sweep_trials"])
    assert r["status"] == "done"
    assert r["metrics"]["numba_threads"] == 1 and r["metrics"]["blas_threads"] == 1
    assert r["metrics"]["value"] is None                      # nan is stored as null, never as garbage
    assert numba.get_num_threads() == before                  # restored afterwards


# ------------------------------------------------------------------------------------------- store
def _result(status="done", metrics=None, error=None):
    return {"status": status, "metrics": metrics, "error": error, "seconds": 0.1, "host": "h", "pid": 1,
            "started": "2026-01-01T00:00:00", "finished": "2026-01-01T00:00:01"}


def test_store_refuses_a_changed_spec_under_the_same_name(tmp_path):
    spec = load_spec(write(tmp_path, SQUARE))
    changed = load_spec(write(tmp_path, SQUARE.replace("x = [1, 2.5]", "x = [1, 3]").replace("seeds = 3", "seeds = 4"),
                              "changed.toml"))
    with Store(tmp_path / "s.sqlite") as store:
        store.begin_sweep(spec)
        store.begin_sweep(spec)                      # the same spec again: fine (a resume)
        with pytest.raises(SweepError, match=r"spec of sweep 'sq' has changed.*changed: grid\.x, seeds"):
            store.begin_sweep(changed)
    conn = sqlite3.connect(tmp_path / "s.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT COUNT(*) FROM sweeps").fetchone()[0] == 1


def test_store_upsert_retries_failed_and_never_overwrites_done(tmp_path):
    spec = load_spec(write(tmp_path, SQUARE))
    key = canonical_json({"scale": 2, "x": 1.0})
    with Store(tmp_path / "s.sqlite") as store:
        store.begin_sweep(spec)
        store.record(spec, key, 0, _result("failed", error="boom"))
        assert store.statuses("sq") == {(key, 0): "failed"}
        store.record(spec, key, 0, _result("done", {"v": 1}))
        store.record(spec, key, 0, _result("done", {"v": 2}))      # a late duplicate: ignored
        store.record(spec, key, 0, _result("failed", error="x"))   # and a late failure too
        (row,) = store.rows("sq")
        assert (row["status"], row["metrics"], row["attempts"], row["error"]) == ("done", {"v": 1}, 2, None)
        status = store.status()[0]
        assert (status["trials"], status["done"], status["failed"], status["pending"]) == (6, 1, 0, 5)


def test_store_errors(tmp_path):
    with pytest.raises(SweepError, match="no sweep store"):
        Store(tmp_path / "none.sqlite", create=False)
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(SweepError, match="not a usable SQLite"):
        Store(tmp_path / "junk.sqlite", create=False)


# ------------------------------------------------------------------------------------------- report
def test_report_tables_and_figures(tmp_path):
    text = SQUARE.replace("[params]\nscale = 2\n", "").replace("x = [1, 2.5]", "x = [1, 2.5]\nscale = [1, 2, 3]")
    spec = load_spec(write(tmp_path, text))
    store_path = tmp_path / "s.sqlite"
    with Store(store_path) as store:
        store.begin_sweep(spec)
        for params, seed in spec.trials():
            if (params["scale"], seed) == (3, 2) or (params["scale"], params["x"], seed) == (1, 1.0, 2):
                continue                                   # one pending trial per scale-3 cell, one failed below
            r = execute(spec.trial, params, seed, spec.imports)
            store.record(spec, canonical_json(params), seed, r)
        store.record(spec, canonical_json({"scale": 1, "x": 1.0}), 2, _result("failed", error="E"))
    index = write_report(store_path, tmp_path / "out")
    out = tmp_path / "out"
    assert {"sq.md", "sq.csv", "sq-heatmap-big.png", "sq-bars-big.png", "index.md"} <= {p.name for p in out.iterdir()}
    captions = [line for line in index.read_text().splitlines() if line and line[0].isupper() and "sweep `sq`" in line]
    assert len(captions) == 2 and all(c.endswith(".") for c in captions)
    rows = list(__import__("csv").DictReader((out / "sq.csv").open()))
    assert len(rows) == 6
    cell = next(r for r in rows if (r["x"], r["scale"]) == ("1", "2"))
    values = [1.0 * 2 + float(np.random.default_rng(s).standard_normal()) for s in range(3)]
    assert float(cell["value_mean"]) == pytest.approx(np.mean(values))
    assert float(cell["value_std"]) == pytest.approx(np.std(values, ddof=1))
    k = sum(v > 1 for v in values)
    assert (int(cell["big_successes"]), int(cell["big_n"])) == (k, 3)
    assert float(cell["big_wilson_low"]) == pytest.approx(wilson_interval(k, 3)[0])
    failed = next(r for r in rows if (r["x"], r["scale"]) == ("1", "1"))
    assert (failed["done"], failed["failed"], failed["pending"]) == ("2", "1", "0")
    pending = next(r for r in rows if (r["x"], r["scale"]) == ("1", "3"))
    assert (pending["done"], pending["pending"]) == ("2", "1")
    md = (out / "sq.md").read_text()
    assert f"{k}/3 = " in md and "Wilson 95 %" in md
    with pytest.raises(SweepError, match="no sweep named 'nope'"):
        write_report(store_path, out, sweep="nope")
    with pytest.raises(SweepError, match="no boolean or numeric metric 'label'"):
        write_report(store_path, out, metrics=["label"])


# ------------------------------------------------------------------------------------------- built-in trials
TINY = {
    "deep.logic_gate": [{"epochs": 5, "T1": 50, "T2": 50}, {"model": "asym_ep", "epochs": 3, "T1": 30, "T2": 30},
                        {"model": "deep_oh", "epochs": 3, "T1": 30, "T2": 30, "dt": 0.1}],
    "eqprop.classify": [{"epochs": 1, "hidden": [20], "max_train": 200, "eval_steps": 10}],
    "arp.mlp": [{"epochs": 1, "max_train": 300}, {"model": "classic", "epochs": 1, "max_train": 300}],
    "kwta.sdr": [{"epochs": 1, "max_train": 300, "embedding": 64}, {"model": "softmax", "epochs": 1, "max_train": 300}],
    "pan.lenet5_vs_tron": [{"epochs": 1, "max_train": 200}],
    "butd.counter_hebb": [{"epochs": 1, "max_train": 300, "hidden": 32}, {"top_down": "fa", "epochs": 1, "max_train": 300}],
    "butd.multitask": [{"epochs": 1, "max_train": 200}, {"model": "single", "epochs": 1, "max_train": 200}],
}


@pytest.mark.parametrize("trial", sorted(TINY))
def test_builtin_trial_runs_and_is_deterministic(trial):
    results = [execute(trial, params, 3) for params in TINY[trial]]
    for r in results:
        assert r["status"] == "done", r["error"]
        metrics = r["metrics"]
        assert metrics and all(isinstance(v, (bool, int, float, str)) or v is None for v in metrics.values())
        assert get_trial(trial).primary in metrics
        assert json.loads(canonical_json(metrics)) == metrics
    assert execute(trial, TINY[trial][0], 3)["metrics"] == results[0]["metrics"]


def test_deep_logic_gate_trial_equals_the_batched_notebook_run():
    """Seed s of the trial is net s of deep.fit_many at the notebook settings (the README's table)."""
    from nnlocal.methods import deep

    seeds = range(8)
    hp = deep.NOTEBOOK_HPARAMS["DEEP_oh"]
    X, Y = deep.logic_gate("XOR", one_hot=True)
    nets = [deep.DEEPNet(X.shape[1], hp["hidden"], Y.shape[1], one_hot=True, rng=s) for s in seeds]
    hists = deep.fit_many(nets, X, Y, **{**hp["fit"], "epochs": 60})
    for s, h in zip(seeds, hists):
        m = execute("deep.logic_gate", {"model": "deep_oh", "epochs": 60}, s)["metrics"]
        assert m["solved"] == (h["final_error"] == 0 and not h["diverged"])
        assert m["final_mse"] == h["mse"][59] and m["diverged"] == h["diverged"]


def test_every_spec_under_sweeps_is_valid():
    from pathlib import Path

    specs = sorted((Path(__file__).resolve().parents[1] / "sweeps").glob("*.toml"))
    assert specs, "sweeps/ holds the project's sweep specs"
    names = [load_spec(p).name for p in specs]
    assert len(set(names)) == len(names)
    assert {"deep-xor", "deep-xor-dt-beta"} <= set(names)
