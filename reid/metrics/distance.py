"""Distances between feature vectors: one place for the whole library.

Two families live here:

* :func:`pairwise_distance` — evaluation distances between a query set and a gallery set. No
  gradient, computed in row blocks written straight into the output matrix, so only the
  ``Q x G`` result itself (plus one block) has to fit in memory. Accepts NumPy arrays or torch
  tensors and always returns a torch tensor (smaller is closer).
* :func:`squared_euclidean`, :func:`euclidean`, :func:`cosine_similarity_matrix` —
  differentiable in-batch helpers for the losses (``losses/*`` import them from here).

The module is deliberately import-light: torch (and NumPy only through ``torch.as_tensor``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

__all__ = [
    "METRICS",
    "pairwise_distance",
    "squared_euclidean",
    "euclidean",
    "cosine_similarity_matrix",
]

#: Names accepted by :func:`pairwise_distance`.
METRICS = ("euclidean", "sqeuclidean", "cosine")


def _config_error(message: str) -> Exception:
    # Imported lazily so this module stays importable on its own (losses import it early).
    from reid.errors import ConfigError

    return ConfigError(message)


def _as_features(x: Any, name: str) -> torch.Tensor:
    """A 2-D floating tensor view of ``x`` (NumPy arrays are shared, not copied, when possible)."""
    t = torch.as_tensor(x)
    if t.dim() == 1:
        t = t.unsqueeze(0)
    if t.dim() != 2:
        raise _config_error(
            f"{name} must be a 2-D (num_samples, dim) feature matrix, got shape {tuple(t.shape)}; "
            "flatten or stack the features first."
        )
    if not t.is_floating_point():
        t = t.float()
    return t.detach()


@torch.no_grad()
def pairwise_distance(
    x: Any,
    y: Any | None = None,
    metric: str = "euclidean",
    *,
    normalize: bool = False,
    block_size: int = 4096,
) -> torch.Tensor:
    """Distance matrix ``D[i, j] = d(x_i, y_j)`` for evaluation (smaller is closer).

    ``metric``:

    * ``"euclidean"``   ``||x - y||``, via ``sqrt(clamp(||x||² + ||y||² - 2 x·y, 0))``;
    * ``"sqeuclidean"`` ``||x - y||²`` (same ranking as Euclidean, one square root cheaper);
    * ``"cosine"``      ``1 - cos(x, y)`` in ``[0, 2]``.

    ``normalize=True`` L2-normalises both sets first (the "normalised features" setting the
    papers evaluate with); on unit vectors all three metrics give the same ranking.

    Rows of ``x`` are processed ``block_size`` at a time and written into a preallocated output,
    so the peak extra memory is one ``block_size x G`` block. Inputs may be NumPy arrays or torch
    tensors (any device); the result is a torch tensor on the input's device with the input's
    floating dtype (float32 for integer inputs). ``y=None`` means ``y = x``.
    """
    if metric not in METRICS:
        raise _config_error(f"unknown distance metric {metric!r}; use one of {', '.join(METRICS)}.")
    if block_size < 1:
        raise _config_error(f"block_size must be >= 1, got {block_size}.")
    xq = _as_features(x, "x")
    yg = xq if y is None else _as_features(y, "y").to(device=xq.device)
    if xq.shape[1] != yg.shape[1]:
        raise _config_error(
            f"x and y must have the same feature dimension, got {xq.shape[1]} and {yg.shape[1]}; "
            "extract both sets with the same model."
        )
    dtype = torch.promote_types(xq.dtype, yg.dtype)
    xq, yg = xq.to(dtype), yg.to(dtype)
    if normalize or metric == "cosine":
        xq = F.normalize(xq, dim=1)
        yg = F.normalize(yg, dim=1)

    out = torch.empty(xq.shape[0], yg.shape[0], dtype=dtype, device=xq.device)
    yt = yg.t()
    y_sq = (yg * yg).sum(1)
    for start in range(0, xq.shape[0], block_size):
        xb = xq[start : start + block_size]
        ob = out[start : start + block_size]
        if metric == "cosine":
            # 1 - x·y written in place: out = 1 + (-1) * (x @ y^T)
            torch.addmm(torch.ones((), dtype=dtype, device=xq.device), xb, yt, beta=1.0, alpha=-1.0, out=ob)
            ob.clamp_(min=0.0, max=2.0)
            continue
        x_sq = (xb * xb).sum(1, keepdim=True)
        # ||x||² + ||y||² - 2 x·y, accumulated in place to avoid extra block-sized temporaries.
        torch.addmm(y_sq.unsqueeze(0), xb, yt, beta=1.0, alpha=-2.0, out=ob)
        ob.add_(x_sq).clamp_(min=0.0)
        if metric == "euclidean":
            ob.sqrt_()
    return out


def squared_euclidean(x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """Differentiable ``D[i, j] = ||x_i - y_j||²`` for in-batch losses.

    Computed as ``||x||² + ||y||² - 2 x·y`` (one matrix product) and clamped at 0, because
    floating-point cancellation can make the expansion slightly negative for near-identical
    vectors. With ``y=None`` (``y = x``) the diagonal is set to exactly 0 — cancellation would
    otherwise leave values of order 1e-7·||x||² there.
    """
    y_ = x if y is None else y
    if x.dim() != 2 or y_.dim() != 2 or x.shape[1] != y_.shape[1]:
        raise _config_error(
            f"squared_euclidean expects (n, d) and (m, d) tensors, got {tuple(x.shape)} and "
            f"{tuple(y_.shape)}."
        )
    x_sq = (x * x).sum(1, keepdim=True)
    y_sq = x_sq if y is None else (y_ * y_).sum(1, keepdim=True)
    d2 = (x_sq + y_sq.t() - 2.0 * (x @ y_.t())).clamp(min=0.0)
    if y is None:
        eye = torch.eye(x.shape[0], dtype=torch.bool, device=x.device)
        d2 = d2.masked_fill(eye, 0.0)  # out-of-place: keeps autograd happy
    return d2


def euclidean(x: torch.Tensor, y: torch.Tensor | None = None, eps: float = 1e-12) -> torch.Tensor:
    """Differentiable ``D[i, j] = ||x_i - y_j||`` with a finite gradient at zero distance.

    ``sqrt`` has an infinite derivative at 0, so a zero distance (the diagonal when ``y=None``,
    or duplicated samples in a batch) would turn the whole backward pass into NaN. We return
    ``sqrt(clamp(d², min=eps))``: below ``eps`` the clamp passes a *zero* gradient, so such pairs
    simply do not contribute, and every other pair gets the exact gradient ``(x - y)/||x - y||``.
    The price is that a zero distance reads as ``sqrt(eps)`` (1e-6 for the default), far below
    any margin used by the losses. This is the same choice as the common re-ID toolkits'
    ``dist.clamp(min=1e-12).sqrt()``.
    """
    return squared_euclidean(x, y).clamp(min=eps).sqrt()


def cosine_similarity_matrix(
    x: torch.Tensor, y: torch.Tensor | None = None, eps: float = 1e-12
) -> torch.Tensor:
    """Differentiable ``S[i, j] = cos(x_i, y_j) = x_i·y_j / (||x_i|| ||y_j||)`` in ``[-1, 1]``.

    Each row is L2-normalised with ``F.normalize`` (norm clamped at ``eps``, so a zero vector gives
    similarity 0 instead of NaN) and the result is one matrix product.
    """
    y_ = x if y is None else y
    if x.dim() != 2 or y_.dim() != 2 or x.shape[1] != y_.shape[1]:
        raise _config_error(
            f"cosine_similarity_matrix expects (n, d) and (m, d) tensors, got {tuple(x.shape)} and "
            f"{tuple(y_.shape)}."
        )
    xn = F.normalize(x, dim=1, eps=eps)
    yn = xn if y is None else F.normalize(y_, dim=1, eps=eps)
    return xn @ yn.t()
