"""Which ports a scan asks: nmap-like port lists, the per-protocol ports, and a lab's port map.

A scan's ports are one map, protocol -> ports (the keys of :data:`scanner.probes.base.DEFAULT_PORTS`,
plus ``banner``: extra TCP ports that get the banner probe's NULL probe, and ``liveness``: the TCP
ports that decide whether a routed host is there). :func:`resolve` builds it from the command line;
``None`` means "today's defaults" and is what a scan without port options records.

How ``--ports`` and the per-protocol options combine (the scan's --help and the README say the same):

- ``--PROTO-ports LIST`` sets the ports of that protocol, as given (for example ``--http-ports 80,8080``).
- ``--ports LIST`` is the set of TCP ports the scan may touch, as nmap's ``-p``: every TCP protocol
  not set on its own keeps only its default ports that are in LIST (``--ports 80,554`` drops 8080,
  8000, 443, 37777, ...), and the ports of LIST that no protocol claims get the banner probe (a
  NULL probe, then an HTTP GET if the port stays silent). UDP probes (SNMP, unicast WS-Discovery,
  SSDP, SADP, DHIP, mDNS) are not limited by ``--ports``; their own options move them.
- TCP liveness (routed targets) knocks the TCP ports the probes will ask, defaults first, at most
  :data:`LIVENESS_MAX` of them.

Every parser here raises :class:`PortError` (a :class:`~scanner.errors.CamsweepError`) with a message
that names the option and the bad part; nothing is sent before the ports are valid.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scanner.devtext import visible
from scanner.errors import CamsweepError

MAX_SPEC = 4096  # characters in one port list
MAX_PER_PROTOCOL = 32  # ports one TCP protocol asks on every host
MAX_EXTRA = 1024  # ports of --ports that no probe claims (each is connected to on every host)
LIVENESS_MAX = 32  # ports TCP liveness knocks on a host (all at once)


class PortError(CamsweepError):
    """A port list that cannot be used; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Protocol:
    key: str  # the key in the scan's port map (DEFAULT_PORTS)
    option: str  # the command-line option
    transport: str  # "tcp" or "udp"
    what: str  # for --help
    most: int = MAX_PER_PROTOCOL  # ports it takes at most


# In --help order. The keys are the probes' own (scanner/probes/*.py ask ctx.ports_for(key)).
PROTOCOLS: tuple[Protocol, ...] = (
    Protocol("http", "--http-ports", "tcp", "HTTP: web pages, vendor APIs, NVR channel lists"),
    Protocol("https", "--https-ports", "tcp", "HTTPS: web pages and TLS certificates"),
    Protocol("rtsp", "--rtsp-ports", "tcp", "RTSP"),
    Protocol("onvif", "--onvif-ports", "tcp", "the ONVIF device service (http://host:PORT/onvif/device_service)"),
    Protocol("hikvision", "--hik-sdk-ports", "tcp", "Hikvision's SDK port (banner)"),
    Protocol("dahua", "--dahua-sdk-ports", "tcp", "Dahua's SDK port (banner)"),
    Protocol("dvrip", "--dvrip-ports", "tcp", "Xiongmai DVRIP"),
    Protocol("telnet", "--telnet-ports", "tcp", "telnet (banner)"),
    Protocol("ssh", "--ssh-ports", "tcp", "SSH (banner)"),
    Protocol("snmp", "--snmp-port", "udp", "SNMP (UDP)", most=1),
    Protocol("wsd", "--wsd-port", "udp", "unicast WS-Discovery (UDP)", most=1),
    Protocol("ssdp", "--ssdp-port", "udp", "unicast SSDP (UDP)", most=1),
    Protocol("sadp", "--sadp-port", "udp", "unicast Hikvision SADP (UDP)", most=1),
    Protocol("dhip", "--dhip-port", "udp", "unicast Dahua DHIP (UDP)", most=1),
    Protocol("mdns", "--mdns-port", "udp", "unicast mDNS (UDP)", most=1),
)
BY_KEY = {p.key: p for p in PROTOCOLS}
TCP_KEYS = tuple(p.key for p in PROTOCOLS if p.transport == "tcp")


def default_ports() -> dict[str, tuple[int, ...]]:
    from scanner.probes.base import DEFAULT_PORTS

    return {k: tuple(v) for k, v in DEFAULT_PORTS.items()}


# --------------------------------------------------------------------------------------------
# parsing


