"""BRIDGE-MIB and Q-BRIDGE-MIB forwarding tables of the routed lab's router, for net-snmp's snmpd.

Linux's snmpd serves no bridge MIB, so the routed lab's snmpd runs this as a ``pass_persist`` helper
(``pass_persist .1.3.6.1.2.1.17 python3 bridgemib.py``; net-snmp's snmpd.conf(5), "pass_persist"). It
runs inside the router namespace (snmpd's child) and answers from ``bridge -j fdb show``:

- dot1dTpFdbTable (1.3.6.1.2.1.17.4.3.1): ``.1.<mac>`` address, ``.2.<mac>`` port, ``.3.<mac>`` status 3 (learned);
- dot1qTpFdbTable (1.3.6.1.2.1.17.7.1.2.2.1): ``.2.<fdbId>.<mac>`` port, ``.3.<fdbId>.<mac>`` status
  (fdbId: the bridge's number + 1, one per camera segment).

The port is the bridge port's number (``/sys/class/net/<port>/brport/port_no``). Only learned entries
are served (not the bridges' own permanent ones). Standalone on purpose (stdlib only): snmpd starts it
with the interpreter and this file's path, whatever ``scanner`` package the machine has installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

DOT1D = (1, 3, 6, 1, 2, 1, 17, 4, 3, 1)
DOT1Q = (1, 3, 6, 1, 2, 1, 17, 7, 1, 2, 2, 1)
LEARNED = 3
CACHE_S = 5.0
MAX_ENTRIES = 65536

Row = tuple[tuple[int, ...], str, str]  # oid, pass_persist type, value


def _port_no(ifname: str) -> int | None:
    try:
        with open(f"/sys/class/net/{ifname}/brport/port_no") as fh:
            return int(fh.read().strip(), 0)
    except (OSError, ValueError):
        return None


def read_fdb() -> list[dict]:
    try:
        out = subprocess.run(["bridge", "-j", "fdb", "show"], capture_output=True, text=True, timeout=10).stdout
        data = json.loads(out or "[]")
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return []
    return data if isinstance(data, list) else []


def build_rows(entries: list[dict], port_of=_port_no) -> list[Row]:
    """The two tables' rows, sorted by OID, from ``bridge -j fdb show`` entries."""
    rows: list[Row] = []
    for e in entries[:MAX_ENTRIES]:
        if not isinstance(e, dict):
            continue
        master, ifname, mac = str(e.get("master") or ""), str(e.get("ifname") or ""), str(e.get("mac") or "")
        if not master.startswith("br") or e.get("state") == "permanent" or "self" in (e.get("flags") or []):
            continue
        try:
            octets = tuple(int(x, 16) for x in mac.split(":"))
            fdb_id = int(master[2:]) + 1
        except ValueError:
            continue
        if len(octets) != 6 or octets[0] & 1:
            continue
        port = port_of(ifname)
        if port is None:
            continue
        hexmac = " ".join(f"{b:02X}" for b in octets)
        rows += [((*DOT1D, 1, *octets), "octet", hexmac), ((*DOT1D, 2, *octets), "integer", str(port)),
                 ((*DOT1D, 3, *octets), "integer", str(LEARNED)),
                 ((*DOT1Q, 2, fdb_id, *octets), "integer", str(port)),
                 ((*DOT1Q, 3, fdb_id, *octets), "integer", str(LEARNED))]
    rows.sort()
    return rows


def _oid(text: str) -> tuple[int, ...] | None:
    try:
        return tuple(int(x) for x in text.strip().strip(".").split(".") if x != "")
    except ValueError:
        return None


def answer(command: str, oid_text: str, rows: list[Row]) -> str:
    """One pass_persist answer (without the trailing newline) to ``get``/``getnext`` of ``oid_text``."""
    oid = _oid(oid_text)
    if oid is None:
        return "NONE"
    if command == "get":
        hit = next((r for r in rows if r[0] == oid), None)
    else:
        hit = next((r for r in rows if r[0] > oid), None)
    if hit is None:
        return "NONE"
    return "." + ".".join(map(str, hit[0])) + f"\n{hit[1]}\n{hit[2]}"


def main() -> int:
    rows: list[Row] = []
    loaded = 0.0
    stdin, stdout = sys.stdin, sys.stdout
    while True:
        line = stdin.readline()
        if not line:
            return 0
        cmd = line.strip().lower()
        if cmd == "ping":
            stdout.write("PONG\n")
        elif cmd in ("get", "getnext"):
            oid = stdin.readline()
            if time.monotonic() - loaded > CACHE_S:
                rows, loaded = build_rows(read_fdb()), time.monotonic()
            stdout.write(answer(cmd, oid, rows) + "\n")
        elif cmd == "set":
            stdin.readline()
            stdin.readline()
            stdout.write("not-writable\n")
        elif cmd == "":
            continue
        else:
            stdout.write("NONE\n")
        stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
