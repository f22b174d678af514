"""``nnlocal.nn``: the module protocol, layers with hand-derived backward passes, and losses."""
from . import init
from .activations import (Atan, Hardsigmoid, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh,
                          get_activation)
from .layers import Dropout, Flatten, Identity, Linear
from .losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss
from .module import Module, Parameter, Sequential

try:  # filled in by the convolution work; kept optional so the core imports on its own
    from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d  # noqa: F401
    from .pooling import AvgPool2d, MaxPool2d  # noqa: F401
except ImportError:  # pragma: no cover
    pass
try:
    from .recurrent import GRU, LSTM, RNN  # noqa: F401
except ImportError:  # pragma: no cover
    pass
