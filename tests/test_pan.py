"""PAN (Perceptron Activation Network) against the original, written literally in torch.

The torch twin below is the original ``Perceptron`` module as the notebooks wrote it: the teacher's
``(B, m·n)`` GEMM over the batch, the batch sum as a product with ``ones(B)``, the ``torch.gt``
mask and the masked linear map (float64 instead of ``.float()``). The extensions get twins of the
same style: per-sample gates, and the straight-through teacher written with the detach trick
``o + (Th - Th.detach())``.
"""
import math

import numpy as np
import pytest

from nnlocal import optim
from nnlocal.methods.pan import cpu as K
from nnlocal.methods.pan import reference as R
from nnlocal.methods import pan
from tests.torch_twin import assert_close, compare_with_torch

torch = pytest.importorskip("torch")
F = torch.nn.functional


# ----------------------------------------------------------------------------- the torch twins
class TorchPerceptron(torch.nn.Module):
    """The original ``Perceptron`` (plus the two extensions, switched by ``gate`` and ``ste``)."""

    def __init__(self, n, m, threshold=0.0, gate="batch", ste=False):
        super().__init__()
        P = torch.nn.Parameter
        self.weight = P(torch.zeros(m, n, dtype=torch.float64))                # SW
        self.bias = P(torch.zeros(m, dtype=torch.float64))                     # Sb
        self.teacher_weight = P(torch.zeros(m * n, n, dtype=torch.float64))    # TW (requires_grad, as the original)
        self.teacher_bias = P(torch.zeros(m * n, dtype=torch.float64))         # Tb
        self.min_val = torch.tensor(threshold, dtype=torch.float64)
        self.gate, self.ste, self.m, self.n = gate, ste, m, n

    def forward(self, x):
        Tz = F.linear(x, self.teacher_weight, self.teacher_bias)              # (B, m·n)
        if self.gate == "batch":
            Th = torch.matmul(Tz.t(), torch.ones(x.size()[0], dtype=x.dtype))  # batch sum
            o = torch.gt(Th, self.min_val).to(x.dtype)
            if self.ste:
                o = o + (Th - Th.detach())
            W = torch.mul(o.view(self.m, self.n), self.weight)
            return F.linear(x, W, self.bias)
        o = torch.gt(Tz, self.min_val).to(x.dtype)                            # per-sample gates
        if self.ste:
            o = o + (Tz - Tz.detach())
        W = o.view(-1, self.m, self.n) * self.weight
        return torch.einsum("bji,bi->bj", W, x) + self.bias


def _layer(n, m, seed=0, **kw):
    return pan.PerceptronActivation(n, m, rng=seed, **kw)


SHAPES = [(7, 5, 1), (7, 5, 9), (33, 17, 16), (64, 30, 64),
          tuple(int(v) for v in np.random.default_rng(2024).integers((2, 2, 1), (60, 30, 40)))]   # (n, m, B) drawn


# ----------------------------------------------------------------------------- faithful mode
@pytest.mark.parametrize("n,m,B", SHAPES)
@pytest.mark.parametrize("init", ["notebook", "readme"])
def test_batch_gate_matches_original(n, m, B, init, rng):
    layer = _layer(n, m, seed=n * B, init=init)
    twin = TorchPerceptron(n, m)
    x = rng.standard_normal((B, n))
    out = compare_with_torch(layer, twin, x)
    # the teacher gets no gradient: torch leaves .grad None, nnlocal has requires_grad False and no grad
    assert twin.teacher_weight.grad is None and twin.teacher_bias.grad is None
    assert not layer.teacher_weight.requires_grad and not layer.teacher_bias.requires_grad
    assert layer.teacher_weight.grad is None and layer.teacher_bias.grad is None
    assert set(out["grads"]) == {"weight", "bias"}
    frac = layer.gate_stats()["open_fraction"]
    assert 0.0 < frac < 1.0


def test_fast_gate_is_the_literal_batch_sum(rng):
    """Th = TW·Σx + B·Tb gives the same mask as the (B, m·n) GEMM summed over the batch."""
    layer = _layer(40, 12, seed=3).to(np.float64)
    x = rng.standard_normal((50, 40))
    tw, tb = layer.teacher_weight.data, layer.teacher_bias.data
    literal = ((x @ tw.T + tb).sum(axis=0) > 0).reshape(12, 40)
    np.testing.assert_array_equal(layer._gate(x), literal)


