"""Headless Chromium for the report tests, and a loopback server that records every request it gets.

Two independent witnesses of network requests:

1. The page is served from a loopback server that is also Chromium's proxy for everything
   (``--proxy-server`` with ``--proxy-bypass-list=<-loopback>``), so every HTTP(S) request, to any host,
   arrives there and is recorded: plain requests as absolute URLs, HTTPS as ``CONNECT host:443`` (refused).
2. Chromium's own net log (``--log-net-log``) names each request's initiator and network isolation key,
   which tells the page's requests from the browser's own background traffic (Chromium asks
   update.googleapis.com, accounts.google.com and clients2.google.com at start-up even with
   ``--disable-background-networking``; here those reach only the loopback proxy).

``--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1`` makes sure nothing could reach a real host
even if a request slipped past the proxy. No packet leaves the loopback interface.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
BASE_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--disable-default-apps", "--disable-extensions", "--no-default-browser-check",
              "--disable-domain-reliability", "--disable-client-side-phishing-detection",
              "--metrics-recording-only", "--mute-audio")


class RecordingServer:
    """Serves one page at ``/report.html`` on 127.0.0.1 and records every request (also as a proxy)."""

    def __init__(self, page: bytes) -> None:
        self.page = page
        self.requests: list[tuple[str, str]] = []  # (method, target as received)
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def _record(self) -> None:
                with lock:
                    outer.requests.append((self.command, self.path))

            def do_GET(self) -> None:  # noqa: N802
                self._record()
                path = urlsplit(self.path).path if "://" in self.path else self.path
                if path == "/report.html":
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(outer.page)))
                    self.end_headers()
                    self.wfile.write(outer.page)
                else:
                    self.send_error(404)

            do_HEAD = do_GET
            do_POST = do_GET

            def do_CONNECT(self) -> None:  # noqa: N802
                self._record()
                self.send_error(502)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/report.html"

    def __enter__(self) -> RecordingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def other_requests(self) -> list[tuple[str, str]]:
        """Every request except the page itself."""
        return [(m, t) for m, t in self.requests
                if not (m == "GET" and (urlsplit(t).path if "://" in t else t) == "/report.html")]


def run_chromium(url: str, profile: Path, proxy_port: int, *, screenshot: Path | None = None,
                 dump_dom: bool = False, netlog: Path | None = None, size: str = "1280,2000",
                 timeout: float = 90) -> str:
    """Load ``url`` in headless Chromium, every request sent to the loopback proxy at ``proxy_port``;
    returns stdout (the DOM with ``dump_dom``)."""
    assert CHROMIUM, "chromium is not installed"
    args = [CHROMIUM, *BASE_FLAGS, f"--user-data-dir={profile}", f"--window-size={size}",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--proxy-server=http://127.0.0.1:{proxy_port}", "--proxy-bypass-list=<-loopback>"]
    if netlog is not None:
        args += [f"--log-net-log={netlog}", "--net-log-capture-mode=Default"]
    if screenshot is not None:
        args.append(f"--screenshot={screenshot}")
    if dump_dom:
        args.append("--dump-dom")
    args.append(url)
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}")
    return proc.stdout


def read_netlog(path: Path) -> list[dict[str, str]]:
    """Every URL request in a Chromium net log: url, method, initiator, network isolation key."""
    text = path.read_text(encoding="utf-8", errors="replace").rstrip()
    if not text.endswith("}"):  # a log cut short: close the events list and the object
        text = text.rstrip(",") + "]}"
    doc = json.loads(text)
    names = {v: k for k, v in doc["constants"]["logEventTypes"].items()}
    out = []
    for e in doc.get("events", []):
        if names.get(e.get("type")) != "URL_REQUEST_START_JOB":
            continue
        p = e.get("params") or {}
        out.append({"url": str(p.get("url", "")), "method": str(p.get("method", "")),
                    "initiator": str(p.get("initiator", "")),
                    "nik": str(p.get("network_isolation_key", ""))})
    return out


def page_made_requests(netlog: list[dict[str, str]], page_url: str) -> list[str]:
    """URLs the page (not the browser itself) asked for, other than the page: requests whose initiator or
    network isolation key is the page's origin."""
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(page_url))
    site = "{0.scheme}://{0.hostname}".format(urlsplit(page_url))
    return [r["url"] for r in netlog
            if r["url"] != page_url and (r["initiator"].startswith(origin) or site in r["nik"])]


def browser_own_hosts(netlog: list[dict[str, str]], page_url: str) -> set[str]:
    """Hosts the browser contacted on its own account (no initiating document, not the page's site)."""
    site = "{0.scheme}://{0.hostname}".format(urlsplit(page_url))
    return {urlsplit(r["url"]).hostname or "" for r in netlog
            if r["initiator"] == "not an origin" and site not in r["nik"] and r["url"] != page_url}


def proxy_host(target: str) -> str:
    """The host of a request as the proxy saw it (``host:443`` for CONNECT, an absolute URL or a path)."""
    if "://" in target:
        return urlsplit(target).hostname or ""
    if target.startswith("/"):
        return "127.0.0.1"
    return target.rsplit(":", 1)[0]
