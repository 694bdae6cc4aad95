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
    analysis = "distractor_curve_32k"  # the registered, capped curve (the note in the registry says why)
    declared = set(analyses.ANALYSES[analysis][1])
    slopes = [c for c in study["claims"] if c["test"]["rule"]["name"] == "slope"]
    assert {c["id"] for c in slopes} == {"gallery_slope_map", "gallery_slope_rank1"}
    for claim in slopes:
        rule = claim["test"]["rule"]
        assert set(rule["metrics"]) <= declared
        counts = [int(m.split("@")[1]) for m in rule["metrics"]]
        assert counts == list(analyses.STUDY_DISTRACTOR_COUNTS)
        base = rule["x"][0]
        assert rule["x"] == [base + n for n in counts]  # x is the gallery size: the run's gallery plus n
        for role in ("baseline", "variant"):
            assert analysis in study["study"]["variants"][claim["test"][role]]["eval.analyses"]
    assert json.dumps(slopes[0]["test"]["rule"]["x"]) == json.dumps(slopes[1]["test"]["rule"]["x"])


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
