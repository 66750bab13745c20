"""The engine without a network: fake probes, fake transports, a fake identifier, an in-memory store."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time

import pytest

from scanner.devices import merge_fragments, split_channels
from scanner.engine import ScanOptions, run_scan
from scanner.errors import CamsweepError, TargetError
from scanner.events import DeviceIdentified, Finished, HostsFound, Progress, ScanWarning
from scanner.evidence import Identification
from scanner.localnet import Route, attached_interfaces, read_routes
from scanner.pacing import RateLimiter
from scanner.store import Store
from scanner.targets import parse_targets

pytestmark = pytest.mark.timeout(60)


class FakeIdentifier:
    """Identifies by the HTTP Server header; raises on a poisoned record."""

    def identify(self, rec):
        for h in rec.http:
            server = h.headers.get("Server", "")
            if server == "App-webs/":
                return Identification(manufacturer="Hikvision", brand="Hikvision", restricted=True,
                                      lists=("ndaa889",), confidence=0.9, device_type="camera")
            if server == "boom":
                raise RuntimeError("identifier bug")
            if server:
                return Identification(manufacturer="Axis", restricted=False, confidence=0.8, device_type="camera")
        for d in rec.discovery:
            if d.protocol == "nvr_channel" and d.fields.get("manufacturer"):
                return Identification(manufacturer=d.fields["manufacturer"], restricted=True, confidence=0.7,
                                      device_type="camera")
        return Identification()


def alive_opener(alive: set[str], calls: list | None = None):
    """A stream opener: alive hosts refuse the connection (so they are up), others never answer."""

    async def open_stream(host, port):
        if calls is not None:
            calls.append((host, port))
        if host in alive:
            raise ConnectionRefusedError(111, "refused")
        await asyncio.sleep(30)

    return open_stream


def http_probe(servers: dict[str, str]):
    async def probe(host, ctx):
        if host in servers:
            return {"http": [{"port": 80, "status": 200, "headers": {"Server": servers[host]}}]}
        return {}

    return probe


def opts(**kw) -> ScanOptions:
    base = dict(identifier=FakeIdentifier(), discoverers={}, routes=lambda: [], liveness_timeout=0.2,
                rate=0, timeout=0.5, connect_timeout=0.2, host_timeout=2.0)
    base.update(kw)
    return ScanOptions(**base)


@pytest.fixture
def store():
    s = Store(":memory:")
    yield s
    s.close()


async def test_scan_finds_live_hosts_identifies_and_stores(store):
    alive = {"127.0.0.2", "127.0.0.5", "127.0.0.9"}
    events = []
    o = opts(open_stream=alive_opener(alive),
             host_probes={"http": http_probe({"127.0.0.2": "App-webs/", "127.0.0.5": "Boa/0.94"})})
    scan_id = await run_scan(["127.0.0.1-10"], o, store, on_event=events.append)
    info = store.scan(scan_id)
    assert info.status == "complete" and info.device_count == 3 and info.restricted_count == 1
    devs = store.devices(scan_id)
    assert [d["ip"] for d in devs][0] == "127.0.0.2"  # restricted first
    by_ip = {d["ip"]: d for d in devs}
    assert by_ip["127.0.0.2"]["manufacturer"] == "Hikvision" and by_ip["127.0.0.2"]["restricted"] is True
    assert by_ip["127.0.0.5"]["restricted"] is False
    assert by_ip["127.0.0.9"]["manufacturer"] is None
    kinds = [type(e) for e in events]
    assert kinds.count(DeviceIdentified) == 3 and kinds[-1] is Finished
    assert events[-1] == Finished(scan_id, "complete", 3)
    assert Progress in kinds and events[kinds.index(HostsFound)] == HostsFound(3)
    rows = {e.row["ip"]: e.row for e in events if isinstance(e, DeviceIdentified)}
    assert rows["127.0.0.2"]["manufacturer"] == "Hikvision" and rows["127.0.0.2"]["device_id"] == by_ip["127.0.0.2"]["device_id"]
    # observations hold the raw evidence
    recs = {r.ip: r for _, r in store.observations(scan_id)}
    assert recs["127.0.0.2"].http[0].headers["server"] == "App-webs/"


async def test_no_targets_no_scan(store):
    with pytest.raises(TargetError):
        await run_scan([], opts(), store)
    assert store.scans() == []


async def test_hostile_probes_cost_only_their_host(store):
    alive = {"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"}

    async def hang(host, ctx):
        if host == "127.0.0.3":
            await asyncio.sleep(3600)
        return {}

    async def crash(host, ctx):
        if host == "127.0.0.4":
            raise ValueError("hostile reply")
        return {}

    async def garbage(host, ctx):
        if host == "127.0.0.5":
            return {"http": "not a list", "rtsp": [{"status": "abc"}], "banners": [{"protocol": "telnet",
                                                                                     "text": "login:"}]}
        return {}

    o = opts(open_stream=alive_opener(alive), host_timeout=1.0, timeout=0.3,
             host_probes={"http": http_probe({h: "App-webs/" for h in alive}), "hang": hang, "crash": crash,
                          "garbage": garbage})
    t0 = time.monotonic()
    scan_id = await run_scan(["127.0.0.2-5"], o, store)
    elapsed = time.monotonic() - t0
    assert elapsed < 3.0, elapsed  # the hanging probe cost its own timeout, not the scan's
    devs = {d["ip"]: d for d in store.devices(scan_id)}
    assert set(devs) == alive and all(d["manufacturer"] == "Hikvision" for d in devs.values())
    rec = {r.ip: r for _, r in store.observations(scan_id)}["127.0.0.5"]
    assert rec.banners and rec.banners[0].text == "login:"  # the readable part was kept


async def test_identifier_failure_keeps_the_device(store):
    o = opts(open_stream=alive_opener({"127.0.0.2"}), host_probes={"http": http_probe({"127.0.0.2": "boom"})})
    scan_id = await run_scan(["127.0.0.2"], o, store)
    (dev,) = store.devices(scan_id)
    assert dev["ip"] == "127.0.0.2" and dev["manufacturer"] is None


async def test_concurrency_is_bounded_globally_and_per_host(store):
    alive = {f"127.0.1.{i}" for i in range(1, 41)}
    state = {"hosts": set(), "max_hosts": 0, "per": {}, "max_per": 0}

    def probe_named(name):
        async def probe(host, ctx):
            state["hosts"].add(host)
            state["per"][host] = state["per"].get(host, 0) + 1
            state["max_hosts"] = max(state["max_hosts"], len(state["hosts"]))
            state["max_per"] = max(state["max_per"], state["per"][host])
            await asyncio.sleep(0.02)
            state["per"][host] -= 1
            if not state["per"][host]:
                state["hosts"].discard(host)
            return {}
        return probe

    o = opts(open_stream=alive_opener(alive), concurrency=5, per_host=2,
             host_probes={f"p{i}": probe_named(i) for i in range(6)})
    scan_id = await run_scan(["127.0.1.1-40"], o, store)
    assert store.scan(scan_id).device_count == 40
    assert state["max_hosts"] <= 5 and state["max_per"] <= 2
    assert state["max_hosts"] >= 3  # and it did run hosts in parallel


async def test_rate_limit_paces_connections(store):
    calls = []
    o = opts(open_stream=alive_opener(set(), calls), rate=100, liveness_timeout=0.05,
             ports={"liveness": (80,)}, host_probes={})
    t0 = time.monotonic()
    await run_scan(["127.0.2.1-50"], o, store)
    elapsed = time.monotonic() - t0
    assert len(calls) == 50
    assert 0.35 <= elapsed < 3.0, elapsed  # 50 packets at 100/s, burst of 5


async def test_rate_limiter_alone():
    rl = RateLimiter(200, burst=1)
    t0 = time.monotonic()
    for _ in range(41):
        await rl.acquire()
    assert 0.18 <= time.monotonic() - t0 < 0.6
    free = RateLimiter(0)
    t0 = time.monotonic()
    for _ in range(10000):
        await free.acquire()
    assert time.monotonic() - t0 < 0.5


async def test_nvr_channels_become_child_devices(store):
    async def nvr(host, ctx):
        return {"http": [{"port": 80, "status": 200, "headers": {"Server": "App-webs/"}}],
                "discovery": [
                    {"protocol": "isapi", "fields": {"deviceType": "NVR"}},
                    {"protocol": "nvr_channel", "fields": {"channel": "1", "ip": "192.168.254.2",
                                                           "manufacturer": "Dahua", "model": "IPC-HFW1230S"}},
                    {"protocol": "nvr_channel", "fields": {"channel": "2", "mac": "28-57-BE-00-00-02",
                                                           "manufacturer": "Hikvision"}},
                    {"protocol": "nvr_channel", "fields": {"channel": "2", "manufacturer": "dup"}},
                ]}

    o = opts(open_stream=alive_opener({"127.0.0.7"}), host_probes={"http": nvr})
    events: list = []
    scan_id = await run_scan(["127.0.0.7"], o, store, on_event=events.append)
    devs = store.devices(scan_id)
    parent = next(d for d in devs if d["ip"] == "127.0.0.7")
    kids = sorted((d for d in devs if d["parent_id"] == parent["device_id"]), key=lambda d: d["channel"])
    assert [k["channel"] for k in kids] == ["1", "2"]
    # each device is told as it is written: the recorder first, then its channels with parent and channel
    told = [e for e in events if isinstance(e, DeviceIdentified)]
    assert [(e.row["device_id"], e.parent_id, e.channel) for e in told] == [
        (parent["device_id"], None, None), (kids[0]["device_id"], parent["device_id"], "1"),
        (kids[1]["device_id"], parent["device_id"], "2")]
    assert told[1].as_row()["parent_id"] == parent["device_id"] and told[1].as_row()["ip"] == "192.168.254.2"
    assert "parent_id" not in told[0].as_row()
    assert kids[0]["ip"] == "192.168.254.2" and kids[0]["manufacturer"] == "Dahua"
    assert kids[1]["mac"] == "28:57:be:00:00:02" and kids[1]["manufacturer"] == "Hikvision"
    # the NVR's own record no longer carries its channels' evidence
    prec = {d: r for d, r in store.observations(scan_id)}[parent["device_id"]]
    assert [d.protocol for d in prec.discovery] == ["isapi"]
    # a second scan keeps the children as the same devices
    scan2 = await run_scan(["127.0.0.7"], o, store)
    assert {d["device_id"] for d in store.devices(scan2)} == {d["device_id"] for d in devs}


async def test_discovery_on_attached_interface_filters_and_adds_macs(store):
    seen_ctx = {}

    async def arp(ctx, addresses=None):
        seen_ctx["arp"] = ctx
        seen_ctx.setdefault("asked", []).append(list(addresses))
        return [{"ip": "198.18.0.5", "mac": "28:57:be:01:02:03"}, {"ip": "198.18.0.6", "mac": "3c-ef-8c-00-00-01"},
                {"ip": "198.18.9.9", "mac": "00:11:22:33:44:55"},  # outside the targets: dropped
                {"ip": "not an ip"}]

    async def wsd(ctx):
        seen_ctx["wsd"] = ctx
        return [{"ip": "198.18.0.6", "wsd": [{"scopes": ["onvif://www.onvif.org/name/Dahua"]}]},
                {"ip": "198.18.0.7", "wsd": [{"types": ["dn:NetworkVideoTransmitter"]}]}]

    liveness = []
    routes = [Route("lab0", ipaddress.IPv4Network("198.18.0.0/16"), None),
              Route("eth9", ipaddress.IPv4Network("0.0.0.0/0"), "198.18.0.254")]
    o = opts(routes=lambda: routes, discoverers={"arp": arp, "wsd": wsd}, open_stream=alive_opener(set(), liveness),
             host_probes={"http": http_probe({"198.18.0.5": "App-webs/"})}, multicast=True)  # a /24 of a /16
    scan_id = await run_scan(["198.18.0.0/24"], o, store)
    assert liveness == []  # the segment is attached: ARP, not TCP liveness
    assert seen_ctx["arp"].interface == "lab0" and seen_ctx["wsd"].interface == "lab0"
    assert seen_ctx["asked"] == [[f"198.18.0.{i}" for i in range(1, 255)]]  # the targets, not the /16
    assert seen_ctx["arp"].allowed("198.18.0.77") and not seen_ctx["arp"].allowed("198.18.9.9")
    devs = {d["ip"]: d for d in store.devices(scan_id)}
    assert set(devs) == {"198.18.0.5", "198.18.0.6", "198.18.0.7"}
    assert devs["198.18.0.5"]["mac"] == "28:57:be:01:02:03" and devs["198.18.0.6"]["mac"] == "3c:ef:8c:00:00:01"
    rec = {r.ip: r for _, r in store.observations(scan_id)}["198.18.0.6"]
    assert rec.wsd[0].scopes == ("onvif://www.onvif.org/name/Dahua",)


async def test_discovery_only_arp_answers_are_stored_while_the_sweep_goes_on(store):
    """-sn with ARP alone: the first round's answers are identified and stored during the second round."""
    seen_during_sweep = []

    async def arp(ctx, addresses=None, on_answers=None):
        first = [{"ip": "198.18.0.5", "mac": "28:57:be:01:02:03"}, {"ip": "198.18.0.6", "mac": "3c:ef:8c:00:00:01"},
                 {"ip": "198.18.9.9", "mac": "00:11:22:33:44:55"}]  # outside the targets: dropped
        on_answers(first)
        for _ in range(100):  # the second round: the engine stores the first answers meanwhile
            await asyncio.sleep(0.01)
            if len(store.devices()) == 2:
                break
        seen_during_sweep.extend(sorted(d["ip"] for d in store.devices()))
        return first + [{"ip": "198.18.0.9", "mac": "00:40:8c:00:00:09"}]  # a late answer, and the early ones again

    events = []
    o = opts(routes=lambda: [Route("lab0", ipaddress.IPv4Network("198.18.0.0/24"), None)],
             discoverers={"arp": arp}, probes=(), host_probes={})
    scan_id = await run_scan(["198.18.0.0/24"], o, store, on_event=events.append)
    assert seen_during_sweep == ["198.18.0.5", "198.18.0.6"]
    devs = {d["ip"]: d for d in store.devices(scan_id)}
    assert set(devs) == {"198.18.0.5", "198.18.0.6", "198.18.0.9"}
    assert devs["198.18.0.5"]["mac"] == "28:57:be:01:02:03" and devs["198.18.0.9"]["mac"] == "00:40:8c:00:00:09"
    assert len(list(store.observations(scan_id))) == 3  # each host written once
    assert store.scan(scan_id).status == "complete" and store.scan(scan_id).device_count == 3
    found = next(e for e in events if isinstance(e, HostsFound))
    assert found.count == 3 and [e for e in events if isinstance(e, Progress)][-1] == Progress(3, 3)


