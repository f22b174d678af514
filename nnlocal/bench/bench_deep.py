"""DEEP on XOR with the notebook's settings (T1 = T2 = 1000, dt 0.05, β 10, dt_W 100): nnlocal's Numba
relaxation against a plain-NumPy version of the notebook's loop and a torch-eager version of it.

The per-epoch work is fixed (T1 + T2 Euler steps and one update), so a run of E epochs costs E times
one epoch; the cases time ``EPOCHS`` epochs (20, or 4 with ``quick``) and the ratio is the same as for
the 200-epoch run of the goal. ``python -m nnlocal.bench.bench_deep [--quick] [--full-run]`` prints the
table; ``--full-run`` also times one complete 200-epoch run on each side once.

Goals (issue #6): nnlocal ≥ 50× faster than NumPy (ratio ≤ 0.02), ≥ 20× faster than torch (≤ 0.05).
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
    pin_one_thread()
    epochs = 4 if quick else 20
    nnlocal_deep(1)  # compile the kernels outside the timings
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


def main(argv=None):
    import argparse
    import time

    from nnlocal.report import print_table

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--full-run", action="store_true", help="also time one 200-epoch run on each side")
    a = p.parse_args(argv)
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
