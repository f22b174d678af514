r"""The BU-TD nets and how they learn: ``BUTDNet``, ``TaskBUTDNet``, ``counter_hebb_``, ``loss_and_grad``.

A net is a core (a :class:`~nnlocal.methods.butd.blocks.BUTDSequential`, see ``architectures.py``)
and a plain linear prediction head. It learns by backprop (``net.backward(dL/dlogits)``) or by
Counter-Hebb (:func:`counter_hebb_`: the error TD pass, then every layer's local update; equal to
backprop with shared top-down weights, see ``reference.py``). :class:`TaskBUTDNet` is the
instruction-guided multi-task net: a TD pass of the task first opens the GaLU gates of the core.
"""
from __future__ import annotations

import numpy as np

from ... import nn
from ..._checks import check_finite_input, check_float_array, shape_error
from ..._rng import get_rng
from .blocks import BUTDSequential
from .layers import BUTDLinear, _BUTD, positive_int

__all__ = ["BUTDNet", "TaskBUTDNet", "counter_hebb_", "loss_and_grad"]


class _Net(_BUTD, nn.Module):
    """A core and a linear head; the input check of the nets and the error TD pass's flags."""

    def _setup(self, core, n_classes: int, device: str) -> None:
        nn.Module.__init__(self)
        self._butd_setup(device)
        name = type(self).__name__
        if getattr(core, "out_features", None) is None:
            raise ValueError(f"{name}: core.out_features is unknown; call core.infer_shapes(in_shape) or use "
                             "fc_core / simple_core / resnet18_core")
        self.n_classes = positive_int(name, "n_classes", n_classes)
        self.core = core

    def _input(self, x) -> np.ndarray:
        """The image batch: a finite float array of shape ``(B, *core.in_shape)``, B >= 1; a copy of it."""
        check_float_array(self, x)
        in_shape = getattr(self.core, "in_shape", None)
        wrong = x.shape[1:] != in_shape if in_shape is not None else x.ndim < 2
        if x.ndim < 1 or x.shape[0] == 0 or wrong:
            inner = ", ".join(map(str, in_shape)) if in_shape is not None else "..."
            raise shape_error(self, f"(B, {inner}) with B >= 1", x.shape)
        check_finite_input(self, x)
        return x.copy()

    def back_forward(self, t, non_linear: bool = False, lateral: bool = True, bias_blocking: bool = True,
                     need_output: bool = True):
        """The error TD pass from the prediction head through the core (the defaults are the CH flags)."""
        return self._td(self._entry(t, "top-down input"), non_linear, lateral, bias_blocking, need_output)


class BUTDNet(_Net):
    """Classification BU-TD net: a core (BU with ReLU) and a plain linear prediction head.

    ``net(x)`` -> logits ``(B, n_classes)``; ``net.backward(g)`` is backprop; :func:`counter_hebb_`
    runs the error TD pass (head, then core) and the CH update.
    """

    def __init__(self, core: BUTDSequential, n_classes: int, top_down: str = "shared", rng=None,
                 dtype=np.float32, device: str = "cpu"):
        self._setup(core, n_classes, device)
        self.head = BUTDLinear(core.out_features, self.n_classes, top_down=top_down, rng=rng, dtype=dtype,
                               device=device)

    def forward(self, x):
        return self._done(self.head._bu(self.core._bu(self._input(x), True, False)))

    def backward(self, grad_output):
        self._check_grad(grad_output)
        return self.core.backward(self.head.backward(grad_output))

    def _td(self, t, non_linear=False, lateral=True, bias_blocking=True, need_output=True):
        th = self.head._td(t, non_linear, lateral, bias_blocking)
        return self.core._td(th, non_linear, lateral, bias_blocking, need_output)


