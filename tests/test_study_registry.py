"""reid.study.registry: the worked example loads; every schema error is one clear ConfigError."""

from __future__ import annotations

import copy

import pytest
from test_study_fixtures import TINY_REGISTRY, registry, write_registry

from reid.errors import ConfigError
from reid.recipes import RECIPES, load_recipe
from reid.study.budget import budget_overrides
from reid.study.registry import MIN_SEEDS, load_study, study_chapters


def test_the_worked_example_loads(tmp_path):
    path = write_registry(tmp_path / "tiny.json")
    study = load_study(str(path))
    assert study.chapter == "tiny_demo" and study.scale == "smoke" and study.seeds == (0, 1, 2, 3, 4)
    assert list(study.variants) == ["batch_hard", "support_neighbor"]
    assert study.configs["batch_hard"]["loss"]["name"] == "batch_hard"
    assert study.configs["support_neighbor"]["data"]["synth_preset"] == "tiny"  # common overrides apply to all
    c = study.claim("sn_fewer_same_camera_errors")
    assert (c.metric, c.expected, c.rule) == ("neg_interest_k10", "less", {"name": "min_effect", "delta": 1.0})
    trial = load_study(str(path), seeds=2, variants=["batch_hard", "support_neighbor"])
    assert trial.seeds == (0, 1)


def _mutate(fn):
    reg = copy.deepcopy(TINY_REGISTRY)
    fn(reg)
    return reg


def _claim0(reg):
    return reg["claims"][0]


