"""Safe file-system steps shared by the data and engine layers.

Three things every command that writes into a user-named folder needs, kept in one place:

* :func:`check_writable_folder` — refuse an output folder that cannot be created or written
  (``/proc/x``, an existing file, a read-only mount) with one clear message **before** any work,
  instead of a traceback from ``mkdir`` minutes later;
* :class:`FolderLock` — an exclusive ``fcntl.flock`` on ``<folder>/.reid.lock``, so a second
  process writing into the same folder fails at once. The kernel drops the lock when its holder
  dies, so a lock file left by a killed process never blocks anyone; the file keeps the holder's
  pid only to name it in the message, and is removed on a normal release;
* :func:`remove_stale_partials` — hidden ``.<name>.partial-<pid>-<tag>`` siblings left behind by
  a process killed while it was building ``<name>`` (a dataset, an overwritten run) are removed
  at the next start.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from reid.errors import RunDirectoryError

__all__ = ["check_writable_folder", "FolderLock", "partial_name", "remove_stale_partials", "pid_alive", "LOCK_NAME"]

LOCK_NAME = ".reid.lock"


def check_writable_folder(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """``path`` as a ``Path`` if it is (or can be created as) a writable folder; else one clear error.

    Nothing is created: the nearest existing ancestor is probed with a temporary sub-folder that
    is removed at once (``os.access`` is not enough: root passes it for ``/proc``).
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise RunDirectoryError(f"{option} {path} is an existing file, not a folder; choose a folder path.")
    probe_in = path
    while not probe_in.exists():
        if probe_in.parent == probe_in:
            break
        probe_in = probe_in.parent
    if not probe_in.is_dir():
        raise RunDirectoryError(f"{option} {path} cannot be created: {probe_in} is a file, not a folder.")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".reid-write-probe-", dir=probe_in))
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise RunDirectoryError(
            f"{option} {path} is not writable ({reason} in {probe_in}); choose a folder you can write to."
        ) from None
    return path


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (on this machine)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class FolderLock:
    """Exclusive, non-blocking lock on ``<folder>/.reid.lock`` (``with FolderLock(folder): ...``).

    Raises :class:`RunDirectoryError` at once when another process holds it. ``what`` names the
    folder's role in that message (``"run directory"``). The lock file is removed on release (a
    finished run keeps no trace of it); it is addressed through a handle on the folder itself, so
    the lock follows the folder if it is renamed while held (the atomic swap of an overwrite).
    """

    def __init__(self, folder: str | os.PathLike[str], what: str = "folder") -> None:
        self.folder, self.what = Path(folder), what
        self._fd: int | None = None
        self._dir_fd: int | None = None

    @property
    def path(self) -> Path:
        return self.folder / LOCK_NAME

    def acquire(self) -> FolderLock:
        import fcntl

        dir_fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            while True:
                fd = os.open(LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644, dir_fd=dir_fd)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as exc:
                    os.close(fd)
                    if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                        raise
                    holder = _read_pid(self.path)
                    who = f"process {holder}" if holder else "another process"
                    raise RunDirectoryError(
                        f"the {self.what} {self.folder} is in use by {who} (lock {self.path}); wait for it "
                        "to finish, or choose another --out."
                    ) from None
                try:  # the file we locked must still be the one at the path (its holder may have removed it)
                    same = os.stat(LOCK_NAME, dir_fd=dir_fd).st_ino == os.fstat(fd).st_ino
                except FileNotFoundError:
                    same = False
                if same:
                    break
                os.close(fd)
        except BaseException:
            os.close(dir_fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd, self._dir_fd = fd, dir_fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        import fcntl

        try:
            os.unlink(LOCK_NAME, dir_fd=self._dir_fd)  # still locked: nobody can take the old file meanwhile
        except OSError:
            pass  # the folder is gone (an overwritten run being deleted)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        os.close(self._dir_fd)
        self._fd = self._dir_fd = None

    def probe(self) -> None:
        """Raise if someone else holds the lock now; leaves nothing locked (no-op if no folder)."""
        if self.folder.is_dir():
            self.acquire().release()

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def partial_name(target: str | os.PathLike[str], tag: str) -> Path:
    """The hidden sibling ``.<name>.partial-<pid>-<tag>`` where ``target`` is built before its rename."""
    target = Path(target)
    return target.parent / f".{target.name}.partial-{os.getpid()}-{tag}"


def remove_stale_partials(target: str | os.PathLike[str], *, only_dead: bool = True) -> list[Path]:
    """Delete ``.<name>.partial-<pid>-*`` siblings of ``target`` left by processes that are gone.

    ``only_dead=False`` removes them whatever their pid (callers that hold the target's lock know
    nobody else is building it). Returns what was removed.
    """
    target = Path(target)
    removed = []
    if not target.parent.is_dir():
        return removed
    for leftover in target.parent.glob(f".{target.name}.partial-*"):
        pid_text = leftover.name.rsplit(".partial-", 1)[1].split("-", 1)[0]
        pid = int(pid_text) if pid_text.isdigit() else -1
        if pid == os.getpid() or (only_dead and pid_alive(pid)):
            continue
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
        removed.append(leftover)
    return removed
