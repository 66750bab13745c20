from __future__ import annotations

import re

import pytest

from scanner.errors import CamsweepError
from scanner.report import build_report_model, render_report
from scanner.report.pdf import chromium_args, find_browser
from tests.report.browser import RecordingServer


@pytest.mark.skipif(find_browser() is None, reason="chromium is not installed")
def test_pdf_is_printed_and_browser_traffic_stays_on_loopback(sample, monkeypatch):
    store, scan_id, _, _ = sample
    with RecordingServer(b"") as srv:  # stands in for the closed port, to see what the browser tries
        monkeypatch.setattr("scanner.report.pdf._closed_loopback_port", lambda: srv.port)
        data = render_report(build_report_model(store, scan_id), "pdf")
    assert isinstance(data, bytes) and data.startswith(b"%PDF-")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", data))
    assert pages >= 2
    # whatever the browser asked for went to the loopback proxy; the page itself asked for nothing
    hosts = {t.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0] for _, t in srv.requests}
    assert hosts <= {"update.googleapis.com", "accounts.google.com", "clients2.google.com",
                     "optimizationguide-pa.googleapis.com", "redirector.gvt1.com"}, hosts


def test_pdf_without_a_browser_is_a_clear_error(sample, monkeypatch):
    store, scan_id, _, _ = sample
    monkeypatch.setenv("CAMSWEEP_CHROMIUM", "/nonexistent/chromium")
    with pytest.raises(CamsweepError, match="PDF needs Chromium"):
        render_report(build_report_model(store, scan_id), "pdf")


def test_browser_flags_keep_every_request_local(tmp_path):
    args = chromium_args("/usr/bin/chromium", tmp_path)
    assert "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1" in args
    proxy = [a for a in args if a.startswith("--proxy-server=http://127.0.0.1:")]
    assert len(proxy) == 1 and "--proxy-bypass-list=<-loopback>" in args
