from __future__ import annotations

import csv
import io
import json

from scanner.cli import main
from scanner.report import fail_on_hits, parse_report_spec, write_report
from tests.report.sample import fleet, record_scan


def test_report_html_json_csv(sample, tmp_path, capsys):
    store, scan_id, _, path = sample
    out = tmp_path / "out" / "r.html"
    assert main(["report", "--db", str(path), "--latest", "-o", str(out)]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert main(["report", "--db", str(path), "--scan", str(scan_id), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["scan"]["id"] == scan_id
    assert main(["report", "--db", str(path), "-o", str(tmp_path / "r.csv")]) == 0  # format from the extension
    assert len(list(csv.DictReader(io.StringIO((tmp_path / "r.csv").read_text(), newline="")))) == 9


def test_fail_on_exit_codes(sample, tmp_path, capsys):
    store, scan_id, _, path = sample
    out = str(tmp_path / "r.json")
    assert main(["report", "--db", str(path), "-o", out, "--fail-on", "restricted"]) == 1
    assert "fail-on condition met: restricted (7)" in capsys.readouterr().err
    assert main(["report", "--db", str(path), "-o", out, "--fail-on", "new,changed", "-q"]) == 0  # no earlier scan
    assert main(["report", "--db", str(path), "-o", out, "--fail-on", "sometimes"]) == 2
    assert "--fail-on 'sometimes'" in capsys.readouterr().err


def test_fail_on_new_compares_with_previous_scan_of_the_site(sample):
    store, scan_id, _, _ = sample
    later, _ = record_scan(store, fleet()[:3])  # three of nine devices seen again, nothing new
    assert fail_on_hits(store, later, ["new", "changed", "relabel"]) == ["relabel (1)"]
    other, _ = record_scan(store, fleet()[3:5], site="branch")
    assert fail_on_hits(store, other, ["new"]) == []  # no earlier scan of site 'branch'


def test_report_errors_are_messages(sample, tmp_path, capsys):
    store, scan_id, _, path = sample
    assert main(["report", "--db", str(tmp_path / "none.db")]) == 2
    assert "no camsweep store" in capsys.readouterr().err
    assert main(["report", "--db", str(path), "--scan", "42"]) == 2
    assert "no scan with id 42" in capsys.readouterr().err
    assert main(["report", "--db", str(path), "-o", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert main(["report", "--db", str(path), "--latest", "--site", "moon"]) == 2
    assert "no scan for site 'moon'" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()


def test_list_and_json_logs(sample, capsys):
    store, scan_id, _, path = sample
    assert main(["report", "--db", str(path), "--list"]) == 0
    out = capsys.readouterr().out
    assert "198.18.0.0/24" in out and "hq" in out
    assert main(["report", "--db", str(path), "-o", "-", "--format", "csv", "-v", "--log-format", "json"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    rec = json.loads(err[-1])
    assert rec["msg"] == "report written" and rec["scan_id"] == scan_id and rec["level"] == "info"


def test_write_report_spec(sample, tmp_path):
    store, scan_id, _, _ = sample
    assert parse_report_spec("html:/tmp/x") == ("html", "/tmp/x")
    assert parse_report_spec("out.JSON") == ("json", "out.JSON")
    for bad in ("xls:x.xls", "html:", "report"):
        try:
            parse_report_spec(bad)
        except Exception as exc:  # noqa: BLE001
            assert "FORMAT:PATH" in str(exc) or "no path" in str(exc)
        else:
            raise AssertionError(bad)
    outdir = tmp_path / "reports"
    path = write_report(store, scan_id, f"json:{outdir / 'w.json'}")
    assert json.loads((outdir / "w.json").read_text())["summary"]["devices"] == 9
    assert path.endswith("w.json") and [p.name for p in outdir.iterdir()] == ["w.json"]  # no temp file left
