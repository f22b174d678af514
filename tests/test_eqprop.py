"""Symmetric EP (Scellier & Bengio 2017): the dynamics are -∂F/∂s of the energy (torch autograd), the
EP update is -(1/β)∂[E(s^β) - E(s⁰)]/∂θ and tends to the BPTT gradient of the loss as β → 0, the
relaxation kernels (fused Numba, BLAS + Numba elementwise, NumPy reference) agree, also on NaN; bad
input, labels and arguments raise ValueError naming EPNet; divergence of any parameter is flagged;
checkpoints round-trip."""
import copy
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.torch_twin import assert_close

import nnlocal
from nnlocal import DivergenceError, kernels
from nnlocal.methods.eqprop import cpu as K
from nnlocal.methods.eqprop import reference as R
from nnlocal.methods.eqprop import EPNet

REPO = Path(__file__).resolve().parents[1]


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
@pytest.mark.parametrize("kernel", ["fused", "blas", "numpy"])
def test_dynamics_equal_minus_dF_ds_from_autograd(beta, kernel, rng):
    torch = pytest.importorskip("torch")
    net = _net([5, 7, 6, 3], bias=0.1, kernel="auto" if kernel == "numpy" else kernel)
    x = rng.uniform(0, 1, (4, 5))
    y = np.array([0, 2, 1, 2])
    s0 = rng.uniform(0.2, 0.8, (4, net.H))        # interior, and a small ε: no clipping
    eps = 1e-3
    with kernels.use("numpy" if kernel == "numpy" else "numba"):
        assert net.kernel_for(4) == ("reference" if kernel == "numpy" else kernel)
        s1 = net.relax(x, 1, eps, beta=beta, target=y, state=s0)
    Ws, bs = _torch_params(torch, net)
    hs = [torch.tensor(h, requires_grad=True) for h in net.layers(s0)]
    F = _torch_energy(torch, torch.tensor(x), hs, Ws, bs)
    if beta:
        F = F + beta * 0.5 * ((torch.tensor(net.one_hot(y)) - hs[-1]) ** 2).sum(1)
    grads = torch.autograd.grad(F.sum(), hs)
    expected = -np.concatenate([g.numpy() for g in grads], axis=1)
    assert_close("ds/dt = -dF/ds", (s1 - s0) / eps, expected, rtol=1e-8)


def _relax_case(rng, sizes, B, dtype):
    net = EPNet(sizes, rng=1, dtype=dtype)
    for b in net.biases:
        b[...] = rng.normal(0, 0.2, b.shape)
    x = rng.uniform(0, 1, (B, sizes[0])).astype(dtype)
    tgt = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], B)]
    s = rng.uniform(0, 1, (B, net.H)).astype(dtype)
    return net, x, net.input_drive(x), tgt, s


RELAX = {"fused": K.ep_relax_fused, "blas": K.ep_relax_blas, "auto": K.ep_relax, "reference": R.ep_relax}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kernels_agree(dtype, rng):
    sizes = [9, 40, 31, 5]      # three non-input layers (both coupling directions), odd row counts
    B = 5                       # odd batch: the fused kernel pairs samples
    net, x, c, tgt, s = _relax_case(rng, sizes, B, dtype)
    layers = [h.copy() for h in net.layers(s)]
    rr = R.ep_relax_literal(x, net.weights, net.biases, layers, 15, 0.5, 0.8, tgt)
    ref = np.concatenate(layers, axis=1)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=2e-5)
    for name, relax in RELAX.items():
        st = s.copy()
        res = relax(c, net._vt, net._b, st, sizes[1:], 15, 0.5, 0.8, tgt)
        np.testing.assert_allclose(st, ref, **tol, err_msg=name)
        np.testing.assert_allclose(res, rr, rtol=1e-4 if dtype == np.float32 else 1e-9, atol=1e-6, err_msg=name)
        assert st.dtype == dtype and res.shape == (15,), name


