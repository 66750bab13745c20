"""The scan engine: schedules probes over targets and streams identified devices into the store.

Phases (docs/contracts.md, "Engine"):

1. Targets: a lazy :class:`~scanner.targets.TargetSet`; nothing is scanned that was not named.
2. Discovery, all at once: an ARP sweep (``scanner.probes.arp``) of the target addresses on each interface
   that is directly attached to a target, and the multicast discovery protocols (wsd, ssdp, mdns, sadp,
   dhip) once on each such interface whose segment the targets cover (or with ``--multicast``): an address
   not named, or excluded, gets no packet (``scanner.scope``); TCP liveness for targets on no attached
   segment; ``--passive SECONDS`` of listening; ``--pcap FILE``. Replies from outside the targets are dropped.
3. Per host, with a global bound on hosts in flight and a per-host bound on probes in flight: every
   per-host probe, each under its own timeout, all under one per-host deadline. The fragments are merged
   into one :class:`~scanner.evidence.EvidenceRecord` (a malformed fragment is dropped alone), identified,
   and written to the store at once. NVR channel entries become child devices of that NVR.

Every packet a probe sends first takes a token from one bucket (``rate`` per second). A slow or hostile
device costs its own deadline and nothing else. Nothing per host is kept after it is written: a /16
sweep keeps only the set of live addresses and the discovery fragments of the hosts still to probe.
The scan row carries ``_pid`` so that a killed scan is marked ``incomplete`` on the next open, and
``resume`` carries on with the hosts of the last incomplete scan whose work was not finished (no
identification yet; with credentials, a recorder stored without channels). Hosts in flight follow the
event loop's lag (``scanner.pacing``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import functools
import importlib
import importlib.util
import inspect
import ipaddress
import json
import logging
import os
import socket
import struct
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scanner import macsources
from scanner.errors import CamsweepError, DeviceWriteError, TargetError
from scanner.evidence import (
    EvidenceError,
    EvidenceRecord,
    Identification,
    clean_evidence,
    normalize_mac,
    parse_record,
)
from scanner.targets import TargetSet, parse_targets

if TYPE_CHECKING:  # workers never open the store: they need not import sqlite-utils (and numpy)
    from scanner.store import Store

# Per-host probes, in the order they start; segment-wide discovery protocols. A module that is not
# there (not written yet, or removed) is skipped.
HOST_PROBES = ("http", "rtsp", "onvif", "tls", "banner", "sadp", "dhip", "wsd", "ssdp", "snmp", "dvrip", "mdns")
LIVENESS_PORTS = (80, 443, 554, 8000, 37777, 8080, 22, 23)
# Automatic worker processes (--workers -1), decided once discovery has counted the live hosts. Measured on
# 2 cores in the 250-device lab: one process probes the whole /24 in 6.9-8.8 s at 167 MB; two workers took
# 9.4-10.4 s and 330 MB (each worker imports the probe stack again and their queues cost CPU). A process
# probing alone runs at ~95% of one core, so workers pay off only with cores to spare and many live hosts.
WORKER_MIN_HOSTS = 1000  # live hosts
WORKER_MIN_CPUS = 4
MAX_WORKERS = 4
ARP_CHUNK = 4096  # addresses per ARP sweep call (the ARP module's limit)
ARP_PARALLEL = 2  # ARP sweeps at once
DISCOVERY_SWITCH_INTERVAL = 0.0005  # seconds: sys.setswitchinterval while discovery runs
# per-host probes that a multicast round on the host's own segment already covers
MULTICAST_COVERS = {"wsd": "wsd", "sadp": "sadp", "dhip": "dhip", "ssdp": "ssdp", "mdns": "mdns"}
DISCOVERY_PROBES = ("arp", "wsd", "ssdp", "mdns", "sadp", "dhip")
NVR_CHANNEL = "nvr_channel"
CUT_SHORT_PROTOCOL = "camsweep"  # discovery entries naming probes a deadline cut short (issue 13, item 12)
RECORDER_TYPES = ("nvr", "dvr")

ProbeFn = Callable[[str, Any], Awaitable[dict]]
DiscoverFn = Callable[[Any], Awaitable[list[dict]]]


# --------------------------------------------------------------------------------------------
# options and events


@dataclass
class ScanOptions:
    """How to scan. Plain fields are recorded with the scan; the seams (probes, transports, identifier,
    routes) are for tests and embedding and are never recorded. Credentials are never recorded."""

    interface: str | None = None  # the interface for ARP and multicast; default: the attached one
    exclude: tuple[str, ...] = ()
    max_hosts: int | None = None
    rate: float = 5000.0  # packets (connections, datagrams) a second; 0 = unlimited
    # hosts probed at once (split between the workers, if any). Measured: 256 finished the 250-device lab ~1.5 s
    # sooner, but one process probing 256 hosts at once through a 1000-device lab lost 45 NVR channel lists to
    # timeouts (every host's wall time stretches with the load); 128 lost none.
    concurrency: int = 128
    per_host: int = 6  # probes at once on one host
    timeout: float = 4.0  # one probe on one host
    connect_timeout: float = 1.0
    host_timeout: float = 10.0  # everything on one host (a slow device costs this much at most)
    max_bytes: int = 64 * 1024  # read from one reply
    retries: int = 1  # extra tries for a unicast UDP exchange that got no reply
    discovery_wait: float = 1.0  # seconds a multicast discovery round listens (replies come within APP_MAX_DELAY, 0.5 s)
    arp_wait: float = 1.0  # seconds an ARP sweep waits for replies after its last request
    liveness_timeout: float = 1.0
    arp: bool = True
    icmp: bool = True  # ICMP echo for routed targets (needs raw sockets: root or CAP_NET_RAW)
    # multicast discovery: None = only on a segment the targets cover whole (scanner.scope), True = on every
    # attached segment (--multicast), False = never (--no-multicast)
    multicast: bool | None = None
    assume_up: bool = False  # -Pn: probe every target, discovered or not
    passive: float = 0.0  # seconds of passive listening
    pcap: str | None = None
    probes: tuple[str, ...] | None = None  # names of per-host probes to run (default: all; () = none)
    ports: dict[str, tuple[int, ...]] | None = None
    policy: str = "ndaa889"
    site: str | None = None
    resume: bool = False
    snmp_public: bool = True  # SNMP may try the read-only "public" community (--no-snmp-public: no)
    # MAC sources for hosts beyond the scanner's segment (scanner/macsources.py): routers whose SNMP
    # neighbour tables are read, DHCP lease files, saved neighbour tables
    snmp_routers: tuple[str, ...] = ()
    dhcp_leases: tuple[str, ...] = ()
    neighbours: tuple[str, ...] = ()
    # processes that probe hosts: 0 = none (in-process, the default for library use), -1 = automatic (the
    # CLI's default: half the cores, up to MAX_WORKERS, once discovery finds WORKER_MIN_HOSTS live hosts on a
    # machine of WORKER_MIN_CPUS cores or more; else none). Workers are spawned: the caller's __main__ must be
    # guarded by ``if __name__ == "__main__"``.
    workers: int = 0
    # seams, never recorded
    credentials: Any = field(default=None, repr=False)
    host_probes: Mapping[str, ProbeFn] | None = field(default=None, repr=False)
    discoverers: Mapping[str, DiscoverFn] | None = field(default=None, repr=False)
    identifier: Any = field(default=None, repr=False)
    http_transport: Any = field(default=None, repr=False)
    open_stream: Any = field(default=None, repr=False)
    datagram: Any = field(default=None, repr=False)
    routes: Callable[[], list[Route]] | None = field(default=None, repr=False)

    _SEAMS = ("credentials", "host_probes", "discoverers", "identifier", "http_transport", "open_stream",
              "datagram", "routes")

    def recordable(self) -> dict[str, Any]:
        """The options as stored with the scan: plain values only, no credentials, no seams."""
        out = {}
        for f in fields(self):
            if f.name in self._SEAMS:
                continue
            out[f.name] = getattr(self, f.name)
        out["credentials"] = bool(self.credentials)
        return json.loads(json.dumps(out, default=list))

    @classmethod
    def from_recorded(cls, data: Mapping[str, Any]) -> ScanOptions:
        known = {f.name for f in fields(cls)} - set(cls._SEAMS)
        kw = {k: v for k, v in data.items() if k in known}
        for k in ("exclude", "probes", "snmp_routers", "dhcp_leases", "neighbours"):
            if kw.get(k) is not None:
                kw[k] = tuple(kw[k])
        if kw.get("ports"):
            kw["ports"] = {k: tuple(v) for k, v in kw["ports"].items()}
        return cls(**kw)


@dataclass(frozen=True, slots=True)
class ScanEvent:
    """``hosts_found`` (data: count), ``device_identified`` (data: the device row), ``progress`` (data:
    done, total), ``finished`` (data: scan_id, status, devices); additive: ``warning`` (data: message) and
    ``phase`` (data: name, seconds: how long discovery / liveness took)."""

    kind: str
    data: Any = None


# --------------------------------------------------------------------------------------------
# the rate limiter


class RateLimiter:
    """A token bucket: ``await acquire()`` once per packet; ``rate`` tokens a second, bursts of ``burst``.

    Lock-free reservation (the event loop runs one coroutine at a time): a caller takes a token, letting
    the balance go negative, and sleeps until its own token is due. Waiters therefore do not queue behind
    one another one loop iteration at a time, which would cap a busy scan far below ``rate``.
    """

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = float(rate)
        self.capacity = burst if burst is not None else max(1.0, self.rate / 20)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    async def acquire(self) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= 1
        if self.tokens < 0:
            await asyncio.sleep(-self.tokens / self.rate)

    __call__ = acquire


# --------------------------------------------------------------------------------------------
# attached interfaces (from the kernel's routing table of this network namespace)


@dataclass(frozen=True, slots=True)
class Route:
    interface: str
    network: ipaddress.IPv4Network
    gateway: str | None


def read_routes(path: str = "/proc/net/route") -> list[Route]:
    """IPv4 routes of the current network namespace."""
    out: list[Route] = []
    try:
        lines = Path(path).read_text().splitlines()[1:]
    except OSError:
        return out
    for line in lines:
        parts = line.split()
        if len(parts) < 8:
            continue
        try:
            iface, dest, gw, flags, mask = parts[0], int(parts[1], 16), int(parts[2], 16), int(parts[3], 16), \
                int(parts[7], 16)
        except ValueError:
            continue
        if not flags & 1:  # RTF_UP
            continue
        d = socket.inet_ntoa(struct.pack("<I", dest))
        m = socket.inet_ntoa(struct.pack("<I", mask))
        try:
            net = ipaddress.IPv4Network(f"{d}/{m}", strict=False)
        except ValueError:
            continue
        out.append(Route(iface, net, None if gw == 0 else socket.inet_ntoa(struct.pack("<I", gw))))
    return out


def attached_interfaces(targets: TargetSet, routes: list[Route], named: str | None = None) -> list[str]:
    """Interfaces on which some target is directly attached (a connected route, not the default one,
    not loopback). With ``named``, only that interface, and only if a target is on it or it was named."""
    out: list[str] = []
    nets = [n for n in targets.networks() if n.version == 4]
    for r in routes:
        if r.gateway is not None or r.network.prefixlen == 0 or r.interface == "lo":
            continue
        if named and r.interface != named:
            continue
        if any(n.subnet_of(r.network) or r.network.subnet_of(n) for n in nets):  # type: ignore[arg-type]
            if r.interface not in out:
                out.append(r.interface)
    if named and named not in out:
        out.append(named)  # the user named it: trust them (a target may be reachable by ARP proxy)
    return out


def interface_addresses(interface: str) -> tuple[str | None, str | None]:
    """(IPv4 address, MAC) of an interface in this namespace."""
    ip = mac = None
    with contextlib.suppress(OSError, ValueError):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            packed = struct.pack("256s", interface.encode()[:15])
            ip = socket.inet_ntoa(fcntl.ioctl(s.fileno(), 0x8915, packed)[20:24])
    with contextlib.suppress(OSError):
        mac = normalize_mac(Path(f"/sys/class/net/{interface}/address").read_text().strip())
    return ip, mac


def read_neighbours(path: str = "/proc/net/arp") -> dict[str, str]:
    """The kernel's ARP cache: ip -> MAC (complete entries only)."""
    out: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path(path).read_text().splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 4 and parts[2] != "0x0":
                mac = normalize_mac(parts[3])
                if mac and mac != "00:00:00:00:00:00":
                    out[parts[0]] = mac
    return out


