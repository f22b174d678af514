"""Image-classification trials: ``eqprop.classify``, ``arp.mlp``, ``kwta.sdr``, ``pan.lenet5_vs_tron``.

The recipes are the tour's (``nnlocal tour``), which follow the originals, with every setting a
parameter. The seed drives one :class:`numpy.random.Generator` for the initial weights and the
batch order (and the triplet sampling), so a trial is deterministic given its params and seed.
"""
from __future__ import annotations

import numpy as np

from ..registry import register
from ._common import accuracy_pct, backprop_step, load_data, train


@register("eqprop.classify", primary="test_error_pct", choices={"cost": ("paper", "code")})
def classify(seed: int, *, dataset: str = "digits", epochs: int = 2, hidden=(500,), batch_size: int = 20,
             n_free: int = 20, n_nudged: int = 4, eps: float = 0.5, beta: float = 0.5, lrs=(0.1, 0.05),
             persistent: bool = True, random_sign: bool = True, cost: str = "paper", eval_steps: int = 50,
             max_train: int = 0) -> dict:
    """Symmetric equilibrium propagation (Scellier & Bengio 2017, net1 recipe): test error.

    A layered net ``inputs-hidden-...-10`` trained with EP (``n_free`` free and ``n_nudged`` nudged
    steps of size ``eps``, nudge ``beta`` with a random sign, one learning rate per weight matrix in
    ``lrs``, persistent particles); tested by ``eval_steps`` free steps from zero.
    Metrics: ``test_error_pct`` (last epoch), ``best_test_error_pct``, ``train_error_pct``.
    """
    from ...methods import eqprop

    x_tr, y_tr, x_te, y_te = load_data(dataset, max_train, flatten=True)
    net = eqprop.EPNet([x_tr.shape[1], *hidden, int(y_tr.max()) + 1], rng=seed)
    hist = net.fit(x_tr, y_tr, epochs=epochs, batch_size=batch_size, n_free=n_free, n_nudged=n_nudged, eps=eps,
                   beta=beta, lrs=list(lrs), persistent=persistent, random_sign=random_sign, cost=cost,
                   X_test=x_te, y_test=y_te, eval_steps=eval_steps)
    return {"test_error_pct": float(hist["test_error"][-1]), "best_test_error_pct": float(min(hist["test_error"])),
            "train_error_pct": float(hist["train_error"][-1])}


@register("arp.mlp", primary="test_acc_pct",
          choices={"model": ("arp", "classic", "arp_off"), "activation": ("sigmoid", "tanh", "atan")})
def mlp(seed: int, *, dataset: str = "digits", model: str = "arp", epochs: int = 10,
        hidden=(50, 50, 40, 40, 30), activation: str = "sigmoid", L: float | None = None, lr: float = 1e-3,
        batch_size: int = 128, max_train: int = 0) -> dict:
    """The arpkeras MLP with AutoRotDense (``arp``), Dense (``classic``) or AutoRot switched off: accuracy.

    Sigmoid (or ``activation``) hidden layers of widths ``hidden``, a plain output layer, Keras'
    Glorot-uniform init, RMSprop(lr, rho 0.9, eps 1e-7), cross-entropy. ARP limits come from the
    data range and the activation (``arp.limits_for``); ``L`` None takes the README's value.
    Metrics: ``test_acc_pct``, ``train_loss`` (mean over the last epoch).
    """
    from ... import nn, optim
    from ...data import DataLoader
    from ...methods import arp

    x_tr, y_tr, x_te, y_te = load_data(dataset, max_train, flatten=True)
    lim = arp.limits_for(activation, float(min(x_tr.min(), x_te.min())), float(max(x_tr.max(), x_te.max())))
    L = lim.L if L is None else L
    rng = np.random.default_rng(seed)
    layers, width = [], x_tr.shape[1]
    for out in hidden:
        if model == "classic":
            layers += [nn.Linear(width, out, rng=rng), nn.get_activation(activation)]
        else:
            layers.append(arp.AutoRotDense(width, out, L=L, xmin_lim=lim.xmin_lim, xmax_lim=lim.xmax_lim,
                                           activation=activation, autorot=(model == "arp"), rng=rng))
        width = out
    net = arp.keras_init_(nn.Sequential(*layers, nn.Linear(width, int(y_tr.max()) + 1, rng=rng)), rng=rng)
    opt = optim.RMSprop(net.parameters(), lr=lr, alpha=0.9, eps=1e-7)
    loss = train(net, opt, DataLoader(x_tr, y_tr, batch_size, shuffle=True, rng=rng), epochs,
                 backprop_step(net, nn.CrossEntropyLoss()))
    return {"test_acc_pct": accuracy_pct(net, x_te, y_te), "train_loss": loss}


