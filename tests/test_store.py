"""The store: migrations, WAL, identity across scans, crash recovery, resume helpers."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from scanner.errors import StoreError
from scanner.evidence import EvidenceHit, Identification, parse_record
from scanner.store import MIGRATIONS, Store

HIK = Identification(manufacturer="Hikvision", brand="LTS", model="CMIP3042", restricted=True,
                     lists=("ndaa889",), confidence=0.9, device_type="camera",
                     evidence=(EvidenceHit("http.server/hik", "http.headers.server", "App-webs/"),))
AXIS = Identification(manufacturer="Axis", restricted=False, confidence=0.8, device_type="camera")


def rec(ip, mac=None, serial=None, **extra):
    d = {"ip": ip, **extra}
    if mac:
        d["mac"] = mac
    if serial:
        d["onvif"] = {"serial": serial, "manufacturer": "x"}
    return parse_record(d)


def test_schema_migrations_and_wal(tmp_path):
    db = tmp_path / "s.db"
    with Store(db) as s:
        assert s.schema_version() == MIGRATIONS[-1][0]
        assert s.migrate() == []  # applied once
        assert next(s.db.query("pragma journal_mode"))["journal_mode"] == "wal"
        assert {"scans", "devices", "observations", "identifications", "notes", "plans"} <= set(s.db.table_names())


def test_identity_by_mac_then_serial_then_ip(store_url):
    with Store(store_url) as s:
        a = s.start_scan(["198.18.0.0/24"])
        d1 = s.record_device(a, rec("198.18.0.2", "28:57:be:00:00:01"), HIK)
        d2 = s.record_device(a, rec("198.18.0.3", serial="SER123"), AXIS)
        d3 = s.record_device(a, rec("198.18.0.4"), Identification())
        s.finish_scan(a)
        b = s.start_scan(["198.18.0.0/24"])
        # new IP, same MAC; new IP, same serial; same IP, no MAC
        assert s.record_device(b, rec("198.18.0.20", "28-57-BE-00-00-01"), HIK) == d1
        assert s.record_device(b, rec("198.18.0.30", serial="SER123"), AXIS) == d2
        assert s.record_device(b, rec("198.18.0.4"), Identification()) == d3
        # a different MAC on an IP whose device has a MAC is a different device
        assert s.record_device(b, rec("198.18.0.20", "3c:ef:8c:00:00:09"), AXIS) not in (d1, d2, d3)
        s.finish_scan(b)
        assert s.scan(b).device_count == 4 and s.scan(b).restricted_count == 1
        hist = s.device_history(d1)
        assert [h["ip"] for h in hist] == ["198.18.0.2", "198.18.0.20"]
        dev = s.devices(b, restricted_only=True)
        assert len(dev) == 1 and dev[0]["brand"] == "LTS" and dev[0]["lists"] == ["ndaa889"]
        assert dev[0]["evidence"][0]["rule"] == "http.server/hik"


def test_record_again_in_same_scan_replaces_identification(store_url):
    with Store(store_url) as s:
        a = s.start_scan(["x"])
        d = s.record_device(a, rec("198.18.0.2", "28:57:be:00:00:01"), Identification())
        assert s.record_device(a, rec("198.18.0.2", "28:57:be:00:00:01"), HIK) == d
        (row,) = s.devices(a)
        assert row["manufacturer"] == "Hikvision"
        assert len(list(s.observations(a))) == 2


def test_children_keep_identity_by_parent_and_channel(store_url):
    with Store(store_url) as s:
        ids = []
        for _ in range(2):
            sc = s.start_scan(["198.18.0.9"])
            nvr = s.record_device(sc, rec("198.18.0.9", "28:57:be:00:00:09"), HIK)
            ch = parse_record({"ip": "192.168.254.2", "discovery": [{"protocol": "nvr_channel",
                                                                     "fields": {"channel": "1"}}]})
            ids.append(s.record_device(sc, ch, AXIS, parent_id=nvr, channel="1"))
            s.finish_scan(sc)
        assert ids[0] == ids[1]
        kid = next(d for d in s.devices(sc) if d["parent_id"])
        assert kid["channel"] == "1" and kid["parent_id"] == nvr
        assert s.identified_ips(sc) == {"198.18.0.9"}  # children are not hosts to rescan


def test_killed_scan_is_marked_incomplete_and_can_be_reopened(store_url):
    db = store_url
    code = f"""
