"""Auto-Rotating Perceptrons: units rescaled so their pre-activation stays in the activation's dynamic region.

Reading path: ``models.py`` (the ARP rule and the thirteen AutoRot layers). ARP needs no kernels of its own: its layers run on the shared convolution engine.
"""
from .models import *  # noqa: F401,F403
from .models import __all__  # noqa: F401
from .models import _ARPParams  # noqa: F401  (tests check the shared ARP machinery)
