"""The speed paths of the engine (issue #15) against their readable twins.

* ``input_grad=False`` on a convolution: backward computes no dL/dx (the col2im path is never
  entered), returns None, and leaves the parameter gradients exactly as with dL/dx; ``Sequential``
  stops there and refuses when an earlier layer has parameters.
* The chunked conv engine gives the same results whatever the chunk size, and under
  ``kernels.use("numpy")`` (the references) the same results as the Numba kernels.
* The new Numba kernels (the tap convolution, window-inner max pooling, window sums, the fused
  optimizer updates)
  against their NumPy references, non-finite input included (the kernel must give NaN where the
  reference does).
"""
from __future__ import annotations

import numpy as np
import pytest

from nnlocal import kernels, nn, optim
from nnlocal.kernels.conv import cpu as K
from nnlocal.kernels.conv import reference as R
from nnlocal.kernels.pool import cpu as PK
from nnlocal.kernels.pool import reference as PR
from nnlocal.nn import functional as F
from nnlocal.optim import cpu as OK
from nnlocal.optim import reference as OR


# ============================================================================ input_grad=False
@pytest.mark.parametrize("cls, kw", [(nn.Conv2d, dict(padding=1, groups=2)), (nn.Conv1d, dict(stride=2)),
                                     (nn.ConvTranspose2d, dict(stride=2, padding=1))])
def test_input_grad_false_skips_dx_and_keeps_the_parameter_gradients(cls, kw, monkeypatch, rng):
    full = cls(4, 6, 3, rng=0, dtype=np.float64, **kw)
    first = cls(4, 6, 3, rng=0, dtype=np.float64, input_grad=False, **kw)
    x = rng.standard_normal((3, 4) + (7,) * full.n)
    y = full(x)
    np.testing.assert_array_equal(first(x), y)
    g = rng.standard_normal(y.shape)
    gx = full.backward(g)
    assert gx.shape == x.shape
    calls = []
    for name in ("conv_input_grad", "conv_apply"):   # dx of a conv / of a transposed conv
        real = getattr(F, name)
        monkeypatch.setattr(F, name, lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k))
    assert first.backward(g) is None
    assert calls == []                               # no dL/dx work at all
    for p_full, p_first in zip(full.parameters(), first.parameters()):
        np.testing.assert_array_equal(p_first.grad, p_full.grad)


def test_linear_input_grad_false(rng):
    full, first = nn.Linear(5, 3, rng=0, dtype=np.float64), nn.Linear(5, 3, rng=0, dtype=np.float64, input_grad=False)
    x, g = rng.standard_normal((4, 5)), rng.standard_normal((4, 3))
    full(x)
    first(x)
    assert full.backward(g).shape == x.shape and first.backward(g) is None
    np.testing.assert_array_equal(first.weight.grad, full.weight.grad)
    np.testing.assert_array_equal(first.bias.grad, full.bias.grad)
    with pytest.raises(ValueError, match="Linear: input_grad must be True or False"):
        nn.Linear(2, 2, input_grad=1)


def test_input_grad_is_an_attribute_and_checked(rng):
    layer = nn.Conv2d(1, 2, 3, rng=0)
    assert layer.input_grad is True and "input_grad" not in repr(layer)
    layer.input_grad = False
    layer(rng.random((2, 1, 5, 5), dtype=np.float32))
    assert layer.backward(np.ones((2, 2, 3, 3), np.float32)) is None
    with pytest.raises(ValueError, match="Conv2d: input_grad must be True or False"):
        nn.Conv2d(1, 2, 3, input_grad="no")


