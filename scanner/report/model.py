"""The report model: everything a report shows about one scan, gathered from the store into plain data.

``build_report_model(store, scan_id, policy)`` returns a JSON-ready dict (the shape of
``schema/report-v1.json``); the JSON, CSV and HTML renderers only format it. Values are kept as the
store holds them (device text is *not* escaped here: each renderer escapes for its own medium).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from scanner import __version__
from scanner.errors import CamsweepError
from scanner.ipkey import ip_key
from scanner.store import ScanInfo, Store

SCHEMA_VERSION = "1.2"  # 1.1: review, summary.needs_review, reviews; 1.2: exploited, policy, devices[].flags, without_mac, summary.by_site, org (additive)
log = logging.getLogger("camsweep.report")

# Observed fields shown for devices whose maker is unknown: what they present, for a manual check.
OBSERVED_PREFIXES = ("http.headers.server", "http.title", "http.realm", "rtsp.headers.server", "rtsp.realm",
                     "banners.", "ssdp.headers.server", "ssdp.description.", "onvif.", "mdns.", "dhcp.",
                     "tls.subject", "wsd.scopes", "discovery.")
MAX_OBSERVED = 8

_SECRET_KEY = re.compile(r"pass|secret|token|credential|auth|keyring|user", re.I)
_PLAN_COSTS = ("cost_hardware", "cost_labour", "cost_licence")


def _scan_meta(info: ScanInfo, policy: str) -> dict[str, Any]:
    options = {k: v for k, v in info.options.items()
               if not k.startswith("_") and not _SECRET_KEY.search(str(k))}
    return {
        "id": info.id, "started_at": info.started_at, "finished_at": info.finished_at, "status": info.status,
        "targets": list(info.targets), "site": info.site, "policy": policy, "scan_policy": info.policy,
        "camsweep_version": info.camsweep_version, "fingerprints_version": info.fingerprints_version,
        "options": options,
    }


def _is_relabel(d: dict[str, Any]) -> bool:
    brand, maker = d.get("brand"), d.get("manufacturer")
    return bool(brand and maker and brand.strip().casefold() != maker.strip().casefold())


def _apply_policy(rows: list[dict[str, Any]], policy: str) -> None:
    """Re-evaluate ``restricted`` under another policy (scanner.policyview: fingerprints.policy's one
    decision applied to stored rows; owners and labels count under a policy that covers them)."""
    from scanner.policyview import apply_policy

    apply_policy(rows, policy)


def _policy_section(rows: list[dict[str, Any]], policy: str) -> dict[str, Any] | None:
    """The policy (name, description, owners, each list's basis, version date and citations), and per
    restricted row its ``flags``: law or due diligence, and why. None when the database cannot say."""
    try:
        from scanner.policyview import annotate, policy_summary

        annotate(rows, policy)
        return policy_summary(policy)
    except CamsweepError as exc:  # the report still renders; the reasons are missing, and the log says why
        log.warning("why-flagged reasons left out: %s (a scan made under a --policy-file policy needs the same "
                    "--policy-file for its report)", exc)
        return None


def annotate_policy(rows: list[dict[str, Any]], policy: str) -> dict[str, Any] | None:
    """Give each restricted row its ``flags`` as a report shows them (scanner.notify sends the same)."""
    return _policy_section(rows, policy)


def _list_info() -> dict[str, dict[str, Any]]:
    """List id -> {"name", "short", "legal", "basis"} from the fingerprint database (fingerprints/lists.yaml)."""
    import fingerprints

    out: dict[str, dict[str, Any]] = {}
    for key, spec in fingerprints.load_database().lists.items():
        out[str(key)] = {"name": spec.get("name") or str(key), "short": spec.get("short") or str(key),
                         "legal": spec["legal"] if isinstance(spec.get("legal"), bool) else None,
                         "basis": spec["basis"] if isinstance(spec.get("basis"), str) else None}
    return out


def _observed(store: Store, scan_id: int | dict[int, set[int]], device_ids: set[int]) -> dict[int, list[dict[str, str]]]:
    """A few telling observed values (server strings, titles, banners) of the given devices (``scan_id``:
    one scan, or scan id -> the devices taken from that scan)."""
    if not device_ids:
        return {}
    per_scan = scan_id if isinstance(scan_id, dict) else {scan_id: device_ids}
    merged: dict[int, Any] = {}
    for sid, ids in per_scan.items():
        for device_id, record in store.observations(sid):
            if device_id in device_ids and device_id in ids:
                merged[device_id] = record if device_id not in merged else merged[device_id].merge(record)
    out: dict[int, list[dict[str, str]]] = {}
    for device_id, rec in merged.items():
        seen: list[dict[str, str]] = []
        for fld, value in rec.iter_fields():
            if not fld.startswith(OBSERVED_PREFIXES) or not value:
                continue
            item = {"field": fld, "value": value[:300]}
            if item not in seen:
                seen.append(item)
            if len(seen) >= MAX_OBSERVED:
                break
        out[device_id] = seen
    return out


_PLAN_KEYS = ("device_id", "ip", "mac", "site", "manufacturer", "brand", "model", "device_type",
              "replacement_class", "class_label", "suggested_maker", "suggested_model", "priority", "tier",
              "reasons", "status", "exempt_reason", "public_safety", "cost_hardware", "cost_labour",
              "cost_licence", "cost_total", "saved")


def _plan_rows(store: Store, devices: list[dict[str, Any]], policy: str) -> tuple[list, str, str]:
    """Plan rows from scanner.plan (catalog defaults, priority score and tier, saved choices)."""
    from scanner.plan import make_plan

    plan = make_plan(store, policy=policy, devices=devices)
    rows = []
    for item in plan.items:
        d = item.to_dict()
        rows.append({k: d.get(k) for k in _PLAN_KEYS})
    return rows, str(plan.currency or ""), str(plan.catalog_version or "")


def _plan_totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    counted = [r for r in rows if r["status"] != "exempt"]  # an exempt device costs nothing
    return {
        "devices": len(rows),
        "counted_devices": len(counted),
        "cost_hardware": round(sum(r["cost_hardware"] for r in counted), 2),
        "cost_labour": round(sum(r["cost_labour"] for r in counted), 2),
        "cost_licence": round(sum(r["cost_licence"] for r in counted), 2),
        "cost_total": round(sum(r["cost_hardware"] + r["cost_labour"] + r["cost_licence"] for r in counted), 2),
        "cost_remaining": round(sum(r["cost_hardware"] + r["cost_labour"] + r["cost_licence"]
                                    for r in counted if r["status"] in ("planned", "ordered")), 2),
        "by_status": dict(sorted(Counter(r["status"] for r in rows).items())),
        "by_tier": dict(sorted(Counter(r["tier"] for r in rows if r.get("tier")).items())),
    }


def _plan_section(store: Store, devices: list[dict[str, Any]], policy: str) -> dict[str, Any]:
    """Plan rows for this scan's devices and their totals, overall and per site (scanner.plan)."""
    rows, currency, catalog_version = _plan_rows(store, devices, policy)
    for r in rows:
        for k in _PLAN_COSTS + ("cost_total",):
            r[k] = round(float(r.get(k) or 0.0), 2)
        r["reasons"] = [str(x) for x in (r.get("reasons") or [])]
        r["public_safety"] = None if r.get("public_safety") is None else bool(r["public_safety"])
        r["saved"] = bool(r.get("saved"))
    sites: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        sites.setdefault(str(r.get("site") or "(no site)"), []).append(r)
    restricted_ids = {d["device_id"] for d in devices if d.get("restricted") is True}
    saved_ids = {r["device_id"] for r in rows if r["saved"]}
    return {
        "source": "scanner.plan",
        "currency": currency or None,
        "catalog_version": catalog_version or None,
        "rows": rows,
        "totals": _plan_totals(rows),
        "by_site": [{"site": k, **_plan_totals(v)} for k, v in sorted(sites.items())],
        "restricted_without_plan": sorted(restricted_ids - saved_ids),
        "note": "Estimated costs (catalog defaults where nobody has entered a figure). The FCC rip-and-replace "
                "programme does not fund replacing Hikvision or Dahua cameras in end-user facilities.",
    }


def _device_entry(d: dict[str, Any], by_id: dict[int, dict[str, Any]]) -> dict[str, Any]:
    parent = by_id.get(d["parent_id"]) if d.get("parent_id") is not None else None
    return {
        "device_id": d["device_id"], "ip": d.get("ip"), "mac": d.get("mac"), "serial": d.get("serial"),
        "site": d.get("site"), "manufacturer": d.get("manufacturer"), "brand": d.get("brand"),
        "model": d.get("model"), "firmware": d.get("firmware"), "device_type": d.get("device_type"),
        "restricted": d.get("restricted"), "lists": list(d.get("lists") or []),
        "confidence": round(float(d.get("confidence") or 0.0), 3), "relabel": _is_relabel(d),
        "component_risk": list(d.get("component_risk") or []),
        "parent_id": d.get("parent_id"), "parent_ip": parent.get("ip") if parent else None,
        "channel": d.get("channel"), "first_seen": d.get("first_seen"), "last_seen": d.get("last_seen"),
        "note": d.get("note") or None,
        "review": dict(d["review"]) if d.get("review") else None,
        "exploited": _exploited(d),
        "flags": list(d.get("flags") or []),
        "evidence": [
            {"rule": str(e.get("rule", "")), "field": str(e.get("field", "")), "value": str(e.get("value", "")),
             "strength": str(e.get("strength", "")), **({"note": str(e["note"])} if e.get("note") else {})}
            for e in (d.get("evidence") or []) if isinstance(e, dict)
        ],
    }


def report_device(d: dict[str, Any], by_id: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """One device as the JSON report's ``devices`` entry shows it (``by_id``: the scan's rows, for the
    recorder of a camera behind one). scanner.notify sends exactly these fields."""
    return _device_entry(d, by_id)


def _exploited(d: dict[str, Any]) -> list[dict[str, Any]]:
    """Known-exploited firmware hints of a device (fingerprints.exploited decides)."""
    from fingerprints.exploited import hint_dicts

    return list(hint_dicts(d))


def build_report_model(store: Store, scan_id: int, policy: str | None = None) -> dict[str, Any]:
    """Everything a report of scan ``scan_id`` shows, as JSON-ready data (schema/report-v1.json).

    ``policy`` defaults to the policy the scan ran under; another policy re-evaluates restriction from
    the scan's stored observations (needs scanner.identify).
    """
    info = store.scan(scan_id)
    policy = policy or info.policy
    rows = store.devices(scan_id=scan_id)
    if policy != info.policy:
        _apply_policy(rows, policy)
    return _model(store, rows, policy, _scan_meta(info, policy), scan_id)


def build_org_report_model(store: Store, policy: str | None = None) -> dict[str, Any]:
    """The organisation's report: the latest scan of every site together, each device once (from the
    latest of those scans that saw it), with per-site totals (``summary.by_site``) and the scans used
    (``org.scans``). ``scan`` describes the whole: the span of the scans, all their targets, no site."""
    scans = store.latest_scans_by_site()
    if not scans:
        raise CamsweepError(f"the store {store.path} holds no scan yet; run `camsweep scan` first")
    latest = max(scans, key=lambda s: s.started_at)
    policy = policy or latest.policy
    rows = store.devices(scan_ids=[s.id for s in scans])
    if any(s.policy != policy for s in scans):
        _apply_policy(rows, policy)
    status = "complete" if all(s.status == "complete" for s in scans) else "incomplete"
    meta = {
        "id": latest.id, "started_at": min(s.started_at for s in scans),
        "finished_at": max((s.finished_at or "" for s in scans), default="") or None, "status": status,
        "targets": sorted({t for s in scans for t in s.targets}), "site": None, "policy": policy,
        "scan_policy": latest.policy, "camsweep_version": latest.camsweep_version,
        "fingerprints_version": latest.fingerprints_version, "options": {},
    }
    per_scan: dict[int, set[int]] = {}
    for r in rows:
        per_scan.setdefault(r["scan_id"], set()).add(r["device_id"])
    model = _model(store, rows, policy, meta, per_scan)
    scan_of = {r["device_id"]: r["scan_id"] for r in rows}
    for d in model["devices"]:
        d["scan_id"] = scan_of.get(d["device_id"])
    model["org"] = {"sites": len(scans), "scans": [
        {"scan_id": s.id, "site": s.site, "started_at": s.started_at, "status": s.status,
         "devices_reported": len(per_scan.get(s.id, ())), "device_count": s.device_count,
         "restricted_count": s.restricted_count} for s in scans]}
    return model


def _by_site(devices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    sites: dict[str, list[dict[str, Any]]] = {}
    for d in devices:
        sites.setdefault(str(d.get("site") or "(no site)"), []).append(d)
    return [{"site": k, "devices": len(v), "restricted": sum(1 for d in v if d["restricted"] is True),
             "not_restricted": sum(1 for d in v if d["restricted"] is False),
             "unknown": sum(1 for d in v if d["restricted"] is None),
             "needs_review": sum(1 for d in v if d["review"])} for k, v in sorted(sites.items())]


def _model(store: Store, rows: list[dict[str, Any]], policy: str, meta: dict[str, Any],
           scans: int | dict[int, set[int]]) -> dict[str, Any]:
    policy_info = _policy_section(rows, policy)
    by_id = {d["device_id"]: d for d in rows}
    devices = [_device_entry(d, by_id) for d in rows]
    devices.sort(key=lambda d: (d["restricted"] is not True, d["review"] is None, d["restricted"] is not None,
                                d["manufacturer"] or "~", ip_key(d["ip"])))

    restricted = [d for d in devices if d["restricted"] is True]
    makers = Counter(d["manufacturer"] or "unknown" for d in devices)
    makers_restricted = Counter(d["manufacturer"] or "unknown" for d in restricted)
    lists = Counter(lst for d in devices for lst in d["lists"])
    info_by_list = _list_info()
    observed = _observed(store, scans, {d["device_id"] for d in devices if d["restricted"] is not False
                                          or d["relabel"] or d["component_risk"] or d["review"]})
    for d in devices:
        if d["device_id"] in observed:
            d["observed"] = observed[d["device_id"]]
    summary = {
        "devices": len(devices),
        "restricted": len(restricted),
        "not_restricted": sum(1 for d in devices if d["restricted"] is False),
        "unknown": sum(1 for d in devices if d["restricted"] is None),
        "unknown_maker": sum(1 for d in devices if not d["manufacturer"]),
        "needs_review": sum(1 for d in devices if d["review"]),
        "exploited": sum(1 for d in devices if d["exploited"]),
        "relabels": sum(1 for d in devices if d["relabel"]),
        "component_risk": sum(1 for d in devices if d["component_risk"]),
        "by_maker": [{"maker": m, "devices": n, "restricted": makers_restricted.get(m, 0)}
                     for m, n in sorted(makers.items(), key=lambda kv: (-makers_restricted.get(kv[0], 0),
                                                                          -kv[1], kv[0]))],
        "by_list": [{"list": k, "name": info_by_list.get(k, {}).get("name") or k,
                     "short": info_by_list.get(k, {}).get("short") or k, "legal": info_by_list.get(k, {}).get("legal"),
                     "basis": info_by_list.get(k, {}).get("basis"), "devices": n}
                    for k, n in sorted(lists.items(), key=lambda kv: (
                        -kv[1], kv[0] != policy, info_by_list.get(kv[0], {}).get("legal") is not True, kv[0]))],
        "by_device_type": [{"device_type": t, "devices": n} for t, n in sorted(
            Counter(d["device_type"] or "unknown" for d in devices).items(), key=lambda kv: (-kv[1], kv[0]))],
        "by_site": _by_site(devices),
    }
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "generator": {"name": "camsweep", "version": __version__},
        "scan": meta,
        "policy": policy_info,
        "summary": summary,
        "relabels": [{"device_id": d["device_id"], "ip": d["ip"], "brand": d["brand"],
                      "manufacturer": d["manufacturer"], "model": d["model"]} for d in devices if d["relabel"]],
        "reviews": [{"device_id": d["device_id"], "ip": d["ip"], "mac": d["mac"], "brand": d["brand"],
                     "manufacturer": d["manufacturer"], "restricted": d["restricted"],
                     "maker": d["review"]["maker"], "reason": d["review"]["reason"]}
                    for d in devices if d["review"]],
        "exploited": [{"device_id": d["device_id"], "ip": d["ip"], "mac": d["mac"], "manufacturer": d["manufacturer"],
                       "model": d["model"], "firmware": d["firmware"], "cves": [h["cve"] for h in d["exploited"]]}
                      for d in devices if d["exploited"]],
        "unknowns": [{"device_id": d["device_id"], "ip": d["ip"], "mac": d["mac"], "brand": d["brand"],
                      "device_type": d["device_type"], "observed": observed.get(d["device_id"], [])}
                     for d in devices if d["restricted"] is None],
        "devices": devices,
        "plan": _plan_section(store, rows, policy),
        # devices on the network with no MAC, and why (scanner/macsources.py: "mac/none" evidence; since 1.2)
        "without_mac": [{"device_id": d["device_id"], "ip": d["ip"], "reason": next(
            e["value"] for e in d["evidence"] if e["rule"] == "mac/none")}
            for d in devices if not d["mac"] and any(e["rule"] == "mac/none" for e in d["evidence"])],
    }


def resolve_scan_id(store: Store, scan: int | None, site: str | None = None) -> int:
    """The scan a command means: ``--scan ID``, else the latest scan (of ``site``, when given)."""
    if scan is not None:
        store.scan(scan)  # raises StoreError when there is no such scan
        return scan
    sid = store.latest_scan_id(site=site)
    if sid is None:
        where = f" for site {site!r}" if site else ""
        raise CamsweepError(f"the store {store.path} holds no scan{where} yet; run `camsweep scan` first")
    return int(sid)
