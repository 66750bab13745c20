"""`camsweep identify --from nmap-xml|pcap FILE`: evidence from files users already have."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REC = ROOT / "tests" / "recordings"

pytestmark = pytest.mark.timeout(120)


def camsweep(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scanner.cli", "identify", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=100)


def test_identify_from_nmap_xml():
    run = camsweep("--from", "nmap-xml", str(REC / "nmap" / "lab-nmap-sV.xml"))
    assert run.returncode == 0, run.stderr
    rows = {r["id"]: r for r in map(json.loads, run.stdout.splitlines())}
    assert rows["nmap:198.18.0.4"]["manufacturer"] == "Hikvision"  # an Annke relabel
    assert rows["nmap:198.18.0.3"]["manufacturer"] == "Dahua"  # a Honeywell relabel
    assert rows["nmap:198.18.0.8"]["restricted"] is False


def test_identify_from_pcap():
    run = camsweep("--from", "pcap", str(REC / "pcap" / "lab-discovery.pcap"))
    assert run.returncode == 0, run.stderr
    rows = {r["id"]: r for r in map(json.loads, run.stdout.splitlines())}
    assert len(rows) == 20
    assert rows["pcap:198.18.0.4"]["manufacturer"] == "Hikvision"
    assert rows["pcap:198.18.0.3"]["manufacturer"] == "Dahua"


@pytest.mark.parametrize("args, message", [
    (("--from", "pcap", "/etc/hostname"), "not a pcap"),
    (("--from", "pcap", "/nonexistent/cap.pcap"), "cannot read"),
    (("--from", "nmap-xml", "-"), "give its path"),
])
def test_identify_from_bad_input_is_a_clear_error(args, message):
    run = camsweep(*args)
    assert run.returncode == 2 and message in run.stderr and "Traceback" not in run.stderr
