"""The registry of public classes that the bad-input test (``tests/test_bad_input.py``) drives.

Each :class:`Case` is a class name (which every error message must contain), a constructor, a
valid example input, and how to call the object on an input. Add a class by appending a ``Case``.

``casts=True`` marks an entry point that documents converting its input (Python lists, integer
arrays) to its own float dtype: there, such input may succeed; complex or non-finite input must
still raise. ``grad`` (nn layers) says which forward output ``backward`` takes the gradient of, so
the test also drives ``backward`` with bad gradients. ``container=True`` marks a class built of
other modules, whose error may name the module inside that met the bad input instead
(``Sequential`` has no checks of its own; a model's first layer checks its input).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from nnlocal import nn


@dataclass(frozen=True)
class Case:
    name: str                                   # the class name the error must contain
    make: Callable[[], Any]                     # a fresh instance
    example: Callable[[np.random.Generator], Any]  # a valid input
    call: Callable[[Any, Any], Any] = lambda obj, x: obj(x)
    label: str | None = None                    # test id (default: name)
    casts: bool = False
    grad: Callable[[Any], np.ndarray] | None = None  # forward output -> the array backward differentiates
    container: bool = False                     # an error may name a layer inside instead (see above)

    @property
    def id(self) -> str:
        return self.label or self.name

    def names(self, obj) -> set:
        """The class names an error about ``obj`` may give: this case's and, for a container, those
        of the modules inside it."""
        return {self.name} | ({type(m).__name__ for m in obj.modules()} if self.container else set())


def _normal(*shape):
    return lambda rng: rng.standard_normal(shape)


def _unit(*shape):
    return lambda rng: rng.random(shape)


def _first(out):
    return out[0]


_SELF = lambda out: out  # noqa: E731


def _layer(name, make, *shape, unit=False, grad=_SELF, **kw):
    return Case(name, make, _unit(*shape) if unit else _normal(*shape), grad=grad, **kw)


# ------------------------------------------------------------------------------ nnlocal.nn layers
NN_LAYERS = [
    _layer("Linear", lambda: nn.Linear(4, 3, rng=0), 5, 4),
    _layer("Flatten", lambda: nn.Flatten(), 5, 2, 3),
    _layer("Identity", lambda: nn.Identity(), 5, 4),
    _layer("Dropout", lambda: nn.Dropout(0.5, rng=0), 5, 4),
    *[_layer(n, getattr(nn, n), 5, 4) for n in ("ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Atan", "Hardsigmoid")],
    _layer("Softmax", lambda: nn.Softmax(-1), 5, 4),
    _layer("LogSoftmax", lambda: nn.LogSoftmax(1), 5, 4),
    _layer("Conv1d", lambda: nn.Conv1d(2, 3, 3, rng=0), 2, 2, 6),
    _layer("Conv2d", lambda: nn.Conv2d(2, 3, 3, padding=1, rng=0), 2, 2, 5, 5),
    _layer("Conv3d", lambda: nn.Conv3d(2, 2, 2, rng=0), 2, 2, 3, 3, 3),
    _layer("ConvTranspose1d", lambda: nn.ConvTranspose1d(2, 3, 3, stride=2, rng=0), 2, 2, 4),
    _layer("ConvTranspose2d", lambda: nn.ConvTranspose2d(2, 3, 3, stride=2, rng=0), 2, 2, 3, 3),
    _layer("ConvTranspose3d", lambda: nn.ConvTranspose3d(2, 2, 2, rng=0), 2, 2, 2, 2, 2),
    _layer("MaxPool1d", lambda: nn.MaxPool1d(2), 2, 2, 6),
    _layer("MaxPool2d", lambda: nn.MaxPool2d(2), 2, 2, 4, 4),
    _layer("MaxPool3d", lambda: nn.MaxPool3d(2), 2, 2, 4, 4, 4),
    _layer("AvgPool1d", lambda: nn.AvgPool1d(2), 2, 2, 6),
    _layer("AvgPool2d", lambda: nn.AvgPool2d(2, padding=1), 2, 2, 4, 4),
    _layer("AvgPool3d", lambda: nn.AvgPool3d(2), 2, 2, 4, 4, 4),
    _layer("RNN", lambda: nn.RNN(3, 4, rng=0), 2, 5, 3, grad=_first),
    _layer("LSTM", lambda: nn.LSTM(3, 4, rng=0), 2, 5, 3, grad=_first),
    _layer("GRU", lambda: nn.GRU(3, 4, rng=0), 2, 5, 3, grad=_first),
    # a container has no checks of its own: the layer that meets the bad input names itself
    _layer("Sequential", lambda: nn.Sequential(nn.Linear(4, 3, rng=0), nn.Tanh()), 5, 4, container=True),
]


# ------------------------------------------------------------------------------ losses
def _class_loss(name):
    # the target is built for the (possibly mutated) prediction's batch size, so only the prediction is bad
    return Case(name, getattr(nn, name), _normal(5, 3),
                call=lambda fn, x: fn(x, np.zeros(np.shape(x)[:1], dtype=np.int64)), label=f"{name}(input)")


_PRED = np.full((5, 3), 0.25)


def _regression_losses(name):
    return [
        Case(name, getattr(nn, name), _unit(5, 3), call=lambda fn, x: fn(x, np.zeros(np.shape(x))),
             label=f"{name}(input)"),
        # a real-valued target of any numeric dtype (or a list) is converted, as torch's python scalars are
        Case(name, getattr(nn, name), _unit(5, 3), call=lambda fn, t: fn(_PRED, t), label=f"{name}(target)",
             casts=True),
    ]


LOSSES = [_class_loss("CrossEntropyLoss"), _class_loss("NLLLoss"),
          *[c for n in ("MSELoss", "BCELoss", "BCEWithLogitsLoss") for c in _regression_losses(n)]]


# ------------------------------------------------------------------------------ method classes
def _m(name):
    return importlib.import_module(f"nnlocal.methods.{name}")


def _pan():
    pan = _m("pan")
    models = [Case("ConvNet", lambda f=f: f(image_size=12, rng=0), _unit(2, 1, 12, 12),
                   label=f"ConvNet({f.__name__})", container=True) for f in (pan.lenet5, pan.tron)]
    return [Case("PerceptronActivation", lambda: pan.PerceptronActivation(4, 3, rng=0), _normal(5, 4)), *models]


# (keras name -> constructor, input shape) for the 13 AutoRot layers (arp.LAYERS)
_ARP = {
    "Dense": (lambda c: c(4, 3, rng=0), (5, 4)),
    "SimpleRNN": (lambda c: c(3, 4, rng=0), (2, 5, 3)),
    "LSTM": (lambda c: c(3, 4, rng=0), (2, 5, 3)),
    "GRU": (lambda c: c(3, 4, rng=0), (2, 5, 3)),
    "Conv1D": (lambda c: c(2, 3, 3, rng=0), (2, 2, 6)),
    "Conv2D": (lambda c: c(2, 3, 3, rng=0), (2, 2, 5, 5)),
    "Conv3D": (lambda c: c(2, 2, 2, rng=0), (2, 2, 3, 3, 3)),
    "Conv2DTranspose": (lambda c: c(2, 3, 3, rng=0), (2, 2, 3, 3)),
    "Conv3DTranspose": (lambda c: c(2, 2, 2, rng=0), (2, 2, 2, 2, 2)),
    "SeparableConv": (lambda c: c(2, 3, 3, rng=0), (2, 2, 5, 5)),
    "SeparableConv1D": (lambda c: c(2, 3, 3, rng=0), (2, 2, 6)),
    "SeparableConv2D": (lambda c: c(2, 3, 3, rng=0), (2, 2, 5, 5)),
    "DepthwiseConv2D": (lambda c: c(2, 3, rng=0), (2, 2, 5, 5)),
}


def _arp():
    arp = _m("arp")
    cases = []
    for keras, alias, cls_name, _ in arp.LAYERS:
        make, shape = _ARP[keras]
        cls = getattr(arp, cls_name)
        # a separable conv is a depthwise and a pointwise convolution
        cases.append(Case(cls_name, lambda make=make, cls=cls: make(cls), _unit(*shape), label=f"{alias}",
                          container="Separable" in cls_name))
    return cases


def _kwta():
    kw = _m("kwta")
    return [Case("KWinnersTakeAll", lambda: kw.KWinnersTakeAll(0.25), _normal(5, 8)),
            Case("KWinnersTakeAllSoft", lambda: kw.KWinnersTakeAllSoft(0.25, hardness=2.0), _normal(5, 8)),
            Case("WinnerTakeAll", lambda: kw.WinnerTakeAll(), _normal(5, 8)),
            Case("SynapticScaling", lambda: kw.SynapticScaling(kw.KWinnersTakeAll(0.25)), _normal(5, 8),
                 container=True),
            Case("TripletCosineLoss", lambda: kw.TripletCosineLoss(), _normal(4, 6), label="TripletCosineLoss",
                 call=lambda fn, e: fn(e, np.array([[0, 1, 2], [1, 2, 3]])))]


def _butd():
    b = _m("butd")
    core = lambda: b.fc_core(in_shape=(1, 4, 4), hidden=5, rng=0)  # noqa: E731
    task = lambda x: np.zeros(np.shape(x)[:1], dtype=np.int64)    # noqa: E731  (task 0 for every sample)
    return [Case("BUTDLinear", lambda: b.BUTDLinear(4, 3, rng=0), _normal(5, 4)),
            Case("BUTDConv2d", lambda: b.BUTDConv2d(2, 3, 3, rng=0), _normal(2, 2, 5, 5)),
            Case("BUTDFlatten", lambda: b.BUTDFlatten(), _normal(2, 2, 3, 3)),
            Case("BUTDBasicBlock", lambda: b.BUTDBasicBlock(2, 2, rng=0), _normal(2, 2, 5, 5),
                 container=True),
            Case("BUTDSequential", lambda: b.BUTDSequential(b.BUTDLinear(4, 3, rng=0)), _normal(5, 4),
                 container=True),
            Case("BUTDNet", lambda: b.BUTDNet(core(), 3, rng=0), _normal(2, 1, 4, 4), container=True),
            Case("TaskBUTDNet", lambda: b.TaskBUTDNet(core(), 3, n_tasks=2, task_embedding=None, rng=0),
                 _normal(2, 1, 4, 4), call=lambda net, x: net(x, task(x)), container=True),
            Case("HardSharingNet", lambda: b.HardSharingNet(core(), 3, n_tasks=2, rng=0), _normal(2, 1, 4, 4),
                 container=True)]


_XY = lambda rng: rng.random((4, 2))  # noqa: E731  (four samples of a 2-input logic gate)


def _deep():
    d = _m("deep")
    cases = []
    for cls in (d.DEEPNet, d.AsymEPNet):
        make = lambda cls=cls: cls(2, [3], 1, rng=0)  # noqa: E731
        y = lambda x: np.zeros((len(x) if np.ndim(x) else 1, 1))  # noqa: E731
        cases += [
            Case(cls.__name__, make, _XY, call=lambda n, x: n.relax(x, steps=5), label=f"{cls.__name__}.relax",
                 casts=True),
            Case(cls.__name__, make, _XY, call=lambda n, x: n.predict(x, T=5), label=f"{cls.__name__}.predict",
                 casts=True),
            Case(cls.__name__, make, _XY, call=lambda n, x, y=y: n.fit(x, y(x), epochs=1, T1=5, T2=5),
                 label=f"{cls.__name__}.fit", casts=True),
        ]
    return cases


def _eqprop():
    ep = _m("eqprop")
    make = lambda: ep.EPNet([4, 5, 3], rng=0)  # noqa: E731
    labels = lambda x: np.zeros(len(x) if np.ndim(x) else 1, dtype=np.int64)  # noqa: E731
    return [Case("EPNet", make, _unit(4, 4), call=lambda n, x: n.relax(x, steps=3), label="EPNet.relax",
                 casts=True),
            Case("EPNet", make, _unit(4, 4), call=lambda n, x: n.predict(x, steps=3), label="EPNet.predict",
                 casts=True),
            Case("EPNet", make, _unit(4, 4),
                 call=lambda n, x: n.fit(x, labels(x), batch_size=2, n_free=2, n_nudged=1, rng=0),
                 label="EPNet.fit", casts=True)]


METHOD_CLASSES = [*_pan(), *_arp(), *_kwta(), *_butd(), *_deep(), *_eqprop()]
CASES = NN_LAYERS + LOSSES + METHOD_CLASSES
