"""Issue 12: verdicts only from enough evidence; "needs review"; one decision for "restricted".

Rules under test (scanner/identify.py, fingerprints/policy.py):
- a maker is established by one medium-or-stronger clue, or by two weak clues from different probes;
  two fields of one answer are one probe; hints never count;
- a MAC registrant camsweep has no vendor for, an OEM label's block and a chip or module maker's block
  never name the maker;
- where the evidence points at a restricted maker without establishing it, ``review`` names it and
  says why; restricted is never true from weak evidence alone, never false from a device's own weak
  claim against another probe's restricted pointer;
- identify, the plan and the report ask fingerprints.policy, so a policy change moves them together.
"""

from __future__ import annotations

import shutil

import pytest

import fingerprints.db as fpdb
from fingerprints import load_database
from fingerprints.db import Database
from fingerprints.policy import restricted_under, suggestion_allowed
from scanner import filters, plan
from scanner.evidence import Identification, parse_record
from scanner.identify import Identifier
from scanner.report import fail_on_hits
from scanner.report import model as report_model
from scanner.report.csv import build_csv_rows
from scanner.store import Store

LOGIN = "<html><head><title>Login</title></head><body>welcome</body></html>"


def _id(rec: dict, policy: str | None = None) -> Identification:
    return Identifier(policy).identify(parse_record(rec))


def _review_maker(r: Identification) -> str | None:
    return r.review["maker"] if r.review else None


# ------------------------------------------------------------------ item 2: how much evidence is enough
@pytest.mark.parametrize("rec,maker,review,restricted", [
    # a lone weak clue pointing at a restricted maker: no verdict, review
    ({"http": [{"title": "Hikvision"}]}, None, "Hikvision", None),
    ({"http": [{"port": 80, "path": "/doc/page/login.asp", "status": 200, "body": LOGIN}]}, None, "Hikvision", None),
    # a lone weak clue pointing at a maker no list of the policy covers: no verdict, nothing to review
    ({"http": [{"title": "MOBOTIX M16 Camera"}]}, None, None, None),
    ({"onvif": {"manufacturer": "Vivotek"}}, None, None, None),
], ids=["title-hikvision", "path-hikvision", "title-mobotix", "onvif-vivotek"])
def test_a_lone_weak_clue_is_not_a_verdict(rec, maker, review, restricted):
    r = _id(rec)
    assert (r.manufacturer, _review_maker(r), r.restricted) == (maker, review, restricted), r.to_dict()
    if review:
        assert "weak evidence" in r.review["reason"]


def test_two_weak_clues_of_one_probe_are_one_clue():
    # a Hikvision web-UI path and a title naming Hikvision: both from the web server (one probe)
    r = _id({"http": [{"port": 80, "path": "/doc/page/login.asp", "status": 200, "body": LOGIN},
                      {"port": 80, "path": "/", "status": 200, "title": "Hikvision"}]})
    assert (r.manufacturer, _review_maker(r), r.restricted) == (None, "Hikvision", None)
    # the ONVIF manufacturer and the ONVIF model of one GetDeviceInformation answer: one probe
    r = _id({"onvif": {"manufacturer": "UNIVIEW", "model": "IPC2122LR3-PF40M-D"}}, policy="strict")
    assert (r.manufacturer, _review_maker(r), r.restricted) == (None, "Uniview", None)


def test_two_weak_clues_from_different_probes_establish_the_maker():
    # the web server's Hikvision path and the RTSP server's Hikvision stream path
    r = _id({"http": [{"port": 80, "path": "/doc/page/login.asp", "status": 200, "body": LOGIN}],
             "rtsp": [{"request": "DESCRIBE rtsp://h/Streaming/Channels/101", "status": 200}]})
    assert (r.manufacturer, _review_maker(r), r.restricted) == ("Hikvision", None, True)
    # a non-restricted maker: ONVIF's manufacturer field and the IEEE block of its serial (= its MAC)
    r = _id({"onvif": {"manufacturer": "AXIS", "serial": "ACCC8E123456"}})
    assert (r.manufacturer, _review_maker(r), r.restricted) == ("Axis", None, False)


def test_hints_never_count():
    # a Hangzhou location scope is a hint (Hikvision, Dahua, Uniview, Ezviz and Xiongmai are all there)
    r = _id({"wsd": [{"scopes": ["onvif://www.onvif.org/location/city/hangzhou"]}]})
    assert (r.manufacturer, r.review, r.restricted) == (None, None, None)


