"""The convolution engine's data movement (im2col / col2im, max pooling), shared by every method.

``reference.py`` holds the NumPy versions, ``cpu.py`` their Numba twins; ``nnlocal.nn.functional``
picks one with ``nnlocal.kernels.implementation("nnlocal.kernels.conv")``.
"""
