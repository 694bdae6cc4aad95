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
# # Large adaptive margin (paper 001)
#
# Wang et al., *Deep ranking model by large adaptive margin learning for person
# re-identification*, Pattern Recognition 2018 {cite:p}`wang2018deep`. The paper trains a small
# part-based CNN on pairs of images. Its loss is a contrastive-style hinge with two margins that
# are not fixed. The up-margin for positive pairs is a saturating function of the mean *negative*
# distance, and the down-margin for negative pairs a soft-plus of the mean *positive* distance.
#
# This chapter states the claims and how we test them, derives the loss and audits its printed
# gradient (Eq. 13–14 add a scalar to a vector). It then shows the margins and the pair sampler
# at work in toys, and trains the paper's Table 5 ablation on SynthReID.

# %%
import json
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import display

from reid.papers import load_paper, load_table
from reid.viz import make_table

warnings.filterwarnings("ignore", category=FutureWarning)
# One CPU thread: the printed numbers are then bit-identical whatever OMP_NUM_THREADS says
# (nbval re-executes this notebook and compares them), and tiny kernels run no slower.
torch.set_num_threads(1)

# %% [markdown]
# ## 1. Claims
#
# What the paper says, and where:
#
# * **The adaptive margin beats fixed margins.** With the same network, the adaptive margin loss
#   beats the conventional contrastive loss {cite:p}`hadsell2006dimensionality` and the triplet loss
#   {cite:p}`ding2015deep` on all four datasets. In Table 5 it gains 3.7 to 11.6 rank-1 points over
#   contrastive (RCNN-C → RCNN-AC) and 2.3 to 10.1 over triplet (RCNN-T → RCNN-AC). Sec. 3.3 argues
#   why: a fixed margin "penalizes the intra-class distance to zeros" and does not suit a feature
#   space that changes during training.
# * **µ and γ have optima.** In Fig. 7, on PRID2011, rank-1 is best at µ = 8 (of 6, 8, 10) and at
#   γ = 2.1 (of 1.8, 2.1, 2.5). Away from them the margins cause under- or over-fitting
#   (Sec. 6.3.1).
# * **The residual block and depth help.** PCNN → RCNN in Table 5, and Table 6: 1 → 4 residual
#   blocks with BN {cite:p}`ioffe2015batch`, then CUHK03 pre-training. Together they reach 89.5 %
#   rank-1 and 74.1 % mAP on Market-1501 (Table 2).
#
# The registered tests (`reid/papers/001.json`) were fixed before any study run. Each compares
# two variants over 5 seeds on SynthReID at the recipe's `study` scale. The verdict comes from the
# 95 % t-interval of the seed-paired difference (rule `ci95`). Two controls go beyond the paper.
# Contrastive runs at *several* fixed margins, the headline one chosen on a validation split, so
# that "fixed" never means "untuned". And a run whose margins are *fixed at the values the
# adaptive loss ends with* separates "margins that adapt" from "margins of a better size".
#
# The paper gives neither baseline's margin. Both were chosen on a validation split of 30
# identities held out from the training identities (3 seeds, mean mAP, never the test split): the
# contrastive margin $M_n = 0.125$ from $\{0.125, 0.25, 0.5, 1, 2\}$ and the triplet margin 0.1
# from $\{0.1, 0.3, 1\}$. Both are the smallest value of their grid, so a smaller one might do
# better still; that would only make the baselines weaker than they could be. The study also
# runs contrastive at 0.25 (the next grid value) and 0.5 (close to the $M_n$ the adaptive loss
# ends with). The fixed-margin control holds $M_p = 0.124$ and $M_n = 0.461$, the means of the
# final margins of the adaptive validation runs. µ and γ take the values of Fig. 7, one at a time.
#
# On that validation split the adaptive loss came out **below** the tuned contrastive loss:
# mAP 38.0 % against 58.3 %, rank-1 45.4 % against 68.4 % (3-seed means). It beat the tuned triplet
# loss (mAP 31.3 %). The claims are registered in the paper's direction all the same: they test
# the paper, not what we expect. The registry's notes, printed below, give every value of the
# selection.

# %%
registry = load_paper("001")
variants = registry["study"]["variants"]
display(make_table([{"variant": name, "overrides": ", ".join(f"{k}={v}" for k, v in o.items())}
                    for name, o in variants.items()],
                   title=f"Study variants (recipe adaptive_margin, scale {registry['study']['scale']}, "
                         f"{registry['study']['seeds']} seeds)"))
