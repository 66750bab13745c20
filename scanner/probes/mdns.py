"""mDNS / DNS-SD: a pure parser for mDNS packets (passive capture, pcap) and a zeroconf browse of the
camera-relevant service types on the named interface only.

:func:`parse_mdns` reads one packet with zeroconf's own bounded parser (``DNSIncoming``; a malformed
packet is "invalid", never an exception) and groups PTR/SRV/TXT/A records into format-1 ``mdns``
entries (type, name, hostname, port, txt) plus the address the records announce.
"""

from __future__ import annotations

import asyncio
from typing import Any

from scanner.probes.base import ProbeContext

MDNS_PORT = 5353
MAX_MDNS = 9000
MAX_TXT = 32

SERVICE_TYPES = (
    "_axis-video._tcp.local.", "_rtsp._tcp.local.", "_onvif._tcp.local.", "_psia._tcp.local.",
    "_http._tcp.local.", "_https._tcp.local.", "_hap._tcp.local.", "_homekit._tcp.local.",
    "_CGI._tcp.local.", "_dhnvr._tcp.local.", "_hikvision._tcp.local.", "_camera._tcp.local.",
    "_nvr._tcp.local.", "_workstation._tcp.local.", "_device-info._tcp.local.",
)


def _txt(raw: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    i = 0
    while i < len(raw) and len(out) < MAX_TXT:
        n = raw[i]
        item = raw[i + 1 : i + 1 + n]
        i += 1 + n
        if not item:
            continue
        k, _, v = item.partition(b"=")
        key = k.decode("utf-8", "replace")[:64]
        if key and key not in out:
            out[key] = v.decode("utf-8", "replace")[:512]
    return out


def parse_mdns(data: bytes) -> dict | None:
    """One mDNS packet -> ``{"mdns": [entries], "ip"?: announced IPv4, "hostname"?}``; None if nothing."""
    if not isinstance(data, (bytes, bytearray)) or not data or len(data) > MAX_MDNS:
        return None
    try:
        from zeroconf import DNSIncoming, DNSPointer, DNSService, DNSText, const

        msg = DNSIncoming(bytes(data))
        if not msg.valid:
            return None
        records = list(msg.answers())[:128]
    except Exception:
        return None
    services: dict[str, dict[str, Any]] = {}
    addresses: dict[str, str] = {}

    def svc(name: str) -> dict[str, Any]:
        if name not in services and len(services) < 32:
            parts = name.split(".", 1)
            services[name] = {"name": name, "type": parts[1] if len(parts) > 1 and parts[1].startswith("_") else ""}
        return services.get(name, {})

    try:
        for r in records:
            if isinstance(r, DNSPointer):
                if r.name.startswith("_services._dns-sd"):
                    continue
                e = svc(r.alias)
                if e is not None and not e.get("type"):
                    e["type"] = r.name
            elif isinstance(r, DNSService):
                e = svc(r.name)
                if e is not None:
                    e["hostname"] = r.server
                    e["port"] = r.port
            elif isinstance(r, DNSText):
                e = svc(r.name)
                if e is not None:
                    e["txt"] = _txt(r.text)
            elif r.type == const._TYPE_A:
                addr = getattr(r, "address", b"")
                if isinstance(addr, bytes) and len(addr) == 4:
                    addresses[r.name] = ".".join(str(b) for b in addr)
    except Exception:
        return None
    entries = [{k: v for k, v in e.items() if v not in ("", None, {})} for e in services.values() if e]
    out: dict[str, Any] = {}
    if entries:
        out["mdns"] = entries
    hosts = [e.get("hostname") for e in entries if e.get("hostname")]
    ip = next((addresses[h] for h in hosts if h in addresses), None) or next(iter(addresses.values()), None)
    if ip:
        out["ip"] = ip
    if not entries and addresses:
        host = next(iter(addresses))
        out["mdns"] = [{"hostname": host}]
    return out or None


MAX_NAMES = 256  # service instances asked for in one round (those in zeroconf's cache cost nothing)
MAX_PER_HOST = 16  # service entries kept for one address
RESOLVE_PARALLEL = 16  # names asked at once
RESOLVE_EXTRA = 1.5  # seconds the whole resolution may take after the browse (one name: 0.5 s per ask)


async def discover(ctx: ProbeContext) -> list[dict]:
    """Browse SERVICE_TYPES with zeroconf bound to ``ctx.interface``'s address for ``ctx.discover_wait``,
    then resolve the names found: from zeroconf's cache when the announcement carried SRV/TXT/A (most do),
    else by asking, RESOLVE_PARALLEL at a time, all within RESOLVE_EXTRA seconds. A host announcing hundreds
    of names costs that bounded time (and at most MAX_PER_HOST entries), never every other host's result."""
    src = ctx.interface_address()
    if not ctx.interface or not src:
        return []
    from zeroconf import IPVersion
    from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

    found: dict[tuple[str, str], None] = {}

    def on_change(zeroconf: Any, service_type: str, name: str, state_change: Any) -> None:
        if len(found) < 1024:
            found[(service_type, name)] = None

    azc = None
    results: dict[str, list[dict]] = {}

    def keep(service_type: str, name: str, info: Any) -> None:
        for ip in info.parsed_addresses(IPVersion.V4Only)[:1]:
            if not ctx.allowed(ip) or len(results.get(ip, ())) >= MAX_PER_HOST:
                continue
            txt = {(k.decode("utf-8", "replace") if isinstance(k, bytes) else str(k))[:64]:
                   (v.decode("utf-8", "replace") if isinstance(v, bytes) else "")[:512]
                   for k, v in list((info.properties or {}).items())[:MAX_TXT]}
            entry = {"type": service_type, "name": name, "hostname": info.server or "", "port": info.port,
                     "txt": txt}
            results.setdefault(ip, []).append({k: v for k, v in entry.items() if v not in ("", None, {})})

    try:
        azc = AsyncZeroconf(interfaces=[src], ip_version=IPVersion.V4Only)
        browser = AsyncServiceBrowser(azc.zeroconf, list(SERVICE_TYPES), handlers=[on_change])
        await asyncio.sleep(max(0.2, ctx.discover_wait))
        to_ask = []
        for service_type, name in list(found):
            info = AsyncServiceInfo(service_type, name)
            try:
                cached = info.load_from_cache(azc.zeroconf)
            except Exception:
                cached = False
            if cached and info.parsed_addresses(IPVersion.V4Only):
                keep(service_type, name, info)
            elif len(to_ask) < MAX_NAMES:
                to_ask.append((service_type, name, info))
        sem = asyncio.Semaphore(RESOLVE_PARALLEL)

        async def ask(service_type: str, name: str, info: Any) -> None:
            async with sem:
                try:
                    ok = await asyncio.wait_for(info.async_request(azc.zeroconf, 500), 1.0)
                except (TimeoutError, OSError):
                    return
            if ok:
                keep(service_type, name, info)

        if to_ask:
            tasks = [asyncio.create_task(ask(*job)) for job in to_ask]
            _done, pending = await asyncio.wait(tasks, timeout=RESOLVE_EXTRA)
            for t in pending:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await browser.async_cancel()
    except asyncio.CancelledError:
        raise
    except Exception:
        pass
    finally:
        if azc is not None:
            try:
                await asyncio.wait_for(azc.async_close(), 2.0)
            except Exception:
                pass
    return [{"ip": ip, "mdns": entries} for ip, entries in results.items()]


# ------------------------------------------------------------------------------------------------
# unicast: a one-shot "legacy unicast" query (RFC 6762 5.1, 6.7) to a host beyond the attached segments,
# where no multicast reaches; the responder answers the asking port directly, echoing the query id


def build_query(query_id: int, types: tuple[str, ...] = SERVICE_TYPES) -> bytes:
    """A DNS query (id ``query_id``) with one PTR question per service type."""
    out = bytearray(query_id.to_bytes(2, "big") + b"\x00\x00" + len(types).to_bytes(2, "big") + b"\x00" * 6)
    for t in types:
        for label in t.rstrip(".").split("."):
            raw = label.encode("ascii")[:63]
            out += bytes([len(raw)]) + raw
        out += b"\x00\x00\x0c\x00\x01"  # root, PTR, IN
    return bytes(out)


def parse_unicast_reply(data: bytes, query_id: int) -> dict | None:
    """A legacy-unicast answer to ``query_id`` -> the ``parse_mdns`` fragment; None for anything else."""
    if not isinstance(data, (bytes, bytearray)) or len(data) < 12 or int.from_bytes(data[:2], "big") != query_id:
        return None
    if not data[2] & 0x80:  # a query, not a response
        return None
    return parse_mdns(data)


async def probe(host: str, ctx: ProbeContext) -> dict:
    """Ask ``host``:5353 (or the scan's ``--mdns-port``) for the camera-relevant service types by unicast
    -> ``{"mdns": [...]}`` or ``{}``."""
    import secrets

    qid = secrets.randbelow(0xFFFE) + 1
    port = (ctx.ports_for("mdns") or (MDNS_PORT,))[0]
    got = await ctx.ask_host(host, port, build_query(qid), lambda d: parse_unicast_reply(d, qid))
    return {"mdns": got["mdns"]} if got.get("mdns") else {}
