"""HTTP and HTTPS: `/`, the favicon, and the vendors' public endpoints, read without logging in.

Pure parsers: :func:`parse_http_response` (raw response bytes, as recorded or captured),
:func:`build_http_entry` (an already split response), :func:`parse_title`, and the vendor bodies:
:func:`parse_isapi_device_info` (Hikvision ``/ISAPI/System/deviceInfo``), :func:`parse_magicbox`
(Dahua ``/cgi-bin/magicBox.cgi`` ``key=value`` lines), :func:`parse_rpc2_login` (Dahua ``/RPC2_Login``
login challenge), :func:`parse_hik_channels` and :func:`parse_dahua_remote_devices` (NVR channel lists).

I/O: :func:`probe` uses one httpx.AsyncClient (``ctx.http_transport`` in tests), certificate checks off,
no redirects followed, every body cut at ``ctx.max_bytes``, every port bounded by ``ctx.timeout``.
With credentials from ``ctx.credentials_for(host)`` (never guessed) it reads the device info and NVR
channel lists with HTTP digest authentication; the credentials are never put into the evidence.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from scanner.probes import vendorapi
from scanner.probes.base import MAX_BYTES, Deadline, ProbeContext, decode_text, parse_key_values
from scanner.probes.safexml import find_local, iter_local, leaf_fields, local, parse_xml, text_of

MAX_HEADERS = 64
MAX_HEADER_VALUE = 4096
MAX_BODY_TEXT = 16 * 1024  # body text kept in the evidence (identifier reads the first bytes)
MAX_JSON_DEPTH = 32
PORT_BUDGET = 2.0  # one port's unauthenticated request sequence, in multiples of ctx.timeout
TOTAL_BUDGET = 3.0  # the whole probe, credentials phase included (the engine allows 3 x timeout + connect)

ISAPI_DEVICE_INFO = "/ISAPI/System/deviceInfo"
HIK_LOGIN_PAGE = "/doc/page/login.asp"
MAGICBOX_SYSTEM = "/cgi-bin/magicBox.cgi?action=getSystemInfo"
MAGICBOX_VENDOR = "/cgi-bin/magicBox.cgi?action=getVendor"
MAGICBOX_SOFTWARE = "/cgi-bin/magicBox.cgi?action=getSoftwareVersion"
MAGICBOX_DEVICE_TYPE = "/cgi-bin/magicBox.cgi?action=getDeviceType"
RPC2_LOGIN = "/RPC2_Login"
HIK_CHANNELS = "/ISAPI/ContentMgmt/InputProxy/channels"
DAHUA_REMOTE_DEVICES = "/cgi-bin/configManager.cgi?action=getConfig&name=RemoteDevice"

# Dahua's web client starts a login by asking for the challenge with an empty password; the answer
# (error "login challenge", realm, random, mac) needs no credentials and logs nobody in.
RPC2_CHALLENGE = json.dumps({"method": "global.login", "params": {"userName": "admin", "password": "",
                             "clientType": "Web3.0", "loginType": "Direct"}, "id": 1}).encode()

# ------------------------------------------------------------------------------------------------
# pure parsers

_TITLE = re.compile(rb"<title[^>]*>(.*?)</title\s*>", re.I | re.S)
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]{1,40})", re.I)
_META_CHARSET = re.compile(rb"<meta[^>]{0,200}charset\s*=\s*[\"']?([A-Za-z0-9._:-]{1,40})", re.I)


def _charset(headers: Mapping[str, str] | None, body: bytes) -> str | None:
    ct = ""
    for k, v in (headers or {}).items():
        if k.lower() == "content-type":
            ct = v
    m = _CHARSET.search(ct)
    if m:
        return m.group(1)
    m2 = _META_CHARSET.search(body[:4096])
    return m2.group(1).decode("ascii", "replace") if m2 else None


def parse_title(body: bytes | str, charset: str | None = None) -> str:
    """The text of the first <title>, entities decoded and white space folded; "" when none."""
    try:
        raw = body.encode("utf-8", "replace") if isinstance(body, str) else bytes(body[:MAX_BYTES])
        m = _TITLE.search(raw[:MAX_BYTES])
        if not m:
            return ""
        text = decode_text(m.group(1)[:2048], charset)
        return " ".join(html.unescape(text).split())[:512]
    except Exception:
        return ""


def _fold_headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Header pairs -> one map (repeated names joined with ", "), capped in count and length."""
    out: dict[str, str] = {}
    lower: dict[str, str] = {}
    for name, value in pairs:
        name = str(name).strip()[:256]
        value = str(value).strip()[:MAX_HEADER_VALUE]
        if not name:
            continue
        key = lower.get(name.lower())
        if key is not None:
            out[key] = (out[key] + ", " + value)[:MAX_HEADER_VALUE]
            continue
        if len(out) >= MAX_HEADERS:
            continue
        lower[name.lower()] = name
        out[name] = value
    return out


