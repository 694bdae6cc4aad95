"""Pretrained weights, offline only.

The papers fine-tune ImageNet-pretrained networks. This module finds those weights *without
touching the network*: torchvision's weights API names the file (``ResNet50_Weights.IMAGENET1K_V1``
-> ``resnet50-0676ba61.pth``) and the torch hub cache (``$TORCH_HOME/hub/checkpoints``) is where
torchvision would have put it. When it is not there we stop with a :class:`~reid.errors.WeightsError`
that says which file to place where, or which option to pass instead — never a download, never a
half-written file.

A weights spec, as accepted by every model builder, is one of

* ``"imagenet"`` — the architecture's default ImageNet weights (``IMAGENET1K_V1``: the original
  torchvision port of the networks the papers used);
* a torchvision weights name such as ``"IMAGENET1K_V2"``;
* a path to a ``.pth`` state dict (torchvision layout, or a ``reid`` checkpoint's ``model`` entry);
* ``None`` / ``"none"`` — random initialisation (what the smoke scale uses).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from reid.errors import WeightsError

__all__ = ["resolve_weights", "load_state_dict", "load_into", "hub_checkpoint_path"]

# Architecture -> torchvision weights enum class name.
_TORCHVISION_WEIGHTS = {
    "resnet50": "ResNet50_Weights",
    "vgg16": "VGG16_Weights",
}


def _is_none(spec) -> bool:
    return spec is None or spec is False or (isinstance(spec, str) and spec.lower() in ("none", ""))


def hub_checkpoint_path(url: str) -> Path:
    """Where ``torch.hub.load_state_dict_from_url`` would cache ``url``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


def resolve_weights(arch: str, spec) -> Path | None:
    """The local file holding weights ``spec`` for ``arch``, or ``None`` for random init.

    Raises :class:`WeightsError` when the weights are not available offline.
    """
    if _is_none(spec):
        return None
    spec = str(spec)
    if spec.lower() == "imagenet" or spec.upper().startswith("IMAGENET1K"):
        if arch not in _TORCHVISION_WEIGHTS:
            raise WeightsError(
                f"there are no torchvision ImageNet weights for the '{arch}' network; pass "
                f"weights=PATH to a state dict you trained (CLI: --set model.weights=PATH) or "
                "weights=none to start from random initialisation."
            )
        from torchvision.models import get_weight

        name = "IMAGENET1K_V1" if spec.lower() == "imagenet" else spec.upper()
        enum_name = f"{_TORCHVISION_WEIGHTS[arch]}.{name}"
        try:
            weights = get_weight(enum_name)
        except (ValueError, KeyError) as exc:
            raise WeightsError(f"torchvision has no weights named {enum_name}: {exc}") from None
        path = hub_checkpoint_path(weights.url)
        if not path.is_file():
            raise WeightsError(
                f"ImageNet weights for {arch} ({enum_name}) are not in the torch hub cache and "
                f"nothing is downloaded at run time. Place the file '{path.name}' (from "
                f"{weights.url}) at {path} (set TORCH_HOME to use another cache), or pass "
                f"weights=PATH to a local copy (CLI: --set model.weights=PATH), or train from "
                f"scratch with weights=none (CLI: --set model.weights=none)."
            )
        return path
    path = Path(spec).expanduser()
    if not path.is_file():
        raise WeightsError(
            f"weights file {path} does not exist; pass weights=imagenet (needs the torch hub "
            f"cache), weights=none for random initialisation, or the path of an existing .pth file."
        )
    return path


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``path`` (a bare state dict or a ``reid`` checkpoint)."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or foreign file: say so, do not show a pickle traceback
        raise WeightsError(f"could not read weights from {path}: {exc}") from None
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]
    if not isinstance(obj, dict):
        raise WeightsError(f"{path} does not hold a state dict (found {type(obj).__name__}).")
    return obj


def load_into(module: nn.Module, arch: str, spec, *, prefix: str = "", skip: tuple[str, ...] = ()) -> bool:
    """Load weights ``spec`` into ``module``; return whether anything was loaded.

    ``prefix`` strips a leading key prefix of the file (e.g. ``"backbone."`` when loading a
    ``reid`` checkpoint into a bare backbone); keys starting with any of ``skip`` (e.g. the
    ImageNet classifier ``fc.``) are ignored. Every parameter of ``module`` must be present in the
    file with the right shape, otherwise :class:`WeightsError` lists what is missing.
    """
    path = resolve_weights(arch, spec)
    if path is None:
        return False
    state = load_state_dict(path)
    if prefix and any(k.startswith(prefix) for k in state):
        state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    state = {k: v for k, v in state.items() if not k.startswith(skip)}
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or wrong:
        detail = ", ".join((missing + wrong)[:5])
        raise WeightsError(
            f"weights in {path} do not fit the {arch} network: {len(missing)} missing and "
            f"{len(wrong)} mis-shaped tensors (first: {detail}). Pass weights for the same "
            "architecture, or weights=none."
        )
    module.load_state_dict({k: state[k] for k in own}, strict=True)
    return True
