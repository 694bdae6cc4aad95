"""Paper 000 (Borgia et al., TIP 2018): Steering Meta-Center (SMC) and Enhancing Centres
Dispersion (ECD) losses, and the intra/inter group-centre losses (GCL) they are compared with.

Notation (paper 000, Eq. 2 and 4): a mini-batch of ``m`` features ``x_i`` (pool5, 2048-d) with
identity ``y_i`` and camera ``g_i``; ``c^(j)_y`` is the sub-centre of identity ``y`` under camera
``j`` (kept by :class:`reid.losses.centers.CameraCenters`); ``s_y`` counts the cameras seen for
``y``. The centres are constants for autograd: only the features receive gradients, and the
centres move by the centre-loss rule after each iteration (see :mod:`reid.losses.centers`).

The total objective (Eq. 1) is :class:`SMCECDLoss`::

    L = L_softmax + λ_SMC · L_SMC + λ_ECD · L_ECD

with the softmax on the classifier logits (fc8) and SMC/ECD on the pool5 features.

Readings of the printed formulas (each also in ``book/errata_entries/000-*.md``):

* Meta-centre scale (Sec. III-A): the text calls ``c^(SMC) = Σ_j c^(j)`` "a scaled version, by a
  factor N, of the unweighted mean ... (1/N) Σ_j c^(j)". The unweighted mean of the ``s_y``
  sub-centres is ``(1/s_y) Σ_j c^(j)``, so the meta-centre is that mean scaled by ``s_y`` (the
  number of cameras), not by ``N`` (the number of images). Eq. 2 itself (the sum) is
  unambiguous and is what :class:`SMCLoss` computes.
* ECD's inner sum (Eq. 4) is printed over ``t ≠ i``, which includes batch samples of the
  anchor's *own* identity: their sub-centres include ``c^(g_i)_{y_i}``, which ``x_i`` is being
  pulled onto, so ``1/‖x_i − c‖²`` blows up exactly as training succeeds. Fig. 6 and the text
  ("the isolation of the reference identity from each of the *other* identities") support
  ``y_t ≠ y_i``; that is what :class:`ECDLoss` implements.
* ε (ours): Eq. 4 has no ε; ``1/(‖x_i − c‖² + ε)`` with ``ε = 1e-6 · mean‖c‖²`` only keeps a
  feature lying on a foreign sub-centre finite (it moves ECD by ~2e-6 of its value). The squared
  distances are summed from differences (:func:`exact_squared_distance`): the matrix-product
  expansion loses the small distances, ECD's largest terms, in float32.
* Appendix A's derivatives were lost in extraction; :mod:`reid.losses.printed_gradients`
  gives the derived closed forms.
* GCL is not defined in paper 000; :class:`IntraGCLoss` and :class:`InterGCLoss` are a
  reconstruction from its description (Sec. III-A and Expression 5).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from reid.errors import ConfigError
from reid.losses._checks import check_finite, check_reduction, reduce_terms
from reid.losses.centers import CameraCenters, CenterLoss
from reid.metrics.distance import euclidean

__all__ = [
    "smc_terms",
    "class_range",
    "ECDParts",
    "exact_squared_distance",
    "ecd_parts",
    "ecd_terms",
    "intra_gcl_terms",
    "inter_gcl_terms",
    "SMCLoss",
    "ECDLoss",
    "IntraGCLoss",
    "InterGCLoss",
    "SMCECDLoss",
    "GCLLoss",
    "SoftmaxCenterLoss",
]


# ----------------------------------------------------------------------------------------------
# Per-sample terms (functions of the features; the centres are read, never differentiated)
# ----------------------------------------------------------------------------------------------


def smc_terms(features: torch.Tensor, labels: torch.Tensor, centers: CameraCenters) -> torch.Tensor:
    """Per-sample SMC terms, shape ``(m,)``.

    Paper 000, Eq. 2::

        L_SMC = ½ Σ_{i=1}^{m} ‖x_i^(g_i) − Σ_{j=1}^{s_i} c^(j)_{y_i}‖²₂ = ½ Σ_i ‖x_i − c^(SMC)_{y_i}‖²₂

    The meta-centre ``c^(SMC)_y`` is the *sum* of the seen sub-centres, i.e. ``s_y`` times their
    unweighted mean (the text's "scaled by a factor N" should read ``s_y``; see module docstring).
    It lies outside the class for ``s_y > 1``, which is what drifts classes away from the origin.
    """
    meta = centers.meta_centers(labels, features.dtype)  # c^(SMC)_{y_i} = Σ_j c^(j)_{y_i}
    return 0.5 * (features - meta).pow(2).sum(dim=1)


def class_range(features: torch.Tensor, sub: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Class range ``Σ_{j=1}^{s_i} ‖x_i − c^(j)_{y_i}‖²₂`` per sample (left factor of Eq. 4).

    ``sub``: ``(m, K, D)`` sub-centres of each sample's own identity, ``mask``: ``(m, K)`` seen.
    "The sum of the solid lines distances defines the class range of the reference class" (Fig. 6).
    """
    return ((features.unsqueeze(1) - sub).pow(2).sum(dim=-1) * mask).sum(dim=1)


class ECDParts(NamedTuple):
    """Intermediate quantities of Eq. 4, shared by the loss and its derived gradient."""

    class_range: torch.Tensor  # A_i, (m,)
    batch_ids: torch.Tensor  # the U distinct identities of the batch, (U,)
    inverse: torch.Tensor  # index of y_i in batch_ids, (m,)
    sub: torch.Tensor  # their sub-centres, (U, K, D)
    mask: torch.Tensor  # seen mask, (U, K) float
    sq_dist: torch.Tensor  # ‖x_i − c^(k)_u‖²₂, (m, U, K)
    epsilon: torch.Tensor  # the ε added to every squared distance (0-d)
    weight: torch.Tensor  # w_iu: how often identity u enters anchor i's Σ_t, (m, U)


def exact_squared_distance(x: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """``D[i, n] = ‖x_i − p_n‖²₂`` summed from the differences, never from ``‖x‖² + ‖p‖² − 2x·p``.

    ECD divides by these distances, and its largest terms are the *small* ones (a feature next
    to another identity's sub-centre). The matrix-product expansion loses exactly those: its
    rounding error is about ``ulp(‖x‖² + ‖p‖²)``, so in float32 a squared distance 1e-6 times the
    squared feature norm keeps almost no correct digit, and with ``eps = 1e-6`` that cost 15% of
    the ECD value and 28% of its gradient on the audit's example (issue 11). ``torch.cdist``
    without the matrix-product path sums ``(x − p)²`` directly; its backward is ``2(x − p)``,
    0 at a zero distance (where ``d²`` has gradient 0 too). About 8x slower than the expansion
    on the CPU for 2048-d features, i.e. milliseconds per batch.
    """
    return torch.cdist(x, points, compute_mode="donot_use_mm_for_euclid_dist").pow(2)


def ecd_parts(
    features: torch.Tensor,
    labels: torch.Tensor,
    centers: CameraCenters,
    eps: float = 1e-6,
    distinct_identities: bool = False,
) -> ECDParts:
    """Everything Eq. 4 needs, vectorised over anchors ``i``, batch identities ``u`` and cameras ``k``.

    The Σ over ``t`` (batch samples) is regrouped by identity: identity ``u`` contributes its
    seen sub-centres once per batch sample ``t`` with ``y_t = u`` — weight ``n_u`` (the printed
    Σ over samples) or weight 1 with ``distinct_identities=True`` — and never for ``u = y_i``
    (the Fig. 6 reading of ``t ≠ i``).

    ε keeps ``1/‖x_i − c‖²`` finite: ``ε = eps · mean‖c‖²₂ + machine-ε``, the mean over the seen
    sub-centres of the batch identities, i.e. relative to the scale of the feature space (the
    sub-centres are running averages of features). It is a constant for autograd (centres are).
    Eq. 4 has no ε, so ε is a guard, not a hyper-parameter, and should move ECD as little as
    possible: ``eps = 1e-3`` (the former default) lowers ECD by about 0.2% on typical batches,
    the default ``eps = 1e-6`` by about 2e-6 (both measured in ``tests/test_losses_000.py``).
    A small ε is only safe because the distances are summed from differences
    (:func:`exact_squared_distance`), which keeps float32 close to float64 next to a sub-centre.
    """
    m, dim = features.shape
    batch_ids, inverse = torch.unique(labels, return_inverse=True)
    num_ids = batch_ids.shape[0]
    sub, mask = centers.sub_centers(batch_ids, features.dtype)  # (U, K, D), (U, K)
    num_cams = sub.shape[1]

    a = class_range(features, sub[inverse], mask[inverse])  # Σ_j ‖x_i − c^(j)_{y_i}‖²

    sq_dist = exact_squared_distance(features, sub.reshape(num_ids * num_cams, dim)).view(m, num_ids, num_cams)
    scale = (sub.pow(2).sum(dim=-1) * mask).sum() / mask.sum().clamp(min=1.0)  # mean ‖c‖² (seen)
    epsilon = eps * scale + torch.finfo(features.dtype).eps

    other = inverse.unsqueeze(1) != torch.arange(num_ids, device=labels.device).unsqueeze(0)  # u ≠ y_i
    if distinct_identities:
        weight = other.to(features.dtype)
    else:
        counts = torch.bincount(inverse, minlength=num_ids).to(features.dtype)  # n_u in the batch
        weight = other.to(features.dtype) * counts.unsqueeze(0)
    return ECDParts(a, batch_ids, inverse, sub, mask, sq_dist, epsilon, weight)


def ecd_terms(
    features: torch.Tensor,
    labels: torch.Tensor,
    centers: CameraCenters,
    eps: float = 1e-6,
    distinct_identities: bool = False,
) -> torch.Tensor:
    """Per-sample ECD terms, shape ``(m,)``.

    Paper 000, Eq. 4, with the inner sum over the *other* identities (Fig. 6; see module docstring)::

        L_ECD = ½ Σ_{i=1}^{m} [ Σ_{j=1}^{s_i} ‖x_i − c^(j)_{y_i}‖²₂ ] · [ Σ_{t: y_t ≠ y_i} Σ_{k=1}^{s_t} 1 / (‖x_i − c^(k)_{y_t}‖²₂ + ε) ]

    Small when the class range is small relative to *each* distance to another identity's
    sub-centre. A batch with a single identity has no other identity: ECD is 0 there.
    """
    p = ecd_parts(features, labels, centers, eps, distinct_identities)
    inv_sq = (p.mask.unsqueeze(0) / (p.sq_dist + p.epsilon)).sum(dim=-1)  # Σ_k 1/(‖x_i − c^(k)_u‖² + ε), (m, U)
    b = (p.weight * inv_sq).sum(dim=1)  # Σ_{t: y_t ≠ y_i} Σ_k ...
    return 0.5 * p.class_range * b


def intra_gcl_terms(
    features: torch.Tensor, labels: torch.Tensor, camids: torch.Tensor, centers: CameraCenters
) -> torch.Tensor:
    """Per-sample intra-GCL terms (reconstruction), shape ``(m,)``.

    Paper 000 describes intra-GCL as accounting for the camera by pulling each feature to its own
    camera's sub-centre without making the sub-centres of an identity converge ("compact
    sub-classes in a still wide overall class"). Reconstruction::

        L_intraGCL = ½ Σ_{i=1}^{m} ‖x_i − c^(g_i)_{y_i}‖²₂

    i.e. the centre loss with one centre per (identity, camera) group.
    """
    own = centers.centers.to(features.dtype)[labels, camids]  # c^(g_i)_{y_i}
    return 0.5 * (features - own).pow(2).sum(dim=1)


def inter_gcl_terms(
    features: torch.Tensor, labels: torch.Tensor, camids: torch.Tensor, centers: CameraCenters
) -> torch.Tensor:
    """Per-sample inter-GCL terms (reconstruction), shape ``(m,)``.

    Paper 000 prints only the right-hand factor of inter-GCL (Expression 5), as the counterpart
    of ECD's right-hand factor, and says it forces "the class range to be small only with
    respect to the sum of the inter-class distances of all the identities in the dataset".
    Reconstruction: ECD's class range times Expression 5::

        L_interGCL = ½ Σ_{i=1}^{m} [ Σ_{j=1}^{s_i} ‖x_i − c^(j)_{y_i}‖²₂ ] · 1 / [ Σ_{u} Σ_{j ≠ g_i} ‖x_i − c^(j)_u‖₂ ]

    with ``u`` over *all* identities in the centre table and ``j`` over their seen cameras other
    than ``g_i``, as printed (plain, not squared, distances; the anchor's own identity is not
    excluded). Expression 5 sums over the ``n`` training *images* ``t``, which weights each
    identity by its image count; the reconstruction counts each identity once. An anchor with no
    seen sub-centre to compare with gets 0.
    """
    sub, mask = centers.sub_centers(labels, features.dtype)
    a = class_range(features, sub, mask)
    num_cams, dim = centers.num_cameras, centers.feat_dim
    # every c^(j)_u, row u·K + j; a copy, because the buffer is updated in place before backward
    table = centers.centers.to(features.dtype).reshape(-1, dim).clone()
    cell_cam = torch.arange(table.shape[0], device=features.device) % num_cams
    valid = centers.seen.view(1, -1) & (cell_cam.unsqueeze(0) != camids.unsqueeze(1))  # seen, j ≠ g_i
    dist = euclidean(features, table)  # ‖x_i − c^(j)_u‖₂, zero-distance safe
    denom = (dist * valid.to(features.dtype)).sum(dim=1)
    has_any = valid.any(dim=1)
    safe = torch.where(has_any, denom, torch.ones_like(denom))
    return torch.where(has_any, 0.5 * a / safe, torch.zeros_like(a))


# ----------------------------------------------------------------------------------------------
# Modules
# ----------------------------------------------------------------------------------------------


class _SubCenterLoss(nn.Module):
    """A loss over :class:`CameraCenters`; moves the sub-centres in ``forward`` when training."""

    def __init__(self, centers: CameraCenters, *, reduction: str = "mean", update_in_forward: bool = True) -> None:
        super().__init__()
        if not isinstance(centers, CameraCenters):
            raise ConfigError(
                f"{type(self).__name__} needs a CameraCenters instance, got {type(centers).__name__}; "
                "build one with CameraCenters(num_classes, num_cameras, feat_dim, alpha)."
            )
        self.centers = centers
        self.reduction = check_reduction(reduction)
        self.update_in_forward = bool(update_in_forward)

    def _terms(self, features: torch.Tensor, labels: torch.Tensor, camids: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, features: torch.Tensor, labels: torch.Tensor, camids: torch.Tensor | None = None) -> torch.Tensor:
        check_finite(self, features=features)
        self.centers.check(features, labels, camids)
        updating = self.training and self.update_in_forward
        if updating and camids is None:
            raise ConfigError(
                f"{type(self).__name__} in training mode moves the camera sub-centres and needs camids; "
                "pass camids, or call .eval() / build with update_in_forward=False."
            )
        loss = reduce_terms(self._terms(features, labels, camids), self.reduction)
        if updating:
            self.centers.update(features, labels, camids)
        return loss

    def update_centers(self, features: torch.Tensor, labels: torch.Tensor, camids: torch.Tensor) -> None:
        """One centre-loss update of the sub-centres ``c^(g_i)_{y_i}`` (no gradient)."""
        self.centers.update(features, labels, camids)


class SMCLoss(_SubCenterLoss):
    """Steering Meta-Center loss (paper 000, Eq. 2): pull each feature to its identity's meta-centre.

    ``L_SMC = ½ Σ_i ‖x_i − Σ_{j=1}^{s_i} c^(j)_{y_i}‖²₂`` (see :func:`smc_terms`).
    ``forward(features, labels, camids)``; ``camids`` is needed only to move the sub-centres.
    """

    def _terms(self, features, labels, camids):
        return smc_terms(features, labels, self.centers)


class ECDLoss(_SubCenterLoss):
    """Enhancing Centres Dispersion loss (paper 000, Eq. 4), other-identity reading of Fig. 6.

    ``L_ECD = ½ Σ_i [Σ_j ‖x_i − c^(j)_{y_i}‖²] · [Σ_{t: y_t≠y_i} Σ_k 1/(‖x_i − c^(k)_{y_t}‖² + ε)]``
    (see :func:`ecd_terms`). ``eps`` sets ε relative to the mean squared norm of the sub-centres;
    ``distinct_identities=True`` counts each other identity once instead of once per batch sample.
    """

    def __init__(
        self,
        centers: CameraCenters,
        *,
        eps: float = 1e-6,
        distinct_identities: bool = False,
        reduction: str = "mean",
        update_in_forward: bool = True,
    ) -> None:
        super().__init__(centers, reduction=reduction, update_in_forward=update_in_forward)
        if eps < 0:
            raise ConfigError(f"ECD eps must be >= 0 (relative to the squared feature scale), got {eps}.")
        self.eps = float(eps)
        self.distinct_identities = bool(distinct_identities)

    def _terms(self, features, labels, camids):
        return ecd_terms(features, labels, self.centers, self.eps, self.distinct_identities)


class IntraGCLoss(_SubCenterLoss):
    """Intra group-centre loss, **reconstructed** (see :func:`intra_gcl_terms`); needs ``camids``."""

    def _terms(self, features, labels, camids):
        _require_camids(self, camids)
        return intra_gcl_terms(features, labels, camids, self.centers)


class InterGCLoss(_SubCenterLoss):
    """Inter group-centre loss, **reconstructed** (see :func:`inter_gcl_terms`); needs ``camids``."""

    def _terms(self, features, labels, camids):
        _require_camids(self, camids)
        return inter_gcl_terms(features, labels, camids, self.centers)


def _require_camids(module: nn.Module, camids: torch.Tensor | None) -> None:
    if camids is None:
        raise ConfigError(f"{type(module).__name__} groups features by camera; pass camids (0-based).")


# ----------------------------------------------------------------------------------------------
# Total objectives: one object per recipe of paper 000's Table III
# ----------------------------------------------------------------------------------------------


class _SoftmaxPlusTerms(nn.Module):
    """``L = CE(logits, y) + Σ_k λ_k · L_k(features, ...)``; centres move once per training forward.

    ``last_stats`` holds the value of every term (unweighted) and the total, as floats.
    A term whose λ is 0 is not computed.
    """

    def __init__(self, weights: dict[str, float], reduction: str) -> None:
        super().__init__()
        for name, weight in weights.items():
            if weight < 0:
                raise ConfigError(f"loss weight lambda_{name} must be >= 0, got {weight}.")
        self.weights = {k: float(v) for k, v in weights.items()}
        self.reduction = check_reduction(reduction)
        self.last_stats: dict[str, float] = {}

    def _softmax(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[0] != labels.shape[0]:
            raise ConfigError(
                "logits must be a (batch, num_classes) tensor from the classifier head (fc8), one row "
                "per feature; pass logits=model_output.logits."
            )
        return F.cross_entropy(logits, labels, reduction=self.reduction)

    def _combine(self, softmax: torch.Tensor, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        total = softmax
        for name, value in terms.items():
            total = total + self.weights[name] * value
        self.last_stats = {"softmax": float(softmax.detach())}
        self.last_stats.update({name: float(value.detach()) for name, value in terms.items()})
        self.last_stats["total"] = float(total.detach())
        return total


class SMCECDLoss(_SoftmaxPlusTerms):
    """Paper 000's total objective (Eq. 1)::

        L = L_softmax + λ_SMC · L_SMC + λ_ECD · L_ECD

    ``forward(features, labels, camids, *, logits)``: ``features`` = pool5 (fed to SMC and ECD),
    ``logits`` = fc8 (fed to the softmax loss, :func:`torch.nn.functional.cross_entropy`).
    Recipes of Table III: ``lambda_ecd=0`` is "SMC", both λ = 0 is "Softmax".

    Hyper-parameters: λ_SMC = 1e-3 is the value the paper fixes for its SMC+ECD sweeps
    (captions of Fig. 11, 13, 14). λ_ECD's chosen value and the centre update rate α are not
    given in the text (λ_ECD is only read off the curves of Fig. 11b/13b); the defaults
    ``lambda_ecd=1e-3`` and ``alpha=0.5`` (the centre-loss paper's α) are ours — sweep them.
    ``reduction="mean"`` divides each Σ over the batch by ``m`` (as Caffe's loss layers do).
    The sub-centres are shared by SMC and ECD and move once per training ``forward``.
    """

    def __init__(
        self,
        num_classes: int,
        num_cameras: int,
        feat_dim: int,
        *,
        lambda_smc: float = 1e-3,
        lambda_ecd: float = 1e-3,
        alpha: float = 0.5,
        ecd_eps: float = 1e-6,
        distinct_identities: bool = False,
        reduction: str = "mean",
        update_in_forward: bool = True,
    ) -> None:
        super().__init__({"smc": lambda_smc, "ecd": lambda_ecd}, reduction)
        self.centers = CameraCenters(num_classes, num_cameras, feat_dim, alpha)
        if ecd_eps < 0:
            raise ConfigError(f"ecd_eps must be >= 0, got {ecd_eps}.")
        self.ecd_eps = float(ecd_eps)
        self.distinct_identities = bool(distinct_identities)
        self.update_in_forward = bool(update_in_forward)

    def forward(
        self, features: torch.Tensor, labels: torch.Tensor, camids: torch.Tensor, *, logits: torch.Tensor
    ) -> torch.Tensor:
        check_finite(self, features=features, logits=logits)
        self.centers.check(features, labels, camids)
        terms: dict[str, torch.Tensor] = {}
        if self.weights["smc"] > 0:
            terms["smc"] = reduce_terms(smc_terms(features, labels, self.centers), self.reduction)
        if self.weights["ecd"] > 0:
            ecd = ecd_terms(features, labels, self.centers, self.ecd_eps, self.distinct_identities)
            terms["ecd"] = reduce_terms(ecd, self.reduction)
        loss = self._combine(self._softmax(logits, labels), terms)  # Eq. 1
        if self.training and self.update_in_forward:
            self.centers.update(features, labels, camids)
        return loss

    def update_centers(self, features: torch.Tensor, labels: torch.Tensor, camids: torch.Tensor) -> None:
        self.centers.update(features, labels, camids)


class GCLLoss(_SoftmaxPlusTerms):
    """The "GCL" baseline of paper 000 (Table III), **reconstructed**::

        L = L_softmax + λ_intra · L_intraGCL + λ_inter · L_interGCL

    (terms: :func:`intra_gcl_terms`, :func:`inter_gcl_terms`). Paper 000 gives neither the GCL
    formulas in full nor their weights; the defaults λ_intra = 1e-3 (the scale paper 000 uses for
    its own centre-type term) and λ_inter = 1e-3 are ours. ``forward(features, labels, camids, *, logits)``.
    """

    def __init__(
        self,
        num_classes: int,
        num_cameras: int,
        feat_dim: int,
        *,
        lambda_intra: float = 1e-3,
        lambda_inter: float = 1e-3,
        alpha: float = 0.5,
        reduction: str = "mean",
        update_in_forward: bool = True,
    ) -> None:
        super().__init__({"intra_gcl": lambda_intra, "inter_gcl": lambda_inter}, reduction)
        self.centers = CameraCenters(num_classes, num_cameras, feat_dim, alpha)
        self.update_in_forward = bool(update_in_forward)

    def forward(
        self, features: torch.Tensor, labels: torch.Tensor, camids: torch.Tensor, *, logits: torch.Tensor
    ) -> torch.Tensor:
        check_finite(self, features=features, logits=logits)
        self.centers.check(features, labels, camids)
        _require_camids(self, camids)
        terms: dict[str, torch.Tensor] = {}
        if self.weights["intra_gcl"] > 0:
            terms["intra_gcl"] = reduce_terms(intra_gcl_terms(features, labels, camids, self.centers), self.reduction)
        if self.weights["inter_gcl"] > 0:
            terms["inter_gcl"] = reduce_terms(inter_gcl_terms(features, labels, camids, self.centers), self.reduction)
        loss = self._combine(self._softmax(logits, labels), terms)
        if self.training and self.update_in_forward:
            self.centers.update(features, labels, camids)
        return loss

    def update_centers(self, features: torch.Tensor, labels: torch.Tensor, camids: torch.Tensor) -> None:
        self.centers.update(features, labels, camids)


class SoftmaxCenterLoss(_SoftmaxPlusTerms):
    """The "Center" baseline of paper 000 (Table III): ``L = L_softmax + λ_C · L_C`` (Wen et al. 2016).

    λ_C is not given in paper 000; the default 1e-3 matches its λ_SMC (a term on the same pool5
    scale). ``forward(features, labels, camids=None, *, logits)`` — ``camids`` is accepted and
    ignored so every paper-000 recipe is called the same way.
    """

    def __init__(
        self,
        num_classes: int,
        feat_dim: int,
        *,
        lambda_center: float = 1e-3,
        alpha: float = 0.5,
        reduction: str = "mean",
        update_in_forward: bool = True,
    ) -> None:
        super().__init__({"center": lambda_center}, reduction)
        self.center_loss = CenterLoss(
            num_classes, feat_dim, alpha, reduction=reduction, update_in_forward=update_in_forward
        )

    def forward(
        self,
        features: torch.Tensor,
        labels: torch.Tensor,
        camids: torch.Tensor | None = None,
        *,
        logits: torch.Tensor,
    ) -> torch.Tensor:
        check_finite(self, features=features, logits=logits)
        terms = {"center": self.center_loss(features, labels)} if self.weights["center"] > 0 else {}
        if not terms and self.training and self.center_loss.update_in_forward:
            self.center_loss.update_centers(features, labels)  # keep the centres current at λ = 0
        return self._combine(self._softmax(logits, labels), terms)

    def update_centers(self, features: torch.Tensor, labels: torch.Tensor, camids: torch.Tensor | None = None) -> None:
        self.center_loss.update_centers(features, labels)
