"""SNMP: sysDescr, sysObjectID and sysName of one host (UDP 161), read-only GETs only.

The messages are encoded and decoded with pysnmp's protocol layer (``pysnmp.proto.api``, BER through
pyasn1) and sent through the probe's own datagram seam (``ctx.exchange``), so the engine's rate
limiter, retries, byte caps and injected transports apply as to every other probe; pysnmp's engine
and its sockets are never started (its high-level API costs ~100 ms to import and opens its own
sockets).

Who may be asked what: the v2c communities of the credentials file for that host (``[snmp]`` or the
host's section, ``community = ...``), then the read-only ``public`` unless the scan says
``--no-snmp-public`` (``ctx.snmp_public``); and SNMPv3 users from the same file (USM, see
:mod:`scanner.probes.snmpv3`). All are asked at once; the first valid answer wins. A community is
a password: it never appears in the evidence, in a log line or in the store.

:func:`parse_snmp` reads one GetResponse (v1 or v2c) into
``{"discovery": [{"protocol": "snmp", "fields": {"sysDescr", "sysObjectID", "sysName"}}]}``;
anything else (a request, a report, an error, garbage) gives None, never an exception. Passive
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
    return secrets.randbelow(2**31 - 2) + 1


def build_get(community: str, request_id: int, oids: tuple[str, ...] = tuple(SYSTEM_OIDS)) -> bytes:
    """A v2c GetRequest for ``oids`` with ``community`` and ``request_id``."""
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


def fragment(fields: dict[str, str]) -> dict | None:
    return {"discovery": [{"protocol": "snmp", "fields": fields}]} if fields else None


def parse_snmp(data: bytes, request_id: int | None = None) -> dict | None:
    """A GetResponse carrying sysDescr/sysObjectID/sysName -> a format-1 fragment; None otherwise.
    With ``request_id``, an answer to another request is refused too."""
    got = decode_response(data)
    if got is None:
        return None
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


async def probe(host: str, ctx: ProbeContext) -> dict:
    """GET sysDescr, sysObjectID and sysName from ``host``:161 with every community (and v3 user) allowed
    for it, at once; the first answer with any of them, or ``{}``."""
    communities, users = auth_for(host, ctx)
    ports = ctx.ports_for("snmp") or (SNMP_PORT,)
    port = ports[0]
    jobs = [ask_community(host, port, c, ctx) for c in communities]
    if users:
        from scanner.probes import snmpv3

        jobs += [snmpv3.ask_user(host, port, u, ctx) for u in users]
    if not jobs:
        return {}
    tasks = [asyncio.ensure_future(j) for j in jobs]
    try:
        for fut in asyncio.as_completed(tasks, timeout=ctx.timeout + 1.0):
            try:
                got = await fut
            except asyncio.CancelledError:
                raise
            except Exception:
                continue
            if got:
                return got
    except TimeoutError:
        pass
    finally:
        for t in tasks:
            t.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)
    return {}
