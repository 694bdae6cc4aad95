"""Figures for paper 000 (SMC + ECD): the toy clouds of :mod:`reid.toys.smc_ecd`, drawn.

* :func:`plot_centre_definitions` — Fig. 5: sub-centres, centre-loss centre, unweighted mean and
  meta-centre of one identity.
* :func:`plot_trajectories`, :func:`plot_simulation_curves` — Fig. 3: the drift and the class
  statistics of :func:`reid.toys.smc_ecd.simulate`.
"""

from __future__ import annotations

import numpy as np

from reid.toys.smc_ecd import Simulation, ToyCloud, centre_definitions

__all__ = ["plot_centre_definitions", "plot_trajectories", "plot_simulation_curves"]

IDENTITY_COLOURS = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive"]
CAMERA_MARKERS = ["o", "s", "^", "D", "v", "P"]


def plot_centre_definitions(cloud: ToyCloud, identity: int = 0, ax=None):
    """Fig. 5 of paper 000 on the toy: sub-centres, weighted centre, unweighted centre, meta-centre."""
    import matplotlib.pyplot as plt

    c = centre_definitions(cloud, identity)
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 5))
    for j in np.unique(c["cameras"]):
        pts = c["points"][c["cameras"] == j]
        ax.scatter(pts[:, 0], pts[:, 1], marker=CAMERA_MARKERS[j % 6], s=25, alpha=0.6,
                   color=IDENTITY_COLOURS[identity % 8], label=f"cam {j + 1} ({len(pts)} images)")
    ax.scatter(c["sub"][:, 0], c["sub"][:, 1], marker="x", s=90, color="k", label="sub-centres $c^{(j)}$")
    ax.scatter(*c["weighted"], marker="*", s=220, color="tab:gray", edgecolor="k", label="centre loss (weighted mean)")
    ax.scatter(*c["unweighted"], marker="*", s=220, color="gold", edgecolor="k", label="unweighted mean")
    ax.scatter(*c["meta"], marker="*", s=260, color="crimson", edgecolor="k",
               label=f"meta-centre $\\Sigma_j c^{{(j)}}$ = {c['s']} x unweighted")
    ax.scatter(0, 0, marker="+", s=120, color="k")
    ax.annotate("origin", (0, 0), textcoords="offset points", xytext=(5, -12))
    ax.plot([0, c["meta"][0]], [0, c["meta"][1]], ls=":", color="crimson", lw=1)
    ax.set_aspect("equal")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(f"identity {identity}: three definitions of 'the centre'")
    return ax


def plot_trajectories(cloud: ToyCloud, sims: list[Simulation], axes=None):
    """One panel per simulation: initial cloud (faded), final cloud, and the centres' paths."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, len(sims), figsize=(4.6 * len(sims), 4.4))
    axes = np.atleast_1d(axes)
    for ax, sim in zip(axes, sims):
        first, last = min(sim.snapshots), max(sim.snapshots)
        for u in range(cloud.num_ids):
            sel = (cloud.y == u).numpy()
            colour = IDENTITY_COLOURS[u % 8]
            ax.scatter(*sim.snapshots[first][sel].T, s=8, color=colour, alpha=0.2)
            for j in range(cloud.num_cameras):
                cam = sel & (cloud.g == j).numpy()
                ax.scatter(*sim.snapshots[last][cam].T, s=16, color=colour, marker=CAMERA_MARKERS[j % 6])
            path = np.stack([sim.centres[t][u] for t in sorted(sim.centres)])
            ax.plot(path[:, 0], path[:, 1], "-", color=colour, lw=1)
            ax.scatter(*path[-1], marker="*", s=160, color=colour, edgecolor="k")
        ax.scatter(0, 0, marker="+", s=100, color="k")
        ax.set_aspect("equal")
        ax.set_title(f"{sim.loss}: step {first} (faded) -> {last}")
    return axes


def plot_simulation_curves(sims: list[Simulation], keys=("origin_distance", "radius", "ratio", "rank1"), axes=None):
    """Per-step statistics of several simulations (see :func:`cloud_statistics`)."""
    import matplotlib.pyplot as plt

    titles = {
        "origin_distance": "mean |identity mean| (drift from origin)",
        "radius": "mean distance to own identity mean",
        "ratio": "min gap between identity means / radius",
        "rank1": "cross-camera 1-NN accuracy (%)",
        "min_centre_gap": "min gap between identity means",
    }
    if axes is None:
        _, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4))
    for ax, key in zip(np.atleast_1d(axes), keys):
        for sim in sims:
            ax.plot([s["step"] for s in sim.stats], [s[key] for s in sim.stats], label=sim.loss)
        ax.set_title(titles.get(key, key), fontsize=9)
        ax.set_xlabel("step")
    np.atleast_1d(axes)[0].legend()
    return axes