# --------------------------------------------------------------------------------------------
# ICMP echo


def build_echo(ident: int, seq: int, payload: bytes = b"camsweep") -> bytes:
    """An ICMP echo request (type 8) with its checksum."""
    head = struct.pack("!BBHHH", 8, 0, 0, ident & 0xFFFF, seq & 0xFFFF)
    return head[:2] + struct.pack("!H", _inet_checksum(head + payload)) + head[4:] + payload


def _inet_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def parse_echo_reply(packet: bytes, ident: int) -> bool:
    """Whether a raw IPv4 packet is an ICMP echo reply (type 0) to our identifier. Never raises."""
    if len(packet) < 28 or packet[0] >> 4 != 4:
        return False
    ihl = (packet[0] & 0x0F) * 4
    if len(packet) < ihl + 8:
        return False
    icmp_type, _code, _sum, rid = struct.unpack("!BBHH", packet[ihl:ihl + 6])
    return icmp_type == 0 and rid == ident & 0xFFFF


async def icmp_sweep(targets: Iterable[str], limiter: RateLimiter, wait: float,
                     on_warning: Callable[[str], None] | None = None) -> set[str]:
    """Send one echo request to each IPv4 target (paced by ``limiter``) and return those that replied
    within ``wait`` seconds of the last send. Without raw sockets (not root), an empty set."""
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    except PermissionError:
        return set()
    except OSError as exc:
        if on_warning:
            on_warning(f"ICMP echo is not available ({exc.strerror or exc}); TCP liveness only")
        return set()
    sock.setblocking(False)
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    ident = (os.getpid() ^ id(sock)) & 0xFFFF
    sent: set[str] = set()
    answered: set[str] = set()
    loop = asyncio.get_running_loop()

    def on_readable() -> None:
        for _ in range(256):
            try:
                data, addr = sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if addr[0] in sent and parse_echo_reply(data, ident):
                answered.add(addr[0])

    loop.add_reader(sock.fileno(), on_readable)
    try:
        for seq, ip in enumerate(targets):
            try:
                if ipaddress.ip_address(ip).version != 4:
                    continue
            except ValueError:
                continue
            await limiter.acquire()
            sent.add(ip)
            with contextlib.suppress(OSError):  # unreachable, no route, a full buffer: that host is silent
                sock.sendto(build_echo(ident, seq), (ip, 0))
        if sent:
            await asyncio.sleep(wait)
    finally:
        loop.remove_reader(sock.fileno())
        sock.close()
    return answered


# --------------------------------------------------------------------------------------------
# probes


def load_host_probes(names: Iterable[str] | None = None) -> dict[str, ProbeFn]:
    out: dict[str, ProbeFn] = {}
    for name in HOST_PROBES if names is None else names:
        fn = _module_attr(name, "probe")
        if fn is not None:
            out[name] = fn
    return out


