"""scanner/ipkey.py: the one IP sort key."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from scanner.ipkey import ip_key


def test_order() -> None:
    ips = [None, "fe80::1%eth0", "not an ip", "10.0.0.10", "::1", "", "10.0.0.9", "9.255.255.255"]
    assert sorted(ips, key=ip_key) == ["9.255.255.255", "10.0.0.9", "10.0.0.10", "::1", "fe80::1%eth0",
                                       "not an ip", None, ""]


@given(st.ip_addresses())
def test_strings_and_objects_sort_alike(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    assert ip_key(str(addr)) == ip_key(addr) == (addr.version, int(addr), "")
