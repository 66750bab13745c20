"""Per-site and org-wide views from the command line, on both engines: report --site / --org, diff --site,
plan totals per site."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from scanner.evidence import Identification, parse_record
from scanner.store import Store

HIK = Identification(manufacturer="Hikvision", restricted=True, lists=("ndaa889",), confidence=0.9,
                     device_type="camera")
AXIS = Identification(manufacturer="Axis", restricted=False, confidence=0.8, device_type="camera")


def cli(*args):
    return subprocess.run([sys.executable, "-m", "scanner.cli", *args], capture_output=True, text=True, timeout=120)


def test_site_and_org_views(store_url):
    with Store(store_url) as s:
        for day in range(2):
            for site, n in (("hq", 3), ("branch", 2)):
                sid = s.start_scan(["198.18.0.0/24"], site=site)
                for i in range(n + day):  # the second day finds one more device at each site
                    s.record_device(sid, parse_record({"ip": f"198.18.0.{i + 2}"}), HIK if i == 0 else AXIS,
                                    site=site)
                s.finish_scan(sid)
    p = cli("report", "--org", "--db", store_url, "-f", "json")
    assert p.returncode == 0, p.stderr
    org = json.loads(p.stdout)
    assert org["summary"]["devices"] == 4 + 3 and org["summary"]["restricted"] == 2
    assert {x["site"]: x["devices"] for x in org["summary"]["by_site"]} == {"hq": 4, "branch": 3}
    assert [x["site"] for x in org["org"]["scans"]] == ["hq", "branch"]
    import jsonschema

    schema = json.loads((Path(__file__).resolve().parent.parent / "scanner/report/schema/report-v1.json").read_text())
    jsonschema.validate(org, schema)
    assert {d["site"]: d["scan_id"] for d in org["devices"]} == {"hq": 3, "branch": 4}
    p = cli("report", "--org", "--db", store_url, "-f", "csv")
    assert p.returncode == 0 and "\n3,hq," in p.stdout.replace("\r\n", "\n") and "\n4,branch," in p.stdout.replace("\r\n", "\n")
    p = cli("report", "--latest", "--site", "branch", "--db", store_url, "-f", "json")
    rep = json.loads(p.stdout)
    assert rep["scan"]["site"] == "branch" and rep["summary"]["devices"] == 3
    p = cli("diff", "--site", "hq", "--db", store_url, "--format", "json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert len(d["new"]) == 1 and d["gone"] == [] and (d["old_scan"], d["new_scan"]) == (1, 3)
    p = cli("diff", "1", "2", "--site", "hq", "--db", store_url)
    assert p.returncode == 2 and "not both of site" in p.stderr
    p = cli("report", "--org", "--db", store_url, "-f", "json", "--fail-on", "restricted")
    assert p.returncode == 1
    p = cli("plan", "show", "--db", store_url)
    assert p.returncode == 0, p.stderr
    assert "hq" in p.stdout and "branch" in p.stdout
    p = cli("export", "--format", "ips", "--site", "hq", "--db", store_url)  # block lists from either engine
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["198.18.0.2"]
    p = cli("plan", "set", "1", "--status", "ordered", "--hardware", "100", "--db", store_url)
    assert p.returncode == 0, p.stderr
    p = cli("plan", "set", "1", "--status", "replaced", "--db", store_url)  # an update of the saved row
    assert p.returncode == 0, p.stderr
    with Store(store_url) as s:
        assert s.plan(1)["status"] == "replaced" and s.plan(1)["cost_hardware"] == 100
