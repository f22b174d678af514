"""Auto-Rotating Perceptrons: every AutoRot layer against a torch twin written here from the formula
(autograd, float64), the scale invariance of the rule, autorot=False = the plain layer, the limits
table, and the n-D saturation failure mode."""
import math

import numpy as np
import pytest

from nnlocal import nn
from nnlocal.methods import arp
from tests.torch_twin import compare_with_torch

torch = pytest.importorskip("torch")
F = torch.nn.functional

ACT_T = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "atan": torch.atan, None: lambda z: z}


# ============================================================================ torch twins from the formula
def arp_twin(affine, xQ, L, eps, act, eps_outside=False, detach_rho=False):
    """twin(x, params) = act(ρ ⊙ affine(x, params)) with q = affine(xQ·1 of one sample's shape)."""

    def twin(x, p):
        u = affine(x, p)
        q = affine(torch.ones_like(x[:1]) * torch.as_tensor(np.asarray(xQ), dtype=x.dtype), p)
        if x.ndim == 2:                      # Dense: q per unit (no batch axis needed)
            q = q[0]
        Lv = p["L"] if "L" in p else L
        rho = Lv / q.abs() + eps if eps_outside else Lv / (q.abs() + eps)
        if detach_rho:
            rho = rho.detach()
        return ACT_T[act](rho * u)

    return twin


def _conv_affine(n, stride, padding, dilation, groups):
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[n]
    def affine(x, p):
        import warnings
        with warnings.catch_warnings():                  # torch's note about 'same' with even kernels
            warnings.simplefilter("ignore", UserWarning)
            return conv(x, p["weight"], p.get("bias"), stride, padding, dilation, groups)

    return affine


def _convT_affine(n, stride, padding, output_padding, groups, dilation):
    convT = {2: F.conv_transpose2d, 3: F.conv_transpose3d}[n]
    return lambda x, p: convT(x, p["weight"], p.get("bias"), stride, padding, output_padding, groups, dilation)


def _sep_affine(n, stride, padding, dilation, C):
    conv = {1: F.conv1d, 2: F.conv2d}[n]
    return lambda x, p: conv(conv(x, p["depthwise.weight"], None, stride, padding, dilation, C),
                             p["pointwise.weight"], p.get("pointwise.bias"))


def make_case(name, r):
    """(layer, affine twin, input) for one random configuration of layer ``name``."""
    B = int(r.integers(1, 4))
    act = ["sigmoid", "tanh", "atan", None][int(r.integers(0, 4))]
    lo, hi = [(0.0, 1.0), (-1.0, 1.0), (-0.5, 2.0)][int(r.integers(0, 3))]
    arpkw = dict(L=float(r.uniform(1, 6)), xmin_lim=lo, xmax_lim=hi, activation=act,
                 trainable_L=bool(r.integers(0, 2)), rng=int(r.integers(1 << 30)))
    bias = bool(r.integers(0, 4))            # 1 in 4 without bias
    if name == "AutoRotDense":
        i, o = int(r.integers(1, 7)), int(r.integers(1, 6))
        layer = arp.AutoRotDense(i, o, bias=bias, **arpkw)
        affine = (lambda x, p: x @ p["weight"].T + p["bias"]) if bias else (lambda x, p: x @ p["weight"].T)
        return layer, affine, r.uniform(lo, hi, (B, i))
    n = {"1d": 1, "2d": 2, "3d": 3}[name[-2:]]
    C = int(r.integers(1, 4))
    S = tuple(int(v) for v in r.integers(4 if n < 3 else 3, 8 if n < 3 else 5, n))
    k = int(r.integers(1, 4))
    stride, dilation = int(r.integers(1, 3)), int(r.integers(1, 3))
    if name.startswith("AutoRotConvTranspose"):
        groups = int(r.integers(1, 3))
        Cin, Cout = C * groups, int(r.integers(1, 3)) * groups
        padding = int(r.integers(0, 2))
        op = int(r.integers(0, max(stride, dilation))) if max(stride, dilation) > 1 else 0
        layer = getattr(arp, name)(Cin, Cout, k, stride=stride, padding=padding, output_padding=op, groups=groups,
                                   bias=bias, dilation=dilation, **arpkw)
        return layer, _convT_affine(n, stride, padding, op, groups, dilation), r.uniform(lo, hi, (B, Cin) + S)
    padding = ["valid", "same", 0, 1][int(r.integers(0, 4))]
    if padding == "same":
        stride = 1
    if name.startswith("AutoRotSeparable"):
        m, Cout = int(r.integers(1, 3)), int(r.integers(1, 4))
        layer = getattr(arp, name)(C, Cout, k, depth_multiplier=m, stride=stride, padding=padding,
                                   dilation=dilation, bias=bias, **arpkw)
        return layer, _sep_affine(n, stride, padding, dilation, C), r.uniform(lo, hi, (B, C) + S)
    if name == "AutoRotDepthwiseConv2d":
        m = int(r.integers(1, 3))
        layer = arp.AutoRotDepthwiseConv2d(C, k, depth_multiplier=m, stride=stride, padding=padding,
                                           dilation=dilation, bias=bias, **arpkw)
        return layer, _conv_affine(2, stride, padding, dilation, C), r.uniform(lo, hi, (B, C) + S)
    groups = int(r.integers(1, 3))
    layer = getattr(arp, name)(C * groups, int(r.integers(1, 3)) * groups, k, stride=stride, padding=padding,
                               dilation=dilation, groups=groups, bias=bias, **arpkw)
    return layer, _conv_affine(n, stride, padding, dilation, groups), r.uniform(lo, hi, (B, C * groups) + S)


