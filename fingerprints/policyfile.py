"""Your own policies: ``--policy-file FILE`` adds lists of makers and brands, and policies that combine
them with the shipped lists, to the fingerprint database for this run.

The file (YAML)::

    lists:
      acme_exclusions:                      # a new list id (letters, digits, _ and -)
        name: "ACME procurement exclusions 2026"
        version: "2026-11-01"               # the date the list was last checked (reports show it)
        basis: policy                       # law | policy | due_diligence (default: policy)
        cite: "https://intranet.example/policy/cctv"
        makers:                             # names (or ids) from camsweep's vendor registry
          - {name: Uniview, cite: "https://...", since: "2026-01-01"}
        brands:                             # labels: flagged whoever made the device
          - {name: Swann, cite: "https://..."}
    policies:
      acme:
        description: "section 889 plus our exclusions"
        lists: [ndaa889, acme_exclusions]   # shipped lists and this file's
        owners: true                        # optional: cover owners as well as makers

:func:`parse_policy_file` ``(path, db)`` checks it and returns what to add; every problem is reported
as ``FILE line N: ...`` (all of them at once) in one FingerprintError, and nothing is added then.
:func:`install` ``(path, db=None)`` parses and adds it to the database (what the CLI calls). The parser
reads at most :data:`MAX_BYTES`, refuses YAML aliases and tags (no entity expansion), and never
raises anything but FingerprintError.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scanner.capped import read_capped
from scanner.errors import FingerprintError

MAX_BYTES = 1_000_000
MAX_ENTRIES = 10_000  # makers + brands + lists + policies
MAX_ERRORS = 20
_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
_LIST_KEYS = frozenset(("name", "version", "basis", "cite", "makers", "brands", "note", "jurisdiction", "prohibits"))
_ENTRY_KEYS = frozenset(("name", "cite", "since", "note"))
_POLICY_KEYS = frozenset(("description", "lists", "owners"))
_BASES = ("law", "policy", "due_diligence")
_PLAIN_TAGS = frozenset("tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null", "seq", "map",
                                                          "timestamp"))


@dataclass
class PolicyFile:
    path: str
    lists: dict[str, dict[str, Any]] = field(default_factory=dict)
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)


class _Checker:
    def __init__(self, path: str, db: Any) -> None:
        self.path = path
        self.db = db
        self.errors: list[str] = []
        self.seen: set[int] = set()
        self.count = 0

    def err(self, node: Any, msg: str) -> None:
        line = node.start_mark.line + 1 if node is not None and getattr(node, "start_mark", None) else 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(f"{self.path} line {line}: {msg}")

    def visit(self, node: Any) -> bool:
        """Each node once: an alias (the same node reached twice) is refused, so nothing expands."""
        if id(node) in self.seen:
            self.err(node, "YAML aliases (*name) are not allowed in a policy file")
            return False
        self.seen.add(id(node))
        if getattr(node, "tag", "") not in _PLAIN_TAGS:
            self.err(node, f"YAML tag {node.tag!r} is not allowed")
            return False
        return True

    def mapping(self, node: Any, what: str) -> list[tuple[Any, Any]] | None:
        if not isinstance(node, yaml.MappingNode):
            self.err(node, f"{what} must be a mapping (key: value lines)")
            return None
        if not self.visit(node):
            return None
        out: list[tuple[Any, Any]] = []
        keys: set[str] = set()
        for k, v in node.value:
            if not isinstance(k, yaml.ScalarNode):
                self.err(k, f"{what}: keys must be plain words")
                continue
            if k.value in keys:
                self.err(k, f"{what}: {k.value!r} appears twice")
                continue
            keys.add(k.value)
            out.append((k, v))
        return out

    def scalar(self, node: Any, what: str, *, allow_empty: bool = False) -> str | None:
        if not isinstance(node, yaml.ScalarNode) or not self.visit(node):
            if isinstance(node, yaml.ScalarNode):
                return None
            self.err(node, f"{what} must be a single value, not a list or mapping")
            return None
        value = str(node.value).strip()
        if not value and not allow_empty:
            self.err(node, f"{what} is empty")
            return None
        return value[:2000]

    def cites(self, node: Any, what: str) -> list[str] | None:
        if isinstance(node, yaml.SequenceNode):
            if not self.visit(node):
                return None
            out = [c for c in (self.scalar(x, f"{what}: cite") for x in node.value[:50]) if c]
            if not out:
                self.err(node, f"{what}: cite is empty")
                return None
            return out
        c = self.scalar(node, f"{what}: cite")
        return [c] if c else None

    def date(self, node: Any, what: str) -> str | None:
        value = self.scalar(node, what)
        if value is not None and not _DATE.match(value):
            self.err(node, f"{what} must be a date as YYYY, YYYY-MM or YYYY-MM-DD, not {value!r}")
            return None
        return value


def parse_policy_text(text: str, path: str, db: Any) -> PolicyFile:
    """Check a policy file's text against the database; FingerprintError with every ``line N`` problem."""
    ck = _Checker(path, db)
    try:
        # first the event stream: aliases and tags are refused before anything is built from them
        for n, ev in enumerate(yaml.parse(text, Loader=yaml.SafeLoader)):
            line = ev.start_mark.line + 1 if ev.start_mark is not None else 1
            if n > 20 * MAX_ENTRIES:
                raise FingerprintError(f"{path} line {line}: too long for a policy file")
            if isinstance(ev, yaml.AliasEvent):
                raise FingerprintError(f"{path} line {line}: YAML aliases (*name) are not allowed in a policy file")
            tag = getattr(ev, "tag", None)
            if tag not in (None, "!") and tag not in _PLAIN_TAGS:
                raise FingerprintError(f"{path} line {line}: YAML tag {tag!r} is not allowed")
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FingerprintError(f"{path} line {line}: not valid YAML ({problem})") from None
    except (ValueError, RecursionError) as exc:  # odd bytes, absurd nesting
        raise FingerprintError(f"{path}: not valid YAML ({type(exc).__name__})") from None
    pf = PolicyFile(path)
    if root is None:
        raise FingerprintError(f"{path} line 1: the file is empty (expected 'lists:' and/or 'policies:')")
    top = ck.mapping(root, "the file")
    if top is None:
        raise FingerprintError("\n".join(ck.errors))
    for k, v in top:
        if k.value == "lists":
            _lists(ck, v, pf)
        elif k.value == "policies":
            pass  # after the lists: a policy may name this file's lists
        else:
            ck.err(k, f"unknown key {k.value!r} (expected 'lists' and 'policies')")
    for k, v in top:
        if k.value == "policies":
            _policies(ck, v, pf)
    if not pf.lists and not pf.policies and not ck.errors:
        ck.err(root, "defines no list and no policy")
    if ck.errors:
        raise FingerprintError("\n".join(sorted(ck.errors, key=_line_of)))
    return pf


