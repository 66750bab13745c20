"""`camsweep identify`: output format, exit codes, hostile and malformed input."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from scanner.identify import Identifier

GOOD = {"id": "a", "http": [{"headers": {"Server": "App-webs/"}}]}


def _run(args: list[str], stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scanner.cli", "identify", *args], input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def test_jsonl_in_order_and_exit_0(tmp_path: Path) -> None:
    p = tmp_path / "in.jsonl"
    p.write_text(json.dumps(GOOD) + "\n\n" + json.dumps({"id": "b", "mac": "00:40:8c:12:34:56"}) + "\n")
    r = _run([str(p), "--format", "jsonl"])
    assert r.returncode == 0, r.stderr
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert [o["id"] for o in out] == ["a", "b"]
    assert out[0]["manufacturer"] == "Hikvision" and out[0]["restricted"] is True
    assert out[0]["evidence"][0]["rule"] == "http/hikvision-app-webs"
    assert out[1]["manufacturer"] == "Axis" and out[1]["restricted"] is False


def test_malformed_lines_are_named_and_the_rest_answered() -> None:
    lines = [
        json.dumps(GOOD),
        "{not json",
        json.dumps([1, 2, 3]),
        json.dumps({"id": "empty"}),
        json.dumps({"id": "badmac", "mac": "zz:zz"}),
        json.dumps({"id": "badtype", "http": "nope"}),
        "[" * 100000,
        json.dumps({"id": "last", "rtsp": [{"headers": {"Server": "Dahua Rtsp Server"}}]}),
    ]
    r = _run(["-"], stdin="\n".join(lines) + "\n")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    for n in (2, 3, 4, 5, 6, 7):
        assert f"line {n}:" in r.stderr, (n, r.stderr)
    ids = [json.loads(line)["id"] for line in r.stdout.splitlines()]
    assert ids == ["a", "last"]


def test_table_format_and_policy() -> None:
    r = _run(["-", "--format", "table", "--policy", "strict"], stdin=json.dumps({"id": "u", "mac": "48:ea:63:8b:07:91"}))
    assert r.returncode == 0, r.stderr
    assert "Uniview" in r.stdout and "yes" in r.stdout and "strict" in r.stdout


def test_bad_arguments() -> None:
    r = _run(["/nonexistent/file.jsonl"])
    assert r.returncode == 2 and "cannot read" in r.stderr and "Traceback" not in r.stderr
    r = _run(["-", "--policy", "nosuch"], stdin="")
    assert r.returncode == 2 and "unknown policy" in r.stderr and "Traceback" not in r.stderr


def test_hostile_values_are_bounded() -> None:
    """Long, odd and binary-looking values: no exception, no catastrophic backtracking."""
    idf = Identifier()
    big = "A" * 2_000_000
    nasty = [
        {"http": [{"headers": {"Server": big, "WWW-Authenticate": "Digest realm=\"" + "Login to " + "a" * 100000 + "\""},
                   "title": big, "body": "<DeviceInfo xmlns=\"" + "x" * 5000 + "\">" + "<a>" * 50000,
                   "path": "/ISAPI/System/deviceInfo"}]},
        {"wsd": [{"scopes": ["onvif://www.onvif.org/name/" + "%" * 100000], "xaddrs": ["[fe80::" + ":" * 5000 + "]"],
                  "endpoint": "uuid:" + "-" * 10000}]},
        {"onvif": {"manufacturer": "DS-" * 30000, "model": "DS-2CD" + "-" * 100000, "serial": "DS-" + "9" * 100000,
                   "firmware": "2." * 50000}},
        {"discovery": [{"protocol": "sadp", "fields": {"OEMInfo": "\x00\x01" * 1000, "DeviceSN": "AMC" * 3000}}],
         "banners": [{"protocol": "tcp", "hex": "00" * 100000}], "mdns": [{"name": "AXIS " * 20000, "txt": {"mac": "1" * 99}}]},
        {"mac": "ff:ff:ff:ff:ff:ff", "rtsp": [{"request": "PLAY rtsp://x/" + "a" * 100000, "status": 200}]},
    ]
    t0 = time.perf_counter()
    for rec in nasty:
        r = idf.identify(rec)
        assert not any(n.startswith("identification failed") for n in r.notes), r.notes
    assert time.perf_counter() - t0 < 5.0


def test_identify_never_raises() -> None:
    idf = Identifier()
    for bad in ({}, {"mac": 5}, {"http": [None]}, [], "x", None, {"onvif": [1]}):
        r = idf.identify(bad)  # type: ignore[arg-type]
        assert r.manufacturer is None and r.notes


def test_invalid_utf8_and_overlong_lines() -> None:
    data = (b'{"id":"a","mac":"28:57:be:01:02:03"}\n'
            b"\xff\xfe{broken}\n"
            b'{"id":"big","http":[{"body":"' + b"x" * (5 * 1024 * 1024) + b'"}]}\n'
            b'{"id":"z","mac":"00:40:8c:00:00:01"}\n')
    r = subprocess.run([sys.executable, "-m", "scanner.cli", "identify", "-"], input=data, capture_output=True,
                       timeout=60)
    assert r.returncode == 2
    err = r.stderr.decode()
    assert "line 2:" in err and "line 3:" in err and "longer than" in err and "Traceback" not in err
    assert [json.loads(x)["id"] for x in r.stdout.decode().splitlines()] == ["a", "z"]
