"""Training images/s with 1 and 2 CPU processes (torch.distributed, gloo), same global batch.

Runs ``reid train`` on the support-neighbour smoke recipe (small ResNet, 64x32, P x K = 8 x 4)
on the ``tiny`` SynthReID preset, once in one process and once under ``--nproc 2``, and prints
the ``train_images_per_second`` each run records in ``results.json`` (global images: both ranks),
with the load average of the machine. The point on a 2-core machine is correctness, not speed:
two processes share the same two cores with gloo's all-gathers and all-reduces on top.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_ddp.py [--iterations 40]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(nproc: int, iterations: int, out: Path) -> dict:
    cmd = [sys.executable, "-m", "reid", "train", "--recipe", "support_neighbor", "--scale", "smoke",
           "--set", "data.synth_preset=tiny", "--max-iterations", str(iterations),
           "--no-progress", "--out", str(out), "--nproc", str(nproc)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
    return json.loads((out / "results.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=40)
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        for nproc in (1, 2):
            r = run(nproc, args.iterations, Path(tmp) / f"n{nproc}")
            t = r["timings"]
            print(f"processes {nproc}: world_size {r['world_size']} backend {r['backend']}  "
                  f"{t['train_images_per_second']} images/s  train {t['train_seconds_this_session']} s  "
                  f"({r['iterations']} iterations of 32 images)")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
