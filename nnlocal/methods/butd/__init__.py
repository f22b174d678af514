"""BU-TD: top-down networks, GaLU gating, Counter-Hebb learning and instruction-guided multi-task learning.

Reading path: ``reference.py`` (GaLU) → ``models.py`` (the BU-TD layers, nets and Counter-Hebb learning). ``cpu.py`` and ``cuda.py``, where present, hold Numba and ``numba.cuda``
twins of the reference functions with the same signatures (chosen by :mod:`nnlocal.kernels`).
"""
from .models import *  # noqa: F401,F403
from .models import __all__  # noqa: F401
from .baselines import HardSharingNet, multitask_loss_and_grad  # noqa: F401,E402  (the multi-task baseline)
