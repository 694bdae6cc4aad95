"""Analyses the papers use beyond CMC/mAP: camera pairs, same-camera negatives, gallery size.

* :func:`camera_pair_map` — paper 000, Fig. 10: mAP per (probe camera, gallery camera) pair.
* :func:`negatives_of_interest` and :func:`figures_of_merit` — paper 000, Fig. 1 and Table V.
* :func:`gallery_size_curve` — paper 002, Fig. 4: rank-1 / mAP as distractors join the gallery.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from reid.errors import ConfigError
from reid.metrics.distance import DEFAULT_BLOCK_SIZE
from reid.metrics.ranking import (
    JUNK_PID,
    RankMetrics,
    _as_distance_tensor,
    _check_labels,
    _check_options,
    rank_metrics,
    same_identity_slots,
)
from reid.metrics.streaming import DEFAULT_CHUNK_SIZE, _features_and_labels, _stream_match_ranks
from reid.metrics.validation import check_distances

__all__ = [
    "CameraPairMAP",
    "NegativesOfInterest",
    "camera_pair_map",
    "figures_of_merit",
    "gallery_size_curve",
    "negatives_of_interest",
    "relative_improvement",
]


def _as_tensor(dist: Any) -> torch.Tensor:
    d = _as_distance_tensor(dist)
    return d if d.dtype in (torch.float32, torch.float64) else d.float()


# ------------------------------------------------------------------------------- camera pairs
@dataclass(frozen=True)
class CameraPairMAP:
    """``map[x, y]``: mean AP of probes from camera ``cameras[x]`` when only their true matches
    in camera ``cameras[y]`` count; ``count[x, y]`` the probes averaged (NaN/0 where none)."""

    map: np.ndarray
    count: np.ndarray
    cameras: np.ndarray


def camera_pair_map(
    dist: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    *,
    ap: str = "step",
) -> CameraPairMAP:
    """The mAP camera-pair "confusion matrix" of paper 000, Fig. 10 (Sec. IV-A).

    "With regards to a pair of cameras (X, Y), representing respectively the field-of-view of the
    probe and a test camera, the corresponding mAP value for the considered probe is calculated by
    limiting its positive samples to only those ones viewed under camera Y. This process is
    repeated for all probes and values corresponding to the same camera pair are averaged."

    Reading implemented (the paper does not say what happens to the probe's true matches in the
    *other* cameras): they are removed from that probe's ranking like junk, not counted as false
    matches — a true match is never a negative. All other gallery images (every camera) stay, so
    cell (X, Y) measures how well camera-Y matches surface in the full gallery. Under the
    Market-1501 rule the same-camera true matches are junk, so the diagonal is NaN.

    Implemented by re-using :func:`rank_metrics`: for the cell (X, Y) every gallery camera other
    than Y is relabelled X, so the same-id-same-camera rule removes exactly the probe's matches
    outside Y while different-identity images stay negatives.
    """
    d = _as_tensor(dist)
    check_distances(d)
    qp, gp, qc, gc = _check_labels(tuple(d.shape), q_pids, g_pids, q_camids, g_camids)
    cameras = np.unique(np.concatenate([qc, gc]))
    n = len(cameras)
    out = np.full((n, n), np.nan)
    count = np.zeros((n, n), dtype=np.int64)
    for x, cam_x in enumerate(cameras):
        rows = np.flatnonzero(qc == cam_x)
        if len(rows) == 0:
            continue
        sub = d[torch.from_numpy(rows)]
        for y, cam_y in enumerate(cameras):
            if cam_y == cam_x:
                continue
            g_cam_mod = np.where(gc == cam_y, cam_y, cam_x)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # empty cells are expected
                res = rank_metrics(sub, qp[rows], gp, qc[rows], g_cam_mod, ap=ap, max_rank=1)
            if res.num_valid:
                out[x, y] = res.mAP
                count[x, y] = res.num_valid
    return CameraPairMAP(out, count, cameras)


def relative_improvement(model: Any, baseline: Any) -> np.ndarray:
    """``100 * (model - baseline) / baseline`` element-wise: the "mAP incremental confusion
    matrix (%)" of paper 000, Fig. 10(b). Accepts arrays or :class:`CameraPairMAP`."""
    m = model.map if isinstance(model, CameraPairMAP) else np.asarray(model, dtype=float)
    b = baseline.map if isinstance(baseline, CameraPairMAP) else np.asarray(baseline, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 100.0 * (m - b) / b


# ----------------------------------------------------------------------- negatives of interest
@dataclass(frozen=True)
class NegativesOfInterest:
    """Same-camera false matches among the top-``k`` of each valid query (paper 000, Fig. 1).

    ``percent`` = 100 * ``num_interest`` / ``num_negatives``, pooled over queries; per-query
    counts are in ``per_query_interest`` / ``per_query_negatives``.
    """

    percent: float
    num_interest: int
    num_negatives: int
    k: int
    per_query_interest: np.ndarray
    per_query_negatives: np.ndarray


def negatives_of_interest(
    dist: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    *,
    k: int = 10,
    block_size: int = 256,
) -> NegativesOfInterest:
    """Percentage of the top-``k`` false matches shot by the probe's own camera (paper 000).

    Fig. 1: "For each probe, the list of the 10 top-ranked images is reported ... All the
    negatives with a red camera label (referred to as 'negatives of interest') ... are false
    positives shot by the same camera of the probe". The paper gives no formula for the
    percentage; we use: over all valid queries (those with a true match, as for rank-1/mAP),
    the share of false matches in the top-``k`` of the Market-filtered ranking (junk removed)
    that come from the probe's camera. ``k=10`` follows Fig. 1; ``k=1`` asks "is the rank-1
    mistake a same-camera one". Ties at the ``k``-th place are resolved by ``torch.topk``.
    """
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}.")
    d = _as_tensor(dist)
    check_distances(d)
    qp, gp, qc, gc = _check_labels(tuple(d.shape), q_pids, g_pids, q_camids, g_camids)
    keep = np.flatnonzero(gp != JUNK_PID)
    kgp, kgc = gp[keep], gc[keep]
    cols, present, is_match, _ = same_identity_slots(qp, qc, kgp, kgc)
    valid_rows = np.flatnonzero(is_match.sum(1) > 0)
    inter = np.zeros(len(qp), np.int64)
    negs = np.zeros(len(qp), np.int64)
    keep_t = torch.from_numpy(keep)
    kk = min(k, len(keep))
    for start in range(0, len(valid_rows), block_size):
        rows = valid_rows[start : start + block_size]
        block = d[torch.from_numpy(rows)][:, keep_t]
        junk = present[rows] & ~is_match[rows]  # same id, same camera
        r_idx = np.broadcast_to(np.arange(len(rows))[:, None], junk.shape)
        block[torch.from_numpy(r_idx[junk]), torch.from_numpy(cols[rows][junk])] = math.inf
        top = torch.topk(block, kk, dim=1, largest=False)
        top_cols = top.indices.numpy()
        finite = np.isfinite(top.values.numpy())
        false = (kgp[top_cols] != qp[rows][:, None]) & finite
        same_cam = kgc[top_cols] == qc[rows][:, None]
        negs[rows] = false.sum(1)
        inter[rows] = (false & same_cam).sum(1)
    total_neg, total_int = int(negs.sum()), int(inter.sum())
    percent = 100.0 * total_int / total_neg if total_neg else 0.0
    return NegativesOfInterest(percent, total_int, total_neg, k, inter, negs)


