"""Paper 000 (SMC + ECD) and its baselines: centre update, SMC, ECD, GCL, the Eq. 1 objectives,
and the derived gradients of reid.losses.printed_gradients (Appendix A lost its equations)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch.autograd import gradcheck

from reid.errors import ConfigError
from reid.losses import (
    CameraCenters,
    CenterLoss,
    ECDLoss,
    GCLLoss,
    InterGCLoss,
    IntraGCLoss,
    SMCECDLoss,
    SMCLoss,
    SoftmaxCenterLoss,
    center_update,
)
from reid.losses.printed_gradients import center_loss_grad, ecd_grad, smc_grad
from reid.losses.smc_ecd import ecd_terms

F64 = torch.float64


def _set_centers(centers: CameraCenters, table: dict[tuple[int, int], tuple[float, ...]]) -> CameraCenters:
    """Place sub-centres by hand and mark exactly those cells as seen."""
    with torch.no_grad():
        for (y, j), value in table.items():
            centers.centers[y, j] = torch.tensor(value, dtype=centers.centers.dtype)
            centers.seen[y, j] = True
    return centers


def _random_setup(seed: int = 0, m: int = 8, dim: int = 5, num_classes: int = 4, num_cameras: int = 3):
    """Features, labels, camids and sub-centres moved by a few random updates (float64)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(m, dim, generator=gen, dtype=F64)
    labels = torch.randint(0, num_classes, (m,), generator=gen)
    labels[:2] = torch.tensor([0, 1])  # at least two identities
    camids = torch.randint(0, num_cameras, (m,), generator=gen)
    centers = CameraCenters(num_classes, num_cameras, dim, alpha=0.5).double()
    warm = torch.randn(40, dim, generator=gen, dtype=F64)
    centers.update(warm, torch.randint(0, num_classes, (40,), generator=gen), torch.randint(0, num_cameras, (40,), generator=gen))
    return x, labels, camids, centers


# ------------------------------------------------------------------------------ centre update


def test_center_update_hand_worked():
    # Centres start at 0, α = 0.5.  Class 0 gets x = (2, 0) and (0, 4), class 1 gets (3, 3).
    # Class 0: Δc = [(0−2, 0−0) + (0−0, 0−4)] / (1 + 2) = (−2/3, −4/3);  c ← 0 − 0.5·Δc = (1/3, 2/3)
    # Class 1: Δc = (0−3, 0−3) / (1 + 1) = (−1.5, −1.5);                  c ← (0.75, 0.75)
    # Class 2: no sample, Δc = 0, stays at 0.
    centers = torch.zeros(3, 2, dtype=F64)
    x = torch.tensor([[2.0, 0.0], [0.0, 4.0], [3.0, 3.0]], dtype=F64)
    counts = center_update(centers, x, torch.tensor([0, 0, 1]), alpha=0.5)
    expected = torch.tensor([[1 / 3, 2 / 3], [0.75, 0.75], [0.0, 0.0]], dtype=F64)
    torch.testing.assert_close(centers, expected)
    assert counts.tolist() == [2.0, 1.0, 0.0]


def test_center_loss_value_then_update_in_forward():
    # ½ Σ ‖x_i − c_{y_i}‖² with zero centres: ½(4 + 16 + 18) = 19; mean over m = 3: 19/3.
    loss = CenterLoss(3, 2, alpha=0.5, reduction="sum").double()
    x = torch.tensor([[2.0, 0.0], [0.0, 4.0], [3.0, 3.0]], dtype=F64)
    labels = torch.tensor([0, 0, 1])
    assert float(loss(x, labels)) == pytest.approx(19.0)  # value from the centres *before* the update
    torch.testing.assert_close(loss.centers[0], torch.tensor([1 / 3, 2 / 3], dtype=F64))  # moved in forward
    loss.eval()
    before = loss.centers.clone()
    # eval(): no movement; c_0 = (1/3, 2/3), c_1 = (3/4, 3/4):
    # ½[(5/3)²+(2/3)² + (1/3)²+(10/3)² + (9/4)²+(9/4)²] = ½[29/9 + 101/9 + 81/8]
    expected = 0.5 * (29 / 9 + 101 / 9 + 81 / 8)
    assert float(CenterLoss(3, 2, reduction="mean").double().eval().forward(x, labels)) == pytest.approx(19.0 / 3)
    assert float(loss(x, labels)) == pytest.approx(expected)
    torch.testing.assert_close(loss.centers, before)


