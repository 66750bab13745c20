"""SNMP: sysDescr, sysObjectID and sysName of one host (UDP 161), read-only GETs only.

The messages are encoded and decoded with pysnmp's protocol layer (``pysnmp.proto.api``, BER through
pyasn1) and sent through the probe's own datagram seam (``ctx.exchange``), so the engine's rate
limiter, retries, byte caps and injected transports apply as to every other probe; pysnmp's engine
and its sockets are never started (its high-level API costs ~100 ms to import and opens its own
sockets).

Who may be asked what: the v2c communities of the credentials file for that host (``[snmp]`` or the
host's section, ``community = ...``), then the read-only ``public`` unless the scan says
``--no-snmp-public`` (``ctx.snmp_public``); and SNMPv3 users from the same file (USM, see
:mod:`scanner.probes.snmpv3`). Alongside, whenever SNMP may be asked at all, one SNMPv3 engine-discovery
request (RFC 3414 4: noAuthNoPriv, no user, no secret) gets the agent's Report with its snmpEngineID,
whose first four bytes name the enterprise (IANA PEN) that built the SNMP engine (RFC 3411
SnmpEngineID): evidence without any community, and the check that a v3 agent is there before the
(costlier) v3 GET is tried. All are asked at once; the first valid GET answer wins. A community is a
password: it never appears in the evidence, in a log line or in the store.

:func:`parse_snmp` reads one GetResponse (v1 or v2c) into
``{"discovery": [{"protocol": "snmp", "fields": {"sysDescr", "sysObjectID", "sysName"}}]}`` and a v3
Report into ``{"snmpEngineID": hex, "snmpEngineEnterprise": "1.3.6.1.4.1.<PEN>"}``; anything else (a request, a report, an error, garbage) gives None, never an exception. Passive
capture hands it the UDP payloads sent from port 161.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import Any

from scanner.probes.base import ProbeContext

SNMP_PORT = 161
MAX_SNMP = 8 * 1024  # bytes of one reply looked at (three short values fit in a few hundred)
MAX_VALUE = 1024  # characters kept of one value
PUBLIC = "public"

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
SYS_NAME = "1.3.6.1.2.1.1.5.0"
SYSTEM_OIDS = {SYS_DESCR: "sysDescr", SYS_OBJECT_ID: "sysObjectID", SYS_NAME: "sysName"}


def _api() -> Any:
    from pysnmp.proto import api

    return api


def new_request_id() -> int:
    """A random id whose BER INTEGER is four bytes long (so it can fill a message template)."""
    return secrets.randbelow(0x7F000000 - 2) + 0x01000000


# Encoding a message with pyasn1 costs ~0.2-0.7 ms of CPU; a scan sends two to every host. Each message kind
# is therefore encoded once with pysnmp (with placeholder ids) and later copies get their ids patched in:
# a four-byte INTEGER replaced by another four-byte INTEGER leaves every BER length as it was.
_PLACEHOLDER = (0x7FFFFFFE, 0x7FFFFFFD)
_TEMPLATES: dict[tuple[str, str], bytes] = {}
MAX_TEMPLATES = 64


def _ber_int4(value: int) -> bytes:
    return b"\x02\x04" + value.to_bytes(4, "big")


def _fill(template: bytes, *ids: int) -> bytes | None:
    out = template
    for placeholder, value in zip(_PLACEHOLDER, ids, strict=False):
        mark = _ber_int4(placeholder)
        if out.count(mark) != 1 or not 0x01000000 <= value <= 0x7FFFFFFF:
            return None
        out = out.replace(mark, _ber_int4(value))
    return out


def build_get(community: str, request_id: int, oids: tuple[str, ...] = tuple(SYSTEM_OIDS)) -> bytes:
    """A v2c GetRequest for ``oids`` with ``community`` and ``request_id``."""
    key = ("get", community) if oids == tuple(SYSTEM_OIDS) else None
    if key is not None:
        template = _TEMPLATES.get(key)
        if template is None:
            template = _encode_get(community, _PLACEHOLDER[0], oids)
            if len(_TEMPLATES) < MAX_TEMPLATES:
                _TEMPLATES[key] = template
        filled = _fill(template, request_id)
        if filled is not None:
            return filled
    return _encode_get(community, request_id, oids)


def _encode_get(community: str, request_id: int, oids: tuple[str, ...]) -> bytes:
    from pyasn1.codec.ber import encoder
    from pysnmp.proto.rfc1902 import ObjectName

    api = _api()
    p = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    pdu = p.GetRequestPDU()
    p.apiPDU.set_defaults(pdu)
    p.apiPDU.set_request_id(pdu, request_id)
    p.apiPDU.set_varbinds(pdu, [(ObjectName(o), p.Null("")) for o in oids])
    msg = p.Message()
    p.apiMessage.set_defaults(msg)
    p.apiMessage.set_community(msg, community)
    p.apiMessage.set_pdu(msg, pdu)
    return bytes(encoder.encode(msg))


def text_value(raw: bytes) -> str:
    """An OCTET STRING as text: UTF-8 if it is, else Latin-1; NULs and trailing blanks dropped, capped."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return text.replace("\x00", "").strip()[:MAX_VALUE]


