"""Load, check and compile the fingerprint database (vendors, lists, policies, rules, MAC registry).

Rules are data (fingerprints/rules/*.yaml). Loading refuses, with a FingerprintError that names the
file and rule: a rule without examples, a pattern that does not compile or that matches the empty
string, an example its own rule does not match or extract, an unknown vendor, field group or
strength. The compiled rules are indexed by the field (or field group) they read, so matching a
record costs one dict lookup per observed field plus the regexes of that field only.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fingerprints.oui import OuiTable
from fingerprints.recog import Recog
from scanner.errors import FingerprintError

HERE = Path(__file__).parent

STRENGTHS = {"proof": 0.95, "strong": 0.8, "medium": 0.55, "weak": 0.3, "hint": 0.1}
KINDS = frozenset(("maker", "subsidiary", "brand", "oem_brand", "component_maker"))
# an `oem` entry of vendors.yaml: which maker made (some of) a label's products, how sure, and where it is said
OEM_RELATIONS = frozenset(("oem", "white-label", "former-oem"))
CONFIDENCES = frozenset(("high", "medium", "low"))
_OEM_KEYS = frozenset(("maker", "relation", "confidence", "era", "product_lines", "cite", "note"))
DEVICE_TYPES = frozenset(("camera", "ptz", "thermal", "doorbell", "nvr", "dvr", "encoder", "intercom",
                          "printer", "nas", "server", "router", "host"))
MAX_MATCH = 4096  # characters of a value a pattern sees (bodies: MAX_BODY)
MAX_BODY = 16384

# Field groups: a rule keyed "@model" reads every field that reports a model, whatever the protocol.
_GROUP_KEYS = {
    "@model": {"model", "type", "devicetype", "devicedescription", "updateserial", "devicemodel",
               "modelname", "modelnumber", "hardware"},
    "@firmware": {"firmware", "firmwareversion", "version", "softwareversion", "system_version", "system",
                  "software", "swversion"},
    "@serial": {"serial", "serialno", "serialnumber", "devicesn", "sn"},
    "@manufacturer": {"manufacturer", "make", "vendor", "brand"},
    "@board": {"board", "platform", "processor", "chip", "soc", "hardware_id"},
}
_GROUP_PARENTS = ("onvif.", "discovery.", "http.isapi.", "http.cgi.", "ssdp.description.", "wsd.scope.")
_NO_GROUPS = ("discovery.nmap.",)  # nmap's own readings, not the device's fields: rules/nmap.yaml reads them
# fields of these parents that are not what their key suggests
_GROUP_EXCLUDE = {"http.isapi.devicetype", "http.isapi.firmwarereleaseddate", "http.isapi.firmwareversion",
                  "wsd.scope.type"}
FIELD_GROUPS = tuple(_GROUP_KEYS)


@functools.lru_cache(maxsize=4096)
def keys_for(field_name: str) -> tuple[str, ...]:
    """The index keys a field is matched under: itself and the groups it belongs to."""
    if field_name.startswith(_NO_GROUPS):
        return (field_name,)
    keys = [field_name]
    if field_name.startswith(_GROUP_PARENTS) and field_name not in _GROUP_EXCLUDE:
        last = field_name.rsplit(".", 1)[-1]
        for group, names in _GROUP_KEYS.items():
            if last in names:
                keys.append(group)
    if field_name.startswith("discovery.") and field_name.count(".") >= 2:
        keys.append("discovery.*." + field_name.rsplit(".", 1)[-1])
    return tuple(keys)


@dataclass(frozen=True, slots=True)
class Vendor:
    id: str
    name: str
    kind: str
    parent: str | None = None
    country: str | None = None
    aliases: tuple[str, ...] = ()
    oem: tuple[dict[str, Any], ...] = ()
    group: str = ""  # the top of the parent chain (a maker's own id)
    risk: str | None = None  # component makers: the component_risk their parts carry
    cite: tuple[str, ...] = ()
    confidence: str | None = None  # subsidiary/brand: how sure the ownership is (as an oem entry's)
    note: str = ""
    members: tuple[str, ...] = ()  # a placeholder maker ("Hikvision or Dahua"): the makers it stands for
    owned_by: tuple[dict[str, Any], ...] = ()  # ownership eras: {owner, from, to, era, cite, note}; no `to`: now


@dataclass(slots=True)
class Rule:
    id: str  # "<family>/<id>"
    family: str
    fields: tuple[str, ...]
    regex: re.Pattern[str] | None
    strength: str
    weight: float
    vendor: str | None = None
    brand: str | None = None
    device_type: str | None = None
    device_type_map: dict[str, str] | None = None
    component: str | None = None
    lookup: bool = False
    note: str = ""
    examples: tuple[dict[str, Any], ...] = ()
    cite: str = ""
    groups: frozenset[str] = field(default_factory=frozenset)
    cap: int = MAX_MATCH
    quiet_unknown: bool = False  # lookup rules: a name the registry does not know says nothing
    source: Any = None  # a second fingerprint source (Recog) that matches in its own way: value -> RuleMatch


@dataclass(frozen=True, slots=True)
class RuleMatch:
    rule: Rule
    extract: dict[str, str]
    vendors: tuple[str, ...]  # lookup rules: the vendors the name resolved to
    unknown_name: str | None = None


_GENERIC_NAMES = frozenset(("", "none", "null", "unknown", "general", "ipcam", "ipc", "onvif", "manufacturer",
                            "camera", "ipcamera", "networkcamera", "default", "na", "vendor", "generic",
                            "device", "dvr", "nvr", "webcam", "ipcamerasystem", "cam", "linux", "embedded"))
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-&.+]*")


_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def norm_name(text: str) -> str:
    return _NOT_ALNUM.sub("", text.lower())


def norm_registrant(text: str) -> str:
    return _NOT_ALNUM.sub(" ", text.lower()).strip()


_LEGAL_SUFFIX = re.compile(
    r"[\s,.]*\b(?:co\.?\s*,?\s*ltd\.?|co\.?,?\s*limited|company\s+limited|corporation|corp\.?|inc\.?|incorporated|"
    r"ltd\.?|limited|llc|l\.l\.c\.|gmbh(?:\s*&\s*co\.?\s*kg)?|ag|s\.?a\.?|s\.?r\.?l\.?|b\.?v\.?|pty\.?|"
    r"pvt\.?|private|plc|oy|ab|kg|co\.?)\s*$", re.I)


def display_registrant(name: str) -> str:
    """'Zhuhai TOP Intelligence Electric Co., Ltd.' -> 'Zhuhai TOP Intelligence Electric'."""
    out = name.strip()
    for _ in range(4):
        new = _LEGAL_SUFFIX.sub("", out).strip(" ,.")
        if new == out or not new:
            break
        out = new
    return out or name.strip()


class Database:
    """Everything identify needs, compiled once. Build with :func:`load_database`."""

    def __init__(self, root: Path = HERE, oui_path: Path | None = None) -> None:
        self.root = root
        self.vendors: dict[str, Vendor] = {}
        self.lists: dict[str, dict[str, Any]] = {}
        self._policies: dict[str, dict[str, Any]] = {}
        self.default_policy = "ndaa889"
        self.rules: list[Rule] = []
        self.index: dict[str, list[Rule]] = {}
        self._aliases: dict[str, str] = {}  # normalised alias -> vendor id
        self._alias_max_tokens = 1
        self._registrant_rules: list[tuple[re.Pattern[str], re.Pattern[str] | None, str]] = []
        self._load_vendors(root / "vendors.yaml")
        self._load_lists(root / "lists.yaml")
        self._load_policies(root / "policies.yaml")
        for path in sorted((root / "rules").glob("*.yaml")):
            self._load_rules(path)
        own_vendors = len(self.vendors)
        # Recog's XML (fingerprints/recog.py): one index rule per file and field; parsed on first use
        self.recog = Recog(self)
        self.recog.add_vendors()
        self.recog.register()
        self.oui = OuiTable.load(oui_path)
        meta = self.recog.meta
        recog = (f"Recog {str(meta.get('commit', 'unknown'))[:12]} ({meta.get('date', 'date unknown')}), "
                 f"{sum((meta.get('fingerprints') or {}).values())} fingerprints in {len(self.recog.files)} files"
                 if self.recog.files else "Recog not installed")
        self.version = (f"{len(self.rules)} rules, {own_vendors} vendors; {recog}; MAC registry {self.oui.label}")

    # ------------------------------------------------------------------ loading
    @staticmethod
    def _yaml(path: Path) -> Any:
        try:
            with open(path, encoding="utf-8") as f:
                # libyaml's C loader when present: the same safe subset, four times faster
                return yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
        except (OSError, yaml.YAMLError) as exc:
            raise FingerprintError(f"{path.name}: cannot load ({exc})") from None

    def _load_vendors(self, path: Path) -> None:
        data = self._yaml(path) or {}
        raw = data.get("vendors") or []
        for v in raw:
            vid = v.get("id")
            if not vid or vid in self.vendors:
                raise FingerprintError(f"{path.name}: vendor without id or duplicated: {vid!r}")
            kind = v.get("kind", "maker")
            if kind not in KINDS:
                raise FingerprintError(f"{path.name}: vendor {vid}: unknown kind {kind!r}")
            cite = _cites(v.get("cite"))
            if kind in ("subsidiary", "brand") and not cite:
                raise FingerprintError(f"{path.name}: vendor {vid}: a {kind} needs a cite (who says it belongs "
                                       f"to {v.get('parent')!r})")
            if kind in ("subsidiary", "brand") and not v.get("parent"):
                raise FingerprintError(f"{path.name}: vendor {vid}: a {kind} needs a parent")
            conf = v.get("confidence")
            if conf is not None and conf not in CONFIDENCES:
                raise FingerprintError(f"{path.name}: vendor {vid}: unknown confidence {conf!r} "
                                       f"(one of {', '.join(sorted(CONFIDENCES))})")
            oem = tuple(_oem_entry(path.name, vid, i, o) for i, o in enumerate(v.get("oem") or ()))
            owned = tuple(_owner_entry(path.name, vid, i, o) for i, o in enumerate(v.get("owned_by") or ()))
            self.vendors[vid] = Vendor(vid, v.get("name") or vid, kind, v.get("parent"), v.get("country"),
                                       tuple(v.get("aliases") or ()), oem, "", v.get("risk"), cite, conf,
                                       str(v.get("note") or ""), tuple(v.get("members") or ()), owned)
            for pat in v.get("registrants") or ():
                excl = v.get("not_registrants")
                try:
                    self._registrant_rules.append(
                        (re.compile(pat), re.compile("|".join(excl)) if excl else None, vid))
                except re.error as exc:
                    raise FingerprintError(f"{path.name}: vendor {vid}: bad registrant pattern {pat!r}: {exc}") from None
        for vid, v in list(self.vendors.items()):
            seen, top = {vid}, v
            while top.parent:
                if top.parent not in self.vendors:
                    raise FingerprintError(f"{path.name}: vendor {vid}: unknown parent {top.parent!r}")
                top = self.vendors[top.parent]
                if top.id in seen:
                    raise FingerprintError(f"{path.name}: vendor {vid}: parent cycle")
                seen.add(top.id)
            self.vendors[vid] = Vendor(v.id, v.name, v.kind, v.parent, v.country or top.country, v.aliases, v.oem,
                                       top.id, v.risk, v.cite, v.confidence, v.note, v.members, v.owned_by)
            for o in v.owned_by:
                if o["owner"] not in self.vendors or o["owner"] == vid:
                    raise FingerprintError(f"{path.name}: vendor {vid}: owner {o['owner']!r} "
                                           f"{'is the vendor itself' if o['owner'] == vid else 'unknown'}")
            for o in v.oem:
                maker = self.vendors.get(o["maker"])
                if maker is None:
                    raise FingerprintError(f"{path.name}: vendor {vid}: OEM maker {o['maker']!r} unknown")
                if maker.kind in ("oem_brand", "component_maker") or o["maker"] == vid:
                    raise FingerprintError(f"{path.name}: vendor {vid}: OEM maker {o['maker']!r} is a "
                                           f"{maker.kind if o['maker'] != vid else 'the label itself'}, not a maker")
            for m in v.members:
                if m not in self.vendors:
                    raise FingerprintError(f"{path.name}: vendor {vid}: member {m!r} unknown")
            for alias in (v.name, *v.aliases):
                key = norm_name(alias)
                if len(key) < 2:
                    continue
                other = self._aliases.get(key)
                if other and other != vid:
                    raise FingerprintError(f"{path.name}: alias {alias!r} names both {other} and {vid}")
                self._aliases[key] = vid
                self._alias_max_tokens = max(self._alias_max_tokens, len(_TOKEN.findall(alias)))

    def _load_lists(self, path: Path) -> None:
        data = self._yaml(path) or {}
        for lid, spec in (data.get("lists") or {}).items():
            for key in ("name", "cite"):
                if not spec.get(key):
                    raise FingerprintError(f"{path.name}: list {lid} has no {key}")
            for vid in spec.get("covers") or {}:
                if vid not in self.vendors:
                    raise FingerprintError(f"{path.name}: list {lid} covers unknown vendor {vid!r}")
            check_list_basis(f"{path.name}: list {lid}", spec)
            if not isinstance(spec.get("short", ""), str):
                raise FingerprintError(f"{path.name}: list {lid}: short must be text")
            weight = spec.get("plan_weight", 0)
            if type(weight) is not int or weight < 0:
                raise FingerprintError(f"{path.name}: list {lid}: plan_weight must be a whole number, 0 or more")
            self.lists[lid] = spec

    def _load_policies(self, path: Path) -> None:
        data = self._yaml(path) or {}
        self.default_policy = data.get("default", "ndaa889")
        for pid, spec in (data.get("policies") or {}).items():
            for lid in spec.get("lists") or ():
                if lid not in self.lists:
                    raise FingerprintError(f"{path.name}: policy {pid} names unknown list {lid!r}")
            if spec.get("owners") not in (None, True, False):
                raise FingerprintError(f"{path.name}: policy {pid}: owners must be true or false")
            self._policies[pid] = spec
        if self.default_policy not in self._policies:
            raise FingerprintError(f"{path.name}: default policy {self.default_policy!r} is not defined")

    def _load_rules(self, path: Path) -> None:
        data = self._yaml(path) or {}
        family = data.get("family") or path.stem
        for i, spec in enumerate(data.get("rules") or ()):
            rid = f"{family}/{spec.get('id') or f'#{i}'}"
            where = f"{path.name}: rule {rid}"
            if any(r.id == rid for r in self.rules):
                raise FingerprintError(f"{where}: duplicate id")
            examples = spec.get("examples") or ()
            if not examples:
                raise FingerprintError(f"{where}: has no examples (every rule needs at least one real example)")
            fields = spec.get("field")
            fields = (fields,) if isinstance(fields, str) else tuple(fields or ())
            if not fields:
                raise FingerprintError(f"{where}: no field")
            for f in fields:
                if f.startswith("@") and f not in _GROUP_KEYS:
                    raise FingerprintError(f"{where}: unknown field group {f!r}")
            strength = spec.get("strength", "medium")
            if strength not in STRENGTHS:
                raise FingerprintError(f"{where}: unknown strength {strength!r}")
            vendor = spec.get("vendor")
            if vendor is not None and vendor not in self.vendors:
                raise FingerprintError(f"{where}: unknown vendor {vendor!r}")
            dt = spec.get("device_type")
            dtmap = spec.get("device_type_map")
            for d in ([dt] if dt else []) + list((dtmap or {}).values()):
                if d not in DEVICE_TYPES:
                    raise FingerprintError(f"{where}: device_type {d!r} is not in the contracts vocabulary")
            lookup = spec.get("lookup") == "vendor"
            if spec.get("unknown") not in (None, "ignore") or (spec.get("unknown") and not lookup):
                raise FingerprintError(f"{where}: 'unknown: ignore' is the only choice, for lookup rules")
            pattern = spec.get("pattern")
            regex = None
            if pattern is not None:
                try:
                    regex = re.compile(pattern, re.I if spec.get("icase") else 0)
                except re.error as exc:
                    raise FingerprintError(f"{where}: pattern does not compile: {exc}") from None
                if regex.search(""):
                    raise FingerprintError(f"{where}: pattern matches the empty string")
            elif not lookup:
                raise FingerprintError(f"{where}: no pattern")
            if not (vendor or lookup or spec.get("component") or dt or dtmap or spec.get("brand")
                    or (regex is not None and set(regex.groupindex) & {"mac", "eui64", "serial", "brand"})
                    or strength == "hint"):
                raise FingerprintError(f"{where}: asserts nothing (no vendor, brand, component, device type or extract)")
            rule = Rule(rid, family, fields, regex, strength, STRENGTHS[strength], vendor, spec.get("brand"), dt, dtmap,
                        spec.get("component"), lookup, spec.get("note", ""), tuple(examples), str(spec.get("cite", "")),
                        frozenset(regex.groupindex) if regex is not None else frozenset(),
                        MAX_BODY if any(f.endswith(".body") for f in fields) else MAX_MATCH,
                        lookup and spec.get("unknown") == "ignore")
            for ex in examples:
                self._check_example(where, rule, ex)
            self.rules.append(rule)
            for f in fields:
                self.index.setdefault(f, []).append(rule)

    def _check_example(self, where: str, rule: Rule, ex: Any) -> None:
        if not isinstance(ex, dict) or not isinstance(ex.get("value"), str) or not ex["value"]:
            raise FingerprintError(f"{where}: an example needs a non-empty string 'value'")
        m = self.match_rule(rule, ex["value"])
        if m is None:
            raise FingerprintError(f"{where}: does not match its own example {ex['value']!r}")
        for key, want in (ex.get("extract") or {}).items():
            got = m.vendors[0] if key == "vendor" and m.vendors else m.extract.get(key)
            if key == "mac" and got:
                got = got.lower().replace("-", ":")
                want = str(want).lower().replace("-", ":")
                if ":" not in want:
                    want = ":".join(want[i:i + 2] for i in range(0, 12, 2))
                if ":" not in got:
                    got = ":".join(got[i:i + 2] for i in range(0, 12, 2))
            if str(got) != str(want):
                raise FingerprintError(f"{where}: example {ex['value']!r} extracts {key}={got!r}, not {want!r}")

    # ------------------------------------------------------------------ matching
    def match_rule(self, rule: Rule, value: str, m: re.Match[str] | None = None) -> RuleMatch | None:
        """One rule against one value (at most `rule.cap` characters of it are read).

        `m` is the rule's regex match when the caller already has it.
        """
        if rule.source is not None:
            return rule.source(value[: rule.cap])  # type: ignore[no-any-return]
        value = value[: rule.cap]
        extract: dict[str, str] = {}
        if rule.regex is not None:
            if m is None:
                m = rule.regex.search(value)
            if m is None:
                return None
            if rule.groups:
                extract = {k: v for k, v in m.groupdict().items() if v}
                if "eui64" in extract:
                    mac = eui64_to_mac(extract.pop("eui64"))
                    if mac:
                        extract["mac"] = mac
                if rule.device_type_map and "device_type" in extract:
                    extract["device_type"] = rule.device_type_map.get(extract["device_type"], "")
        if rule.lookup:
            name = extract.get("name", value)
            vendors = self.lookup_names(name)
            if not vendors:
                if rule.quiet_unknown:
                    return None
                key = norm_name(name)
                if key in _GENERIC_NAMES or len(key) < 3:
                    return None
                return RuleMatch(rule, extract, (), unknown_name=name.strip()[:80])
            return RuleMatch(rule, extract, vendors)
        return RuleMatch(rule, extract, (rule.vendor,) if rule.vendor else ())

    def lookup_names(self, text: str) -> tuple[str, ...]:
        """Vendor ids named at the start of `text` (or of each '/'-separated part): whole words only."""
        out: list[str] = []
        for part in text.replace("_", " ").split("/")[:4]:
            tokens = _TOKEN.findall(part[:200])[: self._alias_max_tokens]
            for n in range(len(tokens), 0, -1):
                vid = self._aliases.get(norm_name("".join(tokens[:n])))
                if vid:
                    if vid not in out:
                        out.append(vid)
                    break
        return tuple(out)

    @functools.lru_cache(maxsize=8192)  # noqa: B019 - the database lives for the process
    def vendor_for_registrant(self, registrant: str) -> str | None:
        """Map an IEEE registrant name to a vendor id by explicit patterns; None when no pattern names it."""
        key = norm_registrant(registrant)
        for pat, excl, vid in self._registrant_rules:
            if pat.search(key) and not (excl and excl.search(key)):
                return vid
        return None

    # ------------------------------------------------------------------ registry API (contracts.md)
    def policies(self) -> list[str]:
        return list(self._policies)

    def policy(self, name: str) -> dict[str, Any]:
        try:
            return self._policies[name]
        except KeyError:
            raise FingerprintError(f"unknown policy {name!r} (known: {', '.join(self._policies)})") from None

    @functools.lru_cache(maxsize=1024)  # noqa: B019 - the database lives for the process
    def lists_for(self, vendor_id: str) -> tuple[str, ...]:
        """Every list that covers a vendor (directly, or through its group where the list covers affiliates)."""
        v = self.vendors.get(vendor_id)
        if v is None:
            return ()
        out = []
        for lid, spec in self.lists.items():
            covers = spec.get("covers") or {}
            if vendor_id in covers or (spec.get("affiliates") and v.group in covers):
                out.append(lid)
            elif spec.get("origin") and v.country == spec["origin"]:
                out.append(lid)
        return tuple(out)

    def lookup_oui(self, mac: str) -> tuple[str, str | None] | None:
        """(registrant, maker name or None) for a MAC in any notation; None when unassigned or unreadable."""
        hexd = re.sub(r"[^0-9A-Fa-f]", "", mac or "").upper()
        if len(hexd) < 6:
            return None
        org = self.oui.lookup(hexd.ljust(12, "0")[:12])
        if org is None:
            return None
        vid = self.vendor_for_registrant(org)
        if vid is None:
            return org, None
        v = self.vendors[vid]
        if v.kind in ("oem_brand", "component_maker"):
            return org, None
        return org, self.vendors[v.group].name


def _cites(value: Any) -> tuple[str, ...]:
    """A cite given as one string or a list of strings, as a tuple (empty when missing or blank)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        return ()
    return tuple(str(c).strip() for c in value if isinstance(c, str) and c.strip())


