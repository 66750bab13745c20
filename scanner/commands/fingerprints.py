"""`camsweep fingerprints`: the fingerprint sources identify uses, and refreshing Recog's.

- ``camsweep fingerprints info [--json]``: each source (camsweep's own rules, Recog's XML, the IEEE
  MAC registry) with its version (commit and date, or build) and counts.
- ``camsweep fingerprints update --recog DIR``: replace the shipped Recog files with those of a Recog
  checkout's ``xml/`` directory, after checking that every file camsweep uses is there, parses (safely)
  and passes its own examples; the commit and date come from git when DIR is a checkout, or from a
  README that names them (``--commit``/``--date`` override). Nothing is replaced when a check fails.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from scanner.commands.options import add_actions


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fingerprints", help="show the fingerprint sources and their versions; refresh Recog's")
    fsub = add_actions(p, "fingerprints_command")
    info = fsub.add_parser("info", help="each fingerprint source with its version and counts")
    info.add_argument("--json", action="store_true", help="one JSON object instead of text")
    info.set_defaults(func=run_info)
    up = fsub.add_parser("update", help="refresh the Recog fingerprints from a Recog checkout")
    up.add_argument("--recog", type=Path, required=True, metavar="DIR",
                    help="a Recog checkout's xml/ directory (https://github.com/rapid7/recog)")
    up.add_argument("--output", type=Path, default=None, metavar="DIR",
                    help="where to install (default: the package's fingerprints/third_party/recog)")
    up.add_argument("--commit", default=None, help="the Recog commit, when DIR does not say")
    up.add_argument("--date", default=None, help="the date of that commit (YYYY-MM-DD), when DIR does not say")
    up.set_defaults(func=run_update)


def sources(db) -> list[dict]:  # type: ignore[no-untyped-def]
    """The sources and their versions, as `info` prints them (also used by tests)."""
    own_examples = sum(len(r.examples) for r in db.rules)
    families = sorted({r.family for r in db.rules})
    recog_vendor_ids = {v["id"] for v in db.recog.vendor_map.own}
    meta = db.recog.meta
    return [
        {"source": "camsweep rules", "version": _scanner_version(), "rules": len(db.rules),
         "examples": own_examples, "families": len(families),
         "vendors": len([v for v in db.vendors if v not in recog_vendor_ids]), "lists": len(db.lists),
         "policies": len(db.policies())},
        {"source": "Recog", "project": meta.get("project", "rapid7/recog"), "commit": meta.get("commit"),
         "date": meta.get("date"), "files": len(db.recog.files),
         "fingerprints": sum((meta.get("fingerprints") or {}).values()),
         "per_file": meta.get("fingerprints") or {}, "examples": meta.get("examples"),
         "uncompiled": meta.get("uncompiled"), "own_vendors": len(recog_vendor_ids)},
        {"source": "IEEE MAC registry", "version": db.oui.label, "blocks": db.oui.size},
    ]


def _scanner_version() -> str:
    from scanner import __version__

    return __version__


def run_info(args: argparse.Namespace) -> int:
    from fingerprints import load_database

    db = load_database()
    out = sources(db)
    if args.json:
        print(json.dumps({"version": db.version, "sources": out}, indent=2))
        return 0
    own, rec, mac = out
    print(f"camsweep rules     camsweep {own['version']}: {own['rules']} rules ({own['examples']} examples, "
          f"{own['families']} families), {own['vendors']} vendors, {own['lists']} lists, {own['policies']} policies")
    print(f"Recog              {rec['project']} {rec['commit']} ({rec['date']}): {rec['fingerprints']} fingerprints "
          f"in {rec['files']} files, {rec['examples']} examples, {rec['uncompiled']} not compilable; "
          f"{rec['own_vendors']} vendors of its own")
    for name, n in rec["per_file"].items():
        print(f"                     {name:28} {n:5}")
    print(f"IEEE MAC registry  {mac['version']}: {mac['blocks']} blocks")
    return 0


def run_update(args: argparse.Namespace) -> int:
    from fingerprints import recog

    meta, reports = recog.update(args.recog, args.output or recog.RECOG_DIR, args.commit, args.date)
    for r in reports:
        extra = f", {len(r.uncompiled)} not compilable" if r.uncompiled else ""
        print(f"{r.file}: {r.fingerprints} fingerprints, {r.examples} examples pass{extra}", file=sys.stderr)
        for index, pattern, why in r.uncompiled:
            print(f"  fingerprint {index}: {pattern[:80]!r}: {why}", file=sys.stderr)
    print(f"installed Recog {meta['commit']} ({meta['date']}): {sum(meta['fingerprints'].values())} fingerprints "
          f"in {len(meta['fingerprints'])} files to {args.output or recog.RECOG_DIR}")
    return 0
