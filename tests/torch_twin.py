"""The one shared comparison helper: run an nnlocal module and its torch twin on the same weights
and input in float64, and compare the output, dL/dx and every parameter gradient.

Usage::

    torch = pytest.importorskip("torch")
    from tests.torch_twin import compare_with_torch

    layer = nn.Conv2d(3, 4, 3, stride=2, rng=0)
    twin = torch.nn.Conv2d(3, 4, 3, stride=2)
    compare_with_torch(layer, twin, x)                      # names match torch's -> copied by name

    # a twin written from the formula: a function of (x, params) where params maps names to torch leaves
    compare_with_torch(layer, lambda x, p: torch.sigmoid(x @ p["weight"].T), x)

The weights of ``module`` are copied into the twin (by name, or through ``to_torch``), a random
upstream gradient is drawn from a fixed seed, and ``module.backward`` must return dL/dx and add
dL/dW into ``.grad`` exactly like autograd (rtol 1e-7 by default).

For what is not one module with one output - a function, a loss, a recurrent layer with its states, a
whole net trained by a local rule - :func:`compare_fn_with_torch` is the function-level twin, in the
style of tinygrad's ``helper_test_op(shapes, torch_fn, our_fn)``::

    def ours(x, w):
        y = F.conv(x, w)
        return y, lambda gy: {"x": F.conv_backward_input(x.shape, w, gy), "w": F.conv_backward_weight(x, w.shape, gy)}

    compare_fn_with_torch({"x": x, "w": w}, lambda x, w: torch.nn.functional.conv2d(x, w), ours)
"""
from __future__ import annotations

import numpy as np


def assert_close(name: str, ours, theirs, rtol: float = 1e-7, atol: float | None = None) -> None:
    """``assert_allclose`` with a scale-aware absolute tolerance and a message naming the quantity."""
    ours = np.asarray(ours, dtype=np.float64)
    theirs = np.asarray(theirs, dtype=np.float64)
    if ours.shape != theirs.shape:
        raise AssertionError(f"{name}: shape {ours.shape} (nnlocal) != {theirs.shape} (torch)")
    if atol is None:
        # entries that cancel to ~0 cannot meet a relative tolerance: allow rtol of the array's scale
        scale = float(np.max(np.abs(theirs))) if theirs.size else 0.0
        atol = rtol * scale + 1e-300
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol, err_msg=f"{name} differs from torch")


def _check_float64(name: str, a) -> None:
    dtype = getattr(a, "dtype", None)
    if dtype != np.float64:
        raise AssertionError(f"{name}: dtype {dtype} from float64 inputs and parameters (expected float64)")


def _to_numpy(t):
    return t.detach().cpu().numpy()


