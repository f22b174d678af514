"""CUDA kernels under Numba's simulator: collected only when ``NUMBA_ENABLE_CUDASIM=1`` is set.

The main suite runs this folder in a separate process with the flag set
(``tests/test_cuda_simulator.py``), so the simulator never leaks into the other tests. Run it by hand
with ``NUMBA_ENABLE_CUDASIM=1 python -m pytest -q tests/cudasim``. On a machine with a real GPU the same
tests run on the GPU when the flag is left unset and ``NNLOCAL_CUDA_TESTS=1`` is set instead.

The simulator runs every CUDA thread as a Python thread, so the tests use tiny grids (a few blocks of
at most 16 threads, a handful of steps).
"""
import importlib
import os
import sys
import types

import numpy as np
import pytest

SIMULATOR = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
ENABLED = SIMULATOR or os.environ.get("NNLOCAL_CUDA_TESTS") == "1"

if not ENABLED:
    # never import numba.cuda in the main test process
    collect_ignore_glob = ["test_*.py"]
elif SIMULATOR:
    # The simulator's block manager busy-polls its threads at every syncthreads; a shorter GIL switch
    # interval than the default 5 ms hands the GIL back sooner (measured: about 3x faster launches).
    sys.setswitchinterval(5e-4)


#: the method folders with CUDA kernels (each has cpu.py and cuda.py with the same functions)
PACKAGES = ("nnlocal.methods.deep", "nnlocal.methods.eqprop", "nnlocal.methods.pan", "nnlocal.methods.kwta",
            "nnlocal.methods.butd")


def merged(kind: str) -> types.SimpleNamespace:
    """One namespace with the public functions of every method's ``kind`` module ("cpu" or "cuda")."""
    ns = {}
    for pkg in PACKAGES:
        mod = importlib.import_module(f"{pkg}.{kind}")
        ns.update({name: getattr(mod, name) for name in mod.__all__})
    return types.SimpleNamespace(**ns)


@pytest.fixture(scope="session")
def gpu():
    from nnlocal.kernels import check_device

    check_device("cuda", "tests/cudasim")
    return merged("cuda")


@pytest.fixture(scope="session")
def cpu():
    return merged("cpu")


@pytest.fixture
def rng():
    return np.random.default_rng(20240611)


def assert_close(actual, expected, rtol=1e-10, atol=1e-13):
    """Float64 agreement of a GPU result with its CPU twin (NaN where the CPU has NaN)."""
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=rtol, atol=atol, equal_nan=True)
