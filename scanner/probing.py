"""Probing, per host: every per-host probe, each under its own timeout, all under one per-host deadline,
with a global bound on hosts in flight (it follows the event loop's lag, scanner.pacing) and a per-host
bound on probes in flight. A slow or hostile device costs its own deadline and nothing else; probes a
deadline cut short are named in the device's record (a ``discovery`` entry of protocol ``camsweep``).

:class:`ProbeEnv` builds the :class:`~scanner.probes.base.ProbeContext` every probe and discoverer gets;
:func:`collect_host` runs the probes of one host; :class:`Prober` probes the hosts discovery found (here,
or in worker processes, scanner.workers), follows up recorders whose channel list did not come, and hands
each host's record to the :class:`~scanner.devices.DeviceWriter`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from scanner.devices import NVR_CHANNEL, RECORDER_TYPES, DeviceWriter, merge_fragments
from scanner.events import HostsFound, Pacing, Progress, ScanEvent, ScanWarning
from scanner.evidence import EvidenceRecord
from scanner.localnet import interface_addresses
from scanner.options import ProbeFn, ScanOptions
from scanner.pacing import RateLimiter, run_bounded, watch
from scanner.probes import registry
from scanner.workers import WorkerPool, take_batch, worker_count

if TYPE_CHECKING:
    from scanner.discovery import Discovery

CUT_SHORT_PROTOCOL = "camsweep"  # discovery entries naming probes a deadline cut short (issue 13, item 12)


class ProbeEnv:
    """Builds the ProbeContext every probe gets: timeouts, caps, credentials, transports, the rate limiter,
    the interface for multicast, the scope check. One per process (the scan's, or a worker's)."""

    def __init__(self, options: ScanOptions, limiter: RateLimiter, allow: Callable[[str], bool] | None = None,
                 targets: Any = None) -> None:
        self.o = options
        self.limiter = limiter
        self.allow = allow
        self.targets = targets
        self._datagrams: dict[str | None, Any] = {}

    def context(self, interface: str | None = None, **kw: Any) -> Any:
        from scanner.probes.base import DEFAULT_PORTS, ProbeContext

        if interface not in self._datagrams:
            self._datagrams[interface] = self._datagram_for(interface)
        ctx_kw: dict[str, Any] = dict(
            timeout=self.o.timeout, connect_timeout=self.o.connect_timeout, max_bytes=self.o.max_bytes,
            credentials=self.o.credentials if self.o.credentials else None,
            http_transport=self.o.http_transport, open_stream=self.o.open_stream,
            datagram=self._datagrams[interface], rate_limit=self.limiter.acquire, interface=interface,
            allow=self.allow, discover_wait=self.o.discovery_wait,
            snmp_auth=getattr(self.o.credentials, "snmp_for", None), snmp_public=self.o.snmp_public,
        )
        if self.o.ports:
            ctx_kw["ports"] = {**DEFAULT_PORTS, **dict(self.o.ports)}
        ctx_kw.update(kw)
        ctx = ProbeContext(**ctx_kw)
        if self.targets is not None:
            with contextlib.suppress(AttributeError):
                ctx.targets = self.targets  # type: ignore[attr-defined]
        return ctx

    def _datagram_for(self, interface: str | None) -> Callable[..., Awaitable[list[tuple[bytes, tuple[str, int]]]]]:
        """UDP through the injected transport or the network; a unicast exchange that got no reply is
        tried again ``retries`` times (the probe took a token for the first send; each retry takes its
        own). Multicast goes out only on ``interface``, the one this context was made for."""
        from scanner.probes.base import bounded_replies, same_host, udp_exchange

        source = interface_addresses(interface)[0] if interface else None
        cap = min(self.o.max_bytes, 65536)
        o, limiter = self.o, self.limiter

        async def exchange(payload: bytes, dest: tuple[str, int], wait: float,
                           multicast: bool) -> list[tuple[bytes, tuple[str, int]]]:
            if multicast and not interface:
                return []
            tries = 1 if multicast else 1 + max(0, o.retries)
            replies: list[tuple[bytes, tuple[str, int]]] = []
            for attempt in range(tries):
                if attempt:
                    await limiter.acquire()
                if o.datagram is not None:
                    replies = list(await o.datagram(payload, dest, wait, multicast))
                    if not multicast:  # only the host asked answers a unicast question
                        replies = [r for r in replies if same_host(r[1][0], dest[0])]
                    replies = bounded_replies(replies, cap)
                elif multicast:
                    replies = await udp_exchange(payload, dest, wait, interface=interface, source=source,
                                                 max_bytes=cap)
                else:
                    try:
                        replies = await udp_exchange(payload, dest, wait, max_bytes=cap, stop_after=1)
                    except ConnectionRefusedError:
                        break  # the port is closed (ICMP): a retry would be refused too
                if replies:
                    break
            return replies

        exchange.uses_network = o.datagram is None  # type: ignore[attr-defined]  # (snmpv3: its own socket is fine)
        return exchange


def cut_short_fragment(probes: Iterable[str], by: str) -> dict:
    """The trace of probes a deadline cut short, kept with the device: a ``discovery`` entry of protocol
    ``camsweep`` (no fingerprint reads it; the store, the evidence export and the reports keep it)."""
    return {"discovery": [{"protocol": CUT_SHORT_PROTOCOL,
                           "fields": {"cut_short": ",".join(sorted(set(probes))), "by": by}}]}


async def collect_host(ip: str, frags: list[dict], ctx: Any, probes: Mapping[str, ProbeFn],
                       options: ScanOptions, monitor: Any = None) -> list[dict]:
    """Run ``probes`` on one host, each under its own timeout, all under the host deadline; returns the
    fragments that came back (a probe that failed, hung or raised gives nothing, and costs only itself).
    Time the event loop was stalled (``monitor``, scanner.pacing) is given back to the host deadline once;
    probes still cut short by a deadline are named in a fragment of their own (cut_short_fragment)."""
    sem = asyncio.Semaphore(max(1, options.per_host))
    cut: list[str] = []
    xaddrs = [x for f in frags for w in (f.get("wsd") or []) if isinstance(w, Mapping)
              for x in (w.get("xaddrs") or []) if isinstance(x, str)][:4]

    async def one(name: str, fn: ProbeFn) -> dict:
        async with sem:
            try:
                call = fn(ip, ctx, xaddrs=xaddrs) if name == "onvif" and xaddrs else fn(ip, ctx)
                return await asyncio.wait_for(call, options.timeout * 3 + options.connect_timeout + 1)
            except asyncio.CancelledError:
                raise
            except TimeoutError:
                cut.append(name)
                return {}
            except Exception:
                return {}

    tasks = {asyncio.create_task(one(n, f)): n for n, f in probes.items()}
    out: list[dict] = []
    if tasks:
        mark = monitor.stalled if monitor is not None else 0.0
        done, pending = await asyncio.wait(tasks, timeout=options.host_timeout)
        if pending and monitor is not None:
            extra = min(monitor.stalled_since(mark), options.host_timeout / 2)
            if extra > 0.05:  # the loop, not the host, was slow: give that time back once
                more, pending = await asyncio.wait(pending, timeout=extra)
                done |= more
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            cut.extend(tasks[t] for t in pending)
        for t in done:
            if not t.cancelled() and t.exception() is None and isinstance(t.result(), dict):
                out.append(t.result())
        if cut:
            out.append(cut_short_fragment(cut, "host deadline" if pending else "probe deadline"))
    return out


def host_probes(options: ScanOptions) -> dict[str, ProbeFn]:
    """The per-host probes a scan runs: the injected ones or the registry's, only those ``options.probes``
    names (when it names any); none when a capture is read instead of the wire (``--pcap``)."""
    if options.pcap:
        return {}
    probes = dict(options.host_probes) if options.host_probes is not None else registry.host_probes(options.probes)
    if options.probes is not None:
        probes = {k: v for k, v in probes.items() if k in options.probes}
    return probes


class Prober:
    """Probes the live hosts ``discovery`` found, identifies and stores each (``writer``) as soon as it is
    done, and counts them (Progress events). ``pool``: worker processes, when the scan has them."""

    def __init__(self, options: ScanOptions, env: ProbeEnv, discovery: Discovery, writer: DeviceWriter,
                 probes: Mapping[str, ProbeFn], emit: Callable[[ScanEvent], None]) -> None:
        self.o = options
        self.env = env
        self.discovery = discovery
        self.writer = writer
        self.host_probes = dict(probes)
        self.emit = emit
        self.pool: WorkerPool | None = None
        self.done = 0
        self.cut_short = 0  # hosts with a probe a deadline cut short (each recorded with its device)
        self.monitor: Any = None  # scanner.pacing.LagMonitor while hosts are probed
        self.gate: Any = None
        # hosts identified and stored while discovery still ran (Discovery.streaming)
        self.stream_tasks: set[asyncio.Task] = set()
        self.stream_errors: list[BaseException] = []

    def context(self, interface: str | None = None, **kw: Any) -> Any:
        return self.env.context(interface, **kw)

    def probes_for(self, ip: str) -> dict[str, ProbeFn]:
        """The per-host probes for ``ip``: all, less those a multicast round on its segment covered."""
        on_segment = any(ipaddress.ip_address(ip) in n for n in self.discovery.net.attached_nets)
        ran = self.discovery.multicast_ran
        return {n: f for n, f in self.host_probes.items()
                if not (on_segment and registry.MULTICAST_COVERS.get(n) in ran)}

    def stream_host(self, ip: str, mac: str | None, frags: list[dict]) -> None:
        """An ARP answer that is all the evidence the host will get: identify and store it now, while
        discovery goes on (Discovery.streaming)."""
        t = asyncio.create_task(self._finish_streamed(ip, mac, frags))
        self.stream_tasks.add(t)
        t.add_done_callback(self.stream_tasks.discard)

    async def _finish_streamed(self, ip: str, mac: str | None, frags: list[dict]) -> None:
        try:
            await self.finish_host(ip, mac, frags)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the store failing, say: probe_all stops the scan with it
            self.stream_errors.append(exc)
        finally:
            self.done += 1

    async def probe_host(self, ip: str) -> None:
        frags = self.discovery.hosts.pop(ip, [])
        mac = self.discovery.macs.pop(ip, None)
        frags += await collect_host(ip, frags, self.context(), self.probes_for(ip), self.o, self.monitor)
        await self.finish_host(ip, mac, frags)

    async def finish_host(self, ip: str, mac: str | None, frags: list[dict]) -> None:
        if any(isinstance(d, Mapping) and d.get("protocol") == CUT_SHORT_PROTOCOL
               for f in frags if isinstance(f, Mapping) for d in (f.get("discovery") or [])):
            self.cut_short += 1
        rec = merge_fragments(ip, mac, frags)
        rec = await self.follow_up_recorder(ip, rec)
        await self.writer.record(rec)

    async def follow_up_recorder(self, ip: str, rec: EvidenceRecord) -> EvidenceRecord:
        """A recorder we hold credentials for but got no channel list from (a busy NVR answers slowly):
        ask its HTTP interface once more, alone and with three times the time, before it is written."""
        http = self.host_probes.get("http")
        if http is None or not self.o.credentials or any(d.protocol == NVR_CHANNEL for d in rec.discovery):
            return rec
        await self.writer.ready()
        ident = self.writer.identify(rec)
        if ident.device_type not in RECORDER_TYPES:
            self.writer.keep(rec, ident)  # record() writes this very record: not identified twice
            return rec
        ctx = self.context(timeout=self.o.timeout * 3)
        if not ctx.credentials_for(ip):
            return rec
        try:
            frag = await asyncio.wait_for(http(ip, ctx), self.o.timeout * 9 + self.o.connect_timeout)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            self.cut_short += 1
            return merge_fragments(ip, rec.mac, [rec.to_dict(), cut_short_fragment(["http"], "recorder follow-up")])
        except Exception:
            return rec
        have = {d.protocol for d in rec.discovery}
        extra = [d for d in (frag or {}).get("discovery", []) or []
                 if isinstance(d, Mapping) and (d.get("protocol") == NVR_CHANNEL or d.get("protocol") not in have)]
        return merge_fragments(ip, rec.mac, [rec.to_dict(), {"discovery": extra}]) if extra else rec

    async def probe_all(self) -> None:
        found, skip = self.discovery.hosts, self.discovery.skip
        hosts = [ip for ip in found if ip not in skip]
        for ip in list(found):
            if ip in skip:
                found.pop(ip, None)
        if self.o.assume_up:
            hosts = None  # type: ignore[assignment]
        total = len(hosts) if hosts is not None else max(0, len(self.discovery.targets) - len(skip))
        total += len(self.discovery.streamed)
        self.emit(HostsFound(total))
        self.emit(Progress(self.done, total))
        self.monitor, self.gate = watch(self.o.concurrency)
        try:
            await self._probe_all(hosts, total)
        finally:
            await self.monitor.stop()
            if self.stream_tasks:
                await asyncio.gather(*list(self.stream_tasks), return_exceptions=True)
        if self.gate.backoffs:  # pacing did its job; only a probe cut short (below) lost anything
            logging.getLogger("camsweep.engine").info(
                "the event loop lagged (up to %.1f s): hosts probed at once cut from %d to %d at the worst",
                self.monitor.peak, self.o.concurrency, self.gate.lowest)
            self.emit(Pacing(peak_lag=self.monitor.peak, lowest=self.gate.lowest, backoffs=self.gate.backoffs))
        if self.cut_short:
            self.emit(ScanWarning(f"{self.cut_short} hosts had a probe cut short by a deadline (each device's "
                                  f"record names them: discovery {CUT_SHORT_PROTOCOL}.cut_short)"))
        if self.stream_errors:
            raise self.stream_errors[0]

    async def _probe_all(self, hosts: list[str] | None, total: int) -> None:
        skip = self.discovery.skip
        source = iter(hosts) if hosts is not None else (ip for ip in self.discovery.targets if ip not in skip)
        if self.pool is None and self.o.workers < 0:
            n = worker_count(self.o, total)
            if n:
                self.pool = WorkerPool(n, self.o)
        if self.pool is not None and total:
            source = await self.probe_with_workers(source, total)
        errors: list[BaseException] = []

        async def run(ip: str) -> None:
            try:
                await self.probe_host(ip)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store failing, say: stop the scan with that error
                errors.append(exc)
            finally:
                self.done += 1
                self.emit(Progress(self.done, total))

        # hosts in flight: the concurrency asked for, less while the loop lags (scanner.pacing)
        await run_bounded(source, self.gate, run, stop=lambda: bool(errors))
        if errors:
            raise errors[0]

    async def probe_with_workers(self, source: Iterator[str], total: int) -> Iterator[str]:
        """Hand the hosts to the worker processes; identify and store each as its fragments come back.
        Returns the hosts left over if every worker died (they are then probed in this process)."""
        import queue

        assert self.pool is not None
        loop = asyncio.get_running_loop()
        reader = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="camsweep-results")
        pending: dict[str, tuple[str | None, list[dict]]] = {}
        for ip in source:
            frags, mac = self.discovery.hosts.pop(ip, []), self.discovery.macs.pop(ip, None)
            skip = tuple(n for n in self.host_probes if n not in self.probes_for(ip))
            pending[ip] = (mac, frags)
            self.pool.jobs.put((ip, frags, skip))
        for _ in self.pool.procs:
            self.pool.jobs.put(None)
        finishing: set[asyncio.Task] = set()
        errors: list[BaseException] = []
        finish_sem = asyncio.Semaphore(max(1, self.o.concurrency))

        async def finish(ip: str, mac: str | None, frags: list[dict]) -> None:
            try:
                await self.finish_host(ip, mac, frags)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                errors.append(exc)
            finally:
                finish_sem.release()
                self.done += 1
                self.emit(Progress(self.done, total))

        results = self.pool.results

        try:
            while pending and not errors:
                try:
                    batch = await loop.run_in_executor(reader, take_batch, results, 256)
                except queue.Empty:
                    if not self.pool.alive():
                        self.emit(ScanWarning("the probe workers stopped; probing the rest in this process"))
                        break
                    continue
                for ip, frags in batch:
                    if ip not in pending:
                        continue  # a worker's "ready"
                    mac, old = pending.pop(ip)
                    await finish_sem.acquire()
                    t = asyncio.create_task(finish(ip, mac, old + list(frags or [])))
                    finishing.add(t)
                    t.add_done_callback(finishing.discard)
            if finishing:
                await asyncio.gather(*finishing)
        finally:
            reader.shutdown(wait=False, cancel_futures=True)
        if errors:
            raise errors[0]
        for ip, (mac, frags) in pending.items():
            self.discovery.hosts[ip] = frags
            if mac:
                self.discovery.macs[ip] = mac
        return iter(list(pending))
