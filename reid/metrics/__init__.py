"""Evaluation: distances, ranking metrics (CMC / mAP / mINP), the papers' protocols and analyses."""

from reid.metrics.distance import (
    cosine_similarity_matrix,
    euclidean,
    pairwise_distance,
    squared_euclidean,
)

__all__ = [
    "cosine_similarity_matrix",
    "euclidean",
    "pairwise_distance",
    "squared_euclidean",
]
