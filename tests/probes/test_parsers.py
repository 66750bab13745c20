"""Recorded bytes in, evidence out: every pure parser, on real replies and on hostile input."""

from __future__ import annotations

import os
import random
import struct
import time

import pytest

from scanner.evidence import parse_record
from scanner.probes import banner, dhip, http, mdns, onvif, rtsp, sadp, ssdp, tls, wsd
from scanner.probes.safexml import parse_xml
from tests.probes.conftest import recording

BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><ProbeMatch>&lol9;</ProbeMatch></s:Body></s:Envelope>"""

EXTERNAL = b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><DeviceInfo><model>&x;</model></DeviceInfo>"""


def _as_record(fragment: dict) -> None:
    """Every fragment a probe returns must be a valid format-1 record once it has an ip."""
    parse_record({"ip": "198.18.0.9", **fragment})


# ---------------------------------------------------------------------------------------------- WSD


def test_wsd_hikvision_probematch():
    out = wsd.parse_wsd(recording("wsd/hikvision-ds2cd3955-probematch.xml"))
    assert out["message"] == "ProbeMatch"
    assert out["relates_to"] == "uuid:bfe8bb88-03a2-4e1a-904a-59a7d2882649"
    [e] = out["wsd"]
    assert e["types"] == ["dn:NetworkVideoTransmitter", "tds:Device"]
    assert "onvif://www.onvif.org/hardware/DS-2CD3955FWD-IWS" in e["scopes"]
    assert "onvif://www.onvif.org/name/HIKVISION%20DS-2CD3955FWD-IWS" in e["scopes"]
    assert e["xaddrs"][0] == "http://192.168.0.218/onvif/device_service"
    assert e["endpoint"] == "urn:uuid:18ec6401-3aa0-11b5-83f6-b4a3820fd92d"
    assert e["metadata_version"] == "10"
    _as_record({"wsd": out["wsd"]})


def test_wsd_dahua_hello():
    out = wsd.parse_wsd(recording("wsd/dahua-ipc-hfw2228m-hello.xml"))
    assert out["message"] == "Hello"
    [e] = out["wsd"]
    assert "onvif://www.onvif.org/name/Dahua" in e["scopes"]
    assert "onvif://www.onvif.org/hardware/IPC-HFW2228M-I1-V2" in e["scopes"]
    assert e["endpoint"] == "uuid:503b687a-b9d7-474f-a2d0-a18c8b25a464"


def test_wsd_probe_builds_and_is_not_a_match():
    p = wsd.build_probe("tds:Device", message_id="abc")
    assert b"<d:Types>tds:Device</d:Types>" in p and b"uuid:abc" in p
    assert parse_xml(p) is not None
    assert wsd.parse_wsd(p) is None  # a Probe is not an answer


def test_wsd_entity_bomb_refused_fast():
    t = time.monotonic()
    assert wsd.parse_wsd(BOMB) is None
    assert parse_xml(EXTERNAL) is None
    assert time.monotonic() - t < 0.5


# --------------------------------------------------------------------------------------------- HTTP


def test_http_hikvision_401_realm_and_title():
    e = http.parse_http_response(recording("http/hikvision-401-app-webs.http"), port=80)
    assert e["status"] == 401
    assert e["headers"]["Server"] == "App-webs/"
    assert e["title"] == "Document Error: Unauthorized"
    rec = parse_record({"ip": "198.18.0.9", "http": [e]})
    assert rec.http[0].realm == "IP Camera(C2183)"
    assert ("http.headers.server", "App-webs/") in list(rec.iter_fields())


def test_http_dahua_webs_bom_body_and_title():
    e = http.parse_http_response(recording("http/dahua-webs-root.http"), port=80)
    assert e["headers"]["Server"] == "Webs"
    assert e["title"] == "WEB SERVICE"
    assert e["body"].startswith("\ufeff<!DOCTYPE html")


def test_http_title_entities_and_whitespace():
    assert http.parse_title(b"<html><TITLE>\n  Lorex &amp; Co\t </TITLE>") == "Lorex & Co"
    assert http.parse_title(b"no title here") == ""
    assert http.parse_title("<title>\u00e9cran</title>") == "\u00e9cran"