import os, sys
from scanner.store import Store
from scanner.evidence import parse_record, Identification
s = Store({str(db)!r})
sid = s.start_scan(["198.18.0.0/24"], options={{"_pid": os.getpid()}})
s.record_device(sid, parse_record({{"ip": "198.18.0.2"}}), Identification(manufacturer="Dahua", restricted=True))
print(sid, flush=True)
os.kill(os.getpid(), 9)
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == -9
    sid = int(p.stdout.strip())
    with Store(db) as s:
        info = s.scan(sid)
        assert info.status == "incomplete" and info.device_count == 1 and info.restricted_count == 1
        assert "_pid" not in info.options
        assert s.identified_ips(sid) == {"198.18.0.2"}
        s.reopen_scan(sid, pid=os.getpid())
        assert s.scan(sid).status == "running"
    with Store(db) as s:  # our own pid is alive: still running
        assert s.scan(sid).status == "running"
        s.finish_scan(sid)
        assert s.scan(sid).status == "complete"


def test_running_scan_of_a_live_process_is_left_alone(store_url):
    with Store(store_url) as s:
        sid = s.start_scan(["x"], options={"_pid": os.getpid()})
    with Store(store_url) as s:
        assert s.scan(sid).status == "running"


def test_bad_store_paths_are_clear_errors(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open the store"):
        Store(junk)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError):
        Store(blocker / "sub" / "s.db")
    with Store(tmp_path / "ok.db") as s, pytest.raises(StoreError, match="no scan"):
        s.scan(99)


def test_options_are_stored_without_pid_and_readable_while_writing(tmp_path):
    db = tmp_path / "s.db"
    with Store(db) as s:
        sid = s.start_scan(["198.18.0.0/24"], options={"rate": 100, "_pid": os.getpid()})
        s.record_device(sid, rec("198.18.0.2"), HIK)
        # another connection reads while the writer holds the db open (WAL)
        conn = sqlite3.connect(db)
        n = conn.execute("select count(*) from identifications").fetchone()[0]
        conn.close()
        assert n == 1
        assert s.scan(sid).options == {"rate": 100}
        raw = next(s.db.query("select options from scans where id = ?", [sid]))["options"]
        assert json.loads(raw)["_pid"] == os.getpid()


def test_identity_is_serial_then_mac_then_site_and_ip(store_url):
    """Issue 13 item 4: a device without MAC is matched by IP only at its own site; serial decides first."""
    with Store(store_url) as s:
        hq = s.start_scan(["198.18.0.0/24"], site="hq")
        d_hq = s.record_device(hq, rec("198.18.0.4"), AXIS, site="hq")
        d_ser = s.record_device(hq, rec("198.18.0.5", "28:57:be:00:00:05", serial="S-1"), HIK, site="hq")
        s.finish_scan(hq)
        br = s.start_scan(["198.18.0.0/24"], site="branch")
        # the same private IP at another site, no MAC: another device
        d_br = s.record_device(br, rec("198.18.0.4"), HIK, site="branch")
        assert d_br != d_hq
        # a camera moved to the branch: same serial, new MAC and IP -> one device with a history
        assert s.record_device(br, rec("198.18.0.77", "28:57:be:00:00:99", serial="S-1"), HIK, site="branch") == d_ser
        # the old MAC with another serial is another device
        assert s.record_device(br, rec("198.18.0.78", "28:57:be:00:00:05", serial="S-2"), HIK, site="branch") \
            not in (d_ser, d_hq, d_br)
        s.finish_scan(br)
        # the earlier scan's rows are what it saw: site hq, its IPs, its maker
        hq_rows = {d["device_id"]: d for d in s.devices(hq)}
        assert hq_rows[d_hq]["site"] == "hq" and hq_rows[d_hq]["manufacturer"] == "Axis"
        assert hq_rows[d_ser]["site"] == "hq" and hq_rows[d_ser]["ip"] == "198.18.0.5"
        assert hq_rows[d_ser]["mac"] == "28:57:be:00:00:05"
        assert [h["scan_site"] for h in s.device_history(d_ser)] == ["hq", "branch"]
        latest = {d["device_id"]: d for d in s.devices()}
        assert latest[d_ser]["site"] == "branch" and latest[d_hq]["site"] == "hq"
        assert len(latest) == 4
        assert [x.site for x in s.latest_scans_by_site()] == ["hq", "branch"]
        org = s.devices(scan_ids=[hq, br])
        assert sorted(d["device_id"] for d in org) == sorted(latest)  # each device once
        # restricted first, then unknown, then the rest; the same order on both engines
        s.record_device(br, rec("198.18.0.99"), Identification(), site="branch")
        order = [d["restricted"] for d in s.devices()]
        assert order == sorted(order, key=lambda r: {True: 0, None: 1, False: 2}[r]) and None in order


