"""The lab's service process on loopback (127.18.x.y, no namespaces): each protocol answers as its
profile says, digest auth refuses a wrong password, and the hostile devices behave as designed.

One service process serves one device of every profile for the whole module. Real ports are used when
the tests run as root; otherwise every port is shifted by PORT_OFFSET (the plan's ``port_offset``).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import random
import re
import select
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from defusedxml import ElementTree as SafeET
from zeroconf import DNSIncoming, DNSOutgoing, DNSQuestion
from zeroconf import const as C

from scanner.lab.profiles import EXTRA_KEYS, PROFILE_KEYS, build_device

pytestmark = pytest.mark.timeout(120)

ROOT = os.geteuid() == 0
PORT_OFFSET = 0 if ROOT else 20000
NET = f"127.18.{random.Random(os.getpid()).randint(200, 250)}"
USER = "admin"
T = 3.0  # per-operation timeout


def _password(i: int) -> str:
    return f"Lab-{i}-{os.getpid()}-pw"


def _start(plan_path: Path, timeout: float = 15.0) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "scanner.lab.service", "--plan", str(plan_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if r:
            line = proc.stdout.readline()
            if line.strip() == "ready":
                return proc
            if not line:
                break
    proc.kill()
    _, err = proc.communicate(timeout=5)
    raise AssertionError(f"service did not become ready: {err[-2000:]}")


def _stop(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate(timeout=5)
        raise AssertionError("service did not stop on SIGTERM") from None
    return proc.returncode, err


def _plan_devices(specs: list, net: str = NET) -> list[dict]:
    """The plan's device entries: the specs on loopback addresses ``net``.2, .3 ... with the test account."""
    devices = []
    for i, spec in enumerate(specs):
        e = spec.to_dict()
        e.update(netns=None, ip=f"{net}.{i + 2}", prefixlen=8, username=USER, password=_password(i))
        devices.append(e)
    return devices


def _plan(specs: list, tmp: Path, net: str = NET, extra: dict | None = None) -> Path:
    devices = _plan_devices(specs, net)
    path = tmp / "plan.json"
    path.write_text(json.dumps({"version": 1, "mode": "loopback", "port_offset": PORT_OFFSET,
                                "wsd_max_delay": 0.5, "devices": devices, **(extra or {})}))
    return path


class Lab:
    def __init__(self, plan_path: Path) -> None:
        self.plan = json.loads(plan_path.read_text())
        self.by_profile = {e["profile"]: e for e in self.plan["devices"]}

    def dev(self, profile: str) -> dict:
        return self.by_profile[profile]

    @staticmethod
    def port(p: int) -> int:
        return PORT_OFFSET + p

    def url(self, profile: str, path: str = "/", port: int = 80, scheme: str = "http") -> str:
        return f"{scheme}://{self.dev(profile)['ip']}:{self.port(port)}{path}"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("devices")
    rng = random.Random(42)
    specs = [build_device(key, i, rng) for i, key in enumerate(PROFILE_KEYS + EXTRA_KEYS)]  # the extras last
    plan = _plan(specs, tmp)
    proc = _start(plan)
    try:
        yield Lab(plan)
    finally:
        code, err = _stop(proc)
        assert code == 0, err
        assert "Traceback" not in err and "responder error" not in err, err


# --------------------------------------------------------------------------------------------
# helpers


def tcp_exchange(ip: str, port: int, data: bytes, *, want: int = 65536, timeout: float = T,
                 until: bytes | None = None) -> bytes:
    with socket.create_connection((ip, port), timeout=timeout) as s:
        if data:
            s.sendall(data)
        s.settimeout(timeout)
        buf = b""
        while len(buf) < want and not (until and until in buf):
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            buf += chunk
        return buf


def udp_exchange(ip: str, port: int, data: bytes, timeout: float = T) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(data, (ip, port))
        try:
            reply, addr = s.recvfrom(65536)
        except TimeoutError:
            return None
        assert addr[0] == ip
        return reply


def header_lines(raw: bytes) -> list[str]:
    return raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")


def digest_header(method: str, uri: str, challenge: str, user: str, password: str) -> str:
    p = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge))
    ha1 = hashlib.md5(f"{user}:{p['realm']}:{password}".encode()).hexdigest()
    ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
    resp = hashlib.md5(f"{ha1}:{p['nonce']}:{ha2}".encode()).hexdigest()
    return f'Digest username="{user}", realm="{p["realm"]}", nonce="{p["nonce"]}", uri="{uri}", response="{resp}"'


