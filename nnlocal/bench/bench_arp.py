"""ARP: one training epoch of the arpkeras MLP, and AutoRot layers' forward+backward, nnlocal vs torch twins.

Both sides run on one thread (``pin_one_thread``) in float32, on the same data and weights. The torch
twins are the ARP formula written with torch ops (autograd does the backward, gradient through ρ
included), as in tests/test_arp.py.

* ``arp_mlp_epoch``: the example recipe: 784-50-50-40-40-30-10, AutoRotDense (sigmoid, L = 4,
  xQ = 2) hidden layers, plain output layer, cross-entropy, RMSprop(1e-3, 0.9, 1e-7), batch 128,
  on Fashion-MNIST-shaped random data (the timing does not depend on the pixels).
* ``autorot_conv2d``: AutoRotConv2d(16 -> 32, 3x3, padding='same', sigmoid) forward + backward on a
  (32, 16, 28, 28) batch; q is a second convolution of a single constant image, and its
  'same'-padding borders make ρ vary spatially.
* ``autorot_lstm``: AutoRotLSTM(28 -> 64) forward + backward on (128, 28, 28) (row-by-row images),
  the twin a per-step torch loop (torch's fused LSTM kernel cannot scale the gates).

Goal: ratio = nnlocal / torch <= 1.0.
"""
from __future__ import annotations

import numpy as np

from nnlocal.bench.common import Case
from nnlocal import nn, optim
from nnlocal.methods import arp

HIDDEN = (50, 50, 40, 40, 30)
L, XQ, EPS = 4.0, 2.0, 1e-5


def _torch_arp_dense(torch, x, w, b):
    q = XQ * w.sum(1) + b
    return torch.sigmoid(L / (q.abs() + EPS) * (x @ w.T + b))


def _epoch_case(rng, n_batches: int, B: int = 128):
    import torch

    n = n_batches * B
    x = rng.random((n, 784), dtype=np.float32)
    y = rng.integers(0, 10, size=n)
    layers, prev = [], 784
    for width in HIDDEN:
        layers.append(arp.AutoRotDense(prev, width, L=L, xmin_lim=0.0, xmax_lim=1.0, activation="sigmoid", rng=0))
        prev = width
    layers.append(nn.Linear(prev, 10, rng=0))
    net = arp.keras_init_(nn.Sequential(*layers), rng=0)
    params_t = [torch.tensor(p.data.copy(), requires_grad=True) for p in net.parameters()]
    opt = optim.RMSprop(net.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    order = np.random.default_rng(0)

    def ours():
        for idx in np.split(order.permutation(n), n_batches):
            logits = net(x[idx])
            loss_fn(logits, y[idx])
            net.zero_grad()
            net.backward(loss_fn.backward())
            opt.step()

    t_opt = torch.optim.RMSprop(params_t, lr=1e-3, alpha=0.9, eps=1e-7)
    x_t, y_t = torch.from_numpy(x), torch.from_numpy(y)

    def theirs():
        for idx in torch.randperm(n).split(B):
            h = x_t[idx]
            for i in range(len(HIDDEN)):
                h = _torch_arp_dense(torch, h, params_t[2 * i], params_t[2 * i + 1])
            logits = h @ params_t[-2].T + params_t[-1]
            loss = torch.nn.functional.cross_entropy(logits, y_t[idx])
            t_opt.zero_grad()
            loss.backward()
            t_opt.step()

    sizes = (784,) + HIDDEN + (10,)
    flops = n * 6 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return Case(f"arp_mlp_epoch ({n} samples, batch {B})", ours, theirs, flops=flops, goal="ratio <= 1.0")


def _conv_case(rng, B=32, C=16, O=32, S=28):
    import torch

    F = torch.nn.functional
    layer = arp.AutoRotConv2d(C, O, 3, padding="same", activation="sigmoid", rng=0)
    x = rng.random((B, C, S, S), dtype=np.float32)
    g = rng.standard_normal((B, O, S, S)).astype(np.float32)
    w_t = torch.tensor(layer.weight.data.copy(), requires_grad=True)
    b_t = torch.tensor(layer.bias.data.copy(), requires_grad=True)
    x_t, g_t = torch.tensor(x, requires_grad=True), torch.from_numpy(g)
    const = torch.full((1, C, S, S), XQ)

    def ours():
        layer.zero_grad()
        layer(x)
        return layer.backward(g)

    def theirs():
        w_t.grad = b_t.grad = x_t.grad = None
        q = F.conv2d(const, w_t, b_t, padding="same")
        y = torch.sigmoid(L / (q.abs() + EPS) * F.conv2d(x_t, w_t, b_t, padding="same"))
        y.backward(g_t)
        return x_t.grad

    flops = 3 * 2 * (B + 1) * O * C * 9 * S * S
    return Case(f"autorot_conv2d fwd+bwd ({B}x{C}x{S}x{S} -> {O}, 3x3 same)", ours, theirs, flops=flops,
                goal="ratio <= 1.0")


def _lstm_case(rng, B=128, T=28, I=28, H=64):
    import torch

    layer = arp.AutoRotLSTM(I, H, rng=0)
    x = rng.random((B, T, I), dtype=np.float32)
    g = rng.standard_normal((B, T, H)).astype(np.float32)
    P = {n: torch.tensor(p.data.copy(), requires_grad=True) for n, p in layer.named_parameters()}
    L_rows = torch.tensor(np.repeat(layer.L, H), dtype=torch.float32)
    x_t, g_t = torch.tensor(x, requires_grad=True), torch.from_numpy(g)

    def ours():
        layer.zero_grad()
        layer(x)
        return layer.backward(g)

    def theirs():
        for p in P.values():
            p.grad = None
        x_t.grad = None
        Wih, Whh, bih, bhh = P["weight_ih_l0"], P["weight_hh_l0"], P["bias_ih_l0"], P["bias_hh_l0"]
        rho = L_rows / ((3.0 * (Wih.sum(1) + Whh.sum(1)) + bih + bhh).abs() + EPS)
        xp = x_t @ Wih.T + bih + bhh
        h = torch.zeros(B, H)
        c = torch.zeros(B, H)
        outs = []
        for t in range(T):
            i, f, gg, o = (rho * (xp[:, t] + h @ Whh.T)).chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(gg)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        torch.stack(outs, 1).backward(g_t)
        return x_t.grad

    flops = 3 * 2 * B * T * 4 * H * (I + H)
    return Case(f"autorot_lstm fwd+bwd ({B}x{T}x{I} -> {H})", ours, theirs, flops=flops, goal="ratio <= 1.0")


def cases(quick: bool = False) -> list[Case]:
    rng = np.random.default_rng(0)
    return [_epoch_case(rng, n_batches=8 if quick else 60), _conv_case(rng), _lstm_case(rng)]
