"""nnlocal: biologically inspired and local learning rules, from scratch in NumPy and Numba.

No autograd: every forward pass is explicit, every backward pass and every local learning rule is
written by hand, and the test suite proves each one equal to PyTorch's autograd.
"""
from . import nn, optim
from ._checks import DivergenceError
from ._rng import get_rng, seed
from .utils import GradcheckError, gradcheck, load, numerical_grad, save

__version__ = "0.1.0"
__all__ = ["nn", "optim", "seed", "get_rng", "gradcheck", "GradcheckError", "numerical_grad", "save", "load",
           "DivergenceError"]
