"""The non-restricted makers' own device-info endpoints, asked only of devices whose web server points
at that maker (issue 11 item 2).

A device whose root page, Server header, realm, title, redirect or cookies point at Axis gets the VAPIX
questions, one pointing at Hanwha the SUNAPI one, and so on (:func:`plausible_makers`); a device that
points at nobody gets none, so a scan of ordinary hosts costs nothing more.

| maker   | endpoint (request)                                                        | without credentials |
|---------|---------------------------------------------------------------------------|---------------------|
| Axis    | POST /axis-cgi/basicdeviceinfo.cgi {"method":"getAllUnrestrictedProperties"} | yes (VAPIX: unrestricted) |
| Axis    | GET /axis-cgi/param.cgi?action=list&group=root.Brand,root.Properties        | credentials only    |
| Hanwha  | GET /stw-cgi/system.cgi?msubmenu=deviceinfo&action=view                     | tried; digest when 401 |
| Bosch   | GET /rcp.xml?command=0x0cd4&type=P_STRING&direction=READ (RCP+ CONF_SOFTWARE_VERSION_FORMATTED) | tried; digest when 401 |
| Vivotek | GET /cgi-bin/viewer/getparam.cgi?system_info_modelname&...                  | tried; basic/digest when 401 |
| Uniview | GET /LAPI/V1.0/System/DeviceInfo                                            | credentials only    |
| i-PRO   | GET /cgi-bin/getinfo?FILE=1                                                 | tried; digest when 401 |
| Mobotix | GET /control/camerainfo (the HTML System table)                             | tried; basic/digest when 401 |
| Milesight | GET /cgi-bin/admin/admin.cgi?action=get.system.information&format=json     | credentials only    |
| Reolink | POST /api.cgi?cmd=GetDevInfo (anonymous: the "please login first" envelope; with credentials: Login token, GetDevInfo, Logout) | envelope only |
| TP-Link (Tapo) | POST / {"method":"login","params":{"encrypt_type":"3","username":"admin","cnonce":...}}: the first step of the camera's login handshake (no password is sent; the reply's nonce is never used) | the handshake's error envelope only |

Pure parsers (capped, never raising; JSON bounded by :func:`scanner.probes.http.parse_json`, XML through
scanner/probes/safexml.py) turn each answer into ``{"protocol": <api>, "fields": {...}}`` with the
maker's own key names lower-cased plus the common names ``model``, ``firmware``, ``serial``, ``mac``,
``manufacturer`` where the answer carries them; fingerprints/fields.py derives ``http.api`` from them (``VENDOR_APIS`` there).
Credentials are the user's (never guessed), answered to a Digest or Basic challenge as the device asks
(:class:`ChallengeAuth`: Basic is never sent unasked); nothing read with them is kept but parsed facts.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from scanner.probes.base import MAX_BYTES, decode_text, parse_key_values
from scanner.probes.safexml import find_local, local, parse_xml, text_of

MAX_FIELDS = 48
MAX_VALUE = 256


# ------------------------------------------------------------------------------------------------
# which makers the web server points at


_HINTS: dict[str, re.Pattern[str]] = {
    "axis": re.compile(r"(?-i:\bAXIS(?:_|\b))|/axis-cgi/|/camera/index\.html|/view/viewer_index\.shtml|\baxis\.com\b",
                       re.I),  # the brand in capitals: "x axis" on a chart page is not Axis
    "hanwha": re.compile(r"iPolis|Wisenet|Hanwha|/wmf/|/stw-cgi/|samsungtechwin|Samsung Techwin", re.I),
    "bosch": re.compile(r"VCS-VideoJet|VCS-VIDOS|rcpplus|/rcp\.xml|Bosch Security|\bBosch\b", re.I),
    "vivotek": re.compile(r"vivotek|\bVVTK\b", re.I),
    "uniview": re.compile(r"uniview|\bUNV\b|/LAPI/", re.I),
    "ipro": re.compile(r"i-PRO|Panasonic|\bWV-[A-Z]{1,2}\d|/cgi-bin/getinfo|\bAW-[A-Z]{2}\d", re.I),
    "mobotix": re.compile(r"MOBOTIX|/control/userimage", re.I),
    "reolink": re.compile(r"reolink|\bBaichuan\b", re.I),
    "milesight": re.compile(r"milesight", re.I),
    "tplink": re.compile(r"TP-?LINK|\bTapo\b|\bTPRI\b|\bVIGI\b", re.I),
}


def _texts(entries: Iterable[Mapping[str, Any]]) -> list[str]:
    out: list[str] = []
    for e in entries:
        if not isinstance(e, Mapping):
            continue
        hdrs = e.get("headers") or {}
        if isinstance(hdrs, Mapping):
            for k, v in hdrs.items():
                if str(k).lower() in ("server", "www-authenticate", "location", "set-cookie", "x-powered-by"):
                    out.append(str(v)[:1024])
        for key in ("title", "realm"):
            if e.get(key):
                out.append(str(e[key])[:512])
        body = e.get("body")
        if isinstance(body, str) and body:
            out.append(body[:4096])
    return out


def plausible_makers(entries: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """The makers whose device-info endpoints are worth asking, from what the web server already said
    (Server, WWW-Authenticate realm, Location, Set-Cookie, title, the first 4 KiB of the body). Pure.

    A Tapo camera's HTTPS port says nothing at all: its root page on 443 is empty, with no Server header
    (uhttpd; JurajNyiri/HomeAssistant-Tapo-Control issue 261: "no page to open"). Such a blank HTTPS
    root is the one silence that earns a question (TP-Link's login handshake, one POST)."""
    try:
        entries = [e for e in entries if isinstance(e, Mapping)]
        texts = _texts(entries)
        found = {m for m, rx in _HINTS.items() if any(rx.search(t) for t in texts)}
        if any(_blank_https_root(e) for e in entries):
            found.add("tplink")
        return frozenset(found)
    except Exception:
        return frozenset()


def _blank_https_root(e: Mapping[str, Any]) -> bool:
    hdrs = e.get("headers") or {}
    names = {str(k).lower() for k in hdrs} if isinstance(hdrs, Mapping) else set()
    return (e.get("tls") is True and e.get("port") == 443 and e.get("path") == "/" and e.get("status") in (200, 404)
            and not e.get("body") and not e.get("title") and not names & {"server", "www-authenticate", "location"})


# ------------------------------------------------------------------------------------------------
# pure parsers


def _clean(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if not isinstance(v, str):
        return ""
    return " ".join(v.split())[:MAX_VALUE]


def _put(fields: dict[str, str], key: str, value: Any) -> None:
    v = _clean(value)
    k = str(key).strip().lower()[:64]
    if v and k and k not in fields and len(fields) < MAX_FIELDS:
        fields[k] = v


def _text(body: bytes | str) -> str:
    if isinstance(body, (bytes, bytearray)):
        return decode_text(bytes(body[:MAX_BYTES]))
    return str(body)[:MAX_BYTES]


def _json(body: bytes | str) -> Any:
    from scanner.probes.http import parse_json  # bounded size and depth

    return parse_json(body[:MAX_BYTES] if isinstance(body, (bytes, bytearray, str)) else b"")


def _never_raises(parse: Callable[[Any], dict | None]) -> Callable[[Any], dict | None]:
    """A parser of a device's answer: whatever came in, an entry or None, never an exception."""
    @functools.wraps(parse)
    def parse_or_none(answer: Any) -> dict | None:
        try:
            return parse(answer)
        except Exception:
            return None
    return parse_or_none


def _own(obj: Mapping[Any, Any]) -> dict[str, Any]:
    """A JSON object's first MAX_FIELDS members with text names: the maker's own fields."""
    return {k: v for k, v in list(obj.items())[:MAX_FIELDS] if isinstance(k, str)}


_COMMON = {"model", "firmware", "serial", "mac", "manufacturer"}


def _entry(protocol: str, own: Mapping[str, Any], common: Mapping[str, Any]) -> dict | None:
    fields: dict[str, str] = {}
    for k, v in common.items():
        _put(fields, k, v)
    said = set(fields.values())
    for k, v in own.items():  # the maker's own names, unless they repeat a common one (counted once)
        if str(k).lower() not in _COMMON and _clean(v) not in said:
            _put(fields, k, v)
    return {"protocol": protocol, "fields": fields} if fields else None


@_never_raises
def parse_vapix_basicdeviceinfo(body: bytes | str) -> dict | None:
    """Axis ``basicdeviceinfo.cgi`` JSON (getAllUnrestrictedProperties or getAllProperties) ->
    ``{"protocol": "vapix", ...}``; None unless ``data.propertyList`` carries ProdNbr or Brand."""
    obj = _json(body)
    if not isinstance(obj, dict):
        return None
    data = obj.get("data")
    props = data.get("propertyList") if isinstance(data, dict) else None
    if not isinstance(props, dict) or not (props.get("ProdNbr") or props.get("Brand")):
        return None
    own = _own(props)
    return _entry("vapix", own, {"model": props.get("ProdNbr"), "firmware": props.get("Version"),
                                  "serial": props.get("SerialNumber"), "manufacturer": props.get("Brand")})


_KV_LINE = re.compile(r"^\s*([A-Za-z][\w.\[\] -]{0,80}?)\s*=\s*(.*?)\s*$")


def _kv(body: bytes | str, max_items: int = 128) -> dict[str, str]:
    text = _text(body)
    if "<html" in text[:512].lower() or "<?xml" in text[:64]:
        return {}
    return parse_key_values(text.splitlines()[:1024], _KV_LINE, max_items)


@_never_raises
def parse_vapix_param(body: bytes | str) -> dict | None:
    """Axis ``param.cgi?action=list`` lines (``root.Brand.ProdNbr=M3045-V``) -> ``{"protocol": "vapix_param"}``;
    None without a root.Brand or root.Properties line."""
    kv = {k: v for k, v in _kv(body, 512).items() if k.startswith(("root.Brand.", "root.Properties."))}
    if not kv:
        return None
    own = {k.split(".", 2)[-1].replace(".", "_"): v for k, v in kv.items()}
    return _entry("vapix_param", own, {
        "model": kv.get("root.Brand.ProdNbr"), "firmware": kv.get("root.Properties.Firmware.Version"),
        "serial": kv.get("root.Properties.System.SerialNumber"), "manufacturer": kv.get("root.Brand.Brand")})


@_never_raises
def parse_sunapi_deviceinfo(body: bytes | str) -> dict | None:
    """Hanwha SUNAPI ``system.cgi?msubmenu=deviceinfo`` (``Model=...`` lines, or the JSON the web client
    asks for) -> ``{"protocol": "sunapi", ...}``; None unless Model and FirmwareVersion or DeviceType."""
    obj = _json(body) if _text(body).lstrip()[:1] == "{" else None
    kv = {str(k): v for k, v in obj.items()} if isinstance(obj, dict) else _kv(body)
    if not kv.get("Model") or not (kv.get("FirmwareVersion") or kv.get("DeviceType")):
        return None
    return _entry("sunapi", kv, {"model": kv.get("Model"), "firmware": kv.get("FirmwareVersion"),
                                 "serial": kv.get("SerialNumber"), "mac": kv.get("ConnectedMACAddress")})


@_never_raises
def parse_rcp(body: bytes | str) -> dict | None:
    """Bosch RCP+ over CGI reply (``<rcp><command><hex>0x0cd4</hex>...<result><str>7.80.0128</str>``) ->
    ``{"protocol": "rcp", "fields": {"command", "result", "firmware"?}}``; None for anything else or an
    ``<err>`` result (the command is unknown to the firmware or not allowed)."""
    root = parse_xml(body)
    if root is None or local(root.tag) != "rcp":
        return None
    cmd = text_of(find_local(root, "hex"), 16).lower()
    result = find_local(root, "result")
    if not re.fullmatch(r"0x[0-9a-f]{4}", cmd) or result is None or find_local(result, "err") is not None:
        return None
    value = text_of(find_local(result, "str"), MAX_VALUE) or text_of(result, MAX_VALUE)
    if not value:
        return None
    common: dict[str, Any] = {}
    if cmd in ("0x0cd4", "0x002f"):
        common["firmware"] = value
    return _entry("rcp", {"command": cmd, "result": value, "rcp_type": text_of(find_local(root, "type"), 32)},
                  common)


_VIVOTEK_LINE = re.compile(r"^\s*([a-z][a-z0-9_]{2,80})\s*=\s*'([^'\r\n]{0,512})'\s*$")


@_never_raises
def parse_vivotek_getparam(body: bytes | str) -> dict | None:
    """Vivotek ``getparam.cgi`` lines (``system_info_modelname='FD9389-HV'``) -> ``{"protocol": "vivotek"}``;
    None unless a ``system_`` parameter answered in that quoted form."""
    own: dict[str, str] = {}
    for line in _text(body).splitlines()[:512]:
        m = _VIVOTEK_LINE.match(line)
        if m and m.group(1) not in own:
            own[m.group(1)] = m.group(2)
    if not any(k.startswith("system_") for k in own):
        return None
    model = own.get("system_info_modelname") or own.get("system_info_extendedmodelname")
    return _entry("vivotek", own, {"model": model, "firmware": own.get("system_info_firmwareversion"),
                                   "serial": own.get("system_info_serialnumber")})


@_never_raises
def parse_lapi_deviceinfo(body: bytes | str) -> dict | None:
    """Uniview LAPI ``/LAPI/V1.0/System/DeviceInfo`` JSON envelope (``Response.Data.DeviceModel``...) ->
    ``{"protocol": "lapi", ...}``; None unless the envelope carries a DeviceModel or SerialNumber."""
    obj = _json(body)
    resp = obj.get("Response") if isinstance(obj, dict) else None
    data = resp.get("Data") if isinstance(resp, dict) else None
    if not isinstance(data, dict) or not (data.get("DeviceModel") or data.get("SerialNumber")):
        return None
    own = _own(data)
    return _entry("lapi", own, {"model": data.get("DeviceModel"),
                                "firmware": data.get("FirmwareVersion") or data.get("SoftwareVersion"),
                                "serial": data.get("SerialNumber"), "mac": data.get("MAC"),
                                "manufacturer": data.get("Manufacturer")})


@_never_raises
def parse_ipro_getinfo(body: bytes | str) -> dict | None:
    """i-PRO / Panasonic ``/cgi-bin/getinfo?FILE=1`` lines (``MAC=``, ``SERIAL=``, ``VERSION=``, ``NAME=``) ->
    ``{"protocol": "ipro", ...}``; None unless NAME or SERIAL and MAC or VERSION are there."""
    kv = _kv(body)
    if not (kv.get("NAME") or kv.get("SERIAL")) or not (kv.get("MAC") or kv.get("VERSION")):
        return None
    return _entry("ipro", kv, {"model": kv.get("NAME"), "firmware": kv.get("VERSION"),
                               "serial": kv.get("SERIAL"), "mac": kv.get("MAC")})


_MX_ROW = re.compile(r"<tr[^>]{0,200}>\s*<t[dh][^>]{0,200}>([^<]{1,200})</t[dh]>\s*<td[^>]{0,200}>(.{0,400}?)</td>",
                     re.I | re.S)
_TAG = re.compile(r"<[^>]{0,400}>")
# the System table's row labels (English, German) -> common names (lausser/check_nwc_health Classes::Mobotix)
_MX_LABELS = {"Model": "model", "Modell": "model", "Software": "firmware", "Software Version": "firmware",
              "Factory IP Address": "factory_ip", "Seriennummer": "factory_ip", "Hardware": "hardware",
              "Image Sensor": "sensor", "Bildsensor": "sensor"}


@_never_raises
def parse_mobotix_camerainfo(body: bytes | str) -> dict | None:
    """MOBOTIX ``/control/camerainfo`` (an HTML page whose System table has Model, Factory IP Address,
    Hardware, Image Sensor, Software rows) -> ``{"protocol": "mobotix", ...}``; None unless Model, Software
    and a Factory IP Address (the MOBOTIX serial) or Image Sensor row are there."""
    rows: dict[str, str] = {}
    for m in _MX_ROW.finditer(_text(body)):
        label = " ".join(_TAG.sub("", m.group(1)).split())
        value = " ".join(_TAG.sub("", m.group(2)).replace("&nbsp;", " ").split())
        if label in _MX_LABELS and _MX_LABELS[label] not in rows and value:
            rows[_MX_LABELS[label]] = value
        if len(rows) >= len(set(_MX_LABELS.values())):
            break
    if not rows.get("model") or not rows.get("firmware") or not (rows.get("factory_ip") or rows.get("sensor")):
        return None
    model = re.sub(r"^MOBOTIX\s+", "", rows["model"], flags=re.I)
    return _entry("mobotix", {k: v for k, v in rows.items() if k not in ("model", "firmware")},
                  {"model": model, "firmware": rows["firmware"], "manufacturer": "MOBOTIX"
                   if rows["model"].upper().startswith("MOBOTIX") else None})


@_never_raises
def parse_milesight_sysinfo(body: bytes | str) -> dict | None:
    """Milesight ``admin.cgi?action=get.system.information&format=json`` (model, snCode, firmwareVersion,
    deviceName) -> ``{"protocol": "milesight", ...}``; None unless model and snCode or firmwareVersion."""
    obj = _json(body)
    if not isinstance(obj, dict) or not isinstance(obj.get("model"), str) or not (
            obj.get("snCode") or obj.get("firmwareVersion")):
        return None
    own = _own(obj)
    return _entry("milesight", own, {"model": obj.get("model"), "firmware": obj.get("firmwareVersion"),
                                     "serial": obj.get("snCode"), "mac": obj.get("macAddress")})


@_never_raises
def parse_reolink(body: bytes | str) -> dict | None:
    """Reolink ``api.cgi`` JSON array: a GetDevInfo value (model, firmVer, serial, type...) or the error
    envelope an anonymous request gets (``rspCode -6``, "please login first") -> ``{"protocol": "reolink"}``."""
    obj = _json(body)
    if not isinstance(obj, list) or not obj or not isinstance(obj[0], dict):
        return None
    item = obj[0]
    if not isinstance(item.get("cmd"), str) or "code" not in item:
        return None
    value = item.get("value")
    info = value.get("DevInfo") if isinstance(value, dict) else None
    if isinstance(info, dict) and (info.get("model") or info.get("firmVer")):
        own = _own(info)
        return _entry("reolink", own, {"model": info.get("model"), "firmware": info.get("firmVer"),
                                       "serial": info.get("serial")})
    err = item.get("error")
    if isinstance(err, dict) and isinstance(err.get("rspCode"), int) and isinstance(err.get("detail"), str):
        return _entry("reolink", {"cmd": item["cmd"], "rspcode": err["rspCode"], "detail": err["detail"]}, {})
    return None


_TAPO_NONCE = re.compile(r"[0-9A-Za-z+/=]{4,128}")


@_never_raises
def parse_tapo_login(body: bytes | str) -> dict | None:
    """TP-Link's camera login handshake reply (Tapo, and VIGI firmware of the same line): a JSON object with
    a negative ``error_code`` (-40413 "secure login", -40401...) and ``result.data`` carrying ``encrypt_type``
    (a list of strings) and the device's ``nonce`` (often ``code``, ``key``, ``device_confirm``) ->
    ``{"protocol": "tapo", "fields": {"error_code", "code", "encrypt_type"}}``; None for anything else.
    The nonce, key and device_confirm are not kept (they belong to a login camsweep never makes)."""
    obj = _json(body)
    if not isinstance(obj, dict):
        return None
    code = obj.get("error_code")
    result = obj.get("result")
    data = result.get("data") if isinstance(result, dict) else obj.get("data")
    if isinstance(code, bool) or not isinstance(code, int) or not -49999 <= code <= -40000 or \
            not isinstance(data, dict):
        return None
    enc = data.get("encrypt_type")
    nonce = data.get("nonce")
    if not isinstance(enc, list) or not enc or not all(isinstance(x, str) and x.isdigit() and len(x) <= 2
                                                       for x in enc[:8]):
        return None
    if not isinstance(nonce, str) or not _TAPO_NONCE.fullmatch(nonce):
        return None
    own: dict[str, Any] = {"error_code": code, "encrypt_type": ",".join(enc[:8])}
    inner = data.get("code")
    if isinstance(inner, int) and not isinstance(inner, bool):
        own["code"] = inner
    return _entry("tapo", own, {})


# ------------------------------------------------------------------------------------------------
# the endpoints


@dataclass(frozen=True)
class Endpoint:
    maker: str
    path: str
    parse: Callable[[bytes], dict | None]
    method: str = "GET"
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()
    anonymous: bool = True  # asked without credentials (the device may still answer 401)
    with_credentials: bool = True  # asked again with the user's credentials when the anonymous answer said nothing
    record: bool = True  # the raw answer is kept as an http entry (not for a POST to "/": it is not the root page)
    tls_only: bool = False  # asked only on an HTTPS port


_JSON_HDR = (("Content-Type", "application/json"),)
VAPIX_UNRESTRICTED = json.dumps({"apiVersion": "1.0", "context": "camsweep",
                                 "method": "getAllUnrestrictedProperties"}).encode()

TAPO_HANDSHAKE = json.dumps({"method": "login", "params": {"cnonce": os.urandom(8).hex().upper(),
                                                            "encrypt_type": "3", "username": "admin"}}).encode()

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("axis", "/axis-cgi/basicdeviceinfo.cgi", parse_vapix_basicdeviceinfo, "POST", VAPIX_UNRESTRICTED,
             _JSON_HDR, with_credentials=False),
    Endpoint("axis", "/axis-cgi/param.cgi?action=list&group=root.Brand,root.Properties", parse_vapix_param,
             anonymous=False),
    Endpoint("hanwha", "/stw-cgi/system.cgi?msubmenu=deviceinfo&action=view", parse_sunapi_deviceinfo),
    Endpoint("bosch", "/rcp.xml?command=0x0cd4&type=P_STRING&direction=READ", parse_rcp),
    Endpoint("vivotek", "/cgi-bin/viewer/getparam.cgi?system_info_modelname&system_info_extendedmodelname"
                        "&system_info_serialnumber&system_info_firmwareversion", parse_vivotek_getparam),
    Endpoint("uniview", "/LAPI/V1.0/System/DeviceInfo", parse_lapi_deviceinfo, anonymous=False),
    Endpoint("ipro", "/cgi-bin/getinfo?FILE=1", parse_ipro_getinfo),
    Endpoint("mobotix", "/control/camerainfo", parse_mobotix_camerainfo),
    Endpoint("milesight", "/cgi-bin/admin/admin.cgi?action=get.system.information&format=json",
             parse_milesight_sysinfo, anonymous=False),
    Endpoint("reolink", "/api.cgi?cmd=GetDevInfo", parse_reolink, "POST",
             json.dumps([{"cmd": "GetDevInfo", "action": 0, "param": {}}]).encode(), _JSON_HDR,
             with_credentials=False),  # with credentials: the token flow below
    # the first step of the login handshake as pytapo (_isSecureConnection) and python-kasa send it: a fixed
    # protocol user name, a client nonce, no password; the reply says it is TP-Link's (parse_tapo_login)
    Endpoint("tplink", "/", parse_tapo_login, "POST", TAPO_HANDSHAKE, _JSON_HDR, with_credentials=False,
             record=False, tls_only=True),
)


def endpoints_for(makers: Iterable[str], *, anonymous: bool, tls: bool = True) -> list[Endpoint]:
    ms = set(makers)
    return [e for e in ENDPOINTS if e.maker in ms and (e.anonymous if anonymous else e.with_credentials)
            and (tls or not e.tls_only)]


# ------------------------------------------------------------------------------------------------
# I/O

Fetch = Callable[..., Awaitable["tuple[int, list[tuple[str, str]], bytes] | None"]]


class ChallengeAuth(httpx.Auth):
    """Answers the device's own challenge: Digest (httpx.DigestAuth) or, only when the device asked for it,
    Basic. Nothing is sent with the first request to a host; once the host has challenged, later requests
    carry the answer at once (digest: the last challenge's nonce with the next nonce count)."""

    def __init__(self, username: str, password: str) -> None:
        self._digest = httpx.DigestAuth(username, password)
        self._basic = httpx.BasicAuth(username, password)
        self._scheme = ""

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._scheme == "digest":
            yield from self._digest.auth_flow(request)
            return
        if self._scheme == "basic":
            yield from self._basic.auth_flow(request)
            return
        response = yield request
        if response.status_code != 401:
            return
        challenges = [c.lower() for c in response.headers.get_list("www-authenticate")]
        if any(c.startswith("digest") for c in challenges):
            self._scheme = "digest"
            flow = self._digest.auth_flow(request)
            next(flow)
            try:
                yield flow.send(response)
            except StopIteration:
                return
        elif any(c.startswith("basic") for c in challenges):
            self._scheme = "basic"
            yield next(self._basic.auth_flow(request))


async def ask_anonymous(get: Fetch, makers: Iterable[str], discovery: list[dict], *, tls: bool = True
                        ) -> list[Endpoint]:
    """Ask the anonymous endpoints of ``makers`` in parallel through ``get(path, method=, content=,
    headers=, record=)`` (which records the http entries unless ``record`` is false); parsed answers go
    to ``discovery``. ``tls``: whether the port speaks HTTPS (some endpoints live only there). Returns the
    endpoints that did not answer with a readable device-info document (401s among them)."""
    eps = endpoints_for(makers, anonymous=True, tls=tls)
    if not eps:
        return []

    async def one(ep: Endpoint) -> bool:
        kw: dict[str, Any] = {"method": ep.method}
        if not ep.record:
            kw["record"] = False
        if ep.body is not None:
            kw["content"] = ep.body
        if ep.headers:
            kw["headers"] = dict(ep.headers)
        res = await get(ep.path, **kw)
        if res is None or not 200 <= res[0] < 300:
            return False
        d = ep.parse(res[2])
        if d:
            discovery.append(d)
            return True
        return False

    done = await asyncio.gather(*(one(e) for e in eps))
    return [e for e, ok in zip(eps, done, strict=True) if not ok]


async def ask_with_credentials(fetch: Callable[..., Awaitable[Any]], url: Callable[[str], str], makers: Iterable[str],
                               user: str, password: str, discovery: list[dict], cap: int) -> None:
    """With the user's credentials: the endpoints of ``makers`` whose facts are not in ``discovery`` yet
    (answering whichever challenge the device sends), and Reolink's token flow. Parsed facts only."""
    have = {d.get("protocol") for d in discovery}
    ms = set(makers)
    auth = ChallengeAuth(user, password)

    async def one(ep: Endpoint) -> None:
        if _protocol_of(ep) in have or (ep.maker == "axis" and "vapix_param" in have):
            return  # the anonymous answer already said it
        kw: dict[str, Any] = {"auth": auth}
        if ep.body is not None:
            kw["content"] = ep.body
        if ep.headers:
            kw["headers"] = dict(ep.headers)
        res = await fetch(ep.method, url(ep.path), cap, **kw)
        if res is not None and res[0] == 200:
            d = ep.parse(res[2])
            if d:
                discovery.append(d)

    jobs = [one(e) for e in endpoints_for(ms, anonymous=False)]
    if "reolink" in ms and not any(d.get("protocol") == "reolink" and "model" in d.get("fields", {})
                                   for d in discovery):
        jobs.append(_reolink_token_flow(fetch, url, user, password, discovery, cap))
    await asyncio.gather(*jobs)


def answered_own_api(discovery: Iterable[Mapping[str, Any]]) -> bool:
    """Whether one of these makers' APIs answered in its own format (then the Hikvision/Dahua credential
    questions that a 401 on their paths would otherwise trigger are not worth asking)."""
    return any(isinstance(d, Mapping) and d.get("protocol") in _OWN_PROTOCOLS for d in discovery)


_PROTOCOL_OF = {"axis": "vapix", "hanwha": "sunapi", "bosch": "rcp", "vivotek": "vivotek", "uniview": "lapi",
                "ipro": "ipro", "mobotix": "mobotix", "reolink": "reolink", "milesight": "milesight",
                "tplink": "tapo"}


_OWN_PROTOCOLS = frozenset(_PROTOCOL_OF.values()) | {"vapix_param"}


def _protocol_of(ep: Endpoint) -> str:
    return _PROTOCOL_OF.get(ep.maker, ep.maker)


async def _reolink_token_flow(fetch: Callable[..., Awaitable[Any]], url: Callable[[str], str], user: str,
                              password: str, discovery: list[dict], cap: int) -> None:
    """Reolink: Login (token), GetDevInfo with the token, Logout (devices allow few sessions)."""
    login = json.dumps([{"cmd": "Login", "param": {"User": {"Version": "0", "userName": user,
                                                            "password": password}}}]).encode()
    res = await fetch("POST", url("/api.cgi?cmd=Login"), 8192, content=login, headers=dict(_JSON_HDR))
    if res is None or res[0] != 200:
        return
    obj = _json(res[2])
    try:
        token = obj[0]["value"]["Token"]["name"]
    except (TypeError, KeyError, IndexError):
        return
    if not isinstance(token, str) or not re.fullmatch(r"[0-9A-Za-z]{1,64}", token):
        return
    try:
        body = json.dumps([{"cmd": "GetDevInfo", "action": 0, "param": {}}]).encode()
        res = await fetch("POST", url(f"/api.cgi?cmd=GetDevInfo&token={token}"), cap, content=body,
                          headers=dict(_JSON_HDR))
        if res is not None and res[0] == 200:
            d = parse_reolink(res[2])
            if d and "model" in d["fields"]:
                discovery[:] = [x for x in discovery if x.get("protocol") != "reolink"]
                discovery.append(d)
    finally:
        await fetch("POST", url(f"/api.cgi?cmd=Logout&token={token}"), 4096,
                    content=json.dumps([{"cmd": "Logout", "param": {}}]).encode(), headers=dict(_JSON_HDR))


# ------------------------------------------------------------------------------------------------
# Dahua RPC2 after login: firmware whose CGI API is off (newer Dahua and OEM builds keep only the JSON-RPC
# the web client speaks). Only with the user's credentials, only for a device that answered the RPC2
# login challenge, and only when the CGI questions said nothing.

RPC2_METHODS = ("magicBox.getDeviceType", "magicBox.getSerialNo", "magicBox.getSoftwareVersion",
                "magicBox.getVendor")


def rpc2_password_hash(user: str, password: str, realm: str, random: str) -> str:
    """Dahua's "Default" RPC2 login hash: MD5(user:random:MD5(user:realm:password)), upper-case hex
    (rroller/dahua and the Dahua web client)."""
    import hashlib

    ha1 = hashlib.md5(f"{user}:{realm}:{password}".encode(), usedforsecurity=False).hexdigest().upper()
    return hashlib.md5(f"{user}:{random}:{ha1}".encode(), usedforsecurity=False).hexdigest().upper()


@_never_raises
def parse_rpc2_magicbox(replies: Mapping[str, Any]) -> dict | None:
    """The JSON replies to RPC2_METHODS (method -> decoded object) -> ``{"protocol": "rpc2_magicbox", ...}``:
    ``params.type`` (model), ``params.sn``, ``params.version.Version``/``BuildDate``, ``params.vendor``.
    None unless at least one call answered ``result: true`` with its params."""
    common: dict[str, Any] = {}
    own: dict[str, Any] = {}
    for method, obj in list(replies.items())[:8]:
        if not isinstance(obj, dict) or obj.get("result") is not True or not isinstance(obj.get("params"), dict):
            continue
        p = obj["params"]
        if method == "magicBox.getDeviceType" and isinstance(p.get("type"), str):
            common["model"] = p["type"]
        elif method == "magicBox.getSerialNo" and isinstance(p.get("sn"), str):
            common["serial"] = p["sn"]
        elif method == "magicBox.getSoftwareVersion" and isinstance(p.get("version"), dict):
            common["firmware"] = p["version"].get("Version")
            own["builddate"] = p["version"].get("BuildDate")
        elif method == "magicBox.getVendor" and isinstance(p.get("vendor"), str):
            own["vendor"] = p["vendor"]
    if not any(_clean(v) for v in (*common.values(), *own.values())):
        return None
    return _entry("rpc2_magicbox", own, common)


async def dahua_rpc2_info(fetch: Callable[..., Awaitable[Any]], url: Callable[[str], str], user: str,
                          password: str, discovery: list[dict], cap: int) -> None:
    """RPC2 login (challenge, then the "Default" hash), the magicBox calls, logout. Facts only."""
    hdr = {"Content-Type": "application/json", "X-Requested-With": "XMLHttpRequest"}

    async def post(path: str, obj: dict, limit: int = 16384) -> Any:
        res = await fetch("POST", url(path), min(cap, limit), content=json.dumps(obj).encode(), headers=hdr)
        return _json(res[2]) if res is not None and res[0] == 200 else None

    first = await post("/RPC2_Login", {"method": "global.login", "params": {
        "userName": user, "password": "", "clientType": "Web3.0", "loginType": "Direct"}, "id": 1})
    if not isinstance(first, dict) or not isinstance(first.get("params"), dict):
        return
    p, session = first["params"], first.get("session")
    if p.get("encryption") != "Default" or not isinstance(p.get("realm"), str) or not isinstance(
            p.get("random"), str) or not isinstance(session, (str, int)):
        return  # other schemes (Basic, OldDigest, WatchNet) are not answered
    second = await post("/RPC2_Login", {"method": "global.login", "params": {
        "userName": user, "password": rpc2_password_hash(user, password, p["realm"], p["random"]),
        "clientType": "Web3.0", "loginType": "Direct", "authorityType": "Default", "passwordType": "Default"},
        "id": 2, "session": session})
    if not isinstance(second, dict) or second.get("result") is not True:
        return
    session = second.get("session", session)
    try:
        replies = await asyncio.gather(*(post("/RPC2", {"method": m, "params": None, "id": 3 + i,
                                                        "session": session}) for i, m in enumerate(RPC2_METHODS)))
        d = parse_rpc2_magicbox(dict(zip(RPC2_METHODS, replies, strict=True)))
        if d:
            discovery.append(d)
    finally:
        await post("/RPC2", {"method": "global.logout", "params": None, "id": 99, "session": session}, 4096)
