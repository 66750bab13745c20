"""Hypothesis property tests for every parser of device replies and input files (issue 13, "Also build").

Each parser gets random input and mutated recorded input (bytes flipped, spans deleted or repeated,
junk inserted, the tail cut off). Whatever comes in, the parser gives a result or its own error (None,
an empty list, NmapXmlError, CaptureError, EvidenceError), never another exception, within its time
cap; and what it gives, once it enters the scan (``clean_evidence``), is a valid format-1 record the
store can hold (UTF-8, no lone surrogate) with its text within the record caps.

Parsers already covered elsewhere are not repeated: SNMP and DVRIP (test_snmp_dvrip.py), nmap XML
(test_nmap_answers.py), the vendor API bodies from random input (test_vendorapi.py; their mutated
recordings are here). CI runs CAMSWEEP_FUZZ_EXAMPLES examples per test (default 40);
``python bench/fuzz_parsers.py`` runs the same tests with thousands.
"""

from __future__ import annotations

import json
import os
import struct
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanner.evidence import (
    MAX_LINE,
    MAX_TEXT,
    EvidenceError,
    EvidenceRecord,
    clean_evidence,
    dump_record,
    parse_line,
    parse_record,
)
from scanner.probes import arp, banner, dhip, dvrip, http, httpwire, mdns, onvif, rtsp, sadp, ssdp, tls, wsd
from scanner.probes import vendorapi as va
from scanner.probes.passive import CaptureError, parse_packet, read_pcap
from scanner.probes.safexml import parse_xml
from tests.probes.conftest import recording

EXAMPLES = int(os.environ.get("CAMSWEEP_FUZZ_EXAMPLES", "40"))
TIME_CAP = float(os.environ.get("CAMSWEEP_FUZZ_TIME_CAP", "2.0"))  # seconds per call (generous: CI is shared)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 100,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
RECORDINGS = Path(__file__).resolve().parents[1] / "recordings"
IP = "198.18.0.9"

pytestmark = pytest.mark.timeout(600)


# ---------------------------------------------------------------------------------------------
# inputs


@st.composite
def mutated(draw: Any, base: bytes) -> bytes:
    """``base`` with a few random edits: a byte changed, a span deleted, repeated or replaced by junk,
    the tail cut off; or random bytes of about its length."""
    data = bytearray(base)
    for _ in range(draw(st.integers(0, 8))):
        op = draw(st.sampled_from(("flip", "delete", "repeat", "junk", "cut", "swap-quote")))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 64))]
        elif op == "repeat":
            n = draw(st.integers(1, 64))
            data[pos:pos] = data[pos:pos + n] * draw(st.integers(1, 20))
        elif op == "junk":
            data[pos:pos] = draw(st.binary(max_size=32) | st.sampled_from(
                [b"\\ud800", b"\\udfff\\ud800", b"&lol;", b"<!DOCTYPE x [<!ENTITY a \"b\">]>", b"\x00", b"\r\n\r\n",
                 b"\xff\xfe", b"\xc0\x0c", b"charset=unicode_escape", b"]]>", b"\"", b"{", b"}"]))
        elif op == "cut":
            del data[pos:]
        elif op == "swap-quote":
            data = data.replace(b'"', b"'", 1)
    return bytes(data[: 4 * max(len(base), 1024)])


def seeds(*names: str) -> list[bytes]:
    return [recording(n) for n in names]


def inputs(*names: str, extra: tuple[bytes, ...] = ()) -> st.SearchStrategy[bytes]:
    bases = seeds(*names) + list(extra)
    return st.one_of(st.binary(max_size=2048), *(mutated(b) for b in bases))


# ---------------------------------------------------------------------------------------------
# properties


def _timed(fn: Any, *args: Any, **kw: Any) -> Any:
    t = time.monotonic()
    try:
        return fn(*args, **kw)
    finally:
        took = time.monotonic() - t
        assert took < TIME_CAP, f"{getattr(fn, '__name__', fn)} took {took:.2f} s"


