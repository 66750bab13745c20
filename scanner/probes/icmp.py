"""ICMP echo: liveness for routed targets (where ARP cannot reach), before the TCP knocks.

:func:`build_echo` and :func:`parse_echo_reply` are pure functions over bytes (a reply that does not
parse is "not ours", never an exception); :func:`icmp_sweep` sends one echo request to each target
through a raw socket, paced by the scan's rate limiter, and needs root or CAP_NET_RAW (without them it
returns nothing and TCP liveness does the work).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import struct
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scanner.pacing import RateLimiter


def build_echo(ident: int, seq: int, payload: bytes = b"camsweep") -> bytes:
    """An ICMP echo request (type 8) with its checksum."""
    head = struct.pack("!BBHHH", 8, 0, 0, ident & 0xFFFF, seq & 0xFFFF)
    return head[:2] + struct.pack("!H", inet_checksum(head + payload)) + head[4:] + payload


def inet_checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
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
