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
lets ``reid study`` check, before any run, that a claim's metric will exist. Metrics stored as
fractions in [0, 1] (like rank-1 and mAP) are listed in ``fractions=(...)``: the evidence tables
then show them x100, in points, as they do the standard metrics.

An analysis must be deterministic (same features, same numbers). One that is costly can be run
after training instead, on the finished runs (``study.posthoc`` in a registry, or ``reid analyse``:
:mod:`reid.engine.reanalysis`). Inputs that every run of a study shares (paper 002's distractor
images) are built once by the analysis's ``prepare(cfg, data, jobs=, progress=)`` hook, which
``reid study`` calls before its workers start. Add a paper's analyses in its section below.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from reid.errors import ConfigError

__all__ = ["ANALYSES", "register_analysis", "check_analyses", "declared_metrics", "fraction_metrics", "run_analyses",
           "prepare_analysis"]

#: name -> (function, declared metric names)
ANALYSES: dict[str, tuple[Callable[..., dict[str, float]], tuple[str, ...]]] = {}
#: declared metrics stored as fractions in [0, 1] (shown x100 in the evidence tables)
_FRACTIONS: set[str] = set()
#: name -> prepare(cfg, data, *, jobs, progress): builds the inputs the runs of a study share
_PREPARE: dict[str, Callable[..., Any]] = {}


def register_analysis(name: str, *, metrics: tuple[str, ...], fractions: tuple[str, ...] = (),
                      prepare: Callable[..., Any] | None = None):
    """Register ``fn(model, objective, data, features, cfg) -> {metric: float}`` under ``name``;
    ``fractions``: those of ``metrics`` stored as fractions in [0, 1]; ``prepare``: an optional
    ``prepare(cfg, data, *, jobs, progress)`` building shared inputs once (see the module docstring)."""
    if not metrics or not all(isinstance(m, str) and m for m in metrics):
        raise ValueError(f"analysis {name!r} must declare the metric names it returns.")
    if not set(fractions) <= set(metrics):
        raise ValueError(f"analysis {name!r}: fractions {sorted(set(fractions) - set(metrics))} are not among its metrics.")
    _FRACTIONS.update(fractions)

    def wrap(fn):
        if name in ANALYSES and ANALYSES[name][0] is not fn:
            raise ValueError(f"an analysis named {name!r} is already registered.")
        ANALYSES[name] = (fn, tuple(metrics))
        if prepare is not None:
            _PREPARE[name] = prepare
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


def fraction_metrics() -> frozenset[str]:
    """Every analysis metric declared as a fraction in [0, 1]."""
    return frozenset(_FRACTIONS)


def prepare_analysis(name: str, cfg: dict, data, *, jobs: int = 1, progress: bool = True) -> None:
    """Build the shared inputs of analysis ``name`` for ``cfg`` and ``data`` (nothing when it has none)."""
    check_analyses([name])
    if name in _PREPARE:
        _PREPARE[name](cfg, data, jobs=jobs, progress=progress)


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
# Negatives of interest (Fig. 1, Table V) are the generic ``negatives_of_interest`` above.
def embed_records(model, objective, cfg, records):
    """Embeddings of ``records`` by the trained ``model``, the way the run embedded its query and
    gallery (evaluation transform and batch size, ``objective.eval_feature``); float32 CPU ``(N, D)``."""
    from reid.engine.data import build_eval_loader
    from reid.engine.evaluation import extract_features

    device = next(model.parameters()).device
    loader = build_eval_loader(cfg, records, device=device)
    return extract_features(model, loader, device=device, feature=objective.eval_feature)


def _labels(f: dict) -> tuple:
    return f["query_pids"].numpy(), f["gallery_pids"].numpy(), f["query_camids"].numpy(), f["gallery_camids"].numpy()


@register_analysis("multi_query", metrics=("mq_mAP", "mq_rank1"), fractions=("mq_mAP", "mq_rank1"))
def multi_query(model, objective, data, features, cfg) -> dict[str, float]:
    """Paper 000, Table IV: each query max-pooled with every multi-query image (``gt_bbox``) of its
    identity in its camera ("we apply the max pooling strategy ... to merge them into a single
    query", Sec. IV-A), then ranked like a single query with the run's own distance
    (:func:`reid.metrics.protocols.market_multi_query`). Fractions, like rank-1 and mAP."""
    from reid.metrics.protocols import market_multi_query

    extra = data.dataset.multi_query
    if not extra:
        raise ConfigError("analysis multi_query needs the dataset's multi-query images (Market-1501's gt_bbox/, "
                          "SynthReID's multi_query split); the validation split has none: drop the analysis there.")
    f = features
    pooled = market_multi_query(
        f["query"], f["gallery"], *_labels(f), pooling="max", metric=f["metric"], normalize=bool(f["normalize"]),
        extra_features=embed_records(model, objective, cfg, extra),
        extra_pids=[r.pid for r in extra], extra_camids=[r.camid for r in extra],
    )  # fmt: skip
    return {"mq_mAP": pooled.mAP, "mq_rank1": pooled.rank1}


