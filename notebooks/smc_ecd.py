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
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # SMC + ECD: steering meta-centres and dispersed centres (paper 000)
#
# Borgia, Hua, Kodirov and Robertson, *Cross-view Discriminative Feature Learning for Person
# Re-Identification*, IEEE TIP 2018. The paper keeps one **sub-centre** per (identity, camera),
# pulls every feature toward the **sum** of its identity's sub-centres (the *meta-centre*, the
# SMC term), and adds a term that keeps the spread of a class small relative to its distance to
# every other identity's sub-centres (ECD). Both terms are added to the softmax loss of a
# ResNet-50.
#
# This chapter follows the book's six steps: what the paper claims, the loss derived from its
# equations (with the misprints we had to resolve), a numerical gradient audit, a 2-D toy that
# shows the geometry, a training run, and our numbers next to the paper's.

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display

from reid.papers import load_table

warnings.filterwarnings("ignore", category=FutureWarning)
# One CPU thread: the printed numbers are then bit-identical whatever OMP_NUM_THREADS says
# (nbval re-executes this notebook and compares them), and tiny kernels run no slower.
torch.set_num_threads(1)
torch.set_printoptions(precision=4)

# %% [markdown]
# ## 1. Claims
#
# The paper claims that
#
# * SMC alone beats the softmax, intra/inter group-centre (GCL) and centre losses on Market-1501
#   and CUHK03 with the same ResNet-50 and training protocol (Table III), and SMC+ECD improves
#   further on Market-1501 (six cameras) but not on CUHK03 (two cameras per identity);
# * the gain is largely a reduction of the *viewpoint problem*: fewer false matches taken by the
#   probe's own camera ("negatives of interest", Fig. 1, Table V) and a better mAP between
#   camera pairs (Fig. 10);
# * SMC+ECD features with the cosine similarity beat softmax features with a learned metric
#   (joint Bayesian, Table VI).
#
# The headline table is Table III, the loss-versus-loss comparison, where only the loss changes:

# %%
table3 = load_table("000", "Table III (Market-1501)")
display(table3)
display(load_table("000", "Table III (CUHK03)"))

