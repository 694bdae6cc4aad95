"""``evidence/<chapter>.json``: a study's finished runs, the paired statistics and the verdicts.

:func:`aggregate` reads every run of a study (``<out>/<chapter>/<variant>/seed<k>/results.json``)
and builds the evidence document; :func:`write_evidence` writes it with sorted keys and floats
rounded to :data:`DIGITS` decimals, so rebuilding it from the same runs gives the same bytes.
Every statistic is computed from the *rounded* per-seed values, so anyone can recompute a
verdict from the file alone (``tests/test_study_chapters.py`` does, for every committed file).

Document (``format`` 1)::

    chapter, title, paper, registry           # which study, registered where
    commit, dirty, run_commits                # HEAD of the session(s); every run's commit
    code_changes {base, changes {commit: [files]}}   # only when the runs' commits differ: the package
                                              #   files (reid/) that differ from the commit most runs used
    posthoc {analysis: {variants, runs, commits, dirty, lock, cpu_seconds, wall_seconds}}
                                              # only with study.posthoc: analyses run on the finished runs afterwards
                                              #   (<run>/analyses/<name>.json; reid.engine.reanalysis)
    scale, dataset, seeds, n_seeds, min_seeds, meets_min_seeds
    label                                     # "SynthReID, study scale, CPU, n = 5 seeds"
    lock {file, sha256, mismatches}           # the lock file hash of the runs' environment
    hardware, versions                        # from the runs' results.json (one, or a list if mixed)
    timings {study_wall_seconds, sessions, runs_wall_seconds, runs_cpu_seconds, jobs,
             per_run {variant: {seed<k>: {wall_seconds, cpu_seconds}}}}
    variants {name: {recipe, overrides, runs [paths], metrics {metric: {values, mean, sd}}}}
    claims [ {id, claim, source, section, paper, metric, baseline, variant, expected, rule,
              seeds, baseline_values, variant_values, runs {baseline: [...], variant: [...]},
              diffs, diff_mean, diff_sd, ci95 [lo, hi], t_crit, df, n,
              decision_interval {level, lo, hi},   # the interval the rule compared
              baseline_mean, baseline_sd, variant_mean, variant_sd,
              display {factor, unit},              # x100 "points" for fraction metrics
              verdict,
              # slope claims also: x, x_scale, curve_metrics, baseline_curves, variant_curves
              # baseline_metric / minus / change_ratio claims also: that key (as registered),
              #   baseline_label, variant_label (what each side's values are), and runs of the
              #   other variants read (runs {minus_baseline, minus_variant} or {reference});
              #   change_ratio: undefined_seeds (a null value, verdict inconclusive, no interval)
             } ]
    comparisons [ {metric, a, b, mean_a, mean_b, diff, se, t, df, t_crit, ci95, p, p_holm,
                   significant} ]             # benchmark only: every pair, Welch + Holm

Run paths are relative to the folder that holds the evidence directory
(``evidence/support_neighbor/batch_hard/seed0``).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from reid.errors import ConfigError, ReidError
from reid.study.registry import MIN_SEEDS, STANDARD_METRICS, Claim, Study, claim_metrics, is_fraction
from reid.study.stats import decide, pairwise_welch_holm, run_slopes, t_interval

__all__ = ["FORMAT", "DIGITS", "aggregate", "write_evidence", "run_dir", "comparable_recipe", "recipe_difference",
           "read_sessions", "label_for", "side_labels"]

FORMAT = 1
DIGITS = 6
SESSIONS = "sessions.jsonl"
#: Written instead of results.json by a run whose training diverged (a NonFiniteError: deterministic
#: for its variant and seed). The evidence leaves that seed out of the claims that need the run and
#: says so (``excluded_seeds``, ``diverged_runs``); the runner never retries it.
DIVERGED = "diverged.json"


def run_dir(out: str | Path, chapter: str, variant: str, seed: int) -> Path:
    """Where one run of a study lives: ``<out>/<chapter>/<variant>/seed<k>``."""
    return Path(out) / chapter / variant / f"seed{seed}"


def comparable_recipe(cfg: dict) -> dict:
    """The resolved recipe as JSON would store it, minus speed-only options (:func:`reid.recipes.comparable`)."""
    from reid.recipes import comparable

    return comparable(cfg)


def recipe_difference(old: dict, new: dict, limit: int = 4) -> str:
    """``"loss.k: 8 -> 16; train.epochs: 10 -> 12"`` between two resolved recipes."""
    from reid.recipes import flatten

    a, b = flatten(comparable_recipe(old)), flatten(comparable_recipe(new))
    keys = sorted(k for k in set(a) | set(b) if a.get(k, "<absent>") != b.get(k, "<absent>"))
    text = "; ".join(f"{k}: {a.get(k, '<absent>')!r} -> {b.get(k, '<absent>')!r}" for k in keys[:limit])
    return text + (f"; ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def _r(x: float | None) -> float | None:
    """Rounded to DIGITS decimals; None for a missing or non-finite number (JSON has no NaN)."""
    return None if x is None or not math.isfinite(float(x)) else round(float(x), DIGITS)


def _rl(xs) -> list[float]:
    return [_r(x) for x in xs]


def _rel(path: Path, out: Path) -> str:
    return Path(os.path.relpath(path, out.resolve().parent)).as_posix()


def read_sessions(out: str | Path, chapter: str) -> list[dict]:
    path = Path(out) / chapter / SESSIONS
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def label_for(dataset: str, scale: str, device: str, n: int) -> str:
    """The honest label of every number of a study, e.g. "SynthReID, study scale, CPU, n = 5 seeds"."""
    from reid.viz.common import DATASET_NAMES

    dev = "GPU" if str(device).startswith("cuda") else str(device).upper()
    return f"{DATASET_NAMES.get(dataset, dataset)}, {scale} scale, {dev}, n = {n} seeds"


def _load_run(study: Study, out: Path, variant: str, seed: int) -> dict | None:
    """A run's results.json; None for a run that diverged (its diverged.json, same recipe)."""
    path = run_dir(out, study.chapter, variant, seed) / "results.json"
    diverged = path.with_name(DIVERGED)
    if not path.is_file() and diverged.is_file():
        record = json.loads(diverged.read_text(encoding="utf-8"))
        cfg = study.configs.get(variant)
        if cfg is None or comparable_recipe(record.get("recipe", {})) == comparable_recipe(cfg):
            return None
    if not path.is_file():
        raise ConfigError(f"{path} is missing: run `reid study {study.chapter}` to finish the study "
                          f"(it resumes and skips finished runs).")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReidError(f"{path} is not valid JSON ({exc}); move the run away and run `reid study {study.chapter}`.") from exc
    cfg = study.configs.get(variant)
    if cfg is not None and comparable_recipe(results.get("recipe", {})) != comparable_recipe(cfg):
        raise ConfigError(
            f"{path.parent} was trained with another recipe than the registry now gives "
            f"({recipe_difference(results.get('recipe', {}), cfg)}); move it away and run `reid study {study.chapter}`."
        )
    names = study.posthoc_for(variant)
    if names:  # the metrics of the analyses run after training join the run's own
        from reid.engine.reanalysis import describe, read_analyses, run_metrics

        records = read_analyses(path.parent)
        results = {**results, "metrics": run_metrics(path.parent, results, names),
                   "_posthoc": {n: describe(records[n]) for n in names}}
    return results