def test_camera_centers_share_the_update_rule():
    # CameraCenters moves cell (y, g) exactly as CenterLoss moves class y·K + g.
    x, labels, camids, _ = _random_setup(seed=3)
    cams = CameraCenters(4, 3, 5, alpha=0.3).double()
    flat = CenterLoss(12, 5, alpha=0.3).double()
    for _ in range(3):
        cams.update(x, labels, camids)
        flat.update_centers(x, labels * 3 + camids)
        x = x + 0.1
    torch.testing.assert_close(cams.centers.view(12, 5), flat.centers)
    expected_seen = torch.zeros(4, 3, dtype=torch.bool)
    expected_seen[labels, camids] = True
    assert torch.equal(cams.seen, expected_seen)
    assert cams.num_seen_cameras().tolist() == expected_seen.sum(1).tolist()


def test_update_in_forward_only_when_training():
    x, labels, camids, centers = _random_setup()
    smc = SMCLoss(centers)
    before = centers.centers.clone()
    smc.eval()(x, labels, camids)
    assert torch.equal(centers.centers, before)
    SMCLoss(centers, update_in_forward=False).train()(x, labels, camids)
    assert torch.equal(centers.centers, before)
    value = smc.train()(x, labels, camids)
    assert not torch.equal(centers.centers, before)  # moved ...
    assert float(value) == pytest.approx(float(SMCLoss(_reset(centers, before)).eval()(x, labels)))  # ... after the value


def _reset(centers: CameraCenters, table: torch.Tensor) -> CameraCenters:
    with torch.no_grad():
        centers.centers.copy_(table)
    return centers


# ------------------------------------------------------------------------------ SMC


def test_smc_hand_worked_and_meta_center_scale():
    # Identity 0: c^(0) = (1, 0), c^(1) = (0, 1) seen; c^(2) = (5, 5) placed but never seen.
    # Meta-centre = (1, 0) + (0, 1) = (1, 1) = s·(unweighted mean) with s = 2 (not N, the image count).
    # x = (3, 1):  ½ ‖(3, 1) − (1, 1)‖² = ½·4 = 2.
    centers = _set_centers(CameraCenters(1, 3, 2).double(), {(0, 0): (1.0, 0.0), (0, 1): (0.0, 1.0)})
    with torch.no_grad():
        centers.centers[0, 2] = torch.tensor([5.0, 5.0], dtype=F64)
    labels = torch.tensor([0])
    meta = centers.meta_centers(labels)
    torch.testing.assert_close(meta, torch.tensor([[1.0, 1.0]], dtype=F64))
    s = centers.num_seen_cameras(labels)
    torch.testing.assert_close(meta, s.unsqueeze(1) * centers.centers[0, :2].mean(0, keepdim=True))
    x = torch.tensor([[3.0, 1.0]], dtype=F64)
    assert float(SMCLoss(centers, reduction="sum").eval()(x, labels)) == pytest.approx(2.0)


def test_smc_requires_camids_when_it_moves_centres():
    x, labels, _, centers = _random_setup()
    with pytest.raises(ConfigError, match="camids"):
        SMCLoss(centers).train()(x, labels)


# ------------------------------------------------------------------------------ ECD


def _ecd_example():
    # Identity 0: c^(0) = (0, 0), c^(1) = (2, 0);  identity 1: c^(0) = (0, 3) (c^(1) never seen).
    return _set_centers(
        CameraCenters(2, 2, 2).double(), {(0, 0): (0.0, 0.0), (0, 1): (2.0, 0.0), (1, 0): (0.0, 3.0)}
    )


