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


@pytest.mark.parametrize("gate", ["batch", "sample"])
def test_pan_layer_on_cuda_equals_cpu(gate, rng):
    from nnlocal.methods import pan

    kw = dict(gate=gate, teacher="ste" if gate == "sample" else "frozen", rng=3, dtype=np.float64)
    on_cpu = pan.PerceptronActivation(5, 3, **kw)
    on_gpu = pan.PerceptronActivation(5, 3, device="cuda", **kw)
    x = rng.normal(size=(2, 5))
    np.testing.assert_allclose(on_gpu(x), on_cpu(x), rtol=1e-12)
    g = rng.normal(size=(2, 3))
    np.testing.assert_allclose(on_gpu.backward(g), on_cpu.backward(g), rtol=1e-12)
    for (name, p_c), (_, p_g) in zip(on_cpu.named_parameters(), on_gpu.named_parameters()):
        if p_c.grad is not None:
            np.testing.assert_allclose(p_g.grad, p_c.grad, rtol=1e-12, err_msg=name)


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
