"""Mutual-information estimators on distributions with known answers, and SDR statistics."""
import math

import numpy as np
import pytest

from nnlocal import metrics


def _samples_from_counts(table):
    """Paired samples whose empirical joint distribution is exactly the integer count table."""
    a, b = [], []
    for i, row in enumerate(np.asarray(table)):
        for j, c in enumerate(row):
            a += [i] * int(c)
            b += [j] * int(c)
    return np.array(a), np.array(b)


def _h(p):
    p = np.asarray(p, dtype=float)
    p = p[p > 0] / p.sum()
    return float(-(p * np.log2(p)).sum())


def test_entropy_of_known_distributions():
    assert metrics.entropy(np.arange(8)) == pytest.approx(3.0)
    assert metrics.entropy(np.zeros(10)) == 0.0
    x = np.repeat([0, 1, 2, 3], [1, 2, 3, 2])
    assert metrics.entropy(x) == pytest.approx(_h([1, 2, 3, 2]), abs=1e-12)
    rows = np.array([[0, 1, 1], [0, 1, 1], [1, 0, 0], [1, 1, 1]])   # rows are symbols: counts 2, 1, 1
    assert metrics.entropy(rows) == pytest.approx(1.5)


def test_independent_variables_have_zero_information(rng):
    a = np.repeat(np.arange(4), 6)            # every (a, b) pair exactly once: a product distribution
    b = np.tile(np.arange(6), 4)
    assert metrics.mutual_info_discrete(a, b) == pytest.approx(0.0, abs=1e-12)
    assert metrics.mutual_info_table(np.outer([1, 2, 3], [4, 1])) == pytest.approx(0.0, abs=1e-12)
    # large independent samples: the plug-in bias is small and positive
    x, y = rng.integers(0, 4, 20000), rng.integers(0, 3, 20000)
    assert 0.0 <= metrics.mutual_info_discrete(x, y) < 0.002


def test_a_copy_carries_its_entropy():
    x = np.repeat([0, 1, 2, 3, 4], [5, 1, 1, 2, 7])
    h = _h([5, 1, 1, 2, 7])
    assert metrics.mutual_info_discrete(x, x) == pytest.approx(h, abs=1e-12)
    assert metrics.mutual_info_discrete(x, 10 * x + 3) == pytest.approx(h, abs=1e-12)   # any bijection
    assert metrics.mutual_info_table(np.diag([5, 1, 1, 2, 7])) == pytest.approx(h, abs=1e-12)


def test_known_joint_table():
    # P = [[3, 1], [1, 3]] / 8: I = 1 - H_b(1/4) bits
    table = np.array([[3, 1], [1, 3]])
    expected = 1.0 - (-(0.25 * math.log2(0.25) + 0.75 * math.log2(0.75)))
    assert metrics.mutual_info_table(table) == pytest.approx(expected, abs=1e-12)
    assert metrics.mutual_info_table(table / 8) == pytest.approx(expected, abs=1e-12)
    assert metrics.mutual_info_discrete(*_samples_from_counts(table)) == pytest.approx(expected, abs=1e-12)
    # a 3x4 table: compare with H(A) + H(B) - H(A, B) written out
    t = np.array([[4, 0, 1, 3], [2, 2, 0, 0], [1, 5, 6, 1]])
    expected = _h(t.sum(1)) + _h(t.sum(0)) - _h(t.ravel())
    assert metrics.mutual_info_discrete(*_samples_from_counts(t)) == pytest.approx(expected, abs=1e-12)
    assert metrics.mutual_info_discrete(*_samples_from_counts(t)[::-1]) == pytest.approx(expected, abs=1e-12)
    with pytest.raises(ValueError):
        metrics.mutual_info_table(np.array([[1, -1], [0, 1]]))


def test_binary_codes_are_symbols(rng):
    labels = np.repeat(np.arange(5), [10, 20, 5, 5, 10])
    codebook = (rng.random((5, 64)) < 0.1).astype(np.float32)     # one code word per class
    codebook[np.arange(5), np.arange(5)] = 1                       # all distinct
    codes = codebook[labels]
    h = _h([10, 20, 5, 5, 10])
    assert metrics.mutual_info_discrete(codes, labels) == pytest.approx(h, abs=1e-12)
    # two classes share a code word: I(T;Y) drops to the entropy of the merged variable
    merged = codes.copy()
    merged[labels == 1] = codebook[0]
    assert metrics.mutual_info_discrete(merged, labels) == pytest.approx(_h([30, 5, 5, 10]), abs=1e-12)
    # bool, float and int rows give the same symbols
    for c in (codes.astype(bool), codes.astype(np.int64)):
        np.testing.assert_array_equal(metrics.symbols(c), metrics.symbols(codes))


