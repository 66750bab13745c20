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
- :func:`owner_links` ``(db, policy, vendor_id)``: under a policy that covers owners (policies.yaml
  ``owners: true``), the companies that own the vendor *now* (vendors.yaml ``owned_by``) and that the
  policy's lists cover. Ownership is not manufacture: the evidence chain says "owned by". A vendor a
  covered company owns is restricted under such a policy (:func:`restricted_under` counts it).
- :func:`brand_covered` ``(db, policy, vendor_id)``: for the label a device is sold under (whoever made
  it): (restricted, lists, owner links) from the lists that name the label itself (a policy file's
  ``brands``) and from its current owners.
- :func:`flag_basis` ``(db, policy, maker_id, brand_id)``: why a device is flagged, one entry per list of
  the policy that covers its maker, its label or their owner: law, policy or due diligence, the
  chain (made by / owned by), the evidence and citations. Reports and the TUI show these.
- :func:`policy_info` ``(db, policy)``: the policy's name, description, whether it covers owners, where it
  was defined, and each list's name, basis, version date and citations.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["LabelLink", "OwnerLink", "brand_covered", "flag_basis", "flag_basis_names", "former_owners",
           "label_makers",
           "owner_links", "policy_covers_brands", "policy_info", "policy_lists", "policy_owners", "restricted_name",
           "restricted_under", "suggestion_allowed"]

BASIS_WORDS = {"law": "law", "policy": "government policy (not law)", "due_diligence": "due diligence (not law)"}


class LabelLink(NamedTuple):
    maker: str  # vendor id of the maker (its group)
    relation: str  # oem | white-label | former-oem
    confidence: str  # high | medium | low
    era: str


class OwnerLink(NamedTuple):
    subject: str  # vendor id of the owned company or brand
    owner: str  # vendor id of the owner's group
    since: str
    era: str
    cite: tuple[str, ...]
    lists: tuple[str, ...]  # the policy's lists that cover the owner (a brand is not on its owner's other lists)


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


def policy_owners(db: Any, policy: str) -> bool:
    """Does the policy cover owners as well as makers (policies.yaml ``owners: true``)?"""
    return bool(db.policy(policy).get("owners"))


def policy_covers_brands(db: Any, policy: str) -> bool:
    """Can a device's label flag it under this policy (owners covered, or a list naming a label)?"""
    cache = _cache(db)
    key = ("b?", policy)
    out = cache.get(key)
    if out is None:
        out = policy_owners(db, policy) or any(
            db.vendors[v].kind in ("oem_brand", "brand", "subsidiary")
            for lid in policy_lists(db, policy) for v in (db.lists[lid].get("covers") or {}) if v in db.vendors)
        cache[key] = out
    return out


def _ordered(lists: list[str] | tuple[str, ...], enforced: frozenset[str]) -> tuple[str, ...]:
    seq = list(dict.fromkeys(lists))
    return tuple(sorted(seq, key=lambda x: (x not in enforced, seq.index(x))))


def owner_links(db: Any, policy: str, vendor_id: str | None) -> tuple[OwnerLink, ...]:
    """The current owners of a vendor (or of its group) that the policy's lists cover, when the policy
    covers owners; () otherwise. A past owner (an ``owned_by`` entry with ``to``) never counts."""
    v = db.vendors.get(vendor_id) if vendor_id else None
    if v is None or not policy_owners(db, policy):
        return ()
    cache = _cache(db)
    key = ("o", policy, vendor_id)
    out = cache.get(key)
    if out is None:
        enforced = policy_lists(db, policy)
        links: list[OwnerLink] = []
        subjects = [v] + ([db.vendors[v.group]] if v.group and v.group != v.id else [])
        for subj in subjects:
            for o in subj.owned_by:
                if o.get("to"):
                    continue
                ov = db.vendors.get(o["owner"])
                if ov is None:
                    continue
                og = ov.group or ov.id
                lists = db.lists_for(og)
                if enforced.intersection(lists) and all(x.owner != og for x in links):
                    links.append(OwnerLink(subj.id, og, str(o.get("from") or ""), str(o.get("era") or ""),
                                           tuple(o.get("cite") or ()),
                                           _ordered([x for x in lists if x in enforced], enforced)))
        out = cache[key] = tuple(links)
    return out  # type: ignore[no-any-return]


