"""Alerts after a scan: one event per newly found restricted device, per device that needs review, per
changed firmware and per device gone, sent to syslog (RFC 5424) and webhooks (``--notify URL``).

- ``parse_destination(url)`` checks a ``--notify`` URL before anything is scanned:
  ``syslog://host[:port]`` (UDP, port 514), ``syslog+udp://...`` (the same), ``syslog+tcp://host[:port]``
  (TCP, RFC 6587 octet counting), ``syslog:`` (the local socket ``/dev/log``) or ``syslog:/path/to/socket``,
  ``http://...`` and ``https://...`` (a POST per event; the body by ``--notify-format json|slack|teams``).
- ``build_events(store, scan_id)`` compares the scan with the previous complete scan of its site
  (scanner.diff) and returns the events; each carries the device as the JSON report shows it
  (scanner.report.model), so a receiver reads the same fields as ``camsweep report --format json``.
- ``deliver(events, destinations)`` sends them. A delivery failure is retried a few times, then logged
  (``camsweep.notify``); it never raises and never changes the scan's exit code. Webhook URLs are shown
  with their secret part (the path after its first segment, query values, user info) masked.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from scanner import __version__
from scanner.devtext import visible
from scanner.errors import CamsweepError
from scanner.ipkey import ip_key

log = logging.getLogger("camsweep.notify")

FORMATS = ("json", "slack", "teams")
EVENT_KINDS = ("restricted_found", "needs_review", "firmware_changed", "device_gone")
ATTEMPTS = 3  # tries per event and destination
BACKOFF = (0.5, 1.5)  # seconds between tries
TIMEOUT = 5.0  # seconds for one try
UDP_MAX = 8192  # bytes of one syslog datagram; larger events lose their evidence list (rules kept)
TCP_MAX = 65536
UDP_GAP = 0.002  # seconds between two datagrams
LOCAL_SOCKET = "/dev/log"
SYSLOG_PORT = 514
# RFC 5424: facility local0 (16); severity by event
FACILITY = 16
SEVERITY = {"restricted_found": 4, "needs_review": 5, "firmware_changed": 5, "device_gone": 6}
SD_ID = "camsweep@32473"  # 32473: the example enterprise number of RFC 5612


class NotifyError(CamsweepError):
    """A ``--notify`` URL that cannot be used (said before the scan starts)."""


@dataclass(frozen=True, slots=True)
class Destination:
    kind: str  # syslog-udp | syslog-tcp | syslog-local | webhook
    url: str
    host: str = ""
    port: int = 0
    path: str = ""  # local socket path
    fmt: str = "json"

    @property
    def shown(self) -> str:
        """The URL as logs show it: the secret part masked."""
        return mask_url(self.url)


def mask_url(url: str) -> str:
    """``https://hooks.slack.com/services/T0/B0/XYZ`` -> ``https://hooks.slack.com/services/***``: user info,
    the path after its first segment and query values are masked; syslog URLs carry no secret."""
    try:
        u = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if u.scheme.lower() not in ("http", "https"):
        return url
    host = u.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{u.port}" if u.port else ""
    except ValueError:
        port = ""
    user = "***@" if (u.username or u.password) else ""
    parts = [p for p in u.path.split("/") if p]
    path = "/" + parts[0] + ("/***" if len(parts) > 1 else "") if parts else "/"
    query = ("?" + "&".join(f"{kv.split('=', 1)[0]}=***" for kv in u.query.split("&") if kv)) if u.query else ""
    return f"{u.scheme}://{user}{host}{port}{path}{query}"


def parse_destination(url: str, fmt: str = "json") -> Destination:
    """A ``--notify`` URL as a :class:`Destination`; NotifyError with a clear message otherwise."""
    if fmt not in FORMATS:
        raise NotifyError(f"--notify-format {fmt!r}: choose one of {', '.join(FORMATS)}")
    text = (url or "").strip()
    if not text or len(text) > 2048 or any(c in text for c in "\r\n\t "):
        raise NotifyError(f"--notify {mask_url(text)!r}: expected syslog://host[:port], syslog+tcp://host[:port], "
                          "syslog: or an http(s):// webhook URL")
    scheme, sep, rest = text.partition(":")
    scheme = scheme.lower()
    if scheme == "syslog" and not rest.startswith("//"):
        path = rest or LOCAL_SOCKET
        if not path.startswith("/"):
            raise NotifyError(f"--notify {text!r}: a local syslog socket needs an absolute path (syslog:/dev/log)")
        return Destination("syslog-local", text, path=path)
    if scheme in ("syslog", "syslog+udp", "syslog+tcp"):
        try:
            u = urlsplit(text)
            port = u.port or SYSLOG_PORT
        except ValueError as exc:
            raise NotifyError(f"--notify {text!r}: {exc}") from None
        if not u.hostname:
            raise NotifyError(f"--notify {text!r}: no host (syslog://host[:port])")
        if u.path not in ("", "/") or u.query:
            raise NotifyError(f"--notify {text!r}: a syslog URL is host[:port] only")
        return Destination("syslog-tcp" if scheme == "syslog+tcp" else "syslog-udp", text, host=u.hostname,
                           port=port)
    if scheme in ("http", "https"):
        try:
            u = urlsplit(text)
            _ = u.port
        except ValueError as exc:
            raise NotifyError(f"--notify {mask_url(text)!r}: {exc}") from None
        if not u.hostname:
            raise NotifyError(f"--notify {mask_url(text)!r}: no host")
        return Destination("webhook", text, host=u.hostname, fmt=fmt)
    raise NotifyError(f"--notify {mask_url(text)!r}: unknown scheme {scheme!r}; use syslog://, syslog+tcp://, "
                      "syslog: or http(s)://")


# ------------------------------------------------------------------------------------------------ events

@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    device: Mapping[str, Any]  # the JSON report's device entry
    scan: Mapping[str, Any]
    changes: tuple[Mapping[str, Any], ...] = ()
    time: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z")

    @property
    def summary(self) -> str:
        d = self.device
        who = " ".join(str(x) for x in (d.get("manufacturer") or "unknown maker", d.get("model") or "") if x)
        where = d.get("ip") or "-"
        if d.get("parent_ip"):
            where = f"{d['parent_ip']} channel {d.get('channel') or '?'}"
        mac = f" ({d['mac']})" if d.get("mac") else ""
        site = f" at {self.scan.get('site')}" if self.scan.get("site") else ""
        if self.kind == "restricted_found":
            lists = ", ".join(d.get("lists") or []) or "policy"
            text = f"restricted device found{site}: {where}{mac} {who} [{lists}]"
        elif self.kind == "needs_review":
            maker = (d.get("review") or {}).get("maker") or "?"
            text = f"device needs review{site}: {where}{mac} {who} (suspected maker {maker})"
        elif self.kind == "firmware_changed":
            ch = next((c for c in self.changes if c.get("field") == "firmware"), {})
            text = f"firmware changed{site}: {where}{mac} {who}: {ch.get('old')} -> {ch.get('new')}"
        else:
            text = f"device gone{site}: {where}{mac} {who}"
        if d.get("exploited"):
            text += " (known-exploited firmware: " + ", ".join(h.get("cve", "") for h in d["exploited"]) + ")"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"source": "camsweep", "camsweep_version": __version__, "event": self.kind, "time": self.time,
                "summary": self.summary, "scan": dict(self.scan), "device": dict(self.device),
                "changes": [dict(c) for c in self.changes]}


def build_events(store: Any, scan_id: int) -> list[Event]:
    """Events of scan ``scan_id`` against the previous complete scan of its site (none: every restricted
    and needs-review device is new). Order: restricted, needs review, firmware changed, gone; within a
    kind, the report's device order."""
    from scanner.diff import build_scan_diff
    from scanner.report import previous_scan_id
    from scanner.report.model import annotate_policy, report_device

    info = store.scan(scan_id)
    rows = store.devices(scan_id=scan_id)
    annotate_policy(rows, info.policy)  # each restricted device's flags, as in the JSON report
    by_id = {d["device_id"]: d for d in rows}
    scan = {"id": info.id, "site": info.site, "policy": info.policy, "status": info.status,
            "started_at": info.started_at, "finished_at": info.finished_at}
    prev = previous_scan_id(store, scan_id)
    old_rows = store.devices(scan_id=prev) if prev is not None else []
    diff = build_scan_diff(old_rows, rows)
    new_ids = {d["device_id"] for d in diff.new}
    changed = {c.new["device_id"]: c for c in diff.changed}
    # each device's row in the previous scan (changed ones from the diff's pairing; the rest by device id)
    old_by_id = {d["device_id"]: d for d in old_rows}
    paired_old: dict[int, Mapping[str, Any]] = {k: c.old for k, c in changed.items()}
    for d in rows:
        if d["device_id"] not in new_ids and d["device_id"] not in paired_old and d["device_id"] in old_by_id:
            paired_old[d["device_id"]] = old_by_id[d["device_id"]]

    def entry(d: Mapping[str, Any], lookup: Mapping[int, Any]) -> dict[str, Any]:
        return report_device(dict(d), lookup)

    order = sorted(rows, key=lambda d: (d.get("restricted") is not True, not d.get("review"), ip_key(d.get("ip"))))
    events: list[Event] = []
    restricted_ids = {d["device_id"] for d in diff.newly_restricted}
    for d in order:
        if d["device_id"] in restricted_ids:
            events.append(Event("restricted_found", entry(d, by_id), scan))
    for d in order:
        if not d.get("review") or d.get("restricted") is True:
            continue
        old = paired_old.get(d["device_id"])
        if old is None or not old.get("review"):
            events.append(Event("needs_review", entry(d, by_id), scan))
    for d in order:
        c = changed.get(d["device_id"])
        if c is not None and "firmware" in c.fields:
            events.append(Event("firmware_changed", entry(d, by_id), scan,
                                tuple(x.to_dict() for x in c.changes if x.field == "firmware")))
    for d in sorted(diff.gone, key=lambda d: ip_key(d.get("ip"))):
        events.append(Event("device_gone", entry(d, old_by_id), scan))
    return events


