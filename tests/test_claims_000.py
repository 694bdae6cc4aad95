"""Paper 000's claims registry (reid/papers/000.json): every claim can be run as registered."""

from __future__ import annotations

import pytest

import json
from pathlib import Path

from reid.engine.analyses import declared_metrics
from reid.papers import load_paper
from reid.recipes import load_recipe
from reid.study.registry import load_study
from reid.study.selection import selection_path, unapplied

REGISTRY = load_paper("000")
STUDY, CLAIMS = REGISTRY["study"], REGISTRY["claims"]
RUN_METRICS = {"mAP", "rank1", "rank5", "rank10", "mINP"} | declared_metrics(STUDY["overrides"]["eval.analyses"])
REPO = Path(__file__).resolve().parents[1]


def test_study_block():
    assert (STUDY["chapter"], STUDY["recipe"], STUDY["scale"]) == ("smc_ecd", "smc_ecd", "study")
    assert STUDY["seeds"] >= 5
    # the five rows of Table III, the lambda sweeps and the 2-camera contrast are all trained
    names = {v["loss.name"] for v in STUDY["variants"].values()}
    assert names == {"softmax", "center", "gcl", "smc", "smc_ecd"}
    assert any(v.get("data.synth_cameras") == 2 for v in STUDY["variants"].values())


@pytest.mark.parametrize("variant", sorted(STUDY["variants"]))
def test_every_variant_is_a_valid_study_recipe(variant):
    load_recipe("smc_ecd", STUDY["scale"], {**STUDY["overrides"], **STUDY["variants"][variant]})


def test_the_study_runs_with_the_values_its_validation_selection_chose():
    """evidence/smc_ecd/selection.json (python -m reid.study.selection smc_ecd) is applied to the variants."""
    path = selection_path(REPO / "evidence", "smc_ecd")
    if not path.is_file():
        pytest.skip("no selection yet: run `python -m reid.study.selection smc_ecd` before the study")
    doc = json.loads(path.read_text())
    assert doc["split"] == "validation" and doc["validation_ids"] == STUDY["selection"]["validation_ids"]
    assert [s["key"] for s in doc["steps"]] == [s["key"] for s in STUDY["selection"]["steps"]]
    assert unapplied(load_study("smc_ecd", check_recipes=False), doc) == []


def test_claim_ids_unique_and_tests_well_formed():
    ids = [c["id"] for c in CLAIMS]
    assert len(ids) == len(set(ids))
    for c in CLAIMS:
        t = c["test"]
        assert c["claim"] and c["source"], c["id"]
        assert t["baseline"] in STUDY["variants"] and t["variant"] in STUDY["variants"], c["id"]
        assert t["expected"] in ("greater", "less", "equal"), c["id"]
        rule = t["rule"]
        assert rule["name"] in ("ci95", "equivalence"), c["id"]
        assert (t["expected"] == "equal") == (rule["name"] == "equivalence"), c["id"]
        if rule["name"] == "equivalence":
            assert 0 < rule["margin"] < 0.05  # metrics are fractions: 0.01 = one point
        if "minus" in t:
            assert {t["minus"]["baseline"], t["minus"]["variant"]} <= set(STUDY["variants"])
        if "change_ratio" in t:  # Table V's figure of merit against the same seed's softmax run
            d = t["change_ratio"]
            assert (d["reference"], d["numerator"], d["factor"]) == ("softmax", "neg_interest_k10", -1), c["id"]
            assert t["metric"] == f"F_{d['denominator']}" and d["denominator"] in RUN_METRICS, c["id"]
        else:
            assert t["metric"] in RUN_METRICS, c["id"]
        assert t.get("baseline_metric", t["metric"]) in RUN_METRICS | {t["metric"]}


def test_paper_numbers_match_the_transcribed_tables():
    t3 = REGISTRY["tables"]["Table III (Market-1501)"]
    col = {m: i for i, m in enumerate(t3["columns"])}
    row = {"softmax": "Softmax", "gcl": "GCL", "center": "Center", "smc": "SMC", "smc_ecd": "SMC+ECD"}
    checked = 0
    for c in CLAIMS:
        t, p = c["test"], c["paper"]
        if p and c["source"].startswith("Table III (Market") and p["metric"] in col:
            assert p["baseline"] == t3["rows"][row[t["baseline"]]][col[p["metric"]]], c["id"]
            assert p["variant"] == t3["rows"][row[t["variant"]]][col[p["metric"]]], c["id"]
            checked += 1
    assert checked >= 16