def _check_keys(at: str, o: Any, allowed: frozenset[str], wants: str) -> None:
    """A registry entry must be a mapping of known keys (``wants``: the ones it needs, for the message)."""
    if not isinstance(o, dict):
        raise FingerprintError(f"{at}: must be a mapping with {wants}")
    unknown = set(o) - allowed
    if unknown:
        raise FingerprintError(f"{at}: unknown key(s) {', '.join(sorted(map(str, unknown)))} "
                               f"(allowed: {', '.join(sorted(allowed))})")


def _oem_entry(where: str, vid: str, i: int, o: Any) -> dict[str, Any]:
    """Check one `oem` entry of a vendor and return it normalised (cite and product_lines as lists)."""
    at = f"{where}: vendor {vid}: oem entry {i + 1}"
    _check_keys(at, o, _OEM_KEYS, "maker, relation, confidence, cite")
    if not isinstance(o.get("maker"), str) or not o["maker"]:
        raise FingerprintError(f"{at}: no maker")
    relation = o.get("relation")
    if relation not in OEM_RELATIONS:
        raise FingerprintError(f"{at}: unknown relation {relation!r} (one of {', '.join(sorted(OEM_RELATIONS))}; "
                               "a maker's own subsidiary or brand is a vendor of that kind with a parent)")
    if o.get("confidence") not in CONFIDENCES:
        raise FingerprintError(f"{at}: unknown or missing confidence {o.get('confidence')!r} "
                               f"(one of {', '.join(sorted(CONFIDENCES))})")
    cite = _cites(o.get("cite"))
    if not cite:
        raise FingerprintError(f"{at}: no cite (every OEM relation names its source)")
    lines = o.get("product_lines") or []
    if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
        raise FingerprintError(f"{at}: product_lines must be a list of strings")
    return {"maker": o["maker"], "relation": relation, "confidence": o["confidence"],
            "era": str(o.get("era") or ""), "product_lines": list(lines), "cite": list(cite),
            "note": str(o.get("note") or "")}


