"""The claims registry: each chapter's pre-registered study, loaded and validated before any run.

A paper's study lives in ``reid/papers/<paper>.json`` next to its tables (two top-level keys,
``study`` and ``claims``); the benchmark chapter's lives in :mod:`reid.study.benchmark` (the same
structure as a Python dict, since it spans five recipes). Any other JSON file with these two keys
can be passed by path (``reid study path/to/study.json``), which is how the tests use a tiny one.

Schema::

    "study": {
      "chapter":  "support_neighbor",       # the chapter (notebooks/<chapter>.py); evidence/<chapter>.json
      "recipe":   "support_neighbor",       # default recipe of the variants (reid/recipes/<recipe>.yaml)
      "dataset":  "synthreid",              # dataset name; SynthReID is generated from data.synth_preset
      "scale":    "study",                  # recipe scale of every run (smoke | study | full)
      "seeds":    5,                        # n (seeds 0..n-1) or an explicit list; at least 5
      "overrides": {"eval.analyses": [...]},# optional: dotted recipe overrides applied to every variant
      "budget":   {"epochs": 20},           # optional: train every variant this long, each schedule's
                                            #   shape rescaled from its full-scale recipe (benchmark)
      "variants": {                         # variant name -> dotted overrides (as `reid train --set`) ...
        "batch_hard": {"loss.name": "batch_hard"},
        "sn": {"recipe": "support_neighbor", "overrides": {"loss.name": "support_neighbor"}}
      },                                    # ... or {"recipe": R, "overrides": {...}} (another recipe)
      "comparisons": {                      # optional (benchmark): every pair of variants,
        "metrics": ["mAP", "rank1"],        #   Welch's t-test, Holm-corrected over all pairs
        "test": "welch", "correction": "holm", "alpha": 0.05
      },
      "posthoc": {"distractor_curve": ["batch_hard", "sn"]},
                                            # optional: analyses run on the *finished* runs of these
                                            #   variants (reid.engine.reanalysis: <run>/analyses/<name>.json,
                                            #   its own provenance), for analyses too costly for training time;
                                            #   claims read their metrics as "<analysis>.<metric>"
      "notes": ["..."],                     # optional: sentences for the reader (not used by the runner)
      "selection": {...}                    # optional: the validation-split selection of the values the
                                            #   paper does not state (schema: reid.study.selection)
    },
    "claims": [{
      "id": "sn_beats_bh_map",              # stable, [a-z0-9_], unique; glue keys start with it
      "claim": "one sentence",              # what the paper says
      "source": "Table 1",                  # where: table, figure, section
      "section": "results",                 # optional: anchor of the chapter section (scoreboard link)
      "paper": {"baseline": 69.14, "variant": 73.43, "metric": "mAP", "dataset": "Market-1501"},
                                            # optional/null: the paper's own numbers (scoreboard)
      "test": {
        "baseline": "batch_hard", "variant": "sn",   # variant names of the study
        "metric": "mAP",                    # key of results.json "metrics" (an analysis may add keys)
        "expected": "greater",              # variant − baseline: greater | less (equal: equivalence rule)
        "rule": {"name": "ci95"}            # optional, default ci95; see reid.study.stats:
                                            #   {"name": "min_effect", "delta": 0.02}
                                            #   {"name": "equivalence", "margin": 0.01} (expected "equal")
                                            #   {"name": "slope", "x": [10, 100, 1000],
                                            #    "metrics": ["gallery_mAP@10", ...], "x_scale": "log10"}
        # optional, at most one of the three (not with the slope rule); each seed's pair of values
        # the rule compares is then built from several runs of that seed:
        "baseline_metric": "jb_mAP",        # the baseline reads this metric, the variant test.metric
        "minus": {"baseline": "bh_2cam", "variant": "sn_2cam"},
                                            # difference in differences: the rule decides
                                            #   (variant − baseline) − (minus.variant − minus.baseline)
        "change_ratio": {"reference": "softmax", "numerator": "neg_interest_k10",
                         "denominator": "rank1", "factor": -1}
                                            # each side L becomes factor · (L[numerator] − ref[numerator])
                                            #   / (L[denominator] − ref[denominator]) against the same
                                            #   seed's reference run; test.metric is then only its label
      }
    }]

Values are compared **as stored** in ``results.json``: rank-k, mAP and mINP are fractions in
[0, 1], so a minimum effect of 2 mAP points is ``"delta": 0.02``. :func:`load_study` checks
everything that can be checked without running: every variant's overrides resolve to a valid
recipe at the study's scale (:func:`reid.recipes.load_recipe`), each claim names existing
variants, a known metric (a standard one, or one that an ``eval.analyses`` entry of every
variant it reads declares), a known ``expected`` and a known rule with its parameters. Each
problem raises one :class:`~reid.errors.ConfigError` naming the file, the claim and the fix.

The three optional test keys keep the verdict machinery unchanged: each builds, per seed, the
pair (baseline value, variant value) that the rule compares, so the evidence file stores them as
``baseline_values`` / ``variant_values`` and anyone recomputes the verdict from those alone.

* ``baseline_metric`` compares two different metrics of two variants (e.g. one loss with a learned
  metric against another with the plain cosine); both should share a unit.
* ``minus`` asks whether an effect is larger in one setting than in another: the pair is
  (minus.variant − minus.baseline, variant − baseline), so the paired difference is the
  difference in differences; with ``ci95`` it is decided like any other difference.
* ``change_ratio`` compares a derived per-seed ratio (e.g. "reduction of same-camera errors per
  point of rank-1 gained over softmax"). A seed whose denominator change is exactly 0 has no
  ratio (``null`` in the evidence) and the claim is then ``inconclusive`` with no interval: the
  ratio of that seed is undefined, and dropping the seed would break the pairing.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reid.errors import ConfigError
from reid.study.stats import EXPECTED, RULES, X_SCALES

__all__ = [
    "MIN_SEEDS", "STANDARD_METRICS", "FRACTION_METRICS", "Study", "Variant", "Claim",
    "load_study", "study_chapters", "registry_path", "claim_metrics", "claim_reads", "COMBINATIONS", "is_fraction",
]  # fmt: skip

#: The standard: a claim is decided on at least this many seeds.
MIN_SEEDS = 5
#: Keys of results.json "metrics" written by every run (reid.engine.evaluation).
STANDARD_METRICS = ("rank1", "rank5", "rank10", "mAP", "mAP_trapezoid", "mINP")
#: Metrics stored as fractions in [0, 1] (shown x100 as percent / points); analyses add theirs
#: with ``register_analysis(..., fractions=...)`` (:func:`is_fraction`).
FRACTION_METRICS = frozenset(STANDARD_METRICS)
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_VARIANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_STUDY_KEYS = {"chapter", "recipe", "dataset", "scale", "seeds", "overrides", "budget", "variants", "comparisons",
               "notes", "selection", "posthoc"}
_CLAIM_KEYS = {"id", "claim", "source", "section", "paper", "test"}
#: optional test keys that build each seed's (baseline, variant) pair from other runs / metrics
COMBINATIONS = ("baseline_metric", "minus", "change_ratio")
_TEST_KEYS = {"baseline", "variant", "metric", "expected", "rule", *COMBINATIONS}


@dataclass(frozen=True)
class Variant:
    """One arm of a study: a recipe and the dotted overrides that select it."""

    name: str
    recipe: str
    overrides: dict[str, Any]

    def resolved(self, scale: str) -> dict:
        from reid.recipes import load_recipe

        return load_recipe(self.recipe, scale, self.overrides)


@dataclass(frozen=True)
class Claim:
    """A pre-registered claim: the paper's sentence and its test."""

    id: str
    claim: str
    source: str
    baseline: str
    variant: str
    metric: str
    expected: str
    rule: dict
    paper: dict | None = None
    section: str | None = None
    baseline_metric: str | None = None
    minus: dict | None = None
    change_ratio: dict | None = None

    def as_dict(self) -> dict:
        test = {"baseline": self.baseline, "variant": self.variant, "metric": self.metric, "expected": self.expected,
                "rule": self.rule}
        test.update({k: getattr(self, k) for k in COMBINATIONS if getattr(self, k) is not None})
        return {"id": self.id, "claim": self.claim, "source": self.source, "section": self.section,
                "paper": self.paper, "test": test}


