"""SNMP and Xiongmai DVRIP: recorded-reply parsing, parsers that never raise, probes over the injected
transports (no network but loopback), passive capture of SNMP replies, and the SNMP credentials keys."""

from __future__ import annotations

import asyncio
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.credentials import parse_ini
from scanner.errors import CredentialError
from scanner.lab.profiles import build_device
from scanner.lab.responders import dvrip as dvrip_agent
from scanner.lab.responders import snmp as snmp_agent
from scanner.lab.responders.base import Device
from scanner.probes import dvrip, snmp
from scanner.probes.base import ProbeContext

# A v2c GetResponse (request id 0x1a2b3c4d, community "public") carrying the sysDescr an Axis encoder
# reports, quoted in greenbone/vulnerability-tests "Axis Devices Detection (SNMP)" (script_oid
# 1.3.6.1.4.1.25623.1.0.170984): "; AXIS Q7404; Network Video Encoder; 5.51.7.6; Nov 23 2021 10:59; 165; 1;",
# sysObjectID 1.3.6.1.4.1.368.4 (Axis's IANA enterprise 368) and a sysName. Encoded with pysnmp 7.1's
# protocol layer (pysnmp.proto.api v2c GetResponsePDU), byte for byte what such an agent sends.
AXIS_REPLY = bytes.fromhex(
    "3081a902010104067075626c6963a2819b02041a2b3c4d02010002010030818c305506082b0601020101010004493b20415849"
    "532051373430343b204e6574776f726b20566964656f20456e636f6465723b20352e35312e372e363b204e6f7620323320"
    "323032312031303a35393b203136353b20313b301406082b0601020101020006082b06010401827004301d06082b060102"
    "010105000411617869732d303034303863313233343536")
AXIS_RID = 0x1A2B3C4D

# A DVRIP SystemInfo reply (message 1021) carrying the SystemInfo object NeiroNx/python-dvr's README shows
# from a real XMEye camera (HI3516EV300_85H50AI board), framed as python-dvr's dvrip.py reads it:
# header struct 'BB2xII2xHI' (0xFF, version 1, session 2, sequence 1, message 1021, body length), JSON, "\n\0".
_SYSINFO = {"Name": "SystemInfo", "Ret": 100, "SessionID": "0x00000002", "SystemInfo": {
    "AlarmInChannel": 2, "AlarmOutChannel": 1, "AudioInChannel": 1, "BuildTime": "2020-01-08 11:05:18",
    "CombineSwitch": 0, "DeviceModel": "HI3516EV300_85H50AI", "DeviceRunTime": "0x0001f532", "DigChannel": 0,
    "EncryptVersion": "Unknown", "ExtraChannel": 0, "HardWare": "HI3516EV300_85H50AI", "HardWareVersion": "Unknown",
    "SerialNo": "a166379674a3b447", "SoftWareVersion": "V5.00.R02.000529B2.10010.040600.0020000",
    "TalkInChannel": 1, "TalkOutChannel": 1, "UpdataTime": "", "UpdataType": "0x00000000", "VideoInChannel": 1,
    "VideoOutChannel": 1}}
_BODY = json.dumps(_SYSINFO).encode() + b"\n\x00"
DVRIP_SYSINFO_REPLY = bytes([0xFF, 1, 0, 0]) + (2).to_bytes(4, "little") + (1).to_bytes(4, "little") + \
    b"\x00\x00" + (1021).to_bytes(2, "little") + len(_BODY).to_bytes(4, "little") + _BODY


def _device(profile: str, password: str = "lab-pass-1") -> Device:
    return Device(spec=build_device(profile, 3, random.Random(7)), ip="127.0.0.1", username="admin",
                  password=password)


# ------------------------------------------------------------------------------------------------ SNMP


