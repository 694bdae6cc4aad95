"""Gradient audit and mechanism toys for paper 004 (angular margin softmax + batch hard triplet).

Paper 004 (Sabri, Randhawa & Doretto, Sec. 3.3) argues that the normalised softmax of Eq. 2 can
only move an embedding *along* the hypersphere: its gradient with respect to the unnormalised
feature ``x`` is tangent (orthogonal to ``x``), so nothing supervises the norm of ``f_θ``; the
batch hard triplet of Eq. 5 on raw features adds the missing radial component. The paper prints
no gradient formula, so this module writes the gradients out in closed form for the audit, and
simulates what they do. Everything here computes; the figures are in :mod:`reid.viz.joint_am_triplet`.

* :func:`angular_margin_feature_grad` — ``∂L_AM/∂x`` (Eq. 2, any margin and fallback) through
  the normalisation, in closed form;
* :func:`batch_hard_feature_grad` — ``∂L_BH/∂x`` (Eq. 5, hinge or softplus, raw or normalised
  features), in closed form;
* :func:`radial_tangential` — split a gradient into its components along ``x`` and tangent to the
  sphere;
* :func:`bn_radial_audit` — the caveat the paper misses: the embedding is the output of a
  batch-normalisation layer (Sec. 3.4), which fixes the batch's mean squared norm. Whatever the
  loss asks radially at the level of the whole batch reaches BN's own scale and shift, never the
  backbone;
* :func:`gradient_fields` — the (negative) gradient of AM0, of the triplet term and of their sum
  on a 2-D grid;
* :func:`simulate` — 2-D toy features trained directly by each Table 3 variant: what the norms
  and the angles do.

The losses themselves are the library's (:mod:`reid.losses.angular_margin`,
:mod:`reid.losses.triplet`); everything here either restates their derivative by hand (to be
compared with autograd) or calls them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from reid.losses.angular_margin import SIN_EPS, AngularMarginLoss, joint_loss, margin_fallback_offset
from reid.losses.triplet import BatchHardTripletLoss
from reid.toys.threads import single_thread

__all__ = [
    "angular_margin_feature_grad",
    "batch_hard_feature_grad",
    "radial_tangential",
    "BN_AUDIT_VARIANTS",
    "neck_radial_report",
    "bn_radial_audit",
    "GradientField",
    "gradient_fields",
    "ToySimulation",
    "toy_features",
    "simulate",
    "simulation_table_rows",
]


# --------------------------------------------------------------------------- closed-form gradients
def angular_margin_feature_grad(
    features: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    *,
    scale: float,
    margin: float = 0.0,
    fallback: str = "continuous",
    reduction: str = "mean",
) -> torch.Tensor:
    """``∂L_AM/∂x`` of Eq. 2 with respect to the *unnormalised* features ``x`` (closed form).

    With ``x̂ = x/‖x‖``, ``ŵ_j = W_j/‖W_j‖`` and ``c_j = x̂·ŵ_j = cos α_j``, the logits are
    ``z_j = s c_j`` (``j ≠ y``) and ``z_y = s cos(α_y + m) = s (c_y cos m − sin α_y sin m)``
    (the fallback ``s (c_y − δ)`` when ``α_y + m > π``, see
    :func:`reid.losses.angular_margin.margin_fallback_offset`). Then

        ∂L/∂z_j = p_j − 1[j = y]                       (softmax cross-entropy)
        ∂z_j/∂c_j = s,   ∂z_y/∂c_y = s (cos m + c_y sin m / sin α_y)   (s in the fallback)
        ∂L/∂x̂   = Σ_j ∂L/∂z_j ∂z_j/∂c_j ŵ_j
        ∂L/∂x   = (I − x̂ x̂ᵀ) ∂L/∂x̂ / ‖x‖               (the Jacobian of x ↦ x/‖x‖)

    The last line is the point of Sec. 3.3: the projector ``I − x̂x̂ᵀ`` removes every component
    along ``x``, whatever the loss upstream of the normalisation.
    """
    norm = features.norm(dim=1, keepdim=True)
    x_hat = features / norm
    w_hat = weight / weight.norm(dim=1, keepdim=True)
    cos = x_hat @ w_hat.t()
    target = F.one_hot(labels, weight.shape[0]).bool()
    dz_dc = torch.full_like(cos, scale)
    logits = scale * cos
    if margin > 0:
        offset = margin_fallback_offset(margin, fallback)
        cos_m, sin_m = math.cos(margin), math.sin(margin)
        sin = (1.0 - cos * cos).clamp(min=SIN_EPS).sqrt()
        z_t, dz_t = cos * cos_m - sin * sin_m, cos_m + cos * sin_m / sin
        if offset is not None:
            inside = cos > -cos_m  # α + m ≤ π
            z_t = torch.where(inside, z_t, cos - offset)
            dz_t = torch.where(inside, dz_t, torch.ones_like(cos))
        logits = torch.where(target, scale * z_t, logits)
        dz_dc = torch.where(target, scale * dz_t, dz_dc)
    g_logits = logits.softmax(dim=1) - target.to(cos.dtype)
    if reduction == "mean":
        g_logits = g_logits / features.shape[0]
    g_hat = (g_logits * dz_dc) @ w_hat  # ∂L/∂x̂
    radial = (g_hat * x_hat).sum(dim=1, keepdim=True)
    return (g_hat - radial * x_hat) / norm


def batch_hard_feature_grad(
    features: torch.Tensor,
    labels: torch.Tensor,
    *,
    margin: float = 0.3,
    soft: bool = False,
    normalize: bool = False,
    reduction: str = "mean",
) -> torch.Tensor:
    """``∂L_BH/∂x`` of Eq. 5 (Euclidean distance) in closed form.

    For anchor ``a`` with hardest positive ``p`` and hardest negative ``n`` and slack
    ``ξ_a = m + D_ap − D_an``, let ``h_a = 1[ξ_a > 0]`` (hinge) or ``σ(ξ_a)`` (softplus) and
    ``u_ab = (x_a − x_b)/D_ab``. The anchor's term contributes

        to x_a:  h_a (u_ap − u_an),    to x_p:  −h_a u_ap,    to x_n:  +h_a u_an,

    all of them along differences of features, which in general have a component along ``x``
    (radial). With ``normalize=True`` (row AM0BH1) the same gradient is taken with respect to
    ``x̂`` and then projected by ``(I − x̂x̂ᵀ)/‖x‖``: tangent again. ``reduction="mean"`` divides
    by the number of anchors (P×K batches: all of them have a triplet).
    """
    x = F.normalize(features, dim=1) if normalize else features
    n = x.shape[0]
    diff = x[:, None, :] - x[None, :, :]
    dist = diff.norm(dim=2)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(n, dtype=torch.bool)
    pos = torch.where(same & ~eye, dist, torch.zeros_like(dist)).argmax(dim=1)
    neg = torch.where(~same, dist, torch.full_like(dist, float("inf"))).argmin(dim=1)
    rows = torch.arange(n)
    d_ap, d_an = dist[rows, pos], dist[rows, neg]
    slack = margin + d_ap - d_an
    h = torch.sigmoid(slack) if soft else (slack > 0).to(x.dtype)
    u_ap = diff[rows, pos] / d_ap[:, None]
    u_an = diff[rows, neg] / d_an[:, None]
    g = h[:, None] * (u_ap - u_an)
    g = g.index_add(0, pos, -h[:, None] * u_ap)
    g = g.index_add(0, neg, h[:, None] * u_an)
    if reduction == "mean":
        g = g / n
    if normalize:
        norm = features.norm(dim=1, keepdim=True)
        g = (g - (g * x).sum(dim=1, keepdim=True) * x) / norm
    return g


def radial_tangential(features: torch.Tensor, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample: the component of ``grad`` along ``x̂`` (signed) and the norm of the tangent rest."""
    x_hat = F.normalize(features, dim=1)
    radial = (grad * x_hat).sum(dim=1)
    tangent = (grad - radial[:, None] * x_hat).norm(dim=1)
    return radial, tangent


