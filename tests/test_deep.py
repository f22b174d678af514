"""DEEP and asymmetric EP: trajectories and updates against torch re-implementations written here
from the equations (docs/deep.md), kernels against their NumPy references, constraints,
Gershgorin diagnostics, the divergence guard, bad input, checkpoints, and a short learning check."""
import copy
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from tests.torch_twin import assert_close

import nnlocal
from nnlocal.methods.deep import cpu as K
from nnlocal.methods.deep import reference as R
from nnlocal.methods import deep

RTOL = 1e-10


def _random_net(cls, rng, std=0.6, **kw):
    net = cls(2, [5], 1, rng=rng, init_std=std, **kw)
    return net


# ------------------------------------------------------------------------------------------------
# torch twins (float64), written from the equations
# ------------------------------------------------------------------------------------------------

def torch_deep_step(torch, W, s, n_x, dt, beta=0.0, y=None, leak_abs=False, b=None):
    """One Euler step; DEEP if b is None (ds = sW - s ⊙ (W1)ᵀ), asymmetric EP otherwise (ds = sW + b - s)."""
    if b is None:
        leak = W.abs().sum(1) if leak_abs else W.sum(1)
        ds = s @ W - s * leak
    else:
        ds = s @ W + b - s
    if beta != 0:
        n_out = y.shape[1]
        ds = torch.cat([ds[:, :-n_out], ds[:, -n_out:] + beta * (y - s[:, -n_out:])], dim=1)
    new_free = torch.clamp(s[:, n_x:] + dt * ds[:, n_x:], 0.0, 1.0)
    return torch.cat([s[:, :n_x], new_free], dim=1)


def torch_trajectory(torch, W, s0, n_x, steps, dt, beta=0.0, y=None, leak_abs=False, b=None):
    traj = [s0]
    s = s0
    for _ in range(steps):
        s = torch_deep_step(torch, W, s, n_x, dt, beta, y, leak_abs, b)
        traj.append(s)
    return torch.stack(traj)


# ------------------------------------------------------------------------------------------------
# trajectories
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("leak_abs", [False, True])
def test_deep_trajectory_matches_torch(leak_abs):
    torch = pytest.importorskip("torch")
    net = _random_net(deep.DEEPNet, 3, leak_abs=leak_abs)
    X, Y = deep.logic_gate("XOR")
    s0 = net.init_state(X, rng=7)
    sf, info_f = net.relax(X, 60, 0.05, state=s0, info=True, trajectory=True)
    sn, info_n = net.relax(X, 60, 0.05, beta=10.0, target=Y, state=sf, info=True, trajectory=True)
    W = torch.tensor(net.W)
    tf = torch_trajectory(torch, W, torch.tensor(s0), net.n_x, 60, 0.05, leak_abs=leak_abs)
    tn = torch_trajectory(torch, W, tf[-1], net.n_x, 60, 0.05, 10.0, torch.tensor(Y), leak_abs=leak_abs)
    assert_close("free trajectory", info_f["trajectory"], tf.numpy(), rtol=RTOL)
    assert_close("nudged trajectory", info_n["trajectory"], tn.numpy(), rtol=RTOL)
    # the clip was active (the test covers both the interior and the projection)
    assert np.any(info_n["trajectory"][:, :, net.n_x:] == 0.0) or np.any(info_n["trajectory"][:, :, net.n_x:] == 1.0)
    # residual = Σ (Δs/dt)² per step
    t = tn.numpy()
    np.testing.assert_allclose(info_n["residuals"], (((t[1:] - t[:-1]) / 0.05) ** 2).sum(axis=(1, 2)), rtol=1e-9)


def test_asym_ep_trajectory_matches_torch():
    torch = pytest.importorskip("torch")
    net = _random_net(deep.AsymEPNet, 4)
    net.b[net.n_x:] = np.random.default_rng(0).normal(0, 0.3, net.n_free)
    X, Y = deep.logic_gate("XOR")
    s0 = net.init_state(X, rng=1)
    sf, inf = net.relax(X, 50, 0.05, state=s0, info=True, trajectory=True)
    sn, inn = net.relax(X, 50, 0.05, beta=10.0, target=Y, state=sf, info=True, trajectory=True)
    W, b = torch.tensor(net.W), torch.tensor(net.b)
    tf = torch_trajectory(torch, W, torch.tensor(s0), net.n_x, 50, 0.05, b=b)
    tn = torch_trajectory(torch, W, tf[-1], net.n_x, 50, 0.05, 10.0, torch.tensor(Y), b=b)
    assert_close("free trajectory", inf["trajectory"], tf.numpy(), rtol=RTOL)
    assert_close("nudged trajectory", inn["trajectory"], tn.numpy(), rtol=RTOL)


# ------------------------------------------------------------------------------------------------
# one full epoch (free phase, nudged phase, update, constraint) against torch
# ------------------------------------------------------------------------------------------------

