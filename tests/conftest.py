"""Test configuration.

* torch is a test-only dependency. Tests that compare against it start with
  ``torch = pytest.importorskip("torch")``; with ``NNLOCAL_REQUIRE_TORCH=1`` (as in CI) a missing
  torch aborts the whole run instead of silently skipping those tests.
* BLAS and torch are pinned to one thread so test timings are stable on the 2-core CI machine.
"""
import os
import sys

import pytest
from threadpoolctl import threadpool_limits

_blas_limit = threadpool_limits(limits=1)
# torch sizes its intra-op pool from this when it is first imported (by a test module, at
# collection); without it each tiny backward paid ~0.1 s of thread hand-off on a loaded 2-core box
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True, scope="session")
def _torch_single_thread():
    """One torch thread for the whole run, whether or not NNLOCAL_REQUIRE_TORCH is set."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
    yield


def pytest_configure(config):
    if os.environ.get("NNLOCAL_REQUIRE_TORCH") == "1":
        try:
            import torch
        except ImportError as exc:  # fail loudly: the torch comparisons are the point of the suite
            raise pytest.UsageError(
                f"NNLOCAL_REQUIRE_TORCH=1 but torch cannot be imported ({exc}); "
                "install it with `pip install torch==2.13.0` before running the tests") from exc
        torch.set_num_threads(1)


@pytest.fixture
def rng():
    """A fresh, fixed-seed generator for each test."""
    import numpy as np

    return np.random.default_rng(1234)
