r"""Per-cell statistics of a sweep: success rates with Wilson intervals, and numeric summaries.

**Boolean metrics** (e.g. ``solved``): k successes in n done trials give the rate p̂ = k/n and the
Wilson score interval at 95 % (z = Φ⁻¹(0.975) ≈ 1.96)::

    centre = (p̂ + z²/(2n)) / (1 + z²/n)
    half   = z / (1 + z²/n) · sqrt(p̂(1 - p̂)/n + z²/(4n²))
    [centre - half, centre + half]

Unlike p̂ ± z·sqrt(p̂(1-p̂)/n) it stays inside [0, 1] and does not collapse to a point at k = 0 or
k = n (0 of 20 gives [0, 16.1 %], not [0, 0]).

**Numeric metrics**: n, mean, sample standard deviation (ddof 1), median, first and third
quartiles (linear interpolation, NumPy's default), and the 95 % t-interval of the mean
(mean ± t₀.₉₇₅,ₙ₋₁ · std/√n) that the bar charts draw. Missing values (a trial's None, e.g. a
non-finite result) are left out of n.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["Z95", "wilson_interval", "metric_kinds", "summarize_cell"]

#: Φ⁻¹(0.975), the two-sided 95 % normal quantile
Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval ``(low, high)`` of a binomial proportion (nan, nan for n = 0)."""
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"wilson_interval: need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return float("nan"), float("nan")
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def metric_kinds(metric_dicts) -> dict[str, str]:
    """``{metric: 'bool' | 'numeric' | 'text'}`` over all trials, in first-seen order (None ignored)."""
    kinds: dict[str, str] = {}
    for metrics in metric_dicts:
        for key, value in metrics.items():
            if value is None:
                kinds.setdefault(key, "")
                continue
            kind = "bool" if isinstance(value, bool) else "numeric" if isinstance(value, (int, float)) else "text"
            old = kinds.get(key)
            kinds[key] = kind if not old or old == kind else "text"
    return {k: v or "numeric" for k, v in kinds.items()}


def _numeric(values) -> dict:
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    n = int(v.size)
    if n == 0:
        return {"n": 0}
    std = float(v.std(ddof=1)) if n > 1 else float("nan")
    half = float(_t975(n - 1) * std / math.sqrt(n)) if n > 1 else float("nan")
    q1, median, q3 = (float(q) for q in np.percentile(v, [25, 50, 75]))
    return {"n": n, "mean": float(v.mean()), "std": std, "median": median, "q1": q1, "q3": q3,
            "ci_low": float(v.mean()) - half, "ci_high": float(v.mean()) + half}


def _t975(dof: int) -> float:
    from scipy.stats import t

    return float(t.ppf(0.975, dof))


def summarize_cell(metric_dicts: list[dict], kinds: dict[str, str]) -> dict[str, dict]:
    """Statistics per metric over the done trials of one cell.

    bool -> ``{n, successes, rate, low, high}`` (Wilson 95 %); numeric -> see :func:`_numeric`;
    text -> ``{n, values: {value: count}}``.
    """
    out = {}
    for key, kind in kinds.items():
        values = [m.get(key) for m in metric_dicts]
        present = [v for v in values if v is not None]
        if kind == "bool":
            k, n = sum(bool(v) for v in present), len(present)
            low, high = wilson_interval(k, n)
            out[key] = {"n": n, "successes": k, "rate": k / n if n else float("nan"), "low": low, "high": high}
        elif kind == "numeric":
            out[key] = _numeric(present)
        else:
            counts: dict[str, int] = {}
            for v in present:
                counts[str(v)] = counts.get(str(v), 0) + 1
            out[key] = {"n": len(present), "values": counts}
    return out
