"""DEEP on XOR with the notebook's settings (T1 = T2 = 1000, dt 0.05, β 10, dt_W 100): nnlocal's Numba
relaxation against a plain-NumPy version of the notebook's loop and a torch-eager version of it.

The per-epoch work is fixed (T1 + T2 Euler steps and one update), so a run of E epochs costs E times
one epoch; the cases time ``EPOCHS`` epochs (20, or 4 with ``quick``) and the ratio is the same as for
the 200-epoch run of the goal. ``python -m nnlocal.bench.bench_deep [--quick] [--full-run]`` prints the
table; ``--full-run`` also times one complete 200-epoch run on each side once.

Goals (issue #6): nnlocal ≥ 50× faster than NumPy (ratio ≤ 0.02), ≥ 20× faster than torch (≤ 0.05).

Two more tables:

* ``--kernels``: the Numba ``linear_relax`` against its NumPy reference (``reference.linear_relax``)
  on the same arrays, one thread each, at the sizes DEEP is used at (N = 9, 80, 275, 875 neurons
  with 3 clamped units; B = 4 and 64 samples; S = 1 and 8 nets; a nudged phase of 1000 steps, 100
  for N ≥ 275). "A kernel pays or it goes": the ratio must stay ≥ 1 at every size.
* ``--threads``: ``fit_many`` of 8 XOR seeds (notebook settings) with 1 and with 2 Numba threads,
  alternated, medians (goal ≥ 1.7×); the two runs must give bit-identical weights.
"""
from __future__ import annotations

import numpy as np

from nnlocal.bench.common import Case, pin_one_thread, run_case

HP = dict(T1=1000, T2=1000, dt=0.05, beta=10.0, dt_W=100.0)


def _xor():
    from nnlocal.methods.deep import logic_gate

    return logic_gate("XOR")


def _init(seed, N=9, n_x=3):
    """The notebook's init: W ~ N(0, 0.05²), complete-graph constraint."""
    rng = np.random.default_rng(seed)
    W = rng.normal(0.0, 0.05, (N, N))
    mask = np.ones((N, N))
    mask[:, :n_x] = 0
    np.fill_diagonal(mask, 0)
    return W * mask, mask, rng


def numpy_notebook_deep(epochs, seed=0, T1=1000, T2=1000, dt=0.05, beta=10.0, dt_W=100.0):
    """The notebook's training loop in plain NumPy (one array op per Euler step, trajectory stored,
    STDP as one GEMM of the stacked trajectory - the fastest plain-NumPy form of the update)."""
    X, Y = _xor()
    x = np.concatenate([X, np.ones((4, 1))], axis=1)
    W, mask, rng = _init(seed)
    n_x, N = 3, 9
    for _ in range(epochs):
        s = np.concatenate([x, rng.uniform(0, 0.1, (4, N - n_x))], axis=1)
        for _t in range(T1):
            ds = s @ W - s * W.sum(axis=1)
            s[:, n_x:] = np.clip(s[:, n_x:] + dt * ds[:, n_x:], 0, 1)
        traj = [s.copy()]
        for _t in range(T2):
            ds = s @ W - s * W.sum(axis=1)
            ds[:, -1:] += beta * (Y - s[:, -1:])
            s[:, n_x:] = np.clip(s[:, n_x:] + dt * ds[:, n_x:], 0, 1)
            traj.append(s.copy())
        traj = np.stack(traj)
        a1 = traj[1:].reshape(-1, N)
        a2 = (traj[1:] - traj[:-1]).reshape(-1, N)
        W = (W + dt_W / (4 * T2) * (a1.T @ a2)) * mask
    return W


def torch_eager_deep(epochs, seed=0, T1=1000, T2=1000, dt=0.05, beta=10.0, dt_W=100.0):
    """The same loop in torch eager mode (float64, one thread)."""
    import torch

    X, Y = _xor()
    W0, mask0, rng = _init(seed)
    W, mask = torch.tensor(W0), torch.tensor(mask0)
    x = torch.tensor(np.concatenate([X, np.ones((4, 1))], axis=1))
    y = torch.tensor(Y)
    n_x, N = 3, 9
    with torch.no_grad():
        for _ in range(epochs):
            h = torch.tensor(rng.uniform(0, 0.1, (4, N - n_x)))
            s = torch.cat([x, h], dim=1)
            for _t in range(T1):
                ds = s @ W - s * W.sum(dim=1)
                s[:, n_x:] = torch.clamp(s[:, n_x:] + dt * ds[:, n_x:], 0, 1)
            traj = [s.clone()]
            for _t in range(T2):
                ds = s @ W - s * W.sum(dim=1)
                ds[:, -1:] += beta * (y - s[:, -1:])
                s[:, n_x:] = torch.clamp(s[:, n_x:] + dt * ds[:, n_x:], 0, 1)
                traj.append(s.clone())
            traj = torch.stack(traj)
            a1 = traj[1:].reshape(-1, N)
            a2 = (traj[1:] - traj[:-1]).reshape(-1, N)
            W = (W + dt_W / (4 * T2) * (a1.T @ a2)) * mask
    return W.numpy()


