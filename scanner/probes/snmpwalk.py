"""Walking a router's (or switch's) tables over SNMP: neighbour tables (IP to MAC) and forwarding tables.

``camsweep scan --snmp ROUTER`` reads, from each router named:

- IP-MIB ``ipNetToPhysicalTable`` (1.3.6.1.2.1.4.35; RFC 4293), index ``ifIndex.addrType.len.addr``;
- the older ``ipNetToMediaTable`` (1.3.6.1.2.1.4.22), index ``ifIndex.a.b.c.d``;
- BRIDGE-MIB ``dot1dTpFdbPort`` (1.3.6.1.2.1.17.4.3.1.2, index: the MAC) and Q-BRIDGE-MIB
  ``dot1qTpFdbPort`` (1.3.6.1.2.1.17.7.1.2.2.1.2, index ``fdbId.MAC``): which bridge port a MAC was
  learnt on (no IP: it confirms a MAC and names its port).

SNMPv2c is spoken here with a small BER encoder and reader (GETBULK, and GETNEXT where an agent
refuses GETBULK); SNMPv3 (USM: keys, HMAC, AES/DES) goes through pysnmp's ``bulk_walk_cmd``. The
communities and users come from the credentials file (``[snmp]`` or the router's own section), then
the read-only ``public`` unless ``--no-snmp-public``. A community is a password: it is never in a
message, a log line or the evidence.

Every reply is read under caps (bytes, varbinds, rows, requests, a total deadline) and a walk stops
where an agent does not move forward (an OID not greater than the last one). The parsers never raise:
what does not read is None.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from scanner.probes.snmp import (
    PUBLIC,
    SNMP_PORT,
    _Bad,
    _oid,
    build_engine_discovery,
    decode_report,
    new_request_id,
    response_varbinds,
)

MAX_REPLY = 64 * 1024  # bytes of one reply read
MAX_VARBINDS = 512  # varbinds read from one reply
MAX_ROWS = 65536  # rows of one table column
MAX_REQUESTS = 4096  # requests of one column walk
MAX_OID_ARCS = 128
BULK_REPETITIONS = 40

IP_NET_TO_PHYSICAL_PHYS = (1, 3, 6, 1, 2, 1, 4, 35, 1, 4)
IP_NET_TO_PHYSICAL_TYPE = (1, 3, 6, 1, 2, 1, 4, 35, 1, 6)
IP_NET_TO_MEDIA_PHYS = (1, 3, 6, 1, 2, 1, 4, 22, 1, 2)
IP_NET_TO_MEDIA_TYPE = (1, 3, 6, 1, 2, 1, 4, 22, 1, 4)
DOT1D_TP_FDB_PORT = (1, 3, 6, 1, 2, 1, 17, 4, 3, 1, 2)
DOT1Q_TP_FDB_PORT = (1, 3, 6, 1, 2, 1, 17, 7, 1, 2, 2, 1, 2)
TABLE_NAMES = {IP_NET_TO_PHYSICAL_PHYS: "ipNetToPhysicalTable", IP_NET_TO_MEDIA_PHYS: "ipNetToMediaTable",
               DOT1D_TP_FDB_PORT: "dot1dTpFdbTable", DOT1Q_TP_FDB_PORT: "dot1qTpFdbTable"}
INVALID_TYPE = 2  # ipNetToPhysicalType / ipNetToMediaType invalid(2)

# the value tags a row may carry; the three exceptions end a walk
_END_TAGS = (0x80, 0x81, 0x82)  # noSuchObject, noSuchInstance, endOfMibView
_INT_TAGS = (0x02, 0x41, 0x42, 0x43, 0x46)  # INTEGER, Counter32, Gauge32, TimeTicks, Counter64
GET_NEXT, GET_BULK = 0xA1, 0xA5

Value = bytes | int | tuple[int, ...] | None
Row = tuple[tuple[int, ...], Value]
Ask = Callable[[bytes], Awaitable[bytes | None]]


class WalkError(Exception):
    """The agent gave no usable answer to the first request of a walk."""


# ------------------------------------------------------------------------------------------------
# encoding (SNMPv2c)


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _enc(tag: int, payload: bytes) -> bytes:
    return bytes([tag]) + _len(len(payload)) + payload


def _enc_int(v: int) -> bytes:
    return _enc(0x02, v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big", signed=True))


def _enc_oid(arcs: tuple[int, ...]) -> bytes:
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] >= 40) or any(a < 0 for a in arcs):
        raise ValueError(f"not an OID: {arcs}")
    out = bytearray()
    for arc in (arcs[0] * 40 + arcs[1], *arcs[2:]):
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return _enc(0x06, bytes(out))


def build_request(community: str, request_id: int, oid: tuple[int, ...], *, bulk: bool = True,
                  repetitions: int = BULK_REPETITIONS) -> bytes:
    """A v2c GetBulkRequest (non-repeaters 0) or GetNextRequest for one OID."""
    varbinds = _enc(0x30, _enc(0x30, _enc_oid(oid) + b"\x05\x00"))
    if bulk:
        pdu = _enc(GET_BULK, _enc_int(request_id) + _enc_int(0) + _enc_int(repetitions) + varbinds)
    else:
        pdu = _enc(GET_NEXT, _enc_int(request_id) + _enc_int(0) + _enc_int(0) + varbinds)
    return _enc(0x30, _enc_int(1) + _enc(0x04, community.encode("utf-8")) + pdu)


# ------------------------------------------------------------------------------------------------
# reading


def decode_reply(data: bytes) -> tuple[int, int, list[Row]] | None:
    """(request id, error status, rows) of a v2c Response-PDU; None for anything else. Never raises.

    A row's value is bytes (OCTET STRING, IpAddress, Opaque), an int (INTEGER and the counters), a tuple
    (an OBJECT IDENTIFIER) or None (NULL, or the end-of-view exceptions, which come as ``(oid, None)``
    with the exception's tag kept out: a walk ends at them)."""
    try:
        request_id, status, varbinds = response_varbinds(data, cap=MAX_REPLY, versions=(1,),
                                                         max_varbinds=MAX_VARBINDS, min_len=10)
        rows: list[Row] = []
        for oid, vtag, raw in varbinds:
            if len(oid) > MAX_OID_ARCS:
                return None
            value: Value = None
            if vtag in _END_TAGS:
                value = _END
            elif vtag in _INT_TAGS:
                if not 0 < len(raw) <= 9:
                    return None
                value = int.from_bytes(raw, "big", signed=vtag == 0x02)
            elif vtag == 0x06:
                value = _oid(raw)
            elif vtag in (0x04, 0x40, 0x44):
                value = raw
            rows.append((oid, value))
        return request_id, status, rows
    except (_Bad, IndexError, ValueError):
        return None


class _EndOfView(bytes):
    """The marker value of a row that carried noSuchObject/noSuchInstance/endOfMibView."""


_END = _EndOfView(b"")


def _under(oid: tuple[int, ...], root: tuple[int, ...]) -> bool:
    return len(oid) > len(root) and oid[:len(root)] == root


async def walk_v2c(ask: Ask, community: str, root: tuple[int, ...], *, deadline: float,
                   max_rows: int = MAX_ROWS) -> list[Row]:
    """Every row under ``root`` (GETBULK; GETNEXT when the agent answers GETBULK with an error).
    Raises WalkError when the first request gets no answer; later silence ends the walk with what it has."""
    rows: list[Row] = []
    last = root
    bulk = True
    for n in range(MAX_REQUESTS):
        if time.monotonic() > deadline:
            break
        rid = new_request_id()
        data = await ask(build_request(community, rid, last, bulk=bulk))
        got = decode_reply(data) if data else None
        if got is None or got[0] != rid:
            if n == 0:
                raise WalkError("no answer")
            break
        _rid, status, vbs = got
        if status:
            if bulk:  # tooBig or genErr to a bulk request: one row at a time
                bulk = False
                continue
            if n == 0 and status in (2, 5) and not rows:  # noSuchName (v1-style agents), genErr: nothing here
                return rows
            break
        if not vbs:
            break
        done = False
        for oid, value in vbs:
            if value is _END or not _under(oid, root):
                done = True
                break
            if oid <= last:  # an agent that does not move forward
                done = True
                break
            rows.append((oid, value))
            last = oid
            if len(rows) >= max_rows:
                done = True
                break
        if done:
            break
    return rows


# ------------------------------------------------------------------------------------------------
# tables -> entries


def _mac(value: Value) -> str | None:
    if not isinstance(value, bytes) or isinstance(value, _EndOfView) or len(value) != 6:
        return None
    if value == b"\0" * 6 or value == b"\xff" * 6 or value[0] & 1:  # none, broadcast, multicast
        return None
    return ":".join(f"{b:02x}" for b in value)


def _ip4(arcs: Iterable[int]) -> str | None:
    a = tuple(arcs)
    if len(a) != 4 or any(not 0 <= x <= 255 for x in a):
        return None
    return ".".join(map(str, a))


def _neighbours(phys: list[Row], types: list[Row], phys_column: tuple[int, ...], type_column: tuple[int, ...],
                ipv4_of: Callable[[tuple[int, ...]], str | None]) -> list[tuple[str, str]]:
    """(ip, mac) from a neighbour table's physical-address rows, the entries its type column calls
    invalid(2) dropped; ``ipv4_of`` reads the address from a row's index (None: not an IPv4 entry)."""
    invalid = {oid[len(type_column):] for oid, v in types if _under(oid, type_column) and v == INVALID_TYPE}
    out: list[tuple[str, str]] = []
    for oid, value in phys:
        if not _under(oid, phys_column):
            continue
        idx = oid[len(phys_column):]
        if idx in invalid:
            continue
        ip, mac = ipv4_of(idx), _mac(value)
        if ip and mac:
            out.append((ip, mac))
    return out


def parse_physical(phys: list[Row], types: list[Row] = ()) -> list[tuple[str, str]]:  # type: ignore[assignment]
    """(ip, mac) from ipNetToPhysicalPhysAddress rows (IPv4 entries; type invalid(2) dropped)."""
    return _neighbours(phys, types, IP_NET_TO_PHYSICAL_PHYS, IP_NET_TO_PHYSICAL_TYPE,  # ifIndex, ipv4(1), 4, a.b.c.d
                       lambda idx: _ip4(idx[3:]) if len(idx) == 7 and idx[1] == 1 and idx[2] == 4 else None)


def parse_media(phys: list[Row], types: list[Row] = ()) -> list[tuple[str, str]]:  # type: ignore[assignment]
    """(ip, mac) from ipNetToMediaPhysAddress rows (type invalid(2) dropped)."""
    return _neighbours(phys, types, IP_NET_TO_MEDIA_PHYS, IP_NET_TO_MEDIA_TYPE,  # ifIndex, a.b.c.d
                       lambda idx: _ip4(idx[1:]) if len(idx) == 5 else None)


def parse_fdb(rows: list[Row]) -> list[tuple[str, int]]:
    """(mac, bridge port) from dot1dTpFdbPort or dot1qTpFdbPort rows (the MAC is the index's last 6 arcs)."""
    out: list[tuple[str, int]] = []
    for oid, value in rows:
        if _under(oid, DOT1D_TP_FDB_PORT):
            idx = oid[len(DOT1D_TP_FDB_PORT):]
            if len(idx) != 6:
                continue
        elif _under(oid, DOT1Q_TP_FDB_PORT):
            idx = oid[len(DOT1Q_TP_FDB_PORT):]
            if len(idx) != 7:
                continue
            idx = idx[1:]
        else:
            continue
        if any(not 0 <= x <= 255 for x in idx) or not isinstance(value, int) or isinstance(value, bool):
            continue
        mac = _mac(bytes(idx))
        if mac and value > 0:
            out.append((mac, value))
    return out


# ------------------------------------------------------------------------------------------------
# one router


@dataclass
class RouterTables:
    """What one router's tables gave: (ip, mac, table) neighbours, (mac, port) forwarding entries, and a
    warning (one sentence) when the router could not be read."""

    router: str
    neighbours: list[tuple[str, str, str]] = field(default_factory=list)
    fdb: list[tuple[str, int]] = field(default_factory=list)
    version: str | None = None  # "v2c" | "v3" (what answered)
    warning: str | None = None


def _datagram_ask(router: str, port: int, timeout: float, retries: int,
                  throttle: Callable[[], Awaitable[None]] | None) -> Ask:
    from scanner.probes.base import udp_exchange

    async def ask(payload: bytes) -> bytes | None:
        for _ in range(1 + max(0, retries)):
            if throttle is not None:
                await throttle()
            try:
                replies = await udp_exchange(payload, (router, port), timeout, max_bytes=MAX_REPLY, stop_after=1)
            except ConnectionRefusedError:
                return None
            for data, (ip, _p) in replies:
                if ip == router:
                    return data
        return None

    return ask


async def _walk_rest_v2c(ask: Ask, community: str, first: list[Row], deadline: float
                         ) -> dict[tuple[int, ...], list[Row]]:
    """The other neighbour and forwarding columns, once the first one (``first``) proved the community."""
    out: dict[tuple[int, ...], list[Row]] = {IP_NET_TO_PHYSICAL_PHYS: first}
    for col in (IP_NET_TO_PHYSICAL_TYPE, IP_NET_TO_MEDIA_PHYS, IP_NET_TO_MEDIA_TYPE, DOT1D_TP_FDB_PORT,
                DOT1Q_TP_FDB_PORT):
        try:
            out[col] = await walk_v2c(ask, community, col, deadline=deadline)
        except WalkError:
            out[col] = []
    return out


async def _walk_all_v3(router: str, port: int, user: Any, timeout: float, deadline: float,
                       throttle: Callable[[], Awaitable[None]] | None) -> dict[tuple[int, ...], list[Row]]:
    """The same columns over SNMPv3 with pysnmp's bulk walk (USM). Raises WalkError when nothing answers."""
    from pysnmp.hlapi.v3arch import asyncio as hl

    from scanner.probes.snmpv3 import _engine, _protocols

    auth, priv = _protocols(user)
    engine = _engine()
    target = await hl.UdpTransportTarget.create((router, port), timeout=max(0.5, min(timeout, 3.0)), retries=1)
    creds = hl.UsmUserData(user.name, user.auth_key or None, user.priv_key or None, authProtocol=auth,
                           privProtocol=priv)
    out: dict[tuple[int, ...], list[Row]] = {}
    first = True
    for col in (IP_NET_TO_PHYSICAL_PHYS, IP_NET_TO_PHYSICAL_TYPE, IP_NET_TO_MEDIA_PHYS, IP_NET_TO_MEDIA_TYPE,
                DOT1D_TP_FDB_PORT, DOT1Q_TP_FDB_PORT):
        rows: list[Row] = []
        answered = False
        if throttle is not None:
            await throttle()
        gen = hl.bulk_walk_cmd(engine, creds, target, hl.ContextData(), 0, BULK_REPETITIONS,
                               hl.ObjectType(hl.ObjectIdentity(".".join(map(str, col)))),
                               lexicographicMode=False, lookupMib=False)
        try:
            while time.monotonic() < deadline and len(rows) < MAX_ROWS:
                try:
                    err, status, _i, vbs = await asyncio.wait_for(gen.__anext__(), max(0.1, deadline - time.monotonic()))
                except StopAsyncIteration:
                    break
                if err or status:
                    break
                answered = True
                for name, val in vbs:
                    oid = tuple(int(x) for x in name)
                    if not _under(oid, col):
                        continue
                    rows.append((oid, _from_pyasn1(val)))
        finally:
            with contextlib.suppress(Exception):
                await gen.aclose()
        if first and not answered:
            raise WalkError("no answer")
        first = False
        out[col] = rows
    return out


def _from_pyasn1(value: Any) -> Value:
    from pyasn1.type import univ

    try:
        if isinstance(value, univ.ObjectIdentifier):
            return tuple(int(x) for x in value)
        if isinstance(value, univ.OctetString):
            return bytes(value)
        if isinstance(value, univ.Integer):
            return int(value)
    except Exception:  # a value with no value (pysnmp's exceptions)
        return None
    return None


def _tables(cols: dict[tuple[int, ...], list[Row]], router: str, version: str) -> RouterTables:
    res = RouterTables(router=router, version=version)
    seen: set[str] = set()
    for ip, mac in parse_physical(cols.get(IP_NET_TO_PHYSICAL_PHYS, []), cols.get(IP_NET_TO_PHYSICAL_TYPE, [])):
        if ip not in seen:
            seen.add(ip)
            res.neighbours.append((ip, mac, "ipNetToPhysicalTable"))
    for ip, mac in parse_media(cols.get(IP_NET_TO_MEDIA_PHYS, []), cols.get(IP_NET_TO_MEDIA_TYPE, [])):
        if ip not in seen:
            seen.add(ip)
            res.neighbours.append((ip, mac, "ipNetToMediaTable"))
    res.fdb = parse_fdb(cols.get(DOT1D_TP_FDB_PORT, []) + cols.get(DOT1Q_TP_FDB_PORT, []))
    return res


async def read_router(router: str, auth: Any, *, public: bool = True, port: int = SNMP_PORT,
                      timeout: float = 2.0, retries: int = 1, total: float = 60.0,
                      throttle: Callable[[], Awaitable[None]] | None = None,
                      ask: Ask | None = None) -> RouterTables:
    """Read ``router``'s neighbour and forwarding tables with the communities and v3 users of ``auth``
    (a ``scanner.credentials.SnmpAuth`` or None), then ``public`` when allowed. Never raises: a router
    that cannot be read comes back with ``warning`` set (why, in one sentence, without any secret)."""
    try:
        ipaddress.IPv4Address(router)
    except ValueError:
        return RouterTables(router=router, warning=f"--snmp {router[:60]!r} is not an IPv4 address")
    deadline = time.monotonic() + total
    communities = [str(c) for c in getattr(auth, "communities", ()) or () if c]
    users = list(getattr(auth, "users", ()) or ())
    if public and PUBLIC not in communities:
        communities.append(PUBLIC)
    if not communities and not users:
        return RouterTables(router=router, warning=f"SNMP: no community or v3 user to ask router {router} with "
                            "(give one in the [snmp] section of --credentials, or allow 'public')")
    ask = ask or _datagram_ask(router, port, timeout, retries, throttle)

    async def first_column(community: str) -> list[Row] | None:
        try:
            return await walk_v2c(ask, community, IP_NET_TO_PHYSICAL_PHYS, deadline=deadline)
        except WalkError:
            return None

    async def engine() -> bool:  # an agent that is there answers this without any secret (RFC 3414 4)
        mid = new_request_id()
        data = await ask(build_engine_discovery(mid))
        return bool(data) and decode_report(data) is not None

    # every community and the engine discovery at once: a dead router costs one timeout, not one per community,
    # and the first community that answers is used without waiting for the others to time out
    tasks = {asyncio.ensure_future(first_column(c)): c for c in communities}
    eng = asyncio.ensure_future(engine())
    found: tuple[str, list[Row]] | None = None
    pending: set[asyncio.Future] = set(tasks)
    try:
        while pending and found is None:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if found is None and t.result() is not None:
                    found = (tasks[t], t.result())
        if found is not None:
            eng.cancel()
            return _tables(await _walk_rest_v2c(ask, found[0], found[1], deadline), router, "v2c")
        agent_there = await eng
    finally:
        for t in [*pending, eng]:
            t.cancel()
        await asyncio.gather(*pending, eng, return_exceptions=True)
    for user in users if agent_there else ():
        try:
            cols = await _walk_all_v3(router, port, user, timeout, deadline, throttle)
        except WalkError:
            continue
        except asyncio.CancelledError:
            raise
        except Exception:
            continue
        return _tables(cols, router, "v3")
    what = " and ".join(x for x in (f"{len(communities)} communit{'y' if len(communities) == 1 else 'ies'}"
                                    if communities else "", f"{len(users)} v3 user{'s' if len(users) != 1 else ''}"
                                    if users else "") if x)
    if agent_there:
        return RouterTables(router=router, warning=f"SNMP: router {router} answers SNMP but not to the {what} "
                            "tried (wrong community or v3 user?); its neighbour table was not read")
    return RouterTables(router=router, warning=f"SNMP: no answer from router {router} on UDP {port} "
                        "(unreachable, or no SNMP agent there); its neighbour table was not read")
