"""Unprompted traffic ("chatter") that real devices send and a passive listener can pick up.

Off unless the plan asks for it (``"chatter": SECONDS``; namespace mode only, since it is multicast and
broadcast). Every interval (with jitter, first round at a random point of the first interval, so that a
fleet does not send in one burst) each device sends what its profile's services would:

- a WS-Discovery ``Hello`` (239.255.255.250:3702), an SSDP ``NOTIFY ssdp:alive`` (:1900), an unprompted
  SADP ``ProbeMatch`` (:37020), a DHIP ``client.notifyDevInfo`` (239.255.255.251:37810) and an mDNS
  announcement (224.0.0.251:5353), each from the device's own socket for that protocol;
- a DHCPINFORM broadcast with its host name (option 12) and, where the maker is known to send one, its
  vendor class (option 60), e.g. ``AXIS,Network Camera,M3045-V,9.80.3.8``;
- one UDP datagram to an unused address of its subnet, which makes its kernel broadcast an ARP request
  from the device's own MAC (lab-notes 3c).

Builders are pure functions over the device; :func:`run` only schedules and sends.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
import struct
import uuid
from html import escape

from scanner.lab.responders import dhip, onvif, sadp, ssdp
from scanner.lab.responders.base import Device

WSD_GROUP, SSDP_GROUP, MDNS_GROUP, DHIP_GROUP = "239.255.255.250", "239.255.255.250", "224.0.0.251", "239.255.255.251"


def wsd_hello(dev: Device) -> bytes:
    types = "dn:NetworkVideoTransmitter tds:Device"
    scopes = " ".join(escape(s) for s in onvif.scopes(dev))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:wsadis="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
        'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl" '
        'xmlns:tds="http://www.onvif.org/ver10/device/wsdl">'
        f"<env:Header><wsadis:MessageID>urn:uuid:{uuid.uuid4()}</wsadis:MessageID>"
        "<wsadis:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</wsadis:To>"
        "<wsadis:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Hello</wsadis:Action>"
        f'<d:AppSequence InstanceId="{int(dev.boot_time)}" MessageNumber="1"/></env:Header>'
        f"<env:Body><d:Hello><wsadis:EndpointReference><wsadis:Address>{onvif.endpoint(dev)}</wsadis:Address>"
        f"</wsadis:EndpointReference><d:Types>{types}</d:Types><d:Scopes>{scopes}</d:Scopes>"
        f"<d:XAddrs>{onvif._xaddr(dev)}</d:XAddrs><d:MetadataVersion>10</d:MetadataVersion></d:Hello>"
        "</env:Body></env:Envelope>\n").encode()


def ssdp_notify(dev: Device) -> bytes:
    usn = ssdp._usn(dev)
    lines = ["NOTIFY * HTTP/1.1", "HOST: 239.255.255.250:1900", "CACHE-CONTROL: max-age=1800",
             f"LOCATION: {ssdp.location(dev)}", "NT: upnp:rootdevice", "NTS: ssdp:alive",
             f"SERVER: {ssdp.server(dev)}", f"USN: {usn}::upnp:rootdevice"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def sadp_hello(dev: Device) -> bytes | None:
    probe = b'<?xml version="1.0" encoding="utf-8"?><Probe><Uuid></Uuid><Types>inquiry</Types></Probe>'
    return sadp.answer(dev, probe, ("0.0.0.0", 0))


def dhip_notify(dev: Device) -> bytes | None:
    query = dhip.encode({"method": "DHDiscover.search", "params": {"uni": 1}})
    return dhip.answer(dev, query, ("0.0.0.0", 0))


def mdns_announce(dev: Device) -> bytes | None:
    from zeroconf import DNSIncoming, DNSOutgoing, DNSQuestion
    from zeroconf import const as C

    from scanner.lab.responders import mdns

    svcs = mdns.services(dev)
    if not svcs:
        return None
    q = DNSOutgoing(C._FLAGS_QR_QUERY)
    for stype, *_ in svcs:
        q.add_question(DNSQuestion(stype, C._TYPE_PTR, C._CLASS_IN))
    out = mdns.answer(dev, q.packets()[0], ("0.0.0.0", mdns.PORT))
    if isinstance(out, tuple):
        return out[0]
    return out if out and DNSIncoming(out).valid else None


def vendor_class(dev: Device) -> str | None:
    s = dev.spec
    if s.family == "axis":
        return f"AXIS,Network Camera,{s.model},{s.firmware}"
    if s.family == "printer" and (s.brand or "") == "HP":
        return "Hewlett-Packard JetDirect"
    if s.family == "linux":
        return "dhcpcd-9.4.1:Linux-6.1.0-18-amd64:x86_64:GenuineIntel"
    return None


def dhcp_inform(dev: Device) -> bytes:
    """A DHCPINFORM (RFC 2131) from a configured client: ciaddr set, options 53, 12, 60, 55."""
    mac = bytes.fromhex(dev.spec.mac.replace(":", ""))
    xid = random.getrandbits(32)
    head = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000, socket.inet_aton(dev.ip),
                       b"\0" * 4, b"\0" * 4, b"\0" * 4, mac + b"\0" * 10, b"", b"")
    opts = b"\x63\x82\x53\x63" + b"\x35\x01\x08"  # magic cookie, DHCPINFORM
    host = dev.spec.hostname.encode()[:63]
    opts += b"\x0c" + bytes([len(host)]) + host
    vc = vendor_class(dev)
    if vc:
        v = vc.encode()[:255]
        opts += b"\x3c" + bytes([len(v)]) + v
    opts += b"\x37\x04\x01\x03\x06\x0f" + b"\xff"
    return head + opts


def arp_bait(dev: Device) -> tuple[str, int]:
    """An address of the device's subnet that no lab host uses (the last before the broadcast)."""
    net = ipaddress.IPv4Network(f"{dev.ip}/{dev.prefixlen}", strict=False)
    target = net.broadcast_address - 1
    if str(target) == dev.ip:
        target -= 1
    return str(target), 9  # discard


