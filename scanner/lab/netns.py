"""The lab's network: namespaces, one bridge, veth pairs; leftover cleanup; root-namespace sysctls.

Layout ("ns mode"), for a prefix P:

    P-scan ns                 P-br ns                          P-d0 ... P-d<N-1> ns
    eth0 198.18.0.1/L ──veth── s0 ─┐                       ┌─ v0 ──veth── eth0 198.18.0.2/L  (profile MAC)
    route 224.0.0.0/4 dev eth0     └── br0 (no IP, no STP,  ├─ v1 ──veth── eth0 198.18.0.3/L
    (no default route)                 mcast_snooping 0,    └─ ...
                                       MAC 02:00:00:00:00:fe)

Nothing is attached to the root namespace: every link lives inside a namespace of the lab, and no
namespace has a default route, so no packet can reach the host's interfaces. IPv6 is kept quiet
(``disable_ipv6`` in the bridge namespace, ``addrgenmode none`` on every lab interface).

Names are ``P-br``, ``P-scan`` and ``P-d<i>``; :func:`lab_namespaces` finds them by exactly that
pattern, so ``down`` removes a crashed lab's leftovers and never touches another prefix's lab
(``csw`` does not match ``cswdev-br``).

Three root-namespace sysctls are shared by every namespace (the neighbour table limits and the
per-CPU backlog); a lab raises them while it is up. Holders are recorded per prefix in one file under
a lock, the old values are saved by the first holder and restored when the last one goes down.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from scanner.errors import LabError

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
BRIDGE_MAC = "02:00:00:00:00:fe"
SCANNER_MAC = "02:00:00:00:00:01"
SCANNER_IFACE = "eth0"
PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,15}$")

# root-namespace sysctls raised while a lab is up (lab-notes.md section 4); never lowered
RAISED_SYSCTLS = {
    "net.ipv4.neigh.default.gc_thresh2": 8192,
    "net.ipv4.neigh.default.gc_thresh3": 16384,
    "net.core.netdev_max_backlog": 65536,
}
IP_TIMEOUT = 120.0


def validate_prefix(prefix: str) -> str:
    if not PREFIX_RE.match(prefix or ""):
        raise LabError(f"lab prefix {prefix!r} is not valid: use 1-16 lower-case letters and digits, "
                       "starting with a letter (e.g. csw, cswdev2)")
    return prefix


@dataclass(frozen=True, slots=True)
class LabNames:
    """The namespace names of the lab with this prefix."""

    prefix: str

    @property
    def bridge(self) -> str:
        return f"{self.prefix}-br"

    @property
    def scanner(self) -> str:
        return f"{self.prefix}-scan"

    @property
    def router(self) -> str:
        """The router namespace of a routed lab (scanner/lab/routed.py)."""
        return f"{self.prefix}-rt"

    def device(self, index: int) -> str:
        return f"{self.prefix}-d{index}"

    def pattern(self) -> re.Pattern[str]:
        return re.compile(rf"^{re.escape(self.prefix)}-(br|rt|scan|d\d+)$")


@dataclass(frozen=True, slots=True)
class Host:
    """One device host: its namespace, address and MAC."""

    netns: str
    ip: str
    mac: str


# --------------------------------------------------------------------------------------------
# capability checks


def netns_unavailable_reason() -> str | None:
    """Why network namespaces cannot be used here, or None when they can."""
    if os.name != "posix" or not Path("/proc/self/ns/net").exists():
        return "this system has no network namespaces (Linux only)"
    if os.geteuid() != 0:
        return f"network namespaces need root (running as uid {os.geteuid()})"
    missing = [name for name, bit in (("CAP_SYS_ADMIN", 21), ("CAP_NET_ADMIN", 12)) if not has_cap(bit)]
    if missing:
        return f"network namespaces need {' and '.join(missing)}, which this process does not have"
    if shutil.which("ip") is None:
        return "the `ip` program (iproute2) is not installed"
    try:
        _libc().setns  # noqa: B018
    except (OSError, AttributeError):
        return "libc has no setns()"
    return None


def has_cap(bit: int) -> bool:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> bit & 1)
    except (OSError, ValueError):
        pass
    return False


# --------------------------------------------------------------------------------------------
# namespace entry (Python 3.11 has no os.setns)

_LIBC: ctypes.CDLL | None = None


def _libc() -> ctypes.CDLL:
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
    return _LIBC


def _setns(fd: int) -> None:
    if _libc().setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def setns_named(netns: str) -> None:
    """Move this thread into network namespace ``netns`` (the caller switches back; see ``entered``)."""
    fd = os.open(NETNS_DIR / netns, os.O_RDONLY)
    try:
        _setns(fd)
    finally:
        os.close(fd)


@contextmanager
def entered(netns: str) -> Iterator[None]:
    """Run the body (this thread only) inside network namespace ``netns``; always switch back."""
    orig = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        try:
            target = os.open(NETNS_DIR / netns, os.O_RDONLY)
        except OSError as exc:
            raise LabError(f"network namespace {netns} is not there: {exc.strerror}") from None
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(orig)
    finally:
        os.close(orig)


def _write_sysctl_here(name: str, value: str) -> None:
    Path("/proc/sys", *name.split(".")).write_text(value)


# --------------------------------------------------------------------------------------------
# running ip


def _run_ip(args: Sequence[str], batch: Sequence[str] | None = None, *, check: bool = True,
            timeout: float = IP_TIMEOUT) -> subprocess.CompletedProcess[str]:
    cmd = ["ip", *args]
    data = None
    if batch is not None:
        cmd += ["-batch", "-"]
        data = "\n".join(batch) + "\n"
    try:
        proc = subprocess.run(cmd, input=data, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LabError(f"`{' '.join(cmd)}` did not finish within {timeout:.0f} s") from None
    except FileNotFoundError:
        raise LabError("the `ip` program (iproute2) is not installed") from None
    if check and proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise LabError(f"`{' '.join(cmd)}` failed: {' / '.join(msg[-3:]) or 'exit ' + str(proc.returncode)}")
    return proc


def list_netns() -> list[str]:
    """Every named network namespace (what `ip netns list` shows)."""
    try:
        return sorted(os.listdir(NETNS_DIR))
    except OSError:
        return []


def lab_namespaces(prefix: str) -> list[str]:
    """The namespaces of the lab with this prefix that exist now (leftovers included)."""
    pat = LabNames(prefix).pattern()
    return [n for n in list_netns() if pat.match(n)]


# --------------------------------------------------------------------------------------------
# build and tear down


def build_network(prefix: str, hosts: Sequence[Host], scanner_ip: str, prefixlen: int, *,
                  workers: int = 4) -> float:
    """Create the lab's namespaces and links. Returns seconds taken. On failure removes what it made."""
    names = LabNames(prefix)
    t0 = time.monotonic()
    if lab_namespaces(prefix):
        raise LabError(f"namespaces of lab {prefix!r} already exist; run `camsweep lab down --prefix {prefix}`")
    try:
        all_ns = [names.bridge, names.scanner, *(h.netns for h in hosts)]
        _run_ip([], [f"netns add {n}" for n in all_ns])
        # quiet IPv6 in the bridge namespace before any link exists (bridge ports inherit "default")
        with entered(names.bridge):
            for key in ("all", "default"):
                _write_sysctl_here(f"net.ipv6.conf.{key}.disable_ipv6", "1")
        br = [
            f"link add br0 address {BRIDGE_MAC} type bridge stp_state 0 mcast_snooping 0 forward_delay 0",
            f"link add s0 type veth peer name {SCANNER_IFACE} netns {names.scanner} address {SCANNER_MAC}",
            "link set s0 master br0 up",
        ]
        for i, h in enumerate(hosts):
            br.append(f"link add v{i} type veth peer name eth0 netns {h.netns} address {h.mac}")
            br.append(f"link set v{i} master br0 up")
        br.append("link set br0 up")
        _run_ip(["-n", names.bridge], br)
        _run_ip(["-n", names.scanner], [
            "link set lo up",
            f"link set {SCANNER_IFACE} addrgenmode none",
            f"addr add {scanner_ip}/{prefixlen} dev {SCANNER_IFACE}",
            f"link set {SCANNER_IFACE} up",
            f"route add 224.0.0.0/4 dev {SCANNER_IFACE}",
        ])
        _configure_hosts(hosts, prefixlen, workers)
    except BaseException:
        teardown_network(prefix)
        raise
    return time.monotonic() - t0


