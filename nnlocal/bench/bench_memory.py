"""Peak memory: one LeNet-5 training epoch, nnlocal vs torch, and the ``nnlocal tour`` command.

Each cell runs in a fresh Python process (the same interpreter and environment, the run's thread
count) and reports that process's peak resident set size (its own high-water mark, VmHWM; see
``common.peak_rss``), imports and Numba compilation included, and its wall time.

* ``python + imports``: the floor, ``import nnlocal`` (numpy, numba, scipy) against ``import torch``.
* ``lenet5 epoch``: LeNet-5 (the network of ``bench_engine``) trained for one epoch, SGD lr 0.01,
  batch 64, cross-entropy, on N random 1x28x28 images held as one float32 array on both sides
  (N = 60,000 as in MNIST, 188 MB; 6,400 with ``quick``); torch reads it through
  ``torch.from_numpy`` (no copy).
* ``nnlocal tour --quick``, and the full tour without ``quick``: the whole command, figures included.

Without torch installed, the torch cells are left empty.
"""
from __future__ import annotations

import importlib.util

import numpy as np

from nnlocal.bench.common import MemoryCase

BATCH, LR = 64, 0.01


def lenet_epoch(side: str, n: int, batch: int = BATCH) -> None:
    """One LeNet-5 training epoch on ``n`` random images, in nnlocal (``side="nnlocal"``) or torch."""
    from nnlocal.bench.bench_engine import _torch_lenet5, lenet5

    rng = np.random.default_rng(0)
    x = rng.random((n, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, n)
    if side == "nnlocal":
        from nnlocal import nn, optim

        model, loss_fn = lenet5(0), nn.CrossEntropyLoss()
        opt = optim.SGD(model.parameters(), lr=LR)
        for i in range(0, n, batch):
            opt.zero_grad()
            loss_fn(model(x[i:i + batch]), y[i:i + batch])
            model.backward(loss_fn.backward())
            opt.step()
        return
    import torch

    model, loss_fn = _torch_lenet5(torch), torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for i in range(0, n, batch):
        opt.zero_grad()
        loss_fn(model(xt[i:i + batch]), yt[i:i + batch]).backward()
        opt.step()


def _tour(quick: bool) -> str:
    args = ["tour", "--out", "{out}"] + (["--quick"] if quick else [])
    return ("import sys, tempfile\nfrom nnlocal.cli import main\nwith tempfile.TemporaryDirectory() as out:\n"
            f"    status = main([a.format(out=out) for a in {args!r}])\nsys.exit(status)")


def cases(quick: bool = False) -> list[MemoryCase]:
    torch = importlib.util.find_spec("torch") is not None
    n = 6_400 if quick else 60_000
    epoch = "from nnlocal.bench.bench_memory import lenet_epoch; lenet_epoch({!r}, %d)" % n
    out = [MemoryCase("python + imports (nnlocal vs torch)", "import nnlocal",
                      "import numpy, torch" if torch else None),
           MemoryCase(f"lenet5 epoch ({n} images 1x28x28, batch {BATCH}, SGD)", epoch.format("nnlocal"),
                      epoch.format("torch") if torch else None),
           MemoryCase("nnlocal tour --quick", _tour(quick=True), baseline_name="-")]
    if not quick:
        out.append(MemoryCase("nnlocal tour (full)", _tour(quick=False), baseline_name="-"))
    return out
