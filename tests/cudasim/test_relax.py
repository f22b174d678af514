"""DEEP / asymmetric-EP / symmetric-EP relaxation and STDP: the CUDA kernels equal their CPU twins."""
import numpy as np
import pytest

from .conftest import assert_close


def _directed(rng, S=2, B=2, n_in=2, H=3, n_out=1, scale=0.6):
    N = n_in + H
    M = rng.normal(size=(S, H, H)) * scale
    c = rng.normal(size=(S, B, H))
    s = rng.uniform(0, 1, size=(S, B, N))
    target = rng.uniform(0, 1, size=(B, n_out))
    return M, c, s, target


@pytest.mark.parametrize("beta", [0.0, 0.8])
def test_linear_relax_matches_cpu(gpu, cpu, rng, beta):
    M, c, s0, target = _directed(rng)
    S, B, N = s0.shape
    steps = 4
    s_cpu, s_gpu = s0.copy(), s0.copy()
    traj_cpu = np.zeros((S, steps + 1, B, N))
    traj_gpu = np.zeros((S, steps + 1, B, N))
    r_cpu, n_cpu = cpu.linear_relax(M, c, s_cpu, 2, 1, steps, 0.1, beta, target, traj=traj_cpu)
    r_gpu, n_gpu = gpu.linear_relax(M, c, s_gpu, 2, 1, steps, 0.1, beta, target, traj=traj_gpu)
    assert r_gpu.shape == (S, steps) and r_gpu.dtype == np.float64
    assert n_gpu.dtype == np.int64
    np.testing.assert_array_equal(n_gpu, n_cpu)
    assert_close(s_gpu, s_cpu)
    assert_close(r_gpu, r_cpu)
    assert_close(traj_gpu, traj_cpu)
    assert not np.allclose(s_gpu, s0)  # the state did move (the test can fail)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")  # the simulator computes the inf in numpy
def test_linear_relax_early_stop_divergence_and_untouched_trajectory(gpu, cpu, rng):
    """Net 0 diverges (unclipped, huge couplings), net 1 stops early; both stop per net, like the CPU."""
    M, c, s0, _ = _directed(rng)
    M[0] *= 1e120
    S, B, N = s0.shape
    steps = 5
    out = []
    for k in (cpu, gpu):
        s = s0.copy()
        traj = np.full((S, steps + 1, B, N), -7.0)
        with np.errstate(over="ignore", invalid="ignore"):
            res, n = k.linear_relax(M, c, s, 2, 1, steps, 0.1, 0.0, None, -np.inf, np.inf, stop=1e3, traj=traj)
        out.append((s, res, n, traj))
    (s_c, r_c, n_c, t_c), (s_g, r_g, n_g, t_g) = out
    assert n_c[0] < steps and n_c[1] < steps          # the scenario exercises both exits
    np.testing.assert_array_equal(n_g, n_c)
    assert_close(r_g, r_c)
    assert_close(s_g, s_c)
    assert_close(t_g, t_c)                             # -7 sentinels left after the stop, as on the CPU


def test_deep_relax_single_net(gpu, cpu, rng):
    n_in, N, B = 3, 8, 2
    W = rng.normal(size=(N, N)) * 0.3
    s0 = rng.uniform(0, 0.1, size=(B, N))
    target = rng.uniform(size=(B, 2))
    s_c, s_g = s0.copy(), s0.copy()
    r_c, n_c = cpu.deep_relax(W, s_c, n_in, 2, 3, 0.05, 2.0, target, leak_abs=True)
    r_g, n_g = gpu.deep_relax(W, s_g, n_in, 2, 3, 0.05, 2.0, target, leak_abs=True)
    assert isinstance(n_g, int) and n_g == n_c and r_g.shape == (3,)
    assert_close(s_g, s_c)
    assert_close(r_g, r_c)


def test_asym_ep_relax_batched_nets(gpu, cpu, rng):
    S, n_in, N, B = 2, 2, 6, 2
    W = rng.normal(size=(S, N, N)) * 0.4
    b = rng.normal(size=(S, N)) * 0.1
    s0 = rng.uniform(0, 0.1, size=(S, B, N))
    s_c, s_g = s0.copy(), s0.copy()
    r_c, n_c = cpu.asym_ep_relax(W, b, s_c, n_in, 1, 3, 0.05)
    r_g, n_g = gpu.asym_ep_relax(W, b, s_g, n_in, 1, 3, 0.05)
    np.testing.assert_array_equal(n_g, n_c)
    assert_close(s_g, s_c)
    assert_close(r_g, r_c)


