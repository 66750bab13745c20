"""A realistic identified fleet, written through the store API, for the report and diff tests.

Devices follow published tells (docs/restrictions.md §2): Hikvision `App-webs/` and ONVIF
manufacturer strings, Dahua RTSP server names, relabels (LTS, Amcrest), an Axis unit, an unknown box with
a generic web server, and one hostile device whose headers, title, model and firmware carry markup and
terminal escapes.
"""

from __future__ import annotations

from typing import Any

from scanner.evidence import EvidenceHit, Identification, parse_record
from scanner.store import Store

SCRIPT = "<script>alert(1)</script>"
TERM = "\x1b]0;pwned\x07\x1b[31m"
IMG = '<img src="http://127.0.0.1:9/pwned.png" onerror="alert(2)">'
HOSTILE_SERVER = f"{SCRIPT}{TERM}"
HOSTILE_TITLE = f"{IMG}{SCRIPT} {TERM}Login"


def _hit(rule: str, field: str, value: str, strength: str = "strong") -> EvidenceHit:
    return EvidenceHit(rule=rule, field=field, value=value, strength=strength)


def fleet() -> list[dict[str, Any]]:
    """(record, identification) specs of the baseline scan, in a fixed order."""
    return [
        {"key": "hik", "record": {
            "ip": "198.18.0.11", "mac": "58:50:ed:1f:e3:85",
            "http": [{"port": 80, "status": 401, "headers": {"Server": "App-webs/"}, "title": ""}],
            "onvif": {"manufacturer": "HIKVISION", "model": "DS-2CD2143G0-I",
                      "firmware": "V5.5.82 build 190909", "serial": "DS-2CD2143G0-I20190909AAWRD12345678"}},
         "ident": dict(manufacturer="Hikvision", brand="Hikvision", model="DS-2CD2143G0-I",
                       firmware="V5.5.82 build 190909", device_type="camera", restricted=True,
                       lists=("ndaa889", "fcc_covered"), confidence=0.99,
                       serial="DS-2CD2143G0-I20190909AAWRD12345678",
                       evidence=(_hit("onvif.manufacturer/hikvision", "onvif.manufacturer", "HIKVISION", "proof"),
                                 _hit("http.server/hikvision-app-webs", "http.headers.server", "App-webs/"),
                                 _hit("mac.oui/hikvision", "mac", "58:50:ed:1f:e3:85", "medium")))},
        {"key": "lts", "record": {
            "ip": "198.18.0.12", "mac": "c0:56:e3:44:10:02",
            "http": [{"port": 80, "status": 401, "headers": {"Server": "App-webs/",
                      "WWW-Authenticate": 'Digest realm="IP Camera(C2183)"'}}],
            "onvif": {"manufacturer": "LTS", "model": "CMIP3042", "firmware": "V5.4.5 build 170123"}},
         "ident": dict(manufacturer="Hikvision", brand="LTS", model="CMIP3042", firmware="V5.4.5 build 170123",
                       device_type="camera", restricted=True, lists=("ndaa889", "fcc_covered"), confidence=0.93,
                       evidence=(_hit("http.server/hikvision-app-webs", "http.headers.server", "App-webs/"),
                                 _hit("http.realm/hikvision-ip-camera", "http.realm", "IP Camera(C2183)"),
                                 _hit("onvif.manufacturer/lts-relabel", "onvif.manufacturer", "LTS", "medium")))},
        {"key": "dahua", "record": {
            "ip": "198.18.0.13", "mac": "e0:50:8b:12:34:56",
            "rtsp": [{"port": 554, "status": 401, "headers": {"Server": "Dahua Rtsp Server"}}],
            "onvif": {"manufacturer": "Dahua", "model": "IPC-HDW1230T2", "firmware": "2.800.0000000.16.R",
                      "serial": "6J0F8A2PAZ12345"}},
         "ident": dict(manufacturer="Dahua", brand="Dahua", model="IPC-HDW1230T2", firmware="2.800.0000000.16.R",
                       device_type="camera", restricted=True, lists=("ndaa889", "fcc_covered"), confidence=0.98,
                       serial="6J0F8A2PAZ12345",
                       evidence=(_hit("rtsp.server/dahua", "rtsp.headers.server", "Dahua Rtsp Server", "proof"),
                                 _hit("mac.oui/dahua", "mac", "e0:50:8b:12:34:56", "medium")))},
        {"key": "amcrest", "record": {
            "ip": "198.18.0.14", "mac": "9c:8e:cd:0a:0b:0c",
            "rtsp": [{"port": 554, "status": 401, "headers": {"Server": "Rtsp Server/2.0"}}],
            "http": [{"port": 80, "status": 200, "title": "WEB SERVICE", "headers": {"Server": "Webs"}}]},
         "ident": dict(manufacturer="Dahua", brand="Amcrest", model="IP2M-841", firmware="V2.620.00AC000.0.R",
                       device_type="ptz", restricted=True, lists=("ndaa889",), confidence=0.88,
                       evidence=(_hit("http.title/dahua-web-service", "http.title", "WEB SERVICE"),
                                 _hit("mac.oui/amcrest", "mac", "9c:8e:cd:0a:0b:0c", "medium")))},
        {"key": "axis", "record": {
            "ip": "198.18.0.15", "mac": "00:40:8c:12:34:56",
            "mdns": [{"type": "_axis-video._tcp.local.", "name": "AXIS P3245-LV - 00408C123456",
                      "txt": {"macaddress": "00408C123456"}}]},
         "ident": dict(manufacturer="Axis", brand="Axis", model="P3245-LV", firmware="10.12.182",
                       device_type="camera", restricted=False, confidence=0.97,
                       evidence=(_hit("mdns.type/axis-video", "mdns.type", "_axis-video._tcp.local.", "proof"),))},
        {"key": "nvr", "record": {
            "ip": "198.18.0.20", "mac": "58:50:ed:aa:bb:cc",
            "http": [{"port": 80, "status": 401, "headers": {"Server": "DNVRS-Webs"}}]},
         "ident": dict(manufacturer="Hikvision", brand="Hikvision", model="DS-7608NI-K2", firmware="V4.30.085",
                       device_type="nvr", restricted=True, lists=("ndaa889", "fcc_covered"), confidence=0.95,
                       evidence=(_hit("http.server/hikvision-dnvrs", "http.headers.server", "DNVRS-Webs"),))},
        {"key": "channel", "parent": "nvr", "channel": "1", "record": {
            "ip": "192.168.254.3", "onvif": {"manufacturer": "HIKVISION", "model": "DS-2CD2043G2-I"}},
         "ident": dict(manufacturer="Hikvision", brand="Hikvision", model="DS-2CD2043G2-I", device_type="camera",
                       restricted=True, lists=("ndaa889", "fcc_covered"), confidence=0.9,
                       evidence=(_hit("onvif.manufacturer/hikvision", "onvif.manufacturer", "HIKVISION",
                                      "proof"),))},
        {"key": "unknown", "record": {
            "ip": "198.18.0.30", "mac": "02:11:22:33:44:55",
            "http": [{"port": 80, "status": 200, "headers": {"Server": "Boa/0.94.14rc21"}, "title": "Login"}]},
         "ident": dict(manufacturer=None, brand=None, model=None, device_type="camera", restricted=None,
                       confidence=0.1, evidence=())},
        {"key": "hostile", "record": {
            "ip": "198.18.0.66", "mac": "3c:ef:8c:66:66:66",
            "http": [{"port": 80, "status": 200, "headers": {"Server": HOSTILE_SERVER}, "title": HOSTILE_TITLE}],
            "banners": [{"protocol": "telnet", "port": 23, "text": f"{TERM}login: {SCRIPT}"}]},
         "ident": dict(manufacturer="Dahua", brand="Dahua", model=f"DH-{SCRIPT}", firmware=TERM + "2.6",
                       device_type="camera", restricted=True, lists=("ndaa889",), confidence=0.7,
                       evidence=(_hit("http.server/hostile-test", "http.headers.server", HOSTILE_SERVER),
                                 _hit("http.title/hostile-test", "http.title", HOSTILE_TITLE, "weak"),
                                 _hit("mac.oui/dahua", "mac", "3c:ef:8c:66:66:66", "medium")))},
    ]


