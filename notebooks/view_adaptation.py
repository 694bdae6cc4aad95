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
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Cross-entropy adversarial view adaptation (paper 003)
#
# Wu, Hong, Wang and Wang, *Cross-Entropy Adversarial View Adaptation for Person
# Re-identification* {cite:p}`wu2020cross`. Instead of one Siamese network shared by both
# cameras, the paper learns two **unshared mappings**, $M_s$ for the probe view and $M_t$ for
# the gallery view, and makes their outputs look alike with an adversarial game: a **view
# discriminator** $D_d$ learns to tell the views apart ({eq}`va-eq1`) while the mappings are
# trained to leave it undecided (the *view confusion* loss, {eq}`va-eq3`). A **similarity
# discriminator** $D_s$ on the concatenated pair, plus a contrastive term on the Euclidean distance
# {cite:p}`hadsell2006dimensionality`, keeps the common space discriminative ({eq}`va-eq2`), and an
# *adaptive weighting* of hard positive and negative pairs borrowed from MTMCT
# {cite:p}`ristani2018features` ({eq}`va-eq5`, {eq}`va-eq6`) gives the improved variant "Ours\*".
#
# This chapter follows the book's six steps: the claims, the derivation (Eq. 2, 5 and 6 have sign,
# weighting and normalisation problems; we say which reading is implemented and why), a gradient
# audit, a 2-D toy of the adversarial game, a training demonstration, and the registered evidence.

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import display

from reid.papers import load_paper, load_table

warnings.filterwarnings("ignore", category=FutureWarning)
# One CPU thread: the printed numbers are then bit-identical whatever OMP_NUM_THREADS says.
torch.set_num_threads(1)
torch.set_printoptions(precision=4)

# %% [markdown]
# ## 1. Claims
#
# The paper claims that
#
# * asymmetric mappings trained with a cross-entropy view-confusion objective and a jointly
#   learned similarity metric beat un/semi-supervised and supervised methods on VIPeR, CUHK03,
#   Market-1501 and DukeMTMC-reID (Tables II–V), without large numbers of labelled pairs, and beat
#   domain-adaptation methods used for view adaptation, such as ADDA
#   {cite:p}`tzeng2017adversarial` (Table VII);
# * adaptive weights on the hardest positive and negative pairs ("Ours\*") improve every dataset:
#   +4.6 rank-1 on VIPeR (Table II), +2.3 on CUHK03, +1.9 on Market-1501, and +32.9 on
#   DukeMTMC-reID (47.2 → 80.1, Table V), a gain fifteen times the others that no experiment
#   isolates;
# * unshared mappings are needed because a Siamese network "must handle images from two disjoint
#   distributions" (Sec. I and III-C) — the paper's motivation — and asymmetric backbones (M-Net
#   for $M_s$, D-Net for $M_t$) beat "two identical ResNet networks" (Table VI).
#
# ```{admonition} Table VI does not show what the text says
# :class: warning
# The text reads Table VI as "two identical ResNet networks are inferior to the asymmetric
# architectures". The table shows **51.3 vs 51.3** rank-1 on VIPeR (a tie) and **86.6 vs 86.4** on
# CUHK03 (0.2 points, no spread reported), and the reversed asymmetric pair (D-Net, M-Net) is
# *worse* than the identical ResNets on both datasets. The comparison also swaps the network
# family, and both rows keep unshared weights: the Siamese baseline that motivates the paper is
# never run. We register that comparison ourselves (below) and list the problem in the
# {doc}`../book/errata`.
# ```
#
# The two-view table our evidence imitates (VIPeR, Table II), the Market-1501 headline (Table IV)
# and the architecture table (Table VI):

# %%
table2 = load_table("003", "Table II")
table4 = load_table("003", "Table IV")
display(table2)
display(table4)
display(load_table("003", "Table VI"))

# %% [markdown]
# ### The claims we test
#
# Each claim is registered in `reid/papers/003.json` with its variants, metric, expected direction
# and decision rule, fixed before any evidence run. The study trains every variant on
# **SynthReID's two-view layout** (`data.layout: two_view`: a VIPeR-style set where each of 632
# people has one image per camera, so a view really is a camera; 316 people for training, 316 for
# testing) and measures **rank-1 of the single-shot CMC** (`eval.protocol: single_shot`: every
# test person's camera-A image probes the 316 camera-B images; the protocol's 10 random draws
# coincide because there is one image per view). With 316 probes rank-1 moves in steps of 0.32
# points. A claim is `supported` when the whole 95 % interval of the seed-paired difference lies on
# the expected side of zero, `contradicted` when it lies wholly on the other side, `inconclusive` otherwise.

# %%
from reid.viz import make_table

registry = load_paper("003")
study = registry["study"]
display(make_table(
    [{"claim": c["id"], "source": c["source"], "variant": c["test"]["variant"], "baseline": c["test"]["baseline"],
      "metric": c["test"]["metric"], "expected": f"variant {'>' if c['test']['expected'] == 'greater' else '<'} baseline",
      "rule": c["test"]["rule"]["name"],
      "paper": (f"{c['paper']['baseline']} → {c['paper']['variant']} ({c['paper']['metric']}, {c['paper']['dataset']})"
                if c["paper"] else "–")}
     for c in registry["claims"]],
    title=f"Registered claims (SynthReID two-view, {study['scale']} scale, {study['seeds']} seeds)"))
