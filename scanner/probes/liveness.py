"""TCP liveness for routed targets (where ARP cannot reach): connect to a few ports at once.

A completed connection or a refusal (RST) both prove the host is there; only silence does not.
:func:`probe` returns ``{"alive": true, "open_ports": [...]}`` or ``{}``; it never sends more than one
SYN per port and is bounded by ``ctx.connect_timeout``.
"""

from __future__ import annotations

import asyncio

from scanner.probes.base import ProbeContext, close_writer


async def _try(host: str, port: int, ctx: ProbeContext) -> str:
    try:
        _reader, writer = await ctx.connect(host, port)
    except ConnectionRefusedError:
        return "refused"
    except (TimeoutError, OSError):
        return "silent"
    await close_writer(writer)
    return "open"


async def probe(host: str, ctx: ProbeContext) -> dict:
    ports = ctx.ports_for("liveness")
    if not ports:
        return {}
    try:
        states = await asyncio.wait_for(asyncio.gather(*(_try(host, p, ctx) for p in ports)),
                                        ctx.connect_timeout + 1.0)
    except asyncio.CancelledError:
        raise
    except Exception:
        return {}
    open_ports = [p for p, s in zip(ports, states, strict=True) if s == "open"]
    if open_ports or "refused" in states:
        return {"alive": True, "open_ports": open_ports}
    return {}
