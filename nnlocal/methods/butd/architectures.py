"""The original's three architectures as BU-TD cores: the FC net, the "simple net", ResNet-18 (no normalisation)."""
from __future__ import annotations

import numpy as np

from ..._rng import get_rng
from .blocks import BUTDBasicBlock, BUTDSequential, sample_shape
from .layers import BUTDConv2d, BUTDFlatten, BUTDLinear, depthwise_pool, positive_int
from .models import BUTDNet

__all__ = ["fc_core", "simple_core", "resnet18_core", "fc_net"]


def fc_core(in_shape=(1, 28, 28), hidden: int = 500, depth: int = 1, top_down: str = "shared", rng=None,
            dtype=np.float32, device: str = "cpu") -> BUTDSequential:
    """The original's ``fc net`` core: Flatten -> ``depth`` × BUTDLinear(-> hidden) (ReLU in the BU pass)."""
    hidden = positive_int("fc_core", "hidden", hidden)
    depth = positive_int("fc_core", "depth", depth)
    rng = get_rng(rng)
    in_shape = sample_shape(in_shape)
    sizes = [int(np.prod(in_shape))] + [hidden] * depth
    kw = dict(top_down=top_down, rng=rng, dtype=dtype, device=device)
    layers = [BUTDFlatten(device=device)] + [BUTDLinear(a, b, **kw) for a, b in zip(sizes[:-1], sizes[1:])]
    return BUTDSequential(*layers, device=device).infer_shapes(in_shape)


def fc_net(in_shape=(1, 28, 28), n_classes: int = 10, hidden: int = 500, depth: int = 1,
           top_down: str = "shared", rng=None, dtype=np.float32, device: str = "cpu") -> BUTDNet:
    """``BUTDNet(fc_core(...), n_classes)``: the FC-500 net of the original's MNIST configs."""
    rng = get_rng(rng)
    core = fc_core(in_shape, hidden, depth, top_down, rng, dtype, device)
    return BUTDNet(core, n_classes, top_down=top_down, rng=rng, dtype=dtype, device=device)


def simple_core(in_shape=(1, 28, 28), channels: int = 32, out_features: int = 50, kernel_size: int = 5,
                padding: int = 0, pools=((2, 2), (3, 2)), top_down: str = "shared", rng=None,
                dtype=np.float32, device: str = "cpu") -> BUTDSequential:
    """The original's ``simple net`` core (Multi-MNIST): conv k×k (C_in -> 32) -> depthwise 2×2 stride 2
    -> conv k×k (32 -> 32) -> depthwise 3×3 stride 2 -> flatten -> Linear(-> 50).

    ``pools`` gives the two depthwise (kernel, stride) pairs; ``kernel_size`` / ``padding`` adapt it
    to small images (the 8×8 digits use ``kernel_size=3, padding=1``).
    """
    rng = get_rng(rng)
    in_shape = sample_shape(in_shape)
    kw = dict(top_down=top_down, rng=rng, dtype=dtype, device=device)
    (k1, s1), (k2, s2) = pools
    convs = [BUTDConv2d(in_shape[0], channels, kernel_size, padding=padding, **kw),
             depthwise_pool(channels, k1, s1, **kw),
             BUTDConv2d(channels, channels, kernel_size, padding=padding, **kw),
             depthwise_pool(channels, k2, s2, **kw),
             BUTDFlatten(device=device)]
    flat = BUTDSequential(*convs, device=device).infer_shapes(in_shape).out_features
    return BUTDSequential(*convs, BUTDLinear(flat, out_features, **kw), device=device).infer_shapes(in_shape)


def resnet18_core(in_shape=(3, 32, 32), widths=(64, 128, 256, 512), blocks=(2, 2, 2, 2), bias: bool = False,
                  top_down: str = "shared", rng=None, dtype=np.float32, device: str = "cpu") -> BUTDSequential:
    """ResNet-18 BU-TD without normalisation (the original's ``no_norm`` ResNet18): conv 3×3 stride 1 stem,
    four stages of BasicBlocks (the first of stages 2-4 with stride 2), no pooling, flatten.

    ``widths`` / ``blocks`` shrink it (the tests use a two-stage, one-block version).
    """
    rng = get_rng(rng)
    in_shape = sample_shape(in_shape)
    kw = dict(top_down=top_down, rng=rng, dtype=dtype, device=device)
    layers = [BUTDConv2d(in_shape[0], widths[0], 3, padding=1, bias=bias, **kw)]
    c = widths[0]
    for stage, (w, n) in enumerate(zip(widths, blocks)):
        for i in range(n):
            layers.append(BUTDBasicBlock(c, w, stride=2 if (stage > 0 and i == 0) else 1, bias=bias, **kw))
            c = w
    layers.append(BUTDFlatten(device=device))
    return BUTDSequential(*layers, device=device).infer_shapes(in_shape)
