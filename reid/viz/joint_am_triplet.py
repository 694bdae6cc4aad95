"""Figures of the paper 004 chapter (angular margin softmax + batch hard triplet).

The computations behind them (closed-form gradients, the 2-D gradient fields, the toy training)
live in :mod:`reid.toys.joint_am_triplet`; this module only draws.

* :func:`plot_gradient_fields` — quiver plots of ``−∂L/∂x`` for AM0, the triplet term and AM0BH,
  coloured by the radial share of each arrow;
* :func:`plot_simulation` — start and end positions of the 2-D toy features trained by each variant.
"""

from __future__ import annotations

import numpy as np

from reid.toys.joint_am_triplet import GradientField, ToySimulation

__all__ = ["plot_gradient_fields", "plot_simulation"]


def plot_gradient_fields(field_: GradientField, *, axes=None):
    """One quiver panel per field; arrows coloured by their radial share ``|g·x̂| / ‖g‖``."""
    import matplotlib.pyplot as plt

    n = len(field_.fields)
    if axes is None:
        _, axes = plt.subplots(1, n, figsize=(4.4 * n, 4.4))
    p = field_.points
    r_hat = p / np.linalg.norm(p, axis=1, keepdims=True)
    theta = np.linspace(0, 2 * np.pi, 200)
    for ax, (name, g) in zip(np.atleast_1d(axes), field_.fields.items()):
        mag = np.linalg.norm(g, axis=1)
        share = np.abs((g * r_hat).sum(1)) / np.maximum(mag, 1e-12)
        unit = g / np.maximum(mag, 1e-12)[:, None]
        length = np.sqrt(mag / max(mag.max(), 1e-12))  # sqrt: small arrows stay visible
        q = ax.quiver(p[:, 0], p[:, 1], unit[:, 0] * length, unit[:, 1] * length, share, cmap="coolwarm",
                      clim=(0, 1), angles="xy", scale_units="xy", scale=3.0, width=0.006)
        ax.plot(np.cos(theta), np.sin(theta), color="gray", lw=0.8, ls="--")
        for j, w in enumerate(field_.class_directions):
            ax.annotate("", xy=1.9 * w, xytext=(0, 0),
                        arrowprops=dict(arrowstyle="->", color="black" if j == field_.label else "gray", lw=1.5))
            ax.text(*(2.05 * w), f"W{j}", ha="center", va="center", fontsize=8)
        if "triplet" in name or "BH" in name:
            ax.scatter(*field_.positive, marker="*", s=140, color="tab:green", zorder=3, label="positive")
            ax.scatter(*field_.negative, marker="X", s=100, color="tab:red", zorder=3, label="negative")
            ax.legend(fontsize="x-small", loc="lower right")
        ax.set_aspect("equal")
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    cbar = plt.colorbar(q, ax=np.atleast_1d(axes).tolist(), fraction=0.02, pad=0.02)
    cbar.set_label("radial share |g·x̂| / ‖g‖")
    return axes


def plot_simulation(sims: list[ToySimulation], *, axes=None):
    """One panel per variant: start (faint) and end positions, lines joining them, the unit circle."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, len(sims), figsize=(3.6 * len(sims), 3.8))
    colours = plt.get_cmap("tab10")
    theta = np.linspace(0, 2 * np.pi, 200)
    lim = 1.15 * max(float(np.abs(s).max()) for sim in sims for s in sim.snapshots)
    for ax, sim in zip(np.atleast_1d(axes), sims):
        start, end = sim.snapshots[0], sim.snapshots[-1]
        c = [colours(int(k) % 10) for k in sim.labels]
        for a, b, col in zip(start, end, c):
            ax.plot([a[0], b[0]], [a[1], b[1]], color=col, lw=0.6, alpha=0.5)
        ax.scatter(start[:, 0], start[:, 1], c=c, s=10, alpha=0.3)
        ax.scatter(end[:, 0], end[:, 1], c=c, s=22, edgecolors="black", linewidths=0.3)
        ax.plot(np.cos(theta), np.sin(theta), color="gray", lw=0.8, ls="--")
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        last = sim.stats[-1]
        ax.set_title(f"{sim.variant}: mean ‖x‖ {last['mean_norm']:.2f}", fontsize=9)
    return axes
