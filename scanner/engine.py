"""The scan engine: runs one scan over its targets and streams identified devices into the store.

This module wires the parts of a scan together and runs them in order (docs/contracts.md, "Engine"):

1. Targets: a lazy :class:`~scanner.targets.TargetSet`; nothing is scanned that was not named.
2. Discovery (``scanner.discovery``): ARP and multicast on the segments attached to targets, liveness
   (ICMP echo, ``scanner.probes.icmp``, then TCP) for the rest, passive listening or a capture, MAC sources.
3. Probing (``scanner.probing``), per host, in this process or in worker processes (``scanner.workers``);
   each host's fragments become one record, identified and written to the store at once
   (``scanner.devices``); NVR channel entries become child devices of that NVR.

The options are :class:`~scanner.options.ScanOptions`; what the scan tells its caller are the events of
``scanner.events``; the packet rate and the hosts in flight are ``scanner.pacing``'s; the host's routes and
interfaces ``scanner.localnet``'s; which probes exist ``scanner.probes.registry``'s.

The scan row carries ``_pid`` so that a killed scan is marked ``incomplete`` on the next open, and
``resume`` carries on with the hosts of the last incomplete scan whose work was not finished (no
identification yet; with credentials, a recorder stored without channels).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from scanner.devices import RECORDER_TYPES, DeviceWriter, fingerprints_version, load_identifier
from scanner.discovery import Discovery
from scanner.errors import CamsweepError, TargetError
from scanner.events import Finished, ScanEvent
from scanner.localnet import HostNetwork
from scanner.options import ScanOptions
from scanner.pacing import RateLimiter
from scanner.probing import ProbeEnv, Prober, host_probes
from scanner.targets import TargetSet, parse_targets
from scanner.workers import WorkerPool, raise_fd_limit, worker_count

if TYPE_CHECKING:  # the caller opens the store; importing it here would only cost start-up time
    from scanner.store import Store


class Scan:
    """One scan's parts, wired: the host's network facts, the rate limiter (one bucket for every packet of
    this process), discovery, probing and the device writer, all telling ``on_event``."""

    def __init__(self, targets: TargetSet, options: ScanOptions, store: Store, scan_id: int,
                 on_event: Callable[[ScanEvent], None] | None, skip: set[str]) -> None:
        self.on_event = on_event
        self.limiter = RateLimiter(options.rate)
        self.net = HostNetwork(targets, options.routes, options.interface)
        self.env = ProbeEnv(options, self.limiter, self.net.in_scope, targets)
        self.writer = DeviceWriter(store, scan_id, options, self.emit)
        probes = host_probes(options)
        self.discovery = Discovery(self.net, self.env, skip, self.emit, probes)
        self.prober = Prober(options, self.env, self.discovery, self.writer, probes, self.emit)
        self.discovery.on_streamed = self.prober.stream_host

    def emit(self, event: ScanEvent) -> None:
        if self.on_event is not None:
            with contextlib.suppress(Exception):
                self.on_event(event)


def _resume_plan(store: Store) -> tuple[int, list[str], ScanOptions, set[str]]:
    """The last incomplete scan: its id, targets, options and the hosts it already identified."""
    scans = [s for s in store.scans() if s.status == "incomplete"]
    if not scans:
        raise CamsweepError("nothing to resume: no incomplete scan in the store")
    last = scans[-1]
    if store.latest_scan_id() != last.id:
        raise CamsweepError(f"scan {last.id} is incomplete but newer scans exist; nothing to resume")
    opts = ScanOptions.from_recorded(last.options)
    return last.id, last.targets, opts, store.identified_ips(last.id)


def recorders_without_channels(store: Store, scan_id: int) -> set[str]:
    """Recorders a scan stored with no channel device: with credentials, their work may not be finished
    (the channel list lost to a deadline under load), so ``--resume`` asks them again."""
    rows = store.devices(scan_id)
    parents = {r["parent_id"] for r in rows if r.get("parent_id")}
    return {r["ip"] for r in rows if not r.get("parent_id") and r.get("ip")
            and r.get("device_type") in RECORDER_TYPES and r["device_id"] not in parents}


async def run_scan(targets: list[str] | TargetSet, options: ScanOptions, store: Store, *,
                   on_event: Callable[[ScanEvent], None] | None = None) -> int:
    """Scan ``targets`` (specs as the user wrote them, or a parsed TargetSet) and return the scan id.

    With ``options.resume``, ``targets`` may be empty: the last incomplete scan carries on (its
    targets and options are reused; the seams and credentials of ``options`` apply)."""
    skip: set[str] = set()
    load_later = options.identifier is None
    if options.resume:
        scan_id, old_targets, recorded, skip = _resume_plan(store)
        if options.credentials:
            skip -= recorders_without_channels(store, scan_id)
        for name in ScanOptions._SEAMS:
            setattr(recorded, name, getattr(options, name))
        options = recorded
        options.resume = True
        tset = parse_targets(old_targets, exclude=options.exclude, max_hosts=options.max_hosts)
        store.reopen_scan(scan_id, pid=os.getpid())
    else:
        tset = targets if isinstance(targets, TargetSet) else \
            parse_targets(targets, exclude=options.exclude, max_hosts=options.max_hosts)
        opts = {**options.recordable(), "_pid": os.getpid()}
        scan_id = store.start_scan(tset.texts, options=opts, site=options.site, policy=options.policy,
                                   fingerprints_version=None if load_later else fingerprints_version())
    status, error = "incomplete", None
    scan: Scan | None = None
    raise_fd_limit(options)
    try:
        scan = Scan(tset, options, store, scan_id, on_event, skip)
        n_workers = worker_count(options, tset) if options.workers > 0 else 0  # auto: after discovery
        if n_workers:
            scan.prober.pool = WorkerPool(n_workers, options)  # their imports overlap discovery
        if load_later:
            # the fingerprints load in a thread while discovery runs; if they cannot (an unknown
            # policy, a broken database), the scan stops at once with that message
            fut = scan.writer.identifier_future = asyncio.get_running_loop().run_in_executor(
                None, load_identifier, options.policy)
            disc = asyncio.ensure_future(scan.discovery.discover())
            await asyncio.wait({disc, fut}, return_when=asyncio.FIRST_EXCEPTION)
            if fut.done() and fut.exception() is not None:
                disc.cancel()
                await asyncio.gather(disc, return_exceptions=True)
                await scan.writer.ready()  # raises the loader's error
            await disc
        else:
            await scan.discovery.discover()
        await scan.prober.probe_all()
        status = "complete"
    except asyncio.CancelledError:
        error = "the scan was cancelled"
        raise
    except TargetError:
        status, error = "error", "bad targets"
        raise
    except CamsweepError as exc:
        status, error = "error", str(exc)
        raise
    except Exception as exc:
        status, error = "error", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        if scan is not None:
            if scan.prober.pool is not None:
                scan.prober.pool.stop()
            scan.writer.shutdown()  # a write already started finishes; none is left half-done
        with contextlib.suppress(Exception):
            store.finish_scan(scan_id, status=status, error=error)
        if on_event is not None:
            with contextlib.suppress(Exception):
                on_event(Finished(scan_id, status, store.scan(scan_id).device_count))
    return scan_id


__all__ = ["ScanOptions", "ScanEvent", "run_scan"]
