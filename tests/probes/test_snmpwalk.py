"""The SNMP table walker: its requests read as pyasn1 reads them, replies encoded by pysnmp read back,
walks over a fake agent (GETBULK, GETNEXT fallback, a looping agent), the table parsers, and warnings."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api
from pysnmp.proto.rfc1902 import Integer, ObjectName, OctetString

from scanner.credentials import SnmpAuth
from scanner.probes import snmpwalk as sw

P = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]


def _table() -> dict[tuple[int, ...], object]:
    """A router's neighbour table: three IPv4 entries (one invalid) and one IPv6 entry; ipNetToMedia too."""
    t: dict[tuple[int, ...], object] = {}
    rows = [(3, (198, 18, 0, 2), bytes.fromhex("4c11bf000002"), 3), (3, (198, 18, 0, 3), bytes.fromhex("a41437000003"), 3),
            (4, (198, 18, 1, 2), bytes.fromhex("bc325f000004"), 3), (4, (198, 18, 1, 9), bytes.fromhex("001122334455"), 2)]
    for ifx, ip, mac, typ in rows:
        t[(*sw.IP_NET_TO_PHYSICAL_PHYS, ifx, 1, 4, *ip)] = OctetString(mac)
        t[(*sw.IP_NET_TO_PHYSICAL_TYPE, ifx, 1, 4, *ip)] = Integer(typ)
        t[(*sw.IP_NET_TO_MEDIA_PHYS, ifx, *ip)] = OctetString(mac)
        t[(*sw.IP_NET_TO_MEDIA_TYPE, ifx, *ip)] = Integer(typ)
    t[(*sw.IP_NET_TO_PHYSICAL_PHYS, 3, 2, 16, *([0xfe, 0x80] + [0] * 13 + [1]))] = OctetString(b"\x02" * 6)
    t[(*sw.DOT1D_TP_FDB_PORT, 0x4c, 0x11, 0xbf, 0, 0, 2)] = Integer(7)
    t[(1, 3, 6, 1, 2, 1, 99, 1)] = Integer(1)  # past every column
    return t


class FakeAgent:
    """Answers v2c GETBULK/GETNEXT for ``community`` from a table (pysnmp encodes the replies)."""

    def __init__(self, table, community="s3cret", bulk_ok=True, loop=False):
        self.oids = sorted(table)
        self.table = table
        self.community = community
        self.bulk_ok = bulk_ok
        self.loop = loop
        self.requests = 0

    async def ask(self, payload: bytes) -> bytes | None:
        self.requests += 1
        if payload[2:5] != b"\x02\x01\x01":
            return None  # not v2c (the v3 engine discovery): this agent speaks v2c only
        msg, _ = decoder.decode(payload, asn1Spec=P.Message())
        if str(P.apiMessage.get_community(msg)) != self.community:
            return None  # net-snmp drops a wrong community silently
        pdu = P.apiMessage.get_pdu(msg)
        start = tuple(P.apiPDU.get_varbinds(pdu)[0][0])
        bulk = pdu.isSameTypeWith(P.GetBulkRequestPDU())
        n = int(P.apiBulkPDU.get_max_repetitions(pdu)) if bulk else 1
        resp = P.apiPDU.get_response(pdu)
        if bulk and not self.bulk_ok:
            P.apiPDU.set_error_status(resp, 5)
            P.apiPDU.set_varbinds(resp, [(ObjectName(start), P.Null(""))])
        else:
            after = [o for o in self.oids if o > start][:n]
            if self.loop:
                after = [self.oids[0]]
            vbs = [(ObjectName(o), self.table[o]) for o in after]
            if len(after) < n:
                vbs.append((ObjectName(start if not after else after[-1]), P.EndOfMibView()))
            P.apiPDU.set_varbinds(resp, vbs)
        out = P.Message()
        P.apiMessage.set_defaults(out)
        P.apiMessage.set_community(out, self.community)
        P.apiMessage.set_pdu(out, resp)
        return bytes(encoder.encode(out))


AUTH = SnmpAuth(("s3cret",))


def _read(agent, auth=AUTH, public=False):
    return asyncio.run(sw.read_router("198.19.0.1", auth, public=public, ask=agent.ask, total=10))


def test_request_is_what_pyasn1_reads():
    req = sw.build_request("c", 0x1234567, (1, 3, 6, 1, 2, 1, 4, 35, 1, 4, 3, 1, 4, 198, 18, 0, 200))
    msg, rest = decoder.decode(req, asn1Spec=P.Message())
    assert rest == b""
    pdu = P.apiMessage.get_pdu(msg)
    assert int(P.apiPDU.get_request_id(pdu)) == 0x1234567
    assert tuple(P.apiPDU.get_varbinds(pdu)[0][0]) == (1, 3, 6, 1, 2, 1, 4, 35, 1, 4, 3, 1, 4, 198, 18, 0, 200)


