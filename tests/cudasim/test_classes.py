"""device="cuda" on the method classes: the same results as device="cpu" (under the simulator)."""
import numpy as np
import pytest

from nnlocal.methods import kwta


@pytest.mark.parametrize("cls", [kwta.KWinnersTakeAll, kwta.KWinnersTakeAllSoft])
def test_kwta_layers_on_cuda_equal_cpu(cls, rng):
    x = rng.normal(size=(3, 20))
    on_cpu, on_gpu = cls(0.2), cls(0.2, device="cuda")
    for mode in ("train", "eval"):
        getattr(on_cpu, mode)(), getattr(on_gpu, mode)()
        y_c, y_g = on_cpu(x), on_gpu(x)
        np.testing.assert_array_equal(y_g, y_c) if mode == "eval" else np.testing.assert_allclose(y_g, y_c, rtol=1e-12)
        g = rng.normal(size=y_c.shape)
        np.testing.assert_allclose(on_gpu.backward(g), on_cpu.backward(g), rtol=1e-12)


class _PanPair:
    """The same PAN layer on the CPU and on CUDA, driven identically; counts the uploads of TW."""

    def __init__(self, monkeypatch, **kw):
        from nnlocal import optim
        from nnlocal.methods import pan
        import nnlocal.methods.pan.cuda as pan_cuda

        self.layers = {d: pan.PerceptronActivation(5, 3, rng=3, dtype=np.float64, device=d, **kw)
                       for d in ("cpu", "cuda")}
        self.opts = {d: optim.SGD(layer.parameters(), lr=0.5) for d, layer in self.layers.items()}
        self.uploaded = []
        upload = pan_cuda.to_device
        monkeypatch.setattr(pan_cuda, "to_device", lambda a, *args: (self.uploaded.append(a), upload(a, *args))[1])

    @property
    def tw_uploads(self) -> int:
        """How often the GPU layer's current TW array went to the device."""
        tw = self.layers["cuda"].teacher_weight.data
        return sum(a is tw for a in self.uploaded)

    def both(self, fn):
        return [fn(d, layer) for d, layer in self.layers.items()]

    def step(self, rng, optimizer_step=True):
        """zero_grad, forward, backward, SGD step on both; outputs, dL/dx and parameters must agree."""
        x, g = rng.normal(size=(4, 5)), rng.normal(size=(4, 3))
        results = self.both(lambda d, layer: (self.opts[d].zero_grad(), layer(x), layer.backward(g))[1:])
        if optimizer_step:
            self.both(lambda d, layer: self.opts[d].step())
        for (y_c, gx_c), (y_g, gx_g) in zip(results[:1], results[1:]):
            np.testing.assert_allclose(y_g, y_c, rtol=1e-12)
            np.testing.assert_allclose(gx_g, gx_c, rtol=1e-12)
        self.assert_same_state()

    def assert_same_state(self):
        on_cpu, on_gpu = (layer.state_dict() for layer in self.layers.values())
        for name in on_cpu:
            np.testing.assert_allclose(on_gpu[name], on_cpu[name], rtol=1e-12, err_msg=name)


@pytest.mark.parametrize("gate,teacher", [("batch", "frozen"), ("sample", "frozen"), ("batch", "ste"),
                                          ("sample", "ste")])
def test_pan_layer_on_cuda_trains_like_cpu_with_a_resident_teacher(gate, teacher, rng, monkeypatch):
    """device="cuda" keeps TW on the GPU: uploaded once while it is frozen, once per optimizer step
    with the straight-through teacher (which SGD changes in place), and again after
    load_state_dict, an assignment of .data, to() or teacher_changed(). Several SGD steps on the
    CPU and the CUDA layer stay equal throughout."""
    pair = _PanPair(monkeypatch, gate=gate, teacher=teacher)
    per_step = int(teacher == "ste")
    for _ in range(3):
        pair.step(rng)
    assert pair.tw_uploads == 1 + 2 * per_step          # the first forward, then after each trained step

    from nnlocal.methods import pan

    new = pan.PerceptronActivation(5, 3, rng=11, dtype=np.float64, gate=gate, teacher=teacher).state_dict()
    pair.both(lambda d, layer: layer.load_state_dict(new))   # TW copied in place: same array, new values
    before = pair.tw_uploads
    pair.step(rng)
    assert pair.tw_uploads == before + 1
    pair.step(rng)
    assert pair.tw_uploads == before + 1 + per_step

    fresh = np.random.default_rng(5).normal(size=(15, 5))
    pair.both(lambda d, layer: setattr(layer.teacher_weight, "data", fresh.copy()))
    pair.step(rng)
    assert pair.tw_uploads == 1                           # the new array, uploaded once
    pair.both(lambda d, layer: layer.to(np.float64))        # to() makes new arrays
    pair.step(rng)
    assert pair.tw_uploads == 1

    def edit(d, layer):
        layer.teacher_weight.data[:] *= -1.0               # in place: the layer cannot see it ...
        layer.teacher_changed()                            # ... unless told
    pair.both(edit)
    before = pair.tw_uploads
    pair.step(rng)
    assert pair.tw_uploads == before + 1


def test_pan_ste_teacher_is_uploaded_again_after_a_step_taken_after_a_forward(rng, monkeypatch):
    """backward, forward (evaluation), step, zero_grad, forward: the last forward must see the step."""
    pair = _PanPair(monkeypatch, gate="batch", teacher="ste")
    pair.step(rng, optimizer_step=False)                  # forward + backward: TW has a gradient now
    x = rng.normal(size=(4, 5))
    pair.both(lambda d, layer: layer(x))                  # an evaluation before the step
    pair.both(lambda d, layer: pair.opts[d].step())
    pair.both(lambda d, layer: pair.opts[d].zero_grad())
    y_c, y_g = pair.both(lambda d, layer: layer(x))
    np.testing.assert_allclose(y_g, y_c, rtol=1e-12)
    pair.assert_same_state()


