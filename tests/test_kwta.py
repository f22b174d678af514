"""kWTA layers, synaptic scaling, the scheduler, the triplet loss and the centroid accuracy.

Every backward is compared with torch autograd on a twin written from the original's code
(``topk``-based threshold, float64, tie-free inputs).
"""
import math
import warnings

import numpy as np
import pytest

from nnlocal import nn
from nnlocal.methods.kwta.reference import kwta_k, kwta_threshold, kwta_threshold_sorted, kwta_winners
from nnlocal.methods import kwta
from tests.torch_twin import assert_close, compare_with_torch

SHAPES = [(5, 40), (3, 64), (4, 3, 4, 5), (2, 2, 7)]
SPARSITIES = [0.05, 0.1, 0.3, 0.5]


def _tie_free(rng, shape):
    """Random values with no two equal in a sample (a permutation scaled and jittered)."""
    b, d = shape[0], int(np.prod(shape[1:]))
    x = np.stack([rng.permutation(d) for _ in range(b)]).astype(np.float64)
    x = (x + rng.uniform(0.05, 0.95, size=x.shape)) / d * 4.0 - 2.0   # distinct, spread over (-2, 2)
    return x.reshape(shape)


# ------------------------------------------------------------------------------- torch twins
def _torch_threshold(torch, x, sparsity):
    """The original's ``get_kwta_threshold``: mean of the k-th and (k+1)-th largest via topk."""
    x2 = x.reshape(x.shape[0], -1)
    k = math.ceil(sparsity * x2.shape[1])
    top = torch.topk(x2, k + 1, dim=1).values
    return top[:, -2:].mean(dim=1).reshape(-1, *([1] * (x.dim() - 1)))


def _torch_hard(torch, sparsity):
    def twin(x, params):
        mask = (x > _torch_threshold(torch, x, sparsity)).to(x.dtype)
        return x + (mask - x).detach()  # value = mask, gradient = identity (straight-through)
    return twin


def _torch_soft(torch, sparsity, hardness, hard):
    def twin(x, params):
        z = hardness * (x - _torch_threshold(torch, x, sparsity))
        return torch.nn.functional.hardsigmoid(z) if hard else torch.sigmoid(z)
    return twin


# ------------------------------------------------------------------------------- the kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_threshold_kernel_matches_full_sort_reference(rng, dtype):
    for b, d in [(7, 10), (16, 512), (3, 2049)]:
        x = rng.standard_normal((b, d)).astype(dtype)
        for k in (1, 5, d // 3, d - 1):
            theta, i_k, i_k1 = kwta_threshold(x, k, return_boundary=True)
            np.testing.assert_array_equal(theta, kwta_threshold_sorted(x, k))
            assert theta.dtype == dtype
            s = -np.sort(-x, axis=1)
            rows = np.arange(b)
            np.testing.assert_array_equal(x[rows, i_k], s[:, k - 1])
            np.testing.assert_array_equal(x[rows, i_k1], s[:, k])
            np.testing.assert_array_equal(kwta_winners(x, k), x > theta[:, None])   # no rounding case here


def test_k_follows_the_original_formula_and_caps_at_d_minus_1():
    assert kwta_k(0.05, 256) == 13 and kwta_k(0.05, 512) == 26   # the README's "25" is really 26
    assert kwta_k(0.07, 100) == math.ceil(0.07 * 100) == 8          # float rounding, as the original
    with pytest.warns(RuntimeWarning, match="k = 9"):
        assert kwta_k(0.95, 10) == 9


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.0, 1.5, float("nan")])
def test_bad_sparsity_raises(bad):
    with pytest.raises(ValueError, match="sparsity"):
        kwta.KWinnersTakeAll(bad)
    with pytest.raises(ValueError, match="sparsity"):
        kwta.KWinnersTakeAllSoft(bad)
    with pytest.raises(ValueError, match="sparsity"):
        kwta_k(bad, 100)
    layer = kwta.KWinnersTakeAll(0.1)
    with pytest.raises(ValueError, match="sparsity"):
        layer.sparsity = bad