class TaskBUTDNet(_Net):
    r"""Instruction-guided multi-task BU-TD net (the original's ``TaskBUTDNet``), any number of tasks.

    ``net(x, task)``: ``task`` is an int, int indices ``(B,)`` (one-hot encoded to
    ``task_vector_size = n_tasks``) or float task vectors ``(B, task_vector_size)``.

    1. :meth:`instruct` (TD, ReLU, no gating): ``task -> task_head -> core``; every core unit caches
       its TD activity, whose positive part is the task's sub-network.
    2. BU pass of ``x`` through the core with ReLU and GaLU, then the plain linear ``head``.
    3. ``multi_decoders=True``: the head has ``n_tasks · n_classes`` outputs and returns the block
       of each sample's task (needs task indices).

    ``task_head`` is ``core_out -> task_embedding -> task_vector_size`` in BU layout (used only in
    the TD direction, without biases); ``task_embedding=None`` makes it a single layer.

    **Faithful** (``train_task_head=False``): the task head stays at its random initialisation
    (its parameters have ``requires_grad=False``); with shared weights the deeper masks still move
    as the core weights learn.

    **Extension** (``train_task_head=True``): a straight-through estimator (STE) gives the task head
    a gradient (:func:`.reference.ste_pre_relu_grad`). A gate is g_l = [u_l > 0], where u_l is the
    pre-ReLU TD value at unit l and td_l = ReLU(u_l) also feeds the TD pass below. The STE replaces
    d g_l / d u_l by 1 (Bengio et al. 2013's identity STE), so with r_l the unit's output before its
    gate and dL/dh_l the error at its gated output:

    .. math::

        \frac{\partial L}{\partial u_l} = [u_l > 0] \odot
            \Big(\frac{\partial L}{\partial td_l}\Big)_{\text{TD chain}} + \frac{\partial L}{\partial h_l} \odot r_l

    and the chain runs from the bottom unit up through the core's TD maps (adjoints: W for Wᵀ,
    a convolution for a transposed one) into the task head, whose TD weights receive the gradient.
    The core's weights keep exactly their BP / CH gradient (the STE gradient is not applied to
    them: like a ``detach`` of the core in the TD pass). dL/dh_l comes from ``backward`` (BP) or from
    the error TD pass before its lateral gate (CH); both agree with shared weights.
    """

    def __init__(self, core: BUTDSequential, n_classes: int, n_tasks: int, task_embedding: int | None = 50,
                 task_vector_size: int | None = None, multi_decoders: bool = False, train_task_head: bool = False,
                 top_down: str = "shared", rng=None, dtype=np.float32, device: str = "cpu"):
        self._setup(core, n_classes, device)
        rng = get_rng(rng)
        self.n_tasks = positive_int("TaskBUTDNet", "n_tasks", n_tasks)
        self.task_vector_size = (self.n_tasks if task_vector_size is None
                                 else positive_int("TaskBUTDNet", "task_vector_size", task_vector_size))
        embedding = [] if task_embedding is None else [positive_int("TaskBUTDNet", "task_embedding", task_embedding)]
        self.multi_decoders = bool(multi_decoders)
        self.train_task_head = bool(train_task_head)
        kw = dict(top_down=top_down, rng=rng, dtype=dtype, device=device)
        sizes = [core.out_features] + embedding + [self.task_vector_size]
        self.task_head = BUTDSequential(*[BUTDLinear(a, b, bias=False, **kw) for a, b in zip(sizes[:-1], sizes[1:])])
        if not self.train_task_head:
            for p in self.task_head.parameters():
                p.requires_grad = False
        self.head = BUTDLinear(core.out_features, self.n_classes * (self.n_tasks if multi_decoders else 1), **kw)
        self._set_record(self.train_task_head)
        self._task_index = None

    def extra_repr(self) -> str:
        return (f"n_classes={self.n_classes}, n_tasks={self.n_tasks}, multi_decoders={self.multi_decoders}, "
                f"train_task_head={self.train_task_head}")

    # --------------------------------------------------------------- the three phases
    def task_vectors(self, task, batch: int | None = None, dtype=np.float32):
        """``(vectors (B, task_vector_size), indices (B,) or None)`` from ints, indices or vectors."""
        task = np.asarray(task)
        if task.dtype.kind in "iu":
            idx = np.broadcast_to(task, (batch,) if task.ndim == 0 and batch is not None else task.shape)
            idx = np.atleast_1d(idx).astype(np.int64)
            if idx.ndim != 1 or (idx.size and (idx.min() < 0 or idx.max() >= self.n_tasks)):
                raise ValueError(f"{type(self).__name__}: task indices must be ints in [0, {self.n_tasks}), "
                                 f"got shape {task.shape}")
            if self.task_vector_size != self.n_tasks:
                raise ValueError(f"{type(self).__name__}: task_vector_size={self.task_vector_size} != n_tasks: "
                                 "give task vectors, not indices")
            vec = np.zeros((len(idx), self.n_tasks), dtype=dtype)
            vec[np.arange(len(idx)), idx] = 1
            return vec, idx
        check_float_array(self, task, "task vectors")
        if task.ndim != 2 or task.shape[1] != self.task_vector_size:
            raise shape_error(self, f"(B, {self.task_vector_size})", task.shape, name="task vectors")
        check_finite_input(self, task, "task vectors")
        return task, None

    def instruct(self, task, batch: int | None = None, dtype=np.float32) -> int:
        """Phase 1: the TD pass of the task through the task head and the core (sets every mask).

        Returns the number of task rows (B).
        """
        vec, idx = self.task_vectors(task, batch, dtype)
        # The pass is the same for every sample with the same task: run it once per distinct task
        # vector and gather the rows (exact; a batch usually holds only n_tasks distinct vectors).
        uniq, inverse = np.unique(vec, axis=0, return_inverse=True)
        t = self.task_head._td(uniq, non_linear=True)
        self.core._td(t, non_linear=True, need_output=False)
        if len(uniq) != len(vec):
            inverse = inverse.reshape(-1)
            for m in list(self.task_head.modules()) + list(self.core.modules()):
                if isinstance(m, _BUTD):
                    m.td_neurons = None if m.td_neurons is None else m.td_neurons[inverse]
                    m.td_output = None if m.td_output is None else m.td_output[inverse]
        self._task_index = idx
        if self.train_task_head:
            self._snapshot_task()
        return len(vec)

    def forward(self, x, task):
        """Phases 1-3: instruct with ``task``, gated BU pass of ``x``, prediction head -> logits (B, C)."""
        x = self._input(x)
        n_tasks = self.instruct(task, batch=len(x), dtype=x.dtype)
        if n_tasks != len(x):
            raise ValueError(f"{type(self).__name__}: {n_tasks} tasks for a batch of {len(x)} images")
        out = self.head._bu(self.core._bu(x, True, True))
        if self.multi_decoders:
            if self._task_index is None:
                raise ValueError(f"{type(self).__name__}: multi_decoders needs task indices, not task vectors")
            out = out.reshape(len(x), self.n_tasks, self.n_classes)[np.arange(len(x)), self._task_index]
        return self._done(out)

    def _expand(self, g):
        """dL/d(selected logits) -> dL/d(all head outputs) (zeros for the other tasks' decoders)."""
        if not self.multi_decoders:
            return g
        full = np.zeros((len(g), self.n_tasks, self.n_classes), dtype=g.dtype)
        full[np.arange(len(g)), self._task_index] = g
        return full.reshape(len(g), -1)

    def backward(self, grad_output):
        """Backprop of the gated BU pass (gates are constants); with ``train_task_head`` also the STE."""
        self._check_grad(grad_output)
        gx = self.core.backward(self.head.backward(self._expand(grad_output)))
        if self.train_task_head:
            self._task_head_grad()
        return gx

    def _td(self, t, non_linear=False, lateral=True, bias_blocking=True, need_output=True):
        th = self.head._td(self._expand(t), non_linear, lateral, bias_blocking)
        if self._record and lateral and not non_linear:
            self.core._set_grad_out(self.head._input_grad_ungated())
        return self.core._td(th, non_linear, lateral, bias_blocking, need_output)

    def counter_hebb_update(self) -> None:
        """CH for the core and the prediction head; the task head only with ``train_task_head`` (STE)."""
        self.core.counter_hebb_update()
        self.head.counter_hebb_update()
        if self.train_task_head:
            self._task_head_grad()

    def _task_head_grad(self) -> None:
        a, d = self.core._ste_backward(None, None)
        self.task_head._ste_backward(a, d, gated=False, train_td=True)


