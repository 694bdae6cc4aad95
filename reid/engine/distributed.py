"""Multi-process training helpers (``torch.distributed``), launched by ``torchrun``.

Everything here is a no-op in a single process: without torchrun's environment (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``) :func:`is_distributed` is false, :func:`rank` is 0,
:func:`world_size` is 1 and the gathers return their input, so a one-process run is exactly the
run it was before this module existed.

* :func:`init` joins the process group torchrun describes (``gloo`` on the CPU, ``nccl`` on
  CUDA); :func:`teardown` leaves it.
* :func:`all_gather_with_grad` concatenates a tensor over the ranks (rank order) and lets the
  gradient flow back to the *local* slice only — the trick of pytorch-metric-learning's
  ``DistributedLossWrapper``: the gathered copy of this rank's part is replaced by the local
  tensor that carries the graph.
* :func:`gather_variable` gathers tensors whose first dimension differs between ranks (sharded
  evaluation, the centre update).
* :func:`sync_gradients` all-reduces the gradients of an optimiser's parameters;
  :func:`backward_and_sync` is the backward pass with the scaling rule that makes them equal to
  the one-process gradients of the global batch (used by
  :meth:`reid.engine.objectives.Objective.optimise`).
"""

from __future__ import annotations

import datetime
import os
from typing import Iterable

import torch
import torch.distributed as dist

__all__ = [
    "env_world_size", "is_distributed", "rank", "world_size", "is_main", "backend", "init", "teardown",
    "barrier", "all_gather_with_grad", "gather_variable", "broadcast_object", "sync_gradients", "backward_and_sync",
    "broadcast_module", "shard_range",
]  # fmt: skip


def env_world_size() -> int:
    """``WORLD_SIZE`` as torchrun sets it (1 when not launched by torchrun)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def backend() -> str | None:
    return dist.get_backend() if is_distributed() else None


def init(device: str = "cpu") -> torch.device | None:
    """Join torchrun's process group when ``WORLD_SIZE`` > 1; returns this rank's device (or None).

    ``nccl`` on CUDA (one GPU per process, ``cuda:LOCAL_RANK``), ``gloo`` on the CPU. Raises a
    :class:`~reid.errors.ConfigError` when there are fewer GPUs than processes on this node.
    """
    from reid.errors import ConfigError

    if env_world_size() <= 1 or is_distributed():
        return None
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.device(device).type == "cuda"
    if cuda:
        count = torch.cuda.device_count()
        nodes_procs = int(os.environ.get("LOCAL_WORLD_SIZE", env_world_size()))
        if count < nodes_procs:
            raise ConfigError(f"{nodes_procs} processes per node need as many GPUs with --device cuda; "
                              f"torch sees {count}.")
        torch.cuda.set_device(local)
    dist.init_process_group("nccl" if cuda else "gloo", timeout=datetime.timedelta(minutes=30))
    return torch.device("cuda", local) if cuda else torch.device("cpu")


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if is_distributed():
        dist.barrier()


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):  # noqa: D401 - autograd API
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        ctx.rank, ctx.size = dist.get_rank(), x.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad):
        # every rank computed the same global loss: the local slice's gradient is complete here
        return grad[ctx.rank * ctx.size:(ctx.rank + 1) * ctx.size]


def all_gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """``x`` of every rank concatenated in rank order; gradients flow to this rank's slice only.

    Every rank must pass the same shape (the P x K sampler guarantees it). Tensors without a
    gradient (labels, cameras) are gathered too.
    """
    if not is_distributed():
        return x
    if not x.requires_grad:
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts)
    return _GatherWithGrad.apply(x)


def gather_variable(x: torch.Tensor) -> torch.Tensor:
    """``x`` of every rank concatenated in rank order, first dimensions may differ (no gradient)."""
    if not is_distributed():
        return x
    x = x.detach().contiguous()
    n = torch.tensor([x.shape[0]], device=x.device)
    sizes = [torch.zeros_like(n) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, n)
    sizes = [int(s) for s in sizes]
    padded = x.new_zeros((max(sizes), *x.shape[1:]))
    padded[: x.shape[0]] = x
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([p[:s] for p, s in zip(parts, sizes)])


def broadcast_object(obj, src: int = 0):
    """``obj`` of rank ``src`` on every rank (pickled)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def broadcast_module(module: torch.nn.Module, *, buffers_only: bool = False) -> None:
    """Copy rank 0's parameters (unless ``buffers_only``) and buffers to every rank (in place).

    The trainer calls it once after building the model and, with ``buffers_only``, before each
    step — BatchNorm running statistics follow rank 0, as DDP's ``broadcast_buffers`` does.
    """
    if not is_distributed():
        return
    tensors = list(module.buffers()) if buffers_only else [*module.parameters(), *module.buffers()]
    with torch.no_grad():
        for t in tensors:
            dist.broadcast(t.data, 0)


def sync_gradients(params: Iterable[torch.nn.Parameter], divide: set[int] | None = None, scale: float = 1.0) -> None:
    """Average the gradients of ``params`` over the ranks, in one flat all-reduce.

    ``divide``: ids of parameters whose averaged gradient is then divided by ``scale`` (those
    downstream of a gathered batch, see :meth:`reid.engine.objectives.Objective.optimise`).
    """
    if not is_distributed():
        return
    params = [p for p in params if p.grad is not None]
    if not params:
        return
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for p in params:
        n = p.grad.numel()
        g = flat[offset:offset + n].view_as(p.grad)
        if divide is not None and id(p) in divide and scale != 1.0:
            g = g / scale
        p.grad.copy_(g)
        offset += n


def backward_and_sync(loss: torch.Tensor, params: list[torch.nn.Parameter], *, upstream: set[int],
                      gathered: bool) -> None:
    """``loss.backward()``, then the gradients of ``params`` made what one process would compute.

    Without gathering, each rank's loss is its own batch's and averaging the gradients is data
    parallelism as usual. With a gathered loss every rank computes the *same* global loss, and
    two kinds of parameters differ: those ``upstream`` of the gather (the network, which saw only
    this rank's images) hold this rank's share of the gradient, and the shares must be *summed*;
    the loss's own parameters (after the gather) already hold the whole gradient on every rank.
    Scaling the loss by the world size and averaging gives the sum for the first kind; dividing
    the second kind back by the world size restores its gradient (``tests/test_distributed.py``
    checks both against one process)."""
    scale = float(world_size()) if gathered else 1.0
    (loss * scale).backward()
    sync_gradients(params, divide={id(p) for p in params if id(p) not in upstream}, scale=scale)


def shard_range(n: int) -> tuple[int, int]:
    """This rank's contiguous ``[start, stop)`` of ``n`` items (sharded feature extraction)."""
    w, r = world_size(), rank()
    per = -(-n // w)
    return min(n, r * per), min(n, (r + 1) * per)