def test_bad_device_and_shapes_raise(rng):
    with pytest.raises(ValueError, match="device"):
        kwta.KWinnersTakeAll(0.1, device="gpu")
    with pytest.raises(ValueError, match="device"):
        kwta.WinnerTakeAll(device="gpu")
    with pytest.raises(ValueError, match=r"expected input of shape"):
        kwta.KWinnersTakeAll(0.1)(rng.standard_normal(10))
    with pytest.raises(ValueError, match="float"):
        kwta.KWinnersTakeAll(0.1)(np.arange(20).reshape(2, 10))
    with pytest.raises(RuntimeError, match="before forward"):
        kwta.KWinnersTakeAllSoft(0.1).backward(np.zeros((2, 10)))
    for layer in (kwta.KWinnersTakeAll(0.1), kwta.KWinnersTakeAllSoft(0.1), kwta.WinnerTakeAll()):
        layer(rng.standard_normal((2, 10)))
        with pytest.raises(ValueError, match="grad_output"):
            layer.backward(np.zeros((2, 9)))


# ------------------------------------------------------------------------------- exactly k winners
@pytest.mark.parametrize("cls", [kwta.KWinnersTakeAll, kwta.KWinnersTakeAllSoft])
def test_exactly_k_winners_without_ties(rng, cls):
    for _ in range(20):
        shape = (int(rng.integers(1, 9)), *rng.integers(2, 9, size=int(rng.integers(1, 4))))
        d = int(np.prod(shape[1:]))
        sparsity = float(rng.uniform(0.01, 0.99))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)   # k = D -> D-1
            k = kwta_k(sparsity, d)
            y = cls(sparsity).eval()(rng.standard_normal(shape).astype(np.float32))
        assert y.shape == shape and y.dtype == np.float32
        assert set(np.unique(y)) <= {0.0, 1.0}
        np.testing.assert_array_equal(y.reshape(shape[0], -1).sum(axis=1), k)


def test_ties_at_the_boundary_give_fewer_than_k_winners():
    # k = 2 of 5: the 2nd and 3rd largest are tied at 3.0, so theta = 3.0 and both tied entries lose
    x = np.array([[5.0, 3.0, 3.0, 1.0, 0.0], [4.0, 3.0, 2.0, 1.0, 0.0]])
    y = kwta.KWinnersTakeAll(0.4)(x)
    np.testing.assert_array_equal(y, [[1, 0, 0, 0, 0], [1, 1, 0, 0, 0]])
    # a tie strictly inside the winners (or the losers) does not matter
    y = kwta.KWinnersTakeAll(0.4)(np.array([[5.0, 5.0, 3.0, 1.0, 1.0]]))
    np.testing.assert_array_equal(y, [[1, 1, 0, 0, 0]])


def test_adjacent_floats_at_the_boundary_keep_exactly_k_winners():
    """θ, the midpoint of two adjacent float32 values, rounds onto one of them; x > θ (the
    original) then loses the k-th winner, the layer keeps it."""
    one = np.float32(1.0)
    x = np.array([[one, np.nextafter(one, np.float32(0)), 0.5, 0.2, 0.1]], dtype=np.float32)
    theta = kwta_threshold(x, 1)
    assert theta[0] == one and not np.any(x > theta[:, None])       # the original's rule: no winner
    np.testing.assert_array_equal(kwta.KWinnersTakeAll(0.2)(x), [[1, 0, 0, 0, 0]])


# ------------------------------------------------------------------------------- against torch
def test_hard_kwta_forward_and_straight_through_backward_match_torch(rng):
    torch = pytest.importorskip("torch")
    for shape in SHAPES:
        for s in SPARSITIES:
            x = _tie_free(rng, shape)
            layer = kwta.KWinnersTakeAll(s)
            compare_with_torch(layer, _torch_hard(torch, s), x)


