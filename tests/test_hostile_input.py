"""Issue 13, items 3, 5, 8, 9 and 10: hostile text, the identify reader, private files, redacted text
logs and a store created by two processes at once. No network: the engine runs on fake probes."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from scanner.devices import merge_fragments
from scanner.engine import ScanOptions, run_scan
from scanner.errors import DeviceWriteError
from scanner.events import ScanWarning
from scanner.evidence import (
    EvidenceError,
    Identification,
    clean_evidence,
    clean_text,
    parse_line,
    parse_record,
)
from scanner.logs import JsonFormatter, TextFormatter
from scanner.probes.base import decode_text, text_charset
from scanner.probes.http import build_http_entry, parse_title
from scanner.store import Store

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[1]


def _storable(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# item 3: lone surrogates and device-chosen charsets


def test_clean_text_replaces_lone_surrogates_only():
    assert clean_text("plain") == "plain"
    assert clean_text("caf\u00e9 \U0001f600") == "caf\u00e9 \U0001f600"  # real text kept as it is
    assert clean_text("a\ud800b\udfff") == "a\ufffdb\ufffd"
    cleaned = clean_evidence({"Server\udc80": ["x\ud83d", 7, {"k": "\udfff"}], "n": None})
    assert cleaned == {"Server\ufffd": ["x\ufffd", 7, {"k": "\ufffd"}], "n": None}


def test_dhip_and_rpc2_json_with_surrogate_escapes_become_a_storable_record():
    # what a DHIP notifyDevInfo / RPC2 reply with "\udXXX" escapes decodes to
    dhip = json.loads('{"discovery": [{"protocol": "dhip", "fields": {"DeviceType": "IPC\\ud800", '
                      '"SerialNo": "\\udfffABC", "Vendor": "Dahua"}}]}')
    rpc2 = json.loads('{"discovery": [{"protocol": "rpc2", "fields": {"deviceType": "\\udbff\\udbff"}}],'
                      ' "mdns": [{"name": "cam\\ud800", "txt": {"k\\udc00": "v"}}]}')
    rec = merge_fragments("198.18.0.9", None, [dhip, rpc2])
    assert {d.protocol for d in rec.discovery} == {"dhip", "rpc2"}
    assert rec.discovery[0].fields["DeviceType"] == "IPC\ufffd"
    assert all(_storable(v) for _, v in rec.iter_fields())
    with Store(":memory:") as store:
        sid = store.start_scan(["198.18.0.9"])
        store.record_device(sid, rec, Identification(manufacturer="Dahua", model=rec.discovery[0].fields["DeviceType"]))
        ((_, back),) = list(store.observations(sid))
        assert back.discovery[0].fields["SerialNo"] == "\ufffdABC"


@pytest.mark.parametrize("charset", ["unicode_escape", "raw_unicode_escape", "utf-7", "idna", "punycode",
                                     "rot13", "hex", "zlib", "base64", "x-no-such-charset"])
def test_only_text_charsets_are_honoured(charset):
    body = b'<meta charset="' + charset.encode() + b'"><title>\\ud800 T</title>\\udc00 body'
    for headers in ([("Content-Type", f"text/html; charset={charset}")], [("Content-Type", "text/html")]):
        entry = build_http_entry(200, headers, body, port=80, tls=False)
        assert entry["title"] == "\\ud800 T"  # the bytes as they are, read as UTF-8
        assert _storable(entry["body"]) and "\\udc00" in entry["body"]
    assert text_charset(charset) is None
    assert decode_text(b"\\ud800", charset) == "\\ud800"


def test_real_charsets_still_decode():
    assert text_charset("ISO-8859-1") == "iso8859-1" and text_charset('"utf-8"') == "utf-8"
    assert text_charset("GB2312") == "gb2312" and text_charset("Shift_JIS") == "shift_jis"
    assert decode_text("Caméra".encode("latin-1"), "iso-8859-1") == "Caméra"
    assert parse_title("<title>网络摄像机</title>".encode("gbk"), "gbk") == "网络摄像机"
    entry = build_http_entry(200, [("Content-Type", "text/html; charset=windows-1251")],
                             "<title>Камера</title>".encode("cp1251"), port=80, tls=False)
    assert entry["title"] == "Камера"


@pytest.mark.parametrize("bad", ["bad\ud800", "nul\x00byte"])
def test_a_device_the_store_refuses_is_its_own_error(store_url, bad):
    """On both engines (PostgreSQL refuses NUL in text, SQLite's driver lone surrogates)."""
    rec = parse_record({"ip": "198.18.0.7", "http": [{"headers": {"Server": "ok"}}]})
    with Store(store_url) as store:
        sid = store.start_scan(["198.18.0.7"])
        if bad == "nul\x00byte" and not store.pg:  # SQLite keeps NUL
            store.record_device(sid, rec, Identification(manufacturer=bad))
            assert [d["manufacturer"] for d in store.devices(sid)] == [bad]
            return
        if store.pg:  # scanner.pgstore stores such text cleaned (U+FFFD): nothing to refuse, nothing lost
            store.record_device(sid, rec, Identification(manufacturer=bad))
            assert [d["manufacturer"] for d in store.devices(sid)] == [bad.replace("\ud800", "\ufffd").replace("\x00", "\ufffd")]
            return
        with pytest.raises(DeviceWriteError, match="198.18.0.7 not stored") as err:
            store.record_device(sid, rec, Identification(manufacturer=bad))
        str(err.value).encode("utf-8")  # the message itself is printable text
        assert store.devices(sid) == []  # rolled back whole
        store.record_device(sid, rec, Identification(manufacturer="good"))  # the store still works
        assert [d["manufacturer"] for d in store.devices(sid)] == ["good"]


class _RefusesOne(Store):
    """A store whose database refuses one device's values (as SQLite refuses text that is not Unicode)."""

    def _record_device(self, scan_id, record, ident, **kw):
        if record.ip == "127.0.0.3":
            "\ud800".encode("utf-8")  # the refusal SQLite's driver raises
        return super()._record_device(scan_id, record, ident, **kw)


def _alive(hosts):
    async def open_stream(host, port):
        if host in hosts:
            raise ConnectionRefusedError(111, "refused")
        await asyncio.sleep(30)

    return open_stream


class _Ident:
    def identify(self, rec):
        server = next((h.headers.get("Server", "") for h in rec.http), "")
        return Identification(manufacturer=server or None, confidence=0.5)


async def test_hostile_text_and_a_refused_device_do_not_stop_the_scan():
    alive = {"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"}

    async def http(host, ctx):
        if host == "127.0.0.4":  # lone surrogates everywhere a device's JSON can put them
            return {"http": [{"port": 80, "status": 200, "headers": {"Server": "Web\ud800"},
                              "title": "\udfff", "body": "x\udc00"}],
                    "discovery": [{"protocol": "rpc2", "fields": {"deviceType": "IPC\ud800"}}]}
        return {"http": [{"port": 80, "status": 200, "headers": {"Server": f"srv-{host}"}}]}

    events = []
    store = _RefusesOne(":memory:")
    o = ScanOptions(identifier=_Ident(), discoverers={}, routes=lambda: [], liveness_timeout=0.2, rate=0,
                    timeout=0.5, connect_timeout=0.2, host_timeout=2.0, open_stream=_alive(alive),
                    host_probes={"http": http})
    sid = await run_scan(["127.0.0.2-5"], o, store, on_event=events.append)
    info = store.scan(sid)
    assert info.status == "complete", info
    devs = {d["ip"]: d for d in store.devices(sid)}
    assert set(devs) == alive - {"127.0.0.3"}
    assert devs["127.0.0.4"]["manufacturer"] == "Web\ufffd"
    warnings = [e.message for e in events if isinstance(e, ScanWarning)]
    assert any("127.0.0.3 not stored" in w for w in warnings), warnings
    store.close()


# ---------------------------------------------------------------------------------------------
# item 5: `camsweep identify` on bad lines


def _camsweep(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "scanner.cli", *args], input=stdin, capture_output=True,
                          text=True, env=env, timeout=120, cwd=cwd)