display(make_table([{"id": c["id"], "source": c["source"], "test": f"{c['test']['variant']} vs {c['test']['baseline']}",
                     "metric": c["test"]["metric"], "expected": c["test"]["expected"],
                     "rule": c["test"].get("rule", {"name": "ci95"})["name"]} for c in registry["claims"]],
                   title="Registered claims (paper 001)"))

# %% tags=["hide-input"]
from IPython.display import Markdown

display(Markdown("\n".join(f"* {note}" for note in registry["study"]["notes"])))

# %%
table5 = load_table("001", "Table 5")
display(table5)
display(load_table("001", "Table 2"))

# %% [markdown]
# ## 2. Derivation
#
# ### Distances and constraints (Eq. 2 and 4)
#
# A pair of images $(x_A, x_B)$ from the two camera views is embedded by the network $f$ and
# compared with the **squared** Euclidean distance
#
# $$
# D(x_A, x_B) = \lVert f(x_A) - f(x_B) \rVert_2^2 .
# $$ (am-distance)
#
# Positive pairs (same person) should satisfy $D < M_p$, negative pairs $D > M_n$ (Eq. 4).
#
# ```{admonition} Wording swapped in the text
# :class: note
# Right after Eq. 4 the paper says "$M_p$ is used to penalize the inter-class distances, and $M_n$
# is used to constrain the intra-class distances". Eq. 4, Fig. 2, Eq. 5's names (up-margin /
# down-margin) and the rest of the text all say the opposite. $M_p$ bounds the *positive*
# (intra-class) distances from above, and $M_n$ the *negative* (inter-class) ones from below. We
# follow Eq. 4 (see the {doc}`../book/errata`).
# ```
#
# ### Adaptive margins (Eq. 5 and 6)
#
# Let $\bar s$ be the mean distance of the positive pairs and $\bar d$ that of the negative pairs
# (Eq. 6). Then
#
# $$
# M_p = \frac1\mu\bigl(1 - e^{-\mu \bar d}\bigr), \qquad
# M_n = \frac1\gamma \log\bigl(1 + e^{\gamma \bar s}\bigr).
# $$ (am-margins)
#
# The map crosses over. The *positive* margin is driven by the *negative* distances and vice versa
# ("we use the average negative distance to model the upper-margin for positive pairs and the
# average positive distance to model the down-margin for negative pairs", Sec. 3.3). Two properties
# of {eq}`am-margins` follow directly and explain the training behaviour:
#
# * $M_p < \min(\bar d,\ 1/\mu)$. However far apart the negatives are, positive pairs must end up
#   closer than $1/\mu$ ($0.125$ for the paper's $\mu=8$). The margin sets an **absolute** scale
#   for the embedding.
# * $M_n > \max(\bar s,\ \log 2/\gamma)$, and $M_n - \bar s = \frac1\gamma\log(1+e^{-\gamma \bar s})\to 0$
#   as $\bar s$ grows. Negatives must lie further out than the *mean positive* distance plus a margin
#   that shrinks as the positives spread: a triplet-like relative constraint.
#
# **Whose means?** Eq. 4 writes each margin as a function of the anchor, $M_p(x_A^{i,k}, X_B^g)$,
# "calculated based on the anchor and its negative pairs". Eq. 6 sums with the anchor $x_A^{i,k}$
# held fixed and divides by $N$, Sec. 5's number of negatives *per anchor*. So $\bar s$ and $\bar d$
# are taken over each anchor's own pairs (`loss.margin_scope: anchor`, the recipe default;
# `batch` is the other reading). With one positive per anchor, the per-anchor down-margin is
# $M_n = \log(1+e^{\gamma D(a,p)})/\gamma > D(a,p)$. Every negative must then lie beyond *its own
# anchor's* positive.
#
# ### One hinge for both (Eq. 7–9)
#
# Write $M_p = M_\tau - M_c$ and $M_n = M_\tau + M_c$, i.e. $M_\tau = \frac{M_p+M_n}2$ and
# $M_c = \frac{M_n - M_p}2$, with $y=+1$ for a positive pair and $-1$ for a negative one. Both
# constraints then become $M_c - y(M_\tau - D) < 0$, and the loss over the pairs of a batch is
#
# $$
# L_S = \sum_{\text{pairs}} \max\{\,M_c - y\,(M_\tau - D),\ 0\,\}
#   = \sum_{y=+1} [D - M_p]_+ + \sum_{y=-1} [M_n - D]_+ .
# $$ (am-hinge)
#
# The paper requires $M_\tau > M_c$, i.e. $M_p > 0$, which holds as soon as $\bar d > 0$. And
# $M_c > 0$ always holds for $\mu = 8$, $\gamma = 2.1$, because $M_n - M_p > \log 2/\gamma - 1/\mu \approx 0.21$.
# The conventional contrastive baseline is {eq}`am-hinge` with fixed $M_p = 0$ and $M_n = m$. Fixing
# both at nonzero values gives the control described in the claims.
#
# ### The regulariser (Eq. 10–12)
#
# The full objective adds weight decay on every layer:
#
# $$
# L = \sum_{\text{pairs}} \max\{M_c - y(M_\tau - D), 0\} + \lambda \sum_m \bigl(\lVert W^{(m)}\rVert_F^2 + \lVert b^{(m)}\rVert_2^2\bigr),
# $$ (am-objective)
#
# whose regulariser gradient is $2\lambda\Omega$ (Eq. 12). SGD's `weight_decay` adds
# `weight_decay·Ω`, so $\lambda = 0.01$ is `weight_decay = 0.02` *with the loss summed over pairs*
# (`reid.losses.adaptive_margin.weight_decay_for`). Averaging over $P$ pairs instead makes the same
# weight decay $P$ times stronger relative to the pair term; $2\lambda/P$ restores the balance.
#
# ### Readings we had to choose
#
# | what | the paper | our reading (recipe key) |
# | --- | --- | --- |
# | gradients through $\bar s$, $\bar d$? | Eq. 13–14 contain no derivative of the margins | no: margins are per-step constants (`loss.differentiate_margins: false`) |
# | scope of the means of Eq. 6 | Eq. 4, Eq. 6: functions of the anchor | per anchor unit (`loss.margin_scope: anchor`; `batch` selectable) |
# | a unit without positive (negative) pairs | not discussed | $\bar s = 0$ ($\bar d = 0$), the values at the start of training |
# | the contrastive and triplet baselines | not printed | {eq}`am-hinge` with fixed margins; triplet on each unit's (anchor, positive, negative) combinations |
# | regulariser | λ = 0.01 ("α" in Sec. 6.1), Eq. 12: $2\lambda\Omega$ | `weight_decay: 0.02` with `loss.reduction: sum` |
# | PCNN of Table 5 | "replace the residual learning block with a convolution layer" | one 32-filter 3×3 conv + ReLU (`model.block: plain`) |
# | pairs on multi-camera sets | two views only | every image an anchor, partners from the other cameras (`sampler.views: anchor`) |
# | anchors $A$, positives $M$, negatives $N$ | not given | 16, 1, 4 (full); 8, 1, 3 (study, smoke) |
#
# Each reading has an entry on the {doc}`../book/errata` page.

