"""reid.metrics.distance: evaluation distances and the losses' differentiable helpers."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reid.errors import ConfigError
from reid.metrics.distance import (
    cosine_similarity_matrix,
    euclidean,
    pairwise_distance,
    squared_euclidean,
)


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
@pytest.mark.parametrize("normalize", [False, True])
def test_pairwise_matches_cdist_in_blocks(metric, normalize):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(23, 7, generator=g, dtype=torch.float64), torch.randn(31, 7, generator=g, dtype=torch.float64)
    xr, yr = (F.normalize(x), F.normalize(y)) if normalize or metric == "cosine" else (x, y)
    ref = {"euclidean": torch.cdist(xr, yr), "sqeuclidean": torch.cdist(xr, yr) ** 2,
           "cosine": 1 - xr @ yr.t()}[metric]
    out = pairwise_distance(x, y, metric, normalize=normalize, block_size=5)
    assert out.dtype == torch.float64 and out.shape == (23, 31)
    torch.testing.assert_close(out, ref, atol=1e-10, rtol=0)


def test_pairwise_numpy_input_and_self_distance():
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    d = pairwise_distance(x)
    assert isinstance(d, torch.Tensor) and d.dtype == torch.float32
    assert torch.all(d.diagonal() == 0) and torch.all(d >= 0)
    assert pairwise_distance(x.astype(np.int64)).dtype == torch.float32


def test_pairwise_errors():
    with pytest.raises(ConfigError, match="unknown distance metric"):
        pairwise_distance(torch.zeros(2, 3), metric="manhattan")
    with pytest.raises(ConfigError, match="feature dimension"):
        pairwise_distance(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ConfigError, match="2-D"):
        pairwise_distance(torch.zeros(2, 3, 4))


def test_squared_euclidean_exact_zero_diagonal_and_nonnegative():
    x = torch.randn(16, 64) * 1e3  # large norms make the expansion cancel badly
    d2 = squared_euclidean(x)
    assert torch.all(d2.diagonal() == 0) and torch.all(d2 >= 0)
    torch.testing.assert_close(d2, torch.cdist(x.double(), x.double()).float() ** 2, rtol=1e-4, atol=1.0)


def test_euclidean_gradient_finite_at_zero_distance():
    x = torch.randn(6, 4, dtype=torch.float64)
    x = torch.cat([x, x[:2]]).requires_grad_()  # duplicated rows: off-diagonal zeros too
    d = euclidean(x)
    d.sum().backward()
    assert torch.isfinite(x.grad).all()
    assert torch.allclose(d.diagonal(), torch.full((8,), 1e-6, dtype=torch.float64))


def test_euclidean_gradient_matches_autograd_of_norm():
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    y = torch.randn(4, 3, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: euclidean(a, y), (x,))
    torch.testing.assert_close(euclidean(x, y), torch.cdist(x, y))


def test_cosine_similarity_matrix():
    x, y = torch.randn(5, 3), torch.randn(4, 3)
    torch.testing.assert_close(cosine_similarity_matrix(x, y), F.normalize(x) @ F.normalize(y).t())
    z = torch.zeros(2, 3)
    assert torch.all(cosine_similarity_matrix(z) == 0)  # no NaN for zero vectors
    with pytest.raises(ConfigError):
        cosine_similarity_matrix(torch.zeros(2, 3), torch.zeros(2, 4))
