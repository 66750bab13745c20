"""`camsweep export`: block lists of restricted (and optionally needs-review) devices of a stored scan:
``--format macs|ips|nac-csv|nft``. Files are written with mode 0600, whole (a temporary file renamed into
place); the order is deterministic (scanner/blocklist.py)."""

from __future__ import annotations

import argparse
import sys

from scanner.commands.options import add_db_option, add_output_option, open_store
from scanner.errors import CamsweepError
from scanner.private import write_whole


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="block lists of restricted devices (MACs, IPs, NAC CSV, nftables set)",
        description="Write a block list of the restricted devices (and, with --include-review, those that "
        "need review) of a stored scan, for a NAC or firewall while their replacement is pending.",
        epilog="Formats: macs (one MAC a line), ips (one address a line), nac-csv (MAC,group,description for "
        "NAC endpoint import), nft (an nftables file with the sets blocked_mac, blocked_ipv4, blocked_ipv6; "
        "load with nft -f). Cameras behind a recorder's PoE ports are left out (--include-channels lists them by "
        "MAC, never by their internal address). Exit codes: 0 written, 2 error.")
    p.add_argument("--format", "-f", required=True, choices=("macs", "ips", "nac-csv", "nft"))
    which = p.add_mutually_exclusive_group()
    which.add_argument("--scan", type=int, metavar="ID", help="the scan to export (default: the latest)")
    which.add_argument("--latest", action="store_true", help="the latest scan (of --site, when given)")
    p.add_argument("--site", help="the latest scan of this site (its devices)")
    p.add_argument("--include-review", action="store_true",
                   help="also the devices that need review (the evidence points at a restricted maker)")
    p.add_argument("--include-channels", action="store_true",
                   help="also the cameras on recorders' PoE ports (by MAC, when the recorder reported it); "
                        "left out by default: they are not on the network, and blocking the recorder cuts them off")
    add_output_option(p)
    p.add_argument("--nac-group", default="camsweep-restricted", metavar="NAME",
                   help="nac-csv: the endpoint group of restricted devices (default camsweep-restricted)")
    p.add_argument("--nac-review-group", default="camsweep-review", metavar="NAME",
                   help="nac-csv: the group of devices that need review (default camsweep-review)")
    p.add_argument("--nft-table", default="camsweep", metavar="NAME",
                   help="nft: the table (family inet) holding the sets (default camsweep)")
    add_db_option(p, creates=False)
    p.set_defaults(func=run)


def write_private(path: str, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600, whole: a temporary file in the same directory, renamed."""
    try:
        write_whole(path, text.encode("utf-8"))
    except IsADirectoryError:
        raise CamsweepError(f"{path} is a directory; give a file name") from None
    except OSError as exc:
        raise CamsweepError(f"cannot write {path}: {exc.strerror or exc}") from None


def run(args: argparse.Namespace) -> int:
    from scanner.blocklist import build_blocklist, select_devices
    from scanner.report.model import resolve_scan_id

    with open_store(args.db, create=False) as store:
        scan_id = resolve_scan_id(store, args.scan, args.site)
        rows = store.devices(scan_id=scan_id)
        chosen = select_devices(rows, include_review=args.include_review, include_channels=args.include_channels)
        what = "restricted and needs-review" if args.include_review else "restricted"
        title = f"camsweep export: {what} devices of scan {scan_id}" + (f" (site {args.site})" if args.site else "")
        try:
            text = build_blocklist(chosen, args.format, group=args.nac_group, review_group=args.nac_review_group,
                                   table=args.nft_table, title=title)
        except ValueError as exc:
            raise CamsweepError(str(exc)) from None
    if args.output == "-":
        sys.stdout.write(text)
    else:
        write_private(args.output, text)
        print(f"camsweep: {len(chosen)} {what} devices of scan {scan_id} written to {args.output}",
              file=sys.stderr)
    return 0