def system_fields(varbinds: Any) -> dict[str, str]:
    """sysDescr/sysObjectID/sysName from decoded (OID, value) pairs; exceptions and wrong types skipped."""
    from pyasn1.type import univ

    fields: dict[str, str] = {}
    for oid, value in list(varbinds)[:16]:
        name = SYSTEM_OIDS.get(str(oid))
        if name is None or name in fields:
            continue
        if name == "sysObjectID":
            if isinstance(value, univ.ObjectIdentifier) and value.isValue and 2 <= len(value) <= 128:
                fields[name] = ".".join(str(int(x)) for x in value)
            continue
        if isinstance(value, univ.OctetString) and value.isValue:
            text = text_value(bytes(value))
            if text:
                fields[name] = text
    return fields


def decode_response(data: bytes) -> tuple[int, int, dict[str, str]] | None:
    """(request id, error status, fields) of a v1/v2c GetResponse; None for anything else. Never raises."""
    try:
        if not isinstance(data, (bytes, bytearray)) or len(data) < 20 or data[0] != 0x30:
            return None
        data = bytes(data[:MAX_SNMP])
        from pyasn1.codec.ber import decoder

        api = _api()
        version = int(api.decodeMessageVersion(data))
        if version not in api.PROTOCOL_MODULES:
            return None  # SNMPv3 (3) is read by scanner.probes.snmpv3
        p = api.PROTOCOL_MODULES[version]
        msg, _rest = decoder.decode(data, asn1Spec=p.Message())
        pdu = p.apiMessage.get_pdu(msg)
        if pdu.tagSet != p.GetResponsePDU.tagSet:
            return None
        request_id = int(p.apiPDU.get_request_id(pdu))
        status = int(p.apiPDU.get_error_status(pdu))
        return request_id, status, system_fields(p.apiPDU.get_varbinds(pdu))
    except Exception:  # pyasn1 raises many kinds on hostile BER; none may leave a parser
        return None


def build_engine_discovery(msg_id: int) -> bytes:
    """An SNMPv3 engine-discovery GetRequest (RFC 3414 4: reportable, noAuthNoPriv, empty engine id and
    user); msgID and request-id are both ``msg_id``."""
    template = _TEMPLATES.get(("discovery", ""))
    if template is None:
        template = _TEMPLATES[("discovery", "")] = _encode_discovery(*_PLACEHOLDER)
    return _fill(template, msg_id, msg_id) or _encode_discovery(msg_id, msg_id)


def _encode_discovery(msg_id: int, request_id: int) -> bytes:
    from pyasn1.codec.ber import encoder
    from pysnmp.proto import rfc1905
    from pysnmp.proto.mpmod.rfc3412 import SNMPv3Message
    from pysnmp.proto.secmod.rfc3414.service import UsmSecurityParameters

    msg = SNMPv3Message()
    msg["msgVersion"] = 3
    head = msg["msgGlobalData"]
    head["msgID"] = msg_id
    head["msgMaxSize"] = 65507
    head["msgFlags"] = b"\x04"  # reportable
    head["msgSecurityModel"] = 3  # USM
    usm = UsmSecurityParameters()
    usm["msgAuthoritativeEngineId"] = b""
    usm["msgAuthoritativeEngineBoots"] = 0
    usm["msgAuthoritativeEngineTime"] = 0
    usm["msgUserName"] = b""
    usm["msgAuthenticationParameters"] = b""
    usm["msgPrivacyParameters"] = b""
    msg["msgSecurityParameters"] = encoder.encode(usm)
    pdu = rfc1905.GetRequestPDU()
    pdu["request-id"] = request_id
    pdu["error-status"] = 0
    pdu["error-index"] = 0
    pdu["variable-bindings"].clear()
    scoped = msg["msgData"]["plaintext"]
    scoped["contextEngineId"] = b""
    scoped["contextName"] = b""
    scoped["data"]["get-request"] = pdu
    return bytes(encoder.encode(msg))


def engine_fields(engine_id: bytes) -> dict[str, str]:
    """snmpEngineID as hex, and (RFC 3411: first bit set) the enterprise that built the engine."""
    if not 5 <= len(engine_id) <= 32:
        return {}
    out = {"snmpEngineID": engine_id.hex()}
    if engine_id[0] & 0x80:
        pen = int.from_bytes(engine_id[:4], "big") & 0x7FFFFFFF
        if pen:
            out["snmpEngineEnterprise"] = f"1.3.6.1.4.1.{pen}"
    return out


