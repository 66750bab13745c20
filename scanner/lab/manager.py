"""Lab lifecycle: ``up``, ``status``, ``down`` (the orchestration behind `camsweep lab` and the test fixtures).

``up`` builds the fleet with :func:`scanner.lab.profiles.build_fleet`, gives every device host an
address and a namespace, builds the network (:mod:`scanner.lab.netns`), writes the plan, the ground
truth and the credentials file into the lab's state dir, starts one service process
(``python -m scanner.lab.service --plan PLAN.json``) and waits until it prints ``ready``.
``down`` stops that process, deletes the namespaces, restores the shared sysctls when it was the last
lab holding them, and removes the state dir. It works from the names alone, so it also cleans up after
a crash (no state file, a dead service, half-built namespaces).

State dir: ``$CAMSWEEP_LAB_STATE_DIR/<prefix>/``, else ``/run/camsweep-lab/<prefix>/`` as root, else
``$XDG_RUNTIME_DIR/camsweep-lab/<prefix>/`` (or ``/tmp/camsweep-lab-<uid>/<prefix>/``). It holds
``state.json`` (with the lab's port map: ``port_map``, ``scan_ports``, ``scan_args``; see :func:`lab_ports`),
``plan.json`` (0600), ``ground-truth.jsonl``, ``credentials.ini`` (0600), ``targets.txt``
(the devices' addresses, one a line: what to scan in a loopback lab, where every 127.x address answers),
``service.out`` (the service's stdout) and ``service.log`` (its stderr).

Plan JSON (what the service reads; ``plan.json``, mode 0600), format 1::

    {"version": 1, "prefix": "csw", "mode": "netns" | "loopback", "seed": 0,
     "cidr": "198.18.0.0/24", "scanner_ip": "198.18.0.1" | null, "scanner_netns": "csw-scan" | null,
     "port_offset": 0,   # loopback lab without root: 10000 (serve port P on 10000 + P); else 0
     "devices": [        # one per DeviceSpec of build_fleet(n, seed), in fleet order
       {...DeviceSpec.to_dict()...,      # index, profile, family, mac, manufacturer, ..., channels
        "netns": "csw-d0" | null,        # null in loopback mode: bind ``ip`` in the service's namespace
        "ip": "198.18.0.2", "prefixlen": 24,
        "username": "admin", "password": "..."}]}   # the device's admin account (also credentials.ini)

Plus ``"cidrs"`` (every device segment); a routed lab (``up(routed=True)``, scanner/lab/routed.py) also
has ``"routed": true``, ``"router_netns"`` and per device ``"segment"`` and ``"gateway"``; its devices get
their ``ip`` by DHCP from the router's dnsmasq (reserved by MAC), and its state records ``daemon_pids``
(dnsmasq, snmpd: stopped by ``down``), ``snmp`` and ``dhcp_leases``.

``DeviceSpec.from_dict(entry)`` rebuilds a spec from an entry (it ignores the extra keys).

Ground truth (``ground-truth.jsonl``): ``DeviceSpec.ground_truth(ip)`` rows (each device, then the
cameras on its PoE ports with ``parent_ip``/``channel``), the contract's keys first, plus ``netns``.
Credentials never go into the ground truth or the state file: only into the plan and credentials.ini.
"""

from __future__ import annotations

import configparser
import dataclasses
import ipaddress
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scanner.errors import LabError
from scanner.lab import netns as nsmod

DEFAULT_PREFIX = "csw"
DEFAULT_DEVICES = 60
MAX_DEVICES = 4000
NETNS_BASE = ipaddress.IPv4Address("198.18.0.0")
LOOPBACK_BASE = ipaddress.IPv4Address("127.18.0.0")
SERVICE_MODULE = "scanner.lab.service"
GROUND_TRUTH_KEYS = ("ip", "mac", "manufacturer", "brand", "model", "device_type", "restricted", "profile",
                     "hostile", "parent_ip", "channel")
_SECRET_WORDS = ("password", "passwd", "secret", "credential", "username", "token")

Log = Callable[[str], None]


class LabUnavailable(LabError):
    """Network namespaces cannot be used here (not root, no netns): a loopback lab still can."""


def _quiet(msg: str) -> None:
    pass


def default_prefix() -> str:
    return os.environ.get("CAMSWEEP_LAB_PREFIX") or DEFAULT_PREFIX


def state_root() -> Path:
    env = os.environ.get("CAMSWEEP_LAB_STATE_DIR")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/run/camsweep-lab")
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.access(xdg, os.W_OK):
        return Path(xdg) / "camsweep-lab"
    return Path(f"/tmp/camsweep-lab-{os.geteuid()}")


def state_dir(prefix: str) -> Path:
    return state_root() / nsmod.validate_prefix(prefix)


