"""``nnlocal tour``: every method briefly on the embedded default data, one results table.

Each method contributes one module here (``nnlocal/tour/<method>.py``) with

    CAPTIONS = {"figure_name": "one sentence: what to look at in the figure", ...}

    def run(quick: bool, out_dir: pathlib.Path, seed: int = 0, progress=None) -> tuple[list[Row], list[pathlib.Path]]

that trains briefly on data that needs no download (scikit-learn digits, Multi-digits from
``nnlocal.data.multi_mnist``, logic gates), returns its table rows and the PNG figures it wrote.
``progress`` is the part's own progress bar (a ``tqdm``; :func:`part_bar` turns ``None`` into a
silent one): the part sets its total once and advances it per epoch or per network, so the bar
moves during a long part. The runner (:mod:`nnlocal.tour.runner`) times each part and runs all of
them under one thread limit (BLAS and Numba alike), so a part sets no thread limit of its own.
Budget per part: about 20 s for the full run and 6 s with ``quick=True`` on one core, Numba
compilation included.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["Row", "PARTS", "part_bar", "success_cell"]


@dataclass
class Row:
    method: str            # "PAN", "ARP", "DEEP", "EP", "kWTA", "BU-TD", ...
    task: str              # short: what ran, e.g. "digits, epoch 15" (the terminal table shows it)
    metric: str            # e.g. "test acc %"
    nnlocal: float | str   # the method's result
    baseline: float | str | None = None   # the comparison run in the same tour
    baseline_name: str = ""               # what the baseline is ("LeNet-5", "backprop", ...)
    original: str = ""                    # the original's reported number, where one exists
    details: str = ""                     # the recipe in full (results.md shows it)

    def as_dict(self) -> dict:
        return asdict(self)


#: tour parts in display order: (method label, module name under nnlocal.tour)
PARTS = [
    ("PAN", "pan"),
    ("ARP", "arp"),
    ("DEEP", "deep"),
    ("EP", "eqprop"),
    ("kWTA", "kwta"),
    ("BU-TD", "butd"),
]


def part_bar(progress, total: int):
    """The part's progress bar with its total set: ``progress`` itself, or a silent bar if None."""
    if progress is None:
        from tqdm.auto import tqdm

        progress = tqdm(disable=True)
    progress.reset(total=total)
    return progress


def success_cell(successes: int, n: int) -> str:
    """``"k/n (lo-hi %)"``: a count of successes with its Wilson 95 % interval, so a reader sees how
    far the count may move with other seeds or another machine's rounding."""
    from ..sweep.stats import wilson_interval

    lo, hi = wilson_interval(successes, n)
    return f"{successes}/{n} ({100 * lo:.0f}-{100 * hi:.0f} %)"