# ------------------------------------------------------------------ MAC registrants
@pytest.mark.parametrize("mac,maker,brand,review,restricted", [
    # an OEM label's block (Lorex: Dahua relabel, then subsidiary): the label, never the maker
    ("00:1f:54:00:00:01", None, "Lorex", "Dahua", None),
    # a module maker's block (Espressif Wi-Fi module): the board, not the maker
    ("24:0a:c4:11:22:33", None, None, None, None),
    # HiSilicon's block: Huawei's chip arm names the board, not the device's maker
    ("84:8a:59:00:00:01", None, None, "Huawei", None),
], ids=["oem-label", "module-maker", "chip-arm"])
def test_a_registrant_only_mac_is_not_a_maker_verdict(mac, maker, brand, review, restricted):
    r = _id({"mac": mac})
    assert (r.manufacturer, r.brand, _review_maker(r), r.restricted) == (maker, brand, review, restricted), r.to_dict()
    assert any(e.field == "mac" for e in r.evidence)  # the registrant stays in the evidence


def test_an_unmapped_registrant_names_the_maker_on_no_list():
    # a registrant camsweep has no vendor for (a scale maker whose name contains "Dahua"): its own block
    r = _id({"mac": "40:2c:76:1a:bc:de"})
    assert (r.manufacturer, r.restricted, r.review) == ("Shanghai Dahua Scale Factory", False, None)
    assert any("registrant" in n for n in r.notes)
    assert any(e.rule == "oui/registrant" for e in r.evidence)


def test_the_registrant_switch(monkeypatch):
    import scanner.identify as ident

    monkeypatch.setattr(ident, "REGISTRANT_ALONE_NAMES_MAKER", False)
    r = _id({"mac": "40:2c:76:1a:bc:de"})
    assert (r.manufacturer, r.restricted) == (None, None)
    assert any("Shanghai Dahua Scale Factory" in n and "not established" in n for n in r.notes)
    monkeypatch.setattr(ident, "REGISTRANT_ALONE_NAMES_MAKER", True)
    # never over an OEM label's or a module maker's block, nor over another maker's claim
    assert _id({"mac": "00:1f:54:00:00:01"}).manufacturer is None
    assert _id({"mac": "24:0a:c4:11:22:33"}).manufacturer is None
    assert _id({"mac": "40:2c:76:1a:bc:de", "http": [{"title": "Hikvision"}]}).manufacturer is None


def test_a_known_makers_own_block_stays_strong():
    r = _id({"mac": "28:57:be:01:02:03"})  # Hangzhou Hikvision Digital Technology
    assert (r.manufacturer, r.review, r.restricted) == ("Hikvision", None, True)


# ------------------------------------------------------------------ conflicting claims
def test_a_self_claim_against_the_firmware_never_clears_it():
    # ONVIF says AXIS; the firmware version is Hikvision's "V5.5.82 build 190909" format (medium)
    r = _id({"onvif": {"manufacturer": "AXIS", "firmware": "V5.5.82 build 190909"}})
    assert (r.manufacturer, r.restricted) == ("Hikvision", True)
    assert _review_maker(r) == "Hikvision" and "Axis" in r.review["reason"]
    # with an Axis model code as well the two makers are comparable: neither, and never "not restricted"
    r = _id({"onvif": {"manufacturer": "AXIS", "model": "AXIS P3344", "firmware": "V5.5.82 build 190909"}})
    assert r.manufacturer is None and r.restricted is None and _review_maker(r) == "Hikvision"


def test_weak_self_claims_against_a_restricted_makers_clue_from_another_probe():
    # two weak Axis claims from two probes would establish Axis, but the RTSP server points at Hikvision
    r = _id({"onvif": {"manufacturer": "AXIS", "serial": "ACCC8E123456"},
             "rtsp": [{"request": "DESCRIBE rtsp://h/Streaming/Channels/101", "status": 200}]})
    assert r.restricted is not False and _review_maker(r) == "Hikvision"


def test_weak_clues_for_two_restricted_makers_never_flag():
    # Hikvision from two weak probes, Dahua from a third weak one: neither is established, and
    # "restricted whichever it is" would be a verdict from weak evidence alone
    r = _id({"http": [{"port": 80, "path": "/doc/page/login.asp", "status": 200, "body": LOGIN}],
             "rtsp": [{"request": "DESCRIBE rtsp://h/Streaming/Channels/101", "status": 200}],
             "ssdp": [{"headers": {"SERVER": "Linux, UPnP/1.0, Private Upnp SDK"}}]})
    assert (r.manufacturer, r.restricted, _review_maker(r)) == (None, None, "Hikvision")
    # two makers each established by a medium clue, both restricted: restricted whichever it is
    r = _id({"http": [{"headers": {"Server": "App-webs/"}}], "rtsp": [{"headers": {"Server": "Dahua Rtsp Server"}}]})
    assert (r.manufacturer, r.restricted) == (None, True)


