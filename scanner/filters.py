"""The devices view's filter and search language, and the counts and labels the TUI shows beside it.

Text form (the TUI's filter bar): ``maker:hikvision subnet:198.18.1.0/24 type:nvr site:hq status:planned lts``;
``restricted`` (``is:restricted``) and ``review`` (``is:review``) keep those devices; other words must all
appear in a device's searchable text (:func:`search_text`). Plain values only, no widgets: the TUI and the
reports use them alike.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from scanner.plan import norm_name, site_of


def brand_display(brand: str | None, manufacturer: str | None) -> str:
    """The label on the box, with the real maker when it differs: ``"LTS -> Hikvision"``."""
    b, m = (brand or "").strip(), (manufacturer or "").strip()
    if b and m and norm_name(b) != norm_name(m) and not norm_name(b).startswith(norm_name(m)):
        return f"{b} -> {m}"
    return b or m


@dataclass(frozen=True, slots=True)
class DeviceFilter:
    """What the devices view shows: ``restricted_only``, words to find, ``maker:`` and ``subnet:`` terms.

    Text form (the filter bar): ``maker:hikvision subnet:198.18.1.0/24 type:nvr site:hq lts``; ``review``
    (or ``is:review``) keeps the devices that need review. Free words must all appear in one of ip, mac,
    maker, brand, model, type, site, lists, note or the suspected maker of a review.
    """

    restricted_only: bool = False
    review_only: bool = False
    words: tuple[str, ...] = ()
    makers: tuple[str, ...] = ()
    subnets: tuple[Any, ...] = ()
    types: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.restricted_only or self.review_only or self.words or self.makers or self.subnets
                    or self.types or self.sites or self.status)


def parse_filter(text: str, restricted_only: bool = False) -> DeviceFilter:
    words: list[str] = []
    makers: list[str] = []
    subnets: list[Any] = []
    types: list[str] = []
    sites: list[str] = []
    status: list[str] = []
    errors: list[str] = []
    review_only = False
    for tok in (text or "")[:500].split():
        key, sep, val = tok.partition(":")
        key = key.lower()
        if sep and val and key in ("maker", "m", "brand"):
            makers.append(norm_name(val))
        elif sep and val and key in ("subnet", "net", "ip"):
            try:
                subnets.append(ipaddress.ip_network(val, strict=False))
            except ValueError:
                if key == "ip":
                    words.append(val.lower())
                else:
                    errors.append(f"not a subnet: {val[:40]}")
        elif sep and val and key in ("type", "t"):
            types.append(val.lower())
        elif sep and val and key == "site":
            sites.append(val.lower())
        elif sep and val and key == "status":
            status.append(val.lower())
        elif tok.lower() in ("restricted", "is:restricted"):
            restricted_only = True
        elif tok.lower() in ("review", "is:review", "needs-review"):
            review_only = True
        else:
            words.append(tok.lower())
    return DeviceFilter(restricted_only=restricted_only, review_only=review_only, words=tuple(words), makers=tuple(makers),
                        subnets=tuple(subnets), types=tuple(types), sites=tuple(sites), status=tuple(status),
                        errors=tuple(errors))


def search_text(device: Mapping[str, Any]) -> str:
    """The text free words are matched against (lower case), built once per device."""
    parts = [device.get(k) for k in ("ip", "mac", "manufacturer", "brand", "model", "device_type", "site",
                                      "firmware", "note")]
    parts += list(device.get("lists") or ())
    if device.get("review"):
        parts.append(device["review"].get("maker"))
    return " ".join(str(p) for p in parts if p).lower()


def match_device(device: Mapping[str, Any], f: DeviceFilter, text: str | None = None,
                 status: str | None = None) -> bool:
    if f.restricted_only and device.get("restricted") is not True:
        return False
    if f.review_only and not device.get("review"):
        return False
    if f.makers:
        names = (norm_name(device.get("manufacturer")), norm_name(device.get("brand")))
        if not any(m and any(n.startswith(m) for n in names if n) for m in f.makers):
            return False
    if f.types and (device.get("device_type") or "").lower() not in f.types:
        return False
    if f.sites and not any(s in site_of(device).lower() for s in f.sites):
        return False
    if f.status and (status or "") not in f.status:
        return False
    if f.subnets:
        try:
            addr = ipaddress.ip_address(str(device.get("ip") or "").split("%")[0])
        except ValueError:
            return False
        if not any(addr.version == n.version and addr in n for n in f.subnets):
            return False
    if f.words:
        hay = text if text is not None else search_text(device)
        if not all(w in hay for w in f.words):
            return False
    return True


@dataclass(frozen=True, slots=True)
class DeviceCounts:
    devices: int
    restricted: int
    unknown: int  # maker not established (restricted is None)
    review: int = 0  # needs review (the evidence points at a restricted maker without establishing it)


def count_devices(devices: Iterable[Mapping[str, Any]]) -> DeviceCounts:
    n = r = u = v = 0
    for d in devices:
        n += 1
        if d.get("restricted") is True:
            r += 1
        elif d.get("restricted") is None:
            u += 1
        if d.get("review"):
            v += 1
    return DeviceCounts(devices=n, restricted=r, unknown=u, review=v)
