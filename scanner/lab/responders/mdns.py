"""mDNS / DNS-SD (UDP 5353, multicast 224.0.0.251): answers PTR queries for the device's service types,
SRV/TXT for its instances and A for its host name, built with python-zeroconf's record classes.

Queries from port 5353 get a multicast answer (RFC 6762 section 6); queries from any other port are
"legacy unicast" and get a unicast answer that echoes the query id and questions (section 6.7).
"""

from __future__ import annotations

import socket

from zeroconf import DNSAddress, DNSIncoming, DNSOutgoing, DNSPointer, DNSQuestion, DNSService, DNSText
from zeroconf import const as C

from scanner.lab.responders.base import Device

PORT = 5353
GROUP = "224.0.0.251"
TTL = 120
ENUM = "_services._dns-sd._udp.local."
MANY_NAMES = 300  # the hostile "mdns_names" host's instances


def _txt(pairs: dict[str, str]) -> bytes:
    out = b""
    for k, v in pairs.items():
        item = f"{k}={v}".encode()[:255]
        out += bytes([len(item)]) + item
    return out or b"\x00"


def services(dev: Device) -> list[tuple[str, str, int, dict[str, str]]]:
    """(service type, instance label, port, TXT) for each service the device announces."""
    s = dev.spec
    mac = dev.mac_plain
    if s.hostile_kind == "mdns_names":  # hundreds of instances, each named only: nothing resolves them
        return [("_http._tcp.local.", f"cam-{i:03d}", dev.port(80), {"path": "/"}) for i in range(MANY_NAMES)]
    if s.family == "axis":
        label = f"AXIS {s.model} - {mac}"
        return [("_axis-video._tcp.local.", label, dev.port(80), {"macaddress": mac}),
                ("_http._tcp.local.", label, dev.port(80), {"path": "/"})]
    if s.family == "printer":
        maker = s.brand or "HP"
        ty = s.model or ""
        txt = {"txtvers": "1", "qtotal": "1", "rp": "ipp/print", "ty": ty, "product": f"({ty})",
               "usb_MFG": maker, "usb_MDL": ty.replace(maker + " ", "", 1), "UUID": s.uuid, "note": ""}
        return [("_ipp._tcp.local.", ty, dev.port(631), txt),
                ("_printer._tcp.local.", ty, 515, {"rp": "", "ty": ty}),
                ("_pdl-datastream._tcp.local.", ty, dev.port(9100), {"ty": ty}),
                ("_http._tcp.local.", ty, dev.port(80), {"path": "/"})]
    if s.family == "nas":
        build = (s.firmware or "").split("-")[-1]
        txt = {"vendor": "Synology", "model": s.model or "", "serial": s.serial or "", "version_major": "7",
               "version_minor": "2", "version_build": build, "admin_port": str(dev.port(5000)),
               "secure_admin_port": "5001", "mac_address": s.mac}
        return [("_http._tcp.local.", s.hostname, dev.port(5000), txt),
                ("_smb._tcp.local.", s.hostname, dev.port(445), {}),
                ("_device-info._tcp.local.", s.hostname, 0, {"model": "Xserve"})]
    if s.family == "hikvision":
        label = f"HIKVISION {s.model} - {(s.serial or '')[-9:]}"
        return [("_http._tcp.local.", label, dev.port(80), {"path": "/"})]
    return []


def many_names(qid: int, stype: str, n: int, *, echo_question: bool) -> bytes:
    """One response (under 9,000 bytes: RFC 6762 section 17) of ``n`` PTR records ``cam-NNN.<stype>``,
    names compressed, as zeroconf would split into many packets: the hostile "mdns_names" host."""
    import struct

    labels = b"".join(bytes([len(p)]) + p.encode() for p in stype.rstrip(".").split(".")) + b"\x00"
    out = bytearray(struct.pack("!HHHHHH", qid, 0x8400, 1 if echo_question else 0, n, 0, 0))
    out += labels  # at offset 12: the question's name, or the first answer's
    if echo_question:
        out += struct.pack("!HH", C._TYPE_PTR, C._CLASS_IN)
    for i in range(n):
        if i or echo_question:
            out += b"\xc0\x0c"
        inst = f"cam-{i:03d}".encode()
        rdata = bytes([len(inst)]) + inst + b"\xc0\x0c"
        out += struct.pack("!HHIH", C._TYPE_PTR, C._CLASS_IN, TTL * 37, len(rdata)) + rdata
    return bytes(out)


