"""Plots and tables shared by the book's notebooks.

Everything here *displays* results computed elsewhere (``reid.metrics``, ``reid.engine``); nothing
here computes a metric. The functions are headless-safe (they never select a GUI backend and
import matplotlib lazily), deterministic where randomness is involved (t-SNE, jitter: a fixed
seed), and label their output with where the numbers come from:

* :func:`load_results`, :func:`load_log`, :func:`run_label`: read a run directory written by
  ``reid.engine.train`` (``results.json``, ``log.jsonl``) and name it honestly, e.g.
  "SynthReID (smoke scale, CPU)".
* :func:`plot_cmc`, :func:`run_cmc`: CMC curves of one or several runs / metric objects.
* :func:`plot_tsne`: a t-SNE of embeddings coloured by identity, one marker per camera.
* :func:`show_ranked_lists`: query images with their top-k gallery images, framed green (same
  identity) or red, with camera labels, after the Market-1501 junk rule.
* :func:`show_identity_grid`: a few identities, one image per camera; :func:`show_records`: a
  grid of images with identity and camera captions.
* :func:`compare_with_paper`: our numbers next to a transcribed paper table (``reid.papers``).
* :func:`plot_camera_pair_matrix`: a probe-camera × gallery-camera heat map (paper 000, Fig. 10).
* :func:`plot_seed_spread`: per-seed values as a strip plot with mean ± std (the benchmark).
* :class:`Table` / :func:`make_table`: a small pandas-free table that renders as Markdown in the
  book and as aligned text in a terminal (``.to_dataframe()`` when pandas is installed).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np

from reid.errors import ConfigError, ReidError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "DATASET_NAMES",
    "Table",
    "compare_with_paper",
    "load_log",
    "load_results",
    "make_table",
    "plot_camera_pair_matrix",
    "plot_cmc",
    "plot_seed_spread",
    "plot_tsne",
    "run_cmc",
    "run_label",
    "show_identity_grid",
    "show_ranked_lists",
    "show_records",
]

#: Display names of the dataset keys used by ``reid.data.datasets.load_dataset``.
DATASET_NAMES = {
    "synthreid": "SynthReID",
    "market1501": "Market-1501",
    "dukemtmc": "DukeMTMC-reID",
    "cuhk03": "CUHK03",
    "msmt17": "MSMT17",
    "cuhk01": "CUHK01",
    "viper": "VIPeR",
    "prid2011": "PRID2011",
    "threedpes": "3DPeS",
}

_CAMERA_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">", "h", "p", "8", "d", "H")


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


# --------------------------------------------------------------------------- run directories
def load_results(run_dir: str | Path) -> dict:
    """The parsed ``results.json`` of a run directory (or of the file itself)."""
    path = Path(run_dir)
    if path.is_dir():
        path = path / "results.json"
    if not path.exists():
        raise ReidError(
            f"no results.json at {path}: pass the run directory returned by reid.engine.train "
            "(or train first: `reid train --recipe NAME --out DIR`)"
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReidError(f"{path} is not valid JSON ({exc}); the run was probably interrupted: re-run it") from exc


def load_log(run_dir: str | Path) -> list[dict]:
    """The per-epoch records of a run's ``log.jsonl`` (empty list when there is none)."""
    path = Path(run_dir) / "log.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _get(d: Any, *paths: str, default: Any = None) -> Any:
    for p in paths:
        cur = d
        for part in p.split("."):
            if isinstance(cur, Mapping) and part in cur:
                cur = cur[part]
            else:
                break
        else:
            if cur is not None:
                return cur
    return default


def run_label(results: Mapping | str | Path) -> str:
    """How to label a run's numbers, e.g. ``"SynthReID (smoke scale, CPU)"``.

    Built from the run's own ``results.json`` (dataset name, scale, device), so a SynthReID run
    can never be shown under a real dataset's name.
    """
    if not isinstance(results, Mapping):
        results = load_results(results)
    dataset = _get(results, "dataset.name", "dataset", default="unknown dataset")
    if isinstance(dataset, Mapping):
        dataset = "unknown dataset"
    name = DATASET_NAMES.get(str(dataset).lower(), str(dataset))
    scale = _get(results, "scale", "recipe.scale", default="?")
    device = str(_get(results, "device", "hardware.device", "provenance.hardware.device", "recipe.device", default="cpu"))
    device = "GPU" if device.startswith("cuda") else device.upper()
    return f"{name} ({scale} scale, {device})"


