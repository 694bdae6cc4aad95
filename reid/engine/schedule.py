"""Learning-rate schedules as pure functions of the training position.

``lr_factor(cfg, epoch, iteration)`` returns the multiplier of every parameter group's base
learning rate at 0-based ``epoch`` / global ``iteration``. Being stateless, a resumed run
recomputes exactly the rate an uninterrupted run would use: there is no scheduler state that
could drift.

=====================  ===========================================================  =======
``schedule.name``      factor                                                       paper
=====================  ===========================================================  =======
``constant``           1                                                            001
``step``               ``gamma ** floor(t / step_size)``                            000, 003
``exponential``        1 until ``start``, then ``0.001 ** ((t - start)/(end - start))``  002
``warmup_multistep``   linear ``warmup_start/lr -> 1`` over ``warmup_epochs``, then     004
                       ``gamma ** (number of milestones passed)``
=====================  ===========================================================  =======

``t`` is the epoch or the iteration, as ``schedule.unit`` says.
"""

from __future__ import annotations

import bisect

from reid.errors import ConfigError

__all__ = ["lr_factor", "check_schedule"]

_KEYS = {
    "constant": set(),
    "step": {"step_size", "gamma"},
    "exponential": {"start", "end"},
    "warmup_multistep": {"warmup_epochs", "warmup_start", "milestones", "gamma"},
}


def check_schedule(schedule: dict, base_lr: float) -> None:
    """Raise ConfigError when the schedule section is incomplete or inconsistent."""
    name = schedule.get("name")
    if name not in _KEYS:
        raise ConfigError(f"schedule.name={name!r} is not valid; choose one of: {', '.join(_KEYS)}.")
    missing = sorted(k for k in _KEYS[name] if k not in schedule)
    if missing:
        raise ConfigError(f"schedule {name!r} needs {', '.join('schedule.' + k for k in missing)}.")
    if name == "exponential" and not schedule["end"] > schedule["start"] >= 0:
        raise ConfigError(f"schedule.end must be > schedule.start >= 0, got {schedule['start']}, {schedule['end']}.")
    if name == "warmup_multistep":
        ms = schedule["milestones"]
        if not isinstance(ms, list) or sorted(ms) != ms:
            raise ConfigError(f"schedule.milestones must be an increasing list of epochs, got {ms!r}.")
        if not 0 < schedule["warmup_start"] <= base_lr:
            raise ConfigError(f"schedule.warmup_start must be in (0, optimizer.lr], got {schedule['warmup_start']}.")


def lr_factor(schedule: dict, base_lr: float, epoch: int, iteration: int) -> float:
    """Multiplier of the base learning rate at (0-based) ``epoch`` and global ``iteration``."""
    name = schedule["name"]
    t = iteration if schedule.get("unit", "epoch") == "iteration" else epoch
    if name == "constant":
        return 1.0
    if name == "step":
        # paper 000: "dropping factor gamma = 0.1 and associated step interval of 9000 iterations"
        return schedule["gamma"] ** (t // schedule["step_size"])
    if name == "exponential":
        # paper 002 / TriNet: r_t = r_0 until T_s, then r_0 * 0.001^((t - T_s) / (T_f - T_s))
        start, end = schedule["start"], schedule["end"]
        return 1.0 if t < start else 0.001 ** ((t - start) / (end - start))
    if name == "warmup_multistep":
        # paper 004: "linearly increased from 1e-5 to 1e-3 for the first 20 epochs", then x0.1 at 90, 130
        warm = schedule["warmup_epochs"]
        if t < warm:
            start = schedule["warmup_start"] / base_lr
            return start + (1.0 - start) * t / warm
        return schedule["gamma"] ** bisect.bisect_right(schedule["milestones"], t)
    raise ConfigError(f"unknown schedule {name!r}.")
