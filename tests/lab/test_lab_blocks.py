"""Loopback labs of different users never share a block of 127.18.0.0/16.

Each user keeps its labs' state where only it can read it (root's under /run, 0700), so a lab cannot learn
another user's block from its state. Two labs in one block answer for each other's addresses on every port
that one serves and the other does not (the unprivileged demo's unicast mDNS on 5353, say, answered by
root's lab: a Dahua OEM camera then carried an Axis camera's mDNS names, its maker became "conflicting"
and its restricted flag was lost). So a loopback lab also counts every address a socket is bound to
(/proc/net, any user's) as taken, and, if another user's lab came up in its block at the same moment, the
lab of the higher uid builds itself again elsewhere.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.errors import LabError
from scanner.lab import manager
from tests.conftest import lab_test_prefix

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534

PROC_UDP = """\
   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  123: 0900127F:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000 0
  124: 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000   106        0 4243 2 0000 0
  125: 0500127F:3E8F 00000000:0000 07 00000000:00000000 00:00000000 00000000 65534        0 4244 2 0000 0
"""
PROC_TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0000000000000000FFFF00000700127F:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1
   1: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1
   2: 00000000000000000000000001000000:0277 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1
"""
PROC_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0200127F:2760 00000000:0000 0A 00000000:00000000 00:00000000 00000000 65534        0 7 1
   1: 0300127F:2760 0100007F:D431 06 00000000:00000000 03:00000F6A 00000000     0        0 0 3
   2: 0400127F:2760 0100007F:D432 01 00000000:00000000 00:00000000 00000000 65534        0 8 1
"""


def test_proc_net_lines_give_bound_ipv4_addresses_and_owners() -> None:
    assert manager.parse_proc_net(PROC_UDP) == [("127.18.0.9", 0), ("127.18.0.5", 65534)]  # 0.0.0.0 left out
    assert manager.parse_proc_net(PROC_TCP6, tcp=True) == [("127.18.0.7", 1000)]  # only v4-mapped IPv6 counts
    # TCP: listeners only (a TIME_WAIT entry, uid 0, left by a lab gone, would keep its block "taken")
    assert manager.parse_proc_net(PROC_TCP, tcp=True) == [("127.18.0.2", 65534)]
    assert manager.parse_proc_net("") == [] and manager.parse_proc_net("header only\n") == []
    assert manager.parse_proc_net("h\n 1: ZZZZZZZZ:0050 x x x x x x\n 2: 0100007F:0050 a b c d e notanumber\n") == []


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400), st.booleans())
def test_proc_net_parser_never_raises(text: str, tcp: bool) -> None:
    for ip, uid in manager.parse_proc_net(text, tcp=tcp):
        assert isinstance(ipaddress.IPv4Address(ip), ipaddress.IPv4Address) and isinstance(uid, int)


def _bind_udp(ip: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, 0))
    return s


def test_a_block_with_a_bound_address_is_taken_whoever_bound_it() -> None:
    own = lab_test_prefix("bk")
    first, _, _ = manager.plan_addresses(3, "loopback", taken=manager._loopback_cidrs_in_use(own))
    ip = str(first.network_address + 250)  # no lab state names it: only the socket says the block is used
    with _bind_udp(ip):
        assert ip in manager.bound_loopback_addresses()
        again, _, ips = manager.plan_addresses(3, "loopback", taken=manager._loopback_cidrs_in_use(own))
        assert not again.overlaps(first) and ipaddress.ip_address(ip) not in again
        assert all(ipaddress.ip_address(a) in again for a in ips)


def test_the_higher_uid_moves_out_of_a_shared_block() -> None:
    own = lab_test_prefix("bs")
    net, _, _ = manager.plan_addresses(3, "loopback", taken=manager._loopback_cidrs_in_use(own))
    with _bind_udp(str(net.network_address + 250)):
        me = os.geteuid()
        manager.check_block_alone(str(net), me=me)  # its own sockets never move a lab
        if me != 0:
            pytest.skip("needs a lower uid than this one holding the block (run as root)")
        with pytest.raises(manager.BlockShared, match=str(net)):
            manager.check_block_alone(str(net), me=NOBODY)


def test_up_builds_again_when_the_block_turned_out_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    said: list[str] = []

    def racing(*a: object, **kw: object) -> str:
        calls.append(1)
        if len(calls) == 1:
            raise manager.BlockShared("127.18.0.0/24 is also used by a loopback lab of uid 0")
        return "second try"

    monkeypatch.setattr(manager, "_up", racing)
    assert manager.up(3, 0, prefix="cswtblk", loopback=True, log=said.append) == "second try"
    assert len(calls) == 2 and "building the lab again in another block" in said[0]
    calls.clear()
    monkeypatch.setattr(manager, "_up", lambda *a, **kw: (_ for _ in ()).throw(manager.BlockShared("taken")))
    with pytest.raises(LabError, match="no free block"):
        manager.up(3, 0, prefix="cswtblk", loopback=True)


@pytest.mark.lab
@pytest.mark.timeout(180)
def test_root_and_nobody_loopback_labs_take_different_blocks() -> None:
    """The case that lost a flag: root's loopback lab is up (another test session's, say) when an
    unprivileged user brings one up; each keeps its state where the other cannot read it."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to run a second lab as nobody")
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", "CAMSWEEP_LAB_STATE_DIR")}
    env.update(PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1", HOME="/tmp", TMPDIR="/tmp")
    as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    if subprocess.run([*as_nobody, sys.executable, "-c", "import scanner.cli, scanner.lab.responders"], env=env,
                      capture_output=True, timeout=60).returncode != 0:
        as_nobody += ["--inh-caps=-all,+dac_read_search", "--ambient-caps=+dac_read_search"]
    root_p, nobody_p = lab_test_prefix("br"), lab_test_prefix("bn")
    script = ("import sys\nfrom scanner.lab import manager\n"
              "st = manager.up(3, 1, prefix=sys.argv[1], loopback=True)\nprint(st.cidr, flush=True)\n"
              "sys.stdin.readline()\nmanager.down(sys.argv[1])\n")
    try:
        rst = manager.up(3, 0, prefix=root_p, loopback=True)
        proc = subprocess.Popen([*as_nobody, sys.executable, "-c", script, nobody_p], env=env, text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert proc.stdout is not None and proc.stdin is not None
            line = proc.stdout.readline().strip()
            assert line, proc.stderr.read() if proc.stderr else ""
            assert not ipaddress.ip_network(line).overlaps(ipaddress.ip_network(rst.cidr)), (line, rst.cidr)
            bound = manager.bound_loopback_addresses(line)  # nobody's devices are there, none of root's lab
            assert any(NOBODY in uids for uids in bound.values()), bound
            assert not manager.bound_loopback_addresses(rst.cidr).keys() & bound.keys()
            proc.stdin.write("\n")
            proc.stdin.flush()
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    finally:
        manager.down(root_p)
        subprocess.run([*as_nobody, sys.executable, "-m", "scanner.cli", "lab", "down", "--prefix", nobody_p],
                       env=env, capture_output=True, timeout=60)
