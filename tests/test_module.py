"""The module protocol: registration, traversal, state dicts, dtype conversion, repr; each checked
against what torch does for the equivalent module where torch has an answer."""
import numpy as np
import pytest

from nnlocal import nn

torch = pytest.importorskip("torch")


# ----------------------------------------------------------------------------- fixtures: twin trees

class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 5, rng=0)
        self.act = nn.ReLU()
        self.inner = nn.Sequential(nn.Linear(5, 5, rng=1), nn.Tanh(), nn.Linear(5, 3, bias=False, rng=2))
        self.register_buffer("running", np.zeros(3, dtype=np.float32))
        self.register_buffer("unused", None)

    def forward(self, x):
        return self.inner(self.act(self.fc1(x)))

    def backward(self, g):
        return self.fc1.backward(self.act.backward(self.inner.backward(g)))


class TorchBlock(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(4, 5)
        self.act = torch.nn.ReLU()
        self.inner = torch.nn.Sequential(torch.nn.Linear(5, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3, bias=False))
        self.register_buffer("running", torch.zeros(3))
        self.register_buffer("unused", None)


def _net():
    return nn.Sequential(Block(), nn.Dropout(0.2, rng=0), nn.Linear(3, 2, rng=3))


def _torch_net():
    return torch.nn.Sequential(TorchBlock(), torch.nn.Dropout(0.2), torch.nn.Linear(3, 2))


# ----------------------------------------------------------------------------- traversal

def test_named_parameters_match_torch_names_and_shapes():
    ours = [(n, p.shape) for n, p in _net().named_parameters()]
    theirs = [(n, tuple(p.shape)) for n, p in _torch_net().named_parameters()]
    assert ours == theirs
    assert ours[0][0] == "0.fc1.weight" and ("0.inner.2.weight", (3, 5)) in ours


def test_named_modules_and_modules_match_torch():
    ours = [(n, type(m).__name__) for n, m in _net().named_modules()]
    theirs = [(n, type(m).__name__.replace("TorchBlock", "Block")) for n, m in _torch_net().named_modules()]
    assert ours == theirs
    assert len(list(_net().modules())) == len(theirs)


def test_shared_parameters_and_modules_appear_once():
    shared = nn.Linear(3, 3, rng=0)
    net = nn.Sequential(shared, nn.ReLU(), shared)
    tied = nn.Linear(3, 3, rng=1)
    tied.weight = shared.weight  # a parameter shared between two different modules
    net.append(tied)
    t_shared = torch.nn.Linear(3, 3)
    t_tied = torch.nn.Linear(3, 3)
    t_tied.weight = t_shared.weight
    t_net = torch.nn.Sequential(t_shared, torch.nn.ReLU(), t_shared, t_tied)

    assert [n for n, _ in net.named_parameters()] == [n for n, _ in t_net.named_parameters()]
    assert len(list(net.parameters())) == 3  # shared.weight, shared.bias, tied.bias
    assert len(list(net.modules())) == len(list(t_net.modules())) == 4
    # state_dict, like torch's, lists a shared tensor under every name it is reachable by
    assert list(net.state_dict()) == list(t_net.state_dict())
    net.load_state_dict(net.state_dict())  # and such a state dict loads back


def test_parameter_registration_and_reassignment():
    m = nn.Linear(2, 2, rng=0)
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]
    m.bias = None
    assert [n for n, _ in m.named_parameters()] == ["weight"]
    m.extra = nn.Parameter(np.zeros(3))
    assert [n for n, _ in m.named_parameters()] == ["weight", "extra"]
    del m.extra
    assert [n for n, _ in m.named_parameters()] == ["weight"]


def test_module_must_call_super_init():
    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.zeros(2))

    with pytest.raises(AttributeError, match=r"super\(\).__init__\(\)"):
        Broken()


def test_sequential_container_protocol():
    a, b, c = nn.Linear(2, 3, rng=0), nn.ReLU(), nn.Linear(3, 1, rng=1)
    s = nn.Sequential(a, b)
    s.append(c)
    assert len(s) == 3 and s[0] is a and s[-1] is c and list(s) == [a, b, c]
    assert list(s[1:]) == [b, c]
    with pytest.raises(TypeError, match="argument 1 is a int"):
        nn.Sequential(a, 3)


