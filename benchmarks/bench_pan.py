"""PAN: the Perceptron Activation layer and the Tron network, nnlocal vs the literal torch original.

The torch side is the original ``Perceptron`` module as written in the notebooks: the teacher's
``(B, m·n)`` GEMM ``F.linear(x, TW, Tb)``, the batch sum ``Tz.t() @ ones(B)``, the ``torch.gt``
mask and the masked ``F.linear``. nnlocal computes the same gate as one GEMV on the batch sum,
fused with the threshold in a Numba kernel. Both sides run on one thread, float32, same weights
(the torch twin shares nnlocal's arrays through ``torch.from_numpy``).

* ``pan_layer``: PAN 400→120 forward + backward, batch 64 (frozen teacher). Goals: ratio <= 0.125
  (>= 8× faster than torch) and within 1.5× of the time it takes to read TW (76.8 MB) once.
  ``Case.bytes = TW.nbytes`` makes the ``roofline`` column that fraction against the nominal
  27 GB/s; ``read_TW_ms`` is a bare Numba read of TW measured in the same process (this machine's
  real one-thread stream rate) and ``x_read`` = nnlocal time / that read time.
* ``pan_gate_kernel``: the fused GEMV + threshold kernel alone vs NumPy (BLAS ``sgemv``, then the
  threshold): the measurement behind the kernel choice.
* ``pan_layer_sample``: the per-sample-gate extension (the ``(B, m·n)`` teacher GEMM is inherent
  there) vs its torch twin.
* ``tron_epoch``: Tron training (SGD lr 0.003, batch 64, NLL) over 60,000 random 28×28 images, a
  full MNIST-size epoch of 938 steps, or 10 steps (640 images) with ``quick``. Goal: ratio <= 1.0.
  A full epoch takes minutes on the torch side: ``nnlocal bench pan --repeat 1``.
"""
from __future__ import annotations

import time

import numpy as np
from numba import njit

from benchmarks.common import Case
from nnlocal import nn, optim
from nnlocal.methods.pan.cpu import pan_batch_gate
from nnlocal.methods import pan

N_IN, N_OUT, BATCH = 400, 120, 64


# ----------------------------------------------------------------------------- torch twins
def _torch_perceptron_cls():
    import torch
    import torch.nn.functional as F

    class TorchPerceptron(torch.nn.Module):
        """The original ``Perceptron`` (per-sample gates with ``gate="sample"``)."""

        def __init__(self, layer: pan.PerceptronActivation, gate: str = "batch"):
            super().__init__()
            P = torch.nn.Parameter
            self.SW = P(torch.from_numpy(layer.weight.data))
            self.Sb = P(torch.from_numpy(layer.bias.data))
            self.TW = P(torch.from_numpy(layer.teacher_weight.data))      # requires_grad, as the original
            self.Tb = P(torch.from_numpy(layer.teacher_bias.data))
            self.min_val = torch.tensor(0.0)
            self.gate, self.m, self.n = gate, layer.out_features, layer.in_features

        def forward(self, x):
            Tz = F.linear(x, self.TW, self.Tb)
            if self.gate == "batch":
                Th = torch.matmul(Tz.t(), torch.ones(x.size()[0]))
                o = torch.gt(Th, self.min_val).float().view(self.m, self.n)
                return F.linear(x, torch.mul(o, self.SW), self.Sb)
            o = torch.gt(Tz, self.min_val).float().view(-1, self.m, self.n)
            return torch.einsum("bji,bi->bj", o * self.SW, x) + self.Sb

    return TorchPerceptron


def _torch_tron(model: pan.ConvNet):
    import torch
    import torch.nn.functional as F

    TorchPerceptron = _torch_perceptron_cls()

    class TorchTron(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(1, 6, 5, padding=2)
            self.conv2 = torch.nn.Conv2d(6, 16, 5)
            self.tron1 = TorchPerceptron(model.tron1)
            self.tron2 = TorchPerceptron(model.tron2)
            self.fc3 = torch.nn.Linear(84, 10)
            with torch.no_grad():
                for name in ("conv1", "conv2", "fc3"):
                    ours = getattr(model, name)
                    getattr(self, name).weight.copy_(torch.from_numpy(ours.weight.data))
                    getattr(self, name).bias.copy_(torch.from_numpy(ours.bias.data))

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            x = self.tron2(self.tron1(x.reshape(x.shape[0], -1)))
            return F.log_softmax(self.fc3(x), dim=1)

    return TorchTron()


# ----------------------------------------------------------------------------- the PAN layer
def _layer_step(layer, x, g):
    def run():
        layer.zero_grad()
        layer(x)
        layer.backward(g)
    return run


def _torch_layer_step(twin, x, g):
    import torch

    xt, gt = torch.from_numpy(x), torch.from_numpy(g)

    def run():
        twin.zero_grad()
        twin(xt).backward(gt)
    return run


@njit(cache=True, fastmath=True)
def _read_all(a):
    """Sum of every entry: one streaming read of ``a`` (the memory-bandwidth floor of the gate)."""
    acc = a[0, 0] * 0
    for k in range(a.shape[0]):
        for i in range(a.shape[1]):
            acc += a[k, i]
    return acc


def _median_ms(fn, repeat=7):
    fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(ts))


