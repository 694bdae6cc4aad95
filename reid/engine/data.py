"""From a recipe to tensors: dataset, transforms, the batch sampler of each paper, loaders.

Everything here is derived from ``(config, seed, epoch)``: each epoch's batch order comes from a
sampler seeded with :func:`epoch_seed`, and DataLoader workers are seeded from it too, so a
resumed run sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from reid.engine.objectives import DataInfo
from reid.errors import ConfigError, DatasetError

__all__ = ["TrainingData", "load_training_data", "epoch_seed", "build_train_loader", "build_eval_loader"]


def epoch_seed(seed: int, epoch: int) -> int:
    """A distinct, reproducible 63-bit seed per (run seed, epoch)."""
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(2, dtype=np.uint32).view(np.uint64)[0] >> 1)


@dataclass
class TrainingData:
    """The dataset of a run and what the objective needs to know about it."""

    dataset: Any  # reid.data.datasets.ReIDDataset
    name: str
    root: Path
    info: DataInfo

    def describe(self) -> dict:
        return {"name": self.name, "root": str(self.root), "statistics": self.dataset.statistics()}


def _attribute_info(dataset) -> tuple[tuple[str, ...], list[int] | None, torch.Tensor | None]:
    """Per-training-identity attribute table (paper 004), when the dataset has one."""
    table = getattr(dataset, "attributes", None)
    if table is None or not getattr(dataset, "train_raw_pids", None):
        return (), None, None
    values = np.asarray(table.lookup(list(dataset.train_raw_pids), "train"), dtype=np.int64)
    if (values < 0).any():
        # an invalid annotation cell (DukeMTMC's 'top' for two ids): use the most common value
        for col in range(values.shape[1]):
            bad = values[:, col] < 0
            if bad.any():
                good = values[~bad, col]
                values[bad, col] = np.bincount(good).argmax() if good.size else 0
    train_split = table.split("train").values
    num_values = [max(2, int(train_split[:, c].max()) + 1) for c in range(values.shape[1])]
    return tuple(table.names), num_values, torch.from_numpy(values)


def load_training_data(cfg: dict, dataset: str, root: str | Path | None, *, progress: bool = True) -> TrainingData:
    """Load ``dataset`` (generating the recipe's SynthReID preset when no root is given)."""
    from reid.data.datasets import load_dataset

    if root is None:
        if dataset != "synthreid":
            raise DatasetError(
                f"--root is required for dataset {dataset!r}: point it at the folder holding the data "
                "(only synthreid is generated on demand)."
            )
        from reid.data import synthreid

        preset = cfg["data"]["synth_preset"] or "smoke"
        root = synthreid.ensure(preset, progress=progress)
    root = Path(root).expanduser()
    ds = load_dataset(dataset, root)
    if not ds.train:
        raise DatasetError(f"{dataset} at {root} has no training images.")
    names, num_values, attributes = _attribute_info(ds)
    info = DataInfo(
        num_classes=ds.num_train_pids,
        num_cameras=max(r.camid for r in ds.train) + 1,
        attribute_names=names,
        attribute_values=num_values,
        attributes=attributes,
    )
    return TrainingData(ds, dataset, root, info)


# ----------------------------------------------------------------------------------------------
# Batch samplers
# ----------------------------------------------------------------------------------------------


class ShuffledBatches:
    """Plain shuffled mini-batches (paper 000), a fresh permutation per epoch, last partial batch dropped."""

    def __init__(self, n: int, batch_size: int, seed: int, num_batches: int | None = None) -> None:
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.num_batches = num_batches if num_batches is not None else n // batch_size

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed)
        order = torch.randperm(self.n, generator=g).tolist()
        for b in range(self.num_batches):
            start = (b * self.batch_size) % max(1, self.n - self.batch_size + 1)
            yield order[start : start + self.batch_size]


def check_sampler(cfg: dict, data: TrainingData) -> None:
    """Refuse an impossible batch for this dataset before any work starts."""
    s, train = cfg["sampler"], data.dataset.train
    pids = [r.pid for r in train]
    num_ids = len(set(pids))
    if s["name"] == "random":
        if s["batch_size"] > len(train):
            raise ConfigError(
                f"sampler.batch_size={s['batch_size']} exceeds the {len(train)} training images of {data.name}; "
                "lower it."
            )
    elif s["name"] in ("pk", "cross_view"):
        if s["p"] > num_ids:
            raise ConfigError(
                f"impossible P x K batch: sampler.p={s['p']} identities per batch but {data.name} has only "
                f"{num_ids} training identities; lower sampler.p (at most {num_ids})."
            )
        if s["p"] < 2:
            raise ConfigError("sampler.p must be >= 2: metric losses need negatives from another identity in the batch.")
        if s["k"] < 2:
            raise ConfigError("sampler.k must be >= 2: metric losses need a positive of the same identity in the batch.")
    elif s["name"] == "anchor_pairs":
        if s["negatives"] and num_ids < 2:
            raise ConfigError(f"anchor pairs need negatives, but {data.name} has a single training identity.")
        if s["anchors"] > len(train):
            raise ConfigError(f"sampler.anchors={s['anchors']} exceeds the {len(train)} training images.")


