"""Targets as nmap users write them, and nothing that was not asked for.

Accepted forms (each may be given on the command line, in an ``-iL`` file, or as an exclusion):

* a single address: ``198.18.0.7``, ``::1``
* a CIDR block: ``198.18.0.0/24`` (network and broadcast addresses are skipped for blocks of 4 or
  more addresses, as no device answers there), ``fd00::/120``
* nmap octet ranges: ``198.18.0.1-200``, ``198.18.0-3.1-254``, ``198.18.0.1,5,9-12``, ``198.18.*.1``
* a plain range: ``198.18.0.1-198.18.1.20``
* a host name, resolved once, with a bound on time and on the number of names

Nothing here sends a packet except name resolution. Targets iterate lazily: a /16 is never turned
into a list. Duplicates between specs and exclusions are found through a :class:`Cover`, built once from
every spec's address intervals (O(n log n)) and asked by bisection, so a list of 65,536 single addresses
costs linear time, not one membership test per earlier spec (bench/targets.py). An IPv6 link-local
address keeps its scope (``fe80::1%eth0``). An empty target list, multicast or broadcast targets, and lists
larger than ``max_hosts`` are refused with a :class:`TargetError`.
"""

from __future__ import annotations

import bisect
import concurrent.futures
import dataclasses
import heapq
import ipaddress
import itertools
import socket
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from scanner.errors import TargetError

DEFAULT_MAX_HOSTS = 65_536  # a /16; more needs --max-hosts
MAX_SPECS = 100_000  # target specs in one list (command line plus -iL files)
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_NAMES = 256  # host names resolved in one scan
RESOLVE_TIMEOUT = 5.0  # seconds, for all names together
MAX_SPEC_LEN = 255

# "this network", multicast, reserved and limited broadcast: never hosts to probe
_BAD_V4 = (ipaddress.IPv4Network("0.0.0.0/8"), ipaddress.IPv4Network("224.0.0.0/3"))


# --------------------------------------------------------------------------------------------
# one target spec


