"""Support neighbour (SN) loss — paper 002 (Li, Ding, Li, Zhang & Fu, ACM MM 2018).

Every sample ``x_i`` of a P×Q batch is an anchor. Its *support neighbours* are its K nearest
neighbours in the batch, ``K_i = P_i ∪ N_i`` (positives ``P_i``: same identity; negatives ``N_i``).

* separation (Eq. 3 / Eq. 4): ``-log Σ_{p∈P_i} e^{-σD(x_i,x_p)} / Σ_{s∈K_i} e^{-σD(x_i,x_s)}``,
  a softmax over the support set that moves probability mass onto the positive neighbours;
* squeeze (Eq. 5): ``max_{p∈P_i} D(x_i,x_p) - min_{p∈P_i} D(x_i,x_p)``, the spread of the positive
  neighbours' distances;
* ``L_sn = L_spr + λ L_sqz`` (Eq. 6), λ = 0.1 in all of the paper's experiments (Sec. 4.2).

Readings of what the paper leaves open or prints inconsistently (see also
``book/errata_entries/002-*.md``):

**Distance (``squared``).** Eq. 3 says "D(·,·) is the euclidean distance"; the appendix defines
``D(x_i,x_p) = ||f(x_i) - f(x_p)||²₂`` and still calls it "the Euclidean distance". The name is the
same in both places (and the paper ranks test images by "Euclidean distances"); the square appears
only in the appendix formula, whose gradient algebra is unreliable (it drops the softmax weights,
see :mod:`reid.losses.printed_gradients`), and the paper writes ``||·||²₂`` explicitly where it does
mean a square (its Eq. 2). We therefore default to the plain Euclidean distance
(``squared=False``); ``squared=True`` follows the appendix, and is what the printed-gradient
comparison uses.

**K and σ.** The text gives no value for K (Fig. 3(b) only: mAP drops as K grows, K = 127 = "all
other samples" is worst) and says only that σ is "favored ... bigger than 30". Both are therefore
required arguments; ``k`` may be at most ``batch - 1``.

**Feature scale (``normalize``).** σ multiplies a distance, so "σ > 30" means something only on a
fixed feature scale, and the paper never says whether the *training* features are normalised (it
normalises them at test time: "we normalize the embeddings to unit vectors"). On raw features the
network can rescale its embedding and so choose its own effective σ (scaling every feature by c
turns σ into cσ, or c²σ for the squared distance); with ``normalize=True`` every row is first mapped to the unit sphere, so
``D ∈ [0, 2]`` (``[0, 4]`` squared), σD ranges over ``[0, 2σ]`` and σ has a fixed meaning — the
temperature of a cosine softmax, where scales of about 30 are the usual choice. The class default
(``False``) is Eq. 3–5 on the features as given; the recipe trains with ``normalize=True``.

**Numerics.** With σ ≥ 30 and raw (unnormalised) features ``e^{-σD}`` underflows to 0 in float32,
turning Eq. 4 into ``-log(0/0)``. We compute Eq. 4 as a difference of log-sum-exps,
``logsumexp_{s∈K_i}(-σD_is) - logsumexp_{p∈P_i}(-σD_ip)``, which is exact and never underflows
(terms below ``e^{-80}`` of the largest are dropped: they are below float precision and would
only produce slow subnormal numbers, see :mod:`reid.losses._numerics`).

**Neighbour selection** is a ranking of the *detached* distances (the anchor excluded, ties broken
by ``torch.topk``); the loss is differentiated through the selected distances only, as in the
paper's appendix, which treats the sets ``K_i, P_i`` as fixed.

**An anchor with no positive among its K neighbours** (frequent early in training) makes Eq. 4
``-log 0 = +inf`` and Eq. 5 a max/min over an empty set; the paper does not say what happens.
``no_positive="skip"`` (default) leaves such anchors out of both terms — they have no support
"triplet" {x_i, P_i, N_i} — and out of the mean. ``no_positive="nearest"`` instead adds the
anchor's nearest positive in the batch to its support set (``K_i`` then has K+1 members, ``P_i``
one), so that every anchor with a positive in the batch keeps a finite term. Anchors whose
identity has no other image in the batch are always skipped. ``last_stats`` counts how often each
case fires: ``no_positive_in_k`` (the rule fired), ``no_positive_in_batch``, ``skipped`` and
``anchors_used``.

**Reduction.** ``"sum"`` is exactly Eq. 6 with the paper's ``Σ_{i=1}^N`` in both terms, over the
anchors in play; ``"mean"`` divides that sum by the number of anchors in play.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from reid.errors import ConfigError
from reid.losses._checks import check_finite, check_reduction
from reid.losses._numerics import masked_logsumexp
from reid.losses.triplet import batch_distances, check_batch

__all__ = ["SupportNeighborLoss", "SupportNeighbors", "support_neighbors"]

NO_POSITIVE_RULES = ("skip", "nearest")


class SupportNeighbors(NamedTuple):
    """The support sets of every anchor, as index/mask matrices of shape ``(B, S)``.

    ``index[i, s]`` is the batch index of the s-th support neighbour of anchor ``i``; ``member``
    says whether that column belongs to ``K_i`` (the extra column of the ``"nearest"`` rule is a
    member only where the rule fired); ``positive`` marks the members of ``P_i``; ``used`` marks
    the anchors whose term is in the loss.
    """

    index: torch.Tensor  # (B, S) long
    member: torch.Tensor  # (B, S) bool, s ∈ K_i
    positive: torch.Tensor  # (B, S) bool, s ∈ P_i
    used: torch.Tensor  # (B,) bool
    no_positive_in_k: torch.Tensor  # (B,) bool
    no_positive_in_batch: torch.Tensor  # (B,) bool


@torch.no_grad()
def support_neighbors(dist: torch.Tensor, labels: torch.Tensor, k: int, no_positive: str = "skip") -> SupportNeighbors:
    """Select the K nearest neighbours of every anchor (never the anchor itself); not differentiated.

    Shared by :class:`SupportNeighborLoss` and the paper-002 gradients in
    :mod:`reid.losses.printed_gradients`, so both see the same sets ``K_i``, ``P_i``, ``N_i``.
    """
    if no_positive not in NO_POSITIVE_RULES:
        raise ConfigError(f"no_positive must be one of {NO_POSITIVE_RULES}, got {no_positive!r}.")
    b = dist.shape[0]
    if not 1 <= k <= b - 1:
        raise ConfigError(
            f"k = {k} support neighbours need a batch of at least k + 1 = {k + 1} samples and k >= 1, "
            f"got a batch of {b}; lower k or enlarge the batch (the paper uses P×Q = 32×4 = 128)."
        )
    eye = torch.eye(b, dtype=torch.bool, device=dist.device)
    d = dist.detach().masked_fill(eye, float("inf"))  # the anchor is never its own neighbour
    index = d.topk(k, dim=1, largest=False).indices  # (B, K)
    same = labels[:, None] == labels[None, :]
    positive = same.gather(1, index)
    member = torch.ones_like(positive)

    has_pos_in_batch = (same & ~eye).any(1)
    no_pos_in_k = ~positive.any(1)
    if no_positive == "nearest":
        # Nearest positive in the batch, appended as an extra column that is a member only where
        # the rule fires (anchors with no positive among the K, but one in the batch).
        nearest_pos = d.masked_fill(~same, float("inf")).argmin(1, keepdim=True)
        fire = no_pos_in_k & has_pos_in_batch
        index = torch.cat([index, nearest_pos], dim=1)
        member = torch.cat([member, fire[:, None]], dim=1)
        positive = torch.cat([positive, fire[:, None]], dim=1)
        used = has_pos_in_batch
    else:
        used = ~no_pos_in_k
    return SupportNeighbors(index, member, positive, used, no_pos_in_k, ~has_pos_in_batch)


class SupportNeighborLoss(nn.Module):
    """Support neighbour loss ``L_sn = L_spr + λ·L_sqz`` (paper 002, Eq. 3–6).

    ``SupportNeighborLoss(k, sigma, lam=0.1, *, squared=False, normalize=False, no_positive="skip",
    reduction="mean")``; ``forward(features, labels) -> loss`` on a P×Q batch. ``normalize=True``
    L2-normalises the features first (see the module docstring: it gives σ a fixed scale). Diagnostics of the last call are in
    ``last_stats`` (separation and squeeze parts, anchors used, how often the no-positive rule fired).
    """

    def __init__(
        self,
        k: int,
        sigma: float,
        lam: float = 0.1,
        *,
        squared: bool = False,
        normalize: bool = False,
        no_positive: str = "skip",
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        if int(k) < 1:
            raise ConfigError(f"k (number of support neighbours) must be >= 1, got {k}.")
        if sigma <= 0:
            raise ConfigError(f"sigma (the scaling factor of Eq. 3) must be > 0, got {sigma}; the paper favours > 30.")
        if lam < 0:
            raise ConfigError(f"lam (λ of Eq. 6) must be >= 0, got {lam}.")
        if no_positive not in NO_POSITIVE_RULES:
            raise ConfigError(f"no_positive must be one of {NO_POSITIVE_RULES}, got {no_positive!r}.")
        self.k = int(k)
        self.sigma = float(sigma)
        self.lam = float(lam)
        self.squared = bool(squared)
        self.normalize = bool(normalize)
        self.no_positive = no_positive
        self.reduction = check_reduction(reduction)
        self.last_stats: dict[str, float] = {}

    def extra_repr(self) -> str:
        return (
            f"k={self.k}, sigma={self.sigma}, lam={self.lam}, squared={self.squared}, normalize={self.normalize}, "
            f"no_positive={self.no_positive!r}, reduction={self.reduction!r}"
        )

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        check_finite(self, features=features)
        check_batch(features, labels)
        dist = batch_distances(features, squared=self.squared, normalize=self.normalize)
        sn = support_neighbors(dist, labels, self.k, self.no_positive)
        d_support = dist.gather(1, sn.index)  # D(x_i, x_s) for the support columns, differentiable
        used = sn.used
        # Rows that are not used get a dummy positive column so that no log-sum-exp is taken over
        # an empty set (which would give -inf and a NaN gradient); their terms are zeroed below.
        member = sn.member
        positive = sn.positive | (~used[:, None] & (torch.arange(member.shape[1], device=member.device) == 0))
        neg_inf = torch.full_like(d_support, float("-inf"))
        inf = torch.full_like(d_support, float("inf"))

        # Separation, Eq. 4:  -log( Σ_{p∈P_i} e^{-σD_ip} / Σ_{s∈K_i} e^{-σD_is} )
        #                   =  logsumexp_{s∈K_i}(-σD_is) - logsumexp_{p∈P_i}(-σD_ip)
        logits = -self.sigma * d_support
        lse_support = masked_logsumexp(logits, member | positive, dim=1)
        lse_positive = masked_logsumexp(logits, positive, dim=1)
        separation = torch.where(used, lse_support - lse_positive, torch.zeros_like(lse_support))

        # Squeeze, Eq. 5:  max_{p∈P_i} D(x_i, x_p) - min_{p∈P_i} D(x_i, x_p)
        farthest = torch.where(positive, d_support, neg_inf).amax(dim=1)
        closest = torch.where(positive, d_support, inf).amin(dim=1)
        squeeze = torch.where(used, farthest - closest, torch.zeros_like(farthest))

        n_used = used.sum()
        denom = 1.0 if self.reduction == "sum" else n_used.clamp(min=1).to(dist.dtype)
        l_spr = separation.sum() / denom
        l_sqz = squeeze.sum() / denom
        self.last_stats = {
            "separation": float(l_spr.detach()),
            "squeeze": float(l_sqz.detach()),
            "anchors": float(len(labels)),
            "anchors_used": float(n_used),
            "skipped": float(len(labels) - int(n_used)),
            "no_positive_in_k": float(sn.no_positive_in_k.sum()),
            "no_positive_in_batch": float(sn.no_positive_in_batch.sum()),
            "mean_positives_in_support": float((sn.positive & sn.member).sum(1).double().mean()),
        }
        # Eq. 6:  L_sn = L_spr + λ L_sqz
        return l_spr + self.lam * l_sqz
