"""Regression tests of issue #14 for the engine (nn layers, losses, optimizers): the non-finite
policy, gradient dtypes, loss caches and empty batches, argument checks, in-place edits between
forward and backward. (The property-based sweep over every class is ``tests/test_bad_input.py``;
checkpoint fsync is in ``test_utils.py``, IDX labels in ``test_data.py``.)"""
import math

import numpy as np
import pytest

from nnlocal import nn, optim
from nnlocal._checks import check_finite_input, check_input
from tests.bad_input_cases import LOSSES, NN_LAYERS

LAYERS = [c for c in NN_LAYERS if c.grad is not None]


# ------------------------------------------------------------------------------ non-finite input
@pytest.mark.parametrize("case", LAYERS, ids=[c.id for c in LAYERS])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_every_layer_rejects_non_finite_input_naming_itself(case, value):
    x = case.example(np.random.default_rng(0))
    x.reshape(-1)[-1] = value
    layer = case.make()
    with pytest.raises(ValueError, match="expected a finite input, got 1 NaN or infinite") as err:
        case.call(layer, x)
    assert any(n in str(err.value) for n in case.names(layer))


@pytest.mark.parametrize("make", [lambda: nn.RNN(3, 4, rng=0), lambda: nn.GRU(3, 4, rng=0)])
def test_recurrent_initial_state_must_be_finite(make):
    layer = make()
    h0 = np.zeros((1, 2, 4))
    h0[0, 1, 2] = np.nan
    with pytest.raises(ValueError, match=r"RNN|GRU") as err:
        layer(np.zeros((2, 5, 3)), h0)
    assert "finite h0" in str(err.value)


@pytest.mark.parametrize("case", LOSSES, ids=[c.id for c in LOSSES])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_losses_reject_non_finite_prediction_and_target(case, value):
    x = case.example(np.random.default_rng(0))
    x[1, 2] = value
    with pytest.raises(ValueError, match=f"{case.name}: expected a finite (input|target)"):
        case.call(case.make(), x)


def test_finite_check_is_exact_for_huge_values_and_any_layout():
    """The fast path (Σ x²) overflows for finite |x| > ~1e19 in float32: that must not be an error,
    and NaN/inf must be found in Fortran-ordered and strided arrays too."""
    huge = np.full((4, 5), 3e38, dtype=np.float32)
    check_finite_input("t", huge)
    check_finite_input("t", huge.astype(np.float64) ** 4)
    check_finite_input("t", np.arange(6))                     # integers are always finite
    for make in (lambda a: a, lambda a: np.asfortranarray(a), lambda a: a[:, ::2], lambda a: a.T):
        a = np.ones((6, 8))
        a[4, 2] = np.inf
        with pytest.raises(ValueError, match="got 1 NaN or infinite"):
            check_finite_input("t", make(a))
    a = np.ones((6, 8), dtype=np.float32)
    a[1::2, 1] = np.nan
    with pytest.raises(ValueError, match="t: expected a finite x, got 3 NaN"):
        check_input("t", a, "x")


def test_non_finite_policy_and_in_place_contract_are_documented():
    doc = nn.Module.__doc__
    assert "NaN" in doc and "ValueError" in doc and "never propagated" in doc
    assert "In-place edits between forward and backward" in doc and "x.copy()" in doc