@dataclass(frozen=True)
class Study:
    """A validated study: where it came from, its variants (resolved overrides) and its claims."""

    chapter: str
    source: str  # the registry file (or module) it was read from
    dataset: str
    scale: str
    seeds: tuple[int, ...]
    variants: dict[str, Variant]
    claims: tuple[Claim, ...]
    budget: dict | None = None
    comparisons: dict | None = None
    paper: str | None = None
    title: str | None = None
    configs: dict[str, dict] = field(default_factory=dict, repr=False, compare=False)
    notes: tuple[str, ...] = ()
    selection: dict | None = field(default=None, repr=False, compare=False)
    #: analysis name -> the variants whose finished runs it is run on (after training)
    posthoc: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def posthoc_for(self, variant: str) -> list[str]:
        """The post-hoc analyses registered for ``variant``'s runs."""
        return [name for name, variants in self.posthoc.items() if variant in variants]

    def claim(self, claim_id: str) -> Claim:
        for c in self.claims:
            if c.id == claim_id:
                return c
        raise ConfigError(f"{self.source}: no claim {claim_id!r}; claims: {', '.join(c.id for c in self.claims)}.")


# ------------------------------------------------------------------------------------ loading
def study_chapters() -> dict[str, str]:
    """Chapters that have a registered study: chapter -> registry source."""
    from reid.papers import PAPER_IDS, PAPERS_DIR

    out = {}
    for chapter, pid in PAPER_IDS.items():
        path = PAPERS_DIR / f"{pid}.json"
        try:
            if "study" in json.loads(path.read_text(encoding="utf-8")):
                out[chapter] = str(path)
        except (OSError, json.JSONDecodeError):
            continue
    out["benchmark"] = "reid.study.benchmark"
    return out