@dataclass(frozen=True, slots=True)
class LabStatus:
    """What `camsweep lab status --json` prints (the contract's keys plus a few more)."""

    prefix: str
    mode: str
    scanner_netns: str | None
    cidr: str
    devices: int
    ground_truth: str
    credentials_file: str
    interface: str | None
    scanner_ip: str | None = None
    bridge_netns: str | None = None
    state_dir: str = ""
    plan: str = ""
    targets_file: str = ""
    seed: int = 0
    port_offset: int = 0
    # where the devices listen: real port -> port served ("80" -> 10080 in a loopback lab without root), the
    # per-protocol ports a scan should ask, and the `camsweep scan` options that ask them (scanner/ports.py)
    port_map: dict[str, int] = field(default_factory=dict)
    scan_ports: dict[str, list[int]] = field(default_factory=dict)
    scan_args: list[str] = field(default_factory=list)
    service_pid: int | None = None
    service_alive: bool = False
    namespaces: int = 0
    phase: str = "up"
    started_at: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    # every device segment (one in a flat lab); a routed lab's router: SNMP agent and DHCP lease file
    cidrs: list[str] = field(default_factory=list)
    routed: bool = False
    snmp: dict[str, Any] | None = None
    dhcp_leases: str | None = None
    router_netns: str | None = None
    daemon_pids: list[int] = field(default_factory=list)
    daemons_alive: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def healthy(self) -> bool:
        """Up, its service running, and (netns mode) every namespace there: one a device, bridge, scanner."""
        want = self.devices + 2 if self.mode == "netns" else 0
        return self.phase == "up" and self.service_alive and self.namespaces >= want and self.daemons_alive

    def ground_truth_rows(self) -> list[dict[str, Any]]:
        return read_ground_truth(self.ground_truth)


@dataclass(frozen=True, slots=True)
class DownReport:
    prefix: str
    found: bool
    namespaces_removed: list[str]
    pids_stopped: list[int]
    sysctls_restored: dict[str, int]
    seconds: float


# --------------------------------------------------------------------------------------------
# addressing


def plan_addresses(n_hosts: int, mode: str, *, taken: Sequence[str] = ()) -> tuple[
        ipaddress.IPv4Network, str | None, list[str]]:
    """(network, scanner ip or None, device ips). /24 up to 250 hosts, the smallest wider prefix above.

    A netns lab always uses 198.18.0.0/.. (its namespaces are its own). A loopback lab shares the host's
    127/8 with other loopback labs, so it takes the first block of 127.18.0.0/16 that overlaps none of
    ``taken`` (their cidrs, and every address a socket is bound to: :func:`_loopback_cidrs_in_use`)."""
    if n_hosts < 0 or n_hosts > MAX_DEVICES:
        raise LabError(f"a lab holds 1 to {MAX_DEVICES} devices, not {n_hosts}")
    need = n_hosts + 2  # the scanner (.1, also kept free in loopback mode) and room for the devices
    prefixlen = 24
    while (2 ** (32 - prefixlen)) - 2 < need:
        prefixlen -= 1
    if mode == "netns":
        net = ipaddress.IPv4Network(f"{NETNS_BASE}/{prefixlen}")
    else:
        used = [ipaddress.ip_network(c) for c in taken]
        blocks = ipaddress.IPv4Network(f"{LOOPBACK_BASE}/16").subnets(new_prefix=prefixlen)
        net = next((b for b in blocks if not any(b.overlaps(u) for u in used)), None)
        if net is None:
            raise LabError("127.18.0.0/16 is full of other loopback labs; take one down first")
    hosts = net.hosts()
    scanner = str(next(hosts))
    ips = [str(next(hosts)) for _ in range(n_hosts)]
    return net, (scanner if mode == "netns" else None), ips


# --------------------------------------------------------------------------------------------
# ports

# the lab's services (scanner/lab/responders TCP_SERVICES, UDP_SERVICES) -> the scan's protocol keys
SCAN_PROTOCOL = {"http": "http", "http_alt": "http", "nas_web": "http", "https": "https", "rtsp": "rtsp",
                 "hik_sdk": "hikvision", "dahua_sdk": "dahua", "telnet": "telnet", "ssh": "ssh", "dvrip": "dvrip",
                 "snmp": "snmp", "snmp_private": "snmp", "snmp_v3": "snmp", "wsd": "wsd", "ssdp": "ssdp",
                 "sadp": "sadp", "dhip": "dhip", "mdns": "mdns"}


