"""Figures for paper 001's chapter (large adaptive margin); the computations are in
:mod:`reid.toys.adaptive_margin`.

* :func:`plot_margin_maps` — Fig. 3 (a)/(c) of the paper: ``Mp(d̄)`` for several µ, ``Mn(s̄)`` for
  several γ.
* :func:`plot_margin_history` — ``s̄``, ``d̄`` and the margins over the steps of a toy run
  (:func:`reid.toys.adaptive_margin.simulate_pairs`).
"""

from __future__ import annotations

import numpy as np

from reid.toys.adaptive_margin import PairHistory, margin_maps

__all__ = ["plot_margin_maps", "plot_margin_history"]


def plot_margin_maps(values=None, mus=(6.0, 8.0, 10.0), gammas=(1.8, 2.1, 2.5), axes=None):
    """Fig. 3 (a)/(c) of paper 001: the two non-linear maps with the identity line for reference."""
    import matplotlib.pyplot as plt

    values = np.linspace(0.0, 1.0, 101) if values is None else values
    maps = margin_maps(values, mus, gammas)
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    v = maps["values"]
    for mu, mp in maps["Mp"].items():
        axes[0].plot(v, mp, label=f"µ = {mu:g}  (ceiling 1/µ = {1 / mu:.3f})")
    axes[0].plot(v, v, "k:", lw=1, label="Mp = d̄")
    axes[0].set_xlabel("mean negative distance d̄")
    axes[0].set_ylabel("up-margin Mp (positives must fall below)")
    for gamma, mn in maps["Mn"].items():
        axes[1].plot(v, mn, label=f"γ = {gamma:g}  (floor log2/γ = {np.log(2) / gamma:.3f})")
    axes[1].plot(v, v, "k:", lw=1, label="Mn = s̄")
    axes[1].set_xlabel("mean positive distance s̄")
    axes[1].set_ylabel("down-margin Mn (negatives must exceed)")
    for ax in axes:
        ax.legend(fontsize=8)
    return axes


def plot_margin_history(histories: list[PairHistory], axes=None, smooth: int = 10):
    """``s̄``, ``d̄`` for every history and the adaptive margins, over the steps (moving average)."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, len(histories), figsize=(5.2 * len(histories), 3.6), sharey=True)
    axes = np.atleast_1d(axes)

    def ma(v):
        v = np.asarray(v, dtype=float)
        k = max(1, min(smooth, len(v)))
        return np.convolve(v, np.ones(k) / k, mode="valid")

    for ax, hist in zip(axes, histories):
        steps = ma([r["step"] for r in hist.records])
        ax.plot(steps, ma([r["s_bar"] for r in hist.records]), color="tab:green", label="s̄ (mean positive D)")
        ax.plot(steps, ma([r["d_bar"] for r in hist.records]), color="tab:red", label="d̄ (mean negative D)")
        if "Mp" in hist.records[0]:
            ax.plot(steps, ma([r["Mp"] for r in hist.records]), "--", color="tab:green", label="Mp")
            ax.plot(steps, ma([r["Mn"] for r in hist.records]), "--", color="tab:red", label="Mn")
            ax.plot(steps, ma([r["Mtau"] for r in hist.records]), ":", color="k", label="Mτ")
            ax.plot(steps, ma([r["Mc"] for r in hist.records]), ":", color="tab:gray", label="Mc")
        ax.set_title(hist.loss)
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("squared distance")
    return axes
