"""TCP banners: Hikvision's SDK port 8000, Dahua's 37777, telnet 23 (negotiation stripped) and ssh 22.

Every port gets nmap's NULL probe: connect, send nothing, read what the service volunteers within a
short wait. Telnet option negotiation is refused (WONT/DONT to every DO/WILL) so that the login
prompt follows, and the IAC sequences are stripped from the text. :func:`parse_banner` turns the bytes
into a format-1 ``banners`` entry: ``text`` when the bytes are text (kept as received, terminal
escapes included), ``hex`` always for binary replies (the Hikvision SDK port answers with
``00 00 00 10 00 00 00 ...``), and ``"open": true`` when the port accepted but stayed silent.

The scan's ``banner`` ports (``--ports`` entries that no other probe asks) get the same NULL probe, a
shorter wait, and, when they stay silent, one ``GET /``: a web server (or an RTSP server answering it)
on an unusual port becomes an ``http`` (or ``rtsp``) entry for that port.
"""

from __future__ import annotations

import asyncio
from typing import Any

from scanner.probes.base import Deadline, ProbeContext, close_writer, decode_text, is_mostly_text, read_until

MAX_BANNER = 4096
NULL_WAIT = 2.0  # seconds a silent service gets to speak (nmap waits 5-6 s; cameras answer at once)
# Dahua's private SDK port (37777, "dahua" ports) never speaks first: the client sends a DVRIP or DHIP
# request (Dahua's NetSDK; nmap's NULL probe gets nothing there). A short wait shows it open; waiting the
# full NULL_WAIT only delayed every Dahua host by 2 s.
SPEAKS_SECOND_WAIT = 0.3
EXTRA_NULL_WAIT = 1.0  # the same on the scan's extra ports, where a silent web server is the common case
EXTRA_AT_ONCE = 8  # extra ports connected at once on one host
MAX_REPLY = 64 * 1024  # read from the GET / on an extra port

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240

# Binary control ports (Hikvision SDK 8000, Dahua DVRIP 37777) are plain "tcp", as the corpus names them.
PORT_PROTOCOL = {23: "telnet", 22: "ssh", 21: "ftp"}


def strip_telnet(data: bytes) -> tuple[bytes, bytes]:
    """(text without IAC sequences, the refusals to send back for every DO/WILL seen)."""
    out = bytearray()
    reply = bytearray()
    i, n = 0, len(data)
    while i < n:
        b = data[i]
        if b != IAC:
            out.append(b)
            i += 1
            continue
        if i + 1 >= n:
            break
        cmd = data[i + 1]
        if cmd == IAC:  # escaped 255
            out.append(IAC)
            i += 2
        elif cmd in (DO, DONT, WILL, WONT):
            if i + 2 < n:
                opt = data[i + 2]
                if cmd == DO:
                    reply += bytes((IAC, WONT, opt))
                elif cmd == WILL:
                    reply += bytes((IAC, DONT, opt))
            i += 3
        elif cmd == SB:
            end = data.find(bytes((IAC, SE)), i + 2)
            i = n if end < 0 else end + 2
        else:
            i += 2
    return bytes(out), bytes(reply)


def parse_banner(data: bytes, *, port: int | None, protocol: str | None = None) -> dict | None:
    """Banner bytes -> ``{"protocol", "port", "text"?, "hex"?}``; None when nothing was received."""
    try:
        if not isinstance(data, (bytes, bytearray)) or not data:
            return None
        data = bytes(data[:MAX_BANNER])
        proto = protocol or PORT_PROTOCOL.get(port or 0, "tcp")
        if proto == "telnet" or (IAC in data[:3]):
            data, _ = strip_telnet(data)
            proto = "telnet" if protocol is None else proto
        entry: dict[str, Any] = {"protocol": proto, "port": port}
        if not data:
            entry["open"] = True
            entry["note"] = "negotiation only"
            return entry
        if is_mostly_text(data):
            text = decode_text(data).replace("\x00", "").strip("\r\n")
            if text:
                entry["text"] = text
        else:
            entry["hex"] = data[:256].hex()
        if "text" not in entry and "hex" not in entry:
            entry["hex"] = data[:256].hex()
        return entry
    except Exception:
        return None