# --------------------------------------------------------------------------- the BN caveat
#: The Table 3 rows the BN audit runs through (the ``_Attr`` model splits the same embedding).
BN_AUDIT_VARIANTS = ("AM0", "AM", "BH", "AM0BH", "AMBH", "AM0BH1", "AM0BHsp")


def _batch_radial(features: torch.Tensor, change: torch.Tensor) -> float:
    """``|Σ_i x_i·v_i| / (‖x‖_F ‖v‖_F)``: the cosine between a batch-wide change ``v`` and the
    batch's own radial direction (the direction that scales every embedding at once)."""
    denom = float(features.norm() * change.norm())
    return abs(float((features * change).sum())) / denom if denom > 0 else 0.0


def _radial_shares(features: torch.Tensor, change: torch.Tensor) -> torch.Tensor:
    """Per-sample ``|radial| / (|radial| + ‖tangential‖)`` of ``change``. A sample whose change is
    exactly zero (a satisfied hinge: batch hard leaves most samples without gradient) has no
    direction and is left out; a batch where every sample is so gives ``[0.]``."""
    radial, tangent = radial_tangential(features, change)
    total = radial.abs() + tangent
    moving = total > 0
    return radial.abs()[moving] / total[moving] if moving.any() else total.new_zeros(1)


