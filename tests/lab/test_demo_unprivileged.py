"""`camsweep demo` as an unprivileged user (issue 19): no namespaces, so a loopback lab whose devices listen
10,000 ports up; the demo scans it with the lab's port map, says in one line what it cannot show (ARP, MAC
prefixes, multicast discovery), finds the 60 devices, names the maker of every device whose maker does not
show only by MAC address or multicast, flags the restricted ones with no false alarm, and prints its
comparison with the ground truth.

Run as root (as CI does), the demo is started as ``nobody`` (setpriv: uid/gid 65534, no groups, no
capabilities). When the Python installation or the checkout cannot be read by ``nobody`` (pyenv under /root,
say), the one capability given back is CAP_DAC_READ_SEARCH, ambient: it lets the process read files, and
nothing on the network (no raw sockets, no namespaces, no ports below 1024); the test checks that. Run as
another user, the demo runs as that user.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from scanner.lab.profiles import build_fleet
from scanner.store import Store
from tests.conftest import lab_test_prefix

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534
NET_CAPS = {10: "CAP_NET_BIND_SERVICE", 12: "CAP_NET_ADMIN", 13: "CAP_NET_RAW", 21: "CAP_SYS_ADMIN"}
DEVICES, SEED = 60, 0


def _as_unprivileged(env: dict[str, str]) -> list[str]:
    """The command prefix that runs a process unprivileged (empty when this process already is)."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) is needed to drop to nobody")
    base = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    probe = [sys.executable, "-c", "import scanner.cli, httpx"]
    if subprocess.run([*base, *probe], env=env, capture_output=True, timeout=60).returncode == 0:
        return base
    return [*base, "--inh-caps=-all,+dac_read_search", "--ambient-caps=+dac_read_search"]


def _effective_caps(prefix: list[str], env: dict[str, str]) -> int:
    out = subprocess.run([*prefix, sys.executable, "-c",
                          "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('CapEff')))"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.strip(), 16)


def _numbers(line: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", line)]


def test_demo_without_root_finds_what_the_loopback_lab_can_show():
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", "CAMSWEEP_LAB_STATE_DIR")}
    env.update(PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1")
    prefix_cmd = _as_unprivileged(env)
    caps = _effective_caps(prefix_cmd, env)
    assert not any(caps >> bit & 1 for bit in NET_CAPS), f"not unprivileged: CapEff {caps:#x}"
    work = Path(tempfile.mkdtemp(prefix="camsweep-unpriv-"))
    if prefix_cmd:
        os.chown(work, NOBODY, NOBODY)
    env["HOME"] = env["TMPDIR"] = str(work)
    db = work / "demo.db"
    prefix = lab_test_prefix("u")
    cli = [*prefix_cmd, sys.executable, "-m", "scanner.cli"]
    try:
        proc = subprocess.run([*cli, "demo", "--prefix", prefix, "--devices", str(DEVICES), "--seed", str(SEED),
                               "--no-tui", "--db", str(db)], env=env, capture_output=True, text=True, timeout=580)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "Traceback" not in proc.stderr + proc.stdout
        m = re.search(rf"lab {prefix} up \(loopback\): {DEVICES} devices on (127\.18\.\d+\.0/24)", proc.stderr)
        assert m, proc.stderr[-2000:]
        cidr = m.group(1)
        # one line on what it cannot show
        note = [ln for ln in proc.stderr.splitlines() if ln.startswith("without root:")]
        assert len(note) == 1 and all(w in note[0] for w in ("ARP", "MAC", "multicast")), proc.stderr[-2000:]
        assert "--http-ports 10080," in proc.stderr  # it scanned the lab's moved ports
        assert f"lab {prefix} down" in proc.stderr

        # its comparison with the ground truth
        found = next(ln for ln in proc.stdout.splitlines() if ln.startswith("found "))
        hosts_found, hosts, chans_found, chans = _numbers(found)[:4]
        assert hosts_found == hosts == DEVICES, found
        assert chans_found == chans, found
        assert "wrong for 0" in found and found.endswith(", 0 false alarms"), found
        line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("without ARP and multicast:"))
        only_arp_mc, visible, visible_found, right, wrong, unknown, flagged, restricted, false_alarms = \
            _numbers(line)
        assert visible_found == visible and wrong == 0 and false_alarms == 0, line
        assert flagged == restricted > 0, line

        # the same, device by device, from the store the demo kept and the fleet it was given
        net = ipaddress.ip_network(cidr)
        ips = [str(h) for h in list(net.hosts())[1:DEVICES + 1]]  # .1 is kept for a scanner
        truth = [r for spec, ip in zip(build_fleet(DEVICES, SEED), ips, strict=True) for r in spec.ground_truth(ip)]
        with Store(db) as store:
            rows = store.devices(store.latest_scan_id())
        ip_of = {r["device_id"]: r["ip"] for r in rows}
        by_ip = {r["ip"]: r for r in rows if r.get("parent_id") is None}
        by_chan = {(ip_of.get(r["parent_id"]), str(r["channel"])): r for r in rows if r.get("parent_id")}
        assert set(by_ip) == set(ips)
        assert only_arp_mc == sum(1 for t in truth if t["manufacturer"] and "unicast" not in t["shown_by"])
        unknown_chans = 0
        for t in truth:
            got = by_chan.get((t["parent_ip"], str(t["channel"]))) if t["parent_ip"] else by_ip.get(t["ip"])
            assert got is not None, t
            if got.get("restricted") is True:
                assert t["restricted"] is True, (t, got)  # no false alarm, on any device
            if not t["manufacturer"] or "unicast" not in t["shown_by"]:
                continue
            have = (got.get("manufacturer") or "").lower()
            assert have in ("", t["manufacturer"].lower()), (t, got)  # never a wrong maker
            if t["restricted"] is True:
                assert got.get("restricted") is True, (t, got)
            if t["parent_ip"] is None:
                assert have == t["manufacturer"].lower(), (t, got)  # every device on the network: named
            elif not have:
                unknown_chans += 1
                parent = next(p for p in truth if p["ip"] == t["parent_ip"])
                # a camera of another maker behind a recorder whose channel list names no maker: the only gap
                assert t["manufacturer"] != parent["manufacturer"] and t["restricted"] is False, (t, parent)
        assert unknown == unknown_chans, line
    finally:
        subprocess.run([*cli, "lab", "down", "--prefix", prefix], env=env, capture_output=True, timeout=60)
        shutil.rmtree(work, ignore_errors=True)
