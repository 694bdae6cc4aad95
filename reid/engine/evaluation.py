"""Evaluation after training: query/gallery features, ``features.pt``, ranking metrics.

``features.pt`` holds the query and gallery embeddings with their identities, cameras and image
paths, so any later analysis (re-ranking, camera-pair mAP, gallery-size studies) works from
the file without the model. :func:`evaluate` recomputes metrics from it for any protocol.
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path

import torch

from reid.errors import ConfigError

__all__ = ["extract_features", "metrics_from_features", "evaluate", "finished_run", "ranking_distance", "PROTOCOLS"]

#: Protocols :func:`evaluate` understands on saved features.
PROTOCOLS = ("market_sq", "market_mq", "single_shot")


@torch.no_grad()
def extract_features(model, loader, *, device: torch.device, autocast=nullcontext, view=None, channels_last=False,
                     feature: str = "features"):
    """Embed every image of ``loader`` (in order); returns a float32 CPU tensor ``(N, D)``.

    ``feature`` names the :class:`~reid.models.heads.ModelOutput` field to keep (``features``, or
    ``id_features`` for paper 004's full model)."""
    model.eval()
    chunks = []
    for images, *_ in loader:
        images = images.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast():
            out = model(images) if view is None else model(images, view)
        chunks.append(getattr(out, feature).float().cpu())
    return torch.cat(chunks) if chunks else torch.zeros(0, 0)


def _rank(feats: dict, *, metric: str, normalize: bool, protocol: str, rerank: bool, ap: str):
    from reid.metrics import protocols
    from reid.metrics.ranking import rank_metrics

    labels = (feats["query_pids"], feats["gallery_pids"], feats["query_camids"], feats["gallery_camids"])
    query = feats["query"]
    if protocol == "market_mq":
        # multi-query: each query replaced by the max-pool over its identity's same-camera queries
        query = protocols.pool_multi_query(query, feats["query_pids"], feats["query_camids"], pooling="max")
    if rerank:
        from reid.metrics.rerank import k_reciprocal_rerank

        # k-reciprocal re-ranking (Zhong et al. 2017) with its default k1=20, k2=6, lambda=0.3
        dist = k_reciprocal_rerank(query, feats["gallery"], metric="cosine" if metric == "cosine" else "euclidean", normalize=normalize)
        return rank_metrics(dist, *labels, ap=ap)
    return protocols.market_single_query(query, feats["gallery"], *labels, metric=metric, normalize=normalize, ap=ap)


def metrics_from_features(feats: dict, *, metric: str = "euclidean", normalize: bool = False, protocol: str = "market_sq", rerank: bool = False) -> dict:
    """Rank-1/5/10, mAP (step and trapezoid AP) and mINP of saved query/gallery features.

    ``market_sq``: Market-1501 single query (:func:`reid.metrics.protocols.market_single_query`);
    ``market_mq``: multi-query with max pooling over each identity's same-camera queries;
    ``single_shot``: the two-view single-shot CMC (no mAP).
    """
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}.")
    if protocol == "single_shot":
        return _single_shot(feats, metric=metric, normalize=normalize, rerank=rerank)
    kw = dict(metric=metric, normalize=normalize, protocol=protocol, rerank=rerank)
    step = _rank(feats, ap="step", **kw)
    trap = _rank(feats, ap="trapezoid", **kw)
    cmc = step.cmc
    return {
        "protocol": protocol,
        "metric": metric,
        "normalize": bool(normalize),
        "rerank": bool(rerank),
        "rank1": float(cmc[0]),
        "rank5": float(cmc[min(4, len(cmc) - 1)]),
        "rank10": float(cmc[min(9, len(cmc) - 1)]),
        "mAP": float(step.mAP),
        "mAP_trapezoid": float(trap.mAP),
        "mINP": float(step.mINP),
        "num_valid_queries": int(step.num_valid),
        "num_query": int(len(feats["query_pids"])),
        "num_gallery": int(len(feats["gallery_pids"])),
    }


