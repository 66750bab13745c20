"""The hostile lab profiles built only on request (issue 13): never in a default fleet, and each answers
as its hostile behaviour says. The responders run in-process (the ONVIF one on loopback, read by the
real probe with the device's credentials)."""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from scanner.lab.profiles import HOSTILE_KEYS, ON_REQUEST_KEYS, PROFILE_KEYS, build_device, build_fleet
from scanner.lab.responders import dhip as dhip_responder
from scanner.lab.responders import http as http_responder
from scanner.lab.responders import mdns as mdns_responder
from scanner.lab.responders.base import Device, Request
from scanner.probes import dhip, http, mdns, onvif
from scanner.probes.base import ProbeContext

pytestmark = pytest.mark.timeout(120)


def _device(profile: str, ip: str = "127.0.0.1", **kw) -> Device:
    return Device(spec=build_device(profile, 7, random.Random(13)), ip=ip, username="admin", password="pw-13",
                  **kw)


def test_on_request_profiles_stay_out_of_default_fleets():
    assert set(ON_REQUEST_KEYS) == {"hostile_surrogate", "hostile_charset", "hostile_onvif_gzip",
                                    "hostile_mdns_names"}
    assert not set(ON_REQUEST_KEYS) & set(PROFILE_KEYS) and not set(ON_REQUEST_KEYS) & set(HOSTILE_KEYS)
    for n, seed in ((30, 0), (60, 1), (250, 0), (400, 7)):
        assert not {d.profile for d in build_fleet(n, seed)} & set(ON_REQUEST_KEYS)
    for key in ON_REQUEST_KEYS:
        spec = build_device(key, 3, random.Random(1))
        assert spec.hostile and spec.hostile_kind


def test_surrogate_device_sends_lone_surrogate_escapes_in_dhip_and_rpc2():
    dev = _device("hostile_surrogate")
    search = dhip_responder.encode({"method": "DHDiscover.search", "params": {"mac": "", "uni": 1}})
    reply = dhip_responder.answer(dev, search, ("127.0.0.1", 5000))
    assert b"\\ud800" in reply and b"\\udfff" in reply
    frag = dhip.parse_dhip(reply)
    assert frag is not None  # the parser reads it; the engine cleans the text where it enters
    # RPC2 after a login: every value carries surrogate escapes
    state: dict = {"rpc2_live": {"s1"}}
    req = Request("POST", "/RPC2", "HTTP/1.1", [("Content-Type", "application/json")],
                  json.dumps({"method": "magicBox.getDeviceType", "id": 3, "session": "s1"}).encode())
    resp = http_responder.route(dev, req, tls=False, port=80, state=state)
    assert b"\\ud800\\udc00" in resp.body
    assert json.loads(resp.body)["params"]["type"].startswith(dev.spec.model)


def test_charset_device_names_escape_codecs_in_content_type_and_meta():
    dev = _device("hostile_charset")
    resp = http_responder.route(dev, Request("GET", "/", "HTTP/1.1", []), tls=False, port=80, state={})
    assert ("Content-Type", "text/html; charset=unicode_escape") in resp.headers
    assert b'<meta charset="unicode_escape">' in resp.body and b"\\ud800" in resp.body
    entry = http.build_http_entry(resp.status, resp.headers, resp.body, port=80, tls=False)
    assert entry["title"] == "IP Camera \\ud800\\udfff"  # the codec refused: the bytes read as UTF-8
    assert "\\udc00 login" in entry["body"]


def test_mdns_device_announces_hundreds_of_names_it_never_resolves():
    from zeroconf import DNSOutgoing, DNSQuestion
    from zeroconf import const as C

    dev = _device("hostile_mdns_names")
    q = DNSOutgoing(C._FLAGS_QR_QUERY)
    q.add_question(DNSQuestion("_http._tcp.local.", C._TYPE_PTR, C._CLASS_IN))
    answer = mdns_responder.answer(dev, q.packets()[0], ("127.0.0.1", 40000))
    from zeroconf import DNSIncoming

    records = DNSIncoming(answer).answers()
    names = [r for r in records if r.type == C._TYPE_PTR and r.name == "_http._tcp.local."]
    assert len(names) >= 100 and not [r for r in records if r.type in (C._TYPE_SRV, C._TYPE_TXT, C._TYPE_A)]
    frag = mdns.parse_mdns(answer)  # the parser keeps its own cap
    assert 0 < len(frag["mdns"]) <= 32 and not any(e.get("port") for e in frag["mdns"])
    inst = DNSOutgoing(C._FLAGS_QR_QUERY)
    inst.add_question(DNSQuestion("cam-001._http._tcp.local.", C._TYPE_SRV, C._CLASS_IN))
    assert mdns_responder.answer(dev, inst.packets()[0], ("127.0.0.1", 40000)) is None


async def test_onvif_gzip_device_is_cut_off_by_the_credentialed_probe():
    async def serve(reader, writer):
        try:
            await http_responder.handle(dev, reader, writer, port=port_box[0])
        finally:
            writer.close()

    port_box = [0]
    srv = await asyncio.start_server(serve, "127.0.0.1", 0)
    port_box[0] = srv.sockets[0].getsockname()[1]
    dev = _device("hostile_onvif_gzip", ports={80: port_box[0]})
    try:
        ctx = ProbeContext(timeout=8.0, connect_timeout=1.0, ports={"onvif": (port_box[0],)},
                           credentials=lambda h: (dev.username, dev.password))
        out = await onvif.probe("127.0.0.1", ctx)
        plain = await onvif.probe("127.0.0.1", ProbeContext(timeout=4.0, connect_timeout=1.0,
                                                            ports={"onvif": (port_box[0],)}))
    finally:
        srv.close()
    assert plain["onvif"]["auth_required"] is True  # refused without credentials
    o = out["onvif"]
    assert o["auth_required"] is True and "authenticated" not in o and "model" not in o


def test_lab_up_hostile_fleet_adds_each_on_request_profile_once():
    from scanner.cli import build_parser
    from scanner.commands.lab import hostile_fleet

    fleet = hostile_fleet(30, 2)
    assert len(fleet) == 30 + len(ON_REQUEST_KEYS)
    assert [d.profile for d in fleet[30:]] == list(ON_REQUEST_KEYS)
    assert [d.profile for d in fleet[:30]] == [d.profile for d in build_fleet(30, 2)]  # the seed's fleet kept
    assert len({d.mac for d in fleet}) == len(fleet)
    args = build_parser(["lab", "up", "--hostile"]).parse_args(["lab", "up", "--hostile", "--devices", "5"])
    assert args.hostile is True and args.devices == 5