def record_scan(store: Store, specs: list[dict[str, Any]], *, site: str = "hq",
                targets: tuple[str, ...] = ("198.18.0.0/24",)) -> tuple[int, dict[str, int]]:
    """Store one finished scan of ``specs``; returns (scan id, {key: device id})."""
    scan_id = store.start_scan(list(targets), options={"rate": 200, "timeout": 2.0}, site=site,
                               fingerprints_version="2026.11.1")
    ids: dict[str, int] = {}
    for spec in specs:
        rec = parse_record(spec["record"])
        ident = Identification(**spec["ident"])
        parent = ids.get(spec["parent"]) if spec.get("parent") else None
        ids[spec["key"]] = store.record_device(scan_id, rec, ident, site=site, parent_id=parent,
                                               channel=spec.get("channel"))
    store.finish_scan(scan_id)
    return scan_id, ids


def add_plans(store: Store, ids: dict[str, int]) -> None:
    store.save_plan(ids["hik"], replacement_class="fixed dome 4MP", suggested_maker="Axis",
                    suggested_model="M3086-V", priority=1, status="planned", public_safety=True,
                    cost_hardware=389.0, cost_labour=180.0, cost_licence=0.0)
    store.save_plan(ids["dahua"], replacement_class="turret 2MP", suggested_maker="Hanwha Vision",
                    suggested_model="QNE-6012R", priority=2, status="ordered",
                    cost_hardware=249.0, cost_labour=150.0, cost_licence=0.0)
    store.save_plan(ids["nvr"], replacement_class="NVR 8ch", suggested_maker="Milestone",
                    suggested_model="Husky IVO 150D", priority=1, status="planned",
                    cost_hardware=1450.0, cost_labour=400.0, cost_licence=120.0)
    store.save_plan(ids["amcrest"], status="exempt", exempt_reason="lab bench unit, not on the network",
                    priority=3, cost_hardware=500.0)
    store.set_note(Store.note_key("3c:ef:8c:66:66:66", ids["hostile"]), f"found in closet {SCRIPT}{TERM}")


def build_sample_store(store: Store) -> tuple[int, dict[str, int]]:
    scan_id, ids = record_scan(store, fleet())
    add_plans(store, ids)
    return scan_id, ids


def second_scan_specs() -> list[dict[str, Any]]:
    """The baseline fleet a week later: one camera added, the Dahua turret re-flashed."""
    specs = fleet()
    for s in specs:
        if s["key"] == "dahua":
            s["ident"]["firmware"] = "2.820.0000000.3.R"
            s["record"]["onvif"]["firmware"] = "2.820.0000000.3.R"
    specs.append({"key": "new_hik", "record": {
        "ip": "198.18.0.16", "mac": "b4:a3:82:0f:d9:2d",
        "onvif": {"manufacturer": "HIKVISION", "model": "DS-2CD3955FWD-IWS", "firmware": "V5.5.0 build 170725"}},
        "ident": dict(manufacturer="Hikvision", brand="Hikvision", model="DS-2CD3955FWD-IWS",
                      firmware="V5.5.0 build 170725", device_type="camera", restricted=True,
                      lists=("ndaa889", "fcc_covered"), confidence=0.97,
                      evidence=(_hit("onvif.manufacturer/hikvision", "onvif.manufacturer", "HIKVISION", "proof"),))})
    return specs