def _torch_epoch(torch, net, X, Y, T1, T2, dt, beta, dt_W, kind, beta0=0.0, beta1=1.0):
    rng = copy.deepcopy(net.rng)  # the fit draws the initial state from the net's generator first
    x = net.inputs(X)
    s0 = np.concatenate([x, rng.uniform(0.0, 0.1, (x.shape[0], net.n_free))], axis=1)
    W = torch.tensor(net.W)
    b = torch.tensor(net.b) if kind == "asym" else None
    free = torch_trajectory(torch, W, torch.tensor(s0), net.n_x, T1, dt, b=b)[-1]
    traj = torch_trajectory(torch, W, free, net.n_x, T2, dt, beta, torch.tensor(Y), b=b)
    B = x.shape[0]
    mask = torch.tensor(net.mask.astype(np.float64))
    if kind == "deep":
        dW = torch.zeros_like(W)
        for t in range(1, T2 + 1):
            a1 = traj[t]
            a2 = beta0 * traj[t] + beta1 * (traj[t] - traj[t - 1])
            dW = dW + a1.T @ a2
        W_new = (W + dt_W / (B * T2) * dW) * mask
        return W_new.numpy(), None
    nudged = traj[-1]
    dW = dt_W / (beta * B) * free.T @ (nudged - free)
    db = dt_W / (beta * B) * (nudged - free).sum(0)
    W_new = (W + dW) * mask
    b_new = b + db
    b_new[: net.n_x] = 0
    return W_new.numpy(), b_new.numpy()


@pytest.mark.parametrize("beta0", [0.0, 0.5])
def test_deep_stdp_epoch_matches_torch(beta0):
    torch = pytest.importorskip("torch")
    net = _random_net(deep.DEEPNet, 11, std=0.3)
    X, Y = deep.logic_gate("XOR")
    W_t, _ = _torch_epoch(torch, net, X, Y, 40, 60, 0.05, 10.0, 100.0, "deep", beta0=beta0)
    net.fit(X, Y, epochs=1, T1=40, T2=60, dt=0.05, beta=10.0, dt_W=100.0, beta0=beta0)
    assert_close("W after one epoch", net.W, W_t, rtol=RTOL)


def test_asym_ep_epoch_matches_torch():
    torch = pytest.importorskip("torch")
    net = _random_net(deep.AsymEPNet, 12, std=0.3)
    X, Y = deep.logic_gate("XOR")
    W_t, b_t = _torch_epoch(torch, net, X, Y, 50, 50, 0.05, 10.0, 1.0, "asym")
    net.fit(X, Y, epochs=1, T1=50, T2=50, dt=0.05, beta=10.0, dt_W=1.0)
    assert_close("W after one epoch", net.W, W_t, rtol=RTOL)
    assert_close("b after one epoch", net.b, b_t, rtol=RTOL)


def test_sign_option_and_l1_step():
    X, Y = deep.logic_gate("XOR")
    a = _random_net(deep.DEEPNet, 5, std=0.3)
    b = copy.deepcopy(a)
    W0 = a.W.copy()
    a.fit(X, Y, epochs=1, T1=30, T2=30, dt_W=0.01, sign=True)
    # sign: every allowed entry moves by exactly ±dt_W (or 0 where the raw update is 0)
    step = np.abs(a.W - W0)[a.mask]
    assert np.all(np.isclose(step, 0.01) | np.isclose(step, 0.0))
    b.fit(X, Y, epochs=1, T1=30, T2=30, dt_W=0.0, regularized=True, reg_W=1e-3)
    np.testing.assert_allclose(b.W, (W0 - 1e-3 * np.sign(W0)) * b.mask, rtol=1e-12)


# ------------------------------------------------------------------------------------------------
# kernels against their NumPy references
# ------------------------------------------------------------------------------------------------

def _linear_problem(rng, S=3, B=4, n_x=3, H=6, n_out=2):
    M = rng.normal(0, 0.4, (S, H, H)) - 1.5 * np.eye(H)
    c = rng.normal(0, 0.5, (S, B, H))
    s = np.concatenate([np.broadcast_to(rng.uniform(0, 1, (B, n_x)), (S, B, n_x)),
                        rng.uniform(0, 1, (S, B, H))], axis=2)
    return M, c, s, rng.uniform(0, 1, (B, n_out))


