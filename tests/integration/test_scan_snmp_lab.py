"""SNMP and DVRIP against the lab: the devices that run an agent give sysDescr/sysObjectID (the private-
community one only with the credentials file), ``--no-snmp-public`` asks nothing, and a community never
reaches the store, the evidence file or the log; the Xiongmai profile answers DVRIP."""

from __future__ import annotations

import configparser
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(600)]

PUBLIC_SNMP = {"hikvision_camera", "hikvision_nvr", "dahua_camera", "dahua_nvr", "axis_camera", "printer",
               "linux_server", "nas"}
PRIVATE_SNMP = {"hanwha_camera", "bosch_camera"}  # a private v2c community; SNMPv3 only


def _scan(lab, tmp: Path, name: str, targets: list[str], *extra: str) -> tuple[dict[str, dict], Path, str]:
    db, ev = tmp / f"{name}.db", tmp / f"{name}.jsonl"
    cmd = ["ip", "netns", "exec", str(lab.scanner_netns), sys.executable, "-m", "scanner.cli", "scan", *targets,
           "--db", str(db), "--evidence-out", str(ev), "--format", "json", "-v", *extra]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stderr[-2000:]
    recs = {}
    for line in ev.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            recs[r.get("ip")] = r
    return recs, db, p.stderr


def _snmp(rec: dict | None) -> dict | None:
    for d in (rec or {}).get("discovery") or []:
        if d.get("protocol") == "snmp":
            return d["fields"]
    return None


@pytest.fixture(scope="module")
def picks(lab):
    """One device of each SNMP profile, the Xiongmai one and a few others (ip -> profile)."""
    out: dict[str, str] = {}
    for row in lab.ground_truth_rows():
        if row.get("ip") and row["profile"] not in out.values():
            out[row["ip"]] = row["profile"]
    want = PUBLIC_SNMP | PRIVATE_SNMP | {"xiongmai_camera", "uniview_camera", "hostile_garbage"}
    got = {ip: p for ip, p in out.items() if p in want}
    assert set(got.values()) == want, want - set(got.values())
    return got


def test_snmp_public_and_private_and_dvrip(lab, picks, tmp_path):
    recs, db, log = _scan(lab, tmp_path, "public", sorted(picks))
    for ip, profile in picks.items():
        fields = _snmp(recs.get(ip))
        if profile in PUBLIC_SNMP:
            assert fields and fields.get("sysDescr") and fields.get("sysObjectID", "").startswith("1.3.6.1.4.1."), \
                (profile, recs.get(ip))
        elif profile in PRIVATE_SNMP:  # no GET answer to "public"; the v3 engine discovery still answers
            assert fields and "sysObjectID" not in fields and "sysDescr" not in fields, (profile, fields)
            assert fields["snmpEngineID"]
        else:
            assert fields is None, (profile, fields)  # no agent, or garbage
    xm = next(ip for ip, p in picks.items() if p == "xiongmai_camera")
    assert any(d["protocol"] == "dvrip" for d in recs[xm]["discovery"])
    from scanner.store import Store

    st = Store(str(db))
    rows = {r["ip"]: r for r in st.devices(st.latest_scan_id())}
    assert rows[xm]["manufacturer"] == "Xiongmai"
    for ip, profile in picks.items():  # SNMP adds no wrong maker
        truth = next(t for t in lab.ground_truth_rows() if t.get("ip") == ip)
        if truth.get("manufacturer") and rows[ip].get("manufacturer"):
            assert rows[ip]["manufacturer"] == truth["manufacturer"], (profile, rows[ip])

    # with the lab's credentials file the Hanwha agent answers its own community; that community is
    # nowhere in the store, the evidence or the log
    cred = configparser.ConfigParser(interpolation=None)
    cred.read(lab.credentials_file)
    secrets = [cred[s]["community"] for s in cred.sections() if cred[s].get("community")]
    assert secrets
    recs2, db2, log2 = _scan(lab, tmp_path, "creds", sorted(picks), "--credentials", lab.credentials_file)
    hanwha = next(ip for ip, p in picks.items() if p == "hanwha_camera")
    assert (_snmp(recs2.get(hanwha)) or {}).get("sysObjectID", "").startswith("1.3.6.1.4.1.36849")
    bosch = next(ip for ip, p in picks.items() if p == "bosch_camera")  # SNMPv3 (USM, SHA + AES)
    assert (_snmp(recs2.get(bosch)) or {}).get("sysObjectID", "").startswith("1.3.6.1.4.1.3967")
    keys = [cred[s][k] for s in cred.sections() for k in ("snmp_auth_key", "snmp_priv_key") if cred[s].get(k)]
    assert keys
    for blob in (db2.read_bytes(), (tmp_path / "creds.jsonl").read_bytes(), log2.encode()):
        for s in secrets + keys:
            assert s.encode() not in blob


def test_no_snmp_public_asks_nothing(lab, picks, tmp_path):
    recs, db, _ = _scan(lab, tmp_path, "nopublic", sorted(picks), "--no-snmp-public")
    assert all(_snmp(r) is None for r in recs.values())
    opts = json.loads(sqlite3.connect(db).execute("select options from scans").fetchone()[0])
    assert opts["snmp_public"] is False  # recorded, so --resume keeps it
