r"""Multi-task baselines for the instruction-guided BU-TD net (not part of the original code).

The BU-TD paper says its guided net is "competitive with multi-task baselines". The standard
baseline of the multi-task literature (and of the Pareto multi-task work that uses the same
Multi-MNIST benchmark) is **hard parameter sharing**: one shared trunk, one prediction head per
task, and the sum of the tasks' losses as the objective.

:class:`HardSharingNet` is that baseline built on the same core as the guided net (``simple_core``,
run bottom-up with ReLU and no gating). With a core output ``h = core(x)`` of size F, T tasks and C
classes:

.. math::

    o_{b,k} = W_k h_b + c_k \quad (k = 1..T), \qquad
    L = \sum_{k} \frac{1}{B}\sum_b \mathrm{CE}(o_{b,k}, y_{b,k}), \qquad
    \frac{\partial L}{\partial h_b} = \sum_k W_k^\top \frac{\partial L}{\partial o_{b,k}}

so every image trains every head, and the core receives the sum of the heads' gradients.
Parameter budget: core + T·(F·C + C), i.e. for the simple net on 28x28 images 41,394 + 2·510 =
42,414, against 41,904 trainable (+ 2,600 frozen task-head) parameters of the guided net with the
same core.
"""
from __future__ import annotations

import numpy as np

from ... import nn
from ..._checks import check_finite_input, check_float_array, check_grad_output, shape_error
from ..._rng import get_rng
from .models import loss_and_grad

__all__ = ["HardSharingNet", "multitask_loss_and_grad"]


class HardSharingNet(nn.Module):
    """Hard parameter sharing: a shared core, one linear head per task, the tasks' losses summed.

    ``net(x)`` -> logits ``(B, n_tasks, n_classes)`` (every task for every image);
    ``net.backward(g)`` with ``g`` of that shape is backprop through the heads (their input
    gradients summed) and the core. ``core`` is any module with ``out_features`` whose
    ``forward(x, non_linear=True)`` runs it bottom-up with ReLU, e.g. ``butd.simple_core(...)``
    (then it is a plain CNN: no top-down pass, no gating). Heads are ``head0``, ``head1``, ...
    """

    def __init__(self, core, n_classes: int, n_tasks: int = 2, rng=None, dtype=np.float32):
        super().__init__()
        if getattr(core, "out_features", None) is None:
            raise ValueError("HardSharingNet: core.out_features is unknown; build the core with fc_core / "
                             "simple_core / resnet18_core or call core.infer_shapes(in_shape)")
        if int(n_tasks) < 1 or int(n_classes) < 1:
            raise ValueError(f"HardSharingNet: n_tasks and n_classes must be >= 1, got {n_tasks}, {n_classes}")
        rng = get_rng(rng)
        self.n_classes, self.n_tasks = int(n_classes), int(n_tasks)
        self.core = core
        for k in range(self.n_tasks):
            setattr(self, f"head{k}", nn.Linear(core.out_features, self.n_classes, rng=rng, dtype=dtype))

    def extra_repr(self) -> str:
        return f"n_classes={self.n_classes}, n_tasks={self.n_tasks}"

    @property
    def heads(self) -> list:
        return [getattr(self, f"head{k}") for k in range(self.n_tasks)]

    def forward(self, x):
        check_float_array(self, x)
        check_finite_input(self, x)
        h = self.core(x, non_linear=True)
        self._save_for_backward(np.shape(h))
        return np.stack([head(h) for head in self.heads], axis=1)

    def backward(self, grad_output):
        (h_shape,) = self._saved()
        check_grad_output(self, grad_output, (h_shape[0], self.n_tasks, self.n_classes))
        gh = self.heads[0].backward(grad_output[:, 0])
        for k, head in enumerate(self.heads[1:], start=1):
            gh = gh + head.backward(grad_output[:, k])
        return self.core.backward(gh)


def multitask_loss_and_grad(logits: np.ndarray, targets, loss: str = "cross_entropy") -> tuple[float, np.ndarray]:
    """``(sum over tasks of the mean loss, dL/d(logits))`` for logits ``(B, T, C)`` and class targets
    ``(B, T)`` (the hard-sharing objective; each task's term is :func:`~.models.loss_and_grad`)."""
    check_float_array("multitask_loss_and_grad", logits, "logits")
    targets = np.asarray(targets)
    if logits.ndim != 3:
        raise shape_error("multitask_loss_and_grad", "(B, T, C)", logits.shape, name="logits")
    if targets.shape != logits.shape[:2]:
        raise shape_error("multitask_loss_and_grad", f"({logits.shape[0]}, {logits.shape[1]})", targets.shape,
                          name="targets")
    total, grad = 0.0, np.empty_like(logits)
    for k in range(logits.shape[1]):
        value, grad[:, k] = loss_and_grad(loss, np.ascontiguousarray(logits[:, k]), targets[:, k])
        total += float(value)
    return total, grad
