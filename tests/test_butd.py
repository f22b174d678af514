"""BU-TD (nnlocal.methods.butd): Counter-Hebb = backprop, GaLU gating, top-down weights, the task head.

The core claim (see nnlocal.methods.butd.reference): with shared top-down weights, the Counter-Hebb update after
the error TD pass equals torch autograd's gradients exactly. Each net below is mirrored by a torch
function built from the same parameters (``torch_bu`` / ``torch_td``), in float64, at rtol 1e-10.
"""
import numpy as np
import pytest

from nnlocal import optim
from nnlocal.methods.butd.cpu import galu
from nnlocal.methods.butd.reference import galu as galu_reference
from nnlocal.methods import butd
from tests.torch_twin import assert_close, compare_fn_with_torch

torch = pytest.importorskip("torch")
TF = torch.nn.functional
RTOL = 1e-10


# =========================================================================== torch mirrors
def _join(prefix, name):
    return f"{prefix}.{name}" if prefix else name


class _STE(torch.autograd.Function):
    """[u > 0] forward, identity backward (the straight-through estimator of TaskBUTDNet)."""

    @staticmethod
    def forward(ctx, u):
        return (u > 0).to(u.dtype)

    @staticmethod
    def backward(ctx, g):
        return g


def _conv(m, x, P, prefix):
    return TF.conv2d(x, P[prefix + ".weight"], P.get(prefix + ".bias"), m.stride, m.padding, m.dilation, m.groups)


def torch_bu(m, x, P, prefix="", non_linear=True, gates=None):
    """The BU pass of an nnlocal BU-TD module in torch (gates: unit name -> 0/1 tensor)."""
    def act(z, name):
        if non_linear:
            z = torch.relu(z)
        return z * gates[name] if gates is not None else z

    if isinstance(m, butd.BUTDSequential):
        for name, child in m.named_children():
            x = torch_bu(child, x, P, _join(prefix, name), non_linear, gates)
        return x
    if isinstance(m, butd.BUTDFlatten):
        return x.flatten(1)
    if isinstance(m, butd.BUTDLinear):
        return act(TF.linear(x, P[prefix + ".weight"], P.get(prefix + ".bias")), prefix)
    if isinstance(m, butd.BUTDConv2d):
        return act(_conv(m, x, P, prefix), prefix)
    if isinstance(m, butd.BUTDBasicBlock):
        h1 = torch.relu(_conv(m.conv1, x, P, prefix + ".conv1"))
        if gates is not None:
            h1 = h1 * gates[prefix + ".conv1"]
        z = _conv(m.conv2, h1, P, prefix + ".conv2")
        z = z + (_conv(m.downsample, x, P, prefix + ".downsample") if m.downsample is not None else x)
        return act(z, prefix)
    raise TypeError(type(m))


def _td_weight(m, P, prefix, detach):
    w = P[prefix + ".weight"] if m.back_weight is None else P[prefix + ".back_weight"]
    if m.back_weight is not None and isinstance(m, butd.BUTDLinear):
        w = w.T
    return w.detach() if detach else w


def _convT(m, t, P, prefix, detach):
    op = m.td_output_padding(t.shape[2:])
    return TF.conv_transpose2d(t, _td_weight(m, P, prefix, detach), None, m.stride, m.padding, op, m.groups,
                               m.dilation)


def torch_td(m, u, P, prefix="", gates=None, ste=False, detach=True):
    """The instruction TD pass (ReLU, no gating) in torch. ``u`` is the pre-ReLU TD input of ``m``;
    returns the pre-ReLU TD output, and stores each gated unit's gate [u > 0] (STE if ``ste``)."""
    gate = _STE.apply if ste else (lambda v: (v > 0).to(v.dtype))

    def store(name, v):
        if gates is not None:
            gates[name] = gate(v)

    if isinstance(m, butd.BUTDSequential):
        for name, child in reversed(list(m.named_children())):
            u = torch_td(child, u, P, _join(prefix, name), gates, ste, detach)
        return u
    if isinstance(m, butd.BUTDFlatten):
        return u.reshape((u.shape[0],) + m.input_shape)
    store(prefix, u)
    t = torch.relu(u)
    if isinstance(m, butd.BUTDLinear):
        return t @ _td_weight(m, P, prefix, detach)
    if isinstance(m, butd.BUTDConv2d):
        return _convT(m, t, P, prefix, detach)
    if isinstance(m, butd.BUTDBasicBlock):
        pre2 = _convT(m.conv2, t, P, prefix + ".conv2", detach)
        store(prefix + ".conv1", pre2)
        out = _convT(m.conv1, torch.relu(pre2), P, prefix + ".conv1", detach)
        return out + (_convT(m.downsample, t, P, prefix + ".downsample", detach) if m.downsample is not None else t)
    raise TypeError(type(m))