def nnlocal_deep(epochs, seed=0, **hp):
    from nnlocal.methods.deep import DEEPNet

    X, Y = _xor()
    net = DEEPNet(2, [5], 1, rng=seed)
    net.fit(X, Y, epochs=epochs, **{**HP, **hp})
    return net.W


def nnlocal_deep_seeds(epochs, n_seeds=20):
    from nnlocal.methods.deep import DEEPNet, fit_many

    X, Y = _xor()
    fit_many([DEEPNet(2, [5], 1, rng=s) for s in range(n_seeds)], X, Y, epochs=epochs, **HP)


def cases(quick: bool = False) -> list[Case]:
    import numba

    pin_one_thread()
    numba.set_num_threads(1)              # fit_many's kernel runs its nets in parallel otherwise
    epochs = 4 if quick else 20
    nnlocal_deep(1)  # compile the kernels outside the timings (and pin the BLAS that Numba loads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    tag = f"DEEP XOR {epochs} epochs, T1=T2=1000"
    out = [
        Case(f"{tag} vs NumPy", lambda: nnlocal_deep(epochs), lambda: numpy_notebook_deep(epochs),
             baseline_name="numpy (notebook loop)", dtype="float64", goal="ratio <= 0.02 (>= 50x)"),
    ]
    try:
        import torch  # noqa: F401

        out.append(Case(f"{tag} vs torch", lambda: nnlocal_deep(epochs), lambda: torch_eager_deep(epochs),
                        baseline_name="torch eager", dtype="float64", goal="ratio <= 0.05 (>= 20x)"))
    except ImportError:  # pragma: no cover
        pass
    n_seeds = 4 if quick else 20
    out.append(Case(f"DEEP XOR {n_seeds} seeds x {epochs // 2} epochs: fit_many vs one by one",
                    lambda: nnlocal_deep_seeds(epochs // 2, n_seeds),
                    lambda: [nnlocal_deep(epochs // 2, s) for s in range(n_seeds)],
                    baseline_name="nnlocal, one net at a time", dtype="float64", goal="ratio < 1"))
    return out


def _relax_problem(N, B, S, n_x=3, seed=0):
    """Arrays of one relaxation: the operator of random complete-graph nets, inputs, states, targets."""
    from nnlocal.methods.deep import reference as R

    rng = np.random.default_rng(seed)
    W = rng.normal(0.0, 0.05, (S, N, N)) * R.complete_mask(n_x, N)
    x = np.concatenate([rng.integers(0, 2, (B, n_x - 1)), np.ones((B, 1))], axis=1)
    M, c = R.deep_linear_operator(W, x)
    s = np.concatenate([np.broadcast_to(x, (S, B, n_x)), rng.uniform(0.0, 0.1, (S, B, N - n_x))], axis=2)
    return M, c, s, rng.integers(0, 2, (B, 1)).astype(float)


def _times(fn, repeat: int) -> tuple[float, float]:
    """Median wall time and median CPU time of this thread (seconds) of ``fn()`` after one warm-up.
    With one thread on each side the CPU time is the fair measure on a shared machine: it does not
    count the time the thread waits for a core."""
    import statistics
    import time

    fn()
    wall, cpu = [], []
    for _ in range(max(1, repeat)):
        w, c = time.perf_counter(), time.thread_time()
        fn()
        cpu.append(time.thread_time() - c)
        wall.append(time.perf_counter() - w)
    return statistics.median(wall), statistics.median(cpu)


def kernel_table(quick: bool = False, repeat: int = 3) -> list[dict]:
    """Numba ``linear_relax`` vs ``reference.linear_relax``, one thread each, same arrays."""
    import numba

    from nnlocal.methods.deep import cpu as K
    from nnlocal.methods.deep import reference as R

    from threadpoolctl import threadpool_limits

    pin_one_thread()
    numba.set_num_threads(1)
    threadpool_limits(limits=1)
    rows = []
    for N in ((9, 80) if quick else (9, 80, 275, 875)):
        for B in (4, 64):
            for S in (1, 8):
                steps = (1000 if N <= 80 else 100) // (10 if quick else 1)
                M, c, s0, y = _relax_problem(N, B, S)
                args = (M, c, s0, 3, 1, steps, 0.05, 10.0, y, 0.0, 1.0, 0.0, None, None, 0.0, 1.0)
                kernel = lambda: K._kernel_linear_relax(M, c, s0.copy(), *args[3:])  # noqa: E731
                ref = lambda: R.linear_relax(M, c, s0.copy(), *args[3:])  # noqa: E731
                (w_k, c_k), (w_r, c_r) = _times(kernel, repeat), _times(ref, repeat)
                rows.append({"N": N, "H": N - 3, "B": B, "S": S, "steps": steps, "kernel_cpu_ms": 1e3 * c_k,
                             "numpy_cpu_ms": 1e3 * c_r, "numpy/kernel (cpu)": c_r / c_k,
                             "numpy/kernel (wall)": w_r / w_k,
                             "cpu.linear_relax runs": "kernel" if K.uses_kernel(B, N - 3) else "numpy"})
    return rows


def thread_scaling(seeds: int = 8, epochs: int = 20, repeat: int = 7) -> dict:
    """``fit_many`` of ``seeds`` XOR nets (DEEP notebook settings) with 1 and 2 Numba threads."""
    import statistics
    import time

    import numba
    from threadpoolctl import threadpool_limits

    from nnlocal.methods.deep import DEEPNet, fit_many

    threadpool_limits(limits=1)
    X, Y = _xor()
    fit_many([DEEPNet(2, [5], 1, rng=s) for s in range(2)], X, Y, epochs=1, **HP)   # compile outside
    times, weights = {1: [], 2: []}, {}
    before = numba.get_num_threads()
    try:
        for _ in range(repeat):
            for threads in (1, 2):
                numba.set_num_threads(threads)
                nets = [DEEPNet(2, [5], 1, rng=s) for s in range(seeds)]
                t0 = time.perf_counter()
                fit_many(nets, X, Y, epochs=epochs, **HP)
                times[threads].append(time.perf_counter() - t0)
                weights[threads] = np.stack([n.W for n in nets])
    finally:
        numba.set_num_threads(before)
    t1, t2 = statistics.median(times[1]), statistics.median(times[2])
    return {"seeds": seeds, "epochs": epochs, "repeats": repeat, "1_thread_ms": 1e3 * t1, "2_threads_ms": 1e3 * t2,
            "speed-up": t1 / t2, "goal": ">= 1.7x", "bit_identical": bool(np.array_equal(weights[1], weights[2])),
            "1_thread_all_ms": " ".join(f"{1e3 * t:.0f}" for t in times[1]),
            "2_threads_all_ms": " ".join(f"{1e3 * t:.0f}" for t in times[2])}


def main(argv=None):
    import argparse
    import os
    import time

    from nnlocal.report import machine_summary, print_table

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--full-run", action="store_true", help="also time one 200-epoch run on each side")
    p.add_argument("--kernels", action="store_true", help="only the Numba linear_relax vs NumPy reference table")
    p.add_argument("--threads", action="store_true", help="only fit_many with 1 vs 2 Numba threads")
    a = p.parse_args(argv)
    print(f"machine: {machine_summary()}; load average {os.getloadavg()[0]:.1f}")
    if a.kernels or a.threads:
        if a.kernels:
            print_table(kernel_table(a.quick, a.repeat), title="DEEP relaxation: Numba kernel vs NumPy reference "
                        "(one thread each; ratio > 1: the kernel is faster)")
        if a.threads:
            print_table([thread_scaling(epochs=4 if a.quick else 20, repeat=max(a.repeat, 3))],
                        title="fit_many, 8 XOR seeds, T1 = T2 = 1000: 1 vs 2 Numba threads (BLAS one thread)")
        return
    rows = [run_case(c, a.repeat) for c in cases(a.quick)]
    print_table(rows, title="DEEP benchmarks (one thread)")
    if a.full_run:
        res = []
        for name, fn in (("nnlocal", nnlocal_deep), ("numpy", numpy_notebook_deep), ("torch", torch_eager_deep)):
            t0 = time.perf_counter()
            fn(200)
            res.append({"impl": name, "seconds_200_epochs": time.perf_counter() - t0})
        for r in res:
            r["speedup_of_nnlocal"] = r["seconds_200_epochs"] / res[0]["seconds_200_epochs"]
        print_table(res, title="one 200-epoch XOR run (T1 = T2 = 1000)")


if __name__ == "__main__":
    main()
