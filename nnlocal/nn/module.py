"""The module protocol: ``Parameter``, ``Module`` and ``Sequential``.

There is no autograd tape. A module's ``forward`` computes its output and caches what its
``backward`` needs; ``backward(grad_output)`` returns dL/d(input) and *adds* dL/d(parameter) into
each parameter's ``.grad`` (accumulating like ``torch``). Composite modules (a ResNet block, an
LSTM) write both passes by hand; ``Sequential`` chains them.

Layouts follow PyTorch (``Linear.weight`` is ``(out, in)``, images are NCHW) so a weight can be
copied straight into a ``torch.nn`` twin in the tests. :class:`Module` states the error contract
every layer keeps (bad and non-finite input, gradient dtypes) and the in-place contract.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Iterator

import numpy as np

__all__ = ["Parameter", "Module", "Sequential"]


class Parameter:
    """A trainable array.

    Attributes
    ----------
    data : ndarray
        The value (updated in place by optimizers).
    grad : ndarray or None
        The accumulated gradient, ``None`` until a backward pass writes it.
    requires_grad : bool
        If False, backward passes leave ``grad`` alone and optimizers skip the parameter.
    """

    __slots__ = ("data", "grad", "requires_grad")

    def __init__(self, data, requires_grad: bool = True):
        self.data = np.asarray(data)
        self.grad = None
        self.requires_grad = bool(requires_grad)

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    def accumulate_grad(self, g: np.ndarray) -> None:
        """``grad += g`` (creating it on first use); a no-op when ``requires_grad`` is False."""
        if not self.requires_grad:
            return
        if g.shape != self.data.shape:
            raise ValueError(f"gradient of shape {g.shape} does not match parameter of shape {self.data.shape}")
        if self.grad is None:
            self.grad = np.array(g, dtype=self.data.dtype, copy=True)
        else:
            self.grad += g

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype}, requires_grad={self.requires_grad})"


class Module:
    """Base class of every layer and network.

    Subclasses implement ``forward(x)`` and ``backward(grad_output)``. Assigning a
    :class:`Parameter` or a :class:`Module` to an attribute registers it (as in torch), so
    ``named_parameters`` / ``state_dict`` find it. ``register_buffer`` registers non-trainable
    state that belongs in the state dict (running statistics, firing rates).

    Errors (every layer, and every model built on them)
    ---------------------------------------------------
    * Bad input to ``forward`` is a ``ValueError`` naming the layer, saying what it expected and what it
      got (a ``TypeError`` for something that is not an ndarray): a wrong rank or shape, a dtype other
      than float32/float64 (ints, bools, float16 and complex are never cast silently), and **any NaN or
      ±inf**. Non-finite input is an error, never propagated: the check is one BLAS reduction per
      forward (``nnlocal._checks.check_input``). Inside a network, activations that overflowed to inf
      stop at the next layer, which raises naming itself. Parameters that become non-finite while
      training are divergence, which the training loops report (``DivergenceError``, history flags).
    * ``backward(grad_output)`` needs a float ndarray of the forward output's shape *and* dtype (as
      torch: an int64 or float32 gradient of a float64 output is a ``ValueError``, never a silent
      cast), and a ``forward`` first (``RuntimeError`` otherwise).
    * Constructor arguments are checked like torch checks them: sizes are integers (``3.7`` is an
      error, not 3), ``dtype`` is float32 or float64.

    In-place edits between forward and backward
    -------------------------------------------
    ``forward`` caches what ``backward`` needs. Layers whose weight gradient needs the input keep their
    own copy of it (``Linear``, ``ConvTranspose{1,2,3}d``, ``RNN``/``LSTM``/``GRU``; ``Conv{1,2,3}d``
    keeps a zero-padded copy), so editing ``x`` in place after ``forward`` does not change their
    gradients. The one-pass layers (the elementwise activations, ``Softmax``, ``LogSoftmax``) keep
    *references* to their input or output, because a copy would double their cost. **The contract:
    do not modify a layer's input, or the output it returned, in place between its ``forward`` and its
    ``backward``** (pass ``x.copy()`` if you must); where a layer does not copy, the gradients would
    silently use the edited values. torch detects such edits with a version counter; NumPy arrays
    have none. Model classes built on these layers follow the same contract and say in their
    docstrings what they copy.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_cache", None)

    # ------------------------------------------------------------------ registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() first")
        # Re-assigning a registered name keeps its place in the registry (and so in named_parameters
        # and state_dict order, as torch); a registered buffer stays a buffer when given a new array.
        if isinstance(value, Parameter):
            self._modules.pop(name, None)
            self._buffers.pop(name, None)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._parameters.pop(name, None)
            self._buffers.pop(name, None)
            self._modules[name] = value
        else:
            self._parameters.pop(name, None)
            self._modules.pop(name, None)
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name: str, value: np.ndarray | None) -> None:
        """Register a non-trainable array that is saved in the state dict."""
        object.__setattr__(self, name, value)
        self._buffers[name] = True

    # ------------------------------------------------------------------ forward / backward
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, grad_output):
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def _save_for_backward(self, *arrays) -> None:
        """Cache what ``backward`` needs (replaces the previous cache)."""
        object.__setattr__(self, "_cache", arrays)

    def _saved(self):
        """The arrays cached by the last ``forward``; ``RuntimeError`` if there was none."""
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward() called before forward(): run forward first")
        return self._cache

    # ------------------------------------------------------------------ traversal
    def children(self) -> Iterator["Module"]:
        return iter(self._modules.values())

    def named_children(self):
        return iter(self._modules.items())

    def named_modules(self, prefix: str = "", memo: set | None = None):
        """``(dotted name, module)`` for this module and every descendant; a module reachable
        along two paths (shared between parents) appears once, under its first name (as torch)."""
        memo = set() if memo is None else memo
        if id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name, memo)

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """Torch-style dotted names: ``"0.weight"``, ``"block.conv1.bias"``. Shared parameters appear once."""
        seen = set()
        for mod_name, mod in self.named_modules(prefix):
            for name, p in mod._parameters.items():
                if id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    def named_buffers(self, prefix: str = ""):
        for mod_name, mod in self.named_modules(prefix):
            for name in mod._buffers:
                value = getattr(mod, name)
                if value is not None:
                    yield (f"{mod_name}.{name}" if mod_name else name), value

    # ------------------------------------------------------------------ state
    def zero_grad(self) -> None:
        """Reset every parameter's ``.grad`` to ``None`` (torch's ``set_to_none=True``)."""
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def _state_entries(self, prefix: str = ""):
        """``(name, kind, target)`` for every parameter and buffer along *every* path, like torch's
        ``state_dict`` (a shared parameter appears under each of its names); a module's own
        parameters, then its buffers, then its children."""
        for name, p in self._parameters.items():
            yield prefix + name, "param", p
        for name in self._buffers:
            yield prefix + name, "buffer", (self, name)
        for name, child in self._modules.items():
            yield from child._state_entries(f"{prefix}{name}.")

    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Name -> copy of every parameter and (non-``None``) buffer, in torch's order and naming."""
        out = OrderedDict()
        for name, kind, target in self._state_entries():
            if kind == "param":
                out[name] = target.data.copy()
            else:
                value = getattr(*target)
                if value is not None:
                    out[name] = np.array(value, copy=True)
        return out

    def load_state_dict(self, state: dict, strict: bool = True) -> "Module":
        """Copy arrays from ``state`` into the parameters and buffers (in place).

        With ``strict=True`` a missing or unexpected key raises ``KeyError``; a shape mismatch
        always raises ``ValueError``. Both name the first offending entry. Everything is checked
        before anything is copied, so a failed load leaves the module as it was.
        """
        where = f"{type(self).__name__}.load_state_dict"
        own = OrderedDict((name, (kind, target)) for name, kind, target in self._state_entries())
        if strict:
            missing = [k for k in own if k not in state and not _is_empty_buffer(own[k])]
            if missing:
                raise KeyError(f"{where}: missing key '{missing[0]}' ({len(missing)} missing in all)")
            unexpected = [k for k in state if k not in own]
            if unexpected:
                raise KeyError(f"{where}: unexpected key '{unexpected[0]}' ({len(unexpected)} unexpected in all)")
        updates = []
        for name, (kind, target) in own.items():
            if name not in state:
                continue
            value = np.asarray(state[name])
            current = target.data if kind == "param" else getattr(*target)
            if current is not None and np.shape(current) != value.shape:
                raise ValueError(f"{where}: '{name}' has shape {value.shape} "
                                 f"in the state dict but {np.shape(current)} in the module")
            if value.dtype.kind not in "biuf":
                raise ValueError(f"{where}: '{name}' has dtype {value.dtype}, expected a numeric array")
            updates.append((kind, target, current, value))
        for kind, target, current, value in updates:
            if kind == "param":
                target.data[...] = value.astype(target.data.dtype, copy=False)
            else:
                dtype = current.dtype if isinstance(current, np.ndarray) else value.dtype
                object.__setattr__(target[0], target[1], value.astype(dtype, copy=True))
        return self

    def to(self, dtype) -> "Module":
        """Convert every floating-point parameter, gradient and buffer to ``dtype`` (in place)."""
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"{type(self).__name__}.to: expected a float dtype (float32 or float64), got {dtype}")
        for p in self.parameters():
            if p.data.dtype.kind == "f":
                p.data = p.data.astype(dtype)
                if p.grad is not None:
                    p.grad = p.grad.astype(dtype)
        for mod in self.modules():
            for bname in mod._buffers:
                value = getattr(mod, bname)
                if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                    object.__setattr__(mod, bname, value.astype(dtype))
            object.__setattr__(mod, "_cache", None)
        return self

    # ------------------------------------------------------------------ repr
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = []
        extra = self.extra_repr()
        if extra:
            lines.extend(extra.split("\n"))
        for name, child in self._modules.items():
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"({name}): {child_repr}")
        head = type(self).__name__ + "("
        if not lines:
            return head + ")"
        if len(lines) == 1 and not self._modules:
            return head + lines[0] + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


