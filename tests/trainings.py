"""Short trainings of every method, shared by the implementation-equivalence tests.

Each function trains one method for a few steps on tiny data, in float64, from a fixed seed, and
returns what the training produced: ``{name: array}`` with the parameters after training and the
losses (or errors) along the way. The same function runs

* under ``nnlocal.kernels.use("numpy")`` and ``use("numba")`` (``tests/test_implementations.py``),
  in a fresh process with an empty Numba cache (the no-compile test there), and
* with ``device="cuda"`` under Numba's CUDA simulator (``tests/cudasim/test_trainings.py``), for
  the classes that take a device (:data:`CUDA_TRAININGS`),

and the results are compared with :func:`assert_same_training`. The sizes are kept small enough for
the simulator, which runs every CUDA thread as a Python thread; the CPU-only trainings use the 8x8
digits (no download).
"""
from __future__ import annotations

import functools
import warnings

import numpy as np

F64 = np.float64


@functools.lru_cache(maxsize=None)
def _digits():
    from nnlocal.data import load_digits

    x, y = load_digits("train")
    return x.astype(F64), y


def digits(n: int, flat: bool = False, offset: int = 0):
    """The first ``n`` 8x8 digits after ``offset`` (float64 in [0, 1]; ``(n, 64)`` when ``flat``) and labels."""
    x, y = _digits()
    x, y = x[offset:offset + n], y[offset:offset + n]
    return (x.reshape(n, -1) if flat else x).copy(), y.copy()


def _params(module, prefix: str = "") -> dict:
    return {f"{prefix}{name}": p.data.copy() for name, p in module.named_parameters()}


def _sgd_steps(model, opt, loss_fn, batches, backward=None) -> dict:
    """Forward, loss, backward (``backward(model, dL/dout)``, default ``model.backward``), step."""
    losses = []
    for xb, yb in batches:
        opt.zero_grad()
        losses.append(loss_fn(model(xb), yb))
        g = loss_fn.backward()
        model.backward(g) if backward is None else backward(model, g)
        opt.step()
    return {**_params(model), "loss": np.array(losses)}


def _batches(x, y, size: int, steps: int):
    return [(x[i * size:(i + 1) * size], y[i * size:(i + 1) * size]) for i in range(steps)]


# ------------------------------------------------------------------------------------- DEEP
def deep_xor(device: str = "cpu") -> dict:
    """DEEP (STDP) on XOR: 3 epochs of full-batch relaxations (T = 12 steps)."""
    from nnlocal.methods import deep

    X, Y = deep.logic_gate("XOR")
    net = deep.DEEPNet(2, [3], 1, rng=5, device=device)
    h = net.fit(X, Y, epochs=3, T1=12, T2=12, dt=0.05, beta=1.0, dt_W=1.0)
    return {"W": net.W.copy(), "mse": np.asarray(h["mse"])}


def asym_ep_xor(device: str = "cpu") -> dict:
    """Asymmetric EP on XOR, as :func:`deep_xor`."""
    from nnlocal.methods import deep

    X, Y = deep.logic_gate("XOR")
    net = deep.AsymEPNet(2, [3], 1, rng=5, device=device)
    h = net.fit(X, Y, epochs=3, T1=12, T2=12, dt=0.05, beta=1.0, dt_W=1.0)
    return {"W": net.W.copy(), "mse": np.asarray(h["mse"])}


# --------------------------------------------------------------------------------------- EP
def _ep(device: str, kernel: str) -> dict:
    from nnlocal.methods.eqprop import EPNet

    x, y = digits(12, flat=True)
    net = EPNet([64, 6, 5, 10], rng=2, dtype=F64, kernel=kernel, device=device)
    h = net.fit(x, y, epochs=1, batch_size=4, n_free=5, n_nudged=2, lrs=(0.1, 0.05, 0.02), max_batches=3)
    out = {f"weight{k}": w.copy() for k, w in enumerate(net.weights)}
    out.update({f"bias{k}": b.copy() for k, b in enumerate(net.biases)})
    out["train_cost"] = np.asarray(h["train_cost"])
    return out


