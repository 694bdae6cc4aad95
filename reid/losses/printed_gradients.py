"""Gradients exactly as the papers print them, next to the correct analytic gradients.

The notebooks put three things side by side for every printed gradient formula: the formula *as
printed*, the correct analytic gradient, and autograd on the loss module. Each paper has its own
clearly headed section below; every function is vectorised (no loop over samples or pairs) and
returns one gradient row per feature row.

Sections: paper 000 and 001 (losses-a helper), paper 002 (support neighbours).
"""

from __future__ import annotations

import torch

from reid.errors import ConfigError
from reid.losses.support_neighbor import support_neighbors
from reid.losses.triplet import batch_distances
from reid.metrics.distance import squared_euclidean
from reid.losses._checks import check_pairs, check_reduction  # papers 000/001 sections
from reid.losses.adaptive_margin import adaptive_margins, pair_sq_distance
from reid.losses.centers import CameraCenters
from reid.losses.smc_ecd import ecd_parts

# --- paper 002 (support neighbours): appendix Eq. 8–11 ---------------------------------------
#
# The appendix differentiates the separation and squeeze losses w.r.t. a feature x_i with the
# appendix's own distance D = ||x_i - x_j||² (squared). All gradients below are of the paper's
# sums over anchors (reduction="sum"), over the anchors the loss uses (see
# reid.losses.support_neighbor: anchors with no positive among their K neighbours are skipped),
# and take the support sets from the same `support_neighbors` selection as the loss.
#
# How we read the printed algebra (book/errata_entries/002-*.md):
# * δ is never defined. Differentiating e^{-σD} gives -σ e^{-σD} ∂D, so the printed factor
#   κδ(...) is what remains after taking -σ out and *dropping every weight e^{-σD}/Σ e^{-σD}*:
#   δ = -σ. With δ = -σ, Eq. 8 has exactly the sign of the true gradient.
# * Eq. 9 (x_i a positive neighbour of another anchor x_q): with the weights dropped, the
#   K-term and the P-term are the same vector (x_i - x_q) and cancel, so the printed case 2 is 0.
# * Eq. 10 (x_i a negative neighbour of x_q): the middle expression gives ∂L/∂x_i = +2δ(x_i - x_q),
#   as in the summary line "Thus, we have"; the last equality of Eq. 10 flips that sign. We follow
#   the middle expression and the summary line.
# * The summary line repeats its third term (with unbalanced parentheses — an extraction or
#   typesetting artefact); `repeated_term=True` takes it literally and counts case 3 twice.
# Net effect: the printed separation gradient equals the gradient of -σ Σ_i Σ_{n∈N_i} D(x_i, x_n)
# — it pushes every negative neighbour away with the same force and never pulls positives in.


def _pair_matrix(index: torch.Tensor, mask: torch.Tensor, size: int, dtype: torch.dtype) -> torch.Tensor:
    """Dense ``A[i, j] = Σ_s mask[i, s]·[index[i, s] = j]`` from ``(B, S)`` support index/mask."""
    out = torch.zeros(index.shape[0], size, dtype=dtype, device=index.device)
    return out.scatter_add_(1, index, mask.to(dtype))  # scatter_add: masked-out columns may repeat an index


def _grad_of_weighted_distances(
    coef: torch.Tensor, x: torch.Tensor, *, squared: bool, eps: float = 1e-12
) -> torch.Tensor:
    """∇_x of ``Σ_ij C_ij D(x_i, x_j)``, vectorised (no loop over pairs).

    Squared distance: ``∂D_ij/∂x_i = 2(x_i - x_j)``, ``∂D_ij/∂x_j = 2(x_j - x_i)``, so with the
    symmetrised ``S = C + Cᵀ`` the gradient is the graph-Laplacian product
    ``2 (diag(S·1) - S) x``. Euclidean distance: the same with ``C_ij / D_ij`` (pairs closer than
    ``sqrt(eps)`` contribute nothing, matching :func:`reid.metrics.distance.euclidean`).
    """
    if squared:
        c = 2.0 * coef
    else:
        d2 = squared_euclidean(x)
        c = torch.where(d2 > eps, coef / d2.clamp(min=eps).sqrt(), torch.zeros_like(coef))
    s = c + c.t()
    return s.sum(1, keepdim=True) * x - s @ x


def _sn_sets(features: torch.Tensor, labels: torch.Tensor, k: int, no_positive: str, squared: bool):
    dist = batch_distances(features, squared=squared)
    return dist, support_neighbors(dist, labels, k, no_positive)


