r"""The kWTA layers, synaptic scaling and the sparsity / hardness schedule (equations: ``reference.py``).

=======================  ======================================  ======================================
layer                    forward                                  backward (g = dL/dy)
=======================  ======================================  ======================================
``KWinnersTakeAll``      y = [x > θ] ∈ {0,1}                      straight-through: dL/dx = g
``KWinnersTakeAllSoft``  training: z = h(x - θ), y = σ(z), or     e = g ⊙ y'(z);  dL/dx = h e, minus
                         hardsigmoid(z) = clip(z/6 + ½, 0, 1)     ½ h Σ_j e_j at the two boundary
                         if ``hard``; eval: as the hard layer     indices (the gradient through θ)
``WinnerTakeAll``        one-hot argmax (k = 1)                   straight-through
``SynapticScaling``      x ⊙ exp(b (s* - f)) then the kWTA        wrapped backward ⊙ the same factor
=======================  ======================================  ======================================

Inputs are ``(B, D)`` or ``(B, d1, d2, ...)`` (flattened per sample, the threshold broadcast back);
outputs have the input's shape and dtype. The selection runs on ``device`` through
:func:`nnlocal.kernels.implementation`; everything else is :mod:`.reference` on the host.

State: ``sparsity`` and ``hardness`` are saved in the state dict (as 0-d entries), because
:class:`KWTAScheduler` changes them during training; the scheduler has its own ``state_dict``.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..._checks import check_finite_input, check_float_array, check_grad_output, shape_error
from ... import kernels
from ...kernels import check_device
from ...nn.module import Module
from . import reference as R

__all__ = ["KWinnersTakeAll", "KWinnersTakeAllSoft", "WinnerTakeAll", "SynapticScaling", "KWTAScheduler",
           "compile_kwta"]


def _real(owner, name: str, value) -> float:
    """``value`` as a float; a ``ValueError`` naming ``owner`` if it is not a real number (a str, a
    bool, an array of more than one element). 0-d numeric arrays (from a state dict) are accepted."""
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        who = owner if isinstance(owner, str) else type(owner).__name__
        raise ValueError(f"{who}: {name} must be a real number, got {value!r}")
    return float(value)


def _checked(name: str, ok, expected: str) -> property:
    """A float attribute stored as ``_<name>`` and checked on every assignment (construction included):
    a ``ValueError`` naming the class unless ``ok(value)``; ``expected`` says what is allowed."""
    attr = "_" + name

    def fset(self, value) -> None:
        value = _real(self, name, value)
        if not ok(value):
            raise ValueError(f"{type(self).__name__}: {name} must be {expected}, got {value!r}")
        object.__setattr__(self, attr, value)

    return property(lambda self: getattr(self, attr), fset, doc=f"{name}: {expected} (checked on assignment)")


def _flatten(layer, x, min_units: int = 2) -> np.ndarray:
    """Check a layer's input (float ndarray, ``(B, ...)`` with B ≥ 1 and at least ``min_units`` units
    per sample, finite) and return it as ``(B, D)``."""
    check_float_array(layer, x)
    if x.ndim < 2 or x.shape[0] == 0 or math.prod(x.shape[1:]) < min_units:
        raise shape_error(layer, f"(B, D) or (B, C, H, W) with B >= 1 and D >= {min_units}", x.shape)
    check_finite_input(layer, x)
    return x.reshape(x.shape[0], -1)


# --------------------------------------------------------------------------------------- layers
class KWinnersTakeAll(Module):
    """Hard kWTA: ``y = [x > θ]`` per sample, straight-through backward.

    Parameters
    ----------
    sparsity : float in (0, 1)
        Fraction of active units; k = ceil(sparsity·D). State (saved in the state dict).
    device : "cpu" or "cuda"
        Where the selection runs.
    """

    def __init__(self, sparsity: float = 0.05, device: str = "cpu"):
        super().__init__()
        self.register_buffer("sparsity", sparsity)      # validated by the property below
        self.device = check_device(device, type(self).__name__)

    sparsity = _checked("sparsity", lambda v: 0.0 < v < 1.0, "a number in (0, 1)")

    def extra_repr(self) -> str:
        return f"sparsity={self.sparsity}"

    def k(self, n_units: int) -> int:
        """Winners per sample for ``n_units`` units per sample."""
        return R.kwta_k(self.sparsity, n_units)   # device-independent

    def _select(self):
        return kernels.implementation(__package__, self.device)

    def threshold(self, x2: np.ndarray, return_boundary: bool = False):
        """θ ``(B,)`` of flattened ``x2`` ``(B, D)`` (and the boundary indices, see the reference)."""
        return self._select().kwta_threshold(x2, self.k(x2.shape[1]), return_boundary)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x2 = _flatten(self, x)
        y = self._select().kwta_winners(x2, self.k(x2.shape[1])).astype(x.dtype).reshape(x.shape)
        self._save_for_backward(x.shape, x.dtype)
        return y

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        shape, dtype = self._saved()[:2]
        check_grad_output(self, grad_output, shape, dtype)
        return grad_output  # straight-through


class KWinnersTakeAllSoft(KWinnersTakeAll):
    r"""Soft kWTA: a sigmoid (or hardsigmoid) around the kWTA threshold while training, binary in eval.

    Training: z = h (x - θ(x)), y = σ(z) if ``hard`` is False, else y = clip(z/6 + ½, 0, 1)
    (:func:`.reference.soft_kwta`). The gradient includes the path through θ: with e = g ⊙ dy/dz,

    .. math::  \partial L/\partial x_i = h e_i - \tfrac12 h \textstyle\sum_j e_j\,[i \in \{i_k, i_{k+1}\}]

    (per sample, :func:`.reference.soft_kwta_backward`). Eval: identical to :class:`KWinnersTakeAll`
    (binary, straight-through). ``hardness`` h > 0 is the inverse temperature; it and ``sparsity``
    are state (changed by :class:`KWTAScheduler`, saved in the state dict).
    """

    def __init__(self, sparsity: float = 0.05, hardness: float = 1.0, hard: bool = True, device: str = "cpu"):
        super().__init__(sparsity, device)
        self.register_buffer("hardness", hardness)      # validated by the property below
        self.hard = bool(hard)

    hardness = _checked("hardness", lambda v: 0.0 < v < math.inf, "a finite number > 0")

    def extra_repr(self) -> str:
        return f"sparsity={self.sparsity}, hardness={self.hardness}, hard={self.hard}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not self.training:
            return super().forward(x)
        x2 = _flatten(self, x)
        theta, i_k, i_k1 = self.threshold(x2, return_boundary=True)
        z, y = R.soft_kwta(x2, theta, self.hardness, self.hard)
        self._save_for_backward(x.shape, x.dtype, z, y, i_k, i_k1)
        return y.reshape(x.shape)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        cache = self._saved()
        if len(cache) == 2:  # eval-mode forward: the hard layer's straight-through
            return super().backward(grad_output)
        shape, dtype, z, y, i_k, i_k1 = cache
        check_grad_output(self, grad_output, shape, dtype)
        gx = R.soft_kwta_backward(grad_output.reshape(z.shape), z, y, i_k, i_k1, self.hardness, self.hard)
        return gx.reshape(shape)


class WinnerTakeAll(Module):
    """One-hot argmax per sample (k = 1), straight-through backward.

    Extension: the original overwrote its input in place (``fill_``); this one allocates the output.
    Under ties the first maximal unit wins.
    """

    def __init__(self, device: str = "cpu"):
        super().__init__()
        self.device = check_device(device, "WinnerTakeAll")

    def forward(self, x: np.ndarray) -> np.ndarray:
        x2 = _flatten(self, x, min_units=1)
        y = np.zeros_like(x2)
        y[np.arange(x2.shape[0]), np.argmax(x2, axis=1)] = 1
        self._save_for_backward(x.shape, x.dtype)
        return y.reshape(x.shape)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        check_grad_output(self, grad_output, *self._saved())
        return grad_output


def compile_kwta(model: Module) -> Module:
    """Replace every :class:`KWinnersTakeAllSoft` in ``model`` by a hard :class:`KWinnersTakeAll`
    with the same sparsity and device (in place; returns ``model``, or the new layer when ``model``
    is itself a soft layer). For deployment: the eval output is unchanged, the sigmoid path is gone."""
    if isinstance(model, KWinnersTakeAllSoft):
        return KWinnersTakeAll(model.sparsity, model.device).train(model.training)
    for name, child in list(model.named_children()):
        new = compile_kwta(child)
        if new is not child:
            setattr(model, name, new)
    return model


class SynapticScaling(Module):
    r"""Synaptic scaling ("boost") around a kWTA module: rarely active units are boosted, busy ones damped.

    Training:

    .. math::  \tilde x = x \odot e^{b (s^* - f)},\quad y = \mathrm{kWTA}(\tilde x),\quad
               f \leftarrow \text{mean of } y \text{ over all training samples seen so far}

    f (``firing_rate``, one per unit, shape ``x.shape[1:]``) is a cumulative mean, never reset and
    not an EMA (:func:`.reference.cumulative_rate`); with a soft module it averages the soft
    outputs. Before the first update there is no f and no scaling. Eval: no scaling, no update. The
    factor (:func:`.reference.synaptic_scale`) is a constant in backward:
    dL/dx = kWTA.backward(g) ⊙ e^{b (s^* - f)}.

    ``boost_factor`` b is any finite number; ``target_sparsity`` s* lies in [0, 1].

    Quirk (faithful): a factor < 1 makes a *negative* pre-activation larger, so the boost only
    behaves as intended for positive inputs; the original places it after a Linear layer with no
    ReLU, where that happens. ``target_sparsity`` defaults to 0 as in the original (then every
    factor is ≤ 1); k/D is the natural choice.
    """

    def __init__(self, module: Module, boost_factor: float = 1.0, target_sparsity: float = 0.0):
        super().__init__()
        self.module = module
        self.boost_factor = boost_factor
        self.target_sparsity = target_sparsity
        self.register_buffer("firing_rate", None)
        self.register_buffer("n_seen", np.zeros((), dtype=np.int64))

    boost_factor = _checked("boost_factor", math.isfinite, "a finite number")
    target_sparsity = _checked("target_sparsity", lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]")

    def extra_repr(self) -> str:
        return f"boost_factor={self.boost_factor}, target_sparsity={self.target_sparsity}"

    @property
    def sparsity(self) -> float:
        return self.module.sparsity

    def scale(self, dtype=np.float64):
        """The current factor e^{b (s* - f)} (None before the first training batch)."""
        if self.firing_rate is None:
            return None
        return R.synaptic_scale(self.firing_rate, self.boost_factor, self.target_sparsity).astype(dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        _flatten(self, x, min_units=1)
        if not self.training:
            self._save_for_backward(None)
            return self.module(x)
        scale = self.scale(x.dtype)
        if scale is not None:
            if scale.shape != x.shape[1:]:
                raise shape_error(self, f"(B, {', '.join(map(str, scale.shape))})", x.shape)
            x = x * scale
        y = self.module(x)
        rate, n_seen = R.cumulative_rate(self.firing_rate, int(self.n_seen), y)
        self.firing_rate, self.n_seen = rate, np.asarray(n_seen, dtype=np.int64)
        self._save_for_backward(scale)
        return y

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        (scale,) = self._saved()
        g = self.module.backward(grad_output)
        return g if scale is None else g * scale


# ------------------------------------------------------------------------------------- schedule
class KWTAScheduler:
    r"""Per-epoch schedule of the kWTA sparsity and hardness (``trainer/kwta.py``).

    Call :meth:`step` once per epoch. At every epoch e that is a multiple of ``step_size``:

    * faithful (``compounding=True``): s ← max(s·γ_s^{e/step}, s_min), h ← min(h·γ_h^{e/step}, h_max),
      applied to the *current* values, so the exponents compound to 1, 1+2, 1+2+3, ...
      (h0 = 2, γ_h = 2, step 10, max 20: h = 2 → 4 at epoch 10 → 16 at 20 → 20 from 30);
    * extension (``compounding=False``): s = max(s0·γ_s^{e/step}, s_min), h = min(h0·γ_h^{e/step}, h_max)
      from the initial values (a clean exponential schedule).

    Applies to every :class:`KWinnersTakeAll` in ``model`` (hardness only to the soft ones). The
    current sparsity and hardness live in the layers (saved with the model's state dict); the
    scheduler's own state (the epoch and the initial values) is :meth:`state_dict`, which
    ``nnlocal.save`` / ``nnlocal.load`` accept like a module's.
    """

    def __init__(self, model: Module, step_size: int, gamma_sparsity: float = 0.5, min_sparsity: float = 0.05,
                 gamma_hardness: float = 2.0, max_hardness: float = 10.0, compounding: bool = True):
        if isinstance(step_size, bool) or not isinstance(step_size, numbers.Integral) or step_size < 1:
            raise ValueError(f"KWTAScheduler: step_size must be an int >= 1, got {step_size!r}")
        values = {name: _real("KWTAScheduler", name, v) for name, v in
                  [("gamma_sparsity", gamma_sparsity), ("min_sparsity", min_sparsity),
                   ("gamma_hardness", gamma_hardness), ("max_hardness", max_hardness)]}
        for name, v in values.items():
            if not (v > 0 and math.isfinite(v)):
                raise ValueError(f"KWTAScheduler: {name} must be a finite number > 0, got {v!r}")
        if not values["min_sparsity"] < 1:
            raise ValueError(f"KWTAScheduler: min_sparsity must lie in (0, 1), got {min_sparsity!r}")
        self.layers = [m for m in model.modules() if isinstance(m, KWinnersTakeAll)]
        if not self.layers:
            raise ValueError("KWTAScheduler: the model has no kWTA layer")
        self.step_size = int(step_size)
        self.gamma_sparsity, self.min_sparsity = values["gamma_sparsity"], values["min_sparsity"]
        self.gamma_hardness, self.max_hardness = values["gamma_hardness"], values["max_hardness"]
        self.compounding = bool(compounding)
        self.initial = [(m.sparsity, getattr(m, "hardness", None)) for m in self.layers]
        self.epoch = 0

    def step(self) -> None:
        self.epoch += 1
        if self.epoch % self.step_size:
            return
        power = self.epoch // self.step_size
        for layer, (s0, h0) in zip(self.layers, self.initial):
            s = layer.sparsity if self.compounding else s0
            layer.sparsity = max(s * self.gamma_sparsity ** power, self.min_sparsity)
            if isinstance(layer, KWinnersTakeAllSoft):
                h = layer.hardness if self.compounding else h0
                layer.hardness = min(h * self.gamma_hardness ** power, self.max_hardness)

    def state_dict(self) -> dict:
        """``{"epoch": (), "initial_sparsity": (L,), "initial_hardness": (L,)}`` for the L kWTA layers
        (NaN hardness for a hard layer): numeric arrays, so ``nnlocal.save`` can write them."""
        return {"epoch": np.array(self.epoch, dtype=np.int64),
                "initial_sparsity": np.array([s for s, _ in self.initial], dtype=np.float64),
                "initial_hardness": np.array([np.nan if h is None else h for _, h in self.initial], dtype=np.float64)}

    def load_state_dict(self, state: dict, strict: bool = True) -> "KWTAScheduler":
        """Restore :meth:`state_dict`'s entries (checked before anything changes)."""
        own = self.state_dict()
        if strict and set(state) != set(own):
            raise KeyError(f"KWTAScheduler.load_state_dict: expected the keys {sorted(own)}, got {sorted(state)}")
        for name, mine in own.items():
            if name in state and np.shape(state[name]) != mine.shape:
                raise ValueError(f"KWTAScheduler.load_state_dict: '{name}' has shape {np.shape(state[name])} in the "
                                 f"state dict but {mine.shape} here ({len(self.layers)} kWTA layers)")
        epoch = int(state.get("epoch", self.epoch))
        s0 = np.asarray(state.get("initial_sparsity", own["initial_sparsity"]), dtype=np.float64)
        h0 = np.asarray(state.get("initial_hardness", own["initial_hardness"]), dtype=np.float64)
        soft = np.array([isinstance(m, KWinnersTakeAllSoft) for m in self.layers])
        if epoch < 0 or not np.all((s0 > 0) & (s0 < 1)) or not np.all((h0[soft] > 0) & np.isfinite(h0[soft])):
            raise ValueError(f"KWTAScheduler.load_state_dict: invalid state (epoch {epoch}, initial sparsities "
                             f"{s0.tolist()}, initial hardnesses {h0.tolist()})")
        self.epoch = epoch
        self.initial = [(float(s), float(h) if is_soft else None) for s, h, is_soft in zip(s0, h0, soft)]
        return self

    def __repr__(self) -> str:
        return (f"KWTAScheduler(step_size={self.step_size}, gamma_sparsity={self.gamma_sparsity}, "
                f"min_sparsity={self.min_sparsity}, gamma_hardness={self.gamma_hardness}, "
                f"max_hardness={self.max_hardness}, compounding={self.compounding})")
