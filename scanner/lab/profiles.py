"""Device profiles of the simulated fleet, as data, and the fleet builder.

A *profile* is one kind of device (a Hikvision camera with ONVIF switched off, a Lorex camera made
by Dahua, an HP printer, a device that answers with an XML entity bomb, ...). It names the real
maker (ground truth), the brand it presents, its models and firmware, its MAC blocks and the
services it runs. The responders (scanner/lab/responders/) read a :class:`DeviceSpec` and answer
as the real device would.

Facts come from docs/restrictions.md sections 2.2-2.4 (server strings, firmware
and serial formats, OEM codes), public captures (tests/recordings/SOURCES.md) and the IEEE
registry (fingerprints/data/oui.tsv.gz, built from Debian's ieee-data, for the
makers those files leave out: printers, servers, NAS).

``build_fleet(n, seed)`` is deterministic for a seed: the same n and seed give the same fleet.
Every fleet of 30 or more devices holds every profile of PROFILE_KEYS (each hostile one included); the
rest are drawn by weight. Profiles with ``in_fleet=False`` are never drawn (EXTRA_KEYS: Reolink, Milesight,
Tapo, a Hikvision camera serving HTTP on 8080; ON_REQUEST_KEYS: the hostile ones of ``lab up --hostile``):
they were added after seeds' fleets were relied upon, so a lab or test that wants them builds them by name
(``build_device``, ``manager.up(fleet=...)``). MAC addresses are ``OUI:40:hi:lo`` with hi/lo taken from the device index, so
they are unique within a fleet. Devices without a known maker (some hostile ones) carry a locally
administered MAC (02:...), which says nothing about a maker.

NVR profiles carry :class:`ChannelSpec` entries: the cameras on their PoE ports. Those cameras are
not on the lab network; they appear in the ground truth with ``parent_ip`` (the NVR's address) and
``channel``, and in the NVR's channel list (ISAPI InputProxy, Dahua RemoteDevice).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

# --------------------------------------------------------------------------------------------
# MAC blocks (MA-L, six hex digits) by vendor key. Each is checked against the reference files
# by tests/lab/test_devices_profiles.py.

OUIS: dict[str, tuple[str, ...]] = {
    # blocks the IEEE registry gives each maker (fingerprints/data/oui.tsv.gz)
    "hikvision": ("2857BE", "C056E3", "4419B6", "BCAD28", "548C81", "0C75D2", "ECC89C", "8CE748"),
    "ezviz": ("0CA64C", "64F2FB", "94EC13", "EC97E0"),
    "dahua": ("3CEF8C", "9002A9", "E0508B", "14A78B", "38AF29", "74C929"),
    "huacheng": ("A83162", "302450", "AC3DFA"),
    "amcrest": ("9C8ECD", "00651E", "A06032"),
    "lorex": ("001F54",),
    "uniview": ("48EA63", "88263F", "6CF17E", "C47905"),
    "huawei": ("E00630", "D8DAF1", "54443B", "5C7075"),
    "axis": ("ACCC8E", "B8A44F", "00408C", "E82725"),
    "hanwha": ("000918", "E43022", "44B423"),
    "bosch": ("000463", "00075F", "000131"),
    "ipro": ("D42DC5",),
    "vivotek": ("0002D1",),
    "mobotix": ("0003C5",),
    # fingerprints/data/oui.tsv.gz (the IEEE registry camsweep ships)
    "reolink": ("EC71DB",),
    "milesight": ("1CC316",),
    "tplink": ("1027F5", "005F67"),
    # Debian ieee-data (/usr/share/ieee-data/oui.csv), IEEE MA-L
    "honeywell": ("004084",),
    "hp": ("9C7BEF", "10E7C6", "40B034"),
    "brother": ("3C2AF4", "008077"),
    "intel": ("001B21", "ACED5C"),
    "dell": ("98E743", "C8F750"),
    "synology": ("001132",),
    # a network-module maker's block (Realtek): white-label boards such as Xiongmai's often carry one,
    # which names the NIC, not the device maker
    "realtek": ("00E04C",),
}
LOCAL_OUI = "02CA5E"  # locally administered (bit 1 of the first octet): no maker

# --------------------------------------------------------------------------------------------
# data types


@dataclass(frozen=True)
class Model:
    """One model of a profile: what it is called, what it runs, what it is."""

    name: str
    device_type: str
    firmware: tuple[str, ...]
    oui: str | None = None  # vendor key overriding the profile's
    channels: int = 0  # PoE ports (NVRs)
    hardware: str = ""  # hardware id / version string as the device reports it
    maker: str | None = None  # ground-truth manufacturer and brand overriding the profile's


@dataclass(frozen=True)
class Profile:
    key: str
    family: str  # which responder flavour answers: hikvision, dahua, axis, ..., hostile
    manufacturer: str | None  # ground truth: who really made it
    brand: str | None  # the name on the box
    restricted: bool | None  # under the default policy (NDAA section 889)
    oui: str  # vendor key into OUIS
    models: tuple[Model, ...]
    services: frozenset[str]
    weight: float = 1.0  # share in fleets beyond the one-of-each
    onvif_auth: str = "digest"  # GetDeviceInformation: "digest" (HTTP or WS-Security), "none"
    hostile: str | None = None  # slow, garbage, bigbody, xmlbomb, reset, escape (on request: surrogate,
    # charset, onvif_gzip, mdns_names)
    serial_style: str = ""
    oem: str = ""  # OEM code / vendor string the firmware reports (Dahua getVendor, Hik OEMInfo)
    channel_profiles: tuple[str, ...] = ()  # profiles of the cameras behind the PoE ports
    in_fleet: bool = True  # drawn into build_fleet's random fleets (False: EXTRA_KEYS, built by name only)


@dataclass(frozen=True)
class ChannelSpec:
    """A camera on an NVR's PoE port: reachable only through the NVR."""

    channel: int
    profile: str
    mac: str
    manufacturer: str | None
    brand: str | None
    model: str
    firmware: str
    serial: str
    device_type: str
    restricted: bool | None
    ip: str  # the NVR's internal PoE address of the camera (not on the lab network)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DeviceSpec:
    """One simulated device: ground truth plus what its responders need."""

    index: int
    profile: str
    family: str
    mac: str
    manufacturer: str | None
    brand: str | None
    model: str | None
    firmware: str | None
    serial: str | None
    device_type: str | None
    restricted: bool | None
    hostile: bool
    hostile_kind: str | None
    services: tuple[str, ...]
    onvif_auth: str
    hostname: str
    uuid: str
    realm: str  # the HTTP/RTSP digest realm
    oem: str = ""
    hardware: str = ""
    build: str = ""  # firmware build date, YYYY-MM-DD (Dahua reports it apart from the version)
    channels: tuple[ChannelSpec, ...] = ()

    def has(self, service: str) -> bool:
        return service in self.services

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["services"] = list(self.services)
        d["channels"] = [c.to_dict() for c in self.channels]
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeviceSpec:
        """Rebuild a spec from :meth:`to_dict` output (a plan entry); unknown keys are ignored."""
        names = {f for f in cls.__dataclass_fields__}
        kw = {k: v for k, v in data.items() if k in names}
        kw["services"] = tuple(kw.get("services") or ())
        chan_names = set(ChannelSpec.__dataclass_fields__)
        kw["channels"] = tuple(
            ChannelSpec(**{k: v for k, v in c.items() if k in chan_names}) for c in kw.get("channels") or ()
        )
        return cls(**kw)

    def ground_truth(self, ip: str | None) -> list[dict[str, Any]]:
        """Ground-truth rows (docs/contracts.md "Lab"): this device, then its PoE cameras."""
        rows = [
            {
                "ip": ip,
                "mac": self.mac,
                "manufacturer": self.manufacturer,
                "brand": self.brand,
                "model": self.model,
                "device_type": self.device_type,
                "restricted": self.restricted,
                "profile": self.profile,
                "hostile": self.hostile,
                "parent_ip": None,
                "channel": None,
                "firmware": self.firmware,
                "serial": self.serial,
                "shown_by": maker_shown_by(self),
            }
        ]
        for c in self.channels:
            rows.append(
                {
                    "ip": None,
                    "mac": c.mac,
                    "manufacturer": c.manufacturer,
                    "brand": c.brand,
                    "model": c.model,
                    "device_type": c.device_type,
                    "restricted": c.restricted,
                    "profile": c.profile,
                    "hostile": False,
                    "parent_ip": ip,
                    "channel": c.channel,
                    "firmware": c.firmware,
                    "serial": c.serial,
                    "internal_ip": c.ip,
                    "shown_by": ["unicast"],  # the recorder's channel list (its HTTP API)
                }
            )
        return rows


