"""`camsweep lab up|status|down`: the simulated camera fleet in network namespaces (or on loopback)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from typing import Any

from scanner.commands.options import add_actions
from scanner.commands.table import cell, format_table
from scanner.errors import LabError
from scanner.lab import manager
from scanner.lab import netns as nsmod


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "lab", help="bring the simulated camera fleet up or down (network namespaces, needs root)",
        description="A simulated fleet of cameras, recorders and ordinary hosts, each in its own network "
        "namespace on one bridge (198.18.0.0/15, nothing attached to the host's interfaces), with one "
        "scanner namespace to scan it from. Without root, --loopback puts the devices on 127.18.0.x.",
    )
    lsub = add_actions(p, "lab_command")

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--prefix", default=None,
                       help="namespace and state prefix (default: $CAMSWEEP_LAB_PREFIX or csw)")

    up = lsub.add_parser("up", help="build the lab and start its devices")
    up.add_argument("--devices", type=int, default=manager.DEFAULT_DEVICES, metavar="N",
                    help=f"number of devices (default {manager.DEFAULT_DEVICES}, at most {manager.MAX_DEVICES})")
    up.add_argument("--seed", type=int, default=0, metavar="S", help="fleet seed: same seed, same fleet")
    up.add_argument("--loopback", action="store_true",
                    help="no namespaces: devices on 127.18.0.x (HTTP/RTSP/unicast probes only, no ARP/multicast)")
    up.add_argument("--routed", action="store_true",
                    help="devices on two or more camera segments (198.18.S.0/24) behind a router namespace that "
                    "runs DHCP (dnsmasq) and SNMP (net-snmp); the scanner on a segment of its own (198.19.0.0/24)")
    up.add_argument("--hostile", action="store_true",
                    help="add one device of each hostile profile built only on request (lone surrogates in "
                    "DHIP/RPC2 JSON, escape codecs as charset, a gzip bomb on credentialed ONVIF, hundreds of "
                    "mDNS names) to the fleet")
    up.add_argument("--json", action="store_true", help="print the status as JSON")
    common(up)
    up.set_defaults(func=cmd_up)

    st = lsub.add_parser("status", help="show the lab and its devices (ground truth)")
    st.add_argument("--json", action="store_true", help="print the status as one JSON object")
    st.add_argument("--all", action="store_true",
                    help="one line per lab on this machine (every prefix), leftovers of crashed labs included")
    common(st)
    st.set_defaults(func=cmd_status)

    dn = lsub.add_parser("down", help="stop the devices and remove the lab (leftovers of a crash too)")
    common(dn)
    dn.set_defaults(func=cmd_down)


def _err(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _offer_loopback(reason: str) -> bool:
    _err(f"camsweep lab: cannot build a namespace lab: {reason}.")
    _err("A loopback lab still works without root: devices on 127.18.0.x answer HTTP, RTSP and the other "
         "unicast probes (no ARP, no multicast, no MAC addresses on the wire).")
    if sys.stdin.isatty() and sys.stderr.isatty():
        try:
            answer = input("Start a loopback lab instead? [y/N] ")
        except EOFError:
            answer = ""
        return answer.strip().lower() in ("y", "yes")
    _err("Run `camsweep lab up --loopback` for it, or run as root for the namespace lab.")
    return False


def bring_up(devices: int, seed: int, prefix: str | None, loopback: bool, *, interactive: bool = True,
             auto_loopback: bool = False, routed: bool = False,
             fleet: Sequence[Any] | None = None) -> manager.LabStatus | None:
    """``manager.up`` with the CLI's fallback to a loopback lab. None when the user declined it."""
    if fleet is not None:
        devices = len(fleet)
    try:
        return manager.up(devices, seed, prefix=prefix, loopback=loopback, log=_err, routed=routed, fleet=fleet)
    except manager.LabUnavailable as exc:
        if routed:
            raise
        if auto_loopback:
            _err(f"camsweep: no namespace lab ({exc}); using a loopback lab on 127.18.0.x instead")
        elif not (interactive and _offer_loopback(str(exc))):
            if not interactive:
                raise
            return None
        return manager.up(devices, seed, prefix=prefix, loopback=True, log=_err, fleet=fleet)


def hostile_fleet(devices: int, seed: int) -> list[Any]:
    """The seed's fleet of ``devices``, then one device of each on-request hostile profile."""
    import random

    from scanner.lab.profiles import ON_REQUEST_KEYS, build_device, build_fleet

    fleet = build_fleet(devices, seed)
    return fleet + [build_device(k, len(fleet) + i, random.Random(f"camsweep-hostile-{seed}-{i}-{k}"))
                    for i, k in enumerate(ON_REQUEST_KEYS)]


def cmd_up(args: argparse.Namespace) -> int:
    fleet = None
    if getattr(args, "hostile", False):
        try:
            fleet = hostile_fleet(args.devices, args.seed)
        except ValueError as exc:
            raise LabError(f"cannot build the fleet: {exc}") from None
    st = bring_up(args.devices, args.seed, args.prefix, args.loopback, routed=args.routed, fleet=fleet)
    if st is None:
        return 2
    if args.json:
        print(json.dumps(st.to_dict(), indent=1))
        return 0
    t = st.timings.get("up_s")
    print(f"lab {st.prefix} up ({st.mode}): {st.devices} devices on {st.cidr}"
          + (f" in {t:.2f} s" if t is not None else ""))
    _print_how_to(st)
    return 0


