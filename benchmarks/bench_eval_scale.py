"""Exact ranking metrics against up to 500,000 distractors: time and peak memory per gallery size.

    python benchmarks/bench_eval_scale.py                  # sweep 16k .. 516k, 2 threads
    python benchmarks/bench_eval_scale.py --sizes 515913   # only the Market + 500k point
    python benchmarks/bench_eval_scale.py --check          # also: streaming == dense, bit for bit
    python benchmarks/bench_eval_scale.py --curve          # also: gallery_size_curve to 500k, one pass
    python benchmarks/bench_eval_scale.py --faiss          # also: CMC@50 through faiss vs torch
    python benchmarks/bench_eval_scale.py --quick          # 10x fewer queries and columns

The problem is Market-1501's test split plus its 500k distractor set (paper 002, Fig. 4): 3,368
queries and a 15,913-image gallery with Market's labels (``bench_metrics.market_like_labels``:
750 identities, 2,798 pid-0 distractors, 6 cameras), 256-d features, and N extra distractors
appended through ``rank_metrics_features(..., distractor_features=...)``. Features are synthetic
with planted structure (``planted_features``): Gaussian identity centres, per-image noise of
varying scale, distractors that are one-image identities, a fifth of them look-alikes of a test
identity. At Market size this gives about 84 % mAP and 36 % mINP with a long tail of hard true
matches: on average about 800 negatives per query rank before its hardest true match at 16k, and
far more at 516k, which is the work the streaming evaluator cannot skip (it visits each of them).

Each gallery size runs in a fresh subprocess, so the peak RSS printed (``getrusage`` maxrss of
that process: Python, torch, the features themselves and the evaluation) is per size. Times are
wall clock and process CPU time (user + system of all threads) of the evaluation alone; the
feature generation is excluded from the times but included in the RSS. The load average is
printed with every row, as the machine may be shared. Targets (issue 14): 3,368 x 515,913 in
<= 60 s and <= 2 GB on 2 CPU cores, flat memory as the gallery grows.

``--curve`` runs ``gallery_size_curve`` (paper 002, Fig. 4) with 0, 50k, 100k, 200k and 500k
added distractors in one subprocess and one streaming pass. ``--faiss`` times ``topk_cmc(k=50)``
(the truncated CMC, no mAP) with ``backend="faiss"`` and ``"torch"`` at the largest size.

``--check`` reruns the sizes up to 100k in further subprocesses that also build the dense matrix
(``pairwise_distance`` + ``rank_metrics``, several GB at 100k) and compare every field of the two
results for both AP definitions.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import torch

from reid.metrics import gallery_size_curve, match_ranks_features, pairwise_distance, rank_metrics, topk_cmc

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from bench_metrics import market_like_labels  # noqa: E402

MARKET = dict(num_query=3368, num_gallery=15913, num_ids=750, num_distractors=2798)
DEFAULT_SIZES = (15913, 50_000, 100_000, 200_000, 515_913)


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def planted_features(pids: np.ndarray, centres: torch.Tensor, gen: torch.Generator,
                     chunk: int = 16384) -> torch.Tensor:
    """``centre + s * noise`` per image, ``s ~ U(0.4, 1.0)``. Identity ``p > 0`` uses
    ``centres[p]``; each pid-0 image (a distractor) is a one-image identity whose centre is drawn
    like the others' (scale ``U(0.5, 1)``) or, one time in five, is a look-alike: a random
    identity's centre plus ``0.9 * noise``. Written chunk by chunk into one preallocated tensor."""
    dim = centres.shape[1]
    out = torch.empty(len(pids), dim)
    for start in range(0, len(pids), chunk):
        p = torch.from_numpy(pids[start : start + chunk])
        centre = centres[p]
        lonely = p == 0
        n = int(lonely.sum())
        own = torch.randn(n, dim, generator=gen) * (0.5 + 0.5 * torch.rand(n, 1, generator=gen))
        alike = centres[torch.randint(1, len(centres), (n,), generator=gen)] + 0.9 * torch.randn(n, dim, generator=gen)
        centre[lonely] = torch.where(torch.rand(n, 1, generator=gen) < 0.2, alike, own)
        scale = 0.4 + 0.6 * torch.rand(len(p), 1, generator=gen)
        out[start : start + chunk] = centre + scale * torch.randn(len(p), dim, generator=gen)
    return out


