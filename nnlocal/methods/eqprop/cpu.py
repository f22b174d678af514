r"""Numba twins of :mod:`nnlocal.methods.eqprop.reference` (selected by ``nnlocal.kernels.use("numba")``).

Two ways to run :func:`~nnlocal.methods.eqprop.reference.ep_relax` fast, each paying at some sizes:

* **fused** (:func:`ep_relax_fused`): the whole relaxation in one Numba loop, two samples and two
  coupling rows at a time, all steps of a pair with its couplings in cache. Best while the
  couplings between non-input layers are small (784-500-10: one 500×10 coupling).
* **blas** (:func:`ep_relax_blas`): the reference's step loop (the drives as BLAS GEMMs over the
  batch) with the elementwise half fused in Numba (:func:`ep_update_elementwise`). Best for large
  couplings at large batches (784-500-500-10 at batch ≥ 64), where a GEMM reads each coupling once
  per step for the whole batch and the fused loop reads it once per pair of samples.

:func:`ep_relax` chooses between them by size with :func:`ep_kernel_for` - the one place where that
rule lives (``EPNet(kernel="auto")`` asks it). The measured table is in ``docs/eqprop.md``
(``python -m nnlocal.bench.bench_eqprop --kernels``).

:func:`ep_update` is the learning rule with W_0's update as one in-place BLAS gemm (no temporary).

NaN: the kernels are compiled with fast-math flags that keep IEEE NaN/inf semantics (no ``nnan``,
``ninf``), so a NaN input propagates exactly as in the reference's ``np.clip`` (a plain
``fastmath=True`` lets LLVM turn the clip into min/max, which maps NaN to a bound).
dtype: every kernel computes in the dtype of its state array; scalars (ε, β, bounds) are cast to it
by the wrappers (a Python float inside ``@njit`` would silently promote float32 to float64).
"""
from __future__ import annotations

import numpy as np
import numba
from numba import njit, prange

from .reference import ep_pack_couplings, ep_relax as _reference_relax, rho

# the twins of reference.py's functions (cuda.py offers the same names); ep_relax_fused, ep_relax_blas and
# ep_kernel_for are this module's own choice between its two kernels
__all__ = ["ep_relax", "ep_update_elementwise", "ep_update", "ep_pack_couplings"]

#: LLVM fast-math flags without ``nnan``/``ninf``: reassociation (vectorised sums) but IEEE NaN handling
_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

#: the size rule of :func:`ep_kernel_for` (measured; docs/eqprop.md): the BLAS variant serves batches of at
#: least ``BLAS_MIN_BATCH`` examples when a coupling between non-input layers has ``BLAS_MIN_COUPLING`` entries
BLAS_MIN_COUPLING = 65536
BLAS_MIN_BATCH = 64


def ep_kernel_for(sizes, batch: int) -> str:
    """Which kernel serves a relaxation of a batch of ``batch`` examples through non-input layers
    ``sizes``: ``"blas"`` when a coupling between non-input layers has at least ``BLAS_MIN_COUPLING``
    entries and the batch has at least ``BLAS_MIN_BATCH`` examples, else ``"fused"``."""
    sizes = [int(n) for n in sizes]
    big = any(a * b >= BLAS_MIN_COUPLING for a, b in zip(sizes[:-1], sizes[1:]))
    return "blas" if big and batch >= BLAS_MIN_BATCH else "fused"


def ep_relax(c, vt, bias, s, sizes, steps, eps, beta=0.0, target=None):
    """:func:`~nnlocal.methods.eqprop.reference.ep_relax` by the kernel that is fastest at this size
    (:func:`ep_kernel_for`). Same arguments, same in-place update, same ``residuals`` (steps,)."""
    relax = ep_relax_blas if ep_kernel_for(sizes, s.shape[0]) == "blas" else ep_relax_fused
    return relax(c, vt, bias, s, sizes, steps, eps, beta, target)