def test_a_lone_generic_upnp_header_is_not_dahua():
    r = _id({"ssdp": [{"headers": {"SERVER": "Linux, UPnP/1.0, Private Upnp SDK"}}]})
    assert r.manufacturer is None and r.restricted is None
    # with the Redsonic agent of the same answer: still one probe
    r = _id({"ssdp": [{"headers": {"SERVER": "Linux, UPnP/1.0, Private Upnp SDK", "X-User-Agent": "redsonic"}}]})
    assert r.manufacturer is None and r.restricted is None and _review_maker(r) == "Dahua"


def test_an_oem_label_alone_needs_review_and_its_makers_firmware_settles_it():
    r = _id({"wsd": [{"scopes": ["onvif://www.onvif.org/name/Honeywell"]}]})
    assert (r.manufacturer, r.brand, r.restricted) == (None, "Honeywell", None)
    assert _review_maker(r) == "Dahua" and "Honeywell" in r.review["reason"]
    r = _id({"wsd": [{"scopes": ["onvif://www.onvif.org/name/Honeywell"]}],
             "rtsp": [{"headers": {"Server": "Dahua Rtsp Server"}}]})
    assert (r.manufacturer, r.brand, r.restricted, r.review) == ("Dahua", "Honeywell", True, None)


def test_review_is_in_the_json_output():
    d = _id({"http": [{"title": "Hikvision"}]}).to_dict()
    assert d["review"]["maker"] == "Hikvision" and d["review"]["reason"]
    assert _id({"mac": "28:57:be:01:02:03"}).to_dict()["review"] is None


