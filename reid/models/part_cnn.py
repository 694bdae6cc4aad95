"""Paper 001's part-based network (Wang et al., Pattern Recognition 2018, Sec. 3.4, Fig. 5).

Three sub-networks, read from Sec. 3.4:

1. **Global feature learning.** 230x80x3 input -> 64 filters of 7x7x3 -> max pooling 3x3,
   stride 3 -> ReLU.
2. **Local feature learning.** The pooled maps are cut into four equal horizontal stripes
   ("across the height channel"); each stripe has its own, *unshared* path: ``n`` residual
   blocks of two 32-filter 3x3 convolutions whose outputs are summed ("the outputs of the first
   local convolutional layer are summarized with the outputs of the second ... which we called
   residual block"), then max pooling 3x3 stride 1 and a ReLU. ``n`` is 1 for the small
   datasets and up to 4 (with batch normalisation) for Market-1501 (Table 6).
3. **Feature learning and fusion.** Per stripe two fully connected layers of 100 units with a
   ReLU between them (unshared). The four first-layer outputs are concatenated and fused by a
   400-unit layer; that 400-d vector is concatenated with the four second-layer outputs into
   the final 800-d representation.

What the paper leaves open, and the reading implemented here:

* strides/padding of the convolutions are not given. The 7x7 conv uses stride 1 and padding 3,
  which makes the pooled map 76x26 for a 230x80 input — 76 = 4 x 19 splits into four equal
  stripes, which supports this reading. The 3x3 local convs use padding 1 (so the residual sum
  is shape-compatible); the local 3x3 max pooling has no padding.
* "max pooling kernel of size 3x3x3" is read as a 3x3 spatial window (pooling does not mix
  channels).
* the residual block is ``y1 = conv_a(x); y2 = conv_b(relu(y1)); out = y1 + y2`` — the text
  sums the two conv outputs, not the block input (which has 64 channels in the first block). A
  ReLU follows each block; "with BN" (Table 6) puts batch normalisation after each conv.
* Table 5's PCNN rows "replace the residual learning block with a convolution layer"
  (Sec. 6.3.2): ``block="plain"`` puts one 32-filter 3x3 convolution (+ BN when asked) + ReLU
  where each residual block would be. Table 5's RCNN rows use one residual block and, since its
  Market-1501 RCNN-AC (80.6) is Table 6's "1 Res" column rather than a "+ BN" one, no BN.
* the fusion layer reads the ReLU'd first-layer outputs (the same tensors that feed the second
  layers); no non-linearity is applied to the final 800-d vector, which the distance loss reads.
* initialisation (Sec. 6.1): "two zero-mean Gaussian distributions with the standard deviations
  from 0.01 to 0.001, respectively", biases 0 — read as std 0.01 for the convolutions and 0.001
  for the fully connected layers (``init="paper"``). ``init="kaiming"`` is offered for
  comparison: He initialisation for the convolutions and the hidden FC layers, but the layers
  whose outputs *are* the 800-d embedding (each stripe's second FC layer and the fusion layer)
  keep the paper's N(0, 0.001). Why: the pair losses compare squared distances with margins of
  order 0.1–0.5 (``Mp < 1/µ``, ``Mn >= log 2/γ``). He-initialised output layers start the
  embedding with squared pair distances of ~10^3 (measured at 115x40: mean D ≈ 10^3, against
  ≈ 10^-4 with the paper's init); the hinge's gradient grows with the distance, and at
  lr 0.01 with momentum 0.9 the features grew ~40x per step and overflowed to inf within four
  steps (the "NaN" is inf − inf after the overflow) — for the contrastive loss as well as the
  adaptive one. He init exists to keep *hidden* activations at unit scale; an embedding read by
  an absolute-scale loss must start inside that scale.
"""

from __future__ import annotations

import torch
from torch import nn

from reid.errors import ConfigError
from reid.models.heads import ModelOutput
from reid.models.weights import load_into

__all__ = ["PartCNN", "build_part_cnn"]

NUM_STRIPES = 4


class ResidualPair(nn.Module):
    """Two 3x3 convolutions whose outputs are summed (paper 001's "residual block")."""

    def __init__(self, in_ch: int, out_ch: int, *, batch_norm: bool) -> None:
        super().__init__()
        self.conv_a = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=not batch_norm)
        self.conv_b = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=not batch_norm)
        self.bn_a = nn.BatchNorm2d(out_ch) if batch_norm else nn.Identity()
        self.bn_b = nn.BatchNorm2d(out_ch) if batch_norm else nn.Identity()
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y1 = self.bn_a(self.conv_a(x))
        y2 = self.bn_b(self.conv_b(self.relu(y1)))
        return self.relu(y1 + y2)


class PlainConv(nn.Module):
    """One 3x3 convolution (+ BN) + ReLU: what Table 5's PCNN puts in place of a residual block."""

    def __init__(self, in_ch: int, out_ch: int, *, batch_norm: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=not batch_norm)
        self.bn = nn.BatchNorm2d(out_ch) if batch_norm else nn.Identity()
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


BLOCKS = {"residual": ResidualPair, "plain": PlainConv}


