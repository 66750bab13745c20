"""The service in the namespace lab: multicast discovery (WS-Discovery, SADP, DHIP, SSDP, mDNS) from the
scanner namespace reaches exactly the devices whose profiles run it, each from its own address, with
WS-Discovery answers spread over the 0-0.5 s APP_MAX_DELAY window. Needs root and network namespaces
(the session's ``lab`` fixture skips otherwise); nothing leaves the lab's namespaces.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = [pytest.mark.lab, pytest.mark.timeout(180)]

PROBE = r'''
import json, socket, struct, sys, time
from zeroconf import DNSOutgoing, DNSQuestion, const as C
me = sys.argv[1]

def collect(group, port, payload, wait=1.5):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(me))
    s.bind((me, 0))
    t0 = time.monotonic()
    s.sendto(payload, (group, port))
    s.settimeout(0.1)
    got = {}
    while time.monotonic() - t0 < wait:
        try:
            data, addr = s.recvfrom(65536)
        except socket.timeout:
            continue
        got.setdefault(addr[0], [round(time.monotonic() - t0, 3), data[:64].hex()])
    s.close()
    return got

wsd = ('<?xml version="1.0" encoding="UTF-8"?><e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" '
       'xmlns:w="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" '
       'xmlns:dn="http://www.onvif.org/ver10/network/wsdl"><e:Header><w:MessageID>urn:uuid:0a1b</w:MessageID>'
       '<w:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</w:Action></e:Header><e:Body><d:Probe>'
       '<d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></e:Body></e:Envelope>').encode()
body = json.dumps({"method": "DHDiscover.search", "params": {"mac": "", "uni": 1}}).encode()
n = len(body)
q = DNSOutgoing(0, multicast=False, id_=5)
for t in ("_axis-video._tcp.local.", "_ipp._tcp.local.", "_http._tcp.local."):
    q.add_question(DNSQuestion(t, C._TYPE_PTR, C._CLASS_IN))
out = {
    "wsd": collect("239.255.255.250", 3702, wsd),
    "sadp": collect("239.255.255.250", 37020,
                    b'<?xml version="1.0" encoding="utf-8"?><Probe><Uuid>A1</Uuid><Types>inquiry</Types></Probe>'),
    "dhip": collect("239.255.255.251", 37810,
                    struct.pack("<I", 0x20) + b"DHIP" + struct.pack("<IIIIII", 0, 0, n, n, n, n) + body),
    "ssdp": collect("239.255.255.250", 1900, b'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n'
                    b'MAN: "ssdp:discover"\r\nMX: 1\r\nST: ssdp:all\r\n\r\n'),
    "mdns": collect("224.0.0.251", 5353, q.packets()[0]),
}
print(json.dumps(out))
'''


def test_multicast_discovery_reaches_exactly_the_right_devices(lab, in_scanner_ns) -> None:  # type: ignore[no-untyped-def]
    plan = json.loads(Path(lab.plan).read_text())
    expect: dict[str, set[str]] = {k: set() for k in ("wsd", "sadp", "dhip", "ssdp", "mdns")}
    for e in plan["devices"]:
        for svc in expect:
            if svc in e["services"]:
                expect[svc].add(e["ip"])
        if e.get("hostile_kind") == "xmlbomb":
            expect["wsd"].add(e["ip"])
    mdns_families = {"axis", "printer", "nas", "hikvision"}
    expect["mdns"] = {e["ip"] for e in plan["devices"] if "mdns" in e["services"] and e["family"] in mdns_families}
    r = in_scanner_ns(["python3", "-c", PROBE, lab.scanner_ip], timeout=60)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    for svc, ips in expect.items():
        assert set(got[svc]) == ips, (svc, sorted(ips ^ set(got[svc])))
    # multicast answers are spread over the APP_MAX_DELAY window, not sent in one burst
    times = sorted(t for t, _ in got["wsd"].values())
    assert len(times) >= 10
    assert times[-1] - times[0] > 0.15 and times[-1] < 1.0
    # the hostile ones answer too, as designed: garbage is not XML, the bomb declares entities
    by_ip = {e["ip"]: e for e in plan["devices"]}
    for ip, (_, head) in got["wsd"].items():
        data = bytes.fromhex(head)
        kind = by_ip[ip].get("hostile_kind")
        if kind == "garbage":
            assert not data.startswith(b"<?xml")
        elif kind is None:
            assert data.startswith(b"<?xml")


def test_every_device_answers_its_tcp_services(lab, in_scanner_ns) -> None:  # type: ignore[no-untyped-def]
    plan = json.loads(Path(lab.plan).read_text())
    ports = {"http": 80, "rtsp": 554, "hik_sdk": 8000, "dahua_sdk": 37777, "telnet": 23, "ssh": 22, "https": 443}
    targets = sorted({(e["ip"], p) for e in plan["devices"] for s, p in ports.items() if s in e["services"]})
    script = (
        "import asyncio, json, sys\n"
        "async def one(ip, port):\n"
        "    try:\n"
        "        r, w = await asyncio.wait_for(asyncio.open_connection(ip, port), 2)\n"
        "        w.close()\n"
        "        return None\n"
        "    except Exception as e:\n"
        "        return f'{ip}:{port} {type(e).__name__}'\n"
        "async def main():\n"
        "    t = json.loads(sys.argv[1])\n"
        "    res = await asyncio.gather(*(one(ip, p) for ip, p in t))\n"
        "    print(json.dumps([x for x in res if x]))\n"
        "asyncio.run(main())\n")
    r = in_scanner_ns(["python3", "-c", script, json.dumps(targets)], timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == []
    # and nothing else is open: a camera without SSH refuses port 22
    closed = next(e for e in plan["devices"] if "ssh" not in e["services"])
    r = in_scanner_ns(["python3", "-c", script, json.dumps([[closed["ip"], 22]])], timeout=30)
    assert "ConnectionRefusedError" in r.stdout