def test_recorded_axis_reply_parses():
    frag = snmp.parse_snmp(AXIS_REPLY, AXIS_RID)
    assert frag == {"discovery": [{"protocol": "snmp", "fields": {
        "sysDescr": "; AXIS Q7404; Network Video Encoder; 5.51.7.6; Nov 23 2021 10:59; 165; 1;",
        "sysObjectID": "1.3.6.1.4.1.368.4", "sysName": "axis-00408c123456"}}]}
    assert "public" not in json.dumps(frag)  # the community is not evidence


# An SNMPv3 Report to an engine-discovery request (RFC 3414 4), msgID 0x4d, engine id 8000000b 03 <MAC>: the
# form of HP JetDirect agents (enterprise 11, format 3 = MAC), as the lab's agent answers it.
HP_REPORT = bytes.fromhex(
    "305f020103300e02014d020300ffe3040100020103041b3019040b8000000b039c7bef400002020101020100040004000400302d"
    "040b8000000b039c7bef4000020400a81c02014d0201000201003011300f060a2b060106030f01010400410101")


def test_v3_report_gives_the_engine_enterprise():
    got = snmp.decode_report(HP_REPORT)
    assert got is not None
    assert got[1] == {"snmpEngineID": "8000000b039c7bef400002", "snmpEngineEnterprise": "1.3.6.1.4.1.11"}
    assert snmp.decode_report(snmp.build_engine_discovery(5)) is None  # our own request names nobody


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 96), st.integers(0, 255))
def test_decode_report_survives_mutations(pos, byte):
    data = bytearray(HP_REPORT)
    data[pos % len(data)] = byte
    out = snmp.parse_snmp(bytes(data))
    assert out is None or out["discovery"][0]["protocol"] == "snmp"


def test_reply_to_another_request_or_a_request_is_refused():
    assert snmp.parse_snmp(AXIS_REPLY, AXIS_RID + 1) is None
    assert snmp.parse_snmp(snmp.build_get("public", 5)) is None  # a GetRequest, not an answer
    assert snmp.parse_snmp(AXIS_REPLY[:40]) is None  # truncated
    assert snmp.parse_snmp(b"") is None and snmp.parse_snmp(b"\x30" * 30) is None


def test_identified_as_axis_from_snmp_alone():
    from scanner.identify import identify_record

    ident = identify_record({"ip": "192.0.2.7", **snmp.parse_snmp(AXIS_REPLY)})
    assert ident.manufacturer == "Axis" and ident.restricted is False
    assert ident.model == "Q7404" and ident.device_type == "encoder"


def test_net_snmp_names_nobody_and_enterprise_numbers_name_their_holder():
    from scanner.identify import identify_record

    generic = identify_record({"ip": "192.0.2.9", "discovery": [{"protocol": "snmp", "fields": {
        "sysDescr": "Linux cam 3.10.14 #1 armv7l", "sysObjectID": "1.3.6.1.4.1.8072.3.2.10",
        "snmpEngineEnterprise": "1.3.6.1.4.1.8072"}}]})
    assert generic.manufacturer is None and generic.restricted is None
    for oid, maker, restricted in (("1.3.6.1.4.1.39165.1.1", "Hikvision", True), ("1.3.6.1.4.1.36849.1.2",
                                   "Hanwha Vision", False), ("1.3.6.1.4.1.2011.2.23.95", "Huawei", True)):
        got = identify_record({"ip": "192.0.2.9", "discovery": [{"protocol": "snmp", "fields": {"sysObjectID": oid}}]})
        assert (got.manufacturer, got.restricted) == (maker, restricted), oid
    # a longer number that merely starts with the same digits is somebody else
    other = identify_record({"ip": "192.0.2.9", "discovery": [{"protocol": "snmp", "fields": {
        "sysObjectID": "1.3.6.1.4.1.3681.1"}}]})
    assert other.manufacturer is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_parse_snmp_never_raises(data):
    assert snmp.parse_snmp(data) is None or "discovery" in snmp.parse_snmp(data)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(AXIS_REPLY) - 1), st.integers(0, 255), st.integers(1, len(AXIS_REPLY)))
