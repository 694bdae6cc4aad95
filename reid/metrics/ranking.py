"""Ranking metrics for re-identification: CMC, mAP (two AP definitions) and mINP.

The evaluation rule (Market-1501, Zheng et al. ICCV 2015, and every paper in this book that
evaluates on Market-1501 / DukeMTMC-reID / MSMT17 / CUHK03-767/700):

* for each query, gallery entries with the **same identity and the same camera** are removed
  before ranking (they are "junk": the same person seen from the same viewpoint is too easy), and
  so are gallery entries with identity **-1** (Market's junk detections);
* identity **0** (Market's distractors) stays in the gallery as ordinary negatives;
* a query with no remaining true match is skipped and does not count in ``num_valid``.

Two average-precision definitions are in use and give different numbers for the same ranking.
With ``m`` true matches at 0-based positions ``r_0 < r_1 < ... < r_{m-1}`` of the query's
filtered ranking, and ``P(k) = (number of true matches in the first k) / k``:

* ``ap="step"`` — non-interpolated AP, ``AP = (1/m) * sum_i (i+1)/(r_i+1)``: the mean of the
  precision at each true match. This is what scikit-learn's ``average_precision_score``, the
  common PyTorch re-ID toolkits (open-reid, torchreid, fast-reid, the BoT/AGW code of paper 004's
  generation) and their compiled evaluators report.
* ``ap="trapezoid"`` — the official Market-1501 MATLAB evaluation code (``compute_AP.m``), also
  ported verbatim into Zheng's ``Person_reID_baseline_pytorch``: at each recall step of size
  ``1/m`` the precision is averaged with the precision at the *previous position*,
  ``AP = (1/m) * sum_i ( P(r_i) + P(r_i + 1) ) / 2`` with ``P(r_i) = i / r_i`` (the precision
  just before the match) and ``P(0) := 1``. Since ``i / r_i <= (i+1) / (r_i+1)``, it is
  never larger than the step AP (each true match preceded by a false one loses half of the
  precision jump), and the two coincide for a perfect ranking.

Which paper used which. None of the five papers names its AP variant; our reading of what
they say about their evaluation code:

* paper 000 (Caffe; "its original evaluation protocol [23]") — the official Market code, trapezoid;
* paper 001 (Caffe; Market "multi-query evaluation settings in [6]") — official code, trapezoid;
* paper 002 (compares with, and re-ranks like, Zhong et al. [54], whose released evaluation is
  the official MATLAB code) — trapezoid;
* paper 003 (does not say; reports mAP on CUHK03 / Market / Duke) — unknown, we default to step;
* paper 004 (PyTorch, BoT-style pipeline, repeated 10 times) — the toolkits' step AP.

The difference is small for strong models (true matches near the top) and large for weak ones;
the book reports both.

mINP (Ye et al., TPAMI 2021) is the mean over valid queries of ``m / (r_{m-1} + 1)``, the
precision at the position of the hardest true match (1 when all true matches lead the ranking).
It does not depend on the AP definition.

**Ties.** Equal distances are broken *pessimistically*: a false match at the same distance as a
true match is ranked before it (``r_i = i + #{valid false matches with distance <= d_i}``).
The metrics therefore never depend on the input order of the gallery or the queries, even when
distances tie, and a degenerate model (all distances equal) scores the minimum, not a lucky
order. For distinct distances this is the usual ranking.

**Fast path.** Only the rank of each true match is needed, never the full permutation, so no
``argsort`` (which costs ~2-4 s at Market size because it moves 8-byte indices around). For each
block of 32 queries we copy the rows, set every same-identity entry (true matches and
same-camera junk, found through a gallery index grouped by identity rather than a ``Q x G``
mask) to ``+inf``, sort the *values* in place (NumPy's SIMD sort, several times faster than
``torch.sort`` on CPU; two threads, the sort releases the GIL) and binary-search the sorted
true-match distances into the sorted false matches: ``r_i = i + searchsorted(negatives, d_i,
side="right")``. The block stays in cache and nothing ``Q x G`` is allocated besides the input.
``rank_metrics_reference`` is the straightforward per-query ``argsort`` loop used to cross-check
it (tests and ``benchmarks/bench_metrics.py``).
"""

from __future__ import annotations

