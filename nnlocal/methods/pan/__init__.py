"""Perceptron Activation Networks: a teacher network gates every weight of a student layer.

Reading path: ``reference.py`` (the gate and the gated products) → ``models.py`` (:class:`PerceptronActivation`,
:func:`lenet5`, :func:`tron`). ``cpu.py`` and ``cuda.py``, where present, hold Numba and ``numba.cuda``
twins of the reference functions with the same signatures (chosen by :mod:`nnlocal.kernels`).
"""
from .models import *  # noqa: F401,F403
from .models import __all__  # noqa: F401
