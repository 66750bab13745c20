"""Files that hold what a scan found (the store, ``--evidence-out``, reports): created 0600.

They carry serial numbers, MAC addresses and device page bodies, so other users of the machine get
no access, whatever the umask. A directory camsweep creates for them is 0700. Also the lock that lets
one process at a time set up a store (:func:`setup_lock`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def make_parent(path: str | os.PathLike[str]) -> None:
    """Create the parent directories of ``path`` (new ones 0700)."""
    parent = Path(path).parent
    if not parent.exists():
        parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)


def create_private_file(path: str | os.PathLike[str]) -> None:
    """Make sure ``path`` exists as a file readable by its owner only: a new one is created 0600; an
    existing one of ours that others could read is narrowed to 0600 (one left by an older version)."""
    make_parent(path)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
        return
    except FileExistsError:  # opened as it is (perhaps read-only to us); narrowed when it is ours
        pass
    st = os.stat(path)
    if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077 and st.st_uid == os.geteuid():
        with contextlib.suppress(OSError):
            os.chmod(path, PRIVATE_FILE)


def write_whole(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600 so a reader never sees half of it: a temporary file in the
    same directory, renamed over the target. A target that exists and is not a regular file (``/dev/null``,
    a FIFO, ``/dev/stdout``) is written in place: renaming over it would replace the device with a file."""
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(21, "is a directory; give a file name", str(path))
    if target.exists() and not target.is_file():
        with open(target, "wb") as fh:
            fh.write(data)
        return
    make_parent(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=str(target.parent))  # mkstemp: 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, PRIVATE_FILE)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def open_private(path: str | os.PathLike[str], mode: str = "w", **kw: Any) -> IO[Any]:
    """``open(path, mode)`` for writing, the file created (or narrowed to) 0600 before anything is written."""
    make_parent(path)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(path, flags, PRIVATE_FILE)
    try:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o077 and st.st_uid == os.geteuid():
            os.fchmod(fd, PRIVATE_FILE)  # never a device such as /dev/null
        return os.fdopen(fd, mode, **kw)
    except BaseException:
        os.close(fd)
        raise


@contextlib.contextmanager
def setup_lock(db_path: str, timeout: float = 60.0) -> Iterator[None]:
    """Hold ``<db_path>.lock`` (flock, 0600) while a store is opened, switched to WAL and migrated: SQLite
    answers "database is locked" without waiting in some of those steps when processes race on a new
    file. Nothing is locked for ``:memory:`` or where the lock file cannot be made (a read-only
    directory: such a store is not migrated by us anyway)."""
    if db_path == ":memory:" or db_path.startswith("file:"):
        yield
        return
    try:
        fd = os.open(db_path + ".lock", os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    except OSError:
        yield
        return
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)  # releases the lock
