"""RTSP (OPTIONS, DESCRIBE with digest, the rest refused) as each maker's camera answers.

Shapes from nmap-service-probes entries for real units and the corpus (lab-notes 5.7): Hikvision sends
no Server header, answers OPTIONS with a Public list and everything else with 401 and
``Digest realm="Hikvision"`` (``IP Camera(XXXXX)`` on 5.5+ firmware); Dahua says ``Server: Dahua
Rtsp Server`` (``Rtsp Server/3.0`` on 2.800+ firmware) and answers an HTTP GET with ``405 ... CSeq: 0``;
Axis answers HTTP-versioned requests with ``HTTP/1.0 501 Not Implemented`` and an ``Allow`` list.
"""

from __future__ import annotations

import asyncio

from scanner.lab.responders.base import (
    ESCAPE_TEXT,
    BadRequest,
    Device,
    Request,
    check_digest,
    digest_challenge,
    http_date,
    read_request,
    send,
)

PUBLIC = "OPTIONS, DESCRIBE, PLAY, PAUSE, SETUP, TEARDOWN, SET_PARAMETER, GET_PARAMETER"
MAX_REQUESTS = 50


def server_name(dev: Device) -> str | None:
    s = dev.spec
    if s.hostile_kind == "escape":
        return ESCAPE_TEXT
    if s.family == "dahua":
        try:
            major, minor = (int(x) for x in (s.firmware or "0.0").split(".")[:2])
        except ValueError:
            major, minor = 2, 0
        return "Rtsp Server/3.0" if (major, minor) >= (2, 800) and s.device_type != "nvr" else "Dahua Rtsp Server"
    if s.family == "uniview":
        return "Rtsp Server/2.0"
    if s.family == "hanwha":
        return "Wisenet RTSP Server"
    if s.family in ("ipro", "vivotek", "mobotix", "bosch", "huawei"):
        return None
    return None


def sdp(dev: Device) -> bytes:
    s = dev.spec
    return (f"v=0\r\no=- {int(dev.boot_time)} 1 IN IP4 {dev.ip}\r\ns=Media Presentation\r\n"
            f"e=NONE\r\nb=AS:5100\r\nt=0 0\r\na=control:*\r\n"
            f"m=video 0 RTP/AVP 96\r\nc=IN IP4 0.0.0.0\r\nb=AS:5000\r\na=recvonly\r\n"
            f"a=x-dimensions:1920,1080\r\na=control:trackID=1\r\na=rtpmap:96 H264/90000\r\n"
            f"a=fmtp:96 profile-level-id=420029; packetization-mode=1\r\n"
            f"a=Media_header:MEDIAINFO={(s.serial or '')[:16]};\r\n").encode()


def _resp(status: str, cseq: str | None, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    lines = [f"RTSP/1.0 {status}"]
    if cseq is not None:
        lines.append(f"CSeq: {cseq}")
    lines += [f"{k}: {v}" for k, v in headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "replace") + body


def answer(dev: Device, req: Request) -> bytes:
    s = dev.spec
    fam = s.family
    cseq = req.header("CSeq")
    server = server_name(dev)
    srv = [("Server", server)] if server else []
    realm = s.realm
    if req.version.startswith("HTTP/"):
        if fam == "axis":
            return (b"HTTP/1.0 501 Not Implemented\r\nAllow: DESCRIBE, GET_PARAMETER, PAUSE, PLAY, SETUP, "
                    b"SET_PARAMETER, TEARDOWN\r\nDate: " + http_date().encode() + b"\r\n\r\n")
        if fam == "dahua":
            return _resp("405 Method Not Allowed", None, srv + [("Content-Length", "0"), ("CSeq", "0")])
        return _resp("400 Bad Request", cseq, srv)
    if fam == "hikvision":
        if req.method == "OPTIONS" and cseq is not None:
            return _resp("200 OK", cseq, [("Public", PUBLIC), ("Date", http_date())])
        if cseq is None or not check_digest(dev, req.header("Authorization"), req.method, realm, req.target):
            head = [] if cseq is None else [("CSeq", cseq)]
            tail = [] if cseq is None else [("Date", http_date())]
            return _resp("401 Unauthorized", None, head + [
                ("WWW-Authenticate", digest_challenge(dev, realm, qop=False, stale="FALSE")),
                ("WWW-Authenticate", 'Basic realm="/"')] + tail)
    else:
        if req.method == "OPTIONS":
            extra = []
            if fam == "dahua" and server == "Rtsp Server/3.0":
                extra = [("WWW-Authenticate", digest_challenge(dev, realm, qop=False))]
            return _resp("200 OK", cseq, srv + [("Public", PUBLIC)] + extra)
        if not check_digest(dev, req.header("Authorization"), req.method, realm, req.target):
            return _resp("401 Unauthorized", cseq, srv + [
                ("WWW-Authenticate", digest_challenge(dev, realm, qop=False))])
    if req.method == "DESCRIBE":
        base = req.target if req.target.endswith("/") else req.target + "/"
        return _resp("200 OK", cseq, srv + [("Content-Type", "application/sdp"), ("Content-Base", base)], sdp(dev))
    if req.method in ("TEARDOWN", "GET_PARAMETER", "SET_PARAMETER"):
        return _resp("200 OK", cseq, srv)
    return _resp("455 Method Not Valid in This State", cseq, srv)


async def handle(dev: Device, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    for _ in range(MAX_REQUESTS):
        try:
            req = await read_request(reader)
        except BadRequest:
            await send(dev, writer, b"RTSP/1.0 400 Bad Request\r\n\r\n")
            return
        if req is None:
            return
        await send(dev, writer, answer(dev, req))
        if dev.hostile == "slow" or req.version.startswith("HTTP/"):
            return
