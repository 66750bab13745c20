"""`camsweep tui`: the Textual interface over a store (devices, evidence, plans; scans from inside it)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from scanner.errors import CamsweepError


def register(sub: Any) -> None:
    p = sub.add_parser("tui", help="open the terminal interface over a store",
                       description="Browse the devices of a store, see why each was flagged, keep notes, plan "
                       "replacements and start scans. Press ? inside for the keys.")
    p.add_argument("--db", metavar="PATH|URL",
                   help="the store: a file or a postgresql:// URL (default: $CAMSWEEP_DB or the user data dir)")
    p.add_argument("--policy", help="policy profile for plan suggestions (default: the latest scan's)")
    p.add_argument("--policy-file", metavar="FILE",
                   help="your own lists and policies (YAML; see README); --policy names one")
    p.add_argument("--catalog", metavar="PATH", help="a replacement catalog YAML overriding the shipped one")
    p.set_defaults(func=cmd_tui)


def cmd_tui(args: argparse.Namespace) -> int:
    if args.catalog and not Path(args.catalog).is_file():
        raise CamsweepError(f"no catalog at {args.catalog}")
    from scanner import plan as planlib
    from scanner.store import Store

    # open both once here so that a bad path or catalog is a one-line error, not a broken screen
    Store(args.db).close()
    catalog = planlib.load_catalog(args.catalog)
    if args.policy:
        planlib.check_policy(catalog, args.policy)
    from tui.app import run

    run(args.db, policy=args.policy, catalog_path=args.catalog)
    return 0
