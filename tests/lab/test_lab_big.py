"""A lab of 1000 devices (opt-in: CAMSWEEP_TEST_LAB_BIG=1; about a minute and ~400 MB of kernel memory).

It must come up on a /22, raise the root namespace's neighbour-table and backlog limits while it is up
(else ARP sweeps lose hosts), let arp-scan find all 1000 with their MACs, and go down without leftovers,
restoring the limits when no other lab holds them."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from scanner.lab import manager
from scanner.lab import netns as nsmod
from tests.conftest import lab_test_prefix

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(600)]
if nsmod.netns_unavailable_reason():
    pytestmark.append(pytest.mark.skip(reason=f"needs network namespaces: {nsmod.netns_unavailable_reason()}"))
if os.environ.get("CAMSWEEP_TEST_LAB_BIG") != "1":
    pytestmark.append(pytest.mark.skip(reason="the 1000-device lab runs only with CAMSWEEP_TEST_LAB_BIG=1"))


def test_lab_of_1000() -> None:
    prefix = lab_test_prefix("k")
    saved = {k: nsmod._read_sysctl(k) for k in nsmod.RAISED_SYSCTLS}
    others = [p for p in nsmod.sysctl_holders(manager.state_root()) if p != prefix]
    cli = [sys.executable, "-m", "scanner.cli", "lab"]
    try:
        up = subprocess.run([*cli, "up", "--devices", "1000", "--prefix", prefix, "--json"], capture_output=True,
                            text=True, timeout=300)
        assert up.returncode == 0, up.stderr
        st = json.loads(up.stdout)
        print(f"lab up --devices 1000: {st['timings']}")
        assert st["cidr"] == "198.18.0.0/22" and st["devices"] == 1000 and st["namespaces"] == 1002
        for key, want in nsmod.RAISED_SYSCTLS.items():
            assert nsmod._read_sysctl(key) >= want, key
        truth = {r["ip"]: r["mac"] for r in manager.read_ground_truth(st["ground_truth"]) if r["ip"]}
        assert len(truth) == 1000
        if shutil.which("arp-scan"):
            out = subprocess.run(["ip", "netns", "exec", st["scanner_netns"], "timeout", "120", "arp-scan", "-I",
                                  "eth0", "--retry=3", st["cidr"]], capture_output=True, text=True, timeout=130).stdout
            seen = dict(re.findall(r"^(198\.18\.\d+\.\d+)\s+([0-9a-f:]{17})", out, re.M))
            print(f"arp-scan found {len(seen)} of 1000")
            assert seen == truth
    finally:
        down = subprocess.run([*cli, "down", "--prefix", prefix], capture_output=True, text=True, timeout=120)
        print(down.stdout.strip())
    assert down.returncode == 0 and nsmod.lab_namespaces(prefix) == []
    if not others and not nsmod.sysctl_holders(manager.state_root()):
        assert {k: nsmod._read_sysctl(k) for k in nsmod.RAISED_SYSCTLS} == saved
