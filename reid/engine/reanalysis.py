"""Analyses of a *finished* run: ``reid analyse --run DIR --analysis NAME``.

A registered analysis (:mod:`reid.engine.analyses`) usually runs inside the trainer, at the end
of training (``eval.analyses``). Some are too costly to run in every study session (paper 002's
gallery-size curve at 500,000 distractors embeds half a million images per run), or are asked
for after the runs exist. :func:`analyse_run` runs one on a finished run without retraining:

1. it rebuilds the run's model and objective from ``results.json``'s recipe and loads the final
   weights of both from ``checkpoint.pt`` (the trainer's own resume check refuses a checkpoint of
   another recipe or seed);
2. it re-embeds the first :data:`CHECK_QUERIES` query images and compares them with the stored
   ``features.pt``: weights that do not reproduce the run's own features are refused, so an
   analysis can never describe a model other than the one the run evaluated;
3. it calls the analysis with the stored features, exactly as the trainer would, and writes
   ``<run>/analyses/<name>.json``: the metrics, which run they describe (its commit, seed and
   recipe hash) and the provenance of the analysis itself (commit, lock hash, hardware, time).

``results.json`` is never modified: the analysis has its own file and its own provenance, and
:func:`run_metrics` merges the two when a study reads the run (as ``<analysis>.<metric>``). An existing analysis file is
kept unless ``overwrite`` is passed.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from reid.errors import ConfigError, ReidError

__all__ = ["ANALYSES_DIR", "CHECK_QUERIES", "analysis_path", "analyse_run", "read_analyses", "run_metrics",
           "recipe_hash", "describe"]

ANALYSES_DIR = "analyses"
#: Query images re-embedded to confirm the loaded weights are the run's (a few CPU seconds).
CHECK_QUERIES = 64
#: Largest difference tolerated between re-embedded and stored features (float32 arithmetic on
#: another batch size reorders sums; a different model differs by orders of magnitude more).
FEATURE_TOLERANCE = 1e-4


def analysis_path(run_dir: str | Path, name: str) -> Path:
    """``<run>/analyses/<name>.json``."""
    return Path(run_dir) / ANALYSES_DIR / f"{name}.json"


def recipe_hash(cfg: dict) -> str:
    """A short hash of a resolved recipe, minus speed-only options (:func:`reid.recipes.comparable`)."""
    from reid.recipes import comparable

    text = json.dumps(comparable(cfg), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _run_identity(results: dict) -> dict:
    """What an analysis file says about the run it describes (checked again when it is read)."""
    return {"commit": results.get("git", {}).get("commit"), "seed": results.get("seed"),
            "recipe_sha": recipe_hash(results.get("recipe", {}))}


def _read_results(run: Path) -> dict:
    path = run / "results.json"
    if not path.is_file():
        raise ConfigError(f"{run} holds no finished run (no results.json): train it first (`reid train --out {run}`).")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}); the run cannot be analysed.") from None


def read_analyses(run_dir: str | Path) -> dict[str, dict]:
    """Every analysis file of a run: ``{name: record}`` (empty when there is none)."""
    folder = Path(run_dir) / ANALYSES_DIR
    out = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            out[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path} is not valid JSON ({exc}); rerun `reid analyse --run {run_dir} "
                              f"--analysis {path.stem} --overwrite`.") from None
    return out


def run_metrics(run_dir: str | Path, results: dict, names: list[str] | tuple[str, ...]) -> dict[str, float]:
    """``results["metrics"]`` plus the metrics of the analysis files ``names`` of the run, each
    named ``<analysis>.<metric>`` (``distractor_curve.gallery_mAP@500000``): the name says which
    file a number comes from, and a post-hoc metric never shadows one written at training time.

    Refuses an analysis file written for another training of this folder (commit, seed or recipe
    differ from ``results.json``).
    """
    metrics = dict(results.get("metrics", {}))
    records = read_analyses(run_dir)
    identity = _run_identity(results)
    for name in names:
        record = records.get(name)
        if record is None:
            raise ConfigError(f"{run_dir} has no {ANALYSES_DIR}/{name}.json: run `reid analyse --run {run_dir} "
                              f"--analysis {name}` (or `reid study`, which runs the registered ones).")
        if record.get("run") != identity:
            raise ConfigError(f"{analysis_path(run_dir, name)} describes another training of this folder "
                              f"({record.get('run')} != {identity}); rerun the analysis with --overwrite.")
        metrics.update({f"{name}.{key}": value for key, value in record["metrics"].items()})
    return metrics


def _load_trained(run: Path, results: dict, *, root, device: str, progress: bool):
    """The run's data, and a trainer holding its final model and objective (from checkpoint.pt)."""
    from reid.engine import checkpoint as ckpt
    from reid.engine.data import load_training_data
    from reid.engine.trainer import Trainer

    cfg, seed = results["recipe"], int(results["seed"])
    dataset = results.get("dataset", {}).get("name", "synthreid")
    recorded = results.get("dataset", {}).get("root")
    if root is None and dataset != "synthreid":
        root = recorded
    data = load_training_data(cfg, dataset, root, progress=progress)
    if dataset == "synthreid" and root is None and recorded and Path(recorded).name != data.root.name:
        raise ConfigError(
            f"{run} was trained on SynthReID {Path(recorded).name}, but this code generates {data.root.name} "
            "(the generator or its parameters changed since): retrain the run, or pass --root to that dataset."
        )
    checkpoint = run / ckpt.CHECKPOINT_NAME
    if not checkpoint.is_file():
        raise ConfigError(f"{run} has no {ckpt.CHECKPOINT_NAME} (the final weights of the model and the loss): "
                          "an analysis needs them; retrain the run.")
    trainer = Trainer(cfg, data, run, device=device, seed=seed, progress=False)
    trainer.load_state(ckpt.load_checkpoint(checkpoint))
    trainer.model.eval()
    return data, trainer


