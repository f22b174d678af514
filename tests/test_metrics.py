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
