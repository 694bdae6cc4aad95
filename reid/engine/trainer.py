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
switched off on CPU.

Files of a run directory: ``checkpoint.pt`` (latest epoch), ``log.jsonl`` (one JSON line per
epoch), ``model.pt`` (final weights), ``features.pt`` (query/gallery embeddings) and
``results.json`` (metrics + provenance).
"""

from __future__ import annotations

import contextlib
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from reid.engine import checkpoint as ckpt
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
from reid.errors import ConfigError
from reid.recipes import load_recipe

__all__ = ["Trainer", "train", "seed_everything", "resolve_device", "default_run_dir"]


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


def default_run_dir(recipe: str, dataset: str, scale: str, seed: int) -> Path:
    return Path("runs") / f"{recipe}-{dataset}-{scale}-seed{seed}"


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
    ) -> None:
        self.cfg, self.data, self.seed = cfg, data, int(seed)
        self.run_dir = Path(run_dir)
        self.device = resolve_device(device)
        self.cuda = self.device.type == "cuda"
        self.progress = progress
        self.callbacks = list(callbacks or [])
        rt = cfg["runtime"]
        self.amp = self.cuda and rt["amp"]
        self.channels_last = self.cuda and rt["channels_last"]
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
        self.objective.setup(self.model)
        self.model.to(self.device)
        self.objective.to(self.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.optimizers = self.objective.optimizers(self.model)
        self.loader = build_train_loader(cfg, data, self.sampler, device=self.device, seed=self.seed)
        self._compiled = False
        self.epoch, self.iteration = 0, 0  # completed epochs, global step

    # ------------------------------------------------------------------------------------------
    def autocast(self):
        if self.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _maybe_compile(self) -> None:
        if self._compiled or not (self.cuda and self.cfg["runtime"]["compile"]):
            return
        # Module.compile keeps parameter names (checkpoints stay loadable without torch.compile)
        targets = [self.model.ms, self.model.mt] if getattr(self.model, "asymmetric", False) else [self.model]
        for module in targets:
            module.compile()
        self._compiled = True

    def _set_lr(self) -> float:
        base = self.cfg["optimizer"]["lr"]
        factor = lr_factor(self.cfg["schedule"], base, self.epoch, self.iteration)
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
        return self.run_dir / ckpt.CHECKPOINT_NAME

    def state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "objective": self.objective.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "epoch": self.epoch,
            "iteration": self.iteration,
            "rng": ckpt.rng_state(),
            "config": _comparable(self.cfg),
            "seed": self.seed,
        }

    def load_state(self, state: dict) -> None:
        if state.get("config") != _comparable(self.cfg) or state.get("seed") != self.seed:
            raise ConfigError(
                f"the checkpoint in {self.run_dir} was written by a different recipe, overrides or seed; "
                "resume with the same settings, or drop --resume (or use another --out) to start afresh."
            )
        self.model.load_state_dict(state["model"])
        self.objective.load_state_dict(state["objective"])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        self.epoch, self.iteration = int(state["epoch"]), int(state["iteration"])
        ckpt.set_rng_state(state["rng"])

    # -- the loop ------------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> dict:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.run_dir / "log.jsonl"
        if resume and self.checkpoint_path.is_file():
            self.load_state(ckpt.load_checkpoint(self.checkpoint_path))
            _truncate_log(log_path, self.epoch)
        else:
            for stale in ("log.jsonl", "results.json", "features.pt", "model.pt", ckpt.CHECKPOINT_NAME):
                (self.run_dir / stale).unlink(missing_ok=True)
        started = time.perf_counter()
        train_seconds, images_seen = 0.0, 0
        deterministic_cpu = (not self.cuda) and self.cfg["runtime"]["deterministic"]
        with deterministic(deterministic_cpu):
            self._maybe_compile()
            while self.epoch < self.epochs and not self._budget_spent():
                record = self._run_epoch()
                train_seconds += record["seconds"]
                images_seen += record["images"]
                with open(log_path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(record) + "\n")
                if self.progress:
                    _say(
                        f"epoch {record['epoch']}/{self.epochs}  loss {record.get('loss', float('nan')):.4f}  "
                        f"{record['images_per_second']} images/s  lr {record['lr']:.2e}"
                    )
                ckpt.save_atomic(self.state(), self.checkpoint_path)
                for cb in self.callbacks:
                    if cb.on_epoch_end:
                        cb.on_epoch_end(self, self.epoch)
            ckpt.save_atomic(self.model.state_dict(), self.run_dir / "model.pt")
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
            "final_log": _last_log(log_path),
            "timings": {
                "train_seconds_this_session": round(train_seconds, 3),
                "eval_seconds": round(eval_seconds, 3),
                "total_seconds_this_session": round(time.perf_counter() - started, 3),
                "train_images_per_second": round(images_seen / train_seconds, 1) if train_seconds else None,
            },
            **provenance(str(self.device)),
        }
        write_json(results, self.run_dir / "results.json")
        return results

    def _budget_spent(self) -> bool:
        return self.max_iterations is not None and self.iteration >= self.max_iterations

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
        bar = _progress(loader, self.progress, f"epoch {epoch + 1}/{self.epochs}")
        for raw in bar:
            if self._budget_spent() or steps >= self.per_epoch:
                break
            lr = self._set_lr()
            batch = self._to_device(raw)
            ctx = StepContext(self.optimizers, epoch, self.iteration, self.autocast, self.cfg["train"]["grad_clip"])
            stats = self.objective.train_step(self.model, batch, ctx)
            self.iteration += 1
            steps += 1
            images += batch["images"].shape[0]
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            if self.progress:
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
        feats = {}
        for split, view in (("query", 0), ("gallery", 1)):
            records = getattr(ds, split)
            loader = build_eval_loader(self.cfg, records, device=self.device)
            feats[split] = extract_features(
                self.model, loader, device=self.device, autocast=self.autocast,
                view=view if asym else None, channels_last=self.channels_last, feature=self.objective.eval_feature,
            )  # fmt: skip
            feats[f"{split}_pids"] = torch.tensor([r.pid for r in records])
            feats[f"{split}_camids"] = torch.tensor([r.camid for r in records])
            feats[f"{split}_paths"] = [str(r.path) for r in records]
        feats["metric"], feats["normalize"] = self.cfg["eval"]["metric"], self.cfg["eval"]["normalize"]
        feats["feature"] = self.objective.eval_feature
        ckpt.save_atomic(feats, self.run_dir / "features.pt")
        metrics = metrics_from_features(feats, metric=self.cfg["eval"]["metric"], normalize=self.cfg["eval"]["normalize"])
        if self.cfg["eval"].get("analyses"):  # extra per-run metrics (reid.engine.analyses)
            from reid.engine.analyses import run_analyses

            metrics.update(run_analyses(self.cfg["eval"]["analyses"], model=self.model, objective=self.objective,
                                        data=self.data, features=feats, cfg=self.cfg))
        return metrics


def _comparable(cfg: dict) -> dict:
    """The configuration minus what may differ between a run and its resumption (speed options)."""
    return {k: v for k, v in cfg.items() if k != "runtime"}


def _truncate_log(path: Path, epochs_done: int) -> None:
    if not path.is_file():
        return
    keep = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["epoch"] <= epochs_done]
    path.write_text("".join(line + "\n" for line in keep))


def _last_log(path: Path) -> dict | None:
    if not path.is_file():
        return None
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return json.loads(lines[-1]) if lines else None


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
    progress: bool = True,
    callbacks: list[Callback] | None = None,
) -> Path:
    """Train ``recipe`` and evaluate it; returns the run directory (``results.json`` inside).

    Everything that can be checked without data is checked first (recipe, scale, overrides,
    device), then the dataset is loaded (SynthReID generated once and cached when ``dataset``
    is ``synthreid`` and no ``root`` is given) and the batch shape is checked against it —
    all before a model is built. ``epochs`` replaces the recipe's training length.
    """
    overrides = dict(overrides or {})
    if epochs is not None:
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
            raise ConfigError(f"epochs must be a positive integer, got {epochs!r}.")
        overrides.update({"train.epochs": epochs, "train.iterations": None})
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}.")
    cfg = load_recipe(recipe, scale, overrides)
    check_schedule(cfg["schedule"], cfg["optimizer"]["lr"])
    resolve_device(device)
    from reid.data.datasets import DATASETS

    if dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}.")
    data = load_training_data(cfg, dataset, root, progress=progress)
    run_dir = Path(out) if out is not None else default_run_dir(recipe, dataset, scale, seed)
    trainer = Trainer(cfg, data, run_dir, device=device, seed=seed, progress=progress, callbacks=callbacks)
    trainer.fit(resume=resume)
    return run_dir
