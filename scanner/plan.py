"""Replacement planning: device type and model code -> replacement class, catalog suggestion, priority, cost.

Pure logic over store rows (dicts as ``Store.devices()`` returns them) and the editable catalog
(``scanner/data/replacement_catalog.yaml``, or a user file that overrides it). The TUI, the CLI
(``camsweep plan export``) and the reports all call this module; none of them holds plan logic.

The main entry points:

- ``classify_replacement(device_type, model, manufacturer)`` -> replacement class key;
- ``load_catalog(path=None)`` -> :class:`Catalog`; ``suggest_models(catalog, cls, policy)``;
- ``score_priority(device, public_safety=..., record=...)`` -> :class:`Priority`;
- ``build_plan(devices, saved_plans, catalog, policy)`` -> list of :class:`PlanItem`;
- ``compute_totals(items)`` -> :class:`PlanTotals` (per site and overall);
- ``make_plan(store, policy=..., catalog=...)`` -> :class:`Plan` (all of the above from a store);
- ``save_item(store, item, **changes)`` validates a change and writes it through ``Store.save_plan``;
- ``plan_to_json(plan)``, ``write_csv(plan, fp)``.

The model-code table is data (``scanner/data/model_classes.yaml``); the devices view's filter and search
language is :mod:`scanner.filters`.
"""

from __future__ import annotations

import csv
import functools
import ipaddress
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from scanner.errors import CamsweepError
from scanner.evidence import EvidenceRecord
from scanner.report.escape import spreadsheet_cell
from scanner.store import PLAN_STATUSES

PLAN_FORMAT_VERSION = 1
STATUSES = PLAN_STATUSES  # the store checks them; one definition
DEFAULT_POLICY = "ndaa889"
CATALOG_MAX_BYTES = 1024 * 1024
DEFAULT_CATALOG = Path(__file__).parent / "data" / "replacement_catalog.yaml"

# Replacement classes, in the order a user sees them. The catalog gives each one its label and defaults.
CLASSES = ("bullet", "dome", "turret", "ptz", "fisheye", "camera", "thermal", "nvr", "dvr", "analog",
           "encoder", "doorbell", "intercom", "other")


class PlanError(CamsweepError):
    """A catalog that cannot be read, or a plan change that is not valid."""


# --------------------------------------------------------------------------------------------
# classification: model-code tells (docs/restrictions.md 2.2, 2.3, 5.2) first, then the device type

MODEL_CLASSES_FILE = Path(__file__).parent / "data" / "model_classes.yaml"


@dataclass(frozen=True, slots=True)
class ModelClassRule:
    pattern: re.Pattern[str]
    cls: str
    examples: tuple[str, ...]


def _load_model_classes(path: Path = MODEL_CLASSES_FILE) -> tuple[dict[str, str], tuple[ModelClassRule, ...],
                                                                  tuple[tuple[str, str], ...], frozenset[str]]:
    """The model-code table (scanner/data/model_classes.yaml): DS-2CD form characters, rules, words and
    the device types that name a class."""
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    rules = tuple(ModelClassRule(re.compile(r["pattern"]), r["class"], tuple(r["examples"])) for r in data["rules"])
    for cls in (*data["hikvision_cd_form"].values(), *(r.cls for r in rules), *data["words"].values(),
                *data["device_types"]):
        if cls not in CLASSES:
            raise PlanError(f"{path.name}: {cls!r} is not a replacement class")
    return ({str(k): v for k, v in data["hikvision_cd_form"].items()}, rules, tuple(data["words"].items()),
            frozenset(data["device_types"]))


_HIK_CD_FORM, MODEL_CLASS_RULES, _WORDS, _TYPE_CLASSES = _load_model_classes()
_HIK_CD_RULES = tuple(r for r in MODEL_CLASS_RULES if r.pattern.pattern.startswith("^DS-2CD"))
_VENDOR_PREFIX = re.compile(r"^(?:DHI?-|HIKVISION\s+|DAHUA\s+)")


@functools.lru_cache(maxsize=4096)
def classify_replacement(device_type: str | None, model: str | None, manufacturer: str | None = None) -> str:
    """The replacement class of a device: a key of :data:`CLASSES`.

    Model codes are the most specific tell (a Hikvision ``DS-2DE...`` is a PTZ whatever the device type
    says); then the device type (docs/contracts.md vocabulary); then words in the model name. A device
    that is not video equipment (a router, a NAS) is ``other``.
    """
    m = _VENDOR_PREFIX.sub("", (model or "").strip().upper()[:128])
    if m:
        if m.startswith("DS-2CD") and len(m) > 7 and m[6].isdigit():
            # DS-2CD<series digit><form char>: 2143 dome, 2043 bullet, 2385 turret, 2T43 bullet, 2955 fisheye
            for rule in _HIK_CD_RULES:
                if rule.pattern.search(m):
                    return rule.cls
            form = _HIK_CD_FORM.get(m[7])
            if form:
                return _refine(form, device_type)
        for rule in MODEL_CLASS_RULES:
            if rule.pattern.search(m):
                return _refine(rule.cls, device_type)
        low = m.lower()
        for word, cls in _WORDS:
            if word in low:
                return _refine(cls, device_type)
    dt = (device_type or "").strip().lower()
    if dt in _TYPE_CLASSES:
        return dt
    if not dt and (manufacturer or m):
        return "camera" if m else "other"
    return "other"


