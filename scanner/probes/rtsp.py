"""RTSP: OPTIONS and DESCRIBE, unauthenticated.

:func:`parse_rtsp_response` turns raw reply bytes into a format-1 ``rtsp`` entry (status, headers as
received, realm reachable through ``WWW-Authenticate``, SDP body); :func:`build_request` makes the
request bytes. :func:`probe` sends OPTIONS then DESCRIBE on each RTSP port, reading each reply until its
head and Content-Length body are complete, bounded by ``ctx.max_bytes`` and one total deadline.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from scanner.probes.base import Deadline, ProbeContext, close_writer, decode_text, read_until
from scanner.probes.http import MAX_HEADERS, _fold_headers, split_head

USER_AGENT = "camsweep"
MAX_SDP = 16 * 1024

_STATUS = re.compile(rb"^RTSP/(\d)\.(\d)\s+(\d{3})(?:\s+([^\r\n]*))?")


def build_request(method: str, url: str, cseq: int, extra: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {url} RTSP/1.0", f"CSeq: {cseq}", f"User-Agent: {USER_AGENT}"]
    if method == "DESCRIBE":
        lines.append("Accept: application/sdp")
    for k, v in (extra or {}).items():
        lines.append(f"{k}: {v}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii", "replace")


def parse_rtsp_response(raw: bytes, *, port: int | None = 554, request: str = "") -> dict | None:
    """Raw RTSP reply -> ``{"port", "request", "status", "headers", "body"}``; None when it is not RTSP.

    Some servers answer an RTSP request with an HTTP status line (Axis ``HTTP/1.0 501``); that is kept
    too, with ``"protocol": "http"`` noted, since it is itself a tell.
    """
    try:
        parts = split_head(raw)
        if parts is None:
            return None
        first, pairs, body = parts
        m = _STATUS.match(first)
        proto = "rtsp"
        if not m:
            m = re.match(rb"^HTTP/(\d)\.(\d)\s+(\d{3})(?:\s+([^\r\n]*))?", first)
            if not m:
                return None
            proto = "http"
        hdrs = _fold_headers(pairs[: 4 * MAX_HEADERS])
        length = next((v for k, v in hdrs.items() if k.lower() == "content-length"), None)
        if length is not None and length.strip().isdigit():
            body = body[: int(length.strip())]
        entry: dict[str, Any] = {"port": port, "request": request, "status": int(m.group(3)), "headers": hdrs}
        reason = decode_text(m.group(4) or b"").strip()
        if reason:
            entry["reason"] = reason[:256]
        if proto != "rtsp":
            entry["protocol"] = proto
        if body:
            entry["body"] = decode_text(body[:MAX_SDP])
            if entry["body"].lstrip().startswith("v=0"):
                sdp = parse_sdp(entry["body"])
                if sdp:
                    entry["sdp"] = sdp  # session name, tool, origin: often the model or the RTSP stack
        return entry
    except Exception:
        return None


def parse_sdp(text: str) -> dict[str, Any]:
    """The few SDP lines that name a device: s= (session name), i=, o= user, a=tool, m= media."""
    out: dict[str, Any] = {}
    media: list[str] = []
    for line in (text or "")[:MAX_SDP].splitlines():
        if len(line) < 2 or line[1] != "=":
            continue
        k, v = line[0], line[2:].strip()
        if k == "s" and "session" not in out:
            out["session"] = v[:256]
        elif k == "i" and "info" not in out:
            out["info"] = v[:256]
        elif k == "o" and "origin" not in out:
            out["origin"] = v[:256]
        elif k == "a" and v.startswith("tool:") and "tool" not in out:
            out["tool"] = v[5:].strip()[:256]
        elif k == "m" and len(media) < 8:
            media.append(v[:128])
    if media:
        out["media"] = media
    return out


def _complete(buf: bytes) -> bool:
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False
    m = re.search(rb"(?im)^content-length\s*:\s*(\d{1,9})\s*$", buf[:end])
    if not m:
        return True
    return len(buf) >= end + 4 + int(m.group(1))


async def _exchange(host: str, port: int, ctx: ProbeContext, deadline: Deadline, out: list[dict]) -> None:
    """OPTIONS then DESCRIBE on one connection; replies are appended to ``out`` as they arrive."""
    reader, writer = await ctx.connect(host, port)
    h = f"[{host}]" if ":" in host else host
    url = f"rtsp://{h}:{port}/"
    try:
        for cseq, method in enumerate(("OPTIONS", "DESCRIBE"), 1):
            if deadline.expired:
                break
            writer.write(build_request(method, url, cseq))
            await asyncio.wait_for(writer.drain(), deadline.left() or 0.01)
            raw = await read_until(reader, deadline, ctx.max_bytes, _complete)
            if not raw:
                break
            entry = parse_rtsp_response(raw, port=port, request=f"{method} {url}")
            if entry is None:
                out.append({"port": port, "request": f"{method} {url}", "invalid": "not an RTSP reply",
                            "raw": decode_text(raw[:512])})
                break
            out.append(entry)
            if entry.get("protocol") == "http" or (reader.at_eof()):
                break
    finally:
        await close_writer(writer)


async def probe(host: str, ctx: ProbeContext) -> dict:
    """``{"rtsp": [...]}``: OPTIONS and DESCRIBE replies from each RTSP port that answered."""
    entries: list[dict] = []

    async def one(port: int) -> list[dict]:
        deadline = Deadline(ctx.timeout)
        out: list[dict] = []
        try:
            await asyncio.wait_for(_exchange(host, port, ctx, deadline, out), ctx.timeout + 0.5)
        except (TimeoutError, OSError, ConnectionError, ValueError):
            pass
        return out

    try:
        for res in await asyncio.gather(*(one(p) for p in ctx.ports_for("rtsp"))):
            entries.extend(res)
    except asyncio.CancelledError:
        raise
    except Exception:
        pass
    return {"rtsp": entries} if entries else {}
