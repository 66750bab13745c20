"""WS-Discovery: Probe build, ProbeMatch/Hello parse; multicast discovery and unicast probe to host:3702.

Devices on other subnets answer only a unicast Probe, so :func:`probe` sends one straight to the host;
:func:`discover` multicasts to 239.255.255.250:3702 on ``ctx.interface`` only. Two Probes go out each
time (``dn:NetworkVideoTransmitter`` and ``tds:Device``): some recorders answer only the second.
:func:`parse_wsd` reads ProbeMatches, Hello and Bye messages in the 2005/04 and 2009/01 namespaces.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from scanner.probes.base import ProbeContext
from scanner.probes.safexml import find_local, iter_local, local, parse_xml, text_of

WSD_PORT = 3702
WSD_GROUP = "239.255.255.250"
MAX_WSD = 64 * 1024
MAX_MATCHES = 16

PROBE_TYPES = (
    ("dn:NetworkVideoTransmitter", "http://www.onvif.org/ver10/network/wsdl", "dn"),
    ("tds:Device", "http://www.onvif.org/ver10/device/wsdl", "tds"),
)

_PROBE = """<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" \
xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" \
xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:{prefix}="{ns}">\
<s:Header><a:MessageID>uuid:{mid}</a:MessageID>\
<a:To s:mustUnderstand="true">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>\
<a:Action s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action>\
</s:Header><s:Body><d:Probe><d:Types>{types}</d:Types></d:Probe></s:Body></s:Envelope>"""


def build_probe(types: str = "dn:NetworkVideoTransmitter", message_id: str | None = None) -> bytes:
    """A WS-Discovery Probe for one type (``dn:NetworkVideoTransmitter`` or ``tds:Device``)."""
    ns, prefix = next(((n, p) for t, n, p in PROBE_TYPES if t == types), PROBE_TYPES[0][1:])
    mid = message_id or str(uuid.uuid4())
    return _PROBE.format(prefix=prefix, ns=ns, mid=mid, types=types).encode()


def _split(text: str) -> list[str]:
    return [t[:1024] for t in text.split()[:64]]


def parse_wsd(data: bytes | str) -> dict | None:
    """ProbeMatches / Hello / Bye -> ``{"wsd": [entries], "message": kind, "relates_to": id}``.

    Each entry: ``types``, ``scopes``, ``xaddrs`` (lists, as received), ``endpoint`` (EPR address),
    ``metadata_version``, ``message`` (ProbeMatch, Hello or Bye). None for anything else.
    """
    root = parse_xml(data, MAX_WSD)
    if root is None or local(root.tag) != "Envelope":
        return None
    body = find_local(root, "Body")
    if body is None:
        return None
    kinds = {"ProbeMatch": "ProbeMatch", "Hello": "Hello", "Bye": "Bye", "ResolveMatch": "ResolveMatch"}
    entries: list[dict[str, Any]] = []
    kind = ""
    for el in body.iter():
        name = local(el.tag)
        if name not in kinds:
            continue
        kind = kind or kinds[name]
        epr = find_local(el, "EndpointReference")
        entry: dict[str, Any] = {
            "types": _split(text_of(find_local(el, "Types"), 8192)),
            "scopes": _split(text_of(find_local(el, "Scopes"), 32768)),
            "xaddrs": _split(text_of(find_local(el, "XAddrs"), 8192)),
            "endpoint": text_of(find_local(epr, "Address") if epr is not None else None, 512),
            "message": kinds[name],
        }
        mv = text_of(find_local(el, "MetadataVersion"), 32)
        if mv:
            entry["metadata_version"] = mv
        entries.append({k: v for k, v in entry.items() if v not in ("", [])})
        if len(entries) >= MAX_MATCHES:
            break
    if not entries:
        if any(local(e.tag) == "ProbeMatches" for e in body.iter()):
            return {"wsd": [], "message": "ProbeMatch"}
        return None
    out: dict[str, Any] = {"wsd": entries, "message": kind}
    rel = next(iter_local(root, "RelatesTo"), None)
    if rel is not None:
        out["relates_to"] = text_of(rel, 256)
    return out


def _dedupe(entries: list[dict]) -> list[dict]:
    seen: set[tuple] = set()
    out = []
    for e in entries:
        key = (e.get("endpoint"), tuple(e.get("types", ())), tuple(e.get("scopes", ())), tuple(e.get("xaddrs", ())))
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


async def _send_probes(ctx: ProbeContext, dest: tuple[str, int], multicast: bool, wait: float
                       ) -> list[tuple[bytes, tuple[str, int]]]:
    rounds = await asyncio.gather(*(ctx.exchange(build_probe(t), dest, wait=wait, multicast=multicast)
                                    for t, _, _ in PROBE_TYPES))
    return [r for replies in rounds for r in replies]


async def probe(host: str, ctx: ProbeContext) -> dict:
    """Unicast Probe to ``host``:3702 (or the scan's WS-Discovery port) -> ``{"wsd": [...]}`` (replies from other addresses are dropped)."""
    try:
        replies = await asyncio.wait_for(
            _send_probes(ctx, (host, (ctx.ports_for("wsd") or (WSD_PORT,))[0]), False, min(ctx.timeout, ctx.discover_wait)), ctx.timeout + 0.5)
    except asyncio.CancelledError:
        raise
    except Exception:
        return {}
    entries: list[dict] = []
    for data, (ip, _port) in replies:
        if ip != host:
            continue
        parsed = parse_wsd(data)
        if parsed:
            entries.extend(parsed["wsd"])
    entries = _dedupe(entries)
    return {"wsd": entries} if entries else {}


async def discover(ctx: ProbeContext) -> list[dict]:
    """Multicast Probe on ``ctx.interface`` -> one ``{"ip", "wsd": [...]}`` fragment per answering host."""
    if not ctx.interface and ctx.datagram is None:
        return []
    try:
        replies = await asyncio.wait_for(_send_probes(ctx, (WSD_GROUP, WSD_PORT), True, ctx.discover_wait),
                                         ctx.discover_wait + 2.0)
    except asyncio.CancelledError:
        raise
    except Exception:
        return []
    by_ip: dict[str, list[dict]] = {}
    for data, (ip, _port) in replies:
        if not ctx.allowed(ip):
            continue
        parsed = parse_wsd(data)
        if parsed and parsed["wsd"]:
            by_ip.setdefault(ip, []).extend(parsed["wsd"])
    return [{"ip": ip, "wsd": _dedupe(entries)} for ip, entries in by_ip.items()]