def test_parse_snmp_survives_mutated_replies(pos, byte, cut):
    data = bytearray(AXIS_REPLY)
    data[pos] = byte
    out = snmp.parse_snmp(bytes(data[:cut]))
    assert out is None or out["discovery"][0]["protocol"] == "snmp"


def _agent_transport(dev: Device, sent: list):
    """A datagram seam answered by the lab's SNMP agent (real BER in, real BER out)."""

    async def datagram(payload, dest, wait, multicast):
        sent.append((payload, dest))
        out = snmp_agent.answer(dev, payload, ("127.0.0.1", 50000))
        return [(out, (dest[0], 161))] if out else []

    return datagram


async def test_probe_asks_public_and_gets_the_system_group():
    dev, sent = _device("axis_camera"), []
    ctx = ProbeContext(datagram=_agent_transport(dev, sent))
    frag = await snmp.probe("127.0.0.1", ctx)
    fields = frag["discovery"][0]["fields"]
    assert fields["sysObjectID"].startswith("1.3.6.1.4.1.368") and fields["sysDescr"].startswith("; AXIS ")
    assert fields["snmpEngineEnterprise"] == "1.3.6.1.4.1.8072"  # the v3 discovery Report: a net-snmp engine
    assert len(sent) == 2 and {d for _, d in sent} == {("127.0.0.1", 161)}  # the GET and the engine discovery


async def test_no_snmp_public_sends_nothing_without_communities():
    dev, sent = _device("axis_camera"), []
    ctx = ProbeContext(datagram=_agent_transport(dev, sent), snmp_public=False)
    assert await snmp.probe("127.0.0.1", ctx) == {}
    assert sent == []


async def test_private_community_from_the_credentials_file():
    dev, sent = _device("hanwha_camera"), []  # snmp_private: answers only its own community
    secret = snmp_agent.lab_community(dev.username, dev.password)
    creds = parse_ini(f"[snmp]\ncommunity = wrong-one, {secret}\n")
    ctx = ProbeContext(datagram=_agent_transport(dev, sent), snmp_auth=creds.snmp_for)
    frag = await snmp.probe("127.0.0.1", ctx)
    assert frag["discovery"][0]["fields"]["sysObjectID"].startswith("1.3.6.1.4.1.36849")
    assert len(sent) == 4  # wrong-one, the right one, public and the engine discovery: all at once
    assert secret not in json.dumps(frag) and "wrong-one" not in json.dumps(frag)
    ctx2 = ProbeContext(datagram=_agent_transport(dev, []), snmp_public=True)
    only = (await snmp.probe("127.0.0.1", ctx2))["discovery"][0]["fields"]
    assert set(only) == {"snmpEngineID", "snmpEngineEnterprise"}  # public alone: no GET answer, only the engine


async def test_hostile_agent_gives_no_evidence():
    async def datagram(payload, dest, wait, multicast):
        return [(b"\x30\x82\xff\xff" + bytes(range(256)) * 4, (dest[0], 161)), (AXIS_REPLY, ("192.0.2.99", 161))]

    assert await snmp.probe("127.0.0.1", ProbeContext(datagram=datagram)) == {}


