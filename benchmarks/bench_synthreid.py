"""SynthReID generation speed, and the calibration of its default difficulty.

Usage::

    python benchmarks/bench_synthreid.py                 # smoke preset: time and images/s
    python benchmarks/bench_synthreid.py --market        # also the Market-1501-sized preset
    python benchmarks/bench_synthreid.py --baseline      # pixel nearest-neighbour accuracy
                                                         #   at difficulty 0, 0.5 (default), 1

Speed is single-process (the generator uses no parallelism). Measured on the project's
2-core CPU machine while it was shared with other jobs (load average ~8), SynthReID 1.0.0,
seed 0; ``cpu`` is this process's CPU time, which is what an idle machine's wall time
approaches:

    preset   images written   wall time   cpu time   images/s (wall)
    smoke          2,550         11.3 s      4.0 s        226
    market        41,276        182.3 s     60.9 s        226

(``images written`` counts every file: train, test with distractors and junk, gt_bbox,
the query copies and the two-view variant; the market preset's train + test folders hold
about 30.6k boxes (expected value) against Market-1501's 32,668.)

Calibration ("far from perfect, well above chance"). Baseline: each image downsampled to
32x16 RGB pixels, centred, L2-normalised; Euclidean nearest neighbours, query ->
bounding_box_test under the Market-1501 rule (``reid.metrics.rank_metrics``: same identity
and camera removed, junk ignored, distractors kept). Smoke preset, seed 0 (50 test
identities, 198 queries; chance rank-1 ~ 1/50 = 2 %):

    difficulty   rank-1   mAP    wrong top-1 from the query's own camera
    0.0          73.7 %   46.3 %   80 %
    0.5          33.8 %   19.4 %   87 %     <- default
    1.0           6.1 %    4.7 %   95 %

The last column is paper 000's viewpoint problem (Fig. 1): with 6 cameras, a wrong
nearest neighbour would come from the query's camera 1 in 6 times (17 %) if cameras did
not matter. A colour-histogram baseline (8 horizontal stripes x 64 or 512 RGB bins,
Hellinger) stays at or below chance (0-1 % rank-1 at difficulty 0 and 0.5, measured once
with a throw-away script, not part of this file): the camera's scene and cast dominate
global colour statistics, which is exactly what a learned model has to see past.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from reid.data import synthreid

_NAME = re.compile(r"(-?\d+)_c(\d)s\d_\d+_\d+\.jpg")


def bench(preset: str, workdir: Path, seed: int = 0) -> Path:
    start, cpu = time.perf_counter(), time.process_time()
    root = synthreid.generate(workdir / preset, seed=seed, progress=False, **synthreid.PRESETS[preset])
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    count = sum(1 for p in root.rglob("*") if p.suffix in (".jpg", ".bmp"))
    print(f"{preset:<7} {count:>7,} images  wall {elapsed:6.1f} s  cpu {cpu:6.1f} s  "
          f"{count / elapsed:5.0f} images/s")
    return root


def _pixels(folder: Path):
    from PIL import Image

    paths = sorted(folder.glob("*.jpg"))
    labels = np.array([[int(g) for g in _NAME.fullmatch(p.name).groups()] for p in paths])
    images = np.stack([np.asarray(Image.open(p), dtype=np.float32) / 255 for p in paths])
    n, h, w, _ = images.shape
    x = images.reshape(n, 32, h // 32, 16, w // 16, 3).mean(axis=(2, 4)).reshape(n, -1)
    x -= x.mean(axis=1, keepdims=True)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, labels[:, 0], labels[:, 1] - 1


def pixel_baseline(root: Path) -> dict[str, float]:
    """Rank-1 / mAP of raw-pixel nearest neighbours, and how often the nearest *wrong*
    gallery image comes from the query's own camera."""
    from reid.metrics import rank_metrics

    q, qp, qc = _pixels(root / "query")
    g, gp, gc = _pixels(root / "bounding_box_test")
    dist = np.maximum(2.0 - 2.0 * q @ g.T, 0.0)
    metrics = rank_metrics(dist, qp, gp, qc, gc)
    wrong = (gp[None] != qp[:, None]) & (gp[None] != -1)
    nearest_wrong = np.where(wrong, dist, np.inf).argmin(axis=1)
    return {"rank1": float(metrics.cmc[0]), "mAP": float(metrics.mAP),
            "own_camera": float((gc[nearest_wrong] == qc).mean()), "chance": 1.0 / len(set(qp))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--market", action="store_true", help="also time the Market-1501-sized preset")
    parser.add_argument("--baseline", action="store_true", help="pixel-NN accuracy at difficulty 0, 0.5, 1")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(f"SynthReID {synthreid.VERSION}: generation speed")
        bench("smoke", work)
        if args.market:
            bench("market", work)
        if args.baseline:
            print("\npixel nearest-neighbour baseline, smoke preset, seed 0")
            print("difficulty  rank-1    mAP   wrong top-1 from own camera   chance rank-1")
            for difficulty in (0.0, 0.5, 1.0):
                root = synthreid.generate(work / f"d{difficulty}", seed=0, difficulty=difficulty, progress=False,
                                          **synthreid.PRESETS["smoke"])
                r = pixel_baseline(root)
                print(f"{difficulty:>10.1f}  {100 * r['rank1']:5.1f} %  {100 * r['mAP']:5.1f} %"
                      f"  {100 * r['own_camera']:14.0f} %  {100 * r['chance']:14.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
