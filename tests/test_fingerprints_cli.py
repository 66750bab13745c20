"""`camsweep fingerprints info|update`, and the fingerprint versions the store and reports record."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from fingerprints import recog
from scanner.cli import main
from scanner.devices import fingerprints_version
from scanner.report import build_report_model, render_report
from scanner.store import Store

RECOG_VERSION = "Recog 14fa1a7211e7 (2026-06-29)"


def test_info_json_names_every_source_with_its_version(capsys) -> None:
    assert main(["fingerprints", "info", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    by = {s["source"]: s for s in out["sources"]}
    assert set(by) == {"camsweep rules", "Recog", "IEEE MAC registry"}
    assert by["Recog"]["commit"] == "14fa1a7211e7fb5707c7a1b421a07d6c2cf4eec5" and by["Recog"]["date"] == "2026-06-29"
    assert by["Recog"]["fingerprints"] == sum(by["Recog"]["per_file"].values()) >= 3000
    assert by["camsweep rules"]["rules"] >= 100 and by["IEEE MAC registry"]["blocks"] > 10000
    assert RECOG_VERSION in out["version"]


def test_info_text(capsys) -> None:
    assert main(["fingerprints", "info"]) == 0
    out = capsys.readouterr().out
    assert "14fa1a7211e7fb5707c7a1b421a07d6c2cf4eec5 (2026-06-29)" in out and "http_servers.xml" in out


def test_update_from_a_checkout_and_a_clear_error(tmp_path: Path, capsys) -> None:
    src = tmp_path / "recog"
    shutil.copytree(recog.RECOG_DIR / "xml", src / "xml")
    (src / "README.md").write_text(f"snapshot of commit {'1' * 40} (2026-07-02)\n")
    dest = tmp_path / "out"
    assert main(["fingerprints", "update", "--recog", str(src / "xml"), "--output", str(dest)]) == 0
    assert json.loads((dest / "SOURCE.json").read_text())["date"] == "2026-07-02"
    assert "installed Recog 1111" in capsys.readouterr().out
    (src / "xml" / "ssh_banners.xml").unlink()
    assert main(["fingerprints", "update", "--recog", str(src / "xml"), "--output", str(dest)]) == 2
    assert "ssh_banners.xml: missing" in capsys.readouterr().err


def test_store_and_reports_record_the_recog_version(tmp_path: Path) -> None:
    version = fingerprints_version()
    assert version and RECOG_VERSION in version and "MAC registry" in version
    store = Store(tmp_path / "s.db")
    scan_id = store.start_scan(["198.18.0.0/24"], options={}, site="hq", fingerprints_version=version)
    store.finish_scan(scan_id)
    model = build_report_model(store, scan_id)
    assert RECOG_VERSION in json.loads(render_report(model, "json"))["scan"]["fingerprints_version"]
    assert RECOG_VERSION in render_report(model, "html")
