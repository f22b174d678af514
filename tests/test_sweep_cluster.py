"""Sweeps on Dask: a LocalCluster of 2 worker processes, a `dask scheduler` + `dask worker` started as
subprocesses, and a client killed with SIGKILL in the middle of a sweep and rerun.

Nothing here waits for a guessed time: trials that must still be running when the client is killed
wait for a file the test creates afterwards (``test.square``'s ``hold_file``).
"""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("dask.distributed", reason="the sweep tests need the extra nnlocal[sweep]")

from nnlocal.sweep import Store, execute, load_spec, run_sweep  # noqa: E402
from nnlocal.sweep.spec import canonical_json  # noqa: E402

from . import sweep_trials  # noqa: E402,F401  (registers test.square and test.fail in this process)

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


def spec_file(tmp_path, name="sq", seeds=4, extra="", trial="test.square", grid="x = [0.5, 1, 2]"):
    path = tmp_path / f"{name}.toml"
    path.write_text(f'[sweep]\nname = "{name}"\ntrial = "{trial}"\nseeds = {seeds}\nimports = ["tests.sweep_trials"]\n'
                    f"[params]\n{extra}\n[grid]\n{grid}\n")
    return path


def stored(path) -> dict:
    """``{(params JSON, seed): metrics}`` of the done trials in a store."""
    conn = sqlite3.connect(path)
    try:
        return {(p, s): json.loads(m) for p, s, m in
                conn.execute("SELECT params, seed, metrics FROM trials WHERE status = 'done'")}
    finally:
        conn.close()


def committed(path) -> int:
    """Done trials in a store that another process may still be creating."""
    try:
        return len(stored(path)) if path.exists() else 0
    except sqlite3.OperationalError:   # the client has not created the tables yet
        return 0