def registry_path(chapter: str) -> str:
    """Where ``chapter``'s registry lives (a paper JSON file, or ``reid.study.benchmark``)."""
    from reid.papers import PAPER_IDS, PAPERS_DIR

    if chapter == "benchmark":
        return "reid.study.benchmark"
    if chapter in PAPER_IDS:
        return str(PAPERS_DIR / f"{PAPER_IDS[chapter]}.json")
    if chapter.endswith(".json"):
        return chapter
    raise ConfigError(
        f"unknown study {chapter!r}: give a chapter ({', '.join([*PAPER_IDS, 'benchmark'])}) or the path "
        "of a registry JSON file."
    )


def _read(chapter: str) -> tuple[str, dict]:
    where = registry_path(chapter)
    if where == "reid.study.benchmark":
        from reid.study.benchmark import REGISTRY

        return where, copy.deepcopy(REGISTRY)
    path = Path(where)
    if not path.is_file():
        raise ConfigError(f"no registry file {path}: check the chapter name or the path.")
    try:
        return str(path), json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}); fix the file.") from exc


def load_study(chapter: str, *, scale: str | None = None, seeds: int | list[int] | None = None,
               variants: list[str] | None = None, budget: int | None = None, check_recipes: bool = True) -> Study:
    """The validated study of ``chapter`` (a chapter name or a registry JSON path).

    ``scale`` / ``seeds`` / ``budget`` (epochs) replace the registered ones (``seeds`` may then be fewer than
    :data:`MIN_SEEDS`: a trial, not evidence, and the evidence file says so); ``variants`` keeps
    only the named variants and the claims between them. ``check_recipes=False`` skips resolving
    every variant's recipe (used when only reading evidence).
    """
    source, raw = _read(chapter)
    where = source
    if not isinstance(raw, dict) or not isinstance(raw.get("study"), dict):
        raise ConfigError(f"{where}: no 'study' object; add one (schema in reid/study/registry.py).")
    study = raw["study"]
    unknown = sorted(set(study) - _STUDY_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown study key(s) {unknown}; valid: {sorted(_STUDY_KEYS)}.")
    for key in ("chapter", "recipe", "dataset", "scale", "variants"):
        if key not in study:
            raise ConfigError(f"{where}: study.{key} is missing; add it (schema in reid/study/registry.py).")
    from reid.recipes import RECIPES, SCALES

    chap = study["chapter"]
    if chapter in _chapters() and chap != chapter:
        raise ConfigError(f"{where}: study.chapter is {chap!r} but the file belongs to chapter {chapter!r}; fix it.")
    run_scale = scale if scale is not None else study["scale"]
    if run_scale not in SCALES:
        raise ConfigError(f"{where}: scale {run_scale!r} is not one of {', '.join(SCALES)}.")
    seed_list = _seeds(where, seeds if seeds is not None else study.get("seeds", MIN_SEEDS), registered=seeds is None)

    common = study.get("overrides") or {}
    if not isinstance(common, dict):
        raise ConfigError(f"{where}: study.overrides must be an object of dotted keys, e.g. {{\"eval.analyses\": []}}.")
    if not isinstance(study["variants"], dict) or len(study["variants"]) < 1:
        raise ConfigError(f"{where}: study.variants must map variant names to recipe overrides.")
    budget = _budget(where, {"epochs": budget} if budget is not None else study.get("budget"))
    all_variants: dict[str, Variant] = {}
    for name, spec in study["variants"].items():
        if not _VARIANT.match(name):
            raise ConfigError(f"{where}: variant name {name!r} must be letters, digits, '_', '.', '+' or '-' (it names a folder).")
        recipe, overrides = _variant_spec(where, name, spec, study["recipe"])
        if recipe not in RECIPES:
            raise ConfigError(f"{where}: variant {name!r} uses unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}.")
        all_variants[name] = Variant(name, recipe, {**common, **overrides})

    posthoc = _posthoc(where, study.get("posthoc"), all_variants)
    claims = [_claim(where, i, c, all_variants) for i, c in enumerate(_claims_list(where, raw))]
    ids = [c.id for c in claims]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ConfigError(f"{where}: claim id(s) {dup} appear twice; make every id unique.")

    if variants:
        missing = [v for v in variants if v not in all_variants]
        if missing:
            raise ConfigError(f"{where}: no variant(s) {missing}; variants: {', '.join(all_variants)}.")
        keep = {v: all_variants[v] for v in all_variants if v in variants}
        claims = [c for c in claims if set(claim_reads(c)) <= set(keep)]
    else:
        keep = all_variants
    posthoc = {name: tuple(v for v in vs if v in keep) for name, vs in posthoc.items()}
    posthoc = {name: vs for name, vs in posthoc.items() if vs}
    comparisons = _comparisons(where, study.get("comparisons"))

    configs: dict[str, dict] = {}
    if check_recipes:
        if budget:
            from reid.study.budget import budget_overrides

            keep = {n: Variant(n, v.recipe, {**budget_overrides(v.recipe, budget["epochs"]), **v.overrides})
                    for n, v in keep.items()}
        for name, v in keep.items():
            try:
                configs[name] = v.resolved(run_scale)
            except ConfigError as exc:
                raise ConfigError(
                    f"{where}: variant {name!r} (recipe {v.recipe}, scale {run_scale}) is not a valid recipe: {exc} "
                    "Fix the variant's overrides (or the study's common overrides)."
                ) from None
        for c in claims:
            for role, metrics in claim_reads(c).items():
                _check_metrics(where, f"claim {c.id!r}", metrics, (role,), configs, posthoc)
        if comparisons:
            _check_metrics(where, "study.comparisons", comparisons["metrics"], list(keep), configs, posthoc)
    notes = _notes(where, study.get("notes"))
    selection = study.get("selection")
    if selection is not None:
        from reid.study.selection import check_selection

        selection = check_selection(where, selection, all_variants)
    meta = {k: raw.get(k) for k in ("paper", "title")}
    return Study(chap, source, study["dataset"], run_scale, tuple(seed_list), keep, tuple(claims),
                 budget, comparisons, meta["paper"], meta["title"], configs, notes, selection, posthoc)


def _posthoc(where: str, spec: Any, variants: dict[str, Variant]) -> dict[str, tuple[str, ...]]:
    """``study.posthoc``: analysis name -> variants, every name registered and every variant known."""
    from reid.engine.analyses import ANALYSES

    if spec is None:
        return {}
    example = '{"distractor_curve": ["batch_hard", "support_neighbor"]}'
    if not isinstance(spec, dict) or not all(isinstance(v, list) and v and all(isinstance(x, str) for x in v)
                                             for v in spec.values()):
        raise ConfigError(f"{where}: study.posthoc must map analysis names to lists of variants, e.g. {example}.")
    for name, names in spec.items():
        if name not in ANALYSES:
            raise ConfigError(f"{where}: study.posthoc: unknown analysis {name!r}; registered: {', '.join(sorted(ANALYSES))}.")
        missing = [v for v in names if v not in variants]
        if missing:
            raise ConfigError(f"{where}: study.posthoc.{name}: no variant {missing[0]!r}; variants: {', '.join(variants)}.")
        during = [v for v in names if name in variants[v].overrides.get("eval.analyses", [])]
        if during:
            raise ConfigError(f"{where}: study.posthoc.{name}: variant {during[0]!r} already runs it during training "
                              "(eval.analyses); keep one of the two.")
    return {name: tuple(names) for name, names in spec.items()}


def _chapters() -> set[str]:
    from reid.papers import PAPER_IDS

    return {*PAPER_IDS, "benchmark"}


def _seeds(where: str, seeds: Any, *, registered: bool) -> list[int]:
    if isinstance(seeds, bool) or not isinstance(seeds, (int, list)):
        raise ConfigError(f"{where}: seeds must be a count (5 -> seeds 0..4) or a list of seeds, got {seeds!r}.")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    if not seed_list or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seed_list):
        raise ConfigError(f"{where}: seeds must be non-negative integers, got {seeds!r}.")
    if len(set(seed_list)) != len(seed_list):
        raise ConfigError(f"{where}: seeds {seed_list} repeat a seed; list each once.")
    if registered and len(seed_list) < MIN_SEEDS:
        raise ConfigError(f"{where}: study.seeds gives {len(seed_list)} seeds; register at least {MIN_SEEDS} "
                          "(fewer only as a trial, with `reid study --seeds N`).")
    return sorted(seed_list)


