"""The TUI over a central PostgreSQL store: the same screens as over SQLite, with many sites."""

from __future__ import annotations

import pytest

from scanner.store import Store
from tests.tui.synthetic import fill_store
from tests.tui.test_app import SIZE, screen_text, wait_loaded
from tui.app import CamsweepApp

pytestmark = [pytest.mark.pg, pytest.mark.timeout(120)]


async def test_tui_over_postgresql_shows_restricted_devices_sites_and_plan(pg_url, tmp_path):
    with Store(pg_url) as s:
        fill_store(s, 60, seed=11, scans=2)
    lite = tmp_path / "same.db"
    with Store(lite) as s:
        fill_store(s, 60, seed=11, scans=2)
    seen = {}
    for name, target in (("pg", pg_url), ("sqlite", str(lite))):
        app = CamsweepApp(target)
        async with app.run_test(size=SIZE) as pilot:
            await wait_loaded(app, pilot)
            text = screen_text(app)
            assert "Sites" in text and "Restricted" in text and "Plan" in text
            seen[name] = (app.view.counts, app.view.site_count, app.view.totals.overall.total, len(app.view.totals.by_site))
            await pilot.press("r")  # restricted only
            await pilot.pause(0.3)
            assert 0 < app.view.shown < 60
    assert seen["pg"] == seen["sqlite"]
