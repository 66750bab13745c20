"""No packet of the lab reaches the root namespace's interfaces.

tcpdump runs in the root namespace on ``-i any``, which there means the root namespace's own interfaces
(eth0, lo, ...; the lab's veths and bridge live in other namespaces, and `tcpdump -D` proves it). While
it captures, the scanner namespace sweeps the lab: arp-scan, nmap -sn, a WS-Discovery multicast probe,
HTTP requests and a full `camsweep scan`. Every captured packet is then checked for the lab's addresses (198.18.0.0/15, in IP or ARP)
and the lab's MACs. A datagram sent to 127.0.0.1 during the capture must be seen: it proves the capture
was live, so that an empty result means "nothing leaked" and not "nothing captured".
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scanner.lab import manager
from scanner.lab import netns as nsmod
from tests.conftest import start_tcpdump

pytestmark = [pytest.mark.lab, pytest.mark.timeout(420)]
if nsmod.netns_unavailable_reason() or not shutil.which("tcpdump"):
    pytestmark.append(pytest.mark.skip(reason=f"needs root, network namespaces and tcpdump "
                                       f"({nsmod.netns_unavailable_reason() or 'tcpdump is not installed'})"))

LAB_NET = ipaddress.ip_network("198.18.0.0/15")
CANARY_ETHERTYPE = 0x88B5  # IEEE local experimental: the kernel ignores it, nothing answers
CANARY = b"camsweep-noleak-canary"


def _send_canary(lab_mac: str) -> None:
    """A frame from a lab MAC on the root namespace's loopback only: the detector must flag it."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    try:
        s.bind(("lo", 0))
        s.send(b"\0" * 6 + bytes.fromhex(lab_mac.replace(":", "")) + CANARY_ETHERTYPE.to_bytes(2, "big") + CANARY)
    finally:
        s.close()

WSD_PROBE = r"""
import socket, sys, time, uuid
msg = ('<?xml version="1.0" encoding="UTF-8"?><e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" '
 'xmlns:w="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
 'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"><e:Header><w:MessageID>urn:uuid:%s</w:MessageID>'
 '<w:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</w:To>'
 '<w:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</w:Action></e:Header>'
 '<e:Body><d:Probe/></e:Body></e:Envelope>') % uuid.uuid4()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 2)
s.sendto(msg.encode(), ("239.255.255.250", 3702))
s.settimeout(0.3)
n, end = 0, time.time() + 1.5
while time.time() < end:
    try:
        s.recvfrom(65536); n += 1
    except OSError:
        pass
print(n)
"""


def _in_ns(ns: str, *cmd: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, timeout=timeout)


def _start_capture(path: Path, control_port: int) -> subprocess.Popen[bytes]:
    filt = (f"net {LAB_NET} or arp or ip multicast or dst host 255.255.255.255 or ip6 "
            f"or (udp and host 127.0.0.1 and port {control_port}) or ether proto {CANARY_ETHERTYPE:#06x}")
    return start_tcpdump(["tcpdump", "-i", "any", "-y", "LINUX_SLL", "-nn", "-U", "-s", "512", "-w", str(path), filt])


def _lab_markers(pkt, lab_macs: set[str]) -> list[str]:
    from scapy.layers.inet import IP
    from scapy.layers.l2 import ARP, CookedLinux

    why = []
    if pkt.haslayer(CookedLinux):
        raw = bytes(pkt[CookedLinux].src)[: pkt[CookedLinux].lladdrlen or 6]
        mac = ":".join(f"{b:02x}" for b in raw[:6])
        if mac in lab_macs:
            why.append(f"lab MAC {mac}")
    if pkt.haslayer(IP):
        for a in (pkt[IP].src, pkt[IP].dst):
            if ipaddress.ip_address(a) in LAB_NET:
                why.append(f"IP {a}")
    if pkt.haslayer(ARP):
        for a in (pkt[ARP].psrc, pkt[ARP].pdst):
            try:
                if ipaddress.ip_address(a) in LAB_NET:
                    why.append(f"ARP {a}")
            except ValueError:
                pass
        if str(pkt[ARP].hwsrc).lower() in lab_macs:
            why.append(f"ARP from lab MAC {pkt[ARP].hwsrc}")
    return why


