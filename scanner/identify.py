"""Evidence -> identification: who really made a device, what it is, and whether the policy restricts it.

Every rule that fires (fingerprints/rules/*.yaml) and every MAC registry answer is one piece of
evidence with a strength (proof > strong > medium > weak > hint; restrictions.md 2.5). Pieces that
name a maker (its firmware format, its API answering, its model family, its registered OUI) add up
per maker group; pieces that only name a label (an OEM brand's name, serial prefix or OUI) set the
brand and never the maker, so an OEM label on a maker's firmware reads as a relabel, not a
contradiction. Hints alone never establish a maker. Two makers with comparable evidence, or a
registrant that the device's own name contradicts, give ``manufacturer: null``: a wrong maker is
worse than none.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fingerprints.db import STRENGTHS, Database, RuleMatch, display_registrant, load_database, norm_name
from fingerprints.fields import record_fields
from scanner.evidence import (
    EvidenceError,
    EvidenceHit,
    EvidenceRecord,
    Identification,
    normalize_mac,
    parse_record,
    read_records,
)

THRESHOLD = STRENGTHS["weak"]  # a weak claim is enough when nothing contradicts it
CONFLICT_MARGIN = 0.2  # two makers closer than this: neither is established
_RANK = {"proof": 4, "strong": 3, "medium": 2, "weak": 1, "hint": 0}
_OUI_STRENGTH_OWN = "strong"  # the record's own MAC in the registry (restrictions.md 2.5)
_RAW_GROUPS = {"@model": "model", "@firmware": "firmware", "@serial": "serial"}
_MEMO_SIZE = 50_000  # (field, value) pairs remembered; cleared when full
_MEMO_VALUE_MAX = 512
_MAC_SEP = str.maketrans("", "", ":-. ")
_HEXDIGITS = frozenset("0123456789abcdef")


def _hit_rank(h: EvidenceHit) -> int:
    return -_RANK.get(h.strength, 0)


def _fast_mac(value: str) -> str | None:
    d = value.translate(_MAC_SEP).lower()
    if len(d) != 12 or not _HEXDIGITS.issuperset(d):
        return normalize_mac(value)
    return ":".join((d[0:2], d[2:4], d[4:6], d[6:8], d[8:10], d[10:12]))


def _raw_ok(attr: str, value: str) -> bool:
    """A device's own words are a usable model only when they look like one: SADP's DeviceType and
    magicBox's deviceType are numeric class codes ("138", "31"), not models."""
    if attr == "model":
        v = value.strip()
        return len(v) >= 3 and any(c.isalpha() for c in v)
    return bool(value.strip())


_NOTHING: tuple[tuple[Any, ...], str | None] = ((), None)  # what a field no rule reads yields
_Plan = tuple[tuple[tuple[Any, int, Any], ...], tuple[Any, ...], str | None]


class _Acc:
    """Per-record accumulator (plain attributes: cheap to build, 100k records a second matter)."""

    __slots__ = ("hits", "maker", "maker_hint", "brands", "registrants", "unknown_names", "attrs", "components",
                 "notes", "module")

    def __init__(self) -> None:
        self.hits: list[EvidenceHit] = []
        self.maker: dict[str, float] = {}  # group id -> 1 - prod(1 - w) over non-hint claims
        self.maker_hint: dict[str, float] = {}
        self.brands: list[tuple[int, float, str, str | None]] = []  # (priority, weight, name, vendor id)
        self.registrants: list[tuple[float, str]] = []
        self.unknown_names: list[str] = []
        self.attrs: dict[str, tuple[float, str]] = {}  # model/firmware/serial/device_type -> (weight, value)
        self.components: list[str] = []
        self.notes: list[str] = []
        self.module = False  # a MAC from a network-module or chip maker's block


