"""What a chapter shows from its evidence file: per-claim tables, the scoreboard, and glue keys.

:func:`load_evidence` reads ``evidence/<chapter>.json`` (written by ``reid study <chapter>``);
:func:`claim_table` is the chapter's per-claim table; :func:`glue_evidence` publishes every
number and verdict with ``myst_nb.glue`` so the prose quotes them instead of typing them.

Glue keys (``<id>`` is a claim id, ``<chapter>`` the chapter; numbers in display units:
rank-k / mAP / mINP ×100, i.e. percent or points, other metrics as stored)::

    <id>_verdict        "supported" | "contradicted" | "inconclusive"
    <id>_summary        "+4.1 points mAP (95% CI [+2.1, +6.0], n = 5 seeds): supported"
    <id>_diff           mean paired difference variant − baseline (float; format it: {glue:text}`<id>_diff:+.1f`)
    <id>_ci             "[+2.1, +6.0]"  (the 95% t-interval of the difference)
    <id>_ci_lo, <id>_ci_hi            its ends (floats)
    <id>_n              number of seed pairs (int)
    <id>_unit           "points" for fraction metrics, else "" (slope claims: "per decade", or "points per decade" for fractions)
    <id>_baseline_mean, <id>_baseline_sd, <id>_variant_mean, <id>_variant_sd   (floats)
    <id>_paper          the paper's numbers: "69.14 -> 73.43 mAP (Market-1501, Table 1)" or "not printed"
    <chapter>_label     "SynthReID, study scale, CPU, n = 5 seeds"
    <chapter>_commit    the short commit of the runs
    <chapter>_wall_minutes             the study's wall time (float; None if unknown)
    <chapter>_claims, <chapter>_supported, <chapter>_contradicted, <chapter>_inconclusive   (counts)
    <chapter>_verdict_counts           "2 contradicted, 5 inconclusive, 7 supported" (the results' first line)
    <chapter>_contradicted_list, <chapter>_inconclusive_list   claim ids, comma-separated, or "none"
    <chapter>_posthoc_<analysis>_commit       studies with study.posthoc: the short commit(s) the analysis ran at
    <chapter>_posthoc_<analysis>_cpu_minutes  and its CPU time over all runs (loading the models included)

In a chapter's markdown: ``the claim is {glue:text}`sn_beats_bh_map_verdict` `` and
``{glue:text}`sn_beats_bh_map_summary` ``. ``tests/test_study_chapters.py`` fails when a chapter
types a verdict word itself or references a glue key its evidence does not provide.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

from reid.errors import ReidError
from reid.study.evidence import side_labels

__all__ = [
    "evidence_dir", "load_evidence", "available_evidence", "claim_rows", "claim_table", "comparisons_table",
    "scoreboard_rows", "scoreboard_table", "overview_table", "chapter_link", "glue_values", "glue_keys", "glue_evidence", "format_ci",
    "CHAPTER_PAPERS",
]  # fmt: skip

REPO = Path(__file__).resolve().parents[2]
#: chapter -> paper id (the benchmark has none)
CHAPTER_PAPERS = {"smc_ecd": "000", "adaptive_margin": "001", "support_neighbor": "002",
                  "view_adaptation": "003", "joint_am_triplet": "004"}
VERDICT_MARKS = {"supported": "supported", "contradicted": "**contradicted**", "inconclusive": "inconclusive"}


def evidence_dir(directory: str | Path | None = None) -> Path:
    """``directory``, else ``$REID_EVIDENCE_DIR``, else the repository's ``evidence/``."""
    if directory is not None:
        return Path(directory)
    env = os.environ.get("REID_EVIDENCE_DIR")
    return Path(env) if env else REPO / "evidence"


