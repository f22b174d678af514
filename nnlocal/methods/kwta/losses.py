r"""The triplet cosine loss and the nearest-binary-centroid accuracy (pytorch-mighty's; equations: ``reference.py``).

* :class:`TripletCosineLoss` on given (anchor, positive, negative) index triples,
  L = mean_t relu(cos(o_a, o_n) − cos(o_a, o_p) + margin), with its hand-derived backward;
* :func:`sample_triplets` / :class:`TripletLossSampler`: the random triples of a labelled batch;
* :func:`centroid_accuracy`: classify by the smallest cosine distance to the class centroids of
  the train embeddings, binarised by kWTA.

Embeddings are ``(B, D)`` (conv embeddings ``(B, C, H, W)`` are flattened per sample); non-finite
embeddings are a ``ValueError``.
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from ..._rng import get_rng
from . import reference as R
from .layers import KWinnersTakeAll, _flatten, _real

__all__ = ["TripletCosineLoss", "TripletLossSampler", "sample_triplets", "binary_centroids",
           "predict_nearest_centroid", "centroid_accuracy"]


def _as_triplets(triplets) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(a, p, n)`` (a tuple of three index arrays) or a ``(T, 3)`` array -> three ``intp`` arrays."""
    if isinstance(triplets, tuple):
        if len(triplets) != 3:
            raise ValueError(f"triplets: expected (anchor, positive, negative), got a tuple of {len(triplets)}")
        a, p, n = (np.asarray(t, dtype=np.intp).reshape(-1) for t in triplets)
        if not (a.shape == p.shape == n.shape):
            raise ValueError(f"triplets: index arrays differ in length: {a.size}, {p.size}, {n.size}")
        return a, p, n
    t = np.asarray(triplets, dtype=np.intp)
    if t.ndim != 2 or t.shape[1] != 3:
        raise ValueError(f"triplets: expected a tuple (a, p, n) or an array of shape (T, 3), got shape {t.shape}")
    return t[:, 0], t[:, 1], t[:, 2]


def _labels(who: str, labels, n: int | None = None) -> np.ndarray:
    labels = np.asarray(labels).reshape(-1)
    if n is not None and labels.size != n:
        raise ValueError(f"{who}: {n} embeddings but {labels.size} labels")
    return labels


class TripletCosineLoss:
    r"""Triplet loss on cosine similarity for given index triples (mighty's ``TripletCosineLoss``).

    .. math::  L = \frac1T \sum_t \mathrm{relu}\bigl(\cos(o_{a_t}, o_{n_t}) - \cos(o_{a_t}, o_{p_t}) + m\bigr)

    ``loss = fn(embeddings (B, D), (a, p, n))`` returns a float; ``fn.backward()`` returns
    dL/d(embeddings) (:func:`.reference.triplet_cosine_loss` / :func:`.reference.triplet_cosine_grad`).
    cos(u, v) = u·v / (max(‖u‖, ε) max(‖v‖, ε)) as in torch. ``margin`` is any finite number,
    ``eps`` a finite number > 0.
    """

    def __init__(self, margin: float = 0.5, eps: float = 1e-8):
        self.margin = _real("TripletCosineLoss", "margin", margin)
        self.eps = _real("TripletCosineLoss", "eps", eps)
        if not math.isfinite(self.margin):
            raise ValueError(f"TripletCosineLoss: margin must be a finite number, got {margin!r}")
        if not (self.eps > 0 and math.isfinite(self.eps)):
            raise ValueError(f"TripletCosineLoss: eps must be a finite number > 0, got {eps!r}")
        self._cache = None

    def __repr__(self) -> str:
        return f"TripletCosineLoss(margin={self.margin})"

    def __call__(self, embeddings, triplets) -> float:
        return self.forward(embeddings, triplets)

    def forward(self, embeddings: np.ndarray, triplets) -> float:
        self._cache = None
        o = _flatten(self, embeddings, min_units=1)
        a, p, n = _as_triplets(triplets)
        if a.size == 0:
            raise ValueError("TripletCosineLoss: got no triplets (use TripletLossSampler to skip such batches)")
        if min(a.min(), p.min(), n.min()) < 0 or max(a.max(), p.max(), n.max()) >= o.shape[0]:
            raise ValueError(f"TripletCosineLoss: triplet indices must lie in [0, {o.shape[0]})")
        loss, u, norm, active = R.triplet_cosine_loss(o, a, p, n, self.margin, self.eps)
        self._cache = (embeddings.shape, u, norm, a, p, n, active)
        return loss

    def backward(self) -> np.ndarray:
        if self._cache is None:
            raise RuntimeError("TripletCosineLoss.backward() called before the loss was computed")
        shape, u, norm, a, p, n, active = self._cache
        return R.triplet_cosine_grad(u, norm, a, p, n, active, self.eps).reshape(shape)