import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from reid.errors import ConfigError
from reid.metrics.validation import as_array, as_labels, check_distances, nan_distance_error

__all__ = ["AP_DEFINITIONS", "RankMetrics", "rank_metrics", "rank_metrics_reference", "average_precision"]

#: Accepted values of ``ap=``.
AP_DEFINITIONS = ("step", "trapezoid")

JUNK_PID = -1  # Market-1501: gallery images that are neither a match nor a mismatch
DISTRACTOR_PID = 0  # Market-1501: distractors, kept as ordinary negatives


@dataclass(frozen=True)
class RankMetrics:
    """Result of :func:`rank_metrics`.

    ``cmc[r]`` is the fraction of valid queries whose first true match is at rank ``<= r + 1``
    (so ``cmc[0]`` is rank-1). ``mAP``/``mINP`` are means over valid queries, in ``[0, 1]``.
    Per-query arrays have one entry per input query: ``ap`` and ``inp`` are NaN and
    ``first_match`` is -1 for queries without a true match (``valid`` False).
    """

    cmc: np.ndarray
    mAP: float
    mINP: float
    num_valid: int
    ap_definition: str = "step"
    ap: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    inp: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    first_match: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    num_matches: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    valid: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]

    @property
    def rank1(self) -> float:
        return float(self.cmc[0]) if len(self.cmc) else float("nan")

    def rank(self, r: int) -> float:
        """CMC at rank ``r`` (1-based)."""
        return float(self.cmc[r - 1])

    def as_dict(self, ranks: tuple[int, ...] = (1, 5, 10, 20), percent: bool = True) -> dict:
        """Rounded summary for logs and ``results.json``."""
        scale = 100.0 if percent else 1.0
        out = {f"rank{r}": round(scale * self.rank(r), 4) for r in ranks if r <= len(self.cmc)}
        out["mAP"] = round(scale * self.mAP, 4)
        out["mINP"] = round(scale * self.mINP, 4)
        out["num_valid"] = int(self.num_valid)
        out["ap"] = self.ap_definition
        return out

    def __str__(self) -> str:
        ranks = ", ".join(
            f"R{r}={100 * self.rank(r):.2f}" for r in (1, 5, 10, 20) if r <= len(self.cmc)
        )
        return (
            f"mAP={100 * self.mAP:.2f} ({self.ap_definition}) mINP={100 * self.mINP:.2f} "
            f"{ranks} [{self.num_valid} valid queries]"
        )


# --------------------------------------------------------------------------------------- inputs
def _as_distance_tensor(dist: Any) -> torch.Tensor:
    """A torch view of ``dist`` without copying (read-only NumPy arrays are shared too: we only
    read from them)."""
    if isinstance(dist, torch.Tensor):
        return dist.detach()
    arr = np.asarray(dist)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "The given NumPy array is not writable"
        return torch.from_numpy(arr)


def _check_labels(dist_shape, q_pids, g_pids, q_camids, g_camids):
    q_pids, g_pids = as_labels(q_pids, "q_pids"), as_labels(g_pids, "g_pids")
    q_camids, g_camids = as_labels(q_camids, "q_camids"), as_labels(g_camids, "g_camids")
    nq, ng = dist_shape
    if len(q_pids) != nq or len(q_camids) != nq:
        raise ConfigError(
            f"dist has {nq} rows (queries) but q_pids has {len(q_pids)} and q_camids "
            f"{len(q_camids)} entries; pass one pid and one camera id per query row."
        )
    if len(g_pids) != ng or len(g_camids) != ng:
        raise ConfigError(
            f"dist has {ng} columns (gallery) but g_pids has {len(g_pids)} and g_camids "
            f"{len(g_camids)} entries; pass one pid and one camera id per gallery column "
            "(is the distance matrix transposed?)."
        )
    return q_pids, g_pids, q_camids, g_camids


def _check_options(max_rank: int, ap: str) -> None:
    if ap not in AP_DEFINITIONS:
        raise ConfigError(f"unknown AP definition ap={ap!r}; use 'step' or 'trapezoid'.")
    if not isinstance(max_rank, (int, np.integer)) or max_rank < 1:
        raise ConfigError(f"max_rank must be a positive integer, got {max_rank!r}.")


