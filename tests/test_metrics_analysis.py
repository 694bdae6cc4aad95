"""Camera-pair mAP, negatives of interest, figures of merit, gallery-size curve (hand-checked)."""

import math

import numpy as np
import pytest
import torch

from reid.errors import ConfigError
from reid.metrics import (
    NegativesOfInterest,
    RankMetrics,
    camera_pair_map,
    figures_of_merit,
    gallery_size_curve,
    market_single_query,
    negatives_of_interest,
    relative_improvement,
)


def test_camera_pair_map_hand_computed():
    # One probe (pid 1, camera 0). Gallery: pid 1 cam 1 @0.3, pid 1 cam 2 @0.1, pid 2 cam 1 @0.2,
    # pid 3 cam 2 @0.05.
    # (0, 1): pid 1 cam 2 is removed; ranking 0.05 F, 0.2 F, 0.3 T      -> AP 1/3
    # (0, 2): pid 1 cam 1 is removed; ranking 0.05 F, 0.1 T             -> AP 1/2
    d = np.array([[0.3, 0.1, 0.2, 0.05]])
    res = camera_pair_map(d, [1], [1, 1, 2, 3], [0], [1, 2, 1, 2])
    np.testing.assert_array_equal(res.cameras, [0, 1, 2])
    assert res.map[0, 1] == pytest.approx(1 / 3) and res.map[0, 2] == pytest.approx(1 / 2)
    assert np.isnan(res.map[0, 0]) and np.isnan(res.map[1]).all()
    assert res.count[0, 1] == res.count[0, 2] == 1
    rel = relative_improvement(res.map * 1.5, res)
    assert rel[0, 1] == pytest.approx(50.0)


def test_camera_pair_map_averages_probes_of_a_camera():
    # two probes in camera 0 with APs 1 and 1/2 towards camera 1 -> 0.75
    d = np.array([[0.1, 0.2], [0.2, 0.1]])
    res = camera_pair_map(d, [1, 1], [1, 2], [0, 0], [1, 1])
    assert res.map[0, 1] == pytest.approx(0.75) and res.count[0, 1] == 2


def test_negatives_of_interest_hand_computed():
    # Probe pid 1 camera 0. By distance: pid 2 cam 0 (negative of interest), pid 1 cam 1 (match),
    # pid 3 cam 1, pid 1 cam 0 (same id + camera: junk, removed), pid 4 cam 0 (interest), pid 5.
    # Top-4 of the filtered ranking: 2/c0, 1/c1, 3/c1, 4/c0 -> 3 negatives, 2 of interest.
    d = np.array([[0.1, 0.2, 0.3, 0.35, 0.4, 0.5]])
    args = ([1], [2, 1, 3, 1, 4, 5], [0], [0, 1, 1, 0, 0, 2])
    res = negatives_of_interest(d, *args, k=4)
    assert (res.num_interest, res.num_negatives) == (2, 3)
    assert res.percent == pytest.approx(200 / 3)
    top1 = negatives_of_interest(d, *args, k=1)
    assert top1.percent == 100.0 and top1.num_negatives == 1
    with pytest.raises(ConfigError):
        negatives_of_interest(d, *args, k=0)


def _rm(rank1, mAP):
    return RankMetrics(cmc=np.array([rank1]), mAP=mAP, mINP=0.0, num_valid=1)


def _neg(percent):
    return NegativesOfInterest(percent, 0, 0, 10, np.zeros(1), np.zeros(1))


def test_figures_of_merit_formula():
    # F_rank1 = (Neg(soft) - Neg(L)) / (rank1(L) - rank1(soft)) = (30 - 25) / (80 - 70) = 50 %;
    # F_mAP   = (30 - 25) / (60 - 40) = 25 %.
    f = figures_of_merit((_rm(0.70, 0.40), _neg(30.0)), (_rm(0.80, 0.60), _neg(25.0)))
    assert f["F_rank1"] == pytest.approx(50.0) and f["F_mAP"] == pytest.approx(25.0)
    same = figures_of_merit((_rm(0.7, 0.4), _neg(30.0)), (_rm(0.7, 0.4), _neg(30.0)))
    assert math.isnan(same["F_rank1"])


def test_gallery_size_curve_nested_and_consistent():
    g = torch.Generator().manual_seed(0)
    qf = torch.randn(6, 4, generator=g)
    gf = qf.repeat(2, 1) + 0.3 * torch.randn(12, 4, generator=g)
    q_pids, g_pids = np.arange(1, 7), np.tile(np.arange(1, 7), 2)
    q_cams, g_cams = np.zeros(6, int), np.ones(12, int)
    distractors = torch.randn(50, 4, generator=g) * 0.5
    curve = gallery_size_curve(qf, gf, distractors, q_pids, g_pids, q_cams, g_cams,
                               num_distractors=[0, 10, 50])
    assert [c["gallery_size"] for c in curve] == [12, 22, 62]
    base = market_single_query(qf, gf, q_pids, g_pids, q_cams, g_cams)
    assert curve[0]["mAP"] == pytest.approx(base.mAP)
    maps = [c["mAP"] for c in curve]
    assert maps[0] >= maps[1] >= maps[2]  # nested galleries: adding negatives never helps
    with pytest.raises(ConfigError):
        gallery_size_curve(qf, gf, distractors, q_pids, g_pids, q_cams, g_cams, num_distractors=[51])


def test_analyses_reject_nan_distances_and_non_integral_labels():
    d = np.array([[0.1, np.nan]])
    with pytest.raises(ConfigError, match="NaN"):
        negatives_of_interest(d, [1], [1, 2], [0], [1, 1])
    with pytest.raises(ConfigError, match="NaN"):
        camera_pair_map(d, [1], [1, 2], [0], [1, 1])
    with pytest.raises(ConfigError, match="not integral"):
        camera_pair_map(np.zeros((1, 2)), [1], [1, 2], [0], [1.5, 1])
    qf = torch.tensor([[float("nan"), 0.0]])
    with pytest.raises(ConfigError, match="NaN/inf"):
        gallery_size_curve(qf, torch.zeros(2, 2), torch.zeros(3, 2), [1], [1, 2], [0], [1, 1],
                           num_distractors=[0, 3])
