from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from scanner.cli import main
from scanner.diff import build_scan_diff, format_scan_diff, parse_since
from scanner.store import Store
from tests.report.sample import TERM, fleet, record_scan, second_scan_specs


@pytest.fixture
def two_scans(tmp_path):
    path = tmp_path / "d.db"
    store = Store(path)
    a, ids_a = record_scan(store, fleet())
    b, ids_b = record_scan(store, second_scan_specs())
    yield store, a, b, ids_b, path
    store.close()


def test_added_and_reflashed_devices_are_exactly_what_is_reported(two_scans):
    store, a, b, ids, _ = two_scans
    d = build_scan_diff(store.devices(scan_id=a), store.devices(scan_id=b))
    assert [x["mac"] for x in d.new] == ["b4:a3:82:0f:d9:2d"]
    assert d.gone == ()
    assert len(d.changed) == 1
    ch = d.changed[0]
    assert ch.new["device_id"] == ids["dahua"] and ch.matched_on == "mac"
    assert [c.to_dict() for c in ch.changes] == [
        {"field": "firmware", "old": "2.800.0000000.16.R", "new": "2.820.0000000.3.R"}]
    assert d.unchanged == 8
    assert d.matched_on == {"mac": 8, "ip": 1}  # the NVR channel camera has no MAC or serial
    assert [x["mac"] for x in d.newly_restricted] == ["b4:a3:82:0f:d9:2d"]


def _dev(**kw):
    base = {"device_id": 1, "ip": "198.18.0.5", "mac": None, "serial": None, "manufacturer": "Hikvision",
            "brand": "Hikvision", "model": "DS-2CD2143G0-I", "firmware": "V5.5.82", "device_type": "camera",
            "restricted": True, "lists": ["ndaa889"]}
    base.update(kw)
    return base


def test_mac_first_then_serial_then_ip():
    old = [_dev(mac="58:50:ed:00:00:01", ip="198.18.0.5"),
           _dev(serial="SN-2", ip="198.18.0.6", mac=None),
           _dev(ip="198.18.0.7")]
    new = [_dev(mac="58:50:ED:00:00:01", ip="198.18.0.50"),  # moved: same MAC (any case)
           _dev(serial="SN-2", ip="198.18.0.60", mac="58:50:ed:00:00:02"),  # MAC now known: serial pairs it
           _dev(ip="198.18.0.7", firmware="V5.7.0")]  # no MAC, no serial: IP as last resort
    d = build_scan_diff(old, new)
    assert not d.new and not d.gone
    got = {(c.matched_on, c.fields) for c in d.changed}
    assert got == {("mac", ("ip",)), ("serial", ("ip",)), ("ip", ("firmware",))}
    lines = format_scan_diff(d)
    assert any("matched on IP only" in line for line in lines)


def test_same_ip_different_mac_is_two_devices():
    d = build_scan_diff([_dev(mac="58:50:ed:00:00:01")], [_dev(mac="e0:50:8b:00:00:01", manufacturer="Dahua")])
    assert len(d.new) == 1 and len(d.gone) == 1 and not d.changed


def test_channel_cameras_pair_by_recorder_ip_and_channel():
    old = [_dev(ip="198.18.0.20", channel="1", firmware="A"), _dev(ip="198.18.0.20", channel="2")]
    new = [_dev(ip="198.18.0.20", channel="2"), _dev(ip="198.18.0.20", channel="1", firmware="B")]
    d = build_scan_diff(old, new)
    assert d.unchanged == 1 and [(c.new["channel"], c.fields) for c in d.changed] == [("1", ("firmware",))]


def test_newly_restricted_and_maker_change():
    d = build_scan_diff([_dev(mac="02:00:00:00:00:01", manufacturer=None, brand=None, restricted=None)],
                        [_dev(mac="02:00:00:00:00:01", manufacturer="Dahua", brand="Dahua", restricted=True)])
    (c,) = d.changed
    assert c.newly_restricted and set(c.fields) == {"manufacturer", "restricted"}  # brand: was not seen
    assert "NEWLY RESTRICTED" in format_scan_diff(d)[-1]
    # case-only differences in a maker name are not a change
    assert build_scan_diff([_dev(mac="02:00:00:00:00:01", manufacturer="DAHUA")],
                           [_dev(mac="02:00:00:00:00:01", manufacturer="Dahua")]).is_empty()


def test_parse_since():
    now = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    assert parse_since("7d", now) == "2026-11-16T08:00:00.000000Z"
    assert parse_since("12h", now) == "2026-11-22T20:00:00.000000Z"
    assert parse_since("2w", now) == "2026-11-09T08:00:00.000000Z"
    assert parse_since("2026-11-01", now) == "2026-11-01T00:00:00.000000Z"
    for bad in ("", "7 days", "yesterday", "-3d", "99999999d"):
        with pytest.raises(ValueError, match="--since"):
            parse_since(bad, now)