def test_kernels_propagate_nan_like_the_reference(rng):
    """Called directly, every kernel keeps a NaN where the reference (np.clip) keeps it: the old fused
    and elementwise kernels (fastmath=True) clipped NaN to 0, so EPNet.relax returned zeros for a NaN
    row and predict() labels for all-NaN input."""
    sizes = [6, 5, 4, 3]
    net, x, c, tgt, s = _relax_case(rng, sizes, 4, np.float64)
    c[1, 2] = np.nan                              # sample 1 only: samples do not interact
    expected = s.copy()
    R.ep_relax(c, net._vt, net._b, expected, sizes[1:], 4, 0.5, 0.6, tgt)
    assert np.isnan(expected[1]).all() and np.isfinite(expected[[0, 2, 3]]).all()
    for name, relax in RELAX.items():
        st = s.copy()
        relax(c, net._vt, net._b, st, sizes[1:], 4, 0.5, 0.6, tgt)
        np.testing.assert_allclose(st, expected, rtol=1e-12, equal_nan=True, err_msg=name)
    d = rng.normal(size=s.shape)
    d[0, 3] = np.nan
    s_ref, s_nb = s.copy(), s.copy()
    R.ep_update_elementwise(s_ref, d.copy(), 0.5, 0.6, tgt)
    K.ep_update_elementwise(s_nb, d.copy(), 0.5, 0.6, tgt)
    assert np.isnan(s_ref[0, 3])
    np.testing.assert_allclose(s_nb, s_ref, rtol=1e-12, equal_nan=True)


def test_kernel_rule_chooses_by_size():
    """The one size rule (cpu.ep_kernel_for, measured in docs/eqprop.md): fused for small couplings,
    BLAS for a 500x500 coupling at batches of 64 and more."""
    assert K.ep_kernel_for([500, 10], 20) == "fused" and K.ep_kernel_for([500, 10], 1000) == "fused"
    assert K.ep_kernel_for([500, 500, 10], 20) == "fused" and K.ep_kernel_for([500, 500, 10], 100) == "blas"
    assert K.ep_kernel_for([7], 5000) == "fused"


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
    for impl in ("numba", "numpy"):           # cpu.ep_update (in-place gemm) and reference.ep_update
        trial = copy.deepcopy(before)
        with kernels.use(impl):
            trial.ep_update(x, free, nudged, beta, lrs)
        for k in range(3):
            assert_close(f"dW_{k} ({impl})", trial.weights[k] - before.weights[k], -lrs[k] * gW[k].numpy(),
                         rtol=1e-10)
            assert_close(f"db_{k} ({impl})", trial.biases[k] - before.biases[k], -lrs[k] * gW[3 + k].numpy(),
                         rtol=1e-10)


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


# ------------------------------------------------------------------------------------------------
# reliability (issue #14): bad input, labels, arguments, divergence, checkpoints
# ------------------------------------------------------------------------------------------------

def test_non_finite_and_complex_input_is_an_error(rng):
    """The old kernel turned NaN into 0: relax gave an all-zero state, predict labels [0, 0]."""
    net = EPNet([4, 6, 3], rng=0)
    x = rng.uniform(0, 1, (3, 4))
    x[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"EPNet.relax: expected a finite input, got 1 NaN"):
        net.relax(x, 5)
    with pytest.raises(ValueError, match="EPNet.output: expected a finite input"):
        net.predict(np.full((2, 4), np.nan))
    with pytest.raises(ValueError, match="EPNet.fit: expected a finite X"):
        net.fit(np.full((20, 4), np.inf), np.zeros(20, np.int64))
    with pytest.raises(ValueError, match="EPNet.relax: expected a finite state"):
        net.relax(np.zeros((3, 4)), 5, state=np.full((3, 9), np.nan))
    with pytest.raises(ValueError, match="EPNet.relax: expected a real-valued input, got dtype complex128"):
        net.relax(np.zeros((3, 4)) + 1j, 5)
    with pytest.raises(ValueError, match="EPNet.energy: expected state of shape"):
        net.energy(np.zeros((3, 4)), np.zeros((3, 8)))