def torch_params(net):
    return {name: torch.tensor(p.data, dtype=torch.float64, requires_grad=True)
            for name, p in net.named_parameters()}


def prefixed(P, prefix):
    return {k[len(prefix) + 1:]: v for k, v in P.items() if k.startswith(prefix + ".")}


def check_grads(net, P, names=None):
    for name, p in net.named_parameters():
        if names is not None and name not in names:
            continue
        expected = P[name].grad
        expected = np.zeros(p.shape) if expected is None else expected.numpy()
        ours = np.zeros(p.shape) if p.grad is None else p.grad
        assert_close(f"dL/d{name}", ours, expected, RTOL)


def torch_net_loss(net, x, y, P):
    h = torch_bu(net.core, torch.from_numpy(x), prefixed(P, "core"))
    logits = TF.linear(h, P["head.weight"], P["head.bias"])
    return logits, TF.cross_entropy(logits, torch.from_numpy(y))


def ch_vs_autograd(net, x, y):
    """Forward and loss, then Counter-Hebb and then backprop (the hand-written backward of the same BU
    network) in nnlocal vs forward + autograd in torch (:func:`torch_bu`): logits, loss and every
    parameter gradient."""
    net.to(np.float64)
    params = dict(net.named_parameters())

    def theirs(**P):
        return torch_net_loss(net, x, y, P)

    def ours(learning):
        def run(**P):                      # P holds the net's own parameter values
            logits = net(x)
            loss, g = butd.loss_and_grad("cross_entropy", logits, y)

            def backward(g_logits, g_loss):    # the loss is the only output read: g_logits is None
                net.zero_grad()
                if learning == "Counter-Hebb":
                    butd.counter_hebb_(net, g * g_loss)
                else:
                    net(x)
                    net.backward(g * g_loss)
                return {name: p.grad for name, p in params.items()}

            return (logits, loss), backward
        return run

    for learning in ("Counter-Hebb", "backprop"):
        compare_fn_with_torch({name: p.data for name, p in params.items()}, theirs, ours(learning),
                              grad_outputs=[None, 1.0], rtol=RTOL, tolerances={"loss": (1e-12, 0.0)},
                              output_names=["logits", "loss"], label=learning)


def _data(rng, shape, batch=5, classes=4):
    return rng.standard_normal((batch,) + shape), rng.integers(0, classes, batch)


# =========================================================================== GaLU kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7,), (3, 11), (2, 3, 5, 4)])
def test_galu_kernel_matches_reference(rng, dtype, shape):
    x = rng.standard_normal(shape).astype(dtype)
    c = rng.standard_normal(shape).astype(dtype)
    c[..., 0] = 0.0                                             # the threshold is strict: [c > 0]
    for relu in (False, True):
        out = galu(x, c, relu)
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, galu_reference(x, c, relu))
    np.testing.assert_array_equal(butd.galu(x, c), x * (c > 0))
    y = x.copy()
    galu(y, c, out=y)                                           # in place
    np.testing.assert_array_equal(y, x * (c > 0))
    with pytest.raises(ValueError, match="does not match"):
        galu(x, c[..., :-1] if x.ndim > 1 else c[:-1])


# =========================================================================== CH == backprop
def test_ch_equals_autograd_linear_stack(rng):
    net = butd.fc_net((3, 4), n_classes=4, hidden=9, depth=3, rng=0)
    ch_vs_autograd(net, *_data(rng, (3, 4)))


def test_ch_equals_autograd_conv_strides_odd_sizes(rng):
    kw = dict(rng=np.random.default_rng(1))
    core = butd.BUTDSequential(
        butd.BUTDConv2d(2, 3, 3, stride=1, padding=1, **kw),
        butd.BUTDConv2d(3, 4, 3, stride=2, padding=1, **kw),            # 13x11 -> 7x6
        butd.BUTDConv2d(4, 5, (2, 3), stride=3, padding=(1, 0), dilation=(1, 2), **kw),
        butd.depthwise_pool(5, (2, 1), 1, **kw),
        butd.BUTDFlatten(),
        butd.BUTDLinear(5 * 2 * 1, 6, **kw)).infer_shapes((2, 13, 11))
    net = butd.BUTDNet(core, 4, rng=2)
    ch_vs_autograd(net, *_data(rng, (2, 13, 11)))


