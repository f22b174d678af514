"""GaLU and the kWTA threshold: the CUDA kernels equal their CPU twins; the backend is a drop-in."""
import importlib
import os

import numpy as np
import pytest

from .conftest import assert_close


@pytest.mark.parametrize("relu", [False, True])
def test_galu_matches_cpu(gpu, cpu, rng, relu):
    x = rng.normal(size=(2, 2, 2, 3))
    x[0, 0, 0, 0] = np.inf                      # gated off below: must give 0, not NaN
    gate = rng.normal(size=x.shape)
    gate[0, 0, 0, 0] = -1.0
    y_c = cpu.galu(x, gate, relu)
    y_g = gpu.galu(x, gate, relu)
    assert y_g.shape == x.shape and y_g.dtype == x.dtype
    np.testing.assert_array_equal(y_g, y_c)     # a selection: exactly equal


@pytest.mark.parametrize("relu", [False, True])
def test_galu_agrees_with_the_reference_on_non_finite_values(gpu, relu):
    from nnlocal.methods.butd import reference

    x = np.array([np.nan, np.nan, np.inf, np.inf, -np.inf, 1.0, -1.0, 2.0])
    gate = np.array([1.0, -1.0, 1.0, -1.0, 1.0, np.nan, np.nan, np.inf])
    want = reference.galu(x, gate, relu)
    assert np.isnan(want[0]) and want[1] == 0        # NaN passes an open gate (relu too), a closed one gives 0
    np.testing.assert_array_equal(gpu.galu(x, gate, relu), want)


def test_galu_int_gate_and_in_place(gpu, cpu, rng):
    x = rng.normal(size=(3, 4)).astype(np.float32)
    gate = rng.integers(-2, 3, size=(3, 4))
    expected = cpu.galu(x, gate)
    assert gpu.galu(x, gate, out=x) is x
    np.testing.assert_array_equal(x, expected)
    with pytest.raises(ValueError, match="does not match"):
        gpu.galu(x, gate[:, :2])


def test_kwta_threshold_matches_cpu_with_ties(gpu, cpu, rng):
    x = rng.normal(size=(3, 10))
    x[1] = np.round(x[1])                       # many ties, also at the k-th / (k+1)-th boundary
    x[2, :] = 0.5
    x[2, 7] = 2.0
    for k in (1, 3, 9):
        th_c, ik_c, ik1_c = cpu.kwta_threshold(x, k, return_boundary=True)
        th_g, ik_g, ik1_g = gpu.kwta_threshold(x, k, return_boundary=True)
        assert_close(th_g, th_c, rtol=0, atol=0)
        np.testing.assert_array_equal(ik_g, ik_c)
        np.testing.assert_array_equal(ik1_g, ik1_c)
        assert ik_g.dtype == np.int64
    for got, want in zip(gpu.kwta_boundary(x, 3), cpu.kwta_boundary(x, 3)):
        np.testing.assert_array_equal(got, want)
    w = gpu.kwta_winners(x, 3)
    assert w.dtype == np.bool_ and w.shape == x.shape
    np.testing.assert_array_equal(w, cpu.kwta_winners(x, 3))
    assert w[0].sum() == 3


def test_kwta_selection_agrees_with_the_reference_on_non_finite_rows(gpu):
    """A row holding NaN has no boundary (θ and both values NaN, index D, no winner); ±inf rank normally."""
    from nnlocal.methods.kwta import reference

    x = np.array([[1.0, 0.0, np.nan, 2.0], [3.0, 1.0, 2.0, 0.0], [np.nan, 5.0, 4.0, 1.0],
                  [np.inf, -np.inf, 1.0, np.inf], [5.0, np.nan, np.nan, np.nan]])
    for k in (1, 2):
        for got, want in zip(gpu.kwta_threshold(x, k, return_boundary=True),
                             reference.kwta_threshold(x, k, return_boundary=True)):
            np.testing.assert_array_equal(got, want)
        for got, want in zip(gpu.kwta_boundary(x, k), reference.kwta_boundary(x, k)):
            np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(gpu.kwta_winners(x, k), reference.kwta_winners(x, k))
    assert reference.kwta_threshold(x, 1, return_boundary=True)[1][0] == 4


def test_kwta_threshold_float32_and_bad_k(gpu, cpu, rng):
    x = rng.normal(size=(2, 6)).astype(np.float32)
    th = gpu.kwta_threshold(x, 2)
    assert th.dtype == np.float32
    np.testing.assert_array_equal(th, cpu.kwta_threshold(x, 2))
    with pytest.raises(ValueError, match="1 <= k < D"):
        gpu.kwta_threshold(x, 6)


def test_cuda_module_offers_every_cpu_kernel_a_class_calls(gpu, cpu):
    """Each method's ``cuda.py`` is a drop-in for its ``cpu.py``: same names, same leading parameters."""
    from nnlocal.kernels import cuda_launch

    from .conftest import PACKAGES

    names = [n for pkg in PACKAGES for n in importlib.import_module(f"{pkg}.cpu").__all__]
    assert len(names) >= 15          # the list is not vacuous
    missing = [n for n in names if not callable(getattr(gpu, n, None))]
    assert not missing, f"kernels.cuda lacks {missing}"
    # the CPU's parameters, in the same order, with the same defaults (so any call that works on the CPU
    # works on the GPU); GPU-only extras (e.g. linear_relax's fused ``stdp``) come last, with defaults
    import inspect

    for n in names:
        p_cpu = list(inspect.signature(getattr(cpu, n)).parameters.values())
        p_gpu = list(inspect.signature(getattr(gpu, n)).parameters.values())
        assert [(p.name, p.default) for p in p_gpu[:len(p_cpu)]] == [(p.name, p.default) for p in p_cpu], n
        assert all(p.default is not inspect.Parameter.empty for p in p_gpu[len(p_cpu):]), n
    assert cuda_launch.is_available()
    assert cuda_launch.simulator_enabled() == (os.environ.get("NUMBA_ENABLE_CUDASIM") == "1")
