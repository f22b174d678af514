"""Compile every kernel of every method's ``cuda.py`` to PTX for a real GPU - no GPU needed.

The simulator runs the kernels as Python and never compiles them, so it cannot catch what only the
real CUDA target rejects (typing, unsupported features) or a float32 kernel silently computing in
float64. This script compiles each kernel with NVVM for ``sm_80`` in float32 and float64 and checks
that the float32 PTX has no ``.f64`` instruction. It needs NVVM, e.g.::

    pip install --target /tmp/nvcc nvidia-cuda-nvcc-cu12
    CUDA_HOME=/tmp/nvcc/nvidia/cuda_nvcc python tests/cudasim/ptx_check.py

(about 15 s of CPU). Not collected by pytest (its name does not start with ``test_``); exit status
0 when every kernel compiles.
"""
import os
import sys
from pathlib import Path

if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
    sys.exit("ptx_check.py: unset NUMBA_ENABLE_CUDASIM (the simulator does not compile kernels)")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from numba import cuda  # noqa: E402
from numba import types as T  # noqa: E402

import nnlocal.methods.butd.cuda as GALU  # noqa: E402
import nnlocal.methods.deep.cuda as DEEP  # noqa: E402
import nnlocal.methods.eqprop.cuda as EP  # noqa: E402
import nnlocal.methods.kwta.cuda as KWTA  # noqa: E402
import nnlocal.methods.pan.cuda as PAN  # noqa: E402


def _sigs(f):
    ds = "<f4" if f == T.float32 else "<f8"
    F1, F2, F3, F4 = (T.Array(f, n, "C") for n in (1, 2, 3, 4))
    I1 = T.Array(T.int64, 1, "C")
    B1, B2, B3 = (T.Array(T.boolean, n, "C") for n in (1, 2, 3))
    i64, b = T.int64, T.boolean
    return {
        "linear_relax": (DEEP._linear_relax_kernel(ds),
                         (F3, F3, F3, F3, i64, i64, i64, f, f, F2, f, f, f, F2, I1, b, F4, b, f, f, F3)),
        "ep_relax": (EP._ep_relax_kernel(ds), (F2, F1, F1, F2, F2, I1, I1, I1, i64, f, f, F2, f, f, F2)),
        "sum_over_batch": (EP._sum_over_batch, (F2, f, F1)),
        "stdp": (DEEP._stdp_kernel, (F4, I1, f, f, F3)),
        "ep_elementwise": (EP._ep_elementwise_kernel, (F2, F2, f, f, F2, i64, f, f, F2)),
        "pan_batch_gate": (PAN._batch_gate_kernel(ds), (F2, F1, F1, f, f, f, B1)),
        "pan_sample_gate 16x16": (PAN._sample_gate_kernel(ds, 16, 16), (F2, F2, F1, f, f, B2)),
        "pan_sample_gate 2x128": (PAN._sample_gate_kernel(ds, 2, 128), (F2, F2, F1, f, f, B2)),
        "pan_bias_threshold": (PAN._bias_threshold_kernel, (F2, F1, f, B2)),
        "pan_sample_forward": (PAN._sample_forward_kernel, (B3, F2, F2, F1, F2)),
        "pan_sample_backward (w)": (PAN._sample_backward_w_kernel, (B3, F2, F2, f, F2)),
        "pan_sample_backward (x)": (PAN._sample_backward_x_kernel, (B3, F2, F2, f, F2)),
        "pan_sample_gate_grad": (PAN._sample_gate_grad_kernel, (F2, F2, F2, F3)),
        "pan_add_outer": (PAN._add_outer_kernel, (F2, F1, F1)),
        "galu (float gate)": (GALU._galu_kernel, (F1, F1, b, f, F1)),
        "galu (int gate)": (GALU._galu_kernel, (F1, I1, b, f, F1)),
        "galu (bool gate)": (GALU._galu_kernel, (F1, B1, b, f, F1)),
        "kwta select": (KWTA._kwta_kernel, (F2, i64, f, f, F1, F1, F1, I1, I1)),
        "kwta winners": (KWTA._winners_kernel, (F2, F1, B2)),
    }


def main() -> int:
    bad = 0
    for f in (T.float32, T.float64):
        for name, (kernel, sig) in _sigs(f).items():
            try:
                ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=(8, 0))
            except Exception as exc:  # report every kernel, not just the first failure
                bad += 1
                print(f"FAIL {f} {name}: {str(exc).splitlines()[0][:300]}")
                continue
            f64 = ptx.count(".f64") if f == T.float32 else 0
            bad += f64 > 0
            print(f"{'ok  ' if f64 == 0 else 'FAIL'} {f} {name}" + (f" ({f64} float64 instructions)" if f64 else ""))
    print(f"{bad} failed" if bad else "all kernels compile to PTX")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
