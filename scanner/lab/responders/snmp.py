"""An SNMP agent (UDP 161) for the lab's devices: the MIB-II system group, read-only, v1 and v2c.

Real GetRequest/GetNextRequest PDUs are decoded and answered with pysnmp's protocol layer (the same
BER codec as real managers), so any SNMP client can walk it. As a real agent does, a request with a
community the device does not have gets no answer at all, and nothing is ever writable.

The community is ``public`` (the factory default of the devices that ship SNMP enabled), except for
profiles with the ``snmp_private`` service: those answer only to :func:`lab_community` of the device,
which the lab manager also writes into the lab's credentials file (``community = ...``). Profiles with
``snmp_v3`` run an SNMPv3-only agent instead (:class:`V3Agent`: pysnmp's command responder, USM
authPriv with SHA and AES; user and keys from :func:`lab_v3_user`, also in the credentials file); it
ignores v1/v2c requests, as an agent with v1/v2c switched off does.

What each family reports follows what such devices really say (sources in the comments of
:func:`system_group`).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from scanner.lab.responders.base import Device

PORT = 161
GROUP = None  # unicast only: no group socket
MAX_REQUEST = 4096

SYSTEM = "1.3.6.1.2.1.1"
NET_SNMP_LINUX = "1.3.6.1.4.1.8072.3.2.10"  # net-snmp's sysObjectID for a Linux agent: names no maker


def lab_community(username: str, password: str) -> str:
    """The private read-only community of a ``snmp_private`` device (derived from its lab account)."""
    return "ro-" + hashlib.sha256(f"snmp:{username}:{password}".encode()).hexdigest()[:12]


def engine_id(dev: Device) -> bytes:
    """The agent's snmpEngineID (RFC 3411): the engine builder's PEN with the high bit set, then a format
    byte. net-snmp (PEN 8072, the agent of Linux-based cameras, NAS and servers) uses format 0x80 and
    random bytes (the lab gives it to every agent not known to run its own, the Bosch v3 one included);
    printers' own agents (HP JetDirect, Brother) use format 3 (MAC)."""
    mac = bytes.fromhex(dev.spec.mac.replace(":", ""))
    if dev.spec.family == "printer":
        pen = 2435 if (dev.spec.model or "").startswith("Brother") else 11
        return (0x80000000 | pen).to_bytes(4, "big") + b"\x03" + mac
    return (0x80000000 | 8072).to_bytes(4, "big") + b"\x80" + hashlib.sha256(mac).digest()[:8]


def report(dev: Device, data: bytes) -> bytes | None:
    """The Report an agent sends to an SNMPv3 engine-discovery request (RFC 3414 4): its engine id, boots and
    time, and usmStatsUnknownEngineIDs. Requests that name an engine or a user get nothing here (this
    agent has no v3 users)."""
    from pyasn1.codec.ber import decoder, encoder
    from pysnmp.proto import rfc1902, rfc1905
    from pysnmp.proto.mpmod.rfc3412 import SNMPv3Message
    from pysnmp.proto.secmod.rfc3414.service import UsmSecurityParameters

    msg, _ = decoder.decode(data, asn1Spec=SNMPv3Message())
    usm, _ = decoder.decode(bytes(msg["msgSecurityParameters"]), asn1Spec=UsmSecurityParameters())
    if bytes(usm["msgAuthoritativeEngineId"]) or bytes(usm["msgUserName"]):
        return None
    if not bytes(msg["msgGlobalData"]["msgFlags"])[:1] or not bytes(msg["msgGlobalData"]["msgFlags"])[0] & 0x04:
        return None  # not reportable
    req = msg["msgData"]["plaintext"]["data"].getComponent()
    out = SNMPv3Message()
    out["msgVersion"] = 3
    head = out["msgGlobalData"]
    head["msgID"] = int(msg["msgGlobalData"]["msgID"])
    head["msgMaxSize"] = 65507
    head["msgFlags"] = b"\x00"
    head["msgSecurityModel"] = 3
    sec = UsmSecurityParameters()
    sec["msgAuthoritativeEngineId"] = engine_id(dev)
    sec["msgAuthoritativeEngineBoots"] = 1
    sec["msgAuthoritativeEngineTime"] = int(time.time() - dev.boot_time) % 2147483647
    sec["msgUserName"] = b""
    sec["msgAuthenticationParameters"] = b""
    sec["msgPrivacyParameters"] = b""
    out["msgSecurityParameters"] = encoder.encode(sec)
    pdu = rfc1905.ReportPDU()
    pdu["request-id"] = int(req["request-id"])
    pdu["error-status"] = 0
    pdu["error-index"] = 0
    from pysnmp.proto import api

    api.v2c.apiPDU.set_varbinds(pdu, [(rfc1902.ObjectName("1.3.6.1.6.3.15.1.1.4.0"),  # usmStatsUnknownEngineIDs
                                       rfc1902.Counter32(1))])
    scoped = out["msgData"]["plaintext"]
    scoped["contextEngineId"] = engine_id(dev)
    scoped["contextName"] = b""
    scoped["data"]["report"] = pdu
    return bytes(encoder.encode(out))