def lab_ports(plan: dict[str, Any]) -> dict[str, Any]:
    """The lab's port map (state.json, `lab status --json`): ``port_map`` (every real port a device serves ->
    the port it is served on, as the service binds it), ``scan_ports`` (per scan protocol: its default ports
    and the other ports the lab serves it on, moved the same way) and ``scan_args`` (the `camsweep scan`
    options asking them; empty when the defaults already do)."""
    from scanner import ports as ports_mod
    from scanner.lab.responders import TCP_SERVICES, UDP_SERVICES

    offset = int(plan.get("port_offset") or 0)
    port_map: dict[int, int] = {}
    served: dict[str, set[int]] = {}
    for d in plan["devices"]:
        explicit = {int(k): int(v) for k, v in (d.get("ports") or {}).items()}
        for svc in d.get("services") or ():
            real = TCP_SERVICES[svc][0] if svc in TCP_SERVICES else \
                getattr(UDP_SERVICES.get(svc), "PORT", None)
            if real is None:
                continue
            port_map.setdefault(real, explicit.get(real, offset + real))
            if svc in SCAN_PROTOCOL:
                served.setdefault(SCAN_PROTOCOL[svc], set()).add(real)
    scan_ports = ports_mod.lab_scan_ports(port_map, served, offset)
    return {"port_map": {str(k): v for k, v in sorted(port_map.items())},
            "scan_ports": {k: list(v) for k, v in scan_ports.items()},
            "scan_args": ports_mod.scan_arguments(scan_ports)}


# --------------------------------------------------------------------------------------------
# the fleet


def _spec_dict(spec: Any) -> dict[str, Any]:
    if hasattr(spec, "to_dict"):
        return dict(spec.to_dict())
    if dataclasses.is_dataclass(spec) and not isinstance(spec, type):
        return dataclasses.asdict(spec)
    if isinstance(spec, dict):
        return dict(spec)
    return {k: v for k, v in vars(spec).items() if not k.startswith("_")}


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _load_fleet(n: int, seed: int) -> list[Any]:
    from scanner.lab.profiles import build_fleet

    try:
        return list(build_fleet(n, seed))
    except ValueError as exc:
        raise LabError(f"cannot build a fleet of {n} devices with seed {seed}: {exc}") from None


def build_plan(specs: Sequence[Any], *, prefix: str, mode: str, seed: int,
               port_offset: int = 0, taken: Sequence[str] = (), routed: bool = False) -> dict[str, Any]:
    """The plan (without writing it): each spec gets an address, a namespace and an admin account.
    ``routed``: camera segments behind a router (scanner/lab/routed.py), the scanner on its own segment."""
    names = nsmod.LabNames(prefix)
    if routed:
        from scanner.lab import routed as rmod

        cidrs, placed, cover = rmod.plan_routed(len(specs))
        net, scanner_ip, ips = ipaddress.IPv4Network(cover), rmod.SCANNER_IP, [ip for _s, ip in placed]
    else:
        net, scanner_ip, ips = plan_addresses(len(specs), mode, taken=taken)
    devices: list[dict[str, Any]] = []
    for i, (spec, ip) in enumerate(zip(specs, ips, strict=True)):
        d = _json_safe(_spec_dict(spec))
        devices.append({
            **d,
            "index": i,
            "netns": names.device(i) if mode == "netns" else None,
            "ip": ip,
            "prefixlen": net.prefixlen,
            "mac": str(d.get("mac") or "").lower() or None,
            "username": "admin",
            "password": secrets.token_urlsafe(12),
        })
        if routed:
            devices[-1].update(prefixlen=24, segment=placed[i][0], gateway=rmod.router_ip(placed[i][0]))
    plan = {
        "version": 1, "prefix": prefix, "mode": mode, "seed": seed, "cidr": str(net),
        "scanner_ip": scanner_ip, "scanner_netns": names.scanner if mode == "netns" else None,
        "port_offset": port_offset, "devices": devices, "cidrs": [str(net)],
    }
    if routed:
        plan.update(cidrs=cidrs, routed=True, router_netns=names.router)
    return plan


