"""The comparison helper itself must be able to fail: a helper that always passes proves nothing.

Each test plants one defect in an otherwise correct layer and checks that ``compare_with_torch``
reports it, naming the quantity that is wrong.
"""
import numpy as np
import pytest

from nnlocal import nn
from tests.torch_twin import assert_close, compare_fn_with_torch, compare_with_torch

torch = pytest.importorskip("torch")


def _x(shape=(5, 4), seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


class WrongInputGrad(nn.Linear):
    def backward(self, g):
        return super().backward(g) * (1 + 1e-5)


class WrongWeightGrad(nn.Linear):
    def backward(self, g):
        gx = super().backward(g)
        self.weight.grad[0, 0] += 1e-4
        return gx


class NoBiasGrad(nn.Linear):
    def backward(self, g):
        (x,) = self._saved()
        self.weight.accumulate_grad(g.reshape(-1, self.out_features).T @ x.reshape(-1, self.in_features))
        return g @ self.weight.data


class WrongOutput(nn.Linear):
    def forward(self, x):
        y = super().forward(x)
        y[..., -1] += 1e-6
        return y


class Float32Output(nn.Linear):
    def forward(self, x):
        return super().forward(x).astype(np.float32)


class MutatesInput(nn.Module):
    def forward(self, x):
        np.maximum(x, 0, out=x)
        self._save_for_backward(x)
        return x.copy()

    def backward(self, g):
        (x,) = self._saved()
        return g * (x > 0)


class MutatesGradOutput(nn.ReLU):
    def backward(self, g):
        z, _ = self._saved()
        g *= (z > 0)
        return g


class WrongTanhBackward(nn.Tanh):
    def grad(self, z, y):
        return 1 - y  # a typical slip: forgot the square


def test_correct_layer_passes():
    out = compare_with_torch(nn.Linear(4, 3, rng=0), torch.nn.Linear(4, 3), _x())
    assert set(out["grads"]) == {"weight", "bias"}


def test_weights_are_injected_into_the_twin():
    layer, twin = nn.Linear(4, 3, rng=0), torch.nn.Linear(4, 3)
    compare_with_torch(layer, twin, _x())
    np.testing.assert_array_equal(twin.weight.detach().numpy(), layer.weight.data)


@pytest.mark.parametrize("cls,what", [(WrongInputGrad, "dL/dinput"), (WrongWeightGrad, "dL/dweight"),
                                      (NoBiasGrad, "dL/dbias"), (WrongOutput, "output"),
                                      (Float32Output, "dtype")])
def test_defect_is_caught_and_named(cls, what):
    with pytest.raises(AssertionError, match=what):
        compare_with_torch(cls(4, 3, rng=0), torch.nn.Linear(4, 3), _x())


def test_wrong_activation_backward_is_caught_directly_and_through_a_layer_before():
    with pytest.raises(AssertionError, match="dL/dinput"):
        compare_with_torch(WrongTanhBackward(), torch.nn.Tanh(), _x())
    # behind a Linear the slip also corrupts that Linear's weight gradient; checking only
    # parameter gradients must still catch it
    model = nn.Sequential(nn.Linear(4, 3, rng=0), WrongTanhBackward())
    twin = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh())
    with pytest.raises(AssertionError, match="dL/d0.weight"):
        compare_with_torch(model, twin, _x(), check_input_grad=False)


def test_function_twin_catches_a_wrong_backward():
    twin = lambda x, p: torch.tanh(x)  # noqa: E731
    compare_with_torch(nn.Tanh(), twin, _x())
    with pytest.raises(AssertionError, match="dL/dinput"):
        compare_with_torch(WrongTanhBackward(), twin, _x())


def test_in_place_mutations_are_caught():
    with pytest.raises(AssertionError, match="modified its input"):
        compare_with_torch(MutatesInput(), lambda x, p: torch.relu(x), _x())
    with pytest.raises(AssertionError, match="modified grad_output"):
        compare_with_torch(MutatesGradOutput(), torch.nn.ReLU(), _x())


def test_twin_missing_a_parameter_is_an_error():
    with pytest.raises(KeyError, match="twin has no parameter 'bias'"):
        compare_with_torch(nn.Linear(4, 3, rng=0), torch.nn.Linear(4, 3, bias=False), _x())


def test_twin_with_an_extra_parameter_is_caught():
    """A twin that has a bias our layer lacks keeps its own random bias: the outputs differ."""
    with pytest.raises(AssertionError, match="output"):
        compare_with_torch(nn.Linear(4, 3, bias=False, rng=0), torch.nn.Linear(4, 3, bias=True), _x())


