"""scanner.notify: events from two stored scans, their syslog and webhook forms, delivery to loopback
receivers started by the test, retries, masking, and failures that never raise."""

from __future__ import annotations

import json
import re
import socket
import threading
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scanner.notify import (
    Destination,
    NotifyError,
    build_events,
    build_syslog_message,
    build_webhook_body,
    deliver,
    mask_url,
    parse_destination,
)
from scanner.report.model import build_report_model
from scanner.store import Store
from tests.report.sample import fleet, record_scan, second_scan_specs


@pytest.fixture
def notify_log(caplog):
    """caplog that also sees camsweep's logger after another test set it up (it does not propagate)."""
    import logging

    logger = logging.getLogger("camsweep.notify")
    logger.addHandler(caplog.handler)
    caplog.set_level("INFO", logger="camsweep.notify")
    yield caplog
    logger.removeHandler(caplog.handler)


@pytest.fixture
def two_scans(tmp_path):
    store = Store(tmp_path / "s.db")
    first, _ = record_scan(store, fleet())
    specs = [s for s in second_scan_specs() if s["key"] != "axis"]  # the Axis unit is gone a week later
    for s in specs:
        if s["key"] == "unknown":  # now the evidence points at Dahua without establishing it
            s["ident"]["review"] = {"maker": "Dahua", "reason": "weak clues only"}
    second, _ = record_scan(store, specs)
    yield store, first, second
    store.close()


def test_first_scan_every_restricted_device_is_one_event(tmp_path):
    with Store(tmp_path / "a.db") as store:
        scan_id, _ = record_scan(store, fleet())
        events = build_events(store, scan_id)
        report = build_report_model(store, scan_id)
    restricted = [d for d in report["devices"] if d["restricted"] is True]
    got = [e for e in events if e.kind == "restricted_found"]
    assert len(got) == len(restricted) > 0
    assert {e.device["device_id"] for e in got} == {d["device_id"] for d in restricted}
    # the fields are the JSON report's device entry, value for value
    by_id = {d["device_id"]: d for d in report["devices"]}
    for e in got:
        want = {k: v for k, v in by_id[e.device["device_id"]].items() if k != "observed"}
        assert e.device == want
    assert not [e for e in events if e.kind in ("device_gone", "firmware_changed")]


def test_second_scan_new_changed_gone_and_review(two_scans):
    store, first, second = two_scans
    events = build_events(store, second)
    kinds = [(e.kind, e.device.get("ip")) for e in events]
    assert ("restricted_found", "198.18.0.16") in kinds  # the new camera
    assert [k for k in kinds if k[0] == "restricted_found"] == [("restricted_found", "198.18.0.16")]
    fw = [e for e in events if e.kind == "firmware_changed"]
    assert [e.device["ip"] for e in fw] == ["198.18.0.13"]
    assert fw[0].changes[0]["old"] == "2.800.0000000.16.R" and fw[0].changes[0]["new"] == "2.820.0000000.3.R"
    assert [e.device["ip"] for e in events if e.kind == "device_gone"] == ["198.18.0.15"]
    review = [e for e in events if e.kind == "needs_review"]
    assert [e.device["review"]["maker"] for e in review] == ["Dahua"]
    # a third scan like the second: nothing new, so no event
    third, _ = record_scan(store, [s for s in second_scan_specs() if s["key"] != "axis"])
    assert build_events(store, third) == []


def test_syslog_message_is_rfc5424(two_scans):
    store, _, second = two_scans
    e = build_events(store, second)[0]
    msg = build_syslog_message(e, hostname="sensor1", procid=42)
    head, bom, body = msg.partition(b"\xef\xbb\xbf")
    assert bom
    parts = head.decode().split(" ", 6)
    assert parts[0] == "<132>1"  # local0 (16) * 8 + warning (4), version 1
    assert parts[2:6] == ["sensor1", "camsweep", "42", "restricted_found"]
    assert parts[6].startswith('[camsweep@32473 event="restricted_found"')
    assert json.loads(body)["device"]["ip"] == e.device["ip"]
    small = build_syslog_message(e, limit=600)
    assert json.loads(small.partition(b"\xef\xbb\xbf")[2])["truncated"] is True