@pytest.mark.parametrize("stop", [0.0, 50.0])
def test_linear_relax_fused_stdp_equals_stdp_of_the_cpu_trajectory(gpu, cpu, rng, stop):
    """GPU extension ``stdp=``: DEEP's STDP sums accumulated during the relaxation equal
    ``stdp_accumulate`` of the CPU's recorded trajectory on the free columns (inputs 0), early stop or not."""
    M, c, s0, target = _directed(rng)
    S, B, N = s0.shape
    steps = 3
    s_c = s0.copy()
    traj = np.zeros((S, steps + 1, B, N))
    r_c, n_c = cpu.linear_relax(M, c, s_c, 2, 1, steps, 0.1, 1.5, target, stop=stop, traj=traj)
    expected = cpu.stdp_accumulate(traj, n_c, 0.3, 1.0)
    expected[:, :, :2] = 0
    s_g = s0.copy()
    raw = np.full((S, N, N), 5.0)               # written, not accumulated
    r_g, n_g = gpu.linear_relax(M, c, s_g, 2, 1, steps, 0.1, 1.5, target, stop=stop, stdp=raw, beta0=0.3, beta1=1.0)
    np.testing.assert_array_equal(n_g, n_c)
    assert_close(s_g, s_c)
    assert_close(r_g, r_c)
    assert_close(raw, expected)
    if stop:
        assert n_c.max() < steps


@pytest.mark.parametrize("stop", [0.0, 50.0])
def test_relax_phases_equals_cpu(gpu, cpu, rng, stop):
    """One epoch's free and nudged phase with the state kept on the device = the CPU kernel."""
    M, c, s0, target = _directed(rng)
    S, B, N = s0.shape
    out = []
    for k in (cpu, gpu):
        s, raw = s0.copy(), np.full((S, N, N), 3.0)
        out.append((k.relax_phases(M, c, s, 2, 1, 3, 2, 0.1, 1.5, target, stop=stop, stdp=raw, beta0=0.2), s, raw))
    (ph_c, s_c, raw_c), (ph_g, s_g, raw_g) = out
    np.testing.assert_array_equal(ph_g[2], ph_c[2])
    np.testing.assert_array_equal(ph_g[4], ph_c[4])
    for a, b in zip(ph_g, ph_c):
        assert_close(a, b)
    assert_close(s_g, s_c)
    assert_close(raw_g, raw_c)
    assert not np.allclose(ph_g[0], s_g)        # the nudged phase moved on from the free state


def test_nan_propagates_like_the_cpu(gpu, cpu, rng):
    """A NaN in the state stays NaN on the GPU (clip, residual, STDP sums), as in the CPU kernel."""
    M, c, s0, target = _directed(rng)
    s0[0, 1, 3] = np.nan
    S, B, N = s0.shape
    out = []
    for k in (cpu, gpu):
        s, raw = s0.copy(), np.zeros((S, N, N))
        with np.errstate(invalid="ignore"):
            res, n = k.linear_relax(M, c, s, 2, 1, 3, 0.1, 1.0, target, stdp=raw)
        out.append((s, res, n, raw))
    for a, b in zip(*out):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        assert_close(a, b)
    assert out[1][2][0] == 1 and np.isnan(out[1][3][0]).any()


def test_stdp_accumulate_matches_cpu(gpu, cpu, rng):
    traj = rng.uniform(size=(2, 4, 2, 3))
    traj[0, 2, 1, 0] = 0.0                    # exercises the a1 == 0 skip
    n_steps = np.array([3, 1])
    expected = cpu.stdp_accumulate(traj, n_steps, 0.2, 0.9)
    assert_close(gpu.stdp_accumulate(traj, n_steps, 0.2, 0.9), expected)


# ------------------------------------------------------------------------------------------------
# symmetric layered EP
# ------------------------------------------------------------------------------------------------

def _layered(rng, sizes=(3, 2, 2), B=2, n0=4, dtype=np.float64):
    couplings = [rng.normal(size=(a, b)).astype(dtype) * 0.7 for a, b in zip(sizes[:-1], sizes[1:])]
    W0 = rng.normal(size=(n0, sizes[0])).astype(dtype)
    x = rng.uniform(size=(B, n0)).astype(dtype)
    c = x @ W0
    H = sum(sizes)
    bias = (rng.normal(size=H) * 0.2).astype(dtype)
    s = rng.uniform(size=(B, H)).astype(dtype)
    target = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], B)]
    return couplings, c, bias, s, target


@pytest.mark.parametrize("beta", [0.0, 0.7])
def test_ep_relax_matches_cpu(gpu, cpu, rng, beta):
    sizes = (3, 2, 2)   # three non-input layers: the middle one is driven from below and above
    couplings, c, bias, s0, target = _layered(rng, sizes)
    vt = cpu.ep_pack_couplings(couplings)
    s_c, s_g = s0.copy(), s0.copy()
    r_c = cpu.ep_relax(c, vt, bias, s_c, sizes, 3, 0.5, beta, target)
    r_g = gpu.ep_relax(c, vt, bias, s_g, sizes, 3, 0.5, beta, target)
    assert r_g.shape == (3,)
    assert_close(s_g, s_c)
    assert_close(r_g, r_c)
    assert not np.allclose(s_g, s0)


