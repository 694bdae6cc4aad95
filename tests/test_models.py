"""Shapes, options and weight loading of every network in reid.models."""

from __future__ import annotations

import pytest
import torch

from reid.errors import ConfigError, WeightsError
from reid.models import MODELS, build_model
from reid.models.heads import ModelOutput, SplitEmbedding
from reid.models.part_cnn import PartCNN
from reid.models.view_adaptation import CrossViewNet, SimilarityDiscriminator, ViewDiscriminator


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """An empty torch hub cache, so 'imagenet' weights are not available."""
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    return tmp_path / "hub"


def test_registry_names():
    assert set(MODELS) == {"resnet50", "small_resnet", "part_cnn", "view_adaptation"}
    with pytest.raises(ConfigError, match="unknown model 'vgg'.*resnet50"):
        build_model("vgg")
    with pytest.raises(ConfigError, match="no option.*bogus.*valid options"):
        build_model("small_resnet", bogus=1)


def test_resnet50_pool5_classifier_paper000():
    model = build_model("resnet50", weights=None, num_classes=7).eval()
    out = model(torch.randn(2, 3, 112, 112))  # (the paper's 224x224 works the same, slower)
    assert isinstance(out, ModelOutput)
    assert out.features.shape == (2, 2048) and out.logits.shape == (2, 7)
    assert torch.equal(out.features, out.pooled)  # no neck: the feature is pool5
    new = {id(p) for p in model.new_parameters()}
    assert new == {id(model.classifier.weight), id(model.classifier.bias)}


def test_resnet50_last_stride_bn_neck_split_paper004():
    model = build_model("resnet50", weights=None, last_stride=1, neck="bn", attributes=(27, 16)).eval()
    trunk_out = model.backbone(torch.randn(1, 3, 128, 64))
    assert trunk_out.shape[-2:] == (8, 4)  # stride 16 instead of 32
    out = model(torch.randn(2, 3, 128, 64))
    assert out.features.shape == (2, 2048)
    assert out.id_features.shape == (2, 2048 - 27 * 16)
    assert out.attribute_features.shape == (2, 27, 16)
    assert torch.equal(out.attribute_features.reshape(2, -1), out.features[:, -27 * 16 :])
    assert out.logits is None


def test_small_backbone_is_a_drop_in_for_resnet50():
    model = build_model("small_resnet", width=8, last_stride=1, neck="bn", num_classes=5, attributes=(3, 4))
    out = model.eval()(torch.randn(3, 3, 64, 32))
    assert out.features.shape == (3, 64) and out.logits.shape == (3, 5)
    assert out.id_features.shape == (3, 64 - 12) and out.attribute_features.shape == (3, 3, 4)
    assert sum(p.numel() for p in build_model("small_resnet").parameters()) < 1_000_000


@pytest.mark.parametrize("blocks, bn", [(1, False), (4, True)])
def test_part_cnn_is_800d_at_230x80(blocks, bn):
    model = build_model("part_cnn", residual_blocks=blocks, batch_norm=bn).eval()
    out = model(torch.randn(2, 3, 230, 80))
    assert out.features.shape == (2, 800)
    assert model.stripe_height * 4 == 76  # 230x80 -> 76x26 after the 3x3/3 pool, four equal stripes
    assert len(model.branches) == 4 and len(model.branches[0].blocks) == blocks
    # unshared branches
    assert model.branches[0].fc1.weight.data_ptr() != model.branches[1].fc1.weight.data_ptr()
    assert model.fusion.in_features == 400 and model.fusion.out_features == 400


def test_part_cnn_gaussian_init_and_errors():
    model = PartCNN(height=60, width=24)
    assert abs(model.stem[0].weight.std().item() - 0.01) < 2e-3
    assert abs(model.branches[0].fc1.weight.std().item() - 0.001) < 2e-4
    assert model.fusion.bias.abs().sum() == 0
    with pytest.raises(ConfigError, match="1..4"):
        PartCNN(residual_blocks=5)
    with pytest.raises(ConfigError, match="too small"):
        PartCNN(height=20, width=8)
    with pytest.raises(ConfigError, match="input.height/width"):
        model(torch.randn(1, 3, 64, 24))


