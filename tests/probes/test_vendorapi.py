"""The non-restricted makers' device-info endpoints (scanner/probes/vendorapi.py): recorded replies
(tests/recordings/vendorapi, sources in SOURCES.md), Hypothesis properties of every parser, and the HTTP
probe over httpx MockTransport against the lab's own responders (no network)."""

from __future__ import annotations

import asyncio
import base64
import json
import random
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.identify import Identifier
from scanner.lab.profiles import PROFILES, build_device
from scanner.lab.responders import http as lab_http
from scanner.lab.responders.base import Device, Request
from scanner.probes import http as probe_http
from scanner.probes import vendorapi as va
from scanner.probes.base import ProbeContext
from tests.probes.conftest import recording

PARSERS = [va.parse_vapix_basicdeviceinfo, va.parse_vapix_param, va.parse_sunapi_deviceinfo, va.parse_rcp,
           va.parse_vivotek_getparam, va.parse_lapi_deviceinfo, va.parse_ipro_getinfo, va.parse_mobotix_camerainfo,
           va.parse_reolink, va.parse_milesight_sysinfo, va.parse_tapo_login]


@pytest.fixture(scope="module")
def identifier() -> Identifier:
    return Identifier()


def _proof_rules(ident: Identifier, discovery: list[dict]) -> tuple[str | None, list[str], object]:
    r = ident.identify({"id": "t", "discovery": discovery})
    return r.manufacturer, [e.rule for e in r.evidence if e.strength == "proof"], r


# ------------------------------------------------------------------------------------------------
# recorded replies


@pytest.mark.parametrize("name,parser,protocol,want,maker,rule", [
    ("axis-basicdeviceinfo-m1065lw.json", va.parse_vapix_basicdeviceinfo, "vapix",
     {"model": "M1065-LW", "firmware": "9.80.1", "serial": "ACCC12345678", "manufacturer": "AXIS",
      "prodtype": "Network Camera", "hardwareid": "70E"}, "Axis", "vendorapi/axis-vapix"),
    ("axis-param-brand-properties.txt", va.parse_vapix_param, "vapix_param",
     {"model": "M1065-LW", "firmware": "9.10.1", "serial": "ACCC12345678", "prodtype": "Network Camera",
      "manufacturer": "AXIS"},
     "Axis", "vendorapi/axis-vapix"),
    ("hanwha-sunapi-deviceinfo.txt", va.parse_sunapi_deviceinfo, "sunapi",
     {"model": "XNP-6320H", "firmware": "2.10.00_20220110_R287", "serial": "ZVVF70GY10001YN",
      "mac": "00:09:18:40:00:03", "devicetype": "NWC"}, "Hanwha Vision", "vendorapi/hanwha-sunapi"),
    ("bosch-rcp-0x0cd4.xml", va.parse_rcp, "rcp", {"command": "0x0cd4", "firmware": "7.83.0027"},
     "Bosch", "vendorapi/bosch-rcp"),
    ("vivotek-getparam-pt7135.txt", va.parse_vivotek_getparam, "vivotek",
     {"model": "PT7135", "firmware": "PT7135-VVTK-0400a"}, "Vivotek", "vendorapi/vivotek-getparam"),
    ("uniview-lapi-deviceinfo.json", va.parse_lapi_deviceinfo, "lapi",
     {"model": "NVR302-16S2", "serial": "210235C3EK3203000013", "firmware": "NVR-B3601.16.10.210414"},
     "Uniview", "vendorapi/uniview-lapi-deviceinfo"),
    ("ipro-getinfo.txt", va.parse_ipro_getinfo, "ipro",
     {"model": "WV-S2136L", "serial": "DKA01234", "firmware": "2.60", "mac": "D4-2D-C5-12-34-56"},
     "i-PRO", "vendorapi/ipro-getinfo"),
    ("mobotix-camerainfo.html", va.parse_mobotix_camerainfo, "mobotix",
     {"model": "M16B", "firmware": "MX-V5.2.6.8", "factory_ip": "10.10.27.44"}, "Mobotix",
     "vendorapi/mobotix-camerainfo"),
    ("reolink-rlc822a-getdevinfo.json", va.parse_reolink, "reolink",
     {"model": "RLC-822A", "firmware": "v3.1.0.956_22041507", "exacttype": "IPC"}, "Reolink", "vendorapi/reolink-api"),
    ("reolink-please-login-first.json", va.parse_reolink, "reolink",
     {"cmd": "GetDevInfo", "rspcode": "-6", "detail": "please login first"}, "Reolink", "vendorapi/reolink-api"),
    ("tapo-c425-login-handshake.json", va.parse_tapo_login, "tapo",
     {"error_code": "-40413", "code": "-40401", "encrypt_type": "3"}, "TP-Link", "vendorapi/tplink-tapo-login"),
    ("tapo-tc40-login-handshake.json", va.parse_tapo_login, "tapo",
     {"error_code": "-40413", "code": "-40401", "encrypt_type": "3"}, "TP-Link", "vendorapi/tplink-tapo-login"),
    ("tapo-tc70-login-handshake.json", va.parse_tapo_login, "tapo",
     {"error_code": "-40413", "code": "-40401", "encrypt_type": "3"}, "TP-Link", "vendorapi/tplink-tapo-login"),
    ("tapo-legacy-login-reply.json", va.parse_tapo_login, "tapo",
     {"error_code": "-40401", "code": "-40407", "encrypt_type": "1,2"}, "TP-Link", "vendorapi/tplink-tapo-login"),
])
def test_recorded_reply_parses_and_proves_the_maker(identifier, name, parser, protocol, want, maker, rule):
    d = parser(recording(f"vendorapi/{name}"))
    assert d is not None and d["protocol"] == protocol
    for k, v in want.items():
        assert d["fields"].get(k) == v, (k, d["fields"])
    got, proofs, _ = _proof_rules(identifier, [d])
    assert got == maker
    assert rule in proofs


