"""Derived fields (fingerprints/fields.py): vendor API answers, scopes, stream paths."""

from __future__ import annotations

import json
import subprocess
import sys

from fingerprints.fields import record_fields
from scanner.evidence import parse_record


def _fields(obj: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for k, v in record_fields(parse_record(obj)):
        out.setdefault(k, []).append(v)
    return out


def test_isapi_answer_is_read_without_an_xml_parser() -> None:
    f = _fields({"http": [{"path": "/ISAPI/System/deviceInfo", "status": 200, "body":
                           '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]>'
                           '<DeviceInfo xmlns="http://www.isapi.org/ver20/XMLSchema"><model>DS-2CD2143G0-I</model>'
                           "<firmwareVersion>V5.5.0</firmwareVersion><firmwareReleasedDate>build 160510</firmwareReleasedDate>"
                           "<serialNumber>&e;</serialNumber></DeviceInfo>"}]})
    assert f["http.api"] == ["ISAPI deviceInfo"]
    assert f["http.isapi.xmlns"] == ["http://www.isapi.org/ver20/XMLSchema"]
    assert f["http.isapi.model"] == ["DS-2CD2143G0-I"]
    assert f["http.isapi.firmware"] == ["V5.5.0 build 160510"]
    assert f["http.isapi.serialnumber"] == ["&e;"]  # entities are never expanded
    assert f["http.path_ok"] == ["/ISAPI/System/deviceInfo"]


def test_a_401_is_not_an_api_answer() -> None:
    f = _fields({"http": [{"path": "/ISAPI/System/deviceInfo", "status": 401, "body": "<DeviceInfo>x</DeviceInfo>"}]})
    assert "http.api" not in f and "http.path_ok" not in f


def test_magicbox_key_values() -> None:
    f = _fields({"http": [{"path": "/cgi-bin/magicBox.cgi?action=getSystemInfo",
                           "body": "deviceType=IPC-HDW4631C-A\r\nprocessor=Hi3516\r\nserialNumber=4J0186FPAG00123"}]})
    assert f["http.api"] == ["magicBox getSystemInfo"]
    assert f["http.cgi.devicetype"] == ["IPC-HDW4631C-A"] and f["http.cgi.processor"] == ["Hi3516"]


def test_scopes_rtsp_paths_discovery() -> None:
    f = _fields({"wsd": [{"scopes": ["onvif://www.onvif.org/name/HIKVISION%20DS-2CD",
                                     "onvif://www.onvif.org/location/city/hangzhou"]}],
                 "rtsp": [{"request": "OPTIONS rtsp://h:554/cam/realmonitor?channel=1", "status": 200},
                          {"request": "DESCRIBE rtsp://h/h264Preview_01_main", "status": 200},
                          {"request": "DESCRIBE rtsp://h/secret", "status": 401}],
                 "discovery": [{"protocol": "SADP", "fields": {"DeviceSN": "x"}}, {"protocol": "dhip", "fields": {}}]})
    assert f["wsd.scope.name"] == ["HIKVISION DS-2CD"]
    assert f["wsd.scope.location"] == ["city/hangzhou"]
    assert f["rtsp.path"] == ["/h264Preview_01_main"]  # not the OPTIONS path we chose, not the 401
    assert f["discovery.protocol"] == ["sadp"]


def test_oui_lookup_and_info_commands() -> None:
    r = subprocess.run([sys.executable, "-m", "scanner.cli", "oui", "lookup", "2857.be01.0203", "not-a-mac"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "not a MAC address" in r.stderr
    row = json.loads(r.stdout.splitlines()[0])
    assert row == {"mac": "28:57:be:01:02:03", "registrant": "Hangzhou Hikvision Digital Technology Co.,Ltd.",
                   "maker": "Hikvision"}
    r = subprocess.run([sys.executable, "-m", "scanner.cli", "oui", "info"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and json.loads(r.stdout)["blocks"] > 45000
