"""How to scan: :class:`ScanOptions`, the one set of options every part of a scan reads (discovery,
probing, the worker processes, ``--resume``), and the shapes of the probe functions it can be given.

The plain fields are recorded with the scan (``recordable``) and read back by ``--resume`` and by each
worker process (``from_recorded``); the seams are for tests and embedding and are never recorded, nor are
credentials.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scanner.localnet import Route

ProbeFn = Callable[[str, Any], Awaitable[dict]]  # a per-host probe: (host, ProbeContext) -> fragment
DiscoverFn = Callable[[Any], Awaitable[list[dict]]]  # a segment-wide discoverer: (ProbeContext) -> fragments


@dataclass
class ScanOptions:
    """How to scan. Plain fields are recorded with the scan; the seams (probes, transports, identifier,
    routes) are for tests and embedding and are never recorded. Credentials are never recorded."""

    interface: str | None = None  # the interface for ARP and multicast; default: the attached one
    exclude: tuple[str, ...] = ()
    max_hosts: int | None = None
    rate: float = 5000.0  # packets (connections, datagrams) a second; 0 = unlimited
    # hosts probed at once (split between the workers, if any). Measured: 256 finished the 250-device lab ~1.5 s
    # sooner, but one process probing 256 hosts at once through a 1000-device lab lost 45 NVR channel lists to
    # timeouts (every host's wall time stretches with the load); 128 lost none.
    concurrency: int = 128
    per_host: int = 6  # probes at once on one host
    timeout: float = 4.0  # one probe on one host
    connect_timeout: float = 1.0
    host_timeout: float = 10.0  # everything on one host (a slow device costs this much at most)
    max_bytes: int = 64 * 1024  # read from one reply
    retries: int = 1  # extra tries for a unicast UDP exchange that got no reply
    discovery_wait: float = 1.0  # seconds a multicast discovery round listens (replies come within APP_MAX_DELAY, 0.5 s)
    arp_wait: float = 1.0  # seconds an ARP sweep waits for replies after its last request
    liveness_timeout: float = 1.0
    arp: bool = True
    icmp: bool = True  # ICMP echo for routed targets (needs raw sockets: root or CAP_NET_RAW)
    # multicast discovery: None = only on a segment the targets cover whole (scanner.scope), True = on every
    # attached segment (--multicast), False = never (--no-multicast)
    multicast: bool | None = None
    assume_up: bool = False  # -Pn: probe every target, discovered or not
    passive: float = 0.0  # seconds of passive listening
    pcap: str | None = None
    probes: tuple[str, ...] | None = None  # names of per-host probes to run (default: all; () = none)
    ports: dict[str, tuple[int, ...]] | None = None
    policy: str = "ndaa889"
    site: str | None = None
    resume: bool = False
    snmp_public: bool = True  # SNMP may try the read-only "public" community (--no-snmp-public: no)
    # MAC sources for hosts beyond the scanner's segment (scanner/macsources.py): routers whose SNMP
    # neighbour tables are read, DHCP lease files, saved neighbour tables
    snmp_routers: tuple[str, ...] = ()
    dhcp_leases: tuple[str, ...] = ()
    neighbours: tuple[str, ...] = ()
    # processes that probe hosts: 0 = none (in-process, the default for library use), -1 = automatic (the
    # CLI's default, scanner.workers.worker_count: half the cores, up to MAX_WORKERS, once discovery finds
    # WORKER_MIN_HOSTS live hosts on a machine of WORKER_MIN_CPUS cores or more; else none). Workers are spawned: the caller's __main__ must be
    # guarded by ``if __name__ == "__main__"``.
    workers: int = 0
    # seams, never recorded
    credentials: Any = field(default=None, repr=False)
    host_probes: Mapping[str, ProbeFn] | None = field(default=None, repr=False)
    discoverers: Mapping[str, DiscoverFn] | None = field(default=None, repr=False)
    identifier: Any = field(default=None, repr=False)
    http_transport: Any = field(default=None, repr=False)
    open_stream: Any = field(default=None, repr=False)
    datagram: Any = field(default=None, repr=False)
    routes: Callable[[], list[Route]] | None = field(default=None, repr=False)

    _SEAMS = ("credentials", "host_probes", "discoverers", "identifier", "http_transport", "open_stream",
              "datagram", "routes")

    def recordable(self) -> dict[str, Any]:
        """The options as stored with the scan: plain values only, no credentials, no seams."""
        out = {}
        for f in fields(self):
            if f.name in self._SEAMS:
                continue
            out[f.name] = getattr(self, f.name)
        out["credentials"] = bool(self.credentials)
        return json.loads(json.dumps(out, default=list))

    @classmethod
    def from_recorded(cls, data: Mapping[str, Any]) -> ScanOptions:
        known = {f.name for f in fields(cls)} - set(cls._SEAMS)
        kw = {k: v for k, v in data.items() if k in known}
        for k in ("exclude", "probes", "snmp_routers", "dhcp_leases", "neighbours"):
            if kw.get(k) is not None:
                kw[k] = tuple(kw[k])
        if kw.get("ports"):
            kw["ports"] = {k: tuple(v) for k, v in kw["ports"].items()}
        return cls(**kw)
