"""The lab's digest authentication (RFC 7616): right password only, this realm, this resource, fresh nonce."""

from __future__ import annotations

import hashlib
import random
import time

import pytest

from scanner.lab.profiles import build_device
from scanner.lab.responders import base
from scanner.lab.responders.base import Device, check_basic, check_digest, digest_challenge, parse_auth_params

PASSWORD = "s3cret-Lab"


@pytest.fixture
def dev() -> Device:
    return Device(spec=build_device("hikvision_camera", 1, random.Random(1)), ip="127.18.9.2", username="admin",
                  password=PASSWORD)


def answer(challenge: str, method: str, uri: str, password: str, *, alg: str = "MD5", qop: bool = True,
           user: str = "admin") -> str:
    p = parse_auth_params(challenge[7:])
    h = (lambda s: hashlib.sha256(s.encode()).hexdigest()) if alg == "SHA-256" else (
        lambda s: hashlib.md5(s.encode()).hexdigest())
    ha1, ha2 = h(f"{user}:{p['realm']}:{password}"), h(f"{method}:{uri}")
    if qop:
        resp = h(f"{ha1}:{p['nonce']}:00000001:abcdef:auth:{ha2}")
        extra = ', qop=auth, nc=00000001, cnonce="abcdef"'
    else:
        resp, extra = h(f"{ha1}:{p['nonce']}:{ha2}"), ""
    return (f'Digest username="{user}", realm="{p["realm"]}", nonce="{p["nonce"]}", uri="{uri}", '
            f'response="{resp}", algorithm={alg}{extra}')


def test_right_password_passes_and_anything_else_fails(dev: Device) -> None:
    realm = dev.spec.realm
    ch = digest_challenge(dev, realm)
    uri = "/ISAPI/System/deviceInfo"
    assert check_digest(dev, answer(ch, "GET", uri, PASSWORD), "GET", realm, uri)
    assert check_digest(dev, answer(ch, "GET", uri, PASSWORD, alg="SHA-256"), "GET", realm, uri)
    assert check_digest(dev, answer(ch, "GET", uri, PASSWORD, qop=False), "GET", realm, uri)
    assert not check_digest(dev, answer(ch, "GET", uri, "wrong"), "GET", realm, uri)
    assert not check_digest(dev, answer(ch, "GET", uri, PASSWORD, user="root"), "GET", realm, uri)
    assert not check_digest(dev, answer(ch, "GET", uri, PASSWORD), "POST", realm, uri)  # another method
    assert not check_digest(dev, answer(ch, "GET", uri, PASSWORD), "GET", realm, "/ISAPI/Security/users")
    assert not check_digest(dev, answer(ch, "GET", uri, PASSWORD), "GET", "other realm", uri)
    assert not check_digest(dev, None, "GET", realm, uri)
    assert not check_digest(dev, "Basic YWRtaW46", "GET", realm, uri)
    assert not check_digest(dev, 'Digest username="admin"', "GET", realm, uri)


def test_nonce_is_ours_and_expires(dev: Device, monkeypatch: pytest.MonkeyPatch) -> None:
    realm, uri = dev.spec.realm, "/"
    forged = f'Digest realm="{realm}", nonce="{"0" * 32}"'
    assert not check_digest(dev, answer(forged, "GET", uri, PASSWORD), "GET", realm, uri)
    other = Device(spec=dev.spec, ip=dev.ip, username="admin", password=PASSWORD)  # another device's secret
    assert not check_digest(other, answer(digest_challenge(dev, realm), "GET", uri, PASSWORD), "GET", realm, uri)
    ch = digest_challenge(dev, realm)
    later = time.time() + base.NONCE_TTL + 5
    monkeypatch.setattr(base.time, "time", lambda: later)
    assert not check_digest(dev, answer(ch, "GET", uri, PASSWORD), "GET", realm, uri)


def test_basic(dev: Device) -> None:
    import base64

    assert check_basic(dev, "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode())
    assert not check_basic(dev, "Basic " + base64.b64encode(b"admin:nope").decode())
    assert not check_basic(dev, "Basic !!!")