def test_past_report_never_changes(store_url):
    from scanner.report import build_report_model

    with Store(store_url) as s:
        a = s.start_scan(["198.18.0.0/24"], site="hq")
        s.record_device(a, rec("198.18.0.4"), HIK, site="hq")
        s.record_device(a, rec("198.18.0.9", "28:57:be:00:00:09"), HIK, site="hq")
        s.finish_scan(a)
        before = build_report_model(s, a)
        b = s.start_scan(["198.18.0.0/24"], site="branch")
        s.record_device(b, rec("198.18.0.4"), AXIS, site="branch")
        s.record_device(b, rec("198.18.0.10", "28:57:be:00:00:09"), AXIS, site="branch")
        s.finish_scan(b)
        after = build_report_model(s, a)
        for m in (before, after):
            m.pop("generated_at")
        assert after == before


@pytest.mark.pg
def test_same_schema_on_both_engines(tmp_path, pg_url):
    with Store(tmp_path / "s.db") as lite, Store(pg_url) as pg:
        assert lite.schema_version() == pg.schema_version() == MIGRATIONS[-1][0]
        assert pg.migrate() == []
        tables = set(lite.db.table_names()) - {"sqlite_sequence"}
        assert tables == set(pg.db.table_names())
        for t in tables:
            assert lite.table_columns(t) == pg.table_columns(t), t


@pytest.mark.pg
def test_pg_url_is_masked_and_bad_urls_are_clear_errors(pg_server, monkeypatch):
    from scanner.pgstore import mask_url

    assert mask_url("postgresql://cam:s3cret@db.example:5432/org") == "postgresql://cam:***@db.example:5432/org"
    assert "s3cret" not in mask_url("postgresql:///org?host=/run&password=s3cret&user=cam")
    with pytest.raises(StoreError, match="cannot connect") as e:
        Store(pg_server.url("no_such_db").replace("camsweep@", "camsweep:s3cret@"))
    assert "s3cret" not in str(e.value) and "***" in str(e.value)


@pytest.mark.pg
def scan_rows(s):
    """(status, device_count, restricted_count, error) of every scan, oldest first."""
    return [(r["status"], r["device_count"], r["restricted_count"], r["error"])
            for r in s.db.query("select * from scans order by id")]


