r"""``numba.cuda`` kernels: the GPU twins of :mod:`nnlocal.kernels.cpu` (opt-in, ``device="cuda"``).

Select them with ``nnlocal.kernels.backend("cuda")``, which checks first that a GPU (or Numba's CUDA
simulator, ``NUMBA_ENABLE_CUDASIM=1`` set before numba is imported) is there. Importing nnlocal never
imports this module.

Conventions
-----------
* **Same signature, same result.** Every public function here has the signature and the return
  convention of its CPU twin: numpy arrays in, numpy arrays out, the same arrays updated in place
  (the state of a relaxation, a ``mask``, ``out``, ``y``, ``gsw``/``gx``). So a class switches with
  ``kernels = backend(device)`` and calls ``kernels.ep_relax(...)`` either way.
* **Read-only inputs may already live on the GPU.** Wherever an argument is only read (couplings,
  teacher weights, ...), a device array (``numba.cuda`` or anything with ``__cuda_array_interface__``)
  is used as is instead of being uploaded again: a class can cache its large weights on the device.
* **Device variants** (``*_device``) take and return device arrays and never copy to the host, so a
  state can stay resident across calls (the free and the nudged phase of EP, a DEEP epoch).
* **The same arithmetic.** Each thread evaluates its output with the CPU kernel's expression in the
  CPU kernel's order where the algorithm allows (element-wise maps, the masked products, the drives of
  the relaxations, the kWTA threshold, STDP); sums over a thread block (the residuals, the gate's dot
  product) are tree reductions, so they differ from the CPU's serial sums by rounding only. On a real
  GPU the compiler also contracts ``a*b + c`` into FMAs. The tests (``tests/cudasim``) compare every
  kernel with its CPU twin at rtol 1e-10 in float64.
* dtype: every kernel computes in the dtype of its main array (float32 or float64); scalars are cast
  to it before launch, and zero is ``dt - dt`` or a ``zero`` argument of that dtype (a float literal
  would promote float32 to float64 on the GPU just as in ``@njit``; and ``θ - θ`` would be NaN for
  the infinite thresholds PAN allows).

Kernels, their CPU twins and their thread mapping (B batch, S nets, N / H neurons, K = m·n gates)
--------------------------------------------------------------------------------------------------
::

    function                       CPU twin (kernels.cpu)              grid x block
    linear_relax, deep_relax,      relax.linear_relax, deep_relax,     one block per net (S); threads over the
      asym_ep_relax                  asym_ep_relax                     B·H (sample, free unit) pairs; all the
                                                                       steps in one launch, barriers between;
                                                                       fused STDP (stdp=): + the N·H synapses
    stdp_accumulate (+ _numba)     relax.stdp_accumulate(_numba)       one thread per (net, i, j)
    ep_relax, ep_relax_blas        relax.ep_relax, ep_relax_blas       one block per sample (B); threads over the
                                                                       H packed units; all steps in one launch
    ep_update_elementwise          relax.ep_update_elementwise         one thread per (sample, unit)
    pan_batch_gate                 gating.pan_batch_gate               one block per gate row (K); threads over n
    pan_sample_gate                (extension: GEMM + bias + thresh.)  (k, b) tiles; shared tiles of TW and x
    pan_bias_threshold             gating.pan_bias_threshold           one thread per (b, k)
    pan_sample_forward             gating.pan_sample_forward           one thread per (b, j)
    pan_sample_backward            gating.pan_sample_backward          one thread per (j, i), then per (b, i)
    pan_sample_gate_grad           gating.pan_sample_gate_grad         one thread per (b, j, i)
    pan_add_outer                  gating.pan_add_outer                one thread per (k, i)
    galu                           galu.galu                           grid-stride over the flat array
    kwta_threshold, kwta_boundary  kwta.kwta_threshold, ...boundary    one block per row (B), threads over D
    kwta_winners                   kwta.kwta_winners                   (rank counting), then one thread per entry

The pure-NumPy host helpers (``deep_linear_operator``, ``asym_ep_linear_operator``,
``ep_pack_couplings``, ``kwta_k``) are re-exported unchanged, so this module offers every name a
method class calls on :mod:`nnlocal.kernels.cpu` (except the im2col family, which the GPU path
does not use).

Block sizes are the next power of two of the work, capped (``_pow2``): large problems get full
blocks, while the simulator tests, whose cost grows with the number of simulated threads, get tiny
ones. ``_MAX_THREADS`` bounds every block (it sizes the shared reduction buffer).
"""
from __future__ import annotations

import functools
import math

import numba
import numpy as np
from numba import cuda

from .cpu.kwta import kwta_k
from .cpu.relax import asym_ep_linear_operator, deep_linear_operator, ep_pack_couplings, operator_relax

__all__ = [
    # availability
    "is_available", "simulator_enabled", "to_device",
    # directed nets (DEEP, asymmetric EP)
    "linear_relax", "linear_relax_device", "deep_relax", "asym_ep_relax",
    "deep_linear_operator", "asym_ep_linear_operator", "stdp_accumulate", "stdp_accumulate_numba",
    "stdp_accumulate_device",
    # symmetric layered EP
    "ep_relax", "ep_relax_device", "ep_relax_blas", "ep_update_elementwise", "ep_pack_couplings",
    # PAN
    "pan_batch_gate", "pan_batch_gate_device", "pan_sample_gate", "pan_bias_threshold", "pan_sample_forward",
    "pan_sample_backward", "pan_sample_gate_grad", "pan_add_outer",
    # GaLU, kWTA
    "galu", "galu_device", "kwta_k", "kwta_threshold", "kwta_boundary", "kwta_winners", "kwta_select_device",
]

_MAX_THREADS = 512        # largest block we launch; the static size of the shared reduction buffers
_RELAX_THREADS = 256      # cap for the directed relaxation (B·H is small: XOR has 4·6)
_EP_THREADS = 512         # cap for symmetric EP (784-500-10: H = 510 -> 512 threads, one unit each)
_ROW_THREADS = 128        # cap for row reductions (PAN batch gate, kWTA)
_FLAT_THREADS = 256       # cap for element-wise kernels
_TILE_I = 16              # depth of the shared-memory tiles of the fused per-sample PAN gate


# ================================================================================================
# Helpers
# ================================================================================================

def is_available() -> bool:
    """True when numba.cuda can run kernels here (a usable GPU, or the simulator)."""
    return bool(cuda.is_available())


