"""CSV report: one row per device of the scan, for spreadsheets.

Every text cell passes through :func:`spreadsheet_cell`: control characters are shown as escapes
(``\\x1b``) and a cell that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``) starts
with an apostrophe. Lists are joined with ``;``. The plan columns are empty for devices without a plan.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from scanner.report.escape import spreadsheet_cell

COLUMNS = (
    "scan_id", "site", "device_id", "ip", "mac", "serial", "manufacturer", "brand", "relabel", "model",
    "firmware", "device_type", "restricted", "lists", "confidence", "component_risk", "parent_ip", "channel",
    "evidence_rules", "plan_status", "plan_priority", "plan_tier", "replacement_class", "suggested_maker",
    "suggested_model", "cost_hardware", "cost_labour", "cost_licence", "cost_total", "note",
    "review_maker", "review_reason", "exploited", "flag_basis", "flag_why",
)
_NUMERIC = frozenset(("scan_id", "device_id", "confidence", "plan_priority", "cost_hardware", "cost_labour",
                      "cost_licence", "cost_total"))


def _flag(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "no")


def build_csv_rows(model: dict[str, Any]) -> list[dict[str, str]]:
    """The CSV's rows as dicts of cell text (what a csv.DictReader reads back)."""
    plans = {r["device_id"]: r for r in model["plan"]["rows"]}
    scan = model["scan"]
    rows = []
    for d in model["devices"]:
        p = plans.get(d["device_id"], {})
        raw: dict[str, Any] = {
            "scan_id": d.get("scan_id") or scan["id"], "site": d.get("site") or scan.get("site"), "device_id": d["device_id"],
            "ip": d["ip"], "mac": d["mac"], "serial": d.get("serial"), "manufacturer": d["manufacturer"],
            "brand": d["brand"], "relabel": _flag(d["relabel"]), "model": d["model"], "firmware": d["firmware"],
            "device_type": d["device_type"], "restricted": _flag(d["restricted"]), "lists": ";".join(d["lists"]),
            "confidence": f"{d['confidence']:.3f}", "component_risk": ";".join(d.get("component_risk") or []),
            "parent_ip": d.get("parent_ip"), "channel": d.get("channel"),
            "evidence_rules": ";".join(e["rule"] for e in d["evidence"]),
            "plan_status": p.get("status"), "plan_priority": p.get("priority"), "plan_tier": p.get("tier"),
            "replacement_class": p.get("replacement_class"), "suggested_maker": p.get("suggested_maker"),
            "suggested_model": p.get("suggested_model"),
            "cost_hardware": p.get("cost_hardware"), "cost_labour": p.get("cost_labour"),
            "cost_licence": p.get("cost_licence"), "cost_total": p.get("cost_total"), "note": d.get("note"),
            "review_maker": (d.get("review") or {}).get("maker"), "review_reason": (d.get("review") or {}).get("reason"),
            "exploited": ";".join(h["cve"] for h in d.get("exploited") or []),
            # why flagged under the report's policy: law | policy | due_diligence, and the reasons with sources
            "flag_basis": ";".join(dict.fromkeys(f.get("basis", "") for f in d.get("flags") or ())),
            "flag_why": "; ".join(f"{f.get('list')}: {f.get('why')} [{', '.join((f.get('cite') or [])[:2])}]"
                                  for f in d.get("flags") or ()),
        }
        rows.append({k: ("" if raw[k] is None else str(raw[k]) if k in _NUMERIC else spreadsheet_cell(raw[k]))
                     for k in COLUMNS})
    return rows


def render_csv(model: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    w.writeheader()
    w.writerows(build_csv_rows(model))
    return buf.getvalue()
