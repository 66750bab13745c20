"""The routed lab's BRIDGE-MIB / Q-BRIDGE-MIB pass_persist helper: rows from `bridge -j fdb show`, the
pass_persist answers, and the walker's FDB parser reading what it serves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from scanner.lab import bridgemib as bm
from scanner.probes import snmpwalk as sw

FDB = [
    {"mac": "33:33:00:00:00:01", "ifname": "br0", "flags": ["self"], "state": "permanent"},
    {"mac": "02:00:00:00:00:fe", "ifname": "br0", "flags": [], "master": "br0", "state": "permanent"},
    {"mac": "4c:11:bf:00:00:02", "ifname": "v0", "flags": [], "master": "br0", "state": ""},
    {"mac": "a4:14:37:00:00:03", "ifname": "v1", "flags": [], "master": "br1"},
    {"mac": "01:00:5e:00:00:fb", "ifname": "v1", "flags": [], "master": "br1"},  # multicast: not a station
    {"mac": "bad", "ifname": "v1", "master": "br1"}, "junk",
]
PORTS = {"v0": 1, "v1": 4}


def rows():
    return bm.build_rows(FDB, port_of=PORTS.get)


def test_rows_and_answers():
    r = rows()
    assert [x[0] for x in r] == sorted(x[0] for x in r) and len(r) == 10
    first = bm.answer("getnext", ".1.3.6.1.2.1.17", r)
    assert first == ".1.3.6.1.2.1.17.4.3.1.1.76.17.191.0.0.2\noctet\n4C 11 BF 00 00 02"
    assert bm.answer("get", ".1.3.6.1.2.1.17.7.1.2.2.1.2.2.164.20.55.0.0.3", r).endswith("integer\n4")
    assert bm.answer("get", ".1.3.6.1.2.1.17.7.1.2.2.1.2.9.1.2.3.4.5.6", r) == "NONE"
    assert bm.answer("getnext", ".1.3.6.1.2.1.17.7.1.2.2.1.3.2.164.20.55.0.0.3", r) == "NONE"
    assert bm.answer("get", "not an oid", r) == "NONE"


def test_walker_reads_what_it_serves():
    typed = [(oid, bytes.fromhex(v.replace(" ", "")) if t == "octet" else int(v)) for oid, t, v in rows()]
    assert sorted(sw.parse_fdb(typed)) == sorted([("4c:11:bf:00:00:02", 1), ("a4:14:37:00:00:03", 4)] * 2)


def test_pass_persist_protocol():
    script = Path(bm.__file__)
    p = subprocess.run([sys.executable, str(script)], input="PING\nset\n.1.3\ninteger 1\nbogus\n", text=True,
                       capture_output=True, timeout=30)
    assert p.stdout.splitlines() == ["PONG", "not-writable", "NONE"]
