"""Extra per-run metrics: named analyses a recipe asks for with ``eval.analyses: [name, ...]``.

The standard evaluation (:func:`reid.engine.evaluation.metrics_from_features`) computes CMC,
mAP and mINP. Some claims need more, measured on the trained model of every run (paper 000's
same-camera false matches, paper 002's gallery-size slope, paper 004's radial-gradient share).
An analysis is a function registered under a name, with the metric names it returns::

    @register_analysis("negatives_of_interest", metrics=("neg_interest_k1", "neg_interest_k10"))
    def negatives_of_interest(model, objective, data, features, cfg) -> dict[str, float]:
        ...

Arguments: the trained ``model`` (eval mode), the run's ``objective``
(:mod:`reid.engine.objectives`), its ``data`` (:class:`reid.engine.data.TrainingData`), the
``features`` dict that is saved as ``features.pt`` (query/gallery embeddings, pids, camids,
paths, the retrieval ``metric`` and ``normalize``) and the resolved recipe ``cfg``. It returns
exactly its declared metrics as floats; the trainer merges them into ``results.json["metrics"]``
(:func:`run_analyses`, called at the end of ``Trainer.evaluate_and_save``). Declaring the names
lets ``reid study`` check, before any run, that a claim's metric will exist.

An analysis must be deterministic (same features, same numbers) and cheap next to training.
Add a paper's analyses in its section below.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from reid.errors import ConfigError

__all__ = ["ANALYSES", "register_analysis", "check_analyses", "declared_metrics", "run_analyses"]

#: name -> (function, declared metric names)
ANALYSES: dict[str, tuple[Callable[..., dict[str, float]], tuple[str, ...]]] = {}


def register_analysis(name: str, *, metrics: tuple[str, ...]):
    """Register ``fn(model, objective, data, features, cfg) -> {metric: float}`` under ``name``."""
    if not metrics or not all(isinstance(m, str) and m for m in metrics):
        raise ValueError(f"analysis {name!r} must declare the metric names it returns.")

    def wrap(fn):
        if name in ANALYSES and ANALYSES[name][0] is not fn:
            raise ValueError(f"an analysis named {name!r} is already registered.")
        ANALYSES[name] = (fn, tuple(metrics))
        return fn

    return wrap


def check_analyses(names: Any) -> None:
    """ConfigError unless ``names`` is a list of registered analysis names."""
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"eval.analyses must be a list of analysis names, got {names!r}.")
    unknown = [n for n in names if n not in ANALYSES]
    if unknown:
        raise ConfigError(f"eval.analyses: unknown analysis {unknown[0]!r}; registered: {', '.join(sorted(ANALYSES)) or 'none'}.")


def declared_metrics(names: list[str]) -> set[str]:
    """The metric names the analyses ``names`` will add."""
    check_analyses(list(names))
    return {m for n in names for m in ANALYSES[n][1]}


def run_analyses(names: list[str], *, model, objective, data, features: dict, cfg: dict) -> dict[str, float]:
    """Run the named analyses and return their merged metrics (checked against the declarations)."""
    out: dict[str, float] = {}
    for name in names:
        fn, declared = ANALYSES[name]
        values = fn(model, objective, data, features, cfg)
        if set(values) != set(declared):
            raise RuntimeError(f"analysis {name!r} returned {sorted(values)}, but declares {sorted(declared)}.")
        for key, value in values.items():
            value = float(value)
            if not math.isfinite(value):
                raise RuntimeError(f"analysis {name!r} returned a non-finite {key}={value}.")
            out[key] = value
    return out


# ------------------------------------------------------------------------------------ generic
@register_analysis("negatives_of_interest", metrics=("neg_interest_k1", "neg_interest_k10"))
def negatives_of_interest(model, objective, data, features, cfg) -> dict[str, float]:
    """Percentage of top-1 / top-10 false matches shot by the probe's own camera (paper 000, Fig. 1),
    :func:`reid.metrics.analysis.negatives_of_interest` on the run's own distance (percent, 0–100)."""
    from reid.metrics.analysis import negatives_of_interest as noi
    from reid.metrics.distance import pairwise_distance

    f = features
    dist = pairwise_distance(f["query"], f["gallery"], f["metric"], normalize=bool(f["normalize"]))
    labels = (f["query_pids"].numpy(), f["gallery_pids"].numpy(), f["query_camids"].numpy(), f["gallery_camids"].numpy())
    return {f"neg_interest_k{k}": noi(dist, *labels, k=k).percent for k in (1, 10)}


# ------------------------------------------------------------------ paper 000 (smc_ecd)

# ------------------------------------------------------------------ paper 001 (adaptive_margin)

# ------------------------------------------------------------------ paper 002 (support_neighbor)

# ------------------------------------------------------------------ paper 003 (view_adaptation)

# ------------------------------------------------------------------ paper 004 (joint_am_triplet)
