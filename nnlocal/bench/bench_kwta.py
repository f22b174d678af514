"""kWTA: the layer's forward+backward and one MLP-kWTA training epoch, nnlocal vs torch twins.

Both sides run on one thread (``pin_one_thread``) in float32, on the same data and weights.

* ``kwta_hard`` / ``kwta_soft``: forward + backward of the kWTA layer on a (256, 512) batch (the
  README's embedding), the torch twin written from the original (``topk(k+1)`` threshold; the
  soft twin's gradient flows through the threshold by autograd, as in the original).
* ``mlp_kwta_epoch``: one training epoch of the README recipe: 784-64-512 MLP, soft kWTA (0.05,
  hardness 2, sigmoid), triplet loss on M = U·B random triples, Adam(1e-3, wd 1e-5), batch 256,
  on MNIST-shaped random data with 10 labels (the timing does not depend on the pixels).

Goal: ratio = nnlocal / torch <= 1.0.
"""
from __future__ import annotations

import math

import numpy as np

from nnlocal.bench.common import Case
from nnlocal import optim
from nnlocal.methods import kwta

B, D, SPARSITY, HARDNESS = 256, 512, 0.05, 2.0


def _torch_kwta(torch, x, soft: bool):
    k = math.ceil(SPARSITY * x.shape[1])
    theta = torch.topk(x, k + 1, dim=1).values[:, -2:].mean(dim=1, keepdim=True)
    if soft:
        return torch.sigmoid(HARDNESS * (x - theta))
    mask = (x > theta).to(x.dtype)
    return x + (mask - x).detach()          # straight-through


def _layer_cases(rng):
    import torch

    x = rng.standard_normal((B, D)).astype(np.float32)
    g = rng.standard_normal((B, D)).astype(np.float32)
    x_t = torch.tensor(x, requires_grad=True)
    g_t = torch.tensor(g)
    cases = []
    for name, layer, soft in [("kwta_hard", kwta.KWinnersTakeAll(SPARSITY), False),
                              ("kwta_soft", kwta.KWinnersTakeAllSoft(SPARSITY, HARDNESS, hard=False), True)]:
        def ours(layer=layer):
            layer(x)
            return layer.backward(g)

        def theirs(soft=soft):
            x_t.grad = None
            _torch_kwta(torch, x_t, soft).backward(g_t)
            return x_t.grad

        cases.append(Case(f"{name} fwd+bwd ({B}x{D}, s={SPARSITY})", ours, theirs, bytes=3 * x.nbytes,
                          goal="ratio <= 1.0"))
    return cases


def _epoch_case(rng, n_batches: int):
    import torch

    n = n_batches * B
    x = rng.random((n, 784), dtype=np.float32)
    y = rng.integers(0, 10, size=n)

    net = kwta.mlp_kwta(784, 64, D, SPARSITY, HARDNESS, hard=False, rng=0)
    opt = optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-5)
    sampler = kwta.TripletLossSampler(kwta.TripletCosineLoss(0.5), rng=0)
    order_rng = np.random.default_rng(0)

    def ours():
        net.train()
        for idx in np.split(order_rng.permutation(n), n_batches):
            emb = net(x[idx])
            if sampler(emb, y[idx]) is None:
                continue
            net.zero_grad()
            net.backward(sampler.backward())
            opt.step()

    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(784, 64), torch.nn.ReLU(), torch.nn.Linear(64, D))
    t_opt = torch.optim.Adam(mlp.parameters(), lr=1e-3, weight_decay=1e-5)
    x_t, y_t = torch.from_numpy(x), torch.from_numpy(y)
    cos = torch.nn.functional.cosine_similarity

    def theirs():
        mlp.train()
        for idx in torch.randperm(n).split(B):
            emb = _torch_kwta(torch, mlp(x_t[idx]), soft=True)
            labels = y_t[idx]
            m = len(labels.unique()) * len(labels)
            a, p, neg = torch.randint(len(labels), size=(3, m))
            keep = (a != p) & (labels[a] == labels[p]) & (labels[a] != labels[neg])
            a, p, neg = a[keep], p[keep], neg[keep]
            loss = torch.relu(cos(emb[a], emb[neg]) - cos(emb[a], emb[p]) + 0.5).mean()
            t_opt.zero_grad()
            loss.backward()
            t_opt.step()

    flops = n * 6 * (784 * 64 + 64 * D)   # the two Linear layers, forward + backward
    return Case(f"mlp_kwta_epoch ({n} samples, batch {B})", ours, theirs, flops=flops, goal="ratio <= 1.0")


def cases(quick: bool = False) -> list[Case]:
    rng = np.random.default_rng(0)
    return _layer_cases(rng) + [_epoch_case(rng, n_batches=8 if quick else 60)]