@pytest.mark.parametrize("hard", [False, True])
def test_soft_kwta_forward_and_backward_through_theta_match_torch(rng, hard):
    torch = pytest.importorskip("torch")
    for shape in SHAPES:
        for s in SPARSITIES:
            hardness = float(rng.uniform(0.5, 4.0))
            x = _tie_free(rng, shape)
            layer = kwta.KWinnersTakeAllSoft(s, hardness, hard)
            compare_with_torch(layer, _torch_soft(torch, s, hardness, hard), x)


def test_soft_kwta_behind_a_linear_layer_matches_torch(rng):
    torch = pytest.importorskip("torch")
    net = nn.Sequential(nn.Linear(6, 30, rng=0), kwta.KWinnersTakeAllSoft(0.2, 3.0, hard=False))
    x = rng.standard_normal((8, 6))

    def twin(x_t, p):
        return _torch_soft(torch, 0.2, 3.0, False)(torch.nn.functional.linear(x_t, p["0.weight"], p["0.bias"]), p)

    compare_with_torch(net, twin, x)


def test_soft_kwta_gradient_includes_the_threshold_path(rng):
    """dL/dx = h e - ½ h Σe at the two boundary units (the hand rule of reference.soft_kwta_backward)."""
    x = _tie_free(rng, (3, 20))
    layer = kwta.KWinnersTakeAllSoft(0.25, 2.0, hard=False)
    y = layer(x)
    g = rng.standard_normal(x.shape)
    gx = layer.backward(g)
    e = g * y * (1 - y)
    expected = 2.0 * e
    order = np.argsort(-x, axis=1)
    k = 5
    for b in range(3):
        for i in (order[b, k - 1], order[b, k]):
            expected[b, i] -= 0.5 * 2.0 * e[b].sum()
    np.testing.assert_allclose(gx, expected, rtol=1e-12, atol=1e-12)


def test_soft_kwta_in_eval_is_the_hard_layer(rng):
    x = rng.standard_normal((6, 50))
    soft = kwta.KWinnersTakeAllSoft(0.1, 2.0).eval()
    np.testing.assert_array_equal(soft(x), kwta.KWinnersTakeAll(0.1)(x))
    g = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(soft.backward(g), g)


def test_winner_take_all_is_one_hot_and_leaves_its_input_alone(rng):
    torch = pytest.importorskip("torch")
    x = _tie_free(rng, (5, 3, 4))
    x_copy = x.copy()
    layer = kwta.WinnerTakeAll()
    y = layer(x)
    np.testing.assert_array_equal(x, x_copy)
    assert y.shape == x.shape
    np.testing.assert_array_equal(y.reshape(5, -1).sum(axis=1), 1)
    np.testing.assert_array_equal(y.reshape(5, -1).argmax(axis=1), x.reshape(5, -1).argmax(axis=1))

    def twin(x_t, p):
        flat = x_t.reshape(5, -1)
        onehot = torch.nn.functional.one_hot(flat.argmax(dim=1), flat.shape[1]).to(x_t.dtype).reshape(x_t.shape)
        return x_t + (onehot - x_t).detach()

    compare_with_torch(kwta.WinnerTakeAll(), twin, x)


def test_compile_kwta_replaces_soft_layers_and_keeps_eval_outputs(rng):
    net = kwta.mlp_kwta(in_features=12, hidden=8, embedding=40, sparsity=0.1, rng=0)
    wrapped = nn.Sequential(net, kwta.SynapticScaling(kwta.KWinnersTakeAllSoft(0.2, 3.0)))
    x = rng.standard_normal((7, 12))
    wrapped.to(np.float64).eval()
    before = wrapped(x)
    out = kwta.compile_kwta(wrapped)
    assert out is wrapped
    kinds = [type(m) for m in wrapped.modules() if isinstance(m, kwta.KWinnersTakeAll)]
    assert kinds == [kwta.KWinnersTakeAll, kwta.KWinnersTakeAll]
    assert not wrapped[0][3].training
    np.testing.assert_array_equal(wrapped(x), before)
    assert kwta.compile_kwta(kwta.KWinnersTakeAllSoft(0.3)).sparsity == 0.3


