"""Convolutions (Conv1d/2d/3d, ConvTranspose1d/2d/3d) and their functional API against torch.

Every layer runs over N_CONFIGS random configurations drawn from a seeded generator (shapes,
strides, paddings incl. "same"/"valid", dilations, groups incl. depthwise, odd sizes), compared in
float64 with :func:`tests.torch_twin.compare_with_torch` (rtol 1e-7): output, dL/dx and every
parameter gradient. A second family of tests puts a layer *before* the layer under test so its
input gradient is really propagated and checked.
"""
from __future__ import annotations

import numpy as np
import pytest

from nnlocal import nn
from nnlocal.kernels.conv import cpu as K
from nnlocal.kernels.conv import reference as R
from nnlocal.nn import functional as F

from .torch_twin import assert_close, compare_fn_with_torch, compare_with_torch

torch = pytest.importorskip("torch")

N_CONFIGS = 12
CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
CONVT = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
TCONV = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}
TCONVT = {1: torch.nn.ConvTranspose1d, 2: torch.nn.ConvTranspose2d, 3: torch.nn.ConvTranspose3d}


# ============================================================================ random configurations
def _groups(r):
    """(in_channels, out_channels, groups): plain, grouped or depthwise (groups = in_channels)."""
    kind = r.integers(4)
    if kind == 0:
        return int(r.integers(1, 4)), int(r.integers(1, 5)), 1
    if kind == 1:
        g = int(r.integers(2, 4))
        return g * int(r.integers(1, 3)), g * int(r.integers(1, 3)), g
    c = int(r.integers(1, 5))  # depthwise, channel multiplier 1..2
    return c, c * int(r.integers(1, 3)), c


def conv_config(n: int, idx: int) -> dict:
    r = np.random.default_rng(1000 * n + idx)
    cin, cout, groups = _groups(r)
    k = tuple(int(v) for v in r.integers(1, 5 if n < 3 else 4, n))
    dil = tuple(int(v) for v in r.integers(1, 3, n))
    mode = r.integers(4)
    if mode == 0:
        padding, stride = "same", 1
    elif mode == 1:
        padding, stride = "valid", tuple(int(v) for v in r.integers(1, 4, n))
    elif mode == 2:
        padding, stride = int(r.integers(0, 3)), int(r.integers(1, 4))
    else:
        padding, stride = tuple(int(v) for v in r.integers(0, 3, n)), tuple(int(v) for v in r.integers(1, 4, n))
    pads = F.resolve_padding(padding, k, F.ntuple(stride, n, "s"), dil)
    lo_size = 3 if n == 3 else 5
    size = tuple(max(1, d * (kk - 1) + 1 - lo - hi) + int(r.integers(0, lo_size + 1))
                 for d, kk, (lo, hi) in zip(dil, k, pads))
    return dict(in_channels=cin, out_channels=cout, kernel_size=k, stride=stride, padding=padding,
                dilation=dil, groups=groups, bias=bool(r.integers(2)), batch=int(r.integers(1, 4)), size=size)


