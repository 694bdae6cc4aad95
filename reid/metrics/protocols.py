"""The evaluation protocols of the five papers, each a function on features or distances.

=========================================  ===================================================
protocol                                   used by
=========================================  ===================================================
:func:`market_single_query`                000 Tables II/III/V/VI, 001 Table 2, 002 Table 1 (SQ),
                                           003 Tables IV/V, 004 Tables 1-3 (Market, Duke, MSMT17)
:func:`market_multi_query`                 000 Table IV (max pooling), 001 Table 2 (Market MQ),
                                           002 Table 1 (MQ)
:func:`cuhk03_classic`                     000 Tables II/III/VI (CUHK03: all view-A probes,
                                           50 random galleries per split, 20 splits),
                                           002 Table 2 (one probe + one gallery image per id)
:func:`cuhk03_new_protocol`                the 767/700 split (Zhong et al. 2017), via rank_metrics
:func:`two_view_single_shot`               001 (PRID2011, CUHK01, 3DPeS; 10 random repeats),
                                           003 Table II (VIPeR, 316 test ids), 002 (CUHK01)
=========================================  ===================================================

All ranking goes through :func:`reid.metrics.rank_metrics` or :func:`single_shot_cmc`; ties are
broken pessimistically in both (a false match at the same distance is ranked first).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from reid.errors import ConfigError
from reid.metrics.distance import _as_features, pairwise_distance
from reid.metrics.ranking import RankMetrics, rank_metrics
from reid.metrics.validation import as_array, as_labels, check_distances

__all__ = [
    "SingleShotResult",
    "average_single_shot",
    "cuhk03_classic",
    "cuhk03_new_protocol",
    "market_multi_query",
    "market_single_query",
    "pool_multi_query",
    "random_identity_split",
    "single_shot_cmc",
    "two_view_single_shot",
]


# ------------------------------------------------------------------------------------ Market
def market_single_query(
    query_features: Any,
    gallery_features: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    *,
    metric: str = "euclidean",
    normalize: bool = False,
    ap: str = "step",
    max_rank: int = 50,
) -> RankMetrics:
    """Market-1501 single-query evaluation (Zheng et al. 2015): every query image on its own.

    Serves paper 000 Tables II/III/V/VI (cosine similarity: ``metric="cosine"``), paper 002
    Table 1 "SQ", paper 004 Tables 1-2 and the DukeMTMC-reID / MSMT17 numbers, which use the same
    rule. Same-id same-camera gallery images and pid -1 are junk; pid 0 distractors stay.
    """
    dist = pairwise_distance(query_features, gallery_features, metric, normalize=normalize)
    return rank_metrics(dist, q_pids, g_pids, q_camids, g_camids, max_rank=max_rank, ap=ap)


def pool_multi_query(
    query_features: Any,
    q_pids: Any,
    q_camids: Any,
    *,
    pooling: str = "max",
    extra_features: Any | None = None,
    extra_pids: Any | None = None,
    extra_camids: Any | None = None,
) -> torch.Tensor:
    """Replace every query's feature by the pool over its identity's images in the same camera.

    Papers 000 (Sec. IV-A: "we apply the max pooling strategy (which performs better than the
    average pooling) to merge them into a single query") and 002 (Sec. 4.1: "all features
    extracted from the images of a person captured by the same camera are merged by average or
    max pooling"). The pool of query ``q`` is ``q`` itself plus every image of ``extra_*`` (the
    official Market-1501 multi-query code uses the hand-drawn boxes of ``gt_bbox/``) with the
    same pid and camera; without ``extra_*`` it is the same-pid same-camera query images.
    Element-wise ``max`` or ``avg``; the query count is unchanged, so the result is evaluated
    against the same gallery with the same junk rule.
    """
    if pooling not in ("max", "avg"):
        raise ConfigError(f"pooling must be 'max' or 'avg', got {pooling!r}.")
    qf = _as_features(query_features, "query_features").float()
    qp, qc = as_labels(q_pids, "q_pids"), as_labels(q_camids, "q_camids")
    if len(qp) != len(qf) or len(qc) != len(qf):
        raise ConfigError("query_features, q_pids and q_camids must have the same length.")
    feats, pids, cams = qf, qp, qc
    if extra_features is not None:
        if extra_pids is None or extra_camids is None:
            raise ConfigError("extra_features needs extra_pids and extra_camids as well.")
        ef = _as_features(extra_features, "extra_features").float()
        ep, ec = as_labels(extra_pids, "extra_pids"), as_labels(extra_camids, "extra_camids")
        if ef.shape[1:] != qf.shape[1:] or len(ep) != len(ef) or len(ec) != len(ef):
            raise ConfigError("extra_features / extra_pids / extra_camids do not match the query set.")
        feats = torch.cat([qf, ef])
        pids = np.concatenate([qp, ep])
        cams = np.concatenate([qc, ec])
    # Group by (pid, camera) over queries + extras; pool each group once.
    keys = np.stack([pids, cams], 1)
    _, group = np.unique(keys, axis=0, return_inverse=True)
    group = group.reshape(-1)
    num_groups = int(group.max()) + 1 if len(group) else 0
    index = torch.from_numpy(group)
    if pooling == "max":
        pooled = torch.full((num_groups, feats.shape[1]), -torch.inf).scatter_reduce(
            0, index[:, None].expand_as(feats), feats, reduce="amax", include_self=True)
    else:
        pooled = torch.zeros(num_groups, feats.shape[1]).index_add_(0, index, feats)
        pooled /= torch.bincount(index, minlength=num_groups).clamp(min=1)[:, None].float()
    return pooled[index[: len(qf)]]


def market_multi_query(
    query_features: Any,
    gallery_features: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    *,
    pooling: str = "max",
    extra_features: Any | None = None,
    extra_pids: Any | None = None,
    extra_camids: Any | None = None,
    metric: str = "euclidean",
    normalize: bool = False,
    ap: str = "step",
    max_rank: int = 50,
) -> RankMetrics:
    """Market-1501 multi-query evaluation: pooled queries (:func:`pool_multi_query`), then SQ rule.

    Paper 000 Table IV (max pooling, cosine), paper 002 Table 1 "MQ", paper 001 Table 2 (Market
    "multi-query evaluation settings"). Pooling happens on the raw features; ``normalize`` then
    applies to the pooled feature, as when the pooled vector replaces the query.
    """
    pooled = pool_multi_query(query_features, q_pids, q_camids, pooling=pooling,
                              extra_features=extra_features, extra_pids=extra_pids,
                              extra_camids=extra_camids)
    return market_single_query(pooled, gallery_features, q_pids, g_pids, q_camids, g_camids,
                               metric=metric, normalize=normalize, ap=ap, max_rank=max_rank)


def cuhk03_new_protocol(dist: Any, q_pids: Any, g_pids: Any, q_camids: Any, g_camids: Any, *,
                        ap: str = "step", max_rank: int = 50) -> RankMetrics:
    """CUHK03 "767/700" protocol (Zhong et al., CVPR 2017): 767 training and 700 test identities,
    fixed query/gallery lists, evaluated exactly like Market-1501 (CMC + mAP with the same-camera
    rule). A named entry point so the book's tables say which protocol produced a number."""
    return rank_metrics(dist, q_pids, g_pids, q_camids, g_camids, ap=ap, max_rank=max_rank)


