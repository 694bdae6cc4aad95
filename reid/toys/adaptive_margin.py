"""Mechanism toys for paper 001 (large adaptive margin): the margins of Eq. 5, how they move in
training, and which pairs the anchor-based sampler can reach. Toys compute; the figures are in
:mod:`reid.viz.adaptive_margin`.

* :func:`margin_maps` — Fig. 3 (a) and (c) of the paper: the up-margin ``Mp`` as a function of the
  mean negative distance ``d̄`` for several µ, and the down-margin ``Mn`` as a function of the mean
  positive distance ``s̄`` for several γ. Computed by the library's
  :func:`reid.losses.adaptive_margin.adaptive_margins` (one anchor unit per grid point).
* :func:`simulate_pairs` — free feature vectors (the "network" is the identity map) trained by
  SGD on anchor-based pair batches (Sec. 5: anchors from view A, M positives and N negatives from
  view B) with :class:`~reid.losses.AdaptiveMarginLoss` or the fixed-margin
  :class:`~reid.losses.ContrastiveLoss`; records ``s̄, d̄, Mp, Mn, Mτ, Mc`` per step.
* :func:`sampler_coverage` — how much of a training set an
  :class:`~reid.data.samplers.AnchorPairSampler` actually uses over some epochs: the images that
  appear, and the cross-camera positive pairs that are drawn.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from reid.losses import AdaptiveMarginLoss, ContrastiveLoss
from reid.losses.adaptive_margin import adaptive_margins
from reid.metrics import pairwise_distance, rank_metrics

__all__ = ["margin_maps", "PairHistory", "simulate_pairs", "sampler_coverage"]


def margin_maps(values: np.ndarray, mus=(6.0, 8.0, 10.0), gammas=(1.8, 2.1, 2.5)) -> dict:
    """``Mp(d̄)`` for each µ and ``Mn(s̄)`` for each γ on the grid ``values`` (Eq. 5).

    Each grid point is one anchor unit holding one positive pair at distance ``v`` and one negative
    pair at distance ``v``, so that unit's ``s̄ = d̄ = v``; the library returns its margins.
    """
    v = torch.as_tensor(values, dtype=torch.float64)
    distance = v.repeat_interleave(2)
    y = torch.tensor([1.0, -1.0], dtype=torch.float64).repeat(len(v))
    units = torch.arange(len(v)).repeat_interleave(2)
    out = {"values": v.numpy(), "Mp": {}, "Mn": {}}
    for mu in mus:
        m, _ = adaptive_margins(distance, y, mu, gammas[0], units)
        out["Mp"][mu] = m["Mp"][::2].numpy()
    for gamma in gammas:
        m, _ = adaptive_margins(distance, y, mus[0], gamma, units)
        out["Mn"][gamma] = m["Mn"][::2].numpy()
    return out


@dataclass
class PairHistory:
    """Per-step records of :func:`simulate_pairs`."""

    loss: str
    records: list[dict] = field(default_factory=list)
    final: dict = field(default_factory=dict)


def _toy_views(num_ids: int, dim: int, spread: float, view_shift: float, seed: int):
    gen = torch.Generator().manual_seed(seed)
    identity = torch.randn(num_ids, dim, generator=gen, dtype=torch.float64)
    shift = torch.randn(dim, generator=gen, dtype=torch.float64)
    view_a = spread * identity + 0.3 * torch.randn(num_ids, dim, generator=gen, dtype=torch.float64)
    view_b = spread * identity + view_shift * shift + 0.3 * torch.randn(num_ids, dim, generator=gen, dtype=torch.float64)
    return view_a, view_b


def _view_rank1(a: torch.Tensor, b: torch.Tensor) -> float:
    """Rank-1 (%) of every view-A feature against the view-B gallery, via the library metrics."""
    ids = np.arange(len(a))
    res = rank_metrics(pairwise_distance(a, b), ids, ids, np.zeros_like(ids), np.ones_like(ids), max_rank=1)
    return 100.0 * float(res.rank1)


def simulate_pairs(
    loss: str = "adaptive",
    *,
    num_ids: int = 24,
    dim: int = 8,
    spread: float = 0.15,
    view_shift: float = 0.3,
    anchors: int = 8,
    positives: int = 1,
    negatives: int = 3,
    steps: int = 300,
    lr: float = 0.05,
    mu: float = 8.0,
    gamma: float = 2.1,
    margin: float = 0.5,
    seed: int = 0,
) -> PairHistory:
    """Train free view-A / view-B features of ``num_ids`` people with anchor-based pair batches.

    Every person has one feature per view (``spread`` scales the identity part, ``view_shift`` a
    shift shared by all view-B features). Each step draws ``anchors`` view-A anchors and, per
    anchor, ``positives`` copies of its view-B partner and ``negatives`` random other people's
    view-B features (Sec. 5, Algorithm 2); the loss is ``"adaptive"`` (:class:`AdaptiveMarginLoss`,
    batch-wide margins, µ, γ) or ``"contrastive"`` (:class:`ContrastiveLoss` with fixed ``margin``,
    the PCNN-C / RCNN-C baseline), summed over pairs; plain SGD with rate ``lr`` on the features.
    The records hold ``s̄``, ``d̄`` (measured on each batch) and, for the adaptive loss, the margins.
    """
    if loss not in ("adaptive", "contrastive"):
        raise ValueError(f"loss must be 'adaptive' or 'contrastive', got {loss!r}")
    gen = torch.Generator().manual_seed(seed + 1)
    a0, b0 = _toy_views(num_ids, dim, spread, view_shift, seed)
    a, b = a0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
    module = AdaptiveMarginLoss(mu, gamma, reduction="sum") if loss == "adaptive" else ContrastiveLoss(margin, reduction="sum")
    opt = torch.optim.SGD([a, b], lr=lr)
    hist = PairHistory(loss)
    per_anchor = positives + negatives
    for step in range(steps):
        anchor_ids = torch.randperm(num_ids, generator=gen)[:anchors]
        # negatives: a random *other* person for each slot (offset 1..num_ids-1 modulo num_ids)
        offsets = torch.randint(1, num_ids, (anchors, negatives), generator=gen)
        neg_ids = (anchor_ids[:, None] + offsets) % num_ids
        partner = torch.cat([anchor_ids[:, None].expand(anchors, positives), neg_ids], 1).reshape(-1)
        left = anchor_ids.repeat_interleave(per_anchor)
        same = left == partner
        opt.zero_grad()
        value = module(a[left], b[partner], same)
        value.backward()
        opt.step()
        with torch.no_grad():
            d = (a[left] - b[partner]).pow(2).sum(1)
            rec = {"step": step, "loss": float(value), "s_bar": float(d[same].mean()), "d_bar": float(d[~same].mean())}
        if loss == "adaptive":
            rec.update({k: module.last_margins[k] for k in ("Mp", "Mn", "Mtau", "Mc")})
            rec["active_fraction"] = module.last_stats["active_fraction"]
        hist.records.append(rec)
    with torch.no_grad():
        d_all = torch.cdist(a, b).pow(2)
        pos = d_all.diagonal()
        neg = d_all[~torch.eye(num_ids, dtype=torch.bool)]
        hist.final = {
            "rank1_before": _view_rank1(a0, b0),
            "rank1_after": _view_rank1(a.detach(), b.detach()),
            "mean_pos_D": float(pos.mean()),
            "mean_neg_D": float(neg.mean()),
            "min_neg_D": float(neg.min()),
            "max_pos_D": float(pos.max()),
        }
    return hist


def sampler_coverage(sampler, epochs: int = 1) -> dict:
    """What an :class:`~reid.data.samplers.AnchorPairSampler` uses in ``epochs`` epochs.

    Returns the fraction of training images that appear in any batch (``images_used``), and the
    fraction of the set's cross-camera positive pairs (unordered image pairs of one identity from
    two different cameras) drawn as an (anchor, positive) pair (``positive_pairs_drawn``), with
    the counts behind both. The sampler is iterated from epoch 0 and left at epoch ``epochs``.
    """
    pids, cams = sampler.pids, sampler.camids
    sampler.set_epoch(0)
    seen: set[int] = set()
    drawn: set[tuple[int, int]] = set()
    unit = 1 + sampler.m + sampler.n
    for _ in range(epochs):
        for batch in sampler:
            seen.update(batch)
            for row in np.asarray(batch).reshape(-1, unit):
                for partner in row[1 : 1 + sampler.m].tolist():
                    if cams[row[0]] != cams[partner]:
                        drawn.add((min(row[0], partner), max(row[0], partner)))
    total = 0
    for pid in np.unique(pids):
        per_cam = np.bincount(cams[pids == pid])
        total += (per_cam.sum() ** 2 - (per_cam**2).sum()) // 2  # pairs of images from two cameras
    return {
        "images_used": len(seen) / pids.size,
        "positive_pairs_drawn": len(drawn) / total if total else float("nan"),
        "images": (len(seen), int(pids.size)),
        "positive_pairs": (len(drawn), int(total)),
    }