def _ep_relax_loops(c, vt, bias, s, sizes, steps, eps, beta, target, lo, hi, residuals):
    # Two samples and two coupling rows at a time: each row is loaded once for both samples, the four
    # dot products are independent chains, and the down-drive is loaded/stored once per two rows
    # (measured 1.5x faster than one row at a time). An odd batch pairs its last sample with itself.
    # The pairs are independent (each owns its rows of s): in _ep_relax_parallel they are spread over the
    # Numba threads (prange; a plain range in _ep_relax_serial). Each pair writes its own squared steps
    # into pair_res, summed afterwards in pair order, so the residuals are the same on any number of threads.
    B, H = s.shape
    L = sizes.shape[0]
    off = np.zeros(L + 1, dtype=np.int64)
    for l in range(L):
        off[l + 1] = off[l] + sizes[l]
    woff = np.zeros(L, dtype=np.int64)
    for l in range(L - 1):
        woff[l + 1] = woff[l] + sizes[l] * sizes[l + 1]
    out0 = off[L - 1]
    n_out = sizes[L - 1]
    zero = eps - eps  # 0 in the state dtype (a literal 0.0 would promote float32 to float64)
    n_pairs = (B + 1) // 2
    pair_res = np.zeros((n_pairs, 2, steps), dtype=residuals.dtype)
    for pair in prange(n_pairs):
        b0 = 2 * pair
        b1 = min(b0 + 1, B - 1)
        x0 = np.empty(H, dtype=s.dtype)
        x1 = np.empty(H, dtype=s.dtype)
        d0 = np.empty(H, dtype=s.dtype)
        d1 = np.empty(H, dtype=s.dtype)
        for h in range(H):
            x0[h] = s[b0, h]
            x1[h] = s[b1, h]
        for t in range(steps):
            # drives: bias, and the hoisted input drive on the first layer
            for h in range(H):
                d0[h] = bias[h]
                d1[h] = bias[h]
            for h in range(sizes[0]):
                d0[h] += c[b0, h]
                d1[h] += c[b1, h]
            # one pass over each row of V_l^T: up (dot) into layer l+1, down (axpy) into layer l
            for l in range(L - 1):
                nl = sizes[l]
                o_lo = off[l]
                o_hi = off[l + 1]
                base = woff[l]
                xl0 = x0[o_lo:o_hi]  # views indexed from 0 in the inner loop: LLVM vectorises it
                xl1 = x1[o_lo:o_hi]
                dl0 = d0[o_lo:o_hi]
                dl1 = d1[o_lo:o_hi]
                m = sizes[l + 1]
                j = 0
                while j + 1 < m:  # two rows per pass: half the loads and stores of the down-drive
                    wa = vt[base + j * nl: base + (j + 1) * nl]
                    wb = vt[base + (j + 1) * nl: base + (j + 2) * nl]
                    s0a = x0[o_hi + j]
                    s1a = x1[o_hi + j]
                    s0b = x0[o_hi + j + 1]
                    s1b = x1[o_hi + j + 1]
                    a0a = zero
                    a1a = zero
                    a0b = zero
                    a1b = zero
                    for i in range(nl):
                        u = wa[i]
                        w = wb[i]
                        p = xl0[i]
                        q = xl1[i]
                        a0a += u * p
                        a1a += u * q
                        a0b += w * p
                        a1b += w * q
                        dl0[i] += s0a * u + s0b * w
                        dl1[i] += s1a * u + s1b * w
                    d0[o_hi + j] += a0a
                    d1[o_hi + j] += a1a
                    d0[o_hi + j + 1] += a0b
                    d1[o_hi + j + 1] += a1b
                    j += 2
                if j < m:         # an odd last row
                    wrow = vt[base + j * nl: base + (j + 1) * nl]
                    s0 = x0[o_hi + j]
                    s1 = x1[o_hi + j]
                    a0 = zero
                    a1 = zero
                    for i in range(nl):
                        w = wrow[i]
                        a0 += w * xl0[i]
                        a1 += w * xl1[i]
                        dl0[i] += s0 * w
                        dl1[i] += s1 * w
                    d0[o_hi + j] += a0
                    d1[o_hi + j] += a1
            if beta != 0:
                for k in range(n_out):
                    d0[out0 + k] += beta * (target[b0, k] - x0[out0 + k])
                    d1[out0 + k] += beta * (target[b1, k] - x1[out0 + k])
            r0 = zero
            r1 = zero
            for h in range(H):
                old = x0[h]
                v = old + eps * (d0[h] - old)
                if v < lo:
                    v = lo
                elif v > hi:
                    v = hi
                x0[h] = v
                r0 += (v - old) * (v - old)
                old = x1[h]
                v = old + eps * (d1[h] - old)
                if v < lo:
                    v = lo
                elif v > hi:
                    v = hi
                x1[h] = v
                r1 += (v - old) * (v - old)
            pair_res[pair, 0, t] = r0
            pair_res[pair, 1, t] = r1
        for h in range(H):
            s[b0, h] = x0[h]
            s[b1, h] = x1[h]
    for pair in range(n_pairs):          # in pair order: the same sums on any number of threads
        for t in range(steps):
            residuals[t] += pair_res[pair, 0, t]
            if 2 * pair + 1 < B:
                residuals[t] += pair_res[pair, 1, t]


