"""k-reciprocal re-ranking (Zhong, Zheng, Cao, Li, CVPR 2017), used by paper 002, Table 1.

The algorithm, over the ``N = Q + G`` query and gallery images together:

1. Original distance ``d(p, g)``: the input distance squared, each row divided by its maximum
   (as in the authors' released code; Sec. 3 of the paper writes a generic ``d(p, g_i)``).
2. ``N(p, k)``: the ``k + 1`` nearest images of ``p`` (``p`` itself included, as the released
   code's ``initial_rank[p, :k+1]``). k-reciprocal set (Eq. 3):
   ``R(p, k) = {g in N(p, k) : p in N(g, k)}``.
3. Expansion (Eq. 6): for each ``q in R(p, k1)`` add ``R(q, round(k1/2))`` when
   ``|R(p, k1) ∩ R(q, k1/2)| > 2/3 |R(q, k1/2)|``. The paper prints ``>=``; the released code (with
   which paper 002's numbers were produced) uses a strict ``>``; we follow the code.
4. Gaussian-kernel encoding (Eq. 7-8): ``V_p[g] = exp(-d(p, g)) / sum`` over the expanded set,
   0 elsewhere — a sparse ``N x N`` matrix with a few dozen entries per row.
5. Local query expansion (Eq. 11): ``V_p <- mean of V_g over the k2 nearest g of p`` (p included).
6. Jaccard distance (Eq. 10 with Eq. 12's min/max): ``d_J(p, g) = 1 - sum min(V_p, V_g) /
   sum max(V_p, V_g)``; as rows sum to 1, ``sum max = 2 - sum min``.
7. Final distance (Eq. 13): ``d* = (1 - lambda) d_J + lambda d``, query rows x gallery columns.

Defaults ``k1=20, k2=6, lambda=0.3`` are the paper's Market-1501 setting, used by paper 002.

Implementation. Nothing ``N x N`` is stored: the original distances are produced in row blocks
(from features, or from the three given matrices), reduced at once to each row's maximum and its
``k1 + 1`` nearest neighbours, and the query x gallery part is kept for step 7 (that ``Q x G``
matrix is the output anyway). Steps 2-3 are tensor operations on the ``N x (k1+1)`` neighbour
table; steps 4-5 use SciPy sparse matrices; step 6 joins query and gallery rows through the
columns they share (an inverted index, vectorised) and accumulates ``sum min`` per block of
queries with ``np.bincount``. The distance blocks run on the features' device (a GPU if
present); the sparse steps run on the CPU.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from reid.errors import ConfigError
from reid.metrics.distance import _as_features, pairwise_distance
from reid.metrics.validation import check_distances

__all__ = ["k_reciprocal_rerank", "rerank_distances"]

#: Diagnostics of the last call (number of expanded-set pairs, how many missed the cache).
LAST_STATS: dict = {}


class _FeatureSource:
    """Squared original distances between all N = Q + G images, from features."""

    def __init__(self, qf, gf, metric: str, normalize: bool):
        if metric not in ("euclidean", "cosine"):
            raise ConfigError(f"re-ranking metric must be 'euclidean' or 'cosine', got {metric!r}.")
        qf, gf = _as_features(qf, "query_features"), _as_features(gf, "gallery_features")
        feats = torch.cat([qf, gf.to(qf.device)]).float()
        if normalize or metric == "cosine":
            feats = F.normalize(feats, dim=1)
        self.feats, self.metric = feats, metric
        self.sq = (feats * feats).sum(1)
        self.n = len(feats)
        self.device = feats.device

    def rows(self, start: int, stop: int) -> torch.Tensor:
        if self.metric == "euclidean":  # d² directly: the code squares the Euclidean distance
            return pairwise_distance(self.feats[start:stop], self.feats, "sqeuclidean")
        return pairwise_distance(self.feats[start:stop], self.feats, "cosine").square_()

    def pairs(self, i: np.ndarray, j: np.ndarray, chunk: int = 16384) -> np.ndarray:
        out = np.empty(len(i), np.float32)
        for s in range(0, len(i), chunk):
            a = torch.from_numpy(i[s : s + chunk]).to(self.device)
            b = torch.from_numpy(j[s : s + chunk]).to(self.device)
            dot = (self.feats[a] * self.feats[b]).sum(1)
            if self.metric == "euclidean":
                val = (self.sq[a] + self.sq[b] - 2 * dot).clamp_(min=0)
            else:
                val = (1 - dot).clamp_(0, 2).square_()
            out[s : s + chunk] = val.cpu().numpy()
        return out


class _MatrixSource:
    """Squared original distances from precomputed query-gallery, query-query, gallery-gallery."""

    def __init__(self, q_g, q_q, g_g):
        self.qg = torch.as_tensor(q_g).detach().float()
        self.qq = torch.as_tensor(q_q).detach().float().to(self.qg.device)
        self.gg = torch.as_tensor(g_g).detach().float().to(self.qg.device)
        for name, mat in (("q_g", self.qg), ("q_q", self.qq), ("g_g", self.gg)):
            check_distances(mat, name)
        nq, ng = self.qg.shape
        if self.qq.shape != (nq, nq) or self.gg.shape != (ng, ng):
            raise ConfigError(
                f"re-ranking needs q_g (Q x G), q_q (Q x Q) and g_g (G x G); got {tuple(self.qg.shape)}, "
                f"{tuple(self.qq.shape)}, {tuple(self.gg.shape)}.")
        self.nq, self.n, self.device = nq, nq + ng, self.qg.device

    def rows(self, start: int, stop: int) -> torch.Tensor:
        parts = []
        if start < self.nq:
            s, e = start, min(stop, self.nq)
            parts.append(torch.cat([self.qq[s:e], self.qg[s:e]], 1))
        if stop > self.nq:
            s, e = max(start, self.nq) - self.nq, stop - self.nq
            parts.append(torch.cat([self.qg[:, s:e].t(), self.gg[s:e]], 1))
        return torch.cat(parts).square_()

    def pairs(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        out = np.empty(len(i), np.float32)
        nq = self.nq
        for a_q in (True, False):
            for b_q in (True, False):
                sel = ((i < nq) == a_q) & ((j < nq) == b_q)
                if not sel.any():
                    continue
                a = torch.from_numpy(i[sel] - (0 if a_q else nq))
                b = torch.from_numpy(j[sel] - (0 if b_q else nq))
                mat = self.qq if (a_q and b_q) else self.qg if a_q else (
                    self.qg.t() if b_q else self.gg)
                out[sel] = mat[a.to(self.device), b.to(self.device)].cpu().numpy() ** 2
        return out


def _reciprocal(nbr: torch.Tensor, k: int) -> torch.Tensor:
    """``mask[p, a]``: is ``nbr[p, a]`` a k-reciprocal neighbour of p (p in its k+1 nearest)?"""
    head = nbr[:, : k + 1]
    back = head[head]  # (N, k+1, k+1): the neighbour lists of p's neighbours
    me = torch.arange(len(nbr), device=nbr.device)[:, None, None]
    return (back == me).any(-1)


def _rerank(source, nq: int, k1: int, k2: int, lambda_value: float, block_size: int,
            cache_width: int = 64) -> torch.Tensor:
    import scipy.sparse as sp  # imported here: `import reid.metrics` stays light for the losses

    n = source.n
    if not (1 <= k1 < n):
        raise ConfigError(f"k1 must satisfy 1 <= k1 < number of images ({n}), got {k1}.")
    if not (1 <= k2 <= k1 + 1):
        raise ConfigError(f"k2 must satisfy 1 <= k2 <= k1 + 1, got k2={k2}, k1={k1}.")
    if not 0.0 <= lambda_value <= 1.0:
        raise ConfigError(f"lambda_value must lie in [0, 1], got {lambda_value}.")
    ng = n - nq
    self_stats = LAST_STATS
    self_stats.clear()

    # Pass 1 (blocked): row maxima, the `width` nearest neighbours with their normalised distances
    # (the k1+1 nearest define the neighbourhoods; the rest serve as a cache for step 4), and
    # lambda * d for query x gallery.
    width = min(n, max(k1 + 1, cache_width))
    near_idx = torch.empty(n, width, dtype=torch.int64)
    near_d = torch.empty(n, width, dtype=torch.float32)
    row_max = torch.empty(n, dtype=torch.float32)
    final = torch.empty(nq, ng, dtype=torch.float32)
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        d2 = source.rows(start, stop)
        mx = d2.max(1).values.clamp_(min=torch.finfo(torch.float32).tiny)
        d2 /= mx[:, None]
        # sorted=True: nearest first (the image itself, at distance 0, normally leads)
        top = torch.topk(d2, width, dim=1, largest=False, sorted=True)
        near_idx[start:stop], near_d[start:stop] = top.indices.cpu(), top.values.cpu()
        row_max[start:stop] = mx.cpu()
        if start < nq:
            e = min(stop, nq)
            final[start:e] = d2[: e - start, nq:].cpu().mul_(lambda_value)
        del d2

    # Steps 2-3: k-reciprocal sets and their expansion, on the (N, k1+1) neighbour table.
    nbr = near_idx[:, : k1 + 1].contiguous()
    kh = int(np.around(k1 / 2.0))  # half-size sets R(q, k1/2), np.around as the released code
    recip = _reciprocal(nbr, k1)  # (N, k1+1)
    nbr_h = nbr[:, : kh + 1]
    recip_h = _reciprocal(nbr_h, kh)  # (N, kh+1)
    sentinel = n
    members = torch.where(recip, nbr, sentinel)  # R(p, k1) padded with the sentinel
    cols_parts = []
    for start in range(0, n, block_size):
        stop = min(start + block_size, n)
        cand = nbr[start:stop]  # (b, k1+1) candidates q (valid where recip)
        cand_set = torch.where(recip_h[cand], nbr_h[cand], sentinel)  # (b, k1+1, kh+1): R(q, kh)
        size_h = recip_h[cand].sum(-1)
        inside = (cand_set[..., None] == members[start:stop, None, None, :]).any(-1)
        inter = (inside & (cand_set != sentinel)).sum(-1)
        take = recip[start:stop] & (inter.double() > 2.0 / 3.0 * size_h.double())
        added = torch.where(take[..., None], cand_set, sentinel).flatten(1)
        cols_parts.append(torch.cat([members[start:stop], added], 1))
    cols = torch.cat(cols_parts)
    cols, _ = torch.sort(cols, dim=1)
    dup = torch.zeros_like(cols, dtype=torch.bool)
    dup[:, 1:] = cols[:, 1:] == cols[:, :-1]
    keep = (cols != sentinel) & ~dup

    # Step 4: Gaussian kernel weights over each expanded set, rows normalised to sum 1. The
    # distances d(p, g) come from the pass-1 cache when g is among p's `width` nearest, otherwise
    # they are recomputed for that pair only.
    cache_order = torch.argsort(near_idx, dim=1)
    cache_sorted = near_idx.gather(1, cache_order)
    slot = torch.searchsorted(cache_sorted, cols.clamp(max=n - 1)).clamp_(max=width - 1)
    hit = cache_sorted.gather(1, slot) == cols
    cached = near_d.gather(1, cache_order.gather(1, slot))
    rows_np = torch.arange(n)[:, None].expand_as(cols)[keep].numpy()
    cols_np = cols[keep].numpy()
    d_pairs = cached[keep].numpy().astype(np.float64)
    miss = ~hit[keep].numpy()
    if miss.any():
        d_pairs[miss] = source.pairs(rows_np[miss], cols_np[miss]) / row_max.numpy()[rows_np[miss]]
    self_stats["cache_misses"] = int(miss.sum())
    self_stats["pairs"] = int(len(miss))
    w = np.exp(-d_pairs.astype(np.float64))
    w /= np.bincount(rows_np, weights=w, minlength=n)[rows_np]
    V = sp.csr_matrix((w, (rows_np, cols_np)), shape=(n, n))

    # Step 5: local query expansion over the k2 nearest neighbours (the image itself included).
    if k2 > 1:
        qe_rows = np.repeat(np.arange(n), k2)
        A = sp.csr_matrix((np.full(n * k2, 1.0 / k2), (qe_rows, nbr[:, :k2].reshape(-1).numpy())),
                          shape=(n, n))
        V = (A @ V).tocsr()

    # Step 6: Jaccard distance, query rows x gallery rows, through the shared columns.
    Vq = V[:nq].tocsr()
    Vg = V[nq:].tocsc()  # column k -> gallery rows with V[g, k] > 0
    Vq.sort_indices()
    g_ptr, g_rows, g_vals = Vg.indptr, Vg.indices, Vg.data
    q_block = max(1, min(nq, 2_000_000 // max(ng, 1)))
    for start in range(0, nq, q_block):
        stop = min(start + q_block, nq)
        sub = Vq[start:stop].tocoo()
        qi, k, v = sub.row, sub.col, sub.data
        lengths = g_ptr[k + 1] - g_ptr[k]
        total = int(lengths.sum())
        min_sum = np.zeros((stop - start) * ng)
        if total:
            # Expand each (query, column) entry into the gallery rows sharing that column.
            rep = np.repeat(np.arange(len(k)), lengths)
            offs = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
            pos = g_ptr[k][rep] + offs
            mins = np.minimum(v[rep], g_vals[pos])
            min_sum = np.bincount(qi[rep] * ng + g_rows[pos], weights=mins,
                                  minlength=(stop - start) * ng)
        min_sum = min_sum.reshape(stop - start, ng)
        jaccard = 1.0 - min_sum / (2.0 - min_sum)
        final[start:stop] += torch.from_numpy(jaccard).float().mul_(1.0 - lambda_value)
    return final


@torch.no_grad()
def k_reciprocal_rerank(
    query_features: Any,
    gallery_features: Any,
    *,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    metric: str = "euclidean",
    normalize: bool = False,
    block_size: int = 1024,
) -> torch.Tensor:
    """Re-ranked ``Q x G`` distance matrix from query and gallery features (smaller is closer).

    The original distance is the squared Euclidean (``metric="euclidean"``) or squared cosine
    distance of the (optionally L2-normalised) features. ``block_size`` rows of the ``N x N``
    distance are alive at a time; peak memory is about ``Q x G + block_size x N`` floats plus the
    sparse encodings. Feed the result to :func:`reid.metrics.rank_metrics`.
    """
    qf = torch.as_tensor(query_features)
    source = _FeatureSource(qf, gallery_features, metric, normalize)
    return _rerank(source, len(qf), k1, k2, lambda_value, block_size)


@torch.no_grad()
def rerank_distances(
    q_g: Any,
    q_q: Any,
    g_g: Any,
    *,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    block_size: int = 1024,
) -> torch.Tensor:
    """Re-ranking from precomputed distances, the released code's interface.

    ``q_g``, ``q_q``, ``g_g`` are (unsquared, e.g. Euclidean) distances; as in the released code
    they are squared and row-normalised inside. Needs the ``G x G`` matrix in memory; prefer
    :func:`k_reciprocal_rerank` on features for large galleries.
    """
    source = _MatrixSource(q_g, q_q, g_g)
    return _rerank(source, source.nq, k1, k2, lambda_value, block_size)
