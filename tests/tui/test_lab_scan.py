"""The TUI over a store filled by a real scan of the loopback lab, started from the TUI's own scan dialog:
devices appear as found, then filter to restricted, open a device and see its evidence, plan it, export."""

from __future__ import annotations

import json

import pytest

from tests.tui.test_app import screen_text, until, wait_loaded
from tui.app import CamsweepApp
from tui.screens import DeviceScreen, DevicesScreen, PlanEditor, ScanDialog
from tui.widgets import DeviceTable

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


async def test_scan_from_the_tui_then_plan(loopback_lab, tmp_path):
    truth = [r for r in loopback_lab.ground_truth_rows() if r.get("ip") and not r.get("parent_ip")]
    ips = sorted({r["ip"] for r in truth})
    want_restricted = {r["ip"] for r in truth if r.get("restricted") is True}
    assert ips and want_restricted
    app = CamsweepApp(tmp_path / "lab.db", export_dir=tmp_path)
    seen_progress: list[str] = []
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_loaded(app, pilot)
        assert app.view.counts.devices == 0
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, ScanDialog))
        app.screen.query_one("#targets").value = " ".join(ips)
        app.screen.query_one("#site").value = "lab"
        app.screen.query_one("#options").value = "arp=false multicast=false timeout=2"
        await pilot.press("enter")
        await until(pilot, lambda: app.scanning or app.view.progress)

        rows_while_scanning: list[int] = []

        def watch() -> bool:
            seen_progress.append(app.view.progress)
            if app.scanning:
                rows_while_scanning.append(len(app.view.devices))
            return not app.scanning

        await until(pilot, watch, seconds=240)
        assert any(p.startswith("scanning") for p in seen_progress), (seen_progress[:5], app.view.progress, [n.message for n in app._notifications])
        assert max(rows_while_scanning) > 0, "devices appeared while the scan ran"
        assert "finished" in app.view.progress, (app.view.progress, [n.message for n in app._notifications])
        await wait_loaded(app, pilot)
        found = {d["ip"] for d in app.view.devices}
        assert set(ips) <= found
        # restricted only: what the lab says is restricted is flagged (a miss here is the identifier's)
        await pilot.press("r")
        table = app.screen.query_one(DeviceTable)
        flagged = {app.view.by_id[k]["ip"] for k in table.keys}
        assert flagged & want_restricted
        assert not flagged - set(ips), "only scanned lab devices can be flagged"
        text = screen_text(app)
        assert "Plan totals" in text and "Restricted" in text
        # open one and see the evidence chain with rule ids
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DeviceScreen))
        dev = app.screen.device
        ev = app.screen.query_one("#evtable")
        assert ev.row_count == len(dev["evidence"]) > 0
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, PlanEditor))
        before = app.view.totals.overall
        item = app.view.items[dev["device_id"]]
        app.screen.query_one("#status").value = "ordered"
        app.screen.query_one("#hw").value = f"{item.cost_hardware + 1000:.2f}"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, DeviceScreen))
        assert app.view.totals.overall.total == pytest.approx(before.total + 1000)
        assert "ordered" in str(app.screen.query_one("#devhead").render())  # the detail view follows
        assert app.view.totals.overall.by_status["ordered"] == before.by_status["ordered"] + 1
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, DevicesScreen))
        app.export_plan("lab-plan")
    doc = json.loads((tmp_path / "lab-plan.json").read_text())
    assert any(i["status"] == "ordered" and i["site"] == "lab" for i in doc["items"])
    assert (tmp_path / "lab-plan.csv").read_text().count("\n") == len(doc["items"]) + 1