def test_recorded_replies_are_not_claimed_by_the_other_parsers():
    """Each answer is read only by its own maker's parser (a format, not a keyword, decides)."""
    own = {"axis-basicdeviceinfo-m1065lw.json": va.parse_vapix_basicdeviceinfo,
           "axis-param-brand-properties.txt": va.parse_vapix_param,
           "hanwha-sunapi-deviceinfo.txt": va.parse_sunapi_deviceinfo, "bosch-rcp-0x0cd4.xml": va.parse_rcp,
           "vivotek-getparam-pt7135.txt": va.parse_vivotek_getparam,
           "uniview-lapi-deviceinfo.json": va.parse_lapi_deviceinfo, "ipro-getinfo.txt": va.parse_ipro_getinfo,
           "mobotix-camerainfo.html": va.parse_mobotix_camerainfo,
           "reolink-rlc822a-getdevinfo.json": va.parse_reolink,
           "tapo-c425-login-handshake.json": va.parse_tapo_login, "tapo-tc40-login-handshake.json": va.parse_tapo_login,
           "tapo-legacy-login-reply.json": va.parse_tapo_login}
    for name, mine in own.items():
        body = recording(f"vendorapi/{name}")
        for p in PARSERS:
            if p is not mine:
                assert p(body) is None, (name, p.__name__)


@pytest.mark.parametrize("body", [
    b'{"error_code": -40211}',                                    # an error without the handshake's data
    b'{"error_code": 0, "result": {"data": {"encrypt_type": ["3"], "nonce": "ABCDEF12"}}}',  # not an error
    b'{"error_code": -1, "result": {"data": {"encrypt_type": ["3"], "nonce": "ABCDEF12"}}}',  # not TP-Link's range
    b'{"error_code": -40413, "result": {"data": {"encrypt_type": "3", "nonce": "ABCDEF12"}}}',  # not a list
    b'{"error_code": -40413, "result": {"data": {"encrypt_type": ["3"]}}}',                    # no nonce
    b'{"error_code": true, "result": {"data": {"encrypt_type": ["3"], "nonce": "ABCDEF12"}}}',
    b'[{"cmd": "Login", "code": 1, "error": {"detail": "login failed", "rspCode": -7}}]',
])
def test_tapo_parser_wants_tplink_handshake_envelope(body):
    assert va.parse_tapo_login(body) is None


def test_tapo_handshake_request_carries_no_password():
    sent = json.loads(va.TAPO_HANDSHAKE)
    assert sent["method"] == "login" and set(sent["params"]) == {"cnonce", "encrypt_type", "username"}
    assert sent["params"]["encrypt_type"] == "3" and len(sent["params"]["cnonce"]) == 16