AFFINE_LAYERS = ["AutoRotDense", "AutoRotConv1d", "AutoRotConv2d", "AutoRotConv3d", "AutoRotConvTranspose2d",
                 "AutoRotConvTranspose3d", "AutoRotSeparableConv1d", "AutoRotSeparableConv2d",
                 "AutoRotDepthwiseConv2d"]


def _twin_for(layer, affine):
    act = {nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.Atan: "atan"}.get(type(layer.activation))
    return arp_twin(affine, layer.xQ, layer.L if not layer.trainable_L else None, layer.eps, act,
                    getattr(layer, "eps_outside", False), layer.detach_rho)


@pytest.mark.parametrize("name", AFFINE_LAYERS)
@pytest.mark.parametrize("case", range(4))
def test_affine_layers_match_torch_twin(name, case):
    r = np.random.default_rng(1000 * AFFINE_LAYERS.index(name) + case)
    layer, affine, x = make_case(name, r)
    compare_with_torch(layer, _twin_for(layer, affine), x)
    assert layer(x).shape == affine(torch.tensor(x), {k: torch.tensor(p.data) for k, p in
                                                      layer.named_parameters()}).shape


def test_array_limits_give_a_vector_q_point():
    """arpkeras' 'n-dimensional' xQ: per-feature limits (Dense) or per-channel limits (conv)."""
    r = np.random.default_rng(8)
    lo, hi = r.uniform(-1, 0, 5), r.uniform(0.5, 2, 5)
    dense = arp.AutoRotDense(5, 3, xmin_lim=lo, xmax_lim=hi, activation="tanh", rng=0)
    np.testing.assert_allclose(dense.xQ, 2 * hi - lo)
    compare_with_torch(dense, arp_twin(lambda x, p: x @ p["weight"].T + p["bias"], dense.xQ, 4.0, 1e-5, "tanh"),
                       r.uniform(lo, hi, (4, 5)))
    lo_c, hi_c = np.zeros((2, 1, 1)), np.array([1.0, 3.0]).reshape(2, 1, 1)
    conv = arp.AutoRotConv2d(2, 3, 3, padding="same", xmin_lim=lo_c, xmax_lim=hi_c, activation="sigmoid", rng=0)
    compare_with_torch(conv, arp_twin(_conv_affine(2, 1, "same", 1, 1), conv.xQ, 4.0, 1e-5, "sigmoid"),
                       r.uniform(0, 1, (2, 2, 5, 5)))


