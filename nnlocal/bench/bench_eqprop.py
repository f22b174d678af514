"""Symmetric EP, Scellier & Bengio's net1 (784-500-10, batch 20, 20 free + 4 nudged steps, ε 0.5,
β 0.5, α 0.1 / 0.05, persistent particles, random β sign), float32, one thread, on synthetic data of
MNIST's shape (784 pixels in [0, 1], about 19 % non-zero; random labels - the work does not depend on
the labels).

Cases: nnlocal's epoch (fused Numba relaxation, hoisted input drive, W_0's update as one in-place
BLAS gemm) against a torch-eager version of the same algorithm, and as a fraction of the one-core
roofline (41.4 MFLOP per batch: the two 20×784×500 GEMMs plus 24 relaxation steps of two
20×500×10 products); also the BLAS-per-step kernel variant against the fused one.
A full epoch is 2500 batches; the cases time ``N_BATCHES`` of them (500, or 50 with ``quick``).

``--kernels`` (:func:`kernel_cases`): every ``cpu.py`` function against its NumPy reference on the
same arrays, at the sizes EP is used at (training batches of 20, the deeper 784-500-500-10 net at
batches of 20 and 100, evaluation batches of 297/1000): ``ratio`` = kernel time / reference time,
< 1 means the kernel pays. ``cpu.ep_kernel_for`` serves each size with a kernel that pays there.

Goals (issue #6): ≥ 2× faster than torch eager (ratio ≤ 0.5); ≥ 50 % of the one-core GEMM roofline.
``python -m nnlocal.bench.bench_eqprop [--quick] [--kernels]``.
"""
from __future__ import annotations

import numpy as np

from nnlocal.bench.common import Case, pin_one_thread, run_case
import nnlocal.methods.eqprop.cpu  # noqa: F401  (loads scipy's BLAS before pin_one_thread pins it)

B, N_IN, N_H, N_OUT = 20, 784, 500, 10
N_FREE, N_NUDGED, EPS, BETA, LRS = 20, 4, 0.5, 0.5, (0.1, 0.05)


def flops_per_batch(B=B, n0=N_IN, n1=N_H, n2=N_OUT, steps=N_FREE + N_NUDGED) -> float:
    """x W_0 and the W_0 update (2 GEMMs), the relaxation products, and the W_1 update."""
    return 2 * (2 * B * n0 * n1) + steps * 2 * (2 * B * n1 * n2) + 2 * (2 * B * n1 * n2)


def synthetic_mnist(n, seed=0):
    rng = np.random.default_rng(seed)
    X = (rng.uniform(0, 1, (n, N_IN)) * (rng.uniform(0, 1, (n, N_IN)) < 0.19)).astype(np.float32)
    y = rng.integers(0, 10, n)
    return X, y


def nnlocal_epoch(X, y, kernel="auto", seed=0):
    from nnlocal.methods.eqprop import EPNet

    net = EPNet([N_IN, N_H, N_OUT], rng=seed, kernel=kernel)
    net.fit(X, y, epochs=1, batch_size=B, n_free=N_FREE, n_nudged=N_NUDGED, eps=EPS, beta=BETA, lrs=LRS)
    return net


