r"""Symmetric equilibrium propagation (Scellier & Bengio 2017), the maths in plain NumPy. Read this first.

The network
-----------
Layers h_0 = x (the clamped input, n_0 units), h_1, …, h_L (h_L is the output, n_L units). A state
is a batch of row vectors, ``h_k`` of shape (B, n_k), with values in [0, 1]. Layer k and layer k+1
are coupled symmetrically by ``W_k`` of shape (n_k, n_{k+1}); ``b_k`` (n_{k+1},) is the bias of
layer k+1. The activation is the hard sigmoid ρ(s) = clip(s, 0, 1).

Energy, cost and total energy, per sample (shapes (B,))::

    E(s) = ½ Σ_{k≥1} ‖h_k‖² − Σ_{k=0}^{L-1} ρ(h_k) W_k ρ(h_{k+1})ᵀ − Σ_{k=0}^{L-1} b_k·ρ(h_{k+1})
    C(s) = ½ ‖y − h_L‖²                        (y one-hot, (B, n_L))
    F    = E + β C

The relaxation (Euler steps of size ε on −∂F/∂h, synchronous over the layers, clipped to [0, 1])::

    h_k ← clip(h_k + ε (ρ'(h_k) ⊙ (ρ(h_{k-1}) W_{k-1} + ρ(h_{k+1}) W_kᵀ + b_{k-1}) − h_k), 0, 1)
                                                   (+ ε β (y − h_L) on the output layer)

ρ'(h) is 1 on the closed interval [0, 1] (the gradient of Theano's clip), and the state never
leaves [0, 1], so there ρ(h) = h and ρ'(h) = 1: one step is ``h_k ← clip(h_k + ε (d_k − h_k), 0, 1)``
with the *drive* ``d_k = h_{k-1} W_{k-1} + h_{k+1} W_kᵀ + b_{k-1}``. The input drive ``x W_0`` never
changes during a relaxation, so it is computed once per batch (``c`` below).

The learning rule: a free phase (β = 0) reaches s⁰, a nudged phase (β ≠ 0, started from s⁰)
reaches s^β, and with per-layer learning rates α_k::

    ΔW_k = (α_k / β) · mean_b [ ρ(h_k^β)ᵀ ρ(h_{k+1}^β) − ρ(h_k⁰)ᵀ ρ(h_{k+1}⁰) ]      (n_k, n_{k+1})
    Δb_k = (α_k / β) · mean_b [ ρ(h_{k+1}^β) − ρ(h_{k+1}⁰) ]                          (n_{k+1},)

that is −(α_k/β) ∂[E(s^β) − E(s⁰)]/∂θ, which tends to −α_k ∂C(s⁰)/∂θ as β → 0 (the EP theorem;
``tests/test_eqprop.py`` checks it against backpropagation through time).

The packed layout the relaxation works on
-----------------------------------------
The L non-input layers sit side by side in one state row: ``s`` (B, H), H = n_1 + … + n_L, with
``sizes = [n_1, …, n_L]``; ``bias`` (H,) packs b_0 … b_{L-1} the same way. The couplings between
non-input layers, ``V_l = W_{l+1}`` (sizes[l] × sizes[l+1]), are stored *transposed* in one flat
buffer ``vt`` (:func:`ep_pack_couplings`), the layout the fused Numba and CUDA kernels read row by
row. :func:`unpack_couplings` gives them back as views.

Functions: :func:`rho`, :func:`energy`, :func:`cost`; :func:`ep_drive` and
:func:`ep_update_elementwise` (the two halves of a step), :func:`ep_relax` (the relaxation, the
signature that ``cpu.py`` and ``cuda.py`` share), :func:`ep_update` (the learning rule), and
:func:`ep_relax_literal` (the same dynamics written layer by layer with ρ and ρ', for the tests).
"""
from __future__ import annotations

import numpy as np

__all__ = ["rho", "energy", "cost", "ep_pack_couplings", "unpack_couplings", "ep_drive", "ep_update_elementwise",
           "ep_relax", "ep_update", "ep_relax_literal"]


