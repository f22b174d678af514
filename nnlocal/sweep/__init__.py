"""``nnlocal.sweep``: seeds × hyper-parameter grids on Dask distributed, every result in SQLite.

A sweep is a TOML spec (:mod:`.spec`) naming a registered trial function (:mod:`.registry`,
built-ins in :mod:`.trials`), its seeds, fixed parameters and a grid. :func:`run_sweep`
(:mod:`.runner`) runs every pending trial on a Dask cluster - a LocalCluster of single-threaded
worker processes by default, or a running scheduler - and commits each result to the
:class:`Store` (:mod:`.store`) as it arrives, so a rerun resumes. :func:`write_report`
(:mod:`.report`, :mod:`.stats`, :mod:`.figures`) turns a store into per-cell tables (Wilson
intervals for success rates; mean ± std, median, IQR for numbers) and figures. :mod:`.cli` holds
the ``nnlocal sweep`` commands.

    nnlocal sweep run sweeps/deep_xor.toml --store results.sqlite     # LocalCluster, all cores
    nnlocal sweep run sweeps/deep_xor.toml --scheduler tcp://HOST:8786
    nnlocal sweep status results.sqlite
    nnlocal sweep report results.sqlite --out nnlocal-out/sweeps

Running needs the optional extra ``nnlocal[sweep]`` (``dask[distributed]``, imported when a
sweep starts); the command line asks for it up front. See docs/sweeps.md.
"""
from .registry import SweepError, Trial, execute, get_trial, list_trials, register
from .report import write_report
from .runner import RunSummary, run_sweep
from .spec import Spec, load_spec, parse_spec
from .stats import wilson_interval
from .store import Store

__all__ = ["SweepError", "Trial", "register", "get_trial", "list_trials", "execute", "Spec", "load_spec",
           "parse_spec", "Store", "run_sweep", "RunSummary", "write_report", "wilson_interval"]
