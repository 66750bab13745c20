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


# ------------------------------------------------------------------------------------------------
# reading replies: a small BER reader for the two messages the probe reads (a v1/v2c GetResponse and a
# v3 message's header), ~20x cheaper than pyasn1's general decoder (measured: ~1 ms a reply with pyasn1,
# the largest part of SNMP's cost in a 250-device scan). Anything that does not read as it should is None.


class _Bad(Exception):
    pass


def _tlv(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, value start, value end) of the BER element at ``pos``; _Bad if it does not fit in ``end``."""
    if pos + 2 > end:
        raise _Bad
    tag = data[pos]
    if tag & 0x1F == 0x1F:  # multi-byte tags: none in these messages
        raise _Bad
    n = data[pos + 1]
    pos += 2
    if n & 0x80:
        k = n & 0x7F
        if k == 0 or k > 4 or pos + k > end:  # indefinite or absurd lengths
            raise _Bad
        n = int.from_bytes(data[pos:pos + k], "big")
        pos += k
    if pos + n > end:
        raise _Bad
    return tag, pos, pos + n


def _int(data: bytes, pos: int, end: int) -> tuple[int, int]:
    tag, vs, ve = _tlv(data, pos, end)
    if tag != 0x02 or not 0 < ve - vs <= 9:
        raise _Bad
    return int.from_bytes(data[vs:ve], "big", signed=True), ve


def _octets(data: bytes, pos: int, end: int) -> tuple[bytes, int]:
    tag, vs, ve = _tlv(data, pos, end)
    if tag != 0x04:
        raise _Bad
    return data[vs:ve], ve


def _oid(raw: bytes) -> tuple[int, ...] | None:
    if not raw or raw[-1] & 0x80:
        return None
    arcs: list[int] = []
    value = 0
    for byte in raw:
        if value == 0 and byte == 0x80:  # a non-minimal sub-identifier
            return None
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = arcs[0]
    head = (first // 40, first % 40) if first < 80 else (2, first - 80)
    return (*head, *arcs[1:])


def system_fields(varbinds: Any) -> dict[str, str]:
    """sysDescr/sysObjectID/sysName from (OID, value) pairs; wrong types skipped. An OID is a dotted
    string or an int tuple; a value is bytes (an OCTET STRING), a tuple of ints (an OBJECT IDENTIFIER)
    or a pyasn1 value (pysnmp's v3 answers)."""
    fields: dict[str, str] = {}
    for oid, value in list(varbinds)[:16]:
        key = oid if isinstance(oid, str) else ".".join(str(int(x)) for x in oid)
        name = SYSTEM_OIDS.get(key)
        if name is None or name in fields:
            continue
        if not isinstance(value, (bytes, tuple)):
            value = _from_pyasn1(value)
        if name == "sysObjectID":
            if isinstance(value, tuple) and 2 <= len(value) <= 128:
                fields[name] = ".".join(str(x) for x in value)
            continue
        if isinstance(value, bytes):
            text = text_value(value)
            if text:
                fields[name] = text
    return fields


def _from_pyasn1(value: Any) -> bytes | tuple[int, ...] | None:
    from pyasn1.type import univ

    if isinstance(value, univ.ObjectIdentifier) and value.isValue:
        return tuple(int(x) for x in value)
    if isinstance(value, univ.OctetString) and value.isValue:
        return bytes(value)
    return None


def _message(data: bytes) -> tuple[bytes, int, int, int]:
    """(the capped bytes, position after the version, end, version) of an SNMP message; _Bad otherwise."""
    if not isinstance(data, (bytes, bytearray)) or len(data) < 20 or data[0] != 0x30:
        raise _Bad
    data = bytes(data[:MAX_SNMP])
    _tag, pos, end = _tlv(data, 0, len(data))
    version, pos = _int(data, pos, end)
    return data, pos, end, version


def response_varbinds(data: bytes, *, cap: int, versions: tuple[int, ...], max_varbinds: int,
                      min_len: int = 20) -> tuple[int, int, list[tuple[tuple[int, ...], int, bytes]]]:
    """(request id, error status, [(oid, value tag, value bytes)]) of a v1/v2c GetResponse-PDU, read from
    the first ``cap`` bytes, at most ``max_varbinds`` varbinds; _Bad (or IndexError) for anything else.
    The one reader of GetResponses: decode_response (system fields) and scanner.probes.snmpwalk (tables)."""
    if not isinstance(data, (bytes, bytearray)) or len(data) < min_len or data[0] != 0x30:
        raise _Bad
    data = bytes(data[:cap])
    _tag, pos, end = _tlv(data, 0, len(data))
    version, pos = _int(data, pos, end)
    if version not in versions:
        raise _Bad
    _community, pos = _octets(data, pos, end)
    tag, pos, pend = _tlv(data, pos, end)
    if tag != 0xA2:  # GetResponse-PDU
        raise _Bad
    request_id, pos = _int(data, pos, pend)
    status, pos = _int(data, pos, pend)
    _index, pos = _int(data, pos, pend)
    tag, pos, lend = _tlv(data, pos, pend)
    if tag != 0x30:
        raise _Bad
    out: list[tuple[tuple[int, ...], int, bytes]] = []
    while pos < lend and len(out) < max_varbinds:
        tag, vpos, vend = _tlv(data, pos, lend)
        if tag != 0x30:
            raise _Bad
        otag, ostart, oend = _tlv(data, vpos, vend)
        if otag != 0x06:
            raise _Bad
        oid = _oid(data[ostart:oend])
        if oid is None:
            raise _Bad
        vtag, vs, ve = _tlv(data, oend, vend)
        out.append((oid, vtag, data[vs:ve]))
        pos = vend
    return request_id, status, out


def decode_response(data: bytes) -> tuple[int, int, dict[str, str]] | None:
    """(request id, error status, fields) of a v1/v2c GetResponse; None for anything else (SNMPv3 is read
    by decode_report and scanner.probes.snmpv3). Never raises."""
    try:
        request_id, status, rows = response_varbinds(data, cap=MAX_SNMP, versions=(0, 1), max_varbinds=16)
        varbinds: list[tuple[str, bytes | tuple[int, ...] | None]] = []
        for oid, vtag, raw in rows:
            value = raw if vtag == 0x04 else _oid(raw) if vtag == 0x06 else None
            varbinds.append((".".join(map(str, oid)), value))
        return request_id, status, system_fields(varbinds)
    except (_Bad, IndexError, ValueError):
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
        data, pos, end, version = _message(data)
        if version != 3:
            return None
        tag, hpos, hend = _tlv(data, pos, end)  # msgGlobalData
        if tag != 0x30:
            return None
        msg_id, hpos = _int(data, hpos, hend)
        _max_size, hpos = _int(data, hpos, hend)
        flags, hpos = _octets(data, hpos, hend)
        model, hpos = _int(data, hpos, hend)
        if model != 3:
            return None
        sec, pos = _octets(data, hend, end)  # msgSecurityParameters: a BER SEQUENCE inside an OCTET STRING
        tag, spos, send = _tlv(sec, 0, len(sec))
        if tag != 0x30:
            return None
        engine_id, spos = _octets(sec, spos, send)
        fields = engine_fields(engine_id)
        if not fields:
            return None
        if flags and not flags[0] & 0x02:  # not encrypted: a request cannot carry an engine id of its own...
            tag, ppos, pend = _tlv(data, pos, end)  # the scopedPDU
            if tag != 0x30:
                return None
            _ctx_engine, ppos = _octets(data, ppos, pend)
            _ctx_name, ppos = _octets(data, ppos, pend)
            tag, _vs, _ve = _tlv(data, ppos, pend)
            if tag not in (0xA8, 0xA2):  # report, response
                return None  # ...and a manager's request names the agent it asks, not itself
        return msg_id, fields
    except (_Bad, IndexError, ValueError):
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
