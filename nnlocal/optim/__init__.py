r"""Optimizers and learning-rate schedulers with torch's update formulas and defaults.

An optimizer consumes each parameter's ``.grad`` (parameters whose ``.grad`` is ``None`` or
``requires_grad=False`` are skipped, as in torch). ``params`` is an iterable of
:class:`~nnlocal.nn.Parameter` or of dicts ``{"params": [...], "lr": ...}`` (parameter groups
with their own hyper-parameters, e.g. per-layer learning rates).

With g = grad + λ·p (weight decay λ):

* SGD:      b ← μ b + (1-τ) g (b = g at the first step);  d = g + μ b (Nesterov) or b;  p ← p - lr·d
* Adam:     m ← β1 m + (1-β1) g;  v ← β2 v + (1-β2) g²;
            p ← p - lr/(1-β1ᵗ) · m / (√v/√(1-β2ᵗ) + ε)
* RMSprop:  v ← α v + (1-α) g²;  a = √v + ε (centered: √(v - ḡ²) + ε);
            p ← p - lr·g/a, or with momentum b ← μ b + g/a, p ← p - lr·b

Schedulers (``StepLR``, ``ExponentialLR``, ``LambdaLR``) are stepped once per epoch:
lr_e = base_lr · f(e), with f(e) = γ^⌊e/step⌋, γ^e or ``lr_lambda(e)``.

The rules themselves live in :mod:`nnlocal.optim.reference` (NumPy, readable) and
:mod:`nnlocal.optim.cpu` (Numba: each rule one fused in-place pass, no temporaries), chosen by
``nnlocal.kernels.use``; this module holds the bookkeeping (groups, state, checks, schedulers).

Hyper-parameters are checked as torch checks them, for every parameter group (and on
``load_state_dict``): a ``ValueError`` naming the optimizer for lr, eps, weight_decay or momentum
< 0, betas outside [0, 1), alpha < 0, and for NaN, inf or a non-number anywhere. Stricter than
torch: RMSprop's alpha must also be <= 1 (above 1 the running average can turn negative and its
square root NaN).
"""
from __future__ import annotations

import numpy as np

from .. import kernels
from .._checks import check_int, check_real
from ..nn.module import Parameter

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "StepLR", "ExponentialLR", "LambdaLR"]