@pytest.mark.parametrize("labels, message", [
    ([-1, 0], r"must lie in \[0, 3\), got values in \[-1, 0\]"),      # was: silently the last class
    ([1.7, 0.0], r"integer class labels of shape \(B,\), got float64"),  # was: silently class 1
    ([3, 0], r"must lie in \[0, 3\), got values in \[0, 3\]"),       # was: a bare IndexError
])
def test_labels_are_validated_like_cross_entropy(labels, message):
    net = EPNet([4, 5, 3], rng=0)
    with pytest.raises(ValueError, match="EPNet.one_hot: .*" + message):
        net.one_hot(labels)
    with pytest.raises(ValueError, match="EPNet.fit: .*" + message.replace("labels", "y")):
        net.fit(np.zeros((2, 4)), labels, batch_size=2)
    np.testing.assert_array_equal(net.one_hot([2, 0]), [[0, 0, 1], [1, 0, 0]])


def test_label_length_mismatch_is_a_clear_error():
    net = EPNet([4, 5, 3], rng=0)
    with pytest.raises(ValueError, match="EPNet.fit: 40 examples but 39 y"):
        net.fit(np.zeros((40, 4)), np.zeros(39, np.int64))
    with pytest.raises(ValueError, match="EPNet.train_batch: 2 examples but 3 labels"):
        net.train_batch(np.zeros((2, 4)), [0, 1, 2])
    with pytest.raises(ValueError, match="EPNet.relax: 2 examples but 1 labels"):
        net.relax(np.zeros((2, 4)), 3, beta=0.5, target=[1])
    with pytest.raises(ValueError, match="EPNet.fit: give both X_test and y_test"):
        net.fit(np.zeros((40, 4)), np.zeros(40, np.int64), X_test=np.zeros((5, 4)))


@pytest.mark.parametrize("call, message", [
    (lambda n, X, y: n.fit(X, y, batch_size=0), "EPNet.fit: batch_size must be >= 1, got 0"),
    (lambda n, X, y: n.fit(X, y, batch_size=2.5), "EPNet.fit: batch_size must be an integer"),
    (lambda n, X, y: n.fit(X, y, eps=0.0), r"EPNet.fit: eps \(the step size\) must be > 0, got 0.0"),
    (lambda n, X, y: n.fit(X, y, eps=-0.5), r"EPNet.fit: eps \(the step size\) must be > 0"),
    (lambda n, X, y: n.fit(X, y, eps=float("nan")), "EPNet.fit: eps must be a finite real number, got nan"),
    (lambda n, X, y: n.fit(X, y, n_free=-1), "EPNet.fit: n_free must be >= 0, got -1"),
    (lambda n, X, y: n.fit(X, y, epochs=-1), "EPNet.fit: epochs must be >= 0, got -1"),
    (lambda n, X, y: n.fit(X, y, lrs=(0.1, float("nan"))), "EPNet.fit: each learning rate must be a finite"),
    (lambda n, X, y: n.fit(X, y, on_diverge="ignore"), "EPNet.fit: on_diverge must be 'stop' or 'raise'"),
    (lambda n, X, y: n.relax(X, steps=-1), "EPNet.relax: steps must be >= 0, got -1"),
    (lambda n, X, y: n.relax(X, eps=0), r"EPNet.relax: eps \(the step size\) must be > 0"),
    (lambda n, X, y: n.relax(X, beta=0.5), "EPNet.relax: beta=0.5 nudges the output towards a target"),
    (lambda n, X, y: n.predict(X, steps=-3), "EPNet.output: steps must be >= 0, got -3"),
    (lambda n, X, y: n.ep_update(X, n.zero_state(40), n.zero_state(40), 0.0, 0.1),
     "EPNet.ep_update: beta must be non-zero"),
])
def test_bad_arguments_raise_value_errors_naming_epnet(call, message):
    net = EPNet([4, 5, 3], rng=0)
    with pytest.raises(ValueError, match=message):
        call(net, np.zeros((40, 4)), np.zeros(40, np.int64))


