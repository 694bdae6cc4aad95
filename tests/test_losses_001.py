"""Paper 001 (adaptive margin) and its fixed-margin baselines (contrastive, explicit triplet), and
Eq. 13–14 as printed next to the correct gradient (reid.losses.printed_gradients)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.autograd import gradcheck

from reid.errors import ConfigError
from reid.losses import AdaptiveMarginLoss, ContrastiveLoss, TripletLoss
from reid.losses.adaptive_margin import adaptive_margins, margin_hinge, pair_sq_distance, weight_decay_for
from reid.losses.printed_gradients import adaptive_margin_grad, adaptive_margin_grad_printed

F64 = torch.float64


def _hand_pairs():
    """Four 1-D pairs with f_A = 0, so D = f_B²: positives D = 0.04, 0.16; negatives D = 0.25, 1.0."""
    f_a = torch.zeros(4, 1, dtype=F64)
    f_b = torch.tensor([[0.2], [0.4], [0.5], [1.0]], dtype=F64)
    same = torch.tensor([True, True, False, False])
    return f_a, f_b, same


def _random_pairs(seed: int, n: int = 10, dim: int = 4, scale: float = 0.3):
    gen = torch.Generator().manual_seed(seed)
    f_a = scale * torch.randn(n, dim, generator=gen, dtype=F64)
    f_b = scale * torch.randn(n, dim, generator=gen, dtype=F64)
    same = torch.arange(n) % 3 == 0  # both kinds present for n >= 2
    return f_a, f_b, same


# ------------------------------------------------------------------------------ adaptive margin


def test_adaptive_margin_hand_worked():
    f_a, f_b, same = _hand_pairs()
    loss = AdaptiveMarginLoss(mu=8.0, gamma=2.1, reduction="sum")
    value = float(loss(f_a, f_b, same))
    # Eq. 6: s̄ = (0.04 + 0.16)/2 = 0.1,  d̄ = (0.25 + 1.0)/2 = 0.625
    # Eq. 5: Mp = (1 − e^{−8·0.625})/8 = (1 − e^{−5})/8 = (1 − 0.0067379)/8 = 0.1241578
    #        Mn = log(1 + e^{2.1·0.1})/2.1 = log(2.2336781)/2.1 = 0.8036496/2.1 = 0.3826903
    # Eq. 7: Mτ = (Mp + Mn)/2 = 0.2534240,  Mc = (Mn − Mp)/2 = 0.1292663
    # Eq. 9: pos 0.04 → max(0.04 − Mp, 0) = 0;  pos 0.16 → 0.16 − 0.1241578 = 0.0358422
    #        neg 0.25 → Mn − 0.25 = 0.1326903;     neg 1.0 → max(Mn − 1, 0) = 0
    #        Σ = 0.1685325;  mean over the 4 pairs = 0.0421331
    mp, mn = (1 - math.exp(-5.0)) / 8, math.log(1 + math.exp(0.21)) / 2.1
    assert loss.last_margins["s_bar"] == pytest.approx(0.1)
    assert loss.last_margins["d_bar"] == pytest.approx(0.625)
    assert loss.last_margins["Mp"] == pytest.approx(mp) and mp == pytest.approx(0.1241578, abs=1e-7)
    assert loss.last_margins["Mn"] == pytest.approx(mn) and mn == pytest.approx(0.3826903, abs=1e-7)
    assert loss.last_margins["Mtau"] == pytest.approx(0.2534240, abs=1e-7)
    assert loss.last_margins["Mc"] == pytest.approx(0.1292663, abs=1e-7)
    assert value == pytest.approx(0.16 - mp + mn - 0.25) and value == pytest.approx(0.1685325, abs=1e-7)
    assert float(AdaptiveMarginLoss()(f_a, f_b, same)) == pytest.approx(value / 4)
    assert loss.last_stats["active_fraction"] == pytest.approx(0.5)


def test_eq9_hinge_is_the_two_constraints_of_eq4():
    # y = +1: max{Mc − (Mτ − D), 0} = max{D − Mp, 0};   y = −1: max{Mc + Mτ − D, 0} = max{Mn − D, 0}
    d = torch.linspace(0.0, 2.0, 21, dtype=F64)
    m_tau, m_c = torch.tensor(0.7, dtype=F64), torch.tensor(0.2, dtype=F64)
    mp, mn = m_tau - m_c, m_tau + m_c
    torch.testing.assert_close(margin_hinge(d, torch.ones_like(d), m_tau, m_c), (d - mp).clamp(min=0))
    torch.testing.assert_close(margin_hinge(d, -torch.ones_like(d), m_tau, m_c), (mn - d).clamp(min=0))


def test_margin_bounds_of_eq5():
    # Mp ∈ [0, 1/µ), Mn ∈ [log 2/γ, ∞): for µ = 8, γ = 2.1 every up-margin is below every down-margin.
    d = torch.tensor([0.0, 1e-3, 0.5, 10.0, 1e6], dtype=F64)
    for value in d:
        distance = torch.stack([value, value])
        margins, _ = adaptive_margins(distance, torch.tensor([1.0, -1.0], dtype=F64), 8.0, 2.1)
        assert 0.0 <= float(margins["Mp"]) <= 1 / 8  # reaches 1/µ in floating point for huge d̄
        assert float(margins["Mn"]) >= math.log(2) / 2.1 - 1e-12
        assert math.isfinite(float(margins["Mn"]))  # softplus: no overflow at γ·s̄ = 2.1e6
        torch.testing.assert_close(margins["Mtau"] - margins["Mc"], margins["Mp"])
        torch.testing.assert_close(margins["Mtau"] + margins["Mc"], margins["Mn"])


@pytest.mark.parametrize("kind", ["no_negatives", "no_positives"])
def test_batches_without_one_kind_of_pair(kind):
    f_a, f_b, _ = _random_pairs(0, n=5)
    same = torch.full((5,), kind == "no_negatives")
    fa = f_a.clone().requires_grad_()
    loss = AdaptiveMarginLoss(reduction="sum")
    value = loss(fa, f_b, same)
    value.backward()
    assert math.isfinite(value.item()) and torch.isfinite(fa.grad).all()
    assert loss.last_stats[f"no_{kind[3:-1]}_pairs"] is True  # no_negative_pairs / no_positive_pairs
    if kind == "no_negatives":
        # d̄ := 0 → Mp = 0: every positive pair is pulled to zero distance (the contrastive pull)
        assert loss.last_margins["Mp"] == 0.0
        torch.testing.assert_close(value, pair_sq_distance(f_a, f_b).sum())
    else:
        # s̄ := 0 → Mn = log 2 / γ, the smallest down-margin
        assert loss.last_margins["Mn"] == pytest.approx(math.log(2) / 2.1)


def test_coincident_and_zero_norm_features():
    f = torch.zeros(4, 3, dtype=F64, requires_grad=True)
    g = torch.zeros(4, 3, dtype=F64, requires_grad=True)
    same = torch.tensor([True, False, True, False])
    for loss in (
        AdaptiveMarginLoss(),
        AdaptiveMarginLoss(differentiate_margins=True),
        ContrastiveLoss(1.0),
        ContrastiveLoss(1.0, form="hadsell"),
    ):
        f.grad = g.grad = None
        value = loss(f, g, same)
        value.backward()
        assert math.isfinite(value.item()) and torch.isfinite(f.grad).all() and torch.isfinite(g.grad).all()
    t = TripletLoss(0.3, squared=False)(f, g, g)
    t.backward()
    assert t.item() == pytest.approx(0.3) and torch.isfinite(f.grad).all()


def test_pair_input_errors():
    f = torch.zeros(3, 2)
    with pytest.raises(ConfigError, match="same"):
        AdaptiveMarginLoss()(f, f, torch.tensor([0, 1, 2]))
    with pytest.raises(ConfigError, match="same number of pairs"):
        AdaptiveMarginLoss()(f, torch.zeros(2, 2), torch.tensor([True, False, True]))
    with pytest.raises(ConfigError, match="empty"):
        AdaptiveMarginLoss()(torch.zeros(0, 2), torch.zeros(0, 2), torch.zeros(0, dtype=torch.bool))
    with pytest.raises(ConfigError, match="mu and gamma"):
        AdaptiveMarginLoss(mu=0.0)
    with pytest.raises(ConfigError, match="margin"):
        ContrastiveLoss(-1.0)
    with pytest.raises(ConfigError, match="form"):
        ContrastiveLoss(1.0, form="cosine")
    with pytest.raises(ConfigError, match="triplets"):
        TripletLoss(0.3)(f, f, torch.zeros(2, 2))
    # integer 0/1 flags are accepted and mean the same as booleans
    same01 = torch.tensor([1, 0, 1])
    fa, fb, _ = _random_pairs(1, n=3, dim=2)
    torch.testing.assert_close(AdaptiveMarginLoss()(fa, fb, same01), AdaptiveMarginLoss()(fa, fb, same01.bool()))


# ------------------------------------------------------------------------------ baselines


def test_contrastive_hand_worked():
    f_a, f_b, same = _hand_pairs()
    # squared form (Eq. 9 with Mp = 0, Mn = m = 1):  0.04 + 0.16 + (1 − 0.25) + max(1 − 1, 0) = 0.95
    assert float(ContrastiveLoss(1.0, reduction="sum")(f_a, f_b, same)) == pytest.approx(0.95)
    # Hadsell: ½·0.04 + ½·0.16 + ½(1 − 0.5)² + ½ max(1 − 1, 0)² = 0.02 + 0.08 + 0.125 + 0 = 0.225
    assert float(ContrastiveLoss(1.0, form="hadsell", reduction="sum")(f_a, f_b, same)) == pytest.approx(0.225)
    assert float(ContrastiveLoss(1.0)(f_a, f_b, same)) == pytest.approx(0.95 / 4)


def test_contrastive_is_eq9_with_fixed_margins():
    f_a, f_b, same = _random_pairs(2)
    y = same.to(F64) * 2 - 1
    m = 0.8
    expected = margin_hinge(pair_sq_distance(f_a, f_b), y, m / 2, m / 2).sum()  # Mτ = Mc = m/2 ⇔ Mp = 0, Mn = m
    torch.testing.assert_close(ContrastiveLoss(m, reduction="sum")(f_a, f_b, same), expected)


def test_contrastive_with_a_positive_margin_is_eq9_with_both_margins_fixed():
    f_a, f_b, same = _hand_pairs()
    # Mp = 0.1, Mn = 0.5:  max(0.04 − 0.1, 0) + max(0.16 − 0.1, 0) + max(0.5 − 0.25, 0) + max(0.5 − 1, 0) = 0.31
    loss = ContrastiveLoss(0.5, positive_margin=0.1, reduction="sum")
    assert float(loss(f_a, f_b, same)) == pytest.approx(0.31)
    # the adaptive loss with the same margins frozen in is the same function: the fixed-margin control
    fa, fb, same = _random_pairs(4)
    y = same.to(F64) * 2 - 1
    mp, mn = 0.12, 0.45
    expected = margin_hinge(pair_sq_distance(fa, fb), y, (mp + mn) / 2, (mn - mp) / 2).sum()
    torch.testing.assert_close(ContrastiveLoss(mn, positive_margin=mp, reduction="sum")(fa, fb, same), expected)
    # positive_margin = 0 is the conventional loss, bit for bit
    torch.testing.assert_close(ContrastiveLoss(0.8, positive_margin=0.0)(fa, fb, same), ContrastiveLoss(0.8)(fa, fb, same))
    with pytest.raises(ConfigError, match="Mp < Mn"):
        ContrastiveLoss(0.5, positive_margin=0.5)
    with pytest.raises(ConfigError, match="squared"):
        ContrastiveLoss(0.5, positive_margin=0.1, form="hadsell")


def test_weight_decay_reproduces_the_regulariser_of_eq11():
    # Eq. 11: L = Σ hinge + λ Σ (‖W‖² + ‖b‖²);  Eq. 12: ∂(λR)/∂Ω = 2λΩ.  One SGD step with
    # weight_decay = weight_decay_for(λ) on the summed hinge must equal one plain step on Eq. 11.
    lam, lr = 0.01, 0.1
    assert weight_decay_for(lam) == pytest.approx(0.02)
    assert weight_decay_for(lam, reduction="mean", num_pairs=80) == pytest.approx(0.02 / 80)
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 4).double()
    x_a, x_b = torch.randn(6, 3, dtype=F64), torch.randn(6, 3, dtype=F64)
    same = torch.tensor([True, False, False, True, False, False])
    hinge = AdaptiveMarginLoss(reduction="sum")

    def eq11(model, with_regulariser):
        value = hinge(model(x_a), model(x_b), same)
        if with_regulariser:
            value = value + lam * sum(p.pow(2).sum() for p in model.parameters())
        return value

    def copy_of(model):
        twin = torch.nn.Linear(3, 4).double()
        twin.load_state_dict(model.state_dict())
        return twin

    explicit = copy_of(net)
    eq11(explicit, True).backward()
    with torch.no_grad():
        for p in explicit.parameters():
            p -= lr * p.grad

    def sgd_step(weight_decay):
        model = copy_of(net)
        opt = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=weight_decay)
        eq11(model, False).backward()
        opt.step()
        return list(model.parameters())

    for p, q in zip(sgd_step(weight_decay_for(lam)), explicit.parameters()):
        torch.testing.assert_close(p, q)
    # the old recipe value, weight_decay = λ, applies half of Eq. 12's 2λΩ
    assert not all(torch.allclose(p, q) for p, q in zip(sgd_step(lam), explicit.parameters()))
    with pytest.raises(ConfigError):
        weight_decay_for(-1.0)


def test_triplet_hand_worked():
    a = torch.zeros(2, 1, dtype=F64)
    p = torch.tensor([[0.4], [0.1]], dtype=F64)
    n = torch.tensor([[0.5], [1.0]], dtype=F64)
    # squared: max(0.2 + 0.16 − 0.25, 0) = 0.11;  max(0.2 + 0.01 − 1, 0) = 0          → Σ = 0.11
    assert float(TripletLoss(0.2, reduction="sum")(a, p, n)) == pytest.approx(0.11)
    # plain:   max(0.2 + 0.4 − 0.5, 0) = 0.1;     max(0.2 + 0.1 − 1, 0) = 0           → Σ = 0.1
    assert float(TripletLoss(0.2, squared=False, reduction="sum")(a, p, n)) == pytest.approx(0.1)


# ------------------------------------------------------------------------------ gradients


def test_gradcheck_adaptive_margin_with_frozen_margins():
    # With stop-gradient margins (the default) the loss is not the function gradcheck perturbs:
    # a finite difference also moves s̄, d̄ and hence the margins. So check the hinge of Eq. 9 with
    # the margins frozen at this batch's values, and that the module's autograd gradient is that one.
    f_a, f_b, same = _random_pairs(3)
    y = same.to(F64) * 2 - 1
    margins, _ = adaptive_margins(pair_sq_distance(f_a, f_b), y, 8.0, 2.1)

    def frozen(a, b):
        return margin_hinge(pair_sq_distance(a, b), y, margins["Mtau"], margins["Mc"]).mean()

    a, b = f_a.clone().requires_grad_(), f_b.clone().requires_grad_()
    assert gradcheck(frozen, (a, b))
    AdaptiveMarginLoss()(a, b, same).backward()
    ref_a = f_a.clone().requires_grad_()
    frozen(ref_a, f_b).backward()
    torch.testing.assert_close(a.grad, ref_a.grad)


@pytest.mark.parametrize(
    "loss",
    [
        AdaptiveMarginLoss(differentiate_margins=True, reduction="sum"),
        ContrastiveLoss(0.5),
        ContrastiveLoss(0.5, form="hadsell", reduction="sum"),
    ],
    ids=["adaptive-diff-margins", "contrastive", "contrastive-hadsell"],
)
def test_gradcheck_pair_losses(loss):
    f_a, f_b, same = _random_pairs(3)
    assert gradcheck(lambda a, b: loss(a, b, same), (f_a.requires_grad_(), f_b.requires_grad_()))


@pytest.mark.parametrize("squared", [True, False])
def test_gradcheck_triplet(squared):
    gen = torch.Generator().manual_seed(4)
    a, p, n = (torch.randn(6, 3, generator=gen, dtype=F64).requires_grad_() for _ in range(3))
    loss = TripletLoss(1.0, squared=squared)
    assert gradcheck(lambda *t: loss(*t), (a, p, n))


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_correct_gradient_equals_autograd_and_printed_differs_by_minus_y_mtau(reduction):
    f_a, f_b, same = _random_pairs(5, n=12)
    a, b = f_a.clone().requires_grad_(), f_b.clone().requires_grad_()
    loss = AdaptiveMarginLoss(reduction=reduction)
    loss(a, b, same).backward()
    grad_a, grad_b = adaptive_margin_grad(f_a, f_b, same, reduction=reduction)
    torch.testing.assert_close(a.grad, grad_a)
    torch.testing.assert_close(b.grad, grad_b)

    printed_a, printed_b = adaptive_margin_grad_printed(f_a, f_b, same, reduction=reduction)
    y = (same.to(F64) * 2 - 1).unsqueeze(1)
    d = pair_sq_distance(f_a, f_b)
    active = ((loss.last_margins["Mc"] - y.squeeze(1) * (loss.last_margins["Mtau"] - d)) > 0).to(F64).unsqueeze(1)
    assert 0 < active.sum() < len(active)  # the example has active and inactive hinges
    scale = 1.0 if reduction == "sum" else 1.0 / len(d)
    spurious = -y * loss.last_margins["Mtau"] * active * scale  # Eq. 13/14 add −y·Mτ to every coordinate
    torch.testing.assert_close(printed_a, grad_a + spurious.expand_as(grad_a))
    torch.testing.assert_close(printed_b, grad_b + spurious.expand_as(grad_b))
    assert not torch.allclose(printed_a, a.grad)  # the printed formula is not the gradient
    torch.testing.assert_close(printed_a[active.squeeze(1) == 0], torch.zeros_like(printed_a[active.squeeze(1) == 0]))


def test_margins_are_constants_unless_asked():
    f_a, f_b, same = _random_pairs(6)
    grads = []
    for flag in (False, True):
        a = f_a.clone().requires_grad_()
        AdaptiveMarginLoss(differentiate_margins=flag)(a, f_b, same).backward()
        grads.append(a.grad)
    assert not torch.allclose(grads[0], grads[1])  # differentiating through s̄, d̄ adds terms
    torch.testing.assert_close(grads[0], adaptive_margin_grad(f_a, f_b, same, reduction="mean")[0])


# ------------------------------------------------------------------------------ properties


@given(seed=st.integers(0, 10_000), n=st.integers(2, 12))
def test_pair_permutation_invariance(seed, n):
    f_a, f_b, same = _random_pairs(seed, n=n)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 7))
    for loss in (AdaptiveMarginLoss(), ContrastiveLoss(0.5), ContrastiveLoss(0.5, form="hadsell")):
        torch.testing.assert_close(loss(f_a, f_b, same), loss(f_a[perm], f_b[perm], same[perm]))
    trip = TripletLoss(0.5)
    torch.testing.assert_close(trip(f_a, f_b, f_a.flip(0)), trip(f_a[perm], f_b[perm], f_a.flip(0)[perm]))


@given(seed=st.integers(0, 10_000), shift=st.floats(-10.0, 10.0), swap=st.booleans())
def test_translation_and_swap_invariance(seed, shift, swap):
    # D depends on f_A − f_B only: a common shift changes nothing, and D is symmetric in A, B.
    f_a, f_b, same = _random_pairs(seed)
    t = torch.linspace(-1.0, 1.0, f_a.shape[1], dtype=F64) * shift
    moved_a, moved_b = (f_b + t, f_a + t) if swap else (f_a + t, f_b + t)
    for loss in (AdaptiveMarginLoss(), ContrastiveLoss(0.5), ContrastiveLoss(0.5, form="hadsell")):
        torch.testing.assert_close(loss(f_a, f_b, same), loss(moved_a, moved_b, same), rtol=1e-6, atol=1e-9)
    trip = TripletLoss(0.5)
    torch.testing.assert_close(trip(f_a, f_b, f_a.flip(0)), trip(f_a + t, f_b + t, f_a.flip(0) + t), rtol=1e-6, atol=1e-9)


# ------------------------------------------------------------------------------ per-anchor margins


def test_per_anchor_unit_margins():
    # Two anchor-based units (Sec. 5), the hand pairs in unit 7 and a shifted copy in unit 3:
    # unit 7: s̄ = 0.1, d̄ = 0.625 (as in the hand-worked test);  unit 3: D = 4·(those) → s̄ = 0.4, d̄ = 2.5
    f_a, f_b, same = _hand_pairs()
    fa = torch.cat([f_a, f_a])
    fb = torch.cat([f_b, 2 * f_b])
    anchors = torch.tensor([7, 7, 7, 7, 3, 3, 3, 3])
    loss = AdaptiveMarginLoss(reduction="sum")
    value = float(loss(fa, fb, torch.cat([same, same]), anchors))
    mp7, mn7 = (1 - math.exp(-8 * 0.625)) / 8, math.log(1 + math.exp(2.1 * 0.1)) / 2.1
    mp3, mn3 = (1 - math.exp(-8 * 2.5)) / 8, math.log(1 + math.exp(2.1 * 0.4)) / 2.1
    # unit 7: 0.16 − Mp7 + Mn7 − 0.25 (as before);  unit 3: positives D = 0.16, 0.64, negatives D = 1, 4
    unit3 = max(0.16 - mp3, 0) + max(0.64 - mp3, 0) + max(mn3 - 1.0, 0) + max(mn3 - 4.0, 0)
    assert value == pytest.approx(0.16 - mp7 + mn7 - 0.25 + unit3)
    # one unit for the whole batch = the batch-wide margins
    single = AdaptiveMarginLoss()(f_a, f_b, same, torch.zeros(4, dtype=torch.long))
    torch.testing.assert_close(single, AdaptiveMarginLoss()(f_a, f_b, same))
    with pytest.raises(ConfigError, match="anchors"):
        loss(fa, fb, torch.cat([same, same]), anchors.float())


def test_per_anchor_gradient_equals_autograd():
    f_a, f_b, same = _random_pairs(8, n=12)
    anchors = torch.arange(12) // 4  # three units of four pairs
    same = torch.tensor([True, False, False, False] * 3)
    a, b = f_a.clone().requires_grad_(), f_b.clone().requires_grad_()
    AdaptiveMarginLoss(reduction="sum")(a, b, same, anchors).backward()
    grad_a, grad_b = adaptive_margin_grad(f_a, f_b, same, anchors=anchors)
    torch.testing.assert_close(a.grad, grad_a)
    torch.testing.assert_close(b.grad, grad_b)
    printed_a, _ = adaptive_margin_grad_printed(f_a, f_b, same, anchors=anchors)
    assert printed_a.shape == grad_a.shape
