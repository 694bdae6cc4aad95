"""Paper 002's mechanism toys (reid.toys.support_neighbor): the forces and runs the chapter draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reid.losses import SupportNeighborLoss
from reid.toys import support_neighbor as toy


def test_toy_batch_layout():
    x, y = toy.toy_batch(p=3, q=5, seed=1)
    assert x.shape == (15, 2) and x.dtype == torch.float64
    assert y.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    torch.testing.assert_close(x, toy.toy_batch(p=3, q=5, seed=1)[0])


def test_anchor_forces_are_the_split_loss_gradient():
    x, y = toy.toy_batch(seed=0)
    info = toy.anchor_forces(x, y, anchor=0, k=5, sigma=4.0)
    assert len(info["index"]) == 5 and 0 not in info["index"].tolist()
    # the loss depends on differences only: the forces of each part sum to zero over the batch
    for part in ("separation", "squeeze"):
        np.testing.assert_allclose(info[part].sum(0), 0.0, atol=1e-10)
    # separation + squeeze = the negative gradient of the lambda = 1 loss
    xx = x.clone().requires_grad_(True)
    SupportNeighborLoss(5, 4.0, 1.0, reduction="sum")(xx, y).backward()
    np.testing.assert_allclose(info["separation"] + info["squeeze"], -xx.grad.numpy(), atol=1e-12)


def test_simulate_squeeze_tightens_identities():
    x, y = toy.toy_batch(seed=0)
    sep_only = toy.simulate(x, y, "sn", k=8, lam=0.0, steps=30)
    squeezed = toy.simulate(x, y, "sn", k=8, lam=1.0, steps=30)
    assert len(sep_only.stats) == 31 and sep_only.stats[0]["intra"] == pytest.approx(squeezed.stats[0]["intra"])
    assert squeezed.stats[-1]["intra"] < sep_only.stats[-1]["intra"]
    bh = toy.simulate(x, y, "batch_hard", margin=0.5, steps=5)
    assert bh.end.shape == (16, 2) and not np.allclose(bh.end, bh.start)