@pytest.mark.parametrize("stride,cin,cout", [(1, 3, 3), (2, 3, 4), (1, 2, 4)])
def test_ch_equals_autograd_basic_block(rng, stride, cin, cout):
    core = butd.BUTDSequential(butd.BUTDBasicBlock(cin, cout, stride=stride, bias=True, rng=3),
                               butd.BUTDFlatten()).infer_shapes((cin, 7, 9))
    assert (core[0].downsample is None) == (stride == 1 and cin == cout)
    ch_vs_autograd(butd.BUTDNet(core, 3, rng=4), *_data(rng, (cin, 7, 9), classes=3))


def test_ch_equals_autograd_small_resnet(rng):
    core = butd.resnet18_core((2, 9, 9), widths=(3, 4), blocks=(1, 2), rng=5)
    ch_vs_autograd(butd.BUTDNet(core, 4, rng=6), *_data(rng, (2, 9, 9)))


def test_ch_equals_autograd_simple_net(rng):
    core = butd.simple_core((1, 20, 20), channels=4, out_features=7, rng=7)
    ch_vs_autograd(butd.BUTDNet(core, 4, rng=8), *_data(rng, (1, 20, 20)))


@pytest.mark.parametrize("loss", ["bce", "mse"])
def test_output_gradients_bce_mse(rng, loss):
    logits = rng.standard_normal((5, 3))
    target = rng.random((5, 3)) if loss == "mse" else (rng.random((5, 3)) > 0.5).astype(np.float64)
    o_t = torch.tensor(logits, requires_grad=True)
    fn = TF.binary_cross_entropy_with_logits if loss == "bce" else TF.mse_loss
    value_t = fn(o_t, torch.from_numpy(target))
    value_t.backward()
    value, g = butd.loss_and_grad(loss, logits, target)
    assert_close("loss", value, value_t.item(), RTOL)
    assert_close("dL/dlogits", g, o_t.grad.numpy(), RTOL)
    # the original's per-sample rule, averaged over the batch by the update
    per_sample = (1 / (1 + np.exp(-logits)) - target) / 3 if loss == "bce" else 2 * (logits - target) / 3
    assert_close("per-sample / B", g, per_sample / 5, RTOL)
    with pytest.raises(ValueError, match="unknown loss"):
        butd.loss_and_grad("hinge", logits, target)


# =========================================================================== guided multi-task net
def _task_twin(net, x, y, tasks, ste=False):
    """torch: instruction TD pass (no grad into the core), gated BU pass, head, CE loss."""
    P = torch_params(net)
    vec = torch.zeros((len(tasks), net.task_vector_size), dtype=torch.float64)
    vec[torch.arange(len(tasks)), torch.from_numpy(tasks)] = 1
    gates = {}
    u_top = torch_td(net.task_head, vec, prefixed(P, "task_head"), detach=not ste)
    torch_td(net.core, u_top, prefixed(P, "core"), gates=gates, ste=ste, detach=True)
    if not ste:
        gates = {k: v.detach() for k, v in gates.items()}
    h = torch_bu(net.core, torch.from_numpy(x), prefixed(P, "core"), gates=gates)
    logits = TF.linear(h, P["head.weight"], P["head.bias"])
    if net.multi_decoders:
        logits = logits.reshape(len(x), net.n_tasks, net.n_classes)[torch.arange(len(x)), torch.from_numpy(tasks)]
    loss = TF.cross_entropy(logits, torch.from_numpy(y))
    loss.backward()
    return P, logits.detach().numpy()