@register_analysis("joint_bayesian", metrics=("jb_mAP", "jb_rank1", "jb_gain_mAP"),
                   fractions=("jb_mAP", "jb_rank1", "jb_gain_mAP"))
def joint_bayesian(model, objective, data, features, cfg) -> dict[str, float]:
    """Paper 000, Table VI: the Joint Bayesian metric (:class:`reid.metrics.joint_bayesian.JointBayesian`,
    no PCA) learned on the run's own *training* features, ranking the test set instead of the
    cosine. ``jb_gain_mAP`` = ``jb_mAP`` − the run's mAP with its own distance: what the learned
    metric adds on top of the features. Fractions, like rank-1 and mAP."""
    from reid.metrics.distance import pairwise_distance
    from reid.metrics.joint_bayesian import JointBayesian
    from reid.metrics.ranking import rank_metrics

    train = data.dataset.train
    jb = JointBayesian().fit(embed_records(model, objective, cfg, train), [r.pid for r in train])
    f = features
    learned = rank_metrics(jb.distance(f["query"], f["gallery"]), *_labels(f))
    plain = rank_metrics(pairwise_distance(f["query"], f["gallery"], f["metric"], normalize=bool(f["normalize"])), *_labels(f))
    return {"jb_mAP": learned.mAP, "jb_rank1": learned.rank1, "jb_gain_mAP": learned.mAP - plain.mAP}


# ------------------------------------------------------------------ paper 001 (adaptive_margin)

# ------------------------------------------------------------------ paper 002 (support_neighbor)
#: Distractors that ``distractor_curve`` adds to a run's test gallery: nested (the first n of one
#: fixed random permutation), up to the 500,000 of Market-1501's distractor set (paper 002, Fig. 4).
DISTRACTOR_COUNTS = (0, 2000, 8000, 32000, 125000, 500000)


def distractor_features(model, objective, data, cfg, count: int):
    """Embeddings of the first ``count`` generated distractor people of ``data``'s SynthReID cameras
    (:mod:`reid.data.distractors`), computed like the run's own gallery features."""
    from reid.data.distractors import input_batches, render_distractor_inputs
    from reid.engine.evaluation import extract_features

    height, width = cfg["input"]["height"], cfg["input"]["width"]
    inputs = render_distractor_inputs(data.root, count, height, width, progress=False)
    batches = ((batch,) for batch in input_batches(inputs, height, width, batch_size=cfg["eval"]["batch_size"]))
    device = next(model.parameters()).device
    return extract_features(model, batches, device=device, feature=objective.eval_feature)


def distractor_metrics(model, objective, data, features, cfg, counts=DISTRACTOR_COUNTS) -> dict[str, float]:
    """``gallery_mAP@n`` and ``gallery_rank1@n`` (fractions) for every ``n`` in ``counts``, and
    ``gallery_images``, the size of the run's own test gallery (junk included)."""
    from reid.metrics.analysis import gallery_size_curve

    f = features
    extra = distractor_features(model, objective, data, cfg, max(counts))
    curve = gallery_size_curve(f["query"], f["gallery"], extra, f["query_pids"], f["gallery_pids"], f["query_camids"],
                               f["gallery_camids"], num_distractors=list(counts), seed=0, metric=f["metric"],
                               normalize=bool(f["normalize"]))
    out = {f"gallery_{m}@{c['num_distractors']}": c[m] for c in curve for m in ("mAP", "rank1")}
    out["gallery_images"] = float(len(f["gallery"]))  # the curve's x is this plus the distractors
    return out


#: The capped curve the SynthReID study runs during training: rendering the 500,000 people once costs
#: about 19 CPU minutes (measured at 64x32) and embedding them about 4 CPU minutes per run, too much to
#: repeat in every training session; 32,000 keeps the curve's first four points (19x the test
#: gallery). Paper 002's study runs the full curve after training (``study.posthoc``).
STUDY_DISTRACTOR_COUNTS = tuple(n for n in DISTRACTOR_COUNTS if n <= 32000)


