"""The papers' result tables, as data.

Every number a chapter quotes from a paper is transcribed once, into ``reid/papers/<paper>.json``
(``<paper>`` is the paper id ``000`` … ``004``), cited to its table number, and read with
:func:`load_table`. Notebooks never type a paper's number by hand.

JSON schema (one file per paper)::

    {
      "paper": "002",                              # paper id, equal to the file name
      "title": "Support Neighbor Loss for Person Re-Identification",
      "authors": "Li, Ding, Li, Zhang, Fu",
      "venue": "ACM Multimedia, 2018",             # or null
      "units": "percent",                          # default unit of the values (CMC / mAP in %)
      "headline": "Table 1",                       # key of the table a chapter leads with
      "ablation": "Table 3" | null,                # key of the paper's ablation table, if any
      "ablation_note": "...",                      # optional: why there is none, what stands in
      "tables": {
        "Table 1": {                               # key: the paper's table number, plus
                                                   #   " (Dataset)" when a table has several halves
          "table": "Table 1",                      # the table number as printed
          "caption": "...",                        # the paper's caption (paraphrased if long)
          "dataset": "Market-1501",
          "protocol": "single query, ...",         # how the numbers were measured
          "columns": ["SQ mAP", "SQ rank1"],       # column names
          "rows": {"Ours": [77.9, 88.3], ...},     # method -> one value (or null) per column
          "units": "identities",                   # optional: overrides the file's "units"
          "std": {"Ours": [0.2, 0.3]},             # optional: +- per row/column where printed
          "notes": ["..."],                        # optional: transcription remarks
          ...                                      # other optional per-table fields are kept
        }
      }
    }

Rows keep the paper's order and names (including its reference numbers, e.g. ``"TriNet [10]"``).
A value the paper does not report, or that was lost in extraction, is ``null`` and shows as "–".

Two more top-level keys register the chapter's **study** (issue 10): the claims it tests, fixed
before any run, and how (read and validated by :func:`reid.study.registry.load_study`, which
documents every key; ``reid study <chapter>`` runs it)::

      "study": {"chapter": "support_neighbor", "recipe": "support_neighbor", "dataset": "synthreid",
                "scale": "study", "seeds": 5,
                "overrides": {"eval.analyses": []},                    # optional, every variant
                "variants": {"batch_hard": {"loss.name": "batch_hard"},
                             "support_neighbor": {"loss.name": "support_neighbor"}}},
      "claims": [{"id": "sn_beats_bh_map", "claim": "one sentence", "source": "Table 1",
                  "section": "evidence",                              # optional: chapter anchor
                  "paper": {"baseline": 69.14, "variant": 73.43, "metric": "mAP",
                            "dataset": "Market-1501"},                # or null
                  "test": {"baseline": "batch_hard", "variant": "support_neighbor",
                           "metric": "mAP", "expected": "greater",   # variant - baseline
                           "rule": {"name": "ci95"}}}]                # | min_effect (delta) |
                                                                      #   equivalence (margin,
                                                                      #   expected "equal") |
                                                                      #   slope (x, metrics)

Metric values are compared as ``results.json`` stores them (rank-k / mAP / mINP are fractions:
a 2-point minimum effect is ``"delta": 0.02``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from reid.errors import ConfigError

PAPERS_DIR = Path(__file__).resolve().parent

#: Chapter names, so ``load_table("support_neighbor", ...)`` works as well as ``load_table("002", ...)``.
PAPER_IDS: dict[str, str] = {
    "smc_ecd": "000",
    "adaptive_margin": "001",
    "support_neighbor": "002",
    "view_adaptation": "003",
    "joint_am_triplet": "004",
}

__all__ = ["PAPER_IDS", "PaperTable", "available_papers", "list_tables", "load_paper", "load_table"]


def _paper_id(paper: str | int) -> str:
    key = str(paper)
    if key in PAPER_IDS:
        return PAPER_IDS[key]
    if key.isdigit():
        return key.zfill(3)
    raise ConfigError(
        f"unknown paper {paper!r}: use a paper id ({', '.join(sorted(PAPER_IDS.values()))}) "
        f"or a chapter name ({', '.join(PAPER_IDS)})"
    )


def available_papers() -> list[str]:
    """Paper ids that have a table file."""
    return sorted(p.stem for p in PAPERS_DIR.glob("*.json"))


@lru_cache(maxsize=None)
def _read(paper_id: str) -> dict:
    path = PAPERS_DIR / f"{paper_id}.json"
    if not path.exists():
        raise ConfigError(
            f"no table file for paper {paper_id}: expected {path} "
            f"(available: {', '.join(available_papers()) or 'none'})"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc}); fix the file") from exc
    if not isinstance(data, dict) or not isinstance(data.get("tables"), dict):
        raise ConfigError(f"{path} has no 'tables' object; see the schema in reid/papers/__init__.py")
    return data


def load_paper(paper: str | int) -> dict:
    """The whole parsed JSON file of one paper (a fresh copy)."""
    return json.loads(json.dumps(_read(_paper_id(paper))))


def list_tables(paper: str | int) -> list[str]:
    """The table keys of one paper, in file order."""
    return list(_read(_paper_id(paper))["tables"])


@dataclass(frozen=True)
class PaperTable:
    """One transcribed table of a paper.

    ``rows`` maps each method (the paper's row label) to one value per column (``None`` where the
    paper reports none). ``label`` is what every display of these numbers carries, e.g.
    ``"paper 002, Table 1 (Market-1501)"``.
    """

    paper: str
    key: str
    table: str
    caption: str
    dataset: str
    protocol: str
    columns: list[str]
    rows: dict[str, list[float | None]]
    units: str = "percent"
    std: dict[str, list[float | None]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        suffix = "" if self.dataset and self.dataset in self.key else f" ({self.dataset})" if self.dataset else ""
        return f"paper {self.paper}, {self.key}{suffix}"

    @property
    def methods(self) -> list[str]:
        return list(self.rows)

    def row(self, method: str) -> dict[str, float | None]:
        """One method's values by column name; ``method`` may be a unique substring of the row label."""
        name = self._match_row(method)
        return dict(zip(self.columns, self.rows[name]))

    def value(self, method: str, column: str) -> float | None:
        if column not in self.columns:
            raise ConfigError(f"{self.label} has no column {column!r}; columns: {', '.join(self.columns)}")
        return self.row(method)[column]

    def _match_row(self, method: str) -> str:
        if method in self.rows:
            return method
        hits = [name for name in self.rows if method.lower() in name.lower()]
        if len(hits) == 1:
            return hits[0]
        what = "matches several rows" if hits else "matches no row"
        raise ConfigError(f"{method!r} {what} of {self.label}; rows: {', '.join(self.rows)}")

    def to_markdown(self, *, methods: list[str] | None = None, columns: list[str] | None = None) -> str:
        """A Markdown table (paper's row order), with the table's label as its first line."""
        cols = columns or self.columns
        names = [self._match_row(m) for m in methods] if methods else list(self.rows)
        idx = [self.columns.index(c) for c in cols]
        lines = [
            f"**{self.label}**: {self.caption} Units: {self.units}.",
            "",
            "| method | " + " | ".join(cols) + " |",
            "| --- | " + " | ".join("---:" for _ in cols) + " |",
        ]
        for name in names:
            vals = self.rows[name]
            std = self.std.get(name)
            cells = []
            for i in idx:
                cell = _fmt_value(vals[i])
                if std and i < len(std) and std[i] is not None and vals[i] is not None:
                    cell += f" ± {std[i]:g}"
                cells.append(cell)
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def __str__(self) -> str:
        width = max([len("method")] + [len(n) for n in self.rows])
        colw = [max(len(c), 6) for c in self.columns]
        head = "method".ljust(width) + "  " + "  ".join(c.rjust(w) for c, w in zip(self.columns, colw))
        out = [f"{self.label}: {self.caption} [{self.units}]", head]
        for name, vals in self.rows.items():
            out.append(name.ljust(width) + "  " + "  ".join(_fmt_value(v).rjust(w) for v, w in zip(vals, colw)))
        return "\n".join(out)