def test_ecd_hand_worked():
    centers = _ecd_example()
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=F64)
    labels = torch.tensor([0, 1])
    # Anchor 0 (id 0): class range = ‖(1,0)−(0,0)‖² + ‖(1,0)−(2,0)‖² = 1 + 1 = 2;
    #   other identity 1: 1/‖(1,0)−(0,3)‖² = 1/10;   term = ½ · 2 · 0.1 = 0.1
    # Anchor 1 (id 1): class range = ‖(0,2)−(0,3)‖² = 1;
    #   other identity 0: 1/‖(0,2)‖² + 1/‖(−2,2)‖² = 1/4 + 1/8 = 0.375;   term = ½ · 1 · 0.375 = 0.1875
    # Σ = 0.2875, mean = 0.14375   (eps=0: only machine-ε is added to the squared distances)
    ecd = ECDLoss(centers, eps=0.0, reduction="sum").eval()
    assert float(ecd(x, labels)) == pytest.approx(0.2875)
    assert float(ECDLoss(centers, eps=0.0).eval()(x, labels)) == pytest.approx(0.14375)


def test_ecd_sum_over_samples_vs_distinct_identities():
    centers = _ecd_example()
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]], dtype=F64)
    labels = torch.tensor([0, 1, 0])
    # Anchor 0: unchanged, 0.1.
    # Anchor 1: identity 0 appears twice as t (n_0 = 2): B = 2·0.375 = 0.75 → ½·1·0.75 = 0.375
    #           counted once (distinct_identities):            B = 0.375 → 0.1875
    # Anchor 2 (x = (1,1), id 0): class range = ‖(1,1)‖² + ‖(−1,1)‖² = 4; 1/‖(1,−2)‖² = 0.2 → ½·4·0.2 = 0.4
    # printed Σ over t: 0.1 + 0.375 + 0.4 = 0.875;   distinct: 0.1 + 0.1875 + 0.4 = 0.6875
    assert float(ECDLoss(centers, eps=0.0, reduction="sum").eval()(x, labels)) == pytest.approx(0.875)
    distinct = ECDLoss(centers, eps=0.0, distinct_identities=True, reduction="sum").eval()
    assert float(distinct(x, labels)) == pytest.approx(0.6875)


def test_ecd_excludes_own_identity_so_an_anchor_on_its_sub_centre_is_finite():
    # x_0 sits exactly on its own sub-centre c^(0)_0 = (0, 0) and a second image of identity 0 is in the
    # batch: the printed t ≠ i would add 1/‖x_0 − c^(0)_0‖² = 1/0. The Fig. 6 reading skips identity 0.
    centers = _ecd_example()
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]], dtype=F64, requires_grad=True)
    labels = torch.tensor([0, 0, 1])
    loss = ECDLoss(centers, eps=0.0, reduction="sum").eval()(x, labels)
    loss.backward()
    assert math.isfinite(loss.item()) and torch.isfinite(x.grad).all()
    # Anchor 0: class range = 0 + 4 = 4; 1/‖(0,−3)‖² = 1/9 → ½·4/9. Anchor 1: 0.1.
    # Anchor 2: identity 0 twice → 2·0.375 = 0.75 → 0.375.
    assert loss.item() == pytest.approx(2 / 9 + 0.1 + 0.375)


def test_ecd_single_identity_batch_is_zero():
    x, _, camids, centers = _random_setup()
    labels = torch.zeros(x.shape[0], dtype=torch.long)
    x = x.requires_grad_()
    loss = ECDLoss(centers).eval()(x, labels)
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(x.grad, torch.zeros_like(x))