def test_ep_relax_single_layer_and_resident_parameters(gpu, cpu, rng):
    sizes = (3, 2)
    couplings, c, bias, s0, target = _layered(rng, sizes)
    vt = cpu.ep_pack_couplings(couplings)
    s_c, s_g = s0.copy(), s0.copy()
    r_c = cpu.ep_relax(c, vt, bias, s_c, sizes, 2, 0.5, 0.5, target)
    r_g = gpu.ep_relax(c, *gpu.ep_resident(vt, bias), s_g, sizes, 2, 0.5, 0.5, target)   # device couplings
    assert_close(s_g, s_c)
    assert_close(r_g, r_c)
    # one non-input layer: no couplings at all (an empty vt, also when made resident)
    c1 = rng.normal(size=(2, 3))
    b1 = rng.normal(size=3)
    s1 = rng.uniform(size=(2, 3))
    s1c, s1g, s1r = s1.copy(), s1.copy(), s1.copy()
    expected = cpu.ep_relax(c1, np.zeros(0), b1, s1c, [3], 2, 0.5)
    assert_close(gpu.ep_relax(c1, np.zeros(0), b1, s1g, [3], 2, 0.5), expected)
    assert_close(gpu.ep_relax(c1, *gpu.ep_resident(np.zeros(0), b1), s1r, [3], 2, 0.5), expected)
    assert_close(s1g, s1c)
    assert_close(s1r, s1c)


def test_ep_relax_propagates_nan_like_the_cpu(gpu, cpu, rng):
    """The CUDA clip keeps a NaN as np.clip does (the CPU kernel used to map it to 0)."""
    sizes = (3, 2)
    couplings, c, bias, s0, target = _layered(rng, sizes)
    c[1, 0] = np.nan
    vt = cpu.ep_pack_couplings(couplings)
    s_c, s_g = s0.copy(), s0.copy()
    cpu.ep_relax(c, vt, bias, s_c, sizes, 2, 0.5, 0.5, target)
    gpu.ep_relax(c, vt, bias, s_g, sizes, 2, 0.5, 0.5, target)
    assert np.isnan(s_c[1]).any() and np.isfinite(s_c[0]).all()
    assert_close(s_g, s_c)
    d = rng.normal(size=s0.shape)
    d[0, 1] = np.nan
    s_c, s_g = s0.copy(), s0.copy()
    cpu.ep_update_elementwise(s_c, d.copy(), 0.5, 0.0)
    gpu.ep_update_elementwise(s_g, d.copy(), 0.5, 0.0)
    assert np.isnan(s_c[0, 1])
    assert_close(s_g, s_c)


def test_ep_relax_state_stays_on_device_between_phases(gpu, cpu, rng):
    """Free then nudged phase with the state resident on the device = the two CPU calls."""
    from numba import cuda

    sizes = (3, 2)
    couplings, c, bias, s0, target = _layered(rng, sizes)
    vt = cpu.ep_pack_couplings(couplings)
    s_c = s0.copy()
    cpu.ep_relax(c, vt, bias, s_c, sizes, 2, 0.5)
    r_c = cpu.ep_relax(c, vt, bias, s_c, sizes, 2, 0.5, 0.5, target)
    d_s, d_vt = cuda.to_device(s0), cuda.to_device(vt)   # couplings cached on the device too
    gpu.ep_relax_device(c, d_vt, bias, d_s, sizes, 2, 0.5)
    r_g = gpu.ep_relax_device(c, d_vt, bias, d_s, sizes, 2, 0.5, 0.5, target)
    assert_close(d_s.copy_to_host(), s_c)
    assert_close(r_g.copy_to_host(), r_c)


def test_ep_relax_float32(gpu, cpu, rng):
    sizes = (3, 2)
    couplings, c, bias, s0, target = _layered(rng, sizes, dtype=np.float32)
    vt = cpu.ep_pack_couplings(couplings)
    s_c, s_g = s0.copy(), s0.copy()
    r_c = cpu.ep_relax(c, vt, bias, s_c, sizes, 2, 0.5, 0.5, target)
    r_g = gpu.ep_relax(c, vt, bias, s_g, sizes, 2, 0.5, 0.5, target)
    assert s_g.dtype == np.float32 and r_g.dtype == np.float32
    assert_close(s_g, s_c, rtol=1e-5, atol=1e-6)
    assert_close(r_g, r_c, rtol=1e-4, atol=1e-6)


def test_ep_update_elementwise(gpu, cpu, rng):
    s0 = rng.uniform(size=(2, 5))
    d0 = rng.normal(size=(2, 5))
    target = rng.uniform(size=(2, 2))
    s_c, d_c, s_g, d_g = s0.copy(), d0.copy(), s0.copy(), d0.copy()
    res_c = cpu.ep_update_elementwise(s_c, d_c, 0.5, 0.3, target)
    res_g = gpu.ep_update_elementwise(s_g, d_g, 0.5, 0.3, target)
    assert isinstance(res_g, float)
    assert_close(res_g, res_c)
    assert_close(s_g, s_c)
    assert_close(d_g, d_c)