def test_rcp_error_result_is_not_an_answer():
    assert va.parse_rcp(recording("vendorapi/bosch-rcp-err-0x40.xml")) is None


def test_reolink_firmware_and_device_type(identifier):
    _, _, r = _proof_rules(identifier, [va.parse_reolink(recording("vendorapi/reolink-rlc822a-getdevinfo.json"))])
    assert (r.model, r.firmware, r.device_type) == ("RLC-822A", "v3.1.0.956_22041507", "camera")


def test_std_cgi_isapi_namespace_is_hikvision(identifier):
    body = recording("vendorapi/hikvision-isapi-deviceinfo-std-cgi.xml").decode()
    r = identifier.identify({"id": "x", "http": [{"port": 80, "path": "/ISAPI/System/deviceInfo", "status": 200,
                                                  "body": body}]})
    rules = {e.rule for e in r.evidence}
    assert r.manufacturer == "Hikvision"
    assert "vendorapi/hikvision-isapi-oem-namespace" in rules and "http/hikvision-isapi" in rules


def test_vendor_api_label_is_withheld_on_a_catch_all_server(identifier):
    d = va.parse_vapix_basicdeviceinfo(recording("vendorapi/axis-basicdeviceinfo-m1065lw.json"))
    canary = {"port": 80, "path": "/camsweep-0123456789", "status": 200, "body": "<html>ok</html>"}
    r = identifier.identify({"id": "x", "discovery": [d], "http": [canary]})
    assert "vendorapi/axis-vapix" not in {e.rule for e in r.evidence}


# ------------------------------------------------------------------------------------------------
# which makers a web server points at


@pytest.mark.parametrize("entry,makers", [
    ({"headers": {"Server": "Apache"}, "title": "AXIS", "body": '<meta http-equiv="refresh" content="0; '
      'URL=/camera/index.html" />'}, {"axis"}),
    ({"status": 302, "headers": {"Location": "/wmf/index.html"}}, {"hanwha"}),
    ({"headers": {"Server": "VCS-VideoJet-Webserver"}}, {"bosch"}),
    ({"headers": {"Server": "Vivotek Network Camera", "WWW-Authenticate": 'Basic realm="streaming_server"'}},
     {"vivotek"}),
    ({"title": "WV-S2136L Network Camera"}, {"ipro"}),
    ({"headers": {"Location": "/control/userimage.html"}}, {"mobotix"}),
    ({"body": '<script src="/js/lib/uniview.js"></script>'}, {"uniview"}),
    ({"title": "Reolink"}, {"reolink"}),
    ({"title": "Milesight Network Camera"}, {"milesight"}),
    ({"headers": {"WWW-Authenticate": 'Basic realm="TP-LINK IP-Camera"'}}, {"tplink"}),
    ({"title": "VIGI C340"}, {"tplink"}),
    # a Tapo camera's HTTPS root: empty, no Server header (HomeAssistant-Tapo-Control issue 261)
    ({"port": 443, "tls": True, "path": "/", "status": 200, "headers": {"Content-Type": "text/html"}}, {"tplink"}),
    ({"port": 80, "tls": False, "path": "/", "status": 200, "headers": {"Content-Type": "text/html"}}, set()),
    ({"port": 443, "tls": True, "path": "/", "status": 200, "headers": {"Server": "nginx"}}, set()),
    ({"port": 443, "tls": True, "path": "/", "status": 200, "headers": {}, "body": "<html>hi</html>"}, set()),
    ({"headers": {"Server": "App-webs/"}, "body": "/doc/page/login.asp"}, set()),
    ({"headers": {"Server": "nginx/1.22.1"}, "title": "Welcome to nginx!"}, set()),
    ({"title": "Sales dashboard", "body": "<script>chart.x axis = 'time'; var yAxis = 2;</script>"}, set()),
    ({"headers": {"Server": "HP HTTP Server; HP Color LaserJet MFP M479fdw"}}, set()),
])
def test_plausible_makers(entry, makers):
    assert va.plausible_makers([entry]) == makers


