"""HTTP(S) as each maker's device answers: server strings, root pages, login realms, vendor APIs.

Shapes follow real devices (nmap-service-probes entries for real units, the corpus, docs/restrictions.md
2.2-2.4): Hikvision answers ``Date`` before ``Server: App-webs/`` and echoes HTTP/1.0; its NVRs say
``DNVRS-Webs``; ISAPI deviceInfo needs digest. Dahua's root page starts with a UTF-8 BOM and an
XHTML 1.0 Strict doctype with upper-case ``CONNECTION``/``CONTENT-LENGTH`` headers; its CGI API and
``/RPC2_Login`` need the account. Anything that is not an HTTP request gets a 400 at once.

Credentials are checked for real (digest, RFC 7616 MD5 or SHA-256; Dahua's RPC2 challenge); a wrong
password is refused. No answer ever contains the password.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from urllib.parse import parse_qs

from scanner.lab.responders import onvif, ssdp
from scanner.lab.responders.base import (
    ESCAPE_TEXT,
    BadRequest,
    Device,
    Request,
    check_basic,
    check_digest,
    digest_challenge,
    http_date,
    read_request,
    send,
)

BIG_BODY = 100 * 1024 * 1024
_CHUNK = b"<!-- camsweep lab: a very large body -->" * 1638  # ~64 KiB, built once
MAX_REQUESTS_PER_CONNECTION = 100
REASONS = {200: "OK", 301: "Moved Permanently", 302: "Found", 400: "Bad Request", 401: "Unauthorized",
           403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error",
           501: "Not Implemented"}


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    reason: str | None = None
    stream_length: int | None = None  # when set, the body is streamed lazily (hostile big body)
    close: bool = False


def _html(title: str, body: str = "", head: str = "") -> bytes:
    return (f'<!DOCTYPE html>\n<html>\n<head>\n<meta http-equiv="Content-Type" content="text/html; '
            f'charset=utf-8"/>\n<title>{title}</title>\n{head}</head>\n<body>{body}</body>\n</html>\n').encode()


def _xml(text: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + text).encode()


# --------------------------------------------------------------------------------------------
# Hikvision (and its OEMs)


def _hik_server(dev: Device) -> str:
    return "DNVRS-Webs" if dev.spec.device_type == "nvr" else "App-webs/"


HIK_401_BODY = (b"<!DOCTYPE html>\n<html><head><title>Document Error: Unauthorized</title></head>\n"
                b"<body><h2>Access Error: 401 -- Unauthorized</h2>\n"
                b"<p>Authentication Error: Access Denied! Authorization required.</p>\n</body>\n</html>\n")


def _hik_401(dev: Device) -> Response:
    """The GoAhead-style page Hikvision firmware sends with a 401 (corpus http-hik-goahead-401-01)."""
    return Response(401, [("Content-Type", "text/html"),
                          ("WWW-Authenticate", digest_challenge(dev, dev.spec.realm, stale="FALSE"))], HIK_401_BODY)


def hik_device_info(dev: Device) -> bytes:
    s = dev.spec
    fw, _, build = (s.firmware or "").partition(" build ")
    kind = {"nvr": "NVR", "dvr": "DVR"}.get(s.device_type or "", "IPCamera")
    extra = ""
    if s.oem:
        extra += f"<manufacturer>{escape(s.oem)}</manufacturer>\n<OEMCode>1</OEMCode>\n"
    return _xml(
        f'<DeviceInfo version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">\n'
        f"<deviceName>{escape(s.hostname)}</deviceName>\n<deviceID>{s.uuid}</deviceID>\n"
        f"<deviceDescription>{kind}</deviceDescription>\n<deviceLocation>hangzhou</deviceLocation>\n"
        f"<systemContact>Hikvision.China</systemContact>\n<model>{escape(s.model or '')}</model>\n"
        f"<serialNumber>{escape(s.serial or '')}</serialNumber>\n<macAddress>{s.mac}</macAddress>\n"
        f"<firmwareVersion>{escape(fw)}</firmwareVersion>\n<firmwareReleasedDate>build {escape(build)}"
        f"</firmwareReleasedDate>\n<encoderVersion>V7.3</encoderVersion>\n<encoderReleasedDate>build 200601"
        f"</encoderReleasedDate>\n<bootVersion>V1.3.4</bootVersion>\n<bootReleasedDate>100316</bootReleasedDate>\n"
        f"<hardwareVersion>0x0</hardwareVersion>\n<deviceType>{kind}</deviceType>\n"
        f"<telecontrolID>{escape(s.hardware or '88')}</telecontrolID>\n{extra}</DeviceInfo>\n")


def hik_channels(dev: Device) -> bytes:
    items = []
    for c in dev.spec.channels:
        proto = "HIKVISION" if c.manufacturer == "Hikvision" else "ONVIF"
        items.append(
            f"<InputProxyChannel version=\"2.0\">\n<id>{c.channel}</id>\n<name>Camera {c.channel:02d}</name>\n"
            f"<sourceInputPortDescriptor>\n<proxyProtocol>{proto}</proxyProtocol>\n"
            f"<addressingFormatType>ipaddress</addressingFormatType>\n<ipAddress>{c.ip}</ipAddress>\n"
            f"<managePortNo>{8000 if proto == 'HIKVISION' else 80}</managePortNo>\n<srcInputPort>1</srcInputPort>\n"
            f"<userName>admin</userName>\n<streamType>auto</streamType>\n"
            f"<model>{escape(c.model)}</model>\n<serialNumber>{escape(c.serial)}</serialNumber>\n"
            f"<firmwareVersion>{escape(c.firmware)}</firmwareVersion>\n</sourceInputPortDescriptor>\n"
            f"<enableAnr>false</enableAnr>\n<enableTiming>true</enableTiming>\n</InputProxyChannel>\n")
    return _xml('<InputProxyChannelList version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema" '
                f'size="{len(items)}">\n' + "".join(items) + "</InputProxyChannelList>\n")


def hik_route(dev: Device, req: Request) -> Response:
    path = req.path
    if path in ("/", "/index.asp", "/index.html"):
        if dev.spec.device_type == "nvr":
            return Response(200, [("ETag", f'"{dev.spec.uuid[:8]}-1f4-5e0a5b4c"'),
                                  ("Content-Type", "text/html")],
                            _html("", "", '<script>window.location.href = "/doc/page/login.asp?_" + '
                                          '(new Date()).getTime();</script>\n'))
        return Response(200, [("Content-Type", "text/html")],
                        _html("", "", '<script>window.location.href = "/doc/page/login.asp?_" + '
                                      '(new Date()).getTime();</script>\n'))
    if path == "/doc/page/login.asp":
        return Response(200, [("Content-Type", "text/html")], _html(
            "", '<div id="login"><input id="username" type="text"/><input id="password" type="password"/>'
                '</div>', '<link rel="stylesheet" href="../css/ui.css"/>\n'
                          '<script src="../../codebase/webVideoCtrl.js"></script>\n'
                          '<script src="../script/login.js"></script>\n'))
    if path == "/SDK/activateStatus":
        return Response(200, [("Content-Type", "application/xml")], _xml(
            "<ActivateStatus><Activated>true</Activated></ActivateStatus>\n"))
    if path.startswith("/ISAPI/") or path.startswith("/PSIA/"):
        if not check_digest(dev, req.header("Authorization"), req.method, dev.spec.realm, req.target):
            return _hik_401(dev)
        if path == "/ISAPI/System/deviceInfo":
            return Response(200, [("Content-Type", "application/xml")], hik_device_info(dev))
        if path.startswith("/ISAPI/ContentMgmt/InputProxy/channels") and dev.spec.device_type == "nvr":
            return Response(200, [("Content-Type", "application/xml")], hik_channels(dev))
        return Response(404, [("Content-Type", "application/xml")], _xml(
            f'<ResponseStatus version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">\n'
            f"<requestURL>{escape(path)}</requestURL>\n<statusCode>4</statusCode>\n"
            f"<statusString>Invalid Operation</statusString>\n<subStatusCode>notSupport</subStatusCode>\n"
            f"</ResponseStatus>\n"))
    return _not_found_goahead(path)


def _not_found_goahead(path: str) -> Response:
    return Response(404, [("Content-Type", "text/html")], (
        "<html><head><title>Document Error: Page not found</title></head>\r\n\t\t<body><h2>Access Error: "
        f"Page not found</h2>\r\n\t\t<p>Cannot open URL {escape(path[:200])}</p></body></html>\r\n").encode())


# --------------------------------------------------------------------------------------------
# Dahua (and its OEMs)

DAHUA_TITLE = {"Amcrest": "AMCREST", "Lorex": "LOREX", "Imou": "WEB SERVICE", "Honeywell": "WEB SERVICE"}


def dahua_root(dev: Device) -> Response:
    title = DAHUA_TITLE.get(dev.spec.brand or "", "WEB SERVICE")
    body = ("\ufeff<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" "
            "\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd\">\r\n<html>\r\n<head>\r\n"
            f"<title>{title}</title>\r\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\" />\r\n"
            "<script type=\"text/javascript\" src=\"/jsBase/lib/jquery-1.11.1.min.js\"></script>\r\n"
            "</head>\r\n<body>\r\n<div id=\"login\"></div>\r\n</body>\r\n</html>\r\n").encode()
    return Response(200, [("CONNECTION", "close"), ("CONTENT-LENGTH", str(len(body))),
                          ("P3P", "CP=CAO PSA OUR"), ("CACHE-CONTROL", "max-age=0"),
                          ("CONTENT-TYPE", "text/html")], body, close=True)


def _dahua_kv(lines: list[str]) -> Response:
    return Response(200, [("Content-Type", "text/plain;charset=utf-8")], ("\r\n".join(lines) + "\r\n").encode())


def cgi_disabled(dev: Device) -> bool:
    """Dahua firmware 2.840 and later ship with the CGI API switched off (Platform Access); the web client
    speaks RPC2 only."""
    try:
        return int((dev.spec.firmware or "0.0").split(".")[1]) >= 840
    except (IndexError, ValueError):
        return False


def _rpc2_call(dev: Device, req: Request, live: set) -> Response:
    """JSON-RPC over /RPC2 for a logged-in session: the magicBox identity calls the web client makes."""
    s = dev.spec
    try:
        msg = json.loads(req.body.decode("utf-8"))
        method, mid, session = str(msg.get("method", "")), msg.get("id", 1), msg.get("session")
    except (ValueError, AttributeError, UnicodeDecodeError):
        return Response(200, [("Content-Type", "application/json")],
                        b'{"error":{"code":287637505,"message":"Invalid request"},"result":false}')
    if session not in live:
        out = {"error": {"code": 287637505, "message": "Invalid session in request data!"}, "id": mid,
               "result": False, "session": session}
        return Response(200, [("Content-Type", "application/json")], json.dumps(out).encode())
    params: dict | None = None
    if method == "magicBox.getDeviceType":
        params = {"type": s.model}
    elif method == "magicBox.getSerialNo":
        params = {"sn": s.serial}
    elif method == "magicBox.getSoftwareVersion":
        params = {"version": {"Build": s.build.replace("-", ""), "BuildDate": s.build,
                              "SecurityBaseLineVersion": "2.3", "Version": s.firmware, "WebVersion": "3.2.1.1234567"}}
    elif method == "magicBox.getVendor":
        params = {"vendor": s.oem or "Dahua"}
    elif method == "global.logout":
        live.discard(session)
        return Response(200, [("Content-Type", "application/json")],
                        json.dumps({"id": mid, "params": None, "result": True, "session": session}).encode())
    if params is not None and s.hostile_kind == "surrogate":  # lone surrogates as JSON escapes in every value
        params = {k: (f"{v}\ud800\udc00\udc00" if isinstance(v, str) else v) for k, v in params.items()}
    if params is None:
        out = {"error": {"code": 268894209, "message": "Method not found"}, "id": mid, "result": False,
               "session": session}
    else:
        out = {"id": mid, "params": params, "result": True, "session": session}
    return Response(200, [("Content-Type", "application/json")], json.dumps(out).encode())


def dahua_cgi(dev: Device, req: Request) -> Response:
    s = dev.spec
    if cgi_disabled(dev):
        return Response(403, [("Content-Type", "text/plain; charset=utf-8")], b"Error\r\nForbidden!\r\n")
    if not check_digest(dev, req.header("Authorization"), req.method, s.realm, req.target):
        return Response(401, [("WWW-Authenticate", digest_challenge(dev, s.realm, opaque=True)),
                              ("Content-Type", "text/plain; charset=utf-8")], b"Error\r\nUnauthorized!\r\n")
    q = {k: v[0] for k, v in parse_qs(req.query, keep_blank_values=True).items()}
    action = q.get("action", "")
    path = req.path
    update_serial = s.model if s.brand in ("Dahua", None) else f"DH-{s.model}"
    if path == "/cgi-bin/magicBox.cgi":
        if action == "getSystemInfo":
            return _dahua_kv([f"deviceType={s.model}", "hardwareVersion=1.00", "processor=SSC335",
                              f"serialNumber={s.serial}", f"updateSerial={update_serial}"])
        if action == "getSoftwareVersion":
            return _dahua_kv([f"version={s.firmware},build:{s.build}"])
        if action == "getVendor":
            return _dahua_kv([f"vendor={s.oem or 'Dahua'}"])
        if action == "getSerialNo":
            return _dahua_kv([f"sn={s.serial}"])
        if action == "getDeviceType":
            return _dahua_kv([f"type={s.model}"])
        if action == "getDeviceClass":
            return _dahua_kv([f"type={'NVR' if s.device_type == 'nvr' else 'IPC'}"])
        if action == "getMachineName":
            return _dahua_kv([f"name={s.serial}"])
        if action == "getHardwareVersion":
            return _dahua_kv(["version=1.00"])
    if path == "/cgi-bin/configManager.cgi" and action == "getConfig":
        name = q.get("name", "")
        if name == "RemoteDevice" and s.device_type == "nvr":
            lines = []
            for i, c in enumerate(s.channels):
                pre = f"table.RemoteDevice.uuid:System_CONFIG_NETCAMERA_INFO_{i}"
                private = c.manufacturer == "Dahua"  # Dahua and its OEMs speak the private protocol
                onvif_maker = onvif.ONVIF_MANUFACTURER.get(c.brand or "", c.brand or "General")
                lines += [f"{pre}.Address={c.ip}", f"{pre}.DeviceType={c.model}", f"{pre}.Enable=true",
                          f"{pre}.HttpPort=80", f"{pre}.Mac={c.mac}", f"{pre}.Name={c.model}",
                          f"{pre}.Port={37777 if private else 80}",
                          f"{pre}.ProtocolType={'Private' if private else 'Onvif'}", f"{pre}.RtspPort=554",
                          f"{pre}.SerialNo={c.serial}", f"{pre}.Vendor={'Private' if private else onvif_maker}",
                          f"{pre}.Version={c.firmware}", f"{pre}.VideoInputChannels=1",
                          f"{pre}.VideoInputs[0].Name=Channel{c.channel}"]
            return _dahua_kv(lines)
        if name == "General":
            return _dahua_kv([f"table.General.MachineName={s.serial}", "table.General.LocalNo=8"])
    if path == "/cgi-bin/LogicDeviceManager.cgi" and action == "getCameraAll" and s.device_type == "nvr":
        lines = []
        for i, c in enumerate(s.channels):
            pre = f"camera[{i}]"
            lines += [f"{pre}.Channel={c.channel - 1}", f"{pre}.DeviceInfo.Address={c.ip}",
                      f"{pre}.DeviceInfo.DeviceType={c.model}", f"{pre}.DeviceInfo.SerialNo={c.serial}",
                      f"{pre}.DeviceInfo.Vendor={c.brand or 'General'}", f"{pre}.DeviceInfo.Mac={c.mac}",
                      f"{pre}.DeviceInfo.SoftwareVersion={c.firmware}", f"{pre}.Enable=true"]
        return _dahua_kv(lines)
    return Response(400, [("Content-Type", "text/plain; charset=utf-8")], b"Error\r\nBad Request!\r\n")


def _rpc2_login(dev: Device, req: Request, sessions: dict[str, str], state: dict) -> Response:
    """Dahua's two-step RPC2 login: a challenge, then MD5(user:random:MD5(user:realm:pass)) upper hex."""
    s = dev.spec
    try:
        msg = json.loads(req.body.decode("utf-8"))
        params = msg.get("params") or {}
        user = str(params.get("userName", ""))
        pw = str(params.get("password", ""))
        mid = msg.get("id", 1)
    except (ValueError, AttributeError, UnicodeDecodeError):
        return Response(200, [("Content-Type", "application/json")],
                        b'{"error":{"code":287637505,"message":"Invalid request"},"result":false}')
    session = str(msg.get("session") or "")
    if session and session in sessions and pw:
        random_s = sessions.pop(session)
        ha1 = hashlib.md5(f"{dev.username}:{s.realm}:{dev.password}".encode()).hexdigest().upper()
        want = hashlib.md5(f"{dev.username}:{random_s}:{ha1}".encode()).hexdigest().upper()
        if user == dev.username and secrets.compare_digest(pw.upper(), want):
            live = state.setdefault("rpc2_live", set())
            if len(live) > 256:
                live.clear()
            live.add(session)
            out = {"id": mid, "params": {"keepAliveInterval": 60}, "result": True, "session": session}
        else:
            out = {"error": {"code": 268632085, "message": "Component error: User or password not valid!"},
                   "id": mid, "params": {"remainLockSecond": 0, "remainLoginTimes": 4}, "result": False,
                   "session": session}
        return Response(200, [("Content-Type", "application/json")], json.dumps(out).encode())
    if len(sessions) > 256:
        sessions.clear()
    session = secrets.token_hex(16)
    random_s = str(secrets.randbelow(10**10))
    sessions[session] = random_s
    out = {"error": {"code": 268632079, "message": "Component error: login challenge!"}, "id": mid,
           "params": {"authorization": secrets.token_hex(20), "encryption": "Default", "mac": dev.mac_plain,
                      "random": random_s, "realm": s.realm}, "result": False, "session": session}
    return Response(200, [("Content-Type", "application/json")], json.dumps(out).encode())


