"""Evaluation: distances, ranking metrics (CMC / mAP / mINP), the papers' protocols and analyses.

``distance`` (distances, also used by the losses) -> ``ranking`` (``rank_metrics``) ->
``streaming`` (the same metrics from features, without the ``Q x G`` matrix: Market + 500k
distractors) -> ``protocols`` (Market SQ/MQ, CUHK03, two-view single-shot) and ``analysis``
(camera pairs, negatives of interest, gallery size); ``rerank`` and ``joint_bayesian`` produce
distance matrices for ``rank_metrics``; ``neighbors`` gives exact k-nearest-neighbour lists and
the CMC up to rank k (optionally through faiss). ``validation`` holds the input checks they all
share.
"""

from reid.metrics.analysis import (
    CameraPairMAP,
    NegativesOfInterest,
    camera_pair_map,
    figures_of_merit,
    gallery_size_curve,
    negatives_of_interest,
    relative_improvement,
)
from reid.metrics.distance import (
    cosine_similarity_matrix,
    euclidean,
    pairwise_distance,
    squared_euclidean,
)
from reid.metrics.joint_bayesian import JointBayesian
from reid.metrics.protocols import (
    SingleShotResult,
    average_single_shot,
    cuhk03_classic,
    cuhk03_new_protocol,
    market_multi_query,
    market_single_query,
    pool_multi_query,
    random_identity_split,
    single_shot_cmc,
    two_view_single_shot,
)
from reid.metrics.ranking import (
    AP_DEFINITIONS,
    RankMetrics,
    average_precision,
    rank_metrics,
    rank_metrics_reference,
)
from reid.metrics.neighbors import Neighbors, TopKCMC, nearest_neighbors, topk_cmc
from reid.metrics.rerank import k_reciprocal_rerank, rerank_distances
from reid.metrics.streaming import MatchRanks, match_ranks_features, rank_metrics_features

__all__ = [
    "AP_DEFINITIONS",
    "CameraPairMAP",
    "JointBayesian",
    "MatchRanks",
    "Neighbors",
    "NegativesOfInterest",
    "RankMetrics",
    "SingleShotResult",
    "TopKCMC",
    "average_precision",
    "average_single_shot",
    "camera_pair_map",
    "cosine_similarity_matrix",
    "cuhk03_classic",
    "cuhk03_new_protocol",
    "euclidean",
    "figures_of_merit",
    "gallery_size_curve",
    "k_reciprocal_rerank",
    "market_multi_query",
    "market_single_query",
    "match_ranks_features",
    "nearest_neighbors",
    "negatives_of_interest",
    "pairwise_distance",
    "pool_multi_query",
    "random_identity_split",
    "rank_metrics",
    "rank_metrics_features",
    "rank_metrics_reference",
    "relative_improvement",
    "rerank_distances",
    "single_shot_cmc",
    "squared_euclidean",
    "topk_cmc",
    "two_view_single_shot",
]