display(make_table([{"variant": k, "recipe overrides": ", ".join(f"{a}={b}" for a, b in v.items())}
                    for k, v in study["variants"].items()], title="Variants"))

# %% [markdown]
# ## 2. Derivation
#
# ### The players
#
# Probe-view images $x_s\sim X_s$ and gallery-view images $x_t\sim X_t$ are mapped by $M_s$ and
# $M_t$ (no shared weights). $D_d(\cdot)\in(0,1)$ is the probability that a mapped feature comes
# from the probe (source) view; $D_s(M_s(x_s), M_t(x_t))\in(0,1)$ the probability that a pair shows
# one person; $d(x_s,x_t) = \lVert M_s(x_s) - M_t(x_t)\rVert_2$ the Euclidean distance of the pair
# in the common space, which is also what retrieval ranks with.
#
# ### The view discriminator (Eq. 1) and the view confusion (Eq. 3)
#
# $$\min_{D_d} L_{D_d} = -\mathbb{E}_{x_s}\bigl[\log D_d(M_s(x_s))\bigr]
#   - \mathbb{E}_{x_t}\bigl[\log\bigl(1 - D_d(M_t(x_t))\bigr)\bigr]$$ (va-eq1)
#
# is the binary cross-entropy of a view classifier. The mappings do *not* maximise it (that would
# be the GAN minimax {cite:p}`goodfellow2014generative`); they minimise the cross-entropy against
# the **uniform** distribution over the two views:
#
# $$\min_{M_s,M_t} L_M = -\sum_{d\in\{s,t\}} \mathbb{E}_{x_d}\Bigl[\tfrac12\log D_d(M_d(x_d))
#   + \tfrac12\log\bigl(1 - D_d(M_d(x_d))\bigr)\Bigr].$$ (va-eq3)
#
# With $D_d = \sigma(z)$, one sample's term $-\tfrac12\log\sigma(z) - \tfrac12\log\sigma(-z)$ has
# derivative
#
# $$\frac{\partial L_M}{\partial z} = \sigma(z) - \tfrac12 ,$$ (va-eq3-grad)
#
# "prediction minus the uniform target": zero exactly when $D_d$ is undecided, the same rule for
# probe and gallery samples, and bounded (it does not vanish when $D_d$ is confident, unlike the
# minimax GAN loss). $L_M \ge 2\log 2$, with equality iff $D_d = \tfrac12$ on every feature.
# $D_d$ is "two fully-connected layers with a soft-max" (`reid.models.view_adaptation`): two
# logits, for which the same derivative reads $\mathrm{softmax}(z) - (\tfrac12,\tfrac12)$.
#
# ### The similarity discriminator (Eq. 2) — two problems
#
# As printed,
#
# $$L_{D_s} = -\mathbb{E}\Bigl[\sum y\log D_s\Bigr]
#   \;-\;\gamma\,\mathbb{E}\Bigl[\sum (1-y)\max(0, m - d)^2 + y\,d^2\Bigr]$$ (va-eq2-printed)
#
# with $y=1$ for a positive pair, $m = 2$, $\gamma = 2.5$. (The paper calls $Y$, the set $y$ is
# drawn from, "the number of identities"; it is the set of pair labels.)
#
# ```{admonition} Misprints in Eq. 2 and the reading implemented
# :class: warning
# * **Sign of the contrastive term.** With $-\gamma$, minimising {eq}`va-eq2-printed` would
#   *maximise* $y\,d^2$ (push positives apart) and pull negatives inside the margin, the opposite of
#   the text and Fig. 3 ("minimise the distances between positive examples, and maximise the
#   distances between negative ones"). We add it: $+\gamma$, the standard contrastive loss.
# * **The classification term has only $y\log D_s$.** On negative pairs it is 0, so $D_s\equiv 1$
#   would minimise it; a discriminator "to distinguish positive pairs against negatives" needs the
#   binary cross-entropy $-[y\log D_s + (1-y)\log(1-D_s)]$ (`pair_term="bce"`, the default;
#   `pair_term="positive_only"` keeps the literal term).
# * "$\mathbb{E}[\sum\cdot]$" over pairs is read as the mean over the pairs of the batch.
# ```
#
# Per pair, the implemented loss (`reid.losses.SimilarityDiscriminatorLoss`) is
#
# $$\ell = -\bigl[y\log D_s + (1-y)\log(1-D_s)\bigr] + \gamma\bigl[(1-y)\max(0,m-d)^2 + y\,d^2\bigr].$$ (va-eq2)
#
# ### Adaptive weights (Eq. 5 and 6) — where the negatives meet the margin
#
# For one probe $x_s$ with gallery positives $P(x_s)$ and negatives $N(x_s)$ in the batch, the
# paper prints
#
# $$L^*_{D_s} = \sum_{x_p\in P}\bigl[\log D_s(x_s,x_p) + w_p\,d_p^2\bigr]
#   - \gamma\sum_{x_n\in N}\max(0, m - w_n d_n)^2$$ (va-eq5-printed)
#
# $$w_p = \frac{e^{d_p}}{\sum_{P} e^{d_{p'}}}, \qquad
#   w_n = \frac{e^{-d_n}}{\sum_{N} e^{+d_{n'}}} .$$ (va-eq6)
#
# The paper takes these weights from MTMCT {cite:p}`ristani2018features`, whose adaptive weighted
# triplet loss is $\bigl[m + \sum_P w_p d_p - \sum_N w_n d_n\bigr]_+$: the weighted sums sit inside
# **one hinge per anchor**, so the soft-min weighted negative distance — close to the hardest
# negative's — is what must clear the margin.
#
# ```{admonition} Problems in Eq. 5 and 6 and the reading implemented
# :class: warning
# * $\log D_s$ has lost its minus sign (as printed, minimising drives $D_s\to0$ on positives);
#   the $-\gamma$ in front of the negative hinge has the same sign problem as Eq. 2; and $\gamma$
#   weighs only the negatives. We read Eq. 5 as "Eq. 2 with weights": the same binary
#   cross-entropy and $+\gamma$ on the whole contrastive part.
# * **Eq. 6's soft-min denominator prints $e^{+d}$.** The printed soft-min weights do not sum to 1
#   (they are tiny: $e^{-d}/\sum e^{+d}$). We use $e^{-d}$ in numerator and denominator, so that the
#   hardest (closest) negative gets the largest weight and the weights of a row sum to 1.
# * **Where $w_n$ meets the margin.** As printed, each negative has its own hinge
#   $\max(0, m - w_n d_n)$. With normalised weights $w_n\approx 1/|N|$, so $w_n d_n$ stays far below
#   $m$: the hinge is active on almost every negative and is never satisfied, and (section 3) its
#   gradient *pulls* most negative pairs together once the features have a realistic scale. We
#   implement MTMCT's placement, one hinge per anchor on $\sum_N w_n d_n$
#   (`negative_hinge="anchor"`, the default), and keep the printed one as an option
#   (`negative_hinge="pair"`); the study runs both.
# * **Are the weights differentiated?** Eq. 6 defines them as functions of $d$; MTMCT's code
#   differentiates through them. The text uses them to "assign larger weights to difficult
#   samples", i.e. to weigh each pair's pull or push, and differentiating through the soft-min's
#   normaliser rewards pulling *far* negatives in (section 3). We hold them constant for the
#   gradient (`detach_weights=True`, the default); `detach_weights=False` is MTMCT's choice.
# ```
#
# $$\ell(x_s) = \sum_{P} -\log D_s + \sum_{N} -\log(1-D_s)
#   + \gamma\Bigl[\sum_{P} w_p d_p^2 + \max\Bigl(0,\, m - \sum_{N} w_n d_n\Bigr)^2\Bigr],\quad
#   w = \mathrm{softmax}_P(d),\ \mathrm{softmax}_N(-d).$$ (va-eq5)
#
# Its gradient with respect to the distances (per anchor; derived in
# `reid.toys.view_adaptation.similarity_grads`), with $D = \sum_N w_n d_n$ and $h = \max(0, m - D)$,
# is, with the weights held constant,
#
# $$\frac{\partial \ell}{\partial d_q} = 2\gamma\,w_q d_q\ (q\in P),
#   \qquad
#   \frac{\partial \ell}{\partial d_q} = -2\gamma\,h\,w_q\ (q\in N):$$ (va-eq5-grad)
#
# every positive is pulled and every negative pushed, each in proportion to its weight, the hardest
# ones most, until the soft-min negative distance clears the margin. Differentiated through the
# weights ($\partial w_p/\partial d_q = w_p(\delta_{pq}-w_q)$, $\partial w_n/\partial d_q = -w_n(\delta_{nq}-w_q)$)
# the factors become $w_q(2d_q + d_q^2 - \sum_P w_p d_p^2)$ and $-2h\,w_q(1 - d_q + D)$: positives
# nearer than the weighted mean are pushed apart, and negatives farther than $1 + D$ are pulled in.
# For the printed placement with differentiated weights, $h_n = \max(0, m - w_n d_n)$,
#
# $$\frac{\partial \ell}{\partial d_q} = -2\gamma\,w_q\Bigl(h_q\,(1-d_q) + \sum_N h_n w_n d_n\Bigr)\ (q\in N),$$ (va-eq5-pair-grad)
#
# which turns positive (pulls the pair together) once $h_q(d_q - 1)$ exceeds the coupling sum —
# roughly for every negative farther than one unit beyond the weighted mean distance — and the
# hinge never switches off. Finally
# $\partial d_{ij}/\partial M_s(x_s^i) = (M_s(x_s^i) - M_t(x_t^j))/d_{ij} = -\partial d_{ij}/\partial M_t(x_t^j)$.
#
# ### Training (Algorithm 1, Eq. 4) and the other readings
#
# | what | the paper | our reading (`reid/recipes/view_adaptation.yaml`, `reid.engine.objectives`) |
# | --- | --- | --- |
# | stage 0 | $M_s$, $M_t$ "pre-trained on ImageNet and fine-tuned on target $C_{train}$" with a $K$-way soft-max (Alg. 1 lines 1–2; line 2 says "Initialise $D_s$", but $D_s$ is fully connected) | each mapping gets a $K$-way classifier and identity cross-entropy for `finetune_epochs`, on all training images; the classifiers are then dropped |
# | stage 1 | "Train $D_s$ using Eq. (2)" | $D_s$, $M_s$, $M_t$ on {eq}`va-eq5` (Ours\*) or {eq}`va-eq2` (Ours) for `similarity_epochs` |
# | stage 2 | "while not convergent: train $D_d$ (Eq. 1), update $M_s, M_t$ (Eq. 3)" | `dd_steps` $D_d$ steps on detached features, then a mapping step on {eq}`va-eq3` **plus** {eq}`va-eq5` (Eq. 4 keeps $\min_{M_s,M_t,D_s} L_{D_s}$ in the objective) |
# | which mappings adapt | Sec. III-B: "$M_t$ is updated adversarially to match $M_s$"; Sec. III-C and Eq. 3: both | both (`update: both`); `update: gallery` holds $M_s$ fixed |
# | Siamese baseline | argued against, never run | `model.shared: true`, one mapping for both views |
# | augmentation | "we do not perform data augmentation" (Sec. IV-B) | none (`flip: false`) |
# | schedule | lr $10^{-3}$, ÷10 every 10 epochs; each stage stopped on $C_{valid}$ | the schedule restarts in each stage (`stage_schedule: restart`), fixed stage lengths |
# | views on Market-1501 | "for each person we randomly select two cameras" | the cross-view sampler picks a probe and a gallery camera per identity; queries through $M_s$, gallery through $M_t$ |
# | embedding | "convolution layers … used as $M_s$ ($M_t$)" | conv trunk + global average pooling (512-d for the VGGs {cite:p}`simonyan2015very,chatfield2014return`) |
# | $D_d$ width, optimiser, momentum | not given | 512; SGD, momentum 0.9, weight decay $5\cdot10^{-4}$ |
# | batch | "SP batches" (MTMCT), 128 images | P = 32 identities × S = 4 images, half per view; every probe × gallery pair of the batch |