def test_http_headers_capped_and_folded():
    raw = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(500)) + \
        b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n" + b"X-Long: " + b"A" * 100000 + b"\r\n\r\nbody"
    e = http.parse_http_response(raw)
    assert len(e["headers"]) <= http.MAX_HEADERS
    assert all(len(v) <= http.MAX_HEADER_VALUE for v in e["headers"].values())
    e2 = http.build_http_entry(200, [("Set-Cookie", "a=1"), ("set-cookie", "b=2")], b"", port=80, tls=False)
    assert e2["headers"] == {"Set-Cookie": "a=1, b=2"}


def test_http_isapi_device_info_fields():
    d = http.parse_isapi_device_info(recording("http/hikvision-isapi-deviceinfo-ds2cd2t43g2.xml"))
    assert d["protocol"] == "isapi"
    f = d["fields"]
    assert f["model"] == "DS-2CD2T43G2-4I"
    assert f["serialNumber"] == "DS-2CD2T43G2-4I20210105AAWRF30001259"
    assert f["firmwareVersion"] == "V5.7.18"
    assert f["macAddress"] == "2c:a5:9c:0b:c9:7e"
    rec = parse_record({"ip": "198.18.0.9", "discovery": [d]})
    assert ("discovery.isapi.model", "DS-2CD2T43G2-4I") in list(rec.iter_fields())
    assert http.parse_isapi_device_info(b"<ResponseStatus><statusCode>4</statusCode></ResponseStatus>") is None
    assert http.parse_isapi_device_info(EXTERNAL) is None


def test_http_magicbox_lorex_relabel():
    d = http.parse_magicbox(recording("http/lorex-magicbox-getsysteminfo.txt"), b"vendor=Lorex\r\n",
                            b"<html><body>404</body></html>")
    f = d["fields"]
    assert f["updateSerial"] == "DHI-NVR4108HS-8P-4KS2"
    assert f["deviceType"] == "31"
    assert f["vendor"] == "Lorex"
    rec = parse_record({"ip": "198.18.0.9", "discovery": [d]})
    assert ("discovery.magicbox.updateserial", "DHI-NVR4108HS-8P-4KS2") in list(rec.iter_fields())
    assert http.parse_magicbox(b"<html>Error 401</html>") is None


def test_http_rpc2_login_challenge():
    d = http.parse_rpc2_login(recording("http/dahua-rpc2-login-challenge.json"))
    assert d["protocol"] == "rpc2"
    assert d["fields"]["realm"] == "Login to 4X02345PAJ9A82F"
    assert d["fields"]["error_code"] == "268632079"
    assert "authorization" not in d["fields"] and "random" not in d["fields"]
    assert http.parse_rpc2_login(b"[" * 10000 + b"]" * 10000) is None  # nesting bomb refused
    assert http.parse_rpc2_login(b"not json") is None


def test_http_nvr_channels_hikvision_and_dahua():
    hik = http.parse_hik_channels(recording("http/hikvision-nvr-inputproxy-channels.xml"))
    assert [c["fields"]["channel"] for c in hik] == ["1", "2"]
    first = hik[0]["fields"]
    assert first["model"] == "DS-2CD2143G0-I" and first["serial"].startswith("DS-2CD2143G0-I2019")
    assert first["ip"] == "192.168.254.2" and first["manufacturer"] == "Hikvision"
    assert hik[1]["fields"]["protocol"] == "ONVIF" and "manufacturer" not in hik[1]["fields"]
    dh = http.parse_dahua_remote_devices(recording("http/dahua-nvr-remotedevice.txt"))
    assert len(dh) == 1  # the disabled, empty slot is skipped
    f = dh[0]["fields"]
    assert f == {"channel": "1", "model": "IPC-HDW1431T1-S4", "serial": "6C01E93PAG69A7D",
                 "firmware": "2.800.0000000.13.R", "manufacturer": "Private", "ip": "192.168.1.108",
                 "name": "6C01E93PAG69A7D"}
    assert all("Password" not in str(c) for c in dh)
    _as_record({"discovery": hik + dh})


# --------------------------------------------------------------------------------------------- RTSP


def test_rtsp_dahua_options():
    e = rtsp.parse_rtsp_response(recording("rtsp/dahua-options-200.rtsp"), port=554, request="OPTIONS x")
    assert e["status"] == 200 and e["headers"]["Server"] == "Dahua Rtsp Server"
    assert "DESCRIBE" in e["headers"]["Public"]