@pytest.mark.parametrize("cls_name", ["DEEPNet", "AsymEPNet"])
def test_directed_nets_train_identically_on_cuda(cls_name, monkeypatch):
    """fit on device="cuda" = fit on the CPU; the epoch's two phases run on device-resident arrays
    (one upload of operators and state per epoch, no host-side relaxation, no trajectory)."""
    from nnlocal.kernels import cuda_launch
    from nnlocal.methods import deep
    from nnlocal.methods.deep import cuda as deep_cuda

    X, Y = deep.logic_gate("XOR")
    cls = getattr(deep, cls_name)
    on_cpu, on_gpu = cls(2, [3], 1, rng=5), cls(2, [3], 1, rng=5, device="cuda")
    kw = dict(epochs=2, T1=6, T2=6, dt=0.05, beta=1.0, dt_W=1.0)   # both nets draw states from rng=5
    h_c = on_cpu.fit(X, Y, **kw)
    uploads = []
    real_to_device = deep_cuda.cuda.to_device

    def counting(a, *args, **kwargs):
        uploads.append(np.shape(a))
        return real_to_device(a, *args, **kwargs)

    def forbidden(*args, **kwargs):
        raise AssertionError("the fit left the device-resident path")

    monkeypatch.setattr(deep_cuda.cuda, "to_device", counting)
    monkeypatch.setattr(deep_cuda, "linear_relax", forbidden)       # the host-array API: two round trips
    monkeypatch.setattr(deep_cuda, "stdp_accumulate", forbidden)    # the trajectory-based sums
    h_g = on_gpu.fit(X, Y, **kw)
    np.testing.assert_allclose(on_gpu.W, on_cpu.W, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(on_gpu.b, on_cpu.b, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(h_g["mse"], h_c["mse"], rtol=1e-10)
    np.testing.assert_allclose(h_g["mse_nudged"], h_c["mse_nudged"], rtol=1e-10)
    # per epoch: M, c, target, state (+ the zero target and residual buffers of each phase), never a
    # (T+1)-long trajectory
    assert all(len(shape) < 4 for shape in uploads), uploads
    assert sum(shape == (1, 4, on_cpu.N) for shape in uploads) == kw["epochs"]   # the state, once per epoch


def test_epnet_relaxes_and_learns_identically_on_cuda(rng):
    from nnlocal.methods.eqprop import EPNet

    x = rng.random((3, 4))
    y = np.array([0, 2, 1])
    on_cpu, on_gpu = EPNet([4, 5, 3], rng=2, dtype=np.float64), EPNet([4, 5, 3], rng=2, dtype=np.float64, device="cuda")
    kw = dict(epochs=1, batch_size=3, n_free=4, n_nudged=2)
    on_cpu.fit(x, y, **kw), on_gpu.fit(x, y, **kw)
    for w_c, w_g in zip(on_cpu.weights, on_gpu.weights):
        np.testing.assert_allclose(w_g, w_c, rtol=1e-10, atol=1e-14)


def test_epnet_keeps_its_couplings_on_the_device_between_phases(rng, monkeypatch):
    """The couplings and biases are uploaded once per change of the parameters (after each update), not
    on every relaxation: one upload for the free and the nudged phase of a batch."""
    from nnlocal.methods.eqprop import EPNet
    from nnlocal.methods.eqprop import cuda as ep_cuda

    net = EPNet([4, 5, 6, 3], rng=2, dtype=np.float64, device="cuda")
    uploads = []
    real = ep_cuda.to_device

    def counting(a, dtype=None):
        if not ep_cuda.is_device(a) and np.shape(a) in (net._vt.shape, net._b.shape):
            uploads.append(np.shape(a))
        return real(a, dtype)

    monkeypatch.setattr(ep_cuda, "to_device", counting)
    x = rng.random((2, 4))
    cpu_twin = EPNet([4, 5, 6, 3], rng=2, dtype=np.float64)
    for step in range(2):
        net.train_batch(x, [0, 2], n_free=2, n_nudged=2, lrs=0.1)
        cpu_twin.train_batch(x, [0, 2], n_free=2, n_nudged=2, lrs=0.1)
        assert len(uploads) == 2 * (step + 1), uploads      # vt and bias once per batch (two phases)
    s_g, s_c = net.relax(x, 3), cpu_twin.relax(x, 3)
    assert len(uploads) == 6                             # changed by the last update: uploaded again
    net.relax(x, 3)
    assert len(uploads) == 6                             # unchanged: resident
    np.testing.assert_allclose(s_g, s_c, rtol=1e-10)
    net.weights[1][0, 0] += 1.0                          # an edit through the views is seen
    cpu_twin.weights[1][0, 0] += 1.0
    np.testing.assert_allclose(net.relax(x, 3), cpu_twin.relax(x, 3), rtol=1e-10)
    assert len(uploads) == 8


def test_butd_counter_hebb_on_cuda_equals_cpu(rng):
    from nnlocal.methods import butd

    x = rng.random((3, 1, 4, 4))
    y = np.array([0, 2, 1])
    grads = []
    for device in ("cpu", "cuda"):
        net = butd.fc_net((1, 4, 4), n_classes=3, hidden=5, rng=1, dtype=np.float64, device=device)
        _, grad_logits = butd.loss_and_grad("cross_entropy", net(x), y)
        butd.counter_hebb_(net, grad_logits)
        grads.append({n: p.grad.copy() for n, p in net.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name in grads[0]:
        np.testing.assert_allclose(grads[1][name], grads[0][name], rtol=1e-12, err_msg=name)
