"""ONVIF: the SOAP 1.2 device service and WS-Discovery (Probe -> ProbeMatches), as cameras answer.

GetSystemDateAndTime answers without credentials (as the ONVIF core spec requires); the other calls
need the device's account, given either as a WS-Security UsernameToken (PasswordDigest =
Base64(SHA1(nonce + created + password)), or PasswordText) or HTTP digest, except on profiles whose
``onvif_auth`` is ``"none"`` (older firmware answered GetDeviceInformation to anyone). Requests are
parsed with defusedxml: no DTDs, no entities, and a size cap.

WS-Discovery ProbeMatches carry the scopes each maker really sends (corpus onvif-pm-*): Hikvision
``name/HIKVISION%20<model>`` plus ``location/city/hangzhou``, Dahua ``name/Dahua`` plus
``extension/unique_identifier``, and so on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from html import escape
from urllib.parse import quote
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeET

from scanner.lab.responders.base import Device, Request, check_digest, digest_challenge

MAX_SOAP = 64 * 1024

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
    "wsu": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd",
    "tds": "http://www.onvif.org/ver10/device/wsdl",
    "tt": "http://www.onvif.org/ver10/schema",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "d": "http://schemas.xmlsoap.org/ws/2005/04/discovery",
    "dn": "http://www.onvif.org/ver10/network/wsdl",
}
PASSWORD_DIGEST = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"

ONVIF_MANUFACTURER = {
    "Hikvision": "HIKVISION", "Dahua": "Dahua", "Axis": "AXIS", "Wisenet": "Hanwha Vision", "Bosch": "Bosch",
    "i-PRO": "i-PRO", "Vivotek": "VIVOTEK", "Mobotix": "MOBOTIX", "Uniview": "UNIVIEW", "Huawei": "HUAWEI",
}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find_local(root: Element, name: str) -> Element | None:
    for el in root.iter():
        if _local(el.tag) == name:
            return el
    return None


def parse_xml(data: bytes) -> Element | None:
    """Entity-safe parse; None for anything too big, malformed or carrying a DTD."""
    if len(data) > MAX_SOAP:
        return None
    try:
        return SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except Exception:  # noqa: BLE001 - defusedxml raises several kinds; all mean "not acceptable"
        return None


def manufacturer(dev: Device) -> str:
    s = dev.spec
    return ONVIF_MANUFACTURER.get(s.brand or "", s.brand or "")


def _envelope(body: str, header: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<env:Envelope xmlns:env="{NS["s"]}" xmlns:tds="{NS["tds"]}" xmlns:tt="{NS["tt"]}" '
        f'xmlns:ter="http://www.onvif.org/ver10/error">'
        f"<env:Header>{header}</env:Header><env:Body>{body}</env:Body></env:Envelope>\n"
    ).encode()


def _fault(code: str, subcode: str, reason: str) -> bytes:
    return _envelope(
        f"<env:Fault><env:Code><env:Value>env:{code}</env:Value><env:Subcode><env:Value>{subcode}</env:Value>"
        f"</env:Subcode></env:Code><env:Reason><env:Text xml:lang=\"en\">{escape(reason)}</env:Text></env:Reason>"
        "</env:Fault>")


def _wsse_ok(dev: Device, root: Element) -> bool:
    token = _find_local(root, "UsernameToken")
    if token is None:
        return False
    fields = {_local(el.tag): el for el in token}
    user = (fields.get("Username").text or "") if fields.get("Username") is not None else ""
    pw_el = fields.get("Password")
    if pw_el is None or not hmac.compare_digest(user.encode(), dev.username.encode()):
        return False
    given = (pw_el.text or "").strip()
    if pw_el.get("Type", "").endswith("#PasswordDigest"):
        nonce_el, created_el = fields.get("Nonce"), fields.get("Created")
        if nonce_el is None or created_el is None:
            return False
        try:
            nonce = base64.b64decode((nonce_el.text or "").strip(), validate=True)
        except ValueError:
            return False
        created = (created_el.text or "").strip()
        want = base64.b64encode(hashlib.sha1(nonce + created.encode() + dev.password.encode()).digest()).decode()
        return hmac.compare_digest(want, given)
    return hmac.compare_digest(given.encode(), dev.password.encode())


def _xaddr(dev: Device) -> str:
    port = dev.port(80)
    return f"http://{dev.ip}/onvif/device_service" if port == 80 else f"http://{dev.ip}:{port}/onvif/device_service"


def device_information(dev: Device) -> str:
    s = dev.spec
    fw = s.firmware or ""
    if s.family == "dahua" and s.build:
        fw = f"{fw}, Build Date {s.build}"
    return (f"<tds:GetDeviceInformationResponse><tds:Manufacturer>{escape(manufacturer(dev))}</tds:Manufacturer>"
            f"<tds:Model>{escape(s.model or '')}</tds:Model><tds:FirmwareVersion>{escape(fw)}</tds:FirmwareVersion>"
            f"<tds:SerialNumber>{escape(s.serial or '')}</tds:SerialNumber>"
            f"<tds:HardwareId>{escape(s.hardware or '')}</tds:HardwareId></tds:GetDeviceInformationResponse>")


def system_date_and_time() -> str:
    t = time.gmtime()
    return ("<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>NTP</tt:DateTimeType>"
            "<tt:DaylightSavings>false</tt:DaylightSavings><tt:TimeZone><tt:TZ>UTC0</tt:TZ></tt:TimeZone>"
            f"<tt:UTCDateTime><tt:Time><tt:Hour>{t.tm_hour}</tt:Hour><tt:Minute>{t.tm_min}</tt:Minute>"
            f"<tt:Second>{t.tm_sec}</tt:Second></tt:Time><tt:Date><tt:Year>{t.tm_year}</tt:Year>"
            f"<tt:Month>{t.tm_mon}</tt:Month><tt:Day>{t.tm_mday}</tt:Day></tt:Date></tt:UTCDateTime>"
            f"<tt:LocalDateTime><tt:Time><tt:Hour>{t.tm_hour}</tt:Hour><tt:Minute>{t.tm_min}</tt:Minute>"
            f"<tt:Second>{t.tm_sec}</tt:Second></tt:Time><tt:Date><tt:Year>{t.tm_year}</tt:Year>"
            f"<tt:Month>{t.tm_mon}</tt:Month><tt:Day>{t.tm_mday}</tt:Day></tt:Date></tt:LocalDateTime>"
            "</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>")


def capabilities(dev: Device) -> str:
    x = _xaddr(dev)
    return ("<tds:GetCapabilitiesResponse><tds:Capabilities>"
            f"<tt:Device><tt:XAddr>{x}</tt:XAddr></tt:Device>"
            f"<tt:Media><tt:XAddr>{x.replace('device_service', 'Media')}</tt:XAddr><tt:StreamingCapabilities>"
            "<tt:RTPMulticast>true</tt:RTPMulticast><tt:RTP_TCP>true</tt:RTP_TCP><tt:RTP_RTSP_TCP>true"
            "</tt:RTP_RTSP_TCP></tt:StreamingCapabilities></tt:Media>"
            "</tds:Capabilities></tds:GetCapabilitiesResponse>")


def services(dev: Device) -> str:
    x = _xaddr(dev)
    return ("<tds:GetServicesResponse><tds:Service><tds:Namespace>http://www.onvif.org/ver10/device/wsdl"
            f"</tds:Namespace><tds:XAddr>{x}</tds:XAddr><tds:Version><tt:Major>2</tt:Major><tt:Minor>60"
            "</tt:Minor></tds:Version></tds:Service><tds:Service><tds:Namespace>"
            "http://www.onvif.org/ver10/media/wsdl</tds:Namespace>"
            f"<tds:XAddr>{x.replace('device_service', 'Media')}</tds:XAddr><tds:Version><tt:Major>2</tt:Major>"
            "<tt:Minor>60</tt:Minor></tds:Version></tds:Service></tds:GetServicesResponse>")


def network_interfaces(dev: Device) -> str:
    return ("<tds:GetNetworkInterfacesResponse><tds:NetworkInterfaces token=\"eth0\"><tt:Enabled>true</tt:Enabled>"
            f"<tt:Info><tt:Name>eth0</tt:Name><tt:HwAddress>{dev.spec.mac}</tt:HwAddress><tt:MTU>1500</tt:MTU>"
            "</tt:Info><tt:IPv4><tt:Enabled>true</tt:Enabled><tt:Config><tt:Manual><tt:Address>"
            f"{dev.ip}</tt:Address><tt:PrefixLength>{dev.prefixlen}</tt:PrefixLength></tt:Manual>"
            "<tt:DHCP>false</tt:DHCP></tt:Config></tt:IPv4></tds:NetworkInterfaces>"
            "</tds:GetNetworkInterfacesResponse>")


def scopes_response(dev: Device) -> str:
    items = "".join(f"<tds:Scopes><tt:ScopeDef>Fixed</tt:ScopeDef><tt:ScopeItem>{escape(s)}</tt:ScopeItem>"
                    "</tds:Scopes>" for s in scopes(dev))
    return f"<tds:GetScopesResponse>{items}</tds:GetScopesResponse>"


PUBLIC = {"GetSystemDateAndTime"}
CALLS = {
    "GetSystemDateAndTime": lambda dev: system_date_and_time(),
    "GetDeviceInformation": device_information,
    "GetCapabilities": capabilities,
    "GetServices": services,
    "GetNetworkInterfaces": network_interfaces,
    "GetScopes": scopes_response,
    "GetHostname": lambda dev: ("<tds:GetHostnameResponse><tds:HostnameInformation><tt:FromDHCP>false"
                                f"</tt:FromDHCP><tt:Name>{escape(dev.spec.hostname)}</tt:Name>"
                                "</tds:HostnameInformation></tds:GetHostnameResponse>"),
}

SOAP_CT = ("Content-Type", "application/soap+xml; charset=utf-8")


def handle_soap(dev: Device, req: Request) -> tuple[int, list[tuple[str, str]], bytes]:
    """Answer one POST to the device service: (status, headers, body)."""
    if dev.spec.hostile_kind == "xmlbomb":
        return 200, [SOAP_CT], xml_bomb().encode()
    root = parse_xml(req.body)
    body = _find_local(root, "Body") if root is not None else None
    if root is None or body is None or len(body) == 0:
        return 400, [SOAP_CT], _fault("Sender", "ter:WellFormed", "Well-formed Error")
    call = _local(body[0].tag)
    if call not in CALLS:
        return 400, [SOAP_CT], _fault("Sender", "ter:ActionNotSupported", "Optional Action Not Implemented")
    public = call in PUBLIC or (dev.spec.onvif_auth == "none" and call == "GetDeviceInformation")
    if not public and not (_wsse_ok(dev, root) or check_digest(dev, req.header("Authorization"), req.method,
                                                               dev.spec.realm, req.target)):
        challenge = ("WWW-Authenticate", digest_challenge(dev, dev.spec.realm))
        if dev.spec.family == "hikvision" and req.header("Authorization") is None and _find_local(
                root, "UsernameToken") is None:
            from scanner.lab.responders.http import HIK_401_BODY  # Hikvision's web server answers first

            return 401, [("Content-Type", "text/html"), challenge], HIK_401_BODY
        return 401, [SOAP_CT, challenge], _fault("Sender", "ter:NotAuthorized", "Sender not Authorized")
    if dev.spec.hostile_kind == "onvif_gzip" and call == "GetDeviceInformation":  # with credentials only
        return 200, [SOAP_CT, ("Content-Encoding", "gzip")], gzip_bomb()
    return 200, [SOAP_CT], _envelope(CALLS[call](dev))


_BOMB: list[bytes] = []
BOMB_SIZE = 256 * 1024 * 1024  # inflated; ~250 KiB on the wire


def gzip_bomb() -> bytes:
    """A gzip body of BOMB_SIZE zero bytes (built once per process): a reader that inflates it whole needs
    a thousand times the bytes it received."""
    if not _BOMB:
        import zlib

        c = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        zeros = bytes(1 << 20)
        _BOMB.append(b"".join([c.compress(zeros) for _ in range(BOMB_SIZE >> 20)] + [c.flush()]))
    return _BOMB[0]


# --------------------------------------------------------------------------------------------
# WS-Discovery


def scopes(dev: Device) -> list[str]:
    s = dev.spec
    base = "onvif://www.onvif.org/"
    model = quote(s.model or "")
    fam = s.family
    if fam == "hikvision":
        name = "HIKVISION" if s.brand in ("Hikvision", None) else (s.brand or "").upper()
        out = ["type/video_encoder", "Profile/Streaming", "Profile/G", "Profile/T", "type/audio_encoder"]
        if s.device_type == "ptz":
            out.append("type/ptz")
        if s.device_type == "nvr":
            out = ["type/NetworkVideoRecorder", "Profile/Streaming", "Profile/G"]
        out += [f"hardware/{model}", f"name/{quote(name + ' ' + (s.model or ''))}", "location/city/hangzhou"]
    elif fam == "dahua":
        out = ["location/country/china", f"name/{quote(s.brand or 'Dahua')}", f"hardware/{model}",
               "Profile/Streaming", "type/Network_Video_Transmitter", "extension/unique_identifier"]
        if s.brand == "Honeywell":
            out += ["extension/Honeywell_mask/37777", f"MAC/{s.mac}", "Profile/Q/Operational"]
        if s.device_type == "nvr":
            out[4] = "type/Network_Video_Storage"
    elif fam == "axis":
        out = ["type/video_encoder", "Profile/Streaming", "Profile/G", "Profile/T", f"hardware/{model}",
               f"name/{quote('AXIS ' + (s.model or ''))}", "location/country/sweden"]
    else:
        out = ["type/video_encoder", "Profile/Streaming", "type/Network_Video_Transmitter",
               f"hardware/{model}", f"name/{quote(manufacturer(dev) or 'IPCAM')}"]
    return [base + x for x in out]


def endpoint(dev: Device) -> str:
    if dev.spec.family == "hikvision":  # uuid ends in the MAC, as Hikvision's do
        u = dev.spec.uuid.split("-")
        return f"urn:uuid:{u[0]}-{u[1]}-{u[2]}-{u[3]}-{dev.spec.mac.replace(':', '')}"
    return f"urn:uuid:{dev.spec.uuid}"


def parse_probe(data: bytes) -> tuple[str, list[str]] | None:
    """(MessageID, requested types) of a WS-Discovery Probe, or None when it is not one."""
    root = parse_xml(data)
    if root is None:
        return None
    probe = _find_local(root, "Probe")
    if probe is None:
        return None
    mid = _find_local(root, "MessageID")
    types = _find_local(probe, "Types")
    return ((mid.text or "").strip()[:256] if mid is not None else ""), (
        (types.text or "").split()[:16] if types is not None else [])


def wants_us(types: list[str]) -> bool:
    if not types:
        return True
    return any(t.rsplit(":", 1)[-1] in ("NetworkVideoTransmitter", "Device") for t in types)


def probe_match(dev: Device, relates_to: str) -> bytes:
    if dev.spec.hostile_kind == "xmlbomb":
        return xml_bomb().encode()
    types = "dn:NetworkVideoTransmitter tds:Device"
    scope_text = " ".join(escape(s) for s in scopes(dev))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<env:Envelope xmlns:env="{NS["s"]}" xmlns:wsadis="{NS["a"]}" xmlns:d="{NS["d"]}" '
        f'xmlns:dn="{NS["dn"]}" xmlns:tds="{NS["tds"]}">'
        f"<env:Header><wsadis:MessageID>urn:uuid:{uuid.uuid4()}</wsadis:MessageID>"
        f"<wsadis:RelatesTo>{escape(relates_to)}</wsadis:RelatesTo>"
        "<wsadis:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsadis:To>"
        "<wsadis:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsadis:Action>"
        f'<d:AppSequence InstanceId="{int(dev.boot_time)}" MessageNumber="1"/></env:Header>'
        "<env:Body><d:ProbeMatches><d:ProbeMatch>"
        f"<wsadis:EndpointReference><wsadis:Address>{endpoint(dev)}</wsadis:Address></wsadis:EndpointReference>"
        f"<d:Types>{types}</d:Types><d:Scopes>{scope_text}</d:Scopes>"
        f"<d:XAddrs>{_xaddr(dev)}</d:XAddrs><d:MetadataVersion>10</d:MetadataVersion>"
        "</d:ProbeMatch></d:ProbeMatches></env:Body></env:Envelope>\n"
    ).encode()


def xml_bomb(levels: int = 10) -> str:
    """A "billion laughs" document shaped as a ProbeMatch: a few hundred bytes that expand to ~3 GB."""
    ents = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, levels)]
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<!DOCTYPE env:Envelope [\n{chr(10).join(ents)}\n]>\n'
        f'<env:Envelope xmlns:env="{NS["s"]}" xmlns:d="{NS["d"]}" xmlns:wsadis="{NS["a"]}">'
        "<env:Header><wsadis:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsadis:Action>"
        "</env:Header><env:Body><d:ProbeMatches><d:ProbeMatch><d:Types>dn:NetworkVideoTransmitter</d:Types>"
        f"<d:Scopes>onvif://www.onvif.org/name/&lol{levels - 1};</d:Scopes>"
        "</d:ProbeMatch></d:ProbeMatches></env:Body></env:Envelope>\n")
