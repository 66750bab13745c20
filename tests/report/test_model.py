from __future__ import annotations

from scanner.report import build_report_model
from tests.report.sample import HOSTILE_SERVER


def test_summary_counts(sample):
    store, scan_id, ids, _ = sample
    m = build_report_model(store, scan_id)
    s = m["summary"]
    assert (s["devices"], s["restricted"], s["not_restricted"], s["unknown"], s["relabels"]) == (9, 7, 1, 1, 2)
    assert {x["maker"]: (x["devices"], x["restricted"]) for x in s["by_maker"]} == {
        "Hikvision": (4, 4), "Dahua": (3, 3), "Axis": (1, 0), "unknown": (1, 0)}
    assert {x["list"]: x["devices"] for x in s["by_list"]} == {"ndaa889": 7, "fcc_covered": 5}
    assert {(r["brand"], r["manufacturer"]) for r in m["relabels"]} == {("LTS", "Hikvision"), ("Amcrest", "Dahua")}
    assert [u["device_id"] for u in m["unknowns"]] == [ids["unknown"]]
    # restricted devices first
    assert [d["restricted"] for d in m["devices"]][:7] == [True] * 7


def test_metadata_and_evidence_chain(sample):
    store, scan_id, ids, _ = sample
    m = build_report_model(store, scan_id)
    sc = m["scan"]
    assert sc["targets"] == ["198.18.0.0/24"] and sc["site"] == "hq" and sc["policy"] == "ndaa889"
    assert sc["fingerprints_version"] == "2026.11.1" and sc["camsweep_version"]
    hostile = next(d for d in m["devices"] if d["device_id"] == ids["hostile"])
    assert hostile["evidence"][0] == {"rule": "http.server/hostile-test", "field": "http.headers.server",
                                      "value": HOSTILE_SERVER, "strength": "strong"}
    channel = next(d for d in m["devices"] if d["device_id"] == ids["channel"])
    assert channel["parent_ip"] == "198.18.0.20" and channel["channel"] == "1"


def test_options_never_carry_credentials(tmp_path):
    from scanner.store import Store
    from tests.report.sample import fleet, record_scan

    store = Store(tmp_path / "c.db")
    scan_id, _ = record_scan(store, fleet()[:1])
    store.db["scans"].update(scan_id, {"options": '{"rate": 5, "password": "hunter2", "credentials_file": "/x"}'})
    m = build_report_model(store, scan_id)
    assert m["scan"]["options"] == {"rate": 5}
    store.close()


def test_plan_from_plan_module(sample):
    store, scan_id, ids, _ = sample
    plan = build_report_model(store, scan_id)["plan"]
    assert plan["source"] == "scanner.plan"
    rows = {r["device_id"]: r for r in plan["rows"]}
    # every restricted device gets a row; saved choices win over the catalog's defaults
    assert set(rows) == {ids[k] for k in ("hik", "lts", "dahua", "amcrest", "nvr", "channel", "hostile")}
    assert rows[ids["hik"]]["suggested_model"] == "M3086-V" and rows[ids["hik"]]["cost_total"] == 569.0
    assert rows[ids["amcrest"]]["status"] == "exempt"
    t = plan["totals"]
    assert t["counted_devices"] == 6
    assert t["cost_total"] == round(sum(r["cost_total"] for r in plan["rows"] if r["status"] != "exempt"), 2)
    assert plan["restricted_without_plan"] == sorted([ids["lts"], ids["channel"], ids["hostile"]])


def test_unknown_devices_show_what_they_present(sample):
    store, scan_id, ids, _ = sample
    (unk,) = build_report_model(store, scan_id)["unknowns"]
    assert unk["observed"] == [{"field": "http.headers.server", "value": "Boa/0.94.14rc21"},
                               {"field": "http.title", "value": "Login"}]


def test_by_list_names_and_short_labels(sample):
    store, scan_id, _, _ = sample
    by_list = {x["list"]: x for x in build_report_model(store, scan_id)["summary"]["by_list"]}
    assert by_list["ndaa889"]["short"] == "NDAA §889" and by_list["ndaa889"]["devices"] == 7
    assert by_list["ndaa889"]["name"]  # the database's full name when it is there, else the short label


def test_another_policy_re_evaluates_restriction_from_the_real_maker(tmp_path):
    import pytest

    from scanner.errors import CamsweepError
    from scanner.evidence import Identification, parse_record
    from scanner.store import Store

    fingerprints = pytest.importorskip("fingerprints")
    db = fingerprints.load_database()
    if not {"ndaa889", "strict"} <= set(db.policies()) or not db.lookup_names("Uniview"):
        pytest.skip("the fingerprint database has no strict policy or no Uniview")
    store = Store(tmp_path / "p.db")
    sid = store.start_scan(["198.18.0.0/24"], policy="ndaa889")
    store.record_device(sid, parse_record({"ip": "198.18.0.40", "mac": "48:ea:63:00:00:01"}),
                        Identification(manufacturer="Uniview", brand="Uniview", restricted=False,
                                       lists=("entity_list",), confidence=0.9))
    store.finish_scan(sid)
    assert build_report_model(store, sid)["devices"][0]["restricted"] is False
    m = build_report_model(store, sid, "strict")
    assert m["devices"][0]["restricted"] is True and "entity_list" in m["devices"][0]["lists"]
    assert (m["scan"]["policy"], m["scan"]["scan_policy"], m["summary"]["restricted"]) == ("strict", "ndaa889", 1)
    with pytest.raises(CamsweepError, match="unknown policy"):
        build_report_model(store, sid, "no-such-policy")
    store.close()