def _fmt_value(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def load_table(paper: str | int, table: str) -> PaperTable:
    """One table of a paper.

    ``paper`` is a paper id (``"002"``) or a chapter name (``"support_neighbor"``); ``table`` is a
    table key of the file (``"Table II (Market-1501)"``) or a table number that identifies one key
    (``"Table 1"``; ``"Table II"`` is ambiguous when the paper's Table II has several halves, and the
    error lists them).
    """
    pid = _paper_id(paper)
    data = _read(pid)
    tables = data["tables"]
    if table in tables:
        key = table
    else:
        hits = [k for k in tables if k.startswith(table + " ") or k.lower() == table.lower()]
        if len(hits) != 1:
            what = "is ambiguous" if hits else "does not exist"
            raise ConfigError(
                f"table {table!r} of paper {pid} {what}; choose one of: {', '.join(map(repr, tables))}"
            )
        key = hits[0]
    t = tables[key]
    columns = list(t.get("columns", []))
    rows = {}
    for name, vals in t.get("rows", {}).items():
        vals = list(vals) if isinstance(vals, list) else [vals]
        if len(vals) != len(columns):
            raise ConfigError(
                f"paper {pid}, {key}: row {name!r} has {len(vals)} values for {len(columns)} columns; fix reid/papers/{pid}.json"
            )
        rows[name] = vals
    known = {"table", "caption", "dataset", "protocol", "columns", "rows", "units", "std", "notes"}
    notes = t.get("notes", [])
    return PaperTable(
        paper=pid,
        key=key,
        table=t.get("table", key),
        caption=t.get("caption", ""),
        dataset=t.get("dataset", "") or "",
        protocol=t.get("protocol", "") or "",
        columns=columns,
        rows=rows,
        units=t.get("units", data.get("units", "percent")),
        std={k: list(v) for k, v in (t.get("std") or {}).items()},
        notes=[notes] if isinstance(notes, str) else list(notes),
        extra={k: v for k, v in t.items() if k not in known},
    )
