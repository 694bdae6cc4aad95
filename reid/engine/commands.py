"""``reid train`` and ``reid evaluate``: the command-line face of :mod:`reid.engine`.

Examples::

    reid train --recipe joint_am_triplet --dataset synthreid            # smoke scale, CPU
    reid train --recipe smc_ecd --set loss.name=center --set loss.lam=0.01 --epochs 5
    reid train --recipe support_neighbor --dataset market1501 --root ~/data --scale full --device cuda
    reid train --recipe support_neighbor --scale full --max-iterations 2     # dry run of the full path
    reid train --recipe support_neighbor --nproc 2                         # 2 processes (torchrun, gloo on CPU)
    torchrun --nproc_per_node 2 -m reid train --recipe support_neighbor   # the same, launched directly
    reid evaluate --run runs/joint_am_triplet-synthreid-smoke-seed0-1a2b3c4d --protocol market_sq

A folder that already holds a run is refused unless ``--resume`` (continue it) or
``--overwrite`` (replace it atomically) says what to do; see :mod:`reid.engine.rundir`.
"""

from __future__ import annotations

import argparse
import json

__all__ = ["register"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def register(subparsers) -> None:
    from reid.engine.evaluation import PROTOCOLS
    from reid.recipes import RECIPES, SCALES

    p = subparsers.add_parser(
        "train",
        help="train a paper's recipe and evaluate it",
        description="Train one of the five papers' recipes; writes results.json, log.jsonl, "
        "checkpoints and features.pt into the run directory.",
    )
    p.add_argument("--recipe", required=True, choices=RECIPES, help="the paper's recipe (chapter name)")
    p.add_argument("--dataset", default="synthreid", help="dataset name (default: synthreid)")
    p.add_argument("--root", default=None, help="dataset root (synthreid without --root is generated and cached)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="cpu (default) or cuda")
    p.add_argument("--scale", default="smoke", choices=SCALES, help="smoke (default, CPU minutes), study (the evidence runs of `reid study`) or full (the paper's schedule)")
    p.add_argument("--epochs", type=_positive_int, default=None, help="override the number of epochs")
    p.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--out", default=None,
        help="run directory (default runs/<recipe>-<dataset>-<scale>-seed<seed>-<hash of the resolved recipe>)",
    )  # fmt: skip
    p.add_argument(
        "--resume", action="store_true",
        help="continue the run directory's unfinished run from its last checkpoint (a finished run is left as it is)",
    )  # fmt: skip
    p.add_argument(
        "--overwrite", action="store_true",
        help="replace the run the directory holds; the old run stays in place until the new one has finished",
    )  # fmt: skip
    p.add_argument(
        "--max-iterations", type=_positive_int, default=None, metavar="N",
        help="dry run: the real pipeline of any scale stopped after N optimisation steps, then evaluated "
        "(results.json records it)",
    )  # fmt: skip
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a recipe value, e.g. --set loss.name=center --set optimizer.lr=0.01 (repeatable)",
    )  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--nproc", type=int, default=None, metavar="N",
        help="train with N processes (torch.distributed, launched through torchrun; gloo on cpu, nccl on cuda "
        "with one GPU per process); sampler.p must divide by N",
    )  # fmt: skip
    p.set_defaults(func=_train)

    e = subparsers.add_parser(
        "evaluate",
        help="evaluate a finished run from its saved features",
        description="Recompute a finished run's metrics from features.pt for a protocol.",
    )
    e.add_argument("--run", required=True, help="run directory written by `reid train`")
    e.add_argument("--protocol", default="market_sq", choices=PROTOCOLS, help="evaluation protocol (default market_sq)")
    e.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranking before ranking")
    e.set_defaults(func=_evaluate)


def _without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


def _launch(args) -> int | None:
    """``--nproc N`` (N > 1, not already under torchrun): re-run this command under torchrun."""
    import os
    import subprocess
    import sys

    from reid.errors import ConfigError

    n = args.nproc
    if n is None:
        return None
    if n < 1:
        raise ConfigError(f"--nproc must be a positive number of processes, got {n}.")
    if "WORLD_SIZE" in os.environ:  # launched by torchrun already: torchrun decides the world
        return None
    if args.device == "cuda":
        import torch

        if torch.cuda.device_count() < n:
            raise ConfigError(f"--nproc {n} with --device cuda needs {n} GPUs (one per process); torch sees "
                              f"{torch.cuda.device_count()}.")
    if n == 1:
        return None
    argv = _without_nproc(list(getattr(args, "argv", None) or sys.argv[1:]))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n),
           "-m", "reid", *argv]  # fmt: skip
    return subprocess.run(cmd).returncode


def _train(args) -> int:
    from reid.engine import distributed

    launched = _launch(args)
    if launched is not None:
        return launched
    try:
        return _train_here(args)
    finally:
        distributed.teardown()


def _train_here(args) -> int:
    from reid.engine import distributed
    from reid.engine.trainer import train
    from reid.recipes import parse_override

    overrides = {}
    for text in args.overrides:
        key, value = parse_override(text)
        overrides[key] = value
    run = train(
        args.recipe,
        dataset=args.dataset,
        root=args.root,
        scale=args.scale,
        device=args.device,
        epochs=args.epochs,
        seed=args.seed,
        out=args.out,
        overrides=overrides,
        resume=args.resume,
        overwrite=args.overwrite,
        max_iterations=args.max_iterations,
        progress=not args.no_progress,
    )
    if not distributed.is_main():
        return 0  # rank 0 reports
    results = json.loads((run / "results.json").read_text())
    m = results["metrics"]
    dry = f", dry run of {results['max_iterations']} iterations" if results.get("dry_run") else ""
    # the single-shot protocol has no mAP / mINP: print what the protocol measured
    shown = "  ".join(f"{name} {100 * m[key]:.1f}%" for key, name in (("rank1", "rank-1"), ("mAP", "mAP"), ("mINP", "mINP"))
                      if key in m)
    print(f"{args.recipe} on {args.dataset} ({args.scale}{dry}): {shown}  -> {run}")
    return 0


def _evaluate(args) -> int:
    from reid.engine.evaluation import evaluate

    m = evaluate(args.run, protocol=args.protocol, rerank=args.rerank)
    print(json.dumps(m, indent=2))
    return 0