def test_nonzero_threshold_and_float32(rng):
    layer = _layer(20, 6, seed=1, threshold=3.5)
    x = rng.standard_normal((8, 20)).astype(np.float32)
    y = layer(x)
    assert y.dtype == np.float32
    tw, tb = layer.teacher_weight.data.astype(np.float64), layer.teacher_bias.data.astype(np.float64)
    th = tw @ x.astype(np.float64).sum(0) + 8 * tb
    safe = np.abs(th - 3.5) > 1e-3                     # float32 rounding can only flip gates at the margin
    np.testing.assert_array_equal(layer._gate(x).ravel()[safe], (th > 3.5)[safe])


def test_frozen_teacher_is_skipped_by_sgd(rng):
    layer = _layer(10, 4, seed=2)
    tw0, sw0 = layer.teacher_weight.data.copy(), layer.weight.data.copy()
    opt = optim.SGD(layer.parameters(), lr=0.1)
    y = layer(rng.standard_normal((5, 10)).astype(np.float32))
    layer.backward(np.ones_like(y))
    opt.step()
    np.testing.assert_array_equal(layer.teacher_weight.data, tw0)
    assert not np.array_equal(layer.weight.data, sw0)


def test_evaluation_depends_on_the_batch(rng):
    """Faithful: a sample's output changes with the rest of its batch (documented behaviour)."""
    layer = _layer(16, 8, seed=4).to(np.float64)
    x = rng.standard_normal((32, 16))
    alone = np.concatenate([layer(x[i:i + 1]) for i in range(4)])
    together = layer(x)[:4]
    assert not np.allclose(alone, together)


def test_batch_of_one_equals_per_sample_gate(rng):
    layer = _layer(16, 8, seed=5).to(np.float64)
    x = rng.standard_normal((6, 16))
    per_sample = [layer(x[i:i + 1]) for i in range(6)]
    layer.gate = "sample"
    assert_close("per-sample gate", layer(x), np.concatenate(per_sample), rtol=1e-12)


# ----------------------------------------------------------------------------- extensions
@pytest.mark.parametrize("n,m,B", SHAPES[:3])
def test_sample_gate_matches_twin(n, m, B, rng):
    layer = _layer(n, m, seed=B, gate="sample")
    twin = TorchPerceptron(n, m, gate="sample")
    compare_with_torch(layer, twin, rng.standard_normal((B, n)))
    assert twin.teacher_weight.grad is None and layer.teacher_weight.grad is None
    stats = layer.gate_stats()
    assert stats["open_per_sample"].shape == (B,)


@pytest.mark.parametrize("gate", ["batch", "sample"])
@pytest.mark.parametrize("n,m,B", [(7, 5, 1), (9, 4, 6), (24, 10, 16)])
def test_ste_teacher_matches_detach_trick(gate, n, m, B, rng):
    layer = _layer(n, m, seed=B + n, gate=gate, teacher="ste", threshold=0.25)
    twin = TorchPerceptron(n, m, threshold=0.25, gate=gate, ste=True)
    out = compare_with_torch(layer, twin, rng.standard_normal((B, n)))
    assert set(out["grads"]) == {"weight", "bias", "teacher_weight", "teacher_bias"}
    assert layer.teacher_weight.requires_grad


@pytest.mark.parametrize("gate", ["batch", "sample"])
def test_ste_accumulates_like_torch(gate, rng):
    """Two backward passes add up (the in-place accumulation paths of the teacher gradient)."""
    layer = _layer(6, 3, seed=9, gate=gate, teacher="ste").to(np.float64)
    x = rng.standard_normal((4, 6))
    g = rng.standard_normal((4, 3))
    layer(x)
    layer.backward(g)
    first = layer.teacher_weight.grad.copy()
    layer(x)
    layer.backward(g)
    assert_close("accumulated dTW", layer.teacher_weight.grad, 2 * first, rtol=1e-12)
    assert np.any(first != 0)


