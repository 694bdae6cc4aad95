"""Mechanism toys for paper 002 (support neighbour loss): K-NN support sets and their forces in 2-D.

* :func:`toy_batch` — a P×Q batch of 2-D points (P identities, Q images each) with overlapping
  identities, the situation the support sets are meant for.
* :func:`anchor_forces` — one anchor's support set (``K_i`` split into ``P_i`` and ``N_i``) and the
  forces (negative gradients) of the separation and squeeze terms on every point, from autograd on
  the library's :class:`~reid.losses.SupportNeighborLoss`.
* :func:`simulate` — the points themselves trained by SGD with the SN loss (any λ, K, σ) or the
  batch-hard triplet loss; :func:`batch_statistics` measures spread, separation and leave-one-out
  retrieval within the batch.

The figures of these toys are drawn by :mod:`reid.viz.support_neighbor`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from reid.losses import BatchHardTripletLoss, SupportNeighborLoss
from reid.losses.support_neighbor import support_neighbors
from reid.losses.triplet import batch_distances
from reid.metrics import rank_metrics
from reid.toys.threads import single_thread

__all__ = ["toy_batch", "anchor_forces", "batch_statistics", "ToyRun", "simulate"]


def toy_batch(p: int = 4, q: int = 4, *, spread: float = 1.0, noise: float = 0.55, seed: int = 0):
    """``(x, labels)``: ``p`` identities on a circle of radius ``spread``, ``q`` noisy images each."""
    gen = torch.Generator().manual_seed(seed)
    angles = torch.arange(p, dtype=torch.float64) * (2 * np.pi / p)
    means = spread * torch.stack([angles.cos(), angles.sin()], 1)
    labels = torch.arange(p).repeat_interleave(q)
    x = means[labels] + noise * torch.randn(p * q, 2, generator=gen, dtype=torch.float64)
    return x, labels


def anchor_forces(x: torch.Tensor, labels: torch.Tensor, anchor: int, k: int, sigma: float, *, squared: bool = False) -> dict:
    """Support sets of ``anchor`` and the forces of the separation and squeeze terms on every point.

    The sets come from the library's :func:`~reid.losses.support_neighbor.support_neighbors`
    (the same selection the loss uses). The forces are the negative gradients of the *whole*
    batch loss (``reduction="sum"``, every sample an anchor), split into its separation part
    (λ = 0) and its squeeze part (the λ = 1 loss minus the λ = 0 loss): what each point feels in
    one training step. Returns ``index``, ``positive`` (the anchor's support columns),
    ``radius`` (its K-th neighbour distance), ``separation`` and ``squeeze`` (``(B, 2)`` forces).
    """
    dist = batch_distances(x.detach(), squared=squared)
    sets = support_neighbors(dist, labels, k)
    out = {"index": sets.index[anchor].numpy(), "positive": sets.positive[anchor].numpy(),
           "radius": float(dist[anchor, sets.index[anchor]].max())}
    grads = {}
    with single_thread():
        for lam in (0.0, 1.0):
            xx = x.detach().clone().requires_grad_(True)
            SupportNeighborLoss(k, sigma, lam, squared=squared, reduction="sum")(xx, labels).backward()
            grads[lam] = xx.grad
    out["separation"] = (-grads[0.0]).numpy()
    out["squeeze"] = (-(grads[1.0] - grads[0.0])).numpy()
    return out


def batch_statistics(x: torch.Tensor, labels: torch.Tensor) -> dict:
    """Mean intra-identity distance, mean distance to the nearest other identity, and 1-NN accuracy."""
    x = x.detach()
    d = torch.cdist(x, x)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool)
    intra = d[same & ~eye].mean()
    nearest_other = d.masked_fill(same, float("inf")).amin(1).mean()
    dd = d.clone()
    dd.fill_diagonal_(float("inf"))
    cams = np.arange(len(labels))  # every image its own camera: nothing is junk except itself
    res = rank_metrics(dd, labels.numpy(), labels.numpy(), cams, cams + len(labels), max_rank=1)
    return {"intra": float(intra), "nearest_other": float(nearest_other),
            "ratio": float(nearest_other / intra), "rank1": 100.0 * float(res.rank1), "mAP": 100.0 * float(res.mAP)}


@dataclass
class ToyRun:
    """Start and end positions of a toy run, with :func:`batch_statistics` (and the loss's
    ``last_stats``) after every step."""

    name: str
    start: np.ndarray
    end: np.ndarray
    stats: list[dict] = field(default_factory=list)


def simulate(x: torch.Tensor, labels: torch.Tensor, loss: str = "sn", *, k: int = 5, sigma: float = 4.0, lam: float = 0.1,
             margin: float = 0.5, steps: int = 60, lr: float = 0.05, squared: bool = False, name: str | None = None) -> ToyRun:
    """SGD on the points with the SN loss (``loss="sn"``) or batch-hard triplet (``"batch_hard"``)."""
    xx = x.detach().clone().requires_grad_(True)
    module = (SupportNeighborLoss(k, sigma, lam, squared=squared, reduction="mean") if loss == "sn"
              else BatchHardTripletLoss(margin, squared=squared, reduction="mean"))
    opt = torch.optim.SGD([xx], lr=lr)
    run = ToyRun(name or loss, x.detach().numpy().copy(), x.detach().numpy().copy())
    with single_thread():
        run.stats.append({"step": 0, **batch_statistics(xx, labels)})
        for step in range(1, steps + 1):
            opt.zero_grad()
            module(xx, labels).backward()
            opt.step()
            run.stats.append({"step": step, **batch_statistics(xx, labels), **getattr(module, "last_stats", {})})
    run.end = xx.detach().numpy().copy()
    return run