@pytest.mark.parametrize("H", [6, 20])
def test_linear_relax_kernel_matches_reference_batched_with_early_stop(rng, H):
    n_x, n_out, T = 3, 2, 80
    M, c, s, y = _linear_problem(rng, H=H)
    S, B, N = s.shape
    assert K.uses_kernel(B, H)
    for stop in (0.0, 1e-3):
        s1, s2 = s.copy(), s.copy()
        t1, t2 = np.zeros((S, T + 1, B, N)), np.zeros((S, T + 1, B, N))
        p1, p2 = np.full((S, N, N), 7.0), np.full((S, N, N), 7.0)    # overwritten, not added to
        r1, n1 = K.linear_relax(M, c, s1, n_x, n_out, T, 0.1, 2.0, y, stop=stop, traj=t1, stdp=p1, beta0=0.3)
        r2, n2 = R.linear_relax(M, c, s2, n_x, n_out, T, 0.1, 2.0, y, stop=stop, traj=t2, stdp=p2, beta0=0.3)
        np.testing.assert_array_equal(n1, n2)
        np.testing.assert_allclose(s1, s2, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(t1, t2, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(r1, r2, rtol=1e-9, atol=1e-14, equal_nan=True)
        # the sums accumulated on the fly = the literal sums over the recorded trajectory (free columns)
        literal = R.stdp_accumulate(t2, n2, 0.3, 1.0)
        literal[:, :, :n_x] = 0
        np.testing.assert_allclose(p1, literal, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(p2, literal, rtol=1e-10, atol=1e-12)
    assert np.all(n1 < T)  # the early stop fired


def test_cpu_functions_have_the_signatures_of_their_references():
    import inspect

    assert set(K.__all__) <= set(R.__all__)
    for name in K.__all__:
        assert inspect.signature(getattr(K, name)) == inspect.signature(getattr(R, name)), name


def test_cpu_hands_large_problems_to_the_reference(rng, monkeypatch):
    """Above KERNEL_MAX_WORK (B·H² multiply-adds per step and net) the reference is faster, and
    cpu.linear_relax / cpu.relax_phases call it: the very same bits, the kernel never launched."""
    assert K.uses_kernel(4, 6) and K.uses_kernel(64, 6) and K.uses_kernel(4, 77)      # XOR; N = 80 with B = 4
    assert not K.uses_kernel(64, 272) and not K.uses_kernel(4, 872)                   # N = 275, 875
    M, c, s, y = _linear_problem(rng, H=9)
    monkeypatch.setattr(K, "KERNEL_MAX_WORK", 4 * 8 * 8)                              # B·H² = 324 > 256
    monkeypatch.setattr(K, "_linear_relax_kernel", None)
    monkeypatch.setattr(K, "_relax_phases_kernel", None)
    s1, s2, p1, p2 = s.copy(), s.copy(), np.zeros((3, 12, 12)), np.zeros((3, 12, 12))
    out1 = K.linear_relax(M, c, s1, 3, 2, 30, 0.1, 2.0, y, stdp=p1)
    out2 = R.linear_relax(M, c, s2, 3, 2, 30, 0.1, 2.0, y, stdp=p2)
    for a, b in zip(out1 + (s1, p1), out2 + (s2, p2)):
        np.testing.assert_array_equal(a, b)
    ph1, ph2 = K.relax_phases(M, c, s.copy(), 3, 2, 9, 9, 0.1, 2.0, y), R.relax_phases(M, c, s.copy(), 3, 2, 9, 9, 0.1,
                                                                                         2.0, y)
    for a, b in zip(ph1, ph2):
        np.testing.assert_array_equal(a, b)


def test_relax_phases_kernel_matches_reference(rng):
    M, c, s, y = _linear_problem(rng, H=7, n_out=1)
    out = []
    for impl in (K, R):
        s1, raw = s.copy(), np.zeros((3, 10, 10))
        out.append((impl.relax_phases(M, c, s1, 3, 1, 40, 30, 0.05, 5.0, y, stop=1e-6, stdp=raw, beta1=0.8), s1, raw))
    (ph1, s1, p1), (ph2, s2, p2) = out
    for a, b in zip(ph1, ph2):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13, equal_nan=True)
    np.testing.assert_allclose(s1, s2, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(p1, p2, rtol=1e-10, atol=1e-12)
    assert not np.allclose(ph1[0], s1)        # the nudged phase moved on from the free state


@pytest.mark.parametrize("where", ["state", "drive"])
def test_kernels_and_reference_agree_on_nan(rng, where):
    """Called directly, the kernel propagates NaN exactly as the reference does (no clip to a bound)."""
    M, c, s, y = _linear_problem(rng, H=6)
    if where == "state":
        s[0, 1, 5] = np.nan
    else:
        c[1, 2, 0] = np.nan
    results = []
    for impl in (K, R):
        s1 = s.copy()
        res, n = impl.linear_relax(M, c, s1, 3, 2, 20, 0.1, 2.0, y)
        s2 = s.copy()
        phases = impl.relax_phases(M, c, s2, 3, 2, 20, 20, 0.1, 2.0, y)
        results.append((s1, res, n, s2) + phases)
    for a, b in zip(*results):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, equal_nan=True)
    s1, res, n = results[0][:3]
    bad = 0 if where == "state" else 1
    assert n[bad] == 1 and np.isnan(res[bad, 0]) and np.isnan(s1[bad, :, 3:]).any()   # stopped, NaN kept
    assert n[2] == 20 and np.isfinite(s1[2]).all()                                     # the others ran on


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_deep_and_asym_kernels_match_references(dtype, rng):
    N, n_in, n_out, B, T = 9, 3, 1, 4, 70
    W = rng.normal(0, 0.5, (N, N)).astype(dtype)
    b = rng.normal(0, 0.2, N).astype(dtype)
    s = np.concatenate([rng.integers(0, 2, (B, n_in)), rng.uniform(0, 0.1, (B, N - n_in))], 1).astype(dtype)
    y = rng.integers(0, 2, (B, n_out)).astype(dtype)
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    for leak_abs in (False, True):
        s1, s2 = s.copy(), s.copy()
        K.deep_relax(W, s1, n_in, n_out, T, 0.05, 3.0, y, leak_abs=leak_abs)
        R.deep_relax(W, s2, n_in, n_out, T, 0.05, 3.0, y, leak_abs=leak_abs)
        assert s1.dtype == dtype
        np.testing.assert_allclose(s1, s2, **tol)
    s1, s2 = s.copy(), s.copy()
    K.asym_ep_relax(W, b, s1, n_in, n_out, T, 0.05, 3.0, y)
    R.asym_ep_relax(W, b, s2, n_in, n_out, T, 0.05, 3.0, y)
    np.testing.assert_allclose(s1, s2, **tol)


def test_stdp_gemm_equals_the_literal_sum_of_outer_products(rng):
    traj = rng.uniform(0, 1, (2, 31, 4, 9))
    n = np.array([30, 17])
    for b0, b1 in ((0.0, 1.0), (0.3, 0.7)):
        literal = np.zeros((2, 9, 9))
        for net in range(2):
            for t in range(1, n[net] + 1):
                a2 = b0 * traj[net, t] + b1 * (traj[net, t] - traj[net, t - 1])
                literal[net] += traj[net, t].T @ a2
        np.testing.assert_allclose(R.stdp_accumulate(traj, n, b0, b1), literal, rtol=1e-12, atol=1e-12)
        assert K.stdp_accumulate is R.stdp_accumulate   # no Numba kernel pays here


@pytest.mark.parametrize("implementation", ["numba", "numpy"])
def test_fit_many_equals_one_by_one(implementation):
    X, Y = deep.logic_gate("XOR")
    kw = dict(epochs=6, T1=100, T2=100, sparse=True, regularized=True) if implementation == "numba" else \
        dict(epochs=3, T1=20, T2=20, sparse=True, regularized=True)
    with nnlocal.kernels.use(implementation):
        singles = [deep.DEEPNet(2, [5], 1, rng=s) for s in range(3)]
        for n in singles:
            n.fit(X, Y, **kw)
        batch = [deep.DEEPNet(2, [5], 1, rng=s) for s in range(3)]
        hs = deep.fit_many(batch, X, Y, **kw)
    for a, b, h in zip(singles, batch, hs):
        np.testing.assert_array_equal(a.W, b.W)
        np.testing.assert_array_equal(a.history["mse"], h["mse"])


def test_fit_many_is_bit_identical_across_thread_counts():
    numba = pytest.importorskip("numba")
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba runs with one thread here")
    X, Y = deep.logic_gate("XOR", one_hot=True)
    before = numba.get_num_threads()
    Ws = []
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            nets = [deep.DEEPNet(2, [2], 2, one_hot=True, rng=s) for s in range(5)]
            deep.fit_many(nets, X, Y, epochs=4, T1=60, T2=60, beta=1.0, dt_W=200.0)
            Ws.append(np.stack([n.W for n in nets]))
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(Ws[0], Ws[1])


def test_numpy_and_numba_implementations_train_alike():
    X, Y = deep.logic_gate("XOR")
    nets = []
    for implementation in ("numpy", "numba"):
        with nnlocal.kernels.use(implementation):
            a, d = deep.AsymEPNet(2, [4], 1, rng=8), deep.DEEPNet(2, [4], 1, rng=8, leak_abs=True)
            a.fit(X, Y, epochs=2, T1=25, T2=25)
            d.fit(X, Y, epochs=2, T1=25, T2=25, beta0=0.2)
            nets.append((a, d))
    for n_np, n_nb in zip(*nets):
        np.testing.assert_allclose(n_nb.W, n_np.W, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(n_nb.b, n_np.b, rtol=1e-10, atol=1e-13)
        assert not np.allclose(n_np.history["dW_l1"], 0)


def test_numpy_implementation_compiles_no_numba_function(tmp_path):
    """Under NNLOCAL_KERNELS=numpy a fit, a relaxation and a prediction compile nothing."""
    code = """
import numpy as np, sys
from nnlocal.methods import deep
X, Y = deep.logic_gate("XOR", one_hot=True)
for cls in (deep.DEEPNet, deep.AsymEPNet):
    net = cls(2, [3], 2, one_hot=True, rng=0)
    net.fit(X, Y, epochs=2, T1=5, T2=5, sparse=True)
    net.relax(X, 5, info=True)
    net.predict(X, T=5)
from numba.core.dispatcher import Dispatcher
compiled = [f"{m}.{k}" for m, mod in list(sys.modules.items()) if m.startswith("nnlocal")
            for k, v in vars(mod).items() if isinstance(v, Dispatcher) and v.signatures]
print("compiled:", compiled, "cpu imported:", "nnlocal.methods.deep.cpu" in sys.modules)
"""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]), NNLOCAL_KERNELS="numpy",
               NUMBA_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "compiled: []" in out.stdout, out.stdout
    assert not list(tmp_path.rglob("*.nbi")), "a Numba cache file was written"


# ------------------------------------------------------------------------------------------------
# constraints, sparsification, diagnostics, guard
# ------------------------------------------------------------------------------------------------

def test_complete_graph_constraint():
    net = deep.DEEPNet(2, [5], 1, rng=0)
    assert net.N == 9 and net.n_x == 3
    assert int(net.mask.sum()) == 48          # spec: 48 free edges for 3-5-1
    assert not net.mask[:, :3].any() and not np.diag(net.mask).any()
    assert net.mask[3:, 3:].sum() == 30 and net.mask[8, 3]  # output -> hidden feedback allowed


def test_layered_constraint():
    m = deep.layered_mask([3, 4, 2, 1])       # inputs (x1, x2, bias), two hidden layers, one output
    assert m[:2, 3:7].all() and not m[:2, 7:].any()        # data inputs -> first hidden only
    assert m[2, 3:].all()                                  # the bias reaches every layer
    assert m[3:7, 7:9].all() and m[7:9, 3:7].all()         # adjacent forward and feedback
    assert m[7:9, 9].all() and m[9, 7:9].all()
    assert not m[3:7, 9].any() and not m[9, 3:7].any()     # no skips
    assert not m[3:7, 3:7].any() and not m[7:9, 7:9].any() and not m[9, 9]  # no intra-layer edges
    assert not m[:, :3].any()


@pytest.mark.parametrize("layered", [False, True])
def test_constraints_hold_after_updates_and_sparsification(layered):
    X, Y = deep.logic_gate("XOR")
    net = deep.DEEPNet(2, [3, 2], 1, layered=layered, rng=1)
    net.fit(X, Y, epochs=8, T1=100, T2=100, regularized=True, sparse=True, tol_W=0.05)
    assert np.all(net.W[~net.mask] == 0)
    a = deep.AsymEPNet(2, [3, 2], 1, layered=layered, rng=1)
    a.fit(X, Y, epochs=5, T1=100, T2=100, sparse=True, tol_W=0.05)
    assert np.all(a.W[~a.mask] == 0) and np.all(a.b[: a.n_x] == 0)


def test_sparsification_is_faithful_and_persistent_mask_persists():
    W = np.array([[0.0, 0.005, 0.5], [0.0, 0.0, -0.002], [0.0, 0.3, 0.0]])
    counts = np.zeros_like(W)
    g = np.random.default_rng(0)
    for _ in range(3000):
        Wp, pruned = deep.boltzmann_sparsify(W, tol_W=0.01, temp=5.0, rng=g)
        counts += (Wp == 0) & (W != 0)
    assert counts[0, 2] == 0 and counts[2, 1] == 0         # strong edges are never pruned
    # p normalised over all N rows of the column (forbidden / zero entries included): ≈ 1/3 here
    a = np.exp(-np.abs(W) / 5.0)
    p = a / a.sum(0)
    np.testing.assert_allclose(counts[0, 1] / 3000, p[0, 1], atol=0.03)
    np.testing.assert_allclose(counts[1, 2] / 3000, p[1, 2], atol=0.03)
    X, Y = deep.logic_gate("XOR")
    net = deep.DEEPNet(2, [5], 1, rng=3, init_std=0.01)
    net.fit(X, Y, epochs=6, T1=50, T2=50, dt_W=1.0, sparse=True, tol_W=0.05, persistent_mask=True)
    assert net.pruned.any() and np.all(net.W[net.pruned] == 0)


def test_gershgorin_on_hand_made_matrices():
    g = deep.gershgorin(np.array([[-2.0, 0.5], [0.5, -1.0]]))
    assert g["diag_negative"] and g["rows_fail"] == 0 and g["cols_fail"] == 0 and g["sufficient"]
    assert g["spectral_abscissa"] < 0
    g = deep.gershgorin(np.array([[-1.0, 2.0], [0.0, -1.0]]))
    assert g["rows_fail"] == 1 and g["cols_fail"] == 1 and not g["sufficient"]
    np.testing.assert_allclose(g["row_radii"], [2.0, 0.0])
    np.testing.assert_allclose(g["col_radii"], [0.0, 2.0])
    assert g["spectral_abscissa"] == pytest.approx(-1.0)    # stable although the discs say nothing
    g = deep.gershgorin(np.array([[0.5, 0.0], [0.0, -1.0]]))
    assert not g["diag_negative"] and not g["sufficient"]
    # DEEP's Jacobian from a hand-made W: n_x = 2 (x, bias), one hidden unit h (2), one output o (3)
    net = deep.DEEPNet(1, [1], 1, rng=0)
    net.W[...] = 0
    net.W[0, 2], net.W[1, 3] = 0.7, 0.1        # inputs -> free units (enter no Jacobian entry)
    net.W[2, 3], net.W[3, 2] = 0.4, 0.9        # h -> o, o -> h
    J = net.jacobian()
    np.testing.assert_allclose(J, [[-0.4, 0.9], [0.4, -0.9]])  # J[j,i] = W_ij, J[j,j] = -Σ_k W_jk
    g = net.gershgorin()
    assert g["diag_negative"] and g["rows_fail"] == 1 and g["cols_fail"] == 2  # ties count as failures
    a = deep.AsymEPNet(1, [1], 1, rng=0)
    a.W[...] = 0
    a.W[2, 3] = 0.5
    np.testing.assert_allclose(a.jacobian(), [[-1.0, 0.0], [0.5, -1.0]])
    assert a.gershgorin()["sufficient"]


def test_divergence_guard_stops_and_reports():
    X, Y = deep.logic_gate("XOR")
    net = deep.DEEPNet(2, [5], 1, clip=False, init_std=2.0, rng=0)   # the unprojected linear dynamics
    h = net.fit(X, Y, epochs=5, T1=2000, T2=10, dt=0.5)
    assert h["diverged"] and h["diverged_epoch"] == 0 and h["epochs_run"] == 0
    assert np.all(np.isfinite(net.W))
    net2 = deep.DEEPNet(2, [5], 1, clip=False, init_std=2.0, rng=0)
    with pytest.raises(nnlocal.DivergenceError):
        net2.fit(X, Y, epochs=5, T1=2000, T2=10, dt=0.5, on_diverge="raise")
    # an exploding learning rate: W overflows -> the last finite W is kept
    net3 = deep.DEEPNet(2, [5], 1, rng=0)
    h3 = net3.fit(X, Y, epochs=4, T1=50, T2=50, dt_W=1e308, sign=True)
    assert h3["diverged"] and np.all(np.isfinite(net3.W))


def test_interface_errors():
    with pytest.raises(ValueError, match="device"):
        deep.DEEPNet(2, [5], 1, device="gpu")
    net = deep.DEEPNet(2, [5], 1, rng=0)
    with pytest.raises(ValueError, match="without the bias"):
        net.relax(np.zeros((4, 3)), 5)
    with pytest.raises(ValueError):
        deep.logic_gate("NAND")
    X, _ = deep.logic_gate("XOR")
    with_bias = np.concatenate([X, np.ones((4, 1))], axis=1)   # nnlocal.data.logic_gate's convention
    np.testing.assert_array_equal(net.inputs(with_bias), net.inputs(X))
    assert net.device == "cpu" and "DEEPNet(3-5-1" in repr(net)


# ------------------------------------------------------------------------------------------------
# learning
# ------------------------------------------------------------------------------------------------

def test_deep_learns_and_in_most_seeds():
    X, Y = deep.logic_gate("AND")
    nets = [deep.DEEPNet(2, [5], 1, rng=s) for s in range(5)]
    hs = deep.fit_many(nets, X, Y, epochs=25)
    solved = sum(h["final_error"] == 0 and not h["diverged"] for h in hs)
    assert solved >= 4, [h["final_error"] for h in hs]
    assert all(n.predict(X).tolist() == [0, 0, 0, 1] for n, h in zip(nets, hs) if h["final_error"] == 0)


# ------------------------------------------------------------------------------------------------
# bad input (issue #14): a ValueError naming the class, never finite garbage
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [deep.DEEPNet, deep.AsymEPNet])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_an_error_naming_the_class(cls, bad):
    X, Y = deep.logic_gate("XOR")
    net = cls(2, [3], 1, rng=0)
    Xb = X.copy()
    Xb[1, 0] = bad
    for call in (lambda: net.relax(Xb, 5), lambda: net.predict(Xb, T=5), lambda: net.output(Xb, T=5),
                 lambda: net.fit(Xb, Y, epochs=1, T1=5, T2=5), lambda: net.init_state(Xb)):
        with pytest.raises(ValueError, match=cls.__name__ + r".*finite input"):
            call()
    Yb = Y.copy()
    Yb[2, 0] = bad
    with pytest.raises(ValueError, match=cls.__name__ + r".*finite target"):
        net.fit(X, Yb, epochs=1, T1=5, T2=5)
    state = net.init_state(X)
    state[0, -1] = bad
    with pytest.raises(ValueError, match=cls.__name__ + r".*finite state"):
        net.relax(X, 5, state=state)


