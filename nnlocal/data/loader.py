"""Mini-batch iteration over in-memory arrays."""
from __future__ import annotations

import numbers

import numpy as np

from .._rng import get_rng

__all__ = ["DataLoader"]


class DataLoader:
    """Iterate ``(x_batch, y_batch)`` mini-batches over arrays ``x`` and ``y`` (same first dimension).

    * ``len(loader)`` is the number of batches per epoch: ``ceil(N / batch_size)``, or
      ``floor(N / batch_size)`` with ``drop_last=True`` (the last, smaller batch is then skipped).
    * ``shuffle=True`` draws a fresh permutation from ``rng`` at the start of *every* iteration
      (epoch), so epochs differ, and the whole sequence of epochs is reproducible for an int seed or
      a given Generator. ``rng=None`` uses the library's default generator at each epoch (reset by
      ``nnlocal.seed``); an int seeds a generator once, when the loader is built.
    * Without shuffling, batches are slices (views) of the arrays, in order.
    * ``y=None`` yields ``x`` batches alone.
    """

    def __init__(self, x, y, batch_size: int, shuffle: bool = False, drop_last: bool = False, rng=None):
        x = np.asarray(x)
        if x.ndim == 0:
            raise ValueError("DataLoader: x must have a batch dimension, got a scalar")
        if y is not None:
            y = np.asarray(y)
            if y.ndim == 0 or len(y) != len(x):
                raise ValueError(f"DataLoader: x and y must have the same length, got {len(x)} and "
                                 f"{len(y) if y.ndim else 'a scalar'}")
        if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        self.x, self.y = x, y
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        # an int seeds one generator now, so that successive epochs get different permutations
        self._rng = rng if rng is None else get_rng(rng)

    @property
    def n(self) -> int:
        """Number of samples."""
        return len(self.x)

    def __len__(self) -> int:
        if self.drop_last:
            return self.n // self.batch_size
        return -(-self.n // self.batch_size)

    def __iter__(self):
        n, b = self.n, self.batch_size
        stop = (n // b) * b if self.drop_last else n
        if self.shuffle:
            order = get_rng(self._rng).permutation(n)
            for start in range(0, stop, b):
                idx = order[start:start + b]
                yield self.x[idx] if self.y is None else (self.x[idx], self.y[idx])
        else:
            for start in range(0, stop, b):
                sl = slice(start, start + b)
                yield self.x[sl] if self.y is None else (self.x[sl], self.y[sl])

    def __repr__(self) -> str:
        return (f"DataLoader(n={self.n}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, batches={len(self)})")
