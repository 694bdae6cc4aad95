"""Batch-hard and batch-all triplet losses (Hermans, Beyer & Leibe 2017, "In defense of the triplet loss").

Baselines of paper 002 (Sec. 3.1, "Triplet loss", BH and BA variants) and the metric term of
paper 004 (Eq. 4 and Eq. 5, the "BH" in AM0BH).

Both losses work on a P×K batch: P identities, K images each, every image an anchor. They take the
*whole* batch, build the in-batch distance matrix once and select triplets with boolean masks, so
there is no Python loop over samples, pairs or triplets.

Choices the papers leave open, and what we do:

* **Distance.** Paper 004 says "we picked D(·,·) to be the Euclidean distance" and Hermans et al.
  use the plain (non-squared) Euclidean distance too, so ``squared=False`` is the default.
  Paper 002's own Eq. 2 writes the triplet with squared distances; ``squared=True`` gives that.
* **Normalised features.** ``normalize=True`` L2-normalises the features before the distances:
  this is paper 004's "AM0BH1" row (Table 3), which the paper argues removes the gradient
  component orthogonal to the hypersphere.
* **Soft margin.** Paper 004 (Sec. 3.2) replaces the hinge ``[x]_+`` by ``softplus(x) = ln(1+e^x)``
  ("AM0BHsp"). We apply it to the same argument ``m + d_ap - d_an``. Hermans et al.'s "soft-margin"
  triplet is ``softplus(d_ap - d_an)``, i.e. ``soft=True, margin=0``.
* **Anchors without a positive or a negative** (an identity with a single image in the batch, or a
  batch of a single identity) have no triplet; they are left out of the sum and out of the mean,
  and counted in ``last_stats["anchors_without_triplet"]``. A batch with no valid anchor at all
  gives a loss of exactly 0 that is still connected to the graph (finite, zero gradient).
* **Paper 004, Eq. 4** prints the constraint as ``y_a = y_b ≠ y_n``; ``y_b`` is a typo for ``y_p``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reid.errors import ConfigError
from reid.losses._checks import check_features, check_finite, check_reduction
from reid.metrics.distance import euclidean, squared_euclidean

__all__ = ["BatchHardTripletLoss", "BatchAllTripletLoss", "batch_distances"]


def check_batch(features: torch.Tensor, labels: torch.Tensor) -> None:
    """Clear errors for the shape mistakes a caller can make with ``forward(features, labels)``."""
    check_features(features)
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.shape[0] != features.shape[0]:
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ConfigError(
            f"labels must be a 1-D tensor with one identity per feature row ({features.shape[0]}), "
            f"got {shape}."
        )


def batch_distances(features: torch.Tensor, *, squared: bool, normalize: bool = False) -> torch.Tensor:
    """In-batch distance matrix ``D[i, j] = D(x_i, x_j)`` used by the triplet and neighbour losses.

    ``squared=False``: ``||x_i - x_j||`` (finite gradient at 0, see :func:`reid.metrics.distance.euclidean`);
    ``squared=True``: ``||x_i - x_j||²``. ``normalize=True`` first maps every row to the unit sphere.
    """
    x = F.normalize(features, dim=1) if normalize else features
    return squared_euclidean(x) if squared else euclidean(x)


def pair_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(positive, negative)`` boolean ``B×B`` masks: same identity without the anchor itself,
    and different identity. Shared by both triplet losses."""
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def _reduce(per_term: torch.Tensor, count: torch.Tensor, reduction: str) -> torch.Tensor:
    """Σ over the terms, or that Σ divided by how many terms there are (at least 1, so 0/0 -> 0)."""
    total = per_term.sum()
    if reduction == "sum":
        return total
    return total / count.clamp(min=1).to(total.dtype)


