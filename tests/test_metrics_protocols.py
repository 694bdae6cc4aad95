"""Protocols: Market single/multi-query, CUHK03 classic, two-view single-shot (hand-checked)."""

import numpy as np
import pytest
import torch

from reid.errors import ConfigError
from reid.metrics import (
    average_single_shot,
    cuhk03_classic,
    cuhk03_new_protocol,
    market_multi_query,
    market_single_query,
    pool_multi_query,
    random_identity_split,
    single_shot_cmc,
    two_view_single_shot,
)

# Two query images of pid 1 in camera 0 at (0, 0) and (2, 0); gallery: pid 1 (camera 1) at
# (2, 0) and pid 2 (camera 1) at (1, 0).
QF = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
GF = torch.tensor([[2.0, 0.0], [1.0, 0.0]])
LABELS = dict(q_pids=[1, 1], g_pids=[1, 2], q_camids=[0, 0], g_camids=[1, 1])


def test_market_single_query_hand_computed():
    # query (0,0): pid 2 at distance 1 comes before pid 1 at distance 2 -> AP 1/2;
    # query (2,0): pid 1 at distance 0 first -> AP 1.  mAP = 0.75, rank-1 = 0.5.
    res = market_single_query(QF, GF, **LABELS)
    assert res.mAP == pytest.approx(0.75) and res.rank1 == pytest.approx(0.5)


def test_market_multi_query_max_and_avg_pooling():
    # max pooling -> both queries become (2, 0): AP 1 each. avg -> (1, 0): pid 2 at 0, pid 1 at 1.
    assert market_multi_query(QF, GF, **LABELS, pooling="max").mAP == pytest.approx(1.0)
    avg = market_multi_query(QF, GF, **LABELS, pooling="avg")
    assert avg.mAP == pytest.approx(0.5) and avg.rank1 == 0.0


def test_pool_multi_query_groups_by_pid_and_camera_and_uses_extra_images():
    f = torch.tensor([[1.0], [3.0], [5.0], [7.0]])
    pooled = pool_multi_query(f, [1, 1, 1, 2], [0, 0, 1, 0], pooling="avg")
    torch.testing.assert_close(pooled, torch.tensor([[2.0], [2.0], [5.0], [7.0]]))
    # extra (gt_bbox-like) images of pid 2 camera 0 join its pool; others are untouched
    pooled = pool_multi_query(f, [1, 1, 1, 2], [0, 0, 1, 0], pooling="max",
                              extra_features=[[9.0], [0.0]], extra_pids=[2, 3], extra_camids=[0, 0])
    torch.testing.assert_close(pooled, torch.tensor([[3.0], [3.0], [5.0], [9.0]]))
    with pytest.raises(ConfigError):
        pool_multi_query(f, [1, 1, 1, 2], [0, 0, 1, 0], pooling="median")


def test_cuhk03_new_protocol_is_rank_metrics():
    d = np.array([[0.2, 0.1]])
    assert cuhk03_new_protocol(d, [1], [1, 2], [0], [1, 1]).mAP == pytest.approx(0.5)