def torch_epoch(X, y, seed=0):
    """The same algorithm in torch eager mode (float32, one thread): persistent particles, hoisted
    input drive, synchronous clipped steps, the EP update with random β sign."""
    import torch

    rng = np.random.default_rng(seed)
    l0, l1 = np.sqrt(6 / (N_IN + N_H)), np.sqrt(6 / (N_H + N_OUT))
    W0 = torch.tensor(rng.uniform(-l0, l0, (N_IN, N_H)), dtype=torch.float32)
    W1 = torch.tensor(rng.uniform(-l1, l1, (N_H, N_OUT)), dtype=torch.float32)
    b1, b2 = torch.zeros(N_H), torch.zeros(N_OUT)
    Xt = torch.from_numpy(X)
    Yt = torch.nn.functional.one_hot(torch.from_numpy(y), N_OUT).float()
    ph, po = torch.zeros(len(X), N_H), torch.zeros(len(X), N_OUT)
    signs = rng.choice((-1.0, 1.0), size=len(X) // B)
    with torch.no_grad():
        for i in range(len(X) // B):
            sl = slice(i * B, (i + 1) * B)
            x, yb = Xt[sl], Yt[sl]
            c = x @ W0 + b1
            h, o = ph[sl].clone(), po[sl].clone()
            for _ in range(N_FREE):
                h, o = (torch.clamp(h + EPS * (c + o @ W1.T - h), 0, 1),
                        torch.clamp(o + EPS * (h @ W1 + b2 - o), 0, 1))
            ph[sl], po[sl] = h, o
            hf, of = h, o
            beta = BETA * signs[i]
            for _ in range(N_NUDGED):
                h, o = (torch.clamp(h + EPS * (c + o @ W1.T - h), 0, 1),
                        torch.clamp(o + EPS * (h @ W1 + b2 - o + beta * (yb - o)), 0, 1))
            a0, a1 = LRS[0] / (beta * B), LRS[1] / (beta * B)
            W0.addmm_(x.T, h - hf, alpha=a0)
            W1 += a1 * (h.T @ o - hf.T @ of)
            b1 += a0 * (h - hf).sum(0)
            b2 += a1 * (o - of).sum(0)
    return W0


def cases(quick: bool = False) -> list[Case]:
    pin_one_thread()
    n_batches = 50 if quick else 500
    X, y = synthetic_mnist(n_batches * B)
    nnlocal_epoch(X[:40], y[:40])  # compile outside the timings
    nnlocal_epoch(X[:40], y[:40], kernel="blas")
    fl = flops_per_batch() * n_batches
    tag = f"EP 784-500-10, {n_batches} batches of 20"
    out = []
    try:
        import torch  # noqa: F401

        out.append(Case(f"{tag} vs torch eager", lambda: nnlocal_epoch(X, y), lambda: torch_epoch(X, y),
                        baseline_name="torch eager", flops=fl, dtype="float32",
                        goal="ratio <= 0.5 (>= 2x), roofline >= 0.5"))
    except ImportError:  # pragma: no cover
        out.append(Case(tag, lambda: nnlocal_epoch(X, y), flops=fl, dtype="float32", goal="roofline >= 0.5"))
    out.append(Case(f"{tag}: fused kernel vs BLAS-per-step kernel", lambda: nnlocal_epoch(X, y),
                    lambda: nnlocal_epoch(X, y, kernel="blas"), baseline_name="nnlocal kernel='blas'",
                    flops=fl, dtype="float32", goal="ratio < 1 (fused wins at 500x10)"))
    return out


#: (layer sizes, batch, steps, what uses it) for the kernel table
KERNEL_SIZES = [
    ([784, 500, 10], 20, 20, "net1 training batch (free phase)"),
    ([64, 500, 10], 297, 50, "tour: test evaluation of the 8x8 digits"),
    ([784, 500, 10], 1000, 100, "net1 predict() chunk"),
    ([784, 500, 500, 10], 20, 20, "two hidden layers, training batch"),
    ([784, 500, 500, 10], 100, 20, "two hidden layers, batch 100"),
    ([784, 500, 500, 10], 1000, 100, "two hidden layers, predict() chunk"),
]


def _kernel_cases_at(sizes, B, steps, use, rng) -> list[Case]:
    from nnlocal.methods.eqprop import EPNet, cpu, reference

    net = EPNet(sizes, rng=0)
    x = (rng.uniform(0, 1, (B, sizes[0])) * (rng.uniform(0, 1, (B, sizes[0])) < 0.19)).astype(np.float32)
    c, s0, vt, b = net.input_drive(x), np.zeros((B, net.H), np.float32), net._vt, net._b
    tag = f"{'-'.join(map(str, sizes))} B={B}"
    chosen = cpu.ep_kernel_for(sizes[1:], B)

    def relax(fn):
        return lambda: fn(c, vt, b, s0.copy(), sizes[1:], steps, 0.5)

    out = [Case(f"ep_relax_{name} {tag} T={steps}", relax(getattr(cpu, "ep_relax_" + name)),
                relax(reference.ep_relax), baseline_name="reference.ep_relax", dtype="float32",
                extra={"used_at": use, "serves": "yes" if name == chosen else "-"}) for name in ("fused", "blas")]
    if steps == 20:                     # a training size: the learning rule too
        s1 = net.relax(x, 20)
        s2 = net.relax(x, 4, beta=0.5, target=rng.integers(0, 10, B), state=s1)
        free, nudged, W, bs = net.layers(s1), net.layers(s2), net._weights(), net._biases()

        def update(K):    # tiny rates: the weights stay what they were
            return lambda: K.ep_update(x, free, nudged, W, bs, 0.5, [1e-9] * net.L)

        out.append(Case(f"ep_update {tag}", update(cpu), update(reference), baseline_name="reference.ep_update",
                        dtype="float32", extra={"used_at": use, "serves": "yes"}))
    return out


def kernel_cases(quick: bool = False) -> list[Case]:
    """Each ``cpu.py`` kernel against ``reference.py`` on the same arrays (float32, one thread)."""
    pin_one_thread()
    rng = np.random.default_rng(0)
    return [case for sizes, B, steps, use in (KERNEL_SIZES[:2] if quick else KERNEL_SIZES)
            for case in _kernel_cases_at(sizes, B, steps, use, rng)]


def run_interleaved(case: Case, repeat: int = 7) -> dict:
    """Like ``run_case``, but the kernel and its reference alternate and the minimum of ``repeat`` runs
    each is reported: on a shared machine, load bursts then hit both sides alike."""
    import time

    best = [float("inf"), float("inf")]
    for fn in (case.nnlocal, case.baseline):   # warm-up (and compilation)
        fn()
    for _ in range(repeat):
        for i, fn in enumerate((case.nnlocal, case.baseline)):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return {"benchmark": case.name, "kernel_ms": 1e3 * best[0], "baseline": case.baseline_name,
            "reference_ms": 1e3 * best[1], "ratio": best[0] / best[1], **case.extra}


def main(argv=None):
    import argparse

    from nnlocal.report import machine_summary, print_table

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--kernels", action="store_true", help="time each cpu.py kernel against its NumPy reference")
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args(argv)
    if a.kernels:
        rows = [run_interleaved(c, max(a.repeat, 5)) for c in kernel_cases(a.quick)]
        print_table(rows, title=f"EP kernels vs the NumPy reference (one thread, float32) - {machine_summary()}")
        return
    n_batches = 50 if a.quick else 500
    rows = []
    for c in cases(a.quick):
        r = run_case(c, a.repeat)
        r["epoch_s_estimate"] = r["nnlocal_ms"] / 1e3 * 2500 / n_batches   # 50,000 examples
        rows.append(r)
    print_table(rows, title=f"EP benchmarks (one thread, float32) - {machine_summary()}")


if __name__ == "__main__":
    main()
