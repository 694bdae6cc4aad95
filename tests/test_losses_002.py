"""Paper 002: support neighbour loss, its printed gradients (Eq. 8–11), and the triplet baselines."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from reid.errors import ConfigError
from reid.losses import BatchAllTripletLoss, BatchHardTripletLoss, SupportNeighborLoss
from reid.losses import printed_gradients as pg
from reid.losses.support_neighbor import support_neighbors
from reid.metrics.distance import squared_euclidean


def col(*values: float) -> torch.Tensor:
    """1-D points as a (B, 1) float64 feature matrix: distances are |a - b|, easy to do by hand."""
    return torch.tensor(values, dtype=torch.float64)[:, None]


def pk_batch(p: int = 4, k: int = 4, dim: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(p).repeat_interleave(k)
    # identity centres plus noise: informative neighbourhoods, no ties
    features = torch.randn(p, dim, generator=g, dtype=torch.float64)[labels] + 0.7 * torch.randn(
        p * k, dim, generator=g, dtype=torch.float64
    )
    return features, labels


# --------------------------------------------------------------------------------------------
# Triplet baselines (Hermans et al.; paper 004 Eq. 4/5)
# --------------------------------------------------------------------------------------------

# Points 0, 1 (identity 0) and 3, 5 (identity 1), Euclidean distance, margin 0.3:
#   anchor 0: hardest pos 1, hardest neg min(3, 5) = 3 -> 0.3 + 1 - 3 = -1.7 -> 0
#   anchor 1: pos 1, neg min(2, 4) = 2            -> 0.3 + 1 - 2 = -0.7 -> 0
#   anchor 3: pos 2, neg min(3, 2) = 2            -> 0.3 + 2 - 2 =  0.3
#   anchor 5: pos 2, neg min(5, 4) = 4            -> 0.3 + 2 - 4 = -1.7 -> 0
HAND_X, HAND_Y = col(0, 1, 3, 5), torch.tensor([0, 0, 1, 1])
HAND_SLACKS = [-1.7, -0.7, 0.3, -1.7]


def test_batch_hard_hand_example():
    assert BatchHardTripletLoss(0.3, reduction="sum")(HAND_X, HAND_Y).item() == pytest.approx(0.3)
    loss = BatchHardTripletLoss(0.3)
    assert loss(HAND_X, HAND_Y).item() == pytest.approx(0.3 / 4)
    assert loss.last_stats["active_fraction"] == pytest.approx(0.25)
    soft = sum(math.log1p(math.exp(s)) for s in HAND_SLACKS)  # softplus of every slack
    assert BatchHardTripletLoss(0.3, soft=True, reduction="sum")(HAND_X, HAND_Y).item() == pytest.approx(soft)


def test_batch_hard_squared_and_normalized():
    # squared: anchor 3 -> 0.3 + 4 - 4 = 0.3; anchor 1 -> 0.3 + 1 - 4 < 0; others < 0 as well
    assert BatchHardTripletLoss(0.3, squared=True, reduction="sum")(HAND_X, HAND_Y).item() == pytest.approx(0.3)
    # normalised features live on the unit sphere: scaling the batch changes nothing
    x, y = pk_batch()
    loss = BatchHardTripletLoss(0.3, normalize=True)
    assert loss(3.0 * x, y).item() == pytest.approx(loss(x, y).item())


def test_batch_all_hand_example():
    # 8 valid triplets (a, p, n); only (3, 5, 1) is active: 0.3 + |3-5| - |3-1| = 0.3
    loss = BatchAllTripletLoss(0.3)
    assert loss(HAND_X, HAND_Y).item() == pytest.approx(0.3)  # mean over the 1 active triplet (BA≠0)
    assert loss.last_stats == {"triplets": 8.0, "active_triplets": 1.0}
    assert BatchAllTripletLoss(0.3, average="all")(HAND_X, HAND_Y).item() == pytest.approx(0.3 / 8)
    assert BatchAllTripletLoss(0.3, reduction="sum")(HAND_X, HAND_Y).item() == pytest.approx(0.3)


@pytest.mark.parametrize(
    "loss",
    [
        BatchHardTripletLoss(0.3),
        BatchHardTripletLoss(0.3, soft=True),
        BatchHardTripletLoss(0.3, normalize=True),
        BatchHardTripletLoss(0.3, squared=True),
        BatchAllTripletLoss(0.3),
        BatchAllTripletLoss(0.3, soft=True, average="all"),
    ],
    ids=repr,
)
def test_triplet_gradcheck(loss):
    x, y = pk_batch(3, 3, 4)
    assert torch.autograd.gradcheck(lambda f: loss(f, y), (x.requires_grad_(),))


@pytest.mark.parametrize("cls", [BatchHardTripletLoss, BatchAllTripletLoss])
def test_triplet_degenerate_batches(cls):
    loss = cls(0.3)
    # one identity only: no negative, no triplet -> exactly 0, finite (zero) gradient
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    value = loss(x, torch.zeros(4, dtype=torch.long))
    value.backward()
    assert value.item() == 0.0 and torch.all(x.grad == 0)
    # all singletons: no positive
    assert loss(x.detach(), torch.arange(4)).item() == 0.0
    # coincident and zero-norm features: finite loss and gradient
    for f in (torch.ones(6, 3, dtype=torch.float64), torch.zeros(6, 3, dtype=torch.float64)):
        f.requires_grad_()
        value = loss(f, torch.tensor([0, 0, 1, 1, 2, 2]))
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(f.grad).all()
        assert value.item() == pytest.approx(0.3)  # every slack is m + 0 - 0


def test_triplet_bad_input():
    with pytest.raises(ConfigError):
        BatchHardTripletLoss(-1.0)
    with pytest.raises(ConfigError):
        BatchAllTripletLoss(average="median")
    with pytest.raises(ConfigError):
        BatchHardTripletLoss()(torch.zeros(4, 2), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ConfigError):
        BatchHardTripletLoss(reduction="avg")


# --------------------------------------------------------------------------------------------
# Support neighbour loss, Eq. 3–6
# --------------------------------------------------------------------------------------------

# Points 0, 1 (identity A) and 2.5, 10 (identity B), K = 2, σ = 1, Euclidean:
#   anchor 0:    K = {1 (d=1, A), 2.5 (d=2.5, B)}  -> -log(e^-1 / (e^-1 + e^-2.5)) = log(1 + e^-1.5)
#   anchor 1:    K = {0 (d=1, A), 2.5 (d=1.5, B)}  -> log(1 + e^-0.5)
#   anchor 2.5:  K = {1 (d=1.5, A), 0 (d=2.5, A)}  -> no positive among the K: the rule fires
#   anchor 10:   K = {2.5 (d=7.5, B), 1 (d=9, A)}  -> log(1 + e^-1.5)
# Every used anchor has one positive neighbour, so each squeeze term is max - min = 0.
SN_X, SN_Y = col(0, 1, 2.5, 10), torch.tensor([0, 0, 1, 1])
SN_SUM = 2 * math.log1p(math.exp(-1.5)) + math.log1p(math.exp(-0.5))


def test_support_neighbor_hand_example_skip_rule():
    loss = SupportNeighborLoss(k=2, sigma=1.0, lam=0.1, reduction="sum")
    assert loss(SN_X, SN_Y).item() == pytest.approx(SN_SUM)
    assert loss.last_stats["no_positive_in_k"] == 1 and loss.last_stats["skipped"] == 1
    assert loss.last_stats["squeeze"] == 0.0
    mean = SupportNeighborLoss(k=2, sigma=1.0)
    assert mean(SN_X, SN_Y).item() == pytest.approx(SN_SUM / 3)  # 3 anchors in play


def test_support_neighbor_hand_example_nearest_rule():
    # anchor 2.5 gets its nearest positive 10 (d = 7.5) added: K = {1.5, 2.5, 7.5}, P = {7.5}
    #   -log(e^-7.5 / (e^-1.5 + e^-2.5 + e^-7.5)) = log(1 + e^6 + e^5)
    loss = SupportNeighborLoss(k=2, sigma=1.0, no_positive="nearest", reduction="sum")
    expected = SN_SUM + math.log(1 + math.exp(6) + math.exp(5))
    assert loss(SN_X, SN_Y).item() == pytest.approx(expected)
    assert loss.last_stats["anchors_used"] == 4 and loss.last_stats["no_positive_in_k"] == 1


# Points 0, 1, 3 (identity A) and 20 (identity B, alone), K = 3:
#   anchor 0: positives at 1, 3   -> squeeze 3 - 1 = 2
#   anchor 1: positives at 1, 2   -> 2 - 1 = 1
#   anchor 3: positives at 2, 3   -> 3 - 2 = 1
#   anchor 20: no positive in the batch at all -> skipped
# Separation: the negative sits ≥ 17 further out than the farthest positive, so with σ = 50 every
# term is log(1 + ~e^-850) = 0 — and plain exponentials (e^-50 ... e^-1000) underflow in float32.
SQ_X, SQ_Y = col(0, 1, 3, 20), torch.tensor([0, 0, 0, 1])


def test_support_neighbor_squeeze_and_underflow():
    loss = SupportNeighborLoss(k=3, sigma=50.0, lam=1.0, reduction="sum")
    assert loss(SQ_X, SQ_Y).item() == pytest.approx(4.0)
    assert loss.last_stats["no_positive_in_batch"] == 1 and loss.last_stats["separation"] == pytest.approx(0.0)
    # float32, σ = 30 on far-apart raw features: e^{-σD} is 0 for every neighbour
    x = torch.tensor([[0.0], [5.0], [9.0], [14.0]], requires_grad=True)
    y = torch.tensor([0, 1, 0, 1])
    naive = torch.exp(-30.0 * torch.tensor(9.0)) / (torch.exp(-30.0 * torch.tensor(5.0)) + torch.exp(-30.0 * torch.tensor(9.0)))
    assert torch.isnan(naive)  # Eq. 4 with plain exponentials: 0 / 0
    value = SupportNeighborLoss(k=2, sigma=30.0)(x, y)
    value.backward()
    # anchor 0: K = {5 (neg), 9 (pos)}: log(1 + e^{-30(5-9)}) = 120 + log(1 + e^-120) ≈ 120
    assert torch.isfinite(value) and torch.isfinite(x.grad).all()
    assert value.item() == pytest.approx(120.0, rel=1e-5)


def test_support_neighbor_squared_distance_flag():
    # squared distances on the first hand example: anchor 0: K = {1 (1), 2.5 (6.25)} -> log(1 + e^-5.25)
    loss = SupportNeighborLoss(k=2, sigma=1.0, squared=True, reduction="sum")
    expected = math.log1p(math.exp(-5.25)) + math.log1p(math.exp(-1.25)) + math.log1p(math.exp(-(81 - 56.25)))
    assert loss(SN_X, SN_Y).item() == pytest.approx(expected)


@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("rule", ["skip", "nearest"])
def test_support_neighbor_gradcheck(squared, rule):
    x, y = pk_batch(3, 3, 4, seed=1)
    loss = SupportNeighborLoss(k=3, sigma=2.0, lam=0.1, squared=squared, no_positive=rule)
    assert torch.autograd.gradcheck(lambda f: loss(f, y), (x.requires_grad_(),))


def test_support_neighbor_anchor_is_never_its_own_neighbour():
    # two far-apart clusters of 2: with K = 1 each anchor's only neighbour is its partner (a positive)
    x, y = col(0, 0.1, 50, 50.1), torch.tensor([0, 0, 1, 1])
    loss = SupportNeighborLoss(k=1, sigma=30.0, lam=1.0)
    assert loss(x, y).item() == pytest.approx(0.0)
    assert loss.last_stats["anchors_used"] == 4


def test_support_neighbor_degenerate_batches():
    loss = SupportNeighborLoss(k=3, sigma=30.0, lam=0.1)
    # one identity only: every neighbour is positive, separation is log 1 = 0; finite
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    value = loss(x, torch.zeros(5, dtype=torch.long))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all()
    assert loss.last_stats["separation"] == pytest.approx(0.0)
    # no positive anywhere (all singletons): every anchor skipped, loss exactly 0, zero gradient
    x.grad = None
    value = loss(x, torch.arange(5))
    value.backward()
    assert value.item() == 0.0 and torch.all(x.grad == 0) and loss.last_stats["skipped"] == 5
    # coincident / zero-norm features: finite loss and gradient
    for f in (torch.ones(6, 3), torch.zeros(6, 3)):
        f.requires_grad_()
        value = loss(f, torch.tensor([0, 0, 1, 1, 2, 2]))
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(f.grad).all()


def test_support_neighbor_bad_input():
    with pytest.raises(ConfigError, match="batch"):
        SupportNeighborLoss(k=8, sigma=30.0)(torch.randn(8, 2), torch.zeros(8, dtype=torch.long))
    with pytest.raises(ConfigError):
        SupportNeighborLoss(k=3, sigma=0.0)
    with pytest.raises(ConfigError):
        SupportNeighborLoss(k=3, sigma=30.0, no_positive="drop")


@given(seed=st.integers(0, 10_000), scale=st.floats(0.05, 20.0))
def test_support_neighbor_normalize_fixes_the_scale(seed, scale):
    x, y = pk_batch(4, 4, 6, seed=seed)
    # Raw features (Eq. 3 as printed): scaling the batch by c is the same as scaling σ by c, so the
    # network can pick its own effective σ and "σ > 30" has no fixed meaning ...
    raw = SupportNeighborLoss(k=5, sigma=3.0, lam=0.0)
    rescaled_sigma = SupportNeighborLoss(k=5, sigma=3.0 * scale, lam=0.0)
    torch.testing.assert_close(raw(scale * x, y), rescaled_sigma(x, y))
    # ... on L2-normalised features (the recipe's reading) the loss, squeeze included, ignores it.
    unit = SupportNeighborLoss(k=5, sigma=30.0, lam=0.1, normalize=True)
    torch.testing.assert_close(unit(scale * x, y), unit(x, y))
    torch.testing.assert_close(unit(x, y), SupportNeighborLoss(k=5, sigma=30.0, lam=0.1)(torch.nn.functional.normalize(x, dim=1), y))


def test_support_neighbor_normalize_gradcheck():
    x, y = pk_batch(3, 3, 4, seed=2)
    loss = SupportNeighborLoss(k=3, sigma=30.0, lam=0.1, normalize=True)
    assert torch.autograd.gradcheck(lambda f: loss(f, y), (x.requires_grad_(),))


def test_metric_objective_builds_the_recipes_losses():
    from reid.engine.objectives import DataInfo, build_objective
    from reid.recipes import load_recipe

    def built(scale, **overrides):
        cfg = load_recipe("support_neighbor", scale, overrides)
        objective = build_objective(cfg, DataInfo(num_classes=10, num_cameras=2))
        objective.setup(None)
        return objective.loss

    sn = built("full")
    assert isinstance(sn, SupportNeighborLoss) and sn.normalize and not sn.squared and sn.lam == 0.1
    # the TriNet baseline: batch hard, soft margin, raw features
    bh = built("full", **{"loss.name": "batch_hard"})
    assert isinstance(bh, BatchHardTripletLoss) and bh.soft and bh.margin == 0.0 and not bh.normalize
    assert not built("smoke", **{"loss.normalize": False}).normalize
    for scale in ("smoke", "study", "full"):  # every scale trains in the paper's sigma range
        assert built(scale).sigma > 30


# --------------------------------------------------------------------------------------------
# Table 1 and the text around it (transcription checks behind the errata)
# --------------------------------------------------------------------------------------------


def test_table1_flags_identical_sq_and_mq_map():
    from reid.papers import load_table

    table = load_table("002", "Table 1")
    sq, mq = table.columns.index("SQ mAP"), table.columns.index("MQ mAP")
    copies = [name for name, row in table.rows.items() if row[mq] is not None and row[sq] == row[mq]]
    assert sorted(copies) == ["LSRO [53] (ICCV17)", "SSM [2] (CVPR17)"]
    notes = " ".join(table.notes)
    assert "likely copy errors" in notes and all(name.split(" [")[0] in notes for name in copies)


def test_table1_gains_over_csa_and_dml_are_map_only():
    from reid.papers import load_table

    rows = load_table("002", "Table 1").rows
    ours = rows["Ours"]
    gains = {m: [round(ours[c] - rows[m][c], 2) for c in (0, 1)] for m in ("CSA [55] (CVPR18)", "DML [44] (CVPR18)")}
    # "about 5% performance gains": true of SQ mAP, not of rank-1
    assert gains == {"CSA [55] (CVPR18)": [4.71, 0.15], "DML [44] (CVPR18)": [4.6, 0.54]}
    assert round(ours[2] - rows["DML [44] (CVPR18)"][2], 2) == 3.12  # "more than 3%" multi-query: mAP


# --------------------------------------------------------------------------------------------
# Gradients: printed (appendix Eq. 8–11) vs analytic vs autograd
# --------------------------------------------------------------------------------------------


def autograd_grad(loss: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_()
    loss(x, y).backward()
    return x.grad


@pytest.mark.parametrize("squared", [True, False])
@pytest.mark.parametrize("rule", ["skip", "nearest"])
def test_analytic_gradients_match_autograd(squared, rule):
    x, y = pk_batch(seed=3)
    sep = SupportNeighborLoss(k=5, sigma=3.0, lam=0.0, squared=squared, no_positive=rule, reduction="sum")
    g_sep = pg.sn_separation_grad(x, y, 5, 3.0, squared=squared, no_positive=rule)
    torch.testing.assert_close(g_sep, autograd_grad(sep, x, y))
    full = SupportNeighborLoss(k=5, sigma=3.0, lam=1.0, squared=squared, no_positive=rule, reduction="sum")
    g_sqz = pg.sn_squeeze_grad(x, y, 5, squared=squared, no_positive=rule)
    torch.testing.assert_close(g_sep + g_sqz, autograd_grad(full, x, y))


# Points 0, 1 (A) and 3 (B), K = 2, σ = 1, squared distance (the appendix's D):
#   anchor 0: P = {1}, N = {3};  anchor 1: P = {0}, N = {3};  anchor 3: no positive -> skipped.
# Printed, δ = -σ = -1:
#   Eq. 8  i=0: 2δ((0-1) + (0-3) - (0-1)) = 2·(-1)·(-3) = 6;   i=1: 2δ(1-3) = 4
#   Eq. 9  0 for everyone (its two sums are the same vector)
#   Eq. 10 i=3 is a negative neighbour of anchors 0 and 1: 2δ((3-0) + (3-1)) = -10
# Correct: a = e^-8/(1+e^-8) (anchor 0's softmax mass on its negative, D = 9 vs 1),
#          b = e^-3/(1+e^-3) (anchor 1's, D = 4 vs 1):
#   g_0 = 4a - 2b,  g_1 = 2a + 6b,  g_3 = -6a - 4b  (sum 0: translation invariance)
def test_printed_separation_gradient_hand_example():
    x, y = col(0, 1, 3), torch.tensor([0, 0, 1])
    terms = pg.sn_separation_grad_printed(x, y, 2, 1.0, return_terms=True)
    torch.testing.assert_close(terms["eq8"][:, 0], torch.tensor([6.0, 4.0, 0.0], dtype=torch.float64))
    assert torch.all(terms["eq9"] == 0)
    torch.testing.assert_close(terms["total"][:, 0], torch.tensor([6.0, 4.0, -10.0], dtype=torch.float64))
    a, b = math.exp(-8) / (1 + math.exp(-8)), math.exp(-3) / (1 + math.exp(-3))
    correct = torch.tensor([4 * a - 2 * b, 2 * a + 6 * b, -6 * a - 4 * b], dtype=torch.float64)
    torch.testing.assert_close(pg.sn_separation_grad(x, y, 2, 1.0)[:, 0], correct)
    torch.testing.assert_close(autograd_grad(SupportNeighborLoss(2, 1.0, 0.0, squared=True, reduction="sum"), x, y)[:, 0], correct)
    # the repeated term of the summary line, taken literally, counts Eq. 10 twice
    literal = pg.sn_separation_grad_printed(x, y, 2, 1.0, repeated_term=True)
    torch.testing.assert_close(literal[:, 0], torch.tensor([6.0, 4.0, -20.0], dtype=torch.float64))


def test_printed_separation_gradient_is_a_pure_push():
    # With the softmax weights dropped, the printed gradient is that of -σ Σ_i Σ_{n∈N_i} D(x_i, x_n).
    x, y = pk_batch(seed=4)
    k, sigma = 6, 2.0
    printed = pg.sn_separation_grad_printed(x, y, k, sigma)
    xx = x.clone().requires_grad_()
    dist = squared_euclidean(xx)
    sn = support_neighbors(dist, y, k)
    negatives = sn.member & ~sn.positive & sn.used[:, None]
    (-sigma * (dist.gather(1, sn.index) * negatives).sum()).backward()
    torch.testing.assert_close(printed, xx.grad)
    # ... and it is not the gradient of the loss
    assert (printed - pg.sn_separation_grad(x, y, k, sigma)).abs().max() > 1.0


# Points 0, 1, 3 (A), 20 (B, alone), K = 3, squared distance:
#   farthest / closest positive: anchor 0 -> 3 / 1, anchor 1 -> 3 / 0, anchor 3 -> 0 / 1
#   correct: L = Σ D(i, f_i) - D(i, c_i); g_0 = -6 + 2 + 2 - 6 = -8, g_1 = -4, g_3 = 12
#   printed Eq. 11, line 1: g_0 = 2(0-3) - 2(0-1) + 2(0-3) + 2(0-1) = -12
#                           g_1 = 2(1-3) - 2(1-0) + [2(1-0) + 2(1-3)] = -8,   g_3 = 12
#   printed line 2 (2x_c - x_f + sums): g_0 = 2·1 - 3 - 8 = -9, g_1 = 0 - 3 - 2 = -5, g_3 = 2 + 10 = 12
def test_printed_squeeze_gradient_hand_example():
    correct = torch.tensor([-8.0, -4.0, 12.0, 0.0], dtype=torch.float64)
    torch.testing.assert_close(pg.sn_squeeze_grad(SQ_X, SQ_Y, 3)[:, 0], correct)
    full = SupportNeighborLoss(3, 50.0, lam=1.0, squared=True, reduction="sum")
    torch.testing.assert_close(autograd_grad(full, SQ_X, SQ_Y)[:, 0], correct, atol=1e-9, rtol=0)
    line1 = pg.sn_squeeze_grad_printed(SQ_X, SQ_Y, 3)
    torch.testing.assert_close(line1[:, 0], torch.tensor([-12.0, -8.0, 12.0, 0.0], dtype=torch.float64))
    # the wrong sign on the closest-positive sum breaks translation invariance: rows no longer sum to 0
    assert line1.sum().item() == pytest.approx(-8.0)
    line2 = pg.sn_squeeze_grad_printed(SQ_X, SQ_Y, 3, line=2)
    torch.testing.assert_close(line2[:, 0], torch.tensor([-9.0, -5.0, 12.0, 0.0], dtype=torch.float64))
    with pytest.raises(ConfigError):
        pg.sn_squeeze_grad_printed(SQ_X, SQ_Y, 3, line=3)


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------

LOSSES = {
    "bh": BatchHardTripletLoss(0.3),
    "bh_soft": BatchHardTripletLoss(0.3, soft=True),
    "ba": BatchAllTripletLoss(0.3),
    "sn": SupportNeighborLoss(k=4, sigma=5.0, lam=0.1),
    "sn_nearest_sq": SupportNeighborLoss(k=3, sigma=1.0, squared=True, no_positive="nearest"),
}


@given(name=st.sampled_from(sorted(LOSSES)), seed=st.integers(0, 10_000), data=st.data())
def test_permutation_invariance(name, seed, data):
    x, y = pk_batch(3, 3, 5, seed=seed)
    perm = torch.tensor(data.draw(st.permutations(range(len(y)))))
    loss = LOSSES[name]
    torch.testing.assert_close(loss(x[perm], y[perm]), loss(x, y))


@given(
    name=st.sampled_from(sorted(LOSSES)),
    seed=st.integers(0, 10_000),
    shift=st.lists(st.floats(-10, 10), min_size=5, max_size=5),
)
def test_translation_invariance(name, seed, shift):
    x, y = pk_batch(3, 3, 5, seed=seed)
    loss = LOSSES[name]
    shifted = x + torch.tensor(shift, dtype=x.dtype)
    torch.testing.assert_close(loss(shifted, y), loss(x, y), rtol=1e-6, atol=1e-6)


@given(seed=st.integers(0, 10_000), k=st.integers(1, 8))
def test_printed_and_correct_gradients_sum_to_zero(seed, k):
    # every term depends on differences x_i - x_j only, so all gradients sum to zero over the batch
    x, y = pk_batch(3, 3, 4, seed=seed)
    for g in (
        pg.sn_separation_grad_printed(x, y, k, 2.0),
        pg.sn_separation_grad(x, y, k, 2.0),
        pg.sn_squeeze_grad(x, y, k),
    ):
        torch.testing.assert_close(g.sum(0), torch.zeros(4, dtype=torch.float64), atol=1e-8, rtol=0)
