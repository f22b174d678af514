"""The pooling engine's data movement (max pooling with indices, window sums), shared by every method.

``reference.py`` holds the NumPy versions, ``cpu.py`` their Numba twins;
``nnlocal.nn.functional_pool`` picks one with ``nnlocal.kernels.implementation("nnlocal.kernels.pool")``.
"""
