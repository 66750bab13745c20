"""SSDP: M-SEARCH build/parse (and NOTIFY parse, for passive capture), UPnP description XML fetch/parse.

:func:`parse_ssdp` reads an M-SEARCH response or a NOTIFY into headers as received;
:func:`parse_description` reads the device description (manufacturer, modelName, modelNumber,
friendlyName, serialNumber, modelDescription, manufacturerURL, UDN, deviceType) with defusedxml.
:func:`discover` multicasts M-SEARCH on ``ctx.interface`` only; :func:`probe` sends a unicast M-SEARCH
to the host. Description URLs are fetched only when they point at the replying host itself.
"""

from __future__ import annotations

import asyncio
import re

from scanner.probes.base import ProbeContext, url_on_host
from scanner.probes.http import _fold_headers, fetch, split_head
from scanner.probes.safexml import find_local, local, parse_xml, text_of

SSDP_PORT = 1900
SSDP_GROUP = "239.255.255.250"
MAX_SSDP = 8 * 1024
MAX_DESCRIPTION = 64 * 1024
DESCRIBE_PARALLEL = 16  # description fetches at once after a multicast round

DESCRIPTION_KEYS = ("deviceType", "friendlyName", "manufacturer", "manufacturerURL", "modelDescription",
                    "modelName", "modelNumber", "modelURL", "serialNumber", "UDN", "presentationURL")


def build_msearch(st: str = "ssdp:all", mx: int = 1, host: str = SSDP_GROUP) -> bytes:
    return (f"M-SEARCH * HTTP/1.1\r\nHOST: {host}:{SSDP_PORT}\r\nMAN: \"ssdp:discover\"\r\n"
            f"MX: {mx}\r\nST: {st}\r\nUSER-AGENT: camsweep UPnP/1.1\r\n\r\n").encode()


_FIRST = re.compile(rb"^(HTTP/1\.[01]\s+\d{3}|NOTIFY\s+\*\s+HTTP/1\.[01])", re.I)


def parse_ssdp(data: bytes) -> dict | None:
    """An M-SEARCH answer or a NOTIFY -> ``{"headers": {...}, "kind": "response"|"notify"}``; None else."""
    try:
        if not isinstance(data, (bytes, bytearray)) or not data:
            return None
        parts = split_head(bytes(data[:MAX_SSDP]), MAX_SSDP)
        if parts is None:
            return None
        first, pairs, _ = parts
        m = _FIRST.match(first)
        if not m:
            return None
        headers = _fold_headers(pairs)
        if not headers:
            return None
        kind = "notify" if first[:6].upper() == b"NOTIFY" else "response"
        if kind == "notify" and headers.get("NTS", headers.get("nts", "")).lower() == "ssdp:byebye":
            kind = "byebye"
        return {"headers": headers, "kind": kind}
    except Exception:
        return None


def parse_description(data: bytes | str) -> dict[str, str] | None:
    """UPnP device description XML -> the root device's identifying fields; None when unreadable."""
    root = parse_xml(data, MAX_DESCRIPTION)
    if root is None or local(root.tag) != "root":
        return None
    dev = find_local(root, "device")
    if dev is None:
        return None
    out: dict[str, str] = {}
    for key in DESCRIPTION_KEYS:
        # only the root device's own children, not embedded devices'
        el = next((c for c in dev if local(c.tag) == key), None)
        v = text_of(el, 512)
        if v:
            out[key] = v
    return out or None


def _location(headers: dict[str, str]) -> str:
    for k, v in headers.items():
        if k.lower() == "location":
            return v.strip()
    return ""


async def _describe(ip: str, entries: list[dict], ctx: ProbeContext) -> None:
    """Fetch each distinct description URL that points at ``ip`` (once) and attach it."""
    seen: dict[str, dict[str, str] | None] = {}
    async with ctx.http_client() as client:
        for e in entries:
            url = _location(e["headers"])
            if not url or not url_on_host(url, ip):
                continue
            if url not in seen:
                await ctx.throttle()
                try:
                    res = await asyncio.wait_for(fetch(client, "GET", url, MAX_DESCRIPTION), ctx.timeout)
                except TimeoutError:
                    res = None
                seen[url] = parse_description(res[2]) if res is not None and res[0] == 200 else None
                if len(seen) >= 4:
                    break
            if seen.get(url):
                e["description"] = seen[url]


def _entries(replies: list[tuple[bytes, tuple[str, int]]]) -> dict[str, list[dict]]:
    by_ip: dict[str, list[dict]] = {}
    for data, (ip, _port) in replies:
        parsed = parse_ssdp(data)
        if parsed and parsed["kind"] != "byebye":
            lst = by_ip.setdefault(ip, [])
            if parsed["headers"] not in [x["headers"] for x in lst] and len(lst) < 16:
                lst.append({"headers": parsed["headers"]})
    return by_ip


async def probe(host: str, ctx: ProbeContext) -> dict:
    """Unicast M-SEARCH to ``host``:1900 (or the scan's SSDP port) and its description -> ``{"ssdp": [...]}``."""
    try:
        replies = await asyncio.wait_for(
            ctx.exchange(build_msearch(host=host), (host, (ctx.ports_for("ssdp") or (SSDP_PORT,))[0]),
                         wait=min(ctx.timeout, ctx.discover_wait)),
            ctx.timeout + 0.5)
        entries = _entries([r for r in replies if r[1][0] == host]).get(host, [])
        if entries:
            await asyncio.wait_for(_describe(host, entries, ctx), ctx.timeout + 0.5)
    except asyncio.CancelledError:
        raise
    except Exception:
        return {}
    return {"ssdp": entries} if entries else {}


async def discover(ctx: ProbeContext) -> list[dict]:
    """Multicast M-SEARCH on ``ctx.interface`` -> ``{"ip", "ssdp": [...]}`` per answering host."""
    if not ctx.interface and ctx.datagram is None:
        return []
    try:
        replies = await asyncio.wait_for(
            ctx.exchange(build_msearch(), (SSDP_GROUP, SSDP_PORT), multicast=True), ctx.discover_wait + 2.0)
    except asyncio.CancelledError:
        raise
    except Exception:
        return []
    by_ip = _entries([r for r in replies if ctx.allowed(r[1][0])])
    sem = asyncio.Semaphore(DESCRIBE_PARALLEL)

    async def describe(ip: str, entries: list[dict]) -> None:
        async with sem:
            try:
                await asyncio.wait_for(_describe(ip, entries, ctx), ctx.timeout)
            except (TimeoutError, OSError):
                pass

    await asyncio.gather(*(describe(ip, entries) for ip, entries in by_ip.items()))
    return [{"ip": ip, "ssdp": entries} for ip, entries in by_ip.items()]
