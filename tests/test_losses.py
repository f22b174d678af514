"""Losses against torch (value and dL/dpred, float64), over random shapes from fixed seeds, with
the edge cases that need care: BCE at p = 0 / 1 (torch's log clamp at -100 and its 1e-12 floor in
the backward), BCE-with-logits at large |z|, huge logits in cross-entropy."""
import numpy as np
import pytest

from nnlocal import nn
from tests.torch_twin import compare_fn_with_torch

torch = pytest.importorskip("torch")

N_CASES = 10


def _compare(ours, theirs, pred, target, target_t=None, rtol=1e-10):
    """The loss value and dL/dpred of ``ours`` against ``theirs`` (torch) on the same float64 input."""
    target_t = torch.from_numpy(np.asarray(target)) if target_t is None else target_t

    def our_fn(pred):
        value = ours(pred, target)
        assert isinstance(value, float)

        def backward(g):
            grad = ours.backward()
            assert grad.shape == pred.shape and grad.dtype == pred.dtype
            return {"pred": grad * g}      # g = 1: dL/dpred itself

        return value, backward

    out = compare_fn_with_torch({"pred": pred}, lambda pred: theirs(pred, target_t), our_fn, grad_outputs=[1.0],
                                rtol=rtol, tolerances={"loss value": (rtol, 1e-300)}, output_names=["loss value"])
    return out["outputs"][0], out["grads"]["pred"]


def _rng(i, salt):
    return np.random.default_rng(100 * salt + i)


@pytest.mark.parametrize("i", range(N_CASES))
def test_cross_entropy(i):
    rng = _rng(i, 1)
    b, c = int(rng.integers(1, 20)), int(rng.integers(1, 12))
    logits = rng.standard_normal((b, c)) * [1.0, 10.0, 300.0][i % 3]
    target = rng.integers(0, c, size=b)
    _compare(nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss(), logits, target)


@pytest.mark.parametrize("i", range(N_CASES))
def test_nll(i):
    rng = _rng(i, 2)
    b, c = int(rng.integers(1, 20)), int(rng.integers(1, 12))
    logp = torch.log_softmax(torch.from_numpy(rng.standard_normal((b, c)) * 3), 1).numpy()
    target = rng.integers(0, c, size=b)
    _compare(nn.NLLLoss(), torch.nn.NLLLoss(), logp, target)


@pytest.mark.parametrize("i", range(N_CASES))
def test_mse(i):
    rng = _rng(i, 3)
    shape = tuple(int(v) for v in rng.integers(1, 6, size=int(rng.integers(1, 5))))
    pred, target = rng.standard_normal(shape), rng.standard_normal(shape)
    _compare(nn.MSELoss(), torch.nn.MSELoss(), pred, target)


@pytest.mark.parametrize("i", range(N_CASES))
def test_bce(i):
    rng = _rng(i, 4)
    shape = tuple(int(v) for v in rng.integers(1, 6, size=int(rng.integers(1, 4))))
    prob = rng.uniform(0.001, 0.999, size=shape)
    target = (rng.random(shape) < 0.5).astype(np.float64) if i % 2 else rng.random(shape)  # hard or soft
    _compare(nn.BCELoss(), torch.nn.BCELoss(), prob, target)


def test_bce_at_p_zero_and_one_is_clamped_like_torch():
    prob = np.array([0.0, 0.0, 1.0, 1.0, 0.5, 1e-300])
    target = np.array([0.0, 1.0, 0.0, 1.0, 0.3, 1.0])
    with np.errstate(divide="raise", invalid="raise"):
        value, grad = _compare(nn.BCELoss(), torch.nn.BCELoss(), prob, target)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    assert value == pytest.approx((100 + 100 + 0.5 * np.log(2) * 2 + 100) / 6, rel=1e-2)


@pytest.mark.parametrize("i", range(N_CASES))
def test_bce_with_logits(i):
    rng = _rng(i, 5)
    shape = tuple(int(v) for v in rng.integers(1, 6, size=int(rng.integers(1, 4))))
    z = rng.standard_normal(shape) * [1.0, 20.0, 1000.0][i % 3]
    target = (rng.random(shape) < 0.5).astype(np.float64) if i % 2 else rng.random(shape)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        _compare(nn.BCEWithLogitsLoss(), torch.nn.BCEWithLogitsLoss(), z, target)


