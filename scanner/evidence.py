"""The device evidence record (format 1, docs/evidence-format.md) and identification results.

A record is what a scan observed of one device, before any judgement. The reader is tolerant
(any common MAC notation, header names in any case, a single object where a list is expected,
numbers as strings, unknown keys kept) and bounded (text is cut, lists are capped). Anything it
cannot make sense of raises :class:`EvidenceError` with a message that names the problem; it never
lets another exception out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from typing import Any

from scanner.devtext import SURROGATE, clean_text  # clean at entry; re-exported for the store and probes

FORMAT_VERSION = 1

# Size caps applied when a record is read; the scanner applies its own (smaller) caps when it reads
# from the wire. They keep one hostile record from costing more than its share.
MAX_TEXT = 64 * 1024  # body, SDP, raw XML
MAX_VALUE = 8 * 1024  # a header value, a scope, a field
MAX_ITEMS = 64  # entries per protocol, headers per response, scopes per reply
MAX_LINE = 4 * 1024 * 1024  # one JSONL line

PROTOCOL_KEYS = ("http", "rtsp", "wsd", "onvif", "ssdp", "mdns", "tls", "banners", "dhcp", "discovery")
KNOWN_KEYS = frozenset(("id", "ip", "mac", *PROTOCOL_KEYS))


class EvidenceError(ValueError):
    """A record that cannot be read; the message says why, in words a user can act on."""


# --------------------------------------------------------------------------------------------
# small value helpers

_HEX = re.compile(r"[0-9a-fA-F]")
_MAC_SEP = re.compile(r"[\s:\-.]")
_HEXSET = frozenset("0123456789abcdef")


def normalize_mac(value: Any) -> str | None:
    """Return a MAC as lower-case ``aa:bb:cc:dd:ee:ff``, or None when it is not a MAC.

    Accepts ``28:57:BE:01:02:03``, ``28-57-be-01-02-03``, ``2857.be01.0203``, ``2857be010203``.
    """
    if not isinstance(value, str) or len(value) > 64:
        return None
    if len(value) == 17 and value[2] == ":" and value[5] == ":":  # the common notation: no regex
        digits = value.replace(":", "").lower()
        if len(digits) == 12 and _HEXSET.issuperset(digits):
            return ":".join((digits[0:2], digits[2:4], digits[4:6], digits[6:8], digits[8:10], digits[10:12]))
    digits = _MAC_SEP.sub("", value.strip())
    if len(digits) != 12 or not all(_HEX.fullmatch(c) for c in digits):
        return None
    digits = digits.lower()
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def _text(value: Any, cap: int = MAX_VALUE) -> str:
    if type(value) is str:  # the common case first
        return value if len(value) <= cap else value[:cap]
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value[:cap]
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v, cap) for v in value[:MAX_ITEMS])[:cap]
    return json.dumps(value, default=str)[:cap]


def _opt_text(value: Any, cap: int = MAX_VALUE) -> str | None:
    return None if value is None else _text(value, cap)


def _int(value: Any, what: str) -> int | None:
    if type(value) is int:  # the common case first
        return value
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise EvidenceError(f"{what} must be a number, not {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise EvidenceError(f"{what} must be a number, not {str(value)[:40]!r}")


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _entries(value: Any, key: str) -> list[Mapping[str, Any]]:
    """A protocol's entries as a list of objects: accepts one object or a list of them."""
    if value is None:
        return []
    if type(value) is list:
        for item in value:  # a plain loop: cheaper per record than all() over a generator
            if type(item) is not dict:
                break
        else:
            return value[:MAX_ITEMS]  # JSON's own shapes
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, list):
        raise EvidenceError(f'"{key}" must be a list of objects, not {type(value).__name__}')
    out = []
    for i, item in enumerate(value[:MAX_ITEMS]):
        if not isinstance(item, Mapping):
            raise EvidenceError(f'"{key}"[{i}] must be an object, not {type(item).__name__}')
        out.append(item)
    return out