# --------------------------------------------------------------------------------------------
# the profiles

_S = frozenset

HIK_CAM_SERVICES = _S({"http", "rtsp", "onvif", "wsd", "sadp", "hik_sdk", "https"})
DAHUA_CAM_SERVICES = _S({"http", "rtsp", "onvif", "wsd", "dhip", "dahua_sdk", "ssdp"})

PROFILES: dict[str, Profile] = {}


def _add(p: Profile) -> None:
    assert p.key not in PROFILES, p.key
    PROFILES[p.key] = p


# Hikvision: App-webs, ISAPI, SADP, SDK port 8000; firmware V5.x.y build yymmdd.
_add(Profile(
    "hikvision_camera", "hikvision", "Hikvision", "Hikvision", True, "hikvision",
    (
        Model("DS-2CD2143G0-I", "camera", ("V5.5.82 build 190909", "V5.6.5 build 210316"), hardware="88"),
        Model("DS-2CD2T43G2-4I", "camera", ("V5.7.18 build 240826",), hardware="88"),
        Model("DS-2CD2532F-IWS", "camera", ("V5.2.0 build 140721", "V5.4.5 build 170124"), hardware="2"),
        Model("DS-2DE4425IW-DE", "ptz", ("V5.6.15 build 200924",), hardware="88"),
        Model("DS-2TD1228-2-QA", "thermal", ("V5.5.98 build 240726",), hardware="88"),
    ),
    HIK_CAM_SERVICES | {"telnet", "snmp"}, weight=12, serial_style="hikvision",
))
_add(Profile(
    "hikvision_camera_onvif_off", "hikvision", "Hikvision", "Hikvision", True, "hikvision",
    (
        Model("DS-2CD2047G2-L", "camera", ("V5.7.3 build 220112",), hardware="88"),
        Model("DS-2CD2386G2-IU", "camera", ("V5.7.15 build 230828",), hardware="88"),
        Model("DS-2CD2347G2-LU", "camera", ("V5.5.800 build 210628",), hardware="88"),
    ),
    HIK_CAM_SERVICES - {"onvif", "wsd"}, weight=6, serial_style="hikvision",
))
_add(Profile(
    "hikvision_nvr", "hikvision", "Hikvision", "Hikvision", True, "hikvision",
    (
        Model("DS-7608NI-K2/8P", "nvr", ("V4.61.025 build 220817",), channels=8, hardware="0x0"),
        Model("DS-7616NI-I2/16P", "nvr", ("V4.62.210 build 230619",), channels=16, hardware="0x0"),
        Model("DS-7604NI-K1/4P", "nvr", ("V4.30.085 build 210101",), channels=4, hardware="0x0"),
    ),
    _S({"http", "rtsp", "onvif", "wsd", "sadp", "hik_sdk", "https", "snmp"}), weight=3, serial_style="hikvision",
    channel_profiles=("hikvision_camera", "hikvision_camera", "hikvision_camera_onvif_off", "axis_camera"),
))
_add(Profile(
    "ezviz_camera", "hikvision", "Hikvision", "Ezviz", True, "ezviz",
    (
        Model("CS-C6N", "camera", ("V5.3.0 build 210511",), hardware="100"),
        Model("CS-C3N", "camera", ("V5.3.6 build 220415",), hardware="100"),
    ),
    _S({"rtsp", "hik_sdk", "sadp"}), weight=2, serial_style="ezviz", oem="EZVIZ",
))
_add(Profile(
    "lts_camera", "hikvision", "Hikvision", "LTS", True, "hikvision",
    (
        Model("CMIP3042W-28", "camera", ("V5.5.800 build 210628",), hardware="88"),
        Model("CMIP7442NW-28M", "camera", ("V5.6.3 build 190923",), hardware="88"),
    ),
    HIK_CAM_SERVICES, weight=2, serial_style="hikvision", oem="LTS",
))
_add(Profile(
    "annke_camera", "hikvision", "Hikvision", "Annke", True, "hikvision",
    (
        Model("I91BN", "camera", ("V5.5.71 build 200521",), hardware="88"),
        Model("C800", "camera", ("V5.6.11 build 201203",), hardware="88"),
    ),
    HIK_CAM_SERVICES, weight=2, serial_style="hikvision", oem="ANNKE",
))
# Dahua: Webs-style root page, magicBox CGI, RPC2, Dahua Rtsp Server, DHIP, 37777.
_add(Profile(
    "dahua_camera", "dahua", "Dahua", "Dahua", True, "dahua",
    (
        Model("IPC-HDW2431T-AS-S2", "camera", ("2.800.0000016.0.R,build:2021-07-21",), hardware="1.00"),
        Model("IPC-HFW2231S-S-S2", "camera", ("2.800.0000018.0.R,build:2022-03-11",), hardware="1.00"),
        Model("SD49225XA-HNR", "ptz", ("2.623.0000000.9.R,build:2019-09-02",), hardware="1.00"),
    ),
    DAHUA_CAM_SERVICES | {"telnet", "snmp"}, weight=10, serial_style="dahua", oem="Dahua",
))
_add(Profile(
    "dahua_nvr", "dahua", "Dahua", "Dahua", True, "dahua",
    (
        Model("NVR4108HS-8P-4KS2", "nvr", ("4.001.0000000.3.R,build:2020-11-03",), channels=8, hardware="1.00"),
        Model("NVR5216-16P-4KS2E", "nvr", ("4.001.0000000.5.R,build:2021-05-20",), channels=16, hardware="1.00"),
    ),
    DAHUA_CAM_SERVICES | {"snmp"}, weight=3, serial_style="dahua", oem="Dahua",
    channel_profiles=("dahua_camera", "dahua_camera", "amcrest_camera", "hanwha_camera"),
))
_add(Profile(
    "amcrest_camera", "dahua", "Dahua", "Amcrest", True, "amcrest",
    (
        Model("IP2M-841B", "ptz", ("2.800.00AC001.0.R,build:2020-01-06",), hardware="1.00"),
        Model("IP8M-2496EB", "camera", ("2.800.00AC006.0.R,build:2021-04-13",), hardware="1.00"),
    ),
    DAHUA_CAM_SERVICES, weight=3, serial_style="amcrest", oem="Amcrest",
))
_add(Profile(
    "lorex_camera", "dahua", "Dahua", "Lorex", True, "lorex",
    (
        Model("E892AB", "camera", ("2.622.00LR000.10.R,build:2019-05-23",), hardware="1.00"),
        Model("LNB8973B", "camera", ("2.622.00LR000.12.R,build:2020-02-14",), hardware="1.00"),
    ),
    DAHUA_CAM_SERVICES - {"ssdp"}, weight=2, serial_style="lorex", oem="LOREX",
))
_add(Profile(
    "honeywell_camera", "dahua", "Dahua", "Honeywell", True, "honeywell",
    (Model("H4W2PER3", "camera", ("2.420.0000001.0.R,build:2017-06-29",), hardware="1.00"),),
    DAHUA_CAM_SERVICES - {"ssdp"}, weight=1, serial_style="dahua", oem="Honeywell", onvif_auth="none",
))
_add(Profile(
    "imou_camera", "dahua", "Dahua", "Imou", True, "huacheng",
    (
        Model("IPC-A22EP", "camera", ("2.680.0000000.22.R,build:2021-09-30",), hardware="1.00"),
        Model("IPC-F22FEP", "camera", ("2.840.0000000.8.R,build:2022-12-08",), hardware="1.00"),
    ),
    _S({"rtsp", "dhip", "dahua_sdk", "http"}), weight=2, serial_style="dahua", oem="Imou",
))
# Other restricted or policy-listed makers.
_add(Profile(
    "uniview_camera", "uniview", "Uniview", "Uniview", False, "uniview",
    (
        Model("IPC2124LR3-PF40M-D", "camera", ("IPC_G6103-B0005P60D1907",), hardware="A"),
        Model("IPC3614SR3-ADPF28", "camera", ("IPC_D1201-B0004P61D2012",), hardware="A"),
    ),
    _S({"http", "rtsp", "onvif", "wsd"}), weight=2, serial_style="uniview",
))
_add(Profile(
    "huawei_camera", "huawei", "Huawei", "Huawei", True, "huawei",
    (
        Model("M2241-10-EI", "camera", ("SDC 8.1.0",), hardware="1.0"),
        Model("X2221-10-HLI", "camera", ("SDC 8.0.1.SPC300",), hardware="1.0"),
    ),
    _S({"http", "https", "rtsp", "onvif", "wsd"}), weight=1, serial_style="huawei",
))
# Makers not covered by the default policy.
_add(Profile(
    "axis_camera", "axis", "Axis", "Axis", False, "axis",
    (
        Model("M3045-V", "camera", ("9.80.3.8",), hardware="7C6"),
        Model("P3364-LVE", "camera", ("6.50.5",), hardware="7B8"),
        Model("Q6135-LE", "ptz", ("10.12.114",), hardware="866"),
    ),
    _S({"http", "rtsp", "onvif", "wsd", "mdns", "ssdp", "snmp"}), weight=4, serial_style="axis",
))
_add(Profile(
    "hanwha_camera", "hanwha", "Hanwha Vision", "Wisenet", False, "hanwha",
    (
        Model("XND-6080RV", "camera", ("2.21.02_20230103_R551",)),
        Model("XNP-6320H", "ptz", ("2.10.00_20220110_R287",)),
    ),
    _S({"http", "rtsp", "onvif", "wsd", "snmp_private"}), weight=2, serial_style="hanwha",
))
_add(Profile(
    "bosch_camera", "bosch", "Bosch", "Bosch", False, "bosch",
    (
        Model("FLEXIDOME IP 5000i", "camera", ("7.80.0128",), hardware="F0004D43"),
        Model("AUTODOME IP 5000i", "ptz", ("8.71.0066",), hardware="F000B543"),
    ),
    _S({"http", "rtsp", "onvif", "wsd", "https", "snmp_v3"}), weight=2, serial_style="bosch",
))
_add(Profile(
    "ipro_camera", "ipro", "i-PRO", "i-PRO", False, "ipro",
    (
        Model("WV-S2136L", "camera", ("2.60",)),
        Model("WV-X6531N", "ptz", ("3.10",)),
    ),
    _S({"http", "rtsp", "onvif", "wsd"}), weight=1, serial_style="ipro", onvif_auth="none",
))
_add(Profile(
    "vivotek_camera", "vivotek", "Vivotek", "Vivotek", False, "vivotek",
    (
        Model("FD9389-HV", "camera", ("FD9389-VVTK-0102b",)),
        Model("IB9389-EH", "camera", ("IB9389-VVTK-0102a",)),
    ),
    _S({"http", "rtsp", "onvif", "wsd"}), weight=1, serial_style="vivotek", onvif_auth="none",
))
_add(Profile(
    "mobotix_camera", "mobotix", "Mobotix", "Mobotix", False, "mobotix",
    (
        Model("M16B", "camera", ("MX-V5.2.6.8",)),
        Model("S16B", "camera", ("MX-V5.4.2.7",)),
    ),
    _S({"http", "rtsp", "onvif", "wsd"}), weight=1, serial_style="mobotix", onvif_auth="none",
))
# Xiongmai (XMEye) boards: DVRIP "Sofia" on 34567 (the firmware and board formats of python-dvr's README).
_add(Profile(
    "xiongmai_camera", "xiongmai", "Xiongmai", "Xiongmai", False, "realtek",
    (
        Model("IPC-85H50AI", "camera", ("V5.00.R02.000529B2.10010.040600.0020000,build:2020-01-08",),
              hardware="HI3516EV300_85H50AI"),
        Model("IPC-50H20L", "camera", ("V4.03.R12.00018520.12012.047500.00000,build:2018-11-26",),
              hardware="HI3516CV300_50H20L"),
    ),
    _S({"dvrip", "rtsp"}), weight=1, serial_style="xiongmai",
))
# Makers whose own web APIs camsweep asks, kept out of the random fleets (in_fleet=False) so that every
# seed's fleet and ground truth stay what they were; tests and labs that want them name them (EXTRA_KEYS).
_add(Profile(
    "reolink_camera", "reolink", "Reolink", "Reolink", False, "reolink",
    # GetDevInfo facts of the RLC-822A reply in tests/recordings/vendorapi (SOURCES.md)
    (Model("RLC-822A", "camera", ("v3.1.0.956_22041507",), hardware="IPC_523128M8MP"),),
    _S({"http", "rtsp"}), weight=0, serial_style="reolink", in_fleet=False,
))
_add(Profile(
    "milesight_camera", "milesight", "Milesight", "Milesight", False, "milesight",
    (Model("MS-C2963-PB", "camera", ("45.7.0.79",)), Model("MS-C5364-PD", "camera", ("45.7.0.79",))),
    _S({"http", "rtsp"}), weight=0, serial_style="milesight", in_fleet=False,
))
_add(Profile(
    "tapo_camera", "tapo", "TP-Link", "Tapo", False, "tplink",
    (
        # firmware strings as Tapo owners report them (JurajNyiri/HomeAssistant-Tapo-Control issue 987: C200
        # "1.3.16 Build 240909 Rel.37802n"; JurajNyiri/pytapo issue 109: C425 "1.3.5")
        Model("C200", "ptz", ("1.3.16 Build 240909 Rel.37802n",)),
        Model("C425", "camera", ("1.3.5 Build 231101 Rel.64404n",)),
    ),
    _S({"https", "rtsp"}), weight=0, in_fleet=False,
))
# Ordinary hosts that must not be called cameras.
_add(Profile(
    "printer", "printer", "HP", "HP", False, "hp",
    (
        Model("HP Color LaserJet MFP M479fdw", "printer", ("002_2149A",)),
        Model("HP LaserJet Pro M404dn", "printer", ("002_2136A",)),
        Model("Brother HL-L2350DW", "printer", ("1.70",), oui="brother", maker="Brother"),
    ),
    _S({"http", "ipp", "jetdirect", "mdns", "snmp"}), weight=3, onvif_auth="none", serial_style="printer",
))
_add(Profile(
    "linux_server", "linux", None, None, None, "intel",
    (
        Model("Debian 12 server", "server", ("OpenSSH_9.2p1 Debian-2+deb12u3",)),
        Model("Ubuntu 22.04 server", "server", ("OpenSSH_8.9p1 Ubuntu-3ubuntu0.10",), oui="dell", maker="Dell"),
    ),
    _S({"http", "ssh", "snmp"}), weight=3, onvif_auth="none",
))
_add(Profile(
    "nas", "nas", "Synology", "Synology", False, "synology",
    (
        Model("DS920+", "nas", ("DSM 7.2.1-69057",)),
        Model("DS220+", "nas", ("DSM 7.1.1-42962",)),
    ),
    _S({"http", "nas_web", "smb", "ssh", "mdns", "snmp"}), weight=2, onvif_auth="none", serial_style="synology",
))
# Hostile devices. Ground truth: hostile=true and the maker they claim (null when unknowable).
_add(Profile(
    "hostile_slow", "hikvision", "Hikvision", "Hikvision", True, "hikvision",
    (Model("DS-2CD2143G0-I", "camera", ("V5.5.82 build 190909",), hardware="88"),),
    _S({"http", "rtsp", "hik_sdk"}), weight=0.2, hostile="slow", serial_style="hikvision",
))
_add(Profile(
    "hostile_garbage", "hostile", None, None, None, "local",
    (Model("", "camera", ("",)),),
    _S({"http", "rtsp", "hik_sdk", "telnet", "wsd", "onvif", "snmp"}), weight=0.2, hostile="garbage",
))
_add(Profile(
    "hostile_bigbody", "dahua", "Dahua", "Dahua", True, "dahua",
    (Model("IPC-HFW1230S", "camera", ("2.622.0000000.31.R,build:2018-08-01",), hardware="1.00"),),
    _S({"http", "rtsp"}), weight=0.2, hostile="bigbody", serial_style="dahua", oem="Dahua",
))
_add(Profile(
    "hostile_xmlbomb", "hostile", None, None, None, "local",
    (Model("", "camera", ("",)),),
    _S({"wsd", "onvif", "http"}), weight=0.2, hostile="xmlbomb",
))
_add(Profile(
    "hostile_reset", "hikvision", "Hikvision", "Hikvision", True, "hikvision",
    (Model("DS-2CD2043G0-I", "camera", ("V5.5.0 build 170725",), hardware="88"),),
    _S({"http", "rtsp", "hik_sdk"}), weight=0.2, hostile="reset", serial_style="hikvision",
))
_add(Profile(
    "hostile_escape", "hostile", None, None, None, "local",
    (Model("", "camera", ("",)),),
    _S({"http", "telnet", "rtsp"}), weight=0.2, hostile="escape",
))

