"""Features in other tools' layouts: export, re-read, identical metrics; clear errors; rank lists."""

from __future__ import annotations

import csv
import json

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


# ------------------------------------------------------------------ the CLI: reid export / reid evaluate --features
def _finished(run_dir, metric="euclidean", normalize=False):
    (run_dir / "results.json").write_text(json.dumps({"recipe": {"eval": {"metric": metric, "normalize": normalize}}}))
    return run_dir


def test_cli_export_then_evaluate_round_trips(run, tmp_path, capsys):
    from reid.cli import main

    d = _finished(run())
    assert main(["evaluate", "--run", str(d)]) == 0
    from_run = capsys.readouterr().out.splitlines()[1]
    assert main(["export", "--run", str(d)]) == 0 and (d / "pytorch_result.mat").is_file()
    assert main(["export", "--run", str(d), "--format", "npz"]) == 0 and (d / "features.npz").is_file()
    capsys.readouterr()
    for name in ("pytorch_result.mat", "features.npz"):
        assert main(["evaluate", "--features", str(d / name)]) == 0
        assert capsys.readouterr().out.splitlines()[1] == from_run  # identical numbers, every digit printed
    expected = metrics_from_features(_features(), metric="euclidean")
    assert f"mAP (step AP) {100 * expected['mAP']:.2f}%" in from_run
    assert main(["evaluate", "--features", str(d / "features.npz"), "--ap", "trapezoid"]) == 0
    assert f"mAP (trapezoid AP) {100 * expected['mAP_trapezoid']:.2f}%" in capsys.readouterr().out


def test_cli_rank_list_and_metric_override(run, tmp_path, capsys):
    from reid.cli import main

    d = _finished(run())
    out = tmp_path / "ranks.csv"
    assert main(["evaluate", "--run", str(d), "--metric", "cosine", "--rank-list", str(out), "--top", "2"]) == 0
    assert "cosine" in capsys.readouterr().out
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 2 * 6 and {r["rank"] for r in rows} == {"1", "2"}


@pytest.mark.parametrize("argv,phrase", [
    (["export", "--run", "{run}"], "already exists"),                       # a second export, no --overwrite
    (["evaluate", "--features", "{tmp}/missing.mat"], "no such feature file"),
    (["evaluate", "--features", "{run}/results.json"], "unknown feature file type"),
    (["evaluate", "--run", "{tmp}"], "not a finished run"),
    (["evaluate", "--run", "{run}", "--protocol", "market_mq", "--rank-list", "{tmp}/r.csv"], "market_sq"),
    (["evaluate", "--run", "{run}", "--rank-list", "{run}/results.json"], "already exists"),
])
def test_cli_feature_commands_fail_with_one_clear_line(run, tmp_path, capsys, argv, phrase):
    from reid.cli import main

    d = _finished(run())
    if argv[0] == "export":
        assert main(["export", "--run", str(d)]) == 0
    capsys.readouterr()
    assert main([a.format(run=d, tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("reid: error:") and phrase in err[0], err