def _strings(value: Any) -> tuple[str, ...]:
    """A list of strings; a single string may hold several separated by white space (WS-Discovery)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v[:MAX_VALUE] for v in value.split()[:MAX_ITEMS])
    if isinstance(value, (list, tuple)):
        return tuple(_text(v) for v in value[:MAX_ITEMS] if v is not None)
    return (_text(value),)


def _str_map(value: Any, key: str) -> dict[str, str]:
    if value is None:
        return {}
    if type(value) is dict and len(value) <= MAX_ITEMS:
        for k, v in value.items():  # a plain loop: cheaper per record than all() over a generator
            if type(k) is not str or len(k) > 256 or type(v) is not str or len(v) > MAX_VALUE:
                break
        else:
            return dict(value)  # JSON's own strings, within the caps: nothing to convert
    if isinstance(value, Mapping):
        return {str(k)[:256]: _text(v) for k, v in list(value.items())[:MAX_ITEMS]}
    if isinstance(value, list):  # a list of [name, value] pairs
        out: dict[str, str] = {}
        for pair in value[:MAX_ITEMS]:
            if isinstance(pair, (list, tuple)) and len(pair) == 2:
                out[str(pair[0])[:256]] = _text(pair[1])
            else:
                raise EvidenceError(f'"{key}" must be an object or a list of [name, value] pairs')
        return out
    raise EvidenceError(f'"{key}" must be an object, not {type(value).__name__}')


class Headers(Mapping[str, str]):
    """Header names matched case-insensitively; names and values kept as received."""

    __slots__ = ("_items", "_lower")

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        if type(items) is dict and all(type(k) is str and type(v) is str for k, v in items.items()):
            self._items: tuple[tuple[str, str], ...] = tuple(items.items())  # the parsers' own (str -> str)
        else:
            pairs = list(items.items()) if isinstance(items, Mapping) else list(items)
            self._items = tuple((str(k), str(v)) for k, v in pairs)
        self._lower = {k.lower(): v for k, v in self._items}

    @classmethod
    def _of(cls, items: dict[str, str]) -> Headers:
        """The same as ``Headers(items)`` for a str -> str dict (what _str_map returns), without checking."""
        h = cls.__new__(cls)
        h._items = tuple(items.items())
        h._lower = dict(zip(map(str.lower, items), items.values(), strict=True))
        return h

    def __getitem__(self, name: str) -> str:
        return self._lower[name.lower()]

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return self._lower.get(name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._lower

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def lower_items(self) -> Iterator[tuple[str, str]]:
        return iter(self._lower.items())

    def to_dict(self) -> dict[str, str]:
        return dict(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"Headers({dict(self._items)!r})"


_REALM = re.compile(r'realm\s*=\s*"([^"]*)"|realm\s*=\s*([^\s,]+)', re.I)


def parse_realm(www_authenticate: str) -> str | None:
    """The realm of a WWW-Authenticate value (``Digest realm="IP Camera(C2183)", ...``)."""
    if not www_authenticate:  # most answers: no challenge, nothing to search
        return None
    m = _REALM.search(www_authenticate)
    if not m:
        return None
    return m.group(1) if m.group(1) is not None else m.group(2)


# --------------------------------------------------------------------------------------------
# text as it enters: what a device sends becomes text UTF-8 (and so the store) can hold
# (clean_text itself lives in scanner.devtext, beside the rules for showing text)

_MAX_DEPTH = 64


def clean_evidence(obj: Any, _depth: int = 0) -> Any:
    """A probe's JSON-shaped fragment (dicts, lists, strings, numbers) with every string and key made
    clean text (:func:`clean_text`); nesting deeper than 64 levels is dropped. Devices' text enters the
    scan here (the engine calls it on every fragment), so one hostile reply cannot stop the store."""
    if type(obj) is str:
        return clean_text(obj)
    if _depth >= _MAX_DEPTH:
        return None
    if isinstance(obj, Mapping):
        return {(clean_text(k) if type(k) is str else k): clean_evidence(v, _depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_evidence(v, _depth + 1) for v in obj]
    if isinstance(obj, str):
        return clean_text(str(obj))
    return obj


def _lone_surrogate(obj: Any, _depth: int = 0) -> str | None:
    """The first lone surrogate in a decoded JSON value, as ``\\udXXX``; None when there is none."""
    if type(obj) is str:
        m = None if obj.isascii() else SURROGATE.search(obj)
        return f"\\u{ord(m.group()):04x}" if m else None
    if _depth > 200:
        return None
    if type(obj) is dict:
        for k, v in obj.items():
            found = _lone_surrogate(k, _depth + 1) or _lone_surrogate(v, _depth + 1)
            if found:
                return found
    elif type(obj) is list:
        for v in obj:
            found = _lone_surrogate(v, _depth + 1)
            if found:
                return found
    return None


# --------------------------------------------------------------------------------------------
# observations


def _drop_empty(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v not in (None, "", [], {}, ())}


@dataclass(frozen=True, slots=True)
class HttpObservation:
    port: int | None = None
    tls: bool = False
    path: str = "/"
    status: int | None = None
    headers: Headers = field(default_factory=Headers)
    title: str = ""
    body: str = ""
    favicon_md5: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def realm(self) -> str | None:
        return parse_realm(self.headers.get("WWW-Authenticate", ""))

    def to_dict(self) -> dict[str, Any]:
        d = _drop_empty(
            {"port": self.port, "path": self.path, "status": self.status, "headers": self.headers.to_dict(),
             "title": self.title, "body": self.body, "favicon_md5": self.favicon_md5}
        )
        d["tls"] = self.tls
        return {**self.extra, **d}


@dataclass(frozen=True, slots=True)
class RtspObservation:
    port: int | None = None
    request: str = ""
    status: int | None = None
    headers: Headers = field(default_factory=Headers)
    body: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def realm(self) -> str | None:
        return parse_realm(self.headers.get("WWW-Authenticate", ""))

    def to_dict(self) -> dict[str, Any]:
        return {**self.extra, **_drop_empty({"port": self.port, "request": self.request, "status": self.status,
                                             "headers": self.headers.to_dict(), "body": self.body})}


@dataclass(frozen=True, slots=True)
class WsdObservation:
    types: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    xaddrs: tuple[str, ...] = ()
    endpoint: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.extra, **_drop_empty({"types": list(self.types), "scopes": list(self.scopes),
                                             "xaddrs": list(self.xaddrs), "endpoint": self.endpoint})}


@dataclass(frozen=True, slots=True)
class OnvifInfo:
    manufacturer: str = ""
    model: str = ""
    firmware: str = ""
    serial: str = ""
    hardware_id: str = ""
    raw: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.extra, **_drop_empty({"manufacturer": self.manufacturer, "model": self.model,
                                             "firmware": self.firmware, "serial": self.serial,
                                             "hardware_id": self.hardware_id, "raw": self.raw})}


@dataclass(frozen=True, slots=True)
class SsdpObservation:
    headers: Headers = field(default_factory=Headers)
    description: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.extra, **_drop_empty({"headers": self.headers.to_dict(),
                                             "description": dict(self.description)})}


@dataclass(frozen=True, slots=True)
class MdnsObservation:
    type: str = ""
    name: str = ""
    hostname: str = ""
    port: int | None = None
    txt: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.extra, **_drop_empty({"type": self.type, "name": self.name, "hostname": self.hostname,
                                             "port": self.port, "txt": dict(self.txt)})}


@dataclass(frozen=True, slots=True)
class TlsObservation:
    port: int | None = None
    subject: str = ""
    issuer: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.extra, **_drop_empty({"port": self.port, "subject": self.subject, "issuer": self.issuer})}


@dataclass(frozen=True, slots=True)
class Banner:
    protocol: str = "tcp"
    port: int | None = None
    text: str = ""
    hex: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.extra, **_drop_empty({"protocol": self.protocol, "port": self.port, "text": self.text,
                                             "hex": self.hex})}


@dataclass(frozen=True, slots=True)
class DhcpInfo:
    vendor_class: str = ""
    hostname: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.extra, **_drop_empty({"vendor_class": self.vendor_class, "hostname": self.hostname})}


@dataclass(frozen=True, slots=True)
class DiscoveryReply:
    protocol: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.extra, **_drop_empty({"protocol": self.protocol, "fields": dict(self.fields)})}


def _read_keys(cls: type, *aliases: str) -> frozenset[str]:
    """The keys an entry parser reads: the entry class's fields (and the device's own spellings it also
    takes); the others are kept as ``extra``."""
    return frozenset(f.name for f in dataclass_fields(cls) if f.name != "extra") | frozenset(aliases)


_HTTP_KEYS = _read_keys(HttpObservation)
_RTSP_KEYS = _read_keys(RtspObservation)
_WSD_KEYS = _read_keys(WsdObservation)
_ONVIF_KEYS = _read_keys(OnvifInfo, "Manufacturer", "Model", "FirmwareVersion", "SerialNumber", "HardwareId")
_SSDP_KEYS = _read_keys(SsdpObservation)
_MDNS_KEYS = _read_keys(MdnsObservation)
_TLS_KEYS = _read_keys(TlsObservation)
_BANNER_KEYS = _read_keys(Banner)
_DHCP_KEYS = _read_keys(DhcpInfo)
_DISCOVERY_KEYS = _read_keys(DiscoveryReply)


def _extra(obj: Mapping[str, Any], known: Iterable[str]) -> dict[str, Any]:
    ks = known if isinstance(known, frozenset) else frozenset(known)
    if ks.issuperset(obj):
        return {}
    return {k: v for k, v in obj.items() if k not in ks}


def _parse_http(o: Mapping[str, Any], i: int) -> HttpObservation:
    # the common cases inline (an int or no port and status, no TLS flag): per record, so it counts
    port = o.get("port")
    if port is not None and type(port) is not int:
        port = _int(port, f"http[{i}].port")
    status = o.get("status")
    if status is not None and type(status) is not int:
        status = _int(status, f"http[{i}].status")
    tls = o.get("tls", False)
    headers = o.get("headers")
    # positional, in the dataclass's field order: port, tls, path, status, headers, title, body, favicon_md5, extra
    return HttpObservation(
        port,
        tls if tls is False else _bool(tls),
        _text(o.get("path") or "/"),
        status,
        Headers._of({} if headers is None else _str_map(headers, f"http[{i}].headers")),
        _text(o.get("title")),
        _text(o.get("body"), MAX_TEXT),
        _text(o.get("favicon_md5")).lower(),
        _extra(o, _HTTP_KEYS),
    )


def _parse_rtsp(o: Mapping[str, Any], i: int) -> RtspObservation:
    return RtspObservation(
        port=_int(o.get("port"), f"rtsp[{i}].port"),
        request=_text(o.get("request")),
        status=_int(o.get("status"), f"rtsp[{i}].status"),
        headers=Headers._of(_str_map(o.get("headers"), f"rtsp[{i}].headers")),
        body=_text(o.get("body"), MAX_TEXT),
        extra=_extra(o, _RTSP_KEYS),
    )


def _parse_wsd(o: Mapping[str, Any], i: int) -> WsdObservation:
    return WsdObservation(
        types=_strings(o.get("types")),
        scopes=_strings(o.get("scopes")),
        xaddrs=_strings(o.get("xaddrs")),
        endpoint=_text(o.get("endpoint")),
        extra=_extra(o, _WSD_KEYS),
    )


def _parse_onvif(o: Any) -> OnvifInfo | None:
    if o is None:
        return None
    if isinstance(o, list):  # tolerate a one-element list
        if not o:
            return None
        o = o[0]
    if not isinstance(o, Mapping):
        raise EvidenceError(f'"onvif" must be an object, not {type(o).__name__}')
    return OnvifInfo(
        manufacturer=_text(o.get("manufacturer") or o.get("Manufacturer")),
        model=_text(o.get("model") or o.get("Model")),
        firmware=_text(o.get("firmware") or o.get("FirmwareVersion")),
        serial=_text(o.get("serial") or o.get("SerialNumber")),
        hardware_id=_text(o.get("hardware_id") or o.get("HardwareId")),
        raw=_text(o.get("raw"), MAX_TEXT),
        extra=_extra(o, _ONVIF_KEYS),
    )


def _parse_ssdp(o: Mapping[str, Any], i: int) -> SsdpObservation:
    return SsdpObservation(
        headers=Headers._of(_str_map(o.get("headers"), f"ssdp[{i}].headers")),
        description=_str_map(o.get("description"), f"ssdp[{i}].description"),
        extra=_extra(o, _SSDP_KEYS),
    )


def _parse_mdns(o: Mapping[str, Any], i: int) -> MdnsObservation:
    return MdnsObservation(
        type=_text(o.get("type")),
        name=_text(o.get("name")),
        hostname=_text(o.get("hostname")),
        port=_int(o.get("port"), f"mdns[{i}].port"),
        txt=_str_map(o.get("txt"), f"mdns[{i}].txt"),
        extra=_extra(o, _MDNS_KEYS),
    )


def _parse_tls(o: Mapping[str, Any], i: int) -> TlsObservation:
    return TlsObservation(
        port=_int(o.get("port"), f"tls[{i}].port"),
        subject=_text(o.get("subject")),
        issuer=_text(o.get("issuer")),
        extra=_extra(o, _TLS_KEYS),
    )


def _parse_banner(o: Mapping[str, Any], i: int) -> Banner:
    hexs = _text(o.get("hex"), MAX_TEXT)
    if hexs and not re.fullmatch(r"[0-9a-fA-F\s]*", hexs):
        raise EvidenceError(f"banners[{i}].hex must be hexadecimal digits")
    return Banner(
        protocol=(_text(o.get("protocol")) or "tcp").lower(),
        port=_int(o.get("port"), f"banners[{i}].port"),
        text=_text(o.get("text"), MAX_TEXT),
        hex=re.sub(r"\s", "", hexs).lower() if hexs else "",
        extra=_extra(o, _BANNER_KEYS),
    )


def _parse_dhcp(o: Any) -> DhcpInfo | None:
    if o is None:
        return None
    if not isinstance(o, Mapping):
        raise EvidenceError(f'"dhcp" must be an object, not {type(o).__name__}')
    return DhcpInfo(vendor_class=_text(o.get("vendor_class")), hostname=_text(o.get("hostname")),
                    extra=_extra(o, _DHCP_KEYS))


def _parse_discovery(o: Mapping[str, Any], i: int) -> DiscoveryReply:
    return DiscoveryReply(
        protocol=_text(o.get("protocol")).lower(),
        fields=_str_map(o.get("fields"), f"discovery[{i}].fields"),
        extra=_extra(o, _DISCOVERY_KEYS),
    )


@dataclass(frozen=True, slots=True)
class EvidenceRecord:
    """What was observed of one device. Every part is optional; see docs/evidence-format.md."""

    id: str | None = None
    ip: str | None = None
    mac: str | None = None
    http: tuple[HttpObservation, ...] = ()
    rtsp: tuple[RtspObservation, ...] = ()
    wsd: tuple[WsdObservation, ...] = ()
    onvif: OnvifInfo | None = None
    ssdp: tuple[SsdpObservation, ...] = ()
    mdns: tuple[MdnsObservation, ...] = ()
    tls: tuple[TlsObservation, ...] = ()
    banners: tuple[Banner, ...] = ()
    dhcp: DhcpInfo | None = None
    discovery: tuple[DiscoveryReply, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def has_observation(self) -> bool:
        return bool(self.ip or self.mac or self.http or self.rtsp or self.wsd or self.onvif or self.ssdp
                    or self.mdns or self.tls or self.banners or self.dhcp or self.discovery)

    def iter_fields(self) -> Iterator[tuple[str, str]]:
        """Every observed value with its dotted field name, as fingerprint rules key them.

        Names: ``mac``, ``http.headers.<name lower>``, ``http.realm``, ``http.title``, ``http.body``,
        ``http.favicon_md5``, ``http.path``, ``rtsp.headers.<name>``, ``rtsp.realm``, ``rtsp.body``,
        ``wsd.types``, ``wsd.scopes``, ``wsd.xaddrs``, ``wsd.endpoint``, ``onvif.<field>``,
        ``ssdp.headers.<name>``, ``ssdp.description.<key>``, ``mdns.type|name|hostname``,
        ``mdns.txt.<key lower>``, ``tls.subject``, ``tls.issuer``, ``banners.<protocol>`` (text),
        ``banners.<protocol>.hex``, ``dhcp.vendor_class``, ``dhcp.hostname``,
        ``discovery.<protocol>.<field lower>``.
        """
        if self.mac:
            yield "mac", self.mac
        for h in self.http:
            for k, v in h.headers.lower_items():
                yield "http.headers." + k, v
            realm = h.realm
            if realm is not None:
                yield "http.realm", realm
            if h.title:
                yield "http.title", h.title
            if h.body:
                yield "http.body", h.body
            if h.favicon_md5:
                yield "http.favicon_md5", h.favicon_md5
            if h.path and h.path != "/" and (h.status is None or 200 <= h.status < 400 or h.status == 401):
                yield "http.path", h.path
        for r in self.rtsp:
            for k, v in r.headers.lower_items():
                yield "rtsp.headers." + k, v
            realm = r.realm
            if realm is not None:
                yield "rtsp.realm", realm
            if r.body:
                yield "rtsp.body", r.body
        for w in self.wsd:
            for s in w.types:
                yield "wsd.types", s
            for s in w.scopes:
                yield "wsd.scopes", s
            for s in w.xaddrs:
                yield "wsd.xaddrs", s
            if w.endpoint:
                yield "wsd.endpoint", w.endpoint
        o = self.onvif
        if o is not None:
            for name in ("manufacturer", "model", "firmware", "serial", "hardware_id"):
                v = getattr(o, name)
                if v:
                    yield "onvif." + name, v
        for s in self.ssdp:
            for k, v in s.headers.lower_items():
                yield "ssdp.headers." + k, v
            for k, v in s.description.items():
                if v:
                    yield "ssdp.description." + k, v
        for m in self.mdns:
            if m.type:
                yield "mdns.type", m.type
            if m.name:
                yield "mdns.name", m.name
            if m.hostname:
                yield "mdns.hostname", m.hostname
            for k, v in m.txt.items():
                yield "mdns.txt." + k.lower(), v
        for t in self.tls:
            if t.subject:
                yield "tls.subject", t.subject
            if t.issuer:
                yield "tls.issuer", t.issuer
        for b in self.banners:
            if b.text:
                yield "banners." + b.protocol, b.text
            if b.hex:
                yield "banners." + b.protocol + ".hex", b.hex
        if self.dhcp is not None:
            if self.dhcp.vendor_class:
                yield "dhcp.vendor_class", self.dhcp.vendor_class
            if self.dhcp.hostname:
                yield "dhcp.hostname", self.dhcp.hostname
        for d in self.discovery:
            for k, v in d.fields.items():
                if v:
                    yield f"discovery.{d.protocol}.{k.lower()}", v

    def merge(self, other: EvidenceRecord) -> EvidenceRecord:
        """Both records' observations, as one device (the engine gathers probes this way)."""
        return EvidenceRecord(
            id=self.id or other.id,
            ip=self.ip or other.ip,
            mac=self.mac or other.mac,
            http=self.http + other.http,
            rtsp=self.rtsp + other.rtsp,
            wsd=self.wsd + other.wsd,
            onvif=self.onvif or other.onvif,
            ssdp=self.ssdp + other.ssdp,
            mdns=self.mdns + other.mdns,
            tls=self.tls + other.tls,
            banners=self.banners + other.banners,
            dhcp=self.dhcp or other.dhcp,
            discovery=self.discovery + other.discovery,
            extra={**other.extra, **self.extra},
        )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = dict(self.extra)
        for key in ("id", "ip", "mac"):
            v = getattr(self, key)
            if v is not None:
                d[key] = v
        for key in ("http", "rtsp", "wsd", "ssdp", "mdns", "tls", "banners", "discovery"):
            items = getattr(self, key)
            if items:
                d[key] = [x.to_dict() for x in items]
        if self.onvif is not None:
            d["onvif"] = self.onvif.to_dict()
        if self.dhcp is not None:
            d["dhcp"] = self.dhcp.to_dict()
        return d