def _register_distractor_curve(name: str, counts: tuple[int, ...]) -> None:
    def curve(model, objective, data, features, cfg) -> dict[str, float]:
        return distractor_metrics(model, objective, data, features, cfg, counts=counts)

    def prepare(cfg, data, *, jobs: int = 1, progress: bool = True) -> None:
        from reid.data.distractors import render_distractor_inputs

        render_distractor_inputs(data.root, max(counts), cfg["input"]["height"], cfg["input"]["width"], jobs=jobs,
                                 progress=progress)

    curve.__doc__ = f"""Paper 002, Fig. 4 on SynthReID: single-query rank-1 and mAP of the run's test queries as
    generated distractor people (the dataset's own cameras, identities outside it) join the gallery,
    at {", ".join(f"{n:,}" for n in counts)} distractors. The claims' slope rule fits each run's metric
    against log10 of the gallery size. The distractors' input tensors are rendered once per machine and
    input size (:func:`reid.data.distractors.render_distractor_inputs`; build them before a study); each
    run then embeds them and ranks with the library's gallery-size curve."""
    points = tuple(f"gallery_{m}@{n}" for m in ("mAP", "rank1") for n in counts)
    register_analysis(name, metrics=(*points, "gallery_images"), fractions=points, prepare=prepare)(curve)


_register_distractor_curve("distractor_curve", DISTRACTOR_COUNTS)  # Fig. 4's full range, up to 500,000
_register_distractor_curve("distractor_curve_32k", STUDY_DISTRACTOR_COUNTS)


# ------------------------------------------------------------------ paper 003 (view_adaptation)

# ------------------------------------------------------------------ paper 004 (joint_am_triplet)
#: Training batches of the recipe's sampler (seed 0, no augmentation) the radial analysis averages over.
RADIAL_BATCHES = 4


@register_analysis(
    "radial_gradient",
    metrics=("radial_share_loss", "radial_batch_loss", "radial_batch_backbone", "embedding_norm_cv"),
)
def radial_gradient(model, objective, data, features, cfg) -> dict[str, float]:
    """Paper 004, Sec. 3.3–3.4, measured on the trained model: the radial part of the loss gradient
    at the embedding, and what the BN neck lets through to the backbone.

    On the first :data:`RADIAL_BATCHES` P×K training batches of the recipe's sampler (seed 0,
    evaluation transforms, so the numbers do not depend on the run's augmentation draw), with the
    backbone in evaluation mode and the neck in training mode (as in a training step), each metric
    is the mean over batches of :func:`reid.toys.joint_am_triplet.neck_radial_report`:

    * ``radial_share_loss``: mean per-sample share ``|f̂·g| / (|f̂·g| + ‖g_tan‖)`` of ``g = ∂L/∂f``
      (0 for the normalised losses, AM0 / AM / AM0BH1; what the raw-feature triplet adds);
    * ``radial_batch_loss``: the cosine between ``g`` and the batch's radial direction;
    * ``radial_batch_backbone``: the same cosine for the change the neck lets a backbone step make
      (zero up to BN's ε with the BN neck, for every loss; equal to ``radial_batch_loss`` without a neck);
    * ``embedding_norm_cv``: std / mean of the gallery embeddings' norms (from ``features``).
    """
    import torch

    from reid.data.image_dataset import ImageDataset
    from reid.data.transforms import build_transforms
    from reid.engine.data import build_batch_sampler
    from reid.toys.joint_am_triplet import neck_radial_report

    inp = cfg["input"]
    dataset = ImageDataset(data.dataset.train, build_transforms(inp["height"], inp["width"], train=False))
    sampler = build_batch_sampler(cfg, data, seed=0)
    sampler.set_epoch(0)
    neck = getattr(model, "neck", None)
    device = next(model.parameters()).device
    reports = []
    for i, indices in enumerate(sampler):
        if i == RADIAL_BATCHES:
            break
        images = torch.stack([dataset[j][0] for j in indices]).to(device)
        pids = torch.as_tensor([data.dataset.train[j].pid for j in indices], device=device)
        with torch.no_grad():
            pooled = model.pool(model.backbone(images)).flatten(1).float()
        attr = (objective.attribute_table[pids],) if getattr(objective, "with_attributes", False) else ()
        reports.append(neck_radial_report(
            pooled, pids, objective.loss, loss_args=attr,
            neck_weight=None if neck is None else neck.weight, neck_bias=None if neck is None else neck.bias,
            eps=1e-5 if neck is None else neck.eps,
        ))  # fmt: skip
    norms = features["gallery"].norm(dim=1)
    return {
        "radial_share_loss": sum(r["loss_radial_mean"] for r in reports) / len(reports),
        "radial_batch_loss": sum(r["loss_radial_batch"] for r in reports) / len(reports),
        "radial_batch_backbone": sum(r["backbone_radial_batch"] for r in reports) / len(reports),
        "embedding_norm_cv": float(norms.std() / norms.mean()),
    }
