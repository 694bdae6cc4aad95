"""reid.study.stats: hand-worked intervals, every decision rule on constructed cases, Welch, Holm, slopes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reid.errors import ConfigError
from reid.study.stats import decide, holm, pairwise_welch_holm, paired_differences, run_slopes, slope, t_interval, welch_test


# ------------------------------------------------------------------------------ t-interval
def test_t_interval_hand_worked():
    # d = 1..5: mean 3, sd sqrt(2.5) = 1.58114, se = 0.70711, t_{0.975, 4} = 2.77645
    ti = t_interval([1, 2, 3, 4, 5])
    assert ti.n == 5 and ti.df == 4 and ti.mean == 3.0
    assert ti.sd == pytest.approx(1.5811388300841898)
    assert ti.t_crit == pytest.approx(2.7764451051977987)
    assert (ti.lo, ti.hi) == pytest.approx((3 - 1.9632432, 3 + 1.9632432))
    ninety = t_interval([1, 2, 3, 4, 5], 0.90)  # t_{0.95, 4} = 2.13185
    assert (ninety.lo, ninety.hi) == pytest.approx((3 - 1.5074441, 3 + 1.5074441))


def test_t_interval_degenerate_inputs():
    one = t_interval([0.4])
    assert one.n == 1 and one.lo is None and one.sd is None
    flat = t_interval([0.2, 0.2, 0.2])
    assert flat.sd == pytest.approx(0, abs=1e-12) and flat.lo == pytest.approx(0.2) and flat.hi == pytest.approx(0.2)
    with pytest.raises(ConfigError, match="non-finite"):
        t_interval([0.1, float("nan")])
    with pytest.raises(ConfigError, match="same seeds"):
        paired_differences([1, 2], [1, 2, 3])


def test_paired_difference_is_variant_minus_baseline():
    assert paired_differences([0.5, 0.6], [0.7, 0.5]).tolist() == pytest.approx([0.2, -0.1])


# ------------------------------------------------------------------------------ rules
BASE = [0.50, 0.52, 0.48, 0.51, 0.49]


def shifted(d):
    """Variant values whose paired differences are exactly ``d``."""
    return [b + x for b, x in zip(BASE, d)]


@pytest.mark.parametrize(
    ("diffs", "expected", "verdict"),
    [
        ([0.03, 0.04, 0.05, 0.04, 0.03], "greater", "supported"),
        ([0.03, 0.04, 0.05, 0.04, 0.03], "less", "contradicted"),
        ([-0.03, -0.04, -0.05, -0.04, -0.03], "less", "supported"),
        ([-0.03, -0.04, -0.05, -0.04, -0.03], "greater", "contradicted"),
        ([0.05, -0.04, 0.03, -0.02, 0.01], "greater", "inconclusive"),
        ([0.0, 0.0, 0.0, 0.0, 0.0], "greater", "inconclusive"),  # an interval touching 0 decides nothing
    ],
)
def test_ci95_rule(diffs, expected, verdict):
    d = decide({"name": "ci95"}, expected, BASE, shifted(diffs))
    assert d.verdict == verdict
    assert d.diffs == pytest.approx(diffs)


def test_min_effect_needs_the_whole_interval_beyond_delta():
    diffs = [0.03, 0.04, 0.05, 0.04, 0.03]  # mean 0.038, 95% CI about [0.028, 0.048]
    assert decide({"name": "min_effect", "delta": 0.02}, "greater", BASE, shifted(diffs)).verdict == "supported"
    # the same data, a larger delta inside the interval: real but not shown to be that large
    assert decide({"name": "min_effect", "delta": 0.03}, "greater", BASE, shifted(diffs)).verdict == "inconclusive"
    assert decide({"name": "min_effect", "delta": 0.02}, "less", BASE, shifted(diffs)).verdict == "contradicted"
    neg = [-x for x in diffs]
    assert decide({"name": "min_effect", "delta": 0.02}, "less", BASE, shifted(neg)).verdict == "supported"
    # ci95 would call this supported; min_effect does not
    small = [0.004, 0.005, 0.006, 0.005, 0.004]
    assert decide({"name": "ci95"}, "greater", BASE, shifted(small)).verdict == "supported"
    assert decide({"name": "min_effect", "delta": 0.01}, "greater", BASE, shifted(small)).verdict == "inconclusive"


def test_equivalence_uses_the_90_percent_interval():
    tiny = [0.001, -0.002, 0.002, 0.0, -0.001]  # mean 0, sd 0.00158, 90% CI +-0.0015
    d = decide({"name": "equivalence", "margin": 0.01}, "equal", BASE, shifted(tiny))
    assert d.verdict == "supported" and d.decision.level == 0.90
    assert d.ci95.level == 0.95 and d.ci95.hi > d.decision.hi
    big = [0.05, 0.06, 0.05, 0.055, 0.06]
    assert decide({"name": "equivalence", "margin": 0.01}, "equal", BASE, shifted(big)).verdict == "contradicted"
    noisy = [0.02, -0.03, 0.01, 0.0, -0.01]
    assert decide({"name": "equivalence", "margin": 0.01}, "equal", BASE, shifted(noisy)).verdict == "inconclusive"
    # the 90% and 95% intervals differ where it matters: inside the margin at 90%, not at 95%
    edge = [0.0, 0.006, -0.004, 0.004, -0.002]
    d = decide({"name": "equivalence", "margin": 0.0055}, "equal", BASE, shifted(edge))
    assert d.decision.lo > -0.0055 and d.decision.hi < 0.0055 < d.ci95.hi  # 90%: [-0.0032, 0.0048]; 95% to 0.0060
    assert d.verdict == "supported"


def test_rule_and_expected_must_match():
    with pytest.raises(ConfigError, match="expected"):
        decide({"name": "equivalence", "margin": 0.01}, "greater", BASE, BASE)
    with pytest.raises(ConfigError, match="unknown decision rule"):
        decide({"name": "vibes"}, "greater", BASE, BASE)


def test_one_seed_is_inconclusive():
    assert decide(None, "greater", [0.1], [0.9]).verdict == "inconclusive"


@given(st.lists(st.floats(-1, 1, allow_nan=False), min_size=2, max_size=8), st.sampled_from(["greater", "less"]))
def test_ci95_verdict_flips_with_the_sign_of_the_data(diffs, expected):
    base = [0.0] * len(diffs)
    a = decide(None, expected, base, diffs).verdict
    b = decide(None, expected, base, [-x for x in diffs]).verdict
    assert {a, b} <= {"supported", "contradicted", "inconclusive"}
    assert (a == "supported") == (b == "contradicted") and (a == "inconclusive") == (b == "inconclusive")


# ------------------------------------------------------------------------------ slopes
def test_slope_against_log10_x():
    assert slope([10, 100, 1000], [0.5, 0.4, 0.3]) == pytest.approx(-0.1)
    assert slope([1, 2, 3], [2, 4, 6], x_scale="linear") == pytest.approx(2.0)
    with pytest.raises(ConfigError, match="positive"):
        slope([0, 10], [1, 2])
    # a curve claim: the variant's curve falls faster (steeper negative slope) on every seed
    x = [100, 1000, 10000]
    base = run_slopes([[0.6, 0.55, 0.5], [0.62, 0.56, 0.51], [0.58, 0.54, 0.49], [0.6, 0.56, 0.5], [0.61, 0.55, 0.5]], x)
    var = run_slopes([[0.6, 0.5, 0.4], [0.63, 0.52, 0.41], [0.59, 0.5, 0.39], [0.6, 0.51, 0.4], [0.62, 0.5, 0.41]], x)
    assert decide({"name": "slope", "x": x, "metrics": ["a", "b", "c"]}, "less", base, var).verdict == "supported"


# ------------------------------------------------------------------------------ Welch and Holm
def test_welch_hand_worked():
    # a: mean 3, var 2.5; b: mean 6, var 10; se^2 = 0.5 + 2 = 2.5; df = 6.25 / (0.0625 + 1) = 5.88235
    res = welch_test([1, 2, 3, 4, 5], [2, 4, 6, 8, 10])
    assert res.diff == 3.0 and res.se == pytest.approx(math.sqrt(2.5))
    assert res.t == pytest.approx(3 / math.sqrt(2.5)) and res.df == pytest.approx(5.882352941)
    from scipy import stats

    assert res.p == pytest.approx(stats.ttest_ind([2, 4, 6, 8, 10], [1, 2, 3, 4, 5], equal_var=False).pvalue)
    assert res.t_crit == pytest.approx(stats.t.ppf(0.975, 5.882352941))
    assert (res.lo, res.hi) == pytest.approx((3 - res.t_crit * math.sqrt(2.5), 3 + res.t_crit * math.sqrt(2.5)))


def test_holm_hand_worked():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> monotone 0.02, 0.03, 0.06, 0.06
    adjusted, reject = holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert reject == [True, False, False, True]
    assert holm([0.6, 0.9])[0] == pytest.approx([1.0, 1.0])  # capped at 1


def test_pairwise_welch_holm_covers_every_pair():
    rng = np.random.default_rng(0)
    groups = {name: (rng.normal(mu, 0.01, 5)).tolist() for name, mu in (("a", 0.3), ("b", 0.3), ("c", 0.5), ("d", 0.31))}
    rows = pairwise_welch_holm(groups)
    assert [(r["a"], r["b"]) for r in rows] == [("a", "b"), ("a", "c"), ("a", "d"), ("b", "c"), ("b", "d"), ("c", "d")]
    assert all(r["p_holm"] >= r["p"] for r in rows)
    by_pair = {(r["a"], r["b"]): r for r in rows}
    assert by_pair["a", "c"]["significant"] and not by_pair["a", "b"]["significant"]
