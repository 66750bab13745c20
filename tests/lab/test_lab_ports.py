"""A lab device whose web server was moved to 8080 (profiles.EXTRA_KEYS, only in explicit fleets):
`camsweep scan --http-ports 80,8080` names its maker from its web server on 8080; `--http-ports 80` cannot.
Loopback lab (any user; as root on the real ports, else on the lab's moved ports) and, with namespaces, the
namespace lab (where its MAC block would name it anyway, so there the proof is the HTTP evidence on 8080)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from scanner.lab import manager
from scanner.lab import netns as nsmod
from scanner.lab.profiles import build_device
from tests.conftest import lab_test_prefix

pytestmark = [pytest.mark.lab, pytest.mark.timeout(300)]
FLEET = ("hikvision_camera_http8080", "linux_server")


def _scan(st: manager.LabStatus, tmp: Path, http_ports: list[int], name: str) -> tuple[list[dict], list[dict]]:
    def moved(p: int) -> int:
        return int(st.port_map.get(str(p), p + st.port_offset))

    db, ev = tmp / f"{name}.db", tmp / f"{name}.jsonl"
    targets = ["-iL", st.targets_file] if st.mode == "loopback" else [st.cidr]
    cmd = [sys.executable, "-m", "scanner.cli", "scan", *targets, "--db", str(db), "--format", "json", "-q",
           "--http-ports", ",".join(str(moved(p)) for p in http_ports), "--evidence-out", str(ev)]
    if st.mode == "netns":
        cmd = ["ip", "netns", "exec", str(st.scanner_netns), *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout), [json.loads(x) for x in ev.read_text().splitlines()]


@pytest.mark.parametrize("mode", ["loopback", "netns"])
def test_http_on_8080_is_found_with_http_ports_80_8080(mode, tmp_path):
    if mode == "netns" and nsmod.netns_unavailable_reason():
        pytest.skip(f"needs network namespaces: {nsmod.netns_unavailable_reason()}")
    specs = [build_device(k, i, random.Random(f"hp8-{i}")) for i, k in enumerate(FLEET)]
    prefix = lab_test_prefix("p" + mode[0])
    st = manager.up(len(specs), 0, prefix=prefix, loopback=mode == "loopback", fleet=specs)
    try:
        truth = {r["ip"]: r for r in st.ground_truth_rows()}
        cam_ip = next(ip for ip, r in truth.items() if r["profile"] == "hikvision_camera_http8080")
        port8080 = int(st.port_map.get("8080", 8080 + st.port_offset))
        rows, evidence = _scan(st, tmp_path, [80, 8080], "with")
        cam = next(r for r in rows if r["ip"] == cam_ip)
        assert cam["manufacturer"] == "Hikvision" and cam["restricted"] is True, cam
        assert any(e["field"].startswith("http.") for e in cam["evidence"])
        http = next(r for r in evidence if r["ip"] == cam_ip)["http"]
        assert {h["port"] for h in http} == {port8080}  # its web server answered on 8080 and only there
        assert not any(r["restricted"] for r in rows if r["ip"] != cam_ip)
        if mode == "loopback":  # no MAC here: without 8080 nothing names it
            rows, evidence = _scan(st, tmp_path, [80], "without")
            cam = next(r for r in rows if r["ip"] == cam_ip)
            assert cam["manufacturer"] is None and cam["restricted"] is None, cam
            assert not next(r for r in evidence if r["ip"] == cam_ip).get("http")
    finally:
        manager.down(prefix)
    assert manager.status(prefix) is None
