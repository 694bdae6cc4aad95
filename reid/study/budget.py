"""One training budget for every recipe, each keeping the *shape* of its own schedule.

The benchmark chapter trains five recipes for the same number of epochs. A recipe's learning-rate
schedule is tied to its own training length (paper 004 warms up for 20 of 150 epochs and decays
at 90 and 130; paper 002 holds the rate for 75 of 800 epochs, then decays exponentially), so
cutting the length without moving the milestones would evaluate some models at their peak rate
and others after every decay. :func:`budget_overrides` rescales every position of the paper's
(full-scale) schedule by ``epochs / full length``: each milestone stays at the same *fraction* of
training. A schedule counted in iterations is converted to epochs through the same fraction.

=====================  =====================================================================
``constant``           unchanged
``step``               ``step_size`` -> round(step_size · f), at least 1 epoch
``exponential``        ``start`` / ``end`` -> round(· f) (end > start)
``warmup_multistep``   ``warmup_epochs`` -> round(· f) ≥ 1, ``milestones`` -> round(· f)
paper 003's stages     ``loss.similarity_epochs`` (the discriminator-only first stage) -> round(· f) ≥ 1
=====================  =====================================================================

with ``f = epochs / T`` and ``T`` the full recipe's length in the schedule's unit.
"""

from __future__ import annotations

from typing import Any

from reid.errors import ConfigError

__all__ = ["budget_overrides"]


def budget_overrides(recipe: str, epochs: int) -> dict[str, Any]:
    """Dotted overrides that train ``recipe`` for ``epochs`` with its full-scale schedule's shape."""
    from reid.recipes import load_recipe

    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"the budget must be a positive number of epochs, got {epochs!r}.")
    full = load_recipe(recipe, "full")
    sched, train = full["schedule"], full["train"]
    unit = sched.get("unit", "epoch")
    total = train["iterations"] if unit == "iteration" else train["epochs"]
    if total is None and sched["name"] != "constant":
        raise ConfigError(f"recipe {recipe}: its schedule counts {unit}s but the full recipe sets no train.{unit}s.")
    f = epochs / float(total or epochs)

    def at(t: float, low: int = 0) -> int:
        return max(low, int(round(t * f)))

    out: dict[str, Any] = {"train.epochs": epochs, "train.iterations": None}
    if "unit" in sched:
        out["schedule.unit"] = "epoch"
    name = sched["name"]
    if name == "step":
        out["schedule.step_size"] = at(sched["step_size"], 1)
    elif name == "exponential":
        start = at(sched["start"])
        out["schedule.start"] = start
        out["schedule.end"] = max(start + 1, at(sched["end"]))
    elif name == "warmup_multistep":
        warm = at(sched["warmup_epochs"], 1) if sched["warmup_epochs"] else 0
        out["schedule.warmup_epochs"] = warm
        out["schedule.milestones"] = sorted({max(warm, at(m)) for m in sched["milestones"]})
    elif name != "constant":
        raise ConfigError(f"recipe {recipe}: no budget rule for schedule {name!r}; add one to reid/study/budget.py.")
    if "similarity_epochs" in full["loss"]:
        # paper 003, Algorithm 1: the similarity discriminator trains alone first (10 of 30 epochs)
        if train["epochs"] is None:
            raise ConfigError(f"recipe {recipe}: loss.similarity_epochs needs train.epochs at full scale.")
        share = full["loss"]["similarity_epochs"] / train["epochs"]
        out["loss.similarity_epochs"] = min(epochs, max(1, int(round(share * epochs))))
    return out