@pytest.mark.parametrize("kwargs, message", [
    (dict(sizes=[4, 3.7, 2]), "EPNet: sizes must be an integer >= 1, got 3.7"),
    (dict(sizes=[4, 0, 2]), "EPNet: sizes must be >= 1, got 0"),
    (dict(sizes=[4]), "EPNet: sizes must list at least an input and an output size"),
    (dict(sizes=[4, 3], dtype=np.int64), "EPNet: dtype must be float32 or float64"),
    (dict(sizes=[4, 3], kernel="gpu"), "EPNet: kernel must be 'auto', 'fused' or 'blas'"),
])
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EPNet(**kwargs)


def test_fit_with_beta_zero_says_why_not_that_it_diverged():
    """beta=0 divided the update by zero and was reported as 'the dynamics diverged'."""
    net = EPNet([4, 5, 3], rng=0)
    with pytest.raises(ValueError, match=r"EPNet.fit: beta must be non-zero \(the EP update divides by beta\)"):
        net.fit(np.zeros((40, 4)), np.zeros(40, np.int64), beta=0)


def _digits_like(rng, n=40):
    return rng.uniform(0, 1, (n, 4)), rng.integers(0, 3, n)


def test_fit_flags_divergence_of_any_parameter(rng):
    """A huge rate on W_1 only: W_1 and b_1 overflow in the one batch of epoch 0 while W_0 stays finite.
    The old fit checked W_0 only and returned a train_error."""
    X, y = _digits_like(rng, 20)
    net = EPNet([4, 6, 3], rng=0, dtype=np.float64)
    start = net.state_dict()
    kw = dict(epochs=3, batch_size=20, lrs=(0.1, 1e308), random_sign=False)
    h = net.fit(X, y, **kw)
    assert h["diverged"] and h["diverged_epoch"] == 0 and h["train_error"].shape == (0,)
    for name, value in net.state_dict().items():          # the start of the diverging epoch is restored
        np.testing.assert_array_equal(value, start[name], err_msg=name)
    with pytest.raises(DivergenceError, match=r"EPNet.fit: weights.1 became non-finite or exceeded 1e\+06 in epoch 0"):
        net.fit(X, y, on_diverge="raise", **kw)
    assert net.history["diverged"]


def test_fit_flags_a_weight_growing_past_the_bound(rng):
    """Finite but runaway weights (|W| ~ 1e7 after one epoch) are divergence too."""
    X, y = _digits_like(rng)
    net = EPNet([4, 6, 3], rng=0, dtype=np.float64)
    h = net.fit(X, y, epochs=2, batch_size=20, lrs=(3e7, 3e7))
    assert h["diverged"] and h["diverged_epoch"] == 0
    ok = EPNet([4, 6, 3], rng=0, dtype=np.float64).fit(X, y, epochs=2, batch_size=20)
    assert not ok["diverged"] and ok["diverged_epoch"] == -1 and ok["train_error"].shape == (2,)


def test_checkpoint_round_trip(tmp_path, rng):
    X, y = _digits_like(rng)
    net = EPNet([4, 6, 5, 3], rng=0)
    net.fit(X, y, epochs=1, batch_size=20, lrs=(0.1, 0.05, 0.02))
    nnlocal.save(net, tmp_path / "ep.npz")
    other = EPNet([4, 6, 5, 3], rng=1)
    assert not np.array_equal(other.output(X, steps=30), net.output(X, steps=30))
    nnlocal.load(other, tmp_path / "ep.npz")
    for a, b in zip(other.weights + other.biases, net.weights + net.biases):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(other.output(X, steps=30), net.output(X, steps=30))
    with pytest.raises(KeyError, match="unexpected keys"):
        EPNet([4, 6, 3], rng=0).load_state_dict(net.state_dict())
    with pytest.raises(ValueError, match=r"EPNet.load_state_dict: 'weights.0' has shape \(4, 6\), expected \(4, 7\)"):
        EPNet([4, 7, 5, 3], rng=0).load_state_dict(net.state_dict())
    bad = net.state_dict()
    bad["biases.1"][0] = np.nan
    with pytest.raises(ValueError, match="EPNet.load_state_dict: expected a finite 'biases.1'"):
        other.load_state_dict(bad)