async def test_arp_answers_wait_for_other_evidence_when_multicast_runs(store):
    """With multicast discovery on, an ARP answer is not the whole story: nothing is stored early."""
    calls = []

    async def arp(ctx, addresses=None, on_answers=None):
        calls.append(on_answers)
        return [{"ip": "198.18.0.6", "mac": "3c:ef:8c:00:00:01"}]

    async def wsd(ctx):
        return [{"ip": "198.18.0.6", "wsd": [{"scopes": ["onvif://www.onvif.org/name/Dahua"]}]}]

    o = opts(routes=lambda: [Route("lab0", ipaddress.IPv4Network("198.18.0.0/24"), None)],
             discoverers={"arp": arp, "wsd": wsd}, probes=(), host_probes={})
    scan_id = await run_scan(["198.18.0.0/24"], o, store)
    assert calls == [None]
    rec = {r.ip: r for _, r in store.observations(scan_id)}["198.18.0.6"]
    assert rec.mac == "3c:ef:8c:00:00:01" and rec.wsd[0].scopes == ("onvif://www.onvif.org/name/Dahua",)


async def test_routed_targets_get_tcp_liveness_and_no_multicast(store):
    calls = []

    async def wsd(ctx):  # must never run: no interface is attached to the target
        raise AssertionError("multicast without an attached interface")

    o = opts(routes=lambda: [Route("lab0", ipaddress.IPv4Network("198.18.0.0/24"), None)],
             discoverers={"wsd": wsd}, open_stream=alive_opener({"127.0.0.3"}, calls),
             ports={"liveness": (80, 554)}, host_probes={})
    scan_id = await run_scan(["127.0.0.3-4"], o, store)
    assert [d["ip"] for d in store.devices(scan_id)] == ["127.0.0.3"]
    assert ("127.0.0.4", 80) in calls and ("127.0.0.4", 554) in calls