# %% [markdown]
# ## 2. Derivation
#
# ### The objective (Eq. 1)
#
# A mini-batch holds $m$ pool5 features $x_i\in\mathbb{R}^{2048}$ with identity $y_i$ and camera
# $g_i$. The softmax loss is computed on the classifier (fc8) logits, the two new terms on the
# features:
#
# $$L = L_\text{softmax} + \lambda_\text{SMC}\,L_\text{SMC} + \lambda_\text{ECD}\,L_\text{ECD}.$$
#
# ### Sub-centres and the meta-centre (Eq. 2 and 3)
#
# For every identity $y$ and camera $j$ the paper keeps a **sub-centre** $c^{(j)}_y$, "calculated
# by averaging the points of $y$ that are viewed under camera $j$". Like the centre loss's centres
# they are not trained by back-propagation; after every iteration each sub-centre moves toward
# the batch features of its cell,
#
# $$\Delta c = \frac{\sum_{i \in \text{cell}} (c - x_i)}{1 + n_\text{cell}}, \qquad c \leftarrow c - \alpha\,\Delta c .$$
#
# The **meta-centre** of identity $y$, seen by $s_y$ cameras, is the *sum* of its sub-centres,
# and SMC pulls every feature to it:
#
# $$c^{(\text{SMC})}_y = \sum_{j=1}^{s_y} c^{(j)}_y, \qquad
#   L_\text{SMC} = \tfrac12 \sum_{i=1}^m \bigl\lVert x_i - c^{(\text{SMC})}_{y_i}\bigr\rVert_2^2 .$$
#
# Compare the centre loss's centre. Grouping an identity's $N$ images by camera ($N_j$ in camera
# $j$),
#
# $$c^{(\text{center})} = \frac1N \sum_{i=1}^N x_i = \sum_{j=1}^{s} \frac{N_j}{N}\, c^{(j)}
#   \qquad\text{(Eq. 3: the image-weighted mean of the sub-centres)},$$
#
# while the *unweighted* mean of the sub-centres, $\bar c = \frac1s \sum_j c^{(j)}$, gives every
# camera the same say. The meta-centre is $c^{(\text{SMC})} = s\,\bar c$.
#
# ```{admonition} Misprint: "scaled by a factor N"
# :class: warning
# The text calls the meta-centre "a scaled version, by a factor $N$, of the unweighted mean of the
# class sub-centres $\frac1N\sum_j c^{(j)}$". With $s$ sub-centres the unweighted mean is
# $\frac1s\sum_j c^{(j)}$, so the meta-centre is that mean scaled by $s$, the number of
# **cameras**, not by $N$, the number of images. Eq. 2 itself (a plain sum) is unambiguous and is
# what `reid.losses.SMCLoss` computes.
# ```
#
# **What SMC does to a feature.** With the sub-centres held fixed (they are constants for
# back-propagation),
#
# $$\frac{\partial L_\text{SMC}}{\partial x_i} = x_i - c^{(\text{SMC})}_{y_i}
#   = \bigl(x_i - \bar c_{y_i}\bigr) - (s_{y_i}-1)\,\bar c_{y_i}.$$
#
# The first part is the centre-loss pull toward the (unweighted) class mean: it shrinks the class.
# The second part is a push of the whole class *along its own mean direction, away from the
# origin*, $s-1$ times as strong as the class's distance from the origin: the "two potentials" of
# the paper's Fig. 3. Two consequences the paper leaves implicit, both visible in the toy below:
# for $s>1$ the meta-centre lies *outside* the class, so the loss never reaches 0 while the
# features are bounded and the drift must be held back by the softmax term and weight decay; and
# the result depends on where the origin is (SMC is not translation-invariant; the paper's Fig. 3
# "assumes" the origin at the centre of the point cloud, whereas pool5 features after a ReLU are
# non-negative).
#
# ### ECD (Eq. 4)
#
# ECD multiplies a class's **range** (the sum of the squared distances of $x_i$ to its own
# sub-centres, the solid lines of Fig. 6) by the sum of inverse squared distances to other
# identities' sub-centres (the dotted lines):
#
# $$L_\text{ECD} = \tfrac12 \sum_{i=1}^m
#   \underbrace{\sum_{j=1}^{s_i} \lVert x_i - c^{(j)}_{y_i} \rVert_2^2}_{A_i\ \text{(class range)}}
#   \;\cdot\; \underbrace{\sum_{t:\,y_t\neq y_i} \sum_{k=1}^{s_t} \frac{1}{\lVert x_i - c^{(k)}_{y_t}\rVert_2^2 + \varepsilon}}_{B_i\ \text{(closeness to the others)}} .$$
#
# ```{admonition} Ambiguity: which $t$ does ECD sum over?
# :class: warning
# Eq. 4 is printed with $\sum_{t=1,\,t\neq i}^{m}$: every *other image* of the batch, including
# images of the anchor's own identity. Their sub-centres include $c^{(g_i)}_{y_i}$, the very point
# SMC and the class range pull $x_i$ onto, so the printed sum contains
# $1/\lVert x_i - c^{(g_i)}_{y_i}\rVert^2 \to \infty$ exactly as training succeeds. Fig. 6 and the
# text ("the isolation of the reference identity from each of the *other* identities") support
# $y_t \neq y_i$, which is what `reid.losses.ECDLoss` implements. Two smaller choices: the sum runs
# over batch *images* $t$, so an identity with several images in the batch counts several times
# (`distinct_identities=True` counts it once), and a small $\varepsilon$ relative to the mean
# squared norm of the sub-centres keeps $1/d^2$ finite.
# ```
#
# Differentiating (sub-centres constant; Appendix A of the paper, "Loss derivatives", lost its
# equations in the text we have, so this is our derivation):
#
# $$\frac{\partial L_\text{ECD}}{\partial x_i}
#   = B_i \sum_{j=1}^{s_i}\bigl(x_i - c^{(j)}_{y_i}\bigr)
#   \;-\; A_i \sum_{t:\,y_t\neq y_i}\sum_{k} \frac{x_i - c^{(k)}_{y_t}}{\bigl(\lVert x_i - c^{(k)}_{y_t}\rVert^2+\varepsilon\bigr)^2}.$$
#
# The first term pulls $x_i$ toward the *unweighted* mean of its sub-centres, harder when other
# identities are close ($B_i$ large); the second pushes it away from the other identities'
# sub-centres, harder when its own class is wide ($A_i$ large) and with a force that grows like
# $1/d^3$ near a foreign sub-centre.
#
# ### Other readings we had to choose
#
# | what | the paper | our reading (`reid.recipes` smc_ecd, `reid.losses.smc_ecd`) |
# | --- | --- | --- |
# | $s_i$ | "the number of cameras that capture the identity" | cameras *seen so far* in training (all of them after one epoch) |
# | centre update rate $\alpha$ | not given | 0.5, the centre-loss paper's value |
# | $\lambda_\text{SMC}$, $\lambda_\text{ECD}$ | $\lambda_\text{SMC}=10^{-3}$ in the sweeps of Fig. 11–14; $\lambda_\text{ECD}$ only as curves | $10^{-3}$ for both at full scale |
# | GCL baseline | not defined in the paper | reconstructed from Sec. III-A and Expression 5 (`IntraGCLoss`, `InterGCLoss`) |
# | $\sum_i$ over the batch | a sum | divided by $m$ (`reduction="mean"`, as Caffe's loss layers) |