def neck_radial_report(
    pooled: torch.Tensor,
    labels: torch.Tensor,
    loss_fn,
    *,
    neck_weight: torch.Tensor | None = None,
    neck_bias: torch.Tensor | None = None,
    eps: float = 1e-5,
    loss_args: tuple = (),
) -> dict[str, float]:
    """Radial components of a loss's gradient at the embedding, and of what the neck lets through.

    ``pooled`` are the backbone's pooled features ``p`` of one batch. The embedding is
    ``f = BN(p)`` in training mode with the affine ``neck_weight`` / ``neck_bias`` (paper 004's BN
    neck, Sec. 3.4), or ``f = p`` when they are ``None`` (no neck). With ``g = ∂L/∂f`` for
    ``L = loss_fn(f, labels, *loss_args)`` and ``δf = J Jᵀ g`` the first-order change of ``f``
    that a unit backbone step along ``−∂L/∂p`` makes (``J`` the neck's Jacobian), the keys are

    * ``loss_radial_mean`` / ``loss_radial_max``: the per-sample share ``|f̂_i·g_i| / (|f̂_i·g_i| + ‖g_i,tan‖)``;
    * ``loss_radial_batch``: the cosine between ``g`` and the batch's radial direction ``f``;
    * ``backbone_radial_batch``: the same cosine for ``δf`` (zero up to BN's ε with the neck: BN
      fixes the batch's mean squared norm, Eq. jat-bn of the chapter);
    * ``backbone_radial_max``: the largest per-sample radial share of ``δf``;
    * ``affine_identity_error``: ``|Σ_c γ_c ∂L/∂γ_c + β_c ∂L/∂β_c − Σ_i f_i·g_i|`` (0 without a neck).
    """
    p = pooled.detach().requires_grad_(True)
    affine = ()
    if neck_weight is not None:
        w, b = neck_weight.detach().requires_grad_(True), neck_bias.detach().requires_grad_(True)
        affine = (w, b)

    def neck(q, w=neck_weight, b=neck_bias):
        if w is None:
            return q
        return F.batch_norm(q, None, None, w.detach(), b.detach(), training=True, eps=eps)

    f = F.batch_norm(p, None, None, *affine, training=True, eps=eps) if affine else p
    loss = loss_fn(f, labels, *loss_args)
    g_f, g_p, *g_affine = torch.autograd.grad(loss, (f, p, *affine))
    f = f.detach()
    _, delta_f = torch.func.jvp(neck, (pooled.detach(),), (-g_p,))
    shares = _radial_shares(f, g_f)
    out = {
        "loss_radial_mean": float(shares.mean()),
        "loss_radial_max": float(shares.max()),
        "loss_radial_batch": _batch_radial(f, g_f),
        "backbone_radial_batch": _batch_radial(f, delta_f),
        "backbone_radial_max": float(_radial_shares(f, delta_f).max()),
        "affine_identity_error": 0.0,
    }
    if affine:
        identity = (affine[0] * g_affine[0]).sum() + (affine[1] * g_affine[1]).sum() - (f * g_f).sum()
        out["affine_identity_error"] = abs(float(identity))
    return out


