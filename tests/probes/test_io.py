"""The thin I/O parts, against small servers on 127.0.0.1 and httpx MockTransport (never anything else)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from scanner.probes import banner, dhip, http, liveness, onvif, rtsp, sadp, ssdp, tls, wsd
from scanner.probes.base import ProbeContext, udp_exchange
from tests.probes.conftest import recording
from tests.probes.test_parsers import _self_signed

pytestmark = pytest.mark.timeout(60)

LO = "127.0.0.1"


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Every connection these tests make must stay on loopback."""
    real = socket.socket.connect

    def guarded(self, addr):
        if isinstance(addr, tuple) and not str(addr[0]).startswith(("127.", "::1")):
            raise AssertionError(f"non-loopback connection attempted: {addr}")
        return real(self, addr)

    monkeypatch.setattr(socket.socket, "connect", guarded)


async def serve(handler, **kw) -> tuple[asyncio.base_events.Server, int]:
    srv = await asyncio.start_server(handler, LO, 0, **kw)
    return srv, srv.sockets[0].getsockname()[1]


@contextlib.asynccontextmanager
async def served(handler, **kw) -> AsyncIterator[int]:
    """A TCP server on loopback that runs ``handler`` for the block; yields its port."""
    srv, port = await serve(handler, **kw)
    try:
        yield port
    finally:
        srv.close()


