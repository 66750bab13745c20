"""Issue 13, item 2, in the lab: a credentialed scan SIGKILLed part-way, at several points, then
``scan --resume``, gives what an uninterrupted scan of the same lab gives, cameras behind recorders
included.

Kill points, read from the store while the scan runs: the first identification written, the first
recorder written, and about half the devices. Each killed scan is resumed (with the same credentials)
and compared, device by device (address or recorder and channel, maker, type, restricted), with one
uninterrupted scan.
"""

from __future__ import annotations

import subprocess

import pytest

from scanner.lab import netns as nsmod
from scanner.store import Store
from tests.conftest import scanner_ns_cmd, sigkill_scan_when, store_count

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(900)]
if nsmod.netns_unavailable_reason():
    pytestmark.append(pytest.mark.skip(reason="needs root and network namespaces"))


def _summary(db) -> set[tuple]:
    with Store(db) as s:
        (info,) = s.scans()
        assert info.status == "complete", info
        rows = s.devices(info.id)
    ip_of = {r["device_id"]: r["ip"] for r in rows}
    return {(ip_of[r["parent_id"]] if r["parent_id"] else r["ip"], r["channel"], r["manufacturer"],
             r["device_type"], r["restricted"]) for r in rows}


KILL_POINTS = {
    "first device": "select count(*) >= 1 from identifications",
    "first recorder": "select count(*) >= 1 from identifications where device_type in ('nvr', 'dvr')",
    "half the devices": "select count(*) >= {half} from identifications where parent_id is null",
}


@pytest.fixture(scope="module")
def uninterrupted(lab, tmp_path_factory):
    db = tmp_path_factory.mktemp("full") / "full.db"
    p = subprocess.run(scanner_ns_cmd(lab, "scan", lab.cidr, "--db", str(db), "--credentials", lab.credentials_file,
                                      "--quiet", "--format", "json"), capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    return _summary(db)


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_sigkill_then_resume_equals_an_uninterrupted_scan(lab, uninterrupted, tmp_path, point):
    truth = lab.ground_truth_rows()
    if point == "first recorder" and not any(t.get("parent_ip") for t in truth):
        pytest.skip("this fleet has no recorder with channels")
    half = sum(1 for t in truth if t.get("ip")) // 2
    sql = KILL_POINTS[point].format(half=half)
    db = tmp_path / "killed.db"
    sigkill_scan_when(scanner_ns_cmd(lab, "scan", lab.cidr, "--db", str(db), "--credentials", lab.credentials_file,
                                     "--quiet", "--format", "json"),
                      db, lambda: bool(store_count(db, sql)), within=240, poll=0.02,
                      what=f"the kill point {point!r}")
    with Store(db) as s:
        (info,) = s.scans()
        assert info.status == "incomplete"
        partial = len(s.devices(info.id))
    p = subprocess.run(scanner_ns_cmd(lab, "scan", "--resume", "--db", str(db), "--credentials",
                                      lab.credentials_file, "--quiet", "--format", "json"),
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    got = _summary(db)
    print(f"\nkilled at {point!r} with {partial} devices stored; resumed: {len(got)}, uninterrupted: "
          f"{len(uninterrupted)}")
    assert got == uninterrupted, (sorted(uninterrupted - got)[:10], sorted(got - uninterrupted)[:10])
    kids = {(t["parent_ip"], str(t["channel"])) for t in truth if t.get("parent_ip")}
    assert kids <= {(ip, ch) for ip, ch, *_ in got if ch is not None}
