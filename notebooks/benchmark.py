# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-papermill,-execution
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
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
# of a reported gap is seed noise. This chapter makes the comparison none of the papers makes:
#
# - **one backbone** for every loss (the small CPU ResNet by default; paper 003's two unshared
#   view mappings are two copies of it),
# - **one input size, one training length and one learning-rate policy** for every loss (each
#   recipe's own optimiser and base learning rate, held constant: the papers' warm-ups and decays
#   are tied to their own training lengths, and a 20-epoch warm-up would consume a short budget),
# - **one dataset** (SynthReID) and **one protocol** (Market-1501 single query, Euclidean or the
#   recipe's distance, step AP),
# - **several seeds** per loss, reported as mean ± standard deviation and as individual points.
#
# Everything else stays as each paper prescribes (its sampler, optimiser, base learning rate and
# loss hyper-parameters, at the recipe's scale), so each loss is trained the way its authors
# would, on equal terms where it matters for a comparison.
#
# ```{important}
# The default run is deliberately tiny so that it executes in two to three minutes on a two-core
# CPU machine (CI re-executes it): five epochs per loss on the smoke-scale SynthReID set
# (100 identities). At that budget the models are far from converged; the ranking of the losses
# may change with longer training. The numbers are labelled **SynthReID (smoke scale, CPU)** and
# are not Market-1501 numbers. The GPU version (`params/benchmark.full.yaml`: ResNet-50, the
# Market-1501-sized setting, longer training) is one papermill call away; see the end.
# ```

# %% tags=["parameters"]
dataset = "synthreid"
data_root = None
scale = "smoke"
backbone = "small_resnet"  # one backbone for all five losses
epochs = None  # None: 5 epochs at smoke scale, 60 at full scale
device = "cpu"
seed = 0  # the first seed; the runs use seed, seed + 1, ..., seed + num_seeds - 1
num_seeds = 3
out_dir = "../runs/benchmark"

# %%
# %matplotlib inline
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from reid.engine import train
from reid.viz import load_results, make_table, plot_cmc, plot_seed_spread, run_label

# One intra-op thread: bit-identical results on any machine (CI re-runs this notebook and
# compares every printed number), and no slowdown from two threads contending for two cores.
torch.set_num_threads(1)

# %% [markdown]
# ## The contenders
#
# Each loss is trained with its chapter's recipe (`reid/recipes/<chapter>.yaml`) at the chosen
# scale, with the paper's proposed loss selected:
#
# | loss | paper | recipe | objective |
# | --- | --- | --- | --- |
# | SMC + ECD | 000 {cite:p}`borgia2018cross` | `smc_ecd` | softmax + camera sub-centre pull + centre dispersion |
# | adaptive margin | 001 {cite:p}`wang2018deep` | `adaptive_margin` | pairwise hinge with batch-adaptive margins, anchor-based pair batches |
# | support neighbour | 002 {cite:p}`li2018support` | `support_neighbor` | separation + squeeze over K nearest neighbours, P×K batches |
# | view adaptation | 003 {cite:p}`wu2020cross` | `view_adaptation` | similarity discriminator + adversarial view confusion, asymmetric mappings |
# | AM0BH | 004 {cite:p}`sabri2022joint` | `joint_am_triplet` | additive angular-margin softmax + batch-hard triplet |
#
# The common overrides: the backbone, the input size, the number of epochs and a constant
# learning rate. A training epoch is one pass over the training set in each recipe's own batch
# format (P×K identity batches, anchor-based pair batches, cross-view pairs, or plain shuffled
# batches), so the number of optimisation steps per epoch differs a little between losses.

# %%
full = scale == "full"
height, width = (256, 128) if full else (64, 32)
n_epochs = epochs if epochs is not None else (60 if full else 5)
seeds = list(range(seed, seed + num_seeds))

CONTENDERS = {  # label -> (recipe, loss variant)
    "SMC+ECD (000)": ("smc_ecd", "smc_ecd"),
    "adaptive margin (001)": ("adaptive_margin", "adaptive"),
    "support neighbour (002)": ("support_neighbor", "support_neighbor"),
    "view adaptation (003)": ("view_adaptation", "adaptive"),
    "AM0BH (004)": ("joint_am_triplet", "AM0BH"),
}


# ImageNet initialisation for every loss when the backbone is ResNet-50 (the papers' setting; the
# weights must be in the torch cache, nothing is downloaded), random initialisation otherwise.
weights = "imagenet" if backbone == "resnet50" else None