def build_http_entry(status: int | None, headers: Iterable[tuple[str, str]] | Mapping[str, str], body: bytes,
                     *, port: int | None, tls: bool, path: str = "/", favicon_md5: str = "") -> dict[str, Any]:
    """One format-1 ``http`` entry from a split response. Never raises."""
    try:
        pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
        hdrs = _fold_headers(pairs)
        body = bytes(body[:MAX_BYTES])
        charset = _charset(hdrs, body)
        entry: dict[str, Any] = {"port": port, "tls": tls, "path": path, "status": status, "headers": hdrs}
        title = parse_title(body, charset)
        if title:
            entry["title"] = title
        if body:
            entry["body"] = decode_text(body, charset)[:MAX_BODY_TEXT]
        if favicon_md5:
            entry["favicon_md5"] = favicon_md5
        return entry
    except Exception:
        return {"port": port, "tls": tls, "path": path, "invalid": "unreadable response"}


_STATUS_LINE = re.compile(rb"^HTTP/(\d)(?:\.(\d))?\s+(\d{3})(?:\s+([^\r\n]*))?")


def split_head(raw: bytes, max_head: int = 32 * 1024) -> tuple[bytes, list[tuple[str, str]], bytes] | None:
    """(status line, header pairs, body) of an HTTP-like message (HTTP, RTSP, SSDP); None if no head."""
    if not isinstance(raw, (bytes, bytearray)) or not raw:
        return None
    raw = bytes(raw)
    end = raw.find(b"\r\n\r\n", 0, max_head)
    sep = 4
    if end < 0:
        end = raw.find(b"\n\n", 0, max_head)
        sep = 2
    if end < 0:
        head, body = raw[:max_head], b""
    else:
        head, body = raw[:end], raw[end + sep :]
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    pairs: list[tuple[str, str]] = []
    for line in lines[1 : 1 + 4 * MAX_HEADERS]:
        if b":" not in line:
            continue
        k, v = line.split(b":", 1)
        pairs.append((decode_text(k.strip()[:256]), decode_text(v.strip()[:MAX_HEADER_VALUE])))
    return lines[0][:1024], pairs, body


def parse_http_response(raw: bytes, *, port: int | None = 80, tls: bool = False, path: str = "/") -> dict | None:
    """A raw HTTP response (recorded or captured) -> a format-1 ``http`` entry; None if not HTTP."""
    try:
        parts = split_head(raw)
        if parts is None:
            return None
        first, pairs, body = parts
        m = _STATUS_LINE.match(first)
        if not m:
            return None
        length = next((v for k, v in pairs if k.lower() == "content-length"), None)
        if length is not None and length.strip().isdigit():
            body = body[: int(length.strip())]
        return build_http_entry(int(m.group(3)), pairs, body, port=port, tls=tls, path=path)
    except Exception:
        return None


def favicon_md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest() if data else ""


def parse_isapi_device_info(body: bytes | str) -> dict | None:
    """Hikvision ``<DeviceInfo>`` -> ``{"protocol": "isapi", "fields": {...}}``; None if not one.

    Field names are the element names as the device sends them (deviceName, deviceID, model,
    serialNumber, macAddress, firmwareVersion, firmwareReleasedDate, encoderVersion, deviceType,
    manufacturer, hardwareVersion, ...); the identifier sees them as ``discovery.isapi.<name lower>``.
    """
    root = parse_xml(body)
    if root is None or local(root.tag) != "DeviceInfo":
        return None
    fields = leaf_fields(root)
    return {"protocol": "isapi", "fields": fields} if fields else None


_KV = re.compile(r"^\s*([A-Za-z0-9_.:\[\]-]{1,200})\s*=\s*(.*?)\s*$")


