"""Every method class that takes ``device="cuda"`` trains like ``device="cpu"``: the short
trainings of ``tests/trainings.py`` (the same ones the numpy/numba equivalence test runs), on the
simulator (or a GPU), against the CPU run of the same training."""
import pytest

from nnlocal import kernels
from tests.trainings import CUDA_TRAININGS, assert_same_training, run


@pytest.mark.parametrize("name", CUDA_TRAININGS)
def test_cuda_training_equals_cpu(name, gpu):
    with kernels.use("numba"):             # the CPU kernels, as in normal use
        on_cpu = run(name, "cpu")
    on_gpu = run(name, "cuda")
    # block reductions are trees: sums differ from the CPU's serial sums by rounding only
    assert_same_training(on_gpu, on_cpu, rtol=1e-9, atol=1e-12, what=f"{name}: cuda vs cpu")
