"""Every Numba kernel against its NumPy reference, on the same arrays, one thread each.

``nnlocal bench kernels`` (or ``python -m nnlocal.bench.bench_kernels [--quick]``) times each function
of every ``cpu.py`` in nnlocal (``nnlocal/methods/<method>/cpu.py``, ``nnlocal/kernels/{conv,pool}/cpu.py``,
``nnlocal/optim/cpu.py``)
against the function of the same name in the ``reference.py`` beside it, at the sizes the methods
use (three or more per kernel), and prints ``ratio = kernel time / reference time``: below 1 the
kernel pays. A name that ``cpu.py`` re-exports from ``reference.py`` (the same object) is no kernel
and is not timed. Where a ``cpu.py`` function chooses by size, the row times that choice.

The kernels are found from each ``cpu.py``'s ``__all__``; :data:`CASES` holds one argument builder
per (package, name), and ``tests/test_bench_kernels.py`` checks that every kernel has one, so none
escapes the benchmark. Needs no torch.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys
from functools import partial

import numpy as np

from nnlocal.bench.common import Case

F32, F64 = np.float32, np.float64
DEEP, EP, PAN, BUTD, CONV, POOL, OPTIM = ("nnlocal.methods.deep", "nnlocal.methods.eqprop", "nnlocal.methods.pan",
                                          "nnlocal.methods.butd", "nnlocal.kernels.conv", "nnlocal.kernels.pool",
                                          "nnlocal.optim")


# ------------------------------------------------------------------------------ discovery
def kernel_packages() -> list[str]:
    """Every nnlocal package with a ``cpu.py`` beside a ``reference.py``."""
    import nnlocal

    names = {m.name for m in pkgutil.walk_packages(nnlocal.__path__, "nnlocal.")}
    return sorted(n[:-len(".cpu")] for n in names if n.endswith(".cpu") and n[:-len(".cpu")] + ".reference" in names)


def kernels_of(package: str) -> list[str]:
    """The kernels of ``package``: the names in ``cpu.__all__`` that are not the reference's own object."""
    cpu = importlib.import_module(package + ".cpu")
    ref = importlib.import_module(package + ".reference")
    return [name for name in cpu.__all__ if getattr(cpu, name) is not getattr(ref, name, None)]


def all_kernels() -> list[tuple[str, str]]:
    return [(pkg, name) for pkg in kernel_packages() for name in kernels_of(pkg)]


# ------------------------------------------------------------------------------ argument builders
# Each builder takes ``quick`` and returns [(size label, make)]; ``make()`` builds (args, kwargs) for one
# call, once, when the case runs; both implementations get the same arrays (in-place updates keep the
# work the same from call to call).
def _rng():
    return np.random.default_rng(0)


def _deep_net(N, n_x, B, S=1):
    """A DEEP-like net: W ~ N(0, 0.05²) on the allowed edges, clamped inputs, free state in [0, 1]."""
    r = _rng()
    W = r.normal(0, 0.05, (S, N, N))
    W[:, :, :n_x] = 0
    s = r.uniform(0, 1, (S, B, N))
    return W, s


# (N, clamped inputs n_x, outputs, batch): XOR as in the notebooks, then larger graphs (docs/deep.md's sizes);
# cpu.py runs its kernel only while B·H² is small, so the large rows time that choice (the reference)
DEEP_SIZES = [(N, 3, 1, B, f"N={N} (H={N - 3}) B={B}")
              for N, B in ((9, 4), (80, 4), (80, 64), (275, 64), (875, 64))]


def _deep_operator(N, n_x, n_out, B):
    from nnlocal.methods.deep.reference import deep_linear_operator

    W, s = _deep_net(N, n_x, B)
    M, c = deep_linear_operator(W, s[0, :, :n_x])
    return M, c, s, _rng().uniform(0, 1, (B, n_out))


def _deep_linear_relax(quick):
    steps = 20 if quick else 100

    def make(N, n_x, n_out, B):
        M, c, s, target = _deep_operator(N, n_x, n_out, B)
        return (M, c, s, n_x, n_out, steps, 0.05), dict(beta=1.0, target=target)

    return [(f"{label}, {steps} steps", partial(make, N, n_x, n_out, B)) for N, n_x, n_out, B, label in DEEP_SIZES]


