"""Build the reid-book site: execute the notebooks, generate the provenance pages, run Jupyter Book.

Usage (from the repository root; ``make book`` runs the first line)::

    .venv/bin/python book/build.py --build _build                 # execute every notebook, build the site
    .venv/bin/python book/build.py --build _build --no-execute    # render the committed notebooks as they are
    .venv/bin/python book/build.py --build _build --only benchmark --only smc_ecd
    .venv/bin/python book/build.py --build _build --no-site       # notebooks + generated pages, no HTML

What it does, in order:

1. Assembles a self-contained site source in ``<build>/book/`` that mirrors the repository
   layout (``_config.yml``, ``book/…`` pages, ``notebooks/<name>.ipynb``), so the site never
   depends on files outside the build tree and the repository itself is never modified.
2. Executes each notebook listed in ``book/_toc.yml`` with papermill at its default parameters,
   with ``notebooks/`` as the working directory, writing ``<build>/book/notebooks/<name>.ipynb``.
   One progress line per notebook with its wall time; a failing notebook does not stop the
   others, and the script exits non-zero at the end naming every failure. ``--no-execute``
   copies the committed executed notebooks instead; ``--only NAME`` executes only the named
   notebooks and copies the others.
3. Generates ``book/errata.md`` from ``book/errata_entries/*.md`` (one section per paper) and
   ``book/reproducibility.md`` from the ``results.json`` of every run the executed notebooks
   wrote (plus committed full-run results under ``book/results/``), into the build tree only.
4. Runs ``jupyter-book build`` on the tree with warnings as errors (``-W --keep-going``) and
   moves the HTML to ``<build>/html``; prints where ``index.html`` is.

Optional things that may be missing on a fresh clone (no errata entries yet, no run results, a
chapter notebook not written yet) never fail the build: they produce a page that says so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

REPO = Path(__file__).resolve().parents[1]
TOC_PATH = "book/_toc.yml"
GENERATED_MARKER = "<!-- book/build.py inserts the generated sections here -->"

# Paper id -> (chapter name, one-line label). The errata page has one section per paper.
PAPERS: dict[str, tuple[str, str]] = {
    "000": ("smc_ecd", "Paper 000: Borgia et al., Cross-view discriminative feature learning (SMC + ECD), TIP 2018"),
    "001": ("adaptive_margin", "Paper 001: Wang et al., Deep ranking model by large adaptive margin learning, PR 2018"),
    "002": ("support_neighbor", "Paper 002: Li et al., Support neighbor loss, ACM MM 2018"),
    "003": ("view_adaptation", "Paper 003: Wu et al., Cross-entropy adversarial view adaptation, TCSVT 2020"),
    "004": ("joint_am_triplet", "Paper 004: Sabri et al., Joint discriminative and metric embedding learning, 2022"),
}


# --------------------------------------------------------------------------- table of contents
def toc_files(toc_path: Path) -> list[str]:
    """All ``file:`` entries of a Jupyter Book toc, root first, in reading order (no suffixes)."""
    import yaml

    data = yaml.safe_load(Path(toc_path).read_text())
    files: list[str] = [data["root"]]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key, []) or []:
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk({k: v for k, v in data.items() if k != "root"})
    return [re.sub(r"\.(md|ipynb)$", "", f) for f in files]


def toc_notebooks(toc_path: Path) -> list[str]:
    """Names of the notebooks (``notebooks/<name>``) listed in the toc, in reading order."""
    return [f.split("/", 1)[1] for f in toc_files(toc_path) if f.startswith("notebooks/")]


def notebook_default_parameters(nb_path: Path) -> dict[str, str]:
    """The ``parameters``-tagged cell's assignments, as source text (``{"out_dir": '"../runs/x"'}``)."""
    import nbformat

    nb = nbformat.read(nb_path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            params = {}
            for line in cell.source.splitlines():
                m = re.match(r"^([A-Za-z_]\w*)\s*(?::[^=]+)?=\s*(.+?)\s*(#.*)?$", line)
                if m:
                    params[m.group(1)] = m.group(2)
            return params
    return {}


def default_out_dir(nb_path: Path, notebooks_dir: Path) -> Path | None:
    """Where a notebook writes its runs at default parameters (``out_dir``, relative to notebooks/)."""
    raw = notebook_default_parameters(nb_path).get("out_dir")
    if not raw:
        return None
    try:
        import ast

        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return None
    if not isinstance(value, str):
        return None
    return (notebooks_dir / value).resolve()


# --------------------------------------------------------------------------- errata
_HEADING = re.compile(r"^(#{1,6})(\s+.*)$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_MD_LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)")
_FOOTNOTE = re.compile(r"\[\^([^\]]+)\]")


def _outside_fences(lines: list[str]) -> Iterable[tuple[int, str, bool]]:
    in_fence = False
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            in_fence = not in_fence
            yield i, line, False
            continue
        yield i, line, not in_fence


def normalise_entry(text: str, *, base_level: int, stem: str) -> str:
    """Make one errata entry safe to embed in a page under a heading of level ``base_level - 1``.

    Heading levels are renumbered to consecutive levels starting at ``base_level`` (MyST warns on
    level jumps and the site is built with warnings as errors); an entry without a heading gets
    one from its file name; links to repository files (which are not pages of the site) become
    inline code; footnote labels are prefixed with the entry name so entries cannot collide.
    """
    lines = text.strip("\n").splitlines()
    levels = sorted({len(m.group(1)) for _, line, live in _outside_fences(lines) if live and (m := _HEADING.match(line))})
    remap = {lvl: min(base_level + k, 6) for k, lvl in enumerate(levels)}
    out = []
    for _, line, live in _outside_fences(lines):
        if live:
            m = _HEADING.match(line)
            if m:
                line = "#" * remap[len(m.group(1))] + m.group(2)
            else:
                line = _MD_LINK.sub(_link_or_code, line)
            line = _FOOTNOTE.sub(lambda fm: f"[^{stem}-{fm.group(1)}]", line)
        out.append(line)
    if not levels:
        title = stem.split("-", 1)[1] if "-" in stem else stem
        out = ["#" * base_level + " " + title.replace("_", " ").replace("-", " "), ""] + out
    return "\n".join(out) + "\n"


def _link_or_code(m: re.Match) -> str:
    text, target = m.group(1), m.group(2)
    if re.match(r"^(https?|mailto):", target) or target.startswith("#") or target.startswith("{"):
        return m.group(0)
    # A path into the repository (reid/losses/x.py, ../notebooks/y.ipynb): not a page of the site.
    return f"{text} (`{target}`)" if text.strip("`") != target else f"`{target}`"


def generate_errata(entries_dir: Path, template: str) -> str:
    """The errata page: the template's prose, then one section per paper with its entries."""
    entries = sorted(Path(entries_dir).glob("*.md")) if Path(entries_dir).is_dir() else []
    groups: dict[str, list[Path]] = {}
    for path in entries:
        paper = path.stem.split("-", 1)[0]
        groups.setdefault(paper if paper in PAPERS else "other", []).append(path)
    parts = []
    if not entries:
        parts.append(
            "```{note}\nNo errata entries have been written yet (`book/errata_entries/` is empty).\n```\n"
        )
    else:
        n = len(entries)
        parts.append(f"{n} entr{'y' if n == 1 else 'ies'} from `book/errata_entries/`.\n")
    for paper, (chapter, label) in PAPERS.items():
        parts.append(f"## {label}\n")
        paths = groups.get(paper, [])
        if not paths:
            parts.append("No printed-formula problems recorded for this paper.\n")
            continue
        parts.append(f"See also the chapter {{doc}}`../notebooks/{chapter}`.\n")
        for path in paths:
            parts.append(f"<!-- from book/errata_entries/{path.name} -->\n")
            parts.append(normalise_entry(path.read_text(encoding="utf-8"), base_level=3, stem=path.stem))
    if groups.get("other"):
        parts.append("## Other entries\n")
        for path in groups["other"]:
            parts.append(normalise_entry(path.read_text(encoding="utf-8"), base_level=3, stem=path.stem))
    return _insert(template, "\n".join(parts))


def _insert(template: str, generated: str) -> str:
    if GENERATED_MARKER in template:
        return template.replace(GENERATED_MARKER, generated.rstrip("\n"))
    return template.rstrip("\n") + "\n\n" + generated


# --------------------------------------------------------------------------- reproducibility
@dataclass
class RunRecord:
    """One results.json the book shows, where it came from, and which notebook produced it."""

    path: Path
    notebook: str
    source: str  # "executed by this build" | "found on this machine (not re-executed)" | "committed full run"
    data: dict = field(default_factory=dict)


@dataclass
class NotebookRecord:
    name: str
    status: str  # "executed" | "failed" | "copied (committed outputs)" | "missing"
    seconds: float | None = None
    error: str | None = None


def _first(d: dict, *keys: str, default: Any = None) -> Any:
    """The first present key; keys may be dotted paths into nested dicts."""
    for key in keys:
        cur: Any = d
        for part in key.split("."):
            if isinstance(cur, dict) and part in cur:
                cur = cur[part]
            else:
                break
        else:
            if cur not in (None, ""):
                return cur
    return default


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items() if not isinstance(v, (dict, list)))
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _cell(value: Any) -> str:
    return _fmt(value).replace("|", "\\|").replace("\n", " ")