def former_owners(db: Any, policy: str, vendor_id: str | None) -> tuple[OwnerLink, ...]:
    """Past owners of a vendor that the policy's lists cover (shown as history, never enforced); () for a
    policy that does not cover owners."""
    v = db.vendors.get(vendor_id) if vendor_id else None
    if v is None or not policy_owners(db, policy):
        return ()
    enforced = policy_lists(db, policy)
    out: list[OwnerLink] = []
    for o in v.owned_by:
        ov = db.vendors.get(o["owner"])
        if not o.get("to") or ov is None:
            continue
        og = ov.group or ov.id
        lists = [x for x in db.lists_for(og) if x in enforced]
        if lists:
            out.append(OwnerLink(v.id, og, str(o.get("from") or ""), str(o.get("era") or ""),
                                 tuple(o.get("cite") or ()), _ordered(lists, enforced)))
    return tuple(out)


def restricted_under(db: Any, policy: str, vendor_id: str | None) -> tuple[bool | None, tuple[str, ...]]:
    """(restricted, lists) for a vendor id under ``policy``; (None, ()) when the id is None or unknown.
    Under a policy that covers owners, a vendor that a covered company owns now is restricted too, and
    the owner's lists are among its lists."""
    if not vendor_id or vendor_id not in db.vendors:
        return None, ()
    cache = _cache(db)
    key = ("v", policy, vendor_id)
    out = cache.get(key)
    if out is None:
        enforced = policy_lists(db, policy)
        lists = db.lists_for(vendor_id)
        restricted = bool(enforced.intersection(lists))
        links = owner_links(db, policy, vendor_id)
        merged = list(lists) + [x for link in links for x in link.lists]
        out = (restricted or bool(links), _ordered(merged, enforced))
        cache[key] = out
    return out


def brand_covered(db: Any, policy: str, vendor_id: str | None
                  ) -> tuple[bool, tuple[str, ...], tuple[OwnerLink, ...]]:
    """Whether the label a device is sold under flags it, whoever made it: a list of the policy that names
    the label itself (a policy file's ``brands``), or a covered company that owns it now."""
    v = db.vendors.get(vendor_id) if vendor_id else None
    if v is None:
        return False, (), ()
    enforced = policy_lists(db, policy)
    direct = [lid for lid in enforced if vendor_id in (db.lists[lid].get("covers") or {})]
    links = owner_links(db, policy, vendor_id)
    lists = _ordered(direct + [x for link in links for x in link.lists], enforced)
    return bool(direct or links), lists, links


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
        for x in (*ls, *ls2):
            if x not in lists:
                lists.append(x)
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


# ---------------------------------------------------------------------------------------------- why flagged

def _vendor_name(db: Any, vid: str) -> str:
    v = db.vendors.get(vid)
    return v.name if v is not None else vid


def _entry(db: Any, lid: str, vid: str) -> dict[str, Any]:
    """A list's entry for a vendor (or for its group, where the list covers affiliates)."""
    covers = db.lists[lid].get("covers") or {}
    v = db.vendors.get(vid)
    e = covers.get(vid)
    if e is None and v is not None and db.lists[lid].get("affiliates"):
        e = covers.get(v.group)
    return e if isinstance(e, dict) else {}