# --------------------------------------------------------------------------------- single shot
@dataclass(frozen=True)
class SingleShotResult:
    """Mean CMC over random gallery (and probe) draws; ``cmc_std`` is the std over draws."""

    cmc: np.ndarray
    cmc_std: np.ndarray
    repeats: int
    num_probes: int  # probes evaluated per draw (those whose identity is in the gallery)

    @property
    def rank1(self) -> float:
        return float(self.cmc[0])

    def rank(self, r: int) -> float:
        return float(self.cmc[r - 1])

    def as_dict(self, ranks: tuple[int, ...] = (1, 5, 10, 20)) -> dict:
        out = {f"rank{r}": round(100 * self.rank(r), 4) for r in ranks if r <= len(self.cmc)}
        out.update(repeats=self.repeats, num_probes=self.num_probes)
        return out


def single_shot_cmc(
    dist: Any,
    probe_pids: Any,
    gallery_pids: Any,
    *,
    repeats: int = 50,
    probe: str = "all",
    seed: int = 0,
    max_rank: int = 50,
) -> SingleShotResult:
    """Single-shot CMC: the gallery holds one randomly drawn image per identity; mean over draws.

    ``dist`` is ``(num_probe_images, num_gallery_images)`` between a probe view and a gallery
    view (so no same-camera rule is needed). In each of ``repeats`` draws one gallery image is
    picked uniformly per gallery identity; with ``probe="one"`` one probe image per identity is
    also drawn, with ``probe="all"`` every probe image is ranked. Gallery identities absent from
    the probes are distractors (PRID2011's 549 camera-B-only people); probes whose identity is
    absent from the gallery are ignored. The rank of a probe is the number of *other* gallery
    identities whose drawn image is at distance ``<=`` its true match's (pessimistic ties).
    """
    if probe not in ("all", "one"):
        raise ConfigError(f"probe must be 'all' or 'one', got {probe!r}.")
    if repeats < 1:
        raise ConfigError(f"repeats must be >= 1, got {repeats}.")
    d = torch.as_tensor(as_array(dist)).double()
    check_distances(d)
    pp, gp = as_labels(probe_pids, "probe_pids"), as_labels(gallery_pids, "gallery_pids")
    if d.dim() != 2 or d.shape != (len(pp), len(gp)):
        raise ConfigError(
            f"dist has shape {tuple(d.shape)} but there are {len(pp)} probe and {len(gp)} gallery "
            "pids; dist must be (num_probe_images, num_gallery_images).")
    g_ids, g_inverse, g_counts = np.unique(gp, return_inverse=True, return_counts=True)
    g_order = np.argsort(g_inverse, kind="stable")
    g_starts = np.concatenate([[0], np.cumsum(g_counts)[:-1]])
    in_gallery = np.isin(pp, g_ids)
    probe_rows = np.flatnonzero(in_gallery)
    if len(probe_rows) == 0:
        raise ConfigError("no probe identity appears in the gallery; check the pid arrays.")
    true_col = np.searchsorted(g_ids, pp[probe_rows])  # index of the probe's identity
    p_ids, p_inverse, p_counts = np.unique(pp[probe_rows], return_inverse=True, return_counts=True)
    p_order = np.argsort(p_inverse, kind="stable")
    p_starts = np.concatenate([[0], np.cumsum(p_counts)[:-1]])

    rng = np.random.default_rng(seed)
    curves = np.zeros((repeats, max_rank))
    for rep in range(repeats):
        pick = g_order[g_starts + rng.integers(0, g_counts)]  # one gallery column per identity
        if probe == "one":
            chosen = p_order[p_starts + rng.integers(0, p_counts)]
        else:
            chosen = np.arange(len(probe_rows))
        rows = probe_rows[chosen]
        sub = d[torch.from_numpy(rows)][:, torch.from_numpy(pick)]  # (P, num_gallery_ids)
        tc = torch.from_numpy(true_col[chosen])
        d_true = sub.gather(1, tc[:, None])
        rank = (sub <= d_true).sum(1) - 1  # other identities at least as close
        hist = np.bincount(np.minimum(rank.numpy(), max_rank), minlength=max_rank + 1)[:max_rank]
        curves[rep] = np.cumsum(hist) / len(rows)
    num_probes = len(p_ids) if probe == "one" else len(probe_rows)
    return SingleShotResult(curves.mean(0), curves.std(0), repeats, num_probes)


