"""Device profiles and the fleet builder: determinism, coverage, real MAC blocks, real identity formats."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from scanner.lab.profiles import (
    HOSTILE_KEYS,
    LOCAL_OUI,
    OUIS,
    PROFILE_KEYS,
    PROFILES,
    DeviceSpec,
    build_fleet,
    fleet_ground_truth,
)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "reference"
IEEE = Path("/usr/share/ieee-data/oui.csv")
GROUND_TRUTH_KEYS = {"ip", "mac", "manufacturer", "brand", "model", "device_type", "restricted", "profile",
                     "hostile", "parent_ip", "channel"}
DEVICE_TYPES = {"camera", "ptz", "thermal", "doorbell", "nvr", "dvr", "encoder", "intercom", "printer", "nas",
                "server", "router", "host", None}


def _registry() -> dict[str, str]:
    """OUI (6 hex digits) -> registrant, from the shared reference files, Debian's ieee-data and the IEEE
    registry camsweep ships (fingerprints/data: ieee-data overlaid with the March 2026 snapshot)."""
    from fingerprints import load_database

    db = load_database()
    out: dict[str, str] = {}
    for ouis in OUIS.values():
        for oui in ouis:
            found = db.lookup_oui(":".join(oui[i:i + 2] for i in range(0, 6, 2)) + ":00:00:01")
            if found:
                out[oui] = found[0]
    for name in ("ouis-2026-03.tsv", "oui_prefixes.tsv"):
        path = SHARED / name
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("#") or "\t" not in line:
                continue
            cols = line.split("\t")
            for c in cols[:2]:
                if re.fullmatch(r"[0-9A-F]{6}", c):
                    out[c] = line
    if IEEE.exists():
        for line in IEEE.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split(",", 3)
            if len(parts) > 2 and parts[0] == "MA-L":
                out.setdefault(parts[1], parts[2])
    return out


@pytest.mark.parametrize("seed", [0, 1, 7, 12345])
def test_every_fleet_of_thirty_or_more_holds_every_profile(seed: int) -> None:
    for n in (30, 31, 60, 250):
        kinds = Counter(d.profile for d in build_fleet(n, seed))
        assert set(kinds) == set(PROFILE_KEYS), (n, seed, set(PROFILE_KEYS) - set(kinds))
    assert len(PROFILE_KEYS) <= 30
    assert set(HOSTILE_KEYS) == {"hostile_slow", "hostile_garbage", "hostile_bigbody", "hostile_xmlbomb",
                                 "hostile_reset", "hostile_escape"}


def test_fleet_is_deterministic_for_a_seed_and_differs_between_seeds() -> None:
    a, b, c = build_fleet(80, 3), build_fleet(80, 3), build_fleet(80, 4)
    assert a == b
    assert [d.profile for d in a] != [d.profile for d in c]
    assert len(build_fleet(0, 0)) == 0 and len(build_fleet(5, 0)) == 5


@pytest.mark.parametrize("bad", [-1, 1.5, "10", 70000])
def test_bad_fleet_size_is_a_clear_error(bad: object) -> None:
    with pytest.raises(ValueError, match="fleet size"):
        build_fleet(bad, 0)  # type: ignore[arg-type]


def test_macs_are_unique_and_come_from_the_makers_real_blocks() -> None:
    registry = _registry()
    assert registry, "no OUI registry found"
    for vendor, ouis in OUIS.items():
        for oui in ouis:
            assert oui in registry, f"{vendor} OUI {oui} is not in the IEEE reference files"
    fleet = build_fleet(1000, 5)
    macs = [d.mac for d in fleet]
    channel_macs = [c.mac for d in fleet for c in d.channels]
    assert len(set(macs)) == len(macs)
    assert len(set(macs + channel_macs)) == len(macs) + len(channel_macs)
    for d in fleet:
        oui = d.mac.replace(":", "")[:6].upper()
        if oui == LOCAL_OUI:
            assert d.manufacturer is None and d.hostile  # only devices with no knowable maker
            assert int(oui[:2], 16) & 0x02  # locally administered
        else:
            assert oui in registry
        # low bytes derived from the index
        assert int(d.mac.replace(":", "")[8:], 16) == d.index & 0xFFFF
    # the maker's block, not just any: a Hikvision camera has a Hikvision MAC, an Amcrest one Amcrest's
    for d in fleet:
        p = PROFILES[d.profile]
        if p.oui != "local" and d.profile != "printer" and d.profile != "linux_server":
            assert d.mac.replace(":", "")[:6].upper() in OUIS[p.oui]


def test_identities_follow_the_makers_formats() -> None:
    fleet = build_fleet(400, 11)
    seen = set()
    for d in fleet:
        seen.add(d.profile)
        assert d.device_type in DEVICE_TYPES
        if d.profile in ("hikvision_camera", "hikvision_camera_onvif_off", "lts_camera", "annke_camera"):
            assert re.fullmatch(r"V5\.\d+\.\d+ build \d{6}", d.firmware or "")
            assert re.fullmatch(re.escape(d.model or "") + r"20\d{6}[A-Z]{4}[A-Z]\d{8}", d.serial or "")
        if d.profile == "hikvision_nvr":
            assert d.firmware and d.firmware.startswith("V4.") and d.device_type == "nvr"
        if d.profile == "amcrest_camera":
            assert re.search(r"\d+\.\d+\.\d{2}AC\d", d.firmware or "") and (d.serial or "").startswith("AMC")
        if d.profile == "lorex_camera":
            assert re.search(r"\d+\.\d+\.\d{2}LR\d", d.firmware or "") and re.fullmatch(r"ND\d{12}", d.serial or "")
            assert d.realm == f"Login to {d.serial}"
        if d.profile == "dahua_camera":
            assert re.fullmatch(r"\d[A-Z]\d{4}[A-Z]{4}\d{5}", d.serial or "")
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", d.build)
        if d.profile == "axis_camera":
            assert d.serial == d.mac.replace(":", "").upper() and d.realm.startswith("AXIS_WS_")
        if d.profile == "hikvision_camera_onvif_off":
            assert not d.has("onvif") and not d.has("wsd")
        if d.manufacturer in ("Hikvision", "Dahua", "Huawei"):
            assert d.restricted is True
        if d.manufacturer is None:
            assert d.restricted is None
    assert seen == set(PROFILE_KEYS)


def test_nvr_channels_name_their_cameras_in_ground_truth() -> None:
    fleet = build_fleet(300, 2)
    nvrs = [d for d in fleet if d.device_type == "nvr"]
    assert nvrs and all(d.channels for d in nvrs)
    ips = [f"198.18.{i // 250}.{i % 250 + 2}" for i in range(len(fleet))]
    rows = fleet_ground_truth(fleet, ips)
    assert all(GROUND_TRUTH_KEYS <= set(r) for r in rows)
    by_parent = Counter(r["parent_ip"] for r in rows if r["parent_ip"])
    for d, ip in zip(fleet, ips, strict=True):
        if d.channels:
            assert by_parent[ip] == len(d.channels)
            assert [c.channel for c in d.channels] == list(range(1, len(d.channels) + 1))
    child = next(r for r in rows if r["parent_ip"])
    assert child["ip"] is None and child["channel"] >= 1 and child["hostile"] is False
    assert child["device_type"] in ("camera", "ptz")
    # a Hikvision NVR's cameras sit on its PoE subnet, a Dahua NVR's on 10.1.1.x
    for d in nvrs:
        for c in d.channels:
            assert c.ip.startswith("192.168.254." if d.family == "hikvision" else "10.1.1.")


def test_spec_survives_the_plan_json_round_trip() -> None:
    for d in build_fleet(60, 9):
        entry = json.loads(json.dumps({**d.to_dict(), "netns": None, "ip": "127.18.0.2", "password": "x"}))
        assert DeviceSpec.from_dict(entry) == d
    rows = build_fleet(30, 0)[0].ground_truth("198.18.0.2")
    assert "password" not in json.dumps(rows)


def test_hostile_ground_truth_is_marked() -> None:
    fleet = build_fleet(30, 0)
    hostile = {d.profile: d for d in fleet if d.hostile}
    assert set(hostile) == set(HOSTILE_KEYS)
    assert hostile["hostile_garbage"].manufacturer is None and hostile["hostile_garbage"].restricted is None
    assert hostile["hostile_slow"].manufacturer == "Hikvision"  # it claims to be one, with a Hikvision MAC
    for d in hostile.values():
        assert d.ground_truth("198.18.0.9")[0]["hostile"] is True