def _line_of(msg: str) -> int:
    m = re.search(r" line (\d+): ", msg)
    return int(m.group(1)) if m else 0


def _added(ck: _Checker, items: list[tuple[Any, Any]] | None, what: str, word: str, shipped: Collection[str]
           ) -> Iterator[tuple[Any, str, list[tuple[Any, Any]]]]:
    """(key node, name, fields) of each entry of a ``lists:`` or ``policies:`` section (``what``: list or
    policy; ``word``: what its name is called) whose name is well formed and not a shipped one; every
    other entry costs an error."""
    for k, v in items or ():
        name = k.value
        if not _ID.match(name):
            ck.err(k, f"{what} {word} {name!r}: use letters, digits, '_' and '-' (starting with a letter)")
            continue
        if name in shipped:
            ck.err(k, f"{what} {name!r} is a shipped {what}; give yours another {word}")
            continue
        fields = ck.mapping(v, f"{what} {name}")
        if fields is not None:
            yield k, name, fields


def _lists(ck: _Checker, node: Any, pf: PolicyFile) -> None:
    for k, lid, fields in _added(ck, ck.mapping(node, "lists"), "list", "id", ck.db.lists):
        spec: dict[str, Any] = {"covers": {}, "affiliates": True, "source": pf.path}
        seen = {f.value for f, _ in fields}
        for f, fv in fields:
            key = f.value
            if key not in _LIST_KEYS:
                ck.err(f, f"list {lid}: unknown key {key!r} (allowed: {', '.join(sorted(_LIST_KEYS))})")
            elif key == "version":
                spec["version"] = ck.date(fv, f"list {lid}: version")
            elif key == "basis":
                b = ck.scalar(fv, f"list {lid}: basis")
                if b is not None and b not in _BASES:
                    ck.err(fv, f"list {lid}: basis {b!r} is not one of {', '.join(_BASES)}")
                spec["basis"] = b
            elif key == "cite":
                spec["cite"] = ck.cites(fv, f"list {lid}")
            elif key in ("makers", "brands"):
                _entries(ck, fv, lid, key, spec)
            else:
                spec[key] = ck.scalar(fv, f"list {lid}: {key}")
        for need in ("name", "cite", "version"):
            if need not in seen:
                ck.err(k, f"list {lid}: no {need}" + (" (the date it was last checked)" if need == "version" else ""))
        if "makers" not in seen and "brands" not in seen:
            ck.err(k, f"list {lid}: no makers and no brands")
        spec["basis"] = spec.get("basis") or "policy"
        spec["legal"] = spec["basis"] == "law"
        pf.lists[lid] = spec


