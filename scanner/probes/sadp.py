"""Hikvision SADP (Search Active Devices Protocol): XML inquiry over UDP 37020.

:func:`build_inquiry` makes the ``<Probe><Types>inquiry</Types></Probe>`` datagram that Hikvision's
SADP tool multicasts to 239.255.255.250:37020; :func:`parse_sadp` reads the ``<ProbeMatch>`` a device
answers with (also multicast unprompted as an announcement, which passive capture picks up) into
``{"ip", "mac", "discovery": [{"protocol": "sadp", "fields": {...}}]}``. Field names are the device's
own element names (DeviceDescription, DeviceSN, SoftwareVersion, DeviceType, MAC, IPv4Address,
CommandPort, HttpPort, DSPVersion, AnalogChannelNum, DigitalChannelNum, OEMInfo, ...).
"""

from __future__ import annotations

import uuid
from typing import Any

from scanner.evidence import normalize_mac
from scanner.probes.base import ProbeContext
from scanner.probes.safexml import leaf_fields, local, parse_xml

SADP_PORT = 37020
SADP_GROUP = "239.255.255.250"
MAX_SADP = 16 * 1024
# Salt, password-reset and verification codes are secrets of the device's owner, not device facts.
_DROP = {"salt", "resetcode", "verificationcode", "password", "passwordresetabilityinfo"}


def build_inquiry(probe_uuid: str | None = None) -> bytes:
    u = (probe_uuid or str(uuid.uuid4())).upper()
    return (f'<?xml version="1.0" encoding="utf-8"?><Probe><Uuid>{u}</Uuid>'
            f"<Types>inquiry</Types></Probe>").encode()


def parse_sadp(data: bytes | str) -> dict | None:
    """A SADP ``<ProbeMatch>`` (or ``<Hello>``-style announcement) -> fragment; None for anything else."""
    if isinstance(data, (bytes, bytearray)):
        raw = bytes(data[:MAX_SADP])
        start = raw.find(b"<")
        if start < 0:
            return None
        raw = raw[start:].rstrip(b"\x00\r\n ")
    elif isinstance(data, str):
        raw = data[:MAX_SADP].encode("utf-8", "replace")
    else:
        return None
    root = parse_xml(raw, MAX_SADP)
    if root is None or local(root.tag) not in ("ProbeMatch", "Hello", "Probe"):
        return None
    fields = {k: v for k, v in leaf_fields(root, 80, 512).items() if k.lower() not in _DROP}
    if local(root.tag) == "Probe" or fields.get("Types", "").lower() == "inquiry" and len(fields) <= 2:
        return None  # somebody else's inquiry, not a device
    if not any(k in fields for k in ("DeviceSN", "DeviceDescription", "MAC", "SoftwareVersion", "DeviceType")):
        return None
    fields.pop("Uuid", None)
    fields.pop("Types", None)  # "inquiry": the protocol, not the device
    out: dict[str, Any] = {"discovery": [{"protocol": "sadp", "fields": fields}]}
    ip = fields.get("IPv4Address", "")
    if ip and ip not in ("0.0.0.0",):
        out["ip"] = ip
    mac = normalize_mac(fields.get("MAC", ""))
    if mac:
        out["mac"] = mac
    return out


async def probe(host: str, ctx: ProbeContext) -> dict:
    """Unicast SADP inquiry to ``host``:37020 or the scan's SADP port (devices on other subnets answer this too)."""
    return await ctx.ask_host(host, (ctx.ports_for("sadp") or (SADP_PORT,))[0], build_inquiry(), parse_sadp)


async def discover(ctx: ProbeContext) -> list[dict]:
    """Multicast SADP inquiry on ``ctx.interface`` -> one fragment per answering device."""
    return await ctx.ask_group(SADP_GROUP, SADP_PORT, build_inquiry(), parse_sadp)
