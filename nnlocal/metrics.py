r"""Information measures for layer representations, in bits, and SDR usage statistics.

Two deterministic mutual-information estimators (preferred here to the original's stochastic,
upward-biased MINE estimator):

* **plug-in, discrete** (:func:`mutual_info_discrete`): each distinct value, or each distinct
  *row* of a 2-D array (a binary SDR code word, a binned activation vector), is one symbol; the
  empirical joint distribution gives

  .. math::  I(A;B) = H(A) + H(B) - H(A,B),\qquad H(A) = -\sum_a \hat p(a)\log_2 \hat p(a).

  It is exact for the empirical distribution (:func:`mutual_info_table` gives the same from a
  joint count or probability table).
* **binning** (:func:`discretize`, :func:`mutual_info_binned`): a continuous layer is cut into
  ``n_bins`` equal-width bins over its range (one range for the whole layer, as in Shwartz-Ziv &
  Tishby 2017), then the plug-in estimator is applied to the binned rows.

:func:`information_plane` returns the pair (I(X;T), I(T;Y)) for inputs X, a layer T and labels Y.
Caveat of every plug-in estimate: it is bounded by log2 N for N samples; where (nearly) every
sample gets its own code word, I(X;T) ≈ H(T) ≈ log2 N and I(T;Y) ≈ H(Y). Estimate on a fixed
subset small enough that codes repeat, or read the numbers as upper bounds.

:func:`sdr_statistics` summarises how a binary code uses its units: firing rate per unit, dead
units (never active) and over-active units, per-unit entropy and the entropy of the code words.

:func:`evaluate` is the one classification evaluation loop of the demos and the tour (accuracy and
an optional mean loss, in eval mode, batches in order).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Evaluation", "evaluate", "symbols", "entropy", "mutual_info_table", "mutual_info_discrete", "discretize",
           "mutual_info_binned", "information_plane", "sdr_statistics"]


def symbols(x) -> np.ndarray:
    """Integer symbol ids ``(N,)``: distinct values of a 1-D array, or distinct rows of ``(N, ...)``.

    Rows are compared exactly (byte for byte); floats are allowed but should be discretised first.
    """
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError("symbols: expected an array of samples, got a scalar")
    if x.ndim == 1:
        return np.unique(x, return_inverse=True)[1].reshape(-1)
    rows = np.ascontiguousarray(x.reshape(x.shape[0], -1))
    if rows.dtype == bool or (rows.dtype.kind in "iuf" and rows.size and _is_binary(rows)):
        rows = np.packbits(rows.astype(bool), axis=1)        # 8 units per byte: much faster unique
    elif rows.dtype.kind == "f":
        rows = rows + 0.0                                     # -0.0 and 0.0 become one symbol
    void = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).reshape(-1)
    return np.unique(void, return_inverse=True)[1].reshape(-1)


def _is_binary(rows: np.ndarray) -> bool:
    return bool(np.all((rows == 0) | (rows == 1)))


def _entropy_of_counts(counts: np.ndarray) -> float:
    counts = np.asarray(counts, dtype=np.float64).reshape(-1)
    counts = counts[counts > 0]
    if counts.size == 0:
        return 0.0
    p = counts / counts.sum()
    return float(max(-(p * np.log2(p)).sum(), 0.0))


def entropy(x) -> float:
    """Plug-in entropy H(X) in bits of the samples ``x`` (values, or rows as symbols)."""
    return _entropy_of_counts(np.bincount(symbols(x)))


def mutual_info_table(joint) -> float:
    """I(A;B) in bits of a joint count or probability table ``joint[a, b]`` (exact)."""
    joint = np.asarray(joint, dtype=np.float64)
    if joint.ndim != 2:
        raise ValueError(f"mutual_info_table: expected a 2-D table, got shape {joint.shape}")
    if np.any(joint < 0) or joint.sum() <= 0:
        raise ValueError("mutual_info_table: the table must be non-negative with a positive total")
    h = _entropy_of_counts(joint.sum(axis=1)) + _entropy_of_counts(joint.sum(axis=0)) - _entropy_of_counts(joint)
    return max(h, 0.0)


def mutual_info_discrete(a, b) -> float:
    """Plug-in I(A;B) in bits of paired samples (values, or rows as symbols, e.g. binary SDRs)."""
    sa, sb = symbols(a), symbols(b)
    if sa.size != sb.size:
        raise ValueError(f"mutual_info_discrete: {sa.size} samples of A but {sb.size} of B")
    nb = int(sb.max()) + 1 if sb.size else 1
    joint = np.bincount(sa.astype(np.int64) * nb + sb)
    h = (_entropy_of_counts(np.bincount(sa)) + _entropy_of_counts(np.bincount(sb)) - _entropy_of_counts(joint))
    return max(h, 0.0)


def discretize(x, n_bins: int = 30, value_range=None) -> np.ndarray:
    """Equal-width binning of a continuous array into integer bin ids (same shape).

    One range for the whole array: ``value_range=(lo, hi)`` or, by default, its min and max.
    Values outside the range go to the first or last bin.
    """
    x = np.asarray(x, dtype=np.float64)
    if n_bins < 1:
        raise ValueError(f"discretize: n_bins must be >= 1, got {n_bins}")
    lo, hi = (float(x.min()), float(x.max())) if value_range is None else map(float, value_range)
    if hi <= lo:
        return np.zeros(x.shape, dtype=np.int32)
    edges = np.linspace(lo, hi, n_bins + 1)[1:-1]
    dtype = np.uint8 if n_bins <= 256 else np.int32
    return np.digitize(x, edges).astype(dtype)


def mutual_info_binned(x, y, n_bins: int = 30, value_range=None) -> float:
    """I(X;Y) in bits with X continuous (binned, rows as symbols) and Y discrete (values or rows)."""
    return mutual_info_discrete(discretize(x, n_bins, value_range), y)


def information_plane(x, t, y, n_bins: int = 30, t_discrete: bool | None = None) -> tuple[float, float]:
    """(I(X;T), I(T;Y)) in bits for inputs ``x`` ``(N, ...)``, a layer ``t`` ``(N, ...)`` and labels ``y`` ``(N,)``.

    X is binned into ``n_bins`` (each distinct input is one symbol, as in the information-plane
    literature); T is binned too unless it is discrete (``t_discrete``; by default: T is treated
    as discrete when it is integer or holds only 0 and 1, e.g. a binary SDR).
    """
    t = np.asarray(t)
    if t_discrete is None:
        t_discrete = t.dtype.kind in "biu" or _is_binary(t)
    ts = symbols(t) if t_discrete else symbols(discretize(t, n_bins))
    xs = symbols(discretize(x, n_bins))
    return mutual_info_discrete(xs, ts), mutual_info_discrete(ts, y)


def _binary_entropy(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    return np.nan_to_num(h, nan=0.0)


def sdr_statistics(codes, overactive: float = 0.5) -> dict:
    """Usage statistics of binary codes ``(N, D)`` (conv codes are flattened per sample).

    Returns a dict with ``firing_rate`` ``(D,)`` (fraction of samples where each unit is on),
    ``active_per_sample`` ``(N,)``, ``dead`` (units never on), ``overactive`` (units on in more
    than the ``overactive`` fraction of samples), ``unit_entropy`` (mean binary entropy of the
    units' firing, bits), ``usage_entropy`` (entropy of the firing-rate distribution over units,
    normalised to [0, 1]: 1 = every unit used equally) and ``code_entropy`` (plug-in entropy
    of the code words, bits; at most log2 N).
    """
    c = np.asarray(codes)
    c = c.reshape(c.shape[0], -1)
    if not _is_binary(c):
        raise ValueError("sdr_statistics: expected binary codes (0/1)")
    rate = c.mean(axis=0, dtype=np.float64)
    total = rate.sum()
    usage = _entropy_of_counts(rate) / np.log2(c.shape[1]) if total > 0 else 0.0
    return {
        "firing_rate": rate,
        "active_per_sample": c.sum(axis=1, dtype=np.int64),
        "dead": int(np.sum(rate == 0)),
        "overactive": int(np.sum(rate > overactive)),
        "unit_entropy": float(_binary_entropy(rate).mean()),
        "usage_entropy": float(usage),
        "code_entropy": entropy(c),
    }


# ---------------------------------------------------------------------------------- classification
@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` measured: ``accuracy`` in [0, 1], ``loss`` (mean; NaN without a loss
    function) and the number of samples ``n``."""

    accuracy: float
    loss: float
    n: int

    @property
    def percent(self) -> float:
        """Accuracy in percent."""
        return 100.0 * self.accuracy