# ------------------------------------------------------------------------------- synaptic scaling
def test_synaptic_scaling_uses_the_cumulative_firing_rate(rng):
    boost, target = 1.5, 0.1
    layer = kwta.SynapticScaling(kwta.KWinnersTakeAll(0.1), boost_factor=boost, target_sparsity=target)
    xs = [rng.standard_normal((n, 30)) + 0.5 for n in (4, 7, 5)]
    seen = []
    for i, x in enumerate(xs):
        if seen:
            rate = np.concatenate(seen).mean(axis=0)     # all samples so far (not an EMA)
            np.testing.assert_allclose(layer.firing_rate, rate, rtol=1e-12)
            expected = kwta.KWinnersTakeAll(0.1)(x * np.exp(boost * (target - rate)))
        else:
            assert layer.firing_rate is None               # no rate yet: no scaling
            expected = kwta.KWinnersTakeAll(0.1)(x)
        y = layer(x)
        np.testing.assert_array_equal(y, expected)
        seen.append(y)
    assert int(layer.n_seen) == sum(len(x) for x in xs)
    # eval: neither scaling nor update
    rate = layer.firing_rate.copy()
    layer.eval()
    np.testing.assert_array_equal(layer(xs[0]), kwta.KWinnersTakeAll(0.1)(xs[0]))
    np.testing.assert_array_equal(layer.firing_rate, rate)


def test_synaptic_scaling_backward_matches_torch(rng):
    torch = pytest.importorskip("torch")
    layer = kwta.SynapticScaling(kwta.KWinnersTakeAllSoft(0.2, 2.5, hard=False), boost_factor=0.7,
                                 target_sparsity=0.2)
    layer(rng.standard_normal((9, 4, 5)))        # one update: a firing rate now exists
    rate = layer.firing_rate.copy()
    x = _tie_free(rng, (6, 4, 5))

    def twin(x_t, p):
        scale = torch.exp(0.7 * (0.2 - torch.from_numpy(rate)))    # detached, as the original
        return _torch_soft(torch, 0.2, 2.5, False)(x_t * scale, p)

    compare_with_torch(layer, twin, x)


def test_synaptic_scaling_state_dict_round_trip(rng):
    layer = kwta.SynapticScaling(kwta.KWinnersTakeAll(0.1), boost_factor=2.0)
    layer(rng.standard_normal((10, 20)))
    state = layer.state_dict()
    assert set(state) == {"firing_rate", "n_seen", "module.sparsity"}
    fresh = kwta.SynapticScaling(kwta.KWinnersTakeAll(0.1), boost_factor=2.0)
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(fresh.firing_rate, layer.firing_rate)
    assert int(fresh.n_seen) == 10


def test_synaptic_scaling_damps_a_busy_unit_only_for_positive_inputs():
    """The faithful quirk: a factor < 1 makes a negative pre-activation larger."""
    layer = kwta.SynapticScaling(kwta.KWinnersTakeAll(0.25), boost_factor=2.0)     # k = 1 of 4
    layer.load_state_dict({"firing_rate": np.array([1.0, 0.0, 0.0, 0.0]), "n_seen": np.array(1)}, strict=False)
    # unit 0 has the largest input in both rows; its factor is e^-2
    assert layer(np.array([[1.0, 0.9, 0.8, 0.7]]))[0, 0] == 0          # positive: damped, it loses
    assert layer(np.array([[-1.0, -1.1, -1.2, -1.3]]))[0, 0] == 1      # negative: pushed up, it wins