@given(st.lists(st.dictionaries(st.sampled_from(["headers", "title", "body", "realm", "status"]),
                                st.one_of(st.text(max_size=300), st.integers(), st.none(),
                                          st.dictionaries(st.text(max_size=20), st.text(max_size=80), max_size=4)),
                                max_size=5), max_size=4))
@settings(max_examples=200, deadline=None)
def test_plausible_makers_never_raises(entries):
    assert va.plausible_makers(entries) <= set(va._HINTS)


# ------------------------------------------------------------------------------------------------
# Hypothesis: every parser is total and bounded


@pytest.mark.parametrize("parser", PARSERS, ids=lambda p: p.__name__)
@given(data=st.one_of(st.binary(max_size=4096), st.text(max_size=4096)))
@settings(max_examples=150, deadline=None)
def test_parsers_never_raise_and_stay_bounded(parser, data):
    d = parser(data)
    if d is not None:
        assert isinstance(d["protocol"], str) and 0 < len(d["fields"]) <= va.MAX_FIELDS
        assert all(isinstance(v, str) and len(v) <= va.MAX_VALUE for v in d["fields"].values())


_word = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="'\"\\<>&="),
                min_size=1, max_size=40)


@given(model=_word, version=_word, serial=_word)
@settings(max_examples=100, deadline=None)
def test_vapix_round_trip(model, version, serial):
    body = json.dumps({"apiVersion": "1.3", "data": {"propertyList": {"Brand": "AXIS", "ProdNbr": model,
                                                                      "Version": version, "SerialNumber": serial}}})
    f = va.parse_vapix_basicdeviceinfo(body)["fields"]
    assert (f["model"], f["firmware"], f["serial"]) == (model, version, serial)


@given(model=_word, version=_word)
@settings(max_examples=100, deadline=None)
def test_sunapi_and_ipro_round_trip(model, version):
    f = va.parse_sunapi_deviceinfo(f"Model={model}\r\nFirmwareVersion={version}\r\nDeviceType=NWC\r\n")["fields"]
    assert (f["model"], f["firmware"]) == (model, version)
    g = va.parse_ipro_getinfo(f"MAC=00-80-45-00-00-01\r\nSERIAL=X1\r\nVERSION={version}\r\nNAME={model}\r\n")["fields"]
    assert (g["model"], g["firmware"]) == (model, version)


@given(model=_word, version=_word)
@settings(max_examples=100, deadline=None)
def test_vivotek_lapi_reolink_round_trip(model, version):
    f = va.parse_vivotek_getparam(f"system_info_modelname='{model}'\r\nsystem_info_firmwareversion='{version}'\r\n")
    assert (f["fields"]["model"], f["fields"]["firmware"]) == (model, version)
    g = va.parse_lapi_deviceinfo(json.dumps({"Response": {"Data": {"DeviceModel": model, "FirmwareVersion": version}}}))
    assert (g["fields"]["model"], g["fields"]["firmware"]) == (model, version)
    h = va.parse_reolink(json.dumps([{"cmd": "GetDevInfo", "code": 0, "value": {"DevInfo": {"model": model,
                                                                                           "firmVer": version}}}]))
    assert (h["fields"]["model"], h["fields"]["firmware"]) == (model, version)


@given(version=_word, cmd=st.integers(0, 0xFFFF))
@settings(max_examples=100, deadline=None)
def test_rcp_round_trip(version, cmd):
    body = f"<rcp><command><hex>0x{cmd:04x}</hex></command><result><str>{version}</str></result></rcp>"
    f = va.parse_rcp(body)["fields"]
    assert f["command"] == f"0x{cmd:04x}"
    if cmd in (0x0CD4, 0x002F):  # the firmware-version commands: the result is the firmware, said once
        assert f["firmware"] == version and f.get("result", version) == version
    else:
        assert f["result"] == version


def test_parsers_refuse_oversized_and_hostile_input():
    bomb = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
            '<rcp><command><hex>0x0cd4</hex></command><result><str>&b;</str></result></rcp>')
    assert va.parse_rcp(bomb) is None
    deep = "[" * 100 + "]" * 100
    assert va.parse_reolink(deep) is None and va.parse_lapi_deviceinfo("{" * 5000) is None
    huge = '{"data": {"propertyList": {"ProdNbr": "' + "A" * 2_000_000 + '"}}}'
    assert va.parse_vapix_basicdeviceinfo(huge) is None