# Profiles built only when a fleet names them (``build_device(key, ...)``, ``manager.up(fleet=...)``; the
# hostile ones also by ``lab up --hostile``): ``in_fleet=False``, never drawn into the default fleets, so
# other tests, the demo and every figure measured on a seed's fleet keep theirs.


def _add_on_request(p: Profile) -> None:
    PROFILES[p.key] = replace(p, in_fleet=False)


# a Dahua camera whose DHIP and RPC2 JSON carry lone surrogate escapes ("\udXXX") in its names
_add_on_request(Profile(
    "hostile_surrogate", "dahua", "Dahua", "Dahua", True, "dahua",
    (Model("IPC-HFW2431S-S-S2", "camera", ("2.840.0000000.5.R,build:2023-02-14",), hardware="1.00"),),
    DAHUA_CAM_SERVICES, weight=0, hostile="surrogate", serial_style="dahua", oem="Dahua",
))
# a web server that declares escape codecs as its charset (Content-Type and <meta>) over "\udXXX" text
_add_on_request(Profile(
    "hostile_charset", "hostile", None, None, None, "local",
    (Model("", "camera", ("",)),),
    _S({"http"}), weight=0, hostile="charset",
))
# ONVIF that refuses GetDeviceInformation without credentials and answers it with them as a gzip bomb
_add_on_request(Profile(
    "hostile_onvif_gzip", "hostile", None, None, None, "local",
    (Model("", "camera", ("",)),),
    _S({"http", "onvif", "wsd"}), weight=0, hostile="onvif_gzip",
))
# a host announcing hundreds of mDNS service instances it never resolves
_add_on_request(Profile(
    "hostile_mdns_names", "hostile", None, None, None, "local",
    (Model("", "camera", ("",)),),
    _S({"http", "mdns"}), weight=0, hostile="mdns_names",
))