# ------------------------------------------------------------------------------- scheduler
def test_scheduler_compounds_like_the_original():
    net = kwta.mlp_kwta(in_features=4, hidden=4, embedding=20, sparsity=0.05, hardness=2.0)
    sched = kwta.KWTAScheduler(net, step_size=10, gamma_sparsity=0.7, min_sparsity=0.05, gamma_hardness=2.0,
                               max_hardness=20)
    layer = net[3]
    trace = {}
    for epoch in range(1, 41):
        sched.step()
        trace[epoch] = (layer.sparsity, layer.hardness)
    assert [trace[e][1] for e in (9, 10, 19, 20, 29, 30, 40)] == [2, 4, 4, 16, 16, 20, 20]
    assert all(s == 0.05 for s, _ in trace.values())


def test_scheduler_clean_exponential_extension():
    layer = kwta.KWinnersTakeAllSoft(0.4, 1.0)
    sched = kwta.KWTAScheduler(layer, step_size=2, gamma_sparsity=0.5, min_sparsity=0.01, gamma_hardness=3.0,
                               max_hardness=100, compounding=False)
    values = []
    for _ in range(6):
        sched.step()
        values.append((layer.sparsity, layer.hardness))
    assert values[1] == (0.2, 3.0) and values[3] == (0.1, 9.0) and values[5] == (0.05, 27.0)
    with pytest.raises(ValueError, match="no kWTA"):
        kwta.KWTAScheduler(nn.Linear(2, 2), step_size=1)


# ------------------------------------------------------------------------------- triplet loss
def _torch_triplet(torch, emb, a, p, n, margin):
    e = torch.tensor(emb, dtype=torch.float64, requires_grad=True)
    a, p, n = (torch.as_tensor(i) for i in (a, p, n))
    cos = torch.nn.functional.cosine_similarity
    loss = torch.relu(cos(e[a], e[n]) - cos(e[a], e[p]) + margin).mean()
    loss.backward()
    return loss.item(), e.grad.numpy()


def test_triplet_loss_value_and_gradient_match_torch_on_the_same_triples(rng):
    torch = pytest.importorskip("torch")
    for shape in [(12, 16), (20, 2, 3, 3)]:
        emb = rng.standard_normal(shape) + 0.3
        labels = rng.integers(0, 3, size=shape[0])
        a, p, n = kwta.sample_triplets(labels, rng)
        assert a.size > 0
        for margin in (0.5, 0.0, 2.5):   # 2.5: every triple active; 0: about half
            loss_fn = kwta.TripletCosineLoss(margin)
            value = loss_fn(emb, (a, p, n))
            grad = loss_fn.backward()
            value_t, grad_t = _torch_triplet(torch, emb.reshape(shape[0], -1), a, p, n, margin)
            assert_close("loss", value, value_t, rtol=1e-12)
            assert grad.shape == shape
            assert_close("dL/demb", grad.reshape(shape[0], -1), grad_t, rtol=1e-10)


def test_triplet_loss_accepts_a_triplet_array_and_rejects_bad_indices(rng):
    emb = rng.standard_normal((5, 4))
    t = np.array([[0, 1, 2], [3, 4, 0], [0, 1, 2]])
    fn = kwta.TripletCosineLoss(0.5)
    assert fn(emb, t) == fn(emb, (t[:, 0], t[:, 1], t[:, 2]))
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        fn(emb, np.array([[0, 1, 5]]))
    with pytest.raises(ValueError, match="no triplets"):
        fn(emb, (np.array([], int),) * 3)
    with pytest.raises(RuntimeError, match="before the loss"):
        kwta.TripletCosineLoss().backward()