# ================================================================================ learning
def counter_hebb_(net, grad_logits: np.ndarray) -> None:
    """Counter-Hebb learning step: fill (accumulate into) every parameter's ``.grad``.

    Runs the error TD pass of ``net`` (a :class:`BUTDNet`, :class:`TaskBUTDNet` or any module with
    ``back_forward`` / ``counter_hebb_update``) from ``grad_logits`` = dL/d(logits) of the batch loss
    ``(B, C)`` with ``non_linear=False, lateral=True, bias_blocking=True``, then adds
    ΔW = Σ_b td_b ⊗ bu_b into each ``weight.grad`` (:func:`.reference.counter_hebb`). With shared
    top-down weights this equals ``net.backward(grad_logits)``'s parameter gradients. Call it after
    the forward pass of the same batch; an optimizer then consumes ``.grad``.
    """
    net.back_forward(grad_logits, non_linear=False, lateral=True, bias_blocking=True, need_output=False)
    net.counter_hebb_update()


_LOSSES = {"cross_entropy": nn.CrossEntropyLoss, "ce": nn.CrossEntropyLoss,
           "bce": nn.BCEWithLogitsLoss, "mse": nn.MSELoss}


def loss_and_grad(loss: str, logits: np.ndarray, target) -> tuple[float, np.ndarray]:
    r"""``(mean loss, dL/d(logits))`` for the original's three output losses.

    ``"cross_entropy"`` (class targets): (softmax(o) − onehot(y)) / B; ``"bce"`` (BCE on logits,
    float targets of the logits' shape): (σ(o) − y) / (B·C); ``"mse"``: 2 (o − y) / (B·C). These are
    the original's per-sample output gradients divided by B (the original averages them in the
    update instead: the products are the same), i.e. the gradients of torch's mean-reduced losses;
    they are nnlocal's losses' ``backward()``.
    """
    if loss not in _LOSSES:
        raise ValueError(f"loss_and_grad: unknown loss {loss!r}; expected one of {sorted(_LOSSES)}")
    fn = _LOSSES[loss]()
    value = fn(logits, target)
    return value, fn.backward()