# %% [markdown]
# ## 3. Gradient audit
#
# The derived gradients of the centre loss, SMC and ECD (`reid.losses.printed_gradients`) against
# autograd on the loss modules, and autograd against central finite differences
# (`torch.autograd.gradcheck`), on random float64 features and sub-centres. Paper 000 prints no
# gradient we could check (its appendix lost its equations), so there is no "as printed" column.

# %%
from reid.losses import ECDLoss, SMCLoss
from reid.losses import printed_gradients as pg
from reid.losses.centers import CameraCenters, CenterLoss
from reid.viz import make_table

gen = torch.Generator().manual_seed(0)
m, dim, num_ids, num_cams = 16, 6, 5, 3
x = torch.randn(m, dim, generator=gen, dtype=torch.float64)
labels = torch.randint(0, num_ids, (m,), generator=gen)
camids = torch.randint(0, num_cams, (m,), generator=gen)
sub = CameraCenters(num_ids, num_cams, dim).to(torch.float64)  # sub-centres from 60 earlier "images"
sub.update(2 * torch.randn(60, dim, generator=gen, dtype=torch.float64),
           torch.randint(0, num_ids, (60,), generator=gen), torch.randint(0, num_cams, (60,), generator=gen))
centre_loss = CenterLoss(num_ids, dim, reduction="sum").to(torch.float64).eval()
centre_loss.centers.copy_(torch.randn(num_ids, dim, generator=gen, dtype=torch.float64))


smc = SMCLoss(sub, reduction="sum").eval()
ecd = ECDLoss(sub, reduction="sum").eval()
ecd_distinct = ECDLoss(sub, reduction="sum", distinct_identities=True).eval()
cases = {  # name: (derived closed form, the loss module as a function of the features)
    "centre loss": (pg.center_loss_grad(x, labels, centre_loss.centers), lambda v: centre_loss(v, labels)),
    "SMC (Eq. 2)": (pg.smc_grad(x, labels, sub), lambda v: smc(v, labels)),
    "ECD (Eq. 4, per image)": (pg.ecd_grad(x, labels, sub), lambda v: ecd(v, labels)),
    "ECD (Eq. 4, distinct ids)": (pg.ecd_grad(x, labels, sub, distinct_identities=True), lambda v: ecd_distinct(v, labels)),
}
rows = []
for name, (derived, loss_fn) in cases.items():
    xx = x.clone().requires_grad_(True)
    loss_fn(xx).backward()
    err = float((derived - xx.grad).abs().max())
    finite_diff_ok = torch.autograd.gradcheck(loss_fn, (x.clone().requires_grad_(True),), eps=1e-6, atol=1e-5)
    # the exact error depends on the CPU's floating-point order: show it against the threshold
    rows.append({"loss": name, "max |derived - autograd|": "< 1e-12" if err < 1e-12 else f"{err:.1e}",
                 "autograd = finite differences": finite_diff_ok,
                 "max |gradient|": float(xx.grad.abs().max())})
    assert err < 1e-10, (name, err)
    assert finite_diff_ok