def _check_weights(run: Path, trainer, data, features: dict) -> float:
    """Largest |difference| between re-embedded and stored query features; refuses a mismatch."""
    from reid.engine.data import build_eval_loader
    from reid.engine.evaluation import extract_features

    records = data.dataset.query[:CHECK_QUERIES]
    if [str(r.path) for r in records] != list(features["query_paths"][:len(records)]):
        raise ConfigError(f"{run}/features.pt lists other query images than the dataset now gives: the data changed "
                          "since the run was trained; retrain it.")
    asym = getattr(trainer.model, "asymmetric", False)
    loader = build_eval_loader(trainer.cfg, records, device=trainer.device)
    fresh = extract_features(trainer.model, loader, device=trainer.device, view=0 if asym else None,
                             feature=trainer.objective.eval_feature)
    gap = float((fresh - features["query"][:len(records)]).abs().max())
    if not gap <= FEATURE_TOLERANCE:
        raise ReidError(f"{run}: the weights in checkpoint.pt do not reproduce features.pt (largest difference "
                        f"{gap:.2e} > {FEATURE_TOLERANCE:g}); the folder was changed after training. Retrain the run.")
    return gap


def analyse_run(run_dir: str | Path, names: list[str], *, root: str | Path | None = None, device: str = "cpu",
                overwrite: bool = False, progress: bool = True) -> dict[str, Path]:
    """Run the analyses ``names`` on the finished run ``run_dir``; returns ``{name: file}``.

    Names whose file exists are skipped unless ``overwrite`` (the returned path is then the
    existing file). ``root``: the dataset folder, for a run of a real dataset that moved.
    """
    import resource

    from reid.engine.analyses import check_analyses, run_analyses
    from reid.engine.checkpoint import read_torch_file
    from reid.engine.provenance import environment_lock, git_commit, hardware, library_versions, write_json

    check_analyses(list(names))
    run = Path(run_dir)
    results = _read_results(run)
    during = [n for n in names if n in results.get("recipe", {}).get("eval", {}).get("analyses", [])]
    if during:
        raise ConfigError(f"{run} already ran {during[0]!r} during training (results.json has its metrics); "
                          "nothing to add.")
    todo = [n for n in names if overwrite or not analysis_path(run, n).is_file()]
    out = {n: analysis_path(run, n) for n in names}
    if not todo:
        return out
    cpu0 = sum(getattr(resource.getrusage(resource.RUSAGE_SELF), f) for f in ("ru_utime", "ru_stime"))
    wall0 = time.perf_counter()
    data, trainer = _load_trained(run, results, root=root, device=device, progress=progress)
    features = read_torch_file(run / "features.pt", "feature file", "retrain the run")
    gap = _check_weights(run, trainer, data, features)
    provenance = {"git": git_commit(), "lock": environment_lock(), "versions": library_versions(),
                  "hardware": hardware(device)}
    for name in todo:
        start = time.perf_counter()
        metrics = run_analyses([name], model=trainer.model, objective=trainer.objective, data=data,
                               features=features, cfg=trainer.cfg)
        cpu = sum(getattr(resource.getrusage(resource.RUSAGE_SELF), f) for f in ("ru_utime", "ru_stime")) - cpu0
        record = {
            "analysis": name, "metrics": metrics, "run": _run_identity(results), "weights_check_max_diff": gap,
            "seconds": round(time.perf_counter() - start, 3), "cpu_seconds_with_loading": round(cpu, 3),
            "wall_seconds_with_loading": round(time.perf_counter() - wall0, 3),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), **provenance,
        }  # fmt: skip
        out[name].parent.mkdir(exist_ok=True)
        write_json(record, out[name])
    return out


def describe(record: dict) -> dict[str, Any]:
    """The provenance summary of an analysis file (for evidence documents)."""
    return {"commit": record.get("git", {}).get("commit"), "dirty": record.get("git", {}).get("dirty"),
            "lock": record.get("lock", {}).get("sha256"), "cpu_seconds": record.get("cpu_seconds_with_loading"),
            "wall_seconds": record.get("wall_seconds_with_loading")}
