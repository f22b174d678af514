r"""BU-TD: top-down networks, GaLU gating, Counter-Hebb learning and instruction-guided multi-task learning.

Source: R. Abel and S. Ullman, "Biologically Inspired Learning Model for Instructed Vision"
(NeurIPS 2024; arXiv 2306.02415, earlier "Top-Down Network Combines Back-Propagation with
Attention"); code ``royabel/Top-Down-Networks`` (PyTorch, no licence: nnlocal re-derives the maths,
written out in ``reference.py`` and docs/butd.md, and copies no code).

Reading path:

1. ``reference.py``: the equations in plain NumPy, with shapes: GaLU, the BU and TD passes of a
   layer, the Counter-Hebb update (and why it equals backprop with shared weights), the task-head
   straight-through estimator (extension);
2. ``layers.py``: ``BUTDLinear``, ``BUTDConv2d`` (TD pass = the transposed convolution),
   ``depthwise_pool``, ``BUTDFlatten``; ``blocks.py``: ``BUTDSequential``, ``BUTDBasicBlock``;
3. ``models.py``: ``BUTDNet``, ``TaskBUTDNet``, ``counter_hebb_``, ``loss_and_grad``;
4. ``architectures.py``: the original's FC net, "simple net" and ResNet-18 cores;
   ``analysis.py``: the task masks of a guided net and their statistics;
   ``baselines.py``: ``HardSharingNet``, the hard-parameter-sharing multi-task baseline.

``cpu.py`` holds the Numba GaLU kernel (it beats the NumPy reference at every size BU-TD uses:
measured, see docs/butd.md), ``cuda.py`` its GPU twin; the layers pick one through
:func:`nnlocal.kernels.implementation`.

Top-down weights (``top_down=``): ``"shared"`` (W̄ = Wᵀ, the exact-backprop setting),
``"separate"`` (own W̄, Kaiming-uniform a = 0, learnt with the same transposed increment as W:
the original's "asymmetric" runs), ``"symmetric"`` (own W̄ initialised to Wᵀ, the original's
``SymWeights``) and ``"fa"`` (own W̄, frozen: feedback alignment, the original's ``FA``).

Where nnlocal departs from the original:

* Output gradients carry the batch mean: ``grad_logits`` is dL/d(logits) of the *mean* loss (what
  nnlocal's losses' ``backward()`` return, see :func:`loss_and_grad`), and CH sums over the batch.
  The original feeds per-sample gradients and averages in the update; the products are identical.
* ``multi_decoders`` works for any number of tasks (the original's CH path hard-codes two).
* The bottom layer's TD output (an image-sized array nothing reads) is not computed during learning
  (``need_output=False``), like autograd skipping dL/dx of the input.
* BatchNorm is not ported: CH is exact only without normalisation, and the original's two BN
  modules (one per direction) are never updated by CH.
* **Extension** ``TaskBUTDNet(train_task_head=True)``: the original never trains its task head
  (its TD pass runs under no_grad and GaLU passes no gradient to its gate). nnlocal can train it
  with a straight-through estimator through the gates; see :class:`TaskBUTDNet`.
* ``device="cuda"`` runs the GaLU gating of the BU and TD passes on the GPU; the convolutions,
  matrix products and the task-head STE stay on the CPU, so it only proves the kernel.
* Public entry points reject non-finite input and keep a copy of what they are given (in-place
  edits of an input after ``forward`` do not change any gradient).
"""
from . import analysis, architectures, baselines, blocks, layers, models
from .analysis import *  # noqa: F401,F403
from .architectures import *  # noqa: F401,F403
from .blocks import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from .models import *  # noqa: F401,F403
from .baselines import *  # noqa: F401,F403

__all__ = (layers.__all__ + blocks.__all__ + models.__all__ + architectures.__all__ + analysis.__all__
           + baselines.__all__)