# %% [markdown]
# ## 3. Gradient audit
#
# The paper prints no gradient, so the audit compares the closed forms of the derivation
# (`reid.toys.view_adaptation`) with autograd through the library losses, in float64 on random
# inputs: the logit gradients of {eq}`va-eq1` and {eq}`va-eq3` (one-logit and two-logit
# discriminators), the gradients of {eq}`va-eq2` and of both placements of {eq}`va-eq5` with
# respect to the $D_s$ logits and the distances, and the chain rule down to the two mappings'
# features.

# %%
from reid.losses import SimilarityDiscriminatorLoss, ViewConfusionLoss, ViewDiscriminatorLoss
from reid.metrics.distance import euclidean
from reid.toys import view_adaptation as toys
from reid.viz import view_adaptation as va

gen = torch.Generator().manual_seed(0)


def small(err: float) -> str:  # the exact value depends on the CPU's floating-point order
    return "< 1e-12" if err < 1e-12 else f"{err:.1e}"


rows = []
for shape, what in (((9,), "one logit, Dd = σ(z)"), ((9, 2), "two logits, softmax")):
    z_s = torch.randn(*shape, generator=gen, dtype=torch.float64, requires_grad=True)
    z_t = torch.randn(7, *shape[1:], generator=gen, dtype=torch.float64, requires_grad=True)
    for name, loss, closed in (("Eq. 1 (view discriminator)", ViewDiscriminatorLoss(), toys.view_discriminator_logit_grad),
                               ("Eq. 3 (view confusion)", ViewConfusionLoss(), toys.view_confusion_logit_grad)):
        auto = torch.autograd.grad(loss(z_s, z_t), (z_s, z_t))
        mine = closed(z_s.detach(), z_t.detach())
        err = max(float((a - b).abs().max()) for a, b in zip(auto, mine))
        rows.append({"loss": name, "w.r.t.": f"Dd logits ({what})", "max |closed form − autograd|": small(err)})
        assert err < 1e-10, (name, what, err)