def _deep_relax_phases(quick):
    T = 10 if quick else 50

    def make(N, n_x, n_out, B):
        M, c, s, target = _deep_operator(N, n_x, n_out, B)
        return (M, c, s, n_x, n_out, T, T, 0.05, 1.0, target), {}

    return [(f"{label}, {T}+{T} steps", partial(make, N, n_x, n_out, B)) for N, n_x, n_out, B, label in DEEP_SIZES]


def _deep_relax(quick, asym=False):
    steps = 20 if quick else 100

    def make(N, n_x, n_out, B):
        W, s = _deep_net(N, n_x, B)
        target = _rng().uniform(0, 1, (B, n_out))
        head = (W[0], np.zeros(N)) if asym else (W[0],)
        return (*head, s[0], n_x, n_out, steps, 0.05), dict(beta=1.0, target=target)

    return [(f"{label}, {steps} steps", partial(make, N, n_x, n_out, B)) for N, n_x, n_out, B, label in DEEP_SIZES]


def _ep_sizes(quick):
    """bench_eqprop's sizes: (layer sizes, batch, steps, where EP uses them)."""
    from nnlocal.bench.bench_eqprop import KERNEL_SIZES

    return KERNEL_SIZES[:3] if quick else KERNEL_SIZES


def _ep_net(sizes, B, nudge=False):
    """An EPNet, an MNIST-like input batch, its input drive and a relaxed free (and nudged) state."""
    from nnlocal.methods.eqprop import EPNet

    r = _rng()
    net = EPNet(sizes, rng=0)
    x = (r.uniform(0, 1, (B, sizes[0])) * (r.uniform(0, 1, (B, sizes[0])) < 0.19)).astype(F32)
    free = net.relax(x, 20)
    nudged = net.relax(x, 4, beta=0.5, target=r.integers(0, sizes[-1], B), state=free) if nudge else None
    return net, x, free, nudged


def _ep_relax(quick):
    def make(sizes, B, steps):
        net, x, _, _ = _ep_net(sizes, B)
        return (net.input_drive(x), net._vt, net._b, np.zeros((B, net.H), F32), sizes[1:], steps, 0.5), {}

    return [(f"{'-'.join(map(str, sz))} B={B} T={T} ({use})", partial(make, sz, B, T))
            for sz, B, T, use in _ep_sizes(quick)]


def _ep_update_elementwise(quick):
    def make(sizes, B):
        net, x, free, _ = _ep_net(sizes, B)
        d = _rng().uniform(-1, 2, free.shape).astype(F32)
        target = np.eye(sizes[-1], dtype=F32)[np.arange(B) % sizes[-1]]
        return (free, d, 0.5), dict(beta=0.5, target=target)

    return [(f"{'-'.join(map(str, sz))} B={B} ({use})", partial(make, sz, B)) for sz, B, _, use in _ep_sizes(quick)]


def _ep_update(quick):
    def make(sizes, B):
        net, x, free, nudged = _ep_net(sizes, B, nudge=True)
        # tiny rates: the weights stay what they were, call after call
        return (x, net.layers(free), net.layers(nudged), net._weights(), net._biases(), 0.5, [1e-9] * net.L), {}

    return [(f"{'-'.join(map(str, sz))} B={B} ({use})", partial(make, sz, B)) for sz, B, T, use in _ep_sizes(False)
            if T == 20]


PAN_LAYERS = [(64, 120, "64->120 (digits tron1)"), (120, 84, "120->84"), (400, 120, "400->120 (MNIST tron1)")]
PAN_B = 64


def _pan(name):
    """The PAN kernels at the tron layers' sizes, float32, B = 64, with ``bench_pan``'s arguments."""
    from nnlocal.bench.bench_pan import _kernel_args

    suffix = "" if name == "pan_add_outer" else f" B={PAN_B}"
    def make(n, m):
        return _kernel_args(name, n, m, PAN_B, _rng()), {}

    return lambda quick: [(label + suffix, partial(make, n, m)) for n, m, label in PAN_LAYERS]


# bench_butd's sizes: the FC net's hidden layer, the simple net's first conv maps, ResNet-18's stage 1
GALU_SHAPES = [((20, 500), "FC-500 hidden (20, 500)"), ((64, 32, 24, 24), "simple net conv1 (64, 32, 24, 24)"),
               ((128, 64, 32, 32), "ResNet-18 stage 1 (128, 64, 32, 32)")]


