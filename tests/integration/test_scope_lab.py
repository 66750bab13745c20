"""Issue 13, item 1, on the wire: a capture in the lab's scanner namespace while camsweep scans with
``--exclude`` and with a partial range finds no packet to any address outside the targets.

tcpdump listens on the scanner's interface for the whole of both scans. Every packet the scanner sends
(its MAC as the source) is then read with scapy: an ARP request may ask only a target; an IPv4 packet
may go only to a target (none to a multicast group or broadcast either: neither target set covers the
segment, and --multicast is not given). A datagram the test sends to a target before the scans proves the
capture was live, so "no packet found" means "none sent", not "nothing captured".
"""

from __future__ import annotations

import ipaddress
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scanner.lab import netns as nsmod
from scanner.targets import parse_targets
from tests.conftest import start_tcpdump

pytestmark = [pytest.mark.lab, pytest.mark.timeout(420)]
if nsmod.netns_unavailable_reason() or not shutil.which("tcpdump"):
    pytestmark.append(pytest.mark.skip(reason="needs root, network namespaces and tcpdump"))


def _camsweep(lab, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    cmd = ["ip", "netns", "exec", str(lab.scanner_netns), sys.executable, "-m", "scanner.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _capture(lab, path: Path) -> subprocess.Popen[bytes]:
    return start_tcpdump(["ip", "netns", "exec", str(lab.scanner_netns), "tcpdump", "-i", str(lab.interface),
                          "-nn", "-U", "-s", "256", "-w", str(path), "ether src", nsmod.SCANNER_MAC])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    time.sleep(0.5)  # the last frames reach the file
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def _destinations(path: Path) -> list[tuple[str, str, str]]:
    """(kind, address, summary) of every packet in the capture that starts an exchange: an ARP request
    (the address asked), a TCP SYN, a UDP datagram, an ICMP echo request, any other IP packet (its
    destination). Later packets of a TCP connection are left out: they need its SYN, which is counted, and
    after a scan the kernel may still close connections of the scan before (FIN retransmissions to a
    tarpit device) while the next capture runs."""
    from scapy.layers.inet import ICMP, IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import ARP
    from scapy.utils import rdpcap

    out = []
    for pkt in rdpcap(str(path)):
        if pkt.haslayer(ARP):
            if pkt[ARP].op == 1:
                out.append(("arp", pkt[ARP].pdst, pkt.summary()))
        elif pkt.haslayer(IP):
            if pkt.haslayer(TCP) and not (pkt[TCP].flags & 0x02 and not pkt[TCP].flags & 0x10):
                continue  # not a SYN: part of a connection whose SYN is (or was, before) counted
            if pkt.haslayer(ICMP) and pkt[ICMP].type != 8:
                continue  # an ICMP error: the kernel answering a device's own datagram
            out.append(("ip", pkt[IP].dst, pkt.summary()))
        elif pkt.haslayer(IPv6):
            out.append(("ip6", pkt[IPv6].dst, pkt.summary()))
        else:
            out.append(("other", pkt.summary(), ""))
    return out


def test_no_packet_to_an_excluded_or_non_target_address(lab, tmp_path):
    truth = [t for t in lab.ground_truth_rows() if t.get("ip")]
    ips = sorted((t["ip"] for t in truth), key=ipaddress.ip_address)
    assert len(ips) >= 12
    excluded = [ips[1], ips[4]]  # two live devices, so they would answer if asked
    net = ipaddress.ip_network(lab.cidr)
    # a partial range, in nmap's octet form, around live devices: every other address of the first 24
    base = ".".join(str(net.network_address).split(".")[:3])
    partial = f"{base}.2-24,30"
    scans = [  # the whole-lab scan last: connections it leaves closing cannot show up in another's capture
        (["scan", partial, "-sn"], parse_targets([partial])),
        (["scan", partial, "--exclude", ips[2], "--credentials", lab.credentials_file],
         parse_targets([partial], exclude=[ips[2]])),
        (["scan", lab.cidr, "--exclude", ",".join(excluded), "--credentials", lab.credentials_file],
         parse_targets([lab.cidr], exclude=[",".join(excluded)])),
    ]
    for i, (args, targets) in enumerate(scans):
        pcap = tmp_path / f"scan{i}.pcap"
        cap = _capture(lab, pcap)
        try:
            # the canary: a datagram to a target, which the capture must hold
            canary = subprocess.run(["ip", "netns", "exec", str(lab.scanner_netns), sys.executable, "-c",
                                     f"import socket; socket.socket(2, 2).sendto(b'canary', ({ips[0]!r}, 9))"],
                                    capture_output=True, text=True, timeout=30)
            assert canary.returncode == 0, canary.stderr
            p = _camsweep(lab, *args, "--db", str(tmp_path / f"s{i}.db"), "--quiet", "--format", "json")
        finally:
            _stop(cap)
        assert p.returncode == 0, p.stderr[-2000:]
        dests = _destinations(pcap)
        assert any(d[:2] == ("ip", ips[0]) for d in dests), "the capture missed the canary: it was not live"
        outside = [d for d in dests if d[1] not in targets]
        assert outside == [], f"{' '.join(args)}: packets to non-targets: {sorted(set(outside))[:20]}"
        asked = {a for k, a, *_ in dests if k == "arp"}
        assert asked, "the scan sent no ARP request at all"
        for ex in excluded if "--exclude" in args and lab.cidr in args else []:
            assert not any(d[:2] in (("arp", ex), ("ip", ex)) for d in dests)
