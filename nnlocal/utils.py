"""Utilities: finite-difference gradient checks and atomic, pickle-free checkpoints."""
from __future__ import annotations

import inspect
import os
import zipfile

import numpy as np

from ._files import atomic_write

__all__ = ["numerical_grad", "gradcheck", "GradcheckError", "save", "load"]

_FORMAT_KEY = "__nnlocal_format__"
_FORMAT_VERSION = 1
_NESTED_KEY = "__nnlocal_nested__"   # present when the state dict was nested (an optimizer's, a scheduler's)


class GradcheckError(AssertionError):
    """An analytic gradient disagreed with central differences."""


def numerical_grad(fn, inputs, eps: float = 1e-6) -> list[np.ndarray]:
    """Central differences dfn/dx for a scalar ``fn(*inputs)``; the inputs are perturbed in place
    (and restored), so they must be float64 arrays."""
    grads = []
    for x in inputs:
        if not isinstance(x, np.ndarray) or x.dtype != np.float64:
            raise ValueError("numerical_grad: every input must be a float64 ndarray "
                             f"(central differences are meaningless in float32), got {getattr(x, 'dtype', type(x))}")
        g = np.zeros(x.shape)
        # index x itself (not a reshaped view, which is a copy for non-contiguous arrays)
        for idx in np.ndindex(x.shape):
            orig = x[idx]
            x[idx] = orig + eps
            f_plus = float(fn(*inputs))
            x[idx] = orig - eps
            f_minus = float(fn(*inputs))
            x[idx] = orig
            g[idx] = (f_plus - f_minus) / (2 * eps)
        grads.append(g)
    return grads


def gradcheck(fn, inputs, eps: float = 1e-6, analytic=None, rtol: float = 1e-5, atol: float = 1e-8):
    """Check ``analytic`` gradients of the scalar ``fn(*inputs)`` against central differences.

    Returns the numerical gradients. If ``analytic`` (a list like ``inputs``) is given, raises
    :class:`GradcheckError` naming the first input and entry that disagree.
    """
    numeric = numerical_grad(fn, inputs, eps)
    if analytic is not None:
        if len(analytic) != len(numeric):
            raise GradcheckError(f"gradcheck: {len(analytic)} analytic gradients for {len(numeric)} inputs")
        for k, (a, n) in enumerate(zip(analytic, numeric)):
            a = np.asarray(a, dtype=np.float64)
            if a.shape != n.shape:
                raise GradcheckError(f"gradcheck: analytic gradient {k} has shape {a.shape}, expected {n.shape}")
            bad = ~np.isclose(a, n, rtol=rtol, atol=atol)
            if bad.any():
                idx = tuple(int(i) for i in np.argwhere(bad)[0])
                raise GradcheckError(f"gradcheck: input {k} at {idx}: analytic {a[idx]!r} vs numerical {n[idx]!r} "
                                     f"({int(bad.sum())} of {a.size} entries differ)")
    return numeric


def save(module, path) -> None:
    """Write ``module.state_dict()`` to ``path`` as ``.npz``, atomically and durably (temporary file,
    fsync, rename, fsync of the folder: see :func:`nnlocal._files.atomic_write`).

    ``module`` is anything with a ``state_dict()``: a model (a flat ``{name: array}``), or an
    optimizer or scheduler, whose nested state (per-parameter moments and step counts, the groups'
    hyper-parameters, ``last_epoch``) is stored under ``/``-separated keys such as
    ``state/0/exp_avg`` and rebuilt by :func:`load`. Only numbers, booleans and numeric arrays are
    stored; a ``None`` hyper-parameter is left out (``load`` keeps the target's own).
    """
    path = os.fspath(path)
    state = module.state_dict()
    nested = not all(isinstance(v, np.ndarray) for v in state.values())
    if nested:
        state = _flatten(state)
    for reserved in (_FORMAT_KEY, _NESTED_KEY, "file", "allow_pickle"):  # the last two: np.savez's arguments
        if reserved in state:
            raise ValueError(f"save: a parameter or buffer named {reserved!r} cannot be saved (reserved name)")
    for name, value in state.items():
        if value.dtype.kind not in "biuf":
            raise ValueError(f"save: '{name}' has dtype {value.dtype}; only numeric arrays can be saved")
    marks = {_FORMAT_KEY: np.array(_FORMAT_VERSION), **({_NESTED_KEY: np.array(1)} if nested else {})}
    with atomic_write(path, mkdir=False) as fh:
        np.savez(fh, allow_pickle=False, **marks, **state)