def test_ecd_epsilon_keeps_coincident_other_centre_finite():
    # x lies exactly on *another* identity's sub-centre: 1/(0 + ε) with ε = eps·mean‖c‖² — finite.
    centers = _ecd_example()
    x = torch.tensor([[0.0, 3.0], [0.0, 2.0]], dtype=F64, requires_grad=True)
    for dtype in (F64, torch.float32):
        xx = x.detach().to(dtype).requires_grad_()
        loss = ECDLoss(centers.to(dtype), eps=1e-3, reduction="sum").eval()(xx, torch.tensor([0, 1]))
        loss.backward()
        assert math.isfinite(loss.item()) and torch.isfinite(xx.grad).all()
    # mean ‖c‖² over the three seen sub-centres = (0 + 4 + 9)/3 → ε = 1e-3·13/3.
    centers.double()
    # anchor 0: class range = ‖(0,3)‖² + ‖(−2,3)‖² = 9 + 13 = 22;  B = 1/ε  → ½·22/ε, dominating.
    eps_abs = 1e-3 * 13 / 3 + torch.finfo(F64).eps
    value = float(ECDLoss(centers, eps=1e-3, reduction="sum").eval()(x.detach(), torch.tensor([0, 1])))
    anchor1 = 0.5 * 1 * (1 / (4 + eps_abs) + 1 / (8 + eps_abs))
    assert value == pytest.approx(0.5 * 22 / eps_abs + anchor1)


def test_zero_features_and_zero_centres_are_finite():
    centers = CameraCenters(3, 2, 4).double()
    labels, camids = torch.tensor([0, 1, 2, 0]), torch.tensor([0, 1, 0, 1])
    centers.mark_seen(labels, camids)  # all sub-centres seen and still at the origin
    x = torch.zeros(4, 4, dtype=F64, requires_grad=True)
    for make in (SMCLoss, ECDLoss, IntraGCLoss, InterGCLoss):
        x.grad = None
        loss = make(centers).eval()(x, labels, camids)
        loss.backward()
        assert loss.item() == 0.0 and torch.isfinite(x.grad).all(), make.__name__


def test_no_seen_centre_at_all_gives_zero():
    # Before the first update nothing is seen: no meta-centre term beyond ‖x‖², ECD and inter-GCL 0.
    centers = CameraCenters(2, 2, 3).double()
    x = torch.randn(4, 3, dtype=F64, generator=torch.Generator().manual_seed(0))
    labels, camids = torch.tensor([0, 1, 0, 1]), torch.tensor([0, 0, 1, 1])
    assert float(ECDLoss(centers).eval()(x, labels)) == 0.0
    assert float(InterGCLoss(centers).eval()(x, labels, camids)) == 0.0
    assert float(SMCLoss(centers, reduction="sum").eval()(x, labels)) == pytest.approx(0.5 * float(x.pow(2).sum()))


# ------------------------------------------------------------------------------ GCL (reconstruction)


def test_gcl_hand_worked():
    centers = _ecd_example()
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=F64)
    labels, camids = torch.tensor([0, 1]), torch.tensor([0, 0])
    # intra: ½‖(1,0) − c^(0)_0‖² + ½‖(0,2) − c^(0)_1‖² = ½·1 + ½·1 = 1
    assert float(IntraGCLoss(centers, reduction="sum").eval()(x, labels, camids)) == pytest.approx(1.0)
    # inter: class range × 1/Σ_{u, j≠g_i, seen} ‖x_i − c^(j)_u‖
    #   anchor 0 (g=0): only c^(1)_0 = (2,0) has j ≠ 0 and is seen: distance 1 → ½·2/1 = 1
    #   anchor 1 (g=0): again only c^(1)_0: ‖(0,2) − (2,0)‖ = 2√2 → ½·1/(2√2) ≈ 0.1767767
    inter = float(InterGCLoss(centers, reduction="sum").eval()(x, labels, camids))
    assert inter == pytest.approx(1.0 + 0.5 / (2 * math.sqrt(2)))


