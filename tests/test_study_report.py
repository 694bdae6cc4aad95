"""Aggregation from hand-made finished runs (known numbers), the evidence format, tables, glue keys, figures."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import pytest
from test_study_fixtures import TINY_REGISTRY, fake_run, registry, write_registry

from reid.errors import ReidError
from reid.study import report
from reid.study.evidence import aggregate, write_evidence
from reid.study.registry import load_study
from reid.viz.evidence import plot_claim_seeds, plot_claims_seeds, plot_forest

BH_MAP = [0.50, 0.52, 0.48, 0.51, 0.49]
SN_MAP = [b + d for b, d in zip(BH_MAP, [0.03, 0.04, 0.05, 0.04, 0.03])]  # diff mean 0.038, 95% CI [0.02761, 0.04839]
BH_NEG = [60.0, 62.0, 58.0, 61.0, 59.0]
SN_NEG = [57.0, 58.0, 56.0, 57.0, 55.0]  # diffs -3, -4, -2, -4, -4: mean -3.4, 95% CI [-4.5106, -2.2894]


def _metrics(m, neg):
    return {"rank1": m + 0.2, "rank5": m + 0.3, "rank10": m + 0.35, "mAP": m, "mAP_trapezoid": m - 0.01,
            "mINP": m - 0.2, "neg_interest_k1": neg - 10, "neg_interest_k10": neg}


@pytest.fixture
def evidence(tmp_path):
    study = load_study(str(write_registry(tmp_path / "tiny.json")))
    out = tmp_path / "evidence"
    for s in study.seeds:
        fake_run(out, "tiny_demo", "batch_hard", s, study.configs["batch_hard"], _metrics(BH_MAP[s], BH_NEG[s]))
        fake_run(out, "tiny_demo", "support_neighbor", s, study.configs["support_neighbor"], _metrics(SN_MAP[s], SN_NEG[s]))
    (out / "tiny_demo" / "sessions.jsonl").write_text(
        '{"commit": "' + "a" * 40 + '", "dirty": false, "jobs": 2, "runs": 10, "wall_seconds": 930.0}\n')
    ev = aggregate(study, out)
    write_evidence(ev, out)
    return ev, out, study


def test_aggregated_numbers_are_the_hand_worked_ones(evidence):
    ev, _, _ = evidence
    by_id = {c["id"]: c for c in ev["claims"]}
    m = by_id["sn_beats_bh_map"]
    assert m["diff_mean"] == pytest.approx(0.038) and m["n"] == 5 and m["df"] == 4
    assert m["ci95"] == pytest.approx([0.0276114, 0.0483886], abs=1e-6)
    assert m["t_crit"] == pytest.approx(2.776445) and m["diff_sd"] == pytest.approx(0.0083666, abs=1e-6)
    assert m["verdict"] == "supported" and m["baseline_values"] == BH_MAP
    assert m["display"] == {"factor": 100, "unit": "points"} and m["paper"]["variant"] == 73.43
    neg = by_id["sn_fewer_same_camera_errors"]
    assert neg["diff_mean"] == pytest.approx(-3.4) and neg["ci95"] == pytest.approx([-4.510578, -2.289422], abs=1e-6)
    assert neg["verdict"] == "supported"  # the whole interval is below -delta = -1
    assert ev["commit"] == "a" * 40 and ev["dirty"] is False and ev["meets_min_seeds"] is True
    assert ev["timings"]["study_wall_seconds"] == 930.0 and ev["timings"]["runs_cpu_seconds"] == 90.0
    assert ev["variants"]["batch_hard"]["metrics"]["mAP"]["mean"] == pytest.approx(0.5)
    assert ev["label"] == "SynthReID, smoke scale, CPU, n = 5 seeds" and ev["comparisons"] == []


def test_evidence_file_is_sorted_rounded_and_reproducible(evidence):
    ev, out, study = evidence
    path = out / "tiny_demo.json"
    text = path.read_text()
    assert json.loads(text) == ev and text.endswith("\n")
    assert list(json.loads(text)) == sorted(ev)  # sorted keys: reruns diff cleanly
    write_evidence(aggregate(study, out), out)
    assert path.read_text() == text


def test_mixed_commits_are_reported(evidence):
    _, out, study = evidence
    fake_run(out, "tiny_demo", "batch_hard", 0, study.configs["batch_hard"], _metrics(BH_MAP[0], BH_NEG[0]), commit="c" * 40)
    ev = aggregate(study, out)
    assert ev["commit"] == "mixed" and ev["run_commits"] == ["a" * 40, "c" * 40]


def test_a_missing_metric_names_the_run_and_the_fix(evidence):
    _, out, study = evidence
    fake_run(out, "tiny_demo", "support_neighbor", 3, study.configs["support_neighbor"], {"mAP": 0.5})
    with pytest.raises(ReidError, match=r"seed3.*neg_interest_k10.*eval\.analyses"):
        aggregate(study, out)


def test_glue_values_and_keys(evidence, monkeypatch):
    ev, _, _ = evidence
    values = report.glue_values(ev)
    assert list(values) == report.glue_keys("tiny_demo", ["sn_beats_bh_map", "sn_fewer_same_camera_errors"])
    assert values["sn_beats_bh_map_verdict"] == "supported"
    assert values["sn_beats_bh_map_diff"] == pytest.approx(3.8)
    assert values["sn_beats_bh_map_ci"] == "[+2.8, +4.8]"
    assert values["sn_beats_bh_map_summary"] == "+3.8 points mAP (95% CI [+2.8, +4.8], n = 5 seeds): supported"
    assert values["sn_beats_bh_map_paper"] == "69.14 -> 73.43 mAP (Market-1501, Table 1)"
    assert values["sn_fewer_same_camera_errors_paper"] == "not printed"
    assert values["sn_fewer_same_camera_errors_unit"] == "" and values["sn_fewer_same_camera_errors_ci_hi"] == pytest.approx(-2.2894)
    assert values["tiny_demo_wall_minutes"] == 15.5 and values["tiny_demo_supported"] == 2
    assert values["tiny_demo_verdict_counts"] == "0 contradicted, 0 inconclusive, 2 supported"
    assert values["tiny_demo_contradicted_list"] == values["tiny_demo_inconclusive_list"] == "none"
    glued = []
    import myst_nb

    monkeypatch.setattr(myst_nb, "glue", lambda key, value, display=True: glued.append((key, value, display)))
    assert report.glue_evidence(ev) == values
    assert [k for k, _, _ in glued] == list(values) and not any(d for _, _, d in glued)


def test_tables(evidence, tmp_path):
    ev, out, _ = evidence
    table = report.claim_table(ev).to_markdown()
    assert "sn_beats_bh_map" in table and "+3.8 points" in table and "[+2.8, +4.8]" in table
    assert "50.0 ± 1.6" in table and "supported" in table and "69.14 -> 73.43" in table
    board = report.scoreboard_table(out)
    assert board is not None and len(board.rows) == 2 and board.rows[0]["chapter"] == "{doc}`tiny_demo`"
    assert report.scoreboard_table(tmp_path / "nothing") is None
    with pytest.raises(ReidError, match=r"run `reid study support_neighbor`"):
        report.load_evidence("support_neighbor", tmp_path / "nothing")


def test_benchmark_style_comparisons(tmp_path):
    reg = registry(variants={**TINY_REGISTRY["study"]["variants"], "batch_all": {"loss.name": "batch_all"}},
                   comparisons={"metrics": ["mAP"]})
    study = load_study(str(write_registry(tmp_path / "b.json", reg)))
    out = tmp_path / "evidence"
    shift = {"batch_hard": 0.0, "support_neighbor": 0.05, "batch_all": 0.002}
    for v in study.variants:
        for s in study.seeds:
            fake_run(out, "tiny_demo", v, s, study.configs[v], _metrics(BH_MAP[s] + shift[v] + 0.003 * (s % 2), 50.0))
    ev = aggregate(study, out)
    rows = ev["comparisons"]
    assert [(r["a"], r["b"]) for r in rows] == [("batch_hard", "support_neighbor"), ("batch_hard", "batch_all"),
                                                ("support_neighbor", "batch_all")]
    assert all(r["p_holm"] >= r["p"] for r in rows) and rows[0]["significant"] and not rows[1]["significant"]
    assert len(report.comparisons_table(ev).rows) == 3


def test_figures(evidence):
    ev, _, _ = evidence
    fig = plot_claims_seeds(ev)
    assert len([a for a in fig.axes if a.has_data()]) == 2
    ax = plot_claim_seeds(ev["claims"][0], label=ev["label"])
    assert len(ax.lines) >= 5 and "supported" in ax.get_title()  # one line per seed pair
    forest = plot_forest(ev)
    assert [t.get_text().split()[0] for t in forest.get_yticklabels()] == ["sn_fewer_same_camera_errors", "sn_beats_bh_map"]
    plt.close("all")


def test_slope_claims_aggregate_per_seed_slopes(tmp_path, monkeypatch):
    from reid.engine import analyses

    names = ["gallery_mAP@10", "gallery_mAP@100", "gallery_mAP@1000"]
    monkeypatch.setitem(analyses.ANALYSES, "gallery_curve", (lambda *a: {}, tuple(names)))
    reg = registry(overrides={**TINY_REGISTRY["study"]["overrides"], "eval.analyses": ["gallery_curve"]})
    reg["claims"] = [{"id": "sn_flatter_gallery_curve", "claim": "SN's mAP falls more slowly with gallery size.",
                      "source": "Fig. 4", "test": {"baseline": "batch_hard", "variant": "support_neighbor",
                                                   "metric": "mAP vs gallery size", "expected": "greater",
                                                   "rule": {"name": "slope", "x": [10, 100, 1000], "metrics": names}}}]
    study = load_study(str(write_registry(tmp_path / "slope.json", reg)))
    out = tmp_path / "evidence"
    for s in study.seeds:  # batch-hard loses 0.1 per decade, SN 0.05 (+ a little seed noise)
        for v, per_decade in (("batch_hard", -0.10), ("support_neighbor", -0.05 + 0.002 * s)):
            curve = {n: 0.6 + per_decade * k for k, n in enumerate(names)}
            fake_run(out, "tiny_demo", v, s, study.configs[v], {**_metrics(0.5, 50.0), **curve})
    (claim,) = aggregate(study, out)["claims"]
    assert claim["baseline_values"] == pytest.approx([-0.1] * 5)
    assert claim["variant_values"] == pytest.approx([-0.05 + 0.002 * s for s in range(5)])
    assert claim["verdict"] == "supported" and claim["x"] == [10, 100, 1000] and len(claim["variant_curves"]) == 5
    assert claim["display"]["unit"] == "per decade"