def overrides(recipe, loss):
    """The benchmark's common settings on top of a recipe: backbone, input size, constant lr, loss variant."""
    common = {"input.height": height, "input.width": width, "loss.name": loss, "schedule.name": "constant"}
    if recipe == "view_adaptation":  # two unshared mappings, both the common backbone
        model = {"model.ms": backbone, "model.mt": backbone, "model.ms_weights": weights, "model.mt_weights": weights}
        width_key = "model.small_width"
        # Algorithm 1 first trains the similarity discriminator alone (10 of the 30 epochs of the
        # full recipe), then alternates with the adversarial view stage: keep that proportion.
        common["loss.similarity_epochs"] = max(1, n_epochs // 3)
    else:
        model = {"model.name": backbone, "model.weights": weights}
        width_key = "model.width"
    if backbone == "small_resnet":
        # the same channel width everywhere (paper 001's part CNN has a `width` option as well,
        # its image width, which would otherwise be carried over to the small ResNet)
        model[width_key] = 16
    return {**common, **model}


print(f"backbone {backbone}, input {height}x{width}, {n_epochs} epochs per run at a constant learning rate, seeds {seeds}, "
      f"dataset {dataset}{'' if data_root is None else ' at ' + str(data_root)}, scale {scale}, device {device}")

# %% [markdown]
# ## Training
#
# Five losses × the seeds. Each call trains, evaluates, and writes its run directory
# (`results.json`, `log.jsonl`, checkpoints, `features.pt`) under `out_dir`.

# %%
runs = {}
for label, (recipe, loss) in CONTENDERS.items():
    for s in seeds:
        runs[label, s] = train(
            recipe, dataset=dataset, root=data_root, scale=scale, device=device, epochs=n_epochs, seed=s,
            out=Path(out_dir) / f"{recipe}-seed{s}", overrides=overrides(recipe, loss), progress=False,
        )
results = {key: load_results(run) for key, run in runs.items()}
LABEL = run_label(next(iter(results.values())))
print(f"{len(runs)} runs finished; numbers below: {LABEL}")

# %% [markdown]
# ## Results
#
# Market-1501 single-query protocol on the SynthReID test split (query against the gallery with
# distractors and junk), mAP with the step definition (the trapezoid definition of the official
# Market-1501 code is in the last column; see {doc}`data_and_evaluation`).

# %%
rows, per_seed = [], {}
for label in CONTENDERS:
    m = [results[label, s]["metrics"] for s in seeds]
    columns = {"mAP": "mAP", "rank1": "rank-1", "rank5": "rank-5", "mINP": "mINP", "mAP_trapezoid": "mAP, trapezoid AP"}
    vals = {name: 100 * np.array([x[key] for x in m]) for key, name in columns.items()}
    per_seed[label] = vals["mAP"]
    sd = (lambda v: v.std(ddof=1)) if len(seeds) > 1 else (lambda v: 0.0)
    rows.append({"loss": label, **{f"{k} (%)": f"{v.mean():.1f} ± {sd(v):.1f}" for k, v in vals.items()}})
make_table(rows, title=f"five losses, one backbone ({backbone}), {n_epochs} epochs, {len(seeds)} seeds: mean ± std; {LABEL}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
plot_seed_spread(per_seed, ylabel="mAP (%), step AP", ax=axes[0], title=f"mAP per seed ({LABEL})")
plot_cmc({label: runs[label, seeds[0]] for label in CONTENDERS}, max_rank=10, ax=axes[1], title=f"CMC, seed {seeds[0]}")
plt.tight_layout()
plt.show()

# %% [markdown]
# Reading the result: at this budget every model has seen the training set five times. The
# table measures how quickly each objective starts to produce a useful embedding under identical
# conditions, and how much that varies from seed to seed; it says nothing yet about the
# accuracy each loss reaches when trained to convergence, which is what the papers report. One
# would expect the objectives that act directly on distances within each batch (paper 001's
# pairs, paper 002's neighbours) to start faster than those that must first fit a classifier over
# the training identities (papers 000 and 004), and paper 003 to start slowest: its first stage
# trains the similarity discriminator alone, and its view mappings learn from pair labels only.
# Whether the run shown bears this out, gap by gap, is the next table's question.
#
# How large is the seed noise compared with the gaps between losses? The losses ranked by mean
# mAP, the gap to the next one, and whether that gap exceeds twice its standard error (a rough
# two-sided 95% criterion, with the per-run spread pooled over all losses):

# %%
labels = list(CONTENDERS)
means = {k: per_seed[k].mean() for k in labels}
order = sorted(labels, key=lambda k: -means[k])
pooled = float(np.sqrt(np.mean([per_seed[k].var(ddof=1) for k in labels]))) if len(seeds) > 1 else float("nan")
ranking = []
for i, k in enumerate(order):
    gap = means[k] - means[order[i + 1]] if i + 1 < len(order) else None
    # the standard error of a difference of two means of n runs is sd * sqrt(2 / n)
    resolved = None if gap is None or not np.isfinite(pooled) else ("yes" if gap > 2 * pooled * np.sqrt(2 / len(seeds)) else "no")
    ranking.append({"rank": i + 1, "loss": k, "mean mAP (%)": means[k], "gap to next (points)": gap,
                    "gap > 2 standard errors?": resolved})
make_table(ranking, title=f"ranking by mean mAP ({LABEL})",
           note=f"Pooled per-run standard deviation of mAP across seeds: {pooled:.1f} points; the standard error of "
                f"a difference of two {len(seeds)}-seed means is {pooled * np.sqrt(2 / len(seeds)):.1f} points.")

# %% [markdown]
# ## Provenance
#
# Every number above was read from these runs' `results.json`. The environment of each run
# (commit, versions, hardware) is listed on the {doc}`../book/reproducibility` page.

# %%
# NBVAL_IGNORE_OUTPUT
first = next(iter(results.values()))
print("commit:", first["git"]["commit"][:10], "(local changes)" if first["git"]["dirty"] else "")
print("versions:", ", ".join(f"{k} {v}" for k, v in first["versions"].items()))
print("hardware:", first["hardware"]["cpu"], f"({first['hardware']['cpu_cores']} cores, {first['hardware']['torch_threads']} threads)")
print("train time per run (s):", {f"{k[0]} s{k[1]}": round(r["timings"]["train_seconds_this_session"], 1) for k, r in results.items()})

# %% [markdown]
# ## The GPU version
#
# ```bash
# .venv/bin/papermill notebooks/benchmark.ipynb runs/benchmark-full.ipynb \
#     -f params/benchmark.full.yaml --cwd notebooks
# ```
#
# runs the same comparison with ResNet-50 on 256×128 inputs for 60 epochs per loss, on the
# Market-1501-sized SynthReID set by default (set `dataset: market1501` and `data_root` in the
# YAML file for the real dataset), over three seeds.