@pytest.mark.parametrize("core_kind", ["fc", "simple", "resnet"])
def test_guided_forward_and_ch_match_torch(rng, core_kind):
    if core_kind == "fc":
        core, shape = butd.fc_core((1, 5, 5), hidden=12, depth=2, rng=10, dtype=np.float64), (1, 5, 5)
    elif core_kind == "simple":
        core, shape = butd.simple_core((1, 12, 12), channels=3, out_features=8, kernel_size=3, rng=10,
                                       dtype=np.float64), (1, 12, 12)
    else:
        core, shape = butd.resnet18_core((2, 7, 7), widths=(3, 4), blocks=(1, 1), rng=10, dtype=np.float64), (2, 7, 7)
    net = butd.TaskBUTDNet(core, n_classes=4, n_tasks=3, task_embedding=6, rng=11, dtype=np.float64)
    x, y = _data(rng, shape, batch=6)
    tasks = rng.integers(0, 3, 6)
    P, logits_t = _task_twin(net, x, y, tasks)
    logits = net(x, tasks)
    assert_close("guided logits", logits, logits_t, RTOL)
    _, g = butd.loss_and_grad("cross_entropy", logits, y)
    butd.counter_hebb_(net, g)
    check_grads(net, P)
    assert all(p.grad is None and not p.requires_grad for p in net.task_head.parameters())   # faithful: frozen
    net.zero_grad()
    net(x, tasks)
    net.backward(g)
    check_grads(net, P)


def test_multi_decoders_any_number_of_tasks(rng):
    core = butd.fc_core((6,), hidden=10, rng=12, dtype=np.float64)
    net = butd.TaskBUTDNet(core, n_classes=3, n_tasks=4, multi_decoders=True, rng=13, dtype=np.float64)
    x, y = _data(rng, (6,), batch=8, classes=3)
    tasks = np.arange(8) % 4
    P, logits_t = _task_twin(net, x, y, tasks)
    logits = net(x, tasks)
    assert logits.shape == (8, 3)
    assert_close("multi-decoder logits", logits, logits_t, RTOL)
    butd.counter_hebb_(net, butd.loss_and_grad("cross_entropy", logits, y)[1])
    check_grads(net, P)


@pytest.mark.parametrize("learning", ["bp", "ch"])
@pytest.mark.parametrize("core_kind", ["fc", "simple", "resnet"])
def test_train_task_head_ste_matches_torch(rng, learning, core_kind):
    if core_kind == "fc":
        core, shape = butd.fc_core((7,), hidden=9, depth=2, rng=20, dtype=np.float64), (7,)
    elif core_kind == "simple":
        core, shape = butd.simple_core((1, 10, 10), channels=3, out_features=6, kernel_size=3, padding=1, rng=20,
                                       dtype=np.float64), (1, 10, 10)
    else:
        core, shape = butd.resnet18_core((2, 6, 6), widths=(3, 4), blocks=(1, 1), rng=20, dtype=np.float64), (2, 6, 6)
    net = butd.TaskBUTDNet(core, n_classes=4, n_tasks=2, task_embedding=5, train_task_head=True, rng=21,
                           dtype=np.float64)
    x, y = _data(rng, shape, batch=6)
    tasks = rng.integers(0, 2, 6)
    P, logits_t = _task_twin(net, x, y, tasks, ste=True)
    logits = net(x, tasks)
    assert_close("logits", logits, logits_t, RTOL)
    g = butd.loss_and_grad("cross_entropy", logits, y)[1]
    if learning == "ch":
        butd.counter_hebb_(net, g)
    else:
        net.backward(g)
    check_grads(net, P)
    assert all(np.abs(p.grad).sum() > 0 for p in net.task_head.parameters())


# =========================================================================== top-down weights
def _small_conv_fc(top_down, seed=0):
    rng = np.random.default_rng(seed)
    core = butd.BUTDSequential(butd.BUTDConv2d(1, 3, 3, stride=2, top_down=top_down, rng=rng),
                               butd.BUTDFlatten(),
                               butd.BUTDLinear(3 * 3 * 3, 8, top_down=top_down, rng=rng)).infer_shapes((1, 7, 7))
    return butd.BUTDNet(core, 3, top_down=top_down, rng=rng, dtype=np.float64).to(np.float64)


def _weighted(net):
    return [m for m in net.modules() if isinstance(m, (butd.BUTDLinear, butd.BUTDConv2d))]


def _asymmetry(m):
    return m.weight.data - m._from_back(m.back_weight.data)


def _train_ch(net, opt, rng, steps=5):
    for _ in range(steps):
        x, y = _data(rng, (1, 7, 7), batch=4, classes=3)
        opt.zero_grad()
        butd.counter_hebb_(net, butd.loss_and_grad("cross_entropy", net(x), y)[1])
        opt.step()