def average_single_shot(results: Sequence[SingleShotResult]) -> SingleShotResult:
    """Mean CMC over splits (e.g. CUHK03's 20 test splits or VIPeR's 10 random halves);
    ``cmc_std`` becomes the standard deviation across splits."""
    results = list(results)
    if not results:
        raise ConfigError("average_single_shot needs at least one split result.")
    curves = np.stack([r.cmc for r in results])
    return SingleShotResult(curves.mean(0), curves.std(0), sum(r.repeats for r in results),
                            int(round(np.mean([r.num_probes for r in results]))))


def cuhk03_classic(
    splits: Iterable[tuple[Any, Any, Any]],
    *,
    repeats: int = 50,
    probe: str = "all",
    seed: int = 0,
    max_rank: int = 50,
) -> SingleShotResult:
    """CUHK03 classic protocol (Li et al., CVPR 2014): 20 splits of 100 test identities.

    ``splits`` yields ``(dist, probe_pids, gallery_pids)`` per split, with probes from view A
    (cameras 1, 3, 5: the first five images of each identity) and gallery candidates from view B
    (cameras 2, 4, 6). Defaults follow paper 000 (Sec. IV-A, Tables II/III/VI): all view-A
    images are probes, the 100-image gallery (one random view-B image per identity) is redrawn
    ``repeats=50`` times, and the CMC is averaged over draws and then over splits. Paper 002
    (Table 2) draws one probe and one gallery image per identity once per split:
    ``probe="one", repeats=1``. Split ``k`` uses seed ``seed + k``.
    """
    results = [
        single_shot_cmc(dist, pp, gp, repeats=repeats, probe=probe, seed=seed + k, max_rank=max_rank)
        for k, (dist, pp, gp) in enumerate(splits)
    ]
    return average_single_shot(results)


