"""A context manager the chapters' toys share."""

from __future__ import annotations

from contextlib import contextmanager

import torch


@contextmanager
def single_thread():
    """Run tiny-tensor toys on one intra-op thread: with several, thread start-up and spinning cost
    far more than the 2-D arithmetic (and compete with the notebook's other work)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
