"""Random number generators.

Every constructor or routine in nnlocal that draws random numbers takes
``rng=None | int | numpy.random.Generator``:

* ``None``  -> the library's default generator (reset by :func:`seed`);
* ``int``   -> a fresh ``numpy.random.default_rng(int)`` (bit-identical across runs);
* ``Generator`` -> used as is (and advanced).
"""
from __future__ import annotations

import numbers

import numpy as np

__all__ = ["seed", "get_rng", "default_rng"]

_default: np.random.Generator = np.random.default_rng()


def seed(s: int) -> None:
    """Reset the library's default generator, so that ``rng=None`` becomes reproducible.

    The generator is re-seeded *in place*: modules that already hold it (a ``Dropout(rng=None)``
    built before the call) draw from the re-seeded stream too.
    """
    if not isinstance(s, numbers.Integral) or isinstance(s, bool):
        raise TypeError(f"seed: expected an int, got {type(s).__name__}")
    _default.bit_generator.state = np.random.default_rng(int(s)).bit_generator.state


def default_rng() -> np.random.Generator:
    """The library's default generator (the one ``rng=None`` uses)."""
    return _default


def get_rng(rng=None) -> np.random.Generator:
    """Turn ``None | int | Generator`` into a ``numpy.random.Generator``."""
    if rng is None:
        return _default
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be None, an int or a numpy.random.Generator, got {type(rng).__name__}")