# ------------------------------------------------------------------ item 3: one decision
def _policy_db(tmp_path, lists: str) -> Database:
    """A copy of the shipped database whose ndaa889 policy enforces other lists."""
    root = tmp_path / "fp"
    shutil.copytree(fpdb.HERE, root, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    text = (root / "policies.yaml").read_text()
    old = "    lists: [ndaa889]\n"
    assert old in text
    (root / "policies.yaml").write_text(text.replace(old, f"    lists: [{lists}]\n", 1))
    return Database(root)


UNIVIEW = {"http": [{"port": 80, "path": "/LAPI/V1.0/System/DeviceInfo", "status": 200, "body": "{}"}],
           "rtsp": [{"headers": {"Server": "Rtsp Server/3.0"}}]}


def test_identify_plan_and_report_answer_from_the_one_policy_function(tmp_path, monkeypatch):
    cat = plan.load_catalog(use_user=False)

    def answers() -> tuple[object, bool, object]:
        ident = Identifier("ndaa889").identify(parse_record(UNIVIEW))
        row = [{"manufacturer": "Uniview", "restricted": False, "lists": [], "review": None}]
        report_model._apply_policy(row, "ndaa889")
        return ident.restricted, plan.maker_allowed(cat, "Uniview", "ndaa889"), row[0]["restricted"]

    assert answers() == (False, True, False)
    db2 = _policy_db(tmp_path, "ndaa889, entity_list")  # the policy now enforces the Entity List
    monkeypatch.setattr(fpdb, "_DB", db2)
    monkeypatch.setattr(plan, "_fp_db_cache", {"db": db2})
    assert restricted_under(db2, "ndaa889", "uniview")[0] is True
    assert answers() == (True, False, True)


ESTABLISHED = {  # one medium-or-stronger clue each
    "hikvision": {"http": [{"headers": {"Server": "Hikvision-Webs"}}]},
    "dahua": {"rtsp": [{"headers": {"Server": "Dahua Rtsp Server"}}]},
    "uniview": UNIVIEW,
    "axis": {"banners": [{"protocol": "ftp", "text": "AXIS P1346 Network Camera 5.50beta3 (2014) ready"}]},
}


@pytest.mark.parametrize("policy", ["ndaa889", "fcc", "strict", "uk", "texas", "prc-origin"])
def test_identify_agrees_with_restricted_under(policy):
    db = load_database()
    idf = Identifier(policy)
    for vid, rec in ESTABLISHED.items():
        r = idf.identify(parse_record(rec))
        assert r.manufacturer == db.vendors[vid].name, (vid, r.to_dict())
        assert (r.restricted, r.lists) == restricted_under(db, policy, vid), (policy, vid)


def test_the_catalog_holds_no_restricted_makers_and_suggests_none():
    import yaml

    data = yaml.safe_load(plan.DEFAULT_CATALOG.read_text())
    assert not any("restricted_makers" in (p or {}) for p in (data.get("policies") or {}).values())
    db = load_database()
    cat = plan.load_catalog(use_user=False)
    for policy in ("ndaa889", "strict", "texas", "prc-origin", "no_prc"):
        for cls in cat.classes:
            for m in plan.suggest_models(cat, cls, policy):
                rule = cat.policies.get(policy)
                assert suggestion_allowed(db, rule.restrict_as if rule else policy, m.maker), (policy, m.maker)
    # an OEM label of a restricted maker is never suggested, whatever the policy
    assert not suggestion_allowed(db, "ndaa889", "Lorex") and not suggestion_allowed(db, "ndaa889", "Amcrest")
    assert suggestion_allowed(db, "ndaa889", "Axis")


def test_a_user_catalog_with_its_own_restricted_list_is_refused(tmp_path):
    p = tmp_path / "cat.yaml"
    p.write_text("policies:\n  mine:\n    restricted_makers: [Axis]\n")
    with pytest.raises(plan.PlanError, match="restricted_makers"):
        plan.load_catalog(p)
    p.write_text("policies:\n  mine:\n    restrict_as: ndaa889\n    excluded_makers: [Axis]\n")
    cat = plan.load_catalog(p)
    assert not plan.maker_allowed(cat, "Axis", "mine") and not plan.maker_allowed(cat, "Hikvision", "mine")
    assert plan.maker_allowed(cat, "Bosch", "mine")


# ------------------------------------------------------------------ review in the store, reports, --fail-on
def test_review_is_stored_counted_reported_and_fails_on(tmp_path):
    store = Store(tmp_path / "s.db")
    sid = store.start_scan(["198.18.0.0/24"], policy="strict")
    idf = Identifier("strict")
    for rec in ({"ip": "198.18.0.5", "http": [{"title": "Hikvision"}]},
                {"ip": "198.18.0.6", "mac": "28:57:be:01:02:03"},
                {"ip": "198.18.0.7", "http": [{"title": "MOBOTIX M16 Camera"}]},
                {"ip": "198.18.0.8", "onvif": {"manufacturer": "UNIVIEW", "model": "IPC2122LR3-PF40M-D"}}):
        r = parse_record(rec)
        store.record_device(sid, r, idf.identify(r), policy="strict")
    store.finish_scan(sid)
    assert store.scan(sid).review_count == 2 and store.scan(sid).restricted_count == 1
    devs = {d["ip"]: d for d in store.devices(sid)}
    assert devs["198.18.0.5"]["review"]["maker"] == "Hikvision" and devs["198.18.0.6"]["review"] is None
    assert devs["198.18.0.8"]["review"]["maker"] == "Uniview"
    assert fail_on_hits(store, sid, ["review"]) == ["review (2)"]
    assert fail_on_hits(store, sid, ["relabel"]) == []
    model = report_model.build_report_model(store, sid)
    assert model["summary"]["needs_review"] == 2
    assert sorted(r["ip"] for r in model["reviews"]) == ["198.18.0.5", "198.18.0.8"]
    rows = {r["ip"]: r for r in build_csv_rows(model)}
    assert rows["198.18.0.5"]["review_maker"] == "Hikvision" and rows["198.18.0.6"]["review_maker"] == ""
    # re-evaluated under a policy that does not restrict Uniview, its review goes; Hikvision's stays
    model = report_model.build_report_model(store, sid, policy="ndaa889")
    assert [r["ip"] for r in model["reviews"]] == ["198.18.0.5"]
    store.close()
    from scanner.cli import main

    out = str(tmp_path / "r.json")
    assert main(["report", "--db", str(tmp_path / "s.db"), "-o", out, "--fail-on", "review", "-q"]) == 1
    assert main(["report", "--db", str(tmp_path / "s.db"), "-o", out, "--fail-on", "relabel", "-q"]) == 0


def test_the_review_filter_and_counts():
    devs = [{"device_id": 1, "restricted": None, "review": {"maker": "Dahua", "reason": "x"}},
            {"device_id": 2, "restricted": None, "review": None},
            {"device_id": 3, "restricted": True, "review": None}]
    f = filters.parse_filter("is:review")
    assert f.review_only and [d["device_id"] for d in devs if filters.match_device(d, f)] == [1]
    assert filters.count_devices(devs).review == 1