def ep_fused(device: str = "cpu") -> dict:
    """Symmetric EP (64-6-5-10) on digits, 3 batches of 4, the fused relaxation kernel."""
    return _ep(device, "fused")


def ep_blas(device: str = "cpu") -> dict:
    """The same with the BLAS relaxation (GEMMs + the fused elementwise update)."""
    return _ep(device, "blas")


# -------------------------------------------------------------------------------------- PAN
def pan_mlp(device: str = "cpu") -> dict:
    """Two PAN layers, 3 SGD steps: a batch gate with a straight-through teacher (the teacher
    gradient dTW += dTh ⊗ s), then a per-sample gate (the masked products and their gradients)."""
    from nnlocal import nn, optim
    from nnlocal.methods import pan

    r = np.random.default_rng(3)
    x, y = r.standard_normal((18, 6)), r.integers(0, 3, 18)
    kw = dict(rng=4, dtype=F64, device=device)
    model = nn.Sequential(pan.PerceptronActivation(6, 5, gate="batch", teacher="ste", **kw),
                          pan.PerceptronActivation(5, 4, gate="sample", teacher="ste", **kw),
                          nn.Linear(4, 3, rng=5, dtype=F64))
    return _sgd_steps(model, optim.SGD(model.parameters(), lr=0.05), nn.CrossEntropyLoss(), _batches(x, y, 6, 3))


def pan_tron_digits(device: str = "cpu") -> dict:
    """Tron (LeNet-5 with PAN fc1/fc2, the faithful batch gate) on digits: 3 SGD steps of 32."""
    from nnlocal import nn, optim
    from nnlocal.methods import pan

    x, y = digits(96)
    model = pan.tron(1, 8, 10, rng=0, dtype=F64, device=device)
    return _sgd_steps(model, optim.SGD(model.parameters(), lr=0.01), nn.NLLLoss(), _batches(2 * x - 1, y, 32, 3))


# ------------------------------------------------------------------------------------- kWTA
def kwta_mlp(device: str = "cpu") -> dict:
    """The kWTA MLP (64-16-32, soft kWTA) with the triplet cosine loss, 3 Adam steps on digits, then
    the binary eval-mode codes of a batch."""
    from nnlocal import nn, optim
    from nnlocal.methods import kwta

    x, y = digits(60, flat=True)
    model = nn.Sequential(nn.Linear(64, 16, rng=6, dtype=F64), nn.ReLU(), nn.Linear(16, 32, rng=7, dtype=F64),
                          kwta.KWinnersTakeAllSoft(0.25, hardness=2.0, hard=False, device=device))
    out = _sgd_steps(model, optim.Adam(model.parameters(), lr=1e-2), kwta.TripletLossSampler(rng=8),
                     _batches(x, y, 20, 3))
    model.eval()
    out["codes"] = model(x[:20])
    return out


# ------------------------------------------------------------------------------------ BU-TD
def _counter_hebb(model, g):
    from nnlocal.methods import butd

    butd.counter_hebb_(model, g)


def butd_fc_ch(device: str = "cpu") -> dict:
    """A BU-TD FC net (64-16-10) trained by Counter-Hebb: 3 Adam steps on digits."""
    from nnlocal import nn, optim
    from nnlocal.methods import butd

    x, y = digits(30)
    net = butd.fc_net((1, 8, 8), 10, hidden=16, rng=0, dtype=F64, device=device)
    return _sgd_steps(net, optim.Adam(net.parameters(), lr=1e-2), nn.CrossEntropyLoss(), _batches(x, y, 10, 3),
                      backward=_counter_hebb)


