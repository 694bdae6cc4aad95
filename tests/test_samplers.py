"""Batch samplers: composition, layout, reproducibility and clear errors."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from reid.data.samplers import AnchorPairSampler, CrossViewPairSampler, PKSampler
from reid.errors import ConfigError

# 10 identities; identity 9 has a single image; 2 cameras, each identity in both except 9
PIDS = np.repeat(np.arange(10), [6, 5, 4, 4, 4, 3, 6, 5, 4, 1])
CAMS = np.array([i % 2 for i in range(PIDS.size)])
CAMS[PIDS == 9] = 0


def test_pk_batches_hold_p_identities_times_k():
    sampler = PKSampler(PIDS, p=4, k=3, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == PIDS.size // 12
    for batch in batches:
        assert len(batch) == 12
        ids = PIDS[batch].reshape(4, 3)
        assert (ids == ids[:, :1]).all() and len(set(ids[:, 0])) == 4
        for row, pid in zip(np.array(batch).reshape(4, 3), ids[:, 0]):
            if (PIDS == pid).sum() >= 3:
                assert len(set(row)) == 3        # distinct images when there are enough


def test_pk_small_identity_is_sampled_with_replacement():
    sampler = PKSampler(PIDS, p=10, k=4, seed=1, num_batches=3)
    for batch in sampler:
        assert Counter(PIDS[batch].tolist()) == {pid: 4 for pid in range(10)}


def test_pk_is_reproducible_per_epoch():
    a, b = PKSampler(PIDS, 4, 2, seed=5), PKSampler(PIDS, 4, 2, seed=5)
    assert list(a) == list(b)                     # epoch 0
    assert list(a) != list(PKSampler(PIDS, 4, 2, seed=5))   # a is now at epoch 1
    b.set_epoch(1)
    a.set_epoch(1)
    assert list(a) == list(b)
    assert list(PKSampler(PIDS, 4, 2, seed=6)) != list(PKSampler(PIDS, 4, 2, seed=5))


def test_pk_covers_the_data_roughly_once():
    pids = np.repeat(np.arange(50), 4)
    seen = np.concatenate([b for b in PKSampler(pids, 5, 4, seed=0)])
    assert seen.size == pids.size and np.unique(seen).size > 0.5 * pids.size


def test_pk_rejects_impossible_batches():
    with pytest.raises(ConfigError, match="lower p to at most 10"):
        PKSampler(PIDS, p=11, k=4)
    with pytest.raises(ConfigError):
        PKSampler(PIDS, p=0, k=4)
    with pytest.raises(ConfigError):
        PKSampler(PIDS, p=2, k=2, num_batches=0)


def test_pk_drives_a_dataloader():
    data = TensorDataset(torch.arange(PIDS.size), torch.as_tensor(PIDS))
    loader = DataLoader(data, batch_sampler=PKSampler(PIDS, 2, 4, seed=0, num_batches=3))
    shapes = [labels.reshape(2, 4) for _, labels in loader]
    assert len(shapes) == 3 and all((s == s[:, :1]).all() for s in shapes)


def test_anchor_pair_units():
    sampler = AnchorPairSampler(PIDS, CAMS, anchors=3, positives=2, negatives=4, seed=0)
    assert 9 not in sampler.views                # seen in one view only
    batches = list(sampler)
    eligible = np.flatnonzero((CAMS == 0) & (PIDS != 9))
    assert len(batches) == eligible.size // 3
    anchors_used = []
    for batch in batches:
        units = np.array(batch).reshape(3, 1 + 2 + 4)
        for unit in units:
            anchor, pos, neg = unit[0], unit[1:3], unit[3:]
            anchors_used.append(anchor)
            assert CAMS[anchor] == 0 and (CAMS[unit[1:]] == 1).all()
            assert (PIDS[pos] == PIDS[anchor]).all() and (PIDS[neg] != PIDS[anchor]).all()
            assert len(set(PIDS[neg])) == 4
    assert len(set(anchors_used)) == len(anchors_used)  # each anchor once per epoch
    feats = torch.arange(len(batches[0]))[:, None].float()
    a, p, n = sampler.split(feats)
    assert a.shape == (3, 1) and p.shape == (3, 2, 1) and n.shape == (3, 4, 1)
    pairs = sampler.pair_index()
    assert pairs.shape == (3 * 6, 3) and pairs[:, 2].sum() == 3 * 2
    same = PIDS[np.array(batches[0])[pairs[:, 0]]] == PIDS[np.array(batches[0])[pairs[:, 1]]]
    assert (same == pairs[:, 2].astype(bool)).all()


def test_anchor_pairs_on_a_multi_camera_set_and_errors():
    cams = np.arange(PIDS.size) % 3
    sampler = AnchorPairSampler(PIDS, cams, anchors=2, positives=1, negatives=1, probe_cam=None, gallery_cam=None)
    for batch in sampler:
        for anchor, pos, _ in np.array(batch).reshape(2, 3):
            assert PIDS[anchor] == PIDS[pos] and cams[anchor] != cams[pos]
    with pytest.raises(ConfigError, match="cameras 4 and 5"):
        AnchorPairSampler(PIDS, CAMS, anchors=2, positives=1, negatives=1, probe_cam=4, gallery_cam=5)
    with pytest.raises(ConfigError, match="cross views"):
        AnchorPairSampler(PIDS, CAMS, anchors=2, positives=1, negatives=1, probe_cam=0, gallery_cam=0)


def test_cross_view_sp_batches():
    sampler = CrossViewPairSampler(PIDS, CAMS, p=4, s=4, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler.views) == 9   # one batch per eligible identity
    firsts = []
    for batch in batches:
        block = np.array(batch).reshape(4, 4)
        firsts.append(PIDS[block[0, 0]])
        assert len(set(PIDS[block[:, 0]])) == 4
        assert (PIDS[block] == PIDS[block[:, :1]]).all()
        assert (CAMS[block[:, :2]] == 0).all() and (CAMS[block[:, 2:]] == 1).all()
    assert sorted(firsts) == sorted(sampler.views)    # every identity leads one batch
    probe, gallery = sampler.split(torch.arange(16))
    assert probe.shape == gallery.shape == (4, 2)
    assert sampler.view_labels().tolist() == [0, 0, 1, 1] * 4
    with pytest.raises(ConfigError, match="even s"):
        CrossViewPairSampler(PIDS, CAMS, p=4, s=3)
    with pytest.raises(ConfigError, match="at least 10 identities"):
        CrossViewPairSampler(PIDS, CAMS, p=10, s=2)


def test_cross_view_random_camera_pair_per_identity_is_fixed():
    cams = np.arange(PIDS.size) % 3
    sampler = CrossViewPairSampler(PIDS, cams, p=3, s=2, probe_cam=None, gallery_cam=None, seed=2)
    pair = {pid: (cams[v[0][0]], cams[v[1][0]]) for pid, v in sampler.views.items()}
    for _ in range(2):
        for batch in sampler:
            for a, b in np.array(batch).reshape(3, 2):
                assert (cams[a], cams[b]) == pair[PIDS[a]]