class Identifier:
    """``Identifier(policy="ndaa889").identify(record) -> Identification``; never raises."""

    def __init__(self, policy: str | None = None, db: Database | None = None) -> None:
        self.db = db or load_database()
        self.policy_name = policy or self.db.default_policy
        spec = self.db.policy(self.policy_name)  # FingerprintError for an unknown name
        self.policy_lists = frozenset(spec.get("lists") or ())
        self._index = self.db.index
        self._vendors = self.db.vendors
        self._serial_rules = self.db.index.get("@serial", [])
        self._memo: dict[tuple[str, str], tuple[tuple[tuple[RuleMatch, EvidenceHit], ...], str | None]] = {}
        self._plan: dict[str, _Plan] = {}
        self._unread: set[str] = set()  # field names no rule reads
        self._oui_memo: dict[str, tuple[str | None, str | None]] = {}  # 9 hex digits -> (registrant, vendor)

    def _plan_field(self, fname: str) -> _Plan:
        """The rules a field name is matched by (its own and its groups', once each), worked out once
        per name: (regex search, cap, rule) for pattern rules, the lookup rules, the raw attribute."""
        from fingerprints.db import keys_for

        keys = keys_for(fname)
        all_rules = list({id(r): r for k in keys for r in self._index.get(k, ())}.values())
        rules = tuple((r.regex.search, r.cap, r) for r in all_rules if r.regex is not None)
        lookups = tuple(r for r in all_rules if r.regex is None)
        raw_attr = next((_RAW_GROUPS[k] for k in keys if k in _RAW_GROUPS), None)
        entry = (rules, lookups, raw_attr)
        if len(self._plan) < 20000:  # field names come from devices: bound the cache
            self._plan[fname] = entry
        return entry

    def _match_field(self, fname: str, value: str, raw: dict[str, str]
                     ) -> tuple[tuple[tuple[RuleMatch, EvidenceHit], ...], str | None]:
        """Every rule match for one (field, value): a pure function of the two, so it is memoised
        (a fleet repeats the same banners); the identifier's judgement is made per record."""
        entry = self._plan.get(fname)
        if entry is None:
            entry = self._plan_field(fname)
        rules, lookups, raw_attr = entry
        if not rules and not lookups and raw_attr is None:
            if len(self._unread) < 20000:
                self._unread.add(fname)
            return _NOTHING
        if raw_attr is not None and raw_attr not in raw and _raw_ok(raw_attr, value):
            raw[raw_attr] = value
        match = self.db.match_rule
        out: list[RuleMatch] = []
        for search, cap, rule in rules:
            rm = search(value, 0, cap)  # the common case: no match, kept cheap
            if rm is not None:
                m = match(rule, value, rm)
                if m is not None:
                    out.append(m)
        for rule in lookups:
            m = match(rule, value)
            if m is not None:
                out.append(m)
        return tuple((m, EvidenceHit(m.rule.id, fname, value, m.rule.strength, m.rule.note)) for m in out), raw_attr

    # ------------------------------------------------------------------ public
    def identify(self, record: EvidenceRecord | dict[str, Any]) -> Identification:
        rid = None
        try:
            if not isinstance(record, EvidenceRecord):
                record = parse_record(record)
            rid = record.id
            return self._identify(record)
        except EvidenceError as exc:
            return Identification(id=rid, notes=(f"unreadable record: {exc}",))
        except Exception as exc:  # a bug must not take a scan down; say so in the result
            return Identification(id=rid, notes=(f"identification failed: {type(exc).__name__}: {exc}"[:300],))

    # ------------------------------------------------------------------ matching
    def _identify(self, rec: EvidenceRecord) -> Identification:
        acc = _Acc()
        raw: dict[str, str] = {}
        memo = self._memo
        second: list[tuple[RuleMatch, str, str, EvidenceHit, tuple[Any, ...]]] = []
        unread = self._unread
        take = self._take
        for fname, value in record_fields(rec):
            if fname in unread:
                continue  # no rule reads this field (a device's own MAC, most headers)
            if len(value) > _MEMO_VALUE_MAX:  # bodies: not remembered, so not hashed either
                found = self._match_field(fname, value, raw)
            elif (found := memo.get(key := (fname, value))) is None:
                found = self._match_field(fname, value, raw)
                if found is not _NOTHING:  # a field no rule reads (a device's own MAC) is not
                    # remembered: it would crowd out the banners
                    if len(memo) >= _MEMO_SIZE:
                        memo.clear()
                    memo[key] = found
            else:
                raw_attr = found[1]
                if raw_attr is not None and raw_attr not in raw and _raw_ok(raw_attr, value):
                    raw[raw_attr] = value
            for m, hit in found[0]:
                if m.rule.family == "recog" and m.vendors:  # a second source's maker claim:
                    second.append((m, fname, value, hit, found[0]))  # weighed after camsweep's own evidence
                else:
                    take(acc, m, fname, value, 0, hit)
        if rec.mac:  # already normalised by parse_record
            self._oui(acc, rec.mac, "mac", _OUI_STRENGTH_OWN, normalised=True)
        if second:
            strong = [g for g, score in acc.maker.items() if score >= STRENGTHS["strong"]]
            for m, fname, value, hit, same in second:
                self._take_second(acc, m, fname, value, hit, strong, same)
        for attr, value in raw.items():  # the device's own words where no rule parsed them
            if attr not in acc.attrs:
                acc.attrs[attr] = (0.0, value.strip()[:128])
        return self._decide(rec, acc)

    def _take(self, acc: _Acc, m: RuleMatch, fname: str, value: str, depth: int = 0,
              hit: EvidenceHit | None = None) -> None:
        rule = m.rule
        w = rule.weight
        if m.unknown_name is not None:
            if fname != "http.title":
                acc.unknown_names.append(m.unknown_name)
            return
        acc.hits.append(hit or EvidenceHit(rule.id, fname, value, rule.strength, rule.note))
        for vid in m.vendors:
            self._claim(acc, vid, w, rule.strength)
        if rule.brand:
            acc.brands.append((2, w, rule.brand, None))
        if rule.component:
            if rule.component not in acc.components:
                acc.components.append(rule.component)
        ex = m.extract
        dt = ex.get("device_type") or rule.device_type
        if dt:
            self._attr(acc, "device_type", dt, w)
        if not ex:
            return
        for key in ("model", "firmware"):
            if key in ex and m.vendors:
                self._attr(acc, key, ex[key], w)
        if "serial" in ex:
            self._attr(acc, "serial", ex["serial"], w * 0.9)
            if depth == 0:  # a serial found in a realm or USN is matched as a serial
                for srule in self._serial_rules:
                    sm = self.db.match_rule(srule, ex["serial"])
                    if sm is not None:
                        self._take(acc, sm, fname + "#serial", ex["serial"], depth + 1)
        if "brand" in ex:
            for vid in self.db.lookup_names(ex["brand"]):
                v = self._vendors[vid]
                acc.brands.append((3 if v.kind in ("oem_brand", "subsidiary", "brand") else 1, STRENGTHS["weak"],
                                   v.name, vid))
        if "mac" in ex:  # a MAC inside another value: as strong as the rule that found it, at most medium
            strength = rule.strength if not m.vendors and rule.strength in ("hint", "weak") else "medium"
            self._oui(acc, ex["mac"], fname, strength)

    def _take_second(self, acc: _Acc, m: RuleMatch, fname: str, value: str, hit: EvidenceHit,
                     strong: list[str], same: tuple[Any, ...]) -> None:
        """A second source's maker claim (Recog) counts unless camsweep's own rules already read a maker
        in the same value (the same evidence is not counted twice, and camsweep's rules are the more
        specific), or camsweep's own evidence names another maker strongly (relabels, firmware and
        serial formats, vendor APIs)."""
        why = ""
        group = self._vendors[m.vendors[0]].group
        for x, _ in same:  # a name looked up in the value (a lookup rule) is less specific than Recog
            if x.vendors and x.rule.family != "recog" and (
                    not x.rule.lookup or any(self._vendors[v].group == group for v in x.vendors)):
                why = f"the same value as {x.rule.id}"
                break
        if not why:
            other = next((g for g in strong if g != group), None)
            if other is not None:
                why = f"camsweep's own evidence names {self._vendors[other].name}"
        if why:
            acc.hits.append(EvidenceHit(hit.rule, fname, value, "hint", f"{hit.note}; not counted: {why}"[:240]))
            return
        self._take(acc, m, fname, value, hit=hit)

    def _claim(self, acc: _Acc, vid: str, w: float, strength: str, registry: bool = False) -> None:
        v = self._vendors[vid]
        if v.kind == "component_maker":
            if v.risk and v.risk not in acc.components:
                acc.components.append(v.risk)
            if not (registry and v.parent):
                # a chip named in a banner is a component; a module maker's MAC block names the module
                acc.module = True
                return
            # a block registered to a restricted group's chip subsidiary (HiSilicon): that group's device
        if strength != "hint":  # a hint does not name the label either
            acc.brands.append((3 if v.kind in ("oem_brand", "subsidiary", "brand") else 1, w, v.name, vid))
        if v.kind == "oem_brand":
            return
        group = v.group
        if strength == "hint":
            acc.maker_hint[group] = 1 - (1 - acc.maker_hint.get(group, 0.0)) * (1 - w)
        else:
            acc.maker[group] = 1 - (1 - acc.maker.get(group, 0.0)) * (1 - w)

    @staticmethod
    def _attr(acc: _Acc, key: str, value: str, w: float) -> None:
        cur = acc.attrs.get(key)
        if cur is None or w > cur[0]:
            acc.attrs[key] = (w, value.strip()[:128])

    def _oui(self, acc: _Acc, mac: str, source: str, strength: str, normalised: bool = False) -> None:
        norm = mac if normalised else _fast_mac(mac)
        if norm is None:
            return
        first = int(norm[:2], 16)
        if first & 0x02 or first & 0x01:  # locally administered (randomised) or multicast: no registrant
            return
        hexd = norm.replace(":", "").upper()
        known = self._oui_memo.get(hexd[:9])  # the registry's longest block is 9 digits (MA-S)
        if known is None:
            org = self.db.oui.lookup(hexd)
            known = (org, self.db.vendor_for_registrant(org) if org is not None else None)
            if len(self._oui_memo) < 50_000:
                self._oui_memo[hexd[:9]] = known
        org, vid = known
        if org is None:
            return
        field = "mac" if source == "mac" else f"mac (from {source})"
        w = STRENGTHS[strength]
        if vid is None:
            acc.hits.append(EvidenceHit("oui/registrant", field, f"{norm} {org}", "weak",
                                        "IEEE registrant not mapped to a known maker"))
            if source == "mac":  # only the device's own MAC names its maker by registrant
                acc.registrants.append((w, org))
            return
        v = self._vendors[vid]
        acc.hits.append(EvidenceHit(f"oui/{vid}", field, f"{norm} {org}", strength,
                                    f"IEEE registry: {org}" + (" (an OEM brand's block: the label, not the maker)"
                                                               if v.kind == "oem_brand" else "")))
        self._claim(acc, vid, w, strength, registry=True)

    # ------------------------------------------------------------------ decision
    def _decide(self, rec: EvidenceRecord, acc: _Acc) -> Identification:
        db = self.db
        notes = acc.notes
        maker_id: str | None = None
        manufacturer: str | None = None
        confidence = 0.0
        contenders: tuple[str, ...] = ()
        ranked = sorted(acc.maker.items(), key=lambda kv: -kv[1]) if len(acc.maker) > 1 else list(acc.maker.items())
        if ranked and ranked[0][1] >= THRESHOLD:
            top, score = ranked[0]
            if len(ranked) > 1 and ranked[1][1] >= THRESHOLD and score - ranked[1][1] < CONFLICT_MARGIN:
                other = ranked[1][0]
                contenders = (top, other)
                notes.append(f"conflicting evidence: {self._vendors[top].name} ({score:.2f}) vs "
                             f"{self._vendors[other].name} ({ranked[1][1]:.2f}); maker not established")
            else:
                maker_id = top
                manufacturer = self._vendors[top].name
                hint = acc.maker_hint.get(top, 0.0)
                confidence = 1 - (1 - score) * (1 - hint)
        elif acc.registrants and not ranked:
            w, org = max(acc.registrants)
            name = display_registrant(org)
            oem_brands = [b for b in acc.brands if b[3] and self._vendors[b[3]].kind == "oem_brand"]
            contradicted = [u for u in acc.unknown_names if norm_name(u) not in norm_name(org)]
            if oem_brands or contradicted:
                notes.append(f"the MAC's registrant ({name}) is not the name the device gives "
                             f"({(contradicted or [oem_brands[0][2]])[0]}): maker not established")
            else:
                manufacturer = name
                confidence = w * 0.8
                notes.append("maker from the IEEE registrant of the MAC address only")
        elif acc.module and not ranked:
            notes.append("only a chip or network-module maker is named: the device maker is not established")
        elif acc.unknown_names and not ranked:
            notes.append(f"device names itself {acc.unknown_names[0]!r}: not a maker camsweep knows")

        # brand: the label the device presents; an OEM or subsidiary label beats the maker's own name
        brand: str | None = None
        brands = acc.brands if manufacturer or not ranked else [b for b in acc.brands if b[0] >= 2]
        if brands:  # with conflicting makers only an OEM or subsidiary label is trusted
            best = max(brands, key=lambda b: (b[0], b[1]))
            brand = best[2]
            if best[3] and maker_id:
                bv = self._vendors[best[3]]
                if bv.kind == "oem_brand" and bv.group != maker_id:
                    notes.append(f"relabel: {bv.name} label on {manufacturer}-made hardware")
                    for o in bv.oem:
                        if o.get("maker") == maker_id and o.get("era"):
                            notes.append(f"{bv.name} / {manufacturer}: {o['era']}")
        if brand is None and manufacturer:
            brand = manufacturer

        lists: tuple[str, ...] = ()
        restricted: bool | None = None
        if maker_id:
            lists = db.lists_for(maker_id)
            restricted = bool(self.policy_lists.intersection(lists))
        elif manufacturer:  # a registrant camsweep has no vendor entry for: on no list it knows
            restricted = False
        elif contenders:  # maker not established, but if every candidate is covered, so is the device
            common = set(db.lists_for(contenders[0])).intersection(db.lists_for(contenders[1]))
            if self.policy_lists.intersection(common):
                lists = tuple(x for x in db.lists_for(contenders[0]) if x in common)
                restricted = True
                notes.append("restricted whichever of the candidate makers it is")
        component_risk = tuple(acc.components)
        if "hisilicon_soc" in component_risk and not (maker_id and db.vendors[maker_id].group == "huawei"):
            notes.append("HiSilicon (Huawei) SoC indicated: component risk under section 889; ask for a BOM attestation")

        attrs = acc.attrs
        hits = acc.hits
        evidence = tuple(sorted(hits, key=_hit_rank)) if len(hits) > 1 else tuple(hits)
        return Identification(
            id=rec.id,
            manufacturer=manufacturer,
            brand=brand,
            model=attrs["model"][1] if "model" in attrs else None,
            firmware=attrs["firmware"][1] if "firmware" in attrs else None,
            device_type=attrs["device_type"][1] if "device_type" in attrs else None,
            restricted=restricted,
            lists=lists,
            confidence=min(confidence, 0.99),
            evidence=evidence,
            serial=attrs["serial"][1] if "serial" in attrs else None,
            component_risk=component_risk,
            notes=tuple(notes),
        )


def identify_record(record: EvidenceRecord | dict[str, Any], policy: str | None = None) -> Identification:
    return Identifier(policy).identify(record)


def identify_lines(lines: Iterable[str], identifier: Identifier) -> Iterator[tuple[int, Identification | EvidenceError]]:
    """(line number, identification or the error that line has) for each non-blank JSONL line.

    The seam for other inputs (nmap XML, pcap): anything that yields EvidenceRecords can be fed to
    :meth:`Identifier.identify` the same way.
    """
    for n, item in read_records(lines):
        if isinstance(item, EvidenceError):
            yield n, item
        else:
            yield n, identifier.identify(item)
