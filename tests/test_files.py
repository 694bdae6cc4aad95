"""reid.files: writable-folder checks, the folder lock, stale partial folders."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from reid.errors import RunDirectoryError
from reid.files import FolderLock, check_writable_folder, partial_name, pid_alive, remove_stale_partials


def test_check_writable_folder(tmp_path):
    assert check_writable_folder(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # nothing is created
    (tmp_path / "f").write_text("x")
    with pytest.raises(RunDirectoryError, match="is an existing file"):
        check_writable_folder(tmp_path / "f")
    with pytest.raises(RunDirectoryError, match="is a file, not a folder"):
        check_writable_folder(tmp_path / "f" / "run", option="--out")
    with pytest.raises(RunDirectoryError, match="not writable"):
        check_writable_folder("/proc/reid-probe")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".reid-write-probe")]


def test_the_lock_is_exclusive_and_dies_with_its_process(tmp_path):
    with FolderLock(tmp_path, "run directory"):
        with pytest.raises(RunDirectoryError, match=rf"in use by process {os.getpid()}"):
            FolderLock(tmp_path, "run directory").acquire()
    FolderLock(tmp_path).acquire().release()  # free again, and the file is gone
    assert not (tmp_path / ".reid.lock").exists()
    # a process that took the lock and was killed leaves the file, not the lock
    code = f"from reid.files import FolderLock; FolderLock({str(tmp_path)!r}).acquire(); import os; os._exit(0)"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert (tmp_path / ".reid.lock").is_file()
    FolderLock(tmp_path).probe()


def test_the_lock_follows_its_folder_when_renamed(tmp_path):
    (tmp_path / "a").mkdir()
    lock = FolderLock(tmp_path / "a").acquire()
    (tmp_path / "a").rename(tmp_path / "b")
    with pytest.raises(RunDirectoryError, match="in use"):
        FolderLock(tmp_path / "b").acquire()
    lock.release()
    assert not (tmp_path / "b" / ".reid.lock").exists()


def test_remove_stale_partials_spares_live_processes(tmp_path):
    target = tmp_path / "run"
    dead = tmp_path / ".run.partial-999999999-aaaa"
    live = tmp_path / ".run.partial-1-bbbb"  # pid 1 is alive
    mine = partial_name(target, "cccc")
    other = tmp_path / ".other.partial-999999999-dddd"
    for folder in (dead, live, mine, other):
        folder.mkdir()
    assert pid_alive(1) and not pid_alive(999999999)
    assert remove_stale_partials(target) == [dead]
    assert live.exists() and mine.exists() and other.exists()
    assert remove_stale_partials(target, only_dead=False) == [live]
    assert mine.exists()  # never our own