# a Hikvision camera whose web server an installer moved to 8080, everything else switched off: only a scan
# that asks HTTP on 8080 can name its maker (tests/lab/test_lab_ports.py)
_add_on_request(Profile(
    "hikvision_camera_http8080", "hikvision", "Hikvision", "Hikvision", True, "hikvision",
    (
        Model("DS-2CD2143G0-I", "camera", ("V5.5.82 build 190909", "V5.6.5 build 210316"), hardware="88"),
        Model("DS-2CD2T43G2-4I", "camera", ("V5.7.18 build 240826",), hardware="88"),
    ),
    _S({"http_alt"}), weight=0, serial_style="hikvision",
))

PROFILE_KEYS: tuple[str, ...] = tuple(k for k, p in PROFILES.items() if p.in_fleet)  # what build_fleet draws
EXTRA_KEYS: tuple[str, ...] = tuple(k for k, p in PROFILES.items() if not p.in_fleet and not p.hostile)  # by name
HOSTILE_KEYS: tuple[str, ...] = tuple(k for k in PROFILE_KEYS if PROFILES[k].hostile)
ON_REQUEST_KEYS: tuple[str, ...] = tuple(k for k, p in PROFILES.items() if not p.in_fleet and p.hostile)

# Where a simulated device shows who made it (ground truth for what a lab without ARP or multicast, the
# loopback lab, can show): "arp", its MAC address (a block registered to its maker or its label); "multicast",
# an answer only to multicast (mDNS); "unicast", a service a unicast probe reaches (HTTP, RTSP, ONVIF, the SDK
# and telnet banners, SNMP, unicast WS-Discovery/SSDP/SADP/DHIP, DVRIP). A device's identity "rests on ARP
# or multicast alone" when it has no "unicast" channel.
MULTICAST_ONLY_SERVICES = frozenset({"mdns"})
# services that answer without naming any maker, by family: a stock nginx page (a NAS's port 80 only redirects
# to its DSM page on 5000, titled with the host name), OpenSSH, SMB, net-snmp's Linux agent
ANONYMOUS_SERVICES: dict[str, frozenset[str]] = {
    "linux": frozenset({"http", "ssh", "snmp"}),
    "nas": frozenset({"http", "nas_web", "ssh", "smb", "snmp"}),
}
# hostile behaviours that leave no TCP service answering in time (a 30 s first byte; a reset)
SILENT_HOSTILE = frozenset({"slow", "reset"})
NO_MAKER_OUIS = frozenset({"local", "realtek"})  # a locally administered block; a NIC maker's block
_OUI_KEY = {block.lower(): key for key, blocks in OUIS.items() for block in blocks}