# --------------------------------------------------------------------------- tables
@dataclass
class Table:
    """A small table: a list of rows (dicts) over named columns, with a title and a note.

    Renders as Markdown in notebooks and the book (``_repr_markdown_``), as aligned plain text
    with ``str()``; numbers are formatted once, here, with ``fmt`` (default: 1 decimal).
    """

    columns: list[str]
    rows: list[dict[str, Any]]
    title: str = ""
    note: str = ""
    fmt: str = "{:.1f}"
    formats: dict[str, str] = field(default_factory=dict)

    def _cell(self, column: str, value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "–"
        if isinstance(value, (float, np.floating)):
            return self.formats.get(column, self.fmt).format(float(value))
        if isinstance(value, (np.integer,)):
            return str(int(value))
        return str(value)

    def cells(self) -> list[list[str]]:
        return [[self._cell(c, row.get(c)) for c in self.columns] for row in self.rows]

    def to_markdown(self) -> str:
        def esc(s: str) -> str:
            return s.replace("|", "\\|")

        numeric = [all(_is_number(r.get(c)) for r in self.rows) for c in self.columns]
        lines = []
        if self.title:
            lines += [f"**{esc(self.title)}**", ""]
        lines.append("| " + " | ".join(esc(c) for c in self.columns) + " |")
        lines.append("| " + " | ".join("---:" if n else "---" for n in numeric) + " |")
        lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in self.cells()]
        if self.note:
            lines += ["", self.note]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def __str__(self) -> str:
        cells = self.cells()
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(self.columns)]
        out = [self.title] if self.title else []
        out.append("  ".join(c.ljust(w) for c, w in zip(self.columns, widths)).rstrip())
        out.append("  ".join("-" * w for w in widths))
        out += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells]
        if self.note:
            out.append(self.note)
        return "\n".join(out)

    def __repr__(self) -> str:
        return str(self)

    def to_dataframe(self):
        """The table as a pandas DataFrame (pandas is optional: installed with jupyter-book)."""
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - pandas ships with the book's tools
            raise ReidError("Table.to_dataframe needs pandas: `pip install pandas`") from exc
        return pd.DataFrame(self.rows, columns=self.columns)


def _is_number(v: Any) -> bool:
    if v is None or isinstance(v, (int, float, np.number)):
        return True
    return isinstance(v, str) and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?|–", v.strip()) is not None


def make_table(
    rows: Sequence[Mapping[str, Any]] | Mapping[str, Mapping[str, Any]],
    *,
    columns: Sequence[str] | None = None,
    index: str = "",
    title: str = "",
    note: str = "",
    fmt: str = "{:.1f}",
    formats: Mapping[str, str] | None = None,
) -> Table:
    """A :class:`Table` from a list of row dicts, or from ``{row label: {column: value}}``.

    With the mapping form the row labels become the first column, named ``index``.
    """
    if isinstance(rows, Mapping):
        rows = [{index: label, **dict(vals)} for label, vals in rows.items()]
    rows = [dict(r) for r in rows]
    if columns is None:
        columns = []
        for r in rows:
            columns += [c for c in r if c not in columns]
    return Table(list(columns), rows, title=title, note=note, fmt=fmt, formats=dict(formats or {}))


def _norm_column(name: str) -> str:
    """'Rank-1' / 'R1' / 'top1' / 'rank1 accuracy' -> 'rank1'; 'mAP' -> 'map'."""
    key = re.sub(r"[^a-z0-9]", "", name.lower()).replace("accuracy", "")
    m = re.fullmatch(r"(.*?)(?:rank|top|r)(\d+)", key)
    return f"{m.group(1)}rank{m.group(2)}" if m else key


def _match_column(paper_column: str, ours: Mapping[str, Any]) -> str | None:
    """Our key for a paper column: exact, else the same normalised name ('R1' ~ 'rank1').

    Deliberately no fuzzier: 'SQ mAP' and 'MQ mAP' must not both grab our 'mAP'; map such
    columns explicitly with ``column_map``.
    """
    if paper_column in ours:
        return paper_column
    normalised = {_norm_column(k): k for k in ours}
    return normalised.get(_norm_column(paper_column))