def _notes(where: str, notes: Any) -> tuple[str, ...]:
    if notes is None:
        return ()
    if not isinstance(notes, list) or not all(isinstance(n, str) and n.strip() for n in notes):
        raise ConfigError(f"{where}: study.notes must be a list of sentences (non-empty strings).")
    return tuple(n.strip() for n in notes)


def _budget(where: str, budget: Any) -> dict | None:
    if budget is None:
        return None
    if not isinstance(budget, dict) or set(budget) != {"epochs"}:
        raise ConfigError(f"{where}: study.budget must be {{\"epochs\": N}}, got {budget!r}.")
    e = budget["epochs"]
    if isinstance(e, bool) or not isinstance(e, int) or e < 1:
        raise ConfigError(f"{where}: study.budget.epochs must be a positive integer, got {e!r}.")
    return dict(budget)


def _variant_spec(where: str, name: str, spec: Any, default_recipe: str) -> tuple[str, dict]:
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: variant {name!r} must be an object of dotted overrides, got {spec!r}.")
    if "overrides" in spec or "recipe" in spec:
        extra = sorted(set(spec) - {"recipe", "overrides"})
        if extra:
            raise ConfigError(f"{where}: variant {name!r} mixes the {{\"recipe\", \"overrides\"}} form with {extra}; "
                              "put the dotted keys inside \"overrides\".")
        overrides = spec.get("overrides") or {}
        if not isinstance(overrides, dict):
            raise ConfigError(f"{where}: variant {name!r}: overrides must be an object of dotted keys.")
        return spec.get("recipe", default_recipe), dict(overrides)
    return default_recipe, dict(spec)


