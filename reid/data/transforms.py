"""Image transforms for re-ID training and evaluation (torchvision ``transforms.v2``).

The standard re-ID recipe, as in the papers' code bases and the toolkits they used:
resize to a fixed ``height x width`` (Market-1501 crops are 128x64; ResNet-50 re-ID
models use 256x128), for training a random horizontal flip, optionally zero-pad by
``pad`` pixels and crop back at a random position (a small translation), then convert to
float, normalise with the ImageNet statistics (the backbones are ImageNet-shaped) and
optionally apply random erasing (Zhong et al., AAAI 2020, used by paper 004's BoT
baseline) — erasing goes last so it erases normalised values.

Inputs may be PIL images or ``uint8`` tensors ``(3, H, W)`` (what
:class:`reid.data.image_dataset.ImageDataset` and its decoded cache produce).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision.transforms import v2

from reid.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_transforms(height: int, width: int, *, train: bool, flip: bool = True, random_erasing: float = 0.0,
                     pad: int = 0, mean: Sequence[float] = IMAGENET_MEAN,
                     std: Sequence[float] = IMAGENET_STD) -> v2.Compose:
    """The training (``train=True``) or evaluation pipeline, returning a float tensor (3, H, W).

    Args:
        height, width: output size in pixels.
        train: add the random augmentations (flip, pad + crop, erasing); evaluation only
            resizes and normalises, so it is deterministic.
        flip: random horizontal flip with probability 0.5 (training only).
        random_erasing: probability of erasing one random rectangle (training only; 0 = off,
            0.5 is the usual setting).
        pad: zero padding before a random ``height x width`` crop (training only; 0 = off,
            10 is the usual setting).
        mean, std: per-channel normalisation (ImageNet statistics by default).
    """
    if height < 1 or width < 1:
        raise ConfigError(f"build_transforms: image size {height}x{width} must be positive, e.g. 256x128")
    if not 0.0 <= random_erasing <= 1.0:
        raise ConfigError(f"build_transforms: random_erasing={random_erasing} is a probability; use 0..1 (e.g. 0.5)")
    if pad < 0:
        raise ConfigError(f"build_transforms: pad={pad} must be >= 0 (e.g. 10, or 0 for no pad + crop)")
    if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
        raise ConfigError("build_transforms: mean and std need three values each, std > 0 (RGB)")

    steps: list = [v2.ToImage(), v2.Resize((height, width), antialias=True)]
    if train and flip:
        steps.append(v2.RandomHorizontalFlip(p=0.5))
    if train and pad > 0:
        steps += [v2.Pad(pad, fill=0), v2.RandomCrop((height, width))]
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=list(mean), std=list(std))]
    if train and random_erasing > 0:
        steps.append(v2.RandomErasing(p=random_erasing, value=0))
    return v2.Compose(steps)
