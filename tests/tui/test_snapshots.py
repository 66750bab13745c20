"""SVG snapshots of the main screens at fixed sizes (pytest-textual-snapshot). Update them with
``python -m pytest tests/tui/test_snapshots.py --snapshot-update`` after a deliberate change, and look at them."""

from __future__ import annotations

import pytest

import scanner.store
from scanner.store import Store
from tests.tui.synthetic import fill_store
from tui.app import CamsweepApp

pytestmark = pytest.mark.timeout(180)


@pytest.fixture()
def fixed_db(tmp_path, monkeypatch):
    """The synthetic store with a frozen clock, so that first/last seen are the same on every run."""
    ticks = iter(range(10_000_000))
    monkeypatch.setattr(scanner.store, "now_iso",
                        lambda: f"2026-03-02T09:{(next(ticks) // 60) % 60:02d}:{next(ticks) % 60:02d}.000000Z")
    path = tmp_path / "snap.db"
    s = Store(path)
    fill_store(s, 48, seed=5)
    s.close()
    return path


async def _loaded(pilot) -> None:
    app = pilot.app
    for _ in range(300):
        if app.loaded and not any(w.is_running for w in app.workers if w.group == "load"):
            break
        await pilot.pause(0.05)
    await pilot.pause()


def test_devices_restricted_with_plan_panel(fixed_db, snap_compare):
    async def run_before(pilot):
        await _loaded(pilot)
        await pilot.press("r", "down", "down")
    assert snap_compare(CamsweepApp(fixed_db), terminal_size=(100, 32), run_before=run_before)


def test_device_detail_evidence(fixed_db, snap_compare):
    async def run_before(pilot):
        await _loaded(pilot)
        await pilot.press("slash", *"maker:lts", "enter", "enter")
        await pilot.pause()
    assert snap_compare(CamsweepApp(fixed_db), terminal_size=(100, 32), run_before=run_before)


def test_plan_editor(fixed_db, snap_compare):
    async def run_before(pilot):
        await _loaded(pilot)
        await pilot.press("r", "e")
        await pilot.pause()
    assert snap_compare(CamsweepApp(fixed_db), terminal_size=(100, 32), run_before=run_before)


def test_small_terminal_light_theme(fixed_db, snap_compare):
    async def run_before(pilot):
        await _loaded(pilot)
        await pilot.press("d")
        await pilot.pause()
    assert snap_compare(CamsweepApp(fixed_db), terminal_size=(80, 24), run_before=run_before)