# 6 probe and 6 gallery features of 3 identities (2 per view each), 5-d
f_s = 0.7 * torch.randn(6, 5, generator=gen, dtype=torch.float64)
f_t = 0.7 * torch.randn(6, 5, generator=gen, dtype=torch.float64)
pid = torch.arange(3).repeat_interleave(2)
same = pid[:, None] == pid[None, :]
logits = torch.randn(6, 6, generator=gen, dtype=torch.float64)
READINGS = {"Eq. 2 (read)": dict(adaptive=False),
            **{f"Eq. 5–6, {name}": dict(adaptive=True, **kw) for name, kw in toys.READINGS.items()}}
for name, kw in READINGS.items():
    loss = SimilarityDiscriminatorLoss(margin=2.0, gamma=2.5, **kw)
    lg = logits.clone().requires_grad_(True)
    d = euclidean(f_s, f_t).detach().requires_grad_(True)
    g_logit, g_d = torch.autograd.grad(loss(lg, d, same), (lg, d))
    c_logit, c_d = toys.similarity_grads(logits, d.detach(), same, margin=2.0, gamma=2.5, **kw)
    a, b = f_s.clone().requires_grad_(True), f_t.clone().requires_grad_(True)
    g_a, g_b = torch.autograd.grad(loss(logits, euclidean(a, b), same), (a, b))
    c_a, c_b = toys.distance_grad_to_features(c_d, f_s, f_t)
    for what, err in (("Ds logits", float((g_logit - c_logit).abs().max())),
                      ("distances d", float((g_d - c_d).abs().max())),
                      ("features Ms(x_s), Mt(x_t)", max(float((g_a - c_a).abs().max()), float((g_b - c_b).abs().max())))):
        rows.append({"loss": name, "w.r.t.": what, "max |closed form − autograd|": small(err)})
        assert err < 1e-10, (name, what, err)