# ------------------------------------------------------------------------------------------------
# the probe, over MockTransport against the lab's responders


def _lab_transport(dev: Device, seen: list[tuple[str, str, str]]) -> httpx.MockTransport:
    state: dict = {}

    def handler(request: httpx.Request) -> httpx.Response:
        target = request.url.raw_path.decode()
        seen.append((request.method, target, request.headers.get("authorization", "")))
        req = Request(request.method, target, "HTTP/1.1", list(request.headers.items()), request.content)
        resp = lab_http.route(dev, req, tls=request.url.scheme == "https", port=request.url.port or 80, state=state)
        return httpx.Response(resp.status, headers=resp.headers, content=resp.body)

    return httpx.MockTransport(handler)


def _probe(profile: str, creds: bool) -> tuple[Device, list[tuple[str, str, str]], dict]:
    dev = Device(spec=build_device(profile, 3, random.Random(5)), ip="198.18.0.9", username="admin",
                 password="lab-secret-pw")
    seen: list[tuple[str, str, str]] = []
    only_https = not dev.spec.has("http") and dev.spec.has("https")  # a Tapo: its API is on 443 only
    ports = {"http": (), "https": (443,)} if only_https else {"http": (80,), "https": ()}
    ctx = ProbeContext(timeout=2.0, http_transport=_lab_transport(dev, seen), ports=ports,
                       credentials=(lambda h: ("admin", "lab-secret-pw")) if creds else None)
    return dev, seen, asyncio.run(probe_http.probe(dev.ip, ctx))


NON_RESTRICTED_CAMERAS = {  # profile -> (its maker's API protocol, the proof rule, needs credentials)
    "axis_camera": ("vapix", "vendorapi/axis-vapix", False),
    "bosch_camera": ("rcp", "vendorapi/bosch-rcp", False),
    "hanwha_camera": ("sunapi", "vendorapi/hanwha-sunapi", True),
    "ipro_camera": ("ipro", "vendorapi/ipro-getinfo", True),
    "vivotek_camera": ("vivotek", "vendorapi/vivotek-getparam", True),
    "mobotix_camera": ("mobotix", "vendorapi/mobotix-camerainfo", True),
    "uniview_camera": ("lapi", "vendorapi/uniview-lapi-deviceinfo", True),
    "reolink_camera": ("reolink", "vendorapi/reolink-api", False),  # anonymous: the "please login first" envelope
    "milesight_camera": ("milesight", "vendorapi/milesight-system-information", True),
    "tapo_camera": ("tapo", "vendorapi/tplink-tapo-login", False),  # anonymous: the login handshake's envelope
}


def test_every_non_restricted_camera_profile_is_covered():
    cams = {k for k, p in PROFILES.items() if p.restricted is False and p.hostile is None
            and any(m.device_type in ("camera", "ptz", "thermal") for m in p.models)}
    # Xiongmai's own answer is DVRIP on 34567, not HTTP (tests/probes/test_snmp_dvrip.py)
    assert cams <= set(NON_RESTRICTED_CAMERAS) | {"uniview_camera", "xiongmai_camera"}


@pytest.mark.parametrize("profile", sorted(NON_RESTRICTED_CAMERAS))
def test_probe_asks_each_maker_its_own_endpoint(identifier, profile):
    protocol, rule, needs_creds = NON_RESTRICTED_CAMERAS[profile]
    for creds in (False, True):
        dev, seen, out = _probe(profile, creds)
        protos = [d["protocol"] for d in out.get("discovery", [])]
        if creds or not needs_creds:
            assert protocol in protos, (creds, protos, seen)
            r = identifier.identify({"id": profile, **out})  # no MAC: the answers alone
            assert r.manufacturer == dev.spec.manufacturer
            assert rule in {e.rule for e in r.evidence}
            assert r.model == dev.spec.model or (r.model or "") in (dev.spec.model or "")
        else:
            assert protocol not in protos
        # the per-host request budget (Reolink's token flow adds Login, GetDevInfo and Logout)
        assert len(seen) <= (13 if profile == "reolink_camera" else 10), seen
        text = json.dumps(out)
        assert "lab-secret-pw" not in text and base64.b64encode(b"admin:lab-secret-pw").decode() not in text


