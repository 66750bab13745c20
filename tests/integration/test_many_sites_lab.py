"""Many sites, one PostgreSQL (issue 15): three labs side by side (the same private range in each, other
prefixes and sites), three sensors scanning them at the same time, straight into the central store and
into their own stores then pushed. The org-wide JSON report's counts equal the sum of the three ground
truths; a second push changes nothing; a push killed part-way and run again gives the same result."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from scanner.lab import manager
from tests.conftest import lab_test_prefix, reap_stale_test_labs, skip_without_netns
from tests.test_push import snapshot

pytestmark = [pytest.mark.lab, pytest.mark.pg, pytest.mark.slow, pytest.mark.timeout(900)]

SITES = {"a": 1, "b": 3, "c": 14}  # seeds whose fleets share no MAC or serial (distinct real devices)
DEVICES = 20


@pytest.fixture(scope="module")
def labs():
    skip_without_netns()
    reap_stale_test_labs()
    up = {}
    try:
        for name, seed in SITES.items():
            prefix = lab_test_prefix("s" + name)
            up[name] = manager.up(DEVICES, seed, prefix=prefix)
        yield up
    finally:
        for name in SITES:
            manager.down(lab_test_prefix("s" + name))


def truth(labs) -> dict[str, dict[str, int]]:
    out = {}
    for name, st in labs.items():
        rows = st.ground_truth_rows()
        out[f"site-{name}"] = {"devices": len(rows), "restricted": sum(r["restricted"] is True for r in rows)}
    return out


def camsweep(*args: str, netns: str | None = None, timeout: float = 300) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "scanner.cli", *args]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def scan_all_at_once(labs, db_for) -> None:
    procs = {n: camsweep("scan", st.cidr, "--site", f"site-{n}", "--db", db_for(n), "--credentials",
                         st.credentials_file, "--quiet", "--format", "json", netns=str(st.scanner_netns))
             for n, st in labs.items()}
    for n, p in procs.items():
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, f"sensor {n}: exit {p.returncode}: {err[-1500:]}"


def org_report(url) -> dict:
    p = subprocess.run([sys.executable, "-m", "scanner.cli", "report", "--org", "--db", url, "-f", "json"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def check_org(rep, labs) -> None:
    t = truth(labs)
    s = rep["summary"]
    assert s["devices"] == sum(v["devices"] for v in t.values())
    assert s["restricted"] == sum(v["restricted"] for v in t.values())
    got = {x["site"]: {"devices": x["devices"], "restricted": x["restricted"]} for x in s["by_site"]}
    assert got == t
    assert len({d["device_id"] for d in rep["devices"]}) == len(rep["devices"])


def test_three_sensors_scan_at_once_into_one_postgresql(labs, pg_url):
    scan_all_at_once(labs, lambda n: pg_url)
    check_org(org_report(pg_url), labs)


def test_three_sensors_push_idempotent_and_killed_push_completes(labs, pg_server, tmp_path):
    dbs = {n: str(tmp_path / f"sensor-{n}.db") for n in labs}
    for _ in range(2):  # two daily scans: the second finds the same devices again
        scan_all_at_once(labs, dbs.__getitem__)
    central = pg_server.create_database("central_lab")
    killed = pg_server.create_database("killed_lab")
    try:
        pushes = [camsweep("push", "--db", dbs[n], "--to", central, "--format", "json") for n in labs]
        for p in pushes:
            out, err = p.communicate(timeout=300)
            assert p.returncode == 0, err
            assert len(json.loads(out)["pushed"]) == 2
        first = snapshot(central)
        rep = org_report(central)
        check_org(rep, labs)
        assert first[2]["devices"] == rep["summary"]["devices"]  # the second scans found the same devices
        # a second push changes nothing
        for n in labs:
            p = subprocess.run([sys.executable, "-m", "scanner.cli", "push", "--db", dbs[n], "--to", central,
                                "--format", "json"], capture_output=True, text=True, timeout=300)
            assert p.returncode == 0 and json.loads(p.stdout)["pushed"] == []
        assert snapshot(central) == first
        # pushes to another central store, SIGKILLed part-way (after their first scan), then run again
        procs = [camsweep("push", "--db", dbs[n], "--to", killed, "-v") for n in labs]
        for p in procs:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                line = p.stderr.readline()
                if "pushed as central scan" in line or not line:
                    break
            p.send_signal(signal.SIGKILL)
        for p in procs:
            p.communicate(timeout=60)
        part = snapshot(killed)  # whole scans only
        assert len(part[0]) < 6
        for n in labs:
            p = subprocess.run([sys.executable, "-m", "scanner.cli", "push", "--db", dbs[n], "--to", killed],
                               capture_output=True, text=True, timeout=300)
            assert p.returncode == 0, p.stderr
        assert snapshot(killed)[0] == first[0]
        assert snapshot(killed)[1:] == first[1:]
        check_org(org_report(killed), labs)
    finally:
        pg_server.drop_database("central_lab")
        pg_server.drop_database("killed_lab")