async def test_udp_retry_on_silence(store):
    sent = []

    async def datagram(payload, dest, wait, multicast):
        sent.append(dest)
        return [] if len(sent) == 1 else [(b"pong", dest)]

    async def udp_probe(host, ctx):
        replies = await ctx.exchange(b"ping", (host, 37020), wait=0.1)
        return {"banners": [{"protocol": "udp", "port": 37020, "text": replies[0][0].decode()}]} if replies else {}

    o = opts(open_stream=alive_opener({"127.0.0.2"}), datagram=datagram, retries=2, host_probes={"udp": udp_probe})
    scan_id = await run_scan(["127.0.0.2"], o, store)
    assert len(sent) == 2
    rec = next(r for _, r in store.observations(scan_id))
    assert rec.banners[0].text == "pong"


async def test_credentials_are_used_but_never_recorded(store, tmp_path):
    from scanner.credentials import parse_ini

    creds = parse_ini("[default]\nusername = admin\npassword = s3cret-Pw\n")
    got = {}

    async def probe(host, ctx):
        got[host] = ctx.credentials_for(host)
        return {"http": [{"port": 80, "status": 200, "headers": {"Server": "App-webs/"}}]}

    o = opts(open_stream=alive_opener({"127.0.0.2"}), credentials=creds, host_probes={"http": probe})
    scan_id = await run_scan(["127.0.0.2"], o, store)
    assert got["127.0.0.2"] == ("admin", "s3cret-Pw")
    dump = "\n".join(line for line in store.db.conn.iterdump())
    assert "s3cret-Pw" not in dump
    assert store.scan(scan_id).options["credentials"] is True


