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
