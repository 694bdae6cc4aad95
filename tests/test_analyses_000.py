"""Paper 000's analyses (reid.engine.analyses): multi-query (Table IV) and Joint Bayesian (Table VI).

The trained model is replaced by hand-made embeddings (``embed_records`` looked up by image path),
so every number below is worked out by hand; the real runs call the same functions with the
trained network's embeddings.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from reid.data.records import Record
from reid.engine import analyses
from reid.errors import ConfigError


def _features(query, gallery, metric="euclidean"):
    """The ``features`` dict the trainer passes (query/gallery embeddings, ids, cameras)."""
    def part(rows):
        return (torch.tensor([r[0] for r in rows], dtype=torch.float32), torch.tensor([r[1] for r in rows]),
                torch.tensor([r[2] for r in rows]))

    (qf, qp, qc), (gf, gp, gc) = part(query), part(gallery)
    return {"query": qf, "query_pids": qp, "query_camids": qc, "gallery": gf, "gallery_pids": gp, "gallery_camids": gc,
            "metric": metric, "normalize": False}


@pytest.fixture
def embeddings(monkeypatch):
    table: dict[str, list[float]] = {}

    def embed(model, objective, cfg, records):
        return torch.tensor([table[str(r.path)] for r in records], dtype=torch.float32)

    monkeypatch.setattr(analyses, "embed_records", embed)
    return table


def test_multi_query_pools_the_querys_own_camera_images(embeddings):
    # query 1 (camera 0) at (0, 0) is nearer identity 2's gallery image (1, 0) than its own (4, 4):
    # single query AP 1/2, rank-1 miss. Its multi-query image (4, 4), same identity and camera,
    # max-pools it onto (4, 4): distance 0 to its match, AP 1. Query 2 has no extra image.
    f = _features(query=[([0.0, 0.0], 1, 0), ([1.0, 0.2], 2, 0)], gallery=[([4.0, 4.0], 1, 1), ([1.0, 0.0], 2, 1)])
    embeddings["mq1"] = [4.0, 4.0]
    data = SimpleNamespace(dataset=SimpleNamespace(multi_query=[Record("mq1", 1, 0)]))
    out = analyses.multi_query(None, None, data, f, {})
    assert out == {"mq_mAP": pytest.approx(1.0), "mq_rank1": pytest.approx(1.0)}
    from reid.engine.evaluation import metrics_from_features

    single = metrics_from_features(f, metric="euclidean")
    assert (single["mAP"], single["rank1"]) == (pytest.approx(0.75), pytest.approx(0.5))


def test_multi_query_without_multi_query_images_is_a_clear_error():
    f = _features(query=[([0.0, 0.0], 1, 0)], gallery=[([1.0, 0.0], 1, 1)])
    with pytest.raises(ConfigError, match="multi-query images"):
        analyses.multi_query(None, None, SimpleNamespace(dataset=SimpleNamespace(multi_query=None)), f, {})


def test_joint_bayesian_learns_to_ignore_the_nuisance_direction(embeddings):
    # Identity lives on axis 0 (3 apart), a large per-image nuisance on axis 1 (sd 10). The
    # Euclidean ranking is dominated by the nuisance; the Joint Bayesian model fitted on the
    # training images learns that axis 1 varies *within* identities and ranks perfectly.
    g = torch.Generator().manual_seed(0)
    train = []
    for k in range(8):
        for j in range(12):
            name = f"t{k}_{j}"
            embeddings[name] = [3.0 * k + 0.05 * float(torch.randn(1, generator=g)), 10.0 * float(torch.randn(1, generator=g))]
            train.append(Record(name, k, j % 2))
    query, gallery = [], []
    for k, x0 in enumerate((0.0, 3.0, 6.0, 9.0)):
        query.append(([x0, 10.0 * float(torch.randn(1, generator=g))], k + 1, 0))
        gallery += [([x0, 10.0 * float(torch.randn(1, generator=g))], k + 1, 1) for _ in range(3)]
    f = _features(query, gallery)
    out = analyses.joint_bayesian(None, None, SimpleNamespace(dataset=SimpleNamespace(train=train)), f, {})
    from reid.engine.evaluation import metrics_from_features

    plain = metrics_from_features(f, metric="euclidean")["mAP"]
    assert out["jb_mAP"] == pytest.approx(1.0) and out["jb_rank1"] == pytest.approx(1.0)
    assert plain < 0.9 and out["jb_gain_mAP"] == pytest.approx(1.0 - plain)


def test_paper_000_metrics_are_declared_and_shown_in_points():
    assert analyses.declared_metrics(["negatives_of_interest", "multi_query", "joint_bayesian"]) == {
        "neg_interest_k1", "neg_interest_k10", "mq_mAP", "mq_rank1", "jb_mAP", "jb_rank1", "jb_gain_mAP"}
    fractions = analyses.fraction_metrics()
    assert {"mq_mAP", "jb_mAP", "jb_gain_mAP"} <= fractions and "neg_interest_k10" not in fractions  # a percentage
    with pytest.raises(ValueError, match="not among its metrics"):
        analyses.register_analysis("bad_fraction", metrics=("a",), fractions=("b",))
