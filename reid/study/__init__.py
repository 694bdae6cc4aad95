"""Studies: the papers' claims tested over seeds, and what the chapters read from finished runs.

The workflow of a chapter author (issue 10, "Evidence, not anecdotes"):

1. **Register** the study and its claims in ``reid/papers/<paper>.json`` (``study`` + ``claims``;
   schema in :mod:`.registry`), *before* running anything: the variants (recipe overrides), the
   metric, the expected direction (variant − baseline) and the decision rule (:mod:`.stats`:
   ``ci95`` by default, ``min_effect``, ``equivalence``, ``slope``). Give the recipe a ``study``
   scale (``scales: {study: {...}}``) and size it with
   ``python benchmarks/bench_study_scale.py <chapter>`` (the whole study: ~15–20 min on 2 cores).
   A metric the standard evaluation lacks comes from an analysis (:mod:`reid.engine.analyses`,
   listed in the study's ``"overrides": {"eval.analyses": [...]}``). Tune nothing on the test
   split: ``data.validation_ids`` + ``eval.split: validation`` (:mod:`reid.data.validation`).
2. **Run** ``reid study <chapter>`` at a clean, committed HEAD (``--plan`` first; ``--jobs 2``;
   resumable). It writes ``evidence/<chapter>/<variant>/seed<k>/{results.json, log.jsonl}`` and
   ``evidence/<chapter>.json`` with per-seed values, paired differences, 95% t-intervals and the
   computed verdicts (:mod:`.evidence`). Commit ``evidence/`` (weights are git-ignored).
3. **Show** it in the chapter, thinly::

       from reid.study.report import claim_table, glue_evidence, load_evidence
       from reid.viz.evidence import plot_claims_seeds, plot_forest
       ev = load_evidence("support_neighbor")
       glue_evidence(ev)              # <claim>_verdict, <claim>_summary, <claim>_ci, ...
       claim_table(ev)                # mean ± sd per variant, paired difference + CI, n, verdict
       plot_claims_seeds(ev); plot_forest(ev)

   and write the prose with glue roles, never typed numbers or verdicts:
   ``The claim is {glue:text}`sn_beats_bh_map_verdict`: {glue:text}`sn_beats_bh_map_summary`.``
   ``tests/test_study_chapters.py`` enforces it; the scoreboard page (``notebooks/scoreboard``)
   collects every claim of every evidence file. The live smoke run stays, labelled a demonstration.

Modules:

* :mod:`.registry` — load and validate a chapter's ``study`` and ``claims``;
* :mod:`.stats` — paired t-intervals, decision rules, slopes, Welch + Holm (benchmark);
* :mod:`.runner` / :mod:`.commands` — ``reid study``: variants × seeds in worker processes;
* :mod:`.evidence` — aggregation into ``evidence/<chapter>.json`` (format documented there);
* :mod:`.report` — evidence tables, the scoreboard, glue keys for the chapters;
* :mod:`.budget` — one training budget for several recipes, each schedule's shape kept;
* :mod:`.benchmark` — the benchmark chapter's registry (five losses, all pairs);
* :mod:`.run_features` — a finished run's saved features, ranked with the library's metrics.
"""
