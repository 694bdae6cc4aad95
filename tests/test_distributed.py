"""Multi-process training (torch.distributed, gloo on the CPU): samplers, gathered losses, centres, torchrun.

The loss-equivalence cases spawn 2 processes (``torch.multiprocessing.spawn``, gloo, a free
localhost port) on tiny float64 tensors: with the global batch gathered, each rank's loss equals
the one-process loss of the whole batch and the gradient of its slice equals the matching slice
of the one-process gradient, to 1e-10 (float64). One end-to-end case launches ``torchrun
--nproc_per_node 2 -m reid train`` on the ``tiny`` SynthReID preset and resumes its checkpoint.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from reid.data.samplers import AnchorPairSampler, CrossViewPairSampler, PKSampler
from reid.errors import ConfigError

WORLD = 2
TOL = 1e-10  # float64
ROOT = Path(__file__).resolve().parents[1]

PIDS = np.repeat(np.arange(12), 5)
CAMS = np.array([i % 2 for i in range(PIDS.size)])


# -- samplers (no processes needed) -------------------------------------------------------------
def test_pk_ranks_split_whole_identities_of_the_one_process_batch():
    one = list(PKSampler(PIDS, p=4, k=3, seed=7))
    ranks = [list(PKSampler(PIDS, p=4, k=3, seed=7, rank=r, world_size=WORLD)) for r in range(WORLD)]
    for step, full in enumerate(one):
        parts = [ranks[r][step] for r in range(WORLD)]
        assert sum(parts, []) == full  # the union, in rank order, is the one-process batch
        ids = [set(PIDS[p].tolist()) for p in parts]
        assert not ids[0] & ids[1] and len(ids[0]) == len(ids[1]) == 2  # whole identities, none shared
    # set_epoch gives the same sequence again on every rank (resume)
    s = PKSampler(PIDS, p=4, k=3, seed=7, rank=1, world_size=WORLD)
    s.set_epoch(3)
    first = list(s)
    s.set_epoch(3)
    assert list(s) == first


def test_other_samplers_shard_whole_units():
    a1 = list(AnchorPairSampler(PIDS, CAMS, anchors=4, positives=1, negatives=2, seed=1))
    a2 = [list(AnchorPairSampler(PIDS, CAMS, anchors=4, positives=1, negatives=2, seed=1, rank=r, world_size=WORLD))
          for r in range(WORLD)]
    assert a2[0][0] + a2[1][0] == a1[0]
    local = AnchorPairSampler(PIDS, CAMS, anchors=4, positives=1, negatives=2, seed=1, rank=1, world_size=WORLD)
    assert local.pair_index()[:, 0].max() < len(a2[1][0])
    c = CrossViewPairSampler(PIDS, CAMS, p=4, s=2, seed=1, rank=0, world_size=WORLD)
    assert len(c.view_labels()) == len(next(iter(c)))


def test_p_not_divisible_by_world_size_is_refused():
    with pytest.raises(ConfigError, match="not divisible by the world size 2"):
        PKSampler(PIDS, p=3, k=2, rank=0, world_size=WORLD)


# -- spawned gloo processes ---------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _batch(n: int = 16, d: int = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    labels = torch.arange(n // 4).repeat_interleave(4)  # 4 identities x 4 images; 2 per rank
    cams = torch.arange(n) % 2
    return x, labels, cams


def _losses():
    from reid.losses.angular_margin import joint_loss
    from reid.losses.support_neighbor import SupportNeighborLoss
    from reid.losses.triplet import BatchAllTripletLoss, BatchHardTripletLoss
    from reid.losses.view_adaptation import SimilarityDiscriminatorLoss

    torch.manual_seed(0)
    joint = joint_loss("AM0BH", 6, 4, scale=4.0, gamma=1.0, triplet_margin=0.3, am_margin=0.0, lam=0.0,
                       attribute_values=None, slice_dim=2, margin_fallback="continuous").double()
    sim = SimilarityDiscriminatorLoss(0.5, 1.0, adaptive=True, negative_hinge="anchor", detach_weights=False)

    def view_loss(x, labels):  # paper 003's pair loss: every probe x gallery pair (euclidean d, cosine logits)
        from reid.metrics.distance import euclidean

        fs, ft = x[0::2], x[1::2]
        ls, lt = labels[0::2], labels[1::2]
        fsn, ftn = torch.nn.functional.normalize(fs, dim=1), torch.nn.functional.normalize(ft, dim=1)
        return sim(fsn @ ftn.T, euclidean(fs, ft), ls[:, None] == lt[None, :])

    return {
        "batch_hard": BatchHardTripletLoss(0.3),
        "batch_hard_soft": BatchHardTripletLoss(0.0, soft=True),
        "batch_all": BatchAllTripletLoss(0.3),
        "support_neighbor": SupportNeighborLoss(5, 8.0, 1.0, squared=False, normalize=True),
        "joint_am_bh": lambda x, y: joint(x, y, None),
        "view_similarity": view_loss,
    }


def _network_and_loss():
    """A float64 linear "backbone" and paper 004's joint loss, whose AM weights are parameters of
    the loss itself (downstream of the gather), both seeded."""
    from reid.losses.angular_margin import joint_loss

    torch.manual_seed(3)
    net = torch.nn.Linear(5, 6).double()
    loss_fn = joint_loss("AM0BH", 6, 4, scale=4.0, gamma=1.0, triplet_margin=0.3, am_margin=0.0, lam=0.0,
                         attribute_values=None, slice_dim=2, margin_fallback="continuous").double()
    inputs = torch.randn(16, 5, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    return net, loss_fn, inputs, torch.arange(4).repeat_interleave(4)


def _worker(rank: int, port: int, out: str, task: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        results = {}
        if task == "losses":
            from reid.engine.distributed import all_gather_with_grad

            x, labels, _ = _batch()
            n = x.shape[0] // WORLD
            for name, loss_fn in _losses().items():
                local = x[rank * n:(rank + 1) * n].clone().requires_grad_(True)
                gathered = all_gather_with_grad(local)
                loss = loss_fn(gathered, all_gather_with_grad(labels[rank * n:(rank + 1) * n]))
                loss.backward()
                results[name] = (float(loss), local.grad.tolist())
        elif task == "params":
            from reid.engine.distributed import all_gather_with_grad, backward_and_sync

            net, loss_fn, inputs, labels = _network_and_loss()
            n = inputs.shape[0] // WORLD
            sl = slice(rank * n, (rank + 1) * n)
            loss = loss_fn(all_gather_with_grad(net(inputs[sl])), all_gather_with_grad(labels[sl]), None)
            params = [*net.parameters(), *loss_fn.parameters()]
            backward_and_sync(loss, params, upstream={id(p) for p in net.parameters()}, gathered=True)
            results = {"grads": [p.grad.tolist() for p in params]}
        elif task == "centers":
            from reid.losses.centers import CameraCenters, CenterLoss

            x, labels, cams = _batch(seed=1)
            n = x.shape[0] // WORLD
            sl = slice(rank * n, (rank + 1) * n)
            center, cam = CenterLoss(4, 6, alpha=0.5).double(), CameraCenters(4, 2, 6, alpha=0.5).double()
            for _ in range(2):
                center(x[sl], labels[sl])
                cam.update(x[sl], labels[sl], cams[sl])
            results = {"center": center.centers.tolist(), "camera": cam.centers.tolist(), "seen": cam.seen.tolist()}
        torch.save(results, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _spawn(tmp_path: Path, task: str) -> list[dict]:
    mp.spawn(_worker, args=(_free_port(), str(tmp_path), task), nprocs=WORLD, join=True)
    return [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]


def test_gathered_batch_level_losses_match_one_process(tmp_path):
    per_rank = _spawn(tmp_path, "losses")
    x, labels, _ = _batch()
    n = x.shape[0] // WORLD
    for name, loss_fn in _losses().items():
        full = x.clone().requires_grad_(True)
        loss = loss_fn(full, labels)
        loss.backward()
        for r, results in enumerate(per_rank):
            value, grad = results[name]
            assert abs(value - float(loss.detach())) < TOL, name
            torch.testing.assert_close(torch.tensor(grad, dtype=torch.float64), full.grad[r * n:(r + 1) * n],
                                       atol=TOL, rtol=0, msg=name)


def test_parameter_gradients_after_sync_equal_one_process(tmp_path):
    """The scaling rule of backward_and_sync: the network's gradients (upstream of the gather,
    summed over ranks) and the loss's own (downstream, whole on every rank) both equal the
    one-process gradients of the global batch."""
    per_rank = _spawn(tmp_path, "params")
    net, loss_fn, inputs, labels = _network_and_loss()
    params = [*net.parameters(), *loss_fn.parameters()]
    assert len(params) > len(list(net.parameters()))  # the loss has parameters of its own
    loss_fn(net(inputs), labels, None).backward()
    for results in per_rank:
        for got, p in zip(results["grads"], params):
            torch.testing.assert_close(torch.tensor(got, dtype=torch.float64), p.grad, atol=TOL, rtol=0)


def test_centres_stay_identical_across_ranks_and_equal_one_process(tmp_path):
    from reid.losses.centers import CameraCenters, CenterLoss

    per_rank = _spawn(tmp_path, "centers")
    assert per_rank[0] == per_rank[1]  # bit-identical on both ranks
    x, labels, cams = _batch(seed=1)
    center, cam = CenterLoss(4, 6, alpha=0.5).double(), CameraCenters(4, 2, 6, alpha=0.5).double()
    for _ in range(2):
        center(x, labels)
        cam.update(x, labels, cams)
    torch.testing.assert_close(torch.tensor(per_rank[0]["center"], dtype=torch.float64), center.centers,
                               atol=TOL, rtol=0)
    torch.testing.assert_close(torch.tensor(per_rank[0]["camera"], dtype=torch.float64), cam.centers,
                               atol=TOL, rtol=0)


# -- torchrun end to end ------------------------------------------------------------------------
def _torchrun(out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(WORLD),
           "-m", "reid", "train", "--recipe", "support_neighbor", "--scale", "smoke",
           "--set", "data.synth_preset=tiny", "--no-progress", "--out", str(out), *extra]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)


def test_torchrun_two_processes_train_and_resume(tmp_path):
    out = tmp_path / "run"
    done = _torchrun(out, "--max-iterations", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["world_size"] == WORLD and results["backend"] == "gloo"
    assert results["iterations"] == 1 and "mAP" in results["metrics"]
    # a 2-rank checkpoint resumes under 2 ranks: turn the finished run back into an unfinished one
    (out / "results.json").unlink()
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    assert state["iteration"] == 1
    resumed = _torchrun(out, "--max-iterations", "1", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    again = json.loads((out / "results.json").read_text())
    assert again["iterations"] == 1 and again["world_size"] == WORLD
    assert again["metrics"]["mAP"] == pytest.approx(results["metrics"]["mAP"], abs=1e-6)


def test_torchrun_refuses_p_not_divisible_by_world_size(tmp_path):
    done = _torchrun(tmp_path / "bad", "--set", "sampler.p=7", "--max-iterations", "1")
    assert done.returncode != 0
    assert "reid: error: sampler.p=7 is not divisible by the world size 2" in done.stderr
