"""reid.study.selection: schema errors, the tie rule, step chaining and the applied-values check.

Training is replaced by hand-made results (a known validation mAP per candidate), so the choices
below are worked out by hand; the real selection runs the same code with real runs.
"""

from __future__ import annotations

import copy
import json

import pytest
from test_study_fixtures import write_registry

from reid.errors import ConfigError
from reid.recipes import load_recipe
from reid.study import runner, selection
from reid.study.registry import load_study

SELECTION = {
    "validation_ids": 4, "seeds": [0, 1], "metric": "mAP", "tie": 0.005,
    "steps": [
        {"key": "loss.alpha", "values": [0.01, 0.5], "on": "center", "applies_to": ["center", "smc_ecd"], "why": "alpha"},
        {"key": "loss.lam_ecd", "values": [0.0001, 0.001, 0.01], "on": "smc_ecd", "applies_to": ["smc_ecd"],
         "also_sets": ["loss.lam"]},
    ],
}  # fmt: skip
REGISTRY = {
    "study": {"chapter": "tiny_selection", "recipe": "smc_ecd", "dataset": "synthreid", "scale": "smoke", "seeds": 5,
              "overrides": {"data.synth_preset": "tiny", "input.height": 32, "input.width": 16, "train.epochs": 1},
              "variants": {"softmax": {"loss.name": "softmax"}, "center": {"loss.name": "center"},
                           "smc_ecd": {"loss.name": "smc_ecd"}},
              "selection": SELECTION},
    "claims": [],
}  # fmt: skip

#: validation mAP of a candidate (seed 0; seed 1 adds 0.002): alpha 0.01 wins step 1 clearly;
#: in step 2, lam_ecd 1e-4 is best but 1e-3 (the recipe's value) is within the tie of 0.005.
FAKE_MAP = {("center", 0.01): 0.600, ("center", 0.5): 0.550,
            ("smc_ecd", 0.0001): 0.700, ("smc_ecd", 0.001): 0.697, ("smc_ecd", 0.01): 0.650}  # fmt: skip


def _fake_train(calls):
    def train_runs(todo, *, jobs, progress, desc, git, log, trained):
        for spec in todo:
            o = spec["overrides"]
            calls.append((spec["variant"], spec["seed"], dict(o)))
            value = o["loss.alpha"] if spec["variant"].startswith("center") else o["loss.lam_ecd"]
            variant = "center" if spec["variant"].startswith("center") else "smc_ecd"
            cfg = load_recipe(spec["recipe"], spec["scale"], o)
            results = {"recipe": cfg, "seed": spec["seed"], "dataset": {"name": "synthreid", "statistics": {}},
                       "metrics": {"mAP": FAKE_MAP[variant, value] + 0.002 * spec["seed"]}, "device": "cpu",
                       "git": {"commit": "b" * 40}, "study": {"wall_seconds": 2.0, "cpu_seconds": 1.5}}
            (runner.Path(spec["run_dir"])).mkdir(parents=True, exist_ok=True)
            (runner.Path(spec["run_dir"]) / "results.json").write_text(json.dumps(results))
            trained.append(spec)

    return train_runs


