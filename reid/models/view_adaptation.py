"""Paper 003's asymmetric networks (Wu et al., "Cross-entropy adversarial view adaptation").

Four parts (Sec. III-B/III-D, Fig. 2, Algorithm 1):

* ``Ms`` and ``Mt`` — two *unshared* mappings, one for the probe (source) view and one for the
  gallery (target) view: "Ms and Mt are initialised by two deep models: M-Net [57] and D-Net
  [58]"; the paper uses "the convolutional layers of VGG architecture" as the mappings and, for
  Table VI, "two identical ResNet networks". Here D-Net is torchvision's VGG-16 (the paper's
  [58], ImageNet weights when cached) and M-Net the VGG-M ("medium", Chatfield et al. 2014)
  layout: conv 96x7x7/2 - LRN - pool, conv 256x5x5/2 - LRN - pool, three 512x3x3 convs - pool.
  Default assignment is Table VI's best row, ``Ms = M-Net, Mt = D-Net``.
* ``Dd`` — the view discriminator, "two fully-connected layers with a soft-max activation in the
  last layer", two outputs (source view, target view) for Eq. (1)/(3).
* ``Ds`` — the similarity discriminator on the concatenated pair: "stacked fully-connected
  layers: 1024 hidden units, 2048 hidden units, and the final similarity output", ReLU after the
  two hidden layers; it returns the logit of ``Ds(Ms(xs), Mt(xt))``.

Reading chosen where the paper is silent: each mapping's conv output is globally average pooled
to a vector (512-d for the VGGs, 2048-d for ResNet-50) — this is the embedding ``M(x)`` whose
Euclidean distance ``d(xs, xt)`` Eq. (2) uses and that retrieval ranks with; Dd's hidden layer
has 512 units (the paper does not give it). ``width_mult < 1`` builds the same layouts narrower
(randomly initialised) for CPU smoke runs.
"""

from __future__ import annotations

import torch
from torch import nn

from reid.errors import ConfigError
from reid.models.heads import ModelOutput
from reid.models.weights import load_into, resolve_weights

__all__ = [
    "VGGM",
    "vgg16_trunk",
    "build_mapping",
    "ViewDiscriminator",
    "SimilarityDiscriminator",
    "CrossViewNet",
    "build_view_adaptation",
    "MAPPINGS",
]

SOURCE, TARGET = 0, 1  # view labels: probe (Ms) and gallery (Mt)


def _ch(c: int, mult: float) -> int:
    return max(4, int(round(c * mult)))


class VGGM(nn.Module):
    """VGG-M convolutional layers (Chatfield et al., BMVC 2014): paper 003's M-Net."""

    def __init__(self, width_mult: float = 1.0) -> None:
        super().__init__()
        c1, c2, c3 = _ch(96, width_mult), _ch(256, width_mult), _ch(512, width_mult)
        self.features = nn.Sequential(
            nn.Conv2d(3, c1, 7, stride=2), nn.ReLU(inplace=True),
            nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0), nn.MaxPool2d(3, 2, ceil_mode=True),
            nn.Conv2d(c1, c2, 5, stride=2, padding=1), nn.ReLU(inplace=True),
            nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0), nn.MaxPool2d(3, 2, ceil_mode=True),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c3, c3, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c3, c3, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, ceil_mode=True),
        )  # fmt: skip
        self.out_channels = c3
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class _Pooled(nn.Module):
    """conv trunk -> global average pooling -> vector (a mapping ``M``)."""

    def __init__(self, trunk: nn.Module, dim: int) -> None:
        super().__init__()
        self.trunk, self.dim = trunk, dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(nn.functional.adaptive_avg_pool2d(self.trunk(x), 1), 1)


def vgg16_trunk(*, weights="imagenet", width_mult: float = 1.0) -> tuple[nn.Module, int]:
    """torchvision VGG-16 ``features`` (13 convs, 5 pools): paper 003's D-Net."""
    from torchvision.models.vgg import cfgs, make_layers

    if width_mult == 1.0:
        # only the 13 conv layers: the ImageNet classifier (~100 M parameters) is never built
        features = make_layers(cfgs["D"])
        load_into(features, "vgg16", weights, prefix="features.", skip=("classifier.",))
        return features, 512
    if weights not in (None, "none"):
        raise ConfigError("narrow VGG-16 variants (width_mult < 1) have no pretrained weights; set weights=none.")
    cfg = [v if v == "M" else _ch(v, width_mult) for v in cfgs["D"]]
    return make_layers(cfg), _ch(512, width_mult)


#: Mapping architectures for ``Ms``/``Mt``.
MAPPINGS = ("vgg_m", "vgg16", "resnet50", "small_resnet")


