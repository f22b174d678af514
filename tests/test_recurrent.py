"""RNN (tanh), LSTM and GRU against torch.nn in float64: outputs, final states, dL/dx, dL/dh0 (dL/dc0)
and every weight, on random shapes, with and without an initial state and a final-state gradient."""
import numpy as np
import pytest

from nnlocal import nn
from tests.torch_twin import assert_close

torch = pytest.importorskip("torch")

KINDS = {"RNN": (nn.RNN, "RNN"), "LSTM": (nn.LSTM, "LSTM"), "GRU": (nn.GRU, "GRU")}


def _torch_twin(layer):
    cls = getattr(torch.nn, type(layer).__name__)
    twin = cls(layer.input_size, layer.hidden_size, bias=layer.use_bias, batch_first=True).double()
    with torch.no_grad():
        for name, p in twin.named_parameters():
            p.copy_(torch.from_numpy(dict(layer.named_parameters())[name].data.astype(np.float64)))
    return twin


def run_both(layer, x, with_state: bool, grad_final: bool, grad_out: bool = True, seed: int = 0):
    """Run ``layer`` (float64) and its torch twin on the same input/state/upstream gradients and
    compare everything. Returns nothing; raises on the first mismatch."""
    layer.to(np.float64)
    lstm = isinstance(layer, nn.LSTM)
    B, H = x.shape[0], layer.hidden_size
    r = np.random.default_rng(seed)
    h0 = r.standard_normal((1, B, H)) * 0.5 if with_state else None
    c0 = r.standard_normal((1, B, H)) * 0.5 if (with_state and lstm) else None
    gy = r.standard_normal((B, x.shape[1], H)) if grad_out else None
    gh = r.standard_normal((1, B, H)) if grad_final else None
    gc = r.standard_normal((1, B, H)) if (grad_final and lstm) else None

    twin = _torch_twin(layer)
    x_t = torch.tensor(x, requires_grad=True)
    state_t = None
    if with_state:
        h0_t = torch.tensor(h0, requires_grad=True)
        c0_t = torch.tensor(c0, requires_grad=True) if lstm else None
        state_t = (h0_t, c0_t) if lstm else h0_t
    y_t, s_t = twin(x_t, state_t) if state_t is not None else twin(x_t)
    hn_t, cn_t = s_t if lstm else (s_t, None)
    loss = 0 * y_t.sum()
    if gy is not None:
        loss = loss + (y_t * torch.from_numpy(gy)).sum()
    if gh is not None:
        loss = loss + (hn_t * torch.from_numpy(gh)).sum()
    if gc is not None:
        loss = loss + (cn_t * torch.from_numpy(gc)).sum()
    loss.backward()

    layer.zero_grad()
    if lstm:
        y, (hn, cn) = layer(x, (h0, c0)) if with_state else layer(x)
    else:
        y, hn = layer(x, h0) if with_state else layer(x)
    assert_close("output", y, y_t.detach().numpy())
    assert_close("h_n", hn, hn_t.detach().numpy())
    if lstm:
        assert_close("c_n", cn, cn_t.detach().numpy())
    res = layer.backward(gy, gh, gc) if lstm else layer.backward(gy, gh)
    if with_state:
        gx, gstate = res
        if lstm:
            assert_close("dL/dh0", gstate[0], h0_t.grad.numpy())
            assert_close("dL/dc0", gstate[1], c0_t.grad.numpy())
        else:
            assert_close("dL/dh0", gstate, h0_t.grad.numpy())
    else:
        gx = res
    assert_close("dL/dx", gx, x_t.grad.numpy())
    tw = dict(twin.named_parameters())
    for name, p in layer.named_parameters():
        assert_close(f"dL/d{name}", p.grad, tw[name].grad.numpy())


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
