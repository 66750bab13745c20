"""ARP sweep of a directly attached subnet with scapy ``srp`` on the named interface only.

:func:`sweep` refuses to run without an interface and caps the sweep at MAX_HOSTS addresses; the
answers become ``{"ip", "mac"}`` fragments (dropping any address ``ctx.allow`` rejects).
:func:`parse_arp_reply` is the pure part, shared with passive capture.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

from scanner.evidence import normalize_mac
from scanner.probes.base import ProbeContext

MAX_HOSTS = 4096


def parse_arp_reply(psrc: Any, hwsrc: Any) -> dict | None:
    """(sender IP, sender MAC) of an ARP packet -> ``{"ip", "mac"}``; None for junk or unset values."""
    try:
        ip = ipaddress.IPv4Address(str(psrc))
    except ValueError:
        return None
    mac = normalize_mac(str(hwsrc))
    if mac is None or mac in ("00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff") or ip.is_unspecified:
        return None
    return {"ip": str(ip), "mac": mac}


INTER = 0.0005  # seconds between requests: a burst of a few hundred frames overflows the queue (ENOBUFS)


class _SendErrors:
    """Counts scapy's send errors (its sender thread only logs them), so a lost burst can be re-sent."""

    def __init__(self) -> None:
        import logging

        class Handler(logging.Handler):
            def __init__(self, outer: _SendErrors) -> None:
                super().__init__(logging.ERROR)
                self.outer = outer

            def emit(self, record: logging.LogRecord) -> None:
                self.outer.count += 1

        self.count = 0
        self.handler = Handler(self)


def _srp(network: str, iface: str, timeout: float) -> list[tuple[str, str]]:
    import logging

    from scapy.layers.l2 import ARP, Ether
    from scapy.sendrecv import srp

    log = logging.getLogger("scapy.runtime")
    errors = _SendErrors()
    # scapy's sender thread logs a send error (e.g. ENOBUFS) with a traceback on stderr; camsweep's
    # stderr is for its own diagnostics. The errors are counted instead, and the sweep repeated once.
    saved = log.propagate, list(log.handlers), log.level
    log.propagate, log.handlers = False, [errors.handler]
    log.setLevel(logging.ERROR)
    try:
        found: dict[str, str] = {}
        for _attempt in range(2):
            errors.count = 0
            answered, _ = srp(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=network), iface=iface, timeout=timeout,
                              verbose=False, retry=0, inter=INTER)
            for _s, r in answered:
                found.setdefault(r.psrc, r.hwsrc)
            if not errors.count:
                break
        return list(found.items())
    finally:
        log.propagate, log.handlers = saved[0], saved[1]
        log.setLevel(saved[2])


async def sweep(network: str, ctx: ProbeContext) -> list[dict]:
    """ARP every address of ``network`` (an attached subnet) on ``ctx.interface``."""
    if not ctx.interface:
        return []
    try:
        net = ipaddress.IPv4Network(network, strict=False)
    except ValueError:
        return []
    if net.num_addresses > MAX_HOSTS:
        return []
    await ctx.throttle()
    try:
        pairs = await asyncio.wait_for(asyncio.to_thread(_srp, str(net), ctx.interface, ctx.discover_wait),
                                       ctx.discover_wait + 10.0)
    except asyncio.CancelledError:
        raise
    except Exception:
        return []
    out: dict[str, dict] = {}
    for psrc, hwsrc in pairs:
        frag = parse_arp_reply(psrc, hwsrc)
        if frag and ipaddress.IPv4Address(frag["ip"]) in net and ctx.allowed(frag["ip"]) and frag["ip"] not in out:
            out[frag["ip"]] = frag
    return list(out.values())


async def discover(ctx: ProbeContext, network: str | None = None) -> list[dict]:
    return await sweep(network, ctx) if network else []
