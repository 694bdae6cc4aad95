"""A narrow ResNet for CPU smoke runs, selectable wherever ResNet-50 is.

Same shape of computation as ResNet-50 (a stem, four residual stages, the last one with a
configurable stride, global pooling by :class:`~reid.models.resnet.ReIDNet`), but with basic
blocks, one block per stage and ``width`` channels in the first stage (``8 * width`` out): with the
default ``width=16`` it has ~0.7 M parameters and runs a 64x32 batch of 32 in a few tens of
milliseconds on two cores. It is never pretrained; ``weights=PATH`` loads one of its own
checkpoints.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock

from reid.errors import ConfigError
from reid.models.resnet import ReIDNet, set_last_stride
from reid.models.weights import load_into

__all__ = ["SmallResNet", "build_small_resnet"]


def _stage(in_ch: int, out_ch: int, stride: int, blocks: int) -> nn.Sequential:
    downsample = None
    if stride != 1 or in_ch != out_ch:
        downsample = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
        )
    layers = [BasicBlock(in_ch, out_ch, stride=stride, downsample=downsample)]
    layers += [BasicBlock(out_ch, out_ch) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class SmallResNet(nn.Module):
    """stem (3x3/2 conv) -> 4 basic-block stages (widths w, 2w, 4w, 8w; strides 1, 2, 2, last)."""

    def __init__(self, width: int = 16, *, blocks: int = 1, last_stride: int = 2) -> None:
        super().__init__()
        if width < 1 or blocks < 1:
            raise ConfigError(f"small backbone needs width >= 1 and blocks >= 1, got {width}, {blocks}.")
        w = width
        self.stem = nn.Sequential(
            nn.Conv2d(3, w, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)
        )
        self.layer1 = _stage(w, w, 1, blocks)
        self.layer2 = _stage(w, 2 * w, 2, blocks)
        self.layer3 = _stage(2 * w, 4 * w, 2, blocks)
        self.layer4 = _stage(4 * w, 8 * w, 2, blocks)
        set_last_stride(self.layer4, last_stride)
        self.out_channels = 8 * w
        for m in self.modules():  # the torchvision ResNet initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))


def build_small_resnet(
    *,
    width: int = 16,
    blocks: int = 1,
    weights=None,
    last_stride: int = 2,
    neck: str = "none",
    num_classes: int | None = None,
    attributes: tuple[int, int] | None = None,
) -> ReIDNet:
    """The small backbone inside the same :class:`ReIDNet` head as ResNet-50."""
    trunk = SmallResNet(width, blocks=blocks, last_stride=last_stride)
    load_into(trunk, "small_resnet", weights, prefix="backbone.")
    return ReIDNet(trunk, trunk.out_channels, neck=neck, num_classes=num_classes, attributes=attributes)
