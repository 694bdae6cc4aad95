"""Claims whose per-seed values combine several runs: ``baseline_metric``, ``minus``, ``change_ratio``.

Hand-made finished runs with known numbers; every statistic below is worked out by hand (the
paired t-interval of 5 seeds uses t_{0.975, 4} = 2.776445). Plus each schema error of the three
keys, and the tables/figures of a claim whose ratio is undefined at one seed.
"""

from __future__ import annotations

import copy

import matplotlib.pyplot as plt
import pytest
from test_study_fixtures import TINY_REGISTRY, fake_run, write_registry

from reid.errors import ConfigError
from reid.study import report
from reid.study.evidence import aggregate
from reid.study.registry import load_study
from reid.viz.evidence import plot_claims_seeds, plot_forest

A_MAP = [0.50, 0.52, 0.48, 0.51, 0.49]
MAP = {
    "a": A_MAP,
    "b": [x + d for x, d in zip(A_MAP, [0.03, 0.04, 0.05, 0.04, 0.03])],
    "c": [x + 0.01 for x in A_MAP],
    "d": [x + 0.02 for x in A_MAP],
    "e": [x + d for x, d in zip(A_MAP, [0.01, 0.01, 0.0, 0.01, 0.01])],  # seed 2: the same rank-1 as "a"
}
A_NEG = [60.0, 62.0, 58.0, 61.0, 59.0]
NEG = {"a": A_NEG, "b": [x - d for x, d in zip(A_NEG, [3, 4, 2, 4, 4])], "c": [x - 1 for x in A_NEG],
       "d": [x - 2 for x in A_NEG], "e": [x - 1 for x in A_NEG]}
F_RATIO = {"reference": "a", "numerator": "neg_interest_k10", "denominator": "rank1", "factor": -1}


def _claim(cid, baseline, variant, metric="mAP", **extra):
    return {"id": cid, "claim": f"{cid}.", "source": "test",
            "test": {"baseline": baseline, "variant": variant, "metric": metric, "expected": "greater",
                     "rule": {"name": "ci95"}, **extra}}


REGISTRY = copy.deepcopy(TINY_REGISTRY)
REGISTRY["study"]["chapter"] = "tiny_combined"
REGISTRY["study"]["notes"] = ["Variants a-e share one recipe; only their hand-made metrics differ."]
REGISTRY["study"]["variants"] = {v: {"loss.name": "batch_hard"} for v in MAP}
REGISTRY["claims"] = [
    _claim("cross_metric", "a", "b", baseline_metric="mAP_trapezoid"),
    _claim("did", "a", "b", minus={"baseline": "c", "variant": "d"}),
    _claim("ratio", "c", "b", metric="F_rank1", change_ratio=F_RATIO),
    _claim("ratio_undefined", "c", "e", metric="F_rank1", change_ratio=F_RATIO),
]


def _metrics(v, s):
    m = MAP[v][s]
    return {"rank1": m + 0.2, "rank5": m + 0.3, "rank10": m + 0.35, "mAP": m, "mAP_trapezoid": m - 0.01,
            "mINP": m - 0.2, "neg_interest_k1": NEG[v][s] - 10, "neg_interest_k10": NEG[v][s]}


@pytest.fixture
def evidence(tmp_path):
    study = load_study(str(write_registry(tmp_path / "combined.json", REGISTRY)))
    out = tmp_path / "evidence"
    for v in MAP:
        for s in study.seeds:
            fake_run(out, "tiny_combined", v, s, study.configs[v], _metrics(v, s))
    return aggregate(study, out), study


