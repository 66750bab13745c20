from __future__ import annotations

from pathlib import Path

import pytest

from scanner.store import Store
from tests.report.sample import build_sample_store


@pytest.fixture
def sample(tmp_path: Path):
    """A file store holding one finished scan of the sample fleet (with plans and a hostile device)."""
    path = tmp_path / "camsweep.db"
    store = Store(path)
    scan_id, ids = build_sample_store(store)
    yield store, scan_id, ids, path
    store.close()
