r"""The PAN layer, :class:`PerceptronActivation`: the equations of ``reference.py`` as a module.

Source: C. Kalle, *Perceptron Activation Network* (R4 Robotics, 2018),
github.com/bdschrisk/Perceptron-Activation-Network @ b47fc0f (MIT), the ``Perceptron`` module of
its README and notebooks.

========================  ==================  =================  ========================================
nnlocal name              notebook name       shape              trains?
========================  ==================  =================  ========================================
``weight``                ``SW``              ``(m, n)``         yes
``bias``                  ``Sb``              ``(m,)``           yes
``teacher_weight``        ``TW``              ``(m·n, n)``       no (``teacher="frozen"``); STE extension
``teacher_bias``          ``Tb``              ``(m·n,)``         no (``teacher="frozen"``); STE extension
``threshold``             ``minimum``         scalar θ = 0       —
========================  ==================  =================  ========================================

forward: gate (:func:`~.reference.pan_batch_gate` / :func:`~.reference.pan_sample_gate`), then the
masked product (:func:`~.reference.masked_linear` / :func:`~.reference.pan_sample_forward`).
backward: :func:`~.reference.masked_linear_backward` / :func:`~.reference.pan_sample_backward`,
then, with ``teacher="ste"``, the straight-through teacher gradients. Functions named ``pan_*``
come from the implementation :mod:`nnlocal.kernels` selects (reference, Numba or CUDA twin).

What departs from the original (all labelled **extension**, off by default): ``gate="sample"``
(one gate per sample; also the "evaluate one sample at a time" policy, since a batch gate with
B = 1 is a per-sample gate), ``teacher="ste"`` (the teacher trains through a straight-through
estimator), and the ablation ``gate="open"`` (every gate open: a plain linear map).

Initialisation: ``init="notebook"`` (the MNIST/CIFAR-10 notebooks) draws SW, Sb, TW, Tb from
N(0, 1); ``init="readme"`` (README and the "PyTorch-Weights" notebook) sets Sb = Tb = 1. Draw
order follows the original constructor: Sb, SW, Tb, TW.

Batch dependence: with the faithful batch gate, **evaluation depends on the other samples in the
evaluation batch and on its size** (the B·Tb term). ``demos/pan_lenet5.py --ablations`` measures it.

Contracts
---------
* **Input**: float32/float64 ``(B, n)``, B ≥ 1, finite (NaN or ±inf is a ``ValueError``: a NaN
  sample would otherwise close every gate of its batch). ``forward`` keeps a copy of x for
  ``backward`` (x is ``(B, n)``, small next to the gate's read of TW), so the caller may reuse x.
* **backward** takes ``grad_output`` of the forward output's shape and dtype.
* **State**: ``state_dict`` / ``nnlocal.save`` hold SW, Sb, TW, Tb, ``threshold`` and ``modes``
  (the gate and teacher modes as indices into :data:`GATES` and :data:`TEACHERS`); the
  ``init`` label only describes the construction and is not saved.
* **device="cuda"**: TW and Tb stay on the GPU between calls. The device copy is uploaded again
  only when they may have changed: a new array assigned to ``.data`` (or ``to()``), a
  ``load_state_dict`` (which sets ``modes`` right after copying TW and Tb in place), or, with
  ``teacher="ste"``, the first forward after a backward (the optimizer step changes TW in place)
  and every forward while the teacher holds a gradient. After editing TW or Tb in place yourself,
  call :meth:`PerceptronActivation.teacher_changed`.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..._checks import check_finite_input, check_float_array, check_grad_output, shape_error
from ..._rng import get_rng
from ... import kernels
from ...kernels import check_device
from ...nn.module import Module, Parameter
from . import reference

__all__ = ["PerceptronActivation", "GATES", "TEACHERS", "INITS"]

GATES = ("batch", "sample", "open")
TEACHERS = ("frozen", "ste")
INITS = ("notebook", "readme")


def _check_choice(who: str, name: str, value, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{who}: {name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
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
    device : "cpu" or "cuda". On "cuda" the gate runs on the GPU with TW and Tb resident there
        (uploaded when they change, see the module docstring); the per-sample masked products run
        there too; the batch gate's small masked GEMMs and the gradients stay on the host.

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
        object.__setattr__(self, "_device_teacher", None)  # (host TW, host Tb, device TW, device Tb)
        object.__setattr__(self, "_teacher_stale", False)
        self._set_modes(gate, teacher)
        self.threshold = threshold
        # settings saved with the weights: state_dict reads these properties, load_state_dict sets them
        self.register_buffer("threshold", self.threshold)
        self.register_buffer("modes", self.modes)

    # ------------------------------------------------------------------ validated settings
    @property
    def threshold(self) -> float:
        return self._threshold

    @threshold.setter
    def threshold(self, value):
        if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "fiu":
            value = value.item()                           # as load_state_dict passes it
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(float(value)):
            raise ValueError(f"PerceptronActivation: threshold must be a real number (not NaN), got {value!r}")
        object.__setattr__(self, "_threshold", float(value))

    @property
    def gate(self) -> str:
        return self._gate_mode

    @gate.setter
    def gate(self, value):
        self._set_modes(value, self.teacher)

    @property
    def teacher(self) -> str:
        return self._teacher_mode

    @teacher.setter
    def teacher(self, value):
        self._set_modes(self.gate, value)

    @property
    def modes(self) -> np.ndarray:
        """``[GATES.index(gate), TEACHERS.index(teacher)]``: the two modes as ``state_dict`` saves them."""
        return np.array([GATES.index(self.gate), TEACHERS.index(self.teacher)], dtype=np.int64)

    @modes.setter
    def modes(self, value):
        v = np.asarray(value)
        if v.shape != (2,) or v.dtype.kind not in "iu" or not (0 <= v[0] < len(GATES) and 0 <= v[1] < len(TEACHERS)):
            raise ValueError(f"PerceptronActivation: modes must be [gate index < {len(GATES)}, teacher index "
                             f"< {len(TEACHERS)}] (indices into pan.GATES and pan.TEACHERS), got {value!r}")
        self._set_modes(GATES[int(v[0])], TEACHERS[int(v[1])])
        self.teacher_changed()     # load_state_dict sets modes right after copying TW and Tb in place

    def _set_modes(self, gate, teacher) -> None:
        """Set both modes at once (a state dict may change both, and only some pairs are valid)."""
        _check_choice("PerceptronActivation", "gate", gate, GATES)
        _check_choice("PerceptronActivation", "teacher", teacher, TEACHERS)
        if gate == "open" and teacher == "ste":
            raise ValueError("PerceptronActivation: gate='open' has no gate for a straight-through teacher to train")
        object.__setattr__(self, "_gate_mode", gate)
        object.__setattr__(self, "_teacher_mode", teacher)
        self.teacher_weight.requires_grad = teacher == "ste"
        self.teacher_bias.requires_grad = teacher == "ste"
        object.__setattr__(self, "_cache", None)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, threshold={self.threshold}, "
                f"gate={self.gate!r}, teacher={self.teacher!r}, init={self.init!r}")

    # ------------------------------------------------------------------ implementation and device
    @property
    def _kernels(self):
        """reference.py, cpu.py or cuda.py: the ``pan_*`` functions for ``self.device`` and the switch."""
        return kernels.implementation(__package__, self.device)

    def teacher_changed(self) -> None:
        """Say that TW or Tb was edited in place: on ``device="cuda"`` the next forward uploads them
        again. Not needed after assigning ``.data``, ``to()``, ``load_state_dict`` or an optimizer
        step of a straight-through teacher (the layer notices those itself)."""
        object.__setattr__(self, "_device_teacher", None)

    def _teacher(self):
        """``(TW, Tb)`` for the gate: the parameters' arrays, or on CUDA their resident device copies."""
        tw_p, tb_p = self.teacher_weight, self.teacher_bias
        tw, tb = tw_p.data, tb_p.data
        if self.device == "cpu":
            return tw, tb
        held = self._device_teacher
        if held is None or held[0] is not tw or held[1] is not tb or self._teacher_stale:
            K = self._kernels
            held = (tw, tb, K.to_device(tw), K.to_device(tb))
            object.__setattr__(self, "_device_teacher", held)
        # an optimizer changes a parameter only while it holds a gradient: upload again until it has none
        object.__setattr__(self, "_teacher_stale", tw_p.grad is not None or tb_p.grad is not None)
        return held[2], held[3]

    # ------------------------------------------------------------------ forward
    def forward(self, x: np.ndarray) -> np.ndarray:
        check_float_array(self, x)
        if x.ndim != 2 or x.shape[1] != self.in_features or x.shape[0] == 0:
            raise shape_error(self, f"(B, {self.in_features}) with B >= 1", x.shape)
        check_finite_input(self, x)
        x = np.array(x, order="C")         # backward's own copy: the caller may reuse x
        mask = self._gate(x)
        sw = self.weight.data.astype(x.dtype, copy=False)
        sb = self.bias.data.astype(x.dtype, copy=False)
        if mask is None or mask.ndim == 2:
            y, w_eff = reference.masked_linear(x, sw, sb, mask)
        else:
            y = self._kernels.pan_sample_forward(mask, sw, x, sb, np.empty((x.shape[0], self.out_features), x.dtype))
            w_eff = None
        self._save_for_backward(x, mask, w_eff)
        return y

    def _gate(self, x: np.ndarray):
        """The gate o: bool ``(m, n)`` (batch), ``(B, m, n)`` (sample) or ``None`` (open)."""
        if self.gate == "open":
            return None
        m, n = self.out_features, self.in_features
        tw, tb = self._teacher()
        dt = self.teacher_weight.data.dtype.type       # the gate is computed in TW's dtype
        if self.gate == "batch":
            s = x.sum(axis=0).astype(dt, copy=False)
            mask = self._kernels.pan_batch_gate(tw, s, tb, dt(x.shape[0]), dt(self.threshold),
                                                np.empty(m * n, np.bool_))
            return mask.reshape(m, n)
        mask = np.empty((x.shape[0], m * n), np.bool_)
        self._kernels.pan_sample_gate(tw, x.astype(dt, copy=False), tb, dt(self.threshold), mask)
        return mask.reshape(x.shape[0], m, n)

    # ------------------------------------------------------------------ backward
    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        x, mask, w_eff = self._saved()
        check_grad_output(self, grad_output, (x.shape[0], self.out_features))
        if grad_output.dtype != x.dtype:
            raise ValueError(f"{self!r}.backward: expected grad_output of dtype {x.dtype} (the output's), "
                             f"got {grad_output.dtype}")
        g = np.ascontiguousarray(grad_output)
        if mask is None or mask.ndim == 2:
            gx, g_sw, g_weff = reference.masked_linear_backward(g, x, mask, w_eff)
        else:
            sw = self.weight.data.astype(x.dtype, copy=False)
            g_sw, gx = self._kernels.pan_sample_backward(mask, sw, x, g, np.empty_like(sw), np.empty_like(x))
            g_weff = None
        self.weight.accumulate_grad(g_sw)
        self.bias.accumulate_grad(g.sum(axis=0))
        if self.teacher == "ste":
            gx += self._teacher_backward(x, g, mask, g_weff)
            object.__setattr__(self, "_teacher_stale", True)   # the optimizer step will change TW in place
        return gx

    def _teacher_backward(self, x, g, mask, g_weff) -> np.ndarray:
        """Straight-through teacher (extension): add dL/dTW, dL/dTb; return the extra dL/dx."""
        tw_p, tb_p = self.teacher_weight, self.teacher_bias
        tw = tw_p.data
        dt = tw.dtype                                   # teacher gradients in TW's dtype (never cast TW)
        sw = self.weight.data.astype(dt, copy=False)
        if mask.ndim == 2:
            s = x.sum(axis=0).astype(dt, copy=False)
            d_th, g_tb, extra = reference.ste_batch_teacher_grads(g_weff.astype(dt, copy=False), sw, s,
                                                                  x.shape[0], tw)
            if tw_p.grad is None:
                tw_p.grad = np.multiply.outer(d_th, s)             # dL/dTW = dTh ⊗ s
            else:
                self._kernels.pan_add_outer(tw_p.grad, d_th, s)   # accumulated in place
        else:
            B = x.shape[0]
            g_o = self._kernels.pan_sample_gate_grad(sw, x.astype(dt, copy=False), g.astype(dt, copy=False),
                                                     np.empty(mask.shape, dt))
            g_tw, g_tb, extra = reference.ste_sample_teacher_grads(g_o.reshape(B, -1), x.astype(dt, copy=False), tw)
            tw_p.accumulate_grad(g_tw)
        tb_p.accumulate_grad(g_tb)
        return extra.astype(x.dtype, copy=False)

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
