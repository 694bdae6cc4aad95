"""Training-step speed of a recipe: images/s and the share of step time outside the backbone.

For ``--steps`` batches of the recipe's own loader it measures, per iteration,

* **data wait** — time blocked on the DataLoader (sampler + decoding + transforms);
* **step** — the objective's full training step (forward, loss, backward, optimiser);
* **backbone** — forward + backward of the network alone on the same batch (a ``sum`` of the
  features as the loss, no optimiser), measured separately;

and prints images/s, ``overhead = 1 - backbone / (data wait + step)`` — the fraction of the
iteration spent outside the backbone (loss, sampler, data pipeline, optimiser, bookkeeping; the
target on a GPU is under 10%) — and whether the input pipeline keeps up (the median wait for a
batch is under 5% of the iteration). The evaluation cost (feature extraction + ranking metrics,
paid once per run) is reported too.

CPU::

    python benchmarks/bench_train_step.py --recipe joint_am_triplet --scale smoke --steps 20

CUDA (bf16 autocast, channels-last, optional torch.compile, pinned memory, worker processes reading
the decoded-image cache), a ResNet-50 recipe on the Market-1501-sized SynthReID of its full scale
(generated once, ~1 CPU-minute; ``--random-init`` when the ImageNet weights are not in the torch
hub cache)::

    python benchmarks/bench_train_step.py --recipe joint_am_triplet --scale full --device cuda \\
        --random-init --steps 300 --compile
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reid.engine.data import epoch_seed, load_training_data  # noqa: E402
from reid.engine.evaluation import extract_features, metrics_from_features  # noqa: E402
from reid.engine.objectives import StepContext  # noqa: E402
from reid.data.datasets import dataset_name  # noqa: E402
from reid.engine.trainer import Trainer, check_pretrained_weights, resolve_device, seed_everything  # noqa: E402
from reid.errors import ReidError  # noqa: E402
from reid.recipes import RECIPES, SCALES, load_recipe, parse_override  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _backbone_time(trainer: Trainer, batch: dict) -> float:
    """Forward + backward of the network alone (no loss module, no optimiser)."""
    model = trainer.model
    images = batch["images"]
    _sync(trainer.device)
    start = time.perf_counter()
    with trainer.autocast():
        if getattr(model, "asymmetric", False):
            feats = model.embed(images, batch.get("views", torch.zeros(len(images), dtype=torch.long, device=images.device)))
        else:
            feats = model(images).features
    feats.float().sum().backward()
    _sync(trainer.device)
    elapsed = time.perf_counter() - start
    model.zero_grad(set_to_none=True)
    return elapsed


def bench(args) -> dict:
    overrides = dict(parse_override(text) for text in args.set)
    if args.compile:
        overrides["runtime.compile"] = True
    if args.workers is not None:
        overrides["runtime.num_workers"] = args.workers
    if args.random_init:
        model = load_recipe(args.recipe, args.scale, overrides)["model"]
        overrides.update({f"model.{k}": None for k in model if k.endswith("weights")})
    cfg = load_recipe(args.recipe, args.scale, overrides)
    resolve_device(args.device)
    check_pretrained_weights(cfg)
    data = load_training_data(cfg, dataset_name(args.dataset), args.root, progress=True)
    with tempfile.TemporaryDirectory() as tmp:
        # progress=True: with workers the training images are decoded once, here, before the first step
        trainer = Trainer(cfg, data, tmp, device=args.device, seed=0, progress=True)
        trainer._maybe_compile()
        trainer.model.train()
        trainer.objective.train()
        seed_everything(epoch_seed(0, 0))
        trainer.sampler.set_epoch(0)
        waits, steps, backbones, sizes = [], [], [], []
        epoch, done = 0, 0
        while done < args.warmup + args.steps:
            it = iter(trainer.loader)
            while done < args.warmup + args.steps:
                t0 = time.perf_counter()
                try:
                    raw = next(it)
                except StopIteration:
                    epoch += 1
                    trainer.sampler.set_epoch(epoch)
                    break
                batch = trainer._to_device(raw)
                _sync(trainer.device)
                t1 = time.perf_counter()
                trainer._set_lr()
                ctx = StepContext(trainer.optimizers, epoch, trainer.iteration, trainer.autocast, None)
                trainer.objective.train_step(trainer.model, batch, ctx)
                _sync(trainer.device)
                t2 = time.perf_counter()
                trainer.iteration += 1
                backbone = _backbone_time(trainer, batch)
                if done >= args.warmup:  # the first steps pay for allocation / compilation
                    waits.append(t1 - t0)
                    steps.append(t2 - t1)
                    backbones.append(backbone)
                    sizes.append(batch["images"].shape[0])
                done += 1
        ev_start = time.perf_counter()
        records = data.dataset.query[: args.eval_images]
        from reid.engine.data import build_eval_loader

        loader = build_eval_loader(cfg, records, device=trainer.device)
        view = 0 if getattr(trainer.model, "asymmetric", False) else None
        feats = extract_features(trainer.model, loader, device=trainer.device, autocast=trainer.autocast, view=view)
        extract_s = time.perf_counter() - ev_start
        q = {"query": feats, "gallery": feats, "query_pids": torch.tensor([r.pid for r in records]),
             "gallery_pids": torch.tensor([r.pid for r in records]),
             "query_camids": torch.zeros(len(records), dtype=torch.long),
             "gallery_camids": torch.ones(len(records), dtype=torch.long)}  # fmt: skip
        rank_start = time.perf_counter()
        metrics_from_features(q)
        rank_s = time.perf_counter() - rank_start

    wait, step, backbone = (statistics.median(x) for x in (waits, steps, backbones))
    iteration = wait + step
    keeps_up = wait < 0.05 * iteration
    images = statistics.median(sizes)
    return {
        "recipe": args.recipe, "scale": args.scale, "device": str(trainer.device),
        "gpu": torch.cuda.get_device_name(0) if trainer.device.type == "cuda" else None,
        "batch": int(images), "steps": len(steps),
        "images_per_s": images / iteration,
        "step_ms": 1000 * step, "data_wait_ms": 1000 * wait, "backbone_ms": 1000 * backbone,
        "overhead_fraction": max(0.0, 1.0 - backbone / iteration),
        "data_fraction": wait / iteration, "pipeline_keeps_up": keeps_up,
        "extract_images_per_s": len(records) / extract_s, "ranking_s": rank_s,
        "amp_bf16": trainer.amp, "channels_last": trainer.channels_last, "compile": trainer._compiled,
        "workers": trainer.loader.num_workers,
    }  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", default="joint_am_triplet", choices=RECIPES)
    p.add_argument("--scale", default="smoke", choices=SCALES)
    p.add_argument("--dataset", default="synthreid")
    p.add_argument("--root", default=None)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: 0 on CPU, 8 on CUDA)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (CUDA, or the CPU with "
                   "--set runtime.speedups_on_cpu=true)")
    p.add_argument("--random-init", action="store_true", help="no pretrained weights (same speed; no ImageNet file needed)")
    p.add_argument("--eval-images", type=int, default=512)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)
    try:
        r = bench(args)
    except ReidError as exc:
        print(f"bench_train_step: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{r['recipe']} ({r['scale']}, {r['device']}{', ' + r['gpu'] if r['gpu'] else ''}; batch {r['batch']}, "
        f"{r['steps']} steps, workers {r['workers']}, bf16 {r['amp_bf16']}, channels-last {r['channels_last']}, "
        f"compile {r['compile']})\n"
        f"  training      {r['images_per_s']:8.1f} images/s\n"
        f"  step          {r['step_ms']:8.1f} ms   (backbone fwd+bwd {r['backbone_ms']:.1f} ms)\n"
        f"  data wait     {r['data_wait_ms']:8.1f} ms   ({100 * r['data_fraction']:.1f}% of the iteration: the input "
        f"pipeline {'keeps up' if r['pipeline_keeps_up'] else 'does NOT keep up'})\n"
        f"  outside backbone {100 * r['overhead_fraction']:5.1f}% of the iteration (loss + sampler + data + optimiser)\n"
        f"  evaluation    {r['extract_images_per_s']:8.1f} images/s feature extraction, ranking {r['ranking_s']:.3f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
