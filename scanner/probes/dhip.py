"""Dahua DHIP discovery: a 32-byte header (``20 00 00 00 'DHIP'``, body length little-endian at offsets
16 and 24) followed by JSON, over UDP 37810 (multicast 239.255.255.251, or unicast to a host).

:func:`build_search` makes ``DHDiscover.search``; :func:`parse_dhip` reads a ``client.notifyDevInfo``
reply (also sent unprompted, which passive capture picks up) into
``{"ip", "mac", "discovery": [{"protocol": "dhip", "fields": {...}}]}``. Field names are the device's own
(DeviceType, DeviceClass, Manufacturer, Vendor, SerialNo, Version, MachineName, HttpPort, Port,
IPv4Address.IPAddress flattened as IPAddress, ...). A relabel shows as Vendor "Private"/"General".
"""

from __future__ import annotations

import json
import struct
from typing import Any

from scanner.evidence import normalize_mac
from scanner.probes.base import ProbeContext
from scanner.probes.http import parse_json

DHIP_PORT = 37810
DHIP_GROUP = "239.255.255.251"
MAGIC = b"DHIP"
HEADER = 32
MAX_DHIP = 32 * 1024


def build_search(mac: str = "") -> bytes:
    body = json.dumps({"method": "DHDiscover.search", "params": {"mac": mac, "uni": 1}}).encode() + b"\n"
    n = len(body)
    return b"\x20\x00\x00\x00" + MAGIC + b"\x00" * 8 + struct.pack("<I", n) + b"\x00" * 4 + \
        struct.pack("<I", n) + b"\x00" * 4 + body


def _scalar(v: Any) -> str | None:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float, str)):
        s = str(v).strip()
        return s[:512] if s else None
    return None


def parse_dhip(data: bytes) -> dict | None:
    """A DHIP datagram -> fragment with the device's own fields; None for searches and anything else."""
    try:
        if not isinstance(data, (bytes, bytearray)) or len(data) < HEADER + 2 or data[4:8] != MAGIC:
            return None
        data = bytes(data[:MAX_DHIP])
        declared = struct.unpack_from("<I", data, 16)[0]
        body = data[HEADER : HEADER + declared] if 0 < declared <= MAX_DHIP else data[HEADER:]
        start, end = body.find(b"{"), body.rfind(b"}")
        if start < 0 or end <= start:
            return None
        obj = parse_json(body[start : end + 1], MAX_DHIP)
        if not isinstance(obj, dict):
            return None
        if obj.get("method") == "DHDiscover.search":
            return None  # a search (ours or another client's), not a device
        params = obj.get("params")
        info = params.get("deviceInfo") if isinstance(params, dict) else None
        if not isinstance(info, dict):
            return None
        fields: dict[str, str] = {}
        for k, v in list(info.items())[:80]:
            if isinstance(v, dict):  # IPv4Address / IPv6Address: flatten one level
                if str(k).startswith("IPv6"):
                    continue
                for k2, v2 in list(v.items())[:16]:
                    s = _scalar(v2)
                    if s is not None and k2 not in fields:
                        fields[str(k2)[:64]] = s
                continue
            s = _scalar(v)
            if s is not None:
                fields[str(k)[:64]] = s
        mac_raw = obj.get("mac") or info.get("Mac") or ""
        if isinstance(mac_raw, str) and mac_raw and "mac" not in fields:
            fields["mac"] = mac_raw[:64]
        if not fields:
            return None
        out: dict[str, Any] = {"discovery": [{"protocol": "dhip", "fields": fields}]}
        ip = fields.get("IPAddress", "")
        if ip and ip != "0.0.0.0":
            out["ip"] = ip
        mac = normalize_mac(mac_raw) if isinstance(mac_raw, str) else None
        if mac:
            out["mac"] = mac
        return out
    except (struct.error, ValueError, TypeError, AttributeError):
        return None


async def probe(host: str, ctx: ProbeContext) -> dict:
    """Unicast DHDiscover.search to ``host``:37810 (or the scan's DHIP port)."""
    return await ctx.ask_host(host, (ctx.ports_for("dhip") or (DHIP_PORT,))[0], build_search(), parse_dhip)


async def discover(ctx: ProbeContext) -> list[dict]:
    """Multicast DHDiscover.search on ``ctx.interface`` -> one fragment per answering device."""
    return await ctx.ask_group(DHIP_GROUP, DHIP_PORT, build_search(), parse_dhip)