#: the same loops compiled twice: on one thread, and with the sample pairs over the Numba threads
_ep_relax_serial = njit(cache=True, fastmath=_FASTMATH)(_ep_relax_loops)
_ep_relax_parallel = njit(cache=True, fastmath=_FASTMATH, parallel=True)(_ep_relax_loops)

#: work (samples x steps x coupling entries between non-input layers) from which the pairs are spread over
#: the threads: a parallel region costs little on a quiet machine, but on a busy one each can wait a whole
#: time slice for its second thread; a training batch of net1 (20 x 24 x 5,000 = 2.4e6) measured up to
#: 10x slower on two threads of this shared machine, a predict() chunk (1000 x 100 x 5,000) gains
PARALLEL_MIN_WORK = 5e7


def _relax_kernel(batch, steps, sizes):
    """The serial or the threaded compilation of the fused loops, by the work of one call."""
    work = batch * steps * sum(int(a) * int(b) for a, b in zip(sizes[:-1], sizes[1:]))
    return _ep_relax_parallel if work >= PARALLEL_MIN_WORK and numba.get_num_threads() > 1 else _ep_relax_serial


def ep_relax_fused(c, vt, bias, s, sizes, steps, eps, beta=0.0, target=None):
    r"""The relaxation all fused in Numba (two samples at a time, all their steps with the couplings in
    cache). Arguments and result as :func:`~nnlocal.methods.eqprop.reference.ep_relax`: ``c`` (B,
    sizes[0]) input drive, ``vt`` (P,) packed transposed couplings, ``bias`` (H,), ``s`` (B, H) updated
    in place, ``sizes`` (L,), ``target`` (B, sizes[-1]); returns ``residuals`` (steps,)."""
    dtype = s.dtype
    t = dtype.type
    sizes = np.asarray(sizes, dtype=np.int64)
    if target is None or beta == 0:
        target = np.zeros((s.shape[0], int(sizes[-1])), dtype=dtype)
    residuals = np.zeros(int(steps), dtype=dtype)
    kernel = _relax_kernel(s.shape[0], int(steps), sizes)
    kernel(np.ascontiguousarray(c, dtype=dtype), np.ascontiguousarray(vt, dtype=dtype),
                     np.ascontiguousarray(bias, dtype=dtype), s, sizes, int(steps), t(eps), t(beta),
                     np.ascontiguousarray(target, dtype=dtype), t(0), t(1), residuals)
    return residuals


def ep_relax_blas(c, vt, bias, s, sizes, steps, eps, beta=0.0, target=None):
    """The reference's step loop (drives by BLAS GEMMs) with the Numba :func:`ep_update_elementwise`.
    Arguments and result as :func:`~nnlocal.methods.eqprop.reference.ep_relax`."""
    return _reference_relax(c, vt, bias, s, sizes, steps, eps, beta, target, update=ep_update_elementwise)


@njit(cache=True, fastmath=_FASTMATH)
def _ep_elementwise_kernel(s, d, eps, beta, target, out0, lo, hi):
    B, H = s.shape
    res = eps - eps
    n_out = H - out0
    for b in range(B):
        if beta != 0:
            for k in range(n_out):
                d[b, out0 + k] += beta * (target[b, k] - s[b, out0 + k])
        for h in range(H):
            old = s[b, h]
            v = old + eps * (d[b, h] - old)
            if v < lo:
                v = lo
            elif v > hi:
                v = hi
            s[b, h] = v
            r = v - old
            res += r * r
    return res


