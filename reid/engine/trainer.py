"""One :class:`Trainer` for every paper, and :func:`train`, the Python entry point.

A run is a pure function of (recipe, dataset, seed): on CPU the same inputs give bit-identical
weights, and a run killed at any point and continued with ``resume=True`` ends with the same
weights as an uninterrupted one. How:

* every epoch starts by seeding Python, NumPy and torch from ``(seed, epoch)`` and builds its
  sampler and loader from the same seed — the batches of epoch ``e`` never depend on what ran
  before;
* the learning rate is a pure function of (epoch, iteration) (:mod:`reid.engine.schedule`);
* a checkpoint after each epoch stores model, optimisers, the objective's buffers (centres),
  the position and the RNG states (:mod:`reid.engine.checkpoint`);
* on CPU ``torch.use_deterministic_algorithms(True)`` and ``num_workers=0`` by default.

On CUDA the same loop runs with bf16 autocast, channels-last tensors, optional
``torch.compile``, pinned memory and worker processes; none of it is required, all of it is
switched off on CPU unless ``runtime.speedups_on_cpu`` asks for it (then CPU runs are no longer
bit-identical to the default; the tests use it to exercise the CUDA code paths on the CPU).

Files of a run directory: ``checkpoint.pt`` (latest epoch), ``log.jsonl`` (one JSON line per
epoch), ``model.pt`` (final weights), ``features.pt`` (query/gallery embeddings) and
``results.json`` (metrics + provenance). What a run may do to an existing folder (refuse,
``resume``, atomic ``overwrite``, the lock) is decided by :mod:`reid.engine.rundir`.

A *dry run* (``max_iterations=N``, ``reid train --max-iterations N``) is the real pipeline of any
scale — model, weights, sampler, optimiser, schedule, checkpoint, evaluation, ``results.json`` —
stopped after N optimisation steps; ``results.json`` records ``"dry_run": true``.

Under ``torchrun`` (several processes, :mod:`reid.engine.distributed`) every rank runs this loop
on its share of each global batch (:mod:`reid.data.samplers`); gradients are synchronised in
:meth:`~reid.engine.objectives.Objective.optimise`, BatchNorm buffers follow rank 0 (or
``runtime.sync_bn`` converts BatchNorm to SyncBatchNorm), evaluation features are extracted in
shards and gathered. Only rank 0 takes the run folder's lock and writes checkpoints, logs,
``features.pt`` and ``results.json`` (which records ``world_size`` and ``backend``); the
other ranks wait at barriers and read the checkpoint to resume.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from reid.engine import checkpoint as ckpt
from reid.engine import distributed, rundir
from reid.engine.data import (
    TrainingData,
    batch_structure,
    batches_per_epoch,
    build_batch_sampler,
    build_eval_loader,
    build_train_loader,
    check_sampler,
    epoch_seed,
    load_training_data,
    total_epochs,
)
from reid.engine.evaluation import extract_features, metrics_from_features
from reid.engine.objectives import StepContext, build_objective
from reid.engine.provenance import provenance, write_json
from reid.engine.schedule import check_schedule, lr_factor
from reid.engine.rundir import default_run_dir
from reid.errors import ConfigError, NonFiniteError
from reid.recipes import comparable, load_recipe

__all__ = ["Trainer", "train", "seed_everything", "resolve_device", "default_run_dir", "check_pretrained_weights"]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def resolve_device(device: str | torch.device) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was requested but no CUDA GPU is available to torch; use --device cpu.")
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"device must be cpu or cuda, got {device!r}.")
    return dev


def _pretrained_weights(model: dict) -> list[tuple[str, Any]]:
    """``(architecture, weights spec)`` of every network ``model`` loads weights into."""
    if model["name"] == "view_adaptation":  # ms_weights / mt_weights fall back to weights (build_view_adaptation)
        return [(model[side], model.get(f"{side}_weights") if model.get(f"{side}_weights") is not None
                 else model.get("weights")) for side in ("ms", "mt")]  # fmt: skip
    return [(model["name"], model.get("weights"))]


def check_pretrained_weights(cfg: dict) -> None:
    """Raise :class:`~reid.errors.WeightsError` now if a network's pretrained weights are not on disk.

    Runs before the dataset is loaded or generated, so a full-scale run without its ImageNet
    weights stops before any work.
    """
    from reid.models.weights import resolve_weights

    for arch, spec in _pretrained_weights(cfg["model"]):
        resolve_weights(arch, spec)


@contextlib.contextmanager
def deterministic(enabled: bool):
    """``torch.use_deterministic_algorithms(True)`` for the duration (restored afterwards)."""
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(enabled or previous)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


@dataclass
class Callback:
    """Hooks into the loop (tests use them to interrupt a run at a chosen point)."""

    on_step: Callable[["Trainer", int, int], None] | None = None  # (trainer, epoch, iteration)
    on_epoch_end: Callable[["Trainer", int], None] | None = None  # (trainer, epoch) after the checkpoint


class Trainer:
    """Trains ``cfg`` (a resolved recipe) on ``data`` into ``run_dir``; see the module docstring."""

    def __init__(
        self,
        cfg: dict,
        data: TrainingData,
        run_dir: str | Path,
        *,
        device: str | torch.device = "cpu",
        seed: int = 0,
        progress: bool = True,
        callbacks: list[Callback] | None = None,
        max_iterations: int | None = None,
    ) -> None:
        self.cfg, self.data, self.seed = cfg, data, int(seed)
        self.run_dir = Path(run_dir)
        self.work_dir = self.run_dir  # where fit() writes: run_dir, or its sibling during an overwrite
        self.device = resolve_device(device)
        if distributed.is_distributed() and self.device.type == "cuda":
            self.device = torch.device("cuda", torch.cuda.current_device())  # this rank's GPU
        self.world_size = distributed.world_size()
        self.cuda = self.device.type == "cuda"
        self.progress = progress
        self.callbacks = list(callbacks or [])
        self.dry_run_iterations = max_iterations
        rt = cfg["runtime"]
        speedups = self.cuda or rt.get("speedups_on_cpu", False)
        self.amp = speedups and rt["amp"]
        self.channels_last = speedups and rt["channels_last"]
        self.compile = speedups and rt["compile"]
        if self.cuda:  # fixed input shapes: let cuDNN pick its fastest kernels (GPU runs are not bit-reproducible anyway)
            torch.backends.cudnn.benchmark = True
        check_schedule(cfg["schedule"], cfg["optimizer"]["lr"])
        check_sampler(cfg, data)
        self.sampler = build_batch_sampler(cfg, data, self.seed)
        self.structure = batch_structure(self.sampler)
        self.per_epoch = batches_per_epoch(cfg, self.sampler)
        self.epochs = total_epochs(cfg, self.per_epoch)
        self.max_iterations = cfg["train"]["iterations"] if cfg["train"]["epochs"] is None else None

        seed_everything(self.seed)  # model initialisation depends on the seed only
        from reid.models import build_model

        self.objective = build_objective(cfg, data.info)
        model_kw = {k: v for k, v in cfg["model"].items() if k not in ("name", "classifier", "attribute_q")}
        model_kw.update(self.objective.model_options())
        self.model = build_model(cfg["model"]["name"], **model_kw)
        if self.world_size > 1 and rt.get("sync_bn", False) and not self.cuda:
            raise ConfigError("runtime.sync_bn needs --device cuda: torch's SyncBatchNorm has no CPU kernel; "
                              "drop it on the CPU (BatchNorm statistics are then per process).")
        if self.world_size > 1 and rt.get("sync_bn", False):
            self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self.objective.setup(self.model)
        self.objective.upstream = {id(p) for p in self.objective.feature_parameters(self.model)}
        distributed.broadcast_module(self.model)  # identical start on every rank (same seed anyway)
        distributed.broadcast_module(self.objective)
        self.model.to(self.device)
        self.objective.to(self.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.optimizers = self.objective.optimizers(self.model)
        self.loader = build_train_loader(cfg, data, self.sampler, device=self.device, seed=self.seed,
                                         progress=progress)  # fmt: skip
        self._compiled = False
        self.epoch, self.iteration = 0, 0  # completed epochs, global step

    # ------------------------------------------------------------------------------------------
    def autocast(self):
        if self.amp:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _maybe_compile(self) -> None:
        if self._compiled or not self.compile:
            return
        # Module.compile keeps parameter names (checkpoints stay loadable without torch.compile)
        targets = [self.model.ms, self.model.mt] if getattr(self.model, "asymmetric", False) else [self.model]
        for module in targets:
            module.compile()
        self._compiled = True

    def _set_lr(self) -> float:
        base = self.cfg["optimizer"]["lr"]
        epoch, iteration = self.objective.schedule_position(self.epoch, self.iteration, self.per_epoch)
        factor = lr_factor(self.cfg["schedule"], base, epoch, iteration)
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = base * group.get("lr_mult", 1.0) * factor
        return base * factor

    def _to_device(self, batch) -> dict:
        images, pids, camids, index = batch[:4]
        images = images.to(self.device, non_blocking=True)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        out = {
            "images": images,
            "pids": pids.to(self.device, non_blocking=True).long(),
            "camids": camids.to(self.device, non_blocking=True).long(),
            "index": index,
        }
        out.update({k: v.to(self.device) for k, v in self.structure.items()})  # pairs / views layout
        return out

    # -- checkpoints ---------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.work_dir / ckpt.CHECKPOINT_NAME

    def state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "objective": self.objective.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "epoch": self.epoch,
            "iteration": self.iteration,
            "rng": ckpt.rng_state(),
            "config": {k: v for k, v in self.cfg.items() if k != "runtime"},
            "seed": self.seed,
            "max_iterations": self.dry_run_iterations,
        }

    def load_state(self, state: dict) -> None:
        config = state.get("config")
        if (
            not isinstance(config, dict)
            or comparable(config) != comparable(self.cfg)
            or state.get("seed") != self.seed
            or state.get("max_iterations") != self.dry_run_iterations
        ):
            raise ConfigError(
                f"the checkpoint in {self.run_dir} was written by a different recipe, overrides, seed or "
                "--max-iterations; resume with the same settings, or pass --overwrite (or use another --out) "
                "to start afresh."
            )
        self.model.load_state_dict(state["model"])
        self.objective.load_state_dict(state["objective"])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        self.epoch, self.iteration = int(state["epoch"]), int(state["iteration"])
        ckpt.set_rng_state(state["rng"])

    # -- the loop ------------------------------------------------------------------------------
    def fit(self, resume: bool = False, overwrite: bool = False) -> dict:
        """Train and evaluate into ``run_dir``; returns the ``results.json`` content.

        ``resume`` continues from the folder's checkpoint (a finished run is returned untouched);
        ``overwrite`` replaces whatever the folder holds, atomically (:mod:`reid.engine.rundir`).
        """
        if not distributed.is_main():  # rank 0 holds the folder; the others learn where it writes
            action, work_dir = distributed.broadcast_object(None)
            if action == "complete":
                return distributed.broadcast_object(None)
            self.work_dir = Path(work_dir)
            try:
                return self._fit(resume=action == "resume", overwriting=action == "overwrite")
            finally:
                self.work_dir = self.run_dir
        with rundir.claim(self.run_dir, resume=resume, overwrite=overwrite) as claimed:
            distributed.broadcast_object((claimed.action, str(claimed.work_dir)))
            if claimed.action == "complete":
                return distributed.broadcast_object(
                    check_finished_run(self.run_dir, self.cfg, self.seed, self.dry_run_iterations))
            self.work_dir = claimed.work_dir
            try:
                return self._fit(resume=claimed.action == "resume", overwriting=claimed.action == "overwrite")
            finally:
                self.work_dir = self.run_dir

    def _fit(self, resume: bool, overwriting: bool) -> dict:
        log_path = self.work_dir / "log.jsonl"
        main = distributed.is_main()
        if resume:
            self.load_state(ckpt.load_checkpoint(self.checkpoint_path))
            distributed.barrier()  # every rank has read the checkpoint before rank 0 writes again
            if main:
                _truncate_log(log_path, self.epoch)
        started = time.perf_counter()
        train_seconds, images_seen = 0.0, 0
        deterministic_cpu = (not self.cuda) and self.cfg["runtime"]["deterministic"]
        with deterministic(deterministic_cpu):
            self._maybe_compile()
            while self.epoch < self.epochs and not self._budget_spent():
                try:
                    record = self._run_epoch()
                except FloatingPointError as exc:  # a NaN / Inf loss, or a loss refusing a non-finite input
                    raise self._diverged(exc, overwriting) from None
                train_seconds += record["seconds"]
                images_seen += record["images"]
                if main:
                    with open(log_path, "a", encoding="utf-8") as fh:
                        fh.write(json.dumps(record) + "\n")
                if self.progress and main:
                    _say(
                        f"epoch {record['epoch']}/{self.epochs}  loss {record.get('loss', float('nan')):.4f}  "
                        f"{record['images_per_second']} images/s  lr {record['lr']:.2e}"
                    )
                distributed.broadcast_module(self.model, buffers_only=True)  # rank 0's BatchNorm statistics
                state = self.state()  # every rank: its RNG states are the same as rank 0's anyway
                if main:
                    ckpt.save_atomic(state, self.checkpoint_path)
                distributed.barrier()
                for cb in self.callbacks:
                    if cb.on_epoch_end:
                        cb.on_epoch_end(self, self.epoch)
            if main:
                ckpt.save_atomic(self.model.state_dict(), self.work_dir / "model.pt")
            eval_start = time.perf_counter()
            metrics = self.evaluate_and_save()
            eval_seconds = time.perf_counter() - eval_start
        results = {
            "recipe": self.cfg,
            "metrics": metrics,
            "dataset": self.data.describe(),
            "scale": self.cfg["scale"],
            "seed": self.seed,
            "device": str(self.device),
            "epochs": self.epoch,
            "iterations": self.iteration,
            "dry_run": self.dry_run_iterations is not None,
            "max_iterations": self.dry_run_iterations,
            "final_log": _last_log(log_path),
            "timings": {
                "train_seconds_this_session": round(train_seconds, 3),
                "eval_seconds": round(eval_seconds, 3),
                "total_seconds_this_session": round(time.perf_counter() - started, 3),
                "train_images_per_second": round(images_seen / train_seconds, 1) if train_seconds else None,
            },
            **provenance(str(self.device)),
            "world_size": self.world_size,
            "backend": distributed.backend(),
        }
        if main:
            write_json(results, self.work_dir / "results.json")
        distributed.barrier()  # rank 0's files are written before any rank returns
        return results

    def _budget_spent(self) -> bool:
        caps = [c for c in (self.max_iterations, self.dry_run_iterations) if c is not None]
        return bool(caps) and self.iteration >= min(caps)

    def _diverged(self, exc: FloatingPointError, overwriting: bool) -> NonFiniteError:
        """The error a diverged step becomes: where it happened and what is left intact."""
        message = str(exc).rstrip()
        if isinstance(exc, NonFiniteError):  # a loss refused its input: add where in training it was
            message = f"at epoch {self.epoch + 1}, iteration {self.iteration + 1}: {message}"
        if overwriting:
            kept = f"{self.run_dir} was left as it was; the new run was discarded."
        elif self.checkpoint_path.is_file():
            kept = f"The last checkpoint, {self.checkpoint_path} (after epoch {self.epoch}), is intact."
        else:
            kept = "No checkpoint had been written yet (the first epoch had not finished)."
        return NonFiniteError(f"training stopped {message} {kept}")

    def _run_epoch(self) -> dict:
        epoch = self.epoch
        es = epoch_seed(self.seed, epoch)
        seed_everything(es)  # transforms (flip, erasing) draw from these generators
        self.sampler.set_epoch(epoch)  # this epoch's batches depend on (seed, epoch) only
        self.loader.generator.manual_seed(es)  # worker seeds (CUDA runs with workers)
        loader = self.loader
        self.model.train()
        self.objective.train()
        sums: dict[str, float] = {}
        steps, images = 0, 0
        start = time.perf_counter()
        bar = _progress(loader, self.progress and distributed.is_main(), f"epoch {epoch + 1}/{self.epochs}")
        for raw in bar:
            if self._budget_spent() or steps >= self.per_epoch:
                break
            lr = self._set_lr()
            batch = self._to_device(raw)
            if self.world_size > 1:  # BatchNorm running statistics follow rank 0 (DDP's broadcast_buffers)
                distributed.broadcast_module(self.model, buffers_only=True)
            ctx = StepContext(self.optimizers, epoch, self.iteration, self.autocast, self.cfg["train"]["grad_clip"])
            stats = self.objective.train_step(self.model, batch, ctx)
            self.iteration += 1
            steps += 1
            images += batch["images"].shape[0] * self.world_size  # the global batch
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            if self.progress and distributed.is_main():
                rate = images / max(time.perf_counter() - start, 1e-9)
                bar.set_postfix(loss=f"{stats.get('loss', float('nan')):.4f}", img_s=f"{rate:.0f}", lr=f"{lr:.2e}")
            for cb in self.callbacks:
                if cb.on_step:
                    cb.on_step(self, epoch, self.iteration)
        if self.cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        self.epoch += 1
        record = {"epoch": self.epoch, "iteration": self.iteration, "lr": lr if steps else None}
        record.update({k: round(v / max(steps, 1), 6) for k, v in sorted(sums.items())})
        record.update({"images": images, "seconds": round(seconds, 3), "images_per_second": round(images / seconds, 1) if seconds else None})
        return record

    # -- evaluation ----------------------------------------------------------------------------
    def evaluate_and_save(self) -> dict:
        ds = self.data.dataset
        asym = getattr(self.model, "asymmetric", False)
        distributed.broadcast_module(self.model, buffers_only=True)  # every shard with rank 0's BatchNorm statistics
        feats = {}
        for split, view in (("query", 0), ("gallery", 1)):
            records = getattr(ds, split)
            start, stop = distributed.shard_range(len(records))  # all of them in one process
            loader = build_eval_loader(self.cfg, records[start:stop], device=self.device)
            local = extract_features(
                self.model, loader, device=self.device, autocast=self.autocast,
                view=view if asym else None, channels_last=self.channels_last, feature=self.objective.eval_feature,
            )  # fmt: skip
            feats[split] = _gather_features(local, self.device)
            feats[f"{split}_pids"] = torch.tensor([r.pid for r in records])
            feats[f"{split}_camids"] = torch.tensor([r.camid for r in records])
            feats[f"{split}_paths"] = [str(r.path) for r in records]
        feats["metric"], feats["normalize"] = self.cfg["eval"]["metric"], self.cfg["eval"]["normalize"]
        feats["feature"] = self.objective.eval_feature
        if not distributed.is_main():  # rank 0 ranks and writes; the others receive its metrics
            return distributed.broadcast_object(None)
        ckpt.save_atomic(feats, self.work_dir / "features.pt")
        ev = self.cfg["eval"]
        metrics = metrics_from_features(feats, metric=ev["metric"], normalize=ev["normalize"], protocol=ev["protocol"])
        if ev.get("analyses"):  # extra per-run metrics (reid.engine.analyses)
            from reid.engine.analyses import run_analyses

            metrics.update(run_analyses(ev["analyses"], model=self.model, objective=self.objective,
                                        data=self.data, features=feats, cfg=self.cfg))
        return distributed.broadcast_object(metrics)


def _gather_features(local: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The features of every rank's shard, in record order (``local`` itself in one process)."""
    if not distributed.is_distributed():
        return local
    dim = torch.tensor([local.shape[1] if local.numel() else 0], device=device)
    torch.distributed.all_reduce(dim, op=torch.distributed.ReduceOp.MAX)  # an empty shard has no width
    local = local.reshape(-1, int(dim)) if local.numel() else local.new_zeros(0, int(dim))
    return distributed.gather_variable(local.to(device)).cpu()



