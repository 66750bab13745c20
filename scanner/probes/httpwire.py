"""A lean httpx transport for probing devices: one connection per request, asyncio streams, hard caps.

The probes keep httpx's API (requests, responses, digest authentication, ``httpx.MockTransport`` in
tests); only the wire part is replaced. httpx's default transport (httpcore on anyio) is built for
long-lived clients and connection pools; a scan makes thousands of short requests to devices it talks
to once. Measured in the lab (bench/scan.py's 250-device /24, ~4,000 requests), httpx over httpcore spent
2-6 ms of CPU per request, this transport ~0.6 ms, which is most of a full scan's CPU time.

What it does:
- HTTP/1.1 (and 1.0 answers), ``Connection: close``: every request has its own connection, so a hostile
  device cannot hold a pooled connection in a bad state;
- TLS with certificate checks off and old protocol versions allowed (the certificate is read by tls.py;
  cameras from 2012 speak TLS 1.0);
- the status line and headers capped at MAX_HEAD bytes and MAX_HEADERS lines, every read bounded by the
  request's read timeout; bodies are streamed as they arrive (Content-Length, chunked, or until the
  device closes) and the caller caps how much it reads (http.fetch);
- failures surface as httpx exceptions (ConnectError, ConnectTimeout, ReadTimeout, RemoteProtocolError).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
import warnings
from collections.abc import AsyncIterator
from typing import Any

import httpx

MAX_HEAD = 32 * 1024  # status line and headers
MAX_HEADERS = 128
MAX_CHUNK_LINE = 1024
READ = 65536
DEFAULT_TIMEOUT = 5.0


@functools.lru_cache(maxsize=1)
def client_ssl_context() -> ssl.SSLContext:
    """One TLS client context per process: no certificate or name checks, TLS 1.0 and up, any cipher."""
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    try:
        with warnings.catch_warnings():  # old cameras speak TLS 1.0; reading them is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            c.minimum_version = ssl.TLSVersion.TLSv1
        c.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        pass
    return c


def parse_head(head: bytes) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """(status, reason, header pairs) from a response head (status line and header lines, no blank line).
    Lenient about line endings (bare LF) and folded lines; raises ValueError for anything not HTTP."""
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    parts = lines[0].split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit() or len(parts[1]) != 3:
        raise ValueError("not an HTTP status line")
    status = int(parts[1])
    if status < 100:
        raise ValueError("bad HTTP status")
    reason = parts[2].strip() if len(parts) > 2 else b""
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and headers:  # obsolete line folding: part of the previous value
            name, value = headers[-1]
            headers[-1] = (name, value + b" " + line.strip())
            continue
        name, sep, value = line.partition(b":")
        name = name.strip()
        if not sep or not name or b" " in name:
            continue  # a broken line: skipped, as browsers do
        headers.append((name, value.strip()))
        if len(headers) > MAX_HEADERS:
            raise ValueError("too many headers")
    return status, reason, headers


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


class _Body(httpx.AsyncByteStream):
    """The response body as it arrives; closing it closes the connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rest: bytes,
                 length: int | None, chunked: bool, empty: bool, read_timeout: float | None,
                 request: httpx.Request) -> None:
        self.reader, self.writer, self.rest = reader, writer, rest
        self.length, self.chunked, self.empty = length, chunked, empty
        self.read_timeout = read_timeout
        self.request = request
        self.closed = False

    async def _read(self, n: int = READ) -> bytes:
        if self.rest:
            data, self.rest = self.rest[:n], self.rest[n:]
            return data
        try:
            return await asyncio.wait_for(self.reader.read(n), self.read_timeout)
        except TimeoutError:
            raise httpx.ReadTimeout("the device stopped sending", request=self.request) from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__, request=self.request) from None

    async def _line(self) -> bytes:
        buf = b""
        while b"\n" not in buf:
            data = await self._read(MAX_CHUNK_LINE)
            if not data:
                raise httpx.RemoteProtocolError("the body ended inside a chunk header", request=self.request)
            buf += data
            if len(buf) > MAX_CHUNK_LINE and b"\n" not in buf:
                raise httpx.RemoteProtocolError("a chunk header is too long", request=self.request)
        line, _, more = buf.partition(b"\n")
        self.rest = more + self.rest
        return line.strip()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self.empty:
            return
        if self.chunked:
            while True:
                size_text = (await self._line()).split(b";", 1)[0]
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise httpx.RemoteProtocolError("a bad chunk size", request=self.request) from None
                if size == 0:
                    return  # trailers are not read: the connection closes anyway
                while size > 0:
                    data = await self._read(min(size, READ))
                    if not data:
                        return  # the device closed mid-chunk: what came is kept
                    size -= len(data)
                    yield data
                await self._line()  # the CRLF after the chunk
        left = self.length
        while left is None or left > 0:
            data = await self._read(READ if left is None else min(left, READ))
            if not data:
                return
            if left is not None:
                left -= len(data)
            yield data

    async def aclose(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 0.5)