@single_thread()
def bn_radial_audit(
    *,
    num_ids: int = 8,
    per_id: int = 4,
    dim: int = 64,
    scale: float = 30.0,
    gamma: float = 0.43,
    triplet_margin: float = 0.3,
    dtype: torch.dtype = torch.float64,
    eps: float = 1e-5,
    seed: int = 0,
    variants: tuple[str, ...] = BN_AUDIT_VARIANTS,
) -> list[dict]:
    """What a loss's radial gradient can do when the embedding is a BN layer's output (Sec. 3.4).

    In training mode, channel ``c`` of the BN output is ``f_ic = γ_c (p_ic − μ_c)/σ_c + β_c`` with
    the batch's mean ``μ_c`` and standard deviation ``σ_c`` of the pooled backbone features ``p``.
    Averaged over the batch, ``(1/N) Σ_i f_ic² = γ_c² σ_c²/(σ_c² + ε) + β_c²``: up to BN's ``ε``
    (``eps``, 1e-5 in the model, so the invariance holds to about ``ε/σ²``), the batch's mean
    squared norm ``(1/N) Σ_i ‖f_i‖²`` is fixed by BN's own parameters, whatever the backbone
    does. So the backbone cannot deliver a change that scales the whole batch radially, for any
    loss; the per-sample radial gradient of BH can only *redistribute* norms among the samples,
    and the batch-level part of it reaches only ``γ`` and ``β`` (their gradient satisfies
    ``Σ_c γ_c ∂L/∂γ_c + β_c ∂L/∂β_c = Σ_i f_i·∂L/∂f_i``).

    For each variant, on random pooled features (``num_ids × per_id`` samples, ``dim`` channels)
    passed through a BN layer with random affine parameters, one row of :func:`neck_radial_report`
    (per-sample shares as their maximum over the batch):

    * ``loss radial (per sample)``: the largest share ``|f̂_i·g_i| / (|f̂_i·g_i| + ‖g_i,tan‖)`` of
      the loss gradient ``g = ∂L/∂f`` (0 for the normalised losses, > 0 with a raw-feature triplet);
    * ``loss radial (batch)``: the cosine between ``g`` and the batch's radial direction ``f``;
    * ``backbone radial (batch)``: the same cosine for the change ``δf = J_BN J_BNᵀ g`` that a
      backbone step along ``−∂L/∂p`` makes to ``f`` (zero up to ``ε/σ²`` and rounding, for every
      loss);
    * ``backbone radial (per sample)``: the largest per-sample radial share of ``δf`` (non-zero
      even for AM0: BN couples the samples, so the norms of single embeddings still move);
    * ``affine identity error``: ``|Σ_c γ_c ∂L/∂γ_c + β_c ∂L/∂β_c − Σ_i f_i·g_i|`` (rounding).
    """
    gen = torch.Generator().manual_seed(seed)
    n = num_ids * per_id
    labels = torch.arange(num_ids).repeat_interleave(per_id)
    pooled = torch.rand(n, dim, generator=gen, dtype=torch.float64).to(dtype)  # post-ReLU GAP: >= 0
    bn_weight = (0.5 + torch.rand(dim, generator=gen, dtype=torch.float64)).to(dtype)
    bn_bias = (0.1 * torch.randn(dim, generator=gen, dtype=torch.float64)).to(dtype)
    rows = []
    for variant in variants:
        torch.manual_seed(seed)  # the same classifier weights for every variant
        loss_fn = joint_loss(variant, dim, num_ids, scale=scale, gamma=gamma, triplet_margin=triplet_margin).to(dtype)
        r = neck_radial_report(pooled, labels, loss_fn, neck_weight=bn_weight, neck_bias=bn_bias, eps=eps)
        rows.append({
            "variant": variant,
            "loss radial (per sample)": r["loss_radial_max"],
            "loss radial (batch)": r["loss_radial_batch"],
            "backbone radial (batch)": r["backbone_radial_batch"],
            "backbone radial (per sample)": r["backbone_radial_max"],
            "affine identity error": r["affine_identity_error"],
        })  # fmt: skip
    return rows