async def test_snmpv3_probe_against_a_real_v3_agent_on_loopback():
    """The lab's v3 agent (pysnmp's command responder, USM SHA + AES) on 127.0.0.1; the probe's v3 path."""
    import socket

    dev = _device("bosch_camera")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    agent = snmp_agent.V3Agent(dev, sock)
    try:
        user, auth_key, priv_key = snmp_agent.lab_v3_user(dev.username, dev.password)
        creds = parse_ini(f"[127.0.0.1]\nsnmp_user = {user}\nsnmp_auth_key = {auth_key}\nsnmp_priv_key = {priv_key}\n")
        ctx = ProbeContext(timeout=2.0, snmp_auth=creds.snmp_for, snmp_public=False, ports={"snmp": (port,)})
        frag = await snmp.probe("127.0.0.1", ctx)
        fields = frag["discovery"][0]["fields"]
        assert fields["sysObjectID"] == "1.3.6.1.4.1.3967.1" and fields["sysDescr"].startswith("Bosch ")
        assert auth_key not in json.dumps(frag) and priv_key not in json.dumps(frag)
        wrong = parse_ini(f"[127.0.0.1]\nsnmp_user = {user}\nsnmp_auth_key = wrong-key-1\nsnmp_priv_key = {priv_key}\n")
        ctx2 = ProbeContext(timeout=1.0, snmp_auth=wrong.snmp_for, snmp_public=False, ports={"snmp": (port,)})
        only = (await snmp.probe("127.0.0.1", ctx2))["discovery"][0]["fields"]
        assert set(only) == {"snmpEngineID", "snmpEngineEnterprise"}  # a wrong key: the engine id, no values
        # v2c "public" to a v3-only agent: no GET answer, only its engine discovery Report
        only = (await snmp.probe("127.0.0.1", ProbeContext(timeout=1.0, discover_wait=0.3,
                                                           ports={"snmp": (port,)})))["discovery"][0]["fields"]
        assert "sysDescr" not in only and only["snmpEngineEnterprise"] == "1.3.6.1.4.1.8072"
    finally:
        agent.close()
        sock.close()


async def test_two_v3_agents_whose_users_share_a_name_each_answer_with_their_own_keys():
    """Two devices, one v3 user name, different keys (the lab's Bosch cameras; real sites too): each is asked
    with its own keys. Seen in the 250-device lab before the fix: the second device was asked with the
    first's keys, answered wrong-digest Reports, and the exchange ping-ponged until the timeout."""
    import socket

    agents, socks, lines = [], [], []
    try:
        for i, ip in enumerate(("127.0.0.1", "127.0.0.2")):
            dev = Device(spec=build_device("bosch_camera", 3 + i, random.Random(7 + i)), ip=ip, username="admin",
                         password=f"lab-pass-{i}")  # two devices: two MACs, two engine ids
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((ip, 0))
            socks.append(sock)
            agents.append(snmp_agent.V3Agent(dev, sock))
            user, auth_key, priv_key = snmp_agent.lab_v3_user(dev.username, dev.password)
            lines.append(f"[{ip}]\nsnmp_user = {user}\nsnmp_auth_key = {auth_key}\nsnmp_priv_key = {priv_key}\n")
        assert len({ln.split("\n")[1] for ln in lines}) == 1  # the same user name on both
        creds = parse_ini("\n".join(lines))
        port = socks[0].getsockname()[1]

        async def ask(ip: str, port: int) -> dict:
            ctx = ProbeContext(timeout=2.0, snmp_auth=creds.snmp_for, snmp_public=False, ports={"snmp": (port,)})
            return await snmp.probe(ip, ctx)

        got = await asyncio.gather(ask("127.0.0.1", port), ask("127.0.0.2", socks[1].getsockname()[1]))
        for frag in got:
            assert frag["discovery"][0]["fields"]["sysObjectID"] == "1.3.6.1.4.1.3967.1", frag
    finally:
        for agent in agents:
            agent.close()
        for sock in socks:
            sock.close()


def test_snmp_credentials_keys():
    c = parse_ini("[snmp]\ncommunity = ops-ro\n\n[198.18.0.0/24]\ncommunity = a\n  b\n"
                  "snmp_user = mon\nsnmp_auth_protocol = sha256\nsnmp_auth_key = authkey-1\n"
                  "snmp_priv_protocol = aes256\nsnmp_priv_key = privkey-1\n\n"
                  "[default]\nusername = admin\npassword = pw\n")
    auth = c.snmp_for("198.18.0.7")
    assert auth.communities == ("a", "b", "ops-ro")
    assert auth.users[0].name == "mon" and auth.users[0].auth_protocol == "sha256"
    assert c.snmp_for("10.0.0.1").communities == ("ops-ro",)
    assert c.for_host("198.18.0.7") == ("admin", "pw")  # an SNMP-only section is no login
    assert "authkey-1" not in repr(auth) and "privkey-1" not in repr(auth) and "ops-ro" not in repr(auth)
    assert bool(parse_ini("[snmp]\ncommunity = x\n"))


