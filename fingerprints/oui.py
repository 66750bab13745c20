"""The IEEE MAC address registry (MA-L 24-bit, MA-M 28-bit, MA-S/IAB 36-bit): build, store, look up.

The shipped table, ``fingerprints/data/oui.tsv.gz``, is built from Debian's ``ieee-data`` package
(IEEE's own CSV files) overlaid with a March 2026 snapshot of the relevant makers' blocks (a TSV with
``oui`` and ``ieee_org_name`` columns; the table's ``#`` header names it). ``camsweep oui update
PATH_OR_URL...`` runs the same builder over newer IEEE CSV files. The table maps a prefix to the registrant's name only: which maker a registrant is
is decided by explicit patterns in vendors.yaml (``registrants``), never by a substring guess, and
never from the address.

File format (gzip, UTF-8): a ``#`` header with the build date and sources, then one line per block:
``<prefix hex upper>\\t<registry>\\t<organisation name>``.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from scanner.errors import FingerprintError

PACKAGED = Path(__file__).with_name("data") / "oui.tsv.gz"
MAX_SOURCE_BYTES = 64 * 1024 * 1024  # one IEEE CSV is ~3 MB; refuse anything absurd
_HEXRE = re.compile(r"^[0-9A-F]+$")
_REGISTRY_BY_LEN = {6: "MA-L", 7: "MA-M", 9: "MA-S"}
_SKIP_NAMES = frozenset(("private", "ieee registration authority"))


def user_table_path() -> Path:
    """Where `camsweep oui update` writes by default (and where the loader looks first)."""
    env = os.environ.get("CAMSWEEP_OUI_TABLE")
    if env:
        return Path(env)
    from platformdirs import user_data_path

    return user_data_path("camsweep") / "oui.tsv.gz"


@dataclass(frozen=True, slots=True)
class OuiEntry:
    prefix: str  # hex, upper case, 6/7/9 digits
    registry: str
    organization: str


def _clean_name(name: str) -> str:
    name = re.sub(r"\s*\[nmap short form\]\s*$", "", name.strip())
    return re.sub(r"\s+", " ", name)[:200]


def parse_ieee_csv(text: str, source: str = "") -> Iterator[OuiEntry]:
    """Rows of an IEEE registry CSV (Registry,Assignment,Organization Name,Organization Address).

    Raises FingerprintError when the header is not IEEE's, naming the source.
    """
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header or [h.strip().lower() for h in header[:3]] != ["registry", "assignment", "organization name"]:
        raise FingerprintError(f"{source or 'input'}: not an IEEE registry CSV "
                               "(expected columns Registry,Assignment,Organization Name,Organization Address)")
    for row in reader:
        if len(row) < 3:
            continue
        prefix = row[1].strip().upper()
        if not _HEXRE.match(prefix) or len(prefix) not in _REGISTRY_BY_LEN:
            continue
        registry = row[0].strip() or _REGISTRY_BY_LEN[len(prefix)]
        yield OuiEntry(prefix, registry, _clean_name(row[2]))


def parse_overlay_tsv(text: str, source: str = "") -> Iterator[OuiEntry]:
    """Rows of a TSV with a header naming `oui` and `ieee_org_name` columns (the overlay format)."""
    lines = text.splitlines()
    header = lines[0].split("\t") if lines else []
    try:
        pi, ni = header.index("oui"), header.index("ieee_org_name")
    except ValueError:
        raise FingerprintError(f"{source or 'input'}: TSV without 'oui' and 'ieee_org_name' columns") from None
    for line in lines[1:]:
        cols = line.split("\t")
        if len(cols) <= max(pi, ni):
            continue
        prefix = re.sub(r"[^0-9A-Fa-f]", "", cols[pi]).upper()
        if len(prefix) not in _REGISTRY_BY_LEN:
            continue
        yield OuiEntry(prefix, _REGISTRY_BY_LEN[len(prefix)], _clean_name(cols[ni]))


def parse_table(text: str) -> Iterator[OuiEntry]:
    """Rows of camsweep's own table format."""
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) >= 3 and _HEXRE.match(cols[0]) and len(cols[0]) in _REGISTRY_BY_LEN:
            yield OuiEntry(cols[0], cols[1], cols[2])


