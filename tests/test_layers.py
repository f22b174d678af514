"""Every basic layer and activation against its torch twin (float64, rtol 1e-7), over random
configurations from fixed seeds, plus the behaviour torch cannot check for us (Dropout's mask,
dtype propagation, bad input, backward before forward).

Each parametrised case draws its configuration from ``default_rng(seed)``; every third case puts a
``Linear`` *before* the layer under test, so the layer's input gradient is consumed by a layer
with parameters and a wrong dL/dx shows up in that layer's weight gradient as well.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import nnlocal
from nnlocal import nn
from tests.torch_twin import compare_with_torch

torch = pytest.importorskip("torch")
F = torch.nn.functional

N_CASES = 10


def _shape(rng, ndim, lo=1, hi=7):
    return tuple(int(v) for v in rng.integers(lo, hi, size=ndim))


def _input(rng, shape, scale=2.0):
    x = rng.standard_normal(shape) * scale
    # exact kinks: 0 for ReLU/LeakyReLU, ±3 for Hardsigmoid (torch's conventions matter there)
    flat = x.reshape(-1)
    picks = rng.choice(flat.size, size=min(3, flat.size), replace=False)
    flat[picks] = rng.choice([0.0, 3.0, -3.0], size=picks.size)
    return x


# ----------------------------------------------------------------------------- case builders
# Each builder returns (nnlocal module, torch twin (module or function), input).

def _linear(rng, i):
    ndim = [1, 2, 2, 3, 4][i % 5]
    n_in, n_out = int(rng.integers(1, 10)), int(rng.integers(1, 10))
    bias = bool(i % 2)
    shape = _shape(rng, ndim - 1, 1, 5) + (n_in,)
    return (nn.Linear(n_in, n_out, bias=bias, rng=i), torch.nn.Linear(n_in, n_out, bias=bias),
            rng.standard_normal(shape))


def _flatten(rng, i):
    ndim = int(rng.integers(2, 6))
    start = int(rng.integers(0, ndim))
    end = int(rng.integers(start, ndim))
    if rng.random() < 0.5:
        start -= ndim
    if rng.random() < 0.5:
        end -= ndim
    return nn.Flatten(start, end), torch.nn.Flatten(start, end), rng.standard_normal(_shape(rng, ndim))


def _identity(rng, i):
    return nn.Identity(), torch.nn.Identity(), rng.standard_normal(_shape(rng, int(rng.integers(1, 5))))


def _dropout_eval(rng, i):
    p = float(rng.uniform(0.0, 0.9))
    return (nn.Dropout(p, rng=i).eval(), torch.nn.Dropout(p).eval(),
            rng.standard_normal(_shape(rng, int(rng.integers(1, 5)))))


def _elementwise(ours, theirs):
    def build(rng, i):
        return ours(), theirs(), _input(rng, _shape(rng, int(rng.integers(1, 5))))
    return build


def _leaky(rng, i):
    slope = float(rng.uniform(0.001, 0.5))
    return nn.LeakyReLU(slope), torch.nn.LeakyReLU(slope), _input(rng, _shape(rng, int(rng.integers(1, 5))))


def _atan(rng, i):
    return nn.Atan(), (lambda x, p: torch.atan(x)), _input(rng, _shape(rng, int(rng.integers(1, 5))))


def _softmax_like(ours, theirs):
    def build(rng, i):
        ndim = int(rng.integers(1, 5))
        # with a Linear before (i % 3 == 0) take the Linear's axis: along another axis the Linear's
        # bias gradient sums the softmax Jacobian to exactly 0, and a comparison of rounding noise
        # at rtol says nothing (that degenerate case is test_softmax_single_class's)
        dim = -1 if i % 3 == 0 else int(rng.integers(-ndim, ndim))
        scale = [1.0, 5.0, 40.0][i % 3]  # large logits: the max-shift must keep it finite and exact
        shape = list(_shape(rng, ndim))
        shape[dim] = max(shape[dim], 2)  # a size-1 axis has gradient 0 exactly (test_softmax_single_class)
        return ours(dim), theirs(dim), rng.standard_normal(shape) * scale
    return build


BUILDERS = {
    "Linear": _linear,
    "Flatten": _flatten,
    "Identity": _identity,
    "Dropout(eval)": _dropout_eval,
    "ReLU": _elementwise(nn.ReLU, torch.nn.ReLU),
    "Sigmoid": _elementwise(nn.Sigmoid, torch.nn.Sigmoid),
    "Tanh": _elementwise(nn.Tanh, torch.nn.Tanh),
    "Atan": _atan,
    "Hardsigmoid": _elementwise(nn.Hardsigmoid, torch.nn.Hardsigmoid),
    "LeakyReLU": _leaky,
    "Softmax": _softmax_like(nn.Softmax, torch.nn.Softmax),
    "LogSoftmax": _softmax_like(nn.LogSoftmax, torch.nn.LogSoftmax),
}


def _with_linear_before(module, twin, x, rng):
    """Sequential(Linear, module) and its twin: the Linear maps a fresh input onto ``x``'s last axis."""
    n_out = x.shape[-1]
    n_in = int(rng.integers(1, 8))
    x_new = rng.standard_normal(x.shape[:-1] + (n_in,))
    ours = nn.Sequential(nn.Linear(n_in, n_out, rng=3), module)
    if isinstance(twin, torch.nn.Module):
        theirs = torch.nn.Sequential(torch.nn.Linear(n_in, n_out), twin)
    else:  # a function twin of (x, params): feed it the torch Linear's output
        def theirs(x_t, p, _f=twin):
            return _f(F.linear(x_t, p["0.weight"], p["0.bias"]), {})
    return ours, theirs, x_new


