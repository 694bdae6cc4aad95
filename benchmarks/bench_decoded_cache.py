"""Memory of the decoded-image cache with DataLoader workers: peak RSS and PSS of main + workers.

For 0, 2 and 4 workers it builds the training loader of a recipe exactly as the trainer does and
iterates it for ``--epochs`` epochs (no model: only the input pipeline), in a fresh process per
configuration, while this process samples ``/proc/<pid>/smaps_rollup`` of that process and its
workers every 0.1 s. Two caches are compared:

* ``shared`` (what the trainer does now): with workers, every training image is decoded once in
  the main process into a memory-mapped ``uint8`` file (:class:`reid.data.image_dataset.PackedImages`)
  that the workers map read-only; without workers, the in-process lazy cache;
* ``per_worker`` (before): each worker fills its own lazy :class:`~reid.data.image_dataset.DecodedCache`.

RSS counts a shared page once *per process* that touches it (what ``top`` adds up); PSS divides
each shared page among the processes mapping it, so the PSS sum is the memory really used.
Linux only (``/proc``). Market-sized SynthReID by default::

    python benchmarks/bench_decoded_cache.py                       # generates the market preset once (~1 CPU-min)
    python benchmarks/bench_decoded_cache.py --root DIR --epochs 2 # any Market-layout root
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _children(pid: int) -> list[int]:
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                out += [int(c) for c in fh.read().split()]
    except OSError:
        pass
    return out


FIELDS = {"Rss:": "rss", "Pss:": "pss", "Pss_Anon:": "pss_anon", "Pss_File:": "pss_file"}


def _rollup(pid: int) -> dict[str, int]:
    """Rss, Pss and its anonymous / file-backed parts of one process, in bytes (zeros once it is gone)."""
    out = dict.fromkeys(FIELDS.values(), 0)
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                key = line.split(maxsplit=1)[0]
                if key in FIELDS:
                    out[FIELDS[key]] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return out


def _watch(pid: int, peaks: dict, stop: threading.Event) -> None:
    while not stop.is_set():
        procs = [pid, *_children(pid)]
        sizes = [_rollup(p) for p in procs]
        for field in FIELDS.values():
            peaks[field] = max(peaks[field], sum(s[field] for s in sizes))
        peaks["processes"] = max(peaks["processes"], len(procs))
        time.sleep(0.1)


def child(args) -> None:
    """One configuration: build the loader like the trainer, iterate it, print timings as JSON."""
    import torch

    torch.set_num_threads(1)
    from reid.data.image_dataset import ImageDataset
    from reid.data.transforms import build_transforms
    from reid.engine.data import _loader, build_batch_sampler, build_train_loader, load_training_data
    from reid.recipes import load_recipe

    cfg = load_recipe(args.recipe, args.scale, {"runtime.num_workers": args.workers, "model.weights": None})
    data = load_training_data(cfg, "synthreid", args.root, progress=False)
    sampler = build_batch_sampler(cfg, data, seed=0)
    start = time.perf_counter()
    if args.mode == "shared":
        loader = build_train_loader(cfg, data, sampler, device=torch.device("cpu"), seed=0)
    else:  # the old behaviour: a lazy cache, filled separately by each worker
        inp = cfg["input"]
        transform = build_transforms(inp["height"], inp["width"], train=True, flip=inp["flip"],
                                     random_erasing=inp["random_erasing"])  # fmt: skip
        dataset = ImageDataset(data.dataset.train, transform, cache="memory")
        loader = _loader(dataset, device=torch.device("cpu"), workers=args.workers, seed=0, batch_sampler=sampler)
    build_s = time.perf_counter() - start
    cache = loader.dataset.cache
    start = time.perf_counter()
    batches = 0
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)
        for _ in loader:
            batches += 1
    print(json.dumps({
        "build_s": build_s, "iterate_s": time.perf_counter() - start, "batches": batches,
        "images": len(data.dataset.train), "cache": type(cache).__name__,
        "cache_bytes": cache.nbytes() if hasattr(cache, "nbytes") and args.workers > 0 and args.mode == "shared" else None,
        "input": [cfg["input"]["height"], cfg["input"]["width"]],
    }))  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default=None, help="Market-layout root (default: the cached SynthReID market preset)")
    p.add_argument("--recipe", default="joint_am_triplet", help="whose loader (input size, sampler) to build")
    p.add_argument("--scale", default="full")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2, 4])
    p.add_argument("--modes", nargs="+", default=["shared", "per_worker"], choices=["shared", "per_worker"])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--mode", default="shared", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        args.workers = args.workers[0]
        child(args)
        return 0
    if args.root is None:
        from reid.data import synthreid

        args.root = str(synthreid.ensure("market"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    rows = []
    for mode in args.modes:
        for workers in args.workers:
            if mode == "per_worker" and workers == 0:
                continue  # the same as shared with no workers: one in-process cache
            cmd = [sys.executable, __file__, "--child", "--mode", mode, "--workers", str(workers), "--root", args.root,
                   "--recipe", args.recipe, "--scale", args.scale, "--epochs", str(args.epochs)]  # fmt: skip
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
            peaks, stop = {**dict.fromkeys(FIELDS.values(), 0), "processes": 0}, threading.Event()
            watcher = threading.Thread(target=_watch, args=(proc.pid, peaks, stop), daemon=True)
            watcher.start()
            out, _ = proc.communicate()
            stop.set()
            watcher.join()
            if proc.returncode != 0:
                print(f"{mode} / {workers} workers failed (exit {proc.returncode})", file=sys.stderr)
                return 1
            result = json.loads(out.strip().splitlines()[-1])
            rows.append({"mode": mode, "workers": workers, **peaks, **result})
            print(f"  measured {mode:<10} {workers} workers", file=sys.stderr)
    first = rows[0]
    print(f"Decoded-image cache, {args.recipe} ({args.scale}) training loader: {first['images']} images at "
          f"{first['input'][0]}x{first['input'][1]}, {args.epochs} epochs, root {args.root}, CPU")  # fmt: skip
    print(f"{'cache':<11}{'workers':>8}{'peak RSS sum':>14}{'peak PSS sum':>14}{'(anon':>9}{'+ file)':>9}"
          f"{'cache file':>12}{'decode once':>13}{'iterate':>10}")  # fmt: skip
    gb = 2**30
    for r in rows:
        file_gb = f"{r['cache_bytes'] / gb:.2f} GB" if r["cache_bytes"] else "-"
        build = f"{r['build_s']:.1f} s" if r["build_s"] >= 0.05 else "-"
        print(f"{r['mode']:<11}{r['workers']:>8}{r['rss'] / gb:>11.2f} GB{r['pss'] / gb:>11.2f} GB"
              f"{r['pss_anon'] / gb:>9.2f}{r['pss_file'] / gb:>9.2f}{file_gb:>12}{build:>13}{r['iterate_s']:>8.1f} s")  # fmt: skip
    print("Peaks over main + workers, sampled every 0.1 s. RSS counts a page shared by several processes once "
          "per process; PSS shares it out (anon: heap, incl. per-worker caches; file: mapped files, incl. the "
          "packed cache). Times are wall clock on this machine.")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