@torch.no_grad()
def sn_separation_grad_printed(
    features: torch.Tensor,
    labels: torch.Tensor,
    k: int,
    sigma: float,
    *,
    repeated_term: bool = False,
    return_terms: bool = False,
):
    """∂L_spr/∂x_i **as printed** in paper 002's appendix (Eq. 8–10 and the "Thus" line), δ = -σ.

        ∂L_spr/∂x_i = 2δ( Σ_{s∈K_i}(x_i - x_s) - Σ_{p∈P_i}(x_i - x_p) )                  (Eq. 8, anchor)
                    + 2δ( Σ_{q: x_i∈K(x_q)}(x_i - x_q) - Σ_{q: x_i∈P(x_q)}(x_i - x_q) )  (Eq. 9, x_i ∈ P(x_q))
                    + 2δ( Σ_{q: x_i∈K(x_q), x_i∉P(x_q)}(x_i - x_q) )                   (Eq. 10, x_i ∈ N(x_q))

    In Eq. 9 the sums run over the anchors q that have x_i as a *positive* neighbour (that is the
    case it treats), so its two sums are equal and the term is 0. Returns a ``(B, D)`` tensor, or
    with ``return_terms=True`` a dict ``{"eq8", "eq9", "eq10", "total"}``.
    """
    x = features
    _, sn = _sn_sets(x, labels, k, "skip", squared=True)
    b, dtype = x.shape[0], x.dtype
    used = sn.used.to(dtype)[:, None]
    a_k = _pair_matrix(sn.index, sn.member, b, dtype) * used  # A_K[i, j] = [j ∈ K_i], used anchors
    a_p = _pair_matrix(sn.index, sn.positive & sn.member, b, dtype) * used  # A_P[i, j] = [j ∈ P_i]
    a_n = a_k - a_p  # A_N[i, j] = [j ∈ N_i]
    delta = -float(sigma)

    def toward_neighbours(a: torch.Tensor) -> torch.Tensor:  # Σ_j A[i, j] (x_i - x_j)
        return a.sum(1, keepdim=True) * x - a @ x

    def toward_anchors(a: torch.Tensor) -> torch.Tensor:  # Σ_q A[q, i] (x_i - x_q)
        return toward_neighbours(a.t())

    # Eq. 8: 2δ( Σ_{s∈K_i}(x_i - x_s) - Σ_{p∈P_i}(x_i - x_p) )
    eq8 = 2 * delta * (toward_neighbours(a_k) - toward_neighbours(a_p))
    # Eq. 9, for the q with x_i ∈ P(x_q): the K-sum and the P-sum both reduce to the one term (x_i - x_q)
    eq9 = 2 * delta * (toward_anchors(a_p) - toward_anchors(a_p))
    # Eq. 10, for the q with x_i ∈ K(x_q) and x_i ∉ P(x_q): 2δ Σ (x_i - x_q)
    eq10 = 2 * delta * toward_anchors(a_n)
    total = eq8 + eq9 + (2 if repeated_term else 1) * eq10
    if return_terms:
        return {"eq8": eq8, "eq9": eq9, "eq10": eq10, "total": total}
    return total


@torch.no_grad()
def sn_separation_grad(
    features: torch.Tensor,
    labels: torch.Tensor,
    k: int,
    sigma: float,
    *,
    squared: bool = True,
    no_positive: str = "skip",
) -> torch.Tensor:
    """The correct ∂(Σ_i L_spr,i)/∂x for every row, with the softmax weights the appendix drops.

    With ``L_i = logsumexp_{s∈K_i}(-σD_is) - logsumexp_{p∈P_i}(-σD_ip)`` (Eq. 4),

        ∂L_i/∂D_ij = σ ( w^P_ij - w^K_ij ),   w^P_ij = e^{-σD_ij} / Σ_{p∈P_i} e^{-σD_ip}  (j ∈ P_i, else 0),
                                              w^K_ij = e^{-σD_ij} / Σ_{s∈K_i} e^{-σD_is}  (j ∈ K_i),

    and the chain rule through every D_ij (x_i as anchor *and* as someone's neighbour) is the
    Laplacian product of :func:`_grad_of_weighted_distances`. Equals autograd on
    ``SupportNeighborLoss(k, sigma, lam=0, squared=squared, no_positive=no_positive, reduction="sum")``.
    """
    x = features
    dist, sn = _sn_sets(x, labels, k, no_positive, squared)
    d_support = dist.gather(1, sn.index)
    logits = -float(sigma) * d_support
    neg_inf = torch.full_like(logits, float("-inf"))
    in_k = sn.member | sn.positive
    in_p = sn.positive & sn.member
    rows = sn.used[:, None]
    w_k = torch.where(rows & in_k, logits, neg_inf).softmax(1).nan_to_num(0.0)
    w_p = torch.where(rows & in_p, logits, neg_inf).softmax(1).nan_to_num(0.0)  # rows without P_i: NaN -> 0
    coef_support = float(sigma) * (w_p - w_k) * rows
    coef = torch.zeros_like(dist).scatter_add_(1, sn.index, coef_support)
    return _grad_of_weighted_distances(coef, x, squared=squared)