async def test_resume_carries_on_with_unidentified_hosts(tmp_path):
    db = tmp_path / "s.db"
    alive = {f"127.0.3.{i}" for i in range(1, 6)}
    probed: list[str] = []

    async def probe(host, ctx):
        probed.append(host)
        return {"http": [{"port": 80, "status": 200, "headers": {"Server": "App-webs/"}}]}

    with Store(db) as s:
        # a scan that died after two hosts: its row stays running with a dead pid
        from scanner.devices import merge_fragments as mf

        o = opts(open_stream=alive_opener(alive), host_probes={"http": probe})
        sid = s.start_scan(["127.0.3.1-5"], options={**o.recordable(), "_pid": 2 ** 22 + 7})
        for ip in ("127.0.3.1", "127.0.3.2"):
            s.record_device(sid, mf(ip, None, []), FakeIdentifier().identify(mf(ip, None, [])))
    with Store(db) as s:
        assert s.scan(sid).status == "incomplete"
        o = opts(open_stream=alive_opener(alive), host_probes={"http": probe}, resume=True)
        rid = await run_scan([], o, s)
        assert rid == sid
        assert sorted(probed) == ["127.0.3.3", "127.0.3.4", "127.0.3.5"]
        info = s.scan(sid)
        assert info.status == "complete" and info.device_count == 5
        with pytest.raises(CamsweepError, match="nothing to resume"):
            await run_scan([], o, s)


