"""Figures of the paper-002 chapter (support neighbour loss): a support set and its forces in 2-D,
and the toy runs of :mod:`reid.toys.support_neighbor` (which computes; this module only draws).

* :func:`plot_support_set` — one anchor's K nearest neighbours split into positive (``P_i``) and
  negative (``N_i``) support neighbours, the samples the loss ignores, and the forces of the
  separation and squeeze terms on every point.
* :func:`plot_runs` — start and end positions of toy runs.
* :func:`plot_gallery_curves` — a gallery-size claim of the evidence file (Fig. 4): each seed's
  metric against the gallery size for both losses, and their means.
"""

from __future__ import annotations

import numpy as np
import torch

from reid.toys.support_neighbor import ToyRun, anchor_forces

__all__ = ["plot_support_set", "plot_runs", "plot_gallery_curves"]

COLOURS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive"]


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


def plot_gallery_curves(claim: dict, *, ax=None):
    """One slope claim of ``evidence/support_neighbor.json``: the metric (%) of every seed (thin)
    and the mean (thick) against the gallery size (log scale), baseline grey, variant coloured."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4))
    x = np.asarray(claim["x"], dtype=float)
    for role, colour in (("baseline", "#4d4d4d"), ("variant", "tab:blue")):
        curves = 100 * np.asarray(claim[f"{role}_curves"], dtype=float)
        for curve in curves:
            ax.plot(x, curve, color=colour, alpha=0.3, lw=1)
        ax.plot(x, curves.mean(0), color=colour, lw=2.5, marker="o", label=claim[role])
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(plt.NullFormatter())  # decades only: minor labels collide on short ranges
    ax.set_xlabel("gallery size (test gallery + distractors)")
    point = claim.get("curve_metrics", [claim["metric"]])[0]  # "distractor_curve.gallery_mAP@0" -> "mAP"
    ax.set_ylabel(point.rpartition(".")[2].replace("gallery_", "").split("@")[0].replace("_slope", "") + " (%)")
    ax.set_title(f"{claim['id']}: {claim['verdict']}", fontsize=10)
    ax.legend()
    return ax