def _enters_the_scan(fragment: dict) -> EvidenceRecord:
    """What the engine does with a probe's fragment: clean its text, read it as a record; the result
    must be storable (strict UTF-8) and within the record caps."""
    assert isinstance(fragment, dict)
    rec = parse_record({"ip": IP, **{k: v for k, v in clean_evidence(fragment).items() if k not in ("ip", "id")}})
    line = dump_record(rec)
    line.encode("utf-8")  # storable: no lone surrogate
    assert len(line) < MAX_LINE
    for _, value in rec.iter_fields():
        assert len(value) <= MAX_TEXT
    return rec


def _parse_enters_the_scan(parse: Any, *args: Any, key: str | None = None, **kw: Any) -> None:
    """``parse`` within its time cap gives None or a fragment that enters the scan (``{key: [entry]}`` for
    a parser that gives one entry of a protocol's list)."""
    out = _timed(parse, *args, **kw)
    if out is not None:
        _enters_the_scan({key: [out]} if key else out)


def _discovery(d: dict | None) -> None:
    """A {"protocol", "fields"} discovery entry (DHIP, SADP, vendor APIs ...) enters as one."""
    if d is None:
        return
    assert isinstance(d["protocol"], str) and isinstance(d["fields"], dict)
    _enters_the_scan({"discovery": [d]})


# ---------------------------------------------------------------------------------------------
# WS-Discovery, SADP, SSDP, ONVIF (XML)


@FUZZ
@given(inputs("wsd/hikvision-ds2cd3955-probematch.xml", "wsd/dahua-ipc-hfw2228m-hello.xml"))
def test_wsd(data):
    _parse_enters_the_scan(wsd.parse_wsd, data)


@FUZZ
@given(inputs("sadp/hikvision-ds2cd2385g1-probematch.xml"))
def test_sadp(data):
    _parse_enters_the_scan(sadp.parse_sadp, data)


@FUZZ
@given(inputs("ssdp/amcrest-msearch-response.http", "ssdp/amcrest-notify.http"))
def test_ssdp_announcements(data):
    _parse_enters_the_scan(ssdp.parse_ssdp, data)


@FUZZ
@given(inputs("ssdp/amcrest-description.xml"))
def test_ssdp_description(data):
    out = _timed(ssdp.parse_description, data)
    if out is not None:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in out.items())
        _enters_the_scan({"ssdp": [{"description": out}]})


@FUZZ
@given(inputs("onvif/hikvision-getdeviceinformation.xml", "onvif/getsystemdateandtime.xml",
              "onvif/notauthorized-fault.xml"))
def test_onvif_replies(data):
    info = _timed(onvif.parse_device_information, data)
    fault = _timed(onvif.parse_fault, data)
    when = _timed(onvif.parse_system_date_and_time, data)
    _enters_the_scan({"onvif": {**(info or {}), "fault": fault or {}, "system_date_time": when or {}}})
    _timed(parse_xml, data)  # the safe XML reader under all of them


# ---------------------------------------------------------------------------------------------
# DHIP (JSON inside a binary header), with lone surrogate escapes among the mutations


def _dhip(body: bytes) -> bytes:
    n = len(body)
    return struct.pack("<I", 0x20) + b"DHIP" + struct.pack("<IIIIII", 0, 0, n, n, n, n) + body


_JSON_TEXT = st.text(max_size=40) | st.sampled_from(["\\ud800", "a\\udfffb", "\\udbff\\udbff", "\\u0000"])


@FUZZ
@given(inputs("dhip/dahua-ipc-hdw1431t1-s4-reply.bin", "dhip/intelbras-ss3530-reply.bin"))
def test_dhip_bytes(data):
    _parse_enters_the_scan(dhip.parse_dhip, data)


@FUZZ
@given(st.dictionaries(st.sampled_from(["DeviceType", "SerialNo", "Vendor", "MachineName", "Version", "X"]),
                       _JSON_TEXT, max_size=6))