def test_syslog_structured_data_escapes_device_text(two_scans):
    store, first, _ = two_scans
    hostile = next(e for e in build_events(store, first) if e.device["ip"] == "198.18.0.66")
    hostile = type(hostile)(hostile.kind, {**hostile.device, "model": 'x"] [evil k="v\x1b'}, hostile.scan)
    head = build_syslog_message(hostile).partition(b"\xef\xbb\xbf")[0].decode("ascii")
    assert not any(ord(c) < 32 for c in head)
    sd = head.split(" ", 6)[6].rstrip()
    assert re.fullmatch(r'\[camsweep@32473(?: [a-z_]+="(?:[^"\\\]]|\\.)*")+\]', sd), sd


@pytest.mark.parametrize("url,kind", [
    ("syslog://127.0.0.1", "syslog-udp"), ("syslog://127.0.0.1:5514", "syslog-udp"),
    ("syslog+udp://[::1]:5514", "syslog-udp"), ("syslog+tcp://127.0.0.1:6514", "syslog-tcp"),
    ("syslog:", "syslog-local"), ("syslog:/run/systemd/journal/syslog", "syslog-local"),
    ("https://hooks.slack.com/services/T0/B0/XYZ", "webhook"), ("http://127.0.0.1:8080/x", "webhook"),
])
def test_parse_destination(url, kind):
    assert parse_destination(url).kind == kind


@pytest.mark.parametrize("url,msg", [
    ("ftp://x", "unknown scheme"), ("syslog://", "no host"), ("syslog://h:99999", "(?i)port"),
    ("syslog:relative", "absolute path"), ("https://", "no host"), ("", "expected"),
    ("syslog://h/path", "host\\[:port\\] only"), ("http://h/a b", "expected"),
])
def test_parse_destination_refuses_bad_urls(url, msg):
    with pytest.raises(NotifyError, match=msg):
        parse_destination(url)


def test_bad_format_refused():
    with pytest.raises(NotifyError, match="choose one of"):
        parse_destination("http://127.0.0.1/x", "xml")


@pytest.mark.parametrize("url,shown", [
    ("https://hooks.slack.com/services/T0/B0/XYZSECRET", "https://hooks.slack.com/services/***"),
    ("https://x.webhook.office.com/webhookb2/abc@def/IncomingWebhook/123/456",
     "https://x.webhook.office.com/webhookb2/***"),
    ("https://user:pw@h.example:8443/hook?token=abc&x=1", "https://***@h.example:8443/hook?token=***&x=***"),
    ("syslog://127.0.0.1:514", "syslog://127.0.0.1:514"),
])
def test_mask_url(url, shown):
    assert mask_url(url) == shown


def test_webhook_bodies(two_scans):
    store, _, second = two_scans
    e = build_events(store, second)[0]
    assert build_webhook_body(e, "json")["device"] == dict(e.device)
    assert build_webhook_body(e, "slack")["text"].startswith("camsweep: restricted device found at hq")
    teams = build_webhook_body(e, "teams")
    assert teams["@type"] == "MessageCard" and {"name": "ip", "value": "198.18.0.16"} in teams["sections"][0]["facts"]


def test_webhook_delivery_retries_then_succeeds(two_scans):
    store, _, second = two_scans
    events = build_events(store, second)
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(json.loads(request.content))
        return httpx.Response(503 if len(calls) == 1 else 204)

    sleeps: list[float] = []
    out = deliver(events, [parse_destination("https://hooks.example/services/T/B/SECRET", "json")],
                  transport=httpx.MockTransport(handler), sleep=sleeps.append)
    assert out[0].delivered == len(events) and out[0].failed == 0
    assert len(calls) == len(events) + 1 and sleeps == [0.5]
    assert [c["event"] for c in calls[1:]] == [e.kind for e in events]


def test_webhook_down_is_logged_masked_and_never_raises(two_scans, notify_log):
    caplog = notify_log
    store, _, second = two_scans
    events = build_events(store, second)

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    caplog.set_level("INFO", logger="camsweep.notify")
    out = deliver(events, [parse_destination("https://hooks.example/services/T/B/SECRET")],
                  transport=httpx.MockTransport(handler), sleep=lambda s: None)
    assert out[0].failed == len(events) and out[0].delivered == 0
    text = caplog.text
    assert "could not deliver" in text and "SECRET" not in text and "hooks.example/services/***" in text