_LIST_PARSERS: tuple[tuple[str, Any], ...] = (
    ("http", _parse_http), ("rtsp", _parse_rtsp), ("wsd", _parse_wsd), ("ssdp", _parse_ssdp),
    ("mdns", _parse_mdns), ("tls", _parse_tls), ("banners", _parse_banner), ("discovery", _parse_discovery))


def parse_record(obj: Any) -> EvidenceRecord:
    """Build a record from a decoded JSON object. Raises EvidenceError, never anything else."""
    if type(obj) is not dict and not isinstance(obj, Mapping):  # a dict, nearly always: no ABC check
        raise EvidenceError(f"a record must be a JSON object, not {type(obj).__name__}")
    try:
        mac_raw = obj.get("mac")
        mac = normalize_mac(mac_raw) if mac_raw not in (None, "") else None
        if mac_raw not in (None, "") and mac is None:
            raise EvidenceError(f'"mac" is not a MAC address: {str(mac_raw)[:40]!r}')
        rid = obj.get("id")
        # http, rtsp, wsd, ssdp, mdns, tls, banners, discovery: only the protocols the record has
        http, rtsp, wsd, ssdp, mdns, tls, banners, discovery = [
            () if (value := obj.get(key)) is None else tuple([parse(o, i) for i, o in enumerate(_entries(value, key))])
            for key, parse in _LIST_PARSERS]
        rid = None if rid is None else _text(rid, 256)
        ip = _opt_text(obj.get("ip"), 64)
        onvif = _parse_onvif(obj.get("onvif"))
        dhcp = _parse_dhcp(obj.get("dhcp"))
        extra = {} if KNOWN_KEYS.issuperset(obj) else {k: v for k, v in obj.items() if k not in KNOWN_KEYS}
        # positional, in the dataclass's field order (the keyword form costs a measurable share per record)
        rec = EvidenceRecord(rid, ip, mac, http, rtsp, wsd, onvif, ssdp, mdns, tls, banners, dhcp, discovery, extra)
    except EvidenceError:
        raise
    except Exception as exc:  # a shape nobody foresaw: still a clear message, never a traceback
        raise EvidenceError(f"unreadable record ({type(exc).__name__}: {exc})") from exc
    if not rec.has_observation():
        raise EvidenceError("the record carries no observation (no ip, mac or protocol evidence)")
    return rec