@pytest.mark.parametrize("profile", ["hikvision_camera", "dahua_camera", "hikvision_nvr", "printer", "linux_server",
                                     "nas", "huawei_camera"])
def test_other_devices_are_not_asked_the_vendor_endpoints(profile):
    vendor_paths = ("/axis-cgi/", "/stw-cgi/", "/rcp.xml", "/cgi-bin/viewer/", "/LAPI/", "/cgi-bin/getinfo",
                    "/control/camerainfo", "/api.cgi")
    for creds in (False, True):
        _, seen, _ = _probe(profile, creds)
        assert not [t for _, t, _ in seen if t.startswith(vendor_paths)], seen


def test_basic_is_sent_only_after_a_basic_challenge():
    for profile in ("vivotek_camera", "mobotix_camera"):
        _, seen, _ = _probe(profile, True)
        firsts: dict[str, str] = {}
        for _method, target, auth in seen:
            firsts.setdefault(target, auth)
        assert all(not a for a in firsts.values()), firsts  # every path's first request carries nothing
        assert any(a.startswith("Basic ") for _, _, a in seen)


def test_axis_answers_without_credentials_and_no_credential_request_is_made():
    _, seen, out = _probe("axis_camera", True)
    assert [d["protocol"] for d in out["discovery"]] == ["vapix"]
    assert not [a for _, _, a in seen if a]  # the unrestricted answer said it all: nothing sent with the account


def test_reolink_token_flow_over_mock_transport(identifier):
    seen: list[str] = []
    token = "a1b2c3d4e5"

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode()
        seen.append(path)
        if path == "/":
            return httpx.Response(200, headers={"Content-Type": "text/html"},
                                  content=b"<html><head><title>Reolink</title></head><body></body></html>")
        if path.startswith("/api.cgi"):
            body = json.loads(request.content or b"[]")
            cmd = body[0]["cmd"] if body else ""
            if cmd == "Login":
                user = body[0]["param"]["User"]
                ok = user["userName"] == "admin" and user["password"] == "s3cret"
                return httpx.Response(200, json=[{"cmd": "Login", "code": 0, "value": {"Token": {
                    "leaseTime": 3600, "name": token}}}] if ok else [{"cmd": "Login", "code": 1, "error": {
                        "detail": "login failed", "rspCode": -7}}])
            if request.url.params.get("token") != token:
                return httpx.Response(200, json=[{"cmd": cmd, "code": 1, "error": {"detail": "please login first",
                                                                                   "rspCode": -6}}])
            if cmd == "GetDevInfo":
                return httpx.Response(200, content=recording("vendorapi/reolink-rlc822a-getdevinfo.json"))
            if cmd == "Logout":
                return httpx.Response(200, json=[{"cmd": "Logout", "code": 0, "value": {"rspCode": 200}}])
        return httpx.Response(404)

    ctx = ProbeContext(timeout=2.0, http_transport=httpx.MockTransport(handler), ports={"http": (80,), "https": ()},
                       credentials=lambda h: ("admin", "s3cret"))
    out = asyncio.run(probe_http.probe("198.18.0.7", ctx))
    reo = [d for d in out["discovery"] if d["protocol"] == "reolink"]
    assert len(reo) == 1 and reo[0]["fields"]["model"] == "RLC-822A"
    assert any(p.startswith("/api.cgi?cmd=Logout") for p in seen)
    text = json.dumps(out)
    assert "s3cret" not in text and token not in text
    r = identifier.identify({"id": "r", **out})
    assert r.manufacturer == "Reolink" and r.firmware == "v3.1.0.956_22041507"


# ------------------------------------------------------------------------------------------------
# Dahua RPC2 after login (firmware with the CGI API off)


def _imou_cgi_off() -> Device:
    for seed in range(50):
        spec = build_device("imou_camera", 3, random.Random(seed))
        if spec.firmware.startswith("2.840"):
            return Device(spec=spec, ip="198.18.0.9", username="admin", password="lab-secret-pw")
    raise AssertionError("no Imou build with 2.840 firmware")


