"""Run directories: what ``reid train`` may do to the folder it writes into.

A user's finished run is never modified without an explicit flag. The folder given by ``--out``
(or the default, :func:`default_run_dir`) is in one of four states, and the flags decide:

==================================  =============  ======================  ========================
folder holds                        no flag        ``--resume``            ``--overwrite``
==================================  =============  ======================  ========================
nothing (or does not exist)         train          error: nothing to       train
                                                   resume
a finished run (``results.json``)   error          "already complete",     train aside, then swap
                                                   exit 0, nothing touched
an unfinished run (checkpoint)      error          continue it             train aside, then swap
other files                         error          error                   train aside, then swap
==================================  =============  ======================  ========================

**Overwrite is atomic.** The new run trains in a hidden sibling ``.<name>.partial-<pid>-<tag>``;
only when it has written ``results.json`` are the two folders exchanged in one step (Linux
``renameat2(RENAME_EXCHANGE)``; elsewhere two renames with SIGINT/SIGTERM held), and then the
old run is deleted. A kill at any moment leaves either the old run or the new one complete in
place, never an empty or half-written folder.

**Lock.** While a run writes, it holds ``<folder>/.reid.lock`` (:class:`reid.files.FolderLock`),
so a second run into the same folder fails at once; the lock dies with its process.

**Leftovers.** Hidden temporary files (``.checkpoint.pt.*.tmp`` …) and ``.<name>.partial-*``
folders left by a killed run are removed when the next run takes the folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import signal
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from reid.errors import RunDirectoryError
from reid.files import LOCK_NAME, FolderLock, check_writable_folder, partial_name, pid_alive, remove_stale_partials

__all__ = ["RUN_FILES", "RunState", "inspect_run_dir", "preflight", "claim", "default_run_dir", "notebook_run_dir"]

RESULTS, CHECKPOINT = "results.json", "checkpoint.pt"
#: Files a run writes (``eval-*.json`` from ``reid evaluate`` count too).
RUN_FILES = (RESULTS, CHECKPOINT, "model.pt", "features.pt", "log.jsonl")
#: Prefix of the folder an interrupted non-atomic swap (non-Linux fallback) parks the old run in.
_REPLACED = ".replaced-"


@dataclass
class RunState:
    """What a folder holds, as far as a run is concerned."""

    path: Path
    exists: bool
    run_files: list[str] = field(default_factory=list)
    other_files: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return RESULTS in self.run_files

    @property
    def resumable(self) -> bool:
        return CHECKPOINT in self.run_files

    @property
    def empty(self) -> bool:
        return not self.run_files and not self.other_files


def _is_leftover(name: str) -> bool:
    return name == LOCK_NAME or (name.startswith(".") and name.endswith(".tmp"))


def inspect_run_dir(path: str | os.PathLike[str]) -> RunState:
    path = Path(path)
    if not path.is_dir():
        return RunState(path, exists=path.exists())
    state = RunState(path, exists=True)
    for entry in sorted(os.listdir(path)):
        if _is_leftover(entry):
            continue
        is_run = entry in RUN_FILES or (entry.startswith("eval-") and entry.endswith(".json"))
        (state.run_files if is_run else state.other_files).append(entry)
    return state


def _decide(state: RunState, *, resume: bool, overwrite: bool) -> str:
    """``"fresh"``, ``"resume"``, ``"complete"`` or ``"overwrite"``, or a RunDirectoryError."""
    where = state.path
    if resume and overwrite:
        raise RunDirectoryError("--resume and --overwrite exclude each other: continue the run, or replace it.")
    if resume:
        if state.finished:
            return "complete"
        if state.resumable:
            return "resume"
        what = "does not exist" if not state.exists else "holds no checkpoint.pt and no results.json"
        raise RunDirectoryError(
            f"nothing to resume: {where} {what} (a mistyped --out?); drop --resume to start a new run there."
        )
    if state.empty:
        return "fresh"
    if overwrite:
        return "overwrite"
    if state.finished:
        held = f"already holds a finished run ({RESULTS})"
    elif state.resumable:
        held = f"holds an unfinished run ({CHECKPOINT})"
    elif state.run_files:
        held = f"holds files of an earlier run ({', '.join(state.run_files)})"
    else:
        shown = ", ".join(state.other_files[:3]) + (" …" if len(state.other_files) > 3 else "")
        held = f"is not empty ({shown})"
    resume_hint = "pass --resume to continue it, " if state.resumable and not state.finished else ""
    raise RunDirectoryError(
        f"{where} {held}; {resume_hint}pass --overwrite to replace it (the old run stays until the new one "
        "has finished), or choose another --out."
    )


def preflight(path: str | os.PathLike[str], *, resume: bool = False, overwrite: bool = False) -> str:
    """The action :func:`claim` will take on ``path``, checked now, before any work.

    Its only side effect repairs: a run left parked by a swap killed half-way is put back first.

    Raises :class:`RunDirectoryError` when the folder cannot be written, is locked by another
    process, or holds something the flags do not allow touching.
    """
    path = check_writable_folder(path)
    _restore_interrupted_swap(path)
    action = _decide(inspect_run_dir(path), resume=resume, overwrite=overwrite)
    if action != "complete":
        FolderLock(path, "run directory").probe()
    return action


@dataclass
class Claim:
    """The folder a run writes into (``work_dir``) and what was decided about ``target``."""

    target: Path
    work_dir: Path
    action: str


@contextlib.contextmanager
def claim(path: str | os.PathLike[str], *, resume: bool = False, overwrite: bool = False) -> Iterator[Claim]:
    """Lock ``path`` and yield where the run writes; on a clean exit an overwrite is swapped in.

    On an exception (Ctrl-C included) the target keeps what it held: a fresh or resumed run keeps
    its last checkpoint, an overwrite discards its half-trained sibling folder.
    """
    target = check_writable_folder(path)
    _restore_interrupted_swap(target)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirectoryError(f"cannot create the run directory {target}: {exc.strerror or exc}.") from None
    with FolderLock(target, "run directory"):
        action = _decide(inspect_run_dir(target), resume=resume, overwrite=overwrite)  # again, under the lock
        if action == "complete":
            remove_stale_partials(target)  # a dead overwrite's sibling; the run itself is not touched
            yield Claim(target, target, action)
            return
        _remove_leftovers(target)
        if action != "overwrite":
            yield Claim(target, target, action)
            return
        work = partial_name(target, uuid.uuid4().hex[:8])
        work.mkdir()
        try:
            with FolderLock(work, "run directory"):
                yield Claim(target, work, action)
                if not (work / RESULTS).is_file():
                    raise RunDirectoryError(f"the new run in {work} wrote no {RESULTS}; {target} was left as it was.")
                _swap(work, target)  # work now holds the old run
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _remove_leftovers(target: Path) -> None:
    """Hidden temporary files inside ``target`` and stale ``.partial-*`` siblings (we hold the lock)."""
    for entry in target.iterdir():
        if entry.name != LOCK_NAME and _is_leftover(entry.name) and entry.is_file():
            entry.unlink(missing_ok=True)
    remove_stale_partials(target, only_dead=False)


# ----------------------------------------------------------------------------------------------
# The atomic swap
# ----------------------------------------------------------------------------------------------


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one step with Linux ``renameat2(RENAME_EXCHANGE)``; False where unsupported."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _swap(new: Path, target: Path) -> None:
    """Put ``new`` at ``target`` and the old ``target`` at ``new``, never leaving ``target`` missing.

    Without ``renameat2`` the old run is first parked at ``.<name>.replaced-<pid>-<tag>``;
    SIGINT/SIGTERM wait until both renames are done, and a SIGKILL between them is repaired by
    the next start (:func:`_restore_interrupted_swap`).
    """
    if _exchange(new, target):
        return
    aside = target.parent / f".{target.name}{_REPLACED}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    blocked = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, blocked) if hasattr(signal, "pthread_sigmask") else None
    try:
        os.rename(target, aside)
        os.rename(new, target)
        os.rename(aside, new)
    finally:
        if previous is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _restore_interrupted_swap(target: Path) -> None:
    """A missing ``target`` beside a ``.<name>.replaced-<pid>-*`` folder of a dead process: the
    fallback swap was killed between its two renames; put the old run back."""
    if target.exists() or not target.parent.is_dir():
        return
    parked = []
    for folder in target.parent.glob(f".{target.name}{_REPLACED}*"):
        pid = folder.name.rsplit(_REPLACED, 1)[1].split("-", 1)[0]
        if not (pid.isdigit() and pid_alive(int(pid))):
            parked.append(folder)
    if parked:
        os.rename(max(parked, key=lambda p: p.stat().st_mtime), target)


# ----------------------------------------------------------------------------------------------
# Default folders
# ----------------------------------------------------------------------------------------------


def run_key(cfg: dict, *, dataset: str, root: Any = None, max_iterations: int | None = None) -> str:
    """Short hash of everything that changes a run's results: the resolved recipe minus ``runtime``
    (overrides and epochs included), the dataset and its root, and a dry run's iteration cap."""
    from reid.data.cache import content_key

    recipe = {k: v for k, v in cfg.items() if k != "runtime"}
    if isinstance(recipe.get("loss"), dict) and recipe["loss"].get("gather") is True:
        # loss.gather (added later, true by default, no effect in one process) keeps old folder names
        recipe["loss"] = {k: v for k, v in recipe["loss"].items() if k != "gather"}
    params = {"recipe": recipe, "dataset": dataset, "root": None if root is None else str(root),
              "max_iterations": max_iterations}  # fmt: skip
    return content_key(sources=[], params=params, length=8)