def _print_how_to(st: manager.LabStatus) -> None:
    ports = "".join(f" {a}" for a in st.scan_args)  # the lab's port map (`lab status --json`: scan_args)
    if st.routed:
        print(f"  scanner namespace: {st.scanner_netns} (eth0 {st.scanner_ip}); camera segments "
              f"{', '.join(st.cidrs)} behind router {st.router_netns}")
        print(f"  scan it:  ip netns exec {st.scanner_netns} camsweep scan {' '.join(st.cidrs)} "
              f"--credentials {st.credentials_file} --snmp {(st.snmp or {}).get('address')}")
        print(f"            (or --dhcp-leases {st.dhcp_leases})")
    elif st.mode == "netns":
        print(f"  scanner namespace: {st.scanner_netns} (eth0 {st.scanner_ip})")
        print(f"  scan it:  ip netns exec {st.scanner_netns} camsweep scan {st.cidr} "
              f"--credentials {st.credentials_file}{ports}")
    else:  # every 127.x address answers: scan the device list
        print(f"  scan it:  camsweep scan -iL {st.targets_file} --credentials {st.credentials_file}{ports}"
              + (f"  (ports moved up by {st.port_offset})" if st.port_offset else ""))
    print(f"  ground truth: {st.ground_truth}")
    print(f"  take it down: camsweep lab down --prefix {st.prefix}")


def cmd_status_all(as_json: bool) -> int:
    prefixes = set(manager.lab_prefixes())
    for name in nsmod.list_netns():
        head, _, tail = name.rpartition("-")
        if nsmod.PREFIX_RE.match(head) and re.fullmatch(r"br|rt|scan|d\d+", tail):
            prefixes.add(head)
    labs = [st for p in sorted(prefixes) if (st := manager.status(p)) is not None]
    if as_json:
        print(json.dumps([st.to_dict() for st in labs], indent=1))
        return 0
    if not labs:
        print("no lab is up on this machine")
        return 0
    cols = ("prefix", "mode", "phase", "healthy", "devices", "cidr", "namespaces", "service_pid")
    rows = [[cell(st.prefix), st.mode, st.phase, cell(st.healthy), str(st.devices), st.cidr or "-",
             str(st.namespaces), cell(st.service_pid)] for st in labs]
    print(format_table(cols, rows))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    if args.all:
        return cmd_status_all(args.json)
    st = manager.status(args.prefix)
    prefix = args.prefix or manager.default_prefix()
    if st is None:
        _err(f"camsweep lab: no lab {prefix!r} is up")
        return 1
    if args.json:
        print(json.dumps(st.to_dict(), indent=1))
        return 0 if st.healthy else 1
    if st.phase == "leftover":
        print(f"lab {prefix}: {st.namespaces} namespaces left over with no state; "
              f"`camsweep lab down --prefix {prefix}` removes them")
        return 1
    health = "ok" if st.healthy else "NOT HEALTHY"
    print(f"lab {st.prefix} ({st.mode}, {st.phase}, {health}): {st.devices} devices on {st.cidr}, "
          f"service pid {st.service_pid} {'running' if st.service_alive else 'NOT RUNNING'}"
          + (f", {st.namespaces} namespaces" if st.mode == "netns" else ""))
    _print_how_to(st)
    try:
        rows = st.ground_truth_rows()
    except (OSError, ValueError) as exc:
        _err(f"camsweep lab: cannot read the ground truth {st.ground_truth}: {exc}")
        return 1
    cols = ("ip", "mac", "manufacturer", "brand", "model", "device_type", "restricted", "profile")
    table = []
    for r in rows:
        cells = [cell(r.get(c)) for c in cols]
        if r.get("parent_ip"):
            cells[0] = f"  └ ch{cell(r.get('channel'), 8)}"
        table.append(cells)
    print()
    print(format_table(cols, table))
    n_host = sum(1 for r in rows if not r.get("parent_ip"))
    n_restr = sum(1 for r in rows if r.get("restricted") is True)
    print(f"\n{n_host} devices on the network, {len(rows) - n_host} cameras behind recorders, "
          f"{n_restr} restricted (ndaa889)")
    return 0 if st.healthy else 1


def cmd_down(args: argparse.Namespace) -> int:
    try:
        rep = manager.down(args.prefix)
    except LabError as exc:
        _err(f"camsweep lab: down was incomplete: {exc}")
        return 2
    if not rep.found and not rep.pids_stopped:
        print(f"no lab {rep.prefix} was up; nothing left over")
        return 0
    parts = [f"removed {len(rep.namespaces_removed)} namespaces"] if rep.namespaces_removed else []
    if rep.pids_stopped:
        parts.append("stopped pid " + ", ".join(map(str, rep.pids_stopped)))
    if rep.sysctls_restored:
        parts.append("restored " + ", ".join(f"{k}={v}" for k, v in rep.sysctls_restored.items()))
    print(f"lab {rep.prefix} down in {rep.seconds:.2f} s" + (": " + "; ".join(parts) if parts else ""))
    return 0
