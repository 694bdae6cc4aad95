"""``reid study``: end to end on the tiny SynthReID preset, skip, resume, never destroy, refuse a dirty tree.

One module-scoped study (2 variants × 2 seeds × 2 tiny epochs, two worker processes) is trained
once; the other tests reuse it. The whole module takes well under a minute of CPU.
"""

from __future__ import annotations

import json

import pytest
from test_study_fixtures import TINY_REGISTRY, registry, write_registry

from reid.cli import main
from reid.engine import Callback, train
from reid.errors import ConfigError
from reid.study import runner
from reid.study.registry import load_study

#: The keys the issue fixes for other tools (evidence/<chapter>.json).
ISSUE_KEYS = {"chapter", "commit", "scale", "claims"}
ISSUE_CLAIM_KEYS = {"id", "claim", "source", "metric", "baseline", "variant", "expected", "seeds", "baseline_values",
                    "variant_values", "runs", "diff_mean", "ci95", "n", "verdict"}


class Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    path = write_registry(root / "tiny.json")
    summary = runner.run_study(str(path), seeds=2, jobs=2, out=root / "evidence", allow_dirty=True, progress=False)
    return root, path, summary


def test_end_to_end_two_variants_two_seeds_two_processes(study_dir):
    root, _, summary = study_dir
    assert summary["trained"] == 4 and summary["skipped"] == 0
    out = root / "evidence"
    for variant in ("batch_hard", "support_neighbor"):
        for seed in (0, 1):
            run = out / "tiny_demo" / variant / f"seed{seed}"
            results = json.loads((run / "results.json").read_text())
            assert results["seed"] == seed and results["recipe"]["loss"]["name"] == variant
            assert "neg_interest_k10" in results["metrics"]  # the analysis ran inside the trainer
            assert results["study"]["wall_seconds"] > 0 and results["study"]["cpu_seconds"] > 0
            assert (run / "log.jsonl").is_file()
    ev = json.loads((out / "tiny_demo.json").read_text())
    assert ISSUE_KEYS <= set(ev) and ev["scale"] == "smoke" and ev["seeds"] == [0, 1]
    assert ev["meets_min_seeds"] is False and ev["label"] == "SynthReID, smoke scale, CPU, n = 2 seeds"
    assert ev["lock"]["sha256"] and ev["hardware"]["cpu_cores"] and ev["timings"]["study_wall_seconds"] > 0
    assert set(ev["timings"]["per_run"]) == {"batch_hard", "support_neighbor"}
    claims = {c["id"]: c for c in ev["claims"]}
    assert set(claims) == {"sn_beats_bh_map", "sn_fewer_same_camera_errors"}
    for c in claims.values():
        assert ISSUE_CLAIM_KEYS <= set(c)
        assert c["n"] == 2 and c["verdict"] in ("supported", "contradicted", "inconclusive")
        assert c["runs"]["baseline"] == ["evidence/tiny_demo/batch_hard/seed0", "evidence/tiny_demo/batch_hard/seed1"]
        assert c["diffs"] == pytest.approx([v - b for b, v in zip(c["baseline_values"], c["variant_values"])], abs=2e-6)
    m = claims["sn_beats_bh_map"]
    stored = [json.loads((out / "tiny_demo" / "batch_hard" / f"seed{s}" / "results.json").read_text())["metrics"]["mAP"]
              for s in (0, 1)]
    assert m["baseline_values"] == pytest.approx(stored, abs=1e-6)
    assert claims["sn_fewer_same_camera_errors"]["rule"] == {"name": "min_effect", "delta": 1.0}


def test_a_second_call_skips_everything_and_writes_the_same_bytes(study_dir):
    root, path, _ = study_dir
    evidence = root / "evidence" / "tiny_demo.json"
    before = evidence.read_bytes()
    again = runner.run_study(str(path), seeds=2, jobs=2, out=root / "evidence", allow_dirty=True, progress=False)
    assert again["trained"] == 0 and again["skipped"] == 4
    assert evidence.read_bytes() == before
    # --aggregate-only through the CLI rebuilds it identically too
    evidence.unlink()
    assert main(["study", str(path), "--seeds", "2", "--out", str(root / "evidence"), "--aggregate-only"]) == 0
    assert evidence.read_bytes() == before