def test_rtsp_realms():
    e = rtsp.parse_rtsp_response(recording("rtsp/hikvision-describe-401.rtsp"))
    assert e["status"] == 401
    assert parse_record({"ip": "1.2.3.4", "rtsp": [e]}).rtsp[0].realm == "Hikvision"
    e2 = rtsp.parse_rtsp_response(recording("rtsp/dahua-describe-401-realm.rtsp"))
    assert parse_record({"ip": "1.2.3.4", "rtsp": [e2]}).rtsp[0].realm.startswith("Login to ")


def test_rtsp_describe_sdp():
    e = rtsp.parse_rtsp_response(recording("rtsp/hikvision-describe-200-sdp.rtsp"))
    assert e["body"].startswith("v=0") and "s=HikvisionDS-2CD2032-I" in e["body"]
    sdp = rtsp.parse_sdp(e["body"])
    assert sdp["session"] == "HikvisionDS-2CD2032-I" and sdp["tool"].startswith("LIVE555")
    assert e["sdp"] == sdp


def test_rtsp_http_answer_and_junk():
    e = rtsp.parse_rtsp_response(b"HTTP/1.0 501 Not Implemented\r\nAllow: GET\r\n\r\n")
    assert e["status"] == 501 and e["protocol"] == "http"
    assert rtsp.parse_rtsp_response(b"\x00\x01\x02") is None
    assert rtsp.parse_rtsp_response(b"") is None


# ---------------------------------------------------------------------------------------- SADP/DHIP


def test_sadp_probematch():
    out = sadp.parse_sadp(recording("sadp/hikvision-ds2cd2385g1-probematch.xml"))
    f = out["discovery"][0]["fields"]
    assert f["DeviceDescription"] == "DS-2CD2385G1-I"
    assert f["DeviceSN"] == "DS-2CD2385G1-I20200414AAWRE33842150"
    assert f["SoftwareVersion"] == "V5.6.2build 190701"
    assert "Salt" not in f  # an owner's secret, not a device fact
    assert out["mac"] == "58:50:ed:1f:e3:85" and out["ip"] == "192.168.124.40"
    _as_record(out)
    assert sadp.parse_sadp(sadp.build_inquiry()) is None


def test_dhip_reply_and_relabel_vendor():
    out = dhip.parse_dhip(recording("dhip/dahua-ipc-hdw1431t1-s4-reply.bin"))
    f = out["discovery"][0]["fields"]
    assert f["DeviceType"] == "IPC-HDW1431T1-S4" and f["Vendor"] == "Private"
    assert f["SerialNo"] == "6C01E93PAG69A7D" and f["IPAddress"] == "192.168.124.17"
    assert out["mac"] == "08:ed:ed:87:42:7a"
    out2 = dhip.parse_dhip(recording("dhip/intelbras-ss3530-reply.bin"))
    assert out2["discovery"][0]["fields"]["Manufacturer"] == "Intelbras"
    _as_record(out)


def test_dhip_search_header_and_rejects():
    s = dhip.build_search()
    assert s[:8] == b"\x20\x00\x00\x00DHIP"
    n = struct.unpack_from("<I", s, 16)[0]
    assert n == struct.unpack_from("<I", s, 24)[0] == len(s) - 32
    assert dhip.parse_dhip(s) is None
    assert dhip.parse_dhip(b"\x20\x00\x00\x00DHIP" + b"\x00" * 24 + b"{" * 5000) is None
    assert dhip.parse_dhip(b"XXXX") is None


# -------------------------------------------------------------------------------------------- banners


def test_banner_hikvision_sdk_hex():
    e = banner.parse_banner(recording("banner/hikvision-sdk-8000.bin"), port=8000)
    assert e == {"protocol": "tcp", "port": 8000, "hex": "000000100000001e0000001e00000000"}


def test_banner_telnet_negotiation_stripped():
    data = recording("banner/hikvision-telnet.bin")
    text, reply = banner.strip_telnet(data)
    assert text.strip() == b"192.0.0.64 login:"
    assert reply == bytes((255, 252, 1, 255, 252, 31, 255, 254, 1, 255, 254, 3))
    e = banner.parse_banner(data, port=23)
    assert e["protocol"] == "telnet" and e["text"].strip() == "192.0.0.64 login:"


