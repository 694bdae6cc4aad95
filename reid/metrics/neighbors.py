"""Exact k-nearest-neighbour lists and the CMC up to rank k, with an optional faiss backend.

* :func:`nearest_neighbors` — the ``k`` nearest gallery items of every query (exact search, no
  approximation), streamed over :class:`~reid.metrics.distance.DistanceTiles` (``backend="torch"``,
  distances bit-identical to :func:`~reid.metrics.pairwise_distance`) or through faiss's flat
  indexes (``backend="faiss"``: ``IndexFlatL2`` for the Euclidean metrics, ``IndexFlatIP`` on
  L2-normalised features for cosine).
* :func:`topk_cmc` — the CMC curve at ranks ``1..k`` under the Market-1501 rule and the library's
  pessimistic tie rule; with faiss, from its neighbour lists alone. It is a *truncated* result and
  named so (:class:`TopKCMC`, field ``cmc_at_k``): it says nothing beyond rank ``k`` and holds no
  mAP, which needs every true match (use :func:`reid.metrics.rank_metrics_features`, exact at 500k
  distractors). A "mAP@k" is a different quantity from mAP and is deliberately not offered.

Why the top-k lists suffice for the CMC (faiss backend). Junk (pid -1) is left out of the search. For a query with
``s`` same-identity gallery items (true matches and same-camera junk), search
``K = k + s`` neighbours. Every item outside the list is at least as far as the list's last one,
``d_K``. If the nearest true match is in the list at ``d_f < d_K``, every negative at ``<= d_f`` is
in the list and its rank ``#{negatives <= d_f}`` is exact. Otherwise (``d_f = d_K``, or no true
match in the list) the list already holds ``>= K - s = k`` negatives at ``<= d_f``, so the rank is
``>= k``: outside the curve either way.

faiss is an optional dependency (``pip install "reid-book[scale]"``), imported only when asked
for. It computes distances with its own arithmetic, so a gallery item within a few float
roundings of a tie can order differently from the torch path; results agree otherwise (the tests
compare both with :func:`~reid.metrics.rank_metrics`). It does not help k-reciprocal re-ranking
(:mod:`reid.metrics.rerank`): that needs every row's maximum distance and the whole query x
gallery matrix anyway, so its neighbour table comes for free from the same distance blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from reid.errors import ConfigError, ReidError
from reid.metrics.distance import DEFAULT_BLOCK_SIZE, DistanceTiles, _as_features, _check_metric
from reid.metrics.ranking import JUNK_PID, same_identity_slots
from reid.metrics.streaming import DEFAULT_CHUNK_SIZE
from reid.metrics.validation import as_labels

__all__ = ["BACKENDS", "Neighbors", "TopKCMC", "nearest_neighbors", "topk_cmc"]

#: Accepted values of ``backend=``.
BACKENDS = ("torch", "faiss")


def _faiss():
    """The faiss module, or one clear error saying how to install it."""
    try:
        import faiss
    except ImportError as exc:  # pragma: no branch - message tested by monkeypatching the import
        raise ReidError(
            "backend='faiss' needs the optional faiss package, which is not installed; install it "
            "with: pip install \"reid-book[scale]\" (or use backend='torch', same results)."
        ) from exc
    return faiss


@dataclass(frozen=True)
class Neighbors:
    """``indices[q, j]``: the gallery row of query ``q``'s ``j``-th nearest neighbour (nearest
    first), ``distances[q, j]`` its distance in the metric's units (smaller is closer)."""

    indices: torch.Tensor
    distances: torch.Tensor
    backend: str


def _torch_knn(x, y, k, metric, normalize, block_size, chunk_size, index):
    tiles = DistanceTiles(x, y, metric, normalize=normalize, block_size=block_size,
                          chunk_size=chunk_size, index=index, x_name="query_features",
                          y_name="gallery_features")
    k = min(k, tiles.num_cols)
    out_d = torch.empty(tiles.num_rows, k, dtype=tiles.dtype, device=tiles.device)
    out_i = torch.empty(tiles.num_rows, k, dtype=torch.int64, device=tiles.device)
    for block in tiles.row_blocks():
        best_d = best_i = None
        for c0, c1 in tiles.chunks(block):
            tile = tiles.tile(block, (c0, c1))
            top = torch.topk(tile, min(k, c1 - c0), dim=1, largest=False, sorted=False)
            cand_d, cand_i = top.values, top.indices + c0
            if best_d is not None:
                cand_d, cand_i = torch.cat([best_d, cand_d], 1), torch.cat([best_i, cand_i], 1)
            keep = torch.topk(cand_d, min(k, cand_d.shape[1]), dim=1, largest=False, sorted=True)
            best_d, best_i = keep.values, cand_i.gather(1, keep.indices)
        out_d[block[0] : block[1]], out_i[block[0] : block[1]] = best_d, best_i
    return out_i, out_d