SOAP = ('<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><s:Header>{header}</s:Header><s:Body>{body}</s:Body>'
        '</s:Envelope>')


def wsse(user: str, password: str) -> str:
    nonce = os.urandom(16)
    created = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    digest = base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()).decode()
    return ('<Security xmlns="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">'
            f"<UsernameToken><Username>{user}</Username><Password Type=\"http://docs.oasis-open.org/wss/2004/01/"
            f'oasis-200401-wss-username-token-profile-1.0#PasswordDigest">{digest}</Password>'
            f"<Nonce>{base64.b64encode(nonce).decode()}</Nonce>"
            '<Created xmlns="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">'
            f"{created}</Created></UsernameToken></Security>")


def onvif_call(lab: Lab, profile: str, call: str, header: str = "") -> httpx.Response:
    body = SOAP.format(header=header, body=f"<tds:{call}/>")
    return httpx.post(lab.url(profile, "/onvif/device_service"), content=body, timeout=T,
                      headers={"Content-Type": "application/soap+xml; charset=utf-8"})


def wsd_probe(message_id: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?><e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" '
            'xmlns:w="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
            'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" '
            'xmlns:dn="http://www.onvif.org/ver10/network/wsdl"><e:Header>'
            f"<w:MessageID>{message_id}</w:MessageID><w:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</w:To>"
            "<w:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</w:Action></e:Header><e:Body>"
            "<d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></e:Body></e:Envelope>").encode()


# --------------------------------------------------------------------------------------------
# HTTP


def test_hikvision_http_is_shaped_like_app_webs(lab: Lab) -> None:
    d = lab.dev("hikvision_camera")
    raw = tcp_exchange(d["ip"], lab.port(80), b"GET / HTTP/1.0\r\n\r\n")
    lines = header_lines(raw)
    assert lines[0] == "HTTP/1.0 200 OK"
    assert lines[1].startswith("Date: ") and lines[2] == "Server: App-webs/"  # nmap's Hikvision signature
    assert b"/doc/page/login.asp" in raw
    nvr = lab.dev("hikvision_nvr")
    raw = tcp_exchange(nvr["ip"], lab.port(80), b"GET / HTTP/1.0\r\n\r\n")
    assert re.match(rb"HTTP/1\.0 200 OK\r\nDate: .* GMT\r\nServer: DNVRS-Webs\r\nETag: \"[a-f\d-]+\"\r\n"
                    rb"Content-Length: \d+\r\nContent-Type: text/html\r\nConnection: close\r\n"
                    rb"Last-Modified: .* GMT\r\n\r\n", raw)


def test_isapi_device_info_needs_the_right_digest(lab: Lab) -> None:
    d = lab.dev("hikvision_camera")
    url = lab.url("hikvision_camera", "/ISAPI/System/deviceInfo")
    r = httpx.get(url, timeout=T)
    assert r.status_code == 401 and r.headers["server"] == "App-webs/"
    assert r.headers["www-authenticate"].startswith(f'Digest realm="{d["realm"]}"')
    assert httpx.get(url, auth=httpx.DigestAuth(USER, "wrong-password"), timeout=T).status_code == 401
    assert httpx.get(url, auth=httpx.DigestAuth("root", d["password"]), timeout=T).status_code == 401
    r = httpx.get(url, auth=httpx.DigestAuth(USER, d["password"]), timeout=T)
    assert r.status_code == 200
    root = SafeET.fromstring(r.content)
    ns = "{http://www.hikvision.com/ver20/XMLSchema}"
    assert root.tag == f"{ns}DeviceInfo"
    assert root.findtext(f"{ns}model") == d["model"] and root.findtext(f"{ns}serialNumber") == d["serial"]
    assert root.findtext(f"{ns}macAddress") == d["mac"]
    assert re.fullmatch(r"V5\.\d+\.\d+", root.findtext(f"{ns}firmwareVersion") or "")
    assert re.fullmatch(r"build \d{6}", root.findtext(f"{ns}firmwareReleasedDate") or "")
    assert d["password"] not in r.text


def test_oem_isapi_names_the_oem(lab: Lab) -> None:
    d = lab.dev("lts_camera")
    r = httpx.get(lab.url("lts_camera", "/ISAPI/System/deviceInfo"), auth=httpx.DigestAuth(USER, d["password"]),
                  timeout=T)
    assert r.status_code == 200 and "<manufacturer>LTS</manufacturer>" in r.text and "App-webs/" == r.headers["server"]