@pytest.mark.parametrize("make_opt", [lambda p: optim.SGD(p, lr=0.05, momentum=0.9),
                                      lambda p: optim.Adam(p, lr=1e-2)], ids=["sgd-momentum", "adam"])
def test_separate_td_weights_asymmetry_is_invariant(rng, make_opt):
    net = _small_conv_fc("separate")
    layers = _weighted(net)
    before = [(_asymmetry(m).copy(), m.weight.data.copy()) for m in layers]
    _train_ch(net, make_opt(list(net.parameters())), rng)
    for m, (diff, w0) in zip(layers, before):
        assert np.abs(m.weight.data - w0).max() > 1e-3                 # W did learn ...
        np.testing.assert_allclose(_asymmetry(m), diff, rtol=0, atol=1e-12)   # ... but W - W̄ᵀ did not move


def test_symmetric_init_stays_symmetric_and_fa_freezes(rng):
    net = _small_conv_fc("symmetric")
    _train_ch(net, optim.Adam(list(net.parameters()), lr=1e-2), rng)
    for m in _weighted(net):
        np.testing.assert_allclose(_asymmetry(m), 0, atol=1e-12)
    fa = _small_conv_fc("fa")
    frozen = [m.back_weight.data.copy() for m in _weighted(fa)]
    w0 = [m.weight.data.copy() for m in _weighted(fa)]
    _train_ch(fa, optim.SGD(list(fa.parameters()), lr=0.1), rng)
    for m, b0, w in zip(_weighted(fa), frozen, w0):
        np.testing.assert_array_equal(m.back_weight.data, b0)
        assert m.back_weight.grad is None and not m.back_weight.requires_grad
        assert np.abs(m.weight.data - w).max() > 1e-4


def test_separate_td_weights_init_and_increment(rng):
    layer = butd.BUTDLinear(40, 30, top_down="separate", back_bias=True, rng=0, dtype=np.float64)
    assert layer.back_weight.shape == (40, 30) and layer.back_bias.shape == (40,)
    assert np.abs(layer.back_weight.data).max() <= np.sqrt(6 / 30)            # kaiming_uniform, a = 0
    assert np.abs(layer.back_weight.data).max() > 0.9 * np.sqrt(6 / 30)
    x, t = rng.standard_normal((4, 40)), rng.standard_normal((4, 30))
    layer(x)
    td = layer.back_forward(t)
    assert_close("TD pass", td, t @ layer.back_weight.data.T + layer.back_bias.data, RTOL)
    assert_close("bias blocked", layer.back_forward(t, bias_blocking=True), t @ layer.back_weight.data.T, RTOL)
    layer.counter_hebb_update()
    assert_close("dW", layer.weight.grad, t.T @ x, RTOL)
    assert_close("dW̄ = dWᵀ", layer.back_weight.grad, (t.T @ x).T, RTOL)
    assert_close("db̄", layer.back_bias.grad, x.mean(axis=0), RTOL)


# =========================================================================== TD shapes
@pytest.mark.parametrize("size", [(7, 7), (8, 9), (11, 6), (13, 12)])
@pytest.mark.parametrize("stride,kernel,padding,dilation", [(2, 3, 1, 1), (3, 3, 0, 1), (2, 2, 0, 1),
                                                            (3, 5, 2, 1), (2, 3, 1, 2), (3, 1, 0, 1)])
def test_td_transposed_conv_round_trips(rng, size, stride, kernel, padding, dilation):
    layer = butd.BUTDConv2d(2, 3, kernel, stride=stride, padding=padding, dilation=dilation, bias=False, rng=0,
                            dtype=np.float64)
    x = rng.standard_normal((2, 2) + size)
    y = layer(x)
    t = rng.standard_normal(y.shape)
    back = layer.back_forward(t)
    assert back.shape == x.shape
    # shared weights: the TD pass is the adjoint of the BU pass, <conv(x), t> = <x, TD(t)>
    assert np.vdot(y, t) == pytest.approx(np.vdot(x, back), rel=1e-12)
    ref = TF.conv_transpose2d(torch.from_numpy(t), torch.from_numpy(layer.weight.data), None, stride, padding,
                              layer.td_output_padding(y.shape[2:]), 1, dilation)
    assert_close("TD conv", back, ref.numpy(), RTOL)


