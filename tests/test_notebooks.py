"""The notebooks: jupytext pairing without drift, the parameters contract, executed outputs, toc coverage.

Each notebook is ``notebooks/<name>.py`` (jupytext py:percent, the source people edit) paired with
``notebooks/<name>.ipynb`` (executed with papermill at default parameters, committed, re-run by
``pytest --nbval``). These tests are static: they read files and execute nothing.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
NOT_NOTEBOOKS = {"conftest.py"}  # pytest settings for nbval live next to the notebooks

SOURCES = sorted(p for p in NOTEBOOKS.glob("*.py") if p.name not in NOT_NOTEBOOKS)
EXECUTED = sorted(NOTEBOOKS.glob("*.ipynb"))
NAMES = sorted({p.stem for p in SOURCES} | {p.stem for p in EXECUTED})

#: The parameters every notebook exposes (contract: "Notebook and book conventions").
REQUIRED_PARAMETERS = {"dataset", "data_root", "scale", "device", "seed", "out_dir"}
#: ... and every notebook that trains also exposes these (data_and_evaluation trains nothing).
TRAINING_PARAMETERS = {"backbone", "epochs"}
NON_TRAINING = {"data_and_evaluation", "scoreboard"}


def _toc_notebooks() -> list[str]:
    data = yaml.safe_load((REPO / "book" / "_toc.yml").read_text())
    found = []

    def walk(node):
        if isinstance(node, dict):
            f = node.get("file")
            if isinstance(f, str) and f.startswith("notebooks/"):
                found.append(re.sub(r"\.(ipynb|md)$", "", f.split("/", 1)[1]))
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key, []) or []:
                    walk(child)

    walk(data)
    if str(data.get("root", "")).startswith("notebooks/"):
        found.insert(0, data["root"].split("/", 1)[1])
    return found


def _read_ipynb(name: str):
    path = NOTEBOOKS / f"{name}.ipynb"
    if not path.exists():
        pytest.fail(f"notebooks/{name}.ipynb is missing: `jupytext --sync notebooks/{name}.py`, then execute it with papermill")
    return nbformat.read(path, as_version=4)


def _cells(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source.strip()) for c in nb.cells if c.cell_type in ("code", "markdown")]


def _parameters_cell(nb):
    tagged = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.get("metadata", {}).get("tags", [])]
    return tagged


def _assigned_names(source: str) -> dict[str, object]:
    names = {}
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        for t in targets:
            if isinstance(t, ast.Name):
                try:
                    names[t.id] = ast.literal_eval(node.value)
                except (ValueError, SyntaxError):
                    names[t.id] = ...
    return names


# --------------------------------------------------------------------------- toc coverage
def test_every_notebook_is_in_the_toc_and_every_toc_notebook_exists():
    toc = _toc_notebooks()
    assert len(toc) == len(set(toc)), f"a notebook is listed twice in book/_toc.yml: {toc}"
    missing_from_toc = sorted(set(NAMES) - set(toc))
    assert not missing_from_toc, f"notebooks/ has notebooks that book/_toc.yml does not list: {missing_from_toc}"
    missing_files = sorted(n for n in toc if not (NOTEBOOKS / f"{n}.ipynb").exists() or not (NOTEBOOKS / f"{n}.py").exists())
    assert not missing_files, f"book/_toc.yml lists notebooks without both .py and .ipynb in notebooks/: {missing_files}"


# --------------------------------------------------------------------------- pairing
@pytest.mark.parametrize("name", NAMES)
def test_py_and_ipynb_are_paired_and_do_not_drift(name):
    py, ipynb = NOTEBOOKS / f"{name}.py", NOTEBOOKS / f"{name}.ipynb"
    assert py.exists() and ipynb.exists(), f"{name}: both {py.name} and {ipynb.name} must be committed"
    header = py.read_text(encoding="utf-8").split("# ---", 2)
    assert len(header) == 3 and "formats: ipynb,py:percent" in header[1], (
        f"{py.name} needs the jupytext header pairing it with the notebook (formats: ipynb,py:percent)"
    )
    from_py, from_ipynb = jupytext.read(py), jupytext.read(ipynb)
    a, b = _cells(from_py), _cells(from_ipynb)
    if a != b:
        first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        pytest.fail(
            f"{name}: .py and .ipynb differ from cell {first} on ({len(a)} vs {len(b)} cells); "
            f"run `jupytext --sync notebooks/{name}.py`, then re-execute with papermill.\n"
            f".py:    {a[first] if first < len(a) else None!r:.300}\n.ipynb: {b[first] if first < len(b) else None!r:.300}"
        )
    assert from_ipynb.metadata.get("kernelspec", {}).get("name") == "python3", f"{name}: kernelspec must be python3"


# --------------------------------------------------------------------------- parameters
@pytest.mark.parametrize("name", NAMES)
def test_parameters_cell_has_the_required_names_and_defaults(name):
    nb = _read_ipynb(name)
    tagged = _parameters_cell(nb)
    assert len(tagged) == 1, f"{name}: exactly one code cell must be tagged `parameters` (found {len(tagged)})"
    params = _assigned_names(tagged[0].source)
    required = REQUIRED_PARAMETERS | (set() if name in NON_TRAINING else TRAINING_PARAMETERS)
    missing = sorted(required - set(params))
    assert not missing, f"{name}: the parameters cell lacks {missing}"
    assert params["dataset"] == "synthreid", f"{name}: the default run is on SynthReID"
    assert params["data_root"] is None
    assert params["scale"] == "smoke"
    assert params["device"] == "cpu"
    assert params["seed"] == 0
    assert params["out_dir"] is None, (
        f"{name}: out_dir defaults to None, a fresh temporary folder per execution "
        "(reid.engine.notebook_run_dir), so make test / make book never write into a user's runs/"
    )
    if name not in NON_TRAINING and name != "benchmark":
        assert params.get("max_iterations", "missing") is None, f"{name}: a max_iterations dry-run parameter (default None)"
    assert not any("injected-parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells), (
        f"{name}: the committed notebook was executed with non-default parameters (papermill injected a cell)"
    )


@pytest.mark.parametrize("name", NAMES)
def test_full_run_parameter_file_names_only_known_parameters(name):
    path = REPO / "params" / f"{name}.full.yaml"
    if name in NON_TRAINING and not path.exists():
        pytest.skip(f"{name} trains nothing: no full-run parameter file needed")
    assert path.exists(), f"params/{name}.full.yaml (papermill -f) is missing"
    full = yaml.safe_load(path.read_text()) or {}
    nb = _read_ipynb(name)
    known = set(_assigned_names(_parameters_cell(nb)[0].source))
    unknown = sorted(set(full) - known)
    assert not unknown, f"params/{name}.full.yaml sets {unknown}, which the parameters cell does not define"
    assert full.get("scale") == "full", f"params/{name}.full.yaml must select the paper-scale recipe (scale: full)"


# --------------------------------------------------------------------------- executed outputs
@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_is_executed_without_errors(name):
    nb = _read_ipynb(name)
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    assert code, f"{name}: no code cells"
    unexecuted = [i for i, c in enumerate(code) if c.get("execution_count") is None]
    assert not unexecuted, f"{name}: code cells {unexecuted} were not executed; run papermill and commit the result"
    counts = [c.execution_count for c in code]
    assert counts == sorted(counts), f"{name}: cells were executed out of order ({counts}); re-run top to bottom"
    errors = [o.get("ename") for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{name}: the committed notebook has errors: {errors}"
    widgets = [c for c in code for o in c.get("outputs", []) if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert not widgets, f"{name}: widget outputs (tqdm.notebook?) cannot be compared by nbval nor rendered by the book"