_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
_OWNER_KEYS = frozenset(("owner", "from", "to", "era", "cite", "note"))
LIST_BASES = ("law", "policy", "due_diligence")
EVIDENCE_KINDS = ("sanction", "government report", "trade reporting")


def _owner_entry(where: str, vid: str, i: int, o: Any) -> dict[str, Any]:
    """Check one `owned_by` entry of a vendor: an owner, its era (from, to: YYYY[-MM[-DD]]) and a cite."""
    at = f"{where}: vendor {vid}: owned_by entry {i + 1}"
    _check_keys(at, o, _OWNER_KEYS, "owner, from, era, cite")
    if not isinstance(o.get("owner"), str) or not o["owner"]:
        raise FingerprintError(f"{at}: no owner")
    for key in ("from", "to"):
        val = o.get(key)
        if val is not None and not (isinstance(val, str) and _DATE.match(val)):
            raise FingerprintError(f"{at}: {key} must be a date as YYYY, YYYY-MM or YYYY-MM-DD in quotes, not {val!r}")
    if not o.get("from"):
        raise FingerprintError(f"{at}: no from (when the ownership began)")
    if o.get("to") and str(o["to"]) < str(o["from"]):
        raise FingerprintError(f"{at}: to {o['to']} is before from {o['from']}")
    cite = _cites(o.get("cite"))
    if not cite:
        raise FingerprintError(f"{at}: no cite (every ownership names its source)")
    return {"owner": o["owner"], "from": str(o["from"]), "to": str(o["to"]) if o.get("to") else None,
            "era": str(o.get("era") or ""), "cite": list(cite), "note": str(o.get("note") or "")}


