"""mDNS legacy-unicast queries (for hosts beyond the attached segments): the query reads as DNS, a
responder's answer to it is read back, and nothing else is taken for one."""

from __future__ import annotations

import socket

from hypothesis import given, settings
from hypothesis import strategies as st
from zeroconf import DNSAddress, DNSIncoming, DNSOutgoing, DNSPointer, DNSQuestion, DNSService, DNSText
from zeroconf import const as C

from scanner.probes import mdns


def _answer(query: bytes, qid: int) -> bytes:
    """What a legacy-unicast responder sends: the id and questions echoed, PTR, SRV, TXT and A records."""
    q = DNSIncoming(query)
    out = DNSOutgoing(C._FLAGS_QR_RESPONSE | C._FLAGS_AA, multicast=False, id_=qid)
    for question in q.questions:
        out.add_question(DNSQuestion(question.name, question.type, question.class_))
    inst = "cam-7._http._tcp.local."
    out.add_answer_at_time(DNSPointer("_http._tcp.local.", C._TYPE_PTR, C._CLASS_IN, 4500, inst), 0)
    out.add_additional_answer(DNSService(inst, C._TYPE_SRV, C._CLASS_IN_UNIQUE, 120, 0, 0, 80, "cam-7.local."))
    out.add_additional_answer(DNSText(inst, C._TYPE_TXT, C._CLASS_IN_UNIQUE, 4500, b"\x0evendor=Example"))
    out.add_additional_answer(DNSAddress("cam-7.local.", C._TYPE_A, C._CLASS_IN_UNIQUE, 120,
                                         socket.inet_aton("198.18.1.7")))
    return out.packets()[0]


def test_query_reads_as_dns_with_every_service_type():
    q = DNSIncoming(mdns.build_query(4242))
    assert q.valid and q.is_query() and q.id == 4242
    assert [x.name for x in q.questions] == list(mdns.SERVICE_TYPES)
    assert all(x.type == C._TYPE_PTR for x in q.questions)


def test_answer_read_back_and_other_ids_refused():
    reply = _answer(mdns.build_query(77), 77)
    got = mdns.parse_unicast_reply(reply, 77)
    assert got and got["mdns"][0]["type"] == "_http._tcp.local." and got["mdns"][0]["port"] == 80
    assert got["mdns"][0]["txt"] == {"vendor": "Example"}
    assert mdns.parse_unicast_reply(reply, 78) is None
    assert mdns.parse_unicast_reply(mdns.build_query(77), 77) is None  # a query is not an answer


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.integers(1, 0xFFFF))
def test_never_raises(data, qid):
    got = mdns.parse_unicast_reply(data, qid)
    assert got is None or isinstance(got, dict)


def test_probe_asks_the_scans_mdns_port():
    """5353 by default; ``--mdns-port`` (a loopback lab serves it 10,000 up) moves it: a question to a port
    nobody asked for may be answered by something else bound there."""
    import asyncio

    from scanner.probes.base import ProbeContext

    asked: list[tuple[str, int]] = []

    async def datagram(payload, dest, wait, multicast):
        asked.append(dest)
        return [(_answer(payload, int.from_bytes(payload[:2], "big")), dest)]

    got = asyncio.run(mdns.probe("127.18.0.9", ProbeContext(datagram=datagram)))
    assert asked == [("127.18.0.9", 5353)] and got["mdns"][0]["type"] == "_http._tcp.local."
    asyncio.run(mdns.probe("127.18.0.9", ProbeContext(datagram=datagram, ports={"mdns": (15353,)})))
    assert asked[-1] == ("127.18.0.9", 15353)