display(make_table(rows, title="Gradient audit, paper 003 (float64, random inputs)"))

# %% [markdown]
# Eq. 6 as printed against the normalised weights, on the same 6 × 6 distance matrix: each row's
# positive weights sum to 1 either way; the printed soft-min weights of the negatives do not.

# %%
from reid.losses.view_adaptation import adaptive_weights

d = euclidean(f_s, f_t)
w_p, w_n = adaptive_weights(d, same)
_, w_n_printed = adaptive_weights(d, same, printed=True)
display(make_table(
    [{"probe": i, "Σ w_p": float(w_p[i].sum()), "Σ w_n (normalised)": float(w_n[i].sum()),
      "Σ w_n (printed Eq. 6)": float(w_n_printed[i].sum()),
      "largest w_n goes to the closest negative": bool(w_n[i].argmax() == torch.where(~same[i], d[i], torch.inf).argmin())}
     for i in range(len(d))],
    title="Row sums of the Eq. 6 weights (one probe per row)", fmt="{:.3f}"))
assert torch.allclose(w_n.sum(1), torch.ones(6, dtype=torch.float64))
assert bool((w_n_printed.sum(1) < 0.5).all())

# %% [markdown]
# ### What the negative term does to each negative pair
#
# The full recipe's batch (32 identities × 4 images: 64 probe × 64 gallery features of 512
# dimensions, the VGG embedding), with random features whose per-dimension spread `std` sets the
# distance unit against the margin $m = 2$ (the recipe does not normalise features). For every
# negative pair: is its hinge active, and does gradient descent on $\ell$ pull it *together*
# ($\partial\ell/\partial d > 0$)? `pulled |g|` is the share of the negatives' total gradient that
# pulls. Four readings: the hinge per negative pair (as printed) or per anchor (MTMCT), with the
# weights differentiated through or held constant. The same table, for any trained run, is printed
# by `python -m reid.toys.view_adaptation RUN_DIR`.

# %%
census = toys.census_table(toys.census_batches())
display(make_table(census, title="Negative pairs of the full recipe's SP batch (random features)",
                   formats={"median_d": "{:.2f}", "active": "{:.0f}", "pulled": "{:.0f}", "pushed": "{:.0f}",
                            "pulled_mass": "{:.0f}"}))

# %%
# NBVAL_IGNORE_OUTPUT
(d_big, same_big), = toys.census_batches(stds=(1.0,)).values()
panels = {}
for name, kw in (("per-pair hinge, differentiated weights (former default)", {"negative_hinge": "pair", "detach_weights": False}),
                 ("per-anchor hinge, frozen weights (default)", {})):
    _, g = toys.similarity_grads(torch.zeros_like(d_big), d_big, same_big, adaptive=True, reduction="sum", **kw)
    panels[name] = (d_big[~same_big].numpy(), g[~same_big].numpy())
va.plot_negative_gradients(panels)
plt.show()

# %% tags=["hide-input"]
pair_rows = [r for r in census if r["reading"].startswith("per-pair")]
assert all(r["active"] > 90 for r in pair_rows)  # the printed hinge is (almost) never satisfied
assert all(r["pulled"] == 0 for r in census if r["reading"].startswith("per-anchor"))

# %% [markdown]
# With the printed placement the hinge is active on (nearly) every negative at every scale; with
# the weights differentiated through, once negative distances spread over more than a unit — at
# the scale of unnormalised VGG features — most negative pairs are pulled *together*, with up to
# half of the gradient mass. With one hinge per anchor no negative is pulled on these batches, and
# the hinge is switched off once the soft-min negative distance clears the margin, as a margin
# should be. Section 5 repeats the count on trained features, where the differentiated per-anchor
# form pulls some far negatives too; the errata entry gives the measured fractions.

# %% [markdown]
# ## 4. Mechanism: view confusion in 2-D
#
# A toy of Algorithm 1. Six identities sit at random points of the plane; the probe view sees them
# as they are, the gallery view through a fixed affine "camera" (rotated by 70°, stretched,
# shifted), so before adaptation a probe is closer to other people in its own view than to itself
# in the other view. $M_s$ and $M_t$ are affine maps (initialised to the identity), $D_d$ and $D_s$
# small MLPs. Only **two** identities are labelled for the similarity term (filled markers); the
# others (hollow) only take part in the view confusion. Each step: one $D_d$ step on {eq}`va-eq1`,
# then one step of the mappings on {eq}`va-eq3` and/or {eq}`va-eq5` — the library losses throughout.
#
# We track what $D_d$ tries to detect without using $D_d$: the **kNN view accuracy** (the share of
# each point's 5 nearest neighbours that come from its own view; 50 % = the views are mixed), the
# cross-view rank-1 over all six identities, and $D_d$'s mean output on each view.

