"""TLS for the HTTPS responders: self-signed certificates with the subjects real units carry.

One EC key is made per service process; certificates are cached per subject, so a fleet costs one
certificate per maker (Bosch names each unit by its MAC, so those get one each). Subjects follow
captured certificates (corpus other-*-x509-*).
"""

from __future__ import annotations

import datetime
import os
import ssl
import tempfile
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from scanner.lab.responders.base import Device

_KEY = None
_DIR: str | None = None


def subject(dev: Device) -> tuple[tuple[str, str], ...]:
    s = dev.spec
    if s.family == "hikvision":
        return (("C", "CN"), ("ST", "ZJ"), ("L", "HZ"), ("O", "Hikvision"), ("OU", "Hikvision"),
                ("CN", "IP Camera" if s.device_type != "nvr" else "NVR"))
    if s.family == "bosch":
        mac = s.mac.replace(":", "-")
        return (("C", "DE"), ("L", "Grasbrunn"), ("O", "Bosch Sicherheitssysteme GmbH"), ("OU", "ST-VS"),
                ("CN", mac))
    if s.family == "huawei":
        return (("C", "CN"), ("O", "Huawei"), ("OU", "IT"), ("CN", "HUAWEI SDC"))
    if s.family == "dahua":
        return (("C", "CN"), ("ST", "ZheJiang"), ("L", "HangZhou"), ("O", "Dahua"), ("CN", "General"))
    return (("CN", s.hostname),)


_OID = {"C": NameOID.COUNTRY_NAME, "ST": NameOID.STATE_OR_PROVINCE_NAME, "L": NameOID.LOCALITY_NAME,
        "O": NameOID.ORGANIZATION_NAME, "OU": NameOID.ORGANIZATIONAL_UNIT_NAME, "CN": NameOID.COMMON_NAME}


def _key() -> ec.EllipticCurvePrivateKey:
    global _KEY
    if _KEY is None:
        _KEY = ec.generate_private_key(ec.SECP256R1())
    return _KEY


def _dir() -> str:
    global _DIR
    if _DIR is None:
        _DIR = tempfile.mkdtemp(prefix="camsweep-lab-tls-")
    return _DIR


@lru_cache(maxsize=4096)
def context_for(subj: tuple[tuple[str, str], ...]) -> ssl.SSLContext:
    name = x509.Name([x509.NameAttribute(_OID[k], v) for k, v in subj])
    now = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(_key().public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=3650 * 3)).sign(_key(), hashes.SHA256()))
    fd, path = tempfile.mkstemp(suffix=".pem", dir=_dir())
    with os.fdopen(fd, "wb") as f:
        f.write(_key().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(path)
    os.unlink(path)
    return ctx


def server_context(dev: Device) -> ssl.SSLContext:
    return context_for(subject(dev))


def cleanup() -> None:
    global _DIR
    if _DIR is not None:
        try:
            os.rmdir(_DIR)
        except OSError:
            pass
        _DIR = None
