from __future__ import annotations

import io
import json
import logging

from scanner.logs import redact_text, setup_logging


def _capture(fmt: str) -> tuple[logging.Logger, io.StringIO]:
    buf = io.StringIO()
    setup_logging(fmt, "debug", stream=buf)
    return logging.getLogger("camsweep.test"), buf


def test_json_lines_carry_extra_fields_and_hide_secrets():
    log, buf = _capture("json")
    log.info("probe done", extra={"ip": "198.18.0.5", "port": 80, "password": "hunter2",
                                  "options": {"username": "admin", "token": "abc"}})
    log.warning("fetching rtsp://admin:hunter2@198.18.0.5/stream with password=hunter2")
    lines = [json.loads(x) for x in buf.getvalue().splitlines()]
    assert lines[0]["msg"] == "probe done" and lines[0]["ip"] == "198.18.0.5" and lines[0]["port"] == 80
    assert lines[0]["password"] == "[redacted]" and lines[0]["options"]["token"] == "[redacted]"
    assert "hunter2" not in buf.getvalue()
    assert lines[1]["msg"] == "fetching rtsp://admin:[redacted]@198.18.0.5/stream with password=[redacted]"
    assert lines[1]["level"] == "warning" and lines[1]["ts"].endswith("Z")


def test_text_lines_make_terminal_escapes_visible():
    log, buf = _capture("text")
    log.warning("banner %s", "\x1b]0;pwned\x07\x1b[31mlogin:", extra={"ip": "198.18.0.66"})
    out = buf.getvalue()
    assert "\x1b" not in out and "\x07" not in out
    assert out.startswith("camsweep: warning: banner \\x1b]0;pwned\\x07\\x1b[31mlogin: ip=198.18.0.66")


def test_setup_twice_keeps_one_handler():
    _capture("text")
    _capture("json")
    assert len(logging.getLogger("camsweep").handlers) == 1


def test_redact_text_forms():
    assert redact_text("Authorization: Basic YWRtaW46aHVudGVyMg==") == "Authorization: [redacted]"
    assert redact_text("http://u:p@198.18.0.1/") == "http://u:[redacted]@198.18.0.1/"
    assert redact_text('pwd="a b"') == "pwd=[redacted]"
    assert redact_text("no secrets here") == "no secrets here"
