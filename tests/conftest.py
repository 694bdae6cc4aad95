"""Suite-wide settings: quiet plots, one BLAS thread per xdist worker, no hypothesis deadlines."""

from __future__ import annotations

import os

import matplotlib
from hypothesis import settings

matplotlib.use("Agg")

# `make test` runs two xdist workers on two cores; one intra-op thread each avoids
# oversubscription (and its wall-clock noise) without changing any result checked here.
if os.environ.get("PYTEST_XDIST_WORKER"):
    import torch

    torch.set_num_threads(1)

# Torch's first call in a process is slow (lazy initialisation); a per-example deadline
# would turn that into flaky failures, so property tests are bounded by example count.
settings.register_profile("reid", deadline=None, max_examples=40, derandomize=True)
settings.load_profile("reid")


def pytest_collection_modifyitems(config, items):
    """The ``full_dry_run`` group (minutes, several GB per run) runs only when selected: ``make test-full``."""
    if "full_dry_run" in (config.getoption("markexpr", "") or ""):
        return
    import pytest

    skip = pytest.mark.skip(reason="paper-scale dry run: `make test-full` (pytest -m full_dry_run)")
    for item in items:
        if "full_dry_run" in item.keywords:
            item.add_marker(skip)