def test_reads_neighbours_and_fdb():
    agent = FakeAgent(_table())
    res = _read(agent)
    assert res.warning is None and res.version == "v2c"
    got = {(ip, mac) for ip, mac, _t in res.neighbours}
    assert got == {("198.18.0.2", "4c:11:bf:00:00:02"), ("198.18.0.3", "a4:14:37:00:00:03"),
                   ("198.18.1.2", "bc:32:5f:00:00:04")}  # the invalid entry and the IPv6 one are not there
    assert all(t == "ipNetToPhysicalTable" for _i, _m, t in res.neighbours)
    assert res.fdb == [("4c:11:bf:00:00:02", 7)]


def test_media_table_alone_and_getnext_fallback():
    t = {k: v for k, v in _table().items() if k[:len(sw.IP_NET_TO_PHYSICAL_PHYS) - 1] != sw.IP_NET_TO_PHYSICAL_PHYS[:-1]}
    t[(*sw.IP_NET_TO_PHYSICAL_PHYS[:-1], 9, 1)] = Integer(0)  # something after the column, so the walk starts
    agent = FakeAgent(t, bulk_ok=False)
    res = _read(agent)
    assert res.warning is None
    assert {(ip, t) for ip, _m, t in res.neighbours} == {("198.18.0.2", "ipNetToMediaTable"),
                                                       ("198.18.0.3", "ipNetToMediaTable"),
                                                       ("198.18.1.2", "ipNetToMediaTable")}


def test_looping_agent_stops():
    agent = FakeAgent(_table(), loop=True)
    res = _read(agent)
    assert agent.requests < 20
    assert res.neighbours == [] or len(res.neighbours) <= 1


def test_wrong_community_and_dead_router_warn_once():
    agent = FakeAgent(_table())
    res = _read(agent, auth=SnmpAuth(("wrong",)))
    assert res.neighbours == [] and res.warning and "no answer from router 198.19.0.1" in res.warning
    assert "wrong" not in res.warning  # the community itself never appears

    async def silent(_payload: bytes) -> bytes | None:
        return None
    res = asyncio.run(sw.read_router("198.19.0.1", None, public=True, ask=silent, total=5))
    assert res.warning and "no answer" in res.warning


def test_wrong_community_with_agent_there_says_so():
    from tests.probes.test_snmp_dvrip import HP_REPORT  # a real agent's Report to engine discovery

    agent = FakeAgent(_table())

    async def ask(payload: bytes) -> bytes | None:
        if payload[2:5] == b"\x02\x01\x03":  # SNMPv3: the engine discovery, which needs no secret
            return HP_REPORT
        return await agent.ask(payload)
    res = asyncio.run(sw.read_router("198.19.0.1", SnmpAuth(("wrong",)), public=False, ask=ask, total=5))
    assert res.warning and "answers SNMP but not to the 1 community tried" in res.warning


def test_bad_router_address():
    res = asyncio.run(sw.read_router("not-an-ip", None))
    assert res.warning and "not an IPv4 address" in res.warning


oids = st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=20).map(lambda t: (1, 3, *t))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(oids, st.one_of(st.binary(max_size=40), st.integers(-2**31, 2**31 - 1)), max_size=30),
       st.integers(0x01000000, 0x7FFFFFFF))
def test_decode_reads_what_pysnmp_writes(vbs, rid):
    pdu = P.GetResponsePDU()
    P.apiPDU.set_defaults(pdu)
    P.apiPDU.set_request_id(pdu, rid)
    P.apiPDU.set_varbinds(pdu, [(ObjectName(o), OctetString(v) if isinstance(v, bytes) else Integer(v))
                                for o, v in sorted(vbs.items())])
    msg = P.Message()
    P.apiMessage.set_defaults(msg)
    P.apiMessage.set_community(msg, "c")
    P.apiMessage.set_pdu(msg, pdu)
    got = sw.decode_reply(bytes(encoder.encode(msg)))
    assert got is not None
    assert got[0] == rid and got[1] == 0
    assert got[2] == [(o, v) for o, v in sorted(vbs.items())]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_decode_never_raises(data):
    got = sw.decode_reply(data)
    assert got is None or isinstance(got[2], list)
    sw.parse_physical([((*sw.IP_NET_TO_PHYSICAL_PHYS, *data[:8]), data[8:14])])
    sw.parse_fdb([((*sw.DOT1D_TP_FDB_PORT, *data[:6]), len(data))])


def test_decode_caps_size():
    big = b"\x30\x84\x7f\xff\xff\xff" + b"\x00" * 100
    assert sw.decode_reply(big) is None
