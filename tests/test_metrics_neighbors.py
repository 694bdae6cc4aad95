"""Exact k-NN lists (torch and faiss) and the truncated CMC@k against the dense path."""

import builtins
import importlib.util
import warnings

import numpy as np
import pytest
import torch

from reid.errors import ConfigError, ReidError
from reid.metrics import nearest_neighbors, pairwise_distance, rank_metrics, topk_cmc

# faiss is the optional "scale" extra; without it only its tests are skipped (the message a user
# gets without it is tested by hiding the import).
needs_faiss = pytest.mark.skipif(importlib.util.find_spec("faiss") is None, reason="faiss not installed")
BACKENDS = ["torch", pytest.param("faiss", marks=needs_faiss)]


def problem(seed, nq=20, ng=150, dim=4, ties=True):
    rng = np.random.default_rng(seed)
    make = (lambda n: rng.integers(-1, 2, (n, dim))) if ties else (lambda n: rng.standard_normal((n, dim)))
    labels = (rng.integers(1, 7, nq), rng.integers(-1, 7, ng), rng.integers(0, 3, nq), rng.integers(0, 3, ng))
    return make(nq).astype(np.float32), make(ng).astype(np.float32), labels


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_nearest_neighbors_are_the_k_smallest_distances(metric, backend):
    qf, gf, _ = problem(0, ties=False, dim=16)
    dense = pairwise_distance(qf, gf, metric)
    nb = nearest_neighbors(qf, gf, 7, metric=metric, backend=backend, chunk_size=32)
    assert nb.indices.shape == (20, 7) and nb.backend == backend
    expected = torch.sort(dense, dim=1).values[:, :7]
    if backend == "torch":  # same arithmetic: the very same numbers
        assert torch.equal(nb.distances, expected)
        assert torch.equal(dense.gather(1, nb.indices), nb.distances)
    else:
        torch.testing.assert_close(nb.distances, expected, rtol=1e-5, atol=1e-5)
        assert torch.equal(nb.indices, torch.argsort(dense, dim=1)[:, :7])  # no near-ties here
    assert nearest_neighbors(qf, gf[:3], 7, metric=metric, backend=backend).indices.shape == (20, 3)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("seed", range(6))
def test_topk_cmc_equals_the_dense_cmc_prefix(backend, seed):
    # integer features: exact ties (also in faiss, whose float sums of small integers are exact),
    # junk, distractors, same-camera junk and queries without a true match.
    qf, gf, labels = problem(seed, ties=seed % 2 == 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        dense = rank_metrics(pairwise_distance(qf, gf), *labels, max_rank=10)
    got = topk_cmc(qf, gf, *labels, k=5, backend=backend, chunk_size=32)
    np.testing.assert_array_equal(got.cmc_at_k, dense.cmc[:5])
    assert got.num_valid == dense.num_valid and got.k == 5
    np.testing.assert_array_equal(got.valid, dense.valid)
    np.testing.assert_array_equal(got.first_match_within_k,
                                  np.where(dense.first_match < 5, dense.first_match, -1))
    assert "mAP" not in got.as_dict() and got.as_dict()["cmc_truncated_at"] == 5
    with pytest.raises(ConfigError, match="up to rank k=5"):
        got.rank(6)


def test_absent_faiss_gives_one_clear_error(monkeypatch):
    real_import = builtins.__import__

    def no_faiss(name, *args, **kwargs):
        if name == "faiss":
            raise ImportError("No module named 'faiss'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_faiss)
    qf, gf, labels = problem(1)
    with pytest.raises(ReidError, match=r'pip install "reid-book\[scale\]"'):
        nearest_neighbors(qf, gf, 3, backend="faiss")
    with pytest.raises(ReidError, match="reid-book"):
        topk_cmc(qf, gf, *labels, k=3, backend="faiss")
    assert topk_cmc(qf, gf, *labels, k=3).num_valid > 0  # the torch backend needs no faiss


def test_neighbors_bad_arguments():
    qf, gf, labels = problem(2)
    with pytest.raises(ConfigError, match="backend"):
        nearest_neighbors(qf, gf, 3, backend="annoy")
    with pytest.raises(ConfigError, match="positive integer"):
        nearest_neighbors(qf, gf, 0)
    with pytest.raises(ConfigError, match="positive integer"):
        topk_cmc(qf, gf, *labels, k=0)
    with pytest.raises(ConfigError, match="not integral"):
        topk_cmc(qf, gf, labels[0] + 0.5, *labels[1:], backend="faiss")
