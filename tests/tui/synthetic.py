"""A synthetic but realistic store for the TUI and plan tests: identified devices written through the Store API.

Each profile is a device as a scan would have found it (evidence record) and as the identifier would
have judged it (Identification with the rules that fired), after the tells in
docs/restrictions.md 2.2-2.5 (server strings, OUIs, model codes, Dahua OEM firmware codes).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from scanner.evidence import EvidenceHit, Identification, parse_record
from scanner.store import Store

HOSTILE = "<script>alert(1)</script>[bold red]x[/] \x1b]0;pwned\x07\x1b[31m"


@dataclass(frozen=True)
class Profile:
    key: str
    manufacturer: str | None
    brand: str | None
    model: str | None
    device_type: str | None
    restricted: bool | None
    lists: tuple[str, ...]
    oui: str
    record: dict
    hits: tuple[tuple[str, str, str, str], ...]  # rule, field, value, strength
    firmware: str | None = None
    weight: int = 10


_HIK_LISTS = ("ndaa889", "fcc_covered", "entity_list", "dod_1260h")
_DAH_LISTS = ("ndaa889", "fcc_covered", "entity_list")
_HW_LISTS = ("ndaa889", "fcc_covered", "entity_list", "dod_1260h")

PROFILES: tuple[Profile, ...] = (
    Profile("hik-dome", "Hikvision", "Hikvision", "DS-2CD2143G0-I", "camera", True, _HIK_LISTS, "28:57:be",
            {"http": [{"port": 80, "status": 401, "headers": {"Server": "App-webs/",
                       "WWW-Authenticate": 'Digest realm="IP Camera(C2183)"'}}],
             "onvif": {"manufacturer": "HIKVISION", "model": "DS-2CD2143G0-I", "firmware": "V5.5.82 build 190909"}},
            (("http.server/hikvision-app-webs", "http.headers.server", "App-webs/", "strong"),
             ("oui/hikvision", "mac", "28:57:be", "strong"),
             ("onvif.model/hikvision-ds", "onvif.model", "DS-2CD2143G0-I", "strong")), "V5.5.82 build 190909", 14),
    Profile("hik-bullet", "Hikvision", "Hikvision", "DS-2CD2T43G2-4I", "camera", True, _HIK_LISTS, "c0:56:e3",
            {"http": [{"port": 80, "status": 200, "headers": {"Server": "App-webs/"}, "title": "Login"}],
             "banners": [{"protocol": "telnet", "port": 23, "text": "192.0.0.64 login:"}]},
            (("http.server/hikvision-app-webs", "http.headers.server", "App-webs/", "strong"),
             ("banner.telnet/hikvision-default-ip", "banners.telnet", "192.0.0.64 login:", "medium")),
            "V5.7.3 build 220112", 12),
    Profile("hik-ptz", "Hikvision", "Hikvision", "DS-2DE4425IW-DE", "ptz", True, _HIK_LISTS, "44:19:b6",
            {"http": [{"port": 80, "status": 401, "headers": {"Server": "App-webs/"}}]},
            (("http.server/hikvision-app-webs", "http.headers.server", "App-webs/", "strong"),
             ("sadp/devicetype", "discovery.sadp.devicetype", "DS-2DE4425IW-DE", "proof")), None, 3),
    Profile("hik-nvr", "Hikvision", "Hikvision", "DS-7608NI-K2", "nvr", True, _HIK_LISTS, "bc:ad:28",
            {"http": [{"port": 80, "status": 401, "headers": {"Server": "DNVRS-Webs"}}]},
            (("http.server/hikvision-dnvrs-webs", "http.headers.server", "DNVRS-Webs", "strong"),), None, 2),
    Profile("lts", "Hikvision", "LTS", "CMIP3042", "camera", True, _HIK_LISTS, "4c:bd:8f",
            {"http": [{"port": 80, "status": 401, "headers": {"Server": "App-webs/"}}],
             "discovery": [{"protocol": "sadp", "fields": {"DeviceType": "CMIP3042", "OEMInfo": "LTS"}}]},
            (("http.server/hikvision-app-webs", "http.headers.server", "App-webs/", "strong"),
             ("sadp/oeminfo", "discovery.sadp.oeminfo", "LTS", "proof"),
             ("oui/hikvision", "mac", "4c:bd:8f", "strong")), None, 4),
    Profile("annke-nvr", "Hikvision", "Annke", "N46PCK", "nvr", True, _HIK_LISTS, "54:c4:15",
            {"http": [{"port": 80, "status": 401, "headers": {"Server": "DNVRS-Webs"}}]},
            (("http.server/hikvision-dnvrs-webs", "http.headers.server", "DNVRS-Webs", "strong"),
             ("oui/hikvision", "mac", "54:c4:15", "strong")), None, 1),
    Profile("dahua-bullet", "Dahua", "Dahua", "IPC-HFW2431S-S-S2", "camera", True, _DAH_LISTS, "3c:ef:8c",
            {"rtsp": [{"port": 554, "status": 401, "headers": {"Server": "Dahua Rtsp Server"}}],
             "http": [{"port": 80, "status": 200, "title": "WEB SERVICE"}]},
            (("rtsp.server/dahua", "rtsp.headers.server", "Dahua Rtsp Server", "strong"),
             ("oui/dahua", "mac", "3c:ef:8c", "strong")), "2.800.0000000.24.R", 10),
    Profile("dahua-turret", "Dahua", "Dahua", "IPC-HDW5442TM-AS", "camera", True, _DAH_LISTS, "90:02:a9",
            {"rtsp": [{"port": 554, "status": 401, "headers": {"Server": "Dahua Rtsp Server"}}]},
            (("rtsp.server/dahua", "rtsp.headers.server", "Dahua Rtsp Server", "strong"),), None, 6),
    Profile("amcrest", "Dahua", "Amcrest", "IP8M-2496EB", "camera", True, _DAH_LISTS, "9c:8e:cd",
            {"onvif": {"manufacturer": "Amcrest", "model": "IP8M-2496EB", "firmware": "2.800.00AC001.0.R"}},
            (("onvif.firmware/dahua-oem-code", "onvif.firmware", "2.800.00AC001.0.R", "proof"),
             ("onvif.manufacturer/amcrest", "onvif.manufacturer", "Amcrest", "weak")), "2.800.00AC001.0.R", 4),
    Profile("dahua-xvr", "Dahua", "Dahua", "XVR5108HS", "dvr", True, _DAH_LISTS, "e0:50:8b",
            {"banners": [{"protocol": "telnet", "port": 23, "text": "XVR login:"}],
             "http": [{"port": 80, "status": 200, "title": "WEB SERVICE"}]},
            (("banner.telnet/dahua-xvr", "banners.telnet", "XVR login:", "medium"),
             ("oui/dahua", "mac", "e0:50:8b", "strong")), None, 2),
    Profile("huawei-router", "Huawei", "Huawei", "AR1220", "router", True, _HW_LISTS, "00:e0:fc",
            {"http": [{"port": 443, "tls": True, "status": 200, "title": "Huawei AR"}]},
            (("oui/huawei", "mac", "00:e0:fc", "strong"),), None, 1),
    Profile("axis", "Axis", "Axis", "P1465-LE", "camera", False, (), "00:40:8c",
            {"mdns": [{"type": "_axis-video._tcp.local.", "name": "AXIS P1465-LE - 00408C123456"}]},
            (("mdns.type/axis-video", "mdns.type", "_axis-video._tcp.local.", "strong"),), None, 12),
    Profile("hanwha", "Hanwha Vision", "Wisenet", "XNV-6080R", "camera", False, (), "00:09:18",
            {"onvif": {"manufacturer": "Hanwha Vision", "model": "XNV-6080R"}},
            (("onvif.manufacturer/hanwha", "onvif.manufacturer", "Hanwha Vision", "weak"),), None, 8),
    Profile("unknown-cam", None, None, None, "camera", None, (), "02:11:22",
            {"rtsp": [{"port": 554, "status": 401, "headers": {"Server": "RTSP Server"}}]}, (), None, 6),
    Profile("printer", "HP", "HP", "LaserJet M404", "printer", False, (), "3c:d9:2b",
            {"http": [{"port": 80, "status": 200, "title": "HP LaserJet M404"}]},
            (("http.title/hp-printer", "http.title", "HP LaserJet M404", "medium"),), None, 4),
    Profile("hostile", None, HOSTILE, HOSTILE, None, None, (), "02:66:66",
            {"http": [{"port": 80, "status": 200, "headers": {"Server": HOSTILE}, "title": HOSTILE}]},
            (("http.server/generic", "http.headers.server", HOSTILE, "hint"),), None, 0),
)

SITES = ("HQ", "Depot", None)


def _mac(oui: str, n: int) -> str:
    return f"{oui}:{(n >> 16) & 0xFF:02x}:{(n >> 8) & 0xFF:02x}:{n & 0xFF:02x}"


def fill_store(store: Store, n: int = 40, *, seed: int = 7, hostile: bool = True, scans: int = 1) -> list[int]:
    """Write ``n`` identified devices (one scan, or ``scans`` scans where later ones see a subset again)."""
    rng = random.Random(seed)
    weighted = [p for p in PROFILES for _ in range(p.weight)]
    chosen = [rng.choice(weighted) for _ in range(n - (1 if hostile else 0))]
    if hostile:
        chosen.append(next(p for p in PROFILES if p.key == "hostile"))
    ids: list[int] = []
    for s in range(scans):
        site_for_scan = None
        sid = store.start_scan(["198.18.0.0/16"], options={"rate": 100}, site=site_for_scan, policy="ndaa889")
        for i, p in enumerate(chosen):
            if s > 0 and i % 3:
                continue
            site = SITES[i % len(SITES)]
            ip = f"198.18.{(i // 250) % 256}.{i % 250 + 2}"
            if s > 0 and i % 2 == 0:
                ip = f"198.19.{(i // 250) % 256}.{i % 250 + 2}"  # moved: the note must follow the MAC
            rec = parse_record({"ip": ip, "mac": _mac(p.oui, i + 1), **p.record})
            hits = tuple(EvidenceHit(rule=r, field=f, value=v if f != "mac" else rec.mac or v, strength=st)
                         for r, f, v, st in p.hits)
            ident = Identification(manufacturer=p.manufacturer, brand=p.brand, model=p.model,
                                   firmware=p.firmware if s == 0 else (p.firmware or "") + "-u1" or None,
                                   device_type=p.device_type, restricted=p.restricted, lists=p.lists,
                                   confidence=0.95 if p.manufacturer else 0.2, evidence=hits)
            dev = store.record_device(sid, rec, ident, site=site)
            if s == 0:
                ids.append(dev)
        store.finish_scan(sid)
    return ids


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.tui.synthetic DB [N]``: a store to look at the TUI with (10,000 devices: ~10 s)."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m tests.tui.synthetic DB [N]", file=sys.stderr)
        return 2
    s = Store(args[0])
    fill_store(s, int(args[1]) if len(args) > 1 else 10_000)
    s.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
