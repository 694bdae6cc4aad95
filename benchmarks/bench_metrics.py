"""Speed of ``reid.metrics.rank_metrics`` on a Market-1501-sized evaluation.

Prints the time of the fast path (target: <= 0.5 s on a 2-core CPU), of a full ``argsort`` of
the distance matrix (what the usual evaluators start with) and of the per-query reference loop,
and checks that the fast path and the reference agree exactly for both AP definitions.

    python benchmarks/bench_metrics.py            # Market-1501 size, with the reference check
    python benchmarks/bench_metrics.py --quick    # smaller, for a smoke run

The labels mimic Market-1501's test split after its junk (pid -1) images are dropped:
3,368 queries of 750 identities, 15,913 gallery images = 13,115 of those identities plus 2,798
distractors (pid 0), 6 cameras. Features are random (the worst case for the fast path: the true
matches are spread over the whole ranking).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from reid.metrics import pairwise_distance, rank_metrics
from reid.metrics.ranking import rank_metrics_reference


def market_like_labels(num_query=3368, num_gallery=15913, num_ids=750, num_distractors=2798,
                       num_cams=6, seed=0):
    rng = np.random.default_rng(seed)
    ids = np.arange(1, num_ids + 1)
    num_real = num_gallery - num_distractors
    g_pids = np.concatenate([np.repeat(ids, num_real // num_ids), rng.choice(ids, num_real % num_ids)])
    g_pids = np.concatenate([g_pids, np.zeros(num_distractors, np.int64)])
    g_cams = rng.integers(0, num_cams, num_gallery)
    q_pids = np.concatenate([ids, rng.choice(ids, num_query - num_ids)])
    q_cams = rng.integers(0, num_cams, num_query)
    perm = rng.permutation(num_gallery)
    return q_pids, g_pids[perm], q_cams, g_cams[perm]


def timed(fn, repeats):
    """Wall-clock seconds per call (the figure that matters) and process CPU seconds, which
    stay meaningful when other jobs share the machine."""
    times, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    timed.cpu = cpu
    return out, times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 10x smaller problem")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--no-reference", action="store_true", help="skip the slow reference loop")
    args = parser.parse_args(argv)

    scale = 10 if args.quick else 1
    q_pids, g_pids, q_cams, g_cams = market_like_labels(
        3368 // scale, 15913 // scale, 750 // scale, 2798 // scale)
    gen = torch.Generator().manual_seed(0)
    qf = torch.randn(len(q_pids), args.dim, generator=gen)
    gf = torch.randn(len(g_pids), args.dim, generator=gen)
    t0 = time.perf_counter()
    dist = pairwise_distance(qf, gf, "euclidean")
    t_dist = time.perf_counter() - t0
    print(f"problem: {dist.shape[0]} queries x {dist.shape[1]} gallery, "
          f"{len(np.unique(g_pids))} ids (incl. distractor pid 0), 6 cameras, "
          f"torch threads={torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")
    print(f"pairwise_distance (dim {args.dim}):           {t_dist:7.3f} s")

    for ap in ("step", "trapezoid"):
        res, times = timed(lambda: rank_metrics(dist, q_pids, g_pids, q_cams, g_cams, ap=ap),
                           args.repeats)
        print(f"rank_metrics(ap={ap!r:11s}) best {min(times):.3f} s, median "
              f"{statistics.median(times):.3f} s (CPU {min(timed.cpu):.3f} s)  -> {res}")

    _, times = timed(lambda: torch.argsort(dist, dim=1), 1)
    print(f"torch.argsort of the whole matrix:         {times[0]:7.3f} s (for scale)")

    if not args.no_reference:
        for ap in ("step", "trapezoid"):
            fast = rank_metrics(dist, q_pids, g_pids, q_cams, g_cams, ap=ap)
            ref, times = timed(lambda: rank_metrics_reference(dist, q_pids, g_pids, q_cams, g_cams,
                                                              ap=ap), 1)
            same = (np.array_equal(fast.cmc, ref.cmc) and abs(fast.mAP - ref.mAP) < 1e-12
                    and abs(fast.mINP - ref.mINP) < 1e-12
                    and np.allclose(fast.ap, ref.ap, equal_nan=True, rtol=0, atol=1e-12))
            print(f"reference loop (argsort per query, {ap}): {times[0]:7.3f} s; "
                  f"fast == reference: {same}")
            if not same:
                print("MISMATCH", fast, ref)
                return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
