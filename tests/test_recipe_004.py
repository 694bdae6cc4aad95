"""Paper 004's recipe, parameter files, chapter parameters and claims registry (issues 10, 11, 13)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import torch
import yaml

from reid.data.samplers import PKSampler
from reid.engine.objectives import DataInfo, build_objective
from reid.errors import ConfigError
from reid.papers import load_paper
from reid.recipes import load_recipe

REPO = Path(__file__).resolve().parents[1]
CHAPTER = REPO / "notebooks" / "joint_am_triplet.py"
VARIANTS = ["AM0", "AM", "BH", "AM0BH", "AMBH", "AM0BH1", "AM0BHsp", "AM0BH_Attr"]


def chapter_parameters() -> dict:
    """The assignments of the chapter's `parameters` cell, evaluated as literals."""
    text = CHAPTER.read_text()
    cell = text.split('# %% tags=["parameters"]\n', 1)[1].split("\n# %%", 1)[0]
    out = {}
    for node in ast.parse(cell).body:
        if isinstance(node, ast.Assign):
            out[node.targets[0].id] = ast.literal_eval(node.value)
    return out


def test_pk_sampler_docstring_states_paper_004s_batch():
    # issue 11: the docstring said P = 16, K = 4; the paper (Sec. 4.1) and the recipe use P = 4, K = 8
    p, k = map(int, re.search(r"004 \(P=(\d+), K=(\d+)\)", PKSampler.__doc__).groups())
    full = load_recipe("joint_am_triplet", "full")["sampler"]
    assert (p, k) == (full["p"], full["k"]) == (4, 8)


@pytest.mark.parametrize("scale", ["smoke", "study", "full"])
def test_every_scale_runs_its_schedule_to_the_last_decay(scale):
    cfg = load_recipe("joint_am_triplet", scale)
    schedule, epochs = cfg["schedule"], cfg["train"]["epochs"]
    assert schedule["warmup_epochs"] < schedule["milestones"][0] < schedule["milestones"][-1] < epochs


def test_the_chapter_trains_with_the_recipes_own_schedule():
    # issue 10: the chapter trained 12 epochs of a smoke schedule whose decays came at 20 and 26,
    # so every model was evaluated at the peak learning rate
    params = chapter_parameters()
    cfg = load_recipe("joint_am_triplet", params["scale"])
    epochs = params["epochs"] if params["epochs"] is not None else cfg["train"]["epochs"]
    assert epochs > cfg["schedule"]["milestones"][-1]


def test_chapter_prose_reads_the_scale_s_from_the_recipe():
    # issue 10: the prose said s = 30 while the smoke runs used s = 16
    text = CHAPTER.read_text()
    for scale in ("smoke", "study", "full"):
        value = load_recipe("joint_am_triplet", scale)["loss"]["scale"]
        typed = re.search(rf"(?<![\w.])s\s*=\s*{value:g}\b", text)
        assert not typed, f"the chapter types s = {value:g} ({typed.group(0)!r}); glue it from the recipe"
    for scale in ("smoke", "study", "full"):
        assert f"{{glue:text}}`jat_scale_{scale}" in text


def test_full_parameter_files_run_every_variant_with_the_papers_per_dataset_settings():
    known = set(chapter_parameters())
    settings = {"market1501": (0.43, 256, 128), "dukemtmc": (0.5, 288, 144), "msmt17": (0.4, 288, 144)}
    seen = set()
    for path in sorted((REPO / "params").glob("joint_am_triplet*.full.yaml")):
        spec = yaml.safe_load(path.read_text())
        assert set(spec) <= known, f"{path.name} sets parameters the chapter does not define"
        assert spec["scale"] == "full"
        cfg = load_recipe("joint_am_triplet", "full", spec["recipe_overrides"])
        gamma, height, width = settings[spec["dataset"]]
        assert (cfg["loss"]["gamma"], cfg["input"]["height"], cfg["input"]["width"]) == (gamma, height, width)
        expected = [v for v in VARIANTS if not (spec["dataset"] == "msmt17" and v.endswith("_Attr"))]  # no attributes
        assert spec["variants"] == expected, path.name
        seen.add(spec["dataset"])
    assert seen == set(settings)


