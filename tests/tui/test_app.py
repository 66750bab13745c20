"""The TUI driven with Pilot over a store filled with identified devices (tests/tui/synthetic.py)."""

from __future__ import annotations

import csv
import json

import pytest

from scanner.store import Store
from tests.tui.synthetic import fill_store
from tui.app import CamsweepApp
from tui.screens import DeviceScreen, DevicesScreen, HelpScreen, PlanEditor
from tui.widgets import DeviceTable

pytestmark = pytest.mark.timeout(120)

SIZE = (100, 32)


@pytest.fixture()
def db(tmp_path):
    path = tmp_path / "tui.db"
    s = Store(path)
    fill_store(s, 60, seed=11, scans=2)
    s.close()
    return path


async def until(pilot, cond, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if cond():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not met in time")


async def wait_loaded(app, pilot, seconds: float = 15.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if app.loaded and not any(w.is_running for w in app.workers if w.group == "load"):
            await pilot.pause()
            return
        await pilot.pause(0.05)
    raise AssertionError("the store did not load")


def screen_text(app) -> str:
    """What a person would read on the terminal, as plain text lines."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def test_filter_restricted_open_device_and_see_evidence(db):
    app = CamsweepApp(db)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(app, pilot)
        total = app.view.counts.devices
        assert total == 60 and app.view.shown == 60
        restricted = app.view.counts.restricted
        assert 0 < restricted < total
        await pilot.press("r")
        table = app.screen.query_one(DeviceTable)
        assert app.view.shown == restricted == len(table.keys)
        assert all(app.view.by_id[k]["restricted"] is True for k in table.keys)
        # the count bar and the plan totals are on screen
        text = screen_text(app)
        assert f"Restricted {restricted:,}" in text
        assert "Plan totals" in text
        # open the highlighted device: its evidence, rule by rule
        key = table.current_key
        device = app.view.by_id[key]
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, DeviceScreen)
        ev = app.screen.query_one("#evtable")
        assert ev.row_count == len(device["evidence"]) > 0
        rules = {str(ev.get_row_at(i)[1]) for i in range(ev.row_count)}
        assert rules == {h["rule"] for h in device["evidence"]}
        hist = app.screen.query_one("#histtable")
        assert hist.row_count == len(app.store.device_history(key)) >= 1
        await pilot.press("escape")
        assert isinstance(app.screen, DevicesScreen)


async def test_free_text_maker_and_subnet_filters(db):
    app = CamsweepApp(db)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(app, pilot)
        await pilot.press("slash")
        await pilot.press(*"maker:amcrest")
        await pilot.press("enter")
        table = app.screen.query_one(DeviceTable)
        assert table.keys, "the synthetic fleet holds Amcrest units"
        for k in table.keys:
            assert app.view.by_id[k]["brand"] == "Amcrest"
        # the relabel is obvious in the brand column
        assert "Amcrest -> Dahua" in screen_text(app)
        app.view.filter_text = "subnet:198.18.0.0/28"
        app.apply_view()
        assert table.keys and all(app.view.by_id[k]["ip"].startswith("198.18.0.") for k in table.keys)
        await pilot.press("escape")
        assert app.view.shown == app.view.counts.devices
        # m / u: the highlighted row's maker or subnet
        d = app.view.by_id[table.current_key]
        await pilot.press("u")
        assert app.view.filter_text.startswith("subnet:") and table.keys
        assert all(app.view.by_id[k]["ip"].rsplit(".", 1)[0] == d["ip"].rsplit(".", 1)[0] for k in table.keys)
        await pilot.press("escape", "m")
        assert app.view.filter_text.startswith("maker:")
        assert all((app.view.by_id[k]["manufacturer"] or "") == (d["manufacturer"] or "") or
                   (app.view.by_id[k]["brand"] or "").lower().startswith(app.view.filter_text[6:]) for k in table.keys)


async def test_set_replacement_and_status_totals_change_then_export(db, tmp_path):
    app = CamsweepApp(db, export_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(app, pilot)
        await pilot.press("r")
        table = app.screen.query_one(DeviceTable)
        key = table.current_key
        before = app.view.totals.overall
        item = app.view.items[key]
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, PlanEditor)
        editor = app.screen
        # choose the PTZ class, then mark it exempt (needs a reason: first without one)
        editor.query_one("#cls").value = "ptz"
        await pilot.pause()
        editor.query_one("#status").value = "exempt"
        await pilot.click("#save")
        await pilot.pause()
        assert isinstance(app.screen, PlanEditor), "saving an exempt device without a reason must be refused"
        assert "needs a reason" in str(editor.query_one("#perror").render())
        # the PTZ class brought its own default costs into the form
        assert float(editor.query_one("#hw").value) == app.view.catalog.classes["ptz"].hardware
        editor.query_one("#reason").value = "scheduled for removal with the building works"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, DevicesScreen))
        new = app.view.items[key]
        assert new.status == "exempt" and new.replacement_class == "ptz"
        after = app.view.totals.overall
        assert after.by_status["exempt"] == before.by_status["exempt"] + 1
        assert after.total == pytest.approx(before.total - item.cost_total)
        saved = app.store.plan(key)
        assert saved["status"] == "exempt" and saved["replacement_class"] == "ptz"
        # back to planned with public safety and a new hardware cost: totals grow by the new cost
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, PlanEditor))
        editor = app.screen
        editor.query_one("#status").value = "planned"
        editor.query_one("#hw").value = "2500"
        editor.query_one("#ps").value = "yes"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, DevicesScreen))
        new2 = app.view.items[key]
        assert new2.status == "planned" and new2.cost_hardware == 2500 and new2.public_safety
        assert new2.tier == "P1"
        assert app.view.totals.overall.total == pytest.approx(after.total + new2.cost_total)
        assert "P1 planned" in screen_text(app)
        # export
        await pilot.press("x")
        await pilot.pause()
        app.screen.query_one("#path").value = "out/plan"
        (tmp_path / "out").mkdir()
        await pilot.press("enter")
        await until(pilot, lambda: (tmp_path / "out" / "plan.json").exists())
    rows = list(csv.DictReader((tmp_path / "out" / "plan.csv").open()))
    doc = json.loads((tmp_path / "out" / "plan.json").read_text())
    assert len(rows) == len(doc["items"]) == app.view.totals.overall.devices
    row = next(r for r in rows if int(r["device_id"]) == key)
    assert row["status"] == "planned" and float(row["cost_hardware"]) == 2500 and row["public_safety"] == "yes"
    assert doc["totals"]["overall"]["total"] == pytest.approx(app.view.totals.overall.total, abs=0.01)


async def test_notes_are_kept_by_mac(db):
    app = CamsweepApp(db)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(app, pilot)
        table = app.screen.query_one(DeviceTable)
        key = table.current_key
        mac = app.view.by_id[key]["mac"]
        await pilot.press("enter")
        await pilot.press("3")
        await pilot.pause()
        area = app.screen.query_one("#note")
        area.focus()
        area.insert("pole 7, car park; owner: facilities")
        await pilot.press("ctrl+s")
        await pilot.pause()
    s = Store(db)
    assert s.note(mac) == "pole 7, car park; owner: facilities"
    assert next(d for d in s.devices() if d["device_id"] == key)["note"].startswith("pole 7")


async def test_hostile_strings_are_shown_inert(db):
    app = CamsweepApp(db)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(app, pilot)
        app.view.filter_text = "script"
        app.apply_view()
        table = app.screen.query_one(DeviceTable)
        assert len(table.keys) == 1
        await pilot.press("end", "right", "left")
        text = screen_text(app)
        assert "\x1b]0;pwned" not in text and "\x07" not in text
        assert "<script>" in text
        await pilot.press("enter")
        await pilot.pause()
        shot = screen_text(app)
        assert "\\x1b" in shot and "\x1b[31m" not in shot
        assert app.screen.query_one("#evtable").row_count == 1


async def test_help_dark_light_sort_and_small_terminal(db):
    app = CamsweepApp(db)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_loaded(app, pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        theme = app.theme
        await pilot.press("d")
        assert app.theme != theme
        await pilot.press("s")  # sort by the first column: restricted first
        await pilot.pause()
        table = app.screen.query_one(DeviceTable)
        order = [app.view.by_id[k]["restricted"] for k in table.keys]
        rank = {True: 0, None: 1, False: 2}
        assert [rank[o] for o in order] == sorted(rank[o] for o in order)
        await pilot.press("s")  # then by IP
        await pilot.pause()
        assert table.sort_key == "ip"
        await pilot.press("pagedown", "pagedown", "end", "home")
        assert table.cursor == 0
        # at 80x24 the count bar, the table and the footer all fit
        text = screen_text(app)
        assert "Devices" in text and "Restricted" in text


async def test_scan_dialog_refuses_bad_options_clearly(db):
    app = CamsweepApp(db)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(app, pilot)
        await pilot.press("n")
        await pilot.pause()
        await pilot.press(*"198.18.0.1")
        app.screen.query_one("#options").value = "nonsense=1"
        await pilot.click("#start")
        await pilot.pause()
        assert not app.scanning
        assert any("unknown scan option" in n.message or "not available" in n.message
                   for n in app._notifications)


async def test_unreadable_store_is_a_message(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    app = CamsweepApp(bad)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        assert not app.loaded
        assert any("cannot open" in (n.title or "") for n in app._notifications)


async def test_mouse_click_row_header_and_double_click(db):
    app = CamsweepApp(db)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(app, pilot)
        table = app.screen.query_one(DeviceTable)
        await pilot.click(DeviceTable, offset=(20, 4))  # header is line 0: line 4 is the 4th row
        assert table.cursor == 3
        await pilot.click(DeviceTable, offset=(6, 0))  # the IP header
        await pilot.pause()
        assert app.view.sort_key == "ip"
        ips = [app.view.by_id[k]["ip"] for k in table.keys]
        assert ips[0] == min(ips, key=lambda ip: tuple(int(p) for p in ip.split(".")))
        await pilot.click(DeviceTable, offset=(20, 2))
        await pilot.click(DeviceTable, offset=(20, 2), times=2)
        await until(pilot, lambda: isinstance(app.screen, DeviceScreen))
        assert app.screen.device["device_id"] == table.keys[1]


def test_cli_tui_bad_arguments_are_one_line_errors(tmp_path, capsys):
    from scanner.cli import main

    bad = tmp_path / "bad.db"
    bad.write_bytes(b"garbage")
    assert main(["tui", "--db", str(bad)]) == 2
    assert "cannot open the store" in capsys.readouterr().err
    assert main(["tui", "--db", str(tmp_path / "ok.db"), "--catalog", str(tmp_path / "none.yaml")]) == 2
    assert "no catalog" in capsys.readouterr().err
    assert main(["tui", "--db", str(tmp_path / "ok.db"), "--policy", "nope"]) == 2
    assert "unknown policy" in capsys.readouterr().err


async def test_a_camera_behind_a_recorder_shows_the_recorder_and_channel(tmp_path):
    from scanner.evidence import Identification, parse_record

    path = tmp_path / "nvr.db"
    s = Store(path)
    sid = s.start_scan(["198.18.0.0/24"])
    nvr = s.record_device(sid, parse_record({"ip": "198.18.0.47", "mac": "14:a7:8b:40:00:2c"}),
                          Identification(manufacturer="Dahua", brand="Dahua", model="NVR5216-16P-4KS2E",
                                         device_type="nvr", restricted=True, lists=("ndaa889",)))
    s.record_device(sid, parse_record({"ip": "10.1.1.65", "mac": "3c:ef:8c:80:05:a1"}),
                    Identification(manufacturer="Dahua", brand="Amcrest", model="IP2M-841B", device_type="camera",
                                   restricted=True, lists=("ndaa889",)), parent_id=nvr, channel="3")
    s.finish_scan(sid)
    s.close()
    app = CamsweepApp(path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(app, pilot)
        text = screen_text(app)
        assert "198.18.0.47 ch3" in text  # not its internal PoE address
        assert "10.1.1.65" not in text


async def test_known_exploited_firmware_hint_in_the_plan_panel(db):
    """A device whose firmware is in a CISA known-exploited range shows the hint beside its plan; one with a
    fixed version does not (fingerprints/exploited.yaml decides)."""
    app = CamsweepApp(db)
    async with app.run_test(size=SIZE) as pilot:
        await wait_loaded(app, pilot)
        table = app.screen.query_one(DeviceTable)
        affected = next(k for k in table.keys if app.view.by_id[k].get("model") == "DS-2CD2143G0-I"
                        and "190909" in (app.view.by_id[k].get("firmware") or ""))
        fixed = next(k for k in table.keys if app.view.by_id[k].get("model") == "DS-2CD2T43G2-4I")
        assert table.move_to_key(affected)
        await until(pilot, lambda: "Known-exploited" in screen_text(app))
        assert "CVE-2021-36260" in screen_text(app)
        assert table.move_to_key(fixed)
        await until(pilot, lambda: "Known-exploited" not in screen_text(app))
