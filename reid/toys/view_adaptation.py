"""Paper 003's mechanisms, computed (the chapter draws them with :mod:`reid.viz.view_adaptation`).

Paper 003 (Wu, Hong, Wang & Wang) prints its losses (Eq. 1, 2, 3, 5, 6) but no gradient. This
module writes the gradients out in closed form, so the chapter can hold them against autograd on
the library losses (:mod:`reid.losses.view_adaptation`), counts what the adaptive negative term
does to every negative pair, and runs a 2-D toy of Algorithm 1:

* :func:`view_discriminator_logit_grad`, :func:`view_confusion_logit_grad` — ``∂L/∂z`` of Eq. 1
  and Eq. 3 with respect to the view discriminator's logits;
* :func:`similarity_grads` — ``∂ℓ/∂(Ds logit)`` and ``∂ℓ/∂d`` of Eq. 2 (read) and of Eq. 5 with
  the normalised weights of Eq. 6, for both placements of the negative hinge, with the weights
  differentiated through or frozen;
* :func:`distance_grad_to_features` — the chain rule from ``d_ij = ‖f_s,i − f_t,j‖`` to the two
  mappings' features;
* :func:`negative_gradient_census`, :func:`census_batches` — on an SP batch, the share of
  negative pairs whose hinge is active and whose gradient pulls them *towards* the anchor
  (``python -m reid.toys.view_adaptation`` prints the table the errata quote);
* :func:`two_view_toy`, :func:`simulate`, :func:`seed_sweep` — two camera views of the same
  identities in 2-D, mapped by affine ``Ms``/``Mt`` and trained by Eq. 1 / Eq. 3 / Eq. 5 as in
  Algorithm 1; :func:`view_statistics` measures how separable two views are without a
  discriminator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reid.losses.view_adaptation import (
    SimilarityDiscriminatorLoss,
    ViewConfusionLoss,
    ViewDiscriminatorLoss,
    adaptive_weights,
)
from reid.metrics import pairwise_distance, rank_metrics
from reid.metrics.distance import euclidean
from reid.toys.threads import single_thread

__all__ = [
    "view_discriminator_logit_grad",
    "view_confusion_logit_grad",
    "similarity_grads",
    "distance_grad_to_features",
    "negative_gradient_census",
    "census_batches",
    "census_table",
    "READINGS",
    "feature_batches",
    "TwoViewToy",
    "two_view_toy",
    "ToyRun",
    "simulate",
    "view_statistics",
    "seed_sweep",
]


# --------------------------------------------------------------------------- closed-form gradients
def _two_column_probs(logits: torch.Tensor) -> torch.Tensor:
    """``[Dd, 1 − Dd]`` per sample from one logit (sigmoid) or two logits (softmax)."""
    if logits.dim() == 2 and logits.shape[1] == 2:
        return logits.softmax(dim=1)
    p = torch.sigmoid(logits.reshape(-1))
    return torch.stack([p, 1 - p], dim=1)


def _back_to_shape(g_two: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Gradient w.r.t. the logits' own shape: column 0 for one logit (d/dz of [σ(z), 1 − σ(z)] logs)."""
    if logits.dim() == 2 and logits.shape[1] == 2:
        return g_two
    return g_two[:, 0].reshape(logits.shape)


def view_discriminator_logit_grad(source_logits, target_logits, *, reduction: str = "mean"):
    """``∂L_Dd/∂z`` of Eq. 1 for the source and the target logits.

    One logit ``z`` (``Dd = σ(z)``): ``−log σ(z)`` on a source sample gives ``σ(z) − 1``, and
    ``−log(1 − σ(z))`` on a target sample gives ``σ(z)`` — the usual "prediction minus label" of
    a binary cross-entropy with label 1 for the probe view and 0 for the gallery view. Two logits
    (softmax): ``p − e_view``. ``reduction="mean"`` divides each view by its own batch size
    (each expectation of Eq. 1 is a mean over its view).
    """
    out = []
    for logits, view in ((source_logits, 0), (target_logits, 1)):
        p = _two_column_probs(logits)
        if logits.dim() == 2 and logits.shape[1] == 2:
            g = p - F.one_hot(torch.full((len(p),), view), 2).to(p.dtype)
        else:
            g = torch.stack([p[:, 0] - (1.0 if view == 0 else 0.0), torch.zeros_like(p[:, 0])], 1)
        if reduction == "mean":
            g = g / len(p)
        out.append(_back_to_shape(g, logits))
    return tuple(out)