def test_client_error_is_not_retried(two_scans):
    store, _, second = two_scans
    n = []

    def handler(request):
        n.append(1)
        return httpx.Response(404)

    out = deliver(build_events(store, second)[:1], [parse_destination("http://127.0.0.1:9/x")],
                  transport=httpx.MockTransport(handler), sleep=lambda s: None)
    assert out[0].failed == 1 and out[0].error == "HTTP 404" and len(n) == 1


def _udp_receiver():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(5)
    return s


def test_syslog_udp_tcp_and_local_socket_on_loopback(two_scans, tmp_path):
    store, _, second = two_scans
    events = build_events(store, second)
    udp = _udp_receiver()
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(1)
    sock_path = str(tmp_path / "log.sock")
    local = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    local.bind(sock_path)
    local.settimeout(5)
    got_tcp: list[bytes] = []

    def accept():
        c, _ = tcp.accept()
        with c:
            while chunk := c.recv(65536):
                got_tcp.append(chunk)

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    dests = [parse_destination(f"syslog://127.0.0.1:{udp.getsockname()[1]}"),
             parse_destination(f"syslog+tcp://127.0.0.1:{tcp.getsockname()[1]}"),
             parse_destination(f"syslog:{sock_path}")]
    out = deliver(events, dests, sleep=lambda s: None)
    t.join(5)
    assert [o.delivered for o in out] == [len(events)] * 3
    udp_msgs = [udp.recv(65535) for _ in events]
    local_msgs = [local.recv(65535) for _ in events]
    stream = b"".join(got_tcp)
    tcp_msgs = []
    while stream:
        n, _, rest = stream.partition(b" ")
        tcp_msgs.append(rest[: int(n)])
        stream = rest[int(n):]
    for msgs in (udp_msgs, tcp_msgs, local_msgs):
        kinds = [json.loads(m.partition(b"\xef\xbb\xbf")[2])["event"] for m in msgs]
        assert kinds == [e.kind for e in events]
    for s in (udp, tcp, local):
        s.close()


def test_syslog_udp_receiver_down_is_reported(two_scans, notify_log):
    caplog = notify_log
    store, _, second = two_scans
    s = _udp_receiver()
    port = s.getsockname()[1]
    s.close()  # nobody listens there now: loopback answers port unreachable
    caplog.set_level("INFO", logger="camsweep.notify")
    sleeps: list[float] = []
    out = deliver(build_events(store, second), [parse_destination(f"syslog://127.0.0.1:{port}")],
                  sleep=sleeps.append)
    assert out[0].failed and out[0].error == "connection refused" and len(sleeps) == 2
    assert "could not deliver" in caplog.text


def test_no_socket_at_a_local_path(two_scans, tmp_path):
    store, _, second = two_scans
    out = deliver(build_events(store, second), [Destination("syslog-local", "syslog:/x", path=str(tmp_path / "no"))],
                  sleep=lambda s: None)
    assert out[0].failed and out[0].error == "no such socket"


def test_scan_cli_refuses_bad_notify_before_scanning(tmp_path):
    from scanner.cli import main

    db = tmp_path / "x.db"
    assert main(["scan", "127.0.0.1", "--db", str(db), "--notify", "gopher://x"]) == 2
    assert not Path(db).exists()


def test_chat_bodies_make_device_text_inert(two_scans):
    store, first, _ = two_scans
    e = next(e for e in build_events(store, first) if e.device["ip"] == "198.18.0.66")
    e = type(e)(e.kind, {**e.device, "model": "<!channel> \x1b[31m<script>"}, e.scan)
    for fmt in ("slack", "teams"):
        text = json.dumps(build_webhook_body(e, fmt))
        assert "<!channel>" not in text and "<script>" not in text and "\\u001b" not in text
        assert "&lt;!channel&gt;" in text


@given(st.text(max_size=300), st.sampled_from(["json", "slack", "teams"]))
def test_parse_destination_never_raises_anything_else(url, fmt):
    try:
        d = parse_destination(url, fmt)
    except NotifyError as exc:
        assert "\n" not in str(exc)
    else:
        assert d.kind in ("syslog-udp", "syslog-tcp", "syslog-local", "webhook")


@given(st.from_regex(r"https://[a-z]{1,10}\.example/[a-z]{1,6}/[A-Z0-9]{8,20}/[A-Z0-9]{8,20}", fullmatch=True))
def test_mask_url_hides_everything_after_the_first_path_segment(url):
    secret = url.rsplit("/", 2)[1:]
    shown = mask_url(url)
    assert all(s not in shown for s in secret) and shown.endswith("/***")
