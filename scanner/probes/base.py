"""What every probe shares: the :class:`ProbeContext` the engine hands in, and bounded I/O helpers.

A probe is a pure parser (``parse_*``: bytes in, format-1 fragment out, never raises) plus a thin I/O
part (``probe(host, ctx)`` / ``discover(ctx)``) that only reads, bounded by bytes and by a total
deadline, and hands the bytes to the parser. Every byte leaves through one of three seams, so tests
(and the engine) can replace the network:

- HTTP: ``ctx.http_transport`` (an ``httpx.AsyncBaseTransport``, e.g. ``httpx.MockTransport``);
- TCP streams: ``ctx.open_stream(host, port)`` -> ``(asyncio.StreamReader, asyncio.StreamWriter)``;
- UDP datagrams: ``ctx.datagram(payload, dest, wait, multicast)`` -> list of ``(bytes, (ip, port))``.

Nothing here decides *what* to scan: the engine calls a probe only with a host it was asked to scan,
and segment-wide discovery sends only on ``ctx.interface`` (no interface, no multicast).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import fcntl
import ipaddress
import re
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:  # imported where used: discovery-only scans need no HTTP client
    import httpx

# Ports per protocol; the engine may pass its own (scanner/ports.py builds them from the command line).
DEFAULT_PORTS: Mapping[str, tuple[int, ...]] = {
    "http": (80, 8080, 8000),
    "https": (443, 8443),
    "rtsp": (554,),
    "onvif": (80,),
    "hikvision": (8000,),
    "dahua": (37777,),
    "telnet": (23,),
    "ssh": (22,),
    "snmp": (161,),
    "dvrip": (34567,),
    # unicast UDP probes (multicast discovery always uses the protocols' own ports)
    "wsd": (3702,),
    "ssdp": (1900,),
    "sadp": (37020,),
    "dhip": (37810,),
    "mdns": (5353,),  # unicast (legacy) mDNS questions to one host
    "banner": (),  # further TCP ports for the banner probe (scanner/ports.py: --ports beyond the probes')
    "liveness": (80, 443, 554, 8000, 37777, 8080, 22, 23),
}

MAX_BYTES = 64 * 1024  # at most this much read from one reply/body
MAX_DATAGRAM = 64 * 1024
MAX_REPLIES = 4096  # datagrams kept from one multicast round
MAX_EXCHANGE_BYTES = 4 * 1024 * 1024  # bytes kept from one exchange (replies beyond are dropped, not queued)
RCVBUF_MULTICAST = 2 * 1024 * 1024  # kernel receive buffer of a multicast round's socket
RCVBUF_UNICAST = 256 * 1024  # ... of a unicast exchange's socket (one host answers one question)

Credentials = tuple[str, str]
StreamOpener = Callable[[str, int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
# (payload, (dest ip, dest port), seconds to wait for replies, multicast?) -> [(reply bytes, (ip, port))]
DatagramExchange = Callable[[bytes, tuple[str, int], float, bool], Awaitable[list[tuple[bytes, tuple[str, int]]]]]


@dataclass
class ProbeContext:
    """Everything a probe needs from the engine. All fields have safe defaults.

    timeout: total seconds one probe may take on one host (a deadline, not a per-read timeout).
    connect_timeout: seconds for one TCP connect.
    max_bytes: bytes read at most from one reply or body.
    ports: ports per protocol (see DEFAULT_PORTS).
    credentials: host -> (user, password) or None. Only ever used when it returns something.
    http_transport: an httpx transport (MockTransport in tests), else the network.
    open_stream / datagram: injected raw transports (see module docstring), else the network.
    rate_limit: awaited before every connection or datagram the probe sends (the engine's limiter).
    interface: the only interface multicast/broadcast/capture may use; None = no multicast at all.
    source_address: the interface's IPv4 address (looked up from ``interface`` when not given).
    allow: ip -> bool; segment-wide discovery drops replies for which it is False (outside the targets).
    discover_wait: seconds a multicast discovery round listens for replies.
    snmp_auth: host -> SNMP communities and v3 users (``scanner.credentials.SnmpAuth``) or None.
    snmp_public: whether SNMP may also try the read-only ``public`` community (``--no-snmp-public``).
    """

    timeout: float = 4.0
    connect_timeout: float = 1.5
    max_bytes: int = MAX_BYTES
    ports: Mapping[str, tuple[int, ...]] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    credentials: Callable[[str], Credentials | None] | None = None
    http_transport: httpx.AsyncBaseTransport | None = None
    open_stream: StreamOpener | None = None
    datagram: DatagramExchange | None = None
    rate_limit: Callable[[], Awaitable[None]] | None = None
    interface: str | None = None
    source_address: str | None = None
    allow: Callable[[str], bool] | None = None
    discover_wait: float = 1.0
    snmp_auth: Callable[[str], Any] | None = None
    snmp_public: bool = True

    # ---- small accessors -------------------------------------------------------------------
    def ports_for(self, protocol: str) -> tuple[int, ...]:
        return tuple(self.ports.get(protocol, DEFAULT_PORTS.get(protocol, ())))

    def credentials_for(self, host: str) -> Credentials | None:
        if self.credentials is None:
            return None
        try:
            cred = self.credentials(host)
        except Exception:
            return None
        if not cred or not isinstance(cred, tuple) or len(cred) != 2 or not cred[0]:
            return None
        return (str(cred[0]), str(cred[1]))

    def allowed(self, ip: str) -> bool:
        if self.allow is None:
            return True
        try:
            return bool(self.allow(ip))
        except Exception:
            return False

    async def throttle(self) -> None:
        if self.rate_limit is not None:
            await self.rate_limit()

    def interface_address(self) -> str | None:
        """The IPv4 address multicast is sent from: source_address, else the interface's own."""
        if self.source_address:
            return self.source_address
        if self.interface:
            return interface_ipv4(self.interface)
        return None

    # ---- streams ----------------------------------------------------------------------------
    async def connect(self, host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A TCP connection bounded by connect_timeout (through the injected opener if any)."""
        await self.throttle()
        if self.open_stream is not None:
            return await asyncio.wait_for(self.open_stream(host, port), self.connect_timeout)
        return await asyncio.wait_for(
            asyncio.open_connection(host, port, limit=max(self.max_bytes, 2**16)), self.connect_timeout
        )

    # ---- datagrams --------------------------------------------------------------------------
    async def exchange(self, payload: bytes, dest: tuple[str, int], *, wait: float | None = None,
                       multicast: bool = False) -> list[tuple[bytes, tuple[str, int]]]:
        """Send one datagram, collect replies for ``wait`` seconds. Multicast needs ctx.interface."""
        wait = self.discover_wait if wait is None else wait
        await self.throttle()
        if self.datagram is not None:
            got = list(await self.datagram(payload, dest, wait, multicast))
            if not multicast:  # a unicast question is answered by the host asked, and no one else
                got = [r for r in got if same_host(r[1][0], dest[0])]
            return bounded_replies(got)
        if multicast and not self.interface:
            return []  # never multicast without an interface the user named
        return await udp_exchange(payload, dest, wait, interface=self.interface if multicast else None,
                                  source=self.interface_address() if multicast else None,
                                  max_bytes=min(self.max_bytes, MAX_DATAGRAM),
                                  stop_after=None if multicast else 1)

    async def ask_host(self, host: str, port: int, payload: bytes,
                       parse: Callable[[bytes], dict | None]) -> dict:
        """One unicast question to ``host``:``port``; the first reply from ``host`` that ``parse`` accepts
        (without its claimed ``ip``: the host asked is the address), or ``{}``. Never raises."""
        try:
            replies = await asyncio.wait_for(
                self.exchange(payload, (host, port), wait=min(self.timeout, self.discover_wait)),
                self.timeout + 0.5)
        except asyncio.CancelledError:
            raise
        except Exception:
            return {}
        for data, (ip, _port) in replies:
            if ip != host:
                continue
            parsed = parse(data)
            if parsed:
                parsed.pop("ip", None)  # the device's own claim stays in its fields
                return parsed
        return {}

    async def ask_group(self, group: str, port: int, payload: bytes,
                        parse: Callable[[bytes], dict | None]) -> list[dict]:
        """One multicast question on ``self.interface``; one fragment (with ``ip``) per device whose
        reply ``parse`` accepts, devices outside the targets dropped. Never raises."""
        if not self.interface and self.datagram is None:
            return []
        try:
            replies = await asyncio.wait_for(self.exchange(payload, (group, port), multicast=True),
                                             self.discover_wait + 2.0)
        except asyncio.CancelledError:
            raise
        except Exception:
            return []
        out: dict[str, dict] = {}
        for data, (ip, _port) in replies:
            if not self.allowed(ip) or ip in out:
                continue
            parsed = parse(data)
            if parsed:
                parsed["ip"] = ip
                out[ip] = parsed
        return list(out.values())

    # ---- HTTP -------------------------------------------------------------------------------
    def http_client(self, **kw: Any) -> httpx.AsyncClient:
        """An AsyncClient with certificate checks off (the certificate is captured by tls.py), on the lean
        probing transport (httpwire.py) unless a transport was injected."""
        import httpx

        from scanner.probes.httpwire import ProbeClient, ProbeTransport

        timeout = httpx.Timeout(self.timeout, connect=self.connect_timeout)
        return ProbeClient(transport=self.http_transport or ProbeTransport(), timeout=timeout,
                           follow_redirects=False, trust_env=False, **kw)


# ------------------------------------------------------------------------------------------------
# bounded reading


class Deadline:
    """A total time budget: ``left()`` seconds remain; ``expired`` once it is spent."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + max(0.0, seconds)

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.left() <= 0.0


async def read_until(reader: asyncio.StreamReader, deadline: Deadline, max_bytes: int,
                     done: Callable[[bytes], bool] | None = None) -> bytes:
    """Read until ``done(buffer)``, EOF, ``max_bytes`` or the deadline; returns what arrived."""
    buf = bytearray()
    while len(buf) < max_bytes:
        left = deadline.left()
        if left <= 0:
            break
        try:
            chunk = await asyncio.wait_for(reader.read(min(65536, max_bytes - len(buf))), left)
        except (TimeoutError, ConnectionError, OSError):
            break
        if not chunk:
            break
        buf += chunk
        if done is not None and done(bytes(buf)):
            break
    return bytes(buf[:max_bytes])


async def close_writer(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 0.5)


# Charsets a device may declare (HTTP Content-Type, <meta charset>) and have honoured: real text encodings,
# by Python's canonical codec name. Anything else (unicode_escape, raw_unicode_escape, utf-7, idna, punycode,
# the bytes-to-bytes codecs) would let the device choose how its bytes become text, lone surrogates
# included; it is ignored and the bytes read as UTF-8.
TEXT_CHARSETS = frozenset((
    "utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be", "ascii",
    *(f"iso8859-{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16)),
    *(f"cp{n}" for n in (437, 850, 852, 855, 857, 858, 860, 861, 862, 863, 864, 865, 866, 869, 874, 932, 949,
                         950, 1250, 1251, 1252, 1253, 1254, 1255, 1256, 1257, 1258)),
    "koi8-r", "koi8-u", "mac-roman", "mac-cyrillic", "gb2312", "gbk", "gb18030", "hz", "big5", "big5hkscs",
    "shift_jis", "shift_jis_2004", "shift_jisx0213", "euc_jp", "euc_jis_2004", "euc_jisx0213", "iso2022_jp",
    "iso2022_jp_1", "iso2022_jp_2", "iso2022_jp_3", "iso2022_kr", "euc_kr", "johab", "tis-620",
))


def text_charset(name: str | None) -> str | None:
    """The codec for a declared charset when it is a real text encoding (:data:`TEXT_CHARSETS`), else None."""
    if not name or len(name) > 40:
        return None
    try:
        codec = codecs.lookup(name.strip().strip("\"'")).name
    except (LookupError, ValueError, TypeError):
        return None
    return codec if codec in TEXT_CHARSETS else None


def decode_text(data: bytes, charset: str | None = None) -> str:
    """Bytes as text, as received: the declared charset if it is a text encoding (:func:`text_charset`)
    and decodes, else UTF-8 with replacement. The result never holds a lone surrogate."""
    codec = text_charset(charset) if charset else None
    if codec:
        try:
            return data.decode(codec)
        except (LookupError, UnicodeDecodeError):
            pass
    return data.decode("utf-8", errors="replace")


def is_mostly_text(data: bytes) -> bool:
    """Printable ASCII and white space, or valid UTF-8 text; binary (and random bytes) is not."""
    if not data:
        return True
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        printable = sum(1 for b in data if 32 <= b < 127 or b in (9, 10, 13, 27))
        return printable / len(data) >= 0.95
    good = sum(1 for c in text if c.isprintable() or c in "\t\r\n\x1b")
    return good / max(1, len(text)) >= 0.85


def parse_key_values(lines: Iterable[str], line: re.Pattern[str], max_items: int) -> dict[str, str]:
    """``key=value`` lines (as ``line`` reads a key and a value) -> map: the first occurrence of a key
    wins, values are cut to 1024 characters, at most ``max_items`` keys."""
    out: dict[str, str] = {}
    for text in lines:
        m = line.match(text)
        if m and m.group(1) not in out:
            out[m.group(1)] = m.group(2)[:1024]
            if len(out) >= max_items:
                break
    return out


# ------------------------------------------------------------------------------------------------
# UDP


SIOCGIFADDR = 0x8915


def interface_ipv4(name: str) -> str | None:
    """The IPv4 address of a named interface in the current network namespace, or None."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            packed = struct.pack("256s", name.encode()[:15])
            return socket.inet_ntoa(fcntl.ioctl(s.fileno(), SIOCGIFADDR, packed)[20:24])
    except (OSError, ValueError):
        return None


def same_host(a: str, b: str) -> bool:
    """Whether two address texts name the same address (``::ffff:1.2.3.4`` aside)."""
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return False


def url_on_host(url: str, host: str) -> bool:
    """Whether a URL a device handed over (an ONVIF XAddr, an SSDP LOCATION) is http(s) on that device's own
    address: a reply cannot send a probe to another host."""
    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and same_host(parts.hostname or "", host)
    except ValueError:
        return False


def bounded_replies(replies: list[tuple[bytes, tuple[str, int]]], max_bytes: int = MAX_DATAGRAM
                    ) -> list[tuple[bytes, tuple[str, int]]]:
    """At most MAX_REPLIES replies, each cut to ``max_bytes``, MAX_EXCHANGE_BYTES in all."""
    out: list[tuple[bytes, tuple[str, int]]] = []
    total = 0
    for data, addr in replies[:MAX_REPLIES]:
        data = data[:max_bytes]
        total += len(data)
        if total > MAX_EXCHANGE_BYTES:
            break
        out.append((data, addr))
    return out


class _Collector(asyncio.DatagramProtocol):
    """Replies of one exchange, bounded in number and bytes. ``expect``: the only source address a
    unicast exchange accepts; a datagram from anyone else is dropped before it can end the wait."""

    def __init__(self, max_bytes: int, stop_after: int | None, expect: str | None = None) -> None:
        self.replies: list[tuple[bytes, tuple[str, int]]] = []
        self.max_bytes = max_bytes
        self.stop_after = stop_after
        self.expect = expect
        self.bytes = 0
        self.refused = False
        self.enough = asyncio.Event()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        src = str(addr[0])
        if self.expect is not None and src != self.expect and not same_host(src, self.expect):
            return
        data = data[: self.max_bytes]
        if len(self.replies) < MAX_REPLIES and self.bytes + len(data) <= MAX_EXCHANGE_BYTES:
            self.replies.append((data, (src, int(addr[1]))))
            self.bytes += len(data)
        elif self.stop_after is None:
            self.enough.set()  # full: nothing more would be kept, so stop listening
        if self.stop_after is not None and len(self.replies) >= self.stop_after:
            self.enough.set()

    def error_received(self, exc: Exception) -> None:  # ICMP unreachable and the like
        if self.stop_after is not None and isinstance(exc, ConnectionRefusedError):
            self.refused = True
            self.enough.set()  # a connected unicast socket: the port is closed, no reply will come


async def udp_exchange(payload: bytes, dest: tuple[str, int], wait: float, *, interface: str | None = None,
                       source: str | None = None, max_bytes: int = MAX_DATAGRAM,
                       bind_port: int = 0, stop_after: int | None = None) -> list[tuple[bytes, tuple[str, int]]]:
    """Send ``payload`` to ``dest`` once and gather replies for ``wait`` seconds (or until
    ``stop_after`` replies arrived; unicast exchanges stop at the first). A unicast exchange whose port
    is closed (ICMP port unreachable) raises ConnectionRefusedError at once: no retry can help.

    For a multicast ``dest`` the socket is bound to ``interface`` (SO_BINDTODEVICE) and sends from
    ``source`` with TTL 1, so nothing leaves by any other interface and nothing is routed.
    """
    try:
        ip = ipaddress.ip_address(dest[0])
    except ValueError:
        return []
    if ip.version != 4:
        return []
    is_mcast = ip.is_multicast or dest[0] == "255.255.255.255"
    if is_mcast and not interface:
        return []
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF_MULTICAST if is_mcast else RCVBUF_UNICAST)
        if interface:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode()[:15])
        if is_mcast:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
            if source:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(source))
            if dest[0] == "255.255.255.255":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.bind((source or "0.0.0.0", bind_port) if is_mcast else ("0.0.0.0", bind_port))
        if not is_mcast and stop_after == 1:
            # connected: only the host asked can answer, and its ICMP port-unreachable ends the wait
            sock.connect(dest)
    except OSError:
        sock.close()
        return []
    loop = asyncio.get_running_loop()
    try:
        expect = None if is_mcast else str(ip)
        transport, proto = await loop.create_datagram_endpoint(lambda: _Collector(max_bytes, stop_after, expect),
                                                               sock=sock)
    except OSError:
        sock.close()
        return []
    try:
        try:
            transport.sendto(payload, None if not is_mcast and stop_after == 1 else dest)
        except OSError:
            return []
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proto.enough.wait(), max(0.0, wait))
        if proto.refused and not proto.replies:
            raise ConnectionRefusedError(f"{dest[0]}:{dest[1]} refused (ICMP port unreachable)")
        return list(proto.replies)
    finally:
        transport.close()
