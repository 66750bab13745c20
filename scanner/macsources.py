"""MAC addresses of devices beyond the scanner's own segment: routers' neighbour tables, DHCP leases, saved tables.

ARP sees only the scanner's own segment. For routed devices a MAC comes from somewhere else:

- ``--snmp ROUTER[,ROUTER...]``: the routers' IP-MIB neighbour tables (and BRIDGE-MIB / Q-BRIDGE-MIB
  forwarding tables), read over SNMP (:mod:`scanner.probes.snmpwalk`);
- ``--dhcp-leases FILE``: an ISC dhcpd ``dhcpd.leases``, a dnsmasq lease file or a Kea lease CSV;
- ``--neighbours FILE``: saved ``ip neigh`` output, Cisco ``show ip arp`` output (or ``arp -an``).

Each MAC found for a scanned host becomes the host's MAC, exactly as an ARP answer would (OUI
evidence, device identity in the store), and the record carries where it came from: a discovery entry
``{"protocol": "mac_source", "fields": {"source": "snmp", "from": "198.19.0.1", "table": ..., "text":
"mac from SNMP neighbour table of 198.19.0.1"}}``, shown as an evidence line of the identification. A
host left without any MAC gets the same entry with ``source: none`` and the reason.

The parsers are pure functions over text: capped in size, lines and entries; a line they cannot read
is counted, never an exception. A file with no readable line at all is reported as malformed.
"""

from __future__ import annotations

import asyncio
import csv
import io
import ipaddress
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from scanner.capped import read_capped
from scanner.events import Phase, ScanWarning
from scanner.evidence import EvidenceHit, EvidenceRecord, Identification, normalize_mac

MAX_FILE_BYTES = 64 * 1024 * 1024  # read of one lease or neighbour file
MAX_LINE = 4096  # characters of one line looked at
MAX_ENTRIES = 1 << 18  # entries kept from one file
MAX_ROUTERS = 64
PROTOCOL = "mac_source"
MAX_SOURCE_TEXT = 200


class MacSourceError(Exception):
    """A file that cannot be read (missing, unreadable); the scan warns and goes on."""


@dataclass(frozen=True, slots=True)
class MacEntry:
    """One IP-to-MAC pairing and where it came from."""

    ip: str
    mac: str
    source: str  # "snmp" | "dhcp" | "neighbours"
    origin: str  # the router's address, or the file's name
    table: str = ""  # ipNetToPhysicalTable, dnsmasq, isc-dhcpd, kea, ip-neigh, cisco-arp, ...
    port: int | None = None  # the bridge port the router's forwarding table learnt the MAC on (SNMP)

    def text(self) -> str:
        if self.source == "snmp":
            where = f" (bridge port {self.port})" if self.port is not None else ""
            return f"mac from SNMP neighbour table of {self.origin}{where}"
        if self.source == "dhcp":
            return f"mac from DHCP lease file {self.origin} ({self.table})"
        return f"mac from neighbour table file {self.origin} ({self.table})"

    def fragment(self) -> dict[str, Any]:
        fields = {"source": self.source, "from": self.origin[:MAX_SOURCE_TEXT], "text": self.text()[:MAX_SOURCE_TEXT]}
        if self.table:
            fields["table"] = self.table
        if self.port is not None:
            fields["bridge_port"] = str(self.port)
        return {"discovery": [{"protocol": PROTOCOL, "fields": fields}]}


@dataclass(frozen=True, slots=True)
class Parsed:
    """What a parser read: its format, the (ip, mac) pairs, and how many non-blank lines it could not read."""

    format: str
    pairs: tuple[tuple[str, str], ...]
    unread: int = 0


# ------------------------------------------------------------------------------------------------
# parsers (pure, capped, never raise)


def _ip4(text: str) -> str | None:
    try:
        return str(ipaddress.IPv4Address(text.strip()))
    except ValueError:
        return None


def _pair(ip_text: str, mac_text: str) -> tuple[str, str] | None:
    ip = _ip4(ip_text)
    mac = normalize_mac(mac_text.strip()) if len(mac_text) <= 64 else None
    if ip is None or mac is None or mac in ("00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"):
        return None
    return ip, mac


def _lines(text: str) -> Iterator[str]:
    for n, line in enumerate(text.splitlines()):
        if n >= MAX_ENTRIES * 4:
            return
        yield line[:MAX_LINE]


