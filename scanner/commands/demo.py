"""`camsweep demo`: bring the lab up, scan it from its scanner namespace, show the results, take it down."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scanner.commands.lab import bring_up
from scanner.commands.options import check_store_file, open_store
from scanner.commands.table import cell, format_table
from scanner.errors import CamsweepError, LabError
from scanner.lab import manager

SCAN_TIMEOUT = 900.0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="scan a simulated camera fleet end to end (lab up, scan, results, lab down)",
        description="Builds the simulated fleet (`camsweep lab up`; as root in network namespaces, else on "
        "loopback), runs a full `camsweep scan` of it from the lab's scanner namespace, on the lab's ports "
        "(its port map: a loopback lab without root serves every port 10000 up), shows the results "
        "(the TUI on a terminal, a table otherwise, with a comparison against the lab's ground truth) and "
        "takes the lab down again. A loopback lab has no ARP (no MAC addresses) and no multicast: the "
        "comparison counts apart the devices that show their maker only that way.",
    )
    p.add_argument("--devices", type=int, default=manager.DEFAULT_DEVICES, metavar="N",
                   help=f"devices in the lab (default {manager.DEFAULT_DEVICES})")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="fleet seed (default 0)")
    p.add_argument("--db", default=None, metavar="PATH",
                   help="keep the results in this store (default: a temporary one, removed afterwards)")
    p.add_argument("--prefix", default=None, help="lab prefix (default: $CAMSWEEP_LAB_PREFIX or csw)")
    p.add_argument("--loopback", action="store_true", help="use a loopback lab even when root")
    p.add_argument("--no-tui", action="store_true", help="print the summary table even on a terminal")
    p.set_defaults(func=cmd_demo)


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def scan_command(st: manager.LabStatus, db: str) -> list[str]:
    """The scan the demo runs: from inside the scanner namespace when the lab has one."""
    # a loopback lab is scanned by its device list: every 127.x address answers, device or not
    targets = [st.cidr] if st.mode == "netns" else ["-iL", st.targets_file]
    cmd = [sys.executable, "-m", "scanner.cli", "scan", *targets, "--db", db,
           "--credentials", st.credentials_file, *st.scan_args, "--quiet"]
    if st.mode == "netns" and st.scanner_netns:
        cmd = ["ip", "netns", "exec", st.scanner_netns, *cmd]
    return cmd


def loopback_note(st: manager.LabStatus) -> str:
    """The one line a loopback demo says about what it cannot show."""
    who = "without root" if os.geteuid() != 0 else "a loopback lab"
    moved = f" (80 -> {st.port_map.get('80', 80 + st.port_offset)})" if st.port_offset else ""
    return (f"{who}: no ARP, so no MAC addresses or their maker prefixes, and no multicast discovery (WS-Discovery, "
            f"SSDP, mDNS, SADP, DHIP); every other probe runs, on the lab's ports{moved}")


def _hangup_as_interrupt() -> None:
    """A closed terminal (SIGHUP) or a SIGTERM unwinds like Ctrl-C, so the lab still goes down."""
    def on_signal(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)
    for sig in (signal.SIGHUP, signal.SIGTERM):
        if signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, on_signal)


def cmd_demo(args: argparse.Namespace) -> int:
    _hangup_as_interrupt()
    tmpdir = None
    if args.db:
        db = str(Path(args.db).expanduser().resolve())
        check_store_file(db, create=True)  # refused before the lab is built, as `scan` would refuse it
    else:
        tmpdir = tempfile.mkdtemp(prefix="camsweep-demo-")
        db = os.path.join(tmpdir, "demo.db")
    st = None
    try:
        st = bring_up(args.devices, args.seed, args.prefix, args.loopback, interactive=False, auto_loopback=True)
        assert st is not None
        _err(f"lab {st.prefix} up ({st.mode}): {st.devices} devices on {st.cidr} "
             f"in {st.timings.get('up_s', 0):.2f} s")
        if st.mode == "loopback":
            _err(loopback_note(st))
        cmd = scan_command(st, db)
        _err("scanning: " + " ".join(cmd[cmd.index("scan"):]))
        t0 = time.monotonic()
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=SCAN_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise CamsweepError(f"the scan did not finish within {SCAN_TIMEOUT:.0f} s") from None
        took = time.monotonic() - t0
        if proc.returncode != 0:
            raise CamsweepError(f"the scan failed (exit {proc.returncode}); the lab is being taken down")
        _err(f"scan finished in {took:.1f} s")
        show_results(db, st, tui=sys.stdout.isatty() and not args.no_tui)
        if args.db:
            _err(f"results kept in {db} (camsweep tui --db {db})")
        return 0
    finally:
        if st is not None:
            try:
                rep = manager.down(st.prefix)
                _err(f"lab {st.prefix} down" + (f" ({len(rep.namespaces_removed)} namespaces removed)"
                                                 if rep.namespaces_removed else ""))
            except LabError as exc:
                _err(f"camsweep demo: taking the lab down was incomplete: {exc}")
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)


def _parents_then_children(rows: list[dict]) -> list[dict]:
    """Each device followed by the cameras behind it (children of a parent not in the list go last)."""
    children: dict[int, list[dict]] = {}
    for r in rows:
        if r.get("parent_id") is not None:
            children.setdefault(r["parent_id"], []).append(r)
    out: list[dict] = []
    for r in rows:
        if r.get("parent_id") is None:
            out.append(r)
            kids = children.pop(r["device_id"], [])
            out.extend(sorted(kids, key=lambda k: (str(k.get("channel") or ""), k["device_id"])))
    for kids in children.values():
        out.extend(kids)
    return out


def show_results(db: str, st: manager.LabStatus, *, tui: bool) -> None:
    """The TUI on a terminal, else a summary table and the ground-truth comparison."""
    if tui:
        subprocess.run([sys.executable, "-m", "scanner.cli", "tui", "--db", db])
        return
    with open_store(db, create=False) as store:
        rows = store.devices(store.latest_scan_id())
    cols = ("ip", "mac", "manufacturer", "brand", "model", "device_type", "restricted", "confidence")
    table = []
    for r in _parents_then_children(rows):
        cells = [cell(r.get(c)) for c in cols]
        if r.get("channel") is not None and r.get("parent_id") is not None:
            cells[0] = f"  └ ch{cell(r['channel'], 8)}"
        if isinstance(r.get("confidence"), float):
            cells[-1] = f"{r['confidence']:.2f}"
        table.append(cells)
    print(format_table(cols, table))
    cmp = manager.compare_with_ground_truth(rows, st.ground_truth_rows())
    chans, chans_found = cmp["devices"] - cmp["hosts"], cmp["found"] - cmp["hosts_found"]
    print(f"\nfound {cmp['hosts_found']} of {cmp['hosts']} devices on the network and {chans_found} of {chans} "
          f"cameras behind recorders; maker right for {cmp['manufacturer_right']}, "
          f"wrong for {cmp['manufacturer_wrong']}, unknown for {cmp['manufacturer_null']}; restricted: "
          f"{cmp['restricted_found']} of {cmp['restricted_truth']} flagged, {cmp['false_alarms']} false alarms")
    if st.mode == "loopback":
        v = cmp["unicast"]
        print(f"without ARP and multicast: {cmp['arp_multicast_only']} devices show their maker only by MAC address "
              f"or multicast; of the other {v['devices']}: found {v['found']}, maker right for "
              f"{v['manufacturer_right']}, wrong for {v['manufacturer_wrong']}, unknown for {v['manufacturer_null']}; "
              f"restricted: {v['restricted_found']} of {v['restricted_truth']} flagged, {v['false_alarms']} false "
              "alarms")