def butd_conv_ch(device: str = "cpu") -> dict:
    """A BU-TD conv net (the simple core with 2 channels: conv, depthwise pools, transposed convs in
    the TD pass, GaLU on feature maps) trained by Counter-Hebb: 2 Adam steps of 4 digits."""
    from nnlocal import nn, optim
    from nnlocal.methods import butd

    x, y = digits(8)
    core = butd.simple_core((1, 8, 8), channels=2, out_features=6, kernel_size=3, padding=1,
                            pools=((2, 2), (2, 2)), rng=1, dtype=F64, device=device)
    net = butd.BUTDNet(core, 10, rng=2, dtype=F64, device=device)
    return _sgd_steps(net, optim.Adam(net.parameters(), lr=1e-2), nn.CrossEntropyLoss(), _batches(x, y, 4, 2),
                      backward=_counter_hebb)


# -------------------------------------------------------------------------------------- ARP
def arp_digits(device: str = "cpu") -> dict:
    """An ARP conv + dense net (AutoRotConv2d, AutoRotDense) on digits: 3 RMSprop steps of 16."""
    from nnlocal import nn, optim
    from nnlocal.methods import arp

    x, y = digits(48)
    model = nn.Sequential(arp.AutoRotConv2d(1, 3, 3, padding=1, activation="sigmoid", rng=0, dtype=F64),
                          nn.MaxPool2d(2), nn.Flatten(),
                          arp.AutoRotDense(48, 10, activation="tanh", xmin_lim=0.0, xmax_lim=1.0, rng=1, dtype=F64))
    return _sgd_steps(model, optim.RMSprop(model.parameters(), lr=1e-2), nn.CrossEntropyLoss(), _batches(x, y, 16, 3))


# ------------------------------------------------------------------------------- conv engine
def conv_net(device: str = "cpu") -> dict:
    """A plain conv net (conv, max-pool, strided conv, conv-transpose, linear) on digits: 3 SGD +
    momentum steps, for the conv engine's im2col / col2im / max-pool kernels."""
    from nnlocal import nn, optim

    x, y = digits(48)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, rng=0), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 6, 3, stride=2, padding=1, rng=1), nn.Tanh(),
                          nn.ConvTranspose2d(6, 3, 2, stride=2, rng=2), nn.ReLU(), nn.MaxPool2d(3, stride=2),
                          nn.Flatten(), nn.Linear(3 * 1 * 1, 10, rng=3)).to(F64)
    return _sgd_steps(model, optim.SGD(model.parameters(), lr=0.05, momentum=0.9), nn.CrossEntropyLoss(),
                      _batches(x, y, 16, 3))


#: every short training, by name
TRAININGS = {f.__name__: f for f in (deep_xor, asym_ep_xor, ep_fused, ep_blas, pan_mlp, pan_tron_digits, kwta_mlp,
                                     butd_fc_ch, butd_conv_ch, arp_digits, conv_net)}
#: the trainings whose classes take ``device="cuda"`` (small enough for the CUDA simulator)
CUDA_TRAININGS = ("deep_xor", "asym_ep_xor", "ep_fused", "ep_blas", "pan_mlp", "kwta_mlp", "butd_fc_ch",
                  "butd_conv_ch")


def run(name: str, device: str = "cpu") -> dict:
    """Run the training ``name`` (warnings are errors: a training that warns is not a clean run)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return TRAININGS[name](device=device)


def assert_same_training(actual: dict, expected: dict, rtol: float, atol: float, what: str = "") -> None:
    """The same quantities, each finite and equal within ``rtol``/``atol``, named on failure."""
    assert sorted(actual) == sorted(expected), f"{what}: different results {sorted(actual)} vs {sorted(expected)}"
    for key in expected:
        a, e = np.asarray(actual[key]), np.asarray(expected[key])
        assert a.shape == e.shape, f"{what}: {key} has shape {a.shape}, expected {e.shape}"
        assert np.isfinite(e).all(), f"{what}: {key} is not finite in the reference run"
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=f"{what}: {key}")