def test_conv1d_eps_outside_reproduces_arpkeras_form():
    r = np.random.default_rng(5)
    layer = arp.AutoRotConv1d(2, 3, 3, padding="same", activation="sigmoid", eps_outside=True, rng=0)
    x = r.random((2, 2, 6))
    compare_with_torch(layer, arp_twin(_conv_affine(1, 1, "same", 1, 1), 2.0, 4.0, 1e-5, "sigmoid",
                                       eps_outside=True), x)
    unified = arp.AutoRotConv1d(2, 3, 3, padding="same", activation="sigmoid", rng=0).to(np.float64)
    assert not np.allclose(unified.rho(x.shape), layer.rho(x.shape), rtol=1e-9, atol=0)


def test_detach_rho_drops_the_term_through_rho():
    r = np.random.default_rng(6)
    layer = arp.AutoRotConv2d(2, 3, 3, padding=1, activation="tanh", detach_rho=True, rng=0)
    x = r.random((2, 2, 5, 5))
    compare_with_torch(layer, arp_twin(_conv_affine(2, 1, 1, 1, 1), 2.0, 4.0, 1e-5, "tanh", detach_rho=True), x)


# ============================================================================ recurrent
def rec_twin(kind, xQ, L_rows, eps, with_h0, trainable):
    def twin(*args):
        x, p = args[0], args[-1]
        h = args[1].reshape(x.shape[0], -1) if with_h0 else None
        Wih, Whh = p["weight_ih_l0"], p["weight_hh_l0"]
        bih, bhh = p.get("bias_ih_l0"), p.get("bias_hh_l0")
        H = Whh.shape[1]
        if bih is None:
            bih = bhh = torch.zeros(Wih.shape[0], dtype=x.dtype)
        q = xQ * (Wih.sum(1) + Whh.sum(1)) + bih + bhh
        Lr = p["L"].repeat_interleave(H) if trainable else torch.tensor(L_rows)
        rho = Lr / (q.abs() + eps)
        if h is None:
            h = torch.zeros(x.shape[0], H, dtype=x.dtype)
        c = torch.zeros_like(h)
        outs = []
        for t in range(x.shape[1]):
            gi, gh = x[:, t] @ Wih.T + bih, h @ Whh.T + bhh
            if kind == "RNN":
                h = torch.tanh(rho * (gi + gh))
            elif kind == "LSTM":
                a = rho * (gi + gh)
                i, f, g, o = a.chunk(4, 1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
            else:
                (ir, iz, i_n), (hr, hz, hn) = gi.chunk(3, 1), gh.chunk(3, 1)
                rr, rz, rn = rho.chunk(3)
                r_ = torch.sigmoid(rr * (ir + hr))
                z = torch.sigmoid(rz * (iz + hz))
                n = torch.tanh(rn * (i_n + r_ * hn))
                h = (1 - z) * n + z * h
            outs.append(h)
        return torch.stack(outs, 1), h[None]

    return twin


REC = {"RNN": arp.AutoRotRNN, "LSTM": arp.AutoRotLSTM, "GRU": arp.AutoRotGRU}


@pytest.mark.parametrize("kind", list(REC))
@pytest.mark.parametrize("case", range(3))
def test_recurrent_arp_matches_torch_twin(kind, case):
    r = np.random.default_rng(50 + case)
    B, T, I, H = (int(v) for v in (r.integers(1, 4), r.integers(1, 6), r.integers(1, 5), r.integers(1, 6)))
    trainable = case == 1
    L = None if case == 0 else float(r.uniform(1, 5))
    layer = REC[kind](I, H, bias=case != 2, L=L, trainable_L=trainable, rng=case)
    L_rows = np.repeat(np.broadcast_to(np.asarray(layer.gate_L_default if L is None else L, float),
                                       (layer.n_gates,)), H)
    with_h0 = kind != "LSTM" and case == 2
    x = r.uniform(-1, 1, (B, T, I))
    inputs = (x, r.uniform(-1, 1, (1, B, H))) if with_h0 else (x,)
    compare_with_torch(layer, rec_twin(kind, 3.0, L_rows, 1e-5, with_h0, trainable), *inputs, output_index=0)


# ============================================================================ properties of the rule
def _per_unit_invariant(layer):
    """Σ W ∂L/∂W + b ∂L/∂b per output unit (per gate row for recurrent layers)."""
    P = dict(layer.named_parameters())
    if isinstance(layer, nn.RNN | nn.LSTM | nn.GRU):
        tot = 0
        for name in ("weight_ih_l0", "weight_hh_l0"):
            tot = tot + (P[name].data * P[name].grad).sum(axis=1)
        for name in ("bias_ih_l0", "bias_hh_l0"):
            tot = tot + P[name].data * P[name].grad
        scale = sum(np.abs(P[n].data * P[n].grad).sum() for n in P)
        return tot, scale
    wname = "pointwise.weight" if "pointwise.weight" in P else "weight"
    bname = "pointwise.bias" if wname.startswith("pointwise") else "bias"
    W, b = P[wname], P[bname]
    axis = 1 if isinstance(layer, nn.ConvTranspose2d | nn.ConvTranspose3d) else 0
    prod = np.moveaxis(W.data * W.grad, axis, 0)
    tot = prod.reshape(prod.shape[0], -1).sum(axis=1) + b.data * b.grad
    return tot, np.abs(W.data * W.grad).sum() + np.abs(b.data * b.grad).sum()


@pytest.mark.parametrize("name", AFFINE_LAYERS + ["RNN", "LSTM", "GRU"])
def test_scale_invariance_with_eps_zero(name):
    r = np.random.default_rng(7)
    if name in REC:
        layer = REC[name](3, 4, eps=0.0, rng=1).to(np.float64)
        x = r.uniform(-1, 1, (2, 5, 3))
        y, _ = layer(x)
        layer.zero_grad()
        layer.backward(r.standard_normal(y.shape))
    else:
        while True:   # a configuration with a bias (and groups = 1 for the transposed convs' unit sums)
            layer, _aff, x = make_case(name, r)
            if layer.bias is not None and getattr(layer, "groups", 1) == 1:
                break
        layer.eps = 0.0
        layer.to(np.float64)
        y = layer(x)
        layer.zero_grad()
        layer.backward(r.standard_normal(y.shape))
    tot, scale = _per_unit_invariant(layer)
    assert scale > 1e-6
    assert np.all(np.abs(tot) <= 1e-8 * max(scale, 1.0)), (tot, scale)


def test_scale_invariance_fails_without_the_rho_term():
    """The invariance needs the gradient through ρ: with detach_rho it is violated (sanity check)."""
    layer = arp.AutoRotDense(5, 3, eps=0.0, activation="sigmoid", detach_rho=True, rng=0).to(np.float64)
    x = np.random.default_rng(0).random((4, 5))
    layer.backward(np.ones_like(layer(x)))
    tot, scale = _per_unit_invariant(layer)
    assert np.abs(tot).max() > 1e-3 * scale


@pytest.mark.parametrize("kind", ["dense", "conv2d", "RNN", "LSTM", "GRU"])
def test_autorot_false_is_exactly_the_plain_layer(kind):
    r = np.random.default_rng(3)
    if kind == "dense":
        a, p, act = arp.AutoRotDense(6, 4, activation="sigmoid", autorot=False, rng=0), nn.Linear(6, 4, rng=0), \
            nn.Sigmoid()
        x = r.random((3, 6)).astype(np.float32)
    elif kind == "conv2d":
        a = arp.AutoRotConv2d(2, 3, 3, padding="same", activation="tanh", autorot=False, rng=0)
        p, act = nn.Conv2d(2, 3, 3, padding="same", rng=0), nn.Tanh()
        x = r.random((2, 2, 5, 5)).astype(np.float32)
    else:
        a, p, act = REC[kind](3, 4, autorot=False, rng=0), getattr(nn, kind)(3, 4, rng=0), None
        x = r.random((2, 5, 3)).astype(np.float32)
    if act is None:
        ya, yp = a(x)[0], p(x)[0]
    else:
        ya, yp = a(x), act(p(x))
    np.testing.assert_array_equal(ya, yp)
    g = r.standard_normal(ya.shape).astype(np.float32)
    gxa = a.backward(g)
    gxp = p.backward(g if act is None else act.backward(g))
    np.testing.assert_array_equal(gxa, gxp)
    for (na, pa), (npl, pp) in zip(a.named_parameters(), p.named_parameters()):
        assert na == npl
        np.testing.assert_array_equal(pa.grad, pp.grad)
    assert a.saturation() == 0.0


def test_limits_for_reproduces_the_readme_table():
    assert arp.limits_for("sigmoid", 0, 1) == (0, 1, 4)
    assert arp.limits_for("tanh", 0, 1) == (-1, 1, 2)
    assert arp.limits_for("atan", 0, 1) == pytest.approx((-math.pi, math.pi, 7))
    assert arp.limits_for("relu", 0, 1) == (0, 1, None)
    assert arp.limits_for("relu", -2, 3) == (-2, 3, None)
    assert arp.limits_for("leaky_relu", -2, 3) == pytest.approx((-2, 3, None))
    assert arp.limits_for("leaky_relu", -2, -1)[:2] == pytest.approx((-2, -0.3))
    assert arp.limits_for("sigmoid", -3, 5) == (-3, 5, 4)
    assert arp.limits_for("tanh", -0.5, 0.5) == (-1, 1, 2)
    with pytest.raises(ValueError, match="unknown activation"):
        arp.limits_for("softplus")
    layer = arp.AutoRotDense(3, 2, **arp.limits_for("tanh", 0, 1)._asdict(), activation="tanh")
    assert layer.xQ == 3.0


def test_one_dimensional_guarantee_and_its_n_dimensional_failure():
    """1-D: a zero crossing inside [xmin, xmax] gives |z| <= L on the whole range. n-D: no such bound."""
    r = np.random.default_rng(11)
    xs = np.linspace(0, 1, 201)[:, None]
    for _ in range(50):
        layer = arp.AutoRotDense(1, 1, L=4.0, rng=int(r.integers(1 << 30))).to(np.float64)
        w = r.uniform(-3, 3)
        layer.weight.data[...] = w
        layer.bias.data[...] = -w * r.uniform(0, 1)            # zero crossing inside [0, 1]
        assert np.abs(layer(xs)).max() <= 4.0 + 1e-9
    layer = arp.AutoRotDense(2, 1, L=4.0, rng=0).to(np.float64)
    layer.weight.data[...] = [[1.0, -0.9]]
    layer.bias.data[...] = 0.0                                 # q = 2·0.1 = 0.2 but u(1, 0) = 1
    assert np.abs(layer(np.array([[1.0, 0.0]]))).max() > 4.0


def test_saturation_failure_mode_is_reported():
    layer = arp.AutoRotDense(6, 4, L=4.0, activation="sigmoid", rng=0).to(np.float64)
    W, b = layer.weight.data, layer.bias.data
    b[0] = -2.0 * W[0].sum()                                   # xQ·ΣW + b = 0 for unit 0: q -> 0
    rho = layer.rho()
    assert rho[0] == pytest.approx(4.0 / 1e-5, rel=1e-6) and np.all(rho[1:] < 1e3)
    assert layer.saturation() == pytest.approx(0.25)
    assert layer.saturation(bound=1e6) == 0.0
    x = np.random.default_rng(0).random((64, 6))
    y = layer(x)
    assert np.mean((y[:, 0] < 1e-6) | (y[:, 0] > 1 - 1e-6)) > 0.9   # unit 0 is saturated for almost all x
    layer.zero_grad()
    gx = layer.backward(np.eye(4)[np.zeros(64, int)])           # dL/dy on unit 0 only
    assert np.median(np.abs(gx)) < 1e-6
    # convolutions report per (channel, position); the Conv1d bug form gives inf at q = 0
    c1 = arp.AutoRotConv1d(1, 1, 3, eps_outside=True, rng=0).to(np.float64)
    c1.bias.data[...] = -2.0 * c1.weight.data.sum()
    assert np.isinf(c1.rho((1, 1, 5))).all() and c1.saturation(input_shape=(1, 1, 5)) == 1.0


def test_same_padding_makes_rho_vary_at_the_borders():
    same = arp.AutoRotConv2d(1, 1, 3, padding="same", rng=0).to(np.float64)
    same.weight.data[...] = 1.0
    same.bias.data[...] = 0.0
    q = same.q((1, 1, 5, 5))[0, 0]
    assert q[2, 2] == 18.0 and q[0, 0] == 8.0 and q[0, 2] == 12.0     # 9, 4 and 6 taps of xQ = 2
    valid = arp.AutoRotConv2d(1, 1, 3, padding="valid", rng=0).to(np.float64)
    rho = valid.rho((1, 1, 5, 5))
    assert rho.shape == (1, 1, 3, 3) and np.ptp(rho) <= 1e-12 * rho.max()


def test_arpkeras_aliases_and_layer_table():
    assert arp.AutoRotConv2D is arp.AutoRotConv2d and arp.AutoRotSimpleRNN is arp.AutoRotRNN
    assert arp.AutoRotConv2DTranspose is arp.AutoRotConvTranspose2d
    assert arp.AutoRotDepthwiseConv2D is arp.AutoRotDepthwiseConv2d
    assert len(arp.LAYERS) == 13
    for _, keras_name, ours, _ in arp.LAYERS:
        assert getattr(arp, keras_name) is getattr(arp, ours)


def test_training_state_errors_and_repr():
    layer = arp.AutoRotDense(3, 2, activation="sigmoid", trainable_L=True, rng=0)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.zeros((1, 2), np.float32))
    with pytest.raises(ValueError, match="AutoRotDense"):
        layer(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="L must be > 0"):
        arp.AutoRotDense(3, 2, L=0.0)
    with pytest.raises(ValueError, match="one per gate type"):
        arp.AutoRotLSTM(3, 2, L=(1.0, 2.0))
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias", "L"]
    assert "L=4" in repr(layer) and "trainable_L=True" in repr(layer) and "Sigmoid" in repr(layer)
    sd = layer.state_dict()
    assert set(sd) == {"weight", "bias", "L"}
    # conv layers take batched input only; the error names the layer
    conv = arp.AutoRotConv2d(1, 2, 3, rng=0)
    with pytest.raises(ValueError, match="AutoRotConv2d"):
        conv(np.zeros((1, 5, 5), np.float32))


