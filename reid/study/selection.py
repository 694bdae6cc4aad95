"""The values a paper does not state, chosen on a validation split before the study (issue 10).

A study's registry may carry a ``selection`` block (``study.selection``, checked by
:func:`check_selection` when the registry loads). It is run once, **before** the study, with
``python -m reid.study.selection <chapter>``; it never looks at the test split::

    "selection": {
      "validation_ids": 20,        # training identities held out (data.validation_ids); every
                                   #   candidate is trained on the others, evaluated on them
                                   #   (eval.split: validation, reid.data.validation)
      "seeds": [0, 1],             # seeds per candidate; their mean decides
      "metric": "mAP",             # a standard results.json metric, higher is better
      "tie": 0.005,                # candidates within `tie` of the best mean are tied; the tie goes to
                                   #   the value nearest the recipe's own (log10 distance if all > 0)
      "steps": [                   # in order: each step's choice is used by the later steps' runs
        {"key": "loss.alpha", "values": [0.01, 0.5],
         "on": "center",           # the study variant trained with each candidate value
         "applies_to": ["center", "smc"],   # study variants that take the chosen value (incl. `on`)
         "also_sets": ["loss.lam_ecd"],     # optional: more keys set to the same value
         "why": "one sentence"}
      ]
    }

Every candidate run is the ``on`` variant of the study (its overrides, the study's common
overrides, the values chosen by the earlier steps where they apply to it) with the candidate
value, ``data.validation_ids``, ``eval.split: validation`` and no ``eval.analyses``, at the study's
scale. Runs live in ``<out>/<chapter>/selection/<variant>_<key>-<value>.../seed<k>`` (a run
shared by two steps is trained once); resumable and never destructive, like ``reid study``
(:mod:`reid.study.runner`), and refused on a dirty tree. The outcome, with every candidate's
per-seed values, goes to ``<out>/<chapter>/selection.json``.

The chosen values are then written **by hand** into the study's variants (explicit overrides in
the registry); :func:`unapplied` lists any variant that disagrees with ``selection.json``, and the
chapter's registry test calls it, so the study cannot silently run with other values.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from reid.errors import ConfigError, ReidError

__all__ = ["check_selection", "candidate_overrides", "choose", "run_selection", "unapplied", "selection_path", "main"]

_KEYS = {"validation_ids", "seeds", "metric", "tie", "steps"}
_STEP_KEYS = {"key", "values", "on", "applies_to", "also_sets", "why"}


def selection_path(out: str | Path, chapter: str) -> Path:
    """``<out>/<chapter>/selection.json``."""
    return Path(out) / chapter / "selection.json"


def check_selection(where: str, spec: Any, variants: dict) -> dict:
    """The validated ``study.selection`` block (schema in the module docstring); one ConfigError per problem."""
    from reid.study.registry import STANDARD_METRICS

    here = f"{where}: study.selection"
    if not isinstance(spec, dict):
        raise ConfigError(f"{here} must be an object (schema in reid/study/selection.py).")
    unknown, missing = sorted(set(spec) - _KEYS), sorted(_KEYS - set(spec) - {"tie"})
    if unknown or missing:
        raise ConfigError(f"{here}: " + (f"unknown key(s) {unknown}" if unknown else f"missing key(s) {missing}")
                          + f"; keys: {sorted(_KEYS)} (tie optional).")
    ids = spec["validation_ids"]
    if isinstance(ids, bool) or not isinstance(ids, int) or ids < 2:
        raise ConfigError(f"{here}.validation_ids must be an integer >= 2, got {ids!r}.")
    seeds = spec["seeds"]
    if not isinstance(seeds, list) or not seeds or len(set(seeds)) != len(seeds) or \
            any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ConfigError(f"{here}.seeds must list distinct non-negative integers, got {seeds!r}.")
    if spec["metric"] not in STANDARD_METRICS:
        raise ConfigError(f"{here}.metric {spec['metric']!r} is not a standard metric ({', '.join(STANDARD_METRICS)}).")
    tie = spec.get("tie", 0.0)
    if isinstance(tie, bool) or not isinstance(tie, (int, float)) or not 0 <= tie < 1:
        raise ConfigError(f"{here}.tie must be a number in [0, 1) (metrics are fractions), got {tie!r}.")
    steps = spec["steps"]
    if not isinstance(steps, list) or not steps:
        raise ConfigError(f"{here}.steps must be a non-empty list of steps.")
    for i, step in enumerate(steps):
        at = f"{here}.steps[{i}]"
        if not isinstance(step, dict) or not {"key", "values", "on", "applies_to"} <= set(step) or set(step) - _STEP_KEYS:
            raise ConfigError(f"{at} needs key, values, on, applies_to (also_sets and why optional); got {step!r}.")
        values = step["values"]
        if not isinstance(values, list) or len(values) < 2 or len({json.dumps(v) for v in values}) != len(values) or \
                any(isinstance(v, bool) or not isinstance(v, (int, float, str)) for v in values):
            raise ConfigError(f"{at}.values must list >= 2 distinct numbers or strings, got {values!r}.")
        if not isinstance(step["key"], str) or "." not in step["key"]:
            raise ConfigError(f"{at}.key must be a dotted recipe key such as \"loss.lam\", got {step['key']!r}.")
        also = step.get("also_sets", [])
        if not isinstance(also, list) or not all(isinstance(k, str) and "." in k for k in also):
            raise ConfigError(f"{at}.also_sets must list dotted recipe keys, got {also!r}.")
        if step["on"] not in variants:
            raise ConfigError(f"{at}.on {step['on']!r} is not a variant of the study; variants: {', '.join(variants)}.")
        applies = step["applies_to"]
        if not isinstance(applies, list) or step["on"] not in applies:
            raise ConfigError(f"{at}.applies_to must list the study variants that take the choice, {step['on']!r} included.")
        bad = [v for v in applies if v not in variants]
        if bad:
            raise ConfigError(f"{at}.applies_to names {bad}, not variants of the study.")
    return {**spec, "tie": float(tie)}


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) else str(value)


def candidate_overrides(study, step: dict, value: Any, chosen: dict[str, dict]) -> tuple[str, dict]:
    """The run name and dotted overrides of one candidate of ``step`` (module docstring).

    The name lists the resolved value of every key the selection sets, so a candidate that two
    steps share (step 2's default is step 1's choice) is one run.
    """
    from reid.recipes import flatten, load_recipe

    sel = study.selection
    on = step["on"]
    picked = {**chosen.get(on, {}), **{k: value for k in (step["key"], *step.get("also_sets", []))}}
    overrides = {**study.variants[on].overrides, **picked, "data.validation_ids": sel["validation_ids"],
                 "eval.split": "validation", "eval.analyses": []}
    flat = flatten(load_recipe(study.variants[on].recipe, study.scale, overrides))
    keys = sorted({k for st in sel["steps"] for k in (st["key"], *st.get("also_sets", []))})
    name = on + "".join(f"_{k.split('.', 1)[1]}-{_fmt(flat.get(k))}" for k in keys)
    return name, overrides


def _distance(value: Any, default: Any, values: list) -> float:
    numeric = all(isinstance(v, (int, float)) for v in (*values, default))
    if not numeric:
        return 0.0 if value == default else 1.0
    if all(v > 0 for v in (*values, default)):
        return abs(math.log10(value) - math.log10(default))
    return abs(value - default)


def choose(means: dict[Any, float], *, tie: float, default: Any) -> tuple[Any, list]:
    """The chosen value and the tied ones: the best mean, unless several lie within ``tie`` of it;
    then the one nearest ``default`` (log10 distance when all are positive), then the higher mean.

    >>> choose({0.0001: 0.80, 0.001: 0.797, 0.01: 0.70}, tie=0.005, default=0.001)
    (0.001, [0.0001, 0.001])
    """
    best = max(means.values())
    tied = [v for v, m in means.items() if m >= best - tie]
    values = list(means)
    if default is None or len(tied) == 1:
        return max(tied, key=lambda v: means[v]), tied
    return min(tied, key=lambda v: (_distance(v, default, values), -means[v])), tied


def _default(study, step: dict, chosen: dict[str, dict]) -> Any:
    from reid.recipes import flatten, load_recipe

    variant = study.variants[step["on"]]
    cfg = load_recipe(variant.recipe, study.scale, {**variant.overrides, **chosen.get(step["on"], {})})
    return flatten(cfg).get(step["key"])


def run_selection(chapter: str, *, out: str | Path = "evidence", jobs: int = 2, allow_dirty: bool = False,
                  progress: bool = True) -> dict:
    """Run every step of ``chapter``'s selection in order; write and return ``selection.json``'s document."""
    from reid.recipes import load_recipe
    from reid.engine.data import load_training_data
    from reid.study.evidence import DIGITS, label_for
    from reid.study.registry import load_study
    from reid.study.runner import RunSpec, _state, git_state, train_runs

    study = load_study(chapter)
    sel = study.selection
    if sel is None:
        raise ConfigError(f"{study.source}: the study has no 'selection' block; nothing to choose.")
    out = Path(out)
    root = out / study.chapter / "selection"
    git = git_state(ignore=out)
    if git["dirty"] and not allow_dirty:
        raise ConfigError(f"the repository has uncommitted changes ({', '.join(git['changes'][:5])}): a selection, like "
                          "evidence, comes from a commit. Commit them, or pass --allow-dirty for a trial.")
    chosen: dict[str, dict] = {}
    steps_doc, runs_doc = [], {}
    for index, step in enumerate(sel["steps"]):
        candidates = []
        for value in step["values"]:
            name, overrides = candidate_overrides(study, step, value, chosen)
            cfg = load_recipe(study.variants[step["on"]].recipe, study.scale, overrides)
            candidates.append((value, name, overrides, cfg))
        specs = []
        for value, name, overrides, cfg in candidates:
            for seed in sel["seeds"]:
                path = root / name / f"seed{seed}"
                state, reason = _state(path, cfg, seed, study.dataset)
                if state == "stale":
                    raise ConfigError(f"{path} holds a run of another recipe ({reason}); move it away and rerun.")
                specs.append(RunSpec(f"{study.chapter}/selection", name, seed, study.variants[step["on"]].recipe,
                                     study.dataset, study.scale, overrides, str(path), state, reason))
        todo = [asdict(s) for s in specs if s.state != "finished"]
        if todo:
            if study.dataset == "synthreid":  # generate (or find) the set once, before the workers start
                load_training_data(candidates[0][3], study.dataset, None, progress=progress)
            train_runs(todo, jobs=jobs, progress=progress, desc=f"selection {index + 1}/{len(sel['steps'])}: {step['key']}",
                       git=git, log=root / "sessions.jsonl", trained=[])
        means, rows = {}, []
        for value, name, _, _ in candidates:
            results = [json.loads((root / name / f"seed{s}" / "results.json").read_text(encoding="utf-8"))
                       for s in sel["seeds"]]
            values = [round(float(r["metrics"][sel["metric"]]), DIGITS) for r in results]
            means[value] = sum(values) / len(values)
            rows.append({"value": value, "run": name, "values": values, "mean": round(means[value], DIGITS)})
            for s, r in zip(sel["seeds"], results):  # a run two steps share is listed (and timed) once
                t = r.get("study", {})
                runs_doc[f"{name}/seed{s}"] = {"commit": r.get("git", {}).get("commit"), **{k: t.get(k) for k in ("wall_seconds", "cpu_seconds")}}
        default = _default(study, step, chosen)
        pick, tied = choose(means, tie=sel["tie"], default=default)
        for v in step["applies_to"]:
            chosen.setdefault(v, {}).update({k: pick for k in (step["key"], *step.get("also_sets", []))})
        steps_doc.append({"key": step["key"], "also_sets": step.get("also_sets", []), "on": step["on"], "default": default,
                          "candidates": rows, "tied": tied, "chosen": pick, "applies_to": step["applies_to"],
                          "why": step.get("why", "")})
    first = json.loads(sorted(root.glob("*/seed*/results.json"))[0].read_text(encoding="utf-8"))
    commits = sorted({r["commit"] for r in runs_doc.values()})
    cpu = sum(r["cpu_seconds"] or 0.0 for r in runs_doc.values())
    wall = sum(r["wall_seconds"] or 0.0 for r in runs_doc.values())
    doc = {
        "chapter": study.chapter, "registry": Path(study.source).name, "commit": commits[0] if len(commits) == 1 else "mixed",
        "scale": study.scale, "dataset": study.dataset, "split": "validation", "validation_ids": sel["validation_ids"],
        "splits": first.get("dataset", {}).get("statistics"),  # training rest, validation query / gallery
        "seeds": sel["seeds"], "metric": sel["metric"], "tie": sel["tie"],
        "label": label_for(study.dataset, study.scale, first.get("device", "cpu"), len(sel["seeds"]))
        + f", validation split ({sel['validation_ids']} held-out training identities)",
        "steps": steps_doc, "chosen": chosen,
        "timings": {"runs": len(runs_doc), "runs_cpu_seconds": round(cpu, 3), "runs_wall_seconds": round(wall, 3),
                    "sessions_wall_seconds": round(sum(s["wall_seconds"] for s in _sessions(root)), 3)},
        "runs": runs_doc,
    }  # fmt: skip
    path = selection_path(out, study.chapter)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return doc


def _sessions(root: Path) -> list[dict]:
    path = root / "sessions.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def unapplied(study, doc: dict) -> list[str]:
    """``"variant: key = registered (selected: chosen)"`` for every study variant whose explicit
    overrides do not hold a value that ``selection.json`` chose for it (empty when all agree)."""
    problems = []
    for variant, values in sorted(doc["chosen"].items()):
        have = study.variants[variant].overrides if variant in study.variants else {}
        for key, value in sorted(values.items()):
            if have.get(key, "<absent>") != value:
                problems.append(f"{variant}: {key} = {have.get(key, '<absent>')} (selected: {value})")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reid.study.selection", description=__doc__.split("\n\n")[0])
    parser.add_argument("chapter", help="a chapter whose registry has study.selection")
    parser.add_argument("--out", default="evidence", help="evidence folder (default: evidence)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes, one thread each (default 2)")
    parser.add_argument("--allow-dirty", action="store_true", help="a trial on uncommitted code (recorded)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        doc = run_selection(args.chapter, out=args.out, jobs=args.jobs, allow_dirty=args.allow_dirty,
                            progress=not args.no_progress)
    except ReidError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for step in doc["steps"]:
        figures = ", ".join(f"{_fmt(c['value'])}: {c['mean']:.4f}" for c in step["candidates"])
        print(f"{step['key']} on {step['on']}: {figures} -> {_fmt(step['chosen'])}")
    from reid.study.registry import load_study

    todo = unapplied(load_study(args.chapter), doc)
    print(f"written {selection_path(args.out, doc['chapter'])}")
    if todo:
        print("set these in the registry's study.variants before `reid study`:\n  " + "\n  ".join(todo))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