def parse_ports(spec: str, *, option: str = "--ports", most: int | None = None) -> tuple[int, ...]:
    """``"80,443,8000-8100"`` -> (80, 443, 8000, ..., 8100), in the order given, each port once.

    nmap's forms: single ports, ranges ``A-B``, open ranges ``-B`` (from 1) and ``A-`` (to 65535), ``-``
    (every port), separated by commas (spaces around them allowed). Raises :class:`PortError`."""
    if not isinstance(spec, str):
        raise PortError(f"{option}: expected a port list such as 80,443,8000-8100")
    if len(spec) > MAX_SPEC:
        raise PortError(f"{option}: the list is {len(spec)} characters long; at most {MAX_SPEC}")
    text = spec.strip()
    if not text:
        raise PortError(f"{option}: empty port list (example: 80,443,8000-8100)")
    out: dict[int, None] = {}
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            raise PortError(f"{option} {_show(spec)}: an empty item between commas")
        if part[:2].upper() in ("T:", "U:", "S:"):
            raise PortError(f"{option} {_show(part)}: protocol prefixes are not taken; {option} is "
                            + ("TCP ports" if option == "--ports" else "this protocol's ports"))
        lo_s, dash, hi_s = part.partition("-")
        lo = _port(lo_s, option, part) if lo_s.strip() else 1
        hi = (_port(hi_s, option, part) if hi_s.strip() else 65535) if dash else lo
        if dash and not lo_s.strip() and not hi_s.strip():
            lo, hi = 1, 65535
        if lo > hi:
            raise PortError(f"{option} {_show(part)}: the range runs backwards ({lo} > {hi})")
        for p in range(lo, hi + 1):
            out[p] = None
        if most is not None and len(out) > most:
            raise _too_many(option, most)
    return tuple(out)


def _too_many(option: str, most: int) -> PortError:
    return PortError(f"{option}: at most {most} port{'s' if most != 1 else ''}" +
                     (" (this probe asks one port)" if most == 1 else " (each is asked on every host)"))


def _port(s: str, option: str, part: str) -> int:
    s = s.strip()
    if not s.isascii() or not s.isdigit():
        raise PortError(f"{option} {_show(part)}: {_show(s)} is not a port number")
    n = int(s) if len(s) <= 6 else 1 << 20
    if not 1 <= n <= 65535:
        raise PortError(f"{option} {_show(part)}: port {s[:8]} is out of range (1-65535)")
    return n


def _show(s: str) -> str:
    s = visible(s)  # scanner.devtext
    return repr(s if len(s) <= 40 else s[:39] + "…")


def format_ports(ports: Iterable[int]) -> str:
    """(80, 81, 82, 443) -> "80-82,443" (the order kept; runs folded)."""
    out: list[str] = []
    run: list[int] = []
    for p in ports:
        if run and p == run[-1] + 1:
            run.append(p)
            continue
        if run:
            out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
        run = [p]
    if run:
        out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(out)


# --------------------------------------------------------------------------------------------
# the scan's port map


def resolve(ports: Sequence[int] | None = None,
            overrides: Mapping[str, Sequence[int]] | None = None) -> dict[str, tuple[int, ...]] | None:
    """The scan's port map from ``--ports`` (TCP ports the scan may touch) and per-protocol ports.
    None when neither is given (the probes' defaults; nothing recorded)."""
    overrides = {k: tuple(v) for k, v in (overrides or {}).items()}
    unknown = [k for k in overrides if k not in BY_KEY]
    if unknown:
        raise PortError(f"no probe asks ports of {unknown[0]!r}; known: {', '.join(BY_KEY)}")
    if ports is None and not overrides:
        return None
    defaults = default_ports()
    out: dict[str, tuple[int, ...]] = {}
    allowed = set(ports) if ports is not None else None
    for proto in PROTOCOLS:
        if proto.key in overrides:
            got = overrides[proto.key]
            if not got:
                raise PortError(f"{proto.option}: empty port list")
            if len(got) > proto.most:
                raise _too_many(proto.option, proto.most)
            out[proto.key] = got
        elif proto.transport == "tcp" and allowed is not None:
            out[proto.key] = tuple(p for p in defaults.get(proto.key, ()) if p in allowed)
        else:
            out[proto.key] = tuple(defaults.get(proto.key, ()))
    claimed = {p for k in TCP_KEYS for p in out[k]}
    extra = tuple(p for p in (ports or ()) if p not in claimed)
    if len(extra) > MAX_EXTRA:
        raise PortError(f"--ports names {len(extra)} ports that no probe asks on its own; at most {MAX_EXTRA} "
                        "(each gets a banner probe on every host). Name the protocols' ports instead "
                        "(--http-ports, --rtsp-ports, ...; see --help)")
    out["banner"] = extra
    out["liveness"] = liveness_ports(out, tuple(ports) if ports is not None else None)
    return out


