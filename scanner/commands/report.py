"""`camsweep report`: write an HTML, JSON or CSV report of a stored scan."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

from scanner.commands import options
from scanner.errors import CamsweepError
from scanner.logs import add_log_arguments, setup_logging_from_args

if TYPE_CHECKING:
    from scanner.store import Store

log = logging.getLogger("camsweep.report")
FORMATS = ("html", "json", "csv", "pdf")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="write an HTML, JSON, CSV or PDF report of a scan",
        description="Write a report of one stored scan: HTML (one self-contained, printable file), JSON "
        "(schema scanner/report/schema/report-v1.json), CSV, or PDF (the HTML printed by headless Chromium). "
        "Reads only the store.",
        epilog="Exit codes: 0 written (and no --fail-on condition met), 1 a --fail-on condition met, "
        "2 error. Example: camsweep report --latest --site hq --format html -o hq.html --fail-on restricted")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--scan", type=int, metavar="ID", help="the scan to report (see --list)")
    which.add_argument("--latest", action="store_true", help="the latest scan (the default)")
    which.add_argument("--list", action="store_true", help="list the stored scans and exit")
    which.add_argument("--org", action="store_true",
                       help="the whole organisation: the latest scan of every site together, each device once, "
                       "with per-site totals")
    p.add_argument("--site", help="with --latest or --list: only scans of this site label")
    p.add_argument("--since", metavar="AGE", help="with --list: only scans started since (7d, 12h, 2026-11-01)")
    options.add_format_option(p, FORMATS, "html", "report")
    options.add_output_option(p)
    options.add_policy_options(p, "evaluate restriction under this policy instead of the scan's own")
    p.add_argument("--fail-on", action="append", default=[], metavar="COND",
                   help="exit 1 when the scan has: restricted, review (needs review), relabel, unknown, "
                   "component-risk, new or changed devices, exploited (known-exploited firmware) (new/changed: against the previous scan of the same "
                   "site); repeatable or comma-separated")
    options.add_db_option(p, creates=False)
    add_log_arguments(p)
    p.set_defaults(func=run)


def _list(store: Store, site: str | None, since: str | None) -> int:
    from scanner.commands.table import cell, format_table
    from scanner.diff import parse_since

    try:
        since_iso = parse_since(since) if since else None
    except ValueError as exc:
        raise CamsweepError(str(exc)) from None
    scans = store.scans(site=site, since=since_iso)
    if not scans:
        print("no scans stored", file=sys.stderr)
        return 0
    rows = [[str(s.id), s.started_at[:19], cell(s.status, 12), cell(s.site or None, 12), str(s.device_count),
             str(s.restricted_count), cell(", ".join(s.targets), 80)] for s in scans]
    print(format_table(("id", "started (UTC)", "status", "site", "devices", "restricted", "targets"), rows,
                       right=("id", "devices", "restricted")))
    return 0


def _org_hits(model: dict, conditions: list[str]) -> list[str]:
    from scanner.report import FAIL_ON_CONDITIONS

    bad = [c for c in conditions if c not in FAIL_ON_CONDITIONS or c in ("new", "changed")]
    if bad:
        raise CamsweepError(f"--fail-on {bad[0]!r} with --org: choose from restricted, review, relabel, unknown, "
                            "component-risk")
    s = model["summary"]
    counts = {"restricted": s["restricted"], "review": s.get("needs_review", 0), "unknown": s["unknown"],
              "relabel": s["relabels"], "component-risk": s.get("component_risk", 0)}
    return [f"{c} ({counts[c]})" for c in conditions if counts.get(c)]


def run(args: argparse.Namespace) -> int:
    setup_logging_from_args(args)
    from scanner.report import (
        build_report_model,
        fail_on_hits,
        render_report,
        resolve_scan_id,
        write_text_atomic,
    )

    conditions = [c.strip() for v in args.fail_on for c in v.split(",") if c.strip()]
    store = options.open_store(args.db, create=False)
    try:
        if args.list:
            return _list(store, args.site, args.since)
        fmt = options.chosen_format(args, FORMATS, "html")
        if args.org:
            if args.site:
                raise CamsweepError("--org covers every site; use --site without --org for one site")
            from scanner.report.model import build_org_report_model

            model = build_org_report_model(store, args.policy)
            scan_id = model["scan"]["id"]
            hits = _org_hits(model, conditions)
        else:
            scan_id = resolve_scan_id(store, args.scan, args.site)
            hits = fail_on_hits(store, scan_id, conditions) if conditions else []  # checks the names first
            model = build_report_model(store, scan_id, args.policy)
        write_text_atomic(args.output, render_report(model, fmt))
        s = model["summary"]
        log.info("report written", extra={"path": args.output, "format": fmt, "scan_id": scan_id,
                                          "devices": s["devices"], "restricted": s["restricted"]})
        if hits:
            log.warning("fail-on condition met: %s", ", ".join(hits), extra={"scan_id": scan_id})
            return 1
        return 0
    finally:
        store.close()
