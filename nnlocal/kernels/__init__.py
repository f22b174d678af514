"""Hot loops as pure functions: ``kernels.cpu`` (Numba ``@njit``) and ``kernels.cuda`` (``numba.cuda``, opt-in)."""