# %% [markdown]
# ## 3. Gradient audit: Eq. 13–14
#
# With $R = M_c - y(M_\tau - D)$, the paper prints, where $R>0$,
#
# $$
# \frac{\partial L}{\partial f(x_A)} = -y\bigl(M_\tau - 2(f(x_A) - f(x_B))\bigr), \qquad
# \frac{\partial L}{\partial f(x_B)} = -y\bigl(M_\tau + 2(f(x_A) - f(x_B))\bigr).
# $$ (am-printed-gradient)
#
# $M_\tau$ is a scalar added to a vector. Differentiating {eq}`am-hinge` with the margins held
# constant gives $\partial L/\partial f(x_A) = y\,\partial D/\partial f(x_A) = 2y\,(f(x_A)-f(x_B))$,
# and the opposite for $f(x_B)$. Each printed formula is the correct gradient **plus $-y M_\tau$ on
# every coordinate**. We compare four gradients on random float64 pairs: the printed formula
# (`reid.losses.printed_gradients.adaptive_margin_grad_printed`), the corrected one
# (`adaptive_margin_grad`), autograd on `AdaptiveMarginLoss`, and autograd when the margins are
# differentiated too.

# %%
from reid.losses import AdaptiveMarginLoss
from reid.losses import printed_gradients as pg

gen = torch.Generator().manual_seed(0)
n_pairs, dim = 40, 8
f_a = 0.3 * torch.randn(n_pairs, dim, generator=gen, dtype=torch.float64)
f_b = 0.3 * torch.randn(n_pairs, dim, generator=gen, dtype=torch.float64)
same = torch.rand(n_pairs, generator=gen) < 0.3


def autograd(differentiate_margins: bool):
    a, b = f_a.clone().requires_grad_(True), f_b.clone().requires_grad_(True)
    AdaptiveMarginLoss(8.0, 2.1, reduction="sum", differentiate_margins=differentiate_margins)(a, b, same).backward()
    return a.grad, b.grad