def test_banner_terminal_escapes_kept():
    e = banner.parse_banner(b"\x1b[31mSSH-2.0-dropbear\x1b[0m\r\n", port=22)
    assert e["text"] == "\x1b[31mSSH-2.0-dropbear\x1b[0m"  # kept as received; renderers escape


# ---------------------------------------------------------------------------------------- SSDP/mDNS


def test_ssdp_response_notify_description():
    r = ssdp.parse_ssdp(recording("ssdp/amcrest-msearch-response.http"))
    assert r["kind"] == "response" and r["headers"]["SERVER"] == "Linux, UPnP/1.0, Private Upnp SDK"
    n = ssdp.parse_ssdp(recording("ssdp/amcrest-notify.http"))
    assert n["kind"] == "notify" and n["headers"]["X-User-Agent"] == "redsonic"
    d = ssdp.parse_description(recording("ssdp/amcrest-description.xml"))
    assert d["manufacturer"] == "Amcrest" and d["modelName"] == "IP2M-841B"
    assert ssdp.parse_description(BOMB) is None
    assert ssdp.parse_ssdp(ssdp.build_msearch()) is None  # a search is not an answer


def _mdns_packet() -> bytes:
    import socket

    from zeroconf import DNSAddress, DNSOutgoing, DNSPointer, DNSService, DNSText, const

    name = "AXIS M1065-LW - 00408C123456._axis-video._tcp.local."
    out = DNSOutgoing(const._FLAGS_QR_RESPONSE | const._FLAGS_AA)
    out.add_answer_at_time(DNSPointer("_axis-video._tcp.local.", const._TYPE_PTR, const._CLASS_IN, 4500, name), 0)
    out.add_answer_at_time(DNSService(name, const._TYPE_SRV, const._CLASS_IN, 120, 0, 0, 80,
                                      "axis-00408c123456.local."), 0)
    out.add_answer_at_time(DNSText(name, const._TYPE_TXT, const._CLASS_IN, 4500, b"\x17macaddress=00408C123456"), 0)
    out.add_answer_at_time(DNSAddress("axis-00408c123456.local.", const._TYPE_A, const._CLASS_IN, 120,
                                      socket.inet_aton("198.18.0.5")), 0)
    return out.packets()[0]


def test_mdns_packet():
    out = mdns.parse_mdns(_mdns_packet())
    [e] = out["mdns"]
    assert e["type"] == "_axis-video._tcp.local." and e["port"] == 80
    assert e["txt"] == {"macaddress": "00408C123456"} and e["hostname"] == "axis-00408c123456.local."
    assert out["ip"] == "198.18.0.5"
    _as_record(out)
    assert mdns.parse_mdns(b"\x00\x00\x84\x00\x00\x00\x00\x05garbage") is None


# --------------------------------------------------------------------------------------------- ONVIF


def test_onvif_device_information_and_time_and_fault():
    d = onvif.parse_device_information(recording("onvif/hikvision-getdeviceinformation.xml"))
    assert d == {"manufacturer": "HIKVISION", "model": "DS-2DF7286-A", "firmware": "V5.1.8 build 140616",
                 "serial": "DS-2DF7286-A20140705CCWR471699220B", "hardware_id": "88"}
    t = onvif.parse_system_date_and_time(recording("onvif/getsystemdateandtime.xml"))
    assert t == {"date_time_type": "Manual", "time_zone": "CST-8:00:00", "utc": "2026-11-23T08:01:02Z"}
    f = onvif.parse_fault(recording("onvif/notauthorized-fault.xml"))
    assert f["subcode"] == "ter:NotAuthorized" and f["reason"] == "Sender not Authorized"
    assert onvif.parse_device_information(BOMB) is None


# ----------------------------------------------------------------------------------------------- TLS


def _self_signed(cn: str = "198.18.0.2", org: str = "HIKVISION"):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(0x1234).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    return cert, key, serialization


