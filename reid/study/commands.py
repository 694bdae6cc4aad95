"""``reid study``: the command-line face of :mod:`reid.study.runner`.

Examples::

    reid study support_neighbor --plan                 # what would run, what is finished
    reid study support_neighbor                        # 5 seeds x every variant, 2 processes
    reid study support_neighbor --variants batch_hard,support_neighbor --seeds 2 --allow-dirty   # a trial
    reid study support_neighbor --aggregate-only       # rebuild evidence/support_neighbor.json
"""

from __future__ import annotations

import argparse

__all__ = ["register"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def register(subparsers) -> None:
    from reid.recipes import SCALES

    p = subparsers.add_parser(
        "study",
        help="run a chapter's registered claims over seeds and write evidence/<chapter>.json",
        description="Train every registered variant x seed of a chapter's study (resumable: finished runs are "
        "kept and skipped), then compute each claim's seed-paired difference, 95%% t-interval and verdict.",
    )
    p.add_argument("chapter", help="chapter name (smc_ecd, adaptive_margin, support_neighbor, view_adaptation, "
                                   "joint_am_triplet, benchmark) or the path of a registry JSON file")
    p.add_argument("--seeds", type=_positive_int, default=None, help="seeds 0..N-1 (default: the registry's, >= 5)")
    p.add_argument("--scale", default=None, choices=SCALES, help="recipe scale (default: the registry's, study)")
    p.add_argument("--jobs", type=_positive_int, default=2, help="worker processes, one thread each (default 2)")
    p.add_argument("--variants", default=None, help="comma-separated subset of variants (claims between them only)")
    p.add_argument("--budget", type=_positive_int, default=None, metavar="EPOCHS",
                   help="train every variant this long, each schedule's shape rescaled (default: the registry's)")
    p.add_argument("--out", default="evidence", help="evidence directory (default: evidence)")
    p.add_argument("--plan", action="store_true", help="print the runs and their state; train nothing")
    p.add_argument("--aggregate-only", action="store_true", help="rebuild <out>/<chapter>.json from finished runs")
    p.add_argument("--allow-dirty", action="store_true", help="run with uncommitted changes (a trial, not evidence)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_study)


def _study(args) -> int:
    from reid.study.runner import run_study

    variants = [v.strip() for v in args.variants.split(",") if v.strip()] if args.variants else None
    summary = run_study(
        args.chapter, seeds=args.seeds, scale=args.scale, jobs=args.jobs, variants=variants, budget=args.budget, out=args.out,
        allow_dirty=args.allow_dirty, plan_only=args.plan, aggregate_only=args.aggregate_only,
        progress=not args.no_progress,
    )  # fmt: skip
    if args.plan:
        print(summary["text"])
        return 0
    print(f"{summary['chapter']}: {summary['trained']} run(s) trained, {summary['skipped']} finished run(s) kept "
          f"-> {summary['evidence']}")
    for claim, verdict in summary["verdicts"].items():
        print(f"  {claim}: {verdict}")
    return 0
