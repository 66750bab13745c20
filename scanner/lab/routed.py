"""The routed lab (`camsweep lab up --routed`): camera segments behind a router namespace.

Layout, for a prefix P and K camera segments (K = max(2, ceil(devices / 250))):

    P-scan ns                  P-rt ns (the router: ip_forward 1, no default route)     P-d<i> ns
    eth0 198.19.0.2/24 ─veth─ up0 198.19.0.1/24                                    ┌─ eth0 (DHCP: 198.18.s.x/24,
    route 198.18.0.0/15        br0 198.18.0.1/24 ── v0, v2, ...  ──veth────────────┘   route 198.18.0.0/15 via
      via 198.19.0.1           br1 198.18.1.1/24 ── v1, v3, ...                         198.18.s.1)
                               dnsmasq (DHCP only, on br*), snmpd (on 198.19.0.1:161)

Device i sits on segment i % K. Its address is fixed by its MAC in dnsmasq's hosts file (so the ground
truth is stable) but it *gets* it by DHCP: a small DHCP client here sends DISCOVER and REQUEST from
the device's namespace (UDP, SO_BINDTODEVICE eth0, broadcast flag set) and configures what the ACK
gives (address, and a route to 198.18.0.0/15 via the ACK's router option; never a default route).
dnsmasq keeps its lease file (``dhcp_leases`` in ``lab status --json``). The router runs net-snmp's
snmpd, bound only to 198.19.0.1 inside P-rt, serving IP-MIB's ipNetToPhysicalTable and
ipNetToMediaTable (the router's own neighbour table), and through a pass_persist helper
(:mod:`scanner.lab.bridgemib`) the camera bridges' BRIDGE-MIB / Q-BRIDGE-MIB forwarding tables, to a
random v2c community and a v3 user (SHA/AES). Both daemons are started with ``ip netns exec P-rt`` from this process and recorded by PID;
``down`` stops them by those PIDs (their command lines name the lab's state dir, checked first).

Everything stays in 198.18.0.0/15 and in the lab's own namespaces; the root namespace gets nothing.
"""

from __future__ import annotations

import ipaddress
import math
import os
import secrets
import select
import shutil
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scanner.errors import LabError
from scanner.lab import netns as nsmod

PER_SEGMENT = 250
SCANNER_NET = ipaddress.IPv4Network("198.19.0.0/24")
ROUTER_UPLINK_IP = "198.19.0.1"
SCANNER_IP = "198.19.0.2"
LAB_SUPERNET = "198.18.0.0/15"
ROUTER_UPLINK_MAC = "02:00:00:00:ff:fe"
DHCP_TIMEOUT = 60.0
V3_USER = "camsweep-lab"


def segment_count(n: int) -> int:
    return max(2, math.ceil(n / PER_SEGMENT))


def segment_net(s: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"198.18.{s}.0/24")


def plan_routed(n: int) -> tuple[list[str], list[tuple[int, str]], str]:
    """(segment cidrs, per device (segment, ip), the covering cidr)."""
    if not 1 <= n <= PER_SEGMENT * 16:
        raise LabError(f"a routed lab holds 1 to {PER_SEGMENT * 16} devices, not {n}")
    k = segment_count(n)
    nets = [segment_net(s) for s in range(k)]
    counts = [0] * k
    out: list[tuple[int, str]] = []
    for i in range(n):
        s = i % k
        out.append((s, str(nets[s].network_address + 2 + counts[s])))
        counts[s] += 1
    cover = nets[0]
    while not all(x.subnet_of(cover) for x in nets):
        cover = cover.supernet()
    return [str(x) for x in nets], out, str(cover)


def router_ip(s: int) -> str:
    return str(segment_net(s).network_address + 1)


@dataclass(frozen=True, slots=True)
class RoutedHost:
    netns: str
    mac: str
    segment: int
    ip: str  # the address reserved for its MAC


# --------------------------------------------------------------------------------------------
# network


