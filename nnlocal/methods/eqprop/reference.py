r"""Symmetric layered EP (Scellier & Bengio 2017): the relaxation, in plain NumPy. Read this file first.

Non-input layers l = 0 … L-1 of sizes ``sizes[l]``, packed side by side in one state row ``s`` of
width H = Σ sizes. ρ = clip(·, 0, 1) and the state lives in [0, 1], so ρ(s) = s and ρ'(s) = 1 there
(Theano's clip gradient is 1 on the closed interval). One step, synchronous over all layers::

    s_l <- clip(s_l + ε (d_l - s_l), 0, 1),
    d_l = b_l + [l = 0] c + [l > 0] s_{l-1} V_{l-1} + [l < L-1] s_{l+1} V_lᵀ  (+ β (y - s_{L-1}) on the output)

where ``c = x W_0`` (hoisted: the input is clamped) and ``V_l`` (sizes[l] × sizes[l+1]) couples
layer l to l+1. The kernels receive the ``V_l`` *transposed* and packed into one flat buffer
``vt`` (:func:`ep_pack_couplings`): ``V_lᵀ`` is the C-contiguous ``(sizes[l+1], sizes[l])`` block at
offset Σ_{m<l} sizes[m]·sizes[m+1].

* :func:`ep_relax` - the relaxation on the packed layout (the signature every implementation shares);
* :func:`ep_relax_blas` - the same with the couplings as a list of matrices;
* :func:`ep_update_elementwise` - the elementwise half of a step (nudge, Euler, clip);
* :func:`ep_relax_literal` - the energy-gradient form, layer by layer, with ρ and ρ' written out.

``cpu.py`` holds the Numba twins (a fused loop and a BLAS + fused elementwise variant), ``cuda.py``
the ``numba.cuda`` ones.
"""
from __future__ import annotations

import numpy as np

__all__ = ["ep_pack_couplings", "ep_relax", "ep_relax_blas", "ep_update_elementwise", "ep_relax_literal",
           "unpack_couplings", "relax_with"]


def ep_pack_couplings(couplings, dtype=None):
    """Pack the couplings ``V_l`` (sizes[l] × sizes[l+1]) between non-input layers, transposed, into the
    flat buffer :func:`ep_relax` expects. Returns a 1-D array (empty for a single non-input layer)."""
    if not couplings:
        return np.zeros(0, dtype=dtype or np.float32)
    dtype = dtype or couplings[0].dtype
    return np.concatenate([np.ascontiguousarray(V.T, dtype=dtype).reshape(-1) for V in couplings])


def unpack_couplings(vt, sizes):
    """The list of ``V_l`` (sizes[l] × sizes[l+1]) as views of the packed buffer (the inverse of
    :func:`ep_pack_couplings`)."""
    sizes = [int(n) for n in sizes]
    out, o = [], 0
    for a, b in zip(sizes[:-1], sizes[1:]):
        out.append(vt[o:o + a * b].reshape(b, a).T)
        o += a * b
    return out


def ep_relax(c, vt, bias, s, sizes, steps, eps, beta=0.0, target=None):
    r"""Symmetric-EP relaxation on the packed layout (the signature of every implementation).

    Parameters
    ----------
    c : (B, sizes[0]) hoisted input drive ``x W_0`` (computed once per batch).
    vt : (P,) packed transposed couplings between non-input layers (:func:`ep_pack_couplings`).
    bias : (H,) packed biases of the non-input layers.
    s : (B, H) packed state in [0, 1], updated **in place**.
    sizes : (L,) sizes of the non-input layers (the last one is the output).
    steps, eps : number of steps and step size ε.
    beta : nudging strength; the output layer gets the extra drive ``beta (target - s_out)``.
    target : (B, sizes[-1]).

    Returns ``residuals`` (steps,): ``Σ_{b, h} (s_new - s_old)²`` per step (the squared state change).
    """
    return ep_relax_blas(c, unpack_couplings(vt, sizes), bias, s, sizes, steps, eps, beta, target)