def summarise_run(data: dict) -> dict[str, str]:
    """The columns of the reproducibility table for one results.json (tolerant of missing keys)."""
    dataset = _first(data, "dataset")
    if isinstance(dataset, dict):
        dataset = _first(dataset, "name", default="n/a")
    recipe = _first(data, "recipe.recipe", "recipe.name", "recipe_name", "recipe")
    if isinstance(recipe, dict):
        recipe = "n/a"
    loss = _first(data, "recipe.loss.name")
    commit = _first(data, "git.commit", "provenance.git.commit", "git_commit", "commit", "provenance.commit")
    if isinstance(commit, str) and re.fullmatch(r"[0-9a-f]{40}", commit):
        commit = commit[:10]
    dirty = _first(data, "git.dirty", "provenance.git.dirty", "git_dirty")
    if dirty is True and isinstance(commit, str):
        commit += " (+local changes)"
    hardware = _first(data, "hardware", "provenance.hardware", default={})
    if isinstance(hardware, dict):
        hw = [
            _first(hardware, "gpu", "cuda_device", "device_name"),
            _first(hardware, "cpu", "processor", "cpu_model"),
        ]
        threads = _first(hardware, "torch_threads", "num_threads", "threads")
        cores = _first(hardware, "cpu_cores", "cpu_count", "cores")
        hw_text = " / ".join(str(h) for h in hw if h)
        extras = []
        if cores:
            extras.append(f"{cores} cores")
        if threads:
            extras.append(f"{threads} threads")
        if extras:
            hw_text = (hw_text + " " if hw_text else "") + "(" + ", ".join(extras) + ")"
        hardware = hw_text or _fmt(hardware)
    device = _first(data, "device", "hardware.device", "provenance.hardware.device", "recipe.device")
    lock = _first(data, "lock.sha256")
    lock = (lock[:10] + (" (+drift)" if _first(data, "lock.mismatches") else "")) if isinstance(lock, str) else "none recorded"
    versions = _first(data, "versions", "library_versions", "provenance.versions", default={})
    if isinstance(versions, dict):
        keep = [k for k in ("python", "torch", "torchvision", "numpy", "reid", "reid-book") if k in versions]
        versions = ", ".join(f"{k} {versions[k]}" for k in keep) or _fmt(versions)
    metrics = _first(data, "metrics", default={})
    summary = []
    if isinstance(metrics, dict):
        for label, keys in (("mAP", ("mAP", "map")), ("R1", ("rank1", "rank-1", "top1", "R1", "cmc.0"))):
            v = _first(metrics, *keys)
            if isinstance(v, list):
                v = v[0] if v else None
            if isinstance(v, (int, float)):
                summary.append(f"{label} {100 * v if v <= 1 else v:.1f}")
    return {
        "recipe": _cell(recipe if not loss else f"{recipe} ({loss})"),
        "dataset": _cell(dataset),
        "scale": _cell(_first(data, "scale")),
        "seed": _cell(_first(data, "seed")),
        "commit": _cell(commit),
        "device": _cell(device),
        "hardware": _cell(hardware),
        "versions": _cell(versions),
        "lock": _cell(lock),
        "metrics": _cell(", ".join(summary) if summary else None),
    }


