"""Diagnostics on stderr, as text or as JSON lines (``--log-format text|json``), set up once per process.

- ``add_log_arguments(parser)`` adds ``--log-format``, ``--log-level``, ``-q/--quiet``, ``-v/--verbose``.
- ``setup_logging(fmt, level)`` (or ``setup_logging_from_args(args)``) installs one stderr handler on
  the ``camsweep`` logger; calling it again replaces that handler, never adds a second.
- Log with ``logging.getLogger("camsweep.<part>")`` and put structured values in ``extra=``:
  ``log.info("device identified", extra={"ip": ip, "maker": m})``. JSON lines carry them as keys.

Nothing secret is written: values under keys that look like credentials (password, secret, token,
authorization, ...) are replaced by ``[redacted]``, and ``user:password@`` in URLs, ``password=...`` pairs
and ``Authorization:`` header values in messages are masked. Text lines also show control characters
from devices as visible escapes (``\\x1b``), so a hostile banner cannot drive the terminal; JSON lines
escape them by construction.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from scanner.devtext import visible

LOGGER = "camsweep"
FORMATS = ("text", "json")
REDACTED = "[redacted]"

_SECRET_KEY = re.compile(r"pass(word|wd|phrase)?|secret|token|credential|authori[sz]ation|api[_-]?key|cookie",
                         re.I)
_URL_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^/\s:@]*):(?P<pw>[^/\s@]*)@", re.I)
_PAIR = re.compile(r"(?P<k>\b(?:pass(?:word|wd)?|pwd|secret|token|api[_-]?key)\s*[=:]\s*)(?P<v>\"[^\"]*\"|'[^']*'|\S+)",
                   re.I)
_AUTH_HEADER = re.compile(r"(?P<k>\b(?:proxy-)?authorization\s*:\s*)(?P<v>[^\r\n]+)", re.I)

# attributes every LogRecord has; anything else came from ``extra=``
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {"message", "asctime",
                                                                                     "taskName"}


def redact_text(text: str) -> str:
    """Mask credentials in free text: URL userinfo, ``password=...`` pairs, Authorization header values."""
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", text)
    text = _PAIR.sub(lambda m: f"{m['k']}{REDACTED}", text)
    return _AUTH_HEADER.sub(lambda m: f"{m['k']}{REDACTED}", text)


def redact_value(key: str, value: Any, depth: int = 0) -> Any:
    if _SECRET_KEY.search(key):
        return REDACTED
    if depth > 4:
        return str(value)[:200]
    if isinstance(value, dict):
        return {str(k): redact_value(str(k), v, depth + 1) for k, v in list(value.items())[:64]}
    if isinstance(value, (list, tuple, set)):
        return [redact_value(key, v, depth + 1) for v in list(value)[:64]]
    if isinstance(value, str):
        return redact_text(value[:4096])
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return redact_text(str(value)[:4096])


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: redact_value(k, v) for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, then the record's ``extra`` keys."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact_text(record.getMessage()),
        }
        for k, v in _extras(record).items():
            out.setdefault(k, v)
        if record.exc_info and record.exc_info[0] is not None:
            out["error"] = redact_text(f"{record.exc_info[0].__name__}: {record.exc_info[1]}")
        return json.dumps(out, ensure_ascii=True, default=str)


class TextFormatter(logging.Formatter):
    """``camsweep: level: message key=value ...`` with credentials masked and control characters visible."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [f"camsweep: {record.levelname.lower()}: {redact_text(record.getMessage())}"]
        for k, v in _extras(record).items():
            parts.append(f"{k}={v}" if not isinstance(v, str) or " " not in v else f"{k}={json.dumps(v)}")
        if record.exc_info and record.exc_info[0] is not None:
            parts.append(redact_text(f"error={record.exc_info[0].__name__}: {record.exc_info[1]}"))
        return visible(" ".join(parts), keep="\t\n")  # a multi-line message stays multi-line


_handler: logging.Handler | None = None


def setup_logging(fmt: str = "text", level: str | int = "warning", stream: TextIO | None = None) -> logging.Logger:
    """Install (or replace) the one stderr handler of the ``camsweep`` logger."""
    global _handler
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}")
    logger = logging.getLogger(LOGGER)
    if _handler is not None:
        logger.removeHandler(_handler)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logger.addHandler(handler)
    logger.setLevel(level.upper() if isinstance(level, str) else level)
    logger.propagate = False
    _handler = handler
    return logger


def add_log_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("logging (stderr)")
    g.add_argument("--log-format", choices=FORMATS, default="text",
                   help="diagnostics on stderr as text (default) or JSON lines")
    g.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default=None,
                   help="the least severe messages shown (default: warning; info with -v)")
    g.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr (for cron and timers)")
    g.add_argument("-v", "--verbose", action="store_true", help="progress messages too")


def setup_logging_from_args(args: argparse.Namespace) -> logging.Logger:
    level = getattr(args, "log_level", None)
    if level is None:
        level = "error" if getattr(args, "quiet", False) else "info" if getattr(args, "verbose", False) \
            else "warning"
    return setup_logging(getattr(args, "log_format", "text") or "text", level)