def convt_config(n: int, idx: int) -> dict:
    r = np.random.default_rng(5000 + 1000 * n + idx)
    cin, cout, groups = _groups(r)
    k = tuple(int(v) for v in r.integers(1, 5 if n < 3 else 4, n))
    stride = tuple(int(v) for v in r.integers(1, 4, n))
    dil = tuple(int(v) for v in r.integers(1, 3, n))
    pad = tuple(int(r.integers(0, d * (kk - 1) // 2 + 1)) for kk, d in zip(k, dil))
    outpad = tuple(int(r.integers(0, max(s, d))) for s, d in zip(stride, dil))
    size = tuple(int(v) for v in r.integers(1, 6 if n < 3 else 4, n))
    # keep the output size positive
    size = tuple(max(s_, (2 * p - d * (kk - 1) - o) // st + 2)
                 for s_, p, d, kk, o, st in zip(size, pad, dil, k, outpad, stride))
    return dict(in_channels=cin, out_channels=cout, kernel_size=k, stride=stride, padding=pad,
                output_padding=outpad, dilation=dil, groups=groups, bias=bool(r.integers(2)),
                batch=int(r.integers(1, 4)), size=size)


def _layer_kwargs(cfg):
    return {k: v for k, v in cfg.items() if k not in ("batch", "size")}


def _input(cfg, seed=0):
    return np.random.default_rng(seed).standard_normal((cfg["batch"], cfg["in_channels"]) + cfg["size"])


# ============================================================================ layers vs torch
@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("idx", range(N_CONFIGS))
def test_conv_matches_torch(n, idx):
    cfg = conv_config(n, idx)
    kw = _layer_kwargs(cfg)
    compare_with_torch(CONV[n](**kw, rng=idx), TCONV[n](**kw), _input(cfg, idx))


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("idx", range(N_CONFIGS))
def test_conv_transpose_matches_torch(n, idx):
    cfg = convt_config(n, idx)
    kw = _layer_kwargs(cfg)
    compare_with_torch(CONVT[n](**kw, rng=idx), TCONVT[n](**kw), _input(cfg, idx))


def test_config_generator_covers_the_features():
    """The random configurations really contain every feature the layers claim to support."""
    cfgs = [conv_config(n, i) for n in (1, 2, 3) for i in range(N_CONFIGS)]
    assert any(c["padding"] == "same" for c in cfgs) and any(c["padding"] == "valid" for c in cfgs)
    assert any(c["groups"] == c["in_channels"] > 1 for c in cfgs)             # depthwise
    assert any(1 < c["groups"] < c["in_channels"] for c in cfgs)               # grouped
    assert any(max(F.ntuple(c["stride"], len(c["size"]), "s")) > 1 for c in cfgs)
    assert any(max(c["dilation"]) > 1 for c in cfgs)
    assert any(k % 2 == 0 for c in cfgs for k in c["kernel_size"])             # even kernels ("same": asymmetric)
    assert any(s % 2 == 1 for c in cfgs for s in c["size"])
    tcfgs = [convt_config(n, i) for n in (1, 2, 3) for i in range(N_CONFIGS)]
    assert any(max(c["output_padding"]) > 0 for c in tcfgs)
    assert any(c["groups"] > 1 for c in tcfgs)


# ============================================================================ a layer before the one under test
def test_conv2d_stack_propagates_input_gradient(rng):
    """Sequential(Conv2d, ReLU, Conv2d depthwise, Tanh, Conv2d 'same'): dL/dx passes through every conv."""
    ours = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, rng=1), nn.ReLU(),
                         nn.Conv2d(4, 8, 3, stride=2, groups=4, rng=2), nn.Tanh(),
                         nn.Conv2d(8, 5, (2, 3), padding="same", dilation=(2, 1), rng=3))
    twin = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.Conv2d(4, 8, 3, stride=2, groups=4), torch.nn.Tanh(),
                               torch.nn.Conv2d(8, 5, (2, 3), padding="same", dilation=(2, 1)))
    compare_with_torch(ours, twin, rng.standard_normal((2, 3, 11, 10)))


def test_conv1d_and_conv3d_stacks(rng):
    ours = nn.Sequential(nn.Conv1d(2, 4, 3, rng=1), nn.Tanh(), nn.Conv1d(4, 4, 5, padding=2, groups=2, stride=2, rng=2))
    twin = torch.nn.Sequential(torch.nn.Conv1d(2, 4, 3), torch.nn.Tanh(),
                               torch.nn.Conv1d(4, 4, 5, padding=2, groups=2, stride=2))
    compare_with_torch(ours, twin, rng.standard_normal((3, 2, 17)))
    ours = nn.Sequential(nn.Conv3d(2, 3, 2, rng=1), nn.Tanh(), nn.Conv3d(3, 3, 3, padding="same", groups=3, rng=2))
    twin = torch.nn.Sequential(torch.nn.Conv3d(2, 3, 2), torch.nn.Tanh(),
                               torch.nn.Conv3d(3, 3, 3, padding="same", groups=3))
    compare_with_torch(ours, twin, rng.standard_normal((2, 2, 5, 4, 6)))


def test_conv_transpose_stacks(rng):
    """Encoder-decoder: Conv2d stride 2 then ConvTranspose2d stride 2 (and the 1-d / 3-d versions)."""
    ours = nn.Sequential(nn.Conv2d(3, 6, 3, stride=2, padding=1, rng=1), nn.Tanh(),
                         nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1, groups=2, rng=2))
    twin = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, stride=2, padding=1), torch.nn.Tanh(),
                               torch.nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1, groups=2))
    out = compare_with_torch(ours, twin, rng.standard_normal((2, 3, 8, 7)))
    assert out["y"].shape == (2, 4, 8, 8)
    ours = nn.Sequential(nn.ConvTranspose1d(2, 3, 4, stride=3, rng=1), nn.Tanh(), nn.ConvTranspose1d(3, 2, 2, rng=2))
    twin = torch.nn.Sequential(torch.nn.ConvTranspose1d(2, 3, 4, stride=3), torch.nn.Tanh(),
                               torch.nn.ConvTranspose1d(3, 2, 2))
    compare_with_torch(ours, twin, rng.standard_normal((2, 2, 5)))
    ours = nn.Sequential(nn.Conv3d(2, 2, 2, rng=1), nn.Tanh(),
                         nn.ConvTranspose3d(2, 3, 2, stride=(1, 2, 2), dilation=(2, 1, 1), rng=2))
    twin = torch.nn.Sequential(torch.nn.Conv3d(2, 2, 2), torch.nn.Tanh(),
                               torch.nn.ConvTranspose3d(2, 3, 2, stride=(1, 2, 2), dilation=(2, 1, 1)))
    compare_with_torch(ours, twin, rng.standard_normal((1, 2, 4, 5, 3)))