def sample_triplets(labels, rng=None, pairs_multiplier: int = 1):
    """Random (anchor, positive, negative) index triples for a batch (mighty's ``TripletLossSampler``).

    Draws M = pairs_multiplier · U · B index triples uniformly with replacement (U = number of
    distinct labels among the B samples) and keeps those with a ≠ p, y_a = y_p and y_a ≠ y_n.
    Returns three ``intp`` arrays (possibly empty).
    """
    labels = _labels("sample_triplets", labels)
    if isinstance(pairs_multiplier, bool) or not isinstance(pairs_multiplier, numbers.Integral) \
            or pairs_multiplier < 1:
        raise ValueError(f"sample_triplets: pairs_multiplier must be an int >= 1, got {pairs_multiplier!r}")
    b = labels.size
    if b == 0:
        raise ValueError("sample_triplets: got an empty batch of labels")
    m = int(pairs_multiplier) * len(np.unique(labels)) * b
    a, p, n = get_rng(rng).integers(0, b, size=(3, m))
    keep = (a != p) & (labels[a] == labels[p]) & (labels[a] != labels[n])
    return a[keep], p[keep], n[keep]


class TripletLossSampler:
    """Sample triples from a labelled batch and apply ``loss`` (a :class:`TripletCosineLoss`) to them.

    ``loss = sampler(embeddings, labels)`` returns the float loss, or ``None`` with a
    ``RuntimeWarning`` when the batch yields no valid triple (e.g. one class only): the caller must
    skip that optimisation step (the original produced a NaN loss there). ``backward()`` returns
    dL/d(embeddings) of the last non-empty batch.
    """

    def __init__(self, loss: TripletCosineLoss | None = None, pairs_multiplier: int = 1, rng=None):
        self.loss = TripletCosineLoss() if loss is None else loss
        self.pairs_multiplier = int(pairs_multiplier)
        self.rng = get_rng(rng)
        self.last_triplets = None

    def __repr__(self) -> str:
        return f"TripletLossSampler({self.loss!r}, pairs_multiplier={self.pairs_multiplier})"

    def __call__(self, embeddings: np.ndarray, labels) -> float | None:
        _labels("TripletLossSampler", labels, len(embeddings))
        triplets = sample_triplets(labels, self.rng, self.pairs_multiplier)
        self.last_triplets = triplets
        if triplets[0].size == 0:
            warnings.warn("TripletLossSampler: no valid (anchor, positive, negative) triple in this batch; "
                          "skip the step", RuntimeWarning, stacklevel=2)
            self.loss._cache = None
            return None
        return self.loss(embeddings, triplets)

    def backward(self) -> np.ndarray:
        return self.loss.backward()


# ------------------------------------------------------------------------------------- accuracy
def binary_centroids(embeddings: np.ndarray, labels, sparsity: float, device: str = "cpu"):
    """Class centroids of ``embeddings`` ``(N, D)``, binarised by kWTA at ``sparsity``.

    Returns ``(classes (C,), centroids (C, D))``; ``classes`` are the sorted distinct labels.
    """
    emb = _flatten("binary_centroids", embeddings)
    labels = _labels("binary_centroids", labels, emb.shape[0])
    classes, inverse = np.unique(labels, return_inverse=True)
    means = np.stack([emb[inverse == c].mean(axis=0, dtype=np.float64) for c in range(classes.size)])
    means = means.astype(emb.dtype)
    return classes, KWinnersTakeAll(sparsity, device)(means)


def predict_nearest_centroid(embeddings: np.ndarray, classes, centroids: np.ndarray, eps: float = 1e-8):
    """The class of the centroid at the smallest cosine distance (first one under ties).

    ``embeddings`` ``(N, D)``, ``classes`` ``(C,)``, ``centroids`` ``(C, D)`` -> labels ``(N,)``.
    """
    emb = _flatten("predict_nearest_centroid", embeddings, min_units=1)
    classes = np.asarray(classes).reshape(-1)
    if not isinstance(centroids, np.ndarray) or centroids.shape != (classes.size, emb.shape[1]):
        raise ValueError(f"predict_nearest_centroid: expected centroids of shape ({classes.size}, {emb.shape[1]}), "
                         f"got {np.shape(centroids)}")
    e = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), eps)
    c = centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), eps)
    return classes[np.argmax(e @ c.T, axis=1)]


def centroid_accuracy(train_embeddings, train_labels, test_embeddings, test_labels, sparsity: float,
                      device: str = "cpu") -> float:
    """Nearest-binary-centroid accuracy (mighty's ``AccuracyEmbeddingKWTA``).

    Centroids = per-class means of the *train* embeddings (eval mode), binarised by kWTA at
    ``sparsity``; each test embedding is assigned the class of the nearest centroid in cosine
    distance. Returns the fraction of correct test predictions.
    """
    classes, centroids = binary_centroids(train_embeddings, train_labels, sparsity, device)
    pred = predict_nearest_centroid(test_embeddings, classes, centroids)
    return float(np.mean(pred == _labels("centroid_accuracy", test_labels, len(pred))))
