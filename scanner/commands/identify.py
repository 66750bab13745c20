"""`camsweep identify PATH|-`: identify device evidence records (shared/evidence-format.md).

stdout: one result per input record, in input order (``--format jsonl``) or a table. stderr: one
line per record that cannot be read, naming its line number. Exit 0 when every line parsed, 2 when
some did not (the others are still answered).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Iterator

from scanner.errors import CamsweepError
from scanner.evidence import EvidenceError, Identification

MAX_LINE_BYTES = 4 * 1024 * 1024


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("identify", help="identify the makers of devices from evidence records (JSONL)",
                       description="Read device evidence records (JSON Lines, shared/evidence-format.md) and "
                       "print who really made each device, whether the policy restricts it, and why.")
    p.add_argument("path", metavar="PATH", help="JSONL file of evidence records, or - for standard input")
    p.add_argument("--format", choices=("jsonl", "table"), default="jsonl", help="output format (default: jsonl)")
    p.add_argument("--policy", default=None,
                   help="policy profile that decides 'restricted' (default: ndaa889; see fingerprints/policies.yaml)")
    p.add_argument("--from", dest="input_format", choices=("jsonl", "nmap-xml", "pcap"), default="jsonl",
                   help="what PATH holds: evidence records (jsonl, the default), an nmap -oX file (nmap-xml) or a "
                   "pcap/pcapng capture (pcap); the last two are turned into evidence records first")
    p.set_defaults(func=run)


def _bounded_lines(stream) -> Iterator[str]:
    """Lines of a text stream, never holding more than MAX_LINE_BYTES of one line: an over-long line
    is skipped to its end and replaced by a marker the parser rejects with a clear message."""
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if len(line) > MAX_LINE_BYTES and not line.endswith("\n"):
            while True:  # drain the rest of the over-long line
                rest = stream.readline(1024 * 1024)
                if not rest or rest.endswith("\n"):
                    break
            yield "\x00" * (MAX_LINE_BYTES + 1)
            continue
        yield line


def _open(path: str):
    if path == "-":
        return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace") \
            if hasattr(sys.stdin, "buffer") else sys.stdin
    try:
        return open(path, encoding="utf-8", errors="replace", newline=None)
    except OSError as exc:
        raise CamsweepError(f"cannot read {path}: {exc.strerror or exc}") from None


def records_from_input(path: str, input_format: str = "jsonl") -> Iterator[tuple[int, object]]:
    """(line number, EvidenceRecord or EvidenceError) from a JSONL path or '-'.

    The place where other input formats (nmap XML, pcap) plug in: each yields records the same way.
    """
    if input_format != "jsonl":  # nmap XML or a capture: scanner/probes/offline.py
        from scanner.probes.offline import read_evidence

        yield from read_evidence(input_format, path)
        return
    from scanner.evidence import read_records

    f = _open(path)
    try:
        yield from read_records(_bounded_lines(f))
    finally:
        if path != "-":
            f.close()


class JsonlWriter:
    """``json.dumps(ident.to_dict(), ensure_ascii=False)``, byte for byte, faster: a fleet repeats the
    same evidence hits (the identifier shares them between records), so each hit is encoded once, and
    the other fields (strings, lists of strings, booleans, a number) are written with json's own string
    encoder instead of a new encoder per record."""

    def __init__(self) -> None:
        from json.encoder import encode_basestring

        self._hits: dict[object, str] = {}
        self._dumps = json.JSONEncoder(ensure_ascii=False).encode
        self._str = encode_basestring

    def _value(self, v: object) -> str:
        if type(v) is str:
            return self._str(v)
        if v is None:
            return "null"
        if v is True:
            return "true"
        if v is False:
            return "false"
        if type(v) is float and v == v and v not in (float("inf"), float("-inf")):
            return float.__repr__(v)
        return self._dumps(v)

    def _strings(self, items: tuple[str, ...]) -> str:
        if all(type(x) is str for x in items):
            enc = self._str
            return "[" + ", ".join([enc(x) for x in items]) + "]"
        return self._dumps(list(items))

    def line(self, ident: Identification) -> str:
        if type(ident) is not Identification:  # a subclass may shape its output differently
            return self._dumps(ident.to_dict())
        hits = self._hits
        frags = []
        for e in ident.evidence:
            frag = hits.get(e)
            if frag is None:
                frag = self._dumps(e.to_dict())
                if len(hits) >= 50_000:
                    hits.clear()
                hits[e] = frag
            frags.append(frag)
        v, enc = self._value, self._str
        return (f"{{\"id\": {v(ident.id)}, \"manufacturer\": {v(ident.manufacturer)}, \"brand\": {v(ident.brand)}, "
                f"\"model\": {v(ident.model)}, \"firmware\": {v(ident.firmware)}, "
                f"\"device_type\": {v(ident.device_type)}, \"restricted\": {v(ident.restricted)}, "
                f"\"lists\": {self._strings(ident.lists)}, \"confidence\": {v(round(ident.confidence, 3))}, "
                f"\"evidence\": [{', '.join(frags)}], \"serial\": {v(ident.serial)}, "
                f"\"component_risk\": {self._strings(ident.component_risk)}, "
                f"\"notes\": {self._strings(ident.notes)}}}")


def run(args: argparse.Namespace) -> int:
    import gc

    from scanner.identify import Identifier

    identifier = Identifier(args.policy)
    gc.freeze()  # the fingerprint database lives for the process: keep it out of every collection
    bad = 0
    results: list[Identification] = []
    out = sys.stdout
    writer = JsonlWriter()
    jsonl = args.format == "jsonl"
    for n, item in records_from_input(args.path, getattr(args, "input_format", "jsonl")):
        if isinstance(item, EvidenceError):
            bad += 1
            print(f"camsweep: line {n}: {item}", file=sys.stderr)
            continue
        ident = identifier.identify(item)
        if jsonl:
            out.write(writer.line(ident) + "\n")
        else:
            results.append(ident)
    if args.format == "table":
        legal = {lid for lid, spec in identifier.db.lists.items() if spec.get("legal")}
        render_table(results, identifier.policy_name, legal)
    out.flush()
    if bad:
        print(f"camsweep: {bad} line(s) could not be read", file=sys.stderr)
    return 2 if bad else 0


def render_table(results: list[Identification], policy: str, legal: set[str]) -> None:
    """A rich table; the lists column shows the statutory lists (the JSONL output has them all)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"camsweep identify (policy {policy})", show_lines=False)
    for col in ("id", "manufacturer", "brand", "model", "type", "restricted", "legal lists", "conf.", "strongest evidence"):
        table.add_column(col, overflow="fold")
    for r in results:
        flag = {True: "[bold red]yes[/]", False: "no", None: "unknown"}[r.restricted]
        ev = r.evidence[0].rule if r.evidence else ""
        table.add_row(_esc(r.id or ""), _esc(r.manufacturer or "-"), _esc(r.brand or "-"), _esc(r.model or "-"),
                      r.device_type or "-", flag, ", ".join(x for x in r.lists if x in legal), f"{r.confidence:.2f}",
                      _esc(ev))
    Console(file=sys.stdout, soft_wrap=False).print(table)


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape("".join(c if c.isprintable() else "?" for c in text)[:80])