def view_confusion_logit_grad(source_logits, target_logits, *, reduction: str = "mean"):
    """``∂L_M/∂z`` of Eq. 3: the prediction minus the *uniform* target, ``Dd − ½``, in both views.

    Per sample, ``−½ log Dd − ½ log(1 − Dd)`` with ``Dd = σ(z)`` has derivative
    ``−½(1 − σ) + ½σ = σ(z) − ½``: zero exactly where the discriminator is undecided, pushing the
    logit toward 0 from either side, and the *same* rule for probe and gallery samples (unlike
    the GAN "flipped label" loss, which pushes the two views in opposite directions). Two logits:
    ``softmax(z) − (½, ½)``.
    """
    out = []
    for logits in (source_logits, target_logits):
        p = _two_column_probs(logits)
        g = p - 0.5
        if not (logits.dim() == 2 and logits.shape[1] == 2):
            g = torch.stack([p[:, 0] - 0.5, torch.zeros_like(p[:, 0])], 1)
        if reduction == "mean":
            g = g / len(p)
        out.append(_back_to_shape(g, logits))
    return tuple(out)


def similarity_grads(
    pair_logits: torch.Tensor,
    d: torch.Tensor,
    same: torch.Tensor,
    *,
    margin: float = 2.0,
    gamma: float = 2.5,
    adaptive: bool = False,
    negative_hinge: str = "anchor",
    detach_weights: bool = True,
    reduction: str = "mean",
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(∂ℓ/∂logit, ∂ℓ/∂d)`` of the similarity discriminator loss, Eq. 2 (read) or Eq. 5 + Eq. 6.

    Pair term (binary cross-entropy on ``Ds = σ(logit)``): ``∂/∂logit = σ(logit) − y``.

    Eq. 2, contrastive part ``γ[(1 − y) max(0, m − d)² + y d²]``:
    ``∂/∂d = γ[2 y d − 2 (1 − y) max(0, m − d)]``.

    Eq. 5 with the normalised weights of Eq. 6 (per anchor row; ``w_p = softmax_P(d)``,
    ``w_n = softmax_N(−d)``, ``∂w_p/∂d_q = w_p(δ_pq − w_q)``, ``∂w_n/∂d_q = −w_n(δ_nq − w_q)``):

        C_P = Σ_p w_p d_p²                 ∂C_P/∂d_q = w_q (2 d_q + d_q² − Σ_p w_p d_p²)           (q ∈ P)

    one hinge per anchor (``negative_hinge="anchor"``), ``D = Σ_n w_n d_n``, ``h = max(0, m − D)``:

        C_N = h²                           ∂C_N/∂d_q = −2 h w_q (1 − d_q + D)                       (q ∈ N)

    one hinge per negative (``"pair"``), ``h_n = max(0, m − w_n d_n)``:

        C_N = Σ_n h_n²                     ∂C_N/∂d_q = −2 w_q [ h_q (1 − d_q) + Σ_n h_n w_n d_n ]    (q ∈ N)

    The forms above differentiate through the weights (``detach_weights=False``). With
    ``detach_weights=True`` (the loss's default) the weights are constants: ``2 w_q d_q``,
    ``−2 h w_q`` and ``−2 w_q h_q``, which never change sign. Differentiated through, the per-pair hinge pulls a
    negative *in* once ``h_q (d_q − 1) > Σ_n h_n w_n d_n`` — with ``w_n ≈ 1/|N|`` roughly every
    negative farther than ``1 +`` the mean distance — whereas the per-anchor hinge pulls only
    negatives farther than ``1 + D`` from the anchor, with the small weight ``w_q`` that the
    soft-min gives such far negatives. ``reduction="mean"`` divides the pair term by the number
    of pairs and the contrastive term as :class:`~reid.losses.SimilarityDiscriminatorLoss` does
    (anchors for the per-anchor hinge, pairs otherwise).
    """
    y = same.to(d.dtype)
    g_logit = torch.sigmoid(pair_logits) - y
    contrastive_terms = d.numel()
    if not adaptive:
        g_d = gamma * (2 * y * d - 2 * (1 - y) * F.relu(margin - d))
    else:
        w_p, w_n = adaptive_weights(d, same.bool())
        if detach_weights:
            g_pos = 2 * w_p * d
        else:
            g_pos = w_p * (2 * d + d * d - (w_p * d * d).sum(dim=1, keepdim=True))
        if negative_hinge == "anchor":
            has_negative = (~same.bool()).any(dim=1, keepdim=True)
            soft_min = ((1 - y) * w_n * d).sum(dim=1, keepdim=True)
            h = torch.where(has_negative, F.relu(margin - soft_min), torch.zeros_like(soft_min))
            g_neg = -2 * h * w_n * (1.0 if detach_weights else (1 - d + soft_min))
            contrastive_terms = d.shape[0]
        else:
            h = F.relu(margin - w_n * d)
            if detach_weights:
                g_neg = -2 * w_n * h
            else:
                coupling = (h * w_n * d * (1 - y)).sum(dim=1, keepdim=True)
                g_neg = -2 * w_n * (h * (1 - d) + coupling)
        g_d = gamma * (y * g_pos + (1 - y) * g_neg)
    if reduction == "mean":
        g_logit, g_d = g_logit / d.numel(), g_d / contrastive_terms
    return g_logit, g_d


def distance_grad_to_features(g_d: torch.Tensor, f_s: torch.Tensor, f_t: torch.Tensor):
    """Chain rule through ``d_ij = ‖f_s,i − f_t,j‖``: ``(∂ℓ/∂f_s, ∂ℓ/∂f_t)`` from ``∂ℓ/∂d``.

    ``∂d_ij/∂f_s,i = (f_s,i − f_t,j)/d_ij = −∂d_ij/∂f_t,j``: each pair's gradient pulls (or
    pushes) the probe feature and the gallery feature along the line joining them, in opposite
    directions. Through the distance alone; the ``Ds`` pair term adds its own path.
    """
    diff = f_s[:, None, :] - f_t[None, :, :]
    unit = diff / diff.norm(dim=2, keepdim=True)
    weighted = g_d[:, :, None] * unit
    return weighted.sum(dim=1), -weighted.sum(dim=0)


# --------------------------------------------------------------------------- negative-gradient census
def negative_gradient_census(
    d: torch.Tensor,
    same: torch.Tensor,
    *,
    negative_hinge: str = "anchor",
    detach_weights: bool = True,
    margin: float = 2.0,
    gamma: float = 2.5,
) -> dict:
    """What Eq. 5's negative term does to each negative pair of an ``(anchors, candidates)`` batch.

    From the closed-form ``∂ℓ/∂d`` of :func:`similarity_grads` (which the chapter checks against
    autograd): ``pulled`` is the share of negative pairs with ``∂ℓ/∂d > 0`` (gradient descent
    *shrinks* their distance), ``pushed`` the share with ``∂ℓ/∂d < 0``, ``pulled_mass`` the share
    of the negatives' total ``|∂ℓ/∂d|`` that pulls, and ``active`` the share of negative hinges
    that are active (``m − w_n d_n > 0`` per pair, or ``m − Σ_n w_n d_n > 0`` per anchor). Values
    in percent; ``median_d`` is the median negative distance, for scale.
    """
    same = same.bool()
    _, g_d = similarity_grads(torch.zeros_like(d), d, same, margin=margin, gamma=gamma, adaptive=True,
                              negative_hinge=negative_hinge, detach_weights=detach_weights, reduction="sum")
    neg = ~same
    g = g_d[neg]
    _, w_n = adaptive_weights(d, same)
    if negative_hinge == "anchor":
        has_negative = neg.any(dim=1)
        soft_min = (w_n * d).sum(dim=1)
        active = float((soft_min[has_negative] < margin).double().mean())
    else:
        active = float(((w_n * d)[neg] < margin).double().mean())
    total = float(g.abs().sum())
    return {
        "pulled": 100 * float((g > 0).double().mean()),
        "pushed": 100 * float((g < 0).double().mean()),
        "pulled_mass": 100 * float(g.clamp(min=0).sum()) / total if total > 0 else 0.0,
        "active": 100 * active,
        "median_d": float(d[neg].median()),
    }


def census_batches(
    *,
    p: int = 32,
    s: int = 4,
    dim: int = 512,
    stds=(0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
    seed: int = 0,
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Synthetic SP batches (``p`` identities × ``s`` images, half per view) at several feature scales.

    The defaults are the full recipe's batch (32 identities × 4 images = 64 probe × 64 gallery
    features of 512 dimensions, the VGG embedding). Identity centres ``c_i ~ N(0, std²·I)``; each
    image ``c_i + N(0, (std/2)²·I)``. Without feature normalisation (the recipe has none) ``std``
    sets the distance unit against the margin ``m = 2``: negative distances are about
    ``36·std``, spread by about ``std``. Returns ``{label: (d, same)}`` with ``d`` the probe ×
    gallery distance matrix.
    """
    gen = torch.Generator().manual_seed(seed)
    half = s // 2
    pid = torch.arange(p).repeat_interleave(half)
    unit_centres = torch.randn(p, dim, generator=gen, dtype=torch.float64)
    unit_s = 0.5 * torch.randn(len(pid), dim, generator=gen, dtype=torch.float64)
    unit_t = 0.5 * torch.randn(len(pid), dim, generator=gen, dtype=torch.float64)
    same = pid[:, None] == pid[None, :]
    out = {}
    for std in stds:
        d = euclidean(std * (unit_centres[pid] + unit_s), std * (unit_centres[pid] + unit_t))
        out[f"random {p}x{s}, {dim}-d, std {std:g}"] = (d, same)
    return out


def feature_batches(features: dict, *, p: int = 32, s: int = 4, batches: int = 20, seed: int = 0):
    """SP batches drawn from a run's saved query (``Ms``) / gallery (``Mt``) features.

    Each batch takes ``p`` identities seen in both sets and ``s/2`` images of each from either
    side (with replacement when fewer exist). Yields ``(d, same)`` per batch.
    """
    rng = np.random.default_rng(seed)
    q_pid, g_pid = features["query_pids"].numpy(), features["gallery_pids"].numpy()
    both = np.intersect1d(q_pid, g_pid)
    both = both[both >= 0]
    take = min(p, both.size)
    half = s // 2
    for _ in range(batches):
        ids = rng.choice(both, size=take, replace=False)
        qi = np.concatenate([rng.choice(np.flatnonzero(q_pid == i), half) for i in ids])
        gi = np.concatenate([rng.choice(np.flatnonzero(g_pid == i), half) for i in ids])
        fq, fg = features["query"][qi].double(), features["gallery"][gi].double()
        pid = torch.as_tensor(np.repeat(np.arange(take), half))
        yield euclidean(fq, fg), pid[:, None] == pid[None, :]


#: The four readings of Eq. 5's negative term the census compares: where the weighted negatives
#: meet the margin (per pair, as printed; per anchor, as in MTMCT) x whether the Eq. 6 weights
#: are differentiated through.
READINGS = {
    "per-pair hinge, differentiated weights (the former default)": {"negative_hinge": "pair", "detach_weights": False},
    "per-pair hinge, frozen weights": {"negative_hinge": "pair", "detach_weights": True},
    "per-anchor hinge, differentiated weights (MTMCT's code)": {"negative_hinge": "anchor", "detach_weights": False},
    "per-anchor hinge, frozen weights (default)": {"negative_hinge": "anchor", "detach_weights": True},
}


def census_table(batches: dict, *, readings=None) -> list[dict]:
    """One row per (batch, reading) of :func:`negative_gradient_census`; ``batches`` maps a label
    to ``(d, same)`` or to a list of them (averaged)."""
    readings = readings or READINGS
    rows = []
    for label, batch in batches.items():
        group = batch if isinstance(batch, list) else [batch]
        for name, kw in readings.items():
            stats = [negative_gradient_census(d, same, **kw) for d, same in group]
            rows.append({"batch": label, "reading": name,
                         **{k: float(np.mean([st[k] for st in stats])) for k in stats[0]}})
    return rows


# --------------------------------------------------------------------------- the two-view toy
@dataclass
class TwoViewToy:
    """Toy data: ``x_s``/``x_t`` (n, 2) float64 images of the same identities in two views."""

    x_s: torch.Tensor
    x_t: torch.Tensor
    pid_s: torch.Tensor
    pid_t: torch.Tensor
    labelled: torch.Tensor  # identities whose cross-view pairs the similarity term may use


def two_view_toy(
    num_ids: int = 6,
    per_view: int = 6,
    *,
    labelled_ids: int = 6,
    rotation_deg: float = 70.0,
    stretch: tuple[float, float] = (1.6, 0.6),
    shift: tuple[float, float] = (2.5, -1.0),
    noise: float = 0.15,
    seed: int = 0,
) -> TwoViewToy:
    """Identities at random 2-D positions; the gallery view sees them through a fixed affine "camera".

    Probe view: ``x_s = μ_id + noise``; gallery view: ``x_t = A μ_id + b + noise`` with ``A`` a
    rotation by ``rotation_deg`` times a stretch and ``b = shift``. Without adaptation a probe is
    closer to other people in its own view than to itself in the other view. Only the first
    ``labelled_ids`` identities are labelled for the similarity term.
    """
    gen = torch.Generator().manual_seed(seed)
    mu = 1.2 * torch.randn(num_ids, 2, generator=gen, dtype=torch.float64)
    a = math.radians(rotation_deg)
    rot = torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=torch.float64)
    cam = rot @ torch.diag(torch.tensor(stretch, dtype=torch.float64))
    pid = torch.arange(num_ids).repeat_interleave(per_view)
    x_s = mu[pid] + noise * torch.randn(len(pid), 2, generator=gen, dtype=torch.float64)
    x_t = mu[pid] @ cam.t() + torch.tensor(shift, dtype=torch.float64)
    x_t = x_t + noise * torch.randn(len(pid), 2, generator=gen, dtype=torch.float64)
    return TwoViewToy(x_s, x_t, pid, pid.clone(), torch.arange(labelled_ids))


