"""Features in other tools' layouts: export, re-read, identical metrics; clear errors; rank lists."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import scipy.io
import torch

from reid.engine.evaluation import metrics_from_features
from reid.engine.features_io import export_features, load_run_features, read_features, write_rank_list
from reid.errors import ConfigError
from reid.metrics import pairwise_distance


def _features(metric="euclidean", normalize=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    q_pids = torch.tensor([1, 2, 3, 4, 1, 2])
    g_pids = torch.tensor([1, 1, 2, 2, 3, 3, 4, 0, -1, 0])
    centres = torch.randn(5, 8, generator=g)
    return {
        "query": centres[q_pids.clamp(min=0)] + 0.6 * torch.randn(6, 8, generator=g),
        "gallery": centres[g_pids.clamp(min=0)] + 0.6 * torch.randn(10, 8, generator=g),
        "query_pids": q_pids, "gallery_pids": g_pids,
        "query_camids": torch.tensor([0, 0, 1, 1, 2, 2]),
        "gallery_camids": torch.tensor([0, 1, 0, 2, 1, 2, 0, 1, 2, 0]),
        "query_paths": [f"q{i}.jpg" for i in range(6)], "gallery_paths": [f"g{j}.jpg" for j in range(10)],
        "metric": metric, "normalize": normalize, "feature": "features",
    }


@pytest.fixture
def run(tmp_path):
    def make(**kw):
        d = tmp_path / f"run-{len(list(tmp_path.iterdir()))}"
        d.mkdir()
        torch.save(_features(**kw), d / "features.pt")
        return d
    return make


@pytest.mark.parametrize("fmt", ["mat", "npz"])
@pytest.mark.parametrize("metric,normalize", [("euclidean", False), ("cosine", False), ("euclidean", True)])
def test_export_then_evaluate_gives_identical_metrics(run, tmp_path, fmt, metric, normalize):
    d = run(metric=metric, normalize=normalize)
    ours = metrics_from_features(load_run_features(d), metric=metric, normalize=normalize)
    path = export_features(d, tmp_path / f"out.{fmt}")
    back = read_features(path)
    assert back["metric"] == metric and back["normalize"] == normalize
    assert back["query_paths"][0] == "q0.jpg" and back["gallery_paths"][-1] == "g9.jpg"
    again = metrics_from_features(back, metric=metric, normalize=normalize)
    for key in ("rank1", "rank5", "mAP", "mAP_trapezoid", "mINP"):
        assert again[key] == pytest.approx(ours[key], abs=1e-12), key


def test_mat_export_has_the_baseline_toolkit_layout(run, tmp_path):
    path = export_features(run(metric="cosine"), tmp_path / "pytorch_result.mat")
    mat = scipy.io.loadmat(path)
    assert mat["query_f"].shape == (6, 8) and mat["gallery_f"].shape == (10, 8)
    assert mat["query_label"].shape == (1, 6) and mat["gallery_cam"].shape == (1, 10)
    np.testing.assert_allclose(np.linalg.norm(mat["query_f"], axis=1), 1.0, rtol=1e-5)  # cosine: normalised


def test_export_never_overwrites_without_the_flag(run, tmp_path):
    d = run()
    out = tmp_path / "f.npz"
    out.write_bytes(b"mine")
    with pytest.raises(ConfigError, match="--overwrite"):
        export_features(d, out)
    assert out.read_bytes() == b"mine"
    export_features(d, out, overwrite=True)
    assert read_features(out)["query"].shape == (6, 8)


@pytest.mark.parametrize("content,match", [
    ({"query_f": np.zeros((2, 3))}, "lacks"),
    ({"query_f": np.zeros((2, 3)), "query_label": [1.5, 2], "query_cam": [0, 1], "gallery_f": np.zeros((1, 3)),
      "gallery_label": [1], "gallery_cam": [0]}, "integers"),
    ({"query_f": np.zeros((2, 3)), "query_label": [1, 2, 3], "query_cam": [0, 1], "gallery_f": np.zeros((1, 3)),
      "gallery_label": [1], "gallery_cam": [0]}, "same images"),
])
def test_bad_feature_files_give_one_clear_error(tmp_path, content, match):
    path = tmp_path / "bad.mat"
    scipy.io.savemat(path, content)
    with pytest.raises(ConfigError, match=match):
        read_features(path)


def test_unreadable_and_foreign_files(tmp_path):
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ConfigError, match="use .mat or .npz"):
        read_features(tmp_path / "x.txt")
    (tmp_path / "x.mat").write_bytes(b"garbage")
    with pytest.raises(ConfigError, match="cannot be read"):
        read_features(tmp_path / "x.mat")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "features.pt").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="cannot be read as a reid features file"):
        load_run_features(run_dir)


def test_features_pt_is_loaded_without_arbitrary_pickles(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "r").mkdir()
    torch.save({"query": torch.zeros(1, 2), "payload": Evil()}, tmp_path / "r" / "features.pt")
    with pytest.raises(ConfigError):
        load_run_features(tmp_path / "r")


def test_rank_list_follows_the_market_rule(run, tmp_path):
    feats = load_run_features(run())
    dist = pairwise_distance(feats["query"], feats["gallery"], "euclidean")
    out = write_rank_list(feats, dist, tmp_path / "ranks.csv", k=3)
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 6 * 3
    for r in rows:
        assert r["gallery_pid"] != "-1"   # junk never listed
        assert not (r["gallery_pid"] == r["query_pid"] and r["gallery_cam"] == r["query_cam"])
        assert r["match"] == str(int(r["gallery_pid"] == r["query_pid"]))
    first = [r for r in rows if r["query"] == "q0.jpg"]
    assert [int(r["rank"]) for r in first] == [1, 2, 3]
    assert [float(r["distance"]) for r in first] == sorted(float(r["distance"]) for r in first)
    with pytest.raises(ConfigError, match="--overwrite"):
        write_rank_list(feats, dist, out, k=3)
