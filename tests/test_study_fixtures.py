"""Shared fixtures of the study tests (no tests here): a tiny registry and hand-made finished runs.

The tiny study is the worked example of the registry format: paper 002's recipe at smoke scale,
shrunk to the ``tiny`` SynthReID preset and a couple of batches per epoch, two variants and
two claims (one on a standard metric, one on a metric an analysis adds).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

#: Test-only overrides: tiny images and data, two batches per epoch (a run is a few CPU seconds).
TINY_OVERRIDES = {
    "data.synth_preset": "tiny", "input.height": 32, "input.width": 16, "model.width": 8,
    "sampler.p": 4, "sampler.k": 2, "loss.k": 4, "train.epochs": 2, "train.batches_per_epoch": 2,
    "eval.batch_size": 64, "eval.analyses": ["negatives_of_interest"],
}  # fmt: skip

TINY_REGISTRY = {
    "paper": "002",
    "study": {
        "chapter": "tiny_demo", "recipe": "support_neighbor", "dataset": "synthreid", "scale": "smoke", "seeds": 5,
        "overrides": TINY_OVERRIDES,
        "variants": {"batch_hard": {"loss.name": "batch_hard"}, "support_neighbor": {"loss.name": "support_neighbor"}},
    },
    "claims": [
        {"id": "sn_beats_bh_map", "claim": "The support neighbour loss beats batch-hard triplet on mAP.",
         "source": "Table 1", "paper": {"baseline": 69.14, "variant": 73.43, "metric": "mAP", "dataset": "Market-1501"},
         "test": {"baseline": "batch_hard", "variant": "support_neighbor", "metric": "mAP", "expected": "greater",
                  "rule": {"name": "ci95"}}},
        {"id": "sn_fewer_same_camera_errors", "claim": "Fewer top-10 false matches come from the probe's camera.",
         "source": "Fig. 1", "paper": None,
         "test": {"baseline": "batch_hard", "variant": "support_neighbor", "metric": "neg_interest_k10",
                  "expected": "less", "rule": {"name": "min_effect", "delta": 1.0}}},
    ],
}  # fmt: skip


def registry(**changes) -> dict:
    """A copy of :data:`TINY_REGISTRY`; ``changes`` replace top-level ``study`` keys."""
    reg = copy.deepcopy(TINY_REGISTRY)
    reg["study"].update(changes)
    return reg


def write_registry(path: Path, reg: dict | None = None) -> Path:
    path = Path(path)
    path.write_text(json.dumps(reg if reg is not None else TINY_REGISTRY, indent=1), encoding="utf-8")
    return path


def fake_run(out: Path, chapter: str, variant: str, seed: int, cfg: dict, metrics: dict, *, commit: str = "a" * 40,
             wall: float = 10.0, cpu: float = 9.0) -> Path:
    """A finished run's results.json as the trainer and runner write it (no training)."""
    run = Path(out) / chapter / variant / f"seed{seed}"
    run.mkdir(parents=True, exist_ok=True)
    results = {
        "recipe": cfg, "metrics": metrics, "seed": seed, "scale": cfg["scale"], "device": "cpu",
        "dataset": {"name": "synthreid", "root": "/tmp/x", "statistics": {}},
        "git": {"commit": commit, "dirty": False}, "versions": {"torch": "2.x"},
        "lock": {"file": "requirements-lock.txt", "sha256": "f" * 64, "packages": 1, "mismatches": []},
        "hardware": {"cpu": "test cpu", "cpu_cores": 2, "torch_threads": 1, "device": "cpu", "gpu": None},
        "study": {"chapter": chapter, "variant": variant, "wall_seconds": wall, "cpu_seconds": cpu, "resumed": False},
    }  # fmt: skip
    (run / "results.json").write_text(json.dumps(results), encoding="utf-8")
    (run / "log.jsonl").write_text('{"epoch": 1}\n', encoding="utf-8")
    return run