def _entries(ck: _Checker, node: Any, lid: str, key: str, spec: dict[str, Any]) -> None:
    what = f"list {lid}: {key}"
    if not isinstance(node, yaml.SequenceNode):
        ck.err(node, f"{what} must be a list of entries ('- name: ..., cite: ...')")
        return
    if not ck.visit(node):
        return
    for item in node.value:
        ck.count += 1
        if ck.count > MAX_ENTRIES:
            ck.err(item, f"more than {MAX_ENTRIES} entries")
            return
        if isinstance(item, yaml.ScalarNode):
            ck.err(item, f"{what}: {item.value!r} has no citation (write '- {{name: {item.value}, cite: ...}}')")
            continue
        fields = ck.mapping(item, f"{what} entry")
        if fields is None:
            continue
        entry: dict[str, Any] = {"kind": key[:-1]}
        name_node = None
        for f, fv in fields:
            if f.value not in _ENTRY_KEYS:
                ck.err(f, f"{what}: unknown key {f.value!r} (allowed: {', '.join(sorted(_ENTRY_KEYS))})")
            elif f.value == "name":
                entry["name"] = ck.scalar(fv, f"{what}: name")
                name_node = fv
            elif f.value == "cite":
                entry["cite"] = ck.cites(fv, f"{what}: {entry.get('name') or 'entry'}")
            elif f.value == "since":
                entry["since"] = ck.date(fv, f"{what}: since")
            else:
                entry["note"] = ck.scalar(fv, f"{what}: note", allow_empty=True)
        if not entry.get("name"):
            if name_node is None:
                ck.err(item, f"{what}: an entry without a name")
            continue
        if "cite" not in entry:
            ck.err(item, f"{what}: {entry['name']!r} has no cite (every maker and brand needs its source)")
            continue
        vid = _resolve(ck, name_node, entry["name"], key, what)
        if vid is None:
            continue
        if vid in spec["covers"]:
            ck.err(name_node, f"{what}: {entry['name']!r} is listed twice")
            continue
        spec["covers"][vid] = {k: v for k, v in entry.items() if k != "name" and v is not None}