@pytest.mark.parametrize("text,msg", [
    ("[snmp]\n", "holds no community"),
    ("[snmp]\nsnmp_user = u\nsnmp_auth_protocol = rot13\n", "snmp_auth_protocol"),
    ("[snmp]\nsnmp_user = u\nsnmp_auth_key = short\n", "shorter than 8"),
    ("[snmp]\nsnmp_priv_key = longenough\n", "without snmp_user"),
])
def test_bad_snmp_keys_are_clear_errors(text, msg):
    with pytest.raises(CredentialError, match=msg) as exc:
        parse_ini(text)
    assert "longenough" not in str(exc.value) and "short" not in str(exc.value).replace("shorter", "")


def test_passive_capture_reads_snmp_replies():
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    from scanner.probes.passive import parse_packet

    pkt = Ether(src="00:40:8c:12:34:56", dst="02:00:00:00:00:01") / IP(src="192.0.2.7", dst="192.0.2.1") / \
        UDP(sport=161, dport=40000) / AXIS_REPLY
    frags = parse_packet(Ether(bytes(pkt)))
    assert frags and frags[0]["ip"] == "192.0.2.7"
    assert frags[0]["discovery"][0]["fields"]["sysObjectID"] == "1.3.6.1.4.1.368.4"
    req = Ether() / IP(src="192.0.2.1", dst="192.0.2.7") / UDP(sport=40000, dport=161) / snmp.build_get("public", 1)
    assert parse_packet(Ether(bytes(req))) == []  # a manager's request names nobody
    rep = Ether() / IP(src="192.0.2.9", dst="192.0.2.1") / UDP(sport=161, dport=40001) / HP_REPORT
    assert parse_packet(Ether(bytes(rep)))[0]["discovery"][0]["fields"]["snmpEngineEnterprise"] == "1.3.6.1.4.1.11"


# ------------------------------------------------------------------------------------------------ DVRIP


def test_recorded_dvrip_sysinfo_parses():
    msg_id, session, obj = dvrip.parse_dvrip(DVRIP_SYSINFO_REPLY)
    assert (msg_id, session) == (1021, 2)
    frag = dvrip.build_fields([obj])
    f = frag["discovery"][0]["fields"]
    assert f["SoftWareVersion"] == "V5.00.R02.000529B2.10010.040600.0020000"
    assert f["HardWare"] == "HI3516EV300_85H50AI" and f["SerialNo"] == "a166379674a3b447"
    assert "SessionID" not in f and "DeviceRunTime" not in f


def test_dvrip_identifies_xiongmai():
    from scanner.identify import identify_record

    ident = identify_record({"ip": "192.0.2.8", **dvrip.build_fields([dvrip.parse_dvrip(DVRIP_SYSINFO_REPLY)[2]])})
    assert ident.manufacturer == "Xiongmai" and ident.restricted is False
    bare = identify_record({"ip": "192.0.2.8", "discovery": [{"protocol": "dvrip", "fields": {"Ret": "105"}}]})
    assert bare.manufacturer == "Xiongmai"


def test_sofia_hash_matches_python_dvr():
    # python-dvr's sofia_hash of the empty password is the well-known "tlJwpbo6" (its login default)
    assert dvrip.sofia_hash("") == "tlJwpbo6"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_parse_dvrip_never_raises(data):
    got = dvrip.parse_dvrip(b"\xff" + data)
    assert got is None or isinstance(got[2], dict)
    dvrip.parse_dvrip(data)