def answer(dev: Device, data: bytes, addr: tuple[str, int]) -> bytes | tuple[bytes, tuple[str, int]] | None:
    svcs = services(dev)
    if not svcs:
        return None
    msg = DNSIncoming(data)
    if not msg.valid or not msg.is_query() or not msg.questions:
        return None
    host = f"{dev.spec.hostname}.local."
    legacy = addr[1] != PORT or dev.netns is None  # loopback mode has no multicast: answer the asker
    out = DNSOutgoing(C._FLAGS_QR_RESPONSE | C._FLAGS_AA, multicast=not legacy, id_=msg.id if legacy else 0)
    answered = False
    listed: set[str] = set()
    for q in msg.questions[:16]:
        name = q.name.lower()
        if legacy:
            out.add_question(DNSQuestion(q.name, q.type, q.class_))
        for stype, label, port, txt in svcs:
            inst = f"{label}.{stype}"
            if name == ENUM and q.type in (C._TYPE_PTR, C._TYPE_ANY):
                if stype not in listed:
                    listed.add(stype)
                    out.add_answer_at_time(DNSPointer(ENUM, C._TYPE_PTR, C._CLASS_IN, TTL * 37, stype), 0)
                answered = True
            elif name == stype.lower() and q.type in (C._TYPE_PTR, C._TYPE_ANY):
                out.add_answer_at_time(DNSPointer(stype, C._TYPE_PTR, C._CLASS_IN, TTL * 37, inst), 0)
                if dev.spec.hostile_kind == "mdns_names":
                    answered = True
                    continue  # names only: no SRV, TXT or address, now or when asked
                out.add_additional_answer(DNSService(inst, C._TYPE_SRV, C._CLASS_IN_UNIQUE, TTL, 0, 0, port, host))
                out.add_additional_answer(DNSText(inst, C._TYPE_TXT, C._CLASS_IN_UNIQUE, TTL * 37, _txt(txt)))
                out.add_additional_answer(DNSAddress(host, C._TYPE_A, C._CLASS_IN_UNIQUE, TTL,
                                                     socket.inet_aton(dev.ip)))
                answered = True
            elif name == inst.lower() and dev.spec.hostile_kind != "mdns_names":
                if q.type in (C._TYPE_SRV, C._TYPE_ANY):
                    out.add_answer_at_time(DNSService(inst, C._TYPE_SRV, C._CLASS_IN_UNIQUE, TTL, 0, 0, port, host), 0)
                    answered = True
                if q.type in (C._TYPE_TXT, C._TYPE_ANY):
                    out.add_answer_at_time(DNSText(inst, C._TYPE_TXT, C._CLASS_IN_UNIQUE, TTL * 37, _txt(txt)), 0)
                    answered = True
        if name == host.lower() and q.type in (C._TYPE_A, C._TYPE_ANY):
            out.add_answer_at_time(DNSAddress(host, C._TYPE_A, C._CLASS_IN_UNIQUE, TTL, socket.inet_aton(dev.ip)), 0)
            answered = True
    if not answered:
        return None
    if dev.spec.hostile_kind == "mdns_names" and any(q.name.lower() == "_http._tcp.local." for q in msg.questions):
        data = many_names(msg.id if legacy else 0, "_http._tcp.local.", MANY_NAMES, echo_question=legacy)
        return data if legacy else (data, (GROUP, PORT))
    packets = out.packets()
    if not packets:
        return None
    if legacy:
        return packets[0]
    return packets[0], (GROUP, PORT)