def test_gcl_needs_camids():
    x, labels, _, centers = _random_setup()
    with pytest.raises(ConfigError, match="camids"):
        IntraGCLoss(centers).eval()(x, labels)


# ------------------------------------------------------------------------------ Eq. 1 objectives


def test_smc_ecd_objective_is_eq1_and_updates_once():
    x, labels, camids, centers = _random_setup(seed=1)
    logits = torch.randn(x.shape[0], 4, dtype=F64, generator=torch.Generator().manual_seed(9))
    total = SMCECDLoss(4, 3, 5, lambda_smc=0.1, lambda_ecd=0.01).double()
    total.centers.load_state_dict(centers.state_dict())
    ref_centers = CameraCenters(4, 3, 5).double()
    ref_centers.load_state_dict(centers.state_dict())
    value = total(x, labels, camids, logits=logits)
    # L = L_softmax + λ_SMC·L_SMC + λ_ECD·L_ECD with the centres before this iteration's update
    expected = (
        F.cross_entropy(logits, labels)
        + 0.1 * SMCLoss(ref_centers).eval()(x, labels)
        + 0.01 * ECDLoss(ref_centers).eval()(x, labels)
    )
    torch.testing.assert_close(value, expected)
    assert set(total.last_stats) == {"softmax", "smc", "ecd", "total"}
    ref_centers.update(x, labels, camids)  # exactly one update per training forward
    torch.testing.assert_close(total.centers.centers, ref_centers.centers)
    assert "centers.centers" in total.state_dict() and "centers.seen" in total.state_dict()


def test_objectives_drop_zero_weight_terms_and_check_logits():
    x, labels, camids, _ = _random_setup()
    logits = torch.zeros(x.shape[0], 4, dtype=F64)
    smc_only = SMCECDLoss(4, 3, 5, lambda_ecd=0.0).double()
    smc_only(x, labels, camids, logits=logits)
    assert "ecd" not in smc_only.last_stats
    with pytest.raises(ConfigError, match="logits"):
        smc_only(x, labels, camids, logits=logits[:3])
    center = SoftmaxCenterLoss(4, 5, lambda_center=0.5).double()
    value = center(x, labels, logits=logits)
    assert float(value) == pytest.approx(math.log(4) + 0.5 * 0.5 * float(x.pow(2).sum(1).mean()))
    gcl = GCLLoss(4, 3, 5).double()
    gcl(x, labels, camids, logits=logits)
    assert set(gcl.last_stats) == {"softmax", "intra_gcl", "inter_gcl", "total"}


def test_bad_configuration_is_a_config_error():
    with pytest.raises(ConfigError, match="alpha"):
        CameraCenters(3, 2, 4, alpha=0.0)
    with pytest.raises(ConfigError, match="reduction"):
        CenterLoss(3, 4, reduction="avg")
    with pytest.raises(ConfigError, match="relabel"):
        CenterLoss(3, 4)(torch.zeros(2, 4), torch.tensor([0, 3]))
    with pytest.raises(ConfigError, match="feat_dim"):
        CenterLoss(3, 4)(torch.zeros(2, 5), torch.tensor([0, 1]))
    with pytest.raises(ConfigError, match="cameras"):
        SMCLoss(CameraCenters(3, 2, 4))(torch.zeros(2, 4), torch.tensor([0, 1]), torch.tensor([0, 2]))
    with pytest.raises(ConfigError, match="CameraCenters"):
        SMCLoss(CenterLoss(3, 4))  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ gradients


@pytest.mark.parametrize(
    "make",
    [
        lambda c: SMCLoss(c),
        lambda c: ECDLoss(c),
        lambda c: ECDLoss(c, distinct_identities=True, reduction="sum"),
        lambda c: IntraGCLoss(c),
        lambda c: InterGCLoss(c),
    ],
    ids=["smc", "ecd", "ecd-distinct", "intra-gcl", "inter-gcl"],
)
def test_gradcheck_sub_centre_losses(make):
    x, labels, camids, centers = _random_setup(seed=2)
    loss = make(centers).eval()
    assert gradcheck(lambda t: loss(t, labels, camids), (x.requires_grad_(),))


