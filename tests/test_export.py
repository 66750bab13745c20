"""`camsweep export` and scanner.blocklist: which devices, deterministic order, formats, file mode 0600,
hostile device text kept out of the lists."""

from __future__ import annotations

import csv
import io
import shutil
import stat
import subprocess

import pytest

from scanner.blocklist import build_blocklist, entries, select_devices
from scanner.cli import main
from scanner.store import Store
from tests.report.sample import fleet, record_scan

ROWS = [
    {"device_id": 1, "ip": "198.18.0.20", "mac": "58-50-ED-AA-BB-CC", "manufacturer": "Hikvision", "model": "DS-7608NI",
     "restricted": True, "lists": ["ndaa889"], "site": "hq"},
    {"device_id": 2, "ip": "198.18.0.3", "mac": "44:19:b6:00:00:01", "manufacturer": "Dahua", "restricted": True,
     "lists": ["ndaa889"], "site": "hq"},
    {"device_id": 3, "ip": "10.1.1.65", "mac": "44:19:b6:00:00:09", "manufacturer": "Dahua", "restricted": True,
     "parent_id": 2, "channel": "1"},
    {"device_id": 4, "ip": "2001:db8::5", "mac": None, "manufacturer": "Hikvision", "restricted": True},
    {"device_id": 5, "ip": "198.18.0.9", "mac": "00:40:8c:00:00:01", "manufacturer": "Axis", "restricted": False},
    {"device_id": 6, "ip": "198.18.0.100", "mac": "02:00:00:00:00:06", "manufacturer": None, "restricted": None,
     "review": {"maker": "Dahua", "reason": "weak"}, "brand": "=HYPERLINK(\"http://x\")\x1b[31m"},
    {"device_id": 7, "ip": "not an ip", "mac": "garbage", "manufacturer": "Dahua", "restricted": True},
]


def test_select_restricted_and_review():
    assert [d["device_id"] for d in select_devices(ROWS)] == [1, 2, 4, 7]
    assert [d["device_id"] for d in select_devices(ROWS, include_review=True)] == [1, 2, 4, 6, 7]
    assert [d["device_id"] for d in select_devices(ROWS, include_channels=True)] == [1, 2, 3, 4, 7]


def test_macs_and_ips_sorted_deduplicated_and_channels_by_mac_only():
    chosen = select_devices(ROWS, include_channels=True)
    assert build_blocklist(chosen, "macs") == "44:19:b6:00:00:01\n44:19:b6:00:00:09\n58:50:ed:aa:bb:cc\n"
    # numeric order (198.18.0.3 before 198.18.0.20), IPv4 before IPv6; the channel's internal address left out
    assert build_blocklist(chosen, "ips") == "198.18.0.3\n198.18.0.20\n2001:db8::5\n"
    assert build_blocklist(list(reversed(chosen)) + chosen, "macs") == build_blocklist(chosen, "macs")


def test_nac_csv_is_safe_for_spreadsheets():
    text = build_blocklist(select_devices(ROWS, include_review=True, include_channels=True), "nac-csv", group="=cmd")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["MAC", "group", "description"]
    assert [r[0] for r in rows[1:]] == ["02:00:00:00:00:06", "44:19:B6:00:00:01", "44:19:B6:00:00:09",
                                        "58:50:ED:AA:BB:CC"]
    assert rows[1][1] == "camsweep-review" and rows[2][1] == "'=cmd"
    assert "\x1b" not in text
    assert all(not r[2].startswith(("=", "+", "-", "@")) for r in rows[1:])


def test_nft_file(tmp_path):
    text = build_blocklist(select_devices(ROWS), "nft", title="scan 3\x1b]0;x")
    assert "add element inet camsweep blocked_ipv4 { 198.18.0.3, 198.18.0.20 }" in text
    assert "add element inet camsweep blocked_ipv6 { 2001:db8::5 }" in text
    assert "\x1b" not in text
    empty = build_blocklist([], "nft")
    assert "add element" not in empty and "flush set inet camsweep blocked_mac" in empty
    with pytest.raises(ValueError, match="table name"):
        build_blocklist([], "nft", table="x; flush ruleset")
    nft = shutil.which("nft")
    if nft:  # nftables' own check of the syntax (no change to the ruleset)
        for i, t in enumerate((text, empty)):
            f = tmp_path / f"b{i}.nft"
            f.write_text(t)
            p = subprocess.run([nft, "-c", "-f", str(f)], capture_output=True, text=True)
            if "Operation not permitted" in p.stderr:
                pytest.skip("nft -c needs CAP_NET_ADMIN here")
            assert p.returncode == 0, p.stderr


def test_entries_ignore_garbage():
    assert all(e.mac != "garbage" for e in entries(ROWS))


@pytest.fixture
def store_path(tmp_path):
    db = tmp_path / "s.db"
    with Store(db) as store:
        record_scan(store, fleet(), site="hq")
        record_scan(store, [s for s in fleet() if s["key"] in ("axis", "dahua")], site="branch")
    return db


def test_cli_writes_0600_and_is_deterministic(store_path, tmp_path, capsys):
    out = tmp_path / "lists" / "hq.macs"
    assert main(["export", "--db", str(store_path), "--format", "macs", "--site", "hq", "-o", str(out)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    first = out.read_bytes()
    out.chmod(0o644)
    assert main(["export", "--db", str(store_path), "--format", "macs", "--site", "hq", "-o", str(out)]) == 0
    assert out.read_bytes() == first and stat.S_IMODE(out.stat().st_mode) == 0o600
    with Store(store_path) as s:
        sid = s.latest_scan_id(site="hq")
        want = sorted({d["mac"] for d in s.devices(scan_id=sid) if d["restricted"] is True and d["mac"]})
    assert first.decode().split() == want
    capsys.readouterr()
    assert main(["export", "--db", str(store_path), "--format", "macs", "--site", "branch"]) == 0
    assert capsys.readouterr().out == "e0:50:8b:12:34:56\n"  # the branch scan's one restricted device


def test_cli_errors(store_path, tmp_path, capsys):
    assert main(["export", "--db", str(tmp_path / "none.db"), "--format", "ips"]) == 2
    assert "no camsweep store" in capsys.readouterr().err
    assert main(["export", "--db", str(store_path), "--format", "ips", "--site", "nowhere"]) == 2
    assert main(["export", "--db", str(store_path), "--format", "nft", "--nft-table", "bad name"]) == 2
    assert main(["export", "--db", str(store_path), "--format", "ips", "-o", str(tmp_path)]) == 2