# ------------------------------------------------------------------------------------------------ formats

def build_webhook_body(event: Event, fmt: str) -> dict[str, Any]:
    """The POST body of one event: the event itself (json), a Slack message, or a Teams MessageCard."""
    if fmt == "slack":
        return {"text": _chat_text(f"camsweep: {event.summary}")}
    if fmt == "teams":
        d = event.device
        facts = [{"name": k, "value": _chat_text(d.get(k), 200)} for k in ("ip", "mac", "manufacturer", "brand", "model",
                                                                  "firmware", "device_type", "site")
                 if d.get(k) not in (None, "")]
        if d.get("lists"):
            facts.append({"name": "lists", "value": _chat_text(", ".join(d["lists"]), 400)})
        return {"@type": "MessageCard", "@context": "https://schema.org/extensions",
                "summary": _chat_text(event.summary, 200), "themeColor": "C0392B" if event.kind == "restricted_found" else "E67E22",
                "title": f"camsweep: {event.kind.replace('_', ' ')}",
                "sections": [{"activityTitle": _chat_text(event.summary), "facts": facts}]}
    return event.to_dict()


def _chat_text(value: Any, cap: int = 1000) -> str:
    """Device text made inert for a chat message: control characters visible, and ``& < >`` escaped as
    Slack and Teams require (so a device calling itself ``<!channel>`` pings nobody)."""
    from scanner.report.escape import visible_text

    s = visible_text(value, cap)
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _sd_value(v: Any) -> str:
    s = "" if v is None else json.dumps(v) if isinstance(v, bool) else str(v)
    s = visible(s[:200])  # scanner.devtext: control, bidi and zero-width characters as visible escapes
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def build_syslog_message(event: Event, *, hostname: str | None = None, procid: int | None = None,
                         limit: int = TCP_MAX) -> bytes:
    """One RFC 5424 message: PRI, version 1, timestamp, host, app ``camsweep``, the event kind as MSGID, a
    structured-data element with the key fields, and the event as JSON (UTF-8, with a BOM) as MSG."""
    pri = FACILITY * 8 + SEVERITY.get(event.kind, 6)
    host = (hostname or socket.gethostname() or "-")[:255].replace(" ", "_") or "-"
    proc = str(procid if procid is not None else os.getpid())
    d = event.device
    params = {"event": event.kind, "scan": event.scan.get("id"), "site": event.scan.get("site"), "ip": d.get("ip"),
              "mac": d.get("mac"), "manufacturer": d.get("manufacturer"), "model": d.get("model"),
              "restricted": d.get("restricted")}
    sd = "[" + SD_ID + "".join(f' {k}="{_sd_value(v)}"' for k, v in params.items() if v is not None) + "]"
    head = f"<{pri}>1 {event.time} {host} camsweep {proc} {event.kind} {sd} ".encode("ascii", "replace")
    body = event.to_dict()
    msg = json.dumps(body, ensure_ascii=True, separators=(",", ":")).encode()
    if len(head) + 3 + len(msg) > limit:  # too big for one message: keep the rule names of the evidence
        dev = dict(body["device"])
        dev["evidence"] = [{"rule": e.get("rule")} for e in dev.get("evidence") or []]
        dev.pop("observed", None)
        body = {**body, "device": dev, "truncated": True}
        msg = json.dumps(body, ensure_ascii=True, separators=(",", ":")).encode()
        if len(head) + 3 + len(msg) > limit:  # still too big (hostile device text): the key fields only
            keep = ("device_id", "ip", "mac", "site", "manufacturer", "brand", "model", "firmware", "device_type",
                    "restricted", "lists", "review", "parent_ip", "channel")
            body = {**body, "device": {k: dev.get(k) for k in keep}}
            msg = json.dumps(body, ensure_ascii=True, separators=(",", ":")).encode()
        if len(head) + 3 + len(msg) > limit:  # even those: the event, its scan and the device's addresses
            body = {k: body[k] for k in ("source", "event", "time", "scan", "truncated")}
            body["device"] = {k: dev.get(k) for k in ("device_id", "ip", "mac")}
            msg = json.dumps(body, ensure_ascii=True, separators=(",", ":")).encode()
    return head + b"\xef\xbb\xbf" + msg


