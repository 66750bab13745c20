"""Passive listening (scapy AsyncSniffer on one named interface for N seconds) and pcap reading.

Both feed the same dissector, :func:`parse_packet`, which turns one frame into evidence fragments
(each with ``ip`` and/or ``mac``): ARP senders, DHCP client requests (option 60 vendor class, option 12
host name, option 50 requested address), mDNS answers, SSDP NOTIFY and M-SEARCH answers, WS-Discovery
Hello/ProbeMatch, SADP and DHIP announcements, SNMP GetResponses (from UDP 161), and, from captures, HTTP and RTSP responses sent from
the usual ports. :func:`merge_fragments` folds them into one record per device (by IP, then MAC).

A source MAC is attributed to a device only for frames that cannot have crossed a router (ARP, DHCP,
multicast and broadcast datagrams); a unicast TCP reply from another subnet carries the router's MAC.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
from collections.abc import Iterable
from typing import Any

from scanner.errors import CamsweepError
from scanner.evidence import normalize_mac
from scanner.probes.arp import parse_arp_reply
from scanner.probes.base import ProbeContext
from scanner.probes.dhip import parse_dhip
from scanner.probes.http import parse_http_response
from scanner.probes.mdns import parse_mdns
from scanner.probes.rtsp import parse_rtsp_response
from scanner.probes.sadp import parse_sadp
from scanner.probes.snmp import SNMP_PORT, parse_snmp
from scanner.probes.ssdp import parse_ssdp
from scanner.probes.wsd import parse_wsd

MAX_PACKETS = 500_000  # packets read from one capture file
MAX_PCAP_BYTES = 512 * 1024 * 1024
MAX_DEVICES = 65_536
MAX_SECONDS = 3600

BPF = ("arp or (udp and (port 67 or port 68 or port 5353 or port 1900 or port 3702 or port 37020 "
       "or port 37810 or src port 161)) or (ip[6:2] & 0x3fff != 0)")  # the last clause: IP fragments, reassembled later
MAX_FRAGMENTS = 20_000

HTTP_PORTS = {80, 8080, 8000, 8081, 88, 443}
RTSP_PORTS = {554, 8554}


class CaptureError(CamsweepError):
    """A capture that cannot be read or taken (unreadable file, no such interface, no privilege)."""


def _load_layers() -> None:
    """Register scapy's link and protocol layers: without them a capture's frames are read as Raw."""
    import scapy.layers.dhcp  # noqa: F401
    import scapy.layers.inet  # noqa: F401
    import scapy.layers.l2  # noqa: F401


def _mac_ok(mac: str | None) -> str | None:
    m = normalize_mac(mac) if mac else None
    if m is None or m in ("00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff") or int(m[:2], 16) & 1:
        return None
    return m


def _dhcp(pkt: Any) -> dict | None:
    from scapy.layers.dhcp import BOOTP, DHCP

    bootp = pkt[BOOTP]
    if bootp.op != 1:  # only the client's own requests describe the client
        return None
    mac = _mac_ok(bytes(bootp.chaddr[:6]).hex()) if bootp.chaddr else None
    vendor = hostname = requested = ""
    if DHCP in pkt:
        for opt in pkt[DHCP].options[:64]:
            if not isinstance(opt, tuple) or len(opt) < 2:
                continue
            name, value = opt[0], opt[1]
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            if name == "vendor_class_id":
                vendor = str(value)[:512]
            elif name == "hostname":
                hostname = str(value)[:256]
            elif name == "requested_addr":
                requested = str(value)
    frag: dict[str, Any] = {}
    if mac:
        frag["mac"] = mac
    ip = bootp.ciaddr if bootp.ciaddr not in ("0.0.0.0", None) else requested
    if ip and ip != "0.0.0.0":
        frag["ip"] = str(ip)
    dhcp = {k: v for k, v in (("vendor_class", vendor), ("hostname", hostname)) if v}
    if dhcp:
        frag["dhcp"] = dhcp
    return frag if (frag.get("mac") or frag.get("ip")) else None


def parse_packet(pkt: Any) -> list[dict]:
    """One scapy packet -> evidence fragments (possibly none). Never raises."""
    try:
        return _parse_packet(pkt)
    except Exception:
        return []


def _parse_packet(pkt: Any) -> list[dict]:
    from scapy.layers.dhcp import BOOTP
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import ARP, Ether

    src_mac = _mac_ok(pkt[Ether].src) if Ether in pkt else None
    if ARP in pkt:
        a = pkt[ARP]
        frag = parse_arp_reply(a.psrc, a.hwsrc)
        return [frag] if frag else []
    if IP not in pkt:
        return []
    ip = pkt[IP]
    src = str(ip.src)
    try:
        dst = ipaddress.IPv4Address(str(ip.dst))
        link_local_dst = dst.is_multicast or str(dst) == "255.255.255.255" or str(dst).endswith(".255")
    except ValueError:
        link_local_dst = False
    if UDP in pkt:
        udp = pkt[UDP]
        if BOOTP in pkt:
            f = _dhcp(pkt)
            return [f] if f else []
        payload = bytes(udp.payload)[:65536]
        ports = {udp.sport, udp.dport}
        frag: dict[str, Any] | None = None
        if 5353 in ports:
            frag = parse_mdns(payload)
            if frag is not None:
                frag = dict(frag)
                frag["ip"] = src  # the sender, not whatever A record it relays
        elif 1900 in ports:
            p = parse_ssdp(payload)
            if p and p["kind"] != "byebye" and not payload.startswith(b"M-SEARCH"):
                frag = {"ip": src, "ssdp": [{"headers": p["headers"]}]}
        elif 3702 in ports:
            p2 = parse_wsd(payload)
            if p2 and p2.get("wsd"):
                frag = {"ip": src, "wsd": p2["wsd"]}
        elif 37020 in ports:
            frag = parse_sadp(payload)
            if frag is not None:
                frag = {**frag, "ip": src} if src != "0.0.0.0" else frag
        elif 37810 in ports:
            frag = parse_dhip(payload)
            if frag is not None:
                frag = {**frag, "ip": src} if src != "0.0.0.0" else frag
        elif udp.sport == SNMP_PORT:  # an agent's GetResponse (anybody's manager asked: the sender is the device)
            frag = parse_snmp(payload)
            if frag is not None:
                frag = {**frag, "ip": src}
        if not frag:
            return []
        if link_local_dst and src_mac and "mac" not in frag:
            frag["mac"] = src_mac
        return [frag]
    if TCP in pkt:
        tcp = pkt[TCP]
        payload = bytes(tcp.payload)[:65536]
        if not payload:
            return []
        if tcp.sport in RTSP_PORTS and payload.startswith(b"RTSP/"):
            e = parse_rtsp_response(payload, port=tcp.sport)
            return [{"ip": src, "rtsp": [e]}] if e else []
        if tcp.sport in HTTP_PORTS and payload.startswith(b"HTTP/"):
            e = parse_http_response(payload, port=tcp.sport, tls=False, path="")
            if e:
                e.pop("path", None)
                return [{"ip": src, "http": [e]}]
    return []


_LIST_KEYS = ("http", "rtsp", "wsd", "ssdp", "mdns", "tls", "banners", "discovery")


def _add(into: dict[str, Any], frag: dict[str, Any]) -> None:
    for k, v in frag.items():
        if k in _LIST_KEYS:
            lst = into.setdefault(k, [])
            for item in v:
                if item not in lst and len(lst) < 32:
                    lst.append(item)
        elif k == "dhcp":
            d = into.setdefault("dhcp", {})
            for k2, v2 in v.items():
                d.setdefault(k2, v2)
        elif k not in into:
            into[k] = v


def merge_fragments(frags: Iterable[dict]) -> list[dict]:
    """Fold fragments into one record per device: by IP; MAC-only fragments join the IP with that MAC."""
    by_ip: dict[str, dict[str, Any]] = {}
    by_mac_only: dict[str, dict[str, Any]] = {}
    for f in frags:
        ip, mac = f.get("ip"), f.get("mac")
        if ip:
            if ip not in by_ip and len(by_ip) >= MAX_DEVICES:
                continue
            _add(by_ip.setdefault(ip, {"ip": ip}), f)
        elif mac:
            if mac not in by_mac_only and len(by_mac_only) >= MAX_DEVICES:
                continue
            _add(by_mac_only.setdefault(mac, {"mac": mac}), f)
    mac_to_ip = {r["mac"]: ip for ip, r in by_ip.items() if r.get("mac")}
    out = list(by_ip.values())
    for mac, rec in by_mac_only.items():
        if mac in mac_to_ip:
            _add(by_ip[mac_to_ip[mac]], rec)
        else:
            out.append(rec)
    return out


def _is_fragment(pkt: Any) -> bool:
    from scapy.layers.inet import IP

    if IP not in pkt:
        return False
    ip = pkt[IP]
    return bool(ip.frag) or bool(int(ip.flags) & 1)


def _reassemble(fragments: list[Any]) -> list[Any]:
    """Whole datagrams from IP fragments (any order); incomplete or overlapping ones are dropped."""
    from scapy.compat import raw
    from scapy.layers.inet import IP
    from scapy.layers.l2 import Ether

    groups: dict[tuple, list[Any]] = {}
    for p in fragments:
        ip = p[IP]
        groups.setdefault((ip.src, ip.dst, ip.id, ip.proto), []).append(p)
    out: list[Any] = []
    for (src, dst, _id, proto), parts in list(groups.items())[:4096]:
        try:
            parts.sort(key=lambda q: q[IP].frag)
            data = bytearray()
            complete = False
            for q in parts:
                ip = q[IP]
                if ip.frag * 8 != len(data):
                    break  # a gap or an overlap
                header = ip.ihl * 4
                data += raw(ip)[header : ip.len] if ip.len else raw(ip)[header:]
                if len(data) > 65535:
                    break
                if not int(ip.flags) & 1:
                    complete = True
                    break
            if not complete:
                continue
            first = parts[0]
            whole = IP(raw(IP(src=src, dst=dst, proto=proto, ttl=first[IP].ttl) / bytes(data)))
            if Ether in first:
                whole = Ether(src=first[Ether].src, dst=first[Ether].dst) / whole
            out.append(whole)
        except Exception:
            continue
    return out


def read_pcap(path: str, *, max_packets: int = MAX_PACKETS) -> list[dict]:
    """A pcap or pcapng file -> merged device records. Raises CaptureError with a clear message."""
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise CaptureError(f"cannot read capture {path!r}: {exc.strerror or exc}") from None
    if size > MAX_PCAP_BYTES:
        raise CaptureError(f"capture {path!r} is larger than {MAX_PCAP_BYTES // (1024 * 1024)} MiB")
    _load_layers()
    from scapy.utils import PcapReader

    frags: list[dict] = []
    try:
        reader = PcapReader(path)
    except Exception as exc:
        raise CaptureError(f"{path!r} is not a pcap or pcapng capture ({exc})") from None
    try:
        n = 0
        fragments: list[Any] = []
        while n < max_packets:
            try:
                pkt = reader.read_packet()
            except EOFError:
                break
            except Exception:
                break  # a truncated or corrupt tail: keep what was read
            if pkt is None:
                break
            n += 1
            if _is_fragment(pkt):
                if len(fragments) < MAX_FRAGMENTS:
                    fragments.append(pkt)
                continue
            frags.extend(parse_packet(pkt))
        if fragments:
            frags.extend(f for pkt in _reassemble(fragments) for f in parse_packet(pkt))
    finally:
        try:
            reader.close()
        except Exception:
            pass
    return merge_fragments(frags)


async def capture(ctx: ProbeContext, seconds: float) -> list[dict]:
    """Listen on ``ctx.interface`` (only) for ``seconds``; returns merged device records."""
    if not ctx.interface:
        raise CaptureError("passive listening needs an interface (--interface); none was named")
    seconds = max(0.0, min(float(seconds), MAX_SECONDS))
    frags: list[dict] = []

    def on_packet(pkt: Any) -> None:
        if len(frags) < 1_000_000:
            frags.extend(parse_packet(pkt))

    try:
        _load_layers()
        from scapy.sendrecv import AsyncSniffer

        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        from scapy.sessions import IPSession  # reassembles fragmented datagrams (long ProbeMatches)

        sniffer = AsyncSniffer(iface=ctx.interface, filter=BPF, prn=on_packet, store=False, session=IPSession,
                               started_callback=lambda: loop.call_soon_threadsafe(ready.set))
        sniffer.start()
    except Exception as exc:
        raise CaptureError(f"cannot listen on {ctx.interface!r}: {exc}") from None
    try:
        try:  # the listening window starts once the socket is open, not when the thread was asked for
            await asyncio.wait_for(ready.wait(), 5.0)
        except TimeoutError:
            pass
        if not sniffer.running and getattr(sniffer, "exception", None):
            raise CaptureError(f"cannot listen on {ctx.interface!r}: {sniffer.exception}")
        await asyncio.sleep(seconds)
    finally:
        try:
            await asyncio.to_thread(sniffer.stop)
        except Exception:
            pass
    allowed = [f for f in frags if not f.get("ip") or ctx.allowed(f["ip"])]
    return merge_fragments(allowed)
