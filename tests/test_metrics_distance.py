"""reid.metrics.distance: evaluation distances and the losses' differentiable helpers."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reid.errors import ConfigError
from reid.metrics.distance import (
    MIN_TILE_COLS,
    DistanceTiles,
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


def test_pairwise_rejects_nan_and_inf_features():
    with pytest.raises(ConfigError, match=r"x contains 1 NaN/inf value\(s\) \(first in row 1\)"):
        pairwise_distance(torch.tensor([[0.0, 1.0], [float("nan"), 0.0]]), torch.zeros(3, 2))
    with pytest.raises(ConfigError, match="y contains 2 NaN/inf"):
        pairwise_distance(torch.zeros(1, 2), torch.full((1, 2), float("inf")))


@pytest.mark.parametrize("dim", [3, 17, 256, 2048])
@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
def test_tiles_are_bit_identical_to_the_dense_matrix(dim, metric):
    # The streaming evaluator's exactness rests on this: every tile (row blocks x column chunks,
    # never thinner than MIN_TILE_ROWS x MIN_TILE_COLS unless it is the dense call itself) holds
    # exactly the numbers of pairwise_distance, on the installed BLAS.
    g = torch.Generator().manual_seed(dim)
    x, y = torch.randn(37, dim, generator=g), 3 * torch.randn(301, dim, generator=g)
    for block_size, chunk_size in ((4096, 32), (5, 33), (16, 100), (2, 40), (4096, 8192)):
        for normalize in (False, True):
            dense = pairwise_distance(x, y, metric, normalize=normalize, block_size=block_size)
            tiles = DistanceTiles(x, y, metric, normalize=normalize, block_size=block_size,
                                  chunk_size=chunk_size)
            for block in tiles.row_blocks():
                chunks = tiles.chunks(block)
                assert all(c1 - c0 >= MIN_TILE_COLS for c0, c1 in chunks) or chunks == [(0, 301)]
                for chunk in chunks:
                    assert torch.equal(tiles.tile(block, chunk), dense[block[0]:block[1], chunk[0]:chunk[1]])


def test_tiles_with_an_index_equal_the_dense_matrix_of_the_gathered_rows():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(9, 64, generator=g), torch.randn(200, 64, generator=g)
    index = torch.randperm(200, generator=g)[:150]
    dense = pairwise_distance(x, y[index], "euclidean")
    tiles = DistanceTiles(x, y, "euclidean", chunk_size=40, index=index)
    assert tiles.num_cols == 150 and len(tiles.chunks((0, 9))) == 4
    got = torch.cat([tiles.tile((0, 9), c) for c in tiles.chunks((0, 9))], 1)
    assert torch.equal(got, dense)
    with pytest.raises(ConfigError, match="chunk_size"):
        DistanceTiles(x, y, chunk_size=31)
