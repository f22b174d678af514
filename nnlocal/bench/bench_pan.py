"""PAN: the Perceptron Activation layer and the Tron network, nnlocal vs the literal torch original.

The torch side is the original ``Perceptron`` module as written in the notebooks: the teacher's
``(B, m·n)`` GEMM ``F.linear(x, TW, Tb)``, the batch sum ``Tz.t() @ ones(B)``, the ``torch.gt``
mask and the masked ``F.linear``. nnlocal computes the same gate as one BLAS GEMV on the batch
sum. Both sides run on one thread, float32, same weights (the torch twin shares nnlocal's arrays
through ``torch.from_numpy``).

* ``pan_layer``: PAN 400→120 forward + backward, batch 64 (frozen teacher). Goal: ratio <= 0.125
  (>= 8× faster than torch). ``gemv_ms`` is one BLAS GEMV over TW (``TW @ s``, 76.8 MB) timed in
  the same run, the floor of the layer.
* ``pan_layer_forward``: the forward pass alone against that GEMV. Goal: ratio <= 1.5.
* ``pan_layer_sample``: the per-sample-gate extension (the ``(B, m·n)`` teacher GEMM is inherent
  there) vs its torch twin.
* ``tron_epoch``: Tron training (SGD lr 0.003, batch 64, NLL) over 60,000 random 28×28 images, a
  full MNIST-size epoch of 938 steps, or 10 steps (640 images) with ``quick``. Goal: ratio <= 1.0.
  A full epoch takes minutes on the torch side: ``nnlocal bench pan --repeat 1``.
* ``kernel_cases()`` (``python -m nnlocal.bench.bench_pan --kernels``): every Numba kernel of
  ``nnlocal/methods/pan/cpu.py`` against its NumPy reference, at the sizes PAN uses (400→120 and
  120→84 for MNIST, 64→120 for the 8×8 digits; B = 64, and B = 500 for the per-sample kernels as
  in the demo's per-sample evaluation), plus the removed fused Numba batch gate against BLAS:
  the measurements behind which kernels ``cpu.py`` keeps. A kernel stays only if ratio < 1 at
  every size.
"""
from __future__ import annotations

import time

import numpy as np
from numba import njit

from nnlocal.bench.common import Case
from nnlocal import nn, optim
from nnlocal.methods import pan
from nnlocal.methods.pan import cpu, reference

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
    tw, s = layer.teacher_weight.data, x.sum(axis=0)

    def gemv():
        return tw @ s

    gemv_ms = _median_ms(gemv, 15)
    cases = [Case(f"pan_layer ({N_IN}->{N_OUT}, batch {BATCH}, fwd+bwd)", _layer_step(layer, x, g),
                  _torch_layer_step(TorchPerceptron(layer), x, g), baseline_name="torch (literal original)",
                  bytes=tw.nbytes, goal="ratio <= 0.125 (>= 8x faster)",
                  extra={"gemv_ms": round(gemv_ms, 2)}),
             Case(f"pan_layer_forward ({N_IN}->{N_OUT}, batch {BATCH})", lambda: layer(x), gemv,
                  baseline_name="one BLAS GEMV over TW", bytes=tw.nbytes, goal="ratio <= 1.5")]
    sample = pan.PerceptronActivation(N_IN, N_OUT, gate="sample", rng=1)
    flops = 2 * BATCH * N_IN * N_IN * N_OUT           # the teacher GEMM dominates
    cases.append(Case(f"pan_layer_sample ({N_IN}->{N_OUT}, batch {BATCH}, per-sample gates, fwd+bwd)",
                      _layer_step(sample, x, g), _torch_layer_step(TorchPerceptron(sample, "sample"), x, g),
                      baseline_name="torch twin", flops=flops, goal="ratio <= 1.0"))
    return cases


# ----------------------------------------------------------------------------- kernels vs references
@njit(cache=True, fastmath=True)
def _fused_batch_gate(tw, s, tb, tb_scale, threshold, mask):
    """The removed Numba batch gate (GEMV, bias and threshold fused in one loop), kept here so the
    measurement that removed it can be repeated."""
    K, n = tw.shape
    for k in range(K):
        acc = tw[k, 0] * 0
        for i in range(n):
            acc += tw[k, i] * s[i]
        mask[k] = acc + tb_scale * tb[k] > threshold
    return mask


#: (n, m) of every PAN layer in the demos: MNIST tron1, tron2, the 8×8 digits' tron1
KERNEL_SIZES = [(400, 120), (120, 84), (64, 120)]


def _kernel_args(name, n, m, B, rng):
    f32 = np.float32
    r = lambda *shape: rng.standard_normal(shape, dtype=f32)  # noqa: E731
    K = m * n
    tw, tb, x, sw, sb, g = r(K, n), r(K), r(B, n), r(m, n), r(m), r(B, m)
    if name == "pan_batch_gate":
        return tw, x.sum(axis=0), tb, f32(B), f32(0.0), np.empty(K, np.bool_)
    if name == "pan_sample_gate":
        return tw, x, tb, f32(0.0), np.empty((B, K), np.bool_)
    if name == "pan_bias_threshold":
        return x @ tw.T, tb, f32(0.0), np.empty((B, K), np.bool_)
    mask = rng.random((B, m, n)) > 0.5
    if name == "pan_sample_forward":
        return mask, sw, x, sb, np.empty((B, m), f32)
    if name == "pan_sample_backward":
        return mask, sw, x, g, np.empty_like(sw), np.empty_like(x)
    if name == "pan_sample_gate_grad":
        return sw, x, g, np.empty((B, m, n), f32)
    if name == "pan_add_outer":
        return np.zeros((K, n), f32), tb, r(n)
    raise ValueError(name)


def kernel_cases(quick: bool = False) -> list[Case]:
    """Each Numba kernel of ``cpu.py`` (and the removed fused batch gate) vs its reference, one thread."""
    rng = np.random.default_rng(0)
    sizes = KERNEL_SIZES[1:] if quick else KERNEL_SIZES
    kernels = {name: getattr(cpu, name) for name in cpu.__all__ if hasattr(getattr(cpu, name), "py_func")}  # @njit ones
    kernels["pan_batch_gate"] = _fused_batch_gate
    cases = []
    for name, kernel in kernels.items():
        batches = (BATCH,) if name in ("pan_batch_gate", "pan_add_outer") or quick else (BATCH, 500)
        for n, m in sizes:
            for B in batches:
                args = _kernel_args(name, n, m, B, rng)
                ref = getattr(reference, name)
                label = "fused Numba " + name if kernel is _fused_batch_gate else name
                cases.append(Case(f"{label} {n}->{m}, B={B}", lambda k=kernel, a=args: k(*a),
                                  lambda f=ref, a=args: f(*a), baseline_name="numpy reference",
                                  goal="ratio < 1 (kept)" if kernel is not _fused_batch_gate else "ratio < 1"))
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


if __name__ == "__main__":  # python -m nnlocal.bench.bench_pan [--quick] [--repeat N] [--kernels]: every column
    from nnlocal.bench.common import script_main

    script_main("PAN", cases, kernel_cases)
