"""Distances between feature vectors: one place for the whole library.

Two families live here:

* :func:`pairwise_distance` — evaluation distances between a query set and a gallery set. No
  gradient, computed in row blocks written straight into the output matrix, so only the
  ``Q x G`` result itself (plus one block) has to fit in memory. Accepts NumPy arrays or torch
  tensors and always returns a torch tensor (smaller is closer).
  :class:`DistanceTiles` produces the same matrix one ``rows x columns`` tile at a time, for
  evaluations whose ``Q x G`` matrix does not fit (``reid.metrics.streaming``): every element is
  computed by the same code, :func:`_distance_block`, on the same operands.
* :func:`squared_euclidean`, :func:`euclidean`, :func:`cosine_similarity_matrix` —
  differentiable in-batch helpers for the losses (``losses/*`` import them from here).

The module is deliberately import-light: torch (and NumPy only through ``torch.as_tensor``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

__all__ = [
    "METRICS",
    "DistanceTiles",
    "pairwise_distance",
    "squared_euclidean",
    "euclidean",
    "cosine_similarity_matrix",
]

#: Names accepted by :func:`pairwise_distance`.
METRICS = ("euclidean", "sqeuclidean", "cosine")

#: :func:`pairwise_distance`'s default number of query rows per block; :class:`DistanceTiles`
#: uses the same row blocks, so its tiles repeat the dense computation row for row.
DEFAULT_BLOCK_SIZE = 4096

# Smallest tile for which the BLAS (MKL here) computes each element of ``x @ y.T`` with the same
# operations whatever the tile's shape and position. Thinner products go to other kernels (a
# matrix-vector product for one row, "small matrix" kernels for < 4 rows or < 16 columns) whose
# rounding differs in the last bit; ``tests/test_metrics_distance.py`` checks the property.
MIN_TILE_ROWS = 4
MIN_TILE_COLS = 16


def _config_error(message: str) -> Exception:
    # Imported lazily so this module stays importable on its own (losses import it early).
    from reid.errors import ConfigError

    return ConfigError(message)


def _as_features(x: Any, name: str) -> torch.Tensor:
    """A 2-D floating tensor view of ``x`` (NumPy arrays are shared, not copied, when possible),
    checked to be finite."""
    from reid.metrics.validation import check_features

    t = torch.as_tensor(x)
    if t.dim() == 1:
        t = t.unsqueeze(0)
    if t.dim() != 2:
        raise _config_error(
            f"{name} must be a 2-D (num_samples, dim) feature matrix, got shape {tuple(t.shape)}; "
            "flatten or stack the features first."
        )
    if not t.is_floating_point():
        t = t.float()
    return check_features(t.detach(), name)


def _check_metric(metric: str, block_size: int) -> None:
    if metric not in METRICS:
        raise _config_error(f"unknown distance metric {metric!r}; use one of {', '.join(METRICS)}.")
    if block_size < 1:
        raise _config_error(f"block_size must be >= 1, got {block_size}.")


def _distance_block(xb: torch.Tensor, yt: torch.Tensor, y_sq: torch.Tensor | None, metric: str,
                    out: torch.Tensor) -> torch.Tensor:
    """``out = d(xb, y)`` for a block of (already normalised, same-dtype) rows: the arithmetic of
    every evaluation distance in the library. ``yt`` is ``y.t()``, ``y_sq`` its squared row norms
    (unused for cosine)."""
    if metric == "cosine":
        # 1 - x·y written in place: out = 1 + (-1) * (x @ y^T)
        torch.addmm(torch.ones((), dtype=out.dtype, device=out.device), xb, yt, beta=1.0, alpha=-1.0, out=out)
        return out.clamp_(min=0.0, max=2.0)
    x_sq = (xb * xb).sum(1, keepdim=True)
    # ||x||² + ||y||² - 2 x·y, accumulated in place to avoid extra block-sized temporaries.
    torch.addmm(y_sq.unsqueeze(0), xb, yt, beta=1.0, alpha=-2.0, out=out)
    out.add_(x_sq).clamp_(min=0.0)
    if metric == "euclidean":
        out.sqrt_()
    return out


@torch.no_grad()
def pairwise_distance(
    x: Any,
    y: Any | None = None,
    metric: str = "euclidean",
    *,
    normalize: bool = False,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> torch.Tensor:
    """Distance matrix ``D[i, j] = d(x_i, y_j)`` for evaluation (smaller is closer).

    ``metric``:

    * ``"euclidean"``   ``||x - y||``, via ``sqrt(clamp(||x||² + ||y||² - 2 x·y, 0))``;
    * ``"sqeuclidean"`` ``||x - y||²`` (same ranking as Euclidean, one square root cheaper);
    * ``"cosine"``      ``1 - cos(x, y)`` in ``[0, 2]``.

    ``normalize=True`` L2-normalises both sets first (the "normalised features" setting the
    papers evaluate with); on unit vectors all three metrics give the same ranking.

    Rows of ``x`` are processed ``block_size`` at a time and written into a preallocated output,
    so the peak extra memory is one ``block_size x G`` block. Inputs may be NumPy arrays or torch
    tensors (any device); the result is a torch tensor on the input's device with the input's
    floating dtype (float32 for integer inputs). ``y=None`` means ``y = x``. Features with NaN or
    inf are rejected with a :class:`~reid.errors.ConfigError`.
    """
    _check_metric(metric, block_size)
    xq = _as_features(x, "x")
    yg = xq if y is None else _as_features(y, "y").to(device=xq.device)
    if xq.shape[1] != yg.shape[1]:
        raise _config_error(
            f"x and y must have the same feature dimension, got {xq.shape[1]} and {yg.shape[1]}; "
            "extract both sets with the same model."
        )
    dtype = torch.promote_types(xq.dtype, yg.dtype)
    xq, yg = xq.to(dtype), yg.to(dtype)
    if normalize or metric == "cosine":
        xq = F.normalize(xq, dim=1)
        yg = F.normalize(yg, dim=1)

    out = torch.empty(xq.shape[0], yg.shape[0], dtype=dtype, device=xq.device)
    yt = yg.t()
    y_sq = None if metric == "cosine" else (yg * yg).sum(1)
    for start in range(0, xq.shape[0], block_size):
        _distance_block(xq[start : start + block_size], yt, y_sq, metric, out[start : start + block_size])
    return out


class DistanceTiles:
    """The matrix ``pairwise_distance(x, y[index], metric, normalize=normalize)`` tile by tile.

    Rows come in :func:`pairwise_distance`'s own blocks of ``block_size`` queries; the columns of a
    block are cut into ``len(chunks(b))`` near-equal chunks of at most ``chunk_size`` (at least
    ``chunk_size / 2``) gallery items, or kept whole when the gallery fits in one chunk or the block
    has fewer than :data:`MIN_TILE_ROWS` rows. Each tile is computed by :func:`_distance_block` on
    the same operands as the dense path: the same query rows, the same (normalised, dtype-promoted)
    gallery rows, in the same order. A tile is therefore bit-identical to the corresponding part of
    the dense matrix when it is a single chunk (the dense call itself) and, for chunked galleries,
    whenever the BLAS computes each element independently of the tile's shape and position, which
    holds for tiles of at least ``MIN_TILE_ROWS x MIN_TILE_COLS`` (checked by the tests).

    ``index`` (optional, 1-D) selects and orders gallery rows without copying the whole gallery: a
    chunk gathers ``y[index[c0:c1]]``, exactly the rows of the dense ``y[index]``.
    Memory: the query features, one ``block_size x chunk_size`` tile and one gathered chunk.
    """

    def __init__(self, x: Any, y: Any, metric: str = "euclidean", *, normalize: bool = False,
                 block_size: int = DEFAULT_BLOCK_SIZE, chunk_size: int = 8192,
                 index: torch.Tensor | None = None, x_name: str = "x", y_name: str = "y"):
        _check_metric(metric, block_size)
        if chunk_size < 2 * MIN_TILE_COLS:
            raise _config_error(f"chunk_size must be >= {2 * MIN_TILE_COLS}, got {chunk_size}.")
        xq = _as_features(x, x_name)
        yg = _as_features(y, y_name)
        if xq.shape[1] != yg.shape[1]:
            raise _config_error(
                f"{x_name} and {y_name} must have the same feature dimension, got {xq.shape[1]} and "
                f"{yg.shape[1]}; extract both sets with the same model.")
        self.dtype = torch.promote_types(xq.dtype, yg.dtype)
        self.device = xq.device
        self.metric, self.normalize = metric, normalize or metric == "cosine"
        xq = xq.to(self.dtype)
        self.x = F.normalize(xq, dim=1) if self.normalize else xq
        self.y = yg
        self.index = None if index is None else torch.as_tensor(index, dtype=torch.int64).reshape(-1)
        self.num_rows = xq.shape[0]
        self.num_cols = yg.shape[0] if self.index is None else len(self.index)
        self.block_size, self.chunk_size = int(block_size), int(chunk_size)

    def row_blocks(self) -> list[tuple[int, int]]:
        """``(start, stop)`` of every row block: :func:`pairwise_distance`'s blocks."""
        return [(s, min(s + self.block_size, self.num_rows)) for s in range(0, self.num_rows, self.block_size)]

    def chunks(self, block: tuple[int, int]) -> list[tuple[int, int]]:
        """``(start, stop)`` column ranges of the tiles of one row block."""
        n = self.num_cols
        if n <= self.chunk_size or block[1] - block[0] < MIN_TILE_ROWS:
            return [(0, n)]
        k = math.ceil(n / self.chunk_size)
        bounds = [(i * n) // k for i in range(k + 1)]
        return list(zip(bounds[:-1], bounds[1:]))

    def gallery_rows(self, start: int, stop: int) -> torch.Tensor:
        """Prepared (dtype-promoted, normalised when asked) gallery rows ``start:stop``."""
        rows = self.y[start:stop] if self.index is None else self.y[self.index[start:stop].to(self.y.device)]
        rows = rows.to(device=self.device, dtype=self.dtype)
        return F.normalize(rows, dim=1) if self.normalize else rows

    @torch.no_grad()
    def tile(self, block: tuple[int, int], chunk: tuple[int, int]) -> torch.Tensor:
        """Distances of query rows ``block`` to gallery columns ``chunk`` (a fresh tensor)."""
        yc = self.gallery_rows(*chunk)
        y_sq = None if self.metric == "cosine" else (yc * yc).sum(1)
        out = torch.empty(block[1] - block[0], chunk[1] - chunk[0], dtype=self.dtype, device=self.device)
        return _distance_block(self.x[block[0] : block[1]], yc.t(), y_sq, self.metric, out)


def squared_euclidean(x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """Differentiable ``D[i, j] = ||x_i - y_j||²`` for in-batch losses.

    Computed as ``||x||² + ||y||² - 2 x·y`` (one matrix product) and clamped at 0, because
    floating-point cancellation can make the expansion slightly negative for near-identical
    vectors. With ``y=None`` (``y = x``) the diagonal is set to exactly 0 — cancellation would
    otherwise leave values of order 1e-7·||x||² there.
    """
    y_ = x if y is None else y
    if x.dim() != 2 or y_.dim() != 2 or x.shape[1] != y_.shape[1]:
        raise _config_error(
            f"squared_euclidean expects (n, d) and (m, d) tensors, got {tuple(x.shape)} and "
            f"{tuple(y_.shape)}."
        )
    x_sq = (x * x).sum(1, keepdim=True)
    y_sq = x_sq if y is None else (y_ * y_).sum(1, keepdim=True)
    d2 = (x_sq + y_sq.t() - 2.0 * (x @ y_.t())).clamp(min=0.0)
    if y is None:
        eye = torch.eye(x.shape[0], dtype=torch.bool, device=x.device)
        d2 = d2.masked_fill(eye, 0.0)  # out-of-place: keeps autograd happy
    return d2


def euclidean(x: torch.Tensor, y: torch.Tensor | None = None, eps: float = 1e-12) -> torch.Tensor:
    """Differentiable ``D[i, j] = ||x_i - y_j||`` with a finite gradient at zero distance.

    ``sqrt`` has an infinite derivative at 0, so a zero distance (the diagonal when ``y=None``,
    or duplicated samples in a batch) would turn the whole backward pass into NaN. We return
    ``sqrt(clamp(d², min=eps))``: below ``eps`` the clamp passes a *zero* gradient, so such pairs
    simply do not contribute, and every other pair gets the exact gradient ``(x - y)/||x - y||``.
    The price is that a zero distance reads as ``sqrt(eps)`` (1e-6 for the default), far below
    any margin used by the losses. This is the same choice as the common re-ID toolkits'
    ``dist.clamp(min=1e-12).sqrt()``.
    """
    return squared_euclidean(x, y).clamp(min=eps).sqrt()


def cosine_similarity_matrix(
    x: torch.Tensor, y: torch.Tensor | None = None, eps: float = 1e-12
) -> torch.Tensor:
    """Differentiable ``S[i, j] = cos(x_i, y_j) = x_i·y_j / (||x_i|| ||y_j||)`` in ``[-1, 1]``.

    Each row is L2-normalised with ``F.normalize`` (norm clamped at ``eps``, so a zero vector gives
    similarity 0 instead of NaN) and the result is one matrix product.
    """
    y_ = x if y is None else y
    if x.dim() != 2 or y_.dim() != 2 or x.shape[1] != y_.shape[1]:
        raise _config_error(
            f"cosine_similarity_matrix expects (n, d) and (m, d) tensors, got {tuple(x.shape)} and "
            f"{tuple(y_.shape)}."
        )
    xn = F.normalize(x, dim=1, eps=eps)
    yn = xn if y is None else F.normalize(y_, dim=1, eps=eps)
    return xn @ yn.t()
