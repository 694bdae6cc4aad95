"""k-reciprocal re-ranking against a small, loop-by-loop dense reference written from the paper."""

import numpy as np
import pytest
import torch

from reid.errors import ConfigError
from reid.metrics import pairwise_distance, rank_metrics
from reid.metrics.rerank import k_reciprocal_rerank, rerank_distances


def dense_reference(q_g, q_q, g_g, k1=20, k2=6, lambda_value=0.3):
    """Zhong et al. (CVPR 2017) step by step on dense NumPy arrays, for small N only."""
    nq = q_g.shape[0]
    full = np.block([[q_q, q_g], [q_g.T, g_g]]).astype(np.float64) ** 2
    d = full / full.max(axis=1, keepdims=True)  # squared, each row over its maximum
    n = len(d)
    rank = np.argsort(d, axis=1, kind="stable")

    def reciprocal(p, k):
        forward = rank[p, : k + 1]
        return [g for g in forward if p in rank[g, : k + 1]]

    kh = int(np.around(k1 / 2))
    V = np.zeros((n, n))
    for p in range(n):
        r = reciprocal(p, k1)
        expanded = set(r)
        for q in r:
            rq = reciprocal(q, kh)
            if len(set(rq) & set(r)) > 2 / 3 * len(rq):
                expanded |= set(rq)
        idx = sorted(expanded)
        w = np.exp(-d[p, idx])
        V[p, idx] = w / w.sum()
    if k2 > 1:
        V = np.stack([V[rank[p, :k2]].mean(0) for p in range(n)])
    jac = np.zeros((nq, n))
    for p in range(nq):
        mins = np.minimum(V[p][None, :], V).sum(1)
        maxs = np.maximum(V[p][None, :], V).sum(1)
        jac[p] = 1 - mins / maxs
    final = (1 - lambda_value) * jac + lambda_value * d[:nq]
    return final[:, nq:]


def _clustered(n_ids=8, per_id=5, dim=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_ids, dim, generator=g) * 3
    pids = torch.arange(n_ids).repeat_interleave(per_id)
    feats = centres[pids] + torch.randn(len(pids), dim, generator=g)
    return feats, pids


@pytest.mark.parametrize("k1,k2,lam", [(20, 6, 0.3), (5, 3, 0.3), (6, 1, 0.0), (4, 2, 1.0)])
def test_matches_dense_reference(k1, k2, lam):
    feats, pids = _clustered()
    qf, gf = feats[::4], feats[torch.arange(len(feats)) % 4 != 0]
    q_g = pairwise_distance(qf, gf).double().numpy()
    q_q = pairwise_distance(qf, qf).double().numpy()
    g_g = pairwise_distance(gf, gf).double().numpy()
    np.fill_diagonal(q_q, 0.0)
    np.fill_diagonal(g_g, 0.0)
    ref = dense_reference(q_g, q_q, g_g, k1, k2, lam)
    ours = rerank_distances(q_g, q_q, g_g, k1=k1, k2=k2, lambda_value=lam, block_size=7)
    np.testing.assert_allclose(ours.numpy(), ref, atol=2e-5)
    from_feats = k_reciprocal_rerank(qf, gf, k1=k1, k2=k2, lambda_value=lam, block_size=5)
    np.testing.assert_allclose(from_feats.numpy(), ref, atol=2e-4)


def test_rerank_helps_on_clustered_data():
    feats, pids = _clustered(n_ids=12, per_id=6, dim=8, seed=1)
    cams = torch.arange(len(pids)) % 3
    q = torch.arange(len(pids)) % 6 == 0
    before = rank_metrics(pairwise_distance(feats[q], feats[~q]), pids[q], pids[~q], cams[q], cams[~q])
    after = rank_metrics(k_reciprocal_rerank(feats[q], feats[~q], k1=6, k2=3), pids[q], pids[~q],
                         cams[q], cams[~q])
    assert after.mAP >= before.mAP - 1e-9


def test_bad_parameters():
    feats, _ = _clustered()
    with pytest.raises(ConfigError):
        k_reciprocal_rerank(feats[:5], feats[5:], k1=100)
    with pytest.raises(ConfigError):
        k_reciprocal_rerank(feats[:5], feats[5:], k1=5, k2=9)
    with pytest.raises(ConfigError):
        rerank_distances(np.zeros((2, 3)), np.zeros((2, 2)), np.zeros((2, 2)))


def test_rerank_rejects_nan_inputs():
    feats = torch.randn(6, 4)
    feats[2, 1] = float("nan")
    with pytest.raises(ConfigError, match="NaN/inf"):
        k_reciprocal_rerank(feats[:2], feats[2:], k1=2, k2=1)
    d = torch.rand(2, 4)
    d[0, 0] = float("nan")
    with pytest.raises(ConfigError, match="q_g contains NaN"):
        rerank_distances(d, torch.rand(2, 2), torch.rand(4, 4), k1=2, k2=1)