def test_dhip_names_with_surrogate_escapes(fields):
    # the JSON text is written by hand so that "\udXXX" escapes reach the parser as the device sent them
    body = ('{"mac":"3c:ef:8c:00:00:01","method":"client.notifyDevInfo","params":{"deviceInfo":{'
            + ",".join(f'"{k}":"{v.replace(chr(34), "")}"' for k, v in fields.items()) + "}}}").encode("utf-8", "replace")
    _parse_enters_the_scan(dhip.parse_dhip, _dhip(body))


# ---------------------------------------------------------------------------------------------
# RTSP and HTTP: heads, whole responses, bodies


@FUZZ
@given(inputs("rtsp/hikvision-describe-200-sdp.rtsp", "rtsp/dahua-describe-401-realm.rtsp",
              "rtsp/dahua-options-200.rtsp", "rtsp/hikvision-describe-401.rtsp"))
def test_rtsp(data):
    _parse_enters_the_scan(rtsp.parse_rtsp_response, data, key="rtsp")


@FUZZ
@given(inputs("http/hikvision-401-app-webs.http", "http/dahua-webs-root.http", "http/hikvision-doc-page-login.http"))
def test_http_heads(data):
    head = data.split(b"\r\n\r\n", 1)[0]
    try:
        status, reason, headers = _timed(httpwire.parse_head, head)
    except ValueError:
        return  # its own error: "not an HTTP status line", "too many headers"
    assert 100 <= status <= 999 and len(headers) <= httpwire.MAX_HEADERS


@FUZZ
@given(inputs("http/hikvision-401-app-webs.http", "http/dahua-webs-root.http", "http/hikvision-doc-page-login.http",
              extra=(b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=unicode_escape\r\n\r\n"
                     b"<meta charset='raw_unicode_escape'><title>\\ud800</title>\\udc00",)))
def test_http_responses(data):
    _parse_enters_the_scan(http.parse_http_response, data, key="http")


@FUZZ
@given(status=st.one_of(st.none(), st.integers(0, 999)),
       headers=st.lists(st.tuples(st.text(max_size=30), st.text(max_size=200) | st.sampled_from(
           ["text/html; charset=unicode_escape", "text/html; charset=utf-7", "text/html; charset=gbk",
            "text/html; charset=\"iso-8859-1\"", "text/html; charset=hex"])), max_size=12),
       body=inputs("http/hikvision-doc-page-login.http", "http/dahua-webs-root.http"))
def test_http_entries_from_split_responses(status, headers, body):
    entry = _timed(http.build_http_entry, status, headers, body, port=80, tls=False)
    _enters_the_scan({"http": [entry]})


@FUZZ
@given(inputs("http/hikvision-isapi-deviceinfo-ds2cd2t43g2.xml", "http/hikvision-nvr-inputproxy-channels.xml",
              "http/lorex-magicbox-getsysteminfo.txt", "http/dahua-nvr-remotedevice.txt",
              "http/dahua-rpc2-login-challenge.json"))
def test_http_vendor_bodies(data):
    _discovery(_timed(http.parse_isapi_device_info, data))
    _discovery(_timed(http.parse_magicbox, data))
    _discovery(_timed(http.parse_rpc2_login, data))
    chans = _timed(http.parse_hik_channels, data) + _timed(http.parse_dahua_remote_devices, data)
    assert isinstance(chans, list)
    for c in chans:
        _discovery(c)


_VENDOR = {
    "axis-basicdeviceinfo-m1065lw.json": va.parse_vapix_basicdeviceinfo,
    "axis-param-brand-properties.txt": va.parse_vapix_param,
    "hanwha-sunapi-deviceinfo.txt": va.parse_sunapi_deviceinfo,
    "bosch-rcp-0x0cd4.xml": va.parse_rcp, "bosch-rcp-err-0x40.xml": va.parse_rcp,
    "vivotek-getparam-pt7135.txt": va.parse_vivotek_getparam,
    "uniview-lapi-deviceinfo.json": va.parse_lapi_deviceinfo,
    "ipro-getinfo.txt": va.parse_ipro_getinfo,
    "mobotix-camerainfo.html": va.parse_mobotix_camerainfo,
    "reolink-rlc822a-getdevinfo.json": va.parse_reolink, "reolink-please-login-first.json": va.parse_reolink,
    "hikvision-isapi-deviceinfo-std-cgi.xml": http.parse_isapi_device_info,
}