def parse_line(line: str) -> EvidenceRecord:
    if len(line) > MAX_LINE:
        raise EvidenceError(f"line is longer than {MAX_LINE} bytes")
    try:
        obj = json.loads(line)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise EvidenceError(f"not valid JSON ({exc})") from None
    except ValueError as exc:  # a number of more than 4,300 digits (Python's integer conversion limit)
        raise EvidenceError(f"unreadable value: {str(exc).split(';')[0]}") from None
    if not line.isascii() and SURROGATE.search(line):  # one read from a file decoded with surrogateescape
        raise EvidenceError("text holds a lone surrogate: a UTF-16 half, not a character")
    if "\\u" in line and _SUSPECT_ESCAPE.search(line):
        found = _lone_surrogate(obj)
        if found:
            raise EvidenceError(f"text holds a lone surrogate ({found}): a UTF-16 half, not a character")
    return parse_record(obj)


_SUSPECT_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def read_records(lines: Iterable[str]) -> Iterator[tuple[int, EvidenceRecord | EvidenceError]]:
    """(line number, record or the error for that line) for each non-blank line."""
    for n, line in enumerate(lines, 1):
        if not line or line.isspace():  # blank (the same test as ``not line.strip()``, without a copy)
            continue
        try:
            yield n, parse_line(line)
        except EvidenceError as exc:
            yield n, exc