def collect_runs(directory: Path, *, notebook: str, source: str, since: float | None = None) -> list[RunRecord]:
    """Every readable results.json under ``directory`` (newer than ``since`` when given)."""
    runs = []
    if not directory or not Path(directory).is_dir():
        return runs
    for path in sorted(Path(directory).rglob("results.json")):
        if since is not None and path.stat().st_mtime < since:
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(data, dict):
            runs.append(RunRecord(path=path, notebook=notebook, source=source, data=data))
    return runs


def build_environment() -> dict[str, str]:
    """The environment that built the book (shown above the run table)."""
    env = {
        "built": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu cores": str(os.cpu_count()),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset"),
        "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "unset"),
        "git commit": _git_commit() or "n/a (not a git checkout)",
    }
    lock = REPO / "requirements-lock.txt"
    if lock.is_file():
        import hashlib

        env["lock file"] = f"requirements-lock.txt, sha256 {hashlib.sha256(lock.read_bytes()).hexdigest()[:16]}"
    # Distribution metadata, not imports: importing torch & co. would cost seconds for one table.
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("reid-book", "torch", "torchvision", "numpy", "scipy", "scikit-learn", "matplotlib",
                 "papermill", "nbval", "jupyter-book"):
        try:
            env[dist] = version(dist)
        except PackageNotFoundError:
            env[dist] = "not installed"
    return env


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short=10", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if out.returncode != 0:
            return None
        commit = out.stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10,
        )
        return commit + (" (+local changes)" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def generate_reproducibility(
    template: str,
    runs: list[RunRecord],
    notebooks: list[NotebookRecord],
    environment: dict[str, str],
    *,
    relative_to: Path | None = None,
) -> str:
    """The reproducibility page: build environment, notebooks, and one row per results.json."""
    parts = ["## The environment that built this site\n", "| | |", "| --- | --- |"]
    parts += [f"| {k} | {_cell(v)} |" for k, v in environment.items()]
    parts.append("")
    parts.append("## Notebooks\n")
    if notebooks:
        parts += ["| notebook | in this build | wall time |", "| --- | --- | --- |"]
        for nb in notebooks:
            secs = f"{nb.seconds:.0f} s" if nb.seconds is not None else "n/a"
            parts.append(f"| `{nb.name}` | {_cell(nb.status)} | {secs} |")
        parts.append("")
        if any(nb.status.startswith("copied") for nb in notebooks):
            parts.append(
                "Notebooks marked *copied* were not re-executed by this build: their outputs are the "
                "committed ones, and each records its own run's provenance in its results cells.\n"
            )
    else:
        parts.append("No notebooks were processed.\n")
    parts.append("## Training runs shown in the book\n")
    if not runs:
        parts.append(
            "```{note}\nNo `results.json` was found for this build: either the notebooks were not "
            "re-executed (`--no-execute`) or no notebook has trained a model yet. Committed full-run "
            "results go under `book/results/<name>/results.json`.\n```\n"
        )
    else:
        cols = ["recipe", "dataset", "scale", "seed", "commit", "device", "hardware", "versions", "lock", "metrics"]
        parts.append("| run | notebook | source | " + " | ".join(cols) + " |")
        parts.append("| " + " | ".join(["---"] * (len(cols) + 3)) + " |")
        for run in runs:
            where = run.path.parent
            if relative_to is not None:
                try:
                    where = where.resolve().relative_to(relative_to.resolve())
                except ValueError:
                    pass
            row = summarise_run(run.data)
            parts.append(
                f"| `{where.as_posix()}` | `{run.notebook}` | {run.source} | "
                + " | ".join(row[c] for c in cols)
                + " |"
            )
        parts.append("")
        parts.append(
            "Metrics are the run's own `results.json` values (mAP and rank-1 in percent, Market-1501 "
            "single-query protocol unless the chapter says otherwise). *SynthReID* rows are smoke-scale "
            "CPU runs and are not comparable with the papers' Market-1501 numbers.\n"
        )
    return _insert(template, "\n".join(parts))


# --------------------------------------------------------------------------- execution
def _placeholder(name: str) -> str:
    return (
        f"# {name.replace('_', ' ').capitalize()}\n\n"
        "```{warning}\n"
        f"`notebooks/{name}.ipynb` does not exist yet, so this chapter is a placeholder. "
        "It appears here because it is listed in `book/_toc.yml`.\n"
        "```\n"
    )


def _kernel_environment() -> None:
    """Environment inherited by the kernels papermill starts.

    The Makefile exports MPLBACKEND=Agg (right for scripts and tests), but ipykernel only installs
    its inline backend when MPLBACKEND is unset; under Agg, figures would silently vanish from
    the executed notebooks. Prefer the kernel spec of the running environment (.venv).
    """
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    os.environ.setdefault("JUPYTER_PREFER_ENV_PATH", "1")
    os.environ.setdefault("PYTHONHASHSEED", "0")
    os.environ.setdefault("TQDM_DISABLE", "1")


def execute_notebook(src: Path, dst: Path, cwd: Path, timeout: float | None, parameters: dict | None = None) -> str | None:
    """Execute ``src`` with papermill at default parameters (plus ``parameters``) into ``dst``; the
    error text or None."""
    import papermill as pm

    try:
        pm.execute_notebook(
            str(src),
            str(dst),
            parameters=parameters or None,
            cwd=str(cwd),
            progress_bar=False,
            log_output=False,
            execution_timeout=timeout,
        )
        return None
    except pm.PapermillExecutionError as exc:
        return f"{exc.ename}: {exc.evalue}".strip()
    except Exception as exc:  # noqa: BLE001 - kernel death, bad JSON, ...: report and keep going
        return f"{type(exc).__name__}: {exc}"


def _source_notebook(name: str, notebooks_dir: Path, scratch: Path) -> Path | None:
    """The committed .ipynb, or one made from the .py with jupytext when only the .py exists."""
    ipynb = notebooks_dir / f"{name}.ipynb"
    if ipynb.exists():
        return ipynb
    py = notebooks_dir / f"{name}.py"
    if py.exists():
        import jupytext

        nb = jupytext.read(py)
        scratch.mkdir(parents=True, exist_ok=True)
        out = scratch / f"{name}.ipynb"
        jupytext.write(nb, out)
        return out
    return None


# --------------------------------------------------------------------------- site
def assemble_pages(tree: Path, toc: Path) -> None:
    """Copy the config, toc, pages and bibliography into the tree (generated pages come later)."""
    (tree / "book").mkdir(parents=True, exist_ok=True)
    (tree / "notebooks").mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / "_config.yml", tree / "_config.yml")
    shutil.copy2(toc, tree / TOC_PATH)
    shutil.copy2(REPO / "book" / "references.bib", tree / "book" / "references.bib")
    for entry in toc_files(toc):
        if entry.startswith("notebooks/"):
            continue
        src = REPO / f"{entry}.md"
        dst = tree / f"{entry}.md"
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.exists():
            shutil.copy2(src, dst)
        else:
            dst.write_text(f"# {Path(entry).name.replace('_', ' ').capitalize()}\n\n(This page is missing.)\n")
    for extra in ("static", "images", "_ext"):
        if (REPO / "book" / extra).is_dir():
            shutil.copytree(REPO / "book" / extra, tree / "book" / extra, dirs_exist_ok=True)
    copy_mathjax(tree / "book" / "_mathjax_static" / "mathjax")