def read_source(ref: str, *, fetch_timeout: float = 60.0) -> tuple[str, str]:
    """(text, label) of a path or an http(s) URL; capped in size. URLs are fetched only here."""
    if re.match(r"^https?://", ref, re.I):
        import httpx

        try:
            with httpx.stream("GET", ref, timeout=fetch_timeout, follow_redirects=True) as resp:
                resp.raise_for_status()
                chunks, total = [], 0
                for chunk in resp.iter_bytes():
                    total += len(chunk)
                    if total > MAX_SOURCE_BYTES:
                        raise FingerprintError(f"{ref}: larger than {MAX_SOURCE_BYTES} bytes")
                    chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise FingerprintError(f"{ref}: cannot fetch ({exc})") from None
        data = b"".join(chunks)
    else:
        p = Path(ref)
        try:
            if p.stat().st_size > MAX_SOURCE_BYTES:
                raise FingerprintError(f"{ref}: larger than {MAX_SOURCE_BYTES} bytes")
            data = p.read_bytes()
        except OSError as exc:
            raise FingerprintError(f"{ref}: cannot read ({exc.strerror or exc})") from None
    if ref.endswith(".gz") or data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise FingerprintError(f"{ref}: not a valid gzip file ({exc})") from None
        if len(data) > MAX_SOURCE_BYTES:
            raise FingerprintError(f"{ref}: larger than {MAX_SOURCE_BYTES} bytes uncompressed")
    return data.decode("utf-8", errors="replace"), ref


def parse_source(text: str, label: str) -> list[OuiEntry]:
    """Any of the three formats, told apart by their first line."""
    first = text.lstrip("\ufeff").split("\n", 1)[0]
    text = text.lstrip("\ufeff")
    if first.lower().startswith("registry,"):
        return list(parse_ieee_csv(text, label))
    if first.startswith("#") or re.match(r"^[0-9A-F]{6,9}\t", first):
        return list(parse_table(text))
    if "\t" in first:
        return list(parse_overlay_tsv(text, label))
    raise FingerprintError(f"{label}: unrecognised format (expected an IEEE CSV, camsweep's TSV, or an overlay TSV)")


def build_table(entries_by_source: Iterable[list[OuiEntry]], base: dict[str, OuiEntry] | None = None) -> dict[str, OuiEntry]:
    """Merge sources in order; a later source's row for a prefix replaces an earlier one."""
    table: dict[str, OuiEntry] = dict(base or {})
    for entries in entries_by_source:
        for e in entries:
            table[e.prefix] = e
    return table


def write_table(table: dict[str, OuiEntry], path: Path, sources: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    lines = [f"# camsweep IEEE MAC registry table, built {stamp}", "# sources: " + " ; ".join(sources)[:2000]]
    counts: dict[str, int] = {}
    for prefix in sorted(table):
        e = table[prefix]
        counts[e.registry] = counts.get(e.registry, 0) + 1
        lines.append(f"{e.prefix}\t{e.registry}\t{e.organization}")
    lines.insert(2, "# counts: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=9) as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


class OuiTable:
    """Longest-prefix lookup: MA-S (36-bit) over MA-M (28-bit) over MA-L (24-bit)."""

    def __init__(self, entries: Iterable[OuiEntry], label: str = "") -> None:
        self.by_len: dict[int, dict[str, str]] = {9: {}, 7: {}, 6: {}}
        n = 0
        for e in entries:
            self.by_len[len(e.prefix)][e.prefix] = e.organization
            n += 1
        self.size = n
        self.label = label

    @classmethod
    def from_table(cls, text: str, label: str = "") -> OuiTable:
        """The table from camsweep's own format; the same rows as :func:`parse_table`, without building an
        entry object per row (every scan loads ~47,000 rows: 0.22 s that way, ~0.04 s this way)."""
        table = cls((), label)
        by_len, size, valid = table.by_len, 0, _HEXRE.match
        for line in text.split("\n"):
            if not line or line[0] == "#":
                continue
            cols = line.split("\t")
            if len(cols) < 3:
                continue
            prefix = cols[0]
            d = by_len.get(len(prefix))
            if d is not None and valid(prefix):
                d[prefix] = cols[2].rstrip("\r")
                size += 1
        table.size = size
        return table

    @classmethod
    def load(cls, path: Path | None = None) -> OuiTable:
        candidates = [path] if path else [user_table_path(), PACKAGED]
        for p in candidates:
            if p is not None and p.is_file():
                try:
                    with gzip.open(p, "rt", encoding="utf-8") as f:
                        text = f.read()
                except (OSError, EOFError) as exc:
                    if path:
                        raise FingerprintError(f"{p}: unreadable MAC registry table ({exc})") from None
                    continue
                header = text[:200].split("\n", 1)[0].lstrip("# ")
                return cls.from_table(text, f"{p.name}: {header}")
        return cls((), "no MAC registry table")

    def lookup(self, mac_hex: str) -> str | None:
        """Registrant for 12 hex digits (upper case), or None."""
        for n in (9, 7, 6):
            org = self.by_len[n].get(mac_hex[:n])
            if org is not None:
                return None if org.lower() in _SKIP_NAMES else org
        return None