@torch.no_grad()
def sn_squeeze_grad_printed(features: torch.Tensor, labels: torch.Tensor, k: int, *, line: int = 1) -> torch.Tensor:
    """∂L_sqz/∂x_i **as printed** in paper 002's appendix, Eq. 11 (squared distance).

    ``line=1``:  2(x_i - x_f) - 2(x_i - x_c) + Σ_{j: x_i = P(x_j, f)} 2(x_i - x_j) + Σ_{j: x_i = P(x_j, c)} 2(x_i - x_j)
    ``line=2``:  2x_c - x_f + (the same two sums)   — the printed simplification, which loses a 2 on x_f

    x_f / x_c are x_i's farthest / closest positive neighbours, P(x_j, f) / P(x_j, c) those of x_j.
    The last sum has the wrong sign: x_i enters L_sqz,j as -D(x_j, x_i) when it is x_j's
    *closest* positive, so its contribution is -2(x_i - x_j). (The left-hand side is printed as
    ∂L_sqz/∂θ; it is ∂L_sqz/∂x_i.)
    """
    x = features
    far, close, b = _squeeze_partners(x, labels, k)
    if line not in (1, 2):
        raise ConfigError(f"Eq. 11 has two printed lines; line must be 1 or 2, got {line}.")
    x_f, x_c = far @ x, close @ x  # rows of unused anchors are 0 in `far`/`close`
    used = far.sum(1, keepdim=True)

    def toward_anchors(a: torch.Tensor) -> torch.Tensor:  # Σ_{j: partner(j) = i} (x_i - x_j)
        return a.sum(0)[:, None] * x - a.t() @ x

    own = 2 * (used * x - x_f) - 2 * (used * x - x_c) if line == 1 else 2 * x_c - x_f
    return own + 2 * toward_anchors(far) + 2 * toward_anchors(close)


@torch.no_grad()
def sn_squeeze_grad(
    features: torch.Tensor, labels: torch.Tensor, k: int, *, squared: bool = True, no_positive: str = "skip"
) -> torch.Tensor:
    """The correct ∂(Σ_i L_sqz,i)/∂x: ``L_sqz,i = D(x_i, x_f(i)) - D(x_i, x_c(i))`` (Eq. 5).

    Coefficient +1 on the pair (i, farthest positive neighbour), -1 on (i, closest), chained
    through both ends of each pair. Equals autograd on the squeeze part of
    :class:`reid.losses.support_neighbor.SupportNeighborLoss` (``reduction="sum"``) wherever the
    farthest / closest positive is unique.
    """
    x = features
    far, close, _ = _squeeze_partners(x, labels, k, no_positive=no_positive, squared=squared)
    return _grad_of_weighted_distances(far - close, x, squared=squared)


def _squeeze_partners(x: torch.Tensor, labels: torch.Tensor, k: int, *, no_positive: str = "skip", squared: bool = True):
    """One-hot ``(B, B)`` matrices of each used anchor's farthest and closest positive neighbour."""
    dist, sn = _sn_sets(x, labels, k, no_positive, squared)
    d_support = dist.gather(1, sn.index)
    pos = sn.positive & sn.member
    far_col = torch.where(pos, d_support, torch.full_like(d_support, float("-inf"))).argmax(1, keepdim=True)
    close_col = torch.where(pos, d_support, torch.full_like(d_support, float("inf"))).argmin(1, keepdim=True)
    used = sn.used.to(x.dtype)[:, None]
    b = x.shape[0]
    far = torch.zeros(b, b, dtype=x.dtype, device=x.device).scatter_(1, sn.index.gather(1, far_col), used)
    close = torch.zeros(b, b, dtype=x.dtype, device=x.device).scatter_(1, sn.index.gather(1, close_col), used)
    return far, close, b


