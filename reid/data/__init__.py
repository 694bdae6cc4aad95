"""The data layer: records, the SynthReID generator, image datasets, transforms, samplers.

Real-dataset loaders live in :mod:`reid.data.datasets` (``load_dataset(name, root)``);
import them from there. They are not imported here so that ``import reid.data`` stays
cheap and free of ordering issues between the two halves of the data layer.

Names that need torch (``ImageDataset``, ``DecodedCache``, ``build_transforms``) load on
first use, so ``reid data synth`` and the generator do not pay for importing torch.
"""

from __future__ import annotations

import importlib

from reid.data.records import Record
from reid.data.samplers import AnchorPairSampler, CrossViewPairSampler, PKSampler

# reid.data.datasets (load_dataset, ReIDDataset, …): import from reid.data.datasets directly.

_LAZY = {
    "ImageDataset": "reid.data.image_dataset",
    "DecodedCache": "reid.data.image_dataset",
    "PackedImages": "reid.data.image_dataset",
    "read_image": "reid.data.image_dataset",
    "build_transforms": "reid.data.transforms",
    "IMAGENET_MEAN": "reid.data.transforms",
    "IMAGENET_STD": "reid.data.transforms",
}

__all__ = ["Record", "PKSampler", "AnchorPairSampler", "CrossViewPairSampler", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'reid.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
