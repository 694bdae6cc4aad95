"""Analyses of finished runs (``reid analyse``, ``study.posthoc``): the same numbers as at training
time, their own file and provenance, refusals of stale or foreign weights, and the study path."""

from __future__ import annotations

import json

import pytest
import torch
from test_study_fixtures import TINY_OVERRIDES, registry, write_registry

from reid.cli import main
from reid.engine import train
from reid.engine.reanalysis import analyse_run, analysis_path, run_metrics
from reid.errors import ConfigError, ReidError
from reid.study import runner
from reid.study.registry import load_study

PLAIN = {**TINY_OVERRIDES, "eval.analyses": []}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same tiny run twice: without analyses, and with negatives_of_interest at training time."""
    root = tmp_path_factory.mktemp("reanalysis")
    plain = train("support_neighbor", scale="smoke", seed=0, out=root / "plain", overrides=PLAIN, progress=False)
    during = train("support_neighbor", scale="smoke", seed=0, out=root / "during", overrides=TINY_OVERRIDES, progress=False)
    return plain, during


def _fresh_copy(run, tmp_path):
    import shutil

    return shutil.copytree(run, tmp_path / "run")


def test_an_analysis_after_training_equals_the_same_analysis_during_training(runs, tmp_path):
    plain, during = runs
    run = _fresh_copy(plain, tmp_path)
    before = (run / "results.json").read_bytes()
    path = analyse_run(run, ["negatives_of_interest"], progress=False)["negatives_of_interest"]
    assert path == analysis_path(run, "negatives_of_interest") and path.is_file()
    assert (run / "results.json").read_bytes() == before  # results.json is never modified
    record = json.loads(path.read_text())
    at_training = json.loads((during / "results.json").read_text())["metrics"]
    assert record["metrics"] == {k: at_training[k] for k in ("neg_interest_k1", "neg_interest_k10")}
    assert record["weights_check_max_diff"] <= 1e-4
    results = json.loads(before)
    assert record["run"]["commit"] == results["git"]["commit"] and record["run"]["seed"] == 0
    assert record["git"]["commit"] and record["lock"]["sha256"] and record["hardware"]["cpu_cores"]
    merged = run_metrics(run, results, ["negatives_of_interest"])
    assert merged["negatives_of_interest.neg_interest_k10"] == at_training["neg_interest_k10"]
    assert merged["mAP"] == results["metrics"]["mAP"] and "neg_interest_k10" not in merged


def test_an_existing_file_is_kept_unless_overwrite(runs, tmp_path):
    run = _fresh_copy(runs[0], tmp_path)
    path = analyse_run(run, ["negatives_of_interest"], progress=False)["negatives_of_interest"]
    path.write_text(json.dumps({**json.loads(path.read_text()), "created": "marker"}))
    analyse_run(run, ["negatives_of_interest"], progress=False)
    assert json.loads(path.read_text())["created"] == "marker"
    analyse_run(run, ["negatives_of_interest"], overwrite=True, progress=False)
    assert json.loads(path.read_text())["created"] != "marker"


def test_weights_that_do_not_reproduce_the_runs_features_are_refused(runs, tmp_path):
    run = _fresh_copy(runs[0], tmp_path)
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    name = next(k for k, v in state["model"].items() if v.dtype.is_floating_point and v.dim() > 1)
    state["model"][name] = state["model"][name] + 0.5
    torch.save(state, run / "checkpoint.pt")
    with pytest.raises(ReidError, match="do not reproduce features.pt"):
        analyse_run(run, ["negatives_of_interest"], progress=False)
    assert not analysis_path(run, "negatives_of_interest").exists()


def test_an_analysis_of_another_training_is_refused_when_read(runs, tmp_path):
    run = _fresh_copy(runs[0], tmp_path)
    analyse_run(run, ["negatives_of_interest"], progress=False)
    results = json.loads((run / "results.json").read_text())
    with pytest.raises(ConfigError, match="another training"):
        run_metrics(run, {**results, "seed": 3}, ["negatives_of_interest"])
    with pytest.raises(ConfigError, match="reid analyse --run"):
        run_metrics(run, results, ["distractor_curve"])


def test_cli_errors_are_one_line_and_exit_2(runs, tmp_path, capsys):
    assert main(["analyse", "--run", str(tmp_path), "--analysis", "negatives_of_interest"]) == 2
    assert "no finished run" in capsys.readouterr().err
    assert main(["analyse", "--run", str(runs[1]), "--analysis", "negatives_of_interest"]) == 2
    assert "during training" in capsys.readouterr().err
    run = _fresh_copy(runs[0], tmp_path)
    (run / "checkpoint.pt").unlink()
    assert main(["analyse", "--run", str(run), "--analysis", "negatives_of_interest", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "checkpoint.pt" in err


def test_cli_prints_the_metrics_as_json(runs, tmp_path, capsys):
    run = _fresh_copy(runs[0], tmp_path)
    assert main(["analyse", "--run", str(run), "--analysis", "negatives_of_interest", "--json", "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["negatives_of_interest"]) == {"neg_interest_k1", "neg_interest_k10"}


def _posthoc_registry(**posthoc_changes):
    reg = registry(overrides=PLAIN, posthoc={"negatives_of_interest": ["batch_hard", "support_neighbor"]})
    reg["study"].update(posthoc_changes)
    reg["claims"][1]["test"]["metric"] = "negatives_of_interest.neg_interest_k10"
    return reg


def test_the_registry_checks_posthoc_analyses_and_their_metric_names(tmp_path):
    study = load_study(str(write_registry(tmp_path / "ok.json", _posthoc_registry())))
    assert study.posthoc_for("batch_hard") == ["negatives_of_interest"]
    bad = _posthoc_registry(posthoc={"no_such": ["batch_hard"]})
    with pytest.raises(ConfigError, match="unknown analysis 'no_such'"):
        load_study(str(write_registry(tmp_path / "a.json", bad)))
    bad = _posthoc_registry(posthoc={"negatives_of_interest": ["nobody"]})
    with pytest.raises(ConfigError, match="no variant 'nobody'"):
        load_study(str(write_registry(tmp_path / "b.json", bad)))
    bad = _posthoc_registry(posthoc={"negatives_of_interest": ["batch_hard"]})  # the claim reads both variants
    with pytest.raises(ConfigError, match="variant 'support_neighbor' produces no metric"):
        load_study(str(write_registry(tmp_path / "c.json", bad)))
    bad = registry(posthoc={"negatives_of_interest": ["batch_hard"]})  # already in eval.analyses
    with pytest.raises(ConfigError, match="already runs it during training"):
        load_study(str(write_registry(tmp_path / "d.json", bad)))


def test_a_study_runs_its_posthoc_analyses_after_training_and_reads_them(tmp_path):
    path = write_registry(tmp_path / "posthoc.json", _posthoc_registry())
    out = tmp_path / "evidence"
    plan = runner.run_study(str(path), seeds=2, jobs=1, out=out, allow_dirty=True, progress=False, plan_only=True)
    assert "post-hoc" not in plan["text"]  # nothing finished yet, so nothing to analyse
    summary = runner.run_study(str(path), seeds=2, jobs=1, out=out, allow_dirty=True, progress=False)
    assert summary["trained"] == 4 and summary["analysed"] == 4
    ev = json.loads((out / "tiny_demo.json").read_text())
    assert ev["posthoc"]["negatives_of_interest"]["runs"] == 4 and ev["posthoc"]["negatives_of_interest"]["commits"]
    claim = next(c for c in ev["claims"] if c["id"] == "sn_fewer_same_camera_errors")
    files = [json.loads(analysis_path(out / "tiny_demo" / "batch_hard" / f"seed{s}", "negatives_of_interest")
                        .read_text())["metrics"]["neg_interest_k10"] for s in (0, 1)]
    assert claim["baseline_values"] == pytest.approx(files, abs=1e-6)
    from reid.study.report import glue_keys, glue_values

    glued = glue_values(ev)
    assert list(glued) == glue_keys("tiny_demo", [c["id"] for c in ev["claims"]], ["negatives_of_interest"])
    assert glued["tiny_demo_posthoc_negatives_of_interest_commit"]
    again = runner.run_study(str(path), seeds=2, jobs=1, out=out, allow_dirty=True, progress=False)
    assert again["trained"] == 0 and again["analysed"] == 0
    analysis_path(out / "tiny_demo" / "support_neighbor" / "seed1", "negatives_of_interest").unlink()
    text = runner.run_study(str(path), seeds=2, out=out, allow_dirty=True, progress=False, plan_only=True)["text"]
    assert text.endswith("post-hoc negatives_of_interest: 1 finished run(s) to analyse")
    with pytest.raises(ConfigError, match="reid analyse --run"):
        runner.run_study(str(path), seeds=2, out=out, progress=False, aggregate_only=True)
