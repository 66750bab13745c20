"""The commands' one table writer (scanner/commands/table.py): cells safe to show, plain columns for
lab/demo/report --list/plan show, the rich table for scan and identify."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from scanner.cli import main
from scanner.commands.table import PIPE_WIDTH, cell, format_table, markup_cell
from scanner.evidence import parse_record
from scanner.identify import Identification
from scanner.store import Store

HOSTILE = "<b>\x1b[2J\x1b]0;pwned\x07HIK\x9bVISION\u202e\u200b[bold]x[/]\r\n"


def _raw(text: str) -> bool:
    """Whether ``text`` holds a character a terminal would act on (C0 but newline, C1, bidi, zero-width)."""
    return any((ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F or c in "\u202e\u200b" for c in text)


def test_cells_never_carry_terminal_escapes_and_are_cut() -> None:
    shown = cell(HOSTILE, limit=200)
    assert not _raw(shown)
    assert "\\x1b[2J" in shown and "\\u202e" in shown and "HIK" in shown
    assert len(cell("x" * 100)) == 40 and cell("x" * 100).endswith("…") and cell("x" * 40) == "x" * 40
    assert cell(None) == "-" and cell(None, empty="") == "" and cell(True) == "yes" and cell(False) == "no"
    assert cell(7) == "7"
    assert markup_cell("[bold]x[/]") == "\\[bold]x\\[/]"  # rich shows it as text


def test_plain_columns() -> None:
    text = format_table(("name", "count"), [["a", "7"], ["longer name", "1234"]], right=("count",))
    assert text.splitlines() == ["NAME         COUNT",
                                 "a                7",
                                 "longer name   1234"]
    assert "\x1b" not in format_table(("model",), [[cell(HOSTILE)]])
    assert format_table(("a", "b"), []) == "A  B"


@pytest.fixture
def hostile_store(tmp_path):
    """One complete scan of a site whose label and device text are hostile, with one restricted device."""
    path = tmp_path / "t.db"
    with Store(path) as s:
        sid = s.start_scan(["198.18.0.0/24"], site=HOSTILE)
        rec = parse_record({"ip": "198.18.0.7", "mac": "28:57:be:00:00:07",
                            "http": [{"headers": {"Server": HOSTILE}}]})
        s.record_device(sid, rec, Identification(manufacturer="Hikvision", brand=HOSTILE, model=HOSTILE,
                                                 device_type="camera", restricted=True, lists=("ndaa889",),
                                                 confidence=0.95), site=HOSTILE)
        s.finish_scan(sid)
    return path


def _columns_line_up(text: str, right: list[str]) -> None:
    """Each right-aligned column ends where its header ends, on every line."""
    head, *rows = text.splitlines()
    for name in right:
        end = head.index(name.upper()) + len(name)
        for row in rows:
            assert row[end - 1] != " " and (len(row) == end or row[end] == " "), (name, row)


def test_report_list_and_plan_show_are_one_kind_of_table(hostile_store, capsys) -> None:
    assert main(["report", "--list", "--db", str(hostile_store)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ID  STARTED (UTC)") and not _raw(out) and "\\x1b[2J" in out
    _columns_line_up(out, ["id", "devices", "restricted"])
    assert main(["plan", "show", "--db", str(hostile_store)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("SITE") and "ALL" in out
    assert not _raw(out) and "\\x1b[2J" in out  # the site label a sensor chose is shown escaped
    _columns_line_up(out, ["devices", "planned", "ordered", "replaced", "exempt", "remaining"])


def test_scan_and_identify_tables_are_safe_and_equally_wide_on_a_pipe(hostile_store) -> None:
    from scanner.commands.scan import _rows, _table

    with Store(hostile_store) as s:
        rows = _rows(s.devices(s.latest_scan_id()))
    buf = io.StringIO()
    _table(rows, buf)
    scan_out = buf.getvalue()
    assert "Hikvision" in scan_out and not _raw(scan_out) and "\\x1b" in scan_out
    rec = {"id": HOSTILE, "http": [{"headers": {"Server": "App-webs/"}}]}
    r = subprocess.run([sys.executable, "-m", "scanner.cli", "identify", "-", "--format", "table"],
                       input=json.dumps(rec) + "\n", capture_output=True, text=True, timeout=60,
                       env={"COLUMNS": "", "PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)})
    assert r.returncode == 0, r.stderr
    assert not _raw(r.stdout) and "\\x1b" in r.stdout
    for out in (scan_out, r.stdout):  # the rich tables of both commands are as wide, on a pipe
        assert max(len(line) for line in out.splitlines()) <= PIPE_WIDTH
    assert max(len(line) for line in r.stdout.splitlines()) > 80  # folded at 160, not rich's default 80