def test_sequential_stops_at_a_first_layer_without_input_grad(rng):
    x = rng.random((2, 1, 8, 8))
    net = nn.Sequential(nn.Conv2d(1, 3, 3, rng=0, dtype=np.float64, input_grad=False), nn.ReLU(), nn.Flatten(),
                        nn.Linear(108, 4, rng=0, dtype=np.float64))
    ref = nn.Sequential(nn.Conv2d(1, 3, 3, rng=0, dtype=np.float64), nn.ReLU(), nn.Flatten(),
                        nn.Linear(108, 4, rng=0, dtype=np.float64))
    g = rng.standard_normal((2, 4))
    ref(x)
    net(x)
    assert ref.backward(g).shape == x.shape
    assert net.backward(g) is None
    for a, b in zip(net.parameters(), ref.parameters()):
        np.testing.assert_array_equal(a.grad, b.grad)
    # a parameterised layer before it would silently get no gradient: an error instead
    bad = nn.Sequential(nn.Linear(4, 4, rng=0), nn.Conv1d(1, 1, 1, rng=0, input_grad=False))
    bad(rng.random((2, 1, 4), dtype=np.float32) @ np.eye(4, dtype=np.float32))
    with pytest.raises(RuntimeError, match="input_grad=False"):
        bad.backward(np.ones((2, 1, 4), np.float32))