display(make_table(rows, title="Gradient audit, paper 000 (float64, 16 random features, 5 identities x 3 cameras)",
                   formats={"max |gradient|": "{:.3g}"}))

# %% [markdown]
# SMC's gradient really is "centre loss toward the meta-centre": with the centre-loss centres set
# to the meta-centres, the two gradients coincide.

# %%
centre_loss.centers.copy_(sub.meta_centers(torch.arange(num_ids)))
err = float((pg.center_loss_grad(x, labels, centre_loss.centers) - pg.smc_grad(x, labels, sub)).abs().max())
print("max |centre-loss gradient (centres = meta-centres) - SMC gradient| < 1e-12:", err < 1e-12)
assert err < 1e-12

# %% [markdown]
# ## 4. Mechanism: the meta-centre in 2-D
#
# A toy cloud: four identities on a circle around the origin, three cameras with 12, 4 and 2
# images per identity, and a camera offset shared by everybody (two people under one camera can
# be closer than one person under two cameras: the viewpoint problem of the paper's Fig. 1).
# First the three "centres" of one identity (the paper's Fig. 5): the centre loss's centre sits
# next to the dominant camera, the unweighted mean treats the cameras equally, and the
# meta-centre is three times further from the origin than the unweighted mean.

# %%
from reid.viz import smc_ecd as toy

cloud = toy.camera_clusters(num_ids=4, num_cameras=3, centre=(0.0, 0.0), seed=0)
toy.plot_centre_definitions(cloud, identity=0)
plt.show()

# %% [markdown]
# SMC is not translation-invariant: the same cloud shifted by a constant vector has a different
# SMC loss (the meta-centre scales the position, not just the shape), while the centre loss does
# not change.

# %%
shift = torch.tensor([2.0, 1.0], dtype=torch.float64)
shifted = toy.ToyCloud(cloud.x + shift, cloud.y, cloud.g, cloud.num_ids, cloud.num_cameras)
for name, c in (("original", cloud), ("shifted by (2, 1)", shifted)):
    centres = toy.exact_camera_centers(c)
    smc_value = SMCLoss(centres, reduction="sum").eval()(c.x, c.y)
    centre = CenterLoss(c.num_ids, 2, reduction="sum").to(torch.float64).eval()
    centre.centers.copy_(torch.stack([c.x[c.y == u].mean(0) for u in range(c.num_ids)]))
    print(f"{name:>18}: SMC loss = {float(smc_value):8.2f}   centre loss = {float(centre(c.x, c.y)):6.2f}")

# %% [markdown]
# Now the dynamics of the paper's Fig. 3. The points themselves are the parameters: every step is
# one training-mode iteration (loss on the current centres, gradient step on the points, then the
# sub-centres move by the update rule). No softmax term, so we see what the centre terms do on
# their own: centre loss, SMC, SMC + ECD, and ECD alone.

# %%
sims = [
    toy.simulate(cloud, "center", steps=15, lr=0.05, snapshot_every=5),
    toy.simulate(cloud, "smc", steps=15, lr=0.05, snapshot_every=5),
    toy.simulate(cloud, "smc_ecd", steps=15, lr=0.05, lambda_ecd=0.01, snapshot_every=5),
    toy.simulate(cloud, "ecd", steps=15, lr=0.05, lambda_ecd=0.01, snapshot_every=5),
]
toy.plot_trajectories(cloud, sims)
plt.show()
toy.plot_simulation_curves(sims)
plt.show()
display(make_table([{"loss": s.loss, **{k: v for k, v in s.stats[-1].items() if k not in ("step", "loss")}} for s in sims]
                   + [{"loss": "(start)", **{k: v for k, v in sims[0].stats[0].items() if k != "step"}}],
                   columns=["loss", "origin_distance", "radius", "min_centre_gap", "ratio", "rank1"],
                   title="Toy cloud after 15 steps (lr 0.05); rank1 = cross-camera 1-NN accuracy, %",
                   formats={"origin_distance": "{:.2f}", "radius": "{:.3f}", "min_centre_gap": "{:.2f}", "ratio": "{:.2f}"}))

