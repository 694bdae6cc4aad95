"""Figures of a study's evidence (``evidence/<chapter>.json``, see :mod:`reid.study.evidence`).

* :func:`plot_claim_seeds` — one claim: each seed's baseline and variant value, joined by a line
  (the pairing the statistics use), with the verdict and the paired difference's 95% CI.
* :func:`plot_claims_seeds` — the same for every claim of a chapter, one panel each.
* :func:`plot_forest` — every claim of a chapter as its mean paired difference with the 95%
  CI, against 0 (and the rule's δ or margin), coloured by verdict.

Every figure carries the evidence's label, e.g. "SynthReID, study scale, CPU, n = 5 seeds".
Values are shown in display units (rank-k / mAP / mINP ×100: percent, differences in points).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["VERDICT_COLOURS", "plot_claim_seeds", "plot_claims_seeds", "plot_forest"]

VERDICT_COLOURS = {"supported": "#1b7837", "contradicted": "#c51b7d", "inconclusive": "#6e6e6e"}


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _factor(claim: dict) -> float:
    return float(claim.get("display", {}).get("factor", 1))


def _ylabel(claim: dict) -> str:
    if claim.get("rule", {}).get("name") == "slope":
        return f"slope of {claim['metric']} ({claim.get('display', {}).get('unit', '')})"
    return claim["metric"] + (" (%)" if _factor(claim) == 100 else "")


def plot_claim_seeds(claim: dict, *, label: str = "", ax: Any = None) -> Any:
    """Per-seed dot plot of one claim: baseline (left) and variant (right), one line per seed."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(3.4, 3.4))
    f = _factor(claim)
    base = np.asarray(claim["baseline_values"], dtype=float) * f
    var = np.asarray(claim["variant_values"], dtype=float) * f
    colour = VERDICT_COLOURS.get(claim["verdict"], "black")
    for k, (b, v) in enumerate(zip(base, var)):
        ax.plot([0, 1], [b, v], color=colour, alpha=0.45, lw=1.2, zorder=2)
    ax.scatter(np.zeros(len(base)), base, s=24, color="#4d4d4d", zorder=3)
    ax.scatter(np.ones(len(var)), var, s=24, color=colour, zorder=3)
    for x, vals in ((0, base), (1, var)):
        ax.plot([x - 0.18, x + 0.18], [vals.mean()] * 2, color="black", lw=2, zorder=4)
    ax.set_xticks([0, 1])
    ax.set_xticklabels([claim["baseline"], claim["variant"]], rotation=12)
    ax.set_xlim(-0.5, 1.5)
    ax.set_ylabel(_ylabel(claim))
    ci = claim.get("ci95")
    unit = claim.get("display", {}).get("unit", "")
    ci_text = f"[{ci[0] * f:+.1f}, {ci[1] * f:+.1f}]" if ci else "[n < 2]"
    ax.set_title(f"{claim['id']}\n{claim['verdict']}: Δ {claim['diff_mean'] * f:+.1f} {unit} {ci_text}".rstrip(),
                 fontsize=9, color=colour)
    ax.grid(axis="y", alpha=0.3)
    if label:
        ax.text(0.5, -0.28, label, transform=ax.transAxes, ha="center", va="top", fontsize=7, color="#555555")
    return ax


def plot_claims_seeds(evidence: dict, *, claims: Sequence[str] | None = None, ncols: int = 4) -> Any:
    """:func:`plot_claim_seeds` for every claim (or the named ones) of an evidence document."""
    plt = _plt()
    chosen = [c for c in evidence["claims"] if claims is None or c["id"] in claims]
    if not chosen:
        raise ValueError("no claims to plot" + (f" among {list(claims)}" if claims else ""))
    ncols = min(ncols, len(chosen))
    nrows = -(-len(chosen) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.3 * ncols, 3.5 * nrows), squeeze=False)
    for ax, claim in zip(axes.flat, chosen):
        plot_claim_seeds(claim, ax=ax)
    for ax in list(axes.flat)[len(chosen):]:
        ax.axis("off")
    fig.suptitle(f"{evidence['chapter']}: per-seed values (a line joins one seed's pair)\n{evidence.get('label', '')}", fontsize=10)
    fig.tight_layout()
    return fig


def plot_forest(evidence: dict, *, ax: Any = None) -> Any:
    """Every claim's mean paired difference (variant − baseline) with its 95% CI, coloured by verdict.

    The expected side is marked with an arrow in the label; a ``min_effect`` δ or an
    ``equivalence`` margin is drawn as a short tick pair on the claim's row.
    """
    plt = _plt()
    claims = list(evidence["claims"])
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 0.45 * max(len(claims), 2) + 1.6), layout="constrained")
    for row, c in enumerate(reversed(claims)):
        f = _factor(c)
        colour = VERDICT_COLOURS.get(c["verdict"], "black")
        if c.get("ci95"):
            ax.plot([c["ci95"][0] * f, c["ci95"][1] * f], [row, row], color=colour, lw=2)
        ax.plot([c["diff_mean"] * f], [row], "o", color=colour)
        rule = c.get("rule", {})
        bound = rule.get("delta") or rule.get("margin")
        if bound:
            sign = [1, -1] if rule["name"] == "equivalence" else [1 if c["expected"] == "greater" else -1]
            for s in sign:
                ax.plot([s * bound * f] * 2, [row - 0.3, row + 0.3], color=colour, lw=1, ls=":")
    ax.axvline(0, color="black", lw=0.8)
    arrows = {"greater": "↑", "less": "↓", "equal": "="}
    ax.set_yticks(range(len(claims)))
    ax.set_yticklabels([f"{c['id']} ({arrows.get(c['expected'], '?')}) {c['verdict']}" for c in reversed(claims)], fontsize=8)
    ax.set_xlabel("variant − baseline: seed-paired mean, 95% CI\n(points for rank-k / mAP / mINP)")
    ax.set_title(f"{evidence['chapter']}: every claim\n{evidence.get('label', '')}", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return ax
