"""Cross-entropy adversarial view adaptation — paper 003 (Wu, Hong, Wang & Wang).

Three objectives, trained in stages (paper 003, Algorithm 1 and Eq. 4):

* :class:`ViewDiscriminatorLoss` (Eq. 1) trains the view discriminator ``Dd`` to tell probe-view
  (source, ``s``) features ``Ms(x_s)`` from gallery-view (target, ``t``) features ``Mt(x_t)``;
* :class:`ViewConfusionLoss` (Eq. 3) trains the two mappings ``Ms, Mt`` so that ``Dd`` outputs the
  uniform distribution over the two views (cross-entropy against the uniform distribution);
* :class:`SimilarityDiscriminatorLoss` (Eq. 2, and with ``adaptive=True`` Eq. 5 with the weights
  of Eq. 6) trains ``Ms, Mt`` and the similarity discriminator ``Ds`` on labelled cross-view pairs.

Conventions for the engine:

* ``Dd`` outputs, per feature, either one logit ``z`` read as ``Dd = P(source) = sigmoid(z)``
  (shape ``(N,)`` or ``(N, 1)``), or two logits (shape ``(N, 2)``; column 0 = source/probe,
  column 1 = target/gallery), the paper's "two fully-connected layers with a soft-max activation".
* ``Ds`` outputs one logit per pair, ``Ds = sigmoid(logit)`` = P(same identity) (the paper's "final
  similarity output" of a 1024-2048-1 MLP on the concatenated pair).
* ``d`` is the Euclidean distance ``||Ms(x_s) - Mt(x_t)||₂`` of the pair. For the all-pairs matrix of
  a batch use ``reid.metrics.distance.euclidean(f_s, f_t)`` (``(B_s, B_t)``, finite gradient at 0);
  for aligned pairs, its diagonal ``euclidean(f_s, f_t).diagonal()``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reid.errors import ConfigError
from reid.losses._checks import check_finite, check_reduction

__all__ = [
    "ViewDiscriminatorLoss",
    "ViewConfusionLoss",
    "SimilarityDiscriminatorLoss",
    "adaptive_weights",
    "view_log_probs",
    "NEGATIVE_HINGES",
]


def view_log_probs(logits: torch.Tensor, name: str = "logits") -> tuple[torch.Tensor, torch.Tensor]:
    """``(log Dd, log(1 - Dd))`` per sample, where ``Dd`` is the probability of the source (probe) view.

    One logit ``z``: ``log sigmoid(z)`` and ``log sigmoid(-z)`` (exact, never ``log 0``); two logits:
    the two columns of ``log_softmax``.
    """
    if logits.dim() == 2 and logits.shape[1] == 1:
        logits = logits[:, 0]
    if logits.dim() == 1:
        return F.logsigmoid(logits), F.logsigmoid(-logits)
    if logits.dim() == 2 and logits.shape[1] == 2:
        log_p = logits.log_softmax(dim=1)
        return log_p[:, 0], log_p[:, 1]
    raise ConfigError(
        f"{name} must hold the view discriminator's output per sample: shape (N,) or (N, 1) for one "
        f"logit of P(source view), or (N, 2) for [source, target] logits; got {tuple(logits.shape)}."
    )


def _expectation(values: torch.Tensor, reduction: str) -> torch.Tensor:
    # E_{x~X}[·] over a batch is its mean; reduction="sum" keeps the Σ over samples instead.
    return values.mean() if reduction == "mean" else values.sum()


class ViewDiscriminatorLoss(nn.Module):
    """Loss of the view discriminator ``Dd`` (paper 003, Eq. 1).

        L_Dd = - E_{x_s~X_s}[ log Dd(Ms(x_s)) ] - E_{x_t~X_t}[ log(1 - Dd(Mt(x_t))) ]        (Eq. 1)

    ``forward(source_logits, target_logits)``: ``Dd``'s outputs on a batch of probe-view features
    and on a batch of gallery-view features (see the module docstring for the logit shapes). With
    ``reduction="mean"`` each expectation is the batch mean (so the two views weigh the same even
    when the batches differ in size); ``"sum"`` sums over all samples. Only ``Dd``'s parameters
    are updated with this loss (Algorithm 1, line 6): detach the features or step only ``Dd``.
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, source_logits: torch.Tensor, target_logits: torch.Tensor) -> torch.Tensor:
        check_finite(self, source_logits=source_logits, target_logits=target_logits)
        log_dd_s, _ = view_log_probs(source_logits, "source_logits")
        _, log_1m_dd_t = view_log_probs(target_logits, "target_logits")
        # Eq. 1: -E_s[log Dd(Ms(x_s))] - E_t[log(1 - Dd(Mt(x_t)))]
        return -_expectation(log_dd_s, self.reduction) - _expectation(log_1m_dd_t, self.reduction)


