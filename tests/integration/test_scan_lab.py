"""`camsweep scan` against the simulated fleet, run from the lab's scanner namespace, compared with the
lab's ground truth; and a scan killed with SIGKILL half-way, then resumed."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from scanner.lab.manager import compare_with_ground_truth
from tests.conftest import scanner_ns_cmd, sigkill_scan_when, store_count

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(600)]

CAMERA_TYPES = {"camera", "ptz", "thermal", "doorbell", "nvr", "dvr", "encoder", "intercom"}
ORDINARY_TYPES = {"host", "server", "printer", "nas", "router"}
SCAN_TIMEOUT = 240


def camsweep(lab, *args: str, timeout: float = SCAN_TIMEOUT, **kw):
    return subprocess.run(scanner_ns_cmd(lab, *args), capture_output=True, text=True, timeout=timeout, **kw)


@pytest.fixture(scope="module")
def lab_scan(lab, tmp_path_factory):
    """One full scan with credentials: (devices from --format json, the store path, seconds it took)."""
    db = tmp_path_factory.mktemp("scan") / "scan.db"
    ev = db.with_name("evidence.jsonl")
    t0 = time.monotonic()
    p = camsweep(lab, "scan", lab.cidr, "--db", str(db), "--credentials", lab.credentials_file,
                 "--format", "json", "--evidence-out", str(ev), "--quiet")
    took = time.monotonic() - t0
    assert p.returncode == 0, f"exit {p.returncode}: {p.stderr[-2000:]}"
    assert "Traceback" not in p.stderr
    devices = json.loads(p.stdout)
    return devices, db, ev, took


def _truth(lab) -> list[dict]:
    return lab.ground_truth_rows()


def test_every_lab_device_found_and_restricted_ones_flagged_right(lab, lab_scan):
    devices, db, _, took = lab_scan
    truth = _truth(lab)
    # compare_with_ground_truth keys channels by the NVR's device id: give it store-like rows
    ip_to_id = {d["ip"]: d["device_id"] for d in devices if not d.get("parent_ip")}
    rows = [{**d, "parent_id": ip_to_id.get(d.get("parent_ip")) if d.get("parent_ip") else None} for d in devices]
    got = compare_with_ground_truth(rows, truth)
    print(f"\nlab scan of {len(truth)} devices took {took:.1f} s: {json.dumps(got)}")
    by_ip = {d["ip"]: d for d in devices if not d.get("parent_ip")}
    by_chan = {(d["parent_ip"], str(d["channel"])): d for d in devices if d.get("parent_ip")}

    def why(t: dict) -> str:
        d = by_chan.get((t["parent_ip"], str(t["channel"]))) if t.get("parent_ip") else by_ip.get(t["ip"])
        rules = [e.get("rule") for e in (d or {}).get("evidence", [])]
        return (f"{t.get('ip') or t.get('parent_ip')}#{t.get('channel') or ''} {t['profile']}: truth "
                f"{t.get('manufacturer')}/{t.get('restricted')}, got {d and d['manufacturer']}/"
                f"{d and d['restricted']} by {rules}")

    alarms = [why(t) for t in truth if t.get("restricted") is not True and (
        (by_chan.get((t["parent_ip"], str(t["channel"]))) if t.get("parent_ip") else by_ip.get(t["ip"])) or {}
    ).get("restricted") is True]
    assert got["missed"] == [], got
    assert got["false_alarms"] == 0, alarms
    assert got["restricted_found"] == got["restricted_truth"], got

    wrong = []
    for t in truth:
        d = by_chan.get((t["parent_ip"], str(t["channel"]))) if t.get("parent_ip") else by_ip.get(t["ip"])
        assert d is not None
        if t.get("restricted") is True:
            if d["restricted"] is not True or (d["manufacturer"] or "").lower() != t["manufacturer"].lower():
                wrong.append((t.get("ip") or t.get("parent_ip"), t["profile"], t["manufacturer"], d["manufacturer"]))
        if t.get("restricted") is False and d["restricted"] is True:
            wrong.append((t.get("ip"), t["profile"], "not restricted", d["manufacturer"]))
        if t.get("device_type") in ORDINARY_TYPES and d.get("device_type") in CAMERA_TYPES:
            wrong.append((t.get("ip"), t["profile"], t["device_type"], d["device_type"]))
    assert wrong == []
    # the output carries the identification fields of evidence-format.md for every device
    for d in devices:
        for key in ("ip", "mac", "manufacturer", "brand", "model", "restricted", "lists", "confidence", "evidence"):
            assert key in d


def test_cameras_behind_nvrs_are_listed_under_them(lab, lab_scan):
    devices, *_ = lab_scan
    truth = _truth(lab)
    kids = [t for t in truth if t.get("parent_ip")]
    if not kids:
        pytest.skip("this fleet has no recorder with cameras on its PoE ports")
    listed = {(d["parent_ip"], str(d["channel"])) for d in devices if d.get("parent_ip")}
    assert {(t["parent_ip"], str(t["channel"])) for t in kids} <= listed
    nvr_ips = {t["parent_ip"] for t in kids}
    assert all(d["parent_ip"] in nvr_ips for d in devices if d.get("parent_ip"))


def test_hostile_devices_cost_no_crash_and_are_still_found(lab, lab_scan):
    devices, db, ev, took = lab_scan
    hostile = [t for t in _truth(lab) if t.get("hostile")]
    found = {d["ip"] for d in devices}
    assert all(t["ip"] in found for t in hostile if t.get("ip"))
    assert took < SCAN_TIMEOUT
    # the store and the evidence export are readable; no credential is in either
    creds = Path(lab.credentials_file).read_text()
    passwords = {line.split("=", 1)[1].strip() for line in creds.splitlines() if line.startswith("password")}
    dump = "\n".join(sqlite3.connect(db).iterdump())
    text = ev.read_text()
    assert len(text.splitlines()) == len(devices)
    for pw in passwords:
        assert pw not in dump and pw not in text


def test_without_credentials_no_channels_and_no_guessing(lab, tmp_path):
    db = tmp_path / "nocreds.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMSWEEP_")}
    p = camsweep(lab, "scan", lab.cidr, "--db", str(db), "--format", "json", "--quiet", env=env)
    assert p.returncode == 0, p.stderr[-2000:]
    devices = json.loads(p.stdout)
    assert not any(d.get("parent_ip") for d in devices)  # channel lists need the credentials given


def test_fail_on_restricted_exit_codes(lab, tmp_path):
    truth = _truth(lab)
    restricted_ip = next(t["ip"] for t in truth if t.get("restricted") and t.get("ip") and not t.get("hostile"))
    clean_ip = next((t["ip"] for t in truth if t.get("restricted") is False and t.get("ip")
                     and not t.get("hostile")), None)
    db = str(tmp_path / "f.db")
    p = camsweep(lab, "scan", restricted_ip, "--db", db, "--fail-on", "restricted", "--quiet", "--format", "csv")
    assert p.returncode == 1, p.stderr
    assert restricted_ip in p.stdout
    if clean_ip:
        p = camsweep(lab, "scan", clean_ip, "--db", db, "--fail-on", "restricted", "--quiet")
        assert p.returncode == 0, p.stderr
    p = camsweep(lab, "scan", "--db", db)
    assert p.returncode == 2 and "no targets" in p.stderr


def test_sigkill_half_way_keeps_a_readable_store_and_resume_finishes(lab, tmp_path):
    db = tmp_path / "killed.db"
    n_network = sum(1 for t in _truth(lab) if t.get("ip"))
    seen = 0

    def half_way() -> bool:
        nonlocal seen
        n = store_count(db, "select count(*) from identifications")
        seen = seen if n is None else n
        return seen >= max(3, n_network // 4)

    sigkill_scan_when(scanner_ns_cmd(lab, "scan", lab.cidr, "--db", str(db), "--concurrency", "2", "--quiet",
                                     "--format", "json"),
                      db, half_way, within=120, poll=0.2, what="it could be killed half-way")
    from scanner.store import Store

    with Store(db) as s:
        (info,) = s.scans()
        assert info.status == "incomplete"
        kept = s.devices(info.id)
        assert seen <= len(kept) < n_network
        assert all(d["ip"] for d in kept)
    p = camsweep(lab, "scan", "--resume", "--db", str(db), "--quiet", "--format", "json")
    assert p.returncode == 0, p.stderr[-2000:]
    with Store(db) as s:
        (info,) = s.scans()
        assert info.status == "complete"
        ips = {d["ip"] for d in s.devices(info.id) if not d["parent_id"]}
    assert ips >= {t["ip"] for t in _truth(lab) if t.get("ip")}
