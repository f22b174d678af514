"""Auto-Rotating Perceptrons: units rescaled so their pre-activation stays in the activation's dynamic region.

Reading path: ``reference.py`` (the ARP rule: the Q-point, q, ρ and the extra backward terms, with
shapes; the limits table) → ``layers.py`` (the machinery every AutoRot layer shares, and
:class:`AutoRotDense`) → ``conv.py`` (the convolutions) and ``recurrent.py`` (the recurrent cells).
ARP needs no kernels of its own: its layers run on nnlocal's dense, convolution and recurrent layers.
"""
from .conv import (AutoRotConv1d, AutoRotConv2d, AutoRotConv3d, AutoRotConvTranspose2d, AutoRotConvTranspose3d,
                   AutoRotDepthwiseConv2d, AutoRotSeparableConv1d, AutoRotSeparableConv2d)
from .layers import AutoRotDense, _ARPParams, keras_init_  # noqa: F401  (_ARPParams: demos/tests check for ARP layers)
from .recurrent import AutoRotGRU, AutoRotLSTM, AutoRotRNN
from .reference import ARPLimits, limits_for, rho_from_q

__all__ = [
    "AutoRotDense", "AutoRotConv1d", "AutoRotConv2d", "AutoRotConv3d", "AutoRotConvTranspose2d",
    "AutoRotConvTranspose3d", "AutoRotSeparableConv1d", "AutoRotSeparableConv2d", "AutoRotDepthwiseConv2d",
    "AutoRotRNN", "AutoRotLSTM", "AutoRotGRU",
    # arpkeras / Keras names
    "AutoRotConv1D", "AutoRotConv2D", "AutoRotConv3D", "AutoRotConv2DTranspose", "AutoRotConv3DTranspose",
    "AutoRotSeparableConv1D", "AutoRotSeparableConv2D", "AutoRotSeparableConv", "AutoRotDepthwiseConv2D",
    "AutoRotSimpleRNN",
    "limits_for", "ARPLimits", "rho_from_q", "keras_init_", "LAYERS",
]

# ---- arpkeras names
AutoRotSimpleRNN = AutoRotRNN
AutoRotConv1D = AutoRotConv1d
AutoRotConv2D = AutoRotConv2d
AutoRotConv3D = AutoRotConv3d
AutoRotConv2DTranspose = AutoRotConvTranspose2d
AutoRotConv3DTranspose = AutoRotConvTranspose3d
AutoRotSeparableConv1D = AutoRotSeparableConv1d
AutoRotSeparableConv2D = AutoRotSeparableConv2d
AutoRotSeparableConv = AutoRotSeparableConv2d     # Keras' SeparableConv is SeparableConv2D
AutoRotDepthwiseConv2D = AutoRotDepthwiseConv2d

#: the thirteen layers of the arpkeras README: (Keras layer, arpkeras name, nnlocal class name, in arpkeras?)
LAYERS = [
    ("Dense", "AutoRotDense", "AutoRotDense", True),
    ("SimpleRNN", "AutoRotSimpleRNN", "AutoRotRNN", False),
    ("LSTM", "AutoRotLSTM", "AutoRotLSTM", False),
    ("GRU", "AutoRotGRU", "AutoRotGRU", False),
    ("Conv1D", "AutoRotConv1D", "AutoRotConv1d", True),
    ("Conv2D", "AutoRotConv2D", "AutoRotConv2d", True),
    ("Conv3D", "AutoRotConv3D", "AutoRotConv3d", True),
    ("Conv2DTranspose", "AutoRotConv2DTranspose", "AutoRotConvTranspose2d", False),
    ("Conv3DTranspose", "AutoRotConv3DTranspose", "AutoRotConvTranspose3d", False),
    ("SeparableConv", "AutoRotSeparableConv", "AutoRotSeparableConv2d", False),
    ("SeparableConv1D", "AutoRotSeparableConv1D", "AutoRotSeparableConv1d", False),
    ("SeparableConv2D", "AutoRotSeparableConv2D", "AutoRotSeparableConv2d", False),
    ("DepthwiseConv2D", "AutoRotDepthwiseConv2D", "AutoRotDepthwiseConv2d", False),
]