async def test_targetset_accepted_and_exclusions_applied(store):
    calls = []
    o = opts(open_stream=alive_opener({"127.0.0.2", "127.0.0.3"}, calls), ports={"liveness": (80,)}, host_probes={},
             exclude=("127.0.0.3",))
    scan_id = await run_scan(["127.0.0.2-3"], o, store)
    assert [d["ip"] for d in store.devices(scan_id)] == ["127.0.0.2"]
    assert all(h != "127.0.0.3" for h, _ in calls)
    ts = parse_targets(["127.0.0.2"])
    scan2 = await run_scan(ts, opts(open_stream=alive_opener({"127.0.0.2"}), host_probes={}), store)
    assert store.scan(scan2).targets == ["127.0.0.2"]


def test_merge_fragments_and_split():
    rec = merge_fragments("198.18.0.2", None, [
        {"mac": "28:57:BE:00:00:01", "http": [{"port": 80, "status": 401}]},
        {"rtsp": [{"port": 554, "headers": {"Server": "x"}}], "ip": "10.0.0.1"},  # ip of a fragment ignored
        {"onvif": "not an object", "tls": [{"port": 443, "subject": "CN=x"}]},
        None, {},
    ])
    assert rec.ip == "198.18.0.2" and rec.mac == "28:57:be:00:00:01"
    assert rec.http[0].status == 401 and rec.rtsp and rec.tls and rec.onvif is None
    parent, kids = split_channels(rec)
    assert parent == rec and kids == []


