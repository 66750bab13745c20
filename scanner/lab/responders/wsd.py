"""WS-Discovery (UDP 3702): Probe in, ProbeMatches out (the envelopes are built in :mod:`.onvif`)."""

from __future__ import annotations

from scanner.lab.responders import onvif
from scanner.lab.responders.base import Device

PORT = 3702
GROUP = "239.255.255.250"


def answer(dev: Device, data: bytes, addr: tuple[str, int]) -> bytes | None:
    if dev.spec.hostile_kind == "xmlbomb" and b"Probe" in data[:4096]:
        return onvif.xml_bomb().encode()
    parsed = onvif.parse_probe(data)
    if parsed is None:
        return None
    message_id, types = parsed
    if not onvif.wants_us(types):
        return None
    return onvif.probe_match(dev, message_id)
