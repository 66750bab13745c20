"""`camsweep diff`: new, gone and changed devices between two stored scans."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from scanner.commands.options import add_db_option, open_store
from scanner.errors import CamsweepError
from scanner.logs import add_log_arguments, setup_logging_from_args
from scanner.store import ScanInfo, Store

log = logging.getLogger("camsweep.diff")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "diff", help="new, gone and changed devices between two scans",
        description="Compare two stored scans: devices that are new, gone, or changed (firmware, IP, "
        "restriction, maker, model). Devices are matched on MAC, then serial, then (last resort, said so) IP.",
        epilog="Examples: camsweep diff 3 7 | camsweep diff --since 7d --site hq --format json. "
        "Exit codes: 0 (with --exit-code: 0 no difference, 1 differences), 2 error.")
    p.add_argument("scans", nargs="*", type=int, metavar="SCAN", help="two scan ids, older first")
    p.add_argument("--since", metavar="AGE",
                   help="compare the state at that time (the last complete scan before it, else the first "
                   "after it) with the latest complete scan: 7d, 12h, 2w or a date")
    p.add_argument("--site", help="only scans of this site label: alone, the last two complete scans of the site; "
                   "with --since, that site's (default: the latest scan's site); with two ids, both must be of it")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--exit-code", action="store_true", help="exit 1 when there are differences (for scripts)")
    add_db_option(p, creates=False)
    add_log_arguments(p)
    p.set_defaults(func=run)


def pick_since(store: Store, since_iso: str, site: str | None) -> tuple[int, int]:
    """(old, new) scan ids for ``--since``: see the --since help text."""
    complete = [s for s in store.scans() if s.status == "complete"]
    if site is None and complete:
        site = complete[-1].site
    same = [s for s in complete if s.site == site]
    if not same:
        raise CamsweepError(f"no complete scan{' of site ' + repr(site) if site else ''} in the store")
    new = same[-1]
    before = [s for s in same if s.started_at < since_iso]
    after = [s for s in same if s.started_at >= since_iso]
    old = before[-1] if before else after[0]
    if old.id == new.id:
        raise CamsweepError(f"only one complete scan{' of site ' + repr(site) if site else ''} covers that "
                            f"period (scan {new.id}); nothing to compare")
    return old.id, new.id


def _describe(s: ScanInfo) -> str:
    return f"scan {s.id} ({s.started_at[:16].replace('T', ' ')}{', site ' + s.site if s.site else ''})"


def run(args: argparse.Namespace) -> int:
    setup_logging_from_args(args)
    from scanner.diff import build_scan_diff, format_scan_diff, parse_since
    from scanner.report.escape import visible_text

    if args.since and args.scans:
        raise CamsweepError("give either two scan ids or --since, not both")
    if not args.since and len(args.scans) != 2 and not (args.site and not args.scans):
        raise CamsweepError("give two scan ids (camsweep diff 3 7), --since 7d or --site NAME")
    store = open_store(args.db, create=False)
    try:
        if args.since:
            try:
                since_iso = parse_since(args.since)
            except ValueError as exc:
                raise CamsweepError(str(exc)) from None
            a, b = pick_since(store, since_iso, args.site)
        elif not args.scans:
            same = [s for s in store.scans(site=args.site) if s.status == "complete" and s.site == args.site]
            if len(same) < 2:
                raise CamsweepError(f"site {args.site!r} has {len(same)} complete scan(s); diff needs two")
            a, b = same[-2].id, same[-1].id
        else:
            a, b = args.scans
        sa, sb = store.scan(a), store.scan(b)
        if args.site and args.scans and (sa.site != args.site or sb.site != args.site):
            raise CamsweepError(f"scans {a} and {b} are not both of site {args.site!r}")
        for s in (sa, sb):
            if s.status != "complete":
                log.warning("scan %s is %s: devices it missed show as gone or new", s.id, s.status)
        if sa.site != sb.site:
            log.warning("comparing scans of different sites (%s, %s)", sa.site or "none", sb.site or "none")
        diff = build_scan_diff(store.devices(scan_id=a), store.devices(scan_id=b))
        if diff.matched_on.get("ip"):
            log.info("%d devices were matched on IP only (no MAC or serial on one side)", diff.matched_on["ip"])
        if args.format == "json":
            out = {"old_scan": a, "new_scan": b, **diff.to_dict()}
            sys.stdout.write(json.dumps(out, ensure_ascii=True, indent=2) + "\n")
        else:
            for line in format_scan_diff(diff, _describe(sa), _describe(sb)):
                print(visible_text(line, 4096))
        return 1 if args.exit_code and not diff.is_empty() else 0
    finally:
        store.close()