def compare_with_paper(
    ours: Mapping[str, Any],
    paper_table: Any,
    *,
    columns: Sequence[str] | None = None,
    methods: Sequence[str] | None = None,
    ours_label: str = "ours",
    ours_method: str = "ours",
    ours_units: str = "fraction",
    column_map: Mapping[str, str] | None = None,
    note: str | None = None,
) -> Table:
    """Our numbers as extra rows under a transcribed paper table.

    ``paper_table`` is a :class:`reid.papers.PaperTable` (``reid.papers.load_table(...)``);
    ``methods`` picks its rows (default: all), ``columns`` its columns (default: all).
    ``ours`` is either one row ``{"mAP": 0.41, "rank1": 0.63}`` (named ``ours_method``) or several
    ``{"SMC+ECD": {...}, "softmax": {...}}``. ``ours_label`` says where our numbers come from
    (e.g. ``run_label(results)`` = "SynthReID (smoke scale, CPU)") and fills the ``source`` column
    of our rows, while the paper's rows carry the paper and table; so SynthReID numbers are never
    read as the paper's dataset. Our keys are matched to the paper's
    columns through ``column_map`` (paper column -> our key, e.g. ``{"SQ mAP": "mAP"}``), else by
    name, exactly or normalised (``"R1"``/``"Rank-1"``/``"top1"`` ~ ``"rank1"``); a paper column
    with no counterpart shows "–". ``ours_units="fraction"`` multiplies our values by 100 when the
    paper's table is in percent. Paper values are shown as printed; ours with one decimal.
    """
    from reid.papers import PaperTable, _fmt_value

    if not isinstance(paper_table, PaperTable):
        raise ConfigError("compare_with_paper needs a reid.papers.PaperTable: use reid.papers.load_table(paper, table)")
    cols = list(columns or paper_table.columns)
    unknown = [c for c in cols if c not in paper_table.columns]
    if unknown:
        raise ConfigError(f"{paper_table.label} has no column(s) {unknown}; columns: {paper_table.columns}")
    if ours and all(isinstance(v, Mapping) for v in ours.values()):
        our_rows = {str(k): dict(v) for k, v in ours.items()}
    else:
        our_rows = {ours_method: dict(ours)}
    scale = 100.0 if (ours_units == "fraction" and paper_table.units == "percent") else 1.0
    column_map = dict(column_map or {})

    rows: list[dict[str, Any]] = []
    for m in methods or paper_table.methods:
        vals = paper_table.row(m)
        rows.append({"source": paper_table.label, "method": paper_table._match_row(m),
                     **{c: _fmt_value(vals[c]) for c in cols}})
    for label, vals in our_rows.items():
        row: dict[str, Any] = {"source": ours_label, "method": label}
        for c in cols:
            key = column_map.get(c) or _match_column(c, vals)
            v = vals.get(key) if key is not None else None
            if isinstance(v, (list, tuple, np.ndarray)):  # a CMC curve: take rank-1
                v = v[0] if len(v) else None
            row[c] = None if v is None else float(v) * scale
        rows.append(row)
    if note is None:
        where = paper_table.dataset if paper_table.dataset and paper_table.dataset not in paper_table.label else ""
        details = "; ".join(x for x in (where, paper_table.protocol) if x)
        note = (
            f"Paper rows: {paper_table.label}{' (' + details + ')' if details else ''}, as printed. "
            f"Our rows: {ours_label}. Values in {paper_table.units}. Different data and scale: "
            "compare orderings and gaps, not absolute values."
        )
    return make_table(rows, columns=["source", "method", *cols], title=f"{paper_table.label} and ours", note=note)


# --------------------------------------------------------------------------- curves
def run_cmc(run_dir: str | Path, *, max_rank: int = 50) -> np.ndarray:
    """The CMC curve (Market-1501 single query) of a finished run.

    ``results.json`` stores summary ranks only; the full curve comes from ``metrics.cmc`` when a
    run stores one, else from the run's saved features (:mod:`reid.study.run_features`, ranked
    with the run's own distance by :func:`reid.metrics.rank_metrics`).
    """
    cmc = _get(load_results(run_dir), "metrics.cmc")
    if cmc is not None:
        return np.asarray(cmc, dtype=float)[:max_rank]
    from reid.study.run_features import load_run_features, run_rank_metrics

    return np.asarray(run_rank_metrics(load_run_features(run_dir), max_rank=max_rank).cmc, dtype=float)


