"""The CUDA backend, checked from the main suite without a GPU.

* ``tests/cudasim`` (every CUDA kernel against its CPU twin) runs in a *separate* process with
  ``NUMBA_ENABLE_CUDASIM=1``: the flag must be set before numba is imported, and it must not leak into
  the other tests of this process.
* Without a GPU and without the flag, ``check_device("cuda", ...)`` fails with a message saying what to install
  or set; and importing nnlocal never imports ``numba.cuda`` (both checked in a clean subprocess).
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nnlocal import kernels
from nnlocal.kernels import DEVICES, check_device

REPO = Path(__file__).resolve().parents[1]


def _env(simulator: bool) -> dict:
    env = dict(os.environ)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    env.pop("NNLOCAL_CUDA_TESTS", None)
    if simulator:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _run(args, simulator: bool, timeout: float = 300):
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=_env(simulator), capture_output=True, text=True,
                          timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def test_cuda_kernels_match_cpu_under_the_simulator():
    rc, out = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/cudasim"], simulator=True)
    tail = "\n".join(out.splitlines()[-40:])
    assert rc == 0, f"tests/cudasim failed under NUMBA_ENABLE_CUDASIM=1 (exit {rc}):\n{tail}"
    passed = re.search(r"(\d+) passed", out)
    assert passed and int(passed.group(1)) >= 20, f"expected the simulator tests to run and pass:\n{tail}"
    assert "skipped" not in out and "failed" not in out, tail


_PROBE = r"""
import json, pkgutil, importlib, sys
import nnlocal, nnlocal.kernels, nnlocal.methods
from nnlocal.kernels import check_device, implementation
for m in pkgutil.iter_modules(nnlocal.methods.__path__):
    importlib.import_module("nnlocal.methods." + m.name)
    if m.name != "arp":
        implementation("nnlocal.methods." + m.name, "cpu")
report = {"cuda_imported": sorted(k for k in sys.modules if k == "numba.cuda" or k.startswith("numba.cuda."))}
try:
    check_device("cuda", "probe")
    report["error"] = None
except RuntimeError as exc:
    report["error"] = str(exc)
print("PROBE" + json.dumps(report))
"""


@pytest.fixture(scope="module")
def probe():
    """One clean subprocess without the simulator flag: what importing nnlocal imports, and what
    ``check_device("cuda", ...)`` says."""
    rc, out = _run(["-c", _PROBE], simulator=False, timeout=120)
    line = next((ln for ln in out.splitlines() if ln.startswith("PROBE")), None)
    assert rc == 0 and line, f"probe subprocess failed (exit {rc}):\n{out[-4000:]}"
    return json.loads(line[len("PROBE"):])


def test_importing_nnlocal_does_not_import_numba_cuda(probe):
    assert probe["cuda_imported"] == [], f"importing nnlocal imported {probe['cuda_imported'][:5]}"


def test_backend_cuda_without_gpu_or_simulator_says_what_to_do(probe):
    if probe["error"] is None:
        pytest.skip("a usable CUDA GPU is present here")
    msg = probe["error"]
    assert "device='cuda'" in msg
    assert "nnlocal[cuda]" in msg and "numba-cuda" in msg
    assert "NUMBA_ENABLE_CUDASIM=1" in msg


def test_check_device_and_the_cpu_implementations():
    from nnlocal.methods.deep import cpu, reference

    assert DEVICES == ("cpu", "cuda")
    assert check_device("cpu", "EPNet") == "cpu"
    for bad in ("gpu", "CUDA", "cuda:0", None, 0):
        with pytest.raises(ValueError, match=r"EPNet: device must be 'cpu' or 'cuda', got"):
            check_device(bad, "EPNet")
    assert kernels.implementation("nnlocal.methods.deep") is cpu
    with kernels.use("numpy"):
        assert kernels.implementation("nnlocal.methods.deep") is reference
    with pytest.raises(ValueError, match="device must be"):
        kernels.implementation("nnlocal.methods.deep", "tpu")
