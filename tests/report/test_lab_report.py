"""Reports and diffs of real lab scans: two scans of a namespace lab, the second with one device added
and one Dahua camera re-flashed; the diff must report exactly those, and the report of the fleet (which
holds a device whose banners carry markup and terminal escapes) must show them as text."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from scanner.diff import build_scan_diff
from scanner.lab import manager
from scanner.lab import netns as nsmod
from scanner.report import build_report_model, render_report
from scanner.report.json import load_schema
from scanner.store import Store
from tests.conftest import lab_test_prefix

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(600)]
SEED, N = 11, 20  # this fleet holds a hostile_escape device and two relabels


def _scan(fleet, db: Path, prefix: str) -> dict[str, dict]:
    """Scan a lab of ``fleet``; returns the lab's ground truth by MAC."""
    st = manager.up(len(fleet), SEED, prefix=prefix, fleet=fleet)
    try:
        truth = {r["mac"]: r for r in st.ground_truth_rows()}
        p = subprocess.run(["ip", "netns", "exec", str(st.scanner_netns), sys.executable, "-m", "scanner.cli",
                            "scan", st.cidr, "--db", str(db), "--site", "lab", "--credentials",
                            st.credentials_file, "--format", "json", "--quiet", "--timeout", "6",
                            "--host-timeout", "40"],
                           capture_output=True, text=True, timeout=400)
        assert p.returncode == 0, p.stderr[-2000:]
        assert "Traceback" not in p.stderr
    finally:
        manager.down(prefix)
    return truth


@pytest.fixture(scope="module")
def lab_store(tmp_path_factory):
    reason = nsmod.netns_unavailable_reason()
    if reason:
        pytest.skip(reason)
    for mod in ("scanner.engine", "scanner.identify", "scanner.commands.scan"):
        pytest.importorskip(mod)
    from scanner.lab.profiles import build_fleet

    fleet1 = build_fleet(N, SEED)
    extra = build_fleet(N + 1, SEED)[-1]
    k = next(i for i, d in enumerate(fleet1)
             if d.manufacturer == "Dahua" and d.device_type == "camera" and not d.hostile)
    fleet2 = list(fleet1)
    fleet2[k] = dataclasses.replace(fleet1[k], firmware="2.820.0000000.5.R")
    fleet2.append(extra)
    db = tmp_path_factory.mktemp("labreport") / "lab.db"
    prefix = lab_test_prefix("r")
    truth = _scan(fleet1, db, prefix)
    truth.update(_scan(fleet2, db, prefix))  # the same devices, plus the added one, the re-flash's firmware
    store = Store(db)
    yield store, fleet1[k], extra, truth
    store.close()


def test_lab_diff_reports_exactly_the_added_and_the_reflashed_device(lab_store):
    """The diff finds the added device and the re-flash. Any other change it reports must be the scanner
    disagreeing with itself (the stored identifications really differ and one of them contradicts the
    lab's ground truth): the devices themselves did not change. Such noise is printed, not hidden."""
    store, reflashed, added, truth = lab_store
    a, b = (s.id for s in store.scans(site="lab"))
    old_rows, new_rows = store.devices(scan_id=a), store.devices(scan_id=b)
    d = build_scan_diff(old_rows, new_rows)
    assert [x["mac"] for x in d.new] == [added.mac]
    assert d.gone == ()
    by_mac = {c.new["mac"]: c for c in d.changed}
    flash = by_mac.pop(reflashed.mac)
    assert flash.matched_on == "mac"
    assert [x.to_dict() for x in flash.changes if x.field == "firmware"] == [
        {"field": "firmware", "old": reflashed.firmware, "new": "2.820.0000000.5.R"}]
    noise = [(flash.new["mac"], x.to_dict()) for x in flash.changes if x.field != "firmware"]
    for mac, c in by_mac.items():
        noise += [(mac, x.to_dict()) for x in c.changes]
    old_by_mac = {r["mac"]: r for r in old_rows}
    new_by_mac = {r["mac"]: r for r in new_rows}
    for mac, ch in noise:
        o, n = old_by_mac[mac].get(ch["field"]), new_by_mac[mac].get(ch["field"])
        assert (o, n) == (ch["old"], ch["new"]), (mac, ch)  # what the diff says is what the store holds
        t = truth[mac].get(ch["field"])
        assert o != t or n != t, (mac, ch, t)  # the scanner, not the device, changed its answer
    if noise:
        print(f"\nscanner disagreed with itself between two scans of unchanged devices: {noise}")


def test_lab_report_validates_and_shows_hostile_text_as_text(lab_store):
    store, _, _, _ = lab_store
    scan_id = store.latest_scan_id(site="lab")
    model = build_report_model(store, scan_id)
    jsonschema.Draft202012Validator(load_schema(), format_checker=jsonschema.FormatChecker()).validate(
        json.loads(render_report(model, "json")))
    assert model["summary"]["restricted"] >= 10 and model["summary"]["relabels"] >= 1
    html_text = render_report(model, "html")
    assert "<script" not in html_text.lower() and "\x1b" not in html_text and "\x07" not in html_text
    # the lab's hostile device (markup and terminal escapes in its headers and banners): whatever the
    # identifier made of it, the report shows what it presents, as escaped text
    hostile = [d for d in model["devices"] if any("alert('camsweep')" in o["value"] for o in d.get("observed", []))]
    seen = [r for _, r in store.observations(scan_id) if "alert('camsweep')" in json.dumps(r.to_dict())]
    assert len(hostile) == len(seen) == 1, "the hostile lab device was not observed in this scan"
    assert "&lt;script&gt;alert(&#x27;camsweep&#x27;)&lt;/script&gt;" in html_text
    assert 'class="ctl" title="control character">\\x1b</span>' in html_text
