"""The scoreboard notebook executes without evidence (and says so) and with evidence (one row per claim)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_study_fixtures import fake_run, write_registry

from reid.study.evidence import aggregate, write_evidence
from reid.study.registry import load_study

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "scoreboard.ipynb"


def _execute(tmp_path, evidence_dir) -> str:
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "scoreboard.ipynb"
    papermill.execute_notebook(str(NOTEBOOK), str(out), parameters={"evidence_dir": str(evidence_dir)},
                               cwd=str(NOTEBOOK.parent), progress_bar=False, kernel_name="python3")
    nb = json.loads(out.read_text())
    texts = []
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            texts.append("".join(data.get("text/markdown", data.get("text/plain", ""))))
    return "\n".join(texts)


@pytest.mark.slow
def test_scoreboard_without_and_with_evidence(tmp_path):
    text = _execute(tmp_path, tmp_path / "no-evidence")
    assert "No evidence yet" in text and "reid study smc_ecd" in text

    study = load_study(str(write_registry(tmp_path / "tiny.json")))
    out = tmp_path / "evidence"
    for s in study.seeds:
        for v, shift in (("batch_hard", 0.0), ("support_neighbor", -0.03 - 0.002 * s)):
            metrics = {"rank1": 0.7, "rank5": 0.8, "rank10": 0.9, "mAP": 0.5 + 0.01 * s + shift, "mAP_trapezoid": 0.49,
                       "mINP": 0.2, "neg_interest_k1": 40.0, "neg_interest_k10": 50.0 + s}
            fake_run(out, "tiny_demo", v, s, study.configs[v], metrics)
    write_evidence(aggregate(study, out), out)
    text = _execute(tmp_path, out)
    assert "No evidence yet" not in text
    assert "sn_beats_bh_map" in text and "**contradicted**" in text and "69.14 -> 73.43 mAP" in text
    assert "Contradicted at this scale: sn_beats_bh_map" in text