def test_view_adaptation_networks_paper003():
    model = build_model("view_adaptation", width_mult=0.125).eval()
    assert isinstance(model, CrossViewNet) and model.asymmetric
    x = torch.randn(4, 3, 128, 64)
    fs, ft = model(x, 0).features, model(x, 1).features
    assert fs.shape == ft.shape == (4, model.feat_dim)
    assert not torch.allclose(fs, ft)  # unshared mappings Ms != Mt
    mixed = model(x, torch.tensor([0, 1, 0, 1])).features
    assert torch.allclose(mixed[0], fs[0]) and torch.allclose(mixed[1], ft[1])
    # Ds: FC 1024 -> 2048 -> 1 on the concatenated pair
    ds = model.ds
    linears = [m for m in ds.net if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (2 * model.feat_dim, 1024), (1024, 2048), (2048, 1)
    ]  # fmt: skip
    assert ds(fs, ft).shape == (4,)
    # Dd: two FC layers -> two view logits
    assert model.dd(fs).shape == (4, 2)
    assert len([m for m in model.dd.net if isinstance(m, torch.nn.Linear)]) == 2


def test_full_size_vgg_pair_and_resnet_pair():
    full = build_model("view_adaptation", ms="vgg_m", mt="vgg16")
    assert full.feat_dim == 512 and full.ms.dim == full.mt.dim
    assert SimilarityDiscriminator(512).net[0].in_features == 1024
    assert ViewDiscriminator(512).net[-1].out_features == 2
    pair = build_model("view_adaptation", ms="resnet50", mt="resnet50")
    assert pair.feat_dim == 2048
    with pytest.raises(ConfigError, match="unknown view mapping"):
        build_model("view_adaptation", ms="alexnet")


def test_split_embedding_matches_the_joint_loss_split():
    from reid.losses.angular_margin import joint_loss

    feats = torch.randn(5, 64)
    ours = SplitEmbedding(64, 3, 4)(feats)
    loss = joint_loss("AM0BH_Attr", 64, 6, scale=16.0, attribute_values=3, slice_dim=4)
    theirs = loss.split(feats)
    assert torch.equal(ours[0], theirs[0])
    assert torch.equal(ours[1].reshape(5, -1), theirs[1].reshape(5, -1))
    with pytest.raises(ConfigError, match="leave no identity features"):
        SplitEmbedding(64, 16, 4)


def test_imagenet_weights_offline_error_names_file_and_flag(empty_hub):
    with pytest.raises(WeightsError) as info:
        build_model("resnet50", weights="imagenet")
    msg = str(info.value)
    expected = empty_hub / "checkpoints" / "resnet50-0676ba61.pth"
    assert str(expected) in msg and "resnet50-0676ba61.pth" in msg
    assert "model.weights=PATH" in msg and "model.weights=none" in msg
    assert not (empty_hub / "checkpoints").exists()  # nothing written, nothing half-downloaded
    with pytest.raises(WeightsError, match="vgg16-397923af.pth"):
        build_model("view_adaptation", mt_weights="imagenet", width_mult=1.0)
    with pytest.raises(WeightsError, match="no torchvision ImageNet weights"):
        build_model("small_resnet", weights="imagenet")


def test_weights_from_cache_and_from_path(empty_hub, tmp_path):
    from torchvision.models import resnet50

    reference = resnet50(weights=None)
    cached = empty_hub / "checkpoints" / "resnet50-0676ba61.pth"
    cached.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), cached)
    model = build_model("resnet50", weights="imagenet")
    assert torch.equal(model.backbone.conv1.weight, reference.conv1.weight)
    assert torch.equal(model.backbone.layer4[2].bn3.running_var, reference.layer4[2].bn3.running_var)

    small = build_model("small_resnet", width=8, num_classes=3)
    path = tmp_path / "small.pt"
    torch.save(small.state_dict(), path)  # a reid model state dict: keys under "backbone."
    again = build_model("small_resnet", width=8, weights=str(path))
    assert torch.equal(again.backbone.stem[0].weight, small.backbone.stem[0].weight)
    with pytest.raises(WeightsError, match="do not fit"):
        build_model("small_resnet", width=16, weights=str(path))
    with pytest.raises(WeightsError, match="does not exist"):
        build_model("small_resnet", weights=str(tmp_path / "missing.pt"))
