"""The ``nnlocal`` command: ``tour``, ``bench``, ``datasets`` and ``sweep``.

Errors follow one convention, here and in the demos (:func:`run`): a single line
``<prog>: error: <what went wrong and what to do>`` on stderr, exit status 2 for a usage error (a bad
name or argument, a missing optional dependency, a missing or damaged dataset) and 1 for a failure
while running; the traceback is printed only with ``--debug`` or ``NNLOCAL_DEBUG=1``.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import traceback
from pathlib import Path

from . import kernels
from .sweep.cli import add_sweep_parser

__all__ = ["main", "build_parser", "run", "run_seeds", "call", "UsageError", "HelpFormatter"]

DESCRIPTION = ("nnlocal: local learning rules from scratch in NumPy and Numba. "
               "`nnlocal tour` runs every method briefly, `nnlocal bench` times nnlocal against PyTorch, "
               "`nnlocal datasets` shows (and downloads) the datasets, `nnlocal sweep` runs seeds x grids on Dask.")
DEBUG_HELP = "on an error, print the full traceback (also NNLOCAL_DEBUG=1)"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` shows the default of every option that has a value (also without a help text);
    not for flags and options without a default."""

    @staticmethod
    def _has_default(action) -> bool:
        return bool(action.option_strings) and action.default is not None \
            and action.default is not argparse.SUPPRESS and not isinstance(action.default, bool)

    def _get_help_string(self, action):
        text = action.help or ""
        if "%(default)" in text or not self._has_default(action):
            return text
        return f"{text} (default: %(default)s)".strip()

    def _format_action(self, action):
        if not action.help and self._has_default(action):
            action = copy.copy(action)
            action.help = "(default: %(default)s)"
        return super()._format_action(action)


class UsageError(ValueError):
    """A mistake the user can fix from the command line: printed as one line, exit status 2."""


#: what to install when a module is missing (module, or the package above it -> advice)
INSTALL_HINTS = {
    "torch": "PyTorch is not installed (the benchmarks compare against it): pip install torch==2.13.0 "
             '(the CPU build), or pip install "nnlocal[bench]" (pin torch first: unpinned, it may pull a '
             "multi-GB CUDA build)",
    "numba.cuda": 'the CUDA kernels need NVIDIA\'s numba-cuda: pip install "nnlocal[cuda]"',
    "numba_cuda": 'the CUDA kernels need NVIDIA\'s numba-cuda: pip install "nnlocal[cuda]"',
    "sklearn": "scikit-learn is not installed: pip install scikit-learn",
}


