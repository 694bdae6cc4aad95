"""The statistics behind every verdict: seed-paired differences, t-intervals, decision rules.

A claim compares two variants trained with the same seeds. Seed ``k`` of the baseline and seed
``k`` of the variant share the data order and the initialisation draw, so the unit of evidence is
the **paired difference** ``d_k = variant_k - baseline_k``. With ``n`` seeds,

    mean  d̄ = (1/n) Σ d_k,    sd  s = sqrt(Σ (d_k - d̄)² / (n - 1)),    se = s / sqrt(n),

and the two-sided ``level`` t-interval is ``d̄ ± t_{(1+level)/2, n-1} · se`` (``scipy.stats.t``).

Decision rules (``expected`` is the direction the paper predicts for variant − baseline):

``ci95`` (default)
    95% interval wholly on the expected side of 0 → ``supported``; wholly on the other side →
    ``contradicted``; otherwise (it contains 0) → ``inconclusive``.
``min_effect`` (``delta`` > 0, in the metric's stored units)
    ``supported`` only when the whole 95% interval lies beyond ``delta`` on the expected side
    (greater: lo > delta; less: hi < -delta); ``contradicted`` when wholly on the other side of 0;
    otherwise ``inconclusive``. For claims like "improves by a meaningful amount".
``equivalence`` (``margin`` > 0; ``expected`` must be ``"equal"``)
    Two one-sided tests (TOST) at α = 0.05 each, i.e. the **90%** interval: inside
    ``(-margin, +margin)`` → ``supported`` (the difference is smaller than the margin);
    wholly outside ``[-margin, +margin]`` (lo > margin or hi < -margin) → ``contradicted`` (a
    difference larger than the margin, at the same one-sided 5% level); otherwise
    ``inconclusive``. The 95% interval is still reported for display.
``slope`` (``x``, ``metrics``, optional ``x_scale`` and ``delta``)
    For curve claims: each run's metric values at the points ``x`` become one number, the
    least-squares slope against ``log10(x)`` (``x_scale: "log10"``, default) or ``x``; the per-seed
    slopes are then paired like any other metric and decided by ``ci95`` (or ``min_effect`` when
    ``delta`` is given).

All intervals use strict inequalities: an interval touching 0 (or δ, or the margin) is
inconclusive. Fewer than two seeds give no interval and the verdict ``inconclusive``.

For the benchmark chapter, which compares different recipes (seeds are not paired across
recipes), :func:`welch_test` gives Welch's unequal-variance t-test with its t critical value,
and :func:`pairwise_welch_holm` runs it over **all** pairs with Holm's step-down correction.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy import stats as _sps

from reid.errors import ConfigError

__all__ = [
    "VERDICTS", "RULES", "EXPECTED",
    "TInterval", "Decision", "WelchResult",
    "paired_differences", "t_interval", "decide", "slope", "run_slopes",
    "welch_test", "holm", "pairwise_welch_holm",
]  # fmt: skip

VERDICTS = ("supported", "contradicted", "inconclusive")
#: rule name -> (required parameters, optional parameters)
RULES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "ci95": ((), ()),
    "min_effect": (("delta",), ()),
    "equivalence": (("margin",), ()),
    "slope": (("x", "metrics"), ("x_scale", "delta")),
}
#: allowed ``expected`` values per rule
EXPECTED = {"ci95": ("greater", "less"), "min_effect": ("greater", "less"), "equivalence": ("equal",),
            "slope": ("greater", "less")}
X_SCALES = ("log10", "linear")


@dataclass(frozen=True)
class TInterval:
    """Mean, sd, n and the two-sided ``level`` t-interval of a sample (``lo``/``hi`` None if n < 2)."""

    n: int
    mean: float
    sd: float | None
    level: float
    df: int | None
    t_crit: float | None
    lo: float | None
    hi: float | None

    @property
    def interval(self) -> list[float] | None:
        return None if self.lo is None else [self.lo, self.hi]


@dataclass(frozen=True)
class Decision:
    """A verdict and the numbers it was computed from."""

    verdict: str
    diffs: list[float]
    ci95: TInterval
    decision: TInterval  # the interval the rule compared (95%, or 90% for equivalence)
    rule: dict


def _as_array(values: Sequence[float], what: str) -> np.ndarray:
    arr = np.asarray(list(values), dtype=float)
    if arr.ndim != 1:
        raise ConfigError(f"{what} must be a flat list of numbers, got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ConfigError(f"{what} holds a non-finite value ({arr.tolist()}); a run diverged: inspect it.")
    return arr


def paired_differences(baseline: Sequence[float], variant: Sequence[float]) -> np.ndarray:
    """``variant[k] - baseline[k]`` per seed; both lists must hold the same seeds in the same order."""
    b, v = _as_array(baseline, "baseline values"), _as_array(variant, "variant values")
    if len(b) != len(v):
        raise ConfigError(f"paired values need the same seeds: {len(b)} baseline vs {len(v)} variant values.")
    return v - b


def t_interval(values: Sequence[float], level: float = 0.95) -> TInterval:
    """Mean ± ``t_{(1+level)/2, n-1}`` · sd/√n (Student's t, ``scipy.stats.t``)."""
    x = _as_array(values, "values")
    n = len(x)
    if n == 0:
        raise ConfigError("no values: a t-interval needs at least one seed.")
    mean = float(x.mean())
    if n < 2:
        return TInterval(n, mean, None, level, None, None, None, None)
    sd = float(x.std(ddof=1))
    df = n - 1
    t_crit = float(_sps.t.ppf(0.5 + level / 2, df))
    half = t_crit * sd / math.sqrt(n)
    return TInterval(n, mean, sd, level, df, t_crit, mean - half, mean + half)


def slope(x: Sequence[float], y: Sequence[float], x_scale: str = "log10") -> float:
    """Least-squares slope of ``y`` against ``log10(x)`` (default) or ``x``."""
    if x_scale not in X_SCALES:
        raise ConfigError(f"x_scale must be one of {', '.join(X_SCALES)}, got {x_scale!r}.")
    xs, ys = _as_array(x, "x"), _as_array(y, "curve values")
    if len(xs) != len(ys) or len(xs) < 2:
        raise ConfigError(f"a slope needs >= 2 points and one y per x, got {len(xs)} x and {len(ys)} y.")
    if x_scale == "log10":
        if np.any(xs <= 0):
            raise ConfigError(f"x_scale log10 needs positive x, got {xs.tolist()}.")
        xs = np.log10(xs)
    if np.ptp(xs) == 0:
        raise ConfigError(f"a slope needs at least two distinct x values, got {xs.tolist()}.")
    xc = xs - xs.mean()
    return float((xc * (ys - ys.mean())).sum() / (xc * xc).sum())


def run_slopes(curves: Sequence[Sequence[float]], x: Sequence[float], x_scale: str = "log10") -> list[float]:
    """One slope per run (``curves[k]`` is run ``k``'s metric at the points ``x``)."""
    return [slope(x, curve, x_scale) for curve in curves]


def _check_rule(rule: Mapping, expected: str) -> dict:
    rule = dict(rule or {"name": "ci95"})
    name = rule.get("name", "ci95")
    if name not in RULES:
        raise ConfigError(f"unknown decision rule {name!r}; choose one of {', '.join(RULES)}.")
    if expected not in EXPECTED[name]:
        raise ConfigError(f"rule {name!r} needs expected in {EXPECTED[name]}, got {expected!r}.")
    return {**rule, "name": name}


def decide(rule: Mapping | None, expected: str, baseline: Sequence[float], variant: Sequence[float]) -> Decision:
    """The verdict of ``rule`` on seed-paired values (see the module docstring).

    For the ``slope`` rule, ``baseline`` and ``variant`` are already the per-seed slopes
    (:func:`run_slopes`).
    """
    rule = _check_rule(rule, expected)
    diffs = paired_differences(baseline, variant)
    ci95 = t_interval(diffs, 0.95)
    name = rule["name"]
    delta = float(rule.get("delta", 0.0) or 0.0)
    if name == "equivalence":
        margin = float(rule["margin"])
        used = t_interval(diffs, 0.90)
        if used.lo is None:
            verdict = "inconclusive"
        elif -margin < used.lo and used.hi < margin:
            verdict = "supported"
        elif used.lo > margin or used.hi < -margin:
            verdict = "contradicted"
        else:
            verdict = "inconclusive"
        return Decision(verdict, diffs.tolist(), ci95, used, rule)
    used = ci95
    if used.lo is None:
        verdict = "inconclusive"
    elif expected == "greater":
        verdict = "supported" if used.lo > delta else "contradicted" if used.hi < 0 else "inconclusive"
    else:
        verdict = "supported" if used.hi < -delta else "contradicted" if used.lo > 0 else "inconclusive"
    return Decision(verdict, diffs.tolist(), ci95, used, rule)


# ------------------------------------------------------------------------------- benchmark
@dataclass(frozen=True)
class WelchResult:
    """Welch's t-test of ``mean(b) - mean(a)``: statistic, Welch–Satterthwaite df, two-sided p,
    the t critical value at ``level`` and the matching confidence interval of the difference."""

    diff: float
    se: float
    t: float
    df: float
    p: float
    t_crit: float
    lo: float
    hi: float


def welch_test(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> WelchResult:
    """Welch's unequal-variance t-test of ``b`` against ``a`` (difference ``mean(b) - mean(a)``).

    ``se² = s_a²/n_a + s_b²/n_b``; ``df = se⁴ / ((s_a²/n_a)²/(n_a-1) + (s_b²/n_b)²/(n_b-1))``;
    ``t = diff / se``; ``p = 2·(1 - F_t(|t|; df))``; interval ``diff ± t_{(1+level)/2, df}·se``.
    """
    xa, xb = _as_array(a, "first group"), _as_array(b, "second group")
    if len(xa) < 2 or len(xb) < 2:
        raise ConfigError(f"Welch's test needs >= 2 values per group, got {len(xa)} and {len(xb)}.")
    va, vb = xa.var(ddof=1) / len(xa), xb.var(ddof=1) / len(xb)
    diff = float(xb.mean() - xa.mean())
    se = math.sqrt(va + vb)
    if se == 0:
        t = math.copysign(math.inf, diff) if diff else 0.0
        p = 0.0 if diff else 1.0
        return WelchResult(diff, 0.0, t, float(len(xa) + len(xb) - 2), p, math.nan, diff, diff)
    df = (va + vb) ** 2 / (va**2 / (len(xa) - 1) + vb**2 / (len(xb) - 1))
    t = diff / se
    p = float(2 * _sps.t.sf(abs(t), df))
    t_crit = float(_sps.t.ppf(0.5 + level / 2, df))
    return WelchResult(diff, se, t, float(df), p, t_crit, diff - t_crit * se, diff + t_crit * se)


def holm(pvalues: Sequence[float], alpha: float = 0.05) -> tuple[list[float], list[bool]]:
    """Holm's step-down adjustment: ``p_(i) · (m - i + 1)`` in ascending order, made monotone and
    capped at 1; returns (adjusted p-values in the input order, rejections at ``alpha``)."""
    p = np.asarray(list(pvalues), dtype=float)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty(m)
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, p[idx] * (m - rank)))
        adjusted[idx] = running
    return adjusted.tolist(), [bool(a <= alpha) for a in adjusted]


def pairwise_welch_holm(groups: Mapping[str, Sequence[float]], *, alpha: float = 0.05) -> list[dict]:
    """Welch's test for **every** pair of groups (in the mapping's order), Holm-corrected over all pairs.

    Each row: ``a``, ``b``, ``mean_a``, ``mean_b``, ``diff`` (b − a), ``se``, ``t``, ``df``,
    ``t_crit`` (95%), ``ci95``, ``p``, ``p_holm``, ``significant`` (p_holm ≤ alpha).
    """
    names = list(groups)
    rows = []
    for a, b in itertools.combinations(names, 2):
        res = welch_test(groups[a], groups[b])
        rows.append({
            "a": a, "b": b, "mean_a": float(np.mean(groups[a])), "mean_b": float(np.mean(groups[b])),
            "diff": res.diff, "se": res.se, "t": res.t, "df": res.df, "t_crit": res.t_crit,
            "ci95": [res.lo, res.hi], "p": res.p,
        })  # fmt: skip
    adjusted, reject = holm([r["p"] for r in rows], alpha)
    for row, adj, rej in zip(rows, adjusted, reject):
        row["p_holm"], row["significant"] = adj, rej
    return rows