def test_two_writers_at_once_make_one_device(pg_url):
    """Sensors writing into one PostgreSQL at once: the same serial from two processes is one device."""
    code = f"""
import sys
from scanner.store import Store
from scanner.evidence import parse_record, Identification
s = Store({pg_url!r})
sid = s.start_scan(["x"], site=sys.argv[1])
for i in range(60):
    s.record_device(sid, parse_record({{"ip": f"198.18.1.{{i}}", "onvif": {{"serial": f"SER{{i}}"}}}}),
                    Identification(manufacturer="Dahua", restricted=True), site=sys.argv[1])
s.finish_scan(sid)
"""
    procs = [subprocess.Popen([sys.executable, "-c", code, site]) for site in ("a", "b", "c")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    with Store(pg_url) as s:
        assert len(s.devices()) == 60
        assert scan_rows(s) == [("complete", 60, 60, None)] * 3


@pytest.mark.parametrize("owner_pid", [None, 2 ** 22 + 13], ids=["no-pid", "owner-gone"])
def test_a_scan_finished_while_another_process_recovers_it_stays_finished(store_url, monkeypatch, owner_pid):
    """Another process opening the store lists a running scan as interrupted (no owner recorded, or its
    owner has just exited); the owner writes its last device and finishes the scan before that process
    writes. The scan stays complete with every device counted (it once became incomplete with one device
    short: the two-writers test above, on a loaded machine)."""
    opts = {"_pid": owner_pid} if owner_pid else {}
    with Store(store_url) as a, Store(store_url, recover=False) as b:
        sid = a.start_scan(["x"], options=opts, site="a")
        for i in range(3):
            a.record_device(sid, rec(f"198.18.1.{i}", serial=f"SER{i}"), HIK, site="a")
        write = b._write

        def owner_finishes_first():  # the race window: b has listed the scan, a finishes before b writes
            monkeypatch.setattr(b, "_write", write)
            a.record_device(sid, rec("198.18.1.3", serial="SER3"), HIK, site="a")
            a.finish_scan(sid)
            return write()

        monkeypatch.setattr(b, "_write", owner_finishes_first)
        n = b.mark_interrupted_scans()
        assert scan_rows(b) == [("complete", 4, 4, None)] and n == 0

        # the other order: b marks it first, the owner's own finish still has the last word
        late = a.start_scan(["x"], options=opts, site="a")
        a.record_device(late, rec("198.18.1.9", serial="SER9"), HIK, site="a")
        assert b.mark_interrupted_scans() == 1
        assert scan_rows(b)[1] == ("incomplete", 1, 1, "the scan stopped before it finished")
        a.record_device(late, rec("198.18.1.8", serial="SER8"), AXIS, site="a")
        a.finish_scan(late)
        assert scan_rows(b)[1] == ("complete", 2, 1, None)


def test_a_scan_exported_and_imported_reads_the_same(tmp_path, store_url):
    """Push's two halves on either engine: the central copy of a scan reports what the sensor's does."""
    from scanner.report import build_report_model

    with Store(tmp_path / "sensor.db") as lo:
        sid = lo.start_scan(["198.18.0.0/24"], site="depot")
        nvr = lo.record_device(sid, rec("198.18.0.9", "28:57:be:00:00:09"), HIK, site="depot")
        ch = parse_record({"ip": "192.168.254.2", "discovery": [{"protocol": "nvr_channel", "fields": {"channel": "1"}}]})
        lo.record_device(sid, ch, AXIS, site="depot", parent_id=nvr, channel="1")
        lo.record_device(sid, rec("198.18.0.4"), AXIS, site="depot")
        lo.record_device(sid, rec("198.18.0.5", serial="SER5"), HIK, site="depot")
        lo.finish_scan(sid)
        bundle = lo.export_scan(sid)
        local_model = build_report_model(lo, sid)
    with Store(store_url) as c:
        other = c.start_scan(["198.18.0.0/24"], site="hq")  # the same IP at another site stays apart
        hq4 = c.record_device(other, rec("198.18.0.4"), HIK, site="hq")
        c.finish_scan(other)
        cid, sent = c.import_scan(bundle)
        assert sent and c.import_scan(bundle) == (cid, False)
        central_model = build_report_model(c, cid)
        assert hq4 not in c.device_ids_in_scan(cid)
        kid = next(d for d in c.devices(cid) if d["parent_id"])
        assert kid["channel"] == "1" and kid["parent_ip"] == "198.18.0.9"

    def strip(m):
        m = json.loads(json.dumps(m))
        m.pop("generated_at")
        m["scan"].pop("id")
        for d in m["devices"]:
            for k in ("device_id", "parent_id", "first_seen", "last_seen"):
                d.pop(k)
        for k in ("plan", "relabels", "reviews", "unknowns"):
            m.pop(k)
        return m

    assert strip(central_model) == strip(local_model)
