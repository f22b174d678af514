"""k-winners-take-all binary sparse distributed representations (EmbedderSDR).

Reading path: ``reference.py`` (the kWTA threshold) → ``models.py`` (the kWTA layers, synaptic scaling, the scheduler,
the triplet loss, nearest-centroid accuracy, the MLPs). ``cpu.py`` and ``cuda.py``, where present, hold Numba and ``numba.cuda``
twins of the reference functions with the same signatures (chosen by :mod:`nnlocal.kernels`).
"""
from .models import *  # noqa: F401,F403
from .models import __all__  # noqa: F401
