"""The README's two MLPs: MLP_kWTA (soft kWTA on top) and its softmax baseline."""
from __future__ import annotations

import numpy as np

from ..._rng import get_rng
from ...nn.activations import ReLU
from ...nn.layers import Linear
from ...nn.module import Sequential
from .layers import KWinnersTakeAllSoft

__all__ = ["mlp_kwta", "mlp_softmax"]


def mlp_kwta(in_features: int = 784, hidden: int = 64, embedding: int = 512, sparsity: float = 0.05,
             hardness: float = 2.0, hard: bool = False, rng=None, dtype=np.float32) -> Sequential:
    """The README's MLP_kWTA: Linear(in→64) → ReLU → Linear(64→D) → KWinnersTakeAllSoft(sparsity).

    Defaults follow the committed ``train_kwta()``: D = 512 (README printout; ``main.py`` has
    256), hardness 2, ``hard=False`` (sigmoid).
    """
    rng = get_rng(rng)
    return Sequential(Linear(in_features, hidden, rng=rng, dtype=dtype), ReLU(),
                      Linear(hidden, embedding, rng=rng, dtype=dtype),
                      KWinnersTakeAllSoft(sparsity, hardness, hard))


def mlp_softmax(in_features: int = 784, hidden: int = 64, embedding: int = 512, rng=None,
                dtype=np.float32) -> Sequential:
    """The README's softmax baseline: the same MLP with the kWTA replaced by ReLU.

    Faithful quirk: its D outputs are the logits of the cross-entropy loss directly (labels
    0..9 use the first 10 of them) and the prediction is their argmax.
    """
    rng = get_rng(rng)
    return Sequential(Linear(in_features, hidden, rng=rng, dtype=dtype), ReLU(),
                      Linear(hidden, embedding, rng=rng, dtype=dtype), ReLU())