def _faiss_knn(x, y, k, metric, normalize, block_size, chunk_size, index):
    faiss = _faiss()
    xq = _as_features(x, "query_features").float().cpu()
    yg = _as_features(y, "gallery_features").float()
    if xq.shape[1] != yg.shape[1]:
        raise ConfigError(f"query and gallery features differ in dimension: {xq.shape[1]} vs {yg.shape[1]}.")
    unit = normalize or metric == "cosine"
    if unit:
        xq = F.normalize(xq, dim=1)
    flat = faiss.IndexFlatIP(xq.shape[1]) if metric == "cosine" else faiss.IndexFlatL2(xq.shape[1])
    n = len(yg) if index is None else len(index)
    for start in range(0, n, chunk_size):  # faiss keeps its own copy; add it chunk by chunk
        rows = yg[start : start + chunk_size] if index is None else yg[index[start : start + chunk_size]]
        rows = F.normalize(rows, dim=1) if unit else rows
        flat.add(np.ascontiguousarray(rows.cpu().numpy()))
    k = min(k, n)
    out_d = torch.empty(len(xq), k, dtype=torch.float32)
    out_i = torch.empty(len(xq), k, dtype=torch.int64)
    for start in range(0, len(xq), block_size):
        d, i = flat.search(np.ascontiguousarray(xq[start : start + block_size].numpy()), k)
        d = torch.from_numpy(d)
        if metric == "cosine":
            d = (1.0 - d).clamp_(0.0, 2.0)
        else:
            d = d.clamp_(min=0.0)
            if metric == "euclidean":
                d = d.sqrt_()
        out_d[start : start + block_size], out_i[start : start + block_size] = d, torch.from_numpy(i)
    return out_i, out_d