def test_nvr_channel_lists_name_the_poe_cameras(lab: Lab) -> None:
    d = lab.dev("hikvision_nvr")
    r = httpx.get(lab.url("hikvision_nvr", "/ISAPI/ContentMgmt/InputProxy/channels"),
                  auth=httpx.DigestAuth(USER, d["password"]), timeout=T)
    assert r.status_code == 200
    for c in d["channels"]:
        assert c["serial"] in r.text and c["model"] in r.text and c["ip"] in r.text
    assert "password" not in r.text.lower()
    d = lab.dev("dahua_nvr")
    url = lab.url("dahua_nvr", "/cgi-bin/configManager.cgi?action=getConfig&name=RemoteDevice")
    assert httpx.get(url, timeout=T).status_code == 401
    r = httpx.get(url, auth=httpx.DigestAuth(USER, d["password"]), timeout=T)
    assert r.status_code == 200 and d["channels"]
    for c in d["channels"]:
        assert f"SerialNo={c['serial']}" in r.text and f"DeviceType={c['model']}" in r.text
    assert "password" not in r.text.lower()


def test_dahua_root_page_and_magicbox(lab: Lab) -> None:
    d = lab.dev("amcrest_camera")
    raw = tcp_exchange(d["ip"], lab.port(80), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200 OK\r\nCONNECTION: close\r\nCONTENT-LENGTH: ")
    assert b"\r\n\r\n\xef\xbb\xbf<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\"" in raw
    url = lab.url("amcrest_camera", "/cgi-bin/magicBox.cgi?action=getSystemInfo")
    r = httpx.get(url, timeout=T)
    assert r.status_code == 401 and f'realm="Login to {d["serial"]}"' in r.headers["www-authenticate"]
    assert httpx.get(url, auth=httpx.DigestAuth(USER, "nope"), timeout=T).status_code == 401
    r = httpx.get(url, auth=httpx.DigestAuth(USER, d["password"]), timeout=T)
    assert r.status_code == 200 and f"serialNumber={d['serial']}" in r.text and r.text.count("AMC") >= 1
    r = httpx.get(lab.url("amcrest_camera", "/cgi-bin/magicBox.cgi?action=getSoftwareVersion"),
                  auth=httpx.DigestAuth(USER, d["password"]), timeout=T)
    assert re.search(r"version=2\.800\.00AC\d{3}\.\d+\.R,build:\d{4}-\d{2}-\d{2}", r.text)


def _rpc2(lab: Lab, profile: str, password: str) -> dict:
    d = lab.dev(profile)
    url = lab.url(profile, "/RPC2_Login")
    first = httpx.post(url, json={"method": "global.login", "params": {"userName": USER, "password": "",
                                                                       "clientType": "Web3.0"}, "id": 1},
                       timeout=T).json()
    assert first["result"] is False and first["params"]["realm"] == d["realm"]
    p = first["params"]
    ha1 = hashlib.md5(f"{USER}:{p['realm']}:{password}".encode()).hexdigest().upper()
    pw = hashlib.md5(f"{USER}:{p['random']}:{ha1}".encode()).hexdigest().upper()
    return httpx.post(url, json={"method": "global.login", "session": first["session"], "id": 2, "params": {
        "userName": USER, "password": pw, "clientType": "Web3.0", "authorityType": "Default"}}, timeout=T).json()


def test_dahua_rpc2_login_checks_the_password(lab: Lab) -> None:
    assert _rpc2(lab, "dahua_camera", lab.dev("dahua_camera")["password"])["result"] is True
    assert _rpc2(lab, "dahua_camera", "guess")["result"] is False


def test_other_makers_http(lab: Lab) -> None:
    r = httpx.get(lab.url("axis_camera"), timeout=T)
    assert r.headers["server"] == "Apache" and "<title>AXIS</title>" in r.text
    d = lab.dev("axis_camera")
    r = httpx.post(lab.url("axis_camera", "/axis-cgi/basicdeviceinfo.cgi"), timeout=T,
                   json={"apiVersion": "1.0", "method": "getAllUnrestrictedProperties"})
    assert r.json()["data"]["propertyList"]["SerialNumber"] == d["serial"]
    r = httpx.get(lab.url("mobotix_camera"), timeout=T, follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == "/control/userimage.html"
    r = httpx.get(lab.url("printer"), timeout=T)
    assert r.headers["server"].startswith("HP HTTP Server; ") or r.headers["server"].startswith("debut/")
    assert httpx.get(lab.url("linux_server"), timeout=T).headers["server"].startswith("nginx/")
    r = httpx.get(lab.url("uniview_camera", "/LAPI/V1.0/System/DeviceInfo"), timeout=T)
    assert r.status_code == 401
    d = lab.dev("uniview_camera")
    r = httpx.get(lab.url("uniview_camera", "/LAPI/V1.0/System/DeviceInfo"),
                  auth=httpx.DigestAuth(USER, d["password"]), timeout=T)
    assert r.json()["Response"]["Data"]["SerialNumber"] == d["serial"]


def test_non_http_bytes_get_400_at_once(lab: Lab) -> None:
    d = lab.dev("hikvision_camera")
    t0 = time.monotonic()
    raw = tcp_exchange(d["ip"], lab.port(80), b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40)
    assert raw.startswith(b"HTTP/1.1 400 Bad Request\r\n") and time.monotonic() - t0 < 2.0


def test_https_certificate_names_the_maker(lab: Lab) -> None:
    d = lab.dev("hikvision_camera")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((d["ip"], lab.port(443)), timeout=T) as raw:
        with ctx.wrap_socket(raw) as s:
            der = s.getpeercert(binary_form=True)
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert s.recv(4096).startswith(b"HTTP/1.0 200 OK\r\nDate: ")
    from cryptography import x509
    cert = x509.load_der_x509_certificate(der)
    assert "O=Hikvision" in cert.subject.rfc4514_string()


# --------------------------------------------------------------------------------------------
# RTSP


def test_rtsp_answers_like_each_maker(lab: Lab) -> None:
    hik = lab.dev("hikvision_camera")
    raw = tcp_exchange(hik["ip"], lab.port(554), b"OPTIONS / RTSP/1.0\r\n\r\n", until=b"\r\n\r\n")
    assert re.match(rb'RTSP/1\.0 401 Unauthorized\r\nWWW-Authenticate: Digest realm="[^"]+", nonce="[\da-f]{32}", '
                    rb'stale="FALSE"\r\nWWW-Authenticate: Basic realm="/"\r\n\r\n$', raw)
    assert b"Server:" not in raw and f'realm="{hik["realm"]}"'.encode() in raw
    raw = tcp_exchange(hik["ip"], lab.port(554), b"OPTIONS rtsp://x/ RTSP/1.0\r\nCSeq: 2\r\n\r\n",
                       until=b"\r\n\r\n")
    assert raw.startswith(b"RTSP/1.0 200 OK\r\nCSeq: 2\r\nPublic: OPTIONS, DESCRIBE")
    dahua = lab.dev("honeywell_camera")
    raw = tcp_exchange(dahua["ip"], lab.port(554), b"GET / HTTP/1.0\r\n\r\n")
    assert raw == b"RTSP/1.0 405 Method Not Allowed\r\nServer: Dahua Rtsp Server\r\nContent-Length: 0\r\nCSeq: 0\r\n\r\n"
    axis = lab.dev("axis_camera")
    raw = tcp_exchange(axis["ip"], lab.port(554), b"GET / HTTP/1.0\r\n\r\n")
    assert raw.startswith(b"HTTP/1.0 501 Not Implemented\r\nAllow: DESCRIBE, GET_PARAMETER")


def test_rtsp_describe_digest(lab: Lab) -> None:
    d = lab.dev("dahua_camera")
    uri = f"rtsp://{d['ip']}:{lab.port(554)}/cam/realmonitor?channel=1&subtype=0"
    with socket.create_connection((d["ip"], lab.port(554)), timeout=T) as s:
        s.sendall(f"DESCRIBE {uri} RTSP/1.0\r\nCSeq: 1\r\n\r\n".encode())
        first = s.recv(4096).decode()
        assert first.startswith("RTSP/1.0 401")
        assert re.search(r"\r\nServer: (Dahua Rtsp Server|Rtsp Server/3\.0)\r\n", first)
        challenge = re.search(r"WWW-Authenticate: (Digest [^\r\n]+)", first).group(1)
        s.sendall(f"DESCRIBE {uri} RTSP/1.0\r\nCSeq: 2\r\nAuthorization: "
                  f"{digest_header('DESCRIBE', uri, challenge, USER, 'bad')}\r\n\r\n".encode())
        assert s.recv(4096).startswith(b"RTSP/1.0 401")
        s.sendall(f"DESCRIBE {uri} RTSP/1.0\r\nCSeq: 3\r\nAuthorization: "
                  f"{digest_header('DESCRIBE', uri, challenge, USER, d['password'])}\r\n\r\n".encode())
        ok = s.recv(8192)
        assert ok.startswith(b"RTSP/1.0 200 OK\r\nCSeq: 3\r\n") and b"m=video 0 RTP/AVP 96" in ok


# --------------------------------------------------------------------------------------------
# ONVIF


def test_onvif_device_service_auth(lab: Lab) -> None:
    d = lab.dev("dahua_camera")
    r = onvif_call(lab, "dahua_camera", "GetSystemDateAndTime")
    assert r.status_code == 200 and "UTCDateTime" in r.text
    r = onvif_call(lab, "dahua_camera", "GetDeviceInformation")
    assert r.status_code == 401 and "NotAuthorized" in r.text
    r = onvif_call(lab, "dahua_camera", "GetDeviceInformation", wsse(USER, "wrong"))
    assert r.status_code == 401
    r = onvif_call(lab, "dahua_camera", "GetDeviceInformation", wsse(USER, d["password"]))
    assert r.status_code == 200
    root = SafeET.fromstring(r.content)
    ns = "{http://www.onvif.org/ver10/device/wsdl}"
    info = root.find(f".//{ns}GetDeviceInformationResponse")
    assert info.findtext(f"{ns}Manufacturer") == "Dahua" and info.findtext(f"{ns}SerialNumber") == d["serial"]
    # HTTP digest works as well as WS-Security
    body = SOAP.format(header="", body="<tds:GetDeviceInformation/>")
    r = httpx.post(lab.url("dahua_camera", "/onvif/device_service"), content=body, timeout=T,
                   auth=httpx.DigestAuth(USER, d["password"]))
    assert r.status_code == 200
    # some profiles answer GetDeviceInformation to anyone (older firmware)
    r = onvif_call(lab, "vivotek_camera", "GetDeviceInformation")
    assert r.status_code == 200 and "VIVOTEK" in r.text


def test_onvif_switched_off_on_hikvision_55(lab: Lab) -> None:
    d = lab.dev("hikvision_camera_onvif_off")
    assert onvif_call(lab, "hikvision_camera_onvif_off", "GetSystemDateAndTime").status_code == 404
    assert udp_exchange(d["ip"], lab.port(3702), wsd_probe("urn:uuid:1"), timeout=1.0) is None


def test_onvif_zeep_client_accepts_the_answers(lab: Lab) -> None:
    import asyncio

    from onvif import ONVIFCamera

    async def info(profile: str, password: str) -> object:
        d = lab.dev(profile)
        cam = ONVIFCamera(d["ip"], lab.port(80), USER, password)
        try:
            await asyncio.wait_for(cam.update_xaddrs(), 20)
            dm = await cam.create_devicemgmt_service()
            return await asyncio.wait_for(dm.GetDeviceInformation(), 10)
        finally:
            await cam.close()

    got = asyncio.run(info("hikvision_camera", lab.dev("hikvision_camera")["password"]))
    assert got.Manufacturer == "HIKVISION" and got.SerialNumber == lab.dev("hikvision_camera")["serial"]
    with pytest.raises(Exception, match="(?i)not authorized|401|auth"):
        asyncio.run(info("axis_camera", "wrong"))


def test_ws_discovery_unicast_probe_match(lab: Lab) -> None:
    d = lab.dev("hikvision_camera")
    reply = udp_exchange(d["ip"], lab.port(3702), wsd_probe("urn:uuid:test-123"))
    assert reply is not None
    root = SafeET.fromstring(reply)
    text = reply.decode()
    assert "urn:uuid:test-123" in text and "ProbeMatches" in text
    assert f"onvif://www.onvif.org/hardware/{d['model']}" in text and "location/city/hangzhou" in text
    assert f"http://{d['ip']}" in text and d["mac"].replace(":", "") in text
    assert root is not None
    dahua = udp_exchange(lab.dev("honeywell_camera")["ip"], lab.port(3702), wsd_probe("urn:uuid:2"))
    assert b"onvif://www.onvif.org/name/Honeywell" in dahua and b"Honeywell_mask/37777" in dahua
    # not a probe: no answer
    assert udp_exchange(d["ip"], lab.port(3702), b"hello", timeout=0.7) is None


# --------------------------------------------------------------------------------------------
# vendor discovery, SSDP, mDNS, banners


def test_sadp_probe_match(lab: Lab) -> None:
    d = lab.dev("lts_camera")
    probe = b'<?xml version="1.0" encoding="utf-8"?><Probe><Uuid>ABC-1</Uuid><Types>inquiry</Types></Probe>'
    reply = udp_exchange(d["ip"], lab.port(37020), probe)
    root = SafeET.fromstring(reply)
    assert root.tag == "ProbeMatch" and root.findtext("Uuid") == "ABC-1"
    assert root.findtext("DeviceSN") == d["serial"] and root.findtext("OEMInfo") == "LTS"
    assert root.findtext("MAC") == d["mac"].replace(":", "-")
    assert root.findtext("IPv4Address") == d["ip"] and root.findtext("Activated") == "true"
    assert udp_exchange(lab.dev("dahua_camera")["ip"], lab.port(37020), probe, timeout=0.5) is None


def test_dhip_discovery(lab: Lab) -> None:
    import struct

    d = lab.dev("lorex_camera")
    body = json.dumps({"method": "DHDiscover.search", "params": {"mac": "", "uni": 1}}).encode()
    n = len(body)
    query = struct.pack("<I", 0x20) + b"DHIP" + struct.pack("<IIIIII", 0, 0, n, n, n, n) + body
    reply = udp_exchange(d["ip"], lab.port(37810), query)
    assert reply[4:8] == b"DHIP" and len(reply) > 32
    msg = json.loads(reply[32:])
    info = msg["params"]["deviceInfo"]
    assert msg["method"] == "client.notifyDevInfo" and msg["mac"] == d["mac"]
    assert info["SerialNo"] == d["serial"] and info["Version"] == d["firmware"] and "LR" in info["Version"]
    other = json.dumps({"method": "DHDiscover.search", "mac": "00:11:22:33:44:55", "params": {"uni": 1}}).encode()
    n = len(other)
    assert udp_exchange(d["ip"], lab.port(37810), struct.pack("<I", 0x20) + b"DHIP" + struct.pack(
        "<IIIIII", 0, 0, n, n, n, n) + other, timeout=0.5) is None


def test_ssdp_search(lab: Lab) -> None:
    d = lab.dev("amcrest_camera")
    msearch = (b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\n"
               b"ST: upnp:rootdevice\r\n\r\n")
    reply = udp_exchange(d["ip"], lab.port(1900), msearch).decode()
    assert reply.startswith("HTTP/1.1 200 OK") and "SERVER: Linux, UPnP/1.0, Private Upnp SDK" in reply
    assert f"USN: uuid:device_3_0-{d['serial']}::upnp:rootdevice" in reply
    location = re.search(r"LOCATION: (\S+)", reply).group(1)
    desc = httpx.get(location, timeout=T)
    assert "<manufacturer>Amcrest</manufacturer>" in desc.text and d["serial"] in desc.text


def test_mdns_answers_service_queries(lab: Lab) -> None:
    d = lab.dev("axis_camera")
    q = DNSOutgoing(C._FLAGS_QR_QUERY, multicast=False, id_=4242)
    q.add_question(DNSQuestion("_axis-video._tcp.local.", C._TYPE_PTR, C._CLASS_IN))
    reply = udp_exchange(d["ip"], lab.port(5353), q.packets()[0])
    msg = DNSIncoming(reply)
    assert msg.valid and msg.id == 4242
    names = {r.name for r in msg.answers()}
    assert "_axis-video._tcp.local." in names
    txt = [r for r in msg.answers() if r.type == C._TYPE_TXT]
    assert txt and f"macaddress={d['mac'].replace(':', '').upper()}".encode() in txt[0].text
    p = lab.dev("printer")
    q = DNSOutgoing(C._FLAGS_QR_QUERY, multicast=False, id_=7)
    q.add_question(DNSQuestion("_ipp._tcp.local.", C._TYPE_PTR, C._CLASS_IN))
    msg = DNSIncoming(udp_exchange(p["ip"], lab.port(5353), q.packets()[0]))
    assert any(r.type == C._TYPE_PTR and "_ipp._tcp" in r.name for r in msg.answers())


def test_tcp_banners(lab: Lab) -> None:
    hik = lab.dev("hikvision_camera")
    assert tcp_exchange(hik["ip"], lab.port(23), b"", until=b"login: ", timeout=2).endswith(b"192.0.0.64 login: ")
    assert tcp_exchange(hik["ip"], lab.port(8000), b"", want=16, timeout=4) == bytes.fromhex(
        "000000100000001e0000001e00000000")
    srv = lab.dev("linux_server")
    assert tcp_exchange(srv["ip"], lab.port(22), b"", until=b"\r\n", timeout=2).startswith(b"SSH-2.0-OpenSSH_")


def test_ipp_printer_attributes(lab: Lab) -> None:
    p = lab.dev("printer")
    req = (b"\x02\x00\x00\x0b\x00\x00\x00\x2a\x01" + b"\x47\x00\x12attributes-charset\x00\x05utf-8"
           + b"\x48\x00\x1battributes-natural-language\x00\x02en\x03")
    r = httpx.post(lab.url("printer", "/ipp/print", port=631), content=req, timeout=T,
                   headers={"Content-Type": "application/ipp"})
    assert r.status_code == 200 and r.content[4:8] == b"\x00\x00\x00\x2a"
    assert b"printer-make-and-model" in r.content and (p["model"] or "").encode() in r.content


# --------------------------------------------------------------------------------------------
# hostile devices


def test_slow_device_sends_nothing_for_a_long_time(lab: Lab) -> None:
    d = lab.dev("hostile_slow")
    t0 = time.monotonic()
    assert tcp_exchange(d["ip"], lab.port(80), b"GET / HTTP/1.0\r\n\r\n", timeout=2.0) == b""
    assert time.monotonic() - t0 >= 1.9


def test_garbage_device_sends_garbage_everywhere(lab: Lab) -> None:
    d = lab.dev("hostile_garbage")
    for port in (80, 554, 8000, 23):
        raw = tcp_exchange(d["ip"], lab.port(port), b"GET / HTTP/1.0\r\n\r\n", timeout=2.0)
        assert len(raw) >= 1024 and not raw.startswith(b"HTTP/")
    reply = udp_exchange(d["ip"], lab.port(3702), wsd_probe("urn:uuid:g"))
    assert reply and not reply.startswith(b"<?xml")


def test_big_body_is_streamed_lazily(lab: Lab) -> None:
    d = lab.dev("hostile_bigbody")
    with socket.create_connection((d["ip"], lab.port(80)), timeout=T) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        head = s.recv(4096)
        assert b"Content-Length: 104857600\r\n" in head
        got = len(head)
        while got < 4 * 1024 * 1024:
            chunk = s.recv(1 << 20)
            assert chunk
            got += len(chunk)
    # the service never held the body: its memory stays small, and it still answers
    service = [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] and
               "scanner.lab.service" in p.info["cmdline"] and str(os.getpid()) in json.dumps(p.info["cmdline"])]
    for p in service:
        assert p.memory_info().rss < 200 * 1024 * 1024
    assert httpx.get(lab.url("hikvision_camera"), timeout=T).status_code == 200


def test_xml_bomb_in_ws_discovery(lab: Lab) -> None:
    d = lab.dev("hostile_xmlbomb")
    reply = udp_exchange(d["ip"], lab.port(3702), wsd_probe("urn:uuid:b"))
    assert reply and b"<!DOCTYPE" in reply and b"<!ENTITY lol9" in reply and len(reply) < 4096
    from defusedxml import DTDForbidden, EntitiesForbidden

    with pytest.raises((EntitiesForbidden, DTDForbidden)):
        SafeET.fromstring(reply)
    assert b"<!ENTITY" in onvif_call(lab, "hostile_xmlbomb", "GetDeviceInformation").content


def test_reset_device_resets(lab: Lab) -> None:
    d = lab.dev("hostile_reset")
    with pytest.raises(ConnectionResetError):
        with socket.create_connection((d["ip"], lab.port(80)), timeout=T) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            s.settimeout(T)
            s.recv(100)
            s.recv(100)


def test_escape_device_puts_markup_and_terminal_escapes_in_its_banners(lab: Lab) -> None:
    d = lab.dev("hostile_escape")
    raw = tcp_exchange(d["ip"], lab.port(80), b"GET / HTTP/1.0\r\n\r\n")
    server = next(line for line in header_lines(raw) if line.startswith("Server: "))
    assert "<script>" in server and "\x1b[" in server and "\x1b]0;" in server
    assert b"<title><script>" in raw
    banner = tcp_exchange(d["ip"], lab.port(23), b"", want=40, timeout=2)
    assert b"\x1b]0;" in banner and b"<script>" in banner


# --------------------------------------------------------------------------------------------
# the process


def test_bad_plan_is_a_clear_error(tmp_path: Path) -> None:
    cases = {"not json": "{", "no devices": "{}", "no password": json.dumps(
        {"devices": [{**build_device("axis_camera", 0, random.Random(1)).to_dict(), "netns": None,
                      "ip": "127.18.9.2", "username": "admin"}]}),
        "not loopback": json.dumps({"devices": [{**build_device("axis_camera", 0, random.Random(1)).to_dict(),
                                                 "netns": None, "ip": "10.0.0.1", "username": "a",
                                                 "password": "b"}]}),
        "port beyond 65535": json.dumps({"port_offset": 30000, "devices": [{
            **build_device("dahua_camera", 0, random.Random(1)).to_dict(), "netns": None, "ip": "127.18.9.2",
            "username": "a", "password": "b"}]})}
    for what, text in cases.items():
        plan = tmp_path / "p.json"
        plan.write_text(text)
        r = subprocess.run([sys.executable, "-m", "scanner.lab.service", "--plan", str(plan)],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2, what
        assert "error:" in r.stderr and "Traceback" not in r.stderr, (what, r.stderr)
    r = subprocess.run([sys.executable, "-m", "scanner.lab.service", "--plan", str(tmp_path / "missing.json")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "cannot read plan" in r.stderr


def test_two_hundred_fifty_devices_serve(tmp_path: Path) -> None:
    """250 devices come up in one service and answer (how fast: bench/lab.py)."""
    from scanner.lab.profiles import build_fleet

    third = random.Random(os.getpid() + 1).randint(10, 200)
    specs = build_fleet(250, 3)
    devices = _plan_devices(specs, f"127.19.{third}")
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "port_offset": PORT_OFFSET, "devices": devices}))
    proc = _start(plan, timeout=60)
    try:
        axis = next(e for e in devices if e["profile"] == "axis_camera")
        assert tcp_exchange(axis["ip"], PORT_OFFSET + 80, b"GET / HTTP/1.0\r\n\r\n", timeout=3).startswith(
            b"HTTP/1.0 200 OK\r\nServer: Apache\r\n")
    finally:
        code, err = _stop(proc)
    assert code == 0 and "Traceback" not in err


def test_fuzzed_input_never_takes_the_service_down(lab: Lab) -> None:
    rng = random.Random(7)
    samples = [b"GET /" + bytes(rng.getrandbits(8) for _ in range(60)) + b" HTTP/1.1\r\n\r\n",
               b"POST /onvif/device_service HTTP/1.1\r\nContent-Length: 20\r\n\r\n<<<<<<<<<<>>>>>>>>>>",
               b"POST /RPC2_Login HTTP/1.1\r\nContent-Length: 5\r\n\r\n[1,2]",
               b"GET /cgi-bin/magicBox.cgi?action=%ff%fe&&== HTTP/1.1\r\nAuthorization: Digest ,,,=\"\r\n\r\n",
               b"DESCRIBE rtsp://x/ RTSP/1.0\r\nCSeq: \xff\xfe\r\nAuthorization: Digest uri=\"\r\n\r\n",
               b"GET / HTTP/1.1\r\nContent-Length: -5\r\n\r\n", b"\r\n\r\n", b"A" * 20000]
    for profile in ("hikvision_camera", "dahua_nvr", "axis_camera", "uniview_camera", "printer"):
        d = lab.dev(profile)
        for port in (80, 554, 631):
            if port == 554 and "rtsp" not in d["services"] or port == 631 and "ipp" not in d["services"]:
                continue
            for data in samples:
                try:
                    tcp_exchange(d["ip"], lab.port(port), data, timeout=0.3, until=b"\r\n\r\n")
                except OSError:
                    pass
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:  # fire and forget
            for port in (3702, 37020, 37810, 1900, 5353):
                for data in samples[:-1] + [bytes(rng.getrandbits(8) for _ in range(300))]:
                    u.sendto(data, (d["ip"], lab.port(port)))
    assert httpx.get(lab.url("hikvision_camera"), timeout=T).status_code == 200
    assert udp_exchange(lab.dev("hikvision_camera")["ip"], lab.port(3702), wsd_probe("urn:uuid:after"))