printed = pg.adaptive_margin_grad_printed(f_a, f_b, same)
correct = pg.adaptive_margin_grad(f_a, f_b, same)
auto, auto_through_margins = autograd(False), autograd(True)
errors = {
    "corrected vs autograd (margins constant)": max(float((c - a).abs().max()) for c, a in zip(correct, auto)),
    "printed Eq. 13-14 vs autograd (margins constant)": max(float((p - a).abs().max()) for p, a in zip(printed, auto)),
    "corrected vs autograd (through the margins)": max(float((c - a).abs().max()) for c, a in zip(correct, auto_through_margins)),
}
display(make_table([{"comparison": k, "max abs difference": "< 1e-12" if v < 1e-12 else f"{v:.3f}"} for k, v in errors.items()],
                   title="Gradient audit, paper 001 (float64, 40 random pairs)"))
assert errors["corrected vs autograd (margins constant)"] < 1e-10
assert errors["printed Eq. 13-14 vs autograd (margins constant)"] > 1e-3

# %% [markdown]
# The printed error is exactly the broadcast scalar. Adding $y M_\tau$ back on every coordinate of
# the active pairs turns the printed gradients into the correct ones.

# %%
loss = AdaptiveMarginLoss(8.0, 2.1, reduction="sum")
distance = (f_a - f_b).pow(2).sum(1)
loss(f_a, f_b, same)
m_tau = loss.last_margins["Mtau"]
y = torch.where(same, 1.0, -1.0).to(torch.float64)[:, None]
active = ((loss.last_margins["Mc"] - y[:, 0] * (m_tau - distance)) > 0).to(torch.float64)[:, None]
repaired = (printed[0] + y * m_tau * active, printed[1] + y * m_tau * active)
err = max(float((r - c).abs().max()) for r, c in zip(repaired, correct))
print(f"M_tau = {m_tau:.4f}; active pairs: {int(active.sum())} of {n_pairs}; "
      f"max |printed + y*M_tau - corrected| < 1e-12: {err < 1e-12}")
assert err < 1e-10

# %% [markdown]
# Differentiating through $\bar s$ and $\bar d$ gives a genuinely different gradient (third row of
# the table): every pair then also pushes on every other pair's distance through the margins. The
# printed formulas have no such term, and Algorithm 1 computes the margins in a separate step
# before the gradients. So the paper's margins are constants of each iteration, and that is our
# default.
#
# The regulariser's gradient (Eq. 12) is the one part of the printed gradient that is right as it
# stands. One SGD step with `weight_decay = weight_decay_for(λ)` on the summed hinge moves a layer
# exactly as a plain gradient step on {eq}`am-objective` does. The old recipe value, λ itself,
# moves it differently:

# %%
from reid.losses.adaptive_margin import weight_decay_for

lam, lr = 0.01, 0.1
x_a, x_b = torch.randn(6, 3, dtype=torch.float64, generator=gen), torch.randn(6, 3, dtype=torch.float64, generator=gen)
pair_same = torch.tensor([True, False, False, True, False, False])
torch.manual_seed(0)  # the layer's initial weights, whatever earlier cells drew from the global generator
start = torch.nn.Linear(3, 4).double()


def one_step(weight_decay=0.0, explicit_regulariser=False):
    layer = torch.nn.Linear(3, 4).double()
    layer.load_state_dict(start.state_dict())
    value = loss(layer(x_a), layer(x_b), pair_same)
    if explicit_regulariser:  # Eq. 11 written out
        value = value + lam * sum(p.pow(2).sum() for p in layer.parameters())
    opt = torch.optim.SGD(layer.parameters(), lr=lr, weight_decay=weight_decay)
    value.backward()
    opt.step()
    return torch.cat([p.detach().ravel() for p in layer.parameters()])


eq11 = one_step(explicit_regulariser=True)
matched = float((one_step(weight_decay_for(lam)) - eq11).abs().max())
print(f"weight_decay_for(λ={lam}) = {weight_decay_for(lam)}: max |step - Eq. 11 step| = "
      f"{'below 1e-15 (rounding)' if matched < 1e-15 else f'{matched:.1e}'};  "
      f"weight_decay = λ: {float((one_step(lam) - eq11).abs().max()):.1e}")

# %% [markdown]
# ## 4. Mechanism
#
# ### Margins that follow the data
#
# The two maps of {eq}`am-margins` (the paper's Fig. 3 (a) and (c)), for the µ and γ values of its
# Fig. 7:

