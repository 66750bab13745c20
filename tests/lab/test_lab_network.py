"""The lab's network, end to end (root + network namespaces; skipped with the reason otherwise).

- `camsweep lab up --devices 250` is up in under 5 s; `lab status` lists the 250 devices; from the scanner
  namespace arp-scan and `nmap -n -sn` find all 250 with the profiles' MACs, curl and an RTSP OPTIONS get
  the profiles' banners; `lab down` leaves the namespaces as they were.
- `down` cleans up after a crash; parallel labs share the root namespace's sysctls without fighting.
(The no-leak capture is in test_lab_noleak.py.)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import defusedxml.ElementTree as ET
import pytest

from scanner.lab import manager
from scanner.lab import netns as nsmod
from tests.conftest import lab_test_prefix, reap_stale_test_labs

pytestmark = [pytest.mark.lab, pytest.mark.timeout(240)]

_reason = nsmod.netns_unavailable_reason()
if _reason:
    pytestmark.append(pytest.mark.skip(reason=f"needs network namespaces: {_reason}"))

ARP_LINE = re.compile(r"^(\d+\.\d+\.\d+\.\d+)\s+([0-9a-f]{2}(?::[0-9a-f]{2}){5})\b", re.M)


def camsweep(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scanner.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def sysctls() -> dict[str, int]:
    return {k: nsmod._read_sysctl(k) for k in nsmod.RAISED_SYSCTLS}


def in_ns(ns: str, *cmd: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, timeout=timeout)


def _first(rows: list[dict], profile: str) -> dict:
    for r in rows:
        if r["profile"] == profile and r["ip"] and not r["hostile"]:
            return r
    raise AssertionError(f"no {profile} in the fleet")


def expected_rtsp_server(plan_path: str, ip: str) -> str | None:
    """The RTSP Server header the device's profile gives it (from the responder, not written down twice)."""
    from scanner.lab.profiles import DeviceSpec
    from scanner.lab.responders.base import Device
    from scanner.lab.responders.rtsp import server_name

    entry = next(d for d in json.loads(Path(plan_path).read_text())["devices"] if d["ip"] == ip)
    return server_name(Device(spec=DeviceSpec.from_dict(entry), ip=ip, username="u", password="p"))


def test_lab_of_250_up_scanned_and_down() -> None:
    reap_stale_test_labs()
    prefix = lab_test_prefix("a")
    before_ns = set(nsmod.list_netns())
    before_sys, holders_before = sysctls(), nsmod.sysctl_holders(manager.state_root())
    t0 = time.monotonic()
    proc = camsweep("lab", "up", "--devices", "250", "--seed", "7", "--prefix", prefix)
    took = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    try:
        proc = camsweep("lab", "status", "--json", "--prefix", prefix)
        assert proc.returncode == 0, proc.stderr
        status = json.loads(proc.stdout)
        own = status["timings"]["up_s"]  # namespaces + links + services, without the CLI's start-up
        # the figure against its 5 s target is bench/lab.py's; here it is only shown
        print(f"lab up --devices 250: {took:.2f} s (lab's own {own:.2f} s)")
        assert status["devices"] == 250 and status["cidr"] == "198.18.0.0/24" and status["mode"] == "netns"
        assert status["scanner_netns"] == f"{prefix}-scan" and status["interface"] == "eth0"
        assert status["service_alive"] and status["namespaces"] == 252
        assert Path(status["credentials_file"]).stat().st_mode & 0o077 == 0
        truth = manager.read_ground_truth(status["ground_truth"])
        hosts = [r for r in truth if r["ip"]]
        assert len(hosts) == 250 and len({r["mac"] for r in hosts}) == 250

        proc = camsweep("lab", "status", "--prefix", prefix)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        listed = {m.group(1): m.group(2) for m in ARP_LINE.finditer(proc.stdout)}
        assert listed == {r["ip"]: r["mac"] for r in hosts}, "lab status lists every device with its MAC"

        ns = status["scanner_netns"]
        want = {r["ip"]: r["mac"] for r in hosts}
        for quiet in (ns, status["bridge_netns"], hosts[0]["netns"], hosts[-1]["netns"]):
            v6 = subprocess.run(["ip", "-n", quiet, "-6", "-o", "addr"], capture_output=True, text=True).stdout
            assert not [x for x in v6.splitlines() if " lo " not in x], f"IPv6 is not quiet in {quiet}: {v6}"
        if shutil.which("arp-scan"):
            out = in_ns(ns, "timeout", "60", "arp-scan", "-I", "eth0", "--retry=3", "198.18.0.0/24").stdout
            seen = {m.group(1): m.group(2) for m in ARP_LINE.finditer(out)}
            print(f"arp-scan found {len(seen)} of 250")
            assert seen == want, f"arp-scan: {len(seen)} found, {len(set(want) - set(seen))} missing"
        else:
            warnings.warn("arp-scan is not installed: the arp-scan part of the lab test was skipped", stacklevel=1)
        if shutil.which("nmap"):
            in_ns(ns, "ip", "neigh", "flush", "all")
            out = in_ns(ns, "timeout", "120", "nmap", "-n", "-sn", "-oX", "-", "198.18.0.0/24",
                        timeout=130).stdout
            seen = {}
            for host in ET.fromstring(out).iter("host"):
                addrs = {a.get("addrtype"): a.get("addr") for a in host.iter("address")}
                if addrs.get("ipv4") and addrs.get("mac"):
                    seen[addrs["ipv4"]] = addrs["mac"].lower()
            print(f"nmap -sn found {len(seen)} of 250")
            assert seen == want, f"nmap -sn: {len(seen)} found, {len(set(want) - set(seen))} missing"
        else:
            warnings.warn("nmap is not installed: the nmap -sn part of the lab test was skipped", stacklevel=1)

        hik, dahua = _first(truth, "hikvision_camera"), _first(truth, "dahua_camera")
        out = in_ns(ns, "curl", "-s", "-D", "-", "-o", "/dev/null", "--max-time", "10", f"http://{hik['ip']}/").stdout
        assert re.search(r"^Server: App-webs/$", out, re.M), out[:500]
        out = in_ns(ns, "curl", "-s", "-i", "--max-time", "10", f"rtsp://{dahua['ip']}/").stdout
        banner = expected_rtsp_server(status["plan"], dahua["ip"])
        assert banner and "Rtsp Server" in banner
        assert out.startswith("RTSP/1.0 200 ") and re.search(rf"^Server: {re.escape(banner)}$", out, re.M), out[:500]
    finally:
        t0 = time.monotonic()
        proc = camsweep("lab", "down", "--prefix", prefix)
        print(f"lab down: {time.monotonic() - t0:.2f} s: {proc.stdout.strip()}")
    assert proc.returncode == 0, proc.stderr
    assert nsmod.lab_namespaces(prefix) == []
    # other labs (other engineers, other sessions) come and go meanwhile: a namespace that vanished must
    # belong to a lab that went down itself (its state dir is gone too), never to one still up
    vanished = before_ns - set(nsmod.list_netns())
    still_up = {p for p in manager.lab_prefixes() if manager.status(p) and manager.status(p).phase == "up"}
    assert not {n for n in vanished if n.rsplit("-", 1)[0] in still_up}, "down removed only its own namespaces"
    assert not [n for n in set(nsmod.list_netns()) - before_ns if n.startswith(prefix + "-")]
    assert not manager.state_dir(prefix).exists()
    if not holders_before and not nsmod.sysctl_holders(manager.state_root()):
        assert sysctls() == before_sys, "the root namespace's sysctls are back"