def test_gradients_accumulate_like_torch(rng):
    """Two backward passes add their weight gradients (``.grad +=``), as autograd does."""
    layer = nn.Conv2d(2, 3, 3, rng=0).to(np.float64)
    x = rng.standard_normal((2, 2, 6, 6))
    gy = rng.standard_normal((2, 3, 4, 4))
    layer(x)
    layer.backward(gy)
    g1 = layer.weight.grad.copy()
    layer(x)
    layer.backward(gy)
    np.testing.assert_allclose(layer.weight.grad, 2 * g1, rtol=1e-12)


# ============================================================================ functional API vs torch.nn.functional
def _t(a, grad=False):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_functional_conv_and_its_gradients(n):
    tf = torch.nn.functional
    conv_t = {1: tf.conv1d, 2: tf.conv2d, 3: tf.conv3d}[n]
    for idx in range(4):
        cfg = conv_config(n, 100 + idx)
        r = np.random.default_rng(idx)
        x = _input(cfg, idx)
        w = r.standard_normal((cfg["out_channels"], cfg["in_channels"] // cfg["groups"]) + cfg["kernel_size"])
        b = r.standard_normal(cfg["out_channels"])
        args = dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"], groups=cfg["groups"])

        def ours(x, w):
            return F.conv(x, w, b, **args), lambda gy: {"x": F.conv_backward_input(x.shape, w, gy, **args),
                                                         "w": F.conv_backward_weight(x, w.shape, gy, **args)}

        out = compare_fn_with_torch({"x": x, "w": w}, lambda x, w: conv_t(x, w, _t(b), **args), ours,
                                    output_names=["conv"], label=f"config {idx}")
        if n == 2 and not isinstance(cfg["padding"], str):  # torch.nn.grad helpers, same argument order
            gy = out["grad_outputs"][0]
            assert_close("vs torch.nn.grad", F.conv_backward_input(x.shape, w, gy, **args),
                         torch.nn.grad.conv2d_input(x.shape, _t(w), _t(gy), **args).numpy())
            assert_close("vs torch.nn.grad", F.conv_backward_weight(x, w.shape, gy, **args),
                         torch.nn.grad.conv2d_weight(_t(x), w.shape, _t(gy), **args).numpy())


@pytest.mark.parametrize("n", [1, 2, 3])
def test_functional_conv_transpose_and_its_gradients(n):
    tf = torch.nn.functional
    convt_t = {1: tf.conv_transpose1d, 2: tf.conv_transpose2d, 3: tf.conv_transpose3d}[n]
    for idx in range(4):
        cfg = convt_config(n, 100 + idx)
        r = np.random.default_rng(idx)
        x = _input(cfg, idx)
        w = r.standard_normal((cfg["in_channels"], cfg["out_channels"] // cfg["groups"]) + cfg["kernel_size"])
        b = r.standard_normal(cfg["out_channels"])
        common = dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"], groups=cfg["groups"])

        def ours(x, w):
            y = F.conv_transpose(x, w, b, output_padding=cfg["output_padding"], **common)
            return y, lambda gy: {"x": F.conv_transpose_backward_input(x.shape, w, gy, **common),
                                  "w": F.conv_transpose_backward_weight(x, w.shape, gy, **common)}

        compare_fn_with_torch({"x": x, "w": w},
                              lambda x, w: convt_t(x, w, _t(b), output_padding=cfg["output_padding"], **common), ours,
                              output_names=["conv_transpose"], label=f"config {idx}")


def test_conv_transpose_is_the_adjoint_of_conv(rng):
    """<conv(x, W), y> = <x, conv_transpose(y, W)> for the same stride/padding/dilation/groups."""
    for idx in range(6):
        cfg = conv_config(2, 200 + idx)
        if isinstance(cfg["padding"], str):
            continue
        x = _input(cfg, idx)
        w = rng.standard_normal((cfg["out_channels"], cfg["in_channels"] // cfg["groups"]) + cfg["kernel_size"])
        args = dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"], groups=cfg["groups"])
        y = F.conv(x, w, **args)
        v = rng.standard_normal(y.shape)
        out = F.conv_transpose(v, w, output_size=x.shape, **args)
        np.testing.assert_allclose(np.vdot(y, v), np.vdot(x, out), rtol=1e-10)


def test_conv_transpose_output_size_round_trips_odd_sizes():
    """BU-TD's pattern: conv down, then conv_transpose back to the cached input size (odd sizes, stride 2/3)."""
    r = np.random.default_rng(3)
    for size in [(7, 8), (9, 11), (5, 13)]:
        for stride in (2, 3):
            x = r.standard_normal((1, 2) + size)
            w = r.standard_normal((4, 2, 3, 3))
            y = F.conv(x, w, stride=stride, padding=1)
            back = F.conv_transpose(y, w, stride=stride, padding=1, output_size=x.shape)
            assert back.shape == x.shape
            ref = torch.nn.functional.conv_transpose2d(
                _t(y), _t(w), stride=stride, padding=1,
                output_padding=tuple(F.output_padding_for(y.shape[2:], size, (3, 3), (stride,) * 2, (1, 1), (1, 1))))
            assert_close("output_size", back, ref.numpy())
            layer = nn.ConvTranspose2d(4, 2, 3, stride=stride, padding=1, rng=0)
            tl = torch.nn.ConvTranspose2d(4, 2, 3, stride=stride, padding=1)
            assert layer(y.astype(np.float32), output_size=size).shape == tl(_t(y).float(), output_size=size).shape
    with pytest.raises(ValueError, match="output size"):
        F.conv_transpose(np.zeros((1, 4, 3, 3)), np.zeros((4, 2, 3, 3)), stride=2, output_size=(20, 20))


# ============================================================================ shapes, dtypes, errors
EDGE_SHAPES = [  # (spatial, kernel, stride, padding, dilation)
    ((5, 5), (5, 5), 1, 0, 1),           # kernel = input
    ((4, 7), (3, 2), (5, 9), 0, 1),      # stride larger than the input: one output
    ((9, 9), (3, 3), 1, 0, (4, 4)),      # dilated kernel exactly fits
    ((8, 7), (4, 2), 1, "same", (1, 3)),  # even kernel, 'same' -> asymmetric padding
    ((6, 5), (2, 3), 1, "same", (2, 2)),
    ((10, 3), (3, 3), (3, 2), (1, 1), 1),
    ((2, 2), (3, 3), 1, 1, 1),           # padding makes a too-small input fit
    ((1, 11), (1, 4), (1, 4), (0, 2), (1, 2)),
]


@pytest.mark.parametrize("spatial, kernel, stride, padding, dilation", EDGE_SHAPES)
def test_output_shape_formula_matches_torch(spatial, kernel, stride, padding, dilation):
    layer = nn.Conv2d(1, 1, kernel, stride=stride, padding=padding, dilation=dilation, rng=0)
    twin = torch.nn.Conv2d(1, 1, kernel, stride=stride, padding=padding, dilation=dilation)
    expected = tuple(twin(torch.zeros((1, 1) + spatial)).shape)
    assert layer(np.zeros((1, 1) + spatial, np.float32)).shape == expected
    assert F.conv_output_shape(spatial, kernel, stride, padding, dilation) == expected[2:]
    if padding != "same":
        tt = torch.nn.ConvTranspose2d(1, 1, kernel, stride=stride, padding=padding, dilation=dilation)
        assert F.conv_transpose_output_shape(expected[2:], kernel, stride, padding, 0, dilation) == \
            tuple(tt(torch.zeros(expected)).shape[2:])


def test_dtypes_follow_the_input():
    layer = nn.Conv2d(2, 3, 3, rng=0)
    assert layer.weight.data.dtype == np.float32
    x32 = np.random.default_rng(0).standard_normal((2, 2, 6, 6)).astype(np.float32)
    y = layer(x32)
    assert y.dtype == np.float32
    assert layer.backward(np.ones_like(y)).dtype == np.float32
    assert layer.weight.grad.dtype == np.float32
    y64 = layer(x32.astype(np.float64))
    assert y64.dtype == np.float64 and layer.backward(np.ones_like(y64)).dtype == np.float64
    np.testing.assert_allclose(y64, y, rtol=1e-5, atol=1e-5)
    t = nn.ConvTranspose3d(2, 2, 2, rng=0)
    assert t(np.zeros((1, 2, 3, 3, 3), np.float32)).dtype == np.float32
    assert F.conv(x32, layer.weight.data).dtype == np.float32


def test_init_matches_torch_default():
    """U(±1/√fan_in) with fan_in = weight.shape[1]·Πk, for conv and transposed conv alike."""
    for layer in (nn.Conv2d(8, 4, 3, groups=2, rng=0), nn.ConvTranspose2d(8, 6, 3, groups=2, rng=0),
                  nn.Conv3d(3, 5, (2, 3, 1), rng=1), nn.ConvTranspose1d(4, 9, 5, rng=2)):
        w = layer.weight.data
        bound = 1 / np.sqrt(w.shape[1] * np.prod(w.shape[2:]))
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
        assert np.abs(layer.bias.data).max() <= bound
    assert nn.ConvTranspose2d(8, 6, 3, groups=2, rng=0).weight.shape == (8, 3, 3, 3)
    np.testing.assert_array_equal(nn.Conv2d(3, 4, 3, rng=7).weight.data, nn.Conv2d(3, 4, 3, rng=7).weight.data)


def test_repr_matches_torch():
    for ours, theirs in [
        (nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False),
         torch.nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False)),
        (nn.Conv1d(4, 8, 5, padding="same", dilation=2, groups=4),
         torch.nn.Conv1d(4, 8, 5, padding="same", dilation=2, groups=4)),
        (nn.ConvTranspose3d(2, 4, 3, stride=2, output_padding=1),
         torch.nn.ConvTranspose3d(2, 4, 3, stride=2, output_padding=1)),
    ]:
        assert repr(ours) == repr(theirs)


def test_unbatched_input_like_torch(rng):
    layer = nn.Conv2d(2, 3, 3, padding=1, rng=0).to(np.float64)
    x = rng.standard_normal((2, 5, 4))
    y = layer(x)
    assert y.shape == (3, 5, 4)
    np.testing.assert_allclose(y, layer(x[None])[0])
    assert layer.backward(np.ones_like(y[None])).shape == (1, 2, 5, 4)
    layer(x)
    assert layer.backward(np.ones_like(y)).shape == x.shape


def test_bad_inputs_raise_value_errors_naming_the_layer():
    layer = nn.Conv2d(3, 4, 3)
    with pytest.raises(ValueError, match=r"Conv2d\(3, 4.*expected input of shape \(B, 3, H, W\), got \(3, 8\)"):
        layer(np.zeros((3, 8), np.float32))
    with pytest.raises(ValueError, match=r"got \(1, 3, 8, 8, 8\)"):
        layer(np.zeros((1, 3, 8, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"Conv2d\(3, 4.*expected input of shape \(B, 3, H, W\), got \(2, 5, 8, 8\)"):
        layer(np.zeros((2, 5, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"Conv2d\(3, 4.*float dtype.*int64"):
        layer(np.zeros((2, 3, 8, 8), np.int64))
    with pytest.raises(ValueError, match=r"Conv2d\(3, 4.*smaller than the dilated kernel"):
        layer(np.zeros((2, 3, 2, 8), np.float32))
    with pytest.raises(ValueError,
                       match=r"ConvTranspose1d\(2, 2.*expected input of shape \(B, 2, L\), got \(1, 2, 3, 3\)"):
        nn.ConvTranspose1d(2, 2, 3)(np.zeros((1, 2, 3, 3), np.float32))
    with pytest.raises(ValueError, match="grad_output"):
        layer(np.zeros((2, 3, 8, 8), np.float32))
        layer.backward(np.zeros((2, 4, 5, 5), np.float32))
    with pytest.raises(ValueError, match="strided"):
        nn.Conv2d(3, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="output_padding must be smaller than either stride or dilation"):
        nn.ConvTranspose2d(3, 4, 3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="not supported for transposed"):
        nn.ConvTranspose2d(3, 4, 3, padding="same")
    with pytest.raises(ValueError):
        nn.Conv2d(3, 4, 3, padding="full")
    with pytest.raises(ValueError, match="expects input of shape"):
        F.conv(np.zeros((1, 3, 5, 5)), np.zeros((4, 2, 3, 3)))
    with pytest.raises(TypeError, match="torch.nn.grad"):
        F.conv_backward_weight(np.zeros((1, 3, 5, 5)), np.zeros((4, 3, 3, 3)), np.zeros((1, 4, 3, 3)))


@pytest.mark.parametrize("layer", [nn.Conv1d(1, 1, 1), nn.Conv2d(1, 1, 1), nn.Conv3d(1, 1, 1),
                                   nn.ConvTranspose1d(1, 1, 1), nn.ConvTranspose2d(1, 1, 1),
                                   nn.ConvTranspose3d(1, 1, 1)])
def test_backward_before_forward_raises(layer):
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.zeros((1, 1) + (1,) * layer.n))


# ============================================================================ Numba kernels vs NumPy references
def _kernel_cases():
    for n in (1, 2, 3):
        for idx in range(5):
            cfg = conv_config(n, 300 + idx)
            k, d = cfg["kernel_size"], cfg["dilation"]
            s = F.ntuple(cfg["stride"], n, "s")
            geom = F.ConvGeometry.make((cfg["batch"], cfg["in_channels"]) + cfg["size"], k, s, cfg["padding"], d)
            yield geom


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_im2col_col2im_kernels_match_numpy_references(dtype):
    r = np.random.default_rng(0)
    for geom in _kernel_cases():
        args = (geom.kernel, geom.stride, geom.pads, geom.dilation, geom.out_spatial)
        x = r.standard_normal(geom.in_shape).astype(dtype)
        cols = R.im2col(x, *args)
        np.testing.assert_array_equal(K.im2col(x, *args), cols)
        # the definition, entry by entry: cols[b, (c, k), l] = x_pad[b, c, l*s + k*d]
        xp = np.pad(x, ((0, 0), (0, 0)) + geom.pads)
        c_idx, b_idx = r.integers(cols.shape[1]), r.integers(x.shape[0])
        c, kflat = divmod(int(c_idx), int(np.prod(geom.kernel)))
        kidx = np.unravel_index(kflat, geom.kernel)
        for lflat in range(int(np.prod(geom.out_spatial))):
            lidx = np.unravel_index(lflat, geom.out_spatial)
            pos = tuple(l * s + k * d for l, s, k, d in zip(lidx, geom.stride, kidx, geom.dilation))
            assert cols[b_idx, c_idx, lflat] == xp[(b_idx, c) + pos]
        c = r.standard_normal(cols.shape).astype(dtype)
        ref = R.col2im(c, geom.in_shape, *args)
        tol = 1e-5 if dtype == np.float32 else 1e-12
        got = K.col2im(c, geom.in_shape, *args)
        np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)
        assert got.dtype == dtype
        # col2im is the adjoint of im2col
        np.testing.assert_allclose(np.vdot(cols.astype(np.float64), c), np.vdot(x.astype(np.float64), ref),
                                   rtol=1e-4 if dtype == np.float32 else 1e-10)


def test_empty_batch_like_torch():
    for ours, theirs in [(nn.Conv2d(3, 4, 3, padding=1, rng=0), torch.nn.Conv2d(3, 4, 3, padding=1)),
                         (nn.ConvTranspose2d(3, 4, 3, stride=2, rng=0), torch.nn.ConvTranspose2d(3, 4, 3, stride=2))]:
        x = np.zeros((0, 3, 5, 5), np.float32)
        y = ours(x)
        assert y.shape == tuple(theirs(torch.from_numpy(x)).shape)
        assert ours.backward(np.zeros_like(y)).shape == x.shape
        np.testing.assert_array_equal(ours.weight.grad, 0)


def test_four_spatial_dims_use_the_numpy_path(rng):
    """n = 4 (no torch twin): the NumPy im2col/col2im path against a direct window sum, and its adjoint."""
    from numpy.lib.stride_tricks import sliding_window_view

    x = rng.standard_normal((2, 2, 4, 3, 4, 3))
    w = rng.standard_normal((3, 2, 2, 2, 3, 1))
    y = F.conv(x, w, stride=(1, 2, 1, 1), padding=1)
    xp = np.pad(x, ((0, 0), (0, 0)) + ((1, 1),) * 4)
    win = sliding_window_view(xp, (2, 2, 3, 1), axis=(2, 3, 4, 5))[:, :, :, ::2]
    np.testing.assert_allclose(y, np.einsum("bcdefgklmn,ocklmn->bodefg", win, w), rtol=1e-12, atol=1e-12)
    gy = rng.standard_normal(y.shape)
    gx = F.conv_backward_input(x.shape, w, gy, stride=(1, 2, 1, 1), padding=1)
    np.testing.assert_allclose(np.vdot(gx, x), np.vdot(gy, y), rtol=1e-10)