def _claims_list(where: str, raw: dict) -> list:
    claims = raw.get("claims", [])
    if not isinstance(claims, list):
        raise ConfigError(f"{where}: 'claims' must be a list of claim objects.")
    return claims


def _claim(where: str, index: int, c: Any, variants: dict[str, Variant]) -> Claim:
    if not isinstance(c, dict):
        raise ConfigError(f"{where}: claims[{index}] must be an object with id, claim, source and test.")
    cid = c.get("id")
    if not isinstance(cid, str) or not _ID.match(cid):
        raise ConfigError(f"{where}: claims[{index}] has id {cid!r}; use lower-case letters, digits and '_' "
                          "(it becomes a glue key), e.g. \"sn_beats_bh_map\".")
    here = f"{where}: claim {cid!r}"
    unknown = sorted(set(c) - _CLAIM_KEYS)
    if unknown:
        raise ConfigError(f"{here}: unknown key(s) {unknown}; valid: {sorted(_CLAIM_KEYS)}.")
    for key in ("claim", "source"):
        if not isinstance(c.get(key), str) or not c[key].strip():
            raise ConfigError(f"{here}: '{key}' must be a non-empty string.")
    paper = c.get("paper")
    if paper is not None and not isinstance(paper, dict):
        raise ConfigError(f"{here}: 'paper' must be an object like {{\"baseline\": 69.1, \"variant\": 73.4, "
                          "\"metric\": \"mAP\", \"dataset\": \"Market-1501\"}} or null.")
    test = c.get("test")
    if not isinstance(test, dict):
        raise ConfigError(f"{here}: 'test' is missing; add {{\"baseline\", \"variant\", \"metric\", \"expected\", \"rule\"}}.")
    unknown = sorted(set(test) - _TEST_KEYS)
    if unknown:
        raise ConfigError(f"{here}: unknown test key(s) {unknown}; valid: {sorted(_TEST_KEYS)}.")
    for role in ("baseline", "variant"):
        v = test.get(role)
        if v not in variants:
            raise ConfigError(f"{here}: test.{role} {v!r} is not a variant of the study; variants: {', '.join(variants)}.")
    if test["baseline"] == test["variant"]:
        raise ConfigError(f"{here}: baseline and variant are both {test['baseline']!r}; compare two different variants.")
    metric = test.get("metric")
    if not isinstance(metric, str) or not metric:
        raise ConfigError(f"{here}: test.metric must name a results.json metric, e.g. \"mAP\".")
    rule = test.get("rule") or {"name": "ci95"}
    if not isinstance(rule, dict):
        raise ConfigError(f"{here}: test.rule must be an object like {{\"name\": \"ci95\"}}.")
    name = rule.get("name", "ci95")
    if name not in RULES:
        raise ConfigError(f"{here}: unknown rule {name!r}; choose one of {', '.join(RULES)} (see reid/study/stats.py).")
    required, optional = RULES[name]
    missing = [p for p in required if p not in rule]
    if missing:
        raise ConfigError(f"{here}: rule {name!r} needs parameter(s) {missing}, e.g. {_RULE_EXAMPLES[name]}.")
    extra = sorted(set(rule) - {"name", *required, *optional})
    if extra:
        raise ConfigError(f"{here}: rule {name!r} has unknown parameter(s) {extra}; it takes {[*required, *optional]}.")
    expected = test.get("expected")
    if expected not in EXPECTED[name]:
        raise ConfigError(f"{here}: test.expected is {expected!r}; rule {name!r} needs one of {list(EXPECTED[name])} "
                          "(the direction of variant − baseline).")
    _check_rule_parameters(here, metric, {**rule, "name": name})
    section = c.get("section")
    if section is not None and (not isinstance(section, str) or not section):
        raise ConfigError(f"{here}: 'section' must be the anchor of the chapter's section (a string) or absent.")
    combination = _combination(here, test, name, variants)
    return Claim(cid, c["claim"].strip(), c["source"].strip(), test["baseline"], test["variant"], metric,
                 expected, {**rule, "name": name}, paper, section, **combination)


