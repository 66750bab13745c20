"""Files that hold what a scan found (the store, ``--evidence-out``, reports): created 0600.

They carry serial numbers, MAC addresses and device page bodies, so other users of the machine get
no access, whatever the umask. A directory camsweep creates for them is 0700.
"""

from __future__ import annotations

import contextlib
import os
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
    if st.st_mode & 0o077 and st.st_uid == os.geteuid():
        with contextlib.suppress(OSError):
            os.chmod(path, PRIVATE_FILE)


def open_private(path: str | os.PathLike[str], mode: str = "w", **kw: Any) -> IO[Any]:
    """``open(path, mode)`` for writing, the file created (or narrowed to) 0600 before anything is written."""
    make_parent(path)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(path, flags, PRIVATE_FILE)
    try:
        st = os.fstat(fd)
        if st.st_mode & 0o077 and st.st_uid == os.geteuid():
            os.fchmod(fd, PRIVATE_FILE)
        return os.fdopen(fd, mode, **kw)
    except BaseException:
        os.close(fd)
        raise
