"""Make device-supplied text safe to show: control, format and bidi characters become visible escapes.

Everything a device sent (a Server header, a title, a banner) may hold terminal escapes (``ESC ] 0 ;``),
bidi overrides that reorder what a reader sees, or markup. Reports show such text as text: every
character of Unicode category Cc (C0, DEL, C1), Cf (bidi controls, zero-width marks, BOM), Cs (lone
surrogates) and Zl/Zp (line and paragraph separators) is replaced by a visible escape (``\\x1b``,
``\\u202e``), and HTML output is then ``html.escape``d.
"""

from __future__ import annotations

import html
import re
import unicodedata
from typing import Any

# categories whose characters are shown as escapes, never passed through
_HIDDEN_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Zl", "Zp"))
# the longest text shown in one report cell; the store keeps more, reports need not
MAX_CELL = 2048
_SPREADSHEET_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def _escape_char(ch: str) -> str:
    cp = ord(ch)
    return f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}"


def _is_hidden(ch: str) -> bool:
    return unicodedata.category(ch) in _HIDDEN_CATEGORIES


def visible_text(value: Any, cap: int = MAX_CELL) -> str:
    """``value`` as one line of plain text with every invisible or control character made visible.

    A backslash already in the text is left alone: the output is for people, not for parsing.
    Text longer than ``cap`` characters is cut and ends with an ellipsis.
    """
    if value is None:
        return ""
    s = value if isinstance(value, str) else str(value)
    if len(s) > cap:
        s = s[:cap] + "\u2026"
    return "".join(_escape_char(c) if _is_hidden(c) else c for c in s)


def has_hidden(value: str) -> bool:
    return any(_is_hidden(c) for c in value)


_VISIBLE_ESCAPE = re.compile(r"\\(?:x[0-9a-f]{2}|u[0-9a-f]{4})")


def html_text(value: Any, cap: int = MAX_CELL) -> str:
    """HTML for device text: escaped, with control characters shown as marked-up escapes.

    The escapes are wrapped in ``<span class="ctl">`` so a reader can tell ``\\x1b`` the byte from a
    backslash a device sent.
    """
    if value is None:
        return ""
    s = value if isinstance(value, str) else str(value)
    if len(s) > cap:
        s = s[:cap] + "\u2026"
    out: list[str] = []
    run: list[str] = []
    for c in s:
        if _is_hidden(c):
            if run:
                out.append(html.escape("".join(run), quote=True))
                run = []
            out.append(f'<span class="ctl" title="control character">{_escape_char(c)}</span>')
        else:
            run.append(c)
    if run:
        out.append(html.escape("".join(run), quote=True))
    return "".join(out)


def html_attr(value: Any, cap: int = 256) -> str:
    """Text for an HTML attribute value (always used inside double quotes)."""
    return html.escape(visible_text(value, cap), quote=True)


def spreadsheet_cell(value: Any, cap: int = MAX_CELL) -> str:
    """Text for a CSV cell: control characters visible, and formula triggers neutralised.

    A cell that starts with ``= + - @`` (or a tab or carriage return) is run as a formula by common
    spreadsheets (CSV injection); such a cell gets a leading apostrophe, the OWASP-recommended guard.
    """
    s = visible_text(value, cap)
    if s.startswith(_SPREADSHEET_TRIGGERS):
        s = "'" + s
    return s
