"""ONVIF device service: GetSystemDateAndTime and GetDeviceInformation.

Unauthenticated calls are raw SOAP 1.2 POSTs through the shared httpx client (``ctx.http_transport`` in
tests) parsed with defusedxml: GetSystemDateAndTime must answer without credentials by the standard,
and many devices also answer GetDeviceInformation. When the device refuses (a ``NotAuthorized`` fault
or 401) and the user gave credentials for this host, GetDeviceInformation goes through the ONVIF client
(onvif-zeep-async, with its bundled WSDLs: nothing is downloaded at run time) with a WS-Security
UsernameToken. Credentials never appear in the evidence.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element

from scanner.probes.base import Deadline, ProbeContext, url_on_host
from scanner.probes.http import _fold_headers, fetch
from scanner.probes.safexml import find_local, find_text, iter_local, local, parse_xml, text_of

MAX_SOAP = 64 * 1024
DEVICE_PATH = "/onvif/device_service"

_ENVELOPE = ('<?xml version="1.0" encoding="UTF-8"?>'
             '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
             'xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><s:Body>{body}</s:Body></s:Envelope>')
ACTION_NS = "http://www.onvif.org/ver10/device/wsdl/"


def build_request(operation: str) -> bytes:
    """A bare SOAP request for a parameterless device-service operation."""
    return _ENVELOPE.format(body=f"<tds:{operation}/>").encode()


def _reply_element(data: bytes | str, name: str) -> Element | None:
    """The element called ``name`` in a SOAP reply (at most MAX_SOAP bytes, entity-safe); None without one."""
    root = parse_xml(data, MAX_SOAP)
    return None if root is None else find_local(root, name)


def parse_fault(data: bytes | str) -> dict | None:
    """A SOAP Fault -> ``{"code", "subcode", "reason"}``; None when the body is not a fault."""
    fault = _reply_element(data, "Fault")
    if fault is None:
        return None
    values = [text_of(v, 128) for v in iter_local(fault, "Value")]
    out = {"code": values[0] if values else text_of(find_local(fault, "faultcode"), 128),
           "subcode": values[-1] if len(values) > 1 else "",
           "reason": text_of(find_local(fault, "Text"), 256) or text_of(find_local(fault, "faultstring"), 256)}
    return {k: v for k, v in out.items() if v}


def parse_device_information(data: bytes | str) -> dict | None:
    """GetDeviceInformationResponse -> ``{"manufacturer", "model", "firmware", "serial", "hardware_id"}``."""
    resp = _reply_element(data, "GetDeviceInformationResponse")
    if resp is None:
        return None
    out = {}
    for element, key in (("Manufacturer", "manufacturer"), ("Model", "model"), ("FirmwareVersion", "firmware"),
                         ("SerialNumber", "serial"), ("HardwareId", "hardware_id")):
        v = find_text(resp, element, 512)
        if v:
            out[key] = v
    return out


def parse_system_date_and_time(data: bytes | str) -> dict | None:
    """GetSystemDateAndTimeResponse -> ``{"utc": "YYYY-MM-DDThh:mm:ssZ", "time_zone", "date_time_type"}``."""
    resp = _reply_element(data, "GetSystemDateAndTimeResponse")
    if resp is None:
        return None
    out: dict[str, str] = {}
    kind = find_text(resp, "DateTimeType", 32)
    if kind:
        out["date_time_type"] = kind
    tz = find_local(resp, "TimeZone")
    if tz is not None:
        out["time_zone"] = find_text(tz, "TZ", 128)
    utc = find_local(resp, "UTCDateTime")
    if utc is not None:
        try:
            d, t = find_local(utc, "Date"), find_local(utc, "Time")
            if d is not None and t is not None:
                y, mo, dd = (int(find_text(d, k, 8) or 0) for k in ("Year", "Month", "Day"))
                h, mi, s = (int(find_text(t, k, 8) or 0) for k in ("Hour", "Minute", "Second"))
                out["utc"] = f"{y:04d}-{mo:02d}-{dd:02d}T{h:02d}:{mi:02d}:{s:02d}Z"
        except ValueError:
            pass
    return {k: v for k, v in out.items() if v}


async def _soap(client: Any, url: str, operation: str, ctx: ProbeContext
                ) -> tuple[int, dict[str, str], bytes] | None:
    await ctx.throttle()
    res = await fetch(client, "POST", url, min(ctx.max_bytes, MAX_SOAP), content=build_request(operation),
                      headers={"Content-Type": f'application/soap+xml; charset=utf-8; '
                                               f'action="{ACTION_NS}{operation}"'})
    if res is None:
        return None
    return res[0], _fold_headers(res[1]), res[2]


def _import_onvif_client() -> Any:
    """``onvif.ONVIFCamera``, imported without letting it reconfigure logging: onvif.client calls
    ``logging.basicConfig(level=INFO)`` at import, which would send every library's INFO lines to stderr."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        from onvif import ONVIFCamera
    finally:
        for h in list(root.handlers):
            if h not in handlers:
                root.removeHandler(h)
        root.setLevel(level)
    return ONVIFCamera