def build_network(prefix: str, hosts: Sequence[RoutedHost], segments: int) -> float:
    """Namespaces and links (no device address yet: DHCP gives those). Removes what it made on failure."""
    names = nsmod.LabNames(prefix)
    t0 = time.monotonic()
    if nsmod.lab_namespaces(prefix):
        raise LabError(f"namespaces of lab {prefix!r} already exist; run `camsweep lab down --prefix {prefix}`")
    try:
        nsmod._run_ip([], [f"netns add {n}" for n in [names.router, names.scanner, *(h.netns for h in hosts)]])
        with nsmod.entered(names.router):
            for key in ("all", "default"):
                nsmod._write_sysctl_here(f"net.ipv6.conf.{key}.disable_ipv6", "1")
            nsmod._write_sysctl_here("net.ipv4.ip_forward", "1")
        rt = []
        for s in range(segments):
            rt.append(f"link add br{s} address 02:00:00:00:{s:02x}:fe type bridge stp_state 0 mcast_snooping 0 "
                      "forward_delay 0")
            rt.append(f"addr add {router_ip(s)}/24 dev br{s}")
        rt += [f"link add up0 address {ROUTER_UPLINK_MAC} type veth peer name {nsmod.SCANNER_IFACE} "
               f"netns {names.scanner} address {nsmod.SCANNER_MAC}",
               f"addr add {ROUTER_UPLINK_IP}/24 dev up0", "link set up0 up", "link set lo up"]
        for i, h in enumerate(hosts):
            rt.append(f"link add v{i} type veth peer name eth0 netns {h.netns} address {h.mac}")
            rt.append(f"link set v{i} master br{h.segment} up")
        rt += [f"link set br{s} up" for s in range(segments)]
        nsmod._run_ip(["-n", names.router], rt)
        nsmod._run_ip(["-n", names.scanner], [
            "link set lo up", f"link set {nsmod.SCANNER_IFACE} addrgenmode none",
            f"addr add {SCANNER_IP}/{SCANNER_NET.prefixlen} dev {nsmod.SCANNER_IFACE}",
            f"link set {nsmod.SCANNER_IFACE} up",
            f"route add {LAB_SUPERNET} via {ROUTER_UPLINK_IP} dev {nsmod.SCANNER_IFACE}",
            f"route add 224.0.0.0/4 dev {nsmod.SCANNER_IFACE}",
        ])
    except BaseException:
        nsmod.teardown_network(prefix)
        raise
    return time.monotonic() - t0


# rtnetlink: a route (linux/rtnetlink.h)
_RTMSG = struct.Struct("=BBBBBBBBI")
_RTM_NEWROUTE, _RTA_DST, _RTA_GATEWAY, _RTA_OIF = 24, 1, 5, 4
_RT_TABLE_MAIN, _RTPROT_DHCP, _RTN_UNICAST = 254, 16, 1


def _add_route(nl: Any, dst: str, prefixlen: int, gateway: str, oif: int) -> None:
    body = (_RTMSG.pack(socket.AF_INET, prefixlen, 0, 0, _RT_TABLE_MAIN, _RTPROT_DHCP, 0, _RTN_UNICAST, 0)
            + nsmod._rtattr(_RTA_DST, socket.inet_aton(dst)) + nsmod._rtattr(_RTA_GATEWAY, socket.inet_aton(gateway))
            + nsmod._rtattr(_RTA_OIF, struct.pack("=I", oif)))
    nl.request(_RTM_NEWROUTE, nsmod._NLM_F_CREATE | nsmod._NLM_F_EXCL, body)


# --------------------------------------------------------------------------------------------
# a DHCP client (RFC 2131), just enough: DISCOVER, OFFER, REQUEST, ACK, from inside each namespace

_MAGIC = b"\x63\x82\x53\x63"
DISCOVER, OFFER, REQUEST, ACK, NAK = 1, 2, 3, 5, 6


