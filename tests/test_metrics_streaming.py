"""Streaming evaluation from features == the dense path, field by field, bit for bit."""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from reid.errors import ConfigError
from reid.metrics import (
    gallery_size_curve,
    match_ranks_features,
    pairwise_distance,
    rank_metrics,
    rank_metrics_features,
)


def assert_same(dense, streamed):
    """Every field of two RankMetrics, exactly (floats compared with ==, NaN where invalid)."""
    assert streamed.num_valid == dense.num_valid and streamed.ap_definition == dense.ap_definition
    assert streamed.mAP == dense.mAP and streamed.mINP == dense.mINP
    np.testing.assert_array_equal(streamed.cmc, dense.cmc)
    for name in ("ap", "inp", "first_match", "num_matches", "valid"):
        np.testing.assert_array_equal(getattr(streamed, name), getattr(dense, name), err_msg=name)


def dense_metrics(qf, gf, labels, *, metric="euclidean", normalize=False, block_size=4096, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "no query has a true match"
        dist = pairwise_distance(qf, gf, metric, normalize=normalize, block_size=block_size)
        return rank_metrics(dist, *labels, **kw)


def streamed_metrics(qf, gf, labels, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return rank_metrics_features(qf, gf, *labels, **kw)


def random_problem(seed, nq, ng, dim, ids, cams, ties, dtype=np.float32):
    """Query pids 1..ids; gallery pids -1 (junk), 0 (distractors), 1..ids, as in Market-1501.
    ``ties``: features in {-1, 0, 1}, so that many distances are exactly equal (and duplicates)."""
    rng = np.random.default_rng(seed)
    if ties:
        qf, gf = rng.integers(-1, 2, (nq, dim)), rng.integers(-1, 2, (ng, dim))
    else:
        qf, gf = rng.standard_normal((nq, dim)), rng.standard_normal((ng, dim))
    labels = (rng.integers(1, ids + 1, nq), rng.integers(-1, ids + 1, ng),
              rng.integers(0, cams, nq), rng.integers(0, cams, ng))
    return qf.astype(dtype), gf.astype(dtype), labels


problems = st.fixed_dictionaries({
    "seed": st.integers(0, 2**32 - 1),
    "nq": st.integers(1, 24),
    "ng": st.integers(1, 150),
    "dim": st.sampled_from([1, 2, 3, 8]),
    "ids": st.integers(1, 8),
    "cams": st.integers(1, 4),
    "ties": st.booleans(),
    "dtype": st.sampled_from([np.float32, np.float64]),
})
options = st.fixed_dictionaries({
    "metric": st.sampled_from(["euclidean", "sqeuclidean", "cosine"]),
    "normalize": st.booleans(),
    "ap": st.sampled_from(["step", "trapezoid"]),
    "block_size": st.sampled_from([1, 3, 4, 7, 4096]),
    "chunk_size": st.sampled_from([32, 33, 50, 8192]),
})


@settings(max_examples=150, deadline=None)
@given(problems, options)
def test_streaming_equals_dense_on_random_problems(problem, opts):
    # Ties (integer features), junk (pid -1), distractors (pid 0), same-camera junk, queries
    # without a true match, several row blocks and gallery chunks, both AP definitions.
    qf, gf, labels = random_problem(**problem)
    chunk = opts.pop("chunk_size")
    dense = dense_metrics(qf, gf, labels, max_rank=10, **opts)
    streamed = streamed_metrics(qf, gf, labels, max_rank=10, chunk_size=chunk, **opts)
    assert_same(dense, streamed)


def test_streaming_many_chunks_and_blocks_market_like():
    # Larger: 3 row blocks x 7 chunks, clustered features so matches lead but ties to junk exist.
    rng = np.random.default_rng(3)
    pids_g = np.concatenate([np.repeat(np.arange(1, 41), 8), np.zeros(60, int), -np.ones(20, int)])
    pids_q = rng.integers(1, 41, 90)
    centres = rng.standard_normal((41, 16))
    gf = centres[np.maximum(pids_g, 0)] + 0.7 * rng.standard_normal((len(pids_g), 16))
    gf[-20:] = gf[:20]  # junk duplicates of real gallery images: exact ties with true matches
    qf = centres[pids_q] + 0.7 * rng.standard_normal((90, 16))
    labels = (pids_q, pids_g, rng.integers(0, 6, 90), rng.integers(0, 6, len(pids_g)))
    for ap in ("step", "trapezoid"):
        dense = dense_metrics(qf.astype(np.float32), gf.astype(np.float32), labels, ap=ap, block_size=40)
        streamed = streamed_metrics(qf.astype(np.float32), gf.astype(np.float32), labels, ap=ap,
                                    block_size=40, chunk_size=64)
        assert_same(dense, streamed)
        assert 0.3 < dense.mAP < 1.0


def test_one_pass_gives_both_ap_definitions_and_torch_inputs():
    qf, gf, labels = random_problem(5, 20, 120, 4, 5, 3, ties=True)
    ranks = match_ranks_features(torch.from_numpy(qf), torch.from_numpy(gf),
                                 *(torch.from_numpy(x) for x in labels), chunk_size=40)
    assert ranks.num_queries == 20 and ranks.num_gallery == 120
    for ap in ("step", "trapezoid"):
        assert_same(dense_metrics(qf, gf, labels, ap=ap), ranks.metrics(ap=ap))


def test_distractor_features_equal_dense_concatenation():
    qf, gf, labels = random_problem(7, 15, 60, 3, 4, 3, ties=True)
    extra = np.random.default_rng(8).integers(-1, 2, (90, 3)).astype(np.float32)
    q_pids, g_pids, q_cams, g_cams = labels
    dist = torch.cat([pairwise_distance(qf, gf), pairwise_distance(qf, extra)], 1)
    full_labels = (q_pids, np.concatenate([g_pids, np.zeros(90, int)]), q_cams,
                   np.concatenate([g_cams, np.full(90, -1)]))
    for ap in ("step", "trapezoid"):
        dense = rank_metrics(dist, *full_labels, ap=ap)
        streamed = rank_metrics_features(qf, gf, *labels, ap=ap, distractor_features=extra, chunk_size=32)
        assert_same(dense, streamed)


def test_infinite_distances_and_junk_follow_the_dense_tie_rule():
    # float16 features whose squared norms overflow: every distance is +inf, true matches and
    # junk included; ties at +inf are pessimistic like any other tie.
    q = torch.zeros(2, 4, dtype=torch.float16)
    q[:, 0] = 300
    g = torch.zeros(5, 4, dtype=torch.float16)
    g[:, 2] = torch.tensor([1.0, 2, 300, 3, 300])
    labels = ([1, 2], [1, -1, 1, 3, 2], [0, 0], [1, 1, 1, 1, 0])
    assert torch.isinf(pairwise_distance(q, g)).all()
    for ap in ("step", "trapezoid"):
        assert_same(dense_metrics(q, g, labels, ap=ap, max_rank=5),
                    streamed_metrics(q, g, labels, ap=ap, max_rank=5))


def test_no_valid_query_and_empty_inputs():
    qf, gf, _ = random_problem(1, 3, 5, 2, 2, 2, ties=False)
    with pytest.warns(RuntimeWarning, match="no query has a true match"):
        res = rank_metrics_features(qf, gf, [7, 8, 9], [1, 2, 3, 4, 5], [0, 0, 0], [1] * 5, max_rank=3)
    assert_same(dense_metrics(qf, gf, ([7, 8, 9], [1, 2, 3, 4, 5], [0, 0, 0], [1] * 5), max_rank=3), res)
    with pytest.warns(RuntimeWarning):
        assert rank_metrics_features(np.zeros((0, 2)), gf, [], [1] * 5, [], [1] * 5).num_valid == 0


@pytest.mark.parametrize("bad, match", [
    (dict(q_pids=[1.0, 1.8, 2.0]), "not integral"),
    (dict(g_pids=["a", "b", "c", "d"]), "integer labels"),
    (dict(q_camids=[0, np.nan, 1]), "NaN"),
    (dict(g_camids=[0, 1]), "gallery_features has 4 rows"),
    (dict(q_pids=[1, 2]), "query_features has 3 rows"),
])
def test_bad_labels_raise_one_config_error(bad, match):
    kw = dict(q_pids=[1, 2, 3], g_pids=[1, 2, 3, 0], q_camids=[0, 0, 0], g_camids=[1, 1, 1, 1])
    kw.update(bad)
    with pytest.raises(ConfigError, match=match):
        rank_metrics_features(np.ones((3, 2)), np.ones((4, 2)), **kw)


def test_bad_features_and_options_raise_config_errors():
    labels = ([1], [1, 2], [0], [1, 1])
    with pytest.raises(ConfigError, match="NaN/inf"):
        rank_metrics_features(np.array([[np.nan, 0.0]]), np.ones((2, 2)), *labels)
    with pytest.raises(ConfigError, match="gallery_features contains"):
        rank_metrics_features(np.ones((1, 2)), np.array([[1.0, np.inf], [0, 0]]), *labels)
    with pytest.raises(ConfigError, match="chunk_size"):
        rank_metrics_features(np.ones((1, 2)), np.ones((2, 2)), *labels, chunk_size=8)
    with pytest.raises(ConfigError, match="AP definition"):
        rank_metrics_features(np.ones((1, 2)), np.ones((2, 2)), *labels, ap="11-point")
    with pytest.raises(ConfigError, match="feature dimension"):
        rank_metrics_features(np.ones((1, 3)), np.ones((2, 2)), *labels)
    with pytest.raises(ConfigError, match="same floating dtype"):
        rank_metrics_features(np.ones((1, 2), np.float32), np.ones((2, 2), np.float32), *labels,
                              distractor_features=np.ones((3, 2), np.float64))


# ------------------------------------------------------------------------ gallery-size curve
def dense_gallery_curve(qf, gf, df, labels, sizes, seed, ap="step"):
    """The pre-streaming implementation: the whole matrix, then rank_metrics per size."""
    q_pids, g_pids, q_cams, g_cams = labels
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(len(df))[: max(sizes)])
    base = pairwise_distance(qf, gf)
    extra = pairwise_distance(qf, torch.as_tensor(df)[perm])
    out = []
    for n in sizes:
        dist = torch.cat([base, extra[:, :n]], 1)
        res = rank_metrics(dist, q_pids, np.concatenate([g_pids, np.zeros(n, int)]), q_cams,
                           np.concatenate([g_cams, np.full(n, -1)]), ap=ap, max_rank=1)
        out.append((n, dist.shape[1], res.rank1, res.mAP, res.mINP))
    return out


@pytest.mark.parametrize("ap", ["step", "trapezoid"])
def test_gallery_size_curve_equals_dense_for_every_size(ap):
    qf, gf, labels = random_problem(11, 12, 50, 3, 5, 3, ties=True)
    df = np.random.default_rng(12).integers(-1, 2, (120, 3)).astype(np.float32)
    sizes = [60, 0, 120, 7, 60]  # unsorted, repeated, zero and all
    curve = gallery_size_curve(qf, gf, df, *labels, num_distractors=sizes, seed=4, ap=ap, chunk_size=32)
    got = [(c["num_distractors"], c["gallery_size"], c["rank1"], c["mAP"], c["mINP"]) for c in curve]
    assert got == dense_gallery_curve(qf, gf, df, labels, sizes, seed=4, ap=ap)


def test_gallery_size_curve_refuses_pid0_queries():
    qf, gf, (qp, gp, qc, gc) = random_problem(2, 5, 20, 3, 3, 2, ties=False)
    qp[0] = 0
    with pytest.raises(ConfigError, match="distractors get pid 0"):
        gallery_size_curve(qf, gf, np.ones((10, 3), np.float32), qp, gp, qc, gc, num_distractors=[0, 5])
    assert gallery_size_curve(qf, gf, np.ones((10, 3), np.float32), qp, gp, qc, gc, num_distractors=[]) == []
