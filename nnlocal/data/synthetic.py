"""Constructed datasets: Multi-MNIST (BU-TD) over any MNIST-like base set, and DEEP's logic gates."""
from __future__ import annotations

import numpy as np

from .._rng import get_rng

__all__ = ["resize_nearest", "multi_mnist", "multi_mnist_geometry", "logic_gate", "LOGIC_GATES"]


def _nearest_index(n_in: int, n_out: int) -> np.ndarray:
    # PIL's NEAREST convention: output pixel i samples the input at floor((i + 0.5) * n_in / n_out),
    # computed exactly in integers as floor((2i + 1) * n_in / (2 n_out)).
    i = np.arange(n_out, dtype=np.int64)
    return ((2 * i + 1) * n_in) // (2 * n_out)


def resize_nearest(images: np.ndarray, size) -> np.ndarray:
    """Nearest-neighbour resize of the last two axes of ``images`` to ``size`` (an int or ``(h, w)``),
    matching ``PIL.Image.resize(..., Image.NEAREST)``: output pixel ``i`` takes input pixel
    ``floor((i + 0.5) * in / out)``. Works for any leading shape and dtype."""
    images = np.asarray(images)
    if images.ndim < 2:
        raise ValueError(f"resize_nearest: expected at least 2 dimensions (..., H, W), got shape {images.shape}")
    h_out, w_out = (size, size) if np.isscalar(size) else tuple(size)
    if h_out <= 0 or w_out <= 0:
        raise ValueError(f"resize_nearest: output size must be positive, got {(h_out, w_out)}")
    rows = _nearest_index(images.shape[-2], int(h_out))
    cols = _nearest_index(images.shape[-1], int(w_out))
    return images[..., rows[:, None], cols[None, :]]


def _round_half_up(num: int, den: int) -> int:
    """round(num / den) with halves rounded up, exactly (integers only)."""
    return (2 * num + den) // (2 * den)


def multi_mnist_geometry(size: int) -> tuple[int, int]:
    """``(canvas, offset)`` for base images of ``size`` x ``size``: the original's 36x36 canvas and
    6-pixel offset for 28x28 digits, scaled proportionally for other sizes,
    ``canvas = round(size * 36 / 28)``, ``offset = round(size * 6 / 28)`` (halves rounded up);
    e.g. 8x8 digits -> canvas 10, offset 2."""
    return _round_half_up(36 * size, 28), _round_half_up(6 * size, 28)


def multi_mnist(images, labels=None, rng=None, *, return_indices: bool = False, chunk: int = 4096):
    """The BU-TD Multi-MNIST construction over an MNIST-like base set.

    ``multi_mnist(images, labels, rng)`` or ``multi_mnist((images, labels), rng)``; ``images`` is
    ``(N, 1, s, s)`` (or ``(N, s, s)``), ``labels`` ``(N,)``. For each ``i``: the *left* digit is
    ``images[i]``, the *right* digit ``images[j]`` with ``j`` drawn uniformly from ``0..N-1`` (with
    ``rng``; the original had no seed). On a zero canvas of :func:`multi_mnist_geometry` size (36x36
    for s = 28) the left digit goes to ``[0:s, 0:s]``, the right one to ``[o:o+s, o:o+s]`` (o = 6 for
    s = 28), the overlap takes the element-wise **max**, and the canvas is resized back to ``s x s``
    with PIL's NEAREST convention (:func:`resize_nearest`).

    Returns ``(x, y)``: ``x`` like ``images`` (same dtype, ``(N, 1, s, s)``), ``y`` int64 ``(N, 2)``
    = (left label, right label); with ``return_indices=True`` also the right-digit indices ``j``.
    """
    if isinstance(images, (tuple, list)) and len(images) == 2:  # the (base, rng) form
        if labels is not None:
            if rng is not None:
                raise TypeError("multi_mnist((images, labels), rng): got an extra positional argument")
            rng = labels
        images, labels = images
    if labels is None:
        raise TypeError("multi_mnist needs labels: multi_mnist(images, labels, rng) "
                        "or multi_mnist((images, labels), rng)")
    x = np.asarray(images)
    y = np.asarray(labels)
    squeeze = x.ndim == 3
    if squeeze:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] != 1 or x.shape[2] != x.shape[3]:
        raise ValueError(f"multi_mnist: expected images of shape (N, 1, s, s) or (N, s, s), got {np.shape(images)}")
    if y.shape != (len(x),):
        raise ValueError(f"multi_mnist: expected labels of shape ({len(x)},), got {y.shape}")
    n, s = len(x), x.shape[-1]
    if n == 0:
        raise ValueError("multi_mnist: the base set is empty")
    canvas_size, off = multi_mnist_geometry(s)
    right = get_rng(rng).integers(0, n, size=n)
    out = np.empty((n, 1, s, s), dtype=x.dtype)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        canvas = np.zeros((stop - start, canvas_size, canvas_size), dtype=x.dtype)
        canvas[:, :s, :s] = x[start:stop, 0]
        region = canvas[:, off:off + s, off:off + s]
        np.maximum(region, x[right[start:stop], 0], out=region)
        out[start:stop, 0] = resize_nearest(canvas, s)
    pairs = np.stack([y, y[right]], axis=1).astype(np.int64)
    if squeeze:
        out = out[:, 0]
    return (out, pairs, right) if return_indices else (out, pairs)


# ----------------------------------------------------------------------------------------------
# logic gates (DEEP)
# ----------------------------------------------------------------------------------------------
_BINARY = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
_UNARY = np.array([[0], [1]])
LOGIC_GATES = {
    "XOR": (_BINARY, np.array([0, 1, 1, 0])),
    "AND": (_BINARY, np.array([0, 0, 0, 1])),
    "OR": (_BINARY, np.array([0, 1, 1, 1])),
    "NOT": (_UNARY, np.array([1, 0])),
    "ID": (_UNARY, np.array([0, 1])),
}
_GATE_ALIASES = {"IDENTITY": "ID"}


def logic_gate(name: str, one_hot: bool = False, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """A logic-gate task in DEEP's convention: inputs with a constant-1 bias column *last*.

    XOR/AND/OR: ``x`` = rows ``[x1, x2, 1]`` for (x1, x2) = (0,0), (0,1), (1,0), (1,1); NOT and ID
    (alias IDENTITY): ``x`` = ``[x, 1]`` for x = 0, 1. Targets ``y`` are 0/1 as ``(n, 1)``, or one-hot
    ``(n, 2)`` (column = class, so ``argmax`` recovers it) with ``one_hot=True``. Both ``dtype``
    (float32 by default). Case-insensitive names; an unknown one raises ``ValueError``.
    """
    key = str(name).strip().upper()
    key = _GATE_ALIASES.get(key, key)
    if key not in LOGIC_GATES:
        valid = ", ".join(list(LOGIC_GATES) + list(_GATE_ALIASES))
        raise ValueError(f"unknown logic gate {name!r}; valid names: {valid}")
    inputs, targets = LOGIC_GATES[key]
    x = np.concatenate([inputs, np.ones((len(inputs), 1))], axis=1).astype(dtype)
    y = np.eye(2, dtype=dtype)[targets] if one_hot else targets[:, None].astype(dtype)
    return x, y
