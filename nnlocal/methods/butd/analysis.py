"""What each task switches on: the task masks of a guided net and their statistics."""
from __future__ import annotations

import numpy as np

from .models import TaskBUTDNet

__all__ = ["task_masks", "mask_stats"]


def task_masks(net: TaskBUTDNet, tasks=None) -> dict[str, np.ndarray]:
    """The sub-network each task selects: ``{unit name: bool mask (n_tasks, *unit shape)}``.

    The masks depend only on the task (the instruction TD pass never sees the image), so one TD
    pass per task gives them. ``tasks`` defaults to every task index.
    """
    tasks = np.arange(net.n_tasks) if tasks is None else tasks
    dtype = net.head.weight.data.dtype
    net.instruct(tasks, dtype=dtype)
    return {name or "core": unit.td_neurons > 0 for name, unit in net.core._gated_units()}


def mask_stats(masks: dict[str, np.ndarray]) -> list[dict]:
    """Per gated unit (``unit``: its name in the core, e.g. ``"0"`` for the first layer), its number of
    ``neurons``, the active % per task, and the mean pairwise binary-cosine overlap
    |A ∧ B| / √(|A|·|B|) between tasks' masks (1 = the same sub-network, 0 = disjoint)."""
    rows = []
    for name, m in masks.items():
        flat = m.reshape(len(m), -1).astype(np.float64)
        counts = flat.sum(axis=1)
        row = {"unit": name, "neurons": flat.shape[1]}
        for k, c in enumerate(counts):
            row[f"task {k} active %"] = float(100.0 * c / flat.shape[1])
        inter = flat @ flat.T
        denom = np.sqrt(np.outer(counts, counts))
        cos = np.divide(inter, denom, out=np.zeros_like(inter), where=denom > 0)
        iu = np.triu_indices(len(m), 1)
        row["overlap (cosine)"] = float(cos[iu].mean()) if len(iu[0]) else 1.0
        rows.append(row)
    return rows