def ep_update_elementwise(s, d, eps, beta=0.0, target=None):
    """The elementwise half of a step fused in one Numba loop: ``s ← clip(s + ε(d + β(y − s)[out] − s), 0, 1)``
    in place; ``s``, ``d`` (B, H), ``target`` (B, n_out). Returns ``Σ (s_new − s_old)²``."""
    dtype = s.dtype
    t = dtype.type
    if target is None or beta == 0:
        target, n_out = np.zeros((s.shape[0], 1), dtype=dtype), 0
    else:
        target = np.ascontiguousarray(target, dtype=dtype)
        n_out = target.shape[1]
    return float(_ep_elementwise_kernel(s, d, t(eps), t(beta), target, s.shape[1] - n_out, t(0), t(1)))


try:  # loaded with the package already (__init__.py), so that a threadpoolctl limit pins it
    from scipy.linalg.blas import get_blas_funcs as _get_blas_funcs
except ImportError:  # pragma: no cover
    _get_blas_funcs = None
_GEMM = {}
_BLAS_POOLS = []     # threadpoolctl controllers of every BLAS loaded (numpy's, scipy's), found on first use


def _one_blas_pool() -> bool:
    """True when scipy's gemm cannot fight numpy's BLAS: they are one library, or every BLAS is
    limited to one thread. numpy and scipy wheels each bundle their own OpenBLAS, each with its own
    thread pool whose idle workers spin; with two threads each on two cores, alternating numpy's
    products and scipy's gemm made an EP epoch 13x slower (572 ms instead of 45 ms for 50 batches).
    Then numpy's product (plus one pass over W_0) is the faster choice. One ctypes call per BLAS."""
    if not _BLAS_POOLS:
        from threadpoolctl import ThreadpoolController

        _BLAS_POOLS.extend(lc for lc in ThreadpoolController().lib_controllers if lc.user_api == "blas")
    return len({lc.filepath for lc in _BLAS_POOLS}) <= 1 or all(lc.num_threads == 1 for lc in _BLAS_POOLS)


def _gemm_acc(alpha, a, b, c_f):
    """``c_f += alpha · a @ b`` in place with BLAS gemm (β = 1): ``c_f`` F-contiguous (m, n),
    ``a`` (m, k) (ideally F-contiguous, e.g. the transpose of a C-contiguous batch), ``b`` (k, n).
    1.6x faster than ``c += alpha * (a @ b)`` for W_0's update (no temporary, one pass over W_0)
    when it runs on one thread; with several BLAS threads, see :func:`_one_blas_pool`."""
    key = c_f.dtype.char
    if key not in _GEMM:
        _GEMM[key] = None if _get_blas_funcs is None else _get_blas_funcs("gemm", (c_f,))
    gemm = _GEMM[key]
    if gemm is None or not c_f.flags.f_contiguous or not _one_blas_pool():
        c_f += alpha * (a @ b)
        return
    if b.flags.c_contiguous and not b.flags.f_contiguous:   # pass bᵀ (F-contiguous) and let BLAS transpose
        out = gemm(alpha, a, b.T, beta=1.0, c=c_f, overwrite_c=True, trans_b=True)
    else:
        out = gemm(alpha, a, b, beta=1.0, c=c_f, overwrite_c=True)
    if out.ctypes.data != c_f.ctypes.data:  # pragma: no cover - BLAS made a copy
        c_f[...] = out


def ep_update(x, free, nudged, weights, biases, beta, lrs) -> None:
    r"""The EP learning rule (:func:`~nnlocal.methods.eqprop.reference.ep_update`, same arguments), with
    the products arranged for speed: both terms of W_0's update share x, so
    ``ΔW_0 = α_0/(βB) · xᵀ (ρ(h_1^β) − ρ(h_1⁰))`` is one BLAS gemm accumulated straight into W_0
    (F-contiguous in EPNet: no temporary, one pass); the other couplings are computed transposed,
    in their storage order."""
    B = x.shape[0]
    t = weights[0].dtype.type
    free, nudged = [rho(h) for h in free], [rho(h) for h in nudged]
    _gemm_acc(t(lrs[0] / (beta * B)), x.T, nudged[0] - free[0], weights[0])
    for k in range(1, len(weights)):
        W_t = weights[k].T          # (n_{k+1}, n_k): C-contiguous in EPNet, so the GEMMs write in storage order
        W_t += t(lrs[k] / (beta * B)) * (nudged[k].T @ nudged[k - 1] - free[k].T @ free[k - 1])
    for k, b in enumerate(biases):
        b += t(lrs[k] / (beta * B)) * np.sum(nudged[k] - free[k], axis=0)