# rtnetlink, just what a device namespace needs (linux/netlink.h, rtnetlink.h, if_link.h, if_addr.h)
_NLMSG_HDR = struct.Struct("=LHHLL")
_IFINFOMSG = struct.Struct("=BxHiII")
_IFADDRMSG = struct.Struct("=BBBBI")
_RTM_NEWLINK, _RTM_NEWADDR, _NLMSG_ERROR = 16, 20, 2
_NLM_F_REQUEST, _NLM_F_ACK, _NLM_F_EXCL, _NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
_IFA_ADDRESS, _IFA_LOCAL, _IFLA_AF_SPEC, _IFLA_INET6_ADDR_GEN_MODE = 1, 2, 26, 8
_IN6_ADDR_GEN_MODE_NONE, _IFF_UP, _AF_INET6 = 1, 0x1, 10


def _rtattr(kind: int, payload: bytes) -> bytes:
    data = struct.pack("=HH", 4 + len(payload), kind) + payload
    return data + b"\0" * (-len(data) % 4)


class _Rtnl:
    """A NETLINK_ROUTE socket of the namespace this thread is in when it is made."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self.sock.settimeout(5.0)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def request(self, kind: int, flags: int, body: bytes) -> None:
        self.seq += 1
        msg = _NLMSG_HDR.pack(_NLMSG_HDR.size + len(body), kind, _NLM_F_REQUEST | _NLM_F_ACK | flags, self.seq, 0)
        self.sock.send(msg + body)
        while True:
            data = self.sock.recv(65536)
            off = 0
            while off + _NLMSG_HDR.size <= len(data):
                length, mtype, _, seq, _ = _NLMSG_HDR.unpack_from(data, off)
                if mtype == _NLMSG_ERROR and seq == self.seq:
                    err = -struct.unpack_from("=i", data, off + _NLMSG_HDR.size)[0]
                    if err:
                        raise OSError(err, os.strerror(err))
                    return
                off += max(length, _NLMSG_HDR.size) + (-length % 4)

    def link_up(self, index: int) -> None:
        self.request(_RTM_NEWLINK, 0, _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, _IFF_UP, _IFF_UP))

    def addrgenmode_none(self, index: int) -> None:
        inet6 = _rtattr(_AF_INET6, _rtattr(_IFLA_INET6_ADDR_GEN_MODE, bytes([_IN6_ADDR_GEN_MODE_NONE])))
        self.request(_RTM_NEWLINK, 0, _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, 0, 0)
                     + _rtattr(_IFLA_AF_SPEC, inet6))

    def add_ipv4(self, index: int, ip: str, prefixlen: int) -> None:
        packed = socket.inet_aton(ip)
        self.request(_RTM_NEWADDR, _NLM_F_CREATE | _NLM_F_EXCL,
                     _IFADDRMSG.pack(socket.AF_INET, prefixlen, 0, 0, index)
                     + _rtattr(_IFA_LOCAL, packed) + _rtattr(_IFA_ADDRESS, packed))


def _configure_hosts(hosts: Sequence[Host], prefixlen: int, workers: int) -> None:
    """Per host: lo up, eth0 addrgenmode none, its address, eth0 up. In-process over rtnetlink (setns
    into each namespace: ~0.1 ms a host); a host where that fails gets the `ip` way."""
    failed: list[Host] = []
    orig = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        for h in hosts:
            try:
                setns_named(h.netns)
                nl = _Rtnl()
                try:
                    eth0 = socket.if_nametoindex("eth0")
                    nl.link_up(socket.if_nametoindex("lo"))
                    nl.addrgenmode_none(eth0)
                    nl.add_ipv4(eth0, h.ip, prefixlen)
                    nl.link_up(eth0)
                finally:
                    nl.close()
            except OSError:
                failed.append(h)
    finally:
        _setns(orig)
        os.close(orig)
    if failed:
        _configure_hosts_ip(failed, prefixlen, workers)


def _configure_hosts_ip(hosts: Sequence[Host], prefixlen: int, workers: int) -> None:
    """One `ip -n NS -batch` per host (batch lines cannot carry -n), a few running at once."""

    def one(h: Host) -> str | None:
        script = ("link set lo up\nlink set eth0 addrgenmode none\n"
                  f"addr add {h.ip}/{prefixlen} dev eth0\nlink set eth0 up\n")
        try:
            p = subprocess.run(["ip", "-n", h.netns, "-batch", "-"], input=script, capture_output=True,
                               text=True, timeout=IP_TIMEOUT)
        except subprocess.TimeoutExpired:
            return f"{h.netns}: ip timed out"
        return None if p.returncode == 0 else f"{h.netns}: {(p.stderr or p.stdout).strip()[:200]}"

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        errors = [e for e in pool.map(one, hosts) if e]
    if errors:
        raise LabError(f"could not configure {len(errors)} device namespace(s): {errors[0]}")


def teardown_network(prefix: str) -> list[str]:
    """Delete every namespace of this prefix's lab (veths and the bridge go with them). Returns names."""
    found = lab_namespaces(prefix)
    if found:
        # -force: go on past a line that fails (a namespace removed meanwhile)
        _run_ip(["-force"], [f"netns del {n}" for n in found], check=False)
    left = lab_namespaces(prefix)
    for n in left:  # one by one, to report what still fails
        _run_ip(["netns", "del", n], check=False)
    still = lab_namespaces(prefix)
    if still:
        raise LabError(f"could not delete namespaces: {', '.join(still[:5])}")
    return found


