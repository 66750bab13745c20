"""Targets as nmap users write them, and nothing that was not asked for.

Accepted forms (each may be given on the command line, in an ``-iL`` file, or as an exclusion):

* a single address: ``198.18.0.7``, ``::1``
* a CIDR block: ``198.18.0.0/24`` (network and broadcast addresses are skipped for blocks of 4 or
  more addresses, as no device answers there), ``fd00::/120``
* nmap octet ranges: ``198.18.0.1-200``, ``198.18.0-3.1-254``, ``198.18.0.1,5,9-12``, ``198.18.*.1``
* a plain range: ``198.18.0.1-198.18.1.20``
* a host name, resolved once, with a bound on time and on the number of names

Nothing here sends a packet except name resolution. Targets iterate lazily: a /16 is never turned
into a list, duplicates between specs are dropped by testing membership in the earlier specs, and
exclusions are tested the same way. An empty target list, multicast or broadcast targets, and lists
larger than ``max_hosts`` are refused with a :class:`TargetError`.
"""

from __future__ import annotations

import bisect
import concurrent.futures
import dataclasses
import ipaddress
import itertools
import socket
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

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

    def networks(self) -> list[ipaddress.IPv4Network]:
        """Networks that cover this spec (used to find a directly attached interface)."""
        first = (self.octets[0][0] << 24) | (self.octets[1][0] << 16) | (self.octets[2][0] << 8) | self.octets[3][0]
        last = (self.octets[0][-1] << 24) | (self.octets[1][-1] << 16) | (self.octets[2][-1] << 8) | self.octets[3][-1]
        return list(ipaddress.summarize_address_range(ipaddress.IPv4Address(first), ipaddress.IPv4Address(last)))


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

    def networks(self) -> list[ipaddress.IPv4Network] | list[ipaddress.IPv6Network]:
        cls = ipaddress.IPv4Address if self.version == 4 else ipaddress.IPv6Address
        return list(ipaddress.summarize_address_range(cls(self.first), cls(self.last)))  # type: ignore[arg-type]


Spec = V4Octets | IntRange


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
        _check_v6(text, ipaddress.IPv6Network(ip6))
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


class TargetSet:
    """The hosts to scan: specs minus exclusions, iterated lazily and without duplicates."""

    def __init__(self, specs: list[Spec], excludes: list[Spec], names: dict[str, str] | None = None,
                 texts: list[str] | None = None) -> None:
        self.specs = specs
        self.excludes = excludes
        self.names = dict(names or {})  # name -> address, as resolved
        self.texts = list(texts or [s.text for s in specs])
        self._count: int | None = None

    def __iter__(self) -> Iterator[str]:
        for i, spec in enumerate(self.specs):
            earlier = self.specs[:i]
            for ip in spec:
                if any(e.contains(ip) for e in self.excludes):
                    continue
                if earlier and any(s.contains(ip) for s in earlier):
                    continue
                yield str(ip)

    def upper_bound(self) -> int:
        """Hosts before exclusions and duplicates: cheap, for refusing absurd lists."""
        return sum(s.count() for s in self.specs)

    def __len__(self) -> int:
        """The exact number of hosts (iterates once when specs overlap or exclusions apply)."""
        if self._count is None:
            if len(self.specs) == 1 and not self.excludes:
                self._count = self.specs[0].count()
            else:
                self._count = sum(1 for _ in self)
        return self._count

    def __contains__(self, ip: object) -> bool:
        try:
            addr = ipaddress.ip_address(str(ip))
        except ValueError:
            return False
        if any(e.contains(addr) for e in self.excludes):
            return False
        return any(s.contains(addr) for s in self.specs)

    def networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        out: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for s in self.specs:
            for n in s.networks():
                if n not in out:
                    out.append(n)
                if len(out) > 4096:
                    return out
        return out


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
