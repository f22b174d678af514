"""The one implementation switch: ``nnlocal.kernels.use`` (function and context manager) and
``NNLOCAL_KERNELS``; ``implementation`` picks reference.py, cpu.py or cuda.py."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nnlocal import kernels
from nnlocal.methods.deep import cpu, reference

REPO = Path(__file__).resolve().parents[1]


def test_use_as_function_and_context_manager():
    before = kernels.current()
    try:
        kernels.use("numpy")
        assert kernels.current() == "numpy"
        assert kernels.implementation("nnlocal.methods.deep") is reference
        with kernels.use("numba") as choice:
            assert choice.name == "numba" and kernels.current() == "numba"
            assert kernels.implementation("nnlocal.methods.deep") is cpu
        assert kernels.current() == "numpy"        # restored on exit
    finally:
        kernels.use(before)
    assert kernels.current() == before


@pytest.mark.parametrize("bad", ["torch", "NUMPY", "", None, 1])
def test_use_rejects_unknown_implementations(bad):
    before = kernels.current()
    with pytest.raises(ValueError, match=r"nnlocal.kernels.use: the implementation must be 'numpy' or 'numba'"):
        kernels.use(bad)
    assert kernels.current() == before


def _run(env_value):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env["NNLOCAL_KERNELS"] = env_value
    code = "import nnlocal.kernels as k; print(k.current(), k.implementation('nnlocal.kernels.conv').__name__)"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_environment_variable_selects_the_implementation():
    out = _run("numpy")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["numpy", "nnlocal.kernels.conv.reference"]


def test_environment_variable_with_a_bad_value_is_a_clear_error():
    out = _run("fast")
    assert out.returncode != 0
    assert "NNLOCAL_KERNELS" in out.stderr and "'numpy' or 'numba'" in out.stderr and "'fast'" in out.stderr


# ------------------------------------------------------------------ --kernels on the demos and the tour
DEMOS = sorted(p for p in (REPO / "demos").glob("*.py"))


def _load_demo(path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"_demo_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Applied(Exception):
    pass


@pytest.mark.parametrize("demo", DEMOS, ids=[d.stem for d in DEMOS])
def test_every_demo_takes_kernels_and_applies_it_first(demo, monkeypatch):
    module = _load_demo(demo)
    assert module.parse_args([]).kernels == kernels.current()            # default: the current setting
    assert module.parse_args(["--kernels", "numpy"]).kernels == "numpy"
    with pytest.raises(SystemExit) as exc:
        module.parse_args(["--kernels", "torch"])
    assert exc.value.code == 2
    applied = []

    def fake_use(name):
        applied.append(name)
        raise _Applied                      # stop before any data is loaded or anything trained

    monkeypatch.setattr(kernels, "use", fake_use)
    with pytest.raises(_Applied):
        module.main(["--kernels", "numpy"])
    assert applied == ["numpy"]


def test_tour_runs_its_parts_under_the_chosen_kernels_and_restores_the_switch(tmp_path, monkeypatch):
    import types

    from nnlocal import cli
    from nnlocal.tour import Row, runner

    seen = []

    def run(quick, out_dir, seed=0, progress=None):
        seen.append(kernels.current())
        return [Row("FAKE", "probe", "kernels", kernels.current())], []

    monkeypatch.setitem(sys.modules, "nnlocal.tour._probe", types.SimpleNamespace(run=run))
    monkeypatch.setattr(runner, "PARTS", [("FAKE", "_probe")])
    before = kernels.current()
    for choice in ("numpy", "numba"):
        assert cli.main(["tour", "--quick", "--kernels", choice, "--out", str(tmp_path / choice)]) == 0
        assert seen[-1] == choice and kernels.current() == before
        assert f"{choice} kernels" in (tmp_path / choice / "index.md").read_text()
    assert cli.main(["tour", "--quick", "--out", str(tmp_path / "default")]) == 0
    assert seen[-1] == before
    with pytest.raises(SystemExit) as exc:
        cli.main(["tour", "--kernels", "fast"])
    assert exc.value.code == 2


# ------------------------------------------------------------------ Numba's thread pool and OpenBLAS's
_PROBE = """
import os, sys
import numba
import numba.np.ufunc.parallel as parallel
seen = []
launch = parallel._launch_threads
def probe():
    seen.append(os.environ.get("OMP_WAIT_POLICY"))
    launch()
parallel._launch_threads = probe
import nnlocal
started_by_import = parallel._is_initialized
numba.get_num_threads()                     # the first use of Numba's threads starts its pool
print(started_by_import, repr(seen), repr(os.environ.get("OMP_WAIT_POLICY")), parallel._is_initialized)
"""


@pytest.mark.parametrize("user_value", [None, "ACTIVE"])
def test_numba_pool_starts_with_sleeping_openmp_workers_unless_the_user_chose(user_value):
    """Importing nnlocal starts no thread pool; when Numba starts it, OMP_WAIT_POLICY=PASSIVE is set for
    that moment (its idle OpenMP workers would otherwise spin against OpenBLAS's), the environment is
    restored afterwards, and a user's own choice is kept."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if user_value:
        env["OMP_WAIT_POLICY"] = user_value
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env, cwd=REPO,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    expected = "PASSIVE" if user_value is None else user_value
    assert out.stdout.split() == ["False", repr([expected]), repr(user_value), "True"]


_FORK = """
import multiprocessing as mp
import numpy as np
import nnlocal
from nnlocal import nn, optim

def step(_):                      # Adam on 2 M parameters: a Numba parallel kernel in the child
    net = nn.Linear(2000, 1000, rng=0)
    opt = optim.Adam(net.parameters(), lr=1e-3)
    net(np.ones((4, 2000), np.float32))
    net.backward(np.ones((4, 1000), np.float32))
    opt.step()
    return float(net.weight.data.sum())

if __name__ == "__main__":
    with mp.get_context("fork").Pool(2) as pool:
        print(len(set(pool.map_async(step, range(2)).get(timeout=30))))   # a killed child: no answer
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
def test_forked_children_of_a_process_that_imported_nnlocal_run_parallel_kernels(tmp_path):
    """GNU OpenMP is not fork-safe: had importing nnlocal started Numba's pool, these children would be
    terminated ("fork() called from a process already using GNU OpenMP")."""
    script = tmp_path / "fork_children.py"
    script.write_text(_FORK)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0 and out.stdout.split() == ["1"], out.stdout + out.stderr
