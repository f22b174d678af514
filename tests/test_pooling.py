"""MaxPool and AvgPool against torch: random configurations, stacks, functional API, kernels, errors.

MaxPool ties: the inputs here are tie-free (i.i.d. Gaussian), so the argmax is unique and the
gradient comparison is exact. On tied inputs nnlocal, like torch's CPU kernel, gives the whole
gradient to the *first* maximum in row-major window order (checked in ``test_max_pool_ties``).
"""
from __future__ import annotations

import numpy as np
import pytest

from nnlocal import nn
from nnlocal.kernels.pool import cpu as K
from nnlocal.kernels.pool import reference as R
from nnlocal.nn import functional as F
from nnlocal.nn import functional_pool

from .torch_twin import assert_close, compare_with_torch

torch = pytest.importorskip("torch")

N_CONFIGS = 12


def pool_config(idx: int, avg: bool) -> dict:
    r = np.random.default_rng((7000 if avg else 6000) + idx)
    k = tuple(int(v) for v in r.integers(1, 5, 2))
    stride = None if r.integers(3) == 0 else tuple(int(v) for v in r.integers(1, 4, 2))
    dil = (1, 1) if avg else tuple(int(v) for v in r.integers(1, 3, 2))
    pad = tuple(int(r.integers(0, kk // 2 + 1)) for kk in k)
    kw = dict(kernel_size=k, stride=stride, padding=pad, ceil_mode=idx % 3 == 1)
    if avg:
        kw["count_include_pad"] = bool(r.integers(2))
        if r.integers(5) == 0:
            kw["divisor_override"] = int(r.integers(1, 7))
    else:
        kw["dilation"] = dil
    size = tuple(d * (kk - 1) + 1 + int(r.integers(0, 6)) for kk, d in zip(k, dil))
    return dict(kw=kw, shape=(int(r.integers(1, 4)), int(r.integers(1, 4))) + size)


@pytest.mark.parametrize("idx", range(N_CONFIGS))
def test_max_pool2d_matches_torch(idx):
    cfg = pool_config(idx, avg=False)
    x = np.random.default_rng(idx).standard_normal(cfg["shape"])  # continuous: tie-free
    compare_with_torch(nn.MaxPool2d(**cfg["kw"]), torch.nn.MaxPool2d(**cfg["kw"]), x)


@pytest.mark.parametrize("idx", range(N_CONFIGS))
def test_avg_pool2d_matches_torch(idx):
    cfg = pool_config(idx, avg=True)
    x = np.random.default_rng(idx).standard_normal(cfg["shape"])
    compare_with_torch(nn.AvgPool2d(**cfg["kw"]), torch.nn.AvgPool2d(**cfg["kw"]), x)


def test_config_generator_covers_the_features():
    mx = [pool_config(i, False)["kw"] for i in range(N_CONFIGS)]
    av = [pool_config(i, True)["kw"] for i in range(N_CONFIGS)]
    for cfgs in (mx, av):
        assert any(c["stride"] is None for c in cfgs) and any(c["stride"] is not None for c in cfgs)
        assert any(max(c["padding"]) > 0 for c in cfgs) and any(c["ceil_mode"] for c in cfgs)
    assert any(max(c["dilation"]) > 1 for c in mx)
    assert any(not c["count_include_pad"] for c in av) and any("divisor_override" in c for c in av)


@pytest.mark.parametrize("n", [1, 3])
def test_1d_and_3d_pools_match_torch(n, rng):
    tmax = {1: torch.nn.MaxPool1d, 3: torch.nn.MaxPool3d}[n]
    tavg = {1: torch.nn.AvgPool1d, 3: torch.nn.AvgPool3d}[n]
    ours_max = {1: nn.pooling.MaxPool1d, 3: nn.pooling.MaxPool3d}[n]
    ours_avg = {1: nn.pooling.AvgPool1d, 3: nn.pooling.AvgPool3d}[n]
    x = rng.standard_normal((2, 3) + (7,) * n)
    for kw in (dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1)):
        compare_with_torch(ours_max(**kw), tmax(**kw), x)
        compare_with_torch(ours_avg(**kw), tavg(**kw), x)


# ============================================================================ a layer before the one under test
def test_conv_relu_maxpool_stack(rng):
    """LeNet's block: Sequential(Conv2d, ReLU, MaxPool2d) x 2 vs its torch twin (dL/dx through the pools).

    ReLU makes ties at 0 in all-negative windows; both libraries then pick the first entry, and
    ReLU's zero derivative there makes the choice irrelevant for dL/dx anyway."""
    ours = nn.Sequential(nn.Conv2d(1, 4, 5, padding=2, rng=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 6, 3, rng=2), nn.ReLU(), nn.MaxPool2d(3, stride=2, padding=1))
    twin = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                               torch.nn.Conv2d(4, 6, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(3, stride=2, padding=1))
    compare_with_torch(ours, twin, rng.standard_normal((3, 1, 16, 15)))


def test_conv_tanh_avgpool_stack(rng):
    ours = nn.Sequential(nn.Conv2d(2, 3, 3, rng=1), nn.Tanh(),
                         nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
                         nn.Conv2d(3, 3, 2, rng=2), nn.AvgPool2d(2, ceil_mode=True))
    twin = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.Tanh(),
                               torch.nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
                               torch.nn.Conv2d(3, 3, 2), torch.nn.AvgPool2d(2, ceil_mode=True))
    compare_with_torch(ours, twin, rng.standard_normal((2, 2, 13, 12)))


# ============================================================================ semantics
def test_max_pool_ties():
    """Ties: the first maximum in row-major window order takes the whole gradient (as torch CPU)."""
    x = np.array([[[[1.0, 3.0, 3.0, 0.0], [3.0, 2.0, 0.0, 0.0], [5.0, 5.0, 1.0, 1.0], [5.0, 5.0, 1.0, 1.0]]]])
    pool = nn.MaxPool2d(2)
    y = pool(x)
    gx = pool.backward(np.ones_like(y))
    x_t = torch.tensor(x, requires_grad=True)
    torch.nn.functional.max_pool2d(x_t, 2).sum().backward()
    np.testing.assert_array_equal(gx, x_t.grad.numpy())
    np.testing.assert_array_equal(gx[0, 0], [[0, 1, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]])


def test_overlapping_windows_add_their_gradients(rng):
    x = rng.standard_normal((1, 1, 5, 5))
    x[0, 0, 2, 2] = 10.0  # the max of all four overlapping 3x3 windows (stride 1)... and of more
    pool = nn.MaxPool2d(3, stride=1)
    pool(x)
    gx = pool.backward(np.ones((1, 1, 3, 3)))
    assert gx[0, 0, 2, 2] == 9.0 and gx.sum() == 9.0


def test_functional_pools_match_torch(rng):
    tf = torch.nn.functional
    x = rng.standard_normal((2, 3, 9, 8))
    for kw in (dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=(2, 3), stride=(1, 2), dilation=(2, 1)),
               dict(kernel_size=3, stride=2, ceil_mode=True)):
        x_t = torch.tensor(x, requires_grad=True)
        y_t = tf.max_pool2d(x_t, **kw)
        y, idx = F.max_pool_with_indices(x, **kw)
        assert_close("max_pool", y, y_t.detach().numpy())
        np.testing.assert_array_equal(idx, tf.max_pool2d(x_t, **kw, return_indices=True)[1].numpy())
        assert_close("max_pool", F.max_pool(x, **kw), y)
        gy = rng.standard_normal(y.shape)
        y_t.backward(torch.tensor(gy))
        assert_close("max_pool_backward", F.max_pool_backward(gy, idx, x.shape), x_t.grad.numpy())
    for kw in (dict(kernel_size=3, stride=2, padding=1, count_include_pad=False), dict(kernel_size=2),
               dict(kernel_size=3, stride=2, padding=1, ceil_mode=True), dict(kernel_size=(3, 1), divisor_override=2)):
        x_t = torch.tensor(x, requires_grad=True)
        y_t = tf.avg_pool2d(x_t, **kw)
        y = F.avg_pool(x, **kw)
        assert_close("avg_pool", y, y_t.detach().numpy())
        gy = rng.standard_normal(y.shape)
        y_t.backward(torch.tensor(gy))
        assert_close("avg_pool_backward", F.avg_pool_backward(gy, x.shape, **kw), x_t.grad.numpy())