def simulator_enabled() -> bool:
    """True when numba runs CUDA kernels on its CPU simulator (``NUMBA_ENABLE_CUDASIM=1``)."""
    return bool(numba.config.ENABLE_CUDASIM)


def _pow2(work: int, cap: int) -> int:
    """Threads per block: the next power of two >= work (>= 1), at most ``cap`` (a power of two).
    A power of two, because the block reductions halve the active threads at every level."""
    n = 1
    while n < work and n < cap:
        n *= 2
    return n


def _blocks(work: int, threads: int) -> int:
    return max(1, (int(work) + threads - 1) // threads)


def _is_numba_device(a) -> bool:
    return bool(getattr(a, "__cuda_ndarray__", False))   # numba's DeviceNDArray (and the simulator's)


def _is_device(a) -> bool:
    return _is_numba_device(a) or hasattr(a, "__cuda_array_interface__")   # + CuPy, torch.cuda, ...


def to_device(a, dtype=None):
    """``a`` as a device array of ``dtype``: a device array passes through (no copy; its dtype must
    match), a host array is uploaded C-contiguous (cast to ``dtype`` first)."""
    if _is_device(a):
        if not _is_numba_device(a):
            a = cuda.as_cuda_array(a)
        if dtype is not None and a.dtype != np.dtype(dtype):
            raise ValueError(f"kernels.cuda: device array of dtype {a.dtype}, expected {np.dtype(dtype)}; "
                             "cast it before uploading")
        return a
    return cuda.to_device(np.ascontiguousarray(a, dtype=dtype))


def _host_out(out, result_device):
    """Copy a device result into the host array ``out`` (which may be a non-contiguous view)."""
    out[...] = result_device.copy_to_host()
    return out


def _reduction_type(dtype):
    return numba.from_dtype(np.dtype(dtype))


# ================================================================================================
# Directed nets: DEEP and asymmetric EP (one linear-drive relaxation kernel, as on the CPU)
# ================================================================================================

@functools.lru_cache(maxsize=None)
def _linear_relax_kernel(dtype_str):
    red_t = _reduction_type(dtype_str)

    @cuda.jit
    def kernel(M, c, s, nxt, n_in, n_out, steps, dt, beta, target, lo, hi, stop, residuals, n_run,
               record, traj, accumulate, beta0, beta1, stdp):
        net = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        nt = cuda.blockDim.x
        red = cuda.shared.array(_MAX_THREADS, red_t)
        B = s.shape[1]
        N = s.shape[2]
        H = N - n_in
        out0 = H - n_out
        zero = dt - dt
        if record:
            for p in range(tid, B * N, nt):
                traj[net, 0, p // N, p % N] = s[net, p // N, p % N]
        if accumulate:
            for p in range(tid, N * N, nt):
                stdp[net, p // N, p % N] = zero
        for t in range(steps):
            # 1. each (sample, free unit) pair: drive from the old state, Euler step, clip
            part = zero
            for p in range(tid, B * H, nt):
                b = p // H
                j = p - b * H
                v = c[net, b, j]
                for i in range(H):
                    v += s[net, b, n_in + i] * M[net, i, j]
                old = s[net, b, n_in + j]
                if beta != 0 and j >= out0:
                    v += beta * (target[b, j - out0] - old)
                x = old + dt * v
                if x < lo:
                    x = lo
                elif x > hi:
                    x = hi
                nxt[net, b, j] = x
                r = x - old
                part += r * r
            cuda.syncthreads()  # the old state has been read by everyone: it may now be replaced
            if accumulate:
                # online STDP into the free (postsynaptic) units j: out[i, j] += Σ_b s_i(t) (β0 s_j(t) +
                # β1 (s_j(t) - s_j(t-1))), the CPU's expression and (t, b) order; s holds s(t-1), nxt
                # (and the clamped inputs) s(t). The input columns keep the 0 written above.
                for p in range(tid, N * H, nt):
                    i = p // H
                    j = p - i * H
                    acc = stdp[net, i, n_in + j]
                    for b in range(B):
                        a1 = s[net, b, i] if i < n_in else nxt[net, b, i - n_in]
                        if a1 != 0:
                            now = nxt[net, b, j]
                            acc += a1 * (beta0 * now + beta1 * (now - s[net, b, n_in + j]))
                    stdp[net, i, n_in + j] = acc
                cuda.syncthreads()  # STDP read s(t-1): only now may it be overwritten
            # 2. commit the new state and reduce the residual Σ (Δs)² over the block
            for p in range(tid, B * H, nt):
                b = p // H
                j = p - b * H
                s[net, b, n_in + j] = nxt[net, b, j]
            red[tid] = part
            cuda.syncthreads()
            stride = nt // 2
            while stride > 0:
                if tid < stride:
                    red[tid] += red[tid + stride]
                cuda.syncthreads()
                stride //= 2
            res = red[0] / (dt * dt)
            if record:
                for p in range(tid, B * N, nt):
                    traj[net, t + 1, p // N, p % N] = s[net, p // N, p % N]
            if tid == 0:
                residuals[net, t] = res
                n_run[net] = t + 1
            # every thread read the same red[0]: the block leaves the loop together (no divergent
            # syncthreads); red is written again only after the next step's first barrier
            if not math.isfinite(res):
                break
            if stop > 0 and res <= stop:
                break

    return kernel


def _check_relax_args(who, M, c, s, n_in, steps, traj_shape=None, traj_dtype=None):
    S, B, N = s.shape
    H = N - n_in
    if tuple(M.shape) != (S, H, H) or tuple(c.shape) != (S, B, H):
        raise ValueError(f"{who}: M {tuple(M.shape)} / c {tuple(c.shape)} do not match s {tuple(s.shape)} "
                         f"with n_in={n_in}")
    if traj_shape is not None and (tuple(traj_shape) != (S, steps + 1, B, N) or traj_dtype != s.dtype):
        raise ValueError(f"{who}: traj must be {(S, steps + 1, B, N)} {s.dtype}, got {tuple(traj_shape)} {traj_dtype}")


def linear_relax_device(M, c, s, n_in, n_out, steps, dt, beta=0.0, target=None, lo=0.0, hi=1.0, stop=0.0,
                        traj=None, stdp=None, beta0=0.0, beta1=1.0):
    r"""Device-resident :func:`linear_relax`: ``s`` (S, B, N) is a **device array** updated in place.

    ``M``, ``c``, ``target`` may be host or device arrays. ``traj`` an optional device array
    (S, steps + 1, B, N). ``stdp`` an optional device array (S, N, N) that receives the raw STDP sums
    of this relaxation into the free units (columns ``n_in:``; the input columns are set to 0),
    accumulated on the fly: nothing of size T is stored. Returns device arrays ``residuals``
    (S, steps) and ``n_run`` (S,) int64.

    Mapping: grid = S blocks (one per net: the early stop and the NaN guard are per net, and they
    need the residual of the whole net); block = the next power of two of B·H threads (≤ 256), each
    thread owning the (sample, unit) pairs ``p = tid, tid + nt, …`` of its net (and, with ``stdp``,
    the (presynaptic, free postsynaptic) pairs of the N·H sums). One step costs
    2 + log2(nt) syncthreads (3 + log2(nt) with ``stdp``); the state stays in global memory, where
    a net's B·N values sit in L1.
    """
    dtype = np.dtype(s.dtype)
    S, B, N = s.shape
    steps = int(steps)
    _check_relax_args("linear_relax", M, c, s, int(n_in), steps,
                      None if traj is None else traj.shape, None if traj is None else np.dtype(traj.dtype))
    H = N - int(n_in)
    tp = dtype.type
    d_M, d_c = to_device(M, dtype), to_device(c, dtype)
    if target is None or beta == 0:
        d_t = cuda.to_device(np.zeros((B, max(int(n_out), 1)), dtype=dtype))
    else:
        d_t = to_device(target, dtype)
    record = traj is not None
    d_traj = traj if record else cuda.device_array((1, 1, 1, 1), dtype=dtype)
    accumulate = stdp is not None
    if accumulate and (tuple(stdp.shape) != (S, N, N) or np.dtype(stdp.dtype) != dtype):
        raise ValueError(f"linear_relax: stdp must be a device array {(S, N, N)} {dtype}, got {tuple(stdp.shape)}")
    d_stdp = stdp if accumulate else cuda.device_array((1, 1, 1), dtype=dtype)
    # (S, 1) when steps == 0: the launch still records traj[:, 0] and zeroes stdp
    residuals = cuda.to_device(np.full((S, max(steps, 1)), np.nan, dtype=dtype))
    n_run = cuda.to_device(np.zeros(S, dtype=np.int64))
    nxt = cuda.device_array((S, B, max(H, 1)), dtype=dtype)
    threads = _pow2(max(B * H, N * H if accumulate else 1), _RELAX_THREADS)
    _linear_relax_kernel(dtype.str)[S, threads](
        d_M, d_c, s, nxt, int(n_in), int(n_out), steps, tp(dt), tp(beta), d_t, tp(lo), tp(hi), tp(stop),
        residuals, n_run, record, d_traj, accumulate, tp(beta0), tp(beta1), d_stdp)
    return (residuals if steps > 0 else residuals[:, :0]), n_run


def linear_relax(M, c, s, n_in, n_out, steps, dt, beta=0.0, target=None, lo=0.0, hi=1.0, stop=0.0,
                 traj=None, stdp=None, beta0=0.0, beta1=1.0):
    r"""GPU twin of :func:`nnlocal.kernels.cpu.linear_relax` (same arguments, in-place update, returns).

    Per step, for every net and sample, on the H free units (columns ``n_in:`` of ``s``)::

        ds = c + s_H M  (+ beta (target - s_out) on the last n_out units)
        s_H <- clip(s_H + dt ds, lo, hi)           (synchronous: ds uses the old state)

    ``M`` (S, H, H), ``c`` (S, B, H), ``s`` (S, B, N) host array updated in place, ``traj`` optional
    host (S, steps + 1, B, N).

    Extension (GPU only; the CPU computes these sums from the recorded trajectory instead):
    ``stdp`` optional host (S, N, N) C-contiguous, written with DEEP's raw STDP sums into the free
    units (``stdp_accumulate`` of this relaxation's trajectory on columns ``n_in:``; the input
    columns 0), coefficients ``beta0``, ``beta1``. They are accumulated in the same launch, so the
    (S, T+1, B, N) trajectory is neither stored nor copied to the host (295 MB per epoch for 1024
    XOR seeds at T = 1000). Returns ``residuals`` (S, steps) ``Σ_{b,j} (Δs/dt)²`` (NaN after an early stop or
    a divergence) and ``n_run`` (S,) int64. Mapping: :func:`linear_relax_device`.
    """
    dtype = s.dtype
    S, B, N = s.shape
    if traj is not None:
        _check_relax_args("linear_relax", M, c, s, int(n_in), int(steps), traj.shape, traj.dtype)
    if stdp is not None and (stdp.shape != (S, N, N) or stdp.dtype != dtype or not stdp.flags.c_contiguous):
        raise ValueError(f"linear_relax: stdp must be a C-contiguous {(S, N, N)} {dtype} array, got {stdp.shape}")
    d_s = cuda.to_device(np.ascontiguousarray(s))
    d_traj = None if traj is None else cuda.device_array(traj.shape, dtype=dtype)
    d_stdp = None if stdp is None else cuda.device_array((S, N, N), dtype=dtype)
    d_res, d_n = linear_relax_device(M, c, d_s, n_in, n_out, steps, dt, beta, target, lo, hi, stop, d_traj,
                                     d_stdp, beta0, beta1)
    _host_out(s, d_s)
    residuals = np.ascontiguousarray(d_res.copy_to_host())
    n_run = d_n.copy_to_host()
    if traj is not None:  # like the CPU kernel: the entries after an early stop are left untouched
        h = d_traj.copy_to_host()
        for net in range(S):
            traj[net, : n_run[net] + 1] = h[net, : n_run[net] + 1]
    if stdp is not None:
        _host_out(stdp, d_stdp)
    return residuals, n_run


def deep_relax(W, s, n_in, n_out, steps, dt, beta=0.0, target=None, leak_abs=False, clip=True, stop=0.0, traj=None):
    r"""GPU twin of :func:`nnlocal.kernels.cpu.deep_relax`: ``ds = s W - s ⊙ (W 1)`` (+ nudge), Euler + clip.

    ``W`` (S, N, N) or (N, N), ``s`` (S, B, N) or (B, N) updated in place. The loop invariants
    ``M = W_HH - diag(leak)`` and ``c = x W_XH`` are built on the host (NumPy, once per call), the T
    steps run in one launch (:func:`linear_relax_device`).
    """
    return operator_relax(linear_relax, lambda x: deep_linear_operator(W, x, leak_abs), s, n_in, n_out, steps, dt, beta, target, clip, stop,
                          traj)


def asym_ep_relax(W, b, s, n_in, n_out, steps, dt, beta=0.0, target=None, clip=True, stop=0.0, traj=None):
    r"""GPU twin of :func:`nnlocal.kernels.cpu.asym_ep_relax`: ``ds = s W + b - s`` (+ nudge), Euler + clip."""
    return operator_relax(linear_relax, lambda x: asym_ep_linear_operator(W, b, x), s, n_in, n_out, steps, dt, beta, target, clip, stop,
                          traj)


# ------------------------------------------------------------------------------------------------
# STDP accumulation over a recorded trajectory
# ------------------------------------------------------------------------------------------------

@cuda.jit
def _stdp_kernel(traj, n_steps, beta0, beta1, out):
    S, T1, B, N = traj.shape
    p = cuda.grid(1)
    if p >= S * N * N:
        return
    net = p // (N * N)
    q = p - net * N * N
    i = q // N
    j = q - i * N
    acc = beta0 - beta0
    for t in range(1, n_steps[net] + 1):      # the CPU's (t, b) order: the same rounding
        for b in range(B):
            a1 = traj[net, t, b, i]
            if a1 != 0:
                now = traj[net, t, b, j]
                acc += a1 * (beta0 * now + beta1 * (now - traj[net, t - 1, b, j]))
    out[net, i, j] = acc


def stdp_accumulate_device(traj, n_steps, beta0=0.0, beta1=1.0):
    r"""Device variant of :func:`stdp_accumulate` (``traj`` host or device, result a device array)."""
    d_traj = to_device(traj)
    S, _, _, N = d_traj.shape
    d_n = to_device(np.asarray(n_steps, dtype=np.int64).reshape(-1)) if not _is_device(n_steps) else n_steps
    out = cuda.device_array((S, N, N), dtype=d_traj.dtype)
    tp = np.dtype(d_traj.dtype).type
    threads = _pow2(S * N * N, _FLAT_THREADS)
    _stdp_kernel[_blocks(S * N * N, threads), threads](d_traj, d_n, tp(beta0), tp(beta1), out)
    return out


def stdp_accumulate(traj, n_steps, beta0=0.0, beta1=1.0):
    r"""GPU twin of :func:`nnlocal.kernels.cpu.stdp_accumulate`: ``Σ_{t=1..n} Σ_b A1(t)ᵀ A2(t)`` per net.

    ``traj`` (S, T+1, B, N), ``n_steps`` (S,) int; returns (S, N, N) with entry [i, j] the sum of
    ``s_i(t) (β0 s_j(t) + β1 (s_j(t) - s_j(t-1)))``. One thread per (net, i, j), summing over (t, b)
    in the order of the CPU's loop version :func:`nnlocal.kernels.cpu.stdp_accumulate_numba`.
    On the GPU, prefer ``linear_relax(..., stdp=...)``: it accumulates the same sums (on the free
    columns) during the relaxation, so the trajectory is never stored nor copied to the host.
    """
    return stdp_accumulate_device(traj, n_steps, beta0, beta1).copy_to_host()


#: the CPU module has a BLAS (``stdp_accumulate``) and a loop (``stdp_accumulate_numba``) version of the
#: same sums; on the GPU both names are the one kernel above
stdp_accumulate_numba = stdp_accumulate


# ================================================================================================
# Symmetric layered EP
# ================================================================================================

@functools.lru_cache(maxsize=None)
def _ep_relax_kernel(dtype_str):
    red_t = _reduction_type(dtype_str)

    @cuda.jit
    def kernel(c, vt, bias, s, nxt, sizes, off, woff, steps, eps, beta, target, lo, hi, res_bs):
        b = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        nt = cuda.blockDim.x
        red = cuda.shared.array(_MAX_THREADS, red_t)
        H = s.shape[1]
        L = sizes.shape[0]
        zero = eps - eps
        for t in range(steps):
            part = zero
            for h in range(tid, H, nt):
                lay = 0
                while h >= off[lay + 1]:
                    lay += 1
                q = h - off[lay]
                # the CPU's order: bias, input drive, the whole upward sum, then downward term by term
                d = bias[h]
                if lay == 0:
                    d += c[b, q]
                if lay > 0:  # from layer lay-1: row q of V_{lay-1}ᵀ (contiguous)
                    n_prev = sizes[lay - 1]
                    base = woff[lay - 1] + q * n_prev
                    o = off[lay - 1]
                    acc = zero
                    for i in range(n_prev):
                        acc += vt[base + i] * s[b, o + i]
                    d += acc
                if lay < L - 1:  # from layer lay+1: column q of V_layᵀ (coalesced across the threads)
                    n_here = sizes[lay]
                    base = woff[lay] + q
                    o = off[lay + 1]
                    for j in range(sizes[lay + 1]):
                        d += s[b, o + j] * vt[base + j * n_here]
                old = s[b, h]
                if beta != 0 and lay == L - 1:
                    d += beta * (target[b, q] - old)
                v = old + eps * (d - old)
                if v < lo:
                    v = lo
                elif v > hi:
                    v = hi
                nxt[b, h] = v
                r = v - old
                part += r * r
            cuda.syncthreads()  # all drives read the old state
            for h in range(tid, H, nt):
                s[b, h] = nxt[b, h]
            red[tid] = part
            cuda.syncthreads()
            stride = nt // 2
            while stride > 0:
                if tid < stride:
                    red[tid] += red[tid + stride]
                cuda.syncthreads()
                stride //= 2
            if tid == 0:
                res_bs[b, t] = red[0]

    return kernel


@cuda.jit
def _sum_over_batch(res_bs, zero, out):
    """out[t] = Σ_b res_bs[b, t], serially in b (the CPU adds the samples' residuals in that order)."""
    t = cuda.grid(1)
    if t < out.shape[0]:
        acc = zero
        for b in range(res_bs.shape[0]):
            acc += res_bs[b, t]
        out[t] = acc


def _ep_layout(sizes):
    sizes = np.asarray(sizes, dtype=np.int64).reshape(-1)
    off = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    woff = np.zeros(len(sizes), dtype=np.int64)
    for lay in range(len(sizes) - 1):
        woff[lay + 1] = woff[lay] + sizes[lay] * sizes[lay + 1]
    return sizes, off, woff


def ep_relax_device(c, vt, bias, s, sizes, steps, eps, beta=0.0, target=None):
    r"""Device-resident :func:`ep_relax`: ``s`` (B, H) is a **device array** updated in place.

    ``c``, ``vt``, ``bias``, ``target`` host or device. Returns a device array ``residuals`` (steps,).

    Mapping: grid = B blocks (one per sample: samples do not interact); block = the next power of two
    of H threads (≤ 512; 784-500-10 gives H = 510 → 512, one unit per thread). Thread h finds its layer
    l and computes its drive ``bias + [l=0] c + s_{l-1} V_{l-1} + s_{l+1} V_lᵀ (+ nudge)`` from the
    packed transposed couplings ``vt``; the T steps run in one launch with a barrier between the
    drive (reads the old state) and the commit (writes the new one). Per-sample residuals are
    reduced in the block and summed over the batch by a second tiny kernel.
    """
    dtype = np.dtype(s.dtype)
    B, H = s.shape
    steps = int(steps)
    sizes, off, woff = _ep_layout(sizes)
    if int(off[-1]) != H:
        raise ValueError(f"ep_relax: state width {H} does not match the layer sizes {sizes.tolist()}")
    tp = dtype.type
    d_c, d_bias = to_device(c, dtype), to_device(bias, dtype)
    d_vt = to_device(vt, dtype) if (_is_device(vt) or np.size(vt)) else cuda.to_device(np.zeros(1, dtype))
    if target is None or beta == 0:
        d_t = cuda.to_device(np.zeros((B, 1), dtype=dtype))
    else:
        d_t = to_device(target, dtype)
    nxt = cuda.device_array((B, H), dtype=dtype)
    res_bs = cuda.device_array((B, max(steps, 1)), dtype=dtype)
    out = cuda.to_device(np.zeros(max(steps, 1), dtype=dtype))
    threads = _pow2(H, _EP_THREADS)
    if steps > 0 and B > 0:
        _ep_relax_kernel(dtype.str)[B, threads](d_c, d_vt, d_bias, s, nxt, cuda.to_device(sizes),
                                                cuda.to_device(off), cuda.to_device(woff), steps, tp(eps),
                                                tp(beta), d_t, tp(0), tp(1), res_bs)
        tt = _pow2(steps, _FLAT_THREADS)
        _sum_over_batch[_blocks(steps, tt), tt](res_bs, tp(0), out)
    return out if steps > 0 else out[:0]


def ep_relax(c, vt, bias, s, sizes, steps, eps, beta=0.0, target=None):
    r"""GPU twin of :func:`nnlocal.kernels.cpu.ep_relax` (same arguments, in-place update, returns).

    One synchronous step over the non-input layers l = 0 … L-1 (packed in ``s`` (B, H))::

        s_l <- clip(s_l + ε (d_l - s_l), 0, 1),
        d_l = b_l + [l = 0] c + [l > 0] s_{l-1} V_{l-1} + [l < L-1] s_{l+1} V_lᵀ  (+ β (y - s_{L-1}) on the output)

    ``c`` (B, sizes[0]) the hoisted input drive, ``vt`` the packed transposed couplings
    (:func:`ep_pack_couplings`), ``bias`` (H,), ``sizes`` (L,). Returns ``residuals`` (steps,)
    ``Σ_{b,h} (Δs)²``. All steps in one launch (:func:`ep_relax_device`).
    """
    d_s = cuda.to_device(np.ascontiguousarray(s))
    res = ep_relax_device(c, vt, bias, d_s, sizes, steps, eps, beta, target)
    _host_out(s, d_s)
    return res.copy_to_host()


def ep_relax_blas(c, couplings, bias, s, sizes, steps, eps, beta=0.0, target=None):
    """GPU twin of :func:`nnlocal.kernels.cpu.ep_relax_blas` (``couplings`` the list of ``V_l``).

    There is no BLAS on this path: the couplings are packed (:func:`ep_pack_couplings`) and relaxed
    by the same fused kernel as :func:`ep_relax`, which is already parallel over samples and units.
    """
    dtype = s.dtype
    vt = ep_pack_couplings([np.asarray(V) for V in couplings], dtype)
    return ep_relax(c, vt, bias, s, sizes, steps, eps, beta, target)


@cuda.jit
def _ep_elementwise_kernel(s, d, eps, beta, target, out0, lo, hi, r2):
    B, H = s.shape
    p = cuda.grid(1)
    if p >= B * H:
        return
    b = p // H
    h = p - b * H
    old = s[b, h]
    if beta != 0 and h >= out0:
        d[b, h] += beta * (target[b, h - out0] - old)
    v = old + eps * (d[b, h] - old)
    if v < lo:
        v = lo
    elif v > hi:
        v = hi
    s[b, h] = v
    r = v - old
    r2[b, h] = r * r


def ep_update_elementwise(s, d, eps, beta=0.0, target=None):
    """GPU twin of :func:`nnlocal.kernels.cpu.ep_update_elementwise`: ``s`` and ``d`` (B, H) updated in
    place (the nudge is added into ``d``); returns ``Σ (s_new - s_old)²`` (summed on the host).
    One thread per (sample, unit)."""
    dtype = s.dtype
    tp = dtype.type
    B, H = s.shape
    if target is None or beta == 0:
        d_t, n_out = cuda.to_device(np.zeros((B, 1), dtype=dtype)), 0
    else:
        d_t = to_device(target, dtype)
        n_out = d_t.shape[1]
    d_s, d_d = cuda.to_device(np.ascontiguousarray(s)), cuda.to_device(np.ascontiguousarray(d))
    r2 = cuda.device_array((B, H), dtype=dtype)
    threads = _pow2(B * H, _FLAT_THREADS)
    _ep_elementwise_kernel[_blocks(B * H, threads), threads](d_s, d_d, tp(eps), tp(beta), d_t, H - n_out,
                                                             tp(0), tp(1), r2)
    _host_out(s, d_s)
    _host_out(d, d_d)
    return float(r2.copy_to_host().sum())


# ================================================================================================
# PAN gated products
# ================================================================================================

@functools.lru_cache(maxsize=None)
def _batch_gate_kernel(dtype_str):
    red_t = _reduction_type(dtype_str)

    @cuda.jit
    def kernel(tw, s, tb, tb_scale, threshold, zero, mask):
        k = cuda.blockIdx.x
        tid = cuda.threadIdx.x
        nt = cuda.blockDim.x
        red = cuda.shared.array(_MAX_THREADS, red_t)
        acc = zero
        for i in range(tid, tw.shape[1], nt):  # consecutive threads read consecutive TW[k, i]: coalesced
            acc += tw[k, i] * s[i]
        red[tid] = acc
        cuda.syncthreads()
        stride = nt // 2
        while stride > 0:
            if tid < stride:
                red[tid] += red[tid + stride]
            cuda.syncthreads()
            stride //= 2
        if tid == 0:
            mask[k] = red[0] + tb_scale * tb[k] > threshold

    return kernel


def pan_batch_gate_device(tw, s, tb, tb_scale, threshold):
    """Device variant of :func:`pan_batch_gate`: returns the (K,) bool mask as a device array."""
    d_tw = to_device(tw)
    dtype = np.dtype(d_tw.dtype)
    K, n = d_tw.shape
    mask = cuda.device_array(K, dtype=np.bool_)
    if K:
        threads = _pow2(n, _ROW_THREADS)
        _batch_gate_kernel(dtype.str)[K, threads](d_tw, to_device(s, dtype), to_device(tb, dtype),
                                                  dtype.type(tb_scale), dtype.type(threshold), dtype.type(0), mask)
    return mask


def pan_batch_gate(tw, s, tb, tb_scale, threshold, mask):
    r"""GPU twin of :func:`nnlocal.kernels.cpu.pan_batch_gate`: ``mask[k] = TW[k]·s + tb_scale·Tb[k] > θ``.

    ``tw`` (K, n) (host, or a cached device array: it is the large operand, 76.8 MB at 400→120),
    ``s`` (n,), ``tb`` (K,), ``mask`` (K,) bool written and returned. One block per row k, its
    threads striding over n (coalesced reads of TW) and reducing the dot product in shared memory;
    the gate can differ from the CPU's only where ``|Th - θ|`` is at rounding level.
    """
    return _host_out(mask, pan_batch_gate_device(tw, s, tb, tb_scale, threshold))


@functools.lru_cache(maxsize=None)
def _sample_gate_kernel(dtype_str, TB, TK):
    tile_t = _reduction_type(dtype_str)

    @cuda.jit
    def kernel(tw, x, tb, threshold, zero, mask):
        xs = cuda.shared.array((TB, _TILE_I), tile_t)
        ws = cuda.shared.array((TK, _TILE_I), tile_t)
        tx = cuda.threadIdx.x            # -> gate k (fastest: the mask row is written coalesced)
        ty = cuda.threadIdx.y            # -> sample b
        k0 = cuda.blockIdx.x * TK
        b0 = cuda.blockIdx.y * TB
        B, n = x.shape
        K = tw.shape[0]
        tid = ty * TK + tx
        acc = zero
        for i0 in range(0, n, _TILE_I):
            for p in range(tid, TB * _TILE_I, TK * TB):
                r = p // _TILE_I
                q = p - r * _TILE_I
                xs[r, q] = x[b0 + r, i0 + q] if (b0 + r < B and i0 + q < n) else zero
            for p in range(tid, TK * _TILE_I, TK * TB):
                r = p // _TILE_I
                q = p - r * _TILE_I
                ws[r, q] = tw[k0 + r, i0 + q] if (k0 + r < K and i0 + q < n) else zero
            cuda.syncthreads()
            for q in range(_TILE_I):
                acc += ws[tx, q] * xs[ty, q]
            cuda.syncthreads()
        if b0 + ty < B and k0 + tx < K:
            mask[b0 + ty, k0 + tx] = acc + tb[k0 + tx] > threshold

    return kernel


def pan_sample_gate(tw, x, tb, threshold, mask=None):
    r"""Extension (GPU only): the per-sample gate fused, ``mask[b, k] = TW[k]·x_b + Tb[k] > θ``.

    On the CPU this is a BLAS GEMM ``x TWᵀ`` followed by :func:`pan_bias_threshold`; here one tiled
    kernel computes the (B, K) teacher pre-activations in registers and writes only the bool mask.
    ``tw`` (K, n) host or device, ``x`` (B, n), ``tb`` (K,), ``mask`` (B, K) bool (allocated when None).
    Mapping: blocks of TK × TB threads (TB = min(16, B) rounded up to a power of two, TK·TB ≤ 256)
    over (k, b); shared tiles of TW (TK × 16) and x (TB × 16) stream over n.
    """
    d_tw = to_device(tw)
    dtype = np.dtype(d_tw.dtype)
    K, n = d_tw.shape
    d_x = to_device(x, dtype)
    B = d_x.shape[0]
    if mask is None:
        mask = np.empty((B, K), dtype=np.bool_)
    d_mask = cuda.device_array((B, K), dtype=np.bool_)
    if B and K:
        TB = _pow2(B, 16)
        TK = _pow2(K, 256 // TB)
        grid = (_blocks(K, TK), _blocks(B, TB))
        _sample_gate_kernel(dtype.str, TB, TK)[grid, (TK, TB)](d_tw, d_x, to_device(tb, dtype),
                                                              dtype.type(threshold), dtype.type(0), d_mask)
    return _host_out(mask, d_mask)


@cuda.jit
def _bias_threshold_kernel(tz, tb, threshold, mask):
    p = cuda.grid(1)
    B, K = tz.shape
    if p < B * K:
        b = p // K
        k = p - b * K
        mask[b, k] = tz[b, k] + tb[k] > threshold


def pan_bias_threshold(tz, tb, threshold, mask):
    """GPU twin of :func:`nnlocal.kernels.cpu.pan_bias_threshold`: ``mask[b, k] = tz[b, k] + tb[k] > θ``.
    ``tz`` (B, K), ``mask`` (B, K) bool written and returned. One thread per (b, k)."""
    d_tz = to_device(tz)
    dtype = np.dtype(d_tz.dtype)
    B, K = d_tz.shape
    d_mask = cuda.device_array((B, K), dtype=np.bool_)
    threads = _pow2(B * K, _FLAT_THREADS)
    _bias_threshold_kernel[_blocks(B * K, threads), threads](d_tz, to_device(tb, dtype), dtype.type(threshold),
                                                             d_mask)
    return _host_out(mask, d_mask)


@cuda.jit
def _sample_forward_kernel(mask, sw, x, sb, y):
    B, m, n = mask.shape
    p = cuda.grid(1)
    if p < B * m:
        b = p // m
        j = p - b * m
        acc = sb[j]
        for i in range(n):           # the CPU's order
            if mask[b, j, i]:
                acc += sw[j, i] * x[b, i]
        y[b, j] = acc


def pan_sample_forward(mask, sw, x, sb, y):
    """GPU twin of :func:`nnlocal.kernels.cpu.pan_sample_forward`: ``y[b,j] = sb[j] + Σ_i mask[b,j,i] sw[j,i] x[b,i]``.

    mask (B, m, n) bool, sw (m, n), x (B, n), sb (m,), y (B, m) written and returned.
    One thread per (b, j), summing over i in the CPU's order.
    """
    dtype = y.dtype
    B, m, n = mask.shape
    d_y = cuda.device_array((B, m), dtype=dtype)
    threads = _pow2(B * m, _FLAT_THREADS)
    _sample_forward_kernel[_blocks(B * m, threads), threads](to_device(mask, np.bool_), to_device(sw, dtype),
                                                             to_device(x, dtype), to_device(sb, dtype), d_y)
    return _host_out(y, d_y)


@cuda.jit
def _sample_backward_w_kernel(mask, x, g, zero, gsw):
    B, m, n = mask.shape
    p = cuda.grid(1)
    if p < m * n:
        j = p // n
        i = p - j * n
        acc = zero
        for b in range(B):           # the CPU's order (b outer)
            if mask[b, j, i]:
                acc += g[b, j] * x[b, i]
        gsw[j, i] = acc


@cuda.jit
def _sample_backward_x_kernel(mask, sw, g, zero, gx):
    B, m, n = mask.shape
    p = cuda.grid(1)
    if p < B * n:
        b = p // n
        i = p - b * n
        acc = zero
        for j in range(m):           # the CPU's order (j before i)
            if mask[b, j, i]:
                acc += g[b, j] * sw[j, i]
        gx[b, i] = acc


def pan_sample_backward(mask, sw, x, g, gsw, gx):
    """GPU twin of :func:`nnlocal.kernels.cpu.pan_sample_backward` (``g`` = dL/dy (B, m)).

    gsw[j, i] = Σ_b g[b,j] mask[b,j,i] x[b,i]  (m, n) and gx[b, i] = Σ_j g[b,j] mask[b,j,i] sw[j,i]
    (B, n), both written (not accumulated) and returned. Two launches with no atomics: one thread per
    (j, i) summing over b, then one per (b, i) summing over j (coalesced along i in both).
    """
    dtype = gsw.dtype
    B, m, n = mask.shape
    d_mask, d_g = to_device(mask, np.bool_), to_device(g, dtype)
    d_gsw = cuda.device_array((m, n), dtype=dtype)
    d_gx = cuda.device_array((B, n), dtype=dtype)
    zero = np.dtype(dtype).type(0)
    tw_ = _pow2(m * n, _FLAT_THREADS)
    _sample_backward_w_kernel[_blocks(m * n, tw_), tw_](d_mask, to_device(x, dtype), d_g, zero, d_gsw)
    tx_ = _pow2(B * n, _FLAT_THREADS)
    _sample_backward_x_kernel[_blocks(B * n, tx_), tx_](d_mask, to_device(sw, dtype), d_g, zero, d_gx)
    _host_out(gsw, d_gsw)
    _host_out(gx, d_gx)
    return gsw, gx


@cuda.jit
def _sample_gate_grad_kernel(sw, x, g, out):
    B, m, n = out.shape
    p = cuda.grid(1)
    if p < B * m * n:
        b = p // (m * n)
        q = p - b * m * n
        j = q // n
        i = q - j * n
        out[b, j, i] = g[b, j] * sw[j, i] * x[b, i]


def pan_sample_gate_grad(sw, x, g, out):
    """GPU twin of :func:`nnlocal.kernels.cpu.pan_sample_gate_grad`: ``out[b,j,i] = g[b,j] sw[j,i] x[b,i]``.
    out (B, m, n) written and returned. One thread per entry."""
    dtype = out.dtype
    B, m, n = out.shape
    d_out = cuda.device_array((B, m, n), dtype=dtype)
    threads = _pow2(B * m * n, _FLAT_THREADS)
    _sample_gate_grad_kernel[_blocks(B * m * n, threads), threads](to_device(sw, dtype), to_device(x, dtype),
                                                                   to_device(g, dtype), d_out)
    return _host_out(out, d_out)


@cuda.jit
def _add_outer_kernel(G, u, v):
    K, n = G.shape
    p = cuda.grid(1)
    if p < K * n:
        k = p // n
        i = p - k * n
        G[k, i] += u[k] * v[i]


def pan_add_outer(G, u, v):
    """GPU twin of :func:`nnlocal.kernels.cpu.pan_add_outer`: ``G += u ⊗ v`` in place (returned).
    ``G`` may be a device array (then it stays there). One thread per entry."""
    dtype = G.dtype
    K, n = G.shape
    d_G = G if _is_device(G) else cuda.to_device(np.ascontiguousarray(G))
    threads = _pow2(K * n, _FLAT_THREADS)
    _add_outer_kernel[_blocks(K * n, threads), threads](d_G, to_device(u, dtype), to_device(v, dtype))
    return G if _is_device(G) else _host_out(G, d_G)


# ================================================================================================
# GaLU
# ================================================================================================

@cuda.jit
def _galu_kernel(x, c, relu, zero, out):
    start = cuda.grid(1)
    stride = cuda.gridsize(1)
    for i in range(start, x.shape[0], stride):
        v = x[i]
        if relu:
            out[i] = v if (c[i] > 0 and v > zero) else zero
        else:
            out[i] = v if c[i] > 0 else zero


def galu_device(x, gate, relu=False, out=None):
    """Device variant of :func:`galu` (any shape; ``out`` a device array or None). Returns ``out``."""
    d_x, d_c = to_device(x), to_device(gate)
    if tuple(d_x.shape) != tuple(d_c.shape):
        raise ValueError(f"galu: gate of shape {tuple(d_c.shape)} does not match input of shape {tuple(d_x.shape)}")
    if out is None:
        out = cuda.device_array(d_x.shape, dtype=d_x.dtype)
    size = int(np.prod(d_x.shape))
    if size:
        threads = _pow2(size, _FLAT_THREADS)
        blocks = min(_blocks(size, threads), 65535)   # grid-stride loop covers the rest
        _galu_kernel[blocks, threads](d_x.reshape(size), d_c.reshape(size), bool(relu),
                                      np.dtype(d_x.dtype).type(0), out.reshape(size))
    return out


def galu(x, gate, relu=False, out=None):
    r"""GPU twin of :func:`nnlocal.kernels.cpu.galu`: ``x ⊙ [gate > 0]`` (``max(x, 0) ⊙ [gate > 0]``).

    Same shape and dtype as ``x``; ``out`` may be ``x`` (in place). One thread per element
    (grid-stride loop over the flattened arrays).
    """
    if x.shape != gate.shape:
        raise ValueError(f"galu: gate of shape {gate.shape} does not match input of shape {x.shape}")
    if out is None:
        out = np.empty(x.shape, dtype=x.dtype)
    elif out.shape != x.shape or out.dtype != x.dtype or not out.flags.c_contiguous:
        raise ValueError("galu: out must be a C-contiguous array of the input's shape and dtype")
    return _host_out(out, galu_device(x, gate, relu))


# ================================================================================================
# kWTA threshold
# ================================================================================================

@cuda.jit
def _kwta_kernel(x, k, half, nan, theta, v_k, v_k1, i_k, i_k1):
    b = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    nt = cuda.blockDim.x
    D = x.shape[1]
    if tid == 0:
        i_k[b] = D
        i_k1[b] = D
    cuda.syncthreads()
    for j in range(tid, D, nt):
        v = x[b, j]
        greater = 0
        at_least = 0
        for i in range(D):           # all threads read the same x[b, i]: a broadcast
            u = x[b, i]
            if u > v:
                greater += 1
                at_least += 1
            elif u == v:
                at_least += 1
        # in descending order v occupies ranks greater+1 … at_least (1-based), ties included
        if greater < k and k <= at_least:
            cuda.atomic.min(i_k, b, j)
        if greater < k + 1 and k + 1 <= at_least:
            cuda.atomic.min(i_k1, b, j)
    cuda.syncthreads()
    if tid == 0:
        if i_k[b] < D and i_k1[b] < D:
            a = x[b, i_k[b]]
            c = x[b, i_k1[b]]
            v_k[b] = a
            v_k1[b] = c
            theta[b] = (a + c) * half
        else:  # only with NaN in the row: no value has the rank
            v_k[b] = nan
            v_k1[b] = nan
            theta[b] = nan


@cuda.jit
def _winners_kernel(x, v_k1, out):
    p = cuda.grid(1)
    B, D = x.shape
    if p < B * D:
        b = p // D
        j = p - b * D
        out[b, j] = x[b, j] > v_k1[b]


def kwta_select_device(x, k):
    """Device variant of the kWTA selection: device arrays ``(theta, v_k, v_k1, i_k, i_k1)``, each (B,).

    ``v_k``, ``v_k1`` the k-th and (k+1)-th largest value of each row, ``i_k``, ``i_k1`` (int64) the first
    column holding each, ``theta = ½ (v_k + v_k1)``.
    """
    d_x = to_device(x)
    B, D = d_x.shape
    if not 1 <= k < D:
        raise ValueError(f"kwta_threshold: need 1 <= k < D, got k={k}, D={D}")
    dtype = np.dtype(d_x.dtype)
    theta, v_k, v_k1 = (cuda.device_array(B, dtype=dtype) for _ in range(3))
    i_k = cuda.device_array(B, dtype=np.int64)
    i_k1 = cuda.device_array(B, dtype=np.int64)
    if B:
        _kwta_kernel[B, _pow2(D, _ROW_THREADS)](d_x, int(k), dtype.type(0.5), dtype.type(np.nan), theta, v_k, v_k1,
                                                i_k, i_k1)
    return theta, v_k, v_k1, i_k, i_k1


def kwta_threshold(x, k: int, return_boundary: bool = False):
    r"""GPU twin of :func:`nnlocal.kernels.cpu.kwta_threshold`: ``θ_b = ½ (x_(k) + x_(k+1))`` per row.

    ``x`` (B, D); returns θ (B,) in x's dtype, and with ``return_boundary`` the column indices
    ``(i_k, i_k1)`` (B,) int64 of the k-th and (k+1)-th largest value (the first matching column
    under ties, like the CPU). Exact selection by rank counting: one block per row, each thread
    counts for its elements j how many entries are greater (g) and at least as large (ge); the
    k-th largest is the value with g < k ≤ ge, ties handled exactly, and ``atomic.min`` keeps the
    first column holding it. O(D²) comparisons per row (D = 512: 2.6·10⁵, negligible on a GPU; a
    radix select would pay off from D ≈ 10⁴). NaN inputs are not supported: the CPU's partition
    orders them last; here a row whose k-th or (k+1)-th value cannot be ranked gets θ = NaN and the
    index D.
    """
    theta, _, _, i_k, i_k1 = kwta_select_device(x, k)
    if not return_boundary:
        return theta.copy_to_host()
    return theta.copy_to_host(), i_k.copy_to_host(), i_k1.copy_to_host()


def kwta_boundary(x, k: int):
    """GPU twin of :func:`nnlocal.kernels.cpu.kwta_boundary`: the k-th and (k+1)-th largest value of each
    row of ``x`` (B, D), two (B,) arrays (the selection of :func:`kwta_threshold`)."""
    _, v_k, v_k1, _, _ = kwta_select_device(x, k)
    return v_k.copy_to_host(), v_k1.copy_to_host()


def kwta_winners(x, k: int):
    """GPU twin of :func:`nnlocal.kernels.cpu.kwta_winners`: bool (B, D) ``x > x_(k+1)`` per row (exactly k
    winners unless the row ties at the boundary). Selection as :func:`kwta_threshold`, then one thread
    per entry."""
    d_x = to_device(x)
    B, D = d_x.shape
    _, _, v_k1, _, _ = kwta_select_device(d_x, k)
    out = cuda.device_array((B, D), dtype=np.bool_)
    threads = _pow2(B * D, _FLAT_THREADS)
    _winners_kernel[_blocks(B * D, threads), threads](d_x, v_k1, out)
    return out.copy_to_host()
