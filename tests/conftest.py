"""Session fixtures: the simulated lab, brought up once per test session and always taken down.

``lab``           a namespace lab (root + network namespaces); yields a :class:`scanner.lab.manager.LabStatus`
                  (``.scanner_netns``, ``.cidr``, ``.devices``, ``.ground_truth``, ``.credentials_file``,
                  ``.ground_truth_rows()``). Skips with the reason when namespaces cannot be used.
``loopback_lab``  the same fleet on 127.18.0.x in the test process's own namespace (no ARP or multicast).
``in_scanner_ns`` runs a command inside the lab's scanner namespace: ``in_scanner_ns(["curl", ...])``.

Environment: ``CAMSWEEP_TEST_LAB_DEVICES`` (default 40), ``CAMSWEEP_TEST_LAB_SEED`` (default 0). Each
session uses its own prefix (``cswt<pid>``), so parallel sessions do not meet; leftovers of sessions that
died (their pid is gone) are removed first.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scanner.errors import LabError
from scanner.lab import manager
from scanner.lab import netns as nsmod
from scanner.store import pid_alive
from tests.pgserver import pg_server, pg_url, store_url  # noqa: F401  (PostgreSQL fixtures)

TEST_PREFIX_RE = re.compile(r"^cswt(\d+)[a-z]*$")


def start_tcpdump(cmd: list[str], wait: float = 15.0) -> subprocess.Popen[bytes]:
    """Start a tcpdump command line and return once it says it is listening (packets sent after this are
    captured); a tcpdump that exits or stays silent for ``wait`` seconds fails the test."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    os.set_blocking(proc.stderr.fileno(), False)
    deadline, buf = time.monotonic() + wait, b""
    while b"listening on" not in buf:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"tcpdump did not start: {buf.decode(errors='replace')}")
        time.sleep(0.05)
        buf += proc.stderr.read() or b""
    return proc


def scanner_ns_cmd(lab: manager.LabStatus, *args: str) -> list[str]:
    """The command line of ``camsweep *args`` (this tree's) run inside the lab's scanner namespace."""
    return ["ip", "netns", "exec", str(lab.scanner_netns), sys.executable, "-m", "scanner.cli", *args]


def store_count(db: Path, sql: str) -> int | None:
    """One number from a store that a running scan writes (read-only); None while it cannot be read."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as c:
            return int(c.execute(sql).fetchone()[0])
    except sqlite3.Error:
        return None


def sigkill_scan_when(cmd: list[str], db: Path, reached: Callable[[], bool], *, within: float, poll: float,
                      what: str) -> None:
    """Start a scan writing ``db`` in a session of its own and SIGKILL that session as soon as ``reached()``
    holds (asked once the store exists); the test fails if the scan ends first (``what``: the kill point)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists() and reached():
                break
            time.sleep(poll)
        assert proc.poll() is None, f"the scan ended before {what}"
        os.killpg(proc.pid, signal.SIGKILL)  # the session holds only `ip netns exec` and the scan
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def lab_test_prefix(suffix: str = "") -> str:
    return f"cswt{os.getpid()}{suffix}"


def reap_stale_test_labs() -> list[str]:
    """Take down test labs (prefix cswt<pid>...) whose pytest process is gone."""
    prefixes = set(manager.lab_prefixes())
    prefixes |= {n.rsplit("-", 1)[0] for n in nsmod.list_netns() if n.startswith("cswt")}
    reaped = []
    for p in sorted(prefixes):
        m = TEST_PREFIX_RE.match(p)
        if m and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
            try:
                manager.down(p)
                reaped.append(p)
            except LabError:
                pass
    return reaped


def _term_as_exit() -> None:
    """SIGTERM (a CI timeout) unwinds like Ctrl-C, so the fixtures' finalisers still take the lab down."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        def on_term(signum: int, frame: object) -> None:
            raise KeyboardInterrupt("SIGTERM")
        signal.signal(signal.SIGTERM, on_term)


def skip_without_netns() -> None:
    """Skip (a test or a fixture) when network namespaces cannot be used here, saying why."""
    reason = nsmod.netns_unavailable_reason()
    if reason:
        pytest.skip(f"the namespace lab cannot run here: {reason}")


def up_test_lab(prefix: str, what: str, n: int, seed: int, **kw: Any) -> Iterator[manager.LabStatus]:
    """Bring up a lab of ``n`` devices under ``prefix``, yield its status, take it down; a lab that does not
    come up is taken down and fails the test. ``kw`` goes to ``manager.up``."""
    try:
        st = manager.up(n, seed, prefix=prefix, **kw)
    except Exception as exc:  # noqa: BLE001 - any failure to come up: clean up, then fail with it
        manager.down(prefix)
        pytest.fail(f"the {what} did not come up: {exc}")
    try:
        yield st
    finally:
        manager.down(prefix)


def run_test_lab(suffix: str, what: str, **kw: bool) -> Iterator[manager.LabStatus]:
    """Bring up a test lab under ``lab_test_prefix(suffix)`` ($CAMSWEEP_TEST_LAB_DEVICES devices, default 40;
    seed $CAMSWEEP_TEST_LAB_SEED), yield its status, take it down; ``kw`` goes to ``manager.up``."""
    n = int(os.environ.get("CAMSWEEP_TEST_LAB_DEVICES", "40"))
    seed = int(os.environ.get("CAMSWEEP_TEST_LAB_SEED", "0"))
    yield from up_test_lab(lab_test_prefix(suffix), what, n, seed, **kw)


@pytest.fixture(scope="session")
def lab() -> Iterator[manager.LabStatus]:
    skip_without_netns()
    _term_as_exit()
    reap_stale_test_labs()
    yield from run_test_lab("", "lab")


@pytest.fixture(scope="session")
def loopback_lab() -> Iterator[manager.LabStatus]:
    _term_as_exit()
    yield from run_test_lab("lo", "loopback lab", loopback=True)


@pytest.fixture(scope="session")
def in_scanner_ns(lab: manager.LabStatus) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(cmd: list[str], timeout: float = 60, **kw: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", str(lab.scanner_netns), *cmd], capture_output=True,
                              text=True, timeout=timeout, **kw)  # type: ignore[call-overload]
    return run