def wait_until(condition, what: str, timeout: float = 120.0):
    """Poll ``condition`` (a generous timeout only guards against a hang; nothing depends on it)."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """`dask scheduler` and one `dask worker ADDRESS` (one thread) on 127.0.0.1, as subprocesses; the
    scheduler picks a free port (--port 0) and writes its address to a scheduler file."""
    folder = tmp_path_factory.mktemp("cluster")
    info = folder / "scheduler.json"
    procs = []
    try:
        procs.append(subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1",
                                       "--port", "0", "--dashboard-address", ":0", "--scheduler-file", str(info)],
                                      env=ENV, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_until(lambda: info.exists() and info.stat().st_size > 0, "the scheduler file")
        address = json.loads(info.read_text())["address"]
        procs.append(subprocess.Popen([sys.executable, "-m", "dask", "worker", address, "--nthreads", "1",
                                       "--nworkers", "1", "--no-dashboard"],
                                      env=ENV, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from dask.distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(1, timeout=60)
        yield address
    finally:
        for p in reversed(procs):        # the worker first, while its scheduler is still there
            p.terminate()
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def cli(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "nnlocal.cli", "sweep", *args], env=ENV, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def test_local_cluster_with_two_worker_processes(tmp_path):
    spec = load_spec(spec_file(tmp_path))
    store = tmp_path / "local.sqlite"
    summary = run_sweep(spec, store, workers=2, progress=False)
    assert (summary.total, summary.submitted, summary.done, summary.failed, summary.workers) == (12, 12, 12, 0, 2)
    with Store(store) as s:
        rows = s.rows("sq")
        runs = s.runs("sq")
    assert len(rows) == 12 and {r["status"] for r in rows} == {"done"}
    assert {(json.dumps(r["params"], sort_keys=True), r["seed"]) for r in rows} == \
        {(json.dumps(p, sort_keys=True), seed) for p, seed in spec.trials()}
    # the worker processes ran every trial with one Numba and one BLAS/OpenMP thread
    assert all(r["metrics"]["numba_threads"] == 1 and r["metrics"]["blas_threads"] == 1 for r in rows)
    assert all(r["pid"] != os.getpid() for r in rows)
    # results are the trial's, deterministic given params and seed
    for r in rows:
        x = r["params"]["x"]
        assert r["metrics"]["value"] == x * x + float(np.random.default_rng(r["seed"]).standard_normal())
    assert len(runs) == 1 and runs[0]["submitted"] == 12 and runs[0]["done"] == 12 and runs[0]["workers"] == 2
    # rerunning the same spec resumes: nothing left to do, no cluster started
    again = run_sweep(spec, store, workers=2, progress=False)
    assert (again.skipped, again.submitted) == (12, 0)


def test_failed_trials_are_stored_and_retried(tmp_path, cluster):
    spec = load_spec(spec_file(tmp_path, "fails", seeds=5, trial="test.fail", grid="", extra="fail_seeds = [1, 3]"))
    store = tmp_path / "fails.sqlite"
    first = run_sweep(spec, store, scheduler=cluster, progress=False)
    assert (first.done, first.failed) == (3, 2)
    with Store(store) as s:
        failed = s.rows("fails", "failed")
    assert sorted(r["seed"] for r in failed) == [1, 3]
    assert all(r["error"].startswith(f"RuntimeError: seed {r['seed']} fails on purpose") for r in failed)
    assert run_sweep(spec, store, scheduler=cluster, progress=False, retry_failed=False).submitted == 0
    retry = run_sweep(spec, store, scheduler=cluster, progress=False)
    assert (retry.skipped, retry.submitted, retry.failed) == (3, 2, 2)
    with Store(store) as s:
        assert sorted(r["attempts"] for r in s.rows("fails")) == [1, 1, 1, 2, 2]


def test_cluster_address_gives_the_same_results_as_running_the_trials_here(tmp_path, cluster):
    path = spec_file(tmp_path)
    run = cli("run", str(path), "--store", str(tmp_path / "remote.sqlite"), "--scheduler", cluster, "--no-progress")
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    assert "12 done, 0 failed" in out
    spec = load_spec(path)
    here = {(canonical_json(p), s): execute(spec.trial, p, s, spec.imports)["metrics"] for p, s in spec.trials()}
    assert stored(tmp_path / "remote.sqlite") == here


def test_resume_after_kill_9_of_the_client(tmp_path, cluster):
    release = tmp_path / "release"
    path = spec_file(tmp_path, "held", seeds=5, grid="x = [1, 2]",
                     extra=f'hold_file = "{release}"\nhold_from_seed = 2')
    store = tmp_path / "held.sqlite"
    client = cli("run", str(path), "--store", str(store), "--scheduler", cluster, "--no-progress")
    try:
        # seeds 0 and 1 finish; seeds 2.. wait for the release file, so the sweep is mid-way for sure
        wait_until(lambda: committed(store) >= 2, "the first committed trials")
        client.send_signal(signal.SIGKILL)
        client.wait(timeout=30)
    finally:
        if client.poll() is None:
            client.kill()
    before = stored(store)
    assert 2 <= len(before) <= 4 and all(seed < 2 for _, seed in before)
    release.touch()

    rerun = cli("run", str(path), "--store", str(store), "--scheduler", cluster, "--no-progress")
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert f"{len(before)} already stored, ran {10 - len(before)}" in out

    conn = sqlite3.connect(store)
    rows = conn.execute("SELECT params, seed, status, attempts FROM trials WHERE sweep = 'held'").fetchall()
    conn.close()
    assert len(rows) == 10 and len({(p, s) for p, s, _, _ in rows}) == 10          # no duplicate rows
    assert all(status == "done" and attempts == 1 for _, _, status, attempts in rows)  # each done exactly once
    after = stored(store)
    assert all(after[k] == v for k, v in before.items())                           # nothing rewritten

    run_sweep(load_spec(path), tmp_path / "uninterrupted.sqlite", scheduler=cluster, progress=False)
    assert after == stored(tmp_path / "uninterrupted.sqlite")                      # same metrics
