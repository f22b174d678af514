"""DEEP: equilibrium propagation on complete directed graphs, and the asymmetric-EP baseline.

Source: M. Tristany Farinha, S. Pequito, P. A. Santos, M. Figueiredo, "Equilibrium Propagation for
Complete Directed Neural Networks", ESANN 2020 (arXiv:2006.08798), and its three NumPy notebooks
(re-derived here from the equations, not copied). The baseline is the vector-field ("asymmetric")
EP of Scellier, Mehri, Ororbia & Bengio (2018). docs/deep.md has the results and the deviations.

Reading path:

1. ``reference.py`` - the equations in plain NumPy: the graph constraints, the dynamics (the
   field, one Euler step, the hoisted linear form), the STDP and asymmetric-EP updates, L1 and the
   Boltzmann sparsification;
2. ``nets.py`` - :class:`DEEPNet` and :class:`AsymEPNet` (validation, relaxation, checkpoints);
3. ``training.py`` - :class:`FitConfig` and :func:`fit_many` (one epoch's maths in ``_epoch``, the
   rest is bookkeeping: history, divergence);
4. ``tasks.py`` (logic gates, the notebooks' hyperparameters, MSE) and ``diagnostics.py``
   (Jacobians, Gershgorin discs).

``cpu.py`` (Numba) and ``cuda.py`` (``numba.cuda``) hold twins of the reference functions that the
models call, with the same signatures; :mod:`nnlocal.kernels` chooses between them.

Where nnlocal departs from the notebooks (all documented in docs/deep.md): prediction uses ``dt``
(the notebook's ``test_predcitions`` used 2·dt); an early stop records what was measured (the
notebook logged zeros); only summaries are recorded, not the ~115 MB of trajectories per net; seeds
everywhere; a divergence guard. Extensions, labelled: ``persistent_mask=True``, ``clip=False``,
``leak_abs=True``, :func:`fit_many`'s batching of seeds.
"""
from .diagnostics import asym_ep_jacobian, deep_jacobian, gershgorin
from .nets import AsymEPNet, DEEPNet
from .reference import boltzmann_sparsify, complete_mask, layered_mask
from .tasks import NOTEBOOK_HPARAMS, SPARSITY_HPARAMS, classification_error, logic_gate, mse
from .training import WEIGHT_BOUND, FitConfig, fit_many

__all__ = ["DEEPNet", "AsymEPNet", "fit_many", "FitConfig", "WEIGHT_BOUND", "logic_gate", "complete_mask",
           "layered_mask", "boltzmann_sparsify", "gershgorin", "deep_jacobian", "asym_ep_jacobian",
           "NOTEBOOK_HPARAMS", "SPARSITY_HPARAMS", "mse", "classification_error"]