# %%
from reid.toys import adaptive_margin as toys
from reid.viz import adaptive_margin as figs

figs.plot_margin_maps(mus=(6.0, 8.0, 10.0), gammas=(1.8, 2.1, 2.5))
plt.show()

# %% [markdown]
# µ moves only the ceiling $1/\mu$ of $M_p$, and γ the floor $\log 2/\gamma$ of $M_n$ and how fast
# $M_n$ joins the identity line. Two of the paper's sentences swap these roles (µ "gives huge down
# margin"; "γ = 2.5, $M_p$ is rather small"); see the {doc}`../book/errata`.
#
# Now the margins over training. We take 24 people, each with one feature per camera view in
# $\mathbb{R}^8$. The "network" is the identity map, so the features themselves are trained.
# Batches are anchor-based: 8 anchors with 1 positive and 3 negatives each (Sec. 5), plain SGD.
# Left, the adaptive margin loss with µ = 8, γ = 2.1; right, the fixed-margin contrastive loss
# ($M_p = 0$, $M_n = 0.5$).

# %% tags=["hide-input"]
histories = [toys.simulate_pairs("adaptive", steps=200), toys.simulate_pairs("contrastive", margin=0.5, steps=200)]
figs.plot_margin_history(histories)
plt.show()
display(make_table([{"loss": h.loss, **h.final} for h in histories],
                    title="Toy pairs after 200 steps (squared distances; rank-1 of view A against view B, %)",
                    formats={k: "{:.3f}" for k in ("mean_pos_D", "mean_neg_D", "min_neg_D", "max_pos_D")}))

# %% [markdown]
# The adaptive loss stops pulling positives once they are inside $M_p$: they settle just below
# $1/\mu$, where the contrastive loss drives them to zero distance. Its down-margin $M_n$ falls with
# $\bar s$ toward its floor $\log 2/\gamma$, so the negatives only have to clear a margin set by the
# positives. On this easy toy both losses reach perfect rank-1. The difference is in *how much* of
# the embedding is spent on collapsing positives, which is the paper's over-fitting argument.
#
# ### The scale the margins impose, and the initialisation
#
# $M_p < 1/\mu$ and $M_n \ge \log 2/\gamma$ fix an absolute scale: squared distances of order 0.1 to
# 0.5. Where the network's embedding *starts* matters. The table gives the mean squared distance
# between random image pairs at initialisation, at the study's 76×28 input, for the paper's
# Gaussian initialisation (std 0.01 / 0.001, Sec. 6.1) with and without BN, and for our He
# initialisation {cite:p}`he2015delving`.

# %%
from reid.models.part_cnn import PartCNN

images = torch.rand(32, 3, 76, 28, generator=torch.Generator().manual_seed(1))
rows = []
for init in ("paper", "kaiming"):
    for bn in (False, True):
        torch.manual_seed(0)
        net = PartCNN(height=76, width=28, batch_norm=bn, init=init, stem_channels=32).eval()
        with torch.no_grad():
            feats = net(images).features
        rows.append({"init": init, "BN": bn, "mean D of random pairs": float((feats[0::2] - feats[1::2]).pow(2).sum(1).mean())})
display(make_table(rows, title="Squared pair distances at initialisation (part CNN, 76x28)", formats={"mean D of random pairs": "{:.1e}"}))

# %% [markdown]
# Without BN, the paper's initialisation starts every pair at $D \approx 10^{-9}$. There the
# hinge's gradient $2y(f_A - f_B)$ all but vanishes. In calibration, plain SGD at learning rate
# 0.01 or 0.05, and SGD with momentum 0.9, left it there for 300 steps
# (`benchmarks/study_scales.md`). So the study uses BN, as the paper's own Market-1501 network
# does (Table 6). `init="kaiming"` gives the hidden layers He initialisation but keeps the paper's
# small init on the layers that *output* the embedding. He-initialised output layers would start
# at $D \approx 10^3$, four orders of magnitude outside the margins. There the hinge's gradient,
# which grows with the distance, sent the features to infinity within four steps at lr 0.01 with
# momentum 0.9, for the contrastive loss as well. That is the NaN the engine audit saw.
#
# ### Which pairs the sampler can reach
#
# On a two-camera set, Sec. 5 is clear: anchors from the probe view, partners from the gallery
# view. A multi-camera set such as Market-1501 has no such views. An earlier reading drew one
# camera pair per identity for the whole run (`sampler.views: fixed`). We count what each reading
# uses on the smoke SynthReID set, with the smoke batch (8 anchors, 1 positive, 3 negatives).

