"""Additive angular margin softmax, attribute heads and the joint losses — paper 004.

Sabri, Randhawa & Doretto, "Joint Discriminative and Metric Embedding Learning for Person
Re-Identification":

* :class:`AngularMarginLoss` — Eq. 2, softmax on ``s·cos`` of L2-normalised features and class
  weights with an additive angular margin ``m`` on the target class (ArcFace [6]); ``margin=0`` is
  the paper's "AM0" (NormFace / SphereReID), ``margin=0.5`` its "AM";
* :class:`AttributeAngularMarginLoss` — Eq. 3, one angular-margin classifier per attribute on its
  own ``Q``-dimensional slice of the embedding;
* :class:`JointAngularTripletLoss` and :func:`joint_loss` — Eq. 6 and Eq. 7 and the rows of
  Table 3 (AM0, AM, BH, AM0BH, AMBH, AM0BH1, AM0BHsp, plus the ``_Attr`` models).

What the paper does not state, and what we do:

* **The scale ``s``** (the hypersphere radius of Sec. 3.1) is never given a value, so it is a
  required argument. For reference: ArcFace uses 64, SphereReID (the paper's "AM0" baseline [7]) 14.
* **θ + m > π.** ``cos(θ + m)`` stops decreasing once ``θ + m > π``, so the margin would *reward*
  a target angle near π. The paper is silent. For ``θ > π - m`` the target logit becomes
  ``cos θ - δ`` (still decreasing in θ), with ``δ`` chosen by ``fallback``:

  - ``"continuous"`` (default): ``δ = 1 - cos m``, so the logit meets ``cos(θ + m) = -1`` at
    ``θ = π - m``: continuous (with a kink), monotone;
  - ``"arcface"``: ``δ = m·sin m``, the ArcFace reference implementation's constant. It is *not*
    continuous: at ``θ = π - m`` the logit drops by ``cos m + m·sin m - 1`` (0.117 for m = 0.5,
    i.e. 0.117·s in the logit). The drop raises the loss on the far side, so it never rewards a
    wrong angle, but the loss as a function of θ jumps;
  - ``"none"``: ``cos(θ + m)`` everywhere, Eq. 2 as printed (rewards θ near π).
* **Numerics.** ``cos(θ + m) = cos θ cos m - sin θ sin m`` with ``sin θ = sqrt(max(1 - cos²θ, ε))``,
  so there is no ``acos`` (whose clamped argument would pass a zero gradient at ``|cos θ| = 1``)
  and no infinite derivative of ``sqrt`` at 0. ``cos θ`` itself is not clamped: it keeps its exact
  gradient everywhere. The margin is part of the autograd graph. Zero-norm features or weights
  give ``cos θ = 0`` (finite; norms are floored at 1e-12 as in ``F.normalize``).
* **The classifier weights ``W``** live in the loss module (``loss.parameters()``): hand them to the
  optimiser together with the model's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from reid.errors import ConfigError
from reid.losses._checks import check_features, check_finite, check_index, check_reduction
from reid.losses.triplet import BatchHardTripletLoss

__all__ = [
    "AngularMarginLoss",
    "AttributeAngularMarginLoss",
    "JointAngularTripletLoss",
    "joint_loss",
    "additive_angular_margin_logits",
    "margin_fallback_offset",
    "FALLBACKS",
    "VARIANTS",
]

#: Floor of the feature / weight norms in the cosine (as ``F.normalize``).
NORM_EPS = 1e-12

#: Floor of ``1 - cos²θ`` under the square root of ``sin θ`` (keeps d sinθ / d cosθ finite).
SIN_EPS = 1e-12


#: Offsets ``δ(m)`` of the target logit ``cos θ - δ`` used where ``θ + m > π`` (see the module docstring).
FALLBACKS: dict[str, object] = {
    "continuous": lambda m: 1.0 - math.cos(m),
    "arcface": lambda m: m * math.sin(m),
    "none": None,
}


def margin_fallback_offset(margin: float, fallback: str = "continuous") -> float | None:
    """``δ`` of the fallback logit ``cos θ - δ`` for ``θ > π - m`` (``None`` for ``"none"``)."""
    if fallback not in FALLBACKS:
        raise ConfigError(
            f"margin fallback {fallback!r} is not valid; choose one of {', '.join(FALLBACKS)} "
            "(continuous: no jump at θ = π - m; arcface: ArcFace's constant m·sin m; none: Eq. 2 as printed)."
        )
    offset = FALLBACKS[fallback]
    return None if offset is None else offset(margin)


def additive_angular_margin_logits(
    cos: torch.Tensor, target: torch.Tensor, scale: float, margin: float, fallback: str = "continuous"
) -> torch.Tensor:
    """Logits ``s·cos(θ_y + m)`` at the target entries and ``s·cos θ_j`` elsewhere (Eq. 2 and Eq. 3).

    ``cos`` holds ``cos θ`` of any shape, ``target`` is a boolean mask of the same shape (one
    ``True`` per classification problem). Where ``θ_y + m > π`` the target logit is
    ``s·(cos θ_y - δ)`` with ``δ`` from ``fallback`` (module docstring). Shared by the identity
    and the attribute losses.
    """
    offset = margin_fallback_offset(margin, fallback)
    if margin == 0.0:
        return scale * cos
    cos_m, sin_m = math.cos(margin), math.sin(margin)
    sin = (1.0 - cos * cos).clamp(min=SIN_EPS).sqrt()
    # cos(θ + m) = cos θ cos m - sin θ sin m
    cos_theta_m = cos * cos_m - sin * sin_m
    if offset is not None:
        # θ + m > π  <=>  cos θ < cos(π - m) = -cos m: the monotone fallback cos θ - δ
        cos_theta_m = torch.where(cos > -cos_m, cos_theta_m, cos - offset)
    return scale * torch.where(target, cos_theta_m, cos)


def _check_scale_margin(scale: float, margin: float) -> None:
    if scale <= 0:
        raise ConfigError(f"scale s must be > 0, got {scale} (paper 004 does not state it; ArcFace uses 64).")
    if not 0.0 <= margin < math.pi / 2:
        raise ConfigError(f"angular margin m must lie in [0, π/2), got {margin} (AM0: 0, AM: 0.5).")


class AngularMarginLoss(nn.Module):
    """Additive angular margin softmax loss (paper 004, Eq. 2); ``margin=0`` is "AM0".

        L_AM = -(1/N) Σ_i log( e^{s cos(α_{y_i} + m)} / ( e^{s cos(α_{y_i} + m)} + Σ_{j≠y_i} e^{s cos α_j} ) )   (Eq. 2)

    with ``cos α_j = x_i·W_j / (||x_i|| ||W_j||)`` (bias 0, "as in [23]"). ``reduction="mean"`` is
    Eq. 2 as printed (the 1/N mean); ``"sum"`` is its Σ_i without the 1/N.

    ``AngularMarginLoss(*, in_features=in_features, num_classes=num_classes, scale=scale, margin=0.5, fallback="continuous")``
    (``fallback``: the target logit where ``α_y + m > π``, see the module docstring);
    ``forward(features, labels) -> loss``; :meth:`logits` gives ``s·cos α`` without the margin
    (for accuracy, or test-time classification).

    Every argument is keyword-only: pytorch-metric-learning's ``ArcFaceLoss`` takes
    ``(num_classes, embedding_size, …)`` in the opposite order, so a positional call copied from
    it would silently build the transposed weight. ``embedding_size`` is accepted as that
    library's name for ``in_features``.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        scale: float,
        in_features: int | None = None,
        margin: float = 0.5,
        embedding_size: int | None = None,
        reduction: str = "mean",
        fallback: str = "continuous",
    ) -> None:
        super().__init__()
        if in_features is None:
            in_features = embedding_size
        elif embedding_size is not None and embedding_size != in_features:
            raise ConfigError(f"in_features={in_features} and embedding_size={embedding_size} name the same size; give one.")
        if in_features is None:
            raise ConfigError("AngularMarginLoss needs in_features (the embedding size; embedding_size= also works).")
        if in_features < 1 or num_classes < 2:
            raise ConfigError(
                f"need in_features >= 1 and num_classes >= 2, got {in_features} and {num_classes}."
            )
        _check_scale_margin(scale, margin)
        margin_fallback_offset(margin, fallback)
        self.in_features, self.num_classes = int(in_features), int(num_classes)
        self.scale, self.margin, self.fallback = float(scale), float(margin), fallback
        self.reduction = check_reduction(reduction)
        self.weight = nn.Parameter(torch.empty(self.num_classes, self.in_features))
        nn.init.xavier_uniform_(self.weight)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, num_classes={self.num_classes}, scale={self.scale}, "
            f"margin={self.margin}, fallback={self.fallback!r}, reduction={self.reduction!r}"
        )

    def cosine(self, features: torch.Tensor) -> torch.Tensor:
        """``cos α_j = x_i·W_j / (||x_i|| ||W_j||)`` for every feature and class weight.

        The same formula as :func:`reid.metrics.distance.cosine_similarity_matrix` (norms floored
        at ``1e-12``, so a zero vector gives 0), with the two normalisations applied to the
        ``N × C`` product instead of to the ``C × D`` weight matrix: at 751 × 2048 that saves
        several full passes over the weights, forward and backward (about 2× on the whole loss).
        """
        inv_x = features.norm(dim=1).clamp(min=NORM_EPS).reciprocal()
        inv_w = self.weight.norm(dim=1).clamp(min=NORM_EPS).reciprocal()
        return F.linear(features, self.weight) * inv_x[:, None] * inv_w[None, :]

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """``s·cos α_j`` for every class, without margin."""
        return self.scale * self.cosine(features)

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        check_finite(self, features=features)
        check_features(features, self.in_features)
        check_index(labels, self.num_classes, features.shape[0], "labels", "identities")
        cos = self.cosine(features)
        target = F.one_hot(labels, self.num_classes).bool()
        # Eq. 2: cross-entropy of the logits s·cos(α_y + m) (target) and s·cos α_j (others)
        logits = additive_angular_margin_logits(cos, target, self.scale, self.margin, self.fallback)
        return F.cross_entropy(logits, labels, reduction=self.reduction)


