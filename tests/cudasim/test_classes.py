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