def _check_common(dist: Any, max_rank: int, ap: str):
    _check_options(max_rank, ap)
    shape = tuple(dist.shape) if hasattr(dist, "shape") else np.shape(dist)
    if len(shape) != 2:
        raise ConfigError(
            f"dist must be a 2-D (num_query, num_gallery) matrix, got shape {shape}; compute it with "
            "reid.metrics.pairwise_distance(query_features, gallery_features)."
        )
    return shape


# ------------------------------------------------------------------------------ shared summary
def _summarise(
    ranks: np.ndarray, counts: np.ndarray, num_queries: int, valid_rows: np.ndarray,
    max_rank: int, ap: str,
) -> RankMetrics:
    """Metrics from the 0-based filtered ranks of every true match.

    ``ranks`` is ``(V, M)`` (V valid queries, padded with anything beyond ``counts``), sorted
    ascending per row; ``counts`` the number ``m`` of true matches per valid query.
    """
    num_valid = len(valid_rows)
    ap_all = np.full(num_queries, np.nan)
    inp_all = np.full(num_queries, np.nan)
    first_all = np.full(num_queries, -1, dtype=np.int64)
    counts_all = np.zeros(num_queries, dtype=np.int64)
    valid = np.zeros(num_queries, dtype=bool)
    if num_valid == 0:
        warnings.warn(
            "rank_metrics: no query has a true match in the gallery after the Market-1501 rule "
            "(same pid + same camera and pid -1 removed); all metrics are reported as 0 with "
            "num_valid=0. Check that query and gallery share identities and camera ids.",
            RuntimeWarning,
            stacklevel=3,
        )
        return RankMetrics(
            np.zeros(max_rank), 0.0, 0.0, 0, ap, ap_all, inp_all, first_all, counts_all, valid
        )
    m = counts.astype(np.float64)
    i = np.arange(ranks.shape[1], dtype=np.float64)[None, :]
    present = i < m[:, None]
    r = ranks.astype(np.float64)
    precision_at_match = (i + 1.0) / (r + 1.0)  # P(r_i + 1)
    if ap == "step":
        terms = precision_at_match
    else:
        # Official Market code: average with the precision one position earlier, P(r_i) = i / r_i,
        # and P(0) = 1 (the code starts from old_precision = 1).
        before = np.divide(i, r, out=np.ones_like(r), where=r > 0)
        terms = 0.5 * (before + precision_at_match)
    ap_q = np.where(present, terms, 0.0).sum(1) / m
    last = ranks[np.arange(num_valid), counts - 1].astype(np.float64)
    inp_q = m / (last + 1.0)
    first = ranks[:, 0].astype(np.int64)
    cmc = np.cumsum(np.bincount(np.minimum(first, max_rank), minlength=max_rank + 1)[:max_rank])
    cmc = cmc / num_valid

    ap_all[valid_rows] = ap_q
    inp_all[valid_rows] = inp_q
    first_all[valid_rows] = first
    counts_all[valid_rows] = counts
    valid[valid_rows] = True
    return RankMetrics(
        cmc=cmc.astype(np.float64),
        mAP=float(ap_q.mean()),
        mINP=float(inp_q.mean()),
        num_valid=num_valid,
        ap_definition=ap,
        ap=ap_all,
        inp=inp_all,
        first_match=first_all,
        num_matches=counts_all,
        valid=valid,
    )


def same_identity_slots(q_pids: np.ndarray, q_camids: np.ndarray, g_pids: np.ndarray,
                        g_camids: np.ndarray):
    """For each query, the gallery columns that share its identity, without a ``Q x G`` mask.

    Returns ``(cols, present, is_match, size)``: ``cols[q, s]`` is the s-th gallery column with
    pid ``q_pids[q]`` (valid where ``present[q, s]``), ``is_match`` marks those from another
    camera (true matches under the Market rule; the others are same-camera junk) and ``size[q]``
    the number of such columns. Costs one sort of the gallery pids.
    """
    nq = len(q_pids)
    order = np.argsort(g_pids, kind="stable")
    uniq, starts, sizes = np.unique(g_pids[order], return_index=True, return_counts=True)
    # Sentinel group (size 0) for query pids absent from the gallery.
    uniq = np.append(uniq, np.iinfo(np.int64).max)
    starts, sizes = np.append(starts, 0), np.append(sizes, 0)
    group = np.searchsorted(uniq, q_pids)
    group = np.where(uniq[np.minimum(group, len(uniq) - 1)] == q_pids, group, len(uniq) - 1)
    size = sizes[group]
    width = int(size.max()) if nq else 0
    slot = np.arange(width)[None, :]
    present = slot < size[:, None]
    cols = (order[np.where(present, starts[group][:, None] + slot, 0)] if len(g_pids)
            else np.zeros((nq, width), np.int64))
    is_match = present & (g_camids[cols] != q_camids[:, None]) if len(g_pids) else present
    return cols, present, is_match, size


