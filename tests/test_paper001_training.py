"""Paper 001's training pieces: the pair objective (margin scope, triplets, fixed margins), the
anchor-pair sampler's views, Table 5's networks, the initialisation scale and the recipe's
regulariser. Loss formulas themselves are tested in ``test_losses_001.py``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from reid.data.samplers import AnchorPairSampler
from reid.engine.objectives import DataInfo, PairObjective, StepContext, make_optimizer
from reid.errors import ConfigError
from reid.losses import AdaptiveMarginLoss, ContrastiveLoss, TripletLoss
from reid.losses.adaptive_margin import weight_decay_for
from reid.models import build_model
from reid.models.heads import ModelOutput
from reid.models.part_cnn import PartCNN, PlainConv, ResidualPair
from reid.recipes import load_recipe
from reid.toys.adaptive_margin import sampler_coverage

# ------------------------------------------------------------------------------ the objective


class Embed(nn.Module):
    """A linear 'network' so a step's loss can be recomputed by hand."""

    def __init__(self, dim_in=6, dim_out=4):
        super().__init__()
        self.lin = nn.Linear(dim_in, dim_out)
        self.feat_dim = dim_out

    def forward(self, x):
        f = self.lin(x)
        return ModelOutput(features=f, pooled=f)


def _objective(**loss):
    cfg = load_recipe("adaptive_margin", "smoke", {f"loss.{k}": v for k, v in loss.items()})
    obj = PairObjective(cfg, DataInfo(num_classes=10, num_cameras=2))
    model = Embed()
    obj.setup(model)
    return obj, model, cfg


def _batch(a=3, m=2, n=3, seed=0):
    sampler = AnchorPairSampler(np.repeat(np.arange(8), 4), np.tile([0, 1], 16), anchors=a, positives=m, negatives=n)
    pairs = torch.as_tensor(sampler.pair_index(), dtype=torch.long)
    images = torch.randn(a * (1 + m + n), 6, generator=torch.Generator().manual_seed(seed))
    return {"images": images, "pairs": pairs}


def _step(obj, model, cfg, batch):
    opt = make_optimizer(cfg, [{"params": list(model.parameters())}])
    return obj.train_step(model, batch, StepContext({"main": opt}, epoch=0, iteration=0))


@pytest.mark.parametrize("scope", ["anchor", "batch"])
def test_margin_scope_reaches_the_loss(scope):
    obj, model, cfg = _objective(name="adaptive", margin_scope=scope, reduction="sum")
    batch = _batch()
    with torch.no_grad():
        f = model(batch["images"]).features
    a, b, same = batch["pairs"].unbind(1)
    per_anchor = AdaptiveMarginLoss(8.0, 2.1, reduction="sum")(f[a], f[b], same.bool(), a)
    per_batch = AdaptiveMarginLoss(8.0, 2.1, reduction="sum")(f[a], f[b], same.bool())
    assert not torch.isclose(per_anchor, per_batch)  # the two readings differ on this batch
    stats = _step(obj, model, cfg, batch)
    expected = per_anchor if scope == "anchor" else per_batch
    assert stats["loss"] == pytest.approx(float(expected), rel=1e-6)


def test_triplets_of_anchor_units_and_rcnn_t():
    batch = _batch(a=2, m=2, n=3)
    triplets = PairObjective.triplets(batch["pairs"])
    assert triplets.shape == (2 * 2 * 3, 3)  # M x N per anchor
    unit = 1 + 2 + 3
    for anchor, pos, neg in triplets.tolist():
        assert anchor % unit == 0 and pos // unit == neg // unit == anchor // unit
        assert 1 <= pos - anchor <= 2 and 3 <= neg - anchor <= 5
    obj, model, cfg = _objective(name="triplet", triplet_margin=0.3, reduction="sum")
    assert isinstance(obj.loss, TripletLoss) and obj.loss.margin == 0.3
    with torch.no_grad():
        f = model(batch["images"]).features
    expected = TripletLoss(0.3, reduction="sum")(*(f[i] for i in triplets.unbind(1)))
    assert _step(obj, model, cfg, batch)["loss"] == pytest.approx(float(expected), rel=1e-6)


def test_fixed_margin_control_is_contrastive_with_both_margins():
    obj, _, _ = _objective(name="contrastive", margin=0.45, positive_margin=0.12, reduction="sum")
    assert isinstance(obj.loss, ContrastiveLoss)
    assert (obj.loss.margin, obj.loss.positive_margin, obj.loss.reduction) == (0.45, 0.12, "sum")


# ------------------------------------------------------------------------------ the sampler


def _multi_camera_set(num_ids=12, cams=4, seed=0):
    rng = np.random.default_rng(seed)
    pids, camids = [], []
    for pid in range(num_ids):
        seen = rng.choice(cams, size=rng.integers(2, cams + 1), replace=False)
        for cam in seen:
            k = int(rng.integers(1, 4))
            pids += [pid] * k
            camids += [int(cam)] * k
    return np.array(pids), np.array(camids)


