"""TCP liveness for routed targets (where ARP cannot reach): knock on a few ports at once.

A completed connection or a refusal (RST) both prove the host is there; only silence does not. One SYN a
port, each bounded by ``ctx.connect_timeout``; nothing is read or sent on a connection that completes.
The engine's discovery (``scanner.discovery``) asks :func:`alive` of every routed target ICMP did not find.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from scanner.probes.base import ProbeContext


async def knock(host: str, port: int, ctx: ProbeContext) -> str:
    """``open``, ``refused`` or ``silent``."""
    try:
        _reader, writer = await ctx.connect(host, port)
    except ConnectionRefusedError:
        return "refused"
    except (TimeoutError, OSError):
        return "silent"
    writer.close()  # nothing to say: the close need not be waited for
    return "open"


async def alive(host: str, ctx: ProbeContext, ports: Iterable[int] | None = None) -> bool:
    """Whether any port answered (a connection or a refusal), all knocked at once; the ports are the
    context's ``liveness`` ports (the defaults, or what --ports made of them) unless named."""
    states = await asyncio.gather(*(knock(host, p, ctx) for p in (ctx.ports_for("liveness") if ports is None
                                                                    else ports)))
    return any(s != "silent" for s in states)