def random_identity_split(pids: Any, num_train: int | None = None, *, seed: int = 0):
    """Random train/test identity halves of a two-view dataset: ``(train_ids, test_ids)``.

    ``num_train=None`` splits the identities in half (VIPeR 316/316, 3DPeS, CUHK01 485/486 as in
    paper 001's "half of the persons are used for training"); pass 871 for CUHK01's 871/100 split
    (paper 001) or 100 for PRID2011's shared identities. Identities are sorted first, so the split
    depends only on the identity set and the seed.
    """
    ids = np.unique(as_labels(pids, "pids"))
    n_train = len(ids) // 2 if num_train is None else int(num_train)
    if not 0 < n_train < len(ids):
        raise ConfigError(f"num_train must be between 1 and {len(ids) - 1}, got {num_train}.")
    perm = np.random.default_rng(seed).permutation(len(ids))
    return np.sort(ids[perm[:n_train]]), np.sort(ids[perm[n_train:]])


def two_view_single_shot(
    split_results: Iterable[tuple[Any, Any, Any]],
    *,
    repeats: int = 10,
    seed: int = 0,
    max_rank: int = 50,
) -> SingleShotResult:
    """Two-view single-shot protocol (VIPeR, CUHK01, PRID2011, 3DPeS), averaged over random splits.

    For each random train/test split (:func:`random_identity_split`; a model is trained per split
    by the caller) pass ``(dist, probe_pids, gallery_pids)`` of the *test* identities: probes from
    camera A, gallery from camera B. One probe and one gallery image per identity are drawn
    (``probe="one"``), ``repeats`` times per split, and everything is averaged: paper 001 (PRID2011
    single-shot with the camera-B-only identities as gallery distractors, CUHK01, 3DPeS; "averaged
    over ten random repeats") and paper 003 Table II (VIPeR, one image per view, so the draw is
    trivial). For PRID2011 put the 649 camera-B identities (100 test + 549 never seen in camera A)
    in the gallery; they are kept as distractors.
    """
    results = [
        single_shot_cmc(dist, pp, gp, repeats=repeats, probe="one", seed=seed + k, max_rank=max_rank)
        for k, (dist, pp, gp) in enumerate(split_results)
    ]
    return average_single_shot(results)
