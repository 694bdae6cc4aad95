"""How long will ``reid study <chapter>`` take? One seed of each variant, timed, and the projection.

Runs seed 0 of every registered variant of a chapter (or ``--variants``) at its study scale, one
after another in this process with one thread (what each ``reid study`` worker does), in a
temporary directory (the evidence folder is never touched), and measures each run's wall and
CPU time. It then projects the whole study: ``seeds`` runs per variant, scheduled over ``--jobs``
processes by longest-first assignment, on as many cores as jobs. The issue's budget is one
chapter's whole study in about 15–20 minutes on 2 cores with two processes of one thread each.

On a shared, busy machine, wall time overstates what a dedicated core needs; the CPU time of a
one-thread run is the better estimate there, so the projection is printed from both.

    python benchmarks/bench_study_scale.py support_neighbor
    python benchmarks/bench_study_scale.py smc_ecd --variants softmax,smc_ecd --jobs 2
    python benchmarks/bench_study_scale.py /tmp/my-registry.json --scale smoke
"""

from __future__ import annotations

import argparse
import heapq
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reid.study.registry import load_study  # noqa: E402
from reid.study.runner import execute_run, plan  # noqa: E402

BUDGET_MINUTES = (15.0, 20.0)


def makespan(durations: list[float], jobs: int) -> float:
    """Longest-processing-time-first schedule of ``durations`` on ``jobs`` workers: the finishing time."""
    workers = [0.0] * jobs
    for d in sorted(durations, reverse=True):
        heapq.heapreplace(workers, workers[0] + d)
    return max(workers)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("chapter", help="chapter name or registry JSON path")
    p.add_argument("--variants", default=None, help="comma-separated subset (default: every registered variant)")
    p.add_argument("--scale", default=None, help="recipe scale (default: the registry's, study)")
    p.add_argument("--budget", type=int, default=None, help="epochs budget (studies with a budget, e.g. benchmark)")
    p.add_argument("--seed", type=int, default=0, help="the seed to time (default 0)")
    p.add_argument("--seeds", type=int, default=None, help="seeds of the projected study (default: the registry's)")
    p.add_argument("--jobs", type=int, default=2, help="worker processes of the projected study (default 2)")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    variants = [v.strip() for v in args.variants.split(",")] if args.variants else None
    study = load_study(args.chapter, scale=args.scale, variants=variants, budget=args.budget)
    n_seeds = args.seeds or len(study.seeds)
    timed = load_study(args.chapter, scale=args.scale, variants=variants, budget=args.budget, seeds=[args.seed])
    print(f"{study.chapter}: {len(study.variants)} variants x {n_seeds} seeds at {study.scale} scale; "
          f"timing seed {args.seed} of each, one thread, one run at a time")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-study-") as tmp:
        for spec in plan(timed, tmp):
            wall0, cpu0 = time.perf_counter(), time.process_time()
            execute_run({**spec.__dict__, "state": "new"})
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            rows.append((spec.variant, wall, cpu))
            print(f"  {spec.variant:<28} wall {wall:7.1f} s   CPU {cpu:7.1f} s", flush=True)
    print()
    for what, col in (("CPU time (a dedicated core)", 2), ("wall time (as measured here)", 1)):
        runs = [r[col] for r in rows for _ in range(n_seeds)]
        total = sum(runs)
        span = makespan(runs, args.jobs) / 60
        verdict = ("within" if span <= BUDGET_MINUTES[1] else "OVER") + f" the {BUDGET_MINUTES[0]:.0f}-{BUDGET_MINUTES[1]:.0f} min budget"
        print(f"projected from {what}: {len(runs)} runs, {total / 60:.1f} min of runs, "
              f"{span:.1f} min wall with --jobs {args.jobs} on {args.jobs} cores ({verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
