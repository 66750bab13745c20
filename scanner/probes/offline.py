"""Evidence from data users already have: an nmap ``-oX`` file or a pcap/pcapng capture.

:func:`read_evidence` yields ``(n, EvidenceRecord | EvidenceError)`` like
:func:`scanner.evidence.read_records`, so ``camsweep identify --from nmap-xml|pcap FILE`` treats them
exactly as JSONL input (``n`` is the record's position in the file's device list).
"""

from __future__ import annotations

from collections.abc import Iterator

from scanner.errors import CamsweepError
from scanner.evidence import EvidenceError, EvidenceRecord, parse_record

FORMATS = ("jsonl", "nmap-xml", "pcap")


def read_evidence(kind: str, path: str) -> Iterator[tuple[int, EvidenceRecord | EvidenceError]]:
    """Records from an nmap XML file or a capture. Raises CamsweepError for an unreadable file."""
    if path == "-":
        raise CamsweepError(f"--from {kind} reads a file; give its path instead of -")
    if kind == "nmap-xml":
        from scanner.probes.nmap_xml import read_nmap_xml

        dicts = read_nmap_xml(path)
    elif kind == "pcap":
        from scanner.probes.passive import read_pcap

        dicts = read_pcap(path)
        for d in dicts:
            d.setdefault("id", f"pcap:{d.get('ip') or d.get('mac')}")
    else:
        raise CamsweepError(f"unknown input format {kind!r} (choose from {', '.join(FORMATS)})")
    for n, d in enumerate(dicts, 1):
        try:
            yield n, parse_record(d)
        except EvidenceError as exc:
            yield n, exc