def ground_truth_rows(specs: Sequence[Any], plan: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per device (its PoE cameras after it), the contract's keys first, then ``netns``."""
    rows: list[dict[str, Any]] = []
    for spec, d in zip(specs, plan["devices"], strict=True):
        if hasattr(spec, "ground_truth"):
            own = [_json_safe(r) for r in spec.ground_truth(d["ip"])]
        else:
            own = [{**{k: d.get(k) for k in GROUND_TRUTH_KEYS},
                    **{k: v for k, v in d.items() if k not in GROUND_TRUTH_KEYS}}]
        for r in own:
            row = {k: r.get(k) for k in GROUND_TRUTH_KEYS}
            row["netns"] = d["netns"] if r.get("ip") else None
            for k, v in r.items():
                if k not in row and k not in ("index", "prefixlen") and not any(w in k.lower() for w in _SECRET_WORDS):
                    row[k] = v
            rows.append(row)
    return rows


def read_ground_truth(path: str | Path) -> list[dict[str, Any]]:
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                out.append(json.loads(line))
    return out


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def _credentials_text(plan: dict[str, Any], snmp: dict[str, Any] | None = None) -> str:
    cp = configparser.ConfigParser(interpolation=None)
    if snmp:  # a routed lab's router: its own section, so that the devices are not asked with its secrets
        user = snmp.get("v3_user") or {}
        cp[snmp["address"]] = {"community": snmp["community"], "snmp_user": user.get("name", ""),
                               "snmp_auth_protocol": user.get("auth_protocol", "sha"),
                               "snmp_auth_key": user.get("auth_key", ""),
                               "snmp_priv_protocol": user.get("priv_protocol", "aes"),
                               "snmp_priv_key": user.get("priv_key", "")}
    for d in plan["devices"]:
        if d.get("ip"):
            cp[d["ip"]] = {"username": d["username"], "password": d["password"]}
            if "snmp_private" in (d.get("services") or ()):  # its read-only community (responders/snmp.py)
                from scanner.lab.responders.snmp import lab_community

                cp[d["ip"]]["community"] = lab_community(d["username"], d["password"])
            if "snmp_v3" in (d.get("services") or ()):  # its SNMPv3 user (responders/snmp.py)
                from scanner.lab.responders.snmp import lab_v3_user

                user, auth_key, priv_key = lab_v3_user(d["username"], d["password"])
                cp[d["ip"]].update({"snmp_user": user, "snmp_auth_protocol": "sha", "snmp_auth_key": auth_key,
                                    "snmp_priv_protocol": "aes", "snmp_priv_key": priv_key})
    import io

    buf = io.StringIO()
    buf.write(f"# camsweep lab {plan['prefix']}: admin accounts of the simulated devices (lab only)\n")
    cp.write(buf)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------
# processes


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our child and has exited
    except ChildProcessError:
        pass
    except OSError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _start_time(pid: int | None) -> int | None:
    """When a process started (clock ticks since boot, /proc/PID/stat field 22): with the PID, it names
    one process for good, as a PID alone does not once it is reused."""
    if not pid:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[-1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _own_service(st: dict[str, Any] | None, plan_path: Path) -> int | None:
    """The lab's service PID as recorded in its state, if that very process still runs: its start time
    matches the one recorded (states written before start times were recorded: its command line names
    the plan). Never a process found by searching command lines: `lab down` ends only what `lab up` started."""
    if not st or not st.get("service_pid"):
        return None
    pid = int(st["service_pid"])
    if not _alive(pid):
        return None
    recorded = st.get("service_start")
    if recorded is not None:
        return pid if _start_time(pid) == int(recorded) else None
    return pid if str(plan_path) in _cmdline(pid) else None


def _stop(pid: int, timeout: float = 5.0) -> None:
    start = _start_time(pid)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.02)
    if _start_time(pid) != start:
        return  # it exited and the PID now names another process
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 2
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)


# The service is started before the network is built, so that its interpreter start-up and imports
# (~1 s, more on a loaded machine) overlap the build; it waits for "go" on stdin before reading the plan.
# Its PID and start time are recorded in the lab's state as soon as it is spawned: that is how `down` finds it
# (and only it) after a crash.
_PRELOAD = ("import sys\n"
            f"import {SERVICE_MODULE} as service\n"
            "if sys.stdin.readline().strip() != 'go':\n"
            "    sys.exit(0)\n"
            "sys.exit(service.main(sys.argv[1:]))\n")


def _spawn_service(sdir: Path, plan_path: Path, argv: Sequence[str] | None) -> subprocess.Popen[bytes]:
    """Start the service: preloaded and waiting for :func:`_release` (default), or ``argv --plan PLAN``."""
    if argv:
        cmd = [*argv, "--plan", str(plan_path)]
    else:
        cmd = [sys.executable, "-c", _PRELOAD, "--plan", str(plan_path)]
    with open(sdir / "service.out", "wb") as out, open(sdir / "service.log", "wb") as log:
        try:
            return subprocess.Popen(cmd, stdin=subprocess.DEVNULL if argv else subprocess.PIPE, stdout=out,
                                    stderr=log, start_new_session=True, close_fds=True)
        except OSError as exc:
            raise LabError(f"cannot start the lab service ({cmd[0]}): {exc}") from None


def _release(proc: subprocess.Popen[bytes]) -> None:
    if proc.stdin is not None:
        try:
            proc.stdin.write(b"go\n")
            proc.stdin.close()
        except OSError:
            pass  # it has exited: _wait_ready reports why


def _wait_ready(proc: subprocess.Popen[bytes], sdir: Path, timeout: float) -> None:
    out_path, log_path = sdir / "service.out", sdir / "service.log"
    deadline = time.monotonic() + timeout
    while True:
        try:
            lines = out_path.read_text(errors="replace").splitlines()
        except OSError:
            lines = []
        if any(line.strip() == "ready" for line in lines):
            return
        if proc.poll() is not None:
            tail = _tail(log_path) or _tail(out_path)
            raise LabError(f"the lab service exited ({proc.returncode}) before it was ready"
                           + (f": {tail}" if tail else ""))
        if time.monotonic() > deadline:
            _stop(proc.pid)
            raise LabError(f"the lab service was not ready within {timeout:.0f} s (see {log_path})")
        time.sleep(0.01)