def test_margin_fallback_is_a_recipe_key_defaulting_to_the_continuous_reading():
    cfg = load_recipe("joint_am_triplet", "smoke", {"loss.name": "AMBH"})
    assert cfg["loss"]["margin_fallback"] == "continuous"
    info = DataInfo(num_classes=5, num_cameras=2)

    class Model:
        feat_dim = 8

    objective = build_objective(load_recipe("joint_am_triplet", "smoke", {"loss.name": "AMBH", "loss.margin_fallback": "arcface"}), info)
    objective.setup(Model())
    assert objective.loss.am.fallback == "arcface" and objective.loss.am.margin == 0.5
    with pytest.raises(ConfigError, match="margin_fallback"):
        load_recipe("joint_am_triplet", "smoke", {"loss.margin_fallback": "easy"})


def test_registry_variants_are_valid_recipe_overrides_and_claims_use_them():
    paper = load_paper("004")
    study = paper["study"]
    assert study["chapter"] == study["recipe"] == "joint_am_triplet" and study["seeds"] >= 5
    for name, overrides in study["variants"].items():
        cfg = load_recipe("joint_am_triplet", study["scale"], overrides)
        assert cfg["loss"]["name"] == overrides["loss.name"], name
    assert {v.removesuffix("_noBN") for v in study["variants"]} >= set(VARIANTS)
    ids = [c["id"] for c in paper["claims"]]
    assert len(ids) == len(set(ids))
    analysis_metrics = {"radial_share_loss", "radial_batch_loss", "radial_batch_backbone", "embedding_norm_cv"}
    assert study["overrides"] == {"eval.analyses": ["radial_gradient"]}
    for claim in paper["claims"]:
        test = claim["test"]
        assert test["baseline"] in study["variants"] and test["variant"] in study["variants"], claim["id"]
        assert test["metric"] in {"mAP", "rank1"} | analysis_metrics, claim["id"]
        if test["metric"] in analysis_metrics:  # the book's mechanism checks: no paper number
            assert claim["paper"] is None
        elif test["rule"] == {"name": "ci95"}:
            assert test["expected"] in ("greater", "less")
    headline = next(c for c in paper["claims"] if c["id"] == "no_margin_needed")
    assert (headline["test"]["baseline"], headline["test"]["variant"]) == ("AMBH", "AM0BH")
    control = next(c for c in paper["claims"] if c["id"] == "radial_gradient_helps_without_bn")
    assert study["variants"][control["test"]["variant"]]["model.neck"] == "none"


def test_no_bn_control_builds_a_model_without_the_neck():
    from reid.models import build_model

    cfg = load_recipe("joint_am_triplet", "study", {"model.neck": "none"})
    options = {k: v for k, v in cfg["model"].items() if k not in ("name", "classifier", "attribute_q")}
    model = build_model(cfg["model"]["name"], **options)
    assert model.neck is None
    out = model(torch.zeros(2, 3, cfg["input"]["height"], cfg["input"]["width"]))
    assert out.features.shape == (2, model.feat_dim)


def test_registry_validates_with_the_study_runner():
    from reid.study.registry import load_study

    study = load_study("joint_am_triplet")
    assert len(study.variants) == 10 and study.scale == "study"


def test_radial_gradient_analysis_on_a_trained_tiny_model(tmp_path):
    # the mechanism metrics of the claims registry, measured on a trained model (reid.engine.analyses)
    import json

    from reid.data.synthreid import PRESETS, generate
    from reid.engine import train

    root = generate(tmp_path / "tiny", seed=0, progress=False, **PRESETS["tiny"])
    tiny = {"input.height": 32, "input.width": 16, "model.width": 8, "sampler.p": 4, "sampler.k": 2,
            "schedule.warmup_epochs": 1, "schedule.milestones": [2, 3], "eval.analyses": ["radial_gradient"]}
    metrics = {}
    for name, extra in (("AM0BH", {}), ("AM0BH1", {}), ("AM0BH_noBN", {"model.neck": "none", "loss.name": "AM0BH"})):
        run_dir = train("joint_am_triplet", dataset="synthreid", root=root, out=tmp_path / name, epochs=1,
                        progress=False, overrides={**tiny, "loss.name": name, **extra})
        metrics[name] = json.loads((run_dir / "results.json").read_text())["metrics"]
    assert metrics["AM0BH"]["radial_share_loss"] > 1e-3  # the raw-feature triplet: radial at f
    assert metrics["AM0BH1"]["radial_share_loss"] < 1e-5  # normalised features: tangent at f
    assert metrics["AM0BH"]["radial_batch_backbone"] < 1e-5  # BN neck: nothing batch-radial reaches the backbone
    nobn = metrics["AM0BH_noBN"]
    assert nobn["radial_batch_backbone"] == pytest.approx(nobn["radial_batch_loss"]) and nobn["radial_batch_loss"] > 1e-4
    assert all(m["embedding_norm_cv"] > 0 for m in metrics.values())