def compare_with_torch(module, twin, *inputs, grad_output=None, rtol: float = 1e-7, atol=None,
                       to_torch=None, seed: int = 0, check_input_grad: bool = True,
                       param_names=None, output_index=None, check_dtype: bool = True):
    """Compare ``module`` with ``twin`` on ``inputs`` (numpy arrays; converted to float64).

    Parameters
    ----------
    module : nnlocal Module (converted to float64 in place).
    twin : ``torch.nn.Module`` (parameters copied by name) or ``callable(*x_t, params) -> tensor``
        where ``params`` maps each of ``module``'s parameter names to a float64 leaf tensor.
    grad_output : upstream gradient dL/dy; drawn from N(0, 1) with ``seed`` if None.
    to_torch : optional ``{name: fn(ndarray) -> ndarray}`` to convert layouts when copying.
    param_names : restrict the gradient comparison to these names (default: all with requires_grad).
    output_index : if the module returns a tuple, which element carries ``grad_output``.
    check_dtype : also require float64 output, dL/dx and gradients (outputs follow the input dtype).

    Besides the values, it checks that ``forward`` leaves its inputs and ``backward`` its
    ``grad_output`` unmodified (a layer must not write into arrays the caller still owns).

    Returns ``dict`` with ``y``, ``gx`` (list), ``grads`` (name -> ours) and their torch counterparts.
    """
    import torch

    module.to(np.float64)
    xs = [np.asarray(x, dtype=np.float64) for x in inputs]
    named = dict(module.named_parameters())
    to_torch = to_torch or {}

    # --- torch side -------------------------------------------------------------------------
    xs_t = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]
    if isinstance(twin, torch.nn.Module):
        twin = twin.double()
        twin_params = dict(twin.named_parameters())
        with torch.no_grad():
            for name, p in named.items():
                if name not in twin_params:
                    raise KeyError(f"twin has no parameter '{name}' (it has {sorted(twin_params)})")
                value = to_torch.get(name, lambda a: a)(p.data)
                twin_params[name].copy_(torch.from_numpy(np.ascontiguousarray(value, dtype=np.float64)))
        y_t = twin(*xs_t)
        params_t = twin_params
    else:
        params_t = {name: torch.tensor(to_torch.get(name, lambda a: a)(p.data), dtype=torch.float64,
                                       requires_grad=True) for name, p in named.items()}
        y_t = twin(*xs_t, params_t)
    if output_index is not None:
        y_t = y_t[output_index]

    # --- nnlocal side ------------------------------------------------------------------------
    module.zero_grad()
    xs_before = [x.copy() for x in xs]
    y = module(*xs)
    for i, (x, before) in enumerate(zip(xs, xs_before)):
        if not np.array_equal(x, before, equal_nan=True):
            raise AssertionError(f"forward modified its input[{i}] in place")
    if output_index is not None:
        y = y[output_index]
    if check_dtype:
        _check_float64("output", y)
    assert_close("output", y, _to_numpy(y_t), rtol, atol)

    if grad_output is None:
        grad_output = np.random.default_rng(seed).standard_normal(np.shape(y))
    grad_output = np.asarray(grad_output, dtype=np.float64)
    y_t.backward(torch.from_numpy(grad_output.copy()))
    go_before = grad_output.copy()
    gx = module.backward(grad_output)
    if not np.array_equal(grad_output, go_before, equal_nan=True):
        raise AssertionError("backward modified grad_output in place")
    gx_list = list(gx) if isinstance(gx, (tuple, list)) else [gx]

    if check_input_grad:
        if len(gx_list) < len(xs_t):
            raise AssertionError(f"backward returned {len(gx_list)} input gradient(s) for {len(xs_t)} input(s)")
        for i, (g, x_t) in enumerate(zip(gx_list, xs_t)):
            expected = np.zeros(x_t.shape) if x_t.grad is None else _to_numpy(x_t.grad)
            if check_dtype:
                _check_float64(f"dL/dinput[{i}]", g)
            assert_close(f"dL/dinput[{i}]", g, expected, rtol, atol)

    names = param_names if param_names is not None else [n for n, p in named.items() if p.requires_grad]
    grads = {}
    for name in names:
        p_t = params_t[name]
        expected = np.zeros(p_t.shape) if p_t.grad is None else _to_numpy(p_t.grad)
        if name in to_torch:  # compare in nnlocal's layout: convert torch's gradient back by transposing the map
            expected = _invert_layout(to_torch[name], named[name].data, expected)
        ours = named[name].grad
        if ours is None:
            ours = np.zeros_like(named[name].data)
        if check_dtype:
            _check_float64(f"dL/d{name}", ours)
        assert_close(f"dL/d{name}", ours, expected, rtol, atol)
        grads[name] = ours
    return {"y": y, "gx": gx_list, "grads": grads, "y_torch": _to_numpy(y_t)}


def _invert_layout(fn, example, grad_theirs):
    """Map a gradient given in the twin's layout back to nnlocal's, for linear layout maps
    (transposes, reshapes): apply the adjoint by probing with the basis (small arrays only)."""
    flat = np.zeros(example.size)
    out = np.zeros(example.size)
    g = grad_theirs.reshape(-1)
    for i in range(example.size):
        flat[i] = 1.0
        out[i] = np.dot(np.asarray(fn(flat.reshape(example.shape)), dtype=np.float64).reshape(-1), g)
        flat[i] = 0.0
    return out.reshape(example.shape)