def test_assert_close_tolerance():
    ref = np.array([1.0, -2.0, 3.0])
    assert_close("q", ref * (1 + 1e-9), ref)
    with pytest.raises(AssertionError, match="q differs"):
        assert_close("q", ref * (1 + 1e-6), ref)
    with pytest.raises(AssertionError, match="shape"):
        assert_close("q", ref[:2], ref)
    # entries that cancel to ~0 are judged against the array's scale, not their own
    assert_close("q", np.array([1.0, 1e-17]), np.array([1.0, 0.0]))
    with pytest.raises(AssertionError):
        assert_close("q", np.array([1.0, 1e-5]), np.array([1.0, 0.0]))


def test_layout_conversion_maps_gradients_back():
    """``to_torch`` copies a weight in another layout; gradients are compared in ours."""
    class TransposedLinear(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(np.random.default_rng(0).standard_normal((4, 3)))  # (in, out)

        def forward(self, x):
            self._save_for_backward(x)
            return x @ self.w.data

        def backward(self, g):
            (x,) = self._saved()
            self.w.accumulate_grad(x.T @ g)
            return g @ self.w.data.T

    class Twin(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(3, 4))  # (out, in)

        def forward(self, x):
            return x @ self.w.T

    compare_with_torch(TransposedLinear(), Twin(), _x(), to_torch={"w": lambda a: a.T})


# ---------------------------------------------------------------------- the function-level twin
def _matmul_tanh(defect=None):
    """ours(a, b) for y = tanh(a @ b) and (for a two-output check) s = sum(a); ``defect`` plants one slip."""
    def ours(a, b):
        z = a @ b
        y = np.tanh(z)
        if defect == "output":
            y = y + 1e-6
        if defect == "float32":
            y = y.astype(np.float32)
        if defect == "mutate input":
            a[0, 0] += 1.0
        outputs = (y, float(a.sum()))

        def backward(gy, gs):
            gz = np.zeros_like(y) if gy is None else gy * (1 - y ** 2)
            if defect == "mutate grad":
                gy *= 2
            grads = {"a": gz @ b.T + gs, "b": a.T @ gz}
            if defect == "grad b":
                grads["b"] = grads["b"] * (1 + 1e-5)
            if defect == "missing b":
                del grads["b"]
            return grads

        return outputs, backward

    return ours


def _twin(a, b):
    return torch.tanh(a @ b), a.sum()


def _ab():
    r = np.random.default_rng(5)
    return {"a": r.standard_normal((3, 4)), "b": r.standard_normal((4, 2))}


def test_function_twin_passes_a_correct_function_and_reports_what_it_compared():
    out = compare_fn_with_torch(_ab(), _twin, _matmul_tanh(), output_names=["y", "sum"])
    assert set(out["grads"]) == {"a", "b"} and len(out["outputs"]) == 2
    assert out["grad_outputs"][0].shape == (3, 2) and out["grad_outputs"][1].shape == ()
    # an output the loss does not read: no gradient flows from it, on either side
    out = compare_fn_with_torch(_ab(), _twin, _matmul_tanh(), grad_outputs=[None, 1.0])
    np.testing.assert_array_equal(out["grads"]["b"], np.zeros((4, 2)))


@pytest.mark.parametrize("defect,what", [("output", "y differs"), ("float32", "y: dtype float32"),
                                         ("grad b", "dL/db differs"), ("missing b", r"no gradient for \['b'\]"),
                                         ("mutate input", "modified its input 'a'"),
                                         ("mutate grad", "modified the upstream gradient of y")])
def test_function_twin_catches_each_planted_defect(defect, what):
    with pytest.raises(AssertionError, match=what):
        compare_fn_with_torch(_ab(), _twin, _matmul_tanh(defect), output_names=["y", "sum"])


def test_function_twin_tolerances_and_labels():
    ab = _ab()
    ours = _matmul_tanh()

    def off_by_1e9(a, b):                  # every output off by a relative 1e-9
        (y, s), backward = ours(a, b)
        return (y * (1 + 1e-9), s), backward

    compare_fn_with_torch(ab, _twin, off_by_1e9)                       # passes at rtol 1e-7
    with pytest.raises(AssertionError, match="tight: output differs"):
        compare_fn_with_torch(ab, _twin, off_by_1e9, tolerances={"output": (1e-12, 0.0)}, label="tight")
    with pytest.raises(ValueError, match="unknown quantities"):
        compare_fn_with_torch(ab, _twin, ours, tolerances={"dL/dc": (1e-12, 0.0)})
    with pytest.raises(ValueError, match="1 upstream gradient"):
        compare_fn_with_torch(ab, _twin, ours, grad_outputs=[None])