def _extract_cmc(obj: Any) -> np.ndarray:
    """A CMC curve (fractions) from an array, a RankMetrics-like object, a results dict or a run dir."""
    if isinstance(obj, (str, Path)):
        return run_cmc(obj)
    if hasattr(obj, "cmc"):
        return _numpy(obj.cmc).astype(float)
    if isinstance(obj, Mapping):
        for path in ("cmc", "metrics.cmc", "metrics.test.cmc", "test.cmc", "evaluation.cmc"):
            v = _get(obj, path)
            if v is not None:
                return np.asarray(v, dtype=float)
        for v in obj.values():  # e.g. {"metrics": {"market_sq": {"cmc": [...]}}}
            if isinstance(v, Mapping):
                try:
                    return _extract_cmc(v)
                except ReidError:
                    continue
        raise ReidError("no CMC curve found in this results dict (expected a 'cmc' list under 'metrics')")
    arr = _numpy(obj).astype(float)
    if arr.ndim != 1:
        raise ConfigError(f"a CMC curve is one-dimensional; got shape {arr.shape}")
    return arr


def plot_cmc(
    curves: Any,
    *,
    max_rank: int = 20,
    ax: Axes | None = None,
    title: str | None = None,
    label: str | None = None,
) -> Axes:
    """CMC curves in percent against rank (1-based).

    ``curves`` is one curve or ``{label: curve}``; a curve is an array of fractions, an object
    with ``.cmc`` (``reid.metrics.RankMetrics``), a results dict with ``metrics.cmc``, or a run
    directory (see :func:`run_cmc`).
    """
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    if isinstance(curves, Mapping) and not any(k in curves for k in ("cmc", "metrics")):
        items = list(curves.items())
    else:
        items = [(label, curves)]
    for name, curve in items:
        cmc = _extract_cmc(curve)[:max_rank]
        ranks = np.arange(1, len(cmc) + 1)
        ax.plot(ranks, 100 * cmc, marker="o", markersize=3, label=name)
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.set_xlim(1, max_rank)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    if any(name for name, _ in items):
        ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return ax


def plot_seed_spread(
    values: Mapping[str, Sequence[float]],
    *,
    ylabel: str = "mAP (%)",
    ax: Axes | None = None,
    title: str | None = None,
    seed: int = 0,
) -> Axes:
    """One column per method: each seed's value as a dot, with mean ± std as a bar."""
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(1.3 * max(3, len(values)) + 1, 3.5))
    rng = np.random.default_rng(seed)
    for i, (name, vals) in enumerate(values.items()):
        v = np.asarray(list(vals), dtype=float)
        jitter = rng.uniform(-0.12, 0.12, size=len(v))
        ax.scatter(np.full(len(v), i) + jitter, v, s=22, alpha=0.8, zorder=3)
        if len(v):
            mean = float(v.mean())
            std = float(v.std(ddof=1)) if len(v) > 1 else 0.0
            ax.errorbar(i + 0.28, mean, yerr=std, fmt="_", color="black", capsize=4, markersize=14, zorder=4)
    ax.set_xticks(range(len(values)))
    ax.set_xticklabels(list(values), rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    if title:
        ax.set_title(title)
    return ax


def plot_camera_pair_matrix(
    matrix: Any,
    *,
    cameras: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    percent: bool = True,
    cmap: str = "viridis",
    annotate: bool = True,
) -> Axes:
    """A probe-camera (rows) × gallery-camera (columns) heat map, e.g. the camera-pair mAP.

    ``matrix`` holds fractions when ``percent`` (shown ×100); NaN cells (no pairs) are left blank.
    Camera labels default to Market-1501's 1-based ``c1, c2, …``.
    """
    plt = _plt()
    m = _numpy(matrix).astype(float)
    if m.ndim != 2:
        raise ConfigError(f"a camera-pair matrix is two-dimensional; got shape {m.shape}")
    shown = 100 * m if percent else m
    labels = list(cameras) if cameras is not None else [f"c{i + 1}" for i in range(max(m.shape))]
    if ax is None:
        _, ax = plt.subplots(figsize=(0.6 * m.shape[1] + 2, 0.5 * m.shape[0] + 1.5))
    im = ax.imshow(np.ma.masked_invalid(shown), cmap=cmap, vmin=0, vmax=100 if percent else None)
    ax.set_xticks(range(m.shape[1]))
    ax.set_xticklabels(labels[: m.shape[1]])
    ax.set_yticks(range(m.shape[0]))
    ax.set_yticklabels(labels[: m.shape[0]])
    ax.set_xlabel("gallery camera")
    ax.set_ylabel("probe camera")
    if annotate:
        finite = shown[np.isfinite(shown)]
        # text colour by position on the colour scale (viridis is light at the top)
        lo, hi = (0.0, 100.0) if percent else ((finite.min(), finite.max()) if finite.size else (0.0, 1.0))
        mid = lo + 0.6 * (hi - lo)
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                if np.isfinite(shown[i, j]):
                    ax.text(j, i, f"{shown[i, j]:.0f}", ha="center", va="center", fontsize=8,
                            color="black" if shown[i, j] > mid else "white")
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="%" if percent else None)
    if title:
        ax.set_title(title)
    return ax