def dahua_route(dev: Device, req: Request, state: dict) -> Response:
    path = req.path
    if path in ("/", "/index.html"):
        return dahua_root(dev)
    if path.startswith("/cgi-bin/"):
        return dahua_cgi(dev, req)
    if path == "/RPC2_Login" and req.method == "POST":
        return _rpc2_login(dev, req, state.setdefault("rpc2", {}), state)
    if path == "/RPC2" and req.method == "POST":
        return _rpc2_call(dev, req, state.setdefault("rpc2_live", set()))
    return Response(404, [("Content-Type", "text/html")], b"<html><body>404 File Not Found</body></html>")


# --------------------------------------------------------------------------------------------
# other makers and ordinary hosts


_AXIS_BUILD = {"9.80.3.8": "Aug 24 2022 11:53", "6.50.5": "Jul 02 2019 15:10", "10.12.114": "Sep 21 2022 14:02"}


def _axis_prodtype(s) -> str:  # type: ignore[no-untyped-def]
    return "PTZ Network Camera" if s.device_type == "ptz" else "Network Camera"


def axis_route(dev: Device, req: Request) -> Response:
    s = dev.spec
    path = req.path
    hdr = [("Server", "Apache")]
    if path == "/":
        return Response(200, hdr + [("Content-Type", "text/html")], _html(
            "AXIS", "", '<meta http-equiv="refresh" content="0; URL=/camera/index.html" />\n'))
    if path == "/axis-cgi/basicdeviceinfo.cgi" and req.method == "POST":
        # VAPIX Basic device information: getAllUnrestrictedProperties answers anyone; getAllProperties
        # (adds Architecture, Soc, SocSerialNumber) needs an account (developer.axis.com/vapix)
        try:
            msg = json.loads(req.body.decode("utf-8"))
            method = str(msg.get("method", ""))
            api_version = str(msg.get("apiVersion", "1.0"))[:8]
            context = msg.get("context")
        except (ValueError, AttributeError, UnicodeDecodeError):
            method, api_version, context = "", "1.0", None
        props = {"Brand": "AXIS", "BuildDate": _AXIS_BUILD.get(s.firmware or "", "Jan 10 2023 09:40"),
                 "HardwareID": s.hardware, "ProdFullName": f"AXIS {s.model} {_axis_prodtype(s)}",
                 "ProdNbr": s.model, "ProdShortName": f"AXIS {s.model}", "ProdType": _axis_prodtype(s),
                 "ProdVariant": "", "SerialNumber": s.serial, "Version": s.firmware, "WebURL": "http://www.axis.com"}
        if method == "getAllProperties":
            if not check_digest(dev, req.header("Authorization"), req.method, s.realm, req.target):
                return Response(401, hdr + [("WWW-Authenticate", digest_challenge(dev, s.realm, algorithm=True)),
                                            ("Content-Type", "text/html; charset=iso-8859-1")],
                                _html("401 Unauthorized", "<h1>Unauthorized</h1>"))
            props = {"Architecture": "aarch64", "Soc": "Axis Artpec-7", "SocSerialNumber": "", **props}
        elif method != "getAllUnrestrictedProperties":
            out = {"apiVersion": api_version, "error": {"code": 2002, "message": "Method not supported"}}
            return Response(200, hdr + [("Content-Type", "application/json")], json.dumps(out).encode())
        out = {"apiVersion": api_version, "data": {"propertyList": props}}
        if context is not None:
            out["context"] = context
        return Response(200, hdr + [("Content-Type", "application/json")], json.dumps(out).encode())
    if path.startswith("/axis-cgi/"):
        if not check_digest(dev, req.header("Authorization"), req.method, s.realm, req.target):
            return Response(401, hdr + [("WWW-Authenticate", digest_challenge(dev, s.realm, algorithm=True)),
                                        ("Content-Type", "text/html; charset=iso-8859-1")],
                            _html("401 Unauthorized", "<h1>Unauthorized</h1>"))
        if path == "/axis-cgi/param.cgi":
            lines = ["root.Brand.Brand=AXIS", f"root.Brand.ProdFullName=AXIS {s.model} {_axis_prodtype(s)}",
                     f"root.Brand.ProdNbr={s.model}", f"root.Brand.ProdShortName=AXIS {s.model}",
                     f"root.Brand.ProdType={_axis_prodtype(s)}", "root.Brand.WebURL=http://www.axis.com",
                     f"root.Properties.Firmware.Version={s.firmware}",
                     f"root.Properties.System.SerialNumber={s.serial}"]
            return Response(200, hdr + [("Content-Type", "text/plain")], ("\n".join(lines) + "\n").encode())
    return Response(404, hdr + [("Content-Type", "text/html")], _html("404 Not Found", "<h1>Not Found</h1>"))