@pytest.mark.parametrize("cls", [deep.DEEPNet, deep.AsymEPNet])
def test_complex_input_is_rejected_not_truncated(cls):
    X, Y = deep.logic_gate("XOR")
    net = cls(2, [3], 1, rng=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                     # no ComplexWarning on the way
        with pytest.raises(ValueError, match=cls.__name__ + r".*real-valued input.*complex128"):
            net.relax(X + 0j, 5)
        with pytest.raises(ValueError, match=cls.__name__ + r".*real-valued targets"):
            net.fit(X, Y + 0j, epochs=1, T1=5, T2=5)


@pytest.mark.parametrize("label", [-1, 1.7, 2, np.nan])
def test_class_labels_are_validated_like_cross_entropy(label):
    X, Y = deep.logic_gate("XOR", one_hot=True)
    net = deep.DEEPNet(2, [2], 2, one_hot=True, rng=0)
    y = np.array([0, 1, 1, 0], dtype=float)
    y[3] = label
    with pytest.raises(ValueError, match=r"DEEPNet: expected integer class labels in \[0, 2\) for 2 outputs, got"):
        net.fit(X, y, epochs=1, T1=5, T2=5)
    # valid labels, as ints or integral floats, are the one-hot targets
    h = [deep.DEEPNet(2, [2], 2, one_hot=True, rng=0).fit(X, t, epochs=2, T1=20, T2=20, beta=1.0)
         for t in (Y, np.array([0, 1, 1, 0]), np.array([0.0, 1.0, 1.0, 0.0]))]
    np.testing.assert_array_equal(h[0]["mse"], h[1]["mse"])
    np.testing.assert_array_equal(h[0]["mse"], h[2]["mse"])


_X, _Y = deep.logic_gate("XOR")


@pytest.mark.parametrize("call, match", [
    (lambda: deep.DEEPNet(2, [5], 1).relax(_X, steps=-1), "steps must be an integer >= 0"),
    (lambda: deep.DEEPNet(2, [5], 1).relax(_X, steps=2.5), "steps must be an integer"),
    (lambda: deep.DEEPNet(2, [5], 1).relax(_X, dt=0), "dt must be a finite number > 0"),
    (lambda: deep.AsymEPNet(2, [5], 1).relax(_X, dt=-0.1), "dt must be a finite number > 0"),
    (lambda: deep.DEEPNet(2, [5], 1).relax(_X, dt=np.nan), "dt must be a finite number > 0"),
    (lambda: deep.DEEPNet(2, [5], 1).relax(_X, stop=-1.0), "stop must be a finite number >= 0"),
    (lambda: deep.DEEPNet(2, [5], 1).relax(_X[:0]), "B >= 1"),
    (lambda: deep.DEEPNet(2, [5], 1).fit(_X, _Y, T2=0), r"DEEPNet.fit: T2 must be an integer >= 1"),
    (lambda: deep.DEEPNet(2, [5], 1).fit(_X, _Y, T1=-5), r"DEEPNet.fit: T1 must be an integer >= 1"),
    (lambda: deep.AsymEPNet(2, [5], 1).fit(_X, _Y, epochs=0), r"AsymEPNet.fit: epochs must be an integer >= 1"),
    (lambda: deep.AsymEPNet(2, [5], 1).fit(_X, _Y, beta=0), r"AsymEPNet.fit: beta must be a finite number other"),
    (lambda: deep.DEEPNet(2, [5], 1).fit(_X, _Y, dt=np.inf), r"DEEPNet.fit: dt must be"),
    (lambda: deep.DEEPNet(2, [5], 1).fit(_X, _Y, dt_W=np.nan), r"DEEPNet.fit: dt_W must be"),
    (lambda: deep.DEEPNet(2, [5], 1).fit(_X, _Y, temp=0.0, sparse=True), r"DEEPNet.fit: temp must be"),
    (lambda: deep.DEEPNet(2, [5], 1).fit(_X, _Y, on_diverge="ignore"), r"DEEPNet.fit: on_diverge must be"),
    (lambda: deep.DEEPNet(2, [5], 1, init_std=np.nan), r"DEEPNet: init_std must be a finite number >= 0"),
    (lambda: deep.AsymEPNet(2, [5], 1, init_std=-1), r"AsymEPNet: init_std must be a finite number >= 0"),
    (lambda: deep.DEEPNet(2, [5], 1, dtype=np.int64), r"DEEPNet: dtype must be float32 or float64"),
    (lambda: deep.DEEPNet(2, [5], 1, dtype="complex128"), r"DEEPNet: dtype must be float32 or float64"),
    (lambda: deep.DEEPNet(3.7, [5], 1), r"DEEPNet: n_in must be an integer >= 1"),
    (lambda: deep.AsymEPNet(2, [0], 1), r"AsymEPNet: hidden must be an integer >= 1"),
    (lambda: deep.DEEPNet(2, [5], 0), r"DEEPNet: n_out must be an integer >= 1"),
    (lambda: deep.fit_many([deep.DEEPNet(2, [5], 1), deep.DEEPNet(2, [4], 1)], _X, _Y), "same class, sizes"),
])
def test_argument_checks_name_the_class(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------------------------------------------
# divergence (issue #14): every parameter, non-finite or beyond WEIGHT_BOUND
# ------------------------------------------------------------------------------------------------

def test_unbounded_weight_growth_is_divergence():
    """The audit's case: dt_W = 1e300 gave |W| = 1e297 and no flag, even with on_diverge="raise"."""
    X, Y = deep.logic_gate("XOR")
    for cls in (deep.DEEPNet, deep.AsymEPNet):
        net = cls(2, [5], 1, rng=0)
        W0 = net.W.copy()
        h = net.fit(X, Y, epochs=3, T1=30, T2=30, dt_W=1e300)
        assert h["diverged"] and h["diverged_epoch"] == 0 and h["epochs_run"] == 0
        assert "W (max |W| =" in h["diverged_what"] and "WEIGHT_BOUND = 1e+06" in h["diverged_what"]
        np.testing.assert_array_equal(net.W, W0)                 # the last good W is kept
        assert np.abs(net.W).max() <= deep.WEIGHT_BOUND
        with pytest.raises(nnlocal.DivergenceError, match=cls.__name__ + r".fit \(net 0\): diverged at epoch 0: W"):
            cls(2, [5], 1, rng=0).fit(X, Y, epochs=3, T1=30, T2=30, dt_W=1e300, on_diverge="raise")


@pytest.mark.parametrize("factor, what", [(1e12, r"b \(max \|b\| = .* > WEIGHT_BOUND"),
                                          (np.nan, r"b \(a non-finite value\)")])
def test_every_parameter_is_checked_b_included(factor, what):
    class BiasBlowsUp(deep.AsymEPNet):
        def learning_rule(self, W, free, nudged, raw, cfg):
            dW, db = super().learning_rule(W, free, nudged, raw, cfg)
            return 0 * dW, db * factor

    X, Y = deep.logic_gate("XOR")
    net = BiasBlowsUp(2, [5], 1, rng=0)
    h = net.fit(X, Y, epochs=2, T1=20, T2=20)
    assert h["diverged"] and h["diverged_epoch"] == 0
    assert re.search(what, h["diverged_what"]), h["diverged_what"]
    assert np.all(net.b == 0)
    with pytest.raises(nnlocal.DivergenceError, match="BiasBlowsUp.fit"):
        BiasBlowsUp(2, [5], 1, rng=0).fit(X, Y, epochs=2, T1=20, T2=20, on_diverge="raise")


def test_unclipped_relaxation_that_blows_up_warns_and_is_flagged():
    X, _ = deep.logic_gate("XOR")
    net = deep.DEEPNet(2, [5], 1, clip=False, init_std=2.0, rng=0)   # the unprojected linear dynamics
    with pytest.warns(RuntimeWarning, match=r"DEEPNet.relax: the state diverged at step \d+ of 3000"):
        s, info = net.relax(X, 3000, 0.5, info=True)
    assert info["diverged"] and info["steps"] < 3000 and not np.isfinite(info["residuals"][info["steps"] - 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s, info = deep.DEEPNet(2, [5], 1, rng=0).relax(X, 100, info=True)   # the clipped dynamics: no warning
    assert not info["diverged"]


# ------------------------------------------------------------------------------------------------
# checkpoints (issue #14)
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [deep.DEEPNet, deep.AsymEPNet])
def test_save_and_load_round_trip(cls, tmp_path):
    X, Y = deep.logic_gate("XOR", one_hot=True)
    net = cls(2, [4], 2, one_hot=True, rng=3, init_std=0.01)
    net.fit(X, Y, epochs=5, T1=40, T2=40, beta=1.0, dt_W=1.0, sparse=True, tol_W=0.05, persistent_mask=True)
    assert net.pruned.any() and (cls is deep.DEEPNet or net.b.any())
    nnlocal.save(net, tmp_path / "net.npz")
    fresh = nnlocal.load(cls(2, [4], 2, one_hot=True, rng=99), tmp_path / "net.npz")
    for k in ("W", "b", "mask", "pruned"):
        np.testing.assert_array_equal(getattr(fresh, k), getattr(net, k))
    assert fresh.pruned.dtype == bool and fresh.W.dtype == net.W.dtype
    assert fresh.hparams == net.hparams and type(fresh.hparams["T1"]) is int
    assert type(fresh.hparams["persistent_mask"]) is bool and fresh.hparams["persistent_mask"]
    np.testing.assert_array_equal(fresh.output(X, rng=5), net.output(X, rng=5))   # T1 = 40 from hparams


def test_load_refuses_another_architecture_or_bad_values(tmp_path):
    net = deep.DEEPNet(2, [5], 1, rng=0)
    state = net.state_dict()
    for other, match in ((deep.DEEPNet(2, [4], 1), "sizes"), (deep.DEEPNet(2, [5], 1, layered=True), "layered"),
                         (deep.DEEPNet(2, [5], 1, leak_abs=True), "leak_abs")):
        W = other.W.copy()
        with pytest.raises(ValueError, match=r"DEEPNet.load_state_dict: .*" + match):
            other.load_state_dict(state)
        np.testing.assert_array_equal(other.W, W)                 # nothing changed
    with pytest.raises(KeyError, match="missing key 'pruned'"):
        net.load_state_dict({k: v for k, v in state.items() if k != "pruned"})
    with pytest.raises(KeyError, match="unexpected key 'extra'"):
        net.load_state_dict({**state, "extra": np.zeros(1)})
    bad = dict(state, W=np.where(net.mask, np.nan, 0.0))
    with pytest.raises(ValueError, match="'W' holds NaN"):
        net.load_state_dict(bad)
    with pytest.raises(KeyError):
        deep.AsymEPNet(2, [5], 1).load_state_dict(state)           # DEEP's leak_abs is not AsymEP state


def test_fit_config_and_keywords_are_the_same_settings():
    X, Y = deep.logic_gate("AND")
    cfg = deep.FitConfig(epochs=3, T1=30, T2=30, beta=5.0)
    a, b, c = (deep.DEEPNet(2, [3], 1, rng=4) for _ in range(3))
    deep.fit_many([a], X, Y, cfg)
    deep.fit_many([b], X, Y, epochs=3, T1=30, T2=30, beta=5.0)
    deep.fit_many([c], X, Y, cfg, T2=31)                           # keywords override the config
    np.testing.assert_array_equal(a.W, b.W)
    assert not np.array_equal(a.W, c.W) and c.hparams["T2"] == 31
    assert a.hparams == {**cfg.hparams(), "dt_W": 100.0}            # dt_W resolved for the class
    assert set(a.hparams) == {f for f in deep.FitConfig.__dataclass_fields__} - {"on_diverge"}
    with pytest.raises(TypeError):
        deep.fit_many([a], X, Y, epoch=3)                          # a misspelt setting is not ignored
