"""DEEP: equilibrium propagation on complete directed graphs, and the asymmetric-EP baseline.

Reading path: ``reference.py`` (the dynamics, the operators, the STDP sums) → ``models.py`` (:class:`DEEPNet`,
:class:`AsymEPNet`, :func:`fit_many`, the graph constraints and diagnostics). ``cpu.py`` and ``cuda.py``, where present, hold Numba and ``numba.cuda``
twins of the reference functions with the same signatures (chosen by :mod:`nnlocal.kernels`).
"""
from .models import *  # noqa: F401,F403
from .models import __all__  # noqa: F401