# %% [markdown]
# What the toy shows:
#
# * **SMC = centre loss + drift.** SMC shrinks every class exactly as fast as the centre loss (the
#   `radius` columns are equal: both gradients contract deviations from the class mean by the same
#   factor $1-\text{lr}$ per step) and on top of that moves every class outward along its own
#   direction, here by a factor of about $1+\text{lr}\,(s-1)$ per step. Separation relative to
#   class size (`ratio`) grows because the classes drift apart, not because they get tighter.
#   Nothing in SMC stops the drift; in training the softmax term, weight decay and batch
#   normalisation have to.
# * **ECD pushes classes apart with a $1/d^3$ force.** It helps most where a point sits near a
#   foreign sub-centre (the viewpoint-confused points), and it can overshoot: a point very close
#   to another identity's same-camera sub-centre gets a large kick, which widens its own class.
#   This is why $\lambda_\text{ECD}$ must be small and why the $\varepsilon$ matters.

# %% [markdown]
# ## 5. Training
#
# The parameters below are the defaults of the book build: SynthReID at the recipe's **smoke**
# scale (a narrow ResNet trained from scratch on 64x32 images) on the CPU, a few epochs per loss,
# so the whole notebook runs in about two minutes. The paper's setting (ResNet-50 from ImageNet,
# 224x224, 15000 iterations of batch 16, Market-1501) is one command away:
#
# ```bash
# papermill notebooks/smc_ecd.ipynb runs/smc_ecd-full.ipynb -f params/smc_ecd.full.yaml
# ```
#
# (set `data_root` in that file to your Market-1501 folder; it needs a GPU and ImageNet weights in
# the torchvision cache). `variants` lists the rows of Table III to train: `softmax`, `gcl`,
# `center`, `smc`, `smc_ecd`.

# %% tags=["parameters"]
dataset = "synthreid"
data_root = None
scale = "smoke"
backbone = None  # None: the recipe's model (small_resnet at smoke scale, resnet50 at full scale)
epochs = 8  # None: the recipe's length (16 epochs at smoke scale)
device = "cpu"
seed = 0
out_dir = "../runs/smc_ecd"
variants = ["softmax", "center", "smc", "smc_ecd"]

# %%
# NBVAL_IGNORE_OUTPUT
import time
from pathlib import Path

from reid.engine import train

overrides = {"model.name": backbone} if backbone else {}
runs, seconds = {}, {}
for variant in variants:
    start = time.perf_counter()
    runs[variant] = train("smc_ecd", dataset=dataset, root=data_root, scale=scale, device=device, epochs=epochs,
                          seed=seed, out=Path(out_dir) / variant, overrides={**overrides, "loss.name": variant},
                          progress=False)
    seconds[variant] = time.perf_counter() - start
    print(f"{variant:>8}: {seconds[variant]:5.1f} s -> {runs[variant]}")

# %% [markdown]
# ## 6. Results
#
# Every number below is read from the runs' `results.json` and `features.pt`. Our rows come from
# SynthReID at smoke scale on the CPU; the paper's rows are Market-1501 with a ResNet-50. Compare
# the ordering of the losses and the gaps, never the absolute values.

# %%
from reid.viz import compare_with_paper, load_results, run_label

PAPER_ROW = {"softmax": "Softmax", "gcl": "GCL", "center": "Center", "smc": "SMC", "smc_ecd": "SMC+ECD"}
results = {v: load_results(runs[v]) for v in variants}
label = run_label(results[variants[0]])
display(compare_with_paper({PAPER_ROW[v]: results[v]["metrics"] for v in variants}, table3,
                           columns=["mAP", "rank1", "rank5", "rank10"], ours_label=label))

# %% [markdown]
# How to read this table: one seed, a few epochs of a small network trained from scratch on
# synthetic images. Differences of a few points between the losses are within the seed-to-seed
# spread that the benchmark chapter measures, so this run can neither confirm nor refute the
# paper's ordering, which was measured with an ImageNet-pretrained ResNet-50 on Market-1501. What
# it does show is that every variant trains end to end with the same recipe, and what the
# analyses below look like; the full recipe reruns them at the paper's scale.
#
# ### CMC curves and embeddings

# %%
from reid.viz import plot_cmc, plot_tsne
from reid.study.run_features import load_run_features, run_distance, run_rank_metrics, run_records