def test_td_pass_before_any_bu_pass_uses_input_size(rng):
    layer = butd.BUTDConv2d(1, 2, 3, stride=2, input_size=(9, 8), rng=0)
    assert layer.back_forward(np.ones((1, 2, 4, 3), np.float32)).shape == (1, 1, 9, 8)
    with pytest.raises(RuntimeError, match="input size"):
        butd.BUTDConv2d(1, 2, 3, stride=2, rng=0).back_forward(np.ones((1, 2, 4, 3), np.float32))
    with pytest.raises(ValueError, match="cannot map back"):
        layer.back_forward(np.ones((1, 2, 6, 3), np.float32))


# =========================================================================== masks, errors
def test_task_masks_and_stats():
    core = butd.simple_core((1, 12, 12), channels=4, out_features=10, kernel_size=3, rng=30)
    net = butd.TaskBUTDNet(core, n_classes=10, n_tasks=3, rng=31)
    masks = butd.task_masks(net)
    assert list(masks) == ["0", "1", "2", "3", "5"]
    assert masks["0"].shape == (3, 4, 10, 10) and masks["5"].shape == (3, 10)
    rows = butd.mask_stats(masks)
    for row in rows:
        for k in range(3):
            assert 0 <= row[f"task {k} active %"] <= 100
        assert 0 <= row["overlap (cosine)"] <= 1
    same = butd.mask_stats({"a": np.array([[1, 1, 0], [1, 1, 0]], bool)})[0]
    assert same["overlap (cosine)"] == pytest.approx(1.0) and same["task 0 active %"] == pytest.approx(200 / 3)
    # the masks depend on the task only: a guided BU pass leaves exactly the masked units silent
    x = np.random.default_rng(0).random((2, 1, 12, 12)).astype(np.float32)
    net(x, np.array([1, 1]))
    h = net.core[0].td_neurons
    assert np.array_equal(h > 0, np.broadcast_to(masks["0"][1], h.shape))


def test_errors():
    layer = butd.BUTDLinear(3, 2, rng=0)
    with pytest.raises(RuntimeError, match=r"run a TD pass \(back_forward\) first"):
        layer(np.ones((1, 3), np.float32), lateral=True)
    with pytest.raises(RuntimeError, match="before forward"):
        butd.BUTDLinear(3, 2, rng=0).backward(np.ones((1, 2), np.float32))
    with pytest.raises(ValueError, match=r"expected input of shape \(B, 3\)"):
        layer(np.ones((1, 4), np.float32))
    with pytest.raises(ValueError, match="top-down input"):
        layer.back_forward(np.ones((1, 3), np.float32))
    layer.back_forward(np.ones((2, 2), np.float32))
    with pytest.raises(ValueError, match="td_neurons"):
        layer(np.ones((1, 3), np.float32), lateral=True)
    with pytest.raises(ValueError, match="device"):
        butd.BUTDLinear(3, 2, device="gpu")
    with pytest.raises(ValueError, match="top_down"):
        butd.BUTDLinear(3, 2, top_down="random")
    with pytest.raises(ValueError, match="string padding"):
        butd.BUTDConv2d(1, 1, 3, padding="same")
    net = butd.TaskBUTDNet(butd.fc_core((4,), hidden=3, rng=0), n_classes=2, n_tasks=2, rng=0)
    with pytest.raises(ValueError, match="task indices"):
        net(np.ones((2, 4), np.float32), np.array([0, 2]))
    assert net(np.ones((2, 4), np.float32), 1).shape == (2, 2)     # one task for the whole batch


# =========================================================================== bad input (issue 14)
def _guided(rng_seed=0, core=None):
    core = butd.fc_core((4,), hidden=5, rng=rng_seed) if core is None else core
    return butd.TaskBUTDNet(core, n_classes=3, n_tasks=2, task_embedding=4, rng=rng_seed + 1)


@pytest.mark.parametrize("relu", [False, True])
def test_galu_kernels_agree_with_the_reference_on_non_finite_values(relu):
    """The Numba kernel used to map NaN to 0 with relu=True (the reference propagates it)."""
    from nnlocal.methods.butd import reference

    x = np.array([np.nan, np.nan, np.inf, np.inf, -np.inf, -np.inf, 1.0, -1.0, 2.0, np.nan])
    c = np.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0, np.nan, np.nan, np.inf, -np.inf])
    want = reference.galu(x, c, relu)
    assert np.isnan(want[0]) and want[1] == 0 and want[3] == 0 and want[6] == 0
    for dtype in (np.float32, np.float64):
        np.testing.assert_array_equal(galu(x.astype(dtype), c.astype(dtype), relu), want.astype(dtype))