def test_anchor_views_use_every_image_once_per_epoch():
    pids, cams = _multi_camera_set()
    sampler = AnchorPairSampler(pids, cams, anchors=3, positives=1, negatives=2, probe_cam=None, gallery_cam=None)
    assert len(sampler) == pids.size // 3
    anchors = []
    for batch in sampler:
        for anchor, pos, *neg in np.array(batch).reshape(3, 4):
            anchors.append(anchor)
            assert pids[pos] == pids[anchor] and cams[pos] != cams[anchor]
            assert all(pids[q] != pids[anchor] and cams[q] != cams[anchor] for q in neg)
    assert len(set(anchors)) == len(anchors) == (pids.size // 3) * 3  # each image at most once, all but a remainder


def test_fixed_views_waste_data_and_anchor_views_do_not():
    pids, cams = _multi_camera_set(num_ids=20, cams=6, seed=1)
    kw = dict(anchors=2, positives=1, negatives=2, probe_cam=None, gallery_cam=None, seed=3)
    cover = {v: sampler_coverage(AnchorPairSampler(pids, cams, views=v, **kw), epochs=6) for v in ("fixed", "epoch", "anchor")}
    # fixed: one camera pair per identity for the whole run
    assert cover["fixed"]["images_used"] < 0.8 and cover["fixed"]["positive_pairs_drawn"] < 0.5
    assert cover["anchor"]["images_used"] > 0.95
    assert cover["anchor"]["positive_pairs_drawn"] > cover["epoch"]["positive_pairs_drawn"] > cover["fixed"]["positive_pairs_drawn"]


def test_epoch_views_change_between_epochs():
    pids, cams = _multi_camera_set(num_ids=10, cams=5, seed=2)
    sampler = AnchorPairSampler(pids, cams, anchors=2, positives=1, negatives=1, probe_cam=None, gallery_cam=None,
                                views="epoch")
    first, second = ({tuple(sorted({cams[i] for i in b[0::3]})) for b in sampler} for _ in range(2))
    assert first != second
    sampler.set_epoch(1)
    again = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) == again  # each epoch's batches depend on (seed, epoch) only


def test_sampler_coverage_counts_by_hand():
    # identity 0: cameras 0, 0, 1 -> 2 cross-camera pairs; identity 1: cameras 0, 1 -> 1 pair
    pids, cams = np.array([0, 0, 0, 1, 1]), np.array([0, 0, 1, 0, 1])
    sampler = AnchorPairSampler(pids, cams, anchors=1, positives=1, negatives=1, probe_cam=None, gallery_cam=None)
    cover = sampler_coverage(sampler, epochs=30)
    assert cover["images"] == (5, 5) and cover["positive_pairs"] == (3, 3)


def test_views_and_recipe_errors():
    pids, cams = _multi_camera_set()
    with pytest.raises(ConfigError, match="views"):
        AnchorPairSampler(pids, cams, anchors=2, positives=1, negatives=1, probe_cam=None, gallery_cam=None, views="all")
    with pytest.raises(ConfigError, match="sampler.views"):
        load_recipe("adaptive_margin", overrides={"sampler.views": "all"})
    with pytest.raises(ConfigError, match="loss.margin_scope"):
        load_recipe("adaptive_margin", overrides={"loss.margin_scope": "pair"})


# ------------------------------------------------------------------------------ networks and init


def test_table5_networks_are_buildable():
    pcnn = build_model("part_cnn", height=60, width=24, residual_blocks=1, batch_norm=False, block="plain")
    rcnn = build_model("part_cnn", height=60, width=24, residual_blocks=1, batch_norm=False)
    assert isinstance(pcnn.branches[0].blocks[0], PlainConv) and isinstance(rcnn.branches[0].blocks[0], ResidualPair)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in rcnn.modules())
    assert sum(p.numel() for p in pcnn.parameters()) < sum(p.numel() for p in rcnn.parameters())
    for model in (pcnn, rcnn):
        assert model(torch.randn(2, 3, 60, 24)).features.shape == (2, 800)
    with pytest.raises(ConfigError, match="model.block"):
        PartCNN(block="dense")


def test_kaiming_init_keeps_the_embedding_inside_the_margins_and_trains():
    torch.manual_seed(0)
    model = PartCNN(height=60, width=24, batch_norm=True, init="kaiming")
    assert model.branches[0].fc1.weight.std() > 0.01  # He init on the hidden layers ...
    assert abs(float(model.fusion.weight.detach().std()) - 0.001) < 2e-4  # ... the paper's N(0, 0.001) on the output
    x = torch.rand(24, 3, 60, 24)
    a, b = torch.arange(0, 24, 2), torch.arange(1, 24, 2)
    same = torch.arange(12) % 3 == 0
    with torch.no_grad():
        start = (model(x).features[a] - model(x).features[b]).pow(2).sum(1).mean()
    assert start < 1.0  # squared distances on the scale of the margins (He output layers: ~1e3)
    loss = AdaptiveMarginLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    for _ in range(10):
        f = model(x).features
        value = loss(f[a], f[b], same)
        assert math.isfinite(float(value.detach()))
        opt.zero_grad()
        value.backward()
        opt.step()
    assert torch.isfinite(model(x).features).all()


# ------------------------------------------------------------------------------ the recipe


def test_full_recipe_regulariser_and_readings():
    cfg = load_recipe("adaptive_margin", "full")
    assert cfg["loss"]["reduction"] == "sum" and cfg["optimizer"]["momentum"] == 0.0
    assert cfg["optimizer"]["weight_decay"] == pytest.approx(weight_decay_for(0.01))  # Eq. 11-12, λ = 0.01
    assert cfg["loss"]["margin_scope"] == "anchor" and cfg["sampler"]["views"] == "anchor"
    assert (cfg["loss"]["mu"], cfg["loss"]["gamma"]) == (8.0, 2.1)
