"""``reid study <chapter>``: every registered variant × seed, trained, then aggregated into evidence.

:func:`run_study` loads the chapter's registry (:mod:`reid.study.registry`), plans one run per
(variant, seed) in ``<out>/<chapter>/<variant>/seed<k>/``, trains the runs that are not finished
through :func:`reid.engine.train` in ``jobs`` worker processes (spawned, one thread each:
``OMP_NUM_THREADS=1``, ``torch.set_num_threads(1)``, so each run is bit-identical to a
single-process run of the same seed), and writes ``<out>/<chapter>.json``
(:mod:`reid.study.evidence`).

Resumable, and never destructive:

* a run whose ``results.json`` holds the recipe the registry resolves to now (and the same seed
  and dataset) is **finished**: kept and skipped;
* a run with a ``checkpoint.pt`` but no ``results.json`` was **interrupted**: it is resumed from
  its last epoch (same weights as an uninterrupted run);
* a finished run of a *different* recipe is **stale**: the runner refuses to start and names
  it with the differing keys; it never deletes a finished run (move it away yourself).

Evidence is tied to a commit: the runner refuses a repository with uncommitted changes to
tracked files (changes under the output directory do not count) unless ``allow_dirty=True``,
and records the commit. Each session that trains something appends one line (commit, start,
wall time, runs, jobs; also when interrupted) to ``<out>/<chapter>/sessions.jsonl``; the study's
wall time is their sum.
Each run's own wall and CPU time (of the session that finished it) is added to its
``results.json`` under ``"study"``.

Analyses registered under ``study.posthoc`` run after training, on every finished run of their
variants that lacks ``<run>/analyses/<name>.json`` (:mod:`reid.engine.reanalysis`), in the same
worker processes and under the same clean-tree rule; their inputs (paper 002's distractor
images) are prepared once, before the workers start.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from reid.errors import ConfigError, NonFiniteError, ReidError
from reid.study.evidence import DIVERGED, SESSIONS, aggregate, comparable_recipe, recipe_difference, run_dir, write_evidence
from reid.study.registry import Study, load_study

__all__ = ["RunSpec", "plan", "run_study", "execute_run", "train_runs", "git_state", "REPO"]

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class RunSpec:
    """One (variant, seed) run of a study and what to do with it."""

    chapter: str
    variant: str
    seed: int
    recipe: str
    dataset: str
    scale: str
    overrides: dict
    run_dir: str
    state: str  # "finished" | "diverged" | "resume" | "new" | "restart" | "stale"
    reason: str = ""
    root: str | None = None  # dataset root (None: SynthReID generated from the recipe's preset)
    device: str = "cpu"
    config: dict | None = None  # the resolved recipe (what a diverged run records)


# ------------------------------------------------------------------------------------ planning
def _state(run: Path, cfg: dict, seed: int, dataset: str) -> tuple[str, str]:
    results = run / "results.json"
    diverged = run / DIVERGED
    if diverged.is_file() and not results.is_file():
        try:
            record = json.loads(diverged.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            return "stale", f"{DIVERGED} is not valid JSON"
        if comparable_recipe(record.get("recipe", {})) == comparable_recipe(cfg) and record.get("seed") == seed:
            return "diverged", record.get("error", "")[:120]
        return "stale", recipe_difference(record.get("recipe", {}), cfg)
    if results.is_file():
        try:
            r = json.loads(results.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            return "stale", "results.json is not valid JSON"
        if r.get("seed") != seed or r.get("dataset", {}).get("name") != dataset:
            return "stale", f"seed {r.get('seed')} / dataset {r.get('dataset', {}).get('name')} differ"
        if comparable_recipe(r.get("recipe", {})) != comparable_recipe(cfg):
            return "stale", recipe_difference(r.get("recipe", {}), cfg)
        return "finished", ""
    checkpoint = run / "checkpoint.pt"
    if checkpoint.is_file():
        import torch

        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        same = comparable_recipe(state.get("config", {})) == comparable_recipe(cfg) and state.get("seed") == seed
        if same:
            return "resume", f"from epoch {state.get('epoch')}"
        return "restart", "an unfinished run of another recipe or seed (its checkpoint is replaced)"
    return "new", ""


def plan(study: Study, out: str | Path, *, root: str | Path | None = None, device: str = "cpu") -> list[RunSpec]:
    """One :class:`RunSpec` per (variant, seed), with the state of its run directory."""
    specs = []
    for name, variant in study.variants.items():
        cfg = study.configs[name]
        for seed in study.seeds:
            path = run_dir(out, study.chapter, name, seed)
            state, reason = _state(path, cfg, seed, study.dataset)
            specs.append(RunSpec(study.chapter, name, seed, variant.recipe, study.dataset, study.scale,
                                 dict(variant.overrides), str(path), state, reason,
                                 None if root is None else str(root), device, comparable_recipe(cfg)))
    return specs


def format_plan(specs: list[RunSpec]) -> str:
    lines = [f"{'variant':<24} {'seed':>4}  {'state':<9} run directory"]
    for s in specs:
        lines.append(f"{s.variant:<24} {s.seed:>4}  {s.state:<9} {s.run_dir}" + (f"  ({s.reason})" if s.reason else ""))
    counts = {k: sum(s.state == k for s in specs) for k in ("finished", "diverged", "resume", "new", "restart", "stale")}
    lines.append(", ".join(f"{v} {k}" for k, v in counts.items() if v) + f" of {len(specs)} runs")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ git
def git_state(repo: str | Path = REPO, *, ignore: str | Path | None = None) -> dict[str, Any]:
    """``{"commit", "dirty", "changes"}`` of the code repository; paths under ``ignore`` do not count."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": True, "changes": ["(not a git checkout)"]}
    skip = None
    if ignore is not None:
        try:
            skip = Path(ignore).resolve().relative_to(Path(repo).resolve()).as_posix().rstrip("/") + "/"
        except ValueError:
            skip = None
    changes = []
    for line in status.splitlines():
        path = line[3:].split(" -> ")[-1].strip('"')
        if skip and (path + "/").startswith(skip):
            continue
        changes.append(path)
    return {"commit": sha, "dirty": bool(changes), "changes": changes}


