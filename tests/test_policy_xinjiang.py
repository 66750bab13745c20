"""Issue 18: the xinjiang_surveillance due-diligence list, ownership (owned_by) in the vendor registry, and
the `xinjiang` policy that covers owners as well as makers; reports say law or due diligence, and why.

Records are built from registered MAC blocks (IEEE registry snapshot shipped in fingerprints/data):
00:18:8A Infinova, BC:51:FE Swann Communications, 28:57:BE Hikvision, 00:40:8C Axis.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fingerprints import load_database
from fingerprints import policy as pol
from fingerprints.db import EVIDENCE_KINDS, list_basis
from scanner.cli import main
from scanner.identify import Identifier

RECORDS = [
    {"id": "infinova", "mac": "00:18:8a:12:34:56"},
    {"id": "swann", "mac": "bc:51:fe:12:34:56"},
    {"id": "hikvision", "mac": "28:57:be:01:02:03", "http": [{"port": 80, "headers": {"Server": "App-webs/"}}]},
    {"id": "axis", "mac": "00:40:8c:01:02:03", "http": [{"port": 80, "headers": {"Server": "axis"}}]},
]


def _identify_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, dict]:
    src = tmp_path / "records.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    capsys.readouterr()
    assert main(["identify", str(src), "--format", "jsonl", *args]) == 0
    out = capsys.readouterr().out
    return {d["id"]: d for d in map(json.loads, out.splitlines())}


def test_must_show_identify_xinjiang_and_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x = _identify_cli(tmp_path, capsys, "--policy", "xinjiang")
    for key in ("infinova", "swann", "hikvision"):
        assert x[key]["restricted"] is True, x[key]
        assert "xinjiang_surveillance" in x[key]["lists"], x[key]
    assert x["axis"]["restricted"] is False and "xinjiang_surveillance" not in x["axis"]["lists"]
    # Swann through its owner: the maker stays unknown, the chain says "owned by", never "made by"
    sw = x["swann"]
    assert sw["manufacturer"] is None and sw["brand"] == "Swann"
    owner_hits = [e for e in sw["evidence"] if e["rule"] == "owner/infinova"]
    assert owner_hits and owner_hits[0]["value"] == "Swann owned by Infinova"
    assert "ipvm.com/reports/infinova-xinjiang" in owner_hits[0]["note"]
    text = json.dumps(sw)
    assert "owned by" in text and not re.search(r"made by Infinova|Infinova-made", text)
    d = _identify_cli(tmp_path, capsys)  # the default policy (ndaa889)
    assert d["infinova"]["restricted"] is False
    assert d["swann"]["restricted"] is not True  # null: the Swann label's Hikvision OEM claim is a review
    assert not any(e["rule"].startswith("owner/") for e in d["swann"]["evidence"])
    assert d["hikvision"]["restricted"] is True and d["axis"]["restricted"] is False


def test_table_says_law_or_due_diligence(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "220")
    src = tmp_path / "records.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    capsys.readouterr()
    assert main(["identify", str(src), "--format", "table", "--policy", "xinjiang"]) == 0
    out = capsys.readouterr().out
    assert "due diligence" in out and "(law)" in out


def test_past_owner_never_counts() -> None:
    db = load_database()
    # March Networks: Infinova until 2022, Delta since; Lorex: Dahua until 2022-11-24, Skywatch since
    assert pol.restricted_under(db, "xinjiang", "march") == (False, ())
    assert pol.owner_links(db, "xinjiang", "lorex") == ()
    assert [o["owner"] for o in db.vendors["march"].owned_by] == ["infinova", "delta"]
    assert db.vendors["lorex"].owned_by[1]["owner"] == "dahua" and db.vendors["lorex"].owned_by[1]["to"]
    # a policy without owners never looks at ownership
    assert pol.owner_links(db, "strict", "swann") == ()
    assert pol.brand_covered(db, "ndaa889", "swann") == (False, (), ())


def test_a_past_owner_is_history_not_a_flag() -> None:
    # a March Networks unit (its own MAC block 00:10:BE): Infinova owned March until 2022, Delta since
    ident = Identifier("xinjiang").identify({"id": "m", "mac": "00:10:be:01:02:03"})
    assert ident.manufacturer == "March Networks" and ident.restricted is False
    assert any("formerly owned by Infinova" in n and "not a flag" in n for n in ident.notes)
    assert not any(e.rule.startswith("owner/") for e in ident.evidence)


def test_weak_label_is_review_not_flag() -> None:
    # a web page title naming the label is one weak clue: never a flag from ownership alone
    ident = Identifier("xinjiang").identify({"id": "t", "http": [{"port": 80, "title": "Swann DVR"}]})
    assert ident.brand == "Swann" and ident.restricted is not True and ident.review
    assert not any(e.rule.startswith("owner/") for e in ident.evidence)


def test_xinjiang_list_entries_carry_kind_date_and_cites() -> None:
    db = load_database()
    spec = db.lists["xinjiang_surveillance"]
    assert list_basis(spec) == "due_diligence" and not spec.get("legal")
    assert {"hikvision", "dahua", "infinova", "kedacom", "tiandy"} <= set(spec["covers"])
    for vid, entry in spec["covers"].items():
        assert vid in db.vendors
        assert entry["evidence"], vid
        for e in entry["evidence"]:
            assert e["kind"] in EVIDENCE_KINDS and re.match(r"^\d{4}(-\d{2}){0,2}$", e["date"]) and e["cite"], (vid, e)
    kinds = {e["kind"] for entry in spec["covers"].values() for e in entry["evidence"]}
    assert kinds == set(EVIDENCE_KINDS)
    assert "xinjiang_surveillance" in db.policy("xinjiang")["lists"] and db.policy("xinjiang")["owners"] is True
    for lid, lspec in db.lists.items():  # every list says when it was last checked
        assert re.match(r"^\d{4}-\d{2}-\d{2}$", str(lspec.get("version"))), lid


def test_flag_basis_separates_law_from_due_diligence() -> None:
    db = load_database()
    hik = pol.flag_basis(db, "xinjiang", "hikvision", "hikvision")
    assert [(f["list"], f["basis"], f["via"]) for f in hik] == [
        ("ndaa889", "law", "made_by"), ("xinjiang_surveillance", "due_diligence", "made_by")]
    assert hik[1]["evidence"] and all(e["cite"] for e in hik[1]["evidence"])
    sw = pol.flag_basis(db, "xinjiang", None, "swann")
    assert len(sw) == 1 and sw[0]["via"] == "owned_by" and sw[0]["vendor"] == "Infinova"
    assert sw[0]["subject"] == "Swann" and "owned by Infinova" in sw[0]["why"]
    assert "https://ipvm.com/reports/infinova-xinjiang" in sw[0]["cite"]
    assert pol.flag_basis(db, "xinjiang", "axis", "axis") == []
    info = pol.policy_info(db, "xinjiang")
    assert info["owners"] and [x["basis"] for x in info["lists"]] == ["law", "due_diligence"]
    assert all(x["version"] and x["cite"] for x in info["lists"])


def test_plan_never_suggests_an_owned_brand_under_xinjiang() -> None:
    db = load_database()
    assert not pol.suggestion_allowed(db, "xinjiang", "Swann")
    assert pol.suggestion_allowed(db, "xinjiang", "Axis")


def _store_of(tmp_path: Path, policy: str):
    """A store holding one scan of the four records, identified under ``policy``."""
    from scanner.evidence import parse_record
    from scanner.store import Store

    store = Store(tmp_path / f"{policy}.db")
    sid = store.start_scan(["198.18.0.0/24"], policy=policy)
    ident = Identifier(policy)
    for i, r in enumerate(RECORDS):
        rec = parse_record({**r, "ip": f"198.18.0.{10 + i}"})
        store.record_device(sid, rec, ident.identify(rec), policy=policy)
    store.finish_scan(sid)
    return store, sid


@pytest.mark.parametrize("scan_policy", ["xinjiang", "ndaa889"])
def test_report_separates_law_from_due_diligence(tmp_path: Path, scan_policy: str) -> None:
    """Scanned under xinjiang, or re-evaluated under it from a default-policy scan: the same answer."""
    from scanner.report.html import render_html
    from scanner.report.model import build_report_model

    store, sid = _store_of(tmp_path, scan_policy)
    model = build_report_model(store, sid, "xinjiang")
    by_ip = {d["ip"]: d for d in model["devices"]}
    sw, inf, hik, axis = (by_ip[f"198.18.0.{10 + i}"] for i in (1, 0, 2, 3))
    assert sw["restricted"] is True and inf["restricted"] is True and hik["restricted"] is True
    assert axis["restricted"] is False and axis["flags"] == []
    assert [f["via"] for f in sw["flags"]] == ["owned_by"] and sw["flags"][0]["basis"] == "due_diligence"
    assert {f["basis"] for f in hik["flags"]} == {"law", "due_diligence"}
    assert model["policy"]["name"] == "xinjiang" and all(x["version"] for x in model["policy"]["lists"])
    html = render_html(model)
    law = html.index("Restricted by law")
    dd = html.index("Flagged by due diligence (not law)")
    assert law < dd
    assert "https://ipvm.com/reports/infinova-xinjiang" in html[dd:]
    assert "farclause.com" in html[law:dd]
    assert "Swann is owned by Infinova" in html and "made by Infinova" not in html.replace(
        "made by Infinova, which", "")  # Infinova's own unit is made by Infinova; Swann's is owned by it
    assert "owned by" in html[dd:]
    # the default policy: neither Infinova nor Swann restricted, no due-diligence section
    base = build_report_model(store, sid, "ndaa889")
    base_ip = {d["ip"]: d for d in base["devices"]}
    assert base_ip["198.18.0.10"]["restricted"] is False and base_ip["198.18.0.11"]["restricted"] is not True
    assert "Flagged by due diligence" not in render_html(base)
    store.close()


@pytest.mark.timeout(120)
async def test_tui_shows_why_under_xinjiang(tmp_path: Path) -> None:
    """The TUI with --policy xinjiang over a default-policy scan: Swann and Infinova are restricted, and the
    device screen says due diligence, owned by Infinova, with the source."""
    from tui.app import CamsweepApp
    from tui.screens import DeviceScreen

    store, _ = _store_of(tmp_path, "ndaa889")
    path = store.path
    store.close()
    app = CamsweepApp(path, policy="xinjiang")
    async with app.run_test(size=(140, 40)) as pilot:
        for _ in range(300):
            if app.loaded and not any(w.is_running for w in app.workers if w.group == "load"):
                break
            await pilot.pause(0.05)
        by_ip = {d["ip"]: d for d in app.view.devices}
        assert by_ip["198.18.0.11"]["restricted"] is True and by_ip["198.18.0.10"]["restricted"] is True
        assert by_ip["198.18.0.13"]["restricted"] is False
        app.open_device(by_ip["198.18.0.11"]["device_id"])
        await pilot.pause()
        assert isinstance(app.screen, DeviceScreen)
        text = "\n".join(strip.text for strip in app.screen._compositor.render_strips())
        assert "due diligence (not law)" in text and "Swann is owned by Infinova" in text
        assert "ipvm.com/reports/infinova-xinjiang" in text


def test_plan_and_csv_follow_the_policy(tmp_path: Path) -> None:
    """`plan` under --policy xinjiang over a default-policy scan plans the Swann and Infinova units too;
    the CSV report says law or due diligence per device."""
    from scanner import plan as planlib
    from scanner.report.csv import build_csv_rows
    from scanner.report.model import build_report_model

    store, sid = _store_of(tmp_path, "ndaa889")
    base = {i.ip for i in planlib.make_plan(store, policy="ndaa889").items}
    xj = {i.ip for i in planlib.make_plan(store, policy="xinjiang").items}
    assert base == {"198.18.0.12"} and xj == {"198.18.0.10", "198.18.0.11", "198.18.0.12"}
    rows = {r["ip"]: r for r in build_csv_rows(build_report_model(store, sid, "xinjiang"))}
    assert rows["198.18.0.12"]["flag_basis"] == "law;due_diligence"
    assert rows["198.18.0.11"]["flag_basis"] == "due_diligence" and "owned by Infinova" in rows["198.18.0.11"]["flag_why"]
    assert rows["198.18.0.13"]["flag_basis"] == ""
    store.close()
