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

__all__ = ["TrainingData", "load_training_data", "epoch_seed", "build_batch_sampler", "build_train_loader", "build_eval_loader"]


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
        from reid.data.datasets.synthreid import ensure_cached

        d = cfg["data"]
        root = ensure_cached(d["synth_preset"] or "smoke", progress=progress,
                             num_ids=d.get("synth_ids"), num_cameras=d.get("synth_cameras"))
    root = Path(root).expanduser()
    # SynthReID writes two layouts; data.layout picks one (real datasets have their own)
    options = {"layout": cfg["data"]["layout"]} if dataset == "synthreid" else {}
    ds = load_dataset(dataset, root, **options)
    if cfg["data"].get("validation_ids"):  # tune on held-out training identities, never on the test split
        from reid.data.validation import hold_out_validation

        ds = hold_out_validation(ds, cfg["data"]["validation_ids"], evaluate_on=cfg["eval"].get("split", "test"))
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
    """Plain shuffled mini-batches (paper 000): a fresh permutation per epoch, partial batch dropped.

    Same protocol as the samplers of :mod:`reid.data.samplers`: ``set_epoch(e)`` selects the
    epoch, whose order depends only on ``(seed, e)``.
    """

    def __init__(self, n: int, batch_size: int, *, seed: int = 0, num_batches: int | None = None,
                 rank: int = 0, world_size: int = 1) -> None:
        self.n, self.batch_size, self.seed, self.epoch = n, batch_size, seed, 0
        self.num_batches = num_batches if num_batches is not None else max(1, n // batch_size)
        self.rank, self.world_size = rank, world_size  # each rank keeps its contiguous share of a batch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self):
        rng = np.random.default_rng([self.seed, 0, self.epoch])
        self.epoch += 1
        order = np.concatenate([rng.permutation(self.n) for _ in range(-(-self.num_batches * self.batch_size // self.n))])
        share = self.batch_size // self.world_size
        for b in range(self.num_batches):
            batch = order[b * self.batch_size : (b + 1) * self.batch_size]
            yield batch[self.rank * share : (self.rank + 1) * share].tolist()


def check_sampler(cfg: dict, data: TrainingData) -> None:
    """Refuse an impossible batch for this dataset before any work starts."""
    s, train = cfg["sampler"], data.dataset.train
    num_ids = len({r.pid for r in train})
    if s["name"] == "random":
        if s["batch_size"] > len(train):
            raise ConfigError(
                f"sampler.batch_size={s['batch_size']} exceeds the {len(train)} training images of {data.name}; "
                "lower it."
            )
        return
    if s["name"] in ("pk", "cross_view"):
        k_name = "k" if s["name"] == "pk" else "s"
        if s["p"] > num_ids:
            raise ConfigError(
                f"impossible P x K batch: sampler.p={s['p']} identities per batch but {data.name} has only "
                f"{num_ids} training identities; lower sampler.p (at most {num_ids})."
            )
        if s["p"] < 2 or s[k_name] < 2:
            raise ConfigError(
                f"sampler.p={s['p']} and sampler.{k_name}={s[k_name]} must both be >= 2: the losses need "
                "positives (same identity) and negatives (another identity) inside each batch."
            )
    from reid.engine import distributed

    world = distributed.world_size()
    key = {"random": "batch_size", "anchor_pairs": "anchors"}.get(s["name"], "p")
    if world > 1 and s[key] % world:
        raise ConfigError(
            f"sampler.{key}={s[key]} is not divisible by the world size {world}: each process takes whole "
            f"blocks of the global batch; choose sampler.{key} as a multiple of {world} (or fewer processes)."
        )
    # The samplers check the rest (e.g. identities seen in both views) when built.
    build_batch_sampler(cfg, data, seed=0)


def build_batch_sampler(cfg: dict, data: TrainingData, seed: int):
    """The recipe's batch sampler (one per run; ``set_epoch`` selects each epoch's batches).

    Under torchrun each rank gets its share of the one global batch (:mod:`reid.data.samplers`)."""
    from reid.engine import distributed

    s, train = cfg["sampler"], data.dataset.train
    pids, camids = [r.pid for r in train], [r.camid for r in train]
    n = s.get("num_batches")
    shard = {"rank": distributed.rank(), "world_size": distributed.world_size()}
    if s["name"] == "random":
        return ShuffledBatches(len(train), s["batch_size"], seed=seed, num_batches=n, **shard)
    from reid.data import samplers

    if s["name"] == "pk":
        return samplers.PKSampler(pids, s["p"], s["k"], seed=seed, num_batches=n, **shard)
    views = {"probe_cam": s["probe_cam"], "gallery_cam": s["gallery_cam"]}
    if views["probe_cam"] is None and views["gallery_cam"] is None and set(camids) == {0, 1}:
        views = {"probe_cam": 0, "gallery_cam": 1}  # a two-camera set: camera A probes, camera B gallery
    if s["name"] == "anchor_pairs":
        return samplers.AnchorPairSampler(
            pids, camids, anchors=s["anchors"], positives=s["positives"], negatives=s["negatives"],
            views=s.get("views", "anchor"), seed=seed, num_batches=n, **views, **shard,
        )  # fmt: skip
    if s["name"] == "cross_view":
        return samplers.CrossViewPairSampler(pids, camids, p=s["p"], s=s["s"], seed=seed, num_batches=n, **views,
                                             **shard)
    raise ConfigError(f"unknown sampler {s['name']!r}.")


def batch_structure(sampler) -> dict[str, torch.Tensor]:
    """Tensors describing a batch's layout, for the objectives (identical for every batch)."""
    out = {}
    if hasattr(sampler, "pair_index"):  # paper 001: (anchor position, partner position, same)
        out["pairs"] = torch.as_tensor(np.asarray(sampler.pair_index()), dtype=torch.long)
    if hasattr(sampler, "view_labels"):  # paper 003: 0 probe view, 1 gallery view
        out["views"] = torch.as_tensor(np.asarray(sampler.view_labels()), dtype=torch.long)
    return out


def batches_per_epoch(cfg: dict, sampler) -> int:
    """Batches in one epoch: the sampler's epoch, capped by ``train.batches_per_epoch``."""
    cap = cfg["train"]["batches_per_epoch"]
    return min(len(sampler), cap) if cap else len(sampler)


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
        persistent_workers=workers > 0,  # keep workers (and their decoded-image caches) across epochs
        prefetch_factor=4 if workers > 0 else None,
        worker_init_fn=_seed_worker if workers > 0 else None,
        generator=torch.Generator().manual_seed(seed),
        **kw,
    )


def build_train_loader(cfg: dict, data: TrainingData, sampler, *, device: torch.device, seed: int,
                       progress: bool = False) -> DataLoader:
    """The training DataLoader (built once; the trainer re-seeds its generator every epoch).

    ``runtime.cache_images`` decodes each JPEG once: in a lazily filled in-process cache without
    workers (the CPU default), and with workers in a :class:`~reid.data.image_dataset.PackedImages`
    file decoded here, in the main process, and memory-mapped by every worker (one copy of the
    pixels however many workers; a cache folder that cannot be written falls back to decoding in
    each worker, with a warning).
    """
    from reid.data.image_dataset import ImageDataset, PackedImages
    from reid.data.transforms import build_transforms

    inp = cfg["input"]
    transform = build_transforms(
        inp["height"], inp["width"], train=True, flip=inp["flip"], random_erasing=inp["random_erasing"]
    )
    workers = _num_workers(cfg, device)
    cache = None
    if cfg["runtime"]["cache_images"]:
        cache = "memory"
        if workers > 0:
            try:
                cache = PackedImages.build(data.dataset.train, (inp["height"], inp["width"]), progress=progress)
            except OSError as exc:
                import warnings

                warnings.warn(f"cannot write the decoded-image cache ({exc}); each worker decodes its own copy.",
                              stacklevel=2)  # fmt: skip
    dataset = ImageDataset(data.dataset.train, transform, cache=cache)
    return _loader(dataset, device=device, workers=workers, seed=seed, batch_sampler=sampler)


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
    """``train.epochs``, or enough epochs for ``train.iterations`` (the last one stops early)."""
    t = cfg["train"]
    if t["epochs"] is not None:
        return int(t["epochs"])
    return math.ceil(int(t["iterations"]) / per_epoch)
