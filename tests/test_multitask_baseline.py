"""The hard-parameter-sharing multi-task baseline (butd.HardSharingNet) against a torch twin.

The twin is written from the formula in the baselines module: the simple core as plain torch
convolutions with ReLU after every layer, one linear head per task, heads stacked on axis 1.
Same weights, float64, random shapes, rtol 1e-7 through tests/torch_twin.py.
"""
import numpy as np
import pytest

from nnlocal import utils
from nnlocal.methods import butd
from nnlocal.methods.butd.baselines import HardSharingNet, multitask_loss_and_grad
from tests.torch_twin import assert_close, compare_with_torch

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _random_net(seed):
    """A simple core of random width, kernel, padding and image size, with 1-4 tasks."""
    r = np.random.default_rng(seed)
    k = int(r.choice([3, 5]))
    pad = int(r.integers(0, 2))
    size = int(r.integers(20, 27))
    chans = int(r.integers(1, 3))
    core = butd.simple_core((chans, size, size), channels=int(r.integers(2, 7)), out_features=int(r.integers(3, 9)),
                            kernel_size=k, padding=pad, rng=seed, dtype=np.float64)
    net = HardSharingNet(core, n_classes=int(r.integers(2, 6)), n_tasks=int(r.integers(1, 5)), rng=seed + 1,
                         dtype=np.float64)
    x = r.standard_normal((int(r.integers(1, 6)), chans, size, size))
    return net, x


def _torch_twin(net):
    convs = [m for m in net.core if isinstance(m, butd.BUTDConv2d)]
    linear = next(m for m in net.core if isinstance(m, butd.BUTDLinear))
    names = {id(m): name for name, m in net.core.named_children()}

    def twin(x, p):
        h = x
        for m in convs:
            pre = f"core.{names[id(m)]}"
            h = torch.relu(TF.conv2d(h, p[pre + ".weight"], p[pre + ".bias"], m.stride, m.padding, m.dilation,
                                     m.groups))
        pre = f"core.{names[id(linear)]}"
        h = torch.relu(TF.linear(h.flatten(1), p[pre + ".weight"], p[pre + ".bias"]))
        return torch.stack([TF.linear(h, p[f"head{k}.weight"], p[f"head{k}.bias"]) for k in range(net.n_tasks)],
                           dim=1)
    return twin


@pytest.mark.parametrize("seed", range(6))
def test_forward_and_backward_match_torch(seed):
    net, x = _random_net(seed)
    out = compare_with_torch(net, _torch_twin(net), x)
    assert out["y"].shape == (len(x), net.n_tasks, net.n_classes)
    assert set(out["grads"]) == {n for n, _ in net.named_parameters()}     # every parameter compared


@pytest.mark.parametrize("seed", range(3))
def test_summed_loss_matches_torch(seed):
    r = np.random.default_rng(seed)
    b, t, c = (int(v) for v in r.integers(1, 7, size=3))
    c += 1
    logits = r.standard_normal((b, t, c))
    y = r.integers(0, c, size=(b, t))
    value, grad = multitask_loss_and_grad(logits, y)
    lt = torch.tensor(logits, requires_grad=True)
    ref = sum(TF.cross_entropy(lt[:, k], torch.tensor(y[:, k])) for k in range(t))
    ref.backward()
    assert_close("summed loss", value, ref.item())
    assert_close("dL/dlogits", grad, lt.grad.numpy())


def test_training_step_lowers_the_summed_loss():
    from nnlocal import optim

    net, x = _random_net(11)
    y = np.random.default_rng(0).integers(0, net.n_classes, size=(len(x), net.n_tasks))
    opt = optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(100):
        opt.zero_grad()
        value, g = multitask_loss_and_grad(net(x), y)
        net.backward(g)
        opt.step()
        losses.append(value)
    assert losses[-1] < 0.5 * losses[0]


def test_parameter_budget_of_the_simple_net():
    """The documented counts: 41,394 (core) + 2 x 510 (heads) = 42,414 for 28x28 images; the guided net
    with the same core trains 41,904 and keeps 2,600 frozen in its task head."""
    core = butd.simple_core((1, 28, 28), rng=0)
    net = HardSharingNet(core, 10, 2, rng=1)
    assert sum(p.data.size for p in net.core.parameters()) == 41_394
    assert sum(p.data.size for p in net.parameters()) == 42_414
    guided = butd.TaskBUTDNet(butd.simple_core((1, 28, 28), rng=0), 10, n_tasks=2, task_embedding=50, rng=1)
    assert sum(p.data.size for p in guided.parameters() if p.requires_grad) == 41_904
    assert sum(p.data.size for p in guided.parameters() if not p.requires_grad) == 2_600


def test_save_and_load_round_trip(tmp_path):
    net, x = _random_net(3)
    utils.save(net, tmp_path / "net.npz")
    other, _ = _random_net(3)
    for p in other.parameters():
        p.data[...] = 0
    utils.load(other, tmp_path / "net.npz")
    np.testing.assert_array_equal(other(x), net(x))


def test_bad_input_is_an_error():
    net, x = _random_net(0)
    with pytest.raises(ValueError, match="HardSharingNet"):
        net(np.full_like(x, np.nan))
    y = net(x)
    with pytest.raises(ValueError, match="HardSharingNet"):
        net.backward(y[..., :-1])                       # a gradient with one class too few
    with pytest.raises(ValueError, match="core.out_features"):
        HardSharingNet(butd.BUTDSequential(butd.BUTDFlatten()), 10)
    with pytest.raises(ValueError, match="targets"):
        multitask_loss_and_grad(y, np.zeros((len(x), net.n_tasks + 1), dtype=np.int64))
    with pytest.raises(ValueError, match="logits"):
        multitask_loss_and_grad(y[:, 0], np.zeros(len(x), dtype=np.int64))