def _first_line(exc: BaseException) -> tuple[str, bool]:
    """The first non-empty line of the message (the type name if there is none), and whether more follow."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__), len(lines) > 1


def _install_hint(name: str) -> str:
    for module, hint in INSTALL_HINTS.items():
        if name == module or name.startswith(module + "."):
            return hint
    top = name.split(".")[0] or "?"
    return f"the module {top!r} is not installed: pip install {top}"


def describe_error(exc: BaseException) -> tuple[int, str]:
    """``(exit status, one-line message)`` for an exception that reached the command line."""
    from .data.fetch import ChecksumError, CorruptDataError, DatasetNotFoundError

    line, more = _first_line(exc)
    if isinstance(exc, DatasetNotFoundError):
        return 2, f"{exc.summary or line}; `--dataset digits` needs no download"
    if isinstance(exc, ModuleNotFoundError):
        return 2, _install_hint(exc.name or "")
    if isinstance(exc, (UsageError, ChecksumError, CorruptDataError)):
        return 2, line + (" (--debug shows the rest)" if more else "")
    return 1, f"{type(exc).__name__}: {line} (--debug shows the {'rest and the ' if more else ''}traceback)"


def _debug_from_env() -> bool:
    return os.environ.get("NNLOCAL_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def call(fn, prog: str, debug: bool = False) -> int:
    """Call ``fn()`` under the error convention; returns its exit status (an int it returns, else 0:
    the demos' ``main`` returns its results)."""
    debug = debug or _debug_from_env()
    try:
        status = fn()
    except KeyboardInterrupt:
        if debug:
            traceback.print_exc()
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001  (the one place that turns any error into a message)
        try:
            status, message = describe_error(exc)
        except Exception:  # noqa: BLE001  (never hide the original error behind one of ours)
            status, message = 1, f"{type(exc).__name__}: {_first_line(exc)[0]}"
        if debug:
            traceback.print_exc()
        print(f"{prog}: error: {message}", file=sys.stderr)
        return status
    return status if isinstance(status, int) else 0


def run(main, argv=None):
    """Run a script's ``main`` under the nnlocal error convention and exit with its status.

    For the demos: ``if __name__ == "__main__": run(main)``. A missing dataset, a damaged file, a
    missing optional package print one line (exit status 2), any other error one line (status 1);
    ``NNLOCAL_DEBUG=1`` adds the traceback.
    """
    prog = Path(sys.argv[0]).name or "nnlocal"
    sys.exit(call(main if argv is None else (lambda: main(argv)), prog))


def run_seeds(run_one, args, results: str) -> list[dict]:
    """A demo's ``--seeds``: ``run_one(args)`` once per seed ``args.seed`` .. ``args.seed + args.seeds - 1``.

    With one seed the run writes where it always does (``OUT/<demo>/``). With several, seed ``s`` runs
    with ``seed = s`` and ``out = OUT/seed<s>``, so its files land in ``OUT/seed<s>/<demo>/`` (the layout
    ``docs/results/aggregate.py`` reads). A seed whose ``results`` file (a path under ``OUT/seed<s>``)
    already holds a finished run with the same arguments is skipped, so the same command resumes a
    series after an interruption. ``run_one`` must write that file last, atomically, with the run's
    arguments under ``"args"``, and return what it wrote. Returns one record per seed.
    """
    if args.seeds < 1:
        raise UsageError(f"--seeds must be at least 1, got {args.seeds}")
    if args.seeds == 1:
        return [run_one(args)]
    records = []
    for seed in range(args.seed, args.seed + args.seeds):
        one = argparse.Namespace(**{**vars(args), "seed": seed, "seeds": 1, "out": str(Path(args.out) / f"seed{seed}")})
        path = Path(one.out) / results
        if path.exists():
            old = json.loads(path.read_text())
            if old.get("args") == json.loads(json.dumps(vars(one))):
                print(f"seed {seed}: finished before ({path}), skipped")
                records.append(old)
                continue
            print(f"seed {seed}: {path} holds a run with other arguments; running again")
        print(f"seed {seed} ({seed - args.seed + 1} of {args.seeds})", flush=True)
        records.append(run_one(one))
    return records


# ---------------------------------------------------------------------------------------- commands
def _cmd_tour(args) -> int:
    from .report import format_table
    from .tour.runner import COLUMNS, machine_line, run_tour

    rows, ok = run_tour(quick=args.quick, out_dir=args.out, seed=args.seed, only=args.only, kernels=args.kernels,
                        threads=args.threads)
    print(format_table(rows, COLUMNS))
    with kernels.use(args.kernels):
        print(f"\n{machine_line(args.quick, args.threads)}")
    print(f"\nfigures and index: {args.out}/index.md")
    if not ok:
        print("some parts failed (see the table and the *-error.txt files); "
              "if a dataset is missing, run `nnlocal datasets`", file=sys.stderr)
    return 0 if ok else 1


def _cmd_bench(args) -> int:
    from .bench import available, print_results, run_benchmarks

    if args.list:
        print("\n".join(available(args.dir)))
        return 0
    results = run_benchmarks(args.names, repeat=args.repeat, quick=args.quick, bench_dir=args.dir,
                             out_dir=args.out, threads=args.threads)
    print_results(results)
    print(f"\nWritten to {args.out}/bench.md and bench.csv")
    return 0


def _cmd_datasets(args) -> int:
    from .data import describe_datasets
    from .report import format_table

    if args.download:
        from .data import DatasetNotFoundError, download_dataset

        for name in args.download:
            try:
                for line in download_dataset(name, progress=True):
                    print(line)
            except DatasetNotFoundError as exc:
                raise UsageError(exc.download_advice) from exc
        return 0
    print(format_table(describe_datasets(verify=args.verify)))
    print("\nMissing data: `nnlocal datasets --download mnist` (or fashion-mnist, cifar10) fetches it into "
          "the cache; `apt-get install dataset-fashion-mnist` installs Fashion-MNIST; or put the files in "
          "$NNLOCAL_DATA/<name>/ or ~/.cache/nnlocal/<name>/.")
    return 0


def _thread_counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(t) for t in text.split(","))
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected thread counts like 1, 2 or 1,2; got {text!r}")
    return tuple(sorted(set(counts)))


