"""Hikvision SADP (UDP 37020, multicast 239.255.255.250): ``<Probe>... inquiry`` in, ``<ProbeMatch>`` out.

Field names follow captured ProbeMatch replies (docs/restrictions.md 2.2: DeviceType, DeviceDescription,
DeviceSN, MAC, SoftwareVersion, DSPVersion, OEMInfo, Activated). OEM units (LTS, Annke, Ezviz) answer
SADP too and name themselves in ``OEMInfo``.
"""

from __future__ import annotations

import ipaddress
import time
from html import escape

from scanner.lab.responders import onvif
from scanner.lab.responders.base import Device

PORT = 37020
GROUP = "239.255.255.250"


def answer(dev: Device, data: bytes, addr: tuple[str, int]) -> bytes | None:
    root = onvif.parse_xml(data)
    if root is None or root.tag.rsplit("}", 1)[-1] != "Probe":
        return None
    uuid_el = root.find("Uuid")
    types_el = root.find("Types")
    if types_el is None or (types_el.text or "").strip().lower() != "inquiry":
        return None
    s = dev.spec
    fw, _, build = (s.firmware or "").partition(" build ")
    mask = str(ipaddress.IPv4Network(f"0.0.0.0/{dev.prefixlen}").netmask)
    nvr = s.device_type == "nvr"
    oem = f"<OEMInfo>{escape(s.oem)}</OEMInfo>" if s.oem else ""
    boot = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(dev.boot_time))
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<ProbeMatch><Uuid>{escape((uuid_el.text or '').strip()[:64]) if uuid_el is not None else ''}</Uuid>"
        f"<Types>inquiry</Types><DeviceType>{'1003' if nvr else '138'}</DeviceType>"
        f"<DeviceDescription>{escape(s.model or '')}</DeviceDescription><DeviceSN>{escape(s.serial or '')}</DeviceSN>"
        f"<CommandPort>{dev.port(8000)}</CommandPort><HttpPort>{dev.port(80)}</HttpPort>"
        f"<MAC>{s.mac.replace(':', '-')}</MAC><IPv4Address>{dev.ip}</IPv4Address>"
        f"<IPv4SubnetMask>{mask}</IPv4SubnetMask><IPv4Gateway>0.0.0.0</IPv4Gateway>"
        "<IPv6Address>::</IPv6Address><IPv6Gateway>::</IPv6Gateway><IPv6MaskLen>64</IPv6MaskLen>"
        f"<DHCP>false</DHCP><AnalogChannelNum>0</AnalogChannelNum>"
        f"<DigitalChannelNum>{len(s.channels) if nvr else 1}</DigitalChannelNum>"
        f"<SoftwareVersion>{escape(fw)}build {escape(build)}</SoftwareVersion>"
        "<DSPVersion>V7.3 build 200601</DSPVersion>"
        f"<BootTime>{boot}</BootTime><Encrypt>true</Encrypt><ResetAbility>false</ResetAbility>"
        "<DiskNumber>0</DiskNumber><Activated>true</Activated><PasswordResetAbility>true</PasswordResetAbility>"
        f"<PasswordResetModeSecond>true</PasswordResetModeSecond>{oem}<DetailOEMCode>1</DetailOEMCode>"
        "<SupportSecurityQuestion>true</SupportSecurityQuestion><SupportHCPlatform>true</SupportHCPlatform>"
        "<HCPlatformEnable>false</HCPlatformEnable><IsModifyVerificationCode>false</IsModifyVerificationCode>"
        "<DeviceLock>true</DeviceLock><SDKServerStatus>true</SDKServerStatus></ProbeMatch>"
    )
    return xml.encode()