def build_mapping(arch: str, *, weights=None, width_mult: float = 1.0, small_width: int = 16) -> _Pooled:
    """One view mapping: image -> embedding vector."""
    if arch == "vgg_m":
        trunk = VGGM(width_mult)
        load_into(trunk, "vgg_m", weights)
        return _Pooled(trunk, trunk.out_channels)
    if arch == "vgg16":
        resolve_weights("vgg16", weights)
        return _Pooled(*vgg16_trunk(weights=weights, width_mult=width_mult))
    if arch == "resnet50":
        from reid.models.resnet import resnet50_backbone

        return _Pooled(*resnet50_backbone(weights=weights))
    if arch == "small_resnet":
        from reid.models.small import SmallResNet

        trunk = SmallResNet(small_width)
        load_into(trunk, "small_resnet", weights)
        return _Pooled(trunk, trunk.out_channels)
    raise ConfigError(f"unknown view mapping {arch!r}; choose one of {', '.join(MAPPINGS)}.")


class ViewDiscriminator(nn.Module):
    """``Dd``: two fully connected layers -> 2 logits (source view, target view); Eq. (1)."""

    def __init__(self, in_dim: int, hidden: int = 512) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 2))

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.net(embeddings)


class SimilarityDiscriminator(nn.Module):
    """``Ds``: [Ms(xs), Mt(xt)] -> FC 1024 -> ReLU -> FC 2048 -> ReLU -> FC 1 (a logit); Eq. (2)."""

    def __init__(self, in_dim: int, hidden: tuple[int, int] = (1024, 2048)) -> None:
        super().__init__()
        h1, h2 = hidden
        self.net = nn.Sequential(
            nn.Linear(2 * in_dim, h1), nn.ReLU(inplace=True), nn.Linear(h1, h2), nn.ReLU(inplace=True), nn.Linear(h2, 1)
        )

    def forward(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([source, target], dim=1)).squeeze(1)


class CrossViewNet(nn.Module):
    """The four networks of paper 003 in one module (so one checkpoint holds them all).

    ``forward(images, view)`` embeds each image with the mapping of its view (``0`` -> ``Ms``,
    ``1`` -> ``Mt``; a scalar applies to the whole batch). Evaluation embeds queries with ``Ms``
    and the gallery with ``Mt`` (``asymmetric = True`` tells the engine so). Passing the same
    module as ``ms`` and ``mt`` gives the Siamese baseline the paper argues against (Sec. I,
    III-C: "layer-wise equality constraints … through weight sharing"); ``shared`` says so.
    """

    asymmetric = True

    def __init__(self, ms: nn.Module, mt: nn.Module, *, dd_hidden: int = 512, ds_hidden=(1024, 2048)) -> None:
        super().__init__()
        if ms.dim != mt.dim:
            raise ConfigError(
                f"Ms and Mt must produce embeddings of the same size to be compared, got {ms.dim} and "
                f"{mt.dim}; pick mappings with equal output widths."
            )
        self.ms, self.mt = ms, mt
        self.shared = ms is mt
        self.feat_dim = ms.dim
        self.dd = ViewDiscriminator(ms.dim, dd_hidden)
        self.ds = SimilarityDiscriminator(ms.dim, tuple(ds_hidden))

    def embed(self, images: torch.Tensor, view) -> torch.Tensor:
        if not torch.is_tensor(view):
            return (self.ms if int(view) == SOURCE else self.mt)(images)
        view = view.to(images.device)
        src, tgt = view == SOURCE, view == TARGET
        out = None
        for mask, mapping in ((src, self.ms), (tgt, self.mt)):
            if mask.any():
                emb = mapping(images[mask])
                if out is None:
                    out = emb.new_zeros(images.shape[0], emb.shape[1])
                out = out.index_put((mask.nonzero().squeeze(1),), emb)
        return out

    def forward(self, images: torch.Tensor, view=SOURCE) -> ModelOutput:
        features = self.embed(images, view)
        return ModelOutput(features=features, pooled=features)

    def mapping_parameters(self) -> list[nn.Parameter]:
        """Parameters of ``Ms`` and ``Mt`` (once each when the mapping is shared)."""
        return list(self.ms.parameters()) if self.shared else [*self.ms.parameters(), *self.mt.parameters()]


def build_view_adaptation(
    *,
    ms: str = "vgg_m",
    mt: str = "vgg16",
    weights=None,
    ms_weights=None,
    mt_weights=None,
    width_mult: float = 1.0,
    small_width: int = 16,
    dd_hidden: int = 512,
    ds_hidden=(1024, 2048),
    shared: bool = False,
) -> CrossViewNet:
    """``Ms``/``Mt`` default to Table VI's best pair (M-Net, D-Net); ``weights`` applies to both
    unless ``ms_weights``/``mt_weights`` say otherwise (VGG-M has no torchvision weights).
    ``shared=True`` builds one mapping used for both views (the Siamese baseline); it needs
    ``ms == mt``."""
    if shared and ms != mt:
        raise ConfigError(
            f"model.shared=true uses one mapping for both views, but model.ms={ms!r} and model.mt={mt!r} differ; "
            "set both to the same architecture (e.g. model.ms=model.mt=vgg16)."
        )
    kw = dict(width_mult=width_mult, small_width=small_width)
    m_s = build_mapping(ms, weights=ms_weights if ms_weights is not None else weights, **kw)
    m_t = m_s if shared else build_mapping(mt, weights=mt_weights if mt_weights is not None else weights, **kw)
    return CrossViewNet(m_s, m_t, dd_hidden=dd_hidden, ds_hidden=ds_hidden)