async def _serve(dev: Device):
    async def handler(r, w):
        try:
            await dvrip_agent.handle(dev, r, w)
        finally:
            w.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    async def opener(host, _port):
        return await asyncio.open_connection("127.0.0.1", port)

    return server, opener


async def test_dvrip_probe_without_credentials_records_the_refusal():
    dev = _device("xiongmai_camera")
    server, opener = await _serve(dev)
    async with server:
        frag = await dvrip.probe("127.0.0.1", ProbeContext(open_stream=opener, timeout=2.0))
    assert frag["discovery"][0] == {"protocol": "dvrip", "fields": {"Ret": "105"}}


async def test_dvrip_probe_with_credentials_reads_system_info():
    dev = _device("xiongmai_camera", password="xm-Secret9")
    server, opener = await _serve(dev)
    async with server:
        ctx = ProbeContext(open_stream=opener, timeout=2.0, credentials=lambda h: ("admin", "xm-Secret9"))
        frag = await dvrip.probe("127.0.0.1", ctx)
        f = frag["discovery"][0]["fields"]
        assert f["SoftWareVersion"] == dev.spec.firmware and f["SerialNo"] == dev.spec.serial
        assert f["DeviceType"] == "IPC" and "xm-Secret9" not in json.dumps(frag)
        bad = ProbeContext(open_stream=opener, timeout=2.0, credentials=lambda h: ("admin", "wrong"))
        f2 = (await dvrip.probe("127.0.0.1", bad))["discovery"][0]["fields"]
        assert f2 == {"Ret": "203"}  # refused login: no SystemInfo asked


async def test_dvrip_probe_closed_port_sends_nothing():
    async def opener(host, port):
        raise ConnectionRefusedError

    assert await dvrip.probe("127.0.0.1", ProbeContext(open_stream=opener)) == {}


async def test_closed_udp_port_is_refused_at_once_and_not_retried():
    """A unicast exchange to a closed loopback port: the ICMP port-unreachable ends it (no wait, no retry)."""
    import socket
    import time

    from scanner.options import ScanOptions
    from scanner.pacing import RateLimiter
    from scanner.probes.base import udp_exchange
    from scanner.probing import ProbeEnv

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    t0 = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        await udp_exchange(b"x", ("127.0.0.1", port), 2.0, stop_after=1)
    assert time.monotonic() - t0 < 1.0
    calls = []
    limiter = RateLimiter(0)
    orig = limiter.acquire

    async def counting() -> None:
        calls.append(1)
        await orig()

    limiter.acquire = counting  # type: ignore[method-assign]
    ctx = ProbeEnv(ScanOptions(retries=3), limiter).context()
    t0 = time.monotonic()
    assert await snmp.probe("127.0.0.1", ProbeContext(**{**ctx.__dict__, "ports": {"snmp": (port,)}})) == {}
    assert time.monotonic() - t0 < 1.0 and len(calls) == 2  # GET + engine discovery, each sent once


# ------------------------------------------------------------------ the BER reader against pyasn1
def _pyasn1_response(data: bytes):
    """What pysnmp/pyasn1's general decoder reads from a v1/v2c GetResponse (the reference)."""
    from pyasn1.codec.ber import decoder
    from pyasn1.type import univ
    from pysnmp.proto import api

    try:
        version = int(api.decodeMessageVersion(data))
        p = api.PROTOCOL_MODULES[version]
        msg, _ = decoder.decode(data, asn1Spec=p.Message())
        pdu = p.apiMessage.get_pdu(msg)
        if pdu.tagSet != p.GetResponsePDU.tagSet:
            return None
        out = {}
        for oid, value in p.apiPDU.get_varbinds(pdu)[:16]:
            name = snmp.SYSTEM_OIDS.get(str(oid))
            if name is None or name in out:
                continue
            if name == "sysObjectID":
                if isinstance(value, univ.ObjectIdentifier) and 2 <= len(value) <= 128:
                    out[name] = str(value)
            elif isinstance(value, univ.OctetString) and snmp.text_value(bytes(value)):
                out[name] = snmp.text_value(bytes(value))
        return int(p.apiPDU.get_request_id(pdu)), int(p.apiPDU.get_error_status(pdu)), out
    except Exception:
        return None


_texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)


@settings(max_examples=150, deadline=None)
@given(version=st.sampled_from([0, 1]), rid=st.integers(-2**31, 2**31 - 1), status=st.integers(0, 18),
       descr=_texts, name=_texts, oid=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=12),
       order=st.permutations([0, 1, 2]))
def test_ber_reader_reads_what_pyasn1_reads(version, rid, status, descr, name, oid, order):
    from pyasn1.codec.ber import encoder
    from pysnmp.proto import api, rfc1902

    p = api.PROTOCOL_MODULES[version]
    pdu = p.GetResponsePDU()
    p.apiPDU.set_defaults(pdu)
    p.apiPDU.set_request_id(pdu, rid)
    p.apiPDU.set_error_status(pdu, status)
    binds = [(rfc1902.ObjectName(snmp.SYS_DESCR), rfc1902.OctetString(descr.encode())),
             (rfc1902.ObjectName(snmp.SYS_OBJECT_ID), rfc1902.ObjectIdentifier((1, 3, 6, 1, 4, 1, *oid))),
             (rfc1902.ObjectName(snmp.SYS_NAME), rfc1902.OctetString(name.encode("utf-8")))]
    p.apiPDU.set_varbinds(pdu, [binds[i] for i in order])
    msg = p.Message()
    p.apiMessage.set_defaults(msg)
    p.apiMessage.set_community(msg, "public")
    p.apiMessage.set_pdu(msg, pdu)
    data = bytes(encoder.encode(msg))
    assert snmp.decode_response(data) == _pyasn1_response(data)
    # cut anywhere or with a byte changed: never raises, and never reads more than pyasn1 does
    for cut in range(0, len(data), 7):
        got = snmp.decode_response(data[:cut])
        assert got is None or got == _pyasn1_response(data[:cut])


def test_snmpv3_master_keys_are_made_once_and_localise_as_the_pass_phrase_does():
    """The master keys handed to pysnmp (scanner/probes/snmpv3.py _keys) are RFC 3414's: localised to an
    engine id they give the key pysnmp makes from the pass phrase itself; the second device reuses them."""
    from pysnmp.entity import config
    from pysnmp.hlapi.v3arch import asyncio as hl
    from pysnmp.proto import rfc1902

    from scanner.credentials import SnmpUser
    from scanner.probes import snmpv3

    user = SnmpUser("cam", "sha", "auth-pass-1", "aes", "priv-pass-1")  # name, auth protocol, key, priv protocol, key
    auth, priv = snmpv3._protocols(user)
    ak, pk, akt, pkt = snmpv3._keys(user, auth, priv)
    assert (akt, pkt) == (config.USM_KEY_TYPE_MASTER, config.USM_KEY_TYPE_MASTER)
    assert snmpv3._keys(user, auth, priv)[0] is ak  # made once
    engine_id = rfc1902.OctetString(bytes.fromhex("80001f8880e9bd0c1d12667a5100000000"))
    want_a = config.AUTH_SERVICES[auth].localize_key(
        config.AUTH_SERVICES[auth].hash_passphrase(rfc1902.OctetString("auth-pass-1")), engine_id)
    want_p = config.PRIV_SERVICES[priv].localize_key(
        auth, config.PRIV_SERVICES[priv].hash_passphrase(auth, rfc1902.OctetString("priv-pass-1")), engine_id)
    assert config.AUTH_SERVICES[auth].localize_key(ak, engine_id) == want_a
    assert config.PRIV_SERVICES[priv].localize_key(auth, pk, engine_id) == want_p
    none = SnmpUser("ro")
    assert snmpv3._keys(none, hl.usmNoAuthProtocol, hl.usmNoPrivProtocol)[2:] == (0, 0)
