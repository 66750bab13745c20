"""Credentials: INI, environment, keyring; most specific section wins; the password never shows."""

from __future__ import annotations

import os

import pytest

from scanner.credentials import Credentials, load, parse_ini, read_file
from scanner.errors import CredentialError

INI = """
[default]
username = admin
password = default-pw

[198.18.0.0/16]
username = ops
password = wide%pw

[198.18.0.0/24]
username = lab
password = narrow

[198.18.0.9]
username = nvr
password = nvr-Pw
"""


def test_most_specific_section_wins():
    c = parse_ini(INI)
    assert c.for_host("198.18.0.9") == ("nvr", "nvr-Pw")
    assert c.for_host("198.18.0.10") == ("lab", "narrow")
    assert c.for_host("198.18.5.1") == ("ops", "wide%pw")  # no interpolation
    assert c.for_host("127.0.0.1") == ("admin", "default-pw")
    assert c("198.18.0.9").username == "nvr" and len(c) == 4


def test_password_never_in_repr_or_errors():
    c = Credentials("admin", "hunter2")
    assert "hunter2" not in repr(c) and "hunter2" not in str(c) and "hunter2" not in f"{c!r} {[c]}"
    assert "hunter2" not in repr(parse_ini("[default]\nusername=a\npassword=hunter2\n"))
    with pytest.raises(CredentialError) as exc:
        parse_ini("[default]\nusername = a\npassword hunter2 no equals sign\n")
    assert "hunter2" not in str(exc.value)


@pytest.mark.parametrize("text,msg", [
    ("", "holds no credentials"),
    ("[default]\npassword = x\n", "no username"),
    ("[default]\nusername = x\n", "no password"),
    ("[office printers]\nusername = a\npassword = b\n", "neither 'default' nor an address"),
    ("not ini at all", "not a valid INI"),
    ("[default]\nusername=a\npassword=b\n[default]\nusername=c\npassword=d\n", "not a valid INI"),
])
def test_bad_files_have_clear_messages(text, msg):
    with pytest.raises(CredentialError, match=msg):
        parse_ini(text)


def test_file_and_env(tmp_path):
    f = tmp_path / "creds.ini"
    f.write_text("[198.18.0.9]\nusername = nvr\npassword = p1\n")
    os.chmod(f, 0o644)
    warnings = []
    c = load(str(f), environ={"CAMSWEEP_USERNAME": "envuser", "CAMSWEEP_PASSWORD": "envpw"}, warn=warnings.append)
    assert c.for_host("198.18.0.9") == ("nvr", "p1") and c.for_host("198.18.0.8") == ("envuser", "envpw")
    assert warnings and "readable by other users" in warnings[0]
    os.chmod(f, 0o600)
    warnings.clear()
    read_file(f, warn=warnings.append)
    assert not warnings
    assert not load(None, environ={})
    assert load(None, environ={"CAMSWEEP_USERNAME": "u", "CAMSWEEP_PASSWORD": ""}).for_host("x") == ("u", "")
    with pytest.raises(CredentialError, match="set both"):
        load(None, environ={"CAMSWEEP_USERNAME": "u"})
    with pytest.raises(CredentialError, match="cannot read"):
        load(str(tmp_path / "missing.ini"), environ={})
    with pytest.raises(CredentialError, match="not a regular file"):
        load(str(tmp_path), environ={})
    big = tmp_path / "big.ini"
    big.write_text("[default]\nusername=a\npassword=b\n" + "#" * 300_000)
    with pytest.raises(CredentialError, match="larger than"):
        load(str(big), environ={})


def test_keyring(monkeypatch):
    import keyring
    from keyring.backend import KeyringBackend
    from keyring.credentials import SimpleCredential

    class Mem(KeyringBackend):
        priority = 1

        def get_password(self, service, username):
            return "kpw" if (service, username) == ("camsweep", "office") else None

        def get_credential(self, service, username):
            pw = self.get_password(service, username)
            return SimpleCredential(username, pw) if pw else None

        def set_password(self, *a):
            raise NotImplementedError

        def delete_password(self, *a):
            raise NotImplementedError

    old = keyring.get_keyring()
    keyring.set_keyring(Mem())
    try:
        c = load("keyring:office", environ={})
        assert c.for_host("198.18.0.1") == ("office", "kpw")
        with pytest.raises(CredentialError, match="no password"):
            load("keyring:other", environ={})
        with pytest.raises(CredentialError, match="needs a name"):
            load("keyring:", environ={})
    finally:
        keyring.set_keyring(old)


def _brute(nets, default, host):
    import ipaddress

    ip = ipaddress.ip_address(host)
    for net, cred in sorted(nets.items(), key=lambda kv: (-kv[0].prefixlen, str(kv[0]))):
        if ip.version == net.version and ip in net:
            return cred
    return default


def test_host_sections_are_found_by_address_as_the_most_specific_section():
    """Property: the answer for any host is the most specific section that holds it (single-host sections
    are looked up by address, the rest scanned in order), as a walk over every section gives."""
    import ipaddress

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from scanner.credentials import CredentialSet, SnmpAuth

    nets_st = st.dictionaries(
        st.builds(lambda a, b, p: ipaddress.ip_network(f"10.0.{a}.{b}/{p}", strict=False), st.integers(0, 3),
                  st.integers(0, 7), st.sampled_from([16, 22, 24, 30, 32])),
        st.integers(0, 999), max_size=12)

    @given(nets_st, st.integers(0, 3), st.integers(0, 9))
    @settings(max_examples=200, deadline=None)
    def check(raw, c, d):
        nets = {n: Credentials(f"u{v}", "p") for n, v in raw.items()}
        snmp = {n: SnmpAuth((f"c{v}",), ()) for n, v in raw.items()}
        cs = CredentialSet(Credentials("d", "p"), nets, snmp_default=SnmpAuth(("public",), ()), snmp_by_network=snmp)
        host = f"10.0.{c}.{d}"
        assert cs.for_host(host) == _brute(nets, Credentials("d", "p"), host)
        want = _brute(snmp, None, host)
        assert cs.snmp_for(host).communities[:1] == ((want.communities[0],) if want else ("public",))

    check()