def _evidence(entry: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for e in entry.get("evidence") or ():
        if isinstance(e, dict):
            cite = e.get("cite")
            out.append({"kind": str(e.get("kind") or ""), "date": str(e.get("date") or ""),
                        "what": str(e.get("what") or ""),
                        "cite": [cite] if isinstance(cite, str) else [str(c) for c in cite or ()]})
    return out


def _basis_item(db: Any, lid: str, vid: str, via: str, why: str, chain_cite: tuple[str, ...] = (),
                subject: str | None = None) -> dict[str, Any]:
    from fingerprints.db import list_basis

    spec = db.lists[lid]
    entry = _entry(db, lid, vid)
    cite = entry.get("cite")
    cites = [cite] if isinstance(cite, str) else [str(c) for c in cite or ()]
    evidence = _evidence(entry)
    cites += [c for e in evidence for c in e["cite"]]
    list_cite = spec.get("cite")
    list_cites = [list_cite] if isinstance(list_cite, str) else [str(c) for c in list_cite or ()]
    basis = list_basis(spec)
    out: dict[str, Any] = {
        "list": lid, "name": str(spec.get("name") or lid), "basis": basis, "basis_text": BASIS_WORDS[basis],
        "via": via, "vendor": _vendor_name(db, vid), "why": why,
        "since": str(entry.get("since") or spec.get("since") or "") or None,
        "scope": str(entry.get("scope") or "") or None,
        "evidence": evidence,
        "cite": list(dict.fromkeys(list(chain_cite) + cites + (list_cites if not cites else []))),
    }
    if subject:
        out["subject"] = subject
    if entry.get("note"):
        out["note"] = str(entry["note"])
    return out


def flag_basis(db: Any, policy: str, maker_id: str | None, brand_id: str | None = None) -> list[dict[str, Any]]:
    """Why a device is flagged under ``policy``: one item per list of the policy that covers its maker,
    the label it is sold under, or a company that owns either now. Each item: list, name, basis (law,
    policy, due_diligence) and its words, via (made_by, label, owned_by), vendor (the covered company),
    subject (owned_by: the owned brand or maker), why (one sentence), since, scope, evidence (due diligence:
    kind, date, what, cite), cite (the ownership's sources first, then the entry's or the list's). Empty
    when nothing the policy enforces covers the device."""
    enforced = policy_lists(db, policy)
    order = [x for x in (db.policy(policy).get("lists") or ()) if x in enforced]
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str]] = set()

    def add(item: dict[str, Any]) -> None:
        k = (item["list"], item["via"], item["vendor"])
        if k not in seen:
            seen.add(k)
            out.append(item)

    maker = db.vendors.get(maker_id) if maker_id else None
    if maker is not None:
        mg = maker.group or maker.id
        for lid in order:
            if lid in db.lists_for(mg) or lid in db.lists_for(maker.id):
                add(_basis_item(db, lid, mg, "made_by", f"made by {_vendor_name(db, mg)}, which the list covers"))
    brand = db.vendors.get(brand_id) if brand_id else None
    subjects = ([maker.id] if maker is not None else []) + ([brand.id] if brand is not None and
                                                             (maker is None or brand.id != maker.id) else [])
    for vid in subjects:
        for link in owner_links(db, policy, vid):
            subj, owner = _vendor_name(db, link.subject), _vendor_name(db, link.owner)
            era = f" ({link.era})" if link.era else (f" (since {link.since})" if link.since else "")
            for lid in order:
                if lid in link.lists:
                    add(_basis_item(db, lid, link.owner, "owned_by",
                                    f"{subj} is owned by {owner}{era}, which the list covers (ownership, not "
                                    "manufacture)", link.cite, subject=subj))
    if brand is not None and (maker is None or brand.id != maker.id):
        for lid in order:
            if brand.id in (db.lists[lid].get("covers") or {}):
                add(_basis_item(db, lid, brand.id, "label", f"sold under the {brand.name} label, which the "
                                "list names (whoever made it)"))
    rank = {"law": 0, "policy": 1, "due_diligence": 2}
    out.sort(key=lambda x: rank.get(x["basis"], 3))
    return out


def _name_id(db: Any, name: str | None, group: bool) -> str | None:
    if not name:
        return None
    vids = db.lookup_names(name)
    if not vids:
        return None
    v = db.vendors[vids[0]]
    return (v.group or v.id) if group else v.id


def flag_basis_names(db: Any, policy: str, manufacturer: str | None, brand: str | None) -> list[dict[str, Any]]:
    """:func:`flag_basis` for a stored device (its maker's and brand's names, as the store keeps them)."""
    return flag_basis(db, policy, _name_id(db, manufacturer, True), _name_id(db, brand, False))


def list_info(db: Any, lid: str) -> dict[str, Any]:
    from fingerprints.db import list_basis

    spec = db.lists[lid]
    cite = spec.get("cite")
    basis = list_basis(spec)
    return {"id": lid, "name": str(spec.get("name") or lid), "basis": basis, "basis_text": BASIS_WORDS[basis],
            "version": str(spec.get("version") or "") or None, "since": str(spec.get("since") or "") or None,
            "jurisdiction": str(spec.get("jurisdiction") or "") or None,
            "prohibits": str(spec.get("prohibits") or "") or None,
            "cite": [cite] if isinstance(cite, str) else [str(c) for c in cite or ()],
            "source": str(spec.get("source") or "shipped")}


def policy_info(db: Any, policy: str) -> dict[str, Any]:
    """The policy as a report names it: name, description, owners covered, where it was defined, its lists."""
    spec = db.policy(policy)
    return {"name": policy, "description": str(spec.get("description") or "") or None,
            "owners": bool(spec.get("owners")), "source": str(spec.get("source") or "shipped"),
            "lists": [list_info(db, lid) for lid in spec.get("lists") or () if lid in db.lists]}