class ViewConfusionLoss(nn.Module):
    """View-confusion loss of the mappings ``Ms, Mt`` (paper 003, Eq. 3).

        L_M = - Σ_{d∈{s,t}} E_{x_d~X_d}[ ½ log Dd(M_d(x_d)) + ½ log(1 - Dd(M_d(x_d))) ]      (Eq. 3)

    the cross-entropy between ``Dd``'s output and the uniform distribution (½, ½) over the two
    views, summed over the two views. It is minimal, ``2 log 2`` (``log 2`` per view), exactly when
    ``Dd`` outputs ½ for every feature. ``forward(source_logits, target_logits)``, same shapes and
    reduction as :class:`ViewDiscriminatorLoss`; only ``Ms, Mt`` are stepped (Algorithm 1, line 7).
    """

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)

    def forward(self, source_logits: torch.Tensor, target_logits: torch.Tensor) -> torch.Tensor:
        check_finite(self, source_logits=source_logits, target_logits=target_logits)
        total = source_logits.new_zeros(())
        for logits, name in ((source_logits, "source_logits"), (target_logits, "target_logits")):  # d ∈ {s, t}
            log_dd, log_1m_dd = view_log_probs(logits, name)
            # Eq. 3: -E_{x_d}[½ log Dd + ½ log(1 - Dd)]
            total = total - _expectation(0.5 * log_dd + 0.5 * log_1m_dd, self.reduction)
        return total


def _masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax of ``scores`` over the ``True`` entries of each row; 0 elsewhere and on empty rows."""
    neg_inf = torch.full_like(scores, float("-inf"))
    has_any = mask.any(dim=-1, keepdim=True)
    # Rows with no entry would be softmax of all -inf = NaN: give them a harmless dummy row instead.
    safe = torch.where(mask, scores, neg_inf)
    safe = torch.where(has_any, safe, torch.zeros_like(scores))
    return torch.where(mask & has_any, safe.softmax(dim=-1), torch.zeros_like(scores))


def adaptive_weights(d: torch.Tensor, same: torch.Tensor, *, printed: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft-max / soft-min weights of paper 003, Eq. 6, for every pair of a ``(anchors, candidates)`` matrix.

        w_p = e^{d(x_s,x_p)} / Σ_{x_p∈P(x_s)} e^{d(x_s,x_p)}                                (Eq. 6)
        w_n = e^{-d(x_s,x_n)} / Σ_{x_n∈N(x_s)} e^{-d(x_s,x_n)}    (Eq. 6 prints e^{+d} in this denominator)

    Rows are anchors ``x_s``; ``same[i, j]`` marks the positives ``P(x_s)``, the rest are ``N(x_s)``.
    Each row of ``w_p`` (of ``w_n``) sums to 1 over the positives (negatives): the hardest positive
    (largest ``d``) and the hardest negative (smallest ``d``) get the largest weights.
    ``printed=True`` returns the literal Eq. 6 soft-min, ``e^{-d} / Σ e^{+d}``, whose rows do not
    sum to 1 (for the book's comparison); it is not used by the loss.
    """
    w_p = _masked_softmax(d, same)
    if not printed:
        return w_p, _masked_softmax(-d, ~same)
    neg = ~same
    log_den = torch.where(neg, d, torch.full_like(d, float("-inf"))).logsumexp(dim=-1, keepdim=True)
    w_n = torch.where(neg, torch.exp(-d - log_den), torch.zeros_like(d))
    return w_p, w_n


