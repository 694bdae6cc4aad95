"""Networks for the five papers, built by name: ``build_model(name, **options)``.

=================  ==========================================================  ==========
name               what                                                        paper
=================  ==========================================================  ==========
``resnet50``       torchvision ResNet-50 + GAP [+ BN neck] [+ classifier]       000 002 004
``small_resnet``   narrow ResNet for CPU smoke runs, same options as above     (any)
``part_cnn``       part-based CNN with residual blocks and fusion, 800-d       001
``view_adaptation`` Ms / Mt mappings, view and similarity discriminators        003
=================  ==========================================================  ==========

Every model's forward returns a :class:`~reid.models.heads.ModelOutput` whose ``.features`` is
the retrieval embedding.
"""

from __future__ import annotations

import inspect

from torch import nn

from reid.errors import ConfigError
from reid.models.heads import ModelOutput
from reid.models.part_cnn import build_part_cnn
from reid.models.resnet import build_resnet50
from reid.models.small import build_small_resnet
from reid.models.view_adaptation import build_view_adaptation

__all__ = ["build_model", "MODELS", "ModelOutput"]

MODELS = {
    "resnet50": build_resnet50,
    "small_resnet": build_small_resnet,
    "part_cnn": build_part_cnn,
    "view_adaptation": build_view_adaptation,
}


def model_options(name: str) -> list[str]:
    """The keyword options ``build_model(name, ...)`` accepts."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}.")
    params = inspect.signature(MODELS[name]).parameters.values()
    names = [p.name for p in params if p.kind == p.KEYWORD_ONLY]
    if name == "part_cnn":  # options forwarded to PartCNN.__init__
        from reid.models.part_cnn import PartCNN

        names += [p.name for p in inspect.signature(PartCNN).parameters.values() if p.kind == p.KEYWORD_ONLY]
    return names


def build_model(name: str, **options) -> nn.Module:
    """Build network ``name``; unknown names or options raise :class:`ConfigError`."""
    valid = model_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(
            f"model {name!r} has no option(s) {', '.join(unknown)}; valid options: {', '.join(valid)}."
        )
    return MODELS[name](**options)