def dump_record(rec: EvidenceRecord) -> str:
    """One JSONL line (no newline)."""
    return json.dumps(rec.to_dict(), ensure_ascii=False, separators=(",", ":"))


# --------------------------------------------------------------------------------------------
# identification results


@dataclass(frozen=True, slots=True)
class EvidenceHit:
    """One rule that fired: which rule, on which field, on what value."""

    rule: str
    field: str
    value: str
    strength: str = "medium"  # proof | strong | medium | weak | hint
    note: str = ""

    def to_dict(self) -> dict[str, str]:
        d = {"rule": self.rule, "field": self.field, "value": self.value[:512], "strength": self.strength}
        if self.note:
            d["note"] = self.note
        return d


@dataclass(frozen=True, slots=True)
class Identification:
    """The identifier's answer for one record (docs/evidence-format.md, "Identification results")."""

    id: str | None = None
    manufacturer: str | None = None
    brand: str | None = None
    model: str | None = None
    firmware: str | None = None
    device_type: str | None = None
    restricted: bool | None = None
    lists: tuple[str, ...] = ()
    confidence: float = 0.0
    evidence: tuple[EvidenceHit, ...] = ()
    serial: str | None = None
    component_risk: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    # "needs review": {"maker": suspected maker, "reason": why}, when the evidence points at a maker the
    # policy restricts without establishing it (docs/evidence-format.md)
    review: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "manufacturer": self.manufacturer,
            "brand": self.brand,
            "model": self.model,
            "firmware": self.firmware,
            "device_type": self.device_type,
            "restricted": self.restricted,
            "lists": list(self.lists),
            "confidence": round(self.confidence, 3),
            "evidence": [e.to_dict() for e in self.evidence],
            "serial": self.serial,
            "component_risk": list(self.component_risk),
            "notes": list(self.notes),
            "review": dict(self.review) if self.review else None,
        }