_SEP = "/"   # separates the levels of a nested state dict in the archive (module names never hold it)


def _flatten(state, prefix: str = "") -> dict:
    """``{"state": {0: {"step": 3, "exp_avg": a}}, "param_groups": [{"lr": .1, "betas": (.9, .99)}]}``
    -> ``{"state/0/step": array(3), "state/0/exp_avg": a, "param_groups/0/lr": array(.1),
    "param_groups/0/betas": array([.9, .99])}``. Lists of dicts are levels, lists of numbers leaves."""
    out = {}
    if isinstance(state, dict):
        items = state.items()
    elif isinstance(state, (list, tuple)) and any(isinstance(v, (dict, list, tuple)) for v in state):
        items = enumerate(state)
    else:
        if state is not None:
            value = np.array(state)
            if value.dtype.kind not in "biuf":
                raise ValueError(f"save: '{prefix.rstrip(_SEP)}' is {state!r}; only numbers, booleans and "
                                 f"numeric arrays can be saved")
            out[prefix.rstrip(_SEP)] = value
        return out
    for key, value in items:
        if _SEP in str(key):
            raise ValueError(f"save: the state key {key!r} holds {_SEP!r}, which separates nested levels")
        out.update(_flatten(value, f"{prefix}{key}{_SEP}"))
    return out


def _unflatten(flat: dict, template):
    """The inverse of :func:`_flatten`, shaped by ``template`` (the target's own ``state_dict()``):
    digit keys become list items where the template has a list and int keys elsewhere (optimizer
    state), 0-d arrays become Python scalars, arrays become tuples/lists where the template has
    them, and ``None`` entries of the template (left out by ``save``) are kept."""
    tree: dict = {}
    for key, value in flat.items():
        node = tree
        *parents, leaf = key.split(_SEP)
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value

    def build(node, like):
        if not isinstance(node, dict):                     # a leaf
            if isinstance(like, (list, tuple)):
                return type(like)(node.tolist())
            return node.item() if node.ndim == 0 else node.copy()
        if isinstance(like, (list, tuple)):
            items = [build(node[str(i)], like[i] if i < len(like) else None) for i in range(len(node))
                     if str(i) in node]
            if len(items) != len(node):
                raise ValueError(f"load: the entries {sorted(node)} do not form a list")
            return items
        like = like if isinstance(like, dict) else {}
        out = {}
        for k, v in node.items():
            key = int(k) if k.isdigit() and k not in like else k      # optimizer state: int keys
            out[key] = build(v, like.get(key, like.get(k)))
        for k, v in like.items():                          # None values were not stored
            if v is None and k not in out:
                out[k] = None
        return out

    return build(tree, template)


def load(module, path, strict: bool = True):
    """Load a checkpoint written by :func:`save` into ``module`` (a model, an optimizer, a scheduler;
    no pickle is ever executed).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for a file that is not an
    nnlocal checkpoint (not a zip archive, truncated, another program's ``.npz``, object arrays).
    """
    path = os.fspath(path)
    if os.path.exists(path) and not zipfile.is_zipfile(path):
        raise ValueError(f"load: {path} is truncated or not an .npz checkpoint (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if _FORMAT_KEY not in archive.files:
                raise ValueError(f"load: {path} is not an nnlocal checkpoint (no {_FORMAT_KEY} entry)")
            state = {k: archive[k] for k in archive.files if k != _FORMAT_KEY}
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"load: {path} is truncated or not an .npz checkpoint ({exc})") from exc
    except ValueError as exc:
        if "nnlocal checkpoint" in str(exc):
            raise
        raise ValueError(f"load: {path} could not be read without pickle ({exc})") from exc
    if state.pop(_NESTED_KEY, None) is not None:           # an optimizer's or scheduler's nested state
        state = _unflatten(state, module.state_dict())
    if "strict" in inspect.signature(module.load_state_dict).parameters:
        module.load_state_dict(state, strict=strict)
    else:
        module.load_state_dict(state)
    return module