def build_dhcp(kind: int, xid: int, mac: str, requested: str | None = None, server: str | None = None) -> bytes:
    hw = bytes.fromhex(mac.replace(":", ""))
    head = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000, b"\0" * 4, b"\0" * 4,
                       b"\0" * 4, b"\0" * 4, hw.ljust(16, b"\0"), b"", b"")
    opts = bytes([53, 1, kind, 61, 7, 1]) + hw + bytes([55, 3, 1, 3, 51])
    if requested:
        opts += bytes([50, 4]) + socket.inet_aton(requested)
    if server:
        opts += bytes([54, 4]) + socket.inet_aton(server)
    return head + _MAGIC + opts + b"\xff"


def parse_dhcp(data: bytes, xid: int) -> dict[str, Any] | None:
    """A server's reply to ``xid``: {"type", "yiaddr", "server", "mask", "router"}; None for anything else."""
    if len(data) < 240 or data[0] != 2 or struct.unpack_from("!I", data, 4)[0] != xid or data[236:240] != _MAGIC:
        return None
    out: dict[str, Any] = {"yiaddr": socket.inet_ntoa(data[16:20])}
    pos = 240
    while pos < len(data):
        code = data[pos]
        if code == 255:
            break
        if code == 0:
            pos += 1
            continue
        if pos + 2 > len(data):
            return None
        n = data[pos + 1]
        val = data[pos + 2:pos + 2 + n]
        if len(val) != n:
            return None
        if code == 53 and n == 1:
            out["type"] = val[0]
        elif code == 54 and n == 4:
            out["server"] = socket.inet_ntoa(val)
        elif code == 1 and n == 4:
            out["mask"] = socket.inet_ntoa(val)
        elif code == 3 and n >= 4:
            out["router"] = socket.inet_ntoa(val[:4])
        pos += 2 + n
    return out if "type" in out else None


def _open_dhcp_socket(netns: str) -> socket.socket:
    nsmod.setns_named(netns)
    nl = nsmod._Rtnl()
    try:
        nl.link_up(socket.if_nametoindex("lo"))
        eth0 = socket.if_nametoindex("eth0")
        nl.addrgenmode_none(eth0)
        nl.link_up(eth0)
    finally:
        nl.close()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
    s.bind(("0.0.0.0", 68))
    s.setblocking(False)
    return s


def dhcp_all(hosts: Sequence[RoutedHost], timeout: float = DHCP_TIMEOUT) -> dict[str, dict[str, Any]]:
    """DHCP every host (all at once, from this thread) -> netns -> the ACK's {"yiaddr", "router", "mask"}.
    Raises LabError for a host that got none in ``timeout`` seconds (or a NAK)."""
    socks: dict[str, socket.socket] = {}
    orig = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        for h in hosts:
            socks[h.netns] = _open_dhcp_socket(h.netns)
    except OSError as exc:
        for s in socks.values():
            s.close()
        raise LabError(f"cannot open a DHCP client socket in the lab: {exc}") from None
    finally:
        nsmod._setns(orig)
        os.close(orig)
    by_fd = {s.fileno(): h for h, s in zip(hosts, socks.values(), strict=True)}
    xids = {h.netns: secrets.randbits(31) for h in hosts}
    state = {h.netns: "discover" for h in hosts}
    sent_at: dict[str, float] = {}
    done: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    poller = select.epoll()
    try:
        for fd in by_fd:
            poller.register(fd, select.EPOLLIN)
        while len(done) < len(hosts):
            now = time.monotonic()
            if now > deadline:
                missing = [h.netns for h in hosts if h.netns not in done]
                raise LabError(f"DHCP: {len(missing)} device(s) got no address from dnsmasq within "
                               f"{timeout:.0f} s (first: {missing[0]})")
            for h in hosts:  # (re)send what is due: first at once, then every 2 s
                if h.netns in done or now - sent_at.get(h.netns, -10.0) < 2.0:
                    continue
                if state[h.netns] == "discover":
                    msg = build_dhcp(DISCOVER, xids[h.netns], h.mac)
                else:
                    offer = state[h.netns]
                    msg = build_dhcp(REQUEST, xids[h.netns], h.mac, offer[0], offer[1])  # type: ignore[index]
                try:
                    socks[h.netns].sendto(msg, ("255.255.255.255", 67))
                except OSError:
                    pass
                sent_at[h.netns] = now
            for fd, _ev in poller.poll(0.05):
                h = by_fd[fd]
                while True:
                    try:
                        data = socks[h.netns].recv(4096)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break
                    if h.netns in done:
                        continue
                    got = parse_dhcp(data, xids[h.netns])
                    if got is None:
                        continue
                    if got["type"] == OFFER and state[h.netns] == "discover" and got.get("server"):
                        state[h.netns] = (got["yiaddr"], got["server"])  # type: ignore[assignment]
                        sent_at.pop(h.netns, None)  # the REQUEST goes at once
                    elif got["type"] == ACK and state[h.netns] != "discover":
                        done[h.netns] = got
                    elif got["type"] == NAK:
                        raise LabError(f"DHCP: dnsmasq refused {h.netns}'s request (NAK)")
    finally:
        poller.close()
        for s in socks.values():
            s.close()
    return done