async def _grab(host: str, port: int, ctx: ProbeContext, deadline: Deadline, *, extra: bool = False,
                found: dict | None = None, speaks_second: bool = False) -> dict | None:
    try:
        reader, writer = await ctx.connect(host, port)
    except (TimeoutError, OSError, ConnectionError):
        return None
    try:
        null_wait = SPEAKS_SECOND_WAIT if speaks_second else EXTRA_NULL_WAIT if extra else NULL_WAIT
        wait = Deadline(min(null_wait, deadline.left()))
        buf = bytearray()
        rounds = 0
        while not wait.expired and len(buf) < MAX_BANNER:
            try:
                chunk = await asyncio.wait_for(reader.read(MAX_BANNER - len(buf)), wait.left())
            except (TimeoutError, OSError, ConnectionError):
                break
            if not chunk:
                break
            buf += chunk
            if IAC in chunk and rounds < 6:  # telnet: refuse options so the prompt follows
                rounds += 1
                _, reply = strip_telnet(chunk)
                if reply:
                    writer.write(reply)
                    try:
                        await asyncio.wait_for(writer.drain(), wait.left() or 0.01)
                    except (TimeoutError, OSError, ConnectionError):
                        break
                continue
            text, _ = strip_telnet(bytes(buf))
            if text.strip() and (port != 23 or text.rstrip().endswith((b":", b">", b"#", b"$"))):
                break
        entry = parse_banner(bytes(buf), port=port)
        if entry is None:
            entry = {"protocol": PORT_PROTOCOL.get(port, "tcp"), "port": port, "open": True}
            if extra and found is not None and not deadline.expired:
                await _ask_get(host, port, reader, writer, ctx, deadline, found)
        return entry
    finally:
        await close_writer(writer)


async def _ask_get(host: str, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   ctx: ProbeContext, deadline: Deadline, found: dict) -> None:
    """One ``GET /`` on a silent extra port; an HTTP or RTSP reply goes into ``found`` (its entries)."""
    from scanner.probes.http import parse_http_response
    from scanner.probes.rtsp import parse_rtsp_response

    h = f"[{host}]" if ":" in host else host
    try:
        writer.write(f"GET / HTTP/1.0\r\nHost: {h}:{port}\r\nAccept: */*\r\n\r\n".encode())
        await asyncio.wait_for(writer.drain(), max(0.05, deadline.left()))
    except (TimeoutError, OSError, ConnectionError):
        return
    raw = await read_until(reader, deadline, min(ctx.max_bytes, MAX_REPLY))
    if raw.startswith(b"RTSP/"):
        entry = parse_rtsp_response(raw, port=port, request=f"GET rtsp://{h}:{port}/")
        if entry:
            found.setdefault("rtsp", []).append(entry)
        return
    entry = parse_http_response(raw, port=port, tls=False, path="/")
    if entry and "invalid" not in entry:
        found.setdefault("http", []).append(entry)


async def probe(host: str, ctx: ProbeContext) -> dict:
    """``{"banners": [...]}`` for the SDK, telnet and ssh ports (and the scan's extra ``banner`` ports) that
    accepted a connection; ``http``/``rtsp`` entries too for extra ports that answered a ``GET /``."""
    ports: list[int] = []
    for key in ("hikvision", "dahua", "telnet", "ssh"):
        for p in ctx.ports_for(key):
            if p not in ports:
                ports.append(p)
    extras = [p for p in ctx.ports_for("banner") if p not in ports]
    second = set(ctx.ports_for("dahua")) - set(ctx.ports_for("hikvision")) - set(ctx.ports_for("telnet")) \
        - set(ctx.ports_for("ssh"))
    deadline = Deadline(ctx.timeout)
    found: dict[str, list[dict]] = {}
    sem = asyncio.Semaphore(EXTRA_AT_ONCE)

    async def one(port: int, extra: bool) -> dict | None:
        try:
            if not extra:
                return await asyncio.wait_for(_grab(host, port, ctx, deadline, speaks_second=port in second),
                                              ctx.timeout + 0.5)
            async with sem:
                if deadline.expired:
                    return None
                return await asyncio.wait_for(_grab(host, port, ctx, deadline, extra=True, found=found),
                                              ctx.timeout + 0.5)
        except (TimeoutError, OSError):
            return None

    try:
        results = await asyncio.gather(*(one(p, False) for p in ports), *(one(p, True) for p in extras))
    except asyncio.CancelledError:
        raise
    except Exception:
        return {}
    banners = [r for r in results if r]
    out: dict = {"banners": banners} if banners else {}
    for key, entries in found.items():
        out[key] = sorted(entries, key=lambda e: e.get("port") or 0)
    return out