def hanwha_route(dev: Device, req: Request) -> Response:
    s = dev.spec
    if req.path == "/":
        return Response(302, [("Location", "/wmf/index.html"), ("Content-Type", "text/html")], b"")
    if req.path == "/wmf/index.html":
        return Response(200, [("Content-Type", "text/html")], _html("Wisenet WEBVIEWER", ""))
    if req.path.startswith("/stw-cgi/"):
        if not check_digest(dev, req.header("Authorization"), req.method, s.realm, req.target):
            return Response(401, [("WWW-Authenticate", digest_challenge(dev, s.realm))], b"")
        q = {k: v[0] for k, v in parse_qs(req.query, keep_blank_values=True).items()}
        if req.path == "/stw-cgi/system.cgi" and q.get("msubmenu") == "deviceinfo" and q.get("action") == "view":
            build = (s.firmware or "").split("_")[1] if "_" in (s.firmware or "") else ""
            return Response(200, [("Content-Type", "text/plain")], (
                f"Model={s.model}\r\nSerialNumber={s.serial}\r\nFirmwareVersion={s.firmware}\r\n"
                f"BuildDate={build}\r\nWebURL=http://www.hanwhavision.com\r\nDeviceType=NWC\r\n"
                f"ConnectedMACAddress={s.mac.upper()}\r\nISPVersion=\r\nLanguage=English\r\n"
                f"DeviceName={s.model}\r\nDeviceLocation=\r\nDeviceDescription=\r\nMemo=\r\n").encode())
        return Response(200, [("Content-Type", "text/plain")], b"NG\r\nError Code: 608\r\n")
    return Response(404, [("Content-Type", "text/html")], b"")


