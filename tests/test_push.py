"""camsweep push: sensors' SQLite stores into one PostgreSQL store, idempotent and resumable."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from scanner.evidence import Identification, parse_record
from scanner.push import push
from scanner.store import Store

pytestmark = pytest.mark.pg

HIK = Identification(manufacturer="Hikvision", restricted=True, lists=("ndaa889",), confidence=0.9,
                     device_type="camera")
AXIS = Identification(manufacturer="Axis", restricted=False, confidence=0.8, device_type="camera")


def fill_sensor(path, site, n, *, scans=1, mac_base=0, with_nvr=True):
    """A sensor store with ``scans`` complete scans of ``n`` devices at ``site`` (private IPs that repeat
    across sites; half without MAC)."""
    with Store(path) as s:
        for _ in range(scans):
            sid = s.start_scan(["198.18.0.0/22"], site=site)
            for i in range(n):
                d = {"ip": f"198.18.{i // 250}.{i % 250 + 2}"}
                if i % 2:
                    d["mac"] = f"28:57:be:{mac_base:02x}:{i // 256:02x}:{i % 256:02x}"
                s.record_device(sid, parse_record(d), HIK if i % 3 == 0 else AXIS, site=site)
            if with_nvr:
                nvr = s.record_device(sid, parse_record({"ip": "198.18.9.9", "mac": f"28:57:be:{mac_base:02x}:ff:ff"}),
                                      HIK, site=site)
                ch = parse_record({"ip": "192.168.254.2", "discovery": [{"protocol": "nvr_channel",
                                                                         "fields": {"channel": "1"}}]})
                s.record_device(sid, ch, HIK, site=site, parent_id=nvr, channel="1")
            s.finish_scan(sid)


def snapshot(url):
    """What a central store holds, independent of ids: per scan uid its counts, and the device keys."""
    with Store(url) as c:
        scans = {}
        for sc in c.scans():
            ids = c.device_ids_in_scan(sc.id)
            assert len(ids) == sc.device_count  # every scan whole
            scans[c.scan_uid(sc.id)] = (sc.site, sc.status, sc.device_count, sc.restricted_count)
        devs = sorted((d["site"] or "", d["ip"] or "", d["mac"] or "", d["channel"] or "") for d in c.devices())
        return scans, devs, c.counts()


def test_push_is_idempotent_and_keeps_sites_apart(tmp_path, pg_url):
    for k, site in enumerate(("hq", "branch", "depot")):
        fill_sensor(tmp_path / f"{site}.db", site, 20, mac_base=k)
    for site in ("hq", "branch", "depot"):
        with Store(tmp_path / f"{site}.db") as local, Store(pg_url) as central:
            r = push(local, central, pg_url)
            assert len(r.pushed) == 1 and not r.failed
    first = snapshot(pg_url)
    assert len(first[1]) == 3 * 22  # the same private IPs at three sites are three devices each
    for site in ("hq", "branch", "depot"):
        with Store(tmp_path / f"{site}.db") as local, Store(pg_url) as central:
            r = push(local, central, pg_url)
            assert r.pushed == [] and r.already == []
    assert snapshot(pg_url) == first
    # the local marks lost: the central store still recognises each scan by its uid
    with Store(tmp_path / "hq.db") as local:
        local.db.execute("delete from pushes")
        with Store(pg_url) as central:
            r = push(local, central, pg_url)
        assert r.pushed == [] and len(r.already) == 1
    assert snapshot(pg_url) == first


def test_cli_push_and_org_report(tmp_path, pg_url):
    for k, site in enumerate(("hq", "branch")):
        fill_sensor(tmp_path / f"{site}.db", site, 10, mac_base=k)
        env = {**os.environ, "PGPASSWORD": "never-shown"}
        p = subprocess.run([sys.executable, "-m", "scanner.cli", "push", "--db", str(tmp_path / f"{site}.db"),
                            "--to", pg_url, "--format", "json"], capture_output=True, text=True, env=env,
                           timeout=120)
        assert p.returncode == 0, p.stderr
        assert len(json.loads(p.stdout)["pushed"]) == 1
        assert "never-shown" not in p.stdout + p.stderr
    p = subprocess.run([sys.executable, "-m", "scanner.cli", "report", "--org", "--db", pg_url, "-f", "json"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    rep = json.loads(p.stdout)
    assert rep["summary"]["devices"] == 2 * 12
    assert {s["site"]: s["devices"] for s in rep["summary"]["by_site"]} == {"hq": 12, "branch": 12}


def test_push_killed_part_way_then_rerun_gives_the_same_result(tmp_path, pg_server):
    """SIGKILL a push in the middle of its scans; the central store holds whole scans only; the next push
    completes it, to the same state as a push never interrupted."""
    local = tmp_path / "sensor.db"
    fill_sensor(local, "hq", 300, scans=6)
    clean = pg_server.create_database(f"clean{os.getpid()}")
    killed = pg_server.create_database(f"killed{os.getpid()}")
    try:
        with Store(local) as lo, Store(clean) as c:
            push(lo, c, clean)
        # a copy of the sensor store, so the marks of the clean push do not count
        with Store(local) as lo:
            lo.db.execute("delete from pushes")
        cmd = [sys.executable, "-m", "scanner.cli", "push", "--db", str(local), "--to", killed, "-v"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # kill it once the first scan is in (the second is then in its transaction)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if "pushed as central scan" in line or not line:
                break
        time.sleep(0.15)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
        part = snapshot(killed)  # asserts every scan in it is whole
        assert 1 <= len(part[0]) < 6
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        assert snapshot(killed) == snapshot(clean)
    finally:
        pg_server.drop_database(f"clean{os.getpid()}")
        pg_server.drop_database(f"killed{os.getpid()}")


def test_connection_cut_mid_push_is_completed_by_the_next(tmp_path, pg_url):
    import threading

    import psycopg

    local = tmp_path / "sensor.db"
    fill_sensor(local, "hq", 300, scans=4)
    Store(pg_url).close()  # the schema, so the cutter can count
    stop = threading.Event()

    def cutter():  # terminates the pusher's connection while it works
        with psycopg.connect(pg_url, autocommit=True) as c:
            while not stop.is_set():
                n = c.execute("select count(*) from scans").fetchone()[0]
                if n >= 1:
                    c.execute("select pg_terminate_backend(pid) from pg_stat_activity where "
                              "application_name = 'camsweep' and pid <> pg_backend_pid()")
                    return
                time.sleep(0.01)

    t = threading.Thread(target=cutter)
    t.start()
    try:
        with Store(local) as lo, Store(pg_url) as c:
            r = push(lo, c, pg_url)
    except Exception:
        r = None
    finally:
        stop.set()
        t.join()
    assert r is None or r.failed, "the push should have lost its connection"
    part = snapshot(pg_url)  # whole scans only
    assert 1 <= len(part[0]) < 4
    with Store(local) as lo, Store(pg_url) as c:
        r2 = push(lo, c, pg_url)
    assert not r2.failed
    scans, devs, counts = snapshot(pg_url)
    assert len(scans) == 4 and counts["identifications"] == 4 * 302


def test_unreachable_central_store_leaves_scans_waiting(tmp_path, pg_server):
    fill_sensor(tmp_path / "s.db", "hq", 3, with_nvr=False)
    bad = pg_server.url("no_such_database").replace("camsweep@", "camsweep:topsecret@")
    p = subprocess.run([sys.executable, "-m", "scanner.cli", "push", "--db", str(tmp_path / "s.db"), "--to", bad],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert "1 waiting for the next push" in p.stdout
    assert "topsecret" not in p.stdout + p.stderr and "***" in p.stdout