def _refine(cls: str, device_type: str | None) -> str:
    # a thermal unit in a bullet housing is planned as thermal; a recorder's model code wins over a
    # device type that only says "camera"
    if (device_type or "").lower() == "thermal" and cls in ("bullet", "turret", "dome", "camera"):
        return "thermal"
    return cls


# --------------------------------------------------------------------------------------------
# the catalog


@dataclass(frozen=True, slots=True)
class CatalogModel:
    maker: str
    model: str
    hardware: float | None = None  # overrides the class default when the catalog gives one
    licence: float | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class ReplacementClass:
    key: str
    label: str
    hardware: float
    labour_hours: float
    licence: float
    models: tuple[CatalogModel, ...] = ()
    source: str = ""
    note: str = ""


@dataclass(frozen=True, slots=True)
class MakerInfo:
    name: str
    country: str = ""
    owner: str = ""
    flags: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """A catalog policy: a restriction policy of fingerprints/policies.yaml (``restrict_as``; what it
    restricts is decided by fingerprints.policy alone) plus procurement preferences of the catalog's own
    (makers carrying ``excluded_flags``, makers named in ``excluded_makers``)."""

    name: str
    restrict_as: str = DEFAULT_POLICY
    excluded_flags: frozenset[str] = frozenset()
    excluded_makers: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Catalog:
    version: str
    currency: str
    labour_rate: float
    classes: Mapping[str, ReplacementClass]
    makers: Mapping[str, MakerInfo]
    policies: Mapping[str, PolicyRule]
    sources: tuple[str, ...] = ()

    def cls(self, key: str) -> ReplacementClass:
        return self.classes.get(key) or self.classes["other"]

    def maker(self, name: str) -> MakerInfo:
        return self.makers.get(norm_name(name)) or MakerInfo(name=name)


@functools.lru_cache(maxsize=8192)
def norm_name(name: str | None) -> str:
    return re.sub(r"[^a-z0-9]+", "", (name or "").lower())


