"""The book's infrastructure: _config.yml, the toc, the bibliography, and book/build.py's generators."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def build():
    spec = importlib.util.spec_from_file_location("book_build", REPO / "book" / "build.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["book_build"] = module  # dataclasses look their module up in sys.modules
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- config and toc
def test_config_loads_and_points_to_the_toc():
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    assert config["author"] == "reid-book contributors"
    assert config["execute"]["execute_notebooks"] == "off"  # papermill executes, never Sphinx
    assert config["only_build_toc_files"] is True
    assert config["bibtex_bibfiles"] == ["book/references.bib"]
    assert config["sphinx"]["config"]["external_toc_path"] == "book/_toc.yml"
    assert (REPO / config["sphinx"]["config"]["external_toc_path"]).exists()
    assert "_build" in config["exclude_patterns"]


def test_toc_parses_and_its_pages_exist(build):
    from sphinx_external_toc.parsing import parse_toc_yaml

    parse_toc_yaml(REPO / "book" / "_toc.yml")
    files = build.toc_files(REPO / "book" / "_toc.yml")
    assert files[0] == "book/intro"
    assert len(files) == len(set(files)), "a page is listed twice"
    for page in (f for f in files if not f.startswith("notebooks/")):
        assert (REPO / f"{page}.md").exists(), f"{page}.md is in the toc but missing"
    for required in ("book/how_to_run", "book/reproducibility", "book/errata", "book/bibliography"):
        assert required in files
    assert build.toc_notebooks(REPO / "book" / "_toc.yml") == [
        "scoreboard", "data_and_evaluation", "smc_ecd", "adaptive_margin", "support_neighbor",
        "view_adaptation", "joint_am_triplet", "benchmark",
    ]


def test_generated_pages_have_their_insertion_marker(build):
    for page in ("errata.md", "reproducibility.md"):
        assert build.GENERATED_MARKER in (REPO / "book" / page).read_text()


# --------------------------------------------------------------------------- bibliography
def _bib_keys() -> set[str]:
    from pybtex.database import parse_file

    return set(parse_file(str(REPO / "book" / "references.bib")).entries.keys())


def test_bibliography_has_the_papers_datasets_and_methods():
    keys = _bib_keys()
    expected = {
        "borgia2018cross", "wang2018deep", "li2018support", "wu2020cross", "sabri2022joint",  # the five papers
        "zheng2015scalable", "li2014deepreid", "ristani2016performance", "zheng2017unlabeled",
        "wei2018person", "gray2008viewpoint", "li2012human", "hirzer2011person", "baltieri2011threedpes",
        "zhong2017reranking", "chen2012bayesian", "wen2016discriminative", "hermans2017defense",
        "deng2019arcface", "he2016deep",
    }
    assert expected <= keys, f"missing: {sorted(expected - keys)}"


_CITE = re.compile(r"\{cite(?::\w+)?\}`([^`]+)`")


def test_every_citation_in_pages_and_notebooks_is_in_the_bibliography():
    keys = _bib_keys()
    sources = list((REPO / "book").glob("*.md")) + list((REPO / "book" / "errata_entries").glob("*.md"))
    sources += [p for p in (REPO / "notebooks").glob("*.py") if p.name != "conftest.py"]
    missing = {}
    for path in sources:
        for group in _CITE.findall(path.read_text(encoding="utf-8")):
            for key in (k.strip() for k in group.split(",")):
                if key not in keys:
                    missing.setdefault(path.name, []).append(key)
    assert not missing, f"cited but not in book/references.bib: {missing}"


# --------------------------------------------------------------------------- errata generator
def test_errata_without_entries_says_so(build, tmp_path):
    page = build.generate_errata(tmp_path / "nothing-here", "# Errata\n\n" + build.GENERATED_MARKER + "\n")
    assert "No errata entries have been written yet" in page
    for paper, (_, label) in build.PAPERS.items():
        assert f"## {label}" in page
    assert build.GENERATED_MARKER not in page


def test_errata_groups_entries_by_paper_and_normalises_them(build, tmp_path):
    (tmp_path / "002-squared-distance.md").write_text(
        "# Eq. 3: Euclidean or squared?\n\nText.\n\n### Where in code\n\n"
        "See [the loss](../../reid/losses/support_neighbor.py) and [docs](https://example.org).[^a]\n\n"
        "```python\n# not a heading\n```\n\n[^a]: A footnote.\n"
    )
    (tmp_path / "000-ecd-index.md").write_text("Eq. 4 prints t != i; Fig. 6 shows other identities.\n")
    (tmp_path / "notes.md").write_text("## A stray entry\n")
    page = build.generate_errata(tmp_path, "# Errata\n\n" + build.GENERATED_MARKER + "\n")
    assert page.index("## Paper 000") < page.index("ecd index") < page.index("## Paper 001")
    assert page.index("## Paper 002") < page.index("### Eq. 3: Euclidean or squared?")
    assert "#### Where in code" in page  # "#" -> "###", "###" -> "####": consecutive levels
    assert "the loss (`../../reid/losses/support_neighbor.py`)" in page
    assert "[docs](https://example.org)" in page
    assert "# not a heading" in page  # code fences untouched
    assert "[^002-squared-distance-a]" in page
    assert "## Other entries" in page and "### A stray entry" in page
    assert "3 entries" in page
    assert "No printed-formula problems recorded for this paper." in page  # 001, 003, 004


def test_the_real_errata_entries_render(build):
    page = build.generate_errata(REPO / "book" / "errata_entries", (REPO / "book" / "errata.md").read_text())
    assert page.startswith("# Errata")
    for path in (REPO / "book" / "errata_entries").glob("*.md"):
        assert f"from book/errata_entries/{path.name}" in page or "## Other entries" in page


# --------------------------------------------------------------------------- reproducibility generator
RESULTS = {
    "recipe": {"recipe": "support_neighbor", "scale": "smoke", "loss": {"name": "batch_hard"}},
    "dataset": {"name": "synthreid", "root": "/cache/synth", "statistics": {"train": {"ids": 50}}},
    "scale": "smoke",
    "seed": 3,
    "metrics": {"mAP": 0.4123, "rank1": 0.625, "cmc": [0.625, 0.7]},
    "git": {"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": True},
    "versions": {"python": "3.11.7", "torch": "2.5.0", "numpy": "2.0.0", "reid": "0.1.0"},
    "hardware": {"cpu": "Some CPU", "cpu_cores": 2, "torch_threads": 2, "device": "cpu", "gpu": None},
    "lock": {"file": "requirements-lock.txt", "sha256": "abcdef0123" + "0" * 54, "packages": 193, "mismatches": []},
}


def test_reproducibility_table_from_results_files(build, tmp_path):
    run = tmp_path / "runs" / "support_neighbor" / "seed3"
    run.mkdir(parents=True)
    (run / "results.json").write_text(json.dumps(RESULTS))
    (tmp_path / "runs" / "broken").mkdir()
    (tmp_path / "runs" / "broken" / "results.json").write_text("{not json")
    runs = build.collect_runs(tmp_path / "runs", notebook="support_neighbor", source="executed by this build")
    assert len(runs) == 1  # the unreadable file is skipped, not fatal
    notebooks = [build.NotebookRecord("support_neighbor", "executed", 93.2), build.NotebookRecord("benchmark", "copied (committed outputs)")]
    env = {"python": "3.11.7", "git commit": "abc"}
    page = build.generate_reproducibility("# Reproducibility\n\n" + build.GENERATED_MARKER, runs, notebooks, env, relative_to=tmp_path)
    row = next(line for line in page.splitlines() if line.startswith("| `runs/support_neighbor/seed3`"))
    for text in ("support_neighbor (batch_hard)", "synthreid", "smoke", "| 3 |", "0123456789 (+local changes)", "Some CPU (2 cores, 2 threads)",
                 "torch 2.5.0", "mAP 41.2, R1 62.5", "| cpu |", "| abcdef0123 |"):
        assert text in row, text
    assert "| `support_neighbor` | executed | 93 s |" in page
    assert "not re-executed by this build" in page


def test_reproducibility_without_runs_says_so(build):
    page = build.generate_reproducibility("# R\n", [], [], {"python": "3"})
    assert "No `results.json` was found" in page
    assert "No notebooks were processed" in page


def test_summarise_run_tolerates_missing_fields(build):
    row = build.summarise_run({})
    assert set(row) >= {"recipe", "dataset", "scale", "seed", "commit", "hardware", "versions", "metrics"}
    assert row["dataset"] == "n/a" and row["metrics"] == "n/a" and row["lock"] == "none recorded"


def test_collect_runs_since_keeps_only_fresh_results(build, tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    for d in (old, new):
        d.mkdir()
        (d / "results.json").write_text("{}")
    past = time.time() - 3600
    os.utime(old / "results.json", (past, past))
    fresh = build.collect_runs(tmp_path, notebook="x", source="s", since=time.time() - 60)
    assert [r.path.parent.name for r in fresh] == ["new"]


def test_default_out_dir_is_read_from_the_parameters_cell(build, tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell('dataset = "synthreid"\nout_dir = "../runs/demo"  # where runs go\nseed = 0')
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), cell]
    path = tmp_path / "demo.ipynb"
    nbformat.write(nb, path)
    assert build.notebook_default_parameters(path)["seed"] == "0"
    assert build.default_out_dir(path, tmp_path / "notebooks") == (tmp_path / "runs" / "demo").resolve()


# --------------------------------------------------------------------------- the script end to end (no execution, no HTML)
def test_build_script_assembles_a_self_contained_tree(build, tmp_path, capsys):
    rc = build.main(["--build", str(tmp_path / "_build"), "--no-execute", "--no-site"])
    out = capsys.readouterr().out
    tree = tmp_path / "_build" / "book"
    assert (tree / "_config.yml").exists() and (tree / "book" / "_toc.yml").exists()
    assert (tree / "book" / "references.bib").exists()
    errata = (tree / "book" / "errata.md").read_text()
    assert errata.startswith("# Errata") and build.GENERATED_MARKER not in errata
    assert "## The environment that built this site" in (tree / "book" / "reproducibility.md").read_text()
    for name in build.toc_notebooks(REPO / "book" / "_toc.yml"):
        assert (tree / "notebooks" / f"{name}.ipynb").exists() or (tree / "notebooks" / f"{name}.md").exists()
        assert name in out
    assert rc == 0


def test_only_rejects_unknown_notebooks(build, tmp_path):
    with pytest.raises(SystemExit):
        build.main(["--build", str(tmp_path), "--only", "no_such_notebook", "--no-site"])
