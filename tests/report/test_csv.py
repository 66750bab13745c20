from __future__ import annotations

import csv
import io

from scanner.report import build_report_model, render_report
from scanner.report.csv import COLUMNS, build_csv_rows


def test_csv_round_trips(sample):
    store, scan_id, ids, _ = sample
    model = build_report_model(store, scan_id)
    text = render_report(model, "csv")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert rows == build_csv_rows(model)
    assert list(rows[0].keys()) == list(COLUMNS)
    assert len(rows) == 9
    by_id = {int(r["device_id"]): r for r in rows}
    lts = by_id[ids["lts"]]
    assert (lts["brand"], lts["manufacturer"], lts["relabel"], lts["restricted"]) == ("LTS", "Hikvision", "yes", "yes")
    assert lts["lists"] == "ndaa889;fcc_covered"
    assert by_id[ids["hik"]]["suggested_model"] == "M3086-V"
    assert by_id[ids["unknown"]]["restricted"] == ""
    assert by_id[ids["channel"]]["parent_ip"] == "198.18.0.20"


def test_csv_shows_controls_and_defuses_formulas(sample):
    store, scan_id, ids, _ = sample
    model = build_report_model(store, scan_id)
    model["devices"][0]["brand"] = '=HYPERLINK("http://198.18.9.9","x")'
    model["devices"][1]["model"] = "@SUM(1+1)"
    text = render_report(model, "csv")
    assert "\x1b" not in text and "\x07" not in text
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert rows[0]["brand"] == "'=HYPERLINK(\"http://198.18.9.9\",\"x\")"
    assert rows[1]["model"] == "'@SUM(1+1)"
    hostile = next(r for r in rows if int(r["device_id"]) == ids["hostile"])
    assert hostile["firmware"] == "\\x1b]0;pwned\\x07\\x1b[31m2.6"
    assert hostile["model"] == "DH-<script>alert(1)</script>"  # CSV is not HTML: text stays text