def lab_v3_user(username: str, password: str) -> tuple[str, str, str]:
    """(user, SHA auth key, AES priv key) of a ``snmp_v3`` device (derived from its lab account)."""
    h = hashlib.sha256(f"snmpv3:{username}:{password}".encode()).hexdigest()
    return f"{username}-snmp", "auth-" + h[:16], "priv-" + h[16:32]


class V3Agent:
    """An SNMPv3 (USM authPriv) command responder on an already bound UDP socket, serving the device's
    system group (pysnmp's engine and MIB instrumentation, values overridden by :func:`system_group`)."""

    def __init__(self, dev: Device, sock: Any) -> None:
        from pysnmp.carrier.asyncio.dgram import udp
        from pysnmp.entity import config, engine
        from pysnmp.entity.rfc3413 import cmdrsp, context
        from pysnmp.proto import rfc1902

        user, auth_key, priv_key = lab_v3_user(dev.username, dev.password)
        self.engine = engine.SnmpEngine(snmpEngineID=rfc1902.OctetString(engine_id(dev)))
        config.add_transport(self.engine, udp.DOMAIN_NAME, udp.UdpTransport().open_server_mode(sock=sock))
        config.add_v3_user(self.engine, user, config.USM_AUTH_HMAC96_SHA, auth_key, config.USM_PRIV_CFB128_AES,
                           priv_key)
        config.add_vacm_user(self.engine, 3, user, "authPriv", (1, 3, 6, 1, 2, 1, 1), (1, 3, 6, 1, 2, 1, 1))
        ctx = context.SnmpContext(self.engine)
        descr, oid, name = system_group(dev)
        mib = ctx.get_mib_instrum().get_mib_builder()
        s_descr, s_oid, s_name = mib.import_symbols("__SNMPv2-MIB", "sysDescr", "sysObjectID", "sysName")
        s_descr.syntax = s_descr.syntax.clone(descr)
        s_oid.syntax = s_oid.syntax.clone(tuple(int(x) for x in oid.split(".")))
        s_name.syntax = s_name.syntax.clone(name)
        cmdrsp.GetCommandResponder(self.engine, ctx)
        cmdrsp.NextCommandResponder(self.engine, ctx)

    def close(self) -> None:
        try:
            self.engine.close_dispatcher()
        except Exception:  # noqa: BLE001 - closing on shutdown
            pass


def community_of(dev: Device) -> str:
    return lab_community(dev.username, dev.password) if dev.spec.has("snmp_private") else "public"


def system_group(dev: Device) -> tuple[str, str, str]:
    """(sysDescr, sysObjectID, sysName) as a device of this family reports them."""
    s = dev.spec
    model, fw, hw = s.model or "", s.firmware or "", s.hardware or ""
    name = s.hostname
    fam = s.family
    if fam == "axis":
        # "; AXIS <model>; <type>; <firmware>; <build date>; <hw id>; 1;" (greenbone/vulnerability-tests
        # "Axis Devices Detection (SNMP)"); sysObjectID in Axis's PEN 368
        kind = "PTZ Network Camera" if s.device_type == "ptz" else "Network Camera"
        return f"; AXIS {model}; {kind}; {fw}; Oct 12 2022 10:00; {hw}; 1;", "1.3.6.1.4.1.368.4", name
    if fam == "hikvision":
        # Hikvision firmware runs net-snmp with the HIKVISION-MIB (enterprise 39165; model at
        # 39165.1.1.0 per glpi-agent's Hikvision.pm); its sysObjectID sits in that arc
        return model, "1.3.6.1.4.1.39165.1.1", name
    if fam == "dahua":
        # Dahua firmware: sysDescr is the device class, sysObjectID in the DAHUA-SNMP-MIB arc 1004849
        # (net-snmp's ".3.2.10" Linux leaf moved into it)
        return ("NVR" if s.device_type == "nvr" else "IPC"), "1.3.6.1.4.1.1004849.3.2.10", "(none)"
    if fam == "hanwha":
        return f"Hanwha Vision {model}", "1.3.6.1.4.1.36849.1.2", name  # PEN 36849 (Hanwha Vision)
    if fam == "bosch":
        return f"Bosch {model} {fw}", "1.3.6.1.4.1.3967.1", name  # PEN 3967 (Bosch Sicherheitssysteme)
    if fam == "printer":
        if model.startswith("Brother"):  # Brother NIC sysDescr (Recog snmp_sysdescr.xml examples' form)
            return f"Brother NC-8300h, Firmware Ver.{fw} (21.03.05),MID 8CE-F61,FID 2", \
                "1.3.6.1.4.1.2435.2.3.9.1", name
        # HP JetDirect (Recog snmp_sysdescr.xml "HP JetDirect-based printer"); hpNetPrinter OID in PEN 11
        serial = s.serial or "CNB0000000"
        return f"HP ETHERNET MULTI-ENVIRONMENT,SN:{serial},FN:JK00000,SVCID:00000,PID:{model}", \
            "1.3.6.1.4.1.11.2.3.9.1", name
    if fam == "nas":  # Synology DSM runs net-snmp: a Linux sysDescr and net-snmp's generic OID
        return f"Linux {name} 4.4.302+ #69057 SMP Fri Jan 12 17:02:28 CST 2024 x86_64", NET_SNMP_LINUX, name
    if fam == "linux":
        return f"Linux {name} 6.1.0-18-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01) x86_64", \
            NET_SNMP_LINUX, name
    return "Linux", NET_SNMP_LINUX, name