# ------------------------------------------------------------------------------ gradient dtype
def test_linear_backward_rejects_an_integer_gradient():
    """The audit's case: an int64 gradient used to turn the weight grad into int64 zeros."""
    layer = nn.Linear(3, 2, rng=0)
    layer(np.ones((4, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"Linear\(in_features=3.*\.backward: expected grad_output of dtype "
                                         r"float32 \(the dtype of the forward output\), got int64"):
        layer.backward(np.ones((4, 2), dtype=np.int64))
    assert layer.weight.grad is None


@pytest.mark.parametrize("case", LAYERS, ids=[c.id for c in LAYERS])
@pytest.mark.parametrize("in_dtype,grad_dtype", [(np.float64, np.float32), (np.float32, np.float64),
                                                 (np.float32, np.int64), (np.float64, np.float16),
                                                 (np.float64, np.complex128)])
def test_backward_requires_a_gradient_of_the_output_dtype(case, in_dtype, grad_dtype):
    layer = case.make()
    y = case.grad(case.call(layer, case.example(np.random.default_rng(0)).astype(in_dtype)))
    assert y.dtype == in_dtype
    with pytest.raises(ValueError, match=f"expected grad_output of dtype {np.dtype(in_dtype)}") as err:
        layer.backward(np.ones(y.shape, dtype=grad_dtype))
    assert any(n in str(err.value) for n in case.names(layer))
    assert all(p.grad is None for p in layer.parameters())


def test_recurrent_final_state_gradient_is_checked_too():
    lstm = nn.LSTM(3, 4, rng=0)
    out, (h, c) = lstm(np.zeros((2, 5, 3)))
    with pytest.raises(ValueError, match=r"LSTM.*expected grad_c_n of dtype float64.*got int64"):
        lstm.backward(np.ones_like(out), np.ones_like(h), np.ones(c.shape, dtype=np.int64))
    with pytest.raises(ValueError, match=r"expected grad_h_n of shape \(1, 2, 4\), got \(1, 4, 2\)"):
        lstm.backward(np.ones_like(out), np.ones((1, 4, 2)))


# ------------------------------------------------------------------------------ losses
@pytest.mark.parametrize("loss,pred,target", [
    (nn.NLLLoss, np.zeros((0, 3)), np.zeros(0, dtype=np.int64)),
    (nn.CrossEntropyLoss, np.zeros((0, 3)), np.zeros(0, dtype=np.int64)),
    (nn.MSELoss, np.zeros((0, 2)), np.zeros((0, 2))),
    (nn.BCELoss, np.zeros(0), np.zeros(0)),
    (nn.BCEWithLogitsLoss, np.zeros((0, 2)), np.zeros((0, 2))),
])
def test_losses_reject_an_empty_batch(loss, pred, target):
    with pytest.raises(ValueError, match=f"{loss.__name__}: expected a non-empty batch"):
        loss()(pred, target)


@pytest.mark.parametrize("case", LOSSES, ids=[c.id for c in LOSSES])
def test_backward_after_a_failed_call_raises_instead_of_returning_the_old_gradient(case):
    fn = case.make()
    good = case.example(np.random.default_rng(0))
    case.call(fn, good)
    fn.backward()
    bad = good.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        case.call(fn, bad)
    with pytest.raises(RuntimeError, match="call the loss first"):
        fn.backward()
    case.call(fn, good)                       # and a good call works again
    assert np.isfinite(fn.backward()).all()


def test_regression_losses_reject_complex_targets():
    with pytest.raises(ValueError, match="MSELoss: expected a real-valued target, got dtype complex128"):
        nn.MSELoss()(np.zeros(3), np.zeros(3) + 1j)


# ------------------------------------------------------------------------------ arguments
@pytest.mark.parametrize("make,pattern", [
    (lambda: nn.Linear(-1, 3), r"Linear: in_features must be an integer >= 1, got -1"),
    (lambda: nn.Linear(3.7, 2), r"Linear: in_features must be an integer >= 1, got 3.7"),
    (lambda: nn.Linear(3, 2.0), r"Linear: out_features must be an integer"),
    (lambda: nn.Linear(True, 2), r"Linear: in_features must be an integer"),
    (lambda: nn.Linear(3, 2, dtype=np.int64), r"Linear: dtype must be float32 or float64"),
    (lambda: nn.Linear(3, 2, dtype=np.float16), r"Linear: dtype must be float32 or float64"),
    (lambda: nn.Conv2d(3.5, 2, 3), r"Conv2d: in_channels must be an integer"),
    (lambda: nn.Conv2d(3, 0, 3), r"Conv2d: out_channels must be an integer >= 1, got 0"),
    (lambda: nn.Conv2d(4, 2, 3, groups=2.0), r"Conv2d: groups must be an integer"),
    (lambda: nn.Conv2d(3, 2, 2.5), r"Conv2d: kernel_size must be an int or a tuple of 2 ints, got 2.5"),
    (lambda: nn.Conv2d(3, 2, (2.5, 2)), r"Conv2d: kernel_size must be an int or a tuple of 2 ints"),
    (lambda: nn.Conv2d(3, 2, (2, 2, 2)), r"Conv2d: kernel_size must be an int or a tuple of 2 ints"),
    (lambda: nn.Conv1d(3, 2, 3, stride="2"), r"Conv1d: stride must be an int"),
    (lambda: nn.ConvTranspose2d(3, 2, 3, dtype=np.int32), r"ConvTranspose2d: dtype must be float32"),
    (lambda: nn.ConvTranspose2d(3, 2, 3, output_padding=0.5), r"ConvTranspose2d: output_padding must be an int"),
    (lambda: nn.MaxPool2d(2.5), r"MaxPool2d: kernel_size must be an int"),
    (lambda: nn.AvgPool2d(2, divisor_override=1.5), r"AvgPool2d: divisor_override must be an integer"),
    (lambda: nn.RNN(3.5, 3), r"RNN: input_size must be an integer >= 1, got 3.5"),
    (lambda: nn.LSTM(3, 0), r"LSTM: hidden_size must be an integer >= 1, got 0"),
    (lambda: nn.GRU(3, 2, dtype="int64"), r"GRU: dtype must be float32 or float64"),
    (lambda: nn.Softmax(1.5), r"Softmax: dim must be an integer"),
    (lambda: nn.Flatten(1.0), r"Flatten: start_dim must be an integer"),
    (lambda: nn.Dropout(math.nan), r"Dropout: invalid p nan"),
    (lambda: nn.Dropout("0.5"), r"Dropout: invalid p '0.5'"),
    (lambda: nn.LeakyReLU(math.nan), r"LeakyReLU: invalid negative_slope nan"),
])
def test_layer_constructor_arguments_are_checked(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


def test_module_to_accepts_only_float32_and_float64():
    with pytest.raises(ValueError, match=r"Linear.to: expected a float dtype \(float32 or float64\), got float16"):
        nn.Linear(2, 2, rng=0).to(np.float16)


P = [nn.Parameter(np.ones(2))]


@pytest.mark.parametrize("make,pattern", [
    (lambda: optim.RMSprop(P, alpha=-1),
     r"RMSprop: invalid alpha -1 \(alpha must be a finite number in \[0, 1\]\)"),
    (lambda: optim.RMSprop(P, alpha=1.5), r"RMSprop: invalid alpha 1.5"),
    (lambda: optim.RMSprop(P, eps=-1e-8), r"RMSprop: invalid eps"),
    (lambda: optim.RMSprop(P, lr=math.nan), r"RMSprop: invalid lr nan"),
    (lambda: optim.SGD(P, lr=-0.1), r"SGD: invalid lr -0.1"),
    (lambda: optim.SGD(P, lr=math.inf), r"SGD: invalid lr inf"),
    (lambda: optim.SGD(P, lr="0.1"), r"SGD: invalid lr '0.1'"),
    (lambda: optim.SGD(P, lr=0.1, momentum=-0.9), r"SGD: invalid momentum"),
    (lambda: optim.SGD(P, lr=0.1, dampening=math.nan), r"SGD: invalid dampening nan"),
    (lambda: optim.SGD(P, lr=0.1, weight_decay=-1), r"SGD: invalid weight_decay"),
    (lambda: optim.Adam(P, betas=(0.9, 1.0)), r"Adam: invalid betas\[1\] 1.0"),
    (lambda: optim.Adam(P, betas=(math.nan, 0.9)), r"Adam: invalid betas\[0\] nan"),
    (lambda: optim.Adam(P, betas=(-0.1, 0.9)), r"Adam: invalid betas\[0\] -0.1"),
    (lambda: optim.Adam(P, betas=0.9), r"Adam: betas must be a pair"),
    (lambda: optim.Adam(P, eps=-1.0), r"Adam: invalid eps"),
    (lambda: optim.Adam(P, weight_decay=math.nan), r"Adam: invalid weight_decay nan"),
    (lambda: optim.Adam([{"params": P, "lr": -1.0}]), r"Adam: invalid lr -1.0"),   # per group too
    (lambda: optim.StepLR(optim.SGD(P, lr=0.1), 2.5), r"StepLR: step_size must be an integer >= 1, got 2.5"),
    (lambda: optim.StepLR(optim.SGD(P, lr=0.1), 2, gamma=math.nan), r"StepLR: invalid gamma nan"),
    (lambda: optim.ExponentialLR(optim.SGD(P, lr=0.1), gamma=math.inf), r"ExponentialLR: invalid gamma inf"),
    (lambda: optim.LambdaLR(optim.SGD(P, lr=0.1), 0.5), r"LambdaLR: lr_lambda must be a function"),
])
def test_optimizer_hyper_parameters_are_checked(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


def test_optimizer_load_state_dict_checks_before_changing_anything():
    opt = optim.Adam(P, lr=0.01)
    state = opt.state_dict()
    state["param_groups"][0]["betas"] = (0.9, 1.5)
    with pytest.raises(ValueError, match=r"Adam: invalid betas\[1\] 1.5"):
        opt.load_state_dict(state)
    assert opt.param_groups[0]["betas"] == (0.9, 0.999) and opt.param_groups[0]["lr"] == 0.01


# ------------------------------------------------------------------------------ in-place edits
def _grads(layer, x, g, edit=None):
    layer.zero_grad()
    out = layer(x)
    if edit is not None:
        edit(x, out)
    gx = layer.backward(g)
    return [np.copy(gx)] + [p.grad.copy() for p in layer.parameters()]


def _edit_input(x, out):
    x *= -3.0
    x += 1.0


def _edit_output(x, out):
    (out[0] if isinstance(out, tuple) else out)[...] = 7.0


@pytest.mark.parametrize("make,shape,edit", [
    (lambda: nn.Linear(4, 3, rng=0), (5, 4), _edit_input),
    (lambda: nn.LSTM(3, 4, rng=0), (2, 5, 3), _edit_input),
    (lambda: nn.LSTM(3, 4, rng=0), (2, 5, 3), _edit_output),
    (lambda: nn.RNN(3, 4, rng=0), (2, 5, 3), _edit_input),
    (lambda: nn.GRU(3, 4, rng=0), (2, 5, 3), _edit_output),
    (lambda: nn.Conv2d(2, 3, 3, rng=0), (2, 2, 5, 5), _edit_input),
    (lambda: nn.ConvTranspose2d(2, 3, 3, stride=2, rng=0), (2, 2, 3, 3), _edit_input),
], ids=["Linear", "LSTM", "LSTM-output", "RNN", "GRU-output", "Conv2d", "ConvTranspose2d"])
def test_in_place_edit_between_forward_and_backward_does_not_change_the_gradients(make, shape, edit):
    """The layers that need their input for the weight gradient keep a copy (see nn.Module's
    "In-place edits"): editing x (or the returned output) in place after forward changes nothing."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    layer = make().to(np.float64)
    y = layer(x.copy())
    g = rng.standard_normal((y[0] if isinstance(y, tuple) else y).shape)
    clean = _grads(layer, x.copy(), g)
    edited = _grads(layer, x.copy(), g, edit)
    for a, b in zip(clean, edited):
        np.testing.assert_array_equal(a, b)