def test_routes_and_attached_interfaces(tmp_path):
    f = tmp_path / "route"
    f.write_text("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
                 "eth0\t00000000\t010012C6\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
                 "eth0\t000012C6\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
                 "lo\t0000007F\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0\n")
    routes = read_routes(str(f))
    assert Route("eth0", ipaddress.IPv4Network("198.18.0.0/16"), None) in routes
    assert attached_interfaces(parse_targets(["198.18.0.0/24"]), routes) == ["eth0"]
    assert attached_interfaces(parse_targets(["127.0.0.1"]), routes) == []
    assert attached_interfaces(parse_targets(["198.19.0.1"]), routes) == []  # only via the default route
    assert attached_interfaces(parse_targets(["198.19.0.1"]), routes, named="eth1") == ["eth1"]


def test_options_recordable_round_trip():
    o = ScanOptions(exclude=("198.18.0.1",), ports={"http": (80, 8080)}, credentials=object(),
                    identifier=object())
    rec = o.recordable()
    assert rec["credentials"] is True and "identifier" not in rec
    json.dumps(rec)
    back = ScanOptions.from_recorded({**rec, "_pid": 5})
    assert back.exclude == ("198.18.0.1",) and back.ports == {"http": (80, 8080)} and back.credentials is None


async def test_real_loopback_liveness(store):
    """One real TCP listener on loopback: found by the real connect path (no injected opener)."""
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        o = opts(ports={"liveness": (port,)}, host_probes={}, open_stream=None)
        scan_id = await run_scan(["127.0.0.1"], o, store)
        assert [d["ip"] for d in store.devices(scan_id)] == ["127.0.0.1"]
    finally:
        server.close()
        await server.wait_closed()


async def test_slow_recorder_gets_a_credentialed_follow_up(store):
    from scanner.credentials import parse_ini

    class NvrIdentifier(FakeIdentifier):
        def identify(self, rec):
            if any(h.headers.get("Server") == "nvr" for h in rec.http):
                return Identification(manufacturer="Hikvision", restricted=True, device_type="nvr")
            return super().identify(rec)

    calls = []

    async def http(host, ctx):
        calls.append(ctx.timeout)
        frag = {"http": [{"port": 80, "status": 200, "headers": {"Server": "nvr" if host == "127.0.0.2" else "x"}}]}
        if ctx.timeout > 1.0 and ctx.credentials_for(host):  # only a patient, credentialed ask gets the channels
            frag["discovery"] = [{"protocol": "nvr_channel", "fields": {"channel": "1", "manufacturer": "Dahua"}}]
        return frag

    o = opts(open_stream=alive_opener({"127.0.0.2", "127.0.0.3"}), identifier=NvrIdentifier(), timeout=0.5,
             credentials=parse_ini("[default]\nusername=a\npassword=b\n"), host_probes={"http": http})
    scan_id = await run_scan(["127.0.0.2-3"], o, store)
    devs = store.devices(scan_id)
    assert len(devs) == 3 and sum(1 for d in devs if d["parent_id"]) == 1
    assert sorted(calls) == [0.5, 0.5, 1.5]  # one follow-up, for the recorder only
    # without credentials there is no follow-up
    calls.clear()
    o.credentials = None
    await run_scan(["127.0.0.2-3"], o, store)
    assert calls == [0.5, 0.5]


