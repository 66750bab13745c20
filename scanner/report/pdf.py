"""PDF report: the HTML report printed by headless Chromium (when it is installed).

The HTML is self-contained and carries a CSP that forbids every fetch; Chromium itself still calls home
at start-up (update.googleapis.com, accounts.google.com, clients2.google.com) even with
``--disable-background-networking``. So the browser runs with every host name resolving to nothing
(``--host-resolver-rules``) and a proxy on a closed loopback port: nothing it tries leaves the machine.
(Scripts cannot be switched off with ``--blink-settings``: headless printing then writes nothing; the
page's CSP already forbids every script.) The run is bounded by a timeout and the output size is checked.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from scanner.errors import CamsweepError

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_S = 120.0
MAX_PDF_BYTES = 200 * 1024 * 1024


def find_browser() -> str | None:
    env = os.environ.get("CAMSWEEP_CHROMIUM")
    if env:
        return shutil.which(env) or (env if Path(env).is_file() else None)
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def _closed_loopback_port() -> int:
    """A loopback port nothing listens on (bound and released: connections to it are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chromium_args(browser: str, profile: Path) -> list[str]:
    args = [browser, "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-default-apps", "--disable-extensions", "--disable-domain-reliability",
            "--no-default-browser-check", "--metrics-recording-only", "--mute-audio",
            f"--user-data-dir={profile}",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--proxy-server=http://127.0.0.1:{_closed_loopback_port()}", "--proxy-bypass-list=<-loopback>"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium refuses to start as root otherwise; the page runs no script
    return args


def render_pdf(html_text: str, *, timeout: float = TIMEOUT_S) -> bytes:
    """The HTML report printed to PDF (A4, the report's print CSS). Raises CamsweepError with the reason."""
    browser = find_browser()
    if browser is None:
        raise CamsweepError("PDF needs Chromium (apt-get install chromium, or set CAMSWEEP_CHROMIUM); "
                            "or write --format html and print it from any browser")
    with tempfile.TemporaryDirectory(prefix="camsweep-pdf-") as tmp:
        page = Path(tmp) / "report.html"
        out = Path(tmp) / "report.pdf"
        page.write_text(html_text, encoding="utf-8")
        args = [*chromium_args(browser, Path(tmp) / "profile"), "--no-pdf-header-footer",
                f"--print-to-pdf={out}", page.as_uri()]
        try:
            proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise CamsweepError(f"Chromium did not print the report within {timeout:.0f} s") from None
        except OSError as exc:
            raise CamsweepError(f"cannot run {browser}: {exc.strerror or exc}") from None
        if not out.is_file() or out.stat().st_size == 0:
            tail = (proc.stderr or "").strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
            raise CamsweepError(f"Chromium wrote no PDF ({tail[0][:200]})")
        if out.stat().st_size > MAX_PDF_BYTES:
            raise CamsweepError("the PDF is larger than 200 MB; write --format html instead")
        data = out.read_bytes()
    if not data.startswith(b"%PDF-"):
        raise CamsweepError("Chromium wrote something that is not a PDF")
    return data