# %%
from reid.data import AnchorPairSampler, synthreid
from reid.data.datasets import load_dataset

smoke = load_dataset("synthreid", synthreid.ensure("smoke", progress=False))
pids, cams = [r.pid for r in smoke.train], [r.camid for r in smoke.train]
rows = []
for views in ("fixed", "epoch", "anchor"):
    sampler = AnchorPairSampler(pids, cams, anchors=8, positives=1, negatives=3, probe_cam=None, gallery_cam=None,
                                views=views, seed=0)
    for epochs in (1, 8):
        c = toys.sampler_coverage(sampler, epochs)
        rows.append({"views": views, "epochs": epochs, "batches per epoch": len(sampler),
                     "images used": f"{c['images'][0]} of {c['images'][1]} ({100 * c['images_used']:.0f}%)",
                     "cross-camera positive pairs drawn": f"{c['positive_pairs'][0]} of {c['positive_pairs'][1]} "
                                                          f"({100 * c['positive_pairs_drawn']:.0f}%)"})
display(make_table(rows, title="Anchor-pair sampler coverage, SynthReID smoke set (784 training images, 6 cameras)"))

# %% [markdown]
# With a fixed camera pair, about half of the training images never appear, and few cross-camera
# positive pairs are ever drawn. The default `views: anchor` makes every image an anchor once per
# epoch and draws its partners from all other cameras.
#
# ## 5. Training
#
# The paper's recipe at full scale, as resolved from `reid/recipes/adaptive_margin.yaml`. Every
# value the paper does not state is marked "not stated" in that file, with the reason for our
# choice.

# %% tags=["hide-output"]
from reid.recipes import load_recipe

full = load_recipe("adaptive_margin", "full")
print(json.dumps({k: v for k, v in full.items() if k != "choices"}, indent=1))

# %% [markdown]
# The evidence runs use the `study` scale. It changes the following, and the recipe file gives
# each reason:
#
# | what | full (paper) | study |
# | --- | --- | --- |
# | data | Market-1501 | SynthReID, Market-1501 layout, 200 identities (100 train / 100 test), 6 cameras |
# | network | 230×80, 4 residual blocks + BN, 64-channel stem | 76×28, 1 residual block + BN (Table 5's RCNN), 32-channel stem |
# | batch | 16 anchors × (1 + 4) | 8 anchors × (1 + 3) |
# | optimiser | plain SGD, lr 0.01, Σ over pairs, weight decay 2λ = 0.02 | SGD + momentum 0.9, lr 0.01, mean over pairs, weight decay 2λ/32 |
# | length | 50 000 iterations (not stated) | 300 iterations |
#
# Why the Market-1501 layout and not SynthReID's VIPeR-style two-view layout? The two-view layout
# has one image per view, so each training identity gives exactly one positive pair (50 on the
# smoke preset), which is far too few to train this network from scratch. A 50-identity test
# set would also give rank-1 in steps of 2 %. The Market layout has several images per camera,
# and Market-1501 is the one dataset that Tables 2, 5 and 6 share. With `sampler.views: anchor`,
# every cross-camera positive pair can be drawn.
#
# Defaults below: the recipe's smoke scale on the CPU, once with the conventional contrastive loss
# (RCNN-C) and once with the adaptive margin loss (RCNN-AC). **This run is a demonstration that
# the pipeline works, not evidence.** It is one seed and 75 steps (3 epochs of 25 batches); the
# evidence is in Section 6. The paper's Market-1501 setting is one command away:
#
# ```bash
# papermill notebooks/adaptive_margin.ipynb runs/adaptive_margin-full.ipynb -f params/adaptive_margin.full.yaml
# ```

# %% tags=["parameters"]
dataset = "synthreid"
data_root = None
scale = "smoke"
backbone = None  # None: the recipe's part_cnn
epochs = 3  # None: the recipe's length (8 epochs of 25 batches at smoke scale)
device = "cpu"
seed = 0
out_dir = None  # None: a fresh temporary folder per execution; a path keeps the runs (and resumes them)
max_iterations = None  # N: a dry run, every training stopped after N optimisation steps (try scale="full")
variants = ["contrastive", "adaptive"]  # loss.name values, or names of the study's variants

# %%
# NBVAL_IGNORE_OUTPUT
import time

from reid.engine import notebook_run_dir, train

out_dir = notebook_run_dir("adaptive_margin", out_dir)

