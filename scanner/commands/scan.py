"""`camsweep scan`: find and identify devices on the networks named, store them, print the results.

stdout carries the results only (a table, ``--format json`` or ``csv``); progress and diagnostics go to
stderr. Exit codes: 0 done (nothing restricted, with ``--fail-on restricted``), 1 restricted devices
found (with ``--fail-on restricted``), 2 an error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import json
import signal
import sys
from typing import Any

from scanner.commands.options import add_db_option, add_policy_options, number, open_store, whole_number
from scanner.devtext import json_safe, visible
from scanner.errors import CamsweepError

FORMATS = ("table", "json", "csv")
JSON_FIELDS = ("ip", "mac", "manufacturer", "brand", "model", "firmware", "serial", "device_type", "restricted",
               "lists", "confidence", "evidence", "component_risk", "parent_ip", "channel", "device_id", "review")

_positive_int = whole_number(1)
_retries = whole_number(0, 10)
_workers = whole_number(0, 16)
_nonneg_float = number(lambda n: 0 <= n < 1e7, "must be 0 or more")
_positive_float = number(lambda n: 0 < n <= 3600, "must be more than 0 and at most 3600")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "scan", help="scan the networks you name for cameras and recorders",
        description="Scan the hosts and networks you name (nothing is scanned by default), identify every "
        "device's real maker from evidence, store the scan and print the results.",
        epilog="Targets: 198.18.0.7, 198.18.0.0/24, 198.18.0.1-200, 198.18.0-3.1-254, "
        "198.18.0.1-198.18.1.20, host names. Exit codes: 0 ok, 1 restricted found (--fail-on restricted), "
        "2 error.",
    )
    p.add_argument("targets", nargs="*", metavar="TARGET", help="hosts, CIDR blocks, ranges or names")
    t = p.add_argument_group("targets")
    t.add_argument("-iL", "--input-list", dest="input_lists", action="append", default=[], metavar="FILE",
                   help="read targets from FILE (- for standard input)")
    t.add_argument("--exclude", action="append", default=[], metavar="LIST",
                   help="comma-separated hosts or networks to leave out")
    t.add_argument("--excludefile", action="append", default=[], metavar="FILE", help="exclusions from FILE")
    t.add_argument("--max-hosts", type=_positive_int, default=None, metavar="N",
                   help="allow target lists of up to N hosts (default 65536)")
    t.add_argument("-e", "--interface", default=None, metavar="IFACE",
                   help="interface for ARP and multicast discovery (default: the one attached to the targets)")
    d = p.add_argument_group("discovery and probing")
    d.add_argument("--passive", type=_nonneg_float, default=0.0, metavar="SECONDS",
                   help="also listen passively for this long")
    d.add_argument("--pcap", default=None, metavar="FILE",
                   help="read hosts and evidence from a capture file instead of the wire (sends nothing)")
    d.add_argument("-Pn", "--no-ping", dest="assume_up", action="store_true",
                   help="probe every target, whether discovery found it or not")
    d.add_argument("--no-arp", dest="arp", action="store_false", help="no ARP sweep")
    d.add_argument("--no-icmp", dest="icmp", action="store_false",
                   help="no ICMP echo for targets beyond the attached segments (TCP liveness only)")
    mc = d.add_mutually_exclusive_group()
    mc.add_argument("--multicast", dest="multicast", action="store_true", default=None,
                    help="ask the multicast discovery questions (WS-Discovery, SSDP, mDNS, SADP, DHIP) on every "
                    "attached segment with a target, even one the targets do not cover whole: every device there "
                    "hears them, excluded or not. Default: only where the targets cover the segment (every host "
                    "address of it, none excluded); ARP asks only target addresses either way")
    mc.add_argument("--no-multicast", dest="multicast", action="store_false",
                    help="no multicast discovery at all")
    d.add_argument("--probes", default=None, metavar="LIST",
                   help="comma-separated per-host probes to run (default: all of http, rtsp, onvif, tls, "
                   "banner, sadp, dhip, wsd, ssdp, snmp, dvrip, mdns)")
    d.add_argument("-sn", "--discovery-only", action="store_true",
                   help="find hosts (ARP, multicast discovery, TCP liveness) and identify them from that alone")
    d.add_argument("--rate", type=_nonneg_float, default=5000.0, metavar="PPS",
                   help="packets a second at most (0: no limit; default 5000)")
    d.add_argument("--concurrency", type=_positive_int, default=128, metavar="N",
                   help="hosts probed at once (default 128)")
    d.add_argument("--per-host", type=_positive_int, default=6, metavar="N", help="probes at once on one host")
    d.add_argument("--workers", type=_workers, default=-1, metavar="N",  # -1: auto
                   help="processes that probe hosts (default: automatic, half the cores when discovery finds "
                   "1000 live hosts or more on 4 cores or more; 0: all in this process)")
    d.add_argument("--timeout", type=_positive_float, default=4.0, metavar="S", help="seconds for one probe")
    d.add_argument("--host-timeout", type=_positive_float, default=10.0, metavar="S",
                   help="seconds for everything on one host")
    d.add_argument("--retries", type=_retries, default=1, metavar="N", help="extra tries for UDP probes")
    d.add_argument("--credentials", default=None, metavar="FILE|keyring:NAME",
                   help="device credentials (INI); else CAMSWEEP_USERNAME/CAMSWEEP_PASSWORD; never guessed. "
                   "SNMP: 'community = ...' and SNMPv3 'snmp_user', 'snmp_auth_protocol', 'snmp_auth_key', "
                   "'snmp_priv_protocol', 'snmp_priv_key' in an [snmp] section or a host's section")
    d.add_argument("--no-snmp-public", dest="snmp_public", action="store_false",
                   help="SNMP asks only with the communities and users of --credentials, not with the "
                   "read-only 'public' community it otherwise tries (kept by --resume)")
    from scanner.ports import add_arguments as add_port_arguments

    add_port_arguments(p)  # --ports, --http-ports, ... (scanner/ports.py)
    m = p.add_argument_group("MAC addresses of routed devices (ARP sees only the scanner's own segment)")
    m.add_argument("--snmp", dest="snmp_routers", action="append", default=[], metavar="ROUTER[,ROUTER...]",
                   help="read these routers' neighbour (and forwarding) tables over SNMP v2c/v3, with the "
                   "communities and users of --credentials ([snmp] section), else 'public'")
    m.add_argument("--dhcp-leases", action="append", default=[], metavar="FILE",
                   help="take MACs from a DHCP lease file (ISC dhcpd, dnsmasq or Kea CSV)")
    m.add_argument("--neighbours", action="append", default=[], metavar="FILE",
                   help="take MACs from saved `ip neigh` or Cisco `show ip arp` output")
    s = p.add_argument_group("store and output")
    add_db_option(s, creates=True)
    s.add_argument("--site", default=None, help="a site name recorded with the scan")
    add_policy_options(s, "restriction policy (default ndaa889)", default="ndaa889")
    s.add_argument("--resume", action="store_true", help="carry on with the last incomplete scan")
    s.add_argument("--format", choices=FORMATS, default="table", help="output on stdout (default table)")
    s.add_argument("--evidence-out", default=None, metavar="FILE",
                   help="write the evidence records (format 1, JSONL) to FILE")
    s.add_argument("--fail-on", default=None, metavar="LIST",
                   help="exit 1 when the scan meets any of these comma-separated conditions: restricted, "
                        "review, relabel, unknown, component-risk, new, changed (new/changed: against the previous "
                        "complete scan of the same site), exploited (firmware in a CISA known-exploited range); "
                        "for schedulers")
    s.add_argument("--report", action="append", default=[], metavar="FORMAT:PATH",
                   help="write a report of this scan when it ends (html, json or csv; repeatable), "
                        "e.g. --report html:/srv/reports/site.html")
    s.add_argument("--notify", action="append", default=[], metavar="URL",
                   help="send an event per newly found restricted device, device that needs review, changed "
                        "firmware and device gone to URL: syslog://host[:port] (UDP), syslog+tcp://host[:port], "
                        "syslog: (the local socket) or an http(s):// webhook; repeatable; failures never fatal")
    s.add_argument("--notify-format", default="json", choices=("json", "slack", "teams"),
                   help="webhook body: the event as JSON (default), a Slack or a Teams message")
    from scanner.logs import add_log_arguments

    add_log_arguments(p)
    p.set_defaults(func=run)


def _warn(msg: str) -> None:
    print(f"camsweep: warning: {msg}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from scanner import credentials as creds_mod
    from scanner.engine import ScanOptions, run_scan
    from scanner.targets import parse_targets

    with contextlib.suppress(Exception):
        from scanner.logs import setup_logging_from_args

        setup_logging_from_args(args)
    quiet = bool(getattr(args, "quiet", False))
    from scanner.probes.registry import HOST_PROBES

    probes: tuple[str, ...] | None = None
    if args.discovery_only:
        probes = ()
    elif args.probes is not None:
        probes = tuple(x.strip() for x in args.probes.split(",") if x.strip())
        unknown = [p for p in probes if p not in HOST_PROBES]
        if unknown:
            raise CamsweepError(f"unknown probe {unknown[0]!r}; known: {', '.join(HOST_PROBES)}")
    from scanner import ports as ports_mod

    if args.resume and ports_mod.given(args):
        raise CamsweepError(f"--resume reuses the ports of the scan it carries on; {ports_mod.given(args)[0]} "
                            "cannot change them")
    port_map = ports_mod.from_args(args)
    creds = creds_mod.load(args.credentials, warn=_warn)
    from scanner.macsources import parse_router_list

    try:
        routers = tuple(parse_router_list(args.snmp_routers))
    except ValueError as exc:
        raise CamsweepError(str(exc)) from None
    opts = ScanOptions(
        interface=args.interface, exclude=tuple(args.exclude), max_hosts=args.max_hosts, rate=args.rate,
        concurrency=args.concurrency, per_host=args.per_host, timeout=args.timeout,
        host_timeout=args.host_timeout, retries=args.retries, arp=args.arp, multicast=args.multicast, icmp=args.icmp,
        workers=args.workers,
        assume_up=args.assume_up, passive=args.passive, pcap=args.pcap,
        probes=probes,
        policy=args.policy, site=args.site, resume=args.resume, credentials=creds if creds else None,
        snmp_public=args.snmp_public, ports=port_map, snmp_routers=routers, dhcp_leases=tuple(args.dhcp_leases),
        neighbours=tuple(args.neighbours),
    )
    from scanner.report import FAIL_ON_CONDITIONS, parse_report_spec

    fail_on = [c.strip() for c in (args.fail_on or "").split(",") if c.strip()]
    bad = [c for c in fail_on if c not in FAIL_ON_CONDITIONS]
    if bad:
        raise CamsweepError(f"--fail-on {bad[0]!r}: choose from {', '.join(FAIL_ON_CONDITIONS)}")
    for spec in args.report:
        parse_report_spec(spec)  # a bad spec is refused before anything is sent
    from scanner.notify import parse_destination

    notify = [parse_destination(u, args.notify_format) for u in args.notify]  # refused before anything is sent
    if args.resume:
        if args.targets or args.input_lists:
            raise CamsweepError("--resume carries on with the last incomplete scan's targets; name none")
        targets: Any = []
    else:
        targets = parse_targets(args.targets, input_lists=args.input_lists, exclude=args.exclude,
                                exclude_files=args.excludefile, max_hosts=args.max_hosts)
    store = open_store(args.db, create=True)
    try:
        scan_id = _run_with_progress(run_scan, targets, opts, store, quiet)
        devices = store.devices(scan_id)
        info = store.scan(scan_id)
        rows = _rows(devices)
        out = sys.stdout
        if args.format == "json":
            out.write(json.dumps([{k: r.get(k) for k in JSON_FIELDS} for r in rows], ensure_ascii=True,
                                 indent=2) + "\n")
        elif args.format == "csv":
            out.write(_csv(rows))
        else:
            _table(rows, out)
        if args.evidence_out:
            _write_evidence(store, scan_id, args.evidence_out)
        if not quiet:
            print(f"camsweep: scan {scan_id} {info.status}: {info.device_count} devices, "
                  f"{info.restricted_count} restricted, {info.review_count} need review (store: {store.path})",
                  file=sys.stderr)
        from scanner.report import fail_on_hits, write_report

        for spec in args.report:
            path = write_report(store, scan_id, spec, policy=args.policy)
            if not quiet:
                print(f"camsweep: report written to {path}", file=sys.stderr)
        if notify:
            _notify(store, scan_id, info, notify, quiet)
        if fail_on:
            hits = fail_on_hits(store, scan_id, fail_on)
            if hits:
                if not quiet:
                    print(f"camsweep: --fail-on met: {', '.join(hits)}", file=sys.stderr)
                return 1
        return 0
    finally:
        store.close()


def _notify(store: Any, scan_id: int, info: Any, destinations: list[Any], quiet: bool) -> None:
    """Alerts of this scan (scanner.notify); delivery failures are logged there and never change the exit code."""
    from scanner.notify import build_events, deliver

    if info.status != "complete":
        _warn(f"no alerts sent: scan {scan_id} did not complete")
        return
    try:
        events = build_events(store, scan_id)
    except Exception as exc:  # alerts are never fatal: the scan and its store stand
        print(f"camsweep: error: notify: could not build the alerts of scan {scan_id}: {exc}", file=sys.stderr)
        return
    for out in deliver(events, destinations):
        if not out.failed and not quiet:
            print(f"camsweep: notify: {out.delivered} events sent to {out.destination}", file=sys.stderr)


def _run_with_progress(run_scan: Any, targets: Any, opts: Any, store: Any, quiet: bool) -> int:
    from scanner.events import HostsFound, Progress, ScanEvent, ScanWarning

    show = not quiet and sys.stderr.isatty()
    progress = None
    task_id = None
    if show:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=Console(stderr=True), transient=True)
        task_id = progress.add_task("discovering", total=None)

    def on_event(ev: ScanEvent) -> None:
        if isinstance(ev, ScanWarning) and not quiet:
            _warn(visible(ev.message, keep="\t\n"))
        if progress is None:
            return
        if isinstance(ev, HostsFound):
            progress.update(task_id, description="probing", total=ev.count, completed=0)
        elif isinstance(ev, Progress):
            progress.update(task_id, completed=ev.done, total=ev.total)

    async def main() -> int:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, task.cancel)  # type: ignore[union-attr]
        return await run_scan(targets, opts, store, on_event=on_event)

    if progress is not None:
        with progress:
            return asyncio.run(main())
    try:
        return asyncio.run(main())
    except asyncio.CancelledError:
        raise CamsweepError("the scan was stopped; its devices so far are stored (--resume carries on)") from None


def _rows(devices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Devices in output order (the store's: restricted first), each NVR's channels right after it."""
    ip_of = {d["device_id"]: d["ip"] for d in devices}
    kids: dict[int, list[dict[str, Any]]] = {}
    top: list[dict[str, Any]] = []
    for d in devices:
        d = dict(d)
        d["parent_ip"] = ip_of.get(d.get("parent_id")) if d.get("parent_id") else None
        if d.get("parent_id") in ip_of:
            kids.setdefault(d["parent_id"], []).append(d)
        else:
            top.append(d)
    out: list[dict[str, Any]] = []
    for d in top:
        out.append(d)
        out.extend(sorted(kids.get(d["device_id"], []), key=lambda k: _chan_key(k.get("channel"))))
    return out