def _resolve(ck: _Checker, node: Any, name: str, key: str, what: str) -> str | None:
    db = ck.db
    vid = name if name in db.vendors else None
    if vid is None:
        vids = db.lookup_names(name)
        vid = vids[0] if len(vids) == 1 else None
        if len(vids) > 1:
            ck.err(node, f"{what}: {name!r} names several vendors ({', '.join(vids)}); use one id")
            return None
    if vid is None:
        ck.err(node, f"{what}: {name!r} is not in camsweep's vendor registry (fingerprints/vendors.yaml); "
                     "a maker camsweep cannot name cannot be flagged: add it to the registry first")
        return None
    v = db.vendors[vid]
    if key == "makers" and v.kind in ("oem_brand", "component_maker"):
        kind = "a label (an OEM brand)" if v.kind == "oem_brand" else "a chip or module maker"
        ck.err(node, f"{what}: {name!r} is {kind}, not a device maker"
                     + (": list it under brands" if v.kind == "oem_brand" else ""))
        return None
    return vid


def _policies(ck: _Checker, node: Any, pf: PolicyFile) -> None:
    for k, pid, fields in _added(ck, ck.mapping(node, "policies"), "policy", "name", ck.db.policies()):
        spec: dict[str, Any] = {"source": pf.path}
        for f, fv in fields:
            if f.value not in _POLICY_KEYS:
                ck.err(f, f"policy {pid}: unknown key {f.value!r} (allowed: {', '.join(sorted(_POLICY_KEYS))})")
            elif f.value == "description":
                spec["description"] = ck.scalar(fv, f"policy {pid}: description")
            elif f.value == "owners":
                o = ck.scalar(fv, f"policy {pid}: owners")
                if o is not None and o.lower() not in ("true", "false"):
                    ck.err(fv, f"policy {pid}: owners must be true or false")
                spec["owners"] = o is not None and o.lower() == "true"
            else:
                if not isinstance(fv, yaml.SequenceNode) or not ck.visit(fv):
                    if not isinstance(fv, yaml.SequenceNode):
                        ck.err(fv, f"policy {pid}: lists must be a list ([ndaa889, my_list])")
                    continue
                lists = []
                for x in fv.value:
                    lid = ck.scalar(x, f"policy {pid}: list")
                    if lid is None:
                        continue
                    if lid not in ck.db.lists and lid not in pf.lists:
                        ck.err(x, f"policy {pid}: unknown list {lid!r} (shipped: {', '.join(ck.db.lists)}; "
                                  f"this file: {', '.join(pf.lists) or 'none'})")
                        continue
                    lists.append(lid)
                spec["lists"] = lists
        if not spec.get("lists"):
            if "lists" not in {f.value for f, _ in fields}:
                ck.err(k, f"policy {pid}: no lists")
            continue
        pf.policies[pid] = spec


def parse_policy_file(path: str | Path, db: Any) -> PolicyFile:
    """Read (at most MAX_BYTES) and check a policy file."""
    try:
        raw = read_capped(path, MAX_BYTES)
    except OSError as exc:
        raise FingerprintError(f"cannot read the policy file {path}: {exc.strerror or exc}") from None
    if raw is None:
        raise FingerprintError(f"{path}: larger than {MAX_BYTES} bytes; a policy file is a short list")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise FingerprintError(f"{path} line {line}: not UTF-8 text") from None
    return parse_policy_text(text, str(path), db)


def apply(db: Any, pf: PolicyFile) -> None:
    """Add a checked policy file's lists and policies to the database (and forget cached answers)."""
    for lid, spec in pf.lists.items():
        db.lists[lid] = spec
    for pid, spec in pf.policies.items():
        db._policies[pid] = spec
    db._policy_cache = {}
    type(db).lists_for.cache_clear()


def install(path: str | Path, db: Any = None) -> PolicyFile:
    """Parse a policy file and add it to the (process's) fingerprint database."""
    if db is None:
        from fingerprints.db import load_database

        db = load_database()
    pf = parse_policy_file(path, db)
    apply(db, pf)
    return pf
