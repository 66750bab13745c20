"""`camsweep tui`: the Textual interface over a store (devices, evidence, plans; scans from inside it)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from scanner.commands.options import add_db_option, add_policy_options, open_store
from scanner.errors import CamsweepError


def register(sub: Any) -> None:
    p = sub.add_parser("tui", help="open the terminal interface over a store",
                       description="Browse the devices of a store, see why each was flagged, keep notes, plan "
                       "replacements and start scans. Press ? inside for the keys.")
    add_db_option(p, creates=True)  # it starts scans: a first one may be started from inside
    add_policy_options(p, "policy profile for plan suggestions (default: the latest scan's)", catalog=True)
    p.set_defaults(func=cmd_tui)


def cmd_tui(args: argparse.Namespace) -> int:
    if args.catalog and not Path(args.catalog).is_file():
        raise CamsweepError(f"no catalog at {args.catalog}")
    from scanner import plan as planlib

    # check the arguments and open the store once here so that a bad one is a one-line error, not a broken screen
    catalog = planlib.load_catalog(args.catalog)
    if args.policy:
        planlib.check_policy(catalog, args.policy)
    open_store(args.db, create=True).close()
    from tui.app import run

    run(args.db, policy=args.policy, catalog_path=args.catalog)
    return 0
