from __future__ import annotations

import struct
from html.parser import HTMLParser
from pathlib import Path

import pytest

from scanner.report import build_report_model, render_report
from scanner.report.escape import visible_text
from scanner.report.html import CSP
from tests.report.browser import (
    CHROMIUM,
    RecordingServer,
    browser_own_hosts,
    page_made_requests,
    proxy_host,
    read_netlog,
    run_chromium,
)
from tests.report.sample import HOSTILE_SERVER, HOSTILE_TITLE

needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        self.text.append(data)


def _parse(html_text: str) -> _Collect:
    p = _Collect()
    p.feed(html_text)
    p.close()
    return p


@pytest.fixture
def report_html(sample) -> str:
    store, scan_id, _, _ = sample
    return render_report(build_report_model(store, scan_id), "html")


def test_no_script_no_handlers_no_external_references(report_html):
    p = _parse(report_html)
    names = [t for t, _ in p.tags]
    for forbidden in ("script", "iframe", "frame", "object", "embed", "base", "form", "img", "audio", "video"):
        assert forbidden not in names, forbidden
    for tag, attrs in p.tags:
        for k, v in attrs.items():
            assert not k.startswith("on"), (tag, k)
            if k in ("src", "href", "action", "srcset", "poster", "data"):
                assert v is not None and (v.startswith("data:") or v.startswith("#")), (tag, k, v)
            if k != "xmlns" and v:
                assert "http://" not in v and "https://" not in v and "//" != v[:2], (tag, k, v)
    links = [a for t, a in p.tags if t == "link"]
    assert links == [{"rel": "icon", "href": "data:,"}]  # no stylesheet, font or favicon fetched
    metas = [a for t, a in p.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert metas == [{"http-equiv": "Content-Security-Policy", "content": CSP}]
    assert "default-src 'none'" in CSP and "img-src data:" in CSP


def test_hostile_text_is_escaped_and_visible(report_html):
    assert "<script" not in report_html.lower()
    assert "\x1b" not in report_html and "\x07" not in report_html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in report_html
    assert "&lt;img src=&quot;http://127.0.0.1:9/pwned.png&quot;" in report_html
    text = "".join(_parse(report_html).text)
    # what a reader sees: the markup as text, and the escapes as \x1b-style marks
    assert visible_text(HOSTILE_SERVER) in text
    assert visible_text(HOSTILE_TITLE) in text
    assert "\\x1b]0;pwned\\x07\\x1b[31m" in text
    assert "found in closet <script>alert(1)</script>" in text  # the analyst's note, also escaped


def test_empty_and_incomplete_scan_render(tmp_path):
    from scanner.store import Store

    store = Store(tmp_path / "e.db")
    sid = store.start_scan(["198.18.7.0/24"])
    store.finish_scan(sid, status="incomplete", error="stopped")
    html_text = render_report(build_report_model(store, sid), "html")
    assert "The scan found no device." in html_text and "scan incomplete" in html_text
    store.close()


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:32]
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@needs_chromium
def test_chromium_renders_the_report(tmp_path, report_html):
    page = tmp_path / "report.html"
    page.write_text(report_html, encoding="utf-8")
    shot = tmp_path / "report.png"
    with RecordingServer(b"") as srv:  # a dead-end proxy: the browser's own traffic stays on loopback
        run_chromium(page.as_uri(), tmp_path / "profile", srv.port, screenshot=shot)
        dom = run_chromium(page.as_uri(), tmp_path / "profile2", srv.port, dump_dom=True)
    assert _png_size(shot) == (1280, 2000)
    assert shot.stat().st_size > 50_000  # a blank page is a few kB; this one has charts and tables
    p = _parse(dom)
    names = [t for t, _ in p.tags]
    assert "script" not in names and "img" not in names
    assert names.count("svg") == 3
    text = "".join(p.text)
    assert "Devices by real maker" in text and "Evidence for flagged devices" in text
    assert visible_text(HOSTILE_SERVER) in text


@needs_chromium
def test_the_page_makes_no_network_request(tmp_path, report_html):
    with RecordingServer(report_html.encode("utf-8")) as srv:
        run_chromium(srv.url, tmp_path / "profile", srv.port, dump_dom=True, netlog=tmp_path / "net.json")
    netlog = read_netlog(tmp_path / "net.json")
    assert any(r["url"] == srv.url for r in netlog)  # the log saw the page load itself
    assert [t for m, t in srv.requests if t.endswith("/report.html")] == [srv.url]  # requested once, via proxy
    assert page_made_requests(netlog, srv.url) == []
    own = browser_own_hosts(netlog, srv.url)
    assert [t for _, t in srv.other_requests() if proxy_host(t) not in own] == []


@needs_chromium
def test_request_detector_catches_a_leaky_page(tmp_path):
    """The same harness on a page that fetches things: every fetch is caught by both witnesses."""
    with RecordingServer(b"") as srv:
        srv.page = (f'<!doctype html><html><body><img src="http://127.0.0.1:{srv.port}/leak.png">'
                    '<link rel="stylesheet" href="https://fonts.camsweep.invalid/x.css">'
                    '<img src="http://cdn.camsweep.invalid/y.png"></body></html>').encode()
        run_chromium(srv.url, tmp_path / "profile", srv.port, dump_dom=True, netlog=tmp_path / "net.json")
    netlog = read_netlog(tmp_path / "net.json")
    made = set(page_made_requests(netlog, srv.url))
    # (this page has no data: icon, so the browser also asks for /favicon.ico: caught as well)
    assert made - {f"http://127.0.0.1:{srv.port}/favicon.ico"} == {
        f"http://127.0.0.1:{srv.port}/leak.png", "https://fonts.camsweep.invalid/x.css",
        "http://cdn.camsweep.invalid/y.png"}
    own = browser_own_hosts(netlog, srv.url)
    unattributed = {proxy_host(t) for _, t in srv.other_requests() if proxy_host(t) not in own}
    assert unattributed == {"127.0.0.1", "fonts.camsweep.invalid", "cdn.camsweep.invalid"}