class AttributeAngularMarginLoss(nn.Module):
    """One angular-margin classifier per attribute on its own slice of the embedding (paper 004, Eq. 3).

        L_AM_attr = -(1/N) Σ_i Σ_k log( e^{s cos(α_{a_k,i} + m)} / ( e^{s cos(α_{a_k,i} + m)} + e^{s cos ᾱ_{a_k,i}} ) )   (Eq. 3)

    The attribute embedding ``f_θa`` (shape ``(N, M·Q)``) is cut into ``M`` consecutive slices of
    ``Q`` features (Q = 16 in the paper, Fig. 2); attribute ``k`` is predicted from slice ``k`` by
    its own normalised weights. ``reduction="mean"`` is Eq. 3 (1/N, summed over attributes);
    ``"sum"`` drops the 1/N.

    **Multi-valued attributes.** Eq. 3 assumes "M binary attributes", yet the paper counts 27
    attributes for Market-1501, which is only possible with Market's 4-valued *age* included
    (Lin et al.'s annotation: age + 26 binary attributes; DukeMTMC's 23 are all binary). A 4-valued
    attribute cannot be a 2-way classifier, so we read Eq. 3 as a categorical cross-entropy per
    attribute — "the number of categories is 2" for binary ones — and give age a C-way angular
    classifier (``e^{s cos(α_target + m)}`` against the C - 1 other values) on its slice.
    ``num_values`` is the number of attributes ``M`` (all binary) or one value count per attribute,
    e.g. ``[4] + [2] * 26`` for Market. Labels are ``(N, M)`` integers in ``[0, C_k)`` (0 = absent
    for binary attributes).

    ``AttributeAngularMarginLoss(num_values, scale, margin=0.5, *, slice_dim=16, fallback="continuous")``;
    ``forward(attr_features, attr_labels) -> loss``.
    """

    def __init__(
        self,
        num_values: int | Sequence[int],
        scale: float,
        margin: float = 0.5,
        *,
        slice_dim: int = 16,
        reduction: str = "mean",
        fallback: str = "continuous",
    ) -> None:
        super().__init__()
        values = [2] * int(num_values) if isinstance(num_values, int) else [int(c) for c in num_values]
        if not values or min(values) < 2:
            raise ConfigError(
                f"num_values must be a number of binary attributes >= 1 or a list of value counts >= 2, got {num_values!r}."
            )
        if slice_dim < 1:
            raise ConfigError(f"slice_dim Q must be >= 1, got {slice_dim} (the paper uses Q = 16).")
        _check_scale_margin(scale, margin)
        margin_fallback_offset(margin, fallback)
        self.fallback = fallback
        self.num_values = values
        self.num_attributes, self.slice_dim = len(values), int(slice_dim)
        self.scale, self.margin = float(scale), float(margin)
        self.reduction = check_reduction(reduction)
        c_max = max(values)
        self.weight = nn.Parameter(torch.empty(self.num_attributes, c_max, self.slice_dim))
        nn.init.xavier_uniform_(self.weight.view(-1, self.slice_dim))
        # valid[k, c]: attribute k has a value c (padding classes of binary attributes are masked out)
        self.register_buffer("valid", torch.arange(c_max)[None, :] < torch.tensor(values)[:, None], persistent=False)

    @property
    def in_features(self) -> int:
        return self.num_attributes * self.slice_dim

    def extra_repr(self) -> str:
        return (
            f"num_values={self.num_values}, slice_dim={self.slice_dim}, scale={self.scale}, "
            f"margin={self.margin}, fallback={self.fallback!r}, reduction={self.reduction!r}"
        )

    def cosine(self, attr_features: torch.Tensor) -> torch.Tensor:
        """``cos α[n, k, c]`` between slice ``k`` of sample ``n`` and value ``c`` of attribute ``k``."""
        n = attr_features.shape[0]
        slices = F.normalize(attr_features.reshape(n, self.num_attributes, self.slice_dim), dim=2)
        weight = F.normalize(self.weight, dim=2)
        return torch.einsum("nkq,kcq->nkc", slices, weight)

    def forward(self, attr_features: torch.Tensor, attr_labels: torch.Tensor) -> torch.Tensor:
        check_finite(self, attr_features=attr_features)
        check_features(attr_features, self.in_features, name="attr_features")
        n = attr_features.shape[0]
        if attr_labels.shape != (n, self.num_attributes) or attr_labels.is_floating_point():
            raise ConfigError(
                f"attr_labels must be an integer (N, M) = ({n}, {self.num_attributes}) tensor, one value per "
                f"attribute, got {attr_labels.dtype} of shape {tuple(attr_labels.shape)}."
            )
        limits = torch.tensor(self.num_values, device=attr_labels.device)
        if bool(((attr_labels < 0) | (attr_labels >= limits)).any()):
            raise ConfigError(
                f"attr_labels out of range: attribute k takes values 0..C_k-1 with C = {self.num_values}; "
                "map Market/Duke's 1/2 coding to 0/1 (and age 1..4 to 0..3) first."
            )
        labels = attr_labels.long()
        cos = self.cosine(attr_features)
        target = F.one_hot(labels, cos.shape[2]).bool()
        # Eq. 3: per attribute, softmax over its values of s·cos(α_target + m) and s·cos ᾱ
        logits = additive_angular_margin_logits(cos, target, self.scale, self.margin, self.fallback)
        logits = logits.masked_fill(~self.valid, float("-inf"))
        nll = -(logits.log_softmax(dim=2).gather(2, labels[:, :, None]).squeeze(2))  # (N, M)
        total = nll.sum()
        return total / n if self.reduction == "mean" else total