def test_an_interrupted_run_is_resumed_and_finished_runs_are_untouched(study_dir):
    root, path, _ = study_dir
    out = root / "evidence"
    study = load_study(str(path), seeds=3)
    killed = out / "tiny_demo" / "batch_hard" / "seed2"

    def stop(trainer, epoch):
        if epoch == 1:
            raise Interrupted

    with pytest.raises(Interrupted):
        train("support_neighbor", scale="smoke", seed=2, out=killed, progress=False,
              overrides=study.variants["batch_hard"].overrides, callbacks=[Callback(on_epoch_end=stop)])
    assert (killed / "checkpoint.pt").is_file() and not (killed / "results.json").exists()
    states = {(s.variant, s.seed): s.state for s in runner.plan(study, out)}
    assert states == {("batch_hard", 0): "finished", ("batch_hard", 1): "finished", ("batch_hard", 2): "resume",
                      ("support_neighbor", 0): "finished", ("support_neighbor", 1): "finished",
                      ("support_neighbor", 2): "new"}
    finished = out / "tiny_demo" / "batch_hard" / "seed0" / "results.json"
    stamp = finished.stat().st_mtime_ns
    summary = runner.run_study(str(path), seeds=3, jobs=1, out=out, allow_dirty=True, progress=False)
    assert summary["trained"] == 2 and summary["skipped"] == 4
    resumed = json.loads((killed / "results.json").read_text())
    assert resumed["study"]["resumed"] is True and resumed["epochs"] == 2
    assert [json.loads(line)["epoch"] for line in (killed / "log.jsonl").read_text().splitlines()] == [1, 2]
    assert finished.stat().st_mtime_ns == stamp
    ev = json.loads((out / "tiny_demo.json").read_text())
    assert ev["seeds"] == [0, 1, 2] and ev["timings"]["sessions"] == 2


def test_a_finished_run_of_another_recipe_is_never_replaced(study_dir, tmp_path):
    root, _, _ = study_dir
    changed = registry(overrides={**TINY_REGISTRY["study"]["overrides"], "loss.margin": 0.5})
    path = write_registry(tmp_path / "changed.json", changed)
    results = root / "evidence" / "tiny_demo" / "batch_hard" / "seed0" / "results.json"
    before = results.read_bytes()
    with pytest.raises(ConfigError, match=r"loss\.margin: [0-9.]+ -> 0\.5.*never deleted"):
        runner.run_study(str(path), seeds=2, out=root / "evidence", allow_dirty=True, progress=False)
    assert results.read_bytes() == before
    with pytest.raises(ConfigError, match="another recipe"):
        runner.run_study(str(path), seeds=2, out=root / "evidence", aggregate_only=True, progress=False)


def test_plan_lists_every_run_and_its_state(study_dir, capsys):
    root, path, _ = study_dir
    assert main(["study", str(path), "--seeds", "2", "--out", str(root / "evidence"), "--plan"]) == 0
    text = capsys.readouterr().out
    assert "batch_hard" in text and "finished" in text and "4 finished of 4 runs" in text


def test_refuses_a_dirty_tree_and_missing_runs(tmp_path, monkeypatch, capsys):
    path = write_registry(tmp_path / "tiny.json")
    monkeypatch.setattr(runner, "git_state", lambda **kw: {"commit": "b" * 40, "dirty": True, "changes": ["reid/x.py"]})
    with pytest.raises(ConfigError, match=r"uncommitted changes \(reid/x\.py\).*--allow-dirty"):
        runner.run_study(str(path), seeds=2, out=tmp_path / "evidence", progress=False)
    assert not (tmp_path / "evidence" / "tiny_demo").exists()
    assert main(["study", str(path), "--seeds", "2", "--out", str(tmp_path / "evidence"), "--aggregate-only"]) == 2
    assert "run `reid study tiny_demo`" in capsys.readouterr().err


