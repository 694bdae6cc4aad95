"""The benchmark chapter's registered study: five losses, one backbone, one budget, all pairs compared.

The benchmark is not a paper, so its registry lives here rather than in ``reid/papers/`` (the
same structure as a paper's ``study`` + ``claims``; see :mod:`reid.study.registry`). It has no
directional claims: it compares **every pair** of the five losses with Welch's t-test (the
recipes differ, so seeds are not paired across them), t critical values from
``scipy.stats.t``, and Holm's correction over all pairs of each metric
(:func:`reid.study.stats.pairwise_welch_holm`).

What is held equal: the backbone (the small CPU ResNet, width 16, from scratch; paper 003's two
view mappings are two copies of it), the input size (64×32), the dataset (the SynthReID smoke
preset) and the training length (``budget``: 20 epochs). What each recipe keeps: its sampler,
optimiser, base learning rate, loss hyper-parameters at the study scale, and the *shape* of its
own learning-rate schedule, rescaled to the budget (:mod:`reid.study.budget`; no silent
constant learning rate).

Run it with ``reid study benchmark`` (5 seeds × 5 losses, two processes); a trial:
``reid study benchmark --seeds 2 --scale smoke --budget 3 --out runs/benchmark --allow-dirty``.
"""

from __future__ import annotations

#: The backbone every loss trains (from scratch on the CPU).
BACKBONE = {"model.name": "small_resnet", "model.width": 16, "model.weights": None}

REGISTRY: dict = {
    "title": "Five losses, one benchmark",
    "study": {
        "chapter": "benchmark",
        "recipe": "smc_ecd",
        "dataset": "synthreid",
        "scale": "study",
        "seeds": 5,
        "budget": {"epochs": 20},
        "overrides": {"data.synth_preset": "smoke", "input.height": 64, "input.width": 32},
        "variants": {
            "smc_ecd": {"recipe": "smc_ecd", "overrides": {**BACKBONE, "loss.name": "smc_ecd"}},
            "adaptive_margin": {"recipe": "adaptive_margin", "overrides": {**BACKBONE, "loss.name": "adaptive"}},
            "support_neighbor": {"recipe": "support_neighbor", "overrides": {**BACKBONE, "loss.name": "support_neighbor"}},
            "view_adaptation": {"recipe": "view_adaptation", "overrides": {
                "model.ms": "small_resnet", "model.mt": "small_resnet", "model.ms_weights": None,
                "model.mt_weights": None, "model.small_width": 16, "loss.name": "adaptive"}},
            "joint_am_triplet": {"recipe": "joint_am_triplet", "overrides": {**BACKBONE, "loss.name": "AM0BH"}},
        },
        "comparisons": {"metrics": ["mAP", "rank1"], "test": "welch", "correction": "holm", "alpha": 0.05},
    },
    "claims": [],
}

#: Display names of the variants, with their paper.
LABELS = {
    "smc_ecd": "SMC+ECD (000)",
    "adaptive_margin": "adaptive margin (001)",
    "support_neighbor": "support neighbour (002)",
    "view_adaptation": "view adaptation (003)",
    "joint_am_triplet": "AM0BH (004)",
}