def figures_of_merit(
    baseline: tuple[RankMetrics, NegativesOfInterest],
    model: tuple[RankMetrics, NegativesOfInterest],
) -> dict:
    """Paper 000's viewpoint "figures of merit" (Sec. IV-A, Table V), in percent.

    As printed: ``F_rank1 = (Neg(soft) - Neg(L)) / (rank1(L) - rank1(soft))`` and likewise
    ``F_mAP`` with mAP, where Neg is the percentage of negatives of interest and the baseline
    is the softmax loss: the fraction of the accuracy gain that shows up as fewer same-camera
    mistakes. Neg, rank-1 and mAP are all in percent, so F is a ratio reported x100.

    Caveat (see book/errata_entries/000-figures-of-merit.md): with one Neg for both, the printed
    Table V cannot be reproduced from Tables III — the implied numerators differ between the two
    rows — and the paper gives neither the k of the top-k list nor the denominator of Neg. We
    implement the formula as printed; the caller chooses ``k`` (10, as in Fig. 1, by default).
    ``F`` is NaN when the model does not improve on the baseline (zero denominator).
    """
    (base_m, base_n), (mod_m, mod_n) = baseline, model
    d_neg = base_n.percent - mod_n.percent
    d_r1 = 100.0 * (mod_m.rank1 - base_m.rank1)
    d_map = 100.0 * (mod_m.mAP - base_m.mAP)
    f_r1 = 100.0 * d_neg / d_r1 if d_r1 != 0 else math.nan
    f_map = 100.0 * d_neg / d_map if d_map != 0 else math.nan
    return {"F_rank1": f_r1, "F_mAP": f_map, "delta_neg": d_neg, "delta_rank1": d_r1,
            "delta_mAP": d_map}