def test_numpy_and_numba_train_identically(rng):
    X, y = _digits_like(rng)
    nets = {}
    for impl, kernel in (("numpy", "auto"), ("numba", "fused"), ("numba", "blas")):
        with kernels.use(impl):
            net = nets[impl, kernel] = EPNet([4, 7, 6, 3], rng=3, dtype=np.float64, kernel=kernel)
            net.fit(X, y, epochs=2, batch_size=10, shuffle=True, lrs=(0.2, 0.1, 0.05))
    ref = nets["numpy", "auto"]
    for key, net in nets.items():
        for a, b in zip(net.weights + net.biases, ref.weights + ref.biases):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13, err_msg=str(key))


def test_numpy_switch_compiles_no_numba_kernel():
    """Under NNLOCAL_KERNELS=numpy a whole fit and predict never import cpu.py (nothing is compiled)."""
    code = ("import sys, numpy as np; from nnlocal.methods.eqprop import EPNet; "
            "net = EPNet([4, 6, 3], rng=0); r = np.random.default_rng(0); "
            "net.fit(r.uniform(0, 1, (20, 4)), r.integers(0, 3, 20), epochs=1, batch_size=10); "
            "net.predict(np.zeros((3, 4))); print('nnlocal.methods.eqprop.cpu' in sys.modules, 'numba' in sys.modules)")
    env = dict(os.environ, PYTHONPATH=str(REPO), NNLOCAL_KERNELS="numpy")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "False", out.stdout


# ------------------------------------------------------------------ one BLAS thread pool at a time
class _FakePool:
    def __init__(self, filepath, num_threads):
        self.filepath, self.num_threads = filepath, num_threads


@pytest.mark.parametrize("pools,expected", [
    ([("numpy-openblas", 2), ("scipy-openblas", 2)], False),   # two pools of two threads: they would fight
    ([("numpy-openblas", 1), ("scipy-openblas", 1)], True),
    ([("numpy-openblas", 1), ("scipy-openblas", 2)], False),
    ([("mkl", 2), ("mkl", 2)], True),                            # one library shared by numpy and scipy
])
def test_scipy_gemm_only_when_it_cannot_fight_numpys_blas(monkeypatch, pools, expected):
    from nnlocal.methods.eqprop import cpu

    monkeypatch.setattr(cpu, "_BLAS_POOLS", [_FakePool(f, n) for f, n in pools])
    assert cpu._one_blas_pool() is expected


def test_ep_update_is_the_same_through_scipys_gemm_and_numpys_product(monkeypatch, rng):
    """Both routes of W_0's in-place update give the reference's result (float64)."""
    from nnlocal.methods.eqprop import cpu, reference

    x = rng.random((4, 7))
    free = [rng.random((4, 5)), rng.random((4, 3))]
    nudged = [f + 0.1 * rng.standard_normal(f.shape) for f in free]
    W = [np.asfortranarray(rng.standard_normal((7, 5))), rng.standard_normal((5, 3))]
    b = [rng.standard_normal(5), rng.standard_normal(3)]
    ref_W, ref_b = copy.deepcopy(W), copy.deepcopy(b)
    reference.ep_update(x, free, nudged, ref_W, ref_b, 0.5, (0.1, 0.05))
    for one_pool in (True, False):
        monkeypatch.setattr(cpu, "_one_blas_pool", lambda one_pool=one_pool: one_pool)
        w, bb = copy.deepcopy(W), copy.deepcopy(b)
        cpu.ep_update(x, free, nudged, w, bb, 0.5, (0.1, 0.05))
        for i, (got, want) in enumerate(zip(w + bb, ref_W + ref_b)):
            assert_close(f"parameter {i}, one BLAS pool: {one_pool}", got, want, rtol=1e-12)
