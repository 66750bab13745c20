"""Xiongmai DVRIP ("Sofia", NetSurveillance/XMEye) on TCP 34567.

Every message is a 20-byte header then JSON ending in ``\\n\\0`` (NeiroNx/python-dvr dvrip.py,
``struct 'BB2xII2xHI'``, little-endian)::

    0xFF | version | 2 reserved | session id (u32) | sequence (u32) | 2 reserved | message id (u16) | length (u32)

Message ids: 1000 login (reply 1001), 1020 SystemInfo (reply 1021). A reply's ``Ret`` is 100 for OK,
103/105/106/203/205 for refusals (python-dvr's CODES table).

Without credentials the probe asks SystemInfo with no session: a DVRIP device answers with a DVRIP
header and a ``Ret`` refusal, which is all that is recorded (the protocol answering on 34567 is the
evidence). With credentials for the host (never guessed) it logs in (the password as python-dvr's
"sofia" MD5 digest) and asks SystemInfo: SoftWareVersion, HardWare, DeviceModel, SerialNo, BuildTime and
the channel counts, plus the login reply's DeviceType and ChannelNum. Session ids and keep-alive
intervals are not device facts and are dropped. Nothing is sent unless 34567 accepts a connection.

:func:`parse_dvrip` reads one reply (bytes) into ``(message id, JSON object)``; :func:`build_fields`
turns replies into the ``{"protocol": "dvrip", "fields": {...}}`` evidence. Neither raises.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import struct
from typing import Any

from scanner.probes.base import Deadline, ProbeContext, close_writer, read_until

DVRIP_PORT = 34567
HEADER = struct.Struct("<BB2xII2xHI")
HEAD_FLAG = 0xFF
LOGIN, LOGIN_RSP = 1000, 1001
SYSINFO, SYSINFO_RSP = 1020, 1021
MAX_DVRIP = 32 * 1024  # bytes of one reply body
MAX_FIELDS = 40
_DROP = {"sessionid", "aliveinterval", "updatatime", "updatatype", "password", "deviceruntime"}


def build_message(msg_id: int, payload: dict, session: int = 0, sequence: int = 0) -> bytes:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8") + b"\x0a\x00"
    return HEADER.pack(HEAD_FLAG, 0, session & 0xFFFFFFFF, sequence & 0xFFFFFFFF, msg_id, len(body)) + body


def sofia_hash(password: str) -> str:
    """The 8-character password digest DVRIP logins carry (python-dvr's ``sofia_hash``)."""
    md5 = hashlib.md5(password.encode("utf-8")).digest()
    out = []
    for n in range(8):
        c = (md5[2 * n] + md5[2 * n + 1]) % 62
        out.append(chr(c + 48 if c <= 9 else c + 55 if c <= 35 else c + 61))
    return "".join(out)


def build_login(username: str, password: str) -> bytes:
    return build_message(LOGIN, {"EncryptType": "MD5", "LoginType": "DVRIP-Web",
                                 "PassWord": sofia_hash(password), "UserName": username})


def build_sysinfo(session: int = 0, sequence: int = 0) -> bytes:
    return build_message(SYSINFO, {"Name": "SystemInfo", "SessionID": f"0x{session:08X}"}, session, sequence)


def reply_complete(data: bytes) -> bool:
    """Whether ``data`` holds a whole reply (its header's length of body, or the cap)."""
    if len(data) < HEADER.size:
        return False
    if data[0] != HEAD_FLAG:
        return True  # not DVRIP: nothing more to wait for
    length = struct.unpack_from("<I", data, 16)[0]
    return len(data) >= HEADER.size + min(length, MAX_DVRIP)


def parse_dvrip(data: bytes) -> tuple[int, int, dict] | None:
    """(message id, session id, JSON object) of one DVRIP reply; None for anything else. Never raises."""
    try:
        if not isinstance(data, (bytes, bytearray)) or len(data) < HEADER.size + 2 or data[0] != HEAD_FLAG:
            return None
        head, _version, session, _seq, msg_id, length = HEADER.unpack_from(data, 0)
        if length < 2 or length > MAX_DVRIP:
            return None
        body = bytes(data[HEADER.size: HEADER.size + length]).rstrip(b"\x00").rstrip()
        if not body.startswith(b"{"):
            return None
        obj = json.loads(body.decode("utf-8", "replace"))
        if not isinstance(obj, dict):
            return None
        return int(msg_id), int(session), obj
    except (ValueError, TypeError, struct.error, RecursionError):
        return None


def _scalar(v: Any) -> str | None:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        s = v.replace("\x00", "").strip()
        return s[:256] if s else None
    return None


def flat_fields(obj: dict, into: dict[str, str]) -> None:
    """The reply's scalar values under their own names (key blanks stripped: XM sends "DeviceType ");
    a nested object named like the request (``SystemInfo``) is read one level down."""
    for k, v in list(obj.items())[:MAX_FIELDS * 2]:
        key = str(k).strip()[:64]
        if not key or key.lower() in _DROP or len(into) >= MAX_FIELDS:
            continue
        if isinstance(v, dict):
            if key in ("SystemInfo",):
                flat_fields(v, into)
            continue
        s = _scalar(v)
        if s is not None and key not in into:
            into[key] = s


def build_fields(replies: list[dict]) -> dict | None:
    """Evidence from the DVRIP replies of one exchange (``Ret`` of the first one kept as ``Ret``)."""
    fields: dict[str, str] = {}
    for obj in replies:
        flat_fields(obj, fields)
    if not fields:
        return None
    return {"discovery": [{"protocol": "dvrip", "fields": fields}]}


async def _ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, message: bytes,
               deadline: Deadline) -> tuple[int, int, dict] | None:
    writer.write(message)
    await asyncio.wait_for(writer.drain(), max(0.05, deadline.left()))
    data = await read_until(reader, deadline, HEADER.size + MAX_DVRIP, reply_complete)
    return parse_dvrip(data)


async def probe(host: str, ctx: ProbeContext) -> dict:
    """The DVRIP answer of ``host``:34567 (the scan's DVRIP ports, the first that accepts a connection), or
    ``{}``."""
    deadline = Deadline(ctx.timeout)
    for port in ctx.ports_for("dvrip"):  # none when --ports leaves DVRIP out
        if deadline.expired:
            break
        try:
            reader, writer = await ctx.connect(host, port)
        except (TimeoutError, OSError, ConnectionError):
            continue
        return await _session(host, ctx, reader, writer, deadline)
    return {}


async def _session(host: str, ctx: ProbeContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   deadline: Deadline) -> dict:
    replies: list[dict] = []
    try:
        cred = ctx.credentials_for(host)
        session = 0
        if cred is not None:
            got = await _ask(reader, writer, build_login(cred[0], cred[1]), deadline)
            if got is None:
                return {}
            _, _, obj = got
            replies.append(obj)
            try:
                if int(obj.get("Ret", 0)) in (100, 515):
                    session = int(str(obj.get("SessionID", "0")), 16) or got[1]
            except (TypeError, ValueError):
                session = 0
        if cred is None or session:
            got = await _ask(reader, writer, build_sysinfo(session, 1 if session else 0), deadline)
            if got is not None:
                replies.append(got[2])
    except asyncio.CancelledError:
        raise
    except Exception:
        pass
    finally:
        await close_writer(writer)
    return build_fields(replies) or {}