@register("kwta.sdr", primary="test_acc_pct", choices={"model": ("kwta", "softmax")})
def sdr(seed: int, *, dataset: str = "digits", model: str = "kwta", epochs: int = 10, hidden: int = 64,
        embedding: int = 512, sparsity: float = 0.05, hardness: float = 2.0, hard: bool = False,
        margin: float = 0.5, batch_size: int = 64, lr: float = 1e-3, weight_decay: float = 1e-5,
        max_train: int = 0) -> dict:
    """kWTA binary SDRs trained with a triplet cosine loss (``kwta``), or the softmax twin: accuracy.

    MLP inputs-``hidden``-``embedding`` on standardised inputs; ``kwta``: soft kWTA (``sparsity``,
    ``hardness``), random triples per batch, nearest-binary-centroid accuracy; ``softmax``: ReLU
    instead of the kWTA, cross-entropy, argmax accuracy. Adam(lr, ``weight_decay``).
    Metrics: ``test_acc_pct``, ``train_loss``; for ``kwta`` also ``active_bits_min`` and
    ``active_bits_max`` of the binary test codes.
    """
    from ... import nn, optim
    from ...data import DataLoader, normalize
    from ...methods import kwta

    x_tr, y_tr, x_te, y_te = load_data(dataset, max_train, flatten=True)
    mean, std = float(x_tr.mean()), float(x_tr.std())
    x_tr, x_te = normalize(x_tr, mean, std), normalize(x_te, mean, std)
    rng = np.random.default_rng(seed)
    if model == "kwta":
        net = kwta.mlp_kwta(x_tr.shape[1], hidden, embedding, sparsity, hardness=hardness, hard=hard, rng=rng)
        criterion = kwta.TripletLossSampler(kwta.TripletCosineLoss(margin), rng=rng)
    else:
        net = kwta.mlp_softmax(x_tr.shape[1], hidden, embedding, rng=rng)
        criterion = nn.CrossEntropyLoss()
    opt = optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    loss = train(net, opt, DataLoader(x_tr, y_tr, batch_size, shuffle=True, rng=rng), epochs,
                 backprop_step(net, criterion))
    if model != "kwta":
        return {"test_acc_pct": accuracy_pct(net, x_te, y_te), "train_loss": loss}
    net.eval()
    codes = net(x_te)
    active = codes.sum(axis=1)
    return {"test_acc_pct": 100.0 * kwta.centroid_accuracy(net(x_tr), y_tr, codes, y_te, sparsity),
            "train_loss": loss, "active_bits_min": int(active.min()), "active_bits_max": int(active.max())}


@register("pan.lenet5_vs_tron", primary="tron_minus_lenet5",
          choices={"init": ("notebook", "readme"), "gate": ("batch", "sample"), "fc_init": ("torch", "normal")})
def lenet5_vs_tron(seed: int, *, dataset: str = "digits", epochs: int = 3, lr: float = 0.003, batch_size: int = 64,
                   init: str = "notebook", gate: str = "batch", threshold: float = 0.0, fc_init: str = "torch",
                   max_train: int = 0) -> dict:
    """LeNet-5 and Tron (PAN) from the same seed (identical convolutions): both accuracies and the gap.

    The notebook recipe: inputs scaled to [-1, 1], SGD(lr) without momentum or shuffling, batch
    ``batch_size``, NLL loss, lr halved every 10 epochs; evaluation in batches of ``batch_size``
    (the batch gate makes Tron's output depend on its batch). ``fc_init="normal"`` is the ablation
    that gives LeNet-5's fc layers PAN's N(0, 1) init.
    Metrics: ``tron_acc_pct``, ``lenet5_acc_pct``, ``tron_minus_lenet5`` (points), ``tron_wins``,
    and the epoch-1 accuracies ``tron_epoch1_acc_pct``, ``lenet5_epoch1_acc_pct``.
    """
    from ... import nn, optim
    from ...data import DataLoader, normalize
    from ...methods import pan

    if epochs < 1:
        raise ValueError(f"pan.lenet5_vs_tron: epochs must be at least 1, got {epochs}")
    x_tr, y_tr, x_te, y_te = load_data(dataset, max_train)
    x_tr, x_te = normalize(x_tr, 0.5, 0.5), normalize(x_te, 0.5, 0.5)
    channels, size, classes = x_tr.shape[1], x_tr.shape[2], int(y_tr.max()) + 1
    models = {"lenet5": pan.lenet5(channels, size, classes, fc_init=fc_init, rng=seed),
              "tron": pan.tron(channels, size, classes, threshold=threshold, gate=gate, init=init, rng=seed)}
    metrics = {}
    for name, net in models.items():
        opt = optim.SGD(net.parameters(), lr=lr)
        sched = optim.StepLR(opt, step_size=10, gamma=0.5)
        step = backprop_step(net, nn.NLLLoss())
        loader = DataLoader(x_tr, y_tr, batch_size, shuffle=False)
        train(net, opt, loader, 1, step, sched)
        metrics[f"{name}_epoch1_acc_pct"] = accuracy_pct(net, x_te, y_te, batch_size)
        train(net, opt, loader, epochs - 1, step, sched)
        metrics[f"{name}_acc_pct"] = accuracy_pct(net, x_te, y_te, batch_size)
    gap = metrics["tron_acc_pct"] - metrics["lenet5_acc_pct"]
    return {"tron_acc_pct": metrics["tron_acc_pct"], "lenet5_acc_pct": metrics["lenet5_acc_pct"],
            "tron_minus_lenet5": gap, "tron_wins": bool(gap > 0),
            "tron_epoch1_acc_pct": metrics["tron_epoch1_acc_pct"],
            "lenet5_epoch1_acc_pct": metrics["lenet5_epoch1_acc_pct"]}