def list_basis(spec: dict[str, Any]) -> str:
    """What a flag from a list is: law, policy (a government's, not law) or due_diligence (a buyer's own)."""
    basis = spec.get("basis")
    if basis in LIST_BASES:
        return str(basis)
    return "law" if spec.get("legal") is True else "policy"


def check_list_basis(at: str, spec: dict[str, Any]) -> None:
    """A list's basis is one of LIST_BASES; a due-diligence list gives each covered vendor its evidence
    (kind, date, what, cite)."""
    basis = spec.get("basis")
    if basis is not None and basis not in LIST_BASES:
        raise FingerprintError(f"{at}: basis {basis!r} is not one of {', '.join(LIST_BASES)}")
    if basis == "due_diligence" and spec.get("legal"):
        raise FingerprintError(f"{at}: a due-diligence list is not law (legal: true)")
    version = spec.get("version")
    if version is not None and not (isinstance(version, str) and _DATE.match(version)):
        raise FingerprintError(f"{at}: version must be a date as YYYY-MM-DD in quotes, not {version!r}")
    if basis != "due_diligence":
        return
    for vid, entry in (spec.get("covers") or {}).items():
        ev = (entry or {}).get("evidence") if isinstance(entry, dict) else None
        if not isinstance(ev, list) or not ev:
            raise FingerprintError(f"{at}: {vid}: a due-diligence entry needs its evidence (kind, date, what, cite)")
        for j, e in enumerate(ev):
            where = f"{at}: {vid}: evidence {j + 1}"
            if not isinstance(e, dict):
                raise FingerprintError(f"{where}: must be a mapping")
            if e.get("kind") not in EVIDENCE_KINDS:
                raise FingerprintError(f"{where}: kind {e.get('kind')!r} is not one of {', '.join(EVIDENCE_KINDS)}")
            if not (isinstance(e.get("date"), str) and _DATE.match(e["date"])):
                raise FingerprintError(f"{where}: date must be YYYY, YYYY-MM or YYYY-MM-DD in quotes")
            if not _cites(e.get("cite")):
                raise FingerprintError(f"{where}: no cite")
            if not isinstance(e.get("what"), str) or not e["what"].strip():
                raise FingerprintError(f"{where}: no what (what the source says)")


def eui64_to_mac(text: str) -> str | None:
    """'1a0c:acff:fee9:c231' (the interface id of an EUI-64 address) -> '18:0c:ac:e9:c2:31'."""
    parts = text.split(":")
    if len(parts) != 4:
        return None
    try:
        h = "".join(p.rjust(4, "0") for p in parts)
    except Exception:
        return None
    if len(h) != 16 or h[6:10].lower() != "fffe":
        return None
    first = int(h[0:2], 16) ^ 0x02
    raw = f"{first:02x}" + h[2:6] + h[10:16]
    return ":".join(raw[i:i + 2] for i in range(0, 12, 2)).lower()


_DB: Database | None = None


def load_database(root: Path | None = None, *, oui_path: Path | None = None, reload: bool = False) -> Database:
    """The compiled database (cached per process for the default location)."""
    global _DB
    if root is not None or oui_path is not None:
        return Database(root or HERE, oui_path)
    if _DB is None or reload:
        _DB = Database()
    return _DB