# %%
toy = toys.two_view_toy(num_ids=6, per_view=6, labelled_ids=2, seed=0)
toy_runs = [
    toys.simulate(toy, confusion=False, similarity=True, steps=300),
    toys.simulate(toy, confusion=True, similarity=True, steps=300),
    toys.simulate(toy, confusion=True, similarity=False, steps=300),
]

# %% tags=["hide-input"]
va.plot_toy_runs(toy, toy_runs)
plt.show()
va.plot_toy_curves(toy_runs)
plt.show()

# %%
display(make_table(va.toy_table_rows(toy_runs), title="Toy after 300 steps (seed 0)",
                   formats={"mean_gap": "{:.2f}", "spread": "{:.2f}", "Dd(source)": "{:.2f}", "Dd(target)": "{:.2f}"}))

# %% [markdown]
# The same three settings on four toy draws (seeds 0–3):

# %%
settings = {"similarity": {"confusion": False}, "confusion + similarity": {}, "confusion": {"similarity": False}}
sweep = toys.seed_sweep(range(4), settings, steps=300, labelled_ids=2)
display(make_table(sweep, title="Toy, end of training, four data seeds", formats={"Dd gap": "{:.2f}", "rank1": "{:.0f}",
                                                                                 "knn_view_acc": "{:.0f}"}))

# %% [markdown]
# What the toy shows (four draws of a 2-D toy: an illustration of the mechanism, not evidence):
#
# * **Confusion + similarity makes the views indistinguishable.** With the view confusion the kNN
#   view accuracy falls towards 50 % and $D_d$ ends undecided on both views; with the similarity
#   term alone the two labelled identities are matched but the views stay more separable.
# * **Aligned distributions are not aligned identities.** Confusion acts on the two *clouds*, not
#   on who is who: the cross-view rank-1 over all identities improves on some draws and not on
#   others. The labelled pairs are what fixes the correspondence, which is why we keep
#   {eq}`va-eq5` in the mapping update (Eq. 4).
# * **Confusion alone does not settle.** Without the similarity term both mappings chase a moving
#   discriminator; nothing anchors the common space.
#
# On a two-view re-ID set every labelled positive pair is a cross-view pair, so the similarity
# term itself already pulls the views together. How much is left for the view confusion to do is
# an empirical question; the study's `view_confusion_helps` claim asks it.

# %% [markdown]
# ## 5. Training
#
# The resolved **full** recipe (the paper's setting as far as it is stated; every value the paper
# does not give is marked "not stated" in `reid/recipes/view_adaptation.yaml`):

# %% tags=["hide-output"]
import yaml

from reid.recipes import load_recipe

print(yaml.safe_dump({k: v for k, v in load_recipe("view_adaptation", "full").items() if k != "choices"},
                     sort_keys=False, default_flow_style=None))

# %% [markdown]
# The cell below is a **demonstration that the pipeline runs, not evidence**: one seed of three
# variants at the recipe's **smoke** scale (two small ResNet mappings trained from scratch on
# 64×32 SynthReID images in the Market-1501 layout, a probe and a gallery camera per identity, on
# the CPU), a couple of minutes in all. The evidence is the multi-seed study of section 6. The
# paper's setting (M-Net / D-Net from ImageNet at 224×224, batch 128, Market-1501) is one command
# away:
#
# ```bash
# papermill notebooks/view_adaptation.ipynb runs/view_adaptation-full.ipynb -f params/view_adaptation.full.yaml --cwd notebooks
# ```
#
# (set `data_root` in that file to the folder that contains `Market-1501-v15.09.15/`; it needs a
# GPU, and ImageNet weights in the torchvision cache for VGG-16; VGG-M has no torchvision weights,
# see the recipe). The variant names are the registry's (`reid/papers/003.json`), plus two that
# only make sense with the paper's two different backbones: `reversed` (Table VI's (D-Net, M-Net)
# row) and, for `shared`, one D-Net for both views.

# %% tags=["parameters"]
dataset = "synthreid"
data_root = None
scale = "smoke"
backbone = None  # None: the recipe's mappings (Ms = VGG-M, Mt = VGG-16); e.g. "resnet50" for Table VI's ResNet row
epochs = None  # None: the recipe's length
similarity_epochs = None  # stage 1 length; None: the recipe's
device = "cpu"
seed = 0
out_dir = None  # None: a fresh temporary folder per execution; a path keeps the runs (and resumes them)
max_iterations = None  # N: a dry run, every training stopped after N optimisation steps (try scale="full")
variants = ["ours_star", "ours", "ours_star_pair_hinge"]
evidence_dir = "../evidence"  # where `reid study view_adaptation` wrote view_adaptation.json

# %%
# NBVAL_IGNORE_OUTPUT
import time
from pathlib import Path

from reid.engine import notebook_run_dir, train

out_dir = notebook_run_dir("view_adaptation", out_dir)

VARIANT_OVERRIDES = {**study["variants"], "reversed": {"model.ms": "vgg16", "model.mt": "vgg_m"}}
PAPER_ROW = {"ours_star": "Ours*", "ours": "Ours", "ours_star_pair_hinge": "Ours*, printed hinge",
             "shared": "Ours*, shared mapping", "no_confusion": "Ours*, no view confusion",
             "gallery_only": "Ours*, only Mt adapts", "reversed": "Ours*, (D-Net, M-Net)"}
