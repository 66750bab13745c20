"""Compare two scans' device sets: which devices are new, which are gone, and what changed on the rest.

Pure: ``build_scan_diff(old_rows, new_rows)`` takes the device rows of two scans (``Store.devices(scan_id)``
rows, or any dicts with the same keys) and returns a :class:`ScanDiff`. Devices are paired in passes:

1. by MAC, when both rows carry one;
2. then by serial number, when both carry one;
3. then, as a last resort, by IP (with the NVR channel, for cameras behind a recorder), and only when the
   two rows do not carry *different* MACs or *different* serials (that would be two devices that took
   turns on one address). A pair matched on IP says so (``matched_on="ip"``): it is the weakest key.

What counts as a change: firmware, IP, restriction (``false``/``null`` -> ``true`` is "newly restricted"),
real maker, brand, model and device type. Spelling is not a change: case and white space are ignored,
and a model code with a vendor prefix (``DH-IP8M-2496EB``) equals the bare code (``IP8M-2496EB``), since
one device reports these differently through different protocols. A firmware, model, brand or device
type that one of the two scans did not learn (null) is a gap in the observation, not a change; a maker
or restriction that becomes known is a change ("newly restricted" included).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

CHANGE_FIELDS = ("firmware", "ip", "restricted", "manufacturer", "brand", "model", "device_type")
# Fields where "not seen this time" is a gap in the observation, not a change of the device.
UNOBSERVED_IS_NO_CHANGE = frozenset(("firmware", "model", "device_type", "brand"))
KEYS = ("mac", "serial", "ip")


@dataclass(frozen=True, slots=True)
class FieldChange:
    field: str
    old: Any
    new: Any

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "old": self.old, "new": self.new}


@dataclass(frozen=True, slots=True)
class DeviceChange:
    matched_on: str  # mac | serial | ip
    old: Mapping[str, Any]
    new: Mapping[str, Any]
    changes: tuple[FieldChange, ...]

    @property
    def newly_restricted(self) -> bool:
        return self.new.get("restricted") is True and self.old.get("restricted") is not True

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(c.field for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {"matched_on": self.matched_on, "device": _brief(self.new), "before": _brief(self.old),
                "changes": [c.to_dict() for c in self.changes], "newly_restricted": self.newly_restricted}


@dataclass(frozen=True, slots=True)
class ScanDiff:
    new: tuple[Mapping[str, Any], ...] = ()
    gone: tuple[Mapping[str, Any], ...] = ()
    changed: tuple[DeviceChange, ...] = ()
    unchanged: int = 0
    matched_on: Mapping[str, int] = field(default_factory=dict)

    @property
    def newly_restricted(self) -> tuple[Mapping[str, Any], ...]:
        """New devices that are restricted, and known devices that became restricted."""
        return tuple([d for d in self.new if d.get("restricted") is True]
                     + [c.new for c in self.changed if c.newly_restricted])

    def is_empty(self) -> bool:
        return not (self.new or self.gone or self.changed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "new": [_brief(d) for d in self.new],
            "gone": [_brief(d) for d in self.gone],
            "changed": [c.to_dict() for c in self.changed],
            "unchanged": self.unchanged,
            "newly_restricted": len(self.newly_restricted),
            "matched_on": dict(self.matched_on),
        }


def _brief(d: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("device_id", "ip", "mac", "serial", "manufacturer", "brand", "model", "firmware", "device_type",
            "restricted", "lists", "channel")
    return {k: d.get(k) for k in keys if k in d}


def _norm(v: Any) -> Any:
    if isinstance(v, str):
        v = v.strip()
        return v or None
    return v


def _key(d: Mapping[str, Any], name: str) -> Any:
    v = _norm(d.get(name))
    if v is None:
        return None
    if name == "mac":
        return str(v).lower()
    if name == "ip":
        return (str(v), _norm(d.get("channel")))
    return v


def _conflict(a: Mapping[str, Any], b: Mapping[str, Any], name: str) -> bool:
    ka, kb = _key(a, name), _key(b, name)
    return ka is not None and kb is not None and ka != kb


_SPACE = re.compile(r"\s+")


def _same_text(field_name: str, a: str, b: str) -> bool:
    """Whether two reported strings name the same thing, whatever their spelling.

    The same device reports its firmware and model differently through different protocols (ONVIF,
    ISAPI, SADP: ``V5.6.15 build 200924`` and ``V5.6.15build 200924``; ``DH-IP8M-2496EB`` and
    ``IP8M-2496EB``), and which answer a scan keeps can vary. Case and white space never make a change;
    for models, neither does a vendor prefix ending in ``-`` in front of the same code.
    """
    x, y = _SPACE.sub("", a).casefold(), _SPACE.sub("", b).casefold()
    if x == y:
        return True
    if field_name == "model" and x and y:
        longer, shorter = (x, y) if len(x) > len(y) else (y, x)
        return longer.endswith("-" + shorter) and "-" not in longer[: len(longer) - len(shorter) - 1]
    return False


def _compare(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[FieldChange, ...]:
    out = []
    for f in CHANGE_FIELDS:
        a, b = _norm(old.get(f)), _norm(new.get(f))
        if f in UNOBSERVED_IS_NO_CHANGE and (a is None or b is None):
            continue  # one scan did not learn it (a probe timed out, no credentials): not a change
        if f in ("manufacturer", "brand", "firmware", "model", "device_type") and isinstance(a, str) \
                and isinstance(b, str) and _same_text(f, a, b):
            continue
        if a != b:
            out.append(FieldChange(f, a, b))
    return tuple(out)


def build_scan_diff(old_rows: Iterable[Mapping[str, Any]], new_rows: Iterable[Mapping[str, Any]]) -> ScanDiff:
    """New, gone and changed devices between two scans (old first). See the module text for the keys."""
    old = list(old_rows)
    new = list(new_rows)
    old_left = set(range(len(old)))
    new_left = set(range(len(new)))
    pairs: list[tuple[int, int, str]] = []
    for name in KEYS:
        index: dict[Any, list[int]] = {}
        for i in sorted(old_left):
            k = _key(old[i], name)
            if k is not None:
                index.setdefault(k, []).append(i)
        for j in sorted(new_left):
            k = _key(new[j], name)
            if k is None or not index.get(k):
                continue
            for pos, i in enumerate(index[k]):
                if name == "ip" and (_conflict(old[i], new[j], "mac") or _conflict(old[i], new[j], "serial")):
                    continue
                if name == "serial" and _conflict(old[i], new[j], "mac"):
                    continue
                pairs.append((i, j, name))
                old_left.discard(i)
                new_left.discard(j)
                del index[k][pos]
                break
    changed = []
    unchanged = 0
    counts: dict[str, int] = {}
    for i, j, how in sorted(pairs, key=lambda p: p[1]):
        counts[how] = counts.get(how, 0) + 1
        ch = _compare(old[i], new[j])
        if ch:
            changed.append(DeviceChange(how, old[i], new[j], ch))
        else:
            unchanged += 1
    return ScanDiff(
        new=tuple(new[j] for j in sorted(new_left)),
        gone=tuple(old[i] for i in sorted(old_left)),
        changed=tuple(changed),
        unchanged=unchanged,
        matched_on=counts,
    )


def _show(v: Any) -> str:
    if v is None:
        return "-"
    if v is True:
        return "restricted"
    if v is False:
        return "not restricted"
    return str(v)


def _label(d: Mapping[str, Any]) -> str:
    who = " ".join(str(x) for x in (d.get("manufacturer") or "unknown maker", d.get("model") or "") if x)
    ident = d.get("mac") or (f"serial {d['serial']}" if d.get("serial") else "no MAC")
    flag = " [RESTRICTED]" if d.get("restricted") is True else ""
    return f"{d.get('ip') or '-'} ({ident}) {who}{flag}"


def format_scan_diff(diff: ScanDiff, old_label: str = "A", new_label: str = "B") -> list[str]:
    """The diff as lines of plain text (the caller makes device text safe for the terminal)."""
    lines = [f"{len(diff.new)} new, {len(diff.gone)} gone, {len(diff.changed)} changed, "
             f"{diff.unchanged} unchanged ({old_label} -> {new_label})"]
    for d in diff.new:
        lines.append(f"+ new      {_label(d)}")
    for d in diff.gone:
        lines.append(f"- gone     {_label(d)}")
    for c in diff.changed:
        what = "; ".join(f"{x.field} {_show(x.old)} -> {_show(x.new)}" for x in c.changes)
        mark = " NEWLY RESTRICTED" if c.newly_restricted else ""
        key = "" if c.matched_on != "ip" else " (matched on IP only)"
        lines.append(f"~ changed  {_label(c.new)}: {what}{mark}{key}")
    return lines


_SINCE = re.compile(r"^\s*(\d{1,5})\s*([mhdw])\s*$", re.I)
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, now: datetime | None = None) -> str:
    """``7d``, ``12h``, ``30m``, ``2w`` or a date/time (``2026-11-01``, ``2026-11-01T08:00``, UTC) as the
    store's timestamp text (comparable with ``scans.started_at``). Raises ValueError with a clear message."""
    now = now or datetime.now(UTC)
    m = _SINCE.match(text or "")
    if m:
        when = now - timedelta(seconds=int(m[1]) * _UNIT_SECONDS[m[2].lower()])
    else:
        try:
            when = datetime.fromisoformat((text or "").strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"--since {text!r}: expected an age such as 7d, 12h, 30m, 2w or a date such as "
                             "2026-11-01") from None
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