def test_identify_answers_every_good_line_and_names_every_bad_one(tmp_path):
    lines = [
        '{"ip": "10.0.0.1", "http": [{"headers": {"Server": "App-webs/"}}]}',
        '{"ip": "10.0.0.2", "http": [{"port": ' + "9" * 5000 + "}]}",  # > 4,300 digits
        '{"ip": "10.0.0.3", "http": [{"headers": {"Server": "\\ud800abc"}}]}',  # a lone surrogate
        '{"ip": "10.0.0.4", "http": [{"headers": {"Server": "DNVRS-Webs"}}]}',
        '{"ip": "10.0.0.5", "onvif": {"manufacturer": "x\\udfff"}, "n": -' + "1" * 4400 + "}",
        '{"ip": "10.0.0.6", "http": [{"headers": {"Server": "\\ud83d\\ude00 pair"}}]}',  # a real pair: good
        '{"ip": "10.0.0.7", "http": [{"port": "' + "7" * 5000 + '"}]}',  # a long digit string
        '{"ip": "10.0.0.8", "mdns": [{"txt": {"\\udc00": "v"}}]}',  # in a key
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = _camsweep("identify", str(path))
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    answered = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(answered) == 3  # lines 1, 4 and 6
    assert answered[0]["manufacturer"] == "Hikvision"
    for n in (2, 3, 5, 7, 8):
        assert f"line {n}:" in r.stderr, r.stderr
    for n in (1, 4, 6):
        assert f"line {n}:" not in r.stderr
    assert "lone surrogate" in r.stderr and "4300 digits" in r.stderr


def test_parse_line_errors_are_its_own():
    for bad in ('{"ip": 1' + "0" * 5000 + "}", '{"ip": "\\udbff"}', '["\\ud800"]'):
        with pytest.raises(EvidenceError):
            parse_line(bad)
    assert parse_line('{"ip": "10.0.0.1", "x": "\\ud83d\\ude00"}').extra["x"] == "\U0001f600"


# ---------------------------------------------------------------------------------------------
# item 8: private files


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_store_evidence_out_and_reports_are_created_0600(tmp_path):
    old = os.umask(0o022)
    try:
        db = tmp_path / "new" / "camsweep.db"
        with Store(db) as store:
            sid = store.start_scan(["10.0.0.1"])
            rec = parse_record({"ip": "10.0.0.1", "onvif": {"serial": "SERIAL1"}})
            store.record_device(sid, rec, Identification(manufacturer="x"))
            store.finish_scan(sid)
            assert _mode(db) == 0o600
            assert _mode(db.parent) == 0o700  # a directory camsweep made
            for side in ("-wal", "-shm"):
                p = Path(str(db) + side)
                if p.exists():
                    assert _mode(p) == 0o600, side
        from scanner.commands.scan import _write_evidence
        from scanner.report import write_report

        with Store(db) as store:
            ev = tmp_path / "evidence.jsonl"
            ev.write_text("old\n")
            os.chmod(ev, 0o644)  # an existing file is narrowed before the evidence goes in
            _write_evidence(store, sid, str(ev))
            assert _mode(ev) == 0o600 and "SERIAL1" in ev.read_text()
            for fmt in ("json", "csv", "html"):
                out = tmp_path / f"report.{fmt}"
                write_report(store, sid, f"{fmt}:{out}")
                assert _mode(out) == 0o600, fmt
        legacy = tmp_path / "legacy.db"
        Store(legacy).close()
        os.chmod(legacy, 0o644)
        Store(legacy).close()  # a store an older version left world-readable is narrowed
        assert _mode(legacy) == 0o600
    finally:
        os.umask(old)


# ---------------------------------------------------------------------------------------------
# item 9: text logs redact exception text


def _log_line(formatter: logging.Formatter) -> str:
    try:
        raise ConnectionError("GET http://admin:hunter2@198.18.0.5/ISAPI failed; password=hunter2")
    except ConnectionError:
        record = logging.getLogger("camsweep.test").makeRecord(
            "camsweep.test", logging.WARNING, __file__, 1, "probe failed", (), sys.exc_info())
    return formatter.format(record)


def test_text_and_json_logs_both_redact_exception_text():
    text, js = _log_line(TextFormatter()), _log_line(JsonFormatter())
    for line in (text, json.loads(js)["error"]):
        assert "hunter2" not in line
        assert "admin:[redacted]@198.18.0.5" in line
    assert "ConnectionError" in text


# ---------------------------------------------------------------------------------------------
# item 10: two processes creating a new store at once


def test_processes_creating_a_new_store_at_once_all_succeed(tmp_path):
    # each process imports the store, says it is ready, then waits for "go": they open it together
    script = textwrap.dedent("""
        import os, sys, time
        from scanner.store import Store
        db, gate, me = sys.argv[1], sys.argv[2], sys.argv[3]
        open(os.path.join(gate, "ready-" + me), "w").close()
        while not os.path.exists(os.path.join(gate, "go")):
            time.sleep(0.001)
        s = Store(db)
        print(s.schema_version())
        s.close()
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for attempt in range(3):
        db, gate = tmp_path / f"race{attempt}.db", tmp_path / f"gate{attempt}"
        gate.mkdir()
        procs = [subprocess.Popen([sys.executable, "-c", script, str(db), str(gate), str(i)], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(4)]
        deadline = time.monotonic() + 60
        while len(list(gate.glob("ready-*"))) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        (gate / "go").touch()
        outs = [p.communicate(timeout=60) for p in procs]
        for p, (out, err) in zip(procs, outs, strict=True):
            assert p.returncode == 0, err
            assert out.strip() == outs[0][0].strip() != ""
        with Store(db) as s:
            names = [r["name"] for r in s.db.query("select name from _migrations")]
            assert len(names) == len(set(names))


def test_migrate_is_idempotent_under_the_lock(tmp_path):
    db = tmp_path / "m.db"
    with Store(db) as a, Store(db) as b:
        assert a.migrate() == [] and b.migrate() == []


def test_writing_to_a_device_never_replaces_it(tmp_path):
    """A report or block list sent to /dev/null (or a FIFO) is written into it, never renamed over it."""
    import os
    import stat

    from scanner.commands.export import write_private
    from scanner.report import write_text_atomic

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    before = os.stat("/dev/null")
    write_text_atomic("/dev/null", "report")
    write_private("/dev/null", "list")
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev
    assert stat.S_IMODE(after.st_mode) == stat.S_IMODE(before.st_mode)
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        write_text_atomic(str(fifo), "through the pipe")
        assert os.read(fd, 100) == b"through the pipe"
    finally:
        os.close(fd)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    out = tmp_path / "r.json"
    write_text_atomic(str(out), "x")
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