@torch.no_grad()
def nearest_neighbors(
    query_features: Any,
    gallery_features: Any,
    k: int,
    *,
    metric: str = "euclidean",
    normalize: bool = False,
    backend: str = "torch",
    block_size: int = DEFAULT_BLOCK_SIZE,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    gallery_index: Any | None = None,
) -> Neighbors:
    """Exact ``k`` nearest gallery items of every query (``min(k, G)`` if the gallery is smaller).

    ``backend="torch"`` streams the distance tiles (memory: one tile plus ``Q x k``) and returns
    the distances of :func:`~reid.metrics.pairwise_distance` bit for bit; ``backend="faiss"``
    searches faiss's flat index (float32, its own copy of the gallery). Neighbours at the same
    distance as the ``k``-th may be cut in either order. ``gallery_index`` restricts and orders
    the gallery (returned indices then point into ``gallery_index``).
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}.")
    _check_metric(metric, block_size)
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}.")
    index = None if gallery_index is None else torch.as_tensor(gallery_index, dtype=torch.int64).reshape(-1)
    knn = _torch_knn if backend == "torch" else _faiss_knn
    indices, distances = knn(query_features, gallery_features, int(k), metric, normalize, block_size,
                             chunk_size, index)
    return Neighbors(indices, distances, backend)


@dataclass(frozen=True)
class TopKCMC:
    """CMC at ranks ``1..k`` only (a truncated result: no mAP, nothing beyond rank ``k``).

    ``cmc_at_k[r]`` is the fraction of valid queries whose first true match is at rank ``<= r + 1``
    (the same numbers as ``rank_metrics(...).cmc[:k]``). ``first_match_within_k[q]`` is that 0-based
    rank when it is ``< k``, else -1 (also -1 for queries without a true match, ``valid`` False).
    """

    cmc_at_k: np.ndarray
    k: int
    num_valid: int
    first_match_within_k: np.ndarray
    valid: np.ndarray
    backend: str

    @property
    def rank1(self) -> float:
        return float(self.cmc_at_k[0]) if self.num_valid else float("nan")

    def rank(self, r: int) -> float:
        """CMC at rank ``r`` (1-based, ``r <= k``)."""
        if not 1 <= r <= self.k:
            raise ConfigError(f"this CMC was computed up to rank k={self.k}; rank {r} is unknown.")
        return float(self.cmc_at_k[r - 1])

    def as_dict(self, ranks: tuple[int, ...] = (1, 5, 10, 20), percent: bool = True) -> dict:
        scale = 100.0 if percent else 1.0
        out = {f"rank{r}": round(scale * self.rank(r), 4) for r in ranks if r <= self.k}
        out.update(cmc_truncated_at=self.k, num_valid=int(self.num_valid), backend=self.backend)
        return out


def topk_cmc(
    query_features: Any,
    gallery_features: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    *,
    k: int = 50,
    metric: str = "euclidean",
    normalize: bool = False,
    backend: str = "torch",
    block_size: int = DEFAULT_BLOCK_SIZE,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> TopKCMC:
    """CMC at ranks ``1..k`` (Market-1501 rule, pessimistic ties) of query/gallery features.

    ``backend="torch"``: the first-match ranks of :func:`~reid.metrics.match_ranks_features` (one
    streaming pass, exact), cut at ``k``: equal to ``rank_metrics(pairwise_distance(...)).cmc[:k]``.
    ``backend="faiss"``: ``k + s`` exact neighbours among the non-junk gallery items from faiss,
    ``s`` the largest number of same-identity items of any query (module docstring: why that
    suffices); equal to the above up to faiss's float rounding of near-ties.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}.")
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}.")
    if backend == "torch":
        from reid.metrics.streaming import match_ranks_features

        ranks = match_ranks_features(query_features, gallery_features, q_pids, g_pids, q_camids,
                                     g_camids, metric=metric, normalize=normalize,
                                     block_size=block_size, chunk_size=chunk_size)
        first = np.full(ranks.num_queries, -1, np.int64)
        valid = np.zeros(ranks.num_queries, bool)
        valid[ranks.valid_rows] = True
        first[ranks.valid_rows] = np.where(ranks.ranks[:, 0] < k, ranks.ranks[:, 0], -1)
        return _topk_result(first, valid, int(k), backend)

    q_pids, q_camids = as_labels(q_pids, "q_pids"), as_labels(q_camids, "q_camids")
    g_pids, g_camids = as_labels(g_pids, "g_pids"), as_labels(g_camids, "g_camids")
    num_gallery = int(torch.as_tensor(gallery_features).shape[0])
    if len(g_pids) != num_gallery or len(g_camids) != num_gallery:
        raise ConfigError(f"gallery_features has {num_gallery} rows but g_pids has {len(g_pids)} and "
                          f"g_camids {len(g_camids)} entries; pass one pid and camera id per item.")
    nq = len(q_pids)
    keep = np.flatnonzero(g_pids != JUNK_PID)
    kg_pids, kg_cams = g_pids[keep], g_camids[keep]
    _, _, is_match, group_size = same_identity_slots(q_pids, q_camids, kg_pids, kg_cams)
    valid = is_match.any(1)
    first = np.full(nq, -1, np.int64)
    if valid.any():
        nb = nearest_neighbors(query_features, gallery_features, k + int(group_size.max()),
                               metric=metric, normalize=normalize, backend=backend,
                               block_size=block_size, chunk_size=chunk_size,
                               gallery_index=torch.from_numpy(keep))
        if nb.indices.shape[0] != nq:
            raise ConfigError(f"query_features has {nb.indices.shape[0]} rows but q_pids has {nq} entries.")
        idx, dist = nb.indices.cpu().numpy(), nb.distances.cpu().double().numpy()
        same = kg_pids[idx] == q_pids[:, None]
        match = same & (kg_cams[idx] != q_camids[:, None])
        has = match.any(1)
        d_first = dist[np.arange(nq), np.argmax(match, 1)]
        # pessimistic ties: every negative in the list at <= the first true match's distance
        rank = ((dist <= d_first[:, None]) & ~same).sum(1)
        complete = idx.shape[1] == len(keep)  # the list is the whole gallery
        exact = has & valid & (complete | (d_first < dist[:, -1]))
        first = np.where(exact & (rank < k), rank, -1)
    return _topk_result(first, valid, int(k), backend)


def _topk_result(first: np.ndarray, valid: np.ndarray, k: int, backend: str) -> TopKCMC:
    num_valid = int(valid.sum())
    hits = np.bincount(first[first >= 0], minlength=k)[:k]
    cmc = np.cumsum(hits) / num_valid if num_valid else np.zeros(k)
    return TopKCMC(cmc.astype(np.float64), k, num_valid, first, valid, backend)
