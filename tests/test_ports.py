"""Ports as a scan option (scanner/ports.py): nmap-like lists, how --ports and the per-protocol options combine,
the CLI's errors, the ports recorded with a scan and reused by --resume, the banner probe on extra ports, and
a lab's port map."""

from __future__ import annotations

import asyncio
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner import engine, localnet
from scanner import ports as P
from scanner.cli import main
from scanner.evidence import Identification
from scanner.probes import registry
from scanner.probes.base import DEFAULT_PORTS, ProbeContext
from scanner.store import Store

pytestmark = pytest.mark.timeout(60)


# --------------------------------------------------------------------------------------------
# parsing


@pytest.mark.parametrize("spec,want", [
    ("80", (80,)),
    ("80,443,8000-8003", (80, 443, 8000, 8001, 8002, 8003)),
    (" 22 , 23 ", (22, 23)),
    ("443,80,443", (443, 80)),  # order kept, each once
    ("65534-", (65534, 65535)),
    ("-3", (1, 2, 3)),
])
def test_parse_ports(spec, want):
    assert P.parse_ports(spec) == want


def test_parse_every_port():
    assert P.parse_ports("-") == tuple(range(1, 65536))


@pytest.mark.parametrize("spec,msg", [
    ("", "empty port list"),
    ("80,,90", "empty item"),
    ("0", "out of range"),
    ("65536", "out of range"),
    ("90-80", "runs backwards"),
    ("http", "not a port number"),
    ("U:53", "protocol prefixes"),
    ("8o", "not a port number"),
    ("1-" + "9" * 40, "out of range"),
    ("８０", "not a port number"),  # full-width digits are not ASCII port numbers
])
def test_parse_errors_say_what_is_wrong(spec, msg):
    with pytest.raises(P.PortError, match=msg):
        P.parse_ports(spec)


def test_one_port_protocols_refuse_lists():
    with pytest.raises(P.PortError, match="at most 1 port"):
        P.parse_ports("161,162", option="--snmp-port", most=1)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_parse_never_raises_anything_but_a_port_error(text):
    try:
        got = P.parse_ports(text)
    except P.PortError as exc:
        assert str(exc).startswith("--ports")
        return
    assert got and all(1 <= p <= 65535 for p in got) and len(set(got)) == len(got)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 65535), min_size=1, max_size=40, unique=True))
def test_format_and_parse_round_trip(ports):
    assert P.parse_ports(P.format_ports(ports)) == tuple(ports)


# --------------------------------------------------------------------------------------------
# how --ports and the per-protocol ports combine


def test_no_port_option_records_nothing():
    assert P.resolve(None, {}) is None


def test_ports_restricts_each_protocol_and_extra_ports_get_the_banner_probe():
    got = P.resolve(P.parse_ports("80,554,9000-9001"))
    assert got["http"] == (80,) and got["rtsp"] == (554,) and got["onvif"] == (80,)
    assert got["https"] == () and got["hikvision"] == () and got["dahua"] == () and got["dvrip"] == ()
    assert got["banner"] == (9000, 9001)
    assert got["liveness"] == (80, 554, 9000, 9001)
    assert got["snmp"] == DEFAULT_PORTS["snmp"] and got["sadp"] == DEFAULT_PORTS["sadp"]  # UDP: not --ports'


def test_a_protocols_own_ports_win_and_extend_liveness():
    got = P.resolve(P.parse_ports("80"), {"http": (80, 8080), "rtsp": (8554,)})
    assert got["http"] == (80, 8080) and got["rtsp"] == (8554,)
    assert got["banner"] == () and set(got["liveness"]) == {80, 8080, 8554}
    alone = P.resolve(None, {"http": (8081,)})
    assert alone["http"] == (8081,) and alone["rtsp"] == DEFAULT_PORTS["rtsp"]
    assert 8081 in alone["liveness"] and set(DEFAULT_PORTS["liveness"]) <= set(alone["liveness"])


def test_liveness_is_capped_and_extras_are_bounded():
    got = P.resolve(P.parse_ports("20000-20999"))
    assert len(got["liveness"]) == P.LIVENESS_MAX and len(got["banner"]) == 1000
    with pytest.raises(P.PortError, match="at most 1024"):
        P.resolve(P.parse_ports("1-65535"))
    with pytest.raises(P.PortError, match="no probe asks ports of 'gopher'"):
        P.resolve(None, {"gopher": (70,)})


# --------------------------------------------------------------------------------------------
# the CLI: options reach the probes, are recorded, and --resume reuses them


class Ident:
    def identify(self, rec):
        return Identification()


@pytest.fixture
def seen(monkeypatch):
    got: dict[str, dict[str, tuple[int, ...]]] = {}

    async def http(host, ctx):
        got[host] = {k: ctx.ports_for(k) for k in ("http", "https", "rtsp", "snmp", "banner", "liveness")}
        return {}

    monkeypatch.setattr(engine, "load_identifier", lambda policy: Ident())
    monkeypatch.setattr(registry, "host_probes", lambda names=None: {"http": http})
    monkeypatch.setattr(registry, "discoverers", lambda names=(): {})
    monkeypatch.setattr(localnet, "read_routes", lambda: [])
    return got


