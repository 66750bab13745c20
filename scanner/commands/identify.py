"""`camsweep identify PATH|-`: identify device evidence records (docs/evidence-format.md).

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
from typing import Any

from scanner.devtext import json_safe
from scanner.errors import CamsweepError
from scanner.evidence import EvidenceError, EvidenceHit, Identification

MAX_LINE_BYTES = 4 * 1024 * 1024


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("identify", help="identify the makers of devices from evidence records (JSONL)",
                       description="Read device evidence records (JSON Lines, docs/evidence-format.md) and "
                       "print who really made each device, whether the policy restricts it, and why.")
    p.add_argument("path", metavar="PATH", help="JSONL file of evidence records, or - for standard input")
    p.add_argument("--format", choices=("jsonl", "table"), default="jsonl", help="output format (default: jsonl)")
    p.add_argument("--policy", default=None,
                   help="policy profile that decides 'restricted' (default: ndaa889; see fingerprints/policies.yaml)")
    p.add_argument("--policy-file", metavar="FILE",
                   help="your own lists and policies (YAML; see README); --policy names one")
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
    same evidence hits (the identifier shares them between records) and the same lists and notes, so
    each is encoded once; the other fields are strings, None, a boolean and a number, written with
    json's own string encoder. Anything else falls back to json.dumps."""

    def __init__(self) -> None:
        from json.encoder import encode_basestring

        self._hits: dict[int, tuple[object, str]] = {}
        self._tuples: dict[tuple[str, ...], str] = {}
        self._dumps = json.JSONEncoder(ensure_ascii=False).encode
        self._str = encode_basestring

    def _strings(self, items: tuple[str, ...]) -> str:
        try:
            out = self._tuples.get(items)
        except TypeError:  # an unhashable item: encode it as it is
            return self._dumps(list(items))
        if out is None:
            out = self._dumps(list(items))
            if len(self._tuples) < 10_000:  # full: the ones seen first stay (a fleet repeats early)
                self._tuples[items] = out
        return out

    def _hit(self, e: object) -> str:
        """One evidence hit, as ``json.dumps(e.to_dict())`` writes it (a MAC's hit is new in every record)."""
        if type(e) is not EvidenceHit:
            return self._dumps(e.to_dict())  # type: ignore[attr-defined]
        enc = self._str
        try:
            head = (f'{{"rule": {enc(e.rule)}, "field": {enc(e.field)}, "value": {enc(e.value[:512])}, '
                    f'"strength": {enc(e.strength)}')
            return f'{head}, "note": {enc(e.note)}}}' if e.note else head + "}"
        except TypeError:  # not a string somewhere: json's own way
            return self._dumps(e.to_dict())

    def _review(self, review: object) -> str:
        """``json.dumps(dict(review))`` for a non-empty review, written directly when its keys and values
        are strings (they are: maker and reason)."""
        if type(review) is dict:
            enc = self._str
            try:
                return "{" + ", ".join([f"{enc(k)}: {enc(v)}" for k, v in review.items()]) + "}"
            except TypeError:
                pass
        return self._dumps(dict(review))  # type: ignore[call-overload]

    def line(self, ident: Identification) -> str:
        i = ident
        conf = round(i.confidence, 3)
        if (type(i) is not Identification or type(conf) is not float or not -1e300 < conf < 1e300
                or i.restricted not in (True, False, None)
                or type(i.lists) is not tuple or type(i.component_risk) is not tuple or type(i.notes) is not tuple):
            return self._dumps(ident.to_dict())
        enc = self._str  # json's own string encoder (TypeError for anything but a string)
        try:
            id_, maker, brand, model, fw, dtype, serial = (
                "null" if i.id is None else enc(i.id),
                "null" if i.manufacturer is None else enc(i.manufacturer),
                "null" if i.brand is None else enc(i.brand),
                "null" if i.model is None else enc(i.model),
                "null" if i.firmware is None else enc(i.firmware),
                "null" if i.device_type is None else enc(i.device_type),
                "null" if i.serial is None else enc(i.serial))
        except TypeError:
            return self._dumps(ident.to_dict())
        hits = self._hits
        frags = []
        for e in i.evidence:
            # keyed by identity, the hit kept alive beside its text (so the key cannot be reused):
            # the identifier hands out the same hit objects for the same (field, value)
            known = hits.get(id(e))
            if known is not None and known[0] is e:
                frags.append(known[1])
                continue
            frag = self._hit(e)
            if len(hits) < 20_000:  # full: the ones seen first stay (a MAC's hit is seen once)
                hits[id(e)] = (e, frag)
            frags.append(frag)
        restricted = "null" if i.restricted is None else ("true" if i.restricted else "false")
        return (f'{{"id": {id_}, "manufacturer": {maker}, "brand": {brand}, "model": {model}, '
                f'"firmware": {fw}, "device_type": {dtype}, "restricted": {restricted}, '
                f'"lists": {self._strings(i.lists)}, "confidence": {float.__repr__(conf)}, '
                f'"evidence": [{", ".join(frags)}], "serial": {serial}, '
                f'"component_risk": {self._strings(i.component_risk)}, "notes": {self._strings(i.notes)}, '
                f'"review": {"null" if not i.review else self._review(i.review)}}}')


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
            out.write(json_safe(writer.line(ident)) + "\n")
        else:
            results.append(ident)
    if args.format == "table":
        legal = {lid for lid, spec in identifier.db.lists.items() if spec.get("legal")}
        render_table(results, identifier.policy_name, legal, _bases(identifier))
    out.flush()
    if bad:
        print(f"camsweep: {bad} line(s) could not be read", file=sys.stderr)
    return 2 if bad else 0


def _bases(identifier: Any) -> dict[str, str]:
    """The enforced lists of the identifier's policy -> law | policy | due_diligence."""
    from fingerprints.db import list_basis

    return {lid: list_basis(identifier.db.lists[lid]) for lid in identifier.policy_lists}


def render_table(results: list[Identification], policy: str, legal: set[str],
                 bases: dict[str, str] | None = None) -> None:
    """A rich table; the lists column shows the statutory lists (the JSONL output has them all). A restricted
    device says whether the policy's flag is law, government policy or due diligence."""
    from scanner.commands.table import markup_cell, print_rich_table

    def text(v: str | None) -> str:
        return markup_cell(v or None, 80, empty="-")

    rows = []
    for r in results:
        flag = {True: "[bold red]yes[/]", False: "no", None: "unknown"}[r.restricted]
        if r.restricted and bases:
            kinds = {bases[x] for x in r.lists if x in bases}
            if kinds:
                flag += " (" + ("law" if "law" in kinds else "policy" if "policy" in kinds else "due diligence") + ")"
        if r.review:  # the suspected maker, unless it is the (restricted) maker shown
            flag = ("[bold red]yes[/], " if r.restricted else "") + "[yellow]needs review[/]" + (
                "" if r.restricted else f" [yellow]({markup_cell(r.review.get('maker', ''), 80)}?)[/]")
        ev = r.evidence[0].rule if r.evidence else ""
        rows.append([markup_cell(r.id or "", 80), text(r.manufacturer), text(r.brand), text(r.model),
                     r.device_type or "-", flag, ", ".join(x for x in r.lists if x in legal), f"{r.confidence:.2f}",
                     markup_cell(ev, 80)])
    print_rich_table(("id", "manufacturer", "brand", "model", "type", "restricted", "legal lists", "conf.",
                      "strongest evidence"), rows, sys.stdout, title=f"camsweep identify (policy {policy})")
