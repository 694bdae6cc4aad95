# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-papermill,-execution
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Scoreboard: do the papers' claims hold?
#
# Every claim this book tests is **registered before any run**, next to the paper's tables in
# `reid/papers/<paper>.json`: the variants compared, the metric, the direction the paper
# predicts and the decision rule. `reid study <chapter>` then trains every variant with at least
# five seeds, pairs the runs seed by seed, and computes the 95% t-interval of the difference
# (variant − baseline). The verdict is computed by code, never typed:
#
# - `supported`: the whole interval lies on the side of 0 the paper predicts (or beyond the
#   registered minimum effect; for a claim of "no difference", the 90% interval lies inside the
#   registered margin);
# - `contradicted`: the whole interval lies on the other side;
# - `inconclusive`: the interval straddles 0, so these seeds cannot tell.
#
# A verdict is about **SynthReID at the scale the study ran** (labelled on every row), never
# about Market-1501: the paper's own numbers are shown next to ours for orientation only. Each
# chapter explains its claims, shows the per-seed values, and discusses what the verdict means.

# %% tags=["parameters"]
# The book's common parameters (this page trains nothing; it reads evidence/*.json).
dataset = "synthreid"
data_root = None
scale = "smoke"
backbone = None
epochs = None
device = "cpu"
seed = 0
out_dir = None  # unused: this page trains nothing
evidence_dir = "../evidence"  # where `reid study` wrote <chapter>.json

# %%
from IPython.display import Markdown, display

from reid.study.report import available_evidence, overview_table, scoreboard_rows, scoreboard_table

chapters = available_evidence(evidence_dir)
rows = scoreboard_rows(evidence_dir)
if not rows:
    display(Markdown(
        "**No evidence yet.** No study has been run at this commit, so there is no verdict to show. Run "
        "`reid study <chapter>` from the repository root for each chapter (about 15–20 minutes each on two "
        "cores), commit `evidence/`, and rebuild the book."
    ))
else:
    contradicted = [r for r in rows if r["_verdict"] == "contradicted"]
    lines = [f"**{len(rows)} claims** from {len(chapters)} studies: "
             + ", ".join(f"{sum(r['_verdict'] == v for r in rows)} {v}" for v in ("supported", "contradicted", "inconclusive"))
             + "."]
    if contradicted:
        lines.append("Contradicted at this scale: " + "; ".join(f"{r['claim']} ({r['chapter']})" for r in contradicted) + ".")
    display(Markdown("\n\n".join(lines)))

# %% [markdown]
# ## Every claim
#
# The paper's numbers as printed (on the paper's dataset), our effect as the seed-paired mean
# difference with its 95% interval and the number of seed pairs, the verdict, and a link to the
# chapter that tests it.

# %%
board = scoreboard_table(evidence_dir)
board if board is not None else Markdown("*(The table appears here once `evidence/<chapter>.json` files exist.)*")

# %% [markdown]
# ## The studies
#
# Which studies have run, at which commit, and how long each took on the machine that ran it.

# %%
overview_table(evidence_dir)