def decode_report(data: bytes) -> tuple[int, dict[str, str]] | None:
    """(msgID, engine fields) of an SNMPv3 message carrying the agent's engine id; None otherwise."""
    try:
        if not isinstance(data, (bytes, bytearray)) or len(data) < 20 or data[0] != 0x30:
            return None
        data = bytes(data[:MAX_SNMP])
        from pyasn1.codec.ber import decoder
        from pysnmp.proto.mpmod.rfc3412 import SNMPv3Message
        from pysnmp.proto.secmod.rfc3414.service import UsmSecurityParameters

        msg, _rest = decoder.decode(data, asn1Spec=SNMPv3Message())
        if int(msg["msgVersion"]) != 3 or int(msg["msgGlobalData"]["msgSecurityModel"]) != 3:
            return None
        usm, _ = decoder.decode(bytes(msg["msgSecurityParameters"]), asn1Spec=UsmSecurityParameters())
        fields = engine_fields(bytes(usm["msgAuthoritativeEngineId"]))
        if not fields:
            return None
        flags = bytes(msg["msgGlobalData"]["msgFlags"])
        if flags and not flags[0] & 0x02:  # not encrypted: a request cannot carry an engine id of its own...
            pdu = msg["msgData"]["plaintext"]["data"]
            if pdu.getName() not in ("report", "response"):
                return None  # ...and a manager's request names the agent it asks, not itself
        return int(msg["msgGlobalData"]["msgID"]), fields
    except Exception:
        return None


def fragment(fields: dict[str, str]) -> dict | None:
    return {"discovery": [{"protocol": "snmp", "fields": fields}]} if fields else None


def parse_snmp(data: bytes, request_id: int | None = None) -> dict | None:
    """A GetResponse carrying sysDescr/sysObjectID/sysName (or a v3 Report carrying the engine id) -> a
    format-1 fragment; None otherwise. With ``request_id``, an answer to another request is refused too."""
    got = decode_response(data)
    if got is None:
        report = decode_report(data) if isinstance(data, (bytes, bytearray)) and b"\x02\x01\x03" in data[:8] else None
        if report is None or (request_id is not None and report[0] != request_id):
            return None
        return fragment(report[1])
    rid, _status, fields = got
    if request_id is not None and rid != request_id:
        return None
    return fragment(fields)


# ------------------------------------------------------------------------------------------------
# the probe


def auth_for(host: str, ctx: ProbeContext) -> tuple[list[str], list[Any]]:
    """(communities to try, v3 users) for ``host``: the credentials file's, then ``public`` (unless
    ``--no-snmp-public``)."""
    communities: list[str] = []
    users: list[Any] = []
    lookup = getattr(ctx, "snmp_auth", None)
    if lookup is not None:
        try:
            auth = lookup(host)
            communities = [str(c) for c in getattr(auth, "communities", ()) or () if c][:8]
            users = list(getattr(auth, "users", ()) or ())[:4]
        except Exception:
            communities, users = [], []
    if getattr(ctx, "snmp_public", True) and PUBLIC not in communities:
        communities.append(PUBLIC)
    return communities, users


async def ask_community(host: str, port: int, community: str, ctx: ProbeContext) -> dict:
    rid = new_request_id()
    return await ctx.ask_host(host, port, build_get(community, rid), lambda d: parse_snmp(d, rid))


async def ask_engine(host: str, port: int, ctx: ProbeContext) -> dict:
    mid = new_request_id()
    return await ctx.ask_host(host, port, build_engine_discovery(mid), lambda d: parse_snmp(d, mid))


async def probe(host: str, ctx: ProbeContext) -> dict:
    """GET sysDescr, sysObjectID and sysName from ``host``:161 with every community allowed for it, and
    discover its v3 engine, at once; then the v3 users (if any, and only if a v3 engine answered).
    The GET answer (first of any) plus the engine's id, or ``{}``."""
    communities, users = auth_for(host, ctx)
    if not communities and not users:
        return {}
    port = (ctx.ports_for("snmp") or (SNMP_PORT,))[0]
    engine_task = asyncio.ensure_future(ask_engine(host, port, ctx))
    tasks = [asyncio.ensure_future(ask_community(host, port, c, ctx)) for c in communities]
    got: dict = {}
    engine: dict = {}
    try:
        if tasks:
            with contextlib.suppress(TimeoutError):
                for fut in asyncio.as_completed(tasks, timeout=ctx.timeout + 1.0):
                    with contextlib.suppress(Exception):
                        got = await fut
                    if got:
                        break
        with contextlib.suppress(Exception):
            engine = await asyncio.wait_for(engine_task, ctx.timeout + 1.0)
        if not got and users and engine:
            from scanner.probes import snmpv3

            eid_hex = next((d.get("fields", {}).get("snmpEngineID") for d in engine.get("discovery", [])), None)
            try:
                eid = bytes.fromhex(eid_hex) if eid_hex else None
            except ValueError:
                eid = None
            for user in users:
                got = await snmpv3.ask_user(host, port, user, ctx, eid)
                if got:
                    break
    finally:
        for t in [*tasks, engine_task]:
            t.cancel()
        await asyncio.gather(*tasks, engine_task, return_exceptions=True)
    fields: dict[str, str] = {}
    for frag in (got, engine):
        for d in (frag or {}).get("discovery", []):
            for k, v in d.get("fields", {}).items():
                fields.setdefault(k, v)
    return fragment(fields) or {}