# --------------------------------------------------------------------------- embeddings
def plot_tsne(
    features: Any,
    pids: Any,
    camids: Any | None = None,
    *,
    num_ids: int = 10,
    max_per_id: int = 30,
    seed: int = 0,
    perplexity: float | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """A 2-D t-SNE of embeddings: colour = identity, marker = camera.

    Only the first ``num_ids`` identities (by sorted id, excluding Market's junk ``-1`` and
    distractor ``0``), at most ``max_per_id`` images each, are embedded, so the plot stays legible
    and fast. scikit-learn's TSNE with ``init="pca"``, ``random_state=seed`` and one thread:
    deterministic.
    """
    from sklearn.manifold import TSNE

    plt = _plt()
    x = _numpy(features).astype(np.float64)
    p = _numpy(pids).astype(int)
    c = _numpy(camids).astype(int) if camids is not None else np.zeros_like(p)
    if x.ndim != 2 or len(x) != len(p) or len(c) != len(p):
        raise ConfigError(f"features (N, D), pids (N,), camids (N,) expected; got {x.shape}, {p.shape}, {c.shape}")
    ids = [i for i in np.unique(p) if i > 0][:num_ids]
    keep = np.concatenate([np.flatnonzero(p == i)[:max_per_id] for i in ids]) if ids else np.array([], int)
    if len(keep) < 5:
        raise ConfigError(f"t-SNE needs at least 5 points; got {len(keep)} from {len(ids)} identities")
    x, p, c = x[keep], p[keep], c[keep]
    perp = perplexity if perplexity is not None else float(min(30.0, max(2.0, (len(x) - 1) / 4)))
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    # One OpenMP thread: the same embedding on every machine, and no spin-waiting threads (which
    # make Barnes-Hut t-SNE ~10x slower on a busy 2-core machine). A few hundred points take ~2 s.
    with threadpool_limits(limits=1, user_api="openmp"):
        xy = TSNE(n_components=2, perplexity=perp, init="pca", learning_rate="auto", random_state=seed).fit_transform(x)
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4.5))
    cmap = plt.get_cmap("tab10" if len(ids) <= 10 else "tab20")
    colour = {pid: cmap(k % cmap.N) for k, pid in enumerate(ids)}
    for cam in np.unique(c):
        sel = c == cam
        ax.scatter(xy[sel, 0], xy[sel, 1], c=[colour[q] for q in p[sel]], s=28,
                   marker=_CAMERA_MARKERS[int(cam) % len(_CAMERA_MARKERS)], edgecolors="none", alpha=0.85)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker=_CAMERA_MARKERS[int(cam) % len(_CAMERA_MARKERS)], linestyle="", color="gray",
                      label=f"c{int(cam) + 1}") for cam in np.unique(c)]
    ax.legend(handles=handles, title="camera", fontsize="small", loc="best", framealpha=0.6)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or f"t-SNE of {len(x)} embeddings, {len(ids)} identities (colour)")
    return ax


