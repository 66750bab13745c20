"""The probes against a lab of simulated devices this test brings up (own prefix) and takes down."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import lab_test_prefix, reap_stale_test_labs

ROOT = Path(__file__).resolve().parents[2]
PREFIX = lab_test_prefix("pl")  # cswt<pid>pl: parallel sessions never share it, a killed one is reaped

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(300)]


def _camsweep(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scanner.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def lab():
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 for network namespaces")
    reap_stale_test_labs()  # leftovers of killed sessions
    up = _camsweep("lab", "up", "--devices", "10", "--seed", "5", "--prefix", PREFIX, "--json")
    if up.returncode != 0:
        pytest.fail(f"lab up failed: {up.stderr[-2000:]}")
    status = json.loads(up.stdout)
    try:
        yield status
    finally:
        _camsweep("lab", "down", "--prefix", PREFIX, timeout=60)
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert f"{PREFIX}-" not in left


@pytest.fixture(scope="module")
def summary(lab):
    run = subprocess.run(["ip", "netns", "exec", lab["scanner_netns"], sys.executable, "-m", "tests.probes.lab_runner",
                          lab["state_dir"], lab["cidr"]], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def test_arp_and_multicast_discovery_stay_inside_targets(summary):
    seg, targets, excluded = summary["segment"], set(summary["targets"]), summary["excluded"]
    assert set(seg["arp"]) == targets  # every target answered ARP; the excluded one was dropped
    for name in ("wsd", "ssdp", "sadp", "dhip", "mdns"):
        assert excluded not in seg[name] and set(seg[name]) <= targets, name
    restricted = {g["ip"] for g in summary["ground_truth"] if g.get("ip") in targets
                  and g["manufacturer"] in ("Hikvision", "Dahua")}
    assert set(seg["sadp"]) | set(seg["dhip"]) >= {ip for ip in restricted if summary["hosts"][ip]["plain"]
                                                   .get("discovery")} - {None}
    assert seg["wsd"], "no WS-Discovery answer at all"
    axis = {g["ip"] for g in summary["ground_truth"] if g.get("ip") and g["manufacturer"] == "Axis"}
    assert axis - {excluded} and axis - {excluded} <= set(seg["mdns"])  # zeroconf browse on the interface
    assert set(summary["passive_wsd"]) == set(seg["wsd"])  # capture saw every ProbeMatch (fragmented ones too)


def test_every_device_shows_its_model_without_credentials(summary):
    for g in summary["ground_truth"]:
        if not g.get("ip") or g.get("device_type") not in ("camera", "ptz", "nvr", "dvr", "thermal", "doorbell",
                                                             "encoder", "intercom"):
            continue  # ordinary hosts have no model to show
        blob = json.dumps(summary["hosts"][g["ip"]]["plain"])
        assert g["model"] in blob, (g["ip"], g["profile"])


def test_credentials_give_device_info_and_nvr_channels(summary):
    for g in summary["ground_truth"]:
        if g.get("parent_ip"):
            creds = summary["hosts"][g["parent_ip"]]["creds"]
            channels = [d["fields"] for d in creds.get("discovery", []) if d["protocol"] == "nvr_channel"]
            assert any(c.get("model") == g["model"] for c in channels), (g["model"], g["parent_ip"], channels,
                                                                          [d["protocol"] for d in creds.get("discovery", [])])
    for ip, h in summary["hosts"].items():
        if h["plain"].get("onvif", {}).get("auth_required"):
            assert h["creds"].get("onvif", {}).get("authenticated") is True, (ip, h["creds"].get("onvif"))