@dataclass
class ToyRun:
    """One toy training: settings, feature snapshots and per-step statistics."""

    name: str
    snapshots: list[tuple[np.ndarray, np.ndarray]]  # (mapped source, mapped target) at start and end
    history: list[dict] = field(default_factory=list)


def view_statistics(
    f_s: torch.Tensor, f_t: torch.Tensor, pid_s: torch.Tensor, pid_t: torch.Tensor, *, k: int = 5,
    other_identities: bool = False,
) -> dict:
    """How separated the two views are, and how well identities match across them.

    * ``knn_view_acc``: for each point, the share of its ``k`` nearest neighbours (both views
      pooled, itself excluded) that come from its own view, averaged (%): 50 = the views are
      mixed, 100 = they are apart. A discriminator-free measure of what Dd tries to detect.
    * ``mean_gap``: distance between the two views' means over the pooled feature spread.
    * ``rank1``: cross-view rank-1 (%), probes ``f_s`` against the gallery ``f_t`` (library metric).

    When the views have different sizes (a query set against a 5x larger gallery), the larger one
    is subsampled to the size of the smaller (evenly spaced, deterministic) for the kNN and gap
    measures, so that 50 % stays the "mixed" value; rank-1 uses all of them.
    ``other_identities=True`` counts only neighbours of *other* identities: on real data several
    images of one person under one camera are near-duplicates, which would make any two views
    look separable.
    """
    ranks = rank_metrics(pairwise_distance(f_s, f_t), pid_s.numpy(), pid_t.numpy(),
                         np.zeros(len(f_s), int), np.ones(len(f_t), int), max_rank=1)
    n = min(len(f_s), len(f_t))
    keep_s = torch.linspace(0, len(f_s) - 1, n).round().long()
    keep_t = torch.linspace(0, len(f_t) - 1, n).round().long()
    f_s, f_t = f_s[keep_s], f_t[keep_t]
    f = torch.cat([f_s, f_t])
    view = torch.cat([torch.zeros(len(f_s)), torch.ones(len(f_t))])
    dist = torch.cdist(f, f).fill_diagonal_(float("inf"))
    if other_identities:
        pid = torch.cat([pid_s[keep_s], pid_t[keep_t]])
        dist = dist.masked_fill(pid[:, None] == pid[None, :], float("inf"))
    nn_idx = dist.topk(k, largest=False).indices
    knn = (view[nn_idx] == view[:, None]).double().mean()
    spread = f.std(dim=0).norm().clamp(min=1e-12)
    gap = (f_s.mean(0) - f_t.mean(0)).norm() / spread
    return {"knn_view_acc": float(100 * knn), "mean_gap": float(gap), "rank1": float(100 * ranks.rank1),
            "spread": float(spread)}


