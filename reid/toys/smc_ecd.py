"""Mechanism toys for paper 000 (SMC + ECD): the meta-centre and what it does to a feature cloud.

Everything here works on small 2-D point clouds that stand in for pool5 features, so the geometry
of Fig. 3, 5 and 6 of the paper can be drawn (the drawings are in :mod:`reid.viz.smc_ecd`). The
losses and the centre bookkeeping are the library's (:mod:`reid.losses.smc_ecd`,
:mod:`reid.losses.centers`); this module only builds toy data and runs a few gradient steps on the
points themselves.

* :func:`camera_clusters` — identities seen by several cameras with unbalanced image counts and a
  camera offset shared by all identities (the "viewpoint problem" of Fig. 1: two people under the
  same camera can be closer than one person under two cameras).
* :func:`exact_camera_centers` — a :class:`~reid.losses.centers.CameraCenters` whose sub-centres
  are the exact per-(identity, camera) means of a point cloud.
* :func:`centre_definitions` — Fig. 5: centre-loss centre (weighted mean), unweighted mean and
  meta-centre (sum) of one identity.
* :func:`simulate` — Fig. 3: the features themselves are the parameters; each step is one forward of
  the library loss (which also moves the sub-centres, as in training) and one SGD step.
* :func:`cloud_statistics` — the class geometry the simulations report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from reid.losses.centers import CameraCenters, CenterLoss
from reid.losses.smc_ecd import ECDLoss, SMCLoss
from reid.metrics import pairwise_distance, rank_metrics

__all__ = [
    "ToyCloud",
    "camera_clusters",
    "exact_camera_centers",
    "centre_definitions",
    "Simulation",
    "simulate",
    "cloud_statistics",
]


@dataclass
class ToyCloud:
    """A 2-D toy feature cloud: ``x`` (n, 2) float64, identity ``y`` and camera ``g`` per point."""

    x: torch.Tensor
    y: torch.Tensor
    g: torch.Tensor
    num_ids: int
    num_cameras: int


def camera_clusters(
    num_ids: int = 4,
    num_cameras: int = 3,
    *,
    identity_spread: float = 1.0,
    camera_shift: float = 0.9,
    noise: float = 0.25,
    counts: tuple[int, ...] = (12, 4, 2),
    centre: tuple[float, float] = (2.0, 1.0),
    seed: int = 0,
) -> ToyCloud:
    """Identities on a circle around ``centre``, each camera adding the same offset to everyone.

    Identity ``u`` seen by camera ``j`` sits at ``centre + identity_spread·e(u) + camera_shift·v(j)``
    plus Gaussian noise, with ``counts[j]`` images (unbalanced cameras, as in Fig. 5). With
    ``camera_shift`` close to ``identity_spread`` the cameras confuse the identities.
    """
    gen = torch.Generator().manual_seed(seed)
    angles = torch.arange(num_ids, dtype=torch.float64) * (2 * np.pi / num_ids)
    id_pos = identity_spread * torch.stack([angles.cos(), angles.sin()], 1)
    cam_angles = torch.arange(num_cameras, dtype=torch.float64) * (2 * np.pi / num_cameras) + np.pi / 6
    cam_shift = camera_shift * torch.stack([cam_angles.cos(), cam_angles.sin()], 1)
    xs, ys, gs = [], [], []
    for u in range(num_ids):
        for j in range(num_cameras):
            n = counts[j % len(counts)]
            base = torch.tensor(centre, dtype=torch.float64) + id_pos[u] + cam_shift[j]
            xs.append(base + noise * torch.randn(n, 2, generator=gen, dtype=torch.float64))
            ys.append(torch.full((n,), u))
            gs.append(torch.full((n,), j))
    return ToyCloud(torch.cat(xs), torch.cat(ys), torch.cat(gs), num_ids, num_cameras)


def exact_camera_centers(cloud: ToyCloud, x: torch.Tensor | None = None, alpha: float = 0.5) -> CameraCenters:
    """A :class:`CameraCenters` holding the exact per-(identity, camera) means of ``x`` (default ``cloud.x``)."""
    x = cloud.x if x is None else x
    centers = CameraCenters(cloud.num_ids, cloud.num_cameras, x.shape[1], alpha).to(torch.float64)
    with torch.no_grad():
        for u in range(cloud.num_ids):
            for j in range(cloud.num_cameras):
                sel = (cloud.y == u) & (cloud.g == j)
                if sel.any():
                    centers.centers[u, j] = x[sel].mean(0)
                    centers.seen[u, j] = True
    return centers


def centre_definitions(cloud: ToyCloud, identity: int) -> dict[str, np.ndarray]:
    """The three "centres" of one identity (Eq. 2 and 3 of paper 000), from the library's centres.

    ``weighted`` = centre-loss centre (mean of all its images, weights N_j/N),
    ``unweighted`` = mean of the s sub-centres, ``meta`` = their sum (``CameraCenters.meta_centers``).
    """
    centers = exact_camera_centers(cloud)
    label = torch.tensor([identity])
    meta = centers.meta_centers(label)[0]
    s = int(centers.num_seen_cameras(label)[0])
    sub = centers.centers[identity][centers.seen[identity]]
    return {
        "points": cloud.x[cloud.y == identity].numpy(),
        "cameras": cloud.g[cloud.y == identity].numpy(),
        "sub": sub.numpy(),
        "weighted": cloud.x[cloud.y == identity].mean(0).numpy(),
        "unweighted": (meta / s).numpy(),
        "meta": meta.numpy(),
        "s": s,
    }


# ----------------------------------------------------------------------------------------------
# Dynamics: gradient steps on the points themselves
# ----------------------------------------------------------------------------------------------


@dataclass
class Simulation:
    """Result of :func:`simulate`: snapshots of the points and per-step statistics."""

    loss: str
    snapshots: dict[int, np.ndarray]
    centres: dict[int, np.ndarray]  # meta- (SMC) or plain (centre loss) centres per identity
    stats: list[dict] = field(default_factory=list)


def cloud_statistics(x: torch.Tensor, cloud: ToyCloud) -> dict:
    """Class geometry of a point cloud: scale, spread, separation and a cross-camera rank-1.

    ``radius`` = mean distance of a point to its identity mean; ``origin_distance`` = mean norm of
    the identity means; ``min_centre_gap`` = smallest distance between two identity means;
    ``ratio`` = min_centre_gap / radius (scale-free separation); ``rank1`` = leave-one-out
    nearest neighbour accuracy against the *other cameras'* points (Market's rule: same identity
    and same camera is junk), via :func:`reid.metrics.rank_metrics`.
    """
    x = x.detach()
    means = torch.stack([x[cloud.y == u].mean(0) for u in range(cloud.num_ids)])
    radius = (x - means[cloud.y]).norm(dim=1).mean()
    gaps = torch.cdist(means, means) + torch.eye(cloud.num_ids, dtype=x.dtype) * 1e9
    dist = pairwise_distance(x, x)
    dist.fill_diagonal_(float("inf"))
    res = rank_metrics(dist, cloud.y.numpy(), cloud.y.numpy(), cloud.g.numpy(), cloud.g.numpy(), max_rank=1)
    return {
        "radius": float(radius),
        "origin_distance": float(means.norm(dim=1).mean()),
        "min_centre_gap": float(gaps.min()),
        "ratio": float(gaps.min() / radius),
        "rank1": 100.0 * float(res.rank1),
    }


def simulate(
    cloud: ToyCloud,
    loss: str = "smc",
    *,
    steps: int = 40,
    lr: float = 0.05,
    lambda_ecd: float = 0.05,
    ecd_eps: float = 1e-6,
    alpha: float = 0.5,
    snapshot_every: int = 10,
) -> Simulation:
    """Move the points of ``cloud`` by SGD on one of paper 000's centre-type losses.

    ``loss``: ``"center"`` (centre loss, :class:`CenterLoss`), ``"ecd"`` (``lambda_ecd`` ·
    :class:`ECDLoss` alone), ``"smc"`` (:class:`SMCLoss`) or ``"smc_ecd"`` (SMC + ``lambda_ecd`` ·
    :class:`ECDLoss` on the same sub-centres). The centres
    start at the exact means of the initial cloud and then move by the library's centre-update
    rule inside each training-mode ``forward`` (one forward = one iteration of the paper); the
    points receive ``lr`` times the gradient of the summed loss. No softmax term: this isolates
    what the centre terms do on their own (in training, softmax and weight decay counteract the
    outward drift that SMC produces here).
    """
    if loss not in ("center", "ecd", "smc", "smc_ecd"):
        raise ValueError(f"loss must be 'center', 'ecd', 'smc' or 'smc_ecd', got {loss!r}")
    x = cloud.x.clone().requires_grad_(True)
    if loss == "center":
        module = CenterLoss(cloud.num_ids, 2, alpha, reduction="sum", update_in_forward=False).to(torch.float64)
        with torch.no_grad():
            module.centers.copy_(torch.stack([cloud.x[cloud.y == u].mean(0) for u in range(cloud.num_ids)]))
        terms = [(1.0, lambda: module(x, cloud.y))]

        def centres() -> np.ndarray:
            return module.centers.detach().numpy().copy()

    else:
        shared = exact_camera_centers(cloud, alpha=alpha)
        smc = SMCLoss(shared, reduction="sum", update_in_forward=False)
        terms = [(1.0, lambda: smc(x, cloud.y, cloud.g))] if loss != "ecd" else []
        if loss in ("ecd", "smc_ecd"):
            ecd = ECDLoss(shared, eps=ecd_eps, reduction="sum", update_in_forward=False)
            terms.append((lambda_ecd, lambda: ecd(x, cloud.y, cloud.g)))

        def centres() -> np.ndarray:
            return shared.meta_centers(torch.arange(cloud.num_ids)).numpy().copy()

    opt = torch.optim.SGD([x], lr=lr)
    sim = Simulation(loss, {0: cloud.x.numpy().copy()}, {0: centres()})
    sim.stats.append({"step": 0, **cloud_statistics(x, cloud)})
    for step in range(1, steps + 1):
        opt.zero_grad()
        total = sum(w * fn() for w, fn in terms)
        total.backward()
        # the paper's order: loss on the current centres, then the centres move toward the batch
        if loss == "center":
            module.update_centers(x.detach(), cloud.y)
        else:
            smc.update_centers(x.detach(), cloud.y, cloud.g)
        opt.step()
        sim.stats.append({"step": step, "loss": float(total.detach()), **cloud_statistics(x, cloud)})
        if step % snapshot_every == 0 or step == steps:
            sim.snapshots[step] = x.detach().numpy().copy()
            sim.centres[step] = centres()
    return sim
