"""The lean probing transport (scanner/probes/httpwire.py) against small servers on 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import hashlib
import re
import ssl
import time

import httpx
import pytest

from scanner.probes import http
from scanner.probes.httpwire import ProbeTransport, parse_head
from tests.probes.test_io import LO, ctx_for, loopback_only, serve  # noqa: F401  (loopback_only: autouse)
from tests.probes.test_parsers import _self_signed

pytestmark = pytest.mark.timeout(60)


def client(**kw) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=ProbeTransport(), timeout=httpx.Timeout(1.0, connect=1.0), **kw)


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    m = re.search(rb"(?i)content-length: *(\d+)", head)
    return head + (await reader.readexactly(int(m.group(1))) if m else b"")


def answering(*replies: bytes, seen: list | None = None, close: bool = True):
    """A server that reads one request per reply and sends the reply as given (raw bytes)."""
    async def handler(reader, writer):
        try:
            for reply in replies:
                req = await read_request(reader)
                if seen is not None:
                    seen.append(req)
                writer.write(reply)
                await writer.drain()
            if not close:
                await asyncio.sleep(5)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
    return handler


# ---------------------------------------------------------------------------------------- parse_head

def test_parse_head_crlf_bare_lf_folding_and_broken_lines():
    status, reason, headers = parse_head(b"HTTP/1.1 401 Unauthorized\r\nServer: App-webs/\r\n"
                                         b"WWW-Authenticate: Digest realm=\"x\",\r\n nonce=\"n\"\r\n"
                                         b"no colon here\r\nBad Name: v\r\n: empty\r\nX-A:  b \r\n")
    assert (status, reason) == (401, b"Unauthorized")
    assert headers == [(b"Server", b"App-webs/"), (b"WWW-Authenticate", b'Digest realm="x", nonce="n"'),
                       (b"X-A", b"b")]
    assert parse_head(b"HTTP/1.0 200\nServer: thttpd") == (200, b"", [(b"Server", b"thttpd")])


@pytest.mark.parametrize("head", [b"SSH-2.0-dropbear", b"RTSP/1.0 200 OK", b"HTTP/1.1 2000 OK", b"HTTP/1.1 OK",
                                  b"", b"HTTP/1.1 099 x", b"HTTP/1.1 200 OK\r\n" + b"A: b\r\n" * 500])
def test_parse_head_refuses_what_is_not_http(head):
    with pytest.raises(ValueError):
        parse_head(head)


# ------------------------------------------------------------------------------------- framing

async def test_request_line_headers_and_content_length_body():
    seen: list[bytes] = []
    srv, port = await serve(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: Webs\r\n\r\nhelloEXTRA",
                                      seen=seen, close=False))
    try:
        async with client() as c:
            r = await c.post(f"http://{LO}:{port}/cgi-bin/x.cgi?action=get&a=1", content=b'{"a":1}',
                             headers={"Content-Type": "application/json"})
    finally:
        srv.close()
    assert r.status_code == 200 and r.content == b"hello" and r.headers["server"] == "Webs"
    req = seen[0]
    assert req.startswith(b"POST /cgi-bin/x.cgi?action=get&a=1 HTTP/1.1\r\n")
    assert b"\r\nConnection: close\r\n" in req and b"keep-alive" not in req.lower()
    assert f"\r\nHost: {LO}:{port}\r\n".encode() in req and req.endswith(b'\r\n\r\n{"a":1}')


async def test_chunked_body_until_eof_body_and_empty_bodies():
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\n6\r\npedia \r\n0\r\n\r\n"
    eof = b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\nall of it until the close"
    no_content = b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n"
    for reply, body in ((chunked, b"Wikipedia "), (eof, b"all of it until the close"), (no_content, b"")):
        srv, port = await serve(answering(reply))
        try:
            async with client() as c:
                r = await c.get(f"http://{LO}:{port}/")
        finally:
            srv.close()
        assert r.content == body, reply


async def test_continue_then_answer_and_a_head_cut_short_by_the_close():
    srv, port = await serve(answering(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    srv2, port2 = await serve(answering(b"HTTP/1.1 403 Forbidden\r\nServer: DNVRS-Webs"))
    try:
        async with client() as c:
            r = await c.get(f"http://{LO}:{port}/")
            r2 = await c.get(f"http://{LO}:{port2}/")
    finally:
        srv.close()
        srv2.close()
    assert (r.status_code, r.content) == (200, b"ok")
    assert (r2.status_code, r2.headers["server"]) == (403, "DNVRS-Webs")


async def test_digest_authentication_through_httpx_on_this_transport():
    """httpx.DigestAuth drives the 401 challenge and the second request over the lean transport."""
    user, password, realm, nonce = "admin", "s3cret", "IP Camera(C1234)", "abc123"
    tries: list[bytes] = []

    async def handler(reader, writer):
        try:
            req = await read_request(reader)
            tries.append(req)
            auth = re.search(rb"(?i)\r\nauthorization: digest (.*?)\r\n", req)
            if not auth:
                writer.write(b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm="' + realm.encode()
                             + b'", nonce="' + nonce.encode() + b'", qop="auth"\r\nContent-Length: 0\r\n\r\n')
            else:
                f = dict(re.findall(r'(\w+)="?([^",]*)"?', auth.group(1).decode()))
                ha1 = hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()
                ha2 = hashlib.md5(f"GET:{f['uri']}".encode()).hexdigest()
                want = hashlib.md5(f"{ha1}:{nonce}:{f['nc']}:{f['cnonce']}:auth:{ha2}".encode()).hexdigest()
                ok = f["response"] == want and f["username"] == user
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret" if ok else
                             b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        finally:
            writer.close()

    srv, port = await serve(handler)
    try:
        async with client() as c:
            good = await c.get(f"http://{LO}:{port}/ISAPI/System/deviceInfo", auth=httpx.DigestAuth(user, password))
            bad = await c.get(f"http://{LO}:{port}/ISAPI/System/deviceInfo", auth=httpx.DigestAuth(user, "wrong"))
    finally:
        srv.close()
    assert (good.status_code, good.content) == (200, b"secret")
    assert bad.status_code == 401
    assert len(tries) == 4  # challenge + answer, twice: each on its own connection


async def test_tls_self_signed(tmp_path):
    cert, key, serialization = _self_signed(cn="198.18.0.9", org="HIKVISION")
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    srv = await asyncio.start_server(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nyes"), LO, 0, ssl=sctx)
    port = srv.sockets[0].getsockname()[1]
    try:
        async with client() as c:
            r = await c.get(f"https://{LO}:{port}/")
    finally:
        srv.close()
    assert (r.status_code, r.content) == (200, b"yes")


# ------------------------------------------------------------------------------------- hostile devices

async def test_hostile_servers_fail_with_httpx_errors_within_their_time():
    async def endless_head(reader, writer):
        writer.write(b"HTTP/1.1 200 OK\r\n")
        try:
            for _ in range(1000):
                writer.write(b"X-Pad: " + b"a" * 1000 + b"\r\n")
                await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    async def silent(reader, writer):
        await asyncio.sleep(5)
        writer.close()

    async def closes(reader, writer):
        await reader.read(100)
        writer.close()

    async def ssh(reader, writer):
        writer.write(b"SSH-2.0-dropbear_2019.78\r\n\r\n")
        await writer.drain()
        writer.close()

    async def bad_chunks(reader, writer):
        await reader.read(1000)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"f" * 5000)
        await writer.drain()
        writer.close()

    cases = [(endless_head, httpx.RemoteProtocolError), (silent, httpx.ReadTimeout),
             (closes, httpx.RemoteProtocolError), (ssh, httpx.RemoteProtocolError),
             (bad_chunks, httpx.RemoteProtocolError)]
    for handler, error in cases:
        srv, port = await serve(handler)
        t0 = time.monotonic()
        try:
            async with client() as c:
                with pytest.raises(error):
                    r = await c.get(f"http://{LO}:{port}/")
                    await r.aread()
        finally:
            srv.close()
        assert time.monotonic() - t0 < 2.5, handler.__name__


async def test_refused_port_is_a_connect_error_and_fetch_returns_none():
    srv, port = await serve(answering())
    srv.close()
    await srv.wait_closed()
    async with client() as c:
        with pytest.raises(httpx.ConnectError):
            await c.get(f"http://{LO}:{port}/")
        assert await http.fetch(c, "GET", f"http://{LO}:{port}/", 1024) is None


async def test_fetch_caps_a_huge_body_on_the_wire():
    async def huge(reader, writer):
        await reader.read(1000)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n")
        try:
            for _ in range(2000):
                writer.write(b"x" * 65536)
                await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    srv, port = await serve(huge)
    try:
        async with client() as c:
            status, _headers, body = await http.fetch(c, "GET", f"http://{LO}:{port}/", 100_000)
    finally:
        srv.close()
    assert status == 200 and len(body) == 100_000


async def test_probe_context_uses_the_lean_transport_unless_one_is_injected():
    async with ctx_for().http_client() as c:
        assert isinstance(c._transport, ProbeTransport)
    mock = httpx.MockTransport(lambda r: httpx.Response(200))
    async with ctx_for(http_transport=mock).http_client() as c:
        assert c._transport is mock


async def test_fetch_keeps_the_head_and_bytes_of_a_body_that_stalls():
    """A device that sends its headers and part of the body, then nothing: what came is evidence."""
    async def stall(reader, writer):
        await reader.read(1000)
        writer.write(b"HTTP/1.1 200 OK\r\nServer: Hipcam\r\nContent-Length: 5000\r\n\r\n<title>IPCAM")
        await writer.drain()
        await asyncio.sleep(5)
        writer.close()

    srv, port = await serve(stall)
    t0 = time.monotonic()
    try:
        async with client() as c:
            got = await http.fetch(c, "GET", f"http://{LO}:{port}/", 64 * 1024)
    finally:
        srv.close()
    assert got is not None and time.monotonic() - t0 < 2.5
    status, headers, body = got
    assert status == 200 and ("Server", "Hipcam") in headers and body == b"<title>IPCAM"


async def test_probe_client_keeps_the_cookies_a_device_sets_and_sends_them_back(monkeypatch):
    """ProbeClient reads cookies only from answers that set some: those are stored and sent back as
    httpx would; an answer without Set-Cookie never reaches the cookie jar."""
    from scanner.probes.httpwire import ProbeClient

    seen: list[bytes] = []
    srv, port = await serve(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                                      seen=seen))
    srv2, port2 = await serve(answering(b"HTTP/1.1 200 OK\r\nSet-Cookie: session=abc; Path=/\r\nContent-Length: 0\r\n\r\n",
                                        seen=seen))
    srv3, port3 = await serve(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", seen=seen))
    jar_calls: list[str] = []
    real = httpx.Cookies.extract_cookies
    monkeypatch.setattr(httpx.Cookies, "extract_cookies",
                        lambda self, resp: (jar_calls.append(str(resp.url)), real(self, resp))[1])
    try:
        async with ProbeClient(transport=ProbeTransport(), timeout=httpx.Timeout(1.0, connect=1.0)) as c:
            await c.get(f"http://{LO}:{port}/plain")
            await c.get(f"http://{LO}:{port2}/login")
            await c.get(f"http://{LO}:{port3}/next")
            assert c.cookies.get("session") == "abc"
    finally:
        for s in (srv, srv2, srv3):
            s.close()
    assert jar_calls == [f"http://{LO}:{port2}/login"]
    assert b"cookie: session=abc" in seen[2].lower() and b"cookie" not in seen[0].lower()