def parse_kv_lines(body: bytes | str, max_items: int = 256) -> dict[str, str]:
    """Dahua CGI ``key=value`` lines -> map (first occurrence wins); {} for anything else."""
    try:
        text = decode_text(body[:MAX_BYTES]) if isinstance(body, (bytes, bytearray)) else str(body)[:MAX_BYTES]
        if "<html" in text[:512].lower():
            return {}
        return parse_key_values(text.splitlines(), _KV, max_items)
    except Exception:
        return {}


def parse_magicbox(*bodies: bytes | str) -> dict | None:
    """Dahua magicBox answers (getSystemInfo, getVendor, getSoftwareVersion, getDeviceType) ->
    ``{"protocol": "magicbox", "fields": {...}}`` with the device's own key names (deviceType,
    updateSerial, serialNumber, hardwareVersion, processor, vendor, version, type, ...)."""
    fields: dict[str, str] = {}
    for body in bodies:
        for k, v in parse_kv_lines(body, 64).items():
            if v and k not in fields:
                fields[k] = v
    return {"protocol": "magicbox", "fields": fields} if fields else None


def _json_depth_ok(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    depth = 0
    in_str = esc = False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def parse_json(data: bytes | str, max_size: int = MAX_BYTES) -> Any:
    """Bounded JSON (size and nesting depth); None for anything else."""
    try:
        text = decode_text(data) if isinstance(data, (bytes, bytearray)) else str(data)
        if not text or len(text) > max_size or not _json_depth_ok(text):
            return None
        return json.loads(text)
    except (ValueError, RecursionError, TypeError):
        return None


def parse_rpc2_login(body: bytes | str) -> dict | None:
    """Dahua ``/RPC2_Login`` challenge -> ``{"protocol": "rpc2", "fields": {realm, encryption, mac, ...}}``.

    The realm of a first-stage challenge often carries the serial number ("Login to 4M02D7APAZ1234").
    """
    obj = parse_json(body)
    if not isinstance(obj, dict):
        return None
    params = obj.get("params")
    fields: dict[str, str] = {}
    if isinstance(params, dict):
        for key in ("realm", "encryption", "mac", "authorization"):
            v = params.get(key)
            if isinstance(v, (str, int)) and str(v):
                if key == "authorization":
                    continue  # a per-session nonce, not a device fact
                fields[key] = str(v)[:512]
    err = obj.get("error")
    if isinstance(err, dict):
        if err.get("code") is not None:
            fields["error_code"] = str(err.get("code"))[:32]
        if isinstance(err.get("message"), str):
            fields["error_message"] = err["message"][:256]
    if not fields:
        return None
    return {"protocol": "rpc2", "fields": fields}


def parse_hik_channels(body: bytes | str) -> list[dict]:
    """ISAPI ``InputProxyChannelList`` -> ``nvr_channel`` discovery entries (one per camera behind the NVR)."""
    root = parse_xml(body)
    if root is None:
        return []
    out: list[dict] = []
    for ch in iter_local(root, "InputProxyChannel"):
        fields: dict[str, str] = {}
        fields["channel"] = text_of(find_local(ch, "id"), 32)
        src = find_local(ch, "sourceInputPortDescriptor")
        if src is not None:
            for name, key in (("model", "model"), ("serialNumber", "serial"), ("firmwareVersion", "firmware"),
                              ("ipAddress", "ip"), ("proxyProtocol", "protocol"), ("manufacturer", "manufacturer"),
                              ("macAddress", "mac")):
                v = text_of(find_local(src, name), 256)
                if v:
                    fields[key] = v
        name = text_of(find_local(ch, "name"), 256)
        if name:
            fields["name"] = name
        if fields.get("protocol", "").upper() == "HIKVISION" and "manufacturer" not in fields:
            fields["manufacturer"] = "Hikvision"
        fields = {k: v for k, v in fields.items() if v}
        if len(fields) > 1:
            out.append({"protocol": "nvr_channel", "fields": fields})
        if len(out) >= 256:
            break
    return out


_REMOTE = re.compile(r"^table\.RemoteDevice\.([^.=]{1,120})\.(.+)$")


def parse_dahua_remote_devices(body: bytes | str) -> list[dict]:
    """Dahua ``configManager getConfig RemoteDevice`` lines -> ``nvr_channel`` discovery entries."""
    kv = parse_kv_lines(body, 4096)
    groups: dict[str, dict[str, str]] = {}
    order: list[str] = []
    for k, v in kv.items():
        m = _REMOTE.match(k)
        if not m:
            continue
        dev, attr = m.group(1), m.group(2)
        if dev not in groups:
            if len(groups) >= 256:
                continue
            groups[dev] = {}
            order.append(dev)
        groups[dev][attr] = v
    out: list[dict] = []
    for i, dev in enumerate(order):
        g = groups[dev]
        if g.get("Enable", "true").lower() == "false" and not g.get("Address"):
            continue
        fields = {"channel": str(i + 1)}
        for attr, key in (("DeviceType", "model"), ("SerialNo", "serial"), ("Version", "firmware"),
                          ("Vendor", "manufacturer"), ("Address", "ip"), ("Name", "name"), ("Mac", "mac")):
            v = g.get(attr, "")
            if v and v not in ("0.0.0.0", "00:00:00:00:00:00"):
                fields[key] = v
        if len(fields) > 1:
            out.append({"protocol": "nvr_channel", "fields": fields})
    return out


# ------------------------------------------------------------------------------------------------
# I/O


async def fetch(client: httpx.AsyncClient, method: str, url: str, max_bytes: int, **kw: Any
                ) -> tuple[int, list[tuple[str, str]], bytes] | None:
    """(status, header pairs, body capped at max_bytes), or None when nothing usable came back."""
    try:
        async with client.stream(method, url, **kw) as resp:
            buf = bytearray()
            try:
                async for chunk in resp.aiter_raw():
                    buf += chunk
                    if len(buf) >= max_bytes:
                        break
            except httpx.StreamConsumed:  # an in-memory response (MockTransport): already read
                buf = bytearray(resp.content[:max_bytes])
            except (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError):
                pass  # the body stalled or broke off: the status, headers and bytes so far are kept
            raw = bytes(buf[:max_bytes])
            enc = resp.headers.get("content-encoding", "").lower()
            if enc in ("gzip", "deflate"):
                raw = _inflate(raw, enc, max_bytes)
            pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in resp.headers.raw]  # names as sent
            return resp.status_code, pairs, raw
    except (httpx.HTTPError, httpx.StreamError, OSError, ValueError, UnicodeError, EOFError):
        return None


