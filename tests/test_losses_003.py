"""Paper 003: view discriminator (Eq. 1), view confusion (Eq. 3), similarity discriminator (Eq. 2, 5, 6)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from reid.errors import ConfigError
from reid.losses import SimilarityDiscriminatorLoss, ViewConfusionLoss, ViewDiscriminatorLoss
from reid.losses.view_adaptation import adaptive_weights
from reid.metrics.distance import euclidean

LOG2, LOG3 = math.log(2), math.log(3)


def f64(*values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


# --------------------------------------------------------------------------------------------
# Eq. 1 and Eq. 3
# --------------------------------------------------------------------------------------------


def test_view_discriminator_hand_example():
    loss = ViewDiscriminatorLoss()
    # logit 0: Dd = 1/2 on both views -> -log 1/2 - log 1/2 = 2 log 2
    assert loss(f64(0.0), f64(0.0)).item() == pytest.approx(2 * LOG2)
    # logit log 3: Dd = 3/4. Source: -log 3/4; target: -log(1 - 3/4) = log 4
    assert loss(f64(LOG3), f64(LOG3)).item() == pytest.approx(math.log(4 / 3) + math.log(4))
    # two-way logits [log 3, 0] give the same Dd = 3/4 (softmax column 0 = source)
    two_way = torch.tensor([[LOG3, 0.0]], dtype=torch.float64)
    assert loss(two_way, two_way).item() == pytest.approx(math.log(4 / 3) + math.log(4))
    # each E is a batch mean: two source samples at Dd = 3/4 and 1/2 -> (log 4/3 + log 2)/2
    assert loss(f64(LOG3, 0.0), f64(0.0)).item() == pytest.approx((math.log(4 / 3) + LOG2) / 2 + LOG2)
    assert ViewDiscriminatorLoss("sum")(f64(LOG3, 0.0), f64(0.0)).item() == pytest.approx(math.log(4 / 3) + 2 * LOG2)


def test_view_confusion_hand_example():
    loss = ViewConfusionLoss()
    # source Dd = 3/4: -(½ log 3/4 + ½ log 1/4); target Dd = 1/2: log 2
    expected = -(0.5 * math.log(0.75) + 0.5 * math.log(0.25)) + LOG2
    assert loss(f64(LOG3), f64(0.0)).item() == pytest.approx(expected)
    # minimum 2 log 2 exactly when Dd = 1/2 everywhere
    assert loss(torch.zeros(3), torch.zeros(5)).item() == pytest.approx(2 * LOG2)


@settings(max_examples=20)
@given(st.lists(st.floats(-30, 30), min_size=1, max_size=6), st.lists(st.floats(-30, 30), min_size=1, max_size=6))
def test_view_confusion_is_bounded_below_by_uniform(zs, zt):
    value = ViewConfusionLoss()(f64(*zs), f64(*zt))
    assert torch.isfinite(value) and value.item() >= 2 * LOG2 - 1e-12


@pytest.mark.parametrize("cls", [ViewDiscriminatorLoss, ViewConfusionLoss])
@pytest.mark.parametrize("shape", [(5,), (5, 1), (5, 2)])
def test_view_losses_gradcheck_and_extremes(cls, shape):
    g = torch.Generator().manual_seed(0)
    zs = torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)
    zt = torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: cls()(a, b), (zs, zt))
    # saturated discriminator (|logit| = 1e4): finite, no log 0
    big = torch.full(shape, 1e4, dtype=torch.float64, requires_grad=True)
    value = cls()(big, -big)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(big.grad).all()


def test_view_losses_bad_shape():
    with pytest.raises(ConfigError, match="source_logits"):
        ViewDiscriminatorLoss()(torch.zeros(4, 3), torch.zeros(4))
    with pytest.raises(ConfigError):
        ViewConfusionLoss(reduction="none")


# --------------------------------------------------------------------------------------------
# Eq. 2 (read): BCE pair term + γ contrastive
# --------------------------------------------------------------------------------------------

# Three pairs, every Ds logit 0 (Ds = 1/2, pair term log 2 each), m = 2, γ = 2.5:
#   positive, d = 1:    contrastive d² = 1
#   negative, d = 0.5:  max(0, 2 - 0.5)² = 2.25
#   negative, d = 3:    max(0, 2 - 3)² = 0
# Σ = 3 log 2 + 2.5·(1 + 2.25) = 3 log 2 + 8.125
PAIR_D, PAIR_SAME = f64(1.0, 0.5, 3.0), torch.tensor([True, False, False])


def test_similarity_eq2_hand_example():
    logits = torch.zeros(3, dtype=torch.float64)
    total = 3 * LOG2 + 8.125
    assert SimilarityDiscriminatorLoss(reduction="sum")(logits, PAIR_D, PAIR_SAME).item() == pytest.approx(total)
    loss = SimilarityDiscriminatorLoss()
    assert loss(logits, PAIR_D, PAIR_SAME).item() == pytest.approx(total / 3)
    assert loss.last_stats["contrastive"] == pytest.approx(3.25 / 3)
    # the literal pair term: only the positive pair's -log Ds
    literal = SimilarityDiscriminatorLoss(pair_term="positive_only", reduction="sum")
    assert literal(logits, PAIR_D, PAIR_SAME).item() == pytest.approx(LOG2 + 8.125)
    # integer 0/1 labels are accepted
    assert loss(logits, PAIR_D, PAIR_SAME.long()).item() == pytest.approx(total / 3)


def test_similarity_eq2_sign_pulls_positives_and_pushes_negatives():
    # the read +γ term: descending the loss shrinks positive distances, grows close negative ones
    d = f64(1.0, 0.5).requires_grad_()
    SimilarityDiscriminatorLoss()(torch.zeros(2, dtype=torch.float64), d, torch.tensor([True, False])).backward()
    assert d.grad[0] > 0 and d.grad[1] < 0


# Adaptive (Eq. 5 read, Eq. 6 normalised), one anchor, logits 0, m = 2, γ = 2.5:
#   positives d = 1, 2:    w_p = softmax(1, 2) = (1, e)/(1 + e)
#   negatives d = 0.5, 1.5: w_n = softmax(-0.5, -1.5) = (1, e^-1)/(1 + e^-1)
#   per-anchor hinge (default): w_p1·1² + w_p2·2² + (2 - (w_n1·0.5 + w_n2·1.5))²
#   per-pair hinge (printed):   w_p1·1² + w_p2·2² + (2 - w_n1·0.5)² + (2 - w_n2·1.5)²
ADA_D = f64(1.0, 2.0, 0.5, 1.5)[None, :]
ADA_SAME = torch.tensor([[True, True, False, False]])


def test_similarity_adaptive_hand_example():
    e = math.e
    w_p = (1 / (1 + e), e / (1 + e))
    w_n = (1 / (1 + 1 / e), (1 / e) / (1 + 1 / e))
    positive = w_p[0] * 1 + w_p[1] * 4
    anchor = positive + (2 - (w_n[0] * 0.5 + w_n[1] * 1.5)) ** 2
    pair = positive + (2 - w_n[0] * 0.5) ** 2 + (2 - w_n[1] * 1.5) ** 2
    logits = torch.zeros_like(ADA_D)
    default = SimilarityDiscriminatorLoss(adaptive=True, reduction="sum")
    assert default.negative_hinge == "anchor"
    assert default(logits, ADA_D, ADA_SAME).item() == pytest.approx(4 * LOG2 + 2.5 * anchor)
    printed = SimilarityDiscriminatorLoss(adaptive=True, negative_hinge="pair", reduction="sum")
    assert printed(logits, ADA_D, ADA_SAME).item() == pytest.approx(4 * LOG2 + 2.5 * pair)
    # mean: pair term over the 4 pairs; contrastive over the 1 anchor (per-anchor) or the 4 pairs (per-pair)
    mean = SimilarityDiscriminatorLoss(adaptive=True)
    assert mean(logits, ADA_D, ADA_SAME).item() == pytest.approx(LOG2 + 2.5 * anchor)
    assert mean.last_stats["active_negative_hinges"] == 1.0
    assert SimilarityDiscriminatorLoss(adaptive=True, negative_hinge="pair")(logits, ADA_D, ADA_SAME).item() == (
        pytest.approx(LOG2 + 2.5 * pair / 4)
    )
    wp, wn = adaptive_weights(ADA_D, ADA_SAME)
    torch.testing.assert_close(wp[0], f64(w_p[0], w_p[1], 0, 0))
    torch.testing.assert_close(wn[0], f64(0, 0, w_n[0], w_n[1]))


def test_per_anchor_hinge_is_satisfied_beyond_the_margin():
    # every negative at d = 3 > m = 2: the per-anchor hinge is met (no loss, no gradient on the
    # negatives); the printed per-pair placement still charges (2 - 3/3)² = 1 per negative.
    d = f64(0.5, 3.0, 3.0, 3.0)[None, :].requires_grad_()
    same = torch.tensor([[True, False, False, False]])
    logits = torch.zeros(1, 4, dtype=torch.float64)
    loss = SimilarityDiscriminatorLoss(adaptive=True, reduction="sum")
    value = loss(logits, d, same)
    value.backward()
    assert value.item() == pytest.approx(4 * LOG2 + 2.5 * 0.25)
    assert torch.all(d.grad[0, 1:] == 0) and loss.last_stats["active_negative_hinges"] == 0.0
    printed = SimilarityDiscriminatorLoss(adaptive=True, negative_hinge="pair", reduction="sum")
    assert printed(logits, d.detach(), same).item() == pytest.approx(4 * LOG2 + 2.5 * (0.25 + 3 * 1.0))
    assert printed.last_stats["active_negative_hinges"] == 1.0


@pytest.mark.parametrize("std", [0.05, 0.5, 1.0])
def test_default_reading_never_pulls_negatives_on_the_full_recipe_batch(std):
    # the full recipe's SP batch: 32 identities x 4 images = 64 probe x 64 gallery features, 512-d
    from reid.toys.view_adaptation import census_batches

    ((d, same),) = census_batches(stds=(std,)).values()
    grads = {}
    for hinge, detach in (("anchor", True), ("pair", False)):  # the default; the former default
        dd = d.clone().requires_grad_()
        loss = SimilarityDiscriminatorLoss(adaptive=True, negative_hinge=hinge, detach_weights=detach)
        loss(torch.zeros_like(d), dd, same).backward()
        grads[hinge] = dd.grad[~same]
    assert torch.all(grads["anchor"] <= 0)  # gradient descent never shrinks a negative distance
    if std >= 0.5:  # the printed placement pulls most negatives together at this feature scale
        assert (grads["pair"] > 0).double().mean() > 0.5


def test_frozen_weights_never_pull_a_far_negative_in():
    # one anchor, negatives at 0.5, 0.6 and 3.0: the soft-min mean D ≈ 0.7 < m, so the hinge is
    # active. Differentiated through the weights, the far negative (3.0 > 1 + D) is pulled *in*:
    # that raises its weight and so D. With the weights frozen (the default) every negative is pushed.
    d = f64(0.2, 0.5, 0.6, 3.0)[None, :]
    same = torch.tensor([[True, False, False, False]])
    logits = torch.zeros(1, 4, dtype=torch.float64)
    grads = {}
    for detach in (True, False):
        dd = d.clone().requires_grad_()
        SimilarityDiscriminatorLoss(adaptive=True, detach_weights=detach)(logits, dd, same).backward()
        grads[detach] = dd.grad[0, 1:]
    assert SimilarityDiscriminatorLoss(adaptive=True).detach_weights  # frozen is the default
    assert torch.all(grads[True] < 0)
    assert grads[False][2] > 0 and torch.all(grads[False][:2] < 0)


@pytest.mark.parametrize("hinge", ["anchor", "pair"])
@pytest.mark.parametrize("detach", [False, True])
def test_closed_form_distance_gradients_match_autograd(hinge, detach):
    from reid.toys.view_adaptation import similarity_grads

    g = torch.Generator().manual_seed(5)
    d = (torch.rand(5, 7, generator=g, dtype=torch.float64) * 3).requires_grad_()
    logits = torch.randn(5, 7, generator=g, dtype=torch.float64, requires_grad=True)
    same = torch.rand(5, 7, generator=g) < 0.4
    same[0] = False  # an anchor without positives
    same[1] = True  # an anchor without negatives
    loss = SimilarityDiscriminatorLoss(adaptive=True, negative_hinge=hinge, detach_weights=detach)
    auto = torch.autograd.grad(loss(logits, d, same), (logits, d))
    mine = similarity_grads(logits.detach(), d.detach(), same, adaptive=True, negative_hinge=hinge, detach_weights=detach)
    for a, b in zip(auto, mine):
        torch.testing.assert_close(a, b)


def test_adaptive_weights_printed_softmin_is_not_normalised():
    g = torch.Generator().manual_seed(1)
    d = torch.rand(5, 7, generator=g, dtype=torch.float64) * 3
    same = torch.rand(5, 7, generator=g) < 0.4
    same[:, 0], same[:, 1] = True, False  # every row has both kinds
    wp, wn = adaptive_weights(d, same)
    torch.testing.assert_close(wp.sum(1), torch.ones(5, dtype=torch.float64))
    torch.testing.assert_close(wn.sum(1), torch.ones(5, dtype=torch.float64))
    _, wn_printed = adaptive_weights(d, same, printed=True)
    # e^{-d} / Σ e^{+d}: with d > 0 the row sums stay below 1
    assert torch.all(wn_printed.sum(1) < 1)
    # the hardest negative (smallest d) gets the largest normalised weight
    masked = torch.where(~same, d, torch.full_like(d, float("inf")))
    assert torch.equal(wn.argmax(1), masked.argmin(1))


@pytest.mark.parametrize("adaptive, hinge", [(False, "anchor"), (True, "anchor"), (True, "pair")])
def test_similarity_gradcheck_through_features(adaptive, hinge):
    g = torch.Generator().manual_seed(2)
    fs = torch.randn(6, 4, generator=g, dtype=torch.float64, requires_grad=True)
    ft = torch.randn(6, 4, generator=g, dtype=torch.float64, requires_grad=True)
    logits = torch.randn(6, 6, generator=g, dtype=torch.float64, requires_grad=True)
    ids = torch.tensor([0, 0, 1, 1, 2, 2])
    same = ids[:, None] == ids[None, :]
    # the weights differentiated through: gradcheck compares with finite differences of the forward
    loss = SimilarityDiscriminatorLoss(margin=2.0, gamma=2.5, adaptive=adaptive, negative_hinge=hinge,
                                       detach_weights=False)
    assert torch.autograd.gradcheck(lambda a, b, c: loss(c, euclidean(a, b), same), (fs, ft, logits))


def test_similarity_detached_weights_are_constants():
    # detach_weights=True differentiates Eq. 5 with w_p, w_n frozen at their current values
    g = torch.Generator().manual_seed(3)
    d = (torch.rand(4, 5, generator=g, dtype=torch.float64) * 3).requires_grad_()
    same = torch.rand(4, 5, generator=g) < 0.4
    logits = torch.zeros(4, 5, dtype=torch.float64)
    w_p, w_n = adaptive_weights(d.detach(), same)
    y = same.double()
    dd = d.detach()
    # per pair: ∂/∂d of γ[w_p d² + max(0, m - w_n d)²] with w constant: γ[2 w_p d - 2 w_n max(0, m - w_n d)]
    SimilarityDiscriminatorLoss(adaptive=True, negative_hinge="pair", detach_weights=True, reduction="sum")(
        logits, d, same).backward()
    expected = 2.5 * (y * 2 * w_p * dd - (1 - y) * 2 * w_n * torch.relu(2.0 - w_n * dd))
    torch.testing.assert_close(d.grad, expected)
    # per anchor: γ[2 w_p d - 2 w_n max(0, m - Σ_n w_n d_n)]
    d.grad = None
    SimilarityDiscriminatorLoss(adaptive=True, detach_weights=True, reduction="sum")(logits, d, same).backward()
    hinge = torch.relu(2.0 - ((1 - y) * w_n * dd).sum(1, keepdim=True))
    expected = 2.5 * (y * 2 * w_p * dd - (1 - y) * 2 * w_n * hinge)
    torch.testing.assert_close(d.grad, expected)


def test_similarity_degenerate_batches():
    loss = SimilarityDiscriminatorLoss(adaptive=True)
    # anchors without positives / without negatives; coincident features (d = 0 on the positives)
    fs = torch.zeros(3, 4, dtype=torch.float64, requires_grad=True)
    ft = torch.zeros(3, 4, dtype=torch.float64, requires_grad=True)
    logits = torch.zeros(3, 3, dtype=torch.float64, requires_grad=True)
    for same in (torch.zeros(3, 3, dtype=torch.bool), torch.ones(3, 3, dtype=torch.bool), torch.eye(3, dtype=torch.bool)):
        value = loss(logits, euclidean(fs, ft), same)
        value.backward()
        assert torch.isfinite(value)
        assert all(torch.isfinite(t.grad).all() for t in (fs, ft, logits))
    # all negatives at d = 0: one hinge (2 - 0)² = 4 per anchor; the printed placement, 4 per pair
    args = (torch.zeros(3, 3), torch.zeros(3, 3), torch.zeros(3, 3, dtype=torch.bool))
    value = SimilarityDiscriminatorLoss(adaptive=True, reduction="sum")(*args)
    assert value.item() == pytest.approx(9 * LOG2 + 2.5 * 3 * 4)
    value = SimilarityDiscriminatorLoss(adaptive=True, negative_hinge="pair", reduction="sum")(*args)
    assert value.item() == pytest.approx(9 * LOG2 + 2.5 * 9 * 4)
    # an anchor without negatives has no hinge (not m² from an empty soft-min)
    value = SimilarityDiscriminatorLoss(adaptive=True, reduction="sum")(
        torch.zeros(1, 2), torch.ones(1, 2), torch.ones(1, 2, dtype=torch.bool)
    )
    assert value.item() == pytest.approx(2 * LOG2 + 2.5 * 1.0)


def test_similarity_bad_input():
    loss = SimilarityDiscriminatorLoss()
    with pytest.raises(ConfigError, match="same shape"):
        loss(torch.zeros(3), torch.zeros(4), torch.zeros(3, dtype=torch.bool))
    with pytest.raises(ConfigError, match="distance"):
        loss(torch.zeros(2), torch.tensor([1.0, -1.0]), torch.zeros(2, dtype=torch.bool))
    with pytest.raises(ConfigError, match="anchors, candidates"):
        SimilarityDiscriminatorLoss(adaptive=True)(torch.zeros(3), torch.ones(3), torch.zeros(3, dtype=torch.bool))
    with pytest.raises(ConfigError):
        loss(torch.zeros(2), torch.ones(2), torch.tensor([0.5, 1.0]))
    with pytest.raises(ConfigError):
        SimilarityDiscriminatorLoss(pair_term="positives")
    with pytest.raises(ConfigError, match="negative_hinge"):
        SimilarityDiscriminatorLoss(adaptive=True, negative_hinge="triplet")


@settings(max_examples=20)
@given(seed=st.integers(0, 10_000), adaptive=st.booleans(), data=st.data())
def test_similarity_permutation_invariance(seed, adaptive, data):
    g = torch.Generator().manual_seed(seed)
    d = torch.rand(4, 5, generator=g, dtype=torch.float64) * 4
    logits = torch.randn(4, 5, generator=g, dtype=torch.float64)
    same = torch.rand(4, 5, generator=g) < 0.3
    rows = torch.tensor(data.draw(st.permutations(range(4))))
    cols = torch.tensor(data.draw(st.permutations(range(5))))
    loss = SimilarityDiscriminatorLoss(adaptive=adaptive)
    permuted = loss(logits[rows][:, cols], d[rows][:, cols], same[rows][:, cols])
    torch.testing.assert_close(permuted, loss(logits, d, same))


@settings(max_examples=20)
@given(seed=st.integers(0, 10_000), shift=st.floats(-5, 5))
def test_similarity_translation_invariance_of_features(seed, shift):
    # d depends on Ms(x_s) - Mt(x_t) only: shifting both mapped batches by one vector changes nothing
    g = torch.Generator().manual_seed(seed)
    fs, ft = torch.randn(4, 3, generator=g, dtype=torch.float64), torch.randn(4, 3, generator=g, dtype=torch.float64)
    logits = torch.randn(4, 4, generator=g, dtype=torch.float64)
    same = torch.eye(4, dtype=torch.bool)
    loss = SimilarityDiscriminatorLoss(adaptive=True)
    t = torch.full((3,), shift, dtype=torch.float64)
    torch.testing.assert_close(loss(logits, euclidean(fs + t, ft + t), same), loss(logits, euclidean(fs, ft), same))