def _num(value: Any, what: str, default: float | None = None) -> float | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PlanError(f"catalog: {what} must be a number, not {str(value)[:40]!r}")
    if value < 0 or value > 10_000_000:
        raise PlanError(f"catalog: {what} is out of range ({value})")
    return float(value)


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        size = path.stat().st_size
        if size > CATALOG_MAX_BYTES:
            raise PlanError(f"catalog {path} is larger than {CATALOG_MAX_BYTES} bytes")
        with path.open("r", encoding="utf-8") as fp:
            text = fp.read(CATALOG_MAX_BYTES + 1)
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: same safe subset
        data = yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader
    except OSError as exc:
        raise PlanError(f"cannot read the catalog {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise PlanError(f"catalog {path} is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise PlanError(f"catalog {path} is not valid YAML: {str(exc).splitlines()[0][:200]}") from None
    except RecursionError:
        raise PlanError(f"catalog {path} is nested too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PlanError(f"catalog {path} must be a mapping at the top level")
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """A user catalog replaces the shipped one key by key (a class, a maker, a policy at a time)."""
    out = dict(base)
    for key, value in over.items():
        if key in ("classes", "makers", "policies", "defaults") and isinstance(value, dict) \
                and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def user_catalog_path() -> Path | None:
    """``$CAMSWEEP_CATALOG`` if set, else ``<user config dir>/camsweep/replacement_catalog.yaml`` if present."""
    env = os.environ.get("CAMSWEEP_CATALOG")
    if env:
        return Path(env)
    try:
        import platformdirs

        p = Path(platformdirs.user_config_dir("camsweep")) / "replacement_catalog.yaml"
    except Exception:  # no home directory: no user catalog
        return None
    return p if p.is_file() else None


def load_catalog(path: str | Path | None = None, *, use_user: bool = True) -> Catalog:
    """The shipped catalog, overridden by ``path`` (or the user catalog when ``path`` is None)."""
    data = _read_yaml(DEFAULT_CATALOG)
    over = Path(path) if path is not None else (user_catalog_path() if use_user else None)
    if over is not None:
        data = _merge(data, _read_yaml(over))
    return parse_catalog(data)


def parse_catalog(data: Mapping[str, Any]) -> Catalog:
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise PlanError("catalog: defaults must be a mapping")
    rate = _num(defaults.get("labour_rate"), "defaults.labour_rate", 0.0) or 0.0
    makers: dict[str, MakerInfo] = {}
    for name, m in (data.get("makers") or {}).items():
        m = m or {}
        if not isinstance(m, dict):
            raise PlanError(f"catalog: makers.{name} must be a mapping")
        flags = m.get("flags") or []
        if not isinstance(flags, list):
            raise PlanError(f"catalog: makers.{name}.flags must be a list")
        makers[norm_name(str(name))] = MakerInfo(name=str(name), country=str(m.get("country") or ""),
                                             owner=str(m.get("owner") or ""),
                                             flags=tuple(str(f) for f in flags), note=str(m.get("note") or ""))
    policies: dict[str, PolicyRule] = {}
    for name, p in (data.get("policies") or {}).items():
        p = p or {}
        if not isinstance(p, dict):
            raise PlanError(f"catalog: policies.{name} must be a mapping")
        if "restricted_makers" in p:
            raise PlanError(f"catalog: policies.{name}.restricted_makers is no longer read: what a policy "
                            "restricts comes from the fingerprint lists (fingerprints/policies.yaml); name "
                            "makers you do not want suggested in excluded_makers")
        inherit = p.get("extends")
        base = policies.get(str(inherit)) if inherit else None
        fl = {str(x) for x in (p.get("excluded_flags") or [])}
        em = {norm_name(str(x)) for x in (p.get("excluded_makers") or [])}
        restrict_as = str(p.get("restrict_as") or (base.restrict_as if base else name))
        if base:
            fl |= base.excluded_flags
            em |= base.excluded_makers
        policies[str(name)] = PolicyRule(name=str(name), restrict_as=restrict_as, excluded_flags=frozenset(fl),
                                         excluded_makers=frozenset(em))
    classes: dict[str, ReplacementClass] = {}
    raw_classes = data.get("classes") or {}
    if not isinstance(raw_classes, dict):
        raise PlanError("catalog: classes must be a mapping")
    for key, c in raw_classes.items():
        if not isinstance(c, dict):
            raise PlanError(f"catalog: classes.{key} must be a mapping")
        models = []
        for i, mo in enumerate(c.get("models") or []):
            if not isinstance(mo, dict) or not mo.get("maker") or not mo.get("model"):
                raise PlanError(f"catalog: classes.{key}.models[{i}] needs a maker and a model")
            models.append(CatalogModel(maker=str(mo["maker"])[:80], model=str(mo["model"])[:120],
                                       hardware=_num(mo.get("hardware"), f"classes.{key}.models[{i}].hardware"),
                                       licence=_num(mo.get("licence"), f"classes.{key}.models[{i}].licence"),
                                       note=str(mo.get("note") or "")[:300]))
        classes[str(key)] = ReplacementClass(
            key=str(key), label=str(c.get("label") or key),
            hardware=_num(c.get("hardware"), f"classes.{key}.hardware", 0.0) or 0.0,
            labour_hours=_num(c.get("labour_hours"), f"classes.{key}.labour_hours", 0.0) or 0.0,
            licence=_num(c.get("licence"), f"classes.{key}.licence", 0.0) or 0.0,
            models=tuple(models), source=str(c.get("source") or ""), note=str(c.get("note") or ""))
    if "other" not in classes:
        classes["other"] = ReplacementClass(key="other", label="Other (not video)", hardware=0.0,
                                            labour_hours=0.0, licence=0.0)
    return Catalog(version=str(data.get("version") or "0"), currency=str(data.get("currency") or "USD"),
                   labour_rate=rate, classes=classes, makers=makers, policies=policies,
                   sources=tuple(str(s) for s in (data.get("sources") or [])))


# --------------------------------------------------------------------------------------------
# policy: never suggest a maker the active policy restricts (fingerprints.policy decides: one decision)


def _fingerprints_db() -> Any:
    if "db" not in _fp_db_cache:
        try:
            import fingerprints

            _fp_db_cache["db"] = fingerprints.load_database()
        except CamsweepError as exc:
            raise PlanError(f"cannot decide what the policy restricts: {exc}") from None
    return _fp_db_cache["db"]


_fp_db_cache: dict[str, Any] = {}


def list_weight(name: str) -> int:
    """What being on list ``name`` adds to a replacement priority: its ``plan_weight`` in lists.yaml."""
    weight = (_fingerprints_db().lists.get(name) or {}).get("plan_weight", POLICY_LIST_WEIGHT)
    return int(weight)


def maker_allowed(catalog: Catalog, maker: str, policy: str = DEFAULT_POLICY) -> bool:
    """May the plan suggest (or the user choose) a device of ``maker`` under ``policy``?

    Not when fingerprints.policy says the policy restricts the maker or the maker is an OEM label of a
    restricted maker (``suggestion_allowed``, the one decision); nor when the catalog policy's own
    procurement preferences exclude it (maker flags, excluded makers)."""
    from fingerprints.policy import suggestion_allowed

    rule = catalog.policies.get(policy)
    fp_policy = rule.restrict_as if rule else policy
    try:
        if not suggestion_allowed(_fingerprints_db(), fp_policy, maker):
            return False
    except PlanError:
        raise
    except CamsweepError as exc:  # an unknown policy name
        raise PlanError(f"policy {policy!r}: {exc}") from None
    if rule is None:
        return True
    if norm_name(maker) in rule.excluded_makers:
        return False
    return not (set(catalog.maker(maker).flags) & rule.excluded_flags)


def known_policies(catalog: Catalog) -> list[str]:
    names = list(_fingerprints_db().policies())
    return names + [n for n in catalog.policies if n not in names]


def check_policy(catalog: Catalog, policy: str) -> str:
    if policy not in known_policies(catalog):
        raise PlanError(f"unknown policy {policy!r} (known: {', '.join(known_policies(catalog))})")
    return policy


def suggest_models(catalog: Catalog, cls: str, policy: str = DEFAULT_POLICY) -> list[CatalogModel]:
    """The catalog's models for a class that the policy allows, in catalog order."""
    return [m for m in catalog.cls(cls).models if maker_allowed(catalog, m.maker, policy)]


# --------------------------------------------------------------------------------------------
# priority: list severity, exposure, public-safety role

POLICY_LIST_WEIGHT = 6  # a list without its own plan_weight in fingerprints/lists.yaml (policy-only, state lists)
EXPOSURE_WEIGHTS = {"telnet": 20, "web_ui_open": 15, "rtsp_open": 8, "default_realm": 6, "web_ui": 5,
                    "ftp": 5, "snmp": 3}
PUBLIC_SAFETY_WEIGHT = 25
_DEFAULT_REALM = re.compile(r"IP ?Camera|Login to|Hikvision|Dahua|DS-\d|NVR|DVR|Network (?:Camera|Video)|"
                            r"^[0-9A-Z]{10,}$", re.I)
EXPOSURE_LABELS = {"telnet": "telnet open", "web_ui_open": "web UI without login", "web_ui": "web UI",
                   "rtsp_open": "RTSP without login", "default_realm": "factory auth realm",
                   "ftp": "FTP open", "snmp": "SNMP answers"}


def exposure_from_record(record: EvidenceRecord) -> frozenset[str]:
    """What a scan saw exposed: open web UI, telnet, a factory realm..."""
    out: set[str] = set()
    for h in record.http:
        if h.status is not None and 200 <= h.status < 300:
            out.add("web_ui_open")
        elif h.status is not None:
            out.add("web_ui")
        realm = h.realm
        if realm and _DEFAULT_REALM.search(realm):
            out.add("default_realm")
    for r in record.rtsp:
        if r.status is not None and 200 <= r.status < 300 and "DESCRIBE" in (r.request or "").upper():
            out.add("rtsp_open")
        realm = r.realm
        if realm and _DEFAULT_REALM.search(realm):
            out.add("default_realm")
    for b in record.banners:
        p = (b.protocol or "").lower()
        if p in ("telnet", "ftp", "snmp"):
            out.add(p)
    return frozenset(out)


def exposure_from_evidence(evidence: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """The same, from the evidence hits kept with an identification (when the raw record is not at hand)."""
    out: set[str] = set()
    for hit in evidence or ():
        if not isinstance(hit, Mapping):
            continue
        f = str(hit.get("field") or "")
        v = str(hit.get("value") or "")
        if f.startswith("banners.telnet"):
            out.add("telnet")
        elif f.startswith("banners.ftp"):
            out.add("ftp")
        elif f.startswith("banners.snmp"):
            out.add("snmp")
        elif f.startswith("http."):
            out.add("web_ui")
            if f == "http.realm" and _DEFAULT_REALM.search(v):
                out.add("default_realm")
        elif f == "rtsp.realm" and _DEFAULT_REALM.search(v):
            out.add("default_realm")
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class Priority:
    score: int  # 0..100, higher first
    tier: str  # P1..P4
    reasons: tuple[str, ...] = ()


def tier_of(score: int) -> str:
    return "P1" if score >= 60 else "P2" if score >= 40 else "P3" if score >= 15 else "P4"


def score_priority(device: Mapping[str, Any], *, public_safety: bool = False,
                   record: EvidenceRecord | None = None) -> Priority:
    exposure = exposure_from_record(record) if record is not None else \
        exposure_from_evidence(device.get("evidence") or ())
    prio = _score(device.get("restricted"), tuple(str(x) for x in (device.get("lists") or ())),
                  tuple(str(c) for c in (device.get("component_risk") or ())), exposure,
                  device.get("device_type") or "", bool(public_safety))
    return _with_exploited(prio, device)


EXPLOITED_WEIGHT = 20  # firmware in a range CISA lists as exploited (fingerprints/exploited.yaml)


def _with_exploited(prio: Priority, device: Mapping[str, Any]) -> Priority:
    """Raise the priority of a device whose firmware is in a known-exploited range (fingerprints.exploited
    decides), and say why."""
    from fingerprints.exploited import hint_dicts

    hints = hint_dicts(device)
    if not hints:
        return prio
    score = max(0, min(100, prio.score + EXPLOITED_WEIGHT))
    reason = "known-exploited firmware: " + ", ".join(h["cve"] for h in hints)
    return Priority(score=score, tier=tier_of(score), reasons=prio.reasons + (reason,))


@functools.lru_cache(maxsize=4096)
def _score(restricted: bool | None, lists: tuple[str, ...], component_risk: tuple[str, ...],
           exposure: frozenset[str], device_type: str, public_safety: bool) -> Priority:
    """Priority of replacing a device: which lists it is on, what it exposes, and its role.

    P1 (60+) is a covered device in a public-safety role or exposed (telnet, open web UI); P2 (40+) is
    covered elsewhere; P3 is policy-only or component risk; P4 is the rest.
    """
    reasons: list[str] = []
    score = 0
    list_part = 0
    for name in lists:
        w = list_weight(name)
        list_part += w
    if restricted is True and not lists:
        list_part = max(list_part, 30)
    list_part = min(list_part, 55)
    if lists:
        shown = ", ".join(lists[:3]) + (f" +{len(lists) - 3} more" if len(lists) > 3 else "")
        reasons.append(f"lists: {shown}")
    elif restricted is True:
        reasons.append("restricted by policy")
    score += list_part
    if restricted is None:
        score += 5
        reasons.append("maker unknown")
    if component_risk:
        score += 5
        reasons.append("component risk: " + ", ".join(component_risk))
    for tag in sorted(exposure, key=lambda t: (-EXPOSURE_WEIGHTS.get(t, 0), t)):
        if tag == "web_ui" and "web_ui_open" in exposure:
            continue
        score += EXPOSURE_WEIGHTS.get(tag, 0)
        reasons.append(EXPOSURE_LABELS.get(tag, tag))
    if device_type in ("nvr", "dvr"):
        score += 5
        reasons.append("recorder (holds every camera's video)")
    if public_safety:
        score += PUBLIC_SAFETY_WEIGHT
        reasons.append("public-safety role")
    score = max(0, min(100, score))
    return Priority(score=score, tier=tier_of(score), reasons=tuple(reasons))


# --------------------------------------------------------------------------------------------
# plan items and totals


_IPV4 = re.compile(r"^((?:25[0-5]|2[0-4]\d|1?\d?\d)\.(?:25[0-5]|2[0-4]\d|1?\d?\d)\."
                   r"(?:25[0-5]|2[0-4]\d|1?\d?\d))\.(?:25[0-5]|2[0-4]\d|1?\d?\d)$")


def site_of(device: Mapping[str, Any]) -> str:
    """The site a device is counted under: its site name, else its subnet (/24 for IPv4, /64 for IPv6).
    A camera behind a recorder's PoE ports counts under its recorder's subnet, not its internal address."""
    site = device.get("site")
    if site:
        return str(site)
    ip = device.get("parent_ip") or device.get("ip")
    if ip:
        m = _IPV4.match(str(ip))
        if m:
            return f"{m.group(1)}.0/24"
        try:
            addr = ipaddress.ip_address(str(ip).split("%")[0])
            prefix = 24 if addr.version == 4 else 64
            return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))
        except ValueError:
            pass
    return "(no site)"


@dataclass(frozen=True, slots=True)
class PlanItem:
    device_id: int
    ip: str | None
    mac: str | None
    site: str
    manufacturer: str | None
    brand: str | None
    model: str | None
    device_type: str | None
    restricted: bool | None
    lists: tuple[str, ...]
    replacement_class: str
    class_label: str
    suggested_maker: str | None
    suggested_model: str | None
    priority: int
    tier: str
    reasons: tuple[str, ...]
    status: str
    exempt_reason: str | None
    public_safety: bool
    cost_hardware: float
    cost_labour: float
    cost_licence: float
    saved: bool = False
    updated_at: str | None = None

    @property
    def cost_total(self) -> float:
        return self.cost_hardware + self.cost_labour + self.cost_licence

    def to_dict(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id, "ip": self.ip, "mac": self.mac, "site": self.site,
            "manufacturer": self.manufacturer, "brand": self.brand, "model": self.model,
            "device_type": self.device_type, "restricted": self.restricted, "lists": list(self.lists),
            "replacement_class": self.replacement_class, "class_label": self.class_label,
            "suggested_maker": self.suggested_maker, "suggested_model": self.suggested_model,
            "priority": self.priority, "tier": self.tier, "reasons": list(self.reasons), "status": self.status,
            "exempt_reason": self.exempt_reason, "public_safety": self.public_safety,
            "cost_hardware": round(self.cost_hardware, 2), "cost_labour": round(self.cost_labour, 2),
            "cost_licence": round(self.cost_licence, 2), "cost_total": round(self.cost_total, 2),
            "saved": self.saved, "updated_at": self.updated_at,
        }


def default_costs(catalog: Catalog, cls: str, model: CatalogModel | None) -> tuple[float, float, float]:
    c = catalog.cls(cls)
    hw = model.hardware if model and model.hardware is not None else c.hardware
    lic = model.licence if model and model.licence is not None else c.licence
    return float(hw), round(c.labour_hours * catalog.labour_rate, 2), float(lic)


def needs_plan(device: Mapping[str, Any]) -> bool:
    """Flagged devices get a plan: those the policy restricts."""
    return device.get("restricted") is True


def build_item(device: Mapping[str, Any], saved: Mapping[str, Any] | None, catalog: Catalog,
               policy: str = DEFAULT_POLICY, record: EvidenceRecord | None = None,
               cache: dict[Any, Any] | None = None) -> PlanItem:
    """One device's plan: the saved choices where there are any, the catalog's defaults elsewhere.

    ``cache`` (any dict, reused across calls for one catalog and policy) saves repeating policy checks.
    """
    saved = saved or {}
    cache = {} if cache is None else cache
    cls = saved.get("replacement_class") or classify_replacement(device.get("device_type"), device.get("model"),
                                                                   device.get("manufacturer"))
    if cls not in catalog.classes:
        cls = classify_replacement(device.get("device_type"), device.get("model"), device.get("manufacturer"))
    if ("s", cls) not in cache:
        cache[("s", cls)] = suggest_models(catalog, cls, policy)
    suggestions = cache[("s", cls)]
    chosen: CatalogModel | None = None
    maker, model = saved.get("suggested_maker"), saved.get("suggested_model")
    if maker and ("m", maker) not in cache:
        cache[("m", maker)] = maker_allowed(catalog, maker, policy)
    if maker and not cache[("m", maker)]:
        maker = model = None  # the policy changed since it was saved: never show a restricted suggestion
    if model:
        chosen = next((m for m in catalog.cls(cls).models if m.model == model), None)
    elif suggestions:
        chosen = suggestions[0]
        maker, model = chosen.maker, chosen.model
    hw, lab, lic = default_costs(catalog, cls, chosen)
    public_safety = bool(saved.get("public_safety"))
    prio = score_priority(device, public_safety=public_safety, record=record)

    def cost(name: str, default: float) -> float:
        v = saved.get(name)
        return float(v) if v is not None else default

    status = saved.get("status") or "planned"
    return PlanItem(
        device_id=int(device["device_id"]), ip=device.get("ip"), mac=device.get("mac"), site=site_of(device),
        manufacturer=device.get("manufacturer"), brand=device.get("brand"), model=device.get("model"),
        device_type=device.get("device_type"), restricted=device.get("restricted"),
        lists=tuple(device.get("lists") or ()), replacement_class=cls, class_label=catalog.cls(cls).label,
        suggested_maker=maker, suggested_model=model, priority=prio.score, tier=prio.tier, reasons=prio.reasons,
        status=status if status in STATUSES else "planned", exempt_reason=saved.get("exempt_reason"),
        public_safety=public_safety, cost_hardware=cost("cost_hardware", hw),
        cost_labour=cost("cost_labour", lab), cost_licence=cost("cost_licence", lic),
        saved=bool(saved), updated_at=saved.get("updated_at"),
    )


def build_plan(devices: Iterable[Mapping[str, Any]], saved_plans: Mapping[int, Mapping[str, Any]],
               catalog: Catalog, policy: str = DEFAULT_POLICY) -> list[PlanItem]:
    """Plan items for every flagged device and every device with a saved plan, highest priority first."""
    cache: dict[Any, Any] = {}
    items = [build_item(d, saved_plans.get(d["device_id"]), catalog, policy, cache=cache) for d in devices
             if needs_plan(d) or d["device_id"] in saved_plans]
    items.sort(key=lambda i: (-i.priority, i.site, i.ip or ""))
    return items


@dataclass(frozen=True, slots=True)
class Totals:
    devices: int = 0
    by_status: Mapping[str, int] = field(default_factory=dict)
    hardware: float = 0.0
    labour: float = 0.0
    licence: float = 0.0
    remaining: float = 0.0  # planned + ordered: what is still to spend

    @property
    def total(self) -> float:
        return self.hardware + self.labour + self.licence

    def to_dict(self) -> dict[str, Any]:
        return {"devices": self.devices, "by_status": {s: self.by_status.get(s, 0) for s in STATUSES},
                "hardware": round(self.hardware, 2), "labour": round(self.labour, 2),
                "licence": round(self.licence, 2), "total": round(self.total, 2),
                "remaining": round(self.remaining, 2)}


@dataclass(frozen=True, slots=True)
class PlanTotals:
    overall: Totals
    by_site: Mapping[str, Totals]

    def to_dict(self) -> dict[str, Any]:
        return {"overall": self.overall.to_dict(), "by_site": {k: v.to_dict() for k, v in self.by_site.items()}}


def _sum(items: Sequence[PlanItem]) -> Totals:
    by_status = {s: 0 for s in STATUSES}
    hw = lab = lic = rem = 0.0
    for it in items:
        by_status[it.status] = by_status.get(it.status, 0) + 1
        if it.status == "exempt":
            continue  # an exempt device costs nothing
        hw += it.cost_hardware
        lab += it.cost_labour
        lic += it.cost_licence
        if it.status in ("planned", "ordered"):
            rem += it.cost_total
    return Totals(devices=len(items), by_status=by_status, hardware=hw, labour=lab, licence=lic, remaining=rem)


def compute_totals(items: Sequence[PlanItem]) -> PlanTotals:
    """Cost and status totals per site and overall. Exempt devices are counted but cost nothing."""
    groups: dict[str, list[PlanItem]] = {}
    for it in items:
        groups.setdefault(it.site, []).append(it)
    return PlanTotals(overall=_sum(items), by_site={k: _sum(v) for k, v in sorted(groups.items())})


@dataclass(frozen=True, slots=True)
class Plan:
    items: tuple[PlanItem, ...]
    totals: PlanTotals
    policy: str
    currency: str
    catalog_version: str


def make_plan(store: Any, *, policy: str = DEFAULT_POLICY, catalog: Catalog | None = None,
              devices: Sequence[Mapping[str, Any]] | None = None) -> Plan:
    """The plan for a store's devices (each device's latest identification), with totals."""
    catalog = catalog or load_catalog()
    if devices is not None:
        devs = devices
    else:  # each row as the policy sees it (a row identified under another policy is re-evaluated)
        from scanner.policyview import apply_policy

        devs = store.devices()
        rule = catalog.policies.get(policy)
        apply_policy(devs, rule.restrict_as if rule else policy)
    items = build_plan(devs, store.plans(), catalog, policy)
    return Plan(items=tuple(items), totals=compute_totals(items), policy=policy, currency=catalog.currency,
                catalog_version=catalog.version)


# --------------------------------------------------------------------------------------------
# changes


def _cost_value(value: Any, name: str) -> float:
    if isinstance(value, str):
        value = value.strip().replace(",", "").lstrip("$")
        if not value:
            return 0.0
        try:
            value = float(value)
        except ValueError:
            raise PlanError(f"{name} must be a number, not {value[:20]!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PlanError(f"{name} must be a number")
    if value != value or value < 0 or value > 100_000_000:
        raise PlanError(f"{name} must be between 0 and 100,000,000")
    return round(float(value), 2)


def validate_changes(catalog: Catalog, changes: Mapping[str, Any], policy: str = DEFAULT_POLICY,
                     current: PlanItem | None = None) -> dict[str, Any]:
    """Check a change to a plan and return the fields to store. Raises PlanError with a clear message."""
    allowed = {"replacement_class", "suggested_maker", "suggested_model", "status", "exempt_reason",
               "public_safety", "cost_hardware", "cost_labour", "cost_licence", "priority"}
    unknown = set(changes) - allowed
    if unknown:
        raise PlanError(f"unknown plan fields: {', '.join(sorted(unknown))}")
    out: dict[str, Any] = {}
    if "replacement_class" in changes:
        cls = str(changes["replacement_class"] or "")
        if cls not in catalog.classes:
            raise PlanError(f"unknown replacement class {cls[:40]!r}; one of: {', '.join(catalog.classes)}")
        out["replacement_class"] = cls
    if "status" in changes:
        st = str(changes["status"] or "")
        if st not in STATUSES:
            raise PlanError(f"status must be one of {', '.join(STATUSES)}")
        out["status"] = st
    status = out.get("status") or (current.status if current else "planned")
    reason = changes.get("exempt_reason", current.exempt_reason if current else None)
    reason = str(reason).strip()[:500] if reason else None
    if status == "exempt" and not reason:
        raise PlanError("an exempt device needs a reason")
    if "exempt_reason" in changes or "status" in changes:
        out["exempt_reason"] = reason if status == "exempt" else None
    if "suggested_maker" in changes or "suggested_model" in changes:
        maker = changes.get("suggested_maker")
        model = changes.get("suggested_model")
        if maker and not maker_allowed(catalog, str(maker), policy):
            raise PlanError(f"{maker} is restricted under the {policy} policy; choose another maker")
        out["suggested_maker"] = str(maker)[:80] if maker else None
        out["suggested_model"] = str(model)[:120] if model else None
    if "public_safety" in changes:
        out["public_safety"] = bool(changes["public_safety"])
    for name in ("cost_hardware", "cost_labour", "cost_licence"):
        if name in changes:
            out[name] = _cost_value(changes[name], name.replace("_", " "))
    if "priority" in changes:
        out["priority"] = int(changes["priority"])
    return out


def save_item(store: Any, item: PlanItem, catalog: Catalog, policy: str = DEFAULT_POLICY,
              **changes: Any) -> PlanItem:
    """Validate a change, write the whole plan row (so defaults become the saved choice), return the item."""
    fields = validate_changes(catalog, changes, policy, item)
    merged = {
        "replacement_class": item.replacement_class, "suggested_maker": item.suggested_maker,
        "suggested_model": item.suggested_model, "status": item.status, "exempt_reason": item.exempt_reason,
        "public_safety": item.public_safety, "cost_hardware": item.cost_hardware,
        "cost_labour": item.cost_labour, "cost_licence": item.cost_licence,
    }
    if "replacement_class" in fields and fields["replacement_class"] != item.replacement_class \
            and "suggested_model" not in fields:
        # a new class: its first allowed model and its default costs, unless the user gave costs
        sugg = suggest_models(catalog, fields["replacement_class"], policy)
        first = sugg[0] if sugg else None
        merged["suggested_maker"] = first.maker if first else None
        merged["suggested_model"] = first.model if first else None
        hw, lab, lic = default_costs(catalog, fields["replacement_class"], first)
        merged.update(cost_hardware=hw, cost_labour=lab, cost_licence=lic)
    elif "suggested_model" in fields and fields.get("suggested_model") and not any(
            k in fields for k in ("cost_hardware", "cost_licence")):
        cls = fields.get("replacement_class", item.replacement_class)
        chosen = next((m for m in catalog.cls(cls).models if m.model == fields["suggested_model"]), None)
        if chosen is not None:
            hw, _lab, lic = default_costs(catalog, cls, chosen)
            merged.update(cost_hardware=hw, cost_licence=lic)
    merged.update(fields)
    device = {"device_id": item.device_id, "ip": item.ip, "mac": item.mac, "site": item.site,
              "manufacturer": item.manufacturer, "brand": item.brand, "model": item.model,
              "device_type": item.device_type, "restricted": item.restricted, "lists": list(item.lists)}
    prio = score_priority({**device, "evidence": []}, public_safety=bool(merged["public_safety"]))
    # keep the exposure part of the score the item already had
    exposure_part = item.priority - score_priority({**device, "evidence": []},
                                                   public_safety=item.public_safety).score
    score = max(0, min(100, prio.score + max(0, exposure_part)))
    merged["priority"] = score
    store.save_plan(item.device_id, **merged)
    reasons = tuple(r for r in item.reasons if r != "public-safety role")
    if merged["public_safety"]:
        reasons += ("public-safety role",)
    return replace(item, replacement_class=merged["replacement_class"],
                   class_label=catalog.cls(merged["replacement_class"]).label,
                   suggested_maker=merged["suggested_maker"], suggested_model=merged["suggested_model"],
                   status=merged["status"], exempt_reason=merged["exempt_reason"],
                   public_safety=bool(merged["public_safety"]), cost_hardware=float(merged["cost_hardware"]),
                   cost_labour=float(merged["cost_labour"]), cost_licence=float(merged["cost_licence"]),
                   priority=score, tier=tier_of(score), reasons=reasons, saved=True)


# --------------------------------------------------------------------------------------------
# export

CSV_COLUMNS = ("device_id", "site", "ip", "mac", "manufacturer", "brand", "model", "device_type", "lists",
               "replacement_class", "suggested_maker", "suggested_model", "priority", "tier", "reasons",
               "status", "exempt_reason", "public_safety", "cost_hardware", "cost_labour", "cost_licence",
               "cost_total")


def write_csv(plan: Plan, fp: IO[str]) -> int:
    """One row per plan item (the columns of :data:`CSV_COLUMNS`). Returns the number of rows."""
    w = csv.writer(fp, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for it in plan.items:
        d = it.to_dict()
        d["lists"] = ";".join(it.lists)
        d["reasons"] = "; ".join(it.reasons)
        d["public_safety"] = "yes" if it.public_safety else "no"
        w.writerow([spreadsheet_cell(v) if isinstance(v := d.get(c), str) else "" if v is None else v
                    for c in CSV_COLUMNS])
    return len(plan.items)


def plan_to_json(plan: Plan, **meta: Any) -> dict[str, Any]:
    return {"format": PLAN_FORMAT_VERSION, "policy": plan.policy, "currency": plan.currency,
            "catalog_version": plan.catalog_version, **meta,
            "totals": plan.totals.to_dict(), "items": [it.to_dict() for it in plan.items]}
