"""The one sort key for IP addresses, wherever devices are listed (TUI, reports, block lists, notices).

IPv4 in numeric order, then IPv6 in numeric order, then text that is not an address, then no address.
Takes a string (an IPv6 zone ``%eth0`` is ignored), an ``ipaddress`` object or None.
"""

from __future__ import annotations

import ipaddress
from typing import Any


def ip_key(ip: Any) -> tuple[int, int, str]:
    if ip is None or ip == "":
        return (9, 0, "")
    if isinstance(ip, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return (ip.version, int(ip), "")
    text = str(ip)
    parts = text.split(".")
    if len(parts) == 4 and all(p.isdigit() and len(p) <= 3 for p in parts):  # the common case, fast
        a, b, c, d = (int(p) for p in parts)
        if max(a, b, c, d) <= 255:
            return (4, (a << 24) | (b << 16) | (c << 8) | d, "")
    try:
        addr = ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return (8, 0, text)
    return (addr.version, int(addr), "")