class ProbeTransport(httpx.AsyncBaseTransport):
    """See the module docstring. ``ssl_context`` defaults to :func:`client_ssl_context`."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.ssl_context = ssl_context

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        t = request.extensions.get("timeout") or {}
        connect_t = t.get("connect", DEFAULT_TIMEOUT)
        read_t = t.get("read", DEFAULT_TIMEOUT)
        url = request.url
        tls = url.scheme == "https"
        if url.scheme not in ("http", "https") or not url.host:
            raise httpx.UnsupportedProtocol(f"cannot fetch {url.scheme!r} URLs", request=request)
        port = url.port or (443 if tls else 80)
        body = await request.aread()
        lines = [request.method.encode() + b" " + (url.raw_path or b"/") + b" HTTP/1.1"]
        for k, v in request.headers.raw:
            if k.lower() not in (b"connection", b"keep-alive"):
                lines.append(k + b": " + v)
        lines.append(b"Connection: close")
        data = b"\r\n".join(lines) + b"\r\n\r\n" + body
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(url.host, port, ssl=(self.ssl_context or client_ssl_context()) if tls
                                        else None, ssl_handshake_timeout=connect_t if tls else None),
                connect_t)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"no connection to {url.host}:{port}", request=request) from None
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise httpx.ConnectError(f"{url.host}:{port}: {exc or type(exc).__name__}", request=request) from None
        try:
            writer.write(data)
            status, reason, headers, rest = await self._read_head(reader, read_t, request)
        except (OSError, ssl.SSLError) as exc:
            writer.close()
            raise httpx.WriteError(str(exc) or type(exc).__name__, request=request) from None
        except BaseException:
            writer.close()
            raise
        length_text = _header(headers, b"content-length")
        chunked = b"chunked" in (_header(headers, b"transfer-encoding") or b"").lower()
        length = None
        if length_text is not None and not chunked:
            try:
                length = max(0, int(length_text.split(b",")[0]))
            except ValueError:
                length = None
        empty = request.method == "HEAD" or status in (204, 304) or length == 0
        stream = _Body(reader, writer, rest, length, chunked, empty, read_t, request)
        return httpx.Response(status, headers=headers, stream=stream,
                              extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason})

    async def _read_head(self, reader: asyncio.StreamReader, read_t: float | None, request: httpx.Request
                         ) -> tuple[int, bytes, list[tuple[bytes, bytes]], bytes]:
        buf = b""
        while True:
            end, sep = buf.find(b"\r\n\r\n"), 4
            lf = buf.find(b"\n\n")
            if lf != -1 and (end == -1 or lf < end):
                end, sep = lf, 2
            if end != -1:
                try:
                    status, reason, headers = parse_head(buf[:end])
                except ValueError as exc:
                    raise httpx.RemoteProtocolError(str(exc), request=request) from None
                rest = buf[end + sep:]
                if 100 <= status < 200 and status != 101:  # 100 Continue and friends: the answer follows
                    buf = rest
                    continue
                return status, reason, headers, rest
            if len(buf) > MAX_HEAD:
                raise httpx.RemoteProtocolError("the response head is too long", request=request)
            try:
                data = await asyncio.wait_for(reader.read(READ), read_t)
            except TimeoutError:
                raise httpx.ReadTimeout("no answer", request=request) from None
            except (OSError, ssl.SSLError) as exc:
                raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from None
            if not data:
                if buf and b"\n" in buf:  # a head cut short by the close: take what is there
                    buf += b"\n\n"
                    continue
                raise httpx.RemoteProtocolError("the device closed the connection without an answer",
                                                request=request)
            buf += data


class _Cookies(httpx.Cookies):
    """httpx's cookie store, which reads a response's cookies only when it sets some: httpx builds a
    urllib request and response for every response it stores cookies from (~40 us each, 12,000 times in a
    250-device scan), though devices rarely set one. Answers that do are stored as before."""

    def extract_cookies(self, response: httpx.Response) -> None:
        headers = response.headers
        if "set-cookie" in headers or "set-cookie2" in headers:
            super().extract_cookies(response)


class ProbeClient(httpx.AsyncClient):
    """httpx's AsyncClient with the cookie store above (same requests, same answers)."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._cookies = _Cookies(self._cookies)

    @property  # type: ignore[override]
    def cookies(self) -> httpx.Cookies:
        return self._cookies

    @cookies.setter
    def cookies(self, cookies: httpx._types.CookieTypes) -> None:  # type: ignore[override]
        self._cookies = _Cookies(cookies)


__all__ = ["ProbeClient", "ProbeTransport", "client_ssl_context", "parse_head"]