def _combination(here: str, test: dict, rule: str, variants: dict[str, Variant]) -> dict:
    """The validated optional ``baseline_metric`` / ``minus`` / ``change_ratio`` of a claim's test."""
    given = [k for k in COMBINATIONS if k in test]
    if not given:
        return {}
    if len(given) > 1:
        raise ConfigError(f"{here}: test has {given}; use at most one of {list(COMBINATIONS)}.")
    if rule == "slope":
        raise ConfigError(f"{here}: test.{given[0]} does not combine with the slope rule; drop one of them.")
    key, spec = given[0], test[given[0]]
    sides = (test["baseline"], test["variant"])
    if key == "baseline_metric":
        if not isinstance(spec, str) or not spec:
            raise ConfigError(f"{here}: test.baseline_metric must name a results.json metric, e.g. \"jb_mAP\".")
        if spec == test["metric"]:
            raise ConfigError(f"{here}: test.baseline_metric equals test.metric ({spec!r}); drop it.")
        return {"baseline_metric": spec}
    if key == "minus":
        if not isinstance(spec, dict) or set(spec) != {"baseline", "variant"}:
            raise ConfigError(f"{here}: test.minus must be {{\"baseline\": V1, \"variant\": V2}} (two variants of the study).")
        for role in ("baseline", "variant"):
            if spec[role] not in variants:
                raise ConfigError(f"{here}: test.minus.{role} {spec[role]!r} is not a variant of the study; "
                                  f"variants: {', '.join(variants)}.")
        if spec["baseline"] == spec["variant"]:
            raise ConfigError(f"{here}: test.minus compares {spec['baseline']!r} with itself; name two different variants.")
        if (spec["baseline"], spec["variant"]) == sides:
            raise ConfigError(f"{here}: test.minus repeats the claim's own pair; name the other setting's two variants.")
        return {"minus": dict(spec)}
    example = '{"reference": "softmax", "numerator": "neg_interest_k10", "denominator": "rank1", "factor": -1}'
    if not isinstance(spec, dict) or not {"reference", "numerator", "denominator"} <= set(spec) or \
            set(spec) - {"reference", "numerator", "denominator", "factor"}:
        raise ConfigError(f"{here}: test.change_ratio must look like {example}.")
    if spec["reference"] not in variants:
        raise ConfigError(f"{here}: test.change_ratio.reference {spec['reference']!r} is not a variant of the study; "
                          f"variants: {', '.join(variants)}.")
    if spec["reference"] in sides:
        raise ConfigError(f"{here}: test.change_ratio.reference is {spec['reference']!r}, one of the compared variants "
                          "(its own ratio would be 0/0); choose a third variant.")
    for part in ("numerator", "denominator"):
        if not isinstance(spec[part], str) or not spec[part]:
            raise ConfigError(f"{here}: test.change_ratio.{part} must name a results.json metric.")
    factor = spec.get("factor", 1)
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor == 0:
        raise ConfigError(f"{here}: test.change_ratio.factor must be a non-zero number, got {factor!r}.")
    return {"change_ratio": {**spec, "factor": factor}}


