"""The ``"numba"`` implementation of kWTA is the reference itself: no Numba kernel pays.

The selection (the k-th and (k+1)-th largest value of each row) is one ``np.partition`` per batch,
which runs at memory speed. Measured on one thread (Xeon with AVX-512, NumPy 2.4, float32,
B = 256), a Numba per-row ``np.partition`` is 7× slower at D = 256 and 512 and 18× slower at
D = 2048; a one-pass top-(k+1) insertion buffer is 2-3× slower at D ≤ 512 and 11-50× slower for
larger k (D = 2048, or sparsity 0.3). The rest of kWTA is elementwise NumPy. So this module
re-exports the reference functions that have a CUDA twin (see :mod:`nnlocal.methods.kwta.reference`).
"""
from .reference import kwta_boundary, kwta_k, kwta_threshold, kwta_winners

__all__ = ["kwta_k", "kwta_boundary", "kwta_threshold", "kwta_winners"]