# ----------------------------------------------------------------------------- gallery size
def gallery_size_curve(
    query_features: Any,
    gallery_features: Any,
    distractor_features: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    *,
    num_distractors: Sequence[int],
    seed: int = 0,
    metric: str = "euclidean",
    normalize: bool = False,
    ap: str = "step",
    block_size: int = DEFAULT_BLOCK_SIZE,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: bool = False,
) -> list[dict]:
    """Rank-1 and mAP as random distractors are added to the gallery (paper 002, Fig. 4).

    Paper 002 (Sec. 4.3): "We progressively add the distractors into the gallery set by random
    selection" (Market-1501's 500k distractor set). One random permutation of the distractors is
    drawn with ``seed`` and the first ``n`` are added for each ``n`` in ``num_distractors``, so the
    galleries are nested and the curve is monotone in expectation. Distractors get pid 0 (kept as
    negatives, never junk) and camera -1; a query with pid 0 is refused (the distractors would be
    its true matches).

    All sizes come from one streaming pass (:mod:`reid.metrics.streaming`): every distractor
    column is tagged with the smallest requested gallery that contains it, and the negatives below
    each true match are counted per tag. Nothing ``Q x G`` is held, so memory stays at the
    features plus one tile whatever the number of distractors (500,000 fit in 2 GB with
    Market's 3,368 queries at 256-d), and each number equals
    ``rank_metrics(pairwise_distance(q, [gallery; distractors[perm[:n]]]), ...)`` exactly.
    Returns one dict per requested size, in the given order: ``num_distractors``,
    ``gallery_size``, ``rank1``, ``mAP`` (``ap`` definition) and ``mINP``.
    """
    _check_options(1, ap)
    sizes = [int(n) for n in num_distractors]
    if not sizes:
        return []
    df = torch.as_tensor(distractor_features)
    if any(n < 0 or n > len(df) for n in sizes):
        raise ConfigError(f"num_distractors must lie in [0, {len(df)}], got {sizes}.")
    largest = max(sizes)
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(len(df))[:largest])
    segments, qp, qc, gp, gc = _features_and_labels(
        query_features, gallery_features, q_pids, g_pids, q_camids, g_camids,
        df if largest else None, metric, normalize, block_size, chunk_size, distractor_index=perm)
    # Level of a column = index of the smallest requested size that contains it.
    steps = np.unique(sizes)
    num_base = segments[0].num_cols
    levels = np.zeros(len(gp), np.int64)
    levels[num_base:] = np.searchsorted(steps, np.arange(largest), side="right")
    per_size = _stream_match_ranks(segments, qp, qc, gp, gc, levels, len(steps), progress=progress)
    out = []
    for n in sizes:
        res = per_size[int(np.searchsorted(steps, n))].metrics(max_rank=1, ap=ap)
        out.append({"num_distractors": n, "gallery_size": num_base + n,
                    "rank1": res.rank1, "mAP": res.mAP, "mINP": res.mINP})
    return out