def liveness_ports(resolved: Mapping[str, Sequence[int]], ports: Sequence[int] | None) -> tuple[int, ...]:
    """The TCP ports liveness knocks: the default liveness ports the scan may touch, then every other TCP
    port a probe will ask (the banner's extras last), at most LIVENESS_MAX."""
    defaults = default_ports().get("liveness", ())
    allowed = set(ports) if ports is not None else None
    order: dict[int, None] = {}
    for p in defaults:
        if allowed is None or p in allowed:
            order[p] = None
    for k in (*TCP_KEYS, "banner"):
        for p in resolved.get(k, ()):
            order[p] = None
    return tuple(order)[:LIVENESS_MAX]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The scan's port options, in their own group of --help."""
    defaults = default_ports()
    g = parser.add_argument_group(
        "ports",
        "nmap-like lists: 80,443,8000-8100. --ports is the set of TCP ports the scan may touch: each TCP "
        "probe keeps its default ports that are in it, unless its own option sets them; listed ports no "
        "probe claims get a banner probe (and an HTTP GET when they stay silent). A protocol's own option "
        "sets its ports as given, whatever --ports says. UDP ports move only with their own options. TCP "
        "liveness knocks the TCP ports the probes ask (at most 32). All are kept by --resume.")
    g.add_argument("-p", "--ports", default=None, metavar="LIST",
                   help="TCP ports the scan may touch (default: each probe's own ports)")
    for proto in PROTOCOLS:
        default = format_ports(defaults.get(proto.key, ())) or "none"
        g.add_argument(proto.option, dest=f"ports_{proto.key}", default=None,
                       metavar="PORT" if proto.most == 1 else "LIST",
                       help=f"{proto.what} (default {default})")


def from_args(args: argparse.Namespace) -> dict[str, tuple[int, ...]] | None:
    """The port map of a parsed `camsweep scan` command line (see :func:`resolve`)."""
    ports = parse_ports(args.ports, option="--ports") if getattr(args, "ports", None) is not None else None
    overrides: dict[str, tuple[int, ...]] = {}
    for proto in PROTOCOLS:
        v = getattr(args, f"ports_{proto.key}", None)
        if v is not None:
            overrides[proto.key] = parse_ports(v, option=proto.option, most=proto.most)
    return resolve(ports, overrides)


def given(args: argparse.Namespace) -> list[str]:
    """The port options given on a command line (their names)."""
    out = ["--ports"] if getattr(args, "ports", None) is not None else []
    out += [p.option for p in PROTOCOLS if getattr(args, f"ports_{p.key}", None) is not None]
    return out


# --------------------------------------------------------------------------------------------
# a lab's port map -> scan arguments


def lab_scan_ports(port_map: Mapping[int | str, int], served: Mapping[str, Iterable[int]] | None = None,
                   offset: int = 0) -> dict[str, tuple[int, ...]]:
    """The per-protocol ports that reach a lab's devices: each protocol's default ports, then the ports
    the lab serves that protocol on (``served``: protocol -> real ports), each moved as the lab moves
    it (``port_map`` real -> bound, else ``offset + port``)."""
    pm = {int(k): int(v) for k, v in port_map.items()}
    out: dict[str, tuple[int, ...]] = {}
    defaults = default_ports()
    for proto in PROTOCOLS:
        real: dict[int, None] = dict.fromkeys(defaults.get(proto.key, ()))
        if proto.most > 1:
            for p in sorted((served or {}).get(proto.key, ())):
                real[int(p)] = None
        moved = tuple(dict.fromkeys(pm.get(p, p + offset) for p in real))
        out[proto.key] = moved[:proto.most]
    return out


def scan_arguments(per_protocol: Mapping[str, Sequence[int]]) -> list[str]:
    """``camsweep scan`` options that ask exactly these per-protocol ports (only those that differ from
    the defaults)."""
    defaults = default_ports()
    out: list[str] = []
    for proto in PROTOCOLS:
        got = tuple(per_protocol.get(proto.key, ()))
        if got and got != tuple(defaults.get(proto.key, ())):
            out += [proto.option, format_ports(got)]
    return out


def recorded(value: Any) -> dict[str, tuple[int, ...]] | None:
    """A port map as stored with a scan (lists) -> tuples; None stays None."""
    if not value:
        return None
    return {str(k): tuple(int(p) for p in v) for k, v in dict(value).items()}
