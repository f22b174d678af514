"""The ``"numba"`` implementation of kWTA is the reference itself.

A row-wise partial selection (``np.partition``) already runs at memory speed; a Numba per-row
selection measured about 5x slower, so no kernel is kept (see :mod:`nnlocal.methods.kwta.reference`).
"""
from .reference import kwta_boundary, kwta_k, kwta_threshold, kwta_winners

__all__ = ["kwta_k", "kwta_boundary", "kwta_threshold", "kwta_winners"]