def bosch_rcp_reply(cmd: str, typ: str, result: str) -> bytes:
    """An RCP+ over CGI reply as Bosch firmware writes it: the request echoed (command in hex and decimal,
    type, direction, an empty payload), then <result> (jerahl/TCS-NetMon netmon/cameras/vendors/bosch.py
    quotes a live 0x0cd4 reply; unknown commands answer <err>0x40</err>)."""
    try:
        dec = int(cmd, 16)
    except ValueError:
        cmd, dec = "0x0000", 0
    return (f'<?xml version="1.0" encoding="iso-8859-1"?>\n<rcp>\n<command>\n<hex>{escape(cmd)}</hex>\n'
            f"<dec>{dec:5d}</dec>\n</command>\n<type>{escape(typ[:16])}</type>\n<direction>READ</direction>\n"
            f"<num>0</num>\n<idstring></idstring>\n<payload></payload>\n<cltid>0x0000</cltid>\n"
            f"<sessionid>0x00000000</sessionid>\n<auth>1</auth>\n<protocol>TCP</protocol>\n"
            f"<result>\n{result}\n</result>\n</rcp>\n").encode("latin-1", "replace")


def bosch_route(dev: Device, req: Request) -> Response:
    s = dev.spec
    hdr = [("Server", "VCS-VideoJet-Webserver")]
    if req.path == "/":
        return Response(200, hdr + [("Content-Type", "text/html")], _html(
            escape(s.model or ""), '<div id="header"><span class="brand">BOSCH</span> '
            f'<span class="product">{escape(s.model or "")}</span></div><div id="livepage"></div>'
            "<div id=\"footer\">&copy; Bosch Security Systems</div>",
            '<script type="text/javascript" src="/js/rcpplus.js"></script>\n'))
    if req.path == "/rcp.xml":
        q = {k.lower(): v[0] for k, v in parse_qs(req.query, keep_blank_values=True).items()}
        cmd = q.get("command", "").lower()
        if cmd == "0x0cd4" and q.get("direction", "READ").upper() == "READ":
            return Response(200, hdr + [("Content-Type", "text/xml")], bosch_rcp_reply(
                cmd, q.get("type", "P_STRING"), f"<str>{escape(s.firmware or '')}</str>"))
        if not check_digest(dev, req.header("Authorization"), req.method, s.realm, req.target):
            return Response(401, hdr + [("WWW-Authenticate", digest_challenge(dev, s.realm))], b"")
        return Response(200, hdr + [("Content-Type", "text/xml")], bosch_rcp_reply(
            cmd, q.get("type", "P_OCTET"), "<err>0x40</err>"))
    return Response(404, hdr, b"")