def test_rpc2_login_hash_matches_the_lab_and_the_documented_formula():
    # MD5("admin:Login to X:pw") upper, then MD5("admin:123:<that>") upper (rroller/dahua)
    import hashlib

    ha1 = hashlib.md5(b"admin:Login to X:pw").hexdigest().upper()
    assert va.rpc2_password_hash("admin", "pw", "Login to X", "123") == hashlib.md5(
        f"admin:123:{ha1}".encode()).hexdigest().upper()


@pytest.mark.parametrize("password,expect", [("lab-secret-pw", True), ("wrong", False)])
def test_rpc2_magicbox_after_login_when_the_cgi_api_is_off(identifier, password, expect):
    dev = _imou_cgi_off()
    seen: list[tuple[str, str, str]] = []
    ctx = ProbeContext(timeout=2.0, http_transport=_lab_transport(dev, seen), ports={"http": (80,), "https": ()},
                       credentials=lambda h: ("admin", password))
    out = asyncio.run(probe_http.probe(dev.ip, ctx))
    got = [d for d in out["discovery"] if d["protocol"] == "rpc2_magicbox"]
    paths = [t for _, t, _ in seen]
    assert paths.count("/cgi-bin/magicBox.cgi?action=getSystemInfo") == 1  # a 403 said the CGI API is off
    if expect:
        assert got and got[0]["fields"]["model"] == dev.spec.model and got[0]["fields"]["serial"] == dev.spec.serial
        r = identifier.identify({"id": "i", **out})
        assert r.manufacturer == "Dahua" and r.brand == "Imou"
        assert "vendorapi/dahua-rpc2-magicbox" in {e.rule for e in r.evidence}
        assert paths[-1] == "/RPC2"  # logged out
    else:
        assert not got and "/RPC2" not in paths
    assert password not in json.dumps(out)


@given(st.dictionaries(st.sampled_from(list(va.RPC2_METHODS) + ["x"]),
                       st.one_of(st.none(), st.integers(), st.text(max_size=50),
                                 st.fixed_dictionaries({"result": st.booleans(), "params": st.one_of(
                                     st.none(), st.dictionaries(st.sampled_from(["type", "sn", "version", "vendor"]),
                                                                st.one_of(st.text(max_size=40), st.integers(),
                                                                          st.dictionaries(st.text(max_size=8),
                                                                                          st.text(max_size=8),
                                                                                          max_size=3))))})),
                       max_size=5))
@settings(max_examples=200, deadline=None)
def test_rpc2_magicbox_parser_is_total(replies):
    d = va.parse_rpc2_magicbox(replies)
    if d is not None:
        assert d["protocol"] == "rpc2_magicbox" and all(isinstance(v, str) for v in d["fields"].values())


def test_rpc2_magicbox_recorded_shapes():
    # getSoftwareVersion {Build, BuildDate, SecurityBaseLineVersion, Version, WebVersion} (Go Dahua RPC client,
    # code index 1034821964); getDeviceType {type}, getSerialNo {sn}, getVendor {vendor} (code index 70602076513)
    d = va.parse_rpc2_magicbox({
        "magicBox.getDeviceType": {"id": 3, "params": {"type": "IPC-HDW2431T-AS-S2"}, "result": True, "session": 1},
        "magicBox.getSerialNo": {"id": 4, "params": {"sn": "4J0186FPAG00123"}, "result": True, "session": 1},
        "magicBox.getSoftwareVersion": {"id": 5, "params": {"version": {
            "Build": "20240115", "BuildDate": "2024-01-15", "SecurityBaseLineVersion": "2.0",
            "Version": "2.800.0000000.1", "WebVersion": "3.2.1"}}, "result": True, "session": 1},
        "magicBox.getVendor": {"id": 6, "error": {"code": 268894209, "message": "x"}, "result": False}})
    assert d["fields"] == {"model": "IPC-HDW2431T-AS-S2", "serial": "4J0186FPAG00123",
                           "firmware": "2.800.0000000.1", "builddate": "2024-01-15"}