features = {v: load_run_features(runs[v]) for v in variants}
distances = {v: run_distance(features[v]) for v in variants}
ranked = {v: run_rank_metrics(features[v], distances[v]) for v in variants}
plot_cmc({PAPER_ROW[v]: ranked[v] for v in variants}, title=f"CMC, {label}")
plt.show()

# %%
first, last = variants[0], variants[-1]
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
for ax, v in zip(axes, (first, last)):
    f = features[v]
    plot_tsne(f["gallery"], f["gallery_pids"], f["gallery_camids"], num_ids=10, ax=ax,
              title=f"{PAPER_ROW[v]}: gallery t-SNE (colour = identity)")
plt.show()

# %% [markdown]
# ### Ranked lists
#
# Query (blue frame) and its top-10 gallery images under the Market rule, for the softmax baseline
# and for the last variant. Red frames are false matches; their camera label shows which of them
# are *negatives of interest* (same camera as the query).

# %%
from reid.viz import show_ranked_lists

for v in (first, last):
    show_ranked_lists(run_records(features[v], "query"), run_records(features[v], "gallery"), distances[v], k=10,
                      num_queries=3, title=f"{PAPER_ROW[v]} ({label})")
    plt.show()

# %% [markdown]
# ### The viewpoint problem: negatives of interest and camera pairs
#
# Table V's figures of merit compare each loss with the softmax baseline:
# $F_\text{rank1} = (\text{Neg}_\text{softmax} - \text{Neg}_L)/(\text{rank1}_L - \text{rank1}_\text{softmax})$,
# where Neg is the percentage of false matches in the top-10 that come from the probe's own
# camera (`reid.metrics.analysis`; the paper gives no formula for Neg, see the errata page).
# A negative or very large $F$ just means the denominator is tiny at this scale.

# %%
from reid.metrics.analysis import camera_pair_map, figures_of_merit, negatives_of_interest, relative_improvement

labels_of = lambda f: (f["query_pids"].numpy(), f["gallery_pids"].numpy(), f["query_camids"].numpy(),
                       f["gallery_camids"].numpy())
noi = {v: negatives_of_interest(distances[v], *labels_of(features[v]), k=10) for v in variants}
rows = []
for v in variants:
    row = {"loss": PAPER_ROW[v], "Neg (% of top-10 false matches)": noi[v].percent,
           "rank1": 100 * ranked[v].rank1, "mAP": 100 * ranked[v].mAP}
    if v != first:
        row.update({k: f for k, f in figures_of_merit((ranked[first], noi[first]), (ranked[v], noi[v])).items()
                    if k in ("F_rank1", "F_mAP")})
    rows.append(row)
table5 = load_table("000", "Table V")
display(make_table(rows, title=f"Negatives of interest, {label}",
                   note=f"Paper ({table5.label}, Market-1501): "
                   + "; ".join(f"{m}: F_rank1 {table5.value(m, 'F_rank1')}, F_mAP {table5.value(m, 'F_mAP')}" for m in table5.methods)))

# %%
from reid.viz import plot_camera_pair_matrix

pair = {v: camera_pair_map(distances[v], *labels_of(features[v])) for v in (first, last)}
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
plot_camera_pair_matrix(pair[first].map, ax=axes[0],
                        title=f"camera-pair mAP, {PAPER_ROW[first]}")
gain = relative_improvement(pair[last], pair[first])
plot_camera_pair_matrix(gain, ax=axes[1], percent=False, cmap="RdBu", title=f"{PAPER_ROW[last]} vs {PAPER_ROW[first]}: relative change (%)")
plt.show()

# %% [markdown]
# SynthReID's cameras change colour, brightness and background of every identity they see, so the
# viewpoint problem is strong in this data: most top-10 false matches come from the query's own
# camera (the Neg column above), as in the paper's Fig. 1. With so small differences in rank-1 and
# mAP between the losses, the figures of merit (a ratio of two small differences) are not
# meaningful at smoke scale.
#
# ### Provenance
#
# Hardware, software versions and timings of the runs above (volatile, not checked by CI).

# %%
# NBVAL_IGNORE_OUTPUT
r = results[variants[0]]
print(label, "| seed", r["seed"], "| epochs", r["epochs"], "| iterations", r["iterations"])
print({k: r.get(k) for k in ("git", "hardware", "versions") if k in r})
print({v: results[v]["timings"] for v in variants})