overrides = {"model.name": backbone} if backbone else {}
runs = {}
for variant in variants:
    chosen = registry["study"]["variants"].get(variant, {"loss.name": variant})
    start = time.perf_counter()
    runs[variant] = train("adaptive_margin", dataset=dataset, root=data_root, scale=scale, device=device,
                          epochs=epochs, seed=seed, out=Path(out_dir) / variant,
                          overrides={**overrides, **chosen}, max_iterations=max_iterations, progress=False)
    print(f"{variant:>12}: {time.perf_counter() - start:5.1f} s -> {runs[variant]}")

# %% [markdown]
# (am-results)=
# ## 6. Results
#
# ### The registered study
#
# `reid study adaptive_margin` runs every variant of Section 1 for 5 seeds at the study scale and
# writes `evidence/adaptive_margin.json` ({glue:text}`adaptive_margin_label`, commit
# {glue:text}`adaptive_margin_commit`). Every number and verdict below is read from that file and
# computed by the registered rule. A verdict is about SynthReID at the study scale, never about
# Market-1501 or PRID2011.
#
# The verdicts of all {glue:text}`adaptive_margin_claims` registered claims:
# {glue:text}`adaptive_margin_verdict_counts`. The claims the evidence goes against
# ({glue:text}`adaptive_margin_contradicted_list`) and those it cannot decide
# ({glue:text}`adaptive_margin_inconclusive_list`) come first, in the cell below.

# %%
from myst_nb import glue

from reid.study.report import claim_table, glue_evidence, load_evidence
from reid.viz.evidence import plot_claims_seeds, plot_forest

evidence = load_evidence("adaptive_margin")
glued = glue_evidence(evidence)
against = [c for c in evidence["claims"] if c["verdict"] == "contradicted"]
undecided = [c for c in evidence["claims"] if c["verdict"] == "inconclusive"]
if against or undecided:
    display(Markdown("\n".join(f"* **{c['verdict'].capitalize()}:** `{c['id']}` ({c['source']}): "
                                f"{glued[c['id'] + '_summary']}" for c in against + undecided)))
    display(claim_table({**evidence, "claims": against + undecided}))

# %% [markdown]
# Every claim: mean ± sd of each side over the seeds, the seed-paired difference
# (variant − baseline) with its 95 % t-interval, and the verdict of its registered rule; then the
# same differences as a forest plot, and each claim seed by seed (a line joins the two runs that
# share a seed).

# %% tags=["hide-input"]
display(claim_table(evidence))
plot_forest(evidence)
plt.show()
plot_claims_seeds(evidence, ncols=4)
plt.show()

# %% [markdown]
# **Adaptive against fixed margins (Table 5, RCNN-AC against RCNN-C and RCNN-T).** Against the
# contrastive loss at its validation-chosen margin: mAP {glue:text}`am_beats_contrastive_map_summary`;
# rank-1 {glue:text}`am_beats_contrastive_rank1_summary` (paper:
# {glue:text}`am_beats_contrastive_rank1_paper`). Against the triplet loss at its chosen margin:
# mAP {glue:text}`am_beats_triplet_map_summary`; rank-1 {glue:text}`am_beats_triplet_rank1_summary`
# (paper: {glue:text}`am_beats_triplet_rank1_paper`).
#
# **Other fixed margins.** Against contrastive at 0.25:
# {glue:text}`am_beats_contrastive_m0_25_map_summary`; at 0.5:
# {glue:text}`am_beats_contrastive_m0_5_map_summary`.
#
# **Margins that adapt, or margins of a better size?** Against contrastive with both margins fixed
# at the adaptive loss's final values ($M_p = 0.124$, $M_n = 0.461$):
# {glue:text}`am_beats_fixed_at_final_summary`.
#
# **µ and γ (Fig. 7, Sec. 6.3.1), rank-1 of the paper's µ = 8, γ = 2.1 against each alternative.**
# µ = 6: {glue:text}`mu8_beats_mu6_summary`; µ = 10: {glue:text}`mu8_beats_mu10_summary`;
# γ = 1.8: {glue:text}`gamma21_beats_gamma18_summary`; γ = 2.5:
# {glue:text}`gamma21_beats_gamma25_summary`.
#
# The control's margins were fixed from the validation runs, before the study. The next cell checks
# how near them the adaptive study runs end: the last logged per-anchor means of $M_p$ and $M_n$
# (`final_log` of each run's `results.json` under `evidence/adaptive_margin/`).

# %%
from reid.study.report import evidence_dir
from reid.viz import load_results

fixed = registry["study"]["variants"]["contrastive_fixed_final"]
finals = [load_results(run).get("final_log") or {} for run in sorted((evidence_dir() / "adaptive_margin" / "adaptive").glob("seed*"))
          if (run / "results.json").is_file()]
