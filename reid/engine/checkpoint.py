"""Checkpoints: everything a killed run needs to finish with the same weights.

A checkpoint is written at the end of every epoch to ``<run>/checkpoint.pt`` and holds

* ``model`` — the network's state dict (includes BN running statistics);
* ``objective`` — the loss modules' state dict (e.g. paper 000's identity / camera centres,
  which are buffers moved by an update rule, not parameters);
* ``optimizers`` — every optimiser's state (momentum buffers, Adam moments);
* ``epoch`` (completed epochs) and ``iteration`` (global step) — the learning-rate schedule is a
  pure function of them (:mod:`reid.engine.schedule`) and samplers derive each epoch's order
  from ``(seed, epoch)``, so these two integers are the scheduler and sampler state;
* ``rng`` — Python, NumPy, torch CPU (and CUDA) generator states at the end of the epoch;
* ``config`` — the resolved recipe, to refuse resuming a run with a different configuration.

Writes are atomic: the file is written next to its destination and renamed over it, so a kill
during the write leaves the previous checkpoint intact, never a half-written one.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reid.errors import ConfigError

__all__ = ["save_atomic", "load_checkpoint", "read_torch_file", "rng_state", "set_rng_state", "CHECKPOINT_NAME"]

CHECKPOINT_NAME = "checkpoint.pt"


def save_atomic(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to a temporary file in the same folder, then ``os.replace`` it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint written by :func:`save_atomic` (CPU tensors)."""
    return read_torch_file(path, "checkpoint", "pass --overwrite to start the run afresh")


def read_torch_file(path: str | Path, what: str, fix: str) -> Any:
    """``torch.load`` a file a run wrote; an unreadable or corrupt file is one :class:`ConfigError`
    naming ``what`` it is and the ``fix``, never a pickle traceback."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for truncated / foreign files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"cannot read the {what} {path} ({reason}); {fix}.") from None


def rng_state() -> dict:
    """The state of every random generator the training loop draws from."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
