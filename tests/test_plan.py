"""scanner/plan.py: classification from model codes, catalog and policy filtering, priority, totals, export."""

from __future__ import annotations

import csv
import io
import json

import pytest

from scanner import filters, plan
from scanner.cli import main as cli_main
from scanner.evidence import parse_record
from scanner.store import Store
from tests.tui.synthetic import fill_store


@pytest.mark.parametrize(("device_type", "model", "expected"), [
    # Hikvision DS-2CD<series><form>: docs/restrictions.md 2.2 / 5.2
    ("camera", "DS-2CD2143G0-I", "dome"),
    (None, "DS-2CD2043G0-I", "bullet"),
    (None, "DS-2CD2T43G2-4I", "bullet"),
    (None, "DS-2CD2385G1-I", "turret"),
    (None, "DS-2CD2722FWD-IZS", "dome"),
    (None, "DS-2CD2955FWD-IS", "fisheye"),
    (None, "DS-2CD6365G0-IVS", "fisheye"),
    ("camera", "DS-2DE4425IW-DE", "ptz"),          # the model code wins over a generic device type
    (None, "DS-2DF8425IX-AELW", "ptz"),
    (None, "DS-2CE16D0T-IRF", "analog"),
    ("nvr", "DS-7608NI-K2", "nvr"),
    (None, "DS-7208HQHI-K1", "dvr"),
    (None, "DS-6704HUHI", "encoder"),
    (None, "DS-2TD2617-6/PA", "thermal"),
    (None, "DS-KB6003-WIP", "doorbell"),
    # HiLook
    (None, "IPC-B140H", "bullet"),
    (None, "IPC-T240H", "turret"),
    (None, "PTZ-N4215I-DE", "ptz"),
    # Dahua (and relabels keeping its codes)
    (None, "DH-IPC-HFW2431S-S-S2", "bullet"),
    (None, "IPC-HDW5442TM-AS", "turret"),
    (None, "IPC-HDBW2431E-S", "dome"),
    (None, "IPC-EBW81242", "fisheye"),
    (None, "DH-SD49225XA-HNR", "ptz"),
    (None, "HAC-HFW1200R", "analog"),
    (None, "NVR4108HS-4KS2", "nvr"),
    (None, "XVR5108HS", "dvr"),
    (None, "TPC-BF5421", "thermal"),
    # no model tell: the device type, then words
    ("ptz", "CMIP3042", "ptz"),
    ("camera", "CMIP3042", "camera"),
    ("thermal", "DS-2CD2043G0-I", "thermal"),
    (None, "Outdoor Bullet Cam", "bullet"),
    ("router", "AR1220", "other"),
    (None, None, "other"),
])
def test_classify_replacement(device_type, model, expected):
    assert plan.classify_replacement(device_type, model, None) == expected


def test_catalog_ships_every_class_with_models_and_sources():
    cat = plan.load_catalog(use_user=False)
    for key in ("bullet", "dome", "turret", "ptz", "fisheye", "nvr", "dvr", "analog", "encoder", "thermal"):
        c = cat.classes[key]
        assert c.models, key
        assert c.source, f"{key} has no cited source for its default costs"
        assert c.hardware > 0
    assert cat.labour_rate > 0 and cat.currency == "USD"


def test_suggestions_never_name_a_maker_the_policy_restricts(tmp_path):
    # a user catalog adding restricted makers: they must be filtered out, per policy
    user = tmp_path / "cat.yaml"
    user.write_text("classes:\n  bullet:\n    label: Bullet\n    hardware: 150\n    labour_hours: 1\n"
                    "    models:\n      - {maker: Hikvision, model: DS-2CD2T43G2-4I}\n"
                    "      - {maker: Uniview, model: IPC2124}\n      - {maker: Milesight, model: MS-C2964}\n"
                    "      - {maker: Axis, model: P1465-LE}\n")
    cat = plan.load_catalog(user)
    ndaa = [m.maker for m in plan.suggest_models(cat, "bullet", "ndaa889")]
    strict = [m.maker for m in plan.suggest_models(cat, "bullet", "strict")]
    no_prc = [m.maker for m in plan.suggest_models(cat, "bullet", "prc-origin")]
    assert "Hikvision" not in ndaa and "Axis" in ndaa and "Uniview" in ndaa
    assert "Uniview" not in strict and "Hikvision" not in strict
    assert no_prc == ["Axis"]
    # the user file replaced the bullet class only; other classes keep the shipped catalog
    assert cat.classes["bullet"].hardware == 150 and cat.classes["dome"].models


@pytest.mark.parametrize("text", ["- just a list\n", "classes: [1, 2]\n", "classes:\n  x: {hardware: -5}\n",
                                  "classes:\n  x: {hardware: lots}\n", "a: [unclosed\n",
                                  "classes:\n  x:\n    models: [{maker: Axis}]\n"])