# ----------------------------------------------------------------------------- grads and modes

def test_zero_grad_clears_every_gradient():
    net = _net()
    y = net(np.ones((2, 4), dtype=np.float32))
    net.backward(np.ones_like(y))
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_train_eval_propagate_to_every_submodule():
    net = _net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    x = np.ones((4, 4), dtype=np.float32)
    np.testing.assert_array_equal(net(x), net(x))  # Dropout is off in eval
    net.train()
    assert all(m.training for m in net.modules())
    net[0].eval()
    assert not net[0].inner[1].training and net[1].training


def test_sequential_backward_before_forward_raises():
    with pytest.raises(RuntimeError, match="before forward"):
        _net().backward(np.ones((2, 2)))


# ----------------------------------------------------------------------------- state dict

def test_state_dict_keys_match_torch_including_buffers():
    sd = _net().state_dict()
    assert list(sd) == list(_torch_net().state_dict())
    assert "0.running" in sd and "0.unused" not in sd  # None buffers are left out, as in torch


def test_state_dict_is_a_copy():
    net = _net()
    sd = net.state_dict()
    before = net[0].fc1.weight.data.copy()
    sd["0.fc1.weight"][...] = 123.0
    sd["0.running"][...] = 7.0
    np.testing.assert_array_equal(net[0].fc1.weight.data, before)
    assert not net[0].running.any()
    net[0].fc1.weight.data += 1.0
    assert np.all(sd["0.fc1.weight"] == 123.0)


def test_torch_state_dict_loads_into_ours_and_back():
    t_net = _torch_net()
    with torch.no_grad():
        t_net[0].running.uniform_()
    ours = _net().load_state_dict({k: v.numpy() for k, v in t_net.state_dict().items()})
    for k, v in ours.state_dict().items():
        np.testing.assert_array_equal(v, t_net.state_dict()[k].numpy())
    t_net2 = _torch_net()
    t_net2.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})


def test_load_state_dict_round_trip_and_buffers():
    src, dst = _net(), _net()
    for p in src.parameters():
        p.data += 1.0
    src[0].running = np.arange(3, dtype=np.float32)  # re-assigning a buffer keeps it a buffer
    dst.load_state_dict(src.state_dict())
    for (n, a), (_, b) in zip(src.state_dict().items(), dst.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=n)
    np.testing.assert_array_equal(dst[0].running, [0, 1, 2])


def test_load_state_dict_keeps_dtype_and_parameter_identity():
    net = nn.Linear(3, 2, rng=0)
    w = net.weight
    net.load_state_dict({"weight": np.ones((2, 3), dtype=np.float64), "bias": np.zeros(2)})
    assert net.weight is w and w.data.dtype == np.float32 and np.all(w.data == 1)


@pytest.mark.parametrize("mutate,exc,pattern", [
    (lambda sd: sd.pop("0.inner.2.weight"), KeyError, "missing key '0.inner.2.weight'"),
    (lambda sd: sd.update({"0.inner.9.weight": np.zeros(1)}), KeyError, "unexpected key '0.inner.9.weight'"),
    (lambda sd: sd.update({"2.bias": np.zeros(3)}), ValueError, r"'2.bias' has shape \(3,\).*\(2,\)"),
    (lambda sd: sd.update({"0.running": np.zeros(4)}), ValueError, r"'0.running' has shape \(4,\)"),
])
def test_load_state_dict_strict_errors_name_the_key(mutate, exc, pattern):
    net = _net()
    before = net.state_dict()
    sd = _net().state_dict()
    for v in sd.values():
        v += 5.0
    mutate(sd)
    with pytest.raises(exc, match=pattern):
        net.load_state_dict(sd)
    # a failed load changes nothing
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


def test_load_state_dict_non_strict():
    net = _net()
    sd = {"2.weight": np.full((2, 3), 0.5), "not.a.key": np.zeros(1)}
    net.load_state_dict(sd, strict=False)
    assert np.all(net[2].weight.data == 0.5)
    with pytest.raises(ValueError, match="'2.weight'"):
        net.load_state_dict({"2.weight": np.zeros((3, 2))}, strict=False)  # shapes are always checked


