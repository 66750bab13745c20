"""The one decision: is a maker restricted under a policy?

Every part of camsweep that needs "restricted or not" asks here (identify, the store's and the
report's re-evaluation under another policy, the replacement plan, the TUI); nobody keeps a list of
restricted makers of their own. A policy (fingerprints/policies.yaml) names restriction lists
(lists.yaml); a list covers vendor ids, directly or through their group (``affiliates: true``), or by
origin (``origin: CN``). A maker is restricted under a policy when one of the policy's lists covers it.

- :func:`restricted_under` ``(db, policy, vendor_id) -> (restricted, lists)``: for a vendor id the
  registry knows. ``lists`` is every list that covers the vendor, whatever the policy (the report
  shows them all), the policy's own first. ``restricted`` is None for no vendor or an unknown one.
- :func:`restricted_name` ``(db, policy, name)``: the same for a maker *name* (a stored manufacturer,
  a catalog maker); None when the registry does not know the name.
- :func:`label_makers` ``(db, policy, vendor_id)``: for an OEM label, the restricted makers it is
  recorded as selling devices of (vendors.yaml ``oem``: maker, relation, confidence). A label is
  never the maker; this is what makes a label-only device "needs review" and what keeps a relabel
  of a restricted maker out of replacement suggestions.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["LabelLink", "label_makers", "policy_lists", "restricted_name", "restricted_under",
           "suggestion_allowed"]


class LabelLink(NamedTuple):
    maker: str  # vendor id of the maker (its group)
    relation: str  # oem | white-label | former-oem
    confidence: str  # high | medium | low
    era: str


def _cache(db: Any) -> dict[Any, Any]:
    c = getattr(db, "_policy_cache", None)
    if c is None:
        c = {}
        try:
            db._policy_cache = c
        except AttributeError:  # a slotted or frozen stand-in: no cache, same answers
            pass
    return c


def policy_lists(db: Any, policy: str) -> frozenset[str]:
    """The lists a policy enforces (FingerprintError for an unknown policy name)."""
    cache = _cache(db)
    key = ("p", policy)
    out = cache.get(key)
    if out is None:
        out = frozenset(db.policy(policy).get("lists") or ())
        cache[key] = out
    return out


def restricted_under(db: Any, policy: str, vendor_id: str | None) -> tuple[bool | None, tuple[str, ...]]:
    """(restricted, lists) for a vendor id under ``policy``; (None, ()) when the id is None or unknown."""
    if not vendor_id or vendor_id not in db.vendors:
        return None, ()
    cache = _cache(db)
    key = ("v", policy, vendor_id)
    out = cache.get(key)
    if out is None:
        enforced = policy_lists(db, policy)
        lists = db.lists_for(vendor_id)
        ordered = tuple(sorted(lists, key=lambda x: (x not in enforced, lists.index(x))))
        out = (bool(enforced.intersection(lists)), ordered)
        cache[key] = out
    return out


def restricted_name(db: Any, policy: str, name: str | None) -> tuple[bool | None, tuple[str, ...]]:
    """(restricted, lists) for a maker name: restricted when any vendor the name resolves to is; None when
    the registry knows no vendor by that name."""
    if not name:
        return None, ()
    vids = db.lookup_names(name)
    if not vids:
        return None, ()
    restricted = False
    lists: list[str] = []
    for vid in vids:
        r, ls = restricted_under(db, policy, db.vendors[vid].group or vid)
        r2, ls2 = restricted_under(db, policy, vid)
        restricted = restricted or bool(r) or bool(r2)
        lists += [x for x in (*ls, *ls2) if x not in lists]
    enforced = policy_lists(db, policy)
    return restricted, tuple(sorted(lists, key=lambda x: (x not in enforced, lists.index(x))))


def label_makers(db: Any, policy: str, vendor_id: str | None) -> tuple[LabelLink, ...]:
    """The restricted makers an OEM label is recorded as relabelling, strongest relation first."""
    v = db.vendors.get(vendor_id) if vendor_id else None
    if v is None or not v.oem:
        return ()
    out: list[LabelLink] = []
    for o in v.oem:
        maker = o.get("maker")
        mv = db.vendors.get(maker) if maker else None
        if mv is None:
            continue
        group = mv.group or mv.id
        if restricted_under(db, policy, group)[0] and all(x.maker != group for x in out):
            out.append(LabelLink(group, str(o.get("relation") or "oem"), str(o.get("confidence") or "low"),
                                 str(o.get("era") or "")))
    rank = {"high": 0, "medium": 1, "low": 2}
    rel = {"oem": 0, "white-label": 0, "former-oem": 1}
    return tuple(sorted(out, key=lambda x: (rel.get(x.relation, 2), rank.get(x.confidence, 3))))


def suggestion_allowed(db: Any, policy: str, name: str) -> bool:
    """May a replacement plan suggest a device of maker ``name`` under ``policy``? Not when the policy
    restricts the maker, nor when the name is an OEM label recorded as selling a restricted maker's
    devices (its current relation, any confidence: a replacement must not be a relabel)."""
    restricted, _ = restricted_name(db, policy, name)
    if restricted:
        return False
    for vid in db.lookup_names(name) or ():
        if any(link.relation != "former-oem" for link in label_makers(db, policy, vid)):
            return False
    return True
