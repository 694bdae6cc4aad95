"""Chapters may state only the verdicts their evidence holds; evidence files must hold the verdicts their numbers give.

The rules, for every notebook source ``notebooks/<name>.py`` (jupytext percent format):

1. **Verdicts come from glue.** In markdown cells, the words *supported*, *contradicted* and
   *inconclusive* (any case, as whole words) may appear only inside a myst-nb glue role
   (``{glue:text}`claim_verdict` ``), inside inline code (```supported``` — naming the label
   while explaining the rules), or inside a fenced code block. Anywhere else the chapter would be
   stating a verdict by hand. Ordinary words that merely contain them ("unsupported") are
   not whole words and pass.
2. **No "within noise" without the interval.** A markdown paragraph that says "within noise"
   (also "within seed noise", "within seed-to-seed noise", "within the noise") must quote a
   glued interval in the same paragraph (a glue key ending in ``_ci``, ``_ci_lo``, ``_ci_hi`` or
   ``_summary``). In code cells, a plain string constant saying so is refused (an f-string that
   interpolates the interval passes).
3. **Every glue key a chapter references exists.** Keys referenced by glue roles/directives are
   either glued by the notebook itself (a literal ``glue("key", ...)`` call) or published by
   :func:`reid.study.report.glue_evidence` for a chapter the notebook loads
   (``load_evidence("<chapter>")``): from the evidence file when it exists, else from the
   chapter's registry (so a chapter can be written before its study has run; the notebook
   itself then stops at ``load_evidence`` with "run `reid study <chapter>`").
4. **Evidence files are self-consistent.** For every committed ``evidence/<chapter>.json``,
   each claim's statistics and verdict are recomputed from its stored per-seed values with its
   stored rule; a hand-edited verdict or number fails.
5. **Evidence files are their runs.** Each committed evidence file equals what
   :func:`reid.study.evidence.aggregate` builds now from the committed runs under
   ``evidence/<chapter>/`` (``results.json``, ``analyses/*.json``) and the registry: a per-seed
   value, a claim or a registry change that the file does not reflect fails.

Each rule is also tested on small hand-made texts below, so the checker itself can fail.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import jupytext
import pytest

from reid.study.report import glue_keys
from reid.study.stats import decide, run_slopes

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for p in (REPO / "notebooks").glob("*.py") if p.name != "conftest.py")
EVIDENCE = sorted((REPO / "evidence").glob("*.json")) if (REPO / "evidence").is_dir() else []

VERDICT_WORD = re.compile(r"\b(supported|contradicted|inconclusive)\b", re.IGNORECASE)
NOISE = re.compile(r"\bwithin\s+(?:the\s+)?(?:seed[\s-]+(?:to[\s-]+seed[\s-]+)?)?noise\b", re.IGNORECASE)
GLUE_ROLE = re.compile(r"\{glue(?::[a-z]*)?\}`([^`]+)`")
GLUE_DIRECTIVE = re.compile(r"^\s*(?:```|:::)\{glue(?::[a-z]*)?\}\s+(\S+)", re.MULTILINE)
FENCE = re.compile(r"^(\s*)(```|~~~|:::)[^\n]*\n.*?^\1\2\s*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
INTERVAL_KEY = re.compile(r"_(ci|ci_lo|ci_hi|summary)$")


def _key(role_text: str) -> str:
    """``"doc::key:.1f"`` -> ``"key"``."""
    return role_text.split("::")[-1].split(":")[0].strip()


def markdown_problems(text: str) -> list[str]:
    """Rules 1 and 2 on one markdown cell."""
    problems = []
    for paragraph in re.split(r"\n\s*\n", FENCE.sub("", text)):
        keys = [_key(k) for k in GLUE_ROLE.findall(paragraph)]
        bare = INLINE_CODE.sub("", GLUE_ROLE.sub("", paragraph))
        for m in VERDICT_WORD.finditer(bare):
            problems.append(f"verdict word {m.group(0)!r} typed by hand (glue it): {_excerpt(bare, m.start())}")
        for m in NOISE.finditer(bare):
            if not any(INTERVAL_KEY.search(k) for k in keys):
                problems.append(f"{m.group(0)!r} without a glued interval in the paragraph: {_excerpt(bare, m.start())}")
    return problems


def code_problems(source: str) -> list[str]:
    """Rule 2 on one code cell: plain string constants that claim "within noise"."""
    try:
        tree = ast.parse(_strip_magics(source))
    except SyntaxError:
        return []
    formatted = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for v in node.values}
    return [f"code string says {m.group(0)!r} with no interval: {_excerpt(node.value, m.start())}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in formatted
            for m in NOISE.finditer(node.value)]


def _strip_magics(source: str) -> str:
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def _excerpt(text: str, at: int) -> str:
    return " ".join(text[max(0, at - 60): at + 60].split())


def referenced_keys(markdown: list[str]) -> set[str]:
    keys = set()
    for text in markdown:
        keys |= {_key(k) for k in GLUE_ROLE.findall(text)}
        keys |= {_key(k) for k in GLUE_DIRECTIVE.findall(text)}
    return keys


def provided_keys(code: list[str]) -> tuple[set[str], list[str]]:
    """Keys glued literally by the notebook, and the chapters whose evidence it loads."""
    source = "\n".join(code)
    own = set(re.findall(r"\bglue\(\s*[\"']([^\"']+)[\"']", source))
    chapters = re.findall(r"\bload_evidence\(\s*[\"']([^\"']+)[\"']", source)
    return own, chapters


def evidence_keys(chapter: str) -> set[str]:
    path = REPO / "evidence" / f"{chapter}.json"
    if path.is_file():
        evidence = json.loads(path.read_text())
        claims, posthoc = [c["id"] for c in evidence["claims"]], list(evidence.get("posthoc", {}))
    else:
        from reid.study.registry import load_study

        study = load_study(chapter, check_recipes=False)
        claims, posthoc = [c.id for c in study.claims], list(study.posthoc)
    return set(glue_keys(chapter, claims, posthoc))


def _cells(path: Path) -> tuple[list[str], list[str]]:
    nb = jupytext.read(path)
    md = [c.source for c in nb.cells if c.cell_type == "markdown"]
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    return md, code


#: Chapters that still assert "within seed-to-seed noise" without an interval (the anecdotes issue 10
#: lists); their authors are rewriting those sections. Strict xfail: once a chapter passes, this
#: test fails until its name is deleted here, so the list can only shrink.
PENDING_REWRITE: set[str] = set()


def _pending(paths):
    reason = ("states 'within noise' without an interval (issue 10); once fixed, delete it from PENDING_REWRITE "
              "in tests/test_study_chapters.py")
    return [pytest.param(p, id=p.stem, marks=pytest.mark.xfail(strict=True, reason=reason))
            if p.stem in PENDING_REWRITE else pytest.param(p, id=p.stem) for p in paths]


# ------------------------------------------------------------------------------ the chapters
@pytest.mark.parametrize("path", _pending(SOURCES))
def test_chapter_states_no_verdict_by_hand(path):
    md, code = _cells(path)
    problems = [p for text in md for p in markdown_problems(text)] + [p for src in code for p in code_problems(src)]
    assert not problems, f"{path.name}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("path", SOURCES, ids=[p.stem for p in SOURCES])
def test_every_glue_key_a_chapter_quotes_exists(path):
    md, code = _cells(path)
    wanted = referenced_keys(md)
    own, chapters = provided_keys(code)
    available = set(own)
    for chapter in chapters:
        available |= evidence_keys(chapter)
    missing = sorted(wanted - available)
    assert not missing, (f"{path.name} quotes glue keys that neither the notebook nor the evidence of "
                         f"{chapters or 'any loaded chapter'} provides: {missing}")


@pytest.mark.parametrize("path", EVIDENCE, ids=[p.stem for p in EVIDENCE])
def test_evidence_file_verdicts_follow_from_its_numbers(path):
    ev = json.loads(path.read_text())
    assert ev["chapter"] == path.stem
    for c in ev["claims"]:
        base, var = c["baseline_values"], c["variant_values"]
        if None in base or None in var:  # a change_ratio seed without a ratio (reid.study.registry)
            assert c["undefined_seeds"] and c["ci95"] is None and c["verdict"] == "inconclusive", c["id"]
            continue
        if c["rule"]["name"] == "slope":
            base = run_slopes(c["baseline_curves"], c["x"], c.get("x_scale", "log10"))
            var = run_slopes(c["variant_curves"], c["x"], c.get("x_scale", "log10"))
            assert base == pytest.approx(c["baseline_values"], abs=2e-6), c["id"]
        d = decide(c["rule"], c["expected"], base, var)
        assert d.verdict == c["verdict"], f"{path.name}: claim {c['id']} says {c['verdict']}, its numbers give {d.verdict}"
        assert c["n"] == len(c["seeds"]) == len(base) and c["diff_mean"] == pytest.approx(d.ci95.mean, abs=2e-6)
        if c["ci95"] is not None:
            assert c["ci95"] == pytest.approx([d.ci95.lo, d.ci95.hi], abs=2e-6), c["id"]


@pytest.mark.parametrize("path", EVIDENCE, ids=[p.stem for p in EVIDENCE])
def test_evidence_file_is_the_aggregate_of_its_committed_runs(path):
    from reid.study.evidence import aggregate
    from reid.study.registry import load_study

    committed = json.loads(path.read_text())
    rebuilt = json.loads(json.dumps(aggregate(load_study(path.stem), REPO / "evidence"), sort_keys=True))
    if "unknown" in str(rebuilt.get("code_changes")):  # a shallow clone lacks the old commits git diff needs
        rebuilt["code_changes"] = committed.get("code_changes")
    differing = sorted(k for k in set(committed) | set(rebuilt) if committed.get(k) != rebuilt.get(k))
    assert not differing, (f"{path.name} differs from the aggregate of its runs in {differing}; "
                           f"rebuild it with `reid study {path.stem} --aggregate-only`")


# ------------------------------------------------------------------------------ the checker itself
@pytest.mark.parametrize("text", [
    "SN beats batch-hard: supported.",
    "The claim is **Contradicted** at this scale.",
    "Differences are within seed-to-seed noise.",
    "It is within noise ({glue:text}`x_diff`).",  # a glued number is not an interval
])  # fmt: skip
def test_checker_flags_hand_typed_verdicts(text):
    assert markdown_problems(text)


@pytest.mark.parametrize("text", [
    "SN beats batch-hard: {glue:text}`sn_beats_bh_map_verdict`.",
    "A claim is `supported` when its whole interval lies on the expected side.",
    "The gap is within seed noise: {glue:text}`sn_gap_ci` (95% CI).",
    "Equivalence is the rule for claims of no difference; unsupported readings are listed in the errata.",
    "```text\nsupported\n```",
])  # fmt: skip
def test_checker_passes_glued_or_quoted_words(text):
    assert markdown_problems(text) == []


def test_checker_on_code_and_keys():
    assert code_problems('note = "differences of a few points are within seed-to-seed noise."')
    assert code_problems('note = f"within noise: CI {ci}"') == []
    assert referenced_keys(["{glue:text}`a_verdict` and {glue}`book::b_ci:.1f`", "```{glue:figure} c_plot\n```"]) == {
        "a_verdict", "b_ci", "c_plot"}
    assert provided_keys(['glue("own", 1)\nev = load_evidence("smc_ecd")']) == ({"own"}, ["smc_ecd"])