@pytest.mark.parametrize("spatial, kw", [
    ((5, 5), dict(kernel_size=5)), ((7, 6), dict(kernel_size=3, stride=3, ceil_mode=True)),
    ((6, 6), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),  # last window would start in the padding
    ((4, 9), dict(kernel_size=(2, 4), stride=(5, 2), padding=(1, 2))), ((3, 3), dict(kernel_size=2, stride=5)),
])
def test_pool_output_shapes_match_torch(spatial, kw):
    for ours, theirs in ((nn.MaxPool2d(**kw), torch.nn.MaxPool2d(**kw)),
                         (nn.AvgPool2d(**kw), torch.nn.AvgPool2d(**kw))):
        expected = tuple(theirs(torch.zeros((1, 1) + spatial)).shape)
        assert ours(np.zeros((1, 1) + spatial)).shape == expected
        assert F.pool_output_shape(spatial, **kw) == expected[2:]


def test_dtypes_and_unbatched(rng):
    x = rng.standard_normal((3, 6, 6)).astype(np.float32)
    for pool in (nn.MaxPool2d(2), nn.AvgPool2d(3, 1, 1)):
        y = pool(x)
        assert y.dtype == np.float32 and y.shape[0] == 3 and y.ndim == 3
        assert pool.backward(np.ones_like(y)).shape == x.shape
        assert pool(x.astype(np.float64)).dtype == np.float64