# --------------------------------------------------------------------------------------------
# root-namespace sysctls, shared by parallel labs


def _read_sysctl(name: str) -> int:
    return int(Path("/proc/sys", *name.split(".")).read_text().split()[0])


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _holders_file(state_root: Path) -> Path:
    return state_root / "sysctl-holders.json"


def hold_sysctls(prefix: str, state_root: Path) -> dict[str, int]:
    """Raise the shared sysctls for this lab (saving the old values if first). Returns values set."""
    path = _holders_file(state_root)
    with _locked(state_root / ".sysctl.lock"):
        data = _load_holders(path)
        if not data["holders"]:
            data["saved"] = {k: _read_sysctl(k) for k in RAISED_SYSCTLS}
        if prefix not in data["holders"]:
            data["holders"].append(prefix)
        applied = {}
        for key, want in RAISED_SYSCTLS.items():
            if _read_sysctl(key) < want:
                _write_sysctl_here(key, str(want))
            applied[key] = _read_sysctl(key)
        _save_json(path, data)
        return applied


def release_sysctls(prefix: str, state_root: Path, *, live_prefixes: Sequence[str] = ()) -> dict[str, int]:
    """Drop this lab's hold. Holders with no live lab (crashed) are dropped too. When none is left, the
    saved values come back. Returns the values restored (empty when other labs still hold them)."""
    path = _holders_file(state_root)
    with _locked(state_root / ".sysctl.lock"):
        data = _load_holders(path)
        data["holders"] = [p for p in data["holders"] if p != prefix and p in live_prefixes]
        restored: dict[str, int] = {}
        if not data["holders"]:
            for key, old in (data.get("saved") or {}).items():
                if key in RAISED_SYSCTLS and isinstance(old, int):
                    _write_sysctl_here(key, str(old))
                    restored[key] = old
            path.unlink(missing_ok=True)
        else:
            _save_json(path, data)
        return restored


def sysctl_holders(state_root: Path) -> list[str]:
    return list(_load_holders(_holders_file(state_root))["holders"])


def _load_holders(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and isinstance(data.get("holders"), list):
            data["holders"] = [p for p in data["holders"] if isinstance(p, str)]
            return data
    except (OSError, ValueError):
        pass
    return {"holders": [], "saved": {}}


def _save_json(path: Path, data: object) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