class StripeBranch(nn.Module):
    """One body part's unshared path: blocks -> 3x3/1 max pool -> ReLU -> FC -> ReLU -> FC."""

    def __init__(
        self, in_ch: int, channels: int, blocks: int, batch_norm: bool, flat_dim: int, fc_dim: int, block: str = "residual"
    ):
        super().__init__()
        kind = BLOCKS[block]
        layers = [kind(in_ch if i == 0 else channels, channels, batch_norm=batch_norm) for i in range(blocks)]
        self.blocks = nn.Sequential(*layers)
        self.pool = nn.MaxPool2d(3, stride=1)
        self.relu = nn.ReLU()
        self.fc1 = nn.Linear(flat_dim, fc_dim)
        self.fc2 = nn.Linear(fc_dim, fc_dim)

    def forward(self, stripe: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.relu(self.pool(self.blocks(stripe))).flatten(1)
        first = self.relu(self.fc1(x))
        return first, self.fc2(first)


class PartCNN(nn.Module):
    """Global conv -> four unshared stripe branches -> fusion; ``features`` is the 800-d vector."""

    def __init__(
        self,
        *,
        height: int = 230,
        width: int = 80,
        residual_blocks: int = 1,
        batch_norm: bool = False,
        block: str = "residual",
        stem_channels: int = 64,
        branch_channels: int = 32,
        fc_dim: int = 100,
        fusion_dim: int = 400,
        init: str = "paper",
    ) -> None:
        super().__init__()
        if not 1 <= residual_blocks <= 4:
            raise ConfigError(
                f"model.residual_blocks must be 1..4 (paper 001, Table 6), got {residual_blocks}."
            )
        if block not in BLOCKS:
            raise ConfigError(
                f"model.block must be one of {', '.join(BLOCKS)} (residual: RCNN; plain: Table 5's PCNN), got {block!r}."
            )
        if init not in ("paper", "kaiming"):
            raise ConfigError(f"model.init must be 'paper' or 'kaiming', got {init!r}.")
        self.input_size = (height, width)
        self.stem = nn.Sequential(
            nn.Conv2d(3, stem_channels, 7, stride=1, padding=3), nn.MaxPool2d(3, stride=3), nn.ReLU()
        )
        ph, pw = (height - 3) // 3 + 1, (width - 3) // 3 + 1  # after the 3x3/3 pooling
        if ph < NUM_STRIPES * 3 or pw < 3:
            raise ConfigError(
                f"input {height}x{width} is too small for the part CNN (pooled map {ph}x{pw}); "
                "use at least 36x9 (the paper uses 230x80)."
            )
        self.stripe_height = ph // NUM_STRIPES  # a remainder of rows (none at 230x80) is dropped
        flat_dim = branch_channels * (self.stripe_height - 2) * (pw - 2)
        self.branches = nn.ModuleList(
            StripeBranch(stem_channels, branch_channels, residual_blocks, batch_norm, flat_dim, fc_dim, block)
            for _ in range(NUM_STRIPES)
        )
        self.fusion = nn.Linear(NUM_STRIPES * fc_dim, fusion_dim)
        self.feat_dim = fusion_dim + NUM_STRIPES * fc_dim
        self._initialise(init)

    def embedding_layers(self) -> list[nn.Linear]:
        """The layers whose outputs are concatenated into the 800-d feature."""
        return [self.fusion, *(b.fc2 for b in self.branches)]

    def _initialise(self, init: str) -> None:
        output = {id(m) for m in self.embedding_layers()}
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                if init == "paper" or id(m) in output:  # Sec. 6.1: N(0, 0.01) convs, N(0, 0.001) FC layers
                    nn.init.normal_(m.weight, std=0.01 if isinstance(m, nn.Conv2d) else 0.001)
                elif isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                else:
                    nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, images: torch.Tensor) -> ModelOutput:
        if tuple(images.shape[-2:]) != self.input_size:
            raise ConfigError(
                f"part CNN built for {self.input_size[0]}x{self.input_size[1]} input got "
                f"{images.shape[-2]}x{images.shape[-1]} images; set input.height/width to match."
            )
        maps = self.stem(images)
        h = self.stripe_height
        firsts, seconds = [], []
        for i, branch in enumerate(self.branches):  # four unshared paths, one per body stripe
            first, second = branch(maps[:, :, i * h : (i + 1) * h])
            firsts.append(first)
            seconds.append(second)
        fused = self.fusion(torch.cat(firsts, dim=1))
        features = torch.cat([fused, *seconds], dim=1)
        return ModelOutput(features=features, pooled=features)

    def new_parameters(self) -> list[nn.Parameter]:
        return list(self.parameters())  # trained from scratch: every layer is "new"


def build_part_cnn(*, weights=None, **kw) -> PartCNN:
    """Paper 001's network; ``weights=PATH`` fine-tunes a previous run (the paper's CUHK03 ->
    Market-1501 transfer, Table 6), otherwise the Gaussian initialisation of Sec. 6.1."""
    model = PartCNN(**kw)
    load_into(model, "part_cnn", weights)
    return model
