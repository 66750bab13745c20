"""The routed lab's pure parts: addressing, and the DHCP client's messages (no root, no network)."""

from __future__ import annotations

import ipaddress
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.errors import LabError
from scanner.lab import routed


def test_addressing():
    cidrs, placed, cover = routed.plan_routed(250)
    assert cidrs == ["198.18.0.0/24", "198.18.1.0/24"] and cover == "198.18.0.0/23"
    ips = [ip for _s, ip in placed]
    assert len(set(ips)) == 250
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network(cidrs[s]) for s, ip in placed)
    assert all(not ip.endswith((".0", ".1", ".255")) for ip in ips)  # network, router, broadcast kept free
    cidrs, placed, cover = routed.plan_routed(4000)
    assert len(cidrs) == 16 and cover == "198.18.0.0/20"
    lab = ipaddress.ip_network("198.18.0.0/15")
    assert all(ipaddress.ip_address(ip) in lab for _s, ip in placed)
    assert ipaddress.ip_address(routed.SCANNER_IP) in lab and ipaddress.ip_address(routed.ROUTER_UPLINK_IP) in lab
    assert len(routed.plan_routed(1)[0]) == 2  # two camera segments at least
    with pytest.raises(LabError):
        routed.plan_routed(0)


def _reply(req: bytes, kind: int, yiaddr: str) -> bytes:
    """What a DHCP server answers (op 2, the request's xid and chaddr, options 53, 54, 1, 3)."""
    head = bytearray(req[:240])
    head[0] = 2
    head[16:20] = socket.inet_aton(yiaddr)
    opts = bytes([53, 1, kind, 54, 4, 198, 18, 1, 1, 1, 4, 255, 255, 255, 0, 3, 4, 198, 18, 1, 1, 255])
    return bytes(head) + opts


def test_dhcp_messages_round_trip():
    req = routed.build_dhcp(routed.DISCOVER, 0x1234, "4c:11:bf:00:00:02")
    assert req[0] == 1 and struct.unpack_from("!I", req, 4)[0] == 0x1234
    assert struct.unpack_from("!H", req, 10)[0] == 0x8000  # broadcast flag: the answer reaches an address-less client
    assert req[28:34] == bytes.fromhex("4c11bf000002")
    got = routed.parse_dhcp(_reply(req, routed.OFFER, "198.18.1.7"), 0x1234)
    assert got == {"yiaddr": "198.18.1.7", "type": routed.OFFER, "server": "198.18.1.1", "mask": "255.255.255.0",
                   "router": "198.18.1.1"}
    assert routed.parse_dhcp(_reply(req, routed.ACK, "198.18.1.7"), 0x9999) is None  # another client's
    assert routed.parse_dhcp(req, 0x1234) is None  # a request is not an answer
    r = routed.build_dhcp(routed.REQUEST, 7, "4c:11:bf:00:00:02", "198.18.1.7", "198.18.1.1")
    assert bytes([50, 4, 198, 18, 1, 7]) in r and bytes([54, 4, 198, 18, 1, 1]) in r


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(0, 2**32 - 1))
def test_parse_dhcp_never_raises(data, xid):
    got = routed.parse_dhcp(data, xid)
    assert got is None or "type" in got