def _metric(results: dict, name: str, where: Path, claim: str) -> float:
    metrics = results.get("metrics", {})
    if name not in metrics:
        raise ConfigError(f"{where}: claim {claim!r} needs metric {name!r}, which this run did not write "
                          f"(it has {', '.join(sorted(metrics))}); add the analysis to eval.analyses and rerun.")
    return float(metrics[name])


def _unique(items: list[Any]) -> Any:
    keyed = {json.dumps(i, sort_keys=True): i for i in items}
    return next(iter(keyed.values())) if len(keyed) == 1 else [keyed[k] for k in sorted(keyed)]


def side_labels(claim: dict) -> tuple[str, str]:
    """What an evidence claim's baseline and variant values are (a variant name, or e.g. "smc_ecd − smc")."""
    return claim.get("baseline_label", claim["baseline"]), claim.get("variant_label", claim["variant"])


def _display(metric: str) -> dict:
    return {"factor": 100, "unit": "points"} if is_fraction(metric) else {"factor": 1, "unit": ""}


def _ratio(factor: float, num: float, num_ref: float, den: float, den_ref: float) -> float | None:
    """``factor · (num − num_ref) / (den − den_ref)``; None when the denominator change is 0."""
    change = den - den_ref
    return None if change == 0 else factor * (num - num_ref) / change