def _inflate(raw: bytes, enc: str, max_bytes: int) -> bytes:
    import zlib

    try:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS if enc == "gzip" else zlib.MAX_WBITS)
        return d.decompress(raw, max_bytes)
    except zlib.error:
        return raw


def _url(scheme: str, host: str, port: int, path: str) -> str:
    h = f"[{host}]" if ":" in host else host
    default = (scheme == "http" and port == 80) or (scheme == "https" and port == 443)
    return f"{scheme}://{h}{'' if default else ':' + str(port)}{path}"


async def _root(client: httpx.AsyncClient, host: str, port: int, tls: bool, ctx: ProbeContext,
                entries: list[dict]) -> None:
    """The root page of one web port (every port that answers gets this much)."""
    scheme = "https" if tls else "http"
    await ctx.throttle()
    root = await fetch(client, "GET", _url(scheme, host, port, "/"), ctx.max_bytes)
    if root is not None:
        entries.append(build_http_entry(root[0], root[1], root[2], port=port, tls=tls, path="/"))


def canary_path() -> str:
    """A path no device serves (``/camsweep-<random>``): a 2xx answer marks a catch-all web server,
    whose answers to the vendor paths then prove nothing (fingerprints/fields.py)."""
    return "/camsweep-" + os.urandom(5).hex()