def load_discoverers(names: Iterable[str] = DISCOVERY_PROBES) -> dict[str, DiscoverFn]:
    out: dict[str, DiscoverFn] = {}
    for name in names:
        fn = _module_attr(name, "discover")
        if fn is not None:
            out[name] = fn
    return out


def _module_attr(name: str, attr: str) -> Any:
    try:
        mod = importlib.import_module(f"scanner.probes.{name}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("scanner.probes"):
            return None
        raise
    fn = getattr(mod, attr, None)
    return fn if callable(fn) else None


def require_identify() -> None:
    """Fail clearly, before any scan row is written, when identification is not there at all."""
    if importlib.util.find_spec("scanner.identify") is None:
        raise CamsweepError("identification is not available (scanner.identify is missing)")


def load_identifier(policy: str) -> Any:
    require_identify()
    from scanner.identify import Identifier

    return Identifier(policy=policy)


def fingerprints_version() -> str | None:
    with contextlib.suppress(Exception):
        import fingerprints

        return str(fingerprints.load_database().version)  # type: ignore[attr-defined]
    return None


# --------------------------------------------------------------------------------------------
# merging fragments into one record


def merge_fragments(ip: str, mac: str | None, fragments: Iterable[Mapping[str, Any]]) -> EvidenceRecord:
    """One record for a host from probe fragments. A fragment that does not parse is dropped alone,
    so one hostile reply cannot cost the device its other evidence."""
    base: dict[str, Any] = {"ip": ip}
    if mac:
        base["mac"] = mac
    rec = parse_record(base)
    for frag in fragments:
        if not isinstance(frag, Mapping) or not frag:
            continue
        part = {k: v for k, v in clean_evidence(frag).items() if k not in ("ip", "id")}  # devices' text enters here
        fmac = part.pop("mac", None)
        if fmac and not rec.mac:
            n = normalize_mac(fmac) if isinstance(fmac, str) else None
            if n:
                rec = parse_record({**rec.to_dict(), "mac": n})
        if not part:
            continue
        try:
            rec = rec.merge(parse_record({"ip": ip, **part}))
        except EvidenceError:
            # try key by key: keep what is readable
            for k, v in part.items():
                with contextlib.suppress(EvidenceError):
                    rec = rec.merge(parse_record({"ip": ip, k: v}))
    return rec


def split_channels(rec: EvidenceRecord) -> tuple[EvidenceRecord, list[EvidenceRecord]]:
    """Take NVR channel entries out of an NVR's record; each becomes a child record of its own."""
    chans = [d for d in rec.discovery if d.protocol == NVR_CHANNEL]
    if not chans:
        return rec, []
    d = rec.to_dict()
    d["discovery"] = [x.to_dict() for x in rec.discovery if x.protocol != NVR_CHANNEL]
    parent = parse_record(d)
    children: list[EvidenceRecord] = []
    seen: set[str] = set()
    for c in chans:
        f = dict(c.fields)
        key = f.get("channel") or f.get("serial") or f.get("ip") or json.dumps(f, sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        child: dict[str, Any] = {"discovery": [{"protocol": NVR_CHANNEL, "fields": f}]}
        ip = f.get("ip", "")
        with contextlib.suppress(ValueError):
            if ip:
                child["ip"] = str(ipaddress.ip_address(ip))
        mac = normalize_mac(f.get("mac", ""))
        if mac:
            child["mac"] = mac
        with contextlib.suppress(EvidenceError):
            children.append(parse_record(child))
    return parent, children


class ProbeEnv:
    """Builds the ProbeContext every probe gets: timeouts, caps, credentials, transports, the rate limiter,
    the interface for multicast, the scope check. One per process (the scan's, or a worker's)."""

    def __init__(self, options: ScanOptions, limiter: RateLimiter, allow: Callable[[str], bool] | None = None,
                 targets: Any = None) -> None:
        self.o = options
        self.limiter = limiter
        self.allow = allow
        self.targets = targets
        self._datagrams: dict[str | None, Any] = {}

    def context(self, interface: str | None = None, **kw: Any) -> Any:
        from scanner.probes.base import DEFAULT_PORTS, ProbeContext

        if interface not in self._datagrams:
            self._datagrams[interface] = self._datagram_for(interface)
        ctx_kw: dict[str, Any] = dict(
            timeout=self.o.timeout, connect_timeout=self.o.connect_timeout, max_bytes=self.o.max_bytes,
            credentials=self.o.credentials if self.o.credentials else None,
            http_transport=self.o.http_transport, open_stream=self.o.open_stream,
            datagram=self._datagrams[interface], rate_limit=self.limiter.acquire, interface=interface,
            allow=self.allow, discover_wait=self.o.discovery_wait,
            snmp_auth=getattr(self.o.credentials, "snmp_for", None), snmp_public=self.o.snmp_public,
        )
        if self.o.ports:
            ctx_kw["ports"] = {**DEFAULT_PORTS, **dict(self.o.ports)}
        ctx_kw.update(kw)
        ctx = ProbeContext(**ctx_kw)
        if self.targets is not None:
            with contextlib.suppress(AttributeError):
                ctx.targets = self.targets  # type: ignore[attr-defined]
        return ctx

    def _datagram_for(self, interface: str | None) -> Callable[..., Awaitable[list[tuple[bytes, tuple[str, int]]]]]:
        """UDP through the injected transport or the network; a unicast exchange that got no reply is
        tried again ``retries`` times (the probe took a token for the first send; each retry takes its
        own). Multicast goes out only on ``interface``, the one this context was made for."""
        from scanner.probes.base import bounded_replies, same_host, udp_exchange

        source = interface_addresses(interface)[0] if interface else None
        cap = min(self.o.max_bytes, 65536)
        o, limiter = self.o, self.limiter

        async def exchange(payload: bytes, dest: tuple[str, int], wait: float,
                           multicast: bool) -> list[tuple[bytes, tuple[str, int]]]:
            if multicast and not interface:
                return []
            tries = 1 if multicast else 1 + max(0, o.retries)
            replies: list[tuple[bytes, tuple[str, int]]] = []
            for attempt in range(tries):
                if attempt:
                    await limiter.acquire()
                if o.datagram is not None:
                    replies = list(await o.datagram(payload, dest, wait, multicast))
                    if not multicast:  # only the host asked answers a unicast question
                        replies = [r for r in replies if same_host(r[1][0], dest[0])]
                    replies = bounded_replies(replies, cap)
                elif multicast:
                    replies = await udp_exchange(payload, dest, wait, interface=interface, source=source,
                                                 max_bytes=cap)
                else:
                    try:
                        replies = await udp_exchange(payload, dest, wait, max_bytes=cap, stop_after=1)
                    except ConnectionRefusedError:
                        break  # the port is closed (ICMP): a retry would be refused too
                if replies:
                    break
            return replies

        exchange.uses_network = o.datagram is None  # type: ignore[attr-defined]  # (snmpv3: its own socket is fine)
        return exchange


def cut_short_fragment(probes: Iterable[str], by: str) -> dict:
    """The trace of probes a deadline cut short, kept with the device: a ``discovery`` entry of protocol
    ``camsweep`` (no fingerprint reads it; the store, the evidence export and the reports keep it)."""
    return {"discovery": [{"protocol": CUT_SHORT_PROTOCOL,
                           "fields": {"cut_short": ",".join(sorted(set(probes))), "by": by}}]}


async def collect_host(ip: str, frags: list[dict], ctx: Any, probes: Mapping[str, ProbeFn],
                       options: ScanOptions, monitor: Any = None) -> list[dict]:
    """Run ``probes`` on one host, each under its own timeout, all under the host deadline; returns the
    fragments that came back (a probe that failed, hung or raised gives nothing, and costs only itself).
    Time the event loop was stalled (``monitor``, scanner.pacing) is given back to the host deadline once;
    probes still cut short by a deadline are named in a fragment of their own (cut_short_fragment)."""
    sem = asyncio.Semaphore(max(1, options.per_host))
    cut: list[str] = []
    xaddrs = [x for f in frags for w in (f.get("wsd") or []) if isinstance(w, Mapping)
              for x in (w.get("xaddrs") or []) if isinstance(x, str)][:4]

    async def one(name: str, fn: ProbeFn) -> dict:
        async with sem:
            try:
                call = fn(ip, ctx, xaddrs=xaddrs) if name == "onvif" and xaddrs else fn(ip, ctx)
                return await asyncio.wait_for(call, options.timeout * 3 + options.connect_timeout + 1)
            except asyncio.CancelledError:
                raise
            except TimeoutError:
                cut.append(name)
                return {}
            except Exception:
                return {}

    tasks = {asyncio.create_task(one(n, f)): n for n, f in probes.items()}
    out: list[dict] = []
    if tasks:
        mark = monitor.stalled if monitor is not None else 0.0
        done, pending = await asyncio.wait(tasks, timeout=options.host_timeout)
        if pending and monitor is not None:
            extra = min(monitor.stalled_since(mark), options.host_timeout / 2)
            if extra > 0.05:  # the loop, not the host, was slow: give that time back once
                more, pending = await asyncio.wait(pending, timeout=extra)
                done |= more
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            cut.extend(tasks[t] for t in pending)
        for t in done:
            if not t.cancelled() and t.exception() is None and isinstance(t.result(), dict):
                out.append(t.result())
        if cut:
            out.append(cut_short_fragment(cut, "host deadline" if pending else "probe deadline"))
    return out


# --------------------------------------------------------------------------------------------
# worker processes: per-host probing on every core (the scan's process keeps discovery, identification
# and the store)


def take_batch(q: Any, n: int) -> list[Any]:
    """Up to ``n`` items of a multiprocessing queue: waits (at most 1 s, else queue.Empty) for the first, then
    takes what is already there, stopping after a ``None`` (the end mark). One executor round trip a batch,
    not an item: on a busy event loop each round trip costs a loop iteration, and hosts handed over one at a
    time started at ~30 a second (measured in the lab)."""
    import queue

    got = [q.get(timeout=1.0)]
    while len(got) < n and got[-1] is not None:
        try:
            got.append(q.get_nowait())
        except queue.Empty:
            break
    return got


def worker_main(jobs: Any, results: Any, recorded: dict[str, Any], credentials: Any, parent: int) -> None:
    """A worker process: probe the hosts that arrive on ``jobs`` (ip, discovery fragments, probes to
    skip), put (ip, fragments) on ``results`` as each host is done; ``None`` ends it. It stops by itself
    if the scan's process is gone (killed), and leaves Ctrl-C to the scan's process."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        asyncio.run(_worker_loop(jobs, results, recorded, credentials, parent))
    if os.getppid() == parent:
        results.close()
        results.join_thread()  # every result reaches the scan before this worker exits
    else:
        results.cancel_join_thread()  # nobody reads any more: exit without waiting to flush


async def _worker_loop(jobs: Any, results: Any, recorded: dict[str, Any], credentials: Any, parent: int) -> None:
    import queue

    from scanner.pacing import watch

    o = ScanOptions.from_recorded(recorded)
    o.credentials = credentials
    env = ProbeEnv(o, RateLimiter(o.rate))
    monitor, gate = watch(o.concurrency)
    probes = load_host_probes(o.probes)
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task] = set()
    warm = None
    if credentials and "onvif" in probes:  # the ONVIF client's import and WSDL load overlap discovery
        prewarm = _module_attr("onvif", "prewarm")
        if prewarm is not None:
            warm = asyncio.create_task(prewarm())
            warm.add_done_callback(lambda t: t.cancelled() or t.exception())
    results.put(("__ready__", []))
    main = asyncio.current_task()

    async def watchdog() -> None:
        while os.getppid() == parent:
            await asyncio.sleep(0.5)
        main.cancel()  # type: ignore[union-attr]  # the scan's process is gone: stop probing at once

    dog = asyncio.create_task(watchdog())

    async def one(ip: str, frags: list[dict], skip: tuple[str, ...]) -> None:
        try:
            got = await collect_host(ip, frags, env.context(), {n: f for n, f in probes.items() if n not in skip}, o,
                                     monitor)
        except Exception:
            got = []
        results.put((ip, got))

    slot_free = asyncio.Event()
    finished = False
    while not finished:
        while len(tasks) >= gate.limit:  # the limit follows the loop's lag (scanner.pacing)
            slot_free.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(slot_free.wait(), 0.5)
        try:
            batch = await loop.run_in_executor(None, take_batch, jobs, gate.limit - len(tasks))
        except queue.Empty:
            if os.getppid() != parent:
                return  # the scan's process is gone
            continue
        for job in batch:
            if job is None:
                finished = True
                break
            t = asyncio.create_task(one(*job))
            tasks.add(t)
            t.add_done_callback(lambda t: (tasks.discard(t), slot_free.set()))
    if tasks:
        await asyncio.gather(*tasks)
    if warm is not None:
        warm.cancel()
    dog.cancel()
    await monitor.stop()


class WorkerPool:
    """``n`` worker processes (spawned, so no lock or thread of this process is inherited) that probe
    hosts for the scan; started early so that their imports overlap discovery."""

    def __init__(self, n: int, options: ScanOptions) -> None:
        import multiprocessing

        mp = multiprocessing.get_context("spawn")
        share = ScanOptions.from_recorded(options.recordable())
        share.rate = options.rate / n if options.rate > 0 else 0
        share.concurrency = max(1, -(-options.concurrency // n))
        self.jobs = mp.Queue()
        self.results = mp.Queue()
        self.procs = [mp.Process(target=worker_main, name=f"camsweep-worker-{i}", daemon=True,
                                 args=(self.jobs, self.results, share.recordable(), options.credentials,
                                       os.getpid())) for i in range(n)]
        for p in self.procs:
            p.start()

    def alive(self) -> bool:
        return any(p.is_alive() for p in self.procs)

    def stop(self) -> None:
        for p in self.procs:
            if p.is_alive():
                p.terminate()
        for p in self.procs:
            p.join(timeout=2)
            if p.is_alive():
                p.kill()
                p.join(timeout=2)
        for q in (self.jobs, self.results):
            with contextlib.suppress(Exception):
                q.cancel_join_thread()
                q.close()


# --------------------------------------------------------------------------------------------
# the scan


class _Scan:
    def __init__(self, targets: TargetSet, options: ScanOptions, store: Store, scan_id: int,
                 on_event: Callable[[ScanEvent], None] | None, skip: set[str]) -> None:
        self.targets = targets
        self.o = options
        self.store = store
        self.scan_id = scan_id
        self.on_event = on_event
        self.skip = skip  # hosts already identified in this scan (resume)
        self.limiter = RateLimiter(options.rate)
        self.env = ProbeEnv(options, self.limiter, self.in_scope, targets)
        self.routes = (options.routes or read_routes)()
        self.interfaces = attached_interfaces(targets, self.routes, options.interface)
        self.own: set[str] = set()
        for iface in self.interfaces:
            ip, _ = interface_addresses(iface)
            if ip:
                self.own.add(ip)
        self.identifier = options.identifier
        self.identifier_future: asyncio.Future | None = None  # loading in a thread while discovery runs
        self.host_probes = dict(options.host_probes) if options.host_probes is not None else \
            load_host_probes(options.probes)
        if options.probes is not None:
            self.host_probes = {k: v for k, v in self.host_probes.items() if k in options.probes}
        if options.pcap:
            self.host_probes = {}  # a capture is read instead of the wire
        self.attached_nets = [r.network for r in self.routes if r.interface in self.interfaces
                              and r.gateway is None and r.network.prefixlen > 0]
        self.multicast_ifaces = self._multicast_interfaces()
        wanted = [n for n in DISCOVERY_PROBES if (options.arp if n == "arp" else bool(self.multicast_ifaces))]
        self.discoverers = dict(options.discoverers) if options.discoverers is not None else \
            load_discoverers(wanted)  # only the modules this scan uses are imported
        self.pool: WorkerPool | None = None
        self.hosts: dict[str, list[dict]] = {}  # live host -> discovery fragments
        self.macs: dict[str, str] = {}
        self.done = 0
        self.devices = 0
        # one writer thread: a slow commit (a busy disk) must not stall every probe on the event loop
        self.writer = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="camsweep-store")
        self.arp_swept: set[str] = set()  # addresses an ARP sweep asked
        self._warned_unroutable = False
        self.multicast_ran: set[str] = set()  # discovery protocols that ran on the attached segments
        # hosts identified and stored while discovery still ran (see streaming())
        self.streamed: set[str] = set()
        self.stream_tasks: set[asyncio.Task] = set()
        self.stream_errors: list[BaseException] = []
        self.monitor: Any = None  # scanner.pacing.LagMonitor while hosts are probed
        self.cut_short = 0  # hosts with a probe a deadline cut short (each recorded with its device)
        self._known: dict[int, tuple[EvidenceRecord, Identification]] = {}  # follow_up_recorder's identifications

    # -- helpers ----------------------------------------------------------------------------
    def _multicast_interfaces(self) -> list[str]:
        """Interfaces multicast questions may be asked on: see ScanOptions.multicast and scanner.scope."""
        from scanner.scope import covers_segment

        if self.o.multicast is False:
            return []
        if self.o.multicast:
            return list(self.interfaces)
        out = []
        for iface in self.interfaces:
            nets = [r.network for r in self.routes if r.interface == iface and r.gateway is None
                    and r.network.prefixlen > 0]
            if nets and all(covers_segment(self.targets, n, self.own) for n in nets):
                out.append(iface)
        return out

    def emit(self, kind: str, data: Any = None) -> None:
        if self.on_event is not None:
            with contextlib.suppress(Exception):
                self.on_event(ScanEvent(kind, data))

    def in_scope(self, ip: str) -> bool:
        return ip in self.targets and ip not in self.own

    def context(self, interface: str | None = None, **kw: Any) -> Any:
        return self.env.context(interface, **kw)

    # -- discovery --------------------------------------------------------------------------
    def add_host(self, ip: str, fragment: Mapping[str, Any] | None = None, mac: str | None = None) -> None:
        try:
            ip = str(ipaddress.ip_address(ip))
        except ValueError:
            return
        if not self.in_scope(ip) or ip in self.streamed:
            return
        frags = self.hosts.setdefault(ip, [])
        if mac:
            m = normalize_mac(mac)
            if m:
                self.macs.setdefault(ip, m)
        if fragment:
            frag = dict(fragment)
            fm = frag.pop("mac", None)
            if isinstance(fm, str) and normalize_mac(fm):
                self.macs.setdefault(ip, normalize_mac(fm))  # type: ignore[arg-type]
            frag.pop("ip", None)
            if frag and len(frags) < 64:
                frags.append(frag)

    async def discover(self) -> None:
        t0 = time.monotonic()
        # The ARP sender thread gives up the GIL for every frame it sends; while the fingerprints load in
        # another thread, each hand-back waited up to the default 5 ms switch interval (a /24 sweep took
        # 1.1 s instead of 0.8 s, measured in the lab). A short interval while discovery runs.
        switch = sys.getswitchinterval()
        sys.setswitchinterval(min(switch, DISCOVERY_SWITCH_INTERVAL))
        if self.o.credentials and self.o.workers <= 0 and self.o.host_probes is None and "onvif" in self.host_probes:
            load = _module_attr("onvif", "load_client")
            if load is not None:  # measured: the import blocked the probing event loop for ~0.4 s
                asyncio.get_running_loop().run_in_executor(None, load).add_done_callback(
                    lambda f: f.cancelled() or f.exception())
        try:
            await self._discover()
        finally:
            sys.setswitchinterval(switch)
            self.emit("phase", {"name": "discovery", "seconds": round(time.monotonic() - t0, 3),
                                "hosts": len(self.hosts)})

    async def _discover(self) -> None:
        if self.o.pcap:  # offline: hosts and evidence come from the capture alone; nothing is sent
            await self._passive()
            return
        jobs: list[Awaitable[Any]] = []
        for iface in self.interfaces:
            for name, fn in self.discoverers.items():
                if name == "arp" and not self.o.arp:
                    continue
                if name != "arp" and iface not in self.multicast_ifaces:
                    continue  # the targets do not cover this segment, and --multicast was not given
                jobs.append(self._run_discoverer(name, fn, iface))
        if self.o.passive > 0 or self.o.pcap:
            jobs.append(self._passive())
        if jobs:
            await asyncio.gather(*jobs)
        if not self.o.assume_up:
            t0 = time.monotonic()
            await self._liveness()
            self.emit("phase", {"name": "liveness", "seconds": round(time.monotonic() - t0, 3)})
        if self.interfaces:
            for ip, mac in read_neighbours().items():
                if ip in self.hosts and ip not in self.macs:
                    self.macs[ip] = mac

        await macsources.gather(self)

    async def _run_discoverer(self, name: str, fn: DiscoverFn, iface: str) -> None:
        if name == "arp":
            await self._arp(fn, iface, self.context(interface=iface, discover_wait=self.o.arp_wait))
            return
        ctx = self.context(interface=iface)
        limit = self.o.discovery_wait + 4 * self.o.timeout
        t0 = time.monotonic()
        try:
            frags = await asyncio.wait_for(fn(ctx), limit)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            self.emit("warning", f"{name} discovery on {iface} ran out of time")
            return
        except Exception as exc:  # a discoverer must not stop the scan
            self.emit("warning", f"{name} discovery on {iface} failed: {type(exc).__name__}: {exc}")
            return
        self.multicast_ran.add(name)
        self.emit("phase", {"name": f"{name} on {iface}", "seconds": round(time.monotonic() - t0, 3),
                            "replies": len(frags or [])})
        self._add_fragments(frags)

    def _add_fragments(self, frags: Any) -> None:
        for frag in frags or []:
            if isinstance(frag, Mapping) and isinstance(frag.get("ip"), str):
                self.add_host(frag["ip"], frag)

    def arp_chunks(self, iface: str) -> list[list[str]]:
        """The target addresses on ``iface``'s segments (exclusions out, the scanner's own out), in lists of at
        most ARP_CHUNK: only targets are asked, never the rest of their network (scanner.scope)."""
        from scanner.scope import segment_addresses

        nets = [r.network for r in self.routes if r.interface == iface and r.gateway is None
                and r.network.prefixlen > 0]
        addrs = segment_addresses(self.targets, nets, everywhere=not nets and self.o.interface == iface,
                                  skip=self.own | self.arp_swept)
        return [addrs[i:i + ARP_CHUNK] for i in range(0, len(addrs), ARP_CHUNK)]

    def streaming(self) -> bool:
        """Whether an ARP answer is all the evidence a host will get (a discovery-only scan with no other
        source): such hosts are identified and stored while the sweep asks the silent addresses again,
        instead of after it (a /24 -sn scan: ~0.25 s of its ~1.6 s, measured in the lab)."""
        return (not self.host_probes and (set(self.discoverers) <= {"arp"} or not self.multicast_ifaces)
                and self.o.passive <= 0
                and not self.o.pcap and not self.o.assume_up)

    def _stream_answers(self, frags: list[dict]) -> None:
        for frag in frags:
            try:
                ip = str(ipaddress.ip_address(frag["ip"]))
            except (KeyError, TypeError, ValueError):
                continue
            if ip in self.streamed or ip in self.skip or not self.in_scope(ip):
                continue
            self.add_host(ip, frag)
            self.streamed.add(ip)
            frags_ip, mac = self.hosts.pop(ip, []), self.macs.pop(ip, None)
            t = asyncio.create_task(self._finish_streamed(ip, mac, frags_ip))
            self.stream_tasks.add(t)
            t.add_done_callback(self.stream_tasks.discard)

    async def _finish_streamed(self, ip: str, mac: str | None, frags: list[dict]) -> None:
        try:
            await self.finish_host(ip, mac, frags)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the store failing, say: probe_all stops the scan with it
            self.stream_errors.append(exc)
        finally:
            self.done += 1

    async def _arp(self, fn: DiscoverFn, iface: str, ctx: Any) -> None:
        """Sweep chunk by chunk (a few at once); each chunk first takes its packets' worth of tokens."""
        chunks = self.arp_chunks(iface)
        sem = asyncio.Semaphore(ARP_PARALLEL)
        kw: dict[str, Any] = {}
        if self.streaming() and "on_answers" in inspect.signature(fn).parameters:
            kw["on_answers"] = self._stream_answers

        async def sweep(addrs: list[str]) -> None:
            async with sem:
                if self.o.rate > 0:
                    for _ in range(len(addrs) - 1):  # the module takes the last token itself
                        await self.limiter.acquire()
                try:
                    frags = await asyncio.wait_for(fn(ctx, addresses=addrs, **kw), self.o.discovery_wait + 30)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.emit("warning", f"ARP sweep of {len(addrs)} addresses on {iface} failed: "
                                         f"{type(exc).__name__}")
                    return
                self.arp_swept.update(addrs)  # the silent ones are not there: no TCP liveness for them
                self._add_fragments(frags)

        await asyncio.gather(*(sweep(n) for n in chunks))

    async def _passive(self) -> None:
        mod_fn = _module_attr("passive", "capture") if self.o.passive > 0 else None
        if self.o.pcap:
            read = _module_attr("passive", "read_pcap")
            if read is None:
                self.emit("warning", "--pcap needs scanner.probes.passive, which is not available")
            else:
                try:
                    frags = await asyncio.to_thread(read, self.o.pcap)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    raise CamsweepError(str(exc) if type(exc).__name__ == "CaptureError" else
                                        f"cannot read the capture {self.o.pcap}: {exc}") from None
                self._add_fragments(frags)
        if self.o.passive > 0:
            if mod_fn is None:
                self.emit("warning", "--passive needs scanner.probes.passive, which is not available")
                return
            if not self.interfaces:
                self.emit("warning", "--passive listens only on an interface attached to a target; none is")
                return
            for iface in self.interfaces:
                ctx = self.context(interface=iface)
                try:
                    frags = await asyncio.wait_for(mod_fn(ctx, self.o.passive), self.o.passive + 5)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.emit("warning", f"passive listening on {iface} failed: {exc}")
                    continue
                self._add_fragments(frags)

    def reachable(self, ip: str) -> bool:
        """Whether any route leads to ``ip`` (loopback and IPv6 are taken as reachable). A target with no
        route at all cannot be sent a packet: it costs no liveness attempt and no rate token."""
        addr = ipaddress.ip_address(ip)
        if addr.version != 4 or addr.is_loopback or not self.routes:
            return True
        return any(addr in r.network for r in self.routes)

    def _routed_targets(self) -> Iterator[str]:
        """Targets not on an attached segment (those get TCP liveness; attached ones ARP)."""
        swept = self.arp_swept
        unroutable = 0
        for ip in self.targets:
            if ip in self.skip or ip in swept or ip in self.own:  # the scanner's own address needs no echo
                continue
            if not self.reachable(ip):
                unroutable += 1
                continue
            yield ip
        if unroutable and not self._warned_unroutable:
            self._warned_unroutable = True
            self.emit("warning", f"{unroutable} targets have no route from this host and were skipped")

    async def _liveness(self) -> None:
        """For every target no ARP sweep covered: an ICMP echo pass (when raw sockets are allowed), then TCP
        connects (all liveness ports of a host at once) to the hosts that did not answer it."""
        if self.o.icmp and self.o.open_stream is None:
            answered = await icmp_sweep(self._routed_targets(), self.limiter, self.o.liveness_timeout,
                                        on_warning=lambda m: self.emit("warning", m))
            for ip in answered:
                self.add_host(ip)
        await self._tcp_liveness()

    async def _tcp_liveness(self) -> None:
        ports = (self.o.ports or {}).get("liveness") or LIVENESS_PORTS
        ctx = self.context(connect_timeout=self.o.liveness_timeout)  # the rate limiter's wait is not counted
        sem = asyncio.Semaphore(max(1, self.o.concurrency * 4))

        async def knock(ip: str, port: int) -> bool:
            try:
                _, w = await ctx.connect(ip, port)
            except ConnectionRefusedError:
                return True
            except (TimeoutError, OSError):
                return False
            w.close()
            return True

        async def alive(ip: str) -> None:
            try:
                if any(await asyncio.gather(*(knock(ip, p) for p in ports))):
                    self.add_host(ip)
            finally:
                sem.release()

        tasks: set[asyncio.Task] = set()
        for ip in self._routed_targets():
            if ip in self.hosts:
                continue  # it answered the ICMP echo
            await sem.acquire()
            t = asyncio.create_task(alive(ip))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)

    # -- per host ---------------------------------------------------------------------------
    def probes_for(self, ip: str) -> dict[str, ProbeFn]:
        """The per-host probes for ``ip``: all, less those a multicast round on its segment covered."""
        on_segment = any(ipaddress.ip_address(ip) in n for n in self.attached_nets)
        return {n: f for n, f in self.host_probes.items()
                if not (on_segment and MULTICAST_COVERS.get(n) in self.multicast_ran)}

    async def probe_host(self, ip: str) -> None:
        frags = self.hosts.pop(ip, [])
        mac = self.macs.pop(ip, None)
        frags += await collect_host(ip, frags, self.context(), self.probes_for(ip), self.o, self.monitor)
        await self.finish_host(ip, mac, frags)

    async def finish_host(self, ip: str, mac: str | None, frags: list[dict]) -> None:
        if any(isinstance(d, Mapping) and d.get("protocol") == CUT_SHORT_PROTOCOL
               for f in frags if isinstance(f, Mapping) for d in (f.get("discovery") or [])):
            self.cut_short += 1
        rec = merge_fragments(ip, mac, frags)
        rec = await self.follow_up_recorder(ip, rec)
        await self.record(rec)

    async def follow_up_recorder(self, ip: str, rec: EvidenceRecord) -> EvidenceRecord:
        """A recorder we hold credentials for but got no channel list from (a busy NVR answers slowly):
        ask its HTTP interface once more, alone and with three times the time, before it is written."""
        http = self.host_probes.get("http")
        if http is None or not self.o.credentials or any(d.protocol == NVR_CHANNEL for d in rec.discovery):
            return rec
        await self.ready()
        ident = self._identify(rec)
        if ident.device_type not in RECORDER_TYPES:
            self._known[id(rec)] = (rec, ident)  # record() writes this very record: not identified twice
            return rec
        ctx = self.context(timeout=self.o.timeout * 3)
        if not ctx.credentials_for(ip):
            return rec
        try:
            frag = await asyncio.wait_for(http(ip, ctx), self.o.timeout * 9 + self.o.connect_timeout)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            self.cut_short += 1
            return merge_fragments(ip, rec.mac, [rec.to_dict(), cut_short_fragment(["http"], "recorder follow-up")])
        except Exception:
            return rec
        have = {d.protocol for d in rec.discovery}
        extra = [d for d in (frag or {}).get("discovery", []) or []
                 if isinstance(d, Mapping) and (d.get("protocol") == NVR_CHANNEL or d.get("protocol") not in have)]
        return merge_fragments(ip, rec.mac, [rec.to_dict(), {"discovery": extra}]) if extra else rec

    async def write(self, rec: EvidenceRecord, ident: Identification, **kw: Any) -> int:
        loop = asyncio.get_running_loop()
        call = functools.partial(self.store.record_device, self.scan_id, rec, ident, policy=self.o.policy,
                                 site=self.o.site, **kw)
        return await asyncio.shield(loop.run_in_executor(self.writer, call))

    async def ready(self) -> None:
        """Wait for the identifier (and the fingerprint database) loading in its thread."""
        if self.identifier is None and self.identifier_future is not None:
            try:
                self.identifier = await asyncio.shield(self.identifier_future)
            except CamsweepError:
                raise
            except Exception as exc:
                raise CamsweepError(f"cannot load the fingerprints: {type(exc).__name__}: {exc}") from None
            version = fingerprints_version()
            if version:
                await asyncio.get_running_loop().run_in_executor(
                    self.writer, functools.partial(self.store.set_fingerprints_version, self.scan_id, version))

    async def record(self, rec: EvidenceRecord) -> None:
        await self.ready()
        parent, children = split_channels(rec)
        known = self._known.pop(id(parent), None)
        ident = known[1] if known is not None and known[0] is parent else self._identify(parent)
        kids = []
        for child in children:
            chan = next((d.fields.get("channel") for d in child.discovery if d.protocol == NVR_CHANNEL), None)
            kids.append((child, self._identify(child), chan))
        try:
            if not kids:
                dev_id, kid_ids = await self.write(parent, ident), []
            else:  # a recorder and its channels in one transaction: a kill between them leaves neither (resume)
                loop = asyncio.get_running_loop()
                call = functools.partial(self._write_recorder, parent, ident, kids)
                dev_id, kid_ids = await asyncio.shield(loop.run_in_executor(self.writer, call))
        except DeviceWriteError as exc:  # this device's values: logged, and the scan goes on
            if not kids:
                self.not_stored(exc)
                return
            dev_id, kid_ids = await self._write_one_by_one(parent, ident, kids)
            if dev_id is None:
                return
        self.devices += 1
        self.emit("device_identified", _row(dev_id, parent, ident))
        for (child, cident, chan), cid in zip(kids, kid_ids, strict=True):
            if cid is None:
                continue
            self.devices += 1
            self.emit("device_identified", {**_row(cid, child, cident), "parent_id": dev_id, "channel": chan})

    async def _write_one_by_one(self, parent: EvidenceRecord, ident: Identification,
                                kids: list[tuple[EvidenceRecord, Identification, str | None]],
                                ) -> tuple[int | None, list[int | None]]:
        """A recorder whose transaction the store refused (one device's values): each device written on
        its own, so only the refused one is missing."""
        try:
            dev_id = await self.write(parent, ident)
        except DeviceWriteError as exc:
            self.not_stored(exc)
            return None, []
        ids: list[int | None] = []
        for child, cident, chan in kids:
            try:
                ids.append(await self.write(child, cident, parent_id=dev_id, channel=chan))
            except DeviceWriteError as exc:
                self.not_stored(exc)
                ids.append(None)
        return dev_id, ids

    def not_stored(self, exc: Exception) -> None:
        logging.getLogger("camsweep.engine").warning("%s", exc)
        self.emit("warning", str(exc))

    def _write_recorder(self, parent: EvidenceRecord, ident: Identification,
                        kids: list[tuple[EvidenceRecord, Identification, str | None]]) -> tuple[int, list[int]]:
        """In the writer thread: the recorder, then its channel devices, committed together."""
        tx = getattr(self.store, "transaction", None)
        with tx() if tx is not None else contextlib.nullcontext():
            kw = {"policy": self.o.policy, "site": self.o.site}
            dev_id = self.store.record_device(self.scan_id, parent, ident, **kw)
            ids = [self.store.record_device(self.scan_id, child, cident, parent_id=dev_id, channel=chan, **kw)
                   for child, cident, chan in kids]
        return dev_id, ids

    def _identify(self, rec: EvidenceRecord) -> Identification:
        try:  # plus where the record's MAC came from (scanner.macsources), when it says
            return macsources.annotate(self.identifier.identify(rec), rec)
        except Exception as exc:  # the identifier must not lose a device: store it unidentified
            return Identification(notes=(f"identification failed: {type(exc).__name__}",))

    async def probe_all(self) -> None:
        hosts = [ip for ip in self.hosts if ip not in self.skip]
        for ip in list(self.hosts):
            if ip in self.skip:
                self.hosts.pop(ip, None)
        if self.o.assume_up:
            hosts = None  # type: ignore[assignment]
        total = len(hosts) if hosts is not None else max(0, len(self.targets) - len(self.skip))
        total += len(self.streamed)
        self.emit("hosts_found", {"count": total})
        self.emit("progress", (self.done, total))
        from scanner.pacing import watch

        self.monitor, self.gate = watch(self.o.concurrency)
        try:
            await self._probe_all(hosts, total)
        finally:
            await self.monitor.stop()
            if self.stream_tasks:
                await asyncio.gather(*list(self.stream_tasks), return_exceptions=True)
        if self.gate.backoffs:  # pacing did its job; only a probe cut short (below) lost anything
            logging.getLogger("camsweep.engine").info(
                "the event loop lagged (up to %.1f s): hosts probed at once cut from %d to %d at the worst",
                self.monitor.peak, self.o.concurrency, self.gate.lowest)
            self.emit("pacing", {"peak_lag": self.monitor.peak, "lowest": self.gate.lowest,
                                 "backoffs": self.gate.backoffs})
        if self.cut_short:
            self.emit("warning", f"{self.cut_short} hosts had a probe cut short by a deadline (each device's "
                                 f"record names them: discovery {CUT_SHORT_PROTOCOL}.cut_short)")
        if self.stream_errors:
            raise self.stream_errors[0]

    async def _probe_all(self, hosts: list[str] | None, total: int) -> None:
        source = iter(hosts) if hosts is not None else (ip for ip in self.targets if ip not in self.skip)
        if self.pool is None and self.o.workers < 0:
            n = worker_count(self.o, total)
            if n:
                self.pool = WorkerPool(n, self.o)
        if self.pool is not None and total:
            source = await self.probe_with_workers(source, total)
        sem = self.gate  # hosts in flight: the concurrency asked for, less while the loop lags (scanner.pacing)
        tasks: set[asyncio.Task] = set()
        errors: list[BaseException] = []

        async def run(ip: str) -> None:
            try:
                await self.probe_host(ip)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store failing, say: stop the scan with that error
                errors.append(exc)
            finally:
                sem.release()
                self.done += 1
                self.emit("progress", (self.done, total))

        for ip in source:
            if errors:
                break
            await sem.acquire()
            t = asyncio.create_task(run(ip))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
        if errors:
            raise errors[0]


    async def probe_with_workers(self, source: Iterator[str], total: int) -> Iterator[str]:
        """Hand the hosts to the worker processes; identify and store each as its fragments come back.
        Returns the hosts left over if every worker died (they are then probed in this process)."""
        import queue

        assert self.pool is not None
        loop = asyncio.get_running_loop()
        reader = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="camsweep-results")
        pending: dict[str, tuple[str | None, list[dict]]] = {}
        for ip in source:
            frags, mac = self.hosts.pop(ip, []), self.macs.pop(ip, None)
            skip = tuple(n for n in self.host_probes if n not in self.probes_for(ip))
            pending[ip] = (mac, frags)
            self.pool.jobs.put((ip, frags, skip))
        for _ in self.pool.procs:
            self.pool.jobs.put(None)
        finishing: set[asyncio.Task] = set()
        errors: list[BaseException] = []
        finish_sem = asyncio.Semaphore(max(1, self.o.concurrency))

        async def finish(ip: str, mac: str | None, frags: list[dict]) -> None:
            try:
                await self.finish_host(ip, mac, frags)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                errors.append(exc)
            finally:
                finish_sem.release()
                self.done += 1
                self.emit("progress", (self.done, total))

        results = self.pool.results

        try:
            while pending and not errors:
                try:
                    batch = await loop.run_in_executor(reader, take_batch, results, 256)
                except queue.Empty:
                    if not self.pool.alive():
                        self.emit("warning", "the probe workers stopped; probing the rest in this process")
                        break
                    continue
                for ip, frags in batch:
                    if ip not in pending:
                        continue  # a worker's "ready"
                    mac, old = pending.pop(ip)
                    await finish_sem.acquire()
                    t = asyncio.create_task(finish(ip, mac, old + list(frags or [])))
                    finishing.add(t)
                    t.add_done_callback(finishing.discard)
            if finishing:
                await asyncio.gather(*finishing)
        finally:
            reader.shutdown(wait=False, cancel_futures=True)
        if errors:
            raise errors[0]
        for ip, (mac, frags) in pending.items():
            self.hosts[ip] = frags
            if mac:
                self.macs[ip] = mac
        return iter(list(pending))


