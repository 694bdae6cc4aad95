"""Paper 004: additive angular margin (Eq. 2), attribute heads (Eq. 3), joint losses (Eq. 6/7, Table 3)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from reid.errors import ConfigError
from reid.losses import (
    AngularMarginLoss,
    AttributeAngularMarginLoss,
    BatchHardTripletLoss,
    JointAngularTripletLoss,
    joint_loss,
)
from reid.losses.angular_margin import VARIANTS, additive_angular_margin_logits


def am_with_axes(scale: float, margin: float) -> AngularMarginLoss:
    """2-D features, 2 classes with weights e1 and e2: cos α_j is just the j-th coordinate of x/||x||."""
    loss = AngularMarginLoss(in_features=2, num_classes=2, scale=scale, margin=margin).double()
    with torch.no_grad():
        loss.weight.copy_(torch.eye(2))
    return loss


def xy(angle: float, norm: float = 1.0) -> torch.Tensor:
    return torch.tensor([[norm * math.cos(angle), norm * math.sin(angle)]], dtype=torch.float64)


LABEL0 = torch.tensor([0])


def test_angular_margin_hand_examples():
    s = 2.0
    # x = e1, label 0: cos α_0 = 1, cos α_1 = 0
    #   AM0: -log(e^2 / (e^2 + e^0)) = log(1 + e^-2)
    assert am_with_axes(s, 0.0)(xy(0.0), LABEL0).item() == pytest.approx(math.log1p(math.exp(-2)))
    #   AM (m = 0.5): target logit s·cos(0 + 0.5) -> log(1 + e^{-2 cos 0.5})
    assert am_with_axes(s, 0.5)(xy(0.0), LABEL0).item() == pytest.approx(math.log1p(math.exp(-2 * math.cos(0.5))))
    # x at 60° (and norm 5: normalised away): target s·cos(π/3 + 0.5), other s·cos(π/6)
    target, other = s * math.cos(math.pi / 3 + 0.5), s * math.cos(math.pi / 6)
    expected = math.log1p(math.exp(other - target))
    assert am_with_axes(s, 0.5)(xy(math.pi / 3, norm=5.0), LABEL0).item() == pytest.approx(expected)


def test_angular_margin_fallback_beyond_pi():
    # x = -e1, label 0: θ = π > π - m. Default ("continuous"): target logit s(cos θ - (1 - cos m))
    s, m = 2.0, 0.5
    for fallback, offset in (("continuous", 1 - math.cos(m)), ("arcface", m * math.sin(m))):
        loss = AngularMarginLoss(in_features=2, num_classes=2, scale=s, margin=m, fallback=fallback).double()
        with torch.no_grad():
            loss.weight.copy_(torch.eye(2))
        target, other = s * (-1 - offset), 0.0
        assert loss(xy(math.pi), LABEL0).item() == pytest.approx(math.log1p(math.exp(other - target)))
    # the default is what the loss uses when nothing is said
    assert am_with_axes(s, m)(xy(math.pi), LABEL0).item() == pytest.approx(
        math.log1p(math.exp(s * (1 - math.cos(m)) + s))
    )
    # with either fallback, the target logit keeps decreasing in θ across the whole range (no reward near π)
    theta = torch.linspace(0, math.pi, 400, dtype=torch.float64)
    for fallback in ("continuous", "arcface"):
        logits = additive_angular_margin_logits(torch.cos(theta), torch.ones_like(theta, dtype=torch.bool), 1.0, m, fallback)
        assert torch.all(logits[1:] < logits[:-1])


@pytest.mark.parametrize("margin", [0.1, 0.5, 1.0, 1.5])
def test_default_fallback_is_continuous_at_pi_minus_m(margin):
    # Issue 11: ArcFace's constant m·sin m makes the target logit jump by cos m + m sin m - 1 at
    # θ = π - m (0.117 for m = 0.5). The default fallback meets cos(θ + m) = -1 there.
    s = 30.0
    theta0 = math.pi - margin
    around = torch.tensor([theta0 - 1e-7, theta0 + 1e-7], dtype=torch.float64)
    mask = torch.ones(2, dtype=torch.bool)
    left, right = additive_angular_margin_logits(torch.cos(around), mask, s, margin).tolist()
    assert left == pytest.approx(-s, abs=1e-4) and right == pytest.approx(-s, abs=1e-4)
    jump_left, jump_right = additive_angular_margin_logits(torch.cos(around), mask, s, margin, "arcface").tolist()
    assert jump_left - jump_right == pytest.approx(s * (math.cos(margin) + margin * math.sin(margin) - 1), abs=1e-4)
    if margin == 0.5:
        assert (jump_left - jump_right) / s == pytest.approx(0.1173, abs=1e-4)


def test_fallback_none_is_eq2_as_printed_and_bad_names_fail():
    theta = torch.linspace(0, math.pi, 50, dtype=torch.float64)
    mask = torch.ones_like(theta, dtype=torch.bool)
    printed = additive_angular_margin_logits(torch.cos(theta), mask, 3.0, 0.5, "none")
    torch.testing.assert_close(printed, 3.0 * torch.cos(theta + 0.5), atol=1e-5, rtol=0)  # sin θ is floored at 1e-6
    with pytest.raises(ConfigError, match="fallback"):
        additive_angular_margin_logits(torch.cos(theta), mask, 3.0, 0.5, "arc")
    with pytest.raises(ConfigError, match="fallback"):
        AngularMarginLoss(in_features=4, num_classes=3, scale=10.0, margin=0.5, fallback="easy")
    with pytest.raises(ConfigError, match="fallback"):
        joint_loss("AMBH", 6, 3, scale=10.0, margin_fallback="easy")
    loss = joint_loss("AMBH_Attr", 12, 3, scale=10.0, attribute_values=[2, 2], slice_dim=2, margin_fallback="arcface")
    assert loss.am.fallback == "arcface" and loss.attributes.fallback == "arcface"


def test_margin_raises_the_loss_and_is_in_the_gradient():
    x = torch.randn(8, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = torch.arange(8) % 3
    am0 = AngularMarginLoss(in_features=5, num_classes=3, scale=10.0, margin=0.0).double()
    am = AngularMarginLoss(in_features=5, num_classes=3, scale=10.0, margin=0.5).double()
    am.load_state_dict(am0.state_dict())
    assert am(x, y) > am0(x, y)
    g0 = torch.autograd.grad(am0(x.clone().requires_grad_(), y), am0.weight)[0]
    g = torch.autograd.grad(am(x.clone().requires_grad_(), y), am.weight)[0]
    assert (g - g0).abs().max() > 1e-3


@pytest.mark.parametrize("margin", [0.0, 0.5])
def test_angular_margin_gradcheck(margin):
    loss = AngularMarginLoss(in_features=4, num_classes=3, scale=8.0, margin=margin).double()
    x = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1), requires_grad=True)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    assert torch.autograd.gradcheck(lambda f, w: _am_with_weight(loss, f, w, y), (x, loss.weight.detach().clone().requires_grad_()))


def _am_with_weight(loss: AngularMarginLoss, f: torch.Tensor, w: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.func.functional_call(loss, {"weight": w}, (f, y))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_angular_margin_is_finite_at_cos_plus_minus_one_and_zero_norm(dtype):
    loss = AngularMarginLoss(in_features=6, num_classes=4, scale=64.0, margin=0.5).to(dtype)
    y = torch.tensor([0, 1, 2, 3])
    w = loss.weight.detach()
    for features in (w[y] * 3.0, -w[y], torch.zeros(4, 6, dtype=dtype)):  # cos = 1, cos = -1, norm 0
        x = features.clone().requires_grad_()
        value = loss(x, y)
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(x.grad).all() and torch.isfinite(loss.weight.grad).all()
        loss.weight.grad = None


def test_angular_margin_bad_input():
    with pytest.raises(ConfigError):
        AngularMarginLoss(in_features=4, num_classes=3, scale=0.0)
    with pytest.raises(ConfigError):
        AngularMarginLoss(in_features=4, num_classes=3, scale=10.0, margin=2.0)
    loss = AngularMarginLoss(in_features=4, num_classes=3, scale=10.0)
    with pytest.raises(ConfigError, match="labels"):
        loss(torch.randn(2, 4), torch.tensor([0, 3]))
    with pytest.raises(ConfigError):
        loss(torch.randn(2, 5), torch.tensor([0, 1]))


@settings(max_examples=20)
@given(seed=st.integers(0, 10_000), scale=st.floats(0.1, 100), data=st.data())
def test_angular_margin_invariances(seed, scale, data):
    # permutation of the batch, and positive rescaling of each feature (features are normalised)
    g = torch.Generator().manual_seed(seed)
    loss = AngularMarginLoss(in_features=5, num_classes=4, scale=16.0, margin=0.5).double()
    x = torch.randn(6, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (6,), generator=g)
    perm = torch.tensor(data.draw(st.permutations(range(6))))
    torch.testing.assert_close(loss(x[perm], y[perm]), loss(x, y))
    torch.testing.assert_close(loss(scale * x, y), loss(x, y))


# --------------------------------------------------------------------------------------------
# Attributes, Eq. 3
# --------------------------------------------------------------------------------------------


def test_attribute_loss_hand_example():
    # two attributes, Q = 2: a binary one (weights e1, e2) and a 3-valued one (weights e1, e2, -e1)
    loss = AttributeAngularMarginLoss([2, 3], scale=2.0, margin=0.0, slice_dim=2).double()
    with torch.no_grad():
        loss.weight.zero_()
        loss.weight[0, 0, 0] = loss.weight[0, 1, 1] = 1.0  # binary: e1, e2
        loss.weight[1, 0, 0] = loss.weight[1, 1, 1] = 1.0
        loss.weight[1, 2, 0] = -1.0  # third value: -e1
    x = torch.tensor([[1.0, 0.0, 1.0, 0.0]], dtype=torch.float64)  # both slices = e1
    labels = torch.tensor([[0, 0]])
    # binary: -log(e^2/(e^2 + e^0)); 3-valued: -log(e^2/(e^2 + e^0 + e^-2)); summed over attributes
    expected = math.log1p(math.exp(-2)) + math.log(1 + math.exp(-2) + math.exp(-4))
    assert loss(x, labels).item() == pytest.approx(expected)
    # the padding class of the binary attribute is masked out: same value as a stand-alone binary head
    alone = AttributeAngularMarginLoss(1, scale=2.0, margin=0.0, slice_dim=2).double()
    with torch.no_grad():
        alone.weight.copy_(loss.weight[:1, :2])
    assert alone(x[:, :2], labels[:, :1]).item() == pytest.approx(math.log1p(math.exp(-2)))


def test_attribute_loss_gradcheck_and_degenerate():
    loss = AttributeAngularMarginLoss([4, 2, 2], scale=8.0, margin=0.5, slice_dim=3).double()
    g = torch.Generator().manual_seed(5)
    x = torch.randn(5, 9, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.stack([torch.randint(0, 4, (5,), generator=g), torch.randint(0, 2, (5,), generator=g), torch.randint(0, 2, (5,), generator=g)], 1)
    assert torch.autograd.gradcheck(lambda f: loss(f, labels), (x,))
    z = torch.zeros(5, 9, dtype=torch.float64, requires_grad=True)
    value = loss(z, labels)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(z.grad).all()


def test_attribute_loss_bad_labels():
    loss = AttributeAngularMarginLoss([4, 2], scale=8.0, slice_dim=2)
    with pytest.raises(ConfigError, match="out of range"):
        loss(torch.randn(2, 4), torch.tensor([[0, 2], [1, 1]]))  # 2 is not a value of a binary attribute
    with pytest.raises(ConfigError):
        loss(torch.randn(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ConfigError):
        AttributeAngularMarginLoss([1], scale=8.0)


# --------------------------------------------------------------------------------------------
# Joint losses, Eq. 6 / Eq. 7, Table 3
# --------------------------------------------------------------------------------------------


def pk(p=3, k=3, dim=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(p).repeat_interleave(k)
    return torch.randn(p * k, dim, generator=g, dtype=torch.float64), y


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_table3_variants_components_and_gradcheck(variant):
    loss = joint_loss(variant, 6, 3, scale=10.0).double()
    spec = VARIANTS[variant]
    assert (loss.am is None) == (spec["margin"] is None)
    assert (loss.triplet is None) == (not spec["triplet"])
    if loss.am is not None:
        assert loss.am.margin == spec["margin"]
    if loss.triplet is not None:
        assert loss.triplet.normalize == spec.get("normalize", False)
        assert loss.triplet.soft == spec.get("soft", False)
        assert loss.gamma == 0.43
    x, y = pk(3, 2, 6)
    # Eq. 6: L = L_AM + γ L_BH, each part computed by its own module
    expected = sum(
        w * part(x, y) for w, part in ((1.0, loss.am), (loss.gamma, loss.triplet)) if part is not None
    )
    torch.testing.assert_close(loss(x, y), expected)
    assert torch.autograd.gradcheck(lambda f: loss(f, y), (x.requires_grad_(),))


def test_joint_with_attributes_eq7():
    loss = joint_loss("AM0BH_Attr", 12, 3, scale=10.0, attribute_values=[4, 2], slice_dim=2).double()
    assert loss.gamma == 0.33 and loss.lam == 0.25 and loss.am.in_features == 8
    x, y = pk()
    attrs = torch.stack([y % 4, y % 2], 1)  # identity-level attributes
    f_id, f_a = x[:, :8], x[:, 8:]  # the attribute slices are the last M·Q = 4 features
    expected = loss.am(f_id, y) + 0.25 * loss.attributes(f_a, attrs) + 0.33 * loss.triplet(f_id, y)
    torch.testing.assert_close(loss(x, y, attrs), expected)
    assert set(loss.last_stats) == {"am", "attr", "triplet"}
    assert torch.autograd.gradcheck(lambda f: loss(f, y, attrs), (x.requires_grad_(),), fast_mode=True)
    with pytest.raises(ConfigError, match="attr_labels"):
        loss(x, y)


def test_joint_loss_errors():
    with pytest.raises(ConfigError, match="variant"):
        joint_loss("AM1BH", 12, 3, scale=10.0)
    with pytest.raises(ConfigError, match="attribute_values"):
        joint_loss("AM0BH_Attr", 12, 3, scale=10.0)
    with pytest.raises(ConfigError):
        joint_loss("AM0BH_Attr", 8, 3, scale=10.0, attribute_values=[2, 2], slice_dim=4)
    with pytest.raises(ConfigError):
        JointAngularTripletLoss(None, None)


def test_joint_degenerate_batch_is_finite():
    # one identity only (no negative for the triplet), all features equal
    loss = joint_loss("AM0BH", 6, 3, scale=30.0).double()
    x = torch.ones(4, 6, dtype=torch.float64, requires_grad=True)
    value = loss(x, torch.zeros(4, dtype=torch.long))
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all()


@settings(max_examples=20)
@given(seed=st.integers(0, 10_000), variant=st.sampled_from(["AM0BH", "AMBH", "AM0BHsp", "AM0BH1"]), data=st.data())
def test_joint_permutation_invariance(seed, variant, data):
    torch.manual_seed(0)  # same classifier weights for every example
    loss = joint_loss(variant, 12, 3, scale=10.0).double()
    x, y = pk(seed=seed)
    perm = torch.tensor(data.draw(st.permutations(range(len(y)))))
    torch.testing.assert_close(loss(x[perm], y[perm]), loss(x, y))


def test_batch_hard_is_the_triplet_of_paper_004():
    assert isinstance(joint_loss("BH", 12, 3, scale=1.0).triplet, BatchHardTripletLoss)


def test_size_arguments_cannot_be_swapped_silently():
    # pytorch-metric-learning's ArcFaceLoss takes (num_classes, embedding_size): positional calls are refused
    with pytest.raises(TypeError):
        AngularMarginLoss(751, 2048, 30.0)  # noqa: the order a PML user would type
    loss = AngularMarginLoss(num_classes=751, embedding_size=64, scale=30.0)
    assert loss.in_features == 64 and loss.weight.shape == (751, 64)
    with pytest.raises(ConfigError, match="name the same size"):
        AngularMarginLoss(in_features=64, embedding_size=32, num_classes=10, scale=30.0)
    with pytest.raises(ConfigError, match="needs in_features"):
        AngularMarginLoss(num_classes=10, scale=30.0)