def _dataset_to_download(name: str) -> str:
    from .data import canonical_name

    try:
        key = canonical_name(name)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if key == "digits":
        raise argparse.ArgumentTypeError("digits is bundled with scikit-learn; there is nothing to download")
    return "cifar10" if key == "cifar10-gray" else key


def build_parser() -> argparse.ArgumentParser:
    from .tour import PARTS

    parser = argparse.ArgumentParser(prog="nnlocal", description=DESCRIPTION)
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    parser.subcommands = sub            # main() reports a subcommand's unknown options with its own usage
    defaults = HelpFormatter

    tour = sub.add_parser("tour", help="run every method briefly on the embedded default data", formatter_class=defaults)
    tour.add_argument("--quick", action="store_true", help="shorter runs (under a minute; used in CI)")
    tour.add_argument("--out", default="nnlocal-out/tour", help="output folder for figures, results.md, index.md")
    tour.add_argument("--seed", type=int, default=0, help="random seed of every part (data order and initial weights)")
    tour.add_argument("--only", nargs="*", metavar="PART", choices=[m for _, m in PARTS] + [label for label, _ in PARTS],
                      help="run only these parts (e.g. pan deep); default: all")
    tour.add_argument("--threads", type=int, default=1, choices=range(1, (os.cpu_count() or 1) + 1), metavar="N",
                      help="BLAS and Numba threads for every part (the tour's matrices are small: one is fastest "
                           "on a busy machine)")
    kernels.add_argument(tour)
    tour.set_defaults(func=_cmd_tour)

    bench = sub.add_parser("bench", help="nnlocal vs PyTorch timings (one thread each; needs torch); "
                                         "`nnlocal bench kernels`: every Numba kernel vs its NumPy reference",
                           formatter_class=defaults,
                           description="Time nnlocal against PyTorch (or a NumPy reference) on the same work, in "
                                       "the same process; print ratio = nnlocal time / baseline time (< 1: nnlocal "
                                       "is faster) with the machine it ran on. Needs torch: "
                                       "pip install torch==2.13.0 (CPU build).")
    bench.add_argument("names", nargs="*", help="benchmark names (default: all); see --list")
    bench.add_argument("--repeat", type=int, default=5, help="timed repetitions per case (median reported)")
    bench.add_argument("--quick", action="store_true", help="smaller work units")
    bench.add_argument("--threads", type=_thread_counts, default="1", metavar="N[,N...]",
                       help="threads for BLAS, Numba and torch alike; several counts (e.g. 1,2) run every case at "
                            "each and add speed-up columns")
    bench.add_argument("--list", action="store_true", help="list the available benchmarks")
    bench.add_argument("--dir", default=None,
                       help="a folder of extra benchmark files bench_<name>.py (each defining cases(quick))")
    bench.add_argument("--out", default="nnlocal-out/bench", help="output folder for bench.md and bench.csv")
    bench.set_defaults(func=_cmd_bench)

    data = sub.add_parser("datasets", help="say which datasets are found where; download them",
                          formatter_class=defaults)
    data.add_argument("--download", nargs="+", metavar="NAME", type=_dataset_to_download,
                      help="fetch these datasets (mnist, fashion-mnist, cifar10) into the cache, checksum-verified")
    data.add_argument("--verify", action="store_true", help="also check the files found against their checksums")
    data.set_defaults(func=_cmd_datasets)

    add_sweep_parser(sub, defaults)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if "--debug" in extra:              # accepted after the subcommand too
        extra.remove("--debug")
        args.debug = True
    if extra:                           # the subcommand's own usage, not the top-level one
        parser.subcommands.choices[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    return call(lambda: args.func(args), "nnlocal", debug=args.debug)


if __name__ == "__main__":  # python -m nnlocal.cli: run the imported module, whose error classes the library raises
    from nnlocal.cli import main as _main

    sys.exit(_main())