def test_milesight_system_information_with_credentials_over_mock_transport(identifier):
    """Milesight: digest-protected admin.cgi get.system.information (JSON keys as evercam/ex_nvr reads them:
    model, snCode, firmwareVersion, deviceName); asked only with credentials, for a Milesight web server."""
    from scanner.lab.responders.base import check_digest, digest_challenge

    dev = Device(spec=build_device("axis_camera", 1, random.Random(1)), ip="198.18.0.5", username="admin",
                 password="ms-secret")
    seen: list[tuple[str, str]] = []
    info = {"deviceName": "Network Camera", "model": "MS-C2963-PB", "snCode": "6221A1234567",
            "firmwareVersion": "45.7.0.79", "macAddress": "1C:C3:16:01:02:03"}

    def handler(request: httpx.Request) -> httpx.Response:
        target = request.url.raw_path.decode()
        seen.append((target, request.headers.get("authorization", "")[:7]))
        if target == "/":
            return httpx.Response(200, content=b"<html><head><title>Milesight Network Camera</title></head></html>")
        if target.startswith("/cgi-bin/admin/admin.cgi"):
            if not check_digest(dev, request.headers.get("authorization"), request.method, "milesight", target):
                return httpx.Response(401, headers={"WWW-Authenticate": digest_challenge(dev, "milesight")})
            return httpx.Response(200, json=info)
        return httpx.Response(404)

    for creds in (None, ("admin", "ms-secret")):
        seen.clear()
        ctx = ProbeContext(timeout=2.0, http_transport=httpx.MockTransport(handler), ports={"http": (80,), "https": ()},
                           credentials=(lambda h, c=creds: c) if creds else None)
        out = asyncio.run(probe_http.probe(dev.ip, ctx))
        got = [d for d in out.get("discovery", []) if d["protocol"] == "milesight"]
        if creds is None:
            assert not got and not [t for t, _ in seen if t.startswith("/cgi-bin/admin/")]
        else:
            assert got and got[0]["fields"]["serial"] == "6221A1234567"
            r = identifier.identify({"id": "m", **out})
            assert r.manufacturer == "Milesight" and r.model == "MS-C2963-PB"
            assert "vendorapi/milesight-system-information" in {e.rule for e in r.evidence}
            assert "ms-secret" not in json.dumps(out)


# ------------------------------------------------------------------ raw answers in an evidence record
RAW_ANSWERS = [
    ("axis-basicdeviceinfo-m1065lw.json", "/axis-cgi/basicdeviceinfo.cgi", "Axis"),
    ("axis-param-brand-properties.txt", "/axis-cgi/param.cgi?action=list&group=root.Brand", "Axis"),
    ("hanwha-sunapi-deviceinfo.txt", "/stw-cgi/system.cgi?msubmenu=deviceinfo&action=view", "Hanwha Vision"),
    ("vivotek-getparam-pt7135.txt", "/cgi-bin/viewer/getparam.cgi?system_info_modelname", "Vivotek"),
    ("uniview-lapi-deviceinfo.json", "/LAPI/V1.0/System/DeviceInfo", "Uniview"),
    ("reolink-rlc822a-getdevinfo.json", "/api.cgi?cmd=GetDevInfo&token=0123abcd", "Reolink"),
]


@pytest.mark.parametrize("name,path,maker", RAW_ANSWERS, ids=[r[0] for r in RAW_ANSWERS])
def test_a_raw_answer_in_an_evidence_record_is_read_as_the_probe_reads_it(identifier, name, path, maker):
    """A record that carries the endpoint's HTTP answer itself (another tool's output, an older scan) is
    read with the probe's own parser: the same maker and the same vendor-API rule as the probe's entry."""
    body = (Path(__file__).resolve().parents[1] / "recordings" / "vendorapi" / name).read_text()
    r = identifier.identify({"id": name, "http": [{"port": 80, "path": path, "status": 200, "body": body}]})
    assert r.manufacturer == maker, (r.manufacturer, [e.rule for e in r.evidence])
    assert any(e.rule.startswith("vendorapi/") for e in r.evidence), [e.rule for e in r.evidence]
    # not on a catch-all server (answers 2xx to a path that cannot exist), and not from an error status
    catch = identifier.identify({"http": [{"port": 80, "path": path, "status": 200, "body": body},
                                          {"port": 80, "path": "/camsweep-0f3a", "status": 200, "body": "x"}]})
    assert not any(e.rule.startswith("vendorapi/") for e in catch.evidence)
    denied = identifier.identify({"http": [{"port": 80, "path": path, "status": 401, "body": body}]})
    assert not any(e.rule.startswith("vendorapi/") for e in denied.evidence)