async def _close_camera(cam: Any, create: asyncio.Future) -> None:
    try:
        if not create.done():
            await asyncio.wait_for(asyncio.shield(create), 5.0)
    except Exception:
        pass
    if create.done() and not create.cancelled():
        create.exception()  # retrieved, so asyncio does not complain about it
    try:
        await asyncio.wait_for(cam.close(), 2.0)
    except Exception:
        pass


# onvif-zeep-async loads a WSDL once per process and caches it, but without a lock: probes that start
# together would each parse it in a thread (N x ~0.3 s of CPU for N hosts at once). Until one creation
# has finished, creations run one at a time; after that they are cheap and run freely.
_wsdl_loaded = False
_first_locks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # event loop -> asyncio.Lock


async def _create_devicemgmt(cam: Any) -> Any:
    global _wsdl_loaded
    if _wsdl_loaded:
        return await cam.create_devicemgmt_service()
    lock = _first_locks.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with lock:
        service = await cam.create_devicemgmt_service()
        _wsdl_loaded = True
        return service


def load_client() -> None:
    """Import the ONVIF client (zeep, aiohttp, lxml: ~0.4 s of CPU) without using it; the scan does this in
    a thread while discovery waits for replies, instead of on the event loop at the first credentialed host."""
    _import_onvif_client()


async def prewarm() -> bool:
    """Import the ONVIF client and load its device-service WSDL, sending nothing (a service object is
    built for a placeholder address and closed unused). Worker processes call it while discovery runs,
    so the first credentialed host does not pay ~0.5 s of CPU. True when the client is ready."""
    ONVIFCamera = _import_onvif_client()
    cam = ONVIFCamera("127.0.0.1", 80, "", "", no_cache=True)
    create = asyncio.ensure_future(_create_devicemgmt(cam))
    try:
        await asyncio.shield(create)
    except Exception:
        return False
    finally:
        await _close_camera(cam, create)
    return _wsdl_loaded


class ReplyTooLarge(Exception):
    """A credentialed ONVIF reply longer than MAX_SOAP, or one that inflates beyond it."""


def cap_transport(transport: Any, cap: int = MAX_SOAP) -> Any:
    """Make an onvif-zeep-async transport read replies as every other HTTP read here does: at most ``cap``
    bytes, and a gzip/deflate body inflated to at most ``cap`` bytes (aiohttp's own decompression is off:
    it would inflate a gzip bomb without bound). A longer reply raises :class:`ReplyTooLarge` and its
    connection is dropped. Returns the transport."""
    import aiohttp
    from zeep.utils import get_version

    async def _post_internal(address: str, message: str | bytes, headers: dict[str, str]) -> tuple[Any, bytes]:
        headers = dict(headers or {})
        headers.setdefault("User-Agent", f"Zeep/{get_version()}")
        headers.setdefault("Content-Type", 'text/xml; charset="utf-8"')
        data = message.encode("utf-8") if isinstance(message, str) else message
        try:
            response = await transport.session.post(address, data=data, headers=headers, proxy=transport.proxy,
                                                    timeout=transport._client_timeout, auto_decompress=False)
        except RuntimeError as exc:  # a closed session: as the library reports it
            raise aiohttp.ClientConnectionError(f"failed to post: {exc}") from exc
        try:
            body = await read_capped(response, cap)
        except BaseException:
            response.close()
            raise
        response.release()
        return response, body

    transport._post_internal = _post_internal
    return transport


async def read_capped(response: Any, cap: int) -> bytes:
    """An aiohttp response's body, at most ``cap`` bytes after inflating (ReplyTooLarge beyond)."""
    import zlib

    declared = response.content_length
    if declared is not None and declared > cap:
        raise ReplyTooLarge(f"reply of {declared} bytes")
    buf = bytearray()
    while True:
        chunk = await response.content.read(min(65536, cap + 1 - len(buf)) or 1)
        if not chunk:
            break
        buf += chunk
        if len(buf) > cap:
            raise ReplyTooLarge(f"reply longer than {cap} bytes")
    enc = (response.headers.get("Content-Encoding") or "").strip().lower()
    if enc in ("gzip", "x-gzip", "deflate"):
        d = zlib.decompressobj(16 + zlib.MAX_WBITS if "gzip" in enc else zlib.MAX_WBITS)
        try:
            out = d.decompress(bytes(buf), cap + 1)
        except zlib.error as exc:
            raise ReplyTooLarge(f"undecodable {enc} reply: {exc}") from None
        if len(out) > cap or d.unconsumed_tail:
            raise ReplyTooLarge(f"{enc} reply inflates beyond {cap} bytes")
        return out
    if enc not in ("", "identity"):
        raise ReplyTooLarge(f"unsupported Content-Encoding {enc[:32]!r}")
    return bytes(buf)