def maker_shown_by(spec: DeviceSpec) -> list[str]:
    """The channels on which ``spec`` shows its maker: some of "arp", "multicast", "unicast" (see above)."""
    out: list[str] = []
    block = spec.mac.replace(":", "").lower()[:6]
    if _OUI_KEY.get(block, "local") not in NO_MAKER_OUIS:
        out.append("arp")
    if any(s in MULTICAST_ONLY_SERVICES for s in spec.services):
        out.append("multicast")
    anonymous = ANONYMOUS_SERVICES.get(spec.family, frozenset()) | MULTICAST_ONLY_SERVICES
    if spec.hostile_kind in SILENT_HOSTILE:
        anonymous = anonymous | {s for s in spec.services if s in _TCP_SERVICE_NAMES}
    if any(s not in anonymous for s in spec.services):
        out.append("unicast")
    return out


# the lab's TCP services (scanner/lab/responders/__init__.py TCP_SERVICES; named here to keep profiles import-free)
_TCP_SERVICE_NAMES = frozenset({"http", "http_alt", "nas_web", "https", "ipp", "rtsp", "hik_sdk", "dahua_sdk",
                                "telnet", "ssh", "jetdirect", "smb", "dvrip"})

# --------------------------------------------------------------------------------------------
# generated identities


