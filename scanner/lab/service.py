"""The lab's service process: one asyncio process that answers as every simulated device.

    python -m scanner.lab.service --plan PLAN.json [--wsd-max-delay SECONDS]

For each plan entry it enters the device's network namespace (``setns`` through ctypes; Python 3.11
has no ``os.setns``), opens that device's sockets, returns to its own namespace and then serves all
of them from one event loop: a socket keeps the namespace it was made in (lab-notes 2, 5.6). An entry
without ``netns`` is served in loopback mode: it binds its ``ip`` (127.18.0.x) in the current
namespace and skips multicast. When every socket is open it prints ``ready`` on stdout; it stops
cleanly on SIGTERM or SIGINT. Diagnostics go to stderr; credentials never do.

Plan format (format 1; written by scanner/lab/manager.py, whose docstring has the whole file)::

    {"version": 1, "mode": "netns" | "loopback", "port_offset": 0, "wsd_max_delay": 0.5,
     "devices": [{...DeviceSpec.to_dict()...,
                  "netns": "csw-d0" | null, "ip": "198.18.0.2", "prefixlen": 24,
                  "username": "admin", "password": "...",
                  "ports": {"80": 10080, ...}}]}        # optional, per entry: real port -> bound port

``port_offset`` (plan-wide) serves real port P on ``port_offset + P`` (a loopback lab without root);
an entry's ``ports`` map overrides it port by port. ``wsd_max_delay`` is the upper bound of the random
delay before answering a multicast query (WS-Discovery's APP_MAX_DELAY, 0.5 s; lab-notes 5.8).
``chatter`` (plan-wide seconds, default 0 = off; ``--chatter`` overrides) makes every device of a
namespace lab announce itself periodically for passive listeners (see responders/chatter.py); an
entry's optional ``interface`` names its interface inside its namespace (default ``eth0``).
A top-level list instead of an object is read as the ``devices`` list.

Sockets per device (as its profile's ``services`` say): TCP 80 (http), 443 (https), 554 (rtsp),
8000 (hik_sdk), 37777 (dahua_sdk), 23 (telnet), 22 (ssh), 631 (ipp), 9100 (jetdirect), 445 (smb),
5000 (nas_web); UDP 3702 (wsd), 1900 (ssdp), 5353 (mdns), 37020 (sadp), 37810 (dhip), each UDP one
twice in netns mode (unicast address, and the multicast group joined on the device's address).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ipaddress
import json
import os
import resource
import signal
import sys
import time
from pathlib import Path
from typing import Any

from scanner.lab.profiles import DeviceSpec
from scanner.lab.responders import (
    TCP_SERVICES,
    Device,
    OpenSocket,
    open_sockets,
    real_ports,
    serve,
    udp_services,
)

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")
MAX_PLAN_BYTES = 64 * 1024 * 1024
DEFAULT_WSD_MAX_DELAY = 0.5
CONNECTION_FDS = 8192  # room for open connections on top of the listening sockets


class PlanError(ValueError):
    """The plan file cannot be used; the message says why."""


def _log(msg: str) -> None:
    print(f"camsweep-lab-service: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# the plan


def _port_map(value: Any, where: str) -> dict[int, int]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PlanError(f"{where}: \"ports\" must be an object mapping a port to the port to bind")
    out: dict[int, int] = {}
    for k, v in value.items():
        try:
            real, bound = int(k), int(v)
        except (TypeError, ValueError):
            raise PlanError(f"{where}: port {k!r} -> {v!r} is not a pair of numbers") from None
        if not (0 < real < 65536 and 0 < bound < 65536):
            raise PlanError(f"{where}: port {real} -> {bound} is out of range")
        out[real] = bound
    return out


def load_plan(path: str | Path, *, wsd_max_delay: float | None = None,
              chatter: float | None = None) -> list[Device]:
    """Read and check a plan file; raise PlanError with a clear message on anything wrong."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_PLAN_BYTES:
            raise PlanError(f"plan {p} is {size} bytes; the limit is {MAX_PLAN_BYTES}")
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise PlanError(f"cannot read plan {p}: {e.strerror or e}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PlanError(f"plan {p} is not valid JSON: {e}") from None
    if isinstance(data, list):
        data = {"devices": data}
    if not isinstance(data, dict) or not isinstance(data.get("devices"), list):
        raise PlanError(f'plan {p} must be an object with a "devices" list')
    if data.get("version", 1) != 1:
        raise PlanError(f"plan {p} has format version {data.get('version')!r}; this service reads version 1")
    try:
        offset = int(data.get("port_offset") or 0)
    except (TypeError, ValueError):
        raise PlanError("port_offset must be a number") from None
    if not 0 <= offset < 60000:
        raise PlanError(f"port_offset {offset} is out of range")
    delay = wsd_max_delay if wsd_max_delay is not None else data.get("wsd_max_delay", DEFAULT_WSD_MAX_DELAY)
    try:
        delay = max(0.0, min(float(delay), 5.0))
    except (TypeError, ValueError):
        raise PlanError("wsd_max_delay must be a number of seconds") from None
    chatter_raw = chatter if chatter is not None else data.get("chatter", 0)
    try:
        chatter_s = float(chatter_raw or 0)
    except (TypeError, ValueError):
        raise PlanError("chatter must be a number of seconds") from None
    if chatter_s and not 1.0 <= chatter_s <= 3600:
        raise PlanError(f"chatter interval {chatter_s} s is out of range (1-3600, or 0 for none)")
    devices: list[Device] = []
    seen: set[tuple[str | None, str]] = set()
    for i, entry in enumerate(data["devices"]):
        where = f"plan device {i}"
        if not isinstance(entry, dict):
            raise PlanError(f"{where} must be an object")
        spec_data = entry.get("spec") if isinstance(entry.get("spec"), dict) else entry
        try:
            spec = DeviceSpec.from_dict(spec_data)
        except (TypeError, ValueError, AttributeError) as e:
            raise PlanError(f"{where}: not a device spec ({str(e)[:200]})") from None
        _check_spec(spec, where)
        ip = entry.get("ip")
        try:
            ipaddress.IPv4Address(ip)
        except (ValueError, TypeError):
            raise PlanError(f"{where}: \"ip\" must be an IPv4 address, not {str(ip)[:40]!r}") from None
        netns = entry.get("netns")
        if netns is not None and (not isinstance(netns, str) or "/" in netns or not netns):
            raise PlanError(f"{where}: \"netns\" must be a namespace name or null")
        if netns is None and not ip.startswith("127."):
            raise PlanError(f"{where}: loopback mode (no netns) serves only 127.0.0.0/8, not {ip}")
        if (netns, ip) in seen:
            raise PlanError(f"{where}: {ip} appears twice in the same namespace")
        seen.add((netns, ip))
        username = entry.get("username")
        password = entry.get("password")
        if not isinstance(username, str) or not isinstance(password, str) or not username or not password:
            raise PlanError(f"{where}: needs a \"username\" and \"password\" for the device's admin account")
        explicit = _port_map(entry.get("ports"), where)
        ports = _OffsetPorts(offset, explicit) if offset else explicit
        try:
            prefixlen = int(entry.get("prefixlen") or (8 if netns is None else 24))
        except (TypeError, ValueError):
            raise PlanError(f"{where}: \"prefixlen\" must be a number") from None
        if not 0 < prefixlen <= 32:
            raise PlanError(f"{where}: prefixlen {prefixlen} is out of range")
        iface = entry.get("interface") or "eth0"
        if not isinstance(iface, str) or not 0 < len(iface) < 16 or "/" in iface:
            raise PlanError(f"{where}: \"interface\" must be an interface name")
        dev = Device(spec=spec, ip=ip, username=username, password=password, netns=netns, prefixlen=prefixlen,
                     ports=ports, wsd_max_delay=delay, chatter=chatter_s, iface=iface)
        for real in real_ports(dev):
            if not 0 < dev.port(real) < 65536:
                raise PlanError(f"{where}: port {real} would be served on {dev.port(real)}, beyond 65535 "
                                f"(port_offset {offset} is too large for this device's services)")
        devices.append(dev)
    return devices


_SPEC_STRINGS = ("profile", "family", "mac", "hostname", "uuid", "realm", "onvif_auth", "oem", "hardware", "build")
_SPEC_OPTIONAL = ("manufacturer", "brand", "model", "firmware", "serial", "device_type", "hostile_kind")


def _check_spec(spec: DeviceSpec, where: str) -> None:
    """The fields the responders put into answers must be text of a sane length."""
    for name in _SPEC_STRINGS + _SPEC_OPTIONAL:
        v = getattr(spec, name)
        if v is None and name in _SPEC_OPTIONAL:
            continue
        if not isinstance(v, str) or len(v) > 512 or "\r" in v or "\n" in v:
            raise PlanError(f"{where}: \"{name}\" must be a single line of text")
    if not all(isinstance(x, str) for x in spec.services):
        raise PlanError(f"{where}: \"services\" must be a list of names")
    for c in spec.channels:
        for name in ("model", "firmware", "serial", "mac", "ip"):
            if not isinstance(getattr(c, name), str):
                raise PlanError(f"{where}: channel {c.channel}: \"{name}\" must be text")


class _OffsetPorts(dict):
    """Real port P -> ``offset + P`` unless mapped explicitly."""

    def __init__(self, offset: int, explicit: dict[int, int]) -> None:
        super().__init__(explicit)
        self.offset = offset

    def get(self, key: int, default: int | None = None) -> int:  # type: ignore[override]
        if key in self:
            return self[key]
        return self.offset + key


# --------------------------------------------------------------------------------------------
# namespaces


_libc: ctypes.CDLL | None = None


def _setns(fd: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def open_all(devices: list[Device]) -> list[tuple[Device, list[OpenSocket]]]:
    """Open every device's sockets, entering each device's namespace in turn."""
    out: list[tuple[Device, list[OpenSocket]]] = []
    home = os.open("/proc/self/ns/net", os.O_RDONLY) if any(d.netns for d in devices) else -1
    try:
        for dev in devices:
            if dev.netns is None:
                out.append((dev, open_sockets(dev)))
                continue
            try:
                fd = os.open(str(NETNS_DIR / dev.netns), os.O_RDONLY)
            except OSError as e:
                raise OSError(e.errno, f"namespace {dev.netns} for {dev.ip}: {e.strerror}") from None
            try:
                _setns(fd)
                try:
                    out.append((dev, open_sockets(dev)))
                finally:
                    _setns(home)
            except OSError as e:
                raise OSError(e.errno, f"{dev.ip} in namespace {dev.netns}: {e.strerror or e}") from None
            finally:
                os.close(fd)
    except BaseException:
        for _, socks in out:
            for o in socks:
                o.sock.close()
        raise
    finally:
        if home >= 0:
            os.close(home)
    return out


def sockets_needed(devices: list[Device]) -> int:
    n = 0
    for dev in devices:
        n += sum(1 for s in dev.spec.services if s in TCP_SERVICES)
        n += len(udp_services(dev)) * (2 if dev.netns else 1) + (2 if dev.netns and dev.chatter else 0)
    return n


def raise_fd_limit(devices: list[Device]) -> None:
    """Raise RLIMIT_NOFILE to cover every listening socket plus room for connections."""
    need = sockets_needed(devices)
    want = need + CONNECTION_FDS + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        target = soft
    if target < need + 64:
        raise PlanError(f"the plan needs {need} sockets but the open-file limit is {target}; "
                        "raise it (ulimit -n) or serve fewer devices")
    if target < want:
        _log(f"warning: open-file limit {target} leaves room for only {target - need} connections")


# --------------------------------------------------------------------------------------------
# running


async def run(devices: list[Device], *, ready_stream: Any = None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread (tests)
            pass
    t0 = time.monotonic()
    opened = open_all(devices)
    running: list[Any] = []
    try:
        for dev, socks in opened:
            running.extend(await serve(dev, socks))
        n_socks = sum(len(s) for _, s in opened)
        _log(f"serving {len(devices)} devices on {n_socks} sockets (opened in {time.monotonic() - t0:.2f} s)")
        out = ready_stream or sys.stdout
        print("ready", file=out, flush=True)
        await stop.wait()
    finally:
        for r in running:
            try:
                r.close()
            except Exception:  # noqa: BLE001 - closing what may already be broken
                pass
        for _, socks in opened:
            for o in socks:
                try:
                    o.sock.close()
                except OSError:
                    pass
        tls = sys.modules.get("scanner.lab.responders.tls")
        if tls is not None:
            tls.cleanup()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m scanner.lab.service",
                                 description="Serve every simulated device of a lab plan from one process.")
    ap.add_argument("--plan", required=True, help="the plan JSON written by the lab manager")
    ap.add_argument("--wsd-max-delay", type=float, default=None,
                    help="upper bound (s) of the random delay before answering a multicast query (default 0.5)")
    ap.add_argument("--chatter", type=float, default=None, metavar="SECONDS",
                    help="every SECONDS, each device announces itself (WS-Discovery Hello, SSDP NOTIFY, "
                         "SADP, DHIP, mDNS, DHCPINFORM, an ARP request) for passive listeners; namespace "
                         "mode only; default: the plan's \"chatter\", else off")
    args = ap.parse_args(argv)
    try:
        devices = load_plan(args.plan, wsd_max_delay=args.wsd_max_delay, chatter=args.chatter)
    except PlanError as e:
        _log(f"error: {e}")
        return 2
    try:
        raise_fd_limit(devices)
    except PlanError as e:
        _log(f"error: {e}")
        return 2
    try:
        asyncio.run(run(devices))
    except OSError as e:
        _log(f"error: {e.strerror or e}")
        return 1
    except KeyboardInterrupt:
        pass
    except Exception as e:  # noqa: BLE001 - one clear line instead of a traceback
        _log(f"error: {type(e).__name__}: {str(e)[:300]}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
