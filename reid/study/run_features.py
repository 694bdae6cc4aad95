"""What the paper chapters read from a finished run besides ``results.json``: its saved features.

A run directory written by :func:`reid.engine.train` holds ``features.pt`` (query / gallery
embeddings, identities, cameras, image paths, and the recipe's retrieval distance). The chapters
rank from it with the library's metrics; this module only loads and wires those pieces:

* :func:`load_run_features` — the dict saved by the engine;
* :func:`run_distance` — the query x gallery distance matrix with the run's own metric
  (optionally k-reciprocal re-ranked, :func:`reid.metrics.rerank.k_reciprocal_rerank`);
* :func:`run_rank_metrics` — :func:`reid.metrics.rank_metrics` on it (full CMC curve, mAP, mINP);
* :func:`run_records` — ``(path, pid, camid)`` records for :func:`reid.viz.show_ranked_lists`;
* :func:`gallery_size_split` — a distractor set carved out of the run's own test identities.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from reid.metrics import pairwise_distance, rank_metrics

__all__ = ["load_run_features", "run_distance", "run_rank_metrics", "run_records", "gallery_size_split"]


def load_run_features(run_dir: str | Path) -> dict[str, Any]:
    """The ``features.pt`` of a finished run (CPU tensors; read without unpickling code)."""
    from reid.engine.features_io import load_run_features as load

    return load(run_dir)


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


def gallery_size_split(feats: dict, *, fraction: float = 0.5, seed: int = 0) -> dict[str, Any]:
    """Arguments for :func:`reid.metrics.analysis.gallery_size_curve` from one run's test features.

    Paper 002's gallery-size study adds Market-1501's 500k distractors (people who are not any of
    the test identities) to the gallery. A smoke-scale run has no distractor set, so we make one
    from its own test set: a random ``fraction`` of the test identities keep their queries and
    gallery images; the gallery images of the *other* identities become the distractors (they
    match no remaining query). Returns ``query_features, gallery_features, distractor_features,
    q_pids, g_pids, q_camids, g_camids`` as keyword arguments, plus ``metric`` / ``normalize``.
    """
    import numpy as np

    q_pids, g_pids = feats["query_pids"].numpy(), feats["gallery_pids"].numpy()
    ids = np.unique(q_pids[q_pids > 0])
    rng = np.random.default_rng(seed)
    kept = rng.permutation(ids)[: max(1, int(round(fraction * len(ids))))]
    q_keep = np.isin(q_pids, kept)
    g_keep = np.isin(g_pids, kept) | (g_pids <= 0)  # junk (-1) and distractors (0) stay as they are
    g_other = ~g_keep
    return {
        "query_features": feats["query"][torch.from_numpy(q_keep)],
        "gallery_features": feats["gallery"][torch.from_numpy(g_keep)],
        "distractor_features": feats["gallery"][torch.from_numpy(g_other)],
        "q_pids": q_pids[q_keep], "g_pids": g_pids[g_keep],
        "q_camids": feats["query_camids"].numpy()[q_keep], "g_camids": feats["gallery_camids"].numpy()[g_keep],
        "metric": feats.get("metric", "euclidean"), "normalize": bool(feats.get("normalize", False)),
    }
