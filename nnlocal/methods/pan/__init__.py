"""Perceptron Activation Networks: a random teacher gates every weight of a linear student layer.

Reading path: ``reference.py`` (the equations with their shapes: the batch gate, the masked
product and its backward, the per-sample gate and the straight-through teacher) → ``layer.py``
(:class:`PerceptronActivation`, which calls them) → ``networks.py`` (:func:`lenet5`, :func:`tron`,
:func:`using_gate`, ...). ``cpu.py`` (Numba) and ``cuda.py`` (``numba.cuda``) hold twins of the
reference's ``pan_*`` functions with the same signatures, chosen by :mod:`nnlocal.kernels`.
"""
from .layer import GATES, INITS, TEACHERS, PerceptronActivation
from .networks import ConvNet, conv_geometry, lenet5, pan_layers, tron, using_gate

__all__ = ["PerceptronActivation", "ConvNet", "lenet5", "tron", "conv_geometry", "pan_layers", "using_gate",
           "GATES", "TEACHERS", "INITS"]
