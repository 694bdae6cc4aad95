"""What one training step does, per paper: the small pluggable part of the one :class:`Trainer`.

The trainer owns everything the papers share (data, devices, schedule, checkpoints, logging,
evaluation). An *objective* owns what differs: which loss modules exist (they are sub-modules,
so their buffers, e.g. paper 000's centres, are checkpointed with ``state_dict``), which
optimisers update which parameters, and the body of a step.

===================  =========  =====================================================================
objective            paper      step
===================  =========  =====================================================================
``classification``   000        softmax on fc8 + centre-type term on pool5 (Eq. 1), centres move
``pairs``            001        pair loss on anchor-based units (anchor vs. M positives, N negatives)
``metric``           002        support-neighbour (or triplet) loss on a P x K batch
``joint``            004        additive angular margin + gamma * batch hard [+ lambda * attributes]
``view_adaptation``  003        stage 0: identity softmax; 1: Ds with Ms, Mt; 2: Dd step, then mappings
===================  =========  =====================================================================

**Several processes** (torchrun, :mod:`reid.engine.distributed`). With ``loss.gather: true``
(the default) the objectives whose loss mines the batch (``metric``, ``joint``,
``view_adaptation`` stages 1-2) gather embeddings and labels from every rank before the loss
(:meth:`Objective.gather`): each rank computes the loss of the *global* P x K batch and the
gradient flows back to its own slice. With ``gather: false`` each rank mines only its own P/W
identities (harder batches become easier: fewer negatives, as with a P/W batch). ``classification``
and ``pairs`` never gather: their losses are per-sample (centres are updated globally, see
:mod:`reid.losses.centers`) or per anchor unit, and a unit never spans ranks.

Gradients are averaged over the ranks in :meth:`Objective.optimise`. A gathered loss is the same
global value on every rank, so the backbone's gradient is the *sum* of the ranks' slices: the loss
is multiplied by the world size before ``backward`` and the average restores that sum, while the
parameters after the gather (a classifier or discriminator of the loss, which see the whole
global batch on every rank) are divided back. Result: the one-process gradient of the global batch.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from reid.errors import ConfigError

__all__ = ["DataInfo", "StepContext", "Objective", "build_objective", "OBJECTIVES"]


@dataclass
class DataInfo:
    """What the objectives need to know about the training split."""

    num_classes: int
    num_cameras: int
    attribute_names: tuple[str, ...] = ()
    attribute_values: list[int] | None = None  # number of values of each attribute
    attributes: torch.Tensor | None = None  # (num_classes, M) long, per relabelled training pid


@dataclass
class StepContext:
    """Per-step information the trainer hands to an objective."""

    optimizers: dict[str, torch.optim.Optimizer]
    epoch: int
    iteration: int
    autocast: Callable[[], Any] = nullcontext
    grad_clip: float | None = None
    stats: dict[str, float] = field(default_factory=dict)


def make_optimizer(cfg: dict, groups: list[dict]) -> torch.optim.Optimizer:
    """SGD or Adam over parameter ``groups`` (each with an ``lr_mult``; the trainer sets ``lr``)."""
    opt = cfg["optimizer"]
    groups = [g for g in groups if g["params"]]
    for g in groups:
        g.setdefault("lr_mult", 1.0)
        g["lr"] = opt["lr"] * g["lr_mult"]
    if opt["name"] == "sgd":
        return torch.optim.SGD(groups, lr=opt["lr"], momentum=opt.get("momentum", 0.0), weight_decay=opt.get("weight_decay", 0.0))
    if opt["name"] == "adam":
        # "Adam ... with the default hyper-parameter values" (papers 002, 004)
        return torch.optim.Adam(groups, lr=opt["lr"], weight_decay=opt.get("weight_decay", 0.0))
    raise ConfigError(f"optimizer.name={opt['name']!r} is not valid; choose sgd or adam.")


class Objective(nn.Module):
    """Base class: loss modules as sub-modules, one optimiser by default, a ``train_step``."""

    #: recipe ``loss.name`` values this objective understands
    variants: tuple[str, ...] = ()
    #: the :class:`~reid.models.heads.ModelOutput` field retrieval ranks with
    eval_feature: str = "features"

    #: whether this objective's losses mine the batch (gathered across ranks with loss.gather)
    batch_level: bool = False

    def __init__(self, cfg: dict, info: DataInfo) -> None:
        super().__init__()
        self.cfg, self.info = cfg, info
        self.loss_cfg = cfg["loss"]
        from reid.engine import distributed

        self.world_size = distributed.world_size()
        self.gathers = self.batch_level and self.world_size > 1 and bool(self.loss_cfg.get("gather", True))
        self.upstream: set[int] = set()  # ids of the parameters before the gather (set by the trainer)
        if self.variants and self.loss_cfg["name"] not in self.variants:
            raise ConfigError(
                f"loss.name={self.loss_cfg['name']!r} is not valid for the {cfg['objective']} objective; "
                f"choose one of: {', '.join(self.variants)}."
            )

    # -- construction -------------------------------------------------------------------------
    def model_options(self) -> dict:
        """Extra :func:`reid.models.build_model` options (e.g. the number of classes)."""
        return {}

    def setup(self, model: nn.Module) -> None:
        """Build the loss modules once the model (and its feature width) exists."""

    def param_groups(self, model: nn.Module) -> list[dict]:
        return [{"params": list(model.parameters())}, {"params": list(self.parameters())}]

    def optimizers(self, model: nn.Module) -> dict[str, torch.optim.Optimizer]:
        return {"main": make_optimizer(self.cfg, self.param_groups(model))}

    def feature_parameters(self, model: nn.Module) -> list[nn.Parameter]:
        """The parameters that produce the gathered embeddings (each rank owns its slice's gradient)."""
        return list(model.parameters())

    def gather(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``tensors`` of the global batch when gathering (gradients to the local slice), else as-is."""
        if not self.gathers:
            return tensors
        from reid.engine.distributed import all_gather_with_grad

        return tuple(all_gather_with_grad(t) for t in tensors)

    def schedule_position(self, epoch: int, iteration: int, per_epoch: int) -> tuple[int, int]:
        """The (epoch, iteration) the learning-rate schedule is evaluated at (a staged objective
        may restart the schedule in each stage)."""
        return epoch, iteration

    # -- training ------------------------------------------------------------------------------
    def train_step(self, model: nn.Module, batch: dict, ctx: StepContext) -> dict[str, float]:
        raise NotImplementedError

    def optimise(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, ctx: StepContext,
                 gathered: bool | None = None) -> None:
        """``backward`` and one optimiser step; several processes: gradients synchronised first.

        ``gathered``: the loss was computed on the global batch (default: whether this objective
        gathers); see the module docstring for the scaling.
        """
        value = float(loss.detach())
        if not math.isfinite(value):
            raise FloatingPointError(
                f"the loss became {value} at epoch {ctx.epoch + 1}, iteration {ctx.iteration + 1}; "
                "lower optimizer.lr or set train.grad_clip."
            )
        optimizer.zero_grad(set_to_none=True)
        if self.world_size == 1:
            loss.backward()
        else:
            from reid.engine.distributed import backward_and_sync

            backward_and_sync(loss, [p for g in optimizer.param_groups for p in g["params"]], upstream=self.upstream,
                              gathered=self.gathers if gathered is None else gathered)
        if ctx.grad_clip:
            params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(params, ctx.grad_clip)
        optimizer.step()

    @staticmethod
    def stats_of(*modules: nn.Module) -> dict[str, float]:
        out: dict[str, float] = {}
        for m in modules:
            out.update(getattr(m, "last_stats", {}) or {})
        return out


# ----------------------------------------------------------------------------------------------
# Paper 000: softmax + SMC / ECD (and the Table III baselines)
# ----------------------------------------------------------------------------------------------


class ClassificationObjective(Objective):
    """``L = L_softmax(fc8) + lambda * L_term(pool5)`` (paper 000, Eq. 1); centres move each step.

    ``loss.name``: ``softmax`` (no extra term), ``center`` (Wen et al.), ``gcl`` (intra/inter
    group-centre loss, reconstructed), ``smc``, ``smc_ecd`` — the rows of Table III. The x10
    learning-rate multiplier applies to the layers that are new on top of the pretrained
    backbone (fc8); the centres are buffers moved by the centre-loss rule with rate ``alpha``.
    """

    variants = ("softmax", "center", "gcl", "smc", "smc_ecd")

    def model_options(self) -> dict:
        if not self.cfg["model"].get("classifier", False):
            raise ConfigError("the classification objective needs model.classifier=true (the softmax on fc8).")
        return {"num_classes": self.info.num_classes}

    def setup(self, model: nn.Module) -> None:
        from reid.losses.smc_ecd import GCLLoss, SMCECDLoss, SoftmaxCenterLoss

        c, info, dim = self.loss_cfg, self.info, model.feat_dim
        name = c["name"]
        if name == "center":
            self.loss = SoftmaxCenterLoss(info.num_classes, dim, lambda_center=c["lam"], alpha=c["alpha"])
        elif name == "gcl":
            self.loss = GCLLoss(
                info.num_classes, info.num_cameras, dim, lambda_intra=c["lam"], lambda_inter=c["lam_ecd"], alpha=c["alpha"]
            )
        else:  # softmax = both lambdas 0; smc = lambda_ECD 0 (the paper's own description of its rows)
            lam_smc = 0.0 if name == "softmax" else c["lam"]
            lam_ecd = c["lam_ecd"] if name == "smc_ecd" else 0.0
            self.loss = SMCECDLoss(
                info.num_classes, info.num_cameras, dim, lambda_smc=lam_smc, lambda_ecd=lam_ecd,
                alpha=c["alpha"], ecd_eps=c["ecd_eps"],
            )  # fmt: skip

    def param_groups(self, model: nn.Module) -> list[dict]:
        new = model.new_parameters()
        new_ids = {id(p) for p in new}
        pretrained = [p for p in model.parameters() if id(p) not in new_ids]
        mult = self.cfg["optimizer"].get("new_layer_lr_mult", 1.0)
        return [
            {"params": pretrained, "lr_mult": 1.0},
            {"params": new, "lr_mult": mult},
            {"params": list(self.parameters()), "lr_mult": mult},  # loss layers ("the last three loss layers")
        ]

    def train_step(self, model, batch, ctx):
        with ctx.autocast():
            out = model(batch["images"])
        out = out.float()
        loss = self.loss(out.features, batch["pids"], batch["camids"], logits=out.logits)
        self.optimise(loss, ctx.optimizers["main"], ctx)
        stats = self.stats_of(self.loss)
        stats["loss"] = float(loss.detach())
        stats["accuracy"] = float((out.logits.argmax(1) == batch["pids"]).float().mean())
        return stats


# ----------------------------------------------------------------------------------------------
# Paper 001: adaptive margin on anchor-based pairs
# ----------------------------------------------------------------------------------------------


class PairObjective(Objective):
    """Pair loss on the anchor-based units of paper 001 (Sec. 5, Algorithm 2).

    :class:`reid.data.samplers.AnchorPairSampler` lays each unit out as ``[anchor, M positives,
    N negatives]`` and lists the pairs (``batch["pairs"]``); every positive and negative forms a
    pair with its anchor. ``loss.name`` picks the Table 5 loss:

    * ``adaptive`` — Eq. 5–9, the paper's loss (-AC rows). ``loss.margin_scope``: ``anchor``
      takes the means of Eq. 6 over each anchor's own pairs (Eq. 4: the margins are functions of
      the anchor, "calculated based on the anchor and its negative pairs"), ``batch`` over the
      whole mini-batch.
    * ``contrastive`` — Eq. 9 with fixed margins (-C rows): ``Mn = loss.margin`` and
      ``Mp = loss.positive_margin`` (0 for the conventional loss; set both to an adaptive run's
      final margins for the fixed-margin control).
    * ``triplet`` — ``max{m + D(a, p) − D(a, n), 0}`` over the M x N (positive, negative)
      combinations of every anchor unit (RCNN-T), ``m = loss.triplet_margin``.

    ``loss.reduction``: ``sum`` is Eq. 9/11's Σ over the pairs (with ``optimizer.weight_decay``
    = 2λ it is Eq. 11 exactly, see :func:`reid.losses.adaptive_margin.weight_decay_for`);
    ``mean`` divides by the number of pairs (or triplets).
    """

    variants = ("adaptive", "contrastive", "triplet")

    def setup(self, model: nn.Module) -> None:
        from reid.losses.adaptive_margin import MARGIN_SCOPES, AdaptiveMarginLoss
        from reid.losses.contrastive import ContrastiveLoss, TripletLoss

        c = self.loss_cfg
        reduction = c.get("reduction", "mean")
        self.margin_scope = c.get("margin_scope", "batch")
        if self.margin_scope not in MARGIN_SCOPES:
            raise ConfigError(f"loss.margin_scope={self.margin_scope!r} is not valid; choose one of {', '.join(MARGIN_SCOPES)}.")
        if c["name"] == "adaptive":
            self.loss = AdaptiveMarginLoss(
                c["mu"], c["gamma"], reduction=reduction, differentiate_margins=c.get("differentiate_margins", False)
            )
        elif c["name"] == "contrastive":
            self.loss = ContrastiveLoss(c["margin"], positive_margin=c.get("positive_margin", 0.0), reduction=reduction)
        else:
            self.loss = TripletLoss(c["triplet_margin"], reduction=reduction)

    @staticmethod
    def triplets(pairs: torch.Tensor) -> torch.Tensor:
        """``(T, 3)`` (anchor, positive, negative) batch positions: every positive pair of an
        anchor combined with every negative pair of the same anchor (M x N per unit)."""
        pos, neg = pairs[pairs[:, 2] == 1], pairs[pairs[:, 2] == 0]
        p, n = (pos[:, 0, None] == neg[None, :, 0]).nonzero(as_tuple=True)
        return torch.stack([pos[p, 0], pos[p, 1], neg[n, 1]], dim=1)

    def train_step(self, model, batch, ctx):
        with ctx.autocast():
            out = model(batch["images"])
        f = out.float().features
        if self.loss_cfg["name"] == "triplet":
            a, p, n = self.triplets(batch["pairs"]).unbind(1)
            loss = self.loss(f[a], f[p], f[n])
        else:
            # (anchor position, partner position, same) of every pair, from the sampler's layout
            a, b, same = batch["pairs"].unbind(1)
            if self.loss_cfg["name"] == "adaptive":
                anchors = a if self.margin_scope == "anchor" else None  # Eq. 6 means per anchor unit
                loss = self.loss(f[a], f[b], same.bool(), anchors)
            else:
                loss = self.loss(f[a], f[b], same.bool())
        self.optimise(loss, ctx.optimizers["main"], ctx)
        stats = self.stats_of(self.loss)
        stats["loss"] = float(loss.detach())
        return stats


# ----------------------------------------------------------------------------------------------
# Paper 002: support neighbour loss (and the triplet baselines) on P x K batches
# ----------------------------------------------------------------------------------------------


class MetricObjective(Objective):
    """A metric loss on the embedding of a P x K batch (paper 002, Sec. 3.1-3.3).

    ``loss.name``: ``support_neighbor`` (Eq. 3-6 with ``k``, ``sigma``, ``lam``, ``squared``, and
    ``normalize``: L2-normalised training features, which give sigma a fixed scale) or the
    triplet baselines ``batch_hard`` / ``batch_all`` (``margin``, ``soft``: softplus instead of
    the hinge, TriNet's soft margin with ``margin: 0``; ``triplet_normalize``; ``squared``).
    """

    variants = ("support_neighbor", "batch_hard", "batch_all")
    batch_level = True

    def setup(self, model: nn.Module) -> None:
        from reid.losses.support_neighbor import SupportNeighborLoss
        from reid.losses.triplet import BatchAllTripletLoss, BatchHardTripletLoss

        c = self.loss_cfg
        if c["name"] == "support_neighbor":
            batch = self.cfg["sampler"]["p"] * self.cfg["sampler"]["k"]  # the P x Q batch
            if c["k"] >= batch:
                raise ConfigError(
                    f"loss.k={c['k']} support neighbours need a batch of more than k images "
                    f"(P x K = {batch}); lower loss.k or raise sampler.p / sampler.k."
                )
            self.loss = SupportNeighborLoss(c["k"], c["sigma"], c["lam"], squared=c["squared"], normalize=c["normalize"])
        else:
            triplet = BatchHardTripletLoss if c["name"] == "batch_hard" else BatchAllTripletLoss
            self.loss = triplet(c["margin"], soft=c["soft"], normalize=c["triplet_normalize"], squared=c["squared"])

    def train_step(self, model, batch, ctx):
        with ctx.autocast():
            out = model(batch["images"])
        loss = self.loss(*self.gather(out.float().features, batch["pids"]))
        self.optimise(loss, ctx.optimizers["main"], ctx)
        stats = self.stats_of(self.loss)
        stats["loss"] = float(loss.detach())
        return stats


# ----------------------------------------------------------------------------------------------
# Paper 004: angular margin softmax + batch hard triplet [+ attributes]
# ----------------------------------------------------------------------------------------------


class JointObjective(Objective):
    """Paper 004, Eq. 6 / Eq. 7 through :func:`reid.losses.angular_margin.joint_loss`.

    ``loss.name`` is a Table 3 row (``AM0, AM, BH, AM0BH, AMBH, AM0BH1, AM0BHsp``) or the full
    model ``AM0BH_Attr`` (identity part + M attribute slices of Q features, Sec. 4.1). Retrieval
    uses the l2-normalised embedding with cosine similarity, and only its identity part
    ``f_theta_id`` for the full model (Sec. 4.2).
    """

    variants = ("AM0", "AM", "BH", "AM0BH", "AMBH", "AM0BH1", "AM0BHsp", "AM0BH_Attr")
    batch_level = True

    @property
    def with_attributes(self) -> bool:
        return self.loss_cfg["name"].endswith("_Attr")

    @property
    def eval_feature(self) -> str:
        # Sec. 4.2: "theta is actually theta_id when the network has been trained with the full model (7)"
        return "id_features" if self.with_attributes else "features"

    def model_options(self) -> dict:
        if not self.with_attributes:
            return {}
        if self.info.attributes is None:
            raise ConfigError(
                f"loss.name={self.loss_cfg['name']} needs identity attributes, but the dataset has none; "
                "use market1501 / dukemtmc with their attribute files, or synthreid."
            )
        return {"attributes": (len(self.info.attribute_names), self.cfg["model"]["attribute_q"])}

    def setup(self, model: nn.Module) -> None:
        from reid.losses.angular_margin import joint_loss

        c = self.loss_cfg
        self.loss = joint_loss(
            c["name"], model.feat_dim, self.info.num_classes,
            scale=c["scale"], gamma=c["attr_gamma"] if self.with_attributes else c["gamma"],
            triplet_margin=c["triplet_margin"], am_margin=c["margin"], lam=c["lam"],
            attribute_values=self.info.attribute_values if self.with_attributes else None,
            slice_dim=self.cfg["model"]["attribute_q"], margin_fallback=c["margin_fallback"],
        )  # fmt: skip
        if self.with_attributes:
            self.register_buffer("attribute_table", self.info.attributes.clone())

    def train_step(self, model, batch, ctx):
        with ctx.autocast():
            out = model(batch["images"])
        features, pids = self.gather(out.float().features, batch["pids"])
        attr = self.attribute_table[pids] if self.with_attributes else None
        loss = self.loss(features, pids, attr)
        self.optimise(loss, ctx.optimizers["main"], ctx)
        stats = self.stats_of(self.loss)
        stats["loss"] = float(loss.detach())
        return stats


# ----------------------------------------------------------------------------------------------
# Paper 003: staged adversarial view adaptation
# ----------------------------------------------------------------------------------------------


class ViewAdaptationObjective(Objective):
    """Algorithm 1 of paper 003, in three stages over epochs.

    * **Stage 0** (``epoch < loss.finetune_epochs``): Algorithm 1 lines 1–2 and Sec. III-D,
      "the last fully-connected layer is modified to have K neurons to predict the K-classes …
      Once fine-tuning is done, the convolutional layers … are used to be the non-linear
      transformations for the two mappings": each mapping gets its own K-way linear classifier
      on its embedding and is trained with identity softmax cross-entropy on the training
      identities (``loss.finetune_views``: ``all`` images of the batch through both mappings —
      "fine-tuned on target C_train" — or each mapping on its ``own`` view). The classifiers are
      discarded afterwards.
    * **Stage 1** (the next ``loss.similarity_epochs``; all remaining epochs when
      ``loss.adversarial`` is false): "Train Ds using Eq. (2)" — the similarity discriminator and
      both mappings minimise Eq. 5 (``loss.name=adaptive``, ``loss.negative_hinge`` picks the
      reading) or Eq. 2 (``plain``) on every probe x gallery pair of the batch.
    * **Stage 2** — every step: "Train Dd by minimising Eq. (1)" on detached features (only Dd
      moves), then "Update Ms, Mt by minimising Eq. (3)", the view confusion against the updated
      Dd, plus (``loss.keep_similarity``) Eq. 5 so the mappings stay discriminative — Eq. 4 puts
      ``min over Ms, Mt, Ds of L_Ds`` next to ``min over Ms, Mt of L_M``. ``loss.update=both``
      moves both mappings (Sec. III-C, "both the mappings are changing"); ``gallery`` holds
      ``Ms`` fixed and adapts only ``Mt`` (Sec. III-B, "the gallery mapping (Mt) is updated
      adversarially to match the probe (Ms)"; the setting of Table VII's baselines).
      ``loss.dd_steps`` Dd updates precede each mapping update (the k of the GAN algorithm; the
      paper does not say).

    ``loss.stage_schedule=restart`` runs the recipe's learning-rate schedule afresh in each stage
    (each stage is a training of its own, "stopped when the loss stops decreasing");
    ``continue`` runs one schedule over all epochs. Batches hold both views:
    ``batch["views"]`` is 0 for probe-view images (through ``Ms``) and 1 for gallery-view images
    (``Mt``). ``model.shared=true`` (one mapping for both views) is the Siamese baseline.
    """

    variants = ("adaptive", "plain")
    batch_level = True

    def feature_parameters(self, model: nn.Module) -> list[nn.Parameter]:
        return list(model.mapping_parameters())  # Ms, Mt; Ds and Dd act on the gathered features

    def setup(self, model: nn.Module) -> None:
        from reid.losses.view_adaptation import SimilarityDiscriminatorLoss, ViewConfusionLoss, ViewDiscriminatorLoss

        c = self.loss_cfg
        # (the recipe's choices validate loss.update, finetune_views, stage_schedule, negative_hinge)
        if int(c["dd_steps"]) < 1:
            raise ConfigError(f"loss.dd_steps={c['dd_steps']} must be >= 1 (view-discriminator updates per mapping update).")
        if c["update"] == "gallery" and getattr(model, "shared", False):
            raise ConfigError(
                "loss.update=gallery adapts Mt while Ms stays fixed, but model.shared=true makes Ms and Mt one "
                "network; use loss.update=both with a shared mapping, or model.shared=false."
            )
        self.similarity = SimilarityDiscriminatorLoss(
            c["margin"], c["gamma"], adaptive=c["name"] == "adaptive", negative_hinge=c["negative_hinge"],
            detach_weights=c["detach_weights"],
        )
        self.discriminator = ViewDiscriminatorLoss()
        self.confusion = ViewConfusionLoss()
        # Stage 0's identity classifiers, one per distinct mapping (a shared mapping has one)
        heads = 1 if getattr(model, "shared", False) else 2
        self.id_heads = nn.ModuleList(nn.Linear(model.feat_dim, self.info.num_classes) for _ in range(heads))
        self.identity = nn.CrossEntropyLoss()

    def optimizers(self, model: nn.Module) -> dict[str, torch.optim.Optimizer]:
        mappings = [{"params": model.mapping_parameters()}, {"params": list(model.ds.parameters())}]
        return {
            "finetune": make_optimizer(self.cfg, [{"params": model.mapping_parameters()},
                                                  {"params": list(self.id_heads.parameters())}]),  # Ms, Mt + classifiers
            "mappings": make_optimizer(self.cfg, mappings),  # Ms, Mt, Ds
            "view": make_optimizer(self.cfg, [{"params": list(model.dd.parameters())}]),  # Dd
        }

    def stage_starts(self) -> tuple[int, int, int]:
        """First epoch of stages 0, 1 and 2 (stage 2 never starts without ``loss.adversarial``)."""
        c = self.loss_cfg
        first = int(c["finetune_epochs"])
        second = first + int(c["similarity_epochs"]) if c["adversarial"] else 10**9
        return 0, first, second

    def stage(self, epoch: int) -> int:
        _, first, second = self.stage_starts()
        return 0 if epoch < first else (1 if epoch < second else 2)

    def schedule_position(self, epoch: int, iteration: int, per_epoch: int) -> tuple[int, int]:
        if self.loss_cfg["stage_schedule"] == "continue":
            return epoch, iteration
        start = self.stage_starts()[self.stage(epoch)]
        return epoch - start, iteration - start * per_epoch

    def _similarity_loss(self, model, fs, ft, pid_s, pid_t):
        from reid.metrics.distance import euclidean

        d = euclidean(fs, ft)  # d(x_s, x_t) = ||Ms(x_s) - Mt(x_t)||_2 for every pair of the batch
        ns, nt = fs.shape[0], ft.shape[0]
        pair_s = fs[:, None, :].expand(ns, nt, -1).reshape(ns * nt, -1)
        pair_t = ft[None, :, :].expand(ns, nt, -1).reshape(ns * nt, -1)
        logits = model.ds(pair_s, pair_t).reshape(ns, nt)
        same = pid_s[:, None] == pid_t[None, :]
        return self.similarity(logits, d, same)

    def _finetune_step(self, model, batch, src, tgt, ctx, stats):
        # Alg. 1 line 2 / Sec. III-D: identity softmax on each mapping, K = number of training identities
        images, pids = batch["images"], batch["pids"]
        loss = images.new_zeros(())
        mappings = [(0, src), (1, tgt)] if len(self.id_heads) == 2 else [(0, src | tgt)]
        for view, own in mappings:
            chosen = own if self.loss_cfg["finetune_views"] == "own" else torch.ones_like(own)
            with ctx.autocast():
                emb = model.embed(images[chosen], view)
            logits = self.id_heads[view](emb.float())
            loss = loss + self.identity(logits, pids[chosen])
            stats[f"id_accuracy_{'st'[view]}"] = float((logits.argmax(1) == pids[chosen]).float().mean())
        self.optimise(loss, ctx.optimizers["finetune"], ctx, gathered=False)  # per-sample softmax, local
        stats["identity"] = stats["loss"] = float(loss.detach())
        return stats

    def train_step(self, model, batch, ctx):
        views = batch["views"]
        src, tgt = views == 0, views == 1
        if not src.any() or not tgt.any():
            raise ConfigError("a cross-view batch needs images of both views; check the cross_view sampler.")
        stage = self.stage(ctx.epoch)
        stats: dict[str, float] = {"stage": float(stage)}
        if stage == 0:
            return self._finetune_step(model, batch, src, tgt, ctx, stats)
        hold_probe = stage == 2 and self.loss_cfg["update"] == "gallery"
        if hold_probe:
            model.ms.eval()  # Sec. III-B: Ms stays as it is (BN statistics included); only Mt, Ds adapt
        with ctx.autocast():
            with torch.no_grad() if hold_probe else nullcontext():
                fs = model.embed(batch["images"][src], 0)
            ft = model.embed(batch["images"][tgt], 1)
        fs, ft, pid_s, pid_t = self.gather(fs.float(), ft.float(), batch["pids"][src], batch["pids"][tgt])
        if stage == 1:
            loss = self._similarity_loss(model, fs, ft, pid_s, pid_t)
            self.optimise(loss, ctx.optimizers["mappings"], ctx)
            stats.update(self.stats_of(self.similarity))
            stats["loss"] = float(loss.detach())
            return stats
        # Alg. 1 line 6: Dd on Eq. 1, features held fixed (loss.dd_steps updates per mapping update)
        for _ in range(self.loss_cfg["dd_steps"]):
            loss_dd = self.discriminator(model.dd(fs.detach()), model.dd(ft.detach()))
            self.optimise(loss_dd, ctx.optimizers["view"], ctx)
        # Alg. 1 line 7: mappings on Eq. 3 against the updated Dd (+ Eq. 5, see class docstring)
        loss_m = self.loss_cfg["confusion_weight"] * self.confusion(model.dd(fs), model.dd(ft))
        stats["confusion"] = float(loss_m.detach())
        if self.loss_cfg["keep_similarity"]:
            sim = self._similarity_loss(model, fs, ft, pid_s, pid_t)
            stats.update(self.stats_of(self.similarity))
            loss_m = loss_m + sim
        self.optimise(loss_m, ctx.optimizers["mappings"], ctx)
        stats["view_discriminator"] = float(loss_dd.detach())
        stats["loss"] = float(loss_m.detach())
        return stats


OBJECTIVES = {
    "classification": ClassificationObjective,
    "pairs": PairObjective,
    "metric": MetricObjective,
    "joint": JointObjective,
    "view_adaptation": ViewAdaptationObjective,
}


def build_objective(cfg: dict, info: DataInfo) -> Objective:
    name = cfg["objective"]
    if name not in OBJECTIVES:
        raise ConfigError(f"unknown objective {name!r}; choose one of {', '.join(OBJECTIVES)}.")
    return OBJECTIVES[name](cfg, info)
