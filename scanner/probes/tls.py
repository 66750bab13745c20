"""TLS certificate subject and issuer, self-signed included (verification off: the certificate is the
evidence, not a trust decision). :func:`parse_certificate` reads DER bytes with ``cryptography``;
:func:`probe` completes a handshake on each HTTPS port (old protocol versions and ciphers allowed,
since old cameras speak nothing else) and hands the peer certificate to the parser.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from scanner.probes.base import ProbeContext, close_writer
from scanner.probes.httpwire import client_ssl_context

MAX_CERT = 64 * 1024


def _name(name: Any) -> str:
    try:
        return name.rfc4514_string()[:1024]
    except Exception:
        try:
            return ",".join(f"{a.oid._name}={a.value}" for a in name)[:1024]
        except Exception:
            return ""


def parse_certificate(der: bytes, *, port: int | None = 443) -> dict | None:
    """DER certificate -> ``{"port", "subject", "issuer", "self_signed", "serial", "not_before",
    "not_after", "san"}``; None when it cannot be read."""
    if not isinstance(der, (bytes, bytearray)) or not der or len(der) > MAX_CERT:
        return None
    try:
        from cryptography import x509

        cert = x509.load_der_x509_certificate(bytes(der))
    except Exception:
        return None
    try:  # the names are decoded on access: a malformed one (an unknown string type, say) raises here
        subject, issuer = cert.subject, cert.issuer
        entry: dict[str, Any] = {"port": port, "subject": _name(subject), "issuer": _name(issuer),
                                 "self_signed": subject == issuer}
    except Exception:
        return None
    try:
        entry["serial"] = format(cert.serial_number, "x")[:128]
    except Exception:
        pass
    for attr, key in (("not_valid_before_utc", "not_before"), ("not_valid_after_utc", "not_after")):
        try:
            entry[key] = getattr(cert, attr).strftime("%Y-%m-%dT%H:%M:%SZ")
        except Exception:
            pass
    try:
        from cryptography import x509 as _x

        san = cert.extensions.get_extension_for_class(_x.SubjectAlternativeName).value
        names = [str(v) for v in san.get_values_for_type(_x.DNSName)][:16]
        names += [str(v) for v in san.get_values_for_type(_x.IPAddress)][:16]
        if names:
            entry["san"] = names
    except Exception:
        pass
    return entry


async def fetch_certificate(host: str, port: int, ctx: ProbeContext) -> bytes | None:
    await ctx.throttle()
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=client_ssl_context(), server_hostname=None,
                                    ssl_handshake_timeout=max(0.1, ctx.timeout)),
            ctx.connect_timeout + ctx.timeout)
    except (TimeoutError, OSError, ssl.SSLError, ConnectionError, ValueError):
        return None
    try:
        sslobj = writer.get_extra_info("ssl_object")
        return sslobj.getpeercert(binary_form=True) if sslobj is not None else None
    finally:
        await close_writer(writer)


async def probe(host: str, ctx: ProbeContext) -> dict:
    """``{"tls": [...]}``: the certificate of each HTTPS port that completed a handshake."""
    async def one(port: int) -> dict | None:
        der = await fetch_certificate(host, port, ctx)
        return parse_certificate(der, port=port) if der else None

    try:
        results = await asyncio.gather(*(one(p) for p in ctx.ports_for("https")))
    except asyncio.CancelledError:
        raise
    except Exception:
        return {}
    entries = [r for r in results if r]
    return {"tls": entries} if entries else {}