def _udp(dev: Device, port: int = 0, *, broadcast: bool = False, iface: str = "eth0") -> socket.socket:
    """A datagram socket on the device's address (inside its namespace); SO_BINDTODEVICE for broadcast."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if broadcast:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode())
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(dev.ip))
    s.bind((dev.ip, port))
    s.setblocking(False)
    return s


def open_chatter_sockets(dev: Device, iface: str = "eth0") -> list[tuple[str, socket.socket]]:
    """(role, socket): a plain one (ARP bait) and a DHCP client one; call inside the device's namespace."""
    out = [("plain", _udp(dev))]
    try:
        out.append(("dhcp", _udp(dev, 68, broadcast=True, iface=iface)))
    except OSError:
        pass  # DHCP needs SO_BINDTODEVICE (CAP_NET_RAW) and port 68; the rest still works
    return out


def messages(dev: Device) -> list[tuple[str, bytes, tuple[str, int]]]:
    """(socket role, payload, destination) for one round of a device's chatter."""
    s = dev.spec
    out: list[tuple[str, bytes, tuple[str, int]]] = []
    if s.hostile_kind in ("garbage", "xmlbomb", "escape", "reset"):
        pass  # hostile ones stay quiet apart from ARP
    else:
        if s.has("wsd"):
            out.append(("wsd", wsd_hello(dev), (WSD_GROUP, 3702)))
        if s.has("ssdp"):
            out.append(("ssdp", ssdp_notify(dev), (SSDP_GROUP, 1900)))
        if s.has("sadp"):
            payload = sadp_hello(dev)
            if payload:
                out.append(("sadp", payload, ("239.255.255.250", 37020)))
        if s.has("dhip"):
            payload = dhip_notify(dev)
            if payload:
                out.append(("dhip", payload, (DHIP_GROUP, 37810)))
        if s.has("mdns"):
            payload = mdns_announce(dev)
            if payload:
                out.append(("mdns", payload, (MDNS_GROUP, 5353)))
        out.append(("dhcp", dhcp_inform(dev), ("255.255.255.255", 67)))
    out.append(("plain", b"\0", arp_bait(dev)))
    return out


async def run(dev: Device, interval: float, senders: dict) -> None:
    """Send a round every ``interval`` seconds (+-20 %), the first at a random point of the first interval.

    ``senders`` maps a role (``wsd``, ``ssdp``, ..., ``dhcp``, ``plain``) to an object with
    ``send(payload, dest)`` (the device's datagram responders)."""
    await asyncio.sleep(random.uniform(0, interval))
    while True:
        for role, payload, dest in messages(dev):
            sender = senders.get(role) or (None if role == "dhcp" else senders.get("plain"))
            if sender is not None:
                sender.send(payload, dest)
        await asyncio.sleep(interval * random.uniform(0.8, 1.2))