finals = [f for f in finals if "Mp" in f and "Mn" in f]
if finals:
    display(make_table([{"margin": k, "fixed in contrastive_fixed_final": fixed[key],
                         "adaptive study runs, final (mean)": float(np.mean([f[k] for f in finals])),
                         "sd": float(np.std([f[k] for f in finals], ddof=1)) if len(finals) > 1 else float("nan")}
                        for k, key in (("Mp", "loss.positive_margin"), ("Mn", "loss.margin"))],
                       title=f"Final margins of the adaptive study runs ({len(finals)} seeds; last logged per-anchor means)",
                       fmt="{:.4f}"))
else:
    print("no adaptive study runs with margin diagnostics under evidence/adaptive_margin/adaptive/")

# %% [markdown]
# ### The demonstration run
#
# Our rows come from SynthReID at smoke scale on the CPU, read from each run's `results.json`
# (Market-1501 single-query rule). The paper's rows are Market-1501: Table 5 (rank-1 of the
# variants) and Table 2. The paper's Market-1501 numbers are multi-query. SynthReID's query set
# holds one image per identity and camera, like Market-1501's, so max-pooling the queries of an
# identity's camera would change nothing, and single query is what we report.

# %%
from reid.viz import compare_with_paper, load_log, load_results, run_label

PAPER_ROW = {"contrastive": "RCNN-C", "adaptive": "RCNN-AC", "triplet": "RCNN-T"}
results = {v: load_results(runs[v]) for v in variants}
label = run_label(results[variants[0]])
ours = {PAPER_ROW.get(v, v): results[v]["metrics"] for v in variants}
display(compare_with_paper(ours, table5, columns=["Market1501 r1"], column_map={"Market1501 r1": "rank1"},
                           methods=["RCNN-C", "RCNN-T", "RCNN-AC"], ours_label=label))
display(compare_with_paper(ours, load_table("001", "Table 2"), methods=["Gated S-CNN", "Ours"], ours_label=label))

# %% [markdown]
# One seed and 75 steps of training from scratch on synthetic data cannot decide a comparison.
# The registered study above does, with its intervals.
#
# ### Margins during the demonstration run
#
# The engine logs the loss's diagnostics every epoch, as means over the epoch's batches. For the
# adaptive run these are $\bar s$, $\bar d$ and the margins, the same quantities as in the toy
# above (with per-anchor margins, means over the anchors).

# %%
log = load_log(runs["adaptive"]) if "adaptive" in runs else []
keys = [k for k in ("s_bar", "d_bar", "Mp", "Mn", "Mtau", "Mc", "active_fraction") if log and k in log[0]]
if keys:
    display(make_table([{"epoch": r["epoch"], **{k: r[k] for k in keys}} for r in log],
                       title=f"Adaptive margin run, per-epoch means ({label})", fmt="{:.4f}"))
else:
    print("this run's log has no margin diagnostics")

# %% [markdown]
# ### CMC curves, embeddings and ranked lists

# %%
from reid.viz import plot_cmc, plot_tsne, show_ranked_lists
from reid.study.run_features import load_run_features, run_distance, run_rank_metrics, run_records

features = {v: load_run_features(runs[v]) for v in variants}
distances = {v: run_distance(features[v]) for v in variants}
ranked = {v: run_rank_metrics(features[v], distances[v]) for v in variants}
plot_cmc({PAPER_ROW.get(v, v): ranked[v] for v in variants}, title=f"CMC (single query), {label}")
plt.show()

fig, axes = plt.subplots(1, len(variants), figsize=(5.5 * len(variants), 4.5))
for ax, v in zip(np.atleast_1d(axes), variants):
    f = features[v]
    plot_tsne(f["gallery"], f["gallery_pids"], f["gallery_camids"], num_ids=10, ax=ax,
              title=f"{PAPER_ROW.get(v, v)}: gallery t-SNE")
plt.show()

# %%
last = variants[-1]
show_ranked_lists(run_records(features[last], "query"), run_records(features[last], "gallery"), distances[last],
                  k=10, num_queries=3, title=f"{PAPER_ROW.get(last, last)} ({label})")
plt.show()

# %% [markdown]
# ### Provenance

# %%
# NBVAL_IGNORE_OUTPUT
r = results[variants[0]]
print(label, "| seed", r["seed"], "| epochs", r["epochs"], "| iterations", r["iterations"])
print({k: r.get(k) for k in ("git", "hardware", "versions") if k in r})
print({v: results[v]["timings"] for v in variants})