# ----------------------------------------------------------------------------- dtype

def test_to_float64_converts_params_grads_and_buffers():
    net = _net()
    y = net(np.ones((2, 4), dtype=np.float32))
    net.backward(np.ones_like(y))
    assert net.to(np.float64) is net
    for n, p in net.named_parameters():
        assert p.data.dtype == np.float64 and p.grad.dtype == np.float64, n
    assert net[0].running.dtype == np.float64
    assert net(np.ones((2, 4))).dtype == np.float64
    assert net(np.ones((2, 4), dtype=np.float32)).dtype == np.float32  # outputs follow the input
    net.to("float32")
    assert all(p.data.dtype == np.float32 for p in net.parameters())
    with pytest.raises(ValueError, match="float dtype"):
        net.to(np.int32)


def test_deepcopy_gives_an_independent_module():
    import copy

    net = _net().eval()
    clone = copy.deepcopy(net)
    x = np.ones((2, 4), dtype=np.float32)
    np.testing.assert_array_equal(clone(x), net(x))
    clone[2].weight.data += 1.0
    assert not np.array_equal(clone(x), net(x))
    assert [n for n, _ in clone.named_parameters()] == [n for n, _ in net.named_parameters()]


def test_default_dtype_is_float32():
    assert nn.Linear(3, 2).weight.data.dtype == np.float32
    assert nn.Linear(3, 2, dtype=np.float64).weight.data.dtype == np.float64


# ----------------------------------------------------------------------------- parameter

def test_parameter_accumulate_grad():
    p = nn.Parameter(np.zeros((2, 3), dtype=np.float32))
    g = np.ones((2, 3))
    p.accumulate_grad(g)
    assert p.grad.dtype == np.float32 and p.grad is not g
    p.accumulate_grad(g)
    assert np.all(p.grad == 2)
    g[...] = 100  # the stored gradient does not alias the caller's array
    assert np.all(p.grad == 2)
    with pytest.raises(ValueError, match=r"gradient of shape \(3, 2\)"):
        p.accumulate_grad(np.ones((3, 2)))
    frozen = nn.Parameter(np.zeros(2), requires_grad=False)
    frozen.accumulate_grad(np.ones(2))
    assert frozen.grad is None


# ----------------------------------------------------------------------------- repr

def test_repr_matches_torch():
    ours = nn.Sequential(nn.Linear(3, 4, rng=0), nn.ReLU(),
                         nn.Sequential(nn.Linear(4, 2, bias=False, rng=0), nn.Sigmoid()),
                         nn.Softmax(dim=1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Identity(), nn.Tanh(),
                         nn.Hardsigmoid(), nn.LogSoftmax(dim=-1))
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
                                 torch.nn.Sequential(torch.nn.Linear(4, 2, bias=False), torch.nn.Sigmoid()),
                                 torch.nn.Softmax(dim=1), torch.nn.LeakyReLU(0.2), torch.nn.Flatten(),
                                 torch.nn.Identity(), torch.nn.Tanh(), torch.nn.Hardsigmoid(),
                                 torch.nn.LogSoftmax(dim=-1))
    assert repr(ours) == repr(theirs)


def test_repr_of_custom_module_matches_torch():
    assert repr(_net()).replace("Dropout(p=0.2)", "Dropout(p=0.2, inplace=False)") == \
        repr(_torch_net()).replace("TorchBlock", "Block")


def test_sequential_from_an_ordered_dict_keeps_the_names():
    from collections import OrderedDict

    seq = nn.Sequential(OrderedDict(first=nn.Linear(3, 4, rng=0), act=nn.ReLU(), last=nn.Linear(4, 2, rng=1)))
    assert [name for name, _ in seq.named_parameters()] == ["first.weight", "first.bias", "last.weight", "last.bias"]
    x = np.random.default_rng(0).standard_normal((5, 3))
    y = seq(x)
    expected = np.maximum(x @ seq.first.weight.data.T + seq.first.bias.data, 0) @ seq.last.weight.data.T
    np.testing.assert_allclose(y, expected + seq.last.bias.data, rtol=1e-6)
    assert seq.backward(np.ones_like(y)).shape == x.shape