def _combined(claim: Claim, seeds: list[int], value) -> tuple[list, list, dict]:
    """Per-seed (baseline, variant) values of a ``baseline_metric`` / ``minus`` / ``change_ratio``
    claim (registry docstring), with the labels and extra run roles the evidence records."""
    b, v = claim.baseline, claim.variant
    if claim.baseline_metric:
        base = [value(b, s, claim.baseline_metric) for s in seeds]
        var = [value(v, s, claim.metric) for s in seeds]
        return base, var, {"baseline_metric": claim.baseline_metric, "baseline_label": f"{b} ({claim.baseline_metric})",
                           "variant_label": f"{v} ({claim.metric})"}
    if claim.minus:
        mb, mv = claim.minus["baseline"], claim.minus["variant"]
        base = [value(mv, s, claim.metric) - value(mb, s, claim.metric) for s in seeds]
        var = [value(v, s, claim.metric) - value(b, s, claim.metric) for s in seeds]
        return base, var, {"minus": dict(claim.minus), "baseline_label": f"{mv} − {mb}", "variant_label": f"{v} − {b}",
                           "_roles": {"minus_baseline": mb, "minus_variant": mv}}
    cr = claim.change_ratio
    ref, num, den, factor = cr["reference"], cr["numerator"], cr["denominator"], cr["factor"]
    side = {name: [_ratio(factor, value(name, s, num), value(ref, s, num), value(name, s, den), value(ref, s, den))
                   for s in seeds] for name in (b, v)}
    undefined = [s for s, x, y in zip(seeds, side[b], side[v]) if x is None or y is None]
    return side[b], side[v], {"change_ratio": dict(cr), "baseline_label": f"{b} vs {ref}", "variant_label": f"{v} vs {ref}",
                              "undefined_seeds": undefined, "_roles": {"reference": ref}}


def _claim_variants(claim: Claim) -> list[str]:
    names = [claim.baseline, claim.variant]
    if claim.minus:
        names += [claim.minus["baseline"], claim.minus["variant"]]
    if claim.change_ratio:
        names.append(claim.change_ratio["reference"])
    return names


def _claim_entry(claim: Claim, study: Study, out: Path, runs: dict[tuple[str, int], dict | None]) -> dict:
    # seed pairing: a seed where any run the claim reads diverged is left out, and named
    excluded = {s: [v for v in _claim_variants(claim) if runs[v, s] is None] for s in study.seeds}
    excluded = {s: vs for s, vs in excluded.items() if vs}
    seeds = [s for s in study.seeds if s not in excluded]
    paths = {role: [_rel(run_dir(out, study.chapter, v, s), out) for s in seeds]
             for role, v in (("baseline", claim.baseline), ("variant", claim.variant))}

    def value(v: str, s: int, m: str) -> float:
        return _metric(runs[v, s], m, run_dir(out, study.chapter, v, s), claim.id)

    extra: dict[str, Any] = {}
    if claim.baseline_metric or claim.minus or claim.change_ratio:
        base, var, extra = _combined(claim, seeds, value)
        base, var = _rl(base), _rl(var)
        for role, v in extra.pop("_roles", {}).items():
            paths[role] = [_rel(run_dir(out, study.chapter, v, s), out) for s in seeds]
        display = {"factor": 1, "unit": ""} if claim.change_ratio else _display(claim.metric)
    elif claim.rule["name"] == "slope":
        names, x, x_scale = claim_metrics(claim), claim.rule["x"], claim.rule.get("x_scale", "log10")
        curves = {v: [_rl(value(v, s, m) for m in names) for s in seeds] for v in (claim.baseline, claim.variant)}
        base, var = _rl(run_slopes(curves[claim.baseline], x, x_scale)), _rl(run_slopes(curves[claim.variant], x, x_scale))
        extra = {"x": x, "x_scale": x_scale, "curve_metrics": names,
                 "baseline_curves": curves[claim.baseline], "variant_curves": curves[claim.variant]}
        factor = _display(names[0])["factor"]
        per = "per decade" if x_scale == "log10" else "per unit x"
        display = {"factor": factor, "unit": f"points {per}" if factor == 100 else per}
    else:
        base = _rl(value(claim.baseline, s, claim.metric) for s in seeds)
        var = _rl(value(claim.variant, s, claim.metric) for s in seeds)
        display = _display(claim.metric)
    entry = {
        "id": claim.id, "claim": claim.claim, "source": claim.source, "section": claim.section,
        "paper": claim.paper, "metric": claim.metric, "baseline": claim.baseline, "variant": claim.variant,
        "expected": claim.expected, "rule": claim.rule, "seeds": seeds,
        "excluded_seeds": {str(s): [f"{v} diverged" for v in vs] for s, vs in excluded.items()},
        "baseline_values": base, "variant_values": var, "runs": paths, "display": display, **extra,
    }  # fmt: skip
    if None in base or None in var:  # a change_ratio seed without a ratio: no interval (registry docstring)
        diffs = [None if b is None or v is None else v - b for b, v in zip(base, var)]
        return {**entry, "diffs": _rl(diffs), "diff_mean": None, "diff_sd": None, "ci95": None, "t_crit": None,
                "df": None, "n": len(seeds), "decision_interval": {"level": None, "lo": None, "hi": None},
                "baseline_mean": None, "baseline_sd": None, "variant_mean": None, "variant_sd": None,
                "verdict": "inconclusive"}
    d = decide(claim.rule, claim.expected, base, var)
    bsum, vsum = t_interval(base), t_interval(var)
    return {
        **entry, "diffs": _rl(d.diffs), "diff_mean": _r(d.ci95.mean), "diff_sd": _r(d.ci95.sd),
        "ci95": None if d.ci95.lo is None else [_r(d.ci95.lo), _r(d.ci95.hi)],
        "t_crit": _r(d.ci95.t_crit), "df": d.ci95.df, "n": d.ci95.n,
        "decision_interval": {"level": d.decision.level, "lo": _r(d.decision.lo), "hi": _r(d.decision.hi)},
        "baseline_mean": _r(bsum.mean), "baseline_sd": _r(bsum.sd),
        "variant_mean": _r(vsum.mean), "variant_sd": _r(vsum.sd), "verdict": d.verdict,
    }  # fmt: skip


