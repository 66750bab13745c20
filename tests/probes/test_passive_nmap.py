"""Passive capture and pcap reading (frames built from the recordings), and nmap XML import."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from scanner.evidence import parse_record
from scanner.probes import passive
from scanner.probes.base import ProbeContext
from scanner.probes.nmap_xml import NmapXmlError, parse_servicefp, read_nmap_xml
from tests.probes.conftest import RECORDINGS, recording
from tests.probes.test_parsers import _mdns_packet

pytestmark = pytest.mark.timeout(60)

HIK_MAC, DAHUA_MAC, AXIS_MAC, SCANNER_MAC = "2c:a5:9c:0b:c9:7e", "08:ed:ed:87:42:7a", "00:40:8c:12:34:56", \
    "02:00:00:00:00:01"


def frames() -> list:
    mc = "01:00:5e:7f:ff:fa"
    return [
        Ether(src=HIK_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=HIK_MAC, psrc="198.18.0.2", pdst="198.18.0.254"),
        Ether(src=AXIS_MAC, dst="ff:ff:ff:ff:ff:ff") / IP(src="0.0.0.0", dst="255.255.255.255")
        / UDP(sport=68, dport=67) / BOOTP(op=1, chaddr=bytes.fromhex(AXIS_MAC.replace(":", "")) + b"\0" * 10)
        / DHCP(options=[("message-type", "request"), ("vendor_class_id", b"AXIS,Network Camera,P3343,5.20.3"),
                        ("hostname", b"axis-00408c123456"), ("requested_addr", "198.18.0.5"), "end"]),
        Ether(src=AXIS_MAC, dst="01:00:5e:00:00:fb") / IP(src="198.18.0.5", dst="224.0.0.251")
        / UDP(sport=5353, dport=5353) / Raw(_mdns_packet()),
        Ether(src="02:00:00:00:00:06", dst=mc) / IP(src="198.18.0.6", dst="239.255.255.250")
        / UDP(sport=1900, dport=1900) / Raw(recording("ssdp/amcrest-notify.http")),
        Ether(src=DAHUA_MAC, dst=mc) / IP(src="198.18.0.3", dst="239.255.255.250")
        / UDP(sport=3702, dport=3702) / Raw(recording("wsd/dahua-ipc-hfw2228m-hello.xml")),
        Ether(src=HIK_MAC, dst=mc) / IP(src="198.18.0.2", dst="239.255.255.250")
        / UDP(sport=37020, dport=37020) / Raw(recording("sadp/hikvision-ds2cd2385g1-probematch.xml")),
        Ether(src=DAHUA_MAC, dst="01:00:5e:7f:ff:fb") / IP(src="198.18.0.3", dst="239.255.255.251")
        / UDP(sport=37810, dport=5000) / Raw(recording("dhip/dahua-ipc-hdw1431t1-s4-reply.bin")),
        # a unicast HTTP answer through a router: the frame's MAC is the router's, not the camera's
        Ether(src="02:00:00:00:00:fe", dst=SCANNER_MAC) / IP(src="198.18.1.9", dst="198.18.0.1")
        / TCP(sport=80, dport=40000, flags="PA") / Raw(recording("http/hikvision-401-app-webs.http")),
        Ether(src="02:00:00:00:00:07", dst=mc) / IP(src="198.18.0.7", dst="239.255.255.250")
        / UDP(sport=3702, dport=3702) / Raw(b"<not-xml" * 50),
    ]


def test_read_pcap_merges_devices(tmp_path):
    path = tmp_path / "cap.pcap"
    wrpcap(str(path), frames())
    records = {r.get("ip") or r.get("mac"): r for r in passive.read_pcap(str(path))}
    hik = records["198.18.0.2"]
    assert hik["mac"] == HIK_MAC and hik["discovery"][0]["protocol"] == "sadp"
    axis = records["198.18.0.5"]
    assert axis["mac"] == AXIS_MAC and axis["dhcp"]["vendor_class"] == "AXIS,Network Camera,P3343,5.20.3"
    assert axis["mdns"][0]["type"] == "_axis-video._tcp.local."
    dahua = records["198.18.0.3"]
    assert dahua["mac"] == DAHUA_MAC and dahua["wsd"][0]["message"] == "Hello"
    assert dahua["discovery"][0]["fields"]["DeviceType"] == "IPC-HDW1431T1-S4"
    assert records["198.18.0.6"]["ssdp"][0]["headers"]["X-User-Agent"] == "redsonic"
    routed = records["198.18.1.9"]
    assert "mac" not in routed and routed["http"][0]["headers"]["Server"] == "App-webs/"
    assert "198.18.0.7" not in records  # junk produced nothing
    for r in records.values():
        parse_record(r)  # every merged record is valid format 1


def test_read_pcapng_and_truncated(tmp_path):
    try:
        from scapy.utils import wrpcapng
    except ImportError:  # pragma: no cover
        pytest.skip("scapy without pcapng writer")
    path = tmp_path / "cap.pcapng"
    wrpcapng(str(path), frames())
    assert {r.get("ip") for r in passive.read_pcap(str(path))} >= {"198.18.0.2", "198.18.0.3", "198.18.0.5"}
    cut = tmp_path / "cut.pcap"
    wrpcap(str(cut), frames())
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) - 40])  # the last frame is cut in the middle
    assert "198.18.0.2" in {r.get("ip") for r in passive.read_pcap(str(cut))}


def test_read_pcap_bad_files_give_clear_errors(tmp_path):
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"this is not a capture at all" * 10)
    with pytest.raises(passive.CaptureError, match="not a pcap"):
        passive.read_pcap(str(junk))
    with pytest.raises(passive.CaptureError, match="cannot read"):
        passive.read_pcap(str(tmp_path / "missing.pcap"))


def test_parse_packet_never_raises():
    import random

    rng = random.Random(7)
    for f in frames():
        raw = bytearray(bytes(f))
        for _ in range(30):
            b = bytearray(raw)
            for _ in range(rng.randint(1, 8)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            passive.parse_packet(Ether(bytes(b)))  # must not raise


async def test_capture_needs_an_interface():
    with pytest.raises(passive.CaptureError, match="interface"):
        await passive.capture(ProbeContext(), 1)


@pytest.mark.skipif(not hasattr(socket, "SO_BINDTODEVICE"), reason="Linux only")
async def test_capture_on_loopback_sees_an_announcement():
    """Capture on lo (nothing leaves the machine): a DHIP device announcement sent to 127.0.0.1."""
    import os

    if os.geteuid() != 0:
        pytest.skip("capture needs CAP_NET_RAW")
    reply = recording("dhip/dahua-ipc-hdw1431t1-s4-reply.bin")

    async def announce():
        await asyncio.sleep(0.8)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(3):
                s.sendto(reply, ("127.0.0.1", 37810))
                await asyncio.sleep(0.1)

    t = time.monotonic()
    task = asyncio.create_task(announce())
    records = await passive.capture(ProbeContext(interface="lo"), 2.0)
    await task
    assert time.monotonic() - t < 6
    mine = [r for r in records if any(d.get("fields", {}).get("SerialNo") == "6C01E93PAG69A7D"
                                      for d in r.get("discovery", []))]
    # the frame's source is the sender's address; the MAC is the one the device reports in its payload
    assert mine and mine[0]["ip"] == "127.0.0.1" and mine[0]["mac"] == DAHUA_MAC


# ---------------------------------------------------------------------------------------------- nmap


def test_nmap_xml_two_cameras():
    recs = {r["ip"]: r for r in read_nmap_xml(str(RECORDINGS / "nmap/two-cameras.xml"))}
    assert set(recs) == {"198.18.0.2", "198.18.0.3"}  # the host that is down is left out
    hik = recs["198.18.0.2"]
    assert hik["mac"] == HIK_MAC and hik["mac_vendor"].startswith("Hangzhou Hikvision")
    assert hik["http"][0]["headers"] == {"Server": "App-webs/"} and "title" not in hik["http"][0]
    assert hik["tls"][0]["subject"] == "CN=198.18.0.2,O=HIKVISION,C=CN"
    sdk = next(b for b in hik["banners"] if b["port"] == 8000)
    assert sdk == {"protocol": "tcp", "port": 8000, "hex": "000000100000001e0000001e00000000",
                   "source": "nmap-servicefp:NULL"}
    dahua = recs["198.18.0.3"]
    assert dahua["http"][0]["headers"]["Server"] == "Webs" and dahua["http"][0]["title"] == "WEB SERVICE"
    assert dahua["rtsp"][0]["headers"]["Server"] == "Dahua Rtsp Server"
    # nmap's own reading is a discovery entry of protocol nmap (not a banner: no bytes from the device)
    assert {"protocol": "nmap", "port": 554, "source": "nmap-service", "fields": {
        "service": "rtsp", "product": "Dahua IP camera rtspd", "devicetype": "webcam"}} in dahua["discovery"]
    assert not any(b.get("source") == "nmap-service" for r in recs.values() for b in r.get("banners", []))
    assert {"protocol": "nmap", "port": 80, "source": "nmap-service", "fields": {
        "service": "http", "product": "Hikvision IP camera httpd", "devicetype": "webcam",
        "cpe": "cpe:/h:hikvision:ip_camera"}} in hik["discovery"]
    for r in recs.values():
        rec = parse_record(r)
        assert rec.has_observation()


def test_servicefp_unescape():
    fp = 'SF-Port80-TCP:V=7.94%r(GetRe\nSF:quest,1A,"HTTP/1\\.0\\x20200\\x20OK\\r\\n\\r\\nA\\"B");'
    [(probe, raw)] = parse_servicefp(fp)
    assert probe == "GetRequest" and raw == b'HTTP/1.0 200 OK\r\n\r\nA"B'


def test_nmap_xml_hostile_and_wrong_files(tmp_path):
    bomb = tmp_path / "bomb.xml"
    bomb.write_text('<?xml version="1.0"?><!DOCTYPE nmaprun [<!ENTITY a "aaaaaaaaaa">'
                    '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
                    '<nmaprun><host><status state="up"/><address addr="&c;" addrtype="ipv4"/></host></nmaprun>')
    t = time.monotonic()
    with pytest.raises(NmapXmlError, match="refused"):
        read_nmap_xml(str(bomb))
    assert time.monotonic() - t < 1
    other = tmp_path / "other.xml"
    other.write_text("<root><host/></root>")
    with pytest.raises(NmapXmlError, match="not nmap output"):
        read_nmap_xml(str(other))
    broken = tmp_path / "broken.xml"
    broken.write_text("<nmaprun><host><status state=")
    with pytest.raises(NmapXmlError, match="not well-formed"):
        read_nmap_xml(str(broken))
    with pytest.raises(NmapXmlError, match="cannot read"):
        read_nmap_xml(str(tmp_path / "nope.xml"))
    cut = tmp_path / "cut.xml"  # an interrupted scan keeps the hosts already written
    full = (RECORDINGS / "nmap/two-cameras.xml").read_bytes()
    cut.write_bytes(full[: full.index(b'<host><status state="down"') + 20])
    assert [r["ip"] for r in read_nmap_xml(str(cut))] == ["198.18.0.2", "198.18.0.3"]


def test_read_pcap_reassembles_fragmented_datagrams(tmp_path):
    from scapy.layers.inet import fragment

    big = recording("wsd/hikvision-ds2cd3955-probematch.xml") + b"<!--" + b"x" * 3000 + b"-->"
    pkt = IP(src="198.18.0.2", dst="239.255.255.250", id=77) / UDP(sport=3702, dport=3702) / Raw(big)
    parts = [Ether(src=HIK_MAC, dst="01:00:5e:7f:ff:fa") / f for f in fragment(pkt, fragsize=1400)]
    assert len(parts) >= 3
    path = tmp_path / "frag.pcap"
    wrpcap(str(path), list(reversed(parts)))  # out of order, as the wire may deliver them
    [rec] = passive.read_pcap(str(path))
    assert rec["ip"] == "198.18.0.2" and rec["wsd"][0]["endpoint"].startswith("urn:uuid:18ec6401")


def test_offline_read_evidence_nmap_and_pcap(tmp_path):
    from scanner.errors import CamsweepError
    from scanner.evidence import EvidenceRecord
    from scanner.probes.offline import read_evidence

    nm = list(read_evidence("nmap-xml", str(RECORDINGS / "nmap/two-cameras.xml")))
    assert [n for n, _ in nm] == [1, 2] and all(isinstance(r, EvidenceRecord) for _, r in nm)
    assert nm[1][1].rtsp[0].headers["server"] == "Dahua Rtsp Server" and nm[0][1].id == "nmap:198.18.0.2"
    path = tmp_path / "cap.pcap"
    wrpcap(str(path), frames())
    recs = {r.ip: r for _, r in read_evidence("pcap", str(path))}
    assert recs["198.18.0.5"].dhcp.vendor_class.startswith("AXIS") and recs["198.18.0.5"].id == "pcap:198.18.0.5"
    with pytest.raises(CamsweepError, match="file"):
        list(read_evidence("pcap", "-"))
    with pytest.raises(CamsweepError):
        list(read_evidence("nmap-xml", str(tmp_path / "missing.xml")))


def test_read_pcap_in_a_fresh_process(tmp_path):
    """No scapy layer imported beforehand (as in `camsweep scan --pcap`): frames must still be dissected."""
    import json as _json
    import subprocess
    import sys

    path = tmp_path / "cap.pcap"
    wrpcap(str(path), frames())
    code = ("import json,sys; from scanner.probes.passive import read_pcap; "
            "print(json.dumps(sorted(r.get('ip') or r.get('mac') for r in read_pcap(sys.argv[1]))))")
    run = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60,
                         cwd=str(RECORDINGS.parent.parent))
    assert run.returncode == 0, run.stderr
    assert _json.loads(run.stdout) == ["198.18.0.2", "198.18.0.3", "198.18.0.5", "198.18.0.6", "198.18.1.9"]
    assert "Raw packets" not in run.stderr


def test_nmap_xml_real_nmap_output_from_the_lab():
    recs = {r["ip"]: r for r in read_nmap_xml(str(RECORDINGS / "nmap/lab-nmap-sV.xml"))}
    assert sorted(recs) == [f"198.18.0.{i}" for i in range(3, 9)]
    assert recs["198.18.0.4"]["http"][0]["headers"]["Server"] == "App-webs/"
    assert recs["198.18.0.4"]["tls"][0]["subject"].startswith("CN=IP Camera,O=Hikvision")
    assert recs["198.18.0.8"]["http"][0]["source"] == "nmap-servicefp:GetRequest"
    assert recs["198.18.0.8"]["http"][0]["headers"]["Server"] == "Vivotek Network Camera"
    assert recs["198.18.0.3"]["mac_vendor"] == "Honeywell"
    for r in recs.values():
        parse_record(r)


def test_read_pcap_real_tcpdump_capture_of_the_lab():
    recs = {r["ip"]: r for r in passive.read_pcap(str(RECORDINGS / "pcap/lab-discovery.pcap"))}
    assert len(recs) == 20 and all(ip.startswith("198.18.0.") for ip in recs)
    assert sum(1 for r in recs.values() if r.get("wsd")) >= 15
    protos = {d["protocol"] for r in recs.values() for d in r.get("discovery", [])}
    assert protos == {"sadp", "dhip"}
    assert recs["198.18.0.4"]["rtsp"] and recs["198.18.0.6"]["http"]
    for r in recs.values():
        parse_record(r)