# --------------------------------------------------------------------------- gradient fields
@dataclass
class GradientField:
    """Negative gradients on a 2-D grid: ``points`` (G, 2) and one (G, 2) field per loss."""

    points: np.ndarray
    fields: dict[str, np.ndarray]
    class_directions: np.ndarray  # (C, 2) unit class weights
    label: int
    positive: np.ndarray
    negative: np.ndarray


def _class_directions(num_classes: int) -> torch.Tensor:
    angles = torch.arange(num_classes, dtype=torch.float64) * (2 * math.pi / num_classes) + math.pi / 2
    return torch.stack([angles.cos(), angles.sin()], dim=1)


@single_thread()
def gradient_fields(
    *,
    num_classes: int = 3,
    label: int = 0,
    scale: float = 4.0,
    gamma: float = 0.43,
    triplet_margin: float = 0.3,
    positive: tuple[float, float] = (0.0, 1.6),
    negative: tuple[float, float] = (-1.0, 0.3),
    extent: float = 2.2,
    steps: int = 13,
) -> GradientField:
    """``−∂L/∂x`` at grid points ``x`` for AM0 (Eq. 2, m = 0), the triplet term (Eq. 5) and AM0BH (Eq. 6).

    The grid point is a sample of class ``label``; the softmax has ``num_classes`` unit weights
    spread evenly on the circle (class ``label`` pointing up). For the triplet term the grid point
    is the anchor of a three-sample batch ``[x, positive, negative]`` (a positive of the same
    class, a negative of another), so its hardest positive and negative are those two points.
    Gradients come from the library losses by autograd, one grid point at a time.
    """
    coords = np.linspace(-extent, extent, steps)
    grid = torch.tensor([(a, b) for b in coords for a in coords], dtype=torch.float64)
    grid = grid[grid.norm(dim=1) > 0.25]  # the normalisation is singular at the origin
    am = AngularMarginLoss(in_features=2, num_classes=num_classes, scale=scale, margin=0.0, reduction="sum").double()
    with torch.no_grad():
        am.weight.copy_(_class_directions(num_classes))
    x = grid.clone().requires_grad_(True)
    am(x, torch.full((len(grid),), label, dtype=torch.long)).backward()
    g_am = -x.grad.detach()

    bh = BatchHardTripletLoss(triplet_margin, reduction="sum")
    fixed = torch.tensor([positive, negative], dtype=torch.float64)
    other = (label + 1) % num_classes
    labels = torch.tensor([label, label, other])
    g_bh = torch.zeros_like(grid)
    for i, point in enumerate(grid):
        xi = point.clone().requires_grad_(True)
        bh(torch.cat([xi[None], fixed]), labels).backward()  # anchor term of x (+ the others' terms on x)
        g_bh[i] = -xi.grad
    fields = {"AM0 (Eq. 2, m = 0)": g_am, f"triplet (γ = {gamma:g} × Eq. 5)": gamma * g_bh,
              "AM0BH (Eq. 6)": g_am + gamma * g_bh}
    return GradientField(
        points=grid.numpy(), fields={k: v.numpy() for k, v in fields.items()},
        class_directions=_class_directions(num_classes).numpy(), label=label,
        positive=np.asarray(positive), negative=np.asarray(negative),
    )