def ep_relax_blas(c, couplings, bias, s, sizes, steps, eps, beta=0.0, target=None):
    """Symmetric-EP relaxation with the couplings as a list of ``V_l`` (sizes[l] × sizes[l+1]).

    Same result as :func:`ep_relax`. Per step: ``d = bias + [c | 0] + s_{l-1} V_{l-1} + s_{l+1} V_lᵀ``
    (GEMMs into one (B, H) buffer), then :func:`ep_update_elementwise`.
    """
    return relax_with(ep_update_elementwise, c, couplings, bias, s, sizes, steps, eps, beta, target)


def relax_with(update, c, couplings, bias, s, sizes, steps, eps, beta=0.0, target=None):
    """The EP step loop with the matrix products as BLAS GEMMs over the batch, and ``update`` (an
    :func:`ep_update_elementwise` of some implementation) for the elementwise half."""
    sizes = [int(n) for n in sizes]
    off = np.concatenate([[0], np.cumsum(sizes)])
    n0 = sizes[0]
    d = np.empty_like(s)
    residuals = np.zeros(steps, dtype=s.dtype)
    for t in range(steps):
        d[:] = bias
        d[:, :n0] += c
        for l, V in enumerate(couplings):
            lo_, mid, hi_ = off[l], off[l + 1], off[l + 2]
            d[:, mid:hi_] += s[:, lo_:mid] @ V
            d[:, lo_:mid] += s[:, mid:hi_] @ V.T
        residuals[t] = update(s, d, eps, beta, target)
    return residuals


def ep_update_elementwise(s, d, eps, beta=0.0, target=None):
    """The elementwise half of an EP step: ``s <- clip(s + ε(d + β(y - s)[out] - s), 0, 1)`` in place.

    ``s`` (B, H) state, ``d`` (B, H) the drives from the matrix products (modified: the nudge is added),
    ``target`` (B, n_out) for the last n_out columns. Returns ``Σ (s_new - s_old)²``.
    """
    if target is not None and beta != 0:
        n_out = target.shape[1]
        d[:, s.shape[1] - n_out:] += beta * (target - s[:, s.shape[1] - n_out:])
    new = np.clip(s + eps * (d - s), 0, 1)
    res = float(np.sum((new - s) ** 2))
    s[...] = new
    return res


def ep_relax_literal(x, weights, biases, layers, steps, eps, beta=0.0, target=None):
    r"""Layered symmetric EP in the energy-gradient form with ρ = clip(·, 0, 1), literal form.

    ``x`` (B, n_0) clamped input; ``weights[k]`` (n_k, n_{k+1}) for k = 0 … L-1 (W_0 from the input);
    ``biases[k]`` (n_{k+1},); ``layers`` list of (B, n_{k+1}) states, replaced in place. Per step,
    synchronously: ``s_k <- clip(s_k + ε(ρ'(s_k) ⊙ (ρ(s_{k-1}) W_{k-1} + ρ(s_{k+1}) W_kᵀ + b_k) - s_k))``
    with ρ'(s) = [0 ≤ s ≤ 1] and, on the output, ``+ ε β (target - s_out)``. Returns residuals (steps,).
    """
    rho = lambda v: np.clip(v, 0, 1)  # noqa: E731
    drho = lambda v: ((v >= 0) & (v <= 1)).astype(v.dtype)  # noqa: E731
    L = len(layers)
    residuals = np.zeros(steps, dtype=layers[0].dtype)
    for t in range(steps):
        below = [x] + layers[:-1]
        new = []
        for k in range(L):
            drive = rho(below[k]) @ weights[k] + biases[k]
            if k + 1 < L:
                drive = drive + rho(layers[k + 1]) @ weights[k + 1].T
            ds = drho(layers[k]) * drive - layers[k]
            if k == L - 1 and beta != 0:
                ds = ds + beta * (target - layers[k])
            new.append(np.clip(layers[k] + eps * ds, 0, 1))
        residuals[t] = sum(np.sum((n - o) ** 2) for n, o in zip(new, layers))
        for k in range(L):
            layers[k][...] = new[k]
    return residuals