def batches_per_epoch(cfg: dict, data: TrainingData) -> int:
    """Batches in one epoch: one pass over the training images, capped by ``train.batches_per_epoch``."""
    s, n = cfg["sampler"], len(data.dataset.train)
    per_batch = {
        "random": lambda: s["batch_size"],
        "pk": lambda: s["p"] * s["k"],
        "cross_view": lambda: s["p"] * s["k"],
        "anchor_pairs": lambda: s["anchors"] * (1 + s["positives"] + s["negatives"]),
    }[s["name"]]()
    count = s.get("num_batches") or max(1, n // per_batch)
    cap = cfg["train"]["batches_per_epoch"]
    return min(count, cap) if cap else count


def build_batch_sampler(cfg: dict, data: TrainingData, seed: int, num_batches: int):
    """The recipe's batch sampler for one epoch (seeded with that epoch's seed)."""
    s, train = cfg["sampler"], data.dataset.train
    pids = [r.pid for r in train]
    if s["name"] == "random":
        return ShuffledBatches(len(train), s["batch_size"], seed, num_batches)
    from reid.data import samplers

    if s["name"] == "pk":
        return samplers.PKSampler(pids, s["p"], s["k"], seed=seed, num_batches=num_batches)
    if s["name"] == "anchor_pairs":
        return samplers.AnchorPairSampler(
            train, anchors=s["anchors"], positives=s["positives"], negatives=s["negatives"], seed=seed, num_batches=num_batches
        )
    if s["name"] == "cross_view":
        return samplers.CrossViewPairSampler(train, p=s["p"], k=s["k"], seed=seed, num_batches=num_batches)
    raise ConfigError(f"unknown sampler {s['name']!r}.")


# ----------------------------------------------------------------------------------------------
# Loaders
# ----------------------------------------------------------------------------------------------


def _num_workers(cfg: dict, device: torch.device) -> int:
    n = cfg["runtime"]["num_workers"]
    if n is not None:
        return int(n)
    return 0 if device.type == "cpu" else min(8, os.cpu_count() or 1)


def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker from the loader's generator; mirror it into Python and NumPy so
    # transforms drawing from either are reproducible too.
    import random

    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def _loader(dataset, *, device: torch.device, workers: int, seed: int, **kw) -> DataLoader:
    cuda = device.type == "cuda"
    return DataLoader(
        dataset,
        num_workers=workers,
        pin_memory=cuda,  # page-locked host memory: asynchronous host-to-GPU copies
        persistent_workers=False,
        prefetch_factor=4 if workers > 0 else None,
        worker_init_fn=_seed_worker if workers > 0 else None,
        generator=torch.Generator().manual_seed(seed),
        **kw,
    )


def build_train_loader(cfg: dict, data: TrainingData, *, epoch: int, seed: int, device: torch.device, num_batches: int):
    """The training DataLoader of one epoch, and the sampler behind it."""
    from reid.data.image_dataset import ImageDataset
    from reid.data.transforms import build_transforms

    inp = cfg["input"]
    transform = build_transforms(
        inp["height"], inp["width"], train=True, flip=inp["flip"], random_erasing=inp["random_erasing"]
    )
    es = epoch_seed(seed, epoch)
    sampler = build_batch_sampler(cfg, data, es, num_batches)
    dataset = ImageDataset(data.dataset.train, transform)
    loader = _loader(dataset, device=device, workers=_num_workers(cfg, device), seed=es, batch_sampler=sampler)
    return loader, sampler


def build_eval_loader(cfg: dict, records, *, device: torch.device) -> DataLoader:
    from reid.data.image_dataset import ImageDataset
    from reid.data.transforms import build_transforms

    inp = cfg["input"]
    transform = build_transforms(inp["height"], inp["width"], train=False)
    return _loader(
        ImageDataset(list(records), transform),
        device=device,
        workers=_num_workers(cfg, device),
        seed=0,
        batch_size=cfg["eval"]["batch_size"],
        shuffle=False,
    )


def total_epochs(cfg: dict, per_epoch: int) -> int:
    t = cfg["train"]
    if t["epochs"] is not None:
        return int(t["epochs"])
    return math.ceil(int(t["iterations"]) / per_epoch)
