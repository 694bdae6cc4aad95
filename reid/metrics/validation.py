"""Input checks shared by the whole public metrics API (one place, one wording).

* :func:`as_labels` — identity / camera labels as ``int64``: integral numbers only. Floats such as
  ``1.8`` used to be truncated silently (so pid 1.8 matched pid 1.2); strings used to fail deep
  inside NumPy. Both now raise one :class:`~reid.errors.ConfigError` naming the fix.
* :func:`check_features` — feature matrices must be finite: a NaN feature (a diverged model)
  would otherwise rank arbitrarily or fail inside ``bincount``.
* :func:`check_distances` — distance matrices must not contain NaN (``+inf`` is allowed: callers
  use it to mask entries out).
* :func:`nan_distance_error` — the error the fast paths raise when they find a NaN on the way.

Imports only NumPy, torch and :mod:`reid.errors`, so :mod:`reid.metrics.distance` (imported early by
the losses) can use it.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch

from reid.errors import ConfigError

__all__ = ["as_array", "as_labels", "check_distances", "check_features", "nan_distance_error"]


def as_array(x: Any, dtype=None) -> np.ndarray:
    """A NumPy view of an array-like or (CPU or CUDA) tensor, optionally cast to ``dtype``."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    return arr if dtype is None else arr.astype(dtype, copy=False)


def as_labels(x: Any, name: str) -> np.ndarray:
    """``x`` as a 1-D ``int64`` array of identity or camera labels, or one clear error.

    Accepts integer and boolean arrays, and floating arrays whose values are all integral (``1.0``,
    as labels read from a float tensor). Rejects NaN / inf, non-integral values (``1.8``) and strings,
    which earlier versions truncated or mis-parsed silently.
    """
    arr = as_array(x)
    if arr.dtype.kind == "O":  # lists mixing Python ints with other objects
        if all(isinstance(v, numbers.Integral) for v in arr.reshape(-1)):
            arr = arr.astype(np.int64)
        elif all(isinstance(v, numbers.Real) for v in arr.reshape(-1)):
            arr = arr.astype(np.float64)
    kind = arr.dtype.kind
    if kind in "iub":
        return arr.astype(np.int64, copy=False).reshape(-1)
    if kind == "f":
        flat = arr.reshape(-1)
        bad = ~np.isfinite(flat)
        if bad.any():
            raise ConfigError(
                f"{name} contains {int(bad.sum())} NaN/inf value(s) (first at index "
                f"{int(np.flatnonzero(bad)[0])}); labels must be integers.")
        frac = flat != np.round(flat)
        if frac.any():
            i = int(np.flatnonzero(frac)[0])
            raise ConfigError(
                f"{name} must hold integers, but {name}[{i}] = {flat[i]!r} is not integral; "
                "pass integer identity/camera labels (they are never rounded or truncated).")
        return flat.astype(np.int64)
    example = arr.reshape(-1)[0] if arr.size else None
    raise ConfigError(
        f"{name} must hold integer labels, got dtype {arr.dtype} (e.g. {example!r}); map string "
        "labels to integers first, e.g. np.unique(labels, return_inverse=True)[1].")


def check_features(t: torch.Tensor, name: str) -> torch.Tensor:
    """Raise one clear error when a feature matrix holds NaN or inf; return it unchanged."""
    if not (t.is_floating_point() and t.numel()):
        return t
    # One reduction without a temporary of t's size (NaN propagates through min/max).
    low, high = torch.aminmax(t)
    if not bool(torch.isfinite(low) & torch.isfinite(high)):
        bad = ~torch.isfinite(t)
        row = int(bad.any(-1).nonzero()[0, 0]) if t.dim() > 1 else int(bad.nonzero()[0, 0])
        raise ConfigError(
            f"{name} contains {int(bad.sum())} NaN/inf value(s) (first in row {row}); the model "
            "produced non-finite features (did training diverge?). Check the features before "
            "evaluating.")
    return t


def nan_distance_error(name: str = "dist") -> ConfigError:
    """The error for a distance matrix with NaN entries (raised by the callers)."""
    return ConfigError(
        f"{name} contains NaN; NaN distances cannot be ranked. Check the features for NaN (a "
        "diverged model) before evaluating.")


def check_distances(dist: Any, name: str = "dist") -> None:
    """Raise :func:`nan_distance_error` when ``dist`` (array or tensor) contains NaN."""
    if isinstance(dist, torch.Tensor):
        has_nan = dist.is_floating_point() and bool(torch.isnan(dist).any())
    else:
        arr = np.asarray(dist)
        has_nan = arr.dtype.kind in "fc" and bool(np.isnan(arr).any())
    if has_nan:
        raise nan_distance_error(name)