# ============================================================================ chunked engine
@pytest.mark.parametrize("groups", [1, 2])
def test_conv_results_do_not_depend_on_the_chunk_size(groups, monkeypatch, rng):
    x = rng.standard_normal((5, 4, 9, 8))
    w = rng.standard_normal((6, 4 // groups, 3, 2))
    b = rng.standard_normal(6)
    geom = F.ConvGeometry.make(x.shape, (3, 2), (2, 1), 1, 1, groups)
    gy = rng.standard_normal((5, 6) + geom.out_spatial)
    outs = []
    for chunk in (1, 1 << 12, 1 << 30):             # one sample per chunk, a few, the whole batch
        monkeypatch.setattr(F, "CHUNK_BYTES", chunk)
        outs.append((F.conv_apply(x, w, b, geom), F.conv_weight_grad(x, gy, geom, w.shape),
                     F.conv_input_grad(gy, w, geom)))
    for other in outs[1:]:
        np.testing.assert_array_equal(other[0], outs[0][0])      # the same GEMM per sample
        np.testing.assert_allclose(other[1], outs[0][1], rtol=1e-12)  # sums in another order
        np.testing.assert_array_equal(other[2], outs[0][2])


def test_numpy_references_and_numba_kernels_give_the_same_layers(rng):
    layers = [nn.Conv2d(3, 4, 3, padding="same", rng=0, dtype=np.float64), nn.MaxPool2d(2),
              nn.AvgPool2d(2), nn.ConvTranspose2d(4, 2, 3, stride=2, rng=0, dtype=np.float64)]
    x = rng.standard_normal((3, 3, 8, 8))
    results = []
    for impl in ("numpy", "numba"):
        with kernels.use(impl):
            net = nn.Sequential(*layers)
            net.zero_grad()
            y = net(x)
            gx = net.backward(np.cos(y))
            results.append([y, gx] + [p.grad.copy() for p in net.parameters()])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_im2col_and_col2im_write_into_given_buffers(rng):
    x = rng.standard_normal((2, 3, 6, 5))
    args = ((3, 2), (1, 2), ((1, 1), (0, 1)), (1, 1), (6, 3))
    for mod in (R, K):
        cols = mod.im2col(x, *args)
        buf = np.full((2,) + cols.shape[1:], np.nan)
        np.testing.assert_array_equal(mod.im2col(x, *args, out=buf), cols)
        np.testing.assert_array_equal(buf.reshape(cols.shape), cols)
        dx = mod.col2im(cols, x.shape, *args)
        padded = np.zeros((2, 3, 8, 6))
        np.testing.assert_array_equal(mod.col2im(cols, x.shape, *args, out=padded), dx)
        np.testing.assert_array_equal(padded[:, :, 1:7, 0:5], dx)


# ============================================================================ direct (tap) convolution
TAPS = [((1, 6), (5, 5), ((2, 2), (2, 2)), (1, 1), 1, (9, 8)), ((4, 8), (3, 3), ((1, 1), (1, 1)), (2, 1), 4, (7, 7)),
        ((3, 3), (4,), ((1, 2),), (2,), 3, (11,)), ((2, 4), (2, 3, 2), ((1, 1), (0, 1), (1, 0)), (1, 1, 2), 2, (4, 5, 6))]


@pytest.mark.parametrize("channels, k, pads, dil, groups, size", TAPS)
def test_tap_convolution_matches_the_reference_and_im2col(channels, k, pads, dil, groups, size, rng):
    (C, O) = channels
    assert K.taps_pay(k, (1,) * len(k), C // groups) and not R.taps_pay(k, (1,) * len(k), C // groups)
    x = rng.standard_normal((3, C) + size)
    w = rng.standard_normal((O, C // groups) + k)
    b = rng.standard_normal(O)
    out = tuple(s + lo + hi - d * (kk - 1) for s, (lo, hi), d, kk in zip(size, pads, dil, k))
    geom = F.ConvGeometry(x.shape, k, (1,) * len(k), pads, dil, groups, out)
    y = R.conv_taps(x, w, b, pads, dil, out, groups)
    with kernels.use("numpy"):                               # im2col + GEMM
        np.testing.assert_allclose(F.conv_apply(x, w, b, geom), y, rtol=1e-12, atol=1e-12)
        gy = rng.standard_normal(y.shape)
        dw = F.conv_weight_grad(x, gy, geom, w.shape)
    np.testing.assert_allclose(R.conv_taps_weight_grad(x, gy, w.shape, pads, dil, groups), dw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(K.conv_taps(x, w, b, pads, dil, out, groups), y, rtol=1e-12, atol=1e-12)
    assert K.conv_taps(x[:0], w, b, pads, dil, out, groups).shape == (0,) + y.shape[1:]     # an empty batch
    np.testing.assert_array_equal(K.conv_taps_weight_grad(x[:0], gy[:0], w.shape, pads, dil, groups), 0)
    np.testing.assert_allclose(K.conv_taps_weight_grad(x, gy, w.shape, pads, dil, groups), dw, rtol=1e-12, atol=1e-12)
    # non-finite input: NaN (and inf) exactly where the reference has them
    xb = _nonfinite(x, np.random.default_rng(1))
    with np.errstate(invalid="ignore", over="ignore"):
        for got, ref in ((K.conv_taps(xb, w, b, pads, dil, out, groups), R.conv_taps(xb, w, b, pads, dil, out, groups)),
                         (K.conv_taps_weight_grad(xb, gy, w.shape, pads, dil, groups),
                          R.conv_taps_weight_grad(xb, gy, w.shape, pads, dil, groups))):
            np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
            np.testing.assert_allclose(got[np.isfinite(ref)], ref[np.isfinite(ref)], rtol=1e-12, atol=1e-12)


def test_taps_are_used_only_where_they_pay():
    assert K.taps_pay((5, 5), (1, 1), 1) and K.taps_pay((3,), (1,), 1)
    assert not K.taps_pay((3, 3), (2, 2), 1) and not K.taps_pay((3, 3), (1, 1), 2)
    assert not K.taps_pay((1,) * 4, (1,) * 4, 1)              # n = 4: the reference path


def test_read_only_arrays_go_through_every_kernel(rng):
    """A kernel that reads an array one way writes it the other way (im2col / col2im, window sums and
    their adjoint share one loop): read-only inputs must still work, and be left alone."""
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    frozen = [a.copy() for a in (x, w)]
    for a in frozen:
        a.flags.writeable = False
    y = F.conv(*frozen)
    np.testing.assert_allclose(y, F.conv(x, w), rtol=1e-6)
    gy = y.copy()
    gy.flags.writeable = False
    np.testing.assert_allclose(F.conv_backward_input(x.shape, frozen[1], gy), F.conv_backward_input(x.shape, w, y),
                               rtol=1e-6)
    np.testing.assert_array_equal(F.avg_pool(frozen[0], 2), F.avg_pool(x, 2))
    np.testing.assert_array_equal(F.max_pool(frozen[0], 2), F.max_pool(x, 2))
    g = np.ones((2, 3, 3, 3), np.float32)
    g.flags.writeable = False
    np.testing.assert_array_equal(F.avg_pool_backward(g, x.shape, 2), np.full(x.shape, 0.25, np.float32))
    np.testing.assert_array_equal(frozen[0], x)


# ============================================================================ pooling kernels
POOLS = [((2, 2), (2, 2), (12, 10)), ((2, 2), (2, 2), (7, 9)), ((3, 3), (2, 2), (9, 9)), ((3, 2), (1, 3), (6, 8)),
         ((2,), (2,), (9,)), ((2, 2, 2), (2, 2, 2), (4, 5, 6))]


def _nonfinite(x, r):
    x = x.copy()
    flat = x.reshape(-1)
    for v in (np.nan, np.inf, -np.inf, np.nan):
        flat[r.integers(flat.size)] = v
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k, s, size", POOLS)
def test_valid_window_pool_kernels_match_references(k, s, size, dtype):
    r = np.random.default_rng(3)
    n = len(k)
    out = tuple((S - kk) // ss + 1 for S, kk, ss in zip(size, k, s))
    pads, dil = ((0, 0),) * n, (1,) * n
    for finite in (True, False):
        x = r.standard_normal((2, 3) + size).astype(dtype)
        if not finite:
            x = _nonfinite(x, r)
        y_ref, i_ref = PR.max_pool(x, k, s, pads, dil, out)
        y_nb, i_nb = PK.max_pool(x, k, s, pads, dil, out)
        np.testing.assert_array_equal(y_nb, y_ref)                  # NaN where the reference has NaN
        planes = x.reshape(6, -1)
        chosen = np.take_along_axis(planes, i_nb.reshape(6, -1), axis=1)
        np.testing.assert_array_equal(chosen, y_nb.reshape(6, -1))   # the index points at the max
        if finite:
            np.testing.assert_array_equal(i_nb, i_ref)
        s_ref, s_nb = PR.sum_pool(x, k, s, pads, out), PK.sum_pool(x, k, s, pads, out)
        assert s_nb.dtype == dtype
        tol = dict(rtol=1e-6, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(s_nb, s_ref, **tol)                # sums in another order
        assert np.array_equal(np.isnan(s_nb), np.isnan(s_ref))
        gy = r.standard_normal(s_ref.shape).astype(dtype)
        if not finite:
            gy = _nonfinite(gy, r)
        d_ref = PR.sum_pool_backward(gy, x.shape, k, s, pads, out)
        d_nb = PK.sum_pool_backward(gy, x.shape, k, s, pads, out)
        np.testing.assert_allclose(d_nb, d_ref, **tol)
        assert np.array_equal(np.isnan(d_nb), np.isnan(d_ref))


# ============================================================================ optimizer kernels
def _state(r, shape, dtype):
    return [r.standard_normal(shape).astype(dtype) for _ in range(2)] + [np.abs(r.standard_normal(shape)).astype(dtype)
                                                                         for _ in range(3)]


OPT_CASES = [
    ("sgd", dict(lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, first=False)),
    ("sgd", dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01, nesterov=False, first=True)),
    ("sgd", dict(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=True, first=False)),
    ("adam", dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, step=3, amsgrad=False)),
    ("adam", dict(lr=1e-2, beta1=0.5, beta2=0.9, eps=1e-3, weight_decay=0.1, step=1, amsgrad=True)),
    ("rmsprop", dict(lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False)),
    ("rmsprop", dict(lr=1e-2, alpha=0.9, eps=1e-4, weight_decay=0.01, momentum=0.5, centered=True)),
]


def _apply(mod, name, kw, arrays):
    p, g, a, b, c = arrays
    kw = dict(kw)
    if name == "sgd":
        mod.sgd_update(p, g, a, **kw)
    elif name == "adam":
        ams = kw.pop("amsgrad")
        mod.adam_update(p, g, a, b, c if ams else None, **kw)
    else:
        centered = kw.pop("centered")
        mod.rmsprop_update(p, g, b, a if kw["momentum"] > 0 else None, c if centered else None, **kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, kw", OPT_CASES, ids=lambda v: v if isinstance(v, str) else "")
def test_fused_optimizer_kernels_match_the_references_bitwise(name, kw, dtype):
    r = np.random.default_rng(5)
    for finite in (True, False):
        base = _state(r, (37, 5), dtype)
        if not finite:
            base[1] = _nonfinite(base[1], r)          # NaN/inf gradients
            base[0] = _nonfinite(base[0], r)          # and parameters
        ref, nb = [a.copy() for a in base], [a.copy() for a in base]
        with np.errstate(all="ignore"):
            _apply(OR, name, kw, ref)
        _apply(OK, name, kw, nb)
        for a, b in zip(nb, ref):
            np.testing.assert_array_equal(a, b)       # same values, NaN in the same places
    # a gradient stored transposed (another memory order) goes to the reference
    p, g, a, b, c = _state(r, (6, 4), dtype)
    ref = [p.copy(), np.asfortranarray(g), a.copy(), b.copy(), c.copy()]
    nb = [x.copy(order="K") for x in ref]
    with np.errstate(all="ignore"):
        _apply(OR, name, kw, ref)
        _apply(OK, name, kw, nb)
    for x, y in zip(nb, ref):
        np.testing.assert_array_equal(x, y)


def test_optimizers_use_the_switch(rng):
    """Adam under use("numpy") (the reference) and use("numba") (the fused kernel): the same trajectory."""
    traj = []
    for impl in ("numpy", "numba"):
        with kernels.use(impl):
            p = nn.Parameter(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4))
            opt = optim.Adam([p], lr=0.1, amsgrad=True, weight_decay=0.01)
            for step in range(5):
                p.grad = np.sin(np.arange(12, dtype=np.float32) + step).reshape(3, 4)
                opt.step()
            traj.append(p.data.copy())
    np.testing.assert_array_equal(traj[0], traj[1])


# ============================================================================ threads
def test_ep_fused_relaxation_is_the_same_on_any_number_of_threads(rng, monkeypatch):
    """The fused EP kernel spreads its sample pairs over the Numba threads (for large calls: here forced);
    states and residuals must not depend on how many there are (each pair owns its rows; residuals are
    summed in pair order), nor on which of the two compilations runs."""
    import numba

    from nnlocal.methods.eqprop import EPNet
    from nnlocal.methods.eqprop import cpu as EP

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("Numba was started with one thread")
    net = EPNet([30, 20, 20, 5], rng=0)
    x = rng.random((7, 30)).astype(np.float32)                     # odd: a pair of one sample
    target = np.eye(5, dtype=np.float32)[rng.integers(0, 5, 7)]
    before = numba.get_num_threads()
    runs = []
    try:
        for n, min_work in ((1, 1e30), (2, 0), (1, 0)):   # serial; threaded on 2 and on 1 thread
            monkeypatch.setattr(EP, "PARALLEL_MIN_WORK", min_work)
            numba.set_num_threads(n)
            assert EP._relax_kernel(7, 15, [20, 20, 5]) is (EP._ep_relax_parallel if n > 1 else EP._ep_relax_serial)
            s = np.zeros((7, net.H), np.float32)
            free = EP.ep_relax_fused(net.input_drive(x), net._vt, net._b, s, [20, 20, 5], 15, 0.5)
            nudged = EP.ep_relax_fused(net.input_drive(x), net._vt, net._b, s, [20, 20, 5], 4, 0.5, 0.5, target)
            runs.append((s, free, nudged))
    finally:
        numba.set_num_threads(before)
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(a, b)