def test_scan_options_reach_the_probes_and_are_recorded(tmp_path, capsys, seen):
    db = tmp_path / "s.db"
    code = main(["scan", "127.0.0.2", "--db", str(db), "-q", "-p", "80,554", "--http-ports", "80,8080",
                 "--snmp-port", "1161"])
    assert code == 0, capsys.readouterr().err
    ports = seen["127.0.0.2"]
    assert ports["http"] == (80, 8080) and ports["https"] == () and ports["rtsp"] == (554,)
    assert ports["snmp"] == (1161,)
    with Store(db) as s:
        rec = s.scan(s.latest_scan_id()).options["ports"]
    assert rec["http"] == [80, 8080] and rec["rtsp"] == [554] and rec["snmp"] == [1161]


def test_a_scan_without_port_options_asks_the_defaults(tmp_path, capsys, seen):
    db = tmp_path / "s.db"
    assert main(["scan", "127.0.0.2", "--db", str(db), "-q"]) == 0
    assert seen["127.0.0.2"]["http"] == DEFAULT_PORTS["http"]
    assert seen["127.0.0.2"]["liveness"] == DEFAULT_PORTS["liveness"]
    with Store(db) as s:
        assert s.scan(s.latest_scan_id()).options["ports"] is None


def test_resume_reuses_the_recorded_ports(tmp_path, capsys, seen):
    db = tmp_path / "s.db"
    recorded = engine.ScanOptions(ports=P.resolve(None, {"http": (8081,), "rtsp": (8554,)})).recordable()
    with Store(db) as s:
        s.start_scan(["127.0.0.2-3"], options={**recorded, "_pid": 2 ** 22 + 9})  # a scan that died
    code = main(["scan", "--resume", "--db", str(db), "-q", "--format", "json"])
    assert code == 0, capsys.readouterr().err
    assert set(seen) == {"127.0.0.2", "127.0.0.3"}
    assert all(p["http"] == (8081,) and p["rtsp"] == (8554,) for p in seen.values())


@pytest.mark.parametrize("args,msg", [
    (["127.0.0.1", "--ports", "90-80"], "--ports '90-80': the range runs backwards"),
    (["127.0.0.1", "--http-ports", "80,http"], "--http-ports 'http': 'http' is not a port number"),
    (["127.0.0.1", "--snmp-port", "161,1161"], "--snmp-port: at most 1 port"),
    (["127.0.0.1", "--ports", "1-65535"], "at most 1024"),
    (["127.0.0.1", "--rtsp-ports", "0"], "out of range"),
    (["--resume", "--http-ports", "8080"], "--resume reuses the ports"),
])
def test_bad_ports_are_one_line_and_exit_2(tmp_path, capsys, seen, args, msg):
    code = main(["scan", *args, "--db", str(tmp_path / "s.db")])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and msg in err and "Traceback" not in err
    assert seen == {}  # nothing was probed


def test_help_documents_the_port_options(capsys):
    with pytest.raises(SystemExit):
        main(["scan", "--help"])
    out = capsys.readouterr().out
    for opt in ("--ports", "--http-ports", "--https-ports", "--rtsp-ports", "--onvif-ports", "--dvrip-ports",
                "--hik-sdk-ports", "--dahua-sdk-ports", "--snmp-port", "kept by --resume"):
        assert opt in out, opt


# --------------------------------------------------------------------------------------------
# the banner probe on the scan's extra ports (real loopback sockets)


