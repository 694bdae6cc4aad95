"""Fixed-margin baselines of paper 001 (Sec. 3.3, Table 5): contrastive (PCNN-C / RCNN-C) and
triplet (RCNN-T) losses on explicit pairs / triplets.

Paper 001 does not print either formula. It describes the contrastive loss as penalising "the
intra-class distance to zeros and the inter-class distances bigger than a fixed positive
margin" and calls its own loss the *adaptive* contrastive loss (PCNN-AC / RCNN-AC), i.e. the
ablation changes only the margins. The default ``form="squared"`` therefore is Eq. 9 of paper 001
with fixed margins ``Mp = 0`` and ``Mn = m`` on the same squared distance ``D`` (Eq. 2)::

    L = Σ_{pairs} max{Mc − y (Mτ − D), 0}  with  Mτ = Mc = m/2
      = Σ_{y=+1} D + Σ_{y=−1} max{m − D, 0}

``positive_margin`` (default 0) gives the positive pairs a fixed up-margin ``Mp`` too, i.e. Eq. 9
with *both* margins fixed: ``Σ_{y=+1} max{D − Mp, 0} + Σ_{y=−1} max{Mn − D, 0}``. With ``Mp`` and
``Mn`` set to the values an adaptive run ends with, this is the control that separates "margins
that adapt" from "margins of a better size" (chapter ``adaptive_margin``, claim
``am_beats_fixed_at_final``).

``form="hadsell"`` is the classic form of Hadsell, Chopra & LeCun (2006) on the plain distance
``d = ‖f_A − f_B‖₂``: ``½ y d² + ½ (1 − y) max{m − d, 0}²`` with ``y ∈ {0, 1}``.

The triplet baseline compares an anchor with one positive and one negative image (the explicit
triplets counted in paper 001's footnote 1), on the same squared distance::

    L = Σ_{triplets} max{m + D(a, p) − D(a, n), 0}

(batch-hard / batch-all mining over a PK batch lives in :mod:`reid.losses.triplet`.)
"""

from __future__ import annotations

import math

import torch
from torch import nn

from reid.errors import ConfigError
from reid.losses._checks import check_features, check_finite, check_pairs, check_reduction, reduce_terms
from reid.losses.adaptive_margin import margin_hinge, pair_sq_distance

__all__ = ["ContrastiveLoss", "TripletLoss"]

CONTRASTIVE_FORMS = ("squared", "hadsell")


def _check_margin(margin: float) -> float:
    if not (margin > 0 and math.isfinite(margin)):
        raise ConfigError(f"margin must be finite and > 0, got {margin}; paper 001 gives no value, choose one for the feature scale.")
    return float(margin)


