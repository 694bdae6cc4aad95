"""Run directories never lose a user's run: refuse, resume, atomic overwrite, lock, leftovers.

Every data-loss case checks that the old run survives **byte for byte**. Runs are the tiny
support-neighbour recipe (one epoch of two batches on the 16-identity SynthReID set, ~2 s).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from reid.data.synthreid import PRESETS, generate
from reid.engine import Callback, notebook_run_dir, train
from reid.engine import rundir
from reid.errors import ConfigError, NonFiniteError, RunDirectoryError
from reid.files import FolderLock
from reid.recipes import load_recipe

REPO = Path(__file__).resolve().parents[1]
TINY = {
    "train.batches_per_epoch": 2, "eval.batch_size": 64, "input.height": 32, "input.width": 16,
    "model.width": 8, "sampler.p": 4, "sampler.k": 2, "loss.k": 4,
}  # fmt: skip


class Interrupted(Exception):
    """Stands in for a kill inside the training loop."""


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synth") / "tiny", seed=0, progress=False, **PRESETS["tiny"])


def run(root, out, *, seed=0, epochs=1, overrides=None, **kw):
    return train("support_neighbor", dataset="synthreid", root=root, out=out, epochs=epochs, seed=seed,
                 progress=False, overrides={**TINY, **(overrides or {})}, **kw)  # fmt: skip


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` (hidden lock file excepted) with its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".reid.lock"
    }


def siblings(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}."))


@pytest.fixture(scope="module")
def finished(tiny_root, tmp_path_factory):
    """A finished run (seed 0) and its byte snapshot; tests copy it before touching it."""
    out = run(tiny_root, tmp_path_factory.mktemp("finished") / "run")
    return out, snapshot(out)


@pytest.fixture
def old_run(finished, tmp_path):
    import shutil

    src, snap = finished
    dst = tmp_path / "run"
    shutil.copytree(src, dst)
    return dst, snap


# -- refuse ----------------------------------------------------------------------------------


def test_a_finished_run_is_never_retrained_without_a_flag(tiny_root, old_run):
    out, snap = old_run
    with pytest.raises(RunDirectoryError, match=r"already holds a finished run .*--overwrite") as info:
        run(tiny_root, out, seed=1)
    assert "--out" in str(info.value)
    assert snapshot(out) == snap


def test_an_unfinished_run_is_refused_with_a_hint_to_resume(tiny_root, old_run):
    out, _ = old_run
    (out / "results.json").unlink()
    snap = snapshot(out)
    with pytest.raises(RunDirectoryError, match=r"unfinished run .*--resume .*--overwrite"):
        run(tiny_root, out)
    assert snapshot(out) == snap


def test_a_folder_with_other_files_is_refused(tiny_root, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    with pytest.raises(RunDirectoryError, match=r"is not empty \(notes.txt\)"):
        run(tiny_root, out)
    assert snapshot(out) == {"notes.txt": b"my notes"}


# -- resume ----------------------------------------------------------------------------------


def test_resume_on_a_finished_run_without_checkpoint_is_complete_and_touches_nothing(tiny_root, old_run, capsys):
    out, _ = old_run
    (out / "checkpoint.pt").unlink()
    snap = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()}
    assert run(tiny_root, out, resume=True) == out
    assert "already complete" in capsys.readouterr().err
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir()} == snap


def test_resume_with_nothing_to_resume_fails_and_creates_nothing(tiny_root, tmp_path):
    with pytest.raises(RunDirectoryError, match=r"nothing to resume: .*typo.* does not exist"):
        run(tiny_root, tmp_path / "typo", resume=True)
    assert not (tmp_path / "typo").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunDirectoryError, match="holds no checkpoint.pt and no results.json"):
        run(tiny_root, tmp_path / "empty", resume=True)
    with pytest.raises(RunDirectoryError, match="exclude each other"):
        run(tiny_root, tmp_path / "empty", resume=True, overwrite=True)


def test_resume_survives_a_half_written_log_line_and_cleans_leftovers(tiny_root, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(Interrupted):
        run(tiny_root, out, epochs=2, callbacks=[Callback(on_epoch_end=_raise_after(1))])
    with open(out / "log.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"epoch": 2, "iter')  # a kill in the middle of a write
    (out / ".checkpoint.pt.abc123.tmp").write_bytes(b"half a checkpoint")
    stale = tmp_path / ".run.partial-999999999-deadbeef"
    stale.mkdir()
    run(tiny_root, out, epochs=2, resume=True)
    log = [json.loads(line)["epoch"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert log == [1, 2]
    assert not (out / ".checkpoint.pt.abc123.tmp").exists() and not stale.exists()


def _raise_after(epoch):
    def on_epoch_end(trainer, done):
        if done == epoch:
            raise Interrupted(f"stopped after epoch {done}")

    return on_epoch_end


# -- overwrite -------------------------------------------------------------------------------


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_overwrite_replaces_the_run_and_leaves_no_siblings(tiny_root, old_run, monkeypatch, exchange):
    out, snap = old_run
    if not exchange:
        monkeypatch.setattr(rundir, "_exchange", lambda a, b: False)
    run(tiny_root, out, seed=1, overwrite=True)
    results = json.loads((out / "results.json").read_text())
    assert results["seed"] == 1 and snapshot(out) != snap
    assert siblings(out) == []


@pytest.mark.parametrize("error", [Interrupted, KeyboardInterrupt])
def test_an_interrupted_overwrite_keeps_the_old_run_byte_for_byte(tiny_root, old_run, error):
    out, snap = old_run

    def on_step(trainer, epoch, it):
        assert trainer.work_dir != out  # the new run trains beside the old one
        raise error()

    with pytest.raises(error):
        run(tiny_root, out, seed=1, overwrite=True, callbacks=[Callback(on_step=on_step)])
    assert snapshot(out) == snap and siblings(out) == []


KILLER = """
import os, signal, sys
from pathlib import Path
from reid.engine import Callback, rundir, train
point, root, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
callbacks = []
if point == "step":
    callbacks = [Callback(on_step=lambda trainer, epoch, it: die())]