def test_keras_init():
    net = nn.Sequential(arp.AutoRotDense(20, 10, rng=0), nn.Linear(10, 5, rng=0))
    arp.keras_init_(net, rng=0)
    assert np.abs(net[0].weight.data).max() <= math.sqrt(6 / 30)
    assert np.all(net[0].bias.data == 0) and np.all(net[1].bias.data == 0)


# ============================================================================ reliability (issue #14)
def _small_layers():
    return [arp.AutoRotDense(3, 2, rng=0), arp.AutoRotConv1d(1, 2, 3, rng=0), arp.AutoRotConv2d(1, 2, 3, rng=0),
            arp.AutoRotSeparableConv2d(1, 2, 3, rng=0), arp.AutoRotGRU(3, 2, rng=0), arp.AutoRotLSTM(3, 2, rng=0)]


def _good_input(layer):
    shapes = {"AutoRotDense": (2, 3), "AutoRotConv1d": (2, 1, 5), "AutoRotConv2d": (2, 1, 5, 5),
              "AutoRotSeparableConv2d": (2, 1, 5, 5), "AutoRotGRU": (2, 4, 3), "AutoRotLSTM": (2, 4, 3)}
    return np.full(shapes[type(layer).__name__], 0.5, np.float32)


@pytest.mark.parametrize("index", range(6))
def test_python_list_input_is_a_value_error_naming_the_layer(index):
    """Was an AttributeError ('list' object has no attribute 'dtype') from inside the rule."""
    layer = _small_layers()[index]
    name = type(layer).__name__
    with pytest.raises(ValueError, match=rf"(?s){name}\(.*expected input to be a numpy.ndarray of float32 or float64, "
                                         r"got list"):
        layer(_good_input(layer).tolist())
    assert np.isfinite(layer(_good_input(layer)) if name not in ("AutoRotGRU", "AutoRotLSTM")
                       else layer(_good_input(layer))[0]).all()


