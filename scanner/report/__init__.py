"""Reports of one scan, read only from the store: HTML (self-contained, printable), JSON (schema
``schema/report-v1.json``), CSV, and PDF (the HTML printed by headless Chromium, when installed).

- ``build_report_model(store, scan_id, policy=None)`` gathers the data (scanner/report/model.py).
- ``render_report(model, fmt)`` formats it; ``write_report(store, scan_id, spec)`` does both and writes
  ``FORMAT:PATH`` (the ``--report`` option of ``camsweep scan``).
- ``fail_on_hits(store, scan_id, conditions)`` says which ``--fail-on`` conditions a scan meets.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from scanner.errors import CamsweepError
from scanner.private import write_whole
from scanner.report.model import SCHEMA_VERSION, build_report_model, resolve_scan_id
from scanner.store import Store

FORMATS = ("html", "json", "csv", "pdf")
_EXTENSIONS = {".html": "html", ".htm": "html", ".json": "json", ".csv": "csv", ".pdf": "pdf"}
FAIL_ON_CONDITIONS = ("restricted", "review", "relabel", "unknown", "component-risk", "new", "changed", "exploited")

__all__ = ["FAIL_ON_CONDITIONS", "FORMATS", "SCHEMA_VERSION", "ReportError", "build_report_model",
           "fail_on_hits", "parse_report_spec", "render_report", "resolve_scan_id", "write_report"]


class ReportError(CamsweepError):
    """A report that cannot be written (bad ``FORMAT:PATH``, an unwritable file)."""


def parse_report_spec(spec: str) -> tuple[str, str]:
    """``"html:/srv/r.html"`` -> ("html", "/srv/r.html"). A bare path ending in .html/.json/.csv also works;
    the path ``-`` means standard output."""
    spec = (spec or "").strip()
    fmt, sep, path = spec.partition(":")
    if sep and fmt.lower() in FORMATS:
        if not path:
            raise ReportError(f"--report {spec!r}: no path after {fmt}:")
        return fmt.lower(), path
    ext = Path(spec).suffix.lower()
    if spec and ext in _EXTENSIONS:
        return _EXTENSIONS[ext], spec
    raise ReportError(f"--report {spec!r}: expected FORMAT:PATH with FORMAT one of {', '.join(FORMATS)} "
                      "(for example html:report.html)")


def render_report(model: dict[str, Any], fmt: str) -> str | bytes:
    """The report as text (html, json, csv) or bytes (pdf)."""
    if fmt == "pdf":
        from scanner.report.html import render_html
        from scanner.report.pdf import render_pdf

        return render_pdf(render_html(model))
    if fmt == "html":
        from scanner.report.html import render_html

        return render_html(model)
    if fmt == "json":
        from scanner.report.json import render_json

        return render_json(model)
    if fmt == "csv":
        from scanner.report.csv import render_csv

        return render_csv(model)
    raise ReportError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")


def write_text_atomic(path: str, text: str | bytes) -> None:
    """Write ``text`` (or bytes) to ``path`` (``-``: stdout) so a reader never sees half a report."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    if path == "-":
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    try:
        write_whole(path, data)  # 0600: reports hold serials, MACs and page bodies
    except IsADirectoryError:
        raise ReportError(f"{path} is a directory; give a file name") from None
    except OSError as exc:
        raise ReportError(f"cannot write the report to {path}: {exc.strerror or exc}") from None


def write_report(store: Store, scan_id: int, spec: str, *, policy: str | None = None) -> str:
    """Render scan ``scan_id`` as ``spec`` (``FORMAT:PATH``) and write it. Returns the path written."""
    fmt, path = parse_report_spec(spec)
    model = build_report_model(store, scan_id, policy)
    write_text_atomic(path, render_report(model, fmt))
    return path


def previous_scan_id(store: Store, scan_id: int) -> int | None:
    """The latest complete scan before ``scan_id`` of the same site (None when there is none)."""
    site = store.scan(scan_id).site
    earlier = [s for s in store.scans(site=site) if s.id < scan_id and s.status == "complete"
               and s.site == site]
    return earlier[-1].id if earlier else None


def fail_on_hits(store: Store, scan_id: int, conditions: list[str] | tuple[str, ...]) -> list[str]:
    """The ``--fail-on`` conditions that scan ``scan_id`` meets, each with a count, e.g. ``restricted (3)``.

    ``new``/``changed`` compare with the previous complete scan of the same site (met never when there is
    none). A non-empty answer means exit code 1 (see docs/scheduling.md).
    """
    unknown = [c for c in conditions if c not in FAIL_ON_CONDITIONS]
    if unknown:
        raise CamsweepError(f"--fail-on {unknown[0]!r}: choose from {', '.join(FAIL_ON_CONDITIONS)}")
    rows = store.devices(scan_id=scan_id)
    hits = []
    counts = {
        "restricted": sum(1 for d in rows if d.get("restricted") is True),
        "review": sum(1 for d in rows if d.get("review")),
        "unknown": sum(1 for d in rows if d.get("restricted") is None),
        "component-risk": sum(1 for d in rows if d.get("component_risk")),
        "relabel": sum(1 for d in rows if d.get("brand") and d.get("manufacturer")
                       and d["brand"].strip().casefold() != d["manufacturer"].strip().casefold()),
    }
    if "exploited" in conditions:
        from fingerprints.exploited import any_exploited

        counts["exploited"] = any_exploited(rows)
    if "new" in conditions or "changed" in conditions:
        from scanner.diff import build_scan_diff

        prev = previous_scan_id(store, scan_id)
        if prev is not None:
            d = build_scan_diff(store.devices(scan_id=prev), rows)
            counts["new"], counts["changed"] = len(d.new), len(d.changed)
    for c in conditions:
        n = counts.get(c, 0)
        if n:
            hits.append(f"{c} ({n})")
    return hits
