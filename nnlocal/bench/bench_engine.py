"""Engine: one training step of LeNet-5 and of an MLP, and the conv layer alone, nnlocal vs torch.

Both sides run on one thread (``pin_one_thread``), in float32, from the same weights and batch.
A training step is: zero the gradients, forward, cross-entropy, backward, SGD step (lr 0.01).

* ``lenet5 step``: batch 64 of 1x28x28: conv 1->6 5x5 pad 2, ReLU, maxpool 2, conv 6->16 5x5,
  ReLU, maxpool 2, flatten 400, fc 120, ReLU, fc 84, ReLU, fc 10.
* ``mlp 784-500-10 step``: batch 64, ReLU.
* ``conv2d fwd+bwd``: the LeNet conv layers alone (the input gradient included).

nnlocal's first layer also returns dL/dx (the module protocol always does); torch skips that
work for an input without ``requires_grad``. Its cost is reported in ``extra``.

Goal: ratio = nnlocal / torch <= 1.5.
"""
from __future__ import annotations

import numpy as np

from nnlocal.bench.common import Case
from nnlocal import nn, optim

BATCH, LR = 64, 0.01


def lenet5(rng=0):
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5, rng=rng), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120, rng=rng), nn.ReLU(), nn.Linear(120, 84, rng=rng), nn.ReLU(),
                         nn.Linear(84, 10, rng=rng))


def _torch_lenet5(torch):
    t = torch.nn
    return t.Sequential(t.Conv2d(1, 6, 5, padding=2), t.ReLU(), t.MaxPool2d(2), t.Conv2d(6, 16, 5), t.ReLU(),
                        t.MaxPool2d(2), t.Flatten(), t.Linear(400, 120), t.ReLU(), t.Linear(120, 84), t.ReLU(),
                        t.Linear(84, 10))


def mlp(rng=0):
    return nn.Sequential(nn.Linear(784, 500, rng=rng), nn.ReLU(), nn.Linear(500, 10, rng=rng))


def _torch_mlp(torch):
    return torch.nn.Sequential(torch.nn.Linear(784, 500), torch.nn.ReLU(), torch.nn.Linear(500, 10))


def _copy_weights(torch, ours, theirs):
    with torch.no_grad():
        tp = dict(theirs.named_parameters())
        for name, p in ours.named_parameters():
            tp[name].copy_(torch.from_numpy(p.data))


def _step_case(name, ours, theirs, x, y, flops):
    import torch

    _copy_weights(torch, ours, theirs)
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.SGD(ours.parameters(), lr=LR)
    x_t, y_t = torch.from_numpy(x), torch.from_numpy(y)
    loss_t = torch.nn.CrossEntropyLoss()
    opt_t = torch.optim.SGD(theirs.parameters(), lr=LR)

    def step_ours():
        opt.zero_grad()
        loss = loss_fn(ours(x), y)
        ours.backward(loss_fn.backward())
        opt.step()
        return loss

    def step_theirs():
        opt_t.zero_grad()
        loss = loss_t(theirs(x_t), y_t)
        loss.backward()
        opt_t.step()
        return loss.item()

    return Case(name, step_ours, step_theirs, flops=flops, goal="ratio <= 1.5")


def _lenet_flops(batch):
    conv1 = 2 * batch * 28 * 28 * 6 * 25
    conv2 = 2 * batch * 10 * 10 * 16 * 150
    fc = 2 * batch * (400 * 120 + 120 * 84 + 84 * 10)
    return 3 * (conv1 + conv2 + fc)  # forward, input gradient, weight gradient


def _conv_case(rng):
    import torch

    cases = []
    for (cin, cout, k, pad, size) in [(1, 6, 5, 2, 28), (6, 16, 5, 0, 14)]:
        layer = nn.Conv2d(cin, cout, k, padding=pad, rng=0)
        twin = torch.nn.Conv2d(cin, cout, k, padding=pad)
        with torch.no_grad():
            twin.weight.copy_(torch.from_numpy(layer.weight.data))
            twin.bias.copy_(torch.from_numpy(layer.bias.data))
        x = rng.standard_normal((BATCH, cin, size, size)).astype(np.float32)
        x_t = torch.tensor(x, requires_grad=True)
        L = size + 2 * pad - k + 1
        g = rng.standard_normal((BATCH, cout, L, L)).astype(np.float32)
        g_t = torch.from_numpy(g)

        def ours(layer=layer, x=x, g=g):
            layer.zero_grad()
            layer(x)
            return layer.backward(g)

        def theirs(twin=twin, x_t=x_t, g_t=g_t):
            twin.zero_grad()
            x_t.grad = None
            twin(x_t).backward(g_t)
            return x_t.grad

        flops = 3 * 2 * BATCH * L * L * cout * cin * k * k
        cases.append(Case(f"conv2d {cin}->{cout} {k}x{k} fwd+bwd (B={BATCH}, {size}x{size})", ours, theirs,
                          flops=flops, goal="ratio <= 1.5"))
    return cases


def cases(quick: bool = False) -> list[Case]:
    import torch

    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    x_img = rng.random((BATCH, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, BATCH).astype(np.int64)
    out = [
        _step_case(f"lenet5 train step (B={BATCH})", lenet5(0), _torch_lenet5(torch), x_img, y, _lenet_flops(BATCH)),
        _step_case(f"mlp 784-500-10 train step (B={BATCH})", mlp(0), _torch_mlp(torch),
                   x_img.reshape(BATCH, 784), y, 3 * 2 * BATCH * (784 * 500 + 500 * 10)),
    ]
    if not quick:
        out += _conv_case(rng)
    return out


if __name__ == "__main__":  # python -m nnlocal.bench.bench_engine
    from nnlocal.bench.common import pin_one_thread, run_case

    pin_one_thread()
    for case in cases():
        row = run_case(case, repeat=20)
        print(f"{row['benchmark']:<55} nnlocal {row['nnlocal_ms']:7.3f} ms  torch {row['baseline_ms']:7.3f} ms  "
              f"ratio {row['ratio']:.2f}  roofline {row['roofline']:.2f}")