def _single_shot(feats: dict, *, metric: str, normalize: bool, rerank: bool) -> dict:
    """Two-view single-shot CMC (VIPeR / CUHK01 / PRID2011 / 3DPeS): one probe and one gallery
    image per identity drawn 10 times (:func:`reid.metrics.protocols.single_shot_cmc`); no mAP."""
    from reid.metrics.distance import pairwise_distance
    from reid.metrics.protocols import single_shot_cmc

    if rerank:
        raise ConfigError("re-ranking is defined for the Market-style protocols; use market_sq or market_mq.")
    dist = pairwise_distance(feats["query"], feats["gallery"], metric=metric, normalize=normalize)
    result = single_shot_cmc(dist, feats["query_pids"], feats["gallery_pids"], repeats=10, probe="one")
    cmc = result.cmc
    return {
        "protocol": "single_shot", "metric": metric, "normalize": bool(normalize), "rerank": False,
        "rank1": float(cmc[0]), "rank5": float(cmc[min(4, len(cmc) - 1)]),
        "rank10": float(cmc[min(9, len(cmc) - 1)]), "rank20": float(cmc[min(19, len(cmc) - 1)]),
        "repeats": result.repeats, "num_probes": result.num_probes,
    }  # fmt: skip


def finished_run(run_dir) -> tuple[dict, str, bool]:
    """``(features, metric, normalize)`` of a finished run: its ``features.pt`` (read with
    ``weights_only``, so a downloaded run cannot execute code) and its recipe's distance."""
    run_dir = Path(run_dir)
    feats_path, results_path = run_dir / "features.pt", run_dir / "results.json"
    if not feats_path.is_file() or not results_path.is_file():
        raise ConfigError(
            f"{run_dir} is not a finished run (needs features.pt and results.json); train it first with "
            "`reid train --recipe NAME --out DIR`, or resume it with --resume."
        )
    try:
        cfg = json.loads(results_path.read_text(encoding="utf-8"))["recipe"]
        metric, normalize = cfg["eval"]["metric"], cfg["eval"]["normalize"]
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"{results_path} is not a results.json written by `reid train` (corrupt or edited); "
                          "train the run again with --overwrite.") from None
    from reid.engine.features_io import load_run_features

    feats = load_run_features(run_dir)
    if not isinstance(feats, dict) or not {"query", "gallery", "query_pids", "gallery_pids"} <= set(feats):
        raise ConfigError(f"{feats_path} does not hold the features `reid train` writes; train the run again with --overwrite.")
    return feats, metric, bool(normalize)


def evaluate(run_dir, protocol: str = "market_sq", rerank: bool = False) -> dict:
    """Metrics of a finished run from its ``features.pt`` (distance as in its recipe).

    Writes ``eval-<protocol>[-rerank].json`` next to ``results.json`` and returns the metrics.
    """
    feats, metric, normalize = finished_run(run_dir)
    metrics = metrics_from_features(feats, metric=metric, normalize=normalize, protocol=protocol, rerank=rerank)
    from reid.engine.provenance import write_json

    write_json(metrics, Path(run_dir) / f"eval-{protocol}{'-rerank' if rerank else ''}.json")
    return metrics


def ranking_distance(feats: dict, *, metric: str, normalize: bool, rerank: bool = False) -> torch.Tensor:
    """The query x gallery distance the single-query metrics rank by (re-ranked on request)."""
    if rerank:
        from reid.metrics.rerank import k_reciprocal_rerank

        return k_reciprocal_rerank(feats["query"], feats["gallery"], metric="cosine" if metric == "cosine" else "euclidean",
                                   normalize=normalize)
    from reid.metrics.distance import pairwise_distance

    return pairwise_distance(feats["query"], feats["gallery"], metric=metric, normalize=normalize)