# --- paper 000 (SMC + ECD): derived gradients (Appendix A lost its equations) ----------------
#
# Paper 000's Appendix A ("Loss derivatives") survives only as "The following equations hold
# true:" — the equations themselves were lost in extraction. Below are the derived closed forms
# w.r.t. the features (the centres are constants for back-propagation; they move by the
# centre-loss rule). All are gradients of the paper's Σ (reduction="sum"); pass
# reduction="mean" to divide by the batch size m, like the loss modules.
#
#   Centre loss   L_C   = ½ Σ_i ‖x_i − c_{y_i}‖²           ∂L_C/∂x_i   = x_i − c_{y_i}
#   SMC (Eq. 2)   L_SMC = ½ Σ_i ‖x_i − c^(SMC)_{y_i}‖²     ∂L_SMC/∂x_i = x_i − c^(SMC)_{y_i},  c^(SMC)_y = Σ_j c^(j)_y
#   ECD (Eq. 4)   L_ECD = ½ Σ_i A_i B_i with
#                 A_i = Σ_j ‖x_i − c^(j)_{y_i}‖²                                   (class range)
#                 B_i = Σ_{u ≠ y_i} w_iu Σ_k 1/(‖x_i − c^(k)_u‖² + ε)              (w_iu = n_u, or 1)
#                 ∂L_ECD/∂x_i = B_i (s_i x_i − c^(SMC)_{y_i})
#                               − A_i Σ_{u ≠ y_i} w_iu Σ_k (x_i − c^(k)_u) / (‖x_i − c^(k)_u‖² + ε)²
#
# Each x_i appears only in its own term (the centres are constants), so there are no cross
# terms. Note the first ECD term: the class range pulls x_i toward the *unweighted mean*
# c^(SMC)/s_i of its sub-centres, with strength B_i (large when other identities are close),
# while SMC pulls it toward the meta-centre c^(SMC) itself.


def _mean_or_sum(grad: torch.Tensor, reduction: str) -> torch.Tensor:
    check_reduction(reduction)
    return grad / grad.shape[0] if reduction == "mean" else grad


@torch.no_grad()
def center_loss_grad(features: torch.Tensor, labels: torch.Tensor, centers: torch.Tensor, *, reduction: str = "sum") -> torch.Tensor:
    """∂L_C/∂x_i = x_i − c_{y_i} (centre loss, Wen et al. 2016); ``centers`` is ``(num_classes, D)``."""
    return _mean_or_sum(features - centers.to(features.dtype)[labels], reduction)


@torch.no_grad()
def smc_grad(features: torch.Tensor, labels: torch.Tensor, centers: CameraCenters, *, reduction: str = "sum") -> torch.Tensor:
    """∂L_SMC/∂x_i = x_i − Σ_j c^(j)_{y_i} (paper 000, Eq. 2; derived, Appendix A lost)."""
    return _mean_or_sum(features - centers.meta_centers(labels, features.dtype), reduction)


@torch.no_grad()
def ecd_grad(
    features: torch.Tensor,
    labels: torch.Tensor,
    centers: CameraCenters,
    *,
    eps: float = 1e-6,
    distinct_identities: bool = False,
    reduction: str = "sum",
) -> torch.Tensor:
    """∂L_ECD/∂x_i in closed form (paper 000, Eq. 4 with the Fig. 6 reading; derived, Appendix A lost).

        ∂L_ECD/∂x_i = B_i · Σ_j (x_i − c^(j)_{y_i})  −  A_i · Σ_{u≠y_i} w_iu Σ_k (x_i − c^(k)_u) / (‖x_i − c^(k)_u‖² + ε)²

    with the same A_i, B_i, w_iu, ε as :func:`reid.losses.smc_ecd.ecd_terms` (shared through
    :func:`reid.losses.smc_ecd.ecd_parts`). Equals autograd on :class:`ECDLoss`.
    """
    p = ecd_parts(features, labels, centers, eps, distinct_identities)
    m, dim = features.shape
    denom = p.sq_dist + p.epsilon  # (m, U, K)
    b = (p.weight * (p.mask.unsqueeze(0) / denom).sum(dim=-1)).sum(dim=1)  # B_i
    own_sub, own_mask = p.sub[p.inverse], p.mask[p.inverse]  # (m, K, D), (m, K)
    pull = (own_mask.unsqueeze(-1) * (features.unsqueeze(1) - own_sub)).sum(dim=1)  # Σ_j (x_i − c^(j)_{y_i})
    q = (p.weight.unsqueeze(-1) * p.mask.unsqueeze(0) / denom.pow(2)).reshape(m, -1)  # w_iu·[seen]/(d²+ε)²
    # Σ_n q_in (x_i − c_n) from the differences themselves: q·x − q·c would cancel in float32
    # exactly where q is large (x_i next to a foreign sub-centre), as the distance expansion does.
    push = torch.einsum("in,ind->id", q, features.unsqueeze(1) - p.sub.reshape(1, -1, dim))
    return _mean_or_sum(b.unsqueeze(1) * pull - p.class_range.unsqueeze(1) * push, reduction)


