"""Paper 004's gradient audit and mechanism toys (reid.toys.joint_am_triplet)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reid.losses import AngularMarginLoss, BatchHardTripletLoss
from reid.toys import joint_am_triplet as toy


def batch(seed=0, num_ids=4, per_id=3, dim=6):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_ids).repeat_interleave(per_id)
    return 2.0 * torch.randn(num_ids * per_id, dim, generator=g, dtype=torch.float64), labels


@pytest.mark.parametrize("margin,fallback", [(0.0, "continuous"), (0.5, "continuous"), (0.5, "arcface"), (0.5, "none"), (1.2, "continuous")])
def test_closed_form_angular_margin_gradient_matches_autograd(margin, fallback):
    x, y = batch()
    torch.manual_seed(1)
    loss = AngularMarginLoss(in_features=6, num_classes=4, scale=8.0, margin=margin, fallback=fallback).double()
    # put some samples beyond θ = π - m, where the fallback decides the logit
    x = torch.cat([x, -3.0 * loss.weight.detach()[:2]])
    y = torch.cat([y, torch.tensor([0, 1])])
    xx = x.clone().requires_grad_(True)
    loss(xx, y).backward()
    closed = toy.angular_margin_feature_grad(x, loss.weight.detach(), y, scale=8.0, margin=margin, fallback=fallback)
    torch.testing.assert_close(closed, xx.grad, atol=1e-10, rtol=0)
    radial, tangent = toy.radial_tangential(x, closed)
    assert float((radial.abs() / tangent).max()) < 1e-8  # Eq. (jat-tangent): tangent per sample (1/sin θ is 1e6 at the antipode)


@pytest.mark.parametrize("kw", [{}, {"soft": True}, {"normalize": True}])
def test_closed_form_batch_hard_gradient_matches_autograd(kw):
    x, y = batch(seed=3)
    xx = x.clone().requires_grad_(True)
    BatchHardTripletLoss(0.3, **kw)(xx, y).backward()
    torch.testing.assert_close(toy.batch_hard_feature_grad(x, y, margin=0.3, **kw), xx.grad, atol=1e-10, rtol=0)


def test_bn_neck_removes_the_batch_radial_gradient_for_every_loss():
    # Issue 11: the gradient is tangent at f, but the BN layer before f fixes the batch's mean norm,
    # so no loss (BH included) can make the backbone scale the whole batch.
    rows = {r["variant"]: r for r in toy.bn_radial_audit(dtype=torch.float64)}
    assert set(rows) == set(toy.BN_AUDIT_VARIANTS)
    for name, row in rows.items():
        assert row["backbone radial (batch)"] < 1e-8, name
        assert row["affine identity error"] < 1e-12, name
        assert row["backbone radial (per sample)"] > 1e-2, name  # BN couples samples: single norms still move
    for name in ("BH", "AM0BH", "AMBH", "AM0BHsp"):  # the raw-feature triplet asks for radial change ...
        assert rows[name]["loss radial (per sample)"] > 1e-2 and rows[name]["loss radial (batch)"] > 1e-3
    for name in ("AM0", "AM", "AM0BH1"):  # ... the normalised losses do not
        assert rows[name]["loss radial (per sample)"] < 1e-12 and rows[name]["loss radial (batch)"] < 1e-12
    # the residue is BN's ε: with a negligible ε the batch-level component is rounding only
    tiny = toy.bn_radial_audit(eps=1e-14, variants=("BH",))[0]
    assert tiny["backbone radial (batch)"] < 1e-14


def test_bn_audit_float32_is_within_single_precision():
    for row in toy.bn_radial_audit(dtype=torch.float32):
        assert row["backbone radial (batch)"] < 1e-7


def test_simulation_tangent_variants_never_shrink_a_norm():
    for variant in ("AM0", "AM0BH1"):
        sim = toy.simulate(variant, steps=10, lr=0.1)
        before, after = (np.linalg.norm(s, axis=1) for s in (sim.snapshots[0], sim.snapshots[-1]))
        assert (after >= before - 1e-12).all()
    bh = toy.simulate("BH", steps=10, lr=0.1)
    before, after = (np.linalg.norm(s, axis=1) for s in (bh.snapshots[0], bh.snapshots[-1]))
    assert (after < before - 1e-6).any()  # the raw-feature triplet also shrinks norms


def test_gradient_fields_am0_is_tangent_and_triplet_is_not():
    field = toy.gradient_fields(steps=7)
    r_hat = field.points / np.linalg.norm(field.points, axis=1, keepdims=True)
    am0 = next(v for k, v in field.fields.items() if k.startswith("AM0 "))
    trip = next(v for k, v in field.fields.items() if k.startswith("triplet"))
    assert np.abs((am0 * r_hat).sum(1)).max() < 1e-12
    assert np.abs((trip * r_hat).sum(1)).max() > 1e-2


def test_radial_shares_leave_out_samples_without_gradient():
    # batch hard's hinge is satisfied for most samples: their zero gradient has no direction (was 0/0 = NaN)
    from reid.toys.joint_am_triplet import _radial_shares

    f = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    g = torch.tensor([[0.5, 0.0], [0.0, 0.0], [0.0, 0.0]])  # one purely radial change, two zeros
    shares = _radial_shares(f, g)
    assert torch.isfinite(shares).all() and shares.tolist() == [1.0]
    assert _radial_shares(f, torch.zeros_like(f)).tolist() == [0.0]
    tangent = _radial_shares(f.double(), torch.tensor([[0.0, 1.0], [1.0, 0.0], [4.0, -3.0]]).double())
    assert torch.allclose(tangent, torch.zeros(3, dtype=torch.float64), atol=1e-15)