@pytest.fixture
def chosen(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(runner, "train_runs", _fake_train(calls))
    monkeypatch.setattr("reid.engine.data.load_training_data", lambda *a, **k: None)
    path = write_registry(tmp_path / "sel.json", REGISTRY)
    doc = selection.run_selection(str(path), out=tmp_path / "evidence", allow_dirty=True, progress=False)
    return doc, calls, path, tmp_path


def test_steps_choose_by_hand_worked_means_and_chain(chosen):
    doc, calls, _, tmp = chosen
    first, second = doc["steps"]
    assert [c["mean"] for c in first["candidates"]] == [0.601, 0.551] and first["chosen"] == 0.01
    assert first["default"] == 0.5 and first["tied"] == [0.01]
    # 1e-4 is best (0.701), 1e-3 (0.698) is within 0.005 of it and is the recipe's value: the tie goes to it
    assert second["tied"] == [0.0001, 0.001] and second["chosen"] == 0.001 and second["default"] == 0.001
    assert doc["chosen"] == {"center": {"loss.alpha": 0.01},
                             "smc_ecd": {"loss.alpha": 0.01, "loss.lam_ecd": 0.001, "loss.lam": 0.001}}
    # step 2's runs carry step 1's choice and never the test split
    for variant, _, o in calls:
        assert o["eval.split"] == "validation" and o["data.validation_ids"] == 4 and o["eval.analyses"] == []
        if variant.startswith("smc_ecd"):
            assert o["loss.alpha"] == 0.01 and o["loss.lam"] == o["loss.lam_ecd"]
    # names: the resolved value of every key the selection sets (recipe: lam = lam_ecd = 1e-3)
    assert sorted({v for v, _, _ in calls}) == [
        "center_alpha-0.01_lam-0.001_lam_ecd-0.001", "center_alpha-0.5_lam-0.001_lam_ecd-0.001",
        "smc_ecd_alpha-0.01_lam-0.0001_lam_ecd-0.0001", "smc_ecd_alpha-0.01_lam-0.001_lam_ecd-0.001",
        "smc_ecd_alpha-0.01_lam-0.01_lam_ecd-0.01"]
    assert len(calls) == 10 and doc["timings"]["runs"] == 10 and doc["timings"]["runs_cpu_seconds"] == 15.0
    assert doc["commit"] == "b" * 40 and doc["split"] == "validation"
    written = json.loads((tmp / "evidence" / "tiny_selection" / "selection.json").read_text())
    assert written["chosen"] == doc["chosen"] and written["label"].endswith("(4 held-out training identities)")


def test_a_second_call_trains_nothing_and_unapplied_values_are_listed(chosen):
    doc, calls, path, tmp = chosen
    again = selection.run_selection(str(path), out=tmp / "evidence", allow_dirty=True, progress=False)
    assert len(calls) == 10 and again["chosen"] == doc["chosen"]
    study = load_study(str(path))
    assert selection.unapplied(study, doc) == [
        "center: loss.alpha = <absent> (selected: 0.01)", "smc_ecd: loss.alpha = <absent> (selected: 0.01)",
        "smc_ecd: loss.lam = <absent> (selected: 0.001)", "smc_ecd: loss.lam_ecd = <absent> (selected: 0.001)"]
    reg = copy.deepcopy(REGISTRY)
    reg["study"]["variants"]["center"]["loss.alpha"] = 0.01
    reg["study"]["variants"]["smc_ecd"].update({"loss.alpha": 0.01, "loss.lam": 0.001, "loss.lam_ecd": 0.001})
    assert selection.unapplied(load_study(str(write_registry(tmp / "applied.json", reg))), doc) == []


@pytest.mark.parametrize("means, default, expected", [
    ({1: 0.5, 2: 0.6}, 1, (2, [2])),                                 # a clear winner
    ({0.0001: 0.80, 0.001: 0.797, 0.01: 0.70}, 0.001, (0.001, [0.0001, 0.001])),
    ({0.0001: 0.80, 0.01: 0.799}, 0.001, (0.0001, [0.0001, 0.01])),  # equally far (log10): the higher mean
    ({0.01: 0.80, 0.5: 0.799}, 0.1, (0.5, [0.01, 0.5])),              # |log10| 1.0 vs 0.70: 0.5 is nearer
    ({"a": 0.80, "b": 0.799}, "b", ("b", ["a", "b"])),                # strings: the default itself
])  # fmt: skip
def test_tie_rule(means, default, expected):
    assert selection.choose(means, tie=0.005, default=default) == expected


CASES = {
    "not an object": ([], "must be an object"),
    "missing key": ({k: v for k, v in SELECTION.items() if k != "metric"}, "missing key(s) ['metric']"),
    "unknown key": ({**SELECTION, "criterion": "x"}, "unknown key(s) ['criterion']"),
    "few ids": ({**SELECTION, "validation_ids": 1}, "validation_ids must be an integer >= 2"),
    "seeds": ({**SELECTION, "seeds": [0, 0]}, "seeds must list distinct"),
    "metric": ({**SELECTION, "metric": "neg_interest_k10"}, "not a standard metric"),
    "tie in points": ({**SELECTION, "tie": 1}, "tie must be a number in [0, 1)"),
    "one value": ({**SELECTION, "steps": [{**SELECTION["steps"][0], "values": [0.5]}]}, "values must list >= 2"),
    "on unknown": ({**SELECTION, "steps": [{**SELECTION["steps"][0], "on": "gcl"}]}, "on 'gcl' is not a variant"),
    "applies_to without on": ({**SELECTION, "steps": [{**SELECTION["steps"][0], "applies_to": ["smc_ecd"]}]},
                              "'center' included"),
    "also_sets": ({**SELECTION, "steps": [{**SELECTION["steps"][1], "also_sets": "loss.lam"}]}, "also_sets must list"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_schema_errors(case, tmp_path):
    spec, fragment = CASES[case]
    reg = copy.deepcopy(REGISTRY)
    reg["study"]["selection"] = spec
    path = write_registry(tmp_path / "sel.json", reg)
    with pytest.raises(ConfigError) as info:
        load_study(str(path))
    assert fragment in str(info.value) and str(path) in str(info.value)


def test_a_study_without_selection_says_so(tmp_path):
    reg = copy.deepcopy(REGISTRY)
    del reg["study"]["selection"]
    with pytest.raises(ConfigError, match="no 'selection' block"):
        selection.run_selection(str(write_registry(tmp_path / "s.json", reg)), out=tmp_path, allow_dirty=True)
