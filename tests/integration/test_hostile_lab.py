"""Issue 13: a full `camsweep scan` (with the lab's credentials) of a lab holding one device of every
profile, every hostile one included, plus the hostile profiles built only on request (lone surrogates in
DHIP/RPC2 JSON, escape codecs as charset, a gzip bomb on the credentialed ONVIF path, hundreds of mDNS
names): exit 0, every other device recorded, and each hostile device recorded with its text cleaned."""

from __future__ import annotations

import json
import random
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scanner.lab import manager
from scanner.lab import netns as nsmod
from scanner.lab.profiles import ON_REQUEST_KEYS, build_device, build_fleet

pytestmark = [pytest.mark.lab, pytest.mark.slow, pytest.mark.timeout(600)]
_reason = nsmod.netns_unavailable_reason()
if _reason:
    pytestmark.append(pytest.mark.skip(reason=f"needs network namespaces: {_reason}"))

ROOT = Path(__file__).resolve().parents[2]


def _fleet() -> list:
    specs = build_fleet(30, seed=13)  # one of every default profile (each older hostile one included)
    n = len(specs)
    return specs + [build_device(k, n + i, random.Random(f"camsweep-hostile-{i}-{k}"))
                    for i, k in enumerate(ON_REQUEST_KEYS)]


@pytest.fixture(scope="module")
def hostile_scan(tmp_path_factory):
    from tests.conftest import lab_test_prefix, reap_stale_test_labs

    reap_stale_test_labs()
    specs = _fleet()
    prefix = lab_test_prefix("hx")
    st = manager.up(len(specs), 0, prefix=prefix, fleet=specs)
    try:
        out = tmp_path_factory.mktemp("hostile")
        db, ev = out / "scan.db", out / "evidence.jsonl"
        t0 = time.monotonic()
        p = subprocess.run(["ip", "netns", "exec", str(st.scanner_netns), sys.executable, "-m", "scanner.cli",
                            "scan", st.cidr, "--db", str(db), "--credentials", st.credentials_file, "--format",
                            "json", "--evidence-out", str(ev)],
                           capture_output=True, text=True, timeout=420, cwd=ROOT)
        took = time.monotonic() - t0
        truth = st.ground_truth_rows()
    finally:
        manager.down(prefix)
    return p, truth, db, ev, took


def test_the_scan_ends_well_and_records_every_device(hostile_scan):
    p, truth, db, ev, took = hostile_scan
    print(f"\nhostile lab scan of {len(truth)} devices took {took:.1f} s; stderr: {p.stderr[-1500:]}")
    assert p.returncode == 0, p.stderr[-3000:]
    assert "Traceback" not in p.stderr
    devices = json.loads(p.stdout)
    by_ip = {d["ip"]: d for d in devices if not d.get("parent_ip")}
    listed = {(d["parent_ip"], str(d["channel"])) for d in devices if d.get("parent_ip")}
    on_request = [t for t in truth if t["profile"] in ON_REQUEST_KEYS]
    assert {t["profile"] for t in on_request} == set(ON_REQUEST_KEYS)
    others = [t for t in truth if t["profile"] not in ON_REQUEST_KEYS]
    missing = [(t["profile"], t["ip"]) for t in others if t.get("ip") and t["ip"] not in by_ip]
    missing += [(t["profile"], t["parent_ip"], t["channel"]) for t in others
                if t.get("parent_ip") and (t["parent_ip"], str(t["channel"])) not in listed]
    assert missing == [], missing
    # the hostile devices themselves are recorded too: one device's text no longer stops the store
    assert [t["profile"] for t in on_request if t["ip"] not in by_ip] == []
    surrogate = next(t for t in on_request if t["profile"] == "hostile_surrogate")
    d = by_ip[surrogate["ip"]]
    assert d["manufacturer"] == "Dahua" and d["restricted"] is True, d
    # private files
    assert stat.S_IMODE(db.stat().st_mode) == 0o600 and stat.S_IMODE(ev.stat().st_mode) == 0o600


def test_hostile_text_is_stored_clean(hostile_scan):
    p, truth, db, ev, _ = hostile_scan
    assert p.returncode == 0
    by_profile = {t["profile"]: t["ip"] for t in truth if t["profile"] in ON_REQUEST_KEYS}
    records = {}
    for line in ev.read_text(encoding="utf-8").splitlines():  # strict UTF-8: no lone surrogate got in
        rec = json.loads(line)
        records[rec.get("ip")] = rec
    # surrogate escapes in DHIP / RPC2 JSON: kept as U+FFFD, the rest of each value as sent
    sur = records[by_profile["hostile_surrogate"]]
    json.dumps(sur, ensure_ascii=False).encode("utf-8")  # no lone surrogate (a pair, U+10000, is text)
    for protocol in ("dhip", "rpc2_magicbox"):  # the multicast reply and the credentialed RPC2 calls
        entries = [d for d in sur.get("discovery", []) if d.get("protocol") == protocol]
        assert entries and "\ufffd" in json.dumps(entries, ensure_ascii=False), (protocol, sur.get("discovery"))
    # an escape codec as charset: ignored, the bytes read as UTF-8 (the backslashes stay text)
    cs = records[by_profile["hostile_charset"]]
    titles = [h.get("title") for h in cs.get("http", [])]
    assert "IP Camera \\ud800\\udfff" in titles, titles
    # the gzip bomb on the credentialed ONVIF path: refused, nothing taken from it
    ov = records[by_profile["hostile_onvif_gzip"]].get("onvif") or {}
    assert ov.get("auth_required") is True and not ov.get("authenticated") and not ov.get("model"), ov