#: Where Eq. 5 puts the soft-min weighted negatives against the margin (see
#: :class:`SimilarityDiscriminatorLoss`): one hinge per anchor (MTMCT's form, the default) or one
#: hinge per negative pair with the weight inside (the printed placement).
NEGATIVE_HINGES = ("anchor", "pair")


class SimilarityDiscriminatorLoss(nn.Module):
    """Similarity-discriminator loss of paper 003: Eq. 2, or with ``adaptive=True`` Eq. 5 + Eq. 6.

    ``forward(pair_logits, d, same)``: three tensors of the same shape, one entry per pair
    ``(x_s, x_t)``: ``Ds``'s logit (``Ds = sigmoid(logit)``), the Euclidean distance ``d`` of the
    mapped features, and ``same`` (bool: the pair shows one identity, ``y = 1``). For Eq. 2 any
    shape works; for ``adaptive=True`` they must be ``(anchors, candidates)`` matrices — row ``i``
    holds probe ``x_s^i`` against every gallery feature of the batch, so that ``P(x_s)`` and
    ``N(x_s)`` are the ``True`` / ``False`` entries of row ``i`` (the paper's SP batches).

    **Eq. 2 as printed**

        L_Ds = - E Σ y log Ds(Ms(x_s), Mt(x_t)) - γ E Σ [ (1-y) max(0, m - d)² + y d² ]

    has two problems, and we implement, per pair,

        ℓ = -[ y log Ds + (1-y) log(1 - Ds) ] + γ [ (1-y) max(0, m - d)² + y d² ]             (Eq. 2, read)

    * the γ-term enters with a minus sign, so minimising it would push positives apart and pull
      negatives inside the margin — the opposite of what the text and Fig. 3 say ("minimise the
      distances between positive examples, and maximise the distances between negative ones");
      we add it (``+γ``), the standard contrastive loss;
    * the classification term has only ``y log Ds``: on negative pairs it is 0, so ``Ds ≡ 1`` would
      minimise it. A discriminator that "distinguishes positive pairs against negatives" needs the
      binary cross-entropy; ``pair_term="bce"`` (default) adds ``(1-y) log(1 - Ds)``,
      ``pair_term="positive_only"`` keeps the literal term.

    **Eq. 5 as printed** (one anchor ``x_s``)

        L*_Ds = Σ_{x_p∈P(x_s)} [ log Ds(Ms(x_s), Mt(x_p)) + w_p d(x_s,x_p)² ] - γ Σ_{x_n∈N(x_s)} [ max(0, m - w_n d(x_s,x_n))² ]

    "rewrites Eq. 2 with adaptive weights", following MTMCT (Ristani & Tomasi 2018, the paper's
    [26]), whose adaptive weighted triplet loss puts both weighted sums in **one hinge per
    anchor**, ``[m + Σ_p w_p d_p - Σ_n w_n d_n]_+``. Read consistently with Eq. 2 (same sign
    fixes) and with MTMCT, per anchor:

        ℓ(x_s) = Σ_{p} -log Ds_p + Σ_{n} -log(1 - Ds_n) + γ [ Σ_{p} w_p d_p² + max(0, m - Σ_{n} w_n d_n)² ]   (Eq. 5, read)

    * ``log Ds`` has lost its minus sign (as printed, minimising it drives ``Ds → 0`` on positives);
    * γ multiplies only the negative hinge and with a minus sign; as in Eq. 2 it weighs the whole
      contrastive part, with a plus sign;
    * ``negative_hinge="anchor"`` (default): the soft-min weighted mean distance of the anchor's
      negatives, ``Σ_n w_n d_n`` (close to the hardest negative's distance), must exceed the margin
      — one hinge per anchor, MTMCT's form. ``negative_hinge="pair"`` keeps the weight inside one
      hinge per negative, ``Σ_n max(0, m - w_n d_n)²``, where Eq. 5 prints it. Since the
      normalised ``w_n ≈ 1/|N|``, ``w_n d_n`` stays far below ``m``: that hinge is active on almost
      every negative and never satisfied, and its own gradient, ``-w_n(1 - d_n(1 - w_n))`` per unit
      of hinge, *pulls* every negative with ``d_n (1 - w_n) > 1`` towards the anchor (see the
      errata and :func:`reid.toys.view_adaptation.negative_gradient_census`);
    * the weights are the normalised ones of :func:`adaptive_weights` (Eq. 6's soft-min
      denominator prints ``e^{+d}``; we use ``e^{-d}`` in numerator and denominator), and they are
      **constants** for the gradient (``detach_weights=True``, default): the text uses them to
      "assign larger weights to difficult samples", i.e. to weigh each pair's pull or push.
      ``detach_weights=False`` differentiates through them, as MTMCT's own code does; then the
      soft-min's normaliser adds a term ``w_q(D - d_q)`` per negative (``D = Σ_n w_n d_n``) that
      pulls every negative farther than ``D + 1`` *in* (it raises its weight and so ``D``), and
      the soft-max pushes positives nearer than the weighted mean apart.

    **Reduction.** ``"sum"`` is the Σ over all pairs (over anchors, for Eq. 5); ``"mean"`` divides
    each Σ by its number of terms: the pair-classification part and Eq. 2's contrastive part by
    the number of pairs; Eq. 5's contrastive part by the number of anchors with ``"anchor"``
    (one weighted-positive term and one hinge per anchor, each a weighted mean over pairs) and,
    as before, by the number of pairs with ``"pair"``. Anchors without positives (or without
    negatives) simply have no positive (negative) terms. ``last_stats`` holds the
    pair-classification and contrastive parts and the share of active negative hinges.
    """

    def __init__(
        self,
        margin: float = 2.0,
        gamma: float = 2.5,
        adaptive: bool = False,
        *,
        negative_hinge: str = "anchor",
        pair_term: str = "bce",
        detach_weights: bool = True,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if margin <= 0:
            raise ConfigError(f"margin m must be > 0, got {margin} (the paper sets m = 2).")
        if gamma < 0:
            raise ConfigError(f"gamma must be >= 0, got {gamma} (the paper sets γ = 2.5).")
        if pair_term not in ("bce", "positive_only"):
            raise ConfigError(f"pair_term must be 'bce' or 'positive_only' (the literal Eq. 2), got {pair_term!r}.")
        if negative_hinge not in NEGATIVE_HINGES:
            raise ConfigError(
                f"negative_hinge must be 'anchor' (one hinge per anchor on Σ w_n d_n, MTMCT's form) or 'pair' "
                f"(max(0, m - w_n d_n) per negative, as Eq. 5 prints it), got {negative_hinge!r}."
            )
        self.margin = float(margin)
        self.gamma = float(gamma)
        self.adaptive = bool(adaptive)
        self.negative_hinge = negative_hinge
        self.pair_term = pair_term
        self.detach_weights = bool(detach_weights)
        self.reduction = check_reduction(reduction)
        self.last_stats: dict[str, float] = {}

    def extra_repr(self) -> str:
        return (
            f"margin={self.margin}, gamma={self.gamma}, adaptive={self.adaptive}, "
            f"negative_hinge={self.negative_hinge!r}, pair_term={self.pair_term!r}, "
            f"detach_weights={self.detach_weights}, reduction={self.reduction!r}"
        )

    def _check(self, pair_logits: torch.Tensor, d: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
        if pair_logits.shape != d.shape or same.shape != d.shape:
            raise ConfigError(
                "pair_logits, d and same must have the same shape (one entry per pair), got "
                f"{tuple(pair_logits.shape)}, {tuple(d.shape)} and {tuple(same.shape)}."
            )
        if d.numel() == 0:
            raise ConfigError("no pairs given: pair_logits, d and same are empty.")
        if self.adaptive and d.dim() != 2:
            raise ConfigError(
                "adaptive=True (Eq. 5) needs (anchors, candidates) matrices, one probe per row, so that "
                f"each anchor's positive and negative sets are its row; got shape {tuple(d.shape)}. "
                "Compute d = reid.metrics.distance.euclidean(f_s, f_t) for all pairs of the batch."
            )
        if bool((d.detach() < 0).any()):
            raise ConfigError("d must be a distance (>= 0); pass ||Ms(x_s) - Mt(x_t)||, not a similarity.")
        if same.dtype != torch.bool:
            if same.is_floating_point() or not bool(((same == 0) | (same == 1)).all()):
                raise ConfigError("same must be boolean (or integer 0/1): True where the pair shows one identity.")
            same = same.bool()
        return same

    def forward(self, pair_logits: torch.Tensor, d: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
        check_finite(self, pair_logits=pair_logits, d=d)
        same = self._check(pair_logits, d, same)
        y = same.to(d.dtype)
        # Pair classification: -[y log Ds + (1 - y) log(1 - Ds)], with log Ds = log sigmoid(logit)
        pair = -y * F.logsigmoid(pair_logits)
        if self.pair_term == "bce":
            pair = pair - (1 - y) * F.logsigmoid(-pair_logits)

        contrastive_terms, hinges = d.numel(), int((~same).sum())
        if not self.adaptive:
            # Eq. 2 (read): γ [ (1 - y) max(0, m - d)² + y d² ]
            contrastive = (1 - y) * F.relu(self.margin - d).pow(2) + y * d.pow(2)
            active = (~same) & (d < self.margin)
        else:
            w_p, w_n = adaptive_weights(d, same)  # Eq. 6, normalised soft-max / soft-min
            if self.detach_weights:
                w_p, w_n = w_p.detach(), w_n.detach()
            positive = (y * w_p * d.pow(2)).sum(dim=1)  # Σ_p w_p d_p², per anchor
            if self.negative_hinge == "anchor":
                # Eq. 5 (read, MTMCT): γ [ Σ_p w_p d_p² + max(0, m - Σ_n w_n d_n)² ], one hinge per anchor
                has_negative = (~same).any(dim=1)
                soft_min = ((1 - y) * w_n * d).sum(dim=1)
                hinge = torch.where(has_negative, F.relu(self.margin - soft_min), torch.zeros_like(soft_min))
                contrastive = positive + hinge.pow(2)
                active = has_negative & (soft_min < self.margin)
                hinges = int(has_negative.sum())
                contrastive_terms = d.shape[0]
            else:
                # Eq. 5 (printed placement): γ [ Σ_p w_p d_p² + Σ_n max(0, m - w_n d_n)² ]
                contrastive = positive + ((1 - y) * F.relu(self.margin - w_n * d).pow(2)).sum(dim=1)
                active = (~same) & (w_n * d < self.margin)

        pair_scale = 1.0 if self.reduction == "sum" else 1.0 / d.numel()
        contrastive_scale = 1.0 if self.reduction == "sum" else 1.0 / contrastive_terms
        pair_part = pair.sum() * pair_scale
        contrastive_part = contrastive.sum() * contrastive_scale
        self.last_stats = {
            "pair_classification": float(pair_part.detach()),
            "contrastive": float(contrastive_part.detach()),
            "positive_pairs": float(same.sum()),
            "pairs": float(d.numel()),
            "active_negative_hinges": float(active.sum()) / max(hinges, 1),
        }
        return pair_part + self.gamma * contrastive_part
