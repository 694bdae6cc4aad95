"""``reid train``, ``reid evaluate``, ``reid export`` and ``reid analyse``: the command-line face of :mod:`reid.engine`.

Examples::

    reid train --recipe joint_am_triplet --dataset synthreid            # smoke scale, CPU
    reid train --recipe smc_ecd --set loss.name=center --set loss.lam=0.01 --epochs 5
    reid train --recipe support_neighbor --dataset market1501 --root ~/data --scale full --device cuda
    reid train --recipe support_neighbor --scale full --max-iterations 2     # dry run of the full path
    reid train --recipe support_neighbor --nproc 2                         # 2 processes (torchrun, gloo on CPU)
    torchrun --nproc_per_node 2 -m reid train --recipe support_neighbor   # the same, launched directly
    reid evaluate --run runs/joint_am_triplet-synthreid-smoke-seed0-1a2b3c4d --protocol market_sq
    reid export --run RUN --format mat                  # RUN/pytorch_result.mat for other evaluators
    reid evaluate --features RUN/pytorch_result.mat --ap trapezoid --rank-list ranks.csv
    reid analyse --run RUN --analysis distractor_curve       # an analysis after training (RUN/analyses/)

A folder that already holds a run is refused unless ``--resume`` (continue it) or
``--overwrite`` (replace it atomically) says what to do; see :mod:`reid.engine.rundir`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

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
        help="evaluate a finished run, or any toolkit's exported features",
        description="Recompute a finished run's metrics from its features.pt (--run), or evaluate a "
        "feature file in Person_reID_baseline_pytorch's pytorch_result.mat layout or its .npz "
        "equivalent (--features; query_f, query_label, query_cam, gallery_f, gallery_label, "
        "gallery_cam). Prints CMC at ranks 1, 5 and 10, mAP and mINP (Market-1501 single-query rule).",
    )
    source = e.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="run directory written by `reid train`")
    source.add_argument("--features", help="a .mat or .npz feature file (e.g. from `reid export`)")
    e.add_argument("--protocol", default="market_sq", choices=PROTOCOLS, help="evaluation protocol (default market_sq)")
    e.add_argument("--ap", default="step", choices=("step", "trapezoid"),
                   help="AP definition: step (torchreid, fast-reid, the Market-1501 devkit) or trapezoid "
                   "(Person_reID_baseline_pytorch); default step")
    e.add_argument("--metric", default=None, choices=("euclidean", "cosine"),
                   help="distance (default: the run's recipe, or the file's metric, else euclidean)")
    e.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranking before ranking")
    e.add_argument("--rank-list", default=None, metavar="FILE.csv",
                   help="also write each query's top gallery images with distances and match flags")
    e.add_argument("--top", type=_positive_int, default=10, help="rank-list length per query (default 10)")
    e.add_argument("--overwrite", action="store_true", help="replace an existing --rank-list file")
    e.add_argument("--json", action="store_true", help="print every metric as JSON (for scripts) instead of the summary")
    e.set_defaults(func=_evaluate)

    x = subparsers.add_parser(
        "export",
        help="export a finished run's features for other toolkits' evaluators",
        description="Write a run's query and gallery features, identities and cameras in the layout of "
        "Person_reID_baseline_pytorch's pytorch_result.mat (query_f, query_label, query_cam, gallery_f, "
        "gallery_label, gallery_cam) as .mat, or the same arrays as .npz. Features are L2-normalised "
        "when the run ranks by cosine distance.",
    )
    x.add_argument("--run", required=True, help="run directory written by `reid train`")
    x.add_argument("--format", default=None, choices=("mat", "npz"), help="file format (default: from --out's suffix)")
    x.add_argument("--out", default=None, help="output file (default: RUN/pytorch_result.mat or RUN/features.npz)")
    x.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    x.set_defaults(func=_export)

    from reid.engine.analyses import ANALYSES

    a = subparsers.add_parser(
        "analyse",
        help="run a registered analysis on a finished run, without retraining",
        description="Rebuild a finished run's model and loss from its checkpoint.pt, confirm that they reproduce "
        "its features.pt, and run the named analyses; each writes RUN/analyses/NAME.json with its metrics and its "
        "own provenance (results.json is left as it is). Paper 002's distractor_curve renders 500,000 distractor "
        "people once per machine (about 19 CPU minutes at 64x32; `python -m reid.data.distractors` builds them ahead).",
    )
    a.add_argument("--run", required=True, help="run directory written by `reid train` or `reid study`")
    a.add_argument("--analysis", action="append", required=True, choices=sorted(ANALYSES), metavar="NAME",
                   help=f"analysis to run (repeatable): {', '.join(sorted(ANALYSES))}")
    a.add_argument("--root", default=None, help="dataset root (default: the run's; SynthReID is regenerated from its recipe)")
    a.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="cpu (default) or cuda")
    a.add_argument("--overwrite", action="store_true", help="replace an existing RUN/analyses/NAME.json")
    a.add_argument("--json", action="store_true", help="print the metrics as JSON instead of a summary")
    a.add_argument("--no-progress", action="store_true", help="no progress bars")
    a.set_defaults(func=_analyse)


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
    from reid.engine.evaluation import evaluate, finished_run, metrics_from_features, ranking_distance
    from reid.engine.features_io import read_features, write_rank_list

    if args.run:
        if args.metric is None and not args.rank_list:
            m = evaluate(args.run, protocol=args.protocol, rerank=args.rerank)  # also writes eval-<protocol>.json
        else:
            feats, metric, normalize = finished_run(args.run)
            metric = args.metric or metric
            m = metrics_from_features(feats, metric=metric, normalize=normalize, protocol=args.protocol, rerank=args.rerank)
        source = args.run
    else:
        feats = read_features(args.features)
        metric = args.metric or feats.get("metric") or "euclidean"
        normalize = bool(feats.get("normalize"))
        m = metrics_from_features(feats, metric=metric, normalize=normalize, protocol=args.protocol, rerank=args.rerank)
        source = args.features
    if args.rank_list:
        if args.protocol != "market_sq":
            from reid.errors import ConfigError

            raise ConfigError("--rank-list ranks single queries; use it with --protocol market_sq.")
        dist = ranking_distance(feats, metric=metric, normalize=normalize, rerank=args.rerank)
        write_rank_list(feats, dist, args.rank_list, k=args.top, overwrite=args.overwrite)
    print(json.dumps(m, indent=2) if args.json else format_metrics(m, ap=args.ap, source=source))
    if args.rank_list:
        print(f"rank list (top {args.top} per query) -> {args.rank_list}")
    return 0


def format_metrics(m: dict, *, ap: str = "step", source: str = "") -> str:
    """One block of text: CMC at ranks 1, 5 and 10, mAP under the named AP definition, and mINP."""
    if m["protocol"] == "single_shot":
        ranks = "  ".join(f"rank-{r} {100 * m[f'rank{r}']:.2f}%" for r in (1, 5, 10, 20))
        return f"{source} ({m['protocol']}, {m['metric']}, {m['repeats']} repeats): {ranks} (no mAP in this protocol)"
    mAP = m["mAP"] if ap == "step" else m["mAP_trapezoid"]
    rerank = ", re-ranked" if m["rerank"] else ""
    return (f"{source} ({m['protocol']}, {m['metric']}{rerank}; {m['num_valid_queries']} of {m['num_query']} queries "
            f"valid, {m['num_gallery']} gallery images)\n"
            f"  rank-1 {100 * m['rank1']:.2f}%  rank-5 {100 * m['rank5']:.2f}%  rank-10 {100 * m['rank10']:.2f}%  "
            f"mAP ({ap} AP) {100 * mAP:.2f}%  mINP {100 * m['mINP']:.2f}%")


def _analyse(args) -> int:
    from reid.engine.reanalysis import analyse_run

    existing = {n for n in args.analysis if (Path(args.run) / "analyses" / f"{n}.json").is_file()}
    paths = analyse_run(args.run, args.analysis, root=args.root, device=args.device, overwrite=args.overwrite,
                        progress=not args.no_progress)
    records = {n: json.loads(p.read_text(encoding="utf-8")) for n, p in paths.items()}
    if args.json:
        print(json.dumps({n: r["metrics"] for n, r in records.items()}, indent=2))
        return 0
    for name, record in records.items():
        kept = " (kept: it was there already; --overwrite replaces it)" if name in existing and not args.overwrite else ""
        values = "  ".join(f"{k} {v:.4g}" for k, v in record["metrics"].items())
        print(f"{name} -> {paths[name]}{kept}\n  {values}")
    return 0


def _export(args) -> int:
    from reid.engine.features_io import export_features

    fmt = args.format or (Path(args.out).suffix.lstrip(".") if args.out else "mat")
    out = Path(args.out) if args.out else Path(args.run) / ("pytorch_result.mat" if fmt == "mat" else "features.npz")
    path = export_features(args.run, out, fmt=fmt, overwrite=args.overwrite)
    print(f"query and gallery features of {args.run} -> {path}")
    return 0
