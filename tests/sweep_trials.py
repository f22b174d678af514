"""Tiny trials for the sweep tests, registered only when a test (or a spec's ``imports``) imports
this module, so they never appear in the user's ``nnlocal sweep run --list``.

Dask workers are separate processes: they import this module by name (``tests.sweep_trials``),
so the repository root must be on their ``sys.path`` (pytest's and the test subprocesses' is).
"""
import os
import time

import numpy as np

from nnlocal.sweep import register


@register("test.square", primary="big")
def square(seed: int, *, x: float = 1.0, scale: int = 1, hold_file: str = "", hold_from_seed: int = -1) -> dict:
    """x² · scale plus a seeded draw; reports the worker's BLAS and Numba thread counts.

    With ``hold_file`` set, seeds >= ``hold_from_seed`` wait until that file exists: a test holds
    trials "in flight" deterministically, without sleeping for a guessed time.
    """
    if hold_file and seed >= hold_from_seed:
        while not os.path.exists(hold_file):
            time.sleep(0.02)
    import numba
    from threadpoolctl import threadpool_info

    noise = float(np.random.default_rng(seed).standard_normal())
    value = x * x * scale + noise
    return {"value": value, "big": bool(value > 1.0), "label": "even" if seed % 2 == 0 else "odd",
            "numba_threads": numba.get_num_threads(),
            "blas_threads": max([i["num_threads"] for i in threadpool_info()] or [1])}


@register("test.fail")
def fail(seed: int, *, fail_seeds: tuple = (1,)) -> dict:
    """Raises for the seeds in ``fail_seeds`` (a trial that fails), returns ``{"ok": True}`` otherwise."""
    if seed in fail_seeds:
        raise RuntimeError(f"seed {seed} fails on purpose")
    return {"ok": True}
