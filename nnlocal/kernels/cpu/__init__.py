"""Numba ``@njit(cache=True)`` kernels for the hot loops, each with a plain-NumPy reference beside it.

One submodule per family, re-exported here:

* ``conv``   - im2col / col2im for N-dimensional (transposed) convolutions
* ``relax``  - DEEP, asymmetric-EP and symmetric-EP relaxation dynamics, STDP accumulation
* ``gating`` - PAN gated products
* ``galu``   - GaLU gating of the BU-TD networks
* ``kwta``   - k-winners-take-all thresholds
"""
from .conv import *  # noqa: F401,F403
from .galu import *  # noqa: F401,F403
from .gating import *  # noqa: F401,F403
from .kwta import *  # noqa: F401,F403
from .relax import *  # noqa: F401,F403