def _require_clean(git: dict, allow_dirty: bool) -> None:
    if git["dirty"] and not allow_dirty:
        raise ConfigError(
            f"the repository has uncommitted changes ({', '.join(git['changes'][:5])}): evidence must come from a "
            "commit. Commit (or stash) them, or pass --allow-dirty for a trial run (the evidence then says dirty)."
        )


# ------------------------------------------------------------------------------------ workers
def _init_worker() -> None:
    """Each worker process: one intra-op thread (set before torch's thread pool starts)."""
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process
        pass


def posthoc_todo(study: Study, out: str | Path, *, root: str | Path | None = None, device: str = "cpu") -> list[dict]:
    """One task per finished run of ``study.posthoc``'s variants whose analysis file is missing."""
    from reid.engine.reanalysis import analysis_path

    todo = []
    for name, variants in study.posthoc.items():
        for variant in variants:
            for seed in study.seeds:
                run = run_dir(out, study.chapter, variant, seed)
                if (run / "results.json").is_file() and not analysis_path(run, name).is_file():
                    todo.append({"kind": "analysis", "analysis": name, "chapter": study.chapter, "variant": variant,
                                 "seed": seed, "run_dir": str(run), "root": None if root is None else str(root),
                                 "device": device})
    return todo


def execute_analysis(spec: dict) -> dict:
    """Run one post-hoc analysis on a finished run (:func:`reid.engine.reanalysis.analyse_run`)."""
    from reid.engine.reanalysis import analyse_run

    wall0, cpu0 = time.perf_counter(), time.process_time()
    analyse_run(spec["run_dir"], [spec["analysis"]], root=spec["root"], device=spec["device"], progress=False)
    return {"variant": spec["variant"], "seed": spec["seed"], "wall_seconds": time.perf_counter() - wall0,
            "cpu_seconds": time.process_time() - cpu0}


