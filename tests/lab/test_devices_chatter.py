"""The unprompted announcements (chatter) a device sends for passive listeners: what each one carries.

Pure builders, no network: the namespace lab sends them (``--chatter``); a passive scan of such a lab
picked up DHCP host names from every non-hostile device when this was written.
"""

from __future__ import annotations

import random
import socket
import struct

from defusedxml import ElementTree as SafeET
from zeroconf import DNSIncoming

from scanner.lab.profiles import build_device
from scanner.lab.responders import chatter, dhip
from scanner.lab.responders.base import Device


def _dev(profile: str, ip: str = "198.18.0.7", prefixlen: int = 24) -> Device:
    return Device(spec=build_device(profile, 5, random.Random(3)), ip=ip, username="admin", password="pw",
                  netns="x-d5", prefixlen=prefixlen, chatter=5.0)


def test_a_camera_announces_itself_on_each_of_its_protocols() -> None:
    dev = _dev("dahua_camera")
    msgs = {role: (payload, dest) for role, payload, dest in chatter.messages(dev)}
    assert set(msgs) >= {"wsd", "ssdp", "dhip", "dhcp", "plain"} and "sadp" not in msgs
    hello = SafeET.fromstring(msgs["wsd"][0])
    assert any(el.tag.endswith("}Hello") for el in hello.iter())
    assert msgs["wsd"][1] == ("239.255.255.250", 3702)
    text = msgs["ssdp"][0].decode()
    assert text.startswith("NOTIFY * HTTP/1.1\r\n") and "NTS: ssdp:alive" in text
    info = dhip.decode(msgs["dhip"][0])
    assert info and info["params"]["deviceInfo"]["SerialNo"] == dev.spec.serial
    assert msgs["plain"][1] == ("198.18.0.254", 9)  # an unused address: the kernel ARPs for it


def test_dhcp_inform_carries_host_name_and_vendor_class() -> None:
    dev = _dev("axis_camera")
    payload = dict((r, p) for r, p, _ in chatter.messages(dev))["dhcp"]
    op, htype, hlen = payload[0], payload[1], payload[2]
    assert (op, htype, hlen) == (1, 1, 6)
    assert socket.inet_ntoa(payload[12:16]) == dev.ip  # ciaddr
    assert payload[28:34] == bytes.fromhex(dev.spec.mac.replace(":", ""))
    assert payload[236:240] == b"\x63\x82\x53\x63"
    opts, i = {}, 240
    while payload[i] != 0xFF:
        code, n = payload[i], payload[i + 1]
        opts[code] = payload[i + 2:i + 2 + n]
        i += 2 + n
    assert opts[53] == b"\x08" and opts[12].decode() == dev.spec.hostname
    assert opts[60].decode() == f"AXIS,Network Camera,{dev.spec.model},{dev.spec.firmware}"
    assert struct.unpack("!H", payload[10:12])[0] == 0x8000  # broadcast flag


def test_hikvision_sadp_and_mdns_announcements() -> None:
    dev = _dev("lts_camera")
    msgs = {role: payload for role, payload, _ in chatter.messages(dev)}
    root = SafeET.fromstring(msgs["sadp"])
    assert root.tag == "ProbeMatch" and root.findtext("OEMInfo") == "LTS"
    axis = _dev("axis_camera")
    mdns = {role: payload for role, payload, _ in chatter.messages(axis)}["mdns"]
    msg = DNSIncoming(mdns)
    assert msg.valid and not msg.is_query() and any("_axis-video._tcp" in r.name for r in msg.answers())


def test_hostile_devices_only_arp_and_bait_stays_in_the_subnet() -> None:
    for kind in ("hostile_garbage", "hostile_xmlbomb", "hostile_escape", "hostile_reset"):
        roles = [r for r, _, _ in chatter.messages(_dev(kind))]
        assert roles == ["plain"]
    dev = _dev("printer", ip="198.18.3.254", prefixlen=22)
    target, _ = chatter.arp_bait(dev)
    assert target == "198.18.3.253"  # never the device itself, never outside its subnet