# ----------------------------------------------------------------------------------- fast path
def _sort_rows_inplace(block: torch.Tensor) -> torch.Tensor:
    if block.device.type == "cpu":
        # NumPy's SIMD sort (x86-simd-sort) is several times faster than torch.sort on CPU, and it
        # works in place on the shared buffer, releasing the GIL so two threads can sort at once.
        block.numpy().sort(axis=1)
        return block
    return torch.sort(block, dim=1).values


def rank_metrics(
    dist: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    *,
    max_rank: int = 50,
    ap: str = "step",
    block_size: int = 32,
    num_threads: int | None = None,
) -> RankMetrics:
    """CMC, mAP and mINP of a query x gallery distance matrix (smaller is closer).

    Applies the Market-1501 rule described in the module docstring (same pid + same camera and
    pid -1 removed per query, pid 0 kept, queries without a true match skipped), breaks ties
    pessimistically, and uses ``ap="step"`` (scikit-learn / PyTorch toolkits) or
    ``ap="trapezoid"`` (official Market-1501 code). Inputs may be NumPy arrays or torch tensors
    (CPU or CUDA). Give all queries the same camera id as no gallery entry (e.g. probe camera 0,
    gallery camera 1) to switch the same-camera rule off, as the two-view protocols do.

    Cost: one copy and one in-place sort per block of ``block_size`` rows, no ``Q x G``
    temporaries; ~0.2-0.4 s for a Market-1501-sized matrix on two CPU cores.
    """
    shape = _check_common(dist, max_rank, ap)
    q_pids, g_pids, q_camids, g_camids = _check_labels(shape, q_pids, g_pids, q_camids, g_camids)
    nq, _ = shape

    d = _as_distance_tensor(dist)
    if not d.is_floating_point() or d.dtype in (torch.float16, torch.bfloat16):
        d = d.float()

    # Gallery columns that take part at all (pid -1 is junk for every query).
    keep = np.flatnonzero(g_pids != JUNK_PID)
    kg_pids, kg_cams = g_pids[keep], g_camids[keep]
    num_kept = len(keep)

    same_cols, in_group, is_match, group_size = same_identity_slots(q_pids, q_camids, kg_pids, kg_cams)
    counts = is_match.sum(1)
    valid_rows = np.flatnonzero(counts > 0)
    if len(valid_rows) == 0:
        return _summarise(np.zeros((0, 1), np.int64), counts[:0], nq, valid_rows, max_rank, ap)

    keep_t = torch.from_numpy(keep).to(d.device)
    full_gallery = num_kept == shape[1]
    # Distances of the true matches, sorted ascending per query (+inf padding sorts last).
    rows_t = torch.from_numpy(valid_rows).to(d.device)
    cols_t = torch.from_numpy(keep[same_cols[valid_rows]]).to(d.device)
    match_d = d[rows_t[:, None], cols_t]
    match_d = match_d.masked_fill(torch.from_numpy(~is_match[valid_rows]).to(d.device), math.inf)
    match_d = torch.sort(match_d, dim=1).values
    if torch.isnan(match_d).any():
        raise nan_distance_error()
    match_w = int(counts.max())
    match_d = match_d[:, :match_w].contiguous()
    # Number of valid false matches per query (same-pid columns of any camera are not negatives).
    num_negatives = torch.from_numpy(num_kept - group_size[valid_rows]).to(d.device)

    same_cols_v = torch.from_numpy(same_cols[valid_rows]).to(d.device)
    in_group_v = torch.from_numpy(in_group[valid_rows]).to(d.device)
    below = torch.empty(match_d.shape, dtype=torch.int64, device=d.device)

    def run_block(start: int) -> None:
        stop = min(start + block_size, len(valid_rows))
        rows = rows_t[start:stop]
        block = d[rows] if full_gallery else d[rows][:, keep_t]  # a fresh copy we may overwrite
        # Same-identity columns (true matches and same-camera junk) are not negatives.
        r_idx = torch.arange(stop - start, device=d.device)[:, None].expand_as(same_cols_v[start:stop])
        sel = in_group_v[start:stop]
        block[r_idx[sel], same_cols_v[start:stop][sel]] = math.inf
        block = _sort_rows_inplace(block)
        if torch.isnan(block[:, -1]).any():  # NaN sorts last, after the +inf we wrote
            raise nan_distance_error()
        # Pessimistic ties: count false matches with distance <= the true match's distance.
        cnt = torch.searchsorted(block, match_d[start:stop].to(block.dtype), right=True)
        below[start:stop] = torch.minimum(cnt, num_negatives[start:stop, None])

    starts_list = range(0, len(valid_rows), block_size)
    threads = num_threads or min(torch.get_num_threads(), os.cpu_count() or 1)
    if d.device.type == "cpu" and threads > 1 and len(valid_rows) > block_size:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(run_block, starts_list))
    else:
        for s in starts_list:
            run_block(s)

    ranks = (below + torch.arange(match_w, device=d.device)[None, :]).cpu().numpy()
    return _summarise(ranks, counts[valid_rows], nq, valid_rows, max_rank, ap)


