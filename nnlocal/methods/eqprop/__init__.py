"""Symmetric equilibrium propagation on layered networks (Scellier & Bengio 2017).

Reading path: ``reference.py`` (the energy, the cost, the relaxation step and the EP learning rule
in plain NumPy, with shapes) → ``models.py`` (:class:`EPNet`: parameters, relaxation, training),
which calls them through :mod:`nnlocal.kernels`. ``cpu.py`` holds the Numba twins that pay at the
sizes EP is used at (chosen by size), ``cuda.py`` the ``numba.cuda`` ones; ``_args.py`` the argument
checks.
"""
from .models import *  # noqa: F401,F403
from .models import __all__  # noqa: F401

# cpu.ep_update accumulates W_0's update with scipy's BLAS gemm: load that BLAS with the package, so that
# a threadpoolctl limit set before the first training step (benchmarks, tests, the tour) pins it too.
try:
    import scipy.linalg.blas  # noqa: F401
except ImportError:  # pragma: no cover - then cpu.ep_update falls back to numpy
    pass