@pytest.mark.parametrize("name", sorted(_VENDOR))
@FUZZ
@given(data=st.data())
def test_vendor_api_bodies_mutated(name, data):
    body = data.draw(mutated(recording(f"vendorapi/{name}")))
    _discovery(_timed(_VENDOR[name], body))


# ---------------------------------------------------------------------------------------------
# mDNS, TLS, banners, ARP, DVRIP (binary)


def _mdns_reply() -> bytes:
    import socket

    from zeroconf import DNSAddress, DNSOutgoing, DNSPointer, DNSService, DNSText
    from zeroconf import const as C

    out = DNSOutgoing(C._FLAGS_QR_RESPONSE | C._FLAGS_AA)
    inst = "AXIS M1065-LW - ACCC8E000001._axis-video._tcp.local."
    out.add_answer_at_time(DNSPointer("_axis-video._tcp.local.", C._TYPE_PTR, C._CLASS_IN, 4500, inst), 0)
    out.add_additional_answer(DNSService(inst, C._TYPE_SRV, C._CLASS_IN_UNIQUE, 120, 0, 0, 80, "axis-1.local."))
    out.add_additional_answer(DNSText(inst, C._TYPE_TXT, C._CLASS_IN_UNIQUE, 4500,
                                      b"\x17macaddress=ACCC8E000001\x06path=/"))
    out.add_additional_answer(DNSAddress("axis-1.local.", C._TYPE_A, C._CLASS_IN_UNIQUE, 120,
                                         socket.inet_aton("198.18.0.9")))
    return out.packets()[0]


@FUZZ
@given(st.one_of(st.binary(max_size=1500), mutated(_mdns_reply())))
def test_mdns(data):
    _parse_enters_the_scan(mdns.parse_mdns, data)


_CERT: list[bytes] = []


def _cert_der() -> bytes:
    if not _CERT:
        from tests.probes.test_parsers import _self_signed

        cert, _, serialization = _self_signed()
        _CERT.append(cert.public_bytes(serialization.Encoding.DER))
    return _CERT[0]


@FUZZ
@given(data=st.data())
def test_tls_certificates(data):
    der = data.draw(st.one_of(st.binary(max_size=1500), mutated(_cert_der())))
    _parse_enters_the_scan(tls.parse_certificate, der, key="tls")


@FUZZ
@given(data=inputs("banner/hikvision-sdk-8000.bin", "banner/hikvision-telnet.bin",
                   extra=(b"SSH-2.0-OpenSSH_9.2p1\r\n", b"\x1b]0;pwned\x07\x1b[2Jlogin: ")),
       port=st.sampled_from([21, 22, 23, 8000, 37777, 9100, None]))
def test_banners(data, port):
    _parse_enters_the_scan(banner.parse_banner, data, port=port, key="banners")


_ARP_REPLY = bytes.fromhex("ffffffffffff" "2857be010203" "0806" "0001" "0800" "06" "04" "0002" "2857be010203" "c6120009"
                           "000000000000" "c6120001")


@FUZZ
@given(st.one_of(st.binary(max_size=80), mutated(_ARP_REPLY)))
def test_arp_frames(frame):
    _parse_enters_the_scan(arp.parse_arp_frame, frame)


@FUZZ
@given(st.one_of(st.binary(max_size=600), mutated(dvrip.build_message(1020, {
    "Name": "SystemInfo", "Ret": 100, "SessionID": "0x00000001",
    "SystemInfo": {"HardWare": "HI3516EV300_85H50AI", "SoftWareVersion": "V5.00.R02", "SerialNo": "a166379674a3b447"}}))))
