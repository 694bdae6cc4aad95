"""Joint Bayesian: closed form of the verification score, EM recovery, beats Euclidean."""

import numpy as np
import pytest
import torch

from reid.errors import ConfigError
from reid.metrics import JointBayesian, pairwise_distance, rank_metrics


def synthetic(num_ids, per_id, seed):
    """Identity signal in dims 0-3, strong nuisance (within-identity) variation in dims 4-7."""
    g = torch.Generator().manual_seed(seed)
    s_mu = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.01, 0.01, 0.01, 0.01])
    s_eps = torch.tensor([0.1, 0.1, 0.1, 0.1, 4.0, 4.0, 4.0, 4.0])
    mu = torch.randn(num_ids, 8, generator=g, dtype=torch.float64) * s_mu.sqrt()
    pids = torch.arange(num_ids).repeat_interleave(per_id)
    x = mu[pids] + torch.randn(len(pids), 8, generator=g, dtype=torch.float64) * s_eps.sqrt()
    return x, pids, s_mu, s_eps


def test_em_recovers_covariances():
    x, pids, s_mu, s_eps = synthetic(400, 6, seed=0)
    jb = JointBayesian(max_iter=200).fit(x, pids)
    np.testing.assert_allclose(jb.s_mu_.diagonal().numpy(), s_mu.numpy(), atol=0.2)
    np.testing.assert_allclose(jb.s_eps_.diagonal().numpy(), s_eps.numpy(), rtol=0.1, atol=0.02)


def test_score_is_the_log_likelihood_ratio():
    x, pids, _, _ = synthetic(50, 4, seed=1)
    jb = JointBayesian().fit(x, pids)
    s_mu, s_eps = jb.s_mu_, jb.s_eps_
    d = len(s_mu)
    same = torch.cat([torch.cat([s_mu + s_eps, s_mu], 1), torch.cat([s_mu, s_mu + s_eps], 1)])
    diff = torch.block_diag(s_mu + s_eps, s_mu + s_eps)
    a, b = x[:3] - jb.mean_, x[3:5] - jb.mean_
    for i in range(3):
        for j in range(2):
            z = torch.cat([a[i], b[j]])
            llr = -0.5 * z @ (torch.linalg.inv(same) - torch.linalg.inv(diff)) @ z
            # r(x1, x2) equals 2 x the log-likelihood ratio up to a constant that does not depend on
            # the pair; compare differences between pairs to cancel the constant.
            if i == j == 0:
                llr0, r0 = llr, jb.similarity(x[:1], x[3:4])[0, 0]
            r = jb.similarity(x[i : i + 1], x[3 + j : 4 + j])[0, 0]
            assert float(r - r0) == pytest.approx(float(2 * (llr - llr0)), rel=1e-6, abs=1e-8)
    assert d == 8


def test_joint_bayesian_beats_euclidean_on_test_identities():
    xtr, ptr, _, _ = synthetic(200, 5, seed=2)
    xte, pte, _, _ = synthetic(60, 4, seed=3)
    query = torch.arange(len(pte)) % 4 == 0
    cams_q, cams_g = np.zeros(int(query.sum())), np.ones(int((~query).sum()))
    eu = rank_metrics(pairwise_distance(xte[query], xte[~query]), pte[query], pte[~query], cams_q, cams_g)
    jb = JointBayesian().fit(xtr, ptr)
    ours = rank_metrics(jb.distance(xte[query], xte[~query]), pte[query], pte[~query], cams_q, cams_g)
    assert ours.mAP > eu.mAP + 0.2
    assert ours.rank1 > eu.rank1


def test_pca_and_errors():
    x, pids, _, _ = synthetic(30, 3, seed=4)
    jb = JointBayesian(pca_dim=5).fit(x, pids)
    assert jb.similarity(x[:2], x[2:6]).shape == (2, 4)
    with pytest.raises(ConfigError, match="not fitted"):
        JointBayesian().similarity(x, x)
    with pytest.raises(ConfigError, match="dimension"):
        jb.similarity(x[:, :3], x[:, :3])
    with pytest.raises(ConfigError):
        JointBayesian().fit(x, pids[:-1])
    with pytest.raises(ConfigError):
        JointBayesian().fit(x[:3], [0, 1, 2])  # no identity with two images


def test_joint_bayesian_rejects_nan_features_and_float_pids():
    x = torch.randn(8, 3, dtype=torch.float64)
    pids = [0, 0, 1, 1, 2, 2, 3, 3]
    with pytest.raises(ConfigError, match="not integral"):
        JointBayesian().fit(x, [0.5] * 8)
    bad = x.clone()
    bad[3, 0] = float("nan")
    with pytest.raises(ConfigError, match="NaN/inf"):
        JointBayesian().fit(bad, pids)
    model = JointBayesian().fit(x, pids)
    with pytest.raises(ConfigError, match="NaN/inf"):
        model.distance(bad, x)
