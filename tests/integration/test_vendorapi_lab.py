"""Issue 11: a scan of the lab clears every non-restricted camera by its maker's own answer (VAPIX,
SUNAPI, RCP+, getinfo, getparam, camerainfo, LAPI), with no false alarm; without credentials, the makers
whose API answers anonymously (Axis VAPIX unrestricted properties, Bosch RCP+ 0x0cd4) are still cleared."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from scanner.lab.manager import compare_with_ground_truth

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(600)]

# profile -> the proof rule its maker's own answer fires, and whether that answer needs the account
OWN_API = {
    "axis_camera": ("vendorapi/axis-vapix", False),
    "bosch_camera": ("vendorapi/bosch-rcp", False),
    "hanwha_camera": ("vendorapi/hanwha-sunapi", True),
    "ipro_camera": ("vendorapi/ipro-getinfo", True),
    "vivotek_camera": ("vendorapi/vivotek-getparam", True),
    "mobotix_camera": ("vendorapi/mobotix-camerainfo", True),
    "uniview_camera": ("vendorapi/uniview-lapi-deviceinfo", True),
}


def _scan(lab, tmp_path, *extra: str) -> list[dict]:
    cmd = ["ip", "netns", "exec", str(lab.scanner_netns), sys.executable, "-m", "scanner.cli", "scan", lab.cidr,
           "--db", str(tmp_path / "s.db"), "--format", "json", "--quiet", *extra]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "Traceback" not in p.stderr
    return json.loads(p.stdout)


@pytest.mark.parametrize("with_credentials", [True, False], ids=["credentials", "anonymous"])
def test_every_non_restricted_camera_is_cleared_by_its_makers_own_answer(lab, tmp_path, with_credentials):
    extra = ("--credentials", lab.credentials_file) if with_credentials else ()
    devices = _scan(lab, tmp_path, *extra)
    truth = lab.ground_truth_rows()
    by_ip = {d["ip"]: d for d in devices if not d.get("parent_ip")}
    checked, missing = 0, []
    for t in truth:
        if t.get("parent_ip") or t["profile"] not in OWN_API:
            continue
        rule, needs_account = OWN_API[t["profile"]]
        if needs_account and not with_credentials:
            continue
        d = by_ip.get(t["ip"]) or {}
        rules = {e.get("rule") for e in d.get("evidence", [])}
        checked += 1
        if rule not in rules or d.get("manufacturer") != t["manufacturer"] or d.get("restricted") is True:
            missing.append((t["ip"], t["profile"], t["manufacturer"], d.get("manufacturer"), sorted(rules)))
    assert checked >= (7 if with_credentials else 2), checked  # a fleet of 30+ holds every profile
    assert missing == []
    ip_to_id = {d["ip"]: d["device_id"] for d in devices if not d.get("parent_ip")}
    rows = [{**d, "parent_id": ip_to_id.get(d.get("parent_ip")) if d.get("parent_ip") else None} for d in devices]
    got = compare_with_ground_truth(rows, truth)
    assert got["false_alarms"] == 0, got
    assert got["manufacturer_wrong"] == 0, got