def test_bce_with_logits_extreme_values_are_exact():
    z = np.array([-1e4, -800.0, -40.0, 0.0, 40.0, 800.0, 1e4])
    for t in (np.zeros_like(z), np.ones_like(z)):
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            value, _ = _compare(nn.BCEWithLogitsLoss(), torch.nn.BCEWithLogitsLoss(), z, t)
        assert np.isfinite(value) and value > 1000  # the confidently wrong entries cost |z|


@pytest.mark.parametrize("loss", [nn.CrossEntropyLoss, nn.MSELoss, nn.BCEWithLogitsLoss])
def test_float32_gradients_stay_float32(loss):
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    target = np.array([0, 2, 1, 1]) if loss is nn.CrossEntropyLoss else np.full((4, 3), 0.5)
    fn = loss()
    fn(x, target)
    assert fn.backward().dtype == np.float32


def test_backward_before_forward_and_fresh_gradients():
    fn = nn.MSELoss()
    with pytest.raises(RuntimeError, match="before the loss was computed"):
        fn.backward()
    fn(np.ones(3), np.zeros(3))
    g = fn.backward()
    g *= 0  # a caller modifying the gradient does not change the next backward
    np.testing.assert_allclose(fn.backward(), np.full(3, 2 / 3))


def test_loss_chained_with_layers_matches_torch():
    """LogSoftmax + NLLLoss behind a Linear equals CrossEntropyLoss behind a Linear, and torch: the
    loss and the gradients of the input, the weight and the bias (rtol 1e-12)."""
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((8, 5)), rng.integers(0, 4, size=8)
    net = nn.Sequential(nn.Linear(5, 4, rng=0), nn.LogSoftmax(1)).to(np.float64)
    loss = nn.NLLLoss()

    def ours(x, weight, bias):          # the same values as net[0]'s parameters
        value = loss(net(x), y)

        def backward(g):
            net.zero_grad()
            gx = net.backward(loss.backward() * g)
            return {"x": gx, "weight": net[0].weight.grad, "bias": net[0].bias.grad}

        return value, backward

    def theirs(x, weight, bias):
        return torch.nn.functional.cross_entropy(torch.nn.functional.linear(x, weight, bias), torch.from_numpy(y))

    compare_fn_with_torch({"x": x, "weight": net[0].weight.data, "bias": net[0].bias.data}, theirs, ours,
                          grad_outputs=[1.0], rtol=1e-12, tolerances={"loss": (1e-12, 0.0), "dL/dweight": (1e-12, 0.0)},
                          output_names=["loss"])


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("loss", [nn.CrossEntropyLoss, nn.NLLLoss])
@pytest.mark.parametrize("target,pattern", [
    (np.array([0.0, 1.0, 2.0]), "integer class targets of shape \\(3,\\), got float64"),
    (np.array([0, 1]), "got int64 of shape \\(2,\\)"),
    (np.array([[0], [1], [2]]), "of shape \\(3, 1\\)"),
    (np.array([0, 1, 4]), "must lie in \\[0, 4\\)"),
    (np.array([0, -1, 2]), "must lie in \\[0, 4\\)"),
])
def test_class_losses_reject_bad_targets(loss, target, pattern):
    with pytest.raises(ValueError, match=pattern):
        loss()(np.zeros((3, 4)), target)


@pytest.mark.parametrize("loss", [nn.CrossEntropyLoss, nn.NLLLoss])
def test_class_losses_reject_bad_predictions(loss):
    with pytest.raises(ValueError, match=r"expected input of shape \(B, C\), got \(3,\)"):
        loss()(np.zeros(3), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="float dtype"):
        loss()(np.zeros((3, 4), dtype=np.int64), np.array([0, 1, 2]))


@pytest.mark.parametrize("loss", [nn.MSELoss, nn.BCELoss, nn.BCEWithLogitsLoss])
def test_elementwise_losses_reject_mismatched_shapes(loss):
    name = loss.__name__
    with pytest.raises(ValueError, match=rf"{name}: target shape \(3, 1\) does not match prediction shape \(3,\)"):
        loss()(np.full(3, 0.5), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="float dtype"):
        loss()(np.ones(3, dtype=np.int32), np.zeros(3))


def test_bce_rejects_predictions_outside_unit_interval():
    with pytest.raises(ValueError, match=r"BCELoss: predictions must lie in \[0, 1\]"):
        nn.BCELoss()(np.array([0.5, 1.2]), np.array([0.0, 1.0]))