class ContrastiveLoss(nn.Module):
    """Conventional (fixed-margin) contrastive loss on pairs: the PCNN-C / RCNN-C baseline.

    Args:
        margin: the fixed down-margin ``m = Mn`` (a squared distance for ``form="squared"``, a
            distance for ``"hadsell"``). Paper 001 does not give its value.
        positive_margin: the fixed up-margin ``Mp`` of the positive pairs (``form="squared"``
            only; default 0, the conventional contrastive loss). Must be below ``margin``
            (Eq. 7 needs ``Mτ > Mc`` and ``Mp < Mn``).
        form: ``"squared"`` (default; paper 001's Eq. 9 with fixed margins) or ``"hadsell"``.
        reduction: ``"sum"`` = Σ over pairs, ``"mean"`` = Σ / number of pairs.

    ``forward(f_a, f_b, same)`` as :class:`reid.losses.adaptive_margin.AdaptiveMarginLoss`.
    """

    def __init__(
        self, margin: float, *, positive_margin: float = 0.0, form: str = "squared", reduction: str = "mean"
    ) -> None:
        super().__init__()
        self.margin = _check_margin(margin)
        if form not in CONTRASTIVE_FORMS:
            raise ConfigError(f"form must be one of {CONTRASTIVE_FORMS}, got {form!r}.")
        if not (math.isfinite(positive_margin) and 0.0 <= positive_margin < self.margin):
            raise ConfigError(
                f"positive_margin must be finite, >= 0 and below margin={self.margin} (Mp < Mn), got {positive_margin}."
            )
        if positive_margin and form != "squared":
            raise ConfigError("positive_margin needs form='squared' (paper 001's Eq. 9); Hadsell's form has none.")
        self.positive_margin = float(positive_margin)
        self.form = form
        self.reduction = check_reduction(reduction)

    def forward(self, f_a: torch.Tensor, f_b: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
        check_finite(self, f_a=f_a, f_b=f_b)
        y = check_pairs(f_a, f_b, same)  # +1 positive pair, −1 negative pair
        sq = pair_sq_distance(f_a, f_b)  # D = ‖f_A − f_B‖²₂
        if self.form == "squared":
            # max{Mc − y (Mτ − D), 0} with Mτ = (Mp + Mn)/2, Mc = (Mn − Mp)/2, Mn = m (Eq. 7, 9):
            # max{D − Mp, 0} for y = +1 (D itself when Mp = 0),  max{m − D, 0} for y = −1
            m_p, m_n = self.positive_margin, self.margin
            terms = margin_hinge(sq, y, 0.5 * (m_p + m_n), 0.5 * (m_n - m_p))
        else:
            # ½ y d² + ½ (1 − y) max{m − d, 0}²,  y ∈ {0, 1}  (Hadsell et al. 2006)
            # d = sqrt(D) only enters the negative branch; clamping D keeps its gradient finite
            # at d = 0 (a coincident negative pair gets the constant push-apart value ½m²).
            pos = (y > 0).to(sq.dtype)
            d = sq.clamp(min=torch.finfo(sq.dtype).tiny).sqrt()
            terms = 0.5 * pos * sq + 0.5 * (1.0 - pos) * torch.clamp(self.margin - d, min=0.0).pow(2)
        return reduce_terms(terms, self.reduction)

    def extra_repr(self) -> str:
        return (
            f"margin={self.margin}, positive_margin={self.positive_margin}, form={self.form!r}, "
            f"reduction={self.reduction!r}"
        )


class TripletLoss(nn.Module):
    """Fixed-margin triplet loss on explicit (anchor, positive, negative) triplets: RCNN-T.

    ``L = Σ_t max{m + D(a_t, p_t) − D(a_t, n_t), 0}`` with ``D`` the squared Euclidean distance of
    paper 001's Eq. 2 (``squared=False`` uses the plain distance ``‖·‖₂`` instead).
    ``forward(anchor, positive, negative)``, each ``(T, D)``.
    """

    def __init__(self, margin: float, *, squared: bool = True, reduction: str = "mean") -> None:
        super().__init__()
        self.margin = _check_margin(margin)
        self.squared = bool(squared)
        self.reduction = check_reduction(reduction)

    def _distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        sq = pair_sq_distance(a, b)
        return sq if self.squared else sq.clamp(min=torch.finfo(sq.dtype).tiny).sqrt()

    def forward(self, anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        check_finite(self, anchor=anchor, positive=positive, negative=negative)
        check_features(anchor, name="anchor")
        check_features(positive, anchor.shape[1], name="positive")
        check_features(negative, anchor.shape[1], name="negative")
        if not anchor.shape[0] == positive.shape[0] == negative.shape[0]:
            raise ConfigError(
                "anchor, positive and negative must hold the same number of triplets, got "
                f"{anchor.shape[0]}, {positive.shape[0]} and {negative.shape[0]}."
            )
        # max{m + D(a, p) − D(a, n), 0}
        terms = torch.clamp(self.margin + self._distance(anchor, positive) - self._distance(anchor, negative), min=0.0)
        return reduce_terms(terms, self.reduction)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, squared={self.squared}, reduction={self.reduction!r}"
