"""ResNet-50 re-ID networks, and the wrapper every pooled-backbone model shares.

Three papers fine-tune torchvision's ResNet-50 and differ only in what sits after ``layer4``:

========  ==============================================================  =====================
paper     head                                                            builder options
========  ==============================================================  =====================
000       ``avg pool5`` (2048-d) is the feature; ``fc8`` classifies the   ``num_classes=C``
          training identities (Sec. IV-A, Table I), 224x224 input
002       ``pool5`` 2048-d embedding, no classifier (Sec. 3.3)            (defaults)
004       last stride 2 -> 1, GAP, BN; the BN output is the 2048-d        ``last_stride=1,
          embedding, split into identity part + M x Q attribute slices    neck="bn",
          (Sec. 3.4, 4.1)                                                 attributes=(M, Q)``
========  ==============================================================  =====================

:class:`ReIDNet` puts those pieces on any backbone that returns a feature map, so the small CPU
backbone of :mod:`reid.models.small` is selectable wherever ResNet-50 is.
"""

from __future__ import annotations

import torch
from torch import nn

from reid.errors import ConfigError
from reid.models.heads import BNNeck, IdentityClassifier, ModelOutput, SplitEmbedding
from reid.models.weights import load_into, resolve_weights

__all__ = ["ReIDNet", "resnet50_backbone", "build_resnet50"]


class ReIDNet(nn.Module):
    """backbone feature map -> global average pooling -> [BN neck] -> [split] -> [classifier].

    ``features`` is the neck output (or the pooled vector without a neck); the classifier, when
    present, reads ``id_features`` (= ``features`` without an attribute split).
    """

    def __init__(
        self,
        backbone: nn.Module,
        feat_dim: int,
        *,
        neck: str = "none",
        num_classes: int | None = None,
        attributes: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        if neck not in ("none", "bn"):
            raise ConfigError(f"model.neck must be 'none' or 'bn', got {neck!r}.")
        self.backbone = backbone
        self.feat_dim = feat_dim
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.neck = BNNeck(feat_dim) if neck == "bn" else None
        self.split = SplitEmbedding(feat_dim, *attributes) if attributes else None
        id_dim = self.split.id_dim if self.split is not None else feat_dim
        self.id_dim = id_dim
        self.classifier = IdentityClassifier(id_dim, num_classes) if num_classes else None

    def forward(self, images: torch.Tensor) -> ModelOutput:
        pooled = self.pool(self.backbone(images)).flatten(1)
        features = self.neck(pooled) if self.neck is not None else pooled
        id_features, attribute_features = (features, None)
        if self.split is not None:
            id_features, attribute_features = self.split(features)
        logits = self.classifier(id_features) if self.classifier is not None else None
        return ModelOutput(
            features=features,
            logits=logits,
            pooled=pooled,
            id_features=id_features,
            attribute_features=attribute_features,
        )

    def new_parameters(self) -> list[nn.Parameter]:
        """Parameters not in the (pretrained) backbone: neck and classifier.

        Paper 000 trains these with a x10 learning rate ("the fully connected layer f8 where we
        apply a learning rate multiplier of 10").
        """
        backbone_ids = {id(p) for p in self.backbone.parameters()}
        return [p for p in self.parameters() if id(p) not in backbone_ids]


class _ResNetTrunk(nn.Module):
    """torchvision ResNet without ``avgpool``/``fc``: image -> ``layer4`` feature map."""

    def __init__(self, resnet: nn.Module) -> None:
        super().__init__()
        self.conv1, self.bn1, self.relu, self.maxpool = resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


def set_last_stride(layer4: nn.Sequential, stride: int) -> None:
    """Change the stride of a ResNet's last stage (paper 004: "from 2 to 1").

    torchvision's ResNet v1.5 strides in the 3x3 conv of the first bottleneck and in its
    shortcut projection; both change so the shapes still add up.
    """
    if stride not in (1, 2):
        raise ConfigError(f"model.last_stride must be 1 or 2, got {stride}.")
    first = layer4[0]
    conv = first.conv2 if hasattr(first, "conv3") else first.conv1  # bottleneck vs basic block
    conv.stride = (stride, stride)
    if first.downsample is not None:
        first.downsample[0].stride = (stride, stride)


def resnet50_backbone(*, weights="imagenet", last_stride: int = 2) -> tuple[nn.Module, int]:
    """torchvision ResNet-50 trunk (2048 channels), ImageNet weights loaded offline."""
    from torchvision.models import resnet50

    resolve_weights("resnet50", weights)  # fail before building anything when weights are missing
    trunk = _ResNetTrunk(resnet50(weights=None))
    # The trunk's keys are torchvision's minus the ImageNet classifier ``fc``; a ``reid``
    # checkpoint stores them under ``backbone.``.
    load_into(trunk, "resnet50", weights, prefix="backbone.", skip=("fc.",))
    set_last_stride(trunk.layer4, last_stride)
    return trunk, 2048


def build_resnet50(
    *,
    weights="imagenet",
    last_stride: int = 2,
    neck: str = "none",
    num_classes: int | None = None,
    attributes: tuple[int, int] | None = None,
) -> ReIDNet:
    """ResNet-50 re-ID network (see the module docstring for each paper's options)."""
    trunk, dim = resnet50_backbone(weights=weights, last_stride=last_stride)
    return ReIDNet(trunk, dim, neck=neck, num_classes=num_classes, attributes=attributes)