def test_down_cleans_up_after_a_crash() -> None:
    prefix = lab_test_prefix("c")
    st = manager.up(6, 1, prefix=prefix)
    assert st.healthy and st.service_pid
    pid = st.service_pid
    os.kill(pid, signal.SIGKILL)  # the service dies, then the state is lost too
    shutil.rmtree(st.state_dir)
    assert len(nsmod.lab_namespaces(prefix)) == 8
    subprocess.run(["ip", "netns", "add", f"{prefix}-d99"], check=True)  # a half-built extra
    assert manager.status(prefix).phase == "leftover"
    proc = camsweep("lab", "down", "--prefix", prefix)
    assert proc.returncode == 0, proc.stderr
    assert "removed 9 namespaces" in proc.stdout
    assert nsmod.lab_namespaces(prefix) == [] and manager.status(prefix) is None
    assert prefix not in nsmod.sysctl_holders(manager.state_root())


def test_up_over_leftovers_and_twice() -> None:
    prefix = lab_test_prefix("t")
    subprocess.run(["ip", "netns", "add", f"{prefix}-br"], check=True)  # leftover of a crash
    try:
        st = manager.up(3, 0, prefix=prefix)
        assert st.healthy and st.namespaces == 5
        with pytest.raises(manager.LabError, match="already up"):
            manager.up(3, 0, prefix=prefix)
        assert manager.status(prefix).healthy, "a refused second `up` leaves the first lab alone"
    finally:
        manager.down(prefix)
    assert nsmod.lab_namespaces(prefix) == []


def test_a_failing_service_leaves_nothing() -> None:
    prefix = lab_test_prefix("f")
    with pytest.raises(manager.LabError, match="exited"):
        manager.up(3, 0, prefix=prefix, service_argv=[sys.executable, "-c", "import sys; sys.exit(3)"])
    assert nsmod.lab_namespaces(prefix) == [] and not manager.state_dir(prefix).exists()
    assert prefix not in nsmod.sysctl_holders(manager.state_root())


def test_parallel_labs_share_sysctls() -> None:
    a, b = lab_test_prefix("p"), lab_test_prefix("q")
    others = [p for p in nsmod.sysctl_holders(manager.state_root()) if p not in (a, b)]
    before = sysctls()
    try:
        manager.up(4, 0, prefix=a)
        manager.up(4, 1, prefix=b)
        raised = sysctls()
        assert all(raised[k] >= v for k, v in nsmod.RAISED_SYSCTLS.items())
        manager.down(a)
        assert sysctls() == raised, "b is still up: nothing restored"
        assert manager.status(b).healthy
    finally:
        manager.down(a)
        manager.down(b)
    if not others and not nsmod.sysctl_holders(manager.state_root()):
        assert sysctls() == before