# --- paper 001 (adaptive margin): Eq. 13–14 ----------------------------------------------------
#
# With R = Mc − y(Mτ − D) and D = ‖f_A − f_B‖² (Eq. 2), the paper prints, where R > 0,
#
#   ∂L/∂f_A = −y (Mτ − 2(f_A − f_B))          (Eq. 13)
#   ∂L/∂f_B = −y (Mτ + 2(f_A − f_B))          (Eq. 14)
#
# which adds the scalar Mτ to a vector. Differentiating the hinge with the margins held
# constant (as Algorithm 1 does: margins in step 5, gradients in step 6) gives
#
#   ∂L/∂f_A = y ∂D/∂f_A = 2y (f_A − f_B),     ∂L/∂f_B = −2y (f_A − f_B)
#
# so each printed formula is the correct gradient plus a spurious −y·Mτ on every coordinate.
# Both functions return per-pair gradients of Eq. 9's Σ (reduction="sum"; "mean" divides by
# the number of pairs), with the margins of Eq. 5–7 computed from the detached distances.


def _pair_margin_state(f_a, f_b, same, mu, gamma, anchors):
    y = check_pairs(f_a, f_b, same)
    distance = pair_sq_distance(f_a, f_b)
    margins, _ = adaptive_margins(distance, y, mu, gamma, anchors)
    active = (margins["Mc"] - y * (margins["Mtau"] - distance)) > 0  # R > 0
    m_tau = margins["Mtau"].reshape(-1, 1) if margins["Mtau"].dim() else margins["Mtau"]  # per pair or scalar
    return y.unsqueeze(1), m_tau, active.to(f_a.dtype).unsqueeze(1)


@torch.no_grad()
def adaptive_margin_grad_printed(
    f_a: torch.Tensor,
    f_b: torch.Tensor,
    same: torch.Tensor,
    *,
    mu: float = 8.0,
    gamma: float = 2.1,
    anchors: torch.Tensor | None = None,
    reduction: str = "sum",
) -> tuple[torch.Tensor, torch.Tensor]:
    """(∂L/∂f_A, ∂L/∂f_B) **as printed** in paper 001, Eq. 13–14 (scalar Mτ broadcast over the vector)."""
    y, m_tau, active = _pair_margin_state(f_a, f_b, same, mu, gamma, anchors)
    diff = f_a - f_b
    grad_a = -y * (m_tau - 2.0 * diff) * active  # Eq. 13, literally: Mτ − 2(f_A − f_B) broadcasts
    grad_b = -y * (m_tau + 2.0 * diff) * active  # Eq. 14, literally
    return _mean_or_sum(grad_a, reduction), _mean_or_sum(grad_b, reduction)


@torch.no_grad()
def adaptive_margin_grad(
    f_a: torch.Tensor,
    f_b: torch.Tensor,
    same: torch.Tensor,
    *,
    mu: float = 8.0,
    gamma: float = 2.1,
    anchors: torch.Tensor | None = None,
    reduction: str = "sum",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The correct (∂L/∂f_A, ∂L/∂f_B) of Eq. 9 with the margins held constant: ±2y(f_A − f_B) where R > 0.

    Equals autograd on :class:`AdaptiveMarginLoss` (default ``differentiate_margins=False``).
    """
    y, _, active = _pair_margin_state(f_a, f_b, same, mu, gamma, anchors)
    grad_a = 2.0 * y * (f_a - f_b) * active  # y · ∂D/∂f_A
    return _mean_or_sum(grad_a, reduction), _mean_or_sum(-grad_a, reduction)
