"""BU-TD trials: ``butd.counter_hebb`` and ``butd.multitask`` (Abel & Ullman's bottom-up/top-down nets)."""
from __future__ import annotations

import functools

import numpy as np

from ..registry import register
from ._common import accuracy_pct, load_data, train

TASKS = ("left", "right")


def _butd_step(net, learning: str, forward):
    """``step`` for :func:`train`: logits and targets from ``forward(xb, yb)``, then the output
    gradient through Counter-Hebb (``ch``: the error top-down pass and local updates) or backprop."""
    from ...methods import butd

    def step(xb, yb):
        logits, target = forward(xb, yb)
        loss, grad = butd.loss_and_grad("cross_entropy", logits, target)
        if learning == "ch":
            butd.counter_hebb_(net, grad)
        else:
            net.backward(grad)
        return loss

    return step


@register("butd.counter_hebb", primary="test_acc_pct",
          choices={"learning": ("ch", "bp"), "top_down": ("shared", "separate", "symmetric", "fa")})
def counter_hebb(seed: int, *, dataset: str = "digits", learning: str = "ch", top_down: str = "shared",
                 hidden: int = 128, epochs: int = 2, lr: float = 1e-3, gamma: float = 0.95, batch_size: int = 20,
                 max_train: int = 0) -> dict:
    """The BU-TD FC net learning by Counter-Hebb (``ch``) or backprop (``bp``): test accuracy.

    Flatten -> BUTDLinear(-> ``hidden``) + ReLU -> linear head, inputs standardised with the MNIST
    constants, Adam(lr) with lr x ``gamma`` per epoch. ``top_down``: shared top-down weights (CH
    then equals backprop exactly), ``separate`` (learnt with the same increment), ``symmetric``
    (separate, started at the transpose) or ``fa`` (frozen random: feedback alignment).
    Metrics: ``test_acc_pct``, ``train_loss``.
    """
    from ... import optim
    from ...data import MNIST_MEAN, MNIST_STD, DataLoader, normalize
    from ...methods import butd

    x_tr, y_tr, x_te, y_te = load_data(dataset, max_train)
    x_tr, x_te = normalize(x_tr, MNIST_MEAN, MNIST_STD), normalize(x_te, MNIST_MEAN, MNIST_STD)
    rng = np.random.default_rng(seed)
    net = butd.fc_net(x_tr.shape[1:], int(y_tr.max()) + 1, hidden=hidden, top_down=top_down, rng=rng)
    if top_down == "symmetric":
        for m in net.modules():
            if getattr(m, "back_weight", None) is not None:
                m.back_weight.data[...] = m.weight.data.T
    opt = optim.Adam(net.parameters(), lr=lr)
    loss = train(net, opt, DataLoader(x_tr, y_tr, batch_size, shuffle=True, rng=rng), epochs,
                 _butd_step(net, learning, lambda xb, yb: (net(xb), yb)), optim.ExponentialLR(opt, gamma))
    return {"test_acc_pct": accuracy_pct(net, x_te, y_te), "train_loss": loss}


@functools.lru_cache(maxsize=4)
def _multi(dataset: str, max_train: int, data_seed: int):
    """Two-digit images (``nnlocal.data.multi_mnist``), built once per worker process."""
    from ...data import MNIST_MEAN, MNIST_STD, multi_mnist, normalize

    x_tr, y_tr, x_te, y_te = load_data(dataset, max_train)
    rng = np.random.default_rng(data_seed)
    (mx_tr, my_tr), (mx_te, my_te) = multi_mnist(x_tr, y_tr, rng=rng), multi_mnist(x_te, y_te, rng=rng)
    arrays = (normalize(mx_tr, MNIST_MEAN, MNIST_STD), my_tr, normalize(mx_te, MNIST_MEAN, MNIST_STD), my_te)
    for a in arrays:
        a.setflags(write=False)
    return arrays


@register("butd.multitask", primary="mean_acc_pct",
          choices={"model": ("guided", "guided_trained_head", "single"), "learning": ("bp", "ch")})
def multitask(seed: int, *, dataset: str = "digits", model: str = "guided", learning: str = "bp",
              epochs: int = 6, lr: float = 2e-3, gamma: float = 0.95, batch_size: int = 32,
              task_embedding: int = 20, data_seed: int = 0, max_train: int = 0) -> dict:
    """Instruction-guided multi-task BU-TD ("left digit?" / "right digit?") or two single-task nets.

    Multi-``dataset`` images (two overlapping digits, built from ``data_seed`` so every seed sees
    the same data); the "simple net" core (16 channels and 3x3 convolutions on images under 16
    pixels). ``guided``: one TaskBUTDNet told the task, one random task per training image, its
    task head frozen as in the original; ``guided_trained_head``: the straight-through task head
    (an nnlocal extension); ``single``: one BUTDNet per task. Adam(lr), lr x ``gamma`` per epoch;
    ``learning="ch"`` trains by Counter-Hebb. Every task is tested on every test image.
    Metrics: ``left_acc_pct``, ``right_acc_pct``, ``mean_acc_pct``, ``parameters`` (trainable, all nets).
    """
    from ... import optim
    from ...data import DataLoader
    from ...methods import butd

    x_tr, y_tr, x_te, y_te = _multi(dataset, max_train, data_seed)
    rng = np.random.default_rng(seed)
    shape, classes = x_tr.shape[1:], int(y_tr.max()) + 1

    def core():
        if shape[-1] >= 16:
            return butd.simple_core(shape, rng=rng)
        return butd.simple_core(shape, channels=16, kernel_size=3, padding=1, pools=((2, 2), (2, 2)), rng=rng)

    def fit(net, forward):
        opt = optim.Adam(net.parameters(), lr=lr)
        train(net, opt, DataLoader(x_tr, y_tr, batch_size, shuffle=True, rng=rng), epochs,
              _butd_step(net, learning, forward), optim.ExponentialLR(opt, gamma))
        return sum(p.data.size for p in net.parameters() if p.requires_grad)

    acc = {}
    if model == "single":
        params = 0
        for k, task in enumerate(TASKS):
            net = butd.BUTDNet(core(), classes, rng=rng)
            params += fit(net, lambda xb, yb, k=k, net=net: (net(xb), yb[:, k]))
            acc[task] = accuracy_pct(net, x_te, y_te[:, k], 500)
    else:
        net = butd.TaskBUTDNet(core(), classes, n_tasks=len(TASKS), task_embedding=task_embedding,
                               train_task_head=(model == "guided_trained_head"), rng=rng)

        def guided(xb, yb):
            tasks = rng.integers(0, len(TASKS), len(xb))     # one random task per image
            return net(xb, tasks), yb[np.arange(len(xb)), tasks]

        params = fit(net, guided)
        for k, task in enumerate(TASKS):
            acc[task] = accuracy_pct(net, x_te, y_te[:, k], 500, predict=lambda xb, k=k: net(xb, np.full(len(xb), k)))
    return {"left_acc_pct": acc["left"], "right_acc_pct": acc["right"],
            "mean_acc_pct": float(np.mean(list(acc.values()))), "parameters": int(params)}