def _galu(quick):
    def make(shape, relu):
        r = _rng()
        x, gate = r.standard_normal(shape, dtype=F32), r.standard_normal(shape, dtype=F32)
        return (x, gate, relu), {}

    return [(f"{label}{', relu' if relu else ''}", partial(make, shape, relu)) for shape, label in GALU_SHAPES
            for relu in (False, True)]


# (batch, channels, size, kernel, stride, padding): LeNet-5's convs on 28x28, a 3-channel CIFAR conv, ResNet-ish
# 3x3 convs. im2col skips LeNet conv1: one input channel at stride 1 runs the tap convolution instead
# (kernels.conv.cpu.taps_pay), so the engine calls im2col there only for col2im's adjoint, never forward.
CONV_SHAPES = [(64, 1, 28, 5, 1, 2, "LeNet conv1 (64, 1, 28, 28) k5 p2"),
               (64, 3, 32, 3, 1, 1, "CIFAR conv1 (64, 3, 32, 32) k3 p1"),
               (64, 6, 14, 5, 1, 0, "LeNet conv2 (64, 6, 14, 14) k5"),
               (32, 64, 32, 3, 1, 1, "ResNet (32, 64, 32, 32) k3 p1"),
               (32, 128, 16, 3, 2, 1, "ResNet (32, 128, 16, 16) k3 s2 p1")]
POOL_SHAPES = [(64, 6, 28, 2, 2, 0, "LeNet pool1 (64, 6, 28, 28) k2 s2"),
               (64, 16, 10, 2, 2, 0, "LeNet pool2 (64, 16, 10, 10) k2 s2"),
               (32, 64, 32, 3, 2, 1, "ResNet (32, 64, 32, 32) k3 s2 p1")]


def _geometry(size, k, stride, pad):
    out = (size + 2 * pad - k) // stride + 1
    return (k, k), (stride, stride), ((pad, pad), (pad, pad)), (1, 1), (out, out)


def _conv(kind):
    def make(B, C, size, k, stride, pad):
        from nnlocal.kernels.conv import reference

        r = _rng()
        kern, st, pads, dil, out = _geometry(size, k, stride, pad)
        x = r.standard_normal((B, C, size, size), dtype=F32)
        if kind == "im2col":      # into a column buffer, as the engine calls it (nn.functional.conv_apply)
            return (x, kern, st, pads, dil, out), {"out": np.empty((B, C * k * k, out[0] * out[1]), F32)}
        cols = reference.im2col(x, kern, st, pads, dil, out).copy()
        return (cols, x.shape, kern, st, pads, dil, out), {}

    def used(C, k, stride):                      # where the engine calls this kernel at all
        return kind != "im2col" or not (C == 1 and stride == 1)

    return lambda quick: [(label, partial(make, *geometry)) for *geometry, label in CONV_SHAPES
                          if used(geometry[1], geometry[3], geometry[4])]


def _pool(kind):
    def make(B, C, size, k, stride, pad):
        from nnlocal.kernels.pool import reference

        r = _rng()
        kern, st, pads, dil, out = _geometry(size, k, stride, pad)
        x = r.standard_normal((B, C, size, size), dtype=F32)
        if kind == "max_pool":
            return (x, kern, st, pads, dil, out), {}
        if kind == "sum_pool":
            return (x, kern, st, pads, out), {}
        gy = r.standard_normal((B, C) + out, dtype=F32)
        if kind == "sum_pool_backward":
            return (gy, x.shape, kern, st, pads, out), {}
        _, idx = reference.max_pool(x, kern, st, pads, dil, out)
        return (gy, idx, x.shape), {}

    return lambda quick: [(label, partial(make, *geometry)) for *geometry, label in POOL_SHAPES]


# (batch, channels, size, kernel, groups): the convolutions conv_taps serves, stride 1 ("same" padding)
TAPS_SHAPES = [(64, 1, 28, 5, 1, "LeNet conv1 (64, 1, 28, 28) 1->6 k5 p2"),
               (32, 32, 32, 3, 32, "depthwise (32, 32, 32, 32) k3 p1"),
               (32, 64, 16, 3, 64, "depthwise (32, 64, 16, 16) k3 p1")]