# ------------------------------------------------------------------------------ reference path
def average_precision(ranks_of_matches: np.ndarray, ap: str = "step") -> float:
    """AP of one query from the 0-based positions of its true matches in the filtered ranking.

    A readable statement of the two definitions (used by the reference path and the book):
    ``step``: mean over matches of ``(i+1)/(r_i+1)``; ``trapezoid``: mean over matches of
    ``(i/r_i + (i+1)/(r_i+1)) / 2`` with ``i/r_i := 1`` when ``r_i = 0``.
    """
    if ap not in AP_DEFINITIONS:
        raise ConfigError(f"unknown AP definition ap={ap!r}; use 'step' or 'trapezoid'.")
    r = np.sort(np.asarray(ranks_of_matches, dtype=np.float64))
    if len(r) == 0:
        raise ConfigError("average_precision needs at least one true match.")
    i = np.arange(len(r), dtype=np.float64)
    precision = (i + 1) / (r + 1)
    if ap == "step":
        return float(precision.mean())
    before = np.divide(i, r, out=np.ones_like(r), where=r > 0)
    return float((0.5 * (before + precision)).mean())


def rank_metrics_reference(
    dist: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    *,
    max_rank: int = 50,
    ap: str = "step",
) -> RankMetrics:
    """Straightforward per-query version of :func:`rank_metrics` (same rule, same ties).

    Sorts each query's whole filtered row with a stable ``argsort`` after ordering entries by
    ``(distance, is_true_match)`` — false matches first among equal distances — exactly like the
    toolkits' loop. Seconds instead of a fraction of a second at Market size; kept as the oracle
    for tests and the benchmark.
    """
    shape = _check_common(dist, max_rank, ap)
    q_pids, g_pids, q_camids, g_camids = _check_labels(shape, q_pids, g_pids, q_camids, g_camids)
    d = as_array(dist, np.float64)
    check_distances(d)
    nq = shape[0]
    all_ranks, counts, valid_rows = [], [], []
    for q in range(nq):
        keep = (g_pids != JUNK_PID) & ~((g_pids == q_pids[q]) & (g_camids == q_camids[q]))
        row = d[q, keep]
        match = g_pids[keep] == q_pids[q]
        if not match.any():
            continue
        order = np.lexsort((match, row))  # primary key: distance; ties: false matches first
        positions = np.flatnonzero(match[order])
        all_ranks.append(positions)
        counts.append(len(positions))
        valid_rows.append(q)
    if not valid_rows:
        return _summarise(np.zeros((0, 1), np.int64), np.zeros(0, np.int64), nq,
                          np.zeros(0, np.int64), max_rank, ap)
    width = max(counts)
    ranks = np.zeros((len(counts), width), dtype=np.int64)
    for k, p in enumerate(all_ranks):
        ranks[k, : len(p)] = p
    return _summarise(ranks, np.asarray(counts), nq, np.asarray(valid_rows), max_rank, ap)