def test_triplet_sampler_keeps_only_valid_triples_and_skips_empty_batches(rng):
    labels = np.array([0, 0, 1, 1, 1, 2, 2, 0])
    a, p, n = kwta.sample_triplets(labels, np.random.default_rng(3))
    assert a.size > 0
    assert np.all(a != p) and np.all(labels[a] == labels[p]) and np.all(labels[a] != labels[n])
    # M = U·B draws: compare with a direct re-draw from the same seed
    draws = np.random.default_rng(3).integers(0, 8, size=(3, 3 * 8))
    keep = (draws[0] != draws[1]) & (labels[draws[0]] == labels[draws[1]]) & (labels[draws[0]] != labels[draws[2]])
    np.testing.assert_array_equal(a, draws[0][keep])
    # same seed -> same triples
    np.testing.assert_array_equal(kwta.sample_triplets(labels, 3)[2], kwta.sample_triplets(labels, 3)[2])

    sampler = kwta.TripletLossSampler(kwta.TripletCosineLoss(0.5), rng=0)
    emb = rng.standard_normal((8, 6))
    assert np.isfinite(sampler(emb, labels))
    assert sampler.backward().shape == emb.shape
    with pytest.warns(RuntimeWarning, match="no valid"):
        assert sampler(emb, np.zeros(8, dtype=int)) is None       # one class: no negative exists
    with pytest.raises(RuntimeError):
        sampler.backward()


# ------------------------------------------------------------------------------- centroid accuracy
def test_centroid_accuracy_matches_a_direct_computation(rng):
    d, sparsity = 40, 0.1
    k = kwta_k(sparsity, d)
    train_y = rng.integers(0, 4, size=60)
    test_y = rng.integers(0, 4, size=30)
    prototypes = rng.standard_normal((4, d))
    binarise = kwta.KWinnersTakeAll(sparsity)
    train = binarise(prototypes[train_y] + 1.2 * rng.standard_normal((60, d)))
    test = binarise(prototypes[test_y] + 1.2 * rng.standard_normal((30, d)))

    correct = 0
    for e, y in zip(test, test_y):
        best, best_dist = None, np.inf
        for c in range(4):
            mean = train[train_y == c].mean(axis=0)
            top = sorted(mean, reverse=True)
            centroid = (mean > (top[k - 1] + top[k]) / 2).astype(float)
            dist = 1 - e @ centroid / (np.linalg.norm(e) * np.linalg.norm(centroid))
            if dist < best_dist:
                best, best_dist = c, dist
        correct += best == y
    acc = kwta.centroid_accuracy(train, train_y, test, test_y, sparsity)
    assert acc == correct / 30
    assert 0.25 < acc <= 1.0

    classes, centroids = kwta.binary_centroids(train, train_y + 10, sparsity)   # labels need not be 0..C-1
    np.testing.assert_array_equal(classes, [10, 11, 12, 13])
    pred = kwta.predict_nearest_centroid(test, classes, centroids)
    assert np.mean(pred == test_y + 10) == acc


def test_mlp_kwta_trains_with_the_triplet_loss(rng):
    """A few Adam steps of the README recipe on separable data raise the centroid accuracy."""
    from nnlocal import optim

    protos = rng.standard_normal((3, 10)) * 2
    y = rng.integers(0, 3, size=96)
    x = (protos[y] + 0.5 * rng.standard_normal((96, 10))).astype(np.float32)
    net = kwta.mlp_kwta(in_features=10, hidden=16, embedding=64, sparsity=0.1, hardness=2.0, rng=0)
    opt = optim.Adam(net.parameters(), lr=1e-2)
    sampler = kwta.TripletLossSampler(kwta.TripletCosineLoss(0.5), rng=0)
    losses = []
    for _ in range(40):
        net.train()
        loss = sampler(net(x), y)
        net.zero_grad()
        net.backward(sampler.backward())
        opt.step()
        losses.append(loss)
    net.eval()
    emb = net(x)
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    np.testing.assert_array_equal(emb.sum(axis=1), kwta_k(0.1, 64))
    assert kwta.centroid_accuracy(emb, y, emb, y, 0.1) > 0.9


