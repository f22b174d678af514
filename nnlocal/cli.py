"""The ``nnlocal`` command: ``tour``, ``bench``, ``datasets`` and ``sweep``."""
from __future__ import annotations

import argparse
import sys

from . import kernels
from .sweep.cli import add_sweep_parser


def _cmd_tour(args) -> int:
    from .report import format_table
    from .tour.runner import COLUMNS, run_tour

    rows, ok = run_tour(quick=args.quick, out_dir=args.out, seed=args.seed, only=args.only, kernels=args.kernels)
    print(format_table(rows, COLUMNS))
    print(f"\nfigures and index: {args.out}/index.md")
    if not ok:
        print("some parts failed (see the table and the *-error.txt files); "
              "if a dataset is missing, run `nnlocal datasets`", file=sys.stderr)
    return 0 if ok else 1


def _cmd_bench(args) -> int:
    from .bench import COLUMNS, available, find_benchmarks_dir, run_benchmarks
    from .report import format_table, machine_summary

    if args.list:
        print("\n".join(available(find_benchmarks_dir(args.dir))))
        return 0
    rows = run_benchmarks(args.names, repeat=args.repeat, quick=args.quick, bench_dir=args.dir, out_dir=args.out)
    print(f"machine: {machine_summary()}")
    print(format_table(rows, COLUMNS))
    print(f"\nratio = nnlocal time / baseline time (one thread each; < 1 means nnlocal is faster; for `kernels`: "
          f"Numba kernel / NumPy reference). Written to {args.out}/bench.md and bench.csv")
    return 0


def _cmd_datasets(args) -> int:
    from .data import describe_datasets
    from .report import format_table

    print(format_table(describe_datasets()))
    print("\nMissing data: `apt-get install dataset-fashion-mnist` for Fashion-MNIST; put MNIST/CIFAR-10 files in "
          "$NNLOCAL_DATA/<name>/ or ~/.cache/nnlocal/<name>/ (they download there when online).")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's one-line errors (``nnlocal: error: ...``, exit status 2)."""

    def error(self, message):
        self.exit(2, f"nnlocal: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nnlocal", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    tour = sub.add_parser("tour", help="run every method briefly on the embedded default data")
    tour.add_argument("--quick", action="store_true", help="shorter runs (under a minute; used in CI)")
    tour.add_argument("--out", default="nnlocal-out/tour", help="output folder for figures, results.md, index.md")
    tour.add_argument("--seed", type=int, default=0)
    tour.add_argument("--only", nargs="*", help="run only these parts (e.g. pan deep)")
    kernels.add_argument(tour)
    tour.set_defaults(func=_cmd_tour)

    bench = sub.add_parser("bench", help="nnlocal vs PyTorch timings, one thread each (needs torch); "
                                         "`nnlocal bench kernels`: every Numba kernel vs its NumPy reference")
    bench.add_argument("names", nargs="*", help="benchmark names (default: all); see --list")
    bench.add_argument("--repeat", type=int, default=5, help="timed repetitions per case (median reported)")
    bench.add_argument("--quick", action="store_true", help="smaller work units")
    bench.add_argument("--list", action="store_true", help="list the available benchmarks")
    bench.add_argument("--dir", default=None, help="benchmarks folder (default: ./benchmarks)")
    bench.add_argument("--out", default="nnlocal-out/bench")
    bench.set_defaults(func=_cmd_bench)

    data = sub.add_parser("datasets", help="say which datasets are found where")
    data.set_defaults(func=_cmd_datasets)

    add_sweep_parser(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