# ------------------------------------------------------------------------------------------------ delivery

@dataclass
class Outcome:
    destination: str  # masked
    delivered: int = 0
    failed: int = 0
    error: str = ""


def _send_udp(dest: Destination, messages: Sequence[bytes]) -> None:
    family = socket.AF_INET6 if ":" in dest.host else socket.AF_INET
    infos = socket.getaddrinfo(dest.host, dest.port, 0, socket.SOCK_DGRAM)
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(TIMEOUT)
        s.connect(addr)  # connected: a port-unreachable answer comes back as ECONNREFUSED
        for i, m in enumerate(messages):
            if i:
                time.sleep(UDP_GAP)  # a burst would overrun a receiver's buffer; UDP drops silently
            s.send(m[:UDP_MAX])
        s.settimeout(0.2)
        try:
            s.recv(1)
        except TimeoutError:
            pass  # nothing came back: as delivered as UDP can say


def _send_tcp(dest: Destination, messages: Sequence[bytes]) -> None:
    with socket.create_connection((dest.host, dest.port), timeout=TIMEOUT) as s:
        for m in messages:
            s.sendall(str(len(m)).encode() + b" " + m)  # RFC 6587 octet counting


def _send_local(dest: Destination, messages: Sequence[bytes]) -> None:
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.settimeout(TIMEOUT)
        s.connect(dest.path)
    except OSError as exc:
        if exc.errno not in (91, 107, 111):  # EPROTOTYPE etc.: a stream socket
            raise
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(TIMEOUT)
        s.connect(dest.path)
        with s:
            for m in messages:
                s.sendall(m + b"\n")
        return
    with s:
        for m in messages:
            s.send(m[:UDP_MAX])


