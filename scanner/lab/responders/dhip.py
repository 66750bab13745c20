"""Dahua DHDiscover (UDP 37810, multicast 239.255.255.251): a 32-byte ``DHIP`` header plus JSON.

``DHDiscover.search`` in, ``client.notifyDevInfo`` out, unauthenticated, as every Dahua-derived device
answers (docs/restrictions.md 2.3). A search naming another device's MAC (top-level ``mac``) is ignored.
"""

from __future__ import annotations

import ipaddress
import json
import struct

from scanner.lab.responders.base import Device

PORT = 37810
GROUP = "239.255.255.251"
HEADER_LEN = 32
MAX_JSON = 16 * 1024


def encode(payload: dict) -> bytes:
    body = json.dumps(payload, separators=(",", ":")).encode()
    n = len(body)
    return struct.pack("<I", 0x20) + b"DHIP" + struct.pack("<IIIIII", 0, 0, n, n, n, n) + body


def decode(data: bytes) -> dict | None:
    if len(data) < HEADER_LEN or data[4:8] != b"DHIP":
        return None
    (declared,) = struct.unpack_from("<I", data, 16)
    body = data[HEADER_LEN:HEADER_LEN + min(declared or MAX_JSON, MAX_JSON)]
    try:
        msg = json.loads(body.decode("utf-8", "replace").rstrip("\x00"))
    except ValueError:
        return None
    return msg if isinstance(msg, dict) else None


def answer(dev: Device, data: bytes, addr: tuple[str, int]) -> bytes | None:
    msg = decode(data)
    if msg is None or msg.get("method") != "DHDiscover.search":
        return None
    want = str(msg.get("mac") or "").lower()
    if want and want != dev.spec.mac:
        return None
    s = dev.spec
    mask = str(ipaddress.IPv4Network(f"0.0.0.0/{dev.prefixlen}").netmask)
    info = {
        "AlarmInputChannels": 2 if s.device_type == "nvr" else 1, "AlarmOutputChannels": 1,
        "DeviceClass": "NVR" if s.device_type == "nvr" else "IPC", "DeviceType": s.model,
        "HttpPort": dev.port(80), "HttpsPort": 443,
        "IPv4Address": {"DefaultGateway": "0.0.0.0", "DhcpEnable": False, "IPAddress": dev.ip, "SubnetMask": mask},
        "IPv6Address": {"DefaultGateway": "", "DhcpEnable": False, "IPAddress": "/64", "LinkLocalAddress": ""},
        "MachineName": s.serial, "Manufacturer": "Private", "Port": dev.port(37777), "RemoteVideoInputChannels": 0,
        "SerialNo": s.serial, "UnLoginFuncMask": 15, "Vendor": s.oem or "Private",
        "Version": s.firmware, "VideoInputChannels": len(s.channels) if s.device_type == "nvr" else 1,
        "VideoOutputChannels": 1 if s.device_type == "nvr" else 0, "Init": 1,
    }
    if s.hostile_kind == "surrogate":  # lone surrogates, written as JSON escapes ("\ud800"), in its names
        info.update({"DeviceType": f"{s.model}\ud800", "MachineName": f"\udfff{s.serial}",
                     "Vendor": "Dahua\udbff", "SerialNo": f"{s.serial}\udc00"})
    return encode({"mac": s.mac, "method": "client.notifyDevInfo", "params": {"deviceInfo": info}})
