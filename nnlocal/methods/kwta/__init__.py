r"""EmbedderSDR: k-winners-take-all (kWTA) binary sparse distributed representations.

Source: dizcza/EmbedderSDR (``models/kwta.py``, ``trainer/kwta.py``, ``main.py``; MIT) and the
triplet loss and accuracy of dizcza/pytorch-mighty (BSD-3); nnlocal re-derives them without
autograd (docs/kwta.md).

A kWTA layer keeps the k largest of the D units of each sample and binarises them. Followed by a
triplet loss on cosine similarities it turns a network into an encoder of *binary sparse
distributed representations* (SDRs), which are classified by the nearest binarised class centroid.

Reading path:

1. ``reference.py``: the equations in plain NumPy, with shapes (the threshold
   θ_b = ½ (x_(k) + x_(k+1)), the winners, soft kWTA with its gradient through θ, synaptic
   scaling, the triplet cosine loss and its gradient);
2. ``layers.py``: ``KWinnersTakeAll``, ``KWinnersTakeAllSoft``, ``WinnerTakeAll``,
   ``SynapticScaling``, ``KWTAScheduler``, ``compile_kwta``;
3. ``losses.py``: ``TripletCosineLoss``, ``TripletLossSampler``, the nearest-centroid accuracy;
4. ``models.py``: the README's MLPs.

``cpu.py`` re-exports the reference selection (no Numba kernel pays: measured, see its docstring);
``cuda.py`` is the selection on the GPU.

Faithful quirks kept: the soft layer's gradient flows through θ (autograd through ``topk`` in the
original); a hard layer passes the gradient straight through and gives θ nothing;
``KWTAScheduler`` compounds its updates on the current values (exponents 1, 1+2, ...);
``SynapticScaling`` uses the cumulative firing rate of *all* training samples seen so far (not an
EMA), ``target_sparsity`` defaults to 0, and a factor < 1 makes a negative pre-activation *larger*.
Under ties at the boundary every tied entry loses (fewer than k winners), as in the original; the
winners are computed as ``x > x_(k+1)``, which keeps exactly k where the original's ``x > θ`` loses
one to rounding (θ, the midpoint of two adjacent floats, rounding onto the k-th value).

Extensions (not in the original): ``WinnerTakeAll`` never mutates its input (the original's
in-place ``fill_`` was a bug); ``KWTAScheduler(compounding=False)`` gives a clean exponential
schedule; ``TripletLossSampler`` returns ``None`` with a warning when a batch yields no valid
triple (the original computed a NaN loss and its trainer skipped the step). The learnable
per-neuron threshold (``emb_size``) and the experimental ``SparsityPredictor`` are not ported:
neither is used in the original's experiments and the hard layer never trains the former.
"""
from . import layers, losses, models
from .layers import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .models import *  # noqa: F401,F403

__all__ = layers.__all__ + losses.__all__ + models.__all__
