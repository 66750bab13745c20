"""The loopback lab (no namespaces, no root needed): devices on 127.18.x.y answer HTTP with their profiles'
banners; two loopback labs at once take different blocks of 127.18.0.0/16."""

from __future__ import annotations

import ipaddress
import re
import subprocess

import pytest

from scanner.lab import manager
from tests.conftest import lab_test_prefix

pytestmark = [pytest.mark.lab, pytest.mark.timeout(180)]


def _server_header(ip: str, port: int) -> str:
    out = subprocess.run(["curl", "-s", "-D", "-", "-o", "/dev/null", "--max-time", "10", f"http://{ip}:{port}/"],
                         capture_output=True, text=True, timeout=20).stdout
    m = re.search(r"^Server: (.*?)\r?$", out, re.M | re.I)
    return m.group(1) if m else ""


def _first_hik(st: manager.LabStatus) -> dict:
    return next(r for r in st.ground_truth_rows() if r["profile"] == "hikvision_camera" and r["ip"])


def test_loopback_lab(loopback_lab: manager.LabStatus) -> None:
    st = loopback_lab
    assert st.mode == "loopback" and st.scanner_netns is None and st.healthy
    net = ipaddress.ip_network(st.cidr)
    assert net.prefixlen == 24 and net.subnet_of(ipaddress.ip_network("127.18.0.0/16"))
    assert _server_header(_first_hik(st)["ip"], 80 + st.port_offset) == "App-webs/"


def test_two_loopback_labs_at_once() -> None:
    a, b = lab_test_prefix("la"), lab_test_prefix("lb")
    try:
        sa = manager.up(30, 1, prefix=a, loopback=True)
        sb = manager.up(30, 2, prefix=b, loopback=True)
        assert not ipaddress.ip_network(sa.cidr).overlaps(ipaddress.ip_network(sb.cidr))
        assert sa.healthy and sb.healthy
        for st in (sa, sb):
            assert _server_header(_first_hik(st)["ip"], 80 + st.port_offset) == "App-webs/"
    finally:
        manager.down(a)
        manager.down(b)
    assert manager.status(a) is None and manager.status(b) is None