def build_mac(oui: str, index: int) -> str:
    """``OUI:40:hi:lo``; ``index`` up to 2**16 - 1 (the fourth octet carries the rest)."""
    oui = oui.upper()
    b4 = 0x40 | ((index >> 16) & 0x3F)
    octets = [oui[0:2], oui[2:4], oui[4:6], f"{b4:02X}", f"{(index >> 8) & 0xFF:02X}", f"{index & 0xFF:02X}"]
    return ":".join(octets).lower()


def _channel_mac(oui: str, index: int, channel: int) -> str:
    """``OUI:8x:hi:lo`` for the camera on ``channel`` of device ``index``: never equal to a fleet MAC."""
    u = index * 32 + channel
    oui = oui.lower()
    return f"{oui[0:2]}:{oui[2:4]}:{oui[4:6]}:{0x80 | (u >> 16) & 0x3F:02x}:{(u >> 8) & 0xFF:02x}:{u & 0xFF:02x}"


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _letters(rng: random.Random, n: int, alphabet: str = "ABCDEFGHJKLMNPQRSTUVWXYZ") -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def build_serial(style: str, model: str, firmware: str, mac: str, rng: random.Random) -> str:
    """A serial number in the maker's real format (docs/restrictions.md 2.2-2.3, corpus)."""
    if style in ("hikvision", "ezviz"):
        # <model><yyyymmdd><variant code><9 chars>, e.g. DS-2CD2T43G2-4I20210105AAWRF30001259
        date = f"20{rng.randint(17, 24)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        if "build " in firmware:  # not older than the firmware build
            b = firmware.split("build ", 1)[1][:6]
            if b.isdigit():
                date = max(date, f"20{b[:2]}{b[2:4]}{b[4:6]}")
        head = model if style == "hikvision" else model.replace("CS-", "")
        return f"{head}{date}{rng.choice(('AAWR', 'CCWR', 'AACH'))}{_letters(rng, 1)}{_digits(rng, 8)}"
    if style == "dahua":  # e.g. 4J0186FPAG00123
        return f"{_digits(rng, 1)}{_letters(rng, 1)}{_digits(rng, 4)}{_letters(rng, 4)}{_digits(rng, 5)}"
    if style == "amcrest":  # AMC + hex, e.g. AMC047530045...
        return "AMC0" + "".join(rng.choice("0123456789ABCDEF") for _ in range(11))
    if style == "lorex":  # ND + 12 digits, e.g. ND021911000000
        return "ND" + _digits(rng, 12)
    if style == "axis":  # the MAC, upper case, without separators
        return mac.replace(":", "").upper()
    if style == "hanwha":  # e.g. ZVVF70GY10001YN
        return f"Z{_letters(rng, 3)}{_digits(rng, 2)}{_letters(rng, 2)}{_digits(rng, 5)}{_letters(rng, 2)}"
    if style == "bosch":
        return _digits(rng, 18)
    if style == "uniview":
        return "210235" + _letters(rng, 2) + _digits(rng, 10)
    if style == "huawei":
        return "2102" + _digits(rng, 8) + _letters(rng, 2) + _digits(rng, 6)
    if style == "vivotek":
        return mac.replace(":", "").upper()
    if style == "mobotix":
        return mac.replace(":", "").upper()[-6:]
    if style == "ipro":
        return _letters(rng, 2) + _digits(rng, 6)
    if style == "printer":
        return "CNB" + _letters(rng, 1) + _digits(rng, 6)
    if style == "xiongmai":  # 16 hex digits, e.g. a166379674a3b447 (python-dvr README)
        return "".join(rng.choice("0123456789abcdef") for _ in range(16))
    if style == "milesight":  # snCode, e.g. 6221A1234567
        return _digits(rng, 4) + _letters(rng, 1) + _digits(rng, 7)
    if style == "reolink":  # e.g. 00000000000000 style device serials are redacted in public replies
        return "".join(rng.choice("0123456789ABCDEF") for _ in range(16))
    if style == "synology":
        return _digits(rng, 4) + _letters(rng, 3) + _digits(rng, 6)
    return ""


