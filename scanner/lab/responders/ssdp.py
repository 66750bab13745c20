"""SSDP (UDP 1900, multicast 239.255.255.250): M-SEARCH in, a unicast ``HTTP/1.1 200 OK`` out.

Server strings as real units send them (corpus ssdp-*: Dahua/Amcrest ``Linux, UPnP/1.0, Private Upnp
SDK`` with ``X-User-Agent: redsonic``; Axis the Portable UPnP SDK). The LOCATION document is served by
the device's HTTP responder (:func:`description`).
"""

from __future__ import annotations

from html import escape

from scanner.lab.responders.base import Device, http_date

PORT = 1900
GROUP = "239.255.255.250"
DESCRIPTION_PATH = {"dahua": "/upnp_device_desc.xml", "axis": "/rootdesc1.xml"}


def description_path(dev: Device) -> str:
    return DESCRIPTION_PATH.get(dev.spec.family, "/description.xml")


def location(dev: Device) -> str:
    return f"http://{dev.ip}:{dev.port(80)}{description_path(dev)}"


def server(dev: Device) -> str:
    if dev.spec.family == "dahua":
        return "Linux, UPnP/1.0, Private Upnp SDK"
    if dev.spec.family == "axis":
        return "Linux/4.14.79-axis8, UPnP/1.0, Portable SDK for UPnP devices/1.8.4"
    return "Linux/3.10, UPnP/1.0, Portable SDK for UPnP devices/1.6.22"


def _usn(dev: Device) -> str:
    if dev.spec.family == "dahua":
        return f"uuid:device_3_0-{dev.spec.serial}"
    return f"uuid:{dev.spec.uuid}"


def answer(dev: Device, data: bytes, addr: tuple[str, int]) -> bytes | None:
    text = data[:2048].decode("latin-1")
    if not text.startswith("M-SEARCH * HTTP/1.1"):
        return None
    st = ""
    for line in text.split("\r\n")[1:40]:
        name, _, value = line.partition(":")
        if name.strip().upper() == "ST":
            st = value.strip()
    dev_type = "urn:schemas-upnp-org:device:Basic:1"
    if st in ("ssdp:all", "upnp:rootdevice"):
        reply_st, usn = "upnp:rootdevice", _usn(dev) + "::upnp:rootdevice"
    elif st == dev_type:
        reply_st, usn = st, _usn(dev) + "::" + st
    elif st == _usn(dev):
        reply_st, usn = st, st
    else:
        return None
    lines = ["HTTP/1.1 200 OK", "CACHE-CONTROL: max-age=1800", f"DATE: {http_date()}", "EXT:",
             f"LOCATION: {location(dev)}", f"SERVER: {server(dev)}", f"ST: {reply_st}", f"USN: {usn}"]
    if dev.spec.family == "dahua":
        lines.insert(2, "X-User-Agent: redsonic")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def description(dev: Device) -> bytes:
    s = dev.spec
    maker = {"dahua": s.brand or "Dahua", "axis": "AXIS"}.get(s.family, s.manufacturer or "")
    url = {"Amcrest": "http://www.amcrest.com", "Dahua": "http://www.dahuasecurity.com"}.get(s.brand or "", "")
    friendly = f"{s.model} - {s.serial}" if s.family == "dahua" else f"AXIS {s.model} - {s.serial}"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<root xmlns="urn:schemas-upnp-org:device-1-0">\n'
        "<specVersion><major>1</major><minor>0</minor></specVersion>\n<device>\n"
        "<deviceType>urn:schemas-upnp-org:device:Basic:1</deviceType>\n"
        f"<friendlyName>{escape(friendly)}</friendlyName>\n<manufacturer>{escape(maker)}</manufacturer>\n"
        f"<manufacturerURL>{url}</manufacturerURL>\n<modelDescription>IP Camera</modelDescription>\n"
        f"<modelName>{escape(s.model or '')}</modelName>\n<modelNumber>{escape(s.model or '')}</modelNumber>\n"
        f"<serialNumber>{escape(s.serial or '')}</serialNumber>\n<UDN>{_usn(dev)}</UDN>\n"
        f"<presentationURL>http://{dev.ip}:{dev.port(80)}/</presentationURL>\n</device>\n</root>\n"
    ).encode()
