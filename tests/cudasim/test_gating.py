"""PAN gated products: the CUDA kernels equal their CPU twins."""
import numpy as np
import pytest

from .conftest import assert_close

M_OUT, N_IN, B = 3, 4, 2


@pytest.fixture
def pan(rng):
    tw = rng.normal(size=(M_OUT * N_IN, N_IN))
    tb = rng.normal(size=M_OUT * N_IN)
    sw = rng.normal(size=(M_OUT, N_IN))
    sb = rng.normal(size=M_OUT)
    x = rng.normal(size=(B, N_IN))
    mask = rng.uniform(size=(B, M_OUT, N_IN)) > 0.4
    g = rng.normal(size=(B, M_OUT))
    return tw, tb, sw, sb, x, mask, g


@pytest.mark.parametrize("threshold", [0.3, -np.inf])
def test_pan_batch_gate(gpu, cpu, pan, threshold):
    tw, tb, *_ , x, _, _ = pan
    s = x.sum(axis=0)
    m_c = cpu.pan_batch_gate(tw, s, tb, np.float64(B), np.float64(threshold), np.empty(len(tb), np.bool_))
    out = np.zeros(len(tb), np.bool_)
    m_g = gpu.pan_batch_gate(tw, s, tb, B, threshold, out)
    assert m_g is out
    np.testing.assert_array_equal(m_g, m_c)
    if np.isfinite(threshold):
        assert 0 < m_c.sum() < len(m_c)   # both outcomes occur


def test_pan_batch_gate_with_teacher_cached_on_device(gpu, cpu, pan):
    from numba import cuda

    tw, tb, *_ , x, _, _ = pan
    s = x.sum(axis=0)
    m_c = cpu.pan_batch_gate(tw, s, tb, np.float64(B), np.float64(0.0), np.empty(len(tb), np.bool_))
    m_g = gpu.pan_batch_gate(cuda.to_device(tw), s, tb, B, 0.0, np.empty(len(tb), np.bool_))
    np.testing.assert_array_equal(m_g, m_c)


def test_pan_per_sample_gate(gpu, cpu, pan):
    tw, tb, *_ , x, _, _ = pan
    tz = x @ tw.T
    m_c = cpu.pan_bias_threshold(tz, tb, np.float64(0.1), np.empty(tz.shape, np.bool_))
    np.testing.assert_array_equal(gpu.pan_bias_threshold(tz, tb, 0.1, np.empty(tz.shape, np.bool_)), m_c)
    # the whole per-sample gate: CPU = BLAS GEMM + threshold, GPU = one fused kernel
    np.testing.assert_array_equal(cpu.pan_sample_gate(tw, x, tb, np.float64(0.1), np.empty(tz.shape, np.bool_)), m_c)
    out = np.zeros(tz.shape, np.bool_)
    assert gpu.pan_sample_gate(tw, x, tb, 0.1, out) is out
    np.testing.assert_array_equal(out, m_c)
    assert 0 < m_c.sum() < m_c.size


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")   # the simulator's scalar 0·NaN
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_pan_masked_products_propagate_non_finite_input_like_cpu(gpu, cpu, pan, bad):
    """A NaN/inf input behind closed gates still reaches the output (0·NaN = NaN), on both devices."""
    _, _, sw, sb, x, mask, g = pan
    x, mask = x.copy(), mask.copy()
    x[1, 2] = bad
    mask[1] = False                                  # sample 1: every gate closed
    y_c = cpu.pan_sample_forward(mask, sw, x, sb, np.empty((B, M_OUT)))
    assert np.isnan(y_c[1]).all()
    assert_close(gpu.pan_sample_forward(mask, sw, x, sb, np.empty((B, M_OUT))), y_c)
    gsw_c, gx_c = cpu.pan_sample_backward(mask, sw, x, g, np.empty_like(sw), np.empty_like(x))
    gsw_g, gx_g = gpu.pan_sample_backward(mask, sw, x, g, np.empty_like(sw), np.empty_like(x))
    assert_close(gsw_g, gsw_c)
    assert_close(gx_g, gx_c)
    assert np.isnan(gsw_c[:, 2]).all()


def test_pan_sample_forward_backward(gpu, cpu, pan):
    _, _, sw, sb, x, mask, g = pan
    y_c = cpu.pan_sample_forward(mask, sw, x, sb, np.empty((B, M_OUT)))
    y_g = gpu.pan_sample_forward(mask, sw, x, sb, np.empty((B, M_OUT)))
    assert_close(y_g, y_c)
    gsw_c, gx_c = cpu.pan_sample_backward(mask, sw, x, g, np.empty_like(sw), np.empty_like(x))
    gsw_g, gx_g = gpu.pan_sample_backward(mask, sw, x, g, np.full_like(sw, 9.0), np.full_like(x, 9.0))
    assert_close(gsw_g, gsw_c)   # written, not accumulated: the 9.0 fill is gone
    assert_close(gx_g, gx_c)


def test_pan_gate_grad_and_add_outer(gpu, cpu, pan, rng):
    _, _, sw, _, x, mask, g = pan
    assert_close(gpu.pan_sample_gate_grad(sw, x, g, np.empty(mask.shape)),
                 cpu.pan_sample_gate_grad(sw, x, g, np.empty(mask.shape)))
    G = rng.normal(size=(5, 3))
    u, v = rng.normal(size=5), rng.normal(size=3)
    G_c, G_g = G.copy(), G.copy()
    cpu.pan_add_outer(G_c, u, v)
    assert gpu.pan_add_outer(G_g, u, v) is G_g
    assert_close(G_g, G_c)