def parse_dnsmasq_leases(text: str) -> Parsed:
    """dnsmasq's lease file: ``EXPIRY MAC IP HOSTNAME CLIENT-ID`` per line (IPv6 leases after ``duid`` skipped)."""
    pairs: list[tuple[str, str]] = []
    unread = 0
    v6 = False
    for line in _lines(text):
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "duid":
            v6 = True
            continue
        if v6:
            continue
        p = _pair(parts[2], parts[1]) if len(parts) >= 3 and parts[0].isdigit() else None
        if p is None:
            unread += 1
        elif len(pairs) < MAX_ENTRIES:
            pairs.append(p)
    return Parsed("dnsmasq", tuple(pairs), unread)


_ISC_LEASE = re.compile(r"lease\s+(\d{1,3}(?:\.\d{1,3}){3})\s*\{(.*?)\}", re.S)
_ISC_HW = re.compile(r"hardware\s+ethernet\s+([0-9A-Fa-f:]{11,17})\s*;")
_ISC_STATE = re.compile(r"(?<![a-z-])binding\s+state\s+([a-z-]+)\s*;")


def parse_isc_leases(text: str) -> Parsed:
    """ISC dhcpd's ``dhcpd.leases``: ``lease IP { ... hardware ethernet MAC; binding state active; }``.
    The file is a journal: a later block for an address replaces an earlier one. Leases whose binding
    state is given and is not active (free, abandoned, backup, expired) are dropped."""
    latest: dict[str, str] = {}
    unread = 0
    for m in _ISC_LEASE.finditer(text):
        body = m.group(2)[:MAX_LINE * 4]
        ip = _ip4(m.group(1))
        hw = _ISC_HW.search(body)
        state = _ISC_STATE.search(body)
        if ip is None or hw is None:
            unread += 1
            continue
        mac = normalize_mac(_isc_mac(hw.group(1)))
        if mac is None:
            unread += 1
            continue
        latest.pop(ip, None)  # a later block replaces an earlier one
        if state and state.group(1) not in ("active", "static"):
            continue  # a free lease: the address has no client now
        if len(latest) < MAX_ENTRIES:
            latest[ip] = mac
    pairs = tuple(latest.items())
    return Parsed("isc-dhcpd", pairs, unread)


def _isc_mac(text: str) -> str:
    """dhcpd writes octets without leading zeros (``0:1b:c:...``)."""
    parts = text.split(":")
    if len(parts) == 6 and all(1 <= len(p) <= 2 for p in parts):
        return ":".join(p.zfill(2) for p in parts)
    return text


def parse_kea_csv(text: str) -> Parsed:
    """Kea's lease CSV (memfile, ``kea-leases4.csv``): header ``address,hwaddr,...,state,...``; state 0
    (default) is a lease in use, 1 declined, 2 expired-reclaimed (dropped). The last row of an address wins."""
    lines = [line for line in _lines(text)]
    latest: dict[str, str] = {}
    unread = 0
    try:
        reader = csv.reader(io.StringIO("\n".join(lines)))
        header = next(reader, None)
    except csv.Error:
        return Parsed("kea", (), len(lines))
    if not header or "address" not in header or "hwaddr" not in header:
        return Parsed("kea", (), len([x for x in lines if x.strip()]))
    ia, ih = header.index("address"), header.index("hwaddr")
    ist = header.index("state") if "state" in header else None
    try:
        for row in reader:
            if not row or not any(c.strip() for c in row):
                continue
            if len(row) <= max(ia, ih):
                unread += 1
                continue
            p = _pair(row[ia], row[ih])
            if p is None:
                unread += 1
                continue
            if ist is not None and len(row) > ist and row[ist].strip() not in ("", "0"):
                latest.pop(p[0], None)
                continue
            latest.pop(p[0], None)
            if len(latest) < MAX_ENTRIES:
                latest[p[0]] = p[1]
    except csv.Error:
        unread += 1
    return Parsed("kea", tuple(latest.items()), unread)


def parse_leases(text: str) -> Parsed:
    """A lease file of any of the three kinds, told apart by its content."""
    head = text.lstrip()[:4096]
    if head.startswith("address,") or "\naddress," in head[:200]:
        return parse_kea_csv(text)
    if re.search(r"(^|\n)\s*lease\s+\d", head) or head.startswith(("#", "authoring-byte-order", "server-duid")) \
            and "lease " in text:
        return parse_isc_leases(text)
    return parse_dnsmasq_leases(text)


_IP_NEIGH = re.compile(r"^(\d{1,3}(?:\.\d{1,3}){3})\s+(?:dev\s+\S+\s+)?lladdr\s+(\S+)")
_CISCO = re.compile(r"^Internet\s+(\d{1,3}(?:\.\d{1,3}){3})\s+\S+\s+([0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4})\s")
_ARP_AN = re.compile(r"^\S+\s+\((\d{1,3}(?:\.\d{1,3}){3})\)\s+at\s+([0-9A-Fa-f:]{17})\s")
_HEADER = re.compile(r"^(Protocol\s+Address|Address\s+HWtype|IP address\s+HW type)", re.I)