def test_bad_catalog_is_a_clear_error(tmp_path, text):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(plan.PlanError, match="catalog"):
        plan.load_catalog(p)


def test_oversized_catalog_refused(tmp_path):
    p = tmp_path / "big.yaml"
    p.write_text("# " + "x" * (plan.CATALOG_MAX_BYTES + 10))
    with pytest.raises(plan.PlanError, match="larger"):
        plan.load_catalog(p)


def test_priority_lists_exposure_and_public_safety():
    base = {"restricted": True, "lists": ["ndaa889", "fcc_covered"], "device_type": "camera", "evidence": []}
    quiet = plan.score_priority(base)
    telnet = plan.score_priority({**base, "evidence": [{"rule": "r", "field": "banners.telnet", "value": "login:"}]})
    public = plan.score_priority(base, public_safety=True)
    assert quiet.tier == "P2" and quiet.score == 50
    assert telnet.score == quiet.score + plan.EXPOSURE_WEIGHTS["telnet"] and "telnet open" in telnet.reasons
    assert public.tier == "P1" and "public-safety role" in public.reasons
    clean_ = plan.score_priority({"restricted": False, "lists": [], "device_type": "camera"})
    assert clean_.tier == "P4"


def test_exposure_from_record_reads_open_web_ui_telnet_and_factory_realm():
    rec = parse_record({"ip": "198.18.0.5", "http": [
        {"port": 80, "status": 401, "headers": {"WWW-Authenticate": 'Digest realm="IP Camera(C2183)"'}},
        {"port": 8080, "status": 200, "title": "index"}],
        "banners": [{"protocol": "telnet", "port": 23, "text": "login:"}]})
    assert plan.exposure_from_record(rec) == {"web_ui", "web_ui_open", "default_realm", "telnet"}
    assert plan.exposure_from_record(parse_record({"ip": "198.18.0.6"})) == frozenset()


def _store(tmp_path, n=40):
    s = Store(tmp_path / "p.db")
    fill_store(s, n, seed=3)
    return s


def test_plan_covers_flagged_devices_and_totals_add_up(tmp_path):
    s = _store(tmp_path)
    p = plan.make_plan(s)
    flagged = [d for d in s.devices() if d["restricted"] is True]
    assert {i.device_id for i in p.items} == {d["device_id"] for d in flagged}
    for it in p.items:
        assert it.suggested_maker and it.suggested_maker not in ("Hikvision", "Dahua", "Huawei")
    o = p.totals.overall
    assert o.devices == len(flagged)
    assert o.total == pytest.approx(sum(i.cost_total for i in p.items))
    assert sum(t.devices for t in p.totals.by_site.values()) == o.devices
    assert sum(t.total for t in p.totals.by_site.values()) == pytest.approx(o.total)
    assert [i.priority for i in p.items] == sorted((i.priority for i in p.items), reverse=True)


def test_save_item_changes_totals_and_persists(tmp_path):
    s = _store(tmp_path)
    cat = plan.load_catalog(use_user=False)
    p = plan.make_plan(s, catalog=cat)
    it = p.items[-1]
    before = p.totals.overall
    new = plan.save_item(s, it, cat, status="exempt", exempt_reason="decommissioned next month")
    p2 = plan.make_plan(s, catalog=cat)
    assert p2.totals.overall.total == pytest.approx(before.total - it.cost_total)
    assert p2.totals.overall.by_status["exempt"] == 1
    saved = s.plan(it.device_id)
    assert saved["status"] == "exempt" and saved["exempt_reason"] == "decommissioned next month"
    assert new.saved
    # a new class brings its own default model and costs
    ptz = plan.save_item(s, new, cat, replacement_class="ptz", status="planned")
    assert ptz.class_label == "PTZ" and ptz.cost_hardware == cat.classes["ptz"].hardware
    assert ptz.exempt_reason is None
    # public safety raises the priority
    ps = plan.save_item(s, ptz, cat, public_safety=True)
    assert ps.priority == min(100, ptz.priority + plan.PUBLIC_SAFETY_WEIGHT)


@pytest.mark.parametrize(("changes", "message"), [
    ({"status": "exempt"}, "needs a reason"),
    ({"status": "lost"}, "status must be"),
    ({"cost_hardware": "-3"}, "between 0"),
    ({"cost_labour": "ten"}, "must be a number"),
    ({"replacement_class": "submarine"}, "unknown replacement class"),
    ({"suggested_maker": "Hikvision", "suggested_model": "DS-2CD2143G0-I"}, "restricted"),
    ({"colour": "red"}, "unknown plan fields"),
])
def test_invalid_changes_are_refused(tmp_path, changes, message):
    s = _store(tmp_path, 10)
    cat = plan.load_catalog(use_user=False)
    it = plan.make_plan(s, catalog=cat).items[0]
    with pytest.raises(plan.PlanError, match=message):
        plan.save_item(s, it, cat, **changes)
    assert s.plan(it.device_id) is None