def _chan_key(ch: Any) -> tuple[int, str]:
    s = str(ch or "")
    return (int(s), s) if s.isdigit() else (1 << 30, s)


def _flag(v: Any) -> str:
    return "yes" if v is True else "no" if v is False else "unknown"


def _table(rows: list[dict[str, Any]], out: Any) -> None:
    from rich.markup import escape

    from scanner.commands.table import cell, print_rich_table

    def text(v: Any, limit: int = 60) -> str:
        return cell(v, limit, empty="")

    table, styles = [], []
    for r in rows:
        ip = text(r.get("ip"))
        if r.get("parent_ip"):
            ip = f"  └ ch {text(r.get('channel'), 8)} {ip}".rstrip()
        restricted = _flag(r.get("restricted"))
        lists = [str(x) for x in r.get("lists") or []]
        if r.get("restricted") and lists:
            restricted += f" ({', '.join(lists[:2])}{f' +{len(lists) - 2}' if len(lists) > 2 else ''})"
        review = r.get("review")
        if review and r.get("restricted"):
            restricted += ", needs review"
        elif review:
            restricted = f"needs review ({text(review.get('maker'), 30)}?)"
        styles.append("bold red" if r.get("restricted") else "yellow" if review else None)
        table.append([escape(x) for x in (
            ip, text(r.get("mac")), text(r.get("manufacturer")), text(r.get("brand")), text(r.get("model")),
            text(r.get("device_type")), restricted, f"{(r.get('confidence') or 0):.2f}")])
    print_rich_table(("IP", "MAC", "Maker", "Brand", "Model", "Type", "Restricted", "Conf."), table, out,
                     styles=styles)


