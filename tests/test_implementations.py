"""The implementation switch, end to end.

* Every method's short training (``tests/trainings.py``) gives the same parameters and losses under
  ``nnlocal.kernels.use("numpy")`` (the reference equations) and ``use("numba")`` (the kernels), in
  float64; the two may sum in different orders, so they agree to rounding, not bit for bit.
* Under ``"numpy"`` no Numba function is compiled: in a fresh process with an empty
  ``NUMBA_CACHE_DIR``, after a short training of every method, no Numba dispatcher anywhere in
  nnlocal has a compiled signature and nothing was written to the cache. The same probe under
  ``"numba"`` does find compiled signatures (so it can fail).

The CUDA side of the same trainings runs in ``tests/cudasim/test_trainings.py``.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nnlocal import kernels
from tests.trainings import TRAININGS, assert_same_training, run

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", sorted(TRAININGS))
def test_numpy_and_numba_train_identically(name):
    with kernels.use("numpy"):
        reference = run(name)
    with kernels.use("numba"):
        kernel = run(name)
    assert_same_training(kernel, reference, rtol=1e-9, atol=1e-12, what=f"{name}: numba vs numpy")


_PROBE = r"""
import importlib, json, pkgutil, sys
from numba.core.dispatcher import Dispatcher
import nnlocal
from nnlocal import kernels
from tests import trainings

for name in sys.argv[1:]:
    trainings.run(name)
found = {}
for info in pkgutil.walk_packages(nnlocal.__path__, "nnlocal."):
    if info.name.endswith(".__main__"):           # a command line: runs on import
        continue
    module = importlib.import_module(info.name)
    for obj in list(vars(module).values()):
        if isinstance(obj, Dispatcher):
            found[f"{obj.py_func.__module__}.{obj.py_func.__qualname__}"] = [str(s) for s in obj.signatures]
print("PROBE" + json.dumps({"kernels": kernels.current(), "dispatchers": found}))
"""


def _probe(implementation: str, names, cache: Path | None = None) -> dict:
    """Run the trainings ``names`` in a fresh process under ``implementation`` (with an empty Numba
    cache in ``cache``, if given), then list every Numba dispatcher of every nnlocal module with
    its compiled signatures (a kernel loaded from Numba's cache counts as compiled: it is)."""
    env = dict(os.environ, NNLOCAL_KERNELS=implementation,
               PYTHONPATH=str(REPO) + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else ""))
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    if cache is not None:
        cache.mkdir()
        env["NUMBA_CACHE_DIR"] = str(cache)
    proc = subprocess.run([sys.executable, "-c", _PROBE, *names], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("PROBE")), None)
    assert proc.returncode == 0 and line, f"probe failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
    report = json.loads(line[len("PROBE"):])
    assert report["kernels"] == implementation
    return report["dispatchers"]


def _compiled(dispatchers: dict) -> dict:
    return {name: sigs for name, sigs in dispatchers.items() if sigs}


def test_numpy_compiles_no_numba_function(tmp_path):
    cache = tmp_path / "numba-cache"
    dispatchers = _probe("numpy", sorted(TRAININGS), cache)
    # the probe sees the kernels of every cpu.py that has some (found, just never compiled)
    modules = {name.rsplit(".", 1)[0] for name in dispatchers}
    assert "nnlocal.kernels.conv.cpu" in modules and len(modules) >= 3, sorted(dispatchers)
    assert _compiled(dispatchers) == {}, f"compiled under NNLOCAL_KERNELS=numpy: {_compiled(dispatchers)}"
    assert sorted(p.name for p in cache.rglob("*") if p.is_file()) == [], "Numba wrote to its cache"


def test_the_probe_sees_numba_compilations():
    """The same probe and trainings under ``"numba"`` find compiled kernels (so the check above can
    fail). Numba's usual cache serves here: the suite compiles these kernels anyway."""
    compiled = _compiled(_probe("numba", sorted(TRAININGS)))
    assert len(compiled) >= 3, compiled
    assert all(name.split(".")[-2] == "cpu" for name in compiled), compiled      # kernels live in cpu.py
