"""Device-supplied text for reports: cut to a cell, made visible (:mod:`scanner.devtext`), and escaped for
the output's own syntax (HTML markup, spreadsheet formulas).

Which characters are hidden and how each output treats them is said once, in :mod:`scanner.devtext`.
"""

from __future__ import annotations

import html
from typing import Any

from scanner.devtext import escape_char, is_hidden, visible

# the longest text shown in one report cell; the store keeps more, reports need not
MAX_CELL = 2048
_SPREADSHEET_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


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
    return visible(s)


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
        if is_hidden(c):
            if run:
                out.append(html.escape("".join(run), quote=True))
                run = []
            out.append(f'<span class="ctl" title="control character">{escape_char(c)}</span>')
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