def test_hand_worked_values(evidence):
    ev, study = evidence
    c = {x["id"]: x for x in ev["claims"]}
    assert study.notes == ("Variants a-e share one recipe; only their hand-made metrics differ.",)
    # baseline a's mAP_trapezoid (mAP - 0.01) against b's mAP: diffs 0.04 0.05 0.06 0.05 0.04
    x = c["cross_metric"]
    assert x["baseline_values"] == pytest.approx([m - 0.01 for m in A_MAP]) and x["variant_values"] == MAP["b"]
    assert x["diff_mean"] == pytest.approx(0.048) and x["ci95"] == pytest.approx([0.0376114, 0.0583886], abs=1e-6)
    assert (x["verdict"], x["baseline_label"], x["variant_label"]) == ("supported", "a (mAP_trapezoid)", "b (mAP)")
    assert x["display"] == {"factor": 100, "unit": "points"}
    # (b - a) - (d - c): 0.02 0.03 0.04 0.03 0.02, stored as the pair (d - c, b - a)
    x = c["did"]
    assert x["baseline_values"] == pytest.approx([0.01] * 5) and x["diffs"] == pytest.approx([0.02, 0.03, 0.04, 0.03, 0.02])
    assert x["diff_mean"] == pytest.approx(0.028) and x["ci95"] == pytest.approx([0.0176114, 0.0383886], abs=1e-6)
    assert x["verdict"] == "supported" and x["runs"]["minus_variant"][0].endswith("tiny_combined/d/seed0")
    assert (x["baseline_label"], x["variant_label"]) == ("d − c", "b − a")
    # F = -(Neg(L) - Neg(a)) / (rank1(L) - rank1(a)): c: 1 / 0.01 = 100 at every seed;
    # b: 3/0.03, 4/0.04, 2/0.05, 4/0.04, 4/0.03 = 100, 100, 40, 100, 133.33
    x = c["ratio"]
    assert x["baseline_values"] == pytest.approx([100.0] * 5)
    assert x["variant_values"] == pytest.approx([100.0, 100.0, 40.0, 100.0, 400 / 3], abs=1e-6)
    assert x["diff_mean"] == pytest.approx(-16 / 3, abs=1e-6) and x["verdict"] == "inconclusive"
    assert x["display"] == {"factor": 1, "unit": ""} and x["undefined_seeds"] == [] and x["runs"]["reference"]
    # seed 2 of e has the reference's rank-1: no ratio, no interval, inconclusive
    x = c["ratio_undefined"]
    assert x["variant_values"][2] is None and x["undefined_seeds"] == [2] and x["n"] == 5
    assert (x["ci95"], x["diff_mean"], x["verdict"]) == (None, None, "inconclusive")


def test_tables_glue_and_figures_show_the_combination(evidence):
    ev, _ = evidence
    rows = {r["claim"]: r for r in report.claim_rows(ev)}
    assert rows["did"]["comparison"] == "b − a vs d − c" and rows["did"]["difference"] == "+2.8 points"
    assert rows["ratio_undefined"]["95% CI"] == "[no interval: no ratio at seed(s) 2]"
    glued = report.glue_values(ev)
    assert glued["ratio_undefined_verdict"] == "inconclusive" and glued["ratio_undefined_diff"] is None
    assert glued["cross_metric_summary"].startswith("+4.8 points mAP")
    plot_claims_seeds(ev)
    plot_forest(ev)
    plt.close("all")


def test_keeping_some_variants_keeps_only_the_claims_they_decide(tmp_path):
    path = write_registry(tmp_path / "combined.json", REGISTRY)
    kept = load_study(str(path), variants=["a", "b", "c"], check_recipes=False)
    assert [c.id for c in kept.claims] == ["cross_metric", "ratio"]  # "did" also reads d, "ratio_undefined" e


def _with(fn):
    reg = copy.deepcopy(REGISTRY)
    fn(reg["claims"][0]["test"], reg)
    return reg


CASES = {
    "two combinations": (lambda t, r: t.update(minus={"baseline": "c", "variant": "d"}), "use at most one"),
    "with slope": (lambda t, r: t.update(rule={"name": "slope", "x": [1, 10], "metrics": ["mAP", "rank1"]}),
                   "does not combine with the slope rule"),
    "same metric": (lambda t, r: t.update(baseline_metric="mAP"), "equals test.metric"),
    "unknown baseline metric": (lambda t, r: t.update(baseline_metric="jb_mAP"), "variant 'a' produces no metric 'jb_mAP'"),
    "minus unknown": (lambda t, r: (t.pop("baseline_metric"), t.update(minus={"baseline": "z", "variant": "d"})),
                      "test.minus.baseline 'z' is not a variant"),
    "minus own pair": (lambda t, r: (t.pop("baseline_metric"), t.update(minus={"baseline": "a", "variant": "b"})),
                       "repeats the claim's own pair"),
    "minus shape": (lambda t, r: (t.pop("baseline_metric"), t.update(minus=["c", "d"])), "test.minus must be"),
    "ratio reference is a side": (lambda t, r: (t.pop("baseline_metric"), t.update(change_ratio={**F_RATIO, "reference": "b"})),
                                  "one of the compared variants"),
    "ratio shape": (lambda t, r: (t.pop("baseline_metric"), t.update(change_ratio={"reference": "c"})), "must look like"),
    "ratio factor": (lambda t, r: (t.pop("baseline_metric"), t.update(change_ratio={**F_RATIO, "reference": "c", "factor": 0})),
                     "factor must be a non-zero number"),
    "ratio metric": (lambda t, r: (t.pop("baseline_metric"), t.update(change_ratio={**F_RATIO, "reference": "c", "numerator": "neg"})),
                     "produces no metric 'neg'"),
    "notes": (lambda t, r: r["study"].update(notes="one note"), "study.notes must be a list"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_schema_errors(case, tmp_path):
    mutate, fragment = CASES[case]
    path = write_registry(tmp_path / "combined.json", _with(mutate))
    with pytest.raises(ConfigError) as info:
        load_study(str(path))
    assert fragment in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)