def test_lab_interfaces_are_not_in_the_root_namespace(lab: manager.LabStatus) -> None:
    out = subprocess.run(["tcpdump", "-D"], capture_output=True, text=True, timeout=20).stdout
    names = {line.split(".", 1)[1].split()[0] for line in out.splitlines() if "." in line}
    lab_links = subprocess.run(["ip", "-n", str(lab.bridge_netns), "-o", "link"], capture_output=True,
                               text=True, timeout=20).stdout
    assert "br0" in lab_links and "v0@" in lab_links, "the bridge and its ports live in the bridge namespace"
    assert not names & {"br0", "s0", "v0", "v1"}, f"root namespace has lab links: {names}"
    root_links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, timeout=20).stdout
    assert "link-netns" not in root_links or lab.bridge_netns not in root_links


def test_no_packet_of_a_lab_sweep_leaves_the_lab(lab: manager.LabStatus, tmp_path: Path) -> None:
    truth = lab.ground_truth_rows()
    lab_macs = {r["mac"] for r in truth if r.get("mac") and r.get("ip")} | {nsmod.SCANNER_MAC, nsmod.BRIDGE_MAC}
    pcap = tmp_path / "root.pcap"
    ctl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ctl.bind(("127.0.0.1", 0))
    control_port = ctl.getsockname()[1]
    cap = _start_capture(pcap, control_port)
    ns = str(lab.scanner_netns)
    swept: dict[str, str] = {}
    try:
        if shutil.which("arp-scan"):
            out = _in_ns(ns, "timeout", "60", "arp-scan", "-I", "eth0", lab.cidr).stdout
            swept["arp-scan"] = str(len(re.findall(r"^198\.1[89]\.\d+\.\d+\t", out, re.M)))
        if shutil.which("nmap"):
            out = _in_ns(ns, "timeout", "90", "nmap", "-n", "-sn", lab.cidr, timeout=100).stdout
            swept["nmap"] = out.strip().splitlines()[-1] if out.strip() else ""
        swept["wsd replies"] = _in_ns(ns, sys.executable, "-c", WSD_PROBE).stdout.strip()
        for r in [r for r in truth if r.get("ip")][:5]:
            _in_ns(ns, "curl", "-s", "-o", "/dev/null", "--max-time", "3", f"http://{r['ip']}/")
        p = _in_ns(ns, sys.executable, "-m", "scanner.cli", "scan", lab.cidr, "--db", str(tmp_path / "s.db"),
                   "--credentials", lab.credentials_file, "--quiet", "--format", "csv", timeout=300)
        swept["camsweep scan"] = str(max(0, len(p.stdout.strip().splitlines()) - 1))  # camsweep's own full scan
        ctl.sendto(b"camsweep-noleak-control", ("127.0.0.1", control_port))
        _send_canary(sorted(lab_macs - {nsmod.SCANNER_MAC, nsmod.BRIDGE_MAC})[0])
        time.sleep(1.0)
    finally:
        cap.send_signal(signal.SIGINT)
        try:
            cap.wait(timeout=10)
        except subprocess.TimeoutExpired:
            cap.kill()
            cap.wait()
        ctl.close()
    print("sweep:", swept)
    assert int(swept["wsd replies"] or 0) > 0, f"the multicast probe got no answer, so it proves nothing: {swept}"
    assert all(v not in ("", "0") for v in swept.values()), f"a part of the sweep found nothing: {swept}"

    from scapy.layers.inet import UDP
    from scapy.layers.l2 import CookedLinux  # registers the link type before reading
    from scapy.utils import rdpcap

    packets = rdpcap(str(pcap))
    control = [p for p in packets if b"camsweep-noleak-control" in bytes(p)]
    assert control, "the capture missed the control datagram: it was not live, so it proves nothing"
    assert control[0].haslayer(CookedLinux) and control[0][UDP].dport == control_port, \
        "captured packets are decoded (else the checks below would see nothing)"
    flagged = [(p, why) for p in packets if (why := _lab_markers(p, lab_macs))]
    assert any(CANARY in bytes(p) for p, _ in flagged), "the detector missed the canary frame from a lab MAC"
    leaks = [(p.summary(), why) for p, why in flagged if CANARY not in bytes(p)]
    print(f"captured {len(packets)} packets in the root namespace, {len(leaks)} from the lab")
    assert not leaks, f"lab packets on the root namespace's interfaces: {leaks[:5]}"