async def _vendor_paths(client: httpx.AsyncClient, host: str, port: int, tls: bool, ctx: ProbeContext,
                        entries: list[dict], discovery: list[dict]) -> None:
    """Favicon, the canary and the vendors' public endpoints on the port that serves the device's web
    application; ``entries``/``discovery`` fill as answers arrive, so a deadline keeps what was read."""
    scheme = "https" if tls else "http"
    cap = ctx.max_bytes
    root_entry = next((e for e in entries if e.get("path") == "/"), None)

    async def get(path: str, **kw: Any) -> tuple[int, list[tuple[str, str]], bytes] | None:
        await ctx.throttle()
        record = kw.pop("record", True)
        res = await fetch(client, kw.pop("method", "GET"), _url(scheme, host, port, path), cap, **kw)
        if res is not None and record:
            entries.append(build_http_entry(res[0], res[1], res[2], port=port, tls=tls, path=path))
        return res

    async def favicon() -> tuple[int, list[tuple[str, str]], bytes] | None:
        await ctx.throttle()
        return await fetch(client, "GET", _url(scheme, host, port, "/favicon.ico"), cap)

    async def canary() -> None:
        await ctx.throttle()
        path = canary_path()
        res = await fetch(client, "GET", _url(scheme, host, port, path), 4096)
        if res is not None and 200 <= res[0] < 300:  # kept only when it says something: a catch-all
            entries.append(build_http_entry(res[0], res[1], res[2], port=port, tls=tls, path=path))

    # the non-restricted makers' own device-info endpoints, for the makers the root page points at
    makers = vendorapi.plausible_makers(entries)
    fav, isapi, _login, magic, rpc2, _c, _v = await asyncio.gather(
        favicon(),
        get(ISAPI_DEVICE_INFO), get(HIK_LOGIN_PAGE), get(MAGICBOX_SYSTEM),
        get(RPC2_LOGIN, method="POST", content=RPC2_CHALLENGE,
            headers={"Content-Type": "application/json", "X-Requested-With": "XMLHttpRequest"}),
        canary(),
        vendorapi.ask_anonymous(get, makers, discovery, tls=tls),
    )
    if fav is not None and fav[0] == 200 and fav[2] and root_entry is not None:
        root_entry["favicon_md5"] = favicon_md5(fav[2])
    if isapi is not None and isapi[0] == 200:
        d = parse_isapi_device_info(isapi[2])
        if d:
            discovery.append(d)
    if rpc2 is not None and rpc2[0] == 200:
        d = parse_rpc2_login(rpc2[2])
        if d:
            discovery.append(d)
    if magic is not None and magic[0] == 200:
        more = await asyncio.gather(get(MAGICBOX_VENDOR), get(MAGICBOX_SOFTWARE))
        d = parse_magicbox(magic[2], *(r[2] for r in more if r is not None and r[0] == 200))
        if d:
            discovery.append(d)


def app_port(targets: list[tuple[int, bool]], per_port: list[tuple[list[dict], list[dict]]]) -> int | None:
    """Which answering port serves the device's web application: the first whose root page is not a
    redirect (plain HTTP before HTTPS, as listed), else the first that answered. Pure."""
    answered = [i for i, (entries, _d) in enumerate(per_port) if entries]
    for i in answered:
        status = per_port[i][0][0].get("status")
        if status is None or not 300 <= status < 400:
            return i
    return answered[0] if answered else None


_PATH_ORDER = ("/", ISAPI_DEVICE_INFO, HIK_LOGIN_PAGE, MAGICBOX_SYSTEM, MAGICBOX_VENDOR, MAGICBOX_SOFTWARE, RPC2_LOGIN)


def _path_rank(entry: dict) -> tuple[int, str]:
    path = entry.get("path", "")
    return (_PATH_ORDER.index(path), "") if path in _PATH_ORDER else (len(_PATH_ORDER), str(path))


def _looks_like(entries: list[dict], vendor: str) -> bool:
    """Whether the unauthenticated answers point at a Hikvision (ISAPI) or Dahua (CGI) web server."""
    for e in entries:
        status, path = e.get("status"), e.get("path", "")
        if vendor == "hikvision" and path in (ISAPI_DEVICE_INFO, HIK_LOGIN_PAGE) and status in (200, 401):
            return True
        if vendor == "dahua" and (path.startswith("/cgi-bin/magicBox") or path == RPC2_LOGIN) and status in (200, 401):
            return True
    return False