def ipro_route(dev: Device, req: Request) -> Response:
    if req.path == "/":
        return Response(200, [("Content-Type", "text/html")], _html(f"{escape(dev.spec.model or '')} Network Camera"))
    if req.path.startswith("/cgi-bin/"):
        if not check_digest(dev, req.header("Authorization"), req.method, dev.spec.realm, req.target):
            return Response(401, [("WWW-Authenticate", digest_challenge(dev, dev.spec.realm))], b"")
        if req.path == "/cgi-bin/getinfo" and req.query.upper() == "FILE=1":
            s = dev.spec
            return Response(200, [("Content-Type", "text/plain")], (
                f"MAC={s.mac.upper()}\r\nSERIAL={s.serial}\r\nVERSION={s.firmware}\r\nNAME={s.model}\r\n").encode())
        return Response(404, [("Content-Type", "text/html")], _html("404 Not Found", "<h1>Not Found</h1>"))
    return Response(404, [], b"")


def vivotek_route(dev: Device, req: Request) -> Response:
    hdr = [("Server", "Vivotek Network Camera")]
    if not check_basic(dev, req.header("Authorization")):
        return Response(401, hdr + [("WWW-Authenticate", 'Basic realm="streaming_server"'),
                                    ("Content-Type", "text/html")], _html("Protected Object",
                                                                          "<h1>Protected Object</h1>"))
    s = dev.spec
    if req.path in ("/cgi-bin/admin/getparam.cgi", "/cgi-bin/viewer/getparam.cgi"):
        params = {"system_info_modelname": s.model, "system_info_extendedmodelname": s.model,
                  "system_info_serialnumber": s.serial, "system_info_firmwareversion": s.firmware,
                  "system_hostname": "Network Camera"}
        asked = [n for n in req.query.split("&") if n] or list(params)
        lines = [f"{n}='{params[n]}'" for n in asked if n in params]
        return Response(200, hdr + [("Content-Type", "text/plain")], ("\r\n".join(lines) + "\r\n").encode())
    return Response(200, hdr + [("Content-Type", "text/html")], _html(f"{escape(s.model or '')} Network Camera"))


def _mx_factory_ip(mac: str) -> str:
    """MOBOTIX factory address: 10.x.y.z from the last three octets of the MAC (the camera's label)."""
    octs = mac.split(":")[-3:]
    return "10." + ".".join(str(int(o, 16)) for o in octs)


