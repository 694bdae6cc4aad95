"""Paper 002's gallery-size analysis (reid.engine.analyses.distractor_curve): distractor people
embedded like the run's own gallery, ranked by the library's gallery-size curve."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from reid.data import distractors, synthreid
from reid.data.datasets import load_dataset
from reid.data.image_dataset import ImageDataset
from reid.data.transforms import build_transforms
from reid.engine import analyses
from reid.engine.evaluation import extract_features
from reid.metrics.analysis import gallery_size_curve
from reid.models import build_model
from reid.papers import load_paper
from reid.recipes import load_recipe
from reid.study.registry import is_fraction


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny SynthReID set, an untrained small network and its query/gallery features."""
    root = synthreid.generate(tmp_path_factory.mktemp("synth") / "tiny", num_ids=8, num_cameras=3, seed=3,
                              num_distractors=2, num_junk=1, two_view_ids=0, progress=False)
    cfg = load_recipe("support_neighbor", "smoke", {"input.height": 32, "input.width": 16, "model.width": 8, "eval.batch_size": 4})
    torch.manual_seed(0)
    model = build_model("small_resnet", width=8, weights=None, last_stride=2, neck="none").eval()
    ds = load_dataset("synthreid", root)
    transform = build_transforms(32, 16, train=False)
    feats = {}
    for split in ("query", "gallery"):
        records = getattr(ds, split)
        loader = torch.utils.data.DataLoader(ImageDataset(records, transform), batch_size=4)
        feats[split] = extract_features(model, loader, device=torch.device("cpu"))
        feats[f"{split}_pids"] = torch.tensor([r.pid for r in records])
        feats[f"{split}_camids"] = torch.tensor([r.camid for r in records])
    feats["metric"], feats["normalize"] = "euclidean", True
    return SimpleNamespace(root=root, cfg=cfg, model=model, feats=feats, data=SimpleNamespace(root=root),
                           objective=SimpleNamespace(eval_feature="features"))


def test_distractor_metrics_equal_the_loader_path(run, tmp_path, monkeypatch):
    monkeypatch.setenv("REID_DATA_HOME", str(tmp_path))
    out = analyses.distractor_metrics(run.model, run.objective, run.data, run.feats, run.cfg, counts=(0, 3, 9))
    assert set(out) == {f"gallery_{m}@{n}" for m in ("mAP", "rank1") for n in (0, 3, 9)} | {"gallery_images"}
    assert out["gallery_images"] == len(run.feats["gallery"])
    # the same distractor images read through the ordinary image loader give the same numbers
    root = distractors.ensure_distractors(run.root, 9, progress=False)
    loader = torch.utils.data.DataLoader(ImageDataset(distractors.distractor_records(root), build_transforms(32, 16, train=False)), batch_size=4)
    extra = extract_features(run.model, loader, device=torch.device("cpu"))
    f = run.feats
    curve = gallery_size_curve(f["query"], f["gallery"], extra, f["query_pids"], f["gallery_pids"], f["query_camids"],
                               f["gallery_camids"], num_distractors=[0, 3, 9], normalize=True)
    assert {f"gallery_{m}@{c['num_distractors']}": c[m] for c in curve for m in ("mAP", "rank1")} == {
        k: v for k, v in out.items() if k != "gallery_images"}
    assert out["gallery_mAP@9"] <= out["gallery_mAP@0"]  # nested galleries: distractors only push matches down


def test_registry_slope_claims_read_the_declared_metrics():
    study = load_paper("002")
    slopes = {c["id"]: c for c in study["claims"] if c["test"]["rule"]["name"] == "slope"}
    assert set(slopes) == {"gallery_slope_map", "gallery_slope_rank1", "gallery_slope_map_500k", "gallery_slope_rank1_500k"}
    # the capped curve runs during training; the full one afterwards, read as distractor_curve.<metric>
    for claim_id, analysis, counts, prefix in (("gallery_slope_map", "distractor_curve_32k", analyses.STUDY_DISTRACTOR_COUNTS, ""),
                                               ("gallery_slope_map_500k", "distractor_curve", analyses.DISTRACTOR_COUNTS,
                                                "distractor_curve.")):
        for claim in (slopes[claim_id], slopes[claim_id.replace("map", "rank1")]):
            rule = claim["test"]["rule"]
            assert all(m.startswith(prefix) for m in rule["metrics"])
            assert {m[len(prefix):] for m in rule["metrics"]} <= set(analyses.ANALYSES[analysis][1])
            found = [int(m.split("@")[1]) for m in rule["metrics"]]
            assert found == list(counts)
            assert rule["x"] == [rule["x"][0] + n for n in found]  # x is the gallery size: the run's gallery plus n
            for role in ("baseline", "variant"):
                variant = claim["test"][role]
                if prefix:
                    assert variant in study["study"]["posthoc"][analysis]
                else:
                    assert analysis in study["study"]["variants"][variant]["eval.analyses"]
    assert slopes["gallery_slope_map"]["test"]["rule"]["x"][0] == slopes["gallery_slope_map_500k"]["test"]["rule"]["x"][0]
    assert is_fraction("gallery_mAP@32000") and is_fraction("distractor_curve.gallery_rank1@500000")  # shown in points
    assert slopes["gallery_slope_map_500k"]["test"]["rule"]["x"][-1] - slopes["gallery_slope_map_500k"]["test"]["rule"]["x"][0] == 500_000


def test_plot_gallery_curves_draws_every_seed_and_the_means():
    import matplotlib.pyplot as plt

    from reid.viz.support_neighbor import plot_gallery_curves

    claim = {"id": "gallery_slope_map", "metric": "gallery_mAP_slope", "verdict": "inconclusive",
             "baseline": "batch_hard", "variant": "support_neighbor", "x": [10, 100, 1000],
             "baseline_curves": [[0.5, 0.4, 0.3], [0.6, 0.5, 0.3]], "variant_curves": [[0.5, 0.45, 0.4], [0.55, 0.5, 0.4]]}
    ax = plot_gallery_curves(claim)
    assert len(ax.lines) == 2 * (2 + 1) and ax.get_xscale() == "log"
    mean_variant = [line for line in ax.lines if line.get_label() == "support_neighbor"][0]
    assert list(mean_variant.get_ydata()) == pytest.approx([52.5, 47.5, 40.0])
    plt.close("all")


def test_the_capped_curve_is_the_full_curves_first_points():
    full, capped = analyses.ANALYSES["distractor_curve"][1], analyses.ANALYSES["distractor_curve_32k"][1]
    assert set(capped) < set(full) and "gallery_mAP@32000" in capped and "gallery_mAP@125000" not in capped
    assert analyses.DISTRACTOR_COUNTS[: len(analyses.STUDY_DISTRACTOR_COUNTS)] == analyses.STUDY_DISTRACTOR_COUNTS
