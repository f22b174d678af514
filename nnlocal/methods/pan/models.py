r"""Perceptron Activation Networks (PAN): a teacher-student gated linear layer.

Source: C. Kalle, *Perceptron Activation Network* (R4 Robotics, 2018),
github.com/bdschrisk/Perceptron-Activation-Network @ b47fc0f (MIT), the ``Perceptron`` module of its
README and notebooks; restated in ``shared/spec/methods.md`` §1.

The layer
---------
A layer with n inputs and m outputs holds a *student* (an ordinary linear map) and a *teacher*
with **one unit per student weight**:

========================  ==================  =================  ========================================
nnlocal name              notebook name       shape              trains?
========================  ==================  =================  ========================================
``weight``                ``SW``              ``(m, n)``         yes
``bias``                  ``Sb``              ``(m,)``           yes
``teacher_weight``        ``TW``              ``(m·n, n)``       no (``teacher="frozen"``); STE extension
``teacher_bias``          ``Tb``              ``(m·n,)``         no (``teacher="frozen"``); STE extension
``threshold``             ``minimum``         scalar θ = 0       —
========================  ==================  =================  ========================================

Forward pass for a batch x ``(B, n)`` (``gate="batch"``, the original):

.. math::

    Th = \sum_b (TW\,x_b + Tb) = TW\,s + B\,Tb, \quad s = \sum_b x_b \qquad (m·n,)

    o_{j,i} = [Th_{j·n+i} > θ], \qquad y = x\,(o ⊙ SW)^\top + Sb \qquad (B, m)

The original computes ``Th`` as a ``(B, m·n)`` GEMM followed by a sum over the batch. The batch sum
commutes with the teacher's linear map, so nnlocal computes the same numbers as **one
matrix-vector product** that streams TW once (19.2 M floats for 400→120), fused with the
threshold in a Numba kernel (:func:`nnlocal.methods.pan.cpu.pan_batch_gate`). The layer has no
activation of its own: the binary gate is its only nonlinearity.

Backward, with g = dL/dy ``(B, m)`` and W_eff = o ⊙ SW:

* dL/dSW = o ⊙ (gᵀ x),  dL/dSb = Σ_b g_b,  dL/dx = g W_eff;
* faithful teacher (``teacher="frozen"``): ``torch.gt`` has no gradient, so TW and Tb never
  train in the original (their ``.grad`` stays ``None`` and SGD skips them). Here they are
  :class:`~nnlocal.nn.Parameter` objects with ``requires_grad=False``.

What departs from the original (all labelled **extension**, off by default)
--------------------------------------------------------------------------
* ``gate="sample"``: every sample gets its own gate o_b = [TW x_b + Tb > θ]; the masked product is
  y_b = (o_b ⊙ SW) x_b + Sb. Predictions no longer depend on the rest of the batch. (A batch gate
  with B = 1 is exactly a per-sample gate, so this is also the "evaluate one sample at a time"
  policy, computed in batches.)
* ``teacher="ste"``: the teacher trains through a straight-through estimator of the gate,
  dL/dTh := dL/do (spec §1.2):
  batch gate: dL/do = SW ⊙ (gᵀ x), dL/dTW = dL/dTh ⊗ s, dL/dTb = B·dL/dTh and every dL/dx_b gains
  TWᵀ dL/dTh; per-sample gate: dL/do_b = SW ⊙ (g_b ⊗ x_b), dL/dTW = Σ_b dL/dTh_b ⊗ x_b,
  dL/dTb = Σ_b dL/dTh_b, dL/dx_b gains TWᵀ dL/dTh_b.
* ``gate="open"`` (ablation): every gate open, the layer is a plain linear map (teacher unused).

Initialisation: ``init="notebook"`` (the MNIST/CIFAR-10 notebooks) draws SW, Sb, TW, Tb all from
N(0, 1); ``init="readme"`` (README and the "PyTorch-Weights" notebook) sets Sb = Tb = 1. Draw
order follows the original constructor: Sb, SW, Tb, TW.

Batch dependence: with the faithful batch gate, **evaluation depends on the other samples in the
evaluation batch and on its size** (the B·Tb term). ``demos/pan_lenet5.py --ablations`` measures it.

Networks
--------
:func:`lenet5` and :func:`tron` build the notebooks' LeNet-5 baseline and its PAN version "Tron"
(the two hidden fully connected layers replaced by PAN layers, **no ReLU between them**) for
MNIST-like 1×28×28, CIFAR-10 3×32×32 and, as an nnlocal addition, the 8×8 scikit-learn digits.
"""
from __future__ import annotations