async def test_extra_ports_get_a_banner_and_a_silent_web_server_a_get():
    from scanner.probes import banner

    async def web(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\nServer: App-webs/\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    async def chatty(reader, writer):
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n")
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.close()

    servers = [await asyncio.start_server(h, "127.0.0.1", 0) for h in (web, chatty)]
    web_port, ssh_port = (s.sockets[0].getsockname()[1] for s in servers)
    try:
        ports = {**{k: () for k in ("hikvision", "dahua", "telnet", "ssh")}, "banner": (web_port, ssh_port)}
        got = await banner.probe("127.0.0.1", ProbeContext(timeout=4.0, ports=ports))
    finally:
        for s in servers:
            s.close()
    assert [(e["port"], e["headers"].get("Server")) for e in got["http"]] == [(web_port, "App-webs/")]
    text = {b["port"]: b.get("text") for b in got["banners"]}
    assert text[ssh_port].startswith("SSH-2.0-OpenSSH")


async def test_dvrip_tries_its_ports_in_order():
    from scanner.probes import dvrip

    tried = []

    async def opener(host, port):
        tried.append(port)
        raise ConnectionRefusedError

    got = await dvrip.probe("127.0.0.1", ProbeContext(ports={"dvrip": (34567, 44567)}, open_stream=opener))
    assert got == {} and tried == [34567, 44567]


# --------------------------------------------------------------------------------------------
# a lab's port map


def test_lab_port_map_moves_every_protocol_the_way_the_lab_serves_it():
    from scanner.lab import manager
    from scanner.lab.profiles import EXTRA_KEYS, build_device

    keys = ("hikvision_camera", "dahua_camera", "nas", "xiongmai_camera", "hikvision_camera_http8080")
    specs = [build_device(k, i, random.Random(i)) for i, k in enumerate(keys)]
    plan = manager.build_plan(specs, prefix="hp8u", mode="loopback", seed=0, port_offset=10000)
    got = manager.lab_ports(plan)
    assert got["port_map"]["80"] == 10080 and got["port_map"]["8080"] == 18080 and got["port_map"]["161"] == 10161
    assert got["scan_ports"]["http"] == [10080, 18080, 18000, 15000]  # defaults first, then the NAS's 5000
    assert got["scan_ports"]["sadp"] == [47020] and got["scan_ports"]["dvrip"] == [44567]
    args = got["scan_args"]
    assert args[args.index("--http-ports") + 1] == "10080,18080,18000,15000"
    assert args[args.index("--snmp-port") + 1] == "10161"
    assert args[args.index("--mdns-port") + 1] == "15353"  # unicast mDNS asks the lab's port, not 5353
    assert "hikvision_camera_http8080" in EXTRA_KEYS
    same = manager.lab_ports({**plan, "port_offset": 0, "devices": plan["devices"][:2]})
    assert same["scan_args"] == []  # a lab on the standard ports: the defaults ask them already


def test_explicit_profiles_never_enter_a_default_fleet():
    from scanner.lab.profiles import EXTRA_KEYS, PROFILE_KEYS, build_fleet

    assert not set(EXTRA_KEYS) & set(PROFILE_KEYS)
    for n, seed in ((60, 0), (250, 0), (40, 3)):
        assert not {d.profile for d in build_fleet(n, seed)} & set(EXTRA_KEYS)


def test_where_a_simulated_device_shows_its_maker():
    from scanner.lab.profiles import build_device, maker_shown_by

    def shown(key):
        return maker_shown_by(build_device(key, 3, random.Random(3)))

    assert shown("hikvision_camera") == ["arp", "unicast"]
    assert shown("hostile_slow") == ["arp"] and shown("hostile_reset") == ["arp"]
    assert shown("linux_server") == ["arp"]
    assert shown("nas") == ["arp", "multicast"]
    assert shown("axis_camera") == ["arp", "multicast", "unicast"]
    assert shown("xiongmai_camera") == ["unicast"]  # a NIC maker's MAC block names nobody
    assert shown("hostile_garbage") == ["unicast"]  # (it names no maker at all: ground truth null)


def test_comparison_counts_apart_what_only_arp_or_multicast_shows():
    from scanner.lab.manager import compare_with_ground_truth

    truth = [
        {"ip": "127.18.0.2", "manufacturer": "Hikvision", "restricted": True, "shown_by": ["arp", "unicast"]},
        {"ip": "127.18.0.3", "manufacturer": "Dell", "restricted": False, "shown_by": ["arp"]},
        {"ip": "127.18.0.4", "manufacturer": "Axis", "restricted": False},  # an older file: counted as unicast
    ]
    found = [{"device_id": 1, "ip": "127.18.0.2", "manufacturer": "Hikvision", "restricted": True},
             {"device_id": 2, "ip": "127.18.0.3", "manufacturer": None, "restricted": None},
             {"device_id": 3, "ip": "127.18.0.4", "manufacturer": "Axis", "restricted": False}]
    cmp = compare_with_ground_truth(found, truth)
    assert cmp["manufacturer_null"] == 1 and cmp["arp_multicast_only"] == 1
    v = cmp["unicast"]
    assert v["devices"] == 2 and v["manufacturer_right"] == 2 and v["manufacturer_null"] == 0
    assert v["restricted_found"] == v["restricted_truth"] == 1 and v["false_alarms"] == 0
    json.dumps(cmp)


async def test_ports_is_every_tcp_port_the_probes_touch():
    """Every TCP probe, run with the map of `--ports 80,9000`, connects to no other port."""
    import importlib

    from scanner.probes import liveness

    touched: set[int] = set()

    async def opener(host, port):
        touched.add(port)
        raise ConnectionRefusedError

    m = P.resolve(P.parse_ports("80,9000"))
    ctx = ProbeContext(ports=m, timeout=1.0, open_stream=opener)
    for name in ("rtsp", "banner", "dvrip"):
        await importlib.import_module(f"scanner.probes.{name}").probe("127.0.0.1", ctx)
    await liveness.alive("127.0.0.1", ctx)
    assert touched <= {80, 9000} and 9000 in touched
    assert m["dvrip"] == () and m["hikvision"] == ()
