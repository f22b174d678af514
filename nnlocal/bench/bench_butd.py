"""BU-TD: one Counter-Hebb training epoch of the FC-500 net vs a torch backprop twin.

The original's MNIST / Fashion-MNIST recipe: Flatten -> Linear(784, 500) + ReLU -> Linear(500, 10),
cross-entropy, Adam(1e-4), batch 20. nnlocal learns with Counter-Hebb (error TD pass + local
updates, ``butd.counter_hebb_``); the twin is ``torch.nn.Sequential`` with ``loss.backward()``.
Both run on one thread (``pin_one_thread``), in float32, over the same pre-shuffled random images
(the timing does not depend on the pixels): 60,000 images (a full Fashion-MNIST epoch, 3,000
steps), or 6,000 with ``quick``.

* ``butd_ch_epoch``: the CH epoch (shared top-down weights, which equals backprop);
* ``butd_ch_separate_epoch``: the same with separate top-down weights, against a torch twin that
  also keeps W̄ and lets Adam update it with W's gradient transposed (the same work);
* ``butd_ch_gradients_epoch``: the shared-weights epoch without the optimizer step (forward, loss
  gradient and CH against torch's forward and ``backward``): BU-TD's own share of the work;

Goal: ratio = nnlocal / torch <= 1.0.

``python -m nnlocal.bench.bench_butd --kernels`` (:func:`kernel_cases`) times the Numba GaLU
(``cpu.galu``) against its NumPy reference (``reference.galu``) on the same float32 arrays (random
values and gates) at the sizes BU-TD gates: the FC net's hidden layer (20, 500), the simple net's
first conv map on Multi-MNIST (64, 32, 24, 24) and a ResNet-18 stage-1 map on CIFAR-10
(128, 64, 32, 32; batch 16 with ``--quick``), with ``relu=True`` (the guided BU pass) and
``relu=False`` (the backprop and TD gates). The kernel stays only if it wins at every size.
"""
from __future__ import annotations

import numpy as np

from nnlocal.bench.common import Case
from nnlocal import optim
from nnlocal.methods import butd
from nnlocal.methods.butd import cpu, reference

BATCH, HIDDEN, LR = 20, 500, 1e-4


def _data(n: int):
    rng = np.random.default_rng(0)
    return rng.random((n, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, n)


def _ch_epoch(x, y, top_down: str, step: bool = True):
    net = butd.fc_net((1, 28, 28), 10, hidden=HIDDEN, top_down=top_down, rng=0)
    opt = optim.Adam(net.parameters(), lr=LR)

    def run():
        for i in range(0, len(x), BATCH):
            opt.zero_grad()
            logits = net(x[i:i + BATCH])
            _, g = butd.loss_and_grad("cross_entropy", logits, y[i:i + BATCH])
            butd.counter_hebb_(net, g)
            if step:
                opt.step()
    return run


def _torch_epoch(x, y, separate: bool = False, step: bool = True):
    """torch backprop; with ``separate`` also top-down matrices W̄ that Adam updates with W's gradient
    transposed (the same work as nnlocal's separate-weights CH epoch)."""
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, HIDDEN), torch.nn.ReLU(),
                              torch.nn.Linear(HIDDEN, 10))
    linears = [net[1], net[3]]
    back = [torch.nn.Parameter(m.weight.detach().T.clone()) for m in linears] if separate else []
    opt = torch.optim.Adam(list(net.parameters()) + back, lr=LR)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    loss_fn = torch.nn.CrossEntropyLoss()

    def run():
        for i in range(0, len(x), BATCH):
            opt.zero_grad()
            loss_fn(net(xt[i:i + BATCH]), yt[i:i + BATCH]).backward()
            for m, b in zip(linears, back):
                b.grad = m.weight.grad.T.contiguous()
            if step:
                opt.step()
    return run


def kernel_cases(quick: bool = False) -> list[Case]:
    rng = np.random.default_rng(0)
    shapes = {"FC-500 hidden": (20, 500), "simple net conv1": (64, 32, 24, 24),
              "ResNet-18 stage 1": (16 if quick else 128, 64, 32, 32)}
    out = []
    for name, shape in shapes.items():
        x = rng.standard_normal(shape, dtype=np.float32)
        gate = rng.standard_normal(shape, dtype=np.float32)
        for relu in (True, False):
            out.append(Case(f"galu kernel, {name} {shape}, relu={relu}", lambda x=x, g=gate, r=relu: cpu.galu(x, g, r),
                            lambda x=x, g=gate, r=relu: reference.galu(x, g, r), baseline_name="NumPy reference",
                            bytes=3 * x.nbytes, goal="ratio < 1 at every size (else the kernel goes)"))
    return out


def cases(quick: bool = False) -> list[Case]:
    n = 6_000 if quick else 60_000
    x, y = _data(n)
    steps = n // BATCH
    # forward 784x500 GEMM, CH update 500x784 GEMM (2 flops per MAC), head negligible
    flops = steps * 2 * 2 * BATCH * 784 * HIDDEN
    return [
        Case(f"butd_ch_epoch (FC-500, {n} images, batch {BATCH}, Adam)", _ch_epoch(x, y, "shared"),
             _torch_epoch(x, y), baseline_name="torch backprop", flops=flops, goal="ratio <= 1.0"),
        Case(f"butd_ch_separate_epoch (FC-500, {n} images, separate TD weights)", _ch_epoch(x, y, "separate"),
             _torch_epoch(x, y, separate=True), baseline_name="torch backprop + W̄", flops=flops,
             goal="ratio <= 1.0"),
        Case(f"butd_ch_gradients_epoch (FC-500, {n} images, no optimizer step)", _ch_epoch(x, y, "shared", False),
             _torch_epoch(x, y, step=False), baseline_name="torch fwd+backward", flops=flops,
             goal="ratio <= 1.0 (BU-TD's own work)"),
    ]


if __name__ == "__main__":  # python -m nnlocal.bench.bench_butd [--quick] [--repeat N] [--kernels]
    from nnlocal.bench.common import script_main

    script_main("BU-TD", cases, kernel_cases)
