"""`camsweep push`: send a sensor's finished scans to the central store."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from scanner.commands.options import add_db_option, check_store_file, open_store
from scanner.errors import CamsweepError
from scanner.logs import add_log_arguments, setup_logging_from_args

log = logging.getLogger("camsweep.push")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "push", help="send this sensor's scans to a central (PostgreSQL) store",
        description="Send every finished scan of the local store that the central store has not got yet, "
        "each in one transaction keyed by the scan's id: pushing twice changes nothing, and a push that is "
        "killed or loses its connection is completed by the next one. Credentials come the libpq way "
        "(PGPASSWORD, PGSERVICEFILE / ~/.pg_service.conf with service=NAME, ~/.pgpass); they are never "
        "stored or printed, and URLs are shown with the password masked.",
        epilog="Example: camsweep scan 10.1.0.0/24 --site branch-7 --db /var/lib/camsweep/local.db && "
        "camsweep push --db /var/lib/camsweep/local.db --to 'postgresql://camsweep@central/camsweep'. "
        "Exit codes: 0 all finished scans pushed, 1 some wait for the next push (central store unreachable "
        "or the connection failed), 2 error.")
    p.add_argument("--to", required=True, metavar="URL",
                   help="the central store: postgresql://[user@]host[:port]/db or postgresql:///db?service=NAME "
                   "(another store path also works)")
    add_db_option(p, creates=False, what="the local store")
    p.add_argument("--format", choices=("text", "json"), default="text", help="summary on stdout")
    add_log_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    setup_logging_from_args(args)
    from scanner.errors import StoreError
    from scanner.pgstore import mask_url
    from scanner.push import PushResult, push

    local = open_store(args.db, create=False)
    try:
        if args.to == local.path:
            raise CamsweepError("--to names the local store itself")
        check_store_file(args.to, create=True)  # a directory or another program's database: no use retrying
        try:
            central = open_store(args.to, create=True, recover=False)
        except StoreError as exc:
            pending = [s.id for s in local.scans() if s.status != "running"]
            log.error("%s; the local scans wait for the next push", exc)
            result = PushResult(target=mask_url(args.to), failed=pending, error=str(exc))
        else:
            try:
                result = push(local, central, args.to)
            finally:
                central.close()
    finally:
        local.close()
    if args.format == "json":
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        print(f"{len(result.pushed)} scans pushed, {len(result.already)} already there, "
              f"{len(result.waiting)} still running, {len(result.failed)} waiting for the next push "
              f"(central: {result.target})")
    return 1 if result.failed else 0
