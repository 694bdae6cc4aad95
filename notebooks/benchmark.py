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
# # Five losses, one benchmark
#
# Each of the five papers compares its loss with baselines *inside its own setup*: its own
# backbone (ResNet-50 pool5, a part-based CNN, VGG mappings, ResNet-50 with a BN neck), its own
# input size, sampler, schedule, datasets and evaluation code, and (except paper 004, which
# repeats every evaluation ten times and reports standard deviations) a single run per number.
# So the papers' tables cannot tell us how the five losses compare with each other, nor how much
# of a reported gap is seed-to-seed variation. This chapter makes the comparison none of the
# papers makes, as a registered study (`reid/study/benchmark.py`, run by `reid study benchmark`):
#
# - **one backbone** for every loss (the small CPU ResNet, width 16, from scratch; paper 003's two
#   unshared view mappings are two copies of it), **one input size** (64×32) and **one dataset**
#   (the SynthReID smoke preset), evaluated with **one protocol** (Market-1501 single query);
# - **one training budget** (20 epochs) in which each recipe keeps the *shape* of its own
#   learning-rate schedule: every warm-up, step and decay sits at the same fraction of training
#   as in the paper (`reid.study.budget`), so no model is evaluated at its peak learning rate
#   because its milestones were cut off, and no schedule is silently replaced by a constant rate;
# - everything else as each paper prescribes: its sampler, optimiser, base learning rate and loss
#   hyper-parameters at the recipes' study scale;
# - **five seeds** per loss, and **every pair** of losses compared with Welch's t-test (the
#   recipes differ, so seeds are not paired across them; Welch does not assume equal spreads),
#   with t critical values and Holm's correction over all ten pairs.
#
# ```{important}
# Every number below is labelled with its source: **SynthReID, study scale, CPU** for the
# evidence (`evidence/benchmark.json`), and **demonstration** for the live run at the end of the
# chapter, which only shows that the pipeline works (two seeds, a three-epoch budget). Neither is
# a Market-1501 number. The GPU version (`params/benchmark.full.yaml`: ResNet-50, 256×128, 60
# epochs, the Market-1501-sized setting) is one papermill call away; see the end.
# ```

# %% tags=["parameters"]
dataset = "synthreid"
data_root = None
scale = "smoke"  # scale of the live demonstration (the evidence is at the study scale)
backbone = "small_resnet"  # one backbone for all five losses
epochs = None  # the demonstration's budget in epochs (None: 3 at smoke scale, 60 at full scale)
device = "cpu"
seed = 0  # unused: the seeds are 0 .. num_seeds - 1, as in every study
num_seeds = 2  # seeds of the demonstration (the registered study uses 5)
jobs = 1  # worker processes of the demonstration
out_dir = None  # None: a fresh temporary folder per execution; a path keeps what is written there
evidence_dir = "../evidence"

# %%
# %matplotlib inline
import json
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

from reid.study.benchmark import LABELS, benchmark_registry
from reid.study.report import available_evidence, comparisons_table, load_evidence
from reid.study.runner import run_study
from reid.viz import make_table, plot_seed_spread

# One intra-op thread: bit-identical results on any machine, and no contention on two cores.
torch.set_num_threads(1)

# %% [markdown]
# ## The contenders
#
# | loss | paper | recipe | objective |
# | --- | --- | --- | --- |
# | SMC + ECD | 000 {cite:p}`borgia2018cross` | `smc_ecd` | softmax + camera sub-centre pull + centre dispersion |
# | adaptive margin | 001 {cite:p}`wang2018deep` | `adaptive_margin` | pairwise hinge with batch-adaptive margins, anchor-based pair batches |
# | support neighbour | 002 {cite:p}`li2018support` | `support_neighbor` | separation + squeeze over K nearest neighbours, P×K batches |
# | view adaptation | 003 {cite:p}`wu2020cross` | `view_adaptation` | similarity discriminator + adversarial view confusion, asymmetric mappings |
# | AM0BH | 004 {cite:p}`sabri2022joint` | `joint_am_triplet` | additive angular-margin softmax + batch-hard triplet |
#
# A training epoch is one pass over the training set in each recipe's own batch format (P×K
# identity batches, anchor-based pair batches, cross-view pairs, or plain shuffled batches), so
# the number of optimisation steps per epoch differs a little between losses.


# %% tags=["hide-input"]
ORDER = list(LABELS)  # the papers' order


def per_loss_table(ev, title):
    """Mean ± sd over seeds of each loss's metrics (percent), from an evidence document."""
    rows = []
    for name in sorted(ev["variants"], key=ORDER.index):
        m = ev["variants"][name]["metrics"]
        row = {"loss": LABELS[name], "seeds": len(ev["variants"][name]["runs"])}
        for key, col in (("mAP", "mAP (%)"), ("rank1", "rank-1 (%)"), ("rank5", "rank-5 (%)"), ("mINP", "mINP (%)")):
            row[col] = f"{100 * m[key]['mean']:.1f} ± {100 * (m[key]['sd'] or 0):.1f}"
        rows.append(row)
    return make_table(rows, title=f"{title}: mean ± sd over seeds ({ev['label']})")


def seed_plot(ev, title):
    per_seed = {LABELS[n]: [100 * x for x in ev["variants"][n]["metrics"]["mAP"]["values"]]
                for n in sorted(ev["variants"], key=ORDER.index)}
    fig, ax = plt.subplots(figsize=(8, 3.6))
    plot_seed_spread(per_seed, ylabel="mAP (%), step AP", ax=ax, title=f"mAP per seed: {title} ({ev['label']})")
    plt.tight_layout()
    plt.show()


