"""Discovery: which targets are live, with the evidence that finding them gives (phase 2 of a scan).

All at once: an ARP sweep (``scanner.probes.arp``) of the target addresses on each interface directly
attached to a target, and the multicast discovery protocols (wsd, ssdp, mdns, sadp, dhip) once on each
such interface whose segment the targets cover (or with ``--multicast``): an address not named, or
excluded, gets no packet (``scanner.scope``). Then liveness for targets on no attached segment (ICMP echo
where raw sockets are allowed, then TCP connects); ``--passive SECONDS`` of listening; ``--pcap FILE``
instead of the wire; then the MAC sources (``scanner.macsources``). Replies from outside the targets are
dropped.

:class:`Discovery` keeps the live hosts and their fragments (``hosts``, ``macs``) for the probing that
follows (``scanner.probing``).
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import sys
import time
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping
from typing import Any

from scanner import macsources
from scanner.errors import CamsweepError
from scanner.events import Phase, ScanEvent, ScanWarning
from scanner.evidence import normalize_mac
from scanner.localnet import HostNetwork, read_neighbours
from scanner.options import DiscoverFn
from scanner.pacing import run_bounded
from scanner.probes import liveness, registry
from scanner.probes.icmp import icmp_sweep
from scanner.probing import ProbeEnv
from scanner.scope import covers_segment, segment_addresses

ARP_CHUNK = 4096  # addresses per ARP sweep call (the ARP module's limit)
ARP_PARALLEL = 2  # ARP sweeps at once
DISCOVERY_SWITCH_INTERVAL = 0.0005  # seconds: sys.setswitchinterval while discovery runs


class Discovery:
    """The discovery of one scan over ``net``'s targets, with ``env``'s options, rate limiter and probe
    contexts. ``skip``: hosts already identified in this scan (resume); ``host_probes``: the per-host probes
    that will follow (none: see :meth:`streaming`). ``on_streamed``, when set, takes a host whose ARP answer
    is all its evidence (ip, MAC, fragments) while discovery goes on (scanner.probing.Prober.stream_host)."""

    def __init__(self, net: HostNetwork, env: ProbeEnv, skip: set[str], emit: Callable[[ScanEvent], None],
                 host_probes: Collection[str] = ()) -> None:
        self.net, self.env, self.skip, self.emit, self.host_probes = net, env, skip, emit, host_probes
        self.targets, self.o, self.limiter = net.targets, env.o, env.limiter
        options = self.o
        self.on_streamed: Callable[[str, str | None, list[dict]], None] | None = None
        self.interfaces = net.interfaces
        self.multicast_ifaces = self._multicast_interfaces()
        wanted = [n for n in registry.DISCOVERY_PROBES
                  if (options.arp if n == "arp" else bool(self.multicast_ifaces))]
        self.discoverers = dict(options.discoverers) if options.discoverers is not None else \
            registry.discoverers(wanted)  # only the modules this scan uses are imported
        self.hosts: dict[str, list[dict]] = {}  # live host -> discovery fragments
        self.macs: dict[str, str] = {}
        self.arp_swept: set[str] = set()  # addresses an ARP sweep asked
        self._warned_unroutable = False
        self.multicast_ran: set[str] = set()  # discovery protocols that ran on the attached segments
        self.streamed: set[str] = set()  # hosts handed to on_streamed (see streaming())

    # -- helpers ----------------------------------------------------------------------------
    @property
    def attached_nets(self) -> list[ipaddress.IPv4Network]:
        return self.net.attached_nets

    def _multicast_interfaces(self) -> list[str]:
        """Interfaces multicast questions may be asked on: see ScanOptions.multicast and scanner.scope."""
        if self.o.multicast is False:
            return []
        if self.o.multicast:
            return list(self.interfaces)
        out = []
        for iface in self.interfaces:
            nets = self.net.segments(iface)
            if nets and all(covers_segment(self.targets, n, self.net.own) for n in nets):
                out.append(iface)
        return out

    def in_scope(self, ip: str) -> bool:
        return self.net.in_scope(ip)

    def context(self, interface: str | None = None, **kw: Any) -> Any:
        return self.env.context(interface, **kw)

    # -- discovery --------------------------------------------------------------------------
    def add_host(self, ip: str, fragment: Mapping[str, Any] | None = None, mac: str | None = None) -> None:
        try:
            ip = str(ipaddress.ip_address(ip))
        except ValueError:
            return
        if not self.in_scope(ip) or ip in self.streamed:
            return
        frags = self.hosts.setdefault(ip, [])
        if mac:
            m = normalize_mac(mac)
            if m:
                self.macs.setdefault(ip, m)
        if fragment:
            frag = dict(fragment)
            fm = frag.pop("mac", None)
            if isinstance(fm, str) and normalize_mac(fm):
                self.macs.setdefault(ip, normalize_mac(fm))  # type: ignore[arg-type]
            frag.pop("ip", None)
            if frag and len(frags) < 64:
                frags.append(frag)

    async def discover(self) -> None:
        t0 = time.monotonic()
        # The ARP sender thread gives up the GIL for every frame it sends; while the fingerprints load in
        # another thread, each hand-back waited up to the default 5 ms switch interval (a /24 sweep took
        # 1.1 s instead of 0.8 s, measured in the lab). A short interval while discovery runs.
        switch = sys.getswitchinterval()
        sys.setswitchinterval(min(switch, DISCOVERY_SWITCH_INTERVAL))
        if self.o.credentials and self.o.workers <= 0 and self.o.host_probes is None and "onvif" in self.host_probes:
            from scanner.probes import onvif

            # in a thread: measured, the client's import blocked the probing event loop for ~0.4 s
            asyncio.get_running_loop().run_in_executor(None, onvif.load_client).add_done_callback(
                lambda f: f.cancelled() or f.exception())
        try:
            await self._discover()
        finally:
            sys.setswitchinterval(switch)
            self.emit(Phase("discovery", seconds=round(time.monotonic() - t0, 3), hosts=len(self.hosts)))

    async def _discover(self) -> None:
        if self.o.pcap:  # offline: hosts and evidence come from the capture alone; nothing is sent
            await self._passive()
            return
        jobs: list[Awaitable[Any]] = []
        for iface in self.interfaces:
            for name, fn in self.discoverers.items():
                if name == "arp" and not self.o.arp:
                    continue
                if name != "arp" and iface not in self.multicast_ifaces:
                    continue  # the targets do not cover this segment, and --multicast was not given
                jobs.append(self._run_discoverer(name, fn, iface))
        if self.o.passive > 0 or self.o.pcap:
            jobs.append(self._passive())
        if jobs:
            await asyncio.gather(*jobs)
        if not self.o.assume_up:
            t0 = time.monotonic()
            await self._liveness()
            self.emit(Phase("liveness", seconds=round(time.monotonic() - t0, 3)))
        if self.interfaces:
            for ip, mac in read_neighbours().items():
                if ip in self.hosts and ip not in self.macs:
                    self.macs[ip] = mac

        await macsources.gather(self)

    async def _run_discoverer(self, name: str, fn: DiscoverFn, iface: str) -> None:
        if name == "arp":
            await self._arp(fn, iface, self.context(interface=iface, discover_wait=self.o.arp_wait))
            return
        ctx = self.context(interface=iface)
        limit = self.o.discovery_wait + 4 * self.o.timeout
        t0 = time.monotonic()
        try:
            frags = await asyncio.wait_for(fn(ctx), limit)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            self.emit(ScanWarning(f"{name} discovery on {iface} ran out of time"))
            return
        except Exception as exc:  # a discoverer must not stop the scan
            self.emit(ScanWarning(f"{name} discovery on {iface} failed: {type(exc).__name__}: {exc}"))
            return
        self.multicast_ran.add(name)
        self.emit(Phase(f"{name} on {iface}", seconds=round(time.monotonic() - t0, 3), replies=len(frags or [])))
        self._add_fragments(frags)

    def _add_fragments(self, frags: Any) -> None:
        for frag in frags or []:
            if isinstance(frag, Mapping) and isinstance(frag.get("ip"), str):
                self.add_host(frag["ip"], frag)

    def arp_chunks(self, iface: str) -> list[list[str]]:
        """The target addresses on ``iface``'s segments (exclusions out, the scanner's own out), in lists of at
        most ARP_CHUNK: only targets are asked, never the rest of their network (scanner.scope)."""
        nets = self.net.segments(iface)
        addrs = segment_addresses(self.targets, nets, everywhere=not nets and self.o.interface == iface,
                                  skip=self.net.own | self.arp_swept)
        return [addrs[i:i + ARP_CHUNK] for i in range(0, len(addrs), ARP_CHUNK)]

    def streaming(self) -> bool:
        """Whether an ARP answer is all the evidence a host will get (a discovery-only scan with no other
        source): such hosts are identified and stored while the sweep asks the silent addresses again,
        instead of after it (a /24 -sn scan: ~0.25 s of its ~1.6 s, measured in the lab). Only with a taker
        for them (``on_streamed``)."""
        return (self.on_streamed is not None and not self.host_probes and (set(self.discoverers) <= {"arp"} or not self.multicast_ifaces)
                and self.o.passive <= 0
                and not self.o.pcap and not self.o.assume_up)

    def _stream_answers(self, frags: list[dict]) -> None:
        for frag in frags:
            try:
                ip = str(ipaddress.ip_address(frag["ip"]))
            except (KeyError, TypeError, ValueError):
                continue
            if ip in self.streamed or ip in self.skip or not self.in_scope(ip):
                continue
            self.add_host(ip, frag)
            self.streamed.add(ip)
            frags_ip, mac = self.hosts.pop(ip, []), self.macs.pop(ip, None)
            self.on_streamed(ip, mac, frags_ip)  # type: ignore[misc]  # (streaming() says there is one)

    async def _arp(self, fn: DiscoverFn, iface: str, ctx: Any) -> None:
        """Sweep chunk by chunk (a few at once); each chunk first takes its packets' worth of tokens."""
        chunks = self.arp_chunks(iface)
        sem = asyncio.Semaphore(ARP_PARALLEL)
        kw: dict[str, Any] = {}
        if self.streaming() and "on_answers" in inspect.signature(fn).parameters:
            kw["on_answers"] = self._stream_answers

        async def sweep(addrs: list[str]) -> None:
            async with sem:
                if self.o.rate > 0:
                    for _ in range(len(addrs) - 1):  # the module takes the last token itself
                        await self.limiter.acquire()
                try:
                    frags = await asyncio.wait_for(fn(ctx, addresses=addrs, **kw), self.o.discovery_wait + 30)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.emit(ScanWarning(f"ARP sweep of {len(addrs)} addresses on {iface} failed: "
                                          f"{type(exc).__name__}"))
                    return
                self.arp_swept.update(addrs)  # the silent ones are not there: no TCP liveness for them
                self._add_fragments(frags)

        await asyncio.gather(*(sweep(n) for n in chunks))

    async def _passive(self) -> None:
        from scanner.probes import passive

        if self.o.pcap:
            try:
                frags = await asyncio.to_thread(passive.read_pcap, self.o.pcap)
            except asyncio.CancelledError:
                raise
            except passive.CaptureError as exc:
                raise CamsweepError(str(exc)) from None
            except Exception as exc:
                raise CamsweepError(f"cannot read the capture {self.o.pcap}: {exc}") from None
            self._add_fragments(frags)
        if self.o.passive > 0:
            if not self.interfaces:
                self.emit(ScanWarning("--passive listens only on an interface attached to a target; none is"))
                return
            for iface in self.interfaces:
                ctx = self.context(interface=iface)
                try:
                    frags = await asyncio.wait_for(passive.capture(ctx, self.o.passive), self.o.passive + 5)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.emit(ScanWarning(f"passive listening on {iface} failed: {exc}"))
                    continue
                self._add_fragments(frags)

    def _routed_targets(self) -> Iterator[str]:
        """Targets not on an attached segment (those get TCP liveness; attached ones ARP)."""
        swept = self.arp_swept
        unroutable = 0
        for ip in self.targets:
            if ip in self.skip or ip in swept or ip in self.net.own:  # the scanner's own address needs no echo
                continue
            if not self.net.reachable(ip):
                unroutable += 1
                continue
            yield ip
        if unroutable and not self._warned_unroutable:
            self._warned_unroutable = True
            self.emit(ScanWarning(f"{unroutable} targets have no route from this host and were skipped"))

    async def _liveness(self) -> None:
        """For every target no ARP sweep covered: an ICMP echo pass (when raw sockets are allowed), then TCP
        connects (all liveness ports of a host at once) to the hosts that did not answer it."""
        if self.o.icmp and self.o.open_stream is None:
            answered = await icmp_sweep(self._routed_targets(), self.limiter, self.o.liveness_timeout,
                                        on_warning=lambda m: self.emit(ScanWarning(m)))
            for ip in answered:
                self.add_host(ip)
        await self._tcp_liveness()

    async def _tcp_liveness(self) -> None:
        ctx = self.context(connect_timeout=self.o.liveness_timeout)  # the rate limiter's wait is not counted
        sem = asyncio.Semaphore(max(1, self.o.concurrency * 4))

        async def knock(ip: str) -> None:
            if await liveness.alive(ip, ctx):
                self.add_host(ip)

        # a host already in self.hosts answered the ICMP echo
        await run_bounded((ip for ip in self._routed_targets() if ip not in self.hosts), sem, knock)
