"""Paper 000's mechanism toys (reid.toys.smc_ecd): the geometry the chapter draws must hold."""

from __future__ import annotations

import pytest
import torch

from reid.toys import smc_ecd as toy


@pytest.fixture(scope="module")
def cloud():
    return toy.camera_clusters(num_ids=4, num_cameras=3, centre=(0.0, 0.0), seed=0)


def test_centre_definitions_fig5(cloud):
    c = toy.centre_definitions(cloud, identity=0)
    # meta-centre = s x unweighted mean of the sub-centres (Eq. 2; errata 000-meta-center-scale)
    assert c["s"] == 3
    torch.testing.assert_close(torch.as_tensor(c["meta"]), 3 * torch.as_tensor(c["unweighted"]))
    # the centre-loss centre is the image-weighted mean (Eq. 3): closest to the 12-image camera
    sub = torch.as_tensor(c["sub"])
    weights = torch.tensor([12.0, 4.0, 2.0]) / 18
    torch.testing.assert_close(torch.as_tensor(c["weighted"]), (weights[:, None] * sub).sum(0))
    assert torch.as_tensor(c["weighted"]).sub(sub[0]).norm() < torch.as_tensor(c["unweighted"]).sub(sub[0]).norm()


def test_smc_contracts_like_the_centre_loss_and_drifts_outward(cloud):
    steps = 6
    centre = toy.simulate(cloud, "center", steps=steps, lr=0.05, snapshot_every=steps)
    smc = toy.simulate(cloud, "smc", steps=steps, lr=0.05, snapshot_every=steps)
    start, c_end, s_end = centre.stats[0], centre.stats[-1], smc.stats[-1]
    # same contraction of every class around its mean ...
    assert s_end["radius"] == pytest.approx(c_end["radius"], rel=1e-9)
    assert c_end["radius"] < start["radius"]
    # ... but SMC moves the classes away from the origin, the centre loss does not
    assert s_end["origin_distance"] > 1.1 * start["origin_distance"]
    assert c_end["origin_distance"] == pytest.approx(start["origin_distance"], rel=0.05)


def test_simulate_rejects_unknown_loss(cloud):
    with pytest.raises(ValueError, match="loss must be"):
        toy.simulate(cloud, "triplet")