@pytest.mark.parametrize("index", range(6))
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_input_is_a_value_error_naming_the_layer(index, bad):
    layer = _small_layers()[index]
    x = _good_input(layer)
    x.flat[1] = bad
    name = type(layer).__name__
    with pytest.raises(ValueError, match=rf"(?s){name}\(.*expected a finite input, got 1 NaN or infinite"):
        layer(x)


def test_non_finite_initial_state_of_a_recurrent_cell_is_an_error():
    lstm = arp.AutoRotLSTM(3, 2, rng=0)
    h0 = np.zeros((2, 2), np.float32)
    c0 = np.full((2, 2), np.nan, np.float32)
    with pytest.raises(ValueError, match=r"(?s)AutoRotLSTM\(.*expected a finite initial cell state"):
        lstm(np.zeros((2, 4, 3), np.float32), (h0, c0))


_BAD_HYPERPARAMETERS = [
    (dict(L=float("nan")), "L must be a finite number"),
    (dict(L=float("inf")), "L must be a finite number"),
    (dict(eps=float("nan")), "eps must be a finite number"),
    (dict(xmax_lim=float("nan")), "xmax_lim must be a finite number"),
    (dict(xmin_lim=float("-inf")), "xmin_lim must be a finite number"),
    (dict(xQ=float("nan")), "xQ must be a finite number"),
    (dict(xmin_lim=2.0, xmax_lim=1.0), "xmin_lim must be <= xmax_lim, got xmin_lim=2.0, xmax_lim=1.0"),
]
_MAKE = {"AutoRotDense": lambda kw: arp.AutoRotDense(3, 2, rng=0, **kw),
         "AutoRotConv2d": lambda kw: arp.AutoRotConv2d(3, 2, 3, rng=0, **kw),
         "AutoRotGRU": lambda kw: arp.AutoRotGRU(3, 2, rng=0, **kw)}


