"""``nnlocal.nn``: the module protocol, layers with hand-derived backward passes, and losses."""
from . import init
from .activations import (Atan, Hardsigmoid, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh,
                          get_activation)
from .layers import Dropout, Flatten, Identity, Linear
from .losses import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss
from .module import Module, Parameter, Sequential

from . import functional  # noqa: F401  (nn.functional: the pure conv/pool functions)
from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d  # noqa: F401
from .pooling import AvgPool1d, AvgPool2d, AvgPool3d, MaxPool1d, MaxPool2d, MaxPool3d  # noqa: F401
from .recurrent import GRU, LSTM, RNN  # noqa: F401