def code_changes(counts: dict[str, int], repo: str | Path | None = None) -> dict | None:
    """For runs trained at several commits (``{commit: number of runs}``): the package files
    (``reid/``) that differ between the commit most runs used and each other one, from ``git diff
    --name-only``; None for one commit. A commit git does not know lists ``["unknown"]``."""
    import subprocess

    if len(counts) < 2:
        return None
    repo = Path(repo) if repo is not None else Path(__file__).resolve().parents[2]
    base = max(sorted(counts), key=lambda c: counts[c])
    changes = {}
    for commit in sorted(c for c in counts if c != base):
        try:
            text = subprocess.run(["git", "diff", "--name-only", base, commit, "--", "reid/"], cwd=repo,
                                  capture_output=True, text=True, timeout=30, check=True).stdout
            changes[commit] = sorted(line for line in text.splitlines() if line)
        except (OSError, subprocess.SubprocessError):
            changes[commit] = ["unknown"]
    return {"base": base, "changes": changes}


def aggregate(study: Study, out: str | Path) -> dict:
    """The evidence document of ``study`` from its finished runs under ``out`` (see the module docstring).

    ``commit`` is the commit every run was trained at (``"mixed"`` when they differ; ``run_commits``
    lists them and ``code_changes`` what differs between them); ``dirty`` is true when a session
    that trained runs had uncommitted changes.
    """
    out = Path(out)
    seeds = list(study.seeds)
    loaded = {(v, s): _load_run(study, out, v, s) for v in study.variants for s in seeds}
    diverged_runs = [_rel(run_dir(out, study.chapter, v, s), out) for (v, s), r in loaded.items() if r is None]
    runs = {k: r for k, r in loaded.items() if r is not None}  # the finished ones
    first = next(iter(runs.values()))
    sessions = read_sessions(out, study.chapter)
    run_commits = sorted({r.get("git", {}).get("commit", "unknown") for r in runs.values()})
    per_commit = {c: sum(r.get("git", {}).get("commit", "unknown") == c for r in runs.values()) for c in run_commits}
    changes = code_changes(per_commit)
    dirty = any(s.get("dirty") for s in sessions) if sessions else any(r.get("git", {}).get("dirty") for r in runs.values())
    commit = {"commit": run_commits[0] if len(run_commits) == 1 else "mixed", "dirty": bool(dirty)}
    wanted = set(STANDARD_METRICS) | {m for c in study.claims for m in claim_metrics(c)} | set(
        (study.comparisons or {}).get("metrics", []))
    variants = {}
    per_run: dict[str, dict[str, dict]] = {}
    for v, spec in study.variants.items():
        done = [s for s in seeds if (v, s) in runs]
        vals = {m: [runs[v, s]["metrics"][m] for s in done] for m in sorted(wanted)
                if done and all(m in runs[v, s].get("metrics", {}) for s in done)}
        summary = {}
        for m, xs in vals.items():
            xs = _rl(xs)
            ti = t_interval(xs)
            summary[m] = {"values": xs, "mean": _r(ti.mean), "sd": _r(ti.sd)}
        variants[v] = {"recipe": spec.recipe, "overrides": spec.overrides, "metrics": summary,
                       "runs": [_rel(run_dir(out, study.chapter, v, s), out) for s in done],
                       "diverged_seeds": [s for s in seeds if s not in done]}
        per_run[v] = {f"seed{s}": {"wall_seconds": _r(runs[v, s].get("study", {}).get("wall_seconds")),
                                   "cpu_seconds": _r(runs[v, s].get("study", {}).get("cpu_seconds"))} for s in done}
    walls = [t["wall_seconds"] for pv in per_run.values() for t in pv.values() if t["wall_seconds"] is not None]
    cpus = [t["cpu_seconds"] for pv in per_run.values() for t in pv.values() if t["cpu_seconds"] is not None]
    locks = [r.get("lock", {}) for r in runs.values()]
    posthoc = {}
    for name, names in study.posthoc.items():
        done = [runs[v, s]["_posthoc"][name] for v in names for s in seeds if (v, s) in runs]
        posthoc[name] = {"variants": list(names), "runs": len(done), "commits": sorted({d["commit"] for d in done}),
                         "dirty": any(d["dirty"] for d in done), "lock": _unique([d["lock"] for d in done]),
                         "cpu_seconds": _r(sum(d["cpu_seconds"] or 0 for d in done)),
                         "wall_seconds": _r(sum(d["wall_seconds"] or 0 for d in done))}
    hardware = [{k: v for k, v in r.get("hardware", {}).items() if k != "torch_threads"} for r in runs.values()]
    device = first.get("device", "cpu")
    claims = [_claim_entry(c, study, out, loaded) for c in study.claims]
    comparisons = []
    if study.comparisons:
        for m in study.comparisons["metrics"]:
            groups = {v: variants[v]["metrics"][m]["values"] for v in study.variants}
            for row in pairwise_welch_holm(groups, alpha=study.comparisons["alpha"]):
                comparisons.append({"metric": m, **{k: (_rl(x) if isinstance(x, list) else _r(x) if isinstance(x, float) else x)
                                                    for k, x in row.items()}})
    return {
        "format": FORMAT, "chapter": study.chapter, "title": study.title, "paper": study.paper,
        "registry": Path(study.source).name if study.source.endswith(".json") else study.source,
        "commit": commit["commit"], "dirty": commit["dirty"], "run_commits": run_commits,
        "scale": study.scale, "dataset": study.dataset, "seeds": seeds, "n_seeds": len(seeds),
        "min_seeds": MIN_SEEDS, "meets_min_seeds": len(seeds) >= MIN_SEEDS,
        "label": label_for(study.dataset, study.scale, device, len(seeds)),
        "lock": {"file": _unique([lk.get("file") for lk in locks]), "sha256": _unique([lk.get("sha256") for lk in locks]),
                 "mismatches": sorted({m for lk in locks for m in lk.get("mismatches", [])})},
        "hardware": _unique(hardware), "versions": _unique([r.get("versions", {}) for r in runs.values()]),
        "timings": {
            "study_wall_seconds": _r(sum(s["wall_seconds"] for s in sessions)) if sessions else None,
            "sessions": len(sessions), "jobs": sessions[-1].get("jobs") if sessions else None,
            "runs_wall_seconds": _r(sum(walls)) if walls else None, "runs_cpu_seconds": _r(sum(cpus)) if cpus else None,
            "per_run": per_run,
        },
        "variants": variants, "claims": claims, "comparisons": comparisons, "diverged_runs": diverged_runs,
        **({"posthoc": posthoc} if posthoc else {}), **({"code_changes": changes} if changes else {}),
    }  # fmt: skip


def write_evidence(evidence: dict, out: str | Path) -> Path:
    """Write ``<out>/<chapter>.json`` (sorted keys, 2-space indent, trailing newline; atomic)."""
    path = Path(out) / f"{evidence['chapter']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(evidence, indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