def _realm(p: Profile, model: Model, firmware: str, serial: str, mac: str, rng: random.Random) -> str:
    fam = p.family
    if fam == "hikvision":
        # Older firmware says "Hikvision"; 5.5 and later "IP Camera(XXXXX)" (NVRs: "DS-...").
        ver = firmware[1:].split(" ")[0].split(".")
        try:
            major, minor = int(ver[0]), int(ver[1])
        except (ValueError, IndexError):
            major, minor = 5, 5
        if model.device_type == "nvr":  # recorders name themselves by model in the realm
            return "Hikvision" if major < 4 or (major == 4 and minor < 30) else model.name
        if (major, minor) < (5, 5):
            return "Hikvision"
        return f"IP Camera({_letters(rng, 1)}{_digits(rng, 4)})"
    if fam == "dahua":
        return f"Login to {serial}"
    if fam == "axis":
        return "AXIS_WS_" + mac.replace(":", "").upper()
    if fam == "hanwha":
        return "iPolis_" + mac.replace(":", "").upper()
    if fam == "bosch":
        return "Bosch Security Systems"
    if fam == "uniview":
        return "LAPI"
    if fam == "tapo":  # RTSP: WWW-Authenticate: Basic realm="TP-Link IP-Camera" (koush/scrypted issue 441, C110)
        return "TP-Link IP-Camera"
    if fam == "milesight":
        return "milesight"
    if fam == "huawei":
        return "HuaweiIPC"
    if fam == "vivotek":
        return "streaming_server"
    if fam == "mobotix":
        return "MOBOTIX Camera User"
    if fam == "ipro":
        return "i-PRO network device"
    if fam == "nas":
        return "Synology"
    return "device"


