"""`camsweep plan`: the replacement plan, headless (export as CSV or JSON, set a device's plan, show totals)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from scanner.commands import options
from scanner.devtext import json_safe
from scanner.errors import CamsweepError
from scanner.store import PLAN_STATUSES


def register(sub: Any) -> None:
    p = sub.add_parser("plan", help="replacement plan: export it (CSV/JSON), set a device's plan, show totals",
                       description="The replacement plan for the flagged devices in a store: one item per "
                       "restricted device (plus any device with a saved plan), with a replacement class, a "
                       "suggested model from the catalog (never a maker the policy restricts), priority, "
                       "status and costs, totalled per site and overall.")
    psub = options.add_actions(p, "plan_command")

    def common(sp: argparse.ArgumentParser) -> None:
        options.add_db_option(sp, creates=False)
        options.add_policy_options(sp, "policy profile (default: the latest scan's, else ndaa889)", catalog=True)

    ex = psub.add_parser("export", help="write the plan as CSV or JSON")
    common(ex)
    options.add_format_option(ex, ("csv", "json"), "json", "plan")
    options.add_output_option(ex)
    ex.set_defaults(func=cmd_export)

    st = psub.add_parser("set", help="change one device's plan (status, class, model, costs, public safety)")
    common(st)
    st.add_argument("device", help="device id, IP or MAC address")
    st.add_argument("--status", choices=PLAN_STATUSES)
    st.add_argument("--reason", help="why the device is exempt (required with --status exempt)")
    st.add_argument("--class", dest="replacement_class", help="replacement class (bullet, dome, ptz, nvr ...)")
    st.add_argument("--maker", help="suggested maker")
    st.add_argument("--model", help="suggested model")
    st.add_argument("--hardware", help="hardware cost")
    st.add_argument("--labour", help="labour cost")
    st.add_argument("--licence", help="licence cost")
    ps = st.add_mutually_exclusive_group()
    ps.add_argument("--public-safety", dest="public_safety", action="store_true", default=None,
                    help="the device serves a public-safety role (raises its priority)")
    ps.add_argument("--no-public-safety", dest="public_safety", action="store_false")
    st.set_defaults(func=cmd_set)

    sh = psub.add_parser("show", help="print the plan's totals per site and overall")
    common(sh)
    sh.set_defaults(func=cmd_show)


def _open(args: argparse.Namespace) -> tuple[Any, Any, str]:
    from scanner import plan as planlib

    store = options.open_store(args.db, create=False)
    catalog = planlib.load_catalog(args.catalog)
    policy = args.policy
    if not policy:
        sid = store.latest_scan_id()
        policy = store.scan(sid).policy if sid else planlib.DEFAULT_POLICY
    try:
        planlib.check_policy(catalog, policy or planlib.DEFAULT_POLICY)
    except CamsweepError:
        store.close()
        raise
    return store, catalog, policy or planlib.DEFAULT_POLICY


def cmd_export(args: argparse.Namespace) -> int:
    from scanner import plan as planlib

    store, catalog, policy = _open(args)
    try:
        plan = planlib.make_plan(store, policy=policy, catalog=catalog)
        fmt = options.chosen_format(args, ("csv", "json"), "json")
        out = sys.stdout if args.output == "-" else None
        try:
            from scanner.private import open_private

            fp = out or open_private(args.output, "w", encoding="utf-8", newline="")
        except OSError as exc:
            raise CamsweepError(f"cannot write {args.output}: {exc.strerror or exc}") from None
        try:
            if fmt == "csv":
                planlib.write_csv(plan, fp)
            else:
                doc = planlib.plan_to_json(plan, store=str(store.path))
                fp.write(json_safe(json.dumps(doc, indent=2, ensure_ascii=False)))
                fp.write("\n")
        finally:
            if out is None:
                fp.close()
        t = plan.totals.overall
        print(f"plan: {t.devices} devices, total {plan.currency} {t.total:,.2f} "
              f"(remaining {t.remaining:,.2f}); policy {policy}"
              + ("" if args.output == "-" else f"; written to {args.output}"), file=sys.stderr)
    finally:
        store.close()
    return 0


def _find(store: Any, key: str) -> dict[str, Any]:
    from scanner.evidence import normalize_mac

    devices = store.devices()
    mac = normalize_mac(key)
    for d in devices:
        if (key.isdigit() and d["device_id"] == int(key)) or (mac and d.get("mac") == mac) or d.get("ip") == key:
            return d
    raise CamsweepError(f"no device {key!r} in {store.path} (give a device id, IP or MAC)")


def cmd_set(args: argparse.Namespace) -> int:
    from scanner import plan as planlib

    store, catalog, policy = _open(args)
    try:
        dev = _find(store, args.device)
        item = planlib.build_item(dev, store.plan(dev["device_id"]), catalog, policy)
        changes: dict[str, Any] = {}
        for arg, name in (("status", "status"), ("reason", "exempt_reason"),
                          ("replacement_class", "replacement_class"), ("maker", "suggested_maker"),
                          ("model", "suggested_model"), ("hardware", "cost_hardware"), ("labour", "cost_labour"),
                          ("licence", "cost_licence"), ("public_safety", "public_safety")):
            v = getattr(args, arg)
            if v is not None:
                changes[name] = v
        if not changes:
            raise CamsweepError("nothing to change: give --status, --class, --model, a cost or --public-safety")
        item = planlib.save_item(store, item, catalog, policy, **changes)
        print(json_safe(json.dumps(item.to_dict(), ensure_ascii=False)))
    finally:
        store.close()
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from scanner import plan as planlib
    from scanner.commands.table import cell, format_table

    store, catalog, policy = _open(args)
    try:
        plan = planlib.make_plan(store, policy=policy, catalog=catalog)
        cols = ("site", "devices", *PLAN_STATUSES, f"total {plan.currency}", "remaining")
        rows = [[cell(site, 24), str(t.devices), *(str(t.by_status.get(s, 0)) for s in PLAN_STATUSES),
                 f"{t.total:,.2f}", f"{t.remaining:,.2f}"]
                for site, t in [*plan.totals.by_site.items(), ("ALL", plan.totals.overall)]]
        print(format_table(cols, rows, right=cols[1:]))
    finally:
        store.close()
    return 0
