"""SNMPv3 (USM) GET of sysDescr/sysObjectID/sysName for users named in the credentials file.

v3 needs the engine-id discovery round, key localisation, HMAC and AES/DES, which pysnmp's engine
does; this module drives pysnmp's asyncio high-level API (imported only when a v3 user is given, ~0.1 s)
with one request of three OIDs. Its datagrams leave through pysnmp's own socket, so it takes the
engine's rate-limit token first and is bounded by ``ctx.timeout``; when a datagram transport is
injected (tests, embedding: one without ``uses_network``, which the engine's own wrapper of the
network sets) nothing is sent, since that seam cannot carry pysnmp's engine. The user's
keys never appear in evidence or logs.
"""

from __future__ import annotations

import asyncio
from typing import Any

from scanner.probes.base import ProbeContext
from scanner.probes.snmp import SYSTEM_OIDS, fragment, system_fields


def _protocols(user: Any) -> tuple[Any, Any]:
    from pysnmp.hlapi.v3arch import asyncio as hl

    auth = {
        "md5": hl.usmHMACMD5AuthProtocol, "sha": hl.usmHMACSHAAuthProtocol,
        "sha224": hl.usmHMAC128SHA224AuthProtocol, "sha256": hl.usmHMAC192SHA256AuthProtocol,
        "sha384": hl.usmHMAC256SHA384AuthProtocol, "sha512": hl.usmHMAC384SHA512AuthProtocol,
    }[user.auth_protocol] if user.auth_key else hl.usmNoAuthProtocol
    priv = {
        "des": hl.usmDESPrivProtocol, "aes": hl.usmAesCfb128Protocol,
        "aes192": hl.usmAesCfb192Protocol, "aes256": hl.usmAesCfb256Protocol,
    }[user.priv_protocol] if user.priv_key else hl.usmNoPrivProtocol
    return auth, priv


_MASTER_KEYS: dict[tuple[Any, ...], Any] = {}  # (kind, protocols, pass phrase) -> RFC 3414 master key


def _keys(user: Any, auth: Any, priv: Any) -> tuple[Any, Any, int, int]:
    """(auth key, priv key, auth key type, priv key type) for UsmUserData: the master keys of RFC 3414
    (a pass phrase stretched over 1 MB of hashing, ~10 ms each) made once per pass phrase and protocol
    instead of once per device; pysnmp then only localises them to each agent's engine id, as it would."""
    from pysnmp.entity import config
    from pysnmp.proto import rfc1902

    ak, pk = user.auth_key or None, user.priv_key or None
    passphrase = config.USM_KEY_TYPE_PASSPHRASE
    if not ak or auth not in config.AUTH_SERVICES:
        return ak, pk, passphrase, passphrase
    if len(_MASTER_KEYS) > 64:
        _MASTER_KEYS.clear()
    key = ("auth", auth, ak)
    master = _MASTER_KEYS.get(key)
    if master is None:
        master = _MASTER_KEYS[key] = config.AUTH_SERVICES[auth].hash_passphrase(rfc1902.OctetString(ak))
    if not pk or priv not in config.PRIV_SERVICES:
        return master, pk, config.USM_KEY_TYPE_MASTER, passphrase
    key = ("priv", auth, priv, pk)
    pmaster = _MASTER_KEYS.get(key)
    if pmaster is None:
        pmaster = _MASTER_KEYS[key] = config.PRIV_SERVICES[priv].hash_passphrase(auth, rfc1902.OctetString(pk))
    return master, pmaster, config.USM_KEY_TYPE_MASTER, config.USM_KEY_TYPE_MASTER


_ENGINES: dict[int, Any] = {}  # one pysnmp engine per event loop: building one costs ~50 ms of CPU


def _engine() -> Any:
    from pysnmp.hlapi.v3arch import asyncio as hl

    loop = asyncio.get_running_loop()
    eng = _ENGINES.get(id(loop))
    if eng is None or eng[0] is not loop:
        _ENGINES.clear()  # an old loop's engine (tests run many loops) is dropped with it
        eng = _ENGINES[id(loop)] = (loop, hl.SnmpEngine())
    return eng[1]


async def ask_user(host: str, port: int, user: Any, ctx: ProbeContext, engine_id: bytes | None = None) -> dict:
    """One v3 GET with ``user`` (a ``scanner.credentials.SnmpUser``); the fragment or ``{}``. Never raises.

    ``engine_id``: the agent's snmpEngineID from the discovery round. The user is registered in the shared
    engine's USM table under that id, so two devices whose users share a name but not their keys do not
    overwrite each other's entry (measured in the lab: without it the second device was asked with the
    first's keys, answered usmStatsWrongDigests Reports, and the exchange went on until the timeout,
    ~900 datagrams each way)."""
    if ctx.datagram is not None and not getattr(ctx.datagram, "uses_network", False):
        return {}  # an injected transport (a test): pysnmp's socket would bypass it
    try:
        from pysnmp.hlapi.v3arch import asyncio as hl

        auth, priv = _protocols(user)
        auth_key, priv_key, auth_type, priv_type = _keys(user, auth, priv)
        await ctx.throttle()
        target = await hl.UdpTransportTarget.create((host, port), timeout=max(0.5, min(ctx.timeout, 2.0)), retries=0)
        err, status, _index, varbinds = await asyncio.wait_for(hl.get_cmd(
                _engine(), hl.UsmUserData(user.name, auth_key, priv_key, authProtocol=auth, privProtocol=priv,
                                       securityEngineId=hl.OctetString(engine_id) if engine_id else None,
                                       authKeyType=auth_type, privKeyType=priv_type),
                target, hl.ContextData(), *(hl.ObjectType(hl.ObjectIdentity(o)) for o in SYSTEM_OIDS),
                lookupMib=False),  # raw values (no MIB resolution: an OID stays an OID)
                ctx.timeout + 0.5)
        if err or status:
            return {}
        return fragment(system_fields((vb[0], vb[1]) for vb in varbinds)) or {}
    except asyncio.CancelledError:
        raise
    except Exception:
        return {}