_HOSTNAME = {
    "hikvision": "HIKVISION", "dahua": "DAHUA", "axis": "axis", "hanwha": "Wisenet", "bosch": "bosch",
    "uniview": "uniview", "huawei": "huawei-sdc", "ipro": "i-pro", "vivotek": "vivotek", "mobotix": "mobotix",
    "printer": "NPI", "linux": "srv", "nas": "DiskStation", "hostile": "cam", "reolink": "Reolink",
    "milesight": "Milesight", "tapo": "Tapo",
}


def build_device(profile_key: str, index: int, rng: random.Random) -> DeviceSpec:
    """One device of a profile; ``rng`` picks the model, firmware and serial."""
    p = PROFILES[profile_key]
    model = rng.choice(p.models)
    firmware, _, build = rng.choice(model.firmware).partition(",build:")
    oui = LOCAL_OUI if p.oui == "local" else rng.choice(OUIS[model.oui or p.oui])
    mac = build_mac(oui, index)
    serial = build_serial(p.serial_style, model.name, firmware, mac, rng) if p.serial_style else ""
    realm = _realm(p, model, firmware, serial, mac, rng)
    brand, manufacturer, restricted = p.brand, p.manufacturer, p.restricted
    if model.maker:  # e.g. a Brother among the HP printers, a Dell-built server (its NIC carries Dell's OUI)
        brand = manufacturer = model.maker
        restricted = False
    dev_uuid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    hostname = f"{_HOSTNAME.get(p.family, 'dev')}-{mac.replace(':', '')[-6:]}"
    channels: tuple[ChannelSpec, ...] = ()
    if model.channels and p.channel_profiles:
        used = rng.randint(max(1, model.channels // 4), max(1, model.channels * 3 // 4))
        chans = []
        for ch in range(1, used + 1):
            cp_key = rng.choice(p.channel_profiles)
            cp = PROFILES[cp_key]
            cm = rng.choice([m for m in cp.models if m.device_type in ("camera", "ptz")] or list(cp.models))
            cfw = rng.choice(cm.firmware).partition(",build:")[0]
            # channel MACs: same OUI block as the maker, index space above the fleet's
            cmac = _channel_mac(rng.choice(OUIS[cm.oui or cp.oui]), index, ch)
            cserial = build_serial(cp.serial_style, cm.name, cfw, cmac, rng)
            internal = (f"192.168.254.{ch + 1}" if p.family == "hikvision" else f"10.1.1.{64 + ch}")
            chans.append(ChannelSpec(
                channel=ch, profile=cp_key, mac=cmac, manufacturer=cp.manufacturer, brand=cp.brand,
                model=cm.name, firmware=cfw, serial=cserial, device_type=cm.device_type,
                restricted=cp.restricted, ip=internal,
            ))
        channels = tuple(chans)
    return DeviceSpec(
        index=index, profile=p.key, family=p.family, mac=mac, manufacturer=manufacturer, brand=brand,
        model=model.name or None, firmware=firmware or None, serial=serial or None,
        device_type=model.device_type if p.hostile is None or p.manufacturer else None,
        restricted=restricted, hostile=p.hostile is not None, hostile_kind=p.hostile,
        services=tuple(sorted(p.services)), onvif_auth=p.onvif_auth, hostname=hostname, uuid=dev_uuid,
        realm=realm, oem=p.oem, hardware=model.hardware, build=build, channels=channels,
    )


def build_fleet(n: int, seed: int = 0) -> list[DeviceSpec]:
    """A deterministic mix of ``n`` devices for ``seed``.

    Fleets of 30 or more hold every profile at least once (each hostile one included), at
    positions the seed decides; the rest are drawn by the profiles' weights.
    """
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"fleet size must be a non-negative whole number, not {n!r}")
    if n > 0xFFFF:
        raise ValueError(f"fleet size {n} is too large (at most {0xFFFF} devices)")
    rng = random.Random(f"camsweep-fleet-{seed}")
    keys = list(PROFILE_KEYS)
    weights = [PROFILES[k].weight for k in keys]
    if n >= len(keys):
        kinds = keys + rng.choices(keys, weights=weights, k=n - len(keys))
    else:
        kinds = rng.choices(keys, weights=weights, k=n)
    rng.shuffle(kinds)
    return [build_device(k, i, random.Random(f"camsweep-dev-{seed}-{i}-{k}")) for i, k in enumerate(kinds)]


def fleet_ground_truth(fleet: Iterable[DeviceSpec], ips: Iterable[str | None]) -> list[dict[str, Any]]:
    """Ground-truth rows for a fleet and the addresses the lab gave its devices (same order)."""
    rows: list[dict[str, Any]] = []
    for spec, ip in zip(fleet, ips, strict=True):
        rows.extend(spec.ground_truth(ip))
    return rows


__all__ = [
    "OUIS", "PROFILES", "PROFILE_KEYS", "EXTRA_KEYS", "HOSTILE_KEYS", "ON_REQUEST_KEYS", "Model", "Profile", "ChannelSpec", "DeviceSpec",
    "build_fleet", "build_device", "build_mac", "build_serial", "fleet_ground_truth",
]
