from __future__ import annotations

import pytest

from scanner.report.escape import html_attr, html_text, spreadsheet_cell, visible_text


@pytest.mark.parametrize("raw, shown", [
    ("\x1b[31mred", "\\x1b[31mred"),
    ("a\x00b\x7fc\x9bd", "a\\x00b\\x7fc\\x9bd"),          # NUL, DEL, C1 CSI
    ("admin\u202etxt.exe", "admin\\u202etxt.exe"),         # bidi override (a Trojan-Source-style trick)
    ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
    ("line\r\nnext\u2028", "line\\x0d\\x0anext\\u2028"),
    ("lone \udcff surrogate", "lone \\udcff surrogate"),
    ("Hikvision 海康威视", "Hikvision 海康威视"),            # ordinary text passes unchanged
])
def test_visible_text(raw, shown):
    assert visible_text(raw) == shown
    visible_text(raw).encode("utf-8")  # always encodable, even from a lone surrogate


def test_html_text_escapes_markup_and_marks_controls():
    assert html_text('<b onclick="x">&\x1b') == ('&lt;b onclick=&quot;x&quot;&gt;&amp;'
                                               '<span class="ctl" title="control character">\\x1b</span>')
    assert html_attr('"><script>') == "&quot;&gt;&lt;script&gt;"
    assert html_text("x" * 5000).endswith("\u2026") and len(html_text("x" * 5000)) == 2049


@pytest.mark.parametrize("raw, cell", [
    ("=1+1", "'=1+1"), ("+cmd", "'+cmd"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "\\x09x"), ("Hikvision", "Hikvision"), (None, ""),
])
def test_spreadsheet_cell(raw, cell):
    assert spreadsheet_cell(raw) == cell