def test_repr_matches_torch():
    for args, kw in [((2,), {}), ((3, 2, 1), {}), (((3, 2),), dict(stride=(1, 2), ceil_mode=True))]:
        assert repr(nn.MaxPool2d(*args, **kw)) == repr(torch.nn.MaxPool2d(*args, **kw))
        assert repr(nn.AvgPool2d(*args, **kw)) == repr(torch.nn.AvgPool2d(*args, **kw))


def test_bad_inputs_and_backward_before_forward():
    pool = nn.MaxPool2d(2)
    with pytest.raises(ValueError,
                       match=r"MaxPool2d\(kernel_size=2, .*expected input of shape \(B, C, H, W\), got \(4,\)"):
        pool(np.zeros(4, np.float32))
    with pytest.raises(ValueError, match=r"AvgPool2d.*float dtype.*int32"):
        nn.AvgPool2d(2)(np.zeros((1, 1, 4, 4), np.int32))
    with pytest.raises(ValueError, match=r"MaxPool2d.*too small"):
        nn.MaxPool2d(3)(np.zeros((1, 1, 2, 8), np.float32))
    with pytest.raises(ValueError, match="at most half"):
        nn.MaxPool2d(2, padding=2)
    with pytest.raises(ValueError, match="at most half"):
        F.avg_pool(np.zeros((1, 1, 4, 4)), 3, padding=2)
    with pytest.raises(ValueError, match=r"indices must be integers in \[0, 16\)"):
        F.max_pool_backward(np.ones((1, 1, 2, 2)), np.full((1, 1, 2, 2), 16), (1, 1, 4, 4))
    for layer in (nn.MaxPool2d(2), nn.AvgPool2d(2)):
        with pytest.raises(RuntimeError, match="before forward"):
            layer.backward(np.zeros((1, 1, 2, 2)))
        layer(np.zeros((1, 1, 4, 4)))
        with pytest.raises(ValueError, match="grad_output"):
            layer.backward(np.zeros((1, 1, 3, 2)))


# ============================================================================ Numba kernels vs NumPy references
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_kernels_match_numpy_references(dtype):
    r = np.random.default_rng(1)
    for n in (1, 2, 3):
        for idx in range(4):
            k = tuple(int(v) for v in r.integers(1, 4, n))
            d = tuple(int(v) for v in r.integers(1, 3, n))
            s = tuple(int(v) for v in r.integers(1, 3, n))
            p = tuple(int(r.integers(0, kk // 2 + 1)) for kk in k)
            shape = (2, 2) + tuple(dd * (kk - 1) + 1 + int(r.integers(0, 4)) for kk, dd in zip(k, d))
            x = r.standard_normal(shape).astype(dtype)
            geom, _ = functional_pool._pool_args(x, k, s, p, d, bool(idx % 2), "test")
            args = (geom.kernel, geom.stride, geom.pads, geom.dilation, geom.out_spatial)
            y_ref, i_ref = R.max_pool(x, *args)
            y_nb, i_nb = K.max_pool(x, *args)
            np.testing.assert_array_equal(y_nb, y_ref)
            np.testing.assert_array_equal(i_nb, i_ref)
            assert y_nb.dtype == dtype
            gy = r.standard_normal(y_ref.shape).astype(dtype)
            np.testing.assert_allclose(K.max_pool_backward(gy, i_nb, geom.in_shape),
                                       R.max_pool_backward(gy, i_ref, geom.in_shape), rtol=1e-6, atol=1e-6)


def test_empty_batch_like_torch():
    x = np.zeros((0, 3, 5, 5))
    for ours, theirs in ((nn.MaxPool2d(2), torch.nn.MaxPool2d(2)),
                         (nn.AvgPool2d(3, 1, 1), torch.nn.AvgPool2d(3, 1, 1))):
        y = ours(x)
        assert y.shape == tuple(theirs(torch.from_numpy(x)).shape)
        assert ours.backward(y).shape == x.shape