def _affine() -> nn.Linear:
    m = nn.Linear(2, 2).double()
    with torch.no_grad():
        m.weight.copy_(torch.eye(2, dtype=torch.float64))
        m.bias.zero_()
    return m


@single_thread()
def simulate(
    toy: TwoViewToy,
    *,
    confusion: bool = True,
    similarity: bool = True,
    steps: int = 300,
    lr: float = 0.02,
    dd_lr: float = 0.02,
    margin: float = 2.0,
    gamma: float = 2.5,
    adaptive: bool = True,
    record_every: int = 10,
    seed: int = 0,
    name: str | None = None,
) -> ToyRun:
    """Algorithm 1 on the toy: affine ``Ms``, ``Mt`` (initialised to the identity), MLP ``Dd`` and ``Ds``.

    Each step: (line 6) one Adam step of ``Dd`` on Eq. 1 with the mapped features held fixed;
    (line 7) one Adam step of ``Ms``, ``Mt`` (and ``Ds``) on ``Eq. 3 [if confusion] + Eq. 5 [if
    similarity]``, the latter on the cross-view pairs of the *labelled* identities only — the
    losses are the library's. ``confusion=False`` still trains ``Dd`` (to measure what it could
    tell), but the mappings ignore it.
    """
    torch.manual_seed(seed)
    ms, mt = _affine(), _affine()
    dd = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2)).double()
    ds = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 1)).double()
    opt_m = torch.optim.Adam([*ms.parameters(), *mt.parameters(), *ds.parameters()], lr=lr)
    opt_d = torch.optim.Adam(dd.parameters(), lr=dd_lr)
    l_dd, l_conf = ViewDiscriminatorLoss(), ViewConfusionLoss()
    l_sim = SimilarityDiscriminatorLoss(margin, gamma, adaptive=adaptive)
    lab_s = torch.isin(toy.pid_s, toy.labelled)
    lab_t = torch.isin(toy.pid_t, toy.labelled)
    label = name or " + ".join([n for n, on in (("confusion (Eq. 3)", confusion), ("similarity (Eq. 5)", similarity)) if on])
    run = ToyRun(label, [])

    def record(step: int, f_s, f_t, dd_loss=float("nan")) -> None:
        with torch.no_grad():
            p_src = dd(f_s).softmax(1)[:, 0].mean()
            p_tgt = dd(f_t).softmax(1)[:, 0].mean()
        stats = view_statistics(f_s.detach(), f_t.detach(), toy.pid_s, toy.pid_t)
        run.history.append({"step": step, **stats, "Dd(source)": float(p_src), "Dd(target)": float(p_tgt),
                            "Dd_loss": float(dd_loss)})

    with torch.no_grad():
        f_s0, f_t0 = ms(toy.x_s), mt(toy.x_t)
    run.snapshots.append((f_s0.numpy().copy(), f_t0.numpy().copy()))
    record(0, f_s0, f_t0)
    for step in range(1, steps + 1):
        f_s, f_t = ms(toy.x_s), mt(toy.x_t)
        # Alg. 1 line 6: Dd on Eq. 1, features fixed
        loss_d = l_dd(dd(f_s.detach()), dd(f_t.detach()))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        # Alg. 1 line 7 (+ Eq. 4's min over Ms, Mt, Ds of Eq. 5)
        loss = f_s.new_zeros(())
        if confusion:
            loss = loss + l_conf(dd(f_s), dd(f_t))
        if similarity:
            a, b = f_s[lab_s], f_t[lab_t]
            n_a, n_b = len(a), len(b)
            pair_logits = ds(torch.cat([a[:, None, :].expand(n_a, n_b, 2), b[None].expand(n_a, n_b, 2)], 2)).squeeze(2)
            same = toy.pid_s[lab_s][:, None] == toy.pid_t[lab_t][None, :]
            loss = loss + l_sim(pair_logits, euclidean(a, b), same)
        opt_m.zero_grad()
        if loss.requires_grad:
            loss.backward()
            opt_m.step()
        if step % record_every == 0 or step == steps:
            with torch.no_grad():
                record(step, ms(toy.x_s), mt(toy.x_t), float(loss_d))
    with torch.no_grad():
        run.snapshots.append((ms(toy.x_s).numpy().copy(), mt(toy.x_t).numpy().copy()))
    return run