elif point == "before_swap":
    rundir._swap = die
elif point == "after_swap":
    real_swap = rundir._swap
    def swap_then_die(new, target):
        real_swap(new, target)
        die()
    rundir._swap = swap_then_die
elif point == "fallback_between_renames":
    rundir._exchange = lambda a, b: False
    real_rename = os.rename
    def rename(a, b):
        real_rename(a, b)
        if ".replaced-" in str(b):
            die()
    os.rename = rename
overrides = {TINY}
train("support_neighbor", dataset="synthreid", root=root, out=out, epochs=1, seed=1, progress=False,
      overrides=overrides, overwrite=True, callbacks=callbacks)
"""


@pytest.mark.slow
@pytest.mark.parametrize("point", ["step", "before_swap", "after_swap", "fallback_between_renames"])
def test_sigkill_during_an_overwrite_never_loses_the_run(tiny_root, old_run, point):
    """SIGKILL at four moments of ``--overwrite``: the folder always holds one complete run."""
    out, snap = old_run
    script = KILLER.replace("{TINY}", repr(TINY))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", script, point, str(tiny_root), str(out)], env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    if point == "after_swap":  # the new run is complete in place; the old one waits for deletion
        assert json.loads((out / "results.json").read_text())["seed"] == 1
    elif point == "fallback_between_renames":  # the folder is briefly missing: the next start restores it
        assert not out.exists()
    else:
        assert snapshot(out) == snap
    # the next start repairs and cleans up; --resume then finds a finished run
    run(tiny_root, out, seed=1 if point == "after_swap" else 0, resume=True)
    if point != "after_swap":
        assert snapshot(out) == snap
    assert siblings(out) == []


# -- lock ------------------------------------------------------------------------------------


def test_a_second_run_into_a_locked_folder_fails_at_once(tiny_root, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with FolderLock(out, "run directory"):
        with pytest.raises(RunDirectoryError, match=rf"in use by process {os.getpid()}"):
            run(tiny_root, out)
    # a lock file left by a dead process (no flock held) does not block
    (out / ".reid.lock").write_text("999999999\n")
    run(tiny_root, out)
    assert (out / "results.json").is_file()


HOLDER = """
import sys, time
from pathlib import Path
from reid.engine import Callback, train
root, out, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
def wait_for_go(trainer, epoch, it):
    while it == 1 and not go.exists():  # hold the folder until the test says go
        time.sleep(0.05)
train("support_neighbor", dataset="synthreid", root=root, out=out, epochs=1, seed=0, progress=False,
      overrides={TINY}, callbacks=[Callback(on_step=wait_for_go)])
