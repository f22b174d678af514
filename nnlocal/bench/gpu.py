"""CPU vs GPU time of every CUDA kernel at realistic sizes (needs an NVIDIA GPU).

    python -m nnlocal.bench.gpu                 # full sizes, prints one table
    python -m nnlocal.bench.gpu --repeat 10     # more timed runs per cell (median reported)

Not a ``bench_*.py`` file on purpose: ``nnlocal bench`` runs on CPU-only machines and does not
pick this one up. Without a usable GPU the script exits with a message (status 1). ``--quick
--allow-simulator`` runs tiny sizes under ``NUMBA_ENABLE_CUDASIM=1`` to check that the script works;
its timings are meaningless.

Columns (milliseconds, median of ``--repeat`` runs after one warm-up run that also compiles):

* ``cpu``: the CPU kernel (each method's ``cpu.py``), one thread (BLAS and Numba pinned);
* ``gpu``: the GPU twin with the CPU signature (host arrays in and out, so every call uploads its
  inputs and downloads its results; the large read-only weights are passed as device arrays
  where a class would cache them, marked ``(cached W)``);
* ``gpu resident``: the ``*_device`` variant with everything already on the device (kernel time,
  synchronised);
* ``speedup`` = cpu / gpu and cpu / gpu resident.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

import numpy as np

from nnlocal.bench.common import pin_one_thread


def _median_ms(fn, repeat, sync=None):
    fn()                                    # warm-up (and JIT compilation on the first call)
    if sync:
        sync()
    times = []
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def _cases(gpu, cpu, quick: bool):
    """(name, size, cpu_fn, gpu_fn, resident_fn) for every kernel family."""
    from numba import cuda

    from nnlocal.methods.deep import DEEPNet
    from nnlocal.methods.eqprop import EPNet

    rng = np.random.default_rng(0)
    f32 = np.float32
    cases = []

    # ---- symmetric EP, Scellier & Bengio's 784-500-10, 20 free steps (float32); the input drive
    # c = x W_0 is a per-batch BLAS product outside the kernel on both sides (not timed)
    sizes = [16, 8, 4] if quick else [784, 500, 10]
    steps = 3 if quick else 20
    net = EPNet(sizes, rng=0, dtype=f32)
    vt = cpu.ep_pack_couplings(net.weights[1:], f32)
    bias = np.concatenate(net.biases)
    d_vt, d_b = cuda.to_device(vt), cuda.to_device(bias)

    def ep_case(B):
        c = net.input_drive(rng.uniform(0, 1, (B, sizes[0])).astype(f32))
        s0 = np.zeros((B, net.H), f32)
        d_c, d_s = cuda.to_device(c), cuda.to_device(s0)
        return (f"EP relax {'-'.join(map(str, sizes))}", f"B={B}, T={steps} (cached W)",
                lambda: cpu.ep_relax(c, vt, bias, s0.copy(), sizes[1:], steps, 0.5),
                lambda: gpu.ep_relax(c, d_vt, d_b, s0.copy(), sizes[1:], steps, 0.5),
                lambda: gpu.ep_relax_device(d_c, d_vt, d_b, d_s, sizes[1:], steps, 0.5))

    cases += [ep_case(B) for B in ([2] if quick else [20, 256])]

    # ---- DEEP on XOR (3-5-1 complete graph), many seeds batched, 1000 Euler steps (float64)
    S = 2 if quick else 1024
    steps = 3 if quick else 1000
    nets = [DEEPNet(2, [5], 1, rng=i) for i in range(S)]
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    Y = np.array([[0], [1], [1], [0]], float)
    W = np.stack([n.W for n in nets])
    s0 = np.stack([n.init_state(X) for n in nets])
    n_x = nets[0].n_x
    M, c = cpu.deep_linear_operator(W, s0[0, :, :n_x])
    d_M, d_cc, d_s = cuda.to_device(M), cuda.to_device(c), cuda.to_device(s0)
    cases.append(("DEEP relax XOR 3-5-1", f"S={S} seeds, B=4, T={steps}",
                  lambda: cpu.linear_relax(M, c, s0.copy(), n_x, 1, steps, 0.05),
                  lambda: gpu.linear_relax(d_M, d_cc, s0.copy(), n_x, 1, steps, 0.05),
                  lambda: gpu.linear_relax_device(d_M, d_cc, d_s, n_x, 1, steps, 0.05)))
    N = s0.shape[2]
    raw = np.empty((S, N, N))
    traj = np.empty((S, steps + 1, 4, N))
    d_stdp = cuda.device_array((S, N, N))

    def cpu_nudged_stdp():  # the CPU path of DEEP's fit: record the trajectory, then one GEMM per net
        _, n = cpu.linear_relax(M, c, s0.copy(), n_x, 1, steps, 0.05, 10.0, Y, traj=traj)
        return cpu.stdp_accumulate(traj, n)

    cases.append(("DEEP nudged phase + STDP", f"S={S} seeds, B=4, T={steps}", cpu_nudged_stdp,
                  lambda: gpu.linear_relax(d_M, d_cc, s0.copy(), n_x, 1, steps, 0.05, 10.0, Y, stdp=raw),
                  lambda: gpu.linear_relax_device(d_M, d_cc, d_s, n_x, 1, steps, 0.05, 10.0, Y, stdp=d_stdp)))

    # ---- PAN 400 -> 120, batch 64 (float32; TW is 76.8 MB)
    n, m, B = (4, 3, 2) if quick else (400, 120, 64)
    K = m * n
    tw = rng.standard_normal((K, n), dtype=f32)
    tb = rng.standard_normal(K, dtype=f32)
    sw = rng.standard_normal((m, n), dtype=f32)
    sb = rng.standard_normal(m, dtype=f32)
    x = rng.uniform(0, 1, (B, n)).astype(f32)
    s = x.sum(axis=0)
    d_tw, d_s_, d_tb = cuda.to_device(tw), cuda.to_device(s), cuda.to_device(tb)
    mask1 = np.empty(K, np.bool_)
    cases.append((f"PAN batch gate {n}->{m}", f"B={B}, TW {K}x{n} (cached W)",
                  lambda: cpu.pan_batch_gate(tw, s, tb, f32(B), f32(0.0), mask1),
                  lambda: gpu.pan_batch_gate(d_tw, s, tb, B, 0.0, mask1),
                  lambda: gpu.pan_batch_gate_device(d_tw, d_s_, d_tb, B, 0.0)))
    maskB = np.empty((B, K), np.bool_)

    def cpu_sample_gate():
        return cpu.pan_bias_threshold(x @ tw.T, tb, f32(0.0), maskB)

    cases.append((f"PAN per-sample gate {n}->{m}", f"B={B} (GEMM + threshold; cached W)", cpu_sample_gate,
                  lambda: gpu.pan_sample_gate(d_tw, x, tb, 0.0, maskB),
                  None))
    mask = cpu_sample_gate().reshape(B, m, n)
    y = np.empty((B, m), f32)
    g = rng.standard_normal((B, m), dtype=f32)
    gsw, gx = np.empty_like(sw), np.empty_like(x)
    cases.append((f"PAN sample forward {n}->{m}", f"B={B}",
                  lambda: cpu.pan_sample_forward(mask, sw, x, sb, y),
                  lambda: gpu.pan_sample_forward(mask, sw, x, sb, y), None))
    cases.append((f"PAN sample backward {n}->{m}", f"B={B}",
                  lambda: cpu.pan_sample_backward(mask, sw, x, g, gsw, gx),
                  lambda: gpu.pan_sample_backward(mask, sw, x, g, gsw, gx), None))

    # ---- kWTA threshold, 256 x 512, 5 % winners
    B, D = (2, 16) if quick else (256, 512)
    k = math.ceil(0.05 * D)
    xk = rng.standard_normal((B, D), dtype=f32)
    d_xk = cuda.to_device(xk)
    cases.append(("kWTA threshold", f"{B}x{D}, k={k}",
                  lambda: cpu.kwta_threshold(xk, k, True),
                  lambda: gpu.kwta_threshold(xk, k, True),
                  lambda: gpu.kwta_select_device(d_xk, k)))

    # ---- GaLU on a BU-TD feature map
    shape = (2, 2, 4, 4) if quick else (128, 64, 16, 16)
    xg = rng.standard_normal(shape, dtype=f32)
    cg = rng.standard_normal(shape, dtype=f32)
    d_xg, d_cg = cuda.to_device(xg), cuda.to_device(cg)
    d_out = cuda.device_array(shape, f32)
    cases.append(("GaLU (ReLU + gate)", "x".join(map(str, shape)),
                  lambda: cpu.galu(xg, cg, True),
                  lambda: gpu.galu(xg, cg, True),
                  lambda: gpu.galu_device(d_xg, d_cg, True, d_out)))
    return cases


def _merged(kind: str):
    """One namespace with the public functions of every method's ``cpu.py`` or ``cuda.py``."""
    import importlib
    import types

    ns = {}
    for method in ("deep", "eqprop", "pan", "kwta", "butd"):
        mod = importlib.import_module(f"nnlocal.methods.{method}.{kind}")
        ns.update({name: getattr(mod, name) for name in mod.__all__})
    return types.SimpleNamespace(**ns)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per cell (median; default 5)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test of this script)")
    ap.add_argument("--allow-simulator", action="store_true",
                    help="run under NUMBA_ENABLE_CUDASIM=1 (timings meaningless; with --quick only)")
    args = ap.parse_args(argv)

    from nnlocal.kernels import check_device, cuda_available
    from nnlocal.report import machine_summary

    simulated = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
    if simulated and not (args.allow_simulator and args.quick):
        raise SystemExit("nnlocal.bench.gpu: NUMBA_ENABLE_CUDASIM=1 is set - the simulator is not a GPU, so there "
                         "is nothing to time. Unset it and run on a machine with an NVIDIA GPU (or pass "
                         "--quick --allow-simulator to smoke-test this script).")
    if not cuda_available():
        try:
            check_device("cuda", "nnlocal.bench.gpu")
        except RuntimeError as exc:
            raise SystemExit(f"nnlocal.bench.gpu: no usable GPU, nothing to time.\n{exc}") from None
    pin_one_thread()
    gpu, cpu = _merged("cuda"), _merged("cpu")
    from numba import cuda

    name = "CUDA simulator" if simulated else cuda.get_current_device().name
    name = name.decode() if isinstance(name, bytes) else name
    print(f"GPU: {name}; CPU side: one thread. Median of {args.repeat} runs, milliseconds.")
    print(f"machine: {machine_summary(torch=False)}\n")
    header = f"{'kernel':<30} {'size':<36} {'cpu':>9} {'gpu':>9} {'gpu resident':>13} {'speedup':>16}"
    print(header)
    print("-" * len(header))
    for label, size, f_cpu, f_gpu, f_res in _cases(gpu, cpu, args.quick):
        t_cpu = _median_ms(f_cpu, args.repeat)
        t_gpu = _median_ms(f_gpu, args.repeat, cuda.synchronize)
        t_res = _median_ms(f_res, args.repeat, cuda.synchronize) if f_res is not None else float("nan")
        speed = f"{t_cpu / t_gpu:.1f}x" + (f" / {t_cpu / t_res:.1f}x" if f_res is not None else "")
        res = f"{t_res:13.3f}" if f_res is not None else f"{'-':>13}"
        print(f"{label:<30} {size:<36} {t_cpu:9.3f} {t_gpu:9.3f} {res} {speed:>16}", flush=True)
    if simulated:
        print("\n(simulator run: the GPU columns time Python threads, not a GPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