def test_single_shot_deterministic_gallery():
    # One gallery image per identity (VIPeR-like): probe 1 ranks its match 1st, probe 2 ties with
    # another identity (pessimistic: 2nd), probe 3 3rd.  CMC = [1/3, 2/3, 1].
    d = np.array([[0.1, 0.5, 0.9],
                  [0.4, 0.4, 0.8],
                  [0.1, 0.2, 0.3]])
    res = single_shot_cmc(d, [1, 2, 3], [1, 2, 3], repeats=3, max_rank=3)
    np.testing.assert_allclose(res.cmc, [1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(res.cmc_std, 0)
    assert res.num_probes == 3 and res.rank1 == pytest.approx(1 / 3)


def test_single_shot_random_gallery_draw_averages():
    # Gallery pid 1 has a close (0.1) and a far (0.9) image; pid 2 at 0.5. Each draw picks one of
    # pid 1's images with probability 1/2: rank 1 or 2, so CMC -> [0.5, 1].
    d = np.array([[0.1, 0.9, 0.5]])
    res = single_shot_cmc(d, [1], [1, 1, 2], repeats=4000, max_rank=2, seed=3)
    assert res.cmc[0] == pytest.approx(0.5, abs=0.03) and res.cmc[1] == 1.0


def test_single_shot_probe_one_and_missing_identities():
    # probe pid 9 has no gallery identity and is ignored; pid 1 has two probe images.
    d = np.array([[0.1, 0.2], [0.3, 0.2], [0.0, 0.0]])
    res = single_shot_cmc(d, [1, 1, 9], [1, 2], repeats=2000, probe="one", max_rank=2)
    assert res.num_probes == 1 and res.cmc[0] == pytest.approx(0.5, abs=0.04)
    with pytest.raises(ConfigError):
        single_shot_cmc(d, [1, 1], [1, 2])
    with pytest.raises(ConfigError):
        single_shot_cmc(d, [5, 6, 7], [1, 2])


def test_cuhk03_classic_averages_splits():
    split_a = (np.array([[0.1, 0.5], [0.6, 0.2]]), [1, 2], [1, 2])  # both rank 1
    split_b = (np.array([[0.9, 0.5], [0.6, 0.2]]), [1, 2], [1, 2])  # probe 1 rank 2
    res = cuhk03_classic([split_a, split_b], repeats=5, max_rank=2)
    np.testing.assert_allclose(res.cmc, [0.75, 1.0])
    np.testing.assert_allclose(res.cmc_std, [0.25, 0.0])
    assert res.repeats == 10
    one = cuhk03_classic([split_a], repeats=1, probe="one", max_rank=2)
    np.testing.assert_allclose(one.cmc, [1.0, 1.0])


def test_two_view_single_shot_with_prid_style_distractors():
    # Gallery identities 10 and 11 never appear as probes (PRID2011 camera-B-only people);
    # identity 10 sits closest to probe 1, which therefore ranks its match 2nd.
    d = np.array([[0.2, 0.7, 0.9, 0.1, 0.8],
                  [0.9, 0.1, 0.9, 0.5, 0.8],
                  [0.9, 0.7, 0.3, 0.5, 0.8]])
    res = two_view_single_shot([(d, [1, 2, 3], [1, 2, 3, 10, 11])], repeats=2, max_rank=3)
    np.testing.assert_allclose(res.cmc, [2 / 3, 1, 1])
    assert average_single_shot([res, res]).cmc[0] == pytest.approx(2 / 3)


def test_random_identity_split():
    train, test = random_identity_split(np.repeat(np.arange(10), 2), seed=1)
    assert len(train) == len(test) == 5 and not set(train) & set(test)
    again = random_identity_split(np.repeat(np.arange(10), 2)[::-1], seed=1)
    np.testing.assert_array_equal(again[0], train)
    assert len(random_identity_split(np.arange(971), 871)[1]) == 100
    with pytest.raises(ConfigError):
        random_identity_split(np.arange(4), 4)


def test_single_shot_rejects_nan_distances_and_bad_pids():
    # NaN used to reach np.bincount and fail with its own ValueError.
    d = np.array([[0.1, np.nan], [0.3, 0.2]])
    with pytest.raises(ConfigError, match="dist contains NaN"):
        single_shot_cmc(d, [1, 2], [1, 2], repeats=2)
    with pytest.raises(ConfigError, match="not integral"):
        single_shot_cmc(np.ones((2, 2)), [1.5, 2], [1, 2])
    with pytest.raises(ConfigError, match="integer labels"):
        single_shot_cmc(np.ones((2, 2)), ["a", "b"], [1, 2])
    with pytest.raises(ConfigError, match="not integral"):
        random_identity_split([0.5, 1.0, 2.0])


def test_protocols_reject_nan_features_and_float_pids():
    bad = QF.clone()
    bad[0, 1] = float("nan")
    with pytest.raises(ConfigError, match="NaN/inf"):
        market_single_query(bad, GF, **LABELS)
    with pytest.raises(ConfigError, match="NaN/inf"):
        market_multi_query(bad, GF, **LABELS)
    with pytest.raises(ConfigError, match="not integral"):
        pool_multi_query(QF, [1, 1.5], [0, 0])
    with pytest.raises(ConfigError, match="not integral"):
        market_single_query(QF, GF, **{**LABELS, "g_pids": [1.0, 2.5]})
