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
Other backbones or scales (the GPU version): write :func:`benchmark_registry`'s dict to a JSON
file and pass its path to ``reid study`` (the notebook does this).
"""

from __future__ import annotations

def benchmark_registry(*, backbone: str = "small_resnet", width: int = 16, weights: str | None = None,
                       height: int = 64, image_width: int = 32, epochs: int = 20, scale: str = "study",
                       preset: str | None = "smoke", seeds: int = 5, dataset: str = "synthreid") -> dict:
    """The benchmark's registry for a backbone and a budget (the defaults are the registered study).

    ``width`` is the small ResNet's channel width (ignored for other backbones); ``weights`` their
    initialisation (``"imagenet"`` for ResNet-50 in the papers' setting, from the torch cache);
    ``preset`` the SynthReID preset every loss trains on (None: each recipe's own at ``scale``);
    ``dataset`` another dataset (its root is given to ``reid study --root``).
    """
    model = {"model.name": backbone, "model.weights": weights}
    views = {"model.ms": backbone, "model.mt": backbone, "model.ms_weights": weights, "model.mt_weights": weights,
             # paper 003's own study uses the two-view layout; here all five losses share the Market layout and rule
             "data.layout": "market", "eval.protocol": "market_sq"}
    if backbone == "small_resnet":
        model["model.width"] = width  # also replaces paper 001's part-CNN `width` (its image width)
        views["model.small_width"] = width
    common = {"input.height": height, "input.width": image_width}
    if preset is not None and dataset == "synthreid":
        common["data.synth_preset"] = preset
    return {
        "title": "Five losses, one benchmark",
        "study": {
            "chapter": "benchmark", "recipe": "smc_ecd", "dataset": dataset, "scale": scale, "seeds": seeds,
            "budget": {"epochs": epochs}, "overrides": common,
            "variants": {
                "smc_ecd": {"recipe": "smc_ecd", "overrides": {**model, "loss.name": "smc_ecd"}},
                "adaptive_margin": {"recipe": "adaptive_margin", "overrides": {**model, "loss.name": "adaptive"}},
                "support_neighbor": {"recipe": "support_neighbor", "overrides": {**model, "loss.name": "support_neighbor"}},
                "view_adaptation": {"recipe": "view_adaptation", "overrides": {**views, "loss.name": "adaptive"}},
                "joint_am_triplet": {"recipe": "joint_am_triplet", "overrides": {**model, "loss.name": "AM0BH"}},
            },
            "comparisons": {"metrics": ["mAP", "rank1"], "test": "welch", "correction": "holm", "alpha": 0.05},
        },
        "claims": [],
    }  # fmt: skip


#: The registered study (``reid study benchmark``).
REGISTRY: dict = benchmark_registry()

#: Display names of the variants, with their paper.
LABELS = {
    "smc_ecd": "SMC+ECD (000)",
    "adaptive_margin": "adaptive margin (001)",
    "support_neighbor": "support neighbour (002)",
    "view_adaptation": "view adaptation (003)",
    "joint_am_triplet": "AM0BH (004)",
}