def test_cli_diff_text_json_and_exit_code(two_scans, capsys):
    store, a, b, ids, path = two_scans
    assert main(["diff", str(a), str(b), "--db", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("1 new, 0 gone, 1 changed, 8 unchanged")
    assert "+ new      198.18.0.16 (b4:a3:82:0f:d9:2d) Hikvision DS-2CD3955FWD-IWS [RESTRICTED]" in out
    assert "firmware 2.800.0000000.16.R -> 2.820.0000000.3.R" in out
    assert main(["diff", str(a), str(b), "--db", str(path), "--format", "json", "--exit-code"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert (doc["old_scan"], doc["new_scan"], len(doc["new"]), len(doc["gone"]), len(doc["changed"])) == (a, b, 1, 0, 1)
    assert main(["diff", str(b), str(b), "--db", str(path), "--exit-code"]) == 0


def test_cli_diff_since_picks_the_baseline(two_scans, capsys):
    store, a, b, ids, path = two_scans
    store.db["scans"].update(a, {"started_at": "2026-01-01T00:00:00.000000Z"})
    assert main(["diff", "--since", "7d", "--db", str(path), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["old_scan"], doc["new_scan"]) == (a, b)
    # another site has only one scan: a clear message, exit 2
    c, _ = record_scan(store, fleet()[:2], site="branch")
    assert main(["diff", "--since", "7d", "--site", "branch", "--db", str(path)]) == 2
    assert "only one complete scan of site 'branch'" in capsys.readouterr().err


def test_cli_diff_errors_are_messages(tmp_path, two_scans, capsys):
    store, a, b, ids, path = two_scans
    assert main(["diff", str(a), "--db", str(path)]) == 2
    assert "give two scan ids" in capsys.readouterr().err
    assert main(["diff", str(a), "99", "--db", str(path)]) == 2
    assert "no scan with id 99" in capsys.readouterr().err
    assert main(["diff", "--since", "soon", "--db", str(path)]) == 2
    assert "--since 'soon'" in capsys.readouterr().err
    assert main(["diff", "1", "2", "--db", str(tmp_path / "missing.db")]) == 2
    assert "no camsweep store" in capsys.readouterr().err


def test_cli_diff_text_is_terminal_safe(two_scans, capsys):
    store, a, b, ids, path = two_scans
    specs = second_scan_specs()
    for s in specs:
        if s["key"] == "hik":
            s["ident"]["firmware"] = TERM + "V9"
    c, _ = record_scan(store, specs)
    assert main(["diff", str(a), str(c), "--db", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b]0;pwned\\x07\\x1b[31mV9" in out


def test_spelling_is_not_a_change_but_a_new_version_is():
    mac = "02:00:00:00:00:09"
    same = build_scan_diff([_dev(mac=mac, firmware="V5.6.15 build 200924", model="DH-IP8M-2496EB")],
                           [_dev(mac=mac, firmware="V5.6.15build 200924", model="IP8M-2496EB")])
    assert same.is_empty() and same.unchanged == 1
    d = build_scan_diff([_dev(mac=mac, firmware="V5.6.15 build 200924", model="DS-2CD2143G0-I")],
                        [_dev(mac=mac, firmware="V5.6.16 build 210101", model="DS-2CD2143G2-I")])
    assert d.changed[0].fields == ("firmware", "model")
    # a prefix is only a vendor prefix when it is a single dash-ended word
    assert build_scan_diff([_dev(mac=mac, model="IPC-HDW1230T2")],
                           [_dev(mac=mac, model="HDW1230T2")]).is_empty()
    assert not build_scan_diff([_dev(mac=mac, model="A-B-HDW1230T2")],
                               [_dev(mac=mac, model="HDW1230T2")]).is_empty()


def test_a_field_one_scan_did_not_learn_is_not_a_change():
    mac = "02:00:00:00:00:0a"
    assert build_scan_diff([_dev(mac=mac, firmware="V5.5.82")], [_dev(mac=mac, firmware=None)]).is_empty()
    assert build_scan_diff([_dev(mac=mac, model=None, device_type=None)], [_dev(mac=mac)]).is_empty()
    # but a maker or a restriction that becomes known is reported
    d = build_scan_diff([_dev(mac=mac, manufacturer=None, restricted=None)], [_dev(mac=mac)])
    assert d.changed[0].fields == ("restricted", "manufacturer") and d.changed[0].newly_restricted
