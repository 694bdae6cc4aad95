"""Time and peak memory of k-reciprocal re-ranking at Market-1501 size.

    python benchmarks/bench_rerank.py               # 3,368 queries + 15,913 gallery, dim 2048
    python benchmarks/bench_rerank.py --quick       # 10x smaller
    python benchmarks/bench_rerank.py --device cuda # distance blocks on a GPU

Features are synthetic but clustered (750 identities with Gaussian noise around their centres,
2,798 distractors that are one-image identities) so that the k-reciprocal neighbourhoods have a realistic size; purely random
features would make them nearly empty and the benchmark too easy. Peak memory is the process's
maximum resident set size (``resource.getrusage``), which includes Python, torch and the inputs.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

import numpy as np
import torch

from reid.metrics import pairwise_distance, rank_metrics
from reid.metrics.rerank import k_reciprocal_rerank

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from bench_metrics import market_like_labels  # noqa: E402


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--noise", type=float, default=3.0, help="within-identity noise / centre scale")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    scale = 10 if args.quick else 1
    q_pids, g_pids, q_cams, g_cams = market_like_labels(
        3368 // scale, 15913 // scale, 750 // scale, 2798 // scale)
    gen = torch.Generator().manual_seed(0)
    centres = torch.randn(int(max(q_pids.max(), g_pids.max())) + 1, args.dim, generator=gen)
    def feats(pids):
        centre = centres[torch.from_numpy(pids)]
        # every distractor (pid 0) is a one-image identity of its own
        centre[torch.from_numpy(pids == 0)] = torch.randn(int((pids == 0).sum()), args.dim, generator=gen)
        return centre + args.noise * torch.randn(len(pids), args.dim, generator=gen)
    qf, gf = feats(q_pids).to(args.device), feats(g_pids).to(args.device)
    base_rss = peak_rss_gb()
    print(f"problem: {len(qf)} queries + {len(gf)} gallery = {len(qf) + len(gf)} images, dim {args.dim}, "
          f"device {args.device}, torch threads={torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"peak RSS before re-ranking (inputs, libraries): {base_rss:.2f} GB")

    before = rank_metrics(pairwise_distance(qf, gf), q_pids, g_pids, q_cams, g_cams)
    t0, c0 = time.perf_counter(), time.process_time()
    dist = k_reciprocal_rerank(qf, gf, k1=20, k2=6, lambda_value=0.3)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    after = rank_metrics(dist, q_pids, g_pids, q_cams, g_cams)
    print(f"k_reciprocal_rerank(k1=20, k2=6, lambda=0.3): {elapsed:.1f} s wall, {cpu:.1f} s CPU, "
          f"peak RSS {peak_rss_gb():.2f} GB (targets: < 60 s, < 8 GB)")
    print(f"before: {before}")
    print(f"after:  {after}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