# --------------------------------------------------------------------------- training toy
@dataclass
class ToySimulation:
    """Trajectory of toy features trained directly by one loss variant."""

    variant: str
    snapshots: list[np.ndarray]  # (N, 2) features at the snapshot steps
    labels: np.ndarray
    stats: list[dict] = field(default_factory=list)


def toy_features(num_classes: int = 4, per_class: int = 8, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A 2-D P×K batch: ``num_classes`` identities with overlapping angular spreads and varied norms."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    angles = labels.double() * (2 * math.pi / num_classes) + 0.9 * torch.randn(len(labels), generator=gen, dtype=torch.float64)
    radii = 1.0 + 0.6 * torch.rand(len(labels), generator=gen, dtype=torch.float64)
    return torch.stack([angles.cos(), angles.sin()], 1) * radii[:, None], labels


def _toy_stats(x: torch.Tensor, labels: torch.Tensor, step: int) -> dict:
    norms = x.norm(dim=1)
    x_hat = F.normalize(x, dim=1)
    classes = labels.unique()
    means = torch.stack([F.normalize(x_hat[labels == c].mean(0), dim=0) for c in classes])
    # angular spread: mean angle (deg) between a feature and its class's mean direction
    within = torch.rad2deg(torch.acos((x_hat * means[labels]).sum(1).clamp(-1, 1))).mean()
    # cross-identity nearest neighbour in Euclidean distance (what retrieval ranks with)
    dist = torch.cdist(x, x).fill_diagonal_(float("inf"))
    nn_same = (labels[dist.argmin(1)] == labels).double().mean()
    return {"step": step, "mean_norm": float(norms.mean()), "norm_cv": float(norms.std() / norms.mean()),
            "angular_spread_deg": float(within), "nn_accuracy": float(100 * nn_same)}


@single_thread()
def simulate(
    variant: str,
    *,
    steps: int = 60,
    lr: float = 0.1,
    scale: float = 4.0,
    gamma: float = 0.43,
    triplet_margin: float = 0.3,
    num_classes: int = 4,
    per_class: int = 8,
    snapshot_every: int = 20,
    seed: int = 0,
) -> ToySimulation:
    """Train the 2-D toy features themselves (plain gradient descent) with a Table 3 ``variant``.

    The loss is :func:`reid.losses.angular_margin.joint_loss` (the engine's own constructor) with
    the class weights fixed at evenly spaced unit directions, so that only the features move and
    the geometry is easy to read.
    """
    x0, labels = toy_features(num_classes, per_class, seed=seed)
    loss_fn = joint_loss(variant, 2, num_classes, scale=scale, gamma=gamma, triplet_margin=triplet_margin).double()
    if loss_fn.am is not None:
        with torch.no_grad():
            loss_fn.am.weight.copy_(_class_directions(num_classes))
        loss_fn.am.weight.requires_grad_(False)
    x = x0.clone().requires_grad_(True)
    sim = ToySimulation(variant, [x0.numpy().copy()], labels.numpy(), [_toy_stats(x0, labels, 0)])
    for step in range(1, steps + 1):
        loss = loss_fn(x, labels) * len(labels)  # per-sample step size, whatever the reduction
        (g,) = torch.autograd.grad(loss, x)
        with torch.no_grad():
            x -= lr * g
        if step % snapshot_every == 0 or step == steps:
            sim.snapshots.append(x.detach().numpy().copy())
            sim.stats.append(_toy_stats(x.detach(), labels, step))
    return sim


def simulation_table_rows(sims: list[ToySimulation]) -> list[dict]:
    """First and last statistics of each simulation, one row each (for ``reid.viz.make_table``)."""
    rows = [{"variant": "(start)", **{k: v for k, v in sims[0].stats[0].items() if k != "step"}}]
    rows += [{"variant": s.variant, **{k: v for k, v in s.stats[-1].items() if k != "step"}} for s in sims]
    return rows