def parse_neighbours(text: str) -> Parsed:
    """Saved neighbour tables: ``ip neigh`` (``IP dev IF lladdr MAC STATE``; FAILED/INCOMPLETE lines have
    no lladdr and are not entries), Cisco ``show ip arp`` (``Internet IP AGE MAC ARPA IF``) and ``arp -an``."""
    pairs: dict[str, str] = {}
    kinds: set[str] = set()
    unread = 0
    for raw in _lines(text):
        line = raw.strip()
        if not line or _HEADER.match(line):
            continue
        for kind, rx in (("ip-neigh", _IP_NEIGH), ("cisco-arp", _CISCO), ("arp-an", _ARP_AN)):
            m = rx.match(line)
            if m:
                p = _pair(m.group(1), m.group(2))
                if p and len(pairs) < MAX_ENTRIES:
                    pairs.setdefault(p[0], p[1])
                    kinds.add(kind)
                elif not p:
                    unread += 1
                break
        else:
            # an ip-neigh line without a MAC (FAILED, INCOMPLETE) or Cisco "Incomplete": not an entry, not bad
            if re.match(r"^\d{1,3}(?:\.\d{1,3}){3}\s+dev\s", line) or "Incomplete" in line:
                continue
            if ":" in line and re.match(r"^[0-9a-fA-F:]+\s+dev\s", line):  # IPv6 neighbours
                continue
            unread += 1
    return Parsed("+".join(sorted(kinds)) or "neighbours", tuple(pairs.items()), unread)


def read_text_file(path: str) -> str:
    """A file's text, at most MAX_FILE_BYTES (MacSourceError when it cannot be read)."""
    try:
        data = read_capped(path, MAX_FILE_BYTES)
    except OSError as exc:
        raise MacSourceError(f"cannot read {path}: {exc.strerror or exc}") from None
    if data is None:
        raise MacSourceError(f"{path} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; not read")
    if b"\0" in data[:65536]:
        raise MacSourceError(f"{path} is not a text file")
    return data.decode("utf-8", errors="replace")


def entries_from_file(path: str, kind: str) -> tuple[list[MacEntry], str | None]:
    """(entries, warning) of a lease file (``kind`` "dhcp") or a neighbour file ("neighbours")."""
    name = Path(path).name or path
    try:
        text = read_text_file(path)
    except MacSourceError as exc:
        return [], str(exc)
    parsed = parse_leases(text) if kind == "dhcp" else parse_neighbours(text)
    what = "DHCP lease file" if kind == "dhcp" else "neighbour table file"
    if not parsed.pairs:
        if not text.strip():
            return [], f"{what} {path} is empty; no MAC taken from it"
        expected = "ISC dhcpd, dnsmasq or Kea CSV leases" if kind == "dhcp" else \
            "`ip neigh`, `show ip arp` or `arp -an` output"
        return [], (f"{what} {path} is malformed: none of its {parsed.unread or 'non-blank'} lines reads as "
                    f"an entry (expected {expected}); no MAC taken from it")
    warning = None
    if parsed.unread:
        warning = f"{what} {path}: {parsed.unread} line(s) could not be read and were skipped"
    return [MacEntry(ip, mac, kind, name, parsed.format) for ip, mac in parsed.pairs], warning


# ------------------------------------------------------------------------------------------------
# evidence


def annotate(ident: Identification, rec: EvidenceRecord) -> Identification:
    """The identification with one more evidence line saying where the record's MAC came from (or why it
    has none), when the record carries a ``mac_source`` entry."""
    src = next((d for d in rec.discovery if d.protocol == PROTOCOL), None)
    if src is None:
        return ident
    f = src.fields
    text = str(f.get("text") or "")[:MAX_SOURCE_TEXT]
    if not text:
        return ident
    if f.get("source") == "none" and rec.mac:  # no ARP or table entry, but the device's own answer gave one
        hit = EvidenceHit("mac/source", "mac", f"{rec.mac} mac reported by the device itself (no ARP or table "
                          "entry for it)", "hint")
    elif f.get("source") == "none":
        hit = EvidenceHit("mac/none", "mac", text, "hint")
    else:
        hit = EvidenceHit("mac/source", "mac", f"{rec.mac or ''} {text}".strip(), "hint")
    return replace(ident, evidence=(*ident.evidence, hit))


def no_mac_fragment(reason: str) -> dict[str, Any]:
    return {"discovery": [{"protocol": PROTOCOL, "fields": {"source": "none", "text": reason[:MAX_SOURCE_TEXT]}}]}


