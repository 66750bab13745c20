"""scanner/devtext.py: clean at entry, safe to show; and every output of device text keeps U+202E and C1
controls from coming out raw."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import unicodedata
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from scanner.devtext import clean_text, is_hidden, json_safe, shown, visible
from scanner.store import Store
from tests.report.sample import record_scan

RLO, CSI = "\u202e", "\x9b"  # a bidi override and a C1 control (CSI on some terminals)
HOSTILE = f"A{RLO}B{CSI}C\u200bD\x1b[31m"

# any text, lone surrogates included
_any_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=200)


def _raw(text: str) -> bool:
    """True when ``text`` holds a hidden character as itself (tab, CR and LF aside: layout)."""
    return any(is_hidden(c) for c in text if c not in "\t\r\n")


@given(_any_text)
def test_visible_shows_nothing_hidden_and_leaves_the_rest(s: str) -> None:
    out = visible(s)
    assert not any(is_hidden(c) for c in out)
    out.encode("utf-8")  # a lone surrogate never reaches a writer
    assert visible(out) == out
    if not any(is_hidden(c) for c in s):
        assert out == s


@given(_any_text, st.integers(min_value=1, max_value=80), st.sampled_from(["", "…"]))
def test_shown_is_visible_and_cut_to_its_limit(s: str, limit: int, more: str) -> None:
    out = shown(s, limit, more=more)
    assert len(out) <= limit and not any(is_hidden(c) for c in out)
    whole = visible(s)
    if len(whole) <= limit:
        assert out == whole  # short text: all of it
    else:
        assert out == whole[: limit - len(more)] + more  # long text: its start, then the mark


@given(_any_text)
def test_visible_keep_passes_only_what_it_names(s: str) -> None:
    out = visible(s, keep="\t\n")
    assert not any(is_hidden(c) and c not in "\t\n" for c in out)
    assert out.count("\n") == s.count("\n")


@given(_any_text)
def test_clean_text_replaces_only_lone_surrogates(s: str) -> None:
    out = clean_text(s)
    out.encode("utf-8")
    assert len(out) == len(s)
    for a, b in zip(s, out, strict=True):
        assert b == ("\ufffd" if unicodedata.category(a) == "Cs" else a)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | _any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_any_text, inner, max_size=4), max_leaves=12)


@given(_json_values, st.sampled_from([None, 2]))
def test_json_safe_keeps_the_data_and_hides_nothing(value: object, indent: int | None) -> None:
    encoded = json.dumps(value, ensure_ascii=False, indent=indent)
    out = json_safe(encoded)
    assert not _raw(out)
    assert json.loads(out) == json.loads(encoded)


def test_escapes_name_the_character() -> None:
    assert visible(HOSTILE) == "A\\u202eB\\x9bC\\u200bD\\x1b[31m"
    assert visible("tag \U000e0041") == "tag \\U000e0041"
    assert json_safe(json.dumps({"k": f"{RLO}\U000e0041"}, ensure_ascii=False)) == '{"k": "\\u202e\\udb40\\udc41"}'


# --------------------------------------------------------------------------------------------
# every output of device text


def _hostile_store(tmp_path: Path) -> tuple[Store, int, int]:
    store = Store(tmp_path / "store.db")
    spec = {"key": "h", "record": {"ip": "198.18.0.77", "mac": "3c:ef:8c:77:77:77",
                                   "http": [{"port": 80, "status": 200, "headers": {"Server": HOSTILE},
                                             "title": HOSTILE}]},
            "ident": dict(manufacturer="Dahua", brand=HOSTILE, model=f"DH-IPC{HOSTILE}", firmware=HOSTILE,
                          device_type="camera", restricted=True, lists=("ndaa889",), confidence=0.7)}
    scan_id, ids = record_scan(store, [spec])
    store.save_plan(ids["h"], replacement_class="bullet", suggested_maker=HOSTILE, status="planned")
    store.set_note(Store.note_key("3c:ef:8c:77:77:77", ids["h"]), HOSTILE)
    return store, scan_id, ids["h"]


def test_reports_csv_json_html(tmp_path: Path) -> None:
    from scanner.report import build_report_model, render_report

    store, scan_id, _ = _hostile_store(tmp_path)
    model = build_report_model(store, scan_id)
    for fmt in ("csv", "json", "html"):
        text = render_report(model, fmt)
        assert isinstance(text, str) and not _raw(text), fmt
        assert "\\u202e" in text or "\\x9b" in text, fmt  # shown as an escape, not dropped
    assert json.loads(render_report(model, "json"))["devices"][0]["firmware"] == HOSTILE  # JSON: exact


def test_scan_table_csv_json_and_evidence(tmp_path: Path) -> None:
    from scanner.commands import scan as scancmd

    store, scan_id, _ = _hostile_store(tmp_path)
    rows = scancmd._rows(store.devices(scan_id))
    buf = io.StringIO()
    scancmd._table(rows, buf)
    assert not _raw(buf.getvalue()) and "\\u202e" in buf.getvalue()
    text = scancmd._csv(rows)
    assert not _raw(text) and "\\x9b" in text
    out = tmp_path / "evidence.jsonl"
    scancmd._write_evidence(store, scan_id, str(out))
    text = out.read_text(encoding="utf-8")
    assert not _raw(text)
    assert json.loads(text.splitlines()[0])["http"][0]["headers"]["Server"] == HOSTILE  # exact data


def test_plan_csv_and_json(tmp_path: Path, capsys) -> None:
    from scanner.cli import main as cli_main

    store, _, _ = _hostile_store(tmp_path)
    for fmt in ("csv", "json"):
        assert cli_main(["plan", "export", "--db", str(store.path), "--format", fmt]) == 0
        text = capsys.readouterr().out
        assert not _raw(text), fmt
    assert cli_main(["plan", "export", "--db", str(store.path), "--format", "csv"]) == 0
    cells = [c for row in csv.reader(io.StringIO(capsys.readouterr().out)) for c in row]
    assert any("\\u202e" in c for c in cells)


def test_blocklist_nac_csv(tmp_path: Path) -> None:
    from scanner.blocklist import build_blocklist

    store, scan_id, _ = _hostile_store(tmp_path)
    text = build_blocklist(store.devices(scan_id), "nac-csv")
    assert "3C:EF:8C:77:77:77" in text and not _raw(text)


def test_identify_jsonl_and_table() -> None:
    rec = {"id": f"x{RLO}{CSI}", "http": [{"headers": {"Server": f"App-webs/{RLO}{CSI}"}}]}
    for fmt in ("jsonl", "table"):
        r = subprocess.run([sys.executable, "-m", "scanner.cli", "identify", "-", "--format", fmt],
                           input=json.dumps(rec) + "\n", capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert not _raw(r.stdout), fmt


def test_identify_jsonl_is_exact() -> None:
    rec = {"id": f"x{RLO}{CSI}", "http": [{"headers": {"Server": "App-webs/"}}]}
    r = subprocess.run([sys.executable, "-m", "scanner.cli", "identify", "-", "--format", "jsonl"],
                       input=json.dumps(rec) + "\n", capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not _raw(r.stdout)
    assert json.loads(r.stdout)["id"] == rec["id"]


def test_logs_text_and_json() -> None:
    from scanner.logs import setup_logging

    for fmt in ("text", "json"):
        stream = io.StringIO()
        log = setup_logging(fmt, "warning", stream=stream)
        log.warning("device said %s", HOSTILE, extra={"banner": HOSTILE})
        assert stream.getvalue() and not _raw(stream.getvalue()), fmt
    setup_logging("text", "warning")


def test_lab_table_and_tui_cells() -> None:
    from scanner.commands.table import cell
    from tui.widgets import clean

    for shown in (cell(HOSTILE, 200), clean(HOSTILE)):
        assert not _raw(shown) and "\\u202e" in shown and "\\u200b" in shown
