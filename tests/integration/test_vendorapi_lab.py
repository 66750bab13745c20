"""Issue 11: a scan of the lab clears every non-restricted camera by its maker's own answer (VAPIX,
SUNAPI, RCP+, getinfo, getparam, camerainfo, LAPI, Reolink api.cgi, Milesight admin.cgi, TP-Link's Tapo
login handshake), with no false alarm; without credentials, the makers whose API answers anonymously
(Axis VAPIX unrestricted properties, Bosch RCP+ 0x0cd4, Reolink's and Tapo's error envelopes) are still
cleared. The random fleet of the session lab holds the first seven; Reolink, Milesight and Tapo are
profiles kept out of random fleets (scanner/lab/profiles.py EXTRA_KEYS), so a lab of one camera of every
non-restricted profile, beside restricted ones, is brought up for them."""

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
    "reolink_camera": ("vendorapi/reolink-api", False),
    "milesight_camera": ("vendorapi/milesight-system-information", True),
    "tapo_camera": ("vendorapi/tplink-tapo-login", False),
}


def _scan(lab, tmp_path, *extra: str) -> list[dict]:
    cmd = ["ip", "netns", "exec", str(lab.scanner_netns), sys.executable, "-m", "scanner.cli", "scan", lab.cidr,
           "--db", str(tmp_path / "s.db"), "--format", "json", "--quiet", *extra]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "Traceback" not in p.stderr
    return json.loads(p.stdout)


@pytest.fixture(scope="module")
def own_api_lab():
    """One camera of every profile in OWN_API (the extras included), a restricted camera of each big maker
    and an ordinary host: a lab of its own (prefix cswt<pid>va), taken down afterwards."""
    import random

    from scanner.lab.profiles import build_device
    from tests.conftest import lab_test_prefix, skip_without_netns, up_test_lab

    skip_without_netns()
    keys = sorted(OWN_API) + ["hikvision_camera", "dahua_camera", "linux_server"]
    fleet = [build_device(k, i, random.Random(f"own-api-{i}-{k}")) for i, k in enumerate(keys)]
    yield from up_test_lab(lab_test_prefix("va"), "lab", len(fleet), 0, fleet=fleet)


@pytest.mark.parametrize("with_credentials", [True, False], ids=["credentials", "anonymous"])
def test_every_non_restricted_camera_is_cleared_by_its_makers_own_answer(lab, tmp_path, with_credentials):
    _check_cleared(lab, tmp_path, with_credentials, at_least=7 if with_credentials else 2)


@pytest.mark.parametrize("with_credentials", [True, False], ids=["credentials", "anonymous"])
def test_every_own_api_profile_is_cleared_in_a_lab_of_one_each(own_api_lab, tmp_path, with_credentials):
    need = sum(1 for _, needs_account in OWN_API.values() if with_credentials or not needs_account)
    _check_cleared(own_api_lab, tmp_path, with_credentials, at_least=need)


def _check_cleared(lab, tmp_path, with_credentials: bool, at_least: int) -> None:
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
    assert checked >= at_least, checked  # a fleet of 30+ holds every profile of PROFILE_KEYS
    assert missing == []
    ip_to_id = {d["ip"]: d["device_id"] for d in devices if not d.get("parent_ip")}
    rows = [{**d, "parent_id": ip_to_id.get(d.get("parent_ip")) if d.get("parent_ip") else None} for d in devices]
    got = compare_with_ground_truth(rows, truth)
    assert got["false_alarms"] == 0, got
    assert got["manufacturer_wrong"] == 0, got