CASES = {
    "unknown rule": (lambda r: _claim0(r)["test"].update(rule={"name": "vibes"}), ["sn_beats_bh_map", "unknown rule 'vibes'"]),
    "rule parameter missing": (lambda r: _claim0(r)["test"].update(rule={"name": "min_effect"}), ["needs parameter(s) ['delta']"]),
    "rule parameter unknown": (lambda r: _claim0(r)["test"].update(rule={"name": "ci95", "level": 0.9}), ["unknown parameter(s) ['level']"]),
    "delta in percent": (lambda r: _claim0(r)["test"].update(rule={"name": "min_effect", "delta": 2}), ["write 0.02 for 2 points"]),
    "expected": (lambda r: _claim0(r)["test"].update(expected="up"), ["test.expected is 'up'", "greater"]),
    "equivalence needs equal": (lambda r: _claim0(r)["test"].update(rule={"name": "equivalence", "margin": 0.01}),
                                ["'equivalence' needs one of ['equal']"]),
    "slope metrics per x": (lambda r: _claim0(r)["test"].update(rule={"name": "slope", "x": [1, 10], "metrics": ["mAP"]}),
                            ["one metric name per x"]),
    "baseline not a variant": (lambda r: _claim0(r)["test"].update(baseline="trinet"), ["test.baseline 'trinet' is not a variant"]),
    "same variant twice": (lambda r: _claim0(r)["test"].update(variant="batch_hard"), ["both 'batch_hard'"]),
    "bad claim id": (lambda r: _claim0(r).update(id="SN-beats"), ["'SN-beats'", "lower-case"]),
    "duplicate claim id": (lambda r: r["claims"].append(copy.deepcopy(r["claims"][0])), ["appear twice"]),
    "claim without test": (lambda r: _claim0(r).pop("test"), ["'test' is missing"]),
    "unknown claim key": (lambda r: _claim0(r).update(verdict="supported"), ["unknown key(s) ['verdict']"]),
    "unknown metric": (lambda r: _claim0(r)["test"].update(metric="rank-1"), ["produces no metric 'rank-1'", "eval.analyses"]),
    "metric needs its analysis": (lambda r: r["study"]["overrides"].update({"eval.analyses": []}),
                                  ["sn_fewer_same_camera_errors", "no metric 'neg_interest_k10'"]),
    "unknown override key": (lambda r: r["study"]["variants"]["batch_hard"].update({"loss.kk": 3}),
                             ["variant 'batch_hard'", "not a valid recipe", "loss.kk"]),
    "bad override value": (lambda r: r["study"]["variants"]["batch_hard"].update({"loss.name": "trinet"}),
                           ["variant 'batch_hard'", "loss.name='trinet' is not valid"]),
    "too few seeds": (lambda r: r["study"].update(seeds=3), [f"at least {MIN_SEEDS}"]),
    "unknown study key": (lambda r: r["study"].update(seed=5), ["unknown study key(s) ['seed']"]),
    "study key missing": (lambda r: r["study"].pop("recipe"), ["study.recipe is missing"]),
    "unknown recipe": (lambda r: r["study"]["variants"].update(x={"recipe": "arcface", "overrides": {}}), ["unknown recipe 'arcface'"]),
    "mixed variant forms": (lambda r: r["study"]["variants"].update(x={"recipe": "smc_ecd", "loss.name": "gcl"}),
                            ["put the dotted keys inside"]),
    "unknown analysis": (lambda r: r["study"]["overrides"].update({"eval.analyses": ["radial_share"]}), ["unknown analysis 'radial_share'"]),
    "bad budget": (lambda r: r["study"].update(budget={"epochs": 0}), ["budget.epochs must be a positive integer"]),
    "bad comparisons": (lambda r: r["study"].update(comparisons={"metrics": ["mAP"], "test": "mannwhitney"}), ["welch"]),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_schema_errors_name_the_file_the_claim_and_the_fix(case, tmp_path):
    mutate, fragments = CASES[case]
    path = write_registry(tmp_path / "tiny.json", _mutate(mutate))
    with pytest.raises(ConfigError) as info:
        load_study(str(path))
    message = str(info.value)
    assert str(path) in message, message
    for fragment in fragments:
        assert fragment in message, message
    assert "\n" not in message


def test_unreadable_registries(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_study(str(bad))
    with pytest.raises(ConfigError, match="no 'study' object"):
        load_study(str(write_registry(tmp_path / "t.json", {"tables": {}})))
    with pytest.raises(ConfigError, match="unknown study 'nope'"):
        load_study("nope")
    with pytest.raises(ConfigError, match="no variant"):
        load_study(str(write_registry(tmp_path / "ok.json")), variants=["batch_hard", "trinet"])


def test_a_variant_subset_keeps_only_the_claims_between_them(tmp_path):
    reg = registry(variants={**TINY_REGISTRY["study"]["variants"], "batch_all": {"loss.name": "batch_all"}})
    study = load_study(str(write_registry(tmp_path / "t.json", reg)), variants=["batch_hard", "batch_all"])
    assert list(study.variants) == ["batch_hard", "batch_all"] and study.claims == ()


@pytest.mark.parametrize("chapter", sorted(study_chapters()))
def test_every_registered_study_is_valid(chapter):
    """Each paper's registry (and the benchmark's) resolves at its registered scale."""
    if chapter == "benchmark" and any("study" not in _scales(r) for r in RECIPES):
        pytest.skip("the benchmark runs at the recipes' study scale, which not every recipe defines yet")
    study = load_study(chapter)
    assert len(study.seeds) >= MIN_SEEDS and study.variants


def _scales(recipe):
    import yaml

    from reid.recipes import recipe_path

    return (yaml.safe_load(recipe_path(recipe).read_text()).get("scales") or {}).keys()


def test_benchmark_registry_resolves_at_smoke_scale():
    study = load_study("benchmark", scale="smoke")
    assert set(study.variants) == set(RECIPES) and study.comparisons["correction"] == "holm"
    for name, cfg in study.configs.items():
        assert cfg["train"]["epochs"] == 20 and cfg["input"]["height"] == 64, name
        assert cfg["schedule"]["name"] == load_recipe(cfg["recipe"], "full")["schedule"]["name"], name  # no constant lr


def test_budget_keeps_each_schedule_shape():
    # paper 004: warm-up 20, decays at 90 and 130 of 150 epochs -> the same fractions of 30
    assert budget_overrides("joint_am_triplet", 30)["schedule.milestones"] == [18, 26]
    assert budget_overrides("joint_am_triplet", 30)["schedule.warmup_epochs"] == 4
    # paper 000: one x0.1 step at 9000 of 15000 iterations -> 60% of the epochs
    assert budget_overrides("smc_ecd", 20) == {"train.epochs": 20, "train.iterations": None, "schedule.unit": "epoch",
                                               "schedule.step_size": 12}
    # paper 002: constant until 75 / 800, exponential decay to the end
    sn = budget_overrides("support_neighbor", 16)
    assert (sn["schedule.start"], sn["schedule.end"]) == (2, 16)
    # paper 003: the discriminator-only stage is 10 of 30 epochs
    assert budget_overrides("view_adaptation", 9)["loss.similarity_epochs"] == 3
    with pytest.raises(ConfigError):
        budget_overrides("smc_ecd", 0)


def test_benchmark_gpu_registry_resolves_at_full_scale(tmp_path):
    from reid.study.benchmark import benchmark_registry

    reg = benchmark_registry(backbone="resnet50", weights="imagenet", height=256, image_width=128, epochs=60,
                             scale="full", preset=None)
    study = load_study(str(write_registry(tmp_path / "gpu.json", reg)))
    assert study.configs["view_adaptation"]["model"]["ms"] == "resnet50"
    assert study.configs["joint_am_triplet"]["schedule"]["milestones"] == [36, 52]  # 90 and 130 of 150 -> of 60
    assert study.configs["smc_ecd"]["data"]["synth_preset"] == "market"  # the recipe's own full-scale set


def test_the_benchmark_compares_every_loss_on_one_layout_and_rule():
    # paper 003's study recipe defaults to the two-view layout (single-shot CMC, no mAP): the benchmark overrides it
    import json
    import tempfile
    from pathlib import Path

    from reid.study.benchmark import benchmark_registry
    from reid.study.registry import load_study

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "benchmark.json"
        path.write_text(json.dumps(benchmark_registry()))
        study = load_study(str(path))
    for name, cfg in study.configs.items():
        assert (cfg["data"]["layout"], cfg["eval"]["protocol"]) == ("market", "market_sq"), name
