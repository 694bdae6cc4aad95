"""Input checks and the ``reduction`` rule shared by the losses.

Every loss takes ``reduction="mean" | "sum"``:

* ``"sum"`` returns exactly the paper's Σ over its terms;
* ``"mean"`` divides that Σ by the number of terms the paper sums over (samples for the
  per-sample losses of paper 000, pairs for the pairwise losses of paper 001).

Bad input raises :class:`reid.errors.ConfigError` naming the problem and the fix; nothing here
is a bare ``assert``. Every loss starts its ``forward`` with :func:`check_finite`, so a NaN or
infinite input raises :class:`reid.errors.NonFiniteError` naming the loss instead of flowing
silently into the loss value — and a loss that moves buffers (the centres) never moves them
from a non-finite batch.
"""

from __future__ import annotations

import torch
from torch import nn

from reid.errors import ConfigError, NonFiniteError

REDUCTIONS = ("mean", "sum")


def check_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise ConfigError(
            f"reduction must be one of {REDUCTIONS}, got {reduction!r}; use 'sum' for the paper's "
            "exact Σ or 'mean' for Σ divided by its number of terms."
        )
    return reduction


def reduce_terms(terms: torch.Tensor, reduction: str) -> torch.Tensor:
    """Σ of ``terms`` (``"sum"``) or Σ / number of terms (``"mean"``)."""
    total = terms.sum()
    return total if reduction == "sum" else total / terms.numel()


def check_finite(loss: nn.Module | str, **tensors: torch.Tensor | None) -> None:
    """Refuse empty or non-finite floating-point inputs of ``loss`` (a module, or a name).

    ``tensors`` are the inputs by name (``None`` and non-float entries are skipped). An empty
    tensor raises :class:`ConfigError` (a loss needs at least one sample); a NaN or infinite value
    raises :class:`NonFiniteError` naming the loss, the input and how many values are bad.
    """
    name = loss if isinstance(loss, str) else type(loss).__name__
    for what, tensor in tensors.items():
        if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
            continue
        if tensor.numel() == 0:
            raise ConfigError(f"{name}: {what} is empty; the loss needs at least one sample in the batch.")
        if not bool(torch.isfinite(tensor).all()):
            nan, inf = int(torch.isnan(tensor).sum()), int(torch.isinf(tensor).sum())
            raise NonFiniteError(
                f"{name}: {what} holds {nan} NaN and {inf} infinite value(s) of {tensor.numel()}; the loss is "
                "undefined (nothing was updated). Usually the network diverged: lower optimizer.lr or set "
                "train.grad_clip."
            )


def check_features(features: torch.Tensor, feat_dim: int | None = None, name: str = "features") -> None:
    if not isinstance(features, torch.Tensor) or features.dim() != 2:
        shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
        raise ConfigError(
            f"{name} must be a 2-D (batch, dim) tensor, got {shape}; flatten the embedding first."
        )
    if not features.is_floating_point():
        raise ConfigError(f"{name} must be a floating-point tensor, got {features.dtype}; cast with .float().")
    if features.shape[0] == 0:
        raise ConfigError(f"{name} is an empty batch; a loss needs at least one sample.")
    if feat_dim is not None and features.shape[1] != feat_dim:
        raise ConfigError(
            f"{name} has dimension {features.shape[1]} but the loss was built for feat_dim={feat_dim}; "
            "build the loss with the model's embedding size."
        )


def check_index(values: torch.Tensor, size: int, batch: int, name: str, what: str) -> None:
    """``values`` is a (batch,) integer tensor with entries in ``[0, size)``."""
    if not isinstance(values, torch.Tensor) or values.dim() != 1 or values.shape[0] != batch:
        shape = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
        raise ConfigError(f"{name} must be a 1-D tensor with one entry per sample ({batch}), got {shape}.")
    if values.dtype in (torch.bool,) or values.is_floating_point() or values.is_complex():
        raise ConfigError(f"{name} must be an integer tensor, got {values.dtype}; cast with .long().")
    lo, hi = int(values.min()), int(values.max())
    if lo < 0 or hi >= size:
        raise ConfigError(
            f"{name} must lie in [0, {size}) but range over [{lo}, {hi}]; relabel the training "
            f"{what} to 0..{size - 1} (the dataset loaders do this with relabel=True) or build the "
            f"loss with the right number of {what}."
        )


def check_pairs(f_a: torch.Tensor, f_b: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    """Validate a batch of pairs; return ``y`` in {+1, -1} (Eq. 8 of paper 001) in the features' dtype.

    ``same`` may be boolean, or integer 0/1: ``True``/1 for a positive pair (same identity).
    """
    check_features(f_a, name="f_a")
    check_features(f_b, f_a.shape[1], name="f_b")
    if f_a.shape[0] != f_b.shape[0]:
        raise ConfigError(
            f"f_a and f_b must hold the same number of pairs, got {f_a.shape[0]} and {f_b.shape[0]}."
        )
    if not isinstance(same, torch.Tensor) or same.shape != (f_a.shape[0],):
        shape = tuple(same.shape) if isinstance(same, torch.Tensor) else type(same).__name__
        raise ConfigError(f"same must be a 1-D tensor with one flag per pair ({f_a.shape[0]}), got {shape}.")
    if same.dtype != torch.bool:
        if same.is_floating_point() or not bool(((same == 0) | (same == 1)).all()):
            raise ConfigError(
                "same must be boolean (or integer 0/1): True for a positive pair (same identity), "
                "False for a negative pair; convert labels with same = (pid_a == pid_b)."
            )
        same = same.bool()
    return same.to(f_a.dtype) * 2.0 - 1.0
