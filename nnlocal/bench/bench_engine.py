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


def _conv_case(rng, configs=((1, 6, 5, 2, 28, BATCH), (6, 16, 5, 0, 14, BATCH)), goal="ratio <= 1.5"):
    import torch

    cases = []
    for (cin, cout, k, pad, size, batch) in configs:
        layer = nn.Conv2d(cin, cout, k, padding=pad, rng=0)
        twin = torch.nn.Conv2d(cin, cout, k, padding=pad)
        with torch.no_grad():
            twin.weight.copy_(torch.from_numpy(layer.weight.data))
            twin.bias.copy_(torch.from_numpy(layer.bias.data))
        x = rng.standard_normal((batch, cin, size, size)).astype(np.float32)
        x_t = torch.tensor(x, requires_grad=True)
        L = size + 2 * pad - k + 1
        g = rng.standard_normal((batch, cout, L, L)).astype(np.float32)
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

        flops = 3 * 2 * batch * L * L * cout * cin * k * k
        cases.append(Case(f"conv2d {cin}->{cout} {k}x{k} pad {pad} fwd+bwd incl. dL/dx (B={batch}, {size}x{size})",
                          ours, theirs, flops=flops, goal=goal))
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
    return out + speed_cases(quick)


if __name__ == "__main__":  # python -m nnlocal.bench.bench_engine
    from nnlocal.bench.common import pin_one_thread, run_case

    pin_one_thread()
    for case in cases():
        row = run_case(case, repeat=20)
        print(f"{row['benchmark']:<55} nnlocal {row['nnlocal_ms']:7.3f} ms  torch {row['baseline_ms']:7.3f} ms  "
              f"ratio {row['ratio']:.2f}  roofline {row['roofline']:.2f}")


# ---------------------------------------------------------------------------------------------- issue #15
# The cases of issue #15 (appended; `speed_cases()` is added to `cases()` below). Goals: LeNet-5 step
# <= 1.0 with the first layer's dL/dx skipped on both sides (torch never computes it: the images do
# not require grad; nnlocal: Conv2d(input_grad=False)); Conv2d 16->32 fwd+bwd incl. dL/dx <= 1.2;
# max/avg pooling fwd+bwd on LeNet's shapes <= 1.0; Adam, RMSprop, SGD-momentum steps on 1.6 M
# parameters <= 1.0 against torch foreach=False (foreach=True reported as a second row).

#: LeNet-5 and an MLP 784-1200-500-10 head: 1,609,216 parameters
OPT_SHAPES = [(6, 1, 5, 5), (6,), (16, 6, 5, 5), (16,), (120, 400), (120,), (84, 120), (84,), (10, 84), (10,),
              (1200, 784), (1200,), (500, 1200), (500,), (10, 500), (10,)]


def _first_layer_cases(quick):
    import torch

    rng = np.random.default_rng(0)
    x_img = rng.random((BATCH, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, BATCH).astype(np.int64)
    net, head = lenet5(0), mlp(0)
    net[0].input_grad = False
    head[0].input_grad = False
    out = [_step_case(f"lenet5 train step, first conv input_grad=False (B={BATCH})", net, _torch_lenet5(torch), x_img,
                      y, _lenet_flops(BATCH) - 2 * 2 * BATCH * 28 * 28 * 6 * 25)]
    out[0].goal = "ratio <= 1.0"
    if not quick:
        out.append(_step_case(f"mlp 784-500-10 train step, first layer input_grad=False (B={BATCH})", head,
                              _torch_mlp(torch), x_img.reshape(BATCH, 784), y, 2 * 2 * BATCH * 784 * 500
                              + 3 * 2 * BATCH * 500 * 10))
        out[1].goal = "ratio <= 1.0"
    return out


def _pool_cases():
    import torch

    rng = np.random.default_rng(0)
    out = []
    for kind, ours_cls, theirs_cls in (("max", nn.MaxPool2d, torch.nn.MaxPool2d), ("avg", nn.AvgPool2d, torch.nn.AvgPool2d)):
        for shape in ((BATCH, 6, 28, 28), (BATCH, 16, 10, 10)):
            x = rng.standard_normal(shape).astype(np.float32)
            g = rng.standard_normal(shape[:2] + (shape[2] // 2, shape[3] // 2)).astype(np.float32)
            layer, twin = ours_cls(2), theirs_cls(2)
            x_t, g_t = torch.tensor(x, requires_grad=True), torch.from_numpy(g)

            def ours(layer=layer, x=x, g=g):
                layer(x)
                return layer.backward(g)

            def theirs(twin=twin, x_t=x_t, g_t=g_t):
                x_t.grad = None
                twin(x_t).backward(g_t)
                return x_t.grad

            out.append(Case(f"{kind}pool 2x2 fwd+bwd {'x'.join(map(str, shape))}", ours, theirs,
                            bytes=3 * x.nbytes, goal="ratio <= 1.0"))
    return out


def _optimizer_cases():
    import torch

    rng = np.random.default_rng(0)
    init = [rng.standard_normal(s).astype(np.float32) for s in OPT_SHAPES]
    grads = [rng.standard_normal(s).astype(np.float32) for s in OPT_SHAPES]
    n = sum(a.size for a in init)
    out = []
    for name, ours_cls, theirs_cls, kw in (("adam", optim.Adam, torch.optim.Adam, dict(lr=1e-3)),
                                           ("rmsprop", optim.RMSprop, torch.optim.RMSprop, dict(lr=1e-3)),
                                           ("sgd momentum", optim.SGD, torch.optim.SGD, dict(lr=1e-3, momentum=0.9))):
        params = [nn.Parameter(a.copy()) for a in init]
        for p, g in zip(params, grads):
            p.grad = g
        step = ours_cls(params, **kw).step
        for foreach in (False, True):
            t_params = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in init]
            for p, g in zip(t_params, grads):
                p.grad = torch.from_numpy(g)
            t_step = theirs_cls(t_params, foreach=foreach, **kw).step
            out.append(Case(f"{name} step, {n / 1e6:.2f} M parameters", step, t_step,
                            baseline_name=f"torch foreach={foreach}", bytes=4 * 4 * n,
                            goal="ratio <= 1.0" if not foreach else "(reported)"))
    return out


def speed_cases(quick: bool = False) -> list[Case]:
    """The cases of issue #15 (see the comment above)."""
    out = _first_layer_cases(quick) + _pool_cases() + _optimizer_cases()
    if not quick:
        out += _conv_case(np.random.default_rng(0), [(16, 32, 3, 1, 28, 32)], goal="ratio <= 1.2")
    return out
