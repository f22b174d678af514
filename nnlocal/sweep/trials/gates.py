"""Trial ``deep.logic_gate``: DEEP, DEEP one-hot or asymmetric EP on one logic gate, one seed."""
from __future__ import annotations

from ..registry import register

#: the trial's model names -> the notebook whose hyperparameters are the defaults
MODELS = {"deep": "DEEP", "deep_oh": "DEEP_oh", "asym_ep": "EP_asym"}
#: a solved net whose final free-phase MSE is below this is "solved confidently" (the demo's column)
CONFIDENT_MSE = 0.05


@register("deep.logic_gate", primary="solved",
          choices={"model": tuple(MODELS), "gate": ("XOR", "AND", "OR", "NOT", "ID"), "on_diverge": ("stop", "raise")})
def logic_gate(seed: int, *, gate: str = "XOR", model: str = "deep", epochs: int | None = None,
               T1: int | None = None, T2: int | None = None, dt: float | None = None, beta: float | None = None,
               dt_W: float | None = None, beta0: float | None = None, beta1: float | None = None,
               hidden=None, layered: bool = False, leak_abs: bool = False, sign: bool = False, stop: float = 0.0,
               regularized: bool = False, sparse: bool = False, persistent_mask: bool = False,
               reg_W: float | None = None, tol_W: float | None = None, temp: float | None = None,
               on_diverge: str = "stop") -> dict:
    """DEEP / DEEP one-hot / asymmetric EP on a logic gate: solved, final MSE, diverged.

    ``model``: ``deep`` (3-5-1), ``deep_oh`` (3-2-2, one-hot outputs) or ``asym_ep`` (the asymmetric-EP
    baseline, 3-5-1). Every parameter left at None takes the value the model's notebook saved
    (``deep.NOTEBOOK_HPARAMS``: 200 epochs, T1 = T2 = 1000 steps of dt 0.05, β 10 / 1 / 10, dt_W
    100 / 200 / 1; ``hidden`` [5] / [2] / [5]; ``reg_W``, ``tol_W``, ``temp`` from
    ``deep.SPARSITY_HPARAMS``); the others are the keywords of :func:`nnlocal.methods.deep.fit_many`
    and of the net's constructor. The seed is the net's ``rng`` (weights and initial states), so
    seeds 0..19 are the nets of the README's 20-seed table.

    Metrics: ``solved`` (free-phase classification error 0 at the last epoch, and not diverged),
    ``solved_confidently`` (solved with a final MSE below 0.05: not outputs that merely sit on the
    right side of 0.5, as asymmetric EP's do), ``final_mse`` (free-phase MSE of the last finite epoch), ``final_error``, ``diverged``,
    ``epochs_run``, ``first_solved_epoch`` (1-based first epoch with error 0; None if none) and
    ``edges`` (non-zero edges at the end). A diverging net is a result (``diverged``, not solved);
    ``on_diverge="raise"`` makes it a failed trial instead.
    """
    from ...methods import deep

    hp = deep.NOTEBOOK_HPARAMS[MODELS[model]]
    given = dict(epochs=epochs, T1=T1, T2=T2, dt=dt, beta=beta, dt_W=dt_W, beta0=beta0, beta1=beta1,
                 reg_W=reg_W, tol_W=tol_W, temp=temp)
    fit = {**hp["fit"], **deep.SPARSITY_HPARAMS, **{k: v for k, v in given.items() if v is not None}}
    X, Y = deep.logic_gate(gate, one_hot=hp["one_hot"])
    kwargs = dict(layered=layered, one_hot=hp["one_hot"], rng=seed)
    if hp["model"] == "DEEP":
        cls = deep.DEEPNet
        kwargs["leak_abs"] = leak_abs
    elif leak_abs:
        raise ValueError("deep.logic_gate: leak_abs applies to DEEP only, not to model='asym_ep'")
    else:
        cls = deep.AsymEPNet
    net = cls(X.shape[1], hp["hidden"] if hidden is None else hidden, Y.shape[1], **kwargs)
    h = deep.fit_many([net], X, Y, sign=sign, stop=stop, regularized=regularized, sparse=sparse,
                      persistent_mask=persistent_mask, on_diverge=on_diverge, **fit)[0]
    n = h["epochs_run"]
    solved = bool(n > 0 and h["final_error"] == 0 and not h["diverged"])
    final_mse = float(h["mse"][n - 1]) if n else None
    return {
        "solved": solved,
        "solved_confidently": solved and final_mse < CONFIDENT_MSE,
        "final_mse": final_mse,
        "final_error": h["final_error"],
        "diverged": bool(h["diverged"]),
        "epochs_run": n,
        "first_solved_epoch": h["first_solved_epoch"] + 1 if h["first_solved_epoch"] >= 0 else None,
        "edges": net.edges,
    }