overrides = {"model.ms": backbone, "model.mt": backbone} if backbone else {}
if similarity_epochs is not None:
    overrides["loss.similarity_epochs"] = similarity_epochs
recipe_model = load_recipe("view_adaptation", scale, overrides)["model"]
runs, seconds = {}, {}
for variant in variants:
    over = {**overrides, **VARIANT_OVERRIDES[variant]}
    if over.get("model.shared") and recipe_model["ms"] != recipe_model["mt"]:
        over.update({"model.ms": recipe_model["mt"], "model.ms_weights": recipe_model["mt_weights"]})  # one D-Net
    start = time.perf_counter()
    runs[variant] = train("view_adaptation", dataset=dataset, root=data_root, scale=scale, device=device,
                          epochs=epochs, seed=seed, out=Path(out_dir) / variant, overrides=over, max_iterations=max_iterations, progress=False)
    seconds[variant] = time.perf_counter() - start
    print(f"{variant:>22}: {seconds[variant]:5.1f} s -> {runs[variant]}")

# %% [markdown]
# Our rows (one smoke seed; SynthReID, not Market-1501) under the paper's Table IV. Compare the
# ordering of the variants, never the absolute values, and do not read a gap from one seed.

# %%
from reid.study.run_features import load_run_features, run_distance, run_rank_metrics, run_records
from reid.viz import compare_with_paper, load_log, load_results, run_label

results = {v: load_results(runs[v]) for v in variants}
label = run_label(results[variants[0]])
features = {v: load_run_features(runs[v]) for v in variants}
distances = {v: run_distance(features[v]) for v in variants}
ranked = {v: run_rank_metrics(features[v], distances[v]) for v in variants}
ours = {PAPER_ROW[v]: {"R1": 100 * ranked[v].rank1, "R5": 100 * float(ranked[v].cmc[4]),
                       "R20": 100 * float(ranked[v].cmc[19]), "mAP": 100 * ranked[v].mAP} for v in variants}
display(compare_with_paper(ours, table4, methods=["Ours", "Ours*"], ours_label=f"{label}, one seed, demonstration",
                           ours_units="percent"))

# %% [markdown]
# ### The stages in the training logs
#
# Per epoch of the first variant: the stage, the identity loss of stage 0, the contrastive part of
# the similarity loss, the share of active negative hinges, and in stage 2 the view
# discriminator's loss ({eq}`va-eq1`; $2\log 2\approx1.386$ when it cannot tell the views apart)
# and the view-confusion loss ({eq}`va-eq3`; minimum $2\log 2$).

# %%
log = load_log(runs[variants[0]])
display(make_table([{k: r.get(k) for k in ("epoch", "stage", "lr", "identity", "contrastive", "active_negative_hinges",
                                           "view_discriminator", "confusion")} for r in log],
                   title=f"{PAPER_ROW[variants[0]]}: training log, {label}", fmt="{:.3g}"))

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
for v in variants:
    log = [r for r in load_log(runs[v]) if "view_discriminator" in r]
    if log:
        axes[0].plot([r["epoch"] for r in log], [r["view_discriminator"] for r in log], marker="o", label=PAPER_ROW[v])
        axes[1].plot([r["epoch"] for r in log], [r["confusion"] for r in log], marker="o", label=PAPER_ROW[v])
for ax, name in zip(axes, ("Dd loss (Eq. 1)", "view confusion (Eq. 3)")):
    ax.axhline(2 * np.log(2), color="gray", ls="--", lw=0.8)
    ax.set_xlabel("epoch")
    ax.set_ylabel(name)
    ax.grid(alpha=0.3)
axes[0].legend(fontsize="small")
plt.show()

# %% [markdown]
# ### How far apart are the two views in the trained space?
#
# The toy's measures on the real embeddings: query images mapped by $M_s$ against gallery images
# mapped by $M_t$ (the larger set subsampled to the size of the smaller). The kNN view accuracy
# counts only neighbours of *other* identities, because images of one person under one camera are
# near-duplicates; 50 % = the two mappings' outputs are mixed. Read it next to the $D_d$ loss above:
# a discriminator at $2\log 2$ says only that *this* $D_d$ cannot tell the views apart.

# %%
rows = []
for v in variants:
    f = features[v]
    stats = toys.view_statistics(f["query"], f["gallery"], f["query_pids"], f["gallery_pids"], other_identities=True)
    rows.append({"variant": PAPER_ROW[v], "kNN view accuracy (%)": stats["knn_view_acc"],
                 "mean gap / spread": stats["mean_gap"], "rank1": 100 * ranked[v].rank1, "mAP": 100 * ranked[v].mAP})
display(make_table(rows, title=f"View separation of the embeddings, {label}", formats={"mean gap / spread": "{:.2f}"}))

# %% [markdown]
# ### The negative-gradient census on trained features
#
# Section 3's count on SP batches (32 identities, 2 query and 2 gallery images each) drawn from the
# trained query ($M_s$) and gallery ($M_t$) embeddings of each run.