def copy_mathjax(dst: Path) -> None:
    """Serve MathJax from the site itself (``_config.yml``'s ``mathjax_path``), so equations render
    without network access. The files come from the locked ``jupyter-server-mathjax`` wheel."""
    try:
        import jupyter_server_mathjax
    except ImportError:
        raise SystemExit("book/build.py: jupyter-server-mathjax is not installed; run `make book` "
                         "(it installs requirements-lock.txt), or pip install jupyter-server-mathjax.") from None
    src = Path(jupyter_server_mathjax.__file__).parent / "static"
    if not (src / "MathJax.js").is_file():
        raise SystemExit(f"book/build.py: no MathJax.js under {src}; reinstall jupyter-server-mathjax.")
    # The site needs the TeX input, the HTML-CSS output with its web fonts, and the extensions the
    # combined configuration loads; the PNG image fonts (most of the 12 MB) are never used.
    shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns("imageFonts*", "*.png"))


def jupyter_book_command() -> list[str]:
    exe = Path(sys.executable).with_name("jupyter-book")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("jupyter-book")
    if found:
        return [found]
    return [sys.executable, "-m", "jupyter_book.cli.main"]


def build_site(tree: Path, html_out: Path) -> int:
    cmd = jupyter_book_command() + [
        "build", str(tree), "--toc", str(tree / TOC_PATH), "-W", "--keep-going", "--quiet",
    ]
    print("$ " + " ".join(cmd), flush=True)
    rc = subprocess.run(cmd, cwd=str(tree)).returncode
    built = tree / "_build" / "html"
    if built.is_dir():
        if html_out.exists():
            shutil.rmtree(html_out)
        os.replace(built, html_out)
    return rc


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default="_build", help="build directory (default: _build)")
    parser.add_argument("--no-execute", action="store_true", help="copy the committed executed notebooks")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="execute only this notebook (repeatable); the others are copied as committed")
    parser.add_argument("--no-site", action="store_true", help="skip the Jupyter Book HTML build")
    parser.add_argument("--timeout", type=float, default=None, help="per-cell timeout in seconds (default: none)")
    args = parser.parse_args(argv)

    t_start = time.time()
    build = Path(args.build).resolve()
    tree = build / "book"
    html_out = build / "html"
    notebooks_dir = REPO / "notebooks"
    toc = REPO / TOC_PATH

    names = toc_notebooks(toc)
    unknown = [n for n in args.only if n not in names]
    if unknown:
        parser.error(f"--only {', '.join(unknown)}: not in {TOC_PATH} (choose from {', '.join(names)})")

    # A fresh tree each time, so nothing stale (a removed chapter, an old errata entry) survives.
    if tree.exists():
        shutil.rmtree(tree)
    assemble_pages(tree, toc)

    records: list[NotebookRecord] = []
    runs: list[RunRecord] = []
    failures: list[str] = []
    for i, name in enumerate(names, 1):
        dst = tree / "notebooks" / f"{name}.ipynb"
        execute = not args.no_execute and (not args.only or name in args.only)
        src = _source_notebook(name, notebooks_dir, build / "scratch")
        prefix = f"[{i}/{len(names)}] {name:<22}"
        if src is None:
            (tree / "notebooks" / f"{name}.md").write_text(_placeholder(name))
            print(f"{prefix} MISSING (notebooks/{name}.ipynb does not exist; placeholder page)", flush=True)
            records.append(NotebookRecord(name, "missing (placeholder page)"))
            continue
        out_dir = default_out_dir(src, notebooks_dir)
        if not execute:
            shutil.copy2(src, dst)
            what = "copied (committed outputs)" if src.parent == notebooks_dir else "converted from .py (no outputs)"
            print(f"{prefix} {what}", flush=True)
            records.append(NotebookRecord(name, what))
            runs += collect_runs(out_dir, notebook=name, source="found on this machine (not re-executed)")
            continue
        _kernel_environment()
        print(f"{prefix} executing ...", flush=True)
        t0 = time.time()
        parameters = None
        if "out_dir" in notebook_default_parameters(src):  # the build's runs, apart from any other execution's
            out_dir = (build / "runs" / name).resolve()
            shutil.rmtree(out_dir, ignore_errors=True)  # the build's own scratch runs, remade each build
            parameters = {"out_dir": str(out_dir)}
        error = execute_notebook(src, dst, notebooks_dir, args.timeout, parameters)
        secs = time.time() - t0
        if error:
            failures.append(name)
            print(f"{prefix} FAILED after {secs:.1f} s: {error.splitlines()[0][:300] if error else ''}", flush=True)
            records.append(NotebookRecord(name, "failed", secs, error))
            if not dst.exists():
                shutil.copy2(src, dst)
        else:
            print(f"{prefix} ok ({secs:.1f} s)", flush=True)
            records.append(NotebookRecord(name, "executed", secs))
        runs += collect_runs(out_dir, notebook=name, source="executed by this build", since=t0 - 1)

    # Committed full-run results, e.g. book/results/joint_am_triplet-full/results.json.
    results_dir = REPO / "book" / "results"
    if results_dir.is_dir():
        for sub in sorted(p for p in results_dir.iterdir() if p.is_dir()):
            runs += collect_runs(sub, notebook=sub.name.split("-")[0], source="committed full run")

    errata_template = (REPO / "book" / "errata.md").read_text() if (REPO / "book" / "errata.md").exists() else "# Errata\n"
    (tree / "book" / "errata.md").write_text(generate_errata(REPO / "book" / "errata_entries", errata_template))
    repro_template = (
        (REPO / "book" / "reproducibility.md").read_text()
        if (REPO / "book" / "reproducibility.md").exists()
        else "# Reproducibility\n"
    )
    (tree / "book" / "reproducibility.md").write_text(
        generate_reproducibility(repro_template, runs, records, build_environment(), relative_to=REPO)
    )
    print(f"generated book/errata.md and book/reproducibility.md ({len(runs)} run(s)) in {tree}", flush=True)

    site_rc = 0
    if not args.no_site:
        t0 = time.time()
        site_rc = build_site(tree, html_out)
        index = html_out / "index.html"
        if site_rc == 0 and index.exists():
            print(f"site built in {time.time() - t0:.1f} s: open {index}", flush=True)
        else:
            print(f"jupyter-book build FAILED (exit {site_rc}); see the warnings above", flush=True)

    print(f"total {time.time() - t_start:.1f} s", flush=True)
    if failures:
        print(f"FAILED notebooks: {', '.join(failures)} (executed copies with the error are in {tree / 'notebooks'})")
    return 1 if failures or site_rc else 0


if __name__ == "__main__":
    sys.exit(main())