def _tail(path: Path, n: int = 4) -> str:
    try:
        lines = [x for x in path.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return ""
    return " / ".join(x.strip()[:200] for x in lines[-n:])


# --------------------------------------------------------------------------------------------
# state


def _read_state(prefix: str) -> dict[str, Any] | None:
    try:
        data = json.loads((state_dir(prefix) / "state.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_state(sdir: Path, state: dict[str, Any]) -> None:
    tmp = sdir / "state.json.tmp"
    tmp.write_text(json.dumps(state, indent=1))
    os.replace(tmp, sdir / "state.json")


def _is_live(prefix: str) -> bool:
    """Whether the lab of this prefix is up or being built (for the shared-sysctl bookkeeping)."""
    st = _read_state(prefix)
    if st is None:
        return bool(nsmod.lab_namespaces(prefix))
    if st.get("phase") == "building" and _alive(st.get("owner_pid")):
        return True
    return _alive(st.get("service_pid")) or bool(nsmod.lab_namespaces(prefix))


def _loopback_cidrs_in_use(own: str) -> list[str]:
    """Blocks of 127.18.0.0/16 a new loopback lab must not take: those of this user's other labs (their
    state), and every address a socket is bound to, whoever's (another user's labs keep their state where
    this user cannot read it: root's under /run, 0700)."""
    out = []
    for p in lab_prefixes():
        st = _read_state(p)
        if p != own and st and st.get("mode") == "loopback" and st.get("cidr") and _is_live(p):
            out.append(str(st["cidr"]))
    bound = ipaddress.collapse_addresses(ipaddress.IPv4Network(ip) for ip in bound_loopback_addresses())
    out += [str(n) for n in bound]  # runs of addresses as one network each: a big lab is a few, not 1000
    return out


PROC_NET = ("/proc/net/tcp", "/proc/net/udp", "/proc/net/tcp6", "/proc/net/udp6")


TCP_LISTEN = "0A"  # /proc/net/tcp's st of a listening socket


def parse_proc_net(text: str, *, tcp: bool = False) -> list[tuple[str, int]]:
    """``/proc/net/{tcp,udp}[6]`` -> (local IPv4 address, owner uid) of each socket that serves on one:
    every UDP socket, and TCP sockets that listen (``tcp``: connections and TIME_WAIT entries, whose uid
    reads 0, are left out: they hold no address once closed). IPv6 sockets count only with a v4-mapped
    address; wildcard binds and lines that do not parse are left out."""
    out: list[tuple[str, int]] = []
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 8 or ":" not in f[1] or (tcp and f[3].upper() != TCP_LISTEN):
            continue
        addr = f[1].rsplit(":", 1)[0]
        if len(addr) == 32 and addr[:24].upper() == "0000000000000000FFFF0000":
            addr = addr[24:]
        if len(addr) != 8:
            continue
        try:
            ip = ipaddress.IPv4Address(int.from_bytes(bytes.fromhex(addr), "little"))
            uid = int(f[7])
        except ValueError:
            continue
        if not ip.is_unspecified:
            out.append((str(ip), uid))
    return out


def bound_loopback_addresses(block: str = f"{LOOPBACK_BASE}/16") -> dict[str, set[int]]:
    """Addresses of ``block`` that sockets of this network namespace serve on (UDP, TCP listening) -> their
    owners' uids (any user's: /proc/net is readable by all)."""
    net = ipaddress.ip_network(block)
    out: dict[str, set[int]] = {}
    for path in PROC_NET:
        try:
            text = Path(path).read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        for ip, uid in parse_proc_net(text, tcp="tcp" in Path(path).name):
            if ipaddress.ip_address(ip) in net:
                out.setdefault(ip, set()).add(uid)
    return out


class BlockShared(LabError):
    """Another user's loopback lab came up in the same block at the same moment (each chose it before the
    other bound anything); the lab of the higher uid moves (:func:`up` builds it again elsewhere)."""


def check_block_alone(cidr: str, me: int | None = None) -> None:
    """Raise :class:`BlockShared` if a lower uid than ours (``me``, default this process's) has sockets in
    our block: root's lab never moves, between two other users the higher uid does; so two labs never
    answer for the same addresses."""
    me = os.geteuid() if me is None else me
    others = {uid for uids in bound_loopback_addresses(cidr).values() for uid in uids if uid != me}
    if any(uid < me for uid in others):
        raise BlockShared(f"{cidr} is also used by a loopback lab of uid {min(others)}")


def lab_prefixes() -> list[str]:
    """Prefixes that have a state dir (labs up, being built, or left over)."""
    try:
        return sorted(p.name for p in state_root().iterdir() if p.is_dir() and nsmod.PREFIX_RE.match(p.name))
    except OSError:
        return []


# --------------------------------------------------------------------------------------------
# public API


def up(devices: int = DEFAULT_DEVICES, seed: int = 0, *, prefix: str | None = None, loopback: bool = False,
       fleet: Sequence[Any] | None = None, service_argv: Sequence[str] | None = None,
       ready_timeout: float | None = None, log: Log = _quiet, routed: bool = False) -> LabStatus:
    """Bring a lab up and return its status. Raises :class:`LabUnavailable` when namespaces cannot be
    used (and ``loopback`` was not asked for), :class:`LabError` for anything else, after cleaning up.
    A loopback lab that finds another user's lab came up in its block at the same moment is built again
    in a free one (:class:`BlockShared`)."""
    for attempt in range(BLOCK_TRIES):
        try:
            return _up(devices, seed, prefix=prefix, loopback=loopback, fleet=fleet, service_argv=service_argv,
                       ready_timeout=ready_timeout, log=log, routed=routed)
        except BlockShared as exc:
            if attempt == BLOCK_TRIES - 1:
                raise LabError(f"no free block of 127.18.0.0/16 for a loopback lab: {exc}") from None
            log(f"{exc}; building the lab again in another block")
    raise AssertionError("unreachable")


BLOCK_TRIES = 3


def _up(devices: int, seed: int, *, prefix: str | None, loopback: bool, fleet: Sequence[Any] | None,
        service_argv: Sequence[str] | None, ready_timeout: float | None, log: Log, routed: bool) -> LabStatus:
    t0 = time.monotonic()
    prefix = nsmod.validate_prefix(prefix or default_prefix())
    if not 1 <= devices <= MAX_DEVICES:
        raise LabError(f"--devices must be between 1 and {MAX_DEVICES}, not {devices}")
    mode = "loopback" if loopback else "netns"
    if routed and loopback:
        raise LabError("a routed lab needs network namespaces; --routed and --loopback do not go together")
    if mode == "netns":
        reason = nsmod.netns_unavailable_reason()
        if reason:
            raise LabUnavailable(reason)
    st = _read_state(prefix)
    if st is not None and (_alive(st.get("service_pid")) or
                           (st.get("phase") == "building" and _alive(st.get("owner_pid")))):
        raise LabError(f"lab {prefix!r} is already up (service pid {st.get('service_pid')}); "
                       f"`camsweep lab down --prefix {prefix}` first, or use another --prefix")
    leftovers = nsmod.lab_namespaces(prefix) if os.geteuid() == 0 else []
    if st is not None or leftovers:
        log(f"removing leftovers of an earlier lab {prefix!r}")
        down(prefix)

    specs = list(fleet) if fleet is not None else _load_fleet(devices, seed)
    if not specs:
        raise LabError("the fleet is empty")
    port_offset = 10000 if (mode == "loopback" and not nsmod.has_cap(10) and _unprivileged_port_start() > 80) else 0
    taken = [] if mode == "netns" else _loopback_cidrs_in_use(prefix)
    plan = build_plan(specs, prefix=prefix, mode=mode, seed=seed, port_offset=port_offset, taken=taken,
                      routed=routed)
    sdir = state_dir(prefix)
    sdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    names = nsmod.LabNames(prefix)
    plan_path = sdir / "plan.json"
    state: dict[str, Any] = {
        "prefix": prefix, "mode": mode, "phase": "building", "owner_pid": os.getpid(),
        "scanner_netns": plan["scanner_netns"], "bridge_netns": names.bridge if mode == "netns" else None,
        "scanner_ip": plan["scanner_ip"], "cidr": plan["cidr"], "devices": len(plan["devices"]),
        "seed": seed, "port_offset": port_offset, **lab_ports(plan),
        "interface": nsmod.SCANNER_IFACE if mode == "netns" else None,
        "ground_truth": str(sdir / "ground-truth.jsonl"), "credentials_file": str(sdir / "credentials.ini"),
        "plan": str(plan_path), "targets_file": str(sdir / "targets.txt"), "service_pid": None,
        "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "timings": {},
        "cidrs": plan["cidrs"], "routed": routed, "daemon_pids": [],
    }
    if routed:
        state.update(bridge_netns=names.router, router_netns=names.router)
    _write_state(sdir, state)
    try:
        proc = _spawn_service(sdir, plan_path, service_argv)
        state["service_pid"] = proc.pid
        state["service_start"] = _start_time(proc.pid)
        _write_state(sdir, state)
        if mode == "netns":
            nsmod.hold_sysctls(prefix, state_root())
            hosts = [nsmod.Host(d["netns"], d["ip"], d["mac"]) for d in plan["devices"] if d["netns"]]
            missing = [d["index"] for d in plan["devices"] if d["netns"] and not d["mac"]]
            if missing:
                raise LabError(f"device {missing[0]} of the fleet has no MAC address")
            if routed:
                state["timings"]["network_s"] = round(_build_routed(prefix, plan, sdir, state, log), 3)
            else:
                state["timings"]["network_s"] = round(nsmod.build_network(
                    prefix, hosts, plan["scanner_ip"], int(plan["devices"][0]["prefixlen"])), 3)
            log(f"network: {len(hosts) + 2} namespaces in {state['timings']['network_s']:.2f} s")
        _write_private(plan_path, json.dumps(plan, indent=None))
        with open(state["ground_truth"], "w", encoding="utf-8") as fh:
            for row in ground_truth_rows(specs, plan):
                fh.write(json.dumps(row, sort_keys=False) + "\n")
        _write_private(Path(state["credentials_file"]), _credentials_text(plan, state.get("snmp")))
        (sdir / "targets.txt").write_text("".join(f"{d['ip']}\n" for d in plan["devices"] if d.get("ip")))
        t1 = time.monotonic()
        timeout = ready_timeout if ready_timeout is not None else 30 + 0.05 * len(plan["devices"])
        _release(proc)
        _wait_ready(proc, sdir, timeout)
        if mode == "loopback":
            check_block_alone(plan["cidr"])
        state["timings"]["service_s"] = round(time.monotonic() - t1, 3)
        state["timings"]["up_s"] = round(time.monotonic() - t0, 3)
        state["phase"] = "up"
        state.pop("owner_pid", None)
        _write_state(sdir, state)
        log(f"service ready in {state['timings']['service_s']:.2f} s (pid {state['service_pid']})")
    except BaseException:
        try:
            down(prefix)
        except LabError as exc:
            log(f"cleanup after a failed `up` was incomplete: {exc}")
        raise
    result = status(prefix)
    assert result is not None
    return result


def _build_routed(prefix: str, plan: dict[str, Any], sdir: Path, state: dict[str, Any], log: Log) -> float:
    """The routed network, dnsmasq, every device's address by DHCP, then snmpd. Returns seconds."""
    from scanner.lab import routed as rmod

    t0 = time.monotonic()
    rhosts = [rmod.RoutedHost(d["netns"], d["mac"], int(d["segment"]), d["ip"]) for d in plan["devices"]]
    rmod.build_network(prefix, rhosts, len(plan["cidrs"]))
    pid, leases = rmod.start_dnsmasq(prefix, sdir, rhosts, len(plan["cidrs"]))
    state["daemon_pids"].append(pid)
    state["dhcp_leases"] = str(leases)
    _write_state(sdir, state)
    t1 = time.monotonic()
    acks = rmod.dhcp_all(rhosts)
    wrong = [(h.netns, h.ip, acks[h.netns]["yiaddr"]) for h in rhosts if acks[h.netns]["yiaddr"] != h.ip]
    if wrong:
        raise LabError(f"DHCP gave {wrong[0][0]} {wrong[0][2]}, not its reserved {wrong[0][1]}")
    rmod.configure_hosts(rhosts, acks)
    state["timings"]["dhcp_s"] = round(time.monotonic() - t1, 3)
    log(f"dhcp: {len(acks)} devices leased their addresses in {state['timings']['dhcp_s']:.2f} s")
    pid, snmp = rmod.start_snmpd(prefix, sdir)
    state["daemon_pids"].append(pid)
    state["snmp"] = snmp
    _write_state(sdir, state)
    return time.monotonic() - t0


def _unprivileged_port_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    except (OSError, ValueError):
        return 1024


def status(prefix: str | None = None) -> LabStatus | None:
    """The lab's status, or None when no lab of this prefix is up (nor left over)."""
    prefix = nsmod.validate_prefix(prefix or default_prefix())
    st = _read_state(prefix)
    present = nsmod.lab_namespaces(prefix)
    if st is None:
        if not present:
            return None
        return LabStatus(prefix=prefix, mode="netns", scanner_netns=None, cidr="", devices=0, ground_truth="",
                         credentials_file="", interface=None, phase="leftover", namespaces=len(present),
                         state_dir=str(state_dir(prefix)))
    return LabStatus(
        prefix=prefix, mode=st.get("mode", "netns"), scanner_netns=st.get("scanner_netns"),
        cidr=st.get("cidr", ""), devices=int(st.get("devices") or 0), ground_truth=st.get("ground_truth", ""),
        credentials_file=st.get("credentials_file", ""), interface=st.get("interface"),
        scanner_ip=st.get("scanner_ip"), bridge_netns=st.get("bridge_netns"), state_dir=str(state_dir(prefix)),
        plan=st.get("plan", ""), targets_file=st.get("targets_file", ""), seed=int(st.get("seed") or 0),
        port_offset=int(st.get("port_offset") or 0), port_map=dict(st.get("port_map") or {}),
        scan_ports=dict(st.get("scan_ports") or {}), scan_args=list(st.get("scan_args") or []),
        service_pid=st.get("service_pid"), service_alive=_alive(st.get("service_pid")),
        namespaces=len(present), phase=st.get("phase", "up"), started_at=st.get("started_at", ""),
        timings=dict(st.get("timings") or {}),
        cidrs=list(st.get("cidrs") or ([st["cidr"]] if st.get("cidr") else [])), routed=bool(st.get("routed")),
        snmp=st.get("snmp"), dhcp_leases=st.get("dhcp_leases"), router_netns=st.get("router_netns"),
        daemon_pids=list(st.get("daemon_pids") or []),
        daemons_alive=all(_alive(p) for p in st.get("daemon_pids") or []),
    )


def down(prefix: str | None = None) -> DownReport:
    """Take the lab down and remove every leftover of it, found by its names. Safe to run twice."""
    t0 = time.monotonic()
    prefix = nsmod.validate_prefix(prefix or default_prefix())
    sdir = state_dir(prefix)
    st = _read_state(prefix)
    found = st is not None or sdir.exists()
    stopped: list[int] = []
    from scanner.lab import routed as rmod

    own = _own_service(st, sdir / "plan.json")  # by its recorded PID and start time, nothing else
    pids = {own} if own else set()
    for pid in st.get("daemon_pids", []) if st else []:  # the router's dnsmasq and snmpd, by recorded PID
        if _alive(pid) and any(str(rmod.daemon_dir(sdir)) in a for a in _cmdline(int(pid))):
            pids.add(int(pid))
    for pid in sorted(pids):  # SIGTERM now; the namespaces go while the service closes its sockets
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        stopped.append(pid)
    removed: list[str] = []
    restored: dict[str, int] = {}
    try:
        if nsmod.lab_namespaces(prefix):
            removed = nsmod.teardown_network(prefix)
            found = True
    finally:
        for pid in stopped:
            _stop(pid)  # waits for the exit; SIGKILL after 5 s
    if prefix in nsmod.sysctl_holders(state_root()):
        live = [p for p in lab_prefixes() if p != prefix and _is_live(p)]
        try:
            restored = nsmod.release_sysctls(prefix, state_root(), live_prefixes=live)
        except OSError as exc:
            raise LabError(f"cannot restore the root namespace's sysctls: {exc}") from None
    shutil.rmtree(sdir, ignore_errors=True)
    return DownReport(prefix=prefix, found=found, namespaces_removed=removed, pids_stopped=stopped,
                      sysctls_restored=restored, seconds=round(time.monotonic() - t0, 3))


# --------------------------------------------------------------------------------------------
# comparing a scan with the ground truth


def compare_with_ground_truth(found: Sequence[dict[str, Any]], truth: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """How a scan's device rows (``Store.devices()``) match the lab's ground truth.

    Devices on the network are matched by IP, cameras behind a recorder by (parent IP, channel).
    Returns counts: ``devices``/``found`` (``hosts``/``hosts_found``: those on the network), ``manufacturer_right``/``manufacturer_wrong``/``manufacturer_null``
    over the found ones whose truth names a maker, ``restricted_truth``/``restricted_found`` (true positives),
    ``false_alarms`` (flagged restricted, truth says not), ``missed`` (ips of devices not found).
    ``arp_multicast_only``: devices whose truth names a maker that they show only by MAC address or multicast
    (their ``shown_by`` has no "unicast"; profiles.maker_shown_by); ``unicast``: the same counts over the other
    devices (what a lab without ARP and multicast, the loopback lab, can be held to).
    """
    def visible(t: dict[str, Any]) -> bool:
        shown = t.get("shown_by")
        return not t.get("manufacturer") or shown is None or "unicast" in shown

    out = _compare(found, truth)
    out["arp_multicast_only"] = sum(1 for t in truth if not visible(t))
    out["unicast"] = _compare(found, [t for t in truth if visible(t)])
    return out


def _compare(found: Sequence[dict[str, Any]], truth: Sequence[dict[str, Any]]) -> dict[str, Any]:
    by_ip = {r.get("ip"): r for r in found if r.get("ip")}
    ip_of_id = {r.get("device_id"): r.get("ip") for r in found}
    by_chan = {(ip_of_id.get(r.get("parent_id")), str(r.get("channel"))): r
               for r in found if r.get("parent_id") is not None and r.get("channel") is not None}
    out: dict[str, Any] = {"devices": len(truth), "found": 0, "manufacturer_right": 0, "manufacturer_wrong": 0,
                           "manufacturer_null": 0, "restricted_truth": 0, "restricted_found": 0,
                           "false_alarms": 0, "missed": [],
                           "hosts": sum(1 for t in truth if not t.get("parent_ip")), "hosts_found": 0}
    for t in truth:
        if t.get("parent_ip"):
            got = by_chan.get((t["parent_ip"], str(t.get("channel"))))
        else:
            got = by_ip.get(t.get("ip"))
        if t.get("restricted") is True:
            out["restricted_truth"] += 1
        if got is None:
            out["missed"].append(t.get("ip") or f"{t.get('parent_ip')}#ch{t.get('channel')}")
            continue
        out["found"] += 1
        if not t.get("parent_ip"):
            out["hosts_found"] += 1
        if t.get("manufacturer"):
            want, have = str(t["manufacturer"]).lower(), str(got.get("manufacturer") or "").lower()
            key = "manufacturer_null" if not have else "manufacturer_right" if have == want else "manufacturer_wrong"
            out[key] += 1
        if got.get("restricted") is True:
            if t.get("restricted") is True:
                out["restricted_found"] += 1
            else:
                out["false_alarms"] += 1
    return out