def make_problem(gallery_size: int, dim: int, scale: int, seed: int = 0):
    sizes = {k: v // scale for k, v in MARKET.items()}
    q_pids, g_pids, q_cams, g_cams = market_like_labels(**sizes, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(sizes["num_ids"] + 1, dim, generator=gen)
    centres *= 0.5 + 0.5 * torch.rand(len(centres), 1, generator=gen)
    qf = planted_features(q_pids, centres, gen)
    gf = planted_features(g_pids, centres, gen)
    num_extra = max(0, gallery_size - len(g_pids))
    extra = planted_features(np.zeros(num_extra, np.int64), centres, gen) if num_extra else None
    return qf, gf, extra, q_pids, g_pids, q_cams, g_cams


def run_curve(args) -> dict:
    """gallery_size_curve with up to the largest size's distractors, in this process."""
    torch.set_num_threads(args.threads)
    qf, gf, extra, q_pids, g_pids, q_cams, g_cams = make_problem(args.one, args.dim, args.scale)
    steps = sorted({0, *(min(n // args.scale, len(extra)) for n in (50_000, 100_000, 200_000, 500_000))})
    t0, c0 = time.perf_counter(), time.process_time()
    curve = gallery_size_curve(qf, gf, extra, q_pids, g_pids, q_cams, g_cams, num_distractors=steps)
    return {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
            "peak_rss_gb": peak_rss_gb(), "load": os.getloadavg()[0], "curve": curve}


def run_faiss(args) -> dict:
    """topk_cmc(k=50) with both backends on the same problem, in this process."""
    torch.set_num_threads(args.threads)
    import faiss

    faiss.omp_set_num_threads(args.threads)
    qf, gf, extra, q_pids, g_pids, q_cams, g_cams = make_problem(args.one, args.dim, args.scale)
    gallery = torch.cat([gf, extra])
    labels = (q_pids, np.concatenate([g_pids, np.zeros(len(extra), np.int64)]), q_cams,
              np.concatenate([g_cams, np.full(len(extra), -1)]))
    del extra
    out = {}
    for backend in ("faiss", "torch"):
        t0, c0 = time.perf_counter(), time.process_time()
        res = topk_cmc(qf, gallery, *labels, k=50, backend=backend)
        out[backend] = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                        "cmc_at_50": res.cmc_at_k.tolist()}
    out["same"] = out["faiss"]["cmc_at_50"] == out["torch"]["cmc_at_50"]
    out["load"] = os.getloadavg()[0]
    return out


def run_one(args) -> dict:
    """One gallery size, in this process: the streaming evaluation (and the dense one with --check)."""
    torch.set_num_threads(args.threads)
    qf, gf, extra, q_pids, g_pids, q_cams, g_cams = make_problem(args.one, args.dim, args.scale)
    labels = (q_pids, g_pids, q_cams, g_cams)
    rss_inputs = peak_rss_gb()
    t0, c0 = time.perf_counter(), time.process_time()
    ranks = match_ranks_features(qf, gf, *labels, distractor_features=extra)
    step, trap = ranks.metrics(ap="step"), ranks.metrics(ap="trapezoid")
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    row = {"gallery": len(gf) + (0 if extra is None else len(extra)), "queries": len(qf),
           "distractors_added": 0 if extra is None else len(extra), "wall_s": wall, "cpu_s": cpu,
           "peak_rss_gb": peak_rss_gb(), "rss_inputs_gb": rss_inputs, "rank1": step.rank1,
           "mAP": step.mAP, "mAP_trapezoid": trap.mAP, "mINP": step.mINP,
           "threads": torch.get_num_threads(), "load": os.getloadavg()[0]}
    if args.dense:
        gallery = gf if extra is None else torch.cat([gf, extra])
        all_g = np.concatenate([g_pids, np.zeros(len(gallery) - len(gf), np.int64)])
        all_c = np.concatenate([g_cams, np.full(len(gallery) - len(gf), -1)])
        dist = torch.cat([pairwise_distance(qf, gf), pairwise_distance(qf, extra)], 1) if extra is not None \
            else pairwise_distance(qf, gf)
        same = True
        for streamed, ap in ((step, "step"), (trap, "trapezoid")):
            dense = rank_metrics(dist, q_pids, all_g, q_cams, all_c, ap=ap)
            same &= bool(np.array_equal(dense.cmc, streamed.cmc) and dense.mAP == streamed.mAP
                         and dense.mINP == streamed.mINP and dense.num_valid == streamed.num_valid
                         and np.array_equal(dense.ap, streamed.ap, equal_nan=True)
                         and np.array_equal(dense.first_match, streamed.first_match))
        row["dense_equal"] = same
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES),
                        help="total gallery sizes (base gallery + added distractors)")
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the machine has 2 cores)")
    parser.add_argument("--quick", action="store_true", help="10x fewer queries and gallery items")
    parser.add_argument("--check", action="store_true", help="compare with the dense path (sizes <= 100k)")
    parser.add_argument("--curve", action="store_true", help="gallery_size_curve up to 500k distractors")
    parser.add_argument("--faiss", action="store_true", help="CMC@50: faiss vs torch at the largest size")
    parser.add_argument("--mode", default="one", help=argparse.SUPPRESS)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dense", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--scale", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None:
        run = {"one": run_one, "curve": run_curve, "faiss": run_faiss}[args.mode]
        print(json.dumps(run(args)))
        return 0

    scale = 10 if args.quick else 1
    sizes = [s // scale for s in args.sizes]

    def child(size: int, dense: bool = False, mode: str = "one") -> dict:
        cmd = [sys.executable, __file__, "--one", str(size), "--dim", str(args.dim), "--mode", mode,
               "--threads", str(args.threads), "--scale", str(scale)] + (["--dense"] if dense else [])
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    print(f"streaming exact evaluation, {MARKET['num_query'] // scale} queries, dim {args.dim}, "
          f"{args.threads} torch threads, {os.cpu_count()} CPUs; one subprocess per size "
          "(synthetic planted features, Market-1501 labels)")
    header = (f"{'gallery':>8} {'added':>8} {'wall s':>7} {'CPU s':>7} {'peak RSS GB':>11} "
              f"{'inputs GB':>9} {'load':>5} {'R1 %':>6} {'mAP %':>6} {'mAP trap %':>10} {'mINP %':>6}")
    print(header)
    rows = []
    for size in sizes:
        r = child(size)
        rows.append(r)
        print(f"{r['gallery']:>8} {r['distractors_added']:>8} {r['wall_s']:>7.1f} {r['cpu_s']:>7.1f} "
              f"{r['peak_rss_gb']:>11.2f} {r['rss_inputs_gb']:>9.2f} {r['load']:>5.1f} "
              f"{100 * r['rank1']:>6.2f} {100 * r['mAP']:>6.2f} {100 * r['mAP_trapezoid']:>10.2f} "
              f"{100 * r['mINP']:>6.2f}", flush=True)
    status = 0
    if args.curve:
        r = child(max(sizes), mode="curve")
        print(f"gallery_size_curve, one pass, {len(r['curve'])} sizes up to {max(sizes)}: "
              f"{r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU, peak RSS {r['peak_rss_gb']:.2f} GB, "
              f"load {r['load']:.1f}")
        for c in r["curve"]:
            print(f"  +{c['num_distractors']:>7} distractors (gallery {c['gallery_size']:>7}): "
                  f"R1 {100 * c['rank1']:6.2f} %  mAP {100 * c['mAP']:6.2f} %  mINP {100 * c['mINP']:6.2f} %")
    if args.faiss:
        r = child(max(sizes), mode="faiss")
        for backend in ("faiss", "torch"):
            print(f"topk_cmc(k=50, backend={backend!r}) at gallery {max(sizes)}: {r[backend]['wall_s']:.1f} s "
                  f"wall, {r[backend]['cpu_s']:.1f} s CPU")
        print(f"  same CMC@50 from both backends: {r['same']} (load {r['load']:.1f})")
    if args.check:
        for size in [s for s in sizes if s <= 100_000 // scale]:
            r = child(size, True)
            print(f"gallery {r['gallery']}: streaming == dense (rank_metrics on pairwise_distance), "
                  f"every field, both AP definitions: {r['dense_equal']}")
            status |= 0 if r["dense_equal"] else 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())
