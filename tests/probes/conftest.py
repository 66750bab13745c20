from __future__ import annotations

from pathlib import Path

import pytest

RECORDINGS = Path(__file__).resolve().parent.parent / "recordings"


def recording(rel: str) -> bytes:
    return (RECORDINGS / rel).read_bytes()


@pytest.fixture
def rec():
    return recording