# %% [markdown]
# ## The evidence
#
# `reid study benchmark` trains the five losses with seeds 0–4 (25 runs, two processes of one
# thread each) and writes `evidence/benchmark.json`: every run's metrics, each loss's mean and
# standard deviation, and the ten pairwise comparisons. The tables below are read from that file.

# %%
has_evidence = "benchmark" in available_evidence(evidence_dir)
if has_evidence:
    ev = load_evidence("benchmark", evidence_dir)
    display(per_loss_table(ev, "five losses, one backbone, one budget"))
else:
    display(Markdown("**No evidence yet** for this chapter: run `reid study benchmark` from the repository root "
                     "(25 runs), commit `evidence/`, and re-execute this notebook."))

# %%
if has_evidence:
    seed_plot(ev, "evidence")

# %% [markdown]
# Every pair of losses, on mAP and on rank-1: the difference of means (B − A) with its 95% Welch
# interval, Welch's t with its Welch–Satterthwaite degrees of freedom and the t critical value
# that the interval uses, the two-sided p-value, and the p-value after Holm's step-down
# correction over all ten pairs of that metric. A pair is called different only when the
# Holm-adjusted p is at most 0.05; with five seeds per loss, a gap smaller than the spread of
# its two losses will not be, and the table says so rather than ranking by means alone.

# %%
if has_evidence:
    display(comparisons_table(ev, metric="mAP", labels=LABELS))
    display(comparisons_table(ev, metric="rank1", labels=LABELS))

# %% [markdown]
# ## A live demonstration
#
# The same runner on a tiny budget, so the chapter proves that the pipeline works every time it
# is executed: the five losses at the chosen scale, a few epochs each (every schedule rescaled to
# them), two seeds, written under `out_dir`. At the default parameters this is **a
# demonstration, not evidence**: two seeds and a three-epoch budget decide nothing, and the
# repository may have uncommitted changes. With `params/benchmark.full.yaml` the same cell runs
# the paper-scale comparison on a GPU (five seeds, a clean checkout required).

# %%
full = scale == "full"
registry = benchmark_registry(
    backbone=backbone, weights="imagenet" if backbone == "resnet50" else None,
    height=256 if full else 64, image_width=128 if full else 32,
    epochs=epochs if epochs is not None else (60 if full else 3), scale=scale, preset=None if full else "smoke",
    seeds=5, dataset=dataset,
)  # fmt: skip
from reid.engine import notebook_run_dir

out_dir = notebook_run_dir("benchmark", out_dir)
out_dir.mkdir(parents=True, exist_ok=True)
registry_path = out_dir / "benchmark-registry.json"
registry_path.write_text(json.dumps(registry, indent=1))
summary = run_study(str(registry_path), seeds=num_seeds, jobs=jobs, out=out_dir, root=data_root, device=device,
                    allow_dirty=not full, progress=False)
demo = load_evidence("benchmark", out_dir)
if not full:
    demo["label"] = "demonstration: " + demo["label"]
print(f"{len(summary['plan'])} runs ({len(demo['variants'])} losses x {num_seeds} seeds), a budget of "
      f"{registry['study']['budget']['epochs']} epochs each, in a temporary folder unless out_dir is given")
per_loss_table(demo, "demonstration")

# %%
seed_plot(demo, "demonstration")
comparisons_table(demo, metric="mAP", labels=LABELS)

# %% [markdown]
# ## Provenance
#
# The evidence file records the commit, the lock-file hash and the hardware of its runs, and the
# wall time of the study; each run's own `results.json` under `evidence/benchmark/` records the
# rest (resolved recipe, seed, versions, timings). Had the runs spanned several commits, the cell
# would also list the package files that differ between them (`code_changes`, from `git diff`).

# %%
# NBVAL_IGNORE_OUTPUT
for name, doc in (("evidence", ev if has_evidence else None), ("demonstration", demo)):
    if doc is None:
        continue
    t = doc["timings"]
    wall = t.get("study_wall_seconds")
    print(f"{name}: commit {doc['commit'][:10]}{' (uncommitted changes)' if doc['dirty'] else ''}, "
          f"lock {str(doc['lock']['sha256'])[:12]}, {doc['hardware']['cpu'] if isinstance(doc['hardware'], dict) else 'mixed hardware'}, "
          f"study wall time {'unknown' if wall is None else f'{wall / 60:.1f} min'}, "
          f"CPU time of the runs {t.get('runs_cpu_seconds') or 0:.0f} s")
    if doc.get("code_changes"):  # runs trained at several commits: what differs in the package between them
        base = doc["code_changes"]["base"]
        for commit, files in doc["code_changes"]["changes"].items():
            print(f"  runs at {commit[:10]} against {base[:10]} (most runs): reid/ differs in "
                  f"{', '.join(files) if files else 'no file'}")

# %% [markdown]
# ## The GPU version
#
# ```bash
# .venv/bin/papermill notebooks/benchmark.ipynb runs/benchmark-full.ipynb \
#     -f params/benchmark.full.yaml --cwd notebooks
# ```
#
# runs the same comparison with ResNet-50 (ImageNet initialisation) on 256×128 inputs with a
# 60-epoch budget per loss, each schedule rescaled to it, on the Market-1501-sized SynthReID set
# by default (set `dataset: market1501` and `data_root` in the YAML file for the real dataset),
# over five seeds.