async def device_information_with_credentials(host: str, port: int, user: str, password: str,
                                              timeout: float) -> dict | None:
    """GetDeviceInformation through onvif-zeep-async (bundled WSDLs), or None when it fails."""
    ONVIFCamera = _import_onvif_client()
    try:
        cam = ONVIFCamera(host, port, user, password, no_cache=True)
    except Exception:
        return None
    # Creating the service opens an aiohttp session that close() only knows once creation finished:
    # shield it from cancellation and let it finish before closing, or the session would leak.
    create = asyncio.ensure_future(_create_devicemgmt(cam))

    async def run() -> Any:
        mgmt = await asyncio.shield(create)  # the device service; no other service needed
        cap_transport(mgmt.transport)
        return await mgmt.GetDeviceInformation()

    try:
        info = await asyncio.wait_for(run(), timeout)
    except asyncio.CancelledError:
        raise
    except Exception:
        return None
    finally:
        await _close_camera(cam, create)
    out = {}
    for attr, key in (("Manufacturer", "manufacturer"), ("Model", "model"), ("FirmwareVersion", "firmware"),
                      ("SerialNumber", "serial"), ("HardwareId", "hardware_id")):
        v = getattr(info, attr, None) if not isinstance(info, dict) else info.get(attr)
        if v:
            out[key] = str(v)[:512]
    return out or None


async def probe(host: str, ctx: ProbeContext, xaddrs: list[str] | None = None) -> dict:
    """``{"onvif": {...}}`` from the device service (the WS-Discovery XAddrs that point at ``host``, else
    ``http://host:<port>/onvif/device_service`` for each ONVIF port)."""
    h = f"[{host}]" if ":" in host else host
    urls = [u for u in (xaddrs or []) if url_on_host(u, host)][:2]
    urls += [f"http://{h}:{p}{DEVICE_PATH}" if p != 80 else f"http://{h}{DEVICE_PATH}"
             for p in ctx.ports_for("onvif")]
    urls = list(dict.fromkeys(urls))
    deadline = Deadline(3 * ctx.timeout)  # within the engine's bound of 3 x timeout + connect + 1
    result: dict[str, Any] = {}
    try:
        async with ctx.http_client() as client:
            for url in urls:
                if deadline.left() < 0.1:
                    break
                result = {}
                try:
                    await asyncio.wait_for(_probe_url(client, host, url, ctx, result, deadline), deadline.left())
                except TimeoutError:
                    pass
                if result:
                    return {"onvif": result}
    except asyncio.CancelledError:
        raise
    except Exception:
        pass
    return {}


async def _probe_url(client: Any, host: str, url: str, ctx: ProbeContext, out: dict[str, Any],
                     deadline: Deadline) -> None:
    """Fill ``out`` as answers arrive (a deadline keeps what was read); leaves it empty for a non-ONVIF URL."""
    sdt = await _soap(client, url, "GetSystemDateAndTime", ctx)
    if sdt is None:
        return
    status, headers, body = sdt
    root = parse_xml(body, MAX_SOAP)
    if root is None or local(root.tag) != "Envelope":
        return  # not an ONVIF device service
    out["xaddr"] = url
    dt = parse_system_date_and_time(body)
    if dt:
        out["system_date_time"] = dt
    server = next((v for k, v in headers.items() if k.lower() == "server"), "")
    if server:
        out["http_server"] = server
    di = await _soap(client, url, "GetDeviceInformation", ctx)
    info = parse_device_information(di[2]) if di is not None else None
    if info:
        out.update(info)
        return
    fault = parse_fault(di[2]) if di is not None else None
    if fault or (di is not None and di[0] in (400, 401, 403, 500)):
        out["auth_required"] = True
        if fault:
            out["fault"] = fault
    cred = ctx.credentials_for(host)
    if cred:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        info = await device_information_with_credentials(host, port, cred[0], cred[1],
                                                         max(0.1, min(ctx.timeout, deadline.left())))
        if info:
            out.update(info)
            out["authenticated"] = True
