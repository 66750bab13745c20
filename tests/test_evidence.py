"""The evidence model (scanner/evidence.py): tolerant, bounded reading; dotted fields."""

from __future__ import annotations

import json

import pytest

from scanner.evidence import (
    MAX_ITEMS,
    MAX_TEXT,
    MAX_VALUE,
    EvidenceError,
    Headers,
    dump_record,
    normalize_mac,
    parse_line,
    parse_realm,
    parse_record,
    read_records,
)


@pytest.mark.parametrize("raw", ["28:57:BE:01:02:03", "28-57-be-01-02-03", "2857.be01.0203", "2857be010203",
                                 " 28:57:be:01:02:03 "])
def test_mac_notations(raw: str) -> None:
    assert normalize_mac(raw) == "28:57:be:01:02:03"


@pytest.mark.parametrize("raw", ["28:57:be:01:02", "zz:57:be:01:02:03", "", None, 12, "x" * 100])
def test_not_macs(raw) -> None:
    assert normalize_mac(raw) is None


def test_headers_case_insensitive_but_kept_as_received() -> None:
    h = Headers({"CONNECTION": "close", "Server": "App-webs/"})
    assert h["connection"] == "close" and h.get("SERVER") == "App-webs/" and "server" in h
    assert list(h) == ["CONNECTION", "Server"]
    assert dict(h.lower_items()) == {"connection": "close", "server": "App-webs/"}


def test_realm() -> None:
    assert parse_realm('Digest realm="IP Camera(C2183)", nonce="x"') == "IP Camera(C2183)"
    assert parse_realm("Basic realm=device") == "device"
    assert parse_realm("Bearer") is None


def test_parse_record_tolerates_shapes() -> None:
    rec = parse_record({"id": 7, "mac": "2857.BE01.0203", "http": {"port": "80", "headers": [["Server", "X"]]},
                        "wsd": [{"scopes": "onvif://a onvif://b"}], "onvif": [{"Manufacturer": "HIKVISION"}],
                        "future_key": {"kept": True}})
    assert rec.id == "7" and rec.mac == "28:57:be:01:02:03"
    assert rec.http[0].port == 80 and rec.http[0].headers["server"] == "X"
    assert rec.wsd[0].scopes == ("onvif://a", "onvif://b")
    assert rec.onvif.manufacturer == "HIKVISION"
    assert rec.extra == {"future_key": {"kept": True}}


@pytest.mark.parametrize("obj,msg", [
    ([1], "must be a JSON object"),
    ({"id": "x"}, "no observation"),
    ({"mac": "nonsense"}, "not a MAC"),
    ({"http": "x"}, "must be a list"),
    ({"http": [1]}, "must be an object"),
    ({"http": [{"port": "eighty"}]}, "must be a number"),
    ({"http": [{"headers": [["only-one"]]}]}, "pairs"),
])
def test_parse_record_errors_are_clear(obj, msg) -> None:
    with pytest.raises(EvidenceError, match=msg):
        parse_record(obj)


def test_caps() -> None:
    rec = parse_record({"http": [{"body": "b" * (MAX_TEXT * 2), "title": "t" * (MAX_VALUE * 2),
                                  "headers": {f"h{i}": "v" for i in range(MAX_ITEMS * 2)}}] * (MAX_ITEMS + 5)})
    assert len(rec.http) == MAX_ITEMS
    assert len(rec.http[0].body) == MAX_TEXT and len(rec.http[0].title) == MAX_VALUE
    assert len(rec.http[0].headers) == MAX_ITEMS


def test_iter_fields_names() -> None:
    rec = parse_record({
        "mac": "28:57:be:01:02:03",
        "http": [{"path": "/ISAPI/System/deviceInfo", "status": 200, "headers": {"Server": "App-webs/",
                  "WWW-Authenticate": 'Digest realm="IP Camera(C2183)"'}, "title": "t", "favicon_md5": "ABC"}],
        "rtsp": [{"headers": {"Server": "Dahua Rtsp Server"}}],
        "wsd": [{"types": ["dn:NetworkVideoTransmitter"], "scopes": ["onvif://www.onvif.org/name/X"]}],
        "onvif": {"manufacturer": "M", "model": "DS-2CD"},
        "mdns": [{"type": "_axis-video._tcp.local.", "txt": {"MacAddress": "00408C123456"}}],
        "banners": [{"protocol": "tcp", "hex": "0000"}],
        "dhcp": {"vendor_class": "AXIS,Network Camera,P3343,5.20.3"},
        "discovery": [{"protocol": "SADP", "fields": {"DeviceSN": "X"}}],
    })
    fields = dict(rec.iter_fields())
    assert fields["http.headers.server"] == "App-webs/"
    assert fields["http.realm"] == "IP Camera(C2183)"
    assert fields["http.favicon_md5"] == "abc"
    assert fields["http.path"] == "/ISAPI/System/deviceInfo"
    assert fields["rtsp.headers.server"] == "Dahua Rtsp Server"
    assert fields["wsd.scopes"] == "onvif://www.onvif.org/name/X"
    assert fields["onvif.model"] == "DS-2CD"
    assert fields["mdns.txt.macaddress"] == "00408C123456"
    assert fields["banners.tcp.hex"] == "0000"
    assert fields["dhcp.vendor_class"].startswith("AXIS")
    assert fields["discovery.sadp.devicesn"] == "X"


def test_round_trip_and_merge() -> None:
    rec = parse_record({"id": "x", "ip": "198.18.0.1", "http": [{"port": 80, "headers": {"Server": "S"}}]})
    again = parse_line(dump_record(rec))
    assert again == rec
    other = parse_record({"mac": "00:40:8c:00:00:01", "rtsp": [{"port": 554}]})
    merged = rec.merge(other)
    assert merged.mac == "00:40:8c:00:00:01" and merged.id == "x" and len(merged.rtsp) == 1


def test_read_records_reports_line_numbers() -> None:
    lines = [json.dumps({"ip": "198.18.0.1"}), "", "{bad", json.dumps({"ip": "198.18.0.2"})]
    out = list(read_records(lines))
    assert [n for n, _ in out] == [1, 3, 4]
    assert isinstance(out[1][1], EvidenceError) and "not valid JSON" in str(out[1][1])
