"""The notebooks' tasks and measures: logic gates, their hyperparameters, MSE and classification error."""
from __future__ import annotations

import numpy as np

from ...data.synthetic import logic_gate as _data_logic_gate

__all__ = ["logic_gate", "NOTEBOOK_HPARAMS", "SPARSITY_HPARAMS", "mse", "classification_error"]


def logic_gate(name: str, one_hot: bool = False, dtype=np.float64, bias: bool = False):
    """The notebooks' logic gates (XOR, AND, OR, NOT, ID) from :func:`nnlocal.data.logic_gate`.

    Returns ``X`` (n, k) without the constant-1 bias column (``DEEPNet`` appends it as the last
    input itself; ``bias=True`` keeps it, as ``nnlocal.data.logic_gate`` returns it) and ``Y``
    (n, 1) 0/1 targets or (n, 2) one-hot (column c = class c).
    """
    X, Y = _data_logic_gate(name, one_hot=one_hot, dtype=dtype)
    return (X if bias else np.ascontiguousarray(X[:, :-1])), Y


#: the hyperparameters saved in the three notebooks (DEEP, DEEP one-hot, asymmetric EP on XOR)
NOTEBOOK_HPARAMS = {
    "DEEP": dict(model="DEEP", hidden=[5], one_hot=False,
                 fit=dict(epochs=200, T1=1000, T2=1000, dt=0.05, beta=10.0, dt_W=100.0, beta0=0.0, beta1=1.0)),
    "DEEP_oh": dict(model="DEEP", hidden=[2], one_hot=True,
                    fit=dict(epochs=200, T1=1000, T2=1000, dt=0.05, beta=1.0, dt_W=200.0, beta0=0.0, beta1=1.0)),
    "EP_asym": dict(model="AsymEP", hidden=[5], one_hot=False,
                    fit=dict(epochs=200, T1=1000, T2=1000, dt=0.05, beta=10.0, dt_W=1.0)),
}
#: shared by all three: L1 / sparsification settings (off by default)
SPARSITY_HPARAMS = dict(reg_W=1.5e-4, tol_W=0.01, temp=5.0)


def mse(out: np.ndarray, Y: np.ndarray) -> float:
    """The notebooks' MSE: ½ · mean over samples of Σ_k (y_k - s_k)² (0.125 for outputs stuck at 0.5)."""
    return 0.5 * float(np.mean(np.sum((Y - out) ** 2, axis=-1)))


def labels(values: np.ndarray, one_hot: bool) -> np.ndarray:
    """Predicted labels: argmax (one-hot) or ``value ≥ 0.5`` (the notebook's ``heaviside(y - 0.5, 1)``)."""
    if one_hot:
        return np.argmax(values, axis=-1)
    lab = (values >= 0.5).astype(np.int64)
    return lab[..., 0] if lab.shape[-1] == 1 else lab


def classification_error(out: np.ndarray, Y: np.ndarray, one_hot: bool) -> float:
    """Fraction of samples whose predicted label (argmax, or the 0.5 threshold) differs from the target."""
    wrong = labels(out, one_hot) != labels(Y, one_hot)
    if wrong.ndim > 1:
        wrong = wrong.any(axis=-1)
    return float(np.mean(wrong))