def mobotix_route(dev: Device, req: Request) -> Response:
    if req.path == "/":
        return Response(302, [("Location", "/control/userimage.html"), ("Content-Type", "text/html")], _html(
            "Redirect to userimage: /control/userimage.html", ""))
    if req.path == "/control/camerainfo":
        if not check_basic(dev, req.header("Authorization")):
            return Response(401, [("WWW-Authenticate", f'Basic realm="{dev.spec.realm}"'),
                                  ("Content-Type", "text/html")], _html("401 Unauthorized", "<h1>Unauthorized</h1>"))
        s = dev.spec
        rows = [("Model", f"MOBOTIX {s.model}"), ("Factory IP Address", _mx_factory_ip(s.mac)),
                ("Hardware", "T2r2"), ("Image Sensor", "Color 5MP"), ("Software", s.firmware or ""),
                ("Current Uptime", "3 Days 04:12:31")]
        table = "".join(f'<tr><td class="label">{escape(k)}</td><td>{escape(v)}</td></tr>\n' for k, v in rows)
        return Response(200, [("Content-Type", "text/html; charset=UTF-8")], _html(
            f"MOBOTIX {escape(s.model or '')} Camera Info",
            f'<table class="camerainfo"><tr><th colspan="2">System</th></tr><tbody>\n{table}</tbody></table>',
            '<script type="text/javascript">var homepage__language="en";</script>\n'))
    if req.path == "/control/userimage.html":
        return Response(200, [("Content-Type", "text/html")], _html(
            f"MOBOTIX {escape(dev.spec.model or '')} {escape(dev.spec.hostname)}", ""))
    return Response(404, [], b"")


def uniview_route(dev: Device, req: Request) -> Response:
    s = dev.spec
    if req.path == "/":
        return Response(200, [("Content-Type", "text/html")], _html("Web", '<div id="login"></div>',
                                                                     '<script src="/js/lib/uniview.js"></script>\n'))
    if req.path.startswith("/LAPI/"):
        if not check_digest(dev, req.header("Authorization"), req.method, s.realm, req.target):
            return Response(401, [("WWW-Authenticate", digest_challenge(dev, s.realm))], b"")
        if req.path == "/LAPI/V1.0/System/DeviceInfo":
            data = {"DeviceName": s.hostname, "DeviceModel": s.model, "SerialNumber": s.serial,
                    "FirmwareVersion": s.firmware, "HardwareVersion": s.hardware}
            return Response(200, [("Content-Type", "application/json")], json.dumps({"Response": {
                "ResponseURL": req.path, "CreatedID": -1, "ResponseCode": 0, "SubResponseCode": 0,
                "ResponseString": "Succeed", "StatusCode": 0, "StatusString": "Succeed", "Data": data}}).encode())
    return Response(404, [], b"")


def reolink_route(dev: Device, req: Request, state: dict) -> Response:
    """Reolink's web client root and /api.cgi: [{cmd, action, param}] in, [{cmd, code, value|error}] out
    (reolink_aio's shapes; the anonymous envelope and GetDevInfo of tests/recordings/vendorapi)."""
    s = dev.spec
    if req.path == "/":
        return Response(200, [("Content-Type", "text/html")], _html("Reolink", '<div id="app"></div>'))
    if req.path != "/api.cgi" or req.method != "POST":
        return Response(404, [], b"")
    try:
        body = json.loads(req.body or b"[]")
        cmd = body[0]["cmd"] if isinstance(body, list) and body and isinstance(body[0], dict) else ""
    except (ValueError, KeyError, TypeError):
        cmd = ""
    if not isinstance(cmd, str) or not cmd:
        return _reolink([{"cmd": "Unknown", "code": 1, "error": {"detail": "parameter error", "rspCode": -4}}])
    params = dict(p.split("=", 1) for p in req.query.split("&") if "=" in p)
    tokens = state.setdefault("reolink_tokens", set())
    if cmd == "Login":
        try:
            user = body[0]["param"]["User"]
            ok = user["userName"] == dev.username and user["password"] == dev.password
        except (KeyError, TypeError):
            ok = False
        if not ok:
            return _reolink([{"cmd": "Login", "code": 1, "error": {"detail": "login failed", "rspCode": -7}}])
        token = secrets.token_hex(5)
        tokens.add(token)
        return _reolink([{"cmd": "Login", "code": 0, "value": {"Token": {"leaseTime": 3600, "name": token}}}])
    if params.get("token") not in tokens:
        return _reolink([{"cmd": cmd, "code": 1, "error": {"detail": "please login first", "rspCode": -6}}])
    if cmd == "Logout":
        tokens.discard(params.get("token"))
        return _reolink([{"cmd": "Logout", "code": 0, "value": {"rspCode": 200}}])
    if cmd == "GetDevInfo":
        info = {"B485": 0, "IOInputNum": 0, "IOOutputNum": 0, "audioNum": 1, "buildDay": "build 22041507",
                "cfgVer": "v3.1.0.0", "channelNum": 1, "detail": f"{s.hardware}_V1", "diskNum": 1,
                "exactType": "IPC", "firmVer": s.firmware, "frameworkVer": 1, "hardVer": s.hardware,
                "model": s.model, "name": s.hostname, "pakSuffix": "pak", "serial": s.serial, "type": "IPC",
                "wifi": 0}
        return _reolink([{"cmd": "GetDevInfo", "code": 0, "value": {"DevInfo": info}}])
    return _reolink([{"cmd": cmd, "code": 1, "error": {"detail": "not support", "rspCode": -9}}])


def _reolink(obj: list) -> Response:
    return Response(200, [("Content-Type", "application/json")], json.dumps(obj).encode())


def milesight_route(dev: Device, req: Request) -> Response:
    """Milesight's web root and admin.cgi get.system.information (JSON keys as evercam/ex_nvr reads them),
    behind digest authentication."""
    s = dev.spec
    if req.path == "/":
        return Response(200, [("Content-Type", "text/html")], _html("Milesight Network Camera", '<div id="login"></div>'))
    if req.path == "/cgi-bin/admin/admin.cgi":
        if not check_digest(dev, req.header("Authorization"), req.method, s.realm, req.target):
            return Response(401, [("WWW-Authenticate", digest_challenge(dev, s.realm))], b"")
        if "action=get.system.information" in req.query:
            mac = (s.mac or "").upper()
            return Response(200, [("Content-Type", "application/json")], json.dumps({
                "deviceName": "Network Camera", "model": s.model, "snCode": s.serial, "firmwareVersion": s.firmware,
                "hardwareVersion": "V1.0", "macAddress": mac}).encode())
    return Response(404, [], b"")


