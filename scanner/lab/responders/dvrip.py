"""Xiongmai DVRIP ("Sofia") on TCP 34567: login (1000) and SystemInfo (1020), as an XMEye device answers.

Framing and codes after NeiroNx/python-dvr (dvrip.py: header ``'BB2xII2xHI'``, JSON ending ``\\n\\0``,
``Ret`` 100 OK, 105 not logged in, 203 wrong password); the SystemInfo keys and value formats are those
its README shows from a real camera (SoftWareVersion ``V5.00.R02.000529B2.10010.040600.0020000``,
HardWare ``HI3516EV300_85H50AI``, a 16-hex-digit SerialNo). Nothing is disclosed before a login with the
device's own account.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import struct

from scanner.lab.responders.base import Device, send
from scanner.probes.dvrip import HEADER, LOGIN, SYSINFO, sofia_hash

MAX_BODY = 16 * 1024
READ_TIMEOUT = 10.0


def _reply(msg_id: int, session: int, seq: int, obj: dict) -> bytes:
    body = json.dumps(obj).encode() + b"\x0a\x00"
    return HEADER.pack(0xFF, 1, session, seq, msg_id + 1, len(body)) + body


def system_info(dev: Device) -> dict:
    s = dev.spec
    board = s.hardware or "HI3516EV300_85H50AI"
    return {
        "AlarmInChannel": 1, "AlarmOutChannel": 1, "AudioInChannel": 1,
        "BuildTime": (s.build or "2020-01-08") + " 11:05:18", "CombineSwitch": 0, "DeviceModel": board,
        "DeviceRunTime": "0x0001f532", "DigChannel": 0, "EncryptVersion": "Unknown", "ExtraChannel": 0,
        "HardWare": board, "HardWareVersion": "Unknown", "SerialNo": s.serial or "",
        "SoftWareVersion": s.firmware or "", "TalkInChannel": 1, "TalkOutChannel": 1, "UpdataTime": "",
        "UpdataType": "0x00000000", "VideoInChannel": 1, "VideoOutChannel": 1,
    }


async def _read_message(reader: asyncio.StreamReader) -> tuple[int, int, int, dict] | None:
    try:
        head = await asyncio.wait_for(reader.readexactly(HEADER.size), READ_TIMEOUT)
        flag, _v, session, seq, msg_id, length = HEADER.unpack(head)
        if flag != 0xFF or length > MAX_BODY:
            return None
        body = await asyncio.wait_for(reader.readexactly(length), READ_TIMEOUT) if length else b""
    except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, struct.error):
        return None
    try:
        obj = json.loads(body.rstrip(b"\x00").decode("utf-8", "replace") or "{}")
    except ValueError:
        obj = {}
    return msg_id, session, seq, obj if isinstance(obj, dict) else {}


async def handle(dev: Device, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    session = 0
    for _ in range(16):
        got = await _read_message(reader)
        if got is None:
            return
        msg_id, sess, seq, obj = got
        if msg_id == LOGIN:
            ok = obj.get("UserName") == dev.username and obj.get("PassWord") == sofia_hash(dev.password)
            if ok:
                session = secrets.randbelow(2**31 - 1) + 1
                out = {"AliveInterval": 21, "ChannelNum": 1, "DeviceType ": "IPC", "ExtraChannel": 0, "Ret": 100,
                       "SessionID": f"0x{session:08X}"}
            else:
                await asyncio.sleep(0.2)
                out = {"Ret": 203, "SessionID": "0x00000000"}
            await send(dev, writer, _reply(msg_id, session, seq, out))
        elif msg_id == SYSINFO:
            if session and sess == session:
                out = {"Name": "SystemInfo", "Ret": 100, "SessionID": f"0x{session:08X}", "SystemInfo": system_info(dev)}
            else:
                out = {"Name": "", "Ret": 105, "SessionID": "0x00000000"}
            await send(dev, writer, _reply(msg_id, session, seq, out))
        else:
            await send(dev, writer, _reply(msg_id, session, seq, {"Ret": 103 if session else 105,
                                                                 "SessionID": f"0x{session:08X}"}))