def rho(s: np.ndarray) -> np.ndarray:
    """The hard sigmoid ρ(s) = clip(s, 0, 1) (NaN stays NaN)."""
    return np.clip(s, 0, 1)


def energy(x, layers, weights, biases) -> np.ndarray:
    """E per sample (B,): ½ Σ_k ‖h_k‖² − Σ_k ρ(h_k) W_k ρ(h_{k+1})ᵀ − Σ_k b_k·ρ(h_{k+1}).

    ``x`` (B, n_0); ``layers`` [h_1, …, h_L], each (B, n_k) (any values: ρ clips, the ½‖h‖² term
    does not); ``weights[k]`` (n_k, n_{k+1}); ``biases[k]`` (n_{k+1},).
    """
    lower = [x] + [rho(h) for h in layers[:-1]]
    e = 0.5 * sum(np.sum(h * h, axis=1) for h in layers)
    for W, b, lo, h in zip(weights, biases, lower, layers):
        r = rho(h)
        e = e - np.sum((lo @ W) * r, axis=1) - r @ b
    return e


def cost(out, target) -> np.ndarray:
    """C per sample (B,): ½ ‖y − h_L‖², ``out`` = h_L and ``target`` = y, both (B, n_L)."""
    return 0.5 * np.sum((target - out) ** 2, axis=1)


def ep_pack_couplings(couplings, dtype=None) -> np.ndarray:
    """Pack the couplings ``V_l`` (sizes[l] × sizes[l+1]) between non-input layers, each transposed and
    C-contiguous, into one flat buffer: ``V_lᵀ`` is the (sizes[l+1], sizes[l]) block at offset
    Σ_{m<l} sizes[m]·sizes[m+1]. Returns a 1-D array (empty for a single non-input layer)."""
    if not couplings:
        return np.zeros(0, dtype=dtype or np.float32)
    dtype = dtype or couplings[0].dtype
    return np.concatenate([np.ascontiguousarray(V.T, dtype=dtype).reshape(-1) for V in couplings])


def unpack_couplings(vt, sizes) -> list:
    """The list of ``V_l`` (sizes[l] × sizes[l+1]) as views of the packed buffer (the inverse of
    :func:`ep_pack_couplings`; in-place edits of a view change ``vt``)."""
    sizes = [int(n) for n in sizes]
    out, o = [], 0
    for a, b in zip(sizes[:-1], sizes[1:]):
        out.append(vt[o:o + a * b].reshape(b, a).T)
        o += a * b
    return out


def ep_drive(c, couplings, bias, s, sizes, out=None) -> np.ndarray:
    """The drives of every non-input layer, ``d`` (B, H): the matrix-product half of a step.

    ``d_l = b_l + [l = 0] c + [l > 0] s_{l-1} V_{l-1} + [l < L-1] s_{l+1} V_lᵀ``, with ``c`` (B, sizes[0])
    the input drive x W_0, ``couplings`` the ``V_l`` (sizes[l], sizes[l+1]), ``bias`` (H,), ``s`` (B, H).
    Written into ``out`` (B, H) when given.
    """
    d = np.empty_like(s) if out is None else out
    off = np.concatenate([[0], np.cumsum([int(n) for n in sizes])])
    d[:] = bias
    d[:, :off[1]] += c
    for l, V in enumerate(couplings):
        lower, upper = slice(off[l], off[l + 1]), slice(off[l + 1], off[l + 2])
        d[:, upper] += s[:, lower] @ V           # up: layer l drives layer l+1
        d[:, lower] += s[:, upper] @ V.T         # down: layer l+1 drives layer l
    return d


def ep_update_elementwise(s, d, eps, beta=0.0, target=None) -> float:
    """The elementwise half of a step, in place: ``s ← clip(s + ε (d + β (y − s)[out] − s), 0, 1)``.

    ``s`` (B, H) state; ``d`` (B, H) the drives (:func:`ep_drive`; the nudge is added into it);
    ``target`` y (B, n_out) for the last n_out columns (the output layer), used when β ≠ 0.
    Returns ``Σ_{b,h} (s_new − s_old)²``, the squared state change of the step.
    """
    if target is not None and beta != 0:
        n_out = target.shape[1]
        d[:, -n_out:] += beta * (target - s[:, -n_out:])
    new = np.clip(s + eps * (d - s), 0, 1)
    change = float(np.sum((new - s) ** 2))
    s[...] = new
    return change