"""


@pytest.mark.slow
def test_two_concurrent_runs_into_one_folder(tiny_root, tmp_path):
    """A second ``reid train`` into a folder another run is writing fails at once (exit 2, one line)."""
    out, go = tmp_path / "run", tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen([sys.executable, "-c", HOLDER.replace("{TINY}", repr(TINY)), str(tiny_root), str(out),
                              str(go)], env=env, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        lock = out / ".reid.lock"
        deadline = time.monotonic() + 240
        while not (lock.is_file() and lock.read_text().strip() == str(first.pid)):
            assert first.poll() is None, first.stderr.read()
            assert time.monotonic() < deadline, "the first run never took the folder"
            time.sleep(0.05)
        sets = [x for k, v in TINY.items() for x in ("--set", f"{k}={v}")]
        second = subprocess.run(
            [sys.executable, "-m", "reid", "train", "--recipe", "support_neighbor", "--root", str(tiny_root),
             "--out", str(out), "--epochs", "1", "--seed", "1", "--no-progress", *sets],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        go.touch()
        first.wait(timeout=300)
    assert second.returncode == 2, second.stderr
    assert second.stderr.count("\n") == 1 and f"in use by process {first.pid}" in second.stderr
    assert first.returncode == 0, first.stderr.read()
    assert json.loads((out / "results.json").read_text())["seed"] == 0
    epochs = [json.loads(line)["epoch"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert epochs == [1]  # one run's log, not two interleaved


# -- folders ---------------------------------------------------------------------------------


def test_default_run_dir_encodes_overrides_epochs_and_dry_runs():
    def folder(overrides=None, max_iterations=None):
        cfg = load_recipe("joint_am_triplet", "smoke", overrides)
        return rundir.default_run_dir("joint_am_triplet", "synthreid", "smoke", 0, cfg=cfg,
                                      max_iterations=max_iterations)  # fmt: skip

    base = folder()
    assert base.parent == Path("runs") and base.name.startswith("joint_am_triplet-synthreid-smoke-seed0-")
    assert folder() == base
    assert folder({"runtime.num_workers": 2}) == base  # speed options do not change results
    others = [folder({"loss.name": "AM0"}), folder({"loss.name": "BH"}), folder({"train.epochs": 3}),
              folder(max_iterations=2)]  # fmt: skip
    assert len({base, *others}) == 5


@pytest.mark.parametrize("bad", ["file", "under_file", "proc"])
def test_unwritable_out_is_one_clear_error_before_any_work(tiny_root, tmp_path, monkeypatch, bad):
    import reid.engine.trainer

    monkeypatch.setattr(reid.engine.trainer, "load_training_data", _no_work)
    (tmp_path / "f").write_text("x")
    out = {"file": tmp_path / "f", "under_file": tmp_path / "f" / "run", "proc": Path("/proc/reid-run")}[bad]
    with pytest.raises(RunDirectoryError, match="--out .*(file|not writable)"):
        run(tiny_root, out)


def _no_work(*args, **kwargs):
    raise AssertionError("data was loaded before the run directory was checked")


def test_divergence_names_the_iteration_and_the_intact_checkpoint(tiny_root, tmp_path, monkeypatch):
    from reid.engine.objectives import MetricObjective

    real_step = MetricObjective.train_step

    def step(self, model, batch, ctx):
        if ctx.iteration == 2:  # the first step of epoch 2
            raise FloatingPointError(f"the loss became nan at epoch {ctx.epoch + 1}, iteration {ctx.iteration + 1}; "
                                     "lower optimizer.lr or set train.grad_clip.")  # fmt: skip
        return real_step(self, model, batch, ctx)

    monkeypatch.setattr(MetricObjective, "train_step", step)
    out = tmp_path / "run"
    with pytest.raises(NonFiniteError, match=r"iteration 3; .*last checkpoint, .*checkpoint.pt \(after epoch 1\), is intact"):
        run(tiny_root, out, epochs=2)
    assert torch.load(out / "checkpoint.pt", weights_only=False)["epoch"] == 1

    def nan_features(self, model, batch, ctx):
        from reid.losses.triplet import BatchHardTripletLoss

        return BatchHardTripletLoss(0.3)(torch.full((4, 8), float("nan")), torch.tensor([0, 0, 1, 1]))

    monkeypatch.setattr(MetricObjective, "train_step", nan_features)
    with pytest.raises(NonFiniteError, match=r"at epoch 1, iteration 1: BatchHardTripletLoss.*No checkpoint"):
        run(tiny_root, tmp_path / "other")


def test_notebook_run_dir_is_out_dir_or_a_fresh_folder(tmp_path):
    assert notebook_run_dir("smc_ecd", tmp_path / "mine") == tmp_path / "mine"
    a, b = notebook_run_dir("smc_ecd"), notebook_run_dir("smc_ecd", None)
    try:
        assert a != b and a.is_dir() and not any(a.iterdir()) and "smc_ecd" in a.name
    finally:
        a.rmdir()
        b.rmdir()


def test_config_error_for_bad_max_iterations():
    with pytest.raises(ConfigError, match="max_iterations must be a positive integer"):
        train("smc_ecd", max_iterations=0, out="unused", progress=False)