def tapo_route(dev: Device, req: Request, tls: bool) -> Response:
    """A Tapo camera's HTTPS port (uhttpd): an empty root page and no Server header; POST / is the JSON API,
    whose login handshake (encrypt_type 3) answers with the -40413 envelope of pytapo issue 109 and
    python-kasa issue 1628 (a fresh nonce, an RSA key, a device_confirm). Nothing is served in plain HTTP."""
    if not tls:
        return Response(404, [], b"")
    if req.path == "/" and req.method == "GET":
        return Response(200, [("Content-Type", "text/html")], b"")
    if req.path == "/" and req.method == "POST":
        try:
            body = json.loads(req.body or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("method"), str):
            return _tapo({"error_code": -40210})
        params = body.get("params") if isinstance(body.get("params"), dict) else {}
        if body["method"] == "login" and params.get("encrypt_type") == "3":
            nonce = secrets.token_hex(8).upper()
            key = base64.b64encode(secrets.token_bytes(94)).decode()
            return _tapo({"result": {"data": {"code": -40401, "time": 10, "max_time": 10, "encrypt_type": ["3"],
                                              "key": key, "nonce": nonce,
                                              "device_confirm": secrets.token_hex(32).upper() + nonce}},
                          "error_code": -40413})
        return _tapo({"error_code": -40401})
    return Response(404, [], b"")


def _tapo(obj: dict) -> Response:
    return Response(200, [("Content-Type", "application/json; charset=UTF-8")], json.dumps(obj).encode())


def huawei_route(dev: Device, req: Request, tls: bool) -> Response:
    if not tls and req.path == "/":
        return Response(302, [("Location", f"https://{dev.ip}/"), ("Content-Type", "text/html")], b"")
    if req.path == "/":
        return Response(200, [("Content-Type", "text/html"), ("X-Frame-Options", "SAMEORIGIN")],
                        _html("HUAWEI SDC", '<div id="login"></div>'))
    return Response(404, [], b"")


def printer_route(dev: Device, req: Request) -> Response:
    s = dev.spec
    if (s.brand or "") == "Brother":
        hdr = [("Server", "debut/1.30")]
        if req.path == "/":
            return Response(301, hdr + [("Location", "/general/status.html"), ("Content-Length", "0")], b"")
        return Response(200, hdr + [("Content-Type", "text/html")], _html(escape(s.model or "")))
    product = (s.model or "").replace("HP ", "", 1)
    hdr = [("Server", f"HP HTTP Server; HP {product} - W1A79A; Serial Number: {s.serial}; Built: Thu Jun 02,"
                      " 2022 09:12:18PM {TTP1CN2223AR}")]
    if req.path == "/":
        return Response(200, hdr + [("Content-Type", "text/html")], _html(escape(s.model or ""),
                                                                            '<div id="pgm-theatre-staging-div">'))
    return Response(404, hdr, b"")


def _ipp_attr(tag: int, name: str, value: bytes) -> bytes:
    n = name.encode()
    return bytes([tag]) + len(n).to_bytes(2, "big") + n + len(value).to_bytes(2, "big") + value


def ipp_route(dev: Device, req: Request) -> Response:
    """IPP on 631: Get-Printer-Attributes (and anything else) gets the printer's identity attributes."""
    s = dev.spec
    if req.method != "POST" or len(req.body) < 8:
        return printer_route(dev, req)
    request_id = req.body[4:8]
    body = (b"\x02\x00" + b"\x00\x00" + request_id + b"\x01"
            + _ipp_attr(0x47, "attributes-charset", b"utf-8")
            + _ipp_attr(0x48, "attributes-natural-language", b"en")
            + b"\x04"
            + _ipp_attr(0x41, "printer-make-and-model", (s.model or "").encode())
            + _ipp_attr(0x42, "printer-name", s.hostname.encode())
            + _ipp_attr(0x41, "printer-info", (s.model or "").encode())
            + _ipp_attr(0x45, "printer-uri-supported", f"ipp://{dev.ip}/ipp/print".encode())
            + _ipp_attr(0x41, "printer-device-id", f"MFG:{s.brand};MDL:{s.model};CMD:PJL,PCL,URF;".encode())
            + _ipp_attr(0x23, "printer-state", (3).to_bytes(4, "big"))
            + b"\x03")
    return Response(200, [("Content-Type", "application/ipp")], body)


def linux_route(dev: Device, req: Request) -> Response:
    hdr = [("Server", "nginx/1.22.1")]
    if req.path == "/":
        return Response(200, hdr + [("Content-Type", "text/html")], _html(
            "Welcome to nginx!", "<h1>Welcome to nginx!</h1><p>If you see this page, the nginx web server is "
                                 "successfully installed and working.</p>"))
    return Response(404, hdr + [("Content-Type", "text/html")], _html("404 Not Found", "<h1>404 Not Found</h1>"))


def nas_route(dev: Device, req: Request, port: int) -> Response:
    hdr = [("Server", "nginx")]
    if port == 80:
        return Response(301, hdr + [("Location", f"http://{dev.ip}:5000/")], b"")
    if req.path == "/":
        return Response(200, hdr + [("Content-Type", "text/html")], _html(
            escape(dev.spec.hostname), "", '<meta name="application-name" content="Synology DiskStation">\n'))
    return Response(404, hdr, b"")


def escape_route(dev: Device, req: Request) -> Response:
    return Response(200, [("Server", ESCAPE_TEXT.replace("\r", "").replace("\n", "")),
                          ("Content-Type", "text/html"),
                          ("WWW-Authenticate", f'Basic realm="{ESCAPE_TEXT}"')],
                    _html(ESCAPE_TEXT, ESCAPE_TEXT))


# a device that names escape codecs as its charset, over text holding "\udXXX" escapes: decoded with
# unicode_escape these bytes would be lone surrogates
CHARSET_TITLE = b"IP Camera \\ud800\\udfff"


def charset_route(dev: Device, req: Request) -> Response:
    body = (b'<!DOCTYPE html><html><head><meta http-equiv="Content-Type" content="text/html; '
            b'charset=raw_unicode_escape"><meta charset="unicode_escape"><title>' + CHARSET_TITLE +
            b"</title></head><body>\\udc00 login \\ud83d</body></html>")
    return Response(200, [("Server", "Webs"), ("Content-Type", "text/html; charset=unicode_escape")], body)