def ep_relax(c, vt, bias, s, sizes, steps, eps, beta=0.0, target=None, *, update=ep_update_elementwise):
    r"""The relaxation: ``steps`` synchronous Euler steps of size ε on the packed state, in place.

    Parameters
    ----------
    c : (B, sizes[0]) the input drive ``x W_0`` (computed once per batch).
    vt : (P,) the packed transposed couplings between non-input layers (:func:`ep_pack_couplings`).
    bias : (H,) the packed biases of the non-input layers.
    s : (B, H) the packed state in [0, 1], updated **in place**.
    sizes : (L,) the sizes n_1 … n_L of the non-input layers (the last one is the output).
    steps, eps : the number of steps and the step size ε.
    beta, target : the nudge ``β (target − s_out)`` on the output layer; ``target`` (B, sizes[-1]).
    update : the elementwise half of the step (``cpu.py`` passes its Numba twin of
        :func:`ep_update_elementwise`; the numbers are the same).

    Returns ``residuals`` (steps,): ``Σ_{b,h} (s_new − s_old)²`` at each step.
    """
    couplings = unpack_couplings(vt, sizes)
    d = np.empty_like(s)
    residuals = np.zeros(int(steps), dtype=s.dtype)
    for t in range(int(steps)):
        ep_drive(c, couplings, bias, s, sizes, out=d)
        residuals[t] = update(s, d, eps, beta, target)
    return residuals


def ep_update(x, free, nudged, weights, biases, beta, lrs) -> None:
    r"""The EP learning rule, applied in place.

    ``x`` (B, n_0) the clamped input; ``free`` and ``nudged`` the lists [h_1, …, h_L] of per-layer
    states (B, n_k) at the end of the free and the nudged phase; ``weights[k]`` (n_k, n_{k+1}) and
    ``biases[k]`` (n_{k+1},) are updated in place; ``beta`` (≠ 0) the nudging strength of the nudged
    phase; ``lrs`` the L learning rates α_k::

        W_k += (α_k / β) · mean_b [ ρ(h_k^β)ᵀ ρ(h_{k+1}^β) − ρ(h_k⁰)ᵀ ρ(h_{k+1}⁰) ]      (h_0 = x in both)
        b_k += (α_k / β) · mean_b [ ρ(h_{k+1}^β) − ρ(h_{k+1}⁰) ]
    """
    B = x.shape[0]
    lower_free = [x] + [rho(h) for h in free[:-1]]
    lower_nudged = [x] + [rho(h) for h in nudged[:-1]]
    for k, (W, b) in enumerate(zip(weights, biases)):
        scale = W.dtype.type(lrs[k] / (beta * B))
        upper_free, upper_nudged = rho(free[k]), rho(nudged[k])
        W += scale * (lower_nudged[k].T @ upper_nudged - lower_free[k].T @ upper_free)
        b += scale * np.sum(upper_nudged - upper_free, axis=0)


def ep_relax_literal(x, weights, biases, layers, steps, eps, beta=0.0, target=None) -> np.ndarray:
    r"""The same relaxation in the energy-gradient form, layer by layer, with ρ and ρ' written out.

    ``x`` (B, n_0) clamped input; ``weights[k]`` (n_k, n_{k+1}); ``biases[k]`` (n_{k+1},); ``layers``
    the list of states (B, n_{k+1}), replaced in place. Per step, synchronously::

        h_k ← clip(h_k + ε (ρ'(h_k) ⊙ (ρ(h_{k-1}) W_{k-1} + ρ(h_{k+1}) W_kᵀ + b_{k-1}) − h_k), 0, 1)

    with ρ'(h) = [0 ≤ h ≤ 1] and, on the output, ``+ ε β (target − h_L)``. Returns residuals (steps,).
    """
    def drho(v):
        return ((v >= 0) & (v <= 1)).astype(v.dtype)

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