@single_thread()
def seed_sweep(seeds, settings: dict[str, dict], *, steps: int = 300, **toy_kw) -> list[dict]:
    """End-of-training statistics of each toy ``setting`` (name -> :func:`simulate` options) per data seed."""
    rows = []
    for seed in seeds:
        toy = two_view_toy(seed=seed, **toy_kw)
        for name, kw in settings.items():
            last = simulate(toy, steps=steps, record_every=steps, name=name, **kw).history[-1]
            rows.append({"seed": seed, "setting": name, "knn_view_acc": last["knn_view_acc"], "rank1": last["rank1"],
                         "Dd gap": last["Dd(source)"] - last["Dd(target)"]})
    return rows


def main(argv=None) -> None:
    """``python -m reid.toys.view_adaptation [RUN_DIR ...]``: the census table of the errata."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", help="run folders whose features.pt to measure as well")
    args = parser.parse_args(argv)
    batches = dict(census_batches())
    for run in args.runs:
        from pathlib import Path

        feats = torch.load(Path(run) / "features.pt", map_location="cpu", weights_only=False)
        batches[f"trained features: {run}"] = list(feature_batches(feats))
    print(f"{'batch':<44} {'reading':<60} {'median d':>8} {'active %':>8} {'pulled %':>8} {'pulled |g| %':>12}")
    for r in census_table(batches):
        print(f"{r['batch']:<44} {r['reading']:<60} {r['median_d']:8.2f} {r['active']:8.1f} {r['pulled']:8.1f} "
              f"{r['pulled_mass']:12.1f}")


if __name__ == "__main__":
    main()
