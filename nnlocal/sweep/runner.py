"""Run a sweep on Dask distributed and stream every result into the store.

* By default a :class:`dask.distributed.LocalCluster` of worker *processes*, one thread each,
  ``os.cpu_count()`` of them (or ``workers``). With ``scheduler="tcp://HOST:PORT"`` the client
  connects to a running cluster instead (``dask scheduler`` on one machine, ``dask worker
  tcp://HOST:8786`` on each machine that works); ``client=`` uses a client you already have.
* Every pending trial is submitted at once, seed by seed (earlier seeds with higher priority); the
  scheduler hands them to the workers as they free up. The task is :func:`nnlocal.sweep.registry.execute`, which pins BLAS and Numba
  to one thread and turns an exception of the trial into a "failed" record.
* Only this process writes the store: results come back through
  :func:`dask.distributed.as_completed` and each is committed as it arrives, so killing the client
  loses only the trials in flight; rerunning the same spec resumes (done trials are skipped, failed
  ones run again unless ``retry_failed=False``).
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import sys
import time
import uuid

from .registry import SweepError, execute
from .spec import Spec, canonical_json
from .store import Store

__all__ = ["run_sweep", "RunSummary"]


@dataclasses.dataclass
class RunSummary:
    """What one :func:`run_sweep` call did."""

    sweep: str
    total: int            # trials in the spec
    skipped: int          # already done (or failed, with retry_failed=False) before this run
    submitted: int        # run now
    done: int             # of the submitted, done
    failed: int           # of the submitted, failed
    workers: int | None   # workers of the cluster when the run started
    wall_seconds: float

    def __str__(self) -> str:
        where = f" on {self.workers} worker{'s' * (self.workers != 1)}" if self.workers else ""
        return (f"{self.sweep}: {self.total} trials; {self.skipped} already stored, ran {self.submitted}"
                f"{where} in {self.wall_seconds:.1f} s: {self.done} done, {self.failed} failed")


@contextlib.contextmanager
def _client(workers: int | None, scheduler: str | None, client):
    """The dask client to use: the given one, a connection to ``scheduler``, or a new LocalCluster."""
    from dask.distributed import Client, LocalCluster

    if client is not None:
        yield client
        return
    if scheduler is not None:
        try:
            connected = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, asyncio.TimeoutError, ValueError) as exc:
            raise SweepError(f"cannot connect to the dask scheduler at {scheduler}: {exc}") from None
        with connected:
            yield connected
        return
    n = int(workers) if workers else (os.cpu_count() or 1)
    if n < 1:
        raise SweepError(f"--workers must be at least 1, got {n}")
    # dashboard on a free port (its HTTP server runs in any case; 8787 may be taken on a shared machine)
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as c:
        yield c


def _failed_task(future) -> dict:
    """The record of a task that dask itself could not run (e.g. its worker died every time)."""
    try:
        exc = future.exception()
    except Exception as cancelled:   # noqa: BLE001 - a cancelled future raises instead of returning
        exc = cancelled
    return {"status": "failed", "metrics": None, "seconds": None, "host": None, "pid": None, "started": None,
            "finished": None, "error": f"the task did not complete on the cluster: {type(exc).__name__}: {exc}"}


def run_sweep(spec: Spec, store, *, workers: int | None = None, scheduler: str | None = None, client=None,
              retry_failed: bool = True, progress: bool = True) -> RunSummary:
    """Run every trial of ``spec`` not yet done in ``store`` (a path or a :class:`Store`).

    ``workers`` (LocalCluster size), ``scheduler`` (address of a running cluster) and ``client``
    (an existing :class:`dask.distributed.Client`) are mutually exclusive. ``progress`` shows a
    tqdm bar with the done and failed counts and the ETA.
    """
    if sum(x is not None for x in (workers, scheduler, client)) > 1:
        raise SweepError("give at most one of workers, scheduler and client")
    owned = not isinstance(store, Store)
    store = Store(store) if owned else store
    try:
        return _run(spec, store, workers, scheduler, client, retry_failed, progress)
    finally:
        if owned:
            store.close()


def _run(spec, store, workers, scheduler, client, retry_failed, progress) -> RunSummary:
    from dask.distributed import as_completed
    from tqdm.auto import tqdm

    store.begin_sweep(spec)
    stored = store.statuses(spec.name)
    keep = {"done"} if retry_failed else {"done", "failed"}
    todo = []
    for params, seed in spec.trials():
        params_json = canonical_json(params)
        if stored.get((params_json, seed)) not in keep:
            todo.append((params_json, params, seed))
    summary = RunSummary(spec.name, len(spec), len(spec) - len(todo), len(todo), 0, 0, None, 0.0)
    if not todo:
        return summary
    t0 = time.perf_counter()
    with _client(workers, scheduler, client) as c:
        summary.workers = len(c.nthreads())
        run_id = store.start_run(spec.name, len(todo), summary.workers, scheduler)
        if progress:
            where = "the given client" if client is not None else scheduler or "a new LocalCluster"
            tqdm.write(f"{spec.name}: {len(todo)} of {len(spec)} trials to run on {summary.workers} worker(s) "
                       f"({where}); dashboard {c.dashboard_link}", file=sys.stderr)
        # priority -i keeps the spec's seed-major order, so an interrupted run covers every cell evenly
        futures = {c.submit(execute, spec.trial, params, seed, spec.imports, pure=False, priority=-i,
                            key=f"trial-{spec.name}-{uuid.uuid4().hex}"): (params_json, seed)
                   for i, (params_json, params, seed) in enumerate(todo)}
        bar = tqdm(total=len(todo), desc=spec.name, unit="trial", disable=not progress, smoothing=0.05)
        try:
            for future in as_completed(futures):
                params_json, seed = futures.pop(future)
                result = future.result() if future.status == "finished" else _failed_task(future)
                future.release()
                store.record(spec, params_json, seed, result)
                if result["status"] == "done":
                    summary.done += 1
                else:
                    summary.failed += 1
                bar.set_postfix(done=summary.done, failed=summary.failed, refresh=False)
                bar.update(1)
        finally:
            bar.close()
            if futures:   # interrupted: do not leave work queued on a shared cluster
                c.cancel(list(futures))
            summary.wall_seconds = time.perf_counter() - t0
            store.finish_run(run_id, summary.done, summary.failed, summary.wall_seconds)
    return summary
