"""ARP sweep of a directly attached subnet, on the named interface only.

The request frame (:func:`build_arp_request`, 42 bytes, checked against scapy's own in the tests) is sent
for every address from one packet socket bound to the interface (kernel-filtered to ARP), and the answers
are read as they come: the first round ends 0.15 s after the last request or answer, the silent addresses
are asked once more, and the second round ends 0.25 s after its last request or answer (answers to either
request count, so a device has 0.4 s to answer; arp-scan waits 500 ms a host, then retries). When the packet socket cannot be opened, scapy's
``srp`` does the sweep instead. The fast path does not import scapy: its import costs ~0.35 s of CPU,
a fifth of a /24 sweep (bench/scan.py measures the sweep beside arp-scan).

:func:`sweep` refuses to run without an interface and caps the sweep at MAX_HOSTS addresses. It asks the
addresses it is given (the engine gives the target addresses on the segment, exclusions out: an address
the user did not name is never asked), or every address of a ``network``. Answers become ``{"ip", "mac"}``
fragments, only for addresses asked (and not rejected by ``ctx.allow``).
:func:`parse_arp_reply` is the pure part, shared with passive capture.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Callable
from typing import Any

from scanner.evidence import normalize_mac
from scanner.probes.base import ProbeContext

MAX_HOSTS = 4096


def parse_arp_reply(psrc: Any, hwsrc: Any) -> dict | None:
    """(sender IP, sender MAC) of an ARP packet -> ``{"ip", "mac"}``; None for junk or unset values."""
    try:
        ip = ipaddress.IPv4Address(str(psrc))
    except ValueError:
        return None
    mac = normalize_mac(str(hwsrc))
    if mac is None or mac in ("00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff") or ip.is_unspecified:
        return None
    return {"ip": str(ip), "mac": mac}


INTER = 0.0005  # seconds between requests: a burst of a few hundred frames overflows the queue (ENOBUFS)


class _SendErrors:
    """Counts scapy's send errors (its sender thread only logs them), so a lost burst can be re-sent."""

    def __init__(self) -> None:
        import logging

        class Handler(logging.Handler):
            def __init__(self, outer: _SendErrors) -> None:
                super().__init__(logging.ERROR)
                self.outer = outer

            def emit(self, record: logging.LogRecord) -> None:
                self.outer.count += 1

        self.count = 0
        self.handler = Handler(self)


def _srp(targets: list[str], iface: str, timeout: float) -> list[tuple[str, str]]:
    import logging

    from scapy.layers.l2 import ARP, Ether
    from scapy.sendrecv import srp

    log = logging.getLogger("scapy.runtime")
    errors = _SendErrors()
    # scapy's sender thread logs a send error (e.g. ENOBUFS) with a traceback on stderr; camsweep's
    # stderr is for its own diagnostics. The errors are counted instead, and the sweep repeated once.
    saved = log.propagate, list(log.handlers), log.level
    log.propagate, log.handlers = False, [errors.handler]
    log.setLevel(logging.ERROR)
    try:
        found: dict[str, str] = {}
        for _attempt in range(2):
            errors.count = 0
            answered, _ = srp(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=targets), iface=iface, timeout=timeout,
                              verbose=False, retry=0, inter=INTER)
            for _s, r in answered:
                found.setdefault(r.psrc, r.hwsrc)
            if not errors.count:
                break
        return list(found.items())
    finally:
        log.propagate, log.handlers = saved[0], saved[1]
        log.setLevel(saved[2])


ETH_P_ARP = 0x0806
QUIET = (0.15, 0.25)  # seconds of silence after the last request or answer that end each round
PACE = 0.0002  # seconds between requests (5,000 a second): a burst overflows the queue (ENOBUFS)


def parse_arp_frame(frame: bytes) -> dict | None:
    """An Ethernet frame -> ``{"ip", "mac"}`` of an ARP reply's sender; None for anything else. Pure."""
    if len(frame) < 42 or frame[12:14] != b"\x08\x06" or frame[14:20] != b"\x00\x01\x08\x00\x06\x04":
        return None
    if frame[20:22] != b"\x00\x02":  # only replies
        return None
    return parse_arp_reply(".".join(str(b) for b in frame[28:32]), frame[22:28].hex())


def build_arp_request(src_mac: str, src_ip: str, target_ip: str) -> bytes:
    """A broadcast ARP who-has frame (Ethernet II): ``target_ip`` asked by ``src_mac``/``src_ip``. Pure."""
    mac = bytes.fromhex(src_mac.replace(":", ""))
    if len(mac) != 6:
        raise ValueError(f"not a MAC address: {src_mac!r}")
    return (b"\xff" * 6 + mac + b"\x08\x06" + b"\x00\x01\x08\x00\x06\x04\x00\x01" + mac
            + ipaddress.IPv4Address(src_ip).packed + bytes(6) + ipaddress.IPv4Address(target_ip).packed)


def interface_mac(iface: str) -> str | None:
    """The interface's hardware address (from sysfs), or None."""
    try:
        with open(f"/sys/class/net/{iface}/address") as f:
            mac = normalize_mac(f.read(64).strip())
    except (OSError, ValueError):
        return None
    return mac