async def test_unroutable_targets_cost_nothing(store):
    calls = []
    warnings = []
    routes = [Route("lab0", ipaddress.IPv4Network("198.18.0.0/30"), None)]
    o = opts(routes=lambda: routes, open_stream=alive_opener({"198.18.0.1"}, calls), ports={"liveness": (80,)},
             host_probes={}, arp=False)
    scan_id = await run_scan(["198.18.0.0/29", "127.0.0.9"], o, store,
                             on_event=lambda e: warnings.append(e.message) if isinstance(e, ScanWarning) else None)
    assert [d["ip"] for d in store.devices(scan_id)] == ["198.18.0.1"]
    assert sorted(h for h, _ in calls) == ["127.0.0.9", "198.18.0.1", "198.18.0.2", "198.18.0.3"]  # .4-.6: no route
    assert any("3 targets have no route" in w for w in warnings)


@pytest.mark.timeout(120)
async def test_worker_processes_probe_and_leave_nothing_behind(tmp_path):
    """Real probes in 2 spawned workers, against loopback only (every port refuses, UDP is unreachable)."""
    import multiprocessing

    from scanner.workers import worker_count

    o = ScanOptions(identifier=FakeIdentifier(), discoverers={}, routes=lambda: [], workers=2, rate=0,
                    timeout=0.5, connect_timeout=0.3, host_timeout=3.0, liveness_timeout=0.3, retries=0,
                    ports={"liveness": (9,)})
    assert worker_count(o, parse_targets(["127.0.9.1-40"])) == 2
    assert ScanOptions().workers == 0  # library use: in-process unless asked
    assert worker_count(opts(workers=2, host_probes={}), parse_targets(["127.0.9.1-40"])) == 0  # seams: in-process
    before = set(multiprocessing.active_children())
    with Store(tmp_path / "w.db") as s:
        scan_id = await run_scan(["127.0.9.1-40"], o, s)
        info = s.scan(scan_id)
        assert info.status == "complete" and info.device_count == 40
        assert {d["ip"] for d in s.devices(scan_id)} == {f"127.0.9.{i}" for i in range(1, 41)}
    time.sleep(0.5)
    left = [p for p in multiprocessing.active_children() if p not in before and p.name.startswith("camsweep")]
    assert left == []


def test_automatic_workers_only_for_many_live_hosts_on_many_cores(monkeypatch):
    """Measured: on 2 cores one process probes the 250-device lab faster and in half the memory."""
    import os

    from scanner.workers import MAX_WORKERS, WORKER_MIN_HOSTS, worker_count

    auto = ScanOptions(workers=-1)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(2)))
    assert worker_count(auto, 5000) == 0
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    assert worker_count(auto, WORKER_MIN_HOSTS - 1) == 0
    assert worker_count(auto, WORKER_MIN_HOSTS) == 4 == MAX_WORKERS
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    assert worker_count(auto, 60000) == MAX_WORKERS
    assert worker_count(ScanOptions(workers=-1, probes=()), 60000) == 0  # -sn: nothing to probe
    assert worker_count(ScanOptions(workers=3), 10) == 3  # asked for: given


def test_echo_request_and_reply_parsing():
    from scanner.probes.icmp import build_echo, inet_checksum, parse_echo_reply

    req = build_echo(0x1234, 7)
    assert req[0] == 8 and inet_checksum(req) == 0  # a valid checksum sums to zero
    ip_head = bytes([0x45]) + bytes(19)
    reply = ip_head + bytes([0, 0]) + req[2:4] + req[4:]
    assert parse_echo_reply(reply, 0x1234)
    assert not parse_echo_reply(reply, 0x4321)  # someone else's ping
    assert not parse_echo_reply(ip_head + req, 0x1234)  # a request, not a reply
    for junk in (b"", b"\x45", bytes(27), b"\x60" + bytes(40), bytes([0x4F]) + bytes(30)):
        assert not parse_echo_reply(junk, 0x1234)


async def test_icmp_sweep_on_loopback():
    import os

    from scanner.probes.icmp import icmp_sweep

    if os.geteuid() != 0:
        pytest.skip("raw ICMP sockets need root")
    got = await icmp_sweep(["127.0.0.1", "127.0.0.2", "::1", "bad"], RateLimiter(0), 0.5)
    assert got == {"127.0.0.1", "127.0.0.2"}  # loopback answers for all of 127/8; IPv6 and junk skipped