def test_tls_parse_self_signed():
    cert, _key, serialization = _self_signed()
    e = tls.parse_certificate(cert.public_bytes(serialization.Encoding.DER), port=443)
    assert e["subject"] == "CN=198.18.0.2,O=HIKVISION,C=CN" and e["issuer"] == e["subject"]
    assert e["self_signed"] is True and e["serial"] == "1234" and e["not_before"] == "2026-01-01T00:00:00Z"
    assert tls.parse_certificate(b"\x30\x82garbage") is None
    _as_record({"tls": [e]})


# -------------------------------------------------------------------------------------------- fuzzing

PARSERS = [
    lambda b: http.parse_http_response(b), lambda b: http.parse_isapi_device_info(b),
    lambda b: http.parse_magicbox(b), lambda b: http.parse_rpc2_login(b), lambda b: http.parse_hik_channels(b),
    lambda b: http.parse_dahua_remote_devices(b), lambda b: rtsp.parse_rtsp_response(b), wsd.parse_wsd,
    sadp.parse_sadp, dhip.parse_dhip, lambda b: banner.parse_banner(b, port=23), ssdp.parse_ssdp,
    ssdp.parse_description, mdns.parse_mdns, onvif.parse_device_information, onvif.parse_fault,
    lambda b: tls.parse_certificate(b),
]
SEEDS = ["wsd/hikvision-ds2cd3955-probematch.xml", "http/hikvision-401-app-webs.http",
         "dhip/dahua-ipc-hdw1431t1-s4-reply.bin", "sadp/hikvision-ds2cd2385g1-probematch.xml",
         "rtsp/hikvision-describe-200-sdp.rtsp", "banner/hikvision-telnet.bin"]


@pytest.mark.parametrize("seed", SEEDS)
def test_parsers_never_raise_on_mutations(seed):
    rng = random.Random(seed)
    base = recording(seed)
    cases = [b"", os.urandom(64), base[: len(base) // 2], base * 3, b"\xff" * 1000, BOMB]
    for _ in range(40):
        b = bytearray(base)
        for _ in range(rng.randint(1, 12)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        cases.append(bytes(b))
    t = time.monotonic()
    for data in cases:
        for p in PARSERS:
            p(data)  # must not raise
    assert time.monotonic() - t < 20


def test_huge_input_is_refused_or_capped_quickly():
    big = b"<DeviceInfo>" + b"<model>x</model>" * 200000 + b"</DeviceInfo>"
    t = time.monotonic()
    assert http.parse_isapi_device_info(big) is None
    e = http.parse_http_response(b"HTTP/1.1 200 OK\r\n\r\n" + b"a" * (5 * 1024 * 1024))
    assert len(e["body"]) <= http.MAX_BODY_TEXT
    assert time.monotonic() - t < 2


def test_banner_random_binary_is_hex_not_text():
    rng = random.Random(3)
    data = bytes(rng.randrange(256) for _ in range(200))
    e = banner.parse_banner(data, port=8000)
    assert "text" not in e and e["hex"] == data.hex()
    assert banner.parse_banner("caf\u00e9 login: ".encode(), port=2323)["text"] == "caf\u00e9 login: "


def test_mdns_compression_loop_and_lying_counts():
    loop = struct.pack("!HHHHHH", 0, 0x8400, 0, 1, 0, 0) + b"\xc0\x0c" + struct.pack("!HHIH", 12, 1, 120, 2) + b"\xc0\x0c"
    lying = struct.pack("!HHHHHH", 0, 0x8400, 0, 60000, 0, 0) + b"\x00" * 100
    t = time.monotonic()
    assert mdns.parse_mdns(loop) is None and mdns.parse_mdns(lying) is None
    assert time.monotonic() - t < 1


def test_vendor_endpoints_go_to_the_port_serving_the_application():
    from scanner.probes.http import app_port

    targets = [(80, False), (443, True)]
    redirect = ([{"path": "/", "status": 302}], [])
    page = ([{"path": "/", "status": 200}], [])
    assert app_port(targets, [page, page]) == 0  # plain HTTP first
    assert app_port(targets, [redirect, page]) == 1  # port 80 only redirects to HTTPS
    assert app_port(targets, [([], []), page]) == 1  # port 80 closed
    assert app_port(targets, [redirect, ([], [])]) == 0  # only a redirect: still the only web port
    assert app_port(targets, [([], []), ([], [])]) is None