_RULE_EXAMPLES = {
    "ci95": '{"name": "ci95"}',
    "min_effect": '{"name": "min_effect", "delta": 0.02}',
    "equivalence": '{"name": "equivalence", "margin": 0.01}',
    "slope": '{"name": "slope", "x": [10, 100, 1000], "metrics": ["gallery_mAP@10", "gallery_mAP@100", "gallery_mAP@1000"]}',
}


def is_fraction(metric: str) -> bool:
    """Whether ``metric`` is stored as a fraction in [0, 1]: a standard metric, or one an analysis declares so
    (also read after training, as ``<analysis>.<metric>``)."""
    from reid.engine.analyses import ANALYSES, fraction_metrics

    name, _, rest = metric.partition(".")
    if rest and name in ANALYSES:
        metric = rest
    return metric in FRACTION_METRICS or metric in fraction_metrics()


def _positive(here: str, key: str, value: Any, metric: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{here}: rule parameter {key} must be a number > 0, got {value!r}.")
    if is_fraction(metric) and value >= 1:
        raise ConfigError(f"{here}: {key}={value} but {metric} is stored as a fraction in [0, 1]; "
                          f"write {value / 100:g} for {value:g} points.")


def _check_rule_parameters(here: str, metric: str, rule: dict) -> None:
    name = rule["name"]
    if name == "min_effect":
        _positive(here, "delta", rule["delta"], metric)
    elif name == "equivalence":
        _positive(here, "margin", rule["margin"], metric)
    elif name == "slope":
        x, metrics = rule["x"], rule["metrics"]
        if not isinstance(x, list) or len(x) < 2 or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in x):
            raise ConfigError(f"{here}: slope rule's x must be a list of >= 2 numbers, got {x!r}.")
        if not isinstance(metrics, list) or len(metrics) != len(x) or not all(isinstance(m, str) for m in metrics):
            raise ConfigError(f"{here}: slope rule's metrics must list one metric name per x ({len(x)}), got {metrics!r}.")
        scale = rule.get("x_scale", "log10")
        if scale not in X_SCALES:
            raise ConfigError(f"{here}: slope rule's x_scale must be one of {list(X_SCALES)}, got {scale!r}.")
        if scale == "log10" and any(v <= 0 for v in x):
            raise ConfigError(f"{here}: slope rule's x must be > 0 for x_scale log10, got {x!r}.")
        if "delta" in rule:
            _positive(here, "delta", rule["delta"], "")


