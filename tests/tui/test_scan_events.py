"""The TUI reads the engine's typed scan events (scanner.events): what a person sees on the count bar and
in the device table while a scan runs. Events are fed as the engine's scan thread would hand them over."""

from __future__ import annotations

import pytest

from scanner.events import DeviceIdentified, HostsFound, Phase, Progress, ScanWarning
from scanner.store import Store
from tests.tui.synthetic import fill_store
from tests.tui.test_app import SIZE, screen_text, until, wait_loaded
from tui.app import CamsweepApp

pytestmark = pytest.mark.timeout(120)


@pytest.fixture()
def db(tmp_path):
    with Store(tmp_path / "tui.db") as s:
        fill_store(s, 12, seed=5, scans=1)
    return tmp_path / "tui.db"


async def test_progress_line_follows_the_scan_events(db):
    app = CamsweepApp(db)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(app, pilot)
        app._scan_event(Phase("discovery", seconds=0.8, hosts=7))
        await pilot.pause()
        assert "scanning: discovery done" in screen_text(app)
        app._scan_event(HostsFound(7))  # the number the engine counted, not a dict of it
        await pilot.pause()
        assert "scanning: 7 hosts" in screen_text(app)
        app._scan_event(Progress(3, 7))
        await pilot.pause()
        assert "scanning 3/7" in screen_text(app)
        app._scan_event(ScanWarning("wsd discovery on lab0 ran out of time"))
        await pilot.pause()
        assert any("wsd discovery on lab0 ran out of time" in str(n.message) for n in app._notifications)


async def test_identified_devices_join_the_table_with_their_recorder(db):
    app = CamsweepApp(db)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(app, pilot)
        before = app.view.counts.devices
        base = {"manufacturer": "Hikvision", "brand": "Hikvision", "model": "DS-7608NI", "device_type": "nvr",
                "restricted": True, "lists": ["ndaa889"], "confidence": 0.9, "evidence": []}
        app._scan_event(DeviceIdentified({"device_id": 9001, "ip": "198.18.0.77", "mac": None, **base}))
        app._scan_event(DeviceIdentified({"device_id": 9002, "ip": "192.168.254.2", "mac": None,
                                          **base, "device_type": "camera", "model": "DS-2CD2043"},
                                         parent_id=9001, channel="1"))
        await until(pilot, lambda: app.view.counts.devices == before + 2)
        assert app.view.by_id[9002]["parent_id"] == 9001 and app.view.by_id[9002]["channel"] == "1"
        assert app.view.by_id[9001]["ip"] == "198.18.0.77"
