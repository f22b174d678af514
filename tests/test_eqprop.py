"""Symmetric EP (Scellier & Bengio 2017): the dynamics are -∂F/∂s of the energy (torch autograd), the
EP update is -(1/β)∂[E(s^β) - E(s⁰)]/∂θ and tends to the BPTT gradient of the loss as β → 0, and the
three relaxation kernels (fused Numba, BLAS + fused elementwise, NumPy reference) agree."""
import copy

import numpy as np
import pytest

from tests.torch_twin import assert_close

from nnlocal.methods.eqprop import cpu as K
from nnlocal.methods.eqprop import reference as R
from nnlocal.methods.eqprop import EPNet


def _net(sizes, seed=0, dtype=np.float64, bias=0.0, **kw):
    net = EPNet(sizes, rng=seed, dtype=dtype, **kw)
    for b in net.biases:
        b[...] = bias
    return net


def _torch_energy(torch, x, hs, Ws, bs):
    """E per sample, written from the formula: ½Σ‖h‖² - Σ ρ(h_k) W_k ρ(h_{k+1}) - Σ b·ρ(h)."""
    rho = lambda v: torch.clamp(v, 0.0, 1.0)  # noqa: E731
    below = [x] + [rho(h) for h in hs[:-1]]
    e = 0.5 * sum((h * h).sum(1) for h in hs)
    for W, b, lo, h in zip(Ws, bs, below, hs):
        e = e - ((lo @ W) * rho(h)).sum(1) - rho(h) @ b
    return e


def _torch_params(torch, net, grad=False):
    Ws = [torch.tensor(np.array(W), requires_grad=grad) for W in net.weights]
    bs = [torch.tensor(np.array(b), requires_grad=grad) for b in net.biases]
    return Ws, bs


def test_energy_matches_torch(rng):
    torch = pytest.importorskip("torch")
    net = _net([5, 7, 6, 3], bias=0.1)
    x = rng.uniform(0, 1, (4, 5))
    s = rng.uniform(-0.2, 1.2, (4, net.H))       # outside [0, 1] too: ρ clips, the ½‖h‖² term does not
    Ws, bs = _torch_params(torch, net)
    hs = [torch.tensor(h) for h in net.layers(s)]
    assert_close("energy", net.energy(x, s), _torch_energy(torch, torch.tensor(x), hs, Ws, bs).numpy(), rtol=1e-12)


@pytest.mark.parametrize("beta", [0.0, 0.7])
@pytest.mark.parametrize("kernel", ["fused", "blas"])
def test_dynamics_equal_minus_dF_ds_from_autograd(beta, kernel, rng):
    torch = pytest.importorskip("torch")
    net = _net([5, 7, 6, 3], bias=0.1, kernel=kernel)
    x = rng.uniform(0, 1, (4, 5))
    y = np.array([0, 2, 1, 2])
    s0 = rng.uniform(0.2, 0.8, (4, net.H))        # interior, and a small ε: no clipping
    eps = 1e-3
    s1 = net.relax(x, 1, eps, beta=beta, target=y, state=s0)
    Ws, bs = _torch_params(torch, net)
    hs = [torch.tensor(h, requires_grad=True) for h in net.layers(s0)]
    F = _torch_energy(torch, torch.tensor(x), hs, Ws, bs)
    if beta:
        F = F + beta * 0.5 * ((torch.tensor(net.one_hot(y)) - hs[-1]) ** 2).sum(1)
    grads = torch.autograd.grad(F.sum(), hs)
    expected = -np.concatenate([g.numpy() for g in grads], axis=1)
    assert_close("ds/dt = -dF/ds", (s1 - s0) / eps, expected, rtol=1e-8)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kernels_agree(dtype, rng):
    sizes = [9, 40, 31, 5]      # three non-input layers (both coupling directions), odd row counts
    net = EPNet(sizes, rng=1, dtype=dtype)
    for b in net.biases:
        b[...] = rng.normal(0, 0.2, b.shape)
    B = 5                       # odd batch: the fused kernel pairs samples
    x = rng.uniform(0, 1, (B, 9)).astype(dtype)
    tgt = np.eye(5, dtype=dtype)[rng.integers(0, 5, B)]
    s = rng.uniform(0, 1, (B, net.H)).astype(dtype)
    c = net.input_drive(x)
    sa, sb, sc = s.copy(), s.copy(), s.copy()
    ra = K.ep_relax(c, net._vt, net._b, sa, sizes[1:], 15, 0.5, 0.8, tgt)
    rb = K.ep_relax_blas(c, net.weights[1:], net._b, sb, sizes[1:], 15, 0.5, 0.8, tgt)
    rc = R.ep_relax(c, net._vt, net._b, sc, sizes[1:], 15, 0.5, 0.8, tgt)
    layers = [h.copy() for h in net.layers(s)]
    rr = R.ep_relax_literal(x, net.weights, net.biases, layers, 15, 0.5, 0.8, tgt)
    ref = np.concatenate(layers, axis=1)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(sa, ref, **tol)
    np.testing.assert_allclose(sb, ref, **tol)
    np.testing.assert_allclose(sc, ref, **tol)
    np.testing.assert_allclose(ra, rr, rtol=1e-4 if dtype == np.float32 else 1e-9, atol=1e-6)
    np.testing.assert_allclose(rb, rr, rtol=1e-4 if dtype == np.float32 else 1e-9, atol=1e-6)
    np.testing.assert_allclose(rc, rr, rtol=1e-4 if dtype == np.float32 else 1e-9, atol=1e-6)
    assert sa.dtype == dtype and sb.dtype == dtype


