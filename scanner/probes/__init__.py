"""Protocol probes: one module per protocol, each a pure parser (``parse_*``) plus a thin I/O part.

Per-host probes: ``async def probe(host, ctx) -> dict`` (a format-1 fragment, never raises).
Segment-wide discovery: ``async def discover(ctx) -> list[dict]`` (fragments with ``"ip"``), sent only
on ``ctx.interface``. See base.py for :class:`ProbeContext` and docs/contracts.md for the seams.

Which modules run, and in what order, is the one registry, registry.py: ``HOST_PROBES`` (per host) and
``DISCOVERY_PROBES`` (segment-wide).
"""