def test_binning_estimator(rng):
    y = rng.integers(0, 4, 400)
    t = np.stack([y * 10.0 + rng.uniform(0, 1, 400), -y * 5.0], axis=1)   # clusters far apart per class
    assert metrics.mutual_info_binned(t, y, n_bins=40) == pytest.approx(metrics.entropy(y), abs=1e-12)
    # a constant layer carries nothing
    assert metrics.mutual_info_binned(np.ones((50, 3)), rng.integers(0, 2, 50)) == 0.0
    bins = metrics.discretize(np.array([0.0, 0.24, 0.26, 0.74, 1.0]), n_bins=4)
    np.testing.assert_array_equal(bins, [0, 0, 1, 2, 3])
    np.testing.assert_array_equal(metrics.discretize(np.array([-5.0, 0.5, 9.0]), 2, (0, 1)), [0, 1, 1])


def test_information_plane(rng):
    x = rng.random((64, 10))                    # distinct inputs: each one is its own symbol
    y = np.repeat(np.arange(4), 16)
    codes = np.eye(8)[np.repeat(np.arange(8), 8)]     # T: 8 equiprobable code words, 2 per class
    ixt, ity = metrics.information_plane(x, codes, y)
    assert ixt == pytest.approx(3.0, abs=1e-12)   # = H(T): T is a function of X
    assert ity == pytest.approx(2.0, abs=1e-12)   # = H(Y): Y is a function of T
    # a continuous T is binned
    ixt, ity = metrics.information_plane(x, x[:, :1], y, n_bins=2)
    assert 0 < ixt <= 1.0 + 1e-12 and 0 <= ity <= ixt


def test_sdr_statistics():
    codes = np.array([[1, 1, 0, 0, 0],
                      [1, 0, 1, 0, 0],
                      [1, 0, 0, 1, 0],
                      [1, 1, 0, 0, 0]])
    st = metrics.sdr_statistics(codes)
    np.testing.assert_allclose(st["firing_rate"], [1, 0.5, 0.25, 0.25, 0])
    assert st["dead"] == 1 and st["overactive"] == 1
    np.testing.assert_array_equal(st["active_per_sample"], [2, 2, 2, 2])
    assert st["code_entropy"] == pytest.approx(1.5)
    assert st["unit_entropy"] == pytest.approx((0 + 1 + 2 * 0.8112781244591328 + 0) / 5)
    assert st["usage_entropy"] == pytest.approx(_h([1, 0.5, 0.25, 0.25]) / math.log2(5))
    with pytest.raises(ValueError, match="binary"):
        metrics.sdr_statistics(np.array([[0.5, 1.0]]))


# ---------------------------------------------------------------------------------- evaluate
class _Recorder:
    """A model that records every call (batch and train/eval mode) and returns fixed logits."""

    def __init__(self, logits, training=True, fail_at=None):
        self.logits, self.training, self.fail_at = logits, training, fail_at
        self.calls = []          # (first row index, batch length, training flag)
        self._seen = 0

    def __call__(self, xb):
        self.calls.append((int(xb[0, 0]), len(xb), self.training))
        if self.fail_at is not None and len(self.calls) > self.fail_at:
            raise RuntimeError("planted failure")
        out = self.logits[self._seen:self._seen + len(xb)]
        self._seen += len(xb)
        return out

    def train(self, mode=True):
        self.training = mode
        return self

    def eval(self):
        return self.train(False)


def _rows(n):
    """Inputs whose first column is the row index, so a recorder knows which rows it got."""
    return np.repeat(np.arange(n, dtype=np.float64)[:, None], 3, axis=1)


def test_evaluate_accuracy_and_loss_match_a_hand_computation(rng):
    from nnlocal import nn

    n, c = 23, 4
    logits = rng.standard_normal((n, c)) * 2
    y = rng.integers(0, c, n)
    y[:5] = logits[:5].argmax(axis=1)                      # some right, the rest at chance
    ev = metrics.evaluate(_Recorder(logits), _rows(n), y, batch_size=5, loss_fn=nn.CrossEntropyLoss())
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    assert ev.n == n
    assert ev.accuracy == np.mean(logits.argmax(axis=1) == y)
    assert ev.percent == pytest.approx(100 * ev.accuracy, rel=1e-15)
    # the mean over samples, not over batches (the last batch holds 3 samples, the others 5)
    assert ev.loss == pytest.approx(-np.mean(logp[np.arange(n), y]), rel=1e-13)
    assert math.isnan(metrics.evaluate(_Recorder(logits), _rows(n), y).loss)   # no loss function: NaN