def _comparisons(where: str, comp: Any) -> dict | None:
    if comp is None:
        return None
    example = '{"metrics": ["mAP"], "test": "welch", "correction": "holm", "alpha": 0.05}'
    if not isinstance(comp, dict) or set(comp) - {"metrics", "test", "correction", "alpha"}:
        raise ConfigError(f"{where}: study.comparisons must look like {example}.")
    metrics = comp.get("metrics")
    if not isinstance(metrics, list) or not metrics or not all(isinstance(m, str) for m in metrics):
        raise ConfigError(f"{where}: study.comparisons.metrics must list results.json metrics, e.g. [\"mAP\"].")
    if comp.get("test", "welch") != "welch" or comp.get("correction", "holm") != "holm":
        raise ConfigError(f"{where}: study.comparisons supports test \"welch\" with correction \"holm\" (over all pairs).")
    alpha = comp.get("alpha", 0.05)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ConfigError(f"{where}: study.comparisons.alpha must be in (0, 1), got {alpha!r}.")
    return {"metrics": list(metrics), "test": "welch", "correction": "holm", "alpha": float(alpha)}


def claim_reads(claim: Claim) -> dict[str, list[str]]:
    """Every variant a claim reads, with the results.json metric keys it reads from that variant."""
    if claim.rule["name"] == "slope":
        metrics = list(claim.rule["metrics"])
        return {claim.baseline: metrics, claim.variant: metrics}
    if claim.minus:
        return {v: [claim.metric] for v in (claim.baseline, claim.variant, claim.minus["baseline"], claim.minus["variant"])}
    if claim.change_ratio:
        parts = [claim.change_ratio["numerator"], claim.change_ratio["denominator"]]
        return {v: parts for v in (claim.baseline, claim.variant, claim.change_ratio["reference"])}
    return {claim.baseline: [claim.baseline_metric or claim.metric], claim.variant: [claim.metric]}


def claim_metrics(claim: Claim) -> list[str]:
    """The results.json metric keys a claim reads (one, or one per point of a slope claim, or its parts)."""
    out: list[str] = []
    for metrics in claim_reads(claim).values():
        out += [m for m in metrics if m not in out]
    return out


def _check_metrics(where: str, what: str, metrics: list[str], roles, configs: dict[str, dict],
                   posthoc: dict[str, tuple[str, ...]]) -> None:
    from reid.engine.analyses import declared_metrics

    for role in roles:
        names = configs[role]["eval"].get("analyses", [])
        later = [n for n, vs in posthoc.items() if role in vs]
        known = set(STANDARD_METRICS) | declared_metrics(names) | {f"{n}.{m}" for n in later for m in declared_metrics([n])}
        missing = [m for m in metrics if m not in known]
        if missing:
            raise ConfigError(
                f"{where}: {what}: variant {role!r} produces no metric {missing[0]!r} "
                f"(standard: {', '.join(STANDARD_METRICS)}; from eval.analyses {names}: "
                f"{', '.join(sorted(declared_metrics(names))) or 'none'}; post-hoc ones read '<analysis>.<metric>'); "
                "fix the metric name or add the analysis to the study's overrides (\"eval.analyses\") or to study.posthoc."
            )