def load_evidence(chapter: str, directory: str | Path | None = None) -> dict:
    """The parsed ``evidence/<chapter>.json``; a clear error when it is missing."""
    path = evidence_dir(directory) / f"{chapter}.json"
    if not path.is_file():
        raise ReidError(f"no evidence for {chapter!r} at {path}: run `reid study {chapter}` from the repository root "
                        "(about 15-20 minutes on 2 cores), then commit evidence/.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReidError(f"{path} is not valid JSON ({exc}); rebuild it with `reid study {chapter} --aggregate-only`.") from exc


def available_evidence(directory: str | Path | None = None) -> list[str]:
    """Chapters with an evidence file, in the book's order (papers first, then the rest)."""
    root = evidence_dir(directory)
    found = sorted(p.stem for p in root.glob("*.json")) if root.is_dir() else []
    order = list(CHAPTER_PAPERS) + ["benchmark"]
    return sorted(found, key=lambda c: (order.index(c) if c in order else len(order), c))


# ------------------------------------------------------------------------------------ formatting
def _factor(claim: dict) -> float:
    return float(claim.get("display", {}).get("factor", 1))


def _disp(x: float | None, claim: dict) -> float | None:
    return None if x is None else round(x * _factor(claim), 4)


def _num(x: float | None, spec: str = "+.1f") -> str:
    return "–" if x is None else format(x, spec)


def _decimals(claim: dict) -> int:
    """Decimals that the interval warrants: one below its width's leading digit (1 to 4)."""
    ci = claim.get("ci95")
    width = abs(ci[1] - ci[0]) * _factor(claim) if ci else 0.0
    return 1 if width <= 0 else min(4, max(1, 1 - math.floor(math.log10(width))))


def _signed(x: float | None, claim: dict) -> str:
    return _num(_disp(x, claim), f"+.{_decimals(claim)}f")


def format_ci(claim: dict, spec: str | None = None) -> str:
    spec = spec or f"+.{_decimals(claim)}f"
    ci = claim.get("ci95")
    if not ci and claim.get("undefined_seeds"):
        return f"[no interval: no ratio at seed(s) {', '.join(map(str, claim['undefined_seeds']))}]"
    if not ci:
        return "[no interval: n < 2]"
    return f"[{_num(_disp(ci[0], claim), spec)}, {_num(_disp(ci[1], claim), spec)}]"


def _mean_sd(mean: float | None, sd: float | None, claim: dict) -> str:
    if mean is None:
        return "–"
    spec = f".{_decimals(claim)}f"
    text = _num(_disp(mean, claim), spec)
    return text + ("" if sd is None else f" ± {_num(_disp(sd, claim), spec)}")


def _paper_text(claim: dict) -> str:
    p = claim.get("paper")
    if not p or (p.get("baseline") is None and p.get("variant") is None):
        return "not printed"
    where = ", ".join(x for x in (p.get("dataset"), claim.get("source")) if x)
    return f"{_num(p.get('baseline'), 'g')} -> {_num(p.get('variant'), 'g')} {p.get('metric', '')}".rstrip() + (
        f" ({where})" if where else "")


def _unit(claim: dict) -> str:
    return claim.get("display", {}).get("unit", "")


def _summary(claim: dict) -> str:
    unit = _unit(claim)
    what = claim["metric"] if claim.get("rule", {}).get("name") != "slope" else f"slope of {claim['metric']}"
    diff = _signed(claim.get("diff_mean"), claim)
    left_out = _left_out(claim)
    return (f"{diff}{' ' + unit if unit else ''} {what} (95% CI {format_ci(claim)}, n = {claim['n']} seeds"
            f"{'; ' + left_out if left_out else ''}): {claim['verdict']}")


def _left_out(claim: dict) -> str:
    """"seed 4 left out: adaptive_gamma1.8 diverged" for the seeds a claim could not pair."""
    excluded = claim.get("excluded_seeds") or {}
    return "; ".join(f"seed {s} left out: {', '.join(why)}" for s, why in sorted(excluded.items(), key=lambda kv: int(kv[0])))


# ------------------------------------------------------------------------------------ tables
def claim_rows(evidence: dict) -> list[dict]:
    """One row per claim: the numbers of :func:`claim_table`, formatted."""
    rows = []
    for c in evidence.get("claims", []):
        rows.append({
            "claim": c["id"], "source": c.get("source", ""), "metric": c["metric"],
            "baseline": _mean_sd(c.get("baseline_mean"), c.get("baseline_sd"), c),
            "variant": _mean_sd(c.get("variant_mean"), c.get("variant_sd"), c),
            "difference": _signed(c.get("diff_mean"), c) + (f" {_unit(c)}" if _unit(c) else ""),
            "95% CI": format_ci(c), "n": c["n"] if not c.get("excluded_seeds") else f"{c['n']} ({_left_out(c)})",
            "verdict": VERDICT_MARKS.get(c["verdict"], c["verdict"]),
            "paper": _paper_text(c), "comparison": "{1} vs {0}".format(*side_labels(c)),
        })  # fmt: skip
    return rows


def claim_table(evidence: dict):
    """The chapter's claims: mean ± sd per variant, paired difference with its 95% CI, n, verdict, paper."""
    from reid.viz.common import make_table

    # the verdict and the effect first: wide tables scroll, and these are what a reader looks for
    columns = ["claim", "verdict", "difference", "95% CI", "n", "comparison", "metric", "baseline", "variant", "paper"]
    rows = [{k: r[k] for k in columns} for r in claim_rows(evidence)]
    rule_notes = sorted({_rule_text(c) for c in evidence.get("claims", [])})
    note = (f"{evidence.get('label', '')}; commit {str(evidence.get('commit', ''))[:10]}. Baseline/variant: mean ± sd over "
            f"seeds; difference: variant − baseline, seed-paired, with its 95% t-interval. Rules: {'; '.join(rule_notes)}.")
    if not evidence.get("meets_min_seeds", True):
        note += f" Fewer than {evidence.get('min_seeds', 5)} seeds: a trial, not evidence."
    return make_table(rows, columns=columns, title=f"Claims of {evidence['chapter']} ({evidence.get('label', '')})", note=note)


def _rule_text(claim: dict) -> str:
    r = claim.get("rule", {"name": "ci95"})
    f = _factor(claim)
    if r["name"] == "min_effect":
        return f"min_effect: 95% CI beyond δ = {r['delta'] * f:g} {_unit(claim)}".rstrip()
    if r["name"] == "equivalence":
        return f"equivalence: 90% CI inside ±{r['margin'] * f:g} {_unit(claim)}".rstrip()
    if r["name"] == "slope":
        return "slope: per-seed slope vs log10(x), 95% CI of the paired difference"
    return "ci95: 95% CI excludes 0"


def comparisons_table(evidence: dict, *, metric: str | None = None, labels: dict | None = None):
    """The benchmark's all-pairs table: Welch's t, df, t critical value, 95% CI, p and Holm-adjusted p."""
    from reid.viz.common import make_table

    labels = labels or {}
    rows = []
    for r in evidence.get("comparisons", []):
        if metric is not None and r["metric"] != metric:
            continue
        f = 100 if r["metric"] in ("rank1", "rank5", "rank10", "mAP", "mAP_trapezoid", "mINP") else 1
        ci = r.get("ci95") or [None, None]
        rows.append({
            "metric": r["metric"], "A": labels.get(r["a"], r["a"]), "B": labels.get(r["b"], r["b"]),
            "B − A": _num(None if r["diff"] is None else r["diff"] * f), "95% CI (Welch)":
            f"[{_num(None if ci[0] is None else ci[0] * f)}, {_num(None if ci[1] is None else ci[1] * f)}]",
            "t": _num(r.get("t"), ".2f"), "df": _num(r.get("df"), ".1f"), "t crit": _num(r.get("t_crit"), ".2f"),
            "p": _num(r.get("p"), ".4f"), "p (Holm)": _num(r.get("p_holm"), ".4f"),
            "different?": "yes" if r.get("significant") else "no",
        })  # fmt: skip
    n_pairs = len({(r["a"], r["b"]) for r in evidence.get("comparisons", [])})
    return make_table(rows, title=f"every pair, Welch's t-test, Holm-corrected over all {n_pairs} pairs ({evidence.get('label', '')})",
                      note="B − A in points; 'different?' means the Holm-adjusted p ≤ 0.05.")


def chapter_link(chapter: str, section: str | None = None) -> str:
    """A MyST cross-reference to a chapter, or to the claim's section when its label is registered
    (a ``(label)=`` target in the chapter, resolved by Sphinx wherever the page is)."""
    return f"{{ref}}`{chapter} <{section}>`" if section else f"{{doc}}`{chapter}`"


def scoreboard_rows(directory: str | Path | None = None) -> list[dict]:
    """Every claim of every evidence file: paper's number, our effect ± CI and n, verdict, chapter link."""
    rows = []
    for chapter in available_evidence(directory):
        ev = load_evidence(chapter, directory)
        for c in ev.get("claims", []):
            unit = _unit(c)
            rows.append({
                "paper": CHAPTER_PAPERS.get(chapter, "–"), "claim": c["id"], "says": c.get("claim", ""),
                "paper's numbers": _paper_text(c),
                "our effect (95% CI), n": f"{_signed(c.get('diff_mean'), c)}{' ' + unit if unit else ''} "
                                          f"{c['metric']} {format_ci(c)}, n = {c['n']}",
                "verdict": VERDICT_MARKS.get(c["verdict"], c["verdict"]),
                "chapter": chapter_link(chapter, c.get("section")),
                "_chapter": chapter, "_verdict": c["verdict"], "_label": ev.get("label", ""),
            })  # fmt: skip
    return rows


def scoreboard_table(directory: str | Path | None = None):
    """The book's scoreboard as a :class:`reid.viz.Table` (None when no evidence exists yet)."""
    from reid.viz.common import make_table

    rows = scoreboard_rows(directory)
    if not rows:
        return None
    columns = ["paper", "claim", "verdict", "our effect (95% CI), n", "chapter", "paper's numbers", "says"]
    labels = sorted({r["_label"] for r in rows})
    return make_table([{k: r[k] for k in columns} for r in rows], columns=columns,
                      title="Every registered claim of the five papers",
                      note=f"Our effects: {'; '.join(labels)}. Paper's numbers: as printed, on the paper's dataset. "
                           "A verdict is about SynthReID at the scale run, never about Market-1501.")


def overview_table(directory: str | Path | None = None):
    """One row per chapter: evidence or not, claims by verdict, seeds, commit, the study's wall time."""
    from reid.viz.common import make_table

    have = set(available_evidence(directory))
    rows = []
    for chapter in [*CHAPTER_PAPERS, "benchmark"]:
        if chapter not in have:
            rows.append({"chapter": chapter_link(chapter), "paper": CHAPTER_PAPERS.get(chapter, "–"),
                         "evidence": f"none yet: `reid study {chapter}`"})
            continue
        ev = load_evidence(chapter, directory)
        verdicts = [c["verdict"] for c in ev.get("claims", [])]
        timings = ev.get("timings") or {}
        commit = str(ev.get("commit", ""))[:10]
        if ev.get("code_changes"):  # runs of several commits: say what differs between them
            changed = sorted({f for files in ev["code_changes"]["changes"].values() for f in files})
            files = (", ".join(f"`{f.removeprefix('reid/')}`" for f in changed) if len(changed) <= 4
                     else f"{len(changed)} files")
            commit = f"{len(ev.get('run_commits', []))} commits; reid/ differs in {files if changed else 'no file'}"
        wall, cpu = timings.get("study_wall_seconds"), timings.get("runs_cpu_seconds")
        rows.append({
            "chapter": chapter_link(chapter), "paper": CHAPTER_PAPERS.get(chapter, "–"), "evidence": ev.get("label", ""),
            "claims": len(verdicts), "supported": verdicts.count("supported"),
            "contradicted": verdicts.count("contradicted"), "inconclusive": verdicts.count("inconclusive"),
            "commit": commit, "training CPU (min)": None if cpu is None else round(cpu / 60, 1),
            "logged wall time (min)": None if wall is None else round(wall / 60, 1),
        })  # fmt: skip
    columns = ["chapter", "paper", "evidence", "claims", "supported", "contradicted", "inconclusive", "commit",
               "training CPU (min)", "logged wall time (min)"]
    return make_table(rows, columns=columns, title="Studies", formats={"training CPU (min)": "{:.0f}",
                                                                      "logged wall time (min)": "{:.1f}"},
                      note="Commit: the one every run of the study was trained at; for a study whose runs span several "
                           "commits, the package files that differ between them (evidence/<chapter>.json: code_changes). "
                           "Training CPU: the sum over every run of the study (one thread each). Logged wall time: the "
                           "`reid study` sessions recorded in sessions.jsonl, on a 2-core machine shared with other "
                           "work; sessions of runs copied in from another checkout are not in it.")


# ------------------------------------------------------------------------------------ glue
_CLAIM_SUFFIXES = ("verdict", "summary", "diff", "ci", "ci_lo", "ci_hi", "n", "unit", "baseline_mean", "baseline_sd",
                   "variant_mean", "variant_sd", "paper")
_CHAPTER_SUFFIXES = ("label", "commit", "wall_minutes", "claims", "contradicted", "inconclusive", "supported",
                     "verdict_counts", "contradicted_list", "inconclusive_list")
#: The order a chapter's results report verdicts in: what the evidence goes against first.
VERDICT_ORDER = ("contradicted", "inconclusive", "supported")


_POSTHOC_SUFFIXES = ("commit", "cpu_minutes")


def glue_keys(chapter: str, claim_ids: Iterable[str], posthoc: Iterable[str] = ()) -> list[str]:
    """Every key :func:`glue_evidence` publishes for ``chapter`` with these claims and post-hoc
    analyses (see the module docstring)."""
    keys = [f"{chapter}_{s}" for s in _CHAPTER_SUFFIXES]
    keys += [f"{chapter}_posthoc_{name}_{s}" for name in posthoc for s in _POSTHOC_SUFFIXES]
    for cid in claim_ids:
        keys += [f"{cid}_{s}" for s in _CLAIM_SUFFIXES]
    return keys


def glue_values(evidence: dict) -> dict[str, Any]:
    """``{glue key: value}`` for an evidence document (what :func:`glue_evidence` publishes)."""
    chapter = evidence["chapter"]
    claims = evidence.get("claims", [])
    wall = (evidence.get("timings") or {}).get("study_wall_seconds")
    out: dict[str, Any] = {
        f"{chapter}_label": evidence.get("label", ""),
        f"{chapter}_commit": str(evidence.get("commit", ""))[:10],
        f"{chapter}_wall_minutes": None if wall is None else round(wall / 60, 1),
        f"{chapter}_claims": len(claims),
    }
    for v in VERDICT_ORDER:
        out[f"{chapter}_{v}"] = sum(c["verdict"] == v for c in claims)
    out[f"{chapter}_verdict_counts"] = ", ".join(f"{out[f'{chapter}_{v}']} {v}" for v in VERDICT_ORDER)
    for v in ("contradicted", "inconclusive"):
        out[f"{chapter}_{v}_list"] = ", ".join(c["id"] for c in claims if c["verdict"] == v) or "none"
    for name, info in (evidence.get("posthoc") or {}).items():
        out[f"{chapter}_posthoc_{name}_commit"] = ", ".join(str(c)[:10] for c in info["commits"])
        out[f"{chapter}_posthoc_{name}_cpu_minutes"] = None if info["cpu_seconds"] is None else round(info["cpu_seconds"] / 60, 1)
    for c in claims:
        ci = c.get("ci95") or [None, None]
        cid = c["id"]
        out.update({
            f"{cid}_verdict": c["verdict"], f"{cid}_summary": _summary(c), f"{cid}_diff": _disp(c.get("diff_mean"), c),
            f"{cid}_ci": format_ci(c), f"{cid}_ci_lo": _disp(ci[0], c), f"{cid}_ci_hi": _disp(ci[1], c),
            f"{cid}_n": c["n"], f"{cid}_unit": _unit(c),
            f"{cid}_baseline_mean": _disp(c.get("baseline_mean"), c), f"{cid}_baseline_sd": _disp(c.get("baseline_sd"), c),
            f"{cid}_variant_mean": _disp(c.get("variant_mean"), c), f"{cid}_variant_sd": _disp(c.get("variant_sd"), c),
            f"{cid}_paper": _paper_text(c),
        })  # fmt: skip
    return out


def glue_evidence(evidence: dict, *, display: bool = False) -> dict[str, Any]:
    """``myst_nb.glue`` every value of :func:`glue_values` (hidden by default); returns them."""
    from myst_nb import glue

    values = glue_values(evidence)
    for key, value in values.items():
        glue(key, value, display=display)
    return values
