"""Text from devices: made clean where it enters, made safe where it is shown. One module for both.

Two roles, kept apart:

* **Clean at entry** (:func:`clean_text`, used by :mod:`scanner.evidence` where a probe's text becomes
  evidence): lone surrogates (a JSON ``\\udXXX`` escape without its pair, a device-chosen codec's output)
  become U+FFFD, because such text is not Unicode and UTF-8, SQLite and JSON writers refuse it. Nothing
  else is changed: the store keeps what the device sent.
* **Safe to show** (:func:`visible`, :func:`json_safe`, and :mod:`scanner.report.escape` built on them):
  text a device chose may hold terminal escapes (``ESC ] 0 ;``), C1 controls (U+0080-U+009F, which some
  terminals run as CSI), bidi overrides that reorder what a reader sees (U+202E), zero-width characters
  and lone surrogates. Every character of Unicode category Cc (C0, DEL, C1), Cf (bidi controls,
  zero-width marks, BOM), Cs (lone surrogates) and Zl/Zp (line and paragraph separators) is *hidden*;
  shown text has each one replaced by a visible escape (``\\x1b``, ``\\u202e``).

What each output does with hidden characters (decided per output):

* Terminal tables, the TUI, ``lab`` and ``identify`` tables, log lines in text format: :func:`visible`
  (escapes; the text format of the log keeps tab and newline, see :mod:`scanner.logs`).
* HTML and PDF reports: :func:`scanner.report.escape.html_text` (escapes, marked up, then HTML-escaped).
* CSV (report, ``scan -o csv``, the plan's CSV, the NAC export):
  :func:`scanner.report.escape.spreadsheet_cell` (escapes, and a leading apostrophe against formulas):
  a spreadsheet is for people, so it shows the escape, not the character.
* JSON and JSONL (reports, ``scan -o json``, ``scan --evidence``, ``identify``, ``plan``, JSON logs): the
  data stays exact. JSON lets any character be written as ``\\uXXXX``, so every hidden character is
  written that way (``ensure_ascii`` where the output is ASCII anyway, else :func:`json_safe` on the
  encoded text): a reader that parses the file gets the device's text back to the character, and a
  ``cat`` or ``jq -c`` to a terminal never receives a raw C1 control or U+202E.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any

# the categories whose characters are never shown raw
HIDDEN_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Zl", "Zp"))
# category Cs: the lone surrogates, the one thing cleaned at entry
SURROGATE = re.compile("[\ud800-\udfff]")


def is_hidden(ch: str) -> bool:
    """True for a character that is never shown raw (see the module's docstring)."""
    return unicodedata.category(ch) in HIDDEN_CATEGORIES


def escape_char(ch: str) -> str:
    """The visible escape of one character: ``\\x1b`` below U+0100, ``\\u202e`` or ``\\U000e0001`` above."""
    cp = ord(ch)
    return f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}" if cp < 0x10000 else f"\\U{cp:08x}"


def _substitute(text: str, hidden: Callable[[str], bool], repl: Callable[[str], str], keep: str = "") -> str:
    """``text`` with every character for which ``hidden`` holds (and that is not in ``keep``) replaced."""
    return "".join(repl(c) if c not in keep and hidden(c) else c for c in text)


def clean_text(value: str) -> str:
    """Clean at entry: ``value`` with every lone surrogate replaced by U+FFFD; everything else kept."""
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return SURROGATE.sub("\ufffd", value)
    return value


def visible(value: str, keep: str = "") -> str:
    """Safe to show: ``value`` with every hidden character (except those in ``keep``) as a visible escape.

    A backslash already in the text is left alone: the output is for people, not for parsing.
    """
    if value.isprintable():  # nothing hidden is printable: the common case costs one pass in C
        return value
    return _substitute(value, is_hidden, escape_char, keep)


def shown(value: Any, limit: int, *, more: str = "") -> str:
    """``str(value)`` made :func:`visible` and cut to ``limit`` characters (the last of them ``more``, when
    given and the text was longer): a table cell, a TUI column. A long value costs no more than it shows."""
    text = visible(str(value)[: limit * 2])
    if len(text) <= limit:
        return text
    return text[: limit - len(more)] + more if more else text[:limit]


def _json_escape(ch: str) -> str:
    cp = ord(ch)
    if cp < 0x10000:
        return f"\\u{cp:04x}"
    cp -= 0x10000
    return f"\\u{0xD800 + (cp >> 10):04x}\\u{0xDC00 + (cp & 0x3FF):04x}"


def json_safe(encoded: str) -> str:
    """Encoded JSON text (``json.dumps(..., ensure_ascii=False)``) with every hidden character written as
    a ``\\uXXXX`` escape: the same data for a parser, nothing hidden for a terminal.

    JSON's syntax is ASCII and its encoder escapes C0 controls in strings, so a hidden character can only
    stand inside a string, where the escape means the same character. Tab, newline and carriage return
    outside strings are the indentation's and stay.
    """
    if encoded.isprintable():
        return encoded
    return _substitute(encoded, is_hidden, _json_escape, keep="\t\n\r")
