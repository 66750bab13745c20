"""Plain TCP services that speak first or answer one probe: telnet, SSH, Hikvision's SDK port 8000,
Dahua's 37777, JetDirect 9100, SMB 445.

None of them lets anyone in: telnet always says ``Login incorrect``; the SDK ports answer the
unauthenticated greeting only; SSH sends its version line and stops.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import struct

from scanner.lab.responders.base import ESCAPE_TEXT, Device, send

TELNET_NEGOTIATE = b"\xff\xfd\x01\xff\xfd\x1f\xff\xfb\x01\xff\xfb\x03"
HIK_SDK_GREETING = b"\x00\x00\x00\x10\x00\x00\x00\x1e\x00\x00\x00\x1e\x00\x00\x00\x00"
READ_TIMEOUT = 10.0


async def _read_some(reader: asyncio.StreamReader, timeout: float = READ_TIMEOUT, n: int = 4096) -> bytes:
    try:
        return await asyncio.wait_for(reader.read(n), timeout)
    except (TimeoutError, ConnectionError):
        return b""


def telnet_banner(dev: Device) -> bytes:
    s = dev.spec
    if s.hostile_kind == "escape":
        return TELNET_NEGOTIATE + ("\r\n" + ESCAPE_TEXT + "\r\nlogin: ").encode()
    if s.family == "hikvision":
        return TELNET_NEGOTIATE + b"\r\n192.0.0.64 login: "
    if s.family == "dahua":
        return TELNET_NEGOTIATE + b"\r\n(none) login: "
    return TELNET_NEGOTIATE + f"\r\n{s.hostname} login: ".encode()


async def telnet(dev: Device, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await send(dev, writer, telnet_banner(dev))
    for _ in range(3):
        if not await _read_some(reader, 30.0):
            return
        await send(dev, writer, b"Password: ")
        if not await _read_some(reader, 30.0):
            return
        await asyncio.sleep(1.0)
        await send(dev, writer, b"\r\nLogin incorrect\r\nlogin: ")


def ssh_banner(dev: Device) -> bytes:
    s = dev.spec
    if s.family == "linux":
        return f"SSH-2.0-{s.firmware}\r\n".encode()
    if s.family == "nas":
        return b"SSH-2.0-OpenSSH_8.2\r\n"
    return b"SSH-2.0-dropbear_2019.78\r\n"


async def ssh(dev: Device, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await send(dev, writer, ssh_banner(dev))
    await _read_some(reader, 10.0)


async def hik_sdk(dev: Device, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Port 8000: the 16-byte greeting nmap knows as "Hikvision IPCam control port" (its NULL probe:
    the device speaks first)."""
    await send(dev, writer, HIK_SDK_GREETING)
    await _read_some(reader, 5.0)


def _dhip(payload: dict) -> bytes:
    body = json.dumps(payload, separators=(",", ":")).encode()
    n = len(body)
    return struct.pack("<I", 0x20) + b"DHIP" + struct.pack("<IIIIII", 0, 0, n, 0, n, 0) + body


async def dahua_sdk(dev: Device, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Port 37777: DHIP JSON gets the login challenge; the binary DVRIP greeting gets a refusal."""
    data = await _read_some(reader, 10.0)
    if not data:
        return
    if data[4:8] == b"DHIP":
        await send(dev, writer, _dhip({
            "error": {"code": 268632079, "message": "Component error: login challenge!"}, "id": 1,
            "params": {"encryption": "Default", "mac": dev.mac_plain, "random": str(secrets.randbelow(10**10)),
                       "realm": dev.spec.realm}, "result": False, "session": secrets.randbelow(2**31)}))
    elif data[:1] in (b"\xa0", b"\xa1", b"\xf6"):
        await send(dev, writer, b"\xb0\x00\x00\x58" + b"\x00" * 4 + b"\x00" * 24)
    await _read_some(reader, 5.0)


async def jetdirect(dev: Device, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    data = await _read_some(reader, 10.0)
    if b"@PJL INFO ID" in data.upper():
        await send(dev, writer, f'@PJL INFO ID\r\n"{dev.spec.model}"\r\n\x0c'.encode())


async def smb(dev: Device, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Port 445 is open (a NAS); the lab does not speak SMB, so a request just ends the connection."""
    await _read_some(reader, 10.0)


async def garbage_only(dev: Device, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Placeholder handler for ports where the hostile wrapper does everything."""
    await _read_some(reader, 1.0)