def test_evaluate_runs_batches_in_order_in_eval_mode_and_restores_the_mode():
    n = 11
    logits = np.eye(3)[np.arange(n) % 3]
    for start_training in (True, False):
        model = _Recorder(logits, training=start_training)
        ev = metrics.evaluate(model, _rows(n), np.arange(n) % 3, batch_size=4)
        assert ev.accuracy == 1.0
        assert model.calls == [(0, 4, False), (4, 4, False), (8, 3, False)]   # in order, every call in eval mode
        assert model.training is start_training                              # the previous mode comes back
    model = _Recorder(logits, training=True, fail_at=1)
    with pytest.raises(RuntimeError, match="planted"):
        metrics.evaluate(model, _rows(n), np.arange(n) % 3, batch_size=4)
    assert model.training is True                                            # restored after an error too


def test_evaluate_batch_size_matters_for_a_batch_dependent_model():
    """A model whose output depends on its batch (as PAN's faithful batch gate): the result changes
    with the batch size, so evaluate must use exactly the batches it is given."""
    x = np.array([[1.0], [-3.0], [1.0], [1.0]])

    def batch_sign(xb):                     # class 1 where the batch sum is positive, else class 0
        return np.repeat([[0.0, 1.0] if xb.sum() > 0 else [1.0, 0.0]], len(xb), axis=0)

    y = np.ones(4, dtype=np.int64)
    assert metrics.evaluate(None, x, y, batch_size=1, forward=batch_sign).accuracy == 0.75
    assert metrics.evaluate(None, x, y, batch_size=2, forward=batch_sign).accuracy == 0.5
    assert metrics.evaluate(None, x, y, batch_size=4, forward=batch_sign).accuracy == 0.0


def test_evaluate_forward_hook_replaces_the_call_and_keeps_eval_mode():
    n = 6
    model = _Recorder(np.zeros((n, 2)), training=True)
    tasks_seen = []

    def guided(xb):                          # e.g. a BU-TD net told its task
        tasks_seen.append(model.training)
        return np.tile([0.0, 1.0], (len(xb), 1))

    ev = metrics.evaluate(model, _rows(n), np.ones(n, dtype=np.int64), batch_size=4, forward=guided)
    assert ev.accuracy == 1.0 and ev.n == n
    assert model.calls == []                 # the model itself was not called
    assert tasks_seen == [False, False] and model.training is True


@pytest.mark.parametrize("kwargs,pattern", [
    (dict(y=np.zeros(4, dtype=np.int64)), "5 inputs but 4 labels"),
    (dict(batch_size=0), "batch_size must be a positive integer, got 0"),
    (dict(batch_size=-2), "batch_size must be a positive integer"),
    (dict(batch_size=2.5), "batch_size must be a positive integer, got 2.5"),
    (dict(batch_size=True), "batch_size must be a positive integer, got True"),
    (dict(forward=lambda xb: np.zeros(len(xb))), r"returned shape \(5,\) for a batch of 5, expected \(5, classes\)"),
    (dict(forward=lambda xb: np.zeros((1, 3))), r"returned shape \(1, 3\) for a batch of 5"),
])
def test_evaluate_rejects_bad_arguments(kwargs, pattern):
    args = dict(y=np.zeros(5, dtype=np.int64), batch_size=10)
    args.update(kwargs)
    model = _Recorder(np.zeros((5, 3)))
    with pytest.raises(ValueError, match=pattern):
        metrics.evaluate(model, _rows(5), **args)
    assert model.training is True


def test_evaluate_on_an_empty_set_is_nan():
    ev = metrics.evaluate(_Recorder(np.zeros((0, 2))), np.zeros((0, 3)), np.zeros(0, dtype=np.int64))
    assert ev.n == 0 and math.isnan(ev.accuracy) and math.isnan(ev.loss)


def test_evaluate_a_real_model_in_eval_mode():
    """Dropout is active in train mode and off in eval mode: evaluate must see the eval-mode outputs."""
    from nnlocal import nn

    net = nn.Sequential(nn.Linear(6, 5, rng=0), nn.Dropout(0.9, rng=1), nn.Linear(5, 3, rng=2)).to(np.float64)
    x = np.random.default_rng(3).standard_normal((40, 6))
    net.eval()
    expected = net(x).argmax(axis=1)
    net.train()
    ev = metrics.evaluate(net, x, expected, batch_size=7)
    assert ev.accuracy == 1.0 and net.training
