"""Block lists of restricted (and, when asked, needs-review) devices while their replacement is pending:
a plain MAC or IP list, a CSV for NAC endpoint import, an nftables set file.

Pure: ``select_devices(rows, include_review)`` picks the devices from store rows and
``build_blocklist(devices, fmt, ...)`` returns the text. Output is deterministic: entries are de-duplicated
and sorted (MACs as lower-case ``aa:bb:cc:dd:ee:ff``, IPs numerically, IPv4 before IPv6), so two exports
of the same scan are byte for byte the same and a diff between two days shows only what changed.
Device text (maker, model, site) reaches the CSV only through ``spreadsheet_cell`` (no formula, no
control character); the plain lists and the nftables file carry only MACs and addresses that parsed.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from scanner.evidence import normalize_mac
from scanner.ipkey import ip_key

FORMATS = ("macs", "ips", "nac-csv", "nft")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")


@dataclass(frozen=True, slots=True)
class Entry:
    mac: str | None
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None
    status: str  # restricted | review
    description: str


def select_devices(rows: Iterable[Mapping[str, Any]], include_review: bool = False,
                   include_channels: bool = False) -> list[Mapping[str, Any]]:
    """Restricted devices, plus those that need review when ``include_review``. Cameras on a recorder's
    PoE ports are left out unless ``include_channels``: they sit on the recorder's own segment, never on
    the network a NAC or firewall controls, and blocking the recorder cuts them off."""
    return [d for d in rows if (d.get("restricted") is True or (include_review and d.get("review")))
            and (include_channels or not (d.get("parent_id") or d.get("parent_ip")))]


def _ip(value: Any, behind_recorder: bool) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if behind_recorder or not isinstance(value, str):
        return None  # a camera on a recorder's PoE ports has an address on the recorder's own network
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def _describe(d: Mapping[str, Any], status: str) -> str:
    who = " ".join(str(x) for x in (d.get("manufacturer") or (d.get("review") or {}).get("maker") or "unknown",
                                     d.get("model") or "") if x)
    brand = d.get("brand")
    if brand and d.get("manufacturer") and str(brand).casefold() != str(d["manufacturer"]).casefold():
        who += f" (label {brand})"
    all_lists = list(d.get("lists") or [])
    lists = ",".join(all_lists[:3]) + (f" +{len(all_lists) - 3}" if len(all_lists) > 3 else "")
    where = f" site {d['site']}" if d.get("site") else ""
    tag = f" [{lists}]" if lists and status == "restricted" else " [needs review]" if status == "review" else ""
    return f"camsweep: {who}{where}{tag}"[:200]


def entries(devices: Iterable[Mapping[str, Any]]) -> list[Entry]:
    """One entry per device that has a MAC or a usable IP, in a stable order (MAC, then IP)."""
    out = []
    for d in devices:
        status = "restricted" if d.get("restricted") is True else "review"
        e = Entry(normalize_mac(d.get("mac")), _ip(d.get("ip"), bool(d.get("parent_id") or d.get("parent_ip"))),
                  status, _describe(d, status))
        if e.mac or e.ip:
            out.append(e)
    return sorted(out, key=lambda e: (e.mac or "~", ip_key(e.ip)))


def macs(items: Iterable[Entry]) -> list[str]:
    return sorted({e.mac for e in items if e.mac})


def ips(items: Iterable[Entry]) -> list[Any]:
    return sorted({e.ip for e in items if e.ip is not None}, key=ip_key)


def build_blocklist(devices: Iterable[Mapping[str, Any]], fmt: str, *, group: str = "camsweep-restricted",
                    review_group: str = "camsweep-review", table: str = "camsweep", title: str = "") -> str:
    """The export as text. ``group``/``review_group``: the NAC endpoint groups; ``table``: the nftables
    table name; ``title``: a comment line for the nftables file (which scan, which site)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    items = entries(devices)
    if fmt == "macs":
        return "".join(m + "\n" for m in macs(items))
    if fmt == "ips":
        return "".join(str(ip) + "\n" for ip in ips(items))
    if fmt == "nac-csv":
        from scanner.report.escape import spreadsheet_cell

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\r\n")
        w.writerow(["MAC", "group", "description"])
        seen = set()
        for e in items:
            if not e.mac or e.mac in seen:
                continue
            seen.add(e.mac)
            w.writerow([e.mac.upper(), spreadsheet_cell(group if e.status == "restricted" else review_group, 64),
                        spreadsheet_cell(e.description, 200)])
        return buf.getvalue()
    if not _NAME.match(table):
        raise ValueError(f"nftables table name {table!r}: letters, digits and _ only, starting with a letter")
    return build_nft(items, table=table, title=title)


def build_nft(items: list[Entry], *, table: str = "camsweep", title: str = "") -> str:
    """An nftables file (``nft -f FILE``) with the sets ``blocked_mac``, ``blocked_ipv4`` and ``blocked_ipv6``
    in table ``inet TABLE``. Loading it replaces the sets' elements (the sets are flushed first), so a daily
    export keeps the sets current; your own rules refer to them, e.g.
    ``ip saddr @blocked_ipv4 drop`` in a forward chain of that table."""
    all_ips = ips(items)
    sets = [("blocked_mac", "ether_addr", macs(items)),
            ("blocked_ipv4", "ipv4_addr", [str(i) for i in all_ips if i.version == 4]),
            ("blocked_ipv6", "ipv6_addr", [str(i) for i in all_ips if i.version == 6])]
    lines = ["#!/usr/sbin/nft -f"]
    if title:
        lines.append("# " + re.sub(r"[^\x20-\x7e]", "?", title)[:200])
    lines.append(f"table inet {table} {{")
    for name, typ, _elems in sets:
        lines.append(f"\tset {name} {{")
        lines.append(f"\t\ttype {typ}")
        lines.append("\t}")
    lines.append("}")
    for name, _typ, elems in sets:
        lines.append(f"flush set inet {table} {name}")
        if elems:
            lines.append(f"add element inet {table} {name} {{ " + ", ".join(elems) + " }")
    return "\n".join(lines) + "\n"


__all__ = ["FORMATS", "Entry", "build_blocklist", "build_nft", "entries", "ips", "macs", "select_devices"]