async def _with_credentials(client: httpx.AsyncClient, host: str, port: int, tls: bool, ctx: ProbeContext,
                            user: str, password: str, entries: list[dict], discovery: list[dict]) -> None:
    """Device info and NVR channel lists with digest authentication (credentials the user gave).

    Only the vendor API the unauthenticated answers pointed at is asked; results are appended as they
    arrive. The bodies read with credentials are not kept as http entries (only the parsed facts)."""
    scheme = "https" if tls else "http"
    auth = httpx.DigestAuth(user, password)
    cap = ctx.max_bytes
    known = {d["protocol"] for d in discovery}

    async def get(path: str) -> bytes | None:
        await ctx.throttle()
        res = await fetch(client, "GET", _url(scheme, host, port, path), cap, auth=auth)
        return res[2] if res is not None and res[0] == 200 else None

    # the non-restricted makers' own endpoints first: when one answers in its maker's format, a 401 on the
    # Hikvision/Dahua paths says nothing and their credential questions are not asked
    async def fetch_throttled(method: str, url: str, max_bytes: int, **kw: Any
                              ) -> tuple[int, list[tuple[str, str]], bytes] | None:
        await ctx.throttle()
        return await fetch(client, method, url, max_bytes, **kw)

    makers = vendorapi.plausible_makers(entries)
    if makers:
        await vendorapi.ask_with_credentials(fetch_throttled, lambda p: _url(scheme, host, port, p), makers,
                                             user, password, discovery, cap)
    own = vendorapi.answered_own_api(discovery)
    hik = "isapi" in known or (not own and _looks_like(entries, "hikvision"))
    dahua = "magicbox" in known or "rpc2" in known or (not own and _looks_like(entries, "dahua"))
    if hik:
        if "isapi" not in known:
            body = await get(ISAPI_DEVICE_INFO)
            d = parse_isapi_device_info(body) if body else None
            if d:
                discovery.append(d)
        body = await get(HIK_CHANNELS)
        discovery.extend(parse_hik_channels(body) if body else [])
    if dahua:
        cgi_off = any(e.get("path") == MAGICBOX_SYSTEM and e.get("status") == 403 for e in entries)
        if "magicbox" not in known:
            bodies = [] if cgi_off else [b for b in await asyncio.gather(
                get(MAGICBOX_SYSTEM), get(MAGICBOX_VENDOR), get(MAGICBOX_SOFTWARE), get(MAGICBOX_DEVICE_TYPE)) if b]
            d = parse_magicbox(*bodies) if bodies else None
            if d:
                discovery.append(d)
            elif "rpc2" in known:  # the CGI API is off (newer firmware): the web client's JSON-RPC after login
                await vendorapi.dahua_rpc2_info(fetch_throttled, lambda p: _url(scheme, host, port, p), user,
                                                password, discovery, cap)
        body = None if cgi_off else await get(DAHUA_REMOTE_DEVICES)
        discovery.extend(parse_dahua_remote_devices(body) if body else [])


async def probe(host: str, ctx: ProbeContext) -> dict:
    """``{"http": [...], "discovery": [...]}`` for every HTTP(S) port of ``host`` that answered.

    Every port's root page is read (in parallel, each within ctx.timeout); the favicon, a catch-all canary
    and the vendors' public endpoints are read on the one port that serves the device's application
    (:func:`app_port`), within PORT_BUDGET x timeout; the whole probe, credentials included, within
    TOTAL_BUDGET x timeout. What was read before a deadline is kept."""
    targets = [(p, False) for p in ctx.ports_for("http")] + [(p, True) for p in ctx.ports_for("https")]
    if not targets:
        return {}
    per_port: list[tuple[list[dict], list[dict]]] = [([], []) for _ in targets]
    deadline = Deadline(TOTAL_BUDGET * ctx.timeout)
    try:
        async with ctx.http_client() as client:
            async def one(i: int, port: int, tls: bool) -> None:
                try:
                    await asyncio.wait_for(_root(client, host, port, tls, ctx, per_port[i][0]),
                                           min(ctx.timeout, deadline.left()))
                except (TimeoutError, httpx.HTTPError, OSError):
                    pass

            # every web port's root page; the vendor endpoints only on the port serving the application
            # (a device serves the same one on 80 and 443: asking both doubles the work, not the evidence)
            await asyncio.gather(*(one(i, p, t) for i, (p, t) in enumerate(targets)))
            app = app_port(targets, per_port)
            if app is not None and deadline.left() > 0.1:
                port, tls = targets[app]
                try:
                    await asyncio.wait_for(_vendor_paths(client, host, port, tls, ctx, *per_port[app]),
                                           min(PORT_BUDGET * ctx.timeout, deadline.left()))
                except (TimeoutError, httpx.HTTPError, OSError):
                    pass
            cred = ctx.credentials_for(host)
            if cred and app is not None and deadline.left() > 0.1:
                i = app
                port, tls = targets[i]
                try:
                    await asyncio.wait_for(_with_credentials(client, host, port, tls, ctx, cred[0], cred[1],
                                                             *per_port[i]), deadline.left())
                except (TimeoutError, httpx.HTTPError, OSError):
                    pass
    except asyncio.CancelledError:
        raise
    except Exception:  # never let a hostile device's surprise out of the probe
        pass
    out: dict[str, Any] = {}
    http = [e for entries, _ in per_port for e in sorted(entries, key=_path_rank)]  # same order every run
    discovery = [d for _, ds in per_port for d in ds]
    if http:
        out["http"] = http
    if discovery:
        out["discovery"] = discovery
    return out