def test_gradcheck_center_loss_and_objectives():
    x, labels, camids, _ = _random_setup(seed=4)
    logits = torch.randn(x.shape[0], 4, dtype=F64, generator=torch.Generator().manual_seed(5), requires_grad=True)
    center = CenterLoss(4, 5).double()
    center.update_centers(x.detach() + 0.5, labels)
    center.eval()
    assert gradcheck(lambda t: center(t, labels), (x.clone().requires_grad_(),))
    for total in (
        SMCECDLoss(4, 3, 5, lambda_smc=0.1, lambda_ecd=0.1).double(),
        GCLLoss(4, 3, 5, lambda_intra=0.1, lambda_inter=0.1).double(),
        SoftmaxCenterLoss(4, 5, lambda_center=0.1).double(),
    ):
        total.update_centers(x.detach() * 0.5, labels, camids)
        total.eval()
        # fast_mode: a random-direction check (the full Jacobian of 72 inputs is slow and adds nothing here)
        assert gradcheck(lambda t, z: total(t, labels, camids, logits=z), (x.clone().requires_grad_(), logits), fast_mode=True)


@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("distinct", [False, True])
def test_derived_gradients_equal_autograd(reduction, distinct):
    x, labels, camids, centers = _random_setup(seed=5, m=12, num_classes=5)
    xg = x.clone().requires_grad_()
    ECDLoss(centers, distinct_identities=distinct, reduction=reduction).eval()(xg, labels).backward()
    torch.testing.assert_close(xg.grad, ecd_grad(x, labels, centers, distinct_identities=distinct, reduction=reduction))
    xg.grad = None
    SMCLoss(centers, reduction=reduction).eval()(xg, labels).backward()
    torch.testing.assert_close(xg.grad, smc_grad(x, labels, centers, reduction=reduction))
    center = CenterLoss(5, 5, reduction=reduction).double()
    center.update_centers(x + 1.0, labels)
    xg.grad = None
    center.eval()(xg, labels).backward()
    torch.testing.assert_close(xg.grad, center_loss_grad(x, labels, center.centers, reduction=reduction))


def test_ecd_gradient_float32_matches_float64():
    x, labels, _, centers = _random_setup(seed=6)
    g64 = ecd_grad(x, labels, centers)
    c32 = CameraCenters(4, 3, 5)  # float32 buffers; load_state_dict casts the float64 values
    c32.load_state_dict(centers.state_dict())
    g32 = ecd_grad(x.float(), labels, c32)
    torch.testing.assert_close(g32.double(), g64, rtol=1e-4, atol=1e-4)


def _near_foreign_sub_centre(rel: float, dim: int = 2048, seed: int = 0):
    """ReLU-like pool5 features (all coordinates >= 0, norm ~26) and sub-centres of 4 identities x
    3 cameras; anchor 0 (identity 0) sits at squared distance ``rel·‖c‖²`` from identity 1's
    first sub-centre: the situation where ECD's 1/d² is largest (issue 11)."""
    gen = torch.Generator().manual_seed(seed)
    table = torch.rand(4, 3, dim, generator=gen, dtype=F64)
    centers = CameraCenters(4, 3, dim).double()
    centers.centers.copy_(table)
    centers.seen.fill_(True)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    x = table[labels, 0] + 0.05 * torch.randn(8, dim, generator=gen, dtype=F64)
    scale = table.pow(2).sum(-1).mean()
    x[0] = table[1, 0] + torch.randn(dim, generator=gen, dtype=F64) * (rel * scale / dim).sqrt()
    return x, labels, centers