def _csv(rows: list[dict[str, Any]]) -> str:
    from scanner.report.escape import spreadsheet_cell

    buf = io.StringIO()
    cols = ("ip", "mac", "manufacturer", "brand", "model", "firmware", "device_type", "restricted", "lists",
            "confidence", "parent_ip", "channel", "review")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        vals = []
        for c in cols:
            v = r.get(c)
            if c == "restricted":
                v = _flag(v)
            elif c == "lists":
                v = ";".join(v or [])
            elif c == "confidence":
                v = f"{(v or 0):.3f}"
            elif c == "review":
                v = (v or {}).get("maker")
            vals.append(spreadsheet_cell(v))
        w.writerow(vals)
    return buf.getvalue()


def _write_evidence(store: Any, scan_id: int, path: str) -> None:
    from scanner.evidence import dump_record
    from scanner.private import open_private

    try:
        fh = sys.stdout if path == "-" else open_private(path, "w", encoding="utf-8")
    except OSError as exc:
        raise CamsweepError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        for dev_id, rec in store.observations(scan_id):
            d = json.loads(dump_record(rec))
            d.setdefault("id", f"device:{dev_id}")
            fh.write(json_safe(json.dumps(d, ensure_ascii=False, separators=(",", ":"))) + "\n")
    finally:
        if fh is not sys.stdout:
            fh.close()
