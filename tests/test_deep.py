"""DEEP and asymmetric EP: trajectories and updates against torch re-implementations written here
from the equations (methods.md §3), kernels against their NumPy references, constraints,
Gershgorin diagnostics, the divergence guard, and a short learning check."""
import copy

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

def test_linear_relax_kernel_matches_reference_batched_with_early_stop(rng):
    S, B, n_in, H, n_out, T = 3, 4, 3, 6, 2, 80
    N = n_in + H
    M = rng.normal(0, 0.4, (S, H, H)) - 1.5 * np.eye(H)
    c = rng.normal(0, 0.5, (S, B, H))
    s = np.concatenate([np.broadcast_to(rng.uniform(0, 1, (B, n_in)), (S, B, n_in)),
                        rng.uniform(0, 1, (S, B, H))], axis=2)
    y = rng.uniform(0, 1, (B, n_out))
    for stop in (0.0, 1e-3):
        s1, s2 = s.copy(), s.copy()
        t1, t2 = np.zeros((S, T + 1, B, N)), np.zeros((S, T + 1, B, N))
        r1, n1 = K.linear_relax(M, c, s1, n_in, n_out, T, 0.1, 2.0, y, stop=stop, traj=t1)
        r2, n2 = R.linear_relax(M, c, s2, n_in, n_out, T, 0.1, 2.0, y, stop=stop, traj=t2)
        np.testing.assert_array_equal(n1, n2)
        np.testing.assert_allclose(s1, s2, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(t1, t2, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(r1, r2, rtol=1e-9, atol=1e-14, equal_nan=True)
    assert np.all(n1 < T)  # the early stop fired


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


def test_fit_many_equals_one_by_one():
    X, Y = deep.logic_gate("XOR")
    kw = dict(epochs=6, T1=100, T2=100, sparse=True, regularized=True)
    singles = [deep.DEEPNet(2, [5], 1, rng=s) for s in range(3)]
    for n in singles:
        n.fit(X, Y, **kw)
    batch = [deep.DEEPNet(2, [5], 1, rng=s) for s in range(3)]
    hs = deep.fit_many(batch, X, Y, **kw)
    for a, b, h in zip(singles, batch, hs):
        np.testing.assert_array_equal(a.W, b.W)
        np.testing.assert_array_equal(a.history["mse"], h["mse"])


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