def execute_run(spec: dict) -> dict:
    """Train (or resume) one run and stamp its wall/CPU time into its results.json."""
    from reid.engine import train
    from reid.engine.provenance import write_json

    wall0, cpu0 = time.perf_counter(), time.process_time()
    try:
        path = train(spec["recipe"], dataset=spec["dataset"], root=spec["root"], scale=spec["scale"], seed=spec["seed"],
                     out=spec["run_dir"], overrides=spec["overrides"], resume=spec["state"] == "resume",
                     overwrite=spec["state"] == "restart",
                     device=spec["device"], progress=False)
    except NonFiniteError as exc:  # a deterministic outcome of this variant and seed: recorded, never retried
        from reid.engine.provenance import git_commit

        Path(spec["run_dir"]).mkdir(parents=True, exist_ok=True)
        write_json({"variant": spec["variant"], "seed": spec["seed"], "error": str(exc), "recipe": spec["config"],
                    "git": git_commit(), "cpu_seconds": round(time.process_time() - cpu0, 3)},
                   Path(spec["run_dir"]) / DIVERGED)
        raise
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    results_path = Path(path) / "results.json"
    results = json.loads(results_path.read_text(encoding="utf-8"))
    results["study"] = {"chapter": spec["chapter"], "variant": spec["variant"], "wall_seconds": round(wall, 3),
                        "cpu_seconds": round(cpu, 3), "resumed": spec["state"] == "resume"}
    write_json(results, results_path)
    return {"variant": spec["variant"], "seed": spec["seed"], "wall_seconds": wall, "cpu_seconds": cpu}


def _single_process(todo: list[dict], bar, done: list[dict], failed: list[str]) -> None:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for spec in todo:
            result = _execute_or_report(spec)
            if "error" in result:
                failed.append(f"{result['variant']}/seed{result['seed']}: {result['error']}")
            else:
                done.append(result)
            bar.update(1)
    finally:
        torch.set_num_threads(threads)


def _execute_or_report(spec: dict) -> dict:
    """:func:`execute_run`, with a failure returned (not raised) so the other runs go on."""
    try:
        return execute_analysis(spec) if spec.get("kind") == "analysis" else execute_run(spec)
    except Exception as exc:  # noqa: BLE001 - report every failed run, keep the others going
        return {"variant": spec["variant"], "seed": spec["seed"], "error": f"{type(exc).__name__}: {exc}"}


def _worker_pool(todo: list[dict], jobs: int, bar, done: list[dict], failed: list[str]) -> None:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # fork after torch has started threads is unsafe; spawn is portable
    pool = ctx.Pool(processes=jobs, initializer=_init_worker)
    try:
        for result in pool.imap_unordered(_execute_or_report, todo, chunksize=1):
            if "error" in result:
                failed.append(f"{result['variant']}/seed{result['seed']}: {result['error']}")
            else:
                done.append(result)
                bar.set_postfix_str(f"{result['variant']}/seed{result['seed']} done")
            bar.update(1)
        pool.close()
    except BaseException:
        # Ctrl-C (or any error here): stop every worker now; their last checkpoints stay, and the
        # next `reid study` resumes those runs.
        pool.terminate()
        raise
    finally:
        pool.join()


def _prepare_data(study: Study, progress: bool) -> None:
    """Generate (or find) each SynthReID set once, before the workers start."""
    if study.dataset != "synthreid":
        return
    from reid.engine.data import load_training_data

    distinct = {json.dumps(cfg["data"], sort_keys=True): cfg for cfg in study.configs.values()}
    for _, cfg in sorted(distinct.items()):
        load_training_data(cfg, study.dataset, None, progress=progress)


def _prepare_analyses(study: Study, tasks: list[dict], *, root, jobs: int, progress: bool) -> None:
    """Build the shared inputs of the analyses ``tasks`` run (e.g. distractor images), once, in
    ``jobs`` processes, so that the workers only read them."""
    from reid.engine.analyses import prepare_analysis
    from reid.engine.data import load_training_data

    wanted = {}
    for task in tasks:
        cfg = study.configs[task["variant"]]
        key = (task["analysis"], json.dumps({k: cfg[k] for k in ("data", "input")}, sort_keys=True))
        wanted.setdefault(key, cfg)
    for (name, _), cfg in sorted(wanted.items()):
        data = load_training_data(cfg, study.dataset, root, progress=progress)
        prepare_analysis(name, cfg, data, jobs=jobs, progress=progress)