def compare_fn_with_torch(inputs: dict, torch_fn, our_fn, grad_outputs=None, rtol: float = 1e-7, atol=None,
                          tolerances=None, seed: int = 0, output_names=None, check_dtype: bool = True,
                          label: str = "") -> dict:
    """Compare a hand-written forward and backward with torch autograd: every output, then the
    gradient of every input, in float64 (the function-level twin of :func:`compare_with_torch`).

    Parameters
    ----------
    inputs : ``{name: array}``, everything whose gradient is compared (data, states, parameters).
        torch gets each as a float64 leaf that requires a gradient; ``our_fn`` gets float64 copies.
        Whatever needs no gradient (labels, hyper-parameters) goes into the closures instead.
    torch_fn : ``torch_fn(**tensors)`` -> a tensor or a tuple of tensors.
    our_fn : ``our_fn(**arrays)`` -> ``(outputs, backward)``: ``outputs`` shaped like ``torch_fn``'s
        (a tuple for a tuple), and ``backward(*grad_outputs)`` -> ``{name: dL/dname}`` for **every**
        input (None where nnlocal has none: compared as zeros).
    grad_outputs : one upstream gradient per output, or None for an output the loss does not read
        (no gradient flows from it). Default: N(0, 1) draws from ``seed`` for every output.
    rtol, atol : as :func:`assert_close`.
    tolerances : ``{name: (rtol, atol)}`` for quantities compared at their own tolerance; a name is an
        output name or ``"dL/d<input>"``.
    output_names : names of the outputs in the messages (default ``output``, ``output[1]``, ...).
    check_dtype : require float64 outputs and gradients.
    label : prefixed to every message (which variant of a check failed).

    Also checks that the forward leaves its inputs and the backward its upstream gradients
    unmodified. Returns ``{"outputs", "grads", "grad_outputs", "torch_outputs"}``.
    """
    import torch

    arrays = {k: np.array(v, dtype=np.float64) for k, v in inputs.items()}
    leaves = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in arrays.items()}
    outs_t = torch_fn(**leaves)
    single = not isinstance(outs_t, (tuple, list))
    outs_t = [outs_t] if single else list(outs_t)
    names = list(output_names) if output_names is not None else \
        ["output"] + [f"output[{i}]" for i in range(1, len(outs_t))]
    tolerances = tolerances or {}
    unknown = set(tolerances) - set(names) - {f"dL/d{k}" for k in arrays}
    if unknown:
        raise ValueError(f"tolerances for unknown quantities {sorted(unknown)}")

    def check(name, ours, theirs):
        assert_close(f"{label}: {name}" if label else name, ours, theirs, *tolerances.get(name, (rtol, atol)))

    before = {k: v.copy() for k, v in arrays.items()}
    outs, backward = our_fn(**arrays)
    outs = [outs] if single else list(outs)
    for k, v in arrays.items():
        if not np.array_equal(v, before[k], equal_nan=True):
            raise AssertionError(f"forward modified its input {k!r} in place")
    if len(outs) != len(outs_t):
        raise AssertionError(f"{len(outs)} output(s) from nnlocal, {len(outs_t)} from torch")
    for name, ours, theirs in zip(names, outs, outs_t):
        if check_dtype and not isinstance(ours, float):      # a Python float is a float64
            _check_float64(name, ours)
        check(name, ours, _to_numpy(theirs))

    if grad_outputs is None:
        r = np.random.default_rng(seed)
        grad_outputs = [r.standard_normal(np.shape(o)) for o in outs]
    grad_outputs = [None if g is None else np.array(g, dtype=np.float64) for g in grad_outputs]
    if len(grad_outputs) != len(outs):
        raise ValueError(f"{len(grad_outputs)} upstream gradient(s) for {len(outs)} output(s)")
    pairs = [(o, torch.from_numpy(g.copy())) for o, g in zip(outs_t, grad_outputs)
             if g is not None and o is not None and o.requires_grad]
    if pairs:
        torch.autograd.backward([o for o, _ in pairs], [g for _, g in pairs])
    go_before = [None if g is None else g.copy() for g in grad_outputs]
    grads = backward(*grad_outputs)
    for i, (g, b) in enumerate(zip(grad_outputs, go_before)):
        if g is not None and not np.array_equal(g, b, equal_nan=True):
            raise AssertionError(f"backward modified the upstream gradient of {names[i]} in place")
    missing = sorted(set(arrays) - set(grads))
    if missing:
        raise AssertionError(f"backward returned no gradient for {missing}")
    out = {}
    for name, leaf in leaves.items():
        expected = np.zeros(leaf.shape) if leaf.grad is None else _to_numpy(leaf.grad)
        ours = grads[name]
        ours = np.zeros(leaf.shape) if ours is None else ours
        if check_dtype and grads[name] is not None:
            _check_float64(f"dL/d{name}", ours)
        check(f"dL/d{name}", ours, expected)
        out[name] = ours
    return {"outputs": outs, "grads": out, "grad_outputs": grad_outputs,
            "torch_outputs": [None if o is None else _to_numpy(o) for o in outs_t]}