@pytest.mark.parametrize("cls, kwargs, message",
                         [(c, kw, m) for c in _MAKE for kw, m in _BAD_HYPERPARAMETERS]
                         + [("AutoRotDense", dict(xmin_lim=[0.0, 3.0, 0.0], xmax_lim=[1.0, 1.0, 1.0]),
                             "xmin_lim must be <= xmax_lim")])
def test_bad_arp_hyperparameters_are_value_errors(cls, kwargs, message):
    """NaN L/eps/limits used to build a layer whose every output was NaN; xmin_lim > xmax_lim a Q-point
    inside the data range (no guarantee at all)."""
    with pytest.raises(ValueError, match=f"{cls}: {message}"):
        _MAKE[cls](kwargs)


def test_every_layer_documents_itself():
    """The written-out conv classes had no docstring (a docstring built with + is not a docstring)."""
    for _, _, ours, _ in arp.LAYERS:
        doc = getattr(arp, ours).__doc__
        assert doc and doc.startswith("ARP") and "L=" in doc, ours


def test_reference_rule_is_what_the_dense_layer_computes(rng):
    """The layer's q and ρ are reference.dense_q / rho_from_q of its weights (one hop to the maths)."""
    from nnlocal.methods.arp import reference as R

    layer = arp.AutoRotDense(4, 3, L=3.0, xmin_lim=-1.0, xmax_lim=2.0, rng=0).to(np.float64)
    q = R.dense_q(layer.weight.data, layer.bias.data, R.auto_q_point(-1.0, 2.0))
    np.testing.assert_allclose(layer.q(), 5.0 * layer.weight.data.sum(axis=1) + layer.bias.data, rtol=1e-14)
    np.testing.assert_allclose(layer.q(), q, rtol=1e-14)
    np.testing.assert_allclose(layer.rho(), 3.0 / (np.abs(q) + 1e-5), rtol=1e-14)