def no_mac_reason(ip: str, on_segment: bool, asked: list[str]) -> str:
    """Why ``ip`` has no MAC, in one sentence."""
    if on_segment:
        return "no MAC: the host did not answer ARP (or ARP was off) on the scanner's segment"
    if asked:
        return f"no MAC: routed (not on the scanner's segment) and not in {', '.join(asked)}"[:MAX_SOURCE_TEXT]
    return ("no MAC: routed (not on the scanner's segment, so ARP cannot see it); "
            "give --snmp ROUTER or --dhcp-leases FILE")


# ------------------------------------------------------------------------------------------------
# the scan's step


def parse_router_list(specs: Iterable[str]) -> list[str]:
    """``--snmp`` values (comma-separated, repeatable) -> router addresses (ValueError for a bad one)."""
    out: list[str] = []
    for spec in specs:
        for part in str(spec).split(","):
            part = part.strip()
            if not part:
                continue
            try:
                ip = str(ipaddress.IPv4Address(part))
            except ValueError:
                raise ValueError(f"--snmp {part[:60]!r} is not an IPv4 address") from None
            if ip not in out:
                out.append(ip)
    if len(out) > MAX_ROUTERS:
        raise ValueError(f"--snmp names {len(out)} routers; at most {MAX_ROUTERS}")
    return out


async def gather(scan: Any) -> None:
    """Run every MAC source the scan's options name and attach the MACs to its hosts; then give every host
    left without a MAC the reason. ``scan`` is the scan's ``scanner.discovery.Discovery`` (hosts, macs, emit, options)."""
    o = scan.o
    entries: list[MacEntry] = []
    asked: list[str] = []
    t0 = time.monotonic()
    routers = list(getattr(o, "snmp_routers", ()) or ())
    if routers:
        from scanner.probes.snmpwalk import read_router

        creds = o.credentials

        async def one(router: str) -> None:
            auth = creds.snmp_for(router) if creds is not None and hasattr(creds, "snmp_for") else None
            res = await read_router(router, auth, public=o.snmp_public, timeout=min(o.timeout, 2.0),
                                    retries=o.retries, total=max(30.0, o.host_timeout * 6),
                                    throttle=scan.limiter.acquire)
            if res.warning:
                scan.emit(ScanWarning(res.warning))
                return
            asked.append(f"the SNMP neighbour table of {router}")
            ports = dict(res.fdb)  # MAC -> bridge port (BRIDGE-MIB / Q-BRIDGE-MIB), where the router serves it
            entries.extend(MacEntry(ip, mac, "snmp", router, table, ports.get(mac))
                           for ip, mac, table in res.neighbours)
            scan.emit(Phase(f"snmp tables of {router}", neighbours=len(res.neighbours), fdb=len(res.fdb),
                            version=res.version))

        await asyncio.gather(*(one(r) for r in routers))
    for kind, paths in (("dhcp", getattr(o, "dhcp_leases", ()) or ()), ("neighbours", getattr(o, "neighbours", ()) or ())):
        for path in paths:
            got, warning = await asyncio.to_thread(entries_from_file, path, kind)
            if warning:
                scan.emit(ScanWarning(warning))
            if got:
                asked.append(f"{'lease file' if kind == 'dhcp' else 'neighbour file'} {Path(path).name}")
                entries.extend(got)
    attach(scan, entries)
    explain_missing(scan, asked)
    if routers or entries:
        scan.emit(Phase("mac sources", seconds=round(time.monotonic() - t0, 3), entries=len(entries)))


def attach(scan: Any, entries: Iterable[MacEntry]) -> int:
    """Give hosts their MACs from ``entries`` (the first source of an address wins; a MAC ARP saw stays).
    A live neighbour-table entry (SNMP, a saved table) of a target adds the host; a lease alone does not."""
    n = 0
    seen: set[str] = set()
    for e in entries:
        if e.ip in seen or not scan.in_scope(e.ip):
            continue
        seen.add(e.ip)
        known = e.ip in scan.hosts
        if not known and not scan.o.assume_up and e.source == "dhcp":
            continue
        if scan.macs.get(e.ip):
            continue
        scan.add_host(e.ip, e.fragment(), mac=e.mac)
        n += 1
    return n


def explain_missing(scan: Any, asked: list[str]) -> None:
    for ip, frags in scan.hosts.items():
        if scan.macs.get(ip):
            continue
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            continue
        if addr.is_loopback:
            continue  # a loopback lab: no link layer at all
        on_segment = any(addr in n for n in scan.attached_nets)
        if any(PROTOCOL == d.get("protocol") for f in frags for d in f.get("discovery", []) or []):
            continue
        if len(frags) < 64:
            frags.append(no_mac_fragment(no_mac_reason(ip, on_segment, asked)))
