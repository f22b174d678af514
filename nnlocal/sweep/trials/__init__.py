"""The built-in trials, one or more per method, registered by name (``nnlocal sweep run --list``).

=====================  =====================================================================
trial                  what one trial does (defaults: seconds on the 8x8 digits)
=====================  =====================================================================
deep.logic_gate        DEEP, DEEP one-hot or asymmetric EP on a logic gate; solved / MSE / diverged
eqprop.classify        symmetric EP (Scellier & Bengio's net1 recipe); test error
arp.mlp                the arpkeras MLP with AutoRot, classic or AutoRot-off layers; test accuracy
kwta.sdr               kWTA binary SDRs with a triplet loss, or the softmax twin; test accuracy
pan.lenet5_vs_tron     LeNet-5 and Tron (PAN) from the same seed; both accuracies and their gap
butd.counter_hebb      the BU-TD FC net trained by Counter-Hebb or backprop; test accuracy
butd.multitask         guided multi-task BU-TD vs two single-task nets on Multi-<dataset>
=====================  =====================================================================

Every trial takes ``seed`` and keyword parameters with defaults, is deterministic given both, and
returns a flat dict of numbers, bools and strings. The image trials take ``dataset`` (digits,
fashion-mnist, mnist, ... as :func:`nnlocal.data.load_dataset` names them) and ``max_train`` (0 =
the whole training set). Accuracies and errors are in percent (``*_pct``).
"""
from . import classifiers, gates, topdown  # noqa: F401  (importing registers the trials)
