"""`camsweep demo` end to end without a terminal: lab up, scan from the scanner namespace, summary table
with the ground-truth comparison, lab down (root + network namespaces; skipped with the reason otherwise)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from scanner.lab import manager
from scanner.lab import netns as nsmod
from scanner.store import Store
from tests.conftest import lab_test_prefix

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(600)]
if nsmod.netns_unavailable_reason():
    pytestmark.append(pytest.mark.skip(reason=f"needs network namespaces: {nsmod.netns_unavailable_reason()}"))


def test_demo_scans_the_lab_and_takes_it_down(tmp_path: Path) -> None:
    prefix = lab_test_prefix("d")
    db = tmp_path / "demo.db"
    proc = subprocess.run([sys.executable, "-m", "scanner.cli", "demo", "--devices", "12", "--seed", "5",
                           "--prefix", prefix, "--db", str(db)], capture_output=True, text=True, timeout=580)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert f"lab {prefix} up (netns): 12 devices on 198.18.0.0/24" in proc.stderr
    assert f"lab {prefix} down" in proc.stderr
    assert nsmod.lab_namespaces(prefix) == [] and manager.status(prefix) is None
    m = re.search(r"found (\d+) of (\d+) devices on the network", proc.stdout)
    assert m and m.group(2) == "12", proc.stdout[-1500:]
    with Store(db) as store:
        rows = store.devices(store.latest_scan_id())
    assert int(m.group(1)) == sum(1 for r in rows if (r["ip"] or "").startswith("198.18.0.")) >= 10
    for r in rows:  # every stored device is in the table the demo printed (PoE cameras under their NVR)
        if r.get("parent_id") is not None and r.get("channel") is not None:
            assert re.search(rf"^\s+└ ch{re.escape(str(r['channel']))}\s", proc.stdout, re.M), r
        elif r["ip"]:
            assert re.search(rf"^{re.escape(r['ip'])}\s", proc.stdout, re.M), r["ip"]