def test_export_csv_and_json_round_trip_and_neutralise_formulas(tmp_path):
    s = _store(tmp_path)
    cat = plan.load_catalog(use_user=False)
    it = plan.make_plan(s, catalog=cat).items[0]
    plan.save_item(s, it, cat, status="exempt", exempt_reason="=HYPERLINK(\"http://x\")")
    p = plan.make_plan(s, catalog=cat)
    buf = io.StringIO()
    n = plan.write_csv(p, buf)
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert n == len(rows) == len(p.items)
    assert tuple(rows[0]) == plan.CSV_COLUMNS
    exempt = next(r for r in rows if r["status"] == "exempt")
    assert exempt["exempt_reason"].startswith("'=")
    assert sum(float(r["cost_total"]) for r in rows) == pytest.approx(
        sum(i.cost_total for i in p.items))
    doc = json.loads(json.dumps(plan.plan_to_json(p)))
    assert doc["totals"]["overall"]["devices"] == len(p.items)
    assert doc["totals"]["overall"]["by_status"]["exempt"] == 1


def test_cli_plan_export_set_show(tmp_path, capsys):
    s = _store(tmp_path)
    db = str(s.path)
    dev = next(d for d in s.devices() if d["restricted"])
    s.close()
    assert cli_main(["plan", "set", "--db", db, dev["mac"], "--status", "ordered", "--hardware", "1234.5"]) == 0
    out = tmp_path / "plan.json"
    assert cli_main(["plan", "export", "--db", db, "--format", "json", "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    item = next(i for i in doc["items"] if i["device_id"] == dev["device_id"])
    assert item["status"] == "ordered" and item["cost_hardware"] == 1234.5
    csv_out = tmp_path / "plan.csv"
    assert cli_main(["plan", "export", "--db", db, "-o", str(csv_out)]) == 0
    assert csv_out.read_text().startswith("device_id,site,ip")
    capsys.readouterr()
    assert cli_main(["plan", "show", "--db", db]) == 0
    assert "ALL" in capsys.readouterr().out
    assert cli_main(["plan", "set", "--db", db, "no-such-device", "--status", "ordered"]) == 2
    assert cli_main(["plan", "export", "--db", str(tmp_path / "missing.db")]) == 2
    assert "no camsweep store" in capsys.readouterr().err


def test_filters_and_brand_display():
    d = {"device_id": 1, "ip": "198.18.1.7", "mac": "28:57:be:00:00:01", "manufacturer": "Hikvision",
         "brand": "LTS", "model": "CMIP3042", "device_type": "camera", "restricted": True, "lists": ["ndaa889"],
         "site": None}
    assert filters.brand_display("LTS", "Hikvision") == "LTS -> Hikvision"
    assert filters.brand_display("Hikvision", "Hikvision") == "Hikvision"
    assert filters.brand_display("HIKVISION", "Hikvision") == "HIKVISION"
    assert filters.match_device(d, filters.parse_filter("maker:hik subnet:198.18.1.0/24 cmip"))
    assert filters.match_device(d, filters.parse_filter("maker:lts"))
    assert not filters.match_device(d, filters.parse_filter("subnet:198.18.2.0/24"))
    assert not filters.match_device({**d, "restricted": False}, filters.parse_filter("", restricted_only=True))
    assert filters.parse_filter("subnet:nonsense").errors
    c = filters.count_devices([d, {**d, "restricted": None}, {**d, "restricted": False}])
    assert (c.devices, c.restricted, c.unknown) == (3, 1, 1)


def test_a_camera_behind_a_recorder_counts_under_the_recorders_subnet():
    from scanner.plan import site_of

    assert site_of({"ip": "10.1.1.65", "parent_ip": "198.18.0.47"}) == "198.18.0.0/24"
    assert site_of({"ip": "10.1.1.65", "parent_ip": "198.18.0.47", "site": "hq"}) == "hq"
    assert site_of({"ip": "198.18.0.9"}) == "198.18.0.0/24"


def test_known_exploited_firmware_raises_priority():
    from scanner.plan import EXPLOITED_WEIGHT, score_priority

    base = {"manufacturer": "Hikvision", "model": "DS-2CD2043G0-I", "device_type": "camera", "restricted": True,
            "lists": ["ndaa889"], "evidence": []}
    hit = score_priority({**base, "firmware": "V5.5.0 build 170725"})
    fixed = score_priority({**base, "firmware": "V5.7.18 build 240826"})
    assert hit.score == fixed.score + EXPLOITED_WEIGHT
    assert any(r.startswith("known-exploited firmware: CVE-2021-36260") for r in hit.reasons)
    assert not any("known-exploited" in r for r in fixed.reasons)