def default_run_dir(recipe: str, dataset: str, scale: str, seed: int, *, cfg: dict, root: Any = None,
                    max_iterations: int | None = None) -> Path:
    """``runs/<recipe>-<dataset>-<scale>-seed<seed>-<key>``, ``key`` from :func:`run_key`.

    Two runs share a default folder only when they would compute the same thing, so ablations
    (``--set loss.name=...``, ``--epochs``) never land on each other.
    """
    key = run_key(cfg, dataset=dataset, root=root, max_iterations=max_iterations)
    return Path("runs") / f"{recipe}-{dataset}-{scale}-seed{seed}-{key}"


def notebook_run_dir(chapter: str, out_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where a notebook writes its runs: ``out_dir`` when given, else a fresh temporary folder.

    Notebooks default to ``out_dir = None`` so that executions by ``make test`` / ``make book``
    (or any papermill call without ``-p out_dir``) get a new, empty folder and can never collide
    with, or refuse to run because of, a folder a user filled by hand. Pass ``out_dir`` to keep
    the runs (and resume them).
    """
    if out_dir is not None and str(out_dir) != "":
        return Path(out_dir)
    return Path(tempfile.mkdtemp(prefix=f"reid-{chapter}-runs-"))


def read_finished_recipe(path: Path) -> dict | None:
    """The recipe and seed recorded in a finished run's ``results.json`` (None when unreadable)."""
    try:
        results = json.loads((path / RESULTS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return results if isinstance(results, dict) else None