def _taps(kind):
    def make(B, C, size, k, groups):
        r = _rng()
        out_channels = 6 if groups == 1 else C
        kern, _, pads, dil, out = _geometry(size, k, 1, k // 2)
        x = r.standard_normal((B, C, size, size), dtype=F32)
        w = r.standard_normal((out_channels, C // groups) + kern, dtype=F32)
        if kind == "conv_taps":
            return (x, w, r.standard_normal(out_channels, dtype=F32), pads, dil, out, groups), {}
        gy = r.standard_normal((B, out_channels) + out, dtype=F32)
        return (x, gy, w.shape, pads, dil, groups), {}

    return lambda quick: [(label, partial(make, *shape)) for *shape, label in TAPS_SHAPES]


# one parameter array each: a LeNet-5 (61,706 parameters), an MLP 784-500-10 (397,510) and the 1.6 M
OPTIM_SIZES = [(61_706, "61,706 (LeNet-5)"), (397_510, "397,510 (MLP 784-500-10)"), (1_600_000, "1.6 M")]


def _optim(kind):
    def make(n):
        r = _rng()
        p, g = r.standard_normal(n, dtype=F32), r.standard_normal(n, dtype=F32)
        state = [np.abs(r.standard_normal(n, dtype=F32)) for _ in range(2)]
        lr = 1e-12    # the parameters stay what they were, call after call
        if kind == "sgd_update":        # momentum 0.9, Nesterov off, after the first step
            return (p, g, state[0], lr, 0.9, 0.0, 0.0, False, False), {}
        if kind == "adam_update":       # torch's defaults, step 10, no AMSGrad
            return (p, g, state[0], state[1], None, lr, 0.9, 0.999, 1e-8, 0.0, 10), {}
        return (p, g, state[0], None, None, lr, 0.99, 1e-8, 0.0, 0.0), {}   # RMSprop, torch's defaults

    return lambda quick: [(label, partial(make, n)) for n, label in OPTIM_SIZES]


#: one argument builder per (package, kernel name)
CASES = {
    (DEEP, "linear_relax"): _deep_linear_relax,
    (DEEP, "relax_phases"): _deep_relax_phases,
    (DEEP, "deep_relax"): _deep_relax,
    (DEEP, "asym_ep_relax"): lambda quick: _deep_relax(quick, asym=True),
    (EP, "ep_relax"): _ep_relax,
    (EP, "ep_update_elementwise"): _ep_update_elementwise,
    (EP, "ep_update"): _ep_update,
    **{(PAN, name): _pan(name) for name in ("pan_sample_gate", "pan_bias_threshold", "pan_sample_forward",
                                            "pan_sample_backward", "pan_sample_gate_grad", "pan_add_outer")},
    (BUTD, "galu"): _galu,
    **{(CONV, name): _conv(name) for name in ("im2col", "col2im")},
    **{(CONV, name): _taps(name) for name in ("conv_taps", "conv_taps_weight_grad")},
    **{(POOL, name): _pool(name) for name in ("max_pool", "max_pool_backward", "sum_pool", "sum_pool_backward")},
    **{(OPTIM, name): _optim(name) for name in ("sgd_update", "adam_update", "rmsprop_update")},
}


class _Once:
    """Build the arguments on first use (so listing the cases allocates nothing)."""

    def __init__(self, make):
        self.make, self.value = make, None

    def __call__(self):
        if self.value is None:
            self.value = self.make()
        return self.value


def cases(quick: bool = False):
    """One :class:`Case` per kernel and size (a generator: each case's arrays are built when it runs)."""
    missing = [key for key in all_kernels() if key not in CASES]
    if missing:
        raise KeyError(f"bench_kernels: no argument builder for the kernels {missing}; add them to CASES")
    for package, name in all_kernels():
        kernel = getattr(importlib.import_module(package + ".cpu"), name)
        reference = getattr(importlib.import_module(package + ".reference"), name)
        for label, make in CASES[(package, name)](quick):
            args = _Once(make)
            yield Case(f"{package.rsplit('.', 1)[-1]}.{name} {label}",
                       lambda kernel=kernel, args=args: kernel(*args()[0], **args()[1]),
                       lambda reference=reference, args=args: reference(*args()[0], **args()[1]),
                       baseline_name="numpy reference", goal="ratio < 1")


if __name__ == "__main__":   # python -m nnlocal.bench.bench_kernels [--quick]
    from nnlocal.bench import print_results, run_benchmarks

    print_results(run_benchmarks(["kernels"], quick="--quick" in sys.argv))