class _Permanent(Exception):
    """A failure a retry will not mend (a 4xx answer)."""


def _post(client: Any, dest: Destination, body: dict[str, Any]) -> None:
    import httpx

    try:
        r = client.post(dest.url, json=body)
    except httpx.HTTPError as exc:
        raise OSError(type(exc).__name__ + (f": {exc}" if str(exc) else "")) from None
    if r.status_code >= 500 or r.status_code == 429:
        raise OSError(f"HTTP {r.status_code}")
    if r.status_code >= 400:
        raise _Permanent(f"HTTP {r.status_code}")


def _try(action: Callable[[], None], attempts: int, sleep: Callable[[float], None]) -> str:
    """Run ``action`` up to ``attempts`` times; '' when it worked, else the last error."""
    err = ""
    for i in range(attempts):
        try:
            action()
            return ""
        except _Permanent as exc:
            return str(exc)
        except (OSError, ValueError) as exc:
            err = _describe(exc)
        if i + 1 < attempts:
            sleep(BACKOFF[min(i, len(BACKOFF) - 1)])
    return err


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, FileNotFoundError):
        return "no such socket"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text[:200]


def deliver(events: Sequence[Event], destinations: Iterable[Destination], *, attempts: int = ATTEMPTS,
            sleep: Callable[[float], None] = time.sleep, transport: Any = None) -> list[Outcome]:
    """Send every event to every destination. Never raises; one :class:`Outcome` per destination.

    Syslog destinations get all events in one connection (one try covers them all); a webhook gets one
    POST per event, and once an event fails after its tries the destination's remaining events are
    counted failed without trying (a receiver that is down is not hammered). ``transport`` is an httpx
    transport for tests (httpx.MockTransport)."""
    outcomes = []
    for dest in destinations:
        out = Outcome(dest.shown)
        try:
            if not events:
                pass
            elif dest.kind.startswith("syslog"):
                limit = UDP_MAX if dest.kind == "syslog-udp" else TCP_MAX
                msgs = [build_syslog_message(e, limit=limit) for e in events]
                send = {"syslog-udp": _send_udp, "syslog-tcp": _send_tcp, "syslog-local": _send_local}[dest.kind]
                err = _try(lambda send=send, msgs=msgs, dest=dest: send(dest, msgs), attempts, sleep)
                if err:
                    out.failed, out.error = len(events), err
                else:
                    out.delivered = len(events)
            else:
                import httpx

                with httpx.Client(timeout=TIMEOUT, transport=transport, follow_redirects=False,
                                  headers={"User-Agent": f"camsweep/{__version__}"}) as client:
                    for n, e in enumerate(events):
                        body = build_webhook_body(e, dest.fmt)
                        err = _try(lambda body=body, dest=dest: _post(client, dest, body), attempts, sleep)
                        if err:
                            out.failed, out.error = len(events) - n, err
                            break
                        out.delivered += 1
        except Exception as exc:  # never fatal: the scan's result stands whatever the receiver does
            out.failed, out.error = len(events) - out.delivered, _describe(exc)
        if out.failed:
            log.error("notify: could not deliver %d of %d events to %s (%s, %d tries); the scan's result is "
                      "unchanged", out.failed, len(events), out.destination, out.error, attempts,
                      extra={"destination": out.destination, "failed": out.failed, "delivered": out.delivered})
        else:
            log.info("notify: %d events delivered to %s", out.delivered, out.destination,
                     extra={"destination": out.destination, "delivered": out.delivered})
        outcomes.append(out)
    return outcomes


__all__ = ["EVENT_KINDS", "FORMATS", "Destination", "Event", "NotifyError", "Outcome", "build_events",
           "build_syslog_message", "build_webhook_body", "deliver", "mask_url", "parse_destination"]
