"""Symmetric equilibrium propagation on layered networks (Scellier & Bengio 2017).

Reading path: ``reference.py`` (the relaxation) → ``models.py`` (:class:`EPNet`: energy, relaxation, the EP update, training). ``cpu.py`` and ``cuda.py``, where present, hold Numba and ``numba.cuda``
twins of the reference functions with the same signatures (chosen by :mod:`nnlocal.kernels`).
"""
from .models import *  # noqa: F401,F403
from .models import __all__  # noqa: F401