# ------------------------------------------------------------------------------- bad input (issue 14)
def _layers():
    soft_eval = kwta.KWinnersTakeAllSoft(0.3).eval()
    return [kwta.KWinnersTakeAll(0.3), kwta.KWinnersTakeAllSoft(0.3), soft_eval, kwta.WinnerTakeAll(),
            kwta.SynapticScaling(kwta.KWinnersTakeAll(0.3))]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_raises_naming_the_layer(bad):
    """Hard kWTA used to give fewer than k winners on a NaN row, silently."""
    x = np.array([[1.0, 0.0, 2.0, 3.0, 0.5], [1.0, bad, 2.0, 3.0, 0.5]])
    for layer in _layers():
        with pytest.raises(ValueError, match=rf"(?s)^{type(layer).__name__}\(.*finite"):
            layer(x)
    for fn, args in [(kwta.binary_centroids, (x, [0, 1], 0.4)),
                     (kwta.predict_nearest_centroid, (x, [0], np.ones((1, 5)))),
                     (kwta.TripletCosineLoss(), (x, ([0], [1], [0])))]:
        with pytest.raises(ValueError, match="finite"):
            fn(*args)


def test_selection_on_nan_rows_has_no_boundary():
    """Called directly, the selection propagates NaN: θ = NaN, no winner, boundary index D; the
    other rows are untouched. The CUDA twin returns the same (tests/cudasim)."""
    from nnlocal.methods.kwta import cpu, reference

    x = np.array([[1.0, 0.0, np.nan], [3.0, 1.0, 2.0], [np.nan, 5.0, 4.0], [np.inf, -np.inf, 1.0]])
    for impl in (reference, cpu):
        theta, i_k, i_k1 = impl.kwta_threshold(x, 1, return_boundary=True)
        np.testing.assert_array_equal(theta, [np.nan, 2.5, np.nan, np.inf])
        np.testing.assert_array_equal(i_k, [3, 0, 3, 0])
        np.testing.assert_array_equal(i_k1, [3, 2, 3, 2])
        for got, want in zip(impl.kwta_boundary(x, 1), ([np.nan, 3, np.nan, np.inf], [np.nan, 2, np.nan, 1])):
            np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(impl.kwta_winners(x, 1).sum(axis=1), [0, 1, 0, 1])


def test_empty_batch_and_too_few_units_raise_naming_the_layer():
    for layer in _layers():
        name = type(layer).__name__
        with pytest.raises(ValueError, match=rf"(?s)^{name}\(.*B >= 1"):     # used to be "cannot reshape ..."
            layer(np.zeros((0, 10)))
    with pytest.raises(ValueError, match=r"^KWinnersTakeAll\(.*D >= 2"):
        kwta.KWinnersTakeAll(0.3)(np.zeros((3, 1)))


@pytest.mark.parametrize("bad", ["0.1", None, [0.1], True])
def test_non_numeric_arguments_raise_value_error(bad):
    for make in (lambda: kwta.KWinnersTakeAll(bad), lambda: kwta.KWinnersTakeAllSoft(0.1, hardness=bad),
                 lambda: kwta.SynapticScaling(kwta.KWinnersTakeAll(0.1), boost_factor=bad),
                 lambda: kwta.TripletCosineLoss(margin=bad)):
        with pytest.raises(ValueError, match="must be a real number"):      # '0.1' used to be a TypeError
            make()


@pytest.mark.parametrize("bad", [-1.0, 0.0, np.nan, np.inf])
def test_hardness_is_validated_after_construction(bad):
    layer = kwta.KWinnersTakeAllSoft(0.1, hardness=2.0)
    with pytest.raises(ValueError, match=r"KWinnersTakeAllSoft: hardness"):
        layer.hardness = bad
    assert layer.hardness == 2.0
    with pytest.raises(ValueError, match="hardness"):
        kwta.KWinnersTakeAllSoft(0.1, hardness=bad)


