"""This host's network, as the kernel of the current network namespace sees it: the IPv4 routes
(/proc/net/route), the interfaces on which targets are directly attached, an interface's own address and
MAC, and the ARP neighbour table (/proc/net/arp).

Reads only: nothing here sends a packet. :class:`HostNetwork` gathers the facts one scan needs about its
targets (attached interfaces and segments, the scanner's own addresses, which targets have a route).
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scanner.evidence import normalize_mac
from scanner.targets import TargetSet


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


class HostNetwork:
    """What one scan knows of this host's network, read once when it starts: the routes, the interfaces
    attached to its targets (``named``: the one the user gave), the scanner's own addresses on them and the
    networks of those segments. ``routes`` replaces the kernel's routing table (tests, embedding)."""

    def __init__(self, targets: TargetSet, routes: Callable[[], list[Route]] | None = None,
                 named: str | None = None) -> None:
        self.targets = targets
        self.routes = (routes or read_routes)()
        self.interfaces = attached_interfaces(targets, self.routes, named)
        self.own: set[str] = set()  # the scanner's own addresses: never a packet to them
        for iface in self.interfaces:
            ip, _ = interface_addresses(iface)
            if ip:
                self.own.add(ip)
        self.attached_nets = [r.network for r in self.routes if r.interface in self.interfaces
                              and r.gateway is None and r.network.prefixlen > 0]

    def segments(self, iface: str) -> list[ipaddress.IPv4Network]:
        """The networks directly attached on ``iface`` (connected routes, the default one aside)."""
        return [r.network for r in self.routes if r.interface == iface and r.gateway is None
                and r.network.prefixlen > 0]

    def in_scope(self, ip: str) -> bool:
        """Whether a packet may go to ``ip``: a target, and not the scanner's own address."""
        return ip in self.targets and ip not in self.own

    def reachable(self, ip: str) -> bool:
        """Whether any route leads to ``ip`` (loopback and IPv6 are taken as reachable). A target with no
        route at all cannot be sent a packet: it costs no liveness attempt and no rate token."""
        addr = ipaddress.ip_address(ip)
        if addr.version != 4 or addr.is_loopback or not self.routes:
            return True
        return any(addr in r.network for r in self.routes)
