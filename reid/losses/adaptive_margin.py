"""Paper 001 (Wang et al., Pattern Recognition 2018): the large adaptive margin loss.

The loss works on a batch of image pairs ``(f_A, f_B)`` (anchor-based units: an anchor with
``M`` positives and ``N`` negatives, Sec. 5) labelled ``y = +1`` (same person) or ``y = −1``
(Eq. 8), with the squared Euclidean distance (Eq. 2)::

    D = ‖f(x_A) − f(x_B)‖²₂

Positive pairs should satisfy ``D < Mp`` and negative pairs ``D > Mn`` (Eq. 4), with margins
that follow the batch (Eq. 5–6)::

    Mp = (1/µ) (1 − exp(−µ d̄)),    Mn = (1/γ) log(1 + exp(γ s̄))

where ``s̄`` / ``d̄`` are the mean distances of the positive / negative pairs. Writing
``Mp = Mτ − Mc`` and ``Mn = Mτ + Mc`` (so ``Mτ = (Mp + Mn)/2``, ``Mc = (Mn − Mp)/2``) turns both
constraints into one (Eq. 7) and the hinge of Eq. 9::

    L_S = Σ_{pairs} max{Mc − y (Mτ − D), 0}

For ``y = +1`` this is ``max{D − Mp, 0}``; for ``y = −1`` it is ``max{Mn − D, 0}``.

Margins and gradients. Algorithm 1 computes the margins (step 5) and then the feature
gradients by Eq. 13–14, which contain no derivative of ``Mτ``/``Mc`` with respect to the
features: the paper treats the margins as per-batch constants. That is the default here
(``differentiate_margins=False``: ``s̄``, ``d̄`` are computed from detached distances);
``differentiate_margins=True`` back-propagates through ``s̄``/``d̄`` as well, for comparison.
(Eq. 13–14 as printed are wrong in another way; see :mod:`reid.losses.printed_gradients`.)

Scope of the means. Eq. 4 writes the margins as functions of the anchor, ``Mp(x_A^{i,k}, X_B^g)``,
"calculated based on the anchor and its negative pairs", and Eq. 6 sums over the gallery images
with the anchor ``x_A^{i,k}`` held fixed, normalised by ``N`` — the number of negatives *per
anchor* in Sec. 5. So the means are per anchor-based unit (``anchors=`` one unit id per pair);
without ``anchors`` they run over the whole batch. The training recipe selects either with
``loss.margin_scope`` (``anchor``, the default, or ``batch``).

The regulariser. Eq. 11 adds ``λ R = λ Σ_m (‖W^(m)‖²_F + ‖b^(m)‖²)`` to the Σ over pairs, and
Eq. 12 differentiates it to ``2λΩ``. SGD's ``weight_decay=wd`` adds ``wd·Ω`` to the gradient, so
Eq. 11 with the paper's λ = 0.01 is ``reduction="sum"`` with ``weight_decay = 2λ = 0.02``
(:func:`weight_decay_for`). With ``reduction="mean"`` over ``P`` pairs the same ``wd`` weighs the
regulariser ``P`` times more, relative to the pair term, than Eq. 11 does (use ``2λ/P`` to match).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from reid.errors import ConfigError
from reid.losses._checks import check_finite, check_pairs, check_reduction, reduce_terms

__all__ = ["pair_sq_distance", "margin_hinge", "adaptive_margins", "AdaptiveMarginLoss", "weight_decay_for",
           "MARGIN_SCOPES"]

#: Where the means of Eq. 6 are taken: per anchor-based unit (Eq. 4) or over the whole batch.
MARGIN_SCOPES = ("anchor", "batch")


def weight_decay_for(lam: float, *, reduction: str = "sum", num_pairs: int = 1) -> float:
    """SGD ``weight_decay`` that reproduces Eq. 11's ``λ R(W, b)`` (paper 001, Eq. 10–12).

    Eq. 12: ``∂(λR)/∂Ω = 2λΩ``, and SGD adds ``weight_decay · Ω``; so ``2λ`` when the pair term
    is Eq. 9's Σ (``reduction="sum"``). When the pair term is averaged over ``num_pairs`` pairs,
    ``2λ / num_pairs`` keeps the balance of Eq. 11 (the step size then differs by ``num_pairs``).
    """
    if not (lam >= 0 and math.isfinite(lam)):
        raise ConfigError(f"lambda must be finite and >= 0, got {lam}; the paper uses 0.01.")
    check_reduction(reduction)
    if num_pairs < 1:
        raise ConfigError(f"num_pairs must be >= 1, got {num_pairs}.")
    return 2.0 * lam if reduction == "sum" else 2.0 * lam / num_pairs


def pair_sq_distance(f_a: torch.Tensor, f_b: torch.Tensor) -> torch.Tensor:
    """``D = ‖f_A − f_B‖²₂`` row by row (paper 001, Eq. 2), shape ``(N,)``.

    Computed from the difference (not the ``‖a‖² + ‖b‖² − 2a·b`` expansion) so it is exact,
    non-negative and smooth at ``D = 0``.
    """
    return (f_a - f_b).pow(2).sum(dim=1)


def margin_hinge(distance: torch.Tensor, y: torch.Tensor, m_tau: torch.Tensor | float, m_c: torch.Tensor | float) -> torch.Tensor:
    """Per-pair hinge of paper 001, Eq. 9: ``max{Mc − y (Mτ − D), 0}``.

    With ``Mp = Mτ − Mc`` and ``Mn = Mτ + Mc`` this is ``max{D − Mp, 0}`` for positive pairs
    (``y = +1``) and ``max{Mn − D, 0}`` for negative pairs (``y = −1``). Fixed margins give the
    conventional contrastive loss (``Mτ = Mc = m/2``, see :mod:`reid.losses.contrastive`).
    """
    return torch.clamp(m_c - y * (m_tau - distance), min=0.0)


def adaptive_margins(
    distance: torch.Tensor,
    y: torch.Tensor,
    mu: float,
    gamma: float,
    anchors: torch.Tensor | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, bool]]:
    """``Mp, Mn, Mτ, Mc, s̄, d̄`` of Eq. 5–7 from the pair distances (differentiable as given).

    Eq. 6::   s̄ = mean of D over positive pairs,   d̄ = mean of D over negative pairs
    Eq. 5::   Mp = (1/µ)(1 − exp(−µ d̄)),   Mn = (1/γ) log(1 + exp(γ s̄))
    Eq. 7::   Mτ = (Mp + Mn)/2,   Mc = (Mn − Mp)/2

    Scope of the means: by default over the whole batch (0-d margins). Eq. 4 writes the margins
    as functions of the anchor, ``Mp(x_A^{i,k}, X_B^g)``, "calculated based on the anchor and its
    negative pairs"; passing ``anchors`` (one anchor-unit id per pair, Sec. 5) takes the means
    within each anchor-based unit instead, giving one margin per pair (``(N,)`` tensors).

    Empty-mean rule: a batch (or unit) without positive pairs uses ``s̄ = 0`` (so
    ``Mn = log 2 / γ``, its smallest value) and one without negative pairs uses ``d̄ = 0`` (so
    ``Mp = 0``, the contrastive pull to zero distance): the value the margin takes at the start
    of training, when all distances are small. Only the margin of the pairs that *are* present
    matters, and it stays finite. The second return value reports whether a fallback fired.
    """
    pos = (y > 0).to(distance.dtype)
    neg = 1.0 - pos
    if anchors is None:
        n_pos, n_neg = pos.sum(), neg.sum()
        sum_pos, sum_neg = (distance * pos).sum(), (distance * neg).sum()
    else:
        _, unit = torch.unique(anchors, return_inverse=True)  # units renumbered 0..U−1
        num_units = int(unit.max()) + 1

        def per_unit(values: torch.Tensor) -> torch.Tensor:
            # Σ over each pair's own unit, read back for every pair of that unit
            sums = torch.zeros(num_units, dtype=distance.dtype, device=distance.device).index_add(0, unit, values)
            return sums[unit]

        n_pos, n_neg = per_unit(pos), per_unit(neg)
        sum_pos, sum_neg = per_unit(distance * pos), per_unit(distance * neg)
    s_bar = sum_pos / n_pos.clamp(min=1.0)  # Eq. 6, 0 when there is no positive
    d_bar = sum_neg / n_neg.clamp(min=1.0)  # Eq. 6, 0 when there is no negative
    m_p = -torch.expm1(-mu * d_bar) / mu  # (1/µ)(1 − e^{−µ d̄}), expm1 for accuracy at small d̄
    m_n = F.softplus(gamma * s_bar) / gamma  # (1/γ) log(1 + e^{γ s̄}), overflow-safe
    m_tau = 0.5 * (m_p + m_n)
    m_c = 0.5 * (m_n - m_p)
    margins = {"Mp": m_p, "Mn": m_n, "Mtau": m_tau, "Mc": m_c, "s_bar": s_bar, "d_bar": d_bar}
    fallbacks = {"no_positive_pairs": bool((n_pos == 0).any()), "no_negative_pairs": bool((n_neg == 0).any())}
    return margins, fallbacks


class AdaptiveMarginLoss(nn.Module):
    """Large adaptive margin loss (paper 001, Eq. 5–9) on a batch of pairs.

    Args:
        mu: µ of Eq. 5 (best 8 on PRID2011, Sec. 6.3.1); larger µ → smaller up-margin ``Mp``.
        gamma: γ of Eq. 5 (best 2.1 on PRID2011); larger γ → smaller down-margin ``Mn``.
        reduction: ``"sum"`` = Eq. 9's Σ over the pairs, ``"mean"`` = that Σ / number of pairs.
        differentiate_margins: back-propagate through ``s̄``/``d̄`` (default ``False``: the
            margins are per-batch constants, as Eq. 13–14 and Algorithm 1 imply).

    ``forward(f_a, f_b, same, anchors=None)``: ``f_a``, ``f_b`` are ``(N, D)`` features of the two
    images of each pair; ``same`` is ``(N,)`` boolean (or 0/1), True for a positive pair;
    ``anchors`` (optional, ``(N,)`` integer) names each pair's anchor-based unit to take the
    means of Eq. 6 per unit instead of per batch (see :func:`adaptive_margins`).

    After each call ``last_margins`` holds ``Mp, Mn, Mtau, Mc, s_bar, d_bar`` as floats (averaged
    over the pairs when they are per unit), for the "margins over training" figure, and
    ``last_stats`` adds the fraction of active hinges and whether an empty-mean fallback fired.
    """

    def __init__(
        self,
        mu: float = 8.0,
        gamma: float = 2.1,
        *,
        reduction: str = "mean",
        differentiate_margins: bool = False,
    ) -> None:
        super().__init__()
        if not (mu > 0 and gamma > 0 and math.isfinite(mu) and math.isfinite(gamma)):
            raise ConfigError(
                f"mu and gamma must be finite and > 0, got mu={mu}, gamma={gamma}; the paper uses mu=8, gamma=2.1."
            )
        self.mu = float(mu)
        self.gamma = float(gamma)
        self.reduction = check_reduction(reduction)
        self.differentiate_margins = bool(differentiate_margins)
        self.last_margins: dict[str, float] = {}
        self.last_stats: dict[str, float | bool] = {}

    def forward(
        self, f_a: torch.Tensor, f_b: torch.Tensor, same: torch.Tensor, anchors: torch.Tensor | None = None
    ) -> torch.Tensor:
        check_finite(self, f_a=f_a, f_b=f_b)
        y = check_pairs(f_a, f_b, same)  # Eq. 8: +1 same person, −1 otherwise
        if anchors is not None and (
            not isinstance(anchors, torch.Tensor)
            or anchors.shape != (f_a.shape[0],)
            or anchors.is_floating_point()
            or anchors.dtype == torch.bool
        ):
            raise ConfigError(
                f"anchors must be a 1-D integer tensor with one anchor-unit id per pair ({f_a.shape[0]}), "
                "e.g. the index of each pair's anchor image; or None for batch-wide margins."
            )
        distance = pair_sq_distance(f_a, f_b)  # Eq. 2
        margin_input = distance if self.differentiate_margins else distance.detach()
        margins, fallbacks = adaptive_margins(margin_input, y, self.mu, self.gamma, anchors)  # Eq. 5–7
        # L_S = Σ_{i,j} max{Mc − y_ij (Mτ − D(x_A, x_B)), 0}      (Eq. 9)
        terms = margin_hinge(distance, y, margins["Mtau"], margins["Mc"])
        loss = reduce_terms(terms, self.reduction)

        self.last_margins = {k: float(v.detach().mean()) for k, v in margins.items()}
        self.last_stats = {**self.last_margins, **fallbacks, "active_fraction": float((terms > 0).to(terms.dtype).mean())}
        return loss

    def extra_repr(self) -> str:
        return (
            f"mu={self.mu}, gamma={self.gamma}, reduction={self.reduction!r}, "
            f"differentiate_margins={self.differentiate_margins}"
        )
