"""Issue 13, item 2: a scan killed part-way and resumed gives what an uninterrupted scan gives, cameras
behind recorders included. Unit level: the scan runs in a child process that SIGKILLs itself at an exact
point (between a recorder's row and its channels' rows); the lab test (tests/integration/test_resume_lab.py)
kills real credentialed scans from outside at several points."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal

import pytest

from scanner.credentials import parse_ini
from scanner.devices import merge_fragments
from scanner.engine import ScanOptions, run_scan
from scanner.evidence import Identification
from scanner.store import Store

pytestmark = pytest.mark.timeout(120)

HOSTS = [f"127.0.4.{i}" for i in range(1, 7)]
NVR = "127.0.4.3"
CHANNELS = 4


class Ident:
    def identify(self, rec):
        for d in rec.discovery:
            if d.protocol == "nvr_channel":
                return Identification(manufacturer="Hikvision", restricted=True, confidence=0.7, device_type="camera")
        for h in rec.http:
            if h.headers.get("Server") == "nvr":
                return Identification(manufacturer="Hikvision", restricted=True, confidence=0.9, device_type="nvr")
        return Identification(manufacturer="Axis", restricted=False, confidence=0.8, device_type="camera")


def options(channels: bool = True, **kw) -> ScanOptions:
    async def open_stream(host, port):
        if host in HOSTS:
            raise ConnectionRefusedError(111, "refused")
        await asyncio.sleep(30)

    async def http(host, ctx):
        frag = {"http": [{"port": 80, "status": 200, "headers": {"Server": "nvr" if host == NVR else "cam"}}]}
        if host == NVR and channels and ctx.credentials_for(host):
            frag["discovery"] = [{"protocol": "nvr_channel", "fields": {"channel": str(c), "model": f"DS-{c}"}}
                                 for c in range(1, CHANNELS + 1)]
        return frag

    base = dict(identifier=Ident(), discoverers={}, routes=lambda: [], rate=0, timeout=0.5, connect_timeout=0.2,
                host_timeout=2.0, liveness_timeout=0.2, open_stream=open_stream, host_probes={"http": http},
                credentials=parse_ini("[default]\nusername = admin\npassword = pw\n"), concurrency=1)
    base.update(kw)
    return ScanOptions(**base)


def summary(store: Store, scan_id: int) -> set[tuple]:
    rows = store.devices(scan_id)
    ip_of = {r["device_id"]: r["ip"] for r in rows}
    return {(r["ip"] if not r["parent_id"] else ip_of[r["parent_id"]], r["channel"], r["manufacturer"],
             r["device_type"]) for r in rows}


def _killed_scan(db: str) -> None:
    """In a child process: scan, and SIGKILL this process right after a recorder's row was written and
    before its first channel's."""
    orig = Store.record_device

    def record_device(self, scan_id, record, ident, **kw):
        if kw.get("parent_id") is not None:
            os.kill(os.getpid(), signal.SIGKILL)
        return orig(self, scan_id, record, ident, **kw)

    Store.record_device = record_device  # type: ignore[method-assign]
    with Store(db) as s:
        asyncio.run(run_scan(["127.0.4.1-6"], options(), s))


def test_killed_between_a_recorder_and_its_channels_resume_equals_uninterrupted(tmp_path):
    with Store(":memory:") as s:
        full = summary(s, asyncio.run(run_scan(["127.0.4.1-6"], options(), s)))
    assert len(full) == len(HOSTS) + CHANNELS
    db = str(tmp_path / "k.db")
    p = multiprocessing.get_context("spawn").Process(target=_killed_scan, args=(db,))
    p.start()
    p.join(60)
    assert p.exitcode == -signal.SIGKILL
    with Store(db) as s:
        (info,) = s.scans()
        assert info.status == "incomplete"
        before = summary(s, info.id)
        assert NVR not in {k[0] for k in before}  # the recorder's row went with its unwritten channels
        sid = asyncio.run(run_scan([], options(resume=True), s))
        assert s.scan(sid).status == "complete"
        assert summary(s, sid) == full


def test_resume_asks_a_recorder_stored_without_channels_again(tmp_path):
    """A recorder whose channel list was lost (a deadline under load) before the kill is not finished."""
    db = tmp_path / "r.db"
    with Store(":memory:") as s:
        full = summary(s, asyncio.run(run_scan(["127.0.4.1-6"], options(), s)))
    with Store(db) as s:
        sid = s.start_scan(["127.0.4.1-6"], options={**options().recordable(), "_pid": 2 ** 22 + 11})
        rec = merge_fragments(NVR, None, [{"http": [{"port": 80, "status": 200, "headers": {"Server": "nvr"}}]}])
        s.record_device(sid, rec, Ident().identify(rec))
    with Store(db) as s:
        assert s.scan(sid).status == "incomplete"
        asyncio.run(run_scan([], options(resume=True), s))
        assert summary(s, sid) == full