def _layer_cases():
    rng = np.random.default_rng(0)
    layer = pan.PerceptronActivation(N_IN, N_OUT, rng=0)
    x = rng.standard_normal((BATCH, N_IN), dtype=np.float32)
    g = rng.standard_normal((BATCH, N_OUT), dtype=np.float32)
    TorchPerceptron = _torch_perceptron_cls()
    tw = layer.teacher_weight.data
    read_ms = _median_ms(lambda: _read_all(tw))
    ours = _layer_step(layer, x, g)
    ours_ms = _median_ms(ours)
    cases = [Case(f"pan_layer ({N_IN}->{N_OUT}, batch {BATCH}, fwd+bwd)", ours,
                  _torch_layer_step(TorchPerceptron(layer), x, g), baseline_name="torch (literal original)",
                  bytes=tw.nbytes, goal="ratio <= 0.125; <= 1.5x one read of TW",
                  extra={"read_TW_ms": round(read_ms, 2), "x_read": round(ours_ms / read_ms, 2)})]

    s = x.sum(axis=0)
    tb = layer.teacher_bias.data
    mask = np.empty(tw.shape[0], np.bool_)
    b, th = np.float32(BATCH), np.float32(0.0)
    cases.append(Case(f"pan_gate_kernel (GEMV+threshold, TW {tw.shape[0]}x{tw.shape[1]})",
                      lambda: pan_batch_gate(tw, s, tb, b, th, mask),
                      lambda: np.greater(tw @ s + b * tb, th, out=mask), baseline_name="numpy (BLAS sgemv)",
                      bytes=tw.nbytes, goal="ratio <= 1.0"))

    sample = pan.PerceptronActivation(N_IN, N_OUT, gate="sample", rng=1)
    flops = 2 * BATCH * N_IN * N_IN * N_OUT           # the teacher GEMM dominates
    cases.append(Case(f"pan_layer_sample ({N_IN}->{N_OUT}, batch {BATCH}, per-sample gates, fwd+bwd)",
                      _layer_step(sample, x, g), _torch_layer_step(TorchPerceptron(sample, "sample"), x, g),
                      baseline_name="torch twin", flops=flops, goal="ratio <= 1.0"))
    return cases


# ----------------------------------------------------------------------------- Tron epoch
def _tron_cases(quick: bool):
    import torch

    n = 640 if quick else 60_000
    rng = np.random.default_rng(0)
    x = (rng.random((n, 1, 28, 28), dtype=np.float32) - 0.5) / 0.5
    y = rng.integers(0, 10, n)
    model = pan.tron(1, 28, 10, rng=0)
    twin = _torch_tron(model)       # built from a copy of the initial weights (PAN arrays shared)
    opt = optim.SGD(model.parameters(), lr=0.003)
    loss_fn = nn.NLLLoss()

    def ours():
        for i in range(0, n, BATCH):
            opt.zero_grad()
            loss_fn(model(x[i:i + BATCH]), y[i:i + BATCH])
            model.backward(loss_fn.backward())
            opt.step()

    topt = torch.optim.SGD(twin.parameters(), lr=0.003)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def theirs():
        for i in range(0, n, BATCH):
            topt.zero_grad()
            torch.nn.functional.nll_loss(twin(xt[i:i + BATCH]), yt[i:i + BATCH]).backward()
            topt.step()

    # the twin shares the student arrays with nnlocal (torch.from_numpy): both train the same
    # memory, which changes nothing in the timing (same shapes, same work per step)
    steps = -(-n // BATCH)
    return [Case(f"tron_epoch ({n} images 1x28x28, {steps} SGD steps of batch {BATCH})", ours, theirs,
                 baseline_name="torch (literal original)", goal="ratio <= 1.0",
                 bytes=steps * model.tron1.teacher_weight.data.nbytes)]


def cases(quick: bool = False) -> list[Case]:
    return _layer_cases() + _tron_cases(quick)


if __name__ == "__main__":  # python -m benchmarks.bench_pan [--quick] [--repeat N]: every column, extras included
    import argparse

    from benchmarks.common import pin_one_thread, run_case
    from nnlocal.report import print_table

    parser = argparse.ArgumentParser(description="PAN benchmarks with every column (read_TW_ms, x_read)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    pin_one_thread()
    print_table([run_case(c, repeat=args.repeat) for c in cases(quick=args.quick)], title="PAN benchmarks")