CASES = [(name, i) for name in BUILDERS for i in range(N_CASES)]


@pytest.mark.parametrize("name,i", CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_layer_matches_torch(name, i):
    rng = np.random.default_rng(1000 * (list(BUILDERS).index(name) + 1) + i)
    module, twin, x = BUILDERS[name](rng, i)
    if i % 3 == 0:
        module, twin, x = _with_linear_before(module, twin, x, rng)
    out = compare_with_torch(module, twin, x, seed=i)
    # every comparison must actually have exercised something non-trivial
    assert np.size(out["y"]) > 0


def test_linear_before_case_reaches_every_layer():
    """The Linear-before cases exist for every layer (the guarantee the module docstring makes)."""
    before = {name for name, i in CASES if i % 3 == 0}
    assert before == set(BUILDERS)


# ----------------------------------------------------------------------------- conventions at kinks

def test_hardsigmoid_boundary_matches_torch():
    """torch's Hardsigmoid derivative is 1/6 on the *open* interval (-3, 3): 0 exactly at ±3."""
    x = np.array([-3.5, -3.0, -2.9999999, 0.0, 2.9999999, 3.0, 3.5])
    layer = nn.Hardsigmoid()
    out = compare_with_torch(layer, torch.nn.Hardsigmoid(), x, grad_output=np.ones_like(x))
    np.testing.assert_array_equal(out["gx"][0], [0, 0, 1 / 6, 1 / 6, 1 / 6, 0, 0])
    np.testing.assert_array_equal(out["y"][[1, 5]], [0.0, 1.0])


@pytest.mark.parametrize("ours,theirs", [(nn.ReLU, torch.nn.ReLU), (lambda: nn.LeakyReLU(0.1),
                                                                  lambda: torch.nn.LeakyReLU(0.1))])
def test_relu_family_derivative_at_zero_matches_torch(ours, theirs):
    x = np.array([-1.0, 0.0, 1.0])
    out = compare_with_torch(ours(), theirs(), x, grad_output=np.ones(3))
    assert out["gx"][0][1] == (0.0 if isinstance(ours(), nn.ReLU) else 0.1)


@pytest.mark.parametrize("ours,theirs", [(nn.Softmax, torch.nn.Softmax), (nn.LogSoftmax, torch.nn.LogSoftmax)])
def test_softmax_single_class(ours, theirs):
    """Along an axis of size 1 softmax is constant 1 and its input gradient is zero: both sides
    then hold only rounding noise, so compare with an absolute tolerance."""
    x = np.random.default_rng(0).standard_normal((4, 1, 3))
    model = nn.Sequential(nn.Linear(3, 3, rng=0), ours(1))
    out = compare_with_torch(model, torch.nn.Sequential(torch.nn.Linear(3, 3), theirs(1)), x, atol=1e-12)
    np.testing.assert_allclose(out["gx"][0], 0.0, atol=1e-12)


def test_sigmoid_extreme_inputs_are_finite_and_exact():
    x = np.array([-800.0, -40.0, 0.0, 40.0, 800.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        compare_with_torch(nn.Sigmoid(), torch.nn.Sigmoid(), x)


# ----------------------------------------------------------------------------- Dropout

def test_dropout_eval_is_identity_and_train_is_not():
    x = np.random.default_rng(0).standard_normal((50, 40))
    d = nn.Dropout(0.3, rng=0)
    d.eval()
    assert d(x) is x or np.array_equal(d(x), x)
    g = np.ones_like(x)
    np.testing.assert_array_equal(d.backward(g), g)
    d.train()
    assert not np.array_equal(d(x), x)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_scale_and_drop_rate(p):
    x = np.ones((400, 250))
    y = nn.Dropout(p, rng=1)(x)
    values = np.unique(y)
    np.testing.assert_allclose(values, [0.0, 1.0 / (1.0 - p)], rtol=1e-15)
    n = x.size
    dropped = np.mean(y == 0)
    assert abs(dropped - p) < 5 * np.sqrt(p * (1 - p) / n)  # 5 sigma of the binomial


def test_dropout_backward_uses_the_forward_mask():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((30, 20)) + 5.0  # no zeros, so y == 0 marks the dropped entries
    d = nn.Dropout(0.4, rng=3)
    y = d(x)
    g = rng.standard_normal(x.shape)
    gx = d.backward(g)
    np.testing.assert_allclose(gx, g * (y / x), rtol=1e-14)
    np.testing.assert_array_equal(gx == 0, y == 0)
    # a second forward draws a new mask, and backward follows it
    y2 = d(x)
    assert not np.array_equal(y2 == 0, y == 0)
    np.testing.assert_array_equal(d.backward(g) == 0, y2 == 0)


def test_dropout_mask_against_torch_formula():
    """Torch's RNG cannot be shared, but given our mask torch's formula x·m/(1-p) must agree, with a
    Linear before the dropout so the gradient passes through the mask into a weight gradient."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 5))
    probe = nn.Sequential(nn.Linear(5, 7, rng=0), nn.Dropout(0.35, rng=9)).to(np.float64)
    ours = nn.Sequential(nn.Linear(5, 7, rng=0), nn.Dropout(0.35, rng=9))
    h = probe[0](x)
    scale = probe[1](h) / h  # the mask/(1-p) that rng=9 draws first

    def twin(x_t, p):
        return F.linear(x_t, p["0.weight"], p["0.bias"]) * torch.from_numpy(scale)

    compare_with_torch(ours, twin, x)


def test_dropout_expectation():
    x = np.full((200_000,), 2.0)
    y = nn.Dropout(0.6, rng=5)(x)
    se = 2.0 * np.sqrt(0.6 / 0.4) / np.sqrt(x.size)
    assert abs(y.mean() - 2.0) < 5 * se


def test_dropout_determinism():
    x = np.ones((10, 10))
    np.testing.assert_array_equal(nn.Dropout(0.5, rng=11)(x), nn.Dropout(0.5, rng=11)(x))
    assert not np.array_equal(nn.Dropout(0.5, rng=11)(x), nn.Dropout(0.5, rng=12)(x))
    # rng=None follows nnlocal.seed, even for a layer built before the call
    d = nn.Dropout(0.5)
    nnlocal.seed(7)
    a = d(x)
    nnlocal.seed(7)
    np.testing.assert_array_equal(d(x), a)


def test_dropout_p_edge_cases():
    x = np.random.default_rng(0).standard_normal((5, 4))
    np.testing.assert_array_equal(nn.Dropout(0.0)(x), x)
    d1 = nn.Dropout(1.0)
    np.testing.assert_array_equal(d1(x), np.zeros_like(x))
    np.testing.assert_array_equal(d1.backward(np.ones_like(x)), np.zeros_like(x))
    np.testing.assert_array_equal(d1(x), torch.nn.Dropout(1.0)(torch.from_numpy(x)).numpy())
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="p must be"):
            nn.Dropout(bad)


# ----------------------------------------------------------------------------- dtype, accumulation

ALL_LAYERS = [lambda: nn.Linear(4, 3, rng=0), nn.Flatten, nn.Identity, lambda: nn.Dropout(0.5, rng=0),
              nn.ReLU, nn.Sigmoid, nn.Tanh, nn.Atan, nn.Hardsigmoid, nn.LeakyReLU, nn.Softmax, nn.LogSoftmax]
LAYER_IDS = ["Linear", "Flatten", "Identity", "Dropout", "ReLU", "Sigmoid", "Tanh", "Atan", "Hardsigmoid",
             "LeakyReLU", "Softmax", "LogSoftmax"]


@pytest.mark.parametrize("make", ALL_LAYERS, ids=LAYER_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_outputs_and_gradients_follow_input_dtype(make, dtype):
    layer = make()
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(dtype)
    y = layer(x)
    assert y.dtype == dtype
    gx = layer.backward(np.ones_like(y))
    assert gx.dtype == dtype
    for p in layer.parameters():
        assert p.grad.dtype == p.data.dtype


@pytest.mark.parametrize("make", ALL_LAYERS, ids=LAYER_IDS)
def test_backward_before_forward_raises(make):
    with pytest.raises(RuntimeError, match="before forward"):
        make().backward(np.ones((3, 4)))


def test_linear_gradients_accumulate_like_torch():
    rng = np.random.default_rng(0)
    layer = nn.Linear(4, 3, rng=0).to(np.float64)
    x1, x2 = rng.standard_normal((5, 4)), rng.standard_normal((2, 4))
    g1, g2 = rng.standard_normal((5, 3)), rng.standard_normal((2, 3))
    layer(x1)
    layer.backward(g1)
    layer(x2)
    layer.backward(g2)
    np.testing.assert_allclose(layer.weight.grad, g1.T @ x1 + g2.T @ x2, rtol=1e-12)
    np.testing.assert_allclose(layer.bias.grad, g1.sum(0) + g2.sum(0), rtol=1e-12)


def test_frozen_parameter_gets_no_gradient():
    layer = nn.Linear(4, 3, rng=0)
    layer.weight.requires_grad = False
    layer(np.ones((2, 4), dtype=np.float32))
    gx = layer.backward(np.ones((2, 3), dtype=np.float32))
    assert layer.weight.grad is None and layer.bias.grad is not None
    np.testing.assert_allclose(gx, np.ones((2, 3)) @ layer.weight.data, rtol=1e-6)


# ----------------------------------------------------------------------------- bad input

def test_linear_wrong_feature_count_names_layer_expected_and_actual():
    layer = nn.Linear(784, 10, rng=0)
    with pytest.raises(ValueError) as err:
        layer(np.zeros((32, 783), dtype=np.float32))
    msg = str(err.value)
    assert "Linear(in_features=784, out_features=10" in msg
    assert "(B, 784)" in msg and "(32, 783)" in msg


def test_linear_wrong_rank():
    with pytest.raises(ValueError, match=r"Linear.*expected input of shape \(B, 3\), got \(\)"):
        nn.Linear(3, 2, rng=0)(np.array(1.0))


@pytest.mark.parametrize("make", ALL_LAYERS, ids=LAYER_IDS)
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_, np.float16])
def test_non_float_input_is_rejected(make, dtype):
    layer = make()
    with pytest.raises(ValueError) as err:
        layer(np.ones((3, 4), dtype=dtype))
    msg = str(err.value)
    assert type(layer).__name__ in msg and "float" in msg and str(np.dtype(dtype)) in msg


def test_non_array_input_is_rejected():
    with pytest.raises(TypeError, match="numpy.ndarray"):
        nn.Linear(2, 2, rng=0)([[1.0, 2.0]])


@pytest.mark.parametrize("layer,shape", [(nn.Flatten(), (5,)), (nn.Flatten(2), (2, 3)),
                                         (nn.Flatten(2, 1), (2, 3, 4)), (nn.Softmax(2), (3, 4)),
                                         (nn.LogSoftmax(-3), (3, 4))])
def test_wrong_rank_names_layer_and_shapes(layer, shape):
    with pytest.raises(ValueError) as err:
        layer(np.zeros(shape))
    msg = str(err.value)
    assert type(layer).__name__ in msg and "expected input" in msg
    assert str(shape).replace(",)", ",)") in msg


@pytest.mark.parametrize("make", ALL_LAYERS, ids=LAYER_IDS)
def test_backward_rejects_a_wrongly_shaped_gradient(make):
    layer = make()
    y = layer(np.ones((3, 4)))
    with pytest.raises(ValueError, match="grad_output"):
        layer.backward(np.ones(y.shape + (1,)))


def test_linear_backward_rejects_transposed_gradient():
    """Same size, wrong layout: must not be silently reshaped."""
    layer = nn.Linear(4, 3, rng=0)
    layer(np.ones((2, 4), dtype=np.float32))
    with pytest.raises(ValueError, match=r"expected grad_output of shape \(2, 3\), got \(3, 2\)"):
        layer.backward(np.ones((2, 3), dtype=np.float32).T)


# ----------------------------------------------------------------------------- properties

@settings(max_examples=25, derandomize=True, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6),
                  elements=st.floats(-1e3, 1e3)), st.integers(-1, 0))
def test_softmax_rows_sum_to_one(x, dim):
    y = nn.Softmax(dim)(x)
    assert np.all(y >= 0)
    np.testing.assert_allclose(y.sum(axis=dim), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.exp(nn.LogSoftmax(dim)(x)), y, rtol=1e-9, atol=1e-300)
    # softmax's Jacobian annihilates constant upstream gradients (rows sum to 1 for any input)
    layer = nn.Softmax(dim)
    layer(x)
    np.testing.assert_allclose(layer.backward(np.ones_like(x)), 0.0, atol=1e-12)


@settings(max_examples=25, derandomize=True, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 5), st.floats(-3, 3), st.floats(-3, 3),
       st.integers(0, 2 ** 31))
def test_linear_backward_is_linear_in_grad_output(n_in, n_out, batch, a, b, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, n_in))
    g1, g2 = rng.standard_normal((batch, n_out)), rng.standard_normal((batch, n_out))
    results = []
    for g in (g1, g2, a * g1 + b * g2):
        layer = nn.Linear(n_in, n_out, rng=0).to(np.float64)
        layer(x)
        gx = layer.backward(g)
        results.append((gx, layer.weight.grad, layer.bias.grad))
    for k in range(3):
        combo = a * results[0][k] + b * results[1][k]
        np.testing.assert_allclose(results[2][k], combo, rtol=1e-9, atol=1e-9)
