"""Training and evaluation: one :class:`Trainer` for every paper's recipe.

>>> from reid.engine import train, evaluate
>>> run = train("joint_am_triplet", dataset="synthreid", scale="smoke")   # doctest: +SKIP
>>> evaluate(run, protocol="market_sq")                                   # doctest: +SKIP

Modules: :mod:`.trainer` (the loop, :func:`train`), :mod:`.objectives` (each paper's step),
:mod:`.data` (samplers and loaders), :mod:`.schedule` (learning rates), :mod:`.checkpoint`
(save / resume), :mod:`.rundir` (what a run may do to its folder: refuse, resume, overwrite, lock), :mod:`.evaluation` (features and metrics), :mod:`.provenance`
(``results.json``), :mod:`.commands` (``reid train`` / ``reid evaluate``).
"""

from __future__ import annotations

from reid.engine.evaluation import evaluate
from reid.engine.rundir import default_run_dir, notebook_run_dir
from reid.engine.trainer import Callback, Trainer, train

__all__ = ["train", "evaluate", "Trainer", "Callback", "default_run_dir", "notebook_run_dir"]