# --------------------------------------------------------------------------- images
def _load_image(path: str, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        return np.asarray(img.convert("RGB").resize(size))


def _frame(ax: Axes, colour: str, width: float = 3.0) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_edgecolor(colour)
        spine.set_linewidth(width)


def show_ranked_lists(
    query_records: Sequence[Any],
    gallery_records: Sequence[Any],
    dist: Any,
    k: int = 10,
    *,
    queries: Iterable[int] | None = None,
    num_queries: int = 4,
    market_rule: bool = True,
    image_size: tuple[int, int] = (64, 128),
    title: str | None = None,
) -> Figure:
    """Each query image with its ``k`` nearest gallery images.

    Frames: blue = query, green = same identity, red = different identity; each image is labelled
    with its camera (``c1`` = camera 0) and the gallery images with their rank. With
    ``market_rule`` the gallery is filtered as the Market-1501 evaluation does before ranking
    (same identity *and* same camera, and identity -1, removed), so what is shown is what is
    scored. ``queries`` picks query indices; by default ``num_queries`` evenly spaced ones.
    Records are ``reid.data.records.Record`` (``path, pid, camid``) or equivalent tuples.
    """
    plt = _plt()
    d = _numpy(dist).astype(float)
    if d.shape != (len(query_records), len(gallery_records)):
        raise ConfigError(f"dist must be (num_queries, num_gallery) = {(len(query_records), len(gallery_records))}; got {d.shape}")
    if queries is None:
        n = min(num_queries, len(query_records))
        queries = np.unique(np.linspace(0, len(query_records) - 1, n).round().astype(int)).tolist()
    queries = list(queries)
    g_pid = np.array([r[1] for r in gallery_records])
    g_cam = np.array([r[2] for r in gallery_records])
    fig, axes = plt.subplots(len(queries), k + 1, figsize=(1.0 * (k + 1), 2.1 * len(queries)), squeeze=False)
    for row, qi in enumerate(queries):
        q_path, q_pid, q_cam = query_records[qi][:3]
        order = np.argsort(d[qi], kind="stable")
        if market_rule:
            valid = (g_pid[order] != -1) & ~((g_pid[order] == q_pid) & (g_cam[order] == q_cam))
            order = order[valid]
        ax = axes[row, 0]
        ax.imshow(_load_image(q_path, image_size))
        _frame(ax, "tab:blue", 4.0)
        ax.set_title(f"query\nid {q_pid}, c{q_cam + 1}", fontsize=7)
        for col in range(k):
            ax = axes[row, col + 1]
            if col >= len(order):
                ax.axis("off")
                continue
            gi = order[col]
            ax.imshow(_load_image(gallery_records[gi][0], image_size))
            same = g_pid[gi] == q_pid
            _frame(ax, "tab:green" if same else "tab:red")
            ax.set_title(f"{col + 1}: c{g_cam[gi] + 1}", fontsize=7, color="tab:green" if same else "tab:red")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def show_identity_grid(
    records: Sequence[Any],
    *,
    pids: Sequence[int] | None = None,
    num_ids: int = 6,
    exclude: Sequence[int] = (-1, 0),
    image_size: tuple[int, int] = (64, 128),
    title: str | None = None,
) -> Figure:
    """One row per identity, one column per camera: the first image of that identity in that camera.

    Empty cells mean the identity was not seen by that camera. ``pids`` picks identities; by
    default the first ``num_ids`` sorted identities not in ``exclude`` (Market's junk ``-1`` and
    distractors ``0``; pass ``exclude=(-1,)`` for relabelled training records, which start at 0).
    """
    plt = _plt()
    all_pids = np.array([r[1] for r in records])
    cams = sorted({int(r[2]) for r in records})
    chosen = list(pids) if pids is not None else [p for p in sorted(set(all_pids.tolist())) if p not in exclude][:num_ids]
    first: dict[tuple[int, int], str] = {}
    for path, pid, cam in (r[:3] for r in records):
        first.setdefault((int(pid), int(cam)), path)
    fig, axes = plt.subplots(len(chosen), len(cams), figsize=(0.9 * len(cams) + 0.5, 1.9 * len(chosen)), squeeze=False)
    for i, pid in enumerate(chosen):
        for j, cam in enumerate(cams):
            ax = axes[i, j]
            path = first.get((int(pid), cam))
            if path is None:
                ax.axis("off")
                continue
            ax.imshow(_load_image(path, image_size))
            _frame(ax, "lightgray", 1.0)
            if i == 0:
                ax.set_title(f"c{cam + 1}", fontsize=8)
            if j == 0 or first.get((int(pid), cams[j - 1])) is None:
                ax.set_ylabel(f"id {pid}", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def show_records(
    records: Sequence[Any],
    *,
    ncols: int = 8,
    labels: Sequence[str] | None = None,
    frame_colours: Sequence[str] | None = None,
    image_size: tuple[int, int] = (64, 128),
    title: str | None = None,
) -> Figure:
    """Images of ``records`` in a grid, each captioned ``id <pid>, c<camera>`` (or ``labels``)."""
    plt = _plt()
    n = len(records)
    if n == 0:
        raise ConfigError("show_records needs at least one record")
    ncols = min(ncols, n)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(0.95 * ncols + 0.3, 1.95 * nrows), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        if i >= n:
            ax.axis("off")
            continue
        path, pid, cam = records[i][:3]
        ax.imshow(_load_image(path, image_size))
        _frame(ax, frame_colours[i] if frame_colours else "lightgray", 3.0 if frame_colours else 1.0)
        ax.set_title(labels[i] if labels else f"id {pid}, c{cam + 1}", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
