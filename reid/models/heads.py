"""What sits on top of a backbone: the model output record, the BN neck, the identity
classifier and paper 004's split embedding.

Every model in :mod:`reid.models` returns a :class:`ModelOutput`, so the engine and the losses
read the same names whatever the network: ``.features`` is always the retrieval embedding
(what evaluation ranks with), ``.logits`` the identity classifier's scores where there is one.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import nn

from reid.errors import ConfigError

__all__ = ["ModelOutput", "BNNeck", "IdentityClassifier", "SplitEmbedding"]


@dataclass
class ModelOutput:
    """The tensors a forward pass produces; absent parts are ``None``.

    features:
        ``(N, D)`` retrieval embedding (pool5 for paper 000, BN-neck output for paper 004,
        the 800-d fused vector for paper 001, ``Ms``/``Mt`` output for paper 003).
    logits:
        ``(N, C)`` identity-classifier scores (paper 000's ``fc8``).
    pooled:
        ``(N, D)`` globally pooled backbone feature before any neck (equal to ``features``
        when there is no neck).
    id_features, attribute_features:
        paper 004's split of ``features``: ``(N, D - M*Q)`` for the identity head and triplet
        loss, ``(N, M, Q)`` for the ``M`` attribute classifiers.
    """

    features: torch.Tensor
    logits: torch.Tensor | None = None
    pooled: torch.Tensor | None = None
    id_features: torch.Tensor | None = None
    attribute_features: torch.Tensor | None = None

    def float(self) -> "ModelOutput":
        """A copy with every tensor in float32 (losses run in full precision under autocast)."""
        values = {}
        for f in fields(self):
            value = getattr(self, f.name)
            values[f.name] = value.float() if isinstance(value, torch.Tensor) else value
        return ModelOutput(**values)


class BNNeck(nn.BatchNorm1d):
    """Batch normalisation after global average pooling (paper 004, Sec. 3.4).

    The paper adds "a global average pooling (GAP) layer and a batch normalization layer (BN)"
    and uses the BN output as the 2048-d embedding. Its bias is kept learnable: the paper says
    nothing about freezing it (the "BNNeck" of later work does).
    """

    def __init__(self, dim: int) -> None:
        super().__init__(dim)


class IdentityClassifier(nn.Linear):
    """A fully connected layer scoring ``num_classes`` training identities (paper 000's ``fc8``).

    Initialised N(0, 0.001) with zero bias, the usual choice for a freshly added classifier on
    a pretrained backbone (small logits at the start keep the first updates from wrecking the
    pretrained features).
    """

    def __init__(self, in_dim: int, num_classes: int, *, bias: bool = True) -> None:
        if num_classes < 2:
            raise ConfigError(
                f"an identity classifier needs at least 2 classes, got num_classes={num_classes}; "
                "check that the training split has several identities."
            )
        super().__init__(in_dim, num_classes, bias=bias)
        nn.init.normal_(self.weight, std=0.001)
        if bias:
            nn.init.zeros_(self.bias)


class SplitEmbedding(nn.Module):
    """Paper 004 (Sec. 4.1): split the ``D``-d embedding into an identity part and ``M`` slices.

    ``f_theta_a`` has size ``M x Q`` ("Q is the size of the input features to each of the
    attribute classifiers"); "the rest of the embedding features, ``f_theta_id``, is the input
    to the identity classifier and triplet loss". The split is a fixed slicing, no parameters:
    the attribute slice is the *last* ``M*Q`` dimensions (the paper does not say which end; the
    choice is immaterial because the layers before it are fully connected / pooled channels).
    """

    def __init__(self, dim: int, num_attributes: int, q: int) -> None:
        super().__init__()
        if num_attributes < 0 or q < 1:
            raise ConfigError(
                f"attribute split needs num_attributes >= 0 and q >= 1, got M={num_attributes}, "
                f"Q={q}."
            )
        if num_attributes * q >= dim:
            raise ConfigError(
                f"attribute slices M x Q = {num_attributes} x {q} = {num_attributes * q} leave no "
                f"identity features in a {dim}-d embedding; lower model.attribute_q or use a wider "
                "backbone."
            )
        self.dim, self.num_attributes, self.q = dim, num_attributes, q
        self.id_dim = dim - num_attributes * q

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        id_part = features[:, : self.id_dim]
        attr_part = features[:, self.id_dim :].reshape(features.shape[0], self.num_attributes, self.q)
        return id_part, attr_part

    def extra_repr(self) -> str:
        return f"dim={self.dim}, id_dim={self.id_dim}, M={self.num_attributes}, Q={self.q}"
