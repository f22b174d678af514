"""RNN (tanh), LSTM and GRU against torch.nn in float64: outputs, final states, dL/dx, dL/dh0 (dL/dc0)
and every weight, on random shapes, with and without an initial state and a final-state gradient."""
import numpy as np
import pytest

from nnlocal import nn
from tests.torch_twin import compare_fn_with_torch

torch = pytest.importorskip("torch")

KINDS = {"RNN": (nn.RNN, "RNN"), "LSTM": (nn.LSTM, "LSTM"), "GRU": (nn.GRU, "GRU")}


def _torch_twin(layer):
    cls = getattr(torch.nn, type(layer).__name__)
    return cls(layer.input_size, layer.hidden_size, bias=layer.use_bias, batch_first=True).double()


def run_both(layer, x, with_state: bool, grad_final: bool, grad_out: bool = True, seed: int = 0):
    """Run ``layer`` (float64) and its torch twin on the same input/state/parameters/upstream gradients
    and compare every output (y, h_n, c_n) and every gradient (x, h0, c0, each parameter)."""
    layer.to(np.float64)
    lstm = isinstance(layer, nn.LSTM)
    B, H = x.shape[0], layer.hidden_size
    r = np.random.default_rng(seed)
    h0 = r.standard_normal((1, B, H)) * 0.5 if with_state else None
    c0 = r.standard_normal((1, B, H)) * 0.5 if (with_state and lstm) else None
    gy = r.standard_normal((B, x.shape[1], H)) if grad_out else None
    gh = r.standard_normal((1, B, H)) if grad_final else None
    gc = r.standard_normal((1, B, H)) if (grad_final and lstm) else None

    params = dict(layer.named_parameters())
    inputs = {"x": x, **({"h0": h0} if with_state else {}), **({"c0": c0} if c0 is not None else {}),
              **{name: p.data for name, p in params.items()}}
    twin = _torch_twin(layer)

    def theirs(x, h0=None, c0=None, **weights):
        state = None if h0 is None else ((h0, c0) if lstm else h0)
        y, s = torch.func.functional_call(twin, weights, (x,) if state is None else (x, state))
        return (y, *s) if lstm else (y, s)

    def ours(x, h0=None, c0=None, **weights):       # the weights are the layer's own values
        layer.zero_grad()
        state = None if h0 is None else ((h0, c0) if lstm else h0)
        y, s = layer(x) if state is None else layer(x, state)

        def backward(gy, gh, gc=None):
            res = layer.backward(gy, gh, gc) if lstm else layer.backward(gy, gh)
            gx, gstate = res if with_state else (res, None)
            grads = {"x": gx, **{name: p.grad for name, p in params.items()}}
            if with_state:
                grads.update({"h0": gstate[0], "c0": gstate[1]} if lstm else {"h0": gstate})
            return grads

        return ((y, *s) if lstm else (y, s)), backward

    compare_fn_with_torch(inputs, theirs, ours, grad_outputs=[gy, gh] + ([gc] if lstm else []),
                          output_names=["output", "h_n"] + (["c_n"] if lstm else []))


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("case", range(4))
def test_matches_torch_random_shapes(kind, case):
    r = np.random.default_rng(100 + case)
    B, T, I, H = (int(v) for v in (r.integers(1, 5), r.integers(1, 7), r.integers(1, 6), r.integers(1, 8)))
    layer = KINDS[kind][0](I, H, bias=bool(case != 3), rng=case)
    x = r.standard_normal((B, T, I))
    run_both(layer, x, with_state=case % 2 == 1, grad_final=case >= 2, seed=case)


@pytest.mark.parametrize("kind", list(KINDS))
def test_only_final_state_gradient(kind):
    """A classifier that reads h_n only: grad_output=None."""
    layer = KINDS[kind][0](3, 5, rng=0)
    x = np.random.default_rng(0).standard_normal((2, 6, 3))
    run_both(layer, x, with_state=True, grad_final=True, grad_out=False)


@pytest.mark.parametrize("kind", list(KINDS))
def test_float32_and_state_shapes(kind):
    cls = KINDS[kind][0]
    layer = cls(4, 3, rng=0)
    x = np.random.default_rng(1).random((2, 5, 4)).astype(np.float32)
    y, state = layer(x)
    assert y.dtype == np.float32 and y.shape == (2, 5, 3)
    hn = state[0] if kind == "LSTM" else state
    assert hn.shape == (1, 2, 3)
    np.testing.assert_array_equal(hn[0], y[:, -1])
    # a (B, H) initial state is accepted and its gradient comes back in that shape
    h0 = np.zeros((2, 3), np.float32)
    layer(x, (h0, h0) if kind == "LSTM" else h0)
    gx, gstate = layer.backward(np.ones_like(y))
    g = gstate[0] if kind == "LSTM" else gstate
    assert g.shape == (2, 3) and gx.shape == x.shape and gx.dtype == np.float32


@pytest.mark.parametrize("kind", list(KINDS))
def test_parameter_names_and_init_match_torch(kind):
    layer = KINDS[kind][0](4, 6, rng=0)
    twin = getattr(torch.nn, kind)(4, 6, batch_first=True)
    ours = {n: p.shape for n, p in layer.named_parameters()}
    theirs = {n: tuple(p.shape) for n, p in twin.named_parameters()}
    assert ours == theirs
    bound = 1 / np.sqrt(6)
    for p in layer.parameters():
        assert np.abs(p.data).max() <= bound


def test_errors():
    layer = nn.LSTM(3, 4, rng=0)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.zeros((1, 1, 4)))
    with pytest.raises(ValueError, match=r"LSTM\(3, 4.*\(B, T, 3\)"):
        layer(np.zeros((2, 5, 2)))
    with pytest.raises(ValueError, match="float"):
        layer(np.zeros((2, 5, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="h0"):
        layer(np.zeros((2, 5, 3)), (np.zeros((1, 3, 4)), np.zeros((1, 3, 4))))
    rnn = nn.GRU(3, 4, rng=0)
    y, _ = rnn(np.zeros((2, 5, 3)))
    with pytest.raises(ValueError, match="grad_output"):
        rnn.backward(np.zeros((2, 4, 4)))
    assert "GRU(3, 4, batch_first=True)" == repr(rnn)
