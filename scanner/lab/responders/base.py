"""What every responder shares: the running device, digest authentication, bounded request reading,
and the hostile behaviours that wrap any TCP service.

A responder never trusts its peer: request heads are capped at :data:`MAX_HEAD` bytes, bodies at
:data:`MAX_BODY`, and every read has a timeout, so a scanner under test (or a stray client) cannot
make the lab hold more than a few kilobytes per connection or hang a connection forever.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import random
import re
import secrets
import socket
import struct
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from scanner.lab.profiles import DeviceSpec

MAX_HEAD = 16 * 1024
MAX_BODY = 256 * 1024
READ_TIMEOUT = 10.0
NONCE_TTL = 300.0
SLOW_DELAY = 30.0  # hostile "slow": seconds before the first byte
SLOW_MAX_CONNECTIONS = 64
CONNECTION_LIFETIME = 600.0  # no lab connection lives longer than this

# terminal escapes and markup for the hostile "escape" device: clear screen, set window title
# (OSC 0), a hyperlink (OSC 8), colours, a bell, and a script tag
ESCAPE_TEXT = (
    "<script>alert('camsweep')</script>\x1b[2J\x1b[H\x1b]0;pwned by camera\x07"
    "\x1b]8;;http://198.18.0.1/x\x1b\\click\x1b]8;;\x1b\\\x1b[31;5mNetwork Camera\x1b[0m\x07"
)


@dataclass
class Device:
    """A device as the service runs it: its spec plus where it answers and its admin account."""

    spec: DeviceSpec
    ip: str
    username: str
    password: str = field(repr=False)
    netns: str | None = None
    prefixlen: int = 32
    ports: dict[int, int] = field(default_factory=dict)  # real port -> port bound (loopback mode)
    wsd_max_delay: float = 0.5
    chatter: float = 0.0  # seconds between unprompted announcements (0: none; netns mode only)
    iface: str = "eth0"  # the device's interface inside its namespace
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(16), repr=False)
    boot_time: float = field(default_factory=time.time)

    def port(self, real: int) -> int:
        return self.ports.get(real, real)

    @property
    def hostile(self) -> str | None:
        return self.spec.hostile_kind

    @property
    def mac_plain(self) -> str:
        return self.spec.mac.replace(":", "").upper()


# --------------------------------------------------------------------------------------------
# digest authentication (RFC 7616; MD5 and SHA-256, qop=auth or none)

_AUTH_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def parse_auth_params(value: str) -> dict[str, str]:
    return {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
            for m in _AUTH_PARAM.finditer(value[:4096])}


def make_nonce(dev: Device) -> str:
    ts = f"{int(time.time()):x}"
    mac = hmac.new(dev.secret, ts.encode(), hashlib.sha256).hexdigest()[:24]
    return ts + mac  # 32 hex characters at today's timestamps


def nonce_fresh(dev: Device, nonce: str) -> bool:
    if len(nonce) < 25 or len(nonce) > 64:
        return False
    ts, mac = nonce[:-24], nonce[-24:]
    good = hmac.new(dev.secret, ts.encode(), hashlib.sha256).hexdigest()[:24]
    if not hmac.compare_digest(mac, good):
        return False
    try:
        return time.time() - int(ts, 16) < NONCE_TTL
    except ValueError:
        return False


def _h(algorithm: str, data: str) -> str:
    fn = hashlib.sha256 if algorithm.upper().startswith("SHA-256") else hashlib.md5
    return fn(data.encode("utf-8", "surrogateescape")).hexdigest()


def _strip_origin(uri: str) -> str:
    return "/" + uri.split("://", 1)[1].partition("/")[2] if "://" in uri else uri


def check_digest(dev: Device, header: str | None, method: str, realm: str, target: str | None = None) -> bool:
    """True when ``header`` (an Authorization value) carries a valid digest for this device's account
    (and, given the request's ``target``, for that resource: a digest is not replayable elsewhere)."""
    if not header or not header[:7].lower() == "digest ":
        return False
    p = parse_auth_params(header[7:])
    need = ("username", "realm", "nonce", "uri", "response")
    if any(k not in p for k in need):
        return False
    if p["username"] != dev.username or p["realm"] != realm or not nonce_fresh(dev, p["nonce"]):
        return False
    if target is not None and p["uri"] != target and _strip_origin(p["uri"]) != _strip_origin(target):
        return False
    alg = p.get("algorithm", "MD5")
    if alg.upper() not in ("MD5", "SHA-256"):
        return False
    ha1 = _h(alg, f"{dev.username}:{realm}:{dev.password}")
    ha2 = _h(alg, f"{method}:{p['uri']}")
    qop = p.get("qop")
    if qop:
        if qop != "auth" or "nc" not in p or "cnonce" not in p:
            return False
        want = _h(alg, f"{ha1}:{p['nonce']}:{p['nc']}:{p['cnonce']}:{qop}:{ha2}")
    else:
        want = _h(alg, f"{ha1}:{p['nonce']}:{ha2}")
    return hmac.compare_digest(want, p["response"].lower())


def digest_challenge(dev: Device, realm: str, *, qop: bool = True, stale: str | None = None,
                     algorithm: bool = False, opaque: bool = False) -> str:
    parts = [f'Digest realm="{realm}"']
    if qop:
        parts.append('qop="auth"')
    parts.append(f'nonce="{make_nonce(dev)}"')
    if opaque:
        parts.append(f'opaque="{hashlib.md5(realm.encode()).hexdigest()}"')
    if algorithm:
        parts.append("algorithm=MD5")
    if stale is not None:
        parts.append(f'stale="{stale}"')
    return ", ".join(parts)


def check_basic(dev: Device, header: str | None) -> bool:
    if not header or header[:6].lower() != "basic ":
        return False
    try:
        user, _, pw = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    return hmac.compare_digest(user.encode(), dev.username.encode()) and hmac.compare_digest(
        pw.encode(), dev.password.encode())


# --------------------------------------------------------------------------------------------
# requests (HTTP and RTSP share the shape)


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes = b""

    def header(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    @property
    def path(self) -> str:
        t = self.target
        if "://" in t:  # absolute URI (RTSP, proxies)
            t = "/" + t.split("://", 1)[1].partition("/")[2]
        return t.split("?", 1)[0] or "/"

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""


class BadRequest(Exception):
    """The peer sent something that is not a request of the expected protocol."""


_REQ_LINE = re.compile(rb"^([A-Z_]{1,20}) (\S{1,4096}) ((?:HTTP|RTSP)/\d\.\d)$")


async def read_request(reader: asyncio.StreamReader, *, timeout: float = READ_TIMEOUT,
                       first: bytes = b"") -> Request | None:
    """Read one request head and body; None at a clean end of stream; BadRequest otherwise."""
    buf = bytearray(first)
    deadline = asyncio.get_running_loop().time() + timeout
    while b"\r\n\r\n" not in buf and b"\n\n" not in buf:
        if len(buf) > MAX_HEAD:
            raise BadRequest("request head too large")
        # a first line that cannot be a request line: answer at once (nmap's binary probes)
        line_end = buf.find(b"\n")
        probe = bytes(buf if line_end < 0 else buf[:line_end]).rstrip(b"\r")
        if probe and (not re.match(rb"^[A-Z_]{1,20}( |$)", probe[:21]) or
                      (line_end >= 0 and not _REQ_LINE.match(probe))):
            raise BadRequest("not a request line")
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise BadRequest("timeout")
        try:
            chunk = await asyncio.wait_for(reader.read(4096), remaining)
        except TimeoutError as e:
            raise BadRequest("timeout") from e
        if not chunk:
            if buf.strip():
                raise BadRequest("truncated request")
            return None
        buf += chunk
    sep = b"\r\n\r\n" if b"\r\n\r\n" in buf else b"\n\n"
    head, _, rest = bytes(buf).partition(sep)
    lines = head.decode("latin-1").replace("\r\n", "\n").split("\n")
    m = _REQ_LINE.match(lines[0].encode("latin-1"))
    if not m:
        raise BadRequest("bad request line")
    method, target, version = (g.decode("latin-1") for g in m.groups())
    headers: list[tuple[str, str]] = []
    for line in lines[1:101]:
        name, colon, value = line.partition(":")
        if colon and name.strip():
            headers.append((name.strip(), value.strip()))
    req = Request(method, target, version, headers)
    length_s = req.header("Content-Length")
    if length_s:
        try:
            length = int(length_s)
        except ValueError as e:
            raise BadRequest("bad Content-Length") from e
        if length < 0 or length > MAX_BODY:
            raise BadRequest("body too large")
        body = bytearray(rest[:length])
        while len(body) < length:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise BadRequest("timeout")
            try:
                chunk = await asyncio.wait_for(reader.read(min(65536, length - len(body))), remaining)
            except TimeoutError as e:
                raise BadRequest("timeout") from e
            if not chunk:
                raise BadRequest("truncated body")
            body += chunk
        req.body = bytes(body)
    return req


def http_date(ts: float | None = None) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(ts))


# --------------------------------------------------------------------------------------------
# hostile behaviours and the TCP server wrapper

Handler = Callable[[Device, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def garbage(n: int, seed: int | None = None) -> bytes:
    rng = random.Random(seed) if seed is not None else None
    if rng is None:
        return os.urandom(n)
    return bytes(rng.getrandbits(8) for _ in range(n))


def reset_socket(writer: asyncio.StreamWriter) -> None:
    """Close with SO_LINGER 0: the peer sees a TCP RST instead of a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport = writer.transport
    transport.abort()


class SlowWriter:
    """Hold the answer back SLOW_DELAY seconds, then trickle it a byte at a time."""

    def __init__(self, writer: asyncio.StreamWriter, delay: float, step: float = 0.5) -> None:
        self._w = writer
        self._delay = delay
        self._step = step
        self._started = False

    async def send(self, data: bytes) -> None:
        if not self._started:
            await asyncio.sleep(self._delay)
            self._started = True
        for i in range(len(data)):
            self._w.write(data[i:i + 1])
            await self._w.drain()
            await asyncio.sleep(self._step)


async def run_connection(dev: Device, handler: Handler, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter, *, state: dict[str, int]) -> None:
    """Run one accepted connection under the device's hostile behaviour (if any) and a lifetime cap."""
    kind = dev.hostile
    try:
        if kind == "reset":
            try:  # let the request arrive, then reset (RST) instead of answering
                await asyncio.wait_for(reader.read(1024), 1.0)
            except (TimeoutError, ConnectionError):
                pass
            reset_socket(writer)
            return
        if kind == "garbage":
            for _ in range(4):
                writer.write(garbage(1024))
            await asyncio.wait_for(writer.drain(), 5.0)
            return
        if kind == "slow":
            if state.get("slow", 0) >= SLOW_MAX_CONNECTIONS:
                return
            state["slow"] = state.get("slow", 0) + 1
            try:
                await asyncio.wait_for(handler(dev, reader, writer), CONNECTION_LIFETIME)
            finally:
                state["slow"] -= 1
            return
        await asyncio.wait_for(handler(dev, reader, writer), CONNECTION_LIFETIME)
    except (TimeoutError, ConnectionError, BadRequest, OSError):
        pass
    except Exception as e:  # noqa: BLE001 - a responder bug must cost one connection, not the service
        _report_bug(dev, e)
    finally:
        if not writer.transport.is_closing():
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - closing a broken transport
                pass


_bugs_reported = 0


def _report_bug(dev: Device, e: Exception) -> None:
    """One line on stderr (the first 20 times): the lab keeps serving."""
    global _bugs_reported
    _bugs_reported += 1
    if _bugs_reported <= 20:
        print(f"camsweep-lab-service: responder error for {dev.ip} ({dev.spec.profile}): "
              f"{type(e).__name__}: {str(e)[:200]}", file=sys.stderr, flush=True)


async def start_tcp(dev: Device, sock: socket.socket, handler: Handler) -> asyncio.AbstractServer:
    state: dict[str, int] = {}

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await run_connection(dev, handler, reader, writer, state=state)
        except asyncio.CancelledError:  # the service is stopping: end quietly
            writer.transport.abort()

    return await asyncio.start_server(on_connect, sock=sock, limit=MAX_HEAD * 2)


async def send(dev: Device, writer: asyncio.StreamWriter, data: bytes) -> None:
    """Write an answer, or trickle it if the device is the slow one."""
    if dev.hostile == "slow":
        await SlowWriter(writer, SLOW_DELAY).send(data)
        return
    writer.write(data)
    await writer.drain()
