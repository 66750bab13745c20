"""Evidence -> identification: who really made a device, what it is, and whether the policy restricts it.

Every rule that fires (fingerprints/rules/*.yaml) and every MAC registry answer is one piece of
evidence with a strength (proof > strong > medium > weak > hint; docs/restrictions.md 2.5). Pieces that
name a maker (its firmware format, its API answering, its model family, its registered OUI) add up
per maker group; pieces that only name a label (an OEM brand's name, serial prefix or OUI) set the
brand and never the maker, so an OEM label on a maker's firmware reads as a relabel, not a
contradiction. Hints never count.

A maker is established by one medium-or-stronger clue, or by two weak clues from different probes
(protocols or evidence sources: two fields of one ONVIF answer or one HTTP response are one probe).
One weak clue, or weak clues of one probe, establish nothing; nor does a MAC registrant camsweep has
no vendor for (it may be a board maker or an OEM label). Two makers with comparable evidence, or a
maker established by weak clues only against another maker's claim, give ``manufacturer: null``: a
wrong maker is worse than none. Whether the maker is restricted is asked of fingerprints.policy (the
one decision). Where the evidence points at a restricted maker without establishing it (weak clues
only, an OEM label whose relation is not established by the device's own evidence, conflicting
claims), the result carries ``review`` (the suspected maker and why); restricted is then never
``true`` from weak evidence alone, nor ``false`` from a device's own weak claim.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fingerprints.db import STRENGTHS, Database, RuleMatch, display_registrant, load_database, norm_name
from fingerprints.fields import record_fields
from fingerprints.policy import (
    brand_covered,
    former_owners,
    label_makers,
    owner_links,
    policy_covers_brands,
    policy_lists,
    restricted_under,
)
from scanner.evidence import (
    EvidenceError,
    EvidenceHit,
    EvidenceRecord,
    Identification,
    normalize_mac,
    parse_record,
)

THRESHOLD = STRENGTHS["weak"]  # the least score a maker's claims can add up to (see _established)
# The IEEE registrant of the device's own MAC is its maker's registered block (strong evidence,
# docs/restrictions.md 2.5) unless the registry knows the registrant as an OEM label or a board/module maker
# (kind oem_brand / component_maker: the label or the board, never the maker), or the device's own name
# contradicts it. A registrant camsweep has no vendor entry for names the maker (on no list) when nothing
# else is seen; False would leave every such device unknown (measured on the held-out set: 18 of 18
# registrant-only answers were right, 0 false flags either way).
REGISTRANT_ALONE_NAMES_MAKER = True
CONFLICT_MARGIN = 0.2  # two makers closer than this: neither is established
_RANK = {"proof": 4, "strong": 3, "medium": 2, "weak": 1, "hint": 0}
_OUI_STRENGTH_OWN = "strong"  # the record's own MAC in the registry (docs/restrictions.md 2.5)
_RAW_GROUPS = {"@model": "model", "@firmware": "firmware", "@serial": "serial"}
_MEMO_SIZE = 50_000  # (field, value) pairs remembered; cleared when full
_MEMO_VALUE_MAX = 512
_MAC_SEP = str.maketrans("", "", ":-. ")
_HEXDIGITS = frozenset("0123456789abcdef")


_WEAK = _RANK["weak"]
_MEDIUM = _RANK["medium"]
_BLOCK_NOTE = {"oem_brand": " (an OEM brand's block: the label, not the maker)",
               "component_maker": " (a chip or module maker's block: the board, not the device's maker)"}


def _hit_rank(h: EvidenceHit) -> int:
    return -_RANK.get(h.strength, 0)


def _neg_score(kv: tuple[str, float]) -> float:
    return -kv[1]


def _label_key(b: tuple[int, float, str, str | None]) -> tuple[int, float]:
    return (-b[0], -b[1])


def _brand_key(b: tuple[int, float, str, str | None]) -> tuple[int, float]:
    return (b[0], b[1])


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


_PROBES: dict[str, str] = {}  # field name -> its probe, for the names whose probe is not in the value


def _probe_of(field: str, value: str) -> str:
    """:func:`_probe`, remembered per field name (a "<head>.protocol" field's probe is its value)."""
    p = _PROBES.get(field)
    if p is None:
        p = _probe(field, value)
        if not field.endswith(".protocol") and len(_PROBES) < 20000:
            _PROBES[field] = p
    return p


def _probe(field: str, value: str = "") -> str:
    """The probe a field came from: two clues of one probe are not independent. The protocol (http,
    onvif, wsd, rtsp, ssdp, mdns, tls, dhcp), a banner's or a discovery reply's own protocol, or the MAC
    registry ("oui") for a MAC address (the record's own, or one found inside another value)."""
    if field.startswith("mac"):
        return "oui"
    head, _, rest = field.partition(".")
    if head in ("banners", "discovery"):
        if rest == "protocol":
            return f"{head}.{value}"
        return f"{head}.{rest.split('.', 1)[0].split('#', 1)[0]}"
    return head.split("#", 1)[0]


class _Acc:
    """Per-record accumulator (plain attributes: cheap to build, 100k records a second matter)."""

    __slots__ = ("hits", "maker", "maker_hint", "brands", "registrants", "unknown_names", "attrs", "components",
                 "notes", "module", "claims", "chips")

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
        self.claims: dict[str, list[tuple[int, str, str]]] = {}  # group -> (rank, probe, rule id), non-hint
        self.chips: list[str] = []  # vendor ids of chip makers whose MAC block the device's MAC is in


class Identifier:
    """``Identifier(policy="ndaa889").identify(record) -> Identification``; never raises."""

    def __init__(self, policy: str | None = None, db: Database | None = None) -> None:
        self.db = db or load_database()
        self.policy_name = policy or self.db.default_policy
        self.policy_lists = policy_lists(self.db, self.policy_name)  # FingerprintError for an unknown name
        # can the label a device is sold under flag it (a policy covering owners, or naming labels)?
        self._by_brand = policy_covers_brands(self.db, self.policy_name)
        self._index = self.db.index
        self._vendors = self.db.vendors
        self._serial_rules = self.db.index.get("@serial", [])
        self._memo: dict[tuple[str, str], tuple[tuple[tuple[RuleMatch, EvidenceHit], ...], str | None]] = {}
        self._plan: dict[str, _Plan] = {}
        self._unread: set[str] = set()  # field names no rule reads
        self._oui_memo: dict[str, tuple[str | None, str | None]] = {}  # 6 or 9 hex digits -> (registrant, vendor)
        self._oui_notes: dict[str, str] = {}  # registrant -> the note of its hit (its vendor is fixed)
        self._registrant_vendor: dict[str, str | None] = {}  # registrant -> vendor id (vendor_for_registrant)
        # MA-L prefixes (6 digits) with a longer block (MA-M, MA-S) inside: a MAC under one of these is
        # remembered by 9 digits, any other by its 6 (its answer cannot depend on more); None: always 9
        by_len = getattr(self.db.oui, "by_len", None)
        self._long_blocks: set[str] | None = None
        if isinstance(by_len, dict) and set(by_len) <= {6, 7, 9}:
            self._long_blocks = {p[:6] for n in (7, 9) for p in by_len.get(n, ())}
        # restricted_under and label_makers answers for this identifier's policy (pure functions of the
        # database and the policy; vendor ids are the registry's, so these stay small)
        self._restr: dict[str, tuple[bool | None, tuple[str, ...]]] = {}
        self._labels: dict[str, Any] = {}

    def _restricted(self, g: str) -> tuple[bool | None, tuple[str, ...]]:
        out = self._restr.get(g)
        if out is None:
            out = self._restr[g] = restricted_under(self.db, self.policy_name, g)
        return out

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
        if m.vendors:
            claim = self._claim
            strength = rule.strength
            probe = _probe_of(fname, value)
            for vid in m.vendors:
                claim(acc, vid, w, strength, False, probe, rule.id)  # positional: per hit, so it counts
        if rule.brand:
            acc.brands.append((2, w, rule.brand, None))
        if rule.component:
            if rule.component not in acc.components:
                acc.components.append(rule.component)
        ex = m.extract
        dt = ex.get("device_type") or rule.device_type
        if dt:
            cur = acc.attrs.get("device_type")  # _attr, inline
            if cur is None or w > cur[0]:
                acc.attrs["device_type"] = (w, dt.strip()[:128])
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
        rank = _RANK.get(m.rule.strength, 0)
        for x, _ in same:  # a name looked up in the value (a lookup rule) is less specific than Recog:
            # it yields to Recog's stronger reading of the same value ("^NETGEAR GS108T$" is a whole
            # firmware title, not a maker's name somewhere in a page)
            if x.vendors and x.rule.family != "recog" and (
                    not x.rule.lookup or (any(self._vendors[v].group == group for v in x.vendors)
                                          and _RANK.get(x.rule.strength, 0) >= rank)):
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

    def _claim(self, acc: _Acc, vid: str, w: float, strength: str, registry: bool = False,
               probe: str = "", rid: str = "") -> None:
        v = self._vendors[vid]
        if v.kind == "component_maker":
            if v.risk and v.risk not in acc.components:
                acc.components.append(v.risk)
            # a chip named in a banner is a component; a chip or module maker's MAC block names the
            # module (or board), never the device's maker, even a restricted group's chip arm (HiSilicon)
            acc.module = True
            if registry and vid not in acc.chips:
                acc.chips.append(vid)
            return
        if strength != "hint":  # a hint does not name the label either
            acc.brands.append((3 if v.kind in ("oem_brand", "subsidiary", "brand") else 1, w, v.name, vid))
        if v.kind == "oem_brand":
            return
        group = v.group
        if strength == "hint":
            acc.maker_hint[group] = 1 - (1 - acc.maker_hint.get(group, 0.0)) * (1 - w)
        else:
            acc.maker[group] = 1 - (1 - acc.maker.get(group, 0.0)) * (1 - w)
            cl = acc.claims.get(group)
            if cl is None:
                acc.claims[group] = [(_RANK[strength], probe, rid)]
            else:
                cl.append((_RANK[strength], probe, rid))

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
        long_blocks = self._long_blocks
        key = hexd[:6] if long_blocks is not None and hexd[:6] not in long_blocks else hexd[:9]
        known = self._oui_memo.get(key)  # the registry's longest block is 9 digits (MA-S)
        if known is None:
            org = self.db.oui.lookup(hexd)
            vid = None
            if org is not None:
                if org in self._registrant_vendor:
                    vid = self._registrant_vendor[org]
                else:
                    vid = self.db.vendor_for_registrant(org)
                    if len(self._registrant_vendor) < 50_000:
                        self._registrant_vendor[org] = vid
            known = (org, vid)
            if len(self._oui_memo) < 50_000:
                self._oui_memo[key] = known
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
        rid = "oui/" + vid
        note = self._oui_notes.get(org)
        if note is None:
            note = f"IEEE registry: {org}" + _BLOCK_NOTE.get(v.kind, "")
            if len(self._oui_notes) < 50_000:
                self._oui_notes[org] = note
        acc.hits.append(EvidenceHit(rid, field, f"{norm} {org}", strength, note))
        self._claim(acc, vid, w, strength, True, "oui", rid)

    # ------------------------------------------------------------------ decision
    def _decide(self, rec: EvidenceRecord, acc: _Acc) -> Identification:
        # per record, so written for speed: no closures, no list built where a test will do (the common
        # case is one established maker with no rivals)
        vendors = self._vendors
        notes = acc.notes
        maker_id: str | None = None
        manufacturer: str | None = None
        confidence = 0.0
        contenders: tuple[str, ...] = ()
        review: dict[str, str] | None = None
        claims = acc.claims
        maker = acc.maker
        if len(maker) > 1:
            ranked = sorted(maker.items(), key=_neg_score)
            est = [(g, sc) for g, sc in ranked if _established(claims.get(g, ()))]
        else:
            ranked = list(maker.items())
            est = ranked if ranked and _established(claims.get(ranked[0][0], ())) else []

        if est:
            top, score = est[0]
            if len(est) > 1 and score - est[1][1] < CONFLICT_MARGIN:
                other = est[1][0]
                contenders = (top, other)
                notes.append(f"conflicting evidence: {vendors[top].name} ({score:.2f}) vs "
                             f"{vendors[other].name} ({est[1][1]:.2f}); maker not established")
            elif len(ranked) > 1 and _best(claims[top]) <= _WEAK:
                # weak clues only, against another maker's claim: neither is established
                other = next(g for g, _ in ranked if g != top)
                contenders = (top, other)
                notes.append(f"conflicting evidence: {vendors[top].name} from weak clues only vs "
                             f"{vendors[other].name} ({_rules(claims[other])}); maker not established")
            else:
                maker_id = top
                manufacturer = vendors[top].name
                hint = acc.maker_hint.get(top, 0.0)
                confidence = 1 - (1 - score) * (1 - hint)
        elif ranked:
            g = ranked[0][0]
            notes.append(f"{vendors[g].name} named by weak evidence of one probe only ({_rules(claims.get(g, ()))}): "
                         "maker not established")
        registrant_maker = False
        if maker_id is None:
            if acc.registrants:
                w, org = max(acc.registrants)
                if (REGISTRANT_ALONE_NAMES_MAKER and not ranked and not acc.module
                        and not any(b[3] and vendors[b[3]].kind == "oem_brand" for b in acc.brands)
                        and not any(norm_name(u) not in norm_name(org) for u in acc.unknown_names)):
                    manufacturer = display_registrant(org)
                    registrant_maker = True
                    confidence = w * 0.8
                    notes.append("maker from the IEEE registrant of the MAC address only")
                else:
                    notes.append(f"the MAC's IEEE registrant ({display_registrant(org)}) is not a maker camsweep "
                                 "knows (it may be a board maker or an OEM label): maker not established")
            if acc.module:
                notes.append("only a chip or network-module maker is named: the device maker is not established")
            if acc.unknown_names and not ranked:
                notes.append(f"device names itself {acc.unknown_names[0]!r}: not a maker camsweep knows")

        # brand: the label the device presents; an OEM or subsidiary label beats the maker's own name
        brand: str | None = None
        brand_vid: str | None = None
        brand_w = 0.0
        brands = acc.brands
        if brands and not (manufacturer or not ranked):
            brands = [b for b in brands if b[0] >= 2]
        if brands:  # without an established maker only an OEM or subsidiary label is trusted
            best = max(brands, key=_brand_key) if len(brands) > 1 else brands[0]
            brand = best[2]
            brand_vid, brand_w = best[3], best[1]
            if best[3] and maker_id:
                bv = vendors[best[3]]
                if bv.kind == "oem_brand" and bv.group != maker_id:
                    notes.append(f"relabel: {bv.name} label on {manufacturer}-made hardware")
                    for o in bv.oem:
                        if o.get("maker") == maker_id and o.get("era"):
                            notes.append(f"{bv.name} / {manufacturer}: {o['era']}")
        if brand is None and manufacturer:
            brand = manufacturer

        lists: tuple[str, ...] = ()
        restricted: bool | None = None
        if registrant_maker:  # a registrant camsweep has no vendor entry for: on no list it knows
            restricted = False
        if maker_id:
            restricted, lists = self._restricted(maker_id)
            if len(claims) > 1:  # another maker claimed too
                rivals = [g for g in claims if g != maker_id]
                if restricted:
                    g = max(rivals, key=lambda x: _best(claims[x]))
                    review = {"maker": manufacturer or "", "reason":
                              f"conflicting claims: {vendors[g].name} ({_rules(claims[g])}) against {manufacturer} "
                              f"({_rules(claims[maker_id])})"}
                elif not restricted:
                    bad = [g for g in rivals if self._restricted(g)[0]]
                    if bad:
                        g = max(bad, key=lambda x: _best(claims[x]))
                        if _best(claims[maker_id]) >= _RANK["strong"] and _best(claims[g]) <= _WEAK:
                            notes.append(f"a weak {vendors[g].name} clue ({_rules(claims[g])}) is outweighed by "
                                         f"{manufacturer}'s own evidence")
                        else:
                            restricted = None
                            review = {"maker": vendors[g].name, "reason":
                                      f"{manufacturer} ({_rules(claims[maker_id])}) but {vendors[g].name} evidence "
                                      f"from another probe ({_rules(claims[g])}): not cleared"}
        elif contenders:  # maker not established, but if every candidate is covered, so is the device
            r0, l0 = self._restricted(contenders[0])
            r1, l1 = self._restricted(contenders[1])
            both = all(_established(claims.get(g, ())) for g in contenders)  # never from weak clues alone
            if r0 and r1 and both:
                restricted = True
                lists = tuple(x for x in l0 if x in l1)
                notes.append("restricted whichever of the candidate makers it is")
            elif r0 or r1:
                g, o = contenders if r0 or not r1 else contenders[::-1]
                review = {"maker": vendors[g].name, "reason":
                          f"conflicting claims: {vendors[g].name} ({_rules(claims.get(g, ()))}) against "
                          f"{vendors[o].name} ({_rules(claims.get(o, ()))})"}
        else:
            for g, _ in ranked:
                if self._restricted(g)[0]:
                    review = {"maker": vendors[g].name, "reason":
                              f"weak evidence only ({_rules(claims.get(g, ()))}): not enough to establish the maker"}
                    break
        if review is None and maker_id is None:
            review = self._label_review(acc, brand)
        if self._by_brand:
            restricted, lists, review = self._owned_or_label(acc, maker_id, brand_vid, brand_w, restricted, lists,
                                                             review)

        component_risk = tuple(acc.components)
        if component_risk and "hisilicon_soc" in component_risk and not (
                maker_id and vendors[maker_id].group == "huawei"):
            notes.append("HiSilicon (Huawei) SoC indicated: component risk under section 889; ask for a BOM attestation")

        attrs = acc.attrs
        hits = acc.hits
        evidence = tuple(sorted(hits, key=_hit_rank)) if len(hits) > 1 else tuple(hits)
        if attrs:
            model = attrs["model"][1] if "model" in attrs else None
            firmware = attrs["firmware"][1] if "firmware" in attrs else None
            device_type = attrs["device_type"][1] if "device_type" in attrs else None
            serial = attrs["serial"][1] if "serial" in attrs else None
        else:
            model = firmware = device_type = serial = None
        # positional, in Identification's field order (keywords cost a measurable share per record):
        # id, manufacturer, brand, model, firmware, device_type, restricted, lists, confidence, evidence,
        # serial, component_risk, notes, review
        return Identification(rec.id, manufacturer, brand, model, firmware, device_type, restricted, lists,
                              min(confidence, 0.99), evidence, serial, component_risk, tuple(notes), review)

    def _owned_or_label(self, acc: _Acc, maker_id: str | None, brand_vid: str | None, brand_w: float,
                        restricted: bool | None, lists: tuple[str, ...], review: dict[str, str] | None
                        ) -> tuple[bool | None, tuple[str, ...], dict[str, str] | None]:
        """Under a policy that covers owners (or names labels): the maker's current owner, or the label the
        device is sold under (whoever made it) and that label's current owner. Ownership is never read as
        manufacture: the evidence says "owned by". A label known only from weak evidence gives "needs
        review", never a flag."""
        vendors = self._vendors
        db, policy = self.db, self.policy_name
        notes = acc.notes
        for link in owner_links(db, policy, maker_id) if maker_id else ():
            self._owner_hit(acc, link, "manufacturer", "strong")
        for vid in dict.fromkeys(x for x in (maker_id, brand_vid) if x):  # history: shown, never enforced
            for link in former_owners(db, policy, vid):
                notes.append(f"formerly owned by {vendors[link.owner].name} ({link.era or link.since}; on "
                             f"{', '.join(link.lists)}): a past owner, not a flag")
        if not brand_vid or brand_vid == maker_id or vendors[brand_vid].group == maker_id:
            return restricted, lists, review
        covered, blists, links = brand_covered(db, policy, brand_vid)
        if not covered:
            return restricted, lists, review
        bname = vendors[brand_vid].name
        why = "; ".join(f"{vendors[x.subject].name} owned by {vendors[x.owner].name}"
                        + (f" ({x.era})" if x.era else "") for x in links) or f"the {bname} label is on the policy's lists"
        if brand_w >= STRENGTHS["medium"]:
            strength = next((k for k, w in STRENGTHS.items() if w <= brand_w), "medium")
            for link in links:
                self._owner_hit(acc, link, "brand", strength)
            notes.append(f"sold under the {bname} label: {why}; flagged whoever made it")
            if restricted is not True and review is not None:
                notes.append(f"also: {review['reason']}")
            lists = tuple(dict.fromkeys((*lists, *blists)))
            return True, lists, None
        if restricted is not True and review is None:
            review = {"maker": vendors[links[0].owner].name if links else bname, "reason":
                      f"{bname} label named by weak evidence only; {why}"}
        return restricted, lists, review

    def _owner_hit(self, acc: _Acc, link: Any, field: str, strength: str) -> None:
        subj, owner = self._vendors[link.subject].name, self._vendors[link.owner].name
        since = f" ({link.era})" if link.era else (f" since {link.since}" if link.since else "")
        acc.hits.append(EvidenceHit(f"owner/{link.owner}", field, f"{subj} owned by {owner}", strength,
                                    (f"ownership, not manufacture: {subj} owned by {owner}{since}; on "
                                     f"{', '.join(link.lists)}; {'; '.join(link.cite[:2])}")[:400]))

    def _label_review(self, acc: _Acc, brand: str | None) -> dict[str, str] | None:
        """No maker established: an OEM label (or a chip arm's MAC block) that points at a restricted maker."""
        vendors = self._vendors
        for _p, _w, _name, vid in sorted(acc.brands, key=_label_key):
            if not vid or vendors[vid].kind != "oem_brand":
                continue
            links = self._labels.get(vid)
            if links is None:
                links = self._labels[vid] = label_makers(self.db, self.policy_name, vid)
            if links:
                link = links[0]
                how = {"former-oem": "has in the past sold devices made by"}.get(link.relation, "sells devices made by")
                return {"maker": vendors[link.maker].name, "reason":
                        f"{vendors[vid].name} label: {vendors[vid].name} {how} {vendors[link.maker].name} "
                        f"({link.relation}, {link.confidence} confidence); the device's own evidence does not "
                        "establish its maker"}
        for vid in acc.chips:
            v = vendors[vid]
            if v.parent and v.group != vid and self._restricted(v.group)[0]:
                return {"maker": vendors[v.group].name, "reason":
                        f"the MAC block is registered to {v.name} ({vendors[v.group].name}'s chip arm): the board, "
                        "not the maker; nothing else establishes the maker"}
        return None


def _best(claims: Iterable[tuple[int, str, str]]) -> int:
    return max((c[0] for c in claims), default=-1)


def _established(claims: Iterable[tuple[int, str, str]]) -> bool:
    """One medium-or-stronger clue, or weak clues from two different probes."""
    for c in claims:
        if c[0] >= _MEDIUM:
            return True
    return len({c[1] for c in claims}) >= 2


def _rules(claims: Iterable[tuple[int, str, str]]) -> str:
    out: list[str] = []
    for _rank, _probe, rid in sorted(claims, key=lambda c: -c[0]):
        if rid not in out:
            out.append(rid)
    return ", ".join(out[:3]) + (", ..." if len(out) > 3 else "")


def identify_record(record: EvidenceRecord | dict[str, Any], policy: str | None = None) -> Identification:
    return Identifier(policy).identify(record)