def _read_log(path: Path) -> list[dict]:
    """The epoch records of ``log.jsonl``; a line cut short by a kill (not JSON) is dropped."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("epoch"), int):
            records.append(record)
    return records


def _truncate_log(path: Path, epochs_done: int) -> None:
    """Keep the records of the epochs the checkpoint holds (rewritten atomically)."""
    if not path.is_file():
        return
    keep = [r for r in _read_log(path) if r["epoch"] <= epochs_done]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in keep), encoding="utf-8")
    os.replace(tmp, path)


def _last_log(path: Path) -> dict | None:
    records = _read_log(path)
    return records[-1] if records else None


def check_finished_run(run_dir: Path, cfg: dict, seed: int, max_iterations: int | None) -> dict:
    """The ``results.json`` of a finished run, if it was trained with these settings; else a ConfigError."""
    results = rundir.read_finished_recipe(run_dir)
    if results is None:
        raise ConfigError(f"{run_dir / 'results.json'} is not readable JSON; pass --overwrite to train the run again.")
    recorded = results.get("recipe")
    if (
        not isinstance(recorded, dict)
        or comparable(recorded) != comparable(cfg)
        or results.get("seed") != seed
        or results.get("max_iterations") != max_iterations
    ):
        raise ConfigError(
            f"{run_dir} holds a finished run of a different recipe, overrides, seed or --max-iterations; "
            "choose another --out, or pass --overwrite (instead of --resume) to replace it."
        )
    return results


def _say(line: str) -> None:
    from tqdm.auto import tqdm

    tqdm.write(line, file=sys.stderr)


def _progress(iterable, enabled: bool, desc: str):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, leave=False, dynamic_ncols=True)


def train(
    recipe: str,
    *,
    dataset: str = "synthreid",
    root: str | Path | None = None,
    scale: str = "smoke",
    device: str = "cpu",
    epochs: int | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    max_iterations: int | None = None,
    progress: bool = True,
    callbacks: list[Callback] | None = None,
) -> Path:
    """Train ``recipe`` and evaluate it; returns the run directory (``results.json`` inside).

    Everything that can be checked without data is checked first (recipe, scale, overrides,
    device, the run directory, pretrained weights), then the dataset is loaded (SynthReID
    generated once and cached when ``dataset`` is ``synthreid`` and no ``root`` is given) and
    the batch shape is checked against it — all before a model is built. ``epochs`` replaces
    the recipe's training length.

    ``out`` defaults to :func:`~reid.engine.rundir.default_run_dir` (a hash of the resolved
    recipe in the name). A folder that already holds a run is refused unless ``resume`` (continue
    it; a finished run is reported complete and left untouched) or ``overwrite`` (replace it
    atomically). ``max_iterations`` makes a dry run: the real pipeline stopped after that many
    optimisation steps, then evaluated.
    """
    overrides = dict(overrides or {})
    if epochs is not None:
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
            raise ConfigError(f"epochs must be a positive integer, got {epochs!r}.")
        overrides.update({"train.epochs": epochs, "train.iterations": None})
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}.")
    if max_iterations is not None and (
        not isinstance(max_iterations, int) or isinstance(max_iterations, bool) or max_iterations < 1
    ):
        raise ConfigError(f"max_iterations must be a positive integer, got {max_iterations!r}.")
    cfg = load_recipe(recipe, scale, overrides)
    check_schedule(cfg["schedule"], cfg["optimizer"]["lr"])
    resolve_device(device)
    distributed.init(device)  # torchrun's process group (nothing without torchrun)
    main = distributed.is_main()
    from reid.data.datasets import dataset_name

    dataset = dataset_name(dataset)
    if out is not None:
        run_dir = Path(out).expanduser()
    else:
        run_dir = default_run_dir(recipe, dataset, scale, seed, cfg=cfg, root=root, max_iterations=max_iterations)
    # several processes: rank 0 inspects the folder (and takes its lock later), the others follow
    action = rundir.preflight(run_dir, resume=resume, overwrite=overwrite) if main else None
    action = distributed.broadcast_object(action)
    if action == "complete":
        if main:
            check_finished_run(run_dir, cfg, seed, max_iterations)
            rundir.remove_stale_partials(run_dir)  # a dead overwrite's sibling; the run itself is not touched
            _say(f"{run_dir} is already complete (results.json); nothing to do.")
        distributed.barrier()
        return run_dir
    check_pretrained_weights(cfg)
    if not main:
        distributed.barrier()  # rank 0 generates / caches the data first
    data = load_training_data(cfg, dataset, root, progress=progress and main)
    if main:
        distributed.barrier()
    trainer = Trainer(
        cfg, data, run_dir, device=device, seed=seed, progress=progress and main, callbacks=callbacks,
        max_iterations=max_iterations,
    )  # fmt: skip
    trainer.fit(resume=action == "resume", overwrite=action == "overwrite")
    return run_dir
