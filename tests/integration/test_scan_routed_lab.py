"""The routed lab (`lab up --routed`) and scans across its router: MACs from the router's SNMP neighbour
table, from dnsmasq's lease file, or none (and the report says why); a wrong community, a dead router and
a malformed lease file each cost one warning and nothing else. Compared with the lab's ground truth and
with a scan of the flat lab of the same fleet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scanner.lab import manager
from scanner.lab import netns as nsmod
from scanner.lab.manager import compare_with_ground_truth
from tests.conftest import _term_as_exit, lab_test_prefix, run_test_lab, scanner_ns_cmd, skip_without_netns

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(900)]
SCAN_TIMEOUT = 300


@pytest.fixture(scope="module")
def routed_lab():
    skip_without_netns()
    _term_as_exit()
    yield from run_test_lab("rt", "routed lab", routed=True)


def camsweep(lab, *args: str, timeout: float = SCAN_TIMEOUT):
    return subprocess.run(scanner_ns_cmd(lab, *args), capture_output=True, text=True, timeout=timeout)


def scan(lab, tmp: Path, *extra: str, targets: list[str] | None = None) -> tuple[list[dict], str, float]:
    db = tmp / f"s{time.monotonic_ns()}.db"
    t0 = time.monotonic()
    p = camsweep(lab, "scan", *(targets or lab.cidrs), "--db", str(db), "--credentials", lab.credentials_file,
                 "--format", "json", *extra)
    took = time.monotonic() - t0
    assert p.returncode == 0, f"exit {p.returncode}: {p.stderr[-2000:]}"
    assert "Traceback" not in p.stderr
    return json.loads(p.stdout), p.stderr, took


def warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("camsweep: warning:")]


def check_against_truth(lab, devices: list[dict], *, macs: bool, all_flagged: bool = True) -> dict:
    truth = lab.ground_truth_rows()
    ip_to_id = {d["ip"]: d["device_id"] for d in devices if not d.get("parent_ip")}
    rows = [{**d, "parent_id": ip_to_id.get(d.get("parent_ip")) if d.get("parent_ip") else None} for d in devices]
    got = compare_with_ground_truth(rows, truth)
    assert got["missed"] == [], got
    assert got["false_alarms"] == 0, got
    if all_flagged:
        assert got["restricted_found"] == got["restricted_truth"], got
    by_ip = {d["ip"]: d for d in devices if not d.get("parent_ip")}
    if macs:
        wrong = [(t["ip"], t["mac"], by_ip[t["ip"]].get("mac")) for t in truth
                 if t.get("ip") and not t.get("parent_ip") and by_ip[t["ip"]].get("mac") != t["mac"]]
        assert wrong == [], wrong
    return got


def test_routed_lab_layout(routed_lab):
    st = routed_lab
    assert st.healthy and st.routed and len(st.cidrs) >= 2
    assert st.snmp and st.snmp["address"] == "198.19.0.1" and st.snmp["community"]
    leases = Path(st.dhcp_leases).read_text()
    truth = [t for t in st.ground_truth_rows() if t.get("ip") and not t.get("parent_ip")]
    for t in truth:  # every device leased its reserved address with its own MAC
        assert f" {t['mac']} {t['ip']} " in leases
        assert any(ipaddress_in(t["ip"], c) for c in st.cidrs)
    # the daemons run inside the router namespace, not in the root one
    router_ns = os.stat(f"/run/netns/{st.router_netns}").st_ino
    for pid in st.daemon_pids:
        assert os.stat(f"/proc/{pid}/ns/net").st_ino == router_ns
    # nothing of the lab is in the root namespace
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert st.prefix not in links and "198.18." not in subprocess.run(["ip", "-o", "addr"], capture_output=True,
                                                                       text=True).stdout
    # a device has an address from DHCP and a route to the lab's /15, never a default route
    d0 = truth[0]["netns"]
    routes = subprocess.run(["ip", "-n", d0, "route"], capture_output=True, text=True).stdout
    assert "default" not in routes and "198.18.0.0/15 via" in routes
    # the CLI's status carries the routed keys
    p = subprocess.run([sys.executable, "-m", "scanner.cli", "lab", "status", "--prefix", st.prefix, "--json"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["cidrs"] == st.cidrs and doc["snmp"]["address"] == "198.19.0.1" and doc["dhcp_leases"] == st.dhcp_leases


def ipaddress_in(ip: str, cidr: str) -> bool:
    import ipaddress

    return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr)


@pytest.fixture(scope="module")
def snmp_scan(routed_lab, tmp_path_factory):
    d = tmp_path_factory.mktemp("snmp")
    got = scan(routed_lab, d, "--snmp", routed_lab.snmp["address"], "--evidence-out", str(d / "evidence.jsonl"))
    return (*got, d / "evidence.jsonl")


def test_snmp_scan_finds_every_device_with_its_mac(routed_lab, snmp_scan):
    devices, stderr, took, _ev = snmp_scan
    got = check_against_truth(routed_lab, devices, macs=True)
    print(f"\nrouted scan with --snmp of {got['devices']} devices took {took:.1f} s: {json.dumps(got)}")
    assert warnings(stderr) == []
    d = next(d for d in devices if d.get("mac") and not d.get("parent_ip") and d["ip"] != "198.18.0.1")
    src = [e for e in d["evidence"] if e["rule"] == "mac/source"]
    assert src and "mac from SNMP neighbour table of 198.19.0.1 (bridge port " in src[0]["value"], d["evidence"]


def test_snmp_scan_names_makers_as_the_flat_lab_does(routed_lab, snmp_scan, lab, tmp_path):
    """The same fleet on the flat lab (ARP gives the MACs there): the same maker and verdict per MAC."""
    if (lab.devices, lab.seed) != (routed_lab.devices, routed_lab.seed):
        pytest.skip("the flat lab holds another fleet")
    from tests.integration.test_scan_lab import camsweep as flat_camsweep

    db = tmp_path / "flat.db"
    p = flat_camsweep(lab, "scan", lab.cidr, "--db", str(db), "--credentials", lab.credentials_file,
                      "--format", "json", "--quiet")
    assert p.returncode == 0, p.stderr[-2000:]
    flat = {d["mac"]: d for d in json.loads(p.stdout) if d.get("mac") and not d.get("parent_ip")}
    routed = {d["mac"]: d for d in snmp_scan[0] if d.get("mac") and not d.get("parent_ip")}
    macs = {t["mac"] for t in lab.ground_truth_rows() if t.get("ip") and not t.get("parent_ip")}
    diff = [(m, flat[m]["manufacturer"], flat[m]["restricted"], routed[m]["manufacturer"], routed[m]["restricted"])
            for m in macs if (flat[m]["manufacturer"], flat[m]["restricted"]) !=
            (routed[m]["manufacturer"], routed[m]["restricted"])]
    assert diff == []


def test_multicast_questions_went_unicast_to_the_routed_devices(routed_lab, snmp_scan):
    """No multicast crosses the router: WS-Discovery, SSDP, SADP, DHIP and mDNS answers came by unicast."""
    plan = json.loads(Path(routed_lab.plan).read_text())
    services = {d["ip"]: set(d.get("services") or ()) for d in plan["devices"]}
    seen: dict[str, set[str]] = {}
    for line in snmp_scan[3].read_text().splitlines():
        rec = json.loads(line)
        got = {k for k in ("wsd", "ssdp", "mdns") if rec.get(k)}
        got |= {d.get("protocol") for d in rec.get("discovery") or []} & {"sadp", "dhip"}
        seen[rec.get("ip")] = got
    for proto in ("wsd", "ssdp", "mdns", "sadp", "dhip"):
        offering = [ip for ip, svc in services.items() if proto in svc]
        if not offering:
            continue
        answered = [ip for ip in offering if proto in seen.get(ip, set())]
        assert len(answered) >= max(1, len(offering) * 3 // 4), (proto, len(answered), len(offering))


def test_dhcp_leases_scan_finds_every_device_with_its_mac(routed_lab, tmp_path):
    devices, stderr, took = scan(routed_lab, tmp_path, "--dhcp-leases", routed_lab.dhcp_leases)
    got = check_against_truth(routed_lab, devices, macs=True)
    print(f"\nrouted scan with --dhcp-leases: {took:.1f} s: {json.dumps(got)}")
    assert warnings(stderr) == []
    d = next(d for d in devices if d.get("mac") and not d.get("parent_ip"))
    assert any(e["rule"] == "mac/source" and "DHCP lease file dnsmasq.leases (dnsmasq)" in e["value"]
               for e in d["evidence"])


def test_without_a_mac_source_every_device_found_and_no_mac_explained(routed_lab, tmp_path):
    rj, rh = tmp_path / "r.json", tmp_path / "r.html"
    devices, stderr, _ = scan(routed_lab, tmp_path, "--report", f"json:{rj}", "--report", f"html:{rh}")
    # a device that hides its banners is named by its MAC's registrant alone: without a MAC it stays unknown
    # (never a false alarm), which is what the MAC sources are for
    got = check_against_truth(routed_lab, devices, macs=False, all_flagged=False)
    print(f"\nrouted scan without a MAC source: {json.dumps(got)}")
    truth_ips = {t["ip"] for t in routed_lab.ground_truth_rows() if t.get("ip") and not t.get("parent_ip")}
    n_none = 0
    for d in devices:
        if d["ip"] in truth_ips and d["mac"] is None:
            why = [e["value"] for e in d["evidence"] if e["rule"] == "mac/none"]
            assert why and "routed" in why[0] and "--snmp" in why[0], d["evidence"]
            n_none += 1
        elif d["ip"] in truth_ips:  # a MAC the device's own discovery answer carried (SADP, DHIP, ...)
            assert any(e["rule"] == "mac/source" and "reported by the device itself" in e["value"]
                       for e in d["evidence"]), d["evidence"]
    assert n_none >= len(truth_ips) // 2
    # the report lists them, each with its reason
    report = json.loads(rj.read_text())
    listed = {r["ip"]: r["reason"] for r in report["without_mac"]}
    assert {d["ip"] for d in devices if d["ip"] in truth_ips and d["mac"] is None} <= set(listed)
    assert all("routed" in why for ip, why in listed.items() if ip in truth_ips)
    html = rh.read_text()
    assert "Devices without a MAC address" in html and "give --snmp ROUTER or --dhcp-leases FILE" in html


def test_wrong_community_one_warning_scan_goes_on(routed_lab, tmp_path):
    creds = tmp_path / "wrong.ini"
    creds.write_text("[snmp]\ncommunity = not-the-community\n")
    creds.chmod(0o600)
    targets = [t["ip"] for t in routed_lab.ground_truth_rows() if t.get("ip") and not t.get("parent_ip")][:3]
    db = tmp_path / "w.db"
    p = camsweep(routed_lab, "scan", *targets, "--db", str(db), "--credentials", str(creds), "--no-snmp-public",
                 "--snmp", routed_lab.snmp["address"], "--format", "json", "--timeout", "1", "--retries", "0")
    assert p.returncode == 0, p.stderr[-2000:]
    w = warnings(p.stderr)
    assert len(w) == 1 and "198.19.0.1 answers SNMP but not to the 1 community tried" in w[0], p.stderr
    assert "not-the-community" not in p.stderr
    assert {d["ip"] for d in json.loads(p.stdout)} >= set(targets)


def test_dead_router_one_warning_scan_goes_on(routed_lab, tmp_path):
    targets = [t["ip"] for t in routed_lab.ground_truth_rows() if t.get("ip") and not t.get("parent_ip")][:3]
    p = camsweep(routed_lab, "scan", *targets, "--db", str(tmp_path / "d.db"), "--snmp", "198.19.0.77",
                 "--format", "json", "--timeout", "1", "--retries", "0")
    assert p.returncode == 0, p.stderr[-2000:]
    w = warnings(p.stderr)
    assert len(w) == 1 and "no answer from router 198.19.0.77" in w[0], p.stderr
    assert {d["ip"] for d in json.loads(p.stdout)} >= set(targets)


def test_malformed_lease_file_one_warning_scan_goes_on(routed_lab, tmp_path):
    bad = tmp_path / "leases"
    bad.write_text("this is { not a lease file\n\x1b[31mnor this\n")
    targets = [t["ip"] for t in routed_lab.ground_truth_rows() if t.get("ip") and not t.get("parent_ip")][:3]
    p = camsweep(routed_lab, "scan", *targets, "--db", str(tmp_path / "m.db"), "--dhcp-leases", str(bad),
                 "--format", "json")
    assert p.returncode == 0, p.stderr[-2000:]
    w = warnings(p.stderr)
    assert len(w) == 1 and "is malformed" in w[0] and "\x1b" not in p.stderr, p.stderr
    assert {d["ip"] for d in json.loads(p.stdout)} >= set(targets)


def test_snmp_v3_user_reads_the_table(routed_lab, tmp_path):
    u = routed_lab.snmp["v3_user"]
    creds = tmp_path / "v3.ini"
    creds.write_text(f"[snmp]\nsnmp_user = {u['name']}\nsnmp_auth_protocol = sha\nsnmp_auth_key = {u['auth_key']}\n"
                     f"snmp_priv_protocol = aes\nsnmp_priv_key = {u['priv_key']}\n")
    creds.chmod(0o600)
    truth = [t for t in routed_lab.ground_truth_rows() if t.get("ip") and not t.get("parent_ip")][:6]
    p = camsweep(routed_lab, "scan", *(t["ip"] for t in truth), "--db", str(tmp_path / "v3.db"),
                 "--credentials", str(creds), "--no-snmp-public", "--snmp", routed_lab.snmp["address"],
                 "--format", "json", "--probes", "http")
    assert p.returncode == 0, p.stderr[-2000:]
    assert warnings(p.stderr) == [], p.stderr
    by_ip = {d["ip"]: d for d in json.loads(p.stdout)}
    assert [by_ip[t["ip"]]["mac"] for t in truth] == [t["mac"] for t in truth]
    assert u["auth_key"] not in p.stderr + p.stdout


def test_down_stops_the_router_daemons_by_pid():
    if nsmod.netns_unavailable_reason():
        pytest.skip("no namespaces here")
    prefix = lab_test_prefix("rd")
    try:
        st = manager.up(3, 5, prefix=prefix, routed=True)
        assert st.healthy and len(st.daemon_pids) == 2
        pids = list(st.daemon_pids)
        cmdlines = [Path(f"/proc/{p}/cmdline").read_bytes() for p in pids]
        assert any(b"dnsmasq" in c for c in cmdlines) and any(b"snmpd" in c for c in cmdlines)
    finally:
        rep = manager.down(prefix)
    assert set(pids) <= set(rep.pids_stopped)
    assert not any(Path(f"/proc/{p}").exists() and b"camsweep-lab" in Path(f"/proc/{p}/cmdline").read_bytes()
                   for p in pids)
    assert nsmod.lab_namespaces(prefix) == []
    assert manager.status(prefix) is None


def test_saved_neighbour_table_gives_the_macs(routed_lab, snmp_scan, tmp_path):
    """`ip neigh` output saved on the router (after a scan, it knows every live device) -> --neighbours."""
    table = subprocess.run(["ip", "-n", routed_lab.router_netns, "-4", "neigh", "show"], capture_output=True,
                           text=True, timeout=30).stdout
    f = tmp_path / "router-neigh.txt"
    f.write_text(table)
    devices, stderr, _ = scan(routed_lab, tmp_path, "--neighbours", str(f), "--probes", "http")
    assert warnings(stderr) == []
    by_ip = {d["ip"]: d for d in devices if not d.get("parent_ip")}
    truth = [t for t in routed_lab.ground_truth_rows() if t.get("ip") and not t.get("parent_ip")]
    assert [by_ip[t["ip"]]["mac"] for t in truth] == [t["mac"] for t in truth]
    src = [e["value"] for e in by_ip[truth[0]["ip"]]["evidence"] if e["rule"] == "mac/source"]
    assert src and "neighbour table file router-neigh.txt (ip-neigh)" in src[0]