import contextlib
import math
import numbers

import numpy as np

from ..._checks import check_float_array, shape_error
from ..._rng import get_rng
from ... import kernels
from ...kernels import check_device
from ...nn import Conv2d, Flatten, Linear, LogSoftmax, MaxPool2d, ReLU
from ...nn.module import Module, Parameter, Sequential

__all__ = ["PerceptronActivation", "ConvNet", "lenet5", "tron", "conv_geometry", "pan_layers", "using_gate",
           "GATES", "TEACHERS", "INITS"]

GATES = ("batch", "sample", "open")
TEACHERS = ("frozen", "ste")
INITS = ("notebook", "readme")

# per-sample gate: at most this many teacher pre-activations (B_chunk × m·n) in memory at once
_SAMPLE_CHUNK_ELEMENTS = 1 << 22


def _check_choice(layer: str, name: str, value, choices) -> str:
    if value not in choices:
        raise ValueError(f"{layer}: {name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


class PerceptronActivation(Module):
    r"""Perceptron Activation layer (the original's ``Perceptron`` module).

    Parameters
    ----------
    in_features, out_features : int
        n and m. The teacher has m·n units of n weights each.
    threshold : float
        θ of the gate o = [Th > θ] (the original's ``minimum``, 0.0). NaN is rejected; ``-inf``
        opens every gate, ``+inf`` closes every gate.
    gate : {"batch", "sample", "open"}
        "batch" (faithful): one gate per mini-batch from the batch-summed teacher pre-activation.
        "sample" (extension): one gate per sample. "open" (ablation): every gate open.
    teacher : {"frozen", "ste"}
        "frozen" (faithful): the teacher gets no gradient (``requires_grad=False``).
        "ste" (extension): straight-through estimator dL/dTh = dL/do.
    init : {"notebook", "readme"}
        "notebook": SW, Sb, TW, Tb ~ N(0, 1). "readme": SW, TW ~ N(0, 1), Sb = Tb = 1.
    rng : None | int | numpy.random.Generator
    dtype : float dtype of the parameters (float32 by default; TW is m·n·n floats).
    device : "cpu" or "cuda" (the gate and the per-sample masked products run the
        :mod:`nnlocal.kernels.cuda` twins of the CPU kernels; TW is uploaded on every forward, so
        the GPU path pays one 77 MB host-to-device copy per batch for the MNIST tron1).

    Shapes: x ``(B, n)`` → y ``(B, m)``.
    """

    def __init__(self, in_features: int, out_features: int, threshold: float = 0.0, gate: str = "batch",
                 teacher: str = "frozen", init: str = "notebook", rng=None, dtype=np.float32, device: str = "cpu"):
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 1:
                raise ValueError(f"PerceptronActivation: {name} must be a positive integer, got {v!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"PerceptronActivation: dtype must be float32 or float64, got {dtype}")
        self.init = _check_choice("PerceptronActivation", "init", init, INITS)
        self.device = check_device(device, "PerceptronActivation")
        m, n = self.out_features, self.in_features
        rng = get_rng(rng)

        def randn(*shape):
            return rng.standard_normal(shape, dtype=dtype)

        # the original constructor's order: Sb, SW, Tb, TW
        bias = randn(m) if init == "notebook" else np.ones(m, dtype)
        weight = randn(m, n)
        teacher_bias = randn(m * n) if init == "notebook" else np.ones(m * n, dtype)
        teacher_weight = randn(m * n, n)
        self.weight = Parameter(weight)                    # SW
        self.bias = Parameter(bias)                        # Sb
        self.teacher_weight = Parameter(teacher_weight)    # TW
        self.teacher_bias = Parameter(teacher_bias)        # Tb
        self.threshold = threshold
        self.gate = gate
        self.teacher = teacher                             # sets the teacher's requires_grad

    # ------------------------------------------------------------------ validated settings
    @property
    def threshold(self) -> float:
        return self._threshold

    @threshold.setter
    def threshold(self, value):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(float(value)):
            raise ValueError(f"PerceptronActivation: threshold must be a real number (not NaN), got {value!r}")
        object.__setattr__(self, "_threshold", float(value))

    @property
    def gate(self) -> str:
        return self._gate_mode

    @gate.setter
    def gate(self, value):
        _check_choice("PerceptronActivation", "gate", value, GATES)
        if value == "open" and getattr(self, "_teacher_mode", "frozen") == "ste":
            raise ValueError("PerceptronActivation: gate='open' has no gate for a straight-through teacher to train")
        object.__setattr__(self, "_gate_mode", value)
        object.__setattr__(self, "_cache", None)

    @property
    def teacher(self) -> str:
        return self._teacher_mode

    @teacher.setter
    def teacher(self, value):
        _check_choice("PerceptronActivation", "teacher", value, TEACHERS)
        if value == "ste" and self.gate == "open":
            raise ValueError("PerceptronActivation: gate='open' has no gate for a straight-through teacher to train")
        object.__setattr__(self, "_teacher_mode", value)
        self.teacher_weight.requires_grad = value == "ste"
        self.teacher_bias.requires_grad = value == "ste"
        object.__setattr__(self, "_cache", None)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, threshold={self.threshold}, "
                f"gate={self.gate!r}, teacher={self.teacher!r}, init={self.init!r}")

    # ------------------------------------------------------------------ the three computational pieces
    @property
    def _kernels(self):
        """The gating kernels for ``self.device`` (one module; a CUDA twin has the same functions)."""
        return kernels.implementation(__package__, self.device)

    def _gate(self, x: np.ndarray):
        """The gate: bool ``(m, n)`` (batch), ``(B, m, n)`` (sample) or ``None`` (open)."""
        K = self._kernels
        m, n = self.out_features, self.in_features
        tw, tb = self.teacher_weight.data, self.teacher_bias.data
        dt = tw.dtype.type
        if self.gate == "batch":
            s = x.sum(axis=0).astype(tw.dtype, copy=False)
            mask = np.empty(m * n, dtype=np.bool_)
            K.pan_batch_gate(tw, s, tb, dt(x.shape[0]), dt(self.threshold), mask)
            return mask.reshape(m, n)
        if self.gate == "sample":
            B = x.shape[0]
            xt = np.ascontiguousarray(x, dtype=tw.dtype)
            mask = np.empty((B, m * n), dtype=np.bool_)
            chunk = max(1, _SAMPLE_CHUNK_ELEMENTS // (m * n))
            for b0 in range(0, B, chunk):
                tz = xt[b0:b0 + chunk] @ tw.T                     # (chunk, m·n), BLAS
                K.pan_bias_threshold(tz, tb, dt(self.threshold), mask[b0:b0 + chunk])
            return mask.reshape(B, m, n)
        return None

    def _masked_forward(self, x: np.ndarray, mask):
        """y = x (o ⊙ SW)ᵀ + Sb; returns (y, W_eff) with W_eff ``(m, n)`` or None (per-sample gates)."""
        sw = self.weight.data.astype(x.dtype, copy=False)
        sb = self.bias.data.astype(x.dtype, copy=False)
        if mask is None or mask.ndim == 2:
            w_eff = sw if mask is None else sw * mask
            return x @ w_eff.T + sb, w_eff
        y = np.empty((x.shape[0], self.out_features), dtype=x.dtype)
        self._kernels.pan_sample_forward(mask, sw, np.ascontiguousarray(x), sb, y)
        return y, None

    def _masked_backward(self, g: np.ndarray, x: np.ndarray, mask, w_eff, want_gate_grad: bool):
        """Returns (dL/dx, dL/dSW, dL/do or None) of the masked product."""
        if mask is None or mask.ndim == 2:
            g_weff = g.T @ x                                      # dL/dW_eff (m, n)
            g_sw = g_weff if mask is None else g_weff * mask
            g_o = g_weff * self.weight.data.astype(g.dtype, copy=False) if want_gate_grad else None
            return g @ w_eff, g_sw, g_o
        sw = self.weight.data.astype(g.dtype, copy=False)
        g_sw = np.empty_like(sw)
        gx = np.empty_like(x)
        self._kernels.pan_sample_backward(mask, sw, x, g, g_sw, gx)
        g_o = None
        if want_gate_grad:
            g_o = self._kernels.pan_sample_gate_grad(sw, x, g, np.empty(mask.shape, dtype=g.dtype))
        return gx, g_sw, g_o

    def _teacher_backward(self, x: np.ndarray, g_th: np.ndarray) -> np.ndarray:
        """Straight-through teacher (extension): fill TW/Tb grads from dL/dTh; return the extra dL/dx."""
        tw_p, tb_p = self.teacher_weight, self.teacher_bias
        tw = tw_p.data
        B = x.shape[0]
        if self.gate == "batch":
            g_th = g_th.reshape(-1).astype(tw.dtype, copy=False)     # (m·n,)
            s = x.sum(axis=0).astype(tw.dtype, copy=False)
            if tw_p.requires_grad:
                if tw_p.grad is None:
                    tw_p.grad = np.multiply.outer(g_th, s)
                else:
                    self._kernels.pan_add_outer(tw_p.grad, g_th, s)
            tb_p.accumulate_grad(B * g_th)
            extra = g_th @ tw                                        # TWᵀ dL/dTh, the same for every sample
            return np.broadcast_to(extra.astype(x.dtype, copy=False), x.shape)
        g_th = g_th.reshape(B, -1).astype(tw.dtype, copy=False)     # (B, m·n)
        if tw_p.requires_grad:
            gtw = g_th.T @ x.astype(tw.dtype, copy=False)
            if tw_p.grad is None:
                tw_p.grad = gtw
            else:
                tw_p.grad += gtw
        tb_p.accumulate_grad(g_th.sum(axis=0))
        return (g_th @ tw).astype(x.dtype, copy=False)

    # ------------------------------------------------------------------ forward / backward
    def forward(self, x: np.ndarray) -> np.ndarray:
        check_float_array(repr(self), x)
        if x.ndim != 2 or x.shape[1] != self.in_features or x.shape[0] == 0:
            raise shape_error(repr(self), f"(B, {self.in_features}) with B >= 1", x.shape)
        x = np.ascontiguousarray(x)
        mask = self._gate(x)
        y, w_eff = self._masked_forward(x, mask)
        self._save_for_backward(x, mask, w_eff)
        return y

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        x, mask, w_eff = self._saved()
        g = np.asarray(grad_output)
        if g.shape != (x.shape[0], self.out_features):
            raise shape_error(repr(self), f"({x.shape[0]}, {self.out_features})", g.shape, "grad_output")
        g = np.ascontiguousarray(g, dtype=x.dtype)
        ste = self.teacher == "ste" and mask is not None
        gx, g_sw, g_o = self._masked_backward(g, x, mask, w_eff, ste)
        self.weight.accumulate_grad(g_sw)
        self.bias.accumulate_grad(g.sum(axis=0))
        if ste:
            gx = gx + self._teacher_backward(x, g_o)
        return gx

    # ------------------------------------------------------------------ diagnostics
    def gate_stats(self) -> dict:
        """Open gates in the last forward pass.

        Returns ``{"gate", "batch_size", "open_fraction", "open_per_output"}`` (and
        ``"open_per_sample"`` for per-sample gates): fractions in [0, 1]; ``open_per_output`` is
        ``(m,)``, the fraction of student weights of each output unit that were open.
        """
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.gate_stats() called before forward(): run forward first")
        x, mask, _ = self._cache
        m = self.out_features
        stats = {"gate": self.gate, "batch_size": int(x.shape[0])}
        if mask is None:
            stats.update(open_fraction=1.0, open_per_output=np.ones(m))
        elif mask.ndim == 2:
            stats.update(open_fraction=float(mask.mean()), open_per_output=mask.mean(axis=1))
        else:
            stats.update(open_fraction=float(mask.mean()), open_per_output=mask.mean(axis=(0, 2)),
                         open_per_sample=mask.mean(axis=(1, 2)))
        return stats


# =============================================================================== networks
class ConvNet(Sequential):
    """A feed-forward net whose named children run in registration order (a Sequential with names).

    Built by :func:`lenet5` and :func:`tron`; parameter names follow the notebooks
    (``conv1.weight``, ``fc1.bias``, ``tron1.teacher_weight``, ...).
    """

    def __init__(self, **layers: Module):
        super().__init__(dict(layers))

    def gate_stats(self) -> dict:
        """``{layer name: PerceptronActivation.gate_stats()}`` for every PAN layer."""
        return {name: m.gate_stats() for name, m in pan_layers(self)}


def pan_layers(model: Module):
    """``[(name, layer)]`` of every :class:`PerceptronActivation` in ``model``."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, PerceptronActivation)]


@contextlib.contextmanager
def using_gate(model: Module, gate: str):
    """Temporarily switch every PAN layer of ``model`` to ``gate`` (restored on exit).

    ``with using_gate(net, "sample"): ...`` evaluates each sample with its own gate, which is
    exactly the faithful batch gate at evaluation batch size 1 (B = 1 makes TW·Σx + B·Tb equal
    TW·x + Tb), computed a whole batch at a time.
    """
    layers = [m for _, m in pan_layers(model)]
    old = [m.gate for m in layers]
    try:
        for m in layers:
            m.gate = gate
        yield model
    finally:
        for m, g in zip(layers, old):
            m.gate = g


def conv_geometry(image_size: int) -> tuple[int, int]:
    """``(conv2 padding, flatten size / 16)`` of the LeNet-5 trunk for square images.

    conv1: 5×5, padding 2 (size kept); 2×2 max-pool; conv2: 5×5 with padding 0 as in the original
    (28 → 400 = 16·5·5 features, 32 → 576 = 16·6·6) for ``image_size >= 16``, and padding 2 below
    that so small images still fit (8×8 digits: 8 → 4 → 4 → 2, i.e. 64 = 16·2·2 features);
    2×2 max-pool.
    """
    if not isinstance(image_size, numbers.Integral) or image_size < 4:
        raise ValueError(f"lenet5/tron: image_size must be an integer >= 4, got {image_size!r}")
    pad2 = 0 if image_size >= 16 else 2
    side = ((image_size // 2) + 2 * pad2 - 4) // 2
    return pad2, side * side


def _trunk(in_channels: int, image_size: int, rng, dtype):
    pad2, area = conv_geometry(image_size)
    layers = dict(conv1=Conv2d(in_channels, 6, 5, padding=2, rng=rng), relu1=ReLU(), pool1=MaxPool2d(2),
                  conv2=Conv2d(6, 16, 5, padding=pad2, rng=rng), relu2=ReLU(), pool2=MaxPool2d(2),
                  flatten=Flatten())
    return layers, 16 * area


def lenet5(in_channels: int = 1, image_size: int = 28, num_classes: int = 10, fc_init: str = "torch",
           rng=None, dtype=np.float32) -> ConvNet:
    """The notebooks' LeNet-5 baseline.

    conv1 (in→6, 5×5, pad 2) → ReLU → maxpool 2 → conv2 (6→16, 5×5) → ReLU → maxpool 2 → flatten
    → fc1 (→120) → ReLU → fc2 (120→84) → ReLU → fc3 (84→classes) → LogSoftmax.

    ``fc_init="torch"`` (the original): PyTorch's default init everywhere. ``fc_init="normal"``
    (ablation, spec §1.5): fc1 and fc2 weights and biases drawn from N(0, 1), as the PAN layers'
    students are in the notebooks.
    """
    _check_choice("lenet5", "fc_init", fc_init, ("torch", "normal"))
    rng = get_rng(rng)
    layers, flat = _trunk(in_channels, image_size, rng, dtype)
    fc1, fc2 = Linear(flat, 120, rng=rng), Linear(120, 84, rng=rng)
    if fc_init == "normal":
        for fc in (fc1, fc2):
            fc.weight.data = rng.standard_normal(fc.weight.shape, dtype=np.float32)
            fc.bias.data = rng.standard_normal(fc.bias.shape, dtype=np.float32)
    layers.update(fc1=fc1, relu3=ReLU(), fc2=fc2, relu4=ReLU(), fc3=Linear(84, num_classes, rng=rng),
                  log_softmax=LogSoftmax(dim=1))
    return _as_dtype(ConvNet(**layers), dtype)


def tron(in_channels: int = 1, image_size: int = 28, num_classes: int = 10, threshold: float = 0.0,
         gate: str = "batch", teacher: str = "frozen", init: str = "notebook", rng=None, dtype=np.float32,
         device: str = "cpu") -> ConvNet:
    """The notebooks' PAN network "Tron": LeNet-5 with fc1/fc2 replaced by PAN layers.

    conv1 → ReLU → maxpool → conv2 → ReLU → maxpool → flatten → tron1 (PAN →120) → tron2 (PAN 120→84)
    → fc3 (Linear 84→classes) → LogSoftmax. **No ReLU between tron1, tron2 and fc3**, as in the
    original: the gates are the only nonlinearity after the convolutions. The PAN options are
    passed to both PAN layers.
    """
    rng = get_rng(rng)
    layers, flat = _trunk(in_channels, image_size, rng, dtype)
    kw = dict(threshold=threshold, gate=gate, teacher=teacher, init=init, rng=rng, dtype=dtype, device=device)
    layers.update(tron1=PerceptronActivation(flat, 120, **kw), tron2=PerceptronActivation(120, 84, **kw),
                  fc3=Linear(84, num_classes, rng=rng), log_softmax=LogSoftmax(dim=1))
    return _as_dtype(ConvNet(**layers), dtype)


def _as_dtype(model: Module, dtype) -> Module:
    # Module.to copies every parameter; skip it when nothing changes (TW alone is 77 MB)
    if any(p.data.dtype != np.dtype(dtype) for p in model.parameters()):
        model.to(dtype)
    return model