def _mib(dev: Device, p: Any) -> list[tuple[tuple[int, ...], Any]]:
    descr, oid, name = system_group(dev)
    ticks = int((time.time() - dev.boot_time) * 100) % (2**32)
    rows = [
        ("1.3.6.1.2.1.1.1.0", p.OctetString(descr.encode())),
        ("1.3.6.1.2.1.1.2.0", p.ObjectIdentifier(oid)),
        ("1.3.6.1.2.1.1.3.0", p.TimeTicks(ticks)),
        ("1.3.6.1.2.1.1.4.0", p.OctetString(b"")),
        ("1.3.6.1.2.1.1.5.0", p.OctetString(name.encode())),
        ("1.3.6.1.2.1.1.6.0", p.OctetString(b"")),
        ("1.3.6.1.2.1.1.7.0", p.Integer(72)),
    ]
    return sorted((tuple(int(x) for x in o.split(".")), v) for o, v in rows)


def answer(dev: Device, data: bytes, addr: tuple[str, int]) -> bytes | None:
    """A GetResponse to a v1/v2c Get/GetNext with the right community; None for anything else."""
    if not data or len(data) > MAX_REQUEST or data[0] != 0x30:
        return None
    from pyasn1.codec.ber import decoder, encoder
    from pysnmp.proto import api
    from pysnmp.proto.rfc1902 import ObjectName

    try:
        version = int(api.decodeMessageVersion(data))
        if version == 3:
            return report(dev, data)
        if version not in api.PROTOCOL_MODULES:
            return None
        p = api.PROTOCOL_MODULES[version]
        msg, _ = decoder.decode(data, asn1Spec=p.Message())
        if str(p.apiMessage.get_community(msg)) != community_of(dev):
            return None  # a wrong community gets silence, as from a real agent
        pdu = p.apiMessage.get_pdu(msg)
        is_get = pdu.tagSet == p.GetRequestPDU.tagSet
        is_next = pdu.tagSet == p.GetNextRequestPDU.tagSet
        if not (is_get or is_next):
            return None
        asked = [tuple(int(x) for x in o) for o, _ in p.apiPDU.get_varbinds(pdu)][:32]
        mib = _mib(dev, p)
        table = dict(mib)
        rsp = p.apiPDU.get_response(pdu)
        out: list[tuple[Any, Any]] = []
        error_index = 0
        for i, oid in enumerate(asked, 1):
            if is_get:
                value = table.get(oid)
                found = oid
            else:
                nxt = next(((o, v) for o, v in mib if o > oid), None)
                found, value = nxt if nxt else (oid, None)
            if value is None:
                if version == api.SNMP_VERSION_1:
                    error_index = error_index or i
                    value = p.Null("")
                elif is_get:
                    value = api.v2c.NoSuchObject("")
                else:
                    value = api.v2c.EndOfMibView("")
            out.append((ObjectName(found), value))
        p.apiPDU.set_varbinds(rsp, out)
        if error_index:
            p.apiPDU.set_error_status(rsp, 2)  # noSuchName (v1)
            p.apiPDU.set_error_index(rsp, error_index)
            p.apiPDU.set_varbinds(rsp, [(ObjectName(o), p.Null("")) for o in asked])
        reply = p.apiMessage.get_response(msg)
        p.apiMessage.set_pdu(reply, rsp)
        return bytes(encoder.encode(reply))
    except Exception:  # a request the codec cannot read: no answer
        return None