class BatchHardTripletLoss(nn.Module):
    """Batch-hard triplet loss (Hermans et al. 2017; paper 004, Eq. 5).

    For each anchor ``a`` (every sample of the P×K batch), with ``D`` the distance:

        L_BH = Σ_a [ m + max_{p: y_p = y_a, p ≠ a} D(x_a, x_p) - min_{n: y_n ≠ y_a} D(x_a, x_n) ]_+     (004, Eq. 5)

    ``[·]_+`` is the hinge ``max(·, 0)``, or ``softplus`` with ``soft=True``.
    ``reduction="sum"`` is the printed Σ; ``"mean"`` (default) divides by the number of anchors
    that have both a positive and a negative in the batch (all of them for a P×K batch, K ≥ 2,
    P ≥ 2). The hardest positive / negative are selected inside the autograd graph: the gradient
    flows through the selected distances only, exactly as for ``max``/``min`` in the formula.

    ``forward(features, labels) -> loss``; ``last_stats`` holds ``anchors``,
    ``anchors_without_triplet`` and ``active_fraction`` (share of valid anchors with a non-zero hinge).
    """

    def __init__(
        self,
        margin: float = 0.3,
        soft: bool = False,
        normalize: bool = False,
        *,
        squared: bool = False,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if margin < 0:
            raise ConfigError(f"triplet margin must be >= 0, got {margin}.")
        self.margin = float(margin)
        self.soft = bool(soft)
        self.normalize = bool(normalize)
        self.squared = bool(squared)
        self.reduction = check_reduction(reduction)
        self.last_stats: dict[str, float] = {}

    def extra_repr(self) -> str:
        return (
            f"margin={self.margin}, soft={self.soft}, normalize={self.normalize}, "
            f"squared={self.squared}, reduction={self.reduction!r}"
        )

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        check_finite(self, features=features)
        check_batch(features, labels)
        dist = batch_distances(features, squared=self.squared, normalize=self.normalize)
        pos_mask, neg_mask = pair_masks(labels)
        valid = pos_mask.any(1) & neg_mask.any(1)

        # Masked max / min: non-candidates are replaced by constants that can never win
        # (distances are >= 0, so 0 for the max; +inf for the min). torch.where routes no
        # gradient into the constants.
        hardest_pos = torch.where(pos_mask, dist, torch.zeros_like(dist)).amax(dim=1)
        hardest_neg = torch.where(neg_mask, dist, torch.full_like(dist, float("inf"))).amin(dim=1)
        # L_a = [m + max_p D(a,p) - min_n D(a,n)]_+   (004, Eq. 5), zero for anchors without a triplet
        slack = torch.where(valid, self.margin + hardest_pos - hardest_neg, torch.zeros_like(hardest_pos))
        per_anchor = F.softplus(slack) if self.soft else F.relu(slack)
        per_anchor = torch.where(valid, per_anchor, torch.zeros_like(per_anchor))

        n_valid = valid.sum()
        self.last_stats = {
            "anchors": float(len(labels)),
            "anchors_without_triplet": float(len(labels) - int(n_valid)),
            "active_fraction": float(((slack > 0) & valid).sum()) / max(int(n_valid), 1),
        }
        return _reduce(per_anchor, n_valid, self.reduction)


class BatchAllTripletLoss(nn.Module):
    """Batch-all triplet loss (Hermans et al. 2017, "BA" and "BA≠0"; paper 002 Sec. 3.1).

    Every triplet of the batch with ``y_a = y_p ≠ y_n`` and ``a ≠ p`` (paper 004, Eq. 4 over the batch):

        L_BA = Σ_{a, p, n} [ m + D(x_a, x_p) - D(x_a, x_n) ]_+                     (004, Eq. 4)

    ``reduction="sum"`` is that Σ. ``reduction="mean"`` divides it by a count chosen by ``average``:

    * ``"nonzero"`` (default): the number of *active* triplets (non-zero loss), Hermans et al.'s
      "BA≠0", the variant they recommend, because averaging over all triplets lets the many easy
      (zero) triplets wash out the few informative ones;
    * ``"all"``: the number of valid triplets, Hermans et al.'s plain "BA".

    With ``soft=True`` every term is positive, so both averages coincide. The triplets are built as
    a (positive pairs × batch) slab, vectorised; ``last_stats`` reports ``triplets`` and
    ``active_triplets``.
    """

    def __init__(
        self,
        margin: float = 0.3,
        soft: bool = False,
        normalize: bool = False,
        *,
        squared: bool = False,
        average: str = "nonzero",
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if margin < 0:
            raise ConfigError(f"triplet margin must be >= 0, got {margin}.")
        if average not in ("nonzero", "all"):
            raise ConfigError(f"average must be 'nonzero' (Hermans' BA≠0) or 'all' (BA), got {average!r}.")
        self.margin = float(margin)
        self.soft = bool(soft)
        self.normalize = bool(normalize)
        self.squared = bool(squared)
        self.average = average
        self.reduction = check_reduction(reduction)
        self.last_stats: dict[str, float] = {}

    def extra_repr(self) -> str:
        return (
            f"margin={self.margin}, soft={self.soft}, normalize={self.normalize}, "
            f"squared={self.squared}, average={self.average!r}, reduction={self.reduction!r}"
        )

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        check_finite(self, features=features)
        check_batch(features, labels)
        dist = batch_distances(features, squared=self.squared, normalize=self.normalize)
        pos_mask, other_mask = pair_masks(labels)
        # Enumerate the (anchor, positive) pairs once, then take every candidate negative of each
        # pair's anchor as a column: a (pairs × B) slab instead of a B×B×B cube (B·(K-1) rows for a
        # P×K batch, 40× less work at 32×4), still with no loop.
        anchor, positive = pos_mask.nonzero(as_tuple=True)
        neg_mask = other_mask[anchor]  # (pairs, n)

        # m + D(a, p) - D(a, n) for every (a, p, n)   (004, Eq. 4)
        slack = self.margin + dist[anchor, positive][:, None] - dist[anchor]
        per_triplet = F.softplus(slack) if self.soft else F.relu(slack)
        per_triplet = torch.where(neg_mask, per_triplet, torch.zeros_like(per_triplet))

        n_triplets = neg_mask.sum()
        n_active = (per_triplet > 0).sum()
        self.last_stats = {"triplets": float(n_triplets), "active_triplets": float(n_active)}
        count = n_active if self.average == "nonzero" else n_triplets
        return _reduce(per_triplet, count, self.reduction)