def test_guided_net_rejects_a_nan_image():
    """A guided TaskBUTDNet used to return finite logits for a NaN image."""
    net = _guided()
    x = np.ones((2, 4), np.float32)
    x[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"(?s)^TaskBUTDNet\(.*finite input"):
        net(x, np.array([0, 1]))
    x[1, 2] = np.inf
    with pytest.raises(ValueError, match=r"(?s)^TaskBUTDNet\(.*finite input"):
        net(x, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"(?s)^TaskBUTDNet\(.*finite task vectors"):
        net(np.ones((2, 4), np.float32), np.array([[1.0, np.nan], [0.0, 1.0]], np.float32))
    fc = butd.fc_net((4,), n_classes=3, hidden=5, rng=0)
    for call, name in [(lambda: fc(x), "BUTDNet"), (lambda: fc.core(x), "BUTDSequential"),
                       (lambda: fc.core[1](x), "BUTDLinear"),
                       (lambda: butd.BUTDConv2d(1, 2, 3, rng=0)(np.full((1, 1, 5, 5), np.nan, np.float32)),
                        "BUTDConv2d")]:
        with pytest.raises(ValueError, match=rf"(?s)^{name}\(.*finite input"):
            call()
    fc(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"(?s)^BUTDNet\(.*finite top-down input"):
        butd.counter_hebb_(fc, np.array([[np.nan, 0, 0], [0, 0, 0]], np.float32))
    with pytest.raises(ValueError, match=r"(?s)^BUTDLinear\(.*finite top-down input"):
        fc.head.back_forward(np.full((2, 3), np.inf, np.float32))


@pytest.mark.parametrize("make, name", [
    (lambda: _guided().__class__(butd.fc_core((4,), hidden=5, rng=0), n_classes=3, n_tasks=0), "TaskBUTDNet"),
    (lambda: butd.TaskBUTDNet(butd.fc_core((4,), hidden=5, rng=0), n_classes=0, n_tasks=2), "TaskBUTDNet"),
    (lambda: butd.TaskBUTDNet(butd.fc_core((4,), hidden=5, rng=0), 3, 2, task_embedding=0), "TaskBUTDNet"),
    (lambda: butd.BUTDNet(butd.fc_core((4,), hidden=5, rng=0), n_classes=-1), "BUTDNet"),
    (lambda: butd.BUTDLinear(0, 3), "BUTDLinear"),
    (lambda: butd.BUTDLinear(3.7, 2), "BUTDLinear"),
    (lambda: butd.BUTDLinear(3, "2"), "BUTDLinear"),
    (lambda: butd.BUTDConv2d(1, 0, 3), "BUTDConv2d"),
    (lambda: butd.fc_core((4,), hidden=5, depth=0), "fc_core"),
])
def test_bad_sizes_raise_naming_the_class(make, name):
    with pytest.raises(ValueError, match=rf"^{name}: .* must be an int >= 1"):
        make()


def test_input_shape_errors_talk_about_the_input():
    """A 1-D image batch used to be reported as '4 tasks for a batch of 6'."""
    net = _guided()
    with pytest.raises(ValueError, match=r"(?s)^TaskBUTDNet\(.*expected input of shape \(B, 4\) with B >= 1, "
                                         r"got \(6,\)"):
        net(np.ones(6, np.float32), np.array([0, 1, 0, 1]))
    with pytest.raises(ValueError, match=r"(?s)expected input of shape \(B, 4\) with B >= 1, got \(0, 4\)"):
        net(np.ones((0, 4), np.float32), 0)
    with pytest.raises(ValueError, match=r"^TaskBUTDNet: 4 tasks for a batch of 6 images"):
        net(np.ones((6, 4), np.float32), np.array([0, 1, 0, 1]))
    with pytest.raises(ValueError, match=r"^TaskBUTDNet: 3 tasks for a batch of 2 images"):
        net(np.ones((2, 4), np.float32), np.ones((3, 2), np.float32))
    with pytest.raises(ValueError, match=r"(?s)^BUTDNet\(.*expected input of shape \(B, 1, 4, 4\)"):
        butd.fc_net((1, 4, 4), n_classes=3, hidden=5, rng=0)(np.ones((2, 16), np.float32))


