"""`camsweep oui`: the IEEE MAC registry table identify uses.

- ``camsweep oui update PATH_OR_URL...`` merges IEEE registry CSV files (oui.csv, mam.csv,
  oui36.csv, iab.csv from https://standards-oui.ieee.org/, or Debian's /usr/share/ieee-data) and
  camsweep/overlay TSVs into the table, later sources winning, and writes it (default: the user's
  data directory, which the loader prefers over the packaged copy).
- ``camsweep oui lookup MAC...`` prints the registrant and the maker camsweep maps it to.
- ``camsweep oui info`` prints which table is in use.

The packaged table (fingerprints/data/oui.tsv.gz) is rebuilt with::

    camsweep oui update --fresh --output fingerprints/data/oui.tsv.gz \\
        /usr/share/ieee-data/oui.csv /usr/share/ieee-data/mam.csv /usr/share/ieee-data/oui36.csv \\
        /usr/share/ieee-data/iab.csv [OVERLAY.tsv]

(an overlay TSV, with ``oui`` and ``ieee_org_name`` columns, adds blocks newer than the IEEE files)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from scanner.commands.options import add_actions


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("oui", help="show or refresh the IEEE MAC registry table (MA-L, MA-M, MA-S)")
    osub = add_actions(p, "oui_command")
    up = osub.add_parser("update", help="merge IEEE CSV files (paths or URLs) into the MAC registry table")
    up.add_argument("sources", nargs="+", metavar="PATH_OR_URL",
                    help="IEEE registry CSV (Registry,Assignment,Organization Name,Organization Address), "
                    "or a camsweep/overlay TSV; .gz accepted")
    up.add_argument("--output", type=Path, default=None,
                    help="where to write the table (default: the user data directory; identify prefers it)")
    up.add_argument("--fresh", action="store_true", help="start from an empty table instead of the current one")
    up.set_defaults(func=run_update)
    lk = osub.add_parser("lookup", help="look up MAC addresses")
    lk.add_argument("macs", nargs="+", metavar="MAC")
    lk.set_defaults(func=run_lookup)
    info = osub.add_parser("info", help="which table is in use")
    info.set_defaults(func=run_info)


def run_update(args: argparse.Namespace) -> int:
    from fingerprints import oui

    current = oui.OuiTable.load()
    base: dict[str, oui.OuiEntry] = {}
    if not args.fresh:
        for n, d in current.by_len.items():
            for prefix, org in d.items():
                base[prefix] = oui.OuiEntry(prefix, oui._REGISTRY_BY_LEN[n], org)
    parsed, labels = [], []
    for ref in args.sources:
        text, label = oui.read_source(ref)
        entries = oui.parse_source(text, label)
        if not entries:
            print(f"camsweep: {label}: no registry rows found", file=sys.stderr)
            return 2
        print(f"{label}: {len(entries)} blocks", file=sys.stderr)
        parsed.append(entries)
        labels.append(label)
    table = oui.build_table(parsed, base)
    out = args.output or oui.user_table_path()
    oui.write_table(table, out, labels if args.fresh else [current.label, *labels])
    print(f"wrote {len(table)} blocks to {out}")
    return 0


def run_lookup(args: argparse.Namespace) -> int:
    from fingerprints import load_database
    from scanner.evidence import normalize_mac

    db = load_database()
    bad = 0
    for mac in args.macs:
        norm = normalize_mac(mac)
        if norm is None:
            print(f"camsweep: not a MAC address: {mac[:40]!r}", file=sys.stderr)
            bad += 1
            continue
        found = db.lookup_oui(norm)
        registrant, maker = found if found else (None, None)
        print(json.dumps({"mac": norm, "registrant": registrant, "maker": maker}))
    return 2 if bad else 0


def run_info(args: argparse.Namespace) -> int:
    from fingerprints import load_database

    db = load_database()
    print(json.dumps({"table": db.oui.label, "blocks": db.oui.size, "database": db.version}))
    return 0
