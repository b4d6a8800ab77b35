"""A session folder belongs to one run: claimed before anything else, released at the end.

:func:`claim_session_dir` creates the folder (0700) and takes an exclusive lock on
its lock file, ``.session-monitor.lock`` (``flock``, so a run killed with SIGKILL
leaves no lock behind, only the file). While one run holds it, a second run into the
same folder is refused with a one-line error, ``--force`` or not. A folder that
holds anything else (an earlier session) is refused unless ``force``; with
``force`` the earlier folder is renamed aside whole (one ``rename``: nothing of the
old session can mix with the new one) to ``NAME.replaced-YYYYmmdd-HHMMSS``, next
to it, and a fresh folder is made. Files inside are opened with ``O_NOFOLLOW``
(:func:`open_private`): a symlink planted in the folder is refused, not followed.
"""

from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import json
import logging
import os
import stat
import uuid
from pathlib import Path
from typing import Self

from session_monitor.errors import SessionDirError
from session_monitor.schema import show

__all__ = ["LOCK_NAME", "SessionClaim", "claim_session_dir", "new_session_dir", "open_private"]

logger = logging.getLogger(__name__)

#: The lock file every run holds in its session folder.
LOCK_NAME = ".session-monitor.lock"


def new_session_dir(root: str | Path) -> Path:
    """A fresh folder name under ``root``: ``YYYYmmdd-HHMMSS-xxxx``."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{stamp}-{uuid.uuid4().hex[:4]}"


def open_private(path: Path, flags: int) -> int:
    """``os.open`` a file of a session folder 0600, never through a symlink (``O_NOFOLLOW``)."""
    try:
        fd = os.open(path, flags | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SessionDirError(f"{show(path, limit=120)}: is a symbolic link; session files are never "
                                  "written through a link: remove it") from None
        raise
    os.fchmod(fd, 0o600)
    return fd


class SessionClaim:
    """One run's hold on its session folder (see the module docstring); release with :meth:`release`.

    Attributes
    ----------
    folder : the session folder, empty but for the lock file when claimed
    previous : where ``--force`` moved the earlier session's folder, or None
    """

    def __init__(self, folder: Path, fd: int, previous: Path | None, *, created: bool) -> None:
        self.folder = folder
        self.previous = previous
        self.created = created  #: this run made the folder
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self, *, remove_if_empty: bool = False) -> None:
        """Remove the lock file and drop the lock; safe to call twice.

        ``remove_if_empty`` also removes the folder when this run made it and wrote
        nothing into it (a run that failed before its first event leaves nothing).
        """
        fd, self._fd = self._fd, None
        if fd is None:
            return
        _unlock(self.folder, fd)
        if remove_if_empty and self.created and self.previous is None:
            try:
                self.folder.rmdir()  # fails, and keeps the folder, when anything is in it
            except OSError:
                pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def claim_session_dir(path: str | Path, *, force: bool = False) -> SessionClaim:
    """Create ``path`` (0700) if needed and claim it for this run.

    Raises
    ------
    SessionDirError
        ``path`` is a file; another run holds it; it holds an earlier session and
        ``force`` is not given; it cannot be created or written.
    """
    folder = Path(path)
    name = f"--session-dir {show(folder, limit=120)}"
    created = _make_folder(folder, name)
    fd = _lock(folder, name)
    if not _others(folder):
        return SessionClaim(folder, fd, None, created=created)
    if not force:
        _unlock(folder, fd)
        raise SessionDirError(f"{name}: folder exists and is not empty; choose a new folder or add "
                              "--force (the earlier files are then moved aside)")
    try:
        previous = _move_aside(folder, name)
    except BaseException:
        _unlock(folder, fd)
        raise
    _unlock(previous, fd)  # the lock file moved with the earlier folder
    _make_folder(folder, name)
    fd = _lock(folder, name)
    if _others(folder):  # another run made and filled the folder in between
        _unlock(folder, fd)
        raise SessionDirError(f"{name}: is being claimed by another run; choose another folder")
    return SessionClaim(folder, fd, previous, created=True)


def _unlock(folder: Path, fd: int) -> None:
    try:
        os.unlink(folder / LOCK_NAME)  # while still locked: a run waiting on it then sees a fresh file
    except OSError:
        logger.warning("could not remove %s", folder / LOCK_NAME)
    os.close(fd)


def _make_folder(folder: Path, name: str) -> bool:
    """Create ``folder`` 0700 (and its parents); True when it did not exist before."""
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise SessionDirError(f"{name}: cannot be used ({_reason(exc)}); choose another path") from None
    if st is not None and not stat.S_ISDIR(st.st_mode) and not (stat.S_ISLNK(st.st_mode) and folder.is_dir()):
        raise SessionDirError(f"{name}: is a file, not a folder; choose another path")
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(folder, 0o700)
    except OSError as exc:
        raise SessionDirError(f"{name}: cannot create folder ({_reason(exc)}); choose a writable place") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SessionDirError(f"{name}: folder is not writable; choose a writable place")
    return st is None


def _reason(exc: OSError) -> str:
    return "the name is too long" if exc.errno == errno.ENAMETOOLONG else (exc.strerror or str(exc))


def _lock(folder: Path, name: str) -> int:
    """Open (creating) and ``flock`` the lock file; refuse when another live run holds it."""
    lock = folder / LOCK_NAME
    for _ in range(3):
        try:
            fd = open_private(lock, os.O_RDWR | os.O_CREAT)
        except OSError as exc:
            raise SessionDirError(f"{name}: cannot create its lock file ({_reason(exc)})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _holder(fd)
            os.close(fd)
            raise SessionDirError(f"{name}: is in use by another session-monitor run{holder}; wait for it to end "
                                  "or choose another folder") from None
        try:
            same = os.fstat(fd).st_ino == os.lstat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:  # not a file the previous holder unlinked between our open and our lock
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"pid": os.getpid(), "since": _dt.datetime.now().astimezone()
                                     .isoformat(timespec="seconds")}).encode() + b"\n")
            return fd
        os.close(fd)
    raise SessionDirError(f"{name}: is being claimed by another run; choose another folder")


def _holder(fd: int) -> str:
    try:
        data = json.loads(os.pread(fd, 200, 0) or b"{}")
        return f" (pid {int(data['pid'])})"
    except (ValueError, KeyError, TypeError, OSError):
        return ""


def _others(folder: Path) -> list[str]:
    return [n for n in os.listdir(folder) if n != LOCK_NAME]


def _move_aside(folder: Path, name: str) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    for i in range(100):
        aside = folder.with_name(f"{folder.name}.replaced-{stamp}" + (f"-{i}" if i else ""))
        if os.path.lexists(aside):
            continue
        try:
            os.rename(folder, aside)
        except OSError as exc:
            raise SessionDirError(f"{name}: cannot move the earlier session aside ({_reason(exc)}); "
                                  "move or remove it yourself") from None
        logger.info("moved the earlier session in %s aside to %s", folder, aside)
        return aside
    raise SessionDirError(f"{name}: cannot move the earlier session aside; move or remove it yourself")