def configure_hosts(hosts: Sequence[RoutedHost], acks: dict[str, dict[str, Any]]) -> None:
    """Each host's ACKed address on eth0 and a route to the lab's /15 via the ACK's router option."""
    orig = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        for h in hosts:
            ack = acks[h.netns]
            prefixlen = ipaddress.IPv4Network(f"0.0.0.0/{ack.get('mask') or '255.255.255.0'}").prefixlen
            nsmod.setns_named(h.netns)
            nl = nsmod._Rtnl()
            try:
                eth0 = socket.if_nametoindex("eth0")
                nl.add_ipv4(eth0, ack["yiaddr"], prefixlen)
                if ack.get("router"):
                    net = ipaddress.IPv4Network(LAB_SUPERNET)
                    _add_route(nl, str(net.network_address), net.prefixlen, ack["router"], eth0)
            finally:
                nl.close()
    except OSError as exc:
        raise LabError(f"cannot configure a device's DHCP address: {exc}") from None
    finally:
        nsmod._setns(orig)
        os.close(orig)


# --------------------------------------------------------------------------------------------
# the router's daemons


def daemon_dir(sdir: Path) -> Path:
    return sdir / "router"


def _need(program: str) -> str:
    path = shutil.which(program) or (f"/usr/sbin/{program}" if Path(f"/usr/sbin/{program}").exists() else None)
    if not path:
        raise LabError(f"the routed lab needs {program} (Debian package {program}; `make system-packages` "
                       "installs it)")
    return path


def _spawn(prefix: str, argv: list[str], log: Path, env: dict[str, str] | None = None) -> int:
    names = nsmod.LabNames(prefix)
    with open(log, "ab") as fh:
        try:
            proc = subprocess.Popen(["ip", "netns", "exec", names.router, *argv], stdin=subprocess.DEVNULL,
                                    stdout=fh, stderr=fh, start_new_session=True, close_fds=True,
                                    env={**os.environ, **(env or {})})
        except OSError as exc:
            raise LabError(f"cannot start {argv[0]}: {exc}") from None
    return proc.pid