#: Table 3 rows: (identity-loss margin or None, triplet or not, triplet on normalised features, softplus).
VARIANTS: dict[str, dict] = {
    "AM0": {"margin": 0.0, "triplet": False},
    "AM": {"margin": 0.5, "triplet": False},
    "BH": {"margin": None, "triplet": True},
    "AM0BH": {"margin": 0.0, "triplet": True},
    "AMBH": {"margin": 0.5, "triplet": True},
    "AM0BH1": {"margin": 0.0, "triplet": True, "normalize": True},
    "AM0BHsp": {"margin": 0.0, "triplet": True, "soft": True},
}


class JointAngularTripletLoss(nn.Module):
    """Joint identity / attribute / metric loss of paper 004, Eq. 6 and Eq. 7.

        L_AMBH      = L_AM(θ, W) + γ L_BH(θ)                                              (Eq. 6)
        L_AMBH_Attr = L_AM(θ_id, W_id) + λ L_AM_attr(θ_a, W_a) + γ L_BH(θ_id)                (Eq. 7)

    ``am`` (an :class:`AngularMarginLoss`, or ``None`` for "BH" alone), ``triplet`` (a
    :class:`BatchHardTripletLoss`, or ``None`` for "AM"/"AM0" alone) and optionally ``attributes``
    (an :class:`AttributeAngularMarginLoss`). With attributes, the embedding is split as in Sec. 4.1:
    the *last* ``M·Q`` features are ``f_θa`` (the paper does not say which end; we take the last),
    the rest is ``f_θid``, which feeds both the identity classifier and the triplet loss.

    The triplet term works on the raw embedding (no normalisation, "D = Euclidean distance"), except
    in the AM0BH1 row. **Normalisation of the sum:** Eq. 2 and Eq. 3 are means over the batch (1/N),
    Eq. 5 is printed as a Σ over the P·K anchors; with the γ values of the paper (0.33–0.5) a Σ over
    32 anchors would let the triplet term dominate, so we read Eq. 5 as a mean inside Eq. 6/7
    (the triplet module's own ``reduction``; build it with ``reduction="sum"`` for the literal mix).

    ``forward(features, labels, attr_labels=None) -> loss``; the weighted parts are in
    ``last_stats`` (``am``, ``attr``, ``triplet``).
    """

    def __init__(
        self,
        am: AngularMarginLoss | None,
        triplet: BatchHardTripletLoss | None,
        *,
        gamma: float = 0.43,
        attributes: AttributeAngularMarginLoss | None = None,
        lam: float = 0.25,
    ) -> None:
        super().__init__()
        if am is None and triplet is None:
            raise ConfigError("a joint loss needs an identity loss (am), a triplet loss, or both.")
        if attributes is not None and am is None:
            raise ConfigError("the attribute loss (Eq. 7) is added to the identity loss; give am as well.")
        if gamma < 0 or lam < 0:
            raise ConfigError(f"gamma and lam must be >= 0, got {gamma} and {lam}.")
        self.am, self.triplet, self.attributes = am, triplet, attributes
        self.gamma, self.lam = float(gamma), float(lam)
        self.last_stats: dict[str, float] = {}

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, lam={self.lam}"

    def split(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(f_θid, f_θa)``: the attribute slices are the last ``M·Q`` features (Sec. 4.1)."""
        if self.attributes is None:
            return features, None
        width = self.attributes.in_features
        if features.shape[1] <= width:
            raise ConfigError(
                f"the embedding has {features.shape[1]} features, but the attribute heads need {width} "
                f"(M·Q = {self.attributes.num_attributes}·{self.attributes.slice_dim}) plus at least one "
                "identity feature; lower slice_dim or widen the embedding."
            )
        return features[:, :-width], features[:, -width:]

    def forward(
        self, features: torch.Tensor, labels: torch.Tensor, attr_labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        check_finite(self, features=features)
        check_features(features)
        f_id, f_attr = self.split(features)
        total = features.new_zeros(())
        stats: dict[str, float] = {}
        if self.am is not None:
            l_am = self.am(f_id, labels)  # L_AM(θ_id, W_id), Eq. 2
            total = total + l_am
            stats["am"] = float(l_am.detach())
        if self.attributes is not None:
            if attr_labels is None:
                raise ConfigError("this joint loss has attribute heads (Eq. 7): pass attr_labels (N, M).")
            l_attr = self.attributes(f_attr, attr_labels)  # L_AM_attr(θ_a, W_a), Eq. 3
            total = total + self.lam * l_attr
            stats["attr"] = float(l_attr.detach())
        if self.triplet is not None:
            l_bh = self.triplet(f_id, labels)  # L_BH(θ_id), Eq. 5
            total = total + self.gamma * l_bh
            stats["triplet"] = float(l_bh.detach())
        self.last_stats = stats
        return total


def joint_loss(
    variant: str,
    in_features: int,
    num_classes: int,
    *,
    scale: float,
    gamma: float | None = None,
    triplet_margin: float = 0.3,
    attribute_values: int | Sequence[int] | None = None,
    slice_dim: int = 16,
    lam: float = 0.25,
    am_margin: float = 0.5,
    attribute_margin: float | None = None,
    margin_fallback: str = "continuous",
) -> JointAngularTripletLoss:
    """Build a Table 3 row, or with the suffix ``_Attr`` the full model of Eq. 7.

    ``variant`` is one of ``AM0, AM, BH, AM0BH, AMBH, AM0BH1, AM0BHsp`` (Table 3), optionally with
    ``_Attr`` (e.g. ``"AM0BH_Attr"``, the paper's AM0BH_Attr; needs ``attribute_values``).
    ``in_features`` is the whole embedding width (2048 in the paper); with attributes the identity
    classifier sees ``in_features - M·Q`` of them.

    Defaults from Sec. 4.1: γ = 0.43 (Market-1501; 0.5 DukeMTMC, 0.4 MSMT17) for Eq. 6, and
    γ = 0.33, λ = 0.25, Q = 16 for Eq. 7. The "AM" margin is 0.5 (Sec. 4.3). The triplet margin is
    not stated in the paper; 0.3 is the usual re-ID choice. ``scale`` is required (not stated).
    The attribute heads' margin: Eq. 3 uses the same symbol m as Eq. 2, so by default they get the
    identity loss's margin (0 in the AM0 rows); ``attribute_margin`` overrides it.
    ``margin_fallback`` picks the target logit where ``α + m > π`` for both (module docstring).
    """
    name, _, suffix = variant.partition("_")
    if name not in VARIANTS or suffix not in ("", "Attr"):
        raise ConfigError(
            f"unknown joint-loss variant {variant!r}; use one of {', '.join(VARIANTS)}, optionally with '_Attr'."
        )
    spec = VARIANTS[name]
    with_attr = suffix == "Attr"
    if with_attr and attribute_values is None:
        raise ConfigError(f"variant {variant!r} needs attribute_values (e.g. [4] + [2] * 26 for Market-1501).")
    if gamma is None:
        gamma = 0.33 if with_attr else 0.43
    attributes = None
    id_features = in_features
    if with_attr:
        if attribute_margin is None:
            attribute_margin = am_margin if spec["margin"] else 0.0
        attributes = AttributeAngularMarginLoss(
            attribute_values, scale, attribute_margin, slice_dim=slice_dim, fallback=margin_fallback
        )
        id_features = in_features - attributes.in_features
        if id_features < 1:
            raise ConfigError(f"in_features = {in_features} leaves no identity features after {attributes.in_features} attribute features.")
    margin = spec["margin"]
    if margin is not None and margin > 0:
        margin = am_margin
    am = None if margin is None else AngularMarginLoss(in_features=id_features, num_classes=num_classes, scale=scale,
                                                       margin=margin, fallback=margin_fallback)
    triplet = (
        BatchHardTripletLoss(triplet_margin, soft=spec.get("soft", False), normalize=spec.get("normalize", False))
        if spec["triplet"]
        else None
    )
    return JointAngularTripletLoss(am, triplet, gamma=gamma, attributes=attributes, lam=lam)
