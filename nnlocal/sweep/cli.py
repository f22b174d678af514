"""``nnlocal sweep run | status | report``: the sweep commands of the ``nnlocal`` CLI.

Errors follow the ``nnlocal`` command's convention (one line, exit status 2 for a usage error, a
traceback only with ``--debug``); without the optional extra (dask) every sweep command says what to
install.
"""
from __future__ import annotations

import os
import sys

SWEEP_NEEDS_DASK = 'nnlocal sweep needs dask: pip install "nnlocal[sweep]"'


def _cmd_sweep(args) -> int:
    """Dispatch ``nnlocal sweep ...``: check the extra; a sweep error is a usage error (the ``nnlocal``
    command prints it as one line, exit status 2; ``--debug`` adds the traceback)."""
    from ..cli import UsageError

    try:
        import dask.distributed  # noqa: F401  (the optional extra nnlocal[sweep])
    except ImportError:
        raise UsageError(SWEEP_NEEDS_DASK) from None
    from . import SweepError

    try:
        return args.sweep_func(args)
    except SweepError as exc:
        raise UsageError(" ".join(str(exc).split())) from exc
    except BrokenPipeError:   # e.g. `nnlocal sweep run --list | head`: the reader has gone, that is fine
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("nnlocal: interrupted; the finished trials are stored, rerun the same command to resume",
              file=sys.stderr)
        return 130


def _format_trials(trials) -> str:
    import json
    import textwrap

    def show(value):   # TOML-like: "text", true, [1,2]; None means "the trial's own default"
        return "None" if value is None else json.dumps(list(value) if isinstance(value, tuple) else value,
                                                      separators=(",", ":"))

    out = []
    for t in trials:
        params = ", ".join(f"{k}={show(v)}" + (f" {{{'|'.join(map(str, t.choices[k]))}}}" if k in t.choices else "")
                           for k, v in t.params.items())
        out += [f"{t.name}: {t.summary}",
                textwrap.fill(f"params: {params}", width=100, initial_indent="    ", subsequent_indent="      "),
                f"    primary metric: {t.primary}", ""]
    return "\n".join(out).rstrip()


def _cmd_sweep_run(args) -> int:
    from . import SweepError, Store, list_trials, load_spec, run_sweep

    if args.list:
        print(_format_trials(list_trials(args.imports)))
        return 0
    if args.spec is None:
        raise SweepError("nnlocal sweep run needs a SPEC.toml (or --list to see the trials)")
    if args.workers is not None and args.workers < 1:
        raise SweepError(f"--workers must be at least 1, got {args.workers}")
    spec = load_spec(args.spec)
    summary = run_sweep(spec, args.store, workers=args.workers, scheduler=args.scheduler,
                        retry_failed=not args.skip_failed, progress=not args.no_progress)
    print(summary)
    with Store(args.store) as store:
        row = next(r for r in store.status() if r["sweep"] == spec.name)
    print(f"{spec.name} in {args.store}: {row['done']} done, {row['failed']} failed, {row['pending']} pending; "
          f"tables and figures: nnlocal sweep report {args.store}")
    if row["failed"]:
        print(f"{row['failed']} trial(s) failed: their errors are in the store (nnlocal sweep status {args.store}); "
              "a rerun retries them", file=sys.stderr)
    return 1 if row["failed"] else 0


def _cmd_sweep_status(args) -> int:
    from ..report import format_table
    from . import Store

    with Store(args.store, create=False) as store:
        rows = store.status()
        failures = [(s["sweep"], store.rows(s["sweep"], "failed")) for s in rows if s["failed"]]
    print(format_table(rows) if rows else f"{args.store}: no sweeps yet")
    for name, failed in failures:
        first = failed[0]
        print(f"\n{name}: {len(failed)} failed; first: seed {first['seed']}, params {first['params']}:\n"
              f"    {first['error'].splitlines()[0]}")
    return 0


def _cmd_sweep_report(args) -> int:
    from . import write_report

    index = write_report(args.store, args.out, sweep=args.sweep, metrics=args.metric)
    print(f"tables and figures: {index}")
    return 0


def add_sweep_parser(sub, formatter_class=None) -> None:
    """Add ``sweep`` and its subcommands to the ``nnlocal`` subparsers ``sub`` (``formatter_class``: the
    ``nnlocal`` command's help formatter)."""
    fmt = {} if formatter_class is None else {"formatter_class": formatter_class}
    sweep = sub.add_parser("sweep", **fmt, help="seeds x hyper-parameter grids on Dask, results in SQLite (nnlocal[sweep])",
                           description="Run, follow and report sweeps: every combination of a grid, for every "
                                       "seed, on a Dask cluster; every result in an SQLite store. See docs/sweeps.md.")
    sweep.set_defaults(func=_cmd_sweep)
    cmds = sweep.add_subparsers(dest="sweep_command", required=True, help="what to do")

    run = cmds.add_parser("run", **fmt, help="run (or resume) the sweep of a TOML spec",
                          description="Run every trial of SPEC not yet done in the store. Rerunning resumes: done "
                                      "trials are skipped, failed ones run again.")
    run.add_argument("spec", nargs="?", help="the sweep spec (TOML)")
    run.add_argument("--store", default="results.sqlite", help="SQLite results file (created if missing)")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None,
                       help="size of the LocalCluster (worker processes, one thread each; default: the core count)")
    where.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                       help="connect to a running cluster (`dask scheduler`, `dask worker tcp://HOST:8786`)")
    run.add_argument("--skip-failed", action="store_true", help="do not retry the trials that failed before")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--list", action="store_true", help="list the registered trials and their params, then exit")
    run.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                     help="with --list: also import MODULE, which registers more trials")
    run.set_defaults(sweep_func=_cmd_sweep_run)

    status = cmds.add_parser("status", **fmt, help="done, failed and pending trials per sweep")
    status.add_argument("store", help="SQLite results file")
    status.set_defaults(sweep_func=_cmd_sweep_status)

    report = cmds.add_parser("report", **fmt, help="per-cell Markdown/CSV tables and figures",
                             description="Per grid cell: success rates with Wilson 95 %% intervals (boolean "
                                         "metrics), mean ± std, median and IQR (numeric ones); a heat-map over two "
                                         "grid axes and per-cell bars with intervals; index.md with captions.")
    report.add_argument("store", help="SQLite results file")
    report.add_argument("--sweep", default=None, help="only this sweep (default: all in the store)")
    report.add_argument("--out", default="nnlocal-out/sweeps", help="output folder")
    report.add_argument("--metric", action="append", default=None,
                        help="draw this metric (repeatable; default: the trial's primary metric)")
    report.set_defaults(sweep_func=_cmd_sweep_report)
