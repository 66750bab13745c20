"""Reading a file a user named, up to a cap: one read of cap + 1 bytes tells whether it is larger.

Each caller keeps its own refusals (its error class and words, what it does not accept inside)."""

from __future__ import annotations

from pathlib import Path


def read_capped(path: str | Path, cap: int) -> bytes | None:
    """The file's bytes, or None when it holds more than ``cap`` of them (no more than cap + 1 are read).
    OSError as opening or reading raises it."""
    with open(path, "rb") as fh:
        data = fh.read(cap + 1)
    return None if len(data) > cap else data
