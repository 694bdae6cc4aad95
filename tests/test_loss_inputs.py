"""Every loss on bad and on low-precision input: NaN / Inf, empty batches, bf16 autocast on the CPU.

One table (``LOSSES``) builds each loss with a small valid batch: 8 samples of 16 dims, 4 identities
x 2 images, 2 cameras. The tests then poison one input at a time, or run the batch under CPU bf16
autocast (the CUDA path's precision, exercised where torch supports it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import pytest
import torch

from reid.errors import ConfigError, NonFiniteError
from reid.losses import smc_ecd as S
from reid.losses.adaptive_margin import AdaptiveMarginLoss
from reid.losses.angular_margin import AngularMarginLoss, AttributeAngularMarginLoss, joint_loss
from reid.losses.centers import CameraCenters, CenterLoss
from reid.losses.contrastive import ContrastiveLoss, TripletLoss
from reid.losses.support_neighbor import SupportNeighborLoss
from reid.losses.triplet import BatchAllTripletLoss, BatchHardTripletLoss
from reid.losses.view_adaptation import SimilarityDiscriminatorLoss, ViewConfusionLoss, ViewDiscriminatorLoss

N, D, IDS, CAMS = 8, 16, 4, 2
LABELS = torch.arange(IDS).repeat_interleave(N // IDS)
CAMIDS = torch.arange(N) % CAMS
PAIRS_SAME = torch.tensor([True, False, True, False])


def _features(seed: int = 0, n: int = N, d: int = D) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


@dataclass
class Case:
    build: Callable[[], torch.nn.Module]
    inputs: Callable[[], dict]  # keyword inputs; float tensors are the ones poisoned / cast
    call: Callable[[torch.nn.Module, dict], torch.Tensor]


def _labelled(loss_kw: dict | None = None, camids: bool = False):
    def inputs():
        out = {"features": _features(), "labels": LABELS}
        if camids:
            out["camids"] = CAMIDS
        return out

    return inputs


def _call_features(m, x):
    return m(x["features"], x["labels"], *([x["camids"]] if "camids" in x else []))


def _call_with_logits(m, x):
    return m(x["features"], x["labels"], x["camids"], logits=x["logits"])


def _with_logits():
    return {"features": _features(), "labels": LABELS, "camids": CAMIDS, "logits": _features(1, N, IDS)}


def _pairs():
    return {"f_a": _features(2, 4), "f_b": _features(3, 4), "same": PAIRS_SAME}


def _views():
    return {"source_logits": _features(4, 5, 1)[:, 0], "target_logits": _features(5, 3, 1)[:, 0]}


def _similarity():
    d = _features(6, 4, 4).abs()
    return {"pair_logits": _features(7, 4, 4), "d": d, "same": torch.eye(4, dtype=torch.bool)}


def _trained_centres(loss_cls, **kw):
    def build():
        centres = CameraCenters(IDS, CAMS, D)
        centres.update(_features(9), LABELS, CAMIDS)  # seen, non-zero sub-centres
        return loss_cls(centres, **kw)

    return build


LOSSES: dict[str, Case] = {
    "CenterLoss": Case(lambda: CenterLoss(IDS, D), _labelled(), _call_features),
    "SMCLoss": Case(_trained_centres(S.SMCLoss), _labelled(camids=True), _call_features),
    "ECDLoss": Case(_trained_centres(S.ECDLoss), _labelled(camids=True), _call_features),
    "IntraGCLoss": Case(_trained_centres(S.IntraGCLoss), _labelled(camids=True), _call_features),
    "InterGCLoss": Case(_trained_centres(S.InterGCLoss), _labelled(camids=True), _call_features),
    "SMCECDLoss": Case(lambda: S.SMCECDLoss(IDS, CAMS, D, lambda_smc=0.1, lambda_ecd=0.1), _with_logits, _call_with_logits),
    "GCLLoss": Case(lambda: S.GCLLoss(IDS, CAMS, D, lambda_intra=0.1, lambda_inter=0.1), _with_logits, _call_with_logits),
    "SoftmaxCenterLoss": Case(lambda: S.SoftmaxCenterLoss(IDS, D, lambda_center=0.1), _with_logits, _call_with_logits),
    "AdaptiveMarginLoss": Case(lambda: AdaptiveMarginLoss(8.0, 2.1), _pairs, lambda m, x: m(x["f_a"], x["f_b"], x["same"])),
    "ContrastiveLoss": Case(lambda: ContrastiveLoss(1.0), _pairs, lambda m, x: m(x["f_a"], x["f_b"], x["same"])),
    "TripletLoss": Case(
        lambda: TripletLoss(0.3), lambda: {"anchor": _features(2, 4), "positive": _features(3, 4), "negative": _features(4, 4)},
        lambda m, x: m(x["anchor"], x["positive"], x["negative"]),
    ),
    "BatchHardTripletLoss": Case(lambda: BatchHardTripletLoss(0.3), _labelled(), _call_features),
    "BatchAllTripletLoss": Case(lambda: BatchAllTripletLoss(0.3), _labelled(), _call_features),
    "SupportNeighborLoss": Case(lambda: SupportNeighborLoss(4, 30.0, 0.1), _labelled(), _call_features),
    "AngularMarginLoss": Case(lambda: AngularMarginLoss(in_features=D, num_classes=IDS, scale=30.0, margin=0.5), _labelled(), _call_features),
    "AttributeAngularMarginLoss": Case(
        lambda: AttributeAngularMarginLoss([2, 3], 30.0, 0.5, slice_dim=4),
        lambda: {"attr_features": _features(8, N, 8), "attr_labels": torch.stack([LABELS % 2, LABELS % 3], 1)},
        lambda m, x: m(x["attr_features"], x["attr_labels"]),
    ),
    "JointAngularTripletLoss": Case(lambda: joint_loss("AM0BH", D, IDS, scale=30.0), _labelled(), _call_features),
    "ViewDiscriminatorLoss": Case(ViewDiscriminatorLoss, _views, lambda m, x: m(x["source_logits"], x["target_logits"])),
    "ViewConfusionLoss": Case(ViewConfusionLoss, _views, lambda m, x: m(x["source_logits"], x["target_logits"])),
    "SimilarityDiscriminatorLoss": Case(
        lambda: SimilarityDiscriminatorLoss(2.0, 2.5, adaptive=True), _similarity, lambda m, x: m(x["pair_logits"], x["d"], x["same"])
    ),
}  # fmt: skip


def _float_inputs(case: Case) -> list[str]:
    return [k for k, v in case.inputs().items() if isinstance(v, torch.Tensor) and v.is_floating_point()]


POISONED = [(name, key, bad) for name, case in LOSSES.items() for key in _float_inputs(case) for bad in ("nan", "inf")]


@pytest.mark.parametrize("name, key, bad", POISONED, ids=[f"{n}-{k}-{b}" for n, k, b in POISONED])
def test_a_non_finite_input_raises_naming_the_loss_and_moves_no_buffer(name, key, bad):
    case = LOSSES[name]
    loss = case.build().train()
    buffers = {k: v.clone() for k, v in loss.state_dict().items()}
    x = case.inputs()
    x[key] = x[key].clone()
    x[key].view(-1)[1] = float(bad)
    with pytest.raises(NonFiniteError, match=rf"^{name}: {key} holds"):
        case.call(loss, x)
    for k, v in loss.state_dict().items():  # the centres (and "seen" masks) did not move
        assert torch.equal(v, buffers[k]), k
    case.call(loss, case.inputs())  # and the module still works on the next, finite batch


def test_the_centre_update_itself_refuses_a_non_finite_batch():
    centres = CameraCenters(IDS, CAMS, D)
    x = _features()
    x[0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match="the centre update"):
        centres.update(x, LABELS, CAMIDS)
    assert not centres.centers.any() and not centres.seen.any()


@pytest.mark.parametrize("loss_cls", [ViewDiscriminatorLoss, ViewConfusionLoss])
def test_view_losses_refuse_an_empty_batch(loss_cls):
    with pytest.raises(ConfigError, match="source_logits is empty"):
        loss_cls()(torch.zeros(0), torch.zeros(3))
    with pytest.raises(ConfigError, match="target_logits is empty"):
        loss_cls()(torch.zeros(3, 1), torch.zeros(0, 1))


@pytest.mark.parametrize("at_centres", [False, True])
def test_inter_gcl_with_fresh_centres_has_a_finite_gradient(at_centres):
    """Fresh (zero, unseen) centres — and features sitting exactly on seen zero centres — give 0 with a 0 gradient."""
    centres = CameraCenters(IDS, CAMS, D)
    if at_centres:
        centres.mark_seen(LABELS, CAMIDS)
        centres.mark_seen(LABELS, 1 - CAMIDS)
    x = (torch.zeros(N, D) if at_centres else _features()).requires_grad_()
    loss = S.InterGCLoss(centres).eval()(x, LABELS, CAMIDS)
    loss.backward()
    assert float(loss.detach()) == 0.0 and torch.isfinite(x.grad).all() and not x.grad.any()


# -- bf16 autocast on the CPU ------------------------------------------------------------------

#: |L_bf16 - L_fp32| <= RTOL * |L_fp32| + ATOL. bf16 keeps 8 significant bits (relative rounding
#: 2^-9 ~ 0.2%); a loss sums distances and logits built from a few such roundings, and a
#: margin/hinge or soft-max can amplify them, so the stated bound is 5% relative + 0.05 absolute.
#: Observed on this table (torch 2.14, CPU): at most 2.3% relative (batch-all triplet, bf16 inputs)
#: and 0.11 absolute on a loss of 24.6 (support neighbour); most losses within 0.5%.
RTOL, ATOL = 0.05, 0.05


@pytest.mark.parametrize("inputs_in_bf16", [False, True], ids=["fp32-inputs", "bf16-inputs"])
@pytest.mark.parametrize("name", list(LOSSES))
def test_every_loss_runs_under_cpu_bf16_autocast(name, inputs_in_bf16):
    """No dtype error, a finite gradient, and the value within the stated tolerance of float32.

    ``fp32-inputs``: float32 tensors inside ``torch.autocast("cpu", bfloat16)`` (matmuls run in
    bf16); ``bf16-inputs``: the inputs themselves in bf16, as a bf16 network would hand them over.
    The float32 reference uses the same (rounded) input values.
    """
    case = LOSSES[name]
    x = case.inputs()
    floats = _float_inputs(case)
    if inputs_in_bf16:
        x = {k: v.bfloat16() if k in floats else v for k, v in x.items()}
    reference_inputs = {k: v.float() if k in floats else v for k, v in x.items()}
    loss = case.build().eval()  # eval: the centres do not move, so both calls see the same module
    reference = float(case.call(loss, reference_inputs))
    x = {k: v.detach().requires_grad_() if k in floats else v for k, v in x.items()}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = case.call(loss, x)
    value.float().backward()
    assert value.dim() == 0 and math.isfinite(float(value))
    for k in floats:
        assert x[k].grad is not None and torch.isfinite(x[k].grad).all(), k
        assert x[k].grad.dtype == x[k].dtype, k
    assert abs(float(value) - reference) <= RTOL * abs(reference) + ATOL, (float(value), reference)


def test_the_table_covers_every_loss_class():
    import inspect

    import reid.losses as losses_pkg

    found = set()
    for module_name in ("centers", "smc_ecd", "adaptive_margin", "angular_margin", "contrastive", "triplet",
                        "support_neighbor", "view_adaptation"):  # fmt: skip
        module = getattr(__import__(f"reid.losses.{module_name}", fromlist=["x"]), "__name__")
        mod = __import__(module, fromlist=["x"])
        for cls_name, cls in vars(mod).items():
            if inspect.isclass(cls) and issubclass(cls, torch.nn.Module) and cls.__module__ == module:
                if not cls_name.startswith("_") and cls_name.endswith("Loss"):
                    found.add(cls_name)
    assert losses_pkg is not None and found <= set(LOSSES), sorted(found - set(LOSSES))