def start_dnsmasq(prefix: str, sdir: Path, hosts: Sequence[RoutedHost], segments: int) -> tuple[int, Path]:
    """dnsmasq, DHCP only (port=0: no DNS), on the camera bridges, one fixed address per MAC. (pid, lease file)"""
    exe = _need("dnsmasq")
    d = daemon_dir(sdir)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    hostsfile = d / "dhcp-hosts"
    hostsfile.write_text("".join(f"{h.mac},{h.ip}\n" for h in hosts))
    leases = d / "dnsmasq.leases"
    leases.write_text("")
    argv = [exe, "--keep-in-foreground", f"--conf-file={os.devnull}", "--port=0", "--no-resolv", "--no-hosts",
            "--user=root", "--group=root", "--pid-file=", "--no-ping", "--dhcp-authoritative",
            f"--dhcp-hostsfile={hostsfile}", f"--dhcp-leasefile={leases}", f"--log-facility={d / 'dnsmasq.log'}",
            "--bind-interfaces", "--except-interface=lo", "--except-interface=up0"]
    for s in range(segments):
        net = segment_net(s)
        argv += [f"--interface=br{s}", f"--dhcp-range={net.network_address},static,{net.netmask},infinite"]
    pid = _spawn(prefix, argv, d / "dnsmasq.out")
    _wait_listening(pid, "dnsmasq", d / "dnsmasq.out", udp_port=67, prefix=prefix)
    return pid, leases


def start_snmpd(prefix: str, sdir: Path) -> tuple[int, dict[str, Any]]:
    """net-snmp's snmpd on 198.19.0.1:161 inside the router namespace. (pid, {address, community, v3 user})"""
    exe = _need("snmpd")
    d = daemon_dir(sdir)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    (d / "snmp-persist").mkdir(exist_ok=True, mode=0o700)
    community = "lab-" + secrets.token_hex(8)
    auth_key, priv_key = secrets.token_hex(12), secrets.token_hex(12)
    conf = d / "snmpd.conf"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"agentAddress udp:{ROUTER_UPLINK_IP}:161\n"
                 f"rocommunity {community} {SCANNER_NET}\n"
                 f"createUser {V3_USER} SHA {auth_key} AES {priv_key}\n"
                 f"rouser {V3_USER} priv\n"
                 f"sysName {prefix}-rt\nsysDescr camsweep lab router (Linux forwarding, net-snmp)\n"
                 f"sysLocation lab {prefix}\nsysContact nobody\n"
                 # BRIDGE-MIB / Q-BRIDGE-MIB forwarding tables of the camera bridges (bridgemib.py)
                 f"pass_persist .1.3.6.1.2.1.17 {sys.executable} {Path(__file__).with_name('bridgemib.py')}\n")
    argv = [exe, "-f", "-C", "-c", str(conf), "-Lf", str(d / "snmpd.log"), "-p", str(d / "snmpd.pid")]
    pid = _spawn(prefix, argv, d / "snmpd.out", env={"SNMP_PERSISTENT_DIR": str(d / "snmp-persist"), "MIBS": ""})
    _wait_listening(pid, "snmpd", d / "snmpd.log", udp_port=161, prefix=prefix)
    return pid, {"address": ROUTER_UPLINK_IP, "community": community, "version": "2c",
                 "v3_user": {"name": V3_USER, "auth_protocol": "sha", "auth_key": auth_key,
                             "priv_protocol": "aes", "priv_key": priv_key}}


def _wait_listening(pid: int, what: str, log: Path, *, udp_port: int, prefix: str, timeout: float = 15.0) -> None:
    """Until ``pid`` has a UDP socket on ``udp_port`` in the router namespace (read from /proc/PID/net/udp)."""
    deadline = time.monotonic() + timeout
    want = f":{udp_port:04X} "
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            stat = ""
        if not stat or stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X"):
            try:
                tail = " / ".join(x.strip() for x in log.read_text(errors="replace").splitlines()[-3:])
            except OSError:
                tail = ""
            raise LabError(f"{what} exited at start" + (f": {tail[:300]}" if tail else ""))
        try:
            if any(want in line.split()[1] + " " for line in Path(f"/proc/{pid}/net/udp").read_text().splitlines()[1:]):
                return
        except (OSError, IndexError):
            pass
        time.sleep(0.05)
    raise LabError(f"{what} did not open UDP port {udp_port} within {timeout:.0f} s (see {log})")