def _is_empty_buffer(entry) -> bool:
    kind, target = entry
    if kind != "buffer":
        return False
    mod, bname = target
    return getattr(mod, bname) is None


class Sequential(Module):
    """Chain of modules: ``forward`` runs them in order, ``backward`` in reverse.

    ``Sequential(a, b, c)`` names the children ``"0"``, ``"1"``, ``"2"``; as in torch, a single
    ``OrderedDict`` (or dict) of ``name -> module`` gives them names instead.
    """

    def __init__(self, *modules: Module):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], dict):
            named = list(modules[0].items())
        else:
            named = [(str(i), m) for i, m in enumerate(modules)]
        for name, m in named:
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: argument {name} is a {type(m).__name__}, not a Module")
            setattr(self, name, m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def backward(self, grad_output):
        """Backward through the modules in reverse. A module that returns ``None`` (a first ``Linear`` or
        convolution with ``input_grad=False``) ends the chain: ``None`` is returned, and a ``RuntimeError`` is raised
        if a module before it has trainable parameters (they would silently get no gradient)."""
        mods = list(self._modules.values())
        g = grad_output
        for i in range(len(mods) - 1, -1, -1):
            g = mods[i].backward(g)
            if g is None:
                if any(p.requires_grad for m in mods[:i] for p in m.parameters()):
                    raise RuntimeError(f"Sequential: {mods[i]!r} returned no input gradient (input_grad=False), "
                                       "but a module before it has trainable parameters")
                return None
        return g

    def append(self, module: Module) -> "Sequential":
        setattr(self, str(len(self._modules)), module)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            return Sequential(*mods[idx])
        return mods[idx]
