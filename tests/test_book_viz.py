"""reid.viz.common (the notebooks' plots and tables) and reid.papers (paper tables as data)."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from reid.errors import ConfigError, ReidError  # noqa: E402
from reid.papers import PAPER_IDS, PaperTable, available_papers, list_tables, load_paper, load_table  # noqa: E402
from reid.viz import (  # noqa: E402
    compare_with_paper,
    load_log,
    load_results,
    make_table,
    plot_camera_pair_matrix,
    plot_cmc,
    plot_seed_spread,
    plot_tsne,
    run_label,
    show_identity_grid,
    show_ranked_lists,
    show_records,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# --------------------------------------------------------------------------- reid.papers
@pytest.mark.parametrize("paper", available_papers())
def test_every_transcribed_table_loads(paper):
    data = load_paper(paper)
    assert data["paper"] == paper
    for key in list_tables(paper):
        table = load_table(paper, key)
        assert table.columns and table.rows, f"paper {paper}, {key}: empty table"
        assert all(len(v) == len(table.columns) for v in table.rows.values())
        assert table.caption and table.label.startswith(f"paper {paper}, ")
        for row, std in table.std.items():
            assert row in table.rows and len(std) == len(table.columns)
    for field in ("headline", "ablation"):
        if data.get(field):
            assert data[field] in data["tables"], f"paper {paper}: {field} names a table that does not exist"


def _fake_paper(tmp_path, monkeypatch):
    import reid.papers as papers

    (tmp_path / "009.json").write_text(json.dumps({
        "paper": "009", "title": "t", "units": "percent", "headline": "Table 1",
        "tables": {
            "Table 1": {"table": "Table 1", "caption": "c", "dataset": "Market-1501", "protocol": "SQ",
                        "columns": ["SQ mAP", "SQ rank1", "MQ mAP"],
                        "rows": {"TriNet [10]": [69.14, 84.92, 76.42], "TriNet + re-ranking": [81.07, 86.67, None],
                                 "Ours": [73.43, 88.27, 80.3]},
                        "std": {"Ours": [0.2, 0.3, None]}},
            "Table 2 (CUHK03)": {"table": "Table 2", "caption": "c2", "dataset": "CUHK03", "columns": ["r1"],
                                 "rows": {"Ours": [70.0]}},
            "Table 2 (VIPeR)": {"table": "Table 2", "caption": "c3", "dataset": "VIPeR", "columns": ["r1"],
                                "rows": {"Ours": [50.0]}},
        },
    }))
    monkeypatch.setattr(papers, "PAPERS_DIR", tmp_path)
    papers._read.cache_clear()
    return papers


def test_load_table_by_number_alias_and_clear_errors(tmp_path, monkeypatch):
    papers = _fake_paper(tmp_path, monkeypatch)
    try:
        t = papers.load_table(9, "Table 1")
        assert isinstance(t, PaperTable) and t.label == "paper 009, Table 1 (Market-1501)"
        assert t.row("Ours") == {"SQ mAP": 73.43, "SQ rank1": 88.27, "MQ mAP": 80.3}
        assert t.value("TriNet [10]", "SQ mAP") == 69.14
        assert papers.load_table("009", "Table 2 (VIPeR)").label == "paper 009, Table 2 (VIPeR)"
        with pytest.raises(ConfigError, match="ambiguous.*Table 2 \\(CUHK03\\)"):
            papers.load_table("009", "Table 2")
        with pytest.raises(ConfigError, match="does not exist"):
            papers.load_table("009", "Table 7")
        with pytest.raises(ConfigError, match="matches several rows"):
            t.row("TriNet")
        with pytest.raises(ConfigError, match="unknown paper"):
            papers.load_table("no_such_chapter", "Table 1")
        md = t.to_markdown()
        assert "| Ours | 73.43 ± 0.2 | 88.27 ± 0.3 | 80.3 |" in md and "| TriNet + re-ranking | 81.07 | 86.67 | – |" in md
        assert "paper 009, Table 1" in str(t)
    finally:
        papers._read.cache_clear()


def test_chapter_names_map_to_paper_ids():
    assert PAPER_IDS == {"smc_ecd": "000", "adaptive_margin": "001", "support_neighbor": "002",
                         "view_adaptation": "003", "joint_am_triplet": "004"}


# --------------------------------------------------------------------------- tables
def test_make_table_renders_markdown_and_text():
    t = make_table({"SMC": {"mAP": 41.234, "rank1": 60.0, "note": "a|b"}, "softmax": {"mAP": None}},
                   index="loss", title="T", note="N")
    md = t.to_markdown()
    assert md.splitlines()[:4] == ["**T**", "", "| loss | mAP | rank1 | note |", "| --- | ---: | ---: | --- |"]
    assert "| SMC | 41.2 | 60.0 | a\\|b |" in md and "| softmax | – | – | – |" in md and md.endswith("N")
    text = str(t)
    assert "SMC" in text and "41.2" in text and t._repr_markdown_() == md


def test_compare_with_paper_labels_every_row_and_converts_units(tmp_path, monkeypatch):
    papers = _fake_paper(tmp_path, monkeypatch)
    try:
        table = papers.load_table("009", "Table 1")
        cmp = compare_with_paper({"mAP": 0.4123, "rank1": 0.6}, table, methods=["TriNet [10]", "Ours"],
                                 column_map={"SQ mAP": "mAP", "SQ rank1": "rank1"},
                                 ours_label="SynthReID (smoke scale, CPU)")
        rows = cmp.rows
        assert [r["source"] for r in rows] == ["paper 009, Table 1 (Market-1501)"] * 2 + ["SynthReID (smoke scale, CPU)"]
        assert rows[0]["SQ mAP"] == "69.14"  # paper values as printed
        assert rows[2]["SQ mAP"] == pytest.approx(41.23) and rows[2]["MQ mAP"] is None  # no fuzzy SQ/MQ match
        assert "compare orderings" in cmp.note
        several = compare_with_paper({"a": {"R1": 0.5}, "b": {"rank-1": 0.25}}, table, columns=["SQ rank1"],
                                     column_map={"SQ rank1": "R1"}, ours_label="x")
        assert [r["SQ rank1"] for r in several.rows[-2:]] == [50.0, None]
        with pytest.raises(ConfigError, match="no column"):
            compare_with_paper({"mAP": 1.0}, table, columns=["Rank-50"])
        with pytest.raises(ConfigError, match="PaperTable"):
            compare_with_paper({"mAP": 1.0}, {"rows": {}})
    finally:
        papers._read.cache_clear()


# --------------------------------------------------------------------------- run directories
def test_load_results_and_run_label(tmp_path):
    with pytest.raises(ReidError, match="no results.json"):
        load_results(tmp_path)
    (tmp_path / "results.json").write_text(json.dumps({"dataset": {"name": "synthreid"}, "scale": "smoke", "device": "cpu"}))
    assert run_label(tmp_path) == "SynthReID (smoke scale, CPU)"
    assert run_label({"dataset": {"name": "market1501"}, "scale": "full", "device": "cuda:0"}) == "Market-1501 (full scale, GPU)"
    assert load_log(tmp_path) == []
    (tmp_path / "log.jsonl").write_text('{"epoch": 1, "loss": 2.0}\n{"epoch": 2, "loss": 1.5}\n')
    assert [r["loss"] for r in load_log(tmp_path)] == [2.0, 1.5]


# --------------------------------------------------------------------------- plots (headless)
class _Metrics:
    cmc = np.linspace(0.4, 1.0, 50)


def test_plots_run_headless():
    rng = np.random.default_rng(0)
    ax = plot_cmc({"a": _Metrics(), "b": np.linspace(0.2, 1.0, 50), "c": {"metrics": {"cmc": [0.1, 0.2, 0.3]}}}, max_rank=10)
    assert len(ax.lines) == 3
    ax = plot_seed_spread({"x": [1.0, 2.0, 3.0], "y": [2.0]})
    assert [t.get_text() for t in ax.get_xticklabels()] == ["x", "y"]
    m = rng.uniform(size=(3, 3))
    m[0, 0] = np.nan
    ax = plot_camera_pair_matrix(m)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["c1", "c2", "c3"]
    pids, cams = np.repeat(np.arange(1, 5), 6), np.tile(np.arange(3), 8)
    ax = plot_tsne(rng.normal(size=(24, 5)), pids, cams, num_ids=4)
    assert len(ax.collections) == 3  # one scatter per camera
    with pytest.raises(ConfigError):
        plot_tsne(rng.normal(size=(3, 5)), [1, 1, 2], [0, 1, 0])


def test_image_panels(tmp_path):
    rng = np.random.default_rng(0)
    records = []
    for i in range(8):
        path = tmp_path / f"{i}.jpg"
        Image.fromarray(rng.integers(0, 255, (32, 16, 3), dtype=np.uint8)).save(path)
        records.append((str(path), i % 3 + 1 if i != 7 else -1, i % 2))
    dist = rng.uniform(size=(2, 8))
    fig = show_ranked_lists(records[:2], records, dist, k=4)
    assert len(fig.axes) == 2 * 5
    with pytest.raises(ConfigError, match="dist must be"):
        show_ranked_lists(records[:2], records, dist[:, :3])
    assert len(show_identity_grid(records).axes) == 3 * 2
    assert len(show_records(records[:5], ncols=3).axes) == 6
