"""The engine hooks the studies need: ``eval.analyses`` (extra per-run metrics) and the validation split."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from reid.data.records import Record
from reid.data.validation import hold_out_validation, validation_split
from reid.engine import analyses
from reid.engine.data import load_training_data
from reid.errors import ConfigError
from reid.recipes import load_recipe


# ------------------------------------------------------------------------------ analyses
def test_unknown_analysis_is_refused_when_the_recipe_loads():
    with pytest.raises(ConfigError, match="unknown analysis 'radial'; registered: .*negatives_of_interest"):
        load_recipe("smc_ecd", "smoke", {"eval.analyses": ["radial"]})
    assert load_recipe("smc_ecd", "smoke")["eval"]["analyses"] == []


def test_run_analyses_checks_declarations(monkeypatch):
    monkeypatch.setitem(analyses.ANALYSES, "liar", (lambda *a: {"x": 1.0, "y": 2.0}, ("x",)))
    with pytest.raises(RuntimeError, match="declares"):
        analyses.run_analyses(["liar"], model=None, objective=None, data=None, features={}, cfg={})
    monkeypatch.setitem(analyses.ANALYSES, "nan", (lambda *a: {"x": float("nan")}, ("x",)))
    with pytest.raises(RuntimeError, match="non-finite"):
        analyses.run_analyses(["nan"], model=None, objective=None, data=None, features={}, cfg={})
    with pytest.raises(ValueError, match="declare"):
        analyses.register_analysis("empty", metrics=())


def test_negatives_of_interest_hand_worked():
    # two probes (pid 1 cam 0, pid 2 cam 1); gallery ordered by distance for both
    feats = {
        "query": torch.tensor([[0.0], [10.0]]), "gallery": torch.tensor([[1.0], [2.0], [3.0], [11.0], [12.0]]),
        "query_pids": torch.tensor([1, 2]), "gallery_pids": torch.tensor([3, 1, 4, 2, 5]),
        "query_camids": torch.tensor([0, 1]), "gallery_camids": torch.tensor([0, 1, 1, 0, 1]),
        "metric": "euclidean", "normalize": False,
    }  # fmt: skip
    out = analyses.run_analyses(["negatives_of_interest"], model=None, objective=None, data=None, features=feats, cfg={})
    # probe 1 false: g0 (cam0, same), g2 (cam1), g3 (cam0, same), g4 (cam1) -> 2 of 4
    # probe 2 false: g4 (cam1, same), g2 (cam1, same), g0 (cam0), g1 (cam1, same) -> 3 of 4
    assert out["neg_interest_k10"] == pytest.approx(100 * 5 / 8)
    # rank-1 mistakes: probe 1 ranks g0 (pid 3, cam 0: same camera); probe 2 ranks g3 first (its match): no mistake
    assert out["neg_interest_k1"] == pytest.approx(100.0)


# ------------------------------------------------------------------------------ validation split
def _records(num_ids=10, cams=3, per_cam=2):
    return [Record(f"p{p}_c{c}_{i}.jpg", p, c) for p in range(num_ids) for c in range(cams) for i in range(per_cam)]


def test_validation_split_follows_the_market_rules():
    train = _records() + [Record("solo.jpg", 9, 0)]
    rest, query, gallery, held = validation_split(train, 4)
    assert len(held) == 4 and {r.pid for r in rest}.isdisjoint(held)
    assert {r.pid - 1 for r in query} == set(held)  # default identity label + 1 (never 0 or -1)
    assert Counter((r.pid, r.camid) for r in query) == {(p + 1, c): 1 for p in held for c in range(3)}
    assert {r.path for r in query}.isdisjoint(r.path for r in gallery)
    assert len(query) + len(gallery) + len(rest) == len(train)
    again = validation_split(train, 4)
    assert again[1] == query and again[2] == gallery  # seeded, deterministic


def test_validation_split_errors():
    with pytest.raises(ConfigError, match="at most 8"):
        validation_split(_records(), 9)
    with pytest.raises(ConfigError, match=">= 2"):
        validation_split(_records(), 1)
    with pytest.raises(ConfigError, match="one camera only"):
        validation_split(_records(cams=1), 3)
    with pytest.raises(ConfigError, match="data.validation_ids"):
        load_recipe("smc_ecd", "smoke", {"eval.split": "validation"})


def test_training_data_hook_trains_on_the_rest_and_evaluates_on_the_held_out_ids():
    cfg = load_recipe("support_neighbor", "smoke", {"data.synth_preset": "tiny", "data.validation_ids": 3,
                                                    "eval.split": "validation"})
    full = load_training_data(load_recipe("support_neighbor", "smoke", {"data.synth_preset": "tiny"}), "synthreid", None,
                              progress=False)
    data = load_training_data(cfg, "synthreid", None, progress=False)
    assert data.info.num_classes == full.info.num_classes - 3
    assert sorted({r.pid for r in data.dataset.train}) == list(range(data.info.num_classes))  # relabelled
    held_raw = set(full.dataset.train_raw_pids) - set(data.dataset.train_raw_pids)
    assert {r.pid for r in data.dataset.query} <= held_raw and len(held_raw) == 3
    test_kept = load_training_data({**cfg, "eval": {**cfg["eval"], "split": "test"}}, "synthreid", None, progress=False)
    assert test_kept.dataset.query == full.dataset.query and test_kept.info.num_classes == data.info.num_classes
    assert np.all([r.pid > 0 for r in data.dataset.gallery])