def worker_count(options: ScanOptions, hosts: TargetSet | int) -> int:
    """How many worker processes a scan of ``hosts`` live hosts (or a TargetSet: its size) uses: the number
    asked for; none with injected seams (tests) or nothing to probe; automatic (-1): see ScanOptions.workers."""
    if options.workers == 0:
        return 0
    if options.host_probes is not None or options.http_transport is not None or options.open_stream is not None \
            or options.datagram is not None:
        return 0
    if options.pcap or options.probes == ():  # -sn / offline: nothing per host to spread over processes
        return 0
    if options.workers > 0:
        return min(options.workers, 16)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n = hosts.upper_bound() if isinstance(hosts, TargetSet) else int(hosts)
    if cpus < WORKER_MIN_CPUS or n < WORKER_MIN_HOSTS:
        return 0
    return min(cpus // 2, MAX_WORKERS)


def _row(dev_id: int, rec: EvidenceRecord, ident: Identification) -> dict[str, Any]:
    return {"device_id": dev_id, "ip": rec.ip, "mac": rec.mac, **{
        k: v for k, v in ident.to_dict().items() if k != "id"}}


def _resume_plan(store: Store) -> tuple[int, list[str], ScanOptions, set[str]]:
    """The last incomplete scan: its id, targets, options and the hosts it already identified."""
    scans = [s for s in store.scans() if s.status == "incomplete"]
    if not scans:
        raise CamsweepError("nothing to resume: no incomplete scan in the store")
    last = scans[-1]
    if store.latest_scan_id() != last.id:
        raise CamsweepError(f"scan {last.id} is incomplete but newer scans exist; nothing to resume")
    opts = ScanOptions.from_recorded(last.options)
    return last.id, last.targets, opts, store.identified_ips(last.id)


def recorders_without_channels(store: Store, scan_id: int) -> set[str]:
    """Recorders a scan stored with no channel device: with credentials, their work may not be finished
    (the channel list lost to a deadline under load), so ``--resume`` asks them again."""
    rows = store.devices(scan_id)
    parents = {r["parent_id"] for r in rows if r.get("parent_id")}
    return {r["ip"] for r in rows if not r.get("parent_id") and r.get("ip")
            and r.get("device_type") in RECORDER_TYPES and r["device_id"] not in parents}


FDS_PER_HOST = 16  # sockets one host's probes may hold at once (per_host probes, some with a few connections)


def raise_fd_limit(options: ScanOptions) -> None:
    """Let the soft open-file limit cover the scan's sockets (128 hosts at once with up to FDS_PER_HOST
    sockets each outgrow the 1024 of many desktops), up to the hard limit; worker processes inherit it.
    Never lowers it."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = options.concurrency * FDS_PER_HOST + 256
        if hard != resource.RLIM_INFINITY:
            want = min(want, hard)
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ImportError, ValueError, OSError):
        pass


async def run_scan(targets: list[str] | TargetSet, options: ScanOptions, store: Store, *,
                   on_event: Callable[[ScanEvent], None] | None = None) -> int:
    """Scan ``targets`` (specs as the user wrote them, or a parsed TargetSet) and return the scan id.

    With ``options.resume``, ``targets`` may be empty: the last incomplete scan carries on (its
    targets and options are reused; the seams and credentials of ``options`` apply)."""
    skip: set[str] = set()
    load_later = options.identifier is None
    if load_later:
        require_identify()  # fails before any scan row is written
    if options.resume:
        scan_id, old_targets, recorded, skip = _resume_plan(store)
        if options.credentials:
            skip -= recorders_without_channels(store, scan_id)
        for name in ScanOptions._SEAMS:
            setattr(recorded, name, getattr(options, name))
        options = recorded
        options.resume = True
        tset = parse_targets(old_targets, exclude=options.exclude, max_hosts=options.max_hosts)
        store.reopen_scan(scan_id, pid=os.getpid())
    else:
        tset = targets if isinstance(targets, TargetSet) else \
            parse_targets(targets, exclude=options.exclude, max_hosts=options.max_hosts)
        opts = {**options.recordable(), "_pid": os.getpid()}
        scan_id = store.start_scan(tset.texts, options=opts, site=options.site, policy=options.policy,
                                   fingerprints_version=None if load_later else fingerprints_version())
    status, error = "incomplete", None
    scan: _Scan | None = None
    raise_fd_limit(options)
    try:
        scan = _Scan(tset, options, store, scan_id, on_event, skip)
        n_workers = worker_count(options, tset) if options.workers > 0 else 0  # auto: after discovery
        if n_workers:
            scan.pool = WorkerPool(n_workers, options)  # their imports overlap discovery
        if load_later:
            # the fingerprints load in a thread while discovery runs; if they cannot (an unknown
            # policy, a broken database), the scan stops at once with that message
            fut = scan.identifier_future = asyncio.get_running_loop().run_in_executor(
                None, load_identifier, options.policy)
            disc = asyncio.ensure_future(scan.discover())
            await asyncio.wait({disc, fut}, return_when=asyncio.FIRST_EXCEPTION)
            if fut.done() and fut.exception() is not None:
                disc.cancel()
                await asyncio.gather(disc, return_exceptions=True)
                await scan.ready()  # raises the loader's error
            await disc
        else:
            await scan.discover()
        await scan.probe_all()
        status = "complete"
    except asyncio.CancelledError:
        error = "the scan was cancelled"
        raise
    except TargetError:
        status, error = "error", "bad targets"
        raise
    except CamsweepError as exc:
        status, error = "error", str(exc)
        raise
    except Exception as exc:
        status, error = "error", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        if scan is not None:
            if scan.pool is not None:
                scan.pool.stop()
            scan.writer.shutdown(wait=True)  # a write already started finishes; none is left half-done
        with contextlib.suppress(Exception):
            store.finish_scan(scan_id, status=status, error=error)
        if on_event is not None:
            with contextlib.suppress(Exception):
                on_event(ScanEvent("finished", {"scan_id": scan_id, "status": status,
                                                "devices": store.scan(scan_id).device_count}))
    return scan_id


__all__ = ["ScanOptions", "ScanEvent", "RateLimiter", "run_scan", "merge_fragments", "split_channels",
           "read_routes", "attached_interfaces"]