@pytest.mark.parametrize("rel", [1e-5, 1e-6])
def test_ecd_float32_next_to_a_foreign_sub_centre_matches_float64(rel):
    # With d² = ‖x‖² + ‖c‖² − 2x·c in float32 the anchor's ECD term lost 4% (rel=1e-5) and 12%
    # (rel=1e-6) of its value, twice that of its gradient, at eps=1e-6; summed differences keep
    # float32 within a few 1e-5 of float64.
    x, labels, c64 = _near_foreign_sub_centre(rel)
    c32 = CameraCenters(4, 3, x.shape[1])
    c32.load_state_dict(c64.state_dict())
    grads, values = {}, {}
    for name, xx, centers in (("f64", x.clone(), c64), ("f32", x.float(), c32)):
        xx.requires_grad_(True)
        anchor = ecd_terms(xx, labels, centers, eps=1e-6)[0]
        anchor.backward()
        values[name], grads[name] = anchor.detach().double(), xx.grad[0].double()
    assert float((values["f32"] - values["f64"]).abs() / values["f64"]) < 2e-4
    assert float((grads["f32"] - grads["f64"]).norm() / grads["f64"].norm()) < 2e-4
    derived = ecd_grad(x.float(), labels, c32, eps=1e-6)[0].double()  # the closed form, too
    assert float((derived - grads["f64"]).norm() / grads["f64"].norm()) < 2e-4


def test_ecd_default_epsilon_barely_moves_the_loss():
    # Eq. 4 has no ε: the guard should not change ECD. eps=1e-3 (the former default) shifted it by
    # ~0.2% on this batch, the default eps=1e-6 by ~2e-6.
    x, labels, centers = _near_foreign_sub_centre(1.0)  # anchor 0 as far from identity 1 as any other
    exact = float(ECDLoss(centers, eps=0.0).eval()(x, labels))
    shift = {eps: 1 - float(ECDLoss(centers, eps=eps).eval()(x, labels)) / exact for eps in (1e-3, 1e-6)}
    assert 1e-3 < shift[1e-3] < 3e-3
    assert 0 < shift[1e-6] < 1e-5
    assert ECDLoss(centers).eps == 1e-6 and SMCECDLoss(4, 3, 8).ecd_eps == 1e-6


def test_meta_centre_sums_the_seen_cameras_whatever_their_labels():
    # Eq. 2 prints "1 <= g_i <= s_i" and sums j = 1..s_i; an identity seen by cameras 2 and 5 only
    # (s = 2) must sum exactly those two sub-centres (errata: 000-cameras-per-identity).
    centers = _set_centers(CameraCenters(2, 6, 2).double(), {(0, 1): (1.0, 0.0), (0, 4): (0.0, 2.0), (1, 0): (5.0, 5.0)})
    assert centers.num_seen_cameras(torch.tensor([0, 1])).tolist() == [2, 1]
    torch.testing.assert_close(centers.meta_centers(torch.tensor([0])), torch.tensor([[1.0, 2.0]], dtype=F64))
    # SMC on an image of identity 0 seen by camera 5 (label 4): pulled to (1, 2), not to c^(1) + c^(2)
    x = torch.tensor([[3.0, 2.0]], dtype=F64)
    assert float(SMCLoss(centers, reduction="sum").eval()(x, torch.tensor([0]))) == pytest.approx(0.5 * 4.0)


def test_full_recipe_resnet50_reaches_7x7_at_224():
    # Table I prints stride 1 for conv4 and conv5; its own sizes 28 -> 14 -> 7 need stride 2
    # (errata: 000-table1-strides). The full recipe's ResNet-50 ends at 7x7 for 224x224 input.
    from reid.models import build_model
    from reid.recipes import load_recipe

    cfg = load_recipe("smc_ecd", "full")
    kw = {k: v for k, v in cfg["model"].items() if k not in ("name", "classifier", "attribute_q")}
    model = build_model(cfg["model"]["name"], **{**kw, "weights": None}, num_classes=751).eval()
    with torch.no_grad():
        fmap = model.backbone(torch.zeros(1, 3, cfg["input"]["height"], cfg["input"]["width"]))
    assert tuple(fmap.shape[1:]) == (2048, 7, 7)  # avg pool5 over [7x7] -> the 2048-d feature