def _socket_sweep(addresses: list[str], iface: str, budget: float,
                  after_first_round: Callable[[list[tuple[str, str]]], None] | None = None) -> list[tuple[str, str]]:
    """(ip, mac) of every address that answered. ``after_first_round`` (called in this thread) gets the
    answers of the first round while the silent addresses are asked again."""
    import select
    import socket
    import time

    from scanner.probes.base import interface_ipv4

    my_mac, my_ip = interface_mac(iface), interface_ipv4(iface)
    if my_mac is None or my_ip is None:
        raise OSError(f"{iface}: no hardware or IPv4 address")
    template = build_arp_request(my_mac, my_ip, "0.0.0.0")
    targets = [a for a in addresses if a != my_ip]
    found: dict[str, str] = {}
    deadline = time.monotonic() + budget
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP)) as sock:
        sock.bind((iface, ETH_P_ARP))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.setblocking(False)

        def drain() -> bool:
            got = False
            while True:
                try:
                    frame = sock.recv(2048)
                except (BlockingIOError, InterruptedError):
                    return got
                frag = parse_arp_frame(frame)
                if frag and frag["ip"] not in found:
                    found[frag["ip"]] = frag["mac"]
                    got = True

        for n_round, quiet in enumerate(QUIET):
            todo = [t for t in targets if t not in found]
            if not todo or time.monotonic() >= deadline:
                break
            if n_round == 1 and after_first_round is not None:
                with contextlib.suppress(Exception):
                    after_first_round(list(found.items()))
            for i, ip in enumerate(todo):
                frame = template[:38] + ipaddress.IPv4Address(ip).packed + template[42:]
                for _try in range(50):
                    try:
                        sock.send(frame)
                        break
                    except BlockingIOError:
                        time.sleep(0.001)
                    except OSError as exc:  # ENOBUFS: the queue is full, let it drain
                        if exc.errno != 105:
                            raise
                        time.sleep(0.002)
                if i % 16 == 15:
                    drain()
                    time.sleep(PACE * 16)
            last = time.monotonic()
            while True:
                now = time.monotonic()
                if now - last >= quiet or now >= deadline or len(found) >= len(targets):
                    break
                select.select([sock], [], [], min(quiet - (now - last), max(deadline - now, 0)))
                if drain():
                    last = time.monotonic()
    return list(found.items())


def _addresses(network: str | None, addresses: list[str] | None) -> list[str] | None:
    """The IPv4 addresses to ask, each once: ``addresses``, else every host of ``network``; None if neither
    reads or there are more than MAX_HOSTS."""
    out: dict[str, None] = {}
    try:
        if addresses is not None:
            if len(addresses) > MAX_HOSTS:
                return None
            for a in addresses:
                out[str(ipaddress.IPv4Address(a))] = None
        elif network:
            net = ipaddress.IPv4Network(network, strict=False)
            if net.num_addresses > MAX_HOSTS:
                return None
            out = dict.fromkeys(str(a) for a in (net.hosts() if net.num_addresses > 2 else net))
        else:
            return None
    except ValueError:
        return None
    return list(out)


async def sweep(network: str | None, ctx: ProbeContext,
                on_answers: Callable[[list[dict]], None] | None = None, *,
                addresses: list[str] | None = None) -> list[dict]:
    """ARP ``addresses`` (else every address of ``network``, an attached subnet) on ``ctx.interface``, and
    nothing else. ``on_answers``, if given, is called (in the event loop) with the first round's answers
    while the second round runs; the return value holds every answer, those included."""
    if not ctx.interface:
        return []
    targets = _addresses(network, addresses)
    if not targets:
        return []
    asked = frozenset(targets)
    await ctx.throttle()
    budget = max(ctx.discover_wait, 1.0) + 2.0
    loop = asyncio.get_running_loop()
    early = None
    if on_answers is not None:
        def early(pairs: list[tuple[str, str]]) -> None:  # in the sweep's thread
            loop.call_soon_threadsafe(on_answers, _fragments(pairs, asked, ctx))
    try:
        pairs = await asyncio.wait_for(asyncio.to_thread(_socket_sweep, targets, ctx.interface, budget, early),
                                       budget + 5.0)
    except asyncio.CancelledError:
        raise
    except Exception:  # no packet socket here (no CAP_NET_RAW): scapy's srp, which says why if it fails
        try:
            pairs = await asyncio.wait_for(asyncio.to_thread(_srp, targets, ctx.interface, ctx.discover_wait),
                                           ctx.discover_wait + 10.0)
        except asyncio.CancelledError:
            raise
        except Exception:
            return []
    return _fragments(pairs, asked, ctx)


def _fragments(pairs: list[tuple[str, str]], asked: frozenset[str], ctx: ProbeContext) -> list[dict]:
    out: dict[str, dict] = {}
    for psrc, hwsrc in pairs:
        frag = parse_arp_reply(psrc, hwsrc)
        if frag and frag["ip"] in asked and ctx.allowed(frag["ip"]) and frag["ip"] not in out:
            out[frag["ip"]] = frag
    return list(out.values())


async def discover(ctx: ProbeContext, network: str | None = None,
                   on_answers: Callable[[list[dict]], None] | None = None,
                   addresses: list[str] | None = None) -> list[dict]:
    if not network and addresses is None:
        return []
    return await sweep(network, ctx, on_answers, addresses=addresses)
