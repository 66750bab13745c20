"""Stored devices seen under a policy: restriction re-evaluated, and why each flagged device is flagged.

The report and the TUI both show a store's devices under a policy that may differ from the one the
scan ran under, and both say, per flagged device, whether the flag is law, government policy or due
diligence, and why (made by / owned by / sold under a label), with citations. Whether a maker or a
label is restricted is fingerprints.policy's one decision; this module only applies it to store rows.

- :func:`apply_policy` ``(rows, policy)``: re-evaluate ``restricted``, ``lists`` and ``review`` of rows
  that were identified under another policy (in place).
- :func:`annotate` ``(rows, policy)``: add ``flags`` (fingerprints.policy.flag_basis) to each restricted row.
- :func:`policy_summary` ``(policy)``: the policy's name, description, owners, source and lists.
"""

from __future__ import annotations

from typing import Any

_ESTABLISHING = frozenset(("proof", "strong", "medium"))


def _db() -> Any:
    from fingerprints import load_database

    return load_database()


def _rule_vendor(db: Any) -> dict[str, str]:
    cache = getattr(db, "_rule_vendor_cache", None)
    if cache is None:
        cache = {r.id: r.vendor for r in db.rules if r.vendor}
        try:
            db._rule_vendor_cache = cache
        except AttributeError:
            pass
    return cache  # type: ignore[no-any-return]


def brand_established(db: Any, brand_vid: str, evidence: list[Any]) -> bool:
    """Did the stored evidence name the label by a medium-or-stronger clue (its MAC block, its own rule)?"""
    rv = _rule_vendor(db)
    for e in evidence or ():
        if not isinstance(e, dict) or e.get("strength") not in _ESTABLISHING:
            continue
        rule = str(e.get("rule") or "")
        if rule == f"oui/{brand_vid}" or rv.get(rule) == brand_vid:
            return True
    return False


def apply_policy(rows: list[dict[str, Any]], policy: str) -> None:
    """Re-evaluate rows identified under another policy (each row's own ``policy``, when it has one): the
    real maker stays what the scan established; a "needs review" row keeps its review only where the new
    policy restricts the suspected maker, and its restriction stays unknown while it does. Under a policy
    that covers owners or names labels, the label the device is sold under counts when the stored evidence
    established it (a medium-or-stronger clue)."""
    from fingerprints import policy as pol

    db = _db()
    pol.policy_lists(db, policy)  # FingerprintError (a CamsweepError) for an unknown policy
    by_brand = pol.policy_covers_brands(db, policy)
    for row in rows:
        if row.get("policy") == policy:
            continue
        review = row.get("review")
        if review and not pol.restricted_name(db, policy, review.get("maker"))[0]:
            review = row["review"] = None
        maker = row.get("manufacturer")
        restricted: bool | None
        if not maker:
            restricted, lists = None, ()
        else:
            restricted, lists = pol.restricted_name(db, policy, maker)
            if restricted is None:  # a maker the registry does not know: on no list it knows
                restricted = False
            if review and review.get("maker") != maker and not restricted:
                restricted = None
        if by_brand and restricted is not True and row.get("brand"):
            vids = db.lookup_names(row["brand"])
            if vids and vids[0] in db.vendors and pol.brand_covered(db, policy, vids[0])[0] and \
                    brand_established(db, vids[0], row.get("evidence") or []):
                _, blists, _ = pol.brand_covered(db, policy, vids[0])
                restricted, lists = True, tuple(dict.fromkeys((*lists, *blists)))
                row["review"] = None
        row["restricted"] = restricted
        row["lists"] = list(lists)
        row["policy"] = policy


def annotate(rows: list[dict[str, Any]], policy: str) -> None:
    """Add ``flags`` to every restricted row: why it is flagged under ``policy`` (law first)."""
    from fingerprints import policy as pol

    db = _db()
    cache: dict[tuple[Any, Any], list[dict[str, Any]]] = {}
    for row in rows:
        if row.get("restricted") is not True:
            row["flags"] = []
            continue
        key = (row.get("manufacturer"), row.get("brand"))
        if key not in cache:
            cache[key] = pol.flag_basis_names(db, policy, *key)
        row["flags"] = [dict(x) for x in cache[key]]


def policy_summary(policy: str) -> dict[str, Any]:
    from fingerprints import policy as pol

    return pol.policy_info(_db(), policy)


def flag_lines(row: dict[str, Any]) -> list[str]:
    """One line per reason a row is flagged (for the TUI and plain text): '[law] NDAA ...: made by ...'."""
    out = []
    for f in row.get("flags") or ():
        cites = ", ".join((f.get("cite") or [])[:2])
        ev = "; ".join(f"{e['kind']} {e['date']}" for e in f.get("evidence") or ())
        out.append(f"[{f['basis_text']}] {f['list']}: {f['why']}" + (f" ({ev})" if ev else "")
                   + (f" - {cites}" if cites else ""))
    return out