def xmlbomb_route(dev: Device, req: Request) -> Response:
    return Response(200, [("Content-Type", "application/soap+xml; charset=utf-8")], onvif.xml_bomb().encode())


# --------------------------------------------------------------------------------------------
# dispatch


_HOSTILE_ROUTES: dict[str, Callable[[Device, Request], Response]] = {
    "escape": escape_route, "xmlbomb": xmlbomb_route, "charset": charset_route}
_FAMILY_ROUTES: dict[str, Callable[[Device, Request], Response]] = {
    "hikvision": hik_route, "axis": axis_route, "hanwha": hanwha_route, "bosch": bosch_route, "ipro": ipro_route,
    "vivotek": vivotek_route, "mobotix": mobotix_route, "uniview": uniview_route, "milesight": milesight_route,
    "printer": printer_route, "linux": linux_route}


def route(dev: Device, req: Request, *, tls: bool, port: int, state: dict) -> Response:
    s = dev.spec
    kind = s.hostile_kind
    if kind in _HOSTILE_ROUTES:
        return _HOSTILE_ROUTES[kind](dev, req)
    if kind == "bigbody":
        return Response(200, [("Content-Type", "text/html")], stream_length=BIG_BODY)
    if req.path.startswith("/onvif/") and req.method == "POST":
        if not s.has("onvif"):
            return _not_found_goahead(req.path) if s.family == "hikvision" else Response(404, [], b"")
        status, headers, body = onvif.handle_soap(dev, req)
        return Response(status, headers, body)
    if s.has("ssdp") and req.path == ssdp.description_path(dev):
        return Response(200, [("Content-Type", "text/xml")], ssdp.description(dev))
    if port == 631:
        return ipp_route(dev, req)
    fam = s.family
    if fam == "dahua":
        return dahua_route(dev, req, state)
    if fam == "reolink":
        return reolink_route(dev, req, state)
    if fam == "huawei":
        return huawei_route(dev, req, tls)
    if fam == "tapo":
        return tapo_route(dev, req, tls)
    if fam == "nas":
        return nas_route(dev, req, port)
    family_route = _FAMILY_ROUTES.get(fam)
    return family_route(dev, req) if family_route else Response(404, [], b"")


def render_head(dev: Device, req: Request | None, resp: Response) -> bytes:
    """Status line and headers in the order the maker's server writes them."""
    version = "HTTP/1.0" if req is not None and req.version == "HTTP/1.0" else "HTTP/1.1"
    reason = resp.reason or REASONS.get(resp.status, "OK")
    fam = dev.spec.family
    names = {k.lower() for k, _ in resp.headers}
    length = resp.stream_length if resp.stream_length is not None else len(resp.body)
    lines = [f"{version} {resp.status} {reason}"]
    if fam == "hikvision" and dev.spec.hostile_kind not in ("escape", "xmlbomb", "bigbody"):
        lines += [f"Date: {http_date()}", f"Server: {_hik_server(dev)}"]
        if dev.spec.device_type == "nvr" and resp.status == 200:
            lines += [f"{k}: {v}" for k, v in resp.headers if k == "ETag"]
            lines += [f"Content-Length: {length}"]
            lines += [f"{k}: {v}" for k, v in resp.headers if k not in ("ETag",)]
            lines += ["Connection: close", f"Last-Modified: {http_date(dev.boot_time)}"]
            return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        lines += [f"{k}: {v}" for k, v in resp.headers]
        lines += [f"Content-Length: {length}", "Connection: close" if resp.close or version == "HTTP/1.0"
                  else "Connection: keep-alive", "X-Frame-Options: SAMEORIGIN"]
    else:
        lines += [f"{k}: {v}" for k, v in resp.headers]
        if "content-length" not in names:
            lines.append(f"Content-Length: {length}")
        if "date" not in names and fam not in ("dahua",):
            lines.append(f"Date: {http_date()}")
        if "connection" not in names:
            lines.append("Connection: close" if resp.close or version == "HTTP/1.0" else "Connection: keep-alive")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "replace")


async def _stream_big(writer: asyncio.StreamWriter, total: int) -> None:
    view = memoryview(_CHUNK)
    sent = 0
    while sent < total:
        n = min(len(view), total - sent)
        writer.write(view[:n])
        await asyncio.wait_for(writer.drain(), 30.0)  # a reader that stops reading is dropped
        sent += n


def bad_request(dev: Device) -> bytes:
    if dev.spec.family == "hikvision":
        return (f"HTTP/1.1 400 Bad Request\r\nDate: {http_date()}\r\nServer: {_hik_server(dev)}\r\n"
                "Content-Length: 0\r\nConnection: close\r\n\r\n").encode()
    if dev.spec.family == "linux" or dev.spec.family == "nas":
        body = b"<html>\r\n<head><title>400 Bad Request</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n</body>\r\n</html>\r\n"
        server = "nginx/1.22.1" if dev.spec.family == "linux" else "nginx"
        return (f"HTTP/1.1 400 Bad Request\r\nServer: {server}\r\nDate: {http_date()}\r\nContent-Type: text/html\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
    return b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


async def handle(dev: Device, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 tls: bool = False, port: int = 80, state: dict | None = None) -> None:
    state = {} if state is None else state
    for _ in range(MAX_REQUESTS_PER_CONNECTION):
        try:
            req = await read_request(reader)
        except BadRequest:
            await send(dev, writer, bad_request(dev))
            return
        if req is None:
            return
        resp = route(dev, req, tls=tls, port=port, state=state)
        head = render_head(dev, req, resp)
        if resp.stream_length is not None:
            writer.write(head)
            await _stream_big(writer, resp.stream_length)
            return
        await send(dev, writer, head + (b"" if req.method == "HEAD" else resp.body))
        conn = (req.header("Connection") or "").lower()
        if resp.close or req.version == "HTTP/1.0" or conn == "close" or dev.hostile == "slow":
            return