def test_ep_update_is_the_energy_contrast_gradient(rng):
    torch = pytest.importorskip("torch")
    net = _net([5, 7, 6, 3], bias=0.2)
    x = rng.uniform(0, 1, (8, 5))
    free = rng.uniform(0, 1, (8, net.H))
    nudged = np.clip(free + rng.normal(0, 0.05, free.shape), 0, 1)
    beta, lrs = 0.5, (0.3, 0.2, 0.1)
    Ws, bs = _torch_params(torch, net, grad=True)
    E = lambda s: _torch_energy(torch, torch.tensor(x), [torch.tensor(h) for h in net.layers(s)], Ws, bs)  # noqa
    objective = (E(nudged).mean() - E(free).mean()) / beta
    gW = torch.autograd.grad(objective, Ws + bs)
    before = copy.deepcopy(net)
    net.ep_update(x, free, nudged, beta, lrs)
    for k in range(3):
        assert_close(f"dW_{k}", net.weights[k] - before.weights[k], -lrs[k] * gW[k].numpy(), rtol=1e-10)
        assert_close(f"db_{k}", net.biases[k] - before.biases[k], -lrs[k] * gW[3 + k].numpy(), rtol=1e-10)


def test_ep_update_approaches_bptt_gradient_as_beta_shrinks(rng):
    torch = pytest.importorskip("torch")
    sizes = [4, 8, 6, 3]
    net = EPNet(sizes, rng=3, dtype=np.float64)
    for W in net.weights:                      # weak couplings, biases near ½: an interior fixed point
        W[...] = rng.normal(0.0, 0.05, W.shape)
    for b in net.biases:
        b[...] = rng.uniform(0.4, 0.6, b.shape)
    x = rng.uniform(0, 1, (5, 4))
    y = np.array([0, 1, 2, 1, 0])
    T, eps = 150, 0.5
    free = net.relax(x, T, eps)
    assert np.all((free > 0) & (free < 1)), "the free fixed point must be interior for this check"
    # BPTT: the loss at the end of the free relaxation, differentiated through every step by torch
    Ws, bs = _torch_params(torch, net, grad=True)
    xt, yt = torch.tensor(x), torch.tensor(net.one_hot(y))
    hs = [torch.zeros(5, n, dtype=torch.float64) for n in sizes[1:]]
    for _ in range(T):
        below = [xt] + hs[:-1]
        new = []
        for k, h in enumerate(hs):
            d = below[k] @ Ws[k] + bs[k]
            if k + 1 < len(hs):
                d = d + hs[k + 1] @ Ws[k + 1].T
            new.append(torch.clamp(h + eps * (d - h), 0.0, 1.0))
        hs = new
    loss = (0.5 * ((yt - hs[-1]) ** 2).sum(1)).mean()
    grads = [g.numpy() for g in torch.autograd.grad(loss, Ws + bs)]
    g_flat = np.concatenate([g.ravel() for g in grads])
    errors = []
    for beta in (0.5, 0.1, 0.02, 0.004):
        nudged = net.relax(x, T, eps, beta=beta, target=y, state=free)
        trial = copy.deepcopy(net)
        trial.ep_update(x, free, nudged, beta, lrs=(1.0, 1.0, 1.0))
        delta = np.concatenate([(a - b).ravel() for a, b in zip(trial.weights + trial.biases,
                                                                net.weights + net.biases)])
        errors.append(np.linalg.norm(delta + g_flat) / np.linalg.norm(g_flat))
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.05, errors


def test_fit_learns_digits_and_records_history():
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits
    d = load_digits()
    X = (d.data / 16.0).astype(np.float32)
    y = d.target
    net = EPNet([64, 120, 10], rng=0)
    h = net.fit(X[:1200], y[:1200], epochs=4, X_test=X[1200:1500], y_test=y[1200:1500], eval_steps=50)
    assert h["train_error"].shape == (4,) and h["test_error"].shape == (4,)
    assert h["test_error"][-1] < 20.0, h
    assert h["train_error"][-1] < h["train_error"][0]
    assert np.mean(net.predict(X[1500:], steps=50) != y[1500:]) < 0.2


def test_interface(rng):
    with pytest.raises(ValueError, match="device"):
        EPNet([4, 3], device="gpu")
    net = EPNet([784, 500, 10], rng=0)
    assert net.kernel_for(20) == "fused" and net.kernel_for(500) == "fused"
    assert net.weights[0].shape == (784, 500) and net.weights[1].shape == (500, 10)
    deep_net = EPNet([10, 500, 500, 10])
    assert deep_net.kernel_for(20) == "fused" and deep_net.kernel_for(100) == "blas"
    lim = np.sqrt(6 / (784 + 500))
    assert np.abs(net.weights[0]).max() <= lim and net.weights[0].std() > 0.5 * lim / np.sqrt(3)
    with pytest.raises(ValueError):
        net.relax(np.zeros((2, 783), np.float32), 3)
    # the code's cost (no ½) doubles the nudging force
    small = _net([3, 4, 2], bias=0.3)
    x = rng.uniform(0, 1, (2, 3))
    a = copy.deepcopy(small)
    a.train_batch(x, [0, 1], beta=0.4, lrs=(0.1, 0.1), cost="code")
    free = small.relax(x, 20, 0.5)
    nudged = small.relax(x, 4, 0.5, beta=0.8, target=[0, 1], state=free)
    small.ep_update(x, free, nudged, 0.4, (0.1, 0.1))
    np.testing.assert_allclose(a.weights[0], small.weights[0], rtol=1e-12)