# %%
trained = {f"{PAPER_ROW[v]} features": list(toys.feature_batches(features[v])) for v in variants}
display(make_table(toys.census_table(trained), title=f"Negative pairs of SP batches of trained embeddings, {label}",
                   formats={"median_d": "{:.2f}", "active": "{:.0f}", "pulled": "{:.0f}", "pushed": "{:.0f}",
                            "pulled_mass": "{:.0f}"}))

# %% [markdown]
# ### CMC curves, embeddings and ranked lists

# %%
from reid.viz import plot_cmc, plot_tsne, show_ranked_lists

plot_cmc({PAPER_ROW[v]: ranked[v] for v in variants}, title=f"CMC, {label}")
plt.show()
main = variants[0]
f = features[main]
plot_tsne(torch.cat([f["query"], f["gallery"]]), torch.cat([f["query_pids"], f["gallery_pids"]]),
          torch.cat([f["query_camids"], f["gallery_camids"]]), num_ids=10,
          title=f"{PAPER_ROW[main]}: query (Ms) + gallery (Mt), t-SNE")
plt.show()
show_ranked_lists(run_records(features[main], "query"), run_records(features[main], "gallery"), distances[main], k=10,
                  num_queries=3, title=f"{PAPER_ROW[main]}: top-10, {label}")
plt.show()

# %% [markdown]
# (va-evidence)=
# ## 6. Evidence
#
# The registered study (section 1) trains every variant with 5 seeds at the recipe's **study**
# scale: SynthReID's two-view set (632 people, one 64×32 image per camera, 316 train / 316 test),
# two small ResNet mappings from scratch, 4 + 8 + 8 epochs for the three stages of 20 SP batches
# of 16 people, and rank-1 of the single-shot CMC (`reid study view_adaptation`; the calibration is
# in `benchmarks/study_scales.md`). The runs' `results.json` and `log.jsonl` are committed under
# `evidence/view_adaptation/`, the claims' statistics in `evidence/view_adaptation.json`; every
# number and verdict below is read from there. They are about **SynthReID at study scale on the
# CPU** ({glue:text}`view_adaptation_label`, commit {glue:text}`view_adaptation_commit`), never
# about VIPeR or Market-1501.

# %%
from IPython.display import Markdown

from reid.study.report import claim_table, glue_evidence, load_evidence
from reid.viz.evidence import plot_claims_seeds, plot_forest

evidence = load_evidence("view_adaptation", evidence_dir)
glued = glue_evidence(evidence)
by_id = {c["id"]: c for c in evidence["claims"]}
counts = {v: sum(c["verdict"] == v for c in evidence["claims"]) for v in ("supported", "contradicted", "inconclusive")}
lines = [f"**{len(by_id)} claims** on {evidence['label']}: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + "."]
for c in evidence["claims"]:
    if c["verdict"] == "contradicted":
        lines.append(f"**Contradicted:** {c['id']} — {glued[c['id'] + '_summary']}.")
display(Markdown("\n\n".join(lines)))

# %%
claim_table(evidence)

# %% tags=["hide-input"]
plot_forest(evidence)
plt.show()
plot_claims_seeds(evidence, ncols=5)
plt.show()

# %% [markdown]
# What each stage did in the study runs, from their logs (mean over the 5 seeds of each variant's
# **last** epoch): the stage-0 identity accuracy of the probe mapping on its training batches, the
# share of active negative hinges and the contrastive loss, and the view discriminator's loss
# ({eq}`va-eq1`, $2\log2 \approx 1.386$ = undecided) with and without the view confusion acting
# on the mappings.

# %%
from reid.viz import load_log

diag = []
for variant in study["variants"]:
    runs_of = sorted((Path(evidence_dir) / "view_adaptation" / variant).glob("seed*"))
    logs = [load_log(r) for r in runs_of]
    stage0 = [[e for e in log if e.get("stage") == 0][-1] for log in logs]
    last = [log[-1] for log in logs]
    diag.append({"variant": variant, "seeds": len(logs),
                 "stage-0 id accuracy (%)": 100 * np.mean([e["id_accuracy_s"] for e in stage0]),
                 "active negative hinges (%)": 100 * np.mean([e["active_negative_hinges"] for e in last]),
                 "contrastive": np.mean([e["contrastive"] for e in last]),
                 "Dd loss (Eq. 1)": np.mean([e["view_discriminator"] for e in last]),
                 "view confusion (Eq. 3)": np.mean([e["confusion"] for e in last])})
display(make_table(diag, title=f"Last epoch of the study runs (mean over seeds), {evidence['label']}",
                   formats={"contrastive": "{:.3f}", "Dd loss (Eq. 1)": "{:.4f}", "view confusion (Eq. 3)": "{:.4f}"}))

# %% [markdown]
# PROSE-PLACEHOLDER

# %% [markdown]
# ### Provenance
#
# Hardware, software versions and timings of the demonstration runs above (volatile, not checked by CI).

# %%
# NBVAL_IGNORE_OUTPUT
r = results[variants[0]]
print(label, "| seed", r["seed"], "| epochs", r["epochs"], "| iterations", r["iterations"])
print({k: r.get(k) for k in ("git", "hardware", "versions") if k in r})
print({v: results[v]["timings"] for v in variants})
