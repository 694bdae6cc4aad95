"""Mechanism toys for paper 002 (support neighbour loss): K-NN support sets and their forces in 2-D.

* :func:`toy_batch` — a P×Q batch of 2-D points (P identities, Q images each) with overlapping
  identities, the situation the support sets are meant for.
* :func:`plot_support_set` — one anchor's K nearest neighbours split into positive (``P_i``) and
  negative (``N_i``) support neighbours, the samples the loss ignores, and the forces (negative
  gradients) of the separation and squeeze terms on every point, from autograd on the library's
  :class:`~reid.losses.SupportNeighborLoss` with only that anchor's term switched on.
* :func:`simulate` — the points themselves trained by SGD with the SN loss (any λ, K, σ) or the
  batch-hard triplet loss; :func:`batch_statistics` measures spread, separation and 1-NN accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from reid.losses import BatchHardTripletLoss, SupportNeighborLoss
from reid.losses.support_neighbor import support_neighbors
from reid.losses.triplet import batch_distances
from reid.metrics import rank_metrics

__all__ = ["toy_batch", "anchor_forces", "plot_support_set", "batch_statistics", "ToyRun", "simulate", "plot_runs"]

COLOURS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive"]


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
    one training step.
    """
    dist = batch_distances(x.detach(), squared=squared)
    sets = support_neighbors(dist, labels, k)
    out = {"index": sets.index[anchor].numpy(), "positive": sets.positive[anchor].numpy(),
           "radius": float(dist[anchor, sets.index[anchor]].max())}
    grads = {}
    for lam in (0.0, 1.0):
        xx = x.detach().clone().requires_grad_(True)
        SupportNeighborLoss(k, sigma, lam, squared=squared, reduction="sum")(xx, labels).backward()
        grads[lam] = xx.grad
    out["separation"] = (-grads[0.0]).numpy()
    out["squeeze"] = (-(grads[1.0] - grads[0.0])).numpy()
    return out


def plot_support_set(x: torch.Tensor, labels: torch.Tensor, anchor: int, k: int, sigma: float, *, squared: bool = False, axes=None, arrow: float = 0.5):
    """Two panels: the anchor's support set (dashed circle: its K-th neighbour distance; faded:
    samples outside ``K_i``) with the separation forces, and with the squeeze forces. Arrows are
    scaled so that the longest is ``arrow`` long; the title gives the longest force's size."""
    import matplotlib.pyplot as plt

    info = anchor_forces(x, labels, anchor, k, sigma, squared=squared)
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 5))
    pts = x.detach().numpy()
    in_k = np.zeros(len(pts), bool)
    in_k[info["index"]] = True
    pos = np.zeros(len(pts), bool)
    pos[info["index"][info["positive"]]] = True
    for ax, name in zip(axes, ("separation", "squeeze")):
        for u in np.unique(labels.numpy()):
            sel = labels.numpy() == u
            ax.scatter(*pts[sel & ~in_k].T, s=30, color=COLOURS[u % 8], alpha=0.3)
            ax.scatter(*pts[sel & in_k].T, s=60, color=COLOURS[u % 8], edgecolor="k")
        ax.scatter(*pts[anchor], s=260, marker="*", color=COLOURS[int(labels[anchor]) % 8], edgecolor="k", zorder=5)
        r = info["radius"] if not squared else np.sqrt(info["radius"])
        ax.add_patch(plt.Circle(pts[anchor], r, fill=False, ls="--", color="k", lw=1))
        f = info[name]
        longest = np.linalg.norm(f, axis=1).max()
        f = f * (arrow / longest) if longest > 0 else f  # longest arrow drawn with length `arrow`
        moving = np.linalg.norm(f, axis=1) > 1e-9 * max(arrow, 1e-12)
        ax.quiver(pts[moving, 0], pts[moving, 1], f[moving, 0], f[moving, 1], angles="xy", scale_units="xy",
                  scale=1.0, color="crimson", width=0.006)
        lo, hi = pts.min(0) - arrow, pts.max(0) + arrow
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_aspect("equal")
        n_pos, n_neg = int(pos.sum()), int(in_k.sum() - pos.sum())
        ax.set_title(f"{name} forces (longest = {longest:.2g})\nK = {k}: |P_i| = {n_pos}, |N_i| = {n_neg}", fontsize=10)
    return axes


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
    run.stats.append({"step": 0, **batch_statistics(xx, labels)})
    for step in range(1, steps + 1):
        opt.zero_grad()
        module(xx, labels).backward()
        opt.step()
        run.stats.append({"step": step, **batch_statistics(xx, labels), **getattr(module, "last_stats", {})})
    run.end = xx.detach().numpy().copy()
    return run


def plot_runs(labels: torch.Tensor, runs: list[ToyRun], axes=None):
    """Start (faded) and end positions of each toy run."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, len(runs), figsize=(4.3 * len(runs), 4.2))
    for ax, run in zip(np.atleast_1d(axes), runs):
        for u in np.unique(labels.numpy()):
            sel = labels.numpy() == u
            ax.scatter(*run.start[sel].T, s=14, color=COLOURS[u % 8], alpha=0.25)
            ax.scatter(*run.end[sel].T, s=40, color=COLOURS[u % 8], edgecolor="k")
        last = run.stats[-1]
        ax.set_title(f"{run.name}\nintra {last['intra']:.2f}, nearest other {last['nearest_other']:.2f}", fontsize=9)
        ax.set_aspect("equal")
    return axes