def test_open_gate_is_linear(rng):
    layer = _layer(10, 4, seed=1, gate="open").to(np.float64)
    x = rng.standard_normal((3, 10))
    assert_close("open gate", layer(x), x @ layer.weight.data.T + layer.bias.data, rtol=1e-12)
    assert layer.gate_stats()["open_fraction"] == 1.0
    compare_with_torch(layer, lambda x, p: F.linear(x, p["weight"], p["bias"]), x)


@pytest.mark.parametrize("threshold,expect", [(-math.inf, 1.0), (math.inf, 0.0)])
def test_infinite_thresholds(threshold, expect, rng):
    layer = _layer(8, 3, seed=0, threshold=threshold)
    x = rng.standard_normal((4, 8)).astype(np.float32)
    y = layer(x)
    assert layer.gate_stats()["open_fraction"] == expect
    if expect == 0.0:
        np.testing.assert_allclose(y, np.broadcast_to(layer.bias.data, y.shape))


def test_switching_teacher_mode_sets_requires_grad():
    layer = _layer(5, 2, seed=0)
    layer.teacher = "ste"
    assert layer.teacher_weight.requires_grad and layer.teacher_bias.requires_grad
    layer.teacher = "frozen"
    assert not layer.teacher_weight.requires_grad


# ----------------------------------------------------------------------------- init, errors
def test_init_and_reproducibility():
    a, b = _layer(6, 4, seed=11), _layer(6, 4, seed=11)
    for (na, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(pa.data, pb.data, err_msg=na)
    assert a.teacher_weight.shape == (24, 6) and a.teacher_bias.shape == (24,)
    assert a.weight.dtype == np.float32
    r = _layer(6, 4, seed=11, init="readme")
    np.testing.assert_array_equal(r.bias.data, 1.0)
    np.testing.assert_array_equal(r.teacher_bias.data, 1.0)
    assert np.std(r.teacher_weight.data) > 0.5       # N(0, 1)


def test_bad_input():
    layer = _layer(6, 4, seed=0)
    with pytest.raises(ValueError, match=r"\(B, 6\)"):
        layer(np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError):
        layer(np.zeros((3, 2, 3), np.float32))
    with pytest.raises(ValueError):
        layer(np.zeros((0, 6), np.float32))
    with pytest.raises(ValueError):
        layer(np.zeros((3, 6), np.int64))
    with pytest.raises(RuntimeError, match="forward"):
        _layer(6, 4, seed=0).backward(np.zeros((3, 4)))
    with pytest.raises(RuntimeError, match="forward"):
        _layer(6, 4, seed=0).gate_stats()
    layer(np.zeros((3, 6), np.float32))
    with pytest.raises(ValueError, match="grad_output"):
        layer.backward(np.zeros((3, 5), np.float32))


# ----------------------------------------------------------------------------- reliability (issue #14)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("gate", ["batch", "sample", "open"])
def test_non_finite_input_is_an_error(gate, bad, rng):
    """Before: the per-sample gate returned exactly the bias for a NaN row, and with the batch gate
    one NaN sample closed every gate of the batch (the other samples output only the bias)."""
    layer = _layer(8, 3, seed=0, gate=gate)
    x = rng.standard_normal((4, 8)).astype(np.float32)
    x[2, 5] = bad
    with pytest.raises(ValueError, match=r"PerceptronActivation\(in_features=8.*finite"):
        layer(x)
    net = pan.tron(1, 8, 10, gate=gate, rng=0)
    with pytest.raises(ValueError, match="finite"):
        net.tron1(rng.standard_normal((2, 64)).astype(np.float32) * np.array([1, bad], np.float32)[:, None])


@pytest.mark.parametrize("gate,teacher", [("batch", "frozen"), ("sample", "frozen"), ("batch", "ste"),
                                          ("sample", "ste"), ("open", "frozen")])
def test_editing_x_between_forward_and_backward_changes_nothing(gate, teacher, rng):
    """forward keeps its own copy of x (B×n floats, cheap next to the read of TW): the caller may
    overwrite x before backward. Before, the weight gradients were computed from the edited x."""
    x = rng.standard_normal((5, 9))
    g = rng.standard_normal((5, 4))
    grads = []
    for edit in (False, True):
        layer = _layer(9, 4, seed=1, gate=gate, teacher=teacher).to(np.float64)
        xb = x.copy()
        layer(xb)
        if edit:
            xb[...] = 7.0
        gx = layer.backward(g)
        grads.append([gx] + [p.grad for p in layer.parameters() if p.grad is not None])
    assert len(grads[0]) == len(grads[1]) >= 3
    for a, b in zip(*grads):
        np.testing.assert_array_equal(a, b)


def test_backward_checks_grad_output(rng):
    """Before, an int64 grad_output was silently cast to the layer's dtype."""
    layer = _layer(6, 4, seed=0)
    layer(rng.standard_normal((3, 6)).astype(np.float32))
    for bad in (np.ones((3, 4), np.int64), np.ones((3, 4), np.float64), np.ones((3, 4), np.complex64)):
        with pytest.raises(ValueError, match=rf"PerceptronActivation\(in_features=6.*dtype float32.*got {bad.dtype}"):
            layer.backward(bad)
    for shape in [(3, 5), (4, 4), (12,), (3, 4, 1)]:
        with pytest.raises(ValueError, match=r"PerceptronActivation\(in_features=6.*grad_output of shape \(3, 4\)"):
            layer.backward(np.ones(shape, np.float32))
    with pytest.raises(TypeError, match="PerceptronActivation"):
        layer.backward([[0.0] * 4] * 3)
    assert layer.backward(np.ones((3, 4), np.float32)).dtype == np.float32


def test_state_round_trips_through_save_and_load(tmp_path, rng):
    """The teacher, θ and the gate/teacher modes are state. Before, only the four arrays were saved
    and a fresh layer kept its own gate, teacher mode and threshold."""
    import nnlocal

    trained = _layer(6, 4, seed=0, gate="sample", teacher="ste", threshold=0.25, init="readme")
    opt = optim.SGD(trained.parameters(), lr=0.1)
    tw0 = trained.teacher_weight.data.copy()
    x = rng.standard_normal((5, 6)).astype(np.float32)
    trained.backward(np.ones_like(trained(x)))
    opt.step()
    assert not np.array_equal(trained.teacher_weight.data, tw0)          # the STE teacher trained
    nnlocal.save(trained, tmp_path / "pan.npz")
    fresh = nnlocal.load(_layer(6, 4, seed=9), tmp_path / "pan.npz")
    assert (fresh.gate, fresh.teacher, fresh.threshold) == ("sample", "ste", 0.25)
    assert fresh.teacher_weight.requires_grad and fresh.teacher_bias.requires_grad
    for (name, a), (_, b) in zip(trained.state_dict().items(), fresh.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    np.testing.assert_array_equal(fresh(x), trained(x))

    net = pan.tron(1, 8, 10, rng=0)
    net.tron2.gate = "open"
    nnlocal.save(net, tmp_path / "tron.npz")
    other = nnlocal.load(pan.tron(1, 8, 10, gate="sample", teacher="ste", rng=1), tmp_path / "tron.npz")
    assert [(m.gate, m.teacher) for _, m in pan.pan_layers(other)] == [("batch", "frozen"), ("open", "frozen")]
    assert not other.tron1.teacher_weight.requires_grad
    xi = rng.random((3, 1, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(other(xi), net(xi))


@pytest.mark.parametrize("modes", [[3, 0], [0, 2], [-1, 0], [2, 1], [0]])
def test_bad_saved_modes_are_refused(modes):
    layer = _layer(4, 3)
    state = layer.state_dict()
    state["modes"] = np.array(modes)
    with pytest.raises(ValueError, match="PerceptronActivation"):
        layer.load_state_dict(state)
    assert (layer.gate, layer.teacher) == ("batch", "frozen")


@pytest.mark.parametrize("kw", [dict(threshold=float("nan")), dict(threshold="0"), dict(gate="neuron"),
                                dict(teacher="hebb"), dict(init="zeros"), dict(device="gpu"),
                                dict(gate="open", teacher="ste"), dict(dtype=np.int32)])
def test_bad_options(kw):
    with pytest.raises(ValueError):
        pan.PerceptronActivation(4, 3, rng=0, **kw)


def test_bad_sizes():
    for n, m in [(0, 3), (3, -1), (2.5, 3)]:
        with pytest.raises(ValueError):
            pan.PerceptronActivation(n, m, rng=0)
    layer = _layer(4, 3)
    with pytest.raises(ValueError):
        layer.threshold = float("nan")


# ----------------------------------------------------------------------------- kernels vs references
def _kernel_args(rng, dtype, B=5, m=4, n=7):
    """Arguments for every ``pan_*`` function (the same arrays for the kernel and its reference)."""
    r = lambda *s: rng.standard_normal(s).astype(dtype)  # noqa: E731
    tw, tb, x, sw, sb, g, G = r(m * n, n), r(m * n), r(B, n), r(m, n), r(m), r(B, m), r(m * n, n)
    mask3 = rng.random((B, m, n)) > 0.5
    return {
        "pan_batch_gate": lambda: (tw, x.sum(0), tb, dtype(B), dtype(0.0), np.empty(m * n, np.bool_)),
        "pan_sample_gate": lambda: (tw, x, tb, dtype(0.1), np.empty((B, m * n), np.bool_)),
        "pan_bias_threshold": lambda: (x @ tw.T, tb, dtype(0.1), np.empty((B, m * n), np.bool_)),
        "pan_sample_forward": lambda: (mask3, sw, x, sb, np.empty((B, m), dtype)),
        "pan_sample_backward": lambda: (mask3, sw, x, g, np.empty_like(sw), np.empty_like(x)),
        "pan_sample_gate_grad": lambda: (sw, x, g, np.empty((B, m, n), dtype)),
        "pan_add_outer": lambda: (G.copy(), tb, x[0]),
    }


def _as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", K.__all__)
def test_kernels_match_references(name, dtype, rng):
    args = _kernel_args(rng, dtype)
    ours, ref = _as_tuple(getattr(K, name)(*args[name]())), _as_tuple(getattr(R, name)(*args[name]()))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for a, b in zip(ours, ref):
        if a.dtype == np.bool_:     # the gates threshold the same BLAS products: exactly equal
            np.testing.assert_array_equal(a, b)
            assert 0 < a.sum() < a.size
        else:
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_batch_gate_is_blas():
    """The Numba batch gate lost to BLAS sgemv + threshold at every size (docs/pan.md): cpu re-exports it."""
    assert K.pan_batch_gate is R.pan_batch_gate


#: which argument of each kernel gets a non-finite row (row 1, or entry 1 of a vector)
_POISONED = {"pan_sample_gate": 1, "pan_bias_threshold": 0, "pan_sample_forward": 2, "pan_sample_backward": 3,
             "pan_sample_gate_grad": 1, "pan_add_outer": 2}


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", sorted(_POISONED))
def test_kernels_agree_with_references_on_non_finite_input(name, bad, rng):
    """Called directly, a kernel propagates NaN/inf exactly as its reference (never finite garbage).
    The old Numba kernels skipped closed gates with a branch: a NaN row whose gates were all closed
    gave exactly the bias in pan_sample_forward, where the reference gives NaN."""
    args = _kernel_args(rng, np.float64)
    outs = []
    for impl in (K, R):
        a = args[name]()
        a[_POISONED[name]][1] = bad
        if name == "pan_sample_forward":
            a[0][1] = False                     # sample 1: every gate closed
        with np.errstate(invalid="ignore"):
            outs.append(_as_tuple(getattr(impl, name)(*a)))
    for ours, ref in zip(*outs):
        np.testing.assert_array_equal(ours, ref) if ours.dtype == np.bool_ else \
            np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12, equal_nan=True)
    if name not in ("pan_sample_gate", "pan_bias_threshold"):
        assert not np.all(np.isfinite(outs[0][0]))


def test_sample_gate_chunking(monkeypatch, rng):
    """The per-sample teacher GEMM runs in chunks; chunk boundaries change nothing."""
    layer = _layer(12, 5, seed=0, gate="sample").to(np.float64)
    x = rng.standard_normal((23, 12))
    full = layer(x)
    monkeypatch.setattr(R, "SAMPLE_CHUNK_ELEMENTS", 2 * 60)
    np.testing.assert_array_equal(layer(x), full)


# ----------------------------------------------------------------------------- networks
def test_conv_geometry():
    assert pan.conv_geometry(28) == (0, 25)      # 16·5·5 = 400 (MNIST)
    assert pan.conv_geometry(32) == (0, 36)      # 16·6·6 = 576 (CIFAR-10)
    assert pan.conv_geometry(8) == (2, 4)        # 16·2·2 = 64 (8×8 digits)
    with pytest.raises(ValueError):
        pan.conv_geometry(3)


class TorchNet(torch.nn.Module):
    """The notebooks' LeNet5 / Tron forward in torch, with nnlocal's parameter names."""

    def __init__(self, kind, in_channels, image_size, num_classes=10, gate="batch", ste=False):
        super().__init__()
        pad2, area = pan.conv_geometry(image_size)
        self.conv1 = torch.nn.Conv2d(in_channels, 6, 5, padding=2)
        self.conv2 = torch.nn.Conv2d(6, 16, 5, padding=pad2)
        self.kind = kind
        if kind == "tron":
            self.tron1 = TorchPerceptron(16 * area, 120, gate=gate, ste=ste)
            self.tron2 = TorchPerceptron(120, 84, gate=gate, ste=ste)
        else:
            self.fc1 = torch.nn.Linear(16 * area, 120)
            self.fc2 = torch.nn.Linear(120, 84)
        self.fc3 = torch.nn.Linear(84, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.reshape(x.shape[0], -1)
        if self.kind == "tron":
            x = self.tron2(self.tron1(x))                 # no ReLU between the PAN layers
        else:
            x = F.relu(self.fc2(F.relu(self.fc1(x))))
        return F.log_softmax(self.fc3(x), dim=1)


@pytest.mark.parametrize("gate,teacher", [("batch", "frozen"), ("sample", "frozen"), ("batch", "ste")])
def test_tron_matches_twin(gate, teacher, rng):
    model = pan.tron(1, 8, 10, gate=gate, teacher=teacher, rng=0)
    twin = TorchNet("tron", 1, 8, gate=gate, ste=teacher == "ste")
    x = rng.random((6, 1, 8, 8))
    out = compare_with_torch(model, twin, x)
    expected = {n for n, p in model.named_parameters() if p.requires_grad}
    assert set(out["grads"]) == expected and "conv1.weight" in expected
    assert ("tron1.teacher_weight" in expected) == (teacher == "ste")
    if teacher == "frozen":
        assert twin.tron1.teacher_weight.grad is None and twin.tron2.teacher_bias.grad is None
    stats = model.gate_stats()
    assert set(stats) == {"tron1", "tron2"}
    with pan.using_gate(model, "sample"):
        assert model.tron1.gate == model.tron2.gate == "sample"
    assert model.tron1.gate == model.tron2.gate == gate


def test_tron_mnist_shape_matches_twin(rng):
    """The MNIST-size Tron (400→120: TW has 19.2 M entries) end to end, one small batch."""
    model = pan.tron(1, 28, 10, rng=1)
    assert model.tron1.teacher_weight.shape == (48000, 400)
    twin = TorchNet("tron", 1, 28)
    compare_with_torch(model, twin, rng.random((3, 1, 28, 28)))


@pytest.mark.parametrize("fc_init", ["torch", "normal"])
def test_lenet5_matches_twin(fc_init, rng):
    model = pan.lenet5(3, 32, 10, fc_init=fc_init, rng=0)
    assert model.fc1.weight.shape == (120, 576)
    compare_with_torch(model, TorchNet("lenet5", 3, 32), rng.random((2, 3, 32, 32)))
    if fc_init == "normal":
        assert abs(float(np.std(model.fc1.weight.data)) - 1.0) < 0.05


def test_tron_trains():
    """A few epochs of the notebook recipe (SGD lr 0.003, batch 64, no shuffle) lower the loss on
    synthetic 8×8 images (class prototypes plus noise)."""
    from nnlocal import nn

    g = np.random.default_rng(0)
    protos = g.random((10, 1, 8, 8))
    y = np.arange(256) % 10
    x = (((protos[y] + 0.3 * g.random((256, 1, 8, 8))) / 1.3 - 0.5) / 0.5).astype(np.float32)
    model = pan.tron(1, 8, 10, rng=0)
    opt = optim.SGD(model.parameters(), lr=0.003)
    loss_fn = nn.NLLLoss()
    losses = []
    for epoch in range(3):
        total = 0.0
        for b in range(0, 256, 64):
            opt.zero_grad()
            total += loss_fn(model(x[b:b + 64]), y[b:b + 64])
            model.backward(loss_fn.backward())
            opt.step()
        losses.append(total)
    assert losses[-1] < losses[0]
