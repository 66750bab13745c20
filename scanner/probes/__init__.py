"""Protocol probes: one module per protocol, each a pure parser (``parse_*``) plus a thin I/O part.

Per-host probes: ``async def probe(host, ctx) -> dict`` (a format-1 fragment, never raises).
Segment-wide discovery: ``async def discover(ctx) -> list[dict]`` (fragments with ``"ip"``), sent only
on ``ctx.interface``. See base.py for :class:`ProbeContext` and docs/contracts.md for the seams.
"""

# Modules whose ``probe(host, ctx)`` the engine runs per live host, in a sensible order.
PER_HOST = ("http", "rtsp", "onvif", "wsd", "tls", "banner", "ssdp", "sadp", "dhip")
# Modules with ``discover(ctx)`` for a directly attached segment (``arp.sweep(network, ctx)`` for ARP).
SEGMENT = ("wsd", "ssdp", "mdns", "sadp", "dhip")