def test_dvrip_mutated_replies(data):
    got = _timed(dvrip.parse_dvrip, data)
    assert got is None or isinstance(got[2], dict)


# ---------------------------------------------------------------------------------------------
# passive packets and pcap files


def _pcap_packets() -> list[bytes]:
    from scapy.utils import rdpcap

    return [bytes(p) for p in rdpcap(str(RECORDINGS / "pcap" / "lab-discovery.pcap"))[:40]]


_PACKETS: list[bytes] = []


def _packets() -> list[bytes]:
    if not _PACKETS:
        _PACKETS.extend(_pcap_packets())
    return _PACKETS


@FUZZ
@given(data=st.data())
def test_passive_packets(data):
    from scapy.layers.l2 import Ether

    base = data.draw(st.sampled_from(_packets()))
    frame = data.draw(st.one_of(mutated(base), st.binary(max_size=600)))
    try:
        pkt = Ether(frame)
    except Exception:
        return  # scapy itself refused the bytes: nothing reaches the parser
    for frag in _timed(parse_packet, pkt):
        _enters_the_scan(frag)


@FUZZ
@given(data=st.data())
def test_pcap_files(tmp_path, data):
    base = (RECORDINGS / "pcap" / "lab-discovery.pcap").read_bytes()
    raw = data.draw(st.one_of(mutated(base[:4096]), mutated(base), st.binary(max_size=512)))
    path = tmp_path / "x.pcap"
    path.write_bytes(raw)
    try:
        records = _timed(read_pcap, str(path))
    except CaptureError as exc:
        assert str(exc)
        return
    for r in records:
        _enters_the_scan(r)


# ---------------------------------------------------------------------------------------------
# the evidence JSONL reader


_LINES = [
    json.dumps({"ip": "10.0.0.1", "mac": "28:57:be:01:02:03", "http": [{"port": 80, "status": 401, "headers": {
        "Server": "App-webs/", "WWW-Authenticate": 'Digest realm="IP Camera(C2183)"'}, "title": "x"}],
        "onvif": {"manufacturer": "HIKVISION", "model": "DS-2CD2143G0-I", "serial": "S1"},
        "rtsp": [{"port": 554, "status": 200, "headers": {"Server": "Rtsp Server/3.0"}}]}),
    json.dumps({"ip": "10.0.0.2", "discovery": [{"protocol": "dhip", "fields": {"DeviceType": "IPC-HDW"}}],
                "mdns": [{"type": "_http._tcp.local.", "txt": {"k": "v"}}], "tls": [{"port": 443, "subject": "CN=x"}],
                "banners": [{"protocol": "telnet", "port": 23, "text": "login:", "hex": "6c6f67"}],
                "dhcp": {"vendor_class": "udhcp 1.2"}, "wsd": [{"scopes": "onvif://www.onvif.org/name/x"}]}),
]


@FUZZ
@given(st.one_of(st.text(max_size=400),
                 st.sampled_from(_LINES).flatmap(lambda line: mutated(line.encode())).map(
                     lambda b: b.decode("utf-8", "replace")),
                 st.sampled_from(_LINES).map(lambda line: line.replace('"x"', '"\\ud800"')),
                 st.integers(4000, 5000).map(lambda n: '{"ip": "10.0.0.1", "port": ' + "9" * n + "}")))
def test_evidence_jsonl_reader(line):
    try:
        rec = _timed(parse_line, line)
    except EvidenceError as exc:
        assert str(exc)
        return
    dump_record(rec).encode("utf-8")  # a record it accepts can be stored and written out


def test_tls_name_of_an_unknown_string_type_is_refused_not_raised():
    # found by test_tls_certificates: a CommonName whose string tag is 0 raised KeyError on access
    der = _cert_der().replace(b"\x06\x03U\x04\x03\x0c", b"\x06\x03U\x04\x03\x00", 1)
    assert der != _cert_der()
    assert tls.parse_certificate(der) is None
