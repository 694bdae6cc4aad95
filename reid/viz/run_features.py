"""What the paper chapters read from a finished run besides ``results.json``: its saved features.

A run directory written by :func:`reid.engine.train` holds ``features.pt`` (query / gallery
embeddings, identities, cameras, image paths, and the recipe's retrieval distance). The chapters
rank from it with the library's metrics; this module only loads and wires those pieces:

* :func:`load_run_features` — the dict saved by the engine;
* :func:`run_distance` — the query x gallery distance matrix with the run's own metric
  (optionally k-reciprocal re-ranked, :func:`reid.metrics.rerank.k_reciprocal_rerank`);
* :func:`run_rank_metrics` — :func:`reid.metrics.rank_metrics` on it (full CMC curve, mAP, mINP);
* :func:`run_records` — ``(path, pid, camid)`` records for :func:`reid.viz.common.show_ranked_lists`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from reid.errors import ReidError
from reid.metrics import pairwise_distance, rank_metrics

__all__ = ["load_run_features", "run_distance", "run_rank_metrics", "run_records"]


def load_run_features(run_dir: str | Path) -> dict[str, Any]:
    """The ``features.pt`` of a finished run (CPU tensors)."""
    path = Path(run_dir) / "features.pt"
    if not path.is_file():
        raise ReidError(f"no features.pt in {run_dir}: train the run to the end first (reid.engine.train).")
    return torch.load(path, map_location="cpu", weights_only=False)


def _labels(feats: dict) -> tuple:
    return (feats["query_pids"].numpy(), feats["gallery_pids"].numpy(),
            feats["query_camids"].numpy(), feats["gallery_camids"].numpy())


def run_distance(feats: dict, *, rerank: bool = False, **rerank_kw) -> torch.Tensor:
    """Query x gallery distances with the run's metric (``feats["metric"]``, ``feats["normalize"]``)."""
    metric, normalize = feats.get("metric", "euclidean"), bool(feats.get("normalize", False))
    if rerank:
        from reid.metrics.rerank import k_reciprocal_rerank

        return k_reciprocal_rerank(feats["query"], feats["gallery"], metric=metric, normalize=normalize, **rerank_kw)
    return pairwise_distance(feats["query"], feats["gallery"], metric, normalize=normalize)


def run_rank_metrics(feats: dict, dist: torch.Tensor | None = None, *, max_rank: int = 50, ap: str = "step"):
    """Market-rule ranking metrics (:class:`reid.metrics.RankMetrics`) of a run's features."""
    dist = run_distance(feats) if dist is None else dist
    return rank_metrics(dist, *_labels(feats), max_rank=max_rank, ap=ap)


def run_records(feats: dict, split: str) -> list[tuple[str, int, int]]:
    """``(path, pid, camid)`` of the ``"query"`` or ``"gallery"`` images, in feature order."""
    return list(zip(feats[f"{split}_paths"], feats[f"{split}_pids"].tolist(), feats[f"{split}_camids"].tolist()))