def evaluate(model, x, y, batch_size: int = 1000, forward=None, loss_fn=None) -> Evaluation:
    """Classification accuracy (argmax of the outputs) of ``model`` on ``(x, y)``, in eval mode.

    The one evaluation loop of the demos and the tour: batches of ``batch_size`` in order (a PAN
    net's faithful batch gate depends on the batch, so the order and size are part of the result),
    ``model.eval()`` for the duration and the previous train/eval mode restored afterwards.
    ``forward(xb)`` replaces ``model(xb)`` where the model needs more than the input (a guided
    BU-TD net is told its task: ``forward=lambda xb: net(xb, tasks)``). ``loss_fn(outputs, yb)``
    (e.g. ``nn.CrossEntropyLoss()``), if given, is averaged over the samples as well.
    """
    x, y = np.asarray(x), np.asarray(y).reshape(-1)
    if len(x) != len(y):
        raise ValueError(f"evaluate: {len(x)} inputs but {len(y)} labels")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"evaluate: batch_size must be a positive integer, got {batch_size!r}")
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    run = model if forward is None else forward
    correct, loss_sum = 0, 0.0
    try:
        for i in range(0, len(x), batch_size):
            out = run(x[i:i + batch_size])
            yb = y[i:i + batch_size]
            if np.ndim(out) != 2 or len(out) != len(yb):
                raise ValueError(f"evaluate: the model returned shape {np.shape(out)} for a batch of {len(yb)}, "
                                 f"expected ({len(yb)}, classes)")
            correct += int(np.sum(np.argmax(out, axis=1) == yb))
            if loss_fn is not None:
                loss_sum += float(loss_fn(out, yb)) * len(yb)
    finally:
        if was_training and hasattr(model, "train"):
            model.train()
    n = len(y)
    return Evaluation(correct / n if n else math.nan, loss_sum / n if (n and loss_fn is not None) else math.nan, n)
