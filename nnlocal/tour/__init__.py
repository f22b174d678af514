"""``nnlocal tour``: every method briefly on the embedded default data, one results table.

Each method contributes one module here (``nnlocal/tour/<method>.py``) with

    def run(quick: bool, out_dir: pathlib.Path, seed: int = 0) -> tuple[list[Row], list[pathlib.Path]]

that trains briefly on data that needs no download (scikit-learn digits, Multi-digits from
``nnlocal.data.multi_mnist``, logic gates), returns its table rows and the PNG figures it wrote.
Budget per part: about 20 s for the full run and 6 s with ``quick=True`` on one core, Numba
compilation included.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["Row", "PARTS"]


@dataclass
class Row:
    method: str            # "PAN", "ARP", "DEEP", "EP", "kWTA", "BU-TD", ...
    task: str              # e.g. "digits 8x8, 3 epochs"
    metric: str            # e.g. "test acc %"
    nnlocal: float | str   # the method's result
    baseline: float | str | None = None   # the comparison run in the same tour
    baseline_name: str = ""               # what the baseline is ("LeNet-5", "backprop", ...)
    original: str = ""                    # the original's reported number, where one exists

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