def _grads(net):
    return {n: p.grad.copy() for n, p in net.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("kind", ["fc", "simple", "guided"])
@pytest.mark.parametrize("learning", ["bp", "ch"])
def test_editing_inputs_in_place_after_forward_changes_no_gradient(rng, kind, learning):
    """The contract chosen for BU-TD: public entry points keep a copy of their input (cheap: one copy
    of the image batch per call). It used to change the first layer's gradients."""
    if kind == "fc":
        net, shape = butd.fc_net((1, 4, 4), n_classes=3, hidden=6, rng=0, dtype=np.float64), (1, 4, 4)
    elif kind == "simple":
        shape = (1, 8, 8)
        core = butd.simple_core(shape, channels=2, out_features=5, kernel_size=3, padding=1, rng=0, dtype=np.float64)
        net = butd.BUTDNet(core, 3, rng=1, dtype=np.float64)
    else:
        net, shape = _guided().to(np.float64), (4,)
    x = rng.random((5,) + shape)
    g = rng.standard_normal((5, 3))
    tasks = np.array([0, 1, 1, 0, 1])
    grads = []
    for edit in (False, True):
        net.zero_grad()
        x_in, g_in = x.copy(), g.copy()
        net(x_in, tasks) if kind == "guided" else net(x_in)
        if learning == "ch":
            net.back_forward(g_in, need_output=False)
        if edit:
            x_in[...] = -3.0
            g_in[...] = 5.0
        net.counter_hebb_update() if learning == "ch" else net.backward(g_in if not edit else g)
        grads.append(_grads(net))
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name in grads[0]:
        np.testing.assert_array_equal(grads[1][name], grads[0][name], err_msg=name)


def test_backward_needs_a_gradient_of_the_output_dtype(rng):
    """An int64 gradient used to be cast silently."""
    x = rng.random((2, 1, 6, 6)).astype(np.float32)
    block = butd.BUTDBasicBlock(1, 2, stride=2, rng=0)
    conv = butd.BUTDConv2d(1, 2, 3, rng=0)
    core = butd.simple_core((1, 6, 6), channels=2, out_features=4, kernel_size=3, padding=1, pools=((2, 2), (1, 1)),
                            rng=0)
    net = butd.BUTDNet(core, 3, rng=0)
    guided = _guided()
    cases = [(butd.BUTDLinear(36, 3, rng=0), x.reshape(2, 36)), (conv, x), (butd.BUTDFlatten(), x), (block, x),
             (core, x), (net, x), (guided, x[:, 0, 0, :4])]
    for module, inp in cases:
        out = module(inp, np.array([0, 1])) if module is guided else module(inp)
        for bad in (np.ones(out.shape, np.int64), np.ones(out.shape, np.float64)):
            with pytest.raises(ValueError, match=rf"(?s)^{type(module).__name__}\(.*backward: expected grad_output "
                                                 r"of dtype float32"):
                module.backward(bad)
        module.backward(np.ones(out.shape, np.float32))          # the right one passes


def test_guided_net_save_and_load_round_trip(tmp_path, rng):
    import nnlocal

    core = butd.simple_core((1, 8, 8), channels=2, out_features=5, kernel_size=3, padding=1, rng=0)
    net = butd.TaskBUTDNet(core, n_classes=3, n_tasks=2, task_embedding=4, top_down="separate", rng=1)
    x, tasks = rng.random((4, 1, 8, 8)).astype(np.float32), np.array([0, 1, 1, 0])
    butd.counter_hebb_(net, butd.loss_and_grad("cross_entropy", net(x, tasks), np.array([0, 1, 2, 0]))[1])
    optim.SGD(net.parameters(), lr=0.5).step()
    nnlocal.save(net, tmp_path / "net.npz")
    fresh = butd.TaskBUTDNet(butd.simple_core((1, 8, 8), channels=2, out_features=5, kernel_size=3, padding=1, rng=5),
                             n_classes=3, n_tasks=2, task_embedding=4, top_down="separate", rng=6)
    nnlocal.load(fresh, tmp_path / "net.npz")
    np.testing.assert_array_equal(fresh(x, tasks), net(x, tasks))
