"""A plain `nmap -sV -oX` of the lab, run by the real nmap in the lab's scanner namespace, fed to
`camsweep identify --from nmap-xml`: every Hikvision and Dahua device (relabels included) is named with
its maker, from nmap's own answers (also with the MAC addresses removed, as across a router), and no
device the policy does not restrict is flagged. Only the lab's own 198.18.x addresses are scanned.
"""

from __future__ import annotations

import ipaddress
import json
import random
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from scanner.lab import manager
from scanner.lab import netns as nsmod
from scanner.lab.profiles import build_device

ROOT = Path(__file__).resolve().parents[2]
LAB_NET = ipaddress.ip_network("198.18.0.0/15")
PORTS = "80,443,554,8000,37777"  # where the Hikvision and Dahua profiles listen (HTTP, HTTPS, RTSP, SDKs)
FLEET = (
    # every non-hostile Hikvision and Dahua profile, OEM relabels included
    "hikvision_camera", "hikvision_camera_onvif_off", "hikvision_nvr", "ezviz_camera", "lts_camera",
    "annke_camera", "dahua_camera", "dahua_nvr", "amcrest_camera", "lorex_camera", "honeywell_camera",
    "imou_camera",
    # makers the default policy does not restrict, and ordinary hosts
    "axis_camera", "hanwha_camera", "bosch_camera", "ipro_camera", "uniview_camera", "printer", "linux_server",
    "nas",
)

pytestmark = [pytest.mark.lab, pytest.mark.timeout(420)]
_reason = nsmod.netns_unavailable_reason()
if _reason:
    pytestmark.append(pytest.mark.skip(reason=f"needs network namespaces: {_reason}"))
elif not shutil.which("nmap"):
    pytestmark.append(pytest.mark.skip(reason="nmap is not installed (`make deps`, or apt-get install nmap)"))


def _products(xml: Path) -> dict[str, list[str]]:
    """ip -> the products nmap named, per open port (for the report)."""
    import defusedxml.ElementTree as ET

    out: dict[str, list[str]] = {}
    for host in ET.parse(str(xml)).getroot().iter("host"):
        addr = next((a.get("addr") for a in host.findall("address") if a.get("addrtype") == "ipv4"), None)
        for port in host.iter("port"):
            svc, state = port.find("service"), port.find("state")
            if state is None or state.get("state") != "open":
                continue
            product = (svc.get("product") or "") if svc is not None else ""
            out.setdefault(str(addr), []).append(f"{port.get('portid')}:{product or '-'}")
    return out


def test_plain_nmap_sV_of_the_lab_names_every_hikvision_and_dahua_device(tmp_path):
    from tests.conftest import lab_test_prefix, reap_stale_test_labs

    reap_stale_test_labs()
    specs = [build_device(k, i, random.Random(f"camsweep-nmap-{i}-{k}")) for i, k in enumerate(FLEET)]
    prefix = lab_test_prefix("nm")
    st = manager.up(len(specs), 0, prefix=prefix, fleet=specs)
    xml = tmp_path / "lab-sV.xml"
    try:
        truth = {r["ip"]: r for r in st.ground_truth_rows() if r.get("ip")}  # PoE cameras behind NVRs have none
        assert len(truth) == len(FLEET)
        assert all(ipaddress.ip_address(ip) in LAB_NET for ip in truth)  # only the lab's own addresses
        t0 = time.monotonic()
        run = subprocess.run(["ip", "netns", "exec", str(st.scanner_netns), "nmap", "-n", "-Pn", "-sV",
                              "--version-light", "-p", PORTS, "-oX", str(xml), *truth],
                             capture_output=True, text=True, timeout=300)
        took = time.monotonic() - t0
        assert run.returncode == 0, run.stderr[-2000:]
    finally:
        manager.down(prefix)
    print(f"nmap -sV --version-light -p {PORTS}: {len(truth)} hosts in {took:.1f} s")

    ident = subprocess.run([sys.executable, "-m", "scanner.cli", "identify", "--from", "nmap-xml", str(xml)],
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert ident.returncode == 0, ident.stderr
    rows = {r["id"].split(":", 1)[1]: r for r in map(json.loads, ident.stdout.splitlines())}

    from scanner.evidence import parse_record
    from scanner.identify import Identifier
    from scanner.probes.nmap_xml import read_nmap_xml

    identifier = Identifier()
    no_mac = {}
    for rec in read_nmap_xml(str(xml)):  # nmap's answers alone: no MAC, as across a router
        rec.pop("mac", None)
        rec.pop("mac_vendor", None)
        no_mac[rec["ip"]] = identifier.identify(parse_record(rec)).to_dict()

    products = _products(xml)
    by_profile: dict[str, list[str]] = defaultdict(list)
    for ip, t in truth.items():
        got = rows.get(ip, {})
        by_profile[t["profile"]].append(f"{ip} -> {got.get('manufacturer')} (no MAC: "
                                        f"{no_mac.get(ip, {}).get('manufacturer')}); nmap: "
                                        f"{', '.join(products.get(ip, []))}")
    for profile, lines in by_profile.items():
        print(f"{profile:28} {' | '.join(lines)}")

    restricted = [ip for ip, t in truth.items() if t["manufacturer"] in ("Hikvision", "Dahua")]
    assert len(restricted) == 12
    for ip in restricted:
        t = truth[ip]
        for label, row in (("with MAC", rows[ip]), ("without MAC", no_mac[ip])):
            assert row["manufacturer"] == t["manufacturer"], (label, t["profile"], row)
            assert row["restricted"] is True, (label, t["profile"], row)
            assert any(e["rule"].startswith("nmap/") for e in row["evidence"]), (label, t["profile"], row)
    for ip, t in truth.items():
        if t["restricted"] is False:
            assert rows[ip]["restricted"] is not True, (t["profile"], rows[ip])
            assert no_mac[ip]["restricted"] is not True, (t["profile"], no_mac[ip])