def test_git_state_ignores_the_evidence_folder(tmp_path):
    import subprocess

    repo = tmp_path / "repo"
    (repo / "evidence").mkdir(parents=True)
    for f in ("code.py", "evidence/x.json"):
        (repo / f).write_text("1")
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*git, "-C", str(repo), "add", "."], check=True)
    subprocess.run([*git, "-C", str(repo), "commit", "-qm", "x"], check=True)
    (repo / "evidence" / "x.json").write_text("2")
    state = runner.git_state(repo, ignore=repo / "evidence")
    assert state["dirty"] is False and len(state["commit"]) == 40
    (repo / "code.py").write_text("2")
    assert runner.git_state(repo, ignore=repo / "evidence")["changes"] == ["code.py"]


def test_runs_of_several_commits_record_the_package_files_that_differ(tmp_path):
    import subprocess

    from reid.study.evidence import code_changes

    repo = tmp_path / "repo"
    (repo / "reid").mkdir(parents=True)
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t", "-C", str(repo)]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    shas = []
    for name, text in (("reid/loss.py", "1"), ("README.md", "2"), ("reid/loss.py", "3")):
        (repo / name).write_text(text)
        subprocess.run([*git, "add", "."], check=True)
        subprocess.run([*git, "commit", "-qm", name], check=True)
        shas.append(subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip())
    assert code_changes({shas[0]: 3}, repo) is None  # one commit: nothing to say
    out = code_changes({shas[0]: 1, shas[1]: 4, shas[2]: 2}, repo)
    assert out["base"] == shas[1]  # the commit most runs used
    assert out["changes"] == {shas[0]: [], shas[2]: ["reid/loss.py"]}  # README.md is outside reid/
    assert code_changes({shas[0]: 2, "f" * 40: 1}, repo)["changes"] == {"f" * 40: ["unknown"]}


def test_a_recipe_stored_before_a_key_existed_reads_as_that_keys_old_behaviour():
    from reid.recipes import KEYS_ADDED_LATER
    from reid.study.evidence import comparable_recipe

    new = {"data": {"layout": "market", "synth_preset": "smoke"}, "eval": {"protocol": "market_sq"}, "runtime": {}}
    old = {"data": {"synth_preset": "smoke"}, "eval": {}}
    assert comparable_recipe(old) == comparable_recipe(new)
    assert comparable_recipe({**old, "eval": {"protocol": "single_shot"}}) != comparable_recipe(new)
    assert {("data", "layout"), ("eval", "protocol")} <= set(KEYS_ADDED_LATER)


def test_a_diverged_run_is_recorded_never_retried_and_left_out_of_its_claims(study_dir, tmp_path, monkeypatch):
    import shutil
    from dataclasses import asdict

    import reid.engine
    from reid.errors import NonFiniteError

    root, path, _ = study_dir
    out = tmp_path / "evidence"
    shutil.copytree(root / "evidence", out)
    run = out / "tiny_demo" / "support_neighbor" / "seed1"
    shutil.rmtree(run)
    study = load_study(str(path), seeds=2)
    spec = next(s for s in runner.plan(study, out) if (s.variant, s.seed) == ("support_neighbor", 1))
    assert spec.state == "new"

    def diverges(*args, **kwargs):
        raise NonFiniteError("training stopped at epoch 1, iteration 3: SupportNeighborLoss: features holds NaN")

    monkeypatch.setattr(reid.engine, "train", diverges)
    with pytest.raises(NonFiniteError):
        runner.execute_run(asdict(spec))
    record = json.loads((run / "diverged.json").read_text())
    assert record["seed"] == 1 and "iteration 3" in record["error"] and not (run / "results.json").exists()
    assert {(s.variant, s.seed): s.state for s in runner.plan(study, out)}[("support_neighbor", 1)] == "diverged"
    summary = runner.run_study(str(path), seeds=2, jobs=1, out=out, allow_dirty=True, progress=False)
    assert summary["trained"] == 0  # never retried: the same seed diverges the same way
    ev = json.loads((out / "tiny_demo.json").read_text())
    assert ev["diverged_runs"] == ["evidence/tiny_demo/support_neighbor/seed1"]
    assert ev["variants"]["support_neighbor"]["diverged_seeds"] == [1]
    for claim in ev["claims"]:
        assert claim["seeds"] == [0] and claim["n"] == 1 and claim["excluded_seeds"] == {"1": ["support_neighbor diverged"]}
    from reid.study.report import glue_values

    assert "seed 1 left out: support_neighbor diverged" in glue_values(ev)["sn_beats_bh_map_summary"]
