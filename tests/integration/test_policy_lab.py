"""Issue 18 in the lab: a scan under `--policy xinjiang` flags every Hikvision and Dahua unit on law
(section 889) and on due diligence (the xinjiang_surveillance list), each with its sources, and its HTML
report keeps the two apart; devices of makers on neither list are not flagged."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(600)]


def test_lab_scan_under_xinjiang_separates_law_from_due_diligence(lab, tmp_path) -> None:
    db, html, js = tmp_path / "x.db", tmp_path / "x.html", tmp_path / "x.json"
    p = subprocess.run(["ip", "netns", "exec", str(lab.scanner_netns), sys.executable, "-m", "scanner.cli", "scan",
                        lab.cidr, "--db", str(db), "--policy", "xinjiang", "--quiet", "--report", f"html:{html}",
                        "--report", f"json:{js}"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    model = json.loads(js.read_text())
    assert model["policy"]["name"] == "xinjiang" and model["policy"]["owners"] is True
    truth = {r["ip"]: r for r in lab.ground_truth_rows() if not r.get("parent_ip")}
    checked = 0
    for d in model["devices"]:
        t = truth.get(d["ip"])
        if t is None or d.get("parent_ip") or d["manufacturer"] != t["manufacturer"]:
            continue
        bases = {(f["list"], f["basis"]) for f in d["flags"]}
        if t["manufacturer"] in ("Hikvision", "Dahua"):
            assert d["restricted"] is True
            assert {("ndaa889", "law"), ("xinjiang_surveillance", "due_diligence")} <= bases, d["ip"]
            dd = next(f for f in d["flags"] if f["list"] == "xinjiang_surveillance")
            assert dd["via"] == "made_by" and dd["evidence"] and all(e["cite"] for e in dd["evidence"])
            checked += 1
        elif t["manufacturer"] in ("Axis", "Bosch", "Hanwha Vision", "Uniview"):
            assert d["restricted"] is False and d["flags"] == [], d["ip"]
    assert checked >= 5
    text = html.read_text()
    law, dd = text.index("Restricted by law"), text.index("Flagged by due diligence (not law)")
    assert law < dd
    assert "farclause.com" in text[law:dd] and "ipvm.com/reports/hikvision-xinjiang" in text[dd:]