def closed_port() -> int:
    """A loopback port nothing listens on (bound once, then let go)."""
    s = socket.socket()
    s.bind((LO, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def ctx_for(**kw) -> ProbeContext:
    base = dict(timeout=2.0, connect_timeout=1.0, discover_wait=0.3)
    base.update(kw)
    return ProbeContext(**base)


# --------------------------------------------------------------------------------------------- HTTP


def hikvision_app(password: str | None = None):
    """A MockTransport Hikvision: 401 everywhere except the login page; digest-protected ISAPI."""
    isapi = recording("http/hikvision-isapi-deviceinfo-ds2cd2t43g2.xml")
    channels = recording("http/hikvision-nvr-inputproxy-channels.xml")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.raw_path.decode()
        auth = request.headers.get("authorization", "")
        challenge = {"WWW-Authenticate": 'Digest qop="auth", realm="IP Camera(C2183)", nonce="abc", stale="FALSE"',
                     "Server": "App-webs/"}
        if path == "/doc/page/login.asp":
            return httpx.Response(200, headers={"Server": "App-webs/"}, content=b"<title>Login</title>")
        if path == "/favicon.ico":
            return httpx.Response(200, content=b"\x00\x00\x01\x00fake-icon")
        if path in ("/ISAPI/System/deviceInfo", "/ISAPI/ContentMgmt/InputProxy/channels"):
            if password and auth.startswith("Digest ") and 'username="viewer"' in auth:
                return httpx.Response(200, content=isapi if "deviceInfo" in path else channels)
            return httpx.Response(401, headers=challenge, content=b"<title>Document Error: Unauthorized</title>")
        if path == "/":
            return httpx.Response(200, headers={"Server": "App-webs/"},
                                  content=b"<html><head><title></title></head><script>location='/doc/page/login.asp'"
                                          b"</script></html>")
        return httpx.Response(404, headers={"Server": "App-webs/"})

    return httpx.MockTransport(handler), seen


async def test_http_probe_unauthenticated_vendor_endpoints():
    transport, seen = hikvision_app()
    ctx = ctx_for(http_transport=transport, ports={"http": (80,), "https": ()})
    out = await http.probe("198.18.0.2", ctx)
    paths = {e["path"]: e for e in out["http"]}
    assert paths["/"]["favicon_md5"] == http.favicon_md5(b"\x00\x00\x01\x00fake-icon")
    assert paths["/ISAPI/System/deviceInfo"]["status"] == 401
    assert paths["/doc/page/login.asp"]["title"] == "Login"
    assert paths["/RPC2_Login"]["status"] == 404
    assert "discovery" not in out  # nothing readable without credentials
    assert not any("authorization" in r.headers for r in seen)
    rpc = [r for r in seen if r.url.path == "/RPC2_Login"][0]
    assert rpc.method == "POST" and json.loads(rpc.content)["params"]["password"] == ""


async def test_http_probe_with_credentials_reads_device_and_channels():
    transport, seen = hikvision_app(password="s3cret-pw")
    ctx = ctx_for(http_transport=transport, ports={"http": (80,), "https": ()},
                  credentials=lambda host: ("viewer", "s3cret-pw") if host == "198.18.0.2" else None)
    out = await http.probe("198.18.0.2", ctx)
    protos = [d["protocol"] for d in out["discovery"]]
    assert protos.count("isapi") == 1 and protos.count("nvr_channel") == 2
    isapi = next(d for d in out["discovery"] if d["protocol"] == "isapi")
    assert isapi["fields"]["serialNumber"] == "DS-2CD2T43G2-4I20210105AAWRF30001259"
    blob = json.dumps(out)
    assert "s3cret-pw" not in blob and "viewer" not in blob  # credentials never in the evidence
    # another host gets no credentials
    out2 = await http.probe("198.18.0.3", ctx)
    assert "discovery" not in out2


async def test_http_probe_slow_and_huge_server_bounded():
    async def trickle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nServer: slow\r\nContent-Length: 100000000\r\n\r\n")
        try:
            for _ in range(10000):
                writer.write(b"x" * 65536)  # a huge body, as fast as it goes
                await writer.drain()
                await asyncio.sleep(0.01)
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass

    async with served(trickle) as port:
        ctx = ctx_for(ports={"http": (port,), "https": ()}, timeout=1.5, max_bytes=32 * 1024)
        t = time.monotonic()
        out = await http.probe(LO, ctx)
        elapsed = time.monotonic() - t
    assert elapsed < http.PORT_BUDGET * 1.5 + 1.5
    root = next(e for e in out["http"] if e["path"] == "/")
    assert root["headers"]["Server"] == "slow" and len(root["body"]) <= 32 * 1024


async def test_http_probe_silent_server_costs_its_timeout_only():
    async def silent(reader, writer):
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            pass

    async with served(silent) as port:
        t = time.monotonic()
        out = await http.probe(LO, ctx_for(ports={"http": (port,), "https": ()}, timeout=1.0))
        assert time.monotonic() - t < 3.5  # the 1 s timeout, not the server's 30 s
    assert out == {}


# --------------------------------------------------------------------------------------------- RTSP


async def test_rtsp_probe_options_describe():
    async def dahua(reader, writer):
        for _ in range(2):
            head = await reader.readuntil(b"\r\n\r\n")
            cseq = [ln.split(b":")[1].strip() for ln in head.split(b"\r\n") if ln.lower().startswith(b"cseq")][0]
            if head.startswith(b"OPTIONS"):
                writer.write(b"RTSP/1.0 200 OK\r\nCSeq: " + cseq + b"\r\nServer: Dahua Rtsp Server\r\n"
                             b"Public: OPTIONS, DESCRIBE\r\n\r\n")
            else:
                writer.write(b"RTSP/1.0 401 Unauthorized\r\nCSeq: " + cseq + b"\r\nWWW-Authenticate: Digest "
                             b'realm="Login to 4X02345PAJ9A82F", nonce="1"\r\nContent-Length: 0\r\n\r\n')
            await writer.drain()
        writer.close()

    async with served(dahua) as port:
        out = await rtsp.probe(LO, ctx_for(ports={"rtsp": (port,)}))
    opts, desc = out["rtsp"]
    assert opts["request"].startswith("OPTIONS ") and opts["headers"]["Server"] == "Dahua Rtsp Server"
    assert desc["request"].startswith("DESCRIBE ") and desc["status"] == 401


async def test_rtsp_probe_garbage_and_closed_port():
    async def junk(reader, writer):
        writer.write(b"\x00\xffNOT RTSP AT ALL\r\n\r\n")
        await writer.drain()
        writer.close()

    async with served(junk) as port:
        out = await rtsp.probe(LO, ctx_for(ports={"rtsp": (port,)}))
    assert out["rtsp"][0]["invalid"] == "not an RTSP reply"
    closed = closed_port()
    assert await rtsp.probe(LO, ctx_for(ports={"rtsp": (closed,)})) == {}


# ------------------------------------------------------------------------------------------- banners


async def test_banner_probe_sdk_telnet_silent():
    async def sdk(reader, writer):
        writer.write(recording("banner/hikvision-sdk-8000.bin"))
        await writer.drain()
        await asyncio.sleep(1)
        writer.close()

    async def telnetd(reader, writer):
        writer.write(b"\xff\xfd\x01\xff\xfd\x1f")
        await writer.drain()
        got = await reader.readexactly(6)  # the probe must refuse both options
        assert got == bytes((255, 252, 1, 255, 252, 31))
        writer.write(b"\r\n192.0.0.64 login: ")
        await writer.drain()
        await asyncio.sleep(1)
        writer.close()

    async def silent(reader, writer):
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            pass

    async with served(sdk) as p1, served(telnetd) as p2, served(silent) as p3:
        ctx = ctx_for(ports={"hikvision": (p1,), "telnet": (p2,), "dahua": (p3,), "ssh": ()}, timeout=3.0)
        t = time.monotonic()
        out = await banner.probe(LO, ctx)
        assert time.monotonic() - t < 4.0
    by_port = {b["port"]: b for b in out["banners"]}
    assert by_port[p1]["hex"] == "000000100000001e0000001e00000000"
    assert by_port[p2]["text"].strip() == "192.0.0.64 login:"
    assert by_port[p3] == {"protocol": "tcp", "port": p3, "open": True}


# ----------------------------------------------------------------------------------------------- TLS


async def test_tls_probe_self_signed_loopback(tmp_path):
    cert, key, serialization = _self_signed(cn="198.18.0.7", org="Zhejiang Dahua Technology")
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")

    async def handler(reader, writer):
        await asyncio.sleep(0.5)
        writer.close()

    async with served(handler, ssl=sctx) as port:
        out = await tls.probe(LO, ctx_for(ports={"https": (port,)}))
    [e] = out["tls"]
    assert e["subject"] == "CN=198.18.0.7,O=Zhejiang Dahua Technology,C=CN" and e["self_signed"] is True


# ------------------------------------------------------------------------------------- UDP protocols


def replay(replies: dict[int, list[tuple[bytes, str]]], sent: list):
    """An injected datagram transport: answers by destination port with recorded bytes."""
    async def exchange(payload, dest, wait, multicast):
        sent.append((payload, dest, multicast))
        return [(data, (src, dest[1])) for data, src in replies.get(dest[1], [])]
    return exchange


async def test_wsd_unicast_probe_and_multicast_discover_filtering():
    sent: list = []
    hik = recording("wsd/hikvision-ds2cd3955-probematch.xml")
    dh = recording("wsd/dahua-ipc-hfw2228m-hello.xml")
    ctx = ctx_for(datagram=replay({3702: [(hik, "198.18.0.2"), (dh, "198.18.0.3"), (b"junk", "198.18.0.4")]}, sent),
                  allow=lambda ip: ip != "198.18.0.3")
    out = await wsd.probe("198.18.0.2", ctx)
    assert len(out["wsd"]) == 1 and out["wsd"][0]["endpoint"].startswith("urn:uuid:18ec6401")
    assert {d[1] for d in sent} == {("198.18.0.2", 3702)} and not any(d[2] for d in sent)
    assert {wsd.parse_xml(d[0]).find(".//{*}Types").text for d in sent} == {"dn:NetworkVideoTransmitter",
                                                                            "tds:Device"}
    sent.clear()
    found = await wsd.discover(ctx)
    assert [f["ip"] for f in found] == ["198.18.0.2"]  # 198.18.0.3 is outside the targets, .4 is junk
    assert all(d[1] == ("239.255.255.250", 3702) and d[2] for d in sent)


async def test_discover_without_interface_sends_nothing():
    ctx = ctx_for()
    assert await wsd.discover(ctx) == [] and await sadp.discover(ctx) == [] and await dhip.discover(ctx) == []
    assert await ssdp.discover(ctx) == []
    assert await udp_exchange(b"x", ("239.255.255.250", 3702), 0.1) == []  # multicast needs an interface


async def test_sadp_dhip_unicast_probe_injected():
    sent: list = []
    ctx = ctx_for(datagram=replay({37020: [(recording("sadp/hikvision-ds2cd2385g1-probematch.xml"), "198.18.0.2")],
                                   37810: [(recording("dhip/dahua-ipc-hdw1431t1-s4-reply.bin"), "198.18.0.3")]},
                                  sent))
    s = await sadp.probe("198.18.0.2", ctx)
    assert s["discovery"][0]["fields"]["DeviceDescription"] == "DS-2CD2385G1-I" and "ip" not in s
    d = await dhip.probe("198.18.0.3", ctx)
    assert d["discovery"][0]["fields"]["DeviceType"] == "IPC-HDW1431T1-S4" and d["mac"] == "08:ed:ed:87:42:7a"
    assert await dhip.probe("198.18.0.9", ctx) == {}  # a reply from another address does not count
    assert sent[0][0].startswith(b"<?xml") and sent[1][0][4:8] == b"DHIP"


async def test_udp_exchange_real_loopback_socket():
    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport):
            self.t = transport

        def datagram_received(self, data, addr):
            self.t.sendto(b"re:" + data, addr)

    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(Echo, local_addr=(LO, 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        t = time.monotonic()
        got = await udp_exchange(b"hello", (LO, port), 2.0, stop_after=1)
        assert time.monotonic() - t < 1.8  # unicast stops at the first answer (the wait was 2 s)
    finally:
        transport.close()
    assert got == [(b"re:hello", (LO, port))]


async def test_ssdp_probe_fetches_description_from_same_host_only():
    sent: list = []
    resp = recording("ssdp/amcrest-msearch-response.http").replace(b"192.168.1.26", b"198.18.0.6")
    other = recording("ssdp/amcrest-msearch-response.http").replace(b"192.168.1.26:80", b"203.0.113.9:80")
    fetched: list[str] = []

    def handler(request):
        fetched.append(str(request.url))
        return httpx.Response(200, content=recording("ssdp/amcrest-description.xml"))

    ctx = ctx_for(datagram=replay({1900: [(resp, "198.18.0.6"), (other, "198.18.0.6")]}, sent),
                  http_transport=httpx.MockTransport(handler))
    out = await ssdp.probe("198.18.0.6", ctx)
    assert fetched == ["http://198.18.0.6/upnp_device_desc.xml"]  # never the foreign LOCATION
    assert out["ssdp"][0]["description"]["manufacturer"] == "Amcrest"
    assert "description" not in out["ssdp"][1]


# --------------------------------------------------------------------------------------------- ONVIF


async def test_onvif_probe_unauthenticated_mock():
    def handler(request: httpx.Request):
        body = request.content
        if b"GetSystemDateAndTime" in body:
            return httpx.Response(200, content=recording("onvif/getsystemdateandtime.xml"))
        if b"GetDeviceInformation" in body:
            return httpx.Response(200, content=recording("onvif/hikvision-getdeviceinformation.xml"))
        return httpx.Response(400)

    out = await onvif.probe("198.18.0.2", ctx_for(http_transport=httpx.MockTransport(handler),
                                                  ports={"onvif": (80,)}))
    o = out["onvif"]
    assert o["manufacturer"] == "HIKVISION" and o["serial"].startswith("DS-2DF7286-A")
    assert o["system_date_time"]["utc"] == "2026-11-23T08:01:02Z" and o["xaddr"].endswith("/onvif/device_service")


async def test_onvif_probe_credentials_through_onvif_client_on_loopback():
    info, fault = recording("onvif/hikvision-getdeviceinformation.xml"), recording("onvif/notauthorized-fault.xml")
    bodies: list[bytes] = []

    async def device(reader, writer):
        head = await reader.readuntil(b"\r\n\r\n")
        n = next((int(ln.split(b":")[1]) for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")), 0)
        body = await reader.readexactly(n)
        bodies.append(body)
        if b"GetSystemDateAndTime" in body:
            out, status = recording("onvif/getsystemdateandtime.xml"), b"200 OK"
        elif b"UsernameToken" in body and b"viewer" in body:
            out, status = info, b"200 OK"
        else:
            out, status = fault, b"400 Bad Request"
        writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/soap+xml\r\nContent-Length: "
                     + str(len(out)).encode() + b"\r\nConnection: close\r\n\r\n" + out)
        await writer.drain()
        writer.close()

    async with served(device) as port:
        ctx = ctx_for(ports={"onvif": (port,)}, timeout=8.0, credentials=lambda h: ("viewer", "pw-123"))
        out = await onvif.probe(LO, ctx)
    o = out["onvif"]
    assert o["authenticated"] is True and o["auth_required"] is True
    assert o["model"] == "DS-2DF7286-A" and o["fault"]["subcode"] == "ter:NotAuthorized"
    assert "pw-123" not in json.dumps(out)
    assert any(b"UsernameToken" in b for b in bodies)


# ------------------------------------------------------------------------------------------ liveness


async def test_liveness_open_refused_and_silent():
    async def h(reader, writer):
        writer.close()

    ctx = ctx_for(connect_timeout=0.5)
    async with served(h) as port:
        closed = closed_port()
        assert await liveness.knock(LO, port, ctx) == "open"
        assert await liveness.alive(LO, ctx, (port, closed))
    assert await liveness.knock(LO, closed, ctx) == "refused"
    assert await liveness.alive(LO, ctx, (closed,))  # a refusal proves the host is there
    # silence does not: a host that never answers (an opener that hangs; no packet is sent anywhere)
    async def hang(host, port):
        await asyncio.sleep(30)

    quiet = ctx_for(connect_timeout=0.2, open_stream=hang)
    assert await liveness.knock(LO, 80, quiet) == "silent"
    assert not await liveness.alive(LO, quiet, (80, 81))


async def test_http_probe_keeps_what_it_read_before_the_deadline():
    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/":
            return httpx.Response(200, headers={"Server": "App-webs/"}, content=b"<title>x</title>")
        await asyncio.sleep(30)  # every vendor endpoint hangs
        return httpx.Response(404)

    ctx = ctx_for(http_transport=httpx.MockTransport(handler), ports={"http": (80,), "https": ()}, timeout=0.5)
    t = time.monotonic()
    out = await http.probe("198.18.0.2", ctx)
    assert time.monotonic() - t < http.TOTAL_BUDGET * 0.5 + 1.0
    assert [e["path"] for e in out["http"]] == ["/"] and out["http"][0]["headers"]["Server"] == "App-webs/"


def test_arp_resweeps_once_after_send_errors_and_keeps_stderr_clean(monkeypatch, capsys):
    import logging
    from types import SimpleNamespace

    import scapy.sendrecv

    from scanner.probes import arp

    calls = []

    def fake_srp(pkt, iface, timeout, verbose, retry, inter):
        calls.append((iface, inter))
        if len(calls) == 1:
            logging.getLogger("scapy.runtime").error("--- Error sending packets")
            return [(None, SimpleNamespace(psrc="198.18.0.2", hwsrc="2c:a5:9c:0b:c9:7e"))], []
        return [(None, SimpleNamespace(psrc="198.18.0.3", hwsrc="08:ed:ed:87:42:7a"))], []

    monkeypatch.setattr(scapy.sendrecv, "srp", fake_srp)
    found = asyncio.run(arp.sweep("198.18.0.0/24", ctx_for(interface="cswp4x0", allow=lambda ip: ip != "198.18.0.9")))
    assert len(calls) == 2 and calls[0] == ("cswp4x0", arp.INTER)
    assert sorted(f["ip"] for f in found) == ["198.18.0.2", "198.18.0.3"]
    assert "Error sending" not in capsys.readouterr().err
    assert asyncio.run(arp.sweep("198.18.0.0/24", ctx_for())) == []  # no interface named: nothing sent
    assert asyncio.run(arp.sweep("198.16.0.0/12", ctx_for(interface="x"))) == []  # too large


async def test_every_http_request_waits_for_the_rate_limiter():
    transport, seen = hikvision_app()
    tokens = []

    async def limiter():
        tokens.append(1)

    ctx = ctx_for(http_transport=transport, ports={"http": (80,), "https": ()}, rate_limit=limiter)
    await http.probe("198.18.0.2", ctx)
    assert len(tokens) >= len(seen) > 0


async def test_ssdp_discover_describes_hosts_in_parallel_and_drops_outsiders():
    resp = recording("ssdp/amcrest-msearch-response.http")
    replies = {1900: [(resp.replace(b"192.168.1.26", f"198.18.0.{i}".encode()), f"198.18.0.{i}") for i in range(2, 12)]}

    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.5)
        return httpx.Response(200, content=recording("ssdp/amcrest-description.xml"))

    ctx = ctx_for(datagram=replay(replies, []), http_transport=httpx.MockTransport(handler), interface="cswp4x0",
                  allow=lambda ip: ip != "198.18.0.11")
    t = time.monotonic()
    found = await ssdp.discover(ctx)
    assert time.monotonic() - t < 3.0  # 9 descriptions of 0.5 s each, at once (one by one: 4.5 s)
    assert sorted(f["ip"] for f in found) == sorted(f"198.18.0.{i}" for i in range(2, 11))
    assert all(f["ssdp"][0]["description"]["modelName"] == "IP2M-841B" for f in found)


async def test_onvif_first_service_creation_runs_alone_then_freely(monkeypatch):
    """onvif-zeep-async caches a loaded WSDL but has no lock: N probes at once would each parse it."""
    monkeypatch.setattr(onvif, "_wsdl_loaded", False)
    active = peak = 0

    class Cam:
        async def create_devicemgmt_service(self):
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.02)
            active -= 1
            return "service"

    first = await asyncio.gather(*(onvif._create_devicemgmt(Cam()) for _ in range(8)))
    assert first == ["service"] * 8 and peak == 1 and onvif._wsdl_loaded
    peak = 0
    await asyncio.gather(*(onvif._create_devicemgmt(Cam()) for _ in range(8)))
    assert peak == 8


async def test_onvif_prewarm_loads_the_client_and_sends_nothing(monkeypatch):
    sent = []
    monkeypatch.setattr(socket.socket, "connect", lambda self, addr: sent.append(addr))
    monkeypatch.setattr(socket.socket, "connect_ex", lambda self, addr: sent.append(addr) or 0)
    monkeypatch.setattr(onvif, "_wsdl_loaded", False)
    assert await onvif.prewarm() is True
    assert onvif._wsdl_loaded and sent == []