# ------------------------------------------------------------------------------ properties


@given(seed=st.integers(0, 10_000), m=st.integers(2, 10))
def test_batch_permutation_invariance(seed, m):
    x, labels, camids, centers = _random_setup(seed=seed, m=m)
    perm = torch.randperm(m, generator=torch.Generator().manual_seed(seed + 1))
    for loss in (SMCLoss(centers), ECDLoss(centers), IntraGCLoss(centers), InterGCLoss(centers)):
        loss.eval()
        torch.testing.assert_close(loss(x, labels, camids), loss(x[perm], labels[perm], camids[perm]))


@given(seed=st.integers(0, 10_000), shift=st.floats(-5.0, 5.0))
def test_joint_translation_invariance_where_the_math_has_it(seed, shift):
    # Centre loss, intra-GCL and ECD (with eps = 0) depend only on differences x − c: shifting the
    # features *and* the centres by the same vector t leaves them unchanged. SMC does not: its
    # meta-centre Σ_j c^(j) moves by s_y·t, so x − c^(SMC) changes by (1 − s_y)·t.
    x, labels, camids, centers = _random_setup(seed=seed)
    t = torch.full((x.shape[1],), shift, dtype=F64)
    moved = CameraCenters(4, 3, 5).double()
    moved.load_state_dict(centers.state_dict())
    with torch.no_grad():
        moved.centers.add_(t)
    for make in (lambda c: IntraGCLoss(c), lambda c: ECDLoss(c, eps=0.0)):
        a, b = make(centers).eval()(x, labels, camids), make(moved).eval()(x + t, labels, camids)
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-8)
    s = centers.num_seen_cameras(labels).to(F64).unsqueeze(1)
    torch.testing.assert_close(
        (x + t) - moved.meta_centers(labels), (x - centers.meta_centers(labels)) + (1 - s) * t
    )
    center, shifted = CenterLoss(4, 5).double().eval(), CenterLoss(4, 5).double().eval()
    with torch.no_grad():
        center.centers.copy_(torch.randn(4, 5, dtype=F64))
        shifted.centers.copy_(center.centers + t)
    torch.testing.assert_close(center(x, labels), shifted(x + t, labels))


@pytest.mark.parametrize("name", ["center", "smc", "ecd", "intra", "inter", "smcecd", "gcl", "softmax-center"])
def test_training_forward_then_backward(name):
    # The centres move in place inside forward; backward must not need their old values.
    x, labels, camids, centers = _random_setup(seed=7)
    logits = torch.randn(x.shape[0], 4, dtype=F64, generator=torch.Generator().manual_seed(1))
    loss = {
        "center": lambda: CenterLoss(4, 5).double(),
        "smc": lambda: SMCLoss(centers),
        "ecd": lambda: ECDLoss(centers),
        "intra": lambda: IntraGCLoss(centers),
        "inter": lambda: InterGCLoss(centers),
        "smcecd": lambda: SMCECDLoss(4, 3, 5).double(),
        "gcl": lambda: GCLLoss(4, 3, 5).double(),
        "softmax-center": lambda: SoftmaxCenterLoss(4, 5).double(),
    }[name]().train()
    buffers = [b.clone() for b in loss.buffers() if b.is_floating_point()]
    xg = x.clone().requires_grad_()
    for _ in range(2):  # the second step sees seen, non-zero centres
        if name in ("smcecd", "gcl", "softmax-center"):
            value = loss(xg, labels, camids, logits=logits)
        elif name == "center":
            value = loss(xg, labels)
        else:
            value = loss(xg, labels, camids)
        value.backward()
    assert torch.isfinite(xg.grad).all()
    moved = [b for b in loss.buffers() if b.is_floating_point()]
    assert any(not torch.equal(a, b) for a, b in zip(buffers, moved))
