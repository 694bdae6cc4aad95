"""Exact ranking metrics from features, without the ``Q x G`` distance matrix.

:func:`reid.metrics.rank_metrics` needs the whole query x gallery distance matrix. With
Market-1501's 3,368 queries and its 500,000 extra distractors (paper 002, Fig. 4) that matrix is
3,368 x 515,913 floats, 7 GB, and sorting its rows costs more still. But CMC, both AP definitions
and mINP depend only on the 0-based filtered rank of every true match, and with the library's
pessimistic tie rule (``reid.metrics.ranking``)

    r_i = i + #{valid negatives n : d(q, n) <= t_i},   t_0 <= t_1 <= ... the true-match distances,

so for each query we only need, for each of its ``m`` true matches, *how many* valid negatives
(not junk: neither pid -1 nor the query's own identity, in any camera) lie at or below its
distance. :func:`match_ranks_features` computes these counts by streaming over tiles of the
distance matrix (:class:`reid.metrics.distance.DistanceTiles`), one row block of queries x one
chunk of gallery columns at a time, in two passes per row block:

1. the distances of the true matches, gathered from the tiles that contain them (for a run's
   gallery plus appended distractors, only the run's own gallery chunks), sorted per query;
2. every tile: entries at or below the query's largest true-match distance are the only ones
   that can count; they are picked out with one comparison, the junk and same-identity columns
   among them dropped, and each is binned by how many of the query's true-match distances lie
   strictly below it (a single ``searchsorted`` on integer keys: row index in the high bits, the
   float's bit pattern, which orders non-negative floats, in the low ones). A cumulative sum over
   the bins gives the counts above.

Memory is the features, one tile (``block_size x chunk_size`` floats, 110 MB for 3,368 x 8,192)
and a few arrays of ``Q x max_matches``: flat in the gallery size. The summary is
:func:`reid.metrics.ranking._summarise`, the dense path's own, so the result *is* a
:class:`~reid.metrics.RankMetrics` with the same CMC, step and trapezoid AP and mINP.

**Exactness.** Every distance is computed by the code that computes the dense matrix
(:func:`reid.metrics.distance._distance_block`) on the same operands in the same row blocks, and
all comparisons are between those values, so the result equals
``rank_metrics(pairwise_distance(query, gallery, metric, normalize=normalize), ...)`` exactly
whenever the tiles equal the dense matrix: always when the gallery fits one chunk (the tile *is*
the dense call), and for chunked galleries whenever the BLAS computes each element independently of
the tile's shape, which :class:`~reid.metrics.distance.DistanceTiles` arranges by never cutting a
tile below 4 x 16 (``tests/test_metrics_distance.py`` checks it bit for bit on the installed BLAS,
and ``tests/test_metrics_streaming.py`` checks the metrics against the dense path, ties included).
On a GPU the tiles run on the features' device too, but cuBLAS picks kernels by shape, so there
the streamed and dense numbers may differ in the last bit (and so in the order of near-ties).

**Distractors.** ``distractor_features`` are appended to the gallery without copying it, labelled
pid 0 (:data:`~reid.metrics.ranking.DISTRACTOR_PID`, kept as negatives) and camera
:data:`DISTRACTOR_CAMID` (-1): the convention of :func:`reid.metrics.analysis.gallery_size_curve`,
which runs nested galleries (the first ``n`` of a random permutation of the distractors, for
several ``n``) through the same machinery in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from reid.errors import ConfigError
from reid.metrics.distance import DEFAULT_BLOCK_SIZE, DistanceTiles
from reid.metrics.ranking import (
    DISTRACTOR_PID,
    JUNK_PID,
    RankMetrics,
    _check_options,
    _summarise,
    same_identity_slots,
)
from reid.metrics.validation import as_labels, nan_distance_error

__all__ = ["DISTRACTOR_CAMID", "MatchRanks", "match_ranks_features", "rank_metrics_features"]

#: Camera id given to appended distractors (no query camera has it, so none is junk).
DISTRACTOR_CAMID = -1

#: Default number of gallery columns per tile.
DEFAULT_CHUNK_SIZE = 8192

# Integer type with the width of each float type: the bit patterns of non-negative floats, read as
# integers, are ordered like the floats.
_SAME_WIDTH_INT = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}


@dataclass(frozen=True)
class MatchRanks:
    """The 0-based filtered rank of every true match of every valid query (all the metrics need).

    ``ranks[v, :counts[v]]`` are the ascending ranks of valid query ``valid_rows[v]``'s true
    matches (entries beyond ``counts[v]`` are padding). :meth:`metrics` turns them into a
    :class:`~reid.metrics.RankMetrics` for either AP definition without touching the features
    again.
    """

    ranks: np.ndarray
    counts: np.ndarray
    valid_rows: np.ndarray
    num_queries: int
    num_gallery: int

    def metrics(self, *, max_rank: int = 50, ap: str = "step") -> RankMetrics:
        _check_options(max_rank, ap)
        return _summarise(self.ranks, self.counts, self.num_queries, self.valid_rows, max_rank, ap)


def _progress(total: int, enabled: bool, desc: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="tile")


def _flatnonzero(mask: torch.Tensor) -> torch.Tensor:
    """Flat indices of the True entries (NumPy's is ~3x faster than torch's on the CPU)."""
    if mask.device.type == "cpu":
        return torch.from_numpy(np.flatnonzero(mask.numpy()))
    return mask.view(-1).nonzero().squeeze(1)


class _Binner:
    """Bins values by how many of their row's sorted thresholds lie strictly below them.

    For 16/32-bit floats: one ``searchsorted`` on int64 keys, ``row << 32 | bits(value)`` (the bit
    patterns of non-negative floats are ordered like the floats; -0.0 is mapped to +0.0). The
    returned bin is already the flat index ``row * width + bin`` into a ``rows x width`` table.
    Other dtypes (float64) compare each value with its row's thresholds.
    """

    def __init__(self, thresholds: torch.Tensor):
        self.thr = thresholds  # (rows, width), ascending per row, +inf padded
        self.width = thresholds.shape[1]
        self.int_type = _SAME_WIDTH_INT.get(thresholds.dtype)
        if self.int_type is not None:
            rows = torch.arange(len(thresholds), device=thresholds.device)[:, None]
            self.keys = ((rows << 32) | self._bits(thresholds)).reshape(-1)

    def _bits(self, values: torch.Tensor) -> torch.Tensor:
        return values.contiguous().view(self.int_type).to(torch.int64).clamp_(min=0)

    def __call__(self, rows: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        if self.int_type is not None:
            return torch.searchsorted(self.keys, (rows << 32) | self._bits(values))
        step = 1 << 16
        below = [(self.thr[rows[i : i + step]] < values[i : i + step, None]).sum(1)
                 for i in range(0, len(rows), step)]
        return rows * self.width + (torch.cat(below) if below else rows)


def _gather_from_tiles(segments, offsets, block, pair_q, pair_col, pair_seg, selected) -> torch.Tensor:
    """Distances of the ``selected`` (query row, global column) pairs of one row block, read from
    the very tiles the counting pass computes (so the values are the same numbers)."""
    seg0 = segments[0]
    values = torch.empty(len(pair_q), dtype=seg0.dtype, device=seg0.device)
    for s, seg in enumerate(segments):
        sel = np.flatnonzero(selected & (pair_seg == s))
        if len(sel) == 0:
            continue
        local = pair_col[sel] - offsets[s]
        chunks = seg.chunks(block)
        which = np.searchsorted([c[0] for c in chunks], local, side="right") - 1
        for k in np.unique(which):
            part = which == k
            tile = seg.tile(block, chunks[k])
            rows = torch.from_numpy(pair_q[sel[part]] - block[0]).to(seg.device)
            cols = torch.from_numpy(local[part] - chunks[k][0]).to(seg.device)
            values[torch.from_numpy(sel[part]).to(seg.device)] = tile[rows, cols]
            del tile
    return values


def _stream_match_ranks(
    segments: Sequence[DistanceTiles],
    q_pids: np.ndarray,
    q_camids: np.ndarray,
    g_pids: np.ndarray,
    g_camids: np.ndarray,
    levels: np.ndarray | None = None,
    num_levels: int = 1,
    progress: bool = False,
) -> list[MatchRanks]:
    """Core of the module: :class:`MatchRanks` of the gallery made of ``segments`` side by side.

    ``g_pids``/``g_camids`` label the concatenated columns. With ``levels`` (one int per column in
    ``[0, num_levels)``) the result is one :class:`MatchRanks` per level ``l``, for the gallery of
    the columns with level ``<= l`` (nested galleries); same-identity columns must then all be at
    level 0.

    Per row block: pass 1 gathers, from the tiles holding them, the distances of every
    same-identity column (true matches, and the same-camera junk); pass 2 sets the pid -1 columns
    of each tile to +inf and bins *every* entry at or below the row's largest true-match distance
    by the number of true-match distances strictly below it. The same-identity entries binned
    that way are then taken out again using their pass-1 values (the same numbers), which leaves
    exactly the valid negatives without a per-entry identity test.
    """
    nq = len(q_pids)
    device = segments[0].device
    offsets = np.cumsum([0] + [s.num_cols for s in segments])
    num_gallery = int(offsets[-1])

    # Same-identity columns of each query (true matches + same-camera junk), pid -1 left out.
    keep = np.flatnonzero(g_pids != JUNK_PID)
    slot_cols, present, is_match, _ = same_identity_slots(q_pids, q_camids, g_pids[keep], g_camids[keep])
    slot_cols = keep[slot_cols] if len(keep) else slot_cols
    if levels is not None and present.any() and levels[slot_cols[present]].max() > 0:
        bad = np.unique(q_pids[(np.where(present, levels[slot_cols], 0) > 0).any(1)])
        raise ConfigError(
            f"query pid(s) {bad[:5].tolist()} also label the added gallery items (distractors get pid "
            f"{DISTRACTOR_PID}), which would make them true matches; give those queries other pids "
            "or leave them out.")
    counts = is_match.sum(1)
    valid_rows = np.flatnonzero(counts > 0)
    num_valid = len(valid_rows)

    def result(ranks: np.ndarray) -> list[MatchRanks]:
        return [MatchRanks(ranks[..., lvl], counts[valid_rows], valid_rows, nq, num_gallery)
                for lvl in range(num_levels)]

    if num_valid == 0:
        return result(np.zeros((0, 1, num_levels), np.int64))
    width = int(counts.max())
    # Every same-identity (query, column) pair of the valid queries: whether it is a true match,
    # and if so its slot among the query's matches.
    pair_v, pair_s = np.nonzero(present[valid_rows])
    pair_q = valid_rows[pair_v]
    pair_col = slot_cols[valid_rows][pair_v, pair_s]
    pair_is_match = is_match[valid_rows][pair_v, pair_s]
    pair_pos = (np.cumsum(is_match[valid_rows], 1) - 1)[pair_v, pair_s]
    pair_seg = np.searchsorted(offsets, pair_col, side="right") - 1
    junk_cols = [torch.from_numpy(np.flatnonzero(g_pids[offsets[s]:offsets[s + 1]] == JUNK_PID)).to(device)
                 for s in range(len(segments))]
    num_junk = int((g_pids == JUNK_PID).sum())
    t_levels = None if levels is None else torch.from_numpy(levels.astype(np.int64)).to(device)
    dtype = segments[0].dtype
    below = np.zeros((num_valid, width, num_levels), np.int64)

    blocks = segments[0].row_blocks()
    bar = _progress(sum(len(seg.chunks(b)) for b in blocks for seg in segments), progress, "rank metrics")
    for block in blocks:
        r0, r1 = block
        # Pass 1: the same-identity distances of this block's queries, from the tiles holding them.
        in_block = (pair_q >= r0) & (pair_q < r1)
        pair_val = _gather_from_tiles(segments, offsets, block, pair_q, pair_col, pair_seg, in_block)
        blk = np.flatnonzero(in_block)
        if len(blk) == 0:  # no valid query in this block
            if bar is not None:
                bar.update(sum(len(seg.chunks(block)) for seg in segments))
            continue
        # Thresholds t_0 <= t_1 <= ... per row of the block (+inf padding; rows without a true
        # match keep only padding and a largest threshold of -inf, so nothing of theirs is binned).
        m_rows = torch.from_numpy(pair_q[blk] - r0).to(device)
        is_m = torch.from_numpy(pair_is_match[blk]).to(device)
        thr = torch.full((r1 - r0, width), torch.inf, dtype=dtype, device=device)
        thr[m_rows[is_m], torch.from_numpy(pair_pos[blk]).to(device)[is_m]] = pair_val[torch.from_numpy(blk).to(device)][is_m]
        thr = torch.sort(thr, dim=1).values
        if torch.isnan(thr).any():
            raise nan_distance_error("the distance between a query and a true match")
        row_counts = torch.from_numpy(np.bincount(pair_q[blk][pair_is_match[blk]] - r0, minlength=r1 - r0)).to(device)
        t_max = thr.gather(1, (row_counts - 1).clamp(min=0)[:, None])
        t_max[row_counts == 0] = -torch.inf
        binner = _Binner(thr)
        hist = torch.zeros((r1 - r0) * width * num_levels, dtype=torch.int64, device=device)

        # Pass 2: bin every non-junk entry at or below the row's largest true-match distance.
        for s, seg in enumerate(segments):
            for c0, c1 in seg.chunks(block):
                tile = seg.tile(block, (c0, c1))
                junk = junk_cols[s][(junk_cols[s] >= c0) & (junk_cols[s] < c1)] - c0
                if len(junk):
                    tile.index_fill_(1, junk, torch.inf)
                # Not `tile <= t_max`: NaN must come out as a candidate, to be noticed.
                flat = _flatnonzero(torch.gt(tile, t_max).logical_not_())
                if bar is not None:
                    bar.update(1)
                if flat.numel():
                    flat = flat.to(device)
                    vals = tile.view(-1)[flat]
                    if torch.isnan(vals).any():
                        raise nan_distance_error()
                    rows = flat // (c1 - c0)
                    slot = binner(rows, vals)
                    if t_levels is not None:
                        slot = slot * num_levels + t_levels[flat - rows * (c1 - c0) + int(offsets[s] + c0)]
                    hist += torch.bincount(slot, minlength=len(hist))
                del tile
        # Take the same-identity entries out again (they were binned like negatives) ...
        p_rows = torch.from_numpy(pair_q[blk] - r0).to(device)
        p_vals = pair_val[torch.from_numpy(blk).to(device)]
        binned = p_vals <= t_max[p_rows, 0]
        slot = binner(p_rows[binned], p_vals[binned]) * num_levels  # level 0, checked above
        hist -= torch.bincount(slot, minlength=len(hist))
        # ... and the junk columns set to +inf, binned only where a true match is at +inf too.
        at_inf = torch.isinf(t_max[:, 0]) & (t_max[:, 0] > 0)
        if num_junk and at_inf.any():
            inf_rows = at_inf.nonzero().squeeze(1)
            slot = binner(inf_rows, torch.full((len(inf_rows),), torch.inf, dtype=dtype, device=device))
            hist.index_add_(0, slot * num_levels, torch.full_like(slot, -num_junk))
        # negatives at or below t_i = sum of the bins 0..i (and of the levels 0..l)
        counts_blk = hist.view(r1 - r0, width, num_levels).cumsum(2).cumsum(1)
        rows_valid = torch.from_numpy(np.flatnonzero(counts[r0:r1] > 0)).to(device)
        below[np.searchsorted(valid_rows, r0) : np.searchsorted(valid_rows, r1)] = counts_blk[rows_valid].cpu().numpy()
    if bar is not None:
        bar.close()
    return result(below + np.arange(width)[None, :, None])


def _features_and_labels(query_features, gallery_features, q_pids, g_pids, q_camids, g_camids,
                         distractor_features, metric, normalize, block_size, chunk_size,
                         distractor_index=None):
    """The segments (gallery, then distractors) and the labels of their concatenated columns."""
    gallery = DistanceTiles(query_features, gallery_features, metric, normalize=normalize,
                            block_size=block_size, chunk_size=chunk_size, x_name="query_features",
                            y_name="gallery_features")
    segments = [gallery]
    q_pids, q_camids = as_labels(q_pids, "q_pids"), as_labels(q_camids, "q_camids")
    g_pids, g_camids = as_labels(g_pids, "g_pids"), as_labels(g_camids, "g_camids")
    if len(q_pids) != gallery.num_rows or len(q_camids) != gallery.num_rows:
        raise ConfigError(
            f"query_features has {gallery.num_rows} rows but q_pids has {len(q_pids)} and q_camids "
            f"{len(q_camids)} entries; pass one pid and one camera id per query.")
    if len(g_pids) != gallery.num_cols or len(g_camids) != gallery.num_cols:
        raise ConfigError(
            f"gallery_features has {gallery.num_cols} rows but g_pids has {len(g_pids)} and g_camids "
            f"{len(g_camids)} entries; pass one pid and one camera id per gallery item.")
    if distractor_features is not None:
        extra = DistanceTiles(query_features, distractor_features, metric, normalize=normalize,
                              block_size=block_size, chunk_size=chunk_size, index=distractor_index,
                              x_name="query_features", y_name="distractor_features")
        if extra.dtype != gallery.dtype:
            raise ConfigError(
                f"gallery_features and distractor_features give {gallery.dtype} and {extra.dtype} "
                "distances; pass both in the same floating dtype.")
        segments.append(extra)
        g_pids = np.concatenate([g_pids, np.full(extra.num_cols, DISTRACTOR_PID)])
        g_camids = np.concatenate([g_camids, np.full(extra.num_cols, DISTRACTOR_CAMID)])
    return segments, q_pids, q_camids, g_pids, g_camids


@torch.no_grad()
def match_ranks_features(
    query_features: Any,
    gallery_features: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    *,
    metric: str = "euclidean",
    normalize: bool = False,
    distractor_features: Any | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: bool = False,
) -> MatchRanks:
    """The true-match ranks behind :func:`rank_metrics_features`; one pass gives every AP
    definition: ``r = match_ranks_features(...); r.metrics(ap="step"); r.metrics(ap="trapezoid")``.
    Arguments as for :func:`rank_metrics_features`."""
    segments, qp, qc, gp, gc = _features_and_labels(
        query_features, gallery_features, q_pids, g_pids, q_camids, g_camids, distractor_features,
        metric, normalize, block_size, chunk_size)
    return _stream_match_ranks(segments, qp, qc, gp, gc, progress=progress)[0]


def rank_metrics_features(
    query_features: Any,
    gallery_features: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    *,
    metric: str = "euclidean",
    normalize: bool = False,
    max_rank: int = 50,
    ap: str = "step",
    distractor_features: Any | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: bool = False,
) -> RankMetrics:
    """:func:`reid.metrics.rank_metrics` from features, without the ``Q x G`` distance matrix.

    Returns exactly ``rank_metrics(pairwise_distance(query_features, gallery_features, metric,
    normalize=normalize), q_pids, g_pids, q_camids, g_camids, max_rank=max_rank, ap=ap)``: the
    Market-1501 rule, pessimistic ties, ``ap="step"`` or ``"trapezoid"``, mINP (see the module
    docstring for how, and for the conditions of bit-exactness). ``metric`` is ``"euclidean"``,
    ``"sqeuclidean"`` or ``"cosine"``; ``normalize=True`` L2-normalises both sets first.

    ``distractor_features`` (optional) are appended to the gallery as pid 0, camera -1, without
    concatenating the feature matrices. Paper 002's Fig. 4 at Market scale is then, for a run's
    saved features ``f`` (``reid.study.run_features.load_run_features``) and ``N`` distractor
    features ``D``::

        rank_metrics_features(f["query"], f["gallery"], f["query_pids"], f["gallery_pids"],
                              f["query_camids"], f["gallery_camids"], metric=f["metric"],
                              normalize=f["normalize"], distractor_features=D[:N])

    and :func:`reid.metrics.analysis.gallery_size_curve` gives the whole curve in one pass.

    Cost: one pass of ``Q x G x dim`` multiply-adds (plus one over the chunks holding true
    matches) and a comparison per distance; memory: the features, one ``block_size x chunk_size``
    tile (110 MB for 3,368 queries and the default 8,192 columns) and ``Q x max_matches`` counts.
    ``benchmarks/bench_eval_scale.py`` measures 3,368 x 515,913 at 256-d. Features with NaN/inf
    and non-integral labels are rejected with a :class:`~reid.errors.ConfigError`.
    """
    _check_options(max_rank, ap)
    ranks = match_ranks_features(
        query_features, gallery_features, q_pids, g_pids, q_camids, g_camids, metric=metric,
        normalize=normalize, distractor_features=distractor_features, block_size=block_size,
        chunk_size=chunk_size, progress=progress)
    return ranks.metrics(max_rank=max_rank, ap=ap)
