"""Figures and tables of paper 003's chapter (cross-entropy adversarial view adaptation).

The computations live in :mod:`reid.toys.view_adaptation` (closed-form gradients, the negative
gradient census, the 2-D toy of Algorithm 1); this module only draws them.
"""

from __future__ import annotations

import numpy as np

from reid.toys.view_adaptation import ToyRun, TwoViewToy

__all__ = [
    "plot_toy_runs",
    "plot_toy_curves",
    "toy_table_rows",
    "plot_negative_gradients",
]


def toy_table_rows(runs: list[ToyRun]) -> list[dict]:
    """Start and end statistics of each toy run (for ``reid.viz.make_table``)."""
    keys = ("knn_view_acc", "mean_gap", "rank1", "spread", "Dd(source)", "Dd(target)")
    rows = [{"setting": "(start: identity mappings)", **{k: runs[0].history[0][k] for k in keys}}]
    rows += [{"setting": r.name, **{k: r.history[-1][k] for k in keys}} for r in runs]
    return rows


def plot_toy_runs(toy: TwoViewToy, runs: list[ToyRun], *, axes=None):
    """Mapped features before training and after each run: colour = identity, marker = view."""
    import matplotlib.pyplot as plt

    panels = [("before: Ms = Mt = identity", runs[0].snapshots[0])] + [(r.name, r.snapshots[-1]) for r in runs]
    if axes is None:
        _, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.7))
    cmap = plt.get_cmap("tab10")
    labelled = set(toy.labelled.tolist())
    for ax, (title, (f_s, f_t)) in zip(np.atleast_1d(axes), panels):
        for f, pid, marker, view in ((f_s, toy.pid_s, "o", "probe (Ms)"), (f_t, toy.pid_t, "^", "gallery (Mt)")):
            colours = [cmap(int(p) % 10) for p in pid]
            faces = [c if int(p) in labelled else "none" for c, p in zip(colours, pid)]
            ax.scatter(f[:, 0], f[:, 1], c=faces, edgecolors=colours, marker=marker, s=22, linewidths=0.8, label=view)
        ax.set_title(title, fontsize=8)
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xticks([])
        ax.set_yticks([])
    np.atleast_1d(axes)[0].legend(fontsize="x-small", loc="best")
    return axes


def plot_toy_curves(runs: list[ToyRun], *, axes=None):
    """Over the steps: the kNN view accuracy (50 % = views mixed) and the cross-view rank-1."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(13, 3.2))
    for r in runs:
        steps = [h["step"] for h in r.history]
        axes[0].plot(steps, [h["knn_view_acc"] for h in r.history], label=r.name)
        axes[1].plot(steps, [h["rank1"] for h in r.history], label=r.name)
        axes[2].plot(steps, [h["Dd(source)"] - h["Dd(target)"] for h in r.history], label=r.name)
    axes[0].axhline(50, color="gray", ls="--", lw=0.8)
    axes[0].set_ylabel("kNN view accuracy (%)")
    axes[1].set_ylabel("cross-view rank-1 (%)")
    axes[2].set_ylabel("mean Dd(probe) − mean Dd(gallery)")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize="x-small")
    return axes


def plot_negative_gradients(panels: dict, *, axes=None, margin: float = 2.0):
    """``∂ℓ/∂d`` of every negative pair against its distance, one panel per reading of Eq. 5.

    ``panels`` maps a title to ``(d, grad)`` (1-D arrays over the negative pairs, e.g. from
    :func:`reid.toys.view_adaptation.similarity_grads`). Points above zero are pairs that gradient
    descent pulls *together*; below zero, pairs it pushes apart.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.3), squeeze=False)
        axes = axes[0]
    for ax, (title, (d, g)) in zip(np.atleast_1d(axes), panels.items()):
        d, g = np.asarray(d), np.asarray(g)
        pulled = g > 0
        ax.scatter(d[~pulled], g[~pulled], s=5, alpha=0.5, color="tab:blue", label="pushed apart")
        ax.scatter(d[pulled], g[pulled], s=5, alpha=0.5, color="tab:red", label="pulled together")
        ax.axhline(0, color="gray", lw=0.8)
        ax.axvline(margin, color="gray", ls=":", lw=0.8)
        ax.set_title(f"{title}\n{100 * pulled.mean():.0f}% of negatives pulled together", fontsize=8)
        ax.set_xlabel("negative pair distance d")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("∂ℓ/∂d (per pair)")
    np.atleast_1d(axes)[0].legend(fontsize="x-small", markerscale=3)
    return axes