def train_runs(todo: list[dict], *, jobs: int, progress: bool, desc: str, git: dict, log: Path,
               trained: list[dict]) -> None:
    """Train the runs ``todo`` (:class:`RunSpec` dicts) in ``jobs`` one-thread workers, appending each
    finished one to ``trained``; one session line (also when interrupted) goes to ``log``. Raises a
    :class:`ReidError` naming every failed run once the others are done."""
    from tqdm import tqdm  # text bar on stderr (no widget in notebooks)

    started, wall0 = datetime.now(timezone.utc), time.perf_counter()
    failed: list[str] = []
    interrupted = True
    try:
        with tqdm(total=len(todo), desc=desc, unit="run", disable=not progress, dynamic_ncols=True, file=sys.stderr) as bar:
            if jobs == 1:
                _single_process(todo, bar, trained, failed)
            else:
                _worker_pool(todo, jobs, bar, trained, failed)
        interrupted = False
    finally:  # an interrupted session's time counts towards the study's wall time too
        session = {"commit": git["commit"], "dirty": git["dirty"], "started": started.isoformat(timespec="seconds"),
                   "wall_seconds": round(time.perf_counter() - wall0, 3), "runs": len(trained),
                   "failed": len(failed), "interrupted": interrupted, "jobs": jobs, "cpu_cores": os.cpu_count()}
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(session, sort_keys=True) + "\n")
    if failed:
        raise ReidError(f"{len(failed)} run(s) failed (the others are kept; rerun to retry): " + " | ".join(failed))


# ------------------------------------------------------------------------------------ the command
def run_study(
    chapter: str,
    *,
    seeds: int | list[int] | None = None,
    scale: str | None = None,
    jobs: int = 2,
    variants: list[str] | None = None,
    budget: int | None = None,
    out: str | Path = "evidence",
    root: str | Path | None = None,
    device: str = "cpu",
    allow_dirty: bool = False,
    plan_only: bool = False,
    aggregate_only: bool = False,
    progress: bool = True,
) -> dict:
    """Run (or plan, or only aggregate) the study of ``chapter``; returns a summary dict.

    The summary has ``plan`` (list of :class:`RunSpec` as dicts), and unless ``plan_only``,
    ``evidence`` (the path of ``<out>/<chapter>.json``), ``trained`` and ``skipped`` counts.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"--jobs must be a positive integer, got {jobs!r}.")
    study = load_study(chapter, scale=scale, seeds=seeds, variants=variants, budget=budget)
    out = Path(out)
    specs = plan(study, out, root=root, device=device)
    summary: dict[str, Any] = {"plan": [asdict(s) for s in specs], "chapter": study.chapter}
    if plan_only:
        pending: dict[str, int] = {}
        for task in posthoc_todo(study, out, root=root, device=device):
            pending[task["analysis"]] = pending.get(task["analysis"], 0) + 1
        summary["text"] = format_plan(specs) + "".join(
            f"\npost-hoc {name}: {n} finished run(s) to analyse" for name, n in pending.items())
        return summary
    stale = [s for s in specs if s.state == "stale"]
    if stale and not aggregate_only:
        listing = "; ".join(f"{s.run_dir} ({s.reason})" for s in stale[:5])
        raise ConfigError(
            f"{len(stale)} finished run(s) were trained with another recipe than the registry now gives: {listing}. "
            "They are never deleted: move them away (e.g. `mv DIR DIR.old`), then rerun `reid study`."
        )
    git = git_state(ignore=out)
    todo = [asdict(s) for s in specs if s.state in ("new", "resume", "restart")]
    trained: list[dict] = []
    if todo and not aggregate_only:
        _require_clean(git, allow_dirty)
        if root is None:
            _prepare_data(study, progress)
        try:
            train_runs(todo, jobs=jobs, progress=progress, desc=f"reid study {study.chapter}", git=git,
                       log=out / study.chapter / SESSIONS, trained=trained)
        except ReidError:
            # runs that diverged are recorded (diverged.json) and reported by the evidence; any other failure stops here
            if any(s.state in ("new", "resume", "restart") for s in plan(study, out, root=root, device=device)):
                raise
    analysed: list[dict] = []
    tasks = posthoc_todo(study, out, root=root, device=device)
    if tasks and not aggregate_only:
        _require_clean(git, allow_dirty)
        _prepare_analyses(study, tasks, root=root, jobs=jobs, progress=progress)
        train_runs(tasks, jobs=jobs, progress=progress, desc=f"reid study {study.chapter}: post-hoc analyses",
                   git=git, log=out / study.chapter / SESSIONS, trained=analysed)
    evidence = aggregate(study, out)
    path = write_evidence(evidence, out)
    summary.update(evidence=str(path), trained=len(trained), analysed=len(analysed), skipped=len(specs) - len(todo),
                   verdicts={c["id"]: c["verdict"] for c in evidence["claims"]})
    return summary