class Optimizer:
    """Base class: parameter groups, per-parameter state, ``zero_grad`` and ``state_dict``."""

    defaults: dict = {}
    #: hyper-parameter -> (low, high, high_open): the interval it must lie in (None: unbounded)
    _RANGES = {"lr": (0.0, None, False), "weight_decay": (0.0, None, False)}

    def __init__(self, params, defaults: dict):
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups = []
        seen = set()
        for i, group in enumerate(groups):
            if not isinstance(group, dict) or "params" not in group:
                raise TypeError(f"{type(self).__name__}: parameter group {i} must be a dict with a 'params' entry")
            g = dict(defaults)
            g.update(group)
            g["params"] = [g["params"]] if isinstance(g["params"], Parameter) else list(g["params"])
            for p in g["params"]:
                if not isinstance(p, Parameter):
                    raise TypeError(f"{type(self).__name__}: expected nnlocal Parameters, got a {type(p).__name__} "
                                    "(pass module.parameters())")
                if id(p) in seen:
                    raise ValueError(f"{type(self).__name__}: a parameter appears more than once "
                                     "(in one group or in several)")
                seen.add(id(p))
            self._validate(g)
            self.param_groups.append(g)
        self.state: dict[int, dict] = {}

    def _validate(self, group: dict) -> None:
        """Check (and convert to float) the hyper-parameters of ``group`` in place."""
        who = type(self).__name__
        for key, (low, high, high_open) in self._RANGES.items():
            if key in group:
                group[key] = check_real(who, key, group[key], low, high, high_open=high_open)

    def _params_with_grad(self, group):
        for p in group["params"]:
            if p.requires_grad and p.grad is not None:
                yield p

    @staticmethod
    def _rules():
        """The module of update rules in force (``nnlocal.kernels.use``)."""
        return kernels.implementation("nnlocal.optim")

    def zero_grad(self) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def step(self) -> None:
        for group in self.param_groups:
            for p in self._params_with_grad(group):
                self._update(p, self.state.setdefault(id(p), {}), group)

    def _update(self, p, state, group):
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Hyper-parameters per group and state per parameter (indexed in group order, as torch)."""
        index = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append({k: v for k, v in group.items() if k != "params"} | {"params": ids})
        state = {index[pid]: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
                 for pid, s in self.state.items() if pid in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        if len(state_dict["param_groups"]) != len(self.param_groups):
            raise ValueError(f"{type(self).__name__}.load_state_dict: {len(state_dict['param_groups'])} "
                             f"parameter groups in the state dict, {len(self.param_groups)} in the optimizer")
        for i, (group, saved) in enumerate(zip(self.param_groups, state_dict["param_groups"])):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{type(self).__name__}.load_state_dict: parameter group {i} holds "
                                 f"{len(saved['params'])} parameters in the state dict, "
                                 f"{len(group['params'])} in the optimizer")
        params = [p for g in self.param_groups for p in g["params"]]
        merged = [dict(group, **{k: v for k, v in saved.items() if k != "params"})
                  for group, saved in zip(self.param_groups, state_dict["param_groups"])]
        for group in merged:
            self._validate(group)               # all groups before any changes
        for group, new in zip(self.param_groups, merged):
            group.update(new)
        self.state = {id(params[i]): {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
                      for i, s in state_dict["state"].items()}

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {k}: {v}" for k, v in sorted(g.items()) if k != "params")
        return "\n".join(lines) + "\n)"


class SGD(Optimizer):
    _RANGES = dict(Optimizer._RANGES, momentum=(0.0, None, False), dampening=(None, None, False))

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _validate(self, group: dict) -> None:
        super()._validate(group)
        if group.get("nesterov") and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum requires momentum > 0 and dampening = 0")

    def _update(self, p, state, group):
        mu = group["momentum"]
        first = mu and "momentum_buffer" not in state
        if first:
            state["momentum_buffer"] = np.empty_like(p.data)
        self._rules().sgd_update(p.data, p.grad, state.get("momentum_buffer"), group["lr"], mu, group["dampening"],
                                 group["weight_decay"], group["nesterov"], bool(first))


class Adam(Optimizer):
    _RANGES = dict(Optimizer._RANGES, eps=(0.0, None, False))

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad))

    def _validate(self, group: dict) -> None:
        super()._validate(group)
        betas = group.get("betas")
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{type(self).__name__}: betas must be a pair (beta1, beta2), got {betas!r}")
        group["betas"] = tuple(check_real(type(self).__name__, f"betas[{i}]", b, 0.0, 1.0, high_open=True)
                               for i, b in enumerate(betas))

    def _update(self, p, state, group):
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(p.data), exp_avg_sq=np.zeros_like(p.data))
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p.data)
        state["step"] += 1
        b1, b2 = group["betas"]
        self._rules().adam_update(p.data, p.grad, state["exp_avg"], state["exp_avg_sq"],
                                  state.get("max_exp_avg_sq") if group["amsgrad"] else None, group["lr"], b1, b2,
                                  group["eps"], group["weight_decay"], state["step"])


class RMSprop(Optimizer):
    _RANGES = dict(Optimizer._RANGES, alpha=(0.0, 1.0, False), eps=(0.0, None, False), momentum=(0.0, None, False))

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def _update(self, p, state, group):
        if not state:
            state.update(step=0, square_avg=np.zeros_like(p.data))
            if group["momentum"] > 0:
                state["momentum_buffer"] = np.zeros_like(p.data)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(p.data)
        state["step"] += 1
        self._rules().rmsprop_update(p.data, p.grad, state["square_avg"],
                                     state.get("momentum_buffer") if group["momentum"] > 0 else None,
                                     state.get("grad_avg") if group["centered"] else None, group["lr"],
                                     group["alpha"], group["eps"], group["weight_decay"], group["momentum"])


class _Scheduler:
    """lr of group i at epoch e = base_lr_i · factor(e); ``step()`` advances e by one."""

    def __init__(self, optimizer: Optimizer):
        self.optimizer = optimizer
        self.base_lrs = [g.setdefault("initial_lr", g["lr"]) for g in optimizer.param_groups]
        self.last_epoch = 0
        self._apply()

    def factor(self, epoch: int, group_index: int) -> float:
        raise NotImplementedError

    def _apply(self):
        for i, (g, base) in enumerate(zip(self.optimizer.param_groups, self.base_lrs)):
            g["lr"] = base * self.factor(self.last_epoch, i)

    def step(self) -> None:
        self.last_epoch += 1
        self._apply()

    def get_last_lr(self) -> list:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {"last_epoch": self.last_epoch, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict) -> None:
        self.last_epoch = state["last_epoch"]
        self.base_lrs = list(state["base_lrs"])
        self._apply()


class StepLR(_Scheduler):
    def __init__(self, optimizer, step_size: int, gamma: float = 0.1):
        self.step_size = check_int("StepLR", "step_size", step_size, 1)
        self.gamma = check_real("StepLR", "gamma", gamma)
        super().__init__(optimizer)

    def factor(self, epoch, group_index):
        return self.gamma ** (epoch // self.step_size)


class ExponentialLR(_Scheduler):
    def __init__(self, optimizer, gamma: float):
        self.gamma = check_real("ExponentialLR", "gamma", gamma)
        super().__init__(optimizer)

    def factor(self, epoch, group_index):
        return self.gamma ** epoch


class LambdaLR(_Scheduler):
    def __init__(self, optimizer, lr_lambda):
        n = len(optimizer.param_groups)
        self.lr_lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * n
        if not all(callable(f) for f in self.lr_lambdas):
            raise ValueError(f"LambdaLR: lr_lambda must be a function of the epoch (or one per group), "
                             f"got {lr_lambda!r}")
        if len(self.lr_lambdas) != n:
            raise ValueError(f"LambdaLR: {len(self.lr_lambdas)} lambdas for {n} parameter groups")
        super().__init__(optimizer)

    def factor(self, epoch, group_index):
        return self.lr_lambdas[group_index](epoch)