def test_nan_boost_target_and_margin_raise():
    inner = kwta.KWinnersTakeAll(0.1)
    for kw in ({"boost_factor": np.nan}, {"boost_factor": np.inf}, {"target_sparsity": np.nan},
               {"target_sparsity": 1.5}):
        with pytest.raises(ValueError, match="SynapticScaling"):
            kwta.SynapticScaling(inner, **kw)
    layer = kwta.SynapticScaling(inner)
    with pytest.raises(ValueError, match="boost_factor"):
        layer.boost_factor = np.nan
    for kw in ({"margin": np.nan}, {"eps": 0.0}, {"eps": np.nan}):
        with pytest.raises(ValueError, match="TripletCosineLoss"):
            kwta.TripletCosineLoss(**kw)
    for kw in ({"gamma_sparsity": np.nan}, {"max_hardness": -1.0}, {"min_sparsity": 1.0}, {"step_size": 1.5}):
        with pytest.raises(ValueError, match="KWTAScheduler"):
            kwta.KWTAScheduler(kwta.KWinnersTakeAllSoft(0.2), **({"step_size": 2} | kw))


def test_backward_needs_a_gradient_of_the_output_dtype(rng):
    x = rng.standard_normal((3, 10)).astype(np.float32)
    for layer in _layers():
        layer(x)
        for g in (np.ones((3, 10), dtype=np.int64), np.ones((3, 10), dtype=np.float64)):
            with pytest.raises(ValueError, match=r"backward: expected grad_output of dtype float32"):
                layer.backward(g)


def _scheduled_net():
    net = kwta.mlp_kwta(in_features=6, hidden=8, embedding=35, sparsity=0.2, hardness=2.0, rng=0)
    sched = kwta.KWTAScheduler(net, step_size=10, gamma_sparsity=0.5, min_sparsity=0.05, gamma_hardness=2.0,
                               max_hardness=20, compounding=False)
    return net, sched


def test_scheduled_sparsity_and_hardness_survive_save_and_load(tmp_path, rng):
    """They used to come back as 0.2 / 2.0 after a reload, and eval gave 7 winners per row, not 2."""
    import nnlocal

    net, sched = _scheduled_net()
    for _ in range(20):
        sched.step()
    assert (net[3].sparsity, net[3].hardness) == (0.05, 8.0)
    nnlocal.save(net, tmp_path / "net.npz")
    fresh, _ = _scheduled_net()
    nnlocal.load(fresh, tmp_path / "net.npz")
    assert (fresh[3].sparsity, fresh[3].hardness) == (0.05, 8.0)
    x = rng.standard_normal((4, 6)).astype(np.float32)
    np.testing.assert_array_equal(fresh.eval()(x).sum(axis=1), 2)


def test_scheduler_state_survives_save_and_load(tmp_path):
    """The scheduler's own state (epoch, initial values): a reloaded pair continues identically."""
    import nnlocal

    net, sched = _scheduled_net()
    for _ in range(20):
        sched.step()
    nnlocal.save(net, tmp_path / "net.npz")
    nnlocal.save(sched, tmp_path / "sched.npz")
    fresh, fresh_sched = _scheduled_net()
    nnlocal.load(fresh, tmp_path / "net.npz")
    fresh_sched.initial = [(0.3, 5.0)]        # the non-compounding schedule must not start from these
    nnlocal.load(fresh_sched, tmp_path / "sched.npz")
    assert fresh_sched.epoch == 20
    for _ in range(10):
        sched.step()
        fresh_sched.step()
    assert fresh[3].hardness == net[3].hardness == 16.0 and fresh[3].sparsity == net[3].sparsity == 0.05
    two = kwta.KWTAScheduler(nn.Sequential(net, kwta.KWinnersTakeAll(0.1)), step_size=1)
    with pytest.raises(ValueError, match="shape"):
        two.load_state_dict(sched.state_dict())
    with pytest.raises(KeyError, match="keys"):
        fresh_sched.load_state_dict({"epoch": np.array(3)})
    bad = sched.state_dict() | {"initial_sparsity": np.array([1.5])}
    with pytest.raises(ValueError, match="invalid state"):
        fresh_sched.load_state_dict(bad)
    assert fresh_sched.epoch == 30                # a refused state changes nothing