@dataclass(frozen=True, slots=True)
class V4Octets:
    """An nmap-style octet pattern: four sorted tuples of allowed values (CIDRs and single hosts too)."""

    text: str
    octets: tuple[tuple[int, ...], ...]
    skip_edges: tuple[int, int] | None = None  # (network, broadcast) as ints, for CIDR blocks
    version: ClassVar[int] = 4

    def count(self) -> int:
        n = 1
        for o in self.octets:
            n *= len(o)
        if self.skip_edges:
            n -= sum(1 for e in self.skip_edges if self._has(e))
        return n

    def _has(self, ip: int) -> bool:
        parts = ((ip >> 24) & 255, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255)
        return all(_has_octet(o, p) for p, o in zip(parts, self.octets, strict=True))

    def contains(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        if ip.version != 4:
            return False
        n = int(ip)
        if self.skip_edges and n in self.skip_edges:
            return False
        return self._has(n)

    def __iter__(self) -> Iterator[ipaddress.IPv4Address]:
        for a, b, c, d in itertools.product(*self.octets):
            n = (a << 24) | (b << 16) | (c << 8) | d
            if self.skip_edges and n in self.skip_edges:
                continue
            yield ipaddress.IPv4Address(n)

    def pairs(self) -> Iterator[tuple[int, str]]:
        """(address as int, address as text), in order; cheaper than making address objects."""
        edges = self.skip_edges
        for a, b, c, d in itertools.product(*self.octets):
            n = (a << 24) | (b << 16) | (c << 8) | d
            if edges and n in edges:
                continue
            yield n, f"{a}.{b}.{c}.{d}"

    def intervals(self, limit: int = 4096) -> list[tuple[int, int]] | None:
        """The spec as sorted, disjoint (first, last) int intervals; None when it needs more than ``limit``."""
        o = self.octets
        first = (o[0][0] << 24) | (o[1][0] << 16) | (o[2][0] << 8) | o[3][0]
        last = (o[0][-1] << 24) | (o[1][-1] << 16) | (o[2][-1] << 8) | o[3][-1]
        n = len(o[0]) * len(o[1]) * len(o[2]) * len(o[3])
        if n == last - first + 1:  # contiguous (a CIDR block, a plain octet run)
            out = [(first, last)]
        else:
            runs = _runs(o[3])
            if len(o[0]) * len(o[1]) * len(o[2]) * len(runs) > limit:
                return None
            out = []
            for a, b, c in itertools.product(o[0], o[1], o[2]):
                base = (a << 24) | (b << 16) | (c << 8)
                for lo, hi in runs:
                    if out and out[-1][1] + 1 == base | lo:
                        out[-1] = (out[-1][0], base | hi)
                    else:
                        out.append((base | lo, base | hi))
        for e in self.skip_edges or ():
            out = _cut(out, e)
        return out

    def networks(self) -> list[ipaddress.IPv4Network]:
        """Networks that cover this spec (used to find a directly attached interface)."""
        first = (self.octets[0][0] << 24) | (self.octets[1][0] << 16) | (self.octets[2][0] << 8) | self.octets[3][0]
        last = (self.octets[0][-1] << 24) | (self.octets[1][-1] << 16) | (self.octets[2][-1] << 8) | self.octets[3][-1]
        return list(ipaddress.summarize_address_range(ipaddress.IPv4Address(first), ipaddress.IPv4Address(last)))


def _runs(values: tuple[int, ...]) -> list[tuple[int, int]]:
    """Sorted values as (first, last) runs of consecutive values."""
    out: list[tuple[int, int]] = []
    for v in values:
        if out and out[-1][1] + 1 == v:
            out[-1] = (out[-1][0], v)
        else:
            out.append((v, v))
    return out


def _cut(intervals: list[tuple[int, int]], n: int) -> list[tuple[int, int]]:
    """``intervals`` without the single value ``n``."""
    out: list[tuple[int, int]] = []
    for lo, hi in intervals:
        if lo <= n <= hi:
            if lo < n:
                out.append((lo, n - 1))
            if n < hi:
                out.append((n + 1, hi))
        else:
            out.append((lo, hi))
    return out


def _has_octet(values: tuple[int, ...], v: int) -> bool:
    """Membership in a sorted tuple of octet values, by bisection."""
    i = bisect.bisect_left(values, v)
    return i < len(values) and values[i] == v


@dataclass(frozen=True, slots=True)
class IntRange:
    """A contiguous block of addresses, first..last inclusive (IPv4 plain ranges, IPv6 blocks)."""

    text: str
    version: int
    first: int
    last: int

    def count(self) -> int:
        return self.last - self.first + 1

    def contains(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return ip.version == self.version and self.first <= int(ip) <= self.last

    def __iter__(self) -> Iterator[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        cls = ipaddress.IPv4Address if self.version == 4 else ipaddress.IPv6Address
        for n in range(self.first, self.last + 1):
            yield cls(n)

    def pairs(self) -> Iterator[tuple[int, str]]:
        cls = ipaddress.IPv4Address if self.version == 4 else ipaddress.IPv6Address
        for n in range(self.first, self.last + 1):
            yield n, str(cls(n))

    def intervals(self, limit: int = 4096) -> list[tuple[int, int]] | None:
        return [(self.first, self.last)]

    def networks(self) -> list[ipaddress.IPv4Network] | list[ipaddress.IPv6Network]:
        cls = ipaddress.IPv4Address if self.version == 4 else ipaddress.IPv6Address
        return list(ipaddress.summarize_address_range(cls(self.first), cls(self.last)))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class ScopedV6:
    """One IPv6 address with its zone (``fe80::1%eth0``): a link-local address means nothing without it."""

    text: str
    address: ipaddress.IPv6Address
    version: int = 6

    def count(self) -> int:
        return 1

    def contains(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return ip == self.address

    def __iter__(self) -> Iterator[ipaddress.IPv6Address]:
        yield self.address

    def pairs(self) -> Iterator[tuple[int, str]]:
        yield int(self.address), str(self.address)

    def intervals(self, limit: int = 4096) -> list[tuple[int, int]] | None:
        return None  # kept apart from unscoped addresses (see Cover)

    def networks(self) -> list[ipaddress.IPv6Network]:
        return [ipaddress.IPv6Network(int(self.address))]


Spec = V4Octets | IntRange | ScopedV6


def _octet_values(part: str, text: str) -> tuple[int, ...]:
    if part in ("*", "-"):
        return tuple(range(256))
    values: set[int] = set()
    for piece in part.split(","):
        if not piece:
            raise TargetError(f"{text!r}: empty octet item")
        if "-" in piece:
            lo_s, hi_s = piece.split("-", 1)
            lo = int(lo_s) if lo_s else 0
            hi = int(hi_s) if hi_s else 255
        else:
            lo = hi = int(piece)
        if not (0 <= lo <= 255 and 0 <= hi <= 255):
            raise TargetError(f"{text!r}: octet values must be 0-255")
        if lo > hi:
            raise TargetError(f"{text!r}: range {piece} runs backwards")
        values.update(range(lo, hi + 1))
    return tuple(sorted(values))


def _is_octet_pattern(text: str) -> bool:
    parts = text.split(".")
    return len(parts) == 4 and all(p and all(c in "0123456789,-*" for c in p) for p in parts)


def parse_spec(text: str) -> Spec | None:
    """One target spec, or None when it is not an address form (then it may be a host name).

    Raises TargetError for an address form that is malformed or not allowed.
    """
    text = text.strip()
    if not text:
        raise TargetError("empty target")
    if len(text) > MAX_SPEC_LEN:
        raise TargetError(f"target too long: {text[:40]!r}...")
    if "/" in text:
        addr, _, plen = text.partition("/")
        if not plen.isdigit():
            raise TargetError(f"{text!r}: the prefix length must be a number")
        if _is_octet_pattern(addr) and not any(c in addr for c in ",-*"):
            try:
                net = ipaddress.IPv4Network(f"{addr}/{plen}", strict=False)
            except ValueError as exc:
                raise TargetError(f"{text!r}: {exc}") from None
            return _v4_net(text, net)
        try:
            net6 = ipaddress.IPv6Network(f"{addr}/{plen}", strict=False)
        except ValueError:
            raise TargetError(f"{text!r} is not a CIDR block") from None
        _check_v6(text, net6)
        return IntRange(text, 6, int(net6.network_address), int(net6.broadcast_address))
    if ":" in text:
        try:
            ip6 = ipaddress.IPv6Address(text)
        except ValueError:
            raise TargetError(f"{text!r} is not an IPv6 address") from None
        _check_v6(text, ipaddress.IPv6Network(int(ip6)))
        if ip6.scope_id:
            if not _valid_zone(ip6.scope_id):
                raise TargetError(f"{text!r}: {ip6.scope_id[:20]!r} is not an interface name or index")
            return ScopedV6(text, ip6)
        return IntRange(text, 6, int(ip6), int(ip6))
    # a plain range a.b.c.d-e.f.g.h
    if text.count("-") == 1 and text.count(".") == 6:
        lo_s, hi_s = text.split("-")
        try:
            lo, hi = ipaddress.IPv4Address(lo_s), ipaddress.IPv4Address(hi_s)
        except ValueError:
            raise TargetError(f"{text!r} is not an address range") from None
        if lo > hi:
            raise TargetError(f"{text!r}: range runs backwards")
        for bad in _BAD_V4:
            if int(lo) <= int(bad.broadcast_address) and int(hi) >= int(bad.network_address):
                raise TargetError(f"{text!r} includes {bad}, which is not a host range")
        return IntRange(text, 4, int(lo), int(hi))
    if _is_octet_pattern(text):
        octets = tuple(_octet_values(p, text) for p in text.split("."))
        spec = V4Octets(text, octets)
        _check_v4_octets(spec)
        return spec
    if text.replace(".", "").isdigit():
        raise TargetError(f"{text!r} is not an IPv4 address")
    return None


def _v4_net(text: str, net: ipaddress.IPv4Network) -> V4Octets:
    for bad in _BAD_V4:
        if net.overlaps(bad):
            raise TargetError(f"{text!r} includes {bad}, which is not a host range")
    first, last = int(net.network_address), int(net.broadcast_address)
    octets = []
    for shift in (24, 16, 8, 0):
        lo, hi = (first >> shift) & 255, (last >> shift) & 255
        octets.append(tuple(range(lo, hi + 1)))
    edges = (first, last) if net.num_addresses >= 4 else None
    return V4Octets(text, tuple(octets), edges)


def _check_v4_octets(spec: V4Octets) -> None:
    if any(o >= 224 or o == 0 for o in spec.octets[0]):
        raise TargetError(f"{spec.text!r} includes multicast, reserved or broadcast addresses, not hosts")


def _valid_zone(zone: str) -> bool:
    """An interface name (as Linux allows: 1-15 printable characters, no '/' or white space) or index."""
    return 0 < len(zone) <= 15 and all(c.isprintable() and not c.isspace() and c not in "/%" for c in zone)


def _check_v6(text: str, net: ipaddress.IPv6Network) -> None:
    if net.is_multicast or net.network_address.is_unspecified:
        raise TargetError(f"{text!r} is a multicast or unspecified address, not a host")


# --------------------------------------------------------------------------------------------
# name resolution (once, bounded)


Resolver = Callable[[str], list[str]]


def resolve_name(name: str) -> list[str]:
    """Addresses of a host name (IPv4 first), through the system resolver."""
    infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    addrs: list[str] = []
    for family, _, _, _, sockaddr in infos:
        a = str(sockaddr[0]).split("%")[0]
        if a not in addrs and family in (socket.AF_INET, socket.AF_INET6):
            addrs.append(a)
    addrs.sort(key=lambda a: ":" in a)
    return addrs


def _valid_name(name: str) -> bool:
    if len(name) > 253 or name.startswith(("-", ".")):
        return False
    return all(c.isalnum() or c in "-._" for c in name)


def resolve_names(names: Sequence[str], resolver: Resolver = resolve_name,
                  timeout: float = RESOLVE_TIMEOUT) -> dict[str, str]:
    """Resolve each name once, all within ``timeout`` seconds; name -> first address.

    A name that does not resolve, or not in time, is a TargetError naming it.
    """
    if len(names) > MAX_NAMES:
        raise TargetError(f"{len(names)} host names given; at most {MAX_NAMES} are resolved in one scan")
    for n in names:
        if not _valid_name(n):
            raise TargetError(f"{n[:60]!r} is neither an address, a range, a CIDR block nor a host name")
    if not names:
        return {}
    out: dict[str, str] = {}
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(16, len(names)))
    try:
        futs = {pool.submit(resolver, n): n for n in names}
        done, pending = concurrent.futures.wait(futs, timeout=timeout)
        if pending:
            slow = sorted(futs[f] for f in pending)
            raise TargetError(f"could not resolve {', '.join(slow[:5])} within {timeout:g} s")
        for f in done:
            name = futs[f]
            try:
                addrs = f.result()
            except (OSError, UnicodeError) as exc:
                raise TargetError(f"cannot resolve {name!r}: {getattr(exc, 'strerror', None) or exc}") from None
            if not addrs:
                raise TargetError(f"{name!r} has no address")
            out[name] = addrs[0]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return out


# --------------------------------------------------------------------------------------------
# reading lists


def read_list_file(path: str) -> list[str]:
    """Specs in an ``-iL``/``--excludefile`` file (``-`` for standard input): white space separated,
    ``#`` starts a comment. Capped in size."""
    try:
        if path == "-":
            data = sys.stdin.read(MAX_FILE_BYTES + 1)
        else:
            p = Path(path)
            if p.is_dir():
                raise TargetError(f"{path} is a directory, not a list of targets")
            with p.open("r", encoding="utf-8", errors="replace") as fh:
                data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise TargetError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise TargetError(f"{path} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    return split_specs(data.splitlines())


def split_specs(lines: Iterable[str]) -> list[str]:
    """White-space separated specs (as nmap reads -iL; a comma belongs to an octet list)."""
    out: list[str] = []
    for line in lines:
        for item in line.split("#", 1)[0].split():
            out.append(item)
            if len(out) > MAX_SPECS:
                raise TargetError(f"more than {MAX_SPECS} targets listed")
    return out


def split_exclude(value: str) -> list[str]:
    """``--exclude a,b,c``: nmap separates exclusions with commas."""
    return [v for v in (x.strip() for x in value.split(",")) if v]


# --------------------------------------------------------------------------------------------
# a target set


MAX_SPEC_INTERVALS = 4096  # a spec listing more intervals than this (a sparse octet pattern) is asked directly


class Cover:
    """Which spec (by its index in a list) first holds an address, for any number of specs.

    Every spec's intervals are swept once into sorted, disjoint segments, each tagged with the lowest
    index of the specs covering it; an address is looked up by bisection. Scoped IPv6 addresses are kept
    in a dict; a spec with too many intervals (``*.*.7.1``) is asked with ``contains`` (few such specs fit
    under any host limit).
    """

    def __init__(self, specs: Sequence[Spec]) -> None:
        self.starts: dict[int, list[int]] = {4: [], 6: []}
        self.ends: dict[int, list[int]] = {4: [], 6: []}
        self.owners: dict[int, list[int]] = {4: [], 6: []}
        self.scoped: dict[ipaddress.IPv6Address, int] = {}
        self.sparse: list[tuple[int, Spec]] = []
        per_version: dict[int, list[tuple[int, int, int]]] = {4: [], 6: []}
        for idx, spec in enumerate(specs):
            if isinstance(spec, ScopedV6):
                self.scoped.setdefault(spec.address, idx)
                continue
            ivs = spec.intervals(MAX_SPEC_INTERVALS)
            if ivs is None:
                self.sparse.append((idx, spec))
                continue
            per_version[spec.version].extend((lo, hi, idx) for lo, hi in ivs)
        for version, ivs in per_version.items():
            self._sweep(version, ivs)

    def _sweep(self, version: int, ivs: list[tuple[int, int, int]]) -> None:
        if not ivs:
            return
        adds: dict[int, list[int]] = {}
        ends: dict[int, list[int]] = {}
        for lo, hi, idx in ivs:
            adds.setdefault(lo, []).append(idx)
            ends.setdefault(hi + 1, []).append(idx)
        bounds = sorted(adds.keys() | ends.keys())
        heap: list[int] = []
        gone: dict[int, int] = {}
        starts, stops, owners = self.starts[version], self.ends[version], self.owners[version]
        for k, pos in enumerate(bounds[:-1]):
            for idx in ends.get(pos, ()):
                gone[idx] = gone.get(idx, 0) + 1
            for idx in adds.get(pos, ()):
                heapq.heappush(heap, idx)
            while heap and gone.get(heap[0]):
                gone[heap[0]] -= 1
                heapq.heappop(heap)
            if not heap:
                continue
            owner, last = heap[0], bounds[k + 1] - 1
            if owners and owners[-1] == owner and stops[-1] + 1 == pos:
                stops[-1] = last
            else:
                starts.append(pos)
                stops.append(last)
                owners.append(owner)

    def owner(self, version: int, n: int, ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None,
              before: int | None = None) -> int | None:
        """The index of the first spec holding the address ``n`` (an int; ``ip`` is the address object, needed
        only for scoped and sparse specs), or None. With ``before``, only specs with a lower index count."""
        best: int | None = None
        starts = self.starts[version]
        if starts and not getattr(ip, "scope_id", None):  # fe80::1%eth0 is not fe80::1, though their ints agree
            i = bisect.bisect_right(starts, n) - 1
            if i >= 0 and self.ends[version][i] >= n:
                best = self.owners[version][i]
        if self.sparse or (self.scoped and version == 6):
            if ip is None:
                ip = ipaddress.IPv4Address(n) if version == 4 else ipaddress.IPv6Address(n)
            if version == 6 and self.scoped:
                j = self.scoped.get(ip)  # type: ignore[call-overload]
                if j is not None and (best is None or j < best):
                    best = j
            for j, spec in self.sparse:
                if (best is not None and j >= best) or (before is not None and j >= before):
                    break
                if spec.contains(ip):
                    best = j
                    break
        if best is not None and before is not None and best >= before:
            return None
        return best

    def segments(self, version: int) -> Iterator[tuple[int, int]]:
        """The covered addresses as sorted (first, last) runs, adjacent segments joined."""
        lo = hi = None
        for a, b in zip(self.starts[version], self.ends[version], strict=True):
            if hi is not None and a == hi + 1:
                hi = b
                continue
            if lo is not None:
                yield lo, hi  # type: ignore[misc]
            lo, hi = a, b
        if lo is not None:
            yield lo, hi  # type: ignore[misc]


class TargetSet:
    """The hosts to scan: specs minus exclusions, iterated lazily and without duplicates."""

    def __init__(self, specs: list[Spec], excludes: list[Spec], names: dict[str, str] | None = None,
                 texts: list[str] | None = None) -> None:
        self.specs = specs
        self.excludes = excludes
        self.names = dict(names or {})  # name -> address, as resolved
        self.texts = list(texts or [s.text for s in specs])
        self._count: int | None = None
        self._cover: Cover | None = None
        self._ex_cover: Cover | None = None

    @property
    def cover(self) -> Cover:
        if self._cover is None:
            self._cover = Cover(self.specs)
        return self._cover

    @property
    def exclusion_cover(self) -> Cover | None:
        if self._ex_cover is None and self.excludes:
            self._ex_cover = Cover(self.excludes)
        return self._ex_cover

    def __iter__(self) -> Iterator[str]:
        for _, text in self.pairs():
            yield text

    def pairs(self) -> Iterator[tuple[int, str]]:
        """(address as int, as text) of every host, in the order of the specs, each once."""
        cover, ex = self.cover, self.exclusion_cover
        simple = len(self.specs) == 1
        for i, spec in enumerate(self.specs):
            v = spec.version
            needs_ip = bool(cover.sparse or cover.scoped or (ex is not None and (ex.sparse or ex.scoped)))
            for n, text in spec.pairs():
                ip = None
                if needs_ip:
                    ip = ipaddress.ip_address(text)
                if ex is not None and ex.owner(v, n, ip) is not None:
                    continue
                if not simple and cover.owner(v, n, ip, before=i) is not None:
                    continue
                yield n, text

    def upper_bound(self) -> int:
        """Hosts before exclusions and duplicates: cheap, for refusing absurd lists."""
        return sum(s.count() for s in self.specs)

    def __len__(self) -> int:
        """The exact number of hosts (iterates once when specs overlap or exclusions apply)."""
        if self._count is None:
            if len(self.specs) == 1 and not self.excludes:
                self._count = self.specs[0].count()
            else:
                self._count = sum(1 for _ in self.pairs())
        return self._count

    def __contains__(self, ip: object) -> bool:
        try:
            addr = ipaddress.ip_address(str(ip))
        except ValueError:
            return False
        n = int(addr)
        ex = self.exclusion_cover
        if ex is not None and ex.owner(addr.version, n, addr) is not None:
            return False
        if self.cover.owner(addr.version, n, addr) is None:
            return False
        # a CIDR block's network and broadcast addresses are not in it (skip_edges): the cover knows that
        return True

    def networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """Networks that cover the targets (before exclusions), at most ~4096."""
        out: dict[ipaddress.IPv4Network | ipaddress.IPv6Network, None] = {}
        # blocks whole (their network and broadcast addresses too), so a /24 is one /24
        cover = Cover([dataclasses.replace(s, skip_edges=None) if isinstance(s, V4Octets) and s.skip_edges else s
                       for s in self.specs])
        for version, cls in ((4, ipaddress.IPv4Address), (6, ipaddress.IPv6Address)):
            for lo, hi in cover.segments(version):
                for n in ipaddress.summarize_address_range(cls(lo), cls(hi)):  # type: ignore[arg-type]
                    out[n] = None
                if len(out) > 4096:
                    return list(out)
        for spec in [s for _, s in cover.sparse] + [s for s in self.specs if isinstance(s, ScopedV6)]:
            for n in spec.networks():
                out[n] = None
            if len(out) > 4096:
                break
        return list(out)


def parse_targets(targets: Iterable[str], *, input_lists: Iterable[str] = (), exclude: Iterable[str] = (),
                  exclude_files: Iterable[str] = (), max_hosts: int | None = None,
                  resolver: Resolver = resolve_name, resolve_timeout: float = RESOLVE_TIMEOUT) -> TargetSet:
    """Build the target set. Refuses an empty list and one larger than ``max_hosts``
    (default :data:`DEFAULT_MAX_HOSTS`)."""
    texts = list(targets)
    for path in input_lists:
        texts.extend(read_list_file(path))
    ex_texts: list[str] = []
    for e in exclude:
        ex_texts.extend(split_exclude(e))
    for path in exclude_files:
        ex_texts.extend(read_list_file(path))
    if not [t for t in texts if t.strip()]:
        raise TargetError("no targets given: name the hosts or networks to scan (nothing is scanned by default)")
    if len(texts) > MAX_SPECS:
        raise TargetError(f"more than {MAX_SPECS} targets listed")

    specs: list[Spec | None] = []
    names: list[str] = []
    for t in texts:
        if not t.strip():
            continue
        s = parse_spec(t)
        specs.append(s)
        if s is None:
            names.append(t.strip())
    ex_specs: list[Spec | None] = []
    ex_names: list[str] = []
    for t in ex_texts:
        s = parse_spec(t)
        ex_specs.append(s)
        if s is None:
            ex_names.append(t.strip())
    resolved = resolve_names(sorted(set(names) | set(ex_names)), resolver, resolve_timeout)

    def _named(spec_list: list[Spec | None], raw: list[str]) -> list[Spec]:
        out: list[Spec] = []
        it = iter(n.strip() for n in raw if n.strip())
        for s in spec_list:
            text = next(it)
            if s is None:
                try:
                    addr = ipaddress.ip_address(resolved[text])
                except ValueError:
                    raise TargetError(f"{text!r} resolved to {resolved[text]!r}, not an address") from None
                if addr.is_multicast or addr.is_unspecified:
                    raise TargetError(f"{text!r} resolved to {addr}, which is not a host")
                s = IntRange(text, addr.version, int(addr), int(addr))
            out.append(s)
        return out

    spec_objs = _named(specs, texts)
    # an excluded block is excluded whole, its network and broadcast addresses too
    ex_objs = [dataclasses.replace(e, skip_edges=None) if isinstance(e, V4Octets) else e
               for e in _named(ex_specs, ex_texts)]
    limit = DEFAULT_MAX_HOSTS if max_hosts is None else max_hosts
    if limit < 1:
        raise TargetError("--max-hosts must be at least 1")
    bound = sum(s.count() for s in spec_objs)
    ts = TargetSet(spec_objs, ex_objs, resolved, [s.text for s in spec_objs])
    if bound > limit:
        # overlaps or exclusions may bring it under the limit; count exactly only when that is cheap
        exact = len(ts) if bound <= 16 * limit else bound
        if exact > limit:
            raise TargetError(f"the targets hold {exact} hosts, more than the limit of {limit}; "
                              "pass --max-hosts N to scan that many")
    if ex_objs and not any(True for _ in ts):
        raise TargetError("every target is excluded: nothing left to scan")
    return ts
