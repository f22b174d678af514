"""PAN networks: the notebooks' LeNet-5 baseline and its PAN version "Tron", and helpers over PAN layers.

:func:`lenet5` and :func:`tron` build them for MNIST-like 1×28×28, CIFAR-10 3×32×32 and, as an
nnlocal addition, the 8×8 scikit-learn digits. In Tron the two hidden fully connected layers are
:class:`~.layer.PerceptronActivation` layers with **no ReLU between them**, as in the original.
"""
from __future__ import annotations

import contextlib
import numbers

import numpy as np

from ..._rng import get_rng
from ...nn import Conv2d, Flatten, Linear, LogSoftmax, MaxPool2d, ReLU
from ...nn.module import Module, Sequential
from .layer import PerceptronActivation, _check_choice

__all__ = ["ConvNet", "lenet5", "tron", "conv_geometry", "pan_layers", "using_gate"]


class ConvNet(Sequential):
    """A feed-forward net whose named children run in registration order (a Sequential with names).

    Built by :func:`lenet5` and :func:`tron`; parameter names follow the notebooks
    (``conv1.weight``, ``fc1.bias``, ``tron1.teacher_weight``, ...).
    """

    def __init__(self, **layers: Module):
        super().__init__(dict(layers))

    def gate_stats(self) -> dict:
        """``{layer name: PerceptronActivation.gate_stats()}`` for every PAN layer."""
        return {name: m.gate_stats() for name, m in pan_layers(self)}


def pan_layers(model: Module):
    """``[(name, layer)]`` of every :class:`PerceptronActivation` in ``model``."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, PerceptronActivation)]


@contextlib.contextmanager
def using_gate(model: Module, gate: str):
    """Temporarily switch every PAN layer of ``model`` to ``gate`` (restored on exit).

    ``with using_gate(net, "sample"): ...`` evaluates each sample with its own gate, which is
    exactly the faithful batch gate at evaluation batch size 1 (B = 1 makes TW·Σx + B·Tb equal
    TW·x + Tb), computed a whole batch at a time.
    """
    layers = [m for _, m in pan_layers(model)]
    old = [m.gate for m in layers]
    try:
        for m in layers:
            m.gate = gate
        yield model
    finally:
        for m, g in zip(layers, old):
            m.gate = g


def conv_geometry(image_size: int) -> tuple[int, int]:
    """``(conv2 padding, flatten size / 16)`` of the LeNet-5 trunk for square images.

    conv1: 5×5, padding 2 (size kept); 2×2 max-pool; conv2: 5×5 with padding 0 as in the original
    (28 → 400 = 16·5·5 features, 32 → 576 = 16·6·6) for ``image_size >= 16``, and padding 2 below
    that so small images still fit (8×8 digits: 8 → 4 → 4 → 2, i.e. 64 = 16·2·2 features);
    2×2 max-pool.
    """
    if not isinstance(image_size, numbers.Integral) or image_size < 4:
        raise ValueError(f"lenet5/tron: image_size must be an integer >= 4, got {image_size!r}")
    pad2 = 0 if image_size >= 16 else 2
    side = ((image_size // 2) + 2 * pad2 - 4) // 2
    return pad2, side * side


def _trunk(in_channels: int, image_size: int, rng, dtype):
    pad2, area = conv_geometry(image_size)
    layers = dict(conv1=Conv2d(in_channels, 6, 5, padding=2, rng=rng), relu1=ReLU(), pool1=MaxPool2d(2),
                  conv2=Conv2d(6, 16, 5, padding=pad2, rng=rng), relu2=ReLU(), pool2=MaxPool2d(2),
                  flatten=Flatten())
    return layers, 16 * area


def lenet5(in_channels: int = 1, image_size: int = 28, num_classes: int = 10, fc_init: str = "torch",
           rng=None, dtype=np.float32) -> ConvNet:
    """The notebooks' LeNet-5 baseline.

    conv1 (in→6, 5×5, pad 2) → ReLU → maxpool 2 → conv2 (6→16, 5×5) → ReLU → maxpool 2 → flatten
    → fc1 (→120) → ReLU → fc2 (120→84) → ReLU → fc3 (84→classes) → LogSoftmax.

    ``fc_init="torch"`` (the original): PyTorch's default init everywhere. ``fc_init="normal"``
    (ablation): fc1 and fc2 weights and biases drawn from N(0, 1), as the PAN layers'
    students are in the notebooks.
    """
    _check_choice("lenet5", "fc_init", fc_init, ("torch", "normal"))
    rng = get_rng(rng)
    layers, flat = _trunk(in_channels, image_size, rng, dtype)
    fc1, fc2 = Linear(flat, 120, rng=rng), Linear(120, 84, rng=rng)
    if fc_init == "normal":
        for fc in (fc1, fc2):
            fc.weight.data = rng.standard_normal(fc.weight.shape, dtype=np.float32)
            fc.bias.data = rng.standard_normal(fc.bias.shape, dtype=np.float32)
    layers.update(fc1=fc1, relu3=ReLU(), fc2=fc2, relu4=ReLU(), fc3=Linear(84, num_classes, rng=rng),
                  log_softmax=LogSoftmax(dim=1))
    return _as_dtype(ConvNet(**layers), dtype)


def tron(in_channels: int = 1, image_size: int = 28, num_classes: int = 10, threshold: float = 0.0,
         gate: str = "batch", teacher: str = "frozen", init: str = "notebook", rng=None, dtype=np.float32,
         device: str = "cpu") -> ConvNet:
    """The notebooks' PAN network "Tron": LeNet-5 with fc1/fc2 replaced by PAN layers.

    conv1 → ReLU → maxpool → conv2 → ReLU → maxpool → flatten → tron1 (PAN →120) → tron2 (PAN 120→84)
    → fc3 (Linear 84→classes) → LogSoftmax. **No ReLU between tron1, tron2 and fc3**, as in the
    original: the gates are the only nonlinearity after the convolutions. The PAN options are
    passed to both PAN layers.
    """
    rng = get_rng(rng)
    layers, flat = _trunk(in_channels, image_size, rng, dtype)
    kw = dict(threshold=threshold, gate=gate, teacher=teacher, init=init, rng=rng, dtype=dtype, device=device)
    layers.update(tron1=PerceptronActivation(flat, 120, **kw), tron2=PerceptronActivation(120, 84, **kw),
                  fc3=Linear(84, num_classes, rng=rng), log_softmax=LogSoftmax(dim=1))
    return _as_dtype(ConvNet(**layers), dtype)


def _as_dtype(model: Module, dtype) -> Module:
    # Module.to copies every parameter; skip it when nothing changes (TW alone is 77 MB)
    if any(p.data.dtype != np.dtype(dtype) for p in model.parameters()):
        model.to(dtype)
    return model
